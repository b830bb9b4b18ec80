#!/usr/bin/env python3
"""Side-by-side benchmark: minibuild versus the classic `dnf --installroot` + tar.

For each recipe, in one run on this machine, against the fixture repository
served on 127.0.0.1:
  - minibuild cold (empty cache) and warm (cache filled): wall, CPU, peak RSS;
  - the classic approach: `dnf --installroot=ROOT --setopt=install_weak_deps=False
    --nodocs install …`, then ROOT tarred and gzipped into an OCI layer;
  - rootfs bytes, compressed layer bytes and file counts of both results;
  - the installed size on the same request: the packages each side chose
    (count, the sum of their RPM installed sizes, the names only one side
    has) and the bytes of each tree, side by side (issue 15 item 4: the
    built-in minimal providers against dnf's choice, `nginx-bare` being the
    nginx recipe asking for `nginx` alone, without `prefer`);
  - the ratios minibuild/classic;
  - the fleet of issue 18 (tests/bench/fleet.py): ten app recipes on one
    core, in one run and in ten; the registry bytes and the tenth image's
    pull with a shared core layer and without; machine B's cold build with
    and without --cache-repo.

Prints a table and writes JSON (default tests/bench/results.json; the
project's top level is fixed, so the issue's bench/ lives under tests/). Not part of `make test`.
Usage: bench.py MINIBUILD_BINARY FIXTURES_DIR [--out FILE] [--only cases|fleet]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from benchlib import ratio, serve, timed
from fleet import fleet, print_fleet

ROOT = Path(__file__).resolve().parents[2]

# Every program this benchmark runs (tests/check-deps.sh checks that
# `make deps-bench` installs each; keep it on one line).
TOOLS = ["dnf", "rpm", "/usr/bin/time", "docker-registry", "skopeo"]

# name, recipe, the request both sides install (the recipe's install list), and
# whether minibuild builds the recipe reduced to that request (install = the
# request, no `prefer`): then only the built-in minimal providers choose.
CASES = [
    ("busybox", "recipes/busybox.toml", ["busybox"], False),
    ("distroless-base", "recipes/distroless-base.toml",
     ["glibc", "bash", "coreutils-single", "glibc-minimal-langpack"], False),
    ("nginx", "recipes/nginx.toml", ["nginx", "glibc-minimal-langpack", "coreutils-single"], False),
    ("nginx-bare", "recipes/nginx.toml", ["nginx"], True),
]

# What the classic result carries that an image does not need; the issue
# compares against the classic rootfs minus these. Debian's rpm (which dnf
# uses here) keeps its database in ~/.rpmdb, so root/.rpmdb in the installroot.
CLASSIC_DROP = ["var/lib/rpm", "root/.rpmdb", "var/lib/dnf", "var/cache", "var/log"]


def tree_stats(root, drop=()):
    files = 0
    size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if any(rel == d or rel.startswith(d + "/") for d in drop):
            dirnames[:] = []
            continue
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            files += 1
            if not os.path.islink(p):
                size += st.st_size
    return files, size


def layer_stats(layout):
    """Files, uncompressed bytes and compressed bytes of the single layer of an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]
    manifest = json.loads(blob(desc["digest"]).read_text())
    if "layers" not in manifest:  # an index: take the first platform
        manifest = json.loads(blob(manifest["manifests"][0]["digest"]).read_text())
    layer = manifest["layers"][0]
    files = size = 0
    with tarfile.open(blob(layer["digest"]), "r:*") as t:
        for m in t:
            if not m.isdir():
                files += 1
                size += m.size if m.isfile() else 0
    return files, size, layer["size"]


def bare_recipe(tmp, recipe, request):
    """The recipe with `install = request` and no `prefer`, in tmp beside
    links to everything else in its directory (keys, copied files)."""
    src = ROOT / recipe
    d = tmp / "recipe"
    d.mkdir()
    for other in src.parent.iterdir():
        if other != src:
            (d / other.name).symlink_to(other)
    lines = []
    for line in src.read_text().splitlines():
        key = line.split("=")[0].strip()
        if key == "prefer":
            continue
        if key == "install":
            line = "install = " + json.dumps(request)
        lines.append(line)
    out = d / src.name
    out.write_text("\n".join(lines) + "\n")
    return out


