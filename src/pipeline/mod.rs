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

mod base;
mod build;
mod core;
mod core_layer;
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
use crate::resolve::{Plan, Planned};
use crate::rootfs;
use supply_chain::ArchFacts;

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
/// (`arch` has the stages), then commit it with its SBOM and provenance.
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
        // --offline means no network at all, the cache repo's included.
        remote: settings
            .cache_repo
            .as_ref()
            .filter(|_| !settings.net.offline)
            .map(crate::cache_repo::Shared::new),
    };
    let mut writer = ImageWriter::new(output)?;
    writer.set_replace(settings.replace);
    // The writer appends the tag itself (`RepoTags: ["name:tag"]`).
    writer.set_name(&recipe.image.name);
    let per_arch = resolved
        .iter()
        .map(|res| arch(&shared, res, &mut writer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let built = supply_chain::commit(recipe, resolved, &per_arch, writer, format, settings)?;
    if let Some(remote) = &shared.remote {
        build::share(remote, reporter);
    }
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

/// One arch's stages: fetch → verify → unpack → finish → review → write.
fn arch(s: &build::Shared, res: &Resolved, writer: &mut ImageWriter) -> anyhow::Result<ArchFacts> {
    let (recipe, settings, reporter) = (s.recipe, s.settings, s.reporter);
    // The plan holds the core's packages too: the cache repo fills the
    // local cache for both before the core's fetch.
    if let Some(remote) = &s.remote {
        build::from_cache_repo(remote, &s.cache, res, settings.jobs, reporter);
    }
    // With a base, the core's tree first: its layer is the core's own. A
    // published base's layers are its own too.
    let core = match (&res.base, res.core.as_deref()) {
        (Some(b), _) => Some(base::lower(s, res, b, writer)?),
        (None, Some(c)) => Some(core_layer::core_layer(s, c, writer)?),
        (None, None) => None,
    };
    let parsed_before = crate::package::file::headers_parsed_on_this_thread();
    let rpms = build::fetch_rpms(&s.client, &s.cache, res, settings.jobs, reporter)?;
    let signers = build::verify_signatures(recipe, &s.rings, res, &rpms, reporter)?;
    // The tree's file contents live in staging blobs until the layer is written.
    let staging = build::staging_dir(res)?;
    let mut stage = rootfs::Staging::new(staging.path())?;
    let start = core
        .as_ref()
        .filter(|_| res.base.is_some())
        .map(|c| &c.tree);
    let mut unpacked = build::unpack_all(recipe, res, &rpms, &mut stage, start, reporter)?;
    let finished = finish::finish(s, res, &rpms, &mut unpacked, &mut stage)?;
    let tree = &unpacked.tree;
    build::review(tree, res, settings, reporter)?;
    build::export_rootfs(tree, settings, reporter)?;
    let (manifest_digest, epoch) = build::write_image(
        s,
        res,
        tree,
        finished.user,
        writer,
        core.as_ref(),
        &mut stage,
    )?;
    // Every stage took the headers fetch_rpms read: one parse per package
    // (and, over a published base, one per base header the rpmdb re-indexes).
    let base_headers = match &res.base {
        Some(b) if recipe.options.rpmdb => b.headers.len(),
        _ => 0,
    };
    debug_assert_eq!(
        crate::package::file::headers_parsed_on_this_thread() - parsed_before,
        (rpms.len() + base_headers) as u64
    );
    Ok(ArchFacts {
        arch: res.arch,
        plan: Plan {
            packages: (unpacked.headers.into_iter().zip(&res.plan.packages))
                .map(|(package, p)| Planned {
                    package,
                    reason: p.reason.clone(),
                })
                .collect(),
            choices: res.plan.choices.clone(),
            left_out: res.plan.left_out.clone(),
        },
        distro: supply_chain::distro_of(&unpacked.tree),
        manifest_digest,
        signers,
        epoch,
        removed: finished.removed,
        core_layer: core
            .filter(|_| res.base.is_none())
            .map(|c| c.layers[0].digest.clone()),
    })
}
