//! A package as repository metadata describes it: identity, where the file
//! is and its checksum, descriptive fields and dependencies. The vocabulary
//! every stage shares (the repo loader fills it from primary.xml, a local RPM
//! or a lock from its header).

use super::{Dep, Nevra};
use crate::digest::Digest;

/// One package as described by a repository's primary metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub nevra: Nevra,
    /// Index into the resolver's repo list (the recipe's `[[repo]]` order).
    pub repo: usize,
    /// `<location href>`, relative to the repo's base URL.
    pub location: String,
    /// `<checksum>` of the whole .rpm file.
    pub checksum: Digest,
    /// Size of the .rpm file (`<size package>`).
    pub download_size: u64,
    /// Sum of the payload's file sizes (`<size installed>`).
    pub installed_size: u64,
    pub build_time: u64,
    pub summary: String,
    pub license: String,
    pub vendor: String,
    pub packager: String,
    pub source_rpm: String,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub supplements: Vec<Dep>,
    pub enhances: Vec<Dep>,
    /// The file paths primary.xml lists (binaries, /etc): enough for most file deps.
    pub files: Vec<String>,
}

impl Package {
    /// A package with its identity and location and nothing else known yet:
    /// no dependencies, files or descriptive fields (a build from a lock
    /// fills those from the RPM header).
    pub fn new(nevra: Nevra, repo: usize, location: String, checksum: Digest) -> Package {
        Package {
            nevra,
            repo,
            location,
            checksum,
            download_size: 0,
            installed_size: 0,
            build_time: 0,
            summary: String::new(),
            license: String::new(),
            vendor: String::new(),
            packager: String::new(),
            source_rpm: String::new(),
            provides: vec![],
            requires: vec![],
            conflicts: vec![],
            obsoletes: vec![],
            recommends: vec![],
            suggests: vec![],
            supplements: vec![],
            enhances: vec![],
            files: vec![],
        }
    }
}
