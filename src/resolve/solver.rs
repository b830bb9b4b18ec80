//! The resolver: rpm dependencies mapped onto [resolvo]'s CDCL SAT solver.
//!
//! # Mapping
//!
//! resolvo thinks in *names* with *candidates* (one candidate per name at
//! most, which is rpm's "one version per package name") and *version sets*
//! (a subset of one name's candidates). rpm thinks in *capabilities*
//! provided by many names. A capability requirement `X >= 1` therefore
//! becomes a union of version sets, one per package name that provides `X`,
//! each holding that name's candidates whose provides (or file list, or
//! implicit `name = evr` provide) satisfy `X >= 1`. A [`VSet`] is
//! (matcher, negated); the matcher is interned once per distinct atom.
//!
//! - Rich dependencies go through [`rich::clauses`]: each CNF clause becomes a
//!   resolvo conditional requirement (`pos… if neg…`), exactly.
//! - `Conflicts: X` is the clause `¬X`: for each name providing `X`, a
//!   `constrains` on the complement ("if this name is installed, it is one
//!   not providing `X`"). A package never conflicts with its own name (rpm
//!   ignores self-conflicts too).
//! - `Obsoletes: N op V` matches package *names* (rpm and libsolv's default),
//!   so it is a `constrains` on name `N` excluding the obsoleted versions.
//! - `rpmlib(…)` requirements are dropped: rpm provides them itself.
//! - Pure-negative clauses with two or more atoms (from a rich `Conflicts:
//!   (a and b)`) have no resolvo form (no conditional constrains) and are
//!   skipped; they are rare in practice.
//! - Weak deps: resolvo's soft requirements are single solvables. After the
//!   hard solve, every unmet `Recommends` of an installed package picks its
//!   best provider, and every package whose `Supplements` now holds is added;
//!   the solver re-runs with these as soft requirements (skipped when they
//!   conflict), until nothing new appears. `Suggests`/`Enhances` are never
//!   installed.
//! - Superfluous packages: resolvo may pick `A` for `(A or B)` before `B` is
//!   pulled in by something else, and keep both. After solving, [`prune`]
//!   removes every package the others (and the requests) can do without,
//!   which is what libsolv gets by preferring alternatives already in the
//!   transaction.
//!
//! # Choosing among providers (dnf-like, deterministic)
//!
//! Within one name, candidates are tried newest EVR first, then lower repo
//! index, then metadata order. Among names providing a capability, resolvo
//! tries the union's version sets in order; the order is: names not matching
//! `avoid` before those that do, then names matching `prefer` (in recipe
//! order), then the distro family's minimal providers
//! (see [`super::minimal`]), then names the requiring package itself
//! Recommends or Suggests (libsolv's rule, see `Provider::hinted_by`), then
//! the name equal to the capability, then
//! the lowest repo index among the name's candidates, then the shortest name,
//! then alphabetical. Versions are not compared across different names: they
//! are unrelated numbering schemes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Display;

use resolvo::utils::{Pool, VersionSet};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, LogicalOperator, NameId, Problem, Requirement, SolvableId,
    SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use super::prune;
use super::rich::{self, Atom, Clause, Rich};
use super::{minimal, Choice, ChosenBy, Plan, Planned, Reason, Request, ResolveError};
use crate::glob::glob_match;
use crate::package::Package;
use crate::package::{ranges_overlap, Arch, Cmp, Dep, Nevra};
use crate::repo::PackageSet;

/// The dependency solver, backed by resolvo.
#[derive(Debug, Default, Clone, Copy)]
pub struct ResolvoSolver;

impl ResolvoSolver {
    /// Indexes (a copy of) `packages`, then [`ResolvoSolver::solve_set`].
    pub fn solve(&self, packages: &[Package], request: &Request) -> Result<Plan, ResolveError> {
        solve(&PackageSet::of(packages.to_vec()), request)
    }

    /// Solve among a [`PackageSet`]: its capability index is at hand (the
    /// repo loader keeps one per repo), so the solve does not spend most of
    /// its time indexing a distribution, and only the packages the solve
    /// looks at are decoded.
    pub fn solve_set(
        &self,
        packages: &PackageSet,
        request: &Request,
    ) -> Result<Plan, ResolveError> {
        solve(packages, request)
    }
}

/// A set of one name's candidates: those the matcher accepts (or rejects,
/// when negated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VSet {
    matcher: u32,
    negate: bool,
}

impl VersionSet for VSet {
    type V = u32;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Matcher {
    /// By provides, files and the implicit self-provide.
    Provides(Atom),
    /// By package name and EVR only (Obsoletes).
    Named(Dep),
}

/// The installable packages and the index of who provides what.
struct Universe<'a> {
    /// With the index of who provides what (capability → positions), built
    /// once per repo, and a summary of every package (name, arch): a
    /// package itself is decoded when first looked at.
    pkgs: &'a PackageSet,
    /// Of an architecture the request accepts (and not a source package),
    /// not hidden by repo priority.
    installable: Vec<bool>,
    excluded: Vec<bool>,
    /// Another version of an installed (core) package: excluded too, with
    /// its own reason, since an installed package is never replaced.
    pinned: Vec<bool>,
    /// Names of the installed packages (libsolv's system repo).
    installed: std::collections::HashSet<&'a str>,
    /// Packages with `Supplements`, for the weak-deps pass.
    supplementers: Vec<u32>,
}

