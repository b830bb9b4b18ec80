//! Everything after the payloads, before the layer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::build::{image_epoch, Unpacked};
use super::{Resolved, Settings};
use crate::recipe::Recipe;
use crate::repo::Package;
use crate::report::{Event, Reporter};
use crate::rootfs::{self, Tree};
use crate::rpm::Arch;

/// What finishing the tree leaves for the image and its SBOM.
pub(super) struct Finished {
    /// The image's `User`, with names resolved against the image's accounts.
    pub user: Option<String>,
    /// Packages removed with the package manager.
    pub removed: BTreeSet<String>,
}

/// Finish `unpacked.tree` for `res`: see [`finish_tree`].
pub(super) fn finish(
    recipe: &Recipe,
    res: &Resolved,
    settings: &Settings,
    rpms: &[PathBuf],
    unpacked: &mut Unpacked,
    stage: &mut rootfs::Staging,
    reporter: &dyn Reporter,
) -> anyhow::Result<Finished> {
    let installed: Vec<(&Path, &Package)> = unpacked
        .order
        .iter()
        .map(|&i| (rpms[i].as_path(), &unpacked.headers[i]))
        .collect();
    let rpmdb = RpmdbInput {
        installed: &installed,
        not_installed: &unpacked.not_installed,
        install: crate::rpmdb::Install {
            time: u32::try_from(image_epoch(recipe, res, settings)).unwrap_or(u32::MAX),
            color: crate::rpmdb::installed::TRANSACTION_COLOR_64,
            big_endian: res.arch == crate::rpm::Arch::S390x,
        },
    };
    let (user, removed) = finish_tree(
        recipe,
        res.arch,
        &rpmdb,
        &unpacked.scripts,
        &mut unpacked.tree,
        stage,
        settings.strict,
        reporter,
    )?;
    Ok(Finished { user, removed })
}

/// What the image's rpm database is written from.
struct RpmdbInput<'a> {
    /// RPM paths and their headers, in install order.
    installed: &'a [(&'a Path, &'a Package)],
    not_installed: &'a crate::rpmdb::NotInstalled,
    install: crate::rpmdb::Install,
}

/// Everything after the payloads: the recipe's files, hardening, accounts,
/// the rpm database (`rpmdb.installed`: RPM paths and headers in install
/// order), numeric ids, and what scriptlets would have generated. Returns
/// the image's `User` and the packages removed with the package manager.
/// `strict` makes requirements broken by removing the package manager, and
/// owners the image does not know, errors.
#[allow(clippy::too_many_arguments)]
fn finish_tree(
    recipe: &Recipe,
    arch: Arch,
    rpmdb: &RpmdbInput,
    scripts: &[rootfs::effects::Scripts],
    tree: &mut Tree,
    stage: &mut rootfs::Staging,
    strict: bool,
    reporter: &dyn Reporter,
) -> anyhow::Result<(Option<String>, BTreeSet<String>)> {
    // What the skipped scriptlets would have left behind, before the
    // recipe's own files (which, like a later layer, win).
    let effects = rootfs::effects::apply(tree, stage, &rootfs::effects::Input { scripts })?;
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
    // The recipe's own files, over whatever packages put there.
    for c in &recipe.copies {
        let n = rootfs::copy::copy_in(tree, stage, &c.src, &c.dest, c.mode)?;
        reporter.event(Event::Copied {
            src: c.src.clone(),
            dest: c.dest.clone(),
            paths: n,
        });
    }

    // busybox's applet links: before hardening, which drops the `rpm` applet with the package manager.
    if recipe.options.busybox_links {
        let links = rootfs::busybox::add_links(tree)?;
        reporter.event(Event::BusyboxLinks {
            binary: links.binary.clone(),
            created: links.created.len(),
            existing: links.existing.len(),
        });
    }

    // Harden: no package manager, no setuid/setgid.
    let names: Vec<&str> = rpmdb
        .installed
        .iter()
        .map(|(_, p)| &*p.nevra.name)
        .collect();
    let hardened = rootfs::harden(
        tree,
        &rootfs::HardenOptions {
            strip_setuid: recipe.options.strip_setuid,
            keep_package_manager: recipe.options.package_manager,
        },
        &names,
    )?;
    for (path, mode) in &hardened.setuid_stripped {
        reporter.event(Event::SetuidCleared {
            path: path.clone(),
            mode: *mode,
        });
    }
    report_package_manager_removal(&hardened, rpmdb.installed, strict, reporter)?;
    // Accounts from sysusers.d and the recipe, before owner names become ids.
    let accounts = [
        rootfs::accounts::sysusers_request(tree)?,
        rootfs::accounts::recipe_request(&recipe.accounts),
    ];
    let created = rootfs::accounts::apply(tree, stage, &accounts)?;
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
    if recipe.options.rpmdb {
        // Only what is in the image: a removed package in the database
        // would make scanners report software that is not there.
        let kept: Vec<PathBuf> = rpmdb
            .installed
            .iter()
            .filter(|(_, p)| !hardened.removed_packages.contains(&*p.nevra.name))
            .map(|(rpm, _)| rpm.to_path_buf())
            .collect();
        crate::rpmdb::add_to_tree(tree, stage, &kept, rpmdb.not_installed, &rpmdb.install)
            .context("cannot write the image's rpm database (set `rpmdb = false` in [options] to leave it out)")?;
    }
    // Owners the image does not know: root, as rpm does; named in the
    // report, refused under --strict.
    let unknown = rootfs::assign_ids(tree)?;
    if strict && !unknown.is_empty() {
        return Err(rootfs::HardenError::UnknownOwners(unknown).into());
    }
    for owner in &unknown {
        reporter.event(Event::UnknownOwner {
            owner: owner.clone(),
        });
    }
    let user = recipe
        .image
        .user
        .as_deref()
        .map(|u| rootfs::accounts::resolve_user(tree, u))
        .transpose()?;

    // What scriptlets would have written: the CA trust store, the linker cache.
    generate(recipe, arch, tree, stage, reporter)?;
    Ok((user, hardened.removed_packages))
}

