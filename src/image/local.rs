//! Reading a local image, an OCI layout directory or an oci-archive, as
//! typed descriptors and manifests: the one reader behind `push`, `attach`
//! and `check`.
//!
//! An archive is never unpacked. Its members are listed once and each blob
//! is read as a byte range of the tar file, so a hostile archive cannot
//! write anywhere and a push streams layers straight from it. Manifests and
//! indexes are read whole (at most 4 MiB), checked against the digest that
//! names them, and parsed; configs and layers are located and size-checked
//! for the caller to read or stream. A foreign image may leave out a
//! descriptor's `mediaType`: the blob's own `mediaType` is used then, and
//! failing that an image manifest is assumed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;

use super::error::ImageError;
use super::manifest::{Descriptor, ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};

/// Largest manifest or index read into memory.
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest config read into memory (a long history makes it bigger).
const MAX_CONFIG: u64 = 16 << 20;
/// Indexes nested deeper than this are refused (a loop would never end).
const MAX_INDEX_DEPTH: u32 = 4;
/// An image archive has a few members per blob; a tar with more is refused
/// before its listing takes much memory.
const MAX_MEMBERS: usize = 1 << 16;
/// Docker's name for an image index.
const MEDIA_TYPE_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Where a blob's bytes are: a file, or a byte range of an oci-archive.
#[derive(Debug, Clone)]
pub struct BlobSource {
    pub path: PathBuf,
    pub offset: u64,
    pub size: u64,
}

impl BlobSource {
    /// The blob's bytes, and no more.
    pub fn open(&self) -> io::Result<io::Take<File>> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.size))
    }
}

/// A manifest or an index, read and checked against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    /// The exact bytes, as a push sends them.
    pub bytes: Vec<u8>,
    pub content: Content,
    /// Its own annotations (string values only).
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest or index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// One platform's image: its config and layers (bottom first).
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An image index: one manifest (or index) per entry.
    Index { manifests: Vec<Descriptor> },
}

impl Manifest {
    /// Its descriptor: media type, digest and size only.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// Whether `media_type` names an image index (OCI's or Docker's).
fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST
}

/// The platform a config says it is for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfigPlatform {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
}

impl ConfigPlatform {
    /// `os/arch`, `?` for what the config leaves out.
    pub fn os_arch(&self) -> String {
        format!(
            "{}/{}",
            self.os.as_deref().unwrap_or("?"),
            self.architecture.as_deref().unwrap_or("?")
        )
    }
}

/// What a config says about how the image runs (its `config` object), plus
/// the platform and creation time: what `diff` compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RunConfig {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<RunSettings>,
}

/// The `config` object of an image config; absent keys are `None`/empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunSettings {
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
}

/// An image on disk; see the module docs.
#[derive(Debug)]
pub struct LocalImage {
    store: Store,
    /// The entries of `index.json`.
    entries: Vec<Descriptor>,
}

/// Blob storage of a layout dir or of an oci-archive.
#[derive(Debug)]
enum Store {
    Dir(PathBuf),
    /// Archive path and `blobs/sha256/<hex>` → (offset, size) in it.
    Archive(PathBuf, BTreeMap<String, (u64, u64)>),
}

// The JSON as found; turned into `Descriptor`s with errors that name the blob.
#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
}

