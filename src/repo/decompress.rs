//! Decompression of metadata files: zstd (Fedora ≥ 39), xz (RHEL/CentOS),
//! gzip (older repos, openSUSE) or none.
//!
//! The first bytes decide, because names lie (a `.gz` served as plain text by
//! a mirror, a `.zst` that is really an HTML error page). The name only adds a
//! check: a file named as compressed that carries no known magic is refused
//! rather than fed to the XML parser as garbage.

use std::io::{self, BufRead, BufReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// What the file name claims; `Err` with the extension for formats we
    /// cannot read (`.bz2` in very old repos).
    pub fn from_name(name: &str) -> Result<Compression, &str> {
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        Ok(match ext {
            "gz" => Compression::Gzip,
            "xz" => Compression::Xz,
            "zst" | "zstd" => Compression::Zstd,
            "bz2" | "lz4" | "zck" => return Err(ext),
            _ => Compression::None,
        })
    }

    /// What the leading bytes say.
    pub fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error(
        "{name}: .{ext} compression is not supported (minibuild reads zstd, xz and gzip metadata)"
    )]
    Unsupported { name: String, ext: String },
    #[error("{name} is named as {claimed} but does not start like {claimed} data; the file may be an error page or truncated, delete it from the cache or re-fetch")]
    NotCompressed { name: String, claimed: &'static str },
    #[error("cannot read {name}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

const BUF: usize = 256 * 1024;

/// Wrap `reader` (the file called `name`) in the decoder its magic bytes
/// call for, returning a buffered reader of the plain bytes.
pub fn decompress<'a>(
    name: &str,
    reader: impl BufRead + Send + 'a,
) -> Result<Box<dyn BufRead + Send + 'a>, DecompressError> {
    let mut reader = reader;
    let claimed = Compression::from_name(name).map_err(|ext| DecompressError::Unsupported {
        name: name.to_string(),
        ext: ext.to_string(),
    })?;
    let io_err = |source| DecompressError::Io {
        name: name.to_string(),
        source,
    };
    // fill_buf returns at least the first few bytes unless the file is tiny;
    // six bytes are enough for every magic we know.
    let actual = Compression::from_magic(reader.fill_buf().map_err(io_err)?);
    if claimed != Compression::None && actual == Compression::None {
        return Err(DecompressError::NotCompressed {
            name: name.to_string(),
            claimed: claimed.name(),
        });
    }
    Ok(match actual {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            BUF,
            liblzma::bufread::XzDecoder::new_stream(
                reader,
                liblzma::stream::Stream::new_stream_decoder(
                    crate::package::XZ_MEMLIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(|e| io_err(std::io::Error::other(e)))?,
            ),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const TEXT: &[u8] = b"<metadata packages=\"0\"></metadata>\n";

    fn roundtrip(name: &str, compressed: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress(name, compressed)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_all_three_formats_and_plain() {
        let zst = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(roundtrip("x-primary.xml.zst", &zst), TEXT);
        assert_eq!(roundtrip("x-primary.xml.xz", &xz(TEXT)), TEXT);
        assert_eq!(roundtrip("x-primary.xml.gz", &gzip(TEXT)), TEXT);
        assert_eq!(roundtrip("primary.xml", TEXT), TEXT);
    }

    #[test]
    fn magic_wins_over_a_wrong_extension() {
        let zst = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(roundtrip("x-primary.xml.gz", &zst), TEXT);
        assert_eq!(roundtrip("primary.xml", &xz(TEXT)), TEXT);
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut two = gzip(b"<a>");
        two.extend(gzip(b"</a>"));
        assert_eq!(roundtrip("p.xml.gz", &two), b"<a></a>");
    }

    #[test]
    fn refuses_a_compressed_name_without_magic() {
        let err = decompress("p.xml.zst", &b"<html>503</html>"[..])
            .err()
            .unwrap();
        assert!(matches!(
            err,
            DecompressError::NotCompressed {
                claimed: "zstd",
                ..
            }
        ));
        assert!(err.to_string().contains("p.xml.zst"));
    }

    #[test]
    fn refuses_bzip2() {
        let err = decompress("p.xml.bz2", &b"BZh9"[..]).err().unwrap();
        assert!(matches!(err, DecompressError::Unsupported { ref ext, .. } if ext == "bz2"));
    }
}
