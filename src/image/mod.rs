//! OCI image: deterministic layer, config, manifest, index, and their writers.
//!
//! The flow, for each architecture of a recipe:
//!
//! ```text
//! Tree ──layer::write_layer──▶ blobs/sha256/<layer>      (tar → gzip|zstd, hashed twice in one pass)
//! ImageConfig + layers ──▶ config blob ──▶ manifest blob  (canonical JSON)
//! manifests ──commit──▶ index.json ──▶ layout dir | oci-archive
//! ```
//!
//! [`ImageWriter`] drives it:
//!
//! ```no_run
//! # use minibuild::image::*;
//! # fn f(tree: &minibuild::rootfs::Tree, config: &ImageConfig) -> Result<(), ImageError> {
//! let mut writer = ImageWriter::new("nginx.tar".as_ref())?;
//! let opts = LayerOptions { source_date_epoch: config.created, compression: Compression::Gzip };
//! let layer = writer.add_layer(tree, &opts)?;
//! writer.add_image(config, &[layer])?;
//! let written = writer.commit(Format::OciArchive, "latest")?;
//! println!("{}", written.digest);
//! # Ok(()) }
//! ```

pub mod archive;
pub mod config;
pub mod destination;
pub mod json;
pub mod layer;
pub mod layer_cache;
pub mod layout;
pub mod load;
pub mod local;
pub mod manifest;
pub mod pgzip;
mod tarball;

#[cfg(test)]
pub(crate) mod test_tree;
#[cfg(test)]
mod tool_tests;

use std::io;
use std::path::{Path, PathBuf};

pub use config::{Healthcheck, HistoryEntry, ImageConfig};
pub use destination::Replace;
pub use layer::{write_layer, write_layer_with, Compression, LayerInfo, LayerOptions};
pub use layout::{Format, ImageWriter, Written};
pub use local::{BlobSource, LocalImage};
pub use manifest::{Descriptor, ImageInfo, Platform};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("failed to {what} `{}`", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot put `{path}` in the layer: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("failed to write `{path}` into the layer")]
    Layer {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid image {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("refusing to replace `{}`: {reason}", path.display())]
    RefuseToReplace { path: PathBuf, reason: String },
    #[error("cannot read the image `{}`: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
}

impl ImageError {
    pub(crate) fn io(what: &'static str, path: &Path, source: io::Error) -> Self {
        ImageError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
