#!/usr/bin/env python3
"""A Fedora-shaped synthetic rpm-md repository (metadata only) for resolver benchmarks.

Usage: make-synthetic-repo.py OUT_DIR [--packages N] [--seed S]

Writes OUT_DIR/repodata/{primary.xml.zst, filelists.xml.zst, repomd.xml}. No RPMs: the
benchmarks only load metadata and resolve (dnf with --assumeno, minibuild plan). Deterministic
for a given N and seed.

Shape (Fedora 40 x86_64 Everything has ~75,000 packages; per package its primary lists on
average ~7 provides, ~9 requires, ~3 files, and some Recommends/Supplements):
  - package i ("pkg-NNNNN", plus a few real-looking names such as nginx, glibc, openssl-libs
    at fixed indices) provides its name, `libNNNNN.so.1()(64bit)`, a few virtual capabilities
    and, for 1 in 20, a versioned `python3dist(...) = V`;
  - requires point only at lower-numbered packages (so everything is installable): library
    sonames, some `/usr/bin/...` file deps, 1 in 25 a rich `(a or b)` / `(a if b)` dep. The
    first 500 are a "core" (glibc, openssl, ...) that depends sparsely on itself; the others
    depend mostly on the core and otherwise on earlier packages of their own block of 50 (an
    upstream project's subpackages), so a request's closure is tens to hundreds of packages,
    as in Fedora, not the whole repo;
  - 1 in 50 has two versions (older + newer); 1 in 200 has an epoch;
  - 1 in 30 Recommends a lower package, 1 in 100 Supplements one.
"""

import argparse
import hashlib
import random
import subprocess
import time
from pathlib import Path



def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


SPECIAL = {0: "glibc", 1: "glibc-common", 2: "bash", 3: "openssl-libs", 4: "zlib-ng-compat",
           5: "pcre2", 6: "libxcrypt", 7: "coreutils-single", 8: "systemd-libs", 9: "nginx-filesystem",
           10: "nginx-core", 11: "nginx", 12: "filesystem", 13: "setup", 14: "ca-certificates"}


def name_of(i):
    return SPECIAL.get(i, f"pkg-{i:05d}")


CORE = 500


