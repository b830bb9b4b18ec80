//! End to end: damaged input never panics, a damaged cache never changes an
//! answer, and an interrupted build leaves nothing behind.
//!
//! Each test runs the real binary against files or a loopback server it
//! controls, and checks beside the refusal that nothing outside the work
//! directories changed (a canary) and that no temporaries are left.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::*;

const LEAD: usize = 96;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Offset of the main header of an .rpm (after the padded signature header).
fn main_header_at(rpm: &[u8]) -> usize {
    let sig = 16 + 16 * be32(rpm, LEAD + 8) as usize + be32(rpm, LEAD + 12) as usize;
    LEAD + sig.div_ceil(8) * 8
}

/// A one-package repo in `dir`: `rpm` as `name`-1.0-1.x86_64, described by
/// a hand-written primary.xml (createrepo_c reads headers with librpm and
/// would refuse the damaged ones these tests need).
fn one_package_repo(dir: &Path, name: &str, rpm: &[u8]) {
    let file = format!("{name}-1.0-1.x86_64.rpm");
    fs::create_dir_all(dir.join("repodata")).unwrap();
    fs::write(dir.join(&file), rpm).unwrap();
    let primary = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>{name}</name><arch>x86_64</arch><version epoch="0" ver="1.0" rel="1"/>
<checksum type="sha256" pkgid="YES">{sum}</checksum><summary>s</summary><description>d</description>
<time file="1700000000" build="1700000000"/><size package="{size}" installed="10" archive="10"/>
<location href="{file}"/><format><rpm:license>MIT</rpm:license>
<rpm:provides><rpm:entry name="{name}" flags="EQ" epoch="0" ver="1.0" rel="1"/></rpm:provides></format></package>
</metadata>
"#,
        sum = sha256_hex(rpm),
        size = rpm.len(),
    );
    write_repodata(dir, primary.as_bytes());
}

/// repodata/ in `dir` with `primary` as its primary.xml, checksummed.
fn write_repodata(dir: &Path, primary: &[u8]) {
    fs::create_dir_all(dir.join("repodata")).unwrap();
    fs::write(dir.join("repodata/primary.xml"), primary).unwrap();
    let repomd = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision>
<data type="primary"><checksum type="sha256">{}</checksum><location href="repodata/primary.xml"/><size>{}</size></data>
</repomd>
"#,
        sha256_hex(primary),
        primary.len()
    );
    fs::write(dir.join("repodata/repomd.xml"), repomd).unwrap();
}

