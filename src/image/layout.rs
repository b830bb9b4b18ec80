//! Assembling an OCI image layout and putting it in place.
//!
//! [`ImageWriter`] stages a layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) in a temp dir beside the destination: layers are
//! compressed straight into `blobs/sha256`, configs and manifests are added
//! as canonical JSON blobs, and [`ImageWriter::commit`] writes `index.json`
//! and then either renames the staged directory into place (`--format oci`)
//! or packs it into a tar file beside the destination and renames that
//! (`oci-archive`). Nothing at the destination changes until the image is
//! complete; a failed build leaves only its temp dir, which is removed on
//! drop.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::digest::Digest;
use crate::fsutil::{parent_dir, AtomicDir};
use crate::rootfs::Tree;

use super::archive;
use super::config::{ImageConfig, MEDIA_TYPE_CONFIG};
use super::destination::{self, Replace};
use super::error::ImageError;
use super::format::Format;
use super::json::to_canonical_vec;
use super::layer::{write_layer, LayerInfo, LayerOptions};
use super::layer_cache::{LayerCache, Origin};
use super::manifest::{
    index_json, manifest_json, Descriptor, ImageInfo, Platform, ANNOTATION_REF_NAME,
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};

/// Name start of the staging layout beside the output (see temporaries.rs).
pub const STAGING_PREFIX: &str = ".minibuild-oci-";

/// What [`ImageWriter::commit`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The digest the tag points to: the manifest for one platform, the
    /// nested image index for several. This is what `name@digest` pulls
    /// once pushed. (A docker-archive carries no OCI manifest, but this is
    /// still the digest the same image has as `oci`/`oci-archive`.)
    pub digest: Digest,
    /// Digest of the layout's `index.json` itself (None for docker-archive,
    /// which has none).
    pub index_digest: Option<Digest>,
    /// The image ID `docker load` reports for a docker-archive: the config
    /// digest (for a multi-arch image, of the first platform in sort order;
    /// each platform's is in `manifests`).
    pub image_id: Digest,
    /// The per-platform manifests, in the order they were added.
    pub manifests: Vec<ImageInfo>,
    pub path: PathBuf,
}

/// Stages an OCI layout beside `dest`; see the module docs.
pub struct ImageWriter {
    dest: PathBuf,
    staging: AtomicDir,
    blob_dir: PathBuf,
    images: Vec<ImageInfo>,
    /// Repository name for docker-archive's `RepoTags`.
    name: Option<String>,
    /// What the commit may replace at `dest`.
    replace: Replace,
    /// Newest `created` of the images: the archive's entry mtime.
    epoch: u64,
    /// Each image's manifest annotations, in the order added: those all
    /// images share also annotate a multi-arch index.
    annotations: Vec<BTreeMap<String, String>>,
}

impl ImageWriter {
    /// Start an image that [`commit`](Self::commit) will write to `dest`.
    pub fn new(dest: &Path) -> Result<Self, ImageError> {
        let parent = parent_dir(dest);
        let staging = AtomicDir::create_in(parent, STAGING_PREFIX, crate::fsutil::umask_dir_mode())
            .map_err(|e| ImageError::io("create a staging directory in", parent, e))?;
        let blob_dir = staging.path().join("blobs").join("sha256");
        fs::create_dir_all(&blob_dir).map_err(|e| ImageError::io("create", &blob_dir, e))?;
        Ok(ImageWriter {
            dest: dest.to_path_buf(),
            staging,
            blob_dir,
            images: Vec::new(),
            name: None,
            replace: Replace::default(),
            epoch: 0,
            annotations: Vec::new(),
        })
    }

    /// Compress `tree` into a layer blob of the staged layout.
    pub fn add_layer(&mut self, tree: &Tree, opts: &LayerOptions) -> Result<LayerInfo, ImageError> {
        write_layer(tree, opts, &self.blob_dir)
    }

    /// [`add_layer`](Self::add_layer), reusing a compressed blob from `cache`
    /// when one exists for the same tar and codec.
    pub fn add_layer_cached(
        &mut self,
        tree: &Tree,
        opts: &LayerOptions,
        cache: &LayerCache,
    ) -> Result<(LayerInfo, Origin), ImageError> {
        cache.write_layer(tree, opts, &self.blob_dir)
    }

