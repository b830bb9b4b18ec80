//! minibuild: RPM repositories in, minimal reproducible OCI images out.
//!
//! The modules follow the pipeline:
//! [`recipe`] → [`repo`] → [`resolve`] → [`fetch`] → [`rootfs`] → [`image`]
//! (→ [`registry`] for a push), wired together by [`pipeline`]; the CLI in
//! `main.rs` only parses arguments and reports.

pub mod cache;
pub mod cache_repo;
pub mod check;
pub mod credentials;
pub mod digest;
pub mod duration;
pub mod elf;
pub mod explain;
pub mod fetch;
pub mod fsutil;
pub mod glob;
pub mod healthcheck;
pub mod http;
pub mod image;
pub mod local;
pub mod location;
pub mod lock;
pub mod lock_diff;
pub mod package_manager;
pub mod pipeline;
pub mod policy;
pub mod pool;
pub mod provenance;
pub mod recipe;
pub mod registry;
pub mod repo;
pub mod repofile;
pub mod report;
pub mod resolve;
pub mod rootfs;
pub mod rpm;
pub mod rpmdb;
pub mod sbom;
pub mod scriptlets;
pub mod signature;
pub mod temporaries;
#[cfg(test)]
pub(crate) mod testing;
pub mod vendor;
