//! End to end: the image's rpm database is the one rpm itself would have
//! written. `rpm -Va` (Debian's rpm 4.18) on the unpacked layer reports only
//! what minibuild changed on purpose, each line under a named [`Rule`]; and
//! each package's stored header is byte for byte what `rpm -i` stores for the
//! same RPMs with the same options (docs off, `%_install_langs C`, an
//! excluded path, SOURCE_DATE_EPOCH), install time aside.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PACKAGES: [&str; 6] = [
    "bash",
    "coreutils-single",
    "glibc-minimal-langpack",
    "ca-certificates",
    "util-linux-core",
    // A package manager, which minibuild leaves out of the image.
    "rpm",
];

/// A path no package installs (`exclude_paths`): rpm's `--excludepath`.
const EXCLUDED: &str = "/usr/bin/bashbug";

const EPOCH: &str = "1700000000";

/// The package-manager packages minibuild removes (src/rootfs/harden.rs).
const PACKAGE_MANAGERS: [&str; 6] = [
    "rpm",
    "rpm-libs",
    "rpm-build-libs",
    "rpm-sign-libs",
    "rpm-sequoia",
    "python3-rpm",
];

/// A line `rpm -Va` may print, with why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// `strip_setuid` (the default) clears setuid/setgid: the mode differs
    /// (`.M.......`) and nothing else, on a file the header marks 06000.
    SetuidStripped,
    /// minibuild leaves the package manager out of the image; a
    /// package-manager package still in the database has its files missing.
    PackageManagerRemoved,
}
// No rule for generated files: the CA bundles are %ghost, whose content
// rpm does not verify, and /etc/ld.so.cache belongs to no fixture package.

fn rpm_in(root: &Path) -> Command {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"]);
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build the fixture image; returns (unpacked rootfs, the RPMs fetched).
fn build(tmp: &Path) -> (PathBuf, Vec<PathBuf>) {
    let list: Vec<String> = PACKAGES.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = tmp.join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\narch = [\"x86_64\"]\n[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n\
             [packages]\ninstall = [{}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n\
             [options]\ndocs = false\nlangs = [\"C\"]\nexclude_paths = [\"{EXCLUDED}\"]\nsource_date_epoch = {EPOCH}\n",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    let archive = tmp.join("img.oci.tar");
    let cache = tmp.join("cache");
    run_ok(build_cmd(&recipe, &archive, &cache).env_remove("SOURCE_DATE_EPOCH"));
    let mut rpms = Vec::new();
    rpm_files(&cache, &mut rpms);
    rpms.sort();
    (unpack_with_owners(&archive, tmp), rpms)
}

/// The image's root filesystem. As root, umoci applies the layer's owners
/// (`rpm -V` checks them); otherwise it unpacks rootless, every file
/// owned by the caller, and [`verify_flags`] leaves owners out.
fn unpack_with_owners(archive: &Path, dir: &Path) -> PathBuf {
    if !is_root() {
        return unpack_archive(archive, dir);
    }
    require_tool("skopeo");
    require_tool("umoci");
    let layout = dir.join("layout");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci-archive:{}", archive.display()),
        &format!("oci:{}:img", layout.display()),
    ]));
    let bundle = dir.join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:img", layout.display())])
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

/// `rpm -V` options: owners are only checked where the unpack applied them.
fn verify_flags() -> &'static [&'static str] {
    if is_root() {
        &[]
    } else {
        &["--nouser", "--nogroup"]
    }
}

fn rpm_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rpm_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rpm") {
            out.push(p);
        }
    }
}

