//! The images checked by independent consumers: skopeo and umoci.
//!
//! These tests run the real tools. A missing tool is a failure with a
//! message saying what to install — never a silent pass.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::digest::Digest;
use crate::package::Arch;

use super::test_tree::TestTree;
use super::*;

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{tool}` is not installed or does not run: these OCI checks need it \
         (Debian: apt-get install {tool})"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const EPOCH: u64 = 1_700_000_000;

fn config(arch: Arch) -> ImageConfig {
    let mut c = ImageConfig::new(arch, EPOCH);
    c.entrypoint = vec!["/usr/bin/a".into()];
    c.env.insert("LANG".into(), "C.UTF-8".into());
    c.labels.insert(
        "org.opencontainers.image.source".into(),
        "https://example.org".into(),
    );
    c.history.push(HistoryEntry {
        created_by: "minibuild: test tree".into(),
        comment: None,
        empty_layer: false,
    });
    c
}

fn build(tree: &TestTree, dest: &Path, format: Format, arches: &[Arch]) -> Written {
    stage(tree, dest, arches).commit(format, "latest").unwrap()
}

/// A writer with one image per arch added, ready to commit.
fn stage(tree: &TestTree, dest: &Path, arches: &[Arch]) -> ImageWriter {
    let mut w = ImageWriter::new(dest).unwrap();
    w.set_name("example/test");
    let opts = LayerOptions {
        source_date_epoch: EPOCH,
        compression: Compression::Gzip,
    };
    for arch in arches {
        let layer = w.add_layer(&tree.tree, &opts).unwrap();
        w.add_image(&config(*arch), &[layer]).unwrap();
    }
    w
}

#[test]
fn skopeo_inspects_and_copies_the_archive() {
    require("skopeo");
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("img.tar");
    let written = build(&tree, &archive, Format::OciArchive, &[Arch::X86_64]);

    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display())));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Digest"], written.digest.to_string());
    assert_eq!(v["Env"][0], "LANG=C.UTF-8");
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    let layer = &written.manifests[0];
    assert_eq!(layer.platform.arch, Arch::X86_64);

    let copy = dir.path().join("copy");
    run(Command::new("skopeo").args([
        "copy".to_string(),
        format!("oci-archive:{}", archive.display()),
        format!("oci:{}:again", copy.display()),
    ]));
    // skopeo copies the manifest as is: same digest at the other end.
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:again", copy.display())));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], written.digest.to_string());
}

#[test]
fn the_archive_is_reproducible() {
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let a = build(
        &tree,
        &dir.path().join("a.tar"),
        Format::OciArchive,
        &[Arch::X86_64],
    );
    let b = build(
        &tree,
        &dir.path().join("b.tar"),
        Format::OciArchive,
        &[Arch::X86_64],
    );
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.index_digest, b.index_digest);
    let bytes_a = fs::read(dir.path().join("a.tar")).unwrap();
    assert_eq!(bytes_a, fs::read(dir.path().join("b.tar")).unwrap());
    // the archive holds exactly the layout, sorted, nothing else
    let mut ar = tar::Archive::new(&bytes_a[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(names[names.len() - 2..], ["index.json", "oci-layout"]);
    let mut blobs = names[2..names.len() - 2].to_vec();
    assert_eq!(blobs.len(), 3, "config, manifest, layer: {names:?}");
    blobs.sort();
    assert_eq!(blobs, names[2..names.len() - 2]);
    // no temp files left beside the outputs
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.tar", "b.tar"]);
}

#[test]
fn umoci_unpacks_the_layout_with_owners_modes_links_and_caps() {
    require("umoci");
    let mut tree = TestTree::sample();
    // Names beyond ustar's 100 bytes go through PAX `path`/`linkpath`.
    let long_dir = format!("usr/share/{}", "d".repeat(120));
    let long_file = format!("{long_dir}/{}", "f".repeat(90));
    let long_target = format!("../share/{}/{}", "d".repeat(120), "f".repeat(90));
    tree.file(&long_file, 0o640, b"long");
    tree.symlink("usr/bin/long", &long_target);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let written = build(&tree, &layout, Format::Oci, &[Arch::X86_64]);
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], written.digest.to_string());
    assert_eq!(
        Some(Digest::sha256_of(
            &fs::read(layout.join("index.json")).unwrap()
        )),
        written.index_digest
    );

    let root = fs::metadata("/proc/self").unwrap().uid() == 0;
    let bundle = dir.path().join("bundle");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !root {
        cmd.arg("--rootless");
    }
    run(cmd
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");

    let ping = fs::metadata(rootfs.join("usr/bin/ping")).unwrap();
    assert_eq!(ping.permissions().mode() & 0o7777, 0o4755);
    let a = fs::metadata(rootfs.join("usr/bin/a")).unwrap();
    let b = fs::metadata(rootfs.join("usr/bin/b")).unwrap();
    assert_eq!(a.ino(), b.ino(), "usr/bin/b is a hardlink of usr/bin/a");
    assert_eq!(
        fs::read(rootfs.join("usr/bin/b")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/sh")).unwrap(),
        Path::new("a")
    );
    assert_eq!(fs::read(rootfs.join(&long_file)).unwrap(), b"long");
    assert_eq!(
        fs::metadata(rootfs.join(&long_file))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o640
    );
    assert_eq!(
        fs::read_link(rootfs.join("usr/bin/long")).unwrap(),
        Path::new(&long_target)
    );
    let fifo = fs::symlink_metadata(rootfs.join("var/initctl")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o7777, 0o600);
    if root {
        assert_eq!((fifo.uid(), fifo.gid()), (998, 997));
        assert_eq!((ping.uid(), ping.gid()), (0, 0));
        let caps = run(Command::new("getcap").arg(rootfs.join("usr/bin/ping")));
        assert!(caps.contains("cap_net_raw=ep"), "getcap said: {caps}");
    }
}

#[test]
fn multi_arch_index_selects_per_platform() {
    require("skopeo");
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let written = build(&tree, &layout, Format::Oci, &[Arch::Aarch64, Arch::X86_64]);
    assert_eq!(written.manifests.len(), 2);

    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:latest", layout.display())));
    assert_eq!(Digest::sha256_of(raw.as_bytes()), written.digest);
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["mediaType"], manifest::MEDIA_TYPE_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);

    // skopeo picks the platform's manifest from the nested index and
    // reports the digest of what the tag names (the index).
    for arch in ["amd64", "arm64"] {
        let out = run(Command::new("skopeo")
            .args(["--override-arch", arch, "inspect"])
            .arg(format!("oci:{}:latest", layout.display())));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], arch);
        assert_eq!(v["Digest"], written.digest.to_string());
    }
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    for image in &written.manifests {
        assert!(listed.contains(&image.manifest.digest.to_string().as_str()));
    }
}

#[test]
fn docker_archive_is_read_by_skopeo_with_uncompressed_layers() {
    require("skopeo");
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("docker.tar");
    let written = build(&tree, &archive, Format::DockerArchive, &[Arch::X86_64]);
    assert_eq!(written.index_digest, None);
    let layer = &written.manifests[0].layers[0];

    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", archive.display())));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"][0], layer.diff_id.to_string());
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--config", "--raw"])
        .arg(format!("docker-archive:{}", archive.display())));
    assert_eq!(Digest::sha256_of(raw.as_bytes()), written.image_id);

    // manifest.json names the tag, the config and the layer; the layer
    // file is the uncompressed tar (its digest is the diff_id).
    let bytes = fs::read(&archive).unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut files = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(name, data);
    }
    let layer_name = format!("{}.tar", layer.diff_id.hex());
    let config_name = format!("{}.json", written.image_id.hex());
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let mut expected = vec![config_name.as_str(), layer_name.as_str()];
    expected.sort();
    expected.push("manifest.json");
    assert_eq!(names, expected);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "example/test:latest");
    assert_eq!(manifest[0]["Config"], config_name);
    assert_eq!(manifest[0]["Layers"][0], layer_name);
    assert_eq!(Digest::sha256_of(&files[&layer_name]), layer.diff_id);
    assert_eq!(Digest::sha256_of(&files[&config_name]), written.image_id);

    // several architectures cannot go into one docker-archive
    let err = stage(
        &tree,
        &dir.path().join("multi.tar"),
        &[Arch::X86_64, Arch::Aarch64],
    )
    .commit(Format::DockerArchive, "latest")
    .unwrap_err();
    assert!(
        matches!(err, ImageError::InvalidConfig { field: "arch", .. }),
        "{err}"
    );
}

#[test]
fn gnu_tar_lists_the_layer_as_written() {
    require("tar");
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let opts = LayerOptions {
        source_date_epoch: EPOCH,
        compression: Compression::Gzip,
    };
    let info = write_layer(&tree.tree, &opts, dir.path()).unwrap();
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&info.path_of_blob));
    let lines: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let find = |name: &str| {
        lines
            .iter()
            .find(|l| l[5] == name)
            .unwrap_or_else(|| panic!("{name} not in:\n{listing}"))
            .clone()
    };
    assert_eq!(find("usr/bin/ping")[..2], ["-rwsr-xr-x", "0/0"]);
    let b = find("usr/bin/b");
    assert_eq!(b[..3], ["hrwxr-xr-x", "0/0", "0"]);
    assert_eq!(b[5..], ["usr/bin/b", "link", "to", "usr/bin/a"]);
    assert_eq!(find("usr/bin/sh")[5..], ["usr/bin/sh", "->", "a"]);
    assert_eq!(find("var/initctl")[..2], ["prw-------", "998/997"]);
    assert_eq!(find("etc/")[0], "drwxr-xr-x");
}

#[test]
fn layout_replaces_only_layouts() {
    let tree = TestTree::sample();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let first = build(&tree, &layout, Format::Oci, &[Arch::X86_64]);
    let second = build(&tree, &layout, Format::Oci, &[Arch::X86_64]);
    assert_eq!(first.digest, second.digest);
    assert!(layout.join("oci-layout").is_file());

    let precious = dir.path().join("precious");
    fs::create_dir(&precious).unwrap();
    fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let err = stage(&tree, &precious, &[Arch::X86_64])
        .commit(Format::Oci, "latest")
        .unwrap_err();
    assert!(matches!(err, ImageError::RefuseToReplace { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "keep me"
    );
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["layout", "precious"], "no staging dirs left behind");
}
