//! Reading an image back: an OCI layout directory or oci-archive → one
//! [`Tree`] per platform, with file contents appended to one staging pack.
//!
//! Used by `minibuild check IMAGE` so that a finished image is checked with
//! exactly the code that checks a build. Layers are applied bottom-up with
//! OCI whiteouts; blob digests are verified while reading. What a [`Tree`]
//! cannot hold is not dropped silently: device nodes, names with a `..`
//! component and unknown entry types become [`Loaded::findings`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::check::{Finding, Severity};
use crate::digest::Digest;
use crate::rootfs::{Entry, Kind, Staging, Tree};

/// One platform's image, loaded.
pub struct Loaded {
    /// `os/arch` from the config.
    pub platform: String,
    pub manifest_digest: Digest,
    pub tree: Tree,
    /// Layer entries the tree cannot hold, each an error for `check`.
    pub findings: Vec<Finding>,
}

/// A loaded image; owns the staging directory the trees' blobs live in.
pub struct Image {
    pub platforms: Vec<Loaded>,
    _staging: tempfile::TempDir,
}

/// Load every platform of the image at `path` (layout dir or oci-archive).
pub fn load(path: &Path) -> anyhow::Result<Image> {
    let staging = tempfile::Builder::new()
        .prefix("minibuild-check-")
        .tempdir()?;
    let layout = if path.is_dir() {
        path.to_path_buf()
    } else {
        let dir = staging.path().join("layout");
        let f =
            File::open(path).with_context(|| format!("cannot open image {}", path.display()))?;
        tar::Archive::new(BufReader::new(f))
            .unpack(&dir)
            .with_context(|| {
                format!(
                    "{} is not an OCI layout directory or oci-archive",
                    path.display()
                )
            })?;
        dir
    };
    let index = read_json(&layout.join("index.json")).with_context(|| {
        format!(
            "{}: no readable index.json; is it an OCI image?",
            path.display()
        )
    })?;
    let mut manifests = Vec::new();
    collect_manifests(&layout, &index, &mut manifests, 0)?;
    if manifests.is_empty() {
        bail!("{}: the index lists no image manifests", path.display());
    }
    let mut blobs = Staging::new(staging.path().join("blobs"))?;
    let mut platforms = Vec::new();
    for digest in manifests {
        let manifest = read_json(&blob_path(&layout, &digest)?)?;
        let config_digest: Digest = json_str(&manifest["config"]["digest"])?.parse()?;
        let config = read_json(&blob_path(&layout, &config_digest)?)?;
        let platform = format!(
            "{}/{}",
            config["os"].as_str().unwrap_or("?"),
            config["architecture"].as_str().unwrap_or("?")
        );
        let mut tree = Tree::default();
        let mut findings = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let d: Digest = json_str(&layer["digest"])?.parse()?;
            apply_layer(
                &mut tree,
                &blob_path(&layout, &d)?,
                &d,
                &mut blobs,
                &mut findings,
            )
            .with_context(|| format!("cannot read layer {d}"))?;
        }
        platforms.push(Loaded {
            platform,
            manifest_digest: digest,
            tree,
            findings,
        });
    }
    Ok(Image {
        platforms,
        _staging: staging,
    })
}

fn collect_manifests(
    layout: &Path,
    index: &Value,
    out: &mut Vec<Digest>,
    depth: u32,
) -> anyhow::Result<()> {
    if depth > 4 {
        bail!("image indexes nested too deeply");
    }
    for m in index["manifests"].as_array().into_iter().flatten() {
        let digest: Digest = json_str(&m["digest"])?.parse()?;
        match m["mediaType"].as_str() {
            Some(super::image::MEDIA_TYPE_INDEX) => {
                let nested = read_json(&blob_path(layout, &digest)?)?;
                collect_manifests(layout, &nested, out, depth + 1)?;
            }
            _ => out.push(digest),
        }
    }
    Ok(())
}