/// The rule that explains `line` of `rpm -V package`, if any.
fn rule_for(root: &Path, package: &str, line: &str) -> Option<Rule> {
    if let Some(path) = line.strip_prefix("missing") {
        let path = path
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_lowercase())
            .trim();
        return (PACKAGE_MANAGERS.contains(&package)
            && !root.join(path.trim_start_matches('/')).exists())
        .then_some(Rule::PackageManagerRemoved);
    }
    let (flags, rest) = line.split_at(9.min(line.len()));
    if flags != ".M......." {
        return None;
    }
    let path = rest
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_lowercase())
        .trim();
    let modes = stdout(&run_ok(rpm_in(root).args([
        "-q",
        package,
        "--qf",
        "[%{FILEMODES:octal} %{FILENAMES}\\n]",
    ])));
    let header_mode = modes.lines().find_map(|l| {
        let (mode, p) = l.split_once(' ')?;
        (p == path).then(|| u32::from_str_radix(mode, 8).ok())?
    })?;
    use std::os::unix::fs::PermissionsExt;
    let image_mode = std::fs::symlink_metadata(root.join(path.trim_start_matches('/')))
        .ok()?
        .permissions()
        .mode();
    (header_mode & 0o6000 != 0 && image_mode & 0o7777 == header_mode & 0o7777 & !0o6000)
        .then_some(Rule::SetuidStripped)
}

#[test]
fn rpm_verify_reports_only_what_minibuild_changed() {
    require_tool("rpm");
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = build(tmp.path());

    // rpm reads the database: every package is there.
    let names: BTreeSet<String> =
        stdout(&run_ok(rpm_in(&root).args(["-qa", "--qf", "%{NAME}\\n"])))
            .lines()
            .map(str::to_string)
            .collect();
    for p in PACKAGES.iter().filter(|p| !PACKAGE_MANAGERS.contains(p)) {
        assert!(names.contains(*p), "{p} not in rpm -qa: {names:?}");
    }

    // Before file states were written, every line ended in "(no state)".
    let all = run_ok_or_status(rpm_in(&root).arg("-Va").args(verify_flags()));
    assert!(!all.contains("(no state)"), "{all}");

    let mut used: BTreeMap<Rule, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut lines = 0;
    for name in &names {
        for line in run_ok_or_status(rpm_in(&root).args(["-V", name]).args(verify_flags())).lines()
        {
            lines += 1;
            match rule_for(&root, name, line) {
                Some(rule) => *used.entry(rule).or_default() += 1,
                None => unexplained.push(format!("{name}: {line}")),
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "rpm -V lines no rule explains:\n{}",
        unexplained.join("\n")
    );
    assert_eq!(
        lines,
        all.lines().count(),
        "rpm -Va and per-package rpm -V agree:\n{all}"
    );
    assert!(used.contains_key(&Rule::SetuidStripped), "{used:?}\n{all}");
    // A package manager still in the database has its files missing; one
    // dropped from the database (package-manager removal by package) has
    // no lines at all.
    if names.contains("rpm") {
        assert!(
            used.contains_key(&Rule::PackageManagerRemoved),
            "{used:?}\n{all}"
        );
    }

    // What minibuild left out on purpose is "not installed", as rpm records
    // --nodocs, %_install_langs and --excludepath: shown only with -v.
    let bash = run_ok_or_status(rpm_in(&root).args(["-Vv", "bash"]).args(verify_flags()));
    for (path, why) in [
        ("/usr/share/doc/bash/NEWS.gz", "docs = false"),
        ("/usr/share/doc/bash", "emptied by docs = false"),
        (
            "/usr/share/locale/de/LC_MESSAGES/bash.mo",
            "langs = [\"C\"]",
        ),
        (EXCLUDED, "exclude_paths"),
    ] {
        assert!(
            bash.lines()
                .any(|l| l.ends_with(&format!(" {path} (not installed)"))),
            "{path} ({why}) is not \"not installed\":\n{bash}"
        );
    }
    assert!(
        bash.lines()
            .any(|l| l.starts_with(".........") && l.ends_with(" /usr/bin/bash")),
        "/usr/bin/bash verifies clean:\n{bash}"
    );
}

/// stdout of an rpm verify run, which exits 1 when it prints differences.
fn run_ok_or_status(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c <= 1) && stderr.trim().is_empty(),
        "{cmd:?}: {}\n{stderr}",
        out.status
    );
    stdout(&out)
}

