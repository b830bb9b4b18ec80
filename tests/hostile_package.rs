//! Hostile packages and metadata, end to end: the real binary against RPMs
//! built here with rpmbuild (and then altered byte by byte where the attack
//! needs it) and a primary.xml that lies. Each test asserts the refusal, its
//! message, that a canary outside the work directories is unchanged, and
//! that nothing partial is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use sha2::{Digest as _, Sha256};

const CANARY: &str = "canary: the host's own file\n";

/// Build `spec` (noarch, uncompressed payload so a test can patch it) with
/// rpmbuild in `dir`; the path of the one RPM it made.
fn rpmbuild(dir: &Path, name: &str, spec: &str) -> PathBuf {
    rpmbuild_with(dir, name, spec, "w0.ufdio")
}

/// [`rpmbuild`] with another `_binary_payload` (e.g. `w3.zstdio`).
fn rpmbuild_with(dir: &Path, name: &str, spec: &str, payload: &str) -> PathBuf {
    require_tool("rpmbuild");
    let top = dir.join(format!("rpmbuild-{name}"));
    std::fs::create_dir_all(&top).unwrap();
    let spec_path = top.join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec).unwrap();
    let rpms = top.join("rpms");
    run_ok(
        common::rpmbuild(&top, &rpms)
            .arg("--define")
            .arg(format!("_binary_payload {payload}"))
            .arg(&spec_path),
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
    createrepo(&repo);
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

/// Copy of the repo at `src` (RPMs symlinked) whose primary.xml points every
/// `busybox` entry at `setup`'s file: its checksum, size and location.
fn swapped_repo(src: &Path, dest: &Path) -> PathBuf {
    std::fs::create_dir_all(dest.join("repodata")).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rpm") {
            std::os::unix::fs::symlink(&p, dest.join(p.file_name().unwrap())).unwrap();
        }
    }
    let repomd = std::fs::read_to_string(src.join("repodata/repomd.xml")).unwrap();
    let href = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .find(|h| h.contains("-primary.xml"))
        .unwrap();
    let raw = std::fs::read(src.join(href)).unwrap();
    let primary = if href.ends_with(".gz") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap()
    };
    let mut entries: Vec<String> = primary.split("<package ").map(str::to_string).collect();
    let field = |entry: &str, start: &str, end: &str| -> String {
        let from = entry.find(start).unwrap();
        let to = from + entry[from..].find(end).unwrap() + end.len();
        entry[from..to].to_string()
    };
    let setup = entries
        .iter()
        .find(|e| e.contains("<name>setup</name>"))
        .unwrap()
        .clone();
    let stolen: Vec<String> = [
        ("<checksum ", "</checksum>"),
        ("<size ", "/>"),
        ("<location ", "/>"),
    ]
    .iter()
    .map(|(s, e)| field(&setup, s, e))
    .collect();
    let mut swapped = 0;
    for entry in entries
        .iter_mut()
        .filter(|e| e.contains("<name>busybox</name>"))
    {
        for ((s, e), new) in [
            ("<checksum ", "</checksum>"),
            ("<size ", "/>"),
            ("<location ", "/>"),
        ]
        .iter()
        .zip(&stolen)
        {
            let old = field(entry, s, e);
            *entry = entry.replace(&old, new);
        }
        swapped += 1;
    }
    assert!(swapped > 0);
    let primary = entries.join("<package ");
    std::fs::write(dest.join("repodata/primary.xml"), &primary).unwrap();
    let sum = hex::encode(Sha256::digest(primary.as_bytes()));
    std::fs::write(
        dest.join("repodata/repomd.xml"),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\n  <revision>1700000001</revision>\n  <data type=\"primary\">\n    <checksum type=\"sha256\">{sum}</checksum>\n    <location href=\"repodata/primary.xml\"/>\n    <size>{}</size>\n  </data>\n</repomd>\n",
            primary.len()
        ),
    )
    .unwrap();
    dest.to_path_buf()
}

