//! Golden digests: the exact bytes minibuild writes for fixed inputs.
//!
//! Users pin images by digest, so a digest that moves without notice breaks
//! their pins and their reproducibility claims. These tests pin:
//!
//! - the library level (the primary guard): fixed trees written through
//!   `image::ImageWriter` as uncompressed, gzip and zstd layers, one platform
//!   and two. Only a change to the layer, config, manifest or index writers,
//!   or to a compressor (flate2's backend, zstd, tar), moves these.
//! - one fixture build end to end: the binary on the fixture repository with
//!   a fixed recipe and SOURCE_DATE_EPOCH, built from a file path, a
//!   symlinked path and an HTTP mirror, with other cache dirs and (as root)
//!   as another user, all of which must give the same digest. Changes to the
//!   rootfs (rpmdb, scriptlet effects, accounts…) move it by design.
//!
//! A change that moves a digest here must say so in its commit message and in
//! the README's changelog line, and update the constant in the same commit:
//! the failure message prints the new values to paste.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use minibuild::image::{Compression, Format, Healthcheck, HistoryEntry, ImageConfig, ImageWriter};
use minibuild::image::{LayerInfo, LayerOptions};
use minibuild::package::Arch;
use minibuild::rootfs::{harden, BlobRef, Entry, Kind, Tree};

/// Library-level golden digests, `(what, digest)`. See the module docs
/// before changing one: a change that moves them must say so in its commit
/// and in the README's changelog line.
const GOLDEN: &[(&str, &str)] = &[
    (
        "every-kind none manifest",
        "sha256:b9f18fd879a0ecc54ce4b3173893e5c7e199fa297f663b8e7b6f2d4d34af5377",
    ),
    (
        "every-kind none layer",
        "sha256:bb58051d80be2decda205cdd6b5250a40bf9c8ca644a6d1c674a5b98aedac999",
    ),
    (
        "every-kind tar diff_id",
        "sha256:bb58051d80be2decda205cdd6b5250a40bf9c8ca644a6d1c674a5b98aedac999",
    ),
    (
        "every-kind gzip manifest",
        "sha256:22ca7f398b6060fa7839648f6845cabe845b592aa0ee87008d9287a8aac5321f",
    ),
    (
        "every-kind gzip layer",
        "sha256:4eb26370ea9e6f11042a5c7d08b4d8dcfedb8c8c463809d94a1b36e618f4c88f",
    ),
    (
        "every-kind zstd manifest",
        "sha256:b1ce7a15033b28f2f0fa399cabc00adffe7db7c10720471bb97945ebcc0b0756",
    ),
    (
        "every-kind zstd layer",
        "sha256:dd206f416b29d7e4f3d98a0e0954304c2267ef1a1665cbab6fddba211010a82d",
    ),
    (
        "one-file gzip manifest",
        "sha256:fbde0c35e84ef5ba7ec3edc1b29be7653e01aa753f647280cd425320fb2c04ac",
    ),
    (
        "one-file gzip layer",
        "sha256:c8ba3fc08bd87c74df340935af6f014f4b4ccca25a59623b88552606d5aa76c5",
    ),
    (
        "every-kind zstd x86_64+aarch64 index",
        "sha256:887cec2063452acba3872d9d061560cb370791cc18a2412f1115f305a1ddc720",
    ),
];

/// SOURCE_DATE_EPOCH of every fixed image (2023-11-14T22:13:20Z).
const EPOCH: u64 = 1_700_000_000;

/// Builds a [`Tree`] whose file contents live in a temp dir.
struct Fixed {
    dir: tempfile::TempDir,
    tree: Tree,
    blobs: u32,
}

impl Fixed {
    fn new() -> Self {
        Fixed {
            dir: tempfile::tempdir().unwrap(),
            tree: Tree::default(),
            blobs: 0,
        }
    }

