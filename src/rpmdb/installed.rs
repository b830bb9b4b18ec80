//! The header rpm stores for an installed package: the package's main
//! header with the tags an install appends outside its immutable region.
//!
//! rpm (lib/package.c `headerMergeLegacySigs`, lib/relocation.c
//! `addPrefixes`, lib/psm.c `dbAdd`) adds, in this order of events:
//! the signature header's tags under their main-header numbers (SIGMD5,
//! SHA1HEADER, SHA256HEADER, sizes, signatures), INSTPREFIXES for a
//! relocatable package, then FILESTATES, INSTALLTID, INSTALLTIME and
//! INSTALLCOLOR. `rpm -V` needs FILESTATES: without it every file reads
//! "(no state)". The bytes follow `headerExport` (lib/header.c): the region's
//! index entries and data unchanged, then the added entries sorted by tag,
//! each aligned to its type's size; rpm verifies SHA1HEADER/SHA256HEADER
//! against the unchanged region when it reads the database.
//!
//! File states other than normal and not-installed are not produced:
//! REPLACED needs `--replacefiles` and WRONGCOLOR a multilib pair sharing a
//! path, and minibuild refuses differing files on one path; NETSHARED needs
//! `%_netsharedpath`. rpm ≥ 6 also merges SHA3-256 and OpenPGP signature
//! tags; the list here is rpm 4.16–4.20's.

use std::collections::BTreeSet;

/// rpm's `rpmfileState` values (include/rpm/rpmfiles.h).
pub const FILE_STATE_NORMAL: u8 = 0;
/// A file rpm skipped on purpose (`--nodocs`, `%_install_langs`,
/// `--excludepath`): `rpm -V` does not check it.
pub const FILE_STATE_NOT_INSTALLED: u8 = 2;

/// Install-time values common to every package of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Install {
    /// INSTALLTID: the image's SOURCE_DATE_EPOCH, so the database is
    /// reproducible. rpm given SOURCE_DATE_EPOCH does the same (lib/rpmts.c
    /// `overrideTime`) and stamps the n-th package it adds (from 0) with
    /// INSTALLTIME = SOURCE_DATE_EPOCH + n; so does [`install_entries`].
    pub time: u32,
    /// INSTALLCOLOR: rpm's `%_transaction_color` for the image's arch.
    pub color: u32,
    /// The image's byte order: rpm keys its Installtid index with the
    /// native bytes of the number (s390x is big-endian).
    pub big_endian: bool,
}

/// `%_transaction_color` (rpm's installplatform): 3 on the 64-bit
/// multilib arches, which are all the arches minibuild builds.
pub const TRANSACTION_COLOR_64: u32 = 3;

const RPM_CHAR_TYPE: u32 = 1;
const RPM_INT32_TYPE: u32 = 4;
const RPM_INT64_TYPE: u32 = 5;
const RPM_STRING_TYPE: u32 = 6;
const RPM_BIN_TYPE: u32 = 7;
const RPM_STRING_ARRAY_TYPE: u32 = 8;
const RPM_I18NSTRING_TYPE: u32 = 9;

pub const TAG_SIGMD5: u32 = 261;
pub const TAG_SHA1HEADER: u32 = 269;
pub const TAG_INSTALLTIME: u32 = 1008;
pub const TAG_FILESTATES: u32 = 1029;
pub const TAG_BASENAMES: u32 = 1117;
pub const TAG_PREFIXES: u32 = 1098;
pub const TAG_INSTPREFIXES: u32 = 1099;
pub const TAG_INSTALLCOLOR: u32 = 1127;
pub const TAG_INSTALLTID: u32 = 1128;

/// rpm 4.18's `xlateTags`: signature tag, main-header tag, its type and
/// the count it must have (0: any).
const SIG_TAGS: &[(u32, u32, u32, u32)] = &[
    (1000, 257, RPM_INT32_TYPE, 1),        // SIZE → SIGSIZE
    (1002, 259, RPM_BIN_TYPE, 0),          // PGP → SIGPGP
    (1004, TAG_SIGMD5, RPM_BIN_TYPE, 16),  // MD5 → SIGMD5
    (1005, 262, RPM_BIN_TYPE, 0),          // GPG → SIGGPG
    (1007, 1046, RPM_INT32_TYPE, 1),       // PAYLOADSIZE → ARCHIVESIZE
    (274, 5090, RPM_STRING_ARRAY_TYPE, 0), // FILESIGNATURES
    (275, 5091, RPM_INT32_TYPE, 1),        // FILESIGNATURELENGTH
    (276, 276, RPM_STRING_ARRAY_TYPE, 0),  // VERITYSIGNATURES
    (277, 277, RPM_INT32_TYPE, 1),         // VERITYSIGNATUREALGO
    (TAG_SHA1HEADER, TAG_SHA1HEADER, RPM_STRING_TYPE, 1),
    (273, 273, RPM_STRING_TYPE, 1), // SHA256HEADER
    (267, 267, RPM_BIN_TYPE, 0),    // DSAHEADER
    (268, 268, RPM_BIN_TYPE, 0),    // RSAHEADER
    (270, 270, RPM_INT64_TYPE, 1),  // LONGSIGSIZE
    (271, 271, RPM_INT64_TYPE, 1),  // LONGARCHIVESIZE
];

