//! The build, stage by stage: the only module that knows the order of the
//! pipeline. Each stage gets plain data and returns plain data; this module
//! passes it along and tells the [`Reporter`] what is happening.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::cache::Cache;
use crate::check;
use crate::digest::Digest;
use crate::fetch;
use crate::http::Client;
use crate::lock::{Lock, LockedPackage, LockedRepo, LockedRequest};
use crate::oci::{self, Compression, Format, ImageConfig, ImageWriter, LayerOptions};
use crate::recipe::Recipe;
use crate::repo::{self, LoadOptions, Package, RepoIndex, RepoSpec};
use crate::report::{human_bytes, Reporter};
use crate::resolve::{order, priority, Plan, Planned, Reason, Request, Solver};
use crate::rootfs::{self, Tree};
use crate::rpm::Arch;

/// Settings that come from the command line, not the recipe.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cache_dir: PathBuf,
    /// Repo name → baseurl replacing the recipe's.
    pub baseurl_overrides: BTreeMap<String, String>,
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH` from the environment, if set.
    pub source_date_epoch: Option<u64>,
    /// Fail the build when the image check finds an error.
    pub strict: bool,
    /// `--rootfs DIR`: also write the final tree there (one arch only).
    pub rootfs_dir: Option<PathBuf>,
}

/// What was resolved for one target architecture.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub arch: Arch,
    pub repos: Vec<RepoRef>,
    pub plan: Plan,
}

/// A repository as used for one arch: the recipe's name, the substituted URL.
#[derive(Debug, Clone)]
pub struct RepoRef {
    pub name: String,
    pub baseurl: String,
    pub revision: String,
}

/// The finished image.
#[derive(Debug)]
pub struct Built {
    pub digest: Digest,
    pub output: PathBuf,
}

/// The baseurl for `repo` on `arch`, after overrides and substitution.
fn baseurl(
    recipe: &Recipe,
    settings: &Settings,
    name: &str,
    template: &str,
    arch: Arch,
) -> anyhow::Result<String> {
    let template = settings
        .baseurl_overrides
        .get(name)
        .map_or(template, String::as_str);
    let url = repo::substitute(
        template,
        recipe.options.releasever.as_deref().unwrap_or(""),
        arch.rpm_name(),
    )
    .with_context(|| format!("repo `{name}` in {}", recipe.path.display()))?;
    Ok(repo::normalize_baseurl(&url))
}

fn check_overrides(recipe: &Recipe, settings: &Settings) -> anyhow::Result<()> {
    for name in settings.baseurl_overrides.keys() {
        if !recipe.repos.iter().any(|r| &r.name == name) {
            let known: Vec<&str> = recipe.repos.iter().map(|r| r.name.as_str()).collect();
            bail!(
                "--baseurl names repo `{name}`, but the recipe has only: {}",
                known.join(", ")
            );
        }
    }
    for r in &recipe.repos {
        if r.gpgcheck || r.repo_gpgcheck {
            bail!(
                "repo `{}` asks for signature checks (gpgcheck), which this minibuild cannot verify yet\n  hint: set `gpgcheck = false` in {} to build without them, knowingly",
                r.name,
                recipe.path.display()
            );
        }
    }
    Ok(())
}

/// Load every repo's metadata for each target arch and resolve the recipe's request.
pub fn resolve(
    recipe: &Recipe,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Resolved>> {
    check_overrides(recipe, settings)?;
    let client = Client::new();
    let cache = Cache::new(&settings.cache_dir);
    let mut out = Vec::new();
    for &arch in &recipe.image.arch {
        let mut indexes: Vec<RepoIndex> = Vec::new();
        for (i, r) in recipe.repos.iter().enumerate() {
            let spec = RepoSpec {
                name: r.name.clone(),
                baseurl: baseurl(recipe, settings, &r.name, &r.baseurl, arch)?,
                index: i,
            };
            reporter.step(&format!(
                "Loading metadata of {} ({arch}) from {}",
                spec.name, spec.baseurl
            ));
            let index = repo::load(&client, &cache, &spec, LoadOptions::default())?;
            reporter.info(&format!(
                "{}: {} packages, revision {}",
                index.name,
                index.packages.len(),
                index.revision
            ));
            indexes.push(index);
        }
        let packages: Vec<Package> = indexes
            .iter_mut()
            .flat_map(|i| std::mem::take(&mut i.packages))
            .collect();
        let priorities: Vec<(i32, u32)> =
            recipe.repos.iter().map(|r| (r.priority, r.cost)).collect();
        let packages = priority::apply(packages, &priorities);
        let request = Request {
            install: recipe.packages.install.clone(),
            exclude: recipe.packages.exclude.clone(),
            prefer: recipe.packages.prefer.clone(),
            weak_deps: recipe.options.weak_deps,
            arch: Some(arch),
        };
        reporter.step(&format!(
            "Resolving {} for {arch}",
            recipe.packages.install.join(", ")
        ));
        let plan = crate::resolve::ResolvoSolver.solve(&packages, &request)?;
        let download: u64 = plan.packages.iter().map(|p| p.package.download_size).sum();
        let installed: u64 = plan.packages.iter().map(|p| p.package.installed_size).sum();
        reporter.info(&format!(
            "{} packages: {} to download, {} installed",
            plan.packages.len(),
            human_bytes(download),
            human_bytes(installed)
        ));
        let repos = indexes
            .into_iter()
            .map(|i| RepoRef {
                name: i.name,
                baseurl: i.baseurl,
                revision: i.revision,
            })
            .collect();
        out.push(Resolved { arch, repos, plan });
    }
    Ok(out)
}

/// The lock for a resolution.
pub fn lock_of(recipe: &Recipe, resolved: &[Resolved]) -> Lock {
    let repos = recipe
        .repos
        .iter()
        .map(|r| LockedRepo {
            name: r.name.clone(),
            baseurl: r.baseurl.clone(),
            revisions: resolved
                .iter()
                .filter_map(|res| {
                    res.repos
                        .iter()
                        .find(|x| x.name == r.name)
                        .map(|x| (res.arch.rpm_name().to_string(), x.revision.clone()))
                })
                .collect(),
        })
        .collect();
    let packages = resolved
        .iter()
        .flat_map(|res| {
            res.plan.packages.iter().map(move |p| {
                let pkg = &p.package;
                LockedPackage {
                    target: res.arch.rpm_name().to_string(),
                    name: pkg.nevra.name.clone(),
                    evr: pkg.nevra.evr.to_string(),
                    arch: pkg.nevra.arch.clone(),
                    repo: recipe.repos[pkg.repo].name.clone(),
                    location: pkg.location.clone(),
                    checksum: pkg.checksum.clone(),
                    download_size: pkg.download_size,
                    installed_size: pkg.installed_size,
                    build_time: pkg.build_time,
                }
            })
        })
        .collect();
    Lock::new(LockedRequest::of(recipe), repos, packages)
}

/// Turn a lock back into plans, without reading any repo metadata: the
/// packages are fetched by location and verified against the locked checksum.
pub fn resolved_from_lock(
    recipe: &Recipe,
    lock: &Lock,
    lock_path: &Path,
    settings: &Settings,
) -> anyhow::Result<Vec<Resolved>> {
    check_overrides(recipe, settings)?;
    lock.drift(recipe, lock_path)?;
    let mut out = Vec::new();
    for &arch in &recipe.image.arch {
        let repos: Vec<RepoRef> = recipe
            .repos
            .iter()
            .map(|r| {
                Ok(RepoRef {
                    name: r.name.clone(),
                    baseurl: baseurl(recipe, settings, &r.name, &r.baseurl, arch)?,
                    revision: lock
                        .repos
                        .iter()
                        .find(|l| l.name == r.name)
                        .and_then(|l| l.revisions.get(arch.rpm_name()).cloned())
                        .unwrap_or_default(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut packages = Vec::new();
        for l in lock.for_target(arch) {
            let repo = recipe
                .repos
                .iter()
                .position(|r| r.name == l.repo)
                .with_context(|| {
                    format!(
                        "{}: package {} comes from repo `{}`, which the recipe no longer has",
                        lock_path.display(),
                        l.nevra(),
                        l.repo
                    )
                })?;
            packages.push(Planned {
                package: Package {
                    nevra: l.nevra(),
                    repo,
                    location: l.location.clone(),
                    checksum: l.checksum.clone(),
                    download_size: l.download_size,
                    installed_size: l.installed_size,
                    build_time: l.build_time,
                    summary: String::new(),
                    license: String::new(),
                    vendor: String::new(),
                    packager: String::new(),
                    source_rpm: String::new(),
                    provides: vec![],
                    requires: vec![],
                    conflicts: vec![],
                    obsoletes: vec![],
                    recommends: vec![],
                    suggests: vec![],
                    supplements: vec![],
                    enhances: vec![],
                    files: vec![],
                },
                reason: Reason::Requested {
                    request: "lock".to_string(),
                },
            });
        }
        out.push(Resolved {
            arch,
            repos,
            plan: Plan { packages },
        });
    }
    Ok(out)
}

/// Download, unpack, harden and write the image for every resolved arch.
pub fn build(
    recipe: &Recipe,
    resolved: &[Resolved],
    output: &Path,
    format: Format,
    compression: Compression,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Built> {
    let client = Client::new();
    let cache = Cache::new(&settings.cache_dir);
    let mut writer = ImageWriter::new(output)?;
    writer.set_name(&format!("{}:{}", recipe.image.name, recipe.image.tag));
    for res in resolved {
        let arch = res.arch;
        // Download (or find in the cache) every RPM of the plan.
        let total: u64 = res
            .plan
            .packages
            .iter()
            .map(|p| p.package.download_size)
            .sum();
        let progress = reporter.progress(
            &format!("Fetching {} packages for {arch}", res.plan.packages.len()),
            total,
            true,
        );
        let requests: Vec<(&Package, &str)> = res
            .plan
            .packages
            .iter()
            .map(|p| (&p.package, res.repos[p.package.repo].baseurl.as_str()))
            .collect();
        let rpms = fetch::fetch(&client, &cache, &requests, settings.jobs, &|ev| {
            if let fetch::FetchEvent::Progress { bytes, .. } = ev {
                progress.inc(bytes)
            }
        })?;
        progress.finish(&format!("{} in the cache", human_bytes(total)));

        // Unpack in install order (providers first), reading each header for the order.
        let headers: Vec<Package> = rpms
            .iter()
            .zip(&res.plan.packages)
            .map(|(path, p)| crate::rpm::header::with_header_deps(path, &p.package))
            .collect::<anyhow::Result<_>>()?;
        let refs: Vec<&Package> = headers.iter().collect();
        let order = order::install_order(&refs);
        let staging = tempfile::Builder::new()
            .prefix("minibuild-rootfs-")
            .tempdir()
            .context("cannot create a staging directory")?;
        let mut stage = rootfs::Staging::new(staging.path())?;
        let mut tree = Tree::default();
        let unpack_opts = rootfs::UnpackOptions {
            docs: recipe.options.docs,
            langs: recipe.options.langs.clone(),
            keep_caps: recipe.options.keep_caps,
        };
        let progress = reporter.progress(
            &format!("Unpacking {} packages", order.len()),
            order.len() as u64,
            false,
        );
        let mut skipped_scriptlets = Vec::new();
        for &i in &order {
            let report = rootfs::unpack(&mut tree, &mut stage, &rpms[i], &unpack_opts)
                .with_context(|| format!("cannot unpack {}", res.plan.packages[i].package.nevra))?;
            if !report.scriptlets.is_empty() {
                let has_sysusers = rootfs::accounts::ships_sysusers(&tree, &report.name);
                skipped_scriptlets.push(format!(
                    "{} ({})",
                    report.name,
                    rootfs::effects::describe(&report.scriptlets, has_sysusers)
                ));
            }
            for dev in &report.skipped_devices {
                reporter.warn(&format!(
                    "{}: device node /{dev} left out (images cannot carry device nodes rootless)",
                    report.name
                ));
            }
            progress.inc(1);
        }
        progress.finish(&format!("{} paths", tree.entries.len()));
        if !skipped_scriptlets.is_empty() {
            reporter.info(&format!(
                "scriptlets not run: {}",
                skipped_scriptlets.join("; ")
            ));
        }

        // Harden: no package manager, no setuid/setgid, numeric ids from the image's own files.
        let hardened = rootfs::harden(
            &mut tree,
            &rootfs::HardenOptions {
                strip_setuid: recipe.options.strip_setuid,
                keep_package_manager: recipe.options.package_manager,
            },
        )?;
        for (path, mode) in &hardened.setuid_stripped {
            reporter.info(&format!(
                "cleared setuid/setgid on /{path} (was {mode:04o})"
            ));
        }
        if !hardened.removed_packages.is_empty() {
            let names: Vec<&str> = hardened
                .removed_packages
                .iter()
                .map(String::as_str)
                .collect();
            reporter.info(&format!(
                "left out the package manager: {}",
                names.join(", ")
            ));
        }
        // Accounts from sysusers.d and the recipe, before owner names become ids.
        let accounts = [
            rootfs::accounts::sysusers_request(&tree)?,
            rootfs::accounts::recipe_request(&recipe.accounts),
        ];
        let created = rootfs::accounts::apply(&mut tree, &mut stage, &accounts)?;
        if !created.users.is_empty() || !created.groups.is_empty() {
            let users: Vec<String> = created
                .users
                .iter()
                .map(|(n, uid, gid)| format!("{n} ({uid}:{gid})"))
                .collect();
            let groups: Vec<String> = created
                .groups
                .iter()
                .map(|(n, gid)| format!("{n} ({gid})"))
                .collect();
            reporter.info(&format!(
                "accounts created: users {}; groups {}",
                users.join(", "),
                groups.join(", ")
            ));
        }
        // After hardening (which drops rpm's own var/lib/rpm): the database
        // scanners read to see the packages.
        if recipe.options.rpmdb {
            let installed: Vec<PathBuf> = order.iter().map(|&i| rpms[i].clone()).collect();
            crate::rpmdb::add_to_tree(&mut tree, &mut stage, &installed)
                .context("cannot write the image's rpm database (set `rpmdb = false` in [options] to leave it out)")?;
        }
        rootfs::assign_ids(&mut tree)?;
        let user = recipe
            .image
            .user
            .as_deref()
            .map(|u| rootfs::accounts::resolve_user(&tree, u))
            .transpose()?;

        // Review the result like a person would; warnings unless --strict.
        let expect_ca_bundle = res.plan.nevras().any(|n| n.name == "ca-certificates");
        let findings = check::check(&tree, &check::CheckOptions { expect_ca_bundle });
        for f in &findings {
            reporter.warn(&format!("check: {f}"));
        }
        if settings.strict
            && findings
                .iter()
                .any(|f| f.severity == check::Severity::Error)
        {
            bail!(
                "the image check found {} problem(s) (listed above) and --strict is set",
                findings.len()
            );
        }

        if let Some(dir) = &settings.rootfs_dir {
            if resolved.len() > 1 {
                bail!("--rootfs writes one tree, but the recipe builds {} architectures\n  hint: build one arch for inspection", resolved.len());
            }
            let written = rootfs::export::write_dir(&tree, dir)?;
            for fifo in &written.skipped_fifos {
                reporter.warn(&format!("--rootfs: fifo /{fifo} not created"));
            }
            reporter.step(&format!("Wrote the root filesystem to {}", dir.display()));
        }

        // The image.
        let epoch = settings
            .source_date_epoch
            .or(recipe.options.source_date_epoch)
            .unwrap_or_else(|| {
                res.plan
                    .packages
                    .iter()
                    .map(|p| p.package.build_time)
                    .max()
                    .unwrap_or(0)
            });
        let mut config = image_config(recipe, res, epoch);
        config.user = user;
        reporter.step(&format!("Writing the {arch} layer"));
        let layer = writer.add_layer(
            &tree,
            &LayerOptions {
                source_date_epoch: epoch,
                compression,
            },
        )?;
        reporter.info(&format!(
            "layer {} ({} compressed, {} uncompressed)",
            layer.digest,
            human_bytes(layer.size),
            human_bytes(layer.uncompressed_size)
        ));
        writer.add_image(&config, &[layer])?;
    }
    let written = writer.commit(format, &recipe.image.tag)?;
    Ok(Built {
        digest: written.digest,
        output: written.path,
    })
}

fn image_config(recipe: &Recipe, res: &Resolved, epoch: u64) -> ImageConfig {
    let img = &recipe.image;
    let mut c = ImageConfig::new(res.arch, epoch);
    c.entrypoint = img.entrypoint.clone().unwrap_or_default();
    c.cmd = img.cmd.clone().unwrap_or_default();
    c.env.extend(img.env.clone());
    c.working_dir = img.workdir.clone();
    c.user = img.user.clone();
    c.exposed_ports = img.ports.iter().cloned().collect();
    c.volumes = img.volumes.iter().cloned().collect();
    c.labels = img.labels.clone();
    c.stop_signal = img.stop_signal.clone();
    c.annotations = img.annotations.clone();
    c.annotations
        .entry("org.opencontainers.image.title".into())
        .or_insert_with(|| img.name.clone());
    c.annotations
        .entry("org.opencontainers.image.created".into())
        .or_insert_with(|| oci::config::rfc3339(epoch));
    let nevras: Vec<String> = res.plan.nevras().map(ToString::to_string).collect();
    c.history.push(oci::HistoryEntry {
        created_by: format!(
            "minibuild {}: install {}",
            env!("CARGO_PKG_VERSION"),
            nevras.join(" ")
        ),
        comment: Some(format!("recipe {}", recipe.digest)),
        empty_layer: false,
    });
    c
}
