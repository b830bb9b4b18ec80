//! A streaming reader for the cpio archives inside RPM payloads.
//!
//! Two member formats occur (rpm's `lib/cpio.c`):
//! - **newc** (`070701`, and `070702` with a checksum nobody checks): a
//!   110-byte ASCII-hex header, the NUL-terminated name, padding to 4 bytes,
//!   the data, padding to 4 bytes.
//! - **stripped** (`07070X`, rpm ≥ 4.12 for packages with files ≥ 4 GiB):
//!   magic plus an 8-digit hex index into the header's file arrays, padded
//!   to 16 bytes; the data size comes from the header, so the caller passes
//!   it in. The archive still ends with a newc `TRAILER!!!` member.
//!
//! The reader never buffers a member's data: the caller copies exactly
//! `size` bytes to a writer (or skips them), and the reader consumes the
//! padding before the next header.

use std::io::{self, Read, Write};

const NEWC_HEADER_LEN: u64 = 110;
const STRIPPED_HEADER_LEN: u64 = 14;
const TRAILER: &str = "TRAILER!!!";
/// Longest member name accepted (PATH_MAX); guards against absurd allocations.
const MAX_NAME: usize = 4096;

/// How a member identifies the header file it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// newc member: its own name (usually `./usr/bin/foo`) and data size.
    Named { name: String, size: u64 },
    /// stripped member: the index into the header's file arrays.
    Indexed { index: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("payload is not a cpio archive (bad magic {0:?} at offset {1})")]
    BadMagic(String, u64),
    #[error("malformed cpio header at offset {offset}: {what}")]
    Malformed { offset: u64, what: String },
    #[error("reading the payload failed")]
    Io(#[from] io::Error),
}

/// A decompressed payload cut off at `bound` bytes: the header's archive
/// size, so a small compressed payload cannot expand without limit (an
/// endless member, padding or a trailer that never comes). Reading past the
/// bound fails with a [`BoundExceeded`] error before any of it is returned.
pub struct Bounded<R> {
    inner: R,
    left: u64,
    bound: u64,
}

