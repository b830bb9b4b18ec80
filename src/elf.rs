//! Just enough ELF to check an image's dynamic linking: the interpreter
//! (`PT_INTERP`), needed libraries (`DT_NEEDED`), `DT_SONAME`, and the run
//! paths, read from the program headers without loading the whole file.

use std::io::{self, Read, Seek, SeekFrom};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    /// DT_RUNPATH, or DT_RPATH when there is no RUNPATH, split on `:`.
    pub runpath: Vec<String>,
    pub class64: bool,
    pub machine: u16,
    /// `e_type`: 2 executable, 3 shared object (or PIE).
    pub elf_type: u16,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// Whether `head` (the first bytes of a file) starts like an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// How much of a file's start one read takes: the ELF and program headers,
/// the interpreter path and usually `.dynstr` are in it, so a typical file
/// costs two reads instead of one seek+read per structure (a build checks
/// hundreds of ELF files).
const HEAD: usize = 16 * 1024;

struct Reader<R> {
    r: R,
    le: bool,
    c64: bool,
    /// The file's first (up to) [`HEAD`] bytes, read on first use.
    head: Option<Vec<u8>>,
}

impl<R: Read + Seek> Reader<R> {
    fn new(r: R) -> Self {
        Reader {
            r,
            le: true,
            c64: true,
            head: None,
        }
    }

    fn bytes(&mut self, at: u64, n: usize) -> io::Result<Vec<u8>> {
        if self.head.is_none() {
            let mut head = Vec::with_capacity(HEAD);
            self.r.seek(SeekFrom::Start(0))?;
            (&mut self.r).take(HEAD as u64).read_to_end(&mut head)?;
            self.head = Some(head);
        }
        let head = self.head.as_deref().unwrap_or_default();
        let start = usize::try_from(at).unwrap_or(usize::MAX);
        if let Some(b) = start.checked_add(n).and_then(|end| head.get(start..end)) {
            return Ok(b.to_vec());
        }
        if head.len() < HEAD {
            // The whole file is in `head`, and this range is not.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range past the end of the file",
            ));
        }
        self.r.seek(SeekFrom::Start(at))?;
        // Grow with what the file really holds: a header can claim a 4 GiB
        // program header table (65535 × 65535), and a zeroed buffer of that
        // size would be allocated before the short read is noticed.
        let mut b = Vec::new();
        (&mut self.r).take(n as u64).read_to_end(&mut b)?;
        if b.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range past the end of the file",
            ));
        }
        Ok(b)
    }
    fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn u64(&self, b: &[u8]) -> u64 {
        let a: [u8; 8] = b[..8].try_into().expect("8 bytes");
        if self.le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }
    fn word(&self, b: &[u8]) -> u64 {
        if self.c64 {
            self.u64(b)
        } else {
            u64::from(self.u32(b))
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// A `PT_LOAD` program header: where a loaded segment's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub filesz: u64,
    /// `p_flags`: [`PF_X`], [`PF_W`], `PF_R` (4).
    pub flags: u32,
}

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;

/// One program header: (type, offset, vaddr, filesz, flags).
type Phdr = (u32, u64, u64, u64, u32);

/// The ELF identification and program headers; `Ok(None)` for non-ELF input.
fn program_headers<R: Read + Seek>(
    rd: &mut Reader<R>,
) -> io::Result<Option<(u16, u16, Vec<Phdr>)>> {
    let ident = match rd.bytes(0, 16) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if !is_elf(&ident) {
        return Ok(None);
    }
    rd.c64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return Err(bad("unknown ELF class")),
    };
    rd.le = match ident[5] {
        1 => true,
        2 => false,
        _ => return Err(bad("unknown ELF byte order")),
    };
    let eh = rd.bytes(0, if rd.c64 { 64 } else { 52 })?;
    let elf_type = rd.u16(&eh[16..]);
    let machine = rd.u16(&eh[18..]);
    let (phoff, phentsize, phnum) = if rd.c64 {
        (rd.u64(&eh[32..]), rd.u16(&eh[54..]), rd.u16(&eh[56..]))
    } else {
        (
            u64::from(rd.u32(&eh[28..])),
            rd.u16(&eh[42..]),
            rd.u16(&eh[44..]),
        )
    };
    let mut phdrs = Vec::new();
    let size = usize::from(phentsize);
    if phnum == 0 {
        return Ok(Some((elf_type, machine, phdrs)));
    }
    if size < if rd.c64 { 56 } else { 32 } {
        return Err(bad("program header entries too small"));
    }
    let table = rd.bytes(phoff, size * usize::from(phnum))?;
    for ph in table.chunks_exact(size) {
        let p_type = rd.u32(ph);
        // ELF64 puts p_flags second, ELF32 seventh.
        let (offset, vaddr, filesz, flags) = if rd.c64 {
            (
                rd.u64(&ph[8..]),
                rd.u64(&ph[16..]),
                rd.u64(&ph[32..]),
                rd.u32(&ph[4..]),
            )
        } else {
            (
                u64::from(rd.u32(&ph[4..])),
                u64::from(rd.u32(&ph[8..])),
                u64::from(rd.u32(&ph[16..])),
                rd.u32(&ph[24..]),
            )
        };
        phdrs.push((p_type, offset, vaddr, filesz, flags));
    }
    Ok(Some((elf_type, machine, phdrs)))
}

