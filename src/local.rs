//! Local RPM files as inputs: `[packages] local = ["dist/app-1.0-1.x86_64.rpm"]`.
//!
//! The files form a synthetic repo named [`REPO`], built from their own
//! headers (name, EVR, arch, dependencies, file list) and placed after the
//! recipe's repos with the best priority: a local package hides every repo
//! package of its name, as a better-priority repo does in dnf. Each local
//! RPM is installed (it is requested by name, like `dnf install ./app.rpm`).
//! The repo's base URL is the recipe's directory and each package's
//! location its path relative to it, which is what the lock records with
//! the file's sha256; a locked build re-hashes the files first.
//!
//! The headers are read through [`crate::package::metadata::read_metadata`],
//! which checks them before the `rpm` crate parses them: these files are
//! the user's own, but a damaged one must still be an error naming it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Seek as _};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::digest::{Algorithm, Digest};
use crate::http::Client;
use crate::package::Arch;
use crate::package::Package;
use crate::recipe::Recipe;
use crate::repo::{PackageSet, RepoIndex};
use crate::signature::Keyring;

/// The synthetic repo's name in plans, locks, SBOMs and `--no-gpgcheck`.
pub use crate::recipe::LOCAL_REPO as REPO;

/// `(priority, cost)` of [`REPO`]: better than any repo's.
pub const PRIORITY: (i32, u32) = (i32::MIN, 0);

/// The first bytes of every .rpm file (its lead).
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];

/// One local RPM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// The path relative to the recipe's directory (absolute if written
    /// so), normalised: what the lock and the package's location hold.
    pub location: String,
    pub path: PathBuf,
}

