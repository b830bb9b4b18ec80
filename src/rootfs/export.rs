//! `--rootfs DIR`: the final tree written out as a directory, for inspection.
//!
//! The tree is written into a fresh temporary directory beside `DIR` and
//! renamed into place, so `DIR` is either the old content or the complete
//! new one. Every path is created new (`create_dir`, `create_new`, `symlink`
//! fail on anything already there, and none follows a final symlink), and
//! a path is only created under a parent that the tree says is a directory
//! — one this function made itself — so no symlink of the image can steer a
//! write outside `DIR`. Directory modes are applied last, deepest first, so
//! a 0555 directory can still be filled. Ownership is applied only when
//! running as root (`lchown`, never following symlinks); capabilities and
//! other xattrs are not written, and fifos are skipped (reported).
//!
//! A non-empty `DIR` is replaced only when it holds [`MARKER`], the file
//! this function leaves in every rootfs it writes. The marker is
//! minibuild's own: a tree that has that path (a package shipping it, say
//! as a symlink to a host file) is refused before anything is written, and
//! the marker is created new, so it can never follow a link.
//!
//! The temporary directory is 0700 while it is filled (with
//! `strip_setuid = false`, setuid-root files of a package must not sit in a
//! directory other users can reach) and gets its final mode just before it
//! is renamed into place.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Kind, Tree};

/// Marks a directory as a rootfs minibuild wrote (and may replace).
pub const MARKER: &str = ".minibuild-rootfs";
/// Name starts of the temporaries beside DIR (owner-tagged, see
/// temporaries.rs): the tree being written, and the old one going away.
pub const TEMP_PREFIX: &str = ".minibuild-rootfs-";
pub const OLD_PREFIX: &str = ".minibuild-rootfs-old-";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{} exists and is not empty, and minibuild did not write it (no {MARKER}); refusing to replace it\n  hint: choose a new directory or remove it yourself", dir.display())]
    NotOurs { dir: PathBuf },
    #[error("cannot write /{path} under {}", dir.display())]
    Io {
        dir: PathBuf,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("/{path}: its parent is not a directory in the image; not written")]
    BadParent { path: String },
    #[error("package {package} ships /{MARKER}, the marker minibuild writes into every --rootfs directory; refusing to write the tree\n  hint: that path is reserved (a package that ships it may be trying to redirect the marker write to a host file); build without --rootfs or drop the package")]
    ReservedPath { package: String },
}

/// What [`write_dir`] left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    pub skipped_fifos: Vec<String>,
}

fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Write `tree` to `dir` (see the module docs).
pub fn write_dir(tree: &Tree, dir: &Path) -> Result<ExportReport, ExportError> {
    let io_err = |path: &str| {
        let path = path.to_string();
        move |source| ExportError::Io {
            dir: dir.to_path_buf(),
            path,
            source,
        }
    };
    if let Some(e) = tree.entries.get(MARKER) {
        return Err(ExportError::ReservedPath {
            package: e.package.clone().unwrap_or_else(|| "(none)".into()),
        });
    }
    if let Ok(mut entries) = fs::read_dir(dir) {
        // symlink_metadata: a marker that is a link is not ours.
        let marked = fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file());
        if entries.next().is_some() && !marked {
            return Err(ExportError::NotOurs {
                dir: dir.to_path_buf(),
            });
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = crate::fsutil::AtomicDir::create_in(
        &parent,
        TEMP_PREFIX,
        fs::Permissions::from_mode(0o700),
    )
    .map_err(io_err(""))?;
    let root = tmp.path();
    let chown = euid_is_root();
    let mut report = ExportReport::default();
    // First path of each hardlink set, which later members link to.
    let mut linked: BTreeMap<u64, PathBuf> = BTreeMap::new();
    for (path, e) in &tree.entries {
        if let Some((p, _)) = path.rsplit_once('/') {
            if !matches!(tree.entries.get(p).map(|e| &e.kind), Some(Kind::Dir)) {
                return Err(ExportError::BadParent { path: path.clone() });
            }
        }
        let host = root.join(path);
        let err = io_err(path);
        match &e.kind {
            Kind::Dir => fs::create_dir(&host).map_err(err)?,
            Kind::Symlink { target } => symlink(target, &host).map_err(err)?,
            Kind::Fifo => {
                report.skipped_fifos.push(path.clone());
                continue;
            }
            Kind::File { blob, link_id, .. } => match link_id.and_then(|id| linked.get(&id)) {
                Some(first) => fs::hard_link(first, &host).map_err(err)?,
                None => {
                    let mut out = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&host)
                        .map_err(io_err(path))?;
                    let mut src = blob.open();
                    io::copy(&mut src, &mut out).map_err(io_err(path))?;
                    if let Some(id) = link_id {
                        linked.insert(*id, host.clone());
                    }
                }
            },
        }
        if chown {
            std::os::unix::fs::lchown(&host, Some(e.uid), Some(e.gid)).map_err(io_err(path))?;
        }
        if matches!(e.kind, Kind::File { .. }) {
            // After chown, which would clear setuid bits.
            fs::set_permissions(&host, fs::Permissions::from_mode(e.mode)).map_err(io_err(path))?;
        }
    }
    // create_new (O_EXCL): fails on anything already there, links included.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(root.join(MARKER))
        .and_then(|mut f| io::Write::write_all(&mut f, b"written by minibuild --rootfs\n"))
        .map_err(io_err(MARKER))?;
    for (path, e) in tree.entries.iter().rev() {
        if e.kind == Kind::Dir {
            fs::set_permissions(root.join(path), fs::Permissions::from_mode(e.mode))
                .map_err(io_err(path))?;
        }
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(io_err(""))?;

    // Swap in: the old rootfs (ours, checked above) is replaced, then
    // removed. Old and new are both recorded temporaries while they trade
    // places: an interrupt waits until DIR holds the new tree.
    let _commit = crate::temporaries::commit_section();
    tmp.persist(dir, OLD_PREFIX)
        .map_err(|e| io_err("")(e.source))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::tree::implied_dir;
    use crate::rootfs::{Entry, Staging};
    use std::io::Write;

    fn file(staging: &mut Staging, text: &str, mode: u32, link_id: Option<u64>) -> Entry {
        let mut w = staging.create_blob().unwrap();
        w.write_all(text.as_bytes()).unwrap();
        let blob = w.finish().unwrap();
        Entry {
            kind: Kind::File {
                blob: blob.blob,
                size: blob.size,
                link_id,
            },
            mode,
            ..implied_dir()
        }
    }

    #[test]
    fn writes_files_links_and_modes_and_replaces_only_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(tmp.path().join("staging")).unwrap();
        let mut tree = Tree::default();
        tree.entries.insert("usr".into(), implied_dir());
        tree.entries.insert(
            "usr/bin".into(),
            Entry {
                mode: 0o555,
                ..implied_dir()
            },
        );
        tree.entries.insert(
            "usr/bin/a".into(),
            file(&mut staging, "hi\n", 0o4755, Some(1)),
        );
        tree.entries.insert(
            "usr/bin/b".into(),
            file(&mut staging, "hi\n", 0o4755, Some(1)),
        );
        // A hostile symlink: written as a link, never followed.
        tree.entries.insert(
            "etc".into(),
            Entry {
                kind: Kind::Symlink {
                    target: tmp.path().join("outside").display().to_string(),
                },
                ..implied_dir()
            },
        );
        let dir = tmp.path().join("rootfs");
        write_dir(&tree, &dir).unwrap();
        assert_eq!(fs::read_to_string(dir.join("usr/bin/a")).unwrap(), "hi\n");
        let meta = fs::symlink_metadata(dir.join("usr/bin/b")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.nlink(), 2, "hardlinked");
        assert_eq!(meta.mode() & 0o7777, 0o4755);
        assert_eq!(
            fs::symlink_metadata(dir.join("usr/bin")).unwrap().mode() & 0o7777,
            0o555
        );
        assert!(fs::symlink_metadata(dir.join("etc"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!tmp.path().join("outside").exists());

        // A second write replaces the first (it carries the marker).
        tree.entries.remove("usr/bin/b");
        write_dir(&tree, &dir).unwrap();
        assert!(!dir.join("usr/bin/b").exists());
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".minibuild"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Someone else's non-empty directory is refused and left alone.
        let theirs = tmp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        fs::write(theirs.join("keep"), "x").unwrap();
        let err = write_dir(&tree, &theirs).unwrap_err().to_string();
        assert!(err.contains("refusing to replace it"), "{err}");
        assert!(theirs.join("keep").is_file());
    }
}
