//! Filesystem helpers for atomic outputs: write beside the destination, then rename.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// Name start of [`write_atomic`]'s temp files (see temporaries.rs).
pub const TEMP_PREFIX: &str = ".minibuild-";

/// Write `data` to `path` atomically: a temp file in the same directory,
/// fsynced, then renamed over `path`. Readers see the old file or the new one,
/// never a half-written one, and a failure leaves no temp file behind.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = crate::temporaries::file_in(dir, TEMP_PREFIX, umask_file_mode())
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    Ok(())
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
    fn failure_names_the_path() {
        let e = write_atomic(Path::new("/nonexistent-dir/x/out"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x"), "{e:#}");
    }
}
