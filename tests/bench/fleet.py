"""The fleet part of `make bench` (issue 18): ten app recipes on one core.

  - one multi-recipe run against ten separate runs, from empty caches
    (the separate runs share theirs, one after another, as a CI machine would);
  - the registry: the ten apps pushed as single-layer images and as images
    on a shared core layer (`[image] base = "core.toml"`), each set to a fresh
    docker-registry: the blob bytes it stores, and the bytes a node that has
    the first nine images pulls for the tenth;
  - a cache shared by CI machines: machine A builds the apps on the core with
    `--cache-repo`, then machine B (an empty cache dir) builds them without
    and with it: wall, CPU, and what the mirror served.
"""

import json
import os
import tempfile
from pathlib import Path

from benchlib import ratio, timed
from registry import Registry

# What every image installs: the core recipe's packages.
FLEET_CORE = ["glibc", "bash", "coreutils-single", "glibc-minimal-langpack"]
# One package per app, none of them in the core's closure (an app on the core
# then has a layer of its own); nginx, the largest, is the tenth.
FLEET_EXTRAS = ["zlib", "libxcrypt", "openssl-libs", "util-linux-core", "libblkid", "libmount",
                "ca-certificates", "openssl", "busybox", "nginx"]

ENV = {**os.environ, "CI": "1"}


def repo_toml(url):
    return f'[[repo]]\nname = "fedora"\nbaseurl = "{url}/repo/$basearch/"\ngpgcheck = false\n'


def fleet_recipes(d, url, layered):
    """The ten app recipes in d: single-layer (core packages + its own), or
    on `core.toml` (its own package only), which is written beside them."""
    d.mkdir()
    if layered:
        (d / "core.toml").write_text(
            f'[image]\nname = "core"\n{repo_toml(url)}[packages]\ninstall = {json.dumps(FLEET_CORE)}\n')
    paths = []
    for i, extra in enumerate(FLEET_EXTRAS):
        p = d / f"app{i:02}.toml"
        base = 'base = "core.toml"\n' if layered else ""
        install = [extra] if layered else FLEET_CORE + [extra]
        p.write_text(f'[image]\nname = "app{i:02}"\n{base}{repo_toml(url)}'
                     f"[packages]\ninstall = {json.dumps(install)}\n")
        paths.append(p)
    return paths