impl<'a> Universe<'a> {
    fn new(
        pkgs: &'a PackageSet,
        arch: Option<Arch>,
        exclude: &[String],
        installed: &'a [Nevra],
    ) -> Self {
        let mut installable = vec![false; pkgs.len()];
        let mut excluded = vec![false; pkgs.len()];
        let mut pinned = vec![false; pkgs.len()];
        let names: std::collections::HashSet<&'a str> =
            installed.iter().map(|n| n.name.as_str()).collect();
        for i in 0..pkgs.len() as u32 {
            let a = pkgs.arch(i);
            if a == "src"
                || a == "nosrc"
                || arch.is_some_and(|arch| !arch.accepts(a))
                || pkgs.is_hidden(i)
            {
                continue;
            }
            installable[i as usize] = true;
            if !exclude.is_empty() {
                excluded[i as usize] = exclude.iter().any(|g| glob_match(g, pkgs.name(i)));
            }
            // Another version of an installed package: only same-named
            // packages are decoded to tell.
            if names.contains(pkgs.name(i)) && !installed.contains(&pkgs.package(i).nevra) {
                pinned[i as usize] = true;
                excluded[i as usize] = true;
            }
        }
        let supplementers = pkgs
            .supplementers()
            .filter(|&i| installable[i as usize])
            .collect();
        Universe {
            pkgs,
            installable,
            excluded,
            pinned,
            installed: names,
            supplementers,
        }
    }

    fn pkg(&self, i: u32) -> &'a Package {
        self.pkgs.package(i)
    }

    /// Package `i`'s name, without decoding it.
    fn name(&self, i: u32) -> &'a str {
        self.pkgs.name(i)
    }

    fn satisfies(&self, i: u32, atom: &Atom) -> bool {
        let p = self.pkg(i);
        match atom {
            Atom::Dep(d) => {
                (*d.name == *p.nevra.name && self_provide_matches(p, d))
                    || p.provides.iter().any(|prov| d.is_satisfied_by(prov))
                    || (d.is_file() && p.files.iter().any(|f| **f == *d.name))
            }
            Atom::With(xs) => xs.iter().all(|x| self.satisfies(i, x)),
            Atom::Without(a, b) => self.satisfies(i, a) && !self.satisfies(i, b),
        }
    }

    fn matches(&self, i: u32, m: &Matcher) -> bool {
        match m {
            Matcher::Provides(atom) => self.satisfies(i, atom),
            Matcher::Named(d) => {
                let p = self.pkg(i);
                *p.nevra.name == *d.name && self_provide_matches(p, d)
            }
        }
    }

    /// Names of installable packages whose `Obsoletes` cover every
    /// installable candidate the named request `d` matches (sorted, so the
    /// union order is deterministic).
    fn obsoleters(&self, d: &Dep) -> Vec<&'a str> {
        let named = Matcher::Named(d.clone());
        let wanted: Vec<u32> = self
            .named(&d.name)
            .filter(|&i| !self.excluded[i as usize] && self.matches(i, &named))
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<&'a str> = self
            .pkgs
            .obsoleting(&d.name)
            .filter(|&i| !self.excluded[i as usize] && self.installable[i as usize])
            .map(|i| self.pkg(i))
            .filter(|q| *q.nevra.name != *d.name)
            .filter(|q| {
                wanted.iter().all(|&w| {
                    q.obsoletes
                        .iter()
                        .any(|o| o.name == d.name && self_provide_matches(self.pkg(w), o))
                })
            })
            .map(|q| q.nevra.name.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Packages (excluded ones included) satisfying the atom.
    fn providers(&self, atom: &Atom) -> Vec<u32> {
        self.with_cap(base_name(atom))
            .filter(|&i| self.satisfies(i, atom))
            .collect()
    }

    /// Packages listing the capability at any version (or, on a hash
    /// collision, not at all: callers check).
    fn with_cap<'s>(&'s self, cap: &'s str) -> impl Iterator<Item = u32> + 's {
        self.pkgs
            .with_cap(cap)
            .filter(|&i| self.installable[i as usize])
    }

    /// Installable packages with this name.
    fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = u32> + 's {
        self.pkgs
            .named(name)
            .filter(move |&i| self.installable[i as usize])
    }

    fn has_name(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }

    /// Installed-set check for weak deps and reasons.
    fn held_by(&self, atom: &Atom, chosen: &HashSet<u32>) -> Option<u32> {
        self.with_cap(base_name(atom))
            .find(|i| chosen.contains(i) && self.satisfies(*i, atom))
    }

    /// Candidate order within one name: newest EVR, then repo priority.
    fn compare(&self, a: u32, b: u32) -> std::cmp::Ordering {
        let (pa, pb) = (self.pkg(a), self.pkg(b));
        pb.nevra
            .evr
            .compare(&pa.nevra.evr)
            .then(pa.repo.cmp(&pb.repo))
            .then(a.cmp(&b))
    }

    /// For a request nothing satisfies: the versions there are, when the
    /// name exists, else up to three package names close to it (edit
    /// distance).
    fn hint(&self, wanted: &str) -> Option<String> {
        let mut versions: Vec<String> = self
            .named(wanted)
            .map(|i| self.pkg(i).nevra.to_string())
            .collect();
        if !versions.is_empty() {
            versions.sort();
            versions.dedup();
            return Some(format!("available: {}", versions.join(", ")));
        }
        let limit = (wanted.len() / 3).max(2);
        let names: HashSet<&str> = (0..self.pkgs.len() as u32)
            .filter(|&i| self.installable[i as usize])
            .map(|i| self.name(i))
            .collect();
        let mut close: Vec<(usize, &str)> = names
            .into_iter()
            .filter(|n| n.len().abs_diff(wanted.len()) <= limit)
            .filter_map(|n| {
                let d = edit_distance(wanted, n);
                (d <= limit).then_some((d, n))
            })
            .collect();
        close.sort();
        close.truncate(3);
        if close.is_empty() {
            return None;
        }
        let names: Vec<String> = close.iter().map(|(_, n)| format!("`{n}`")).collect();
        Some(format!("did you mean {}?", names.join(" or ")))
    }
}