/// The loadable segments of an ELF file, in program-header order; `Ok(None)`
/// for files that are not ELF.
pub fn load_segments(r: impl Read + Seek) -> io::Result<Option<Vec<Segment>>> {
    let mut rd = Reader::new(r);
    let Some((_, _, phdrs)) = program_headers(&mut rd)? else {
        return Ok(None);
    };
    Ok(Some(
        phdrs
            .iter()
            .filter(|p| p.0 == PT_LOAD)
            .map(|&(_, offset, _, filesz, flags)| Segment {
                offset,
                filesz,
                flags,
            })
            .collect(),
    ))
}

/// Read the dynamic-linking facts of an ELF file. `Ok(None)` for files that
/// are not ELF.
pub fn read(r: impl Read + Seek) -> io::Result<Option<Dynamic>> {
    let mut rd = Reader::new(r);
    let Some((elf_type, machine, phdrs)) = program_headers(&mut rd)? else {
        return Ok(None);
    };
    let mut out = Dynamic {
        class64: rd.c64,
        machine,
        elf_type,
        ..Dynamic::default()
    };
    if let Some(&(_, off, _, size, _)) = phdrs.iter().find(|p| p.0 == PT_INTERP) {
        let b = rd.bytes(off, size.min(4096) as usize)?;
        out.interpreter = Some(cstr(&b));
    }
    let Some(&(_, dyn_off, _, dyn_size, _)) = phdrs.iter().find(|p| p.0 == PT_DYNAMIC) else {
        return Ok(Some(out));
    };
    let entsize: u64 = if rd.c64 { 16 } else { 8 };
    let table = rd.bytes(dyn_off, dyn_size.min(1 << 20) as usize)?;
    let mut entries = Vec::new();
    for e in table.chunks_exact(entsize as usize) {
        let tag = rd.word(e);
        let val = rd.word(&e[entsize as usize / 2..]);
        if tag == 0 {
            break;
        }
        entries.push((tag, val));
    }
    let find = |t: u64| entries.iter().find(|e| e.0 == t).map(|e| e.1);
    let (Some(strtab), Some(strsz)) = (find(DT_STRTAB), find(DT_STRSZ)) else {
        return Ok(Some(out));
    };
    // DT_STRTAB is an address: map it to a file offset through PT_LOAD.
    let Some(str_off) = phdrs
        .iter()
        .filter(|p| p.0 == PT_LOAD)
        .find(|p| strtab >= p.2 && strtab < p.2 + p.3)
        .map(|p| strtab - p.2 + p.1)
    else {
        return Err(bad("DT_STRTAB outside any loadable segment"));
    };
    let strings = rd.bytes(str_off, strsz.min(1 << 24) as usize)?;
    let s = |off: u64| strings.get(off as usize..).map(cstr).unwrap_or_default();
    let mut rpath = Vec::new();
    for &(tag, val) in &entries {
        match tag {
            DT_NEEDED => out.needed.push(s(val)),
            DT_SONAME => out.soname = Some(s(val)),
            DT_RUNPATH => out.runpath = split_path(&s(val)),
            DT_RPATH => rpath = split_path(&s(val)),
            _ => {}
        }
    }
    if out.runpath.is_empty() {
        out.runpath = rpath;
    }
    Ok(Some(out))
}

