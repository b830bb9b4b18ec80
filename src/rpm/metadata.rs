//! Reading an RPM's lead, signature header and main header without trusting
//! the bytes.
//!
//! The `rpm` crate (0.30) indexes its header store with each entry's
//! offset before checking it (`header.rs:106` and `:111`,
//! `&bytes[entry.offset as usize..]`): an entry whose offset is negative or
//! past the end of the store panics instead of returning an error. So every
//! header is read here first and checked the way rpm's own `headerVerify`
//! does — sizes within rpm's limits, every entry's type known and its
//! offset and data inside the store — before the crate sees it; the crate's
//! parse runs under `catch_unwind` as well, so a shape this check misses
//! still becomes an error, not an abort of the whole build.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

use thiserror::Error;

const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// rpm's limits (`hdrchkTags`, `hdrchkData` in lib/header.c).
const MAX_ENTRIES: u32 = 0xffff;
const MAX_STORE: u32 = 0x0fff_ffff;

/// Which of the two headers of an .rpm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Signature,
    Main,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Section::Signature => "signature header",
            Section::Main => "main header",
        })
    }
}

/// Why the first bytes of a file are not a readable RPM header.
#[derive(Debug, Error)]
pub enum HeaderError {
    #[error("cannot read the RPM lead and headers: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an RPM file (the first 4 bytes are not the lead magic ed ab ee db)")]
    NoLead,
    #[error("{0}: no header magic (8e ad e8 01)")]
    NoMagic(Section),
    #[error("{section}: {entries} entries and {store} bytes of data exceed rpm's limits ({MAX_ENTRIES} entries, {MAX_STORE} bytes)")]
    TooLarge {
        section: Section,
        entries: u32,
        store: u32,
    },
    #[error("{section}: entry {index} (tag {tag}) {what}")]
    Entry {
        section: Section,
        index: u32,
        tag: u32,
        what: String,
    },
    #[error("{0}")]
    Parse(#[from] ::rpm::Error),
    #[error("the rpm crate panicked on this header ({0}); please report the package")]
    Panicked(String),
}

/// Lead, signature and main header read from `input`, which is left at the
/// start of the payload. Damage is an error, never a panic.
pub fn read_metadata(input: &mut impl Read) -> Result<::rpm::PackageMetadata, HeaderError> {
    let mut bytes = vec![0u8; LEAD_LEN];
    input.read_exact(&mut bytes)?;
    if bytes[..4] != LEAD_MAGIC {
        return Err(HeaderError::NoLead);
    }
    let sig_len = read_section(input, &mut bytes, Section::Signature)?;
    // The signature header is padded to a multiple of 8 bytes.
    let padding = (8 - sig_len % 8) % 8;
    let at = bytes.len();
    bytes.resize(at + padding, 0);
    input.read_exact(&mut bytes[at..])?;
    read_section(input, &mut bytes, Section::Main)?;
    parse_checked(&bytes)
}

/// Appends one header (intro, index, store) from `input` to `bytes` after
/// checking it; returns its length.
fn read_section(
    input: &mut impl Read,
    bytes: &mut Vec<u8>,
    section: Section,
) -> Result<usize, HeaderError> {
    let start = bytes.len();
    bytes.resize(start + 16, 0);
    input.read_exact(&mut bytes[start..])?;
    let intro = &bytes[start..];
    if intro[..4] != HEADER_MAGIC {
        return Err(HeaderError::NoMagic(section));
    }
    let entries = be32(&intro[8..12]);
    let store = be32(&intro[12..16]);
    if entries > MAX_ENTRIES || store > MAX_STORE {
        return Err(HeaderError::TooLarge {
            section,
            entries,
            store,
        });
    }
    let len = 16 + 16 * entries as usize + store as usize;
    bytes.resize(start + len, 0);
    input.read_exact(&mut bytes[start + 16..])?;
    check_entries(&bytes[start..], section)?;
    Ok(len)
}

/// Every index entry of the header `h` (intro included) has a known type
/// and its data inside the store.
pub fn check_entries(h: &[u8], section: Section) -> Result<(), HeaderError> {
    let entries = be32(&h[8..12]) as usize;
    let index = &h[16..16 + 16 * entries];
    let store = &h[16 + 16 * entries..];
    for (i, e) in index.chunks_exact(16).enumerate() {
        let (tag, kind, offset, count) = (
            be32(&e[0..4]),
            be32(&e[4..8]),
            be32(&e[8..12]),
            be32(&e[12..16]),
        );
        let fail = |what: String| HeaderError::Entry {
            section,
            index: i as u32,
            tag,
            what,
        };
        // The offset is a signed 32-bit number in the format.
        if offset as i32 as i64 > store.len() as i64 || (offset as i32) < 0 {
            return Err(fail(format!(
                "has data offset {} outside its {}-byte store",
                offset as i32,
                store.len()
            )));
        }
        let data = &store[offset as usize..];
        let width = match kind {
            0 => Some(0),         // NULL
            1 | 2 | 7 => Some(1), // CHAR, INT8, BIN
            3 => Some(2),         // INT16
            4 => Some(4),         // INT32
            5 => Some(8),         // INT64
            6 | 8 | 9 => None,    // STRING, STRING_ARRAY, I18NSTRING
            _ => return Err(fail(format!("has unknown data type {kind}"))),
        };
        match width {
            Some(w) => {
                if (count as u64) * w > data.len() as u64 {
                    return Err(fail(format!(
                        "claims {count} items of {w} bytes at offset {offset}, past the end of its {}-byte store",
                        store.len()
                    )));
                }
            }
            None => {
                if kind == 6 && count != 1 {
                    return Err(fail(format!("is a string with count {count} (must be 1)")));
                }
                let terminated = data
                    .iter()
                    .filter(|&&b| b == 0)
                    .take(count as usize)
                    .count();
                if terminated < count as usize {
                    return Err(fail(format!(
                        "claims {count} strings at offset {offset}, but only {terminated} end inside its {}-byte store",
                        store.len()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The crate's parse of checked bytes, with any panic turned into an error.
fn parse_checked(bytes: &[u8]) -> Result<::rpm::PackageMetadata, HeaderError> {
    match catch_unwind(AssertUnwindSafe(|| {
        ::rpm::PackageMetadata::parse(&mut &bytes[..])
    })) {
        Ok(parsed) => Ok(parsed?),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(HeaderError::Panicked(message.to_string()))
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package built by the crate: (whole file, offset of the main header).
    fn package() -> (Vec<u8>, usize) {
        let pkg = ::rpm::PackageBuilder::new("h", "1.0", "MIT", "x86_64", "h")
            .with_file_contents("x", ::rpm::FileOptions::new("/usr/bin/h"))
            .unwrap()
            .build()
            .unwrap();
        let mut bytes = Vec::new();
        pkg.write(&mut bytes).unwrap();
        let sig = 16 + 16 * be32(&bytes[104..108]) as usize + be32(&bytes[108..112]) as usize;
        (bytes, LEAD_LEN + sig.div_ceil(8) * 8)
    }

    /// Sets the offset field of entry `i` of the header at `at`.
    fn set_offset(bytes: &mut [u8], at: usize, i: usize, offset: i32) {
        let field = at + 16 + 16 * i + 8;
        bytes[field..field + 4].copy_from_slice(&offset.to_be_bytes());
    }

    #[test]
    fn reads_a_good_package_and_stops_at_the_payload() {
        let (bytes, main) = package();
        let mut input = &bytes[..];
        let meta = read_metadata(&mut input).unwrap();
        assert_eq!(meta.get_name().unwrap(), "h");
        let header_len =
            16 + 16 * be32(&bytes[main + 8..]) as usize + be32(&bytes[main + 12..]) as usize;
        assert_eq!(input.len(), bytes.len() - main - header_len);
    }

    /// The upstream bug (rpm 0.30.2, `Header::parse_header`): an index entry
    /// whose offset is past the end of the store, or negative, panics at
    /// `&bytes[entry.offset as usize..]` ("range start index N out of range
    /// for slice of length M"). Each entry of both headers, both shapes: the
    /// crate alone panics (while it does, this module is needed), and
    /// `read_metadata` names the entry instead.
    #[test]
    fn an_entry_offset_outside_the_store_is_an_error_not_a_panic() {
        let (good, main) = package();
        let sig_entries = be32(&good[104..108]) as usize;
        let main_entries = be32(&good[main + 8..]) as usize;
        let headers = [
            (LEAD_LEN, sig_entries, Section::Signature),
            (main, main_entries, Section::Main),
        ];
        let mut crate_panics = 0;
        for (at, entries, section) in headers {
            let store = be32(&good[at + 12..]) as i32;
            for i in 0..entries {
                for offset in [store + 1, store + 0x100, -1, i32::MIN] {
                    let mut bytes = good.clone();
                    set_offset(&mut bytes, at, i, offset);
                    let crate_result =
                        catch_unwind(|| ::rpm::PackageMetadata::parse(&mut &bytes[..]));
                    crate_panics += usize::from(crate_result.is_err());
                    match read_metadata(&mut &bytes[..]) {
                        Err(HeaderError::Entry {
                            section: s, index, ..
                        }) => {
                            assert_eq!((s, index as usize), (section, i));
                        }
                        other => panic!("{section} entry {i} offset {offset}: {other:?}"),
                    }
                }
            }
        }
        assert!(
            crate_panics > 0,
            "rpm crate no longer panics: the pre-check may be relaxed"
        );
    }

    #[test]
    fn data_running_past_the_store_is_refused() {
        let (mut bytes, main) = package();
        // Entry 1 of the main header claims 2^30 items.
        let count = main + 16 + 16 + 12;
        bytes[count..count + 4].copy_from_slice(&(1u32 << 30).to_be_bytes());
        let err = read_metadata(&mut &bytes[..]).unwrap_err().to_string();
        assert!(err.starts_with("main header: entry 1 (tag"), "{err}");
        assert!(
            err.contains("past the end") || err.contains("strings") || err.contains("count"),
            "{err}"
        );
    }

    #[test]
    fn absurd_sizes_and_bad_magic_are_refused_before_reading() {
        let (good, main) = package();
        let mut bytes = good.clone();
        bytes[main + 8..main + 12].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        let err = read_metadata(&mut &bytes[..]).unwrap_err();
        assert!(
            matches!(
                err,
                HeaderError::TooLarge {
                    section: Section::Main,
                    ..
                }
            ),
            "{err}"
        );
        let mut bytes = good.clone();
        bytes[LEAD_LEN] = 0;
        assert!(matches!(
            read_metadata(&mut &bytes[..]),
            Err(HeaderError::NoMagic(Section::Signature))
        ));
        assert!(matches!(
            read_metadata(&mut &b"#!/bin/sh\n"[..]),
            Err(HeaderError::Io(_))
        ));
        let mut bytes = good;
        bytes[0] = 0;
        assert!(matches!(
            read_metadata(&mut &bytes[..]),
            Err(HeaderError::NoLead)
        ));
    }
}
