//! Cache of parsed primary metadata, so a warm run does not reparse XML.
//!
//! Parsing a Fedora primary (≈140 MB of XML, 75,000 packages) costs about
//! two seconds; reading back the same `Vec<Package>` from a compact binary
//! copy costs a small fraction of that. The copy lives beside the compressed
//! primary in the repodata bucket (`<cache>/v1/repodata/<sha>-primary.parsed`),
//! keyed by the checksum repomd.xml gives the primary file: a new primary
//! means a new key, so entries never go stale, they only go unused. It is
//! only ever written from a primary whose checksum was verified, so a warm
//! load reads it without re-hashing the primary.
//!
//! # Format
//!
//! ```text
//! MAGIC
//! u64 package count, u64 chunk count, u64 index length   (little-endian)
//! per chunk: u64 offset, u64 length, u64 package count
//! the capability index (CapIndex::to_bytes)
//! the chunks: a string table and packages each (see `codec.rs`)
//! ```
//!
//! The packages are cut into
//! chunks of [`CHUNK`] so that a load holds one chunk of encoded bytes per
//! thread rather than the whole file (peak memory), and so that the chunks
//! can be decoded on several threads (75,000 packages are still about a
//! million allocations, with dependency names and versions shared). The
//! capability index is stored too, so the resolver does not rebuild it (see
//! `capindex.rs`). [`MAGIC`]
//! carries a format number and the crate version, because the format is not
//! self-describing: any change to [`Package`] must not be read with the old
//! layout. Writes are atomic (temp file + rename); an entry that fails to
//! decode is treated as missing and overwritten by the caller.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{codec, CapIndex, Package};

/// Header of every entry: format number and crate version.
const MAGIC: &[u8] = concat!(
    "minibuild-parsed-primary/4/",
    env!("CARGO_PKG_VERSION"),
    "\n"
)
.as_bytes();

/// Packages per chunk: about 600 KB of encoded Fedora metadata.
const CHUNK: usize = 1000;

/// At most this many decoding threads: past it the memory bandwidth, not
/// the CPU, is the limit.
const MAX_THREADS: usize = 4;

/// One chunk's place in the file.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: u64,
    len: u64,
    count: u64,
}

