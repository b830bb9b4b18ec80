//! The forms a finished image takes on disk (`--format`).

/// How the finished image is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// An OCI image layout directory.
    Oci,
    /// The same layout packed into one tar file.
    #[default]
    OciArchive,
    /// The `docker save` format, for `docker load` (one architecture only).
    DockerArchive,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
        }
    }
}
