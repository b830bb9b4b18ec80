//! Placing paths in the [`Tree`]: lexical normalization, symlinked parents
//! resolved through the tree itself, implied directories, and the merge
//! rules when two packages ship the same path.
//!
//! Resolution works like the kernel's path walk with the tree as the
//! filesystem and the image root as `/`: every parent component is looked
//! up; a symlink is replaced by its target (absolute targets restart at the
//! image root, `..` stops at the root), up to [`MAX_SYMLINKS`] expansions.
//! The final component is never followed, as with `lstat`. Since lookups
//! only touch the in-memory map, no host path is ever consulted.

use std::collections::VecDeque;

use super::staging::Staging;
use super::{Entry, Kind, Tree};

/// Symlink expansions allowed while resolving one path (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: u32 = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("resolving `{path}` expanded more than {MAX_SYMLINKS} symlinks (a symlink loop?)")]
    SymlinkLoop { path: String },
    #[error(
        "`{path}` needs `{parent}` to be a directory, but it is a {kind} installed by {owner}"
    )]
    NotADirectory {
        path: String,
        parent: String,
        kind: &'static str,
        owner: String,
    },
    #[error("`{path}` names the image root itself")]
    Root { path: String },
    #[error(
        "file conflict: `/{path}` from {new} conflicts with the {existing_kind} installed by {existing} ({why})\n  \
         hint: exclude one of the packages, or leave the path out of the image with \
         `exclude_paths = [\"/{path}\"]` in [options]"
    )]
    Conflict {
        path: String,
        existing: String,
        existing_kind: &'static str,
        new: String,
        why: &'static str,
    },
}

/// What [`Tree::insert`] did with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The path was new, or the new entry replaced an implied directory or
    /// an earlier entry of the same package.
    Placed,
    /// An identical entry was already there (same file content, same
    /// symlink target, or a directory with the same owner and mode).
    Identical,
    /// A directory whose metadata differs from the one already installed by
    /// another package: the first package's metadata is kept (rpm, too,
    /// never changes a directory already on disk).
    KeptExistingDir,
    /// A directory where a symlink already is: the symlink is kept, as rpm
    /// does when e.g. `filesystem` made `lib64 → usr/lib64`.
    KeptSymlink,
}

/// Lexical normalization inside the root: `.` and empty parts dropped, `..`
/// pops but never above the root, so a leading `/` or `./` vanishes.
pub fn normalize(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Dir => "directory",
        Kind::File { .. } => "file",
        Kind::Symlink { .. } => "symlink",
        Kind::Fifo => "fifo",
    }
}

fn owner_name(entry: &Entry) -> String {
    match &entry.package {
        Some(p) => format!("package {p}"),
        None => "minibuild (implied directory)".to_string(),
    }
}