    /// Add a layer blob that exists already (a base image's, pulled): its
    /// bytes are copied unchanged into the staged layout.
    pub fn add_existing_layer(&mut self, layer: &LayerInfo) -> Result<LayerInfo, ImageError> {
        let dest = self.blob_dir.join(layer.digest.hex());
        if !dest.exists() {
            // A copy, not a link: the layout's files get the umask's mode,
            // not the cache's private one.
            let copy = || -> std::io::Result<()> {
                let mut from = fs::File::open(&layer.path_of_blob)?;
                let mut to = fs::File::create(&dest)?;
                std::io::copy(&mut from, &mut to)?;
                to.sync_all()
            };
            copy().map_err(|e| ImageError::io("copy", &layer.path_of_blob, e))?;
        }
        Ok(LayerInfo {
            path_of_blob: dest,
            ..layer.clone()
        })
    }

    /// Add one platform's image: its config and manifest become blobs.
    /// Call once per architecture for a multi-arch image.
    pub fn add_image(
        &mut self,
        config: &ImageConfig,
        layers: &[LayerInfo],
    ) -> Result<ImageInfo, ImageError> {
        let platform = Platform { arch: config.arch };
        if self.images.iter().any(|i| i.platform == platform) {
            return Err(ImageError::InvalidConfig {
                field: "arch",
                reason: format!("two images for {}", config.arch),
            });
        }
        let config_desc = self.add_json_blob(MEDIA_TYPE_CONFIG, &config.to_json(layers)?)?;
        let layer_descs: Vec<Descriptor> = layers.iter().map(Descriptor::of_layer).collect();
        let manifest = manifest_json(&config_desc, &layer_descs, &config.annotations);
        let mut manifest_desc = self.add_json_blob(MEDIA_TYPE_MANIFEST, &manifest)?;
        manifest_desc.platform = Some(platform);
        let info = ImageInfo {
            platform,
            manifest: manifest_desc,
            config: config_desc,
            layers: layers.to_vec(),
        };
        self.images.push(info.clone());
        self.annotations.push(config.annotations.clone());
        self.epoch = self.epoch.max(config.created);
        Ok(info)
    }

    /// Write `value` as a canonical JSON blob; returns its descriptor.
    fn add_json_blob(
        &self,
        media_type: &str,
        value: &serde_json::Value,
    ) -> Result<Descriptor, ImageError> {
        let bytes = to_canonical_vec(value);
        let digest = Digest::sha256_of(&bytes);
        let path = self.blob_dir.join(digest.hex());
        fs::write(&path, &bytes).map_err(|e| ImageError::io("write", &path, e))?;
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }

    /// The repository name (`nginx`, `registry.local/team/app`) a
    /// docker-archive tags the image with (`RepoTags: ["name:tag"]`).
    /// Required for docker-archive; an OCI layout names images by tag alone.
    pub fn set_name(&mut self, name: &str) {
        self.name = Some(name.to_string());
    }

    /// Let the commit replace any file at the destination (`--force`), not
    /// only a previous minibuild output of the same format.
    pub fn set_replace(&mut self, replace: Replace) {
        self.replace = replace;
    }

    /// Finish the layout with `tag` and write it to the destination.
    pub fn commit(self, format: Format, tag: &str) -> Result<Written, ImageError> {
        if self.images.is_empty() {
            return Err(ImageError::InvalidConfig {
                field: "arch",
                reason: "an image needs at least one architecture".into(),
            });
        }
        check_tag(tag)?;
        let repo_tag = match (format, &self.name) {
            (Format::DockerArchive, Some(name)) => {
                check_name(name)?;
                format!("{name}:{tag}")
            }
            (Format::DockerArchive, None) => {
                return Err(ImageError::InvalidConfig {
                    field: "name",
                    reason: "docker-archive needs the image name for its RepoTags \
                             (ImageWriter::set_name)"
                        .into(),
                })
            }
            _ => String::new(),
        };
        if format == Format::DockerArchive && self.images.len() != 1 {
            return Err(ImageError::InvalidConfig {
                field: "arch",
                reason: format!(
                    "docker-archive holds one architecture, not {}; use oci or oci-archive for a multi-arch image",
                    self.images.len()
                ),
            });
        }
        let mut images = self.images.clone();
        images.sort_by_key(|i| i.platform);
        let mut top = if let [only] = images.as_slice() {
            only.manifest.clone()
        } else {
            let manifests: Vec<Descriptor> = images.iter().map(|i| i.manifest.clone()).collect();
            let shared = shared_annotations(&self.annotations);
            self.add_json_blob(MEDIA_TYPE_INDEX, &index_json(&manifests, &shared))?
        };
        top.annotations
            .insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());

