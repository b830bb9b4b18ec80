//! End-to-end tests of unpack + harden + assign_ids on RPMs built here with
//! the `rpm` crate's `PackageBuilder`, plus a corpus run checked against
//! `rpm2cpio | cpio`.

use std::fs;
use std::path::{Path, PathBuf};

use rpm::{BuildConfig, CompressionType, FileOptions, PackageBuilder, Scriptlet};

use super::harden::{assign_ids, harden, HardenOptions};
use super::unpack::{unpack, ScriptletKind, UnpackError, UnpackOptions};
use super::{Entry, Kind, Staging, Tree, TreeError};
use crate::package::file::RpmFile;

/// A tempdir holding `staging/` and the built RPMs in `rpms/`: anything
/// else appearing in it was written outside the staging area.
struct Env {
    root: tempfile::TempDir,
    tree: Tree,
    staging: Staging,
}

impl Env {
    fn new() -> Env {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("rpms")).unwrap();
        let staging = Staging::new(root.path().join("staging")).unwrap();
        Env {
            root,
            tree: Tree::default(),
            staging,
        }
    }

    fn write(&self, builder: &mut PackageBuilder) -> PathBuf {
        let pkg = builder.build().unwrap();
        let path = self
            .root
            .path()
            .join("rpms")
            .join(pkg.canonical_filename().unwrap());
        pkg.write_file(&path).unwrap();
        path
    }

    fn install(
        &mut self,
        builder: &mut PackageBuilder,
        opts: &UnpackOptions,
    ) -> Result<super::PackageReport, UnpackError> {
        let path = self.write(builder);
        let rpm = RpmFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
        unpack(&mut self.tree, &mut self.staging, &rpm, opts)
    }

    fn entry(&self, path: &str) -> &Entry {
        self.tree
            .entries
            .get(path)
            .unwrap_or_else(|| panic!("`{path}` not in tree: {:?}", self.paths()))
    }

    fn paths(&self) -> Vec<&str> {
        self.tree.entries.keys().map(String::as_str).collect()
    }

    fn content(&self, path: &str) -> Vec<u8> {
        match &self.entry(path).kind {
            Kind::File { blob, .. } => blob.read_to_vec().unwrap(),
            other => panic!("`{path}` is {other:?}"),
        }
    }

    /// Every file under the tempdir is an RPM we built or the staging pack.
    fn assert_nothing_outside_staging(&self) {
        let staging = self.staging.dir().to_path_buf();
        let mut stack = vec![fs::canonicalize(self.root.path()).unwrap()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    assert!(
                        p == staging || p.ends_with("rpms"),
                        "unexpected directory {}",
                        p.display()
                    );
                    stack.push(p);
                } else {
                    let ok = p == staging.join(super::staging::PACK_NAME)
                        || p.extension().is_some_and(|x| x == "rpm");
                    assert!(ok && ft.is_file(), "unexpected file {}", p.display());
                }
            }
        }
    }
}

fn builder(name: &str) -> PackageBuilder {
    let mut b = PackageBuilder::new(name, "1.0", "MIT", "x86_64", "test package");
    b.release("1");
    b
}

fn v6(b: &mut PackageBuilder) -> &mut PackageBuilder {
    b.using_config(BuildConfig::v6().compression(CompressionType::Xz))
}

