//! What the command line decides for a build (the recipe decides the rest).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::image;

/// Settings that come from the command line, not the recipe.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cache_dir: PathBuf,
    /// Repo name → baseurl replacing the recipe's.
    pub baseurl_overrides: BTreeMap<String, String>,
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH` from the environment, if set.
    pub source_date_epoch: Option<u64>,
    /// Fail the build when the image check finds an error.
    pub strict: bool,
    /// `--rootfs DIR`: also write the final tree there (one arch only).
    pub rootfs_dir: Option<PathBuf>,
    /// Site policy (`--policy`), checked before anything is downloaded.
    pub policy: Option<crate::policy::Policy>,
    /// What to write beside the image besides the image itself.
    pub outputs: SupplyChainOutputs,
    /// `(uri, sha256)` of the lock the plan was read from, for provenance.
    pub lock: Option<(String, Digest)>,
    /// `--allow-downgrade`: accept a signed repomd.xml older than one seen before.
    pub allow_downgrade: bool,
    /// Timeouts and TLS trust for mirrors (`--timeout`, `--ca`, `--cert-dir`).
    pub net: crate::http::ClientOptions,
    /// What may be replaced at the output path (`--force`: any file).
    pub replace: image::Replace,
    /// `--cache-repo REGISTRY/REPO`: a registry shared as a cache of RPMs
    /// and compressed layers (see [`crate::cache_repo`]).
    pub cache_repo: Option<crate::cache_repo::CacheRepo>,
    /// How to reach a registry: `[image] base = "REGISTRY/REPO:TAG"` is
    /// pulled with these (the `--push` credential and TLS flags).
    pub registry: crate::registry::PushOptions,
    /// Repo metadata shared by the recipes of one run (`None`: one recipe).
    pub repo_memo: Option<std::sync::Arc<super::memo::RepoMemo>>,
}

/// SBOM and provenance files a build writes (see README "Supply chain").
#[derive(Debug, Clone, Default)]
pub struct SupplyChainOutputs {
    /// Where to write the SBOM; with several arches the arch is inserted
    /// before the extension (`app.spdx.json` → `app.x86_64.spdx.json`).
    pub sbom: Option<PathBuf>,
    pub sbom_format: SbomFormat,
    /// Where to write the in-toto provenance statement.
    pub provenance: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SbomFormat {
    #[default]
    Spdx,
    CycloneDx,
}

impl SbomFormat {
    /// The file name suffix for this format.
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::CycloneDx => "cdx.json",
        }
    }
}
