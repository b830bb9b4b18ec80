//! Repositories as dnf users write them, end to end against the fixture repo
//! on 127.0.0.1: a metalink (a stale mirror refused by its hashes, or every
//! mirror refused), a mirrorlist whose first mirror is dead, and a `.repo`
//! file with several sections and variables. Each image must have the same
//! digest as the same recipe built with `--baseurl` pointing straight at the
//! good mirror: which mirror served the packages is provenance, not content.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::server::{Reply, Scripted};
use common::{build_cmd, fixtures, last_line, run_ok};
use minibuild::digest::Digest;

/// The fixture repo for x86_64 served at `good/40/x86_64/`, and a stale copy
/// of its repomd.xml (valid, but not the one the metalink publishes) at
/// `stale/40/x86_64/`.
fn mirrors() -> Scripted {
    let server = Scripted::start();
    let repo = fixtures().join("repo/x86_64");
    server.route_dir("good/40/x86_64", &repo);
    let mut stale = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    stale.extend_from_slice(b"<!-- an older sync -->\n");
    server.route("stale/40/x86_64/repodata/repomd.xml", Reply::Bytes(stale));
    server
}

fn repomd_digest() -> Digest {
    Digest::sha256_of(&std::fs::read(fixtures().join("repo/x86_64/repodata/repomd.xml")).unwrap())
}

/// A MirrorManager metalink naming `mirrors` (base URL, preference) and
/// accepting `hashes` (the current one, then an alternate).
fn metalink(mirrors: &[(&str, u32)], hashes: [&Digest; 2]) -> Vec<u8> {
    let urls: String = mirrors
        .iter()
        .map(|(m, pref)| {
            format!(
                "<url protocol=\"http\" type=\"http\" location=\"XX\" preference=\"{pref}\">{m}repodata/repomd.xml</url>\n"
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1713225600</mm0:timestamp>
   <verification><hash type="md5">00000000000000000000000000000000</hash><hash type="sha256">{}</hash></verification>
   <mm0:alternates><mm0:alternate><verification><hash type="sha256">{}</hash></verification></mm0:alternate></mm0:alternates>
   <resources maxconnections="1">
{urls}   </resources>
  </file>
 </files>
</metalink>
"#,
        hashes[0].hex(),
        hashes[1].hex()
    )
    .into_bytes()
}

fn write_recipe(dir: &Path, repos: &str) -> PathBuf {
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\narch = [\"x86_64\"]\n[options]\nreleasever = \"40\"\n{repos}\n[packages]\ninstall = [\"busybox\"]\n"
        ),
    )
    .unwrap();
    path
}

fn build(recipe: &Path, dir: &Path, label: &str, extra: &[&str]) -> Output {
    let out = dir.join(format!("{label}.oci.tar"));
    run_ok(
        build_cmd(recipe, &out, &dir.join(format!("cache-{label}")))
            .arg("--provenance")
            .arg(dir.join(format!("{label}.intoto.json")))
            .args(extra)
            // dnf's variable `$stream`, for the .repo file test.
            .env("DNF_VAR_stream", "40"),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The provenance's dependency for repo `name`.
fn provenance_repo(dir: &Path, label: &str, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(format!("{label}.intoto.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == format!("repo:{name}:x86_64"))
        .unwrap_or_else(|| panic!("no repo:{name} in {text}"))
        .clone()
}

#[test]
fn metalink_refuses_a_stale_mirror_and_uses_a_verified_one() {
    let server = mirrors();
    let (good, stale) = (
        format!("{}/good/40/x86_64/", server.url),
        format!("{}/stale/40/x86_64/", server.url),
    );
    let older = Digest::sha256_of(b"an older repomd.xml");
    server.route(
        "mm/metalink?repo=fedora-40&arch=x86_64",
        Reply::Bytes(metalink(
            &[(&stale, 100), (&good, 90)],
            [&repomd_digest(), &older],
        )),
    );
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &format!(
            "[[repo]]\nname = \"fedora\"\nmetalink = \"{}/mm/metalink?repo=fedora-$releasever&arch=$basearch\"\ngpgcheck = false\n",
            server.url
        ),
    );
    let via = build(&recipe, tmp.path(), "metalink", &[]);
    let log = stderr(&via);
    assert!(
        log.contains(&format!("mirror {stale} passed over"))
            && log.contains("matches none of the 2 hash(es) the metalink"),
        "{log}"
    );
    // The stale mirror gave its repomd.xml and nothing more.
    let requests = server.requests();
    let from_stale: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("stale/"))
        .collect();
    assert_eq!(from_stale, ["stale/40/x86_64/repodata/repomd.xml"]);
    assert!(requests
        .iter()
        .any(|r| r.starts_with("good/40/x86_64/Packages/") || r.ends_with(".rpm")));
    let dep = provenance_repo(tmp.path(), "metalink", "fedora");
    assert_eq!(dep["uri"], format!("{good}repodata/repomd.xml"));
    assert_eq!(
        dep["annotations"]["mirrorSource"],
        format!("{}/mm/metalink?repo=fedora-40&arch=x86_64", server.url)
    );
    assert_eq!(dep["digest"]["sha256"], repomd_digest().hex());

    let direct = build(
        &recipe,
        tmp.path(),
        "direct",
        &["--baseurl", &format!("fedora={good}")],
    );
    assert_eq!(last_line(&via), last_line(&direct));
    assert!(last_line(&via).starts_with("sha256:"));

    // Locked: the build reads no metadata, but still fetches only from a
    // mirror whose repomd.xml the metalink vouches for.
    run_ok(
        common::minibuild()
            .arg("lock")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache-lock")),
    );
    let lock = std::fs::read_to_string(tmp.path().join("r.toml.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "baseurl = \"{}/mm/metalink?repo=fedora-$releasever&arch=$basearch\"",
            server.url
        )),
        "{lock}"
    );
    let before = server.requests().len();
    let locked = build(&recipe, tmp.path(), "locked", &[]);
    let requests = server.requests()[before..].to_vec();
    assert!(
        requests.iter().all(|r| !r.contains("primary")),
        "a locked build reads no package metadata: {requests:?}"
    );
    assert!(
        requests.iter().filter(|r| r.starts_with("stale/")).count() == 1
            && requests
                .iter()
                .any(|r| r.starts_with("good/") && r.ends_with(".rpm")),
        "{requests:?}"
    );
    let locked_direct = build(
        &recipe,
        tmp.path(),
        "locked-direct",
        &["--baseurl", &format!("fedora={good}")],
    );
    assert_eq!(last_line(&locked), last_line(&locked_direct));
}

#[test]
fn metalink_whose_hashes_match_no_mirror_is_an_error_naming_each() {
    let server = mirrors();
    let (good, stale) = (
        format!("{}/good/40/x86_64/", server.url),
        format!("{}/stale/40/x86_64/", server.url),
    );
    let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
    server.route(
        "mm/metalink",
        Reply::Bytes(metalink(&[(&good, 100), (&stale, 90)], [&a, &b])),
    );
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &format!(
            "[[repo]]\nname = \"fedora\"\nmetalink = \"{}/mm/metalink\"\ngpgcheck = false\n",
            server.url
        ),
    );
    let out = build_cmd(
        &recipe,
        &tmp.path().join("x.oci.tar"),
        &tmp.path().join("cache"),
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let log = stderr(&out);
    assert!(
        log.contains(&format!(
            "repo `fedora`: no mirror from {}/mm/metalink serves usable metadata; tried:",
            server.url
        )),
        "{log}"
    );
    for m in [&good, &stale] {
        assert!(
            log.contains(&format!("\n    {m}: ")),
            "{m} not named: {log}"
        );
    }
    assert!(log.contains("matches none of the 2 hash(es)"), "{log}");
    assert!(
        log.contains("hint: ") && log.contains("--baseurl fedora=URL"),
        "{log}"
    );
    // Nothing past repomd.xml was trusted: no primary, no package fetched.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.contains("primary") && !r.ends_with(".rpm")),
        "{:?}",
        server.requests()
    );
    assert!(!tmp.path().join("x.oci.tar").exists());
}

/// A loopback URL where nothing listens (bound, then released).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/fedora/$releasever/$basearch/")
}

