//! `[image] base = "REGISTRY/REPO:TAG"` (issue 18 part 2), end to end
//! against Debian's docker-registry on 127.0.0.1.
//!
//! - A base built by minibuild itself and pushed; an app on it: the base's
//!   layers are the app's first layers byte for byte, the new layer holds
//!   only the missing packages (and the regenerated whole-set files), the
//!   rpmdb lists every package, the image runs, the lock pins the base's
//!   digest, and moving the tag does not change a locked build.
//! - A base whose rpmdb the real rpm wrote (`dnf --installroot`, packed
//!   with minibuild's own image writer): the app resolves only what is
//!   missing.
//! - The same base with its rpmdb as a Berkeley DB `Packages` (rpm < 4.16:
//!   UBI 8), written by Berkeley DB's db5.3_load from the dnf-written
//!   headers: the real rpm's `bdb_ro` reads the same packages as
//!   minibuild's reader (512-byte pages, so overflow chains, and the
//!   default); an app on it resolves only what is missing, its rpmdb is an
//!   rpmdb.sqlite beside the removed `Packages`, and `minibuild diff` reads
//!   the base's packages from it.
//! - A base that keeps setuid files: the app's layer re-ships them cleared.
//! - Refusals: a base without an rpmdb, a request needing another version
//!   of a base package, an unreachable registry.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::Registry;
use common::*;
use serde_json::Value;

const EPOCH: &str = "1700000000";

