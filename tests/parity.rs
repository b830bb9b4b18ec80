//! Resolution parity with dnf (issue: resolver with full RPM semantics).
//!
//! For each scenario — a list of install requests against the small parity repository
//! (tests/fixtures/make-parity-repo.sh: rich deps, conflicts, obsoletes, file deps, several
//! versions, weak deps, versioned provides, epochs) — dnf really installs the packages into a
//! throwaway `--installroot` (they are data-only, so this takes about a second) and `rpm --root
//! -qa` gives the exact transaction set; `minibuild plan --json` must select the same NEVRAs. A
//! scenario dnf refuses must be refused by minibuild too. Every disagreement is collected and
//! reported together, so one run shows the whole picture.
//!
//! Intended differences are listed in [`Expect::Differs`] with the reason. `prefer` is the only
//! knob minibuild adds over dnf's policy, and these recipes do not set it.
//!
//! What this test found (fixed in the resolver): `(b or a)` must try `a` first (libsolv sorts
//! candidates by name); `(a unless b)` is `a ∧ ¬b` (libsolv), which matters in `Conflicts:` and
//! `Supplements:`, the only places rpm accepts it; `install oldname` takes the package that
//! obsoletes it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The parity repository, built (or found by its stamp) beside the main fixtures.
fn parity_repo() -> PathBuf {
    let dir = std::env::var_os("MINIBUILD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-parity-repo.sh");
    run_ok(Command::new(script).arg(&dir));
    dir.join("parity")
}

#[allow(dead_code)] // `Differs` is for documented differences; none is needed today.
enum Expect {
    /// Both select exactly the same NEVRA set (or both refuse).
    Same,
    /// A documented, intended difference: the reason is the documentation.
    Differs(&'static str),
}

struct Scenario {
    install: &'static [&'static str],
    weak_deps: bool,
    /// What the scenario exercises (printed on failure).
    about: &'static str,
    expect: Expect,
}

const fn same(install: &'static [&'static str], about: &'static str) -> Scenario {
    Scenario {
        install,
        weak_deps: false,
        about,
        expect: Expect::Same,
    }
}

const fn weak(install: &'static [&'static str], about: &'static str) -> Scenario {
    Scenario {
        install,
        weak_deps: true,
        about,
        expect: Expect::Same,
    }
}

const SCENARIOS: &[Scenario] = &[
    same(&["needs-file"], "file dep on /usr/bin (in primary)"),
    same(
        &["needs-share"],
        "file dep on /usr/share (only in filelists)",
    ),
    same(
        &["/usr/share/parity-data/data.txt"],
        "a file path as the request",
    ),
    same(&["needs-foo"], "newest of several versions"),
    same(&["needs-api1"], "versioned provide picks the older version"),
    same(&["needs-range"], "two range requirements intersect"),
    same(&["libfoo"], "plain name, newest version"),
    same(&["epochy"], "epoch beats version"),
    same(&["needs-epochy"], "requirement with an epoch"),
    same(&["or-pkg"], "rich or: dnf's choice among alternatives"),
    same(
        &["or-pkg", "alt-b"],
        "rich or already satisfied by a request",
    ),
    same(&["and-pkg"], "rich and"),
    same(&["cfl"], "conflict steers a rich or"),
    same(
        &["cfl", "alt-b"],
        "conflict between two requests: both refuse",
    ),
    same(&["if-pkg"], "rich if, condition false"),
    same(&["if-pkg", "python-rt"], "rich if, condition true"),
    same(&["ifelse-pkg"], "rich if/else, else branch"),
    same(&["ifelse-pkg", "xserver"], "rich if/else, then branch"),
    same(&["unless-pkg"], "conflict with unless, no helper-b"),
    same(
        &["unless-pkg", "helper-b"],
        "conflict (helper-b unless xserver) refuses",
    ),
    same(
        &["unless-pkg", "helper-b", "xserver"],
        "unless lifts the conflict",
    ),
    same(&["with-pkg"], "rich with: one package provides both"),
    same(&["without-pkg"], "rich without"),
    same(&["oldname"], "a request for an obsoleted name"),
    same(&["needs-mta"], "two providers of a virtual, no preference"),
    same(&["wk"], "Recommends ignored with weak deps off"),
    weak(&["wk"], "Recommends and Supplements with weak deps on"),
    weak(&["wk-rich"], "rich Recommends"),
    weak(&["unless-pkg"], "Supplements with unless, no helper-b"),
    weak(
        &["unless-pkg", "helper-b", "xserver"],
        "Supplements with unless, helper-b present",
    ),
    same(&["does-not-exist"], "unknown package: both refuse"),
];

/// dnf's transaction set, or None when dnf refuses.
fn dnf_set(repo: &Path, cache: &Path, s: &Scenario) -> Option<BTreeSet<String>> {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("dnf")
        .args(["-y", "-q", "--releasever=40", "--nodocs"])
        .arg(format!("--installroot={}", root.path().display()))
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg(format!(
            "--setopt=install_weak_deps={}",
            if s.weak_deps { "True" } else { "False" }
        ))
        .args([
            "--setopt=reposdir=/dev/null",
            "--repo=p",
            "--setopt=p.gpgcheck=0",
        ])
        .arg(format!("--repofrompath=p,file://{}", repo.display()))
        .arg("install")
        .args(s.install)
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let q = run_ok(Command::new("rpm").arg("--root").arg(root.path()).args([
        "-qa",
        "--qf",
        "%{NEVRA}\\n",
    ]));
    Some(
        String::from_utf8(q.stdout)
            .unwrap()
            .lines()
            .map(|l| l.replace("-0:", "-"))
            .collect(),
    )
}

/// minibuild's plan, or None when it refuses.
fn minibuild_set(repo: &Path, dir: &Path, s: &Scenario) -> Option<BTreeSet<String>> {
    let list: Vec<String> = s.install.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\narch = [\"x86_64\"]\n[[repo]]\nname = \"p\"\nbaseurl = \"file://{}\"\ngpgcheck = false\n[packages]\ninstall = [{}]\n[options]\nweak_deps = {}\n",
            repo.display(),
            list.join(", "),
            s.weak_deps
        ),
    )
    .unwrap();
    let out = minibuild()
        .arg("plan")
        .arg(&recipe)
        .arg("--json")
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        v[0]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["nevra"].as_str().unwrap().replace("-0:", "-"))
            .collect(),
    )
}

fn show(set: &Option<BTreeSet<String>>) -> String {
    match set {
        None => "refused".into(),
        Some(s) => s.iter().cloned().collect::<Vec<_>>().join(" "),
    }
}

#[test]
fn minibuild_selects_what_dnf_installs() {
    require_tool("dnf");
    let repo = parity_repo();
    let tmp = tempfile::tempdir().unwrap();
    let mut disagreements = Vec::new();
    for s in SCENARIOS {
        let dnf = dnf_set(&repo, &tmp.path().join("dnf-cache"), s);
        let ours = minibuild_set(&repo, tmp.path(), s);
        let line = format!(
            "[{}] weak_deps={} ({})\n    dnf:       {}\n    minibuild: {}",
            s.install.join(" "),
            s.weak_deps,
            s.about,
            show(&dnf),
            show(&ours)
        );
        eprintln!("{line}");
        match (&s.expect, dnf == ours) {
            (Expect::Same, false) => disagreements.push(line),
            (Expect::Differs(why), true) => {
                disagreements.push(format!("{line}\n    expected a difference: {why}"))
            }
            _ => {}
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} scenario(s) disagree with dnf:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
