//! The on-disk cache: one root, versioned buckets beneath it.
//!
//! ```text
//! <root>/v1/repodata/<hex>-primary.xml.<ext>   primary metadata, keyed by its repomd checksum
//! <root>/v1/repomd/<key>.xml                   last repomd.xml per base URL (for --offline)
//! <root>/v1/rpms/<hex>.rpm                     packages, keyed by their checksum
//! <root>/v1/layers/<codec>-<diff_id hex>.*      compressed layers, keyed by what they compress
//! ```
//!
//! Entries are content-addressed where possible, so concurrent runs and
//! interrupted downloads cannot leave a wrong file under a right name: every
//! write goes to a temp file in the bucket and is renamed into place, and every
//! read re-verifies the checksum. Changing an entry's format means a new `vN`
//! bucket, never rewriting an old one.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::fsutil::AtomicFile;
use crate::http::{Bound, Client, HttpError, Retryable};

/// The layout version of everything below the root.
const VERSION: &str = "v1";

/// Name start of a download in progress (owner-tagged, see temporaries.rs,
/// so a killed run's partial file is swept by the next build).
pub const PARTIAL_PREFIX: &str = ".partial-";

/// Cache entries stay private to their user, as tempfile made them.
pub fn private_file_mode() -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(0o600)
}

/// A cache bucket (a directory of one kind of entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Compressed primary metadata as downloaded.
    Repodata,
    /// The latest repomd.xml of each repository.
    Repomd,
    /// Downloaded .rpm files.
    Rpms,
    /// Compressed layer blobs (the image module's layer cache).
    Layers,
}

impl Bucket {
    pub const ALL: [Bucket; 4] = [
        Bucket::Repodata,
        Bucket::Repomd,
        Bucket::Rpms,
        Bucket::Layers,
    ];

    pub fn dir_name(self) -> &'static str {
        match self {
            Bucket::Repodata => "repodata",
            Bucket::Repomd => "repomd",
            Bucket::Rpms => "rpms",
            Bucket::Layers => "layers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/minibuild`, else `~/.cache/minibuild`; `None` when
    /// neither variable gives an absolute path.
    pub fn default_root() -> Option<PathBuf> {
        default_root_from(
            std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bucket's directory (not created).
    pub fn bucket(&self, bucket: Bucket) -> PathBuf {
        self.root.join(VERSION).join(bucket.dir_name())
    }

    /// Published base images pulled from registries: manifests, configs and
    /// layer blobs by digest (`sha256/<hex>`), and the digest each tag
    /// pointed to when last asked (`tags/`, for `--offline`).
    pub fn base_images(&self) -> PathBuf {
        self.root.join(VERSION).join("base-images")
    }

    /// Files and bytes in each bucket (missing buckets count as empty).
    pub fn usage(&self) -> io::Result<Vec<(Bucket, Usage)>> {
        Bucket::ALL
            .iter()
            .map(|&b| Ok((b, Usage::of_dir(&self.bucket(b))?)))
            .collect()
    }

    /// Remove these buckets (every entry in them); what was freed. Entries
    /// are only ever renamed into place, so a build running at the same time
    /// loses at worst its cache hits, never a half-read file's integrity: it
    /// re-verifies what it reads.
    pub fn clean(&self, buckets: &[Bucket]) -> io::Result<Usage> {
        let mut freed = Usage::default();
        for &b in buckets {
            let dir = self.bucket(b);
            let u = Usage::of_dir(&dir)?;
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            freed.files += u.files;
            freed.bytes += u.bytes;
        }
        Ok(freed)
    }

    /// The bucket's directory, created if missing.
    pub fn ensure_bucket(&self, bucket: Bucket) -> std::io::Result<PathBuf> {
        let dir = self.bucket(bucket);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// How much a directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
}

impl Usage {
    /// Regular files below `dir` (symlinks not followed); zero if `dir` is missing.
    fn of_dir(dir: &Path) -> io::Result<Usage> {
        let mut u = Usage::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    stack.push(entry.path());
                } else if meta.is_file() {
                    u.files += 1;
                    u.bytes += meta.len();
                }
            }
        }
        Ok(u)
    }
}

/// What [`verify_entry`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Valid,
    /// It was there but did not hash to the expected digest, and is gone.
    Dropped,
}

impl Entry {
    pub fn is_valid(self) -> bool {
        self == Entry::Valid
    }
}

/// Whether `path` exists and hashes to `expected`. A file that does not
/// match (truncated, corrupted, left by a crash) is deleted so the caller
/// fetches it again.
pub fn verify_entry(path: &Path, expected: &Digest) -> io::Result<Entry> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Entry::Missing),
        Err(e) => return Err(e),
    };
    let actual = Digest::of_reader(expected.algo(), io::BufReader::with_capacity(1 << 16, file))?;
    if &actual == expected {
        return Ok(Entry::Valid);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Entry::Dropped),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Entry::Dropped),
        Err(e) => Err(e),
    }
}

/// Why a cache entry could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{url} has {actual} ({actual_size} bytes) but the metadata says {expected}{}",
        expected_size.map(|n| format!(" ({n} bytes)")).unwrap_or_default())]
    Mismatch {
        url: String,
        expected: Digest,
        actual: Digest,
        expected_size: Option<u64>,
        actual_size: u64,
    },
    #[error("cannot write cache entry {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Retryable for EntryError {
    fn is_transient(&self) -> bool {
        matches!(self, EntryError::Http(e) if e.is_transient())
    }
    fn record_attempts(&mut self, attempts: u32) {
        if let EntryError::Http(e) = self {
            e.record_attempts(attempts);
        }
    }
}