fn split_path(s: &str) -> Vec<String> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads like a cursor, and remembers the largest buffer it was asked to fill.
    struct Widest<'a> {
        inner: io::Cursor<&'a [u8]>,
        widest: usize,
    }
    impl Read for Widest<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.widest = self.widest.max(buf.len());
            self.inner.read(buf)
        }
    }
    impl Seek for Widest<'_> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// Found by `make fuzz` (target elf): an ELF64 header past the first
    /// 16 KiB whose program header table claims 65535 entries of 65535 bytes.
    #[test]
    fn a_huge_program_header_table_is_not_allocated_before_reading() {
        let mut file = vec![0xffu8; HEAD + 86];
        file[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        file[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        file[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // x86-64
        file[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        let mut r = Widest {
            inner: io::Cursor::new(&file[..]),
            widest: 0,
        };
        assert!(read(&mut r).is_err());
        assert!(
            r.widest <= 1 << 20,
            "asked to fill a {}-byte buffer for a {}-byte file",
            r.widest,
            file.len()
        );
    }

    /// Real binaries of the machine running the tests: every Linux host has a
    /// dynamically linked /bin/sh and a libc with a SONAME.
    #[test]
    fn reads_a_real_dynamic_executable() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let d = read(std::fs::File::open(&sh).unwrap())
            .unwrap()
            .expect("an ELF file");
        assert!(
            d.interpreter.as_deref().is_some_and(|i| i.contains("ld-")),
            "{d:?}"
        );
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
    }

    #[test]
    fn short_and_headerless_files() {
        use std::io::Cursor;
        assert_eq!(read(Cursor::new(b"\x7fELF".to_vec())).unwrap(), None);
        assert_eq!(read(Cursor::new(Vec::new())).unwrap(), None);
        // A 64-bit little-endian ELF header with no program headers (a `.o`).
        let mut ehdr = vec![0u8; 64];
        ehdr[..6].copy_from_slice(b"\x7fELF\x02\x01");
        ehdr[16] = 1; // ET_REL
        ehdr[18] = 62; // x86-64
        let d = read(Cursor::new(ehdr)).unwrap().unwrap();
        assert_eq!((d.elf_type, d.machine), (1, 62));
        assert!(d.needed.is_empty() && d.interpreter.is_none());
    }

    #[test]
    fn reads_a_soname() {
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a libc.so.6 on the test host");
        let d = read(std::fs::File::open(libc).unwrap()).unwrap().unwrap();
        assert_eq!(d.soname.as_deref(), Some("libc.so.6"));
    }

    #[test]
    fn non_elf_and_truncated_input() {
        assert_eq!(
            read(io::Cursor::new(b"#!/bin/sh\n".to_vec())).unwrap(),
            None
        );
        assert_eq!(read(io::Cursor::new(Vec::new())).unwrap(), None);
        let mut trunc = b"\x7fELF\x02\x01\x01".to_vec();
        trunc.resize(20, 0);
        assert!(read(io::Cursor::new(trunc)).is_err());
    }
}
