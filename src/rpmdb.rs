//! A package database scanners can read: `var/lib/rpm/rpmdb.sqlite` in
//! rpm ≥ 4.16's sqlite layout (lib/backend/sqlite.cc, lib/rpmdb.cc).
//!
//! Vulnerability scanners (trivy, grype, syft) find an image's RPMs by
//! reading this database, not by running rpm. Its layout: `Packages(hnum
//! INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`, one row per
//! package in install order, where the blob is the package's main header
//! as in the .rpm file minus the 8-byte magic, with what an install appends
//! after its immutable region ([`installed`]: signature tags, file states,
//! install time and color), so `rpm -V` verifies the image; plus one index
//! table per indexed tag, `(key, hnum, idx)`, with `key` TEXT for string
//! tags and BLOB otherwise, filled as rpm's `tag2index` does (install-only
//! requires left out, trigger names once, file triggers indexed by their
//! trigger index). Rich dependencies are indexed as written, without rpm's
//! extra rows for their parts.
//!
//! The database is built in a temporary file and copied into a staging
//! blob; the tree gets `var/lib/rpm/rpmdb.sqlite` pointing at it. This runs
//! after hardening, which removes rpm's own `var/lib/rpm`, and is given only
//! the packages still in the image (not the package manager's, which
//! hardening removed), so scanners report only what is there.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rpm::IndexTag;
use rusqlite::{params, Connection};

use crate::package::file::RpmFile;
use crate::rootfs::tree::implied_dir;
use crate::rootfs::{Entry, Kind, Staging, Tree};

pub mod bdb;
pub mod installed;
pub mod read;
pub use installed::Install;

/// Header file indices (per RPM path) that the build left out on purpose:
/// docs, other languages, `exclude_paths` (rpm's "not installed" state).
pub type NotInstalled = HashMap<PathBuf, BTreeSet<usize>>;

/// Where the database goes in the image (rpm's `%_dbpath` on RHEL/Alma/
/// Rocky; Fedora's `/usr/lib/sysimage/rpm` is reached through its symlink).
pub const DB_PATH: &str = "var/lib/rpm/rpmdb.sqlite";

/// The index tables rpm creates (`dbiTags` in lib/rpmdb.cc), in its order.
const INDEXES: &[(&str, Key)] = &[
    ("Name", Key::Text),
    ("Basenames", Key::Text),
    ("Group", Key::Text),
    ("Requirename", Key::Text),
    ("Providename", Key::Text),
    ("Conflictname", Key::Text),
    ("Obsoletename", Key::Text),
    ("Triggername", Key::Text),
    ("Dirnames", Key::Text),
    ("Installtid", Key::Blob),
    ("Sigmd5", Key::Blob),
    ("Sha1header", Key::Text),
    ("Filetriggername", Key::Text),
    ("Transfiletriggername", Key::Text),
    ("Recommendname", Key::Text),
    ("Suggestname", Key::Text),
    ("Supplementname", Key::Text),
    ("Enhancename", Key::Text),
];

/// Tables whose tag is an array: rpm adds an index on `hnum` for them.
const ARRAY_TABLES: &[&str] = &[
    "Basenames",
    "Requirename",
    "Providename",
    "Conflictname",
    "Obsoletename",
    "Triggername",
    "Dirnames",
    "Filetriggername",
    "Transfiletriggername",
    "Recommendname",
    "Suggestname",
    "Supplementname",
    "Enhancename",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Text,
    Blob,
}

