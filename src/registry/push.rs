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
//! the one the build printed. The local image is read by
//! [`crate::image::local`]; the HTTP side is in `client.rs`.
//!
//! Why not `oci-client`: it can push raw manifest bytes, but it is async
//! (reqwest + tokio + hyper, a second TLS stack and a second `sha2` in a
//! blocking CLI that already has ureq + rustls), has no retry/backoff,
//! uploads a blob from memory (or from a stream it cannot restart), and its
//! `RegistryAuth` derives `Debug` with the password in it. The part of the
//! distribution API a push needs is small enough to own.

use crate::fsutil::WriteError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest};
use crate::image::local::{Content, LocalImage, Manifest};
use crate::image::{Descriptor, ImageError};

use super::attach::{self, Attached, Sbom};
use super::auth;
use super::client::Client;
use super::error::PushError;
use super::event::PushEvent;
use super::options::PushOptions;
use super::reference::Reference;

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
    let local = Outgoing::read(image, reference.tag())?;
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
    for desc in local.blobs.values() {
        let (digest, size) = (&desc.digest, &desc.size);
        if client.blob_exists(digest)? {
            progress(PushEvent::BlobSkipped {
                digest: digest.clone(),
                size: *size,
            });
            pushed.blobs_skipped += 1;
            continue;
        }
        let source = local.image.blob(desc)?;
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
pub fn write_digestfile(path: &Path, pushed: &Pushed) -> Result<(), WriteError> {
    crate::fsutil::write_atomic(path, pushed.digest.to_string().as_bytes())
}

/// Write `REGISTRY/REPO:TAG@sha256:…` and a newline to `path` atomically
/// (`--image-refs`).
pub fn write_image_refs(path: &Path, pushed: &Pushed) -> Result<(), WriteError> {
    crate::fsutil::write_atomic(path, format!("{}\n", pushed.pinned()).as_bytes())
}

/// What a push sends, read from the local image.
struct Outgoing {
    image: LocalImage,
    /// Config and layer blobs of every platform, by digest.
    blobs: BTreeMap<Digest, Descriptor>,
    /// Platform manifests of an index (empty for a single manifest).
    children: Vec<Manifest>,
    top: Manifest,
}

impl Outgoing {
    /// Read the image's `index.json` and walk to every blob. With several
    /// tagged entries, `tag` picks one by its `ref.name` annotation.
    fn read(path: &Path, tag: Option<&str>) -> Result<Outgoing, PushError> {
        let image = LocalImage::open(path)?;
        let top = image.manifest(image.select(tag)?)?;
        let mut blobs = BTreeMap::new();
        let mut children = Vec::new();
        match &top.content {
            Content::Index { manifests } => {
                for desc in manifests {
                    let m = image.manifest(desc)?;
                    if let Content::Index { .. } = m.content {
                        return Err(unpushable(
                            &image,
                            format!("nested index {} inside an index is not supported", m.digest),
                        ));
                    }
                    collect_blobs(&m, &mut blobs);
                    children.push(m);
                }
            }
            Content::Image { .. } => collect_blobs(&top, &mut blobs),
        }
        let digests = blobs.keys().chain(children.iter().map(|m| &m.digest));
        for d in digests.chain(std::iter::once(&top.digest)) {
            if d.algo() != Algorithm::Sha256 {
                return Err(unpushable(
                    &image,
                    format!("unsupported digest `{d}` (minibuild pushes sha256 images)"),
                ));
            }
        }
        Ok(Outgoing {
            image,
            blobs,
            children,
            top,
        })
    }

    /// What an SBOM can be attached to: each platform manifest, then the
    /// top (the index of a multi-arch image, or the one manifest).
    fn subjects(&self) -> Vec<Descriptor> {
        self.children
            .iter()
            .chain(std::iter::once(&self.top))
            .map(Manifest::descriptor)
            .collect()
    }
}

/// Config and layers of one image manifest.
fn collect_blobs(m: &Manifest, blobs: &mut BTreeMap<Digest, Descriptor>) {
    if let Content::Image { config, layers } = &m.content {
        for desc in std::iter::once(config).chain(layers) {
            blobs.insert(desc.digest.clone(), desc.clone());
        }
    }
}

fn unpushable(image: &LocalImage, reason: String) -> PushError {
    PushError::Image(ImageError::Read {
        path: image.path().to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::local::blob_name;
    use crate::image::manifest::{MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
    use crate::image::test_tree::write_image;
    use crate::image::Format;
    use crate::package::Arch;

    #[test]
    fn sends_every_blob_once_and_each_platform_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let arches = [Arch::X86_64, Arch::Aarch64];
        let a = write_image(&dir.path().join("img"), Format::Oci, &arches);
        let b = write_image(&dir.path().join("img.tar"), Format::OciArchive, &arches);
        let oa = Outgoing::read(&a.path, Some("v1")).unwrap();
        let ob = Outgoing::read(&b.path, Some("v1")).unwrap();
        assert_eq!(oa.top.digest, a.digest);
        assert_eq!(oa.top.media_type, MEDIA_TYPE_INDEX);
        assert_eq!(oa.top.bytes, ob.top.bytes);
        assert_eq!(oa.children.len(), 2);
        // one shared layer + two configs
        assert_eq!(oa.blobs.len(), 3);
        assert_eq!(oa.blobs, ob.blobs);
        let subjects: Vec<Digest> = oa.subjects().into_iter().map(|d| d.digest).collect();
        assert_eq!(subjects.len(), 3);
        assert_eq!(subjects[2], a.digest, "the index comes last");

        let one = write_image(&dir.path().join("one"), Format::Oci, &[Arch::X86_64]);
        let o = Outgoing::read(&one.path, None).unwrap();
        assert_eq!(o.top.media_type, MEDIA_TYPE_MANIFEST);
        assert!(o.children.is_empty());
        assert_eq!(o.blobs.len(), 2);
    }

    #[test]
    fn a_nested_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_image(
            &dir.path().join("img"),
            Format::Oci,
            &[Arch::X86_64, Arch::Aarch64],
        );
        // An index whose only entry is the image's own index.
        let inner = std::fs::read(w.path.join(blob_name(&w.digest))).unwrap();
        let outer = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_INDEX}","manifests":[{{"mediaType":"{MEDIA_TYPE_INDEX}","digest":"{}","size":{}}}]}}"#,
            w.digest,
            inner.len()
        );
        let outer_digest = Digest::sha256_of(outer.as_bytes());
        std::fs::write(w.path.join(blob_name(&outer_digest)), &outer).unwrap();
        std::fs::write(
            w.path.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MEDIA_TYPE_INDEX}","digest":"{outer_digest}","size":{}}}]}}"#,
                outer.len()
            ),
        )
        .unwrap();
        let e = Outgoing::read(&w.path, None).err().unwrap().to_string();
        assert!(e.contains("nested index"), "{e}");
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
