//! Differential test: the same package set installed by Debian's dnf
//! (`--installroot`, scriptlets and all) and built by minibuild must give the
//! same tree — path, type, mode, numeric owner, size, sha256, symlink target —
//! except for the differences named in [`Rule`], each with its reason.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use sha2::{Digest as _, Sha256};

const PACKAGES: [&str; 6] = [
    "bash",
    "coreutils-single",
    "glibc-minimal-langpack",
    "util-linux-core",
    "ca-certificates",
    "fx",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// d, f, l, p (fifo), c/b (devices)
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    /// sha256 of a file's content, or a symlink's target.
    content: String,
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The tree dnf installed, from the host filesystem.
fn walk(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let (kind, content, size) = if ft.is_symlink() {
                (
                    'l',
                    std::fs::read_link(&p).unwrap().display().to_string(),
                    0,
                )
            } else if ft.is_dir() {
                stack.push(p.clone());
                ('d', String::new(), 0)
            } else if ft.is_file() {
                ('f', sha256(&std::fs::read(&p).unwrap()), m.len())
            } else if ft.is_fifo() {
                ('p', String::new(), 0)
            } else if ft.is_char_device() {
                ('c', String::new(), 0)
            } else {
                ('b', String::new(), 0)
            };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(
                rel,
                Node {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: u64::from(m.uid()),
                    gid: u64::from(m.gid()),
                    size,
                    content,
                },
            );
        }
    }
    out
}

/// The tree of minibuild's single layer, read from the OCI archive itself
/// (so owners are the numeric ids in the tar headers, not the unpacker's).
fn layer(archive: &Path) -> BTreeMap<String, Node> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(name.trim_start_matches("./").to_string(), b);
    }
    let json = |name: &str| -> serde_json::Value { serde_json::from_slice(&files[name]).unwrap() };
    let blob = |digest: &str| format!("blobs/{}", digest.replace(':', "/"));
    let index = json("index.json");
    let manifest = json(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let layer = &manifest["layers"][0];
    let data = &files[&blob(layer["digest"].as_str().unwrap())];
    let media = layer["mediaType"].as_str().unwrap();
    let raw: Box<dyn Read> = if media.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(&data[..]))
    } else if media.ends_with("zstd") {
        Box::new(zstd::Decoder::new(&data[..]).unwrap())
    } else {
        Box::new(&data[..])
    };
    let mut out = BTreeMap::new();
    let mut contents: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut ar = tar::Archive::new(raw);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() {
            continue;
        }
        let h = e.header().clone();
        let (kind, content, size) = match h.entry_type() {
            tar::EntryType::Directory => ('d', String::new(), 0),
            tar::EntryType::Symlink => (
                'l',
                e.link_name().unwrap().unwrap().display().to_string(),
                0,
            ),
            tar::EntryType::Link => {
                let target = e.link_name().unwrap().unwrap().display().to_string();
                let (c, s) = contents[target.trim_start_matches("./")].clone();
                ('f', c, s)
            }
            tar::EntryType::Fifo => ('p', String::new(), 0),
            _ => {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                ('f', sha256(&b), b.len() as u64)
            }
        };
        if kind == 'f' {
            contents.insert(path.clone(), (content.clone(), size));
        }
        out.insert(
            path,
            Node {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                size,
                content,
            },
        );
    }
    out
}

/// An allowed difference, with why it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The package manager's own state (rpmdb, dnf history, caches, logs):
    /// minibuild ships no package manager database.
    PackageManagerState,
    /// Files minibuild writes in place of `%post` scriptlets
    /// (update-ca-trust, ldconfig); dnf's scriptlet-less stand-ins here did
    /// not run those tools (the fixture has none), so only minibuild has them.
    Generated,
    /// `strip_setuid` (the default) clears setuid/setgid bits.
    SetuidStripped,
}

fn rule_for_path(path: &str) -> Option<Rule> {
    // Debian's rpm keeps its database in `~/.rpmdb` (here /root/.rpmdb);
    // dnf creates /etc/dnf for its module state.
    const STATE: [&str; 8] = [
        "root/.rpmdb",
        "etc/dnf",
        "var/lib/rpm",
        "var/lib/dnf",
        "var/cache",
        "var/log",
        "usr/lib/sysimage/rpm",
        "usr/lib/sysimage/dnf",
    ];
    const GENERATED: [&str; 5] = [
        "etc/ld.so.cache",
        "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/pem/objsign-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt",
    ];
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if STATE.iter().any(|p| under(p)) {
        Some(Rule::PackageManagerState)
    } else if GENERATED.contains(&path) {
        Some(Rule::Generated)
    } else {
        None
    }
}

#[test]
fn minibuild_matches_dnf_installroot() {
    require_tool("dnf");
    let tmp = tempfile::tempdir().unwrap();
    let repo = format!("file://{}/repo/x86_64/", fixtures().display());
    let dnf_root = tmp.path().join("dnf-root");
    run_ok(
        Command::new("dnf")
            .args([
                "-y",
                "-q",
                "--releasever=40",
                "--setopt=install_weak_deps=False",
                "--nodocs",
            ])
            .arg(format!("--installroot={}", dnf_root.display()))
            .arg(format!("--repofrompath=fx,{repo}"))
            .args(["--repo=fx", "--setopt=fx.gpgcheck=0"])
            .arg("install")
            .args(PACKAGES),
    );

    let list: Vec<String> = PACKAGES.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"diff\"\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\n\n[options]\nreleasever = \"40\"\ndocs = false\nlangs = [\"all\"]\n",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    let archive = tmp.path().join("image.oci.tar");
    run_ok(&mut build_cmd(&recipe, &archive, &tmp.path().join("cache")));

    let theirs = walk(&dnf_root);
    let ours = layer(&archive);
    let mut unexplained = Vec::new();
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for path in keys {
        let (a, b) = (theirs.get(path), ours.get(path));
        if a == b {
            continue;
        }
        let rule = rule_for_path(path).or_else(|| match (a, b) {
            (Some(a), Some(b))
                if a.mode & 0o6000 != 0
                    && b.mode == a.mode & !0o6000
                    && Node {
                        mode: b.mode,
                        ..a.clone()
                    } == *b =>
            {
                Some(Rule::SetuidStripped)
            }
            _ => None,
        });
        match rule {
            Some(r) => *used.entry(format!("{r:?}")).or_default() += 1,
            None => unexplained.push(format!(
                "/{path}\n    dnf:       {a:?}\n    minibuild: {b:?}"
            )),
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s):\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    // The rules are not vacuous: each one explained something.
    for r in ["PackageManagerState", "Generated", "SetuidStripped"] {
        assert!(used.contains_key(r), "rule {r} explained nothing: {used:?}");
    }
    assert!(theirs.len() > 500, "dnf installed {} paths", theirs.len());
}
