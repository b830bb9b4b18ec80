//! The upper layer of a two-layer image: what `upper` (the whole finished
//! tree) has that `lower` (the core's finished tree) has not, or has
//! otherwise, plus OCI whiteouts (`DIR/.wh.NAME`, empty files) for what
//! `upper` removed. Extracting lower, then the result, gives `upper`'s
//! paths, contents and metadata.
//!
//! Every directory above a path the layer carries is carried too, with
//! `upper`'s metadata: a layer writer would otherwise imply it as
//! `0755 root:root`, and an extractor would apply that over the lower
//! layer's directory.

use std::io::{self, Read};

use super::staging::Staging;
use super::{Entry, Kind, Tree};

/// The prefix of an OCI whiteout file's name.
pub const WHITEOUT_PREFIX: &str = ".wh.";

/// The tree of the layer that turns `lower` into `upper`. Whiteouts are
/// empty files written to `stage`.
pub fn diff(lower: &Tree, upper: &Tree, stage: &mut Staging) -> io::Result<Tree> {
    let mut out = Tree::default();
    for (path, entry) in &upper.entries {
        let changed = match lower.entries.get(path) {
            None => true,
            Some(old) => !same(old, entry)?,
        };
        if changed {
            // A directory that became something else is removed first, with
            // what it held (a file that became a directory is simply
            // replaced, as the OCI spec's changeset rules say).
            if lower.entries.get(path).is_some_and(|old| {
                matches!(old.kind, Kind::Dir) && !matches!(entry.kind, Kind::Dir)
            }) {
                add_whiteout(&mut out, upper, path, stage)?;
            }
            add_with_parents(&mut out, upper, path, entry);
        }
    }
    for path in lower.entries.keys() {
        if upper.entries.contains_key(path) {
            continue;
        }
        // Removing a directory (or replacing it) removes what is below it:
        // one whiteout. A whiteout below what is now a symlink would be
        // resolved through the link.
        let parent_gone = ancestors(path)
            .any(|a| !matches!(upper.entries.get(a).map(|e| &e.kind), Some(Kind::Dir)));
        if !parent_gone {
            add_whiteout(&mut out, upper, path, stage)?;
        }
    }
    Ok(out)
}

/// `a/b/c` → `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        let (parent, _) = cur.rsplit_once('/')?;
        cur = parent;
        Some(parent)
    })
}

fn add_with_parents(out: &mut Tree, upper: &Tree, path: &str, entry: &Entry) {
    for a in ancestors(path) {
        if out.entries.contains_key(a) {
            break;
        }
        if let Some(dir) = upper.entries.get(a) {
            out.entries.insert(a.to_string(), dir.clone());
        }
    }
    out.entries.insert(path.to_string(), entry.clone());
}

/// `DIR/.wh.NAME` for `path`, an empty root-owned file.
fn add_whiteout(out: &mut Tree, upper: &Tree, path: &str, stage: &mut Staging) -> io::Result<()> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, path),
    };
    let wh = match dir {
        Some(d) => format!("{d}/{WHITEOUT_PREFIX}{name}"),
        None => format!("{WHITEOUT_PREFIX}{name}"),
    };
    let blob = stage.create_blob()?.finish()?;
    add_with_parents(
        out,
        upper,
        &wh,
        &Entry {
            kind: Kind::File {
                blob: blob.blob,
                size: 0,
                link_id: None,
            },
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Default::default(),
            package: None,
        },
    );
    Ok(())
}

/// Whether two entries give the same tar member (hardlink ids and the
/// owning package aside: they are not part of the extracted file).
fn same(a: &Entry, b: &Entry) -> io::Result<bool> {
    if (a.mode, a.uid, a.gid, &a.user, &a.group, a.mtime, &a.xattrs)
        != (b.mode, b.uid, b.gid, &b.user, &b.group, b.mtime, &b.xattrs)
    {
        return Ok(false);
    }
    Ok(match (&a.kind, &b.kind) {
        (Kind::Dir, Kind::Dir) | (Kind::Fifo, Kind::Fifo) => true,
        (Kind::Symlink { target: x }, Kind::Symlink { target: y }) => x == y,
        (
            Kind::File {
                blob: x, size: sx, ..
            },
            Kind::File {
                blob: y, size: sy, ..
            },
        ) => sx == sy && (x == y || same_bytes(x.open(), y.open())?),
        _ => false,
    })
}