def pick(rnd, i):
    """A lower-numbered package for package i to depend on (see the module doc)."""
    if i < CORE or rnd.random() < 0.8:
        return int(min(i, CORE) * rnd.random() ** 3)
    return rnd.randrange(i // 50 * 50, i) if i % 50 else int(CORE * rnd.random() ** 3)


def entry(name, flags=None, epoch="0", ver=None, rel=None):
    if flags is None:
        return f'<rpm:entry name="{esc(name)}"/>'
    r = f' rel="{rel}"' if rel else ""
    return f'<rpm:entry name="{esc(name)}" flags="{flags}" epoch="{epoch}" ver="{ver}"{r}/>'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--packages", type=int, default=75000)
    ap.add_argument("--seed", type=int, default=40)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    out = Path(a.out)
    (out / "repodata").mkdir(parents=True, exist_ok=True)
    n = a.packages

    pkgs = []  # (name, epoch, ver, rel, provides, requires, files, recommends, supplements)
    for i in range(n):
        name = name_of(i)
        versions = [("1.0", "1.fc40")]
        if i % 50 == 7:
            versions = [("0.9", "3.fc40"), ("1.0", "1.fc40")]
        epoch = "1" if i % 200 == 13 else "0"
        lib = f"lib{i:05d}.so.1()(64bit)"
        files = [f"/usr/bin/{name}"] if i % 3 == 0 else []
        if i % 7 == 0:
            files.append(f"/etc/{name}.conf")
        files.append(f"/usr/lib64/lib{i:05d}.so.1")
        deps = []
        if i > 20:
            k = rnd.randint(3, 12) if i >= CORE else rnd.randint(1, 4)
            for _ in range(k):
                j = pick(rnd, i)
                deps.append(entry(f"lib{j:05d}.so.1()(64bit)"))
            if i % 4 == 0:
                j = pick(rnd, i) // 3 * 3  # packages at multiples of 3 have /usr/bin/NAME
                deps.append(entry(f"/usr/bin/{name_of(j)}"))
            if i % 25 == 0:
                x, y = pick(rnd, i), pick(rnd, i)
                deps.append(entry(f"({name_of(x)} or {name_of(y)})"))
            if i % 25 == 12:
                x, y = pick(rnd, i), pick(rnd, i)
                deps.append(entry(f"({name_of(x)} if {name_of(y)})"))
            deps.append(entry(name_of(rnd.randrange(0, 15)), "GE", "0", "0.1"))
        elif i > 0:
            deps = [entry(f"lib{j:05d}.so.1()(64bit)") for j in range(max(0, i - 3), i)]
        deps.append(entry("rpmlib(CompressedFileNames)", "LE", "0", "3.0.4", "1"))
        rec = [entry(name_of(pick(rnd, i)))] if i % 30 == 0 and i else []
        sup = [entry(f"({name_of(pick(rnd, i))} and {name_of(pick(rnd, i))})")] \
            if i % 100 == 0 and i else []
        for ver, rel in versions:
            provides = [entry(name, "EQ", epoch, ver, rel), entry(name + "(x86-64)", "EQ", epoch, ver, rel),
                        entry(lib), entry(f"config({name})", "EQ", epoch, ver, rel)]
            for v in range(rnd.randint(0, 5)):
                provides.append(entry(f"cap-{i:05d}-{v}"))
            if i % 20 == 0:
                provides.append(entry(f"python3dist(mod{i})", "EQ", "0", ver))
            pkgs.append((name, epoch, ver, rel, provides, deps, files, rec, sup))

    t = int(time.time())
    prim = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
            f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(pkgs)}">\n']
    fl = ['<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" '
          f'packages="{len(pkgs)}">\n']
    for (name, epoch, ver, rel, provides, requires, files, rec, sup) in pkgs:
        nevra = f"{name}-{ver}-{rel}.x86_64"
        pkgid = hashlib.sha256(f"{epoch}:{nevra}".encode()).hexdigest()
        first = name[0]
        prim.append(
            f'<package type="rpm"><name>{name}</name><arch>x86_64</arch>'
            f'<version epoch="{epoch}" ver="{ver}" rel="{rel}"/>'
            f'<checksum type="sha256" pkgid="YES">{pkgid}</checksum>'
            f'<summary>Synthetic package {name}</summary>'
            f'<description>A synthetic package shaped like a Fedora one, for resolver benchmarks.</description>'
            f'<packager>Fedora Project</packager><url>https://example.invalid/{name}</url>'
            f'<time file="{t}" build="{t}"/><size package="123456" installed="456789" archive="460000"/>'
            f'<location href="Packages/{first}/{nevra}.rpm"/>'
            f'<format><rpm:license>MIT</rpm:license><rpm:vendor>Fedora Project</rpm:vendor>'
            f'<rpm:group>Unspecified</rpm:group><rpm:buildhost>bench.invalid</rpm:buildhost>'
            f'<rpm:sourcerpm>{name}-{ver}-{rel}.src.rpm</rpm:sourcerpm>'
            f'<rpm:header-range start="4504" end="20000"/>'
            f'<rpm:provides>{"".join(provides)}</rpm:provides>'
            f'<rpm:requires>{"".join(requires)}</rpm:requires>'
            + (f'<rpm:recommends>{"".join(rec)}</rpm:recommends>' if rec else "")
            + (f'<rpm:supplements>{"".join(sup)}</rpm:supplements>' if sup else "")
            + "".join(f"<file>{f}</file>" for f in files if f.startswith(("/usr/bin/", "/etc/")))
            + "</format></package>\n")
        share = [f"/usr/share/doc/{name}/README", f"/usr/share/licenses/{name}/LICENSE"]
        fl.append(f'<package pkgid="{pkgid}" name="{name}" arch="x86_64">'
                  f'<version epoch="{epoch}" ver="{ver}" rel="{rel}"/>'
                  + "".join(f"<file>{f}</file>" for f in files + share) + "</package>\n")
    prim.append("</metadata>\n")
    fl.append("</filelists>\n")

    data = []
    for kind, parts in (("primary", prim), ("filelists", fl)):
        raw = "".join(parts).encode()
        comp = subprocess.run(["zstd", "-q", "-10", "-T0", "-c"], input=raw, check=True,
                              capture_output=True).stdout
        sha = hashlib.sha256(comp).hexdigest()
        href = f"repodata/{sha}-{kind}.xml.zst"
        for old in (out / "repodata").glob(f"*-{kind}.xml.zst"):
            old.unlink()
        (out / href).write_bytes(comp)
        data.append(
            f'<data type="{kind}"><checksum type="sha256">{sha}</checksum>'
            f'<open-checksum type="sha256">{hashlib.sha256(raw).hexdigest()}</open-checksum>'
            f'<location href="{href}"/><timestamp>{t}</timestamp><size>{len(comp)}</size>'
            f'<open-size>{len(raw)}</open-size></data>\n')
    (out / "repodata/repomd.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" '
        f'xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>{t}</revision>\n' + "".join(data) + "</repomd>\n")
    print(f"{len(pkgs)} packages, primary {len(''.join(prim)) / 1e6:.1f} MB uncompressed")


if __name__ == "__main__":
    main()
