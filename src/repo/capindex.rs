//! The capability index: capability name → the packages that list it.
//!
//! The resolver looks up "who provides `X`" thousands of times per solve,
//! and dnf-sized repos have about a million capabilities (package names,
//! `Provides:`, file paths from primary.xml). Building that multimap costs
//! most of a resolve, so it is built once per repo when the metadata is
//! parsed, stored in the parsed-metadata cache beside the packages (see
//! `parsed.rs`), and stitched together per repo set in linear time
//! ([`CapIndex::concat`], [`CapIndex::retain`]) instead of being rebuilt per
//! request.
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

use super::Package;

/// Name/capability → package positions, for one slice of packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapIndex {
    /// (hash, position), sorted: package names, provides, listed files.
    caps: Vec<(u64, u32)>,
    /// (hash, position), sorted: package names only.
    names: Vec<(u64, u32)>,
    /// Number of packages the positions refer to.
    len: u32,
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

fn lookup<'e>(entries: &'e [(u64, u32)], key: &str) -> impl Iterator<Item = u32> + 'e {
    let h = hash(key);
    let start = entries.partition_point(|e| e.0 < h);
    entries[start..]
        .iter()
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
            caps,
            names,
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

    /// Every package position, in groups of equal name hash: packages
    /// of one name are always in one group (with, rarely, others).
    pub fn name_groups(&self) -> impl Iterator<Item = impl Iterator<Item = u32> + '_> + '_ {
        self.names
            .chunk_by(|a, b| a.0 == b.0)
            .map(|g| g.iter().map(|e| e.1))
    }

    /// The index of several package slices laid end to end, in order
    /// (`[a.packages, b.packages, …].concat()`): positions are shifted and
    /// the sorted runs merged, with no hashing.
    pub fn concat(parts: &[&CapIndex]) -> CapIndex {
        if let [one] = parts {
            return (*one).clone();
        }
        let merge = |pick: fn(&CapIndex) -> &Vec<(u64, u32)>| {
            let mut out = Vec::with_capacity(parts.iter().map(|p| pick(p).len()).sum());
            let mut offset = 0u32;
            for p in parts {
                out.extend(pick(p).iter().map(|&(h, i)| (h, i + offset)));
                offset += p.len;
            }
            // Runs are sorted; the stable sort merges them cheaply and
            // keeps positions ascending within a hash.
            out.sort_by_key(|e| e.0);
            out
        };
        CapIndex {
            caps: merge(|c| &c.caps),
            names: merge(|c| &c.names),
            len: parts.iter().map(|p| p.len).sum(),
        }
    }

    /// The index of the packages whose `keep` flag is set, renumbered the
    /// way `Vec::retain` would renumber them.
    pub fn retain(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.len(), "one flag per package");
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut new_pos = Vec::with_capacity(keep.len());
        let mut next = 0u32;
        for &k in keep {
            new_pos.push(next);
            next += u32::from(k);
        }
        for list in [&mut self.caps, &mut self.names] {
            list.retain(|e| keep[e.1 as usize]);
            for e in list.iter_mut() {
                e.1 = new_pos[e.1 as usize];
            }
        }
        self.len = next;
    }

    /// Flat little-endian form, for the parsed-metadata cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + 12 * (self.caps.len() + self.names.len()));
        out.extend_from_slice(&self.len.to_le_bytes());
        for list in [&self.caps, &self.names] {
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for &(h, _) in list {
                out.extend_from_slice(&h.to_le_bytes());
            }
            for &(_, i) in list {
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        out
    }

    /// Read [`CapIndex::to_bytes`] back; `None` if the bytes are not such
    /// an index (truncated, positions out of range, not sorted).
    pub fn from_bytes(bytes: &[u8]) -> Option<CapIndex> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut list = || -> Option<Vec<(u64, u32)>> {
            let n = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            let hashes = take(n.checked_mul(8)?)?;
            let positions = take(n.checked_mul(4)?)?;
            let out: Vec<(u64, u32)> = hashes
                .chunks_exact(8)
                .zip(positions.chunks_exact(4))
                .map(|(h, i)| {
                    (
                        u64::from_le_bytes(h.try_into().expect("8 bytes")),
                        u32::from_le_bytes(i.try_into().expect("4 bytes")),
                    )
                })
                .collect();
            let valid = out.windows(2).all(|w| w[0].0 <= w[1].0) && out.iter().all(|e| e.1 < len);
            valid.then_some(out)
        };
        let caps = list()?;
        let names = list()?;
        rest.is_empty().then_some(CapIndex { caps, names, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::rpm::{Dep, Evr, Nevra};

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
        assert_eq!(sorted(idx.name_groups().flatten()), [0, 1, 2]);
        assert_eq!(idx.name_groups().count(), 3);
    }

    #[test]
    fn concat_and_retain_match_a_rebuild() {
        let a = [pkg("a", &["x"], &["/f"]), pkg("b", &["x"], &[])];
        let b = [pkg("c", &["x", "y"], &[]), pkg("a", &[], &["/f"])];
        let all: Vec<Package> = a.iter().chain(&b).cloned().collect();
        let joined = CapIndex::concat(&[&CapIndex::build(&a), &CapIndex::build(&b)]);
        assert_eq!(joined, CapIndex::build(&all));
        assert_eq!(sorted(joined.named("a")), [0, 3]);
        let groups: Vec<Vec<u32>> = joined.name_groups().map(|g| g.collect()).collect();
        assert!(groups.contains(&vec![0, 3]), "{groups:?}");

        let keep = [true, false, true, false];
        let mut kept = joined.clone();
        kept.retain(&keep);
        let survivors: Vec<Package> = all
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(kept, CapIndex::build(&survivors));
        assert_eq!(sorted(kept.with_cap("x")), [0, 1]);
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
        let mut bad = bytes;
        bad[0] = 1;
        assert_eq!(CapIndex::from_bytes(&bad), None);
    }
}
