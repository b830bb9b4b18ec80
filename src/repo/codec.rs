//! The binary form of a run of [`Package`]s in the parsed-metadata cache.
//!
//! A chunk is a string table and a table of dependency versions followed by
//! the packages, whose strings and dependency versions are table ids:
//!
//! ```text
//! varint string count, varint byte length of each string, the strings' bytes
//! varint version count, per version: epoch, version id, release id + 1 (0 = none)
//! per package: fields in declaration order, integers as LEB128 varints,
//! strings as table ids, optional strings as id + 1 (0 = none), lists as a
//! count and their items, a dependency as its name's id and its range as
//! 0 (none) or 1 + the comparison, then the version's id
//! ```
//!
//! Why not serde (postcard, which this replaced): a repository repeats the
//! same few thousand strings (versions, `MIT`, `Fedora Project`, common
//! library provides) across hundreds of thousands of fields. With a table
//! each distinct string is stored once per chunk and the UTF-8 check is one
//! pass over the table instead of one per field, which roughly halves the
//! decode time of a warm load and shrinks the file. The tables are also what
//! lets a decoded chunk share memory: each dependency name and version is
//! one `Arc` per chunk that all its uses point at, instead of one heap copy
//! per use (1.25 million dependencies in a Fedora-sized repo, most of them
//! a few hundred thousand distinct names). Every package field is
//! spelled out in `put_package` and `get_package`; the latter builds
//! a struct literal (no `..`), so adding a field to [`Package`] does not
//! compile until it is decoded here, and the round-trip test checks that
//! it is encoded too.

use std::collections::HashMap;
use std::sync::Arc;

use super::Package;
use crate::digest::{Algorithm, Digest};
use crate::rpm::{Cmp, Dep, Evr, Nevra};

const CMPS: [Cmp; 5] = [Cmp::Lt, Cmp::Le, Cmp::Eq, Cmp::Ge, Cmp::Gt];

/// Encode `packages` (their `repo` is not stored: the reader sets it).
pub fn encode(packages: &[Package]) -> Vec<u8> {
    let mut w = Writer::default();
    for p in packages {
        put_package(&mut w, p);
    }
    let mut out = Vec::with_capacity(w.body.len() + w.evr_table.len() + w.strings.len() * 24);
    put_varint(&mut out, w.strings.len() as u64);
    for s in &w.strings {
        put_varint(&mut out, s.len() as u64);
    }
    for s in &w.strings {
        out.extend_from_slice(s.as_bytes());
    }
    put_varint(&mut out, w.evr_ids.len() as u64);
    out.extend_from_slice(&w.evr_table);
    out.extend_from_slice(&w.body);
    out
}

