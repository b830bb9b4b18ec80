//! Filesystem helpers for atomic outputs: write beside the destination, then rename.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// Write `data` to `path` atomically: a temp file in the same directory,
/// fsynced, then renamed over `path`. Readers see the old file or the new one,
/// never a half-written one, and a failure leaves no temp file behind.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".minibuild-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    Ok(())
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
    fn failure_names_the_path() {
        let e = write_atomic(Path::new("/nonexistent-dir/x/out"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x"), "{e:#}");
    }
}
