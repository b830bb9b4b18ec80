//! The SBOM and in-toto provenance written beside the image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::{Built, Resolved, SbomFormat, Settings};
use crate::digest::Digest;
use crate::image::{self, Format, ImageWriter};
use crate::package::Arch;
use crate::recipe::Recipe;
use crate::resolve::Plan;
use crate::rootfs::{self, Tree};

/// What one arch's build leaves for the SBOM and provenance.
pub(super) struct ArchFacts {
    pub arch: Arch,
    /// The plan with header-filled package fields (license, vendor…).
    pub plan: Plan,
    pub distro: Option<crate::sbom::Distro>,
    pub manifest_digest: Digest,
    /// Per package (plan order): the fingerprint that signed it.
    pub signers: Vec<Option<String>>,
    pub epoch: u64,
    /// Packages installed and then removed with the package manager: not
    /// in the image, so not in its SBOM (the provenance still lists their
    /// RPMs, which were inputs).
    pub removed: BTreeSet<String>,
    /// With `[image] base`: the digest of the core's layer (the first).
    pub core_layer: Option<Digest>,
}

/// The image's own `os-release` (`etc/os-release`, else `usr/lib/os-release`),
/// which names the distribution for purls.
pub(super) fn distro_of(tree: &Tree) -> Option<crate::sbom::Distro> {
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

/// Commit the image, then write the SBOM and provenance beside it.
pub(super) fn commit(
    recipe: &Recipe,
    resolved: &[Resolved],
    per_arch: &[ArchFacts],
    writer: ImageWriter,
    format: Format,
    settings: &Settings,
) -> anyhow::Result<Built> {
    // From the image's rename to the provenance's, an interrupt waits: the
    // outputs are replaced as a set. A SIGKILL cannot be waited for, so the
    // previous SBOM and provenance go first: a kill in between leaves an
    // image with its SBOM missing (visible), never beside the old one.
    let _commit = crate::temporaries::commit_section();
    remove_stale_supply_chain(per_arch, settings)?;
    let written = writer.commit(format, &recipe.image.tag)?;
    let mut built = Built {
        digest: written.digest,
        output: written.path,
        sboms: Vec::new(),
        provenance: None,
    };
    let image_name = format!("{}:{}", recipe.image.name, recipe.image.tag);
    write_supply_chain(
        recipe,
        resolved,
        per_arch,
        &image_name,
        settings,
        &mut built,
    )?;
    Ok(built)
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
        .chain(crate::local::unchecked(recipe))
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
                created: image::config::rfc3339(facts.epoch),
                baseurls: res.repos.iter().map(|r| r.baseurl.clone()).collect(),
                local_repo: Some(recipe.repos.len()),
            };
            // What the image holds: not the removed package manager.
            let in_image = Plan {
                packages: facts
                    .plan
                    .packages
                    .iter()
                    .filter(|p| !facts.removed.contains(&p.package.nevra.name))
                    .cloned()
                    // Over a published base, its packages are the image's too
                    // (no download location: they came in its layers).
                    .chain(res.base.iter().flat_map(|b| {
                        b.packages.iter().map(|p| crate::resolve::Planned {
                            package: crate::package::Package {
                                repo: usize::MAX,
                                ..p.clone()
                            },
                            reason: crate::resolve::Reason::Unrecorded,
                        })
                    }))
                    .collect(),
                ..Plan::default()
            };
            let mut doc = match format {
                SbomFormat::Spdx => crate::sbom::spdx(&in_image, &subject),
                SbomFormat::CycloneDx => crate::sbom::cyclonedx(&in_image, &subject),
            };
            // Over a core, the SBOM still lists every package of the image
            // and names the core's layer (the first).
            let core = recipe
                .core
                .as_deref()
                .zip(facts.core_layer.as_ref())
                .map(|(c, layer)| {
                    let name = c.path.file_name().unwrap_or_default().to_string_lossy();
                    format!("core {name} ({}), layer {layer}", c.digest)
                });
            // A published base is named the same way.
            let core = core.or_else(|| {
                let b = res.base.as_ref()?;
                Some(format!(
                    "base image {} ({}), manifest {}",
                    b.reference, b.pulled.digest, b.pulled.manifest_digest
                ))
            });
            match format {
                SbomFormat::Spdx => {
                    let comment = match &core {
                        Some(c) => format!("{note}; {c}"),
                        None => note.clone(),
                    };
                    doc["creationInfo"]["comment"] = comment.into()
                }
                SbomFormat::CycloneDx => {
                    let mut props =
                        vec![serde_json::json!({ "name": "minibuild:signatures", "value": note })];
                    if let Some(c) = &core {
                        props.push(serde_json::json!({ "name": "minibuild:core", "value": c }));
                    }
                    doc["metadata"]["properties"] = props.into()
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
            repos.extend(crate::local::provenance(recipe, facts.arch));
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
            core: recipe
                .core
                .as_deref()
                .map(|core| crate::provenance::CoreUse {
                    recipe_uri: format!("file://{}", absolute(&core.path).display()),
                    recipe_digest: core.digest.clone(),
                    layers: per_arch
                        .iter()
                        .filter_map(|f| {
                            Some((f.arch.rpm_name().to_string(), f.core_layer.clone()?))
                        })
                        .collect(),
                }),
            base: resolved.iter().find_map(|r| r.base.as_ref()).map(|b| {
                crate::provenance::BaseUse {
                    reference: b.reference.to_string(),
                    digest: b.pulled.digest.clone(),
                    manifests: resolved
                        .iter()
                        .filter_map(|r| {
                            let b = r.base.as_ref()?;
                            Some((
                                r.arch.rpm_name().to_string(),
                                b.pulled.manifest_digest.clone(),
                            ))
                        })
                        .collect(),
                }
            }),
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
