//! dnf's repository `priority` and `cost`, applied before solving.
//!
//! - priority: a package name offered by a repo of better (lower) priority
//!   hides every package of that name in worse-priority repos, even newer ones.
//! - cost: when the very same NEVRA is in several repos, the cheapest (then
//!   the first in recipe order) is kept; the others are duplicates.

use std::collections::HashMap;

use crate::repo::{CapIndex, Package};

/// `repos[i]` is `(priority, cost)` of the recipe's repo `i`.
pub fn apply(packages: Vec<Package>, repos: &[(i32, u32)]) -> Vec<Package> {
    let mut caps = CapIndex::build(&packages);
    apply_indexed(packages, &mut caps, repos)
}

/// [`apply`] with the packages' capability index at hand, which is kept in
/// step (renumbered to the surviving packages).
pub fn apply_indexed(
    packages: Vec<Package>,
    caps: &mut CapIndex,
    repos: &[(i32, u32)],
) -> Vec<Package> {
    let keep = keep(&packages, caps, repos);
    if keep.iter().all(|&k| k) {
        // The usual case (one repo, or no name in two): moving 75,000
        // packages through the filter below would cost more than the check.
        return packages;
    }
    caps.retain(&keep);
    packages
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// Which packages survive. Only a name offered by several repos can be
/// hidden or duplicated, so the work is per group of same-named packages
/// (from the index), and nothing at all with a single repo.
fn keep(packages: &[Package], caps: &CapIndex, repos: &[(i32, u32)]) -> Vec<bool> {
    let mut keep = vec![true; packages.len()];
    if packages.windows(2).all(|w| w[0].repo == w[1].repo) {
        return keep;
    }
    let prio = |p: &Package| repos.get(p.repo).map_or(i32::MAX, |r| r.0);
    let cost = |p: &Package| repos.get(p.repo).map_or(u32::MAX, |r| r.1);
    let mut group: Vec<&Package> = Vec::new();
    for positions in caps.name_groups() {
        let positions: Vec<usize> = positions.map(|i| i as usize).collect();
        let first = packages[positions[0]].repo;
        if positions.iter().all(|&i| packages[i].repo == first) {
            continue;
        }
        group.clear();
        group.extend(positions.iter().map(|&i| &packages[i]));
        let mut best_prio: HashMap<&str, i32> = HashMap::new();
        for p in &group {
            let e = best_prio.entry(p.nevra.name.as_str()).or_insert(i32::MAX);
            *e = (*e).min(prio(p));
        }
        // The copy kept of an identical package is chosen among the
        // best-priority repos only: otherwise a cheaper copy in a hidden
        // repo wins, and then both are dropped.
        let mut best_copy: HashMap<String, (u32, usize)> = HashMap::new();
        for p in group
            .iter()
            .filter(|p| prio(p) == best_prio[p.nevra.name.as_str()])
        {
            let cand = (cost(p), p.repo);
            let e = best_copy.entry(p.nevra.to_string()).or_insert(cand);
            *e = (*e).min(cand);
        }
        for (&i, p) in positions.iter().zip(&group) {
            keep[i] = prio(p) == best_prio[p.nevra.name.as_str()]
                && best_copy[&p.nevra.to_string()] == (cost(p), p.repo);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::rpm::{Evr, Nevra};

    fn pkg(name: &str, evr: &str, repo: usize) -> Package {
        Package::new(
            Nevra::new(name, Evr::parse(evr), "x86_64"),
            repo,
            String::new(),
            Digest::sha256_of(format!("{name}{evr}{repo}").as_bytes()),
        )
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
    fn the_index_follows_the_surviving_packages() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("bash", "5.2-1", 0),
            pkg("nginx", "1.26-1", 1),
            pkg("zsh", "5.9-1", 1),
        ];
        let mut caps = CapIndex::build(&pkgs);
        let out = apply_indexed(pkgs, &mut caps, &[(10, 1000), (99, 1000)]);
        assert_eq!(
            ids(&out),
            vec![
                "nginx-1.24-1.x86_64@0",
                "bash-5.2-1.x86_64@0",
                "zsh-5.9-1.x86_64@1"
            ]
        );
        assert_eq!(caps, CapIndex::build(&out));
    }

    #[test]
    fn nothing_hidden_leaves_packages_and_index_as_they_were() {
        let pkgs = vec![
            pkg("nginx", "1.24-1", 0),
            pkg("bash", "5.2-1", 1),
            pkg("nginx", "1.24-1", 0),
        ];
        let mut caps = CapIndex::build(&pkgs);
        let out = apply_indexed(pkgs.clone(), &mut caps, &[(10, 1000), (99, 1000)]);
        assert_eq!(out, pkgs);
        assert_eq!(caps, CapIndex::build(&pkgs));
    }
}
