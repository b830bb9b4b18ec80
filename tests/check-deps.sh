#!/usr/bin/env bash
# Proves that `make deps-test` installs every external tool the tests run.
#
# Collects the tools the Rust sources and tests call by name (Command::new("X"),
# require_tool("X"), require("X")), looks each up in TOOL_PACKAGES below, and
# fails, naming the tool, when one has no entry or its package is not in
# FIXTURE_PKGS/TEST_PKGS of tests/deps.mk. Where the tool is installed, it also
# checks with dpkg that the listed package really ships it, so the table
# cannot drift. The same for the programs `make bench` runs (the TOOLS line
# of tests/bench/*.py) against the packages `make deps-bench` installs.
# Run by .ci/run before `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> the Debian 12 package that provides it.
declare -A TOOL_PACKAGES=(
  [/bin/busybox]=busybox-static
  [/usr/bin/time]=time
  [chroot]=coreutils
  [cp]=coreutils
  [cpio]=cpio
  [curl]=curl
  [createrepo_c]=createrepo-c
  [db5.3_load]=db5.3-util
  [dnf]=dnf
  [docker-registry]=docker-registry
  [find]=findutils
  [gcc]=gcc
  [getcap]=libcap2-bin
  [gpg]=gpg
  [gpgconf]=gpgconf
  [gzip]=gzip
  [htpasswd]=apache2-utils
  [kill]=procps
  [ldconfig]=libc-bin
  [mkfifo]=coreutils
  [mount]=mount
  [openssl]=openssl
  [podman]=podman
  [repo2solv]=libsolv-tools
  [rpm]=rpm
  [rpmbuild]=rpm
  [rpmsign]=rpm
  [rpm2cpio]=rpm2cpio
  [setpriv]=util-linux
  [sh]=dash
  [skopeo]=skopeo
  [sleep]=coreutils
  [tar]=tar
  [testsolv]=libsolv-tools
  [umoci]=umoci
  [umount]=mount
  [unshare]=util-linux
)

listed=" $(make -s --no-print-directory -f tests/deps.mk print-test-pkgs) "
tools=$(grep -rhoE --include='*.rs' '(Command::new|require_tool|require)\("[^"]+"\)' src tests \
  | sed -E 's/.*\("([^"]+)"\)/\1/' | sort -u)

# The package dpkg says ships the installed TOOL (usrmerge: try /usr-less paths too).
owner() {
  local path
  path=$(command -v "$1") || return 0
  for p in "$path" "$(readlink -f "$path")"; do
    for v in "$p" "${p#/usr}"; do
      dpkg -S "$v" 2>/dev/null | grep -v '^diversion' | cut -d: -f1 | tr ',' '\n' | tr -d ' ' && return 0
    done
  done
}

# Tools of the Rust toolchain that builds the tests (not Debian packages). tests/msrv.rs runs
# rustup only when present, to check on the toolchain rust-version names if it is installed.
declare -A TOOLCHAIN_TOOLS=([rustup]=1)

failed=0
for tool in $tools; do
  if [ -n "${TOOLCHAIN_TOOLS[$tool]:-}" ]; then
    tools=$(grep -vx "$tool" <<<"$tools")
    continue
  fi
  pkg=${TOOL_PACKAGES[$tool]:-}
  if [ -z "$pkg" ]; then
    echo "check-deps: the tests run \`$tool\`, which tests/check-deps.sh does not map to a Debian package" >&2
    echo "  hint: add [$tool]=PACKAGE to TOOL_PACKAGES and PACKAGE to TEST_PKGS in tests/deps.mk" >&2
    failed=1
    continue
  fi
  if [[ $listed != *" $pkg "* ]]; then
    echo "check-deps: the tests run \`$tool\`, but its package $pkg is not installed by tests/deps.mk" >&2
    echo "  hint: add $pkg to TEST_PKGS in tests/deps.mk" >&2
    failed=1
    continue
  fi
  if command -v "$tool" >/dev/null && command -v dpkg >/dev/null; then
    owners=$(owner "$tool")
    if [ -n "$owners" ] && ! grep -qx "$pkg" <<<"$owners"; then
      echo "check-deps: \`$tool\` is shipped by $(echo $owners), not $pkg as tests/check-deps.sh says" >&2
      failed=1
    fi
  fi
done

# The benchmarks (Python): each script's `TOOLS = [...]` line, against deps-bench.
bench_listed=" $(make -s --no-print-directory -f tests/deps.mk print-bench-pkgs) "
bench_tools=$(grep -hE '^TOOLS = \[' tests/bench/*.py | grep -oE '"[^"]+"' | tr -d '"' | sort -u)
[ -n "$bench_tools" ] || { echo "check-deps: no TOOLS line in tests/bench/*.py" >&2; failed=1; }
for tool in $bench_tools; do
  pkg=${TOOL_PACKAGES[$tool]:-}
  if [ -z "$pkg" ]; then
    echo "check-deps: the benchmarks run \`$tool\`, which tests/check-deps.sh does not map to a Debian package" >&2
    echo "  hint: add [$tool]=PACKAGE to TOOL_PACKAGES and PACKAGE to BENCH_PKGS in tests/deps.mk" >&2
    failed=1
  elif [[ $bench_listed != *" $pkg "* ]]; then
    echo "check-deps: the benchmarks run \`$tool\`, but its package $pkg is not installed by \`make deps-bench\`" >&2
    echo "  hint: add $pkg to BENCH_PKGS in tests/deps.mk" >&2
    failed=1
  elif command -v "$tool" >/dev/null && command -v dpkg >/dev/null; then
    owners=$(owner "$tool")
    if [ -n "$owners" ] && ! grep -qx "$pkg" <<<"$owners"; then
      echo "check-deps: \`$tool\` is shipped by $(echo $owners), not $pkg as tests/check-deps.sh says" >&2
      failed=1
    fi
  fi
done

[ "$failed" = 0 ] && echo "check-deps: $(wc -w <<<"$tools") tools, each installed by tests/deps.mk;" \
  "$(wc -w <<<"$bench_tools") benchmark tools, each installed by \`make deps-bench\`"
exit "$failed"
