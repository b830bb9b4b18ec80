//! Every payload compressor rpm reads, against rpmbuild's real output: the
//! same package built under `%_binary_payload` w9.gzdio, w9.bzdio, w6.xzdio,
//! w6.lzdio, w19.zstdio and w0.ufdio (Debian 12's rpm 4.18 writes all six),
//! served from an rpm-md repo made by createrepo_c. The image's layer must
//! hold what rpm says the package holds: paths, types and modes from
//! `rpm -qp` (the header), contents from `rpm2cpio | cpio` (rpm's own payload
//! reader). A cut-off payload of each kind is a "corrupt payload" naming the
//! package, never a panic or a hang.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::treediff::{layer, sha256, Node};
use common::*;

/// `%_binary_payload` → the `PAYLOADCOMPRESSOR` rpm writes for it
/// (`(none)`: no tag, rpm's "uncompressed").
const PAYLOADS: [(&str, &str); 6] = [
    ("w9.gzdio", "gzip"),
    ("w9.bzdio", "bzip2"),
    ("w6.xzdio", "xz"),
    ("w6.lzdio", "lzma"),
    ("w19.zstdio", "zstd"),
    ("w0.ufdio", "(none)"),
];

const NEVRA: &str = "pl-1.0-1.noarch";

/// Every kind of entry rpm packs: directories, text, an executable, a
/// private file, an empty file, a symlink, a hardlink pair, a %config file,
/// and 1.9 MB of `seq` output (three bzip2 blocks at w9, 900 kB each). A lua %post
/// (no /bin/sh requirement) so that `plan` has a scriptlet to name.
const SPEC: &str = r#"Name: pl
Version: 1.0
Release: 1
Summary: payload test package
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
One package, built once per payload compressor.
%install
mkdir -p %{buildroot}/usr/share/pl/sub %{buildroot}/usr/bin %{buildroot}/etc
echo hello > %{buildroot}/usr/share/pl/hello.txt
printf '#!/bin/sh\necho pl\n' > %{buildroot}/usr/bin/pl
chmod 0755 %{buildroot}/usr/bin/pl
echo secret > %{buildroot}/usr/share/pl/secret
: > %{buildroot}/usr/share/pl/empty
ln -s hello.txt %{buildroot}/usr/share/pl/link
seq 1 300000 > %{buildroot}/usr/share/pl/sub/numbers
ln %{buildroot}/usr/share/pl/sub/numbers %{buildroot}/usr/share/pl/sub/numbers.hard
echo 'key = value' > %{buildroot}/etc/pl.conf
%post -p <lua>
print("installed")
%files
%config(noreplace) /etc/pl.conf
/usr/bin/pl
%dir /usr/share/pl
/usr/share/pl/hello.txt
%attr(0600,-,-) /usr/share/pl/secret
/usr/share/pl/empty
/usr/share/pl/link
/usr/share/pl/sub
"#;

/// Build [`SPEC`] with `payload` in `dir`; the RPM it made.
fn rpmbuild(dir: &Path, payload: &str) -> PathBuf {
    require_tool("rpmbuild");
    let top = dir.join("rpmbuild");
    std::fs::create_dir_all(&top).unwrap();
    let spec = top.join("pl.spec");
    std::fs::write(&spec, SPEC).unwrap();
    let rpms = top.join("rpms");
    run_ok(
        common::rpmbuild(&top, &rpms)
            .arg("--define")
            .arg(format!("_binary_payload {payload}"))
            .arg(&spec),
    );
    let rpm = rpms.join("noarch").join(format!("{NEVRA}.rpm"));
    assert!(rpm.is_file(), "{payload}: {} not built", rpm.display());
    rpm
}

/// `rpm -qp --qf FORMAT rpm` (no signature or digest checks: the tests
/// damage packages on purpose).
fn rpm_query(rpm: &Path, format: &str) -> String {
    require_tool("rpm");
    let out = run_ok(
        Command::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest", "--qf", format])
            .arg(rpm),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An rpm-md repo in `dir/repo` holding `rpm` (as `bytes`) and a recipe
/// installing `pl` from it.
fn repo_and_recipe(dir: &Path, bytes: &[u8]) -> PathBuf {
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join(format!("{NEVRA}.rpm")), bytes).unwrap();
    createrepo(&repo);
    let recipe = dir.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"pl\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"pl\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n[packages]\ninstall = [\"pl\"]\n",
            repo.display()
        ),
    )
    .unwrap();
    recipe
}

