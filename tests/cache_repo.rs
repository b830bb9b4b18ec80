//! `build --cache-repo`: two "machines" (two empty cache dirs) share RPMs
//! and layers through Debian's `docker-registry` on 127.0.0.1, the fixture
//! repo served by a loopback mirror that logs every request. Machine B
//! must not fetch a single RPM from the mirror and must produce the same
//! digest; a poisoned entry (RPM or layer) must be refused, named, and
//! replaced from the mirror or the compressor; a dead or locked cache repo
//! is only a warning.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::registry::Registry;
use common::server::{Handled, Response};
use common::*;
use minibuild::cache_repo::{rpm_tag, ARTIFACT_RPM};
use minibuild::digest::Digest;
use minibuild::registry::{PushOptions, Reference, Session};

/// The fixture repo on a loopback mirror recording (path, bytes sent).
struct Mirror {
    server: Handled,
    log: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Mirror {
    fn start() -> Mirror {
        let root = fixtures();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        let server = Handled::start(move |req| {
            let resp = Response::file(&root, req.path());
            let len = std::fs::metadata(root.join(req.path().trim_start_matches('/')))
                .map(|m| m.len())
                .unwrap_or(0);
            seen.lock().unwrap().push((req.path().to_string(), len));
            resp
        });
        Mirror { server, log }
    }

    fn baseurl(&self) -> String {
        format!("fedora={}/repo/$basearch/", self.server.url)
    }

    /// Forget what was served so far.
    fn reset(&self) {
        self.log.lock().unwrap().clear();
    }

    /// The RPM paths served since the last reset.
    fn rpms(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(p, _)| p.ends_with(".rpm"))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn bytes(&self) -> u64 {
        self.log.lock().unwrap().iter().map(|(_, n)| n).sum()
    }
}

/// The cache repository on `registry`.
fn cache_repo(registry: &Registry) -> String {
    format!("{}/ci/cache", registry.host())
}

/// `minibuild build` of the distroless-base recipe against `mirror`,
/// with `--cache-repo REPO` when given; (digest, stderr, wall time).
fn build(
    mirror: &Mirror,
    work: &Path,
    cache: &str,
    repo: Option<&str>,
) -> (String, String, Duration) {
    let out = work.join(format!("{cache}.oci.tar"));
    let mut cmd = build_cmd(&recipe("distroless-base.toml"), &out, &work.join(cache));
    cmd.args(["--baseurl", &mirror.baseurl(), "--no-gpgcheck", "fedora"]);
    if let Some(r) = repo {
        cmd.args(["--cache-repo", r]);
    }
    let start = Instant::now();
    let output: Output = run_ok(&mut cmd);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (last_line(&output), stderr, took)
}

#[test]
fn machine_b_builds_from_the_cache_repo_and_refuses_a_poisoned_entry() {
    let registry = Registry::open();
    let mirror = Mirror::start();
    let work = tempfile::tempdir().unwrap();
    let repo = cache_repo(&registry);

    // Machine A: cold, fills the cache repo.
    let (digest_a, log_a, _) = build(&mirror, work.path(), "a", Some(&repo));
    let rpms_a = mirror.rpms();
    assert!(!rpms_a.is_empty(), "machine A fetched no RPM: {log_a}");
    assert!(
        log_a.contains("cache repo") && log_a.contains("pushed"),
        "machine A did not say it pushed: {log_a}"
    );
    assert!(registry.stored_bytes() > 0);

    // Machine B: an empty cache dir; every RPM and the layer come from
    // the registry, none from the mirror (repodata requests are fine).
    mirror.reset();
    let (digest_b, log_b, _) = build(&mirror, work.path(), "b", Some(&repo));
    assert_eq!(digest_b, digest_a, "{log_b}");
    assert_eq!(mirror.rpms(), Vec::<String>::new(), "{log_b}");
    assert!(
        log_b.contains(&format!("{} RPM(s)", rpms_a.len())) && log_b.contains("1 layer(s)"),
        "machine B did not report its hits: {log_b}"
    );
    assert!(!log_b.contains("refused"), "{log_b}");

    // Poison one entry: another blob, the tag repointed to it.
    let victim = std::fs::read_dir(work.path().join("a/v1/rpms"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "rpm"))
        .unwrap();
    let hex = victim.file_stem().unwrap().to_str().unwrap().to_string();
    let expected: Digest = format!("sha256:{hex}").parse().unwrap();
    let evil = work.path().join("evil.rpm");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&evil, &bytes).unwrap();
    let evil_digest = Digest::sha256_of(&bytes);
    let reference: Reference = format!("{repo}:x").parse().unwrap();
    let opts = PushOptions {
        retries: 0,
        ..PushOptions::default()
    };
    let quiet = |_: minibuild::registry::PushEvent| {};
    let mut session = Session::connect(&reference, &opts, &quiet).unwrap();
    let tag = rpm_tag(&expected);
    // The honest entry is there, and the pull side reads it back verified.
    let honest = session
        .manifest(&tag, &["application/vnd.oci.image.manifest.v1+json"])
        .unwrap()
        .expect("machine A pushed the entry")
        .bytes;
    assert!(String::from_utf8_lossy(&honest).contains(ARTIFACT_RPM));
    let fetched = work.path().join("fetched.rpm");
    let n = session
        .blob_to_file(&expected, &fetched, bytes.len() as u64)
        .unwrap();
    assert_eq!(n, Some(bytes.len() as u64));
    assert_eq!(
        Digest::sha256_of(&std::fs::read(&fetched).unwrap()),
        expected
    );

