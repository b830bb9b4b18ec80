//! The packages the resolver chooses from, decoded only when looked at.
//!
//! A Fedora-sized repo is 75,000 packages and 1.25 million dependencies;
//! built as [`Package`]s they took 150 MB, while a resolve looks at a few
//! thousand of them. So a repo loaded from the parsed-metadata cache stays
//! in the cache file, mapped read-only ([`Map`]), and a package is decoded
//! on its first use ([`PackageSet::package`]) and kept. What the resolver
//! needs of *every* package is read once at load into a [`Summary`] of a
//! few bytes per package: its name, arch, whether it has `Supplements`,
//! who obsoletes which name, and the file paths dependencies name. With
//! the capability index stored beside it (see [`CapIndex`]), no lookup
//! decodes a package it does not then use.
//!
//! Several repos are several [`Part`]s laid end to end: positions run on
//! from one part to the next (recipe order), as if their package lists
//! were concatenated, and an index lookup is one lookup per part. Repo
//! `priority`/`cost` hide packages ([`PackageSet::hide`]) rather than
//! renumber them.
//!
//! Packages from elsewhere (a test, a repo whose complete file lists were
//! read) are a part holding a `Vec<Package>`, with the same summary.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::capindex::{hash, CapIndex};
use super::codec::{Skimmed, View};
use super::map::Map;
use super::Package;

/// What the resolver needs of every package of a part, without decoding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Every package's name, laid end to end.
    names: String,
    /// Where each package's name ends in `names`.
    name_ends: Vec<u32>,
    /// Each package's arch, as an index into `arches`.
    arch_ids: Vec<u16>,
    arches: Vec<String>,
    /// Packages with `Supplements` (weak-deps pass).
    supplementers: Vec<u32>,
    /// (hash of a name in `Obsoletes`, package), sorted.
    obsoleting: Vec<(u64, u32)>,
    /// Distinct file paths named by `Requires`, `Recommends` and
    /// `Supplements` (rich ones too) that no package of the part lists as a
    /// file or provide, sorted: stored in the cache entry (computed when it
    /// is written), so that a load does not probe a few thousand packages
    /// to find that they are all listed.
    wants: Vec<String>,
}

impl Summary {
    pub fn len(&self) -> usize {
        self.name_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.name_ends.is_empty()
    }

    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.name_ends[i - 1] };
        &self.names[start as usize..self.name_ends[i] as usize]
    }

    fn arch(&self, i: usize) -> &str {
        &self.arches[self.arch_ids[i] as usize]
    }

    /// Add the next package. `None` when its arch would be the 65,537th
    /// distinct one or the names pass 4 GiB (no real repo comes close).
    pub fn push<'s>(
        &mut self,
        name: &str,
        arch: &str,
        has_supplements: bool,
        obsoletes: impl IntoIterator<Item = &'s str>,
        wants: impl IntoIterator<Item = &'s str>,
        seen_wants: &mut HashSet<String>,
    ) -> Option<()> {
        let i = self.name_ends.len() as u32;
        let name_end = u32::try_from(self.names.len() + name.len()).ok()?;
        let arch_id = match self.arches.iter().position(|a| a == arch) {
            Some(k) => k,
            None => {
                self.arches.push(arch.to_string());
                self.arches.len() - 1
            }
        };
        let arch_id = u16::try_from(arch_id).ok()?;
        self.names.push_str(name);
        self.name_ends.push(name_end);
        self.arch_ids.push(arch_id);
        if has_supplements {
            self.supplementers.push(i);
        }
        self.obsoleting
            .extend(obsoletes.into_iter().map(|o| (hash(o), i)));
        for w in wants {
            for path in file_paths(w) {
                if !seen_wants.contains(path) {
                    seen_wants.insert(path.to_string());
                }
            }
        }
        Some(())
    }

    /// Finish after the last [`Summary::push`] (or [`Summary::append`]).
    pub fn seal(&mut self, seen_wants: HashSet<String>) {
        self.obsoleting.sort_unstable();
        self.wants.extend(seen_wants);
        self.wants.sort_unstable();
        self.wants.dedup();
    }

    /// `other`'s packages after this one's (before sealing either).
    pub fn append(&mut self, other: Summary) {
        let shift = self.len() as u32;
        let base = self.names.len() as u32;
        self.names.push_str(&other.names);
        self.name_ends
            .extend(other.name_ends.iter().map(|e| e + base));
        for &id in &other.arch_ids {
            let arch = &other.arches[id as usize];
            let k = match self.arches.iter().position(|a| a == arch) {
                Some(k) => k,
                None => {
                    self.arches.push(arch.clone());
                    self.arches.len() - 1
                }
            };
            // Both hold few arches (see `push`).
            self.arch_ids.push(k as u16);
        }
        self.supplementers
            .extend(other.supplementers.iter().map(|i| i + shift));
        self.obsoleting
            .extend(other.obsoleting.iter().map(|&(h, i)| (h, i + shift)));
    }

    /// The summary of packages already built.
    pub fn of(packages: &[Package]) -> Summary {
        let mut s = Summary::default();
        let mut seen = HashSet::new();
        for p in packages {
            let wants = p
                .requires
                .iter()
                .chain(&p.recommends)
                .chain(&p.supplements)
                .map(|d| &*d.name);
            // Only fails past 65,536 arches or 4 GiB of names (see `push`).
            let _ = s.push(
                &p.nevra.name,
                &p.nevra.arch,
                !p.supplements.is_empty(),
                p.obsoletes.iter().map(|d| &*d.name),
                wants,
                &mut seen,
            );
        }
        s.seal(seen);
        s
    }

    /// The summary of what [`View::skim_at`] read (the unlisted file
    /// dependencies come from the entry: [`Summary::set_unlisted`]).
    pub fn push_skimmed(&mut self, p: &Skimmed<'_>, seen: &mut HashSet<String>) -> Option<()> {
        self.push(
            p.name,
            p.arch,
            p.has_supplements,
            p.obsoletes.iter().copied(),
            [],
            seen,
        )
    }

    pub fn set_unlisted(&mut self, wants: Vec<String>) {
        self.wants = wants;
    }

    /// Keep only the file dependencies `packages` (indexed by `caps`) do
    /// not list.
    fn drop_listed(&mut self, packages: &[Package], caps: &CapIndex) {
        self.wants.retain(|w| {
            !caps
                .with_cap(w)
                .any(|i| packages.get(i as usize).is_some_and(|p| lists(p, w)))
        });
    }
}

