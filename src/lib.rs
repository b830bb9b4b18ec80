//! minibuild: RPM repositories in, minimal reproducible OCI images out.
//!
//! The modules follow the pipeline:
//! [`recipe`] → [`repo`] → [`resolve`] → [`fetch`] → [`rootfs`] → [`oci`],
//! wired together by [`pipeline`]; the CLI in `main.rs` only parses
//! arguments and reports.

pub mod cache;
pub mod digest;
pub mod fetch;
pub mod http;
pub mod oci;
pub mod recipe;
pub mod repo;
pub mod resolve;
pub mod rootfs;
pub mod rpm;
