//! From the recipe to a plan per arch: load the repos' metadata and
//! resolve, or read the plan back from a lock.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::repos::{check_overrides, client, keyrings, sources};
use super::Settings;
use crate::cache::{Bucket, Cache};
use crate::digest::Digest;
use crate::http::Client;
use crate::lock::{Lock, LockedPackage, LockedReason, LockedRepo, LockedRequest};
use crate::package::Arch;
use crate::package::Package;
use crate::recipe::Recipe;
use crate::repo::{self, LoadOptions, RepoIndex, RepoSpec};
use crate::report::{Event, Reporter};
use crate::resolve::{priority, Plan, Planned, Reason, Request};
use crate::signature::Keyring;

/// What was resolved for one target architecture.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub arch: Arch,
    pub repos: Vec<RepoRef>,
    pub plan: Plan,
    /// With `[image] base`: the core's plan (its packages are in `plan`
    /// too), which the first layer holds.
    pub core: Option<Box<Resolved>>,
    /// With `[image] base = "REGISTRY/REPO:TAG"`: the published base, whose
    /// layers come first and whose packages are installed already (they
    /// are not in `plan`).
    pub base: Option<std::sync::Arc<crate::base_image::BaseImage>>,
}

/// A repository as used for one arch: the recipe's name, the substituted URL.
#[derive(Debug, Clone)]
pub struct RepoRef {
    pub name: String,
    pub baseurl: String,
    pub revision: String,
    /// sha256 of repomd.xml when it was read (not when built from a lock).
    pub repomd_digest: Option<Digest>,
    /// The metalink or mirrorlist `baseurl` was picked from.
    pub via: Option<String>,
}

/// The lock beside a recipe, read once, and what the provenance says of it.
#[derive(Debug, Clone)]
pub struct LockFile {
    pub path: PathBuf,
    pub lock: Lock,
    /// `file://` URI and sha256 of the file, for the provenance and annotations.
    pub source: (String, Digest),
}

impl LockFile {
    /// `RECIPE.lock` beside `recipe`, when it exists and `no_lock` is not set.
    pub fn beside(recipe: &Recipe, no_lock: bool) -> anyhow::Result<Option<LockFile>> {
        let path = Lock::path_for(&recipe.path);
        if no_lock || !path.is_file() {
            return Ok(None);
        }
        let lock = Lock::read(&path)?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let uri = std::path::absolute(&path).unwrap_or(path.clone());
        Ok(Some(LockFile {
            source: (
                format!("file://{}", uri.display()),
                Digest::sha256_of(&bytes),
            ),
            path,
            lock,
        }))
    }
}

