//! The `rust-version` in Cargo.toml is the true minimum: no package in
//! Cargo.lock declares a newer one. An older toolchain cannot be installed
//! without the network, so the check reads every locked package's own
//! `rust-version` from `cargo metadata`; where rustup already has the
//! declared toolchain, `cargo check` runs on it too.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// A Rust version as `rust-version` writes it: `1.88` or `1.85.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion(u64, u64, u64);

impl RustVersion {
    fn parse(text: &str) -> Option<RustVersion> {
        let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().unwrap_or(Some(0))?;
        parts
            .next()
            .is_none()
            .then_some(RustVersion(major, minor, patch))
    }
}

impl std::fmt::Display for RustVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn manifest() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
}

/// Every package of the lock (all platforms, dev-dependencies included):
/// `(name, version, rust-version)`, and minibuild's own declared one.
fn locked_rust_versions() -> (String, Vec<(String, String, String)>) {
    // The cargo that built this test; --offline: `make test` runs `cargo
    // fetch --locked` first, which downloads every platform's packages (a
    // build downloads only this platform's, and metadata needs them all).
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .arg("--manifest-path")
        .arg(manifest())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked --offline failed:\n{}\n  hint: run `cargo fetch --locked` (as `make test` does)",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut own = None;
    let mut deps = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let rust = p["rust_version"].as_str().map(str::to_string);
        if p["source"].is_null() && name == "minibuild" {
            own = rust;
        } else if let Some(rust) = rust {
            deps.push((name, p["version"].as_str().unwrap().to_string(), rust));
        }
    }
    let own = own.expect("Cargo.toml declares no rust-version: set it to the true minimum");
    (own, deps)
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_declared() {
    let (declared, deps) = locked_rust_versions();
    let ours = RustVersion::parse(&declared)
        .unwrap_or_else(|| panic!("rust-version = {declared:?} in Cargo.toml is not a version"));
    let mut newer: Vec<String> = Vec::new();
    let mut highest = RustVersion(0, 0, 0);
    for (name, version, rust) in &deps {
        let needs = RustVersion::parse(rust)
            .unwrap_or_else(|| panic!("{name} {version} has rust-version {rust:?}"));
        highest = highest.max(needs);
        if needs > ours {
            newer.push(format!("{name} {version} needs Rust {rust}"));
        }
    }
    assert!(
        newer.is_empty(),
        "Cargo.toml says rust-version = \"{declared}\", but locked dependencies need more:\n  {}\n  \
         hint: raise rust-version to the highest of these (and say so in the README), or pin \
         those dependencies to older versions",
        newer.join("\n  ")
    );
    // Above `highest` is allowed (minibuild itself may need more), but then
    // the reason belongs beside rust-version in Cargo.toml.
    eprintln!("msrv: rust-version {declared}; the locked dependencies need at most {highest}");
}

/// A note in the test output even when the test passes: the test
/// harness captures `eprintln!`, not direct writes to stderr.
fn say(note: &str) {
    let _ = writeln!(std::io::stderr(), "msrv: {note}");
}

/// `rustup toolchain list` names the installed toolchains, e.g.
/// `1.88.0-x86_64-unknown-linux-gnu` or `stable-… (default)`; the one for
/// `declared` (`1.88` matches `1.88-…` and `1.88.0-…`), if any.
fn installed_toolchain(list: &str, declared: &str) -> Option<String> {
    let wanted = RustVersion::parse(declared)?;
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|name| {
            name.split('-')
                .next()
                .and_then(RustVersion::parse)
                .is_some_and(|v| v == wanted)
        })
        .map(str::to_string)
}

#[test]
fn the_crate_checks_on_the_declared_toolchain_when_it_is_installed() {
    let (declared, _) = locked_rust_versions();
    // rustup comes with the toolchain, not from a distribution package; a
    // machine without it (a distribution's cargo) cannot have a second one.
    let list = match Command::new("rustup").args(["toolchain", "list"]).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            say(&format!(
                "rustup not found: `cargo +{declared} check` not run"
            ));
            return;
        }
    };
    let Some(toolchain) = installed_toolchain(&list, &declared) else {
        say(&format!(
            "toolchain {declared} is not installed (rustup toolchain install {declared}): \
             `cargo +{declared} check` not run; the locked dependencies' rust-versions were checked"
        ));
        return;
    };
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/msrv");
    let out = Command::new("rustup")
        .args(["run", &toolchain, "cargo", "check", "--locked", "--offline"])
        .arg("--manifest-path")
        .arg(manifest())
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo +{toolchain} check failed: rust-version = \"{declared}\" is not enough:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn toolchain_names_match_the_declared_version() {
    let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                nightly-x86_64-unknown-linux-gnu\n\
                1.95.0-x86_64-unknown-linux-gnu\n\
                1.88.0-x86_64-unknown-linux-gnu\n";
    assert_eq!(
        installed_toolchain(list, "1.88").as_deref(),
        Some("1.88.0-x86_64-unknown-linux-gnu")
    );
    assert_eq!(installed_toolchain(list, "1.87"), None);
    assert_eq!(
        installed_toolchain("1.88-x86_64-unknown-linux-gnu\n", "1.88.0").as_deref(),
        Some("1.88-x86_64-unknown-linux-gnu")
    );
    assert_eq!(RustVersion::parse("1.85.1"), Some(RustVersion(1, 85, 1)));
    assert_eq!(RustVersion::parse("1.88"), Some(RustVersion(1, 88, 0)));
    assert_eq!(RustVersion::parse("stable"), None);
    assert_eq!(RustVersion::parse("1.88.0.1"), None);
}
