//! Package-manager removal by package, on packages shaped like Azure Linux
//! (CBL-Mariner): `rpm` owns /usr/lib/rpm, pkgconf and mariner-rpm-macros
//! put their macros in it, `tdnf` ships libtdnf and needs `tdnf-cli-libs`
//! and `rpm-libs` (which owns the /usr/lib/librpm.so symlink), and a kept
//! package needs librpm. The repo is built here with rpmbuild and
//! createrepo_c; the image is read back with skopeo, umoci and rpm.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A noarch package: name, Requires, Provides, Recommends, `%install`
/// body, `%files`.
struct Spec {
    name: &'static str,
    requires: &'static [&'static str],
    provides: &'static [&'static str],
    recommends: &'static [&'static str],
    install: &'static str,
    files: &'static str,
}

const MARINER: &[Spec] = &[
    Spec {
        name: "filesystem",
        requires: &[],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib %{buildroot}/etc %{buildroot}/var/lib %{buildroot}/var/cache",
        files: "%dir /usr\n%dir /usr/bin\n%dir /usr/lib\n%dir /etc\n%dir /var\n%dir /var/lib\n%dir /var/cache",
    },
    Spec {
        name: "rpm-libs",
        requires: &["filesystem"],
        provides: &["librpm.so.9()(64bit)"],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/lib\necho librpm > %{buildroot}/usr/lib/librpm.so.9\nln -s librpm.so.9 %{buildroot}/usr/lib/librpm.so",
        files: "/usr/lib/librpm.so.9\n/usr/lib/librpm.so",
    },
    Spec {
        name: "rpm",
        requires: &["rpm-libs"],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/rpm/macros.d %{buildroot}/var/lib/rpm\necho rpm > %{buildroot}/usr/bin/rpm\necho rc > %{buildroot}/usr/lib/rpm/rpmrc",
        files: "/usr/bin/rpm\n%dir /usr/lib/rpm\n%dir /usr/lib/rpm/macros.d\n/usr/lib/rpm/rpmrc\n%dir /var/lib/rpm",
    },
    Spec {
        name: "pkgconf",
        requires: &["filesystem"],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/rpm/macros.d\necho pkgconf > %{buildroot}/usr/bin/pkgconf\necho '%%pkgconfig_personalitydir /usr/share/pkgconfig/personality.d' > %{buildroot}/usr/lib/rpm/macros.d/macros.pkgconf",
        files: "/usr/bin/pkgconf\n/usr/lib/rpm/macros.d/macros.pkgconf",
    },
    Spec {
        name: "mariner-rpm-macros",
        requires: &["filesystem"],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/lib/rpm/mariner\necho '%%vendor Microsoft' > %{buildroot}/usr/lib/rpm/mariner/macros",
        files: "%dir /usr/lib/rpm\n%dir /usr/lib/rpm/mariner\n/usr/lib/rpm/mariner/macros",
    },
    Spec {
        name: "tdnf-cli-libs",
        requires: &["filesystem"],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/lib\necho cli > %{buildroot}/usr/lib/libtdnfcli.so.3",
        files: "/usr/lib/libtdnfcli.so.3",
    },
    Spec {
        name: "tdnf",
        requires: &["tdnf-cli-libs", "rpm-libs"],
        provides: &["yum"],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib %{buildroot}/etc/tdnf %{buildroot}/var/cache/tdnf\necho tdnf > %{buildroot}/usr/bin/tdnf\nln -s tdnf %{buildroot}/usr/bin/yum\necho lib > %{buildroot}/usr/lib/libtdnf.so.3\necho '[main]' > %{buildroot}/etc/tdnf/tdnf.conf",
        files: "/usr/bin/tdnf\n/usr/bin/yum\n/usr/lib/libtdnf.so.3\n%dir /etc/tdnf\n%config(noreplace) /etc/tdnf/tdnf.conf\n%dir /var/cache/tdnf",
    },
    // Would bring the package manager in through a weak dependency.
    Spec {
        name: "mariner-release",
        requires: &["filesystem"],
        provides: &[],
        recommends: &["tdnf"],
        install: "mkdir -p %{buildroot}/etc\necho 'CBL-Mariner 2.0' > %{buildroot}/etc/mariner-release",
        files: "/etc/mariner-release",
    },
    // Kept, but needs librpm; its compat symlink points into rpm-libs.
    Spec {
        name: "createrepo_c-libs",
        requires: &["librpm.so.9()(64bit)"],
        provides: &[],
        recommends: &[],
        install: "mkdir -p %{buildroot}/usr/lib\necho cr > %{buildroot}/usr/lib/libcreaterepo_c.so.0\nln -s librpm.so.9 %{buildroot}/usr/lib/librpm-compat.so",
        files: "/usr/lib/libcreaterepo_c.so.0\n/usr/lib/librpm-compat.so",
    },
];