/// What rpm says `rpm` installs: path (without the leading `/`) → node,
/// types, modes and link targets from the header, contents from rpm's own
/// payload reader (`rpm2cpio | cpio -id`).
fn rpm_tree(rpm: &Path, dir: &Path) -> BTreeMap<String, Node> {
    require_tool("rpm2cpio");
    require_tool("cpio");
    let extracted = dir.join("rpm2cpio");
    std::fs::create_dir_all(&extracted).unwrap();
    let mut rpm2cpio = Command::new("rpm2cpio")
        .arg(rpm)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let cpio = Command::new("cpio")
        .args(["-id", "--quiet", "--no-absolute-filenames"])
        .current_dir(&extracted)
        .stdin(rpm2cpio.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        rpm2cpio.wait().unwrap().success(),
        "rpm2cpio {}",
        rpm.display()
    );
    assert!(
        cpio.status.success(),
        "cpio: {}",
        String::from_utf8_lossy(&cpio.stderr)
    );
    let listing = rpm_query(
        rpm,
        "[%{FILENAMES}\t%{FILEMODES:octal}\t%{FILELINKTOS}\t%{FILESIZES}\n]",
    );
    let mut out = BTreeMap::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let path = f[0].trim_start_matches('/').to_string();
        let mode = u32::from_str_radix(f[1], 8).unwrap();
        let (kind, content, size) = match mode & 0o170000 {
            0o040000 => ('d', String::new(), 0),
            0o120000 => ('l', f[2].to_string(), 0),
            0o100000 => {
                let bytes = std::fs::read(extracted.join(&path)).unwrap();
                assert_eq!(bytes.len().to_string(), f[3], "{path}: rpm2cpio's size");
                ('f', sha256(&bytes), bytes.len() as u64)
            }
            other => panic!("{path}: unexpected type {other:o}"),
        };
        out.insert(
            path,
            Node {
                kind,
                mode: mode & 0o7777,
                uid: 0,
                gid: 0,
                size,
                content,
            },
        );
    }
    out
}

/// The nodes of `tree` rpm's listing names, with owners as rpm's (root).
fn listed(tree: &BTreeMap<String, Node>, rpm: &BTreeMap<String, Node>) -> BTreeMap<String, Node> {
    rpm.keys()
        .filter_map(|p| tree.get(p).map(|n| (p.clone(), n.clone())))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Where the payload starts: after the 96-byte lead, the signature header
/// (padded to 8) and the main header.
fn payload_offset(rpm: &[u8]) -> usize {
    let header_len = |at: usize| {
        assert_eq!(&rpm[at..at + 3], b"\x8e\xad\xe8", "header magic at {at}");
        let be = |i: usize| u32::from_be_bytes(rpm[i..i + 4].try_into().unwrap()) as usize;
        16 + 16 * be(at + 8) + be(at + 12)
    };
    let main = (96 + header_len(96)).div_ceil(8) * 8;
    main + header_len(main)
}

/// Each compressor: rpm writes the tag we expect, `plan` reads the header,
/// and the image holds exactly what rpm says the package holds.
#[test]
fn every_rpmbuild_payload_compressor_builds_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first: Option<BTreeMap<String, Node>> = None;
    for (payload, tag) in PAYLOADS {
        let dir = tmp.path().join(payload);
        let rpm = rpmbuild(&dir, payload);
        assert_eq!(
            rpm_query(&rpm, "%{PAYLOADCOMPRESSOR}"),
            tag,
            "{payload}: rpmbuild wrote another compressor"
        );
        let recipe = repo_and_recipe(&dir, &std::fs::read(&rpm).unwrap());
        let cache = dir.join("cache");

        let plan = run_ok(
            minibuild()
                .arg("plan")
                .arg(&recipe)
                .arg("--json")
                .arg("--cache-dir")
                .arg(&cache),
        );
        let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let pkgs = v[0]["packages"].as_array().unwrap();
        assert_eq!(pkgs.len(), 1, "{payload}: {v}");
        assert_eq!(pkgs[0]["name"], "pl", "{payload}: {v}");
        assert_eq!(pkgs[0]["scriptlets"][0]["kind"], "%post", "{payload}: {v}");

        let archive = dir.join("img.oci.tar");
        let started = Instant::now();
        let out = run_ok(&mut build_cmd(&recipe, &archive, &cache));
        let took = started.elapsed();
        let theirs = rpm_tree(&rpm, &dir);
        let ours = listed(&layer(&archive), &theirs);
        assert_eq!(ours, theirs, "{payload}: layer vs rpm\n{}", stderr(&out));
        let numbers = &theirs["usr/share/pl/sub/numbers"];
        assert!(numbers.size > 1_800_000, "{payload}: {numbers:?}");
        assert_eq!(theirs["usr/share/pl/secret"].mode, 0o600, "{payload}");
        assert_eq!(theirs["usr/bin/pl"].mode, 0o755, "{payload}");
        eprintln!(
            "{payload}: {} bytes of rpm, image built in {took:.2?}",
            std::fs::metadata(&rpm).unwrap().len()
        );
        // Same package, same tree, whatever the payload's compressor.
        match &first {
            None => first = Some(ours),
            Some(tree) => assert_eq!(&ours, tree, "{payload} vs {}", PAYLOADS[0].0),
        }
    }
}

