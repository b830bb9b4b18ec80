//! Pulling a published base image into the cache: the manifest the
//! reference (or the lock's pinned digest) names, the platform's manifest
//! when it is an image index, the config and the layer blobs.
//!
//! Everything is content-addressed under the cache's `base-images/`, kept
//! only once it hashes to its digest ([`Session::blob_to_file`] and
//! [`Session::manifest`] check while reading), so a rebuild reads the cache
//! and makes no request when the digest is known. A hostile registry is
//! bounded: manifests by [`crate::registry::pull::MANIFEST_MAX`], the index
//! by [`MAX_MANIFESTS`] entries, the image by [`MAX_LAYERS`] layers, the
//! config by [`CONFIG_MAX`] bytes, each layer by [`LAYER_MAX`] bytes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::digest::{Algorithm, Digest};
use crate::image::layer::{MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD};
use crate::image::LayerInfo;
use crate::package::Arch;
use crate::registry::{PushEvent, PushOptions, Reference, Session};

/// The most layers a base image may have (docker's own limit is 127).
pub const MAX_LAYERS: usize = 127;
/// The most platforms an image index may list.
pub const MAX_MANIFESTS: usize = 256;
/// The most an image config may weigh.
pub const CONFIG_MAX: u64 = 4 << 20;
/// The most one layer blob may weigh (far above any base image; stops an
/// endless body).
pub const LAYER_MAX: u64 = 16 << 30;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// How to reach the registry and where the cache is.
pub struct PullOptions<'a> {
    pub registry: &'a PushOptions,
    pub cache_dir: &'a Path,
    /// `--offline`: the cache only.
    pub offline: bool,
}

/// One platform of a base image, with its blobs in the cache.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What the reference resolved to (a manifest or an index): the lock's pin.
    pub digest: Digest,
    /// This platform's manifest.
    pub manifest_digest: Digest,
    /// The config, parsed.
    pub config: Value,
    /// The layers, bottom first, with `path_of_blob` in the cache.
    pub layers: Vec<LayerInfo>,
}

fn quiet(_: PushEvent) {}

/// What errors call the image: `the base image REF` for a build, `the
/// image REF` for `diff`.
#[derive(Clone, Copy)]
pub struct Named<'a> {
    pub role: &'static str,
    pub reference: &'a Reference,
}

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.role, self.reference)
    }
}

/// The cache's directory of base image blobs, and of tags.
fn blob_path(root: &Path, d: &Digest) -> PathBuf {
    root.join(d.algo().name()).join(d.hex())
}

fn tag_path(root: &Path, reference: &Reference) -> PathBuf {
    let key = Digest::sha256_of(reference.to_string().as_bytes());
    root.join("tags").join(key.hex())
}

/// The registry session, connected on first use: a cached, pinned image
/// makes no request at all.
struct Remote<'a> {
    image: Named<'a>,
    opts: &'a PullOptions<'a>,
    session: Option<Session<'a>>,
}

impl<'a> Remote<'a> {
    /// `reference` as errors call it (`role`), not connected yet.
    fn new(role: &'static str, reference: &'a Reference, opts: &'a PullOptions<'a>) -> Self {
        Remote {
            image: Named { role, reference },
            opts,
            session: None,
        }
    }

    fn session(&mut self, why: &Digest) -> anyhow::Result<&mut Session<'a>> {
        if self.opts.offline {
            bail!(
                "--offline: {why} of {} is not in the cache ({})\n  hint: build once without --offline to pull it",
                self.image,
                self.opts.cache_dir.display()
            );
        }
        let session = match self.session.take() {
            Some(s) => s,
            None => Session::connect(self.image.reference, self.opts.registry, &quiet)
                .with_context(|| format!("cannot reach the registry of {}", self.image))?,
        };
        Ok(self.session.insert(session))
    }

    /// A manifest (by digest) from the cache, else the registry (and cached).
    fn manifest(&mut self, root: &Path, d: &Digest) -> anyhow::Result<Vec<u8>> {
        let path = blob_path(root, d);
        if let Ok(bytes) = std::fs::read(&path) {
            if &Digest::sha256_of(&bytes) == d {
                return Ok(bytes);
            }
        }
        let image = self.image;
        let m = self
            .session(d)?
            .manifest(&d.to_string(), ACCEPT)
            .with_context(|| format!("cannot pull the manifest {d} of {image}"))?
            .with_context(|| format!("the registry has no manifest {d} for {image}"))?;
        store(&path, &m.bytes)?;
        Ok(m.bytes)
    }

    /// A blob's file in the cache, pulled when missing.
    fn blob(&mut self, root: &Path, d: &Digest, max: u64) -> anyhow::Result<PathBuf> {
        let path = blob_path(root, d);
        if path.is_file() {
            return Ok(path);
        }
        let image = self.image;
        self.session(d)?
            .blob_to_file(d, &path, max)
            .with_context(|| format!("cannot pull blob {d} of {image}"))?
            .with_context(|| format!("the registry has no blob {d} for {image}"))?;
        Ok(path)
    }
}

