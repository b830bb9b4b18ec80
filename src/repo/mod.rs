//! Repository metadata: `repomd.xml` → `primary.xml.{zst,xz,gz}` → [`RepoIndex`].
//!
//! Loading is the only I/O here; the parsed index is plain data handed to the
//! resolver.

use crate::digest::Digest;
use crate::rpm::{Dep, Nevra};

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

/// One repository's parsed metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepoIndex {
    /// The recipe's name for the repo.
    pub name: String,
    /// The base URL after `$releasever`/`$basearch` substitution, ending in `/`.
    pub baseurl: String,
    /// `<revision>` from repomd.xml (provenance).
    pub revision: String,
    /// Checksum of repomd.xml itself (cache key, provenance).
    pub repomd_digest: Digest,
    pub packages: Vec<Package>,
}
