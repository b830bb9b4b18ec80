//! Install order: dependencies before their dependents, as rpm's transaction
//! orders them, so that e.g. `filesystem`'s `lib64 → usr/lib64` symlink exists
//! before a package unpacks files below `/lib64`.
//!
//! Kahn's algorithm over the plan's Requires edges; among ready packages the
//! smallest name goes first, and a dependency cycle is broken at the package
//! with the fewest unmet dependencies (then by name), so the order is the same
//! on every run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::package::Package;

/// Indices into `packages`, in an order where providers come before requirers.
pub fn install_order(packages: &[&Package]) -> Vec<usize> {
    let n = packages.len();
    let graph = dependency_graph(packages);
    let deps: Vec<BTreeSet<usize>> = graph.iter().map(|m| m.keys().copied().collect()).collect();
    // Packages in a dependency cycle form one strongly connected component;
    // components are ordered with Kahn's algorithm, members by name.
    let comp = tarjan(&deps);
    let ncomp = comp.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ncomp];
    for (i, &c) in comp.iter().enumerate() {
        members[c].push(i);
    }
    let key = |i: usize| {
        (
            packages[i].nevra.name.as_str(),
            packages[i].nevra.arch.as_str(),
            i,
        )
    };
    for m in &mut members {
        m.sort_by_key(|&i| key(i));
    }
    let mut comp_deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); ncomp];
    for (i, ds) in deps.iter().enumerate() {
        comp_deps[comp[i]].extend(ds.iter().map(|&d| comp[d]).filter(|&c| c != comp[i]));
    }
    let mut unmet: Vec<usize> = comp_deps.iter().map(BTreeSet::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ncomp];
    for (c, ds) in comp_deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(c);
        }
    }
    let mut ready: BTreeSet<((&str, &str, usize), usize)> = (0..ncomp)
        .filter(|&c| unmet[c] == 0)
        .map(|c| (key(members[c][0]), c))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(entry) = ready.pop_first() {
        let c = entry.1;
        order.extend(&members[c]);
        for &d in &dependents[c] {
            unmet[d] -= 1;
            if unmet[d] == 0 {
                ready.insert((key(members[d][0]), d));
            }
        }
    }
    debug_assert_eq!(order.len(), n, "the component graph is acyclic");
    order
}

/// For each package, the planned packages it requires, each with the first
/// requirement (as written) that the provider satisfies.
pub fn dependency_graph(packages: &[&Package]) -> Vec<BTreeMap<usize, String>> {
    // Which planned package provides a capability name (names, provides, files).
    let mut providers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        providers.entry(p.nevra.name.as_str()).or_default().push(i);
        for prov in &p.provides {
            providers.entry(&*prov.name).or_default().push(i);
        }
        for f in &p.files {
            providers.entry(f.as_str()).or_default().push(i);
        }
    }
    packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut deps = BTreeMap::new();
            for req in p.requires.iter().filter(|r| !r.is_rpmlib()) {
                for name in capability_names(&req.name) {
                    for &j in providers.get(name).into_iter().flatten() {
                        if j != i {
                            deps.entry(j).or_insert_with(|| req.to_string());
                        }
                    }
                }
            }
            deps
        })
        .collect()
}

/// Strongly connected components (Tarjan), iteratively; returns each node's
/// component id.
fn tarjan(edges: &[BTreeSet<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let (mut next_index, mut next_comp) = (0, 0);
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, its edges as a list, position in that list)
        let mut work: Vec<(usize, Vec<usize>, usize)> =
            vec![(root, edges[root].iter().copied().collect(), 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, succ, pos)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, edges[w].iter().copied().collect(), 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low[*parent] = low[*parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

/// The capability names a requirement can be satisfied by. Rich dependencies
/// contribute every name they mention (an ordering hint, not a solution).
fn capability_names(dep: &str) -> Vec<&str> {
    if !dep.starts_with('(') {
        return vec![dep];
    }
    const KEYWORDS: [&str; 8] = [
        "and", "or", "if", "else", "unless", "with", "without", "not",
    ];
    dep.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty())
        .filter(|t| !KEYWORDS.contains(t))
        .filter(|t| !matches!(*t, "<" | "<=" | "=" | ">=" | ">"))
        .filter(|t| !t.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::{Dep, Evr, Nevra};

    fn pkg(name: &str, requires: &[&str], provides: &[&str], files: &[&str]) -> Package {
        Package {
            provides: provides.iter().map(|p| Dep::any(*p)).collect(),
            requires: requires.iter().map(|r| Dep::any(*r)).collect(),
            files: files.iter().map(|f| f.to_string()).collect(),
            ..Package::new(
                Nevra::new(name, Evr::parse("1-1"), "x86_64"),
                0,
                format!("{name}.rpm"),
                Digest::sha256_of(name.as_bytes()),
            )
        }
    }

    fn names(pkgs: &[Package]) -> Vec<&str> {
        let refs: Vec<&Package> = pkgs.iter().collect();
        install_order(&refs)
            .into_iter()
            .map(|i| pkgs[i].nevra.name.as_str())
            .collect()
    }

    #[test]
    fn providers_come_first() {
        let pkgs = vec![
            pkg(
                "bash",
                &["libc.so.6()(64bit)", "filesystem"],
                &["/bin/sh"],
                &[],
            ),
            pkg("glibc", &["filesystem"], &["libc.so.6()(64bit)"], &[]),
            pkg("filesystem", &["setup"], &[], &[]),
            pkg("setup", &["rpmlib(CompressedFileNames)"], &[], &[]),
        ];
        assert_eq!(names(&pkgs), vec!["setup", "filesystem", "glibc", "bash"]);
    }

    #[test]
    fn file_and_rich_dependencies_order_too() {
        let pkgs = vec![
            pkg("app", &["(python3 or python2)", "/usr/bin/env"], &[], &[]),
            pkg("python3", &[], &[], &[]),
            pkg("coreutils", &[], &[], &["/usr/bin/env"]),
        ];
        assert_eq!(names(&pkgs), vec!["coreutils", "python3", "app"]);
    }

    #[test]
    fn cycles_are_broken_deterministically() {
        let pkgs = vec![
            pkg("glibc-common", &["glibc"], &[], &[]),
            pkg("glibc", &["glibc-common"], &[], &[]),
            pkg("bash", &["glibc"], &[], &[]),
        ];
        assert_eq!(names(&pkgs), vec!["glibc", "glibc-common", "bash"]);
        let mut rev = pkgs.clone();
        rev.reverse();
        assert_eq!(names(&rev), vec!["glibc", "glibc-common", "bash"]);
    }
}
