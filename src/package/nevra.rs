//! Package identity: name, epoch:version-release, architecture.

use std::fmt;

use super::Evr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Nevra {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
}

impl Nevra {
    pub fn new(name: impl Into<String>, evr: Evr, arch: impl Into<String>) -> Self {
        Nevra {
            name: name.into(),
            evr,
            arch: arch.into(),
        }
    }
}

/// `name-[epoch:]version-release.arch`, as dnf prints it.
impl fmt::Display for Nevra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.name, self.evr, self.arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_dnf() {
        let n = Nevra::new("bash", Evr::parse("5.2.15-2.fc40"), "x86_64");
        assert_eq!(n.to_string(), "bash-5.2.15-2.fc40.x86_64");
        let n = Nevra::new("shadow-utils", Evr::parse("2:4.14-1"), "x86_64");
        assert_eq!(n.to_string(), "shadow-utils-2:4.14-1.x86_64");
    }
}