/// The kinds of entries every basic test package ships.
fn basic_package(name: &str) -> PackageBuilder {
    let mut b = builder(name);
    b.with_file_contents(
        "hello\n",
        FileOptions::new("/usr/bin/hello").permissions(0o4755),
    )
    .unwrap()
    .with_file_contents(
        "same\n",
        FileOptions::new("/usr/bin/link-a").hardlink("set"),
    )
    .unwrap()
    .with_file_contents(
        "same\n",
        FileOptions::new("/usr/bin/link-b").hardlink("set"),
    )
    .unwrap()
    .with_dir_entry(
        FileOptions::dir("/var/lib/app")
            .permissions(0o750)
            .user("app")
            .group("app"),
    )
    .unwrap()
    .with_symlink(FileOptions::symlink("/usr/bin/hi", "hello"))
    .unwrap()
    .with_file_contents(
        "manual",
        FileOptions::new("/usr/share/doc/app/README").doc(),
    )
    .unwrap()
    .with_file_contents(
        "MIT",
        FileOptions::new("/usr/share/licenses/app/LICENSE").license(),
    )
    .unwrap()
    .with_file_contents(
        "Hallo",
        FileOptions::new("/usr/share/locale/de/app.mo").language("de"),
    )
    .unwrap()
    .with_file_contents(
        "Bonjour",
        FileOptions::new("/usr/share/locale/fr/app.mo").language("fr"),
    )
    .unwrap()
    .with_file_contents(
        "key=1\n",
        FileOptions::new("/etc/app.conf").config().noreplace(),
    )
    .unwrap()
    .with_ghost(FileOptions::ghost("/var/log/app/app.log"))
    .unwrap()
    .with_file_contents(
        "ping",
        FileOptions::new("/usr/bin/ping")
            .caps("cap_net_raw=ep")
            .unwrap(),
    )
    .unwrap()
    .with_special_file(FileOptions::fifo("/run/app.fifo"))
    .unwrap()
    .with_special_file(FileOptions::character_device("/dev/null", 1, 3))
    .unwrap()
    .pre_install_script("echo pre")
    .post_install_script(Scriptlet::new("").prog(vec!["/sbin/ldconfig"]));
    b
}

fn check_basic(env: &Env, report: &super::PackageReport) {
    assert_eq!(env.content("usr/bin/hello"), b"hello\n");
    assert_eq!(env.entry("usr/bin/hello").mode, 0o4755);
    assert_eq!(env.entry("usr/bin/hello").package.as_deref(), Some("basic"));
    // Hardlinks share one blob and one link id.
    let (a, b) = (
        &env.entry("usr/bin/link-a").kind,
        &env.entry("usr/bin/link-b").kind,
    );
    match (a, b) {
        (
            Kind::File {
                blob: ba,
                link_id: Some(la),
                size: 5,
            },
            Kind::File {
                blob: bb,
                link_id: Some(lb),
                size: 5,
            },
        ) => assert_eq!((ba, la), (bb, lb)),
        other => panic!("hardlinks: {other:?}"),
    }
    assert_eq!(env.content("usr/bin/link-b"), b"same\n");
    let app = env.entry("var/lib/app");
    assert_eq!(
        (&app.kind, app.mode, app.user.as_str()),
        (&Kind::Dir, 0o750, "app")
    );
    assert_eq!(
        env.entry("usr/bin/hi").kind,
        Kind::Symlink {
            target: "hello".into()
        }
    );
    // %doc dropped, %license kept, only C/untagged languages, %config kept.
    assert!(!env.tree.entries.contains_key("usr/share/doc/app/README"));
    assert_eq!(env.content("usr/share/licenses/app/LICENSE"), b"MIT");
    assert!(!env.tree.entries.contains_key("usr/share/locale/de/app.mo"));
    assert!(!env.tree.entries.contains_key("usr/share/locale/fr/app.mo"));
    assert_eq!(env.content("etc/app.conf"), b"key=1\n");
    // %ghost not created, but its parent directory is.
    assert!(!env.tree.entries.contains_key("var/log/app/app.log"));
    assert_eq!(env.entry("var/log/app").kind, Kind::Dir);
    assert_eq!(env.entry("var/log/app").package, None);
    // Implied parents: 0755 root:root, no package.
    let usr = env.entry("usr");
    assert_eq!(
        (usr.mode, usr.user.as_str(), &usr.package),
        (0o755, "root", &None)
    );
    assert_eq!(env.entry("run/app.fifo").kind, Kind::Fifo);
    assert!(!env.tree.entries.contains_key("dev/null"));
    assert_eq!(report.skipped_devices, ["/dev/null"]);
    assert_eq!(
        (
            report.skipped_docs,
            report.skipped_langs,
            report.skipped_ghosts
        ),
        (1, 2, 1)
    );
    // The doc and the two other-language files are "not installed" in the
    // rpmdb; the ghost and the device node are not (rpm installs those).
    assert_eq!(report.not_installed.len(), 3, "{:?}", report.not_installed);
    let caps = &env.entry("usr/bin/ping").xattrs["security.capability"];
    assert_eq!(caps[..8], [1, 0, 0, 2, 0, 0x20, 0, 0]);
    let kinds: Vec<_> = report.scriptlets.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [ScriptletKind::PreIn, ScriptletKind::PostIn]);
    assert_eq!(report.scriptlets[1].interpreter, ["/sbin/ldconfig"]);
    assert_eq!(report.nevra, "basic-1.0-1.x86_64");
}