/// The file paths in a dependency's text: itself when it is a path, the
/// paths inside a rich dependency.
fn file_paths(text: &str) -> Box<dyn Iterator<Item = &str> + '_> {
    if text.starts_with('/') {
        Box::new(std::iter::once(text))
    } else if text.starts_with('(') && text.contains('/') {
        Box::new(
            text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .filter(|t| t.starts_with('/')),
        )
    } else {
        Box::new(std::iter::empty())
    }
}

fn lists(p: &Package, path: &str) -> bool {
    p.files.iter().any(|f| f == path) || p.provides.iter().any(|d| &*d.name == path)
}

/// The file paths `packages` require (or recommend, or supplement) and do
/// not list themselves, sorted (see [`Summary`]).
pub fn unlisted_file_deps(packages: &[Package], caps: &CapIndex) -> Vec<String> {
    let mut s = Summary::of(packages);
    s.drop_listed(packages, caps);
    s.wants
}

/// One repo's packages in the cache file, decoded on first use.
#[derive(Clone)]
pub struct Cached {
    pub(super) map: Arc<Map>,
    /// Per chunk: byte range in the file, first package position.
    pub(super) chunks: Vec<(usize, usize, u32)>,
    /// Per package: where its encoding starts within its chunk.
    pub(super) starts: Vec<u32>,
    pub(super) repo: usize,
    pub(super) cells: Vec<OnceCell<Box<Package>>>,
}

impl Cached {
    fn chunk(&self, i: usize) -> (usize, usize) {
        let k = self.chunks.partition_point(|c| c.2 as usize <= i) - 1;
        (self.chunks[k].0, self.chunks[k].1)
    }

    /// Whether package `i` lists `path` as a file or provide: read in
    /// place, without building (or keeping) the package.
    fn lists(&self, i: usize, path: &str) -> bool {
        if let Some(p) = self.cells[i].get() {
            return lists(p, path);
        }
        let (offset, len) = self.chunk(i);
        let bytes = &self.map.bytes()[offset..offset + len];
        let found = View::new(bytes)
            .and_then(|v| v.skim_at(self.starts[i] as usize))
            .is_some_and(|(p, _)| p.files.contains(&path) || p.provides.contains(&path));
        self.map.release(offset, len);
        found
    }

