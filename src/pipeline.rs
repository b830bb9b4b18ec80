//! The build, stage by stage: the only module that knows the order of the
//! pipeline. Each stage gets plain data and returns plain data; this module
//! passes it along and tells the [`Reporter`] what is happening.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::cache::{Bucket, Cache, PARTIAL_PREFIX};
use crate::check;
use crate::digest::Digest;
use crate::fetch;
use crate::http::Client;
use crate::lock::{Lock, LockedPackage, LockedReason, LockedRepo, LockedRequest};
use crate::oci::layer_cache::{LayerCache, Origin};
use crate::oci::{self, Compression, Format, ImageConfig, ImageWriter, LayerOptions};
use crate::recipe::Recipe;
use crate::repo::{self, LoadOptions, Package, RepoIndex, RepoSpec};
use crate::report::{human_bytes, FetchTally, Reporter};
use crate::resolve::{order, priority, Plan, Planned, Reason, Request};
use crate::rootfs::{self, Tree};
use crate::rpm::Arch;
use crate::signature::Keyring;

/// Manifest annotation: the recipe's digest (`sha256:…`).
pub const ANNOTATION_RECIPE: &str = "dev.minibuild.recipe.digest";
/// Manifest annotation: the lock's digest, when the plan came from one.
pub const ANNOTATION_LOCK: &str = "dev.minibuild.lock.digest";
/// Manifest annotation prefix, one per repo:
/// `revision=R gpgcheck=on|off repo_gpgcheck=on|off`. Only what decides the
/// content: the URL (which mirror, which path) goes to the provenance, so
/// the same packages from any mirror give the same digest.
pub const ANNOTATION_REPO_PREFIX: &str = "dev.minibuild.repo.";

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
    /// Site policy (`--policy`), checked before anything is downloaded.
    pub policy: Option<crate::policy::Policy>,
    /// What to write beside the image besides the image itself.
    pub outputs: SupplyChainOutputs,
    /// `(uri, sha256)` of the lock the plan was read from, for provenance.
    pub lock: Option<(String, Digest)>,
    /// `--allow-downgrade`: accept a signed repomd.xml older than one seen before.
    pub allow_downgrade: bool,
    /// Timeouts and TLS trust for mirrors (`--timeout`, `--ca`, `--cert-dir`).
    pub net: crate::http::ClientOptions,
    /// What may be replaced at the output path (`--force`: any file).
    pub replace: oci::Replace,
}

/// SBOM and provenance files a build writes (see README "Supply chain").
#[derive(Debug, Clone, Default)]
pub struct SupplyChainOutputs {
    /// Where to write the SBOM; with several arches the arch is inserted
    /// before the extension (`app.spdx.json` → `app.x86_64.spdx.json`).
    pub sbom: Option<PathBuf>,
    pub sbom_format: SbomFormat,
    /// Where to write the in-toto provenance statement.
    pub provenance: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SbomFormat {
    #[default]
    Spdx,
    CycloneDx,
}

impl SbomFormat {
    /// The file name suffix for this format.
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::CycloneDx => "cdx.json",
        }
    }
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
    /// sha256 of repomd.xml when it was read (not when built from a lock).
    pub repomd_digest: Option<Digest>,
    /// The metalink or mirrorlist `baseurl` was picked from.
    pub via: Option<String>,
}

/// The finished image.
#[derive(Debug)]
pub struct Built {
    pub digest: Digest,
    pub output: PathBuf,
    /// SBOM files written (one per arch).
    pub sboms: Vec<PathBuf>,
    pub provenance: Option<PathBuf>,
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
    // `user:pass@` in an override is a credential (see `client`), never part of the URL.
    let (template, _) = crate::credentials::split_userinfo(template);
    let url = repo::substitute(
        &template,
        recipe.options.releasever.as_deref().unwrap_or(""),
        arch.rpm_name(),
    )
    .with_context(|| format!("repo `{name}` in {}", recipe.path.display()))?;
    Ok(repo::normalize_baseurl(&url))
}

/// Where `repo`'s metadata may come from on `arch`, substituted: its base
/// URLs, metalink and mirrorlist, or only the `--baseurl` override.
fn sources(
    recipe: &Recipe,
    settings: &Settings,
    repo: &crate::recipe::Repo,
    arch: Arch,
) -> anyhow::Result<repo::mirrors::Sources> {
    let url = |template: &str| baseurl(recipe, settings, &repo.name, template, arch);
    if settings.baseurl_overrides.contains_key(&repo.name) {
        return Ok(repo::mirrors::Sources {
            baseurls: vec![url("")?],
            ..Default::default()
        });
    }
    // A metalink or mirrorlist URL is a document, not a directory: no `/` added.
    let document = |template: &String| {
        repo::substitute(
            template,
            recipe.options.releasever.as_deref().unwrap_or(""),
            arch.rpm_name(),
        )
        .with_context(|| format!("repo `{}` in {}", repo.name, recipe.path.display()))
    };
    Ok(repo::mirrors::Sources {
        baseurls: std::iter::once(&repo.baseurl)
            .filter(|b| !b.is_empty())
            .chain(&repo.more_baseurls)
            .map(|b| url(b))
            .collect::<anyhow::Result<_>>()?,
        metalink: repo.metalink.as_ref().map(document).transpose()?,
        mirrorlist: repo.mirrorlist.as_ref().map(document).transpose()?,
    })
}