    fn put(&mut self, path: &str, kind: Kind, mode: u32) -> &mut Entry {
        let entry = Entry {
            kind,
            mode,
            user: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            xattrs: BTreeMap::new(),
            package: Some("golden".into()),
        };
        self.tree.entries.insert(path.into(), entry);
        self.tree.entries.get_mut(path).unwrap()
    }

    fn dir(&mut self, path: &str, mode: u32) -> &mut Entry {
        self.put(path, Kind::Dir, mode)
    }

    fn file(&mut self, path: &str, mode: u32, content: &[u8], link_id: Option<u64>) -> &mut Entry {
        self.blobs += 1;
        let blob = self.dir.path().join(self.blobs.to_string());
        std::fs::write(&blob, content).unwrap();
        let kind = Kind::File {
            blob: BlobRef::whole_file(blob).unwrap(),
            size: content.len() as u64,
            link_id,
        };
        self.put(path, kind, mode)
    }

    fn symlink(&mut self, path: &str, target: &str) -> &mut Entry {
        let kind = Kind::Symlink {
            target: target.into(),
        };
        self.put(path, kind, 0o777)
    }
}

/// `security.capability` for `cap_net_raw=ep`, as `setcap` writes it.
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// 3 MiB of partly compressible bytes from a fixed LCG: spans several of
/// pgzip's 1 MiB chunks, so chunk boundaries are part of what is pinned.
fn big_content() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..3 * 1024 * 1024 + 12_345)
        .map(|i: usize| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if x >> 30 == 0 {
                (x >> 16) as u8
            } else {
                b"minibuild golden layer "[i % 23]
            }
        })
        .collect()
}

/// Every kind of entry the layer writer handles: directories (one implied,
/// one sticky), files (empty, big, mode 0000, owned by another user, newer
/// than SOURCE_DATE_EPOCH), a hardlink pair, symlinks, a fifo, an xattr,
/// a long and a non-ASCII name, and setuid/setgid bits stripped as a build
/// strips them.
fn every_kind() -> Fixed {
    let mut t = Fixed::new();
    t.dir("etc", 0o755);
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
        None,
    );
    t.file("etc/shadow", 0o000, b"root:!::0:99999:7:::\n", None);
    t.file("etc/empty", 0o644, b"", None);
    t.dir("tmp", 0o1777);
    t.dir("usr", 0o755);
    t.dir("usr/bin", 0o755);
    t.file("usr/bin/a", 0o755, b"#!/bin/sh\necho hi\n", Some(7));
    t.file("usr/bin/b", 0o755, b"#!/bin/sh\necho hi\n", Some(7));
    t.symlink("usr/bin/sh", "a");
    t.symlink("bin", "usr/bin");
    let ping = t.file("usr/bin/ping", 0o4755, b"\x7fELF ping", None);
    ping.xattrs
        .insert("security.capability".into(), CAP_NET_RAW.to_vec());
    t.file("usr/bin/su", 0o4755, b"\x7fELF su", None);
    t.file("usr/bin/write", 0o2755, b"\x7fELF write", None);
    // usr/lib and usr/lib/golden are implied (0755 root:root, clamped mtime).
    t.file("usr/lib/golden/big.bin", 0o644, &big_content(), None);
    let long = format!("usr/share/{}/{}.txt", "d".repeat(90), "long-name".repeat(8));
    t.file(&long, 0o644, b"a name past tar's 100 bytes\n", None);
    t.file("usr/share/naïve-ünïcode", 0o644, b"utf-8 name\n", None);
    let newer = t.file("usr/share/newer", 0o644, b"mtime after the epoch\n", None);
    newer.mtime = 2_000_000_000;
    t.dir("var", 0o755);
    let fifo = t.put("var/initctl", Kind::Fifo, 0o600);
    fifo.user = "nginx".into();
    fifo.uid = 998;
    fifo.group = "nginx".into();
    fifo.gid = 997;
    let stripped = harden::strip_setuid(&mut t.tree);
    let names: Vec<&str> = stripped.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["usr/bin/ping", "usr/bin/su", "usr/bin/write"]);
    t
}