impl LocalImage {
    /// Open the layout directory or oci-archive at `path` and read its
    /// `index.json`.
    pub fn open(path: &Path) -> Result<LocalImage, ImageError> {
        let store = Store::open(path)?;
        let bytes = store.read("index.json", MAX_MANIFEST)?;
        let raw: RawManifest = serde_json::from_slice(&bytes)
            .map_err(|e| read_err(path, format!("index.json is not an image index: {e}")))?;
        let entries = raw
            .manifests
            .into_iter()
            .map(|d| descriptor(d, "index.json"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| read_err(path, r))?;
        Ok(LocalImage { store, entries })
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Whether the layout has a file `name` (e.g. `oci-layout`).
    pub fn has_file(&self, name: &str) -> bool {
        self.store.locate(name).is_ok()
    }

    /// The entries of `index.json`.
    pub fn entries(&self) -> &[Descriptor] {
        &self.entries
    }

    /// The entry a push of `tag` sends: the only one, or the one whose
    /// `ref.name` annotation is `tag`.
    pub fn select(&self, tag: Option<&str>) -> Result<&Descriptor, ImageError> {
        let ref_name = |d: &Descriptor| d.annotations.get(ANNOTATION_REF_NAME).cloned();
        match self.entries.as_slice() {
            [] => Err(self.err("index.json lists no image".into())),
            [only] => Ok(only),
            many => many
                .iter()
                .find(|d| tag.is_some() && ref_name(d).as_deref() == tag)
                .ok_or_else(|| {
                    let names: Vec<String> = many.iter().filter_map(ref_name).collect();
                    self.err(format!(
                        "index.json lists {} images (tags: {}); push with one of those tags",
                        many.len(),
                        names.join(", ")
                    ))
                }),
        }
    }

    /// The manifest or index `desc` names, checked against its digest.
    pub fn manifest(&self, desc: &Descriptor) -> Result<Manifest, ImageError> {
        let bytes = self.verified(desc, MAX_MANIFEST)?;
        let raw: RawManifest = serde_json::from_slice(&bytes).map_err(|e| {
            self.err(format!(
                "manifest {} is not a manifest or index: {e}",
                desc.digest
            ))
        })?;
        let media_type = match (desc.media_type.as_str(), &raw.media_type) {
            ("", Some(own)) => own.clone(),
            ("", None) => MEDIA_TYPE_MANIFEST.to_string(),
            (named, _) => named.to_string(),
        };
        let what = format!("manifest {}", desc.digest);
        let annotations = strings(raw.annotations);
        let list = |raws: Vec<RawDescriptor>| {
            raws.into_iter()
                .map(|d| descriptor(d, &what))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| self.err(r))
        };
        let content = if is_index(&media_type) {
            Content::Index {
                manifests: list(raw.manifests)?,
            }
        } else {
            let config = raw
                .config
                .ok_or_else(|| self.err(format!("{what} has no config")))?;
            Content::Image {
                config: descriptor(config, &what).map_err(|r| self.err(r))?,
                layers: list(raw.layers)?,
            }
        };
        Ok(Manifest {
            digest: desc.digest.clone(),
            media_type,
            bytes,
            content,
            annotations,
        })
    }

    /// Every image manifest `index.json` reaches, through nested indexes,
    /// in index order: each platform of each tag.
    pub fn image_manifests(&self) -> Result<Vec<Manifest>, ImageError> {
        let mut out = Vec::new();
        self.collect(&self.entries, 0, &mut out)?;
        if out.is_empty() {
            return Err(self.err("the index lists no image manifests".into()));
        }
        Ok(out)
    }

    fn collect(
        &self,
        entries: &[Descriptor],
        depth: u32,
        out: &mut Vec<Manifest>,
    ) -> Result<(), ImageError> {
        if depth > MAX_INDEX_DEPTH {
            return Err(self.err("image indexes nested too deeply".into()));
        }
        for desc in entries {
            let m = self.manifest(desc)?;
            match &m.content {
                Content::Index { manifests } => self.collect(manifests, depth + 1, out)?,
                Content::Image { .. } => out.push(m),
            }
        }
        Ok(())
    }

    /// The platform the config `desc` names says it is for.
    pub fn config_platform(&self, desc: &Descriptor) -> Result<ConfigPlatform, ImageError> {
        let bytes = self.verified(desc, MAX_CONFIG)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.err(format!(
                "config {} is not an image config: {e}",
                desc.digest
            ))
        })
    }

    /// The run settings of the config `desc` names.
    pub fn run_config(&self, desc: &Descriptor) -> Result<RunConfig, ImageError> {
        let bytes = self.verified(desc, MAX_CONFIG)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.err(format!(
                "config {} is not an image config: {e}",
                desc.digest
            ))
        })
    }

    /// The config's `User` (`config.User`), `None` when unset or empty.
    pub fn config_user(&self, desc: &Descriptor) -> Result<Option<String>, ImageError> {
        #[derive(Deserialize)]
        struct Outer {
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "User")]
            user: Option<String>,
        }
        let bytes = self.verified(desc, MAX_CONFIG)?;
        let outer: Outer = serde_json::from_slice(&bytes).map_err(|e| {
            self.err(format!(
                "config {} is not an image config: {e}",
                desc.digest
            ))
        })?;
        Ok(outer.config.and_then(|c| c.user).filter(|u| !u.is_empty()))
    }

    /// Where the blob `desc` names is, after checking its size against the
    /// descriptor. Its digest is for the reader to check.
    pub fn blob(&self, desc: &Descriptor) -> Result<BlobSource, ImageError> {
        let src = self.store.locate(&blob_name(&desc.digest))?;
        if src.size != desc.size {
            return Err(self.err(format!(
                "blob {} is {} bytes, its descriptor says {}",
                desc.digest, src.size, desc.size
            )));
        }
        Ok(src)
    }

    /// A small blob read whole and checked against its digest.
    fn verified(&self, desc: &Descriptor, max: u64) -> Result<Vec<u8>, ImageError> {
        let bytes = self.store.read(&blob_name(&desc.digest), max)?;
        let actual = Digest::of_reader(desc.digest.algo(), bytes.as_slice())
            .map_err(|e| self.err(e.to_string()))?;
        if actual != desc.digest {
            return Err(self.err(format!(
                "blob {} is corrupt: its content hashes to {actual}",
                desc.digest
            )));
        }
        Ok(bytes)
    }

    fn err(&self, reason: String) -> ImageError {
        read_err(self.path(), reason)
    }
}

