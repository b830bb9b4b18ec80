//! The staging area: every file's content appended to one pack file.
//!
//! A staging directory holds a single file, `pack`. Each content written
//! through [`Staging::create_blob`] is appended to it and addressed by a
//! [`BlobRef`] (pack, offset, length). Nothing derived from the payload
//! ever names a host file — not even a counter per file any more — so no
//! package path can become a host path. The pack is created with
//! `create_new` and mode 0644 whatever the image modes are: the image's
//! mode, owner and special bits live in the [`Tree`](super::Tree) and go
//! straight into the tar headers, so a non-root user can build.
//! Each blob's sha256 is computed while it is written, for conflict checks.
//!
//! Why one file: creating (and later deleting) one host file per image
//! file made ext4's inode allocator the largest CPU cost of a warm build.
//! Appends and reads use positioned I/O (`pwrite`/`pread`) on the one open
//! descriptor, so readers on several threads never share a file position.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::report::human_bytes;

/// The pack file's name inside a staging directory.
pub const PACK_NAME: &str = "pack";

/// An open file holding blobs; compared and hashed by its path.
struct Pack {
    path: PathBuf,
    file: File,
}

impl PartialEq for Pack {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for Pack {}

impl std::hash::Hash for Pack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

/// A file's content: `len` bytes at `offset` in a pack (or a whole
/// standalone file). Cheap to clone; reads never move a shared position.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    pack: Arc<Pack>,
    offset: u64,
    len: u64,
}

impl fmt::Debug for BlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobRef({self})")
    }
}

impl fmt::Display for BlobRef {
    /// `path[offset+len]`, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}+{}]",
            self.pack.path.display(),
            self.offset,
            self.len
        )
    }
}

impl BlobRef {
    /// The whole of an existing file (its length now) as a blob: for
    /// trees mirroring host files and for tests.
    pub fn whole_file(path: impl Into<PathBuf>) -> io::Result<BlobRef> {
        let path = path.into();
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        Ok(BlobRef {
            pack: Arc::new(Pack { path, file }),
            offset: 0,
            len,
        })
    }

    /// The file holding the blob (for error messages).
    pub fn path(&self) -> &Path {
        &self.pack.path
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader over just this blob's bytes. It ends early (short read) if
    /// the file was truncated behind our back; the layer writer checks sizes.
    pub fn open(&self) -> BlobReader {
        BlobReader {
            pack: Arc::clone(&self.pack),
            start: self.offset,
            len: self.len,
            pos: 0,
        }
    }

    /// The whole content in memory: only for files known to be small
    /// (account databases, configs, ELF headers), never the payload at large.
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len.min(1 << 24) as usize);
        self.open().read_to_end(&mut out)?;
        Ok(out)
    }

    /// [`BlobRef::read_to_vec`] as UTF-8.
    pub fn read_to_string(&self) -> io::Result<String> {
        String::from_utf8(self.read_to_vec()?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Reads one blob with positioned reads; [`Seek`] only moves its own cursor.
pub struct BlobReader {
    pack: Arc<Pack>,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self
            .pack
            .file
            .read_at(&mut buf[..want], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of a blob",
            )
        })?;
        self.pos = new;
        Ok(new)
    }
}

/// The pack blobs go into, plus the digests of the blobs written so far.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    pack: Arc<Pack>,
    /// Where the next blob starts: the end of the last finished one.
    end: u64,
    next_link: u64,
    /// Lookup only (never iterated), so HashMap order cannot leak into output.
    digests: HashMap<BlobRef, [u8; 32]>,
}