fn store(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::fsutil::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Pull `reference` for `arch` (at `pinned`, the lock's digest, when given).
pub fn pull(
    reference: &Reference,
    pinned: Option<&Digest>,
    arch: Arch,
    opts: &PullOptions,
) -> anyhow::Result<Pulled> {
    let root = crate::cache::Cache::new(opts.cache_dir).base_images();
    let mut remote = Remote::new("the base image", reference, opts);
    let image = remote.image;
    let digest = match (pinned, reference.digest()) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => resolve_tag(&mut remote, &root)?,
    };
    let top = remote.manifest(&root, &digest)?;
    let top_json = parse_json(&top, image, &digest)?;
    let manifest_digest = match media_type(&top_json) {
        Some(OCI_INDEX | DOCKER_LIST) => pick_platform(&top_json, image, arch)?,
        _ => digest.clone(),
    };
    let manifest_json = if manifest_digest == digest {
        top_json
    } else {
        let m = remote.manifest(&root, &manifest_digest)?;
        parse_json(&m, image, &manifest_digest)?
    };
    pull_image(
        &mut remote,
        &root,
        digest,
        manifest_digest,
        &manifest_json,
        Some(arch),
    )
}

/// Every platform of an image in a registry, with all its blobs in the cache.
#[derive(Debug, Clone)]
pub struct PulledAll {
    /// What the reference resolved to.
    pub digest: Digest,
    /// The media type of that manifest or index.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Each image manifest, in index order (one for a plain manifest).
    pub platforms: Vec<Pulled>,
    /// Every blob (manifests, configs, layers) and its file in the cache:
    /// enough to lay the image out as an OCI layout.
    pub blobs: Vec<(Digest, PathBuf)>,
}

/// Pull every platform of `reference` (a tag or a digest) into the cache,
/// as `diff` reads an image: no platform is chosen. Errors call it `the
/// image REF`.
pub fn pull_all(reference: &Reference, opts: &PullOptions) -> anyhow::Result<PulledAll> {
    let root = crate::cache::Cache::new(opts.cache_dir).base_images();
    let mut remote = Remote::new("the image", reference, opts);
    let image = remote.image;
    let digest = match reference.digest() {
        Some(d) => d.clone(),
        None => resolve_tag(&mut remote, &root)?,
    };
    let top = remote.manifest(&root, &digest)?;
    let top_json = parse_json(&top, image, &digest)?;
    let top_type = media_type(&top_json).unwrap_or(OCI_MANIFEST).to_string();
    let mut blobs = vec![(digest.clone(), blob_path(&root, &digest))];
    let manifests: Vec<(Digest, Value)> = match top_type.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let entries = index_entries(&top_json, image)?;
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let d = descriptor_digest(e).with_context(|| {
                    format!("{image}: its index lists a manifest without a digest")
                })?;
                let m = remote.manifest(&root, &d)?;
                blobs.push((d.clone(), blob_path(&root, &d)));
                out.push((d.clone(), parse_json(&m, image, &d)?));
            }
            out
        }
        _ => vec![(digest.clone(), top_json)],
    };
    let mut platforms = Vec::with_capacity(manifests.len());
    for (manifest_digest, json) in manifests {
        let pulled = pull_image(
            &mut remote,
            &root,
            digest.clone(),
            manifest_digest,
            &json,
            None,
        )?;
        if let Some(c) = descriptor_digest(&json["config"]) {
            blobs.push((c.clone(), blob_path(&root, &c)));
        }
        blobs.extend(
            pulled
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.path_of_blob.clone())),
        );
        platforms.push(pulled);
    }
    Ok(PulledAll {
        digest,
        media_type: top_type,
        size: top.len() as u64,
        platforms,
        blobs,
    })
}

