//! Atomic outputs, done one way: every file or directory that replaces
//! something is written under a temporary name beside its destination
//! ([`crate::temporaries`], so an interrupt removes it and the next run
//! sweeps it after a kill), synced, then renamed over the destination.
//! Readers see the old content or the new one, never a half-written one.
//!
//! - [`write_atomic`]: a file from bytes in memory.
//! - [`AtomicFile`]: a file written as a stream (downloads, archives, layer
//!   blobs whose name is known only once their digest is).
//! - [`publish_copy`]: a hardlink (or copy) of a file that already exists.
//! - [`AtomicDir`]: a directory filled in place, then swapped in.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

/// Name start of [`write_atomic`]'s temp files (see temporaries.rs).
pub const TEMP_PREFIX: &str = ".minibuild-";

/// Write `data` to `path` atomically (see the module docs); a failure leaves
/// no temp file behind.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), WriteError> {
    let dir = parent_dir(path);
    let mut tmp = AtomicFile::create_in(dir, TEMP_PREFIX, umask_file_mode()).map_err(|source| {
        WriteError::Temp {
            dir: dir.to_path_buf(),
            source,
        }
    })?;
    let at = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    tmp.write_all(data).map_err(at)?;
    tmp.persist(path).map_err(|source| WriteError::Rename {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Why [`write_atomic`] failed; nothing is left at the temporary name.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create a temporary file in {}", dir.display())]
    Temp {
        dir: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename into {}", path.display())]
    Rename {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A file being written under a temporary name in a directory; dropped
/// without [`persist`](Self::persist), it is removed.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: NamedTempFile,
}

impl AtomicFile {
    /// A new temp file in `dir` named `<prefix><owner>-XXXXXX`, mode `perm`
    /// before the umask.
    pub fn create_in(dir: &Path, prefix: &str, perm: fs::Permissions) -> io::Result<AtomicFile> {
        let tmp = crate::temporaries::file_in(dir, prefix, perm)?;
        Ok(AtomicFile { tmp })
    }

    /// The temporary name, for messages.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Flush, sync, and rename to `dest`, which must be in the same
    /// directory (a rename does not cross filesystems).
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        self.tmp.flush()?;
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(dest).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Publish `src` at `dest` atomically as a hardlink, or a copy where a link
/// cannot be made (another filesystem); the temporary is named like
/// [`AtomicFile`]'s.
pub fn publish_copy(src: &Path, dest: &Path, prefix: &str) -> io::Result<()> {
    let dir = parent_dir(dest);
    // The registered temp file reserves a fresh name; the link takes its place.
    let tmp = crate::temporaries::file_in(dir, prefix, umask_file_mode())?.into_temp_path();
    fs::remove_file(&tmp)?;
    if fs::hard_link(src, &tmp).is_err() {
        fs::copy(src, &tmp)?;
        File::open(&tmp)?.sync_all()?;
    }
    // `tmp` (a TempPath) removes the name on an early return; persisted, not.
    tmp.persist(dest).map_err(|e| e.error)
}

/// A directory filled under a temporary name beside its destination, then
/// swapped in by [`persist`](Self::persist); dropped unpersisted, it is removed.
#[derive(Debug)]
pub struct AtomicDir {
    tmp: TempDir,
}

/// Which step of [`AtomicDir::persist`] failed, on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {}", path.display())]
pub struct ReplaceError {
    pub step: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl AtomicDir {
    /// A new temp directory in `parent` named `<prefix><owner>-XXXXXX`,
    /// mode `perm` before the umask.
    pub fn create_in(parent: &Path, prefix: &str, perm: fs::Permissions) -> io::Result<AtomicDir> {
        let tmp = crate::temporaries::dir_in(parent, prefix, perm)?;
        Ok(AtomicDir { tmp })
    }

    /// Where to fill it.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Move the directory to `dest` (in the same parent), replacing what is
    /// there: the caller has checked that it may. Where the filesystem can,
    /// the two swap in one step (a kill between two renames would leave
    /// nothing at `dest`); otherwise the old one moves aside under
    /// `aside_prefix` first. The old one is removed last, read-only
    /// directories included. Hold [`crate::temporaries::commit_section`]
    /// around it when it publishes one of a set of outputs.
    pub fn persist(self, dest: &Path, aside_prefix: &str) -> Result<(), ReplaceError> {
        let err = |step, path: &Path| {
            let path = path.to_path_buf();
            move |source| ReplaceError { step, path, source }
        };
        let old = match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(err("inspect", dest)(e)),
            Ok(meta) => {
                if meta.is_dir() && exchange(self.tmp.path(), dest).is_ok() {
                    // The temporary name now holds the old directory.
                    let old = self.tmp.keep();
                    return remove_tree(&old).map_err(err("remove the old", &old));
                }
                let aside = crate::temporaries::dir_in(
                    parent_dir(dest),
                    aside_prefix,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )
                .map_err(err("create a temp name beside", dest))?
                .keep();
                fs::remove_dir(&aside).map_err(err("remove", &aside))?;
                fs::rename(dest, &aside).map_err(err("move aside", dest))?;
                Some((aside, meta.is_dir()))
            }
        };
        let staged = self.tmp.keep();
        if let Err(e) = fs::rename(&staged, dest) {
            if let Some((aside, _)) = &old {
                let _ = fs::rename(aside, dest);
            }
            let _ = remove_tree(&staged);
            return Err(err("move the new directory to", dest)(e));
        }
        match old {
            Some((aside, true)) => remove_tree(&aside),
            Some((aside, false)) => fs::remove_file(&aside),
            None => Ok(()),
        }
        .map_err(err("remove the old", dest))
    }
}

/// Swap `a` and `b` atomically (Linux `renameat2(RENAME_EXCHANGE)`; fails
/// on filesystems without it, and the caller falls back to two renames).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths, both relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `remove_dir_all`, after making directories writable (a 0555 directory
/// of an image's tree would otherwise stop it). Symlinks are removed, never
/// followed.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700))?;
            remove_tree(&entry.path())?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    fs::remove_dir_all(dir)
}

/// Mode for new output files: `0666` minus the umask (applied by open(2)),
/// as any other tool would create them; tempfile's default is a private 0600.
pub fn umask_file_mode() -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(0o666)
}

/// Mode for new output directories: `0777` minus the umask.
pub fn umask_dir_mode() -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(0o777)
}

/// The directory a relative or absolute path lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn outputs_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
    }

    fn umask() -> u32 {
        // The umask is only readable by setting it; read it from /proc instead.
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Umask:"))
                    .map(|l| l[6..].trim().to_string())
            })
            .and_then(|u| u32::from_str_radix(&u, 8).ok())
            .unwrap_or(0o022)
    }

    #[test]
    fn an_unpersisted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = AtomicFile::create_in(dir.path(), TEMP_PREFIX, umask_file_mode()).unwrap();
        f.write_all(b"half").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn publish_copy_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        std::fs::write(&src, "new").unwrap();
        std::fs::write(&dest, "old").unwrap();
        publish_copy(&src, &dest, TEMP_PREFIX).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    /// A directory with `name` in it and a read-only subdirectory (which a
    /// plain remove_dir_all could not empty).
    fn filled(dir: &AtomicDir, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        let sub = dir.path().join("ro");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join(name), name).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
    }

    #[test]
    fn a_directory_replaces_a_directory_a_file_or_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let dest = parent.path().join("out");
        let make = |name: &str| {
            let d = AtomicDir::create_in(parent.path(), TEMP_PREFIX, umask_dir_mode()).unwrap();
            filled(&d, name);
            d
        };
        make("one").persist(&dest, TEMP_PREFIX).unwrap();
        assert!(dest.join("ro/one").is_file());
        make("two").persist(&dest, TEMP_PREFIX).unwrap();
        assert!(dest.join("ro/two").is_file() && !dest.join("ro/one").exists());
        std::fs::set_permissions(dest.join("ro"), umask_dir_mode()).unwrap();
        std::fs::remove_dir_all(&dest).unwrap();
        std::fs::write(&dest, "a file").unwrap();
        make("three").persist(&dest, TEMP_PREFIX).unwrap();
        assert!(dest.join("ro/three").is_file());
        let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temporaries left: {left:?}");
        std::fs::set_permissions(dest.join("ro"), umask_dir_mode()).unwrap();
    }

    #[test]
    fn an_unpersisted_directory_leaves_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let d = AtomicDir::create_in(parent.path(), TEMP_PREFIX, umask_dir_mode()).unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        drop(d);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn failure_names_the_path() {
        let e = write_atomic(Path::new("/nonexistent-dir/x/out"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x"), "{e:#}");
    }
}