def planned(binary, recipe, url, cache):
    """(name, installed size) of each package `minibuild plan` chooses."""
    proc = subprocess.run(
        [binary, "plan", str(recipe), "--json", "--no-lock", "--cache-dir", str(cache)] + repo_args(url, recipe),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "1"})
    if proc.returncode != 0:
        sys.exit(f"minibuild plan {recipe} failed:\n{proc.stderr[-3000:]}")
    return {p["name"]: p["installed_size"] for p in json.loads(proc.stdout)[0]["packages"]}


def rpm_installed(root):
    """(name, installed size) of each package dnf put in root, from its rpmdb."""
    proc = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME} %{SIZE}\\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        sys.exit(f"rpm -qa in {root} failed:\n{proc.stderr[-3000:]}")
    return {name: int(size) for name, size in (line.split() for line in proc.stdout.splitlines())}


def installed(minibuild_pkgs, minibuild_tree, classic_pkgs, classic_tree):
    """The same request's installed size on both sides."""
    return {
        "minibuild_packages": len(minibuild_pkgs),
        "minibuild_rpm_installed_bytes": sum(minibuild_pkgs.values()),
        "minibuild_tree_bytes": minibuild_tree,
        "dnf_packages": len(classic_pkgs),
        "dnf_rpm_installed_bytes": sum(classic_pkgs.values()),
        "dnf_tree_bytes": classic_tree,
        "only_minibuild": sorted(set(minibuild_pkgs) - set(classic_pkgs)),
        "only_dnf": sorted(set(classic_pkgs) - set(minibuild_pkgs)),
    }


def classic(tmp, url, packages):
    """dnf --installroot, then tar+gzip of the root as one OCI layer."""
    root = tmp / "classic-root"
    cache = tmp / "classic-dnf-cache"
    argv = [
        "dnf", "-y", "-q", f"--installroot={root}", "--releasever=40",
        "--setopt=install_weak_deps=False", "--nodocs", f"--setopt=cachedir={cache}",
        "--setopt=reposdir=/dev/null", "--setopt=keepcache=True",
        f"--repofrompath=fixture,{url}/repo/x86_64/", "--repo=fixture", "--setopt=fixture.gpgcheck=0",
        "install",
    ] + packages
    t_dnf, _ = timed(argv)
    layer = tmp / "classic-layer.tar.gz"
    tar_script = (
        "import sys, tarfile; "
        "t = tarfile.open(sys.argv[2], 'w:gz', compresslevel=6); "
        "t.add(sys.argv[1], arcname='.'); t.close()"
    )
    t_tar, _ = timed([sys.executable, "-c", tar_script, str(root), str(layer)])
    files, size = tree_stats(root)
    files_img, size_img = tree_stats(root, CLASSIC_DROP)
    return {
        "wall_s": round(t_dnf["wall_s"] + t_tar["wall_s"], 3),
        "cpu_s": round(t_dnf["cpu_s"] + t_tar["cpu_s"], 3),
        "peak_rss_kib": max(t_dnf["peak_rss_kib"], t_tar["peak_rss_kib"]),
        "rootfs_bytes": size,
        "rootfs_files": files,
        "rootfs_bytes_without_rpmdb": size_img,
        "layer_bytes": layer.stat().st_size,
        "packages": rpm_installed(root),
    }


def repo_args(url, recipe):
    """The example recipe's `fedora` repo on the unsigned fixture, its `updates` repo left out."""
    argv = ["--baseurl", f"fedora={url}/repo/$basearch/", "--no-gpgcheck", "fedora"]
    if any(r["name"] == "updates" for r in tomllib.loads(recipe.read_text())["repo"]):
        argv += ["--disablerepo", "updates"]
    return argv