#[test]
fn unpacks_every_kind_with_filters_newc() {
    let mut env = Env::new();
    let report = env
        .install(&mut basic_package("basic"), &UnpackOptions::default())
        .unwrap();
    check_basic(&env, &report);
    env.assert_nothing_outside_staging();
}

#[test]
fn unpacks_every_kind_with_filters_stripped_cpio() {
    let mut env = Env::new();
    let report = env
        .install(v6(&mut basic_package("basic")), &UnpackOptions::default())
        .unwrap();
    check_basic(&env, &report);
}

#[test]
fn every_payload_compressor_streams() {
    for compression in [
        CompressionType::None,
        CompressionType::Gzip,
        CompressionType::Zstd,
        CompressionType::Xz,
    ] {
        let mut env = Env::new();
        let mut b = builder("c");
        b.using_config(BuildConfig::v4().compression(compression))
            .with_file_contents(vec![7u8; 100_000], FileOptions::new("/data"))
            .unwrap();
        env.install(&mut b, &UnpackOptions::default())
            .unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(env.content("data"), vec![7u8; 100_000], "{compression:?}");
    }
}

#[test]
fn options_keep_docs_langs_and_drop_caps() {
    let mut env = Env::new();
    let opts = UnpackOptions {
        docs: true,
        langs: vec!["de".into()],
        keep_caps: false,
        ..Default::default()
    };
    let report = env.install(&mut basic_package("basic"), &opts).unwrap();
    assert_eq!(env.content("usr/share/doc/app/README"), b"manual");
    assert_eq!(env.content("usr/share/locale/de/app.mo"), b"Hallo");
    assert!(!env.tree.entries.contains_key("usr/share/locale/fr/app.mo"));
    assert!(env.entry("usr/bin/ping").xattrs.is_empty());
    assert_eq!((report.skipped_docs, report.skipped_langs), (0, 1));
}

#[test]
fn harden_strips_setuid_and_ids_come_from_image_passwd() {
    let mut env = Env::new();
    let mut setup = builder("setup");
    setup
        .with_file_contents(
            "root:x:0:0:root:/root:/bin/bash\napp:x:990:985::/var/lib/app:/sbin/nologin\n",
            FileOptions::new("/etc/passwd"),
        )
        .unwrap()
        .with_file_contents("root:x:0:\napp:x:985:\n", FileOptions::new("/etc/group"))
        .unwrap();
    env.install(&mut setup, &UnpackOptions::default()).unwrap();
    env.install(&mut basic_package("basic"), &UnpackOptions::default())
        .unwrap();

    let report = harden(
        &mut env.tree,
        &HardenOptions::default(),
        &["setup", "basic"],
    )
    .unwrap();
    assert_eq!(
        report.setuid_stripped,
        [("usr/bin/hello".to_string(), 0o4755)]
    );
    assert_eq!(env.entry("usr/bin/hello").mode, 0o755);

    assert!(assign_ids(&mut env.tree).unwrap().is_empty());
    let app = env.entry("var/lib/app");
    assert_eq!((app.uid, app.gid), (990, 985));
    assert_eq!(
        (env.entry("usr/bin/hello").uid, env.entry("usr").gid),
        (0, 0)
    );

    // A name the image does not define falls back to root, as rpm does,
    // and is returned naming path and package for the build report.
    let mut odd = builder("odd");
    odd.with_file_contents("x", FileOptions::new("/srv/x").user("ghost").group("app"))
        .unwrap();
    env.install(&mut odd, &UnpackOptions::default()).unwrap();
    let unknown = assign_ids(&mut env.tree).unwrap();
    assert_eq!(unknown, ["  /srv/x (odd): unknown user `ghost`"]);
    let x = env.entry("srv/x");
    assert_eq!((x.uid, x.gid), (0, 985));
}

