//! The `minibuild` command: parse arguments, run one pipeline entry point,
//! print the result. stdout carries results only; everything else is stderr.

mod cli;

/// Loading a 75,000-package repo makes millions of small allocations (every
/// dependency is a few Strings); mimalloc does them about twice as fast as
/// glibc's malloc and frees them without glibc's chunk consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use cli::printer::{self, Printer};
use cli::{
    BuildArgs, CacheCmd, CheckArgs, Cli, Command, CommonArgs, DiffArgs, Format, LockArgs,
    LogFormat, PlanArgs, PushArgs, PushCmd, RegistryArgs, VendorArgs, WhyArgs,
};
use minibuild::gates::Gates;
use minibuild::lock::Lock;
use minibuild::pipeline::{self, LockFile, Settings};
use minibuild::recipe::{self, Recipe};
use minibuild::report::{human_bytes, Event, Reporter};
use minibuild::{explain, image, registry};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let log = cli.log_format;
    // Before any thread starts (see temporaries.rs).
    minibuild::temporaries::remove_on_interrupt(move |signal, removed| {
        printer::interrupted(signal, removed, log)
    });
    let outcome = run(cli);
    minibuild::temporaries::defer_to_interrupt();
    match outcome {
        Ok(code) => code,
        Err(err) => {
            printer::error(&err, log);
            ExitCode::FAILURE
        }
    }
}

/// `check`'s and `diff`'s exit status when an input (or `check --recipe`)
/// cannot be read at all, distinct from 1 ("read, and it has problems"), as
/// grep and diff do; 3 is a failed gate ([`minibuild::gates::EXIT_GATE_FAILED`]).
const CHECK_UNREADABLE: u8 = 2;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log = cli.log_format;
    match cli.command {
        Some(Command::Build(args)) => build(args, log),
        Some(Command::Plan(args)) => plan(args, log),
        Some(Command::Why(args)) => why(args, log),
        Some(Command::Lock(args)) => lock(args, log),
        Some(Command::Vendor(args)) => vendor(args, log),
        Some(Command::Check(args)) => check(args, log),
        Some(Command::Push(args)) => push_cmd(args, log),
        Some(Command::Diff(args)) => diff_cmd(args, log),
        Some(Command::Cache(cmd)) => cache_cmd(cmd),
        None if !cli.build.recipes.is_empty() => build(cli.build, log),
        None => {
            bail!("no recipe given\n  hint: `minibuild RECIPE.toml`, or `make demo` for an example; see `minibuild --help`")
        }
    }
}

fn cache_dir(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(d) => Ok(d.clone()),
        None => minibuild::cache::Cache::default_root()
            .context("cannot find a cache directory\n  hint: set --cache-dir or XDG_CACHE_HOME"),
    }
}

