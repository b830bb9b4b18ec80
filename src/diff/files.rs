//! File changes between two image trees: paths added, removed, or changed
//! in type, content (sha256 of the bytes), symlink target, mode, owner or
//! xattrs. mtimes are not compared: a rebuild with another
//! SOURCE_DATE_EPOCH touches every file, and the layer digests show it.

use std::io;

use serde::Serialize;

use crate::digest::{Algorithm, Digest};
use crate::rootfs::{Entry, Kind, Tree};

/// A path present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// With a leading `/`.
    pub path: String,
    /// `file`, `dir`, `symlink` or `fifo`.
    pub kind: &'static str,
    /// Bytes of a regular file, 0 otherwise.
    pub size: u64,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A path on both sides that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub old_size: u64,
    pub new_size: u64,
    pub size_delta: i64,
    /// The regular file's bytes differ (by sha256).
    pub content: bool,
    /// `[A, B]` for what changed; absent when equal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<[String; 2]>,
    pub xattrs: bool,
}

impl FileChange {
    /// What changed, in words, for the plain report.
    pub fn what(&self) -> Vec<String> {
        let mut out = Vec::new();
        let pair = |name: &str, p: &Option<[String; 2]>| {
            p.as_ref().map(|[a, b]| format!("{name} {a} → {b}"))
        };
        out.extend(pair("type", &self.kind));
        if self.content {
            out.push("content".into());
        }
        out.extend(pair("target", &self.target));
        out.extend(pair("mode", &self.mode));
        out.extend(pair("owner", &self.owner));
        if self.xattrs {
            out.push("xattrs".into());
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub added: Vec<FileEntry>,
    pub removed: Vec<FileEntry>,
    pub changed: Vec<FileChange>,
}

impl FileDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Dir => "dir",
        Kind::File { .. } => "file",
        Kind::Symlink { .. } => "symlink",
        Kind::Fifo => "fifo",
    }
}

fn size(e: &Entry) -> u64 {
    match e.kind {
        Kind::File { size, .. } => size,
        _ => 0,
    }
}

fn owner(e: &Entry) -> String {
    if e.user.is_empty() && e.group.is_empty() {
        format!("{}:{}", e.uid, e.gid)
    } else {
        format!("{}:{} ({}:{})", e.user, e.group, e.uid, e.gid)
    }
}

fn entry(path: &str, e: &Entry) -> FileEntry {
    FileEntry {
        path: format!("/{path}"),
        kind: kind_name(&e.kind),
        size: size(e),
        target: match &e.kind {
            Kind::Symlink { target } => Some(target.clone()),
            _ => None,
        },
    }
}

fn differ<T: PartialEq>(a: T, b: T, show: impl Fn(&T) -> String) -> Option<[String; 2]> {
    (a != b).then(|| [show(&a), show(&b)])
}

/// Whether two regular files' bytes differ: sizes first, then sha256.
fn content_differs(a: &Kind, b: &Kind) -> io::Result<bool> {
    let (
        Kind::File {
            blob: x, size: sx, ..
        },
        Kind::File {
            blob: y, size: sy, ..
        },
    ) = (a, b)
    else {
        return Ok(false);
    };
    if sx != sy {
        return Ok(true);
    }
    let hash = |blob: &crate::rootfs::BlobRef| Digest::of_reader(Algorithm::Sha256, blob.open());
    Ok(hash(x)? != hash(y)?)
}