fn json_str(v: &Value) -> anyhow::Result<&str> {
    v.as_str()
        .context("malformed image JSON: a digest is missing")
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn blob_path(layout: &Path, d: &Digest) -> anyhow::Result<PathBuf> {
    let p = layout.join("blobs").join(d.algo().name()).join(d.hex());
    if !p.is_file() {
        bail!("blob {d} is missing from the image");
    }
    Ok(p)
}

fn apply_layer(
    tree: &mut Tree,
    path: &Path,
    digest: &Digest,
    blobs: &mut Staging,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let mut report = |raw: &str, message: String| {
        findings.push(Finding {
            severity: Severity::Error,
            path: format!("/{}", raw.trim_start_matches("./").trim_start_matches('/')),
            message: format!("{message} (layer {digest})"),
        })
    };
    // Verify first: a corrupt blob should be reported as such, not as a tar error.
    let got = Digest::of_reader(digest.algo(), BufReader::new(File::open(path)?))?;
    if &got != digest {
        bail!("layer blob is corrupt: expected {digest}, found {got}");
    }
    let mut f = BufReader::new(File::open(path)?);
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let raw = io::Cursor::new(magic[..n].to_vec()).chain(f);
    {
        let decoded: Box<dyn Read> = if magic[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(raw))
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Box::new(zstd::stream::read::Decoder::new(raw)?)
        } else {
            Box::new(raw)
        };
        let mut archive = tar::Archive::new(decoded);
        let mut links: Vec<(String, String)> = Vec::new();
        for e in archive.entries()? {
            let mut e = e?;
            let raw_path = e.path()?.to_string_lossy().into_owned();
            if has_dot_dot(&raw_path) {
                report(&raw_path, "has a `..` component: a runtime that follows it writes outside the image root; not checked".into());
                continue;
            }
            let Some(p) = normalize(&raw_path) else {
                continue;
            };
            let name = p.rsplit('/').next().unwrap_or("");
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
                if hidden == ".wh..opq" {
                    let prefix = format!("{dir}/");
                    tree.entries.retain(|k, _| !k.starts_with(&prefix));
                } else {
                    let gone = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    let prefix = format!("{gone}/");
                    tree.entries
                        .retain(|k, _| *k != gone && !k.starts_with(&prefix));
                }
                continue;
            }
            let mut xattrs = BTreeMap::new();
            if let Some(exts) = e.pax_extensions()? {
                for ext in exts.flatten() {
                    if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    {
                        xattrs.insert(key.to_string(), ext.value_bytes().to_vec());
                    }
                }
            }
            let h = e.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink {
                    target: e
                        .link_name()?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
                tar::EntryType::Link => {
                    let target = e
                        .link_name()?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match normalize(&target) {
                        Some(t) if !has_dot_dot(&target) => links.push((p.clone(), t)),
                        _ => report(
                            &raw_path,
                            format!(
                                "is a hardlink to `{target}`, outside the image root; not checked"
                            ),
                        ),
                    }
                    continue;
                }
                tar::EntryType::Fifo => Kind::Fifo,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut w = blobs.create_blob()?;
                    io::copy(&mut e, &mut w)?;
                    let blob = w.finish()?;
                    Kind::File {
                        blob: blob.blob,
                        size: blob.size,
                        link_id: None,
                    }
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    let what = if h.entry_type() == tar::EntryType::Char {
                        "character"
                    } else {
                        "block"
                    };
                    let (major, minor) = (
                        h.device_major().ok().flatten().unwrap_or(0),
                        h.device_minor().ok().flatten().unwrap_or(0),
                    );
                    report(&raw_path, format!("is a {what} device node ({major}:{minor}, mode {:04o}): an image should carry none (the runtime makes /dev)", h.mode().unwrap_or(0) & 0o7777));
                    continue;
                }
                other => {
                    report(
                        &raw_path,
                        format!("has tar entry type {other:?}, which minibuild cannot check"),
                    );
                    continue;
                }
            };
            let h = e.header();
            let entry = Entry {
                kind,
                mode: h.mode()? & 0o7777,
                user: h.username().ok().flatten().unwrap_or("").to_string(),
                group: h.groupname().ok().flatten().unwrap_or("").to_string(),
                uid: h.uid()? as u32,
                gid: h.gid()? as u32,
                mtime: h.mtime()?,
                xattrs,
                package: None,
            };
            tree.entries.insert(p, entry);
        }
        // Hardlinks share their target's blob and a link id.
        for (i, (path, target)) in links.into_iter().enumerate() {
            let Some(mut t) = tree.entries.get(&target).cloned() else {
                bail!("hardlink {path} points at {target}, which is not in the layer");
            };
            if let Kind::File { link_id, .. } = &mut t.kind {
                let id = link_id.unwrap_or(1 << 32 | i as u64);
                *link_id = Some(id);
                tree.entries.insert(target.clone(), t.clone());
            }
            tree.entries.insert(path, t);
        }
    }
    Ok(())
}

