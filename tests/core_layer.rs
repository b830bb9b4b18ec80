//! `[image] base = "core.toml"`: a shared core layer under app layers
//! (issue 18 part 1), end to end on the fixture repository.
//!
//! One core (busybox, basesystem, busybox links) and two apps on it: the
//! first layer is byte-identical across both apps and to the core built
//! alone; the app layer re-ships no file of a core package except the
//! whole-set files it regenerates (passwd/group/shadow, the rpmdb); the
//! unpacked image equals a single-layer build of the same packages; a
//! request that needs another version of a core package is refused by name;
//! the lock marks the core's packages and builds the same image.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build_cmd, fixtures, minibuild, require_tool, run_ok, unpack_image};

const EPOCH: &str = "1700000000";

fn repo() -> String {
    format!(
        "[[repo]]\nname = \"fedora\"\nbaseurl = \"file://{}/repo/$basearch/\"\ngpgcheck = false\n",
        fixtures().display()
    )
}

const CORE: &str = r#"[image]
name = "core"
arch = ["x86_64"]

[packages]
install = ["busybox", "basesystem"]

[options]
busybox_links = true
"#;

/// An app recipe on `core.toml`: its `[image]` extra lines and packages.
fn app(name: &str, image: &str, install: &[&str], more: &str) -> String {
    format!(
        "[image]\nname = \"{name}\"\nbase = \"core.toml\"\narch = [\"x86_64\"]\n{image}\n{}\n[packages]\ninstall = {install:?}\n{more}",
        repo()
    )
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        s.write("core.toml", &format!("{CORE}\n{}", repo()));
        s.write(
            "app1.toml",
            &app("app1", "entrypoint = [\"/usr/sbin/nginx\"]", &["nginx"], ""),
        );
        s.write(
            "app2.toml",
            &app(
                "app2",
                "user = \"app\"",
                &["zlib"],
                "\n[[accounts.users]]\nname = \"app\"\n",
            ),
        );
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn cmd(&self, recipe: &str, out: &str) -> Command {
        let mut cmd = build_cmd(&self.path(recipe), &self.path(out), &self.path("cache"));
        cmd.args(["--format", "oci"])
            .env("SOURCE_DATE_EPOCH", EPOCH);
        cmd
    }

    /// Build `recipe` as an OCI layout `out`; its manifest digest.
    fn build(&self, recipe: &str, out: &str) -> String {
        common::last_line(&run_ok(&mut self.cmd(recipe, out)))
    }
}

/// The layout's only manifest, as JSON.
fn manifest(layout: &Path) -> serde_json::Value {
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_slice(&blob(&digest)).unwrap()
}

fn layer_digests(layout: &Path) -> Vec<String> {
    manifest(layout)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// A gzip layer's members: path (no trailing `/`) → (is a directory, bytes).
fn layer_members(layout: &Path, digest: &str) -> BTreeMap<String, (bool, Vec<u8>)> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let file = std::fs::File::open(layout.join("blobs/sha256").join(hex)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let is_dir = entry.header().entry_type().is_dir();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(path, (is_dir, bytes));
    }
    out
}

/// The files the core's RPMs ship (`rpm -qlp`), without the leading `/`.
fn core_package_files() -> BTreeSet<String> {
    require_tool("rpm");
    let dir = fixtures().join("repo/x86_64");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        // The core's plan: busybox (the newest), basesystem, setup, filesystem.
        let core = ["busybox-1.35.0-4", "basesystem-", "setup-", "filesystem-"];
        if !core.iter().any(|c| name.starts_with(c)) {
            continue;
        }
        let listed = run_ok(Command::new("rpm").args(["-qlp", "--nosignature"]).arg(&p));
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            out.insert(line.trim_start_matches('/').to_string());
        }
    }
    assert!(out.contains("usr/sbin/busybox"), "rpm -qlp listed {out:?}");
    out
}

/// A tree as path → what it is (file digest, symlink target, directory).
fn tree_of(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_string()
        } else {
            use std::os::unix::fs::PermissionsExt;
            format!(
                "{:o} {}",
                meta.permissions().mode() & 0o7777,
                minibuild::digest::Digest::sha256_of(&std::fs::read(&p).unwrap())
            )
        };
        out.insert(rel, what);
    }
    out
}