/// Build `specs` into `dir/repo` as an rpm-md repo.
fn make_repo(dir: &Path, specs: &[Spec]) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for s in specs {
        let top = dir.join(format!("rpmbuild-{}", s.name));
        std::fs::create_dir_all(&top).unwrap();
        let deps: String = s
            .requires
            .iter()
            .map(|r| format!("Requires: {r}\n"))
            .chain(s.provides.iter().map(|p| format!("Provides: {p}\n")))
            .chain(s.recommends.iter().map(|p| format!("Recommends: {p}\n")))
            .collect();
        let spec = top.join(format!("{}.spec", s.name));
        std::fs::write(
            &spec,
            format!(
                "Name: {}\nVersion: 1.0\nRelease: 1\nSummary: pm removal test\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n{deps}%description\npm removal test package\n%install\n{}\n%files\n{}\n",
                s.name, s.install, s.files
            ),
        )
        .unwrap();
        run_ok(rpmbuild(&top, &repo).arg(&spec));
    }
    createrepo(&repo);
    repo
}

fn write_recipe(dir: &Path, repo: &Path, install: &[&str], options: &str) -> PathBuf {
    let path = dir.join("r.toml");
    let install: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"mariner-like\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"m\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n[packages]\ninstall = [{}]\n{options}",
            repo.display(),
            install.join(", ")
        ),
    )
    .unwrap();
    path
}

fn build(dir: &Path, recipe: &Path, strict: bool) -> (Output, PathBuf) {
    let out = dir.join("img.oci.tar");
    let mut cmd = build_cmd(recipe, &out, &dir.join("cache"));
    if strict {
        cmd.arg("--strict");
    }
    (cmd.output().unwrap(), out)
}

fn exists(rootfs: &Path, path: &str) -> bool {
    std::fs::symlink_metadata(rootfs.join(path)).is_ok()
}

const REQUESTED: &[&str] = &[
    "tdnf",
    "rpm",
    "pkgconf",
    "mariner-rpm-macros",
    "createrepo_c-libs",
];

#[test]
fn removes_package_manager_packages_whole_and_from_the_rpmdb() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path(), MARINER);
    let recipe = write_recipe(tmp.path(), &repo, REQUESTED, "");
    let (out, image) = build(tmp.path(), &recipe, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("removed the package manager: rpm, rpm-libs, tdnf, tdnf-cli-libs"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "createrepo_c-libs requires `librpm.so.9()(64bit)`, which only the removed package-manager package rpm-libs provided"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("/usr/lib/librpm-compat.so (createrepo_c-libs) → librpm.so.9 dangles"),
        "{stderr}"
    );

    let rootfs = unpack_archive(&image, tmp.path());
    // Other packages' files in rpm's directories stay.
    for kept in [
        "usr/lib/rpm/macros.d/macros.pkgconf",
        "usr/lib/rpm/mariner/macros",
        "usr/bin/pkgconf",
        "usr/lib/libcreaterepo_c.so.0",
        "usr/lib/librpm-compat.so",
    ] {
        assert!(exists(&rootfs, kept), "{kept} kept");
    }
    // The package-manager packages' own paths are gone, symlinks included.
    for gone in [
        "usr/bin/rpm",
        "usr/lib/rpm/rpmrc",
        "usr/lib/librpm.so.9",
        "usr/lib/librpm.so",
        "usr/bin/tdnf",
        "usr/bin/yum",
        "usr/lib/libtdnf.so.3",
        "usr/lib/libtdnfcli.so.3",
        "etc/tdnf",
        "var/cache/tdnf",
    ] {
        assert!(!exists(&rootfs, gone), "{gone} removed");
    }
    // Gone from the database scanners read, the rest still there.
    let names = common::rpm_names(&rootfs);
    let want: BTreeSet<String> = [
        "filesystem",
        "pkgconf",
        "mariner-rpm-macros",
        "createrepo_c-libs",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want);
    // And from the SBOM (packages[0] is the image itself).
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("img.oci.tar.spdx.json")).unwrap())
            .unwrap();
    let in_sbom: BTreeSet<String> = sbom["packages"].as_array().unwrap()[1..]
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_sbom, want);
}

