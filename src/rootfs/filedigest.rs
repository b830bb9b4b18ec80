//! The header's per-file digests (`FILEDIGESTS`, `FILEDIGESTALGO`), checked
//! against the payload as rpm's fsm does, so a payload whose content
//! disagrees with the header it came with is refused whether or not the
//! package's signature was checked.

use std::io::{self, Write};

use rpm::IndexTag;
use sha2::digest::DynDigest;

type Header = rpm::Header<IndexTag>;

/// rpm's `PGPHASHALGO_*` numbers that minibuild can compute. MD5 (1, the
/// default when the tag is absent: rpm < 4.6) and SHA-1 (2) are not
/// verified: the names and sizes still are.
fn hasher(algo: u32) -> Option<Box<dyn DynDigest>> {
    Some(match algo {
        8 => Box::new(sha2::Sha256::default()),
        9 => Box::new(sha2::Sha384::default()),
        10 => Box::new(sha2::Sha512::default()),
        11 => Box::new(sha2::Sha224::default()),
        _ => return None,
    })
}

/// The digests of one header's files, by file index.
#[derive(Debug, Default)]
pub struct FileDigests {
    algo: u32,
    hex: Vec<String>,
}

impl FileDigests {
    /// Read the tags for a header with `n` files; absent tags give a list
    /// that checks nothing.
    pub fn read(h: &Header, n: usize) -> Result<Self, String> {
        let hex = match h.get_entry_data_as_string_array(IndexTag::RPMTAG_FILEDIGESTS) {
            Ok(v) => v.into_iter().map(|s| s.to_ascii_lowercase()).collect(),
            Err(rpm::Error::TagNotFound(_)) => return Ok(Self::default()),
            Err(e) => return Err(format!("FILEDIGESTS: {e}")),
        };
        let hex: Vec<String> = hex;
        if hex.len() != n {
            return Err(format!(
                "FILEDIGESTS has {} entries for {n} files",
                hex.len()
            ));
        }
        let algo = match h.get_entry_data_as_u32(IndexTag::RPMTAG_FILEDIGESTALGO) {
            Ok(a) => a,
            Err(rpm::Error::TagNotFound(_)) => 1,
            Err(e) => return Err(format!("FILEDIGESTALGO: {e}")),
        };
        Ok(FileDigests { algo, hex })
    }

    /// Whether the digests are sha256 (rpm ≥ 4.6's default), which a
    /// staging blob computes anyway: see [`Self::check_sha256`].
    pub fn is_sha256(&self) -> bool {
        self.algo == 8
    }

    /// Check file `i` against an already computed sha256 (`Ok` when the
    /// header has no sha256 digest for it).
    pub fn check_sha256(&self, i: usize, sha256: &[u8; 32]) -> Result<(), (String, String)> {
        match self
            .hex
            .get(i)
            .filter(|h| self.is_sha256() && !h.is_empty())
        {
            Some(expected) if *expected != hex::encode(sha256) => {
                Err((expected.clone(), hex::encode(sha256)))
            }
            _ => Ok(()),
        }
    }

    /// A hasher for file `i`, when the header has a digest minibuild can check.
    pub fn hasher_for(&self, i: usize) -> Option<DigestTee> {
        let expected = self.hex.get(i).filter(|h| !h.is_empty())?;
        Some(DigestTee {
            hash: hasher(self.algo)?,
            expected: expected.clone(),
        })
    }
}

/// Hashes what is copied through [`DigestTee::writer`].
pub struct DigestTee {
    hash: Box<dyn DynDigest>,
    expected: String,
}

impl DigestTee {
    /// `out`, with everything written to it also hashed.
    pub fn writer<'a, W: Write + 'a>(&'a mut self, out: W) -> impl Write + 'a {
        Tee {
            out,
            hash: &mut *self.hash,
        }
    }

    /// `Err((expected, actual))` when the content was not what the header says.
    pub fn verify(self) -> Result<(), (String, String)> {
        let actual = hex::encode(self.hash.finalize());
        if actual == self.expected {
            Ok(())
        } else {
            Err((self.expected, actual))
        }
    }
}

struct Tee<'a, W> {
    out: W,
    hash: &'a mut dyn DynDigest,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(algo: u32, hex: &[&str]) -> FileDigests {
        FileDigests {
            algo,
            hex: hex.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn checks_sha256_and_skips_what_it_cannot() {
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let d = digests(8, &[hello, ""]);
        let mut tee = d.hasher_for(0).unwrap();
        tee.writer(io::sink()).write_all(b"hello").unwrap();
        tee.verify().unwrap();
        let mut tee = d.hasher_for(0).unwrap();
        tee.writer(io::sink()).write_all(b"HELLO").unwrap();
        let (expected, actual) = tee.verify().unwrap_err();
        assert_eq!(expected, hello);
        assert_ne!(actual, hello);
        let sha_of = |data: &[u8]| -> [u8; 32] {
            use sha2::Digest as _;
            sha2::Sha256::digest(data).into()
        };
        d.check_sha256(0, &sha_of(b"hello")).unwrap();
        assert!(d.check_sha256(0, &sha_of(b"HELLO")).is_err());
        // No digest (a directory), or md5: nothing to check.
        assert!(d.hasher_for(1).is_none());
        assert!(digests(1, &["5d41402abc4b2a76b9719d911017c592"])
            .hasher_for(0)
            .is_none());
    }
}
