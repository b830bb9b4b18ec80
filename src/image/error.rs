//! What can go wrong writing or reading an image, naming the path.

use std::io;
use std::path::{Path, PathBuf};

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
