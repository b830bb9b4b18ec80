//! Placing one path in the tree the way a scriptlet command would (`ln -sf`,
//! `mkdir -p`) and `test`'s file operators against it: shared by the links,
//! alternatives and crypto-policies passes.

use crate::rootfs::tree::{implied_dir, TreeError};
use crate::rootfs::{Entry, Kind, Tree};

/// What placing one path did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Created,
    /// Already there as asked.
    Present,
}

/// Make `path` a symlink to `target` (replacing a file or symlink there,
/// like `ln -sf`; a directory is never replaced). Returns the image path.
pub fn put_symlink(
    tree: &mut Tree,
    path: &str,
    target: &str,
    mtime: u64,
) -> Result<(String, Placed), String> {
    let at = tree.resolve(path).map_err(|e| tree_msg(path, e))?;
    match tree.entries.get(&at).map(|e| &e.kind) {
        Some(Kind::Symlink { target: t }) if t == target => return Ok((at, Placed::Present)),
        Some(Kind::Dir) => return Err(format!("/{at} is a directory")),
        _ => {}
    }
    tree.ensure_parents(&at);
    tree.entries.insert(
        at.clone(),
        Entry {
            kind: Kind::Symlink {
                target: target.to_string(),
            },
            mode: 0o777,
            mtime,
            ..implied_dir()
        },
    );
    Ok((at, Placed::Created))
}

/// Make `path` and its parents directories (`mkdir -p`), `mode` for the
/// last one.
pub fn put_dir(
    tree: &mut Tree,
    path: &str,
    mode: u32,
    mtime: u64,
) -> Result<(String, Placed), String> {
    let at = tree.resolve(path).map_err(|e| tree_msg(path, e))?;
    if let Some((_, e)) = tree.follow(path) {
        return match e.kind {
            Kind::Dir => Ok((at, Placed::Present)),
            _ => Err(format!("/{at} exists and is not a directory")),
        };
    }
    if tree.entries.contains_key(&at) {
        // A dangling symlink: mkdir fails on it too.
        return Err(format!("/{at} is a dangling symlink"));
    }
    tree.ensure_parents(&at);
    tree.entries.insert(
        at.clone(),
        Entry {
            mode,
            mtime,
            ..implied_dir()
        },
    );
    Ok((at, Placed::Created))
}

pub(super) fn tree_msg(path: &str, e: TreeError) -> String {
    format!("cannot place {path}: {e}")
}

/// `test` file operators against the tree.
pub fn file_test(tree: &Tree, op: &str, path: &str) -> Option<bool> {
    if !path.starts_with('/') {
        // Relative to the scriptlet's working directory (/), as rpm runs it.
        return file_test(tree, op, &format!("/{path}"));
    }
    let lexical = tree.resolve(path).ok();
    let followed = tree.follow(path).map(|(_, e)| e.kind.clone());
    Some(match op {
        // Scriptlets run as root: what exists is readable and writable.
        "-e" | "-r" | "-w" => followed.is_some(),
        "lstat" => lexical.is_some_and(|p| tree.entries.contains_key(&p)),
        "-f" => matches!(followed, Some(Kind::File { .. })),
        "-d" => matches!(followed, Some(Kind::Dir)),
        "-L" | "-h" => lexical
            .and_then(|p| tree.entries.get(&p))
            .is_some_and(|e| matches!(e.kind, Kind::Symlink { .. })),
        "-s" => matches!(followed, Some(Kind::File { size, .. }) if size > 0),
        "-x" => tree
            .follow(path)
            .is_some_and(|(_, e)| e.mode & 0o111 != 0 && !matches!(e.kind, Kind::Symlink { .. })),
        _ => return None,
    })
}
