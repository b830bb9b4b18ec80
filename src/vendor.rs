//! `minibuild vendor RECIPE DIR`: the recipe's locked packages and their
//! repos' metadata as local rpm-md repositories, for builds on a machine
//! with no network (`--baseurl NAME=file://DIR/NAME/$basearch/`).
//!
//! Layout: `DIR/<repo>/<arch>/` holds the repo's own `repodata/repomd.xml`
//! (with `repomd.xml.asc` when the repo is `repo_gpgcheck`ed), its primary
//! and filelists files byte for byte, and each vendored RPM at the
//! `<location>` the metadata gives it. The metadata is copied, not
//! regenerated, so its signature still verifies and nothing minibuild
//! wrote stands between the mirror and the later build; it lists the whole
//! repo, so builds from the vendored copy use the lock (which names exactly
//! the vendored RPMs). Every RPM is checked against its sha256 and, where
//! the recipe asks, its signature before it is written, and DIR appears only
//! when complete (a staging directory beside it, renamed at the end).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::cache::Cache;
use crate::pipeline::{self, Resolved, Settings};
use crate::recipe::Recipe;
use crate::repo::{self, LoadOptions, RepoSpec};
use crate::report::Reporter;

/// What one `(repo, arch)` directory received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendored {
    pub repo: String,
    pub arch: String,
    pub packages: usize,
    pub bytes: u64,
}

/// Write the packages of `resolved` and their repos' metadata into `dir`,
/// which must not exist or be empty.
pub fn vendor(
    recipe: &Recipe,
    resolved: &[Resolved],
    settings: &Settings,
    dir: &Path,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<Vendored>> {
    refuse_occupied(dir)?;
    let parent = crate::fsutil::parent_dir(dir);
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = crate::fsutil::AtomicDir::create_in(
        parent,
        crate::fsutil::TEMP_PREFIX,
        crate::fsutil::umask_dir_mode(),
    )
    .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;

    let client = pipeline::client(recipe, settings)?;
    let cache = Cache::new(&settings.cache_dir);
    let rings = pipeline::keyrings(recipe, &client)?;
    let mut out = Vec::new();
    for res in resolved {
        let rpms = pipeline::fetch_rpms(&client, &cache, res, settings.jobs, reporter)?;
        pipeline::verify_signatures(recipe, &rings, res, &rpms, reporter)?;
        let mut per_repo: BTreeMap<usize, Vendored> = BTreeMap::new();
        for (p, rpm) in res.plan.packages.iter().zip(&rpms) {
            // Local RPMs stay where the recipe names them; the lock has their sha256.
            let Some(repo) = recipe.repos.get(p.package.repo) else {
                continue;
            };
            let base = staging.path().join(&repo.name).join(res.arch.to_string());
            let dest = place(&base, &p.package.location).with_context(|| {
                format!(
                    "cannot vendor {} from repo `{}`",
                    p.package.nevra, repo.name
                )
            })?;
            copy(rpm.path(), &dest)?;
            let v = per_repo.entry(p.package.repo).or_insert_with(|| Vendored {
                repo: repo.name.clone(),
                arch: res.arch.to_string(),
                packages: 0,
                bytes: 0,
            });
            v.packages += 1;
            v.bytes += p.package.download_size;
        }
        // Each repo's metadata, as loaded (and, where asked, verified) now.
        for &i in per_repo.keys() {
            let repo = &recipe.repos[i];
            let index = pipeline::load_repo(
                recipe, settings, &client, &cache, &rings, i, res.arch, reporter,
            )?;
            let spec = RepoSpec {
                name: repo.name.clone(),
                baseurl: index.baseurl.clone(),
                index: i,
            };
            let options = LoadOptions {
                offline: settings.net.offline,
            };
            let files = repo::metadata_files(&client, &cache, &spec, options)?;
            let base = staging.path().join(&repo.name).join(res.arch.to_string());
            let repodata = base.join("repodata");
            fs::create_dir_all(&repodata)
                .with_context(|| format!("cannot create {}", repodata.display()))?;
            write(&repodata.join("repomd.xml"), &files.repomd)?;
            if repo.repo_gpgcheck {
                // The signature of exactly these bytes, checked again.
                let url = crate::http::join(
                    &repo::normalize_baseurl(&index.baseurl),
                    "repodata/repomd.xml.asc",
                );
                let sig = client.read_to_vec(&url)?;
                rings[i]
                    .verify_detached(&files.repomd, &sig, &url)
                    .with_context(|| {
                        format!("{url} does not sign the repomd.xml just read; the mirror changed mid-run, vendor again")
                    })?;
                write(&repodata.join("repomd.xml.asc"), &sig)?;
            }
            for (location, cached) in &files.data {
                let dest = place(&base, location).with_context(|| {
                    format!("cannot vendor the metadata of repo `{}`", repo.name)
                })?;
                copy(cached, &dest)?;
            }
        }
        out.extend(per_repo.into_values());
    }
    let _commit = crate::temporaries::commit_section();
    // An empty directory given as DIR is replaced (refuse_occupied allowed it).
    staging
        .persist(dir, crate::fsutil::TEMP_PREFIX)
        .with_context(|| format!("cannot move the vendored tree to {}", dir.display()))?;
    Ok(out)
}

/// DIR may be new or an empty directory; anything else is the user's.
fn refuse_occupied(dir: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let mut entries = fs::read_dir(dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "refusing to vendor into {}: it is not empty\n  hint: give a new or empty directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!(
            "refusing to vendor into {}: it exists and is not a directory\n  hint: give a new or empty directory",
            dir.display()
        ),
    }
}

/// Where `location` (from repo metadata: untrusted) goes under `base`:
/// resolved as the later build will resolve it against `file://base/`, and
/// refused if it leaves the repo.
fn place(base: &Path, location: &str) -> anyhow::Result<PathBuf> {
    const ROOT: &str = "file:///vendor/";
    let url = crate::location::resolve(ROOT, location)?;
    let Some(rel) = url.strip_prefix(ROOT) else {
        bail!(
            "location `{location}` is not inside the repo (an absolute URL); it cannot be vendored"
        );
    };
    let path = base.join(crate::location::decode(rel));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(path)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_stay_inside_the_repo_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("fedora/x86_64");
        assert_eq!(
            place(&base, "Packages/b/busybox-1.36.1-2.fc40.x86_64.rpm").unwrap(),
            base.join("Packages/b/busybox-1.36.1-2.fc40.x86_64.rpm")
        );
        assert_eq!(
            place(&base, "./Packages/./a%2Bb.rpm").unwrap(),
            base.join("Packages/a+b.rpm"),
            "dot segments dropped, percent-encoding decoded as the file:// reader does"
        );
        for hostile in [
            "../../etc/passwd",
            "Packages/../../x.rpm",
            "http://elsewhere.invalid/x.rpm",
        ] {
            assert!(place(&base, hostile).is_err(), "{hostile}");
        }
        assert!(!tmp.path().join("etc").exists());
    }

    #[test]
    fn only_a_new_or_empty_directory_is_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(refuse_occupied(&tmp.path().join("new")).is_ok());
        assert!(refuse_occupied(tmp.path()).is_ok());
        fs::write(tmp.path().join("keep"), "x").unwrap();
        let err = refuse_occupied(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        let err = refuse_occupied(&tmp.path().join("keep"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
