//! Hardening the unpacked tree, and numeric ownership.
//!
//! Everything here edits the in-memory [`Tree`] only: removing a path drops
//! its entry (its blob simply stays unused in staging), clearing setuid
//! changes the mode that goes into the tar header, and ownership becomes
//! numeric by reading the image's own `etc/passwd` and `etc/group` blobs —
//! never the host's, and without any chown, so non-root users can build.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::{BlobRef, Kind, Tree};

/// Packages making up the package manager (Fedora/RHEL/openSUSE names).
pub const PACKAGE_MANAGER_PACKAGES: &[&str] = &[
    "rpm",
    "rpm-libs",
    "rpm-build-libs",
    "rpm-sign-libs",
    "rpm-sequoia",
    "python3-rpm",
    "dnf",
    "dnf-data",
    "python3-dnf",
    "libdnf",
    "python3-libdnf",
    "python3-hawkey",
    "dnf5",
    "libdnf5",
    "yum",
    "microdnf",
    "librepo",
    "libsolv",
    "zypper",
    "libzypp",
];

/// Package-manager data and tools, removed by path whoever owns them
/// (another package's macros in `usr/lib/rpm` are package-manager data too).
pub const PACKAGE_MANAGER_PATHS: &[&str] = &[
    "var/lib/rpm",
    "var/lib/dnf",
    "var/lib/yum",
    "var/cache/dnf",
    "var/cache/yum",
    "var/log/dnf.log",
    "var/log/dnf.librepo.log",
    "var/log/dnf.rpm.log",
    "var/log/hawkey.log",
    "etc/dnf",
    "etc/yum",
    "etc/yum.conf",
    "etc/yum.repos.d",
    "etc/rpm",
    "usr/lib/rpm",
    "usr/lib/sysimage/rpm",
    "usr/lib/sysimage/dnf",
    "usr/bin/rpm",
    "usr/bin/dnf",
    "usr/bin/dnf-3",
    "usr/bin/dnf5",
    "usr/bin/yum",
    "usr/bin/microdnf",
    "usr/bin/zypper",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardenOptions {
    /// Clear setuid/setgid bits (recipe `strip_setuid`, default true).
    pub strip_setuid: bool,
    /// Keep rpm/dnf and their data (recipe `package_manager`, default false).
    pub keep_package_manager: bool,
}

impl Default for HardenOptions {
    fn default() -> Self {
        HardenOptions {
            strip_setuid: true,
            keep_package_manager: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HardenReport {
    /// Paths whose setuid/setgid bits were cleared, with the old mode.
    pub setuid_stripped: Vec<(String, u32)>,
    /// Paths removed as part of the package manager.
    pub removed: Vec<String>,
    /// Package-manager packages that had at least one path removed.
    pub removed_packages: BTreeSet<String>,
}

/// Apply `opts` to `tree`; infallible today, `Result` for future steps.
pub fn harden(tree: &mut Tree, opts: &HardenOptions) -> Result<HardenReport, HardenError> {
    let mut report = HardenReport::default();
    if !opts.keep_package_manager {
        remove_package_manager(tree, &mut report);
    }
    if opts.strip_setuid {
        report.setuid_stripped = strip_setuid(tree);
    }
    Ok(report)
}

/// Clear setuid and setgid on every non-directory (a setgid directory only
/// means "inherit the group", which is harmless and often intended).
pub fn strip_setuid(tree: &mut Tree) -> Vec<(String, u32)> {
    let mut changed = Vec::new();
    for (path, entry) in tree.entries.iter_mut() {
        if entry.kind != Kind::Dir && entry.mode & 0o6000 != 0 {
            changed.push((path.clone(), entry.mode));
            entry.mode &= !0o6000;
        }
    }
    changed
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn remove_package_manager(tree: &mut Tree, report: &mut HardenReport) {
    let pm_package = |p: &Option<String>| {
        p.as_deref()
            .is_some_and(|p| PACKAGE_MANAGER_PACKAGES.contains(&p) || p.starts_with("rpm-plugin-"))
    };
    let doomed: BTreeSet<String> = tree
        .entries
        .iter()
        .filter(|(path, e)| {
            PACKAGE_MANAGER_PATHS.iter().any(|pm| under(path, pm)) || pm_package(&e.package)
        })
        .map(|(path, _)| path.clone())
        .collect();
    // A directory of a package-manager package that still holds other
    // packages' paths stays, orphaned (e.g. one it shares with them).
    let keeps_children = |dir: &str| {
        let prefix = format!("{dir}/");
        tree.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .any(|(p, _)| !doomed.contains(p))
    };
    let mut orphaned = Vec::new();
    for path in &doomed {
        let e = &tree.entries[path];
        let by_path = PACKAGE_MANAGER_PATHS.iter().any(|pm| under(path, pm));
        if e.kind == Kind::Dir && !by_path && keeps_children(path) {
            orphaned.push(path.clone());
            continue;
        }
        if let Some(p) = e.package.as_ref().filter(|_| pm_package(&e.package)) {
            report.removed_packages.insert(p.clone());
        }
        report.removed.push(path.clone());
    }
    for path in &report.removed {
        tree.entries.remove(path);
    }
    for path in orphaned {
        if let Some(e) = tree.entries.get_mut(&path) {
            e.package = None;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("cannot read the image's /{path} from staging blob {blob}")]
    ReadAccounts {
        path: &'static str,
        blob: BlobRef,
        #[source]
        source: io::Error,
    },
    #[error("/{path} in the image is not a regular file; cannot look up users and groups")]
    AccountsNotFile { path: &'static str },
    #[error(
        "{} path(s) are owned by users or groups missing from the image's /etc/passwd or /etc/group \
         (rpm would use root; --strict refuses):\n{}\n\
         hint: add them (sysusers.d, the recipe's [accounts]) or install the package that creates them",
        .0.len(),
        .0.join("\n")
    )]
    UnknownOwners(Vec<String>),
}

/// Parse `name:x:id:...` lines (passwd field 3 is the uid, group field 3 the gid).
fn parse_ids(text: &str) -> BTreeMap<String, u32> {
    let mut ids = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(id) = id.trim().parse() {
            // The first line wins, as with getpwnam.
            ids.entry(name.to_string()).or_insert(id);
        }
    }
    ids
}

fn read_accounts(tree: &Tree, path: &'static str) -> Result<BTreeMap<String, u32>, HardenError> {
    let resolved = tree.resolve(path).unwrap_or_else(|_| path.to_string());
    match tree.entries.get(&resolved).map(|e| &e.kind) {
        None => Ok(BTreeMap::new()),
        Some(Kind::File { blob, .. }) => {
            let bytes = blob
                .read_to_vec()
                .map_err(|source| HardenError::ReadAccounts {
                    path,
                    blob: blob.clone(),
                    source,
                })?;
            Ok(parse_ids(&String::from_utf8_lossy(&bytes)))
        }
        Some(_) => Err(HardenError::AccountsNotFile { path }),
    }
}

/// Fill `uid`/`gid` of every entry from its user and group names, using
/// the image's own `etc/passwd` and `etc/group`. `root` is always 0. A name
/// the image does not know falls back to root (0), as rpm does ("user X
/// does not exist - using root"); each such path is returned as
/// `  /PATH (PACKAGE): unknown user `X``, for the build report to warn
/// about (and `--strict` to refuse, see [`HardenError::UnknownOwners`]).
pub fn assign_ids(tree: &mut Tree) -> Result<Vec<String>, HardenError> {
    let mut users = read_accounts(tree, "etc/passwd")?;
    let mut groups = read_accounts(tree, "etc/group")?;
    users.insert("root".to_string(), 0);
    groups.insert("root".to_string(), 0);
    let mut unknown = Vec::new();
    for (path, e) in tree.entries.iter_mut() {
        let uid = users.get(&e.user).copied();
        let gid = groups.get(&e.group).copied();
        e.uid = uid.unwrap_or(0);
        e.gid = gid.unwrap_or(0);
        if uid.is_some() && gid.is_some() {
            continue;
        }
        let mut missing = Vec::new();
        if uid.is_none() {
            missing.push(format!("user `{}`", e.user));
        }
        if gid.is_none() {
            missing.push(format!("group `{}`", e.group));
        }
        unknown.push(format!(
            "  /{path} ({}): unknown {}",
            e.package.as_deref().unwrap_or("no package"),
            missing.join(" and ")
        ));
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::tree::implied_dir;
    use crate::rootfs::Entry;

    fn file(mode: u32, pkg: &str) -> Entry {
        Entry {
            kind: Kind::File {
                blob: BlobRef::whole_file("/dev/null").unwrap(),
                size: 0,
                link_id: None,
            },
            mode,
            package: Some(pkg.to_string()),
            ..implied_dir()
        }
    }

    #[test]
    fn strips_setuid_and_setgid_but_not_sticky_or_dirs() {
        let mut tree = Tree::default();
        tree.entries
            .insert("usr/bin/su".into(), file(0o4755, "util-linux"));
        tree.entries
            .insert("usr/bin/wall".into(), file(0o2755, "util-linux"));
        tree.entries
            .insert("usr/bin/ls".into(), file(0o755, "coreutils"));
        let mut tmp = implied_dir();
        tmp.mode = 0o3777;
        tree.entries.insert("var/tmp".into(), tmp);
        let changed = strip_setuid(&mut tree);
        assert_eq!(
            changed,
            [
                ("usr/bin/su".to_string(), 0o4755),
                ("usr/bin/wall".to_string(), 0o2755)
            ]
        );
        assert_eq!(tree.entries["usr/bin/su"].mode, 0o755);
        assert_eq!(tree.entries["usr/bin/wall"].mode, 0o755);
        assert_eq!(tree.entries["var/tmp"].mode, 0o3777);
    }

    #[test]
    fn removes_package_manager_by_package_and_path() {
        let mut tree = Tree::default();
        let mut shared = implied_dir();
        shared.package = Some("rpm".into());
        tree.entries.insert("usr/share/shared".into(), shared);
        tree.entries
            .insert("usr/share/shared/x".into(), file(0o644, "other"));
        tree.entries
            .insert("usr/bin/rpm".into(), file(0o755, "rpm"));
        tree.entries
            .insert("usr/lib64/librpm.so.9".into(), file(0o755, "rpm-libs"));
        tree.entries.insert(
            "usr/lib/rpm/macros.d/macros.systemd".into(),
            file(0o644, "systemd-rpm-macros"),
        );
        tree.entries.insert("var/lib/rpm".into(), implied_dir());
        tree.entries
            .insert("var/lib/rpmstate".into(), implied_dir());
        tree.entries
            .insert("usr/bin/bash".into(), file(0o755, "bash"));
        let report = harden(&mut tree, &HardenOptions::default()).unwrap();
        assert_eq!(
            report.removed,
            [
                "usr/bin/rpm",
                "usr/lib/rpm/macros.d/macros.systemd",
                "usr/lib64/librpm.so.9",
                "var/lib/rpm"
            ]
        );
        assert_eq!(
            report.removed_packages.into_iter().collect::<Vec<_>>(),
            ["rpm", "rpm-libs"]
        );
        // Kept: other packages' files, a prefix-alike path, the shared dir (orphaned).
        assert!(tree.entries.contains_key("usr/bin/bash"));
        assert!(tree.entries.contains_key("var/lib/rpmstate"));
        assert_eq!(tree.entries["usr/share/shared"].package, None);

        let mut kept = Tree::default();
        kept.entries
            .insert("usr/bin/rpm".into(), file(0o755, "rpm"));
        let opts = HardenOptions {
            keep_package_manager: true,
            strip_setuid: true,
        };
        assert!(harden(&mut kept, &opts).unwrap().removed.is_empty());
        assert!(kept.entries.contains_key("usr/bin/rpm"));
    }

    #[test]
    fn parses_account_files() {
        let ids = parse_ids("root:x:0:0::/root:/bin/bash\nnginx:x:998:996::/:/sbin/nologin\n# junk\nbad:x:notanumber\nnginx:x:5:5\n");
        assert_eq!(ids.get("nginx"), Some(&998));
        assert_eq!(ids.get("root"), Some(&0));
        assert_eq!(ids.get("bad"), None);
    }
}
