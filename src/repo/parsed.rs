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
//! u64 package count, u64 chunk count, u64 index length,
//! u64 CRC-32 of the four counts, the chunk table, the index and the file deps,
//! u64 file deps length  (little-endian)
//! per chunk: u64 offset, u64 length, u64 package count, u64 CRC-32 of its bytes
//! the capability index (CapIndex::to_bytes)
//! the file dependencies no package lists (u32 count, then u32 length + bytes each)
//! the chunks: a string table and packages each (see `codec.rs`)
//! ```
//!
//! The checksums are there because the decoder alone cannot tell every
//! flipped byte from a valid encoding: a changed version digit or string id
//! decodes fine into a different, wrong package, and the cache must never
//! change an answer. The cache is not a trust boundary (whoever can write it
//! can write the checksum too), so a fast CRC (`crc32fast`, several GB/s,
//! a few ms for a Fedora-sized entry) is enough to catch damage; sha256
//! would add about 0.2 s to every warm load of 100 MB. Each chunk is checked
//! when it is skimmed.
//!
//! A load checks every chunk's checksum and walks every package in it
//! ([`codec::View::skim_at`]: decodes without building anything), which
//! both proves each package decodes and collects the per-package
//! [`Summary`] the resolver needs of all of them. Chunks are read with
//! through a read-only mapping of the file, and each part is released from
//! the process once checked; packages are decoded from the mapping only
//! when the resolver looks at them (see `store.rs`), and the capability
//! index is looked up in place, so a load holds a few bytes per package
//! rather than the file. The packages are cut into chunks of `CHUNK` so
//! that each chunk's string table stays small. The capability index
//! is stored too, so the resolver does not rebuild it (see `capindex.rs`). `MAGIC`
//! carries a format number and the crate version, because the format is not
//! self-describing: any change to [`Package`] must not be read with the old
//! layout. Writes are atomic (temp file + rename); an entry that fails to
//! decode is treated as missing and overwritten by the caller.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::{self, View};
use super::map::Map;
use super::store::{unlisted_file_deps, Cached, Part, Summary};
use super::{CapIndex, Package};

/// Header of every entry: format number and crate version.
const MAGIC: &[u8] = concat!(
    "minibuild-parsed-primary/6/",
    env!("CARGO_PKG_VERSION"),
    "\n"
)
.as_bytes();

/// Packages per chunk: about 600 KB of encoded Fedora metadata.
const CHUNK: usize = 1000;

/// One chunk's place in the file.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: u64,
    len: u64,
    count: u64,
    crc: u32,
}

/// Bytes per chunk table row.
const ROW: u64 = 32;

/// Why an entry that exists cannot be used; the caller rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub &'static str);

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
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

