//! Pushing a finished image (OCI layout dir or oci-archive) to a registry.
//!
//! The local image is only read. Its `index.json` names the top
//! descriptor (a manifest, or an image index for a multi-arch image); the
//! push walks it and sends, in order:
//!
//! 1. every blob (configs and layers), skipping those the registry already
//!    has (`HEAD`), each streamed from the layout file or from its byte
//!    range inside the archive;
//! 2. each platform manifest by digest (for an index);
//! 3. the top manifest or index under the tag (or its digest);
//! 4. with [`push_attaching`], an SBOM artifact per platform manifest
//!    (`attach.rs`).
//!
//! Manifests are sent as the exact bytes stored in the layout, after
//! checking they hash to their descriptor's digest, so the pushed digest is
//! the one the build printed. The HTTP side is in `registry.rs`.
//!
//! Why not `oci-client`: it can push raw manifest bytes, but it is async
//! (reqwest + tokio + hyper, a second TLS stack and a second `sha2` in a
//! blocking CLI that already has ureq + rustls), has no retry/backoff,
//! uploads a blob from memory (or from a stream it cannot restart), and its
//! `RegistryAuth` derives `Debug` with the password in it. The part of the
//! distribution API a push needs is small enough to own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::{Algorithm, Digest};

use super::attach::{self, Attached, Sbom};
use super::auth::{self, AuthEnv, AuthError, CredSource, Credentials};
use super::image::{Descriptor, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use super::reference::Reference;
use super::registry::{BlobSource, Client};

/// How to reach and authenticate to the registry.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `--creds`, `--creds-file` or `--password-stdin`; wins over auth files.
    pub creds: Option<(Credentials, CredSource)>,
    /// Where auth files and credential helpers are looked up.
    pub auth_env: AuthEnv,
    /// Allow plain HTTP and skip certificate verification (`--insecure`).
    pub insecure: bool,
    /// `--cert-dir DIR`: `*.crt` CAs, `*.cert`/`*.key` client certificate.
    pub cert_dir: Option<PathBuf>,
    /// `--ca FILE`: a PEM CA bundle trusted besides the system roots.
    pub ca: Option<PathBuf>,
    /// Retries after a transient failure (connect error, timeout, 5xx, 429).
    pub retries: u32,
    /// First retry delay; doubled each retry (capped at 30 s).
    pub backoff: Duration,
    /// Upload blobs in `PATCH` chunks of this size; None: one `PUT`.
    pub chunk_size: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            creds: None,
            auth_env: AuthEnv::from_env(),
            insecure: false,
            cert_dir: None,
            ca: None,
            retries: 4,
            backoff: Duration::from_millis(500),
            chunk_size: None,
        }
    }
}

/// Progress of a push, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The registry already has this blob; not uploaded.
    BlobSkipped {
        digest: Digest,
        size: u64,
    },
    BlobUploading {
        digest: Digest,
        size: u64,
    },
    BlobUploaded {
        digest: Digest,
        size: u64,
    },
    /// A manifest or index was stored under `reference` (a tag or digest).
    ManifestPushed {
        digest: Digest,
        reference: String,
    },
    /// A transient failure; retrying after `delay`.
    Retrying {
        what: String,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
}

/// One line per event, for a progress log (`push: …`).
impl std::fmt::Display for PushEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushEvent::BlobSkipped { digest, size } => {
                write!(f, "blob {digest} ({size} bytes) already in the registry")
            }
            PushEvent::BlobUploading { digest, size } => {
                write!(f, "uploading blob {digest} ({size} bytes)")
            }
            PushEvent::BlobUploaded { digest, .. } => write!(f, "uploaded blob {digest}"),
            PushEvent::ManifestPushed { digest, reference } if *reference == digest.to_string() => {
                write!(f, "pushed manifest {digest}")
            }
            PushEvent::ManifestPushed { digest, reference } => {
                write!(f, "pushed {digest} as `{reference}`")
            }
            PushEvent::Retrying {
                what,
                attempt,
                delay,
                reason,
            } => write!(
                f,
                "{what}: {reason}; retry {attempt} in {:.1}s",
                delay.as_secs_f64()
            ),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub reference: Reference,
    /// The digest the tag now points to (manifest, or index if multi-arch).
    pub digest: Digest,
    pub media_type: String,
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    /// SBOMs attached as artifacts ([`push_attaching`]).
    pub attached: Vec<Attached>,
}

