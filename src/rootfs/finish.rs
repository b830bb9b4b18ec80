//! Finishing the tree after the payloads, in one call and one descent:
//! what the skipped scriptlets would have done, the build's own files,
//! busybox's applet links, hardening, accounts, the package database,
//! numeric ids, the CA trust store and the linker cache. The order is the
//! one that works; each step says why it comes where it does.
//!
//! [`FinishOptions`] is plain data: the caller (the pipeline) converts its
//! recipe into it, so this module knows nothing of recipes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{accounts, busybox, copy, effects, harden, ldcache, trust};
use super::{assign_ids, HardenError, HardenOptions, HardenReport, Staging, Tree};
use crate::package::Arch;
use crate::package::Package;
use crate::report::{Event, Reporter};

/// Why the tree cannot be finished: the step that failed, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error(transparent)]
    Effects(#[from] effects::EffectError),
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    #[error(transparent)]
    Busybox(#[from] busybox::BusyboxError),
    #[error(transparent)]
    Harden(#[from] HardenError),
    #[error(
        "{0} requirement(s) of packages in the image are left broken by removing the package manager (listed above) and --strict is set\n  hint: set `package_manager = true` in [options] to keep it, or leave out the packages that need it"
    )]
    BrokenRequirements(usize),
    #[error(transparent)]
    Accounts(#[from] accounts::AccountsError),
    /// The caller's rpmdb writer ([`WriteRpmdb`]) failed.
    #[error(transparent)]
    Rpmdb(anyhow::Error),
    #[error(transparent)]
    Trust(#[from] trust::TrustError),
    #[error(transparent)]
    LinkerCache(#[from] ldcache::LdCacheError),
}

/// A host file or directory to copy into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIn {
    pub src: PathBuf,
    /// Absolute path inside the image.
    pub dest: String,
    /// Permission bits for the copied files; `None` keeps the host's.
    pub mode: Option<u32>,
}

/// Writes the package database of what is in the image, given the packages
/// removed with the package manager. A hook, so that `rootfs` does not
/// depend on the database writer (which reads trees).
pub type WriteRpmdb<'a> =
    dyn Fn(&mut Tree, &mut Staging, &BTreeSet<String>) -> anyhow::Result<()> + 'a;

/// What to do after the payloads.
pub struct FinishOptions<'a> {
    pub arch: Arch,
    /// Each package's scriptlets (not run), in install order.
    pub scripts: &'a [effects::Scripts],
    /// The installed packages, in install order.
    pub installed: &'a [&'a Package],
    /// The build's own files, over whatever packages put there.
    pub copies: &'a [CopyIn],
    /// Create busybox's applet symlinks (`/bin/sh` → busybox…).
    pub busybox_links: bool,
    pub harden: HardenOptions,
    /// Accounts to create besides those of sysusers.d.
    pub accounts: accounts::Requested,
    /// Write the package database; `None` leaves it out.
    pub rpmdb: Option<&'a WriteRpmdb<'a>>,
    /// The image's `User` (a name, `name:group` or ids), resolved against
    /// the finished accounts.
    pub user: Option<String>,
    /// Extra CA certificates (name for messages, PEM or DER bytes).
    pub certificates: Vec<(String, Vec<u8>)>,
    /// How to write `/etc/ld.so.cache`; `None`: not known for `arch` (a warning).
    pub linker_cache: Option<ldcache::LdCacheOptions>,
    /// Requirements broken by removing the package manager, and owners the
    /// image does not know, are errors.
    pub strict: bool,
}

/// What finishing leaves for the image config and the SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The image's `User`, resolved.
    pub user: Option<String>,
    /// Packages removed with the package manager (not in the image).
    pub removed: BTreeSet<String>,
}