/// primary.xml's busybox entry carries setup's checksum, size and location:
/// the bytes match the metadata, but the RPM's header says setup. Refused,
/// naming both, with signatures off and with them on (setup is validly
/// signed by the trusted key, so only the identity check stops it).
#[test]
fn a_package_swapped_in_primary_xml_is_refused() {
    let fixtures = fixtures();
    run_ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-signed.sh"))
            .arg(&fixtures),
    );
    let signed = fixtures.join("signed");
    let fpr = std::fs::read_to_string(signed.join("keys/rsa.fpr")).unwrap();
    let cases = [
        (fixtures.join("repo/x86_64"), "gpgcheck = false".to_string()),
        (
            signed.join("rsa/x86_64"),
            format!(
                "gpgkey = [{{ url = \"{}\", fingerprint = \"{}\" }}]",
                signed.join("keys/rsa.gpg").display(),
                fpr.trim()
            ),
        ),
    ];
    for (i, (src, gpg)) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        std::fs::write(&canary, CANARY).unwrap();
        let repo = swapped_repo(src, &tmp.path().join("repo"));
        let recipe = tmp.path().join("r.toml");
        std::fs::write(
            &recipe,
            format!(
                "[image]\nname = \"swap\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"swap\"\nbaseurl = \"file://{}/\"\n{gpg}\n\n[packages]\ninstall = [\"busybox\"]\n",
                repo.display()
            ),
        )
        .unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let res = build_cmd(&recipe, &out.join("img.oci.tar"), &tmp.path().join("cache"))
            .output()
            .unwrap();
        fails_with(
            &res,
            &[
                "chosen by the repo metadata as busybox-1:1.35.0-4.fc40.x86_64",
                "is setup-2.14.5-2.fc40.noarch by its own header",
                "swapped",
            ],
        );
        assert_eq!(
            std::fs::read_to_string(&canary).unwrap(),
            CANARY,
            "case {i}"
        );
        assert_eq!(leftovers(&out, &[]), Vec::<String>::new(), "case {i}");
    }
}

/// One newc member of a payload: its 110-byte header, name and data.
struct Member {
    header: Vec<u8>,
    name: String,
    data: Vec<u8>,
}