/// Decode `count` packages, with `repo` set, handing each to `put` in
/// order; `None` if `bytes` are not exactly that (truncated, corrupt,
/// trailing bytes), and then some packages may have been handed over.
pub fn decode(bytes: &[u8], count: usize, repo: usize, mut put: impl FnMut(Package)) -> Option<()> {
    let mut r = Reader { bytes, at: 0 };
    let n = usize::try_from(r.varint()?).ok()?;
    // Each length takes at least a byte: bound the allocation by the input.
    if n > bytes.len() {
        return None;
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(usize::try_from(r.varint()?).ok()?);
    }
    let total = lens.iter().try_fold(0usize, |a, &l| a.checked_add(l))?;
    let text = std::str::from_utf8(r.take(total)?).ok()?;
    let mut strings = Vec::with_capacity(n);
    let mut at = 0;
    for len in lens {
        // `get` refuses a cut inside a character.
        strings.push(text.get(at..at + len)?);
        at += len;
    }
    let n_evrs = usize::try_from(r.varint()?).ok()?;
    // Each version takes at least three bytes.
    if n_evrs > bytes.len() {
        return None;
    }
    let mut d = Decoder {
        r,
        names: vec![None; strings.len()],
        strings,
        evrs: Vec::with_capacity(n_evrs),
    };
    for _ in 0..n_evrs {
        let evr = Arc::new(d.evr()?);
        d.evrs.push(evr);
    }
    for _ in 0..count {
        put(get_package(&mut d, repo)?);
    }
    (d.r.at == bytes.len()).then_some(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[derive(Default)]
struct Writer<'a> {
    strings: Vec<&'a str>,
    ids: HashMap<&'a str, u64>,
    /// Dependency versions in order of first use, encoded.
    evr_table: Vec<u8>,
    evr_ids: HashMap<&'a Evr, u64>,
    body: Vec<u8>,
}

impl<'a> Writer<'a> {
    fn int(&mut self, v: u64) {
        put_varint(&mut self.body, v);
    }

    fn id(&mut self, s: &'a str) -> u64 {
        let next = self.strings.len() as u64;
        *self.ids.entry(s).or_insert_with(|| {
            self.strings.push(s);
            next
        })
    }

    fn str(&mut self, s: &'a str) {
        let id = self.id(s);
        self.int(id);
    }

    fn opt_id(&mut self, s: Option<&'a str>) -> u64 {
        s.map_or(0, |s| self.id(s) + 1)
    }

    /// Epoch, version id, release id + 1: the same three numbers whether
    /// written inline (a package's own version) or in the version table.
    fn evr_fields(&mut self, e: &'a Evr) -> [u64; 3] {
        [
            e.epoch,
            self.id(&e.version),
            self.opt_id(e.release.as_deref()),
        ]
    }

    fn evr(&mut self, e: &'a Evr) {
        for v in self.evr_fields(e) {
            self.int(v);
        }
    }

    /// A dependency version's table id, adding it on first use.
    fn evr_id(&mut self, e: &'a Evr) -> u64 {
        if let Some(&id) = self.evr_ids.get(e) {
            return id;
        }
        let id = self.evr_ids.len() as u64;
        self.evr_ids.insert(e, id);
        for v in self.evr_fields(e) {
            put_varint(&mut self.evr_table, v);
        }
        id
    }

    fn deps(&mut self, deps: &'a [Dep]) {
        self.int(deps.len() as u64);
        for d in deps {
            self.str(&d.name);
            match &d.range {
                None => self.int(0),
                Some((cmp, evr)) => {
                    let k = CMPS.iter().position(|c| c == cmp).expect("every Cmp");
                    self.int(k as u64 + 1);
                    let id = self.evr_id(evr);
                    self.int(id);
                }
            }
        }
    }
}

/// Field order of the format; mirrors [`get_package`] (whose struct
/// literal is what makes a new field fail to compile).
fn put_package<'a>(w: &mut Writer<'a>, p: &'a Package) {
    w.str(&p.nevra.name);
    w.evr(&p.nevra.evr);
    w.str(&p.nevra.arch);
    w.str(&p.location);
    w.int(match p.checksum.algo() {
        Algorithm::Sha256 => 0,
        Algorithm::Sha512 => 1,
    });
    w.str(p.checksum.hex());
    for v in [p.download_size, p.installed_size, p.build_time] {
        w.int(v);
    }
    for s in [
        &p.summary,
        &p.license,
        &p.vendor,
        &p.packager,
        &p.source_rpm,
    ] {
        w.str(s);
    }
    for list in [
        &p.provides,
        &p.requires,
        &p.conflicts,
        &p.obsoletes,
        &p.recommends,
        &p.suggests,
        &p.supplements,
        &p.enhances,
    ] {
        w.deps(list);
    }
    w.int(p.files.len() as u64);
    for f in &p.files {
        w.str(f);
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
}

struct Decoder<'b> {
    r: Reader<'b>,
    strings: Vec<&'b str>,
    /// The shared copy of each string used as a dependency name, made on
    /// first use (most strings are never a name).
    names: Vec<Option<Arc<str>>>,
    evrs: Vec<Arc<Evr>>,
}

impl Decoder<'_> {
    fn int(&mut self) -> Option<u64> {
        self.r.varint()
    }

    fn str(&mut self) -> Option<String> {
        let id = usize::try_from(self.int()?).ok()?;
        self.strings.get(id).map(|s| s.to_string())
    }

    fn opt_str(&mut self) -> Option<Option<String>> {
        match self.int()? {
            0 => Some(None),
            id => {
                let id = usize::try_from(id - 1).ok()?;
                Some(Some(self.strings.get(id)?.to_string()))
            }
        }
    }

    fn evr(&mut self) -> Option<Evr> {
        Some(Evr {
            epoch: self.int()?,
            version: self.str()?,
            release: self.opt_str()?,
        })
    }

    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.int()?).ok()?;
        // Every item takes at least a byte.
        (n <= self.r.bytes.len() - self.r.at).then_some(n)
    }

    fn name(&mut self) -> Option<Arc<str>> {
        let id = usize::try_from(self.int()?).ok()?;
        let slot = self.names.get_mut(id)?;
        Some(Arc::clone(
            slot.get_or_insert_with(|| Arc::from(self.strings[id])),
        ))
    }

    fn deps(&mut self) -> Option<Vec<Dep>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.name()?;
            let range = match self.int()? {
                0 => None,
                k => {
                    let cmp = *CMPS.get(usize::try_from(k - 1).ok()?)?;
                    let id = usize::try_from(self.int()?).ok()?;
                    Some((cmp, Arc::clone(self.evrs.get(id)?)))
                }
            };
            out.push(Dep { name, range });
        }
        Some(out)
    }
}

