//! Loading a local image's layers: an OCI layout directory or oci-archive
//! → one [`Tree`] per platform, with file contents appended to one staging
//! pack.
//!
//! Used by `minibuild check IMAGE` so that a finished image is checked with
//! exactly the code that checks a build. The image is read through
//! [`LocalImage`]; layers are applied bottom-up with OCI whiteouts, and each
//! layer blob's digest is verified before it is unpacked. What a [`Tree`]
//! cannot hold is not dropped silently: device nodes, names with a `..`
//! component and unknown entry types become [`Loaded::skipped`].

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::rootfs::{Entry, Kind, Staging, Tree};

use super::error::ImageError;
use super::local::{BlobSource, Content, LocalImage};

/// A layer entry the tree cannot hold; `check` reports each as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Image path, with a leading `/`.
    pub path: String,
    /// Why it was left out, naming the layer.
    pub reason: String,
}

/// One platform's image, loaded.
pub struct Loaded {
    /// `os/arch` from the config.
    pub platform: String,
    pub manifest_digest: Digest,
    /// The layers merged, top layer last.
    pub tree: Tree,
    /// What each layer holds, bottom first, before merging: the gates
    /// measure what upper layers replace or remove.
    pub layers: Vec<LayerFiles>,
    /// The config's `User`, when set.
    pub user: Option<String>,
    /// Layer entries the tree cannot hold.
    pub skipped: Vec<Skipped>,
}

/// One layer's entries, in the layer's own order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerFiles {
    /// Compressed size of the layer blob.
    pub blob_size: u64,
    pub changes: Vec<Change>,
}

/// One entry of a layer, as it changes the tree below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A path added or replaced; `size` is the tar header's (0 for
    /// anything but a regular file: dive counts the same).
    Put { path: String, size: u64 },
    /// A whiteout: the path and everything under it is gone.
    Remove { path: String },
    /// An opaque whiteout: everything below the directory in lower layers is gone.
    Opaque { dir: String },
}

/// A loaded image; owns the staging directory the trees' blobs live in.
pub struct Image {
    pub platforms: Vec<Loaded>,
    _staging: tempfile::TempDir,
}

/// Why an image's layers cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot create a staging directory for the layers' files")]
    Staging(#[source] io::Error),
    #[error("cannot read layer {digest} of {}", path.display())]
    Layer {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: LayerError,
    },
}

/// What is wrong with one layer blob.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer blob is corrupt: expected {expected}, found {got}")]
    Corrupt { expected: Digest, got: Digest },
    #[error("hardlink {path} points at {target}, which is not in the layer")]
    DanglingHardlink { path: String, target: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Load every platform of the image at `path` (layout dir or oci-archive).
pub fn load(path: &Path) -> Result<Image, LoadError> {
    let image = LocalImage::open(path)?;
    let manifests = image.image_manifests()?;
    let staging = tempfile::Builder::new()
        .prefix("minibuild-check-")
        .tempdir()
        .map_err(LoadError::Staging)?;
    let mut blobs = Staging::new(staging.path().join("blobs")).map_err(LoadError::Staging)?;
    let mut platforms = Vec::new();
    for manifest in manifests {
        let Content::Image { config, layers } = &manifest.content else {
            continue;
        };
        let platform = image.config_platform(config)?.os_arch();
        let user = image.config_user(config)?;
        let mut tree = Tree::default();
        let mut skipped = Vec::new();
        let mut listed = Vec::new();
        for layer in layers {
            let d = &layer.digest;
            let mut files = LayerFiles {
                blob_size: layer.size,
                changes: Vec::new(),
            };
            apply_layer(
                &mut tree,
                &image.blob(layer)?,
                d,
                &mut blobs,
                &mut skipped,
                &mut files.changes,
                None,
            )
            .map_err(|source| LoadError::Layer {
                path: path.to_path_buf(),
                digest: d.clone(),
                source,
            })?;
            listed.push(files);
        }
        platforms.push(Loaded {
            platform,
            manifest_digest: manifest.digest,
            tree,
            layers: listed,
            user,
            skipped,
        });
    }
    Ok(Image {
        platforms,
        _staging: staging,
    })
}

/// Apply one layer blob (verified against `digest` first) to `tree`, with
/// OCI whiteouts; with `keep`, only the entries whose path it accepts are
/// added (whiteouts still apply everywhere). Returns what the tree could
/// not hold. A build on a published base uses this for the base's layers.
pub fn apply_layer_blob(
    tree: &mut Tree,
    source: &BlobSource,
    digest: &Digest,
    blobs: &mut Staging,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Vec<Skipped>, LayerError> {
    let mut skipped = Vec::new();
    apply_layer(
        tree,
        source,
        digest,
        blobs,
        &mut skipped,
        &mut Vec::new(),
        keep,
    )?;
    Ok(skipped)
}

fn apply_layer(
    tree: &mut Tree,
    source: &BlobSource,
    digest: &Digest,
    blobs: &mut Staging,
    skipped: &mut Vec<Skipped>,
    changes: &mut Vec<Change>,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<(), LayerError> {
    let mut report = |raw: &str, message: String| {
        skipped.push(Skipped {
            path: format!("/{}", raw.trim_start_matches("./").trim_start_matches('/')),
            reason: format!("{message} (layer {digest})"),
        })
    };
    // Verify first: a corrupt blob should be reported as such, not as a tar error.
    let got = Digest::of_reader(digest.algo(), BufReader::new(source.open()?))?;
    if &got != digest {
        return Err(LayerError::Corrupt {
            expected: digest.clone(),
            got,
        });
    }
    let mut f = BufReader::new(source.open()?);
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
                    changes.push(Change::Opaque {
                        dir: dir.to_string(),
                    });
                } else {
                    let gone = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    let prefix = format!("{gone}/");
                    tree.entries
                        .retain(|k, _| *k != gone && !k.starts_with(&prefix));
                    changes.push(Change::Remove { path: gone });
                }
                continue;
            }
            if keep.is_some_and(|k| !k(&p)) {
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
                        Some(t) if !has_dot_dot(&target) => {
                            changes.push(Change::Put {
                                path: p.clone(),
                                size: 0,
                            });
                            links.push((p.clone(), t))
                        }
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
            let size = match &entry.kind {
                Kind::File { size, .. } => *size,
                _ => 0,
            };
            changes.push(Change::Put {
                path: p.clone(),
                size,
            });
            tree.entries.insert(p, entry);
        }
        // Hardlinks share their target's blob and a link id.
        for (i, (path, target)) in links.into_iter().enumerate() {
            let Some(mut t) = tree.entries.get(&target).cloned() else {
                if keep.is_some() {
                    // Its target was not kept: neither is the link.
                    continue;
                }
                return Err(LayerError::DanglingHardlink { path, target });
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
    use std::fs;

    use crate::image::test_tree::TestTree;
    use crate::image::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
    use crate::package::Arch;

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
        let err = anyhow::Error::from(load(&dest).err().expect("corrupt layer must fail"));
        assert!(
            format!("{err:#}").contains("layer blob is corrupt"),
            "{err:#}"
        );
    }
}
