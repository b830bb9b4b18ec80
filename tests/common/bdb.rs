//! Berkeley DB rpmdbs (`Packages`, rpm < 4.16) for the tests, written by
//! Berkeley DB itself (`db5.3_load`, Debian's db5.3-util) from the header
//! blobs of an sqlite rpmdb, and read back by the real rpm's `bdb_ro`
//! backend as the oracle.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::{require_tool, run_ok};

/// The `(hnum, blob)` rows of the sqlite rpmdb `db`'s `Packages`, in
/// `hnum` order.
pub fn sqlite_rows(db: &Path) -> Vec<(u32, Vec<u8>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Writes `rows` as rpm's `Packages` hash database at `out` with
/// db5.3_load (`page_size` when given, Berkeley DB's default otherwise):
/// keys are the header instances in this host's byte order, as rpm wrote
/// them, plus rpm's instance-0 record (the highest instance).
pub fn write_packages(rows: &[(u32, Vec<u8>)], out: &Path, page_size: Option<u32>) {
    require_tool("db5.3_load");
    let max = rows.iter().map(|(h, _)| *h).max().unwrap_or(0);
    let mut text = String::from("VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n");
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    let mut record = |key: u32, data: &[u8]| {
        let _ = writeln!(text, " {}\n {}", hex(&key.to_ne_bytes()), hex(data));
    };
    record(0, &max.to_ne_bytes());
    for (hnum, blob) in rows {
        record(*hnum, blob);
    }
    text.push_str("DATA=END\n");
    let input = out.with_extension("dump");
    std::fs::write(&input, text).unwrap();
    let mut cmd = Command::new("db5.3_load");
    cmd.args(["-t", "hash", "-f"]).arg(&input);
    if let Some(size) = page_size {
        cmd.args(["-c", &format!("db_pagesize={size}")]);
    }
    run_ok(cmd.arg(out));
    std::fs::remove_file(input).unwrap();
}

/// The NEVRAs the real rpm reads from the Berkeley DB `Packages` in
/// `dbdir` (its read-only `bdb_ro` backend), in its order.
pub fn rpm_nevras(dbdir: &Path) -> Vec<String> {
    require_tool("rpm");
    let out = run_ok(Command::new("rpm").arg("--dbpath").arg(dbdir).args([
        "--define",
        "_db_backend bdb_ro",
        "-qa",
        "--qf",
        "%{NEVRA}\n",
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