/// The error [`Bounded`] returns once the payload passes its bound.
#[derive(Debug, thiserror::Error)]
#[error("the decompressed payload exceeds {bound} bytes")]
pub struct BoundExceeded {
    pub bound: u64,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R, bound: u64) -> Self {
        Bounded {
            inner,
            left: bound,
            bound,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // At the bound: one more byte means the payload is larger.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(BoundExceeded { bound: self.bound })),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The bound a payload error hit, if that is what it was.
pub fn bound_exceeded(err: &CpioError) -> Option<u64> {
    match err {
        CpioError::Io(e) => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BoundExceeded>())
            .map(|b| b.bound),
        _ => None,
    }
}

/// Reads members one at a time from a decompressed payload stream.
pub struct CpioReader<R> {
    inner: R,
    /// Bytes consumed so far: all padding is relative to the archive start.
    offset: u64,
    /// Data bytes of the current member not yet consumed by the caller.
    pending: u64,
}

impl<R: Read> CpioReader<R> {
    pub fn new(inner: R) -> Self {
        CpioReader {
            inner,
            offset: 0,
            pending: 0,
        }
    }

    /// The next member, or `None` at the trailer. Any unread data of the
    /// previous member is skipped first.
    pub fn next_member(&mut self) -> Result<Option<Member>, CpioError> {
        self.skip_data()?;
        self.align()?;
        let start = self.offset;
        let mut magic = [0u8; 6];
        self.read_exact(&mut magic)?;
        match &magic {
            b"070701" | b"070702" => {
                let mut fields = [0u32; 13];
                for field in fields.iter_mut() {
                    *field = self.read_hex(start)?;
                }
                let size = u64::from(fields[6]);
                let name_len = fields[11] as usize;
                if name_len == 0 || name_len > MAX_NAME {
                    return Err(CpioError::Malformed {
                        offset: start,
                        what: format!("name length {name_len}"),
                    });
                }
                let mut name = vec![0u8; name_len];
                self.read_exact(&mut name)?;
                // Names are NUL-terminated; tolerate extra NUL padding.
                while name.last() == Some(&0) {
                    name.pop();
                }
                let name = String::from_utf8(name).map_err(|e| CpioError::Malformed {
                    offset: start,
                    what: format!("member name is not UTF-8: {e}"),
                })?;
                debug_assert_eq!(self.offset - start, NEWC_HEADER_LEN + name_len as u64);
                self.align()?;
                if name == TRAILER {
                    return Ok(None);
                }
                self.pending = size;
                Ok(Some(Member::Named { name, size }))
            }
            b"07070X" => {
                let index = self.read_hex(start)?;
                debug_assert_eq!(self.offset - start, STRIPPED_HEADER_LEN);
                self.align()?;
                Ok(Some(Member::Indexed { index }))
            }
            other => Err(CpioError::BadMagic(
                String::from_utf8_lossy(other).into_owned(),
                start,
            )),
        }
    }

    /// Declare the data size of a stripped member (known only from the header).
    pub fn set_size(&mut self, size: u64) {
        self.pending = size;
    }

    /// Copy the current member's data to `out`, returning the byte count.
    pub fn copy_data(&mut self, out: &mut impl Write) -> Result<u64, CpioError> {
        let want = self.pending;
        let copied = io::copy(&mut (&mut self.inner).take(want), out)?;
        self.offset += copied;
        self.pending -= copied;
        if copied != want {
            return Err(CpioError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("payload ended inside a member ({copied} of {want} bytes)"),
            )));
        }
        Ok(copied)
    }

    fn skip_data(&mut self) -> Result<(), CpioError> {
        if self.pending > 0 {
            self.copy_data(&mut io::sink())?;
        }
        Ok(())
    }

    fn align(&mut self) -> Result<(), CpioError> {
        let pad = (4 - self.offset % 4) % 4;
        let mut buf = [0u8; 4];
        self.read_exact(&mut buf[..pad as usize])
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), CpioError> {
        self.inner.read_exact(buf)?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn read_hex(&mut self, start: u64) -> Result<u32, CpioError> {
        let mut buf = [0u8; 8];
        self.read_exact(&mut buf)?;
        std::str::from_utf8(&buf)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| CpioError::Malformed {
                offset: start,
                what: format!("bad hex field {:?}", String::from_utf8_lossy(&buf)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0o100644,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_newc_members_and_padding() {
        let mut archive = newc("./a", b"hello");
        archive.extend(newc("./bb", b""));
        archive.extend(newc("./c", b"xyz"));
        archive.extend(newc(TRAILER, b""));
        let mut r = CpioReader::new(&archive[..]);
        assert_eq!(
            r.next_member().unwrap(),
            Some(Member::Named {
                name: "./a".into(),
                size: 5
            })
        );
        let mut out = Vec::new();
        r.copy_data(&mut out).unwrap();
        assert_eq!(out, b"hello");
        // ./bb is skipped without reading its (empty) data
        assert!(
            matches!(r.next_member().unwrap(), Some(Member::Named { name, .. }) if name == "./bb")
        );
        // ./c's data is skipped implicitly by asking for the next member
        assert!(
            matches!(r.next_member().unwrap(), Some(Member::Named { name, .. }) if name == "./c")
        );
        assert_eq!(r.next_member().unwrap(), None);
    }

    #[test]
    fn reads_stripped_members_with_caller_size() {
        let mut archive = b"07070X0000000200".to_vec();
        archive.extend_from_slice(b"abcdef\0\0");
        archive.extend(newc(TRAILER, b""));
        let mut r = CpioReader::new(&archive[..]);
        assert_eq!(r.next_member().unwrap(), Some(Member::Indexed { index: 2 }));
        r.set_size(6);
        let mut out = Vec::new();
        r.copy_data(&mut out).unwrap();
        assert_eq!(out, b"abcdef");
        assert_eq!(r.next_member().unwrap(), None);
    }

    #[test]
    fn bounded_cuts_off_at_the_bound_and_only_there() {
        let mut archive = newc("./a", b"hello");
        archive.extend(newc(TRAILER, b""));
        // Exactly the archive: read to the trailer.
        let mut r = CpioReader::new(Bounded::new(&archive[..], archive.len() as u64));
        r.next_member().unwrap();
        r.copy_data(&mut Vec::new()).unwrap();
        assert_eq!(r.next_member().unwrap(), None);
        // Trailing bytes past the bound are an error only when read.
        let mut more = archive.clone();
        more.extend_from_slice(&[0u8; 64]);
        let mut b = Bounded::new(&more[..], archive.len() as u64);
        let mut out = Vec::new();
        let err = io::copy(&mut b, &mut out).unwrap_err();
        assert_eq!(out, archive, "nothing past the bound is returned");
        let err = CpioError::Io(err);
        assert_eq!(bound_exceeded(&err), Some(archive.len() as u64));
        // A member larger than the bound fails inside the member.
        let mut r = CpioReader::new(Bounded::new(&archive[..], 100));
        let err = r.next_member().unwrap_err();
        assert_eq!(bound_exceeded(&err), Some(100));
        assert_eq!(bound_exceeded(&CpioError::BadMagic("x".into(), 0)), None);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let err = CpioReader::new(&b"PK\x03\x04xxxxxxxx"[..])
            .next_member()
            .unwrap_err();
        assert!(matches!(err, CpioError::BadMagic(_, 0)), "{err:?}");

        let archive = newc("./a", b"hello");
        let mut r = CpioReader::new(&archive[..archive.len() - 6]);
        r.next_member().unwrap();
        assert!(r.copy_data(&mut Vec::new()).is_err());
    }
}
