#!/usr/bin/env python3
"""Resolver benchmark on a Fedora-shaped synthetic repo: minibuild next to dnf, same run.

Usage: resolve-bench.py MINIBUILD_BINARY [--dir DIR] [--packages N]

Generates DIR/repo with make-synthetic-repo.py (once; reused while its repomd.xml exists), then
prints:
  - minibuild cold load (empty cache: copy + verify + XML parse + parsed-cache write), as ms and
    MB/s of uncompressed primary.xml;
  - minibuild warm load (the parsed-metadata cache), best and median of the 6 runs below;
  - minibuild resolve time for an nginx-like request and a 50-package request, best of 3;
  - minibuild peak RSS (of the 50-package run);
  - libsolv's testsolv on the same 50-package request (its .solv made once by repo2solv, not
    timed), peak RSS and CPU, next to minibuild's warm `plan` (issue 17: RSS at or below
    libsolv's, CPU below it), best of 3 each;
  - dnf makecache with a fresh cachedir (wall, peak RSS), and `dnf --assumeno install` wall
    time for the same two requests.
The timings come from the "loaded in"/"Resolved in" lines `minibuild plan` prints on stderr.
Targets (issue): warm load < 100 ms, resolve < 50 ms, RSS < 300 MB, cold parse ≥ 5× faster
than dnf's first metadata load. Not part of `make test` (`make bench-resolve`).

Then the long differential run against libsolv's testsolv (tests/resolve_differential.rs, issue
17): DIFF_SEEDS random requests of up to 30 names on this repo, and as many on the small synthetic
repo and the corpus repodata; it prints the agreement figures and fails on any difference.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd, cpu=None, **kw):
    """Run cmd under /usr/bin/time; return (wall seconds, peak RSS KiB, stderr). `cpu`, a list,
    gets the user + system seconds appended; stdout is in the returned process's `.stdout`."""
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "@@rss %M @@cpu %U %S"] + cmd, capture_output=True, text=True,
                       **kw)
    wall = time.monotonic() - start
    m = re.search(r"@@rss (\d+) @@cpu ([\d.]+) ([\d.]+)", p.stderr)
    if p.returncode != 0 and "--assumeno" not in cmd:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    if cpu is not None and m:
        cpu.append(float(m.group(2)) + float(m.group(3)))
    timed.stdout = p.stdout
    return wall, int(m.group(1)) if m else 0, p.stderr


def ms(pattern, text):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"no `{pattern}` in minibuild's stderr:\n{text}")
    return float(m.group(1))


