//! The core's layer of an image with `[image] base`: the core recipe's
//! packages fetched, verified, unpacked and finished with its own options, and
//! written as the first layer (the bytes `minibuild build CORE` writes).

use anyhow::Context as _;

use super::build::{
    add_layer_shared, fetch_rpms, image_epoch, staging_dir, unpack_all, verify_signatures,
    CoreLayer, Shared,
};
use super::{finish, Resolved};
use crate::cache::Cache;
use crate::image::layer_cache::LayerCache;
use crate::image::{ImageWriter, LayerOptions};
use crate::report::Event;
use crate::rootfs;

/// Fetch, verify, unpack and finish the core's packages as the core recipe
/// says, and write its layer.
pub(super) fn core_layer(
    s: &Shared,
    core: &Resolved,
    writer: &mut ImageWriter,
) -> anyhow::Result<CoreLayer> {
    let recipe = s
        .recipe
        .core
        .as_deref()
        .context("a plan with a core needs the core recipe (image.base)")?;
    let (settings, reporter) = (s.settings, s.reporter);
    reporter.event(Event::BuildingCore {
        arch: core.arch.to_string(),
        recipe: recipe.path.clone(),
        packages: core.plan.packages.len(),
    });
    let client = super::client(recipe, settings)?;
    let rings = super::keyrings(recipe, &client)?;
    let cache = Cache::new(&settings.cache_dir);
    let cs = Shared {
        recipe,
        settings,
        reporter,
        client,
        layers: LayerCache::new(cache.bucket(crate::cache::Bucket::Layers)),
        cache,
        rings,
        compression: s.compression,
        remote: None,
    };
    let rpms = fetch_rpms(&cs.client, &cs.cache, core, settings.jobs, reporter)?;
    verify_signatures(recipe, &cs.rings, core, &rpms, reporter)?;
    let staging = staging_dir(core)?;
    let mut stage = rootfs::Staging::new(staging.path())?;
    let mut unpacked = unpack_all(recipe, core, &rpms, &mut stage, None, reporter)?;
    finish::finish(&cs, core, &rpms, &mut unpacked, &mut stage)?;
    let epoch = image_epoch(recipe, core, settings);
    // Through the app's cache repo, if any: the core layer is shared too.
    let (layer, _) = add_layer_shared(
        s,
        &unpacked.tree,
        &LayerOptions {
            source_date_epoch: epoch,
            compression: s.compression,
        },
        writer,
    )?;
    reporter.event(Event::LayerWritten {
        arch: core.arch.to_string(),
        digest: layer.digest.to_string(),
        size: layer.size,
        uncompressed_size: layer.uncompressed_size,
        reused: false,
    });
    Ok(CoreLayer {
        layers: vec![layer],
        tree: unpacked.tree,
        _staging: staging,
    })
}
