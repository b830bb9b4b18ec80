//! What `-o` may replace.
//!
//! A build replaces its destination only when that is a previous minibuild
//! output of the same format, so that a slip in `-o` cannot destroy a
//! recipe, a directory or any other file. A previous output is recognised by
//! what minibuild writes into every image:
//!
//! - `oci`: a directory holding an `oci-layout` file (or an empty directory);
//! - `oci-archive`: a tar holding `oci-layout` and `index.json`, whose image
//!   manifest carries a `dev.minibuild.*` annotation;
//! - `docker-archive`: a tar whose `manifest.json` names a config with a
//!   history line created by `minibuild`.
//!
//! [`Replace::AnyFile`] (`--force`) also replaces any other file. A
//! directory is never replaced by an archive, nor a non-empty directory that
//! is not a layout by a layout: removing a tree is left to the user.
//!
//! The check runs before the build starts and again just before the commit.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::Value;

use super::error::ImageError;
use super::format::Format;
use super::local::{Content, LocalImage};

/// How much of an existing destination a build may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replace {
    /// Only a previous minibuild output of the same format.
    #[default]
    PreviousOutput,
    /// Also any other file (`--force`); still never a directory tree.
    AnyFile,
}

/// Manifest annotations minibuild writes start with this.
const MINIBUILD_ANNOTATION_PREFIX: &str = "dev.minibuild.";
/// A docker-archive's config history says `minibuild VERSION: install …`.
const MINIBUILD_CREATED_BY: &str = "minibuild";
/// docker-archive members read into memory: manifest and configs are small.
const MAX_JSON_MEMBER: u64 = 1 << 20;
/// An image tar has a handful of entries; stop reading a foreign one early.
const MAX_MEMBERS: usize = 4096;

/// Refuse `dest` unless a `format` build may replace it under `replace`.
pub fn check(dest: &Path, format: Format, replace: Replace) -> Result<(), ImageError> {
    let meta = match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io("inspect", dest, e)),
        Ok(meta) => meta,
    };
    let refuse = |reason: String| {
        Err(ImageError::RefuseToReplace {
            path: dest.to_path_buf(),
            reason,
        })
    };
    if meta.is_dir() {
        if format != Format::Oci {
            return refuse(format!(
                "it is a directory, and --format {} writes one file\n  \
                 hint: name a file inside it (e.g. {}/image.tar), or use --format oci for a layout directory",
                format.name(),
                dest.display()
            ));
        }
        let empty = fs::read_dir(dest)
            .map_err(|e| ImageError::io("read", dest, e))?
            .next()
            .is_none();
        if empty || dest.join("oci-layout").is_file() {
            return Ok(());
        }
        return refuse(
            "it is a directory that is neither empty nor an OCI layout (no `oci-layout` file)\n  \
             hint: choose a new directory, or remove this one yourself"
                .into(),
        );
    }
    if replace == Replace::AnyFile {
        return Ok(());
    }
    let found = if meta.is_file() {
        previous_output(dest)
    } else {
        None
    };
    match found {
        Some(f) if f == format => Ok(()),
        Some(f) => refuse(format!(
            "it is a minibuild {} and this build writes {}\n  \
             hint: choose another path, or add --force to replace it",
            f.name(),
            format.name()
        )),
        None => refuse(
            "it is not an image minibuild wrote (a recipe, a lock or any other file stays untouched)\n  \
             hint: choose another path, or add --force to replace it"
                .into(),
        ),
    }
}

/// The format of the minibuild archive at `path`, or None for any other file.
fn previous_output(path: &Path) -> Option<Format> {
    if let Ok(image) = LocalImage::open(path) {
        if image.has_file("oci-layout") {
            return oci_archive_is_ours(&image).then_some(Format::OciArchive);
        }
    }
    let members = small_members(path)?;
    let json = |name: &str| -> Option<Value> { serde_json::from_slice(members.get(name)?).ok() };
    let manifest = json("manifest.json")?;
    let config = json(manifest.get(0)?.get("Config")?.as_str()?)?;
    let ours = config
        .get("history")?
        .as_array()?
        .iter()
        .filter_map(|h| h.get("created_by")?.as_str())
        .any(|c| c.starts_with(MINIBUILD_CREATED_BY));
    ours.then_some(Format::DockerArchive)
}

