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
