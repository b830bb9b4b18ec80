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

.PHONY: all build install demo test lint unit bench bench-resolve clean review-snapshots

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

# Snapshot tests (insta, tests/snapshots/) fail on any difference. INSTA_UPDATE=auto and
# INSTA_FORCE_PASS=0 override whatever the shell exports (`always`, `force` or a forced pass
# would accept changes silently): in CI (CI=true) nothing is written, elsewhere each changed
# or new snapshot goes to a .snap.new beside it, for `make review-snapshots`.
test: deps-test fixtures lint
	$(CARGO) fetch --locked
	MINIBUILD_FIXTURES=$(FIXTURES) INSTA_UPDATE=auto INSTA_FORCE_PASS=0 $(CARGO) test --locked

# Accept or reject the .snap.new files a failed snapshot test left. With cargo-insta installed
# (`cargo install cargo-insta`; not required), its interactive review; without it, the diffs to
# read: then `INSTA_UPDATE=always cargo test --test NAME` accepts, and `git diff` shows what changed.
review-snapshots:
	@if $(CARGO) insta --version >/dev/null 2>&1; then \
		MINIBUILD_FIXTURES=$(FIXTURES) $(CARGO) insta review; \
	else \
		found=; for new in $$(find tests src -name '*.snap.new' | sort); do \
			found=1; diff -uN "$${new%.new}" "$$new" || true; \
		done; \
		[ -n "$$found" ] || echo "no pending snapshots (*.snap.new)"; \
	fi

clean:
	rm -rf out target/fixtures

# Side-by-side with `dnf --installroot` + tar (issue: performance), and the fleet of issue 18
# (one run vs ten, registry bytes with a shared core, --cache-repo on a cold machine; it starts
# docker-registry on 127.0.0.1). Not part of `make test`. `make bench BENCH_ARGS="--only fleet"`
# runs one part and keeps the other's figures in tests/bench/results.json.
BENCH_ARGS ?=
bench: deps-bench fixtures build
	python3 tests/bench/bench.py $(MINIBUILD) $(FIXTURES) $(BENCH_ARGS)

# Resolver and metadata loading on a synthetic 75,000-package repo, next to dnf. Not part of `make test`.
bench-resolve: deps-bench build
	python3 tests/bench/resolve-bench.py $(MINIBUILD) --dir target/bench-resolve

# Fuzz every parser of untrusted input for FUZZ_SECONDS each (issue 13 item 5).
# Needs nightly; cargo-fuzz is installed when missing. Not part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = rpm_header cpio payload primary codec recipe challenge repomd filelists lockfile elf sysusers parsed_cache oci_image scriptlet metalink mirrorlist repofile rpmdb_header rpmdb_bdb
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