impl Tree {
    /// The image path a payload path lands on: normalized, with symlinked
    /// parent directories followed through the tree. The final component is
    /// not followed.
    pub fn resolve(&self, raw: &str) -> Result<String, TreeError> {
        let parts = normalize(raw);
        let Some((last, parents)) = parts.split_last() else {
            return Err(TreeError::Root {
                path: raw.to_string(),
            });
        };
        let mut queue: VecDeque<String> = parents.iter().map(|p| p.to_string()).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = queue.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            cur.push(part);
            let key = cur.join("/");
            let Some(entry) = self.entries.get(&key) else {
                continue;
            };
            match &entry.kind {
                Kind::Dir => {}
                Kind::Symlink { target } => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(TreeError::SymlinkLoop {
                            path: raw.to_string(),
                        });
                    }
                    cur.pop();
                    if target.starts_with('/') {
                        // Absolute targets are relative to the image root.
                        cur.clear();
                    }
                    for t in target.split('/').rev() {
                        queue.push_front(t.to_string());
                    }
                }
                other => {
                    return Err(TreeError::NotADirectory {
                        path: raw.to_string(),
                        parent: key,
                        kind: kind_name(other),
                        owner: owner_name(entry),
                    })
                }
            }
        }
        cur.push(last.to_string());
        Ok(cur.join("/"))
    }

    /// The entry a path finally names, following symlinks in the final
    /// component too (like `stat`), all inside the image root. `None` when
    /// the path (or a symlink's target) does not exist.
    pub fn follow(&self, raw: &str) -> Option<(String, &Entry)> {
        let mut path = self.resolve(raw).ok()?;
        for _ in 0..MAX_SYMLINKS {
            let entry = self.entries.get(&path)?;
            let Kind::Symlink { target } = &entry.kind else {
                return Some((path, entry));
            };
            let next = if target.starts_with('/') {
                target.clone()
            } else {
                match path.rsplit_once('/') {
                    Some((parent, _)) => format!("{parent}/{target}"),
                    None => target.clone(),
                }
            };
            if normalize(&next).is_empty() {
                // A symlink to the root: only a directory lookup can use it.
                return None;
            }
            path = self.resolve(&next).ok()?;
        }
        None
    }

    /// The names directly inside the image directory `dir` (a resolved
    /// path), in sorted order.
    pub fn children<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        let prefix = format!("{dir}/");
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter_map(move |(k, e)| {
                let name = &k[dir.len() + 1..];
                (!name.contains('/')).then_some((name, e))
            })
    }

    /// Create the missing parents of an already resolved `path` as
    /// directories (0755 root:root, no package). Every existing parent is a
    /// directory, as [`Tree::resolve`] guarantees.
    pub fn ensure_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            let parent = &path[..end];
            if !self.entries.contains_key(parent) {
                self.entries.insert(parent.to_string(), implied_dir());
            }
            end += 1;
        }
    }

    /// Insert `entry` at the resolved image path `path`, merging with what
    /// is there. `who` names the new entry's package (NEVRA) for errors.
    pub fn insert(
        &mut self,
        path: String,
        entry: Entry,
        staging: &Staging,
        who: &str,
    ) -> Result<Inserted, TreeError> {
        self.ensure_parents(&path);
        let Some(existing) = self.entries.get(&path) else {
            self.entries.insert(path, entry);
            return Ok(Inserted::Placed);
        };
        let same_package = existing.package.is_some() && existing.package == entry.package;
        let conflict = |why| TreeError::Conflict {
            path: path.clone(),
            existing: owner_name(existing),
            existing_kind: kind_name(&existing.kind),
            new: who.to_string(),
            why,
        };
        let outcome = match (&existing.kind, &entry.kind) {
            (Kind::Dir, Kind::Dir) => {
                if existing.package.is_none() || same_package {
                    Inserted::Placed
                } else if (existing.mode, &existing.user, &existing.group)
                    == (entry.mode, &entry.user, &entry.group)
                {
                    Inserted::Identical
                } else {
                    Inserted::KeptExistingDir
                }
            }
            (Kind::Symlink { .. }, Kind::Dir) => Inserted::KeptSymlink,
            (Kind::Symlink { target: a }, Kind::Symlink { target: b }) => {
                if a == b {
                    Inserted::Identical
                } else if same_package {
                    Inserted::Placed
                } else {
                    return Err(conflict("different symlink targets"));
                }
            }
            (
                Kind::File {
                    blob: a, size: sa, ..
                },
                Kind::File {
                    blob: b, size: sb, ..
                },
            ) => {
                let same = sa == sb
                    && staging.digest(a).is_some()
                    && staging.digest(a) == staging.digest(b);
                if same {
                    Inserted::Identical
                } else if same_package {
                    Inserted::Placed
                } else {
                    return Err(conflict("different content"));
                }
            }
            (Kind::Fifo, Kind::Fifo) => Inserted::Identical,
            _ => return Err(conflict("different file types")),
        };
        let shared = matches!(outcome, Inserted::Identical | Inserted::KeptExistingDir);
        if shared && !same_package {
            if let Some(p) = entry.package {
                self.co_owners.entry(path).or_default().insert(p);
                return Ok(outcome);
            }
        }
        if outcome == Inserted::Placed {
            self.entries.insert(path, entry);
        }
        Ok(outcome)
    }
}

