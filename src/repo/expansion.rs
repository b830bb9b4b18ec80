//! Bounds on what a metadata file may expand to once decompressed.
//!
//! The compressed file is checked against repomd.xml, but whoever serves
//! repomd.xml also chooses its `open-size` and can ship a zstd bomb (128 KiB
//! that expands to 4 GiB). So the decompressed stream is cut off at the
//! declared `open-size`, at a ratio to the compressed size no real metadata
//! reaches, and at a hard cap; and no single XML token (text or tag, the run
//! between two `<`/`>`) may grow past [`MAX_TOKEN`], as the parser holds one
//! token in memory at a time.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, OnceLock};

/// Decompressed metadata larger than this is refused whatever is declared
/// (Fedora's filelists.xml, the largest, is well under 1 GiB).
pub const HARD_MAX: u64 = 8 << 30;

/// Real metadata compresses 5–20×; a file expanding by more than this is a bomb.
const MAX_RATIO: u64 = 1024;

/// Below this the ratio is not applied (tiny repos compress oddly).
const RATIO_FLOOR: u64 = 64 << 20;

/// The longest run of bytes without `<` or `>` (a description, a file
/// name, a tag with its attributes are all far shorter).
pub const MAX_TOKEN: u64 = 16 << 20;

/// Which bound was crossed, for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    pub limit: u64,
    pub rule: String,
}

/// The most bytes a metadata file of `size` compressed bytes (if known),
/// with `open_size` declared (if any), may expand to, and why.
pub fn limit(size: Option<u64>, open_size: Option<u64>) -> (u64, String) {
    let mut best = (
        HARD_MAX,
        format!("the hard cap on decompressed metadata ({HARD_MAX} bytes)"),
    );
    if let Some(size) = size {
        let by_ratio = size.saturating_mul(MAX_RATIO).max(RATIO_FLOOR);
        if by_ratio < best.0 {
            best = (
                by_ratio,
                format!("{MAX_RATIO}× its {size} compressed bytes, more than real metadata ever expands"),
            );
        }
    }
    if let Some(open) = open_size {
        if open < best.0 {
            best = (
                open,
                format!("the open-size repomd.xml declares ({open} bytes)"),
            );
        }
    }
    best
}

/// A decompressed stream that fails past `limit` bytes or a token longer
/// than [`MAX_TOKEN`]; what was crossed is left in the shared cell.
pub struct Expansion<R> {
    inner: R,
    read: u64,
    since_delimiter: u64,
    limit: u64,
    rule: String,
    crossed: Arc<OnceLock<Overflow>>,
}

impl<R: BufRead> Expansion<R> {
    pub fn new(inner: R, (limit, rule): (u64, String)) -> (Expansion<R>, Arc<OnceLock<Overflow>>) {
        let crossed = Arc::new(OnceLock::new());
        let guard = Expansion {
            inner,
            read: 0,
            since_delimiter: 0,
            limit,
            rule,
            crossed: Arc::clone(&crossed),
        };
        (guard, crossed)
    }

    fn check(&self) -> io::Result<()> {
        let overflow = if self.read > self.limit {
            Overflow {
                limit: self.limit,
                rule: self.rule.clone(),
            }
        } else if self.since_delimiter > MAX_TOKEN {
            Overflow {
                limit: MAX_TOKEN,
                rule: format!("a single XML token (text or tag) longer than {MAX_TOKEN} bytes"),
            }
        } else {
            return Ok(());
        };
        let message = format!("decompressed metadata crosses {}", overflow.rule);
        let _ = self.crossed.set(overflow);
        Err(io::Error::new(io::ErrorKind::InvalidData, message))
    }
}

impl<R: BufRead> Read for Expansion<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Expansion<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(available) = self.inner.fill_buf() {
            let taken = &available[..amt.min(available.len())];
            match taken.iter().rposition(|&b| b == b'<' || b == b'>') {
                Some(i) => self.since_delimiter = (taken.len() - i - 1) as u64,
                None => self.since_delimiter += taken.len() as u64,
            }
        }
        self.read += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_bound_wins_and_says_why() {
        assert_eq!(limit(None, None).0, HARD_MAX);
        assert_eq!(limit(Some(128 << 10), None).0, 128 << 20);
        assert!(limit(Some(128 << 10), None).1.contains("1024×"));
        assert_eq!(limit(Some(10), None).0, RATIO_FLOOR);
        assert_eq!(limit(Some(1 << 20), Some(5000)).0, 5000);
        assert_eq!(limit(Some(1 << 40), Some(1 << 40)).0, HARD_MAX);
    }

    #[test]
    fn cuts_off_past_the_limit_and_records_it() {
        let data = b"<a>0123456789</a>".repeat(10);
        let (mut r, crossed) = Expansion::new(&data[..], (50, "test bound".into()));
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("test bound"), "{err}");
        assert_eq!(crossed.get().unwrap().limit, 50);
        assert!(out.len() <= 50 + data.len());

        let (mut ok, crossed) = Expansion::new(&data[..], (data.len() as u64, "x".into()));
        ok.read_to_end(&mut Vec::new()).unwrap();
        assert!(crossed.get().is_none());
    }

    #[test]
    fn a_giant_token_is_refused_early() {
        let mut data = b"<description>".to_vec();
        data.extend(std::iter::repeat_n(b'x', (MAX_TOKEN + (1 << 20)) as usize));
        let reader = io::BufReader::with_capacity(1 << 16, &data[..]);
        let (mut r, crossed) = Expansion::new(reader, (u64::MAX, "x".into()));
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_err());
        assert_eq!(crossed.get().unwrap().limit, MAX_TOKEN);
        assert!(sink.len() as u64 <= MAX_TOKEN + (1 << 16) + 16);
    }
}