fn write_recipe(dir: &Path, package: &str) -> PathBuf {
    let path = dir.join("recipe.toml");
    fs::write(
        &path,
        format!(
            r#"[image]
name = "t"
tag = "1"
arch = ["x86_64"]

[[repo]]
name = "hostile"
baseurl = "http://127.0.0.1:9/unused/"
gpgcheck = false

[packages]
install = ["{package}"]
"#
        ),
    )
    .unwrap();
    path
}

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A file outside every directory a run may write; it must not change.
struct Canary {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canary");
        fs::write(&path, "untouched").unwrap();
        Canary { path, _dir: dir }
    }

    fn check(&self) {
        assert_eq!(fs::read_to_string(&self.path).unwrap(), "untouched");
        assert_eq!(
            listing(self.path.parent().unwrap()),
            vec![self.path.clone()]
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The damaged RPM of the `rpm` crate bug: entry 1 of the main header
/// points past the end of its store, which rpm 0.30.2 indexes unchecked
/// (`header.rs:111`, "range start index N out of range for slice of length M").
fn rpm_with_offset_past_the_store() -> Vec<u8> {
    let mut rpm =
        fs::read(fixtures().join("repo/x86_64/busybox-1.35.0-4.fc40.x86_64.rpm")).unwrap();
    let main = main_header_at(&rpm);
    let store = be32(&rpm, main + 12);
    let field = main + 16 + 16 + 8;
    rpm[field..field + 4].copy_from_slice(&(store + 4096).to_be_bytes());
    rpm
}

#[test]
fn a_header_offset_past_its_store_is_an_error_in_plan_and_build_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new();
    let repo = tmp.path().join("repo");
    one_package_repo(&repo, "victim", &rpm_with_offset_past_the_store());
    let server = Server::serve(&repo);
    let recipe = write_recipe(tmp.path(), "victim");
    let baseurl = format!("hostile={}/", server.url);
    let cache = tmp.path().join("cache");

    let plan = minibuild()
        .args(["plan", "--cache-dir"])
        .arg(&cache)
        .arg(&recipe)
        .args(["--baseurl", &baseurl])
        .env("CI", "1")
        .output()
        .unwrap();
    let err = stderr(&plan);
    assert!(!err.contains("panicked"), "{err}");
    // plan lists the package and says its header could not be read.
    assert!(
        err.contains("victim-1.0-1.x86_64") && err.contains("victim-1.0-1.x86_64.rpm"),
        "{err}"
    );

    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let build = build_cmd(&recipe, &out_dir.join("image.tar"), &cache)
        .args(["--baseurl", &baseurl])
        .output()
        .unwrap();
    let err = stderr(&build);
    assert_eq!(build.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The numbers and the cache name follow the fixture's busybox, which a
    // Debian point release can move.
    let mut settings = snapshot::stable(&[(tmp.path(), "[TMP]")]);
    settings.add_filter(r"[0-9a-f]{64}", "[SHA256]");
    settings.add_filter(
        r"offset \d+ outside its \d+-byte",
        "offset [N] outside its [N]-byte",
    );
    settings
        .bind(|| insta::assert_snapshot!("damaged_rpm_header", snapshot::error_message(&build)));
    assert_eq!(
        listing(&out_dir),
        Vec::<PathBuf>::new(),
        "nothing partial beside the output"
    );
    canary.check();
}

fn plan_json(recipe: &Path, cache: &Path) -> Output {
    run_ok(
        minibuild()
            .args(["plan", "--json", "--cache-dir"])
            .arg(cache)
            .arg(recipe)
            .args(["--baseurl", &format!("fedora={}", fixture_file_url())])
            .args(["--no-gpgcheck", "fedora"])
            .env("CI", "1"),
    )
}

/// Before the checksums, 6 in ~8,000 byte flips in the parsed-metadata
/// cache gave a different plan with no error. Now any flip anywhere in the
/// entry gives the true plan and a line saying the entry was rebuilt.
#[test]
fn a_flipped_byte_in_the_parsed_cache_never_changes_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new();
    let cache = tmp.path().join("cache");
    let recipe = recipe("distroless-base.toml");
    let truth = plan_json(&recipe, &cache);
    let parsed: Vec<PathBuf> = listing(&cache.join("v1/repodata"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-primary.parsed"))
        .collect();
    assert_eq!(parsed.len(), 1, "{parsed:?}");
    let entry = &parsed[0];
    let good = fs::read(entry).unwrap();
    // The header, the chunk table, the capability index and the packages,
    // at offsets spread over the whole entry, with two masks each.
    let offsets: Vec<usize> = [0, 30, 40, 50, 60, 70, 80]
        .into_iter()
        .chain((1..=12).map(|k| k * good.len() / 13))
        .chain([good.len() - 1])
        .collect();
    for (i, at) in offsets.into_iter().enumerate() {
        let mut bytes = good.clone();
        bytes[at] ^= if i % 2 == 0 { 0x01 } else { 0x80 };
        fs::write(entry, &bytes).unwrap();
        let out = plan_json(&recipe, &cache);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&truth.stdout),
            "byte {at} flipped changed the plan"
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cache entry {}", entry.display()))
                && err.contains("rebuilding it from the primary"),
            "byte {at}: {err}"
        );
        assert_eq!(
            fs::read(entry).unwrap(),
            good,
            "the entry was rewritten whole"
        );
    }
    // An intact entry is used silently.
    let out = plan_json(&recipe, &cache);
    assert!(!stderr(&out).contains("rebuilding"), "{}", stderr(&out));
    canary.check();
}

#[test]
fn a_year_10000_source_date_epoch_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let cache = tmp.path().join("cache");
    let build = build_cmd(&recipe("busybox.toml"), &out_dir.join("i.tar"), &cache)
        .args(["--baseurl", &format!("fedora={}", fixture_file_url())])
        .args(["--no-gpgcheck", "fedora"])
        .env("SOURCE_DATE_EPOCH", "253402300800")
        .output()
        .unwrap();
    let err = stderr(&build);
    assert_eq!(build.status.code(), Some(1), "{err}");
    assert!(
        err.contains("SOURCE_DATE_EPOCH = 253402300800 is after 9999-12-31T23:59:59Z")
            && err.contains("hint: give seconds since 1970"),
        "{err}"
    );
    assert_eq!(listing(&out_dir), Vec::<PathBuf>::new());
    // The last second of year 9999 is fine.
    run_ok(
        build_cmd(&recipe("busybox.toml"), &out_dir.join("i.tar"), &cache)
            .args(["--baseurl", &format!("fedora={}", fixture_file_url())])
            .args(["--no-gpgcheck", "fedora"])
            .env("SOURCE_DATE_EPOCH", "253402300799"),
    );
}