def recipe(path, repo, install):
    path.write_text(
        '[image]\narch = ["x86_64"]\n[[repo]]\nname = "synth"\n'
        f'baseurl = "file://{repo}"\ngpgcheck = false\n[packages]\ninstall = {json.dumps(install)}\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minibuild")
    ap.add_argument("--dir", default="target/bench-resolve")
    ap.add_argument("--packages", type=int, default=75000)
    ap.add_argument("--diff-seeds", type=int, default=1000)
    a = ap.parse_args()
    d = Path(a.dir).resolve()
    repo = d / "repo"
    if not (repo / "repodata/repomd.xml").exists():
        subprocess.run([sys.executable, HERE / "make-synthetic-repo.py", repo, "--packages", str(a.packages)],
                       check=True)
    open_size = int(re.search(r'type="primary">.*?<open-size>(\d+)</open-size>',
                              (repo / "repodata/repomd.xml").read_text(), re.S).group(1))
    nginx = ["nginx"]
    fifty = ["nginx", "bash", "coreutils-single"] + [f"pkg-{i:05d}" for i in range(1000, 75000, 1500)][:47]
    tmp = Path(tempfile.mkdtemp(prefix="resolve-bench-"))
    try:
        r1, r50 = tmp / "nginx.toml", tmp / "fifty.toml"
        recipe(r1, repo, nginx)
        recipe(r50, repo, fifty)
        cache = tmp / "cache"
        plan = lambda r: [a.minibuild, "plan", str(r), "--no-lock", "--cache-dir", str(cache)]
        _, _, err = timed(plan(r1))
        cold = ms(r"loaded in ([\d.]+) ms", err)
        warm, res1, res50, rss50, cpu50 = [], [], [], [], []
        for _ in range(3):
            _, _, err = timed(plan(r1))
            warm.append(ms(r"loaded in ([\d.]+) ms", err))
            res1.append(ms(r"Resolved in ([\d.]+) ms", err))
            _, rss_, err = timed(plan(r50), cpu=cpu50)
            warm.append(ms(r"loaded in ([\d.]+) ms", err))
            res50.append(ms(r"Resolved in ([\d.]+) ms", err))
            rss50.append(rss_)
        rss = max(rss50)
        planned = int(ms(r"(\d+) packages: ", err))

        # libsolv on the same request: its own binary cache (.solv, like our parsed cache) and
        # testsolv's solve, with weak deps off as in the recipe.
        solv = d / "repo.solv"
        if not solv.exists() or solv.stat().st_mtime < (repo / "repodata/repomd.xml").stat().st_mtime:
            subprocess.run(["repo2solv", "-o", str(solv), str(repo)], check=True)
        # testsolv reads the .solv relative to the testcase's directory.
        case = d / "fifty.t"
        case.write_text(f"repo r 0 solv {solv.name}\nsystem :x86_64 rpm\nsolverflags ignorerecommended\n"
                        + "".join(f"job install name {n}\n" for n in fifty)
                        + "result transaction,problems <inline>\n")
        ts_rss, ts_cpu = [], []
        for _ in range(3):
            _, rss_, _ = timed(["testsolv", "-r", str(case)], cpu=ts_cpu)
            ts_rss.append(rss_)
        ts_planned = sum(1 for line in timed.stdout.splitlines() if line.startswith("install "))
        if ts_planned == 0:
            sys.exit(f"testsolv installed nothing for {case}:\n{timed.stdout[:2000]}")

        dnfc = tmp / "dnf-cache"
        dnf = ["dnf", "-q", "--releasever=40", "--setopt=reposdir=/dev/null", f"--setopt=cachedir={dnfc}",
               f"--repofrompath=s,file://{repo}", "--repo=s", "--setopt=s.gpgcheck=0",
               "--setopt=install_weak_deps=False", f"--installroot={tmp / 'root'}"]
        mk_wall, mk_rss, _ = timed(dnf + ["makecache"])
        d1, _, _ = timed(dnf + ["--assumeno", "install"] + nginx)
        d50, _, _ = timed(dnf + ["--assumeno", "install"] + fifty)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mb = open_size / 1e6
    rows = [
        ("metadata load, cold", f"{cold:.0f} ms ({mb / (cold / 1e3):.0f} MB/s)",
         f"makecache {mk_wall * 1e3:.0f} ms ({mb / mk_wall:.0f} MB/s)",
         f"{mk_wall * 1e3 / cold:.1f}x faster (target >= 5x)"),
        ("metadata load, warm", f"{min(warm):.0f} ms (median {statistics.median(warm):.0f} of {len(warm)})", "",
         "target < 100 ms"),
        ("resolve nginx", f"{min(res1):.0f} ms", f"install --assumeno {d1 * 1e3:.0f} ms (whole command)",
         "target < 50 ms"),
        ("resolve 50 packages", f"{min(res50):.0f} ms", f"install --assumeno {d50 * 1e3:.0f} ms (whole command)",
         "target < 50 ms"),
        ("peak RSS", f"{rss / 1024:.0f} MB", f"makecache {mk_rss / 1024:.0f} MB", "target < 300 MB"),
    ]
    print(f"synthetic repo: {repo} ({mb:.0f} MB primary.xml)")
    print(f"{'':22} {'minibuild':28} {'dnf':44} note")
    for r in rows:
        print(f"{r[0]:22} {r[1]:28} {r[2]:44} {r[3]}")

    print("\n50-package request, next to libsolv (testsolv on its .solv; best of 3 each):")
    print(f"{'':22} {'minibuild plan (warm)':28} {'testsolv':28} note")
    lib_rows = [
        ("peak RSS", f"{min(rss50) / 1024:.0f} MiB", f"{min(ts_rss) / 1024:.0f} MiB",
         "target: minibuild <= testsolv"),
        ("CPU (user + sys)", f"{min(cpu50) * 1e3:.0f} ms", f"{min(ts_cpu) * 1e3:.0f} ms",
         "target: minibuild < testsolv"),
        ("packages", f"{planned}", f"{ts_planned}", "same set: the differential run below"),
    ]
    for r in lib_rows:
        print(f"{r[0]:22} {r[1]:28} {r[2]:28} {r[3]}")

    print(f"\ndifferential against testsolv, {a.diff_seeds} requests per repo (tests/resolve_differential.rs):",
          flush=True)
    env = dict(os.environ, MINIBUILD_DIFF_REPO=str(repo), MINIBUILD_DIFF_SEEDS=str(a.diff_seeds))
    p = subprocess.run(["cargo", "test", "--release", "--locked", "--test", "resolve_differential", "--",
                        "--include-ignored", "--nocapture", "--test-threads", "1"],
                       env=env, capture_output=True, text=True)
    for line in p.stderr.splitlines() + p.stdout.splitlines():
        if "requests on" in line or line.startswith(("request ", "  only", "  minibuild")):
            print(line)
    if p.returncode != 0:
        sys.exit(f"differential run failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")


if __name__ == "__main__":
    main()