#[test]
fn strict_refuses_requirements_broken_by_the_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path(), MARINER);
    let recipe = write_recipe(tmp.path(), &repo, REQUESTED, "");
    let (out, image) = build(tmp.path(), &recipe, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("createrepo_c-libs requires `librpm.so.9()(64bit)`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("left broken by removing the package manager")
            && stderr.contains("--strict"),
        "{stderr}"
    );
    assert!(!image.exists(), "no image written");

    // Without the package that needs librpm, --strict builds.
    let recipe = write_recipe(tmp.path(), &repo, &["tdnf", "pkgconf"], "");
    let (out, _) = build(tmp.path(), &recipe, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn package_manager_true_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path(), MARINER);
    let recipe = write_recipe(
        tmp.path(),
        &repo,
        REQUESTED,
        "\n[options]\npackage_manager = true\n",
    );
    let (out, image) = build(tmp.path(), &recipe, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("removed the package manager"), "{stderr}");
    let rootfs = unpack_archive(&image, tmp.path());
    for path in [
        "usr/bin/tdnf",
        "usr/lib/librpm.so",
        "usr/lib/rpm/rpmrc",
        "etc/tdnf/tdnf.conf",
    ] {
        assert!(exists(&rootfs, path), "{path} kept");
    }
    let names = common::rpm_names(&rootfs);
    for pm in ["rpm", "rpm-libs", "tdnf", "tdnf-cli-libs"] {
        assert!(names.contains(pm), "{pm} in {names:?}");
    }
}

#[test]
fn resolution_leaves_out_what_nothing_requested_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path(), MARINER);
    let recipe = write_recipe(
        tmp.path(),
        &repo,
        &["mariner-release", "createrepo_c-libs"],
        "\n[options]\nweak_deps = true\n",
    );
    let out = run_ok(
        minibuild()
            .arg("plan")
            .arg(&recipe)
            .arg("--json")
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeSet<&str> = v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // rpm-libs stays: createrepo_c-libs, which was requested, needs it.
    assert_eq!(
        names,
        [
            "createrepo_c-libs",
            "filesystem",
            "mariner-release",
            "rpm-libs"
        ]
        .into()
    );
    let left: Vec<(&str, &str)> = v[0]["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["why"].as_str().unwrap()))
        .collect();
    assert_eq!(
        left,
        [
            (
                "tdnf",
                "package manager, recommended by mariner-release (tdnf); nothing requested needs it"
            ),
            (
                "tdnf-cli-libs",
                "package manager, required by tdnf (tdnf-cli-libs); nothing requested needs it"
            ),
        ]
    );

    // The build removes what stayed, and says what that breaks.
    let (out, image) = build(tmp.path(), &recipe, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("left out tdnf: package manager"),
        "{stderr}"
    );
    assert!(
        stderr.contains("removed the package manager: rpm-libs"),
        "{stderr}"
    );
    let rootfs = unpack_archive(&image, tmp.path());
    assert!(!exists(&rootfs, "usr/lib/librpm.so.9"));
    assert_eq!(
        common::rpm_names(&rootfs),
        ["createrepo_c-libs", "filesystem", "mariner-release"]
            .map(String::from)
            .into()
    );
}
