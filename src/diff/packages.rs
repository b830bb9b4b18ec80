//! Package changes between two package sets: added, removed, upgraded,
//! downgraded (rpmvercmp order) or rebuilt (same EVR, other header), with
//! each package's installed-size delta. Images give their rpmdb's packages;
//! locks go through [`crate::lock_diff`] and are mapped onto the same types.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::lock::{Lock, LockedPackage};
use crate::lock_diff::{self, Change};
use crate::package::{Evr, Nevra};

/// One installed package, as the diff needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
    /// Installed size in bytes, when the source records it.
    pub size: Option<u64>,
    /// What identifies the build (header digest or RPM checksum): a
    /// difference with an equal EVR is a rebuild.
    pub build_id: Option<String>,
}

impl Package {
    pub fn nevra(&self) -> String {
        Nevra::new(self.name.clone(), self.evr.clone(), self.arch.clone()).to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Upgraded,
    Downgraded,
    Rebuilt,
}

/// One package that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub change: ChangeKind,
    pub name: String,
    pub arch: String,
    /// NEVRA in A, and in B.
    pub old: Option<String>,
    pub new: Option<String>,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
    /// `new_size - old_size`, absent sizes counting as 0; `None` when
    /// neither side records a size.
    pub size_delta: Option<i64>,
}

/// Every package change and the total installed sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// Where the package lists came from: `rpmdb` or `lock`.
    pub source: &'static str,
    pub changes: Vec<PackageChange>,
    /// Total installed size in A and B (`None` when not recorded).
    pub old_total: Option<u64>,
    pub new_total: Option<u64>,
}

impl PackageDiff {
    /// `None` when either total is unknown (a package without a size).
    pub fn total_delta(&self) -> Option<i64> {
        Some(self.new_total? as i64 - self.old_total? as i64)
    }
}

fn delta(old: Option<u64>, new: Option<u64>) -> Option<i64> {
    if old.is_none() && new.is_none() {
        return None;
    }
    Some(new.unwrap_or(0) as i64 - old.unwrap_or(0) as i64)
}

fn total(pkgs: &[Package]) -> Option<u64> {
    pkgs.iter().map(|p| p.size).sum()
}

fn change(kind: ChangeKind, old: Option<&Package>, new: Option<&Package>) -> PackageChange {
    let any = new.or(old).expect("a change has at least one side");
    let (old_size, new_size) = (old.and_then(|p| p.size), new.and_then(|p| p.size));
    PackageChange {
        change: kind,
        name: any.name.clone(),
        arch: any.arch.clone(),
        old: old.map(Package::nevra),
        new: new.map(Package::nevra),
        old_size,
        new_size,
        size_delta: delta(old_size, new_size),
    }
}

/// Compare two package sets keyed by name and arch.
pub fn compare(old: &[Package], new: &[Package]) -> PackageDiff {
    let key = |p: &Package| (p.name.clone(), p.arch.clone());
    let before: BTreeMap<_, &Package> = old.iter().map(|p| (key(p), p)).collect();
    let after: BTreeMap<_, &Package> = new.iter().map(|p| (key(p), p)).collect();
    let mut keys: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    for k in keys {
        let (o, n) = (before.get(k).copied(), after.get(k).copied());
        let kind = match (o, n) {
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some(a), Some(b)) => match b.evr.compare(&a.evr) {
                Ordering::Greater => ChangeKind::Upgraded,
                Ordering::Less => ChangeKind::Downgraded,
                Ordering::Equal if a.build_id != b.build_id => ChangeKind::Rebuilt,
                Ordering::Equal => continue,
            },
            (None, None) => continue,
        };
        changes.push(change(kind, o, n));
    }
    PackageDiff {
        source: "rpmdb",
        changes,
        old_total: total(old),
        new_total: total(new),
    }
}

fn from_lock(p: &LockedPackage) -> Package {
    let n = p.nevra();
    Package {
        name: p.name.clone(),
        evr: n.evr.clone(),
        arch: p.arch.clone(),
        // A lock written before sizes were recorded has 0 there.
        size: (p.installed_size > 0).then_some(p.installed_size),
        build_id: Some(p.checksum.to_string()),
    }
}

