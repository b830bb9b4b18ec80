//! Hostile packages and metadata, end to end: the real binary against RPMs
//! built here with rpmbuild (and then altered byte by byte where the attack
//! needs it) and a primary.xml that lies. Each test asserts the refusal, its
//! message, that a canary outside the work directories is unchanged, and
//! that nothing partial is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const CANARY: &str = "canary: the host's own file\n";

/// Build `spec` (noarch, uncompressed payload so a test can patch it) with
/// rpmbuild in `dir`; the path of the one RPM it made.
fn rpmbuild(dir: &Path, name: &str, spec: &str) -> PathBuf {
    require_tool("rpmbuild");
    let top = dir.join(format!("rpmbuild-{name}"));
    std::fs::create_dir_all(&top).unwrap();
    let spec_path = top.join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec).unwrap();
    let rpms = top.join("rpms");
    run_ok(
        Command::new("rpmbuild")
            .arg("-bb")
            .arg("--quiet")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", rpms.display()))
            .args(["--define", "_binary_payload w0.ufdio"])
            .args(["--define", "_build_id_links none"])
            .args(["--define", "__os_install_post %{nil}"])
            .args(["--define", "_buildshell /bin/bash"])
            .arg(&spec_path)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("HOME", &top),
    );
    let rpm = rpms.join("noarch").join(format!("{name}-1.0-1.noarch.rpm"));
    assert!(rpm.is_file(), "{} not built", rpm.display());
    rpm
}

fn spec(name: &str, install: &str, files: &str) -> String {
    format!(
        "Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: hostile\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%description\nhostile test package\n%install\n{install}\n%files\n{files}\n"
    )
}

/// A repo in `dir/repo` holding `rpms`, made by createrepo_c.
fn make_repo(dir: &Path, rpms: &[&Path]) -> PathBuf {
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for rpm in rpms {
        std::fs::copy(rpm, repo.join(rpm.file_name().unwrap())).unwrap();
    }
    run_ok(
        Command::new("createrepo_c")
            .args(["--quiet", "--no-database"])
            .arg(&repo),
    );
    repo
}

fn recipe(dir: &Path, repo: &Path, install: &str) -> PathBuf {
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"hostile\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"hostile\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n[packages]\ninstall = [\"{install}\"]\n",
            repo.display()
        ),
    )
    .unwrap();
    path
}

fn fails_with(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "build should fail:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`:\n{stderr}");
    }
    stderr
}

/// Names in `dir` other than `keep`: what a failed build left behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// A package that ships `/.minibuild-rootfs` (the marker `--rootfs` writes)
/// as a symlink to a host file, absolute or relative, must not get the
/// marker write redirected into that file.
#[test]
fn rootfs_marker_symlink_in_a_package_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let canary = out_dir.join("canary");
    // `--rootfs out/rootfs` fills a temporary directory in out/; from its
    // marker, `../canary` is out/canary.
    for (name, target) in [
        ("evil-abs", canary.display().to_string()),
        ("evil-rel", "../canary".to_string()),
    ] {
        std::fs::write(&canary, CANARY).unwrap();
        let work = tmp.path().join(name);
        std::fs::create_dir(&work).unwrap();
        let rpm = rpmbuild(
            &work,
            name,
            &spec(
                name,
                &format!("ln -s {target} %{{buildroot}}/.minibuild-rootfs\nmkdir -p %{{buildroot}}/etc && echo hi > %{{buildroot}}/etc/{name}"),
                &format!("/.minibuild-rootfs\n/etc/{name}"),
            ),
        );
        let repo = make_repo(&work, &[&rpm]);
        let recipe = recipe(&work, &repo, name);
        let rootfs = out_dir.join("rootfs");
        let res = build_cmd(&recipe, &out_dir.join("img.oci.tar"), &work.join("cache"))
            .arg("--rootfs")
            .arg(&rootfs)
            .output()
            .unwrap();
        fails_with(
            &res,
            &[
                &format!("package {name} ships /.minibuild-rootfs"),
                "reserved",
            ],
        );
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), CANARY, "{name}");
        assert!(!rootfs.exists(), "{name}: a refused tree is not written");
        assert_eq!(
            leftovers(&out_dir, &["canary"]),
            Vec::<String>::new(),
            "{name}"
        );
    }
}