/// Every URL of `sources`, for the policy and the credential table.
fn source_urls(sources: &repo::mirrors::Sources) -> impl Iterator<Item = &String> {
    sources
        .baseurls
        .iter()
        .chain(&sources.metalink)
        .chain(&sources.mirrorlist)
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
    // The policy looks at the URLs actually used: after overrides, per arch.
    if let Some(policy) = &settings.policy {
        for r in &recipe.repos {
            for &arch in &recipe.image.arch {
                // Mirrors a metalink names are held to the fence by the client.
                for url in source_urls(&sources(recipe, settings, r, arch)?) {
                    policy.check(r, url)?;
                }
            }
        }
    }
    Ok(())
}

/// Say which repos are used without signature checks: a choice the user made
/// explicitly (`gpgcheck = false`) or by giving no key; either way it shows.
fn report_unchecked(recipe: &Recipe, reporter: &dyn Reporter) {
    for r in &recipe.repos {
        if !r.gpgcheck {
            reporter.warn(&format!(
                "repo `{}`: package signatures are NOT checked (gpgcheck off); recorded in the SBOM and provenance",
                r.name
            ));
        }
    }
}

/// The one HTTP client of a run: `settings.net`, fenced by the policy's
/// allow-list on every URL it fetches, with each repo's credential bound to
/// the origin of its baseurl (for every target arch).
pub fn client(recipe: &Recipe, settings: &Settings) -> anyhow::Result<Client> {
    let mut options = settings.net.clone();
    if let Some(policy) = &settings.policy {
        options.fence = policy.fence();
    }
    let mut table = crate::credentials::AuthTable::default();
    for r in &recipe.repos {
        let from_override = settings
            .baseurl_overrides
            .get(&r.name)
            .and_then(|u| crate::credentials::split_userinfo(u).1);
        let credential = match repo_credential(recipe, r)? {
            Some(c) => Some(c),
            None => from_override.or_else(|| r.auth.from_url.clone()),
        };
        for &arch in &recipe.image.arch {
            for url in source_urls(&sources(recipe, settings, r, arch)?) {
                let credential = credential.clone().or_else(|| {
                    crate::credentials::host(url)
                        .and_then(|h| crate::credentials::netrc_for(&h))
                        .map(|(c, _)| c)
                });
                if let Some(c) = credential {
                    table.insert(url, c);
                }
            }
        }
    }
    Ok(Client::with_options(crate::http::RetryPolicy::default(), &options)?.with_auth(table))
}

/// The credential the recipe gives `repo` (`username` + `password_env`/`password_file`).
fn repo_credential(
    recipe: &Recipe,
    repo: &crate::recipe::Repo,
) -> anyhow::Result<Option<crate::credentials::Credential>> {
    use crate::recipe::Secret;
    let read = |secret: &Secret, what: &str| -> anyhow::Result<String> {
        match secret {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::Env(var) => std::env::var(var).with_context(|| {
                format!(
                    "repo `{}` in {}: its {what} comes from the environment variable {var}, which is not set\n  hint: export {var} (e.g. from your CI's secret store) before building",
                    repo.name,
                    recipe.path.display()
                )
            }),
            Secret::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "repo `{}` in {}: cannot read its {what} file {}\n  hint: check password_file; the file holds the secret on its first line",
                        repo.name,
                        recipe.path.display(),
                        path.display()
                    )
                })?;
                Ok(text.lines().next().unwrap_or_default().to_string())
            }
        }
    };
    match (&repo.auth.username, &repo.auth.password) {
        (Some(user), Some(password)) => Ok(Some(crate::credentials::Credential::new(
            read(user, "username")?,
            read(password, "password")?,
        ))),
        _ => Ok(None),
    }
}

/// Every repo's keyring (index = recipe order), fetched from the recipe's
/// `gpgkey` URLs; empty for repos that check nothing.
pub fn keyrings(recipe: &Recipe, client: &Client) -> anyhow::Result<Vec<Keyring>> {
    recipe
        .repos
        .iter()
        .map(|r| {
            let mut ring = Keyring {
                allow_legacy: recipe.options.legacy_signatures,
                ..Keyring::default()
            };
            if !(r.gpgcheck || r.repo_gpgcheck) {
                return Ok(ring);
            }
            if r.gpgkeys.is_empty() {
                bail!(
                    "repo `{}` checks signatures but names no gpgkey\n  hint: add gpgkey = \"URL or path\" to the repo in {}, or set `gpgcheck = false`, knowingly",
                    r.name,
                    recipe.path.display()
                );
            }
            for key in &r.gpgkeys {
                // The recipe names its keys; `signing_keys` governs them,
                // not the repo allow-list.
                let bytes = client
                    .unfenced()
                    .read_to_vec(&key.url)
                    .with_context(|| format!("repo `{}`: cannot read its gpgkey {}", r.name, key.url))?;
                // Plain http: only a pinned fingerprint makes the key trustworthy
                // (the recipe refuses an unpinned one).
                ring.add(&bytes, &key.url, key.fingerprint.as_deref())
                    .with_context(|| format!("repo `{}`", r.name))?;
            }
            Ok(ring)
        })
        .collect()
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
    let mut out = Vec::new();
    for &arch in &recipe.image.arch {
        let mut indexes: Vec<RepoIndex> = Vec::new();
        for i in 0..recipe.repos.len() {
            let index = load_repo(recipe, settings, &client, &cache, &rings, i, arch, reporter)?;
            indexes.push(index);
        }
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
                reporter.step(&format!("Loading file lists of {} ({arch})", spec.name));
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
        let priorities: Vec<(i32, u32)> =
            recipe.repos.iter().map(|r| (r.priority, r.cost)).collect();
        priority::apply_set(&mut packages, &priorities);
        let request = Request {
            install: recipe.packages.install.clone(),
            exclude: recipe.packages.exclude.clone(),
            prefer: recipe.packages.prefer.clone(),
            avoid: recipe.packages.avoid.clone(),
            minimal_by_default: crate::resolve::minimal::applies(&recipe.options.langs),
            weak_deps: recipe.options.weak_deps,
            arch: Some(arch),
        };
        reporter.step(&format!(
            "Resolving {} for {arch}",
            recipe.packages.install.join(", ")
        ));
        let started = std::time::Instant::now();
        let solve = |r: &Request| crate::resolve::ResolvoSolver.solve_set(&packages, r);
        let mut plan = solve(&request)?;
        if !recipe.options.package_manager {
            plan = crate::resolve::leave_out::leave_out_package_manager(plan, &request, solve);
        }
        for l in &plan.left_out {
            reporter.info(&format!("left out {}: {}", l.name, l.why));
        }
        reporter.info(&format!(
            "Resolved in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ));
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
                repomd_digest: Some(i.repomd_digest),
                via: i.via,
            })
            .collect();
        out.push(Resolved { arch, repos, plan });
    }
    Ok(out)
}

