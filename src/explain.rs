//! What a plan installs and why: the `plan` table and JSON, and `why` chains.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::lock::{LockedGraph, LockedReason};
use crate::report::human_bytes;
use crate::resolve::order::dependency_graph;
use crate::resolve::{Choice, LeftOut, Plan, Reason};
use crate::scriptlets::ScriptletView;

/// One row of `minibuild plan`.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub evr: String,
    pub arch: String,
    pub repo: String,
    pub download_size: u64,
    pub installed_size: u64,
    pub reason: String,
    pub nevra: String,
    pub checksum: String,
    /// Scriptlets the build will not run, from the package header; `None`
    /// when the header could not be read (see [`with_scriptlets`]).
    pub scriptlets: Option<Vec<ScriptletView>>,
    /// Chosen among several providers by a preference (`prefer` or minimal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice: Option<Choice>,
}

#[derive(Debug, Serialize)]
pub struct PlanView {
    pub target: String,
    pub packages: Vec<Row>,
    pub download_size: u64,
    pub installed_size: u64,
    /// Packages a resolution without the package manager left out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// Rows for a plan; `repo_names[i]` names repo index `i`.
pub fn view(plan: &Plan, target: &str, repo_names: &[String]) -> PlanView {
    let name_of = |i: usize| plan.packages[i].package.nevra.name.clone();
    let packages: Vec<Row> = plan
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pkg = &p.package;
            let mut reason = match &p.reason {
                Reason::Requested { request } if *request == pkg.nevra.name => {
                    "requested".to_string()
                }
                Reason::Requested { request } => format!("requested as `{request}`"),
                Reason::Required { by, dep } => format!("required by {} ({dep})", name_of(*by)),
                Reason::Recommended { by, dep } => {
                    format!("recommended by {} ({dep})", name_of(*by))
                }
                Reason::Unrecorded => "locked (reason not recorded)".to_string(),
            };
            let choice = plan.choices.get(&i).cloned();
            if let Some(c) = &choice {
                reason = format!("{reason}; {c}");
            }
            Row {
                name: pkg.nevra.name.clone(),
                evr: pkg.nevra.evr.to_string(),
                arch: pkg.nevra.arch.clone(),
                repo: repo_names
                    .get(pkg.repo)
                    .cloned()
                    .unwrap_or_else(|| pkg.repo.to_string()),
                download_size: pkg.download_size,
                installed_size: pkg.installed_size,
                reason,
                nevra: pkg.nevra.to_string(),
                checksum: pkg.checksum.to_string(),
                scriptlets: None,
                choice,
            }
        })
        .collect();
    PlanView {
        target: target.to_string(),
        download_size: packages.iter().map(|r| r.download_size).sum(),
        installed_size: packages.iter().map(|r| r.installed_size).sum(),
        packages,
        left_out: plan.left_out.clone(),
    }
}

/// Attach each package's scriptlets (in plan order, as
/// `crate::scriptlets::for_packages` returns them).
pub fn with_scriptlets(view: &mut PlanView, scriptlets: Vec<Option<Vec<ScriptletView>>>) {
    for (row, s) in view.packages.iter_mut().zip(scriptlets) {
        row.scriptlets = s;
    }
}