/// The smallest image: one file.
fn one_file() -> Fixed {
    let mut t = Fixed::new();
    t.file("hello", 0o644, b"hello, world\n", None);
    t
}

/// A config using every field the writer serialises.
fn full_config(arch: Arch) -> ImageConfig {
    let mut c = ImageConfig::new(arch, EPOCH);
    c.entrypoint = vec!["/usr/bin/sh".into(), "-c".into()];
    c.cmd = vec!["echo hi".into()];
    c.env.insert("LANG".into(), "C.UTF-8".into());
    c.working_dir = Some("/tmp".into());
    c.user = Some("998:997".into());
    c.exposed_ports = ["8080/tcp".to_string(), "53/udp".to_string()].into();
    c.volumes = ["/var/cache".to_string()].into();
    c.labels.insert(
        "org.opencontainers.image.source".into(),
        "https://example.org".into(),
    );
    c.stop_signal = Some("SIGQUIT".into());
    c.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), "/usr/bin/true".into()],
        interval_ns: Some(30_000_000_000),
        timeout_ns: Some(5_000_000_000),
        start_period_ns: None,
        retries: Some(3),
    });
    c.history.push(HistoryEntry {
        created_by: "minibuild golden".into(),
        comment: Some("fixed tree".into()),
        empty_layer: false,
    });
    c.annotations
        .insert("org.opencontainers.image.title".into(), "golden".into());
    c
}

/// Write `tree` as one image per config and commit it as a layout
/// directory; returns the top digest and the layer.
fn write_image(
    tree: &Tree,
    configs: &[ImageConfig],
    compression: Compression,
) -> (String, LayerInfo) {
    let out = tempfile::tempdir().unwrap();
    let mut writer = ImageWriter::new(&out.path().join("image")).unwrap();
    let opts = LayerOptions {
        source_date_epoch: EPOCH,
        compression,
    };
    let layer = writer.add_layer(tree, &opts).unwrap();
    for config in configs {
        writer
            .add_image(config, std::slice::from_ref(&layer))
            .unwrap();
    }
    let written = writer.commit(Format::Oci, "golden").unwrap();
    (written.digest.to_string(), layer)
}

/// Compare `got` with `want` and fail with the whole table to paste.
fn assert_golden(constant: &str, want: &[(&str, &str)], got: &[(String, String)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if want == got {
        return;
    }
    let mut table = String::new();
    for (k, v) in got {
        let was = want.iter().find(|(wk, _)| wk == k).map(|(_, wv)| wv);
        let mark = if was == Some(v) { "" } else { "   // CHANGED" };
        table.push_str(&format!("    ({k:?}, {v:?}),{mark}\n"));
    }
    panic!(
        "golden digests moved: image digests users pinned would change.\n\
         If this is intended, say so in the commit message and in the README's changelog \
         line, and replace `{constant}` in tests/golden.rs with:\n\n\
         const {constant}: &[(&str, &str)] = &[\n{table}];\n"
    );
}

#[test]
fn fixed_trees_give_the_pinned_digests() {
    let every = every_kind();
    let one = one_file();
    let mut got = Vec::new();
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("zstd", Compression::Zstd),
    ] {
        let (manifest, layer) = write_image(&every.tree, &[full_config(Arch::X86_64)], compression);
        got.push((format!("every-kind {name} manifest"), manifest));
        got.push((format!("every-kind {name} layer"), layer.digest.to_string()));
        if compression == Compression::None {
            got.push(("every-kind tar diff_id".into(), layer.diff_id.to_string()));
        }
    }
    let (manifest, layer) = write_image(
        &one.tree,
        &[ImageConfig::new(Arch::X86_64, EPOCH)],
        Compression::Gzip,
    );
    got.push(("one-file gzip manifest".into(), manifest));
    got.push(("one-file gzip layer".into(), layer.digest.to_string()));
    let (index, _) = write_image(
        &every.tree,
        &[full_config(Arch::X86_64), full_config(Arch::Aarch64)],
        Compression::Zstd,
    );
    got.push(("every-kind zstd x86_64+aarch64 index".into(), index));
    assert_golden("GOLDEN", GOLDEN, &got);
}

