//! `[image] base = "REGISTRY/REPO:TAG"`: building on a published image.
//!
//! ```text
//! Reference ──pull──▶ cache: manifest, config, layers    (pull.rs)
//! layers ──rpmdb path only──▶ rpmdb.sqlite or BDB Packages ──▶ headers   (rpmdb.rs)
//! headers ──▶ `@base` repo of Package records: the resolver's installed set
//! layers ──unpack──▶ the lower tree the new layer is diffed against
//! ```
//!
//! The base's layers are kept byte for byte; the build adds one layer.

pub mod pull;
pub mod rpmdb;

use std::sync::Arc;

use anyhow::Context as _;

use crate::digest::Digest;
use crate::image::LayerInfo;
use crate::package::{Arch, Nevra, Package};
use crate::registry::Reference;
use crate::repo::{PackageSet, RepoIndex};
use crate::rootfs::{Staging, Tree};

pub use pull::{PullOptions, Pulled, PulledAll};

/// The name of the synthetic repo of the base's installed packages.
pub const REPO: &str = "@base";

/// A published base image for one arch: pulled, with its rpm database read.
#[derive(Clone)]
pub struct BaseImage {
    /// As the recipe writes it.
    pub reference: Reference,
    pub pulled: Pulled,
    /// Where the base keeps its rpmdb.sqlite or Berkeley DB `Packages`
    /// (symlinks followed).
    pub rpmdb_path: String,
    /// The rpmdb's header blobs, in its order: the new rpmdb starts with them.
    pub headers: Vec<Vec<u8>>,
    /// The installed packages (gpg-pubkey entries left out), with the
    /// provides, requires and files of their headers.
    pub packages: Vec<Package>,
}

impl std::fmt::Debug for BaseImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseImage")
            .field("reference", &self.reference.to_string())
            .field("digest", &self.pulled.digest.to_string())
            .field("packages", &self.packages.len())
            .finish()
    }
}

impl BaseImage {
    /// Pull `reference` for `arch` (at the lock's `pinned` digest when
    /// given) and read its installed packages.
    pub fn load(
        reference: &Reference,
        pinned: Option<&Digest>,
        arch: Arch,
        opts: &PullOptions,
    ) -> anyhow::Result<Arc<BaseImage>> {
        let pulled = pull::pull(reference, pinned, arch, opts)?;
        let what = format!("the base image {reference} ({})", pulled.manifest_digest);
        let (rpmdb_path, headers) = rpmdb::read(&pulled.layers, &what)?;
        let packages = rpmdb::packages(&headers, &rpmdb_path)
            .with_context(|| format!("{what}: its rpm database"))?;
        Ok(Arc::new(BaseImage {
            reference: reference.clone(),
            pulled,
            rpmdb_path,
            headers,
            packages,
        }))
    }

    /// The installed set, for the resolver.
    pub fn nevras(&self) -> impl Iterator<Item = &Nevra> {
        self.packages.iter().map(|p| &p.nevra)
    }

    /// The `@base` repo, as repo index `repo`: the installed packages,
    /// which need not exist in any repo.
    pub fn index(&self, repo: usize) -> RepoIndex {
        let packages = self
            .packages
            .iter()
            .map(|p| Package { repo, ..p.clone() })
            .collect();
        RepoIndex {
            name: REPO.to_string(),
            baseurl: format!("oci://{}", self.reference),
            revision: self.pulled.digest.to_string(),
            repomd_digest: self.pulled.manifest_digest.clone(),
            packages: PackageSet::of(packages),
            notes: Vec::new(),
            via: None,
        }
    }

    /// The layers, bottom first (blobs in the cache).
    pub fn layers(&self) -> &[LayerInfo] {
        &self.pulled.layers
    }
}

/// What unpacking the base's layers could not hold (device nodes…), as
/// `(path, why)`.
pub type Skipped = Vec<(String, String)>;

/// The base's layers applied in order (whiteouts honoured) into one tree,
/// its file contents in `stage`: the tree the new layer is diffed against.
pub fn unpack(base: &BaseImage, stage: &mut Staging) -> anyhow::Result<(Tree, Skipped)> {
    let mut tree = Tree::default();
    let mut skipped = Vec::new();
    for layer in base.layers() {
        let source = crate::image::BlobSource {
            path: layer.path_of_blob.clone(),
            offset: 0,
            size: layer.size,
        };
        let s =
            crate::image::load::apply_layer_blob(&mut tree, &source, &layer.digest, stage, None)
                .with_context(|| {
                    format!(
                        "cannot unpack layer {} of the base image {}",
                        layer.digest, base.reference
                    )
                })?;
        skipped.extend(s.into_iter().map(|s| (s.path, s.reason)));
    }
    Ok((tree, skipped))
}