/// The config and layers of the image manifest `manifest_json`; with
/// `arch`, the config must say linux/`arch`.
fn pull_image(
    remote: &mut Remote,
    root: &Path,
    digest: Digest,
    manifest_digest: Digest,
    manifest_json: &Value,
    arch: Option<Arch>,
) -> anyhow::Result<Pulled> {
    let image = remote.image;
    match media_type(manifest_json) {
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => {}
        Some(OCI_INDEX | DOCKER_LIST) => bail!(
            "{image}: manifest {manifest_digest} is an index inside an index, which is not supported"
        ),
        other => bail!(
            "{image}: manifest {manifest_digest} has media type {}, not an OCI or Docker v2 image manifest\n  hint: schema 1 and artifact manifests cannot be bases",
            other.unwrap_or("(none)")
        ),
    }
    let bad = |what: &str| anyhow::anyhow!("{image}: manifest {manifest_digest} {what}");
    let config_digest =
        descriptor_digest(&manifest_json["config"]).ok_or_else(|| bad("has no config digest"))?;
    let config_path = remote.blob(root, &config_digest, CONFIG_MAX)?;
    let config_bytes = std::fs::read(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("{image}: config {config_digest} is not JSON"))?;
    let descs = manifest_json["layers"]
        .as_array()
        .ok_or_else(|| bad("has no layers"))?;
    if descs.len() > MAX_LAYERS {
        bail!(
            "{image} has {} layers, more than the {MAX_LAYERS} minibuild accepts",
            descs.len()
        );
    }
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if diff_ids.len() != descs.len() {
        bail!(
            "{image}: its config lists {} diff_ids for {} layers",
            diff_ids.len(),
            descs.len()
        );
    }
    let os_arch = (
        config["os"].as_str().unwrap_or(""),
        config["architecture"].as_str().unwrap_or(""),
    );
    match arch {
        Some(arch) if os_arch != ("linux", arch.oci_name()) => bail!(
            "{image} is {}/{}, but the recipe builds linux/{}\n  hint: use a base published for {arch}",
            os_arch.0,
            os_arch.1,
            arch.oci_name()
        ),
        _ => {}
    }
    let mut layers = Vec::with_capacity(descs.len());
    for (desc, diff_id) in descs.iter().zip(diff_ids) {
        let d = descriptor_digest(desc).ok_or_else(|| bad("has a layer without a digest"))?;
        let media_type = layer_media_type(desc["mediaType"].as_str().unwrap_or(""))
            .with_context(|| format!("{image}: layer {d}"))?;
        let size = desc["size"]
            .as_u64()
            .ok_or_else(|| bad("has a layer without a size"))?;
        let path = remote.blob(root, &d, size.min(LAYER_MAX))?;
        let on_disk = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if on_disk != size {
            bail!("{image}: layer {d} is {on_disk} bytes, but its manifest says {size}");
        }
        layers.push(LayerInfo {
            digest: d,
            diff_id,
            size,
            // Not known until unpacked; only reports use it.
            uncompressed_size: 0,
            media_type,
            path_of_blob: path,
        });
    }
    Ok(Pulled {
        digest,
        manifest_digest,
        config,
        layers,
    })
}

/// Ask the registry what a tag points to now (and remember it for
/// `--offline`); offline, the answer remembered.
fn resolve_tag(remote: &mut Remote, root: &Path) -> anyhow::Result<Digest> {
    let image = remote.image;
    let reference = image.reference;
    let tag_file = tag_path(root, reference);
    if remote.opts.offline {
        let text = std::fs::read_to_string(&tag_file).map_err(|_| {
            anyhow::anyhow!(
                "--offline: {image} was never pulled into the cache {}\n  hint: build once without --offline, or lock the recipe (`minibuild lock`) so the digest is pinned",
                remote.opts.cache_dir.display()
            )
        })?;
        return text.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "{} is damaged; build once without --offline",
                tag_file.display()
            )
        });
    }
    let tag = reference.tag().unwrap_or("latest").to_string();
    let m = remote
        .session(&Digest::sha256_of(tag.as_bytes()))?
        .manifest(&tag, ACCEPT)
        .with_context(|| format!("cannot pull {image}"))?
        .with_context(|| format!("{image}: the registry has no such tag"))?;
    let digest = Digest::of_reader(Algorithm::Sha256, &m.bytes[..])?;
    store(&blob_path(root, &digest), &m.bytes)?;
    store(&tag_file, format!("{digest}\n").as_bytes())?;
    Ok(digest)
}

fn parse_json(bytes: &[u8], image: Named, d: &Digest) -> anyhow::Result<Value> {
    serde_json::from_slice(bytes).with_context(|| format!("{image}: manifest {d} is not JSON"))
}

/// `mediaType` of a manifest or index (the field is optional in OCI; an
/// index is told by its `manifests`).
fn media_type(v: &Value) -> Option<&str> {
    v["mediaType"].as_str().or_else(|| {
        if v["manifests"].is_array() {
            Some(OCI_INDEX)
        } else if v["layers"].is_array() {
            Some(OCI_MANIFEST)
        } else {
            None
        }
    })
}

fn descriptor_digest(v: &Value) -> Option<Digest> {
    v["digest"].as_str()?.parse().ok()
}