/// The fixture build's manifest digest. Moves whenever the rootfs changes
/// (rpmdb, accounts, scriptlet effects…), the fixture RPMs do (see
/// [`FIXTURE_RPMS`]), or the crate version does (the image history says
/// `minibuild 0.1.0: install …`); the failure prints the new value.
const FIXTURE_BUILD_DIGEST: &str =
    "sha256:307c7ab6fab140390ed32e91bf80110c35cb8567ff47ae4b5de8cc013396b361";

/// What the fixture build installs, `NAME-EVR SHA256` per line: the build's
/// inputs. Only busybox wraps a Debian package (busybox-static), so a Debian
/// point release rarely moves it; when it does, the digest moves with it
/// and the failure says that the inputs changed, not minibuild.
const FIXTURE_RPMS: &str = "\
basesystem-11-20.fc40 ed2a4725a98af9af57508811d67118ece46377063422feba8c71772e03dd98c9\n\
busybox-1:1.35.0-4.fc40 effc0b7659414ff140fa2c7633ce44b6ba250a014b8c1685e49506e73ebbc344\n\
filesystem-3.18-8.fc40 2758f7d06f005d402ef0f91c07fd1de9521cf90a96cb08671600e2b8dab551f7\n\
setup-2.14.5-2.fc40 ca17a197f9ca2ddc84d12de187cbd4df10abd4f2448eafa9173ca66464e04dcc\n\
";

/// The fixed recipe: busybox with its applet links, on setup, filesystem
/// and basesystem (so passwd/group, the `/bin → usr/bin` symlinks, a
/// name-resolved user, a recipe account and a 4-package rpmdb are in it).
/// The baseurl is a placeholder that each build overrides with `--baseurl`,
/// so the recipe's digest (an annotation) is the same wherever the
/// repository is.
const FIXTURE_RECIPE: &str = r#"
[image]
name = "golden"
tag = "1"
arch = ["x86_64"]
entrypoint = ["/usr/sbin/busybox"]
cmd = ["sh"]
user = "app"
env = { LANG = "C.UTF-8" }

[[repo]]
name = "fixture"
baseurl = "file:///overridden-by-the-test/$basearch/"
gpgcheck = false

[packages]
install = ["busybox", "basesystem"]

[options]
busybox_links = true
source_date_epoch = 1700000000

[[accounts.users]]
name = "app"
"#;

/// One end-to-end build of [`FIXTURE_RECIPE`] in `work` from `baseurl`,
/// run through `sh -c "PREFIX minibuild …"` so the umask, user and
/// environment can differ; returns the digest and the installed RPMs as the
/// SBOM lists them.
fn fixture_build(
    binary: &Path,
    work: &Path,
    baseurl: &str,
    prefix: &str,
    env: &[(&str, &str)],
) -> (String, String) {
    std::fs::create_dir_all(work).unwrap();
    let recipe = work.join("golden.toml");
    std::fs::write(&recipe, FIXTURE_RECIPE).unwrap();
    let out = work.join("golden.oci.tar");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prefix} \"$0\" \"$@\""))
        .arg(binary)
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .arg("--baseurl")
        .arg(format!("fixture={baseurl}"))
        .current_dir(work)
        .env("CI", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .envs(env.iter().copied());
    let result = common::run_ok(&mut cmd);
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("golden.oci.tar.spdx.json")).unwrap())
            .unwrap();
    let mut rpms: Vec<String> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["externalRefs"].is_array())
        .map(|p| {
            format!(
                "{}-{} {}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap(),
                p["checksums"][0]["checksumValue"].as_str().unwrap()
            )
        })
        .collect();
    rpms.sort();
    (common::last_line(&result), rpms.join("\n"))
}

