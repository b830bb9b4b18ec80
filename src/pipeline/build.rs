//! The stages of one arch's build: fetch, verify, unpack, review, write
//! the layer and image. Finishing the tree is [`super::finish`].

use anyhow::{bail, Context as _};

use super::debris::STAGING_PREFIX;
use super::{image_config, Resolved, Settings};
use crate::cache::Cache;
use crate::check;
use crate::digest::Digest;
use crate::fetch;
use crate::http::Client;
use crate::image::layer_cache::{LayerCache, Origin};
use crate::image::{Compression, Format, ImageWriter, LayerOptions};
use crate::package::file::RpmFile;
use crate::package::Package;
use crate::recipe::Recipe;
use crate::report::{Event, FetchTally, Reporter};
use crate::resolve::order;
use crate::rootfs::{self, Tree};
use crate::signature::Keyring;

/// What every arch's build shares.
pub(super) struct Shared<'a> {
    pub recipe: &'a Recipe,
    pub settings: &'a Settings,
    pub reporter: &'a dyn Reporter,
    pub client: Client,
    pub cache: Cache,
    pub layers: LayerCache,
    /// Per repo (recipe order).
    pub rings: Vec<Keyring>,
    pub compression: Compression,
    /// `--cache-repo`: the shared cache this build reads and fills.
    pub remote: Option<crate::cache_repo::Shared<'a>>,
}

/// The image's lower part: the core's finished tree and its layer (the
/// bytes `minibuild build CORE` writes: same recipe, same stages, same
/// epoch), or a published base's layers (unchanged) and their tree.
pub(super) struct CoreLayer {
    pub layers: Vec<crate::image::LayerInfo>,
    pub tree: Tree,
    /// Holds the tree's file contents until the app's layer is written.
    pub _staging: tempfile::TempDir,
}

/// Refuse what cannot work, before any download.
pub(super) fn refuse_early(
    recipe: &Recipe,
    resolved: &[Resolved],
    format: Format,
    settings: &Settings,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// A private staging directory in `$TMPDIR` with room for `res`'s packages.
pub(super) fn staging_dir(res: &Resolved) -> anyhow::Result<tempfile::TempDir> {
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
    Ok(staging)
}

/// `--rootfs DIR`: the final tree, for inspection.
pub(super) fn export_rootfs(
    tree: &Tree,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    if let Some(dir) = &settings.rootfs_dir {
        let written = rootfs::export::write_dir(tree, dir)?;
        for fifo in &written.skipped_fifos {
            reporter.event(Event::FifoSkipped { path: fifo.clone() });
        }
        reporter.event(Event::RootfsWritten { dir: dir.clone() });
    }
    Ok(())
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

/// Download (or find in the cache) every RPM of the plan and read its
/// headers, the one read of them in a build; in plan order.
pub fn fetch_rpms(
    client: &Client,
    cache: &Cache,
    res: &Resolved,
    jobs: usize,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<RpmFile>> {
    let total: u64 = res
        .plan
        .packages
        .iter()
        .map(|p| p.package.download_size)
        .sum();
    let progress = reporter.progress(
        Event::Fetching {
            arch: res.arch.to_string(),
            packages: res.plan.packages.len(),
            bytes: total,
        },
        total,
        true,
    );
    // Local RPMs are read where they are, by file name in their directory.
    let sources = local_sources(res);
    let requests: Vec<(&Package, &str)> = res
        .plan
        .packages
        .iter()
        .zip(&sources)
        .map(|(p, local)| match local {
            Some((base, copy)) => (copy, base.as_str()),
            None => (&p.package, res.repos[p.package.repo].baseurl.as_str()),
        })
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
        fetch::FetchEvent::Dropped { package, path, .. } => {
            reporter.event(Event::CacheEntryDropped {
                package: package.nevra.to_string(),
                path: path.to_path_buf(),
            })
        }
        _ => {}
    })?;
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.finish(tally.event(res.arch.rpm_name()));
    // The checksum proves the bytes; the header proves they are the package chosen.
    rpms.iter()
        .zip(&requests)
        .map(|(path, (package, base))| {
            crate::package::identity::open_checked(path, &package.nevra).with_context(|| {
                format!(
                    "{} from {}",
                    package.nevra,
                    crate::http::join(base, &package.location)
                )
            })
        })
        .collect()
}

/// Fill the local cache with the repo packages of `res` that the cache
/// repo has; [`fetch_rpms`] then finds them there and verifies them as it
/// verifies any cached file.
pub(super) fn from_cache_repo(
    remote: &crate::cache_repo::Shared,
    cache: &Cache,
    res: &Resolved,
    jobs: usize,
    reporter: &dyn Reporter,
) {
    let wanted: Vec<_> = res
        .plan
        .packages
        .iter()
        .zip(local_sources(res))
        .filter(|(_, local)| local.is_none())
        .map(|(p, _)| {
            let name = p.package.location.rsplit('/').next().unwrap_or_default();
            (
                p.package.checksum.clone(),
                p.package.download_size,
                fetch::cache_path(cache, &p.package),
                name.to_string(),
            )
        })
        .collect();
    remote.fetch_rpms(&wanted, jobs, &warner(remote, reporter));
}

/// Where the cache repo's warnings go.
fn warner<'r>(
    remote: &'r crate::cache_repo::Shared,
    reporter: &'r dyn Reporter,
) -> impl Fn(String) + 'r {
    move |message| {
        reporter.event(Event::CacheRepoWarning {
            repo: remote.repo.name(),
            message,
        })
    }
}