/// Compare two readers to the end, a block at a time.
fn same_bytes(mut x: impl Read, mut y: impl Read) -> io::Result<bool> {
    let (mut bx, mut by) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut x, &mut bx)?;
        let m = read_full(&mut y, &mut by)?;
        if n != m || bx[..n] != by[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind) -> Entry {
        Entry {
            kind,
            mode: 0o755,
            user: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            mtime: 1,
            xattrs: Default::default(),
            package: Some("p".into()),
        }
    }

    fn file(stage: &mut Staging, bytes: &[u8]) -> Entry {
        let mut w = stage.create_blob().unwrap();
        std::io::Write::write_all(&mut w, bytes).unwrap();
        let b = w.finish().unwrap();
        entry(Kind::File {
            blob: b.blob,
            size: bytes.len() as u64,
            link_id: None,
        })
    }

    fn tree(entries: Vec<(&str, Entry)>) -> Tree {
        Tree {
            entries: entries
                .into_iter()
                .map(|(p, e)| (p.to_string(), e))
                .collect(),
            ..Tree::default()
        }
    }

    #[test]
    fn added_changed_and_removed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = Staging::new(dir.path()).unwrap();
        let lower = tree(vec![
            ("etc", entry(Kind::Dir)),
            ("etc/passwd", file(&mut stage, b"root:x:0:0\n")),
            ("etc/same", file(&mut stage, b"same")),
            ("opt", entry(Kind::Dir)),
            ("opt/gone", entry(Kind::Dir)),
            ("opt/gone/f", file(&mut stage, b"f")),
            ("usr", entry(Kind::Dir)),
            ("usr/bin", entry(Kind::Dir)),
            ("usr/bin/sh", file(&mut stage, b"sh")),
        ]);
        let mut app_bin = file(&mut stage, b"app");
        app_bin.package = Some("app".into());
        let upper = tree(vec![
            ("etc", entry(Kind::Dir)),
            ("etc/passwd", file(&mut stage, b"root:x:0:0\napp:x:1:1\n")),
            // Same bytes in another blob: unchanged.
            ("etc/same", file(&mut stage, b"same")),
            ("opt", entry(Kind::Dir)),
            ("usr", entry(Kind::Dir)),
            ("usr/bin", entry(Kind::Dir)),
            ("usr/bin/app", app_bin),
            ("usr/bin/sh", file(&mut stage, b"sh")),
        ]);
        let out = diff(&lower, &upper, &mut stage).unwrap();
        let paths: Vec<&str> = out.entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/passwd",
                "opt",
                "opt/.wh.gone",
                "usr",
                "usr/bin",
                "usr/bin/app"
            ]
        );
        match &out.entries["opt/.wh.gone"].kind {
            Kind::File { size, .. } => assert_eq!(*size, 0),
            k => panic!("whiteout is {k:?}"),
        }
    }

    #[test]
    fn metadata_changes_count_and_replaced_directories_white_out_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = Staging::new(dir.path()).unwrap();
        let mut setuid = file(&mut stage, b"x");
        setuid.mode = 0o4755;
        let lower = tree(vec![
            ("a", setuid),
            ("b", entry(Kind::Dir)),
            ("b/x", file(&mut stage, b"x")),
            ("c", file(&mut stage, b"c")),
        ]);
        let upper = tree(vec![
            ("a", file(&mut stage, b"x")),
            ("b", entry(Kind::Symlink { target: "a".into() })),
            ("c", entry(Kind::Dir)),
        ]);
        let out = diff(&lower, &upper, &mut stage).unwrap();
        let paths: Vec<&str> = out.entries.keys().map(String::as_str).collect();
        // No `b/.wh.x`: `b` is a symlink now, and its whiteout took `b/x`;
        // the file `c` is simply replaced by the directory.
        assert_eq!(paths, [".wh.b", "a", "b", "c"]);
        assert_eq!(out.entries["a"].mode, 0o755);
    }

    #[test]
    fn identical_trees_give_an_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = Staging::new(dir.path()).unwrap();
        let t = || tree(vec![("etc", entry(Kind::Dir))]);
        assert!(diff(&t(), &t(), &mut stage).unwrap().entries.is_empty());
    }
}