/// Where a build writes: its output directory and a private `$TMPDIR`.
struct Workspace {
    tmp: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["out", "tmpdir"] {
            fs::create_dir(tmp.path().join(d)).unwrap();
        }
        Workspace { tmp }
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    fn tmpdir(&self) -> PathBuf {
        self.tmp.path().join("tmpdir")
    }
    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
    fn build(&self, format: &str) -> Command {
        let mut cmd = build_cmd(
            &recipe("distroless-base.toml"),
            &self.out().join("image"),
            &self.cache(),
        );
        cmd.args(["--baseurl", &format!("fedora={}", fixture_file_url())])
            .args(["--no-gpgcheck", "fedora"])
            .args(["--format", format])
            .env("TMPDIR", self.tmpdir());
        cmd
    }
    /// Names in the output directory and `$TMPDIR` other than the outputs
    /// (`image`, `image.spdx.json`, `image.intoto.json`).
    fn debris(&self) -> Vec<String> {
        let names = |d: PathBuf| -> Vec<String> {
            fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "image" && !n.starts_with("image."))
                .collect()
        };
        let mut all = names(self.out());
        all.extend(names(self.tmpdir()));
        all.sort();
        all
    }
}

/// When a build is killed.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Its staging layout beside the output exists (metadata, fetching).
    OutputStaged,
    /// Its unpack staging in `$TMPDIR` exists (unpacking, writing the layer).
    Unpacking,
}