impl Store {
    fn open(image: &Path) -> Result<Store, ImageError> {
        let meta = std::fs::metadata(image).map_err(|e| read_err(image, e.to_string()))?;
        if meta.is_dir() {
            return Ok(Store::Dir(image.to_path_buf()));
        }
        let file = File::open(image).map_err(|e| read_err(image, e.to_string()))?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        let mut entries = BTreeMap::new();
        let not_tar = |e: io::Error| {
            read_err(
                image,
                format!("neither an OCI layout directory nor an oci-archive tar ({e})"),
            )
        };
        // Blob contents are skipped by seeking, so listing a large image is fast.
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            if entries.len() == MAX_MEMBERS {
                return Err(read_err(
                    image,
                    format!("more than {MAX_MEMBERS} files in the archive; not an image minibuild can read"),
                ));
            }
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

    fn path(&self) -> &Path {
        match self {
            Store::Dir(p) | Store::Archive(p, _) => p,
        }
    }

    /// Where `name` (a path inside the layout) is, and its size.
    fn locate(&self, name: &str) -> Result<BlobSource, ImageError> {
        match self {
            Store::Dir(dir) => {
                let path = dir.join(name);
                let size = std::fs::metadata(&path)
                    .map_err(|e| read_err(dir, format!("{name}: {e}")))?
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
                    .ok_or_else(|| read_err(path, format!("{name} is missing")))?;
                Ok(BlobSource {
                    path: path.clone(),
                    offset: *offset,
                    size: *size,
                })
            }
        }
    }

    /// Read a small member of the layout whole, at most `max` bytes.
    fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, ImageError> {
        let src = self.locate(name)?;
        if src.size > max {
            return Err(read_err(
                self.path(),
                format!("{name} is {} bytes, more than the {max} allowed", src.size),
            ));
        }
        let mut buf = Vec::with_capacity(src.size as usize);
        src.open()
            .and_then(|mut r| r.read_to_end(&mut buf))
            .map_err(|e| read_err(self.path(), format!("{name}: {e}")))?;
        Ok(buf)
    }
}

/// A descriptor of `within`, with its digest parsed; media type `""` when
/// the JSON has none.
fn descriptor(raw: RawDescriptor, within: &str) -> Result<Descriptor, String> {
    let text = raw
        .digest
        .ok_or_else(|| format!("{within}: a descriptor has no digest"))?;
    let digest: Digest = text
        .parse()
        .map_err(|e| format!("{within}: descriptor digest `{text}`: {e}"))?;
    let size = raw
        .size
        .ok_or_else(|| format!("{within}: descriptor {digest} has no size"))?;
    let mut d = Descriptor::new(raw.media_type.as_deref().unwrap_or(""), digest, size);
    d.annotations = strings(raw.annotations);
    Ok(d)
}

/// Annotations whose values are strings, as the spec has them; others are
/// left out rather than failing a foreign image.
fn strings(map: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    map.into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect()
}

/// `blobs/<algorithm>/<hex>`, a blob's path inside a layout.
pub(crate) fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algo().name(), digest.hex())
}