/// One index entry with its data bytes (big-endian, as stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub tag: u32,
    pub kind: u32,
    pub count: u32,
    pub data: Vec<u8>,
}

/// A header blob (`il`, `dl`, index, data; no magic), read only as far as
/// appending to it needs.
#[derive(Debug)]
pub struct RawHeader<'a> {
    blob: &'a [u8],
    il: usize,
}

impl<'a> RawHeader<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self, String> {
        let word = |at: usize| -> Option<u32> {
            blob.get(at..at + 4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        };
        let (il, dl) = match (word(0), word(4)) {
            (Some(il), Some(dl)) => (il as usize, dl as usize),
            _ => return Err("shorter than a header intro".into()),
        };
        if il == 0 || 8 + 16 * il + dl != blob.len() {
            return Err(format!(
                "{il} entries and {dl} data bytes do not make its {} bytes",
                blob.len()
            ));
        }
        Ok(RawHeader { blob, il })
    }

    fn data(&self) -> &'a [u8] {
        &self.blob[8 + 16 * self.il..]
    }

    /// `(tag, type, offset, count)` of index entry `i`.
    fn info(&self, i: usize) -> (u32, u32, usize, u32) {
        let at = 8 + 16 * i;
        let w = |k: usize| {
            u32::from_be_bytes(self.blob[at + 4 * k..at + 4 * k + 4].try_into().unwrap())
        };
        (w(0), w(1), w(2) as usize, w(3))
    }

    pub fn has(&self, tag: u32) -> bool {
        (0..self.il).any(|i| self.info(i).0 == tag)
    }

    /// The entry for `tag` with its data, if present and well formed; the
    /// last one, as an entry appended after the region replaces the
    /// region's own on import.
    pub fn get(&self, tag: u32) -> Option<RawEntry> {
        let i = (0..self.il).rev().find(|&i| self.info(i).0 == tag)?;
        let (tag, kind, offset, count) = self.info(i);
        let len = data_len(kind, count, self.data().get(offset..)?)?;
        Some(RawEntry {
            tag,
            kind,
            count,
            data: self.data()[offset..offset + len].to_vec(),
        })
    }

    /// How many strings a string-array tag holds (0 if absent).
    pub fn count(&self, tag: u32) -> u32 {
        self.get(tag).map_or(0, |e| e.count)
    }
}

/// Bytes an entry of `kind` with `count` items takes at the start of
/// `data`; `None` if it runs past the end or the type is unknown.
fn data_len(kind: u32, count: u32, data: &[u8]) -> Option<usize> {
    let count = count as usize;
    let fixed = |size: usize| count.checked_mul(size).filter(|&n| n <= data.len());
    match kind {
        RPM_CHAR_TYPE | 2 | RPM_BIN_TYPE => fixed(1),
        3 => fixed(2),
        RPM_INT32_TYPE => fixed(4),
        RPM_INT64_TYPE => fixed(8),
        RPM_STRING_TYPE if count == 1 => strings_len(data, 1),
        RPM_STRING_ARRAY_TYPE | RPM_I18NSTRING_TYPE => strings_len(data, count),
        _ => None,
    }
}

fn strings_len(data: &[u8], count: usize) -> Option<usize> {
    let mut len = 0;
    for _ in 0..count {
        len += data.get(len..)?.iter().position(|&b| b == 0)? + 1;
    }
    Some(len)
}

/// rpm's `typeSizes`: the alignment of a type's data.
fn alignment(kind: u32) -> usize {
    match kind {
        3 => 2,
        RPM_INT32_TYPE => 4,
        RPM_INT64_TYPE => 8,
        _ => 1,
    }
}

