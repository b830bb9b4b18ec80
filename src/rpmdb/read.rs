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

/// The `NAME` (tag 1000, a string) of a stored header blob, for readers
/// that need no more than that (`check`'s `forbid_packages`).
pub fn header_name(blob: &[u8]) -> Result<String, String> {
    const TAG_NAME: u32 = 1000;
    const STRING: u32 = 6;
    let header = super::installed::RawHeader::parse(blob)?;
    let entry = header
        .get(TAG_NAME)
        .filter(|e| e.kind == STRING)
        .ok_or("no NAME string tag")?;
    let bytes = entry.data.strip_suffix(&[0]).unwrap_or(&entry.data);
    String::from_utf8(bytes.to_vec()).map_err(|_| "its NAME is not UTF-8".to_string())
}

/// A stored header (no magic), as an rpmdb row holds it, of (tag, type,
/// data) entries, count 1: for the readers' tests.
#[cfg(test)]
pub(crate) fn stored_header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let (mut index, mut data) = (Vec::new(), Vec::new());
    for (tag, kind, bytes) in entries {
        for v in [*tag, *kind, data.len() as u32, 1] {
            index.extend_from_slice(&v.to_be_bytes());
        }
        data.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_name_reads_the_name_and_refuses_damage() {
        let h = stored_header(&[(1001, 6, b"1.0\0"), (1000, 6, b"bash\0")]);
        assert_eq!(header_name(&h).unwrap(), "bash");
        assert!(header_name(&h[..h.len() - 1]).is_err());
        let typed = stored_header(&[(1000, 4, &[0, 0, 0, 1])]);
        assert!(header_name(&typed).unwrap_err().contains("NAME"));
        assert!(header_name(&stored_header(&[(1001, 6, b"1.0\0")])).is_err());
    }
}