/// A plain-text table with aligned columns and a totals line, then the
/// scriptlets that will not run, one package per line.
pub fn table(view: &PlanView) -> String {
    let header = [
        "Package",
        "Version",
        "Arch",
        "Repo",
        "Download",
        "Installed",
        "Reason",
    ];
    let rows: Vec<[String; 7]> = view
        .packages
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.evr.clone(),
                r.arch.clone(),
                r.repo.clone(),
                human_bytes(r.download_size),
                human_bytes(r.installed_size),
                r.reason.clone(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            // Sizes are right-aligned, the last column is not padded.
            if i == 4 || i == 5 {
                pad(&mut l, cell, w, Align::Right);
            } else if i == cells.len() - 1 {
                l.push_str(cell);
            } else {
                pad(&mut l, cell, w, Align::Left);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out.push_str(&format!(
        "{} packages for {}: {} to download, {} installed\n",
        view.packages.len(),
        view.target,
        human_bytes(view.download_size),
        human_bytes(view.installed_size)
    ));
    if !view.left_out.is_empty() {
        out.push_str("Left out with the package manager (`package_manager = true` keeps it):\n");
        let w = view
            .left_out
            .iter()
            .map(|l| l.name.chars().count())
            .max()
            .unwrap_or(0);
        for l in &view.left_out {
            out.push_str("  ");
            pad(&mut out, &l.name, w + 2, Align::Left);
            out.push_str(&l.why);
            out.push('\n');
        }
    }
    let with: Vec<&Row> = view
        .packages
        .iter()
        .filter(|r| r.scriptlets.as_ref().is_some_and(|s| !s.is_empty()))
        .collect();
    if !with.is_empty() {
        out.push_str("Scriptlets not run (minibuild runs none):\n");
        let w = with
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        for r in with {
            let parts: Vec<String> = r
                .scriptlets
                .iter()
                .flatten()
                .map(|s| {
                    if s.effects.is_empty() {
                        s.kind.clone()
                    } else {
                        format!("{} ({})", s.kind, s.effects.join("; "))
                    }
                })
                .collect();
            out.push_str("  ");
            pad(&mut out, &r.name, w, Align::Left);
            out.push_str(&parts.join(", "));
            out.push('\n');
        }
    }
    let unknown: Vec<&str> = view
        .packages
        .iter()
        .filter(|r| r.scriptlets.is_none())
        .map(|r| r.name.as_str())
        .collect();
    // All unknown: headers were not read at all (a caller without them).
    if !unknown.is_empty() && unknown.len() < view.packages.len() {
        out.push_str(&format!(
            "Scriptlets unknown (header not read): {}\n",
            unknown.join(", ")
        ));
    }
    out
}

/// The shortest dependency chain from each requested package to `name`,
/// e.g. `["nginx", "requires libssl.so.3()(64bit)", "openssl-libs"]`.
/// Empty when `name` is not in the plan.
pub fn why(plan: &Plan, name: &str) -> Vec<Vec<String>> {
    let pkgs: Vec<&crate::package::Package> = plan.packages.iter().map(|p| &p.package).collect();
    let names: Vec<&str> = pkgs.iter().map(|p| p.nevra.name.as_str()).collect();
    let requested: Vec<bool> = plan
        .packages
        .iter()
        .map(|p| matches!(p.reason, Reason::Requested { .. }))
        .collect();
    chains(&names, &requested, &dependency_graph(&pkgs), name)
}

/// [`why`] from a lock's recorded graph, without any repo metadata.
pub fn why_locked(graph: &LockedGraph, name: &str) -> Vec<Vec<String>> {
    let names: Vec<&str> = graph.packages.iter().map(|p| p.name.as_str()).collect();
    let requested: Vec<bool> = graph
        .packages
        .iter()
        .map(|p| matches!(p.reason(), Some(LockedReason::Requested(_))))
        .collect();
    chains(&names, &requested, &graph.requires, name)
}

/// Shortest chains over `requires` (package → required packages with the
/// requirement) from every `requested` package to the one named `name`.
fn chains(
    names: &[&str],
    requested: &[bool],
    requires: &[BTreeMap<usize, String>],
    name: &str,
) -> Vec<Vec<String>> {
    let Some(target) = names.iter().position(|n| *n == name) else {
        return Vec::new();
    };
    // Reverse BFS from the target: who requires whom.
    let mut required_by: Vec<Vec<(usize, &str)>> = vec![Vec::new(); names.len()];
    for (i, deps) in requires.iter().enumerate() {
        for (&j, dep) in deps {
            required_by[j].push((i, dep.as_str()));
        }
    }
    let mut next: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    let mut queue = VecDeque::from([target]);
    let mut seen = vec![false; names.len()];
    seen[target] = true;
    while let Some(j) = queue.pop_front() {
        for &(i, dep) in &required_by[j] {
            if !seen[i] {
                seen[i] = true;
                next.insert(i, (j, dep));
                queue.push_back(i);
            }
        }
    }
    let mut chains = Vec::new();
    for i in (0..names.len()).filter(|&i| requested[i] && seen[i]) {
        let mut chain = vec![names[i].to_string()];
        let mut at = i;
        while let Some(&(j, dep)) = next.get(&at) {
            chain.push(format!("requires {dep}"));
            chain.push(names[j].to_string());
            at = j;
        }
        chains.push(chain);
    }
    chains
}

enum Align {
    Left,
    Right,
}

/// `cell` padded to `width` characters, then two spaces. By hand: `format!`
/// takes a width only up to 65,535 and panics past it, and a repo name or
/// version from metadata can be longer.
fn pad(out: &mut String, cell: &str, width: usize, align: Align) {
    let fill = " ".repeat(width.saturating_sub(cell.chars().count()));
    match align {
        Align::Left => {
            out.push_str(cell);
            out.push_str(&fill);
        }
        Align::Right => {
            out.push_str(&fill);
            out.push_str(cell);
        }
    }
    out.push_str("  ");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::package::Package;
    use crate::package::{Dep, Evr, Nevra};
    use crate::resolve::Planned;

    fn planned(name: &str, requires: &[&str], provides: &[&str], reason: Reason) -> Planned {
        Planned {
            package: Package {
                download_size: 1024,
                installed_size: 4096,
                provides: provides.iter().map(|p| Dep::any(*p)).collect(),
                requires: requires.iter().map(|r| Dep::any(*r)).collect(),
                ..Package::new(
                    Nevra::new(name, Evr::parse("1.0-1"), "x86_64"),
                    0,
                    String::new(),
                    Digest::sha256_of(name.as_bytes()),
                )
            },
            reason,
        }
    }

    fn plan() -> Plan {
        let req = |r: &str| Reason::Requested {
            request: r.to_string(),
        };
        Plan {
            choices: Default::default(),
            left_out: Vec::new(),
            packages: vec![
                planned(
                    "bash",
                    &["libtinfo.so.6()(64bit)", "glibc"],
                    &[],
                    req("bash"),
                ),
                planned(
                    "glibc",
                    &[],
                    &["libc.so.6()(64bit)"],
                    Reason::Required {
                        by: 0,
                        dep: "glibc".into(),
                    },
                ),
                planned("nginx", &["libc.so.6()(64bit)"], &[], req("nginx")),
                planned(
                    "ncurses-libs",
                    &["libc.so.6()(64bit)"],
                    &["libtinfo.so.6()(64bit)"],
                    Reason::Required {
                        by: 0,
                        dep: "libtinfo.so.6()(64bit)".into(),
                    },
                ),
            ],
        }
    }

    #[test]
    fn why_gives_the_shortest_chain_from_each_request() {
        let chains = why(&plan(), "glibc");
        assert_eq!(
            chains,
            vec![
                vec!["bash".to_string(), "requires glibc".into(), "glibc".into()],
                vec![
                    "nginx".to_string(),
                    "requires libc.so.6()(64bit)".into(),
                    "glibc".into()
                ],
            ]
        );
        assert_eq!(why(&plan(), "ncurses-libs").len(), 1);
        assert!(why(&plan(), "absent").is_empty());
    }

    #[test]
    fn table_has_reasons_and_totals() {
        let v = view(&plan(), "x86_64", &["fedora".to_string()]);
        let t = table(&v);
        assert!(t.lines().next().unwrap().starts_with("Package"), "{t}");
        assert!(
            t.contains("required by bash (libtinfo.so.6()(64bit))"),
            "{t}"
        );
        assert!(
            t.contains("4 packages for x86_64: 4.0 KiB to download, 16.0 KiB installed"),
            "{t}"
        );
        assert_eq!(v.download_size, 4096);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["packages"][0]["repo"], "fedora");
        assert!(
            !t.contains("Scriptlets"),
            "no headers read, nothing said: {t}"
        );
    }

    #[test]
    fn table_lists_scriptlets_after_the_table() {
        let mut v = view(&plan(), "x86_64", &["fedora".to_string()]);
        let pre = ScriptletView {
            kind: "%pre".into(),
            interpreter: vec!["/bin/sh".into()],
            effects: vec!["accounts, done from sysusers.d".into()],
        };
        let post = ScriptletView {
            kind: "%post".into(),
            interpreter: vec![],
            effects: vec![],
        };
        with_scriptlets(
            &mut v,
            vec![Some(vec![pre, post]), Some(vec![]), None, Some(vec![])],
        );
        let t = table(&v);
        let name = &v.packages[0].name;
        let tail: Vec<&str> = t.lines().skip(v.packages.len() + 2).collect();
        assert_eq!(tail[0], "Scriptlets not run (minibuild runs none):");
        assert_eq!(
            tail[1].split_whitespace().collect::<Vec<_>>().join(" "),
            format!("{name} %pre (accounts, done from sysusers.d), %post")
        );
        assert_eq!(
            tail[2],
            format!(
                "Scriptlets unknown (header not read): {}",
                v.packages[2].name
            )
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["packages"][0]["scriptlets"][0]["kind"], "%pre");
        assert_eq!(json["packages"][1]["scriptlets"], serde_json::json!([]));
        assert!(json["packages"][2]["scriptlets"].is_null());
    }

    /// `format!` panics on a width over 65,535; a cell that long comes from
    /// metadata (a repo name, a version) and must print as it is.
    #[test]
    fn cells_wider_than_a_format_width_are_padded_by_hand() {
        let long = "r".repeat(70_000);
        let mut v = view(&plan(), "x86_64", std::slice::from_ref(&long));
        v.packages[0].evr = "1".repeat(66_000);
        let t = table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].contains(&long) && lines[1].contains(&v.packages[0].evr));
        // Columns still line up: every row's Arch column starts at the same place.
        let arch_at = |k: usize| {
            let arch = format!("  {}  ", v.packages[k].arch);
            lines[k + 1].find(&arch).unwrap()
        };
        assert_eq!(arch_at(0), arch_at(1));
        let mut named = view(&plan(), "x86_64", &["fedora".to_string()]);
        named.packages[0].name = "n".repeat(65_536);
        with_scriptlets(
            &mut named,
            vec![
                Some(vec![ScriptletView {
                    kind: "%post".into(),
                    interpreter: vec![],
                    effects: vec![],
                }]),
                Some(vec![]),
                Some(vec![]),
                Some(vec![]),
            ],
        );
        assert!(table(&named).contains(&format!("  {}  %post", named.packages[0].name)));
    }
}
