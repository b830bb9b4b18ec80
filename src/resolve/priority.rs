//! dnf's repository `priority` and `cost`, applied before solving.
//!
//! - priority: a package name offered by a repo of better (lower) priority
//!   hides every package of that name in worse-priority repos, even newer ones.
//! - cost: when the very same NEVRA is in several repos, the cheapest (then
//!   the first in recipe order) is kept; the others are duplicates.
//! - an installed repo (a base image's packages, libsolv's system repo) is
//!   outside both: its packages are always kept and hide nothing, but a
//!   repo's copy of an installed NEVRA is a duplicate of it.

use std::collections::HashMap;

use crate::package::Package;
use crate::repo::PackageSet;

/// `repos[i]` is `(priority, cost)` of the recipe's repo `i`.
pub fn apply(packages: Vec<Package>, repos: &[(i32, u32)]) -> Vec<Package> {
    let keep = keep(&PackageSet::of(packages.clone()), repos, None);
    packages
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// [`apply`] to a package set, with repo `installed` (if any) as the
/// installed packages: the packages that lose are hidden.
pub fn apply_set(set: &mut PackageSet, repos: &[(i32, u32)], installed: Option<usize>) {
    let keep = keep(set, repos, installed);
    set.hide(&keep);
}

/// Which packages survive. Only a name offered by several repos can be
/// hidden or duplicated, so the work is per group of same-named packages
/// offered by several repos (only those are decoded), and nothing at all
/// with a single repo.
fn keep(set: &PackageSet, repos: &[(i32, u32)], installed: Option<usize>) -> Vec<bool> {
    let mut keep = vec![true; set.len()];
    let prio = |p: &Package| repos.get(p.repo).map_or(i32::MAX, |r| r.0);
    let cost = |p: &Package| repos.get(p.repo).map_or(u32::MAX, |r| r.1);
    let is_installed = |p: &Package| Some(p.repo) == installed;
    let mut group: Vec<&Package> = Vec::new();
    for positions in set.names_in_several_repos() {
        group.clear();
        group.extend(positions.iter().map(|&i| set.package(i)));
        let installed_nevras: Vec<String> = group
            .iter()
            .filter(|p| is_installed(p))
            .map(|p| p.nevra.to_string())
            .collect();
        let best_prio = group
            .iter()
            .filter(|p| !is_installed(p))
            .map(|p| prio(p))
            .min()
            .unwrap_or(i32::MAX);
        // The copy kept of an identical package is chosen among the
        // best-priority repos only: otherwise a cheaper copy in a hidden
        // repo wins, and then both are dropped.
        let mut best_copy: HashMap<String, (u32, usize)> = HashMap::new();
        for p in group
            .iter()
            .filter(|p| !is_installed(p) && prio(p) == best_prio)
        {
            let cand = (cost(p), p.repo);
            let e = best_copy.entry(p.nevra.to_string()).or_insert(cand);
            *e = (*e).min(cand);
        }
        for (&i, p) in positions.iter().zip(&group) {
            let nevra = p.nevra.to_string();
            keep[i as usize] = is_installed(p)
                || (prio(p) == best_prio
                    && best_copy[&nevra] == (cost(p), p.repo)
                    && !installed_nevras.contains(&nevra));
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::{Evr, Nevra};

    fn pkg(name: &str, evr: &str, repo: usize) -> Package {
        Package::new(
            Nevra::new(name, Evr::parse(evr), "x86_64"),
            repo,
            String::new(),
            Digest::sha256_of(format!("{name}{evr}{repo}").as_bytes()),
        )
    }

    #[test]
    fn an_installed_repo_is_never_hidden_and_hides_only_its_own_nevras() {
        // repo 0: a recipe repo; repo 1: local RPMs (best priority); repo 2:
        // the base image's installed packages.
        let pkgs = vec![
            pkg("busybox", "1.35-3", 2),
            pkg("busybox", "1.36-1", 1),
            pkg("busybox", "1.35-4", 0),
            pkg("zlib", "1.3-1", 2),
            pkg("zlib", "1.3-1", 0),
        ];
        let mut set = PackageSet::of(pkgs);
        apply_set(&mut set, &[(99, 1000), (i32::MIN, 0), (99, 0)], Some(2));
        let mut kept: Vec<String> = (0..set.len() as u32)
            .filter(|&i| !set.is_hidden(i))
            .map(|i| format!("{}@{}", set.package(i).nevra, set.package(i).repo))
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "busybox-1.35-3.x86_64@2",
                "busybox-1.36-1.x86_64@1",
                "zlib-1.3-1.x86_64@2"
            ]
        );
    }

    fn ids(v: &[Package]) -> Vec<String> {
        v.iter()
            .map(|p| format!("{}@{}", p.nevra, p.repo))
            .collect()
    }

    #[test]
    fn better_priority_hides_newer_versions_elsewhere() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("nginx", "1.26-1", 1),
            pkg("bash", "5.2-1", 1),
        ];
        let out = apply(pkgs, &[(10, 1000), (99, 1000)]);
        assert_eq!(
            ids(&out),
            vec!["nginx-1.24-1.x86_64@0", "bash-5.2-1.x86_64@1"]
        );
    }

    #[test]
    fn equal_priority_keeps_all_versions_and_cheapest_duplicate() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("nginx", "1.26-1", 1),
            pkg("nginx", "1.24-1", 1),
        ];
        let out = apply(pkgs, &[(99, 1000), (99, 500)]);
        assert_eq!(
            ids(&out),
            vec!["nginx-1.26-1.x86_64@1", "nginx-1.24-1.x86_64@1"]
        );
        let pkgs = vec![pkg("a", "1-1", 0), pkg("a", "1-1", 1)];
        assert_eq!(
            ids(&apply(pkgs, &[(99, 1000), (99, 1000)])),
            vec!["a-1-1.x86_64@0"]
        );
    }

    #[test]
    fn the_same_package_in_a_later_repo_with_better_priority_is_kept() {
        // fedora (99) and updates (50) serving identical copies, as a
        // .repo file with `priority=50` on updates does.
        let pkgs = vec![pkg("busybox", "1.36-1", 0), pkg("busybox", "1.36-1", 1)];
        assert_eq!(
            ids(&apply(pkgs, &[(99, 1000), (50, 1000)])),
            vec!["busybox-1.36-1.x86_64@1"]
        );
    }

    #[test]
    fn a_set_hides_what_loses_and_keeps_positions() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("bash", "5.2-1", 0),
            pkg("nginx", "1.26-1", 1),
            pkg("zsh", "5.9-1", 1),
        ];
        let mut set = PackageSet::of(pkgs.clone());
        apply_set(&mut set, &[(10, 1000), (99, 1000)], None);
        let hidden: Vec<bool> = (0..4).map(|i| set.is_hidden(i)).collect();
        assert_eq!(hidden, [false, false, true, false]);
        assert_eq!(set.package(3), &pkgs[3]);
    }

    #[test]
    fn nothing_hidden_leaves_the_set_as_it_was() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("bash", "5.2-1", 1),
            pkg("nginx", "1.24-1", 0),
        ];
        let mut set = PackageSet::of(pkgs.clone());
        apply_set(&mut set, &[(10, 1000), (99, 1000)], None);
        assert_eq!(set, PackageSet::of(pkgs.clone()));
        assert_eq!(apply(pkgs.clone(), &[(10, 1000), (99, 1000)]), pkgs);
    }
}