impl fmt::Debug for Pack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// A blob written to the staging pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub blob: BlobRef,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Staging {
    /// Use `dir` (created if missing, in an existing parent, and holding no
    /// pack yet) for blobs.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        // Not create_dir_all: a staging directory an interrupt has just
        // removed must not come back with its parents.
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        // An absolute pack path keeps error messages useful from any cwd.
        let dir = fs::canonicalize(&dir)?;
        let path = dir.join(PACK_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create the staging pack {} (is the staging directory reused? use an empty one): {e}",
                        path.display()
                    ),
                )
            })?;
        Ok(Staging {
            dir,
            pack: Arc::new(Pack { path, file }),
            end: 0,
            next_link: 0,
            digests: HashMap::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of content kept in the pack so far.
    pub fn pack_len(&self) -> u64 {
        self.end
    }

    /// Start a new blob at the pack's end; call [`BlobWriter::finish`] and
    /// then [`Staging::record`]. A writer dropped unfinished leaves nothing:
    /// the next blob starts where it did.
    pub fn create_blob(&mut self) -> io::Result<BlobWriter<'_>> {
        let start = self.end;
        Ok(BlobWriter {
            out: BufWriter::with_capacity(
                128 * 1024,
                Appender {
                    file: &self.pack.file,
                    pos: start,
                },
            ),
            end: &mut self.end,
            pack: &self.pack,
            start,
            hasher: Sha256::new(),
            size: 0,
            failed: None,
        })
    }

    /// Remember a finished blob's digest.
    pub fn record(&mut self, blob: &Blob) {
        self.digests.insert(blob.blob.clone(), blob.sha256);
    }

    /// The sha256 of a blob written through this staging area.
    pub fn digest(&self, blob: &BlobRef) -> Option<&[u8; 32]> {
        self.digests.get(blob)
    }

    /// Give back a blob nothing refers to (an identical copy was already
    /// installed). Its bytes are reused only if it is the pack's last blob,
    /// the common case (a package's last file); otherwise they stay as
    /// dead space. The caller must hold no other handle to it.
    pub fn discard(&mut self, blob: &BlobRef) {
        // Empty blobs reclaim nothing, and equal any other empty blob at the
        // same offset, whose digest must stay.
        if Arc::ptr_eq(&blob.pack, &self.pack) && blob.len > 0 && blob.offset + blob.len == self.end
        {
            self.digests.remove(blob);
            self.end = blob.offset;
        }
    }

    /// A fresh hardlink group id, unique within the tree.
    pub fn new_link_id(&mut self) -> u64 {
        self.next_link += 1;
        self.next_link
    }
}

/// Positioned writes at a moving offset (no `lseek`, no `O_APPEND`).
struct Appender<'a> {
    file: &'a File,
    pos: u64,
}

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams content onto the end of the pack, hashing as it goes.
pub struct BlobWriter<'a> {
    out: BufWriter<Appender<'a>>,
    end: &'a mut u64,
    pack: &'a Arc<Pack>,
    start: u64,
    hasher: Sha256,
    size: u64,
    /// The first failed write to the pack, kept for [`Self::write_error`].
    failed: Option<io::Error>,
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.out.write(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                // io::Error is not Clone: keep an equal copy, pass `e` on.
                let copy = e.raw_os_error().map_or_else(
                    || io::Error::new(e.kind(), e.to_string()),
                    io::Error::from_raw_os_error,
                );
                self.failed.get_or_insert(copy);
                return Err(e);
            }
        };
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter<'_> {
    /// The error of a failed write to the pack, if one failed. A copy that
    /// both reads a payload and writes here fails with either; this tells
    /// a full or read-only `$TMPDIR` from a damaged package.
    pub fn write_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    pub fn finish(mut self) -> io::Result<Blob> {
        self.out.flush()?;
        *self.end = self.start + self.size;
        Ok(Blob {
            blob: BlobRef {
                pack: Arc::clone(self.pack),
                offset: self.start,
                len: self.size,
            },
            size: self.size,
            sha256: self.hasher.finalize().into(),
        })
    }
}

