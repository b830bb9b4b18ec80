//! Compressed layers remembered by what they compress.
//!
//! Compression is most of a warm rebuild's time (gzip of a 30 MB tree is
//! ~0.7 s of a ~1.1 s build; see tests/bench). The compressed blob is a pure
//! function of the uncompressed tar and the codec, so the cache key is exactly
//! that: the tar's sha256 (the layer's diff_id, computed by streaming the tar
//! into a hasher, ~30 ms) plus a codec id. A key says nothing about recipes,
//! packages or options, so no input can be forgotten: whatever changes the
//! tree changes the diff_id.
//!
//! The codec id covers what decides the compressed bytes besides the tar: the
//! codec and its level, minibuild's version and its Cargo.lock (a new zlib-rs
//! or libzstd may compress differently; the cache must then miss, or a warm
//! build's digest would differ from a cold one's).
//!
//! ```text
//! <cache>/v1/layers/<codec>-<diff_id hex>.blob   the compressed layer
//! <cache>/v1/layers/<codec>-<diff_id hex>.json   {digest, size, uncompressed_size}
//! ```
//!
//! The `.json` is written (atomically) after the blob, so its presence means
//! the entry is complete. A hit is copied into the image while being hashed
//! *and decompressed*: the copy must have the digest and size the `.json`
//! records, and must decompress to exactly the tar this build would write
//! (its sha256 is the key's diff_id, its length the tar's). The `.json` is
//! only a record, not a proof: anyone who can write the cache can write both
//! files, so the decompressed check is what stops a planted or swapped entry
//! from shipping. A bad entry is deleted, the layer compressed again, and the
//! build says so ([`Origin::Replaced`]). What is not detected: a blob that is
//! another valid compression of the same tar (same content, another layer
//! digest than a clean build's).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::rootfs::Tree;

use super::error::ImageError;
use super::layer::{
    codec_id, finish_blob, start_blob, tar_digest, write_layer, Compression, LayerInfo,
    LayerOptions,
};

/// minibuild's dependency versions, which decide the compressors' code.
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// A directory of compressed layers (normally the cache's `v1/layers`).
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

/// What the `.json` beside a cached blob records.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    digest: Digest,
    size: u64,
    uncompressed_size: u64,
}

/// How a layer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compressed now (and stored for next time).
    Compressed,
    /// Copied from the cache, verified.
    Cached,
    /// The cache's entry was bad (why): dropped, compressed again and stored.
    Replaced(&'static str),
}

