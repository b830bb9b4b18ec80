//! A registry reference as a `diff` input: pulled with the base-image
//! puller ([`crate::base_image::pull::pull_all`]: the `--push` session,
//! every platform, blobs verified and cached by digest), then laid out as
//! an OCI layout directory of symlinks to the cached blobs, which the
//! local reader reads like any other image. Nothing is pulled twice: a
//! second diff of the same digest reads the cache.

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::base_image::{PullOptions, PulledAll};
use crate::registry::Reference;

/// Pull `reference` and lay it out in a new temporary directory (removed
/// when dropped).
pub fn pull(reference: &Reference, opts: &PullOptions) -> anyhow::Result<tempfile::TempDir> {
    let pulled = crate::base_image::pull::pull_all(reference, opts)?;
    let dir = tempfile::Builder::new()
        .prefix("minibuild-diff-")
        .tempdir()
        .context("cannot create a temporary directory for the pulled image")?;
    lay_out(&pulled, dir.path()).with_context(|| {
        format!(
            "cannot lay out the image {reference} in {}",
            dir.path().display()
        )
    })?;
    Ok(dir)
}

/// `oci-layout`, an `index.json` naming what the reference resolved to,
/// and `blobs/ALGO/HEX` linked to the cache.
fn lay_out(pulled: &PulledAll, dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": crate::image::manifest::MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": pulled.media_type,
            "digest": pulled.digest.to_string(),
            "size": pulled.size,
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string())?;
    for (digest, path) in &pulled.blobs {
        let algo_dir = dir.join("blobs").join(digest.algo().name());
        std::fs::create_dir_all(&algo_dir)?;
        let link = algo_dir.join(digest.hex());
        // A blob listed twice (a layer shared by two platforms) is linked once.
        if link.symlink_metadata().is_err() {
            // Absolute: a relative --cache-dir would not resolve from here.
            std::os::unix::fs::symlink(std::fs::canonicalize(path)?, &link)?;
        }
    }
    Ok(())
}