/// Every package provides `name = epoch:version-release`.
fn self_provide_matches(p: &Package, d: &Dep) -> bool {
    match &d.range {
        None => true,
        Some((cmp, evr)) => ranges_overlap(Cmp::Eq, &p.nevra.evr, *cmp, evr),
    }
}

/// The first of `globs` matching `name`, or `usize::MAX`.
fn position(globs: &[String], name: &str) -> usize {
    globs
        .iter()
        .position(|g| glob_match(g, name))
        .unwrap_or(usize::MAX)
}

fn base_name(atom: &Atom) -> &str {
    match atom {
        Atom::Dep(d) => &d.name,
        Atom::With(xs) => xs.first().map(base_name).unwrap_or(""),
        Atom::Without(a, _) => base_name(a),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// resolvo's view of the universe; also its interner.
struct Provider<'a> {
    u: Universe<'a>,
    pool: Pool<VSet, String>,
    prefer: &'a [String],
    /// Tried last, after every other provider.
    avoid: &'a [String],
    /// Minimal providers, tried after `prefer`.
    minimal: Vec<String>,
    matchers: RefCell<Vec<Matcher>>,
    matcher_ids: RefCell<HashMap<Matcher, u32>>,
    /// Package index → solvable, created on first use of a name.
    solvable_of: RefCell<HashMap<u32, SolvableId>>,
    excluded_reason: StringId,
    pinned_reason: StringId,
}

impl<'a> Provider<'a> {
    fn new(
        u: Universe<'a>,
        prefer: &'a [String],
        avoid: &'a [String],
        minimal: Vec<String>,
    ) -> Self {
        let pool = Pool::new();
        let excluded_reason = pool.intern_string("it matches the recipe's packages.exclude");
        let pinned_reason = pool
            .intern_string("the core layer installs another version of it, which is not replaced");
        Provider {
            u,
            pool,
            prefer,
            avoid,
            minimal,
            matchers: RefCell::default(),
            matcher_ids: RefCell::default(),
            solvable_of: RefCell::default(),
            excluded_reason,
            pinned_reason,
        }
    }

    fn pkg_of(&self, s: SolvableId) -> u32 {
        self.pool.resolve_solvable(s).record
    }

    fn solvable(&self, i: u32) -> SolvableId {
        if let Some(s) = self.solvable_of.borrow().get(&i) {
            return *s;
        }
        let name = self.pool.intern_package_name(self.u.name(i));
        let s = self.pool.intern_solvable(name, i);
        self.solvable_of.borrow_mut().insert(i, s);
        s
    }

    fn matcher(&self, m: Matcher) -> u32 {
        if let Some(id) = self.matcher_ids.borrow().get(&m) {
            return *id;
        }
        let mut all = self.matchers.borrow_mut();
        let id = all.len() as u32;
        all.push(m.clone());
        self.matcher_ids.borrow_mut().insert(m, id);
        id
    }

    fn vset(&self, name: NameId, m: Matcher, negate: bool) -> VersionSetId {
        let matcher = self.matcher(m);
        self.pool.intern_version_set(name, VSet { matcher, negate })
    }

    /// Order of provider names, see the module docs.
    #[allow(clippy::type_complexity)]
    fn name_key(
        &self,
        name: &'a str,
        cap: &str,
        owner: Option<u32>,
    ) -> (bool, bool, usize, usize, bool, bool, usize, usize, &'a str) {
        // An installed provider first: the system repo's packages satisfy
        // what they can before anything new is pulled in.
        let installed = self.u.installed.contains(name);
        let avoided = self.avoided(name);
        let preferred = position(self.prefer, name);
        let minimal = position(&self.minimal, name);
        let repo = self
            .u
            .named(name)
            .filter(|&i| !self.u.excluded[i as usize])
            .map(|i| self.u.pkgs.repo(i))
            .min()
            .unwrap_or(usize::MAX);
        (
            !installed,
            avoided,
            preferred,
            minimal,
            !owner.is_some_and(|o| self.hinted_by(o, name)),
            name != cap,
            repo,
            name.len(),
            name,
        )
    }

    /// Whether package `owner` Recommends or Suggests a package named
    /// `name`: libsolv (and so dnf) chooses such a provider first, even with
    /// weak deps off (policy.c: `prune_to_recommended`, `prefer_suggested`),
    /// e.g. glibc's `Suggests: glibc-minimal-langpack` for its
    /// `Requires: glibc-langpack`. libsolv looks at every package already
    /// decided; this looks at the requiring package only.
    fn hinted_by(&self, owner: u32, name: &str) -> bool {
        let p = self.u.pkg(owner);
        p.recommends.iter().chain(&p.suggests).any(|dep| {
            let Ok(rich) = rich::parse_dep(dep) else {
                return false;
            };
            let mut atoms = Vec::new();
            rich::atoms(&rich, &mut atoms);
            atoms
                .iter()
                .any(|a| self.u.named(name).any(|i| self.u.satisfies(i, a)))
        })
    }

    fn avoided(&self, name: &str) -> bool {
        position(self.avoid, name) != usize::MAX
    }

    /// Why `name` would be tried before the other providers `over`, if a
    /// preference says so. An avoided name is never chosen by preference
    /// (`avoid` is tried last even where a `prefer` glob matches it).
    fn chosen_by(&self, name: &str, over: &[String]) -> Option<ChosenBy> {
        if self.avoided(name) {
            None
        } else if position(self.prefer, name) != usize::MAX {
            Some(ChosenBy::Prefer)
        } else if over.iter().any(|o| self.avoided(o)) {
            Some(ChosenBy::Avoid)
        } else if position(&self.minimal, name) != usize::MAX {
            Some(ChosenBy::Minimal)
        } else {
            None
        }
    }

    /// Names that can satisfy an atom, best first. Without any provider the
    /// names that provide the capability at other versions are used (so the
    /// explanation lists what was rejected), else a virtual name with no
    /// candidates.
    fn names_for(&self, atom: &Atom, real_only: bool, owner: Option<u32>) -> Vec<NameId> {
        let mut providers = self.u.providers(atom);
        if providers.is_empty() && !real_only {
            let cap = base_name(atom);
            providers = self
                .u
                .with_cap(cap)
                .filter(|&i| {
                    let p = self.u.pkg(i);
                    p.nevra.name == cap || p.provides.iter().any(|d| &*d.name == cap)
                })
                .collect();
        }
        let mut names: Vec<&'a str> = providers.iter().map(|&i| self.u.name(i)).collect();
        names.sort_unstable();
        names.dedup();
        let cap = base_name(atom);
        names.sort_by_cached_key(|n| self.name_key(n, cap, owner));
        if names.is_empty() && !real_only {
            return vec![self.pool.intern_package_name(atom.to_string())];
        }
        names
            .into_iter()
            .map(|n| self.pool.intern_package_name(n))
            .collect()
    }

    fn requirement(&self, pos: &[Atom], owner: Option<u32>) -> Requirement {
        let mut sets: Vec<VersionSetId> = Vec::new();
        for atom in pos {
            for name in self.names_for(atom, false, owner) {
                let vs = self.vset(name, Matcher::Provides(atom.clone()), false);
                if !sets.contains(&vs) {
                    sets.push(vs);
                }
            }
        }
        match sets.as_slice() {
            [one] => Requirement::Single(*one),
            [first, rest @ ..] => Requirement::Union(
                self.pool
                    .intern_version_set_union(*first, rest.iter().copied()),
            ),
            [] => unreachable!("names_for never returns nothing"),
        }
    }

    /// `None`: the condition can never hold (nothing provides an atom).
    fn condition(&self, neg: &[Atom]) -> Option<Option<ConditionId>> {
        let mut all: Option<ConditionId> = None;
        for atom in neg {
            let mut any: Option<ConditionId> = None;
            for name in self.names_for(atom, true, None) {
                let vs = self.vset(name, Matcher::Provides(atom.clone()), false);
                let c = self.pool.intern_condition(Condition::Requirement(vs));
                any = Some(match any {
                    None => c,
                    Some(prev) => {
                        self.pool
                            .intern_condition(Condition::Binary(LogicalOperator::Or, prev, c))
                    }
                });
            }
            let any = any?;
            all = Some(match all {
                None => any,
                Some(prev) => {
                    self.pool
                        .intern_condition(Condition::Binary(LogicalOperator::And, prev, any))
                }
            });
        }
        Some(all)
    }

    /// `owner`: the package whose dependency this is (`None`: a request).
    fn encode(
        &self,
        owner: Option<u32>,
        clause: &Clause,
        reqs: &mut Vec<ConditionalRequirement>,
        cons: &mut Vec<VersionSetId>,
    ) {
        // rpm itself provides `rpmlib(…)`: a clause containing one holds
        // (positive) or does not depend on it (negative).
        let rpmlib = |a: &Atom| matches!(a, Atom::Dep(d) if d.is_rpmlib());
        if clause.pos.iter().any(rpmlib) {
            return;
        }
        let neg: Vec<Atom> = clause.neg.iter().filter(|a| !rpmlib(a)).cloned().collect();
        let own_name = owner.map(|o| self.u.pkg(o).nevra.name.as_str());
        if clause.pos.is_empty() {
            // Only `¬X` has a resolvo form (see module docs).
            if let [atom] = neg.as_slice() {
                for name in self.names_for(atom, true, None) {
                    if Some(self.pool.resolve_package_name(name).as_str()) != own_name {
                        cons.push(self.vset(name, Matcher::Provides(atom.clone()), true));
                    }
                }
            }
            return;
        }
        let Some(condition) = self.condition(&neg) else {
            return;
        };
        reqs.push(ConditionalRequirement {
            condition,
            requirement: self.requirement(&clause.pos, owner),
        });
    }

    fn dependencies(&self, i: u32) -> Result<KnownDependencies, String> {
        let p = self.u.pkg(i);
        let mut deps = KnownDependencies::default();
        let lists = [(&p.requires, false), (&p.conflicts, true)];
        for (list, negated) in lists {
            for dep in list.iter().filter(|d| !d.is_rpmlib()) {
                let rich = rich::parse_dep(dep).map_err(|e| e.to_string())?;
                let clauses = rich::clauses(&rich, negated)
                    .map_err(|e| format!("dependency `{dep}`: {e}"))?;
                for c in &clauses {
                    self.encode(Some(i), c, &mut deps.requirements, &mut deps.constrains);
                }
            }
        }
        for dep in p.obsoletes.iter().filter(|d| *d.name != *p.nevra.name) {
            if self.u.has_name(&dep.name) {
                let name = self.pool.intern_package_name(&*dep.name);
                deps.constrains
                    .push(self.vset(name, Matcher::Named(dep.clone()), true));
            }
        }
        Ok(deps)
    }

    /// The best installable package for an atom not held by `chosen`.
    fn best_for(&self, atom: &Atom, chosen_names: &HashSet<&str>) -> Option<u32> {
        for name in self.names_for(atom, true, None) {
            let name = self.pool.resolve_package_name(name).as_str();
            if chosen_names.contains(name) {
                continue;
            }
            let mut cands: Vec<u32> = self
                .u
                .named(name)
                .filter(|&i| !self.u.excluded[i as usize] && self.u.satisfies(i, atom))
                .collect();
            cands.sort_by(|&a, &b| self.u.compare(a, b));
            if let Some(&best) = cands.first() {
                return Some(best);
            }
        }
        None
    }

    /// Packages to try as soft requirements given a solution: best providers
    /// of unmet `Recommends`, and newest versions of packages whose
    /// `Supplements` hold.
    fn weak_candidates(&self, chosen: &[u32], known: &HashSet<u32>) -> Vec<u32> {
        let set: HashSet<u32> = chosen.iter().copied().collect();
        let names: HashSet<&str> = chosen
            .iter()
            .map(|&i| self.u.pkg(i).nevra.name.as_str())
            .collect();
        let mut out = Vec::new();
        let push = |i: u32, out: &mut Vec<u32>| {
            if !known.contains(&i) && !out.contains(&i) {
                out.push(i);
            }
        };
        for &i in chosen {
            for dep in &self.u.pkg(i).recommends {
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                if rich::eval(&rich, &mut |a| self.u.held_by(a, &set).is_some()) {
                    continue;
                }
                let Ok(clauses) = rich::clauses(&rich, false) else {
                    continue;
                };
                for c in clauses {
                    let unmet = c.pos.iter().all(|a| self.u.held_by(a, &set).is_none())
                        && c.neg.iter().all(|a| self.u.held_by(a, &set).is_some());
                    if unmet {
                        if let Some(best) = c.pos.iter().find_map(|a| self.best_for(a, &names)) {
                            push(best, &mut out);
                        }
                    }
                }
            }
        }
        for &i in &self.u.supplementers {
            let p = self.u.pkg(i);
            if self.u.excluded[i as usize] || names.contains(p.nevra.name.as_str()) {
                continue;
            }
            let newest = self
                .u
                .named(&p.nevra.name)
                .filter(|&j| !self.u.excluded[j as usize])
                .min_by(|&a, &b| self.u.compare(a, b));
            if newest != Some(i) {
                continue;
            }
            let holds = p.supplements.iter().any(|dep| {
                rich::parse_dep(dep)
                    .is_ok_and(|r| rich::eval(&r, &mut |a| self.u.held_by(a, &set).is_some()))
            });
            if holds {
                push(i, &mut out);
            }
        }
        out
    }
}

impl Provider<'_> {
    /// When no package of `name` satisfies `atom`, what they offer instead
    /// (dnf's "cannot install … provides x = 1 but y >= 2 is required").
    fn rejected_note(&self, name: &str, atom: &Atom) -> String {
        if self.u.named(name).any(|i| self.u.satisfies(i, atom)) {
            return String::new();
        }
        let cap = base_name(atom);
        let offers: Vec<String> = self
            .u
            .named(name)
            .map(|i| {
                let p = self.u.pkg(i);
                match p.provides.iter().find(|d| &*d.name == cap) {
                    Some(d) => format!("{} provides `{d}`", p.nevra),
                    None => format!("{} does not provide it", p.nevra),
                }
            })
            .collect();
        format!("; available: {}", offers.join(", "))
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        self.u.pkg(self.pkg_of(solvable)).nevra.to_string()
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl Display + '_ {
        let mut all: Vec<String> = solvables
            .iter()
            .map(|&s| self.display_solvable(s).to_string())
            .collect();
        all.sort();
        all.dedup();
        all.join(" | ")
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        let vs = self.pool.resolve_version_set(version_set);
        let name = self
            .pool
            .resolve_package_name(self.pool.resolve_version_set_package_name(version_set));
        let matcher = self.matchers.borrow()[vs.matcher as usize].clone();
        match (matcher, vs.negate) {
            (Matcher::Provides(Atom::Dep(d)), false) if *d.name == **name => match d.range {
                Some((cmp, evr)) => format!("{} {evr}", cmp.symbol()),
                None => String::new(),
            },
            (Matcher::Provides(Atom::Dep(d)), false) if name.as_str() == d.to_string() => {
                String::new()
            }
            (Matcher::Provides(atom), false) => {
                format!("(providing `{atom}`){}", self.rejected_note(name, &atom))
            }
            (Matcher::Provides(atom), true) => format!("(conflicts with `{atom}`)"),
            (Matcher::Named(d), false) => match d.range {
                Some((cmp, evr)) => format!("{} {evr}", cmp.symbol()),
                None => String::new(),
            },
            (Matcher::Named(d), true) => format!("(obsoleted: `{d}`)"),
        }
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        self.pool.resolve_string(string_id).to_string()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(version_set_union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let vs = self.pool.resolve_version_set(version_set);
        let matchers = self.matchers.borrow();
        let m = &matchers[vs.matcher as usize];
        candidates
            .iter()
            .copied()
            .filter(|&s| (self.u.matches(self.pkg_of(s), m) != vs.negate) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let name = self.pool.resolve_package_name(name);
        if !self.u.has_name(name) {
            return None;
        }
        let mut c = Candidates::default();
        for i in self.u.named(name) {
            let s = self.solvable(i);
            // Excluded packages stay candidates, forbidden by an exclusion
            // clause, so that explanations can say why they were rejected.
            if self.u.pinned[i as usize] {
                c.excluded.push((s, self.pinned_reason));
            } else if self.u.excluded[i as usize] {
                c.excluded.push((s, self.excluded_reason));
            }
            c.candidates.push(s);
        }
        Some(c)
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|&a, &b| self.u.compare(self.pkg_of(a), self.pkg_of(b)));
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let i = self.pkg_of(solvable);
        match self.dependencies(i) {
            Ok(d) => Dependencies::Known(d),
            Err(e) => Dependencies::Unknown(
                self.pool
                    .intern_string(format!("{}: {e}", self.u.pkg(i).nevra)),
            ),
        }
    }
}

fn solve(packages: &PackageSet, request: &Request) -> Result<Plan, ResolveError> {
    let arch = request.arch.or_else(Arch::host);
    let u = Universe::new(packages, arch, &request.exclude, &request.installed);
    let minimal = if request.minimal_by_default {
        minimal::providers(|n| u.has_name(n))
    } else {
        Vec::new()
    };
    let provider = Provider::new(u, &request.prefer, &request.avoid, minimal);

    let mut reqs = Vec::new();
    let mut cons = Vec::new();
    let mut requested: Vec<(&str, Rich)> = Vec::new();
    for text in &request.install {
        let bad = |source| ResolveError::BadRequest {
            request: text.clone(),
            source,
        };
        let parsed = rich::parse(text).map_err(bad)?;
        if let Rich::Simple(d) = &parsed {
            // Named requests mean that package (see below).
            let found: Vec<u32> = if provider.u.has_name(&d.name) {
                let named = Matcher::Named(d.clone());
                provider
                    .u
                    .named(&d.name)
                    .filter(|&i| provider.u.matches(i, &named))
                    .collect()
            } else {
                provider.u.providers(&Atom::Dep(d.clone()))
            };
            if found.is_empty() {
                return Err(ResolveError::NothingProvides {
                    request: text.clone(),
                    hint: provider.u.hint(&d.name),
                });
            }
            if found.iter().all(|&i| provider.u.excluded[i as usize]) {
                return Err(ResolveError::Excluded {
                    request: text.clone(),
                });
            }
        }
        let clauses = rich::clauses(&parsed, false).map_err(|reason| {
            bad(rich::RichError {
                text: text.clone(),
                reason,
                pos: 0,
            })
        })?;
        match &parsed {
            // Like dnf, a request naming a package means that package, not
            // whatever else provides the name.
            // And like dnf (`obsoletes=True`), a package obsoleting every
            // candidate of that name is taken instead: `install oldname`
            // installs its renamed successor.
            Rich::Simple(d) if provider.u.has_name(&d.name) => {
                let name = provider.pool.intern_package_name(&*d.name);
                let vs = provider.vset(name, Matcher::Named(d.clone()), false);
                let successors = provider.u.obsoleters(d);
                match successors.as_slice() {
                    [] => reqs.push(Requirement::Single(vs).into()),
                    [first, rest @ ..] => {
                        let set = |n: &str| {
                            let id = provider.pool.intern_package_name(n);
                            provider.vset(id, Matcher::Named(Dep::any(n)), false)
                        };
                        let union = provider.pool.intern_version_set_union(
                            set(first),
                            rest.iter().map(|n| set(n)).chain([vs]),
                        );
                        reqs.push(Requirement::Union(union).into());
                    }
                }
            }
            _ => {
                for c in &clauses {
                    provider.encode(None, c, &mut reqs, &mut cons);
                }
            }
        }
        requested.push((text, parsed));
    }

    let mut solver = resolvo::Solver::new(provider);
    let problem = || {
        Problem::new()
            .requirements(reqs.clone())
            .constraints(cons.clone())
    };
    let unsolvable = |e: UnsolvableOrCancelled, solver: &resolvo::Solver<Provider>| match e {
        UnsolvableOrCancelled::Unsolvable(conflict) => ResolveError::Unsolvable {
            requests: request.install.join(", "),
            explanation: conflict.display_user_friendly(solver).to_string(),
        },
        UnsolvableOrCancelled::Cancelled(_) => unreachable!("the provider never cancels"),
    };
    let mut solution = match solver.solve(problem()) {
        Ok(s) => s,
        Err(e) => return Err(unsolvable(e, &solver)),
    };
    let mut soft: Vec<u32> = Vec::new();
    if request.weak_deps {
        let mut known: HashSet<u32> = HashSet::new();
        loop {
            let chosen: Vec<u32> = sorted_pkgs(solver.provider(), &solution);
            known.extend(chosen.iter().copied());
            let new = solver.provider().weak_candidates(&chosen, &known);
            if new.is_empty() {
                break;
            }
            known.extend(new.iter().copied());
            soft.extend(new);
            let solvables: Vec<SolvableId> = soft
                .iter()
                .map(|&i| solver.provider().solvable(i))
                .collect();
            solution = match solver.solve(problem().soft_requirements(solvables)) {
                Ok(s) => s,
                Err(e) => return Err(unsolvable(e, &solver)),
            };
        }
    }
    let provider = solver.provider();
    let chosen = sorted_pkgs(provider, &solution);
    let chosen = without_superfluous(provider, chosen, &requested, &soft);
    Ok(plan(provider, &chosen, &requested, request.weak_deps))
}

/// [`prune`] applied to a solution: what stays whatever its dependencies is
/// what was requested by name (or its obsoleting successor), what a
/// preference chose (`prefer`, the minimal list: the recipe asked for them),
/// and what the weak-deps passes added.
fn without_superfluous(
    provider: &Provider,
    chosen: Vec<u32>,
    requested: &[(&str, Rich)],
    soft: &[u32],
) -> Vec<u32> {
    let u = &provider.u;
    let pos: HashMap<u32, usize> = chosen.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut atom_ids: HashMap<Atom, u32> = HashMap::new();
    let mut input = prune::Input {
        keep: vec![false; chosen.len()],
        ..Default::default()
    };
    let mut intern = |atom: &Atom, input: &mut prune::Input| -> u32 {
        if let Some(&id) = atom_ids.get(atom) {
            return id;
        }
        let id = input.satisfiers.len() as u32;
        let held: Vec<usize> = u
            .with_cap(base_name(atom))
            .filter_map(|i| pos.get(&i).copied().filter(|_| u.satisfies(i, atom)))
            .collect();
        input.satisfiers.push(held);
        atom_ids.insert(atom.clone(), id);
        id
    };
    // Mirrors `Provider::encode`: `rpmlib(…)` is always held, and clauses
    // with no positive atom cannot be broken by removing a package.
    let mut add = |owner: Option<usize>, c: &Clause, input: &mut prune::Input| {
        let rpmlib = |a: &Atom| matches!(a, Atom::Dep(d) if d.is_rpmlib());
        if c.pos.is_empty() || c.pos.iter().any(rpmlib) {
            return;
        }
        let pos = c.pos.iter().map(|a| intern(a, input)).collect();
        let neg = c
            .neg
            .iter()
            .filter(|a| !rpmlib(a))
            .map(|a| intern(a, input))
            .collect();
        input.clauses.push(prune::Clause { owner, pos, neg });
    };
    for (k, &i) in chosen.iter().enumerate() {
        let p = u.pkg(i);
        for (list, negated) in [(&p.requires, false), (&p.conflicts, true)] {
            for dep in list.iter().filter(|d| !d.is_rpmlib()) {
                // A dependency that does not parse made the package
                // uninstallable (see `get_dependencies`), so it is not here.
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                for c in rich::clauses(&rich, negated).unwrap_or_default() {
                    add(Some(k), &c, &mut input);
                }
            }
        }
    }
    for (_, rich) in requested {
        match rich {
            Rich::Simple(d) if u.has_name(&d.name) => {
                let named = Matcher::Named(d.clone());
                for (k, &i) in chosen.iter().enumerate() {
                    let p = u.pkg(i);
                    if u.matches(i, &named) || p.obsoletes.iter().any(|o| o.name == d.name) {
                        input.keep[k] = true;
                    }
                }
            }
            _ => {
                for c in rich::clauses(rich, false).unwrap_or_default() {
                    add(None, &c, &mut input);
                }
            }
        }
    }
    for (k, &i) in chosen.iter().enumerate() {
        let name = u.pkg(i).nevra.name.as_str();
        let preferred = !provider.avoided(name)
            && (position(provider.prefer, name) != usize::MAX
                || position(&provider.minimal, name) != usize::MAX);
        if preferred || soft.contains(&i) {
            input.keep[k] = true;
        }
    }
    // Removal is tried in the reverse of the name rules: avoided names
    // first, then longer names, then reverse alphabetical; so of two
    // interchangeable packages the one the solver would pick stays.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_cached_key(|&k| {
        let nevra = &u.pkg(chosen[k]).nevra;
        let name = nevra.name.as_str();
        (
            !provider.avoided(name),
            std::cmp::Reverse(name.len()),
            std::cmp::Reverse(name),
            k,
        )
    });
    input.order = order;
    let stays = prune::prune(&input);
    chosen
        .into_iter()
        .zip(stays)
        .filter_map(|(i, s)| s.then_some(i))
        .collect()
}

