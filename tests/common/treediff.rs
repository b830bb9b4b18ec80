//! Trees to compare: one installed on the host (by dnf --installroot) and
//! one read from minibuild's single layer, as path → [`Node`], so the
//! differential tests can name each difference.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// d, f, l, p (fifo), c/b (devices)
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// sha256 of a file's content, or a symlink's target.
    pub content: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The tree dnf installed, from the host filesystem.
pub fn walk(root: &Path) -> BTreeMap<String, Node> {
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
pub fn layer(archive: &Path) -> BTreeMap<String, Node> {
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

/// `dnf --installroot=ROOT install PACKAGES` from `repos` (`(id, baseurl)`,
/// unsigned fixtures), weak deps off, no docs: dnf runs the scriptlets.
pub fn dnf_install(root: &Path, repos: &[(&str, String)], packages: &[&str]) {
    super::require_tool("dnf");
    let mut cmd = std::process::Command::new("dnf");
    cmd.args([
        "-y",
        "-q",
        "--releasever=40",
        "--setopt=install_weak_deps=False",
        "--nodocs",
    ])
    .arg(format!("--installroot={}", root.display()));
    for (id, url) in repos {
        cmd.arg(format!("--repofrompath={id},{url}"))
            .arg(format!("--repo={id}"))
            .arg(format!("--setopt={id}.gpgcheck=0"));
    }
    super::run_ok(cmd.arg("install").args(packages));
}