/// Compare two trees path by path.
pub fn compare(old: &Tree, new: &Tree) -> io::Result<FileDiff> {
    let mut d = FileDiff::default();
    for (path, a) in &old.entries {
        let Some(b) = new.entries.get(path) else {
            d.removed.push(entry(path, a));
            continue;
        };
        let target = |k: &Kind| match k {
            Kind::Symlink { target } => target.clone(),
            _ => String::new(),
        };
        let c = FileChange {
            path: format!("/{path}"),
            old_size: size(a),
            new_size: size(b),
            size_delta: size(b) as i64 - size(a) as i64,
            content: content_differs(&a.kind, &b.kind)?,
            kind: differ(kind_name(&a.kind), kind_name(&b.kind), |k| k.to_string()),
            target: differ(target(&a.kind), target(&b.kind), String::clone).filter(|_| {
                matches!(
                    (&a.kind, &b.kind),
                    (Kind::Symlink { .. }, Kind::Symlink { .. })
                )
            }),
            mode: differ(a.mode, b.mode, |m| format!("{m:04o}")),
            owner: differ(owner(a), owner(b), String::clone),
            xattrs: a.xattrs != b.xattrs,
        };
        if !c.what().is_empty() {
            d.changed.push(c);
        }
    }
    for (path, b) in &new.entries {
        if !old.entries.contains_key(path) {
            d.added.push(entry(path, b));
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_tree::TestTree;

    #[test]
    fn added_removed_and_each_kind_of_change() {
        let mut a = TestTree::new();
        a.dir("etc", 0o755);
        a.file("etc/same", 0o644, b"same\n");
        a.file("etc/content", 0o644, b"aaaa");
        a.file("etc/grown", 0o644, b"a");
        a.file("etc/mode", 0o644, b"m");
        a.file("etc/gone", 0o644, b"bye");
        a.symlink("etc/link", "same");
        let mut b = TestTree::new();
        b.dir("etc", 0o755);
        b.file("etc/same", 0o644, b"same\n");
        b.file("etc/content", 0o644, b"bbbb");
        b.file("etc/grown", 0o644, b"abc");
        b.file("etc/mode", 0o755, b"m");
        b.file("etc/new", 0o644, b"hello");
        b.symlink("etc/link", "content");
        b.tree.entries.get_mut("etc/same").unwrap().mtime += 100;

        let d = compare(&a.tree, &b.tree).unwrap();
        assert_eq!(
            d.added,
            [FileEntry {
                path: "/etc/new".into(),
                kind: "file",
                size: 5,
                target: None
            }]
        );
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].path, "/etc/gone");
        let changed: Vec<(&str, i64, Vec<String>)> = d
            .changed
            .iter()
            .map(|c| (c.path.as_str(), c.size_delta, c.what()))
            .collect();
        assert_eq!(
            changed,
            [
                ("/etc/content", 0, vec!["content".to_string()]),
                ("/etc/grown", 2, vec!["content".to_string()]),
                ("/etc/link", 0, vec!["target same → content".to_string()]),
                ("/etc/mode", 0, vec!["mode 0644 → 0755".to_string()]),
            ]
        );
        assert!(compare(&a.tree, &a.tree).unwrap().is_empty());
    }

    #[test]
    fn owner_and_type_changes() {
        let mut a = TestTree::new();
        a.file("x", 0o644, b"x");
        a.file("y", 0o644, b"y");
        let mut b = TestTree::new();
        b.file("x", 0o644, b"x");
        b.symlink("y", "x");
        b.symlink("z", "x");
        let e = b.tree.entries.get_mut("x").unwrap();
        (e.uid, e.gid, e.user, e.group) = (1000, 1000, "app".into(), "app".into());
        let d = compare(&a.tree, &b.tree).unwrap();
        assert_eq!(d.changed.len(), 2);
        assert_eq!(
            (d.added[0].kind, d.added[0].target.as_deref()),
            ("symlink", Some("x"))
        );
        assert!(
            d.changed[0].what()[0].starts_with("owner "),
            "{:?}",
            d.changed[0]
        );
        assert!(d.changed[0].what()[0].ends_with("→ app:app (1000:1000)"));
        // TestTree's symlinks are 0777, as every symlink is.
        assert_eq!(
            d.changed[1].what(),
            ["type file → symlink", "mode 0644 → 0777"]
        );
        assert_eq!(d.changed[1].size_delta, -1);
    }
}
