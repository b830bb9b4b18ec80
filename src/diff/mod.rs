//! `minibuild diff A B`: what changed between two images (OCI layout
//! directories or oci-archives) or two locks, for review before an update
//! ships.
//!
//! Images are read with [`crate::image::load`] (layers → [`Tree`]) and
//! [`LocalImage`] (config, layer descriptors). Packages come from each
//! image's rpmdb (sqlite, which minibuild writes by default, or Berkeley DB), which
//! records every package's installed size; an image without one has its
//! packages left out of the diff (with a note), never guessed. Locks go
//! through [`crate::lock_diff`], the same comparison `lock --update` prints.
//! A registry reference is pulled into the cache and read the same way
//! ([`remote`]).

pub mod config;
pub mod files;
pub mod packages;
pub mod remote;
pub mod rpmdb;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Serialize;

use crate::base_image::PullOptions;
use crate::image::load::{self, Loaded};
use crate::image::local::{Content, LocalImage};
use crate::lock::Lock;
use crate::registry::Reference;
use crate::report::human_bytes;
use crate::rootfs::Tree;

use config::ConfigChange;
use files::FileDiff;
use packages::{ChangeKind, PackageDiff};

/// What a command-line argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Image(PathBuf),
    Lock(PathBuf),
    /// `REGISTRY/REPO:TAG` or `…@sha256:…`, to pull.
    Reference(Reference),
}

/// Whether `arg` looks meant as `REGISTRY/REPO[:TAG|@DIGEST]` rather than
/// a path: a `docker://` URL, or a first component with a `.` or `:` (a
/// host) or `localhost`, followed by a repository. Only used to word the
/// error for an argument that is neither a file nor a valid reference.
fn looks_like_reference(arg: &str) -> bool {
    if arg.starts_with("docker://") {
        return true;
    }
    match arg.split_once('/') {
        Some((host, rest)) => {
            !host.is_empty()
                && !rest.is_empty()
                && (host.contains('.') || host.contains(':') || host == "localhost")
                && !arg.starts_with('.')
        }
        None => false,
    }
}

/// Classify `arg`: an existing path wins; otherwise a registry reference
/// (`docker://` optional), or an error naming it.
pub fn input(arg: &str) -> anyhow::Result<Input> {
    let path = PathBuf::from(arg);
    if !path.exists() {
        let name = arg.strip_prefix("docker://").unwrap_or(arg);
        return match name.parse::<Reference>() {
            Ok(r) => Ok(Input::Reference(r)),
            Err(e) if looks_like_reference(arg) => bail!(
                "{arg}: no such file, and not a registry reference: {e}\n  hint: write REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…"
            ),
            Err(_) => bail!("cannot read {arg}: no such file or directory"),
        };
    }
    if arg.ends_with(".lock") && path.is_file() {
        return Ok(Input::Lock(path));
    }
    Ok(Input::Image(path))
}

/// An image to read: what the user called it, and the layout or archive
/// holding it (a pulled reference's temporary layout, kept while in use).
struct Source {
    name: String,
    path: PathBuf,
    _pulled: Option<tempfile::TempDir>,
}

impl Source {
    fn open(input: Input, arg: &str, pull: &PullOptions) -> anyhow::Result<Source> {
        match input {
            Input::Image(path) => Ok(Source {
                name: path.display().to_string(),
                path,
                _pulled: None,
            }),
            Input::Reference(r) => {
                let dir = remote::pull(&r, pull).with_context(|| {
                    format!("{arg} is not a file, and cannot be pulled as a registry reference")
                })?;
                Ok(Source {
                    name: arg.to_string(),
                    path: dir.path().to_path_buf(),
                    _pulled: Some(dir),
                })
            }
            Input::Lock(path) => bail!("{}: a lock, not an image", path.display()),
        }
    }
}

/// One image's layer, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
}

/// Both sides' layers (bottom first), compressed sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layers {
    pub old: Vec<Layer>,
    pub new: Vec<Layer>,
    pub old_total: u64,
    pub new_total: u64,
    pub size_delta: i64,
}

