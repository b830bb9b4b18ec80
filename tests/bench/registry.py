"""Debian's docker-registry on a free 127.0.0.1 port, as tests/cache_repo.rs
starts it (plain HTTP on loopback, which minibuild uses without --insecure):
the bytes it stores, and the blobs a node pulls for an image (via skopeo)."""

import hashlib
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path


class Registry:
    """A fresh registry with its storage under `root`; a context manager that
    stops it. A registry that does not start ends the benchmark, saying why."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.storage = self.root / "storage"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.log = self.root / "registry.log"
        try:
            with open(self.log, "w") as log:
                self.proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                             stdout=subprocess.DEVNULL, stderr=log)
        except OSError as e:
            sys.exit(f"cannot start docker-registry: {e}\n  hint: run `make deps-bench`")
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                self.fail(f"docker-registry exited with status {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    self.fail(f"docker-registry did not listen on 127.0.0.1:{self.port} within 10 s")
                time.sleep(0.05)

    def fail(self, why):
        tail = self.log.read_text()[-2000:] if self.log.is_file() else ""
        sys.exit(f"{why} (config {self.root / 'config.yml'}); its log:\n{tail}"
                 "\n  hint: `make deps-bench` installs it; is the port or the storage dir usable?")

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def blobs(self):
        """digest -> size of every blob stored (layers, configs and manifests: the
        registry stores each once, whatever the number of repositories)."""
        top = self.storage / "docker" / "registry" / "v2" / "blobs"
        return {f"{data.parent.parent.parent.name}:{data.parent.name}": data.stat().st_size
                for data in top.glob("*/*/*/data")}

    def pulled(self, ref):
        """(digest -> size of the blobs a node of this machine's arch fetches for
        `ref`: its manifest (and index), config and layers; the layer count)."""
        got = {}
        raw = self.raw(f"docker://{ref}")
        got["sha256:" + hashlib.sha256(raw).hexdigest()] = len(raw)
        manifest = json.loads(raw)
        if "manifests" in manifest:  # an index: the manifest for this arch
            arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
            mine = [m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == arch]
            if not mine:
                sys.exit(f"{ref}: no manifest for {arch} in its index")
            name = ref.rsplit(":", 1)[0] if "@" not in ref else ref.split("@")[0]
            raw = self.raw(f"docker://{name}@{mine[0]['digest']}")
            got[mine[0]["digest"]] = len(raw)
            manifest = json.loads(raw)
        for blob in [manifest["config"]] + manifest["layers"]:
            got[blob["digest"]] = blob["size"]
        return got, len(manifest["layers"])

    @staticmethod
    def raw(ref):
        proc = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            sys.exit(f"skopeo inspect --raw {ref} failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
        return proc.stdout