    fn package(&self, i: usize) -> &Package {
        self.cells[i].get_or_init(|| {
            let (offset, len) = self.chunk(i);
            let bytes = &self.map.bytes()[offset..offset + len];
            // Every package was decoded once when the entry was loaded
            // (`parsed::read` skims each with the same reader), so this
            // cannot fail unless the file was changed in place since.
            let decoded =
                View::new(bytes).and_then(|v| v.package_at(self.starts[i] as usize, self.repo));
            self.map.release(offset, len);
            Box::new(
                decoded
                    .expect("a cache entry changed on disk while in use")
                    .0,
            )
        })
    }
}

/// Where one part's packages are.
#[derive(Clone)]
enum Store {
    Owned(Vec<Package>),
    Cached(Cached),
}

/// One repo's packages (or any list of packages), with their index.
#[derive(Clone)]
pub struct Part {
    store: Store,
    caps: CapIndex,
    summary: Summary,
}

impl Part {
    /// Packages already built, indexed here.
    pub fn owned(packages: Vec<Package>) -> Part {
        let caps = CapIndex::build(&packages);
        Part::owned_indexed(packages, caps)
    }

    pub fn owned_indexed(packages: Vec<Package>, caps: CapIndex) -> Part {
        let mut summary = Summary::of(&packages);
        summary.drop_listed(&packages, &caps);
        Part {
            store: Store::Owned(packages),
            caps,
            summary,
        }
    }

    pub(super) fn cached(cached: Cached, caps: CapIndex, summary: Summary) -> Part {
        Part {
            store: Store::Cached(cached),
            caps,
            summary,
        }
    }

    fn len(&self) -> usize {
        self.summary.len()
    }

    fn package(&self, i: usize) -> &Package {
        match &self.store {
            Store::Owned(v) => &v[i],
            Store::Cached(c) => c.package(i),
        }
    }

    fn lists(&self, i: usize, path: &str) -> bool {
        match &self.store {
            Store::Owned(v) => lists(&v[i], path),
            Store::Cached(c) => c.lists(i, path),
        }
    }

    fn repo(&self, i: usize) -> usize {
        match &self.store {
            Store::Owned(v) => v[i].repo,
            Store::Cached(c) => c.repo,
        }
    }
}

/// The packages of one or more repos, positions running on across them.
#[derive(Clone, Default)]
pub struct PackageSet {
    parts: Vec<Part>,
    /// First position of each part.
    starts: Vec<u32>,
    /// Set by [`PackageSet::hide`]; empty when nothing is hidden.
    hidden: Vec<bool>,
}

impl std::fmt::Debug for PackageSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackageSet({} packages", self.len())?;
        for p in &self.parts {
            let kind = match p.store {
                Store::Owned(_) => "built",
                Store::Cached(_) => "cached",
            };
            write!(f, ", {} {kind}", p.len())?;
        }
        f.write_str(")")
    }
}

/// Equal when they hold the same packages in the same order (decodes all:
/// for tests).
impl PartialEq for PackageSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().eq(other.iter())
            && (0..self.len() as u32).all(|i| self.is_hidden(i) == other.is_hidden(i))
    }
}

impl PackageSet {
    /// Packages already built (tests, a lock), indexed here.
    pub fn of(packages: Vec<Package>) -> PackageSet {
        PackageSet::from_parts(vec![Part::owned(packages)])
    }

    pub fn from_parts(parts: Vec<Part>) -> PackageSet {
        let mut starts = Vec::with_capacity(parts.len());
        let mut at = 0u32;
        for p in &parts {
            starts.push(at);
            at += p.len() as u32;
        }
        PackageSet {
            parts,
            starts,
            hidden: Vec::new(),
        }
    }

