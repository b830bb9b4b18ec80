//! The binary form of a run of [`Package`]s in the parsed-metadata cache.
//!
//! A chunk is a string table and a table of dependency versions followed by
//! the packages, whose strings and dependency versions are table ids:
//!
//! ```text
//! u32 string count n, n + 1 u32 offsets into the text, the strings' bytes
//! u32 version count, per version 16 bytes: u64 epoch, u32 version id,
//!   u32 release id + 1 (0 = none)
//! per package: fields in declaration order, integers as LEB128 varints,
//! strings as table ids, optional strings as id + 1 (0 = none), lists as a
//! count and their items, a dependency as its name's id and its range as
//! 0 (none) or 1 + the comparison, then the version's id
//! ```
//! (all fixed-width integers little-endian).
//!
//! Why not serde (postcard, which this replaced): a repository repeats the
//! same few thousand strings (versions, `MIT`, `Fedora Project`, common
//! library provides) across hundreds of thousands of fields. With a table
//! each distinct string is stored once per chunk, which shrinks the file.
//!
//! Why fixed-width tables: a package is decoded alone, straight from the
//! mapped cache file, when the resolver first looks at it ([`View::package_at`],
//! see `store.rs`). Its string and version ids are then two reads each,
//! and nothing of the chunk is parsed or held beyond the bytes it uses.
//! [`View::skim_at`] walks a package the same way without building it, to
//! validate every package when the entry is loaded and to collect what the
//! resolver needs of all of them (name, arch, what it obsoletes, file
//! dependencies). Every package field is spelled out in `put_package`,
//! `get_package` and `skim_package`; `get_package` builds a struct literal
//! (no `..`), so adding a field to [`Package`] does not compile until it is
//! decoded here, and the round-trip test checks that it is encoded too.

use std::collections::HashMap;
use std::sync::Arc;

use super::Package;
use crate::digest::{Algorithm, Digest};
use crate::package::{Cmp, Dep, Evr, Nevra};

const CMPS: [Cmp; 5] = [Cmp::Lt, Cmp::Le, Cmp::Eq, Cmp::Ge, Cmp::Gt];

/// Encode `packages` (their `repo` is not stored: the reader sets it).
pub fn encode(packages: &[Package]) -> Vec<u8> {
    let mut w = Writer::default();
    for p in packages {
        put_package(&mut w, p);
    }
    let text: usize = w.strings.iter().map(|s| s.len()).sum();
    let mut out =
        Vec::with_capacity(w.body.len() + w.evr_table.len() + text + 4 * w.strings.len() + 12);
    out.extend_from_slice(&(w.strings.len() as u32).to_le_bytes());
    let mut at = 0u32;
    out.extend_from_slice(&at.to_le_bytes());
    for s in &w.strings {
        at += s.len() as u32;
        out.extend_from_slice(&at.to_le_bytes());
    }
    for s in &w.strings {
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(w.evr_ids.len() as u32).to_le_bytes());
    out.extend_from_slice(&w.evr_table);
    out.extend_from_slice(&w.body);
    out
}

/// Decode `count` packages, with `repo` set, handing each to `put` in
/// order; `None` if `bytes` are not exactly that (truncated, corrupt,
/// trailing bytes), and then some packages may have been handed over.
pub fn decode(bytes: &[u8], count: usize, repo: usize, mut put: impl FnMut(Package)) -> Option<()> {
    let view = View::new(bytes)?;
    let mut at = view.body;
    for _ in 0..count {
        let (p, next) = view.package_at(at, repo)?;
        put(p);
        at = next;
    }
    (at == bytes.len()).then_some(())
}

/// What [`View::skim_at`] reads of a package without building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skimmed<'b> {
    pub name: &'b str,
    pub arch: &'b str,
    pub has_supplements: bool,
    /// Names in its `Obsoletes`.
    pub obsoletes: Vec<&'b str>,
    /// Names of its `Requires`, `Recommends` and `Supplements` (file
    /// dependencies are looked for in them).
    pub wants: Vec<&'b str>,
    /// Names of its `Provides`, and its files.
    pub provides: Vec<&'b str>,
    pub files: Vec<&'b str>,
}

/// A chunk's tables, read in place: nothing is copied or allocated.
#[derive(Debug, Clone, Copy)]
pub struct View<'b> {
    bytes: &'b [u8],
    n_strings: usize,
    /// Where the `n + 1` string offsets start.
    offsets: usize,
    text: usize,
    text_len: usize,
    n_evrs: usize,
    evrs: usize,
    /// Where the first package starts.
    pub body: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

