//! Files minibuild writes itself, standing in for what package scriptlets
//! would have produced (the CA bundles, `/etc/ld.so.cache`). They are
//! ordinary staging blobs owned by no package (`package: None`), so the
//! image check and the SBOM can tell them apart from packaged files.

use std::io::{self, Write as _};

use super::staging::Staging;
use super::tree::TreeError;
use super::{Entry, Kind, Tree};

/// Why a generated file could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum GeneratedError {
    #[error("cannot write the generated file /{path} into the staging directory")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot place the generated file /{path} in the image")]
    Tree {
        path: String,
        #[source]
        source: Box<TreeError>,
    },
}

/// Write `bytes` as the regular file `path` (root:root, `mode`), replacing
/// whatever the tree had there; returns the resolved image path.
pub fn put_file(
    tree: &mut Tree,
    staging: &mut Staging,
    path: &str,
    bytes: &[u8],
    mode: u32,
    mtime: u64,
) -> Result<String, GeneratedError> {
    let resolved = tree.resolve(path).map_err(|source| GeneratedError::Tree {
        path: path.to_string(),
        source: Box::new(source),
    })?;
    let io_err = |source| GeneratedError::Io {
        path: resolved.clone(),
        source,
    };
    let mut w = staging.create_blob().map_err(io_err)?;
    w.write_all(bytes).map_err(io_err)?;
    let blob = w.finish().map_err(io_err)?;
    staging.record(&blob);
    tree.ensure_parents(&resolved);
    tree.entries.insert(
        resolved.clone(),
        Entry {
            kind: Kind::File {
                blob: blob.blob,
                size: blob.size,
                link_id: None,
            },
            mode,
            user: "root".to_string(),
            group: "root".to_string(),
            uid: 0,
            gid: 0,
            mtime,
            xattrs: Default::default(),
            package: None,
        },
    );
    Ok(resolved)
}

/// The newest mtime of any packaged path: generated files get it, so they
/// are as reproducible as the packages and never newer than the build's
/// clamp (SOURCE_DATE_EPOCH defaults to the newest build time).
pub fn newest_mtime(tree: &Tree) -> u64 {
    tree.entries
        .values()
        .filter(|e| e.package.is_some())
        .map(|e| e.mtime)
        .max()
        .unwrap_or(0)
}
