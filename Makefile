# minibuild — the two commands a new machine needs:
#   make demo   build the fixture repository and an example image, offline from Fedora
#   make test   install the test tools, then lint and run the whole suite
#
# Debian packages the tests need are installed by tests/deps.mk when missing.

CARGO ?= cargo
FIXTURES ?= $(CURDIR)/target/fixtures
MINIBUILD := target/release/minibuild
DEMO_URL := file://$(FIXTURES)/repo/$$basearch/

include tests/deps.mk

.PHONY: all build install demo test lint unit bench bench-resolve clean

all: build

build:
	$(CARGO) build --release --locked

# `make install PREFIX=~/.local` puts the binary in $(PREFIX)/bin (same as `cargo install --path .`).
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(MINIBUILD) $(DESTDIR)$(PREFIX)/bin/minibuild

# The main job on the built-in demo: the busybox recipe against the fixture repo.
demo: fixtures build
	@mkdir -p out
	@echo "The fixture repository is unsigned: the demo turns signature checks off for it, and says so."
	$(MINIBUILD) build recipes/busybox.toml --baseurl 'fedora=$(DEMO_URL)' --no-gpgcheck fedora -o out/busybox.oci.tar
	@echo "image: out/busybox.oci.tar  (try: skopeo inspect oci-archive:out/busybox.oci.tar)"

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --lib

test: deps-test fixtures lint
	MINIBUILD_FIXTURES=$(FIXTURES) $(CARGO) test --locked

clean:
	rm -rf out target/fixtures

# Side-by-side with `dnf --installroot` + tar (issue: performance). Not part of `make test`.
bench: deps-bench fixtures build
	python3 tests/bench/bench.py $(MINIBUILD) $(FIXTURES)

# Resolver and metadata loading on a synthetic 75,000-package repo, next to dnf. Not part of `make test`.
bench-resolve: deps-bench build
	python3 tests/bench/resolve-bench.py $(MINIBUILD) --dir target/bench-resolve

# Fuzz every parser of untrusted input for FUZZ_SECONDS each (issue 13 item 5).
# Needs nightly; cargo-fuzz is installed when missing. Not part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = rpm_header cpio payload primary codec recipe challenge repomd filelists lockfile elf sysusers parsed_cache oci_image scriptlet metalink mirrorlist repofile
.PHONY: fuzz fuzz-long fuzz-seed
fuzz: fuzz-seed
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@failed=; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
		$(CARGO) +nightly fuzz run --fuzz-dir tests/fuzz $$t -- -max_total_time=$(FUZZ_SECONDS) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in$$failed (inputs in tests/fuzz/artifacts/)"; exit 1; fi

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=1800

fuzz-seed:
	MINIBUILD_FIXTURES=$(FIXTURES) tests/fuzz/seed.sh