impl<'b> View<'b> {
    /// The tables of the chunk `bytes`; `None` if their sizes do not fit.
    pub fn new(bytes: &'b [u8]) -> Option<View<'b>> {
        let n_strings = u32_at(bytes, 0)? as usize;
        let offsets = 4usize;
        let text = offsets.checked_add(n_strings.checked_add(1)?.checked_mul(4)?)?;
        let text_len = u32_at(bytes, text.checked_sub(4)?)? as usize;
        let evr_count_at = text.checked_add(text_len)?;
        let n_evrs = u32_at(bytes, evr_count_at)? as usize;
        let evrs = evr_count_at + 4;
        let body = evrs.checked_add(n_evrs.checked_mul(16)?)?;
        (body <= bytes.len()).then_some(View {
            bytes,
            n_strings,
            offsets,
            text,
            text_len,
            n_evrs,
            evrs,
            body,
        })
    }

    fn string(&self, id: u64) -> Option<&'b str> {
        let id = usize::try_from(id).ok()?;
        if id >= self.n_strings {
            return None;
        }
        let at = self.offsets + 4 * id;
        let (a, b) = (
            u32_at(self.bytes, at)? as usize,
            u32_at(self.bytes, at + 4)? as usize,
        );
        if a > b || b > self.text_len {
            return None;
        }
        std::str::from_utf8(&self.bytes[self.text + a..self.text + b]).ok()
    }

    /// Epoch, version, release of dependency version `id`.
    fn evr(&self, id: u64) -> Option<(u64, &'b str, Option<&'b str>)> {
        let id = usize::try_from(id).ok()?;
        if id >= self.n_evrs {
            return None;
        }
        let at = self.evrs + 16 * id;
        let epoch = u64::from_le_bytes(self.bytes.get(at..at + 8)?.try_into().ok()?);
        let version = self.string(u64::from(u32_at(self.bytes, at + 8)?))?;
        let release = match u32_at(self.bytes, at + 12)? {
            0 => None,
            r => Some(self.string(u64::from(r - 1))?),
        };
        Some((epoch, version, release))
    }

    /// The package whose encoding starts at byte `at`, and where the next
    /// one starts.
    pub fn package_at(&self, at: usize, repo: usize) -> Option<(Package, usize)> {
        let mut d = Decoder {
            v: *self,
            r: Reader {
                bytes: self.bytes,
                at,
            },
        };
        let p = get_package(&mut d, repo)?;
        Some((p, d.r.at))
    }

    /// [`View::package_at`] without building the package: checks that it
    /// decodes, and returns what the resolver needs of every package.
    pub fn skim_at(&self, at: usize) -> Option<(Skimmed<'b>, usize)> {
        let mut d = Decoder {
            v: *self,
            r: Reader {
                bytes: self.bytes,
                at,
            },
        };
        let s = skim_package(&mut d)?;
        Some((s, d.r.at))
    }
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
        let [epoch, version, release] = self.evr_fields(e);
        self.evr_table.extend_from_slice(&epoch.to_le_bytes());
        self.evr_table
            .extend_from_slice(&(version as u32).to_le_bytes());
        self.evr_table
            .extend_from_slice(&(release as u32).to_le_bytes());
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

impl Reader<'_> {
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
}

struct Decoder<'b> {
    v: View<'b>,
    r: Reader<'b>,
}

impl<'b> Decoder<'b> {
    fn int(&mut self) -> Option<u64> {
        self.r.varint()
    }

    fn str(&mut self) -> Option<&'b str> {
        let id = self.int()?;
        self.v.string(id)
    }

    fn opt_str(&mut self) -> Option<Option<&'b str>> {
        match self.int()? {
            0 => Some(None),
            id => Some(Some(self.v.string(id - 1)?)),
        }
    }

    fn evr(&mut self) -> Option<Evr> {
        Some(Evr {
            epoch: self.int()?,
            version: self.str()?.to_string(),
            release: self.opt_str()?.map(str::to_string),
        })
    }

    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.int()?).ok()?;
        // Every item takes at least a byte.
        (n <= self.r.bytes.len().saturating_sub(self.r.at)).then_some(n)
    }

    /// One dependency: its name and, when versioned, the comparison and
    /// the version's table id (checked).
    fn dep_parts(&mut self) -> Option<(&'b str, Option<(Cmp, u64)>)> {
        let name = self.str()?;
        let range = match self.int()? {
            0 => None,
            k => {
                let cmp = *CMPS.get(usize::try_from(k - 1).ok()?)?;
                let id = self.int()?;
                self.v.evr(id)?;
                Some((cmp, id))
            }
        };
        Some((name, range))
    }

    fn deps(&mut self) -> Option<Vec<Dep>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (name, range) = self.dep_parts()?;
            let range = match range {
                None => None,
                Some((cmp, id)) => {
                    let (epoch, version, release) = self.v.evr(id)?;
                    let evr = Evr {
                        epoch,
                        version: version.to_string(),
                        release: release.map(str::to_string),
                    };
                    Some((cmp, Arc::new(evr)))
                }
            };
            out.push(Dep {
                name: Arc::from(name),
                range,
            });
        }
        Some(out)
    }

    /// A dependency list's names, appended to `out` (or only checked).
    fn dep_names(&mut self, mut out: Option<&mut Vec<&'b str>>) -> Option<usize> {
        let n = self.len()?;
        for _ in 0..n {
            let (name, _) = self.dep_parts()?;
            if let Some(out) = out.as_mut() {
                out.push(name);
            }
        }
        Some(n)
    }

    fn checksum(&mut self) -> Option<Digest> {
        let algo = match self.int()? {
            0 => Algorithm::Sha256,
            1 => Algorithm::Sha512,
            _ => return None,
        };
        Digest::new(algo, self.str()?).ok()
    }
}

