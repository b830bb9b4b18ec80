//! The staging directory: file contents as numbered blobs.
//!
//! A blob's name is a counter (`0000000042`), never anything derived from
//! the payload, so no package path ever becomes a host path. Blobs are
//! created with `create_new` and mode 0644 whatever the image mode is: the
//! image's mode, owner and special bits live in the [`Tree`](super::Tree)
//! and go straight into the tar headers, so a non-root user can build.
//! Each blob's sha256 is computed while it is written, for conflict checks.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Where blobs go, plus the digests of the blobs written so far.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    next_blob: u64,
    next_link: u64,
    /// Lookup only (never iterated), so HashMap order cannot leak into output.
    digests: HashMap<PathBuf, [u8; 32]>,
}

/// A blob written to the staging directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Staging {
    /// Use `dir` (created if missing) for blobs.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        // Absolute blob paths let the layer writer open them from any cwd.
        let dir = fs::canonicalize(&dir)?;
        Ok(Staging {
            dir,
            next_blob: 0,
            next_link: 0,
            digests: HashMap::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start a new blob; call [`BlobWriter::finish`] and then [`Staging::record`].
    pub fn create_blob(&mut self) -> io::Result<BlobWriter> {
        let path = self.dir.join(format!("{:010}", self.next_blob));
        self.next_blob += 1;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create blob {} (is the staging directory reused? use an empty one): {e}",
                        path.display()
                    ),
                )
            })?;
        Ok(BlobWriter {
            path,
            out: BufWriter::with_capacity(128 * 1024, file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Remember a finished blob's digest.
    pub fn record(&mut self, blob: &Blob) {
        self.digests.insert(blob.path.clone(), blob.sha256);
    }

    /// The sha256 of a blob written through this staging area.
    pub fn digest(&self, blob: &Path) -> Option<&[u8; 32]> {
        self.digests.get(blob)
    }

    /// A fresh hardlink group id, unique within the tree.
    pub fn new_link_id(&mut self) -> u64 {
        self.next_link += 1;
        self.next_link
    }
}

/// Streams content into a blob file, hashing as it goes.
pub struct BlobWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    pub fn finish(mut self) -> io::Result<Blob> {
        self.out.flush()?;
        Ok(Blob {
            path: self.path,
            size: self.size,
            sha256: self.hasher.finalize().into(),
        })
    }
}