/// Where the parsed copy of the primary cached at `primary` lives.
pub fn path_for(primary: &Path) -> PathBuf {
    let mut name = primary
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    // `<sha>-primary.xml.zst` → `<sha>-primary.parsed`
    if let Some(i) = name.find("-primary") {
        name.truncate(i + "-primary".len());
    }
    name.push_str(".parsed");
    primary.with_file_name(name)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The cached packages, with `repo` set to `repo`, and their capability
/// index; `None` when there is no entry or it cannot be decoded (stale
/// format, truncated, corrupt).
pub fn read(path: &Path, repo: usize) -> Option<(Vec<Package>, CapIndex)> {
    let file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut head = vec![0; MAGIC.len() + 24];
    file.read_exact_at(&mut head, 0).ok()?;
    let fields = head.strip_prefix(MAGIC)?;
    let total = usize::try_from(u64_at(fields, 0)?).ok()?;
    let n_chunks = u64_at(fields, 8)?;
    let index_len = u64_at(fields, 16)?;
    // Sizes come from the file: check them against its length before
    // allocating anything by them.
    let table_len = n_chunks.checked_mul(24)?;
    let index_at = (head.len() as u64).checked_add(table_len)?;
    if index_at.checked_add(index_len)? > file_len {
        return None;
    }
    let mut table = vec![0; table_len as usize];
    file.read_exact_at(&mut table, head.len() as u64).ok()?;
    let chunks: Vec<Chunk> = table
        .chunks_exact(24)
        .map(|t| Chunk {
            offset: u64_at(t, 0).expect("24 bytes"),
            len: u64_at(t, 8).expect("24 bytes"),
            count: u64_at(t, 16).expect("24 bytes"),
        })
        .collect();
    let in_file = |c: &Chunk| {
        c.offset
            .checked_add(c.len)
            .is_some_and(|end| end <= file_len)
    };
    let counted: u64 = chunks.iter().map(|c| c.count).sum();
    if !chunks.iter().all(in_file) || counted != total as u64 {
        return None;
    }
    let mut index = vec![0; index_len as usize];
    file.read_exact_at(&mut index, index_at).ok()?;
    let caps = CapIndex::from_bytes(&index)?;
    drop(index);
    if caps.len() != total {
        return None;
    }
    let packages = decode_parallel(&file, &chunks, total, repo)?;
    Some((packages, caps))
}

/// Decode `chunks` on up to [`MAX_THREADS`] threads, each taking a
/// contiguous run and writing its packages straight into their final
/// places. (Decoding into one vector per thread and appending them made a
/// second copy of half the packages, 20 MB for a Fedora repo, to fault in
/// and copy.)
fn decode_parallel(
    file: &File,
    chunks: &[Chunk],
    total: usize,
    repo: usize,
) -> Option<Vec<Package>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(chunks.len().max(1));
    let per = chunks.len().div_ceil(threads).max(1);
    let mut slots: Vec<Option<Package>> = Vec::new();
    slots.resize_with(total, || None);
    // Cut the slots the way the chunks are cut (the counts sum to `total`,
    // checked by the caller).
    let mut jobs = Vec::with_capacity(threads);
    let mut free = slots.as_mut_slice();
    for run in chunks.chunks(per) {
        let count = run.iter().map(|c| c.count as usize).sum();
        let (mine, rest) = std::mem::take(&mut free).split_at_mut(count);
        jobs.push((run, mine));
        free = rest;
    }
    let ok = std::thread::scope(|s| {
        let mut jobs = jobs.into_iter();
        let first = jobs.next();
        let handles: Vec<_> = jobs
            .map(|(run, out)| s.spawn(move || decode_run(file, run, repo, out)))
            .collect();
        let mine = first.is_none_or(|(run, out)| decode_run(file, run, repo, out).is_some());
        // Join every thread, even after a failure.
        let theirs = handles
            .into_iter()
            .fold(true, |ok, h| ok & matches!(h.join(), Ok(Some(()))));
        mine && theirs
    });
    // Every slot is filled when every run succeeded; `collect` reuses the
    // allocation (`Option<Package>` is the size of `Package`).
    ok.then(|| slots.into_iter().collect())?
}

fn decode_run(
    file: &File,
    run: &[Chunk],
    repo: usize,
    mut out: &mut [Option<Package>],
) -> Option<()> {
    let mut buf = Vec::new();
    for c in run {
        buf.clear();
        buf.resize(usize::try_from(c.len).ok()?, 0);
        file.read_exact_at(&mut buf, c.offset).ok()?;
        let count = usize::try_from(c.count).ok()?;
        let (mine, rest) = std::mem::take(&mut out).split_at_mut(count);
        let mut slots = mine.iter_mut();
        codec::decode(&buf, count, repo, |p| {
            if let Some(slot) = slots.next() {
                *slot = Some(p);
            }
        })?;
        out = rest;
    }
    Some(())
}