fn hex_field(header: &[u8], index: usize) -> usize {
    let at = 6 + index * 8;
    usize::from_str_radix(std::str::from_utf8(&header[at..at + 8]).unwrap(), 16).unwrap()
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Split an uncompressed RPM into everything before the payload and the
/// payload's members (trailer included).
fn split_payload(rpm: &[u8]) -> (Vec<u8>, Vec<Member>) {
    let start = rpm
        .windows(8)
        .position(|w| w == b"07070100")
        .expect("an uncompressed newc payload");
    let mut members = Vec::new();
    let mut at = start;
    loop {
        let header = rpm[at..at + 110].to_vec();
        let name_len = hex_field(&header, 11);
        let size = hex_field(&header, 6);
        let name_at = at + 110;
        let name = String::from_utf8(rpm[name_at..name_at + name_len - 1].to_vec()).unwrap();
        let data_at = (name_at + name_len - start).div_ceil(4) * 4 + start;
        let data = rpm[data_at..data_at + size].to_vec();
        at = (data_at + size - start).div_ceil(4) * 4 + start;
        let done = name == "TRAILER!!!";
        members.push(Member { header, name, data });
        if done {
            return (rpm[..start].to_vec(), members);
        }
    }
}

fn join_payload(lead: &[u8], members: &[Member]) -> Vec<u8> {
    let mut out = lead.to_vec();
    let start = out.len();
    for m in members {
        let mut header = m.header.clone();
        header[54..62].copy_from_slice(format!("{:08x}", m.data.len()).as_bytes());
        header[94..102].copy_from_slice(format!("{:08x}", m.name.len() + 1).as_bytes());
        let mut member = header;
        member.extend_from_slice(m.name.as_bytes());
        member.push(0);
        let mut rel = out[start..].to_vec();
        rel.extend(member);
        pad4(&mut rel);
        rel.extend_from_slice(&m.data);
        pad4(&mut rel);
        out.truncate(start);
        out.extend(rel);
    }
    out
}

/// A work directory for one tampered package: its repo, a recipe
/// installing it, a canary and an empty output directory.
struct HostileRepo {
    recipe: PathBuf,
    canary: PathBuf,
    out: PathBuf,
}

impl HostileRepo {
    /// `bytes` stored under `rpm`'s file name in a new repo in `work`.
    fn new(work: &Path, rpm: &Path, bytes: &[u8], install: &str) -> HostileRepo {
        std::fs::create_dir(work).unwrap();
        let bad = work.join(rpm.file_name().unwrap());
        std::fs::write(&bad, bytes).unwrap();
        let repo = make_repo(work, &[&bad]);
        let canary = work.join("canary");
        std::fs::write(&canary, CANARY).unwrap();
        let out = work.join("out");
        std::fs::create_dir(&out).unwrap();
        HostileRepo {
            recipe: recipe(work, &repo, install),
            canary,
            out,
        }
    }
}

/// With signatures off, a payload that disagrees with its own header (a
/// member twice, a size or a content the header does not list) is refused
/// naming the package and the file, and nothing of it lands anywhere.
#[test]
fn a_payload_that_disagrees_with_its_header_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(
        tmp.path(),
        "payload",
        &spec(
            "payload",
            "mkdir -p %{buildroot}/usr/share/payload\necho hello > %{buildroot}/usr/share/payload/aaaa\necho world > %{buildroot}/usr/share/payload/bbbb",
            "/usr/share/payload",
        ),
    );
    let original = std::fs::read(&rpm).unwrap();

    // The untouched package builds: the checks accept what rpmbuild makes.
    {
        let work = tmp.path().join("clean");
        std::fs::create_dir(&work).unwrap();
        let repo = make_repo(&work, &[&rpm]);
        let recipe = recipe(&work, &repo, "payload");
        run_ok(&mut build_cmd(
            &recipe,
            &work.join("img.oci.tar"),
            &work.join("cache"),
        ));
    }

    let aaaa = "./usr/share/payload/aaaa";
    // Each tampering gets the members and the index of aaaa's member.
    type Tamper = fn(&mut Vec<Member>, usize);
    let cases: [(&str, Tamper, &[&str]); 3] = [
        (
            "duplicate",
            |m, i| {
                let evil = Member {
                    header: m[i].header.clone(),
                    name: m[i].name.clone(),
                    data: b"EVIL!\n".to_vec(),
                };
                // In place of bbbb (same name length and size): the archive
                // keeps the size its header declares, so the payload bound
                // does not fire first.
                let j = m.iter().position(|x| x.name.ends_with("/bbbb")).unwrap();
                m[j] = evil;
            },
            &["payload member `/usr/share/payload/aaaa` appears twice"],
        ),
        (
            "size",
            |m, i| m[i].data = b"a longer content than the header says\n".to_vec(),
            &["payload member `/usr/share/payload/aaaa` has 38 bytes but the header says 6"],
        ),
        (
            "digest",
            |m, i| m[i].data = b"HELLO\n".to_vec(),
            &[
                "content of `/usr/share/payload/aaaa` has digest",
                "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
            ],
        ),
    ];
    for (name, tamper, needles) in cases {
        let work = tmp.path().join(name);
        let (lead, mut members) = split_payload(&original);
        let i = members.iter().position(|m| m.name == aaaa).unwrap();
        tamper(&mut members, i);
        let HostileRepo {
            recipe,
            canary,
            out,
        } = HostileRepo::new(&work, &rpm, &join_payload(&lead, &members), "payload");
        let res = build_cmd(&recipe, &out.join("img.oci.tar"), &work.join("cache"))
            .output()
            .unwrap();
        let stderr = fails_with(&res, needles);
        assert!(stderr.contains("payload-1.0-1.noarch"), "{name}: {stderr}");
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), CANARY, "{name}");
        assert_eq!(leftovers(&out, &[]), Vec::<String>::new(), "{name}");
    }
}

fn fixture_recipe(dir: &Path, install: &str) -> PathBuf {
    let path = dir.join(format!("{install}.toml"));
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"{install}\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n[packages]\ninstall = [\"{install}\"]\n",
            fixture_file_url()
        ),
    )
    .unwrap();
    path
}

/// The one entry of a layer cache: its `.blob` and `.json`.
fn layer_entry(cache: &Path) -> (PathBuf, PathBuf) {
    let dir = cache.join("v1/layers");
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "blob"))
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let blob = blobs.pop().unwrap();
    (blob.clone(), blob.with_extension("json"))
}

