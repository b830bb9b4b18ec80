//! RPM vocabulary shared by every stage: versions, identities, dependencies, arches.

mod arch;
mod dep;
mod evr;
pub mod file;
pub mod header;
pub mod identity;
mod nevra;
mod record;

pub use arch::Arch;
pub use dep::{ranges_overlap, Cmp, Dep};
pub use evr::{rpmvercmp, Evr};
pub use nevra::Nevra;
pub use record::Package;

/// liblzma's memory limit for one payload or metadata stream: rpm's default
/// (`%_xz_memlimit` unset: rpmio's `100<<20`). `xz -9` needs 65 MiB to
/// decode; an lzma header may claim a 4 GiB dictionary (found by the
/// `payload` fuzz target).
pub const XZ_MEMLIMIT: u64 = 100 << 20;
