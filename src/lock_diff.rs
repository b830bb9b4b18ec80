//! What `lock --update` changed: packages added, removed, upgraded,
//! downgraded or rebuilt (same NEVRA, other bytes), and the installed size.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::lock::{Lock, LockedPackage};
use crate::report::human_bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    Upgraded {
        old: String,
        new: String,
    },
    Downgraded {
        old: String,
        new: String,
    },
    /// Same NEVRA, different checksum: the repo rebuilt it.
    Rebuilt(String),
}

/// The changes for one target arch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetChanges {
    pub target: String,
    pub changes: Vec<Change>,
    pub installed_before: u64,
    pub installed_after: u64,
}

/// Every target's changes, in target order; targets without any are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDiff(pub Vec<TargetChanges>);

type Key<'a> = (&'a str, &'a str, &'a str);

fn by_key(lock: &Lock) -> BTreeMap<Key<'_>, &LockedPackage> {
    lock.packages
        .iter()
        .map(|p| ((p.target.as_str(), p.name.as_str(), p.arch.as_str()), p))
        .collect()
}

pub fn diff(old: &Lock, new: &Lock) -> LockDiff {
    let (before, after) = (by_key(old), by_key(new));
    let mut targets: BTreeMap<&str, TargetChanges> = BTreeMap::new();
    let mut keys: Vec<&Key> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let t = targets.entry(key.0).or_insert_with(|| TargetChanges {
            target: key.0.to_string(),
            changes: Vec::new(),
            installed_before: 0,
            installed_after: 0,
        });
        let (o, n) = (before.get(key), after.get(key));
        t.installed_before += o.map_or(0, |p| p.installed_size);
        t.installed_after += n.map_or(0, |p| p.installed_size);
        let change = match (o, n) {
            (None, Some(n)) => Change::Added(n.nevra().to_string()),
            (Some(o), None) => Change::Removed(o.nevra().to_string()),
            (Some(o), Some(n)) => {
                let (old, new) = (o.nevra().to_string(), n.nevra().to_string());
                match n.nevra().evr.compare(&o.nevra().evr) {
                    Ordering::Greater => Change::Upgraded { old, new },
                    Ordering::Less => Change::Downgraded { old, new },
                    Ordering::Equal if o.checksum != n.checksum => Change::Rebuilt(new),
                    Ordering::Equal => continue,
                }
            }
            (None, None) => continue,
        };
        t.changes.push(change);
    }
    LockDiff(
        targets
            .into_values()
            .filter(|t| !t.changes.is_empty() || t.installed_before != t.installed_after)
            .collect(),
    )
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(n) => write!(f, "added       {n}"),
            Change::Removed(n) => write!(f, "removed     {n}"),
            Change::Upgraded { old, new } => write!(f, "upgraded    {old} → {new}"),
            Change::Downgraded { old, new } => write!(f, "downgraded  {old} → {new}"),
            Change::Rebuilt(n) => write!(f, "rebuilt     {n} (same version, new checksum)"),
        }
    }
}

impl fmt::Display for LockDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no changes");
        }
        for t in &self.0 {
            for c in &t.changes {
                writeln!(f, "{}: {c}", t.target)?;
            }
            let (a, b) = (t.installed_before, t.installed_after);
            let sign = if b >= a { '+' } else { '-' };
            writeln!(
                f,
                "{}: installed size {} → {} ({sign}{})",
                t.target,
                human_bytes(a),
                human_bytes(b),
                human_bytes(a.abs_diff(b))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::lock::{LockedPackage, LockedRequest};

    fn pkg(target: &str, name: &str, evr: &str, bytes: &str, size: u64) -> LockedPackage {
        LockedPackage {
            target: target.into(),
            name: name.into(),
            evr: evr.into(),
            arch: "noarch".into(),
            repo: "r".into(),
            location: format!("{name}.rpm"),
            checksum: Digest::sha256_of(bytes.as_bytes()),
            download_size: 1,
            installed_size: size,
            build_time: 0,
            requested: None,
            required_by: None,
            recommended_by: None,
            dep: None,
            requires: Vec::new(),
            core: false,
        }
    }

    fn lock(packages: Vec<LockedPackage>) -> Lock {
        let request = LockedRequest {
            install: vec![],
            exclude: vec![],
            prefer: vec![],
            avoid: vec![],
            weak_deps: false,
            package_manager: false,
            arch: vec![],
            local: vec![],
        };
        Lock::new(request, vec![], packages)
    }

    #[test]
    fn rebuilt_and_epoch_downgrade_per_target() {
        let old = lock(vec![
            pkg("x86_64", "a", "1.0-1", "a1", 100),
            pkg("aarch64", "b", "1:1.0-1", "b1", 100),
        ]);
        let new = lock(vec![
            pkg("x86_64", "a", "1.0-1", "a1-rebuilt", 100),
            // No epoch sorts below epoch 1, whatever the version says.
            pkg("aarch64", "b", "9.0-1", "b9", 40),
        ]);
        assert_eq!(
            diff(&old, &new).to_string(),
            "aarch64: downgraded  b-1:1.0-1.noarch → b-9.0-1.noarch\n\
             aarch64: installed size 100 B → 40 B (-60 B)\n\
             x86_64: rebuilt     a-1.0-1.noarch (same version, new checksum)\n\
             x86_64: installed size 100 B → 100 B (+0 B)\n"
        );
        assert_eq!(diff(&new, &new).to_string(), "no changes\n");
    }
}