/// Start a build, wait for `moment`, send `signal`; the exit status and stderr.
fn interrupt(
    ws: &Workspace,
    mut build: Command,
    moment: Moment,
    signal: i32,
) -> (std::process::ExitStatus, String) {
    let mut child = build
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (dir, start) = match moment {
        Moment::OutputStaged => (ws.out(), ".minibuild-oci-"),
        Moment::Unpacking => (ws.tmpdir(), "minibuild-rootfs-"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = fs::read_dir(&dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(start));
        if seen {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the build ended ({status}) before {moment:?}: {err}");
        }
        assert!(Instant::now() < deadline, "{moment:?} never came");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn digest_of(out: &Output) -> String {
    let d = last_line(out);
    assert!(d.contains("sha256:"), "{d}");
    d
}

/// SIGINT and SIGTERM at two moments of a build: the exit code says which
/// signal, and neither the output directory nor `$TMPDIR` keeps anything.
/// The next build gives the digest of an uninterrupted one.
#[test]
fn sigint_and_sigterm_remove_every_temporary_and_exit_130_143() {
    let canary = Canary::new();
    let reference = Workspace::new();
    let want = digest_of(&run_ok(&mut reference.build("oci-archive")));
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        for moment in [Moment::OutputStaged, Moment::Unpacking] {
            let ws = Workspace::new();
            // SIGTERM's run logs JSON lines: the last one says why it stopped.
            let mut build = ws.build("oci-archive");
            if signal == libc::SIGTERM {
                build.args(["--log-format", "json"]);
            }
            let (status, stderr) = interrupt(&ws, build, moment, signal);
            assert_eq!(status.code(), Some(code), "signal {signal} at {moment:?}");
            let last = stderr.lines().last().unwrap_or_default();
            if signal == libc::SIGTERM {
                let line: serde_json::Value = serde_json::from_str(last)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {last}"));
                assert_eq!(line["event"], "interrupted", "{last}");
                assert_eq!(line["signal"], "SIGTERM", "{last}");
                assert!(line["removed"].as_u64().unwrap() >= 1, "{last}");
            } else {
                assert!(
                    last.starts_with("warning: interrupted by SIGINT; removed "),
                    "{last}"
                );
            }
            assert_eq!(
                ws.debris(),
                Vec::<String>::new(),
                "signal {signal} at {moment:?}"
            );
            assert!(!ws.out().join("image").exists());
            let again = run_ok(&mut ws.build("oci-archive"));
            assert_eq!(digest_of(&again), want);
        }
    }
    canary.check();
}

/// This process as the owner tag in temporaries' names (`<pid>.<start>`).
fn own_tag() -> String {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    let start = after.split_whitespace().nth(19).unwrap();
    format!("{}.{start}", std::process::id())
}

/// After a SIGKILL nothing runs: the staging stays, and the next build
/// sweeps it — and only it: a look-alike without an owner, and one whose
/// owner (this test) is alive, stay. `--format oci` over an existing layout
/// is the case where a kill between two renames once left no image.
#[test]
fn after_sigkill_the_next_build_sweeps_only_its_own_stale_debris() {
    let canary = Canary::new();
    for moment in [Moment::OutputStaged, Moment::Unpacking] {
        let ws = Workspace::new();
        let first = digest_of(&run_ok(&mut ws.build("oci")));
        let (status, _) = interrupt(&ws, ws.build("oci"), moment, libc::SIGKILL);
        assert_eq!(status.code(), None, "killed by a signal");
        let left = ws.debris();
        assert!(
            !left.is_empty(),
            "a kill at {moment:?} leaves its staging: {left:?}"
        );
        assert!(
            ws.out().join("image/index.json").is_file(),
            "the old image is still there"
        );
        let foreign = [
            ws.out().join(".minibuild-oci-notours"),
            ws.out()
                .join(format!(".minibuild-oci-{}-alive1", own_tag())),
            ws.tmpdir()
                .join(format!("minibuild-rootfs-{}-alive2", own_tag())),
        ];
        for f in &foreign {
            fs::create_dir(f).unwrap();
            fs::write(f.join("keep"), "x").unwrap();
        }
        let again = run_ok(&mut ws.build("oci"));
        assert_eq!(digest_of(&again), first);
        let err = stderr(&again);
        for name in &left {
            assert!(
                err.contains(name.as_str()) && err.contains("left by an interrupted build"),
                "{name}: {err}"
            );
        }
        let mut want: Vec<String> = foreign
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        want.sort();
        assert_eq!(ws.debris(), want, "after {moment:?}");
        for f in &foreign {
            assert!(f.join("keep").is_file());
        }
    }
    canary.check();
}

/// Issue 13.6: an empty or non-XML primary (with a matching checksum: a
/// broken mirror, not a transfer error) said "no package provides victim",
/// blaming the recipe. Now the whole message, as the user sees it.
#[test]
fn an_empty_or_html_primary_is_named_not_reported_as_a_missing_package() {
    for (name, primary) in [
        ("primary_empty", ""),
        (
            "primary_html",
            "<html><body>502 Bad Gateway</body></html>\n",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        write_repodata(&repo, primary.as_bytes());
        let recipe = write_recipe(tmp.path(), "victim");
        let url = format!("file://{}/", repo.display());
        let plan = minibuild()
            .args(["plan", "--cache-dir"])
            .arg(tmp.path().join("cache"))
            .arg(&recipe)
            .args(["--baseurl", &format!("hostile={url}")])
            .env("CI", "1")
            .output()
            .unwrap();
        assert_eq!(plan.status.code(), Some(1), "{}", stderr(&plan));
        snapshot::stable(&[(tmp.path(), "[TMP]")])
            .bind(|| insta::assert_snapshot!(name, snapshot::error_message(&plan)));
    }
}

/// Two builds at once on one cache, writing beside each other: each one's
/// sweep must leave the other's live staging alone, and both succeed with
/// the same digest and leave nothing behind.
#[test]
fn concurrent_builds_on_one_cache_and_one_output_dir_both_succeed() {
    let ws = Workspace::new();
    let start = |name: &str| {
        build_cmd(
            &recipe("distroless-base.toml"),
            &ws.out().join(name),
            &ws.cache(),
        )
        .args(["--baseurl", &format!("fedora={}", fixture_file_url())])
        .args(["--no-gpgcheck", "fedora"])
        .env("TMPDIR", ws.tmpdir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (start("a.tar"), start("b.tar"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(digest_of(&a), digest_of(&b));
    let mut left: Vec<String> = ws.debris();
    // The outputs: the images and their SBOM and provenance.
    let outputs: Vec<String> = ["a.tar", "b.tar"]
        .iter()
        .flat_map(|i| {
            [
                i.to_string(),
                format!("{i}.spdx.json"),
                format!("{i}.intoto.json"),
            ]
        })
        .collect();
    left.retain(|n| !outputs.contains(n));
    assert_eq!(left, Vec::<String>::new());
}

/// A mirror serving a primary.xml with one Latin-1 byte: the error names the
/// byte offset, the package before it, the URL and what to do, and the run
/// changes nothing outside its cache.
#[test]
fn invalid_utf8_in_primary_names_the_byte_the_package_and_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new();
    let repo = tmp.path().join("repo");
    one_package_repo(&repo, "first", b"not read");
    let mut primary = fs::read(repo.join("repodata/primary.xml")).unwrap();
    let end = primary.len() - "</metadata>\n".len();
    let tail = b"<package type=\"rpm\"><summary>caf\xe9</summary></package>\n</metadata>\n";
    primary.truncate(end);
    primary.extend_from_slice(tail);
    let at = end + tail.iter().position(|&b| b == 0xe9).unwrap();
    write_repodata(&repo, &primary);
    let server = Server::serve(&repo);
    let recipe = write_recipe(tmp.path(), "first");
    let cache = tmp.path().join("cache");

    let plan = minibuild()
        .args(["plan", "--cache-dir"])
        .arg(&cache)
        .arg(&recipe)
        .args(["--baseurl", &format!("hostile={}/", server.url)])
        .env("CI", "1")
        .output()
        .unwrap();
    let err = stderr(&plan);
    assert_eq!(plan.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("not valid UTF-8 at byte {at} ")),
        "{err}"
    );
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("primary_not_utf8", snapshot::error_message(&plan)));
    canary.check();
}

/// Recipe mistakes found before any fetch: a misspelt gpgkey key and a
/// Latin-1 byte, each placed at file:line:col with the rule and a hint.
#[test]
fn recipe_gpgkey_typo_and_non_utf8_are_placed() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), "x");
    let text = fs::read_to_string(&recipe).unwrap().replace(
        "gpgcheck = false\n",
        "gpgkey = { url = \"https://k.invalid/key\", fingerprnt = \"AB\" }\n",
    );
    fs::write(&recipe, &text).unwrap();
    let line = 1 + text[..text.find("gpgkey").unwrap()].matches('\n').count();
    let out = minibuild().arg("plan").arg(&recipe).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = snapshot::error_message(&out);
    assert!(err.contains(&format!("recipe.toml:{line}:10: ")), "{err}");
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("recipe_gpgkey_typo", err));

    let mut bytes = text.into_bytes();
    let at = bytes.windows(3).position(|w| w == b"= \"").unwrap() + 3; // name = "t"
    bytes[at] = 0xe9;
    fs::write(&recipe, &bytes).unwrap();
    let out = minibuild().arg("plan").arg(&recipe).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = snapshot::error_message(&out);
    assert!(err.contains(&format!("offset {at}")), "{err}");
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("recipe_not_utf8", err));
}