        let index = to_canonical_vec(&index_json(&[top.clone()], &BTreeMap::new()));
        let root = self.staging.path();
        let index_path = root.join("index.json");
        fs::write(&index_path, &index).map_err(|e| ImageError::io("write", &index_path, e))?;
        let layout_path = root.join("oci-layout");
        let layout = to_canonical_vec(&json!({"imageLayoutVersion": "1.0.0"}));
        fs::write(&layout_path, layout).map_err(|e| ImageError::io("write", &layout_path, e))?;

        let mut index_digest = Some(Digest::sha256_of(&index));
        // Checked before the build too; again now, as the build took a while.
        destination::check(&self.dest, format, self.replace)?;
        match format {
            // The old layout (or, with --force, file) is replaced only now
            // that the new one is complete.
            Format::Oci => self
                .staging
                .persist(&self.dest, STAGING_PREFIX)
                .map_err(|e| ImageError::io(e.step, &e.path, e.source))?,
            Format::OciArchive => archive::write_oci_archive(root, &self.dest, self.epoch)?,
            Format::DockerArchive => {
                archive::write_docker_archive(
                    &self.blob_dir,
                    &self.images[0],
                    &repo_tag,
                    &self.dest,
                    self.epoch,
                )?;
                index_digest = None;
            }
        }
        Ok(Written {
            digest: top.digest,
            index_digest,
            image_id: images[0].config.digest.clone(),
            manifests: self.images,
            path: self.dest,
        })
    }
}

/// The annotations (key and value) every image has: what describes the
/// multi-arch image as a whole (title, version, source, created…).
fn shared_annotations(all: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = all.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|other| other.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A tag as OCI allows it in `ref.name` for our purposes:
/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), ImageError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::InvalidConfig {
            field: "tag",
            reason: format!(
                "`{tag}` is not a valid tag (letters, digits, `.`, `_`, `-`; at most 128; not starting with `.` or `-`)"
            ),
        })
    }
}

/// A repository name as docker accepts it: lowercase path components
/// (`[a-z0-9]` with single `.`, `_`, `-` inside) separated by `/`, an
/// optional registry host first.
fn check_name(name: &str) -> Result<(), ImageError> {
    let (host, path) = match name.split_once('/') {
        Some((h, rest)) if h.contains(['.', ':']) || h == "localhost" => (Some(h), rest),
        _ => (None, name),
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    });
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    };
    if host_ok && path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ImageError::InvalidConfig {
            field: "name",
            reason: format!(
                "`{name}` is not a valid image name (lowercase letters, digits, `.`, `_`, `-`, components separated by `/`)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_names() {
        for ok in ["latest", "1.2.3", "v1_rc-2", "A"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a:b", "a/b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        for ok in [
            "nginx",
            "example/app",
            "registry.local:5000/team/app",
            "localhost/a.b_c-d",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Nginx", "app/", "-app", "a//b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_annotations_are_those_every_image_shares() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a = map(&[("title", "app"), ("created", "1"), ("only-a", "x")]);
        let b = map(&[("title", "app"), ("created", "2")]);
        assert_eq!(
            shared_annotations(&[a.clone(), b]),
            map(&[("title", "app")])
        );
        assert_eq!(shared_annotations(std::slice::from_ref(&a)), a);
        assert!(shared_annotations(&[]).is_empty());
    }

    #[test]
    fn parent_of_a_bare_file_name_is_the_current_dir() {
        assert_eq!(parent_dir(Path::new("img.tar")), Path::new("."));
        assert_eq!(parent_dir(Path::new("out/img.tar")), Path::new("out"));
    }
}