def minibuild(binary, tmp, url, recipe, cache, tag):
    out = tmp / f"mb-{tag}.oci"
    argv = [
        binary, "build", str(recipe), "--format", "oci", "-o", str(out), "--cache-dir", str(cache),
        "--no-lock", "-q",
    ] + repo_args(url, recipe)
    t, stdout = timed(argv, env={**os.environ, "CI": "1"})
    files, size, compressed = layer_stats(out)
    t.update({"rootfs_bytes": size, "rootfs_files": files, "layer_bytes": compressed,
              "digest": stdout.strip().splitlines()[-1]})
    shutil.rmtree(out)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minibuild")
    ap.add_argument("fixtures")
    ap.add_argument("--out", default=str(ROOT / "tests" / "bench" / "results.json"))
    ap.add_argument("--only", choices=["cases", "fleet"],
                    help="run only the per-recipe cases or only the fleet (default: both)")
    args = ap.parse_args()
    for tool in TOOLS:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run `make deps-bench`")
    server, url, counter = serve(Path(args.fixtures))
    results = {"machine": {"nproc": os.cpu_count()}, "cases": {}}
    out = Path(args.out)
    if args.only and out.is_file():
        # Keep the part not run this time.
        results = {**json.loads(out.read_text()), "machine": results["machine"]}
    try:
        if args.only != "cases":
            results["fleet"] = fleet(args.minibuild, url, counter)
        for name, recipe, packages, bare in ([] if args.only == "fleet" else CASES):
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as d:
                tmp = Path(d)
                cache = tmp / "cache"
                recipe = bare_recipe(tmp, recipe, packages) if bare else ROOT / recipe
                cold = minibuild(args.minibuild, tmp, url, recipe, cache, "cold")
                warm = minibuild(args.minibuild, tmp, url, recipe, cache, "warm")
                assert cold["digest"] == warm["digest"], "cold and warm builds differ"
                cl = classic(tmp, url, packages)
                classic_pkgs = cl.pop("packages")
                mb_pkgs = planned(args.minibuild, recipe, url, cache)
                results["cases"][name] = {
                    "request": packages,
                    "installed": installed(mb_pkgs, cold["rootfs_bytes"], classic_pkgs,
                                           cl["rootfs_bytes_without_rpmdb"]),
                    "minibuild_cold": cold,
                    "minibuild_warm": warm,
                    "classic": cl,
                    "ratios": {
                        "cold_wall_speedup": ratio(cl["wall_s"], cold["wall_s"]),
                        "warm_wall_speedup": ratio(cl["wall_s"], warm["wall_s"]),
                        "cold_cpu": ratio(cold["cpu_s"], cl["cpu_s"]),
                        "cold_peak_rss": ratio(cold["peak_rss_kib"], cl["peak_rss_kib"]),
                        "rootfs_bytes": ratio(cold["rootfs_bytes"], cl["rootfs_bytes_without_rpmdb"]),
                        "layer_bytes": ratio(cold["layer_bytes"], cl["layer_bytes"]),
                        "files": ratio(cold["rootfs_files"], cl["rootfs_files"]),
                    },
                }
    finally:
        server.shutdown()
    if args.only != "fleet":
        print_table(results)
    if "fleet" in results:
        print_fleet(results["fleet"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)
    print(f"\nwrote {out}")


def print_table(results):
    mib = lambda b: f"{b / 1048576:.1f}M"
    header = f"{'case':16} {'what':15} {'wall s':>8} {'cpu s':>7} {'rss MiB':>8} {'rootfs':>8} {'layer':>8} {'files':>6}"
    print(header)
    print("-" * len(header))
    for name, c in results["cases"].items():
        for what in ["minibuild_cold", "minibuild_warm", "classic"]:
            r = c[what]
            rootfs = r.get("rootfs_bytes_without_rpmdb", r["rootfs_bytes"])
            print(f"{name:16} {what:15} {r['wall_s']:8.2f} {r['cpu_s']:7.2f} {r['peak_rss_kib'] / 1024:8.1f} "
                  f"{mib(rootfs):>8} {mib(r['layer_bytes']):>8} {r['rootfs_files']:6}")
        rt = c["ratios"]
        print(f"{name:16} {'ratios':15} cold {rt['cold_wall_speedup']}x faster, warm {rt['warm_wall_speedup']}x faster, "
              f"rootfs {rt['rootfs_bytes']}, layer {rt['layer_bytes']}, rss {rt['cold_peak_rss']}")
    print("\ninstalled size, same request (weak deps off, nodocs): packages, sum of their RPM installed sizes, "
          "tree bytes\n(minibuild: the image as shipped, its rpmdb included; dnf: the installroot less its rpmdb, "
          "dnf state, caches and logs)")
    header = f"{'case':16} {'request':54} {'minibuild':>22} {'dnf --installroot':>22}"
    print(header)
    print("-" * len(header))
    for name, c in results["cases"].items():
        i = c["installed"]
        side = lambda who: (f"{i[who + '_packages']:3} {mib(i[who + '_rpm_installed_bytes']):>8} "
                            f"{mib(i[who + '_tree_bytes']):>8}")
        print(f"{name:16} {' '.join(c['request']):54} {side('minibuild'):>22} {side('dnf'):>22}")
        if i["only_minibuild"] or i["only_dnf"]:
            print(f"{'':16}   only minibuild: {' '.join(i['only_minibuild']) or '-'};"
                  f" only dnf: {' '.join(i['only_dnf']) or '-'}")


if __name__ == "__main__":
    main()
