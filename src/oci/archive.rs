//! `oci-archive`: an OCI layout packed into one deterministic tar file.
//!
//! Entries are the layout's files in sorted order (`blobs/`,
//! `blobs/sha256/`, `blobs/sha256/<hex>`…, `index.json`, `oci-layout`),
//! owned by 0:0 with no names, mode 0755 (dirs) or 0644 (files), and the
//! image's SOURCE_DATE_EPOCH as mtime: the same layout always packs to the
//! same bytes. This is the layout skopeo and podman accept as
//! `oci-archive:FILE`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::layout::parent_dir;
use super::tarball::{TarKind, TarMeta, TarWriter};
use super::OciError;

/// Pack the layout at `layout` into a tar written atomically to `dest`.
pub fn write_archive(layout: &Path, dest: &Path, mtime: u64) -> Result<(), OciError> {
    let parent = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".minibuild-archive-")
        .tempfile_in(&parent)
        .map_err(|e| OciError::io("create a temp file in", &parent, e))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| OciError::io("reopen", tmp.path(), e))?;
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut files = Vec::new();
    collect(layout, "", &mut files)?;
    let no_xattrs = BTreeMap::new();
    for (name, path, size) in &files {
        let kind = match size {
            None => TarKind::Dir,
            Some(size) => TarKind::File { size: *size },
        };
        let meta = TarMeta {
            name,
            kind,
            mode: if size.is_none() { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            user: "",
            group: "",
            mtime,
            xattrs: &no_xattrs,
        };
        let result = match size {
            None => tar.append(&meta, None),
            Some(_) => {
                let mut f = File::open(path).map_err(|e| OciError::io("open", path, e))?;
                tar.append(&meta, Some(&mut f))
            }
        };
        result.map_err(|e| OciError::io("pack into the archive", path, e))?;
    }
    let mut out = tar
        .finish()
        .map_err(|e| OciError::io("write", tmp.path(), e))?;
    out.flush()
        .map_err(|e| OciError::io("write", tmp.path(), e))?;
    drop(out);
    tmp.persist(dest)
        .map_err(|e| OciError::io("rename the archive to", dest, e.error))?;
    Ok(())
}

/// Every entry under `dir` as (archive name, path, size; None for dirs),
/// sorted by name with parents first.
fn collect(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, std::path::PathBuf, Option<u64>)>,
) -> Result<(), OciError> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| OciError::io("read", dir, e))? {
        let entry = entry.map_err(|e| OciError::io("read", dir, e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| OciError::InvalidPath {
                path: name.to_string_lossy().into_owned(),
                reason: "layout file names are ASCII".into(),
            })?;
        children.push((name, entry.path()));
    }
    children.sort();
    for (name, path) in children {
        let meta = fs::metadata(&path).map_err(|e| OciError::io("inspect", &path, e))?;
        if meta.is_dir() {
            let name = format!("{prefix}{name}/");
            out.push((name.clone(), path.clone(), None));
            collect(&path, &name, out)?;
        } else {
            out.push((format!("{prefix}{name}"), path, Some(meta.len())));
        }
    }
    Ok(())
}
