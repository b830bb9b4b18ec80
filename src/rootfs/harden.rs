//! Hardening the unpacked tree, and numeric ownership.
//!
//! Everything here edits the in-memory [`Tree`] only: removing a path drops
//! its entry (its blob simply stays unused in staging), clearing setuid
//! changes the mode that goes into the tar header, and ownership becomes
//! numeric by reading the image's own `etc/passwd` and `etc/group` blobs —
//! never the host's, and without any chown, so non-root users can build.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::{BlobRef, Entry, Kind, Tree};
use crate::package::Dep;
use crate::package::Package;
use crate::package_manager::{is_package_manager, STATE_PATHS};

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
    /// Installed package-manager packages, removed as whole packages (the
    /// rpmdb leaves them out too).
    pub removed_packages: BTreeSet<String>,
    /// Directories of removed packages kept because other paths are in them.
    pub kept_dirs: Vec<String>,
    /// Symlinks not of a removed package that resolved before the removal
    /// and no longer do: `(path, target, package)`. Reported, not removed.
    pub dangling: Vec<(String, String, Option<String>)>,
}

/// Apply `opts` to `tree`, whose packages are `installed` (names).
/// Infallible today, `Result` for future steps.
pub fn harden(
    tree: &mut Tree,
    opts: &HardenOptions,
    installed: &[&str],
) -> Result<HardenReport, HardenError> {
    let mut report = HardenReport::default();
    if !opts.keep_package_manager {
        remove_package_manager(tree, installed, &mut report);
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

/// Remove the installed package-manager packages as whole packages: the
/// paths their headers list (the tree records each path's package), never
/// a path a kept package also owns, and a directory of theirs only once
/// nothing else is in it. The run-time state paths ([`STATE_PATHS`]) go
/// too where no kept package owns them.
fn remove_package_manager(tree: &mut Tree, installed: &[&str], report: &mut HardenReport) {
    let removed: BTreeSet<String> = installed
        .iter()
        .filter(|n| is_package_manager(n))
        .map(|n| n.to_string())
        .collect();
    if removed.is_empty() && !tree.entries.keys().any(|p| is_state(p)) {
        return;
    }
    // The first owner that stays, if any: the entry's package or another
    // package that installed the same directory or identical file.
    let kept_owner = |path: &str, e: &Entry| -> Option<String> {
        e.package
            .iter()
            .chain(tree.co_owners.get(path).into_iter().flatten())
            .find(|p| !removed.contains(*p))
            .cloned()
    };
    let mut doomed: BTreeSet<String> = tree
        .entries
        .iter()
        .filter(|(path, e)| {
            let by_package = e.package.as_ref().is_some_and(|p| removed.contains(p));
            (by_package || is_state(path)) && kept_owner(path, e).is_none()
        })
        .map(|(path, _)| path.clone())
        .collect();
    // Parents the tree implied for removed paths (no package, no other
    // child) go with them.
    let mut implied: BTreeSet<String> = BTreeSet::new();
    for path in &doomed {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            match tree.entries.get(parent) {
                Some(e) if e.kind == Kind::Dir && kept_owner(parent, e).is_none() => {
                    implied.insert(parent.to_string());
                }
                _ => break,
            }
            p = parent;
        }
    }
    doomed.extend(implied);
    // Deepest first (a child sorts after its parent): a directory still
    // holding a kept path stays, and so keeps its own parents.
    let dirs: Vec<String> = doomed
        .iter()
        .rev()
        .filter(|p| tree.entries[*p].kind == Kind::Dir)
        .cloned()
        .collect();
    for dir in dirs {
        let holds_kept = tree.children(&dir).any(|(name, _)| {
            let child = format!("{dir}/{name}");
            !doomed.contains(&child)
        });
        if holds_kept {
            doomed.remove(&dir);
            if tree.entries[&dir].package.is_some() {
                report.kept_dirs.push(dir);
            }
        }
    }
    let symlinks_before: Vec<String> = tree
        .entries
        .iter()
        .filter(|(p, e)| matches!(e.kind, Kind::Symlink { .. }) && !doomed.contains(*p))
        .map(|(p, _)| p.clone())
        .filter(|p| tree.follow(p).is_some())
        .collect();
    for path in &doomed {
        tree.entries.remove(path);
        tree.co_owners.remove(path);
    }
    for dir in &report.kept_dirs {
        if let Some(e) = tree.entries.get_mut(dir) {
            e.package = None;
        }
    }
    for path in symlinks_before {
        if tree.follow(&path).is_none() {
            let e = &tree.entries[&path];
            if let Kind::Symlink { target } = &e.kind {
                report
                    .dangling
                    .push((path.clone(), target.clone(), e.package.clone()));
            }
        }
    }
    report.kept_dirs.sort();
    report.removed = doomed.into_iter().collect();
    report.removed_packages = removed;
}

fn is_state(path: &str) -> bool {
    STATE_PATHS.iter().any(|s| under(path, s)) && !KEPT_STATE.iter().any(|k| under(path, k))
}

/// Under a state path, but not the package manager's: openSUSE's
/// update-alternatives keeps its state in `var/lib/rpm/alternatives`
/// (dpkg's tool as SUSE builds it), written by the alternatives pass.
const KEPT_STATE: &[&str] = &["var/lib/rpm/alternatives"];

/// A requirement of a package staying in the image that only a removed
/// package provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRequire {
    /// The package that stays.
    pub package: String,
    /// Its requirement, as written.
    pub requires: String,
    /// The removed package(s) that provided it.
    pub removed: Vec<String>,
}

