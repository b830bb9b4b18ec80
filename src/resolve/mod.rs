//! Dependency resolution: plain data in ([`Request`] + packages), a [`Plan`] out,
//! by [`ResolvoSolver`].

pub mod leave_out;
pub mod minimal;
pub mod prune;
pub mod rich;
mod solver;
#[cfg(test)]
mod tests;

pub use solver::ResolvoSolver;

use std::collections::BTreeMap;

use crate::package::Package;
use crate::package::{Arch, Nevra};

/// What the recipe asks for, in resolver terms.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Package names or capabilities (`/bin/sh`, `nginx >= 1.24`) to install.
    pub install: Vec<String>,
    /// Package names never to install (glob `*` allowed).
    pub exclude: Vec<String>,
    /// Providers to choose when several packages satisfy a dependency.
    pub prefer: Vec<String>,
    /// Providers not to choose while another one satisfies the dependency
    /// (glob `*` allowed). Weaker than `exclude`: still installed when it is
    /// the only provider or requested by name. Overrides the [`minimal`] list.
    pub avoid: Vec<String>,
    /// After `prefer`, choose the distro family's [`minimal`] providers.
    pub minimal_by_default: bool,
    /// Install Recommends/Supplements too (dnf's `install_weak_deps`).
    pub weak_deps: bool,
    pub arch: Option<Arch>,
    /// Packages already installed (a core layer's, libsolv's "system
    /// repo"): they satisfy dependencies first, and no other version of
    /// them is installed. A plan may list them (when something needs them).
    pub installed: Vec<Nevra>,
}

/// Why a package is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Named in `packages.install` (the text as written).
    Requested { request: String },
    /// Pulled in by `by` (an index into `Plan::packages`) for `dep`.
    Required { by: usize, dep: String },
    /// Pulled in as a weak dependency.
    Recommended { by: usize, dep: String },
    /// Read from a lock written before reasons were recorded.
    Unrecorded,
}

/// One package chosen for installation.
#[derive(Debug, Clone)]
pub struct Planned {
    pub package: Package,
    pub reason: Reason,
}

/// The resolver's answer: the packages to install, in a stable order
/// (sorted by name, then arch).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub packages: Vec<Planned>,
    /// Packages (by index) chosen among several providers of what pulled
    /// them in by a preference rather than the name rules.
    pub choices: BTreeMap<usize, Choice>,
    /// Packages a resolution without the package manager left out (see
    /// [`leave_out`]); not recorded in locks.
    pub left_out: Vec<LeftOut>,
}

/// A package the full resolution had and the plan leaves out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    pub name: String,
    pub why: String,
}

/// A provider chosen over others by a preference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Choice {
    /// The other package names that provide the same dependency.
    pub over: Vec<String>,
    pub by: ChosenBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// The recipe's `packages.prefer`.
    Prefer,
    /// The built-in [`minimal`] list.
    Minimal,
    /// The recipe's `packages.avoid` ruled out the other providers.
    Avoid,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.by {
            ChosenBy::Prefer => "the recipe's prefer",
            ChosenBy::Minimal => "minimal provider",
            ChosenBy::Avoid => "the recipe's avoid",
        };
        write!(f, "chosen over {}: {why}", self.over.join(", "))
    }
}

impl Plan {
    pub fn nevras(&self) -> impl Iterator<Item = &Nevra> {
        self.packages.iter().map(|p| &p.package.nevra)
    }
}

/// Why a request could not be satisfied, in dnf's spirit.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no package provides `{request}`, which the recipe asks for{}", hint_note(.hint))]
    NothingProvides {
        request: String,
        hint: Option<String>,
    },
    #[error("{package} requires `{dep}`, but no installable package provides it{}", rejected_note(.rejected))]
    Unsatisfied {
        package: String,
        dep: String,
        rejected: Vec<(String, String)>,
    },
    #[error("`{request}` is excluded by the recipe's packages.exclude")]
    Excluded { request: String },
    /// The requests cannot all be installed together; `explanation` is the
    /// solver's conflict tree (NEVRAs, dependencies, rejected candidates).
    #[error("cannot install {requests}:\n{explanation}")]
    Unsolvable {
        requests: String,
        explanation: String,
    },
    /// The request needs another version of a package the core installs.
    #[error("{wanted} is needed, but the core layer installs {installed}, which an app layer may not replace\n  hint: build the core with {wanted}, or drop what needs it from the app recipe")]
    ReplacesInstalled { wanted: String, installed: String },
    #[error("the recipe asks for `{request}`, which is not a valid dependency")]
    BadRequest {
        request: String,
        #[source]
        source: rich::RichError,
    },
}

fn hint_note(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

fn rejected_note(rejected: &[(String, String)]) -> String {
    if rejected.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = rejected
        .iter()
        .map(|(p, why)| format!("\n  - {p}: {why}"))
        .collect();
    format!("; candidates rejected:{}", lines.concat())
}
pub mod order;
pub mod priority;

/// The first package of `plan` (resolved without the installed set) that
/// is another version of an `installed` one: why the request cannot be
/// resolved on top of them.
pub fn replaces_installed(plan: &Plan, installed: &[Nevra]) -> Option<ResolveError> {
    plan.nevras().find_map(|n| {
        let core = installed.iter().find(|i| i.name == n.name)?;
        (core != n).then(|| ResolveError::ReplacesInstalled {
            wanted: n.to_string(),
            installed: core.to_string(),
        })
    })
}
