//! The build, stage by stage: the only module that knows the order of the
//! pipeline. Each stage gets plain data and returns plain data; this module
//! passes it along and tells the [`Reporter`] what is happening, as typed
//! [`Event`]s.
//!
//! - `settings`: what the command line decides ([`Settings`]), built once.
//! - `repos`: URLs after overrides, the one HTTP client, the keyrings.
//! - `resolve`: repo metadata → a plan per arch, or the plan from a lock.
//! - `plan`: what `minibuild plan` shows (scriptlets from headers only).
//! - `build`: one arch's stages: fetch → verify → unpack → finish → review → write.
//! - `finish`: the recipe turned into `rootfs::FinishOptions`, one `rootfs::finish` call.
//! - `image_config`: the image config and its annotations.
//! - `supply_chain`: commit the image, then its SBOM and provenance.
//! - `debris`: temporaries left by killed runs.
//! - `memo`: repo metadata loaded once for all the recipes of a run.

mod build;
mod debris;
mod finish;
mod image_config;
mod memo;
mod plan;
mod repos;
mod resolve;
mod settings;
mod supply_chain;

use std::path::{Path, PathBuf};

use crate::cache::{Bucket, Cache};
use crate::digest::Digest;
use crate::image::layer_cache::LayerCache;
use crate::image::{Compression, Format, ImageWriter};
use crate::recipe::Recipe;
use crate::report::{Event, Reporter};

pub use build::{fetch_rpms, verify_signatures};
pub use debris::sweep_beside_lock;
pub use image_config::{ANNOTATION_LOCK, ANNOTATION_RECIPE, ANNOTATION_REPO_PREFIX};
pub use memo::RepoMemo;
pub use plan::plan;
pub use repos::{client, keyrings};
pub use resolve::{
    load_repo, lock_of, resolve, resolve_or_lock, resolved_from_lock, LockFile, RepoRef, Resolved,
};
pub use settings::{SbomFormat, Settings, SupplyChainOutputs};

/// The finished image.
#[derive(Debug)]
pub struct Built {
    pub digest: Digest,
    pub output: PathBuf,
    /// SBOM files written (one per arch).
    pub sboms: Vec<PathBuf>,
    pub provenance: Option<PathBuf>,
}

/// Download, unpack, finish and write the image for every resolved arch
/// (`build::arch` has the stages), then commit it with its SBOM and provenance.
pub fn build(
    recipe: &Recipe,
    resolved: &[Resolved],
    output: &Path,
    format: Format,
    compression: Compression,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Built> {
    build::refuse_early(recipe, resolved, format, settings)?;
    debris::sweep_debris(output, settings, reporter);
    let client = client(recipe, settings)?;
    let cache = Cache::new(&settings.cache_dir);
    let layers = LayerCache::new(cache.bucket(Bucket::Layers));
    repos::report_unchecked(recipe, reporter);
    let rings = keyrings(recipe, &client)?;
    let shared = build::Shared {
        recipe,
        settings,
        reporter,
        client,
        cache,
        layers,
        rings,
        compression,
    };
    let mut writer = ImageWriter::new(output)?;
    writer.set_replace(settings.replace);
    // The writer appends the tag itself (`RepoTags: ["name:tag"]`).
    writer.set_name(&recipe.image.name);
    let per_arch = resolved
        .iter()
        .map(|res| build::arch(&shared, res, &mut writer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let built = supply_chain::commit(recipe, resolved, &per_arch, writer, format, settings)?;
    reporter.event(Event::ImageWritten {
        path: built.output.clone(),
        digest: built.digest.to_string(),
    });
    for path in &built.sboms {
        reporter.event(Event::SbomWritten { path: path.clone() });
    }
    if let Some(path) = &built.provenance {
        reporter.event(Event::ProvenanceWritten { path: path.clone() });
    }
    Ok(built)
}