#[test]
fn apps_share_the_core_layer_and_unpack_like_one_layer() {
    let s = Setup::new();
    s.build("core.toml", "core");
    s.build("app1.toml", "app1");
    s.build("app2.toml", "app2");
    let core = layer_digests(&s.path("core"));
    let app1 = layer_digests(&s.path("app1"));
    let app2 = layer_digests(&s.path("app2"));
    assert_eq!(core.len(), 1);
    assert_eq!(app1.len(), 2, "{app1:?}");
    assert_eq!(app2.len(), 2, "{app2:?}");
    assert_eq!(app1[0], core[0], "app1's first layer is the core's own");
    assert_eq!(app2[0], core[0], "app2's first layer is the core's own");
    assert_ne!(app1[1], app2[1]);
    let m = manifest(&s.path("app1"));
    assert_eq!(m["annotations"]["dev.minibuild.core.layer.digest"], core[0]);
    // The provenance names the core and its layer; the SBOM lists the
    // whole image (core and app packages) and names the core's layer.
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(s.path(name)).unwrap()).unwrap()
    };
    let provenance = json("app1.intoto.json");
    let deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let dep = deps
        .iter()
        .find(|d| d["name"] == "core")
        .expect("core dependency");
    assert_eq!(dep["annotations"]["layer:x86_64"], core[0]);
    assert!(
        dep["uri"].as_str().unwrap().ends_with("/core.toml"),
        "{dep}"
    );
    let sbom = json("app1.spdx.json");
    let names: BTreeSet<&str> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains("busybox") && names.contains("nginx"),
        "{names:?}"
    );
    assert!(
        sbom["creationInfo"]["comment"]
            .as_str()
            .unwrap()
            .contains(&core[0]),
        "{}",
        sbom["creationInfo"]
    );

    // The app layers re-ship no core package file but the regenerated ones.
    let regenerated: BTreeSet<&str> = [
        "etc/passwd",
        "etc/group",
        "etc/shadow",
        "etc/gshadow",
        "etc/shells",
        "etc/ld.so.cache",
    ]
    .into();
    let core_files = core_package_files();
    for (name, layers) in [("app1", &app1), ("app2", &app2)] {
        let members = layer_members(&s.path(name), &layers[1]);
        let reshipped: Vec<&String> = members
            .iter()
            .filter(|(p, (dir, _))| {
                !dir && core_files.contains(*p) && !regenerated.contains(p.as_str())
            })
            .map(|(p, _)| p)
            .collect();
        assert!(reshipped.is_empty(), "{name} re-ships {reshipped:?}");
        // The rpmdb lists every package, so it is the top layer's.
        assert!(
            members
                .keys()
                .any(|p| p.starts_with("var/lib/rpm/") || p.starts_with("usr/lib/sysimage/rpm/")),
            "{name}'s layer has no rpmdb: {:?}",
            members.keys().collect::<Vec<_>>()
        );
        let passwd = String::from_utf8_lossy(&members["etc/passwd"].1).to_string();
        let account = if name == "app1" { "nginx:" } else { "app:" };
        assert!(
            passwd.lines().any(|l| l.starts_with(account)),
            "{name}'s /etc/passwd lacks {account}\n{passwd}"
        );
        assert!(passwd.lines().any(|l| l.starts_with("root:")), "{passwd}");
    }

    // Unpacked, the two layers give the tree of a one-layer build of the
    // same packages.
    s.write(
        "single1.toml",
        &format!(
            "[image]\nname = \"single1\"\narch = [\"x86_64\"]\nentrypoint = [\"/usr/sbin/nginx\"]\n{}\n[packages]\ninstall = [\"busybox\", \"basesystem\", \"nginx\"]\n[options]\nbusybox_links = true\n",
            repo()
        ),
    );
    s.build("single1.toml", "single1");
    assert_eq!(layer_digests(&s.path("single1")).len(), 1);
    let unpack = |name: &str| {
        let dir = s.path(&format!("unpacked-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        tree_of(&unpack_image(
            &format!("oci:{}:latest", s.path(name).display()),
            &dir,
            None,
        ))
    };
    let layered = unpack("app1");
    let single = unpack("single1");
    let differ: Vec<(&String, Option<&String>, Option<&String>)> = layered
        .keys()
        .chain(single.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| layered.get(*p) != single.get(*p))
        .map(|p| (p, layered.get(p), single.get(p)))
        .collect();
    assert!(
        differ.is_empty(),
        "layered vs single-layer (path, layered, single): {differ:#?}"
    );
    assert!(layered.contains_key("usr/sbin/nginx") && layered.contains_key("usr/sbin/busybox"));
}

