//! The payload compressors rpm reads: gzip, bzip2, xz, lzma, zstd and none.
//!
//! Each decoder streams the bytes after the header. A damaged or cut-off
//! stream is an `io::Error` from `read` (never a panic, never a loop that
//! makes no progress), which the cpio reader reports as the package's
//! corrupt payload. How far a payload may expand is the caller's bound
//! ([`super::cpio::Bounded`]), applied to the decompressed bytes.

use std::fmt;
use std::io::{self, BufRead, Read};

/// What an unsupported-compressor error lists.
pub const SUPPORTED: &str = "gzip, bzip2, xz, lzma, zstd or none";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    None,
    Gzip,
    Bzip2,
    Xz,
    Lzma,
    Zstd,
}

impl Compressor {
    pub const ALL: [Compressor; 6] = [
        Compressor::None,
        Compressor::Gzip,
        Compressor::Bzip2,
        Compressor::Xz,
        Compressor::Lzma,
        Compressor::Zstd,
    ];

    /// From `PAYLOADCOMPRESSOR`: the names rpm writes (`gzip`, `bzip2`,
    /// `xz`, `lzma`, `zstd`) and the io names its reader also accepts
    /// (`gzdio`, `bzdio`, …, as `Fdopen` looks either up).
    pub fn from_tag(value: &str) -> Option<Compressor> {
        Some(match value {
            "none" | "identity" | "" | "ufdio" => Compressor::None,
            "gzip" | "gzdio" => Compressor::Gzip,
            "bzip2" | "bzdio" => Compressor::Bzip2,
            "xz" | "xzdio" => Compressor::Xz,
            "lzma" | "lzdio" => Compressor::Lzma,
            "zstd" | "zstdio" => Compressor::Zstd,
            _ => return None,
        })
    }

    /// The decoder reading `reader` as this compressor's stream. An xz or
    /// lzma stream whose dictionary would need more than [`XZ_MEMLIMIT`](crate::package::XZ_MEMLIMIT) is
    /// an error, not an allocation of whatever the header claims.
    pub fn decoder<'a>(self, reader: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compressor::None => Box::new(reader),
            // Concatenated members, as `gzip` and rpm's gzread accept.
            Compressor::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            // Concatenated streams (pbzip2's output), as BZ2_bzread reads on.
            Compressor::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
            // rpm opens both with lzma_auto_decoder, so either reads the
            // other's format; concatenated xz streams as `xz -d` reads them.
            Compressor::Xz | Compressor::Lzma => {
                let stream = liblzma::stream::Stream::new_auto_decoder(
                    crate::package::XZ_MEMLIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(io::Error::other)?;
                Box::new(liblzma::bufread::XzDecoder::new_stream(reader, stream))
            }
            Compressor::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        })
    }
}