/// Field order of the format; mirrors [`put_package`].
fn get_package(d: &mut Decoder, repo: usize) -> Option<Package> {
    let nevra = Nevra {
        name: d.str()?,
        evr: d.evr()?,
        arch: d.str()?,
    };
    let location = d.str()?;
    let algo = match d.int()? {
        0 => Algorithm::Sha256,
        1 => Algorithm::Sha512,
        _ => return None,
    };
    let id = usize::try_from(d.int()?).ok()?;
    let checksum = Digest::new(algo, d.strings.get(id)?).ok()?;
    Some(Package {
        nevra,
        repo,
        location,
        checksum,
        download_size: d.int()?,
        installed_size: d.int()?,
        build_time: d.int()?,
        summary: d.str()?,
        license: d.str()?,
        vendor: d.str()?,
        packager: d.str()?,
        source_rpm: d.str()?,
        provides: d.deps()?,
        requires: d.deps()?,
        conflicts: d.deps()?,
        obsoletes: d.deps()?,
        recommends: d.deps()?,
        suggests: d.deps()?,
        supplements: d.deps()?,
        enhances: d.deps()?,
        files: {
            let n = d.len()?;
            let mut files = Vec::with_capacity(n);
            for _ in 0..n {
                files.push(d.str()?);
            }
            files
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Package> {
        let mut a = Package::new(
            Nevra::new("bash", Evr::parse("1:5.2-3.fc40"), "x86_64"),
            7,
            "Packages/b/bash.rpm".into(),
            Digest::sha256_of(b"bash"),
        );
        a.download_size = 1 << 40;
        a.installed_size = 300;
        a.build_time = 1_713_225_600;
        a.summary = "The GNU Bourne Again shell — ünïcode".into();
        a.license = "GPL-3.0-or-later".into();
        a.vendor = "Fedora Project".into();
        a.packager = "Fedora Project".into();
        a.source_rpm = "bash-5.2-3.fc40.src.rpm".into();
        a.provides = vec![
            Dep::any("/bin/sh"),
            Dep::versioned("bash", Cmp::Eq, Evr::parse("1:5.2-3.fc40")),
            Dep::versioned("config(bash)", Cmp::Ge, Evr::parse("5.2")),
        ];
        a.requires = vec![Dep::any("(glibc or musl)"), Dep::any("")];
        a.conflicts = vec![Dep::versioned("x", Cmp::Lt, Evr::parse("1"))];
        a.obsoletes = vec![Dep::versioned("y", Cmp::Le, Evr::parse("2-1"))];
        a.recommends = vec![Dep::versioned("z", Cmp::Gt, Evr::parse("0:3"))];
        a.suggests = vec![Dep::any("s")];
        a.supplements = vec![Dep::any("(a and b)")];
        a.enhances = vec![Dep::any("e")];
        a.files = vec!["/usr/bin/bash".into(), "/bin/sh".into()];
        let mut b = Package::new(
            Nevra::new("filesystem", Evr::parse("3.18-8"), "noarch"),
            7,
            String::new(),
            Digest::new(Algorithm::Sha512, &"ab".repeat(64)).unwrap(),
        );
        b.vendor = "Fedora Project".into();
        vec![a, b]
    }

    #[test]
    fn round_trips_every_field_and_shares_strings() {
        let pkgs = sample();
        let bytes = encode(&pkgs);
        let mut back = Vec::new();
        decode(&bytes, 2, 7, |p| back.push(p)).unwrap();
        assert_eq!(back, pkgs);
        // "Fedora Project" appears three times but is stored once.
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("Fedora Project").count(), 1);
        // The repo index comes from the reader.
        back.clear();
        decode(&bytes, 2, 0, |p| back.push(p)).unwrap();
        assert!(back.iter().all(|p| p.repo == 0));
    }

    #[test]
    fn a_chunk_shares_each_dependency_name_and_version() {
        let lib = || Dep::versioned("libc.so.6", Cmp::Ge, Evr::parse("2.39"));
        let mut pkgs = sample();
        pkgs[0].requires.push(lib());
        pkgs[1].requires = vec![lib(), Dep::any("libc.so.6")];
        let mut back = Vec::new();
        decode(&encode(&pkgs), 2, 7, |p| back.push(p)).unwrap();
        assert_eq!(back, pkgs);
        let (a, b) = (back[0].requires.last().unwrap(), &back[1].requires[0]);
        assert!(Arc::ptr_eq(&a.name, &b.name));
        assert!(Arc::ptr_eq(&a.name, &back[1].requires[1].name));
        let (ra, rb) = (a.range.as_ref().unwrap(), b.range.as_ref().unwrap());
        assert!(Arc::ptr_eq(&ra.1, &rb.1));
    }

    #[test]
    fn refuses_truncated_extended_or_miscounted_input() {
        let bytes = encode(&sample());
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut], 2, 0, drop), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 2, 0, drop), None);
        assert_eq!(decode(&bytes, 1, 0, drop), None);
        assert_eq!(decode(&bytes, 3, 0, drop), None);
        // A string id past the table.
        assert_eq!(decode(&[1, 1, b'a', 5], 1, 0, drop), None);
        // Invalid UTF-8 in the table.
        assert_eq!(decode(&[1, 1, 0xff], 0, 0, drop), None);
    }
}