#[test]
fn mirrorlist_falls_back_past_a_dead_mirror() {
    let server = mirrors();
    let good = format!("{}/good/40/x86_64/", server.url);
    let dead = dead_url();
    server.route(
        "mirrorlist/fedora-40",
        Reply::Bytes(
            format!(
                "# mirrors of fedora 40\n\n{dead}\n{}/good/$releasever/$basearch/\n",
                server.url
            )
            .into_bytes(),
        ),
    );
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &format!(
            "[[repo]]\nname = \"fedora\"\nmirrorlist = \"{}/mirrorlist/fedora-$releasever\"\ngpgcheck = false\n",
            server.url
        ),
    );
    let via = build(&recipe, tmp.path(), "mirrorlist", &[]);
    let log = stderr(&via);
    let dead = dead
        .replace("$releasever", "40")
        .replace("$basearch", "x86_64");
    assert!(log.contains(&format!("mirror {dead} passed over")), "{log}");
    assert_eq!(
        provenance_repo(tmp.path(), "mirrorlist", "fedora")["uri"],
        format!("{good}repodata/repomd.xml")
    );
    let direct = build(
        &recipe,
        tmp.path(),
        "direct",
        &["--baseurl", &format!("fedora={good}")],
    );
    assert_eq!(last_line(&via), last_line(&direct));
}

