//! The one reader of an .rpm file: lead, signature header and main header,
//! read and parsed once per package per build into an [`RpmFile`] that every
//! stage consumes — the identity check, signature verification (header bytes,
//! signatures, digests, then the payload through [`RpmFile::payload`]), the
//! header's dependencies and SBOM fields, unpacking (file list, scriptlets,
//! payload) and the rpm database (the raw header blobs). `minibuild plan`
//! reads only the header bytes, with [`header_end`] sizing its Range reads.
//!
//! One offset parser ([`header_end`]) and one set of limits (rpm's own,
//! [`Section::limits`]) serve both the streaming read and the ranged one.
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

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek as _, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::MetadataExt as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{Evr, Nevra};

const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// Bytes of a header's intro: magic, 4 reserved, entry count, store size.
const INTRO_LEN: usize = 16;

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

/// The most entries and store bytes one header may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub entries: u32,
    pub store: u32,
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} entries, {} bytes", self.entries, self.store)
    }
}

impl Section {
    /// rpm's own (`hdrblobVerifyLengths` in lib/header.c): 32 entries and
    /// 64 MiB for the signature header, `HEADER_TAGS_MAX` and
    /// `HEADER_DATA_MAX` for the main one. Each claim sizes the next read
    /// (from disk, or a Range request to a mirror), so it is checked first.
    pub const fn limits(self) -> Limits {
        match self {
            Section::Signature => Limits {
                entries: 32,
                store: 64 << 20,
            },
            Section::Main => Limits {
                entries: 0xffff,
                store: 0x0fff_ffff,
            },
        }
    }
}