impl fmt::Display for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compressor::None => "none",
            Compressor::Gzip => "gzip",
            Compressor::Bzip2 => "bzip2",
            Compressor::Xz => "xz",
            Compressor::Lzma => "lzma",
            Compressor::Zstd => "zstd",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    /// 250 KB of text that compresses but not to nothing: three bzip2
    /// blocks at level 1 (100 kB each), several zstd blocks.
    fn plain() -> Vec<u8> {
        let mut out = Vec::new();
        let mut x: u32 = 1;
        while out.len() < 250_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            writeln!(out, "line {} value {}", out.len(), x >> 16).unwrap();
        }
        out
    }

    /// `data` as `c` writes it, with the crates' encoders.
    fn compress(c: Compressor, data: &[u8]) -> Vec<u8> {
        match c {
            Compressor::None => data.to_vec(),
            Compressor::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compressor::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compressor::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compressor::Lzma => {
                let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
                let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
                let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compressor::Zstd => zstd::encode_all(data, 19).unwrap(),
        }
    }

    /// Decode `input` as `c` in a thread, failing the test if it panics or
    /// takes more than 20 s (a decoder spinning on bad input).
    fn decode(c: Compressor, input: Vec<u8>) -> io::Result<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let res = c
                .decoder(&input[..])
                .and_then(|mut d| d.read_to_end(&mut out))
                .map(|_| out);
            let _ = tx.send(res);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(res) => res,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{c}: decoding did not finish in 20 s"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{c}: the decoder panicked"),
        }
    }

    #[test]
    fn tag_values_rpm_writes_and_reads() {
        for c in Compressor::ALL {
            assert_eq!(Compressor::from_tag(&c.to_string()), Some(c));
        }
        assert_eq!(Compressor::from_tag("bzdio"), Some(Compressor::Bzip2));
        assert_eq!(Compressor::from_tag("lzdio"), Some(Compressor::Lzma));
        assert_eq!(Compressor::from_tag("lz4"), None);
        assert_eq!(Compressor::from_tag("zlib"), None);
    }

    #[test]
    fn every_compressor_round_trips() {
        let data = plain();
        for c in Compressor::ALL {
            let packed = compress(c, &data);
            if c != Compressor::None {
                assert!(packed.len() < data.len() / 2, "{c}: {} bytes", packed.len());
            }
            let out = decode(c, packed).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert!(
                out == data,
                "{c}: {} of {} bytes back",
                out.len(),
                data.len()
            );
        }
    }

    /// pbzip2 and `cat a.bz2 b.bz2` make several streams; bzip2 reads on.
    #[test]
    fn concatenated_streams_are_one_payload() {
        let data = plain();
        let (a, b) = data.split_at(123_457);
        for c in [
            Compressor::Bzip2,
            Compressor::Gzip,
            Compressor::Xz,
            Compressor::Zstd,
        ] {
            let mut joined = compress(c, a);
            joined.extend(compress(c, b));
            let out = decode(c, joined).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert!(
                out == data,
                "{c}: {} of {} bytes back",
                out.len(),
                data.len()
            );
        }
    }

    /// A stream cut anywhere is an error from the decoder: its caller never
    /// mistakes a shortened payload for a whole one. (Uncompressed payloads
    /// have no end marker; the cpio trailer is what finds them short.)
    #[test]
    fn a_cut_stream_is_an_error() {
        let data = plain();
        for c in Compressor::ALL {
            if c == Compressor::None {
                continue;
            }
            let packed = compress(c, &data);
            let n = packed.len();
            for cut in [0, 1, 5, 13, n / 3, n / 2, n - 40, n - 5, n - 1] {
                let res = decode(c, packed[..cut].to_vec());
                assert!(
                    res.is_err(),
                    "{c}: cut at {cut} of {n} decoded without error"
                );
            }
        }
    }

    /// Damage at 150 places of each compressed stream, three ways: the
    /// decoder never panics or spins (see [`decode`]). Where the format
    /// checks its data (gzip's CRC-32, bzip2's block and stream CRCs, xz's
    /// CRC-64), damage is an error or harmless (a gzip header's mtime), never
    /// other bytes. lzma and rpm's zstd frames carry no checksum: what they
    /// return is caught after decoding by the cpio parser and the header's
    /// sizes and digests.
    #[test]
    fn damaged_streams_are_errors_and_never_hang() {
        let data = plain();
        for c in Compressor::ALL {
            if c == Compressor::None {
                continue;
            }
            let checked = matches!(c, Compressor::Gzip | Compressor::Bzip2 | Compressor::Xz);
            let packed = compress(c, &data);
            let (mut errors, mut tries) = (0, 0);
            for at in (0..packed.len()).step_by(packed.len().div_ceil(150)) {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = packed.clone();
                    bad[at] ^= flip;
                    tries += 1;
                    match decode(c, bad) {
                        Err(_) => errors += 1,
                        Ok(out) => assert!(
                            !checked || out == data,
                            "{c}: damage at byte {at} (^{flip:#x}) decoded to other bytes without an error"
                        ),
                    }
                }
            }
            eprintln!("{c}: {errors} of {tries} damaged streams were errors");
            assert!(errors > 0, "{c}: no damage was an error");
        }
    }

    /// The header claims a compressor but the payload is another format or
    /// garbage: an error at the first read, whatever the pair.
    #[test]
    fn the_wrong_format_is_an_error_at_once() {
        let data = plain();
        for claimed in Compressor::ALL {
            if claimed == Compressor::None {
                continue;
            }
            for actual in Compressor::ALL {
                let lzma_family = [Compressor::Xz, Compressor::Lzma];
                if actual == claimed
                    || (lzma_family.contains(&claimed) && lzma_family.contains(&actual))
                {
                    continue;
                }
                let input = compress(actual, &data);
                let mut d = claimed.decoder(&input[..]).unwrap();
                let mut first = [0u8; 4096];
                assert!(
                    d.read(&mut first).is_err(),
                    "{claimed} decoder read {actual} data"
                );
            }
        }
    }

    /// As rpm's lzma_auto_decoder: an `xz`-tagged payload in lzma's format
    /// reads, and the other way round.
    #[test]
    fn xz_and_lzma_read_each_other_as_in_rpm() {
        let data = plain();
        for (claimed, actual) in [
            (Compressor::Xz, Compressor::Lzma),
            (Compressor::Lzma, Compressor::Xz),
        ] {
            let out = decode(claimed, compress(actual, &data))
                .unwrap_or_else(|e| panic!("{claimed} reading {actual}: {e}"));
            assert!(out == data, "{claimed} reading {actual}");
        }
    }

    /// Found by the `payload` fuzz target: an lzma ("alone") header claiming a
    /// 4 GiB dictionary made liblzma allocate 4 GiB. Now an error.
    #[test]
    fn an_lzma_header_claiming_a_huge_dictionary_is_refused_not_allocated() {
        let stream = b"0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff8";
        for c in [Compressor::Lzma, Compressor::Xz] {
            let mut out = Vec::new();
            let read = c
                .decoder(&stream[..])
                .and_then(|mut d| std::io::Read::read_to_end(&mut d, &mut out));
            let err = read.expect_err("decoded");
            // Refused for its memory need, before any dictionary is allocated.
            assert!(err.to_string().contains("memory"), "{c:?}: {err}");
        }
    }
}