/// Store `packages` and their capability index at `path` atomically.
pub fn write(path: &Path, packages: &[Package], caps: &CapIndex) -> std::io::Result<()> {
    let chunks: Vec<(Vec<u8>, usize)> = packages
        .chunks(CHUNK)
        .map(|c| (codec::encode(c), c.len()))
        .collect();
    let index = caps.to_bytes();
    let mut bytes = MAGIC.to_vec();
    for n in [packages.len(), chunks.len(), index.len()] {
        bytes.extend_from_slice(&(n as u64).to_le_bytes());
    }
    let mut offset = (bytes.len() + 24 * chunks.len() + index.len()) as u64;
    for (c, count) in &chunks {
        for n in [offset, c.len() as u64, *count as u64] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        offset += c.len() as u64;
    }
    bytes.extend_from_slice(&index);
    for (c, _) in &chunks {
        bytes.extend_from_slice(c);
    }
    super::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(n: usize) -> Vec<Package> {
        let one = |i: usize| {
            format!(
                r#"<package type="rpm"><name>bash{i}</name><arch>x86_64</arch><version epoch="1" ver="5.2" rel="3"/>
<checksum type="sha256" pkgid="YES">e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</checksum>
<location href="b.rpm"/><format><rpm:provides><rpm:entry name="/bin/sh"/><rpm:entry name="bash" flags="EQ" epoch="1" ver="5.2" rel="3"/></rpm:provides>
<rpm:requires><rpm:entry name="(a or b)"/></rpm:requires><file>/usr/bin/bash</file></format></package>"#
            )
        };
        let body: String = (0..n).map(one).collect();
        let xml = format!(
            r#"<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">{body}</metadata>"#
        );
        super::super::primary::parse(xml.as_bytes(), 0).unwrap()
    }

    #[test]
    fn round_trips_and_sets_the_repo_index() {
        let dir = tempfile::tempdir().unwrap();
        let primary = dir.path().join("abc-primary.xml.zst");
        let path = path_for(&primary);
        assert_eq!(path, dir.path().join("abc-primary.parsed"));
        assert_eq!(read(&path, 0), None);
        // Several chunks, the last one partial, so that several threads
        // decode and the runs are joined in order.
        let pkgs = packages(CHUNK * 3 + 7);
        let caps = CapIndex::build(&pkgs);
        write(&path, &pkgs, &caps).unwrap();
        let (back, back_caps) = read(&path, 3).unwrap();
        assert_eq!(back_caps, caps);
        assert_eq!(back.len(), pkgs.len());
        assert!(back.iter().all(|p| p.repo == 3));
        for (b, p) in back.iter().zip(&pkgs) {
            let mut want = p.clone();
            want.repo = 3;
            assert_eq!(b, &want);
        }
    }

    #[test]
    fn a_chunk_table_that_miscounts_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m-primary.parsed");
        let pkgs = packages(CHUNK * 2 + 5);
        write(&path, &pkgs, &CapIndex::build(&pkgs)).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // Move one package from the last chunk's count to the first's: the
        // total still matches, so each thread gets its slots, but the first
        // chunk no longer decodes to its count.
        let table = MAGIC.len() + 24;
        let count_at = |k: usize| table + 24 * k + 16;
        let bump = |bytes: &mut Vec<u8>, at: usize, by: i64| {
            let v = u64_at(bytes, at).unwrap() as i64 + by;
            bytes[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
        };
        bump(&mut bytes, count_at(0), 1);
        bump(&mut bytes, count_at(2), -1);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path, 0), None);
    }

    #[test]
    fn an_empty_repo_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e-primary.parsed");
        write(&path, &[], &CapIndex::build(&[])).unwrap();
        let (back, caps) = read(&path, 0).unwrap();
        assert!(back.is_empty() && caps.is_empty());
    }

    #[test]
    fn corrupt_or_foreign_entries_read_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-primary.parsed");
        let pkgs = packages(3);
        write(&path, &pkgs, &CapIndex::build(&pkgs)).unwrap();
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() - 5]).unwrap();
        assert_eq!(read(&path, 0), None, "truncated");
        let mut flipped = good.clone();
        let last = flipped.len() - 40;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert_ne!(read(&path, 0).map(|r| r.0), Some(pkgs.clone()), "corrupt");
        let mut other = b"minibuild-parsed-primary/3/0.0.0\n".to_vec();
        other.extend_from_slice(&good[MAGIC.len()..]);
        std::fs::write(&path, other).unwrap();
        assert_eq!(read(&path, 0), None, "other format");
    }
}