/// Each package's header blob in the sqlite rpmdb at `db`, by name, with
/// INSTALLTIME (which follows install order) read out and zeroed.
fn packages(db: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT blob FROM Packages").unwrap();
    let blobs: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let mut out = BTreeMap::new();
    for mut blob in blobs {
        let il = be(&blob, 0) as usize;
        let data = 8 + 16 * il;
        let (mut name, mut time) = (String::new(), 0);
        for i in 0..il {
            let (tag, offset) = (be(&blob, 8 + 16 * i), be(&blob, 16 + 16 * i) as usize);
            let at = data + offset;
            if tag == 1000 {
                let end = blob[at..].iter().position(|&b| b == 0).unwrap();
                name = String::from_utf8_lossy(&blob[at..at + end]).into_owned();
            } else if tag == 1008 {
                time = be(&blob, at);
                blob[at..at + 4].fill(0);
            }
        }
        out.insert(name, (blob, time));
    }
    out
}

/// `(table, key, package name)` rows of the index tables rpm fills only
/// from install-time tags.
fn install_index(db: &Path) -> BTreeSet<(String, Vec<u8>, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut rows = BTreeSet::new();
    for table in ["Installtid", "Sigmd5", "Sha1header"] {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT CAST(t.key AS BLOB), n.key FROM '{table}' t JOIN Name n ON n.hnum = t.hnum"
            ))
            .unwrap();
        let found: Vec<(Vec<u8>, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.extend(found.into_iter().map(|(k, n)| (table.to_string(), k, n)));
    }
    rows
}

#[test]
fn stored_headers_match_what_rpm_install_writes() {
    require_tool("rpm");
    let tmp = tempfile::tempdir().unwrap();
    let (root, rpms) = build(tmp.path());
    let ours_db = root.join("var/lib/rpm/rpmdb.sqlite");

    // The same RPMs installed by rpm, with the recipe's options spelled as
    // rpm's, scriptlets off (minibuild runs none) and the image's epoch.
    let theirs = tmp.path().join("rpm-root");
    std::fs::create_dir(&theirs).unwrap();
    assert!(
        is_root(),
        "rpm -i gives files their packages' owners (group tty for util-linux-core's /usr/bin/write): run the suite as root, as CI does"
    );
    run_ok(rpm_in(&theirs).args(["--initdb", "--define", "_db_backend sqlite"]));
    run_ok(
        rpm_in(&theirs)
            .args([
                "-i",
                "--nodeps",
                "--noscripts",
                "--notriggers",
                "--nosignature",
            ])
            .args(["--nodocs", "--define", "_install_langs C"])
            .args(["--define", "_db_backend sqlite", "--excludepath", EXCLUDED])
            .args(&rpms)
            .env("SOURCE_DATE_EPOCH", EPOCH),
    );
    let theirs_db = theirs.join("var/lib/rpm/rpmdb.sqlite");

    let ours = packages(&ours_db);
    let rpm_wrote = packages(&theirs_db);
    assert!(ours.len() >= 10, "{:?}", ours.keys());
    let epoch: u32 = EPOCH.parse().unwrap();
    for (name, (blob, time)) in &ours {
        let (want, their_time) = rpm_wrote
            .get(name)
            .unwrap_or_else(|| panic!("{name} is in the image's rpmdb but rpm did not install it"));
        assert!(
            blob == want,
            "{name}: the stored header differs from rpm's ({} vs {} bytes)",
            blob.len(),
            want.len()
        );
        // rpm stamps the n-th package it adds SOURCE_DATE_EPOCH + n; its
        // order is its own, so only the range is shared.
        let n = rpm_wrote.len() as u32;
        for t in [time, their_time] {
            assert!((epoch..epoch + n).contains(t), "{name}: INSTALLTIME {t}");
        }
    }
    // The install-time indexes hold the same keys for the same packages.
    let ours_rows = install_index(&ours_db);
    let theirs_rows: BTreeSet<_> = install_index(&theirs_db)
        .into_iter()
        .filter(|(_, _, n)| ours.contains_key(n))
        .collect();
    assert!(!ours_rows.is_empty());
    assert_eq!(ours_rows, theirs_rows);
}
