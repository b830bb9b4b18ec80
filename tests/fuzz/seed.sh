#!/bin/sh
# Fill corpus/<target>/ with seeds from the fixture repos and the shared
# corpus of real RPMs and repodata. Seeds are cut to SEED_MAX bytes
# (default 64 KiB): the fuzzer mutates small inputs faster, and every
# parser's interesting part (lead, headers, first members, first packages)
# is at the start. Nothing here is committed (corpus/ is in .gitignore).
#
#   tests/fuzz/seed.sh            # from the repository root
#   MINIBUILD_FIXTURES=/path SHARED_CORPUS=/path tests/fuzz/seed.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures=${MINIBUILD_FIXTURES:-$root/target/fixtures}
shared=${SHARED_CORPUS:-$root/../shared/corpus}
max=${SEED_MAX:-65536}
per_target=${SEED_COUNT:-60}
corpus=$here/corpus

sources() { for d in "$fixtures" "$shared"; do [ -d "$d" ] && echo "$d"; done; }

# seed TARGET: files named on stdin, decompressed if needed, cut to $max,
# stored under their content hash (duplicates collapse).
seed() {
    mkdir -p "$corpus/$1"
    n=0
    while IFS= read -r f && [ "$n" -lt "$per_target" ]; do
        case "$f" in
        *.gz) cat="gzip -dc" ;;
        *.xz) cat="xz -dc" ;;
        *.bz2) cat="bzip2 -dc" ;;
        *.zst) cat="zstd -dcq" ;;
        *) cat="cat" ;;
        esac
        tmp=$corpus/.seed
        $cat "$f" 2>/dev/null | head -c "$max" >"$tmp" || true
        [ -s "$tmp" ] || continue
        mv "$tmp" "$corpus/$1/$(sha256sum "$tmp" | cut -c1-16)"
        n=$((n + 1))
    done
    echo "$1: $(ls "$corpus/$1" | wc -l) seeds"
}

rpms() { find $(sources) -name '*.rpm' -size -8M | sort; }

rpms | seed rpm_header

# Decompressed payloads (what the cpio reader sees), from small RPMs.
mkdir -p "$corpus/cpio"
for f in $(rpms | head -n "$per_target"); do
    rpm2cpio "$f" 2>/dev/null | head -c "$max" >"$corpus/.seed" || true
    [ -s "$corpus/.seed" ] && mv "$corpus/.seed" "$corpus/cpio/$(sha256sum "$corpus/.seed" | cut -c1-16)"
done
echo "cpio: $(ls "$corpus/cpio" | wc -l) seeds"