#[test]
fn symlinked_parent_directories_are_followed_in_the_tree() {
    for stripped in [false, true] {
        let mut env = Env::new();
        let mut fs_pkg = builder("filesystem");
        fs_pkg
            .with_dir_entry(FileOptions::dir("/usr/lib64"))
            .unwrap()
            .with_symlink(FileOptions::symlink("/lib64", "usr/lib64"))
            .unwrap();
        let mut libc = builder("glibc");
        libc.with_file_contents("ELF", FileOptions::new("/lib64/libc.so.6"))
            .unwrap();
        if stripped {
            v6(&mut libc);
        }
        env.install(&mut fs_pkg, &UnpackOptions::default()).unwrap();
        env.install(&mut libc, &UnpackOptions::default()).unwrap();
        assert_eq!(env.content("usr/lib64/libc.so.6"), b"ELF");
        assert_eq!(
            env.entry("lib64").kind,
            Kind::Symlink {
                target: "usr/lib64".into()
            }
        );
        assert!(!env.tree.entries.contains_key("lib64/libc.so.6"));
        env.assert_nothing_outside_staging();
    }
}

#[test]
fn hostile_paths_stay_inside_the_tree() {
    // A name that must never appear on the host, e.g. as /tmp/<unique>.
    let unique = format!("minibuild-escape-test-{}", std::process::id());
    let mut env = Env::new();
    let mut evil = builder("evil");
    evil.with_file_contents("pwned\n", FileOptions::new("/../../etc/passwd"))
        .unwrap()
        .with_file_contents("d", FileOptions::new(format!("/../../../../tmp/{unique}")))
        .unwrap()
        .with_symlink(FileOptions::symlink("/up", "../../.."))
        .unwrap();
    env.install(&mut evil, &UnpackOptions::default()).unwrap();
    // `../../etc/passwd` is clamped at the image root.
    assert_eq!(env.content("etc/passwd"), b"pwned\n");

    let mut evil2 = builder("evil2");
    evil2
        .with_symlink(FileOptions::symlink("/hostroot", "/"))
        .unwrap()
        .with_symlink(FileOptions::symlink("/hostroot2", "../../../../.."))
        .unwrap();
    env.install(&mut evil2, &UnpackOptions::default()).unwrap();
    let mut through = builder("through");
    through
        .with_file_contents("a", FileOptions::new("/hostroot/etc/shadow"))
        .unwrap()
        .with_file_contents("b", FileOptions::new(format!("/up/var/tmp/{unique}")))
        .unwrap()
        .with_file_contents("c", FileOptions::new("/hostroot2/root/.bashrc"))
        .unwrap();
    env.install(&mut through, &UnpackOptions::default())
        .unwrap();
    assert_eq!(env.content("etc/shadow"), b"a");
    assert_eq!(env.content(&format!("var/tmp/{unique}")), b"b");
    assert_eq!(env.content(&format!("tmp/{unique}")), b"d");
    for host in ["/tmp", "/var/tmp", "/"] {
        assert!(!Path::new(host).join(&unique).exists(), "escaped to {host}");
    }
    assert_eq!(env.content("root/.bashrc"), b"c");
    assert!(env
        .paths()
        .iter()
        .all(|p| !p.starts_with('/') && !p.split('/').any(|c| c == "..")));
    env.assert_nothing_outside_staging();
}

#[test]
fn absolute_symlink_to_root_as_parent_lands_at_root() {
    let mut env = Env::new();
    let mut a = builder("a");
    a.with_symlink(FileOptions::symlink("/etc", "/")).unwrap();
    env.install(&mut a, &UnpackOptions::default()).unwrap();
    let mut b = builder("b");
    b.with_file_contents("x", FileOptions::new("/etc/passwd"))
        .unwrap();
    env.install(&mut b, &UnpackOptions::default()).unwrap();
    assert_eq!(env.content("passwd"), b"x");
    assert!(!env.tree.entries.contains_key("etc/passwd"));
    env.assert_nothing_outside_staging();
}