/// Room kept free beside the unpacked contents: headers' sizes round
/// down, and the filesystem is shared with whatever else uses `$TMPDIR`.
pub const ROOM_MARGIN: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("not enough free space to unpack in {dir}: {} needed ({} installed by the plan + {} MiB margin), {} free ({need} > {free} bytes)\n  hint: set TMPDIR to a directory on a filesystem with more room, or free space there", human_bytes(*need), human_bytes(*installed), ROOM_MARGIN >> 20, human_bytes(*free))]
    Short {
        dir: PathBuf,
        installed: u64,
        need: u64,
        free: u64,
    },
    #[error("cannot read the free space of {dir}")]
    Statvfs {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Fail before anything is written unless the filesystem of `dir` has room
/// for `installed` bytes of package contents (the plan's installed sizes)
/// plus [`ROOM_MARGIN`].
pub fn ensure_room(dir: &Path, installed: u64) -> Result<(), RoomError> {
    let free = crate::cache::free_bytes(dir).map_err(|source| RoomError::Statvfs {
        dir: dir.to_path_buf(),
        source,
    })?;
    let need = installed.saturating_add(ROOM_MARGIN);
    if free < need {
        return Err(RoomError::Short {
            dir: dir.to_path_buf(),
            installed,
            need,
            free,
        });
    }
    Ok(())
}

/// What to do when the staging directory cannot be written.
pub fn write_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => "free space on that filesystem, or set TMPDIR to a directory on a larger one (staging needs about the image's installed size)",
        Some(libc::EROFS | libc::EACCES | libc::EPERM) => "set TMPDIR to a directory this user can write",
        _ => "check that directory's filesystem, or set TMPDIR to another directory",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_room_compares_the_plan_with_free_space() {
        let dir = tempfile::tempdir().unwrap();
        ensure_room(dir.path(), 0).unwrap();
        let err = ensure_room(dir.path(), u64::MAX / 2).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("set TMPDIR"), "{msg}");
        assert!(matches!(err, RoomError::Short { installed, .. } if installed == u64::MAX / 2));
        let missing = dir.path().join("missing");
        assert!(matches!(
            ensure_room(&missing, 0),
            Err(RoomError::Statvfs { .. })
        ));
    }

    fn put(staging: &mut Staging, data: &[u8]) -> Blob {
        let mut w = staging.create_blob().unwrap();
        w.write_all(data).unwrap();
        let blob = w.finish().unwrap();
        staging.record(&blob);
        blob
    }

    #[test]
    fn blobs_share_one_file_and_read_back_their_own_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(tmp.path()).unwrap();
        let a = put(&mut staging, b"alpha");
        let empty = put(&mut staging, b"");
        let b = put(&mut staging, b"bravo!");
        assert_eq!(
            (a.blob.offset(), empty.blob.offset(), b.blob.offset()),
            (0, 5, 5)
        );
        assert_eq!(a.blob.read_to_vec().unwrap(), b"alpha");
        assert_eq!(empty.blob.read_to_vec().unwrap(), b"");
        assert_eq!(b.blob.read_to_string().unwrap(), "bravo!");
        assert_eq!(staging.pack_len(), 11);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [PACK_NAME]);
        assert_eq!(
            staging.digest(&b.blob),
            Some(&<[u8; 32]>::from(Sha256::digest(b"bravo!")))
        );
        assert_ne!(a.blob, b.blob);
        assert_eq!(a.blob, a.blob.clone());
    }

    #[test]
    fn reader_seeks_within_its_blob_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(tmp.path()).unwrap();
        put(&mut staging, b"0123");
        let b = put(&mut staging, b"456789");
        let mut r = b.blob.open();
        let mut buf = [0u8; 3];
        r.seek(SeekFrom::Start(2)).unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"678");
        assert_eq!(r.seek(SeekFrom::End(-1)).unwrap(), 5);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"9", "must not read past the blob into the pack");
        assert!(r.seek(SeekFrom::Current(-7)).is_err());
    }

    #[test]
    fn unfinished_and_discarded_tails_are_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(tmp.path()).unwrap();
        let a = put(&mut staging, b"keep");
        {
            let mut w = staging.create_blob().unwrap();
            w.write_all(b"abandoned").unwrap();
            w.flush().unwrap();
        }
        assert_eq!(staging.pack_len(), 4);
        let dup = put(&mut staging, b"dup");
        staging.discard(&dup.blob);
        assert_eq!(staging.pack_len(), 4);
        assert_eq!(staging.digest(&dup.blob), None);
        // Not the tail: left in place.
        let b = put(&mut staging, b"b");
        staging.discard(&a.blob);
        assert_eq!(staging.pack_len(), 5);
        assert_eq!(a.blob.read_to_vec().unwrap(), b"keep");
        assert_eq!(b.blob.read_to_vec().unwrap(), b"b");
    }

    #[test]
    fn whole_file_and_reused_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"standalone").unwrap();
        let blob = BlobRef::whole_file(&path).unwrap();
        assert_eq!((blob.offset(), blob.len()), (0, 10));
        assert_eq!(blob.read_to_vec().unwrap(), b"standalone");
        assert!(BlobRef::whole_file(tmp.path().join("missing")).is_err());
        Staging::new(tmp.path()).unwrap();
        let err = Staging::new(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("reused"), "{err}");
    }
}