#[test]
fn fixture_build_gives_the_pinned_digest_from_any_path_mirror_and_user() {
    let fixtures = common::fixtures();
    let tmp = tempfile::tempdir().unwrap();
    // Readable by the unprivileged build below.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let linked = tmp.path().join("elsewhere");
    std::os::unix::fs::symlink(&fixtures, &linked).unwrap();
    let server = common::server::Server::serve(&fixtures);
    let own = Path::new(env!("CARGO_BIN_EXE_minibuild"));

    let mut builds: Vec<(&str, (String, String))> = vec![
        (
            "file path",
            fixture_build(
                own,
                &tmp.path().join("a"),
                &format!("file://{}/repo/$basearch/", fixtures.display()),
                "exec",
                &[],
            ),
        ),
        (
            "symlinked path, umask 077, other TZ/locale/HOME",
            fixture_build(
                own,
                &tmp.path().join("b/deeper/dir"),
                &format!("file://{}/repo/$basearch/", linked.display()),
                "umask 077; exec",
                &[
                    ("TZ", "Pacific/Chatham"),
                    ("LC_ALL", "C.UTF-8"),
                    ("HOME", "/nonexistent"),
                ],
            ),
        ),
        (
            "file path again, warm cache (parsed metadata, RPMs and the compressed layer reused)",
            fixture_build(
                own,
                &tmp.path().join("a"),
                &format!("file://{}/repo/$basearch/", fixtures.display()),
                "exec",
                &[],
            ),
        ),
        (
            "HTTP mirror",
            fixture_build(
                own,
                &tmp.path().join("c"),
                &format!("{}/repo/$basearch/", server.url),
                "exec",
                &[],
            ),
        ),
    ];
    if common::is_root() {
        // Another user: ids and names of the builder must not leak in.
        let work = tmp.path().join("d");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        common::require_tool("setpriv");
        // A copy of the binary that nobody can run wherever the checkout is.
        let copy = tmp.path().join("minibuild");
        std::fs::copy(own, &copy).unwrap();
        builds.push((
            "as nobody",
            fixture_build(
                &copy,
                &work,
                &format!("{}/repo/$basearch/", server.url),
                "exec setpriv --reuid=65534 --regid=65534 --clear-groups",
                &[("USER", "nobody"), ("HOME", "/nonexistent")],
            ),
        ));
    }
    let (first, (digest, rpms)) = &builds[0];
    for (how, got) in &builds[1..] {
        assert_eq!(
            (&got.0, &got.1),
            (digest, rpms),
            "the build from a {how} differs from the one from a {first}"
        );
    }

    let rpm_lines: String = rpms.lines().map(|l| format!("{l}\\n\\\n")).collect();
    let update = format!(
        "replace in tests/golden.rs:\n\n\
         const FIXTURE_BUILD_DIGEST: &str = {digest:?};\n\n\
         const FIXTURE_RPMS: &str = \"\\\n{rpm_lines}\";\n"
    );
    let pinned_rpms = FIXTURE_RPMS.trim();
    assert!(
        rpms == pinned_rpms,
        "the fixture RPMs differ from those the golden digest was taken with: the inputs \
         changed (a Debian point release of busybox-static, or a change to tests/fixtures), \
         not necessarily minibuild.\npinned:\n{pinned_rpms}\nnow:\n{rpms}\n\
         Check the change, then {update}"
    );
    assert!(
        digest == FIXTURE_BUILD_DIGEST,
        "the fixture build's digest moved with the same input RPMs: {FIXTURE_BUILD_DIGEST} → {digest}.\n\
         Expected when the rootfs changes on purpose (rpmdb, accounts, scriptlet effects…); \
         say so in the commit message and in the README's changelog line, and {update}"
    );
}