#[test]
fn conflicting_files_between_packages_are_errors() {
    let mut env = Env::new();
    let mut a = builder("a");
    a.with_file_contents("one", FileOptions::new("/etc/shared.conf"))
        .unwrap();
    let mut same = builder("same");
    same.with_file_contents("one", FileOptions::new("/etc/shared.conf"))
        .unwrap();
    let mut b = builder("b");
    b.with_file_contents("two", FileOptions::new("/etc/shared.conf"))
        .unwrap();
    env.install(&mut a, &UnpackOptions::default()).unwrap();
    // Identical content from another package is fine (rpm agrees), and
    // its duplicate blob is given back (it was the pack's tail).
    env.install(&mut same, &UnpackOptions::default()).unwrap();
    assert_eq!(env.staging.pack_len(), 3, "only `one` once");
    // Both own it: removing `a` alone (the package manager) must keep it.
    assert_eq!(env.entry("etc/shared.conf").package.as_deref(), Some("a"));
    assert_eq!(
        env.tree.co_owners["etc/shared.conf"],
        ["same".to_string()].into()
    );
    let err = env.install(&mut b, &UnpackOptions::default()).unwrap_err();
    match &err {
        UnpackError::Tree { nevra, source, .. } => {
            assert_eq!(nevra, "b-1.0-1.x86_64");
            assert!(
                matches!(&**source, TreeError::Conflict { path, existing, new, .. }
                    if path == "etc/shared.conf" && existing == "package a" && new == "b-1.0-1.x86_64"),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.content("etc/shared.conf"), b"one");
}

#[test]
fn exclude_paths_settle_a_conflict_and_write_neither_copy() {
    let mut env = Env::new();
    let opts = UnpackOptions {
        exclude_paths: vec![
            super::exclude::PathPattern::parse("/etc/shared.conf").unwrap(),
            super::exclude::PathPattern::parse("/usr/lib/x").unwrap(),
        ],
        ..Default::default()
    };
    let mut fs_pkg = builder("filesystem");
    fs_pkg
        .with_symlink(FileOptions::symlink("/lib", "usr/lib"))
        .unwrap();
    let mut a = builder("a");
    a.with_file_contents("one", FileOptions::new("/etc/shared.conf"))
        .unwrap()
        .with_file_contents("a", FileOptions::new("/etc/a.conf"))
        .unwrap();
    let mut b = builder("b");
    b.with_file_contents("two", FileOptions::new("/etc/shared.conf"))
        .unwrap()
        // Excluded through the symlinked spelling /lib → usr/lib.
        .with_file_contents("x", FileOptions::new("/lib/x/data"))
        .unwrap();
    env.install(&mut fs_pkg, &opts).unwrap();
    let ra = env.install(&mut a, &opts).unwrap();
    let rb = env.install(&mut b, &opts).unwrap();
    assert_eq!(ra.excluded, ["/etc/shared.conf"]);
    assert_eq!(rb.excluded, ["/etc/shared.conf", "/lib/x/data"]);
    // By header index (files sorted by path): rpm's --excludepath state.
    assert_eq!(ra.not_installed, [1].into());
    assert_eq!(rb.not_installed, [0, 1].into());
    assert!(!env.tree.entries.contains_key("etc/shared.conf"));
    assert!(!env.tree.entries.contains_key("usr/lib/x/data"));
    assert_eq!(env.content("etc/a.conf"), b"a");
    // Only a.conf's content (`a`) reached the staging pack.
    assert_eq!(env.staging.pack_len(), 1);
}

/// Runs over every binary RPM of the shared corpus (423 from rpm, rpm-rs,
/// createrepo_c, dnf5, libdnf, pulp…: v4 newc and v6 stripped payloads,
/// gzip/xz/zstd/uncompressed, rpm 4.4 to 6) and compares the tree with what
/// rpm's own `rpm2archive` extracts: same paths, kinds, modes, symlink
/// targets, file contents and hardlink sets; a package rpm2archive refuses
/// must be refused. The corpus has no bzip2 or lzma payload:
/// tests/payloads.rs builds those with rpmbuild.
/// Needs the shared corpus and rpm2archive (`make deps-test`).
#[test]
fn corpus_rpms_match_rpm2archive() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let corpus = crate::testing::corpus("");
    // Payload compressor (as the header names it) → packages compared.
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    let mut rpms = Vec::new();
    let mut stack = vec![corpus.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rpm")
                && !p.to_string_lossy().ends_with(".src.rpm")
            {
                rpms.push(p);
            }
        }
    }
    rpms.sort();
    assert!(
        rpms.len() >= 10,
        "found only {} RPMs under {}",
        rpms.len(),
        corpus.display()
    );
    let opts = UnpackOptions {
        docs: true,
        langs: vec!["all".into()],
        keep_caps: true,
        ..Default::default()
    };
    let mut compared = 0;
    for rpm_path in &rpms {
        let mut env = Env::new();
        let out = env.root.path().join("extracted");
        fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "rpm2archive -n - < '{}' | tar -xpf -",
                rpm_path.display()
            ))
            .current_dir(&out)
            .status()
            .expect("sh/rpm2archive/tar not installed");
        let rpm = RpmFile::open(rpm_path);
        let ours = rpm.as_ref().map_err(|e| format!("{e:#?}")).and_then(|rpm| {
            unpack(&mut env.tree, &mut env.staging, rpm, &opts).map_err(|e| format!("{e:#?}"))
        });
        let report = match (status.success(), ours) {
            (true, Ok(report)) => report,
            (false, Err(e)) => {
                eprintln!("{}: rejected like rpm2archive: {e}", rpm_path.display());
                continue;
            }
            (true, Err(e)) => panic!("{}: {e}", rpm_path.display()),
            (false, Ok(_)) => panic!("{}: rpm2archive rejects it, we did not", rpm_path.display()),
        };
        let meta = rpm.as_ref().unwrap().metadata();
        let kind = meta
            .header
            .get_entry_data_as_string(rpm::IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
            .unwrap_or("(no tag)");
        *kinds.entry(kind.to_string()).or_default() += 1;
        let what = |path: &str| format!("{}: /{path}", rpm_path.display());
        // inode of rpm2archive's copy → link id of ours, to compare hardlink sets.
        let mut links = std::collections::BTreeMap::new();
        for (path, e) in &env.tree.entries {
            let theirs = out.join(path);
            let Ok(meta) = fs::symlink_metadata(&theirs) else {
                // Implied directories of %ghost files are ours alone.
                assert!(
                    e.package.is_none(),
                    "{} not in rpm2archive's output",
                    what(path)
                );
                continue;
            };
            if e.package.is_some() {
                assert_eq!(meta.permissions().mode() & 0o7777, e.mode, "{}", what(path));
            }
            match &e.kind {
                Kind::Dir => assert!(meta.is_dir(), "{}", what(path)),
                Kind::Symlink { target } => assert_eq!(
                    fs::read_link(&theirs).unwrap().to_str().unwrap(),
                    target,
                    "{}",
                    what(path)
                ),
                Kind::Fifo => assert!(meta.permissions().mode() & 0o170000 == 0o010000),
                Kind::File { blob, link_id, .. } => {
                    assert_eq!(
                        blob.read_to_vec().unwrap(),
                        fs::read(&theirs).unwrap(),
                        "{}",
                        what(path)
                    );
                    if meta.nlink() > 1 {
                        let ours = links.entry(meta.ino()).or_insert(*link_id);
                        assert!(link_id.is_some() && *ours == *link_id, "{}", what(path));
                    }
                    compared += 1;
                }
            }
        }
        eprintln!(
            "{}: {} paths, {} scriptlets not run, {} devices skipped",
            report.nevra,
            env.tree.entries.len(),
            report.scriptlets.len(),
            report.skipped_devices.len()
        );
    }
    eprintln!("packages compared, by payload compressor: {kinds:?}");
    for kind in ["gzip", "xz", "zstd", "(no tag)"] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} payload in the corpus: {kinds:?}"
        );
    }
    assert!(compared > 300, "only {compared} files compared");
}