def build_each(binary, recipes, out, cache, extra=()):
    """`minibuild build` of each recipe, one after another, with one cache dir:
    summed wall and CPU, the highest RSS, and each recipe's digest."""
    out.mkdir()
    total = {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_kib": 0}
    digests = {}
    for r in recipes:
        t, stdout = timed([binary, "build", str(r), "-o", str(out / f"{r.stem}.oci.tar"),
                           "--cache-dir", str(cache), "--no-lock", "-q", *extra], env=ENV)
        total["wall_s"] += t["wall_s"]
        total["cpu_s"] += t["cpu_s"]
        total["peak_rss_kib"] = max(total["peak_rss_kib"], t["peak_rss_kib"])
        digests[r.name] = stdout.strip().splitlines()[-1]
    total.update({k: round(total[k], 3) for k in ("wall_s", "cpu_s")})
    return total, digests


def build_together(binary, recipes, out, cache, extra=()):
    """One `minibuild build a.toml b.toml …`: its times and {recipe: stdout rest}."""
    out.mkdir()
    t, stdout = timed([binary, "build", *map(str, recipes), "--output-dir", str(out),
                       "--cache-dir", str(cache), "--no-lock", "-q", *extra], env=ENV)
    lines = dict(line.split(" ", 1) for line in stdout.strip().splitlines())
    return t, {Path(k).name: v for k, v in lines.items()}


def same(what, got, want):
    if got != want:
        raise SystemExit(f"fleet: {what} differ:\n{json.dumps(got, indent=1)}\n{json.dumps(want, indent=1)}")


def runs(binary, tmp, recipes, counter):
    """Ten separate runs against one multi-recipe run (single-layer recipes)."""
    counter.reset()
    separate, digests = build_each(binary, recipes, tmp / "separate", tmp / "cache-separate")
    separate.update(counter.take())
    multi, lines = build_together(binary, recipes, tmp / "multi", tmp / "cache-multi")
    multi.update(counter.take())
    same("multi-recipe digests and separate runs' digests", lines, digests)
    return separate, multi, digests


def registry_set(binary, tmp, recipes, kind, counter):
    """Push the ten images of one kind to a fresh registry in one multi-recipe
    run (empty cache); what it stores and what the tenth image costs a node."""
    with Registry(tmp / f"registry-{kind}") as reg:
        push = ["--push", f"{reg.host}/fleet/{{name}}:1"]
        t, lines = build_together(binary, recipes, tmp / f"pushed-{kind}", tmp / f"cache-{kind}", push)
        t.update(counter.take())
        # REGISTRY/fleet/NAME:1@DIGEST; skopeo takes a tag or a digest, not both.
        refs = [lines[r.name].split("@") for r in recipes]
        digests = {r.name: digest for r, (_, digest) in zip(recipes, refs)}
        refs = [f"{tagged.rsplit(':', 1)[0]}@{digest}" for tagged, digest in refs]
        pulls, layers = zip(*(reg.pulled(ref) for ref in refs))
        stored = reg.blobs()
    for p in pulls:
        missing = set(p) - set(stored)
        if missing:
            raise SystemExit(f"fleet: {kind}: blobs a pull names are not in the registry: {sorted(missing)}")
    first_nine = set().union(*pulls[:-1])
    tenth = pulls[-1]
    return {
        "build_and_push": t,
        "digests": digests,
        "blobs_stored": len(stored),
        "bytes_stored": sum(stored.values()),
        "layers_per_image": list(layers),
        "image_bytes": [sum(p.values()) for p in pulls],
        "tenth_image_bytes": sum(tenth.values()),
        "tenth_pulled_bytes": sum(size for d, size in tenth.items() if d not in first_nine),
    }


def cache_repo(binary, tmp, recipes, counter):
    """Machine A fills the cache repo; machine B builds cold without and with it."""
    with Registry(tmp / "registry-cache") as reg:
        shared = ["--cache-repo", f"{reg.host}/ci/cache"]
        counter.reset()
        a, digests_a = build_each(binary, recipes, tmp / "machine-a", tmp / "cache-a", shared)
        a.update(counter.take())
        b_without, digests_b = build_each(binary, recipes, tmp / "machine-b", tmp / "cache-b")
        b_without.update(counter.take())
        b_with, digests_bc = build_each(binary, recipes, tmp / "machine-b-shared", tmp / "cache-b-shared",
                                        shared)
        b_with.update(counter.take())
        stored = reg.blobs()
    same("machine B's digests without --cache-repo and machine A's", digests_b, digests_a)
    same("machine B's digests with --cache-repo and machine A's", digests_bc, digests_a)
    return {
        "recipes": "the ten apps on the core, one build each, as separate CI jobs would",
        "machine_a": a,
        "machine_b_without": b_without,
        "machine_b_with": b_with,
        "cache_repo_bytes_stored": sum(stored.values()),
        "digests_match": True,
        "ratios": {
            "wall_speedup": ratio(b_without["wall_s"], b_with["wall_s"]),
            "cpu": ratio(b_with["cpu_s"], b_without["cpu_s"]),
            "mirror_bytes": ratio(b_with["mirror_bytes"], b_without["mirror_bytes"]),
        },
    }


def fleet(binary, url, counter):
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as d:
        tmp = Path(d)
        single = fleet_recipes(tmp / "single", url, layered=False)
        layered = fleet_recipes(tmp / "layered", url, layered=True)
        separate, multi, digests = runs(binary, tmp, single, counter)
        registry = {
            "single_layer": registry_set(binary, tmp, single, "single", counter),
            "shared_core": registry_set(binary, tmp, layered, "core", counter),
        }
        same("pushed single-layer digests and built ones", registry["single_layer"]["digests"], digests)
        rs, rc = registry["single_layer"], registry["shared_core"]
        registry["ratios"] = {
            "bytes_stored": ratio(rc["bytes_stored"], rs["bytes_stored"]),
            "tenth_pulled_bytes": ratio(rc["tenth_pulled_bytes"], rs["tenth_pulled_bytes"]),
        }
        return {
            "recipes": len(single),
            "core": FLEET_CORE,
            "extras": FLEET_EXTRAS,
            "separate_runs": separate,
            "one_run": multi,
            "ratios": {
                "wall_speedup": ratio(separate["wall_s"], multi["wall_s"]),
                "cpu": ratio(multi["cpu_s"], separate["cpu_s"]),
                "mirror_requests": ratio(multi["mirror_requests"], separate["mirror_requests"]),
            },
            "registry": registry,
            "cache_repo": cache_repo(binary, tmp, layered, counter),
        }


def mib(b):
    return f"{b / 1048576:.2f}"


def print_fleet(f):
    extras = f" ({' '.join(f['extras'])})" if "extras" in f else ""
    print(f"\n{f['recipes']} app recipes on one core ({' '.join(f['core'])}), each adding one package"
          f"{extras}; empty caches")
    header = f"{'':36} {'wall s':>8} {'cpu s':>7} {'rss MiB':>8} {'requests':>9} {'RPMs':>5} {'served MiB':>11}"

    def row(label, r):
        rpms = r.get("mirror_rpm_requests", "")
        print(f"{label:36} {r['wall_s']:8.2f} {r['cpu_s']:7.2f} {r['peak_rss_kib'] / 1024:8.1f} "
              f"{r['mirror_requests']:9} {rpms:>5} {mib(r['mirror_bytes']):>11}")

    print(header)
    print("-" * len(header))
    row(f"{f['recipes']} separate runs", f["separate_runs"])
    row("one multi-recipe run", f["one_run"])
    rt = f["ratios"]
    print(f"{'ratios':36} one run {rt['wall_speedup']}x faster, cpu {rt['cpu']}, requests {rt['mirror_requests']}")

    reg = f.get("registry")
    if reg:
        print(f"\nthe {f['recipes']} images in a fresh docker-registry (pushed by one multi-recipe run, "
              "empty cache); the 10th image pulled by a node that has the first nine")
        header = (f"{'':36} {'layers':>6} {'blobs':>6} {'stored MiB':>11} {'image MiB':>10} "
                  f"{'10th pulled MiB':>16} {'wall s':>7} {'cpu s':>6}")
        print(header)
        print("-" * len(header))
        for key, label in [("single_layer", "single-layer images"),
                           ("shared_core", "on a shared core (base = core.toml)")]:
            r = reg[key]
            print(f"{label:36} {r['layers_per_image'][-1]:6} {r['blobs_stored']:6} {mib(r['bytes_stored']):>11} "
                  f"{mib(r['tenth_image_bytes']):>10} {mib(r['tenth_pulled_bytes']):>16} "
                  f"{r['build_and_push']['wall_s']:7.2f} {r['build_and_push']['cpu_s']:6.2f}")
        rt = reg["ratios"]
        print(f"{'ratios':36} shared core / single-layer: stored {rt['bytes_stored']}, "
              f"10th pulled {rt['tenth_pulled_bytes']}")

    c = f.get("cache_repo")
    if c:
        print(f"\ncold build on machine B (empty cache dir) with and without --cache-repo, after machine A "
              f"filled it; {c['recipes']}")
        print(header := f"{'':36} {'wall s':>8} {'cpu s':>7} {'rss MiB':>8} {'requests':>9} {'RPMs':>5} "
                        f"{'served MiB':>11}")
        print("-" * len(header))
        row("machine A, --cache-repo", c["machine_a"])
        row("machine B, no --cache-repo", c["machine_b_without"])
        row("machine B, --cache-repo", c["machine_b_with"])
        rt = c["ratios"]
        print(f"{'ratios':36} B with the cache repo {rt['wall_speedup']}x faster, cpu {rt['cpu']}, "
              f"mirror bytes {rt['mirror_bytes']}; same digests: {c['digests_match']}; "
              f"the cache repo stores {mib(c['cache_repo_bytes_stored'])} MiB")
