//! `[image] base = "REGISTRY/REPO:TAG"`: the pipeline's side of a
//! published base. Resolution sees the base's packages as installed and
//! plans only what is missing; the build unpacks the base's layers as the
//! lower tree, keeps their blobs unchanged and adds one layer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;

use super::build::{CoreLayer, Shared};
use super::{Resolved, Settings};
use crate::base_image::{BaseImage, PullOptions};
use crate::image::ImageWriter;
use crate::package::{Arch, Nevra};
use crate::recipe::Recipe;
use crate::report::{Event, Reporter};
use crate::resolve::{Plan, Reason, ResolveError};

/// The recipe's base image for `arch` (at the lock's `pinned` digest when
/// given), or `None` without one.
pub(super) fn load(
    recipe: &Recipe,
    pinned: Option<&crate::digest::Digest>,
    arch: Arch,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<Arc<BaseImage>>> {
    let Some(reference) = &recipe.image.base_image else {
        return Ok(None);
    };
    let opts = PullOptions {
        registry: &settings.registry,
        cache_dir: &settings.cache_dir,
        offline: settings.net.offline,
    };
    let base = BaseImage::load(reference, pinned, arch, &opts)
        .with_context(|| format!("the base image of {}", recipe.path.display()))?;
    reporter.event(Event::BaseImagePulled {
        arch: arch.to_string(),
        reference: reference.to_string(),
        digest: base.pulled.manifest_digest.to_string(),
        layers: base.layers().len(),
        bytes: base.layers().iter().map(|l| l.size).sum(),
        packages: base.packages.len(),
    });
    Ok(Some(base))
}

/// A request that needs another version of a base package: say so, with
/// the base named.
pub(super) fn replaces(base: &BaseImage, named: &ResolveError) -> anyhow::Error {
    match named {
        ResolveError::ReplacesInstalled { wanted, installed } => anyhow::anyhow!(
            "{wanted} is needed, but the base image {} installs {installed}, which the new layer may not replace\n  hint: use a base with {wanted}, or drop what needs it from the recipe",
            base.reference
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

/// A local RPM is installed as it is, so the base installing another
/// version of it is in the way (priority keeps the base's copy visible, and
/// a request by name would otherwise take that one silently).
pub(super) fn check_local(base: &BaseImage, local: &crate::repo::RepoIndex) -> anyhow::Result<()> {
    for p in local.packages.iter() {
        if let Some(installed) = base
            .nevras()
            .find(|n| n.name == p.nevra.name && **n != p.nevra)
        {
            return Err(replaces(
                base,
                &ResolveError::ReplacesInstalled {
                    wanted: p.nevra.to_string(),
                    installed: installed.to_string(),
                },
            ));
        }
    }
    Ok(())
}

/// `plan` without the packages the base has installed already; reasons
/// pointing at them become unrecorded, indices re-numbered.
pub(super) fn without_installed(plan: Plan, base: &BaseImage) -> Plan {
    let installed: HashSet<&Nevra> = base.nevras().collect();
    let kept: Vec<usize> = (0..plan.packages.len())
        .filter(|&i| !installed.contains(&plan.packages[i].package.nevra))
        .collect();
    let new_index: HashMap<usize, usize> = kept.iter().enumerate().map(|(n, &o)| (o, n)).collect();
    let packages = kept
        .iter()
        .map(|&i| {
            let mut p = plan.packages[i].clone();
            p.reason = match p.reason {
                Reason::Required { by, dep } => match new_index.get(&by) {
                    Some(&by) => Reason::Required { by, dep },
                    None => Reason::Unrecorded,
                },
                Reason::Recommended { by, dep } => match new_index.get(&by) {
                    Some(&by) => Reason::Recommended { by, dep },
                    None => Reason::Unrecorded,
                },
                r => r,
            };
            p
        })
        .collect();
    let choices = plan
        .choices
        .into_iter()
        .filter_map(|(i, c)| Some((*new_index.get(&i)?, c)))
        .collect();
    Plan {
        packages,
        choices,
        left_out: plan.left_out,
    }
}

/// The base's layers as the image's lower part: their blobs copied into
/// the image unchanged, their tree unpacked to diff the new layer against.
pub(super) fn lower(
    s: &Shared,
    res: &Resolved,
    base: &BaseImage,
    writer: &mut ImageWriter,
) -> anyhow::Result<CoreLayer> {
    let staging = super::build::staging_dir(res)?;
    let mut stage = crate::rootfs::Staging::new(staging.path())?;
    let (mut tree, skipped) = crate::base_image::unpack(base, &mut stage)?;
    // The base's package-manager state is the base's: hardening (which
    // drops such paths when no kept package owns them) must leave it.
    for (path, e) in tree.entries.iter_mut() {
        let under =
            |s: &&str| path == s || path.strip_prefix(*s).is_some_and(|r| r.starts_with('/'));
        if crate::package_manager::STATE_PATHS.iter().any(under) {
            e.package = Some(crate::base_image::REPO.to_string());
        }
    }
    for (path, why) in skipped {
        s.reporter.event(Event::Warning {
            message: format!(
                "the base image's {path} is not carried into the tree ({why}); its layer keeps it"
            ),
        });
    }
    let layers = base
        .layers()
        .iter()
        .map(|l| writer.add_existing_layer(l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CoreLayer {
        layers,
        tree,
        _staging: staging,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::{Evr, Package};
    use crate::resolve::Planned;

    fn pkg(name: &str) -> Package {
        Package::new(
            Nevra::new(name, Evr::parse("1-1"), "x86_64"),
            0,
            format!("{name}.rpm"),
            Digest::sha256_of(name.as_bytes()),
        )
    }

    #[test]
    fn installed_packages_leave_the_plan_and_reasons_follow() {
        let plan = Plan {
            packages: vec![
                Planned {
                    package: pkg("app"),
                    reason: Reason::Requested {
                        request: "app".into(),
                    },
                },
                Planned {
                    package: pkg("glibc"),
                    reason: Reason::Required {
                        by: 0,
                        dep: "libc.so.6".into(),
                    },
                },
                Planned {
                    package: pkg("libfoo"),
                    reason: Reason::Required {
                        by: 0,
                        dep: "libfoo.so".into(),
                    },
                },
                Planned {
                    package: pkg("libbar"),
                    reason: Reason::Required {
                        by: 1,
                        dep: "libbar.so".into(),
                    },
                },
            ],
            ..Plan::default()
        };
        let base = BaseImage {
            reference: "127.0.0.1:5000/b:1".parse().unwrap(),
            pulled: crate::base_image::Pulled {
                digest: Digest::sha256_of(b"i"),
                manifest_digest: Digest::sha256_of(b"m"),
                config: serde_json::json!({}),
                layers: Vec::new(),
            },
            rpmdb_path: "var/lib/rpm/rpmdb.sqlite".into(),
            headers: Vec::new(),
            packages: vec![pkg("glibc")],
        };
        let out = without_installed(plan, &base);
        let names: Vec<&str> = out
            .packages
            .iter()
            .map(|p| p.package.nevra.name.as_str())
            .collect();
        assert_eq!(names, ["app", "libfoo", "libbar"]);
        assert_eq!(
            out.packages[1].reason,
            Reason::Required {
                by: 0,
                dep: "libfoo.so".into()
            }
        );
        assert_eq!(
            out.packages[2].reason,
            Reason::Unrecorded,
            "its `by` is the base's"
        );
    }
}
