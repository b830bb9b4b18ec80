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
//!
//! # Choosing among providers (dnf-like, deterministic)
//!
//! Within one name, candidates are tried newest EVR first, then lower repo
//! index, then metadata order. Among names providing a capability, resolvo
//! tries the union's version sets in order; the order is: names matching
//! `prefer` (in recipe order), then the name equal to the capability, then
//! the lowest repo index among the name's candidates, then the shortest name,
//! then alphabetical. Versions are not compared across different names: they
//! are unrelated numbering schemes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Display;

use resolvo::utils::{Pool, VersionSet};
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, LogicalOperator, NameId, Problem, Requirement, SolvableId,
    SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use super::rich::{self, Atom, Clause, Rich};
use super::{Plan, Planned, Reason, Request, ResolveError, Solver};
use crate::repo::Package;
use crate::rpm::{ranges_overlap, Arch, Cmp, Dep};

/// The [`Solver`] backed by resolvo.
#[derive(Debug, Default, Clone, Copy)]
pub struct ResolvoSolver;

impl Solver for ResolvoSolver {
    fn solve(&self, packages: &[Package], request: &Request) -> Result<Plan, ResolveError> {
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

/// The installable packages, indexed once per solve.
struct Universe<'a> {
    pkgs: &'a [Package],
    /// Capability (provide name, file path, package name) → package indices.
    by_cap: HashMap<&'a str, Vec<u32>>,
    by_name: HashMap<&'a str, Vec<u32>>,
    excluded: Vec<bool>,
    /// Packages with `Supplements`, for the weak-deps pass.
    supplementers: Vec<u32>,
}

fn push_cap<'a>(map: &mut HashMap<&'a str, Vec<u32>>, cap: &'a str, i: u32) {
    let v = map.entry(cap).or_default();
    if v.last() != Some(&i) {
        v.push(i);
    }
}

