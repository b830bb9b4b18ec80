//! OCI image: deterministic layer, config, manifest, index, their writers,
//! and the reader of an image already on disk.
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
//!
//! Reading goes the other way: [`LocalImage`] (`local.rs`) opens a layout
//! dir or oci-archive as typed manifests and blob locations, for a push
//! (`crate::registry`) and for [`load`], which rebuilds each platform's
//! tree for `minibuild check`. Nothing here knows about registries,
//! recipes or checks.

pub mod archive;
pub mod config;
pub mod destination;
mod error;
pub mod format;
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

pub use config::{Healthcheck, HistoryEntry, ImageConfig};
pub use destination::Replace;
pub use error::ImageError;
pub use format::Format;
pub use layer::{write_layer, write_layer_with, Compression, LayerInfo, LayerOptions};
pub use layout::{ImageWriter, Written};
pub use local::{BlobSource, LocalImage};
pub use manifest::{Descriptor, ImageInfo, Platform};