#[derive(Debug, thiserror::Error)]
pub enum RpmdbError {
    #[error("{}: not an RPM header ({what})", path.display())]
    Malformed { path: PathBuf, what: String },
    #[error("cannot write the rpm database")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot write the rpm database to staging")]
    Staging(#[source] io::Error),
}

/// The blob rpm would store for `rpm` once installed as the `nth` package
/// (its main header plus the tags an install adds), and the added entries.
pub fn installed_blob(
    rpm: &RpmFile,
    not_installed: &BTreeSet<usize>,
    install: &Install,
    nth: u32,
) -> Result<(Vec<u8>, Vec<installed::RawEntry>), RpmdbError> {
    let headers = rpm.headers();
    let main =
        installed::RawHeader::parse(headers.main_blob()).map_err(|e| RpmdbError::Malformed {
            path: rpm.path().to_path_buf(),
            what: format!("main header: {e}"),
        })?;
    // A signature header that does not parse only loses the signature tags.
    let sig = installed::RawHeader::parse(headers.signature_blob()).ok();
    let added = installed::install_entries(&main, sig.as_ref(), not_installed, install, nth);
    Ok((installed::append(&main, &added), added))
}

/// `(table, key, idx)` rows for one header, as rpm's `tag2index` makes them.
fn index_rows(h: &rpm::Header<IndexTag>) -> Vec<(&'static str, String, u32)> {
    let strings = |tag| h.get_entry_data_as_string_array(tag).unwrap_or_default();
    let mut rows = Vec::new();
    let mut each = |table: &'static str, values: Vec<&str>| {
        for (i, v) in values.into_iter().enumerate() {
            rows.push((table, v.to_string(), i as u32));
        }
    };
    each(
        "Name",
        h.get_entry_data_as_string(IndexTag::RPMTAG_NAME)
            .into_iter()
            .collect(),
    );
    each("Basenames", strings(IndexTag::RPMTAG_BASENAMES));
    let group = h
        .get_entry_data_as_i18n_string(IndexTag::RPMTAG_GROUP)
        .or_else(|_| h.get_entry_data_as_string(IndexTag::RPMTAG_GROUP))
        .unwrap_or("Unknown");
    each("Group", vec![group]);
    each("Providename", strings(IndexTag::RPMTAG_PROVIDENAME));
    each("Conflictname", strings(IndexTag::RPMTAG_CONFLICTNAME));
    each("Obsoletename", strings(IndexTag::RPMTAG_OBSOLETENAME));
    each("Dirnames", strings(IndexTag::RPMTAG_DIRNAMES));
    each("Recommendname", strings(IndexTag::RPMTAG_RECOMMENDNAME));
    each("Suggestname", strings(IndexTag::RPMTAG_SUGGESTNAME));
    each("Supplementname", strings(IndexTag::RPMTAG_SUPPLEMENTNAME));
    each("Enhancename", strings(IndexTag::RPMTAG_ENHANCENAME));

    // Requires needed only while installing are not indexed.
    let flags = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_REQUIREFLAGS)
        .unwrap_or_default();
    for (i, name) in strings(IndexTag::RPMTAG_REQUIRENAME)
        .into_iter()
        .enumerate()
    {
        if !flags.get(i).is_some_and(|&f| transient_require(f)) {
            rows.push(("Requirename", name.to_string(), i as u32));
        }
    }
    // Trigger names once each, at their first index.
    let triggers = strings(IndexTag::RPMTAG_TRIGGERNAME);
    for (i, name) in triggers.iter().enumerate() {
        if !triggers[..i].contains(name) {
            rows.push(("Triggername", name.to_string(), i as u32));
        }
    }
    // File triggers carry their trigger index.
    for (table, names, index) in [
        (
            "Filetriggername",
            IndexTag::RPMTAG_FILETRIGGERNAME,
            IndexTag::RPMTAG_FILETRIGGERINDEX,
        ),
        (
            "Transfiletriggername",
            IndexTag::RPMTAG_TRANSFILETRIGGERNAME,
            IndexTag::RPMTAG_TRANSFILETRIGGERINDEX,
        ),
    ] {
        let idx = h.get_entry_data_as_u32_array(index).unwrap_or_default();
        for (i, name) in strings(names).into_iter().enumerate() {
            rows.push((table, name.to_string(), idx.get(i).copied().unwrap_or(0)));
        }
    }
    rows
}

/// rpm's `isTransientReq`: an install-time prerequisite (scriptlet,
/// rpmlib, pretrans…) that is not also needed for erasure or a meta dep.
fn transient_require(flags: u32) -> bool {
    const PREREQ: u32 = 1 << 6;
    const INSTALL_ONLY: u32 = (1 << 9) | (1 << 10) | (1 << 24) | (1 << 26) | (1 << 7) | (1 << 5);
    const ERASE_ONLY: u32 = (1 << 11) | (1 << 12) | (1 << 20) | (1 << 21);
    const META: u32 = 1 << 29;
    let not_pre = |mask: u32| mask & !PREREQ;
    flags & not_pre(INSTALL_ONLY) != 0 && flags & not_pre(ERASE_ONLY) == 0 && flags & META == 0
}