fn has_dot_dot(p: &str) -> bool {
    p.split('/').any(|c| c == "..")
}

/// Layer paths as tree keys: no `./`, no leading or trailing `/`; `None` for the root.
fn normalize(p: &str) -> Option<String> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::test_tree::TestTree;
    use crate::oci::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
    use crate::rpm::Arch;

    fn write(tree: &Tree, format: Format, compression: Compression, dest: &Path) -> Digest {
        let mut w = ImageWriter::new(dest).unwrap();
        let layer = w
            .add_layer(
                tree,
                &LayerOptions {
                    source_date_epoch: 1_700_000_000,
                    compression,
                },
            )
            .unwrap();
        w.add_image(&ImageConfig::new(Arch::X86_64, 1_700_000_000), &[layer])
            .unwrap();
        w.commit(format, "latest").unwrap().digest
    }

    #[test]
    fn round_trips_a_tree_through_archive_and_layout() {
        let t = TestTree::sample();
        let dir = tempfile::tempdir().unwrap();
        for (format, compression, name) in [
            (Format::OciArchive, Compression::Gzip, "a.tar"),
            (Format::Oci, Compression::Zstd, "b.oci"),
        ] {
            let dest = dir.path().join(name);
            let digest = write(&t.tree, format, compression, &dest);
            let img = load(&dest).unwrap();
            assert_eq!(img.platforms.len(), 1);
            let got = &img.platforms[0];
            assert_eq!(got.manifest_digest, digest);
            assert_eq!(got.platform, "linux/amd64");
            for (path, want) in &t.tree.entries {
                let have = got
                    .tree
                    .entries
                    .get(path)
                    .unwrap_or_else(|| panic!("{path} missing after {name}"));
                assert_eq!(
                    (have.mode, have.uid, have.gid),
                    (want.mode, want.uid, want.gid),
                    "{path}"
                );
                match (&want.kind, &have.kind) {
                    (Kind::File { blob: a, .. }, Kind::File { blob: b, .. }) => {
                        assert_eq!(
                            a.read_to_vec().unwrap(),
                            b.read_to_vec().unwrap(),
                            "{path} content"
                        )
                    }
                    (a, b) => assert_eq!(
                        std::mem::discriminant(a),
                        std::mem::discriminant(b),
                        "{path}"
                    ),
                }
            }
        }
    }

    #[test]
    fn corrupt_layer_is_detected() {
        let t = TestTree::sample();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("img.oci");
        write(&t.tree, Format::Oci, Compression::None, &dest);
        let blobs = dest.join("blobs/sha256");
        let biggest = fs::read_dir(&blobs)
            .unwrap()
            .flatten()
            .max_by_key(|e| e.metadata().unwrap().len())
            .unwrap()
            .path();
        let mut data = fs::read(&biggest).unwrap();
        let last = data.len() - 2000;
        data[last] ^= 0xff;
        fs::write(&biggest, data).unwrap();
        let err = load(&dest).err().expect("corrupt layer must fail");
        assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
    }
}