/// An index's entries, at most [`MAX_MANIFESTS`].
fn index_entries<'v>(index: &'v Value, image: Named) -> anyhow::Result<&'v [Value]> {
    let entries = index["manifests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if entries.len() > MAX_MANIFESTS {
        bail!(
            "{image}: its index lists {} manifests, more than the {MAX_MANIFESTS} minibuild reads",
            entries.len()
        );
    }
    Ok(entries)
}

/// The manifest of an index for linux/`arch`.
fn pick_platform(index: &Value, image: Named, arch: Arch) -> anyhow::Result<Digest> {
    let entries = index_entries(index, image)?;
    let want_variant = crate::image::config::variant(arch);
    let mut seen = Vec::new();
    for e in entries {
        let p = &e["platform"];
        let (os, a) = (
            p["os"].as_str().unwrap_or(""),
            p["architecture"].as_str().unwrap_or(""),
        );
        let variant = p["variant"].as_str();
        seen.push(format!(
            "{os}/{a}{}",
            variant.map(|v| format!("/{v}")).unwrap_or_default()
        ));
        let variant_ok = variant.is_none() || variant == want_variant;
        if os == "linux" && a == arch.oci_name() && variant_ok {
            if let Some(d) = descriptor_digest(e) {
                return Ok(d);
            }
        }
    }
    bail!(
        "{image} has no linux/{} image (it has {})\n  hint: use a base published for {arch}, or build for one of its platforms",
        arch.oci_name(),
        if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
    )
}

/// The OCI media type of a layer with `media_type` (the Docker names
/// denote the same bytes); foreign and unknown layers are refused.
fn layer_media_type(media_type: &str) -> anyhow::Result<&'static str> {
    Ok(match media_type {
        MEDIA_TYPE_TAR_GZIP | "application/vnd.docker.image.rootfs.diff.tar.gzip" => MEDIA_TYPE_TAR_GZIP,
        MEDIA_TYPE_TAR_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => MEDIA_TYPE_TAR_ZSTD,
        MEDIA_TYPE_TAR | "application/vnd.docker.image.rootfs.diff.tar" => MEDIA_TYPE_TAR,
        other => bail!(
            "has media type `{other}`, which minibuild does not take as a layer (foreign, encrypted or unknown)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference() -> Reference {
        "127.0.0.1:5000/base:1".parse().unwrap()
    }

    fn named(reference: &Reference) -> Named<'_> {
        Named {
            role: "the base image",
            reference,
        }
    }

    #[test]
    fn an_index_gives_the_platform_asked_for() {
        let amd = Digest::sha256_of(b"amd64");
        let arm = Digest::sha256_of(b"arm64");
        let index = json!({
            "mediaType": OCI_INDEX,
            "manifests": [
                {"digest": arm.to_string(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"digest": amd.to_string(), "platform": {"os": "linux", "architecture": "amd64"}},
            ]
        });
        assert_eq!(
            pick_platform(&index, named(&reference()), Arch::X86_64).unwrap(),
            amd
        );
        assert_eq!(
            pick_platform(&index, named(&reference()), Arch::Aarch64).unwrap(),
            arm
        );
        let err = pick_platform(&index, named(&reference()), Arch::S390x)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/arm64/v8, linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn an_index_too_long_is_refused() {
        let entries: Vec<Value> = (0..=MAX_MANIFESTS).map(|_| json!({})).collect();
        let index = json!({ "manifests": entries });
        let err = pick_platform(&index, named(&reference()), Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 256"), "{err}");
    }

    #[test]
    fn docker_and_oci_layer_types_are_taken_others_refused() {
        assert_eq!(
            layer_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            MEDIA_TYPE_TAR_GZIP
        );
        assert_eq!(
            layer_media_type(MEDIA_TYPE_TAR_ZSTD).unwrap(),
            MEDIA_TYPE_TAR_ZSTD
        );
        let err = layer_media_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
            .unwrap_err()
            .to_string();
        assert!(err.contains("foreign"), "{err}");
    }

    #[test]
    fn media_type_is_told_by_shape_when_absent() {
        assert_eq!(media_type(&json!({"manifests": []})), Some(OCI_INDEX));
        assert_eq!(media_type(&json!({"layers": []})), Some(OCI_MANIFEST));
        assert_eq!(
            media_type(&json!({"mediaType": DOCKER_LIST})),
            Some(DOCKER_LIST)
        );
        assert_eq!(media_type(&json!({})), None);
    }

    #[test]
    fn offline_without_a_pulled_tag_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let reg = PushOptions::default();
        let opts = PullOptions {
            registry: &reg,
            cache_dir: dir.path(),
            offline: true,
        };
        let err = pull(&reference(), None, Arch::X86_64, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--offline") && err.contains("127.0.0.1:5000/base:1"),
            "{err}"
        );
    }
}