/// The owner tag of a process that has certainly exited.
fn dead_tag() -> String {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let stat = fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    let tag = format!(
        "{}.{}",
        child.id(),
        after.split_whitespace().nth(19).unwrap()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    tag
}

/// Issue 13.3: what a SIGKILL leaves in the cache (downloads in progress,
/// layer-cache temporaries), beside a `--rootfs` DIR and beside a lock file
/// is swept by the next run when its owner is gone, and nothing else is:
/// not a look-alike of a live owner (this test), not a name without an owner.
#[test]
fn stale_partials_rootfs_and_lock_temporaries_are_swept_only_when_their_owner_is_gone() {
    let canary = Canary::new();
    let ws = Workspace::new();
    let (dead, live) = (dead_tag(), own_tag());
    let cache = ws.cache().join("v1");
    let side = ws.tmp.path().join("side");
    let plant = |path: PathBuf| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "x").unwrap();
        path
    };
    let mut swept = Vec::new();
    let mut kept = Vec::new();
    for bucket in ["rpms", "repodata", "repomd", "layers"] {
        swept.push(plant(
            cache.join(format!("{bucket}/.partial-{dead}-a1B2c3")),
        ));
        kept.push(plant(
            cache.join(format!("{bucket}/.partial-{live}-a1B2c3")),
        ));
        kept.push(plant(cache.join(format!("{bucket}/.partial-{dead}"))));
    }
    swept.push(plant(
        cache.join(format!("layers/.minibuild-{dead}-d4E5f6")),
    ));
    for base in [".minibuild-rootfs-", ".minibuild-rootfs-old-"] {
        let d = side.join(format!("{base}{dead}-g7H8i9"));
        plant(d.join("usr/bin/sh"));
        swept.push(d);
        let d = side.join(format!("{base}{live}-g7H8i9"));
        plant(d.join("keep"));
        kept.push(d);
    }
    kept.push(plant(side.join(".minibuild-rootfs-notes")));

    let build = run_ok(
        ws.build("oci")
            .arg("--rootfs")
            .arg(side.join("rootfs"))
            .args(["--no-gpgcheck", "fedora"]),
    );
    assert!(side.join("rootfs/.minibuild-rootfs").is_file());
    let err = stderr(&build);
    for s in &swept {
        assert!(!s.exists(), "{} stays", s.display());
        assert!(
            err.contains(&format!(
                "removed {}, left by an interrupted build",
                s.display()
            )),
            "{err}"
        );
    }
    for k in &kept {
        assert!(k.exists(), "{} was removed", k.display());
    }

    // `minibuild lock` writes the lock through a temporary beside it.
    let original = recipe("distroless-base.toml");
    let recipe = ws.tmp.path().join("r.toml");
    fs::copy(&original, &recipe).unwrap();
    std::os::unix::fs::symlink(
        original.parent().unwrap().join("keys"),
        ws.tmp.path().join("keys"),
    )
    .unwrap();
    let stale = plant(ws.tmp.path().join(format!(".minibuild-{dead}-j1K2l3")));
    let alive = plant(ws.tmp.path().join(format!(".minibuild-{live}-j1K2l3")));
    let lock = run_ok(
        minibuild()
            .arg("lock")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(ws.cache())
            .args(["--baseurl", &format!("fedora={}", fixture_file_url())])
            .args(["--no-gpgcheck", "fedora"]),
    );
    assert!(!stale.exists(), "{}", stderr(&lock));
    assert!(alive.exists());
    assert!(ws.tmp.path().join("r.toml.lock").is_file());
    canary.check();
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct TinyTmpfs {
    dir: tempfile::TempDir,
}

