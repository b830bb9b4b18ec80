//! What `minibuild plan` shows: each arch's resolved plan, with the
//! scriptlets every package would run (read from headers only: the cache,
//! or Range requests), without downloading packages.

use super::{client, Resolved, Settings};
use crate::cache::Cache;
use crate::explain::{self, PlanView};
use crate::recipe::Recipe;
use crate::report::{Event, Reporter};

/// One view per resolved arch. A header that cannot be read is a warning
/// (its package shows no scriptlets), not an error.
pub fn plan(
    recipe: &Recipe,
    resolved: &[Resolved],
    settings: &Settings,
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<PlanView>> {
    let names = crate::local::repo_names(recipe);
    let client = client(recipe, settings)?;
    let cache = Cache::new(&settings.cache_dir);
    let mut views = Vec::new();
    for r in resolved {
        let mut view = explain::view(&r.plan, r.arch.rpm_name(), &names);
        // Local RPMs are read where they are, by file name in their directory.
        let local = super::build::local_sources(r);
        let packages: Vec<(&crate::package::Package, &str)> = r
            .plan
            .packages
            .iter()
            .zip(&local)
            .map(|(p, local)| match local {
                Some((base, copy)) => (copy, base.as_str()),
                None => (&p.package, r.repos[p.package.repo].baseurl.as_str()),
            })
            .collect();
        let read = crate::scriptlets::for_packages(&client, &cache, &packages, settings.jobs);
        let scriptlets = read
            .into_iter()
            .map(|result| match result {
                Ok(s) => Some(s),
                Err(e) => {
                    reporter.event(Event::Warning {
                        message: format!("{e:#}"),
                    });
                    None
                }
            })
            .collect();
        explain::with_scriptlets(&mut view, scriptlets);
        views.push(view);
    }
    Ok(views)
}
