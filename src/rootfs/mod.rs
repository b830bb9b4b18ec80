//! The image's file tree, assembled without root and without touching host paths.
//!
//! File *contents* are streamed into one staging pack file (see [`staging`]);
//! everything else (path, type, owner, mode, mtime, capabilities, symlink
//! targets, hardlinks) lives only in the in-memory [`Tree`]. Because no
//! payload path is ever used as a host path, a hostile package cannot write
//! outside the staging root: `..`, absolute symlinks and symlinked parents
//! are resolved inside the tree.
//!
//! Use: [`Staging::new`] once, [`unpack()`] each RPM in install order (each
//! returns a [`PackageReport`]: scriptlets not run, devices skipped, what
//! the filters dropped), then [`harden()`], then [`assign_ids`] once the
//! image's `/etc/passwd` and `/etc/group` are final; [`finish()`] runs
//! those and every other step after the payloads in one call. A [`Kind::File`]'s
//! content is a [`BlobRef`]: a section (offset, length) of the staging pack.
//!
//! - [`cpio`]: streaming reader for newc and rpm's stripped (`07070X`) members.
//! - [`mod@unpack`]: header → file list, filters, payload → blobs → tree.
//! - [`tree`]: path resolution inside the image root and merge/conflict rules.
//! - [`mod@harden`]: setuid stripping, package-manager removal, numeric ids.
//! - [`caps`]: `FILECAPS` text → `security.capability` xattr bytes.
//! - [`filedigest`]: the header's file digests, checked against the payload.
//! - [`exclude`]: `exclude_paths` patterns, applied while unpacking.
//! - [`busybox`]: busybox's applet symlinks, read from its ELF tables.
//! - [`mod@finish`]: everything after the payloads, from plain options.
//! - [`layer_diff`]: the upper layer of a core + app image (tree diff, whiteouts).

use std::collections::{BTreeMap, BTreeSet};

pub mod accounts;
pub mod busybox;
pub mod caps;
pub mod copy;
pub mod cpio;
pub mod der;
pub mod effects;
pub mod exclude;
pub mod export;
pub mod filedigest;
pub mod finish;
pub mod generated;
pub mod harden;
pub mod layer_diff;
pub mod ldcache;
pub mod payload;
pub mod staging;
pub mod tree;
pub mod trust;
pub mod unpack;

#[cfg(test)]
mod tests;

pub use finish::{finish, CopyIn, FinishError, FinishOptions, Finished};
pub use harden::{assign_ids, harden, HardenError, HardenOptions, HardenReport};
pub use staging::{BlobRef, Staging};
pub use tree::TreeError;
pub use unpack::{unpack, PackageReport, UnpackError, UnpackOptions};

/// What a path in the image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file whose content is `blob` (in the staging pack). Entries
    /// sharing a `link_id` are hardlinks of each other (the first path in
    /// sorted order carries the content in the layer, the rest link to it).
    File {
        blob: BlobRef,
        size: u64,
        link_id: Option<u64>,
    },
    Symlink {
        target: String,
    },
    Fifo,
}

/// One path's metadata, as it will appear in the tar header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub user: String,
    pub group: String,
    /// Numeric ids, resolved against the image's own /etc/passwd and /etc/group.
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Extended attributes to carry as PAX records (e.g. `security.capability`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Name of the package that installed this path (None for implied dirs
    /// and files minibuild generated).
    pub package: Option<String>,
}

/// The image's tree: image paths (relative, no leading `/`, e.g. `usr/bin/bash`)
/// to entries, kept sorted so everything derived from it is deterministic.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
    /// Packages that also own a path whose entry names another package
    /// (a shared directory, an identical file): removing one owner must
    /// not remove what another still owns.
    pub co_owners: BTreeMap<String, BTreeSet<String>>,
}
