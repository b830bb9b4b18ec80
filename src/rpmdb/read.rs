//! Reading an image's rpm database back: the header blobs of
//! `Packages`, in install order (header instance order), from an sqlite
//! rpmdb (what minibuild writes, and rpm ≥ 4.16 by default) or a Berkeley
//! DB `Packages` file (rpm < 4.16: RHEL/UBI 8, CentOS 7/8, read by
//! [`super::bdb`]). Used by `minibuild diff`, the check gates and a build
//! on a published base image; the blobs are parsed by the callers.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use rusqlite::{Connection, OpenFlags};

use crate::rootfs::{Kind, Tree};

/// Where an image's sqlite rpmdb may be, in the order looked at (symlinks
/// followed: Fedora's `var/lib/rpm` points at `usr/lib/sysimage/rpm`).
pub const SQLITE_PATHS: &[&str] = &[super::DB_PATH, "usr/lib/sysimage/rpm/rpmdb.sqlite"];

/// Where an image's Berkeley DB rpmdb may be, looked at after
/// [`SQLITE_PATHS`].
pub const BDB_PATHS: &[&str] = &["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages"];

/// Databases rpm wrote in formats this reader does not take: (file, name).
const UNSUPPORTED: &[(&str, &str)] = &[("Packages.db", "ndb (rpm's native format, SUSE)")];

/// The regular file at `path` in the tree (symlinks followed), if any.
fn file_in_tree<'t>(tree: &'t Tree, path: &str) -> Option<(String, &'t crate::rootfs::BlobRef)> {
    let at = tree.resolve(path).ok()?;
    match &tree.entries.get(&at)?.kind {
        Kind::File { blob, .. } => Some((at, blob)),
        _ => None,
    }
}

/// The image path and header blobs of the tree's rpmdb (sqlite first,
/// then Berkeley DB), or `None` when it has neither.
pub fn in_tree(tree: &Tree) -> anyhow::Result<Option<(String, Vec<Vec<u8>>)>> {
    if let Some((path, blob)) = SQLITE_PATHS.iter().find_map(|p| file_in_tree(tree, p)) {
        // sqlite reads files, not byte ranges: copy it out.
        let mut tmp = tempfile::NamedTempFile::new()?;
        std::io::copy(&mut blob.open(), &mut tmp)?;
        tmp.flush()?;
        let blobs = blobs(tmp.path(), &path)?;
        return Ok(Some((path, blobs)));
    }
    if let Some((path, blob)) = BDB_PATHS.iter().find_map(|p| file_in_tree(tree, p)) {
        let mut bytes = Vec::new();
        blob.open()
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read /{path}"))?;
        let blobs = bdb_blobs(&bytes, &path)?;
        return Ok(Some((path, blobs)));
    }
    Ok(None)
}

/// The header blobs of the Berkeley DB `Packages` file `bytes` (shown as
/// `/shown` in errors), in header instance order.
pub fn bdb_blobs(bytes: &[u8], shown: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let records = super::bdb::blobs(bytes).map_err(|e| anyhow!("/{shown} (Berkeley DB): {e}"))?;
    Ok(records.into_iter().map(|(_, blob)| blob).collect())
}

/// [`in_tree`], or an error naming a database in a format it does not
/// read, or saying there is none.
pub fn required_in_tree(tree: &Tree, what: &str) -> anyhow::Result<(String, Vec<Vec<u8>>)> {
    if let Some(found) = in_tree(tree)? {
        return Ok(found);
    }
    for dir in ["var/lib/rpm", "usr/lib/sysimage/rpm"] {
        for (file, format) in UNSUPPORTED {
            let Ok(at) = tree.resolve(&format!("{dir}/{file}")) else {
                continue;
            };
            if tree.entries.contains_key(&at) {
                bail!(
                    "{what} has an rpm database in {format} format (/{at}), which minibuild does not read; only rpmdb.sqlite (rpm ≥ 4.16) and Berkeley DB Packages (rpm < 4.16) are supported\n  hint: use a base built with another rpm (RHEL/UBI 8 or 9, Fedora), or convert it with `rpmdb --rebuilddb` on an rpm ≥ 4.16 that writes sqlite"
                );
            }
        }
    }
    bail!(
        "{what} has no rpm database (looked for /{}, /{})\n  hint: a base image must contain an rpm database; minibuild images built with `rpmdb = false` cannot be bases",
        SQLITE_PATHS.join(", /"),
        BDB_PATHS.join(", /")
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

    use crate::image::test_tree::TestTree;

    /// db_load's Berkeley DB file of 5 records (see `testdata/make-bdb.sh`).
    const BDB: &[u8] = include_bytes!("testdata/packages-le-512");

    #[test]
    fn a_berkeley_db_packages_is_read_where_rpm_keeps_it() {
        for dir in ["var/lib/rpm", "usr/lib/sysimage/rpm"] {
            let mut t = TestTree::new();
            t.file(&format!("{dir}/Packages"), 0o644, BDB);
            let (path, blobs) = in_tree(&t.tree).unwrap().unwrap();
            assert_eq!(path, format!("{dir}/Packages"));
            let lens: Vec<usize> = blobs.iter().map(Vec::len).collect();
            assert_eq!(lens, [100, 700, 3000, 10, 2000]);
            assert_eq!(required_in_tree(&t.tree, "the base").unwrap().1, blobs);
        }
    }

    #[test]
    fn a_damaged_berkeley_db_is_an_error_naming_it() {
        let mut t = TestTree::new();
        t.file("var/lib/rpm/Packages", 0o644, &BDB[..BDB.len() - 512]);
        let err = format!("{:#}", in_tree(&t.tree).unwrap_err());
        assert!(
            err.contains("/var/lib/rpm/Packages (Berkeley DB): page 15"),
            "{err}"
        );
        assert!(err.contains("past the end of the file"), "{err}");
    }

    #[test]
    fn ndb_is_refused_and_no_database_lists_every_path() {
        let mut t = TestTree::new();
        t.file("var/lib/rpm/Packages.db", 0o644, b"ndb");
        let err = required_in_tree(&t.tree, "the base")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ndb"), "{err}");
        let empty = TestTree::new();
        let err = required_in_tree(&empty.tree, "the base")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/var/lib/rpm/rpmdb.sqlite"), "{err}");
        assert!(err.contains("/var/lib/rpm/Packages"), "{err}");
    }

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
