//! Command-line arguments. Parsed here, turned into plain options for the
//! pipeline in `main.rs`; no work happens in this module. [`printer`]
//! renders the pipeline's events on stderr.

pub mod multi;
pub mod printer;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "minibuild",
    version,
    about = "Build minimal, reproducible OCI images from RPM repositories — no daemon, no root",
    args_conflicts_with_subcommands = true,
    after_help = "`minibuild RECIPE` is short for `minibuild build RECIPE`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub build: BuildArgs,
    /// How stderr reports progress: `auto` (bars on a terminal, plain lines
    /// otherwise), `plain`, or `json` (one JSON object per line, with an
    /// `"event"` field, for CI systems that parse logs). stdout is unchanged.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        env = "MINIBUILD_LOG_FORMAT",
        default_value_t = LogFormat::Auto
    )]
    pub log_format: LogFormat,
}

impl Cli {
    /// Parse the command line. `--log-format` is global; clap accepts it
    /// after a subcommand or before a recipe, and this moves it from before
    /// a subcommand (`minibuild --log-format json build …`) to after it, as
    /// `args_conflicts_with_subcommands` would otherwise refuse it there.
    pub fn parse_args() -> Self {
        use clap::CommandFactory as _;
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        Cli::parse_from(hoist_log_format(std::env::args_os().collect(), &names))
    }
}

/// `PROG --log-format V SUB …` (or `--log-format=V`) → `PROG SUB --log-format V …`.
fn hoist_log_format(
    mut args: Vec<std::ffi::OsString>,
    subcommands: &[String],
) -> Vec<std::ffi::OsString> {
    let flag_len = match args.get(1).and_then(|a| a.to_str()) {
        Some("--log-format") => 2,
        Some(a) if a.starts_with("--log-format=") => 1,
        _ => return args,
    };
    let is_sub = args
        .get(1 + flag_len)
        .and_then(|a| a.to_str())
        .is_some_and(|a| subcommands.iter().any(|s| s == a));
    if is_sub && args.len() > flag_len + 1 {
        args[1..=flag_len + 1].rotate_left(flag_len);
    }
    args
}

/// The forms of stderr's progress log (`--log-format`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Plain,
    Json,
}

// Parsed once per run: boxing BuildArgs would save nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve, download, unpack and write the image (the default command).
    Build(BuildArgs),
    /// Show what would be installed and why, without downloading packages.
    Plan(PlanArgs),
    /// Show the dependency chains that bring PACKAGE into the image.
    Why(WhyArgs),
    /// Resolve and write RECIPE.lock beside the recipe.
    Lock(LockArgs),
    /// Copy the locked RPMs and their repos' metadata into DIR, for builds with no network.
    Vendor(VendorArgs),
    /// Check an image (OCI layout or oci-archive): libraries present, no setuid, no package manager.
    Check(CheckArgs),
    /// Push an existing image (OCI layout or oci-archive) to a registry.
    Push(PushCmd),
    /// Show what changed between two images (OCI layout or oci-archive) or two locks.
    ///
    /// Packages added, removed, upgraded and downgraded with their installed
    /// sizes (from each image's rpmdb, or the locks), files, config and
    /// layers. Exit status as diff(1): 0 identical, 1 different, 2 when an
    /// input cannot be read.
    Diff(DiffArgs),
    /// Show or empty the cache (metadata, RPMs, compressed layers).
    #[command(subcommand)]
    Cache(CacheCmd),
}

