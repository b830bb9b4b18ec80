//! Command-line arguments. Parsed here, turned into plain options for the
//! pipeline in `main.rs`; no work happens in this module.

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
}

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
    /// Check an image (OCI layout or oci-archive): libraries present, no setuid, no package manager.
    Check(CheckArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    pub image: PathBuf,
    /// Also require a CA bundle (for images that make TLS connections).
    #[arg(long)]
    pub tls: bool,
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
pub struct LockUse {
    /// Ignore RECIPE.lock and resolve afresh.
    #[arg(long)]
    pub no_lock: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The recipe (TOML) to build.
    pub recipe: Option<PathBuf>,

    /// Where to write the image [default: NAME.oci.tar; NAME.oci with --format oci; NAME.docker.tar].
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::OciArchive)]
    pub format: Format,

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
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Override a repo's baseurl: NAME=URL (repeatable). URL may use $basearch/$releasever.
    #[arg(long = "baseurl", value_name = "NAME=URL", value_parser = parse_override)]
    pub baseurl: Vec<(String, String)>,

    /// Cache for repo metadata and RPMs [default: $XDG_CACHE_HOME/minibuild].
    #[arg(long, env = "MINIBUILD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Parallel downloads.
    #[arg(short, long, default_value_t = 6)]
    pub jobs: usize,

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
        assert_eq!(cli.build.recipe, Some(PathBuf::from("r.toml")));
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
}
