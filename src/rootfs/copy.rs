//! `[[copy]]`: the user's own files into the image, like a Dockerfile `COPY`
//! from an earlier build stage. Contents become staging blobs; paths are
//! resolved inside the tree (a symlink in the image cannot redirect a copy
//! outside it); the copy replaces whatever a package put at the same path.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::tree::TreeError;
use super::{Entry, Kind, Staging, Tree};

/// Why a `[[copy]]` cannot be placed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("[[copy]] src {} cannot be read", path.display())]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("[[copy]] dest {dest}")]
    Dest {
        dest: String,
        #[source]
        source: Box<TreeError>,
    },
    #[error("cannot copy {}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("[[copy]] {}: only files, directories and symlinks can be copied", path.display())]
    Unsupported { path: PathBuf },
}

/// Copy `src` (a file, symlink or directory tree on the host) to image path
/// `dest`. Files keep their permission bits unless `mode` is given (applied
/// to files only); everything is owned by root. Returns the number of paths placed.
pub fn copy_in(
    tree: &mut Tree,
    staging: &mut Staging,
    src: &Path,
    dest: &str,
    mode: Option<u32>,
) -> Result<usize, CopyError> {
    let meta = fs::symlink_metadata(src).map_err(|source| CopyError::Source {
        path: src.to_path_buf(),
        source,
    })?;
    let at = tree.resolve(dest).map_err(|source| CopyError::Dest {
        dest: dest.to_string(),
        source: Box::new(source),
    })?;
    let mut placed = 0;
    place(tree, staging, src, &meta, at, mode, &mut placed)?;
    Ok(placed)
}

fn place(
    tree: &mut Tree,
    staging: &mut Staging,
    src: &Path,
    meta: &fs::Metadata,
    at: String,
    mode: Option<u32>,
    placed: &mut usize,
) -> Result<(), CopyError> {
    let read = |source| CopyError::Source {
        path: src.to_path_buf(),
        source,
    };
    let copy = |source| CopyError::Copy {
        path: src.to_path_buf(),
        source,
    };
    let ft = meta.file_type();
    let perm = meta.permissions().mode() & 0o7777;
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(read)?;
        Kind::Symlink {
            target: target.to_string_lossy().into_owned(),
        }
    } else if ft.is_file() {
        let mut w = staging.create_blob().map_err(copy)?;
        io::copy(&mut File::open(src).map_err(read)?, &mut w).map_err(copy)?;
        let blob = w.finish().map_err(copy)?;
        staging.record(&blob);
        Kind::File {
            blob: blob.blob,
            size: blob.size,
            link_id: None,
        }
    } else {
        return Err(CopyError::Unsupported {
            path: src.to_path_buf(),
        });
    };
    let is_file = matches!(kind, Kind::File { .. });
    let entry = Entry {
        kind,
        mode: if is_file { mode.unwrap_or(perm) } else { perm },
        user: "root".into(),
        group: "root".into(),
        uid: 0,
        gid: 0,
        mtime: meta.mtime().max(0) as u64,
        xattrs: BTreeMap::new(),
        package: None,
    };
    tree.ensure_parents(&at);
    // A copied directory merges with an existing one; anything else replaces it.
    let merge_dir =
        ft.is_dir() && matches!(tree.entries.get(&at).map(|e| &e.kind), Some(Kind::Dir));
    if !merge_dir {
        let prefix = format!("{at}/");
        tree.entries.retain(|p, _| !p.starts_with(&prefix));
    }
    tree.entries.insert(at.clone(), entry);
    *placed += 1;
    if ft.is_dir() {
        let mut children: Vec<_> = fs::read_dir(src)
            .and_then(|d| d.collect::<Result<_, _>>())
            .map_err(read)?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(child.path()).map_err(|source| CopyError::Source {
                path: child.path(),
                source,
            })?;
            place(
                tree,
                staging,
                &child.path(),
                &meta,
                format!("{at}/{name}"),
                mode,
                placed,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_and_symlinks_inside_the_tree() {
        let host = tempfile::tempdir().unwrap();
        let stage_dir = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(stage_dir.path()).unwrap();
        let app = host.path().join("app");
        fs::write(&app, b"#!/bin/sh\necho app\n").unwrap();
        fs::create_dir(host.path().join("conf")).unwrap();
        fs::write(host.path().join("conf/a.conf"), b"a=1\n").unwrap();
        std::os::unix::fs::symlink("a.conf", host.path().join("conf/current")).unwrap();

        let mut tree = Tree::default();
        // The image already has /usr/local -> /opt (absolute, inside the image).
        tree.entries
            .insert("opt".into(), super::super::tree::implied_dir());
        tree.entries.insert(
            "usr/local".into(),
            Entry {
                kind: Kind::Symlink {
                    target: "/opt".into(),
                },
                ..super::super::tree::implied_dir()
            },
        );
        assert_eq!(
            copy_in(
                &mut tree,
                &mut staging,
                &app,
                "/usr/local/bin/app",
                Some(0o755)
            )
            .unwrap(),
            1
        );
        let e = &tree.entries["opt/bin/app"];
        assert_eq!(e.mode, 0o755);
        let Kind::File { blob, .. } = &e.kind else {
            panic!("not a file")
        };
        assert!(
            blob.path().starts_with(staging.dir()),
            "content lives in staging, not at a host path"
        );
        assert_eq!(blob.read_to_vec().unwrap(), b"#!/bin/sh\necho app\n");

        assert_eq!(
            copy_in(
                &mut tree,
                &mut staging,
                &host.path().join("conf"),
                "/etc/app",
                None
            )
            .unwrap(),
            3
        );
        assert!(matches!(tree.entries["etc/app"].kind, Kind::Dir));
        assert!(
            matches!(&tree.entries["etc/app/current"].kind, Kind::Symlink { target } if target == "a.conf")
        );
        assert!(tree.entries.contains_key("etc/app/a.conf"));
    }

    #[test]
    fn missing_source_is_named() {
        let stage_dir = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(stage_dir.path()).unwrap();
        let err = copy_in(
            &mut Tree::default(),
            &mut staging,
            Path::new("/no/such/app"),
            "/app",
            None,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/app"), "{err:#}");
    }
}