/// What a download reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// This many more bytes arrived.
    Bytes(u64),
    /// A transient failure threw away this many bytes; the download restarts.
    Restart(u64),
}

/// The most a download may bring when the metadata declares no size (a
/// lock or primary.xml with `size package="0"`): larger than any real RPM or
/// metadata file, small enough that an endless body stops.
pub const UNDECLARED_MAX: u64 = 4 << 30;

/// Room left free on the cache filesystem besides the download itself.
const FREE_MARGIN: u64 = 64 << 20;

/// Download `url` to `dest`, hashing on the way, and move it into place only
/// if it matches `expected` (and `expected_size`, when known). The body is
/// cut off past `expected_size` (else past [`UNDECLARED_MAX`]), and the
/// cache filesystem must have room for it first. The temp file lives beside
/// `dest`, so the final rename is atomic; on any failure it is removed.
/// Transient network failures restart the download.
pub fn download_verified(
    client: &Client,
    url: &str,
    dest: &Path,
    expected: &Digest,
    expected_size: Option<u64>,
    on_transfer: &mut dyn FnMut(Transfer),
) -> Result<(), EntryError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let io_err = |source| EntryError::Io {
        path: dest.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let bound = match expected_size {
        Some(n) => Bound::new(n, "the checksummed metadata declares for it"),
        None => Bound::new(UNDECLARED_MAX, "allowed when the metadata declares no size"),
    };
    if let Some(need) = expected_size {
        ensure_free_space(dir, need, url).map_err(|source| EntryError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut received = 0u64;
    let tmp = client.retrying(|| {
        if received > 0 {
            on_transfer(Transfer::Restart(received));
            received = 0;
        }
        let tmp =
            AtomicFile::create_in(dir, PARTIAL_PREFIX, private_file_mode()).map_err(io_err)?;
        let mut body = client.open_once(url, bound)?;
        let mut hasher = Hasher::new(expected.algo(), BufWriter::with_capacity(1 << 16, tmp));
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EntryError::Http(HttpError::read(url, e))),
            };
            hasher.write_all(&chunk[..n]).map_err(io_err)?;
            received += n as u64;
            on_transfer(Transfer::Bytes(n as u64));
        }
        let (actual, actual_size, writer) = hasher.finish();
        let size_ok = expected_size.is_none_or(|n| n == actual_size);
        if &actual != expected || !size_ok {
            return Err(EntryError::Mismatch {
                url: url.to_string(),
                expected: expected.clone(),
                actual,
                expected_size,
                actual_size,
            });
        }
        let tmp = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
        Ok(tmp)
    })?;
    tmp.persist(dest).map_err(io_err)
}

/// Fail unless the filesystem of `dir` has `need` bytes plus a margin free,
/// saying how much is needed and where.
fn ensure_free_space(dir: &Path, need: u64, url: &str) -> io::Result<()> {
    let free = free_bytes(dir)?;
    let want = need.saturating_add(FREE_MARGIN);
    if free < want {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{url} is {need} bytes, but only {free} bytes are free on the cache filesystem ({} needed with a {} MiB margin); free space or pick another --cache-dir",
                want,
                FREE_MARGIN >> 20
            ),
        ));
    }
    Ok(())
}

/// Bytes available to an unprivileged user on the filesystem of `dir`.
pub(crate) fn free_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and outlives the call; `st` is a
    // valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn default_root_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(x) = xdg.filter(|p| p.is_absolute()) {
        return Some(x.join("minibuild"));
    }
    home.filter(|p| p.is_absolute())
        .map(|h| h.join(".cache").join("minibuild"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_clean_by_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let rpms = cache.ensure_bucket(Bucket::Rpms).unwrap();
        std::fs::write(rpms.join("a.rpm"), b"12345").unwrap();
        std::fs::write(rpms.join("b.rpm"), b"123").unwrap();
        let layers = cache.ensure_bucket(Bucket::Layers).unwrap();
        std::fs::write(layers.join("x.blob"), b"1234567").unwrap();

        let usage: std::collections::BTreeMap<&str, Usage> = cache
            .usage()
            .unwrap()
            .into_iter()
            .map(|(b, u)| (b.dir_name(), u))
            .collect();
        assert_eq!(usage["rpms"], Usage { files: 2, bytes: 8 });
        assert_eq!(usage["layers"], Usage { files: 1, bytes: 7 });
        assert_eq!(usage["repodata"], Usage::default());

        let freed = cache.clean(&[Bucket::Layers, Bucket::Repodata]).unwrap();
        assert_eq!(freed, Usage { files: 1, bytes: 7 });
        assert!(!layers.exists());
        assert!(rpms.join("a.rpm").is_file(), "other buckets are kept");
    }

    #[test]
    fn default_root_prefers_absolute_xdg() {
        let x = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            default_root_from(x("/xdg"), x("/home/u")),
            x("/xdg/minibuild")
        );
        assert_eq!(
            default_root_from(x("rel"), x("/home/u")),
            x("/home/u/.cache/minibuild")
        );
        assert_eq!(
            default_root_from(None, x("/home/u")),
            x("/home/u/.cache/minibuild")
        );
        assert_eq!(default_root_from(None, None), None);
    }

    #[test]
    fn buckets_are_versioned() {
        let c = Cache::new("/c");
        assert_eq!(c.bucket(Bucket::Rpms), PathBuf::from("/c/v1/rpms"));
        assert_eq!(c.bucket(Bucket::Repodata), PathBuf::from("/c/v1/repodata"));
    }
}