/// Field order of the format; mirrors [`put_package`].
fn get_package(d: &mut Decoder, repo: usize) -> Option<Package> {
    let nevra = Nevra {
        name: d.str()?.to_string(),
        evr: d.evr()?,
        arch: d.str()?.to_string(),
    };
    let location = d.str()?.to_string();
    let checksum = d.checksum()?;
    Some(Package {
        nevra,
        repo,
        location,
        checksum,
        download_size: d.int()?,
        installed_size: d.int()?,
        build_time: d.int()?,
        summary: d.str()?.to_string(),
        license: d.str()?.to_string(),
        vendor: d.str()?.to_string(),
        packager: d.str()?.to_string(),
        source_rpm: d.str()?.to_string(),
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
                files.push(d.str()?.to_string());
            }
            files
        },
    })
}

/// Field order of the format; mirrors [`get_package`], reading every
/// field and checking it the same way, building nothing but [`Skimmed`].
fn skim_package<'b>(d: &mut Decoder<'b>) -> Option<Skimmed<'b>> {
    let name = d.str()?;
    d.int()?;
    d.str()?;
    d.opt_str()?;
    let arch = d.str()?;
    d.str()?; // location
    d.checksum()?;
    for _ in 0..3 {
        d.int()?; // sizes, build time
    }
    for _ in 0..5 {
        d.str()?; // summary, license, vendor, packager, source rpm
    }
    let mut wants = Vec::new();
    let mut obsoletes = Vec::new();
    let mut provides = Vec::new();
    d.dep_names(Some(&mut provides))?;
    d.dep_names(Some(&mut wants))?; // requires
    d.dep_names(None)?; // conflicts
    d.dep_names(Some(&mut obsoletes))?;
    d.dep_names(Some(&mut wants))?; // recommends
    d.dep_names(None)?; // suggests
    let has_supplements = d.dep_names(Some(&mut wants))? > 0;
    d.dep_names(None)?; // enhances
    let n = d.len()?;
    let mut files = Vec::with_capacity(n);
    for _ in 0..n {
        files.push(d.str()?);
    }
    Some(Skimmed {
        name,
        arch,
        has_supplements,
        obsoletes,
        wants,
        provides,
        files,
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
    fn round_trips_every_field_and_stores_strings_once() {
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
    fn packages_decode_alone_and_skim_to_what_they_hold() {
        let mut pkgs = sample();
        pkgs[1].requires = vec![Dep::versioned("libc.so.6", Cmp::Ge, Evr::parse("2.39"))];
        pkgs[1].obsoletes = vec![Dep::any("old")];
        let bytes = encode(&pkgs);
        let view = View::new(&bytes).unwrap();
        let (first, second_at) = view.package_at(view.body, 7).unwrap();
        let (second, end) = view.package_at(second_at, 7).unwrap();
        assert_eq!([first, second], [pkgs[0].clone(), pkgs[1].clone()]);
        assert_eq!(end, bytes.len());
        // Alone: from its own offset, nothing decoded before it.
        assert_eq!(view.package_at(second_at, 7).unwrap().0, pkgs[1]);
        let (a, next) = view.skim_at(view.body).unwrap();
        assert_eq!(next, second_at);
        assert_eq!(
            a,
            Skimmed {
                name: "bash",
                arch: "x86_64",
                has_supplements: true,
                obsoletes: vec!["y"],
                wants: vec!["(glibc or musl)", "", "z", "(a and b)"],
                provides: vec!["/bin/sh", "bash", "config(bash)"],
                files: vec!["/usr/bin/bash", "/bin/sh"],
            }
        );
        let (b, end) = view.skim_at(second_at).unwrap();
        assert_eq!(end, bytes.len());
        assert_eq!(
            (b.name, b.arch, b.has_supplements, b.obsoletes, b.wants),
            (
                "filesystem",
                "noarch",
                false,
                vec!["old"],
                vec!["libc.so.6"]
            )
        );
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
        // One string "a", no versions, then a package naming string 5.
        let table = |text: &[u8]| {
            let mut t = vec![1, 0, 0, 0, 0, 0, 0, 0, text.len() as u8, 0, 0, 0];
            t.extend_from_slice(text);
            t.extend_from_slice(&[0, 0, 0, 0]);
            t
        };
        let mut past = table(b"a");
        past.push(5);
        assert_eq!(decode(&past, 1, 0, drop), None);
        // Invalid UTF-8 in the table.
        let mut bad = table(&[0xff]);
        bad.push(0);
        assert_eq!(decode(&bad, 1, 0, drop), None);
        // A string offset past the text.
        let mut long = table(b"a");
        long[8] = 9;
        assert_eq!(decode(&long, 0, 0, drop), None);
        // Skimming refuses what decoding refuses.
        let view = View::new(&past).unwrap();
        assert!(view.skim_at(view.body).is_none());
    }
}
