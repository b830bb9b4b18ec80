//! Registry: pushing a finished local image, and attaching its SBOMs, over
//! the OCI distribution API.
//!
//! ```text
//! Reference ─┐
//! LocalImage ├─push──▶ Client ──▶ blobs, manifests, tag      (client.rs over tls.rs)
//! SBOMs ─────┘   └─attach──▶ artifact manifests + referrers  (attach.rs)
//! ```
//!
//! The local image is read by [`crate::image::local`]; this module only
//! talks to the registry. [`auth`] finds credentials where docker, podman
//! and skopeo keep them and answers the registry's challenge, and
//! [`origin`] keeps credentials on the origin they belong to.

pub mod attach;
pub mod auth;
mod client;
mod error;
mod event;
mod options;
pub mod origin;
pub mod pull;
pub mod push;
pub mod reference;
mod tls;

pub use attach::{Attached, Listing};
pub use error::PushError;
pub use event::PushEvent;
pub use options::PushOptions;
pub use pull::{Manifest, Session};
pub use push::{push, push_attaching, write_digestfile, write_image_refs, Pushed};
pub use reference::{Reference, Target};