#[test]
fn repo_file_with_sections_and_variables() {
    let server = mirrors();
    let good = format!("{}/good/40/x86_64/", server.url);
    server.route(
        "mm/metalink?repo=fedora-40&arch=x86_64",
        Reply::Bytes(metalink(
            &[(&good, 100)],
            [&repomd_digest(), &repomd_digest()],
        )),
    );
    server.route(
        "mirrorlist/pub-40",
        Reply::Bytes(format!("{}/good/$releasever/$basearch/\n", server.url).into_bytes()),
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("yum.repos.d")).unwrap();
    std::fs::write(
        tmp.path().join("yum.repos.d/fedora.repo"),
        format!(
            "[fedora]\n\
             name=Fedora $releasever - $basearch\n\
             #baseurl=http://download.example/pub/fedora/linux/releases/$releasever/Everything/$basearch/os/\n\
             metalink={url}/mm/metalink?repo=fedora-$releasever&arch=$basearch\n\
             enabled=1\n\
             countme=1\n\
             gpgcheck=0\n\
             skip_if_unavailable=False\n\
             \n\
             [updates]\n\
             name=Fedora $releasever - $basearch - Updates\n\
             mirrorlist={url}/mirrorlist/${{contentdir}}-$stream\n\
             gpgcheck=0\n\
             priority=50\n\
             \n\
             [updates-testing]\n\
             name=Fedora $releasever - $basearch - Test Updates\n\
             baseurl=http://127.0.0.1:1/testing/$releasever/$basearch/\n\
             enabled=0\n",
            url = server.url
        ),
    )
    .unwrap();
    let recipe = write_recipe(
        tmp.path(),
        "[[repo]]\nfrom = \"yum.repos.d/fedora.repo\"\nvars = { contentdir = \"pub\" }\n",
    );
    let via = build(&recipe, tmp.path(), "repofile", &[]);
    let log = stderr(&via);
    let file = tmp.path().join("yum.repos.d/fedora.repo");
    for warning in [
        format!("{}:6: [fedora] countme is ignored", file.display()),
        format!(
            "{}:8: [fedora] skip_if_unavailable is ignored",
            file.display()
        ),
        format!(
            "{}:16: [updates-testing] is disabled (enabled=0); left out",
            file.display()
        ),
    ] {
        assert!(log.contains(&warning), "missing `{warning}` in:\n{log}");
    }
    assert_eq!(
        provenance_repo(tmp.path(), "repofile", "updates")["annotations"]["mirrorSource"],
        format!("{}/mirrorlist/pub-40", server.url)
    );
    let direct = build(
        &recipe,
        tmp.path(),
        "direct",
        &[
            "--baseurl",
            &format!("fedora={good}"),
            "--baseurl",
            &format!("updates={good}"),
        ],
    );
    assert_eq!(last_line(&via), last_line(&direct));

    // An error in the file names it, the line, the section and the key.
    std::fs::write(&file, "[fedora]\nbaseurl=https://m/$infra/\ngpgcheck=0\n").unwrap();
    let bad = build_cmd(
        &recipe,
        &tmp.path().join("bad.oci.tar"),
        &tmp.path().join("cache-bad"),
    )
    .output()
    .unwrap();
    let log = stderr(&bad);
    assert!(!bad.status.success());
    assert!(
        log.contains(&format!(
            "{}:2:1: [fedora] baseurl: unknown variable `$infra`",
            file.display()
        )),
        "{log}"
    );
}

#[test]
fn mirrors_from_a_metalink_stay_inside_the_policy_fence() {
    let server = mirrors();
    let good = format!("{}/good/40/x86_64/", server.url);
    // The best mirror is valid (its repomd.xml matches) but outside the policy.
    server.route_dir("elsewhere/40/x86_64", &fixtures().join("repo/x86_64"));
    let elsewhere = format!("{}/elsewhere/40/x86_64/", server.url);
    server.route(
        "mm/metalink",
        Reply::Bytes(metalink(
            &[(&elsewhere, 100), (&good, 90)],
            [&repomd_digest(), &repomd_digest()],
        )),
    );
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &format!(
            "[[repo]]\nname = \"fedora\"\nmetalink = \"{}/mm/metalink\"\ngpgcheck = false\n",
            server.url
        ),
    );
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "allow_repos = [\"{}/mm/\", \"{}/good/\"]\n",
            server.url, server.url
        ),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();
    let fenced = build(&recipe, tmp.path(), "fenced", &["--policy", policy_arg]);
    let log = stderr(&fenced);
    assert!(
        log.contains(&format!("mirror {elsewhere} passed over")),
        "{log}"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.starts_with("elsewhere/")),
        "the fence refuses before any request: {:?}",
        server.requests()
    );
    assert_eq!(
        provenance_repo(tmp.path(), "fenced", "fedora")["uri"],
        format!("{good}repodata/repomd.xml")
    );
}