/// The diff of one platform (images) or one target arch (locks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// `os/arch` of an image, or a lock's target arch.
    pub name: String,
    /// `a` or `b` when only that side has this platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_in: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub packages: Option<PackageDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<ConfigChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Layers>,
}

/// The whole comparison; `--json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub a: String,
    pub b: String,
    /// `images` or `locks`.
    pub kind: &'static str,
    /// Manifest digests, per platform, for images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub a_manifests: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub b_manifests: Vec<String>,
    pub identical: bool,
    pub parts: Vec<Part>,
}

/// Compare what `a` and `b` name; a registry reference is pulled with
/// `pull` (its registry options and cache). Errors name the input that
/// could not be read; the CLI exits 2 on them.
pub fn diff(a: &str, b: &str, pull: &PullOptions) -> anyhow::Result<Report> {
    match (input(a)?, input(b)?) {
        (Input::Lock(x), Input::Lock(y)) => diff_locks(&x, &y),
        (Input::Lock(_), _) | (_, Input::Lock(_)) => {
            bail!("{a} and {b}: one is a lock and the other an image; compare two of a kind")
        }
        (x, y) => {
            let x = Source::open(x, a, pull)?;
            let y = Source::open(y, b, pull)?;
            diff_images(&x, &y)
        }
    }
}

fn diff_locks(a: &Path, b: &Path) -> anyhow::Result<Report> {
    let (old, new) = (Lock::read(a)?, Lock::read(b)?);
    let parts: Vec<Part> = packages::compare_locks(&old, &new)
        .into_iter()
        .map(|(target, d)| Part {
            name: target,
            only_in: None,
            notes: Vec::new(),
            packages: Some(d),
            files: None,
            config: Vec::new(),
            layers: None,
        })
        .collect();
    Ok(Report {
        a: a.display().to_string(),
        b: b.display().to_string(),
        kind: "locks",
        a_manifests: Vec::new(),
        b_manifests: Vec::new(),
        identical: parts.is_empty(),
        parts,
    })
}

/// One loaded platform with its config and layers.
struct Side<'a> {
    loaded: &'a Loaded,
    config: crate::image::local::RunConfig,
    layers: Vec<Layer>,
}

fn sides<'a>(src: &Source, image: &'a load::Image) -> anyhow::Result<Vec<Side<'a>>> {
    let local = LocalImage::open(&src.path)?;
    let manifests = local.image_manifests()?;
    image
        .platforms
        .iter()
        .map(|loaded| {
            let m = manifests
                .iter()
                .find(|m| m.digest == loaded.manifest_digest)
                .with_context(|| {
                    format!("{}: manifest {} vanished", src.name, loaded.manifest_digest)
                })?;
            let Content::Image { config, layers } = &m.content else {
                bail!("{}: manifest {} is an index", src.name, m.digest);
            };
            Ok(Side {
                loaded,
                config: local.run_config(config)?,
                layers: layers
                    .iter()
                    .map(|l| Layer {
                        digest: l.digest.to_string(),
                        size: l.size,
                    })
                    .collect(),
            })
        })
        .collect()
}

fn load_image(src: &Source) -> anyhow::Result<load::Image> {
    load::load(&src.path).with_context(|| format!("cannot read image {}", src.name))
}

fn diff_images(a: &Source, b: &Source) -> anyhow::Result<Report> {
    let (ia, ib) = (load_image(a)?, load_image(b)?);
    let (sa, sb) = (sides(a, &ia)?, sides(b, &ib)?);
    let mut parts = Vec::new();
    let mut identical = true;
    // One platform each: compare them whatever they are (a changed arch
    // shows as a config change); several: pair them by os/arch.
    let pairs: Vec<(Option<&Side>, Option<&Side>)> = if sa.len() == 1 && sb.len() == 1 {
        vec![(Some(&sa[0]), Some(&sb[0]))]
    } else {
        let mut names: Vec<&str> = sa
            .iter()
            .chain(&sb)
            .map(|s| s.loaded.platform.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let find = |v: &'_ [Side<'_>]| v.iter().position(|s| s.loaded.platform == n);
                (find(&sa).map(|i| &sa[i]), find(&sb).map(|i| &sb[i]))
            })
            .collect()
    };
    for pair in pairs {
        let part = match pair {
            (Some(x), Some(y)) => {
                if x.loaded.manifest_digest != y.loaded.manifest_digest {
                    identical = false;
                }
                compare_sides(a, b, x, y)?
            }
            (Some(x), None) | (None, Some(x)) => {
                identical = false;
                Part {
                    name: x.loaded.platform.clone(),
                    only_in: Some(if pair.0.is_some() { "a" } else { "b" }),
                    notes: Vec::new(),
                    packages: None,
                    files: None,
                    config: Vec::new(),
                    layers: None,
                }
            }
            (None, None) => continue,
        };
        parts.push(part);
    }
    let digests = |s: &[Side]| {
        s.iter()
            .map(|s| s.loaded.manifest_digest.to_string())
            .collect()
    };
    Ok(Report {
        a: a.name.clone(),
        b: b.name.clone(),
        kind: "images",
        a_manifests: digests(&sa),
        b_manifests: digests(&sb),
        identical,
        parts,
    })
}

