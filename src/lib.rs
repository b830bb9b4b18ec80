//! minibuild: RPM repositories in, minimal reproducible OCI images out.
//!
//! The modules follow the pipeline:
//! [`recipe`] → [`repo`] → [`resolve`] → [`fetch`] → [`rootfs`] → [`image`]
//! (→ [`registry`] for a push), wired together by [`pipeline`]; the CLI in
//! `main.rs` only parses arguments and reports.
//!
//! The public modules are the facade: the stages, and the vocabulary and
//! services the CLI, the tests and the fuzz targets use (typed errors at their
//! public functions). The rest is internal and may change without notice.

// The stages, in pipeline order.
pub mod fetch;
pub mod image;
pub mod pipeline;
pub mod recipe;
pub mod registry;
pub mod repo;
pub mod resolve;
pub mod rootfs;

// Vocabulary, services and the commands beside `build`.
pub mod base_image;
pub mod cache;
pub mod cache_repo;
pub mod check;
pub mod diff;
pub mod digest;
pub mod elf;
pub mod explain;
pub mod gates;
pub mod http;
pub mod lock;
pub mod lock_diff;
pub mod package;
pub mod policy;
pub mod pool;
pub mod repofile;
pub mod report;
pub mod signature;
pub mod temporaries;
pub mod vendor;

// Internals.
mod credentials;
mod duration;
mod fsutil;
mod glob;
mod healthcheck;
mod local;
mod location;
mod package_manager;
mod provenance;
mod rpmdb;
mod sbom;
mod scriptlets;
#[cfg(test)]
pub(crate) mod testing;