/// Why the first bytes of a file are not a readable RPM header.
#[derive(Debug, Error)]
pub enum HeaderError {
    #[error("cannot read the RPM lead and headers: {0}")]
    Io(#[from] io::Error),
    #[error("not an RPM file (the first 4 bytes are not the lead magic ed ab ee db)")]
    NoLead,
    #[error("{section}: no header magic (8e ad e8 01) at byte {at}")]
    NoMagic { section: Section, at: usize },
    #[error("{section} is implausibly large: {entries} entries and {store} bytes of data exceed rpm's limits ({limits})")]
    TooLarge {
        section: Section,
        entries: u32,
        store: u32,
        limits: Limits,
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

/// Where the lead, the signature header and the main header of an .rpm lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The signature header, intro included, padding excluded.
    pub signature: Range<usize>,
    /// The main header, intro included; its end is where the payload starts.
    pub main: Range<usize>,
}

/// Where the main header ends, from a file's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEnd {
    /// Both headers are within the prefix (their contents not yet checked).
    At(Layout),
    /// The prefix is too short to tell: at least this many bytes are needed.
    Need(usize),
}

/// The header layout of the RPM starting with `prefix`: the one parser of
/// the intros' sizes, with rpm's limits checked before any claim is used.
pub fn header_end(prefix: &[u8]) -> Result<HeaderEnd, HeaderError> {
    let need = LEAD_LEN + INTRO_LEN;
    if prefix.len() < LEAD_MAGIC.len() {
        return Ok(HeaderEnd::Need(need));
    }
    if prefix[..4] != LEAD_MAGIC {
        return Err(HeaderError::NoLead);
    }
    let Some(sig_len) = section_len(prefix, LEAD_LEN, Section::Signature)? else {
        return Ok(HeaderEnd::Need(need));
    };
    // The signature header is padded to a multiple of 8 bytes.
    let main_at = LEAD_LEN + sig_len.div_ceil(8) * 8;
    let Some(main_len) = section_len(prefix, main_at, Section::Main)? else {
        return Ok(HeaderEnd::Need(main_at + INTRO_LEN));
    };
    Ok(HeaderEnd::At(Layout {
        signature: LEAD_LEN..LEAD_LEN + sig_len,
        main: main_at..main_at + main_len,
    }))
}

/// The length of the header whose intro is at `at` in `prefix`, or `None`
/// if the prefix ends before the intro does.
fn section_len(prefix: &[u8], at: usize, section: Section) -> Result<Option<usize>, HeaderError> {
    let Some(intro) = prefix.get(at..at + INTRO_LEN) else {
        return Ok(None);
    };
    if intro[..4] != HEADER_MAGIC {
        return Err(HeaderError::NoMagic { section, at });
    }
    let (entries, store) = (be32(&intro[8..12]), be32(&intro[12..16]));
    let limits = section.limits();
    if entries > limits.entries || store > limits.store {
        return Err(HeaderError::TooLarge {
            section,
            entries,
            store,
            limits,
        });
    }
    Ok(Some(INTRO_LEN + 16 * entries as usize + store as usize))
}

thread_local! {
    /// Headers parsed by this thread: lets a test prove that one flow
    /// parses each package once.
    static PARSED: Cell<u64> = const { Cell::new(0) };
}

/// How many RPM headers this thread has parsed (see [`Headers::read`]).
pub fn headers_parsed_on_this_thread() -> u64 {
    PARSED.with(Cell::get)
}

/// The lead, signature header and main header of one package, checked and
/// parsed, with their bytes kept as read (the rpm database stores them
/// unchanged; the signature covers them unchanged).
#[derive(Debug, Clone)]
pub struct Headers {
    bytes: Vec<u8>,
    layout: Layout,
    meta: ::rpm::PackageMetadata,
}

impl Headers {
    /// Lead, signature and main header read from `input`, which is left at
    /// the start of the payload. Damage is an error, never a panic.
    pub fn read(input: &mut impl Read) -> Result<Headers, HeaderError> {
        let mut bytes = Vec::new();
        let layout = loop {
            let need = match header_end(&bytes)? {
                HeaderEnd::At(layout) if layout.main.end <= bytes.len() => break layout,
                HeaderEnd::At(layout) => layout.main.end,
                HeaderEnd::Need(n) => n,
            };
            // Grown by what arrives, not by what the intro claims.
            let want = need - bytes.len();
            let got = input.take(want as u64).read_to_end(&mut bytes)?;
            if got < want {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        };
        check_entries(&bytes[layout.signature.clone()], Section::Signature)?;
        check_entries(&bytes[layout.main.clone()], Section::Main)?;
        let meta = parse_checked(&bytes)?;
        PARSED.with(|n| n.set(n.get() + 1));
        Ok(Headers {
            bytes,
            layout,
            meta,
        })
    }

    /// The headers at the start of `bytes` (which may go on into the payload).
    pub fn parse(bytes: &[u8]) -> Result<Headers, HeaderError> {
        Headers::read(&mut &bytes[..])
    }

    /// The headers of an installed package from its rpmdb blob (a main
    /// header without its magic, as `Packages.blob` stores it): a lead and
    /// an empty signature header are put in front, so that the one checked
    /// parser reads it. `signature_blob` is then empty.
    pub fn from_installed(blob: &[u8]) -> Result<Headers, HeaderError> {
        let mut bytes = Vec::with_capacity(LEAD_LEN + 2 * INTRO_LEN + blob.len());
        bytes.extend_from_slice(&LEAD_MAGIC);
        // Version 3.0, binary, arch 1, empty name, os 1, signature type 5.
        bytes.extend_from_slice(&[3, 0, 0, 0, 0, 1]);
        bytes.resize(LEAD_LEN - 20, 0);
        bytes.extend_from_slice(&[0, 1, 0, 5]);
        bytes.resize(LEAD_LEN, 0);
        bytes.extend_from_slice(&HEADER_MAGIC);
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&HEADER_MAGIC);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(blob);
        Headers::parse(&bytes)
    }

    /// The `rpm` crate's view of the headers.
    pub fn metadata(&self) -> &::rpm::PackageMetadata {
        &self.meta
    }

    /// The file's bytes before the payload: lead, signature header (with its
    /// padding) and main header, as read.
    fn prefix(&self) -> &[u8] {
        &self.bytes[..self.layout.main.end]
    }

    /// Where the payload starts in the file.
    pub fn payload_offset(&self) -> u64 {
        self.layout.main.end as u64
    }

    /// The signature header as rpm stores a header in its database: entry
    /// count, store size, entries and store (no magic).
    pub fn signature_blob(&self) -> &[u8] {
        &self.bytes[self.layout.signature.start + 8..self.layout.signature.end]
    }

    /// The main header as rpm stores it in its database (see
    /// [`Headers::signature_blob`]).
    pub fn main_blob(&self) -> &[u8] {
        &self.bytes[self.layout.main.start + 8..self.layout.main.end]
    }

    /// The name-epoch:version-release.arch the header carries.
    pub fn nevra(&self) -> Result<Nevra, ::rpm::Error> {
        let meta = &self.meta;
        let epoch = match meta.get_epoch() {
            Ok(e) => u64::from(e),
            Err(::rpm::Error::TagNotFound(_)) => 0,
            Err(e) => return Err(e),
        };
        Ok(Nevra::new(
            meta.get_name()?,
            Evr::new(
                epoch,
                meta.get_version()?,
                Some(meta.get_release()?.to_string()),
            ),
            meta.get_arch()?,
        ))
    }
}

/// Why an .rpm file cannot be read.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a readable RPM (lead or header)", path.display())]
    Header {
        path: PathBuf,
        #[source]
        source: HeaderError,
    },
    #[error("{} changed since its header was read (another process replaced it?)\n  hint: run the build again; if it recurs, run `minibuild cache clean`", path.display())]
    Changed { path: PathBuf },
}