/// The cached packages (their `repo` set to `repo`) as a part of a
/// [`super::PackageSet`], decoded when first used; `Ok(None)` when there is
/// no entry, [`Unusable`] when there is one that must not be used (another
/// format, truncated, checksum mismatch, does not decode).
pub fn read(path: &Path, repo: usize) -> Result<Option<Part>, Unusable> {
    let Ok(file) = File::open(path) else {
        return Ok(None);
    };
    let file_len = file
        .metadata()
        .map_err(|_| Unusable("cannot be read"))?
        .len();
    let mut head = vec![0; MAGIC.len() + 40];
    file.read_exact_at(&mut head, 0)
        .map_err(|_| Unusable("is truncated"))?;
    let fields = head
        .strip_prefix(MAGIC)
        .ok_or(Unusable("was written by another minibuild version"))?;
    let truncated = Unusable("is truncated or its sizes are damaged");
    let field = |at| u64_at(fields, at).ok_or(truncated.clone());
    let total = usize::try_from(field(0)?).map_err(|_| truncated.clone())?;
    let n_chunks = field(8)?;
    let index_len = field(16)?;
    let meta_crc = field(24)?;
    let wants_len = field(32)?;
    // Sizes come from the file: check them against its length before
    // allocating anything by them.
    let table_len = n_chunks.checked_mul(ROW).ok_or(truncated.clone())?;
    let index_at = (head.len() as u64)
        .checked_add(table_len)
        .ok_or(truncated.clone())?;
    if index_at
        .checked_add(index_len)
        .and_then(|end| end.checked_add(wants_len))
        .is_none_or(|end| end > file_len)
        || usize::try_from(file_len).is_err()
        || u32::try_from(total).is_err()
    {
        return Err(truncated);
    }
    // From here on the file is read through a mapping, each part released
    // once read (see `Map::release`): a load does not keep what it checked.
    let map = std::sync::Arc::new(
        Map::new(&file, file_len as usize).map_err(|_| Unusable("cannot be mapped"))?,
    );
    let bytes = map.bytes();
    let (meta_at, index_at) = (head.len(), index_at as usize);
    let index_end = index_at + index_len as usize;
    let wants_end = index_end + wants_len as usize;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&fields[..24]);
    crc.update(&fields[32..40]);
    crc.update(&bytes[meta_at..wants_end]);
    let wants = read_strings(&bytes[index_end..wants_end]);
    map.release(meta_at, wants_end - meta_at);
    if u64::from(crc.finalize()) != meta_crc {
        return Err(Unusable(
            "has a damaged chunk table or capability index (checksum mismatch)",
        ));
    }
    let chunks: Vec<Chunk> = bytes[meta_at..index_at]
        .chunks_exact(ROW as usize)
        .map(|t| Chunk {
            offset: u64_at(t, 0).expect("32 bytes"),
            len: u64_at(t, 8).expect("32 bytes"),
            count: u64_at(t, 16).expect("32 bytes"),
            crc: u64_at(t, 24).expect("32 bytes") as u32,
        })
        .collect();
    let in_file = |c: &Chunk| {
        c.offset
            .checked_add(c.len)
            .is_some_and(|end| end <= file_len)
    };
    let counted = chunks.iter().try_fold(0u64, |a, c| a.checked_add(c.count));
    if !chunks.iter().all(in_file) || counted != Some(total as u64) {
        return Err(truncated);
    }
    let undecodable = Unusable("does not decode");
    let caps = CapIndex::mapped(&map, index_at, index_len as usize).ok_or(undecodable.clone())?;
    if caps.len() != total {
        return Err(undecodable);
    }
    let (starts, mut summary) = skim(&map, &chunks, total)?;
    summary.set_unlisted(wants.ok_or(undecodable.clone())?);
    let mut first = 0u32;
    let spans = chunks
        .iter()
        .map(|c| {
            let span = (c.offset as usize, c.len as usize, first);
            first += c.count as u32;
            span
        })
        .collect();
    let cached = Cached {
        map,
        chunks: spans,
        starts,
        repo,
        cells: (0..total).map(|_| Default::default()).collect(),
    };
    Ok(Some(Part::cached(cached, caps, summary)))
}

/// Check and skim every chunk: each package's start within its chunk, and
/// the summary of them all. On one thread: a second one cost 12 MB of
/// allocator heap for a few ms of wall time (and no CPU time).
fn skim(map: &Map, chunks: &[Chunk], total: usize) -> Result<(Vec<u32>, Summary), Unusable> {
    let undecodable = Unusable("does not decode");
    let mut starts = Vec::with_capacity(total);
    let mut summary = Summary::default();
    let mut seen = std::collections::HashSet::new();
    for c in chunks {
        // In the file (checked by the caller).
        let (offset, len) = (c.offset as usize, c.len as usize);
        let bytes = &map.bytes()[offset..offset + len];
        let outcome = (|| {
            if crc32fast::hash(bytes) != c.crc {
                return Err(Unusable("has a damaged chunk (checksum mismatch)"));
            }
            let view = View::new(bytes).ok_or(undecodable.clone())?;
            let mut at = view.body;
            for _ in 0..c.count {
                starts.push(u32::try_from(at).map_err(|_| undecodable.clone())?);
                let (skimmed, next) = view.skim_at(at).ok_or(undecodable.clone())?;
                summary
                    .push_skimmed(&skimmed, &mut seen)
                    .ok_or(undecodable.clone())?;
                at = next;
            }
            (at == bytes.len()).then_some(()).ok_or(undecodable.clone())
        })();
        map.release(offset, len);
        outcome?;
    }
    summary.seal(seen);
    Ok((starts, summary))
}

