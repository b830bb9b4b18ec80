//! The recipe's side of finishing the tree: turn it into the plain
//! [`rootfs::FinishOptions`] and make the one [`rootfs::finish()`] call.

use std::collections::BTreeSet;

use anyhow::Context as _;

use super::build::{image_epoch, Shared, Unpacked};
use super::Resolved;
use crate::package::file::RpmFile;
use crate::package::Package;
use crate::recipe::Recipe;
use crate::rootfs::{self, accounts, Finished, Staging, Tree};

/// Finish `unpacked.tree` for `res`: everything after the payloads.
pub(super) fn finish(
    s: &Shared,
    res: &Resolved,
    rpms: &[RpmFile],
    unpacked: &mut Unpacked,
    stage: &mut Staging,
) -> anyhow::Result<Finished> {
    let (recipe, settings) = (s.recipe, s.settings);
    // RPMs and their headers' fields, in install order.
    let installed: Vec<(&RpmFile, &Package)> = unpacked
        .order
        .iter()
        .map(|&i| (&rpms[i], &unpacked.headers[i]))
        .collect();
    let install = crate::rpmdb::Install {
        time: u32::try_from(image_epoch(recipe, res, settings)).unwrap_or(u32::MAX),
        color: crate::rpmdb::installed::TRANSACTION_COLOR_64,
        big_endian: res.arch == crate::package::Arch::S390x,
    };
    let not_installed = &unpacked.not_installed;
    let write_rpmdb = |tree: &mut Tree, stage: &mut Staging, removed: &BTreeSet<String>| {
        let kept: Vec<&RpmFile> = installed
            .iter()
            .filter(|(_, p)| !removed.contains(&*p.nevra.name))
            .map(|&(rpm, _)| rpm)
            .collect();
        let written = match &res.base {
            // Over a published base: its headers first, unchanged, where it keeps them.
            Some(b) => crate::rpmdb::add_to_tree_over(
                tree,
                stage,
                &b.rpmdb_path,
                &b.headers,
                &kept,
                not_installed,
                &install,
            ),
            None => crate::rpmdb::add_to_tree(tree, stage, &kept, not_installed, &install),
        };
        written.context("cannot write the image's rpm database (set `rpmdb = false` in [options] to leave it out)")
    };
    let packages: Vec<&Package> = installed.iter().map(|(_, p)| *p).collect();
    // Over a core, the core's own finishing is the image's too: its
    // copies, accounts, certificates and busybox links, then the app's.
    let core = recipe.core.as_deref().filter(|_| res.core.is_some());
    let copies: Vec<rootfs::CopyIn> = core
        .into_iter()
        .flat_map(|c| &c.copies)
        .chain(&recipe.copies)
        .map(|c| rootfs::CopyIn {
            src: c.src.clone(),
            dest: c.dest.clone(),
            mode: c.mode,
        })
        .collect();
    let opts = rootfs::FinishOptions {
        arch: res.arch,
        scripts: &unpacked.scripts,
        installed: &packages,
        copies: &copies,
        busybox_links: recipe.options.busybox_links
            || core.is_some_and(|c| c.options.busybox_links),
        harden: rootfs::HardenOptions {
            strip_setuid: recipe.options.strip_setuid,
            keep_package_manager: recipe.options.package_manager,
        },
        accounts: match core {
            Some(c) => merged_accounts(accounts_of(&c.accounts), accounts_of(&recipe.accounts)),
            None => accounts_of(&recipe.accounts),
        },
        rpmdb: recipe
            .options
            .rpmdb
            .then_some(&write_rpmdb as &rootfs::finish::WriteRpmdb),
        user: recipe.image.user.clone(),
        certificates: match core {
            Some(c) => [certificates(c)?, certificates(recipe)?].concat(),
            None => certificates(recipe)?,
        },
        linker_cache: rootfs::ldcache::LdCacheOptions::fedora(res.arch),
        strict: settings.strict,
    };
    Ok(rootfs::finish(
        &mut unpacked.tree,
        stage,
        &opts,
        s.reporter,
    )?)
}

/// The recipe's `[accounts]` as rootfs's request.
fn accounts_of(a: &crate::recipe::Accounts) -> accounts::Requested {
    accounts::Requested {
        users: a
            .users
            .iter()
            .map(|u| accounts::NewUser {
                name: u.name.clone(),
                uid: u.uid,
                gid: u.gid,
                gecos: u.gecos.clone(),
                home: u.home.clone(),
                shell: u.shell.clone(),
            })
            .collect(),
        groups: a
            .groups
            .iter()
            .map(|g| accounts::NewGroup {
                name: g.name.clone(),
                gid: g.gid,
                members: g.members.clone(),
            })
            .collect(),
    }
}

/// The core's accounts, then the app's; an account both name is the app's.
fn merged_accounts(core: accounts::Requested, app: accounts::Requested) -> accounts::Requested {
    let mut users: Vec<accounts::NewUser> = core
        .users
        .into_iter()
        .filter(|u| !app.users.iter().any(|a| a.name == u.name))
        .collect();
    users.extend(app.users);
    let mut groups: Vec<accounts::NewGroup> = core
        .groups
        .into_iter()
        .filter(|g| !app.groups.iter().any(|a| a.name == g.name))
        .collect();
    groups.extend(app.groups);
    accounts::Requested { users, groups }
}

/// `[certificates] additional`: each file's name and bytes.
fn certificates(recipe: &Recipe) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    recipe
        .certificates
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read CA certificate {} ([certificates] additional in {})",
                    path.display(),
                    recipe.path.display()
                )
            })?;
            Ok((path.display().to_string(), bytes))
        })
        .collect()
}