/// The recipe's directory, absolute.
pub fn recipe_dir(recipe: &Recipe) -> PathBuf {
    let dir = crate::fsutil::parent_dir(&recipe.path);
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The base URL of [`REPO`]: the recipe's directory.
pub fn baseurl(recipe: &Recipe) -> String {
    format!(
        "file://{}/",
        recipe_dir(recipe)
            .display()
            .to_string()
            .trim_end_matches('/')
    )
}

/// The names of the repos a plan's `Package::repo` indexes: the recipe's,
/// then [`REPO`].
pub fn repo_names(recipe: &Recipe) -> Vec<String> {
    recipe
        .repos
        .iter()
        .map(|r| r.name.clone())
        .chain(std::iter::once(REPO.to_string()))
        .collect()
}

/// Whether `repo` (a `Package::repo` index) is [`REPO`].
pub fn is_local(recipe: &Recipe, repo: usize) -> bool {
    repo == recipe.repos.len()
}

/// Whether packages of repo index `repo` are signature-checked.
pub fn gpgcheck(recipe: &Recipe, repo: usize) -> bool {
    recipe
        .repos
        .get(repo)
        .map_or(recipe.packages.local.gpgcheck, |r| r.gpgcheck)
}

/// `path` without `.` components, and `..` folded where it follows a name.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The recipe's local files, globs expanded (sorted), each once.
pub fn files(recipe: &Recipe) -> anyhow::Result<Vec<LocalFile>> {
    let dir = recipe_dir(recipe);
    let mut out: Vec<LocalFile> = Vec::new();
    for written in &recipe.packages.local.files {
        let rel = normalize(Path::new(written));
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let found: Vec<PathBuf> = if name.contains(['*', '?']) {
            let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            let listing = std::fs::read_dir(dir.join(&parent)).with_context(|| {
                format!(
                    "local RPM pattern `{written}` in {}: cannot list {}",
                    recipe.path.display(),
                    dir.join(&parent).display()
                )
            })?;
            let mut hits: Vec<PathBuf> = listing
                .filter_map(Result::ok)
                .filter(|e| crate::glob::glob_match(&name, &e.file_name().to_string_lossy()))
                .map(|e| parent.join(e.file_name()))
                .collect();
            hits.sort();
            if hits.is_empty() {
                bail!(
                    "local RPM pattern `{written}` in {} matches no file in {}\n  hint: build the RPMs first, or fix the path (relative to the recipe)",
                    recipe.path.display(),
                    dir.join(&parent).display()
                );
            }
            hits
        } else {
            vec![rel]
        };
        for rel in found {
            let path = dir.join(&rel);
            if !path.is_file() {
                bail!(
                    "local RPM {} (`{written}` in {}) does not exist or is not a file\n  hint: build the RPM first, or fix the path (relative to the recipe)",
                    path.display(),
                    recipe.path.display()
                );
            }
            let file = LocalFile {
                location: rel.to_string_lossy().into_owned(),
                path,
            };
            if !out.contains(&file) {
                out.push(file);
            }
        }
    }
    Ok(out)
}

/// The synthetic repo of the recipe's local RPMs for `arch`, as repo index
/// `index`; `None` when the recipe names none.
pub fn index(recipe: &Recipe, arch: Arch, index: usize) -> anyhow::Result<Option<RepoIndex>> {
    if recipe.packages.local.files.is_empty() {
        return Ok(None);
    }
    let mut packages: Vec<Package> = Vec::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for f in files(recipe)? {
        let pkg = read(&f, index)?;
        if !arch.accepts(&pkg.nevra.arch) {
            // A multi-arch recipe lists each arch's build: the other target takes it.
            if recipe.image.arch.iter().any(|a| a.accepts(&pkg.nevra.arch)) {
                continue;
            }
            bail!(
                "local RPM {} is built for {}, but the image is {arch}\n  hint: build the RPM for {arch} (or noarch), or list it only in a recipe for that arch",
                f.path.display(),
                pkg.nevra.arch
            );
        }
        if let Some(other) = by_name.insert(pkg.nevra.name.clone(), f.location.clone()) {
            bail!(
                "local RPMs {other} and {} are both package `{}`\n  hint: keep one of them in packages.local of {}",
                f.location,
                pkg.nevra.name,
                recipe.path.display()
            );
        }
        packages.push(pkg);
    }
    let sums: Vec<&str> = packages.iter().map(|p| p.checksum.hex()).collect();
    Ok(Some(RepoIndex {
        name: REPO.to_string(),
        baseurl: baseurl(recipe),
        revision: String::new(),
        repomd_digest: Digest::sha256_of(sums.join("\n").as_bytes()),
        packages: PackageSet::of(packages),
        notes: Vec::new(),
        via: None,
    }))
}

/// The package a local RPM file is, from its header, with the file's sha256.
fn read(f: &LocalFile, repo: usize) -> anyhow::Result<Package> {
    use crate::package::file::{HeaderError, Headers};
    let path = &f.path;
    let mut file =
        File::open(path).with_context(|| format!("cannot open local RPM {}", path.display()))?;
    let mut magic = [0u8; 4];
    let is_rpm = std::io::Read::read_exact(&mut file, &mut magic).is_ok() && magic == LEAD_MAGIC;
    file.rewind()
        .with_context(|| format!("cannot read local RPM {}", path.display()))?;
    let headers = match Headers::read(&mut BufReader::new(&file)) {
        Ok(h) => h,
        Err(HeaderError::NoLead) | Err(_) if !is_rpm => bail!(
            "local RPM {} is not an RPM file (no RPM lead at its start)\n  hint: packages.local takes binary .rpm files as rpmbuild writes them",
            path.display()
        ),
        Err(e) => bail!(
            "local RPM {} has a damaged header: {e}\n  hint: rebuild the RPM; the file may be truncated or corrupted",
            path.display()
        ),
    };
    let meta = headers.metadata();
    if meta.is_source_package() {
        bail!(
            "local RPM {} is a source RPM, which cannot be installed\n  hint: list the binary RPMs rpmbuild -bb writes (RPMS/<arch>/…), not the .src.rpm",
            path.display()
        );
    }
    let damaged = |e: ::rpm::Error| {
        anyhow::anyhow!(
            "local RPM {} has a damaged header: {e}\n  hint: rebuild the RPM",
            path.display()
        )
    };
    file.rewind()
        .with_context(|| format!("cannot read local RPM {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or_default();
    let checksum = Digest::of_reader(Algorithm::Sha256, BufReader::new(&file))
        .with_context(|| format!("cannot read local RPM {}", path.display()))?;
    let pkg = crate::package::header::package_of(&headers, repo, f.location.clone(), checksum)
        .map_err(damaged)?;
    Ok(Package {
        download_size: size,
        ..pkg
    })
}

/// The names to request: every local package is installed.
pub fn requests(index: &RepoIndex) -> Vec<String> {
    index
        .packages
        .iter()
        .map(|p| p.nevra.name.clone())
        .collect()
}

/// Where the fetch stage reads local package `pkg` from: its directory as
/// a `file://` base, and a copy of it located by file name there (a path
/// with `..` would leave the recipe's directory, which a location may not).
pub fn source(recipe_base: &str, pkg: &Package) -> (String, Package) {
    let dir = recipe_base.strip_prefix("file://").unwrap_or(recipe_base);
    let path = normalize(&Path::new(dir).join(&pkg.location));
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = format!(
        "file://{}/",
        parent.display().to_string().trim_end_matches('/')
    );
    let mut copy = pkg.clone();
    copy.location = name;
    (base, copy)
}

/// [`REPO`] when the recipe has local RPMs whose signatures go unchecked.
pub fn unchecked(recipe: &Recipe) -> Option<&'static str> {
    let local = &recipe.packages.local;
    (!local.files.is_empty() && !local.gpgcheck).then_some(REPO)
}

/// Say so when local RPMs are used without signature checks.
pub fn report_unchecked(recipe: &Recipe, reporter: &dyn crate::report::Reporter) {
    if unchecked(recipe).is_some() {
        reporter.event(crate::report::Event::Warning {
            message: "local RPMs (packages.local): signatures are NOT checked (local_gpgcheck off); their sha256 is recorded in the lock, SBOM and provenance".into(),
        });
    }
}

/// How the local RPMs were taken, for the provenance's sources (`None`
/// when the recipe has none): their directory, and whether and with which
/// keys their signatures were checked.
pub fn provenance(recipe: &Recipe, arch: Arch) -> Option<crate::provenance::RepoUse> {
    let local = &recipe.packages.local;
    (!local.files.is_empty()).then(|| crate::provenance::RepoUse {
        name: REPO.to_string(),
        arch: arch.rpm_name().to_string(),
        baseurl: baseurl(recipe),
        via: None,
        revision: String::new(),
        repomd_digest: None,
        gpgcheck: local.gpgcheck,
        repo_gpgcheck: false,
        keys: local
            .gpgkeys
            .iter()
            .filter(|_| local.gpgcheck)
            .map(|k| k.fingerprint.clone().unwrap_or_else(|| k.url.clone()))
            .collect(),
    })
}

/// The keys local RPMs are checked with (empty when they are not checked).
pub fn keyring(recipe: &Recipe, client: &Client) -> anyhow::Result<Keyring> {
    let local = &recipe.packages.local;
    let mut ring = Keyring {
        allow_legacy: recipe.options.legacy_signatures,
        ..Keyring::default()
    };
    if local.files.is_empty() || !local.gpgcheck {
        return Ok(ring);
    }
    for key in &local.gpgkeys {
        let bytes = client
            .unfenced()
            .read_to_vec(&key.url)
            .with_context(|| format!("packages.local: cannot read the gpgkey {}", key.url))?;
        ring.add(&bytes, &key.url, key.fingerprint.as_deref())
            .context("packages.local")?;
    }
    Ok(ring)
}

/// How the local files a lock names differ from the files on disk now:
/// one line per file missing or changed (`locked` are `(location, sha256)`).
pub fn stale<'a>(
    recipe: &Recipe,
    locked: impl IntoIterator<Item = (&'a str, &'a Digest)>,
) -> Vec<String> {
    let dir = recipe_dir(recipe);
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (location, digest) in locked {
        if !seen.insert(location) {
            continue;
        }
        let path = dir.join(location);
        let now =
            File::open(&path).and_then(|f| Digest::of_reader(Algorithm::Sha256, BufReader::new(f)));
        match now {
            Err(e) => out.push(format!(
                "local RPM {location} cannot be read ({e}); the lock has it with {digest}"
            )),
            Ok(now) if &now != digest => out.push(format!(
                "local RPM {location} changed since the lock ({digest} locked, {now} now)"
            )),
            Ok(_) => {}
        }
    }
    out
}

/// The files `packages.local` names now (globs expanded) that the lock
/// does not have (`locked` are its `@local` locations), one line each: a
/// new RPM dropped into a globbed directory is drift too.
pub fn unlocked<'a>(recipe: &Recipe, locked: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let locked: std::collections::BTreeSet<&str> = locked.into_iter().collect();
    // A file that cannot be read is reported by `stale` (or by the build).
    files(recipe)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !locked.contains(f.location.as_str()))
        .map(|f| {
            format!(
                "packages.local now also names {}, which is not locked",
                f.location
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{Dep, Evr, Nevra};

    fn index_of(recipe: &Recipe, arch: Arch) -> RepoIndex {
        index(recipe, arch, 1).unwrap().unwrap()
    }

    #[test]
    fn a_header_makes_the_package_and_a_glob_finds_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        std::fs::create_dir(&dist).unwrap();
        let archer = crate::testing::corpus("createrepo_c/tests/testdata/packages")
            .join("Archer-3.4.5-6.x86_64.rpm");
        std::fs::copy(&archer, dist.join("Archer-3.4.5-6.x86_64.rpm")).unwrap();
        std::fs::write(dist.join("notes.txt"), "not matched").unwrap();
        let text = "[[repo]]\nname = \"f\"\nbaseurl = \"/r\"\ngpgcheck = false\n[packages]\nlocal = [\"./dist/*.rpm\"]\nlocal_gpgcheck = false\n";
        let recipe = crate::recipe::parse(&tmp.path().join("app.toml"), text).unwrap();
        let index = index(&recipe, Arch::X86_64, 1).unwrap().unwrap();
        assert_eq!(index.name, REPO);
        assert_eq!(
            index.baseurl,
            format!("file://{}/", recipe_dir(&recipe).display())
        );
        let all: Vec<&Package> = index.packages.iter().collect();
        let [p] = all[..] else {
            panic!("{} packages", all.len())
        };
        assert_eq!(p.nevra.to_string(), "Archer-2:3.4.5-6.x86_64");
        assert_eq!(
            (p.repo, p.location.as_str()),
            (1, "dist/Archer-3.4.5-6.x86_64.rpm")
        );
        let bytes = std::fs::read(&archer).unwrap();
        assert_eq!(p.checksum, Digest::sha256_of(&bytes));
        assert_eq!(p.download_size, bytes.len() as u64);
        let has = |deps: &[Dep], text: &str| deps.iter().any(|d| d.to_string() == text);
        assert!(has(&p.provides, "barb >= 11.22.33-44"), "{:?}", p.provides);
        assert!(has(&p.requires, "foob >= 1.0.0-1"), "{:?}", p.requires);
        assert!(
            has(&p.conflicts, "bbb >= 1111.2222.3333-4444"),
            "{:?}",
            p.conflicts
        );
        assert!(!p.obsoletes.is_empty() && !p.files.is_empty());
        assert_eq!(requests(&index), ["Archer"]);
        // In a multi-arch recipe, the other arch passes it over...
        let both = crate::recipe::parse(
            &tmp.path().join("app.toml"),
            &format!("{text}[image]\narch = [\"x86_64\", \"aarch64\"]\n"),
        )
        .unwrap();
        assert!(index_of(&both, Arch::Aarch64).packages.is_empty());
        assert_eq!(index_of(&both, Arch::X86_64).packages.len(), 1);
        // ...but an image of no arch it installs on refuses it, naming the file.
        let arm = crate::recipe::parse(
            &tmp.path().join("app.toml"),
            &format!("{text}[image]\narch = [\"aarch64\"]\n"),
        )
        .unwrap();
        let e = super::index(&arm, Arch::Aarch64, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Archer-3.4.5-6.x86_64.rpm") && e.contains("built for x86_64"),
            "{e}"
        );
    }

    #[test]
    fn paths_are_normalised_without_leaving_parents_behind() {
        assert_eq!(
            normalize(Path::new("./dist/./a.rpm")),
            Path::new("dist/a.rpm")
        );
        assert_eq!(normalize(Path::new("dist/../b.rpm")), Path::new("b.rpm"));
        assert_eq!(
            normalize(Path::new("../out/a.rpm")),
            Path::new("../out/a.rpm")
        );
    }

    #[test]
    fn the_fetch_source_is_the_file_itself_even_outside_the_recipe_dir() {
        let pkg = Package::new(
            Nevra::new("app", Evr::parse("1.0-1"), "x86_64"),
            1,
            "../out/app.rpm".into(),
            Digest::sha256_of(b""),
        );
        let (base, copy) = source("file:///w/recipes/", &pkg);
        assert_eq!(base, "file:///w/out/");
        assert_eq!(copy.location, "app.rpm");
        let pkg = Package {
            location: "/abs/app.rpm".into(),
            ..pkg
        };
        assert_eq!(source("file:///w/", &pkg).0, "file:///abs/");
    }
}
