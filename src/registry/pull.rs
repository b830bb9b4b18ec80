//! The pull side of the registry client: blobs and manifests read back,
//! with the push's credential and TLS rules (the same `Client`:
//! credentials only to the registry's origin, redirects of a GET followed
//! without them elsewhere, https never downgraded).
//!
//! Nothing read is trusted: a blob is hashed while it streams to disk and
//! kept only when it has the digest asked for; a manifest asked for by
//! digest must hash to it. Both are size-bounded, so a hostile registry
//! cannot fill the disk or the memory.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::digest::{Digest, Hasher};
use crate::fsutil::AtomicFile;

use super::auth;
use super::client::Client;
use super::error::PushError;
use super::event::PushEvent;
use super::options::PushOptions;
use super::reference::Reference;

/// The most a manifest read back may weigh (the distribution spec's own
/// recommendation for what a registry accepts).
pub const MANIFEST_MAX: u64 = 4 << 20;

/// A manifest as read back.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    /// Its `Content-Type`, if the registry sent one.
    pub media_type: Option<String>,
}

/// A registry session for reading (and writing) one repository.
pub struct Session<'a> {
    client: Client<'a>,
}

impl<'a> Session<'a> {
    /// Reach the registry of `reference` and authenticate, with the
    /// credentials [`auth::lookup`] finds for it.
    pub fn connect(
        reference: &'a Reference,
        opts: &'a PushOptions,
        progress: &'a dyn Fn(PushEvent),
    ) -> Result<Self, PushError> {
        let found = auth::lookup(
            &reference.registry,
            &reference.repository,
            opts.creds.as_ref(),
            &opts.auth_env,
        )?;
        Ok(Session {
            client: Client::connect(reference, opts, found, progress)?,
        })
    }

    /// Upload the file `path` (`size` bytes, hashing to `digest`) as a
    /// blob unless the repository has it; whether it was uploaded.
    pub fn put_blob_file(
        &mut self,
        digest: &Digest,
        path: &Path,
        size: u64,
    ) -> Result<bool, PushError> {
        if self.client.blob_exists(digest)? {
            return Ok(false);
        }
        let source = crate::image::BlobSource {
            path: path.to_path_buf(),
            offset: 0,
            size,
        };
        self.client.upload_blob(digest, &source)?;
        Ok(true)
    }

    /// Upload small in-memory bytes as a blob unless the repository has it.
    pub fn put_blob_bytes(&mut self, bytes: &[u8]) -> Result<(), PushError> {
        super::attach::upload_bytes(&mut self.client, bytes, &|_| {})
    }

    /// `PUT` a manifest under `reference` (a tag); the digest the registry
    /// stored it under, if it said.
    pub fn put_manifest(
        &mut self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, PushError> {
        Ok(self
            .client
            .put_manifest(reference, media_type, bytes)?
            .digest)
    }

    /// `HEAD` a blob: whether the repository has `digest`.
    pub fn has_blob(&mut self, digest: &Digest) -> Result<bool, PushError> {
        self.client.blob_exists(digest)
    }

    /// `GET` blob `digest` into `dest` (created atomically: a temp file
    /// beside it, renamed once complete). The bytes are hashed as they
    /// stream and the file is kept only if they hash to `digest`; more than
    /// `max` bytes is an error. Returns the size, or None when the registry
    /// has no such blob.
    pub fn blob_to_file(
        &mut self,
        digest: &Digest,
        dest: &Path,
        max: u64,
    ) -> Result<Option<u64>, PushError> {
        let path = format!("blobs/{digest}");
        let url = self.client.url(&path);
        let Some(resp) = self.client.get(&path, &[])? else {
            return Ok(None);
        };
        let registry = self.client.registry().to_string();
        let io_err = |e: io::Error| PushError::ReadBlob {
            path: dest.to_path_buf(),
            digest: digest.clone(),
            source: e,
        };
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let tmp = AtomicFile::create_in(
            dir,
            crate::cache::PARTIAL_PREFIX,
            crate::cache::private_file_mode(),
        )
        .map_err(io_err)?;
        // One byte past the bound tells "too big" from "exactly max".
        let mut body = resp
            .into_body()
            .into_with_config()
            .limit(max.saturating_add(1))
            .reader();
        let mut hasher = Hasher::new(digest.algo(), io::BufWriter::new(tmp));
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if size >= max => {
                    return Err(too_big(&registry, &url, max, Some(e)));
                }
                Err(e) => {
                    return Err(PushError::Registry {
                        registry,
                        what: format!("GET {url}: the body broke off after {size} bytes: {e}"),
                    })
                }
            };
            size += n as u64;
            if size > max {
                return Err(too_big(&registry, &url, max, None));
            }
            hasher.write_all(&buf[..n]).map_err(io_err)?;
        }
        let (actual, _, writer) = hasher.finish();
        if &actual != digest {
            return Err(PushError::Registry {
                registry,
                what: format!(
                    "GET {url} sent {size} bytes that hash to {actual}, not {digest}: the registry's storage is corrupt or it is not what it claims; the blob was discarded"
                ),
            });
        }
        let tmp = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
        tmp.persist(dest).map_err(io_err)?;
        Ok(Some(size))
    }

    /// `GET` the manifest `reference` (a tag or a digest) accepting the
    /// media types of `accept`: its bytes and `Content-Type`, or None on
    /// 404. At most [`MANIFEST_MAX`] bytes; when `reference` is a digest the
    /// bytes must hash to it.
    pub fn manifest(
        &mut self,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<Manifest>, PushError> {
        let path = format!("manifests/{reference}");
        let url = self.client.url(&path);
        let headers = [("Accept", accept.join(", "))];
        let Some(mut resp) = self.client.get(&path, &headers)? else {
            return Ok(None);
        };
        let registry = self.client.registry().to_string();
        let media_type = resp
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MANIFEST_MAX)
            .read_to_vec()
            .map_err(|e| PushError::Registry {
                registry: registry.clone(),
                what: format!(
                    "GET {url}: cannot read the manifest (at most {MANIFEST_MAX} bytes): {e}"
                ),
            })?;
        if let Ok(pinned) = reference.parse::<Digest>() {
            let actual =
                Digest::of_reader(pinned.algo(), &bytes[..]).map_err(|e| PushError::Registry {
                    registry: registry.clone(),
                    what: format!("GET {url}: cannot hash the manifest: {e}"),
                })?;
            if actual != pinned {
                return Err(PushError::Registry {
                    registry,
                    what: format!("GET {url} answered a manifest that hashes to {actual}: refused"),
                });
            }
        }
        Ok(Some(Manifest { bytes, media_type }))
    }

    /// `host[:port]` of the registry.
    pub fn registry(&self) -> &str {
        self.client.registry()
    }
}

fn too_big(registry: &str, url: &str, max: u64, e: Option<io::Error>) -> PushError {
    PushError::Registry {
        registry: registry.to_string(),
        what: format!(
            "GET {url} sent more than the {max} bytes expected{}; the download was stopped",
            e.map(|e| format!(" ({e})")).unwrap_or_default()
        ),
    }
}
