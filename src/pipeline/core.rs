//! `[image] base = "core.toml"`: the core's plan, resolved (or read from
//! its own lock) on its own, and the app's plan laid over it. The core's
//! packages are the resolver's installed set; the app's plan lists the
//! core's packages and its own, and [`Resolved::core`] keeps the core's
//! plan for the first layer.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context as _};

use super::{resolve_or_lock, LockFile, Resolved, Settings};
use crate::package::Nevra;
use crate::recipe::Recipe;
use crate::report::Reporter;
use crate::resolve::{Plan, Planned, Reason};

/// The core recipe's plans (per arch, the app's arches), or `None` without a base.
pub(super) fn core_plans(
    recipe: &Recipe,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<Vec<Resolved>>> {
    let Some(core) = recipe.core.as_deref() else {
        return Ok(None);
    };
    let lock = LockFile::beside(core, false)?;
    let resolved = resolve_or_lock(core, lock.as_ref(), settings, reporter).with_context(|| {
        format!(
            "the core {} of {}",
            core.path.display(),
            recipe.path.display()
        )
    })?;
    for arch in &recipe.image.arch {
        if !resolved.iter().any(|r| r.arch == *arch) {
            bail!(
                "{} builds for {arch}, but its core {} does not\n  hint: add {arch} to the core's image.arch",
                recipe.path.display(),
                core.path.display()
            );
        }
    }
    Ok(Some(resolved))
}

/// The core's plan for `arch`.
pub(super) fn for_arch(core: &[Resolved], arch: crate::package::Arch) -> Option<&Resolved> {
    core.iter().find(|r| r.arch == arch)
}

/// The NEVRAs of the core's plan: the resolver's installed set.
pub(super) fn installed(core: &Resolved) -> Vec<Nevra> {
    core.plan.nevras().cloned().collect()
}

/// The NEVRAs of `res`'s core, empty without one.
pub(super) fn core_set(res: &Resolved) -> HashSet<Nevra> {
    res.core
        .as_deref()
        .map(|c| c.plan.nevras().cloned().collect())
        .unwrap_or_default()
}

/// The app's plan with the core's packages added (those it did not pull
/// in itself), in the solver's order (name, then arch), reasons re-indexed.
/// Core packages take the app's repo of the same name.
pub(super) fn lay_over(core: &Resolved, mut app: Resolved) -> anyhow::Result<Resolved> {
    let have: HashSet<Nevra> = app.plan.nevras().cloned().collect();
    // (package, reason with `by` as a NEVRA)
    let mut all: Vec<(Planned, Option<Nevra>)> = Vec::new();
    let by_nevra = |plan: &Plan, r: &Reason| match r {
        Reason::Required { by, .. } | Reason::Recommended { by, .. } => {
            plan.packages.get(*by).map(|p| p.package.nevra.clone())
        }
        _ => None,
    };
    for p in &app.plan.packages {
        all.push((p.clone(), by_nevra(&app.plan, &p.reason)));
    }
    for p in &core.plan.packages {
        if have.contains(&p.package.nevra) {
            continue;
        }
        let repo_name = &core.repos[p.package.repo].name;
        let repo = app
            .repos
            .iter()
            .position(|r| &r.name == repo_name)
            .with_context(|| {
                format!(
                    "the core's package {} comes from repo `{repo_name}`, which the app recipe does not have\n  hint: add the core's [[repo]] `{repo_name}` to the app recipe, so that its packages resolve against the core's",
                    p.package.nevra
                )
            })?;
        let mut planned = p.clone();
        planned.package.repo = repo;
        all.push((planned, by_nevra(&core.plan, &p.reason)));
    }
    all.sort_by(|(a, _), (b, _)| {
        (&a.package.nevra.name, &a.package.nevra.arch)
            .cmp(&(&b.package.nevra.name, &b.package.nevra.arch))
    });
    let index: HashMap<Nevra, usize> = all
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (p.package.nevra.clone(), i))
        .collect();
    let choices = app
        .plan
        .choices
        .iter()
        .filter_map(|(i, c)| {
            let n = &app.plan.packages.get(*i)?.package.nevra;
            Some((*index.get(n)?, c.clone()))
        })
        .collect();
    let packages = all
        .into_iter()
        .map(|(mut p, by)| {
            let at = by.and_then(|n| index.get(&n).copied());
            p.reason = match (p.reason, at) {
                (Reason::Required { dep, .. }, Some(by)) => Reason::Required { by, dep },
                (Reason::Recommended { dep, .. }, Some(by)) => Reason::Recommended { by, dep },
                (Reason::Required { .. } | Reason::Recommended { .. }, None) => Reason::Unrecorded,
                (r, _) => r,
            };
            p
        })
        .collect();
    app.plan = Plan {
        packages,
        choices,
        left_out: std::mem::take(&mut app.plan.left_out),
    };
    app.core = Some(Box::new(core.clone()));
    Ok(app)
}