/// Load (or read from the cache) repo `i`'s metadata for `arch`, checking
/// repomd.xml's signature and freshness when the repo asks for it.
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
    reporter.step(&format!(
        "Loading metadata of {} ({arch}) from {}",
        r.name,
        candidates
            .via
            .as_deref()
            .or(candidates.mirrors.first().map(String::as_str))
            .unwrap_or_default()
    ));
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
        reporter.info(&format!(
            "{}: mirror {} (from {via})",
            index.name, index.baseurl
        ));
    }
    reporter.info(&format!(
        "{}: {} packages, revision {} (loaded in {:.1} ms)",
        index.name,
        index.packages.len(),
        index.revision,
        started.elapsed().as_secs_f64() * 1e3
    ));
    for note in &index.notes {
        reporter.warn(note);
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
            crate::lock::entries(
                res.arch,
                &res.plan,
                &recipe
                    .repos
                    .iter()
                    .map(|r| r.name.clone())
                    .collect::<Vec<_>>(),
            )
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
            .collect::<anyhow::Result<_>>()?;
        let locked: Vec<&LockedPackage> = lock.for_target(arch).collect();
        let index = crate::lock::by_key(&locked);
        let mut packages = Vec::new();
        for l in locked {
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
        });
    }
    Ok(out)
}