/// After the build: say what came from the cache repo, push what it lacked.
pub(super) fn share(remote: &crate::cache_repo::Shared, reporter: &dyn Reporter) {
    let hits = {
        let t = remote.tally.lock().unwrap_or_else(|e| e.into_inner());
        Event::CacheRepoHits {
            repo: remote.repo.name(),
            rpms: t.rpms,
            rpm_bytes: t.rpm_bytes,
            layers: t.layers,
            layer_bytes: t.layer_bytes,
        }
    };
    reporter.event(hits);
    let pushed = remote.push(&warner(remote, reporter));
    reporter.event(Event::CacheRepoPushed {
        repo: remote.repo.name(),
        entries: pushed.entries,
        bytes: pushed.bytes,
        present: pushed.present,
    });
}

/// Per planned package of `res`: for a local RPM, the base and package to
/// fetch it by (see [`crate::local::source`]); `None` for a repo package.
pub fn local_sources(res: &Resolved) -> Vec<Option<(String, Package)>> {
    res.plan
        .packages
        .iter()
        .map(|p| {
            let repo = res.repos.get(p.package.repo)?;
            (repo.name == crate::local::REPO)
                .then(|| crate::local::source(&repo.baseurl, &p.package))
        })
        .collect()
}

/// Check each RPM against its repo's keys, before anything of it is
/// unpacked. Per package (plan order): the fingerprint that signed it, or
/// `None` where the recipe turned checks off.
pub fn verify_signatures(
    recipe: &Recipe,
    rings: &[Keyring],
    res: &Resolved,
    rpms: &[RpmFile],
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Option<String>>> {
    let mut signers = Vec::new();
    for (rpm, p) in rpms.iter().zip(&res.plan.packages) {
        let repo = p.package.repo;
        signers.push(if crate::local::gpgcheck(recipe, repo) {
            let verified = rings[repo].verify_rpm(rpm, &p.package.nevra);
            Some(match crate::local::is_local(recipe, repo) {
                true => verified.with_context(|| {
                    format!(
                        "local RPM {} (packages.local; its keys: local_gpgkey, else the repos' gpgkey; or local_gpgcheck = false or --no-gpgcheck @local, knowingly)",
                        p.package.location
                    )
                })?,
                false => verified?,
            })
        } else {
            None
        });
    }
    let verified = signers.iter().flatten().count();
    if verified > 0 {
        reporter.event(Event::SignaturesVerified {
            verified,
            packages: signers.len(),
        });
    }
    Ok(signers)
}

/// The packages' payloads as one tree, and what the later stages need.
pub(super) struct Unpacked {
    pub tree: Tree,
    /// Per package (plan order): the package with its header's fields filled.
    pub headers: Vec<Package>,
    /// Plan indices in install order (providers first).
    pub order: Vec<usize>,
    /// Each package's scriptlets (not run), in install order.
    pub scripts: Vec<rootfs::effects::Scripts>,
    /// Per RPM path: header file indices left out on purpose, for the rpmdb.
    pub not_installed: crate::rpmdb::NotInstalled,
}

/// Unpack every package in install order, reading each header for the
/// order; report scriptlets not run and device nodes left out.
pub(super) fn unpack_all(
    recipe: &Recipe,
    res: &Resolved,
    rpms: &[RpmFile],
    stage: &mut rootfs::Staging,
    start: Option<&Tree>,
    reporter: &dyn Reporter,
) -> anyhow::Result<Unpacked> {
    let headers: Vec<Package> = rpms
        .iter()
        .zip(&res.plan.packages)
        .map(|(rpm, p)| crate::package::header::with_header_deps(rpm.headers(), &p.package))
        .collect();
    let refs: Vec<&Package> = headers.iter().collect();
    let order = order::install_order(&refs);
    // Over a published base, its tree: the new packages land on its files.
    let mut tree = start.cloned().unwrap_or_default();
    let options_of = |r: &Recipe| rootfs::UnpackOptions {
        docs: r.options.docs,
        langs: r.options.langs.clone(),
        keep_caps: r.options.keep_caps,
        exclude_paths: r.options.exclude_paths.clone(),
    };
    let app_opts = options_of(recipe);
    // The core's packages are unpacked as the core recipe says, so that
    // their files are the core layer's.
    let core_opts = recipe.core.as_deref().map(options_of);
    let core_set = super::core::core_set(res);
    let progress = reporter.progress(
        Event::Unpacking {
            packages: order.len(),
        },
        order.len() as u64,
        false,
    );
    let mut skipped_scriptlets = Vec::new();
    let mut scripts = Vec::new();
    let mut not_installed = crate::rpmdb::NotInstalled::new();
    for &i in &order {
        let unpack_opts = match &core_opts {
            Some(c) if core_set.contains(&res.plan.packages[i].package.nevra) => c,
            _ => &app_opts,
        };
        let mut report = rootfs::unpack(&mut tree, stage, &rpms[i], unpack_opts)
            .with_context(|| format!("cannot unpack {}", res.plan.packages[i].package.nevra))?;
        not_installed.insert(
            rpms[i].path().to_path_buf(),
            std::mem::take(&mut report.not_installed),
        );
        if !report.scriptlets.is_empty() {
            let has_sysusers = rootfs::accounts::ships_sysusers(&tree, &report.name);
            skipped_scriptlets.push(crate::report::NotRun {
                package: report.name.clone(),
                what: rootfs::effects::describe(&report.scriptlets, has_sysusers),
            });
            scripts.push(rootfs::effects::Scripts {
                package: report.name.clone(),
                scriptlets: report.scriptlets.clone(),
            });
        }
        if !report.excluded.is_empty() {
            reporter.event(Event::PathsExcluded {
                package: report.name.clone(),
                paths: report.excluded.clone(),
            });
        }
        for dev in &report.skipped_devices {
            reporter.event(Event::DeviceNodeSkipped {
                package: report.name.clone(),
                path: dev.clone(),
            });
        }
        progress.inc(1);
    }
    progress.finish(Event::Unpacked {
        paths: tree.entries.len(),
    });
    if !skipped_scriptlets.is_empty() {
        reporter.event(Event::ScriptletsNotRun {
            packages: skipped_scriptlets,
        });
    }
    Ok(Unpacked {
        tree,
        headers,
        order,
        scripts,
        not_installed,
    })
}

/// The image's SOURCE_DATE_EPOCH: the environment's, the recipe's, or the
/// newest build time of its packages.
pub(super) fn image_epoch(recipe: &Recipe, res: &Resolved, settings: &Settings) -> u64 {
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
pub(super) fn review(
    tree: &Tree,
    res: &Resolved,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<()> {
    let expect_ca_bundle = res.plan.nevras().any(|n| n.name == "ca-certificates");
    let findings = check::check(tree, &check::CheckOptions { expect_ca_bundle });
    for f in &findings {
        reporter.event(Event::CheckFinding {
            severity: match f.severity {
                check::Severity::Error => "error",
                check::Severity::Warning => "warning",
            }
            .into(),
            path: f.path.clone(),
            message: f.message.clone(),
        });
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
pub(super) fn write_image(
    s: &Shared,
    res: &Resolved,
    tree: &Tree,
    user: Option<String>,
    writer: &mut ImageWriter,
    core: Option<&CoreLayer>,
    stage: &mut rootfs::Staging,
) -> anyhow::Result<(Digest, u64)> {
    let (recipe, settings, reporter) = (s.recipe, s.settings, s.reporter);
    let epoch = image_epoch(recipe, res, settings);
    let mut config = image_config::image_config(recipe, res, epoch, settings.lock.as_ref());
    config.user = user;
    // Over a core: the layer holds what the whole tree adds to the core's.
    let upper;
    let tree = match core {
        None => tree,
        Some(core) => {
            upper = rootfs::layer_diff::diff(&core.tree, tree, stage)
                .context("cannot compare the image's tree with its core's")?;
            reporter.event(Event::AppLayerDiffed {
                arch: res.arch.to_string(),
                over: match &res.base {
                    Some(base) => format!("the base image {}", base.reference),
                    None => "the core".to_string(),
                },
                paths: upper.entries.len(),
                whiteouts: upper
                    .entries
                    .keys()
                    .filter(|p| {
                        let name = p.rsplit('/').next().unwrap_or(p);
                        name.starts_with(rootfs::layer_diff::WHITEOUT_PREFIX)
                    })
                    .count(),
            });
            match &res.base {
                Some(base) => image_config::over_base(&mut config, recipe, base),
                None => image_config::over_core(&mut config, recipe, res, &core.layers[0]),
            }
            &upper
        }
    };
    reporter.event(Event::WritingLayer {
        arch: res.arch.to_string(),
    });
    let layer_opts = LayerOptions {
        source_date_epoch: epoch,
        compression: s.compression,
    };
    let (layer, origin) = add_layer_shared(s, tree, &layer_opts, writer)?;
    reporter.event(Event::LayerWritten {
        arch: res.arch.to_string(),
        digest: layer.digest.to_string(),
        size: layer.size,
        uncompressed_size: layer.uncompressed_size,
        reused: matches!(origin, Origin::Cached),
    });
    let layers: Vec<crate::image::LayerInfo> = core
        .map(|c| c.layers.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(std::iter::once(layer))
        .collect();
    let image = writer.add_image(&config, &layers)?;
    Ok((image.manifest.digest, epoch))
}

/// Add `tree` as a layer through the local layer cache, after looking for
/// it in the cache repo (when there is one) and recording it there for the
/// push. The app layer and a base's core layer both come this way.
pub(super) fn add_layer_shared(
    s: &Shared,
    tree: &Tree,
    layer_opts: &LayerOptions,
    writer: &mut ImageWriter,
) -> anyhow::Result<(crate::image::LayerInfo, Origin)> {
    let reporter = s.reporter;
    // The shared cache is keyed by the tar's diff_id: one extra pass over
    // the tree (no compression) to know it.
    let remote = match &s.remote {
        Some(r) if crate::cache_repo::caches_layers(s.compression) => {
            let (diff_id, _) = crate::image::layer::tar_digest(tree, layer_opts)?;
            let key = s.layers.key(&diff_id, layer_opts);
            let fetched = r.fetch_layer(&s.layers, &key, &warner(r, reporter));
            Some((r, key, fetched))
        }
        _ => None,
    };
    let (layer, origin) = writer.add_layer_cached(tree, layer_opts, &s.layers)?;
    if let Origin::Replaced(why) = &origin {
        match &remote {
            Some((r, key, Some(bytes))) => {
                r.refused_layer(key, *bytes);
                warner(r, reporter)(format!(
                    "cache repo {}: entry {} refused ({why}); compressed the layer here",
                    r.repo.name(),
                    crate::cache_repo::layer_tag(key)
                ));
            }
            _ => reporter.event(Event::LayerCacheEntryReplaced {
                why: why.to_string(),
            }),
        }
    }
    if let Some((r, key, _)) = remote {
        // The writer's blob may be gone once the image is committed; the
        // layer cache's copy stays.
        let blob = s.layers.blob_path(&key);
        r.wrote_layer(key, &layer, blob);
    }
    Ok((layer, origin))
}