/// Package indices of a solution, in plan order (name, arch).
fn sorted_pkgs(provider: &Provider, solution: &[SolvableId]) -> Vec<u32> {
    let mut chosen: Vec<u32> = solution.iter().map(|&s| provider.pkg_of(s)).collect();
    chosen.sort_by(|&a, &b| {
        let (pa, pb) = (&provider.u.pkg(a).nevra, &provider.u.pkg(b).nevra);
        (&pa.name, &pa.arch, a).cmp(&(&pb.name, &pb.arch, b))
    });
    chosen.dedup();
    chosen
}

/// Attach reasons: breadth-first from the requests along `Requires`, then
/// (with weak deps) along `Recommends` and `Supplements`, so each package
/// records its shortest chain.
fn plan(provider: &Provider, chosen: &[u32], requested: &[(&str, Rich)], weak: bool) -> Plan {
    let u = &provider.u;
    let mut t = Tracer {
        provider,
        u,
        chosen,
        choices: BTreeMap::new(),
        pos: chosen.iter().enumerate().map(|(k, &i)| (i, k)).collect(),
        reasons: vec![None; chosen.len()],
        queue: VecDeque::new(),
    };
    for (text, rich) in requested {
        let r = || Reason::Requested {
            request: text.to_string(),
        };
        match rich {
            // Requests naming a package were encoded by name.
            Rich::Simple(d) if u.has_name(&d.name) => {
                if let Some(k) = chosen.iter().position(|&i| *u.pkg(i).nevra.name == *d.name) {
                    t.set(k, r);
                }
            }
            _ => t.mark(rich, r),
        }
    }
    loop {
        while let Some(k) = t.queue.pop_front() {
            t.follow(k, &u.pkg(chosen[k]).requires, false);
        }
        if !weak {
            break;
        }
        // One weak step, then back to Requires from what it added.
        for (k, &i) in chosen.iter().enumerate() {
            if t.reasons[k].is_some() {
                t.follow(k, &u.pkg(i).recommends, true);
            }
        }
        let set: HashSet<u32> = chosen.iter().copied().collect();
        for (k, &i) in chosen.iter().enumerate() {
            let p = u.pkg(i);
            for dep in &p.supplements {
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                let mut atoms = Vec::new();
                rich::atoms(&rich, &mut atoms);
                let by = atoms
                    .iter()
                    .filter_map(|a| u.held_by(a, &set).map(|i| t.pos[&i]))
                    .find(|&b| t.reasons[b].is_some());
                if let Some(by) = by {
                    t.set(k, || Reason::Recommended {
                        by,
                        dep: format!("{} supplements {dep}", p.nevra.name),
                    });
                }
            }
        }
        if t.queue.is_empty() {
            break;
        }
    }
    let packages = chosen
        .iter()
        .zip(t.reasons)
        .map(|(&i, reason)| Planned {
            package: u.pkg(i).clone(),
            // Every solvable resolvo selects is reached through one of the
            // clauses walked above; this is a guard, not an expected path.
            reason: reason.unwrap_or_else(|| Reason::Requested {
                request: "(selected by the solver, reason not traced)".to_string(),
            }),
        })
        .collect();
    Plan {
        packages,
        choices: t.choices,
        left_out: Vec::new(),
    }
}