/// Download, unpack, harden and write the image for every resolved arch.
///
/// Per arch the stages are: [`fetch_rpms`] → [`verify_signatures`] →
/// `unpack_all` → `finish_tree` → `review` → `write_image`; then the
/// image is committed and the SBOM and provenance written beside it.
pub fn build(
    recipe: &Recipe,
    resolved: &[Resolved],
    output: &Path,
    format: Format,
    compression: Compression,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Built> {
    // Refuse what cannot work before any download.
    check_epoch(settings.source_date_epoch, "SOURCE_DATE_EPOCH")?;
    check_epoch(
        recipe.options.source_date_epoch,
        &format!("{}: source_date_epoch", recipe.path.display()),
    )?;
    let arches: Vec<&str> = resolved.iter().map(|r| r.arch.rpm_name()).collect();
    if format == Format::DockerArchive && resolved.len() > 1 {
        bail!(
            "docker-archive holds one architecture, but {} asks for {}\n  hint: use --format oci or oci-archive for a multi-arch image, or build one arch at a time",
            recipe.path.display(),
            arches.join(", ")
        );
    }
    if settings.rootfs_dir.is_some() && resolved.len() > 1 {
        bail!(
            "--rootfs writes one tree, but {} builds {}\n  hint: build one arch for inspection",
            recipe.path.display(),
            arches.join(", ")
        );
    }
    sweep_debris(output, settings, reporter);
    let client = client(recipe, settings)?;
    let cache = Cache::new(&settings.cache_dir);
    let layers = LayerCache::new(cache.bucket(Bucket::Layers));
    report_unchecked(recipe, reporter);
    let rings = keyrings(recipe, &client)?;
    let mut writer = ImageWriter::new(output)?;
    writer.set_replace(settings.replace);
    // The writer appends the tag itself (`RepoTags: ["name:tag"]`).
    writer.set_name(&recipe.image.name);
    let image_name = format!("{}:{}", recipe.image.name, recipe.image.tag);
    let mut per_arch: Vec<ArchFacts> = Vec::new();
    for res in resolved {
        let rpms = fetch_rpms(&client, &cache, res, settings.jobs, reporter)?;
        let signers = verify_signatures(recipe, &rings, res, &rpms, reporter)?;
        // The tree's file contents live in staging blobs until the layer is written.
        let staging = crate::temporaries::dir_in(
            &std::env::temp_dir(),
            STAGING_PREFIX,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .with_context(|| {
            format!(
                "cannot create a staging directory in {}\n  hint: set TMPDIR to a writable directory with room for the unpacked packages",
                std::env::temp_dir().display()
            )
        })?;
        let installed_size = res
            .plan
            .packages
            .iter()
            .map(|p| p.package.installed_size)
            .sum();
        rootfs::staging::ensure_room(staging.path(), installed_size)?;
        let mut stage = rootfs::Staging::new(staging.path())?;
        let unpacked = unpack_all(recipe, res, &rpms, &mut stage, reporter)?;
        let mut tree = unpacked.tree;
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
            &mut tree,
            &mut stage,
            settings.strict,
            reporter,
        )?;
        review(&tree, res, settings, reporter)?;
        if let Some(dir) = &settings.rootfs_dir {
            let written = rootfs::export::write_dir(&tree, dir)?;
            for fifo in &written.skipped_fifos {
                reporter.warn(&format!("--rootfs: fifo /{fifo} not created"));
            }
            reporter.step(&format!("Wrote the root filesystem to {}", dir.display()));
        }
        let (manifest_digest, epoch) = write_image(
            recipe,
            res,
            &tree,
            user,
            &mut writer,
            &layers,
            compression,
            settings,
            reporter,
        )?;
        per_arch.push(ArchFacts {
            arch: res.arch,
            plan: Plan {
                packages: unpacked
                    .headers
                    .into_iter()
                    .zip(&res.plan.packages)
                    .map(|(package, p)| Planned {
                        package,
                        reason: p.reason.clone(),
                    })
                    .collect(),
                choices: res.plan.choices.clone(),
                left_out: res.plan.left_out.clone(),
            },
            distro: distro_of(&tree),
            manifest_digest,
            signers,
            epoch,
            removed,
        });
    }
    // From the image's rename to the provenance's, an interrupt waits: the
    // outputs are replaced as a set. A SIGKILL cannot be waited for, so the
    // previous SBOM and provenance go first: a kill in between leaves an
    // image with its SBOM missing (visible), never beside the old one.
    let _commit = crate::temporaries::commit_section();
    remove_stale_supply_chain(&per_arch, settings)?;
    let written = writer.commit(format, &recipe.image.tag)?;
    let mut built = Built {
        digest: written.digest,
        output: written.path,
        sboms: Vec::new(),
        provenance: None,
    };
    write_supply_chain(
        recipe,
        resolved,
        &per_arch,
        &image_name,
        settings,
        &mut built,
    )?;
    Ok(built)
}

/// The first second of the year 10000: an RFC 3339 `created` has four
/// year digits, and skopeo/containerd refuse a fifth.
const EPOCH_LIMIT: u64 = 253_402_300_800;

/// Refuse an epoch whose `created` image tools cannot parse.
fn check_epoch(epoch: Option<u64>, from: &str) -> anyhow::Result<()> {
    match epoch {
        Some(e) if e >= EPOCH_LIMIT => bail!(
            "{from} = {e} is after 9999-12-31T23:59:59Z, which an image's `created` cannot express (RFC 3339 has four year digits)\n  hint: give seconds since 1970 (`date +%s`), not milliseconds"
        ),
        _ => Ok(()),
    }
}

/// Name start of the per-arch staging directories in `$TMPDIR`.
const STAGING_PREFIX: &str = "minibuild-rootfs-";

/// Remove what killed builds left beside the outputs and in `$TMPDIR`:
/// only our own temporaries whose process is gone (see temporaries.rs).
fn sweep_debris(output: &Path, settings: &Settings, reporter: &dyn Reporter) {
    use crate::fsutil::{parent_dir, TEMP_PREFIX};
    use crate::oci::{archive::ARCHIVE_PREFIX, layout::STAGING_PREFIX as OCI_PREFIX};
    let mut dirs: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    dirs.insert(std::env::temp_dir(), vec![STAGING_PREFIX]);
    let outputs = [
        Some(output),
        settings.outputs.sbom.as_deref(),
        settings.outputs.provenance.as_deref(),
    ];
    let mut add = |dir: PathBuf, more: &[&'static str]| {
        let bases = dirs.entry(dir).or_default();
        for base in more {
            if !bases.contains(base) {
                bases.push(base);
            }
        }
    };
    for path in outputs.into_iter().flatten() {
        add(
            parent_dir(path).to_path_buf(),
            &[OCI_PREFIX, ARCHIVE_PREFIX, TEMP_PREFIX],
        );
    }
    if let Some(dir) = &settings.rootfs_dir {
        use crate::rootfs::export::{OLD_PREFIX, TEMP_PREFIX as ROOTFS_PREFIX};
        add(parent_dir(dir).to_path_buf(), &[ROOTFS_PREFIX, OLD_PREFIX]);
    }
    // Downloads in progress and the layer cache's write_atomic temporaries.
    let cache = Cache::new(&settings.cache_dir);
    for bucket in Bucket::ALL {
        add(cache.bucket(bucket), &[PARTIAL_PREFIX, TEMP_PREFIX]);
    }
    sweep_dirs(dirs, reporter);
}

/// Sweep the write_atomic temporaries a killed `minibuild lock` left beside
/// `lock_path` (the only temporaries that command makes outside the cache).
pub fn sweep_beside_lock(lock_path: &Path, reporter: &dyn Reporter) {
    let dir = crate::fsutil::parent_dir(lock_path).to_path_buf();
    sweep_dirs(
        BTreeMap::from([(dir, vec![crate::fsutil::TEMP_PREFIX])]),
        reporter,
    );
}

fn sweep_dirs(dirs: BTreeMap<PathBuf, Vec<&str>>, reporter: &dyn Reporter) {
    for (dir, bases) in dirs {
        for path in crate::temporaries::sweep(&dir, &bases) {
            reporter.info(&format!(
                "removed {}, left by an interrupted build",
                path.display()
            ));
        }
    }
}

/// Download (or find in the cache) every RPM of the plan; paths in plan order.
pub fn fetch_rpms(
    client: &Client,
    cache: &Cache,
    res: &Resolved,
    jobs: usize,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<PathBuf>> {
    let total: u64 = res
        .plan
        .packages
        .iter()
        .map(|p| p.package.download_size)
        .sum();
    let progress = reporter.progress(
        &format!(
            "Fetching {} packages for {}",
            res.plan.packages.len(),
            res.arch
        ),
        total,
        true,
    );
    let requests: Vec<(&Package, &str)> = res
        .plan
        .packages
        .iter()
        .map(|p| (&p.package, res.repos[p.package.repo].baseurl.as_str()))
        .collect();
    let tally = std::sync::Mutex::new(FetchTally::default());
    let rpms = fetch::fetch(client, cache, &requests, jobs, &|ev| match ev {
        fetch::FetchEvent::Progress { bytes, .. } => progress.inc(bytes),
        fetch::FetchEvent::Finished {
            package, cached, ..
        } => tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(cached, package.download_size),
        fetch::FetchEvent::Dropped { package, path, .. } => reporter.warn(&format!(
            "cache entry {} of {} did not match its checksum: dropped, downloading it again",
            path.display(),
            package.nevra
        )),
        _ => {}
    })?;
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.finish(&tally.summary());
    // The checksum proves the bytes; the header proves they are the package chosen.
    for (path, (package, base)) in rpms.iter().zip(&requests) {
        crate::rpm::identity::check(path, &package.nevra).with_context(|| {
            format!(
                "{} from {}",
                package.nevra,
                crate::http::join(base, &package.location)
            )
        })?;
    }
    Ok(rpms)
}

/// Check each RPM against its repo's keys, before anything of it is
/// unpacked. Per package (plan order): the fingerprint that signed it, or
/// `None` where the recipe turned checks off.
pub fn verify_signatures(
    recipe: &Recipe,
    rings: &[Keyring],
    res: &Resolved,
    rpms: &[PathBuf],
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Option<String>>> {
    let mut signers = Vec::new();
    for (path, p) in rpms.iter().zip(&res.plan.packages) {
        let repo = p.package.repo;
        signers.push(if recipe.repos[repo].gpgcheck {
            Some(rings[repo].verify_rpm(path, &p.package.nevra)?)
        } else {
            None
        });
    }
    let verified = signers.iter().flatten().count();
    if verified > 0 {
        reporter.info(&format!(
            "{verified} of {} package signatures verified",
            signers.len()
        ));
    }
    Ok(signers)
}

/// The packages' payloads as one tree, and what the later stages need.
struct Unpacked {
    tree: Tree,
    /// Per package (plan order): the package with its header's fields filled.
    headers: Vec<Package>,
    /// Plan indices in install order (providers first).
    order: Vec<usize>,
    /// Each package's scriptlets (not run), in install order.
    scripts: Vec<rootfs::effects::Scripts>,
    /// Per RPM path: header file indices left out on purpose, for the rpmdb.
    not_installed: crate::rpmdb::NotInstalled,
}

/// Unpack every package in install order, reading each header for the
/// order; report scriptlets not run and device nodes left out.
fn unpack_all(
    recipe: &Recipe,
    res: &Resolved,
    rpms: &[PathBuf],
    stage: &mut rootfs::Staging,
    reporter: &dyn Reporter,
) -> anyhow::Result<Unpacked> {
    let headers: Vec<Package> = rpms
        .iter()
        .zip(&res.plan.packages)
        .map(|(path, p)| {
            crate::rpm::header::with_header_deps(path, &p.package).with_context(|| {
                let url = crate::http::join(&res.repos[p.package.repo].baseurl, &p.package.location);
                format!("{url} is damaged or not an RPM; if it passed its checksum, report the repository")
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&Package> = headers.iter().collect();
    let order = order::install_order(&refs);
    let mut tree = Tree::default();
    let unpack_opts = rootfs::UnpackOptions {
        docs: recipe.options.docs,
        langs: recipe.options.langs.clone(),
        keep_caps: recipe.options.keep_caps,
        exclude_paths: recipe.options.exclude_paths.clone(),
    };
    let progress = reporter.progress(
        &format!("Unpacking {} packages", order.len()),
        order.len() as u64,
        false,
    );
    let mut skipped_scriptlets = Vec::new();
    let mut scripts = Vec::new();
    let mut not_installed = crate::rpmdb::NotInstalled::new();
    for &i in &order {
        let mut report = rootfs::unpack(&mut tree, stage, &rpms[i], &unpack_opts)
            .with_context(|| format!("cannot unpack {}", res.plan.packages[i].package.nevra))?;
        not_installed.insert(rpms[i].clone(), std::mem::take(&mut report.not_installed));
        if !report.scriptlets.is_empty() {
            let has_sysusers = rootfs::accounts::ships_sysusers(&tree, &report.name);
            skipped_scriptlets.push(format!(
                "{} ({})",
                report.name,
                rootfs::effects::describe(&report.scriptlets, has_sysusers)
            ));
            scripts.push(rootfs::effects::Scripts {
                package: report.name.clone(),
                scriptlets: report.scriptlets.clone(),
            });
        }
        if !report.excluded.is_empty() {
            reporter.info(&format!(
                "{}: left out by exclude_paths: {}",
                report.name,
                report.excluded.join(", ")
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
    Ok(Unpacked {
        tree,
        headers,
        order,
        scripts,
        not_installed,
    })
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
        let by = d
            .package
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        reporter.info(&format!("scriptlet effect, {}{by}: {}", d.pass, d.what));
    }
    for n in &effects.not_done {
        reporter.warn(&format!(
            "scriptlet effect not done, {} ({}): {}",
            n.pass, n.package, n.why
        ));
    }
    // The recipe's own files, over whatever packages put there.
    for c in &recipe.copies {
        let n = rootfs::copy::copy_in(tree, stage, &c.src, &c.dest, c.mode)?;
        reporter.info(&format!(
            "copied {} → {} ({n} paths)",
            c.src.display(),
            c.dest
        ));
    }

    // busybox's applet links: before hardening, which drops the `rpm` applet with the package manager.
    if recipe.options.busybox_links {
        let links = rootfs::busybox::add_links(tree)?;
        reporter.info(&format!(
            "busybox applet links: {} → /{} ({} paths already there, kept)",
            links.created.len(),
            links.binary,
            links.existing.len()
        ));
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
        reporter.info(&format!(
            "cleared setuid/setgid on /{path} (was {mode:04o})"
        ));
    }
    report_package_manager_removal(&hardened, rpmdb.installed, strict, reporter)?;
    // Accounts from sysusers.d and the recipe, before owner names become ids.
    let accounts = [
        rootfs::accounts::sysusers_request(tree)?,
        rootfs::accounts::recipe_request(&recipe.accounts),
    ];
    let created = rootfs::accounts::apply(tree, stage, &accounts)?;
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
    for line in &unknown {
        reporter.warn(&format!(
            "owner not in the image's /etc/passwd or /etc/group, using root:{line}"
        ));
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
    reporter.info(&format!(
        "removed the package manager: {} ({} paths; set `package_manager = true` in [options] to keep it)",
        names.join(", "),
        hardened.removed.len()
    ));
    for dir in &hardened.kept_dirs {
        reporter.info(&format!(
            "kept /{dir}: a removed package's directory that still holds other packages' paths"
        ));
    }
    for (path, target, package) in &hardened.dangling {
        reporter.warn(&format!(
            "/{path} ({}) → {target} dangles: its target went with the package manager",
            package.as_deref().unwrap_or("no package")
        ));
    }
    let packages: Vec<&Package> = installed.iter().map(|(_, p)| *p).collect();
    let broken = rootfs::harden::broken_requires(&packages, &hardened.removed_packages);
    for b in &broken {
        reporter.warn(&format!(
            "{} requires `{}`, which only the removed package-manager package {} provided",
            b.package,
            b.requires,
            b.removed.join(", ")
        ));
    }
    if strict && !broken.is_empty() {
        bail!(
            "{} requirement(s) of packages in the image are left broken by removing the package manager (listed above) and --strict is set\n  hint: set `package_manager = true` in [options] to keep it, or leave out the packages that need it",
            broken.len()
        );
    }
    Ok(())
}

/// The image's SOURCE_DATE_EPOCH: the environment's, the recipe's, or the
/// newest build time of its packages.
fn image_epoch(recipe: &Recipe, res: &Resolved, settings: &Settings) -> u64 {
    settings
        .source_date_epoch
        .or(recipe.options.source_date_epoch)
        .unwrap_or_else(|| {
            res.plan
                .packages
                .iter()
                .map(|p| p.package.build_time)
                .max()
                .unwrap_or(0)
        })
}

/// Review the result like a person would: warnings, or an error under `--strict`.
fn review(
    tree: &Tree,
    res: &Resolved,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let expect_ca_bundle = res.plan.nevras().any(|n| n.name == "ca-certificates");
    let findings = check::check(tree, &check::CheckOptions { expect_ca_bundle });
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
    Ok(())
}

/// The arch's layer (compressed, or reused from the layer cache), config and
/// manifest. Returns the manifest digest and the SOURCE_DATE_EPOCH used.
#[allow(clippy::too_many_arguments)]
fn write_image(
    recipe: &Recipe,
    res: &Resolved,
    tree: &Tree,
    user: Option<String>,
    writer: &mut ImageWriter,
    layers: &LayerCache,
    compression: Compression,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<(Digest, u64)> {
    let epoch = image_epoch(recipe, res, settings);
    let mut config = image_config(recipe, res, epoch, settings.lock.as_ref());
    config.user = user;
    reporter.step(&format!("Writing the {} layer", res.arch));
    let (layer, origin) = writer.add_layer_cached(
        tree,
        &LayerOptions {
            source_date_epoch: epoch,
            compression,
        },
        layers,
    )?;
    if let Origin::Replaced(why) = origin {
        reporter.warn(&format!(
            "layer cache: the entry for this layer was bad ({why}); dropped it and compressed the layer again"
        ));
    }
    reporter.info(&format!(
        "layer {} ({} compressed, {} uncompressed{})",
        layer.digest,
        human_bytes(layer.size),
        human_bytes(layer.uncompressed_size),
        match origin {
            Origin::Cached => "; same tar as an earlier build, compressed blob reused",
            Origin::Compressed | Origin::Replaced(_) => "",
        }
    ));
    let image = writer.add_image(&config, &[layer])?;
    Ok((image.manifest.digest, epoch))
}

/// What one arch's build leaves for the SBOM and provenance.
struct ArchFacts {
    arch: Arch,
    /// The plan with header-filled package fields (license, vendor…).
    plan: Plan,
    distro: Option<crate::sbom::Distro>,
    manifest_digest: Digest,
    /// Per package (plan order): the fingerprint that signed it.
    signers: Vec<Option<String>>,
    epoch: u64,
    /// Packages installed and then removed with the package manager: not
    /// in the image, so not in its SBOM (the provenance still lists their
    /// RPMs, which were inputs).
    removed: BTreeSet<String>,
}

/// The image's own `os-release` (`etc/os-release`, else `usr/lib/os-release`),
/// which names the distribution for purls.
fn distro_of(tree: &Tree) -> Option<crate::sbom::Distro> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| {
            let path = tree.resolve(p).ok()?;
            match &tree.entries.get(&path)?.kind {
                rootfs::Kind::File { blob, .. } => {
                    crate::sbom::Distro::from_os_release(&blob.read_to_string().ok()?)
                }
                _ => None,
            }
        })
}

/// `path` with `.ARCH` inserted before `ext` (or appended) when there are several arches.
fn per_arch_path(path: &Path, arch: Arch, several: bool, ext: &str) -> PathBuf {
    if !several {
        return path.to_path_buf();
    }
    let s = path.to_string_lossy();
    let dotted = format!(".{ext}");
    match s.strip_suffix(&dotted) {
        Some(stem) => PathBuf::from(format!("{stem}.{arch}{dotted}")),
        None => PathBuf::from(format!("{s}.{arch}")),
    }
}

/// Remove the SBOM and provenance files a previous build left where this
/// one writes them (see the commit in [`build`]). Only files and symlinks:
/// anything else makes the build stop before the image is replaced.
fn remove_stale_supply_chain(per_arch: &[ArchFacts], settings: &Settings) -> anyhow::Result<()> {
    let mut paths = Vec::new();
    if let Some(path) = &settings.outputs.sbom {
        let ext = settings.outputs.sbom_format.extension();
        for facts in per_arch {
            paths.push(per_arch_path(path, facts.arch, per_arch.len() > 1, ext));
        }
    }
    paths.extend(settings.outputs.provenance.clone());
    for path in paths {
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(m) if m.is_file() || m.file_type().is_symlink() => std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the previous {}", path.display()))?,
            Ok(_) => bail!(
                "{} is in the way of the SBOM/provenance: it is not a file\n  hint: move it, or choose another path with --sbom/--provenance",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", path.display()))
            }
        }
    }
    Ok(())
}

fn write_supply_chain(
    recipe: &Recipe,
    resolved: &[Resolved],
    per_arch: &[ArchFacts],
    image_name: &str,
    settings: &Settings,
    built: &mut Built,
) -> anyhow::Result<()> {
    let unchecked: Vec<&str> = recipe
        .repos
        .iter()
        .filter(|r| !r.gpgcheck)
        .map(|r| r.name.as_str())
        .collect();
    let note = if unchecked.is_empty() {
        "package signatures verified for every repository".to_string()
    } else {
        format!(
            "package signatures NOT verified for repositories: {}",
            unchecked.join(", ")
        )
    };
    if let Some(path) = &settings.outputs.sbom {
        let format = settings.outputs.sbom_format;
        for (facts, res) in per_arch.iter().zip(resolved) {
            let subject = crate::sbom::Subject {
                name: image_name.to_string(),
                manifest_digest: facts.manifest_digest.clone(),
                arch: facts.arch.rpm_name().to_string(),
                distro: facts.distro.clone(),
                created: oci::config::rfc3339(facts.epoch),
                baseurls: res.repos.iter().map(|r| r.baseurl.clone()).collect(),
            };
            // What the image holds: not the removed package manager.
            let in_image = Plan {
                packages: facts
                    .plan
                    .packages
                    .iter()
                    .filter(|p| !facts.removed.contains(&p.package.nevra.name))
                    .cloned()
                    .collect(),
                ..Plan::default()
            };
            let mut doc = match format {
                SbomFormat::Spdx => crate::sbom::spdx(&in_image, &subject),
                SbomFormat::CycloneDx => crate::sbom::cyclonedx(&in_image, &subject),
            };
            match format {
                SbomFormat::Spdx => doc["creationInfo"]["comment"] = note.clone().into(),
                SbomFormat::CycloneDx => {
                    doc["metadata"]["properties"] = serde_json::json!([
                        { "name": "minibuild:signatures", "value": note },
                    ])
                }
            }
            let path = per_arch_path(path, facts.arch, per_arch.len() > 1, format.extension());
            let mut bytes = serde_json::to_vec_pretty(&doc)?;
            bytes.push(b'\n');
            crate::fsutil::write_atomic(&path, &bytes)
                .with_context(|| format!("cannot write the SBOM {}", path.display()))?;
            built.sboms.push(path);
        }
    }
    if let Some(path) = &settings.outputs.provenance {
        let mut repos = Vec::new();
        let mut rpms = Vec::new();
        for (facts, res) in per_arch.iter().zip(resolved) {
            for (r, spec) in res.repos.iter().zip(&recipe.repos) {
                repos.push(crate::provenance::RepoUse {
                    name: r.name.clone(),
                    arch: facts.arch.rpm_name().to_string(),
                    baseurl: r.baseurl.clone(),
                    via: r.via.clone(),
                    revision: r.revision.clone(),
                    repomd_digest: r.repomd_digest.clone(),
                    gpgcheck: spec.gpgcheck,
                    repo_gpgcheck: spec.repo_gpgcheck,
                    keys: spec
                        .gpgkeys
                        .iter()
                        .map(|k| k.fingerprint.clone().unwrap_or_else(|| k.url.clone()))
                        .collect(),
                });
            }
            for (p, signer) in facts.plan.packages.iter().zip(&facts.signers) {
                let pkg = &p.package;
                rpms.push(crate::provenance::Rpm {
                    nevra: pkg.nevra.to_string(),
                    arch: facts.arch.rpm_name().to_string(),
                    url: crate::http::join(&res.repos[pkg.repo].baseurl, &pkg.location),
                    digest: pkg.checksum.clone(),
                    signed_by: signer.clone(),
                });
            }
        }
        let facts = crate::provenance::Facts {
            image: image_name.to_string(),
            image_digest: built.digest.clone(),
            recipe_uri: format!("file://{}", absolute(&recipe.path).display()),
            recipe_digest: recipe.digest.clone(),
            lock: settings.lock.clone(),
            source_date_epoch: per_arch.iter().map(|f| f.epoch).max().unwrap_or(0),
            repos,
            rpms,
            legacy_signatures: recipe.options.legacy_signatures,
            allow_downgrade: settings.allow_downgrade,
        };
        let mut bytes = serde_json::to_vec_pretty(&crate::provenance::statement(&facts))?;
        bytes.push(b'\n');
        crate::fsutil::write_atomic(path, &bytes)
            .with_context(|| format!("cannot write the provenance {}", path.display()))?;
        built.provenance = Some(path.clone());
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The manifest's (and a multi-arch index's) `org.opencontainers.image.*`
/// annotations: the recipe's own `annotations` win; then `version`,
/// `source`, `revision` from the recipe's fields or the same-named labels;
/// then `title` (the name), `version` (the tag, unless `latest`) and
/// `created` (SOURCE_DATE_EPOCH).
fn provenance_annotations(recipe: &Recipe, epoch: u64) -> BTreeMap<String, String> {
    let img = &recipe.image;
    let mut a = img.annotations.clone();
    let label = |key: &str| {
        img.labels
            .get(&format!("org.opencontainers.image.{key}"))
            .cloned()
    };
    let tag_version = (img.tag != "latest").then(|| img.tag.clone());
    let derived = [
        ("title", Some(img.name.clone())),
        ("created", Some(oci::config::rfc3339(epoch))),
        (
            "version",
            img.version
                .clone()
                .or_else(|| label("version"))
                .or(tag_version),
        ),
        ("source", img.source.clone().or_else(|| label("source"))),
        (
            "revision",
            img.revision.clone().or_else(|| label("revision")),
        ),
    ];
    for (key, value) in derived {
        if let Some(value) = value {
            a.entry(format!("org.opencontainers.image.{key}"))
                .or_insert(value);
        }
    }
    a
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
        reporter.info(&format!(
            "CA trust store: {} anchors ({} for TLS), {} distrusted",
            t.anchors, t.tls, t.distrusted
        ));
        for (path, why) in &t.ignored {
            reporter.warn(&format!("trust source /{path} ignored: {why}"));
        }
    }
    match rootfs::ldcache::LdCacheOptions::fedora(arch) {
        Some(opts) => {
            if let Some(r) = rootfs::ldcache::write(tree, stage, &opts)? {
                reporter.info(&format!(
                    "/etc/ld.so.cache: {} libraries from {}",
                    r.entries,
                    r.dirs.join(" ")
                ));
            }
        }
        None => reporter.warn(&format!(
            "no /etc/ld.so.cache for {arch}: its cache flags are not known to minibuild"
        )),
    }
    Ok(())
}

fn image_config(
    recipe: &Recipe,
    res: &Resolved,
    epoch: u64,
    lock: Option<&(String, Digest)>,
) -> ImageConfig {
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
    c.healthcheck = img.healthcheck.clone();
    c.annotations = provenance_annotations(recipe, epoch);
    // Provenance in the image itself: what it was built from.
    c.annotations
        .insert(ANNOTATION_RECIPE.into(), recipe.digest.to_string());
    if let Some((_, d)) = lock {
        c.annotations.insert(ANNOTATION_LOCK.into(), d.to_string());
    }
    let on_off = |on: bool| if on { "on" } else { "off" };
    for (r, spec) in res.repos.iter().zip(&recipe.repos) {
        c.annotations.insert(
            format!("{ANNOTATION_REPO_PREFIX}{}", r.name),
            format!(
                "revision={} gpgcheck={} repo_gpgcheck={}",
                r.revision,
                on_off(spec.gpgcheck),
                on_off(spec.repo_gpgcheck)
            ),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_paths_get_the_arch_only_for_several_arches() {
        let p = Path::new("/o/app.oci.tar.spdx.json");
        assert_eq!(per_arch_path(p, Arch::X86_64, false, "spdx.json"), p);
        assert_eq!(
            per_arch_path(p, Arch::X86_64, true, "spdx.json"),
            Path::new("/o/app.oci.tar.x86_64.spdx.json")
        );
        assert_eq!(
            per_arch_path(Path::new("/o/sbom"), Arch::X86_64, true, "spdx.json"),
            Path::new("/o/sbom.x86_64")
        );
    }
}