/// Rows of the BLOB-keyed tables for the tags an install added, as
/// rpm's `td2key` keys them (integers in the image's native byte order).
fn install_rows(added: &[installed::RawEntry], install: &Install) -> Vec<(&'static str, Vec<u8>)> {
    let mut rows = Vec::new();
    for e in added {
        match e.tag {
            installed::TAG_INSTALLTID => {
                let tid = install.time;
                let key = if install.big_endian {
                    tid.to_be_bytes()
                } else {
                    tid.to_le_bytes()
                };
                rows.push(("Installtid", key.to_vec()));
            }
            installed::TAG_SIGMD5 => rows.push(("Sigmd5", e.data.clone())),
            _ => {}
        }
    }
    rows
}

/// Write the database for `rpms` (in install order) to `db`; the files of
/// `not_installed` get rpm's "not installed" state. Over a base image's
/// database, `base` holds its header blobs (as its `Packages` table stores
/// them, install tags included): they come first, unchanged.
pub fn write_db_over(
    db: &Path,
    base: &[Vec<u8>],
    rpms: &[&RpmFile],
    not_installed: &NotInstalled,
    install: &Install,
) -> Result<(), RpmdbError> {
    let mut conn = Connection::open(db)?;
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)",
    )?;
    for (table, key) in INDEXES {
        let keytype = match key {
            Key::Text => "TEXT",
            Key::Blob => "BLOB",
        };
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS '{table}' (key '{keytype}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))"
        ))?;
        if *key == Key::Text {
            tx.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS '{table}_key_idx' ON '{table}'(key ASC)"
            ))?;
        }
        if ARRAY_TABLES.contains(table) {
            tx.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS '{table}_hnum_idx' ON '{table}'(hnum ASC)"
            ))?;
        }
    }
    for (i, blob) in base.iter().enumerate() {
        let malformed = |what: String| RpmdbError::Malformed {
            path: PathBuf::from(format!("base rpmdb header {}", i + 1)),
            what,
        };
        let headers = crate::package::file::Headers::from_installed(blob)
            .map_err(|e| malformed(e.to_string()))?;
        let raw = installed::RawHeader::parse(blob).map_err(malformed)?;
        tx.execute("INSERT INTO 'Packages' (blob) VALUES (?1)", params![blob])?;
        let hnum = tx.last_insert_rowid();
        for (table, key, idx) in index_rows(&headers.metadata().header) {
            tx.execute(
                &format!("INSERT INTO '{table}' (key, hnum, idx) VALUES (?1, ?2, ?3)"),
                params![key, hnum, idx],
            )?;
        }
        for (table, key) in stored_install_rows(&raw, install) {
            tx.execute(
                &format!("INSERT INTO '{table}' (key, hnum, idx) VALUES (?1, ?2, 0)"),
                params![key, hnum],
            )?;
        }
        if let Some(e) = raw.get(installed::TAG_SHA1HEADER) {
            let hex = String::from_utf8_lossy(e.data.strip_suffix(&[0]).unwrap_or(&e.data));
            tx.execute(
                "INSERT INTO 'Sha1header' (key, hnum, idx) VALUES (?1, ?2, 0)",
                params![hex.as_ref(), hnum],
            )?;
        }
    }
    let none = BTreeSet::new();
    for (nth, rpm) in rpms.iter().enumerate() {
        let skipped = not_installed.get(rpm.path()).unwrap_or(&none);
        let nth = u32::try_from(nth + base.len()).unwrap_or(u32::MAX);
        let (blob, added) = installed_blob(rpm, skipped, install, nth)?;
        tx.execute("INSERT INTO 'Packages' (blob) VALUES (?1)", params![blob])?;
        let hnum = tx.last_insert_rowid();
        for (table, key, idx) in index_rows(&rpm.metadata().header) {
            tx.execute(
                &format!("INSERT INTO '{table}' (key, hnum, idx) VALUES (?1, ?2, ?3)"),
                params![key, hnum, idx],
            )?;
        }
        for (table, key) in install_rows(&added, install) {
            tx.execute(
                &format!("INSERT INTO '{table}' (key, hnum, idx) VALUES (?1, ?2, 0)"),
                params![key, hnum],
            )?;
        }
        // SHA1HEADER is a string: a TEXT key without its NUL.
        if let Some(e) = added.iter().find(|e| e.tag == installed::TAG_SHA1HEADER) {
            let hex = String::from_utf8_lossy(e.data.strip_suffix(&[0]).unwrap_or(&e.data));
            tx.execute(
                "INSERT INTO 'Sha1header' (key, hnum, idx) VALUES (?1, ?2, 0)",
                params![hex.as_ref(), hnum],
            )?;
        }
    }
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// The BLOB-keyed rows of a stored header's own install tags (a base
/// image's package): its install time and SIGMD5, keyed as rpm keys them.
fn stored_install_rows(
    raw: &installed::RawHeader,
    install: &Install,
) -> Vec<(&'static str, Vec<u8>)> {
    let mut rows = Vec::new();
    if let Some(e) = raw.get(installed::TAG_INSTALLTID) {
        if let Some(b) = e.data.get(..4) {
            let tid = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let key = if install.big_endian {
                tid.to_be_bytes()
            } else {
                tid.to_le_bytes()
            };
            rows.push(("Installtid", key.to_vec()));
        }
    }
    if let Some(e) = raw.get(installed::TAG_SIGMD5) {
        rows.push(("Sigmd5", e.data));
    }
    rows
}