/// The breadth-first walk behind [`plan`].
struct Tracer<'p, 'a> {
    provider: &'p Provider<'a>,
    u: &'p Universe<'a>,
    chosen: &'p [u32],
    choices: BTreeMap<usize, Choice>,
    pos: HashMap<u32, usize>,
    reasons: Vec<Option<Reason>>,
    queue: VecDeque<usize>,
}

impl Tracer<'_, '_> {
    fn set(&mut self, k: usize, reason: impl Fn() -> Reason) {
        if self.reasons[k].is_none() {
            self.reasons[k] = Some(reason());
            self.queue.push_back(k);
        }
    }

    /// Give `reason` to every chosen package satisfying an atom of `rich`,
    /// noting a preference that chose it over other providers.
    fn mark(&mut self, rich: &Rich, reason: impl Fn() -> Reason) {
        let mut atoms = Vec::new();
        rich::atoms(rich, &mut atoms);
        for a in &atoms {
            let providers = self.u.providers(a);
            for &i in &providers {
                let Some(&k) = self.pos.get(&i) else {
                    continue;
                };
                if self.reasons[k].is_some() {
                    continue;
                }
                self.set(k, &reason);
                let name = self.u.pkg(i).nevra.name.as_str();
                let mut over: Vec<String> = providers
                    .iter()
                    .filter(|&&j| !self.u.excluded[j as usize])
                    .map(|&j| self.u.pkg(j).nevra.name.to_string())
                    .filter(|n| n != name)
                    .collect();
                over.sort();
                over.dedup();
                if over.is_empty() {
                    continue;
                }
                if let Some(by) = self.provider.chosen_by(name, &over) {
                    self.choices.insert(k, Choice { over, by });
                }
            }
        }
    }

    fn follow(&mut self, by: usize, deps: &[Dep], weak: bool) {
        debug_assert!(by < self.chosen.len());
        for dep in deps.iter().filter(|d| !d.is_rpmlib()) {
            let Ok(rich) = rich::parse_dep(dep) else {
                continue;
            };
            let dep = dep.to_string();
            self.mark(&rich, || match weak {
                false => Reason::Required {
                    by,
                    dep: dep.clone(),
                },
                true => Reason::Recommended {
                    by,
                    dep: dep.clone(),
                },
            });
        }
    }
}