impl Pushed {
    /// `REGISTRY/REPO:TAG@sha256:…`, what the CLI prints after a push.
    pub fn pinned(&self) -> String {
        self.reference.pinned(&self.digest)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read the image `{}`: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    #[error("cannot read blob {digest} from `{}`", path.display())]
    ReadBlob {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("unknown registry host `{registry}`: it does not resolve; check the name in the image reference")]
    UnknownHost {
        registry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with registry `{registry}` failed: {reason}; for a private CA pass --ca FILE or --cert-dir DIR (or --insecure for a test registry)")]
    Tls { registry: String, reason: String },
    #[error("registry `{registry}` answered in plain HTTP at {url}, where TLS was expected: if it really has no TLS and you trust the network to it, pass --insecure; otherwise check the host and port")]
    PlainHttp { registry: String, url: String },
    #[error(
        "registry `{registry}` named {what} `{url}`, and minibuild sent nothing there: {rule}"
    )]
    Refused {
        registry: String,
        /// "the token realm", "the upload location", "a redirect to".
        what: &'static str,
        url: String,
        rule: super::origin::Refusal,
    },
    #[error("registry `{registry}` does not speak HTTP as expected: {reason}")]
    Protocol { registry: String, reason: String },
    #[error("registry `{registry}` stopped responding: {what} failed after {attempts} attempt(s): {reason}; is the registry running and reachable?")]
    Unreachable {
        registry: String,
        what: String,
        attempts: u32,
        reason: String,
    },
    #[error("{}", unauthorized_message(registry, repository, *status, looked, *had_credentials))]
    Unauthorized {
        registry: String,
        repository: String,
        status: u16,
        /// Where credentials came from, or where they were looked for.
        looked: String,
        had_credentials: bool,
    },
    #[error("registry `{registry}`: {what}")]
    Registry { registry: String, what: String },
    #[error("cannot attach the SBOM `{}`: {reason}", path.display())]
    Sbom { path: PathBuf, reason: String },
    #[error("the image is {actual}, but the reference pins {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
}

fn unauthorized_message(
    registry: &str,
    repository: &str,
    status: u16,
    looked: &str,
    had_credentials: bool,
) -> String {
    match (status, had_credentials) {
        (403, _) => format!(
            "registry `{registry}` denied push access to `{repository}` (HTTP 403; {looked}): the account may lack push rights to this repository"
        ),
        (_, true) => format!(
            "registry `{registry}` rejected the user name or password (HTTP {status}; {looked}): check them, or log in again with `skopeo login {registry}`"
        ),
        (_, false) => format!(
            "registry `{registry}` requires authentication ({looked}): pass --creds-file FILE (a USER:PASSWORD line) or --username USER --password-stdin, or log in with `skopeo login {registry}`"
        ),
    }
}

/// Push the image at `image` (layout dir or oci-archive) to `reference`.
pub fn push(
    image: &Path,
    reference: &Reference,
    opts: &PushOptions,
    progress: &dyn Fn(PushEvent),
) -> Result<Pushed, PushError> {
    push_attaching(image, reference, &[], opts, progress)
}

