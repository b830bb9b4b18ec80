//! Content digests as they appear in repo metadata and OCI descriptors.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// Checksum algorithms found in rpm-md metadata (`<checksum type="…">`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        match s {
            // createrepo's old name for sha256
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            "sha512" | "sha-512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::Unsupported(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("unsupported checksum type `{0}` (minibuild verifies sha256 and sha512)")]
    Unsupported(String),
    #[error("malformed {algo} digest `{value}`")]
    Malformed { algo: &'static str, value: String },
}

/// An algorithm plus lowercase hex value, displayed as `sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: Algorithm,
    hex: String,
}

impl Digest {
    pub fn new(algo: Algorithm, hex: &str) -> Result<Self, DigestError> {
        let lower = is_lower_hex(hex.as_bytes());
        let hex = if lower {
            hex.to_owned()
        } else {
            hex.to_ascii_lowercase()
        };
        if hex.len() != algo.hex_len() || !(lower || is_lower_hex(hex.as_bytes())) {
            return Err(DigestError::Malformed {
                algo: algo.name(),
                value: hex,
            });
        }
        Ok(Digest { algo, hex })
    }

    pub fn sha256_of(data: &[u8]) -> Self {
        Digest {
            algo: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    pub fn algo(&self) -> Algorithm {
        self.algo
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Hash everything `reader` yields with this digest's algorithm.
    pub fn of_reader(algo: Algorithm, reader: impl Read) -> io::Result<Self> {
        let mut w = Hasher::new(algo, io::sink());
        let mut reader = reader;
        io::copy(&mut reader, &mut w)?;
        Ok(w.finish().0)
    }
}

/// Whether every byte is `0-9a-f`. Without branches: hex digits are random,
/// so a short-circuiting check mispredicts about every other byte, which made
/// this check a sixth of a warm metadata load (one digest per package).
fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6))
    })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        let (algo, hex) = s.split_once(':').ok_or_else(|| DigestError::Malformed {
            algo: "sha256",
            value: s.to_string(),
        })?;
        Digest::new(algo.parse()?, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// A writer adapter that hashes and counts what passes through it.
pub struct Hasher<W> {
    inner: W,
    state: State,
    algo: Algorithm,
    len: u64,
}

impl<W: Write> Hasher<W> {
    pub fn new(algo: Algorithm, inner: W) -> Self {
        let state = match algo {
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
        };
        Hasher {
            inner,
            state,
            algo,
            len: 0,
        }
    }

    /// The digest and byte count of everything written, plus the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let hex = match self.state {
            State::Sha256(h) => hex::encode(h.finalize()),
            State::Sha512(h) => hex::encode(h.finalize()),
        };
        (
            Digest {
                algo: self.algo,
                hex,
            },
            self.len,
            self.inner,
        )
    }
}

impl<W: Write> Write for Hasher<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match &mut self.state {
            State::Sha256(h) => h.update(&buf[..n]),
            State::Sha512(h) => h.update(&buf[..n]),
        }
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let d: Digest = "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::sha256_of(b""));
        assert!("sha256:abc".parse::<Digest>().is_err());
        // Right length, one byte outside 0-9a-f at each end of the ranges.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85";
        for bad in ['g', '/', ':', '`', 'G', ' '] {
            let d = format!("{hex}{bad}");
            assert!(Digest::new(Algorithm::Sha256, &d).is_err(), "{d}");
        }
        for good in ['0', '9', 'a', 'f', 'F'] {
            assert!(Digest::new(Algorithm::Sha256, &format!("{hex}{good}")).is_ok());
        }
        assert!(matches!(
            "md5:00".parse::<Digest>(),
            Err(DigestError::Unsupported(_))
        ));
    }

    #[test]
    fn hasher_counts_and_hashes() {
        let mut h = Hasher::new(Algorithm::Sha256, Vec::new());
        h.write_all(b"hello").unwrap();
        let (d, n, buf) = h.finish();
        assert_eq!(n, 5);
        assert_eq!(buf, b"hello");
        assert_eq!(d, Digest::sha256_of(b"hello"));
    }
}
