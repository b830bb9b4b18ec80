//! Dependencies (`Requires`, `Provides`, …) and rpm's range-overlap rule.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::Evr;

/// The comparison of a versioned dependency (`<`, `<=`, `=`, `>=`, `>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    /// The `flags` attribute of rpm-md's `<rpm:entry>`.
    pub fn from_repomd(flags: &str) -> Option<Cmp> {
        Some(match flags {
            "LT" => Cmp::Lt,
            "LE" => Cmp::Le,
            "EQ" => Cmp::Eq,
            "GE" => Cmp::Ge,
            "GT" => Cmp::Gt,
            _ => return None,
        })
    }

    fn lt(self) -> bool {
        matches!(self, Cmp::Lt | Cmp::Le)
    }
    fn gt(self) -> bool {
        matches!(self, Cmp::Gt | Cmp::Ge)
    }
    fn eq(self) -> bool {
        matches!(self, Cmp::Le | Cmp::Eq | Cmp::Ge)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// One dependency: a capability name (a package name, a virtual provide, a
/// file path, or a rich `(a or b)` expression) and an optional version range.
///
/// The name and version are shared (`Arc`), not owned: a Fedora-sized repo
/// has about 1.25 million dependency entries but only a few hundred
/// thousand distinct names and versions, and the metadata cache hands out
/// one copy of each per chunk (see `repo/codec.rs`). That keeps a `Dep` at
/// 32 bytes with no allocation of its own (it was 88 bytes and two or three
/// heap strings, most of a warm metadata load's memory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Dep {
    pub name: Arc<str>,
    pub range: Option<(Cmp, Arc<Evr>)>,
}

impl Dep {
    pub fn any(name: impl Into<Arc<str>>) -> Dep {
        Dep {
            name: name.into(),
            range: None,
        }
    }

    pub fn versioned(name: impl Into<Arc<str>>, cmp: Cmp, evr: Evr) -> Dep {
        Dep {
            name: name.into(),
            range: Some((cmp, Arc::new(evr))),
        }
    }

    /// Boolean dependencies (rpm ≥ 4.13) are written in parentheses.
    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }

    /// Dependencies on rpm's own features, satisfied by rpm itself, never by a package.
    pub fn is_rpmlib(&self) -> bool {
        self.name.starts_with("rpmlib(")
    }

    pub fn is_file(&self) -> bool {
        self.name.starts_with('/')
    }

    /// Whether a `provide` satisfies this requirement (rpm's `rpmdsCompare`):
    /// names equal, and the two version ranges overlap. An unversioned side
    /// matches everything.
    pub fn is_satisfied_by(&self, provide: &Dep) -> bool {
        if self.name != provide.name {
            return false;
        }
        let (Some((want, want_evr)), Some((have, have_evr))) = (&self.range, &provide.range) else {
            return true;
        };
        ranges_overlap(*have, have_evr, *want, want_evr)
    }
}

/// Whether `a_cmp a_evr` and `b_cmp b_evr` have a version in common.
pub fn ranges_overlap(a_cmp: Cmp, a_evr: &Evr, b_cmp: Cmp, b_evr: &Evr) -> bool {
    match a_evr.compare(b_evr) {
        Ordering::Less => a_cmp.gt() || b_cmp.lt(),
        Ordering::Greater => a_cmp.lt() || b_cmp.gt(),
        Ordering::Equal => {
            (a_cmp.eq() && b_cmp.eq()) || (a_cmp.lt() && b_cmp.lt()) || (a_cmp.gt() && b_cmp.gt())
        }
    }
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((cmp, evr)) = &self.range {
            write!(f, " {} {evr}", cmp.symbol())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dep {
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            [n] => Dep::any(*n),
            [n, op, v] => {
                let cmp = match *op {
                    "<" => Cmp::Lt,
                    "<=" => Cmp::Le,
                    "=" => Cmp::Eq,
                    ">=" => Cmp::Ge,
                    ">" => Cmp::Gt,
                    _ => panic!("{op}"),
                };
                Dep::versioned(*n, cmp, Evr::parse(v))
            }
            _ => panic!("{s}"),
        }
    }

    #[test]
    fn versioned_requirements_against_provides() {
        let cases = [
            ("foo >= 1.0", "foo = 1.2-3", true),
            ("foo >= 1.3", "foo = 1.2-3", false),
            ("foo < 1.3", "foo = 1.2-3", true),
            ("foo = 1.2", "foo = 1.2-3", true),
            ("foo = 1.2-4", "foo = 1.2-3", false),
            ("foo > 1.2", "foo = 1.2-3", false),
            ("foo <= 1.2", "foo = 1.2-3", true),
            ("foo >= 1:1.0", "foo = 1.2-3", false),
            ("foo >= 1.0", "foo", true),
            ("foo", "foo = 0.1", true),
            ("foo >= 1.0", "bar = 2", false),
            ("foo > 1.0", "foo >= 0.5", true),
            ("foo < 1.0", "foo > 2.0", false),
        ];
        for (req, prov, want) in cases {
            assert_eq!(
                dep(req).is_satisfied_by(&dep(prov)),
                want,
                "{req} by {prov}"
            );
        }
    }

    #[test]
    fn display_and_kinds() {
        assert_eq!(dep("foo >= 1:2-3").to_string(), "foo >= 1:2-3");
        assert!(Dep::any("(a or b)").is_rich());
        assert!(Dep::any("/bin/sh").is_file());
        assert!(Dep::any("rpmlib(PayloadIsZstd)").is_rpmlib());
    }
}