fn tree_packages(
    name: &str,
    tree: &Tree,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Vec<packages::Package>>> {
    let found =
        rpmdb::packages(tree).with_context(|| format!("cannot read the rpm database of {name}"))?;
    if found.is_none() {
        notes.push(format!(
            "{name} has no rpmdb ({}): packages not compared",
            [
                crate::rpmdb::read::SQLITE_PATHS,
                crate::rpmdb::read::BDB_PATHS
            ]
            .concat()
            .join(" or ")
        ));
    }
    Ok(found)
}

fn compare_sides(a: &Source, b: &Source, x: &Side, y: &Side) -> anyhow::Result<Part> {
    let mut notes = Vec::new();
    let pa = tree_packages(&a.name, &x.loaded.tree, &mut notes)?;
    let pb = tree_packages(&b.name, &y.loaded.tree, &mut notes)?;
    let packages = match (pa, pb) {
        (Some(pa), Some(pb)) => Some(packages::compare(&pa, &pb)),
        _ => None,
    };
    let files = files::compare(&x.loaded.tree, &y.loaded.tree)
        .context("cannot read a file of the images")?;
    let total = |v: &[Layer]| v.iter().map(|l| l.size).sum::<u64>();
    let (old_total, new_total) = (total(&x.layers), total(&y.layers));
    let name = if x.loaded.platform == y.loaded.platform {
        x.loaded.platform.clone()
    } else {
        format!("{} → {}", x.loaded.platform, y.loaded.platform)
    };
    Ok(Part {
        name,
        only_in: None,
        notes,
        packages,
        files: Some(files),
        config: config::compare(&x.config, &y.config),
        layers: Some(Layers {
            old: x.layers.clone(),
            new: y.layers.clone(),
            old_total,
            new_total,
            size_delta: new_total as i64 - old_total as i64,
        }),
    })
}

/// `+1.2 KiB` / `-3 B`.
fn signed(d: i64) -> String {
    let sign = if d < 0 { '-' } else { '+' };
    format!("{sign}{}", human_bytes(d.unsigned_abs()))
}

fn opt_bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "?".into(), human_bytes)
}

fn value(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "unset".into(), |v| format!("{v:?}"))
}

impl Part {
    fn fmt_packages(&self, f: &mut fmt::Formatter<'_>, p: &PackageDiff) -> fmt::Result {
        let count = |k: ChangeKind| p.changes.iter().filter(|c| c.change == k).count();
        write!(
            f,
            "packages ({}): {} added, {} removed, {} upgraded, {} downgraded, {} rebuilt",
            p.source,
            count(ChangeKind::Added),
            count(ChangeKind::Removed),
            count(ChangeKind::Upgraded),
            count(ChangeKind::Downgraded),
            count(ChangeKind::Rebuilt),
        )?;
        match p.total_delta() {
            Some(d) => writeln!(
                f,
                "; installed size {} → {} ({})",
                opt_bytes(p.old_total),
                opt_bytes(p.new_total),
                signed(d)
            )?,
            None => writeln!(f)?,
        }
        for c in &p.changes {
            let what = match (&c.old, &c.new) {
                (Some(o), Some(n)) if o != n => format!("{o} → {n}"),
                (Some(x), _) | (None, Some(x)) => x.clone(),
                (None, None) => c.name.clone(),
            };
            let kind = serde_json::to_value(c.change)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            match c.size_delta {
                Some(d) => writeln!(f, "  {kind:<10} {what}  {}", signed(d))?,
                None => writeln!(f, "  {kind:<10} {what}")?,
            }
        }
        Ok(())
    }