/// The packages to install: from `lock` when there is one, else resolved afresh.
pub fn resolve_or_lock(
    recipe: &Recipe,
    lock: Option<&LockFile>,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Resolved>> {
    match lock {
        Some(l) => {
            reporter.event(Event::UsingLock {
                path: l.path.clone(),
            });
            if recipe.core.is_none() {
                if let Some(p) = l.lock.packages.iter().find(|p| p.core) {
                    anyhow::bail!(
                        "{}: {} is locked as the core's, but {} has no [image] base\n  hint: regenerate the lock with `minibuild lock {} --update`",
                        l.path.display(),
                        p.nevra(),
                        recipe.path.display(),
                        recipe.path.display()
                    );
                }
            }
            let mut resolved = resolved_from_lock(recipe, &l.lock, &l.path, settings)?;
            for res in &mut resolved {
                let pinned = l.lock.base.as_ref().map(|b| &b.digest);
                res.base = super::base::load(recipe, pinned, res.arch, settings, reporter)?;
            }
            // The core comes from its own lock (or resolution); the app's
            // lock must hold its packages.
            if let Some(core) = super::core::core_plans(recipe, settings, reporter)? {
                for res in &mut resolved {
                    let c = super::core::for_arch(&core, res.arch).cloned();
                    if let Some(c) = c {
                        super::core::check_lock(&c, res, &l.path, recipe)?;
                        res.core = Some(Box::new(c));
                    }
                }
            }
            Ok(resolved)
        }
        None => resolve(recipe, settings, reporter),
    }
}

/// Load every repo's metadata for each target arch and resolve the recipe's request.
pub fn resolve(
    recipe: &Recipe,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Resolved>> {
    check_overrides(recipe, settings)?;
    let client = client(recipe, settings)?;
    let cache = Cache::new(&settings.cache_dir);
    let rings = keyrings(recipe, &client)?;
    let core = super::core::core_plans(recipe, settings, reporter)?;
    let mut out = Vec::new();
    for &arch in &recipe.image.arch {
        let core = core.as_deref().and_then(|c| super::core::for_arch(c, arch));
        let base = super::base::load(recipe, None, arch, settings, reporter)?;
        let mut indexes: Vec<RepoIndex> = Vec::new();
        for i in 0..recipe.repos.len() {
            let index = load_repo(recipe, settings, &client, &cache, &rings, i, arch, reporter)?;
            indexes.push(index);
        }
        let local = crate::local::index(recipe, arch, recipe.repos.len())?;
        let local_requests = local
            .as_ref()
            .map(crate::local::requests)
            .unwrap_or_default();
        if let (Some(b), Some(l)) = (&base, &local) {
            super::base::check_local(b, l)?;
        }
        indexes.extend(local);
        // The base's packages: a repo of their own, last, dropped after solving.
        let base_repo = base.as_ref().map(|b| {
            indexes.push(b.index(indexes.len()));
            indexes.len() - 1
        });
        let mut packages = repo::merge(&mut indexes);
        // A file requirement primary.xml cannot answer: read the complete
        // file lists (large, so only then) and resolve against those.
        let requests = recipe.packages.install.iter().map(String::as_str);
        if packages.unmet_file_deps(requests) {
            for (i, r) in recipe.repos.iter().enumerate() {
                // The mirror the metadata came from: the file lists must match it.
                let spec = RepoSpec {
                    name: r.name.clone(),
                    baseurl: indexes[i].baseurl.clone(),
                    index: i,
                };
                reporter.event(Event::LoadingFileLists {
                    repo: spec.name.clone(),
                    arch: arch.to_string(),
                });
                repo::load_filelists(
                    &client,
                    &cache,
                    &spec,
                    LoadOptions {
                        offline: settings.net.offline,
                    },
                    &mut packages,
                )?;
            }
        }
        let priorities: Vec<(i32, u32)> = recipe
            .repos
            .iter()
            .map(|r| (r.priority, r.cost))
            .chain(std::iter::once(crate::local::PRIORITY))
            .collect();
        // The base's packages are installed: never hidden, hiding no repo's
        // other versions (so a request needing one is named), and an
        // identical NEVRA is taken as the base's.
        priority::apply_set(&mut packages, &priorities, base_repo);
        let request = Request {
            install: recipe
                .packages
                .install
                .iter()
                .cloned()
                .chain(local_requests)
                .collect(),
            exclude: recipe.packages.exclude.clone(),
            prefer: recipe.packages.prefer.clone(),
            avoid: recipe.packages.avoid.clone(),
            minimal_by_default: crate::resolve::minimal::applies(&recipe.options.langs),
            weak_deps: recipe.options.weak_deps,
            arch: Some(arch),
            installed: match (&base, core) {
                (Some(b), _) => b.nevras().cloned().collect(),
                (None, Some(c)) => super::core::installed(c),
                (None, None) => Vec::new(),
            },
        };
        reporter.event(Event::Resolving {
            arch: arch.to_string(),
            requests: request.install.clone(),
        });
        let started = std::time::Instant::now();
        let solve = |r: &Request| crate::resolve::ResolvoSolver.solve_set(&packages, r);
        let mut plan = match solve(&request) {
            Ok(plan) => plan,
            // Say which core package is in the way, when one is.
            Err(e) if !request.installed.is_empty() => {
                let free = Request {
                    installed: Vec::new(),
                    ..request.clone()
                };
                let named = solve(&free)
                    .ok()
                    .and_then(|p| crate::resolve::replaces_installed(&p, &request.installed));
                if let (Some(b), Some(named)) = (&base, &named) {
                    return Err(super::base::replaces(b, named));
                }
                return Err(named.unwrap_or(e).into());
            }
            Err(e) => return Err(e.into()),
        };
        if !recipe.options.package_manager {
            plan = crate::resolve::leave_out::leave_out_package_manager(plan, &request, solve);
        }
        for l in &plan.left_out {
            reporter.event(Event::LeftOut {
                package: l.name.clone(),
                why: l.why.clone(),
            });
        }
        reporter.event(Event::Resolved {
            arch: arch.to_string(),
            packages: plan.packages.len(),
            download_bytes: plan.packages.iter().map(|p| p.package.download_size).sum(),
            installed_bytes: plan.packages.iter().map(|p| p.package.installed_size).sum(),
            millis: started.elapsed().as_secs_f64() * 1e3,
        });
        if let Some(b) = &base {
            plan = super::base::without_installed(plan, b);
        }
        let mut repos: Vec<RepoRef> = indexes
            .into_iter()
            .map(|i| RepoRef {
                name: i.name,
                baseurl: i.baseurl,
                revision: i.revision,
                repomd_digest: Some(i.repomd_digest),
                via: i.via,
            })
            .collect();
        if base_repo.is_some() {
            repos.pop();
        }
        let res = Resolved {
            arch,
            repos,
            plan,
            core: None,
            base,
        };
        out.push(match core {
            Some(core) => super::core::lay_over(core, res)?,
            None => res,
        });
    }
    Ok(out)
}

/// Load (or read from the cache) repo `i`'s metadata for `arch`, checking
/// repomd.xml's signature and freshness when the repo asks for it. With a
/// run's [`RepoMemo`](super::memo::RepoMemo) (several recipes), a repo
/// another recipe already loaded is not loaded again.
#[allow(clippy::too_many_arguments)]
pub fn load_repo(
    recipe: &Recipe,
    settings: &Settings,
    client: &Client,
    cache: &Cache,
    rings: &[Keyring],
    i: usize,
    arch: Arch,
    reporter: &dyn Reporter,
) -> anyhow::Result<RepoIndex> {
    let Some(memo) = &settings.repo_memo else {
        return load_repo_once(recipe, settings, client, cache, rings, i, arch, reporter);
    };
    let r = &recipe.repos[i];
    let releasever = recipe.options.releasever.as_deref().unwrap_or("");
    let key = super::memo::key(&sources(recipe, settings, r, arch)?, releasever, arch, r);
    let (index, reused) = memo.get_or_load(&key, || {
        load_repo_once(recipe, settings, client, cache, rings, i, arch, reporter)
    })?;
    if reused {
        reporter.event(Event::RepoShared {
            repo: r.name.clone(),
            arch: arch.to_string(),
            packages: index.packages.len(),
        });
    }
    Ok(super::memo::renamed(index, &r.name, i))
}

#[allow(clippy::too_many_arguments)]
fn load_repo_once(
    recipe: &Recipe,
    settings: &Settings,
    client: &Client,
    cache: &Cache,
    rings: &[Keyring],
    i: usize,
    arch: Arch,
    reporter: &dyn Reporter,
) -> anyhow::Result<RepoIndex> {
    let r = &recipe.repos[i];
    let options = LoadOptions {
        offline: settings.net.offline,
    };
    let releasever = recipe.options.releasever.as_deref().unwrap_or("");
    let candidates = repo::mirrors::candidates(
        client,
        cache,
        &r.name,
        &sources(recipe, settings, r, arch)?,
        options,
        &|m| repo::substitute(m, releasever, arch.rpm_name()),
    )?;
    reporter.event(Event::LoadingRepo {
        repo: r.name.clone(),
        arch: arch.to_string(),
        from: candidates
            .via
            .as_deref()
            .or(candidates.mirrors.first().map(String::as_str))
            .unwrap_or_default()
            .to_string(),
    });
    let started = std::time::Instant::now();
    let ring = &rings[i];
    let check = |url: &str, bytes: &[u8]| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if !r.repo_gpgcheck {
            return Ok(());
        }
        let asc_url = format!("{url}.asc");
        let sig = client.read_to_vec(&asc_url)?;
        ring.verify_detached(bytes, &sig, &asc_url)?;
        // Validly signed, but maybe an old copy replayed: compare
        // with the newest this cache has seen for this URL.
        crate::repo::repomd::Freshness::check_and_record(
            &cache.bucket(Bucket::Repomd),
            &r.name,
            url,
            bytes,
            settings.allow_downgrade,
        )?;
        Ok(())
    };
    let index = repo::mirrors::load(client, cache, &r.name, i, &candidates, options, &check)?;
    if let Some(via) = &index.via {
        reporter.event(Event::MirrorPicked {
            repo: index.name.clone(),
            baseurl: index.baseurl.clone(),
            via: via.clone(),
        });
    }
    reporter.event(Event::RepoLoaded {
        repo: index.name.clone(),
        packages: index.packages.len(),
        revision: index.revision.clone(),
        millis: started.elapsed().as_secs_f64() * 1e3,
    });
    for note in &index.notes {
        reporter.event(Event::Warning {
            message: note.clone(),
        });
    }
    Ok(index)
}

/// The lock for a resolution.
pub fn lock_of(recipe: &Recipe, resolved: &[Resolved]) -> Lock {
    let repos = recipe
        .repos
        .iter()
        .map(|r| LockedRepo {
            name: r.name.clone(),
            baseurl: r.origin().to_string(),
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
            let core = super::core::core_set(res);
            let mut entries =
                crate::lock::entries(res.arch, &res.plan, &crate::local::repo_names(recipe));
            for e in &mut entries {
                e.core = core.contains(&e.nevra());
            }
            entries
        })
        .collect();
    let mut lock = Lock::new(LockedRequest::of(recipe), repos, packages);
    lock.base = resolved
        .iter()
        .find_map(|r| r.base.as_ref())
        .map(|b| crate::lock::LockedBase {
            reference: b.reference.to_string(),
            digest: b.pulled.digest.clone(),
        });
    lock
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
    // Built only when a repo must pick among mirrors.
    let mut client_once: Option<Client> = None;
    let cache = Cache::new(&settings.cache_dir);
    for &arch in &recipe.image.arch {
        let repos: Vec<RepoRef> = recipe
            .repos
            .iter()
            .map(|r| {
                let sources = sources(recipe, settings, r, arch)?;
                let (url, via) = match (
                    &sources.baseurls[..],
                    &sources.metalink,
                    &sources.mirrorlist,
                ) {
                    ([one], None, None) => (one.clone(), None),
                    _ => {
                        let client = match client_once.take() {
                            Some(c) => c,
                            None => client(recipe, settings)?,
                        };
                        let options = LoadOptions {
                            offline: settings.net.offline,
                        };
                        let releasever = recipe.options.releasever.as_deref().unwrap_or("");
                        let candidates = repo::mirrors::candidates(
                            &client,
                            &cache,
                            &r.name,
                            &sources,
                            options,
                            &|m| repo::substitute(m, releasever, arch.rpm_name()),
                        )?;
                        let picked = repo::mirrors::pick(
                            &client,
                            &r.name,
                            &candidates,
                            options,
                            &|_, _| Ok(()),
                        )?;
                        client_once = Some(client);
                        (picked, candidates.via)
                    }
                };
                Ok(RepoRef {
                    name: r.name.clone(),
                    baseurl: url,
                    revision: lock
                        .repos
                        .iter()
                        .find(|l| l.name == r.name)
                        .and_then(|l| l.revisions.get(arch.rpm_name()).cloned())
                        .unwrap_or_default(),
                    repomd_digest: None,
                    via,
                })
            })
            .collect::<anyhow::Result<Vec<RepoRef>>>()?;
        let repos: Vec<RepoRef> = repos
            .into_iter()
            .chain(std::iter::once(local_repo_ref(recipe)))
            .collect();
        let locked: Vec<&LockedPackage> = lock.for_target(arch).collect();
        let index = crate::lock::by_key(&locked);
        let mut packages = Vec::new();
        for l in locked {
            let repo = recipe
                .repos
                .iter()
                .position(|r| r.name == l.repo)
                .or_else(|| (l.repo == crate::local::REPO).then_some(recipe.repos.len()))
                .with_context(|| {
                    format!(
                        "{}: package {} comes from repo `{}`, which the recipe no longer has",
                        lock_path.display(),
                        l.nevra(),
                        l.repo
                    )
                })?;
            let by = |key: &str| {
                index.get(key).copied().with_context(|| {
                    format!(
                        "{}: {} is locked as pulled in by `{key}`, which is not locked for {arch}\n  hint: regenerate the lock with `minibuild lock {} --update`",
                        lock_path.display(),
                        l.nevra(),
                        recipe.path.display()
                    )
                })
            };
            let reason = match l.reason() {
                Some(LockedReason::Requested(request)) => Reason::Requested { request },
                Some(LockedReason::Required { by: b, dep }) => {
                    Reason::Required { by: by(&b)?, dep }
                }
                Some(LockedReason::Recommended { by: b, dep }) => {
                    Reason::Recommended { by: by(&b)?, dep }
                }
                None => Reason::Unrecorded,
            };
            packages.push(Planned {
                package: Package {
                    download_size: l.download_size,
                    installed_size: l.installed_size,
                    build_time: l.build_time,
                    ..Package::new(l.nevra(), repo, l.location.clone(), l.checksum.clone())
                },
                reason,
            });
        }
        out.push(Resolved {
            arch,
            repos,
            // A lock keeps what was chosen, not why.
            plan: Plan {
                packages,
                choices: Default::default(),
                left_out: Vec::new(),
            },
            core: None,
            base: None,
        });
    }
    Ok(out)
}

/// The `@local` entry of a resolution's repo list (always there, last, so
/// that `Package::repo` indexes stay valid whether or not it is used).
fn local_repo_ref(recipe: &Recipe) -> RepoRef {
    RepoRef {
        name: crate::local::REPO.to_string(),
        baseurl: crate::local::baseurl(recipe),
        revision: String::new(),
        repomd_digest: None,
        via: None,
    }
}
