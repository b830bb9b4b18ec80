//! The crate's module graph is acyclic (issue 16): the source reads as the pipeline,
//! each stage depending only on the ones below it.
//!
//! A cycle between two modules means neither can be understood, tested or moved
//! into its own crate without the other. This test reads `src/` the way a reviewer
//! would: a module `a` depends on `b` when non-test code in `a` names `crate::b`.
//! It checks the top-level modules and, inside every folder module, its children
//! (a child naming `super::sibling` or `crate::folder::sibling`). A folder's own
//! `mod.rs` is the facade of its children and is left out of its children's graph.
//! Test code (`#[cfg(test)]` items and test-only files) is ignored: tests may
//! reach across the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → the modules it names, for one level of the tree.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = level_graph(&src, "crate::");
    assert!(
        graph.len() > 10,
        "read only {} modules from {}",
        graph.len(),
        src.display()
    );
    if let Some(message) = cycles_in("src/", &graph) {
        panic!("{message}{HINT}");
    }
}

const HINT: &str = "hint: move the shared type down into the lower module, or pass plain data";

#[test]
fn folder_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut folders = 0;
    let mut messages = String::new();
    for folder in folders_under(&src) {
        let rel = folder.strip_prefix(&src).unwrap();
        let prefix = format!("crate::{}::", rel.to_str().unwrap().replace('/', "::"));
        let graph = level_graph(&folder, &prefix);
        if let Some(message) = cycles_in(&format!("src/{}/", rel.display()), &graph) {
            messages.push_str(&message);
        }
        folders += 1;
    }
    assert!(folders > 3, "found only {folders} folder modules");
    assert!(messages.is_empty(), "{messages}{HINT}");
}

/// The graph spanned by the modules directly in `dir` (files `x.rs` and folders `x/`).
/// `prefix` is how code elsewhere spells this level (`crate::` or `crate::rootfs::`);
/// children of a folder also spell their siblings `super::`.
fn level_graph(dir: &Path, prefix: &str) -> Graph {
    let test_only = test_only_modules(dir);
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = match path.file_stem().and_then(|s| s.to_str()) {
            Some(name) => name.to_string(),
            None => continue,
        };
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if !is_module || ["mod", "lib", "main"].contains(&name.as_str()) {
            continue;
        }
        if test_only.contains(&name) {
            continue;
        }
        modules.entry(name).or_insert_with(Vec::new).push(path);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = Graph::new();
    for (name, paths) in &modules {
        let mut edges = BTreeSet::new();
        for path in paths {
            for file in rust_files(path) {
                let text = non_test_code(&std::fs::read_to_string(&file).unwrap());
                for target in named_modules(&text, prefix) {
                    edges.insert(target);
                }
                // `super::x` from a direct child names a sibling at this level.
                if file.parent() == Some(dir) && prefix != "crate::" {
                    edges.extend(named_modules(&text, "super::"));
                }
            }
        }
        edges.retain(|t| t != name && names.contains(t));
        graph.insert(name.clone(), edges);
    }
    graph
}

/// Modules of `dir` declared `#[cfg(test)] mod x;` in its mod.rs/lib.rs.
fn test_only_modules(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for facade in ["mod.rs", "lib.rs"] {
        let Ok(text) = std::fs::read_to_string(dir.join(facade)) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]" {
                let decl = pair[1]
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

fn folders_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(folders_under(&path));
            out.push(path);
        }
    }
    out.sort();
    out
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let test_only = test_only_modules(path);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if test_only.contains(stem) {
            continue;
        }
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            out.extend(rust_files(&p));
        }
    }
    out
}

/// The text with every `#[cfg(test)]` item removed (a `mod x;` line, or a braced
/// item up to its matching brace), and comment lines: a doc link is not a
/// dependency.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().filter(|l| !l.trim_start().starts_with("//"));
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        for item in lines.by_ref() {
            for c in item.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && item.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    out
}

/// Names that follow `prefix` in paths: `prefix` `name` `::`, and the names in a
/// grouped import `prefix{a, b::c, self}`.
fn named_modules(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        // Skip matches inside a longer path (`xcrate::`, `a::super::`).
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                if is_ident(head) {
                    out.insert(head.to_string());
                }
            }
            continue;
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if is_ident(&ident) {
            out.insert(ident);
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s != "self"
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every cycle (each strongly connected component with more than one module) and,
/// for each, the edges that close it; `None` when the graph is acyclic.
fn cycles_in(level: &str, graph: &Graph) -> Option<String> {
    let cycles: Vec<Vec<String>> = strongly_connected(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    if cycles.is_empty() {
        return None;
    }
    let mut message = format!("module cycles in {level}:\n");
    for cycle in &cycles {
        message.push_str(&format!("  {{{}}}\n", cycle.join(", ")));
        for a in cycle {
            for b in &graph[a] {
                if cycle.contains(b) {
                    message.push_str(&format!("    {a} -> {b}\n"));
                }
            }
        }
    }
    Some(message)
}

/// Tarjan's algorithm; components come out in reverse topological order.
fn strongly_connected(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn the_checker_finds_a_cycle_and_ignores_test_code() {
    let code = "use crate::b::X;\n/// See [`crate::d::Z`].\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::c::Y;\n}\n";
    let text = non_test_code(code);
    assert_eq!(
        named_modules(&text, "crate::"),
        BTreeSet::from(["b".to_string()])
    );
    let grouped = named_modules("use crate::{a::X, b, self};", "crate::");
    assert_eq!(grouped, BTreeSet::from(["a".to_string(), "b".to_string()]));
    let graph: Graph = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let cycles: Vec<_> = strongly_connected(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    assert_eq!(
        cycles,
        vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]
    );
    let message = cycles_in("t/", &graph).expect("a cycle");
    assert!(
        message.contains("a -> b") && !message.contains("d ->"),
        "{message}"
    );
}