    fn fmt_files(f: &mut fmt::Formatter<'_>, d: &FileDiff) -> fmt::Result {
        writeln!(
            f,
            "files: {} added, {} removed, {} changed",
            d.added.len(),
            d.removed.len(),
            d.changed.len()
        )?;
        let show = |e: &files::FileEntry| match (e.kind, &e.target) {
            ("file", _) => format!("{} (file, {})", e.path, human_bytes(e.size)),
            (_, Some(t)) => format!("{} (symlink → {t})", e.path),
            (kind, None) => format!("{} ({kind})", e.path),
        };
        for e in &d.added {
            writeln!(f, "  + {}", show(e))?;
        }
        for e in &d.removed {
            writeln!(f, "  - {}", show(e))?;
        }
        for c in &d.changed {
            writeln!(
                f,
                "  ~ {} ({}): {}",
                c.path,
                signed(c.size_delta),
                c.what().join(", ")
            )?;
        }
        Ok(())
    }

    fn fmt_layers(f: &mut fmt::Formatter<'_>, l: &Layers) -> fmt::Result {
        writeln!(
            f,
            "layers: {} → {}, {} → {} ({})",
            l.old.len(),
            l.new.len(),
            human_bytes(l.old_total),
            human_bytes(l.new_total),
            signed(l.size_delta)
        )?;
        for (side, list, other) in [("A", &l.old, &l.new), ("B", &l.new, &l.old)] {
            for layer in list {
                let shared = if other.contains(layer) {
                    " (shared)"
                } else {
                    ""
                };
                writeln!(
                    f,
                    "  {side} {} {}{shared}",
                    layer.digest,
                    human_bytes(layer.size)
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (side, path, digests) in [
            ("A", &self.a, &self.a_manifests),
            ("B", &self.b, &self.b_manifests),
        ] {
            match digests.as_slice() {
                [one] => writeln!(f, "{side}: {path} {one}")?,
                _ => writeln!(f, "{side}: {path}")?,
            }
        }
        if self.identical {
            return writeln!(f, "no differences");
        }
        for p in &self.parts {
            writeln!(f)?;
            match p.only_in {
                Some(side) => {
                    writeln!(f, "{}: only in {}", p.name, side.to_uppercase())?;
                    continue;
                }
                None => writeln!(f, "{}:", p.name)?,
            }
            for n in &p.notes {
                writeln!(f, "note: {n}")?;
            }
            if let Some(pk) = &p.packages {
                p.fmt_packages(f, pk)?;
            }
            if let Some(files) = &p.files {
                Part::fmt_files(f, files)?;
            }
            if !p.config.is_empty() {
                writeln!(f, "config: {} changed", p.config.len())?;
                for c in &p.config {
                    let key = c
                        .key
                        .as_deref()
                        .map_or_else(String::new, |k| format!(" {k}"));
                    writeln!(
                        f,
                        "  {}{key}: {} → {}",
                        c.field,
                        value(&c.old),
                        value(&c.new)
                    )?;
                }
            }
            if let Some(l) = &p.layers {
                Part::fmt_layers(f, l)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_tree::TestTree;
    use crate::image::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
    use crate::package::Arch;

    #[test]
    fn references_are_told_apart_from_paths() {
        for r in [
            "quay.io/fedora/fedora:40",
            "127.0.0.1:5000/app:1",
            "docker://127.0.0.1:5000/app:1",
            "dir/app:1",
        ] {
            let name = r.trim_start_matches("docker://");
            assert_eq!(
                input(r).unwrap(),
                Input::Reference(name.parse().unwrap()),
                "{r}"
            );
        }
        // Meant as references, but not valid ones: the reason is given.
        for r in [
            "localhost/app@sha256:00",
            "docker://busybox",
            "quay.io/Fedora:40",
        ] {
            assert!(looks_like_reference(r), "{r}");
            let e = input(r).unwrap_err().to_string();
            assert!(
                e.contains(r) && e.contains("not a registry reference"),
                "{e}"
            );
        }
        for p in ["out/app.tar", "./x.io/y", "image.tar", "dir/sub"] {
            assert!(!looks_like_reference(p), "{p}");
        }
        let e = input("missing/app.tar").unwrap_err().to_string();
        assert!(
            e.contains("missing/app.tar") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn an_existing_path_wins_over_a_reference() {
        let dir = tempfile::tempdir().unwrap();
        let looks_like = dir.path().join("127.0.0.1:5000");
        std::fs::create_dir(&looks_like).unwrap();
        std::fs::write(looks_like.join("app:1"), "").unwrap();
        let arg = looks_like.join("app:1");
        assert_eq!(
            input(arg.to_str().unwrap()).unwrap(),
            Input::Image(arg.clone())
        );
    }

    fn no_pull() -> (crate::registry::PushOptions, tempfile::TempDir) {
        (
            crate::registry::PushOptions::default(),
            tempfile::tempdir().unwrap(),
        )
    }

    #[test]
    fn a_lock_and_an_image_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("a.lock");
        std::fs::write(&lock, "").unwrap();
        let img = dir.path().join("img");
        std::fs::create_dir(&img).unwrap();
        assert_eq!(
            input(lock.to_str().unwrap()).unwrap(),
            Input::Lock(lock.clone())
        );
        let (reg, cache) = no_pull();
        let pull = PullOptions {
            registry: &reg,
            cache_dir: cache.path(),
            offline: true,
        };
        let e = diff(lock.to_str().unwrap(), img.to_str().unwrap(), &pull)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one is a lock"), "{e}");
    }

    fn write_image(dest: &Path, arches: &[Arch], content: &[u8], user: Option<&str>) {
        let mut t = TestTree::new();
        t.dir("etc", 0o755);
        t.file("etc/hello", 0o644, content);
        let mut w = ImageWriter::new(dest).unwrap();
        let opts = LayerOptions {
            source_date_epoch: 1_700_000_000,
            compression: Compression::Gzip,
        };
        let layer = w.add_layer(&t.tree, &opts).unwrap();
        for &arch in arches {
            let mut c = ImageConfig::new(arch, 1_700_000_000);
            c.user = user.map(String::from);
            w.add_image(&c, std::slice::from_ref(&layer)).unwrap();
        }
        w.commit(Format::Oci, "v1").unwrap();
    }

    #[test]
    fn platforms_are_paired_by_os_arch() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_image(&a, &[Arch::X86_64, Arch::Aarch64], b"hello\n", None);
        write_image(&b, &[Arch::X86_64], b"HELLO\n", Some("app"));
        let (reg, cache) = no_pull();
        let pull = PullOptions {
            registry: &reg,
            cache_dir: cache.path(),
            offline: true,
        };
        let r = diff(a.to_str().unwrap(), b.to_str().unwrap(), &pull).unwrap();
        assert!(!r.identical);
        let names: Vec<(&str, Option<&str>)> = r
            .parts
            .iter()
            .map(|p| (p.name.as_str(), p.only_in))
            .collect();
        assert_eq!(names, [("linux/amd64", None), ("linux/arm64", Some("a"))]);
        let amd = &r.parts[0];
        let files = amd.files.as_ref().unwrap();
        assert_eq!(files.changed.len(), 1);
        assert_eq!(files.changed[0].path, "/etc/hello");
        assert!(files.changed[0].content);
        assert_eq!(amd.config[0].field, "user");
        assert!(amd.notes[0].contains("has no rpmdb"), "{:?}", amd.notes);
        assert!(r.to_string().contains("linux/arm64: only in A"), "{r}");
        // The same image against itself: identical.
        let same = diff(a.to_str().unwrap(), a.to_str().unwrap(), &pull).unwrap();
        assert!(same.identical);
        assert!(same.to_string().ends_with("no differences\n"));
    }

    #[test]
    fn signed_sizes() {
        assert_eq!(signed(-3), "-3 B");
        assert_eq!(signed(0), "+0 B");
    }
}