fn read_err(path: &Path, reason: String) -> ImageError {
    ImageError::Read {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_tree::write_image;
    use crate::image::Format;
    use crate::package::Arch;

    /// Config and layer descriptors of every platform, with their bytes.
    fn blobs(img: &LocalImage) -> BTreeMap<Digest, Vec<u8>> {
        let mut out = BTreeMap::new();
        for m in img.image_manifests().unwrap() {
            let Content::Image { config, layers } = &m.content else {
                panic!("an index among image manifests");
            };
            for d in std::iter::once(config).chain(layers) {
                let mut bytes = Vec::new();
                img.blob(d)
                    .unwrap()
                    .open()
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
                out.insert(d.digest.clone(), bytes);
            }
        }
        out
    }

    #[test]
    fn reads_layout_and_archive_alike() {
        let dir = tempfile::tempdir().unwrap();
        let arches = [Arch::X86_64, Arch::Aarch64];
        let a = write_image(&dir.path().join("img"), Format::Oci, &arches);
        let b = write_image(&dir.path().join("img.tar"), Format::OciArchive, &arches);
        assert_eq!(a.digest, b.digest);
        let la = LocalImage::open(&a.path).unwrap();
        let lb = LocalImage::open(&b.path).unwrap();
        let top_a = la.manifest(la.select(Some("v1")).unwrap()).unwrap();
        let top_b = lb.manifest(lb.select(None).unwrap()).unwrap();
        assert_eq!(top_a.digest, a.digest);
        assert_eq!(top_a.media_type, MEDIA_TYPE_INDEX);
        assert_eq!(top_a, top_b);
        let Content::Index { manifests } = &top_a.content else {
            panic!("a two-platform image has an index");
        };
        assert_eq!(manifests.len(), 2);
        let platforms: Vec<String> = la
            .image_manifests()
            .unwrap()
            .iter()
            .map(|m| match &m.content {
                Content::Image { config, .. } => la.config_platform(config).unwrap().os_arch(),
                Content::Index { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
        // One shared layer and two configs, each hashing to its digest.
        let (ba, bb) = (blobs(&la), blobs(&lb));
        assert_eq!(ba.len(), 3);
        assert_eq!(ba, bb);
        for (digest, bytes) in &bb {
            assert_eq!(Digest::sha256_of(bytes), *digest);
        }
    }

    #[test]
    fn single_arch_top_is_the_manifest_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_image(&dir.path().join("img"), Format::Oci, &[Arch::X86_64]);
        let l = LocalImage::open(&w.path).unwrap();
        let top = l.manifest(l.select(None).unwrap()).unwrap();
        assert_eq!(top.media_type, MEDIA_TYPE_MANIFEST);
        assert!(matches!(&top.content, Content::Image { layers, .. } if layers.len() == 1));
        let path = w.path.join(blob_name(&w.digest));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(b' ');
        std::fs::write(&path, bytes).unwrap();
        let e = l.manifest(l.select(None).unwrap()).unwrap_err();
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    #[test]
    fn a_descriptor_without_media_type_takes_the_blobs_own() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_image(&dir.path().join("img"), Format::Oci, &[Arch::X86_64]);
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":{}}}]}}"#,
            w.digest,
            std::fs::metadata(w.path.join(blob_name(&w.digest)))
                .unwrap()
                .len()
        );
        std::fs::write(w.path.join("index.json"), index).unwrap();
        let l = LocalImage::open(&w.path).unwrap();
        let m = l.manifest(l.select(None).unwrap()).unwrap();
        assert_eq!(m.media_type, MEDIA_TYPE_MANIFEST);
    }

    #[test]
    fn a_wrong_size_and_a_missing_blob_are_errors_naming_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_image(
            &dir.path().join("img.tar"),
            Format::OciArchive,
            &[Arch::X86_64],
        );
        let l = LocalImage::open(&w.path).unwrap();
        let mut d = l.entries()[0].clone();
        d.size += 1;
        let e = l.blob(&d).unwrap_err().to_string();
        assert!(
            e.contains("its descriptor says") && e.contains("img.tar"),
            "{e}"
        );
        d.digest = Digest::sha256_of(b"not there");
        let e = l.manifest(&d).unwrap_err().to_string();
        assert!(e.contains("is missing"), "{e}");
    }

    #[test]
    fn not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.tar");
        std::fs::write(&f, b"not a tar at all, just text").unwrap();
        let e = LocalImage::open(&f).unwrap_err();
        assert!(e.to_string().contains(&f.display().to_string()), "{e}");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = LocalImage::open(&empty).unwrap_err().to_string();
        assert!(e.contains("index.json"), "{e}");
    }
}