/// Everything after the payloads, in order (see the module doc).
pub fn finish(
    tree: &mut Tree,
    stage: &mut Staging,
    opts: &FinishOptions,
    reporter: &dyn Reporter,
) -> Result<Finished, FinishError> {
    // What the skipped scriptlets would have left behind, before the
    // build's own files (which, like a later layer, win).
    let effects = effects::apply(
        tree,
        stage,
        &effects::Input {
            scripts: opts.scripts,
        },
    )?;
    for d in &effects.done {
        reporter.event(Event::EffectDone {
            pass: d.pass.to_string(),
            package: d.package.clone(),
            what: d.what.clone(),
        });
    }
    for n in &effects.not_done {
        reporter.event(Event::NotDone {
            pass: n.pass.to_string(),
            package: n.package.clone(),
            why: n.why.clone(),
        });
    }
    // The build's own files, over whatever packages put there.
    for c in opts.copies {
        let n = copy::copy_in(tree, stage, &c.src, &c.dest, c.mode)?;
        reporter.event(Event::Copied {
            src: c.src.clone(),
            dest: c.dest.clone(),
            paths: n,
        });
    }
    // busybox's applet links: before hardening, which drops the `rpm` applet with the package manager.
    if opts.busybox_links {
        let links = busybox::add_links(tree)?;
        reporter.event(Event::BusyboxLinks {
            binary: links.binary.clone(),
            created: links.created.len(),
            existing: links.existing.len(),
        });
    }

    // Harden: no package manager, no setuid/setgid.
    let names: Vec<&str> = opts.installed.iter().map(|p| &*p.nevra.name).collect();
    let hardened = harden(tree, &opts.harden, &names)?;
    for (path, mode) in &hardened.setuid_stripped {
        reporter.event(Event::SetuidCleared {
            path: path.clone(),
            mode: *mode,
        });
    }
    report_package_manager_removal(&hardened, opts.installed, opts.strict, reporter)?;
    // Accounts from sysusers.d and the build's own, before owner names become ids.
    let accounts = [
        accounts::sysusers_request(tree)?,
        accounts::requested(&opts.accounts),
    ];
    let created = accounts::apply(tree, stage, &accounts)?;
    if !created.users.is_empty() || !created.groups.is_empty() {
        use crate::report::Account;
        reporter.event(Event::AccountsCreated {
            users: created
                .users
                .iter()
                .map(|(name, uid, gid)| Account {
                    name: name.clone(),
                    id: *uid,
                    gid: Some(*gid),
                })
                .collect(),
            groups: created
                .groups
                .iter()
                .map(|(name, gid)| Account {
                    name: name.clone(),
                    id: *gid,
                    gid: None,
                })
                .collect(),
        });
    }
    // After hardening (which drops rpm's own var/lib/rpm): the database
    // scanners read to see the packages.
    // Only what is in the image: a removed package in the database would
    // make scanners report software that is not there.
    if let Some(write) = opts.rpmdb {
        write(tree, stage, &hardened.removed_packages).map_err(FinishError::Rpmdb)?;
    }
    // Owners the image does not know: root, as rpm does; named in the
    // report, refused under --strict.
    let unknown = assign_ids(tree)?;
    if opts.strict && !unknown.is_empty() {
        return Err(HardenError::UnknownOwners(unknown).into());
    }
    for owner in &unknown {
        reporter.event(Event::UnknownOwner {
            owner: owner.clone(),
        });
    }
    let user = opts
        .user
        .as_deref()
        .map(|u| accounts::resolve_user(tree, u))
        .transpose()?;

    // What scriptlets would have written: the CA trust store, the linker cache.
    generate(tree, stage, opts, reporter)?;
    Ok(Finished {
        user,
        removed: hardened.removed_packages,
    })
}

/// Say what removing the package manager did: the packages removed, the
/// symlinks of other packages left dangling, and the requirements of kept
/// packages that only a removed package provided (an error under `strict`).
fn report_package_manager_removal(
    hardened: &HardenReport,
    installed: &[&Package],
    strict: bool,
    reporter: &dyn Reporter,
) -> Result<(), FinishError> {
    if hardened.removed_packages.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = hardened
        .removed_packages
        .iter()
        .map(String::as_str)
        .collect();
    reporter.event(Event::PackageManagerRemoved {
        packages: names.iter().map(ToString::to_string).collect(),
        paths: hardened.removed.len(),
    });
    for dir in &hardened.kept_dirs {
        reporter.event(Event::DirectoryKept { path: dir.clone() });
    }
    for (path, target, package) in &hardened.dangling {
        reporter.event(Event::SymlinkDangles {
            path: path.clone(),
            target: target.clone(),
            package: package.clone(),
        });
    }
    let broken = harden::broken_requires(installed, &hardened.removed_packages);
    for b in &broken {
        reporter.event(Event::RequirementBroken {
            package: b.package.clone(),
            requires: b.requires.clone(),
            removed: b.removed.clone(),
        });
    }
    if strict && !broken.is_empty() {
        return Err(FinishError::BrokenRequirements(broken.len()));
    }
    Ok(())
}