/// Someone who can write the cache plants another image's layer under this
/// tree's key, with a record that matches the planted blob: the next build
/// notices (the blob does not decompress to this tree's tar), says so,
/// recompresses, and gives the same image as a clean build.
#[test]
fn a_planted_layer_cache_entry_is_detected_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = fixture_recipe(tmp.path(), "basesystem");
    let other = fixture_recipe(tmp.path(), "busybox");
    let cache = tmp.path().join("cache");
    let build = |recipe: &Path, cache: &Path, out: &str| {
        run_ok(&mut build_cmd(recipe, &tmp.path().join(out), cache))
    };
    let clean = last_line(&build(&victim, &cache, "clean.oci.tar"));
    let (blob, json) = layer_entry(&cache);
    let other_cache = tmp.path().join("other-cache");
    build(&other, &other_cache, "other.oci.tar");
    let (other_blob, other_json) = layer_entry(&other_cache);

    // The planted record names the planted blob's digest and size, and the
    // victim's tar size, so only decompressing the blob can tell.
    let victim_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let mut planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&other_json).unwrap()).unwrap();
    planted["uncompressed_size"] = victim_meta["uncompressed_size"].clone();
    std::fs::remove_file(&blob).unwrap();
    std::fs::copy(&other_blob, &blob).unwrap();
    std::fs::write(&json, serde_json::to_vec(&planted).unwrap()).unwrap();

    let again = build(&victim, &cache, "again.oci.tar");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(last_line(&again), clean, "{stderr}");
    assert!(
        stderr.contains("layer cache: the entry for this layer was bad (its blob decompresses to another tar than this layer's); dropped it and compressed the layer again"),
        "{stderr}"
    );
    // The entry was rewritten: the next build reuses it, and still agrees.
    let third = build(&victim, &cache, "third.oci.tar");
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert_eq!(last_line(&third), clean);
    assert!(stderr.contains("compressed blob reused"), "{stderr}");
    assert!(!stderr.contains("layer cache: the entry"), "{stderr}");
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

/// `n` MiB of zeros as concatenated zstd frames of 16 MiB each: a few
/// hundred bytes per frame, compressed once.
fn zstd_zeros(mib: usize) -> Vec<u8> {
    let frame = zstd::encode_all(&vec![0u8; 16 << 20][..], 1).unwrap();
    frame.repeat(mib / 16)
}

