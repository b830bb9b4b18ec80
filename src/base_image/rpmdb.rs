//! The base image's rpm database: its layers applied in order (OCI
//! whiteouts honoured) for the database's directories only, then the
//! `Packages` blobs (sqlite or Berkeley DB) read with the rpmdb module's reader, the one
//! `minibuild diff` uses too.

use anyhow::Context as _;

use crate::digest::Digest;
use crate::image::LayerInfo;
use crate::package::file::Headers;
use crate::package::Package;
use crate::rootfs::{Staging, Tree};

/// The reader of a base's Berkeley DB `Packages` (rpm < 4.16): its header
/// blobs by header instance (re-exported for the tests and fuzz targets).
pub use crate::rpmdb::bdb::{blobs as bdb_blobs, BdbError};

/// The directories an rpmdb lives in, and their parents (kept so that a
/// `var/lib/rpm` symlink is followed).
const DB_DIRS: &[&str] = &["var/lib/rpm", "usr/lib/sysimage/rpm"];

/// Whether a layer path matters for finding the rpmdb.
fn on_db_path(p: &str) -> bool {
    let under = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|rest| rest.starts_with('/'));
    DB_DIRS
        .iter()
        .any(|dir| *dir == p || under(dir, p) || under(p, dir))
}

/// The rpmdb's path in the image and its header blobs; `what` names the
/// image in errors.
pub fn read(layers: &[LayerInfo], what: &str) -> anyhow::Result<(String, Vec<Vec<u8>>)> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut stage = Staging::new(dir.path()).context("cannot create a staging directory")?;
    let mut tree = Tree::default();
    for layer in layers {
        let source = crate::image::BlobSource {
            path: layer.path_of_blob.clone(),
            offset: 0,
            size: layer.size,
        };
        crate::image::load::apply_layer_blob(
            &mut tree,
            &source,
            &layer.digest,
            &mut stage,
            Some(&on_db_path),
        )
        .with_context(|| format!("cannot read layer {} of {what}", layer.digest))?;
    }
    crate::rpmdb::read::required_in_tree(&tree, what)
}

/// The installed packages of the header `blobs` (repo index 0 until
/// [`super::BaseImage::index`] places them), gpg-pubkey entries (keys,
/// not packages) left out.
pub fn packages(blobs: &[Vec<u8>], db_path: &str) -> anyhow::Result<Vec<Package>> {
    let mut out = Vec::with_capacity(blobs.len());
    for (i, blob) in blobs.iter().enumerate() {
        let damaged = || format!("/{db_path}: package header {}", i + 1);
        let headers = Headers::from_installed(blob).with_context(damaged)?;
        let nevra = headers.nevra().with_context(damaged)?;
        if nevra.name == "gpg-pubkey" {
            continue;
        }
        let location = format!("{db_path}#{}", i + 1);
        let pkg =
            crate::package::header::package_of(&headers, 0, location, Digest::sha256_of(blob))
                .with_context(damaged)?;
        out.push(pkg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rpmdb_directories_and_their_parents_are_kept() {
        for kept in [
            "var",
            "var/lib",
            "var/lib/rpm",
            "var/lib/rpm/rpmdb.sqlite",
            "usr",
            "usr/lib",
            "usr/lib/sysimage",
            "usr/lib/sysimage/rpm/rpmdb.sqlite",
        ] {
            assert!(on_db_path(kept), "{kept}");
        }
        for left in [
            "usr/bin/bash",
            "var/lib/rpmstate",
            "var/li",
            "etc/passwd",
            "usr/lib64",
        ] {
            assert!(!on_db_path(left), "{left}");
        }
    }
}