    /// `others`' parts after this set's.
    pub fn append(&mut self, others: PackageSet) {
        assert!(self.hidden.is_empty() && others.hidden.is_empty());
        let mut parts = std::mem::take(&mut self.parts);
        parts.extend(others.parts);
        *self = PackageSet::from_parts(parts);
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn locate(&self, i: u32) -> (&Part, usize) {
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        (&self.parts[k], (i - self.starts[k]) as usize)
    }

    /// Package `i`, decoded now if it was not yet.
    pub fn package(&self, i: u32) -> &Package {
        let (part, j) = self.locate(i);
        part.package(j)
    }

    pub fn name(&self, i: u32) -> &str {
        let (part, j) = self.locate(i);
        part.summary.name(j)
    }

    pub fn arch(&self, i: u32) -> &str {
        let (part, j) = self.locate(i);
        part.summary.arch(j)
    }

    pub fn repo(&self, i: u32) -> usize {
        let (part, j) = self.locate(i);
        part.repo(j)
    }

    /// Every package as from repo `position` (what [`Package::repo`]
    /// indexes): a repo loaded once for several recipes of one run takes
    /// each recipe's position in turn.
    pub fn set_repo(&mut self, position: usize) {
        for part in &mut self.parts {
            match &mut part.store {
                Store::Owned(v) => v.iter_mut().for_each(|p| p.repo = position),
                Store::Cached(c) => {
                    c.repo = position;
                    for cell in &mut c.cells {
                        if let Some(p) = cell.get_mut() {
                            p.repo = position;
                        }
                    }
                }
            }
        }
    }

    /// Hidden by repo priority or cost: as if it were not in the set.
    pub fn is_hidden(&self, i: u32) -> bool {
        self.hidden.get(i as usize).copied().unwrap_or(false)
    }

    /// Hide every package whose `keep` flag is not set.
    pub fn hide(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.len(), "one flag per package");
        if keep.iter().all(|&k| k) {
            return;
        }
        self.hidden = keep.iter().map(|k| !k).collect();
    }

