//! Manifests, indexes and the descriptors that tie them together.
//!
//! An image for one platform is a manifest (config + layers). The layout's
//! `index.json` names what the tag points to: for one platform the manifest
//! itself, for several a nested image index listing one manifest per
//! platform — so multi-arch is just "more than one manifest".

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::digest::Digest;
use crate::package::Arch;

use super::config::variant;
use super::layer::LayerInfo;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation umoci and skopeo use to find a tag in a layout.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which machine an image runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub arch: Arch,
}

impl Platform {
    fn to_json(self) -> Value {
        let mut p = Map::new();
        p.insert("architecture".into(), json!(self.arch.oci_name()));
        p.insert("os".into(), json!("linux"));
        if let Some(v) = variant(self.arch) {
            p.insert("variant".into(), json!(v));
        }
        Value::Object(p)
    }
}

/// One platform's image as added to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub platform: Platform,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<LayerInfo>,
}

/// A reference to a blob: what it is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn of_layer(layer: &LayerInfo) -> Self {
        Descriptor::new(layer.media_type, layer.digest.clone(), layer.size)
    }

    pub fn to_json(&self) -> Value {
        let mut d = Map::new();
        d.insert("mediaType".into(), json!(self.media_type));
        d.insert("digest".into(), json!(self.digest.to_string()));
        d.insert("size".into(), json!(self.size));
        if let Some(p) = self.platform {
            d.insert("platform".into(), p.to_json());
        }
        if !self.annotations.is_empty() {
            d.insert("annotations".into(), json!(self.annotations));
        }
        Value::Object(d)
    }
}

/// An image manifest for `config` and `layers` (bottom first).
pub fn manifest_json(
    config: &Descriptor,
    layers: &[Descriptor],
    annotations: &BTreeMap<String, String>,
) -> Value {
    let mut m = Map::new();
    m.insert("schemaVersion".into(), json!(2));
    m.insert("mediaType".into(), json!(MEDIA_TYPE_MANIFEST));
    m.insert("config".into(), config.to_json());
    m.insert(
        "layers".into(),
        Value::Array(layers.iter().map(Descriptor::to_json).collect()),
    );
    if !annotations.is_empty() {
        m.insert("annotations".into(), json!(annotations));
    }
    Value::Object(m)
}

/// An image index listing `manifests` (in the given order).
pub fn index_json(manifests: &[Descriptor], annotations: &BTreeMap<String, String>) -> Value {
    let mut i = Map::new();
    i.insert("schemaVersion".into(), json!(2));
    i.insert("mediaType".into(), json!(MEDIA_TYPE_INDEX));
    i.insert(
        "manifests".into(),
        Value::Array(manifests.iter().map(Descriptor::to_json).collect()),
    );
    if !annotations.is_empty() {
        i.insert("annotations".into(), json!(annotations));
    }
    Value::Object(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::json::to_canonical_vec;

    #[test]
    fn manifest_and_index_parse_as_oci() {
        let config = Descriptor::new(
            crate::image::config::MEDIA_TYPE_CONFIG,
            Digest::sha256_of(b"c"),
            1,
        );
        let layer = Descriptor::new(
            crate::image::layer::MEDIA_TYPE_TAR_GZIP,
            Digest::sha256_of(b"l"),
            2,
        );
        let ann = BTreeMap::from([(
            "org.opencontainers.image.title".to_string(),
            "t".to_string(),
        )]);
        let m = to_canonical_vec(&manifest_json(&config, &[layer], &ann));
        let parsed: oci_spec::image::ImageManifest = serde_json::from_slice(&m).unwrap();
        assert_eq!(parsed.layers().len(), 1);
        assert_eq!(
            parsed.config().digest().to_string(),
            Digest::sha256_of(b"c").to_string()
        );

        let mut amd = Descriptor::new(MEDIA_TYPE_MANIFEST, Digest::sha256_of(&m), m.len() as u64);
        amd.platform = Some(Platform { arch: Arch::X86_64 });
        let mut arm = amd.clone();
        arm.platform = Some(Platform {
            arch: Arch::Aarch64,
        });
        let idx = to_canonical_vec(&index_json(&[amd, arm], &BTreeMap::new()));
        let parsed: oci_spec::image::ImageIndex = serde_json::from_slice(&idx).unwrap();
        let platforms: Vec<String> = parsed
            .manifests()
            .iter()
            .map(|d| d.platform().as_ref().unwrap().architecture().to_string())
            .collect();
        assert_eq!(platforms, ["amd64", "arm64"]);
        assert_eq!(
            parsed.manifests()[1]
                .platform()
                .as_ref()
                .unwrap()
                .variant()
                .as_deref(),
            Some("v8")
        );
    }
}