/// Say what removing the package manager did: the packages removed, the
/// symlinks of other packages left dangling, and the requirements of kept
/// packages that only a removed package provided (an error under `strict`).
fn report_package_manager_removal(
    hardened: &rootfs::HardenReport,
    installed: &[(&Path, &Package)],
    strict: bool,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
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
    let packages: Vec<&Package> = installed.iter().map(|(_, p)| *p).collect();
    let broken = rootfs::harden::broken_requires(&packages, &hardened.removed_packages);
    for b in &broken {
        reporter.event(Event::RequirementBroken {
            package: b.package.clone(),
            requires: b.requires.clone(),
            removed: b.removed.clone(),
        });
    }
    if strict && !broken.is_empty() {
        bail!(
            "{} requirement(s) of packages in the image are left broken by removing the package manager (listed above) and --strict is set\n  hint: set `package_manager = true` in [options] to keep it, or leave out the packages that need it",
            broken.len()
        );
    }
    Ok(())
}

/// Stand in for `update-ca-trust` and `ldconfig` (the `%post` scriptlets
/// that were not run): recipe CAs go to the anchors directory, then the
/// bundles and `/etc/ld.so.cache` are written from the unpacked tree.
fn generate(
    recipe: &Recipe,
    arch: Arch,
    tree: &mut Tree,
    stage: &mut rootfs::Staging,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let mut extra = Vec::new();
    for path in &recipe.certificates {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read CA certificate {} ([certificates] additional in {})",
                path.display(),
                recipe.path.display()
            )
        })?;
        extra.push((path.display().to_string(), bytes));
    }
    rootfs::trust::add_anchors(tree, stage, &extra)?;
    if let Some(t) = rootfs::trust::extract(tree, stage)? {
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
    match rootfs::ldcache::LdCacheOptions::fedora(arch) {
        Some(opts) => {
            if let Some(r) = rootfs::ldcache::write(tree, stage, &opts)? {
                reporter.event(Event::LinkerCache {
                    libraries: r.entries,
                    dirs: r.dirs.clone(),
                });
            }
        }
        None => reporter.event(Event::NoLinkerCache {
            arch: arch.to_string(),
        }),
    }
    Ok(())
}