/// A plan read from the app's lock, checked against the core's: every core
/// package is in it, at the core's version.
pub(super) fn check_lock(
    core: &Resolved,
    app: &Resolved,
    lock_path: &std::path::Path,
    recipe: &Recipe,
) -> anyhow::Result<()> {
    let have: HashSet<&Nevra> = app.plan.nevras().collect();
    for n in core.plan.nevras() {
        if !have.contains(n) {
            bail!(
                "{}: the core installs {n} ({}), which the lock does not have for {}\n  hint: the core changed; regenerate the lock with `minibuild lock {} --update`",
                lock_path.display(),
                recipe.core.as_deref().map(|c| c.path.display().to_string()).unwrap_or_default(),
                app.arch,
                recipe.path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::Package;
    use crate::package::{Arch, Evr};
    use crate::pipeline::RepoRef;

    fn pkg(name: &str, repo: usize) -> Package {
        Package::new(
            Nevra::new(name, Evr::parse("1-1"), "x86_64"),
            repo,
            format!("{name}.rpm"),
            Digest::sha256_of(name.as_bytes()),
        )
    }

    fn repo(name: &str) -> RepoRef {
        RepoRef {
            name: name.into(),
            baseurl: format!("file:///{name}"),
            revision: String::new(),
            repomd_digest: None,
            via: None,
        }
    }

    fn resolved(repos: Vec<RepoRef>, packages: Vec<Planned>) -> Resolved {
        Resolved {
            arch: Arch::X86_64,
            repos,
            plan: Plan {
                packages,
                ..Plan::default()
            },
            core: None,
            base: None,
        }
    }

    #[test]
    fn core_packages_join_the_plan_with_reasons_reindexed() {
        // Core: busybox (requested), libc (required by busybox), repo "base" at 1.
        let core = resolved(
            vec![repo("other"), repo("base")],
            vec![
                Planned {
                    package: pkg("busybox", 1),
                    reason: Reason::Requested {
                        request: "busybox".into(),
                    },
                },
                Planned {
                    package: pkg("libc", 1),
                    reason: Reason::Required {
                        by: 0,
                        dep: "libc.so.6".into(),
                    },
                },
            ],
        );
        // App: zapp (requested) needs libc, which is the core's.
        let app = resolved(
            vec![repo("base")],
            vec![
                Planned {
                    package: pkg("libc", 0),
                    reason: Reason::Required {
                        by: 1,
                        dep: "libc.so.6".into(),
                    },
                },
                Planned {
                    package: pkg("zapp", 0),
                    reason: Reason::Requested {
                        request: "zapp".into(),
                    },
                },
            ],
        );
        let merged = lay_over(&core, app).unwrap();
        let names: Vec<&str> = merged
            .plan
            .packages
            .iter()
            .map(|p| p.package.nevra.name.as_str())
            .collect();
        assert_eq!(names, ["busybox", "libc", "zapp"]);
        assert_eq!(merged.plan.packages[0].package.repo, 0, "the app's `base`");
        assert_eq!(
            merged.plan.packages[1].reason,
            Reason::Required {
                by: 2,
                dep: "libc.so.6".into()
            }
        );
        assert_eq!(core_set(&merged).len(), 2);
    }

    #[test]
    fn a_core_repo_the_app_lacks_is_named() {
        let core = resolved(
            vec![repo("corerepo")],
            vec![Planned {
                package: pkg("busybox", 0),
                reason: Reason::Unrecorded,
            }],
        );
        let app = resolved(vec![repo("base")], Vec::new());
        let err = lay_over(&core, app).unwrap_err().to_string();
        assert!(
            err.contains("busybox") && err.contains("`corerepo`"),
            "{err}"
        );
    }
}
