//! Locks that explain themselves: `why` and `plan` answer from RECIPE.lock
//! offline with the resolver's reasons, and `lock --update` says what changed.
//! The repo is built here (rpmbuild + createrepo_c) in two versions.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A noarch package: name, version, Requires, and the size of its one file.
struct Pkg(&'static str, &'static str, &'static [&'static str], usize);

/// Build `pkgs` into `dir/NAME` (replacing what was there) as an rpm-md repo.
fn make_repo(dir: &Path, name: &str, pkgs: &[Pkg]) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join(name);
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    for Pkg(n, version, requires, size) in pkgs {
        let top = dir.join(format!("rpmbuild-{n}-{version}"));
        std::fs::create_dir_all(&top).unwrap();
        let requires: String = requires
            .iter()
            .map(|r| format!("Requires: {r}\n"))
            .collect();
        let spec = top.join(format!("{n}.spec"));
        std::fs::write(
            &spec,
            format!(
                "Name: {n}\nVersion: {version}\nRelease: 1\nSummary: lock test\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n{requires}%description\nlock test package\n%install\nmkdir -p %{{buildroot}}/usr/share/{n}\nhead -c {size} /dev/zero > %{{buildroot}}/usr/share/{n}/data\n%files\n/usr/share/{n}/data\n"
            ),
        )
        .unwrap();
        run_ok(rpmbuild(&top, &repo).arg(&spec));
    }
    createrepo(&repo);
    repo
}

/// v1: app 1.0 needs libx (2.0 here) and extra.
fn repo_v1(dir: &Path) -> PathBuf {
    make_repo(
        dir,
        "repo",
        &[
            Pkg("app", "1.0", &["libx >= 1", "extra"], 1000),
            Pkg("libx", "2.0", &[], 2000),
            Pkg("extra", "1.0", &[], 3000),
        ],
    )
}

/// v2: app 2.0 needs libx (only 1.0 now) and newdep; extra is gone.
fn repo_v2(dir: &Path) -> PathBuf {
    make_repo(
        dir,
        "repo",
        &[
            Pkg("app", "2.0", &["libx >= 1", "newdep"], 1500),
            Pkg("libx", "1.0", &[], 1800),
            Pkg("newdep", "1.0", &[], 4000),
        ],
    )
}

fn write_recipe(dir: &Path, repo: &Path) -> PathBuf {
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"lt\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n[packages]\ninstall = [\"app\"]\n",
            repo.display()
        ),
    )
    .unwrap();
    path
}

fn mb(dir: &Path, args: &[&str]) -> Command {
    let mut c = minibuild();
    c.args(args).arg("--cache-dir").arg(dir.join("cache"));
    c
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run_ok(cmd).stdout).unwrap()
}

fn reasons(plan_json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(plan_json).unwrap();
    v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn lock_update_prints_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_v1(tmp.path());
    let recipe = write_recipe(tmp.path(), &repo);
    let r = recipe.to_str().unwrap();
    let lock_path = format!("{r}.lock");
    // A first lock has nothing to compare with: only its path.
    assert_eq!(
        stdout(&mut mb(tmp.path(), &["lock", r])),
        format!("{lock_path}\n")
    );

    repo_v2(tmp.path());
    let out = stdout(&mut mb(tmp.path(), &["lock", r, "--update"]));
    assert_eq!(
        out,
        format!(
            "x86_64: upgraded    app-1.0-1.noarch → app-2.0-1.noarch\n\
             x86_64: removed     extra-1.0-1.noarch\n\
             x86_64: downgraded  libx-2.0-1.noarch → libx-1.0-1.noarch\n\
             x86_64: added       newdep-1.0-1.noarch\n\
             x86_64: installed size 5.9 KiB → 7.1 KiB (+1.3 KiB)\n\
             {lock_path}\n"
        )
    );
    // Re-resolving the same repo changes nothing, and says so.
    let again = stdout(&mut mb(tmp.path(), &["lock", r, "--update"]));
    assert_eq!(again, format!("no changes\n{lock_path}\n"));
}

#[test]
fn why_and_plan_answer_from_the_lock_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_v1(tmp.path());
    let recipe = write_recipe(tmp.path(), &repo);
    let r = recipe.to_str().unwrap();
    let live = stdout(&mut mb(tmp.path(), &["plan", r, "--json", "--no-lock"]));
    run_ok(&mut mb(tmp.path(), &["lock", r]));
    // The baseurl is unreachable from here on: no metadata can be read.
    std::fs::rename(&repo, tmp.path().join("moved")).unwrap();
    std::fs::remove_dir_all(tmp.path().join("cache")).unwrap();
    let why = stdout(&mut mb(tmp.path(), &["why", r, "libx"]));
    assert_eq!(why, "x86_64: app → requires libx >= 1 → libx\n");
    // The locked plan keeps the resolver's reasons.
    let locked = stdout(&mut mb(tmp.path(), &["plan", r, "--json"]));
    assert_eq!(reasons(&locked), reasons(&live));
    assert_eq!(
        reasons(&locked),
        [
            ("app".to_string(), "requested".to_string()),
            ("extra".into(), "required by app (extra)".into()),
            ("libx".into(), "required by app (libx >= 1)".into()),
        ]
    );
    // Proof that the answer above did not come from the repo.
    let out = mb(tmp.path(), &["why", r, "libx", "--no-lock"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn an_old_lock_without_reasons_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_v1(tmp.path());
    let recipe = write_recipe(tmp.path(), &repo);
    let r = recipe.to_str().unwrap();
    run_ok(&mut mb(tmp.path(), &["lock", r]));
    let lock_path = format!("{r}.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let old: String = lock
        .lines()
        .filter(|l| {
            ![
                "requested",
                "required_by",
                "recommended_by",
                "dep",
                "requires",
            ]
            .iter()
            .any(|k| l.starts_with(&format!("{k} = ")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(old.len() < lock.len(), "reasons were recorded: {lock}");
    let old = old.replace("version = 2", "version = 1");
    std::fs::write(&lock_path, old).unwrap();
    let locked = stdout(&mut mb(tmp.path(), &["plan", r, "--json"]));
    for (name, reason) in reasons(&locked) {
        assert_eq!(reason, "locked (reason not recorded)", "{name}");
    }
    let out = mb(tmp.path(), &["why", r, "libx"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("r.toml.lock records no dependencies")
            && stderr.contains(&format!("hint: run `minibuild lock {r} --update`")),
        "{stderr}"
    );
}
