//! Single-file outputs: `oci-archive` and `docker-archive`.
//!
//! Both are deterministic tars written atomically beside the destination:
//! entries in sorted order, owned by 0:0 with no names, mode 0755 (dirs) or
//! 0644 (files), and the image's SOURCE_DATE_EPOCH as mtime.
//!
//! - `oci-archive` is the staged OCI layout packed as is (`blobs/`,
//!   `blobs/sha256/…`, `index.json`, `oci-layout`): what skopeo and podman
//!   read as `oci-archive:FILE`.
//! - `docker-archive` is the format of `docker save`: `manifest.json`
//!   naming the config (`<hex>.json`) and the layers (`<diff_id hex>.tar`,
//!   uncompressed, so each file's digest is its diff_id), with `RepoTags`
//!   for `docker load` to tag the image.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::error::ImageError;
use super::json::to_canonical_vec;
use super::layer::{Compression, LayerInfo};
use super::manifest::ImageInfo;
use super::tarball::{TarKind, TarMeta, TarWriter};

/// Name start of the archive being written beside the output (see temporaries.rs).
pub const ARCHIVE_PREFIX: &str = ".minibuild-archive-";
use crate::fsutil::{parent_dir, AtomicFile};

/// Where an archive entry's content comes from.
enum Source {
    Dir,
    File {
        path: PathBuf,
        size: u64,
    },
    Bytes(Vec<u8>),
    /// A compressed layer blob, written decompressed (`size` bytes).
    Layer(LayerInfo),
}

/// Pack the OCI layout at `layout` into a tar written atomically to `dest`.
pub fn write_oci_archive(layout: &Path, dest: &Path, mtime: u64) -> Result<(), ImageError> {
    let mut entries = Vec::new();
    collect(layout, "", &mut entries)?;
    write_tar_file(&entries, dest, mtime)
}

/// Write `image` as a `docker save`-style archive tagged `repo_tag`
/// (`name:tag`) atomically to `dest`.
pub fn write_docker_archive(
    blob_dir: &Path,
    image: &ImageInfo,
    repo_tag: &str,
    dest: &Path,
    mtime: u64,
) -> Result<(), ImageError> {
    let config_name = format!("{}.json", image.config.digest.hex());
    let layer_names: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("{}.tar", l.diff_id.hex()))
        .collect();
    let manifest = to_canonical_vec(&json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": layer_names,
    }]));

    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    let config_path = blob_dir.join(image.config.digest.hex());
    entries.insert(
        config_name,
        Source::File {
            path: config_path,
            size: image.config.size,
        },
    );
    for (name, layer) in layer_names.into_iter().zip(&image.layers) {
        entries.insert(name, Source::Layer(layer.clone()));
    }
    entries.insert("manifest.json".into(), Source::Bytes(manifest));
    let entries: Vec<(String, Source)> = entries.into_iter().collect();
    write_tar_file(&entries, dest, mtime)
}

fn write_tar_file(entries: &[(String, Source)], dest: &Path, mtime: u64) -> Result<(), ImageError> {
    let parent = parent_dir(dest);
    let tmp = AtomicFile::create_in(parent, ARCHIVE_PREFIX, crate::fsutil::umask_file_mode())
        .map_err(|e| ImageError::io("create a temp file in", parent, e))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 20, tmp));
    let no_xattrs = BTreeMap::new();
    for (name, source) in entries {
        let mut meta = TarMeta {
            name,
            kind: TarKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            user: "",
            group: "",
            mtime,
            xattrs: &no_xattrs,
        };
        let (path, mut data): (&Path, Box<dyn Read>) = match source {
            Source::Dir => (&tmp_path, Box::new(std::io::empty())),
            Source::File { path, size } => {
                meta.kind = TarKind::File { size: *size };
                let f = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
                (path, Box::new(BufReader::with_capacity(1 << 16, f)))
            }
            Source::Bytes(bytes) => {
                meta.kind = TarKind::File {
                    size: bytes.len() as u64,
                };
                (&tmp_path, Box::new(&bytes[..]))
            }
            Source::Layer(layer) => {
                meta.kind = TarKind::File {
                    size: layer.uncompressed_size,
                };
                (&layer.path_of_blob, open_decompressed(layer)?)
            }
        };
        if meta.kind != TarKind::Dir {
            meta.mode = 0o644;
        }
        tar.append(&meta, Some(&mut data))
            .map_err(|e| ImageError::io("pack into the archive", path, e))?;
    }
    let out = tar
        .finish()
        .map_err(|e| ImageError::io("write", &tmp_path, e))?;
    let tmp = out
        .into_inner()
        .map_err(|e| ImageError::io("write", &tmp_path, e.into_error()))?;
    tmp.persist(dest)
        .map_err(|e| ImageError::io("write the archive to", dest, e))?;
    Ok(())
}

/// The layer blob as a reader of its uncompressed tar.
fn open_decompressed(layer: &LayerInfo) -> Result<Box<dyn Read>, ImageError> {
    let path = &layer.path_of_blob;
    let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let file = BufReader::with_capacity(1 << 16, file);
    let compression = match layer.media_type {
        m if m == Compression::Gzip.media_type() => Compression::Gzip,
        m if m == Compression::Zstd.media_type() => Compression::Zstd,
        _ => Compression::None,
    };
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::Decoder::with_buffer(file).map_err(|e| ImageError::io("decompress", path, e))?,
        ),
    })
}

/// Every entry under `dir` as archive name and source, sorted by name with
/// parents first.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, Source)>) -> Result<(), ImageError> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ImageError::io("read", dir, e))? {
        let entry = entry.map_err(|e| ImageError::io("read", dir, e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| ImageError::InvalidPath {
                path: name.to_string_lossy().into_owned(),
                reason: "layout file names are ASCII".into(),
            })?;
        children.push((name, entry.path()));
    }
    children.sort();
    for (name, path) in children {
        let meta = fs::metadata(&path).map_err(|e| ImageError::io("inspect", &path, e))?;
        if meta.is_dir() {
            let name = format!("{prefix}{name}/");
            out.push((name.clone(), Source::Dir));
            collect(&path, &name, out)?;
        } else {
            let size = meta.len();
            out.push((format!("{prefix}{name}"), Source::File { path, size }));
        }
    }
    Ok(())
}