/// Total bytes of the regular files under `dir`.
fn du(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                du(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Run `cmd` to its end, the largest size `dir` reached while it ran (polled).
fn run_watching(cmd: &mut Command, dir: &Path) -> (Output, u64) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(du(dir));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}

/// A newc member header (mode, size, name length) for a hand-made payload.
fn newc_header(mode: u32, size: u64, name_len: usize) -> Vec<u8> {
    format!(
        "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{name_len:08x}{:08x}",
        1, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    .into_bytes()
}

/// With signatures off, a 1 KiB-ish zstd payload that expands to 4 GiB of
/// zeros (behind a member that says more than the header, or past the
/// header's archive size) is cut off at once: the error names the package
/// and the bound, staging in $TMPDIR never grows, nothing is left behind
/// and a canary outside is unchanged.
#[test]
fn a_payload_that_expands_past_its_header_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let rpm = rpmbuild_with(
        tmp.path(),
        "bomb",
        &spec(
            "bomb",
            "mkdir -p %{buildroot}/usr/share/bomb\necho hello > %{buildroot}/usr/share/bomb/file",
            "/usr/share/bomb",
        ),
        "w3.zstdio",
    );
    let original = std::fs::read(&rpm).unwrap();
    let lead = &original[..payload_offset(&original)];
    let bomb = zstd_zeros(4096);
    let dir = "./usr/share/bomb";
    let file = "./usr/share/bomb/file";
    // Each case: the cpio bytes before the zeros, and what the error says.
    let named = |mode: u32, size: u64, name: &str, nuls: usize| {
        let mut m = newc_header(mode, size, name.len() + nuls);
        m.extend_from_slice(name.as_bytes());
        m.resize(m.len() + nuls, 0);
        pad4(&mut m);
        m
    };
    let cases: [(&str, Vec<u8>, &[&str]); 3] = [
        (
            // rpm's directory members carry no data; this one "has" 4 GiB.
            "dir-member",
            named(0o40755, 0xffff_fff0, dir, 1),
            &["payload member `/usr/share/bomb` has 4294967280 bytes but the header says 0"],
        ),
        (
            "file-member",
            named(0o100644, 0xffff_fff0, file, 1),
            &["payload member `/usr/share/bomb/file` has 4294967280 bytes but the header says 6"],
        ),
        (
            // Sizes as the header says, but a name padded past the archive
            // size the header declares, then endless zeros.
            "past-archive-size",
            named(0o100644, 6, file, 4000),
            &[
                "the decompressed payload passes",
                "the archive size its header declares",
            ],
        ),
    ];
    for (name, head, needles) in cases {
        let work = tmp.path().join(name);
        let mut bad = lead.to_vec();
        bad.extend(zstd::encode_all(&head[..], 3).unwrap());
        bad.extend_from_slice(&bomb);
        assert!(bad.len() < 256 << 10, "{name}: the hostile RPM is small");
        let HostileRepo {
            recipe,
            canary,
            out,
        } = HostileRepo::new(&work, &rpm, &bad, "bomb");
        let tmpdir = work.join("tmp");
        std::fs::create_dir(&tmpdir).unwrap();
        let started = std::time::Instant::now();
        let (res, peak) = run_watching(
            build_cmd(&recipe, &out.join("img.oci.tar"), &work.join("cache"))
                .env("TMPDIR", &tmpdir),
            &tmpdir,
        );
        let stderr = fails_with(&res, needles);
        assert!(stderr.contains("bomb-1.0-1.noarch"), "{name}: {stderr}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert!(peak < 64 << 20, "{name}: $TMPDIR reached {peak} bytes");
        assert_eq!(leftovers(&tmpdir, &[]), Vec::<String>::new(), "{name}");
        assert_eq!(leftovers(&out, &[]), Vec::<String>::new(), "{name}");
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), CANARY, "{name}");
    }
}

/// A tmpfs of `size` at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size}"))
                .arg("tmpfs")
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// $TMPDIR on a filesystem too small for the plan's installed size: the
/// build stops before unpacking, saying how much is needed and free and
/// where, with the TMPDIR hint; the same build fits a larger tmpfs.
#[test]
fn too_little_room_for_staging_is_refused_before_unpacking() {
    let tmp = tempfile::tempdir().unwrap();
    let rpm = rpmbuild(
        tmp.path(),
        "roomy",
        &spec(
            "roomy",
            "mkdir -p %{buildroot}/usr/share/roomy\nhead -c 4194304 /dev/zero > %{buildroot}/usr/share/roomy/data",
            "/usr/share/roomy",
        ),
    );
    let repo = make_repo(tmp.path(), &[&rpm]);
    let recipe = recipe(tmp.path(), &repo, "roomy");
    let canary = tmp.path().join("canary");
    std::fs::write(&canary, CANARY).unwrap();

    let small = Tmpfs::mount(&tmp.path().join("small"), "8m");
    let out = tmp.path().join("out-small");
    std::fs::create_dir(&out).unwrap();
    let (res, peak) = run_watching(
        build_cmd(&recipe, &out.join("img.oci.tar"), &tmp.path().join("cache"))
            .env("TMPDIR", &small.0),
        &small.0,
    );
    fails_with(
        &res,
        &[
            &format!("not enough free space to unpack in {}", small.0.display()),
            "20.0 MiB needed (4.0 MiB installed by the plan + 16 MiB margin)",
            "8.0 MiB free",
            "set TMPDIR",
        ],
    );
    assert_eq!(peak, 0, "nothing was unpacked into the small tmpfs");
    assert_eq!(leftovers(&small.0, &[]), Vec::<String>::new());
    assert_eq!(leftovers(&out, &[]), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), CANARY);
    drop(small);

    let large = Tmpfs::mount(&tmp.path().join("large"), "32m");
    let out = tmp.path().join("out-large");
    std::fs::create_dir(&out).unwrap();
    run_ok(
        build_cmd(&recipe, &out.join("img.oci.tar"), &tmp.path().join("cache"))
            .env("TMPDIR", &large.0),
    );
    assert_eq!(leftovers(&large.0, &[]), Vec::<String>::new());
}
