//! Target architectures and which package arches install on them.

use std::fmt;
use std::str::FromStr;

/// An image architecture. Multilib is never installed: an x86_64 image gets
/// x86_64 and noarch packages, never i686.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
    Ppc64le,
    S390x,
}

impl Arch {
    pub const ALL: [Arch; 4] = [Arch::X86_64, Arch::Aarch64, Arch::Ppc64le, Arch::S390x];

    pub fn rpm_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
        }
    }

    /// The OCI/Go name of the platform (`GOARCH`).
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
        }
    }

    /// Whether a package built for `pkg_arch` installs on this arch.
    pub fn accepts(self, pkg_arch: &str) -> bool {
        pkg_arch == "noarch" || pkg_arch == self.rpm_name()
    }

    /// The host's arch, the default when a recipe names none.
    pub fn host() -> Option<Arch> {
        std::env::consts::ARCH.parse().ok()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rpm_name())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "x86_64" | "amd64" => Arch::X86_64,
            "aarch64" | "arm64" => Arch::Aarch64,
            "ppc64le" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            other => {
                return Err(format!(
                "unknown architecture `{other}` (expected one of x86_64, aarch64, ppc64le, s390x)"
            ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_multilib() {
        assert!(Arch::X86_64.accepts("x86_64"));
        assert!(Arch::X86_64.accepts("noarch"));
        assert!(!Arch::X86_64.accepts("i686"));
        assert!(!Arch::Aarch64.accepts("x86_64"));
        assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
        assert!("sparc".parse::<Arch>().is_err());
    }
}
