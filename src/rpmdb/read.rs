//! Reading an image's rpm database back: the header blobs of
//! `Packages`, in install order, from an sqlite rpmdb (what minibuild
//! writes, and rpm ≥ 4.16 by default). Used by `minibuild diff` and by a
//! build on a published base image; the blobs are parsed by the callers.

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use rusqlite::{Connection, OpenFlags};

use crate::rootfs::{Kind, Tree};

/// Where an image's sqlite rpmdb may be, in the order looked at (symlinks
/// followed: Fedora's `var/lib/rpm` points at `usr/lib/sysimage/rpm`).
pub const SQLITE_PATHS: &[&str] = &[super::DB_PATH, "usr/lib/sysimage/rpm/rpmdb.sqlite"];

/// Databases rpm wrote in formats this reader does not take: (file, name).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("Packages", "Berkeley DB (bdb, rpm < 4.16)"),
    ("Packages.db", "ndb (rpm's native format, SUSE)"),
];

/// The image path and header blobs of the tree's sqlite rpmdb, or `None`
/// when it has none.
pub fn sqlite_in_tree(tree: &Tree) -> anyhow::Result<Option<(String, Vec<Vec<u8>>)>> {
    let Some((path, blob)) = SQLITE_PATHS.iter().find_map(|p| {
        let at = tree.resolve(p).ok()?;
        match &tree.entries.get(&at)?.kind {
            Kind::File { blob, .. } => Some((at, blob)),
            _ => None,
        }
    }) else {
        return Ok(None);
    };
    // sqlite reads files, not byte ranges: copy it out.
    let mut tmp = tempfile::NamedTempFile::new()?;
    std::io::copy(&mut blob.open(), &mut tmp)?;
    tmp.flush()?;
    let blobs = blobs(tmp.path(), &path)?;
    Ok(Some((path, blobs)))
}

/// [`sqlite_in_tree`], or an error naming a database in a format it does
/// not read, or saying there is none.
pub fn required_in_tree(tree: &Tree, what: &str) -> anyhow::Result<(String, Vec<Vec<u8>>)> {
    if let Some(found) = sqlite_in_tree(tree)? {
        return Ok(found);
    }
    for dir in ["var/lib/rpm", "usr/lib/sysimage/rpm"] {
        for (file, format) in UNSUPPORTED {
            let Ok(at) = tree.resolve(&format!("{dir}/{file}")) else {
                continue;
            };
            if tree.entries.contains_key(&at) {
                bail!(
                    "{what} has an rpm database in {format} format (/{at}), which minibuild does not read; only rpmdb.sqlite (rpm ≥ 4.16) is supported\n  hint: use a base built with rpm ≥ 4.16 (RHEL/UBI 9, Fedora ≥ 33), or convert it with `rpmdb --rebuilddb` on such an rpm"
                );
            }
        }
    }
    bail!(
        "{what} has no rpm database (looked for /{})\n  hint: a base image must contain an rpm database; minibuild images built with `rpmdb = false` cannot be bases",
        SQLITE_PATHS.join(", /")
    )
}

/// The `Packages` blobs of the sqlite database file `db` (shown as
/// `/shown` in errors), in `hnum` order.
pub fn blobs(db: &Path, shown: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("/{shown} is not a sqlite database"))?;
    conn.prepare("SELECT blob FROM Packages ORDER BY hnum")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<Vec<u8>>, _>>()
        })
        .with_context(|| format!("/{shown} has no readable Packages table"))
}