fn repo_toml() -> String {
    format!(
        "[[repo]]\nname = \"fedora\"\nbaseurl = \"file://{}/repo/$basearch/\"\ngpgcheck = false\n",
        fixtures().display()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A recipe `name` installing `install`, on `base` when given.
fn recipe_text(name: &str, base: Option<&str>, install: &[&str], image_more: &str) -> String {
    let base = base
        .map(|b| format!("base = \"{b}\"\n"))
        .unwrap_or_default();
    format!(
        "[image]\nname = \"{name}\"\narch = [\"x86_64\"]\n{base}{image_more}\n{}\n[packages]\ninstall = {install:?}\n",
        repo_toml()
    )
}

fn build(recipe: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Output {
    let mut cmd = build_cmd(recipe, out, cache);
    cmd.env("SOURCE_DATE_EPOCH", EPOCH).args(extra);
    run_ok(&mut cmd)
}

/// A build that must fail: its stderr.
fn build_fails(recipe: &Path, out: &Path, cache: &Path) -> String {
    let mut cmd = build_cmd(recipe, out, cache);
    let output = cmd.env("SOURCE_DATE_EPOCH", EPOCH).output().unwrap();
    assert!(
        !output.status.success(),
        "the build should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `skopeo inspect --raw SOURCE` as JSON.
fn raw_manifest(source: &str) -> Value {
    require_tool("skopeo");
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw"]);
    if source.starts_with("docker://") {
        cmd.arg("--tls-verify=false");
    }
    serde_json::from_slice(&run_ok(cmd.arg(source)).stdout).unwrap()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The paths of a (gzip) layer blob of an OCI layout.
fn layer_paths(layout: &Path, digest: &str) -> BTreeSet<String> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let file = std::fs::File::open(layout.join("blobs/sha256").join(hex)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            p.trim_start_matches("./").trim_end_matches('/').to_string()
        })
        .collect()
}

/// A base of `install` with `options` in its `[options]`, built in `d`
/// (cache `cache-NAME`) and pushed as `NAME:1`: its reference.
fn push_base(registry: &Registry, d: &Path, name: &str, install: &[&str], options: &str) -> String {
    let reference = format!("{}:1", registry.repo(name));
    let recipe = write(
        d,
        &format!("{name}.toml"),
        &format!(
            "{}\n[options]\n{options}\n",
            recipe_text(name, None, install, "")
        ),
    );
    build(
        &recipe,
        &d.join(format!("{name}.oci.tar")),
        &d.join(format!("cache-{name}")),
        &["--push", &reference],
    );
    reference
}

fn digest_after_at(pinned: &str) -> String {
    pinned.rsplit('@').next().unwrap().to_string()
}

#[test]
fn an_app_on_a_base_minibuild_pushed_keeps_its_layers_and_pins_it() {
    let registry = Registry::open();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base_ref = format!("{}:1", registry.repo("base"));

    // The base: bash and coreutils (and what they need), pushed.
    let base = write(
        d,
        "base.toml",
        &recipe_text(
            "base",
            None,
            &["bash", "coreutils-single"],
            "healthcheck = { test = [\"CMD\", \"/usr/bin/true\"], interval = \"30s\" }",
        ),
    );
    let pushed = build(
        &base,
        &d.join("base.oci.tar"),
        &d.join("cache-base"),
        &["--push", &base_ref],
    );
    let base_digest = digest_after_at(&last_line(&pushed));

    // The app: busybox on the base.
    let app = write(
        d,
        "app.toml",
        &recipe_text(
            "app",
            Some(&base_ref),
            &["busybox"],
            "env = { APP = \"1\" }",
        ),
    );
    let out = d.join("app.oci.tar");
    let first = build(&app, &out, &d.join("cache"), &[]);
    let digest = last_line(&first);
    assert!(
        stderr(&first).contains(&format!("Base image {base_ref}"))
            && stderr(&first).contains(&format!("app layer over the base image {base_ref}:")),
        "{}",
        stderr(&first)
    );

    // The base's layers, byte for byte, then one.
    let base_m = raw_manifest(&format!("docker://{base_ref}"));
    let app_m = raw_manifest(&format!("oci-archive:{}", out.display()));
    let (base_layers, app_layers) = (layer_digests(&base_m), layer_digests(&app_m));
    assert_eq!(app_layers.len(), base_layers.len() + 1, "{app_m}");
    assert_eq!(app_layers[..base_layers.len()], base_layers[..]);
    assert_eq!(
        app_m["annotations"]["org.opencontainers.image.base.name"], base_ref,
        "{app_m}"
    );

    // Only the new package and the regenerated files are in the new layer.
    let rootfs = unpack_image(&format!("oci-archive:{}", out.display()), d, None);
    let new = layer_paths(&d.join("layout"), app_layers.last().unwrap());
    assert!(new.contains("usr/sbin/busybox"), "{new:?}");
    assert!(new.contains("var/lib/rpm/rpmdb.sqlite"), "{new:?}");
    for base_file in ["usr/bin/bash", "usr/bin/ls", "usr/lib64/libc.so.6"] {
        assert!(!new.contains(base_file), "{base_file} re-shipped: {new:?}");
    }

    // The rpmdb lists the base's packages and the new one; the image runs both.
    let names = common::rpm_names(&rootfs);
    for n in ["bash", "coreutils-single", "glibc", "busybox"] {
        assert!(names.contains(n), "{n} not in the rpmdb: {names:?}");
    }
    let hi = run_in(&rootfs, &["/usr/sbin/busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&hi.stdout).trim(), "hi");
    let sh = run_in(&rootfs, &["/usr/bin/bash", "-c", "echo $((6 * 7))"]);
    assert_eq!(String::from_utf8_lossy(&sh.stdout).trim(), "42");

    // The base's config is kept under the recipe's.
    let config_digest = app_m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let config: Value = serde_json::from_slice(
        &std::fs::read(d.join("layout/blobs/sha256").join(config_digest)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["history"].as_array().unwrap().len(),
        app_layers.len()
    );
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "APP=1"),
        "{config}"
    );
    // The base's healthcheck is kept (the app sets none).
    assert_eq!(
        config["config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "/usr/bin/true"], "Interval": 30_000_000_000u64}),
        "{config}"
    );

    // The SBOM lists every package and names the base; so does the provenance.
    let sbom = std::fs::read_to_string(d.join("app.oci.tar.spdx.json")).unwrap();
    assert!(
        sbom.contains("\"bash\"") && sbom.contains("\"busybox\""),
        "{sbom}"
    );
    assert!(sbom.contains(&format!("base image {base_ref}")), "{sbom}");
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(d.join("app.oci.tar.intoto.json")).unwrap()).unwrap();
    let deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let base_dep = deps
        .iter()
        .find(|d| d["name"] == "base")
        .expect("a base dependency");
    assert_eq!(
        format!("sha256:{}", base_dep["digest"]["sha256"].as_str().unwrap()),
        base_digest
    );

    // Pushed, the image is complete (the registry refuses a manifest whose
    // blobs it lacks), and its base layers are the base's own blobs.
    let app_ref = format!("{}:1", registry.repo("app"));
    run_ok(minibuild().arg("push").arg(&out).arg(&app_ref));
    assert_eq!(
        layer_digests(&raw_manifest(&format!("docker://{app_ref}"))),
        app_layers
    );

    let size = |m: &Value, i: usize| m["layers"][i]["size"].as_u64().unwrap();
    eprintln!(
        "measured: base layers {} bytes, new layer {} bytes",
        (0..base_layers.len())
            .map(|i| size(&base_m, i))
            .sum::<u64>(),
        size(&app_m, base_layers.len())
    );

    // A rebuild reads the cache: same digest, even offline.
    let again = build(
        &app,
        &d.join("again.oci.tar"),
        &d.join("cache"),
        &["--offline"],
    );
    assert_eq!(last_line(&again), digest);

    // The lock pins the base's digest; a locked build uses it.
    run_ok(
        minibuild()
            .arg("lock")
            .arg(&app)
            .arg("--cache-dir")
            .arg(d.join("cache")),
    );
    let lock = std::fs::read_to_string(d.join("app.toml.lock")).unwrap();
    assert!(
        lock.contains("[base]") && lock.contains(&base_digest) && lock.contains(&base_ref),
        "{lock}"
    );
    let locked = last_line(&build(&app, &d.join("l1.oci.tar"), &d.join("cache"), &[]));

    // The tag moves to another image: the locked build does not.
    let other = write(
        d,
        "other.toml",
        &recipe_text("other", None, &["bash", "zlib"], ""),
    );
    build(
        &other,
        &d.join("other.oci.tar"),
        &d.join("cache-base"),
        &["--push", &base_ref],
    );
    let locked_again = last_line(&build(&app, &d.join("l2.oci.tar"), &d.join("cache2"), &[]));
    assert_eq!(
        locked_again, locked,
        "a locked build followed the moved tag"
    );
    let unlocked = build(
        &app,
        &d.join("u.oci.tar"),
        &d.join("cache2"),
        &["--no-lock"],
    );
    assert_ne!(last_line(&unlocked), digest, "{}", stderr(&unlocked));
}

/// `rootfs` (a directory) as one layer of an oci-archive written with
/// minibuild's own writer; returns the archive.
fn pack_dir(rootfs: &Path, out: &Path, work: &Path) -> PathBuf {
    use minibuild::image::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
    use minibuild::rootfs::{Entry, Kind, Staging, Tree};
    use std::os::unix::fs::MetadataExt;
    let mut stage = Staging::new(work.join("stage")).unwrap();
    let mut tree = Tree::default();
    let mut todo = vec![rootfs.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(rootfs)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let kind = if meta.file_type().is_symlink() {
                Kind::Symlink {
                    target: std::fs::read_link(&path)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                }
            } else if meta.is_dir() {
                todo.push(path.clone());
                Kind::Dir
            } else if meta.is_file() {
                let mut w = stage.create_blob().unwrap();
                std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut w).unwrap();
                let blob = w.finish().unwrap();
                Kind::File {
                    blob: blob.blob,
                    size: blob.size,
                    link_id: None,
                }
            } else {
                continue; // sockets, devices: not in an image
            };
            tree.entries.insert(
                rel,
                Entry {
                    kind,
                    mode: meta.mode() & 0o7777,
                    user: String::new(),
                    group: String::new(),
                    uid: 0,
                    gid: 0,
                    mtime: 1_700_000_000,
                    xattrs: Default::default(),
                    package: None,
                },
            );
        }
    }
    let mut writer = ImageWriter::new(out).unwrap();
    let opts = LayerOptions {
        source_date_epoch: 1_700_000_000,
        compression: Compression::Gzip,
    };
    let layer = writer.add_layer(&tree, &opts).unwrap();
    let config = ImageConfig::new(minibuild::package::Arch::X86_64, 1_700_000_000);
    writer.add_image(&config, &[layer]).unwrap();
    writer.commit(Format::OciArchive, "1").unwrap();
    out.to_path_buf()
}

#[test]
fn an_app_on_a_base_whose_rpmdb_dnf_wrote_resolves_only_what_is_missing() {
    if !is_root() {
        panic!("dnf --installroot runs the fixtures' scriptlets in a chroot: run as root");
    }
    let registry = Registry::open();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("root");
    std::fs::create_dir_all(&root).unwrap();
    common::treediff::dnf_install(
        &root,
        &[(
            "fixtures",
            format!("file://{}/repo/x86_64/", fixtures().display()),
        )],
        &["bash", "coreutils-single"],
    );
    // Debian's rpm keeps its database in `~/.rpmdb` (here /root/.rpmdb):
    // put it where Fedora keeps it, with Fedora's var/lib/rpm symlink.
    let written = root.join("root/.rpmdb");
    assert!(
        written.join("rpmdb.sqlite").is_file(),
        "dnf wrote no rpmdb.sqlite under {}",
        written.display()
    );
    std::fs::create_dir_all(root.join("usr/lib/sysimage")).unwrap();
    std::fs::rename(&written, root.join("usr/lib/sysimage/rpm")).unwrap();
    let _ = std::fs::remove_dir_all(root.join("var/lib/rpm"));
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("../../usr/lib/sysimage/rpm", root.join("var/lib/rpm")).unwrap();
    let (_, _, rootfs) = app_on_dnf_base(&registry, &root, &d.join("dnf"), "dnf");
    let hi = run_in(&rootfs, &["/usr/sbin/busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&hi.stdout).trim(), "hi");

    // The same base with a Berkeley DB rpmdb, as RHEL/UBI 8 keeps it.
    bdb_base_case(&registry, d, &root);
}

/// `root` (dnf installed bash and coreutils-single) packed and pushed as
/// `{name}base:1`, and an app on it installing busybox and bash built in
/// `work`: only busybox is locked, the image's rpmdb lists both sets.
/// Returns the base's archive, the app's and the app's unpacked rootfs.
fn app_on_dnf_base(
    registry: &Registry,
    root: &Path,
    work: &Path,
    name: &str,
) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(work).unwrap();
    let archive = pack_dir(root, &work.join("base.oci.tar"), work);
    let base_ref = format!("{}:1", registry.repo(&format!("{name}base")));
    run_ok(minibuild().arg("push").arg(&archive).arg(&base_ref));

    let app = write(
        work,
        "app.toml",
        &recipe_text("app", Some(&base_ref), &["busybox", "bash"], ""),
    );
    let out = work.join("app.oci.tar");
    let cache = work.join("cache");
    let log = stderr(&build(&app, &out, &cache, &[]));
    // busybox only: bash and its libraries are the base's.
    run_ok(
        minibuild()
            .arg("lock")
            .arg(&app)
            .arg("--cache-dir")
            .arg(&cache),
    );
    let lock = std::fs::read_to_string(work.join("app.toml.lock")).unwrap();
    let locked: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(locked, ["fedora", "busybox"], "{lock}\n{log}");

    let rootfs = unpack_image(&format!("oci-archive:{}", out.display()), work, None);
    let names = common::rpm_names(&rootfs);
    for n in ["bash", "coreutils-single", "glibc", "busybox"] {
        assert!(names.contains(n), "{n} not in the rpmdb: {names:?}");
    }
    (archive, out, rootfs)
}

/// Turns the dnf-built `root` (rpmdb.sqlite in usr/lib/sysimage/rpm) into a
/// base whose rpmdb is a Berkeley DB `Packages` in a real var/lib/rpm, and
/// builds and diffs an app on it.
fn bdb_base_case(registry: &Registry, d: &Path, root: &Path) {
    let sqlite_dir = root.join("usr/lib/sysimage/rpm");
    let rows = common::bdb::sqlite_rows(&sqlite_dir.join("rpmdb.sqlite"));
    let nevras = |args: &[&str]| -> Vec<String> {
        let out = run_ok(
            Command::new("rpm")
                .args(args)
                .args(["-qa", "--qf", "%{NEVRA}\n"]),
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let from_sqlite = nevras(&["--dbpath", sqlite_dir.to_str().unwrap()]);
    assert!(from_sqlite.len() > 3, "{from_sqlite:?}");
    for page_size in [Some(512), None] {
        let dbdir = d.join(format!("bdb-{page_size:?}"));
        std::fs::create_dir_all(&dbdir).unwrap();
        common::bdb::write_packages(&rows, &dbdir.join("Packages"), page_size);
        let mut by_rpm = common::bdb::rpm_nevras(&dbdir);
        by_rpm.sort();
        assert_eq!(by_rpm, from_sqlite, "rpm's bdb_ro, page size {page_size:?}");
        let bytes = std::fs::read(dbdir.join("Packages")).unwrap();
        let read = minibuild::base_image::rpmdb::bdb_blobs(&bytes).unwrap();
        assert_eq!(read, rows, "minibuild's reader, page size {page_size:?}");
    }

    std::fs::remove_file(root.join("var/lib/rpm")).unwrap();
    std::fs::remove_dir_all(&sqlite_dir).unwrap();
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    std::fs::copy(
        d.join("bdb-Some(512)/Packages"),
        root.join("var/lib/rpm/Packages"),
    )
    .unwrap();
    let (archive, out, rootfs) = app_on_dnf_base(registry, root, &d.join("bdb"), "bdb");
    // The base's Packages is gone (whiteout), its rpmdb.sqlite replaces it.
    assert!(!rootfs.join("var/lib/rpm/Packages").exists());
    assert!(rootfs.join("var/lib/rpm/rpmdb.sqlite").is_file());

    // `minibuild diff` reads the base's packages from its Packages.
    let diffed = minibuild()
        .arg("diff")
        .arg(&archive)
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&diffed.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&diffed)));
    let packages = &v["parts"][0]["packages"];
    assert_eq!(packages["source"], "rpmdb", "{v}");
    let changes: Vec<(&str, &str)> = packages["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap(), c["new"].as_str().unwrap()))
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, "added");
    assert!(changes[0].1.starts_with("busybox-"), "{changes:?}");

    // The check gates read the base's packages from its Packages too (exit 3).
    let checked = minibuild()
        .arg("check")
        .arg(&archive)
        .args(["--forbid-package", "bash*"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(3), "{out}{}", stderr(&checked));
    assert!(
        out.contains("gate failed: forbid_packages: `bash*` matches installed bash"),
        "{out}"
    );
}

#[test]
fn a_base_without_rpmdb_another_version_or_no_registry_is_refused_by_name() {
    let registry = Registry::open();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A minibuild image with `rpmdb = false` cannot be a base.
    let bare_ref = push_base(&registry, d, "bare", &["busybox"], "rpmdb = false");
    let on_bare = write(
        d,
        "on-bare.toml",
        &recipe_text("x", Some(&bare_ref), &["zlib"], ""),
    );
    let err = build_fails(&on_bare, &d.join("x.oci.tar"), &d.join("cache"));
    assert!(
        err.contains(&bare_ref) && err.contains("no rpm database") && err.contains("rpmdb = false"),
        "{err}"
    );

    // A base with the older busybox; the app needs the newer.
    let old_ref = format!("{}:1", registry.repo("old"));
    let old = write(
        d,
        "old.toml",
        &recipe_text("old", None, &["busybox = 1:1.35.0-3.fc40"], ""),
    );
    build(
        &old,
        &d.join("old.oci.tar"),
        &d.join("cache"),
        &["--push", &old_ref],
    );
    let newer = write(
        d,
        "newer.toml",
        &recipe_text("newer", Some(&old_ref), &["busybox >= 1:1.35.0-4.fc40"], ""),
    );
    let err = build_fails(&newer, &d.join("n.oci.tar"), &d.join("cache"));
    assert!(
        err.contains("busybox-1:1.35.0-4.fc40.x86_64 is needed")
            && err.contains(&format!(
                "base image {old_ref} installs busybox-1:1.35.0-3.fc40"
            )),
        "{err}"
    );

    // A local RPM of a base package, another version: refused the same way
    // (neither hidden by the local copy nor silently taken in its place).
    let local_rpm = common::fixtures().join("repo/x86_64/busybox-1.35.0-4.fc40.x86_64.rpm");
    let local = write(
        d,
        "local.toml",
        &format!(
            "{}local = [{:?}]\nlocal_gpgcheck = false\n",
            recipe_text("local", Some(&old_ref), &[], ""),
            local_rpm.display().to_string()
        ),
    );
    let err = build_fails(&local, &d.join("l.oci.tar"), &d.join("cache"));
    assert!(
        err.contains("busybox-1:1.35.0-4.fc40.x86_64 is needed")
            && err.contains(&format!(
                "base image {old_ref} installs busybox-1:1.35.0-3.fc40"
            )),
        "{err}"
    );

    // Nobody listens: the error names the reference.
    let gone = format!(
        "127.0.0.1:{}/base:1",
        common::registry::free_port("127.0.0.1")
    );
    let on_gone = write(
        d,
        "gone.toml",
        &recipe_text("g", Some(&gone), &["zlib"], ""),
    );
    let err = build_fails(&on_gone, &d.join("g.oci.tar"), &d.join("cache"));
    assert!(err.contains(&gone) && err.contains("cannot reach"), "{err}");

    // Not a reference at all: the recipe line is named.
    let typo = write(
        d,
        "typo.toml",
        &recipe_text("t", Some("Not A Reference"), &["zlib"], ""),
    );
    let err = build_fails(&typo, &d.join("t.oci.tar"), &d.join("cache"));
    assert!(
        err.contains("typo.toml") && err.contains("neither a core recipe"),
        "{err}"
    );
}

/// `minibuild build a.toml b.toml` pulls a base from a registry that needs
/// credentials with `--creds`, as a single build does; without them (and
/// no auth file) the pull is refused, naming the base.
#[test]
fn several_recipes_pull_an_authenticated_base_with_creds() {
    let registry = Registry::with_htpasswd("tester", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base_ref = format!("{}:1", registry.repo("base"));
    // No auth file: only the flags can log in.
    let isolated = |cmd: &mut std::process::Command| {
        cmd.env("HOME", d)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR");
    };
    let base = write(d, "base.toml", &recipe_text("base", None, &["bash"], ""));
    let mut cmd = build_cmd(&base, &d.join("base.tar"), &d.join("cache"));
    cmd.args(["--push", &base_ref, "--creds", "tester:s3cret"]);
    isolated(&mut cmd);
    run_ok(&mut cmd);

    let apps: Vec<PathBuf> = ["app1", "app2"]
        .iter()
        .map(|n| {
            write(
                d,
                &format!("{n}.toml"),
                &recipe_text(n, Some(&base_ref), &["busybox"], ""),
            )
        })
        .collect();
    std::fs::create_dir(d.join("out")).unwrap();
    let several = |cache: &str, creds: bool| {
        let mut cmd = minibuild();
        cmd.arg("build")
            .args(&apps)
            .arg("--output-dir")
            .arg(d.join("out"))
            .arg("--cache-dir")
            .arg(d.join(cache))
            .env("CI", "1");
        if creds {
            cmd.args(["--creds", "tester:s3cret"]);
        }
        isolated(&mut cmd);
        cmd.output().unwrap()
    };
    let refused = several("cache-none", false);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(&base_ref) && err.contains("requires authentication"),
        "{err}"
    );

    let out = several("cache-creds", true);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for app in &apps {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{} sha256:", app.display()))),
            "{text}"
        );
    }
}

/// A base built with `strip_setuid = false` (mount, umount and write keep
/// their bits), an app on it with the default: hardening covers the whole
/// tree, so those three are re-shipped in the new layer with the bits
/// cleared, the build names each, and `check` finds none in the result.
#[test]
fn a_base_setuid_file_is_cleared_in_the_new_layer() {
    let registry = Registry::open();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base_ref = push_base(
        &registry,
        d,
        "suidbase",
        &["util-linux-core", "bash"],
        "strip_setuid = false",
    );
    let app = write(
        d,
        "app.toml",
        &recipe_text("app", Some(&base_ref), &["busybox"], ""),
    );
    let out = d.join("app.oci.tar");
    let log = stderr(&build(&app, &out, &d.join("cache"), &[]));
    for (path, was) in [("mount", "4755"), ("umount", "4755"), ("write", "2755")] {
        assert!(
            log.contains(&format!(
                "cleared setuid/setgid on /usr/bin/{path} (was {was})"
            )),
            "{log}"
        );
    }
    let app_m = raw_manifest(&format!("oci-archive:{}", out.display()));
    let rootfs = unpack_image(&format!("oci-archive:{}", out.display()), d, None);
    let new = layer_paths(&d.join("layout"), layer_digests(&app_m).last().unwrap());
    for path in ["usr/bin/mount", "usr/bin/umount", "usr/bin/write"] {
        assert!(new.contains(path), "{path} not in the new layer: {new:?}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(rootfs.join(path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "{path}");
    }
    let checked = minibuild().arg("check").arg(&out).output().unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{report}{}",
        stderr(&checked)
    );
    assert!(!report.contains("setuid"), "{report}");
}
