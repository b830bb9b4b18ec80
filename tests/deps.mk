# Host dependencies for the test fixtures and the integration tests (Debian 12), and the fixture
# repository itself. Included from the top-level Makefile.
#
#   make deps-fixtures   tools tests/fixtures/make-repo.sh needs
#   make deps-test       deps-fixtures + the independent consumers the integration tests run
#   make fixtures        build (or find cached) target/fixtures/repo/{x86_64,aarch64}, the parity repo
#                        and the signed copies in target/fixtures/signed (tests/fixtures/make-signed.sh)
#
# Installs only what dpkg reports missing (`dpkg-query -W`, like `dpkg -s`), after one `apt-get update`; unattended; uses sudo
# only when not root.

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

FIXTURE_PKGS := rpm createrepo-c cpio gnupg binutils dpkg util-linux python3 zstd xz-utils
# The tools the tests run by name, package by package: tests/check-deps.sh (run by .ci/run) proves
# this list covers them. busybox-static: /bin/busybox for the busybox applet tests; passwd and login:
# the real useradd/groupadd/usermod/pwconv/grpconv (with their libraries), /etc/default/useradd and
# /etc/login.defs that tests/diff_dnf_accounts.rs packages as the fixture shadow-utils; gcc, libc6-dev:
# diff_dnf_links builds chkconfig's alternatives statically when MINIBUILD_CHKCONFIG_SRC names its
# source; db5.3-util: Berkeley DB's own db5.3_load writes the Berkeley DB rpmdb (`Packages`) the
# base-image and BDB reader tests read; the essential packages are listed too, so that the list is
# the whole truth.
TEST_PKGS := skopeo umoci podman crun docker-registry dnf libsolv-tools apache2-utils python3 rpm2cpio openssl \
	busybox-static libcap2-bin coreutils findutils gzip tar dash libc-bin curl procps gpg gpgconf mount gcc libc6-dev \
	passwd login db5.3-util

# apt-install PACKAGES: install those dpkg does not report as installed.
define apt-install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(APT_INSTALL) $$missing; \
	fi
endef

.PHONY: deps-fixtures deps-test fixtures print-test-pkgs
# Every package deps-test installs (read by tests/check-deps.sh).
print-test-pkgs:
	@echo $(FIXTURE_PKGS) $(TEST_PKGS)

deps-fixtures:
	$(call apt-install,$(FIXTURE_PKGS))
	@# repo/aarch64 wraps Debian arm64 packages: apt must know the architecture.
	@if ! dpkg --print-foreign-architectures | grep -qx arm64; then \
	  $(SUDO) dpkg --add-architecture arm64 && $(SUDO) apt-get update -q; \
	fi

deps-test: deps-fixtures
	$(call apt-install,$(TEST_PKGS))

fixtures: deps-fixtures
	tests/fixtures/make-repo.sh target/fixtures
	tests/fixtures/make-signed.sh target/fixtures
	tests/fixtures/make-parity-repo.sh target/fixtures

# `make bench` (tests/bench/bench.py's TOOLS): the test tools (dnf, rpm, and docker-registry
# and skopeo for the fleet's registry numbers) and GNU time.
BENCH_PKGS := time

.PHONY: deps-bench print-bench-pkgs
# Every package deps-bench installs (read by tests/check-deps.sh).
print-bench-pkgs:
	@echo $(FIXTURE_PKGS) $(TEST_PKGS) $(BENCH_PKGS)

deps-bench: deps-test
	$(call apt-install,$(BENCH_PKGS))