impl TinyTmpfs {
    fn mount(size: &str) -> TinyTmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        TinyTmpfs { dir }
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Issue 13.6: a full `$TMPDIR` was reported as a "corrupt payload". It is
/// the host's I/O error, naming the staging directory, with what to do; no
/// package is blamed and nothing is left in `$TMPDIR` or beside the output.
#[test]
fn a_full_tmpdir_is_named_with_a_hint_not_reported_as_a_corrupt_package() {
    assert!(
        is_root(),
        "mounting a tmpfs needs root: run the suite as root, as CI does"
    );
    let canary = Canary::new();
    // With these fixtures, 256k fills up inside a payload copy (where the
    // old code said "corrupt payload"), 2m on a blob's final flush.
    for size in ["256k", "2m"] {
        let tmpfs = TinyTmpfs::mount(size);
        let ws = Workspace::new();
        let out = ws
            .build("oci-archive")
            .args(["--no-gpgcheck", "fedora"])
            .env("TMPDIR", tmpfs.dir.path())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{size}: {err}");
        assert!(!err.contains("corrupt payload"), "{size}: {err}");
        // The room check refuses these sizes before unpacking, from the plan's
        // installed sizes; a disk that fills anyway (metadata that understates
        // them) is reported as the write error, by `staging::write_hint`.
        let mut settings = snapshot::stable(&[(tmpfs.dir.path(), "[TMPDIR]")]);
        settings.add_filter(r"minibuild-rootfs-[^:\s]+", "minibuild-rootfs-[RANDOM]");
        // What the plan installs follows the fixtures' Debian packages; the free
        // space is the tmpfs's size and stays.
        settings.add_filter(r"[\d.]+ MiB (needed|installed)", "[SIZE] $1");
        settings.add_filter(r"\(\d+ > ", "([BYTES] > ");
        settings.bind(|| {
            insta::assert_snapshot!(format!("tmpdir_full_{size}"), snapshot::error_message(&out))
        });
        assert_eq!(listing(tmpfs.dir.path()), Vec::<PathBuf>::new(), "{size}");
        assert_eq!(ws.debris(), Vec::<String>::new(), "{size}");
        assert!(!ws.out().join("image").exists(), "{size}");
    }
    canary.check();
}

/// The manifest digest an OCI layout directory's index.json names.
fn layout_digest(dir: &Path) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).ok()?).ok()?;
    Some(index["manifests"][0]["digest"].as_str()?.to_string())
}