#[derive(Subcommand, Debug, Clone)]
pub enum CacheCmd {
    /// Print the cache directory.
    Dir(CacheArgs),
    /// Files and bytes per bucket.
    Info(CacheArgs),
    /// Remove cached entries: every bucket, or those named with --only.
    Clean {
        #[command(flatten)]
        cache: CacheArgs,
        /// Only these buckets (repeatable): repodata, repomd, rpms, layers.
        #[arg(long, value_name = "BUCKET", value_parser = parse_bucket)]
        only: Vec<minibuild::cache::Bucket>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// The cache [default: $XDG_CACHE_HOME/minibuild].
    #[arg(long, env = "MINIBUILD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

fn parse_bucket(s: &str) -> Result<minibuild::cache::Bucket, String> {
    use minibuild::cache::Bucket;
    Bucket::ALL
        .into_iter()
        .find(|b| b.dir_name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = Bucket::ALL.iter().map(|b| b.dir_name()).collect();
            format!(
                "unknown cache bucket `{s}` (expected one of {})",
                names.join(", ")
            )
        })
}

#[derive(Args, Debug, Clone)]
pub struct PushCmd {
    pub image: PathBuf,
    /// REGISTRY/REPO:TAG (the registry host is always explicit).
    pub reference: String,
    /// Attach this SBOM (SPDX or CycloneDX JSON) to the manifest it describes, as an OCI artifact (repeatable: one per arch).
    #[arg(long, value_name = "FILE")]
    pub attach_sbom: Vec<PathBuf>,
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Extra TLS trust, for repos and registries alike.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Directory of extra CA certificates (*.crt) and client certificates (*.cert/*.key), as in containers-certs.d; used for repos and the registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// An extra CA certificate (PEM) to trust, for repos and the registry (added to the system's).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// How to reach the registry, for `--push` and `push`.
#[derive(Args, Debug, Clone, Default)]
pub struct PushArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Write the pushed digest to PATH.
    #[arg(long, value_name = "PATH")]
    pub digestfile: Option<PathBuf>,
    /// Write the pushed REGISTRY/REPO:TAG@sha256:… to PATH.
    #[arg(long, value_name = "PATH")]
    pub image_refs: Option<PathBuf>,
}

/// Registry credentials and plain-HTTP consent: `--push`, `push`, and
/// `diff` of a registry reference.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry credentials USER:PASS. Any user of the machine can read them in the process list (/proc/PID/cmdline): prefer --creds-file, --password-stdin, or the default lookup (auth.json, $REGISTRY_AUTH_FILE, ~/.docker/config.json, credential helpers).
    #[arg(long, value_name = "USER:PASS", conflicts_with_all = ["creds_file", "password_stdin"])]
    pub creds: Option<String>,
    /// Read registry credentials from FILE: one line, USER:PASSWORD (keep it mode 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub creds_file: Option<PathBuf>,
    /// The registry user name, for --password-stdin.
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from stdin (one line), with --username; as `docker login --password-stdin`.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Allow plain HTTP and unverified TLS to a non-loopback registry, and a plain-http token realm it names.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    pub image: PathBuf,
    /// Also require a CA bundle (for images that make TLS connections).
    #[arg(long)]
    pub tls: bool,
    /// Take the gates from RECIPE's [check] table (flags given here win).
    #[arg(long, value_name = "RECIPE")]
    pub recipe: Option<PathBuf>,
    #[command(flatten)]
    pub gates: GateArgs,
}

/// CI gates; a failed gate exits with 3 (see README, "Gates").
#[derive(Args, Debug, Clone, Default)]
pub struct GateArgs {
    /// Fail when the layers' files add up to more than SIZE (uncompressed; 50MB, 1.5GiB).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub max_size: Option<u64>,
    /// Fail when the image has more than N files (every path but directories).
    #[arg(long, value_name = "N")]
    pub max_files: Option<u64>,
    /// Fail when a package matching NAME (glob) is installed (repeatable).
    #[arg(long = "forbid-package", value_name = "NAME")]
    pub forbid_packages: Vec<String>,
    /// Fail when the image runs as root (no User, or User root/0).
    #[arg(long)]
    pub require_non_root: bool,
    /// Fail when the layer efficiency (dive's) is below RATIO (0.9 or 90%).
    #[arg(long, value_name = "RATIO", value_parser = ratio_arg)]
    pub lowest_efficiency: Option<f64>,
    /// Fail when more than SIZE is shipped in a layer and replaced or removed above.
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    pub highest_wasted_bytes: Option<u64>,
    /// Fail when wasted bytes exceed RATIO of the bytes above the base layer (0.2 or 20%).
    #[arg(long, value_name = "RATIO", value_parser = ratio_arg)]
    pub highest_user_wasted_percent: Option<f64>,
}

impl GateArgs {
    pub fn gates(&self) -> minibuild::gates::Gates {
        minibuild::gates::Gates {
            max_size: self.max_size,
            max_files: self.max_files,
            forbid_packages: self.forbid_packages.clone(),
            require_non_root: self.require_non_root,
            lowest_efficiency: self.lowest_efficiency,
            highest_wasted_bytes: self.highest_wasted_bytes,
            highest_user_wasted_percent: self.highest_user_wasted_percent,
        }
    }
}

fn size_arg(s: &str) -> Result<u64, String> {
    minibuild::gates::spec::parse_size(s).map_err(|e| e.to_string())
}

fn ratio_arg(s: &str) -> Result<f64, String> {
    minibuild::gates::spec::parse_ratio(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug, Clone)]
pub struct DiffArgs {
    /// The old image (oci-archive, OCI layout directory, or REGISTRY/REPO:TAG
    /// or REGISTRY/REPO@sha256:… to pull; an existing path wins) or lock (`*.lock`).
    pub a: String,
    /// The new image or lock.
    pub b: String,
    /// Machine-readable output (the same content).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    pub recipe: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockUse,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct WhyArgs {
    pub recipe: PathBuf,
    pub package: String,
    #[command(flatten)]
    pub lock: LockUse,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LockArgs {
    pub recipe: PathBuf,
    /// Re-resolve and replace an existing lock.
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct VendorArgs {
    pub recipe: PathBuf,
    /// A new or empty directory: DIR/REPO/ARCH/ gets each repo's packages and metadata.
    pub dir: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LockUse {
    /// Ignore RECIPE.lock and resolve afresh.
    #[arg(long)]
    pub no_lock: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The recipe (TOML) to build. Several recipes, or a directory (every
    /// `*.toml` in it), are built in one run: each repo's metadata is loaded
    /// once, each RPM fetched once, and stdout gets `RECIPE DIGEST` per recipe.
    #[arg(value_name = "RECIPE")]
    pub recipes: Vec<PathBuf>,

    /// Where to write the image [default: NAME.oci.tar; NAME.oci with --format oci; NAME.docker.tar].
    /// Replaces only a previous minibuild output of the same format (see --force).
    /// One recipe only: with several, see --output-dir.
    #[arg(short, long, conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,

    /// Write each image, under its default name, into DIR (created if missing; default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Replace any file at the output path. Without it only a previous minibuild
    /// output of the same format is replaced: an oci-archive holding `oci-layout`
    /// and `index.json` whose manifest has a `dev.minibuild.*` annotation, a
    /// docker-archive whose config history says minibuild, or a layout directory
    /// with `oci-layout` (or an empty one). A directory is never replaced by an archive.
    #[arg(long)]
    pub force: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::OciArchive)]
    pub format: Format,

    /// After the build, push the image to REGISTRY/REPO:TAG. With several
    /// recipes REF must contain `{name}`, replaced by each recipe's image name.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,

    /// With --push: attach each arch's SBOM to its pushed manifest as an OCI artifact (referrers).
    #[arg(long, conflicts_with = "no_sbom")]
    pub attach_sbom: bool,

    #[command(flatten)]
    pub push_args: PushArgs,

    /// Share RPMs and compressed layers with other machines through REGISTRY/REPO: look there before a mirror or the compressor, push what it lacked after the build. Entries are verified like downloads; a cache repo that fails is a warning. Uses the --push credential and TLS flags.
    #[arg(long, value_name = "REGISTRY/REPO")]
    pub cache_repo: Option<String>,

    /// Fail the build when the image check finds a problem (default: warn).
    #[arg(long)]
    pub strict: bool,

    /// Layer compression.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,

    /// Also write the image's root filesystem to DIR, for inspection (replaces only a previous --rootfs DIR).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    #[command(flatten)]
    pub lock: LockUse,

    #[command(flatten)]
    pub supply: SupplyChainArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// SBOM and provenance written beside the image.
#[derive(Args, Debug, Clone)]
pub struct SupplyChainArgs {
    /// Where to write the SBOM [default: OUTPUT.spdx.json, or OUTPUT.cdx.json for cyclonedx].
    /// With several arches one file per arch: NAME.ARCH.spdx.json.
    #[arg(long, value_name = "PATH", conflicts_with = "no_sbom")]
    pub sbom: Option<PathBuf>,

    /// Do not write an SBOM.
    #[arg(long)]
    pub no_sbom: bool,

    /// SBOM format.
    #[arg(long, value_enum, default_value_t = SbomFormat::Spdx)]
    pub sbom_format: SbomFormat,

    /// Where to write the provenance (in-toto statement, SLSA v1 predicate) [default: OUTPUT.intoto.json].
    #[arg(long, value_name = "PATH", conflicts_with = "no_provenance")]
    pub provenance: Option<PathBuf>,

    /// Do not write a provenance statement.
    #[arg(long)]
    pub no_provenance: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Site policy (TOML): allowed repo URL prefixes and signing keys; checked before any download.
    #[arg(long, value_name = "POLICY.toml", env = "MINIBUILD_POLICY")]
    pub policy: Option<PathBuf>,

    /// Override a repo's baseurl: NAME=URL (repeatable). URL may use $basearch/$releasever.
    #[arg(long = "baseurl", value_name = "NAME=URL", value_parser = parse_override)]
    pub baseurl: Vec<(String, String)>,

    /// Build repo NAME without checking signatures (repeatable), as if the
    /// recipe said `gpgcheck = false`: warned, and recorded in the image,
    /// SBOM and provenance. For unsigned local mirrors such as the fixtures.
    #[arg(long = "no-gpgcheck", value_name = "NAME")]
    pub no_gpgcheck: Vec<String>,

    /// Leave the recipe's repo NAME out of this run (repeatable), as dnf's
    /// `--disablerepo`: e.g. build a Fedora recipe from the release repo alone.
    #[arg(
        long = "disablerepo",
        visible_alias = "disable-repo",
        value_name = "NAME"
    )]
    pub disable_repo: Vec<String>,

    /// Accept a signed repomd.xml older than the newest this cache has seen
    /// (a rollback), e.g. after a mirror was deliberately reverted.
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Use only the cache: no network. Repo metadata comes from the last
    /// online run, RPMs from the cache or local repos; anything missing is an error.
    #[arg(long)]
    pub offline: bool,

    /// Cache for repo metadata and RPMs [default: $XDG_CACHE_HOME/minibuild].
    #[arg(long, env = "MINIBUILD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Parallel downloads.
    #[arg(short, long, default_value_t = minibuild::fetch::DEFAULT_JOBS)]
    pub jobs: usize,

    /// Seconds a repo server may take to connect, to answer, or stay silent mid-transfer; a whole transfer may take this plus its size at 64 KiB/s.
    #[arg(
        long,
        value_name = "SECS",
        env = "MINIBUILD_TIMEOUT",
        default_value_t = 30
    )]
    pub timeout: u64,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Only messages that need attention on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout in a tar file (for CI artifacts, `skopeo copy oci-archive:…`).
    OciArchive,
    /// An OCI image layout directory.
    Oci,
    /// `docker save` format (for `docker load` / `podman load`); one arch only.
    DockerArchive,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err(format!("expected NAME=URL, got `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_recipe_is_a_build() {
        let cli = Cli::try_parse_from(["minibuild", "r.toml", "-o", "x.tar"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.build.recipes, [PathBuf::from("r.toml")]);
        assert_eq!(cli.build.output, Some(PathBuf::from("x.tar")));
    }

    #[test]
    fn build_subcommand_and_overrides() {
        let cli = Cli::try_parse_from([
            "minibuild",
            "build",
            "r.toml",
            "--format",
            "oci",
            "--baseurl",
            "fedora=file:///r/$basearch/",
        ])
        .unwrap();
        let Some(Command::Build(b)) = cli.command else {
            panic!("not a build")
        };
        assert_eq!(b.format, Format::Oci);
        assert_eq!(
            b.common.baseurl,
            vec![("fedora".into(), "file:///r/$basearch/".into())]
        );
        assert!(Cli::try_parse_from(["minibuild", "r.toml", "--baseurl", "nourl"]).is_err());
    }

    #[test]
    fn supply_chain_flags() {
        let cli = Cli::try_parse_from([
            "minibuild",
            "r.toml",
            "--sbom-format",
            "cyclonedx",
            "--no-provenance",
            "--policy",
            "p.toml",
        ])
        .unwrap();
        assert_eq!(cli.build.supply.sbom_format, SbomFormat::Cyclonedx);
        assert!(cli.build.supply.no_provenance && !cli.build.supply.no_sbom);
        assert_eq!(cli.build.common.policy, Some(PathBuf::from("p.toml")));
        assert!(Cli::try_parse_from(["minibuild", "r.toml", "--sbom", "x", "--no-sbom"]).is_err());
    }

    #[test]
    fn attach_sbom_flags() {
        let cli = Cli::try_parse_from(["minibuild", "r.toml", "--push", "h/r:t", "--attach-sbom"])
            .unwrap();
        assert!(cli.build.attach_sbom);
        let e = Cli::try_parse_from(["minibuild", "r.toml", "--attach-sbom", "--no-sbom"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--no-sbom"), "{e}");
        let cli = Cli::try_parse_from([
            "minibuild",
            "push",
            "img.tar",
            "h/r:t",
            "--attach-sbom",
            "a.spdx.json",
            "--attach-sbom",
            "b.spdx.json",
        ])
        .unwrap();
        let Some(Command::Push(p)) = cli.command else {
            panic!("not a push")
        };
        assert_eq!(
            p.attach_sbom,
            [PathBuf::from("a.spdx.json"), PathBuf::from("b.spdx.json")]
        );
    }

    #[test]
    fn log_format_before_a_subcommand_moves_after_it() {
        let subs = ["build".to_string(), "plan".to_string()];
        let os = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(Into::into).collect() };
        assert_eq!(
            hoist_log_format(
                os(&["mb", "--log-format", "json", "build", "r.toml"]),
                &subs
            ),
            os(&["mb", "build", "--log-format", "json", "r.toml"])
        );
        assert_eq!(
            hoist_log_format(os(&["mb", "--log-format=json", "plan", "r.toml"]), &subs),
            os(&["mb", "plan", "--log-format=json", "r.toml"])
        );
        // Before a recipe (the `build` shorthand), or anywhere else: as given.
        for args in [
            os(&["mb", "--log-format", "json", "r.toml"]),
            os(&["mb", "build", "--log-format", "json", "r.toml"]),
            os(&["mb", "--log-format"]),
        ] {
            assert_eq!(hoist_log_format(args.clone(), &subs), args);
        }
        let cli = Cli::parse_from(hoist_log_format(
            os(&["mb", "--log-format", "json", "plan", "r.toml"]),
            &subs,
        ));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(matches!(cli.command, Some(Command::Plan(_))));
    }
}
