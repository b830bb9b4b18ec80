//! Leaving the package manager out during resolution, as `exclude` would,
//! where nothing requested needs it (recipe `package_manager = false`).
//!
//! The full plan is solved first; when it holds package-manager packages
//! (`crate::package_manager`) that were not requested by name, the
//! request is solved again with them excluded. Where that fails (a
//! requested package needs one), only those no requested package reaches
//! through Requires are excluded (basesystem's `Recommends: dnf` brings dnf
//! and what dnf requires); where that fails too, the full plan stands.
//! Whatever package-manager package stays is removed after unpacking.

use std::collections::BTreeSet;

use super::order::dependency_graph;
use super::{LeftOut, Plan, Reason, Request, ResolveError};
use crate::package::Package;
use crate::package_manager::is_package_manager;

/// `full` with the package manager left out where the request allows it;
/// `solve` resolves a request (the same solver and packages as `full`).
pub fn leave_out_package_manager(
    full: Plan,
    request: &Request,
    solve: impl Fn(&Request) -> Result<Plan, ResolveError>,
) -> Plan {
    let candidates: Vec<usize> = full
        .packages
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            is_package_manager(&p.package.nevra.name)
                && !matches!(p.reason, Reason::Requested { .. })
        })
        .map(|(i, _)| i)
        .collect();
    let needed = hard_needed(&full);
    let unneeded: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| !needed.contains(i))
        .collect();
    for attempt in [candidates, unneeded] {
        if attempt.is_empty() {
            continue;
        }
        let mut narrowed = request.clone();
        narrowed.exclude.extend(
            attempt
                .iter()
                .map(|&i| full.packages[i].package.nevra.name.clone()),
        );
        if let Ok(mut plan) = solve(&narrowed) {
            plan.left_out = left_out(&full, &plan);
            return plan;
        }
    }
    full
}

/// The packages of `plan` the requested ones reach through Requires
/// (any planned provider of a requirement counts).
fn hard_needed(plan: &Plan) -> BTreeSet<usize> {
    let packages: Vec<&Package> = plan.packages.iter().map(|p| &p.package).collect();
    let graph = dependency_graph(&packages);
    let mut seen: BTreeSet<usize> = plan
        .packages
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.reason, Reason::Requested { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut queue: Vec<usize> = seen.iter().copied().collect();
    while let Some(i) = queue.pop() {
        for &j in graph[i].keys() {
            if seen.insert(j) {
                queue.push(j);
            }
        }
    }
    seen
}

/// The packages of `full` that `narrowed` does without, and why they were
/// in `full`.
fn left_out(full: &Plan, narrowed: &Plan) -> Vec<LeftOut> {
    let kept: BTreeSet<&str> = narrowed.nevras().map(|n| n.name.as_str()).collect();
    let name_of = |i: usize| {
        full.packages
            .get(i)
            .map(|p| p.package.nevra.name.as_str())
            .unwrap_or("?")
    };
    full.packages
        .iter()
        .filter(|p| !kept.contains(p.package.nevra.name.as_str()))
        .map(|p| {
            let name = &p.package.nevra.name;
            let wanted = match &p.reason {
                Reason::Required { by, dep } => format!("required by {} ({dep})", name_of(*by)),
                Reason::Recommended { by, dep } => {
                    format!("recommended by {} ({dep})", name_of(*by))
                }
                Reason::Requested { request } => format!("requested as `{request}`"),
                Reason::Unrecorded => "reason not recorded".to_string(),
            };
            let why = if is_package_manager(name) {
                format!("package manager, {wanted}; nothing requested needs it")
            } else {
                format!("{wanted}; not needed once the package manager is left out")
            };
            LeftOut {
                name: name.clone(),
                why,
            }
        })
        .collect()
}