/// [`push`], then attach each of `sboms` to the manifest it describes as an
/// OCI artifact (see [`super::attach`]). The SBOMs are read and matched to
/// the image's manifests before anything is sent.
pub fn push_attaching(
    image: &Path,
    reference: &Reference,
    sboms: &[PathBuf],
    opts: &PushOptions,
    progress: &dyn Fn(PushEvent),
) -> Result<Pushed, PushError> {
    let local = LocalImage::open(image, reference.tag())?;
    let sboms = sboms
        .iter()
        .map(|p| Sbom::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let subjects = local.subjects();
    let targets = attach::match_subjects(&subjects, local.children.len().max(1), &sboms)?;
    if let Some(pinned) = reference.digest() {
        if *pinned != local.top.digest {
            return Err(PushError::DigestMismatch {
                expected: pinned.clone(),
                actual: local.top.digest.clone(),
            });
        }
    }
    let found = auth::lookup(
        &reference.registry,
        &reference.repository,
        opts.creds.as_ref(),
        &opts.auth_env,
    )?;
    let mut client = Client::connect(reference, opts, found, progress)?;

    let mut pushed = Pushed {
        reference: reference.clone(),
        digest: local.top.digest.clone(),
        media_type: local.top.media_type.clone(),
        blobs_uploaded: 0,
        blobs_skipped: 0,
        bytes_uploaded: 0,
        attached: Vec::new(),
    };
    for (digest, size) in &local.blobs {
        if client.blob_exists(digest)? {
            progress(PushEvent::BlobSkipped {
                digest: digest.clone(),
                size: *size,
            });
            pushed.blobs_skipped += 1;
            continue;
        }
        let source = local.store.source(digest, *size)?;
        progress(PushEvent::BlobUploading {
            digest: digest.clone(),
            size: *size,
        });
        client.upload_blob(digest, &source)?;
        progress(PushEvent::BlobUploaded {
            digest: digest.clone(),
            size: *size,
        });
        pushed.blobs_uploaded += 1;
        pushed.bytes_uploaded += size;
    }
    for m in &local.children {
        let by_digest = m.digest.to_string();
        client.put_manifest(&by_digest, &m.media_type, &m.bytes)?;
        progress(PushEvent::ManifestPushed {
            digest: m.digest.clone(),
            reference: by_digest,
        });
    }
    let top_ref = match reference.tag() {
        Some(tag) => tag.to_string(),
        None => local.top.digest.to_string(),
    };
    let stored = client.put_manifest(&top_ref, &local.top.media_type, &local.top.bytes)?;
    if let Some(reported) = stored.digest {
        if reported != local.top.digest.to_string() {
            return Err(PushError::Registry {
                registry: reference.registry.clone(),
                what: format!(
                    "stored the manifest as {reported}, not {} (the registry rewrote it?)",
                    local.top.digest
                ),
            });
        }
    }
    progress(PushEvent::ManifestPushed {
        digest: local.top.digest.clone(),
        reference: top_ref,
    });
    for (sbom, &target) in sboms.iter().zip(&targets) {
        let attached = attach::attach(&mut client, &subjects[target], sbom, progress)?;
        pushed.attached.push(attached);
    }
    Ok(pushed)
}

/// Write the pushed digest to `path` atomically (`--digestfile`), as
/// skopeo does: `sha256:…` with no newline.
pub fn write_digestfile(path: &Path, pushed: &Pushed) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(path, pushed.digest.to_string().as_bytes())
}

/// Write `REGISTRY/REPO:TAG@sha256:…` and a newline to `path` atomically
/// (`--image-refs`).
pub fn write_image_refs(path: &Path, pushed: &Pushed) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(path, format!("{}\n", pushed.pinned()).as_bytes())
}

/// A manifest or index: its descriptor's digest and media type, its bytes.
struct Manifest {
    digest: Digest,
    media_type: String,
    bytes: Vec<u8>,
}

/// What a push sends, read from the local image.
struct LocalImage {
    store: Store,
    /// Config and layer blobs, by digest, with their sizes.
    blobs: BTreeMap<Digest, u64>,
    /// Platform manifests of an index (empty for a single manifest).
    children: Vec<Manifest>,
    top: Manifest,
}

/// Blob storage of a layout dir or of an oci-archive.
enum Store {
    Dir(PathBuf),
    /// Archive path and `blobs/sha256/<hex>` → (offset, size) in it.
    Archive(PathBuf, BTreeMap<String, (u64, u64)>),
}