/// `*` matches any run of characters, `?` one character.
fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl<'a> Universe<'a> {
    fn new(pkgs: &'a [Package], arch: Option<Arch>, exclude: &[String]) -> Self {
        let mut u = Universe {
            pkgs,
            by_cap: HashMap::with_capacity(pkgs.len() * 4),
            by_name: HashMap::with_capacity(pkgs.len()),
            excluded: vec![false; pkgs.len()],
            supplementers: Vec::new(),
        };
        for (i, p) in pkgs.iter().enumerate() {
            let a = p.nevra.arch.as_str();
            if a == "src" || a == "nosrc" || arch.is_some_and(|arch| !arch.accepts(a)) {
                continue;
            }
            let i = i as u32;
            let name = p.nevra.name.as_str();
            push_cap(&mut u.by_name, name, i);
            push_cap(&mut u.by_cap, name, i);
            for prov in &p.provides {
                push_cap(&mut u.by_cap, &prov.name, i);
            }
            for f in &p.files {
                push_cap(&mut u.by_cap, f, i);
            }
            u.excluded[i as usize] = exclude.iter().any(|g| glob_match(g, name));
            if !p.supplements.is_empty() {
                u.supplementers.push(i);
            }
        }
        u
    }

    fn pkg(&self, i: u32) -> &'a Package {
        &self.pkgs[i as usize]
    }

    fn satisfies(&self, i: u32, atom: &Atom) -> bool {
        let p = self.pkg(i);
        match atom {
            Atom::Dep(d) => {
                (d.name == p.nevra.name && self_provide_matches(p, d))
                    || p.provides.iter().any(|prov| d.is_satisfied_by(prov))
                    || (d.is_file() && p.files.contains(&d.name))
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
                p.nevra.name == d.name && self_provide_matches(p, d)
            }
        }
    }

    /// Packages (excluded ones included) satisfying the atom.
    fn providers(&self, atom: &Atom) -> Vec<u32> {
        let cands: &[u32] = self
            .by_cap
            .get(base_name(atom))
            .map(|v| v.as_slice())
            .unwrap_or_default();
        cands
            .iter()
            .copied()
            .filter(|&i| self.satisfies(i, atom))
            .collect()
    }

    /// Installed-set check for weak deps and reasons.
    fn held_by(&self, atom: &Atom, chosen: &HashSet<u32>) -> Option<u32> {
        self.by_cap
            .get(base_name(atom))?
            .iter()
            .copied()
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

    /// Up to three package names close to `wanted` (edit distance).
    fn hint(&self, wanted: &str) -> Option<String> {
        let limit = (wanted.len() / 3).max(2);
        let mut close: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .filter(|n| n.len().abs_diff(wanted.len()) <= limit)
            .filter_map(|n| {
                let d = edit_distance(wanted, n);
                (d <= limit).then_some((d, *n))
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
    matchers: RefCell<Vec<Matcher>>,
    matcher_ids: RefCell<HashMap<Matcher, u32>>,
    /// Package index → solvable, created on first use of a name.
    solvable_of: RefCell<HashMap<u32, SolvableId>>,
    excluded_reason: StringId,
}

impl<'a> Provider<'a> {
    fn new(u: Universe<'a>, prefer: &'a [String]) -> Self {
        let pool = Pool::new();
        let excluded_reason = pool.intern_string("excluded by the recipe's packages.exclude");
        Provider {
            u,
            pool,
            prefer,
            matchers: RefCell::default(),
            matcher_ids: RefCell::default(),
            solvable_of: RefCell::default(),
            excluded_reason,
        }
    }

    fn pkg_of(&self, s: SolvableId) -> u32 {
        self.pool.resolve_solvable(s).record
    }

    fn solvable(&self, i: u32) -> SolvableId {
        if let Some(s) = self.solvable_of.borrow().get(&i) {
            return *s;
        }
        let name = self
            .pool
            .intern_package_name(self.u.pkg(i).nevra.name.as_str());
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
    fn name_key(&self, name: &'a str, cap: &str) -> (usize, bool, usize, usize, &'a str) {
        let preferred = self
            .prefer
            .iter()
            .position(|g| glob_match(g, name))
            .unwrap_or(usize::MAX);
        let repo = self.u.by_name[name]
            .iter()
            .filter(|&&i| !self.u.excluded[i as usize])
            .map(|&i| self.u.pkg(i).repo)
            .min()
            .unwrap_or(usize::MAX);
        (preferred, name != cap, repo, name.len(), name)
    }

    /// Names that can satisfy an atom, best first. Without any provider the
    /// names that provide the capability at other versions are used (so the
    /// explanation lists what was rejected), else a virtual name with no
    /// candidates.
    fn names_for(&self, atom: &Atom, real_only: bool) -> Vec<NameId> {
        let mut providers = self.u.providers(atom);
        if providers.is_empty() && !real_only {
            providers = self
                .u
                .by_cap
                .get(base_name(atom))
                .cloned()
                .unwrap_or_default();
        }
        let mut names: Vec<&'a str> = providers
            .iter()
            .map(|&i| self.u.pkg(i).nevra.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        let cap = base_name(atom);
        names.sort_by_cached_key(|n| self.name_key(n, cap));
        if names.is_empty() && !real_only {
            return vec![self.pool.intern_package_name(atom.to_string())];
        }
        names
            .into_iter()
            .map(|n| self.pool.intern_package_name(n))
            .collect()
    }

    fn requirement(&self, pos: &[Atom]) -> Requirement {
        let mut sets: Vec<VersionSetId> = Vec::new();
        for atom in pos {
            for name in self.names_for(atom, false) {
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
            for name in self.names_for(atom, true) {
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

    fn encode(
        &self,
        own_name: Option<&str>,
        clause: &Clause,
        reqs: &mut Vec<ConditionalRequirement>,
        cons: &mut Vec<VersionSetId>,
    ) {
        if clause.pos.is_empty() {
            // Only `¬X` has a resolvo form (see module docs).
            if let [atom] = clause.neg.as_slice() {
                for name in self.names_for(atom, true) {
                    if Some(self.pool.resolve_package_name(name).as_str()) != own_name {
                        cons.push(self.vset(name, Matcher::Provides(atom.clone()), true));
                    }
                }
            }
            return;
        }
        let Some(condition) = self.condition(&clause.neg) else {
            return;
        };
        reqs.push(ConditionalRequirement {
            condition,
            requirement: self.requirement(&clause.pos),
        });
    }

    fn dependencies(&self, i: u32) -> Result<KnownDependencies, String> {
        let p = self.u.pkg(i);
        let own = Some(p.nevra.name.as_str());
        let mut deps = KnownDependencies::default();
        let lists = [(&p.requires, false), (&p.conflicts, true)];
        for (list, negated) in lists {
            for dep in list.iter().filter(|d| !d.is_rpmlib()) {
                let rich = rich::parse_dep(dep).map_err(|e| e.to_string())?;
                let clauses = rich::clauses(&rich, negated)
                    .map_err(|e| format!("dependency `{dep}`: {e}"))?;
                for c in &clauses {
                    self.encode(own, c, &mut deps.requirements, &mut deps.constrains);
                }
            }
        }
        for dep in p.obsoletes.iter().filter(|d| d.name != p.nevra.name) {
            if self.u.by_name.contains_key(dep.name.as_str()) {
                let name = self.pool.intern_package_name(dep.name.as_str());
                deps.constrains
                    .push(self.vset(name, Matcher::Named(dep.clone()), true));
            }
        }
        Ok(deps)
    }

    /// The best installable package for an atom not held by `chosen`.
    fn best_for(&self, atom: &Atom, chosen_names: &HashSet<&str>) -> Option<u32> {
        for name in self.names_for(atom, true) {
            let name = self.pool.resolve_package_name(name).as_str();
            if chosen_names.contains(name) {
                continue;
            }
            let mut cands: Vec<u32> = self.u.by_name[name]
                .iter()
                .copied()
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
            let newest = self.u.by_name[p.nevra.name.as_str()]
                .iter()
                .copied()
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
            (Matcher::Provides(Atom::Dep(d)), false) if d.name == *name => match d.range {
                Some((cmp, evr)) => format!("{} {evr}", cmp.symbol()),
                None => String::new(),
            },
            (Matcher::Provides(Atom::Dep(d)), false) if name.as_str() == d.to_string() => {
                String::new()
            }
            (Matcher::Provides(atom), false) => format!("(providing `{atom}`)"),
            (Matcher::Provides(atom), true) => format!("(conflicts with `{atom}`)"),
            (Matcher::Named(d), _) => format!("(obsoleted: `{d}`)"),
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
        let pkgs = self
            .u
            .by_name
            .get(self.pool.resolve_package_name(name).as_str())?;
        let mut c = Candidates::default();
        for &i in pkgs {
            let s = self.solvable(i);
            // Excluded packages stay candidates, forbidden by an exclusion
            // clause, so that explanations can say why they were rejected.
            if self.u.excluded[i as usize] {
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

fn solve(packages: &[Package], request: &Request) -> Result<Plan, ResolveError> {
    let arch = request.arch.or_else(Arch::host);
    let u = Universe::new(packages, arch, &request.exclude);
    let provider = Provider::new(u, &request.prefer);

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
            let found = provider.u.providers(&Atom::Dep(d.clone()));
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
            Rich::Simple(d) if provider.u.by_name.contains_key(d.name.as_str()) => {
                let name = provider.pool.intern_package_name(d.name.as_str());
                let vs = provider.vset(name, Matcher::Named(d.clone()), false);
                reqs.push(Requirement::Single(vs).into());
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
    if request.weak_deps {
        let mut soft: Vec<u32> = Vec::new();
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
    Ok(plan(provider, &chosen, &requested, request.weak_deps))
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
    let set: HashSet<u32> = chosen.iter().copied().collect();
    let pos: HashMap<u32, usize> = chosen.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut reasons: Vec<Option<Reason>> = vec![None; chosen.len()];
    let mut queue = VecDeque::new();
    let mut atoms = Vec::new();

    let mark = |atom: &Atom,
                reason: &dyn Fn() -> Reason,
                reasons: &mut Vec<Option<Reason>>,
                queue: &mut VecDeque<usize>| {
        for i in u.providers(atom) {
            if let Some(&k) = pos.get(&i) {
                if reasons[k].is_none() {
                    reasons[k] = Some(reason());
                    queue.push_back(k);
                }
            }
        }
    };
    for (text, rich) in requested {
        let r = || Reason::Requested {
            request: text.to_string(),
        };
        if let Rich::Simple(d) = rich {
            if u.by_name.contains_key(d.name.as_str()) {
                let by_name = chosen.iter().position(|&i| u.pkg(i).nevra.name == d.name);
                if let Some(k) = by_name.filter(|&k| reasons[k].is_none()) {
                    reasons[k] = Some(r());
                    queue.push_back(k);
                }
                continue;
            }
        }
        atoms.clear();
        rich::atoms(rich, &mut atoms);
        for a in &atoms {
            mark(a, &r, &mut reasons, &mut queue);
        }
    }
    loop {
        while let Some(k) = queue.pop_front() {
            for dep in u.pkg(chosen[k]).requires.iter().filter(|d| !d.is_rpmlib()) {
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                atoms.clear();
                rich::atoms(&rich, &mut atoms);
                for a in &atoms {
                    let r = || Reason::Required {
                        by: k,
                        dep: dep.to_string(),
                    };
                    mark(a, &r, &mut reasons, &mut queue);
                }
            }
        }
        if !weak {
            break;
        }
        // One weak step, then back to Requires from what it added.
        for k in 0..chosen.len() {
            if reasons[k].is_none() || queue.contains(&k) {
                continue;
            }
            for dep in &u.pkg(chosen[k]).recommends {
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                atoms.clear();
                rich::atoms(&rich, &mut atoms);
                for a in &atoms {
                    let r = || Reason::Recommended {
                        by: k,
                        dep: dep.to_string(),
                    };
                    mark(a, &r, &mut reasons, &mut queue);
                }
            }
        }
        for k in 0..chosen.len() {
            if reasons[k].is_some() {
                continue;
            }
            'deps: for dep in &u.pkg(chosen[k]).supplements {
                let Ok(rich) = rich::parse_dep(dep) else {
                    continue;
                };
                atoms.clear();
                rich::atoms(&rich, &mut atoms);
                for a in &atoms {
                    let by = u.held_by(a, &set).and_then(|i| pos.get(&i).copied());
                    if let Some(by) = by.filter(|&b| reasons[b].is_some()) {
                        reasons[k] = Some(Reason::Recommended {
                            by,
                            dep: format!("supplemented by {}: {dep}", u.pkg(chosen[k]).nevra.name),
                        });
                        queue.push_back(k);
                        break 'deps;
                    }
                }
            }
        }
        if queue.is_empty() {
            break;
        }
    }
    let packages = chosen
        .iter()
        .zip(reasons)
        .map(|(&i, reason)| Planned {
            package: u.pkg(i).clone(),
            // Every solvable resolvo selects is reached through one of the
            // clauses walked above; this is a guard, not an expected path.
            reason: reason.unwrap_or_else(|| Reason::Requested {
                request: "(selected by the solver, reason not traced)".to_string(),
            }),
        })
        .collect();
    Plan { packages }
}

/// The chains that brought package `name` into the plan: one chain per
/// package of that name, each from the request down to the package, e.g.
/// `["nginx-1.24-1.x86_64 (requested as `nginx`)", "openssl-libs-3.0-1.x86_64
/// (nginx requires `libssl.so.3()(64bit)`)"]`.
pub fn why(plan: &Plan, name: &str) -> Vec<Vec<String>> {
    let mut chains = Vec::new();
    for (start, p) in plan.packages.iter().enumerate() {
        if p.package.nevra.name != name {
            continue;
        }
        let mut chain = Vec::new();
        let mut k = start;
        // Reasons point to packages reached earlier in a breadth-first walk,
        // so the chain ends; the bound guards against a hand-made cycle.
        for _ in 0..=plan.packages.len() {
            let here = &plan.packages[k];
            let nevra = &here.package.nevra;
            match &here.reason {
                Reason::Requested { request } => {
                    chain.push(format!("{nevra} (requested as `{request}`)"));
                    break;
                }
                Reason::Required { by, dep } | Reason::Recommended { by, dep } => {
                    let verb = match &here.reason {
                        Reason::Required { .. } => "requires",
                        _ => "recommends",
                    };
                    let parent = &plan.packages[*by].package.nevra.name;
                    chain.push(format!("{nevra} ({parent} {verb} `{dep}`)"));
                    k = *by;
                }
            }
        }
        chain.reverse();
        chains.push(chain);
    }
    chains
}