    session
        .put_blob_file(&evil_digest, &evil, bytes.len() as u64)
        .unwrap();
    let poisoned = String::from_utf8(honest)
        .unwrap()
        .replace(&expected.to_string(), &evil_digest.to_string());
    session
        .put_manifest(
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            poisoned.as_bytes(),
        )
        .unwrap();

    // Machine C (empty cache): refuses the entry, naming it, fetches that
    // one RPM from the mirror, and makes the same image.
    mirror.reset();
    let (digest_c, log_c, _) = build(&mirror, work.path(), "c", Some(&repo));
    assert_eq!(digest_c, digest_a, "{log_c}");
    let refetched = mirror.rpms();
    assert_eq!(refetched.len(), 1, "{refetched:?}\n{log_c}");
    assert!(
        log_c.contains("refused") && log_c.contains(&hex),
        "the warning does not name the poisoned entry: {log_c}"
    );
    // …and the build repaired the entry: the next machine gets it all.
    mirror.reset();
    let (digest_d, log_d, _) = build(&mirror, work.path(), "d", Some(&repo));
    assert_eq!(digest_d, digest_a);
    assert_eq!(mirror.rpms(), Vec::<String>::new(), "{log_d}");

    // Poison the layer: a valid gzip of other bytes, same recorded sizes.
    let key = std::fs::read_dir(work.path().join("a/v1/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let layer_tag = format!("layer-{}", key.file_stem().unwrap().to_str().unwrap());
    let honest = session
        .manifest(&layer_tag, &["application/vnd.oci.image.manifest.v1+json"])
        .unwrap()
        .expect("machine A pushed its layer")
        .bytes;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"not the layer's tar").unwrap();
    let evil_layer = gz.finish().unwrap();
    std::fs::write(&evil, &evil_layer).unwrap();
    let evil_digest = Digest::sha256_of(&evil_layer);
    session
        .put_blob_file(&evil_digest, &evil, evil_layer.len() as u64)
        .unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&honest).unwrap();
    m["layers"][0]["digest"] = evil_digest.to_string().into();
    m["layers"][0]["size"] = evil_layer.len().into();
    session
        .put_manifest(
            &layer_tag,
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    let (digest_e, log_e, _) = build(&mirror, work.path(), "e", Some(&repo));
    assert_eq!(digest_e, digest_a, "{log_e}");
    assert!(
        log_e.contains("refused") && log_e.contains(&layer_tag) && log_e.contains("0 layer(s)"),
        "the poisoned layer was not refused by name: {log_e}"
    );
}

/// One run building distroless-base and busybox (which share glibc and
/// more) with `--cache-repo`, on cache dir `cache`; stdout's
/// `RECIPE DIGEST` lines as (recipe, digest), and stderr.
fn build_two(
    mirror: &Mirror,
    work: &Path,
    cache: &str,
    repo: &str,
) -> (Vec<(String, String)>, String) {
    let out = work.join(format!("{cache}-out"));
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = minibuild();
    cmd.arg("build")
        .arg(recipe("distroless-base.toml"))
        .arg(recipe("busybox.toml"))
        .arg("--output-dir")
        .arg(&out)
        .arg("--cache-dir")
        .arg(work.join(cache))
        .args(["--baseurl", &mirror.baseurl(), "--no-gpgcheck", "fedora"])
        .args(["--cache-repo", repo])
        .env("CI", "1");
    let output = run_ok(&mut cmd);
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect();
    (lines, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Requests for cache entries (`…/manifests/rpm-…` or `layer-…`) by
/// (method, tag), with their counts.
fn entry_requests(registry: &Registry) -> std::collections::BTreeMap<(String, String), usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (method, path) in registry.requests() {
        let Some((_, tag)) = path.split_once("/manifests/") else {
            continue;
        };
        if tag.starts_with("rpm-") || tag.starts_with("layer-") {
            *counts.entry((method, tag.to_string())).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_multi_recipe_run_looks_up_and_pushes_each_entry_once() {
    let registry = Registry::open();
    let mirror = Mirror::start();
    let work = tempfile::tempdir().unwrap();
    let repo = cache_repo(&registry);

    // Machine A: two recipes in one run, building in parallel.
    let (built_a, log_a) = build_two(&mirror, work.path(), "a", &repo);
    assert_eq!(built_a.len(), 2, "{log_a}");
    let rpms_a = mirror.rpms();
    let distinct: std::collections::BTreeSet<&String> = rpms_a.iter().collect();
    assert!(!rpms_a.is_empty(), "machine A fetched no RPM: {log_a}");
    assert_eq!(
        distinct.len(),
        rpms_a.len(),
        "an RPM fetched twice: {rpms_a:?}"
    );
    let requests = entry_requests(&registry);
    let count = |method: &str, prefix: &str| {
        requests
            .iter()
            .filter(|((m, t), _)| m == method && t.starts_with(prefix))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
    };
    // Every RPM the mirror served became one entry, pushed once; no tag
    // was asked for more than once (lookup, then the push trusts it).
    let rpm_puts = count("PUT", "rpm-");
    assert_eq!(rpm_puts.len(), rpms_a.len(), "{requests:?}");
    assert!(rpm_puts.iter().all(|&n| n == 1), "{requests:?}");
    assert_eq!(count("PUT", "layer-"), [1, 1], "{requests:?}");
    for method in ["GET", "HEAD"] {
        let asked = count(method, "");
        assert!(
            asked.iter().all(|&n| n == 1),
            "{method} twice: {requests:?}"
        );
    }

    // Machine B: an empty cache dir, the same two recipes in one run:
    // nothing from the mirror but metadata, the same digests.
    mirror.reset();
    let before = registry.requests().len();
    let (built_b, log_b) = build_two(&mirror, work.path(), "b", &repo);
    assert_eq!(built_b, built_a, "{log_b}");
    assert_eq!(mirror.rpms(), Vec::<String>::new(), "{log_b}");
    assert!(!log_b.contains("refused"), "{log_b}");
    let b_requests: Vec<(String, String)> = registry.requests().split_off(before);
    assert!(
        !b_requests
            .iter()
            .any(|(m, _)| m == "PUT" || m == "POST" || m == "PATCH"),
        "machine B pushed what the repo had: {b_requests:?}"
    );
    let mut blob_gets: Vec<&String> = b_requests
        .iter()
        .filter(|(m, p)| m == "GET" && p.contains("/blobs/"))
        .map(|(_, p)| p)
        .collect();
    let fetched = blob_gets.len();
    blob_gets.sort();
    blob_gets.dedup();
    assert_eq!(
        blob_gets.len(),
        fetched,
        "a blob fetched twice: {b_requests:?}"
    );
    assert_eq!(fetched, rpms_a.len() + 2, "{b_requests:?}");
}

/// An app on a shared core (`[image] base`): machine B takes the core's
/// RPMs and the core's layer from the cache repo too, not only the app's.
#[test]
fn machine_b_takes_the_core_of_a_layered_image_from_the_cache_repo() {
    let registry = Registry::open();
    let mirror = Mirror::start();
    let work = tempfile::tempdir().unwrap();
    let repo = cache_repo(&registry);
    let repo_toml = format!(
        "[[repo]]\nname = \"fedora\"\nbaseurl = \"{}/repo/$basearch/\"\ngpgcheck = false\n",
        mirror.server.url
    );
    std::fs::write(
        work.path().join("core.toml"),
        format!(
            "[image]\nname = \"core\"\n{repo_toml}[packages]\ninstall = [\"glibc\", \"bash\"]\n"
        ),
    )
    .unwrap();
    let app = work.path().join("app.toml");
    std::fs::write(
        &app,
        format!("[image]\nname = \"app\"\nbase = \"core.toml\"\n{repo_toml}[packages]\ninstall = [\"zlib\"]\n"),
    )
    .unwrap();
    let build = |cache: &str| {
        let out = work.path().join(format!("{cache}.oci.tar"));
        let mut cmd = build_cmd(&app, &out, &work.path().join(cache));
        cmd.args(["--cache-repo", &repo]);
        let output = run_ok(&mut cmd);
        (
            last_line(&output),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (digest_a, log_a) = build("a");
    let rpms_a = mirror.rpms();
    assert!(rpms_a.len() > 1, "machine A fetched {rpms_a:?}: {log_a}");
    mirror.reset();
    let (digest_b, log_b) = build("b");
    assert_eq!(digest_b, digest_a, "{log_b}");
    assert_eq!(mirror.rpms(), Vec::<String>::new(), "{log_b}");
    assert!(
        log_b.contains(&format!("{} RPM(s)", rpms_a.len())) && log_b.contains("2 layer(s)"),
        "machine B did not take the core's RPMs and layer from the cache repo: {log_b}"
    );
}

#[test]
fn an_unreachable_or_locked_cache_repo_is_a_warning() {
    let mirror = Mirror::start();
    let work = tempfile::tempdir().unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (with, log, _) = build(
        &mirror,
        work.path(),
        "a",
        Some(&format!("127.0.0.1:{dead}/ci/cache")),
    );
    assert!(
        log.contains("cache repo") && log.contains("not usable"),
        "no warning: {log}"
    );
    let (without, _, _) = build(&mirror, work.path(), "b", None);
    assert_eq!(with, without);

    // A registry that wants credentials none were given for: a warning too.
    let locked =
        Handled::start(|_| Response::status(401).header("WWW-Authenticate", "Basic realm=\"ci\""));
    let (locked_out, log, _) = build(
        &mirror,
        work.path(),
        "c",
        Some(&format!("{}/ci/cache", locked.addr)),
    );
    assert_eq!(locked_out, without);
    assert!(
        log.contains("not usable") && log.contains("requires authentication"),
        "no warning: {log}"
    );
}

/// Not a check: the figures for the README (`--ignored --nocapture`).
#[test]
#[ignore]
fn measure_cold_build_on_machine_b() {
    let registry = Registry::open();
    let mirror = Mirror::start();
    let work = tempfile::tempdir().unwrap();
    let repo = cache_repo(&registry);
    build(&mirror, work.path(), "a", Some(&repo));
    for (name, with) in [("without", None), ("with", Some(repo.as_str()))] {
        mirror.reset();
        let (_, _, took) = build(&mirror, work.path(), name, with);
        eprintln!(
            "cold build on machine B {name} --cache-repo: {:.2}s, {} bytes from the mirror ({} RPM requests)",
            took.as_secs_f64(),
            mirror.bytes(),
            mirror.rpms().len()
        );
    }
    eprintln!("registry stores {} bytes", registry.stored_bytes());
}

/// A fake registry answering every blob GET with `body` and every
/// manifest GET with `manifest`; open (no auth).
fn hostile_registry(body: Vec<u8>, manifest: Vec<u8>) -> Handled {
    Handled::start(move |req| {
        let path = req.path();
        if path == "/v2/" {
            Response::ok("{}")
        } else if path.contains("/blobs/") {
            Response::ok(body.clone())
        } else if path.contains("/manifests/") {
            Response::ok(manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        } else {
            Response::status(404)
        }
    })
}

#[test]
fn pull_verifies_digests_and_bounds_sizes() {
    let honest = b"the bytes asked for".to_vec();
    let digest = Digest::sha256_of(&honest);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("blob");
    let quiet = |_: minibuild::registry::PushEvent| {};
    let opts = PushOptions {
        retries: 0,
        ..PushOptions::default()
    };

    // Other bytes than the digest asked for: refused, nothing left behind.
    let server = hostile_registry(b"other bytes".to_vec(), b"{}".to_vec());
    let reference: Reference = format!("{}/r:x", server.addr).parse().unwrap();
    let mut s = Session::connect(&reference, &opts, &quiet).unwrap();
    let e = s.blob_to_file(&digest, &dest, 1 << 20).unwrap_err();
    assert!(e.to_string().contains(&digest.to_string()), "{e}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);

    // The right bytes, but more than allowed: stopped.
    let server = hostile_registry(honest.clone(), b"{}".to_vec());
    let reference: Reference = format!("{}/r:x", server.addr).parse().unwrap();
    let mut s = Session::connect(&reference, &opts, &quiet).unwrap();
    let e = s.blob_to_file(&digest, &dest, 5).unwrap_err();
    assert!(e.to_string().contains("more than the 5 bytes"), "{e}");
    assert!(!dest.exists());
    // Within the bound: kept.
    assert_eq!(
        s.blob_to_file(&digest, &dest, honest.len() as u64).unwrap(),
        Some(honest.len() as u64)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), honest);

    // A manifest asked for by digest must hash to it; by tag it is as sent.
    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let server = hostile_registry(Vec::new(), manifest.clone());
    let reference: Reference = format!("{}/r:x", server.addr).parse().unwrap();
    let mut s = Session::connect(&reference, &opts, &quiet).unwrap();
    let accept = ["application/vnd.oci.image.manifest.v1+json"];
    let got = s.manifest("v1", &accept).unwrap().unwrap();
    let media_type = got.media_type.clone();
    let got = got.bytes;
    assert_eq!(got, manifest);
    assert_eq!(
        media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let right = Digest::sha256_of(&manifest).to_string();
    assert!(s.manifest(&right, &accept).unwrap().is_some());
    let wrong = Digest::sha256_of(b"another manifest").to_string();
    let e = s.manifest(&wrong, &accept).unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
}