impl Store {
    fn open(image: &Path) -> Result<Store, PushError> {
        let meta = std::fs::metadata(image).map_err(|e| image_err(image, e.to_string()))?;
        if meta.is_dir() {
            return Ok(Store::Dir(image.to_path_buf()));
        }
        let file = File::open(image).map_err(|e| image_err(image, e.to_string()))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = BTreeMap::new();
        let not_tar = |e: std::io::Error| {
            image_err(
                image,
                format!("neither an OCI layout directory nor an oci-archive tar ({e})"),
            )
        };
        for entry in archive.entries().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(not_tar)?
                .to_string_lossy()
                .into_owned();
            let name = name.trim_start_matches("./").to_string();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        }
        Ok(Store::Archive(image.to_path_buf(), entries))
    }

    fn image_path(&self) -> &Path {
        match self {
            Store::Dir(p) | Store::Archive(p, _) => p,
        }
    }

    /// Where `name` (a path inside the layout) is, and its size.
    fn locate(&self, name: &str) -> Result<BlobSource, PushError> {
        match self {
            Store::Dir(dir) => {
                let path = dir.join(name);
                let size = std::fs::metadata(&path)
                    .map_err(|e| image_err(dir, format!("{name}: {e}")))?
                    .len();
                Ok(BlobSource {
                    path,
                    offset: 0,
                    size,
                })
            }
            Store::Archive(path, entries) => {
                let (offset, size) = entries
                    .get(name)
                    .ok_or_else(|| image_err(path, format!("{name} is missing")))?;
                Ok(BlobSource {
                    path: path.clone(),
                    offset: *offset,
                    size: *size,
                })
            }
        }
    }

    fn source(&self, digest: &Digest, size: u64) -> Result<BlobSource, PushError> {
        let src = self.locate(&blob_name(digest))?;
        if src.size != size {
            return Err(image_err(
                self.image_path(),
                format!(
                    "blob {digest} is {} bytes, its descriptor says {size}",
                    src.size
                ),
            ));
        }
        Ok(src)
    }

    /// Read a small file of the layout (index.json, manifests), at most 4 MiB.
    fn read(&self, name: &str) -> Result<Vec<u8>, PushError> {
        const MAX: u64 = 4 << 20;
        let src = self.locate(name)?;
        if src.size > MAX {
            return Err(image_err(
                self.image_path(),
                format!("{name} is {} bytes, too large for a manifest", src.size),
            ));
        }
        let mut f = File::open(&src.path).map_err(|e| image_err(&src.path, e.to_string()))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(src.offset))
            .map_err(|e| image_err(&src.path, e.to_string()))?;
        let mut buf = Vec::with_capacity(src.size as usize);
        f.take(src.size)
            .read_to_end(&mut buf)
            .map_err(|e| image_err(&src.path, format!("{name}: {e}")))?;
        Ok(buf)
    }

    /// A manifest blob, checked against its descriptor's digest.
    fn manifest(&self, desc: &serde_json::Value) -> Result<Manifest, PushError> {
        let (digest, _) = descriptor(desc).map_err(|r| image_err(self.image_path(), r))?;
        let bytes = self.read(&blob_name(&digest))?;
        let actual = Digest::sha256_of(&bytes);
        if actual != digest {
            return Err(image_err(
                self.image_path(),
                format!("blob {digest} is corrupt: its content hashes to {actual}"),
            ));
        }
        let media_type = desc
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or_else(|| {
                let json = json_of(&bytes).ok()?;
                json.get("mediaType")?.as_str().map(str::to_string)
            })
            .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string());
        Ok(Manifest {
            digest,
            media_type,
            bytes,
        })
    }
}

impl LocalImage {
    /// What an SBOM can be attached to: each platform manifest, then the
    /// top (the index of a multi-arch image, or the one manifest).
    fn subjects(&self) -> Vec<Descriptor> {
        let desc =
            |m: &Manifest| Descriptor::new(&m.media_type, m.digest.clone(), m.bytes.len() as u64);
        self.children
            .iter()
            .chain(std::iter::once(&self.top))
            .map(desc)
            .collect()
    }