#[test]
fn another_version_of_a_core_package_is_refused_by_name() {
    let s = Setup::new();
    // A core pinned to the older busybox; the app needs the newer.
    s.write(
        "core.toml",
        &format!(
            "{}\n{}",
            CORE.replace("\"busybox\"", "\"busybox = 1:1.35.0-3.fc40\""),
            repo()
        ),
    );
    s.write(
        "app3.toml",
        &app("app3", "", &["busybox >= 1:1.35.0-4.fc40"], ""),
    );
    let out = s.cmd("app3.toml", "app3").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built anyway:\n{stderr}");
    assert!(
        stderr.contains("busybox-1:1.35.0-4.fc40.x86_64 is needed")
            && stderr.contains("core layer installs busybox-1:1.35.0-3.fc40.x86_64"),
        "{stderr}"
    );
    assert!(!s.path("app3").exists());
}

#[test]
fn the_lock_marks_the_core_and_builds_the_same_image() {
    let s = Setup::new();
    s.build("app1.toml", "fresh");
    run_ok(
        minibuild()
            .args(["lock"])
            .arg(s.path("app1.toml"))
            .arg("--cache-dir")
            .arg(s.path("cache"))
            .env("CI", "1"),
    );
    let lock = std::fs::read_to_string(s.path("app1.toml.lock")).unwrap();
    let doc: toml::Value = toml::from_str(&lock).unwrap();
    let packages = doc["package"].as_array().unwrap();
    let core: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.get("core").and_then(|c| c.as_bool()) == Some(true))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        core,
        ["basesystem", "busybox", "filesystem", "setup"].into(),
        "{lock}"
    );
    assert!(packages
        .iter()
        .any(|p| p["name"].as_str() == Some("nginx") && p.get("core").is_none()));
    s.build("app1.toml", "locked");
    // The manifests differ by the lock's annotation; the layers may not.
    assert_eq!(
        layer_digests(&s.path("locked")),
        layer_digests(&s.path("fresh")),
        "the lock gives the layers a fresh resolution gave"
    );
    let m = manifest(&s.path("locked"));
    assert!(
        m["annotations"]["dev.minibuild.lock.digest"].is_string(),
        "{m}"
    );
    // A lock with a core, for a recipe without a base any more: refused.
    let text = std::fs::read_to_string(s.path("app1.toml")).unwrap();
    s.write("app1.toml", &text.replace("base = \"core.toml\"\n", ""));
    let out = s.cmd("app1.toml", "nobase").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is locked as the core's") && stderr.contains("has no [image] base"),
        "{stderr}"
    );
}

#[test]
fn what_the_app_removes_from_the_core_is_whited_out() {
    let s = Setup::new();
    // The core keeps rpm; the app does not (package_manager defaults to
    // false), so rpm's files are removed above the core.
    s.write(
        "core.toml",
        &format!(
            "{}\n{}",
            CORE.replace("\"basesystem\"]", "\"basesystem\", \"rpm\"]")
                .replace(
                    "busybox_links = true",
                    "busybox_links = true\npackage_manager = true"
                ),
            repo()
        ),
    );
    let mut cmd = s.cmd("app1.toml", "app1");
    cmd.arg("--rootfs").arg(s.path("finished"));
    run_ok(&mut cmd);
    let layers = layer_digests(&s.path("app1"));
    let members = layer_members(&s.path("app1"), &layers[1]);
    assert!(
        members.contains_key("usr/bin/.wh.rpm"),
        "{:?}",
        members.keys()
    );
    let core_members = layer_members(&s.path("app1"), &layers[0]);
    assert!(core_members.contains_key("usr/bin/rpm"));
    // The two layers unpacked are the finished tree `--rootfs` wrote.
    let dir = s.path("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    let unpacked = tree_of(&unpack_image(
        &format!("oci:{}:latest", s.path("app1").display()),
        &dir,
        None,
    ));
    let mut finished = tree_of(&s.path("finished"));
    finished.remove(".minibuild-rootfs");
    assert!(!unpacked.contains_key("usr/bin/rpm"));
    let differ: Vec<&String> = unpacked
        .keys()
        .chain(finished.keys())
        .filter(|p| unpacked.get(*p) != finished.get(*p))
        .collect();
    assert!(differ.is_empty(), "unpacked vs --rootfs: {differ:?}");
}