/// Requirements of kept `packages` that only removed packages satisfy: by
/// their Provides, and file requirements by `Package::files` (the paths
/// primary.xml lists: binaries and /etc; empty in a build from a lock).
/// rpm's own `rpmlib(...)` requirements and rich dependencies are not
/// checked.
pub fn broken_requires(packages: &[&Package], removed: &BTreeSet<String>) -> Vec<BrokenRequire> {
    let (gone, kept): (Vec<&Package>, Vec<&Package>) = packages
        .iter()
        .partition(|p| removed.contains(p.nevra.name.as_str()));
    let provides = |p: &Package, dep: &Dep| {
        if dep.is_file() {
            p.files.iter().any(|f| *f == *dep.name)
        } else {
            p.provides.iter().any(|pr| dep.is_satisfied_by(pr))
        }
    };
    let mut out = Vec::new();
    for k in &kept {
        for dep in &k.requires {
            if dep.is_rpmlib() || dep.is_rich() {
                continue;
            }
            let by: Vec<String> = gone
                .iter()
                .filter(|g| provides(g, dep))
                .map(|g| g.nevra.name.to_string())
                .collect();
            if !by.is_empty() && !kept.iter().any(|o| provides(o, dep)) {
                out.push(BrokenRequire {
                    package: k.nevra.name.to_string(),
                    requires: dep.to_string(),
                    removed: by,
                });
            }
        }
    }
    out
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

    fn dir(pkg: Option<&str>) -> Entry {
        Entry {
            package: pkg.map(str::to_string),
            ..implied_dir()
        }
    }

    fn link(target: &str, pkg: &str) -> Entry {
        Entry {
            kind: Kind::Symlink {
                target: target.to_string(),
            },
            mode: 0o777,
            package: Some(pkg.to_string()),
            ..implied_dir()
        }
    }

    /// A Mariner-shaped tree: rpm owns /usr/lib/rpm, pkgconf puts its
    /// macros there, tdnf and its library, a kept symlink into rpm-libs.
    fn mariner_tree() -> Tree {
        let mut tree = Tree::default();
        let mut add = |p: &str, e: Entry| {
            tree.entries.insert(p.to_string(), e);
        };
        add("usr", dir(Some("filesystem")));
        add("usr/bin", dir(Some("filesystem")));
        add("usr/lib", dir(Some("filesystem")));
        add("usr/bin/rpm", file(0o755, "rpm"));
        add("usr/bin/bash", file(0o755, "bash"));
        add("usr/bin/tdnf", file(0o755, "tdnf"));
        add("usr/bin/yum", link("tdnf", "tdnf"));
        add("usr/lib/libtdnf.so.3", file(0o755, "tdnf"));
        add("usr/lib/libtdnfcli.so.3", file(0o755, "tdnf-cli-libs"));
        add("usr/lib/librpm.so.9", file(0o755, "rpm-libs"));
        add("usr/lib/librpm.so", link("librpm.so.9", "rpm-libs"));
        add("usr/lib/libcompat.so", link("librpm.so.9", "compat"));
        add("usr/lib/rpm", dir(Some("rpm")));
        add("usr/lib/rpm/rpmrc", file(0o644, "rpm"));
        add("usr/lib/rpm/macros.d", dir(Some("rpm")));
        add(
            "usr/lib/rpm/macros.d/macros.pkgconf",
            file(0o644, "pkgconf"),
        );
        // A directory tdnf installed whose parent only the tree implied.
        add("var", dir(None));
        add("var/cache", dir(None));
        add("var/cache/tdnf", dir(Some("tdnf")));
        // rpm's runtime state, owned by no package.
        add("var/lib", dir(None));
        add("var/lib/rpm", dir(None));
        add("var/lib/rpm/rpmdb.sqlite", file(0o644, "rpm"));
        add("var/lib/rpmstate", dir(None));
        // /etc/tdnf shared by tdnf and a kept package.
        add("etc", dir(Some("filesystem")));
        add("etc/tdnf", dir(Some("tdnf")));
        tree.co_owners
            .entry("etc/tdnf".into())
            .or_default()
            .insert("mariner-release".into());
        tree
    }

    const INSTALLED: &[&str] = &[
        "filesystem",
        "bash",
        "rpm",
        "rpm-libs",
        "tdnf",
        "tdnf-cli-libs",
        "pkgconf",
        "compat",
        "mariner-release",
        "libsolv",
    ];

    #[test]
    fn removes_package_manager_packages_whole_and_nothing_else() {
        let mut tree = mariner_tree();
        let report = harden(&mut tree, &HardenOptions::default(), INSTALLED).unwrap();
        assert_eq!(
            report.removed,
            [
                "usr/bin/rpm",
                "usr/bin/tdnf",
                "usr/bin/yum",
                "usr/lib/librpm.so",
                "usr/lib/librpm.so.9",
                "usr/lib/libtdnf.so.3",
                "usr/lib/libtdnfcli.so.3",
                "usr/lib/rpm/rpmrc",
                "var/cache",
                "var/cache/tdnf",
                "var/lib/rpm",
                "var/lib/rpm/rpmdb.sqlite",
            ]
        );
        // Every installed package-manager package, even one with no paths.
        assert_eq!(
            report.removed_packages.iter().collect::<Vec<_>>(),
            ["libsolv", "rpm", "rpm-libs", "tdnf", "tdnf-cli-libs"]
        );
        // Another package's file in rpm's directory stays, and so does the
        // directory (no longer owned by a package that is gone).
        assert!(tree
            .entries
            .contains_key("usr/lib/rpm/macros.d/macros.pkgconf"));
        assert_eq!(report.kept_dirs, ["usr/lib/rpm", "usr/lib/rpm/macros.d"]);
        assert_eq!(tree.entries["usr/lib/rpm"].package, None);
        // A directory another package also owns stays with its package.
        assert!(tree.entries.contains_key("etc/tdnf"));
        // An implied directory still holding something stays.
        assert!(tree.entries.contains_key("var/lib/rpmstate"));
        assert!(tree.entries.contains_key("var"));
        assert!(tree.entries.contains_key("usr/bin/bash"));
        // A kept package's symlink into rpm-libs is reported, not removed.
        assert_eq!(
            report.dangling,
            [(
                "usr/lib/libcompat.so".to_string(),
                "librpm.so.9".to_string(),
                Some("compat".to_string())
            )]
        );
        assert!(tree.entries.contains_key("usr/lib/libcompat.so"));
    }

    #[test]
    fn suse_alternatives_state_under_var_lib_rpm_stays() {
        let mut tree = Tree::default();
        let generated = |mode| Entry {
            package: None,
            ..file(mode, "x")
        };
        tree.entries.insert("var/lib/rpm".into(), dir(None));
        tree.entries
            .insert("var/lib/rpm/rpmdb.sqlite".into(), generated(0o644));
        tree.entries
            .insert("var/lib/rpm/alternatives".into(), dir(None));
        tree.entries.insert(
            "var/lib/rpm/alternatives/libnssckbi.so.x86_64".into(),
            generated(0o644),
        );
        harden(
            &mut tree,
            &HardenOptions::default(),
            &["rpm", "p11-kit-trust"],
        )
        .unwrap();
        assert!(!tree.entries.contains_key("var/lib/rpm/rpmdb.sqlite"));
        assert!(tree
            .entries
            .contains_key("var/lib/rpm/alternatives/libnssckbi.so.x86_64"));
    }

    #[test]
    fn state_paths_owned_by_a_kept_package_stay() {
        let mut tree = Tree::default();
        tree.entries.insert("var".into(), dir(None));
        tree.entries.insert("var/lib".into(), dir(None));
        tree.entries
            .insert("var/lib/rpm".into(), dir(Some("filesystem")));
        tree.entries.insert("var/lib/dnf".into(), dir(None));
        tree.entries
            .insert("usr/bin/rpm".into(), link("busybox", "busybox"));
        let report = harden(
            &mut tree,
            &HardenOptions::default(),
            &["filesystem", "busybox"],
        )
        .unwrap();
        assert_eq!(report.removed, ["var/lib/dnf"]);
        assert!(report.removed_packages.is_empty());
        assert!(tree.entries.contains_key("var/lib/rpm"));
        assert!(tree.entries.contains_key("usr/bin/rpm"));
    }

    #[test]
    fn package_manager_true_keeps_everything() {
        let mut tree = mariner_tree();
        let before = tree.entries.clone();
        let opts = HardenOptions {
            keep_package_manager: true,
            strip_setuid: true,
        };
        let report = harden(&mut tree, &opts, INSTALLED).unwrap();
        assert!(report.removed.is_empty() && report.removed_packages.is_empty());
        assert_eq!(tree.entries, before);
    }

    fn package(name: &str, provides: &[&str], requires: &[&str]) -> Package {
        use crate::package::{Evr, Nevra};
        let mut p = Package::new(
            Nevra {
                name: name.into(),
                evr: Evr::parse("1.0-1"),
                arch: "x86_64".into(),
            },
            0,
            String::new(),
            crate::digest::Digest::sha256_of(b""),
        );
        p.provides = provides.iter().map(|d| Dep::any(*d)).collect();
        p.requires = requires.iter().map(|d| Dep::any(*d)).collect();
        p
    }

    #[test]
    fn names_requirements_only_removed_packages_provided() {
        let rpm_libs = package("rpm-libs", &["rpm-libs", "librpm.so.9()(64bit)"], &[]);
        let mut rpm = package("rpm", &["rpm"], &["rpm-libs"]);
        rpm.files = vec!["/usr/bin/rpm".into()];
        let tools = package(
            "createrepo_c-libs",
            &["createrepo_c-libs"],
            &[
                "librpm.so.9()(64bit)",
                "libc.so.6",
                "rpmlib(PayloadIsZstd)",
                "/usr/bin/rpm",
            ],
        );
        let libc = package("glibc", &["libc.so.6"], &[]);
        let removed: BTreeSet<String> = ["rpm".to_string(), "rpm-libs".to_string()].into();
        let broken = broken_requires(&[&rpm_libs, &rpm, &tools, &libc], &removed);
        assert_eq!(
            broken,
            [
                BrokenRequire {
                    package: "createrepo_c-libs".into(),
                    requires: "librpm.so.9()(64bit)".into(),
                    removed: vec!["rpm-libs".into()],
                },
                BrokenRequire {
                    package: "createrepo_c-libs".into(),
                    requires: "/usr/bin/rpm".into(),
                    removed: vec!["rpm".into()],
                },
            ]
        );
        // A removed package's own requirements are not the image's problem.
        assert!(broken_requires(&[&rpm_libs, &rpm], &removed).is_empty());
    }

    #[test]
    fn parses_account_files() {
        let ids = parse_ids("root:x:0:0::/root:/bin/bash\nnginx:x:998:996::/:/sbin/nologin\n# junk\nbad:x:notanumber\nnginx:x:5:5\n");
        assert_eq!(ids.get("nginx"), Some(&998));
        assert_eq!(ids.get("root"), Some(&0));
        assert_eq!(ids.get("bad"), None);
    }
}