/// Which file on disk: a payload is read from the file its header came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// An .rpm on disk with its headers read: opened once per build, then
/// passed to each stage. The payload is not held: [`RpmFile::payload`]
/// streams it from the same file when a stage needs it.
#[derive(Debug, Clone)]
pub struct RpmFile {
    path: PathBuf,
    headers: Headers,
    id: FileId,
}

impl RpmFile {
    /// Read and check the headers of the .rpm at `path`.
    pub fn open(path: &Path) -> Result<RpmFile, ReadError> {
        let open_err = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let id = FileId::of(&file.metadata().map_err(open_err)?);
        let headers =
            Headers::read(&mut BufReader::new(file)).map_err(|source| ReadError::Header {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(RpmFile {
            path: path.to_path_buf(),
            headers,
            id,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The `rpm` crate's view of the headers.
    pub fn metadata(&self) -> &::rpm::PackageMetadata {
        self.headers.metadata()
    }

    /// The payload (still compressed), streamed from the file the headers
    /// were read from. The cache is content-addressed, so another build may
    /// have renamed an identical download over it since: a replaced file is
    /// accepted when its lead and headers are the bytes read (the payload is
    /// then checked against them as usual); anything else is an error.
    pub fn payload(&self) -> Result<BufReader<File>, ReadError> {
        let open_err = |source| ReadError::Open {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(open_err)?;
        if FileId::of(&file.metadata().map_err(open_err)?) != self.id {
            let want = self.headers.prefix();
            let mut have = Vec::with_capacity(want.len());
            (&mut file)
                .take(want.len() as u64)
                .read_to_end(&mut have)
                .map_err(open_err)?;
            if have != want {
                return Err(ReadError::Changed {
                    path: self.path.clone(),
                });
            }
        }
        file.seek(SeekFrom::Start(self.headers.payload_offset()))
            .map_err(open_err)?;
        Ok(BufReader::with_capacity(256 * 1024, file))
    }
}

/// Every index entry of the header `h` (intro included, its sizes already
/// within limits) has a known type and its data inside the store.
fn check_entries(h: &[u8], section: Section) -> Result<(), HeaderError> {
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
        let headers = Headers::read(&mut input).unwrap();
        assert_eq!(headers.metadata().get_name().unwrap(), "h");
        assert_eq!(headers.payload_offset() as usize, bytes.len() - input.len());
        let header_len =
            16 + 16 * be32(&bytes[main + 8..]) as usize + be32(&bytes[main + 12..]) as usize;
        assert_eq!(input.len(), bytes.len() - main - header_len);
    }

    /// The upstream bug (rpm 0.30.2, `Header::parse_header`): an index entry
    /// whose offset is past the end of the store, or negative, panics at
    /// `&bytes[entry.offset as usize..]` ("range start index N out of range
    /// for slice of length M"). Each entry of both headers, both shapes: the
    /// crate alone panics (while it does, this module is needed), and
    /// `Headers::read` names the entry instead.
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
                    match Headers::parse(&bytes) {
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
        let err = Headers::parse(&bytes).unwrap_err().to_string();
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
        let err = Headers::parse(&bytes).unwrap_err();
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
            Headers::parse(&bytes),
            Err(HeaderError::NoMagic {
                section: Section::Signature,
                at: LEAD_LEN
            })
        ));
        assert!(matches!(
            Headers::parse(b"#!/bin/sh\n"),
            Err(HeaderError::Io(_))
        ));
        let mut bytes = good;
        bytes[0] = 0;
        assert!(matches!(Headers::parse(&bytes), Err(HeaderError::NoLead)));
    }

    fn intro(count: u32, size: u32) -> Vec<u8> {
        let mut v = HEADER_MAGIC.to_vec();
        v.extend([0; 4]);
        v.extend(count.to_be_bytes());
        v.extend(size.to_be_bytes());
        v
    }

    fn lead() -> Vec<u8> {
        let mut rpm = LEAD_MAGIC.to_vec();
        rpm.resize(LEAD_LEN, 0);
        rpm
    }

    #[test]
    fn header_end_from_the_two_intros() {
        let mut rpm = lead();
        assert_eq!(header_end(&rpm).unwrap(), HeaderEnd::Need(112));
        // Signature: 2 entries, 13 bytes of data → 16 + 32 + 13 = 61, padded to 64.
        rpm.extend(intro(2, 13));
        assert_eq!(header_end(&rpm).unwrap(), HeaderEnd::Need(96 + 64 + 16));
        rpm.resize(96 + 64, 0);
        rpm.extend(intro(3, 100));
        assert_eq!(
            header_end(&rpm).unwrap(),
            HeaderEnd::At(Layout {
                signature: 96..96 + 61,
                main: 96 + 64..96 + 64 + 16 + 48 + 100,
            })
        );
        rpm[96 + 64] = 0;
        assert!(matches!(
            header_end(&rpm),
            Err(HeaderError::NoMagic {
                section: Section::Main,
                at: 160
            })
        ));
        assert!(matches!(
            header_end(b"#!/bin/sh\n"),
            Err(HeaderError::NoLead)
        ));
    }

    /// rpm's limits, from the intros alone, before anything they size is read.
    #[test]
    fn absurd_header_claims_are_refused_before_reading_them() {
        let too_large = |rpm: &[u8]| match header_end(rpm) {
            Err(HeaderError::TooLarge { section, .. }) => section,
            other => panic!("{other:?}"),
        };
        let mut huge_sig = lead();
        huge_sig.extend(intro(4, u32::MAX));
        assert_eq!(too_large(&huge_sig), Section::Signature);
        // rpm allows 32 entries in a signature header, 0xffff in the main one.
        let mut many_sigs = lead();
        many_sigs.extend(intro(33, 16));
        assert_eq!(too_large(&many_sigs), Section::Signature);
        let mut rpm = lead();
        rpm.extend(intro(1, 0));
        rpm.resize(96 + 32, 0);
        let mut many = rpm.clone();
        many.extend(intro(0x10000, 16));
        assert_eq!(too_large(&many), Section::Main);
        rpm.extend(intro(3, u32::MAX));
        assert_eq!(too_large(&rpm), Section::Main);
        let message = Headers::parse(&rpm).unwrap_err().to_string();
        assert!(
            message.contains("main header is implausibly large"),
            "{message}"
        );
    }

    /// Every prefix of a good package's headers is an error, not a panic.
    #[test]
    fn a_file_cut_anywhere_in_its_headers_is_an_error() {
        let (bytes, _) = package();
        let end = Headers::parse(&bytes).unwrap().payload_offset() as usize;
        for cut in 0..end {
            assert!(Headers::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// The file's headers, their blobs as rpm stores them, and its payload
    /// streamed from where the headers end; an identical file renamed over it
    /// (a concurrent build's download) is read, a file changed since is refused.
    #[test]
    fn rpm_file_gives_blobs_and_the_payload_of_the_file_it_read() {
        let (bytes, main) = package();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.rpm");
        std::fs::write(&path, &bytes).unwrap();
        let before = headers_parsed_on_this_thread();
        let rpm = RpmFile::open(&path).unwrap();
        assert_eq!(headers_parsed_on_this_thread(), before + 1);
        let headers = rpm.headers();
        assert_eq!(headers.nevra().unwrap().to_string(), "h-1.0-1.x86_64");
        let sig_len = main - LEAD_LEN - headers.signature_blob().len() - 8;
        assert!(sig_len < 8, "padding only: {sig_len}");
        assert_eq!(
            headers.main_blob(),
            &bytes[main + 8..headers.payload_offset() as usize]
        );
        let mut payload = Vec::new();
        rpm.payload().unwrap().read_to_end(&mut payload).unwrap();
        assert_eq!(payload, bytes[headers.payload_offset() as usize..]);
        let again = dir.path().join("again.rpm");
        std::fs::write(&again, &bytes).unwrap();
        std::fs::rename(&again, &path).unwrap();
        let mut payload = Vec::new();
        rpm.payload().unwrap().read_to_end(&mut payload).unwrap();
        assert_eq!(payload, bytes[headers.payload_offset() as usize..]);
        let mut other = bytes.clone();
        other[headers.payload_offset() as usize - 1] ^= 0xff;
        std::fs::write(&path, &other).unwrap();
        let err = rpm.payload().unwrap_err();
        assert!(matches!(err, ReadError::Changed { .. }), "{err}");
        assert!(err.to_string().contains("h.rpm changed"), "{err}");
        let err = RpmFile::open(&dir.path().join("absent.rpm")).unwrap_err();
        assert!(matches!(err, ReadError::Open { .. }), "{err}");
    }
}
