//! `minibuild build a.toml b.toml …` (or a directory of recipes): many
//! images in one run. The recipes share one [`RepoMemo`] (each repo's
//! metadata loaded once), the RPM cache (each RPM fetched once, see
//! `fetch.rs`), and `--jobs`: up to `jobs` recipes build at once (no more
//! than there are cores), each fetching with its share of the connections. A recipe that fails is
//! reported by name and the others still finish; stdout gets one line per
//! built recipe, in the order given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};

use super::printer::{self, Printer};
use super::{BuildArgs, LogFormat};
use minibuild::cache_repo::CacheRepo;
use minibuild::pipeline::{self, LockFile, RepoMemo, Settings};
use minibuild::recipe::Recipe;
use minibuild::report::ForRecipe;
use minibuild::{image, registry};

/// What `--push` must contain with several recipes: each image's name.
const NAME_PLACEHOLDER: &str = "{name}";

/// One recipe of the run, once its file is read.
struct Planned {
    recipe: Recipe,
    output: PathBuf,
    push_to: Option<registry::Reference>,
}

pub fn build(args: BuildArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    refuse_single_file_flags(&args)?;
    let paths = expand(&args.recipes)?;
    // Bars from recipes running at once would draw over each other: lines.
    let log = match log {
        LogFormat::Auto => LogFormat::Plain,
        other => other,
    };
    let printer = Printer::new(log, args.common.quiet);
    let labels: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let format = crate::image_format(args.format);
    if args.push.is_some() && format == image::Format::DockerArchive {
        bail!("--push needs an OCI image: use --format oci-archive or oci");
    }
    let planned: Vec<anyhow::Result<Planned>> = paths
        .iter()
        .zip(&labels)
        .map(|(path, label)| {
            let reporter = ForRecipe {
                recipe: label.clone(),
                inner: &printer,
            };
            plan_one(path, &args, &reporter)
        })
        .collect();
    refuse_shared_outputs(&planned, &labels)?;
    // Credentials are read once (stdin can be read only once), before any
    // build: for --push, --cache-repo, and for pulling a published base
    // with the same flags a single build uses.
    let needs_registry = args.push.is_some()
        || args.cache_repo.is_some()
        || planned.iter().any(|p| {
            p.as_ref()
                .is_ok_and(|p| p.recipe.image.base_image.is_some())
        });
    let registry_opts = needs_registry
        .then(|| crate::push_options(&args.push_args.registry, &args.common.tls))
        .transpose()?;
    // One value for every recipe: its clones share what the run looked up
    // and pushed (see minibuild::cache_repo).
    let cache_repo = match (&args.cache_repo, &registry_opts) {
        (Some(s), Some(opts)) => {
            Some(CacheRepo::parse(s, opts.clone()).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };

    // Writing an image is CPU-bound (unpacking, compressing with a thread
    // per core): more images at once than cores only costs CPU time (the
    // bench measured 40% more with 6 on 2 cores). The connections of
    // `--jobs` are shared among the recipes running.
    let jobs = args.common.jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let width = jobs.min(paths.len()).min(cores).max(1);
    let memo = Arc::new(RepoMemo::default());
    let items: Vec<(usize, &anyhow::Result<Planned>)> = planned.iter().enumerate().collect();
    let results = minibuild::pool::map(
        &items,
        width,
        |_| false,
        |_, &(i, planned)| -> anyhow::Result<String> {
            let planned = planned.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let reporter = ForRecipe {
                recipe: labels[i].clone(),
                inner: &printer,
            };
            let run = Run {
                args: &args,
                printer: &printer,
                reporter: &reporter,
                jobs: (jobs / width).max(1),
                memo: &memo,
                registry: registry_opts.as_ref(),
                cache_repo: cache_repo.as_ref(),
            };
            build_one(&run, planned)
        },
    );

    let mut out = std::io::stdout().lock();
    let mut failed = Vec::new();
    for (label, result) in labels.iter().zip(results) {
        match result {
            Some(Ok(line)) => {
                use std::io::Write as _;
                writeln!(out, "{label} {line}")?;
            }
            Some(Err(err)) => {
                printer::error(&err.context(format!("{label} was not built")), log);
                failed.push(label.as_str());
            }
            None => failed.push(label.as_str()),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} recipes failed: {}\n  hint: the other images were written; the errors above say why each failed",
            failed.len(),
            labels.len(),
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Flags that name one file cannot serve several images.
fn refuse_single_file_flags(args: &BuildArgs) -> anyhow::Result<()> {
    let one_file: [(&str, bool); 6] = [
        ("-o/--output", args.output.is_some()),
        ("--sbom", args.supply.sbom.is_some()),
        ("--provenance", args.supply.provenance.is_some()),
        ("--rootfs", args.rootfs.is_some()),
        ("--digestfile", args.push_args.digestfile.is_some()),
        ("--image-refs", args.push_args.image_refs.is_some()),
    ];
    if let Some((flag, _)) = one_file.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} names one file, and this run builds several recipes\n  \
             hint: each image is written under its default name (NAME.oci.tar, with its SBOM and provenance beside it); use --output-dir DIR to choose the directory, or build one recipe at a time"
        );
    }
    if let Some(reference) = &args.push {
        if !reference.contains(NAME_PLACEHOLDER) {
            bail!(
                "--push {reference} names one image, and this run builds several recipes\n  \
                 hint: put {NAME_PLACEHOLDER} in it for each recipe's image name, e.g. --push 127.0.0.1:5000/{NAME_PLACEHOLDER}:latest"
            );
        }
    }
    if args.attach_sbom && args.push.is_none() {
        bail!("--attach-sbom attaches the SBOM to the image in a registry, so it needs --push");
    }
    Ok(())
}

/// The recipe files named: files as given, directories as every `*.toml`
/// in them, sorted by name.
fn expand(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for path in given {
        if !path.is_dir() {
            paths.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list the recipes in {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        if found.is_empty() {
            bail!(
                "{} holds no recipe (*.toml)\n  hint: name recipe files, or a directory of them",
                path.display()
            );
        }
        found.sort();
        paths.extend(found);
    }
    Ok(paths)
}

/// Read the recipe and decide where its image goes and is pushed.
fn plan_one(path: &Path, args: &BuildArgs, reporter: &ForRecipe<'_>) -> anyhow::Result<Planned> {
    let recipe = crate::load_recipe(path, &args.common, reporter)?;
    let output = crate::default_output(&recipe, args.format, args.output_dir.as_deref());
    let push_to = args
        .push
        .as_deref()
        .map(|r| crate::parse_reference(&r.replace(NAME_PLACEHOLDER, &recipe.image.name)))
        .transpose()?;
    Ok(Planned {
        recipe,
        output,
        push_to,
    })
}

/// Two recipes writing one path would overwrite each other: refuse the
/// run before anything is built.
fn refuse_shared_outputs(
    planned: &[anyhow::Result<Planned>],
    labels: &[String],
) -> anyhow::Result<()> {
    let mut seen: BTreeMap<&Path, &str> = BTreeMap::new();
    for (p, label) in planned.iter().zip(labels) {
        let Ok(p) = p else { continue };
        if let Some(first) = seen.insert(&p.output, label) {
            bail!(
                "{first} and {label} would both write {} (their [image] names are the same)\n  \
                 hint: give each recipe its own [image] name, or build them in separate runs with -o",
                p.output.display()
            );
        }
    }
    Ok(())
}

/// What every recipe's build shares.
struct Run<'a> {
    args: &'a BuildArgs,
    printer: &'a Printer,
    reporter: &'a ForRecipe<'a>,
    /// Fetch connections for this recipe: its share of `--jobs`.
    jobs: usize,
    memo: &'a Arc<RepoMemo>,
    /// Credentials and TLS for --push and for pulling a base image.
    registry: Option<&'a registry::PushOptions>,
    /// `--cache-repo`, shared by every recipe of the run.
    cache_repo: Option<&'a CacheRepo>,
}

/// Resolve (or read the lock), build, and push one recipe; the text after
/// `RECIPE ` on stdout: the digest, or the pushed `REF@DIGEST`.
fn build_one(run: &Run<'_>, planned: &Planned) -> anyhow::Result<String> {
    let args = run.args;
    let recipe = &planned.recipe;
    let lock = LockFile::beside(recipe, args.lock.no_lock)?;
    let shared = crate::settings(&args.common, run.printer.waiting_notice(), lock.as_ref())?;
    let settings = Settings {
        registry: run
            .registry
            .cloned()
            .unwrap_or_else(|| shared.registry.clone()),
        strict: args.strict,
        jobs: run.jobs,
        outputs: crate::supply_chain_outputs(&args.supply, &planned.output),
        replace: if args.force {
            image::Replace::AnyFile
        } else {
            image::Replace::default()
        },
        repo_memo: Some(run.memo.clone()),
        cache_repo: run.cache_repo.cloned(),
        ..shared
    };
    let format = crate::image_format(args.format);
    image::destination::check(&planned.output, format, settings.replace)?;
    let resolved = pipeline::resolve_or_lock(recipe, lock.as_ref(), &settings, run.reporter)?;
    let built = pipeline::build(
        recipe,
        &resolved,
        &planned.output,
        format,
        crate::compression(args.compression),
        &settings,
        run.reporter,
    )?;
    // The recipe's [check] gates, as a single build runs them (image kept).
    if !recipe.gates.is_empty() {
        if let Some(err) = crate::build_gates(&built.output, recipe, run.reporter)? {
            return Err(err);
        }
    }
    match (&planned.push_to, run.registry) {
        (Some(reference), Some(opts)) => {
            let sboms = if args.attach_sbom {
                built.sboms.as_slice()
            } else {
                &[]
            };
            crate::push(
                &built.output,
                reference,
                sboms,
                &args.push_args,
                opts,
                run.reporter,
            )
        }
        _ => Ok(built.digest.to_string()),
    }
}