/// Two locks' changes per target, as `lock --update` computes them.
pub fn compare_locks(old: &Lock, new: &Lock) -> Vec<(String, PackageDiff)> {
    let index = |lock: &Lock| -> BTreeMap<(String, String), Package> {
        lock.packages
            .iter()
            .map(|p| ((p.target.clone(), p.nevra().to_string()), from_lock(p)))
            .collect()
    };
    let (before, after) = (index(old), index(new));
    let of_target = |lock: &Lock, target: &str| -> Vec<Package> {
        lock.packages
            .iter()
            .filter(|p| p.target == target)
            .map(from_lock)
            .collect()
    };
    lock_diff::diff(old, new)
        .0
        .into_iter()
        .map(|t| {
            let look = |map: &BTreeMap<(String, String), Package>, nevra: &str| {
                map.get(&(t.target.clone(), nevra.to_string())).cloned()
            };
            let changes = t
                .changes
                .iter()
                .filter_map(|c| {
                    let (kind, o, n) = match c {
                        Change::Added(n) => (ChangeKind::Added, None, look(&after, n)),
                        Change::Removed(o) => (ChangeKind::Removed, look(&before, o), None),
                        Change::Upgraded { old, new } => {
                            (ChangeKind::Upgraded, look(&before, old), look(&after, new))
                        }
                        Change::Downgraded { old, new } => (
                            ChangeKind::Downgraded,
                            look(&before, old),
                            look(&after, new),
                        ),
                        Change::Rebuilt(n) => {
                            (ChangeKind::Rebuilt, look(&before, n), look(&after, n))
                        }
                    };
                    (o.is_some() || n.is_some()).then(|| change(kind, o.as_ref(), n.as_ref()))
                })
                .collect();
            let diff = PackageDiff {
                source: "lock",
                changes,
                old_total: total(&of_target(old, &t.target)),
                new_total: total(&of_target(new, &t.target)),
            };
            (t.target, diff)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, evr: &str, size: u64, id: &str) -> Package {
        Package {
            name: name.into(),
            evr: Evr::parse(evr),
            arch: "x86_64".into(),
            size: Some(size),
            build_id: Some(id.into()),
        }
    }

    #[test]
    fn classifies_by_rpmvercmp_and_sums_sizes() {
        let a = [
            pkg("bash", "5.2-1", 1000, "b1"),
            pkg("glibc", "2.39-10", 5000, "g1"),
            pkg("zlib", "1.3-1", 100, "z1"),
            pkg("old", "1-1", 50, "o1"),
        ];
        let b = [
            // 5.2 < 5.2.1 in rpmvercmp; a tilde sorts before the release.
            pkg("bash", "5.2.1-1", 1200, "b2"),
            pkg("glibc", "2.39~rc1-1", 4900, "g2"),
            pkg("zlib", "1.3-1", 100, "z-rebuilt"),
            pkg("new", "1-1", 30, "n1"),
        ];
        let d = compare(&a, &b);
        let got: Vec<(ChangeKind, &str, Option<i64>)> = d
            .changes
            .iter()
            .map(|c| (c.change, c.name.as_str(), c.size_delta))
            .collect();
        assert_eq!(
            got,
            [
                (ChangeKind::Upgraded, "bash", Some(200)),
                (ChangeKind::Downgraded, "glibc", Some(-100)),
                (ChangeKind::Added, "new", Some(30)),
                (ChangeKind::Removed, "old", Some(-50)),
                (ChangeKind::Rebuilt, "zlib", Some(0)),
            ]
        );
        assert_eq!(d.total_delta(), Some(6230 - 6150));
        assert_eq!(d.changes[0].old.as_deref(), Some("bash-5.2-1.x86_64"));
        assert_eq!(d.changes[0].new.as_deref(), Some("bash-5.2.1-1.x86_64"));
        assert!(compare(&a, &a).changes.is_empty());
    }

    #[test]
    fn unknown_sizes_stay_unknown() {
        let mut p = pkg("a", "1-1", 0, "x");
        p.size = None;
        let d = compare(&[], &[p]);
        assert_eq!(d.changes[0].size_delta, None);
        assert_eq!(d.total_delta(), None);
    }
}