/// The unlisted file dependencies section: u32 count, then each string
/// as u32 length and bytes; `None` unless that is exactly `bytes`.
fn read_strings(bytes: &[u8]) -> Option<Vec<String>> {
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
    };
    let n = u32_at(0)?;
    let mut at = 4;
    let mut out = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let len = u32_at(at)?;
        let s = bytes.get(at + 4..(at + 4).checked_add(len)?)?;
        out.push(std::str::from_utf8(s).ok()?.to_string());
        at += 4 + len;
    }
    (at == bytes.len()).then_some(out)
}

/// Store `packages` and their capability index at `path` atomically.
pub fn write(path: &Path, packages: &[Package], caps: &CapIndex) -> std::io::Result<()> {
    let chunks: Vec<(Vec<u8>, usize)> = packages
        .chunks(CHUNK)
        .map(|c| (codec::encode(c), c.len()))
        .collect();
    let index = caps.to_bytes();
    let wants = unlisted_file_deps(packages, caps);
    let mut wants_bytes = (wants.len() as u32).to_le_bytes().to_vec();
    for w in &wants {
        wants_bytes.extend_from_slice(&(w.len() as u32).to_le_bytes());
        wants_bytes.extend_from_slice(w.as_bytes());
    }
    let wants_len = (wants_bytes.len() as u64).to_le_bytes();
    let mut counts = Vec::with_capacity(24);
    for n in [packages.len(), chunks.len(), index.len()] {
        counts.extend_from_slice(&(n as u64).to_le_bytes());
    }
    let mut meta = Vec::with_capacity(ROW as usize * chunks.len() + index.len());
    let mut offset = (MAGIC.len() + 40) as u64
        + ROW * chunks.len() as u64
        + index.len() as u64
        + wants_bytes.len() as u64;
    for (c, count) in &chunks {
        let crc = u64::from(crc32fast::hash(c));
        for n in [offset, c.len() as u64, *count as u64, crc] {
            meta.extend_from_slice(&n.to_le_bytes());
        }
        offset += c.len() as u64;
    }
    meta.extend_from_slice(&index);
    meta.extend_from_slice(&wants_bytes);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&counts);
    crc.update(&wants_len);
    crc.update(&meta);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&counts);
    bytes.extend_from_slice(&u64::from(crc.finalize()).to_le_bytes());
    bytes.extend_from_slice(&wants_len);
    bytes.extend_from_slice(&meta);
    for (c, _) in &chunks {
        bytes.extend_from_slice(c);
    }
    super::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::PackageSet;

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
        assert!(matches!(read(&path, 0), Ok(None)));
        // Several chunks, the last one partial, so that several threads
        // decode and the runs are joined in order.
        let pkgs = packages(CHUNK * 3 + 7);
        let caps = CapIndex::build(&pkgs);
        write(&path, &pkgs, &caps).unwrap();
        let back = PackageSet::from_parts(vec![read(&path, 3).unwrap().unwrap()]);
        assert_eq!(back.len(), pkgs.len());
        // Decoded on demand, in any order.
        for i in (0..pkgs.len()).rev().step_by(7) {
            let mut want = pkgs[i].clone();
            want.repo = 3;
            assert_eq!(back.package(i as u32), &want);
        }
        let mut want = PackageSet::of(pkgs.clone());
        for p in want.built_mut(0) {
            p.iter_mut().for_each(|p| p.repo = 3);
        }
        want.reindex();
        assert_eq!(back, want);
        // The summary and index the resolver uses without decoding.
        assert_eq!(back.named("bash12").collect::<Vec<_>>(), [12]);
        assert_eq!(back.name(CHUNK as u32 + 1), format!("bash{}", CHUNK + 1));
        assert_eq!(back.arch(5), "x86_64");
        assert_eq!(back.with_cap("/bin/sh").count(), pkgs.len());
        // Every package requires `(a or b)`, which nobody provides: no
        // path in it. One package requiring a path nobody lists is noticed.
        assert!(!back.unmet_file_deps([]));
        let mut more = pkgs.clone();
        more[5]
            .requires
            .push(crate::package::Dep::any("/usr/bin/nobody"));
        more[6]
            .requires
            .push(crate::package::Dep::any("/usr/bin/bash"));
        write(&path, &more, &CapIndex::build(&more)).unwrap();
        let back = PackageSet::from_parts(vec![read(&path, 3).unwrap().unwrap()]);
        assert!(back.unmet_file_deps([]));
        assert_eq!(back.package(6).requires.len(), 2);
    }

    #[test]
    fn a_chunk_table_that_miscounts_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m-primary.parsed");
        let pkgs = packages(CHUNK * 2 + 5);
        write(&path, &pkgs, &CapIndex::build(&pkgs)).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // Move one package from the last chunk's count to the first's: the
        // total still matches, so each thread gets its slots, but the first
        // chunk no longer decodes to its count.
        let table = MAGIC.len() + 40;
        let count_at = |k: usize| table + ROW as usize * k + 16;
        let bump = |bytes: &mut Vec<u8>, at: usize, by: i64| {
            let v = u64_at(bytes, at).unwrap() as i64 + by;
            bytes[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
        };
        bump(&mut bytes, count_at(0), 1);
        bump(&mut bytes, count_at(2), -1);
        // With a checksum that matches, so the decoder's own check is the
        // one tested.
        let meta_end = table
            + ROW as usize * 3
            + u64_at(&bytes, MAGIC.len() + 16).unwrap() as usize
            + u64_at(&bytes, MAGIC.len() + 32).unwrap() as usize;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[MAGIC.len()..MAGIC.len() + 24]);
        crc.update(&bytes[MAGIC.len() + 32..MAGIC.len() + 40]);
        crc.update(&bytes[table..meta_end]);
        let sum = u64::from(crc.finalize()).to_le_bytes();
        bytes[MAGIC.len() + 24..MAGIC.len() + 32].copy_from_slice(&sum);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path, 0).err(), Some(Unusable("does not decode")));
    }

    #[test]
    fn an_empty_repo_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e-primary.parsed");
        write(&path, &[], &CapIndex::build(&[])).unwrap();
        let back = PackageSet::from_parts(vec![read(&path, 0).unwrap().unwrap()]);
        assert!(back.is_empty());
    }

    /// Every byte of an entry, flipped two ways: never a wrong answer, always
    /// a refusal (before the checksums, a flipped version digit decoded into
    /// a different package).
    #[test]
    fn any_flipped_byte_truncation_or_foreign_format_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-primary.parsed");
        let pkgs = packages(3);
        write(&path, &pkgs, &CapIndex::build(&pkgs)).unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            for mask in [0x01, 0xff] {
                let mut flipped = good.clone();
                flipped[at] ^= mask;
                std::fs::write(&path, &flipped).unwrap();
                assert!(
                    read(&path, 0).is_err(),
                    "byte {at} ^ {mask:#x} was not noticed"
                );
            }
        }
        std::fs::write(&path, &good[..good.len() - 5]).unwrap();
        assert_eq!(
            read(&path, 0).err(),
            Some(Unusable("is truncated or its sizes are damaged"))
        );
        let mut other = b"minibuild-parsed-primary/3/0.0.0\n".to_vec();
        other.extend_from_slice(&good[MAGIC.len()..]);
        std::fs::write(&path, other).unwrap();
        assert_eq!(
            read(&path, 0).err(),
            Some(Unusable("was written by another minibuild version")),
            "other format"
        );
    }
}