/// A directory minibuild creates because a path needs it: 0755 root:root.
pub fn implied_dir() -> Entry {
    Entry {
        kind: Kind::Dir,
        mode: 0o755,
        user: "root".to_string(),
        group: "root".to_string(),
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: Default::default(),
        package: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symlink(target: &str, pkg: &str) -> Entry {
        Entry {
            kind: Kind::Symlink {
                target: target.to_string(),
            },
            mode: 0o777,
            package: Some(pkg.to_string()),
            ..implied_dir()
        }
    }

    fn tree_with(links: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, target) in links {
            tree.entries
                .insert(path.to_string(), symlink(target, "filesystem"));
        }
        tree
    }

    #[test]
    fn normalize_stays_inside_root() {
        assert_eq!(normalize("./usr//bin/./x"), ["usr", "bin", "x"]);
        assert_eq!(normalize("/../../etc/passwd"), ["etc", "passwd"]);
        assert_eq!(normalize("a/../../b"), ["b"]);
        assert!(normalize("/..").is_empty());
    }

    #[test]
    fn resolve_follows_parent_symlinks_inside_root() {
        let tree = tree_with(&[
            ("lib64", "usr/lib64"),
            ("etc", "/"),
            ("up", "../../.."),
            ("usr/abs", "/opt/x"),
        ]);
        assert_eq!(
            tree.resolve("/lib64/libc.so.6").unwrap(),
            "usr/lib64/libc.so.6"
        );
        assert_eq!(tree.resolve("/etc/passwd").unwrap(), "passwd");
        assert_eq!(tree.resolve("/up/up/etc/shadow").unwrap(), "shadow");
        assert_eq!(tree.resolve("usr/abs/y").unwrap(), "opt/x/y");
        // The final component is not followed.
        assert_eq!(tree.resolve("/lib64").unwrap(), "lib64");
        assert!(matches!(tree.resolve("/"), Err(TreeError::Root { .. })));
    }

    #[test]
    fn resolve_stops_symlink_loops() {
        let tree = tree_with(&[("a", "b"), ("b", "a")]);
        assert_eq!(
            tree.resolve("a/x"),
            Err(TreeError::SymlinkLoop {
                path: "a/x".to_string()
            })
        );
    }

    #[test]
    fn insert_creates_implied_parents_and_merges_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut tree = Tree::default();
        let mut dir = Entry {
            mode: 0o700,
            package: Some("a".into()),
            ..implied_dir()
        };
        let path = tree.resolve("/var/lib/a").unwrap();
        assert_eq!(
            tree.insert(path, dir.clone(), &staging, "a-1-1.x86_64"),
            Ok(Inserted::Placed)
        );
        assert_eq!(tree.entries["var"], implied_dir());
        assert_eq!(tree.entries["var/lib"], implied_dir());
        // A package's own entry replaces an implied directory.
        let var = Entry {
            package: Some("filesystem".into()),
            ..implied_dir()
        };
        assert_eq!(
            tree.insert("var".into(), var.clone(), &staging, "filesystem"),
            Ok(Inserted::Placed)
        );
        assert_eq!(tree.entries["var"], var);
        // Another package with other metadata: the first one's stays.
        dir.mode = 0o755;
        dir.package = Some("b".into());
        assert_eq!(
            tree.insert("var/lib/a".into(), dir, &staging, "b-1-1.x86_64"),
            Ok(Inserted::KeptExistingDir)
        );
        assert_eq!(tree.entries["var/lib/a"].mode, 0o700);
    }

    #[test]
    fn insert_rejects_type_and_target_conflicts() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let mut tree = tree_with(&[("bin", "usr/bin")]);
        let err = tree
            .insert(
                "bin".into(),
                symlink("sbin", "other"),
                &staging,
                "other-1-1.noarch",
            )
            .unwrap_err();
        assert!(
            matches!(&err, TreeError::Conflict { path, existing, new, .. }
                if path == "bin" && existing == "package filesystem" && new == "other-1-1.noarch"),
            "{err:?}"
        );
        let same = tree.insert("bin".into(), symlink("usr/bin", "other"), &staging, "other");
        assert_eq!(same, Ok(Inserted::Identical));
    }
}