    /// Every package, in order (decodes them all: for tests and small sets).
    pub fn iter(&self) -> impl Iterator<Item = &Package> + '_ {
        (0..self.len() as u32).map(|i| self.package(i))
    }

    /// Run `f` on each part's index with the position its part starts at.
    fn lookup<'s, I: Iterator<Item = u32> + 's>(
        &'s self,
        f: impl Fn(&'s Part) -> I + 's,
    ) -> impl Iterator<Item = u32> + 's {
        self.parts
            .iter()
            .zip(&self.starts)
            .flat_map(move |(p, &s)| f(p).map(move |i| i + s))
    }

    /// Positions (ascending) of packages listing `cap` as their name, a
    /// provide or a file; on a hash collision also unrelated ones: check.
    pub fn with_cap<'s>(&'s self, cap: &'s str) -> impl Iterator<Item = u32> + 's {
        self.lookup(move |p| p.caps.with_cap(cap))
    }

    /// Positions (ascending) of packages named `name`.
    pub fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = u32> + 's {
        self.lookup(move |p| p.caps.named(name))
            .filter(move |&i| self.name(i) == name)
    }

    /// Positions of packages with `name` in their `Obsoletes` (or, on a
    /// hash collision, not: check).
    pub fn obsoleting<'s>(&'s self, name: &str) -> impl Iterator<Item = u32> + 's {
        let h = hash(name);
        self.lookup(move |p| {
            let o = &p.summary.obsoleting;
            let start = o.partition_point(|e| e.0 < h);
            o[start..].iter().take_while(move |e| e.0 == h).map(|e| e.1)
        })
    }

    /// Positions of packages with `Supplements`, ascending.
    pub fn supplementers(&self) -> impl Iterator<Item = u32> + '_ {
        self.lookup(|p| p.summary.supplementers.iter().copied())
    }

    /// Whether some file requirement (of any package, or a request) is met
    /// by no path the packages list: then the complete file lists are worth
    /// their cost ([`super::load_filelists`]). Each part knows which of its
    /// own packages' file requirements it does not list itself: only those,
    /// and the requests, are looked for in the set.
    pub fn unmet_file_deps<'a>(&self, requests: impl IntoIterator<Item = &'a str>) -> bool {
        let mut wanted: HashSet<&str> = requests.into_iter().flat_map(file_paths).collect();
        for p in &self.parts {
            wanted.extend(p.summary.wants.iter().map(String::as_str));
        }
        // Checked in place: a Fedora's primary names a few thousand paths,
        // whose providers the solve mostly never looks at.
        let listed = |path: &str| {
            self.with_cap(path).any(|i| {
                let (part, j) = self.locate(i);
                part.lists(j, path)
            })
        };
        !wanted.into_iter().all(listed)
    }

    /// The packages of repo `repo` as built packages, to change in place;
    /// `reindex` re-reads their summary and index afterwards.
    pub(super) fn built_mut(&mut self, repo: usize) -> Vec<&mut Vec<Package>> {
        let mut out = Vec::new();
        for part in &mut self.parts {
            let of_repo = match &part.store {
                Store::Cached(c) => c.repo == repo,
                Store::Owned(v) => v.iter().any(|p| p.repo == repo),
            };
            if !of_repo {
                continue;
            }
            if let Store::Cached(c) = &part.store {
                let all = (0..c.cells.len()).map(|i| c.package(i).clone()).collect();
                part.store = Store::Owned(all);
            }
            if let Store::Owned(v) = &mut part.store {
                out.push(v);
            }
        }
        out
    }

    /// Rebuild the index and summary of every built part (after
    /// [`PackageSet::built_mut`]).
    pub(super) fn reindex(&mut self) {
        for part in &mut self.parts {
            if let Store::Owned(v) = &part.store {
                part.caps = CapIndex::build(v);
                part.summary = Summary::of(v);
                part.summary.drop_listed(v, &part.caps);
            }
        }
    }

    /// Groups of positions sharing a name, for names found in more than
    /// one repo only (what repo priority and cost look at).
    pub fn names_in_several_repos(&self) -> Vec<Vec<u32>> {
        let repos: HashSet<usize> = (0..self.len() as u32).map(|i| self.repo(i)).collect();
        if repos.len() < 2 {
            return Vec::new();
        }
        let mut by_name: HashMap<&str, Vec<u32>> = HashMap::new();
        for i in 0..self.len() as u32 {
            by_name.entry(self.name(i)).or_default().push(i);
        }
        let mut groups: Vec<Vec<u32>> = by_name
            .into_values()
            .filter(|g| g.iter().any(|&i| self.repo(i) != self.repo(g[0])))
            .collect();
        groups.sort_unstable();
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::{Dep, Evr, Nevra};

    fn pkg(name: &str, arch: &str, repo: usize) -> Package {
        Package::new(
            Nevra::new(name, Evr::parse("1-1"), arch),
            repo,
            String::new(),
            Digest::sha256_of(name.as_bytes()),
        )
    }

    #[test]
    fn positions_run_on_across_parts() {
        let mut a = pkg("a", "x86_64", 0);
        a.provides = vec![Dep::any("x")];
        a.requires = vec![Dep::any("/usr/bin/sh"), Dep::any("(b if /etc/c)")];
        let mut b = pkg("b", "noarch", 1);
        b.provides = vec![Dep::any("x")];
        b.obsoletes = vec![Dep::any("old")];
        b.supplements = vec![Dep::any("a")];
        let mut set = PackageSet::of(vec![a.clone(), pkg("c", "x86_64", 0)]);
        set.append(PackageSet::of(vec![b.clone(), pkg("a", "src", 1)]));
        assert_eq!(set.len(), 4);
        assert_eq!(set.package(2), &b);
        assert_eq!(
            (0..4).map(|i| set.name(i)).collect::<Vec<_>>(),
            ["a", "c", "b", "a"]
        );
        assert_eq!(set.arch(3), "src");
        assert_eq!(set.repo(2), 1);
        assert_eq!(set.with_cap("x").collect::<Vec<_>>(), [0, 2]);
        assert_eq!(set.named("a").collect::<Vec<_>>(), [0, 3]);
        assert_eq!(set.obsoleting("old").collect::<Vec<_>>(), [2]);
        assert_eq!(set.supplementers().collect::<Vec<_>>(), [2]);
        assert_eq!(set.names_in_several_repos(), vec![vec![0, 3]]);
        // `/usr/bin/sh` and `/etc/c` are listed by nobody.
        assert!(set.unmet_file_deps([]));
        set.hide(&[true, false, true, true]);
        assert!(set.is_hidden(1) && !set.is_hidden(0));
    }

    #[test]
    fn file_requirements_met_by_a_listed_file_or_provide() {
        let mut a = pkg("a", "x86_64", 0);
        a.requires = vec![Dep::any("/usr/bin/sh"), Dep::any("(/etc/c or b)")];
        let mut b = pkg("b", "x86_64", 0);
        b.files = vec!["/usr/bin/sh".into()];
        b.provides = vec![Dep::any("/etc/c")];
        let set = PackageSet::of(vec![a.clone(), b.clone()]);
        assert!(!set.unmet_file_deps(["/usr/bin/sh"]));
        assert!(set.unmet_file_deps(["/usr/share/x"]));
        // Required in one repo, listed in another.
        let mut split = PackageSet::of(vec![a.clone()]);
        assert!(split.unmet_file_deps([]));
        split.append(PackageSet::of(vec![b]));
        assert!(!split.unmet_file_deps([]));
        // Listed by the requiring repo itself: nothing left to look for.
        let mut own = a;
        own.files = vec!["/usr/bin/sh".into(), "/etc/c".into()];
        assert!(!PackageSet::of(vec![own]).unmet_file_deps([]));
    }
}
