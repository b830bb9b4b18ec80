//! The names of the packages an image records as installed, read from its
//! rpmdb (`rpmdb.sqlite`, as minibuild's `rpmdb` module and rpm ≥ 4.16
//! write it): the `Name` index rpm keeps beside the headers.

use std::io::Write as _;

use rusqlite::{Connection, OpenFlags};

use crate::check::resolve;
use crate::rootfs::{Kind, Tree};

/// Where rpm keeps the database (Fedora ≥ 36 moved it; `var/lib/rpm` is
/// then a symlink, which [`resolve`] follows inside the tree).
const RPMDB_PATHS: &[&str] = &[
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// Installed package names, sorted and deduplicated; `Err` says why the
/// image's packages cannot be known.
pub fn names(tree: &Tree) -> Result<Vec<String>, String> {
    let Some((path, blob)) = RPMDB_PATHS.iter().find_map(|p| {
        let real = resolve(tree, p)?;
        match &tree.entries.get(&real)?.kind {
            Kind::File { blob, .. } => Some((real, blob.clone())),
            _ => None,
        }
    }) else {
        return Err(format!(
            "the image records no installed packages (no /{} or /{}; built with rpmdb = false, or not by an rpm-based tool)",
            RPMDB_PATHS[0], RPMDB_PATHS[1]
        ));
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        format!("/{path} cannot be read as an rpm sqlite database: {e}")
    };
    // SQLite reads files, not streams: copy the database out of the staging pack.
    let mut file = tempfile::NamedTempFile::new().map_err(|e| unreadable(&e))?;
    let bytes = blob.read_to_vec().map_err(|e| unreadable(&e))?;
    file.write_all(&bytes).map_err(|e| unreadable(&e))?;
    let conn = Connection::open_with_flags(
        file.path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| unreadable(&e))?;
    let mut stmt = conn
        .prepare("SELECT DISTINCT key FROM Name ORDER BY key")
        .map_err(|e| unreadable(&e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| unreadable(&e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_tree::TestTree;

    #[test]
    fn reads_names_through_the_var_lib_rpm_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL);
             INSERT INTO Name VALUES ('bash', 1, 0), ('glibc', 2, 0), ('bash', 3, 0);",
        )
        .unwrap();
        drop(conn);
        let mut t = TestTree::new();
        t.file(
            "usr/lib/sysimage/rpm/rpmdb.sqlite",
            0o644,
            &std::fs::read(&db).unwrap(),
        );
        t.symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm");
        assert_eq!(names(&t.tree).unwrap(), ["bash", "glibc"]);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let mut t = TestTree::new();
        t.file("var/lib/rpm/rpmdb.sqlite", 0o644, b"not a database");
        let err = names(&t.tree).unwrap_err();
        assert!(err.contains("/var/lib/rpm/rpmdb.sqlite"), "{err}");
    }
}
