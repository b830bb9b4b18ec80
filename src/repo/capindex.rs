//! The capability index: capability name → the packages that list it.
//!
//! The resolver looks up "who provides `X`" thousands of times per solve,
//! and dnf-sized repos have about a million capabilities (package names,
//! `Provides:`, file paths from primary.xml). Building that multimap costs
//! most of a resolve, so it is built once per repo when the metadata is
//! parsed, stored in the parsed-metadata cache beside the packages (see
//! `parsed.rs`), and looked up there in place (the file is mapped); a set
//! of repos looks up each repo's index (see `store.rs`).
//!
//! # Layout
//!
//! Two sorted vectors of (64-bit hash of the string, package position)
//! pairs: `caps` (every package's name, provides and listed files) and
//! `names` (package names only). One sequential allocation and one sort to
//! build, no per-key allocation, binary search to look up, and the bytes
//! are written and read back as flat little-endian arrays. A hash collision
//! can only add candidates; every caller checks the actual string on the
//! package, so the index may over-approximate but never miss a provider.
//! Positions are indices into the package slice the index was built for.

use std::sync::Arc;

use super::map::Map;
use super::Package;

/// Name/capability → package positions, for one slice of packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapIndex {
    /// (hash, position), sorted: package names, provides, listed files.
    caps: Table,
    /// (hash, position), sorted: package names only.
    names: Table,
    /// Number of packages the positions refer to.
    len: u32,
}

/// One sorted list of (hash, position): built here, or read in place from
/// the mapped parsed-metadata cache (`to_bytes` layout: the hashes, then
/// the positions), so that a lookup touches a few pages of the file and
/// the index costs no memory of its own.
#[derive(Clone)]
enum Table {
    Owned(Vec<(u64, u32)>),
    Mapped {
        map: Arc<Map>,
        /// Byte offsets of the hashes and of the positions in the map.
        hashes: usize,
        positions: usize,
        n: usize,
    },
}

impl Default for Table {
    fn default() -> Self {
        Table::Owned(Vec::new())
    }
}

impl Table {
    fn len(&self) -> usize {
        match self {
            Table::Owned(v) => v.len(),
            Table::Mapped { n, .. } => *n,
        }
    }

    fn get(&self, k: usize) -> (u64, u32) {
        match self {
            Table::Owned(v) => v[k],
            Table::Mapped {
                map,
                hashes,
                positions,
                ..
            } => {
                let b = map.bytes();
                let h = hashes + 8 * k;
                let p = positions + 4 * k;
                (
                    u64::from_le_bytes(b[h..h + 8].try_into().expect("8 bytes")),
                    u32::from_le_bytes(b[p..p + 4].try_into().expect("4 bytes")),
                )
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.len()).map(|k| self.get(k))
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Table {}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} entries)", self.len())
    }
}

/// FxHash-style (rustc's): a rotate, xor and multiply per 8 bytes. Not
/// DoS-resistant, which does not matter here: collisions only cost time, and
/// the input is the repositories the recipe trusts anyway. The value is
/// stored in the cache, so changing it needs a new cache format number.
pub fn hash(s: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = s.len() as u64;
    let mut chunks = s.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h
}

fn lookup<'e>(entries: &'e Table, key: &str) -> impl Iterator<Item = u32> + 'e {
    let h = hash(key);
    // partition_point by hand: the table may not be a slice.
    let (mut lo, mut hi) = (0, entries.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entries.get(mid).0 < h {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    (lo..entries.len())
        .map(|k| entries.get(k))
        .take_while(move |e| e.0 == h)
        .map(|e| e.1)
}

impl CapIndex {
    /// Index `packages` (every package, whatever its arch: the resolver
    /// filters by arch at lookup).
    pub fn build(packages: &[Package]) -> CapIndex {
        let total = packages
            .iter()
            .map(|p| 1 + p.provides.len() + p.files.len())
            .sum();
        let mut caps = Vec::with_capacity(total);
        let mut names = Vec::with_capacity(packages.len());
        for (i, p) in packages.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 packages");
            let h = hash(&p.nevra.name);
            names.push((h, i));
            caps.push((h, i));
            caps.extend(p.provides.iter().map(|d| (hash(&d.name), i)));
            caps.extend(p.files.iter().map(|f| (hash(f), i)));
        }
        caps.sort_unstable();
        caps.dedup();
        names.sort_unstable();
        CapIndex {
            caps: Table::Owned(caps),
            names: Table::Owned(names),
            len: packages.len() as u32,
        }
    }

    /// Number of packages the index describes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions of packages listing `cap` as their name, a provide or a
    /// file (ascending; on a hash collision also unrelated ones: check).
    pub fn with_cap<'s>(&'s self, cap: &str) -> impl Iterator<Item = u32> + 's {
        lookup(&self.caps, cap)
    }

    /// Positions of packages possibly named `name` (check: collisions).
    pub fn named<'s>(&'s self, name: &str) -> impl Iterator<Item = u32> + 's {
        lookup(&self.names, name)
    }

    /// Flat little-endian form, for the parsed-metadata cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + 12 * (self.caps.len() + self.names.len()));
        out.extend_from_slice(&self.len.to_le_bytes());
        for list in [&self.caps, &self.names] {
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for (h, _) in list.iter() {
                out.extend_from_slice(&h.to_le_bytes());
            }
            for (_, i) in list.iter() {
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        out
    }

    /// Read [`CapIndex::to_bytes`] back; `None` if the bytes are not such
    /// an index (truncated, positions out of range, not sorted).
    pub fn from_bytes(bytes: &[u8]) -> Option<CapIndex> {
        let (len, lists) = layout(bytes)?;
        // `layout` checked that every list fits in `bytes`.
        let owned = |(h, p, n): Span| {
            let word = |at: usize, w: usize| {
                let mut buf = [0u8; 8];
                buf[..w].copy_from_slice(&bytes[at..at + w]);
                u64::from_le_bytes(buf)
            };
            let table = Table::Owned(
                (0..n)
                    .map(|k| (word(h + 8 * k, 8), word(p + 4 * k, 4) as u32))
                    .collect(),
            );
            valid(&table, len).then_some(table)
        };
        Some(CapIndex {
            caps: owned(lists[0])?,
            names: owned(lists[1])?,
            len,
        })
    }

    /// [`CapIndex::from_bytes`] of `len` bytes at `at` in `map`, read in
    /// place: checked whole now, then looked up in the mapping.
    pub(super) fn mapped(map: &Arc<Map>, at: usize, len: usize) -> Option<CapIndex> {
        let bytes = map.bytes().get(at..at.checked_add(len)?)?;
        let (count, lists) = layout(bytes)?;
        let table = |(h, p, n): Span| {
            let t = Table::Mapped {
                map: Arc::clone(map),
                hashes: at + h,
                positions: at + p,
                n,
            };
            valid(&t, count).then_some(t)
        };
        let index = CapIndex {
            caps: table(lists[0])?,
            names: table(lists[1])?,
            len: count,
        };
        map.release(at, len);
        Some(index)
    }
}

