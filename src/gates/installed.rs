//! The names of the packages an image records as installed, read from its
//! rpmdb (sqlite or Berkeley DB) with the shared reader ([`crate::rpmdb::read`], as `diff`
//! and a build on a published base read it): the `NAME` of each stored
//! header.

use crate::rootfs::Tree;

/// Installed package names, sorted and deduplicated; `Err` says why the
/// image's packages cannot be known.
pub fn names(tree: &Tree) -> Result<Vec<String>, String> {
    let found = crate::rpmdb::read::in_tree(tree)
        .map_err(|e| format!("the image's rpm database cannot be read: {e:#}"))?;
    let Some((path, blobs)) = found else {
        let paths = [
            crate::rpmdb::read::SQLITE_PATHS,
            crate::rpmdb::read::BDB_PATHS,
        ]
        .concat();
        return Err(format!(
            "the image records no installed packages (no /{}; built with rpmdb = false, or not by an rpm-based tool)",
            paths.join(", /")
        ));
    };
    let mut names = blobs
        .iter()
        .enumerate()
        .map(|(i, blob)| {
            crate::rpmdb::read::header_name(blob).map_err(|e| {
                format!(
                    "/{path} cannot be read as an rpm database: package header {}: {e}",
                    i + 1
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_tree::TestTree;
    use rusqlite::Connection;

    /// A stored header (no magic) with NAME and VERSION only.
    fn header(name: &str) -> Vec<u8> {
        let name = format!("{name}\0");
        crate::rpmdb::read::stored_header(&[(1000, 6, name.as_bytes()), (1001, 6, b"1.0\0")])
    }

    #[test]
    fn reads_names_through_the_var_lib_rpm_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL);")
            .unwrap();
        for (hnum, name) in [(1, "glibc"), (2, "bash"), (3, "bash")] {
            conn.execute(
                "INSERT INTO Packages VALUES (?1, ?2)",
                rusqlite::params![hnum, header(name)],
            )
            .unwrap();
        }
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

    #[test]
    fn no_database_says_so() {
        let mut t = TestTree::new();
        t.file("etc/hello", 0o644, b"hi");
        let err = names(&t.tree).unwrap_err();
        assert!(err.contains("records no installed packages"), "{err}");
    }
}