# Those payloads compressed each way rpm writes, behind the byte that picks
# the decoder (its index in rootfs::payload::Compressor::ALL).
mkdir -p "$corpus/payload"
for f in "$corpus"/cpio/*; do
    i=0
    for cmd in cat "gzip -9c" "bzip2 -9c" "xz -6c" "xz --format=lzma -6c" "zstd -19cq"; do
        { printf "\\$(printf %03o "$i")"; $cmd <"$f"; } >"$corpus/.seed" 2>/dev/null || true
        [ -s "$corpus/.seed" ] && mv "$corpus/.seed" "$corpus/payload/$(sha256sum "$corpus/.seed" | cut -c1-16)"
        i=$((i + 1))
    done
done
echo "payload: $(ls "$corpus/payload" | wc -l) seeds"

find $(sources) -name 'repomd.xml' | sort | seed repomd
find $(sources) -name '*primary.xml*' -not -name '*.zck' -not -name '*.sqlite*' | sort | seed primary
find $(sources) -name '*filelists.xml*' -not -name '*.zck' -not -name '*.sqlite*' | sort | seed filelists
find "$root/recipes" "$root/tests" $(sources) -name '*.toml' -not -name 'Cargo.toml' | sort | seed recipe
# A lock as `minibuild lock` writes it (version 2, with reasons and requires).
mkdir -p "$corpus/lockfile"
cat >"$corpus/lockfile/seed-v2" <<'LOCK'
version = 2

[request]
install = ["busybox"]
exclude = []
prefer = []
weak_deps = false
arch = ["x86_64"]

[[repo]]
name = "fedora"
baseurl = "file:///srv/repo/$basearch/"

[repo.revisions]
x86_64 = "1700000000"

[[package]]
target = "x86_64"
name = "busybox"
evr = "1:1.35.0-3.fc40"
arch = "x86_64"
repo = "fedora"
location = "Packages/b/busybox-1.35.0-3.fc40.x86_64.rpm"
checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
download_size = 1000
installed_size = 2000
build_time = 1700000000
requested = "busybox"
requires = ["glibc-2.36-9.fc40.x86_64@x86_64: libc.so.6()(64bit)"]
LOCK
find "$root/recipes" "$root/tests" $(sources) -name '*.lock' -size +0 -not -name 'Cargo.lock' | sort | seed lockfile
find $(sources) /usr/lib/sysusers.d -name '*.conf' -path '*sysusers*' 2>/dev/null | sort | seed sysusers

# Mirror documents and .repo files: the fixtures have none, so a few are
# written here, plus any .repo files the host has.
mkdir -p "$corpus/metalink" "$corpus/mirrorlist" "$corpus/repofile"
printf '<?xml version="1.0"?>\n<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager"><files><file name="repomd.xml"><verification><hash type="md5">0ffcd7798421c9a6760f3e4202cc4675</hash><hash type="sha256">d4f9ad66f7c6e000d8ebf9ec92ad2c4636547853708554d93dab672bdfd98ca1</hash></verification><mm0:alternates><mm0:alternate><verification><hash type="sha512">c076ce639b0cbac02dc24dc3e32b04fbb834ffd7de6154a23cf1b61951e3b7af1eeed541cdff08410104268f799a1cae2365d17dce4bf1f080322d9d7e66a687</hash></verification></mm0:alternate></mm0:alternates><resources><url protocol="https" preference="100">https://a.example/f/repodata/repomd.xml</url><url protocol="http" preference="99">http://b.example/f/repodata/repomd.xml?x=1&amp;y=2</url><url protocol="rsync">rsync://c.example/f/repodata/repomd.xml</url></resources></file></files></metalink>\n' >"$corpus/metalink/fedora"
printf '# mirrors\nhttps://a.example/f/$releasever/$basearch/\n\nhttp://b.example/f\nftp://c.example/\n' >"$corpus/mirrorlist/three"
printf '[fedora]\nname=Fedora $releasever\nmetalink=https://m.example/metalink?repo=fedora-$releasever&arch=$basearch\ngpgcheck=1\ngpgkey=file:///k1, file:///k2\ncountme=1\n\n[updates]\nbaseurl=https://a.example/$contentdir/${releasever}/\n  https://b.example/\npriority=10\nenabled=0\n' >"$corpus/repofile/fedora"
find /etc/yum.repos.d -name '*.repo' 2>/dev/null | sort | seed repofile
# ELF files: small host binaries and libraries (read-only use).
find /usr/bin /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -size -200k 2>/dev/null | sort | head -n 40 | seed elf

# WWW-Authenticate headers as registries send them.
mkdir -p "$corpus/challenge"
i=0
for h in 'Basic realm="Registry Realm"' \
    'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"' \
    'Bearer realm="http://127.0.0.1:5000/token"' \
    'bearer REALM="x", service=y, scope="repository:x:pull"'; do
    printf '%s' "$h" >"$corpus/challenge/seed$i"
    i=$((i + 1))
done
echo "challenge: $i seeds"

# The parsed-metadata cache codec: a count byte, then an encoding. No
# encoder is reachable from here, so start from tiny inputs and let
# coverage find the format.
mkdir -p "$corpus/codec"
printf '\001\000' >"$corpus/codec/seed0"
printf '\002\002\001\001' >"$corpus/codec/seed1"
echo "codec: 2 seeds"

# Scriptlet bodies: what real RPMs carry (rpm -qp --scripts: every
# scriptlet with its "(using INTERPRETER)" line), one RPM's per seed.
mkdir -p "$corpus/scriptlet"
for f in $(rpms); do
    rpm -qp --scripts --triggers "$f" 2>/dev/null | head -c "$max" >"$corpus/.seed" || true
    [ -s "$corpus/.seed" ] && mv "$corpus/.seed" "$corpus/scriptlet/$(sha256sum "$corpus/.seed" | cut -c1-16)"
done
rm -f "$corpus/.seed"
# And shapes from real specs the fixture RPMs lack (Fedora/Azure Linux).
printf '%s\n' 'getent group tss >/dev/null || groupadd -f -g 59 -r tss' \
    'if ! getent passwd tss >/dev/null ; then useradd -r -u 59 -g tss -d /dev/null -s /sbin/nologin -c "Account used for TPM access" tss ; fi' \
    >"$corpus/scriptlet/useradd"
printf '%s\n' '/usr/sbin/update-alternatives --install %{_libdir}/libnssckbi.so %{alt_ckbi} %{_libdir}/pkcs11/p11-kit-trust.so 30' \
    >"$corpus/scriptlet/alternatives"
printf '%s\n' "nl = '\\n'" "sh = '/bin/sh'..nl" "f = io.open('/etc/shells', 'a+')" 'if f then' '  local shells = nl..f:read("*all")..nl' '  if not shells:find(nl..sh) then f:write(sh) end' '  f:close()' 'end' \
    >"$corpus/scriptlet/shells-lua"
printf '%s\n' '[ $1 = 1 ] || exit 0' 'ln -sf empty.hwm /usr/share/cracklib/pw_dict.hwm' 'mkdir -p -m 0755 /var/log/journal' \
    >"$corpus/scriptlet/links"
echo "scriptlet: $(ls "$corpus/scriptlet" | wc -l) seeds"

# Header blobs from rpm databases (rpm's own test rpmdb.sqlite, and any
# rpmdb.sqlite in the sources): what a base image's rpmdb holds.
# rpmdb_blobs DB: each row's header blob into corpus/rpmdb_header/.
rpmdb_blobs() {
    mkdir -p "$corpus/rpmdb_header"
    python3 - "$1" "$corpus/rpmdb_header" <<'PY'
import hashlib, sqlite3, sys
db, out = sys.argv[1], sys.argv[2]
for (blob,) in sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT blob FROM Packages"):
    open(f"{out}/{hashlib.sha256(blob).hexdigest()[:16]}", "wb").write(blob)
PY
}
mkdir -p "$corpus/rpmdb_header"
for db in $(find $(sources) -name 'rpmdb.sqlite' | sort); do rpmdb_blobs "$db"; done

# A real parsed-metadata cache file and a real oci-archive, from minibuild
# itself on the fixture repo (skipped, with a note, when no binary is built).
bin=$(ls "$root/target/release/minibuild" "$root/target/debug/minibuild" 2>/dev/null | head -n 1 || true)
if [ -n "$bin" ] && [ -d "$fixtures/repo" ]; then
    work=$(mktemp -d)
    "$bin" build "$root/recipes/busybox.toml" -o "$work/busybox.tar" --cache-dir "$work/cache" \
        --rootfs "$work/root" \
        --baseurl "fedora=file://$fixtures/repo/\$basearch/" --no-gpgcheck fedora \
        --no-sbom --no-provenance -q >/dev/null 2>&1 || true
    find "$work/cache" -name '*.parsed' | sort | seed parsed_cache
    # The rpmdb minibuild writes: what a base image built by minibuild holds.
    [ -f "$work/root/var/lib/rpm/rpmdb.sqlite" ] && rpmdb_blobs "$work/root/var/lib/rpm/rpmdb.sqlite"
    # Whole archive: index.json and the manifest come after the layer in the tar.
    saved=$max max=4194304
    ls "$work/busybox.tar" 2>/dev/null | seed oci_image
    max=$saved
    rm -rf "$work"
    echo "rpmdb_header: $(ls "$corpus/rpmdb_header" | wc -l) seeds"
else
    echo "parsed_cache, oci_image: no minibuild binary or fixtures; build first (make build fixtures)"
fi

# Berkeley DB `Packages` files (rpm < 4.16, what a UBI 8 base holds), written
# by Berkeley DB's own db_load from the header blobs above, four a file, with
# 512-byte pages (so overflow chains) and with the default; skipped, with a
# note, without db_load (db5.3-util).
load=$(command -v db_load || command -v db5.3_load || true)
if [ -n "$load" ] && [ -d "$corpus/rpmdb_header" ]; then
    mkdir -p "$corpus/rpmdb_bdb"
    python3 - "$corpus/rpmdb_header" "$corpus/rpmdb_bdb" "$load" <<'PY'
import hashlib, os, struct, subprocess, sys
src, out, load = sys.argv[1:]
blobs = [open(os.path.join(src, f), "rb").read() for f in sorted(os.listdir(src))][:40]
key = lambda n: " " + struct.pack("=I", n).hex()
for i in range(0, len(blobs), 4):
    group = blobs[i : i + 4]
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "HEADER=END", key(0), key(len(group))]
    for n, blob in enumerate(group, 1):
        lines += [key(n), " " + blob.hex()]
    lines.append("DATA=END")
    for opts in (["-c", "db_pagesize=512"], []):
        tmp = os.path.join(out, ".seed")
        subprocess.run([load, "-t", "hash", *opts, tmp], input="\n".join(lines) + "\n", text=True, check=True)
        data = open(tmp, "rb").read()
        os.remove(tmp)
        open(os.path.join(out, hashlib.sha256(data).hexdigest()[:16]), "wb").write(data)
PY
    echo "rpmdb_bdb: $(ls "$corpus/rpmdb_bdb" | wc -l) seeds"
else
    echo "rpmdb_bdb: no db_load (db5.3-util) or no rpmdb_header seeds: no seeds"
fi