/// Issue 13.4: a SIGKILL right after the image's rename, before its SBOM
/// and provenance are written, once left the new image beside the previous
/// build's SBOM and provenance, describing another image, silently. Now the
/// previous ones go first: whatever moment the kill hits, an SBOM or
/// provenance beside the image describes that image, or is absent.
#[test]
fn a_sigkill_between_the_image_and_its_sbom_never_leaves_a_mismatched_pair() {
    let ws = Workspace::new();
    let image = ws.out().join("image");
    let first = digest_of(&run_ok(
        ws.build("oci").env("SOURCE_DATE_EPOCH", "1700000000"),
    ));
    assert_eq!(layout_digest(&image).as_deref(), Some(first.as_str()));
    let sbom = ws.out().join("image.spdx.json");
    let provenance = ws.out().join("image.intoto.json");
    assert!(fs::read_to_string(&sbom)
        .unwrap()
        .contains(first.trim_start_matches("sha256:")));

    let mut caught_between = 0;
    for attempt in 0..6 {
        // Each attempt a new image (another epoch), killed the moment index.json changes.
        let before = layout_digest(&image);
        let mut child = ws
            .build("oci")
            .env("SOURCE_DATE_EPOCH", (1_700_000_100 + attempt).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while layout_digest(&image) == before && child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the build never replaced the image"
            );
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        let now = layout_digest(&image).expect("an image is always at -o");
        for (what, path) in [("SBOM", &sbom), ("provenance", &provenance)] {
            match fs::read_to_string(path) {
                Ok(text) => assert!(
                    text.contains(now.trim_start_matches("sha256:")),
                    "attempt {attempt} ({status}): the {what} beside image {now} describes another image"
                ),
                Err(_) => caught_between += usize::from(status.code().is_none()),
            }
        }
    }
    // Not asserted (timing), but reported: how often the kill fell in the window.
    eprintln!("kills that fell between the image and its SBOM/provenance: {caught_between}");
}