/// Build the database for `rpms` (the packages in the image, in install
/// order) and place it at [`DB_PATH`] in the tree.
pub fn add_to_tree(
    tree: &mut Tree,
    staging: &mut Staging,
    rpms: &[&RpmFile],
    not_installed: &NotInstalled,
    install: &Install,
) -> Result<(), RpmdbError> {
    add_to_tree_over(tree, staging, DB_PATH, &[], rpms, not_installed, install)
}

/// [`add_to_tree`] over a base image's database (see [`write_db_over`]),
/// at `at` (where the base keeps it). A base's Berkeley DB `Packages` is
/// replaced by an `rpmdb.sqlite` next to it, and its index files (named
/// like the sqlite index tables, [`INDEXES`]) and environment (`__db.*`)
/// removed with it: they would describe the base's packages only.
pub fn add_to_tree_over(
    tree: &mut Tree,
    staging: &mut Staging,
    at: &str,
    base: &[Vec<u8>],
    rpms: &[&RpmFile],
    not_installed: &NotInstalled,
    install: &Install,
) -> Result<(), RpmdbError> {
    let tmp = tempfile::tempdir().map_err(RpmdbError::Staging)?;
    let db = tmp.path().join("rpmdb.sqlite");
    write_db_over(&db, base, rpms, not_installed, install)?;
    let mut w = staging.create_blob().map_err(RpmdbError::Staging)?;
    io::copy(&mut File::open(&db).map_err(RpmdbError::Staging)?, &mut w)
        .map_err(RpmdbError::Staging)?;
    let blob = w.finish().map_err(RpmdbError::Staging)?;
    staging.record(&blob);
    let mut at = tree.resolve(at).unwrap_or_else(|_| at.to_string());
    if let Some(dir) = at.strip_suffix("/Packages").map(str::to_string) {
        let stale: Vec<String> = tree
            .entries
            .keys()
            .filter(|p| {
                p.strip_prefix(&dir)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|name| {
                        name == "Packages"
                            || INDEXES.iter().any(|(table, _)| *table == name)
                            || (name.starts_with("__db.") && !name.contains('/'))
                    })
            })
            .cloned()
            .collect();
        for p in stale {
            tree.entries.remove(&p);
        }
        at = format!("{dir}/rpmdb.sqlite");
    }
    tree.ensure_parents(&at);
    tree.entries.insert(
        at,
        Entry {
            kind: Kind::File {
                blob: blob.blob,
                size: blob.size,
                link_id: None,
            },
            mode: 0o644,
            ..implied_dir()
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_rpm(dir: &Path, name: &str) -> RpmFile {
        let pkg = rpm::PackageBuilder::new(name, "1.0", "MIT", "x86_64", "test package")
            .release("1")
            .group("Applications/System")
            .requires(rpm::Dependency::script_pre("/bin/sh"))
            .requires(rpm::Dependency::any("libc.so.6()(64bit)"))
            .provides(rpm::Dependency::any("webserver"))
            .with_file_contents(
                "x",
                rpm::FileOptions::new(format!("/usr/bin/{name}")).mode(0o100755),
            )
            .unwrap()
            .build()
            .unwrap();
        let path = dir.join(format!("{name}.rpm"));
        pkg.write_file(&path).unwrap();
        RpmFile::open(&path).unwrap()
    }

    #[test]
    fn main_blob_is_the_main_header_without_magic() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = build_rpm(dir.path(), "hello");
        let blob = rpm.headers().main_blob();
        let il = u32::from_be_bytes(blob[0..4].try_into().unwrap()) as usize;
        let dl = u32::from_be_bytes(blob[4..8].try_into().unwrap()) as usize;
        assert_eq!(blob.len(), 8 + 16 * il + dl);
        // The first index entry is the immutable region (tag 63).
        assert_eq!(u32::from_be_bytes(blob[8..12].try_into().unwrap()), 63);
        // The same bytes follow the magic in the file.
        let file = std::fs::read(rpm.path()).unwrap();
        let at = file.windows(blob.len()).position(|w| w == blob).unwrap();
        assert_eq!(file[at - 8..at], [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
    }

    #[test]
    fn a_base_database_is_kept_first_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (base_rpm, new_rpm) = (build_rpm(dir.path(), "b"), build_rpm(dir.path(), "a"));
        let install = Install {
            time: 1_700_000_000,
            color: installed::TRANSACTION_COLOR_64,
            big_endian: false,
        };
        let base_db = dir.path().join("base.sqlite");
        write_db_over(&base_db, &[], &[&base_rpm], &NotInstalled::new(), &install).unwrap();
        let base_blobs = read::blobs(&base_db, "base").unwrap();
        // The stored blob reads back as the package it is.
        let h = crate::package::file::Headers::from_installed(&base_blobs[0]).unwrap();
        assert_eq!(h.nevra().unwrap().name, "b");
        let db = dir.path().join("rpmdb.sqlite");
        write_db_over(
            &db,
            &base_blobs,
            &[&new_rpm],
            &NotInstalled::new(),
            &install,
        )
        .unwrap();
        let blobs = read::blobs(&db, "image").unwrap();
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0], base_blobs[0], "the base's header, byte for byte");
        let conn = Connection::open(&db).unwrap();
        let names: Vec<(String, i64)> = conn
            .prepare("SELECT key, hnum FROM Name ORDER BY hnum")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(names, [("b".to_string(), 1), ("a".to_string(), 2)]);
        let tids: i64 = conn
            .query_row("SELECT count(*) FROM Installtid", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tids, 2, "the base's own install time is indexed too");
    }

    #[test]
    fn a_base_berkeley_db_is_replaced_by_an_sqlite_one_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = build_rpm(dir.path(), "a");
        let mut t = crate::image::test_tree::TestTree::new();
        for f in [
            "Packages",
            "Name",
            "Basenames",
            "__db.001",
            "rpmdb.sqlite-keep",
        ] {
            t.file(&format!("var/lib/rpm/{f}"), 0o644, b"base");
        }
        t.file("var/lib/rpmstate/Name", 0o644, b"other");
        let mut staging = Staging::new(dir.path().join("staging")).unwrap();
        let install = Install {
            time: 0,
            color: installed::TRANSACTION_COLOR_64,
            big_endian: false,
        };
        let base = vec![read::stored_header(&[(1000, 6, b"b\0")])];
        add_to_tree_over(
            &mut t.tree,
            &mut staging,
            "var/lib/rpm/Packages",
            &base,
            &[&rpm],
            &NotInstalled::new(),
            &install,
        )
        .unwrap();
        let left: Vec<&str> = t.tree.entries.keys().map(String::as_str).collect();
        assert!(
            left.contains(&"var/lib/rpm/rpmdb.sqlite")
                && left.contains(&"var/lib/rpm/rpmdb.sqlite-keep")
                && left.contains(&"var/lib/rpmstate/Name"),
            "{left:?}"
        );
        for gone in ["Packages", "Name", "Basenames", "__db.001"] {
            assert!(!left.contains(&&*format!("var/lib/rpm/{gone}")), "{left:?}");
        }
        let (path, blobs) = read::in_tree(&t.tree).unwrap().unwrap();
        assert_eq!(path, "var/lib/rpm/rpmdb.sqlite");
        assert_eq!((blobs.len(), &blobs[0]), (2, &base[0]));
    }

    #[test]
    fn writes_packages_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let rpms = [build_rpm(dir.path(), "b"), build_rpm(dir.path(), "a")];
        let db = dir.path().join("rpmdb.sqlite");
        let install = Install {
            time: 1_700_000_000,
            color: installed::TRANSACTION_COLOR_64,
            big_endian: false,
        };
        let skipped = NotInstalled::from([(rpms[1].path().to_path_buf(), BTreeSet::from([0]))]);
        write_db_over(&db, &[], &[&rpms[0], &rpms[1]], &skipped, &install).unwrap();
        let conn = Connection::open(&db).unwrap();
        let hnums: Vec<i64> = conn
            .prepare("SELECT hnum FROM Packages ORDER BY hnum")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hnums, [1, 2], "install order");
        let name: String = conn
            .query_row("SELECT key FROM Name WHERE hnum = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "a");
        let base: (String, u32) = conn
            .query_row("SELECT key, idx FROM Basenames WHERE hnum = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(base, ("b".to_string(), 0));
        let requires: Vec<String> = conn
            .prepare("SELECT key FROM Requirename WHERE hnum = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            requires.contains(&"libc.so.6()(64bit)".to_string()),
            "{requires:?}"
        );
        assert!(
            !requires.contains(&"/bin/sh".to_string()),
            "%pre require is transient"
        );
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1 + INDEXES.len() as i64);

        // The install-time indexes: the transaction id in native (here
        // little-endian) bytes, one row per package.
        let tids: Vec<(Vec<u8>, i64)> = conn
            .prepare("SELECT key, hnum FROM Installtid ORDER BY hnum")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let tid = 1_700_000_000u32.to_le_bytes().to_vec();
        assert_eq!(tids, [(tid.clone(), 1), (tid, 2)]);
        let sha1: String = conn
            .query_row("SELECT key FROM Sha1header WHERE hnum = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(sha1.len(), 40, "{sha1}");

        // Each blob carries its file states: a's only file was left out.
        let states = |hnum: i64| {
            let blob: Vec<u8> = conn
                .query_row("SELECT blob FROM Packages WHERE hnum = ?1", [hnum], |r| {
                    r.get(0)
                })
                .unwrap();
            installed::RawHeader::parse(&blob)
                .unwrap()
                .get(installed::TAG_FILESTATES)
                .unwrap()
                .data
        };
        assert_eq!(states(1), [installed::FILE_STATE_NORMAL]);
        assert_eq!(states(2), [installed::FILE_STATE_NOT_INSTALLED]);
    }

    #[test]
    fn installed_blob_keeps_the_region_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = build_rpm(dir.path(), "hello");
        let main = rpm.headers().main_blob();
        let install = Install {
            time: 1_700_000_000,
            color: 3,
            big_endian: false,
        };
        let (blob, added) = installed_blob(&rpm, &BTreeSet::new(), &install, 2).unwrap();
        let il = u32::from_be_bytes(main[0..4].try_into().unwrap()) as usize;
        let new_il = u32::from_be_bytes(blob[0..4].try_into().unwrap()) as usize;
        assert_eq!(new_il, il + added.len());
        // Index entries and data of the package's header, unchanged.
        assert_eq!(blob[8..8 + 16 * il], main[8..8 + 16 * il]);
        let data = &main[8 + 16 * il..];
        let at = 8 + 16 * new_il;
        assert_eq!(&blob[at..at + data.len()], data);
        let h = installed::RawHeader::parse(&blob).unwrap();
        let int = |tag| u32::from_be_bytes(h.get(tag).unwrap().data.try_into().unwrap());
        assert_eq!(int(installed::TAG_INSTALLTID), 1_700_000_000);
        assert_eq!(
            int(installed::TAG_INSTALLTIME),
            1_700_000_002,
            "third package"
        );
        assert_eq!(int(installed::TAG_INSTALLCOLOR), 3);
        // The signature header's digests, under their main-header tags.
        assert!(h.has(installed::TAG_SHA1HEADER) || h.has(273), "{added:?}");
        // The package's own tags read as before.
        assert_eq!(h.get(1000).unwrap().data, b"hello\0");
    }

    #[test]
    fn install_index_keys_use_the_image_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = build_rpm(dir.path(), "x");
        let main = rpm.headers().main_blob();
        let install = |big_endian| Install {
            time: 0x0102_0304,
            color: 3,
            big_endian,
        };
        let added = installed::install_entries(
            &installed::RawHeader::parse(main).unwrap(),
            None,
            &BTreeSet::new(),
            &install(false),
            0,
        );
        let rows = |big_endian| install_rows(&added, &install(big_endian));
        // s390x's rpm looks the transaction id up by its native bytes.
        assert_eq!(rows(true), [("Installtid", vec![1, 2, 3, 4])]);
        assert_eq!(rows(false), [("Installtid", vec![4, 3, 2, 1])]);
    }

    #[test]
    fn transient_requires_match_rpm() {
        assert!(transient_require(1 << 9)); // %pre
        assert!(transient_require(1 << 24)); // rpmlib()
        assert!(!transient_require(0));
        assert!(
            !transient_require((1 << 9) | (1 << 11)),
            "also needed to erase"
        );
        assert!(!transient_require((1 << 9) | (1 << 29)), "meta");
        assert!(!transient_require(1 << 6), "legacy prereq alone");
    }

    /// A build's per-package flow — identity check, signature and payload
    /// digest, the header's dependencies and SBOM fields, unpacking, the
    /// rpm database — parses the package's headers once, when it is opened.
    #[test]
    fn one_read_of_the_headers_feeds_every_stage() {
        use crate::package::file::headers_parsed_on_this_thread;
        use crate::package::{Evr, Nevra};
        let assets = crate::testing::corpus("rpm-rs-rpm/tests/assets");
        let path = assets.join("RPMS/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm");
        let key = assets.join("signing_keys/v4/rpm-testkey-v4-ed25519.asc");
        let nevra = Nevra::new("rpm-basic", Evr::parse("1:2.3.4-5.el9"), "noarch");
        let mut ring = crate::signature::Keyring::default();
        ring.add(&std::fs::read(&key).unwrap(), "test key", None)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let before = headers_parsed_on_this_thread();

        let rpm = crate::package::identity::open_checked(&path, &nevra).unwrap();
        ring.verify_rpm(&rpm, &nevra).unwrap();
        let planned = crate::package::Package::new(
            nevra.clone(),
            0,
            "rpm-basic.rpm".into(),
            crate::digest::Digest::sha256_of(b"x"),
        );
        let package = crate::package::header::with_header_deps(rpm.headers(), &planned);
        assert!(!package.files.is_empty() && !package.license.is_empty());
        let mut tree = Tree::default();
        let mut staging = Staging::new(dir.path().join("staging")).unwrap();
        let opts = crate::rootfs::UnpackOptions::default();
        let report = crate::rootfs::unpack(&mut tree, &mut staging, &rpm, &opts).unwrap();
        assert!(report.installed > 0);
        let not_installed = NotInstalled::from([(rpm.path().to_path_buf(), report.not_installed)]);
        let install = Install {
            time: 0,
            color: installed::TRANSACTION_COLOR_64,
            big_endian: false,
        };
        write_db_over(
            &dir.path().join("rpmdb.sqlite"),
            &[],
            &[&rpm],
            &not_installed,
            &install,
        )
        .unwrap();

        assert_eq!(headers_parsed_on_this_thread() - before, 1);
    }
}
