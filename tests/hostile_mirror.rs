//! A hostile mirror, end to end: the real binary against a scripted HTTP
//! server on 127.0.0.1 (and a local TLS server for https) that points
//! package locations at local files and internal hosts, redirects out of
//! the policy, to file:// or from https to http, serves endless, trickling
//! or silent bodies and zstd bombs. Each test checks the refusal and its
//! message, that a canary file outside the work directories is unchanged,
//! and that nothing partial is left in the cache or at the output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::server::{Reply, Scripted};
use common::*;
use minibuild::digest::Digest;

const BUSYBOX: &str = "busybox-1.35.0-4.fc40.x86_64.rpm";
const CANARY: &[u8] = b"canary: must never change\n";

/// The fixture repo's directory (x86_64).
fn fixture_repo() -> PathBuf {
    fixtures().join("repo/x86_64")
}

/// The fixture repo's primary.xml, decompressed.
fn fixture_primary() -> String {
    let dir = fixture_repo().join("repodata");
    let zst = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-primary.xml.zst"))
        .expect("fixture primary");
    String::from_utf8(zstd::decode_all(&std::fs::read(zst).unwrap()[..]).unwrap()).unwrap()
}

/// repomd.xml for one primary file at `href` with these bytes; `open_size`
/// as declared (a lie, if the test wants one).
fn repomd(href: &str, bytes: &[u8], open_size: Option<u64>) -> String {
    let open = open_size
        .map(|n| format!("<open-size>{n}</open-size>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1700000000</revision>
<data type="primary"><checksum type="sha256">{}</checksum><location href="{href}"/>
<timestamp>1700000000</timestamp><size>{}</size>{open}</data></repomd>"#,
        Digest::sha256_of(bytes).hex(),
        bytes.len()
    )
}

/// The fixture repo with busybox's `<location href>` replaced by `location`
/// (and its `<size package>` by `size`, if given), as (path, bytes) files.
fn hostile_repo(location: &str, size: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut primary = fixture_primary().replace(
        &format!("<location href=\"{BUSYBOX}\"/>"),
        &format!("<location href=\"{location}\"/>"),
    );
    if let Some(size) = size {
        primary = primary.replace(
            "<size package=\"942403\"",
            &format!("<size package=\"{size}\""),
        );
    }
    let href = "repodata/primary.xml";
    let mut files = vec![
        (href.to_string(), primary.clone().into_bytes()),
        (
            "repodata/repomd.xml".to_string(),
            repomd(href, primary.as_bytes(), None).into_bytes(),
        ),
    ];
    for entry in std::fs::read_dir(fixture_repo()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rpm") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    files
}

fn serve(server: &Scripted, prefix: &str, files: &[(String, Vec<u8>)]) {
    for (path, bytes) in files {
        server.route(&format!("{prefix}/{path}"), Reply::Bytes(bytes.clone()));
    }
}

/// A work area: the recipe, cache and output live in `work/`; the canary
/// lives beside it, outside every directory minibuild may write.
struct Area {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    canary: PathBuf,
}

impl Area {
    fn new() -> Area {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let work = root.join("work");
        std::fs::create_dir(&work).unwrap();
        let canary = root.join("canary");
        std::fs::write(&canary, CANARY).unwrap();
        Area {
            _tmp: tmp,
            root,
            work,
            canary,
        }
    }

    fn recipe(&self, baseurl: &str) -> PathBuf {
        let path = self.work.join("app.toml");
        std::fs::write(
            &path,
            format!(
                "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"mirror\"\nbaseurl = \"{baseurl}\"\ngpgcheck = false\n\n[packages]\ninstall = [\"busybox\"]\n"
            ),
        )
        .unwrap();
        path
    }

    fn output(&self) -> PathBuf {
        self.work.join("app.oci.tar")
    }

    fn cache(&self) -> PathBuf {
        self.work.join("cache")
    }

    fn build(&self, baseurl: &str, extra: &[&str]) -> Output {
        build_cmd(&self.recipe(baseurl), &self.output(), &self.cache())
            .arg("--no-lock")
            .env("MINIBUILD_TIMEOUT", "2")
            .args(extra)
            .output()
            .unwrap()
    }

    fn plan(&self, baseurl: &str, extra: &[&str]) -> Output {
        minibuild()
            .arg("plan")
            .arg(self.recipe(baseurl))
            .arg("--cache-dir")
            .arg(self.cache())
            .arg("--no-lock")
            .env("MINIBUILD_TIMEOUT", "2")
            .args(extra)
            .env("CI", "1")
            .output()
            .unwrap()
    }

    fn policy(&self, allow: &[&str]) -> PathBuf {
        let path = self.work.join("policy.toml");
        let list: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
        std::fs::write(&path, format!("allow_repos = [{}]\n", list.join(", "))).unwrap();
        path
    }

    /// The refusal left no trace: canary intact, no image, no partial file
    /// nor any RPM in the cache, nothing new beside `work/`.
    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read(&self.canary).unwrap(),
            CANARY,
            "canary changed"
        );
        assert!(!self.output().exists(), "an image was written");
        let mut stray = Vec::new();
        walk(&self.cache(), &mut stray);
        stray.retain(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".partial") || name.ends_with(".rpm")
        });
        assert!(stray.is_empty(), "left in the cache: {stray:?}");
        let mut top: Vec<String> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(
            top,
            ["canary", "work"],
            "something was written beside the work dir"
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The run failed and its stderr holds every needle.
fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a refusal, got success:\n{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

// ---- 4. Locations and policy --------------------------------------------

/// `<location href="file:///…">` in a remote repo: the build never opens the
/// local file (it used to hash it and print the digest).
#[test]
fn a_remote_location_naming_a_local_file_is_refused() {
    let area = Area::new();
    let server = Scripted::start();
    let target = format!("file://{}", area.canary.display());
    serve(&server, "repo", &hostile_repo(&target, None));
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    let stderr = refused(
        &out,
        &["busybox", "file:// is only allowed from a file:// repo"],
    );
    assert!(
        !stderr.contains(&Digest::sha256_of(CANARY).hex().to_string()),
        "{stderr}"
    );
    area.assert_untouched();
}

/// `../` out of the base, spelled plainly or percent-encoded, is refused
/// before any request leaves.
#[test]
fn a_location_leaving_the_repo_base_is_refused() {
    for location in ["../secret/x.rpm", "Packages/%2e%2e/%2E%2E/secret/x.rpm"] {
        let area = Area::new();
        let server = Scripted::start();
        server.route("secret/x.rpm", Reply::Bytes(b"stolen".to_vec()));
        serve(&server, "repo", &hostile_repo(location, None));
        let out = area.build(&format!("{}/repo/", server.url), &[]);
        refused(&out, &["leaves the repo's base", "busybox"]);
        assert!(
            !server.requests().iter().any(|p| p.contains("secret")),
            "{:?}",
            server.requests()
        );
        area.assert_untouched();
    }
}

/// An `http://internal/…` location (here another loopback server) in a
/// remote repo goes through `--policy`: `plan`, which reads headers with
/// Range requests, sends it nothing.
#[test]
fn an_internal_url_in_metadata_goes_through_the_policy() {
    let area = Area::new();
    let server = Scripted::start();
    let internal = Scripted::start();
    internal.route("admin/x.rpm", Reply::Bytes(b"secret".to_vec()));
    serve(
        &server,
        "repo",
        &hostile_repo(&format!("{}/admin/x.rpm", internal.url), None),
    );
    let base = format!("{}/repo/", server.url);
    let policy = area.policy(&[&base]);
    let out = area.plan(&base, &["--policy", policy.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("outside the policy's allow_repos"),
        "{stderr}"
    );
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
    let out = area.build(&base, &["--policy", policy.to_str().unwrap()]);
    refused(
        &out,
        &["allow_repos", &format!("{}/admin/x.rpm", internal.url)],
    );
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
    area.assert_untouched();
}

/// Dot segments, encoded dots and default ports do not get a base URL past
/// `allow_repos`: refused before any request.
#[test]
fn allow_repos_is_matched_after_normalising() {
    let server = Scripted::start();
    serve(&server, "evil", &hostile_repo(BUSYBOX, None));
    let area = Area::new();
    let policy = area.policy(&[&format!("{}/allowed/", server.url), "file:///mirror/"]);
    for base in [
        format!("{}/allowed/../evil/", server.url),
        format!("{}/allowed/%2e%2e/evil/", server.url),
        "file:///mirror/../outside/".to_string(),
    ] {
        let out = area.build(&base, &["--policy", policy.to_str().unwrap()]);
        refused(&out, &["not allowed by the policy", "allow_repos"]);
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    area.assert_untouched();
}

/// A redirect from an allowed mirror to a host the policy does not list is
/// not followed.
#[test]
fn a_redirect_out_of_the_policy_is_refused() {
    let area = Area::new();
    let allowed = Scripted::start();
    let evil = Scripted::start();
    serve(&evil, "repo", &hostile_repo(BUSYBOX, None));
    allowed.route(
        "repo/repodata/repomd.xml",
        Reply::Redirect(format!("{}/repo/repodata/repomd.xml", evil.url)),
    );
    let base = format!("{}/repo/", allowed.url);
    let policy = area.policy(&[&base]);
    let out = area.build(&base, &["--policy", policy.to_str().unwrap()]);
    refused(&out, &["allow_repos", &evil.url]);
    assert!(evil.requests().is_empty(), "{:?}", evil.requests());
    area.assert_untouched();
}

// ---- 5. A redirect to file:// -------------------------------------------

#[test]
fn a_redirect_to_a_local_file_is_a_clear_refusal() {
    let area = Area::new();
    let server = Scripted::start();
    serve(&server, "repo", &hostile_repo(BUSYBOX, None));
    server.route(
        &format!("repo/{BUSYBOX}"),
        Reply::Redirect(format!("file://{}", area.canary.display())),
    );
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(&out, &[]);
    snapshot::stable(&[(&area.root, "[TMP]")])
        .bind(|| insta::assert_snapshot!("redirect_to_file", snapshot::error_message(&out)));
    area.assert_untouched();
}

// ---- 2. Resource bounds -------------------------------------------------

/// A primary.xml.zst of a few hundred KiB that expands to 4 GiB (zstd
/// frames of `<x/>` repeated; the repomd.xml lies about open-size too) is
/// cut off, naming the URL, long before memory runs out.
#[test]
fn a_zstd_bomb_primary_is_refused_naming_its_url() {
    let area = Area::new();
    let server = Scripted::start();
    // 1 MiB text elements: cheap to parse, so the test times the bound,
    // not the parser.
    let mut chunk = b"<x>".to_vec();
    chunk.resize((1 << 20) - 4, b'a');
    chunk.extend_from_slice(b"</x>");
    let frame = zstd::encode_all(&chunk[..], 19).unwrap();
    let mut bomb =
        zstd::encode_all(&b"<?xml version=\"1.0\"?><metadata packages=\"1\">"[..], 3).unwrap();
    for _ in 0..4096 {
        bomb.extend_from_slice(&frame);
    }
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let href = "repodata/bomb-primary.xml.zst";
    server.route(&format!("repo/{href}"), Reply::Bytes(bomb.clone()));
    server.route(
        "repo/repodata/repomd.xml",
        Reply::Bytes(repomd(href, &bomb, Some(4 << 30)).into_bytes()),
    );
    let started = Instant::now();
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(
        &out,
        &[
            &format!("{}/repo/{href}", server.url),
            "expands past",
            "compressed bytes",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    area.assert_untouched();
}

/// An RPM whose body never ends is cut off at the size primary.xml
/// declares; nothing is left in the cache.
#[test]
fn an_endless_rpm_is_cut_off_at_its_declared_size() {
    let area = Area::new();
    let server = Scripted::start();
    serve(&server, "repo", &hostile_repo(BUSYBOX, None));
    server.route(&format!("repo/{BUSYBOX}"), Reply::Endless);
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(
        &out,
        &[
            &format!("{}/repo/{BUSYBOX}", server.url),
            "more than 942403 bytes",
        ],
    );
    let sent = server.sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
    area.assert_untouched();
}

/// An RPM whose bytes do not hash to primary.xml's checksum (one byte
/// flipped, same size): the error names the package, the URL and both
/// digests, and nothing is left in the cache or at the output.
#[test]
fn an_rpm_with_a_bad_checksum_is_named_with_both_digests() {
    let area = Area::new();
    let server = Scripted::start();
    serve(&server, "repo", &hostile_repo(BUSYBOX, None));
    let mut rpm = std::fs::read(fixture_repo().join(BUSYBOX)).unwrap();
    *rpm.last_mut().unwrap() ^= 0xff;
    server.route(&format!("repo/{BUSYBOX}"), Reply::Bytes(rpm));
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(&out, &[]);
    // The digests and size follow the fixture's busybox (a Debian point release).
    let mut settings = snapshot::stable(&[(&area.root, "[TMP]")]);
    settings.add_filter(r"[0-9a-f]{64}", "[SHA256]");
    settings.add_filter(r"\(\d+ bytes\)", "([N] bytes)");
    settings.bind(|| insta::assert_snapshot!("rpm_bad_checksum", snapshot::error_message(&out)));
    area.assert_untouched();
}

/// A package declared larger than the cache filesystem's free space is
/// refused before it is requested, saying how much is needed.
#[test]
fn a_download_larger_than_the_free_space_is_refused_before_it_starts() {
    let area = Area::new();
    let server = Scripted::start();
    serve(
        &server,
        "repo",
        &hostile_repo(BUSYBOX, Some("1000000000000000000")),
    );
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(
        &out,
        &["1000000000000000000 bytes", "free on the cache filesystem"],
    );
    assert!(
        !server.requests().iter().any(|p| p.ends_with(BUSYBOX)),
        "{:?}",
        server.requests()
    );
    area.assert_untouched();
}

/// repomd.xml (a small file) that never ends stops at the small-file cap.
#[test]
fn an_endless_repomd_stops_at_the_small_file_cap() {
    let area = Area::new();
    let server = Scripted::start();
    server.route("repo/repodata/repomd.xml", Reply::Endless);
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(
        &out,
        &[
            &format!("{}/repo/repodata/repomd.xml", server.url),
            "more than 4194304 bytes",
        ],
    );
    area.assert_untouched();
}

/// `plan` reads headers with Range requests; a signature header claiming
/// 4 GiB is refused from its 16-byte intro, and nothing more is asked for.
#[test]
fn plan_refuses_an_absurd_signature_header_size() {
    let area = Area::new();
    let server = Scripted::start();
    serve(&server, "repo", &hostile_repo(BUSYBOX, None));
    let mut rpm = std::fs::read(fixture_repo().join(BUSYBOX)).unwrap();
    // The signature intro follows the 96-byte lead: magic, reserved, count, size.
    rpm[96 + 12..96 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    server.route(&format!("repo/{BUSYBOX}"), Reply::Bytes(rpm));
    let out = area.plan(&format!("{}/repo/", server.url), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signature header") && stderr.contains("implausibly large"),
        "{stderr}"
    );
    let rpm_requests = server
        .requests()
        .iter()
        .filter(|p| p.ends_with(BUSYBOX))
        .count();
    assert_eq!(rpm_requests, 1, "{:?}", server.requests());
    assert!(server.sent.load(std::sync::atomic::Ordering::SeqCst) < 1 << 20);
    area.assert_untouched();
}

// ---- 3. Deadlines --------------------------------------------------------

/// A server trickling repomd.xml a byte at a time (never silent long enough
/// for the idle timeout) is cut off by the overall deadline.
#[test]
fn a_trickling_server_is_cut_off_by_the_deadline() {
    let area = Area::new();
    let server = Scripted::start();
    let files = hostile_repo(BUSYBOX, None);
    let repomd = files
        .iter()
        .find(|(p, _)| p.ends_with("repomd.xml"))
        .unwrap();
    server.route(
        "repo/repodata/repomd.xml",
        Reply::Trickle(repomd.1.clone(), Duration::from_millis(200)),
    );
    let started = Instant::now();
    let out = area.build(&format!("{}/repo/", server.url), &[]);
    refused(
        &out,
        &[
            &format!("{}/repo/repodata/repomd.xml", server.url),
            "did not finish within 2s",
            "--timeout",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    area.assert_untouched();
}

/// A server that accepts and never answers is given up on after the
/// timeout (and its retries), with the URL in the error.
#[test]
fn a_silent_server_times_out() {
    let area = Area::new();
    let server = Scripted::start();
    server.route("repo/repodata/repomd.xml", Reply::Silent);
    let started = Instant::now();
    let out = area.build(&format!("{}/repo/", server.url), &["--timeout", "1"]);
    refused(
        &out,
        &[
            &format!("{}/repo/repodata/repomd.xml", server.url),
            "--timeout",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    area.assert_untouched();
}

/// In a file:// repo, a location that is a FIFO must not block the build,
/// and a directory gets a clear error rather than "connection dropped".
#[test]
fn a_fifo_or_directory_location_in_a_file_repo_is_refused() {
    for (name, kind) in [("pipe.rpm", "FIFO"), ("dir.rpm", "directory")] {
        let area = Area::new();
        let repo = area.work.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        for (path, bytes) in hostile_repo(name, None) {
            let dest = repo.join(&path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
        if kind == "FIFO" {
            run_ok(std::process::Command::new("mkfifo").arg(repo.join(name)));
        } else {
            std::fs::create_dir(repo.join(name)).unwrap();
        }
        let started = Instant::now();
        let out = area.build(&format!("file://{}/", repo.display()), &[]);
        refused(&out, &[]);
        assert!(started.elapsed() < Duration::from_secs(30));
        snapshot::stable(&[(&area.root, "[TMP]")]).bind(|| {
            insta::assert_snapshot!(
                format!("location_is_a_{}", kind.to_lowercase()),
                snapshot::error_message(&out)
            )
        });
        area.assert_untouched();
    }
}

// ---- 1. https: trust and downgrade ----------------------------------------

/// A throwaway CA and a server certificate for 127.0.0.1, made with openssl.
fn make_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    require_tool("openssl");
    let ossl = |args: &[&str]| {
        run_ok(
            std::process::Command::new("openssl")
                .current_dir(dir)
                .args(args),
        );
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=minibuild test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// `openssl s_server -HTTP` on a free loopback port, serving `root`, whose
/// files hold whole HTTP responses. Killed when dropped.
struct TlsServer {
    child: std::process::Child,
    url: String,
}

impl TlsServer {
    fn start(root: &Path, cert: &Path, key: &Path) -> TlsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .current_dir(root)
            .args(["s_server", "-quiet", "-HTTP", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write `bytes` at `root/path` as a complete HTTP/1.0 response.
fn put_response(root: &Path, path: &str, head: &str, bytes: &[u8]) {
    let dest = root.join(path);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let mut all = format!("{head}\r\nContent-Length: {}\r\n\r\n", bytes.len()).into_bytes();
    all.extend_from_slice(bytes);
    std::fs::write(dest, all).unwrap();
}

/// `--ca` reaches mirrors: an https repo signed by a private CA loads; and
/// the same repo redirecting its packages to plain http is refused.
#[test]
fn https_repos_trust_ca_and_refuse_a_downgrade_to_http() {
    let area = Area::new();
    let pki = area.work.join("pki");
    std::fs::create_dir(&pki).unwrap();
    let (ca, cert, key) = make_ca(&pki);
    let www = area.work.join("www");
    let files = hostile_repo(BUSYBOX, None);
    for (path, bytes) in &files {
        put_response(&www, &format!("repo/{path}"), "HTTP/1.0 200 OK", bytes);
    }
    let plain = Scripted::start();
    serve(&plain, "repo", &files);
    put_response(
        &www,
        &format!("repo/{BUSYBOX}"),
        &format!(
            "HTTP/1.0 302 Found\r\nLocation: {}/repo/{BUSYBOX}",
            plain.url
        ),
        b"",
    );
    let tls = TlsServer::start(&www, &cert, &key);
    let base = format!("{}/repo/", tls.url);

    // Without the CA the handshake fails, and the error says what to try.
    let out = area.build(&base, &[]);
    refused(&out, &["TLS", "--ca"]);

    let out = area.build(&base, &["--ca", ca.to_str().unwrap()]);
    refused(&out, &["downgrades https to plain http", "busybox"]);
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
    // The metadata did load over https with the CA: it is in the cache.
    let mut cached = Vec::new();
    walk(&area.cache().join("v1/repodata"), &mut cached);
    assert!(!cached.is_empty());
    std::fs::remove_dir_all(&pki).unwrap();
    std::fs::remove_dir_all(&www).unwrap();
    area.assert_untouched();
}