/// Stand in for `update-ca-trust` and `ldconfig` (the `%post` scriptlets
/// that were not run): extra CAs go to the anchors directory, then the
/// bundles and `/etc/ld.so.cache` are written from the unpacked tree.
fn generate(
    tree: &mut Tree,
    stage: &mut Staging,
    opts: &FinishOptions,
    reporter: &dyn Reporter,
) -> Result<(), FinishError> {
    trust::add_anchors(tree, stage, &opts.certificates)?;
    if let Some(t) = trust::extract(tree, stage)? {
        reporter.event(Event::TrustStore {
            anchors: t.anchors,
            tls: t.tls,
            distrusted: t.distrusted,
        });
        for (path, why) in &t.ignored {
            reporter.event(Event::TrustSourceIgnored {
                path: path.clone(),
                why: why.clone(),
            });
        }
    }
    match &opts.linker_cache {
        Some(ld) => {
            if let Some(r) = ldcache::write(tree, stage, ld)? {
                reporter.event(Event::LinkerCache {
                    libraries: r.entries,
                    dirs: r.dirs.clone(),
                });
            }
        }
        None => reporter.event(Event::NoLinkerCache {
            arch: opts.arch.to_string(),
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::report::Recording;
    use crate::rootfs::generated::put_file;
    use crate::rootfs::Kind;

    /// A file at `path` with `text`, `mode`, owned by `user`.
    fn put(tree: &mut Tree, stage: &mut Staging, path: &str, text: &str, mode: u32, user: &str) {
        let at = put_file(tree, stage, path, text.as_bytes(), mode, 0).unwrap();
        tree.entries.get_mut(&at).unwrap().user = user.into();
    }

    fn text(tree: &Tree, path: &str) -> String {
        match &tree.entries[path].kind {
            Kind::File { blob, .. } => blob.read_to_string().unwrap(),
            k => panic!("{path} is {k:?}"),
        }
    }

    #[test]
    fn one_call_runs_the_steps_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = Staging::new(dir.path().join("staging")).unwrap();
        let mut tree = Tree::default();
        put(
            &mut tree,
            &mut stage,
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\n",
            0o644,
            "root",
        );
        put(
            &mut tree,
            &mut stage,
            "etc/group",
            "root:x:0:\n",
            0o644,
            "root",
        );
        // Owned by an account only the request creates: ids come after accounts.
        put(
            &mut tree,
            &mut stage,
            "usr/bin/tool",
            "#!/bin/sh\n",
            0o4755,
            "app",
        );
        let host = dir.path().join("motd");
        std::fs::write(&host, "hello\n").unwrap();

        // The database hook sees the finished accounts and the removed packages.
        let seen = Mutex::new(None);
        let rpmdb = |tree: &mut Tree, _: &mut Staging, removed: &BTreeSet<String>| {
            *seen.lock().unwrap() = Some((text(tree, "etc/passwd"), removed.len()));
            Ok(())
        };
        let opts = FinishOptions {
            arch: Arch::S390x,
            scripts: &[],
            installed: &[],
            copies: &[CopyIn {
                src: host,
                dest: "/etc/motd".into(),
                mode: Some(0o600),
            }],
            busybox_links: false,
            harden: HardenOptions::default(),
            accounts: accounts::Requested {
                users: vec![accounts::NewUser {
                    name: "app".into(),
                    uid: None,
                    gid: None,
                    gecos: None,
                    home: None,
                    shell: None,
                }],
                groups: Vec::new(),
            },
            rpmdb: Some(&rpmdb),
            user: Some("app".into()),
            certificates: Vec::new(),
            linker_cache: None,
            strict: true,
        };
        let reporter = Recording::default();
        let finished = finish(&mut tree, &mut stage, &opts, &reporter).unwrap();

        assert_eq!(finished.user.as_deref(), Some("1000:1000"));
        assert!(finished.removed.is_empty());
        assert_eq!(text(&tree, "etc/motd"), "hello\n");
        assert_eq!(tree.entries["etc/motd"].mode, 0o600);
        let tool = &tree.entries["usr/bin/tool"];
        assert_eq!((tool.mode, tool.uid), (0o755, 1000));
        let (passwd, removed) = seen.lock().unwrap().clone().expect("rpmdb hook called");
        assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
        assert_eq!(removed, 0);
        let names: Vec<String> = reporter
            .events
            .lock()
            .unwrap()
            .iter()
            .map(Event::name)
            .collect();
        assert_eq!(
            names,
            [
                "copied",
                "setuid_cleared",
                "accounts_created",
                "no_linker_cache"
            ]
        );
    }
}