/// The entries an install adds to `main`, the `nth` package added (from
/// 0), from `sig` (the package's signature header) and `install`, sorted by
/// tag. `not_installed` are the header's file indices left out on purpose.
pub fn install_entries(
    main: &RawHeader,
    sig: Option<&RawHeader>,
    not_installed: &BTreeSet<usize>,
    install: &Install,
    nth: u32,
) -> Vec<RawEntry> {
    let mut added = Vec::new();
    if let Some(sig) = sig {
        for &(stag, xtag, kind, count) in SIG_TAGS {
            // rpm refuses a package whose main header already has a
            // translated tag; the copy in the main header stands here.
            if main.has(xtag) {
                continue;
            }
            let Some(e) = sig.get(stag) else { continue };
            // rpm's own checks: the expected type and count, or it stops.
            if e.kind != kind || e.count == 0 || (count != 0 && e.count != count) {
                continue;
            }
            added.push(RawEntry { tag: xtag, ..e });
        }
    }
    if !main.has(TAG_INSTPREFIXES) {
        if let Some(prefixes) = main.get(TAG_PREFIXES) {
            added.push(RawEntry {
                tag: TAG_INSTPREFIXES,
                ..prefixes
            });
        }
    }
    let files = main.count(TAG_BASENAMES);
    if files > 0 {
        let states = (0..files as usize)
            .map(|i| {
                if not_installed.contains(&i) {
                    FILE_STATE_NOT_INSTALLED
                } else {
                    FILE_STATE_NORMAL
                }
            })
            .collect();
        added.push(RawEntry {
            tag: TAG_FILESTATES,
            kind: RPM_CHAR_TYPE,
            count: files,
            data: states,
        });
    }
    let int32 = |tag, v: u32| RawEntry {
        tag,
        kind: RPM_INT32_TYPE,
        count: 1,
        data: v.to_be_bytes().to_vec(),
    };
    added.push(int32(TAG_INSTALLTID, install.time));
    added.push(int32(TAG_INSTALLTIME, install.time.saturating_add(nth)));
    added.push(int32(TAG_INSTALLCOLOR, install.color));
    // Added entries sort by tag (`offsetCmp`); on import, an added entry
    // replaces a region entry with the same tag.
    added.sort_by_key(|e| e.tag);
    added
}