/// Whether the first image manifest the archive's index leads to (through
/// at most two nested indexes) has a minibuild annotation.
fn oci_archive_is_ours(image: &LocalImage) -> bool {
    let mut next = image.entries().first().cloned();
    for _ in 0..3 {
        let Some(manifest) = next.and_then(|d| image.manifest(&d).ok()) else {
            return false;
        };
        match manifest.content {
            Content::Index { manifests } => next = manifests.into_iter().next(),
            Content::Image { .. } => {
                return manifest
                    .annotations
                    .keys()
                    .any(|k| k.starts_with(MINIBUILD_ANNOTATION_PREFIX))
            }
        }
    }
    false
}

/// The small regular files of the tar at `path` by name; None when it is
/// not a readable tar (or an unreasonably long one).
fn small_members(path: &Path) -> Option<BTreeMap<String, Vec<u8>>> {
    let file = File::open(path).ok()?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut out = BTreeMap::new();
    let mut count = 0;
    // Layer blobs are skipped by seeking, so even a large image reads fast.
    for entry in archive.entries_with_seek().ok()? {
        let mut entry = entry.ok()?;
        count += 1;
        if count > MAX_MEMBERS {
            return None;
        }
        if entry.header().entry_type() != tar::EntryType::Regular || entry.size() > MAX_JSON_MEMBER
        {
            continue;
        }
        let name = entry.path().ok()?.to_str()?.to_string();
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).ok()?;
        out.insert(name, bytes);
    }
    (count > 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_destination_is_free() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("new.tar");
        assert!(check(&dest, Format::OciArchive, Replace::PreviousOutput).is_ok());
    }

    #[test]
    fn foreign_file_needs_force_and_a_directory_is_never_an_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let recipe = tmp.path().join("app.toml");
        fs::write(&recipe, "[image]\n").unwrap();
        let err = check(&recipe, Format::OciArchive, Replace::PreviousOutput)
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.toml") && err.contains("--force"), "{err}");
        assert!(check(&recipe, Format::OciArchive, Replace::AnyFile).is_ok());

        let err = check(tmp.path(), Format::DockerArchive, Replace::AnyFile)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a directory"), "{err}");
        assert!(check(tmp.path(), Format::Oci, Replace::AnyFile).is_err());
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(check(&empty, Format::Oci, Replace::PreviousOutput).is_ok());
    }

    /// A minibuild-like image of `arches` written as `format` to `dest`.
    fn write_image(dest: &Path, format: Format, arches: &[crate::package::Arch]) {
        let tree = crate::image::test_tree::TestTree::sample();
        let mut w = crate::image::ImageWriter::new(dest).unwrap();
        w.set_name("example/test");
        let opts = crate::image::LayerOptions {
            source_date_epoch: 1,
            compression: crate::image::Compression::Gzip,
        };
        for &arch in arches {
            let mut c = crate::image::ImageConfig::new(arch, 1);
            c.annotations
                .insert("dev.minibuild.recipe.digest".into(), "sha256:0".into());
            c.history.push(crate::image::HistoryEntry {
                created_by: "minibuild 0.1.0: install x".into(),
                comment: None,
                empty_layer: false,
            });
            let layer = w.add_layer(&tree.tree, &opts).unwrap();
            w.add_image(&c, &[layer]).unwrap();
        }
        w.commit(format, "latest").unwrap();
    }

    #[test]
    fn previous_outputs_are_recognised_by_format() {
        use crate::package::Arch;
        let tmp = tempfile::tempdir().unwrap();
        let multi = tmp.path().join("multi.tar");
        write_image(&multi, Format::OciArchive, &[Arch::X86_64, Arch::Aarch64]);
        assert_eq!(previous_output(&multi), Some(Format::OciArchive));
        let docker = tmp.path().join("docker.tar");
        write_image(&docker, Format::DockerArchive, &[Arch::X86_64]);
        assert_eq!(previous_output(&docker), Some(Format::DockerArchive));
        // Rebuilding in place works; the commit re-checks, so this goes through it.
        write_image(&multi, Format::OciArchive, &[Arch::X86_64]);
        write_image(&docker, Format::DockerArchive, &[Arch::X86_64]);
        let err = check(&docker, Format::OciArchive, Replace::PreviousOutput)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("it is a minibuild docker-archive and this build writes oci-archive"),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_tar_is_not_a_previous_output() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("other.tar");
        let mut b = tar::Builder::new(File::create(&dest).unwrap());
        for (name, body) in [
            ("oci-layout", &br#"{"imageLayoutVersion":"1.0.0"}"#[..]),
            ("index.json", br#"{"manifests":[]}"#),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        assert_eq!(previous_output(&dest), None);
        assert!(check(&dest, Format::OciArchive, Replace::PreviousOutput).is_err());
    }
}