    /// Read the layout's `index.json` and walk to every blob. With several
    /// tagged entries, `tag` picks one by its `ref.name` annotation.
    fn open(image: &Path, tag: Option<&str>) -> Result<LocalImage, PushError> {
        let store = Store::open(image)?;
        let index = json_of(&store.read("index.json")?)
            .map_err(|e| image_err(image, format!("index.json: {e}")))?;
        let entries = index
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let ref_name = |d: &serde_json::Value| {
            d.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let top_desc = match entries.as_slice() {
            [] => return Err(image_err(image, "index.json lists no image".into())),
            [only] => only.clone(),
            many => {
                let names: Vec<String> = many.iter().filter_map(ref_name).collect();
                many.iter()
                    .find(|d| tag.is_some() && ref_name(d).as_deref() == tag)
                    .cloned()
                    .ok_or_else(|| {
                        image_err(
                            image,
                            format!(
                                "index.json lists {} images (tags: {}); push with one of those tags",
                                many.len(),
                                names.join(", ")
                            ),
                        )
                    })?
            }
        };
        let top = store.manifest(&top_desc)?;
        let mut blobs = BTreeMap::new();
        let mut children = Vec::new();
        if is_index(&top.media_type) {
            let idx = json_of(&top.bytes).map_err(|e| image_err(image, e))?;
            for desc in idx
                .get("manifests")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
            {
                let m = store.manifest(desc)?;
                if is_index(&m.media_type) {
                    return Err(image_err(
                        image,
                        format!("nested index {} inside an index is not supported", m.digest),
                    ));
                }
                collect_blobs(&m, &mut blobs).map_err(|r| image_err(image, r))?;
                children.push(m);
            }
        } else {
            collect_blobs(&top, &mut blobs).map_err(|r| image_err(image, r))?;
        }
        Ok(LocalImage {
            store,
            blobs,
            children,
            top,
        })
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_INDEX
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Config and layers of one manifest.
fn collect_blobs(m: &Manifest, blobs: &mut BTreeMap<Digest, u64>) -> Result<(), String> {
    let json = json_of(&m.bytes)?;
    let config = json
        .get("config")
        .ok_or_else(|| format!("manifest {} has no config", m.digest))?;
    let layers = json
        .get("layers")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    for desc in std::iter::once(config).chain(layers.iter()) {
        let (digest, size) = descriptor(desc)?;
        blobs.insert(digest, size);
    }
    Ok(())
}

/// `digest` and `size` of a descriptor.
fn descriptor(desc: &serde_json::Value) -> Result<(Digest, u64), String> {
    let raw = desc
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or("a descriptor has no digest")?;
    let digest = raw
        .strip_prefix("sha256:")
        .and_then(|hex| Digest::new(Algorithm::Sha256, hex).ok())
        .ok_or_else(|| format!("unsupported digest `{raw}` (minibuild pushes sha256 images)"))?;
    let size = desc
        .get("size")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| format!("descriptor {digest} has no size"))?;
    Ok((digest, size))
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algo().name(), digest.hex())
}

fn json_of(bytes: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
}

fn image_err(path: &Path, reason: String) -> PushError {
    PushError::Image {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::test_tree::TestTree;
    use crate::oci::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
    use crate::rpm::Arch;

    fn write_image(dest: &Path, format: Format, arches: &[Arch]) -> crate::oci::Written {
        let mut t = TestTree::new();
        t.dir("etc", 0o755);
        t.file("etc/hello", 0o644, b"hello\n");
        let mut w = ImageWriter::new(dest).unwrap();
        let opts = LayerOptions {
            source_date_epoch: 1_700_000_000,
            compression: Compression::Gzip,
        };
        let layer = w.add_layer(&t.tree, &opts).unwrap();
        for &arch in arches {
            w.add_image(
                &ImageConfig::new(arch, 1_700_000_000),
                std::slice::from_ref(&layer),
            )
            .unwrap();
        }
        w.commit(format, "v1").unwrap()
    }

    #[test]
    fn reads_layout_and_archive_alike() {
        let dir = tempfile::tempdir().unwrap();
        let arches = [Arch::X86_64, Arch::Aarch64];
        let a = write_image(&dir.path().join("img"), Format::Oci, &arches);
        let b = write_image(&dir.path().join("img.tar"), Format::OciArchive, &arches);
        assert_eq!(a.digest, b.digest);
        let la = LocalImage::open(&a.path, Some("v1")).unwrap();
        let lb = LocalImage::open(&b.path, Some("v1")).unwrap();
        assert_eq!(la.top.digest, a.digest);
        assert_eq!(la.top.media_type, MEDIA_TYPE_INDEX);
        assert_eq!(la.top.bytes, lb.top.bytes);
        assert_eq!(la.children.len(), 2);
        // one shared layer + two configs
        assert_eq!(la.blobs.len(), 3);
        assert_eq!(la.blobs, lb.blobs);
        for (digest, size) in &lb.blobs {
            let src = lb.store.source(digest, *size).unwrap();
            let mut bytes = Vec::new();
            src.open().unwrap().read_to_end(&mut bytes).unwrap();
            assert_eq!(Digest::sha256_of(&bytes), *digest);
        }
    }

    #[test]
    fn single_arch_top_is_the_manifest_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_image(&dir.path().join("img"), Format::Oci, &[Arch::X86_64]);
        let l = LocalImage::open(&w.path, None).unwrap();
        assert_eq!(l.top.media_type, MEDIA_TYPE_MANIFEST);
        assert!(l.children.is_empty());
        assert_eq!(l.blobs.len(), 2);
        let path = w.path.join(blob_name(&w.digest));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(b' ');
        std::fs::write(&path, bytes).unwrap();
        let e = LocalImage::open(&w.path, None).err().unwrap();
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    #[test]
    fn not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.tar");
        std::fs::write(&f, b"not a tar at all, just text").unwrap();
        let e = LocalImage::open(&f, None).err().unwrap();
        assert!(e.to_string().contains(&f.display().to_string()), "{e}");
    }

    #[test]
    fn unauthorized_messages_say_where_credentials_came_from() {
        let e = PushError::Unauthorized {
            registry: "r.example:5000".into(),
            repository: "app".into(),
            status: 401,
            looked: "credentials from --creds".into(),
            had_credentials: true,
        };
        let s = e.to_string();
        assert!(
            s.contains("r.example:5000") && s.contains("--creds") && s.contains("password"),
            "{s}"
        );
        let e = PushError::Unauthorized {
            registry: "r.example".into(),
            repository: "app".into(),
            status: 401,
            looked: "no credentials found in /h/.docker/config.json".into(),
            had_credentials: false,
        };
        assert!(e.to_string().contains("/h/.docker/config.json"), "{e}");
    }

    #[test]
    fn events_read_as_log_lines() {
        let d = Digest::sha256_of(b"x");
        let tagged = PushEvent::ManifestPushed {
            digest: d.clone(),
            reference: "v1".into(),
        };
        assert_eq!(tagged.to_string(), format!("pushed {d} as `v1`"));
        let retry = PushEvent::Retrying {
            what: "upload".into(),
            attempt: 2,
            delay: Duration::from_millis(1500),
            reason: "status 503 Service Unavailable".into(),
        };
        assert_eq!(
            retry.to_string(),
            "upload: status 503 Service Unavailable; retry 2 in 1.5s"
        );
    }

    #[test]
    fn output_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::sha256_of(b"x");
        let pushed = Pushed {
            reference: "localhost:5000/app:v1".parse().unwrap(),
            digest: d.clone(),
            media_type: MEDIA_TYPE_MANIFEST.into(),
            blobs_uploaded: 0,
            blobs_skipped: 0,
            bytes_uploaded: 0,
            attached: Vec::new(),
        };
        write_digestfile(&dir.path().join("digest"), &pushed).unwrap();
        write_image_refs(&dir.path().join("refs"), &pushed).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("digest")).unwrap(),
            d.to_string()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("refs")).unwrap(),
            format!("localhost:5000/app:v1@{d}\n")
        );
    }
}