/// `main` with `added` appended as `headerExport` writes it.
pub fn append(main: &RawHeader, added: &[RawEntry]) -> Vec<u8> {
    let mut index = main.blob[8..8 + 16 * main.il].to_vec();
    let mut data = main.data().to_vec();
    for e in added {
        let align = alignment(e.kind);
        data.resize(data.len().div_ceil(align) * align, 0);
        for word in [e.tag, e.kind, data.len() as u32, e.count] {
            index.extend_from_slice(&word.to_be_bytes());
        }
        data.extend_from_slice(&e.data);
    }
    let il = main.il + added.len();
    let mut out = Vec::with_capacity(8 + index.len() + data.len());
    out.extend_from_slice(&(il as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u32, kind: u32, count: u32, data: &[u8]) -> RawEntry {
        RawEntry {
            tag,
            kind,
            count,
            data: data.to_vec(),
        }
    }

    /// A header holding HEADERI18NTABLE `C` and then `entries`.
    fn header(entries: &[RawEntry]) -> Vec<u8> {
        let mut base = Vec::new();
        for w in [1u32, 2, 100, RPM_STRING_ARRAY_TYPE, 0, 1] {
            base.extend_from_slice(&w.to_be_bytes());
        }
        base.extend_from_slice(b"C\0");
        append(&RawHeader::parse(&base).unwrap(), entries)
    }

    const INSTALL: Install = Install {
        time: 100,
        color: TRANSACTION_COLOR_64,
        big_endian: false,
    };

    #[test]
    fn parse_refuses_what_is_not_a_header_without_panicking() {
        let good = header(&[entry(TAG_PREFIXES, RPM_STRING_ARRAY_TYPE, 1, b"/opt\0")]);
        for len in 0..good.len() {
            assert!(RawHeader::parse(&good[..len]).is_err(), "{len} bytes");
        }
        assert!(RawHeader::parse(&good).is_ok());
        let mut zero = good.clone();
        zero[0..4].fill(0);
        assert!(RawHeader::parse(&zero).is_err(), "no entries");
        // An entry pointing past the data, or whose strings never end, is
        // simply absent.
        let mut wild = good.clone();
        wild[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(RawHeader::parse(&wild).unwrap().get(TAG_PREFIXES), None);
        let mut endless = good.clone();
        *endless.last_mut().unwrap() = b'x';
        assert_eq!(RawHeader::parse(&endless).unwrap().get(TAG_PREFIXES), None);
    }

    #[test]
    fn appended_entries_are_aligned_to_their_type() {
        let blob = header(&[
            entry(1, RPM_CHAR_TYPE, 3, b"abc"),
            entry(2, RPM_INT32_TYPE, 1, &7u32.to_be_bytes()),
            entry(3, RPM_BIN_TYPE, 1, b"z"),
            entry(4, RPM_INT64_TYPE, 1, &9u64.to_be_bytes()),
        ]);
        let h = RawHeader::parse(&blob).unwrap();
        let offset = |i: usize| h.info(i).2;
        // `C\0` takes 2 bytes; then 3 chars; then an int32 at 8.
        assert_eq!([offset(1), offset(2), offset(3), offset(4)], [2, 8, 12, 16]);
        assert_eq!(h.get(2).unwrap().data, 7u32.to_be_bytes());
        assert_eq!(h.get(4).unwrap().data, 9u64.to_be_bytes());
    }

    #[test]
    fn file_states_mark_what_was_left_out() {
        let names = b"a\0b\0c\0";
        let main = header(&[entry(TAG_BASENAMES, RPM_STRING_ARRAY_TYPE, 3, names)]);
        let main = RawHeader::parse(&main).unwrap();
        let added = install_entries(&main, None, &BTreeSet::from([1]), &INSTALL, 4);
        let states = added.iter().find(|e| e.tag == TAG_FILESTATES).unwrap();
        assert_eq!(
            states.data,
            [
                FILE_STATE_NORMAL,
                FILE_STATE_NOT_INSTALLED,
                FILE_STATE_NORMAL
            ]
        );
        assert_eq!(states.count, 3);
        let time = added.iter().find(|e| e.tag == TAG_INSTALLTIME).unwrap();
        assert_eq!(time.data, 104u32.to_be_bytes(), "the fifth package added");
        let tags: Vec<u32> = added.iter().map(|e| e.tag).collect();
        assert_eq!(
            tags,
            [
                TAG_INSTALLTIME,
                TAG_FILESTATES,
                TAG_INSTALLCOLOR,
                TAG_INSTALLTID
            ],
            "sorted by tag"
        );
        // A package without files gets no FILESTATES, as in rpm.
        let empty = header(&[]);
        let added = install_entries(
            &RawHeader::parse(&empty).unwrap(),
            None,
            &BTreeSet::new(),
            &INSTALL,
            0,
        );
        assert!(added.iter().all(|e| e.tag != TAG_FILESTATES));
    }

    #[test]
    fn signature_tags_are_merged_as_rpm_merges_them() {
        let md5 = [7u8; 16];
        let sig = header(&[
            entry(TAG_SHA1HEADER, RPM_STRING_TYPE, 1, b"ab12\0"),
            entry(1000, RPM_INT32_TYPE, 1, &5u32.to_be_bytes()),
            entry(1004, RPM_BIN_TYPE, 16, &md5),
            // Wrong type for PAYLOADSIZE: rpm refuses it, it stays out.
            entry(1007, RPM_STRING_TYPE, 1, b"9\0"),
            // Already in the main header: the main header's stands.
            entry(271, RPM_INT64_TYPE, 1, &1u64.to_be_bytes()),
        ]);
        let main = header(&[
            entry(271, RPM_INT64_TYPE, 1, &2u64.to_be_bytes()),
            entry(TAG_PREFIXES, RPM_STRING_ARRAY_TYPE, 1, b"/opt\0"),
        ]);
        let (main, sig) = (
            RawHeader::parse(&main).unwrap(),
            RawHeader::parse(&sig).unwrap(),
        );
        let added = install_entries(&main, Some(&sig), &BTreeSet::new(), &INSTALL, 0);
        let get = |tag| added.iter().find(|e| e.tag == tag).map(|e| e.data.clone());
        assert_eq!(get(TAG_SIGMD5), Some(md5.to_vec()));
        assert_eq!(get(257), Some(5u32.to_be_bytes().to_vec()), "SIGSIZE");
        assert_eq!(get(TAG_SHA1HEADER), Some(b"ab12\0".to_vec()));
        assert_eq!(get(1046), None);
        assert_eq!(get(271), None);
        // A relocatable package installed in place: INSTPREFIXES = PREFIXES.
        assert_eq!(get(TAG_INSTPREFIXES), Some(b"/opt\0".to_vec()));
        // The merged header reads back.
        let blob = append(&main, &added);
        let h = RawHeader::parse(&blob).unwrap();
        assert_eq!(h.get(TAG_SIGMD5).unwrap().data, md5);
        assert_eq!(h.get(271).unwrap().data, 2u64.to_be_bytes());
    }
}