/// Throughput and peak memory of `unpack` on one RPM: the largest corpus
/// RPM, or `MINIBUILD_BENCH_RPM`. Run in release mode:
/// `cargo test --release --lib rootfs::tests::bench -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn bench_unpack_throughput_and_peak_rss() {
    let rpm_path = std::env::var_os("MINIBUILD_BENCH_RPM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::testing::corpus(
                "rpm-rs-rpm/test_assets/389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm",
            )
        });
    assert!(rpm_path.is_file(), "{} missing", rpm_path.display());
    let hwm = || {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = hwm();
    let mut env = Env::new();
    let start = std::time::Instant::now();
    unpack(
        &mut env.tree,
        &mut env.staging,
        &RpmFile::open(&rpm_path).unwrap(),
        &UnpackOptions {
            docs: true,
            langs: vec!["all".into()],
            keep_caps: true,
            ..Default::default()
        },
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let installed: u64 = env
        .tree
        .entries
        .values()
        .map(|e| match e.kind {
            Kind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    let packed = fs::metadata(&rpm_path).unwrap().len();
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "{}: {:.1} MB rpm, {:.1} MB installed, {} paths in {secs:.2}s = {:.0} MB/s installed, {:.0} MB/s rpm; VmHWM {} MiB before, {} MiB after",
        rpm_path.display(),
        mb(packed),
        mb(installed),
        env.tree.entries.len(),
        mb(installed) / secs,
        mb(packed) / secs,
        before / 1024,
        hwm() / 1024,
    );
    assert!(installed > 0);
}

/// Spike (issue 16 item 5): the payload read by minibuild's `cpio.rs` and by
/// the `rpm` crate's streaming `PackageReader`, every member's data to a
/// sink, best of 5; and the full `unpack` for scale. Every fixture RPM
/// (the five largest named, then the total) and the largest corpus RPM:
/// `cargo test --lib rootfs::tests::spike -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn spike_payload_readers() {
    use super::cpio::{Bounded, CpioReader, Member};
    use std::time::Instant;
    let fixtures = std::env::var_os("MINIBUILD_FIXTURES")
        .map(PathBuf::from)
        .expect("MINIBUILD_FIXTURES")
        .join("repo/x86_64");
    let mut rpms: Vec<PathBuf> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    rpms.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    rpms.push(crate::testing::corpus(
        "rpm-rs-rpm/test_assets/389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm",
    ));
    let best = |f: &mut dyn FnMut() -> u64| {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            bytes = f();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (times.into_iter().fold(f64::MAX, f64::min), bytes)
    };
    let mut totals = [0.0; 3];
    for (i, path) in rpms.iter().enumerate() {
        let (ours, ours_bytes) = best(&mut || {
            let rpm = RpmFile::open(path).unwrap();
            let tag = rpm
                .metadata()
                .header
                .get_entry_data_as_string(rpm::IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
                .unwrap_or("gzip");
            let decoder = super::payload::Compressor::from_tag(tag)
                .unwrap()
                .decoder(rpm.payload().unwrap())
                .unwrap();
            let mut cpio = CpioReader::new(Bounded::new(decoder, u64::MAX));
            let mut n = 0;
            while let Some(m) = cpio.next_member().unwrap() {
                if let Member::Indexed { .. } = m {
                    unreachable!("no stripped payloads here");
                }
                n += cpio.copy_data(&mut std::io::sink()).unwrap();
            }
            n
        });
        let (crate_reader, crate_bytes) = best(&mut || {
            let mut reader = rpm::PackageReader::open(path).unwrap();
            let mut n = 0;
            while let Some(mut file) = reader.next_file().unwrap() {
                n += std::io::copy(&mut file, &mut std::io::sink()).unwrap();
                file.finish().unwrap();
            }
            n
        });
        let (full, _) = best(&mut || {
            let mut env = Env::new();
            let rpm = RpmFile::open(path).unwrap();
            let opts = UnpackOptions {
                docs: true,
                langs: vec!["all".into()],
                ..Default::default()
            };
            unpack(&mut env.tree, &mut env.staging, &rpm, &opts).unwrap();
            0
        });
        if i + 1 < rpms.len() {
            for (t, v) in totals.iter_mut().zip([ours, crate_reader, full]) {
                *t += v;
            }
        }
        if i >= 5 && i + 1 < rpms.len() {
            continue;
        }
        eprintln!(
            "{}: cpio.rs {ours:.1} ms ({ours_bytes} B), rpm::PackageReader {crate_reader:.1} ms ({crate_bytes} B), full unpack {full:.1} ms",
            path.file_name().unwrap().to_string_lossy()
        );
    }
    eprintln!(
        "all {} fixture RPMs: cpio.rs {:.1} ms, rpm::PackageReader {:.1} ms, full unpack {:.1} ms",
        rpms.len() - 1,
        totals[0],
        totals[1],
        totals[2]
    );
}