/// Where one list is in `to_bytes` form: offset of its hashes, offset of
/// its positions, entries.
type Span = (usize, usize, usize);

/// The package count and the [`Span`] of each list in `to_bytes` form;
/// `None` unless it fits exactly.
fn layout(bytes: &[u8]) -> Option<(u32, [Span; 2])> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let mut at = 4usize;
    let mut lists = [(0, 0, 0); 2];
    for list in &mut lists {
        let n =
            usize::try_from(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)).ok()?;
        let hashes = at + 8;
        let positions = hashes.checked_add(n.checked_mul(8)?)?;
        at = positions.checked_add(n.checked_mul(4)?)?;
        if at > bytes.len() {
            return None;
        }
        *list = (hashes, positions, n);
    }
    (at == bytes.len()).then_some((len, lists))
}

/// Sorted by hash, and every position names one of `len` packages.
fn valid(t: &Table, len: u32) -> bool {
    let mut prev = 0u64;
    t.iter().all(|(h, i)| {
        let ok = h >= prev && i < len;
        prev = h;
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::{Dep, Evr, Nevra};

    fn pkg(name: &str, provides: &[&str], files: &[&str]) -> Package {
        let mut p = Package::new(
            Nevra::new(name, Evr::parse("1-1"), "x86_64"),
            0,
            String::new(),
            Digest::sha256_of(name.as_bytes()),
        );
        p.provides = provides.iter().map(|d| Dep::any(*d)).collect();
        p.files = files.iter().map(|f| f.to_string()).collect();
        p
    }

    fn sorted(it: impl Iterator<Item = u32>) -> Vec<u32> {
        let mut v: Vec<u32> = it.collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_providers_by_name_provide_and_file() {
        let pkgs = [
            pkg("bash", &["/bin/sh"], &["/usr/bin/bash"]),
            pkg("dash", &["/bin/sh"], &[]),
            pkg("coreutils", &["bash-compat"], &[]),
        ];
        let idx = CapIndex::build(&pkgs);
        assert_eq!(idx.len(), 3);
        assert_eq!(sorted(idx.with_cap("/bin/sh")), [0, 1]);
        assert_eq!(sorted(idx.with_cap("/usr/bin/bash")), [0]);
        assert_eq!(sorted(idx.with_cap("bash")), [0]);
        assert_eq!(sorted(idx.named("bash")), [0]);
        assert_eq!(sorted(idx.named("/bin/sh")), Vec::<u32>::new());
        assert_eq!(sorted(idx.with_cap("zsh")), Vec::<u32>::new());
    }

    #[test]
    fn round_trips_through_bytes_and_refuses_garbage() {
        let idx = CapIndex::build(&[pkg("a", &["x"], &["/f"]), pkg("b", &[], &[])]);
        let bytes = idx.to_bytes();
        assert_eq!(CapIndex::from_bytes(&bytes), Some(idx.clone()));
        assert_eq!(CapIndex::from_bytes(&bytes[..bytes.len() - 1]), None);
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(CapIndex::from_bytes(&extra), None);
        // A position beyond the package count.
        let mut bad = bytes.clone();
        bad[0] = 1;
        assert_eq!(CapIndex::from_bytes(&bad), None);

        // In place in a mapped file, after other bytes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut file = b"head".to_vec();
        file.extend_from_slice(&bytes);
        std::fs::write(&path, &file).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let map = Arc::new(Map::new(&f, file.len()).unwrap());
        let mapped = CapIndex::mapped(&map, 4, bytes.len()).unwrap();
        assert_eq!(mapped, idx);
        assert_eq!(sorted(mapped.with_cap("/f")), [0]);
        assert_eq!(sorted(mapped.named("b")), [1]);
        assert_eq!(mapped.to_bytes(), bytes);
        assert!(CapIndex::mapped(&map, 4, bytes.len() - 1).is_none());
        assert!(CapIndex::mapped(&map, 4, bytes.len() + 1).is_none());
    }
}