/// A payload cut in half, of each kind: the build stops with the corrupt
/// payload error naming the package and file, at once, leaving no image.
#[test]
fn a_cut_payload_of_every_kind_is_a_corrupt_payload() {
    let tmp = tempfile::tempdir().unwrap();
    for (payload, _) in PAYLOADS {
        let dir = tmp.path().join(payload);
        let rpm = rpmbuild(&dir, payload);
        let whole = std::fs::read(&rpm).unwrap();
        let start = payload_offset(&whole);
        let cut = &whole[..start + (whole.len() - start) / 2];
        let recipe = repo_and_recipe(&dir, cut);
        let archive = dir.join("img.oci.tar");
        let started = Instant::now();
        let out = build_cmd(&recipe, &archive, &dir.join("cache"))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{payload}: {err}");
        // `{NEVRA} ({cached rpm}): corrupt payload`, under the unpack error.
        let cached = format!("{NEVRA} ({}/", dir.join("cache").display());
        assert!(
            err.lines()
                .any(|l| l.contains(&cached) && l.ends_with(".rpm): corrupt payload")),
            "{payload}: {err}"
        );
        assert!(!err.contains("panicked"), "{payload}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{payload}: took {:?}",
            started.elapsed()
        );
        assert!(!archive.exists(), "{payload}: an image was written");
    }
}

/// A compressor rpm does not write (the header's `bzip2` patched to
/// `bzip3`; signatures are off, so the header digest is not what refuses
/// it): the error names it, lists what rpm and minibuild read, and hints.
#[test]
fn an_unknown_compressor_is_named_with_the_supported_set() {
    let tmp = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(tmp.path(), "w9.bzdio");
    let mut bytes = std::fs::read(&rpm).unwrap();
    let header = &bytes[..payload_offset(&bytes)];
    let at: Vec<usize> = (0..header.len())
        .filter(|&i| header[i..].starts_with(b"bzip2\0"))
        .collect();
    assert_eq!(at.len(), 1, "one PAYLOADCOMPRESSOR string in the header");
    bytes[at[0] + 4] = b'3';
    let recipe = repo_and_recipe(tmp.path(), &bytes);
    let archive = tmp.path().join("img.oci.tar");
    let out = build_cmd(&recipe, &archive, &tmp.path().join("cache"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let unpack = format!("cannot unpack {NEVRA}");
    for needle in [
        unpack.as_str(),
        ".rpm: payload compressor `bzip3` is not supported (minibuild reads cpio compressed with gzip, bzip2, xz, lzma, zstd or none, as rpm does)",
        "hint: rpmbuild writes only these",
    ] {
        assert!(err.contains(needle), "lacks `{needle}`: {err}");
    }
    assert!(!archive.exists(), "an image was written");
}