impl LayerCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LayerCache { dir: dir.into() }
    }

    /// The layer for `tree` in `blob_dir`: from the cache when an entry for
    /// the same tar and codec exists and verifies, else compressed by
    /// [`write_layer`] and stored. Failing to store only costs the next build
    /// time, so it is not an error; failing to read a verified hit is.
    pub fn write_layer(
        &self,
        tree: &Tree,
        opts: &LayerOptions,
        blob_dir: &Path,
    ) -> Result<(LayerInfo, Origin), ImageError> {
        if opts.compression == Compression::None {
            // The blob is the tar: copying it would cost what writing does.
            return Ok((write_layer(tree, opts, blob_dir)?, Origin::Compressed));
        }
        let (diff_id, uncompressed_size) = tar_digest(tree, opts)?;
        let stem = self.stem(&diff_id, opts);
        let mut origin = Origin::Compressed;
        if let Some(meta) = self.lookup(&stem) {
            match self.copy_out(&stem, &meta, &diff_id, uncompressed_size, opts, blob_dir)? {
                Ok(info) => return Ok((info, Origin::Cached)),
                Err(why) => {
                    self.remove(&stem);
                    origin = Origin::Replaced(why);
                }
            }
        }
        let info = write_layer(tree, opts, blob_dir)?;
        if info.diff_id != diff_id {
            // The tree was read twice and gave two tars: a bug, and one
            // that would make builds irreproducible, so say so loudly.
            return Err(ImageError::Layer {
                path: "(whole layer)".into(),
                source: io::Error::other(format!(
                    "the layer's tar is not deterministic ({diff_id} then {})",
                    info.diff_id
                )),
            });
        }
        // Best effort: a read-only or full cache must not fail the build.
        let _ = self.store(&stem, &info);
        Ok((info, origin))
    }

    /// The key of the entry for a tar with `diff_id` under `opts`'s codec
    /// (the file name stem); the same on every machine running this build
    /// of minibuild, so a shared cache (`--cache-repo`) can name entries by it.
    pub fn key(&self, diff_id: &Digest, opts: &LayerOptions) -> String {
        self.stem(diff_id, opts)
    }

    /// Whether an entry for `key` is recorded (not whether it verifies).
    pub fn has(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// The blob file of entry `key` (present once stored or adopted).
    pub fn blob_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.blob"))
    }

    /// Where to put a blob fetched from elsewhere before [`Self::adopt`]
    /// (beside the entries, so adopting it is a rename).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Record `blob` (moved in) as the entry for `key` with what its source
    /// says it is. Nothing is trusted: [`Self::write_layer`] verifies an
    /// entry (decompressed, against the diff_id) before using it.
    pub fn adopt(
        &self,
        key: &str,
        blob: &Path,
        digest: &Digest,
        size: u64,
        uncompressed_size: u64,
    ) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::rename(blob, self.dir.join(format!("{key}.blob")))?;
        let meta = Meta {
            digest: digest.clone(),
            size,
            uncompressed_size,
        };
        let json = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&self.dir.join(format!("{key}.json")), &json)
            .map_err(io::Error::other)
    }

    /// `<codec>-<diff_id hex>`: the entry's file name without extension.
    fn stem(&self, diff_id: &Digest, opts: &LayerOptions) -> String {
        let codec = codec_id(opts.compression);
        let build = Digest::sha256_of(
            format!("{codec}\n{}\n{CARGO_LOCK}", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        format!("{codec}.{}-{}", &build.hex()[..12], diff_id.hex())
    }

    fn lookup(&self, stem: &str) -> Option<Meta> {
        let text = fs::read(self.dir.join(format!("{stem}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Copy the cached blob into `blob_dir`, hashing it and what it
    /// decompresses to as it goes; `Err(why)` when the copy is not the
    /// entry's record or not this layer's tar (the copy is then discarded).
    fn copy_out(
        &self,
        stem: &str,
        meta: &Meta,
        diff_id: &Digest,
        uncompressed_size: u64,
        opts: &LayerOptions,
        blob_dir: &Path,
    ) -> Result<Result<LayerInfo, &'static str>, ImageError> {
        let src = self.dir.join(format!("{stem}.blob"));
        let Ok(file) = File::open(&src) else {
            return Ok(Err("its blob is missing"));
        };
        let mut hasher = start_blob(blob_dir)?;
        let mut tar = Hasher::new(Algorithm::Sha256, io::sink());
        let mut tee = Tee {
            inner: BufReader::with_capacity(1 << 20, file),
            out: &mut hasher,
        };
        // Every byte of the file passes the tee once: through the
        // decompressor, then whatever it left unread.
        let decompressed = match opts.compression {
            Compression::Gzip => {
                io::copy(&mut flate2::read::MultiGzDecoder::new(&mut tee), &mut tar)
            }
            Compression::Zstd => zstd::stream::read::Decoder::new(&mut tee)
                .and_then(|mut d| io::copy(&mut d, &mut tar)),
            Compression::None => Ok(0),
        }
        .and_then(|_| io::copy(&mut tee, &mut io::sink()));
        let (digest, size, buf) = hasher.finish();
        let (tar_digest, tar_size, _) = tar.finish();
        let why = if decompressed.is_err() {
            Some("its blob does not decompress")
        } else if digest != meta.digest || size != meta.size {
            Some("its blob is not the one its record names")
        } else if tar_digest != *diff_id || tar_size != uncompressed_size {
            Some("its blob decompresses to another tar than this layer's")
        } else {
            None
        };
        if let Some(why) = why {
            return Ok(Err(why)); // the temp blob is deleted on drop
        }
        let path_of_blob = finish_blob(buf, &digest, blob_dir)?;
        Ok(Ok(LayerInfo {
            digest,
            diff_id: diff_id.clone(),
            size,
            uncompressed_size,
            media_type: opts.compression.media_type(),
            path_of_blob,
        }))
    }

    /// Blob first (hardlinked when the cache is on the same filesystem,
    /// else copied), then the `.json` that makes the entry visible.
    fn store(&self, stem: &str, info: &LayerInfo) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let blob = self.dir.join(format!("{stem}.blob"));
        crate::fsutil::publish_copy(&info.path_of_blob, &blob, crate::fsutil::TEMP_PREFIX)?;
        let meta = Meta {
            digest: info.digest.clone(),
            size: info.size,
            uncompressed_size: info.uncompressed_size,
        };
        let json = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&self.dir.join(format!("{stem}.json")), &json)
            .map_err(io::Error::other)
    }

    fn remove(&self, stem: &str) {
        // The blob first: a `.json` without it reads as a bad entry, never a hit.
        for ext in ["blob", "json"] {
            let _ = fs::remove_file(self.dir.join(format!("{stem}.{ext}")));
        }
    }
}

/// A reader that copies what it reads to `out`.
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::tests::opts;
    use crate::image::test_tree::TestTree;

    /// The layer written without the cache, for comparison.
    fn fresh(tree: &Tree, o: &LayerOptions) -> (LayerInfo, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let info = write_layer(tree, o, dir.path()).unwrap();
        let bytes = fs::read(&info.path_of_blob).unwrap();
        (info, bytes)
    }

    #[test]
    fn a_hit_gives_the_same_blob_as_compressing() {
        let sample = TestTree::sample();
        let tree = &sample.tree;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(cache_dir.path());
        let o = opts(Compression::Gzip);
        let (want, want_bytes) = fresh(tree, &o);

        let first = tempfile::tempdir().unwrap();
        let (info, origin) = cache.write_layer(tree, &o, first.path()).unwrap();
        assert_eq!(origin, Origin::Compressed);
        assert_eq!(info.digest, want.digest);

        let second = tempfile::tempdir().unwrap();
        let (info, origin) = cache.write_layer(tree, &o, second.path()).unwrap();
        assert_eq!(origin, Origin::Cached);
        assert_eq!(info.digest, want.digest);
        assert_eq!(info.diff_id, want.diff_id);
        assert_eq!(info.size, want.size);
        assert_eq!(info.uncompressed_size, want.uncompressed_size);
        assert_eq!(info.path_of_blob, second.path().join(want.digest.hex()));
        assert_eq!(fs::read(&info.path_of_blob).unwrap(), want_bytes);
    }

    #[test]
    fn codecs_and_epochs_do_not_share_entries() {
        let sample = TestTree::sample();
        let tree = &sample.tree;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(cache_dir.path());
        let out = tempfile::tempdir().unwrap();
        let gz = opts(Compression::Gzip);
        cache.write_layer(tree, &gz, out.path()).unwrap();

        let zst = opts(Compression::Zstd);
        let (info, origin) = cache.write_layer(tree, &zst, out.path()).unwrap();
        assert_eq!(origin, Origin::Compressed);
        assert_eq!(info.digest, fresh(tree, &zst).0.digest);

        // An older epoch clamps mtimes differently: another tar, another entry.
        let older = LayerOptions {
            source_date_epoch: 1,
            ..gz
        };
        let (info, origin) = cache.write_layer(tree, &older, out.path()).unwrap();
        assert_eq!(origin, Origin::Compressed);
        assert_eq!(info.digest, fresh(tree, &older).0.digest);
    }

    #[test]
    fn a_corrupted_entry_is_dropped_and_recompressed() {
        let sample = TestTree::sample();
        let tree = &sample.tree;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(cache_dir.path());
        let o = opts(Compression::Gzip);
        let out = tempfile::tempdir().unwrap();
        let (want, _) = cache.write_layer(tree, &o, out.path()).unwrap();

        // Flip a byte of the cached blob (a copy, so the image's blob
        // that it may be hardlinked to stays intact).
        let blob = fs::read_dir(cache_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "blob"))
            .unwrap();
        let mut bytes = fs::read(&blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, &bytes).unwrap();

        let again = tempfile::tempdir().unwrap();
        let (info, origin) = cache.write_layer(tree, &o, again.path()).unwrap();
        assert!(matches!(origin, Origin::Replaced(_)), "{origin:?}");
        assert_eq!(info.digest, want.digest);
        assert_eq!(
            Digest::sha256_of(&fs::read(&info.path_of_blob).unwrap()),
            want.digest
        );
        // …and the entry was rewritten, so the next build hits again.
        let third = tempfile::tempdir().unwrap();
        assert_eq!(
            cache.write_layer(tree, &o, third.path()).unwrap().1,
            Origin::Cached
        );
    }

    #[test]
    fn an_unwritable_cache_still_builds() {
        let sample = TestTree::sample();
        let tree = &sample.tree;
        let not_a_dir = tempfile::NamedTempFile::new().unwrap();
        let cache = LayerCache::new(not_a_dir.path().join("layers"));
        let out = tempfile::tempdir().unwrap();
        let o = opts(Compression::Zstd);
        let (info, origin) = cache.write_layer(tree, &o, out.path()).unwrap();
        assert_eq!(origin, Origin::Compressed);
        assert!(info.path_of_blob.is_file());
    }
}