fn cache_cmd(cmd: CacheCmd) -> anyhow::Result<ExitCode> {
    use minibuild::cache::{Bucket, Cache};
    let (CacheCmd::Dir(a) | CacheCmd::Info(a) | CacheCmd::Clean { cache: a, .. }) = &cmd;
    let cache = Cache::new(cache_dir(&a.cache_dir)?);
    match &cmd {
        CacheCmd::Dir(_) => println!("{}", cache.root().display()),
        CacheCmd::Info(_) => {
            let usage = cache
                .usage()
                .with_context(|| format!("cannot read the cache at {}", cache.root().display()))?;
            for (bucket, u) in &usage {
                println!(
                    "{:<10} {:>7} files {:>10}",
                    bucket.dir_name(),
                    u.files,
                    human_bytes(u.bytes)
                );
            }
        }
        CacheCmd::Clean { only, .. } => {
            let buckets: &[Bucket] = if only.is_empty() { &Bucket::ALL } else { only };
            let freed = cache
                .clean(buckets)
                .with_context(|| format!("cannot clean the cache at {}", cache.root().display()))?;
            println!(
                "removed {} files, {} from {}",
                freed.files,
                human_bytes(freed.bytes),
                cache.root().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The recipe, with the command line's `--no-gpgcheck` applied.
fn load_recipe(
    path: &std::path::Path,
    common: &CommonArgs,
    reporter: &dyn Reporter,
) -> anyhow::Result<Recipe> {
    let mut recipe = recipe::load(path)?;
    for w in &recipe.warnings {
        reporter.event(Event::Warning { message: w.clone() });
    }
    recipe.disable_repos(&common.disable_repo)?;
    recipe.disable_gpgcheck(&common.no_gpgcheck)?;
    if let Some(base) = recipe.image.base.clone() {
        // The flags name repos of the app recipe; the core gets those it has too.
        let mut core = recipe::load(&base)
            .with_context(|| format!("cannot load the core recipe of {}", path.display()))?;
        let has = |n: &String| core.repos.iter().any(|r| &r.name == n);
        let disable: Vec<String> = common
            .disable_repo
            .iter()
            .filter(|n| has(n))
            .cloned()
            .collect();
        let nocheck: Vec<String> = common
            .no_gpgcheck
            .iter()
            .filter(|n| has(n))
            .cloned()
            .collect();
        core.disable_repos(&disable)?;
        core.disable_gpgcheck(&nocheck)?;
        recipe.set_core(core)?;
    }
    Ok(recipe)
}

/// The settings every command shares; a build adds its own fields with
/// `Settings { …, ..settings(…)? }`, so settings are built once.
fn settings(
    common: &CommonArgs,
    waiting: Option<minibuild::http::WaitNotice>,
    lock: Option<&LockFile>,
) -> anyhow::Result<Settings> {
    let cache_dir = cache_dir(&common.cache_dir)?;
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => Some(s.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH=`{s}` is not a number of seconds since 1970")
        })?),
        _ => None,
    };
    Ok(Settings {
        cache_dir,
        baseurl_overrides: common.baseurl.iter().cloned().collect::<BTreeMap<_, _>>(),
        jobs: common.jobs.max(1),
        source_date_epoch,
        strict: false,
        rootfs_dir: None,
        policy: common
            .policy
            .as_deref()
            .map(minibuild::policy::Policy::load)
            .transpose()?,
        outputs: Default::default(),
        lock: lock.map(|l| l.source.clone()),
        allow_downgrade: common.allow_downgrade,
        net: minibuild::http::ClientOptions {
            timeouts: minibuild::http::Timeouts {
                idle: std::time::Duration::from_secs(common.timeout.max(1)),
                ..Default::default()
            },
            tls: minibuild::http::TlsTrust {
                ca: common.tls.ca.clone(),
                cert_dir: common.tls.cert_dir.clone(),
            },
            fence: Default::default(),
            waiting,
            offline: common.offline,
        },
        replace: Default::default(),
        cache_repo: None,
        // A base image is pulled with the auth files' credentials and the
        // TLS flags; `build` adds the --push credential flags.
        registry: registry::PushOptions {
            cert_dir: common.tls.cert_dir.clone(),
            ca: common.tls.ca.clone(),
            ..registry::PushOptions::default()
        },
        repo_memo: None,
    })
}

fn build(args: BuildArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    if args.attach_sbom && args.push.is_none() {
        bail!(
            "--attach-sbom attaches the SBOM to the image in a registry, so it needs --push\n  \
             hint: add --push REGISTRY/REPO:TAG, or attach later with `minibuild push IMAGE REF --attach-sbom FILE`"
        );
    }
    if let Some(dir) = &args.output_dir {
        // As `mkdir -p`: a CI step names where its images go.
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create --output-dir {}\n  hint: name a directory you can write",
                dir.display()
            )
        })?;
    }
    let path = match &args.recipes[..] {
        [one] if !one.is_dir() => one.as_path(),
        [] => bail!("no recipe given"),
        _ => return cli::multi::build(args, log),
    };
    let reporter = Printer::new(log, args.common.quiet);
    let recipe = load_recipe(path, &args.common, &reporter)?;
    let lock = LockFile::beside(&recipe, args.lock.no_lock)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&recipe, args.format, args.output_dir.as_deref()));
    // Read the credentials before the build: a bad file fails fast, and
    // --password-stdin is read once for both --push and --cache-repo.
    let registry_opts = (args.push.is_some() || args.cache_repo.is_some())
        .then(|| push_options(&args.push_args.registry, &args.common.tls))
        .transpose()?;
    let cache_repo = match (&args.cache_repo, &registry_opts) {
        (Some(s), Some(opts)) => Some(
            minibuild::cache_repo::CacheRepo::parse(s, opts.clone()).map_err(anyhow::Error::msg)?,
        ),
        _ => None,
    };
    let base_registry = match &registry_opts {
        Some(opts) => opts.clone(),
        None if recipe.image.base_image.is_some() => {
            push_options(&args.push_args.registry, &args.common.tls)?
        }
        None => registry::PushOptions::default(),
    };
    let settings = Settings {
        cache_repo,
        registry: base_registry,
        strict: args.strict,
        rootfs_dir: args.rootfs.clone(),
        outputs: supply_chain_outputs(&args.supply, &output),
        replace: if args.force {
            image::Replace::AnyFile
        } else {
            image::Replace::default()
        },
        ..settings(&args.common, reporter.waiting_notice(), lock.as_ref())?
    };
    let format = image_format(args.format);
    // A wrong -o fails now, not after the downloads.
    image::destination::check(&output, format, settings.replace)?;
    let resolved = pipeline::resolve_or_lock(&recipe, lock.as_ref(), &settings, &reporter)?;
    let compression = compression(args.compression);
    // Parse the push target before the build, so a typo fails fast.
    let push_to = args.push.as_deref().map(parse_reference).transpose()?;
    if push_to.is_some() && format == image::Format::DockerArchive {
        bail!("--push needs an OCI image: use --format oci-archive or oci");
    }
    let push_opts = push_to.as_ref().and(registry_opts);
    if !recipe.gates.is_empty() && format == image::Format::DockerArchive {
        bail!("the recipe's [check] gates read the image back as OCI: use --format oci-archive or oci");
    }
    let built = pipeline::build(
        &recipe,
        &resolved,
        &output,
        format,
        compression,
        &settings,
        &reporter,
    )?;
    if !recipe.gates.is_empty() {
        if let Some(err) = build_gates(&built.output, &recipe, &reporter)? {
            printer::error(&err, log);
            return Ok(ExitCode::from(minibuild::gates::EXIT_GATE_FAILED));
        }
    }
    match push_to.zip(push_opts) {
        None => println!("{}", built.digest),
        Some((reference, opts)) => {
            let sboms = if args.attach_sbom {
                built.sboms.as_slice()
            } else {
                &[]
            };
            let pinned = push(
                &built.output,
                &reference,
                sboms,
                &args.push_args,
                &opts,
                &reporter,
            )?;
            println!("{pinned}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn image_format(f: Format) -> image::Format {
    match f {
        Format::OciArchive => image::Format::OciArchive,
        Format::Oci => image::Format::Oci,
        Format::DockerArchive => image::Format::DockerArchive,
    }
}

fn compression(c: cli::Compression) -> image::Compression {
    match c {
        cli::Compression::Gzip => image::Compression::Gzip,
        cli::Compression::Zstd => image::Compression::Zstd,
    }
}

/// SBOM and provenance paths: given, or beside the image (`OUTPUT.spdx.json`, `OUTPUT.intoto.json`).
fn supply_chain_outputs(
    args: &cli::SupplyChainArgs,
    output: &Path,
) -> pipeline::SupplyChainOutputs {
    let sbom_format = match args.sbom_format {
        cli::SbomFormat::Spdx => pipeline::SbomFormat::Spdx,
        cli::SbomFormat::Cyclonedx => pipeline::SbomFormat::CycloneDx,
    };
    let beside = |ext: &str| {
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        output.with_file_name(format!("{name}.{ext}"))
    };
    pipeline::SupplyChainOutputs {
        sbom: (!args.no_sbom).then(|| {
            args.sbom
                .clone()
                .unwrap_or_else(|| beside(sbom_format.extension()))
        }),
        sbom_format,
        provenance: (!args.no_provenance).then(|| {
            args.provenance
                .clone()
                .unwrap_or_else(|| beside("intoto.json"))
        }),
    }
}

fn parse_reference(s: &str) -> anyhow::Result<registry::Reference> {
    s.parse()
        .with_context(|| format!("invalid image reference `{s}`\n  hint: write REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/app:1.0"))
}

fn push_cmd(args: PushCmd, log: LogFormat) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    let reporter = Printer::new(log, false);
    let opts = push_options(&args.push.registry, &args.tls)?;
    let pinned = push(
        &args.image,
        &reference,
        &args.attach_sbom,
        &args.push,
        &opts,
        &reporter,
    )?;
    println!("{pinned}");
    Ok(ExitCode::SUCCESS)
}

/// How to reach the registry, with the credentials given by flag, file or stdin.
fn push_options(args: &RegistryArgs, tls: &cli::TlsArgs) -> anyhow::Result<registry::PushOptions> {
    use registry::auth::{CredSource, Credentials};
    let creds = if let Some(c) = &args.creds {
        Some((Credentials::from_flag(c)?, CredSource::Flag))
    } else if let Some(path) = &args.creds_file {
        Some((
            Credentials::from_file(path)?,
            CredSource::CredsFile(path.clone()),
        ))
    } else if let (Some(user), true) = (&args.username, args.password_stdin) {
        let stdin = std::io::stdin().lock();
        Some((Credentials::from_stdin(user, stdin)?, CredSource::Stdin))
    } else {
        None
    };
    Ok(registry::PushOptions {
        creds,
        insecure: args.insecure,
        cert_dir: tls.cert_dir.clone(),
        ca: tls.ca.clone(),
        ..registry::PushOptions::default()
    })
}

/// Push `image` (and attach `sboms`), write the CI files; returns
/// `REGISTRY/REPO:TAG@sha256:…` for stdout.
fn push(
    image: &Path,
    reference: &registry::Reference,
    sboms: &[PathBuf],
    args: &PushArgs,
    opts: &registry::PushOptions,
    reporter: &dyn Reporter,
) -> anyhow::Result<String> {
    reporter.event(Event::Pushing {
        image: image.to_path_buf(),
        reference: reference.to_string(),
    });
    let pushed = registry::push_attaching(image, reference, sboms, opts, &|ev| {
        reporter.event(Event::PushStep {
            message: ev.to_string(),
        })
    })?;
    reporter.event(Event::Pushed {
        blobs_uploaded: pushed.blobs_uploaded,
        bytes_uploaded: pushed.bytes_uploaded,
        blobs_skipped: pushed.blobs_skipped,
    });
    for a in &pushed.attached {
        reporter.event(Event::Attached {
            message: a.to_string(),
        });
    }
    if let Some(p) = &args.digestfile {
        registry::write_digestfile(p, &pushed)?;
    }
    if let Some(p) = &args.image_refs {
        registry::write_image_refs(p, &pushed)?;
    }
    Ok(pushed.pinned())
}

/// `NAME.oci.tar` (or the format's extension), in `dir` or the current directory.
fn default_output(recipe: &Recipe, format: Format, dir: Option<&Path>) -> PathBuf {
    let ext = match format {
        Format::OciArchive => "oci.tar",
        Format::Oci => "oci",
        Format::DockerArchive => "docker.tar",
    };
    let name = format!("{}.{ext}", recipe.image.name);
    match dir {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

fn plan(args: PlanArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    let reporter = Printer::new(log, args.common.quiet || args.json);
    let recipe = load_recipe(&args.recipe, &args.common, &reporter)?;
    let lock = LockFile::beside(&recipe, args.lock.no_lock)?;
    let settings = settings(&args.common, reporter.waiting_notice(), lock.as_ref())?;
    let resolved = pipeline::resolve_or_lock(&recipe, lock.as_ref(), &settings, &reporter)?;
    let views = pipeline::plan(&recipe, &resolved, &settings, &reporter)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &views)?;
        writeln!(out)?;
    } else {
        for v in &views {
            write!(out, "{}", explain::table(v))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn why(args: WhyArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    let recipe = load_recipe(
        &args.recipe,
        &args.common,
        &Printer::new(log, args.common.quiet),
    )?;
    let lock_path = Lock::path_for(&recipe.path);
    let mut found_chains: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    if !args.lock.no_lock && lock_path.is_file() {
        // Offline: the lock records each package's reason and requires graph.
        let lock = Lock::read(&lock_path)?;
        lock.drift(&recipe, &lock_path)?;
        for &arch in &recipe.image.arch {
            let graph = lock.graph(arch, &lock_path)?.with_context(|| {
                format!(
                    "{} records no dependencies (written by an older minibuild), so `why` cannot answer from it\n  hint: run `minibuild lock {} --update`, or `minibuild why --no-lock` to resolve afresh",
                    lock_path.display(),
                    args.recipe.display()
                )
            })?;
            found_chains.push((arch.to_string(), explain::why_locked(&graph, &args.package)));
        }
    } else {
        let settings = settings(&args.common, None, None)?;
        let reporter = Printer::new(log, true);
        for r in pipeline::resolve(&recipe, &settings, &reporter)? {
            found_chains.push((r.arch.to_string(), explain::why(&r.plan, &args.package)));
        }
    }
    let mut out = std::io::stdout().lock();
    let mut found = false;
    for (arch, chains) in found_chains {
        for chain in chains {
            found = true;
            writeln!(out, "{arch}: {}", chain.join(" → "))?;
        }
    }
    if !found {
        bail!(
            "`{}` is not installed by {}\n  hint: `minibuild plan {}` lists what is",
            args.package,
            args.recipe.display(),
            args.recipe.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn vendor(args: VendorArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    let reporter = Printer::new(log, args.common.quiet);
    let recipe = load_recipe(&args.recipe, &args.common, &reporter)?;
    let Some(lock) = LockFile::beside(&recipe, false)? else {
        bail!(
            "{} has no lock: vendor copies exactly the locked packages\n  hint: run `minibuild lock {}` first",
            recipe.path.display(),
            recipe.path.display()
        );
    };
    let settings = settings(&args.common, reporter.waiting_notice(), Some(&lock))?;
    let resolved = pipeline::resolve_or_lock(&recipe, Some(&lock), &settings, &reporter)?;
    let vendored = minibuild::vendor::vendor(&recipe, &resolved, &settings, &args.dir, &reporter)?;
    for v in &vendored {
        reporter.event(Event::Vendored {
            dir: args.dir.clone(),
            repo: v.repo.clone(),
            arch: v.arch.clone(),
            packages: v.packages,
            bytes: v.bytes,
        });
    }
    println!("{}", display(&args.dir));
    Ok(ExitCode::SUCCESS)
}

fn lock(args: LockArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    let reporter = Printer::new(log, args.common.quiet);
    let recipe = load_recipe(&args.recipe, &args.common, &reporter)?;
    let settings = settings(&args.common, reporter.waiting_notice(), None)?;
    let lock_path = Lock::path_for(&recipe.path);
    if lock_path.exists() && !args.update {
        let existing = Lock::read(&lock_path)?;
        existing.drift(&recipe, &lock_path)?;
        reporter.event(Event::LockUpToDate {
            path: lock_path.clone(),
        });
        return Ok(ExitCode::SUCCESS);
    }
    // The lock being replaced, to say what changed (unreadable: say so).
    let previous = match lock_path.exists() {
        false => None,
        true => match Lock::read(&lock_path) {
            Ok(l) => Some(l),
            Err(e) => {
                reporter.event(Event::Warning {
                    message: format!("{:#}; cannot say what changed", anyhow::Error::from(e)),
                });
                None
            }
        },
    };
    let resolved = pipeline::resolve(&recipe, &settings, &reporter)?;
    let lock = pipeline::lock_of(&recipe, &resolved);
    pipeline::sweep_beside_lock(&lock_path, &reporter);
    lock.write(&lock_path)?;
    reporter.event(Event::LockWritten {
        path: lock_path.clone(),
        packages: lock.packages.len(),
    });
    if let Some(old) = &previous {
        print!("{}", minibuild::lock_diff::diff(old, &lock));
    }
    println!("{}", display(&lock_path));
    Ok(ExitCode::SUCCESS)
}

fn check(args: CheckArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    // The gates: the recipe's [check] table, flags over it.
    let from_recipe = match &args.recipe {
        Some(path) => match recipe::load(path) {
            Ok(r) => r.gates,
            Err(err) => {
                printer::error(&anyhow::Error::from(err), log);
                return Ok(ExitCode::from(CHECK_UNREADABLE));
            }
        },
        None => Gates::default(),
    };
    let gates = from_recipe.overridden_by(args.gates.gates());
    let image = match image::load::load(&args.image) {
        Ok(image) => image,
        Err(err) => {
            printer::error(&anyhow::Error::from(err), log);
            return Ok(ExitCode::from(CHECK_UNREADABLE));
        }
    };
    let opts = minibuild::check::CheckOptions {
        expect_ca_bundle: args.tls,
    };
    let mut out = std::io::stdout().lock();
    let mut errors = 0;
    let mut failed_gates = 0;
    for p in &image.platforms {
        let findings = minibuild::check::check_loaded(p, &opts);
        for f in &findings {
            writeln!(out, "{} {}: {f}", p.platform, severity(f.severity))?;
        }
        errors += findings
            .iter()
            .filter(|f| f.severity == minibuild::check::Severity::Error)
            .count();
        let outcome = minibuild::gates::evaluate(p, &gates);
        for w in &outcome.warnings {
            writeln!(out, "{} warning: {w}", p.platform)?;
        }
        for f in &outcome.failures {
            writeln!(out, "{} gate failed: {f}", p.platform)?;
        }
        failed_gates += outcome.failures.len();
        if findings.is_empty() && outcome.failures.is_empty() {
            let figures = if outcome.figures.is_empty() {
                String::new()
            } else {
                format!("; {}", outcome.figures.join(", "))
            };
            writeln!(
                out,
                "{} {}: ok ({} paths{figures})",
                p.platform,
                p.manifest_digest,
                p.tree.entries.len()
            )?;
        }
    }
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else if failed_gates > 0 {
        ExitCode::from(minibuild::gates::EXIT_GATE_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `diff`'s exit status: 0 identical, 1 different, 2 (like diff(1)) when
/// an input cannot be read.
fn diff_cmd(args: DiffArgs, log: LogFormat) -> anyhow::Result<ExitCode> {
    let compare = || -> anyhow::Result<minibuild::diff::Report> {
        // Credentials are read only when a side is a reference: a bad
        // --creds-file must not fail a diff of two local files.
        let pulls = [&args.a, &args.b].into_iter().any(|arg| {
            matches!(
                minibuild::diff::input(arg),
                Ok(minibuild::diff::Input::Reference(_))
            )
        });
        let registry = if pulls {
            push_options(&args.registry, &args.tls)?
        } else {
            registry::PushOptions::default()
        };
        let cache_dir = cache_dir(&args.cache.cache_dir)?;
        let pull = minibuild::base_image::PullOptions {
            registry: &registry,
            cache_dir: &cache_dir,
            offline: false,
        };
        minibuild::diff::diff(&args.a, &args.b, &pull)
    };
    let report = match compare() {
        Ok(r) => r,
        Err(err) => {
            printer::error(&err, log);
            return Ok(ExitCode::from(CHECK_UNREADABLE));
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
    }
    Ok(if report.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `build`'s run of the recipe's [check] gates on the image it wrote: the
/// failures, as one error naming each gate, or `None` when they pass.
fn build_gates(
    output: &Path,
    recipe: &Recipe,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<anyhow::Error>> {
    let image = image::load::load(output).with_context(|| {
        format!(
            "cannot read {} back to run its [check] gates",
            output.display()
        )
    })?;
    let mut failed = Vec::new();
    for p in &image.platforms {
        let outcome = minibuild::gates::evaluate(p, &recipe.gates);
        for w in outcome.warnings {
            reporter.event(Event::Warning {
                message: format!("[check] {}: {w}", p.platform),
            });
        }
        if outcome.failures.is_empty() {
            reporter.event(Event::GatesPassed {
                platform: p.platform.clone(),
                figures: outcome.figures,
            });
        }
        failed.extend(
            outcome
                .failures
                .iter()
                .map(|f| format!("  {} {f}", p.platform)),
        );
    }
    if failed.is_empty() {
        return Ok(None);
    }
    Ok(Some(anyhow::anyhow!(
        "{} fails the [check] gates of {}:\n{}\n  hint: the image is kept; `minibuild check {} --recipe {}` runs the gates again",
        output.display(),
        recipe.path.display(),
        failed.join("\n"),
        output.display(),
        recipe.path.display()
    )))
}

fn severity(s: minibuild::check::Severity) -> &'static str {
    match s {
        minibuild::check::Severity::Error => "error",
        minibuild::check::Severity::Warning => "warning",
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
