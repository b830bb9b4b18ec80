//! `push` against a real registry: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1, with htpasswd basic auth and an
//! optional TLS variant signed by a throwaway CA. skopeo is the independent
//! client that checks what landed there.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_tool, run_ok};
use minibuild::digest::Digest;
use minibuild::image::{Compression, Format, ImageConfig, ImageWriter, LayerOptions, Written};
use minibuild::package::Arch;
use minibuild::registry::auth::{CredSource, Credentials};
use minibuild::registry::{push, PushError, PushEvent, PushOptions, Reference};
use minibuild::rootfs::{BlobRef, Entry, Kind, Tree};

const USER: &str = "ci";
const PASS: &str = "s3cret-pw";

/// How the registry authenticates clients.
enum Auth {
    Open,
    /// htpasswd basic auth with USER/PASS.
    Htpasswd,
    /// Bearer tokens from `realm`, signed by the key of `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

const TOKEN_SERVICE: &str = "minibuild-test-registry";
const TOKEN_ISSUER: &str = "minibuild-test-issuer";

/// The registry of tests/common with this file's auth and TLS variants;
/// killed on drop.
struct Registry {
    server: common::registry::Registry,
    tls: bool,
}

impl Registry {
    /// Start a registry with `auth`; `tls`: HTTPS with a throwaway CA.
    fn start(auth: Auth, tls: bool) -> Registry {
        Registry::start_on("127.0.0.1", auth, tls)
    }

    /// [`Registry::start`] on `ip`.
    fn start_on(ip: &'static str, auth: Auth, tls: bool) -> Registry {
        let server = common::registry::Registry::start(ip, |dir| {
            let mut config = String::new();
            if tls {
                make_certs(dir);
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.join("server.crt").display(),
                    dir.join("server.key").display()
                ));
            }
            match auth {
                Auth::Open => {}
                Auth::Htpasswd => {
                    config.push_str(&common::registry::htpasswd_config(dir, USER, PASS))
                }
                Auth::Token { realm, cert } => config.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    cert.display()
                )),
            }
            config
        });
        Registry { server, tls }
    }

    fn host(&self) -> String {
        self.server.host()
    }

    fn reference(&self, repo_tag: &str) -> Reference {
        format!("{}/{repo_tag}", self.host()).parse().unwrap()
    }

    fn ca(&self) -> PathBuf {
        self.server.file("ca.crt")
    }

    fn kill(&mut self) {
        self.server.kill();
    }

    /// `skopeo VERB` against this registry with the test credentials:
    /// `--tls-verify=false`, or for TLS the CA in a cert dir. `side` is ""
    /// for inspect and "src-" for copy (`--src-creds`, …).
    fn skopeo(&self, verb: &str, side: &str, args: &[&str]) -> Vec<u8> {
        require_tool("skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.arg(verb);
        if self.tls {
            let certs = self.server.file("certs.d");
            std::fs::create_dir_all(&certs).unwrap();
            std::fs::copy(self.ca(), certs.join("ca.crt")).unwrap();
            cmd.arg(format!("--{side}cert-dir={}", certs.display()));
        } else {
            cmd.arg(format!("--{side}tls-verify=false"));
        }
        cmd.arg(format!("--{side}creds={}", creds()));
        cmd.args(args);
        run_ok(&mut cmd).stdout
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 (and 127.0.0.2)
/// signed by it.
fn make_certs(dir: &Path) {
    require_tool("openssl");
    let d = |f: &str| dir.join(f).display().to_string();
    run_ok(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.crt"),
        "-days",
        "2",
        "-subj",
        "/CN=minibuild test CA",
    ]));
    run_ok(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_ok(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-out",
        &d("server.crt"),
        "-days",
        "2",
        "-extfile",
        &d("ext.cnf"),
    ]));
}

/// A small image written through the oci module: one layer, one manifest
/// per architecture (an index for several).
fn build_image(dest: &Path, format: Format, arches: &[Arch], content: &[u8]) -> Written {
    let blobs = tempfile::tempdir().unwrap();
    let blob = blobs.path().join("hello");
    std::fs::write(&blob, content).unwrap();
    let entry = |kind: Kind, mode: u32| Entry {
        kind,
        mode,
        user: "root".into(),
        group: "root".into(),
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
        package: None,
    };
    let mut tree = Tree::default();
    tree.entries.insert("etc".into(), entry(Kind::Dir, 0o755));
    tree.entries.insert(
        "etc/hello".into(),
        entry(
            Kind::File {
                blob: BlobRef::whole_file(&blob).unwrap(),
                size: content.len() as u64,
                link_id: None,
            },
            0o644,
        ),
    );
    let mut w = ImageWriter::new(dest).unwrap();
    let opts = LayerOptions {
        source_date_epoch: 1_700_000_000,
        compression: Compression::Gzip,
    };
    let layer = w.add_layer(&tree, &opts).unwrap();
    for &arch in arches {
        w.add_image(
            &ImageConfig::new(arch, 1_700_000_000),
            std::slice::from_ref(&layer),
        )
        .unwrap();
    }
    w.commit(format, "v1").unwrap()
}

/// A one-platform image as an OCI layout dir in `work`.
fn small_image(work: &Path) -> Written {
    build_image(&work.join("img"), Format::Oci, &[Arch::X86_64], b"hello\n")
}

fn opts(creds: Option<&str>) -> PushOptions {
    PushOptions {
        creds: creds.map(|c| (Credentials::from_flag(c).unwrap(), CredSource::Flag)),
        // No auth files from the machine running the tests.
        auth_env: Default::default(),
        retries: 2,
        backoff: Duration::from_millis(20),
        ..PushOptions::default()
    }
}

fn creds() -> String {
    format!("{USER}:{PASS}")
}

/// Records the events of a push.
#[derive(Default)]
struct Recorder(RefCell<Vec<PushEvent>>);

impl Recorder {
    fn record(&self, e: PushEvent) {
        self.0.borrow_mut().push(e);
    }

    fn events(self) -> Vec<PushEvent> {
        self.0.into_inner()
    }
}

fn count(events: &[PushEvent], f: impl Fn(&PushEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Push, then check with skopeo: the digest by tag, the raw bytes, and a
/// copy back to an OCI layout keep it.
fn push_and_verify(reg: &Registry, written: &Written, repo_tag: &str, opts: &PushOptions) {
    let reference = reg.reference(repo_tag);
    let log = Recorder::default();
    let pushed = push(&written.path, &reference, opts, &|e| log.record(e)).unwrap();
    assert_eq!(pushed.digest, written.digest);
    assert_eq!(pushed.pinned(), format!("{reference}@{}", written.digest));

    let image = format!("docker://{reference}");
    let raw = reg.skopeo("inspect", "", &["--raw", &image]);
    assert_eq!(
        Digest::sha256_of(&raw),
        written.digest,
        "registry holds other manifest bytes"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&reg.skopeo("inspect", "", &[&image])).unwrap();
    assert_eq!(json["Digest"], written.digest.to_string());

    let back = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:back", back.path().join("layout").display());
    reg.skopeo("copy", "src-", &["--quiet", "--all", &image, &dest]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.path().join("layout/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], written.digest.to_string());
}

#[test]
fn push_layout_with_basic_auth_then_skip_existing_blobs() {
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let before = common::snapshot(&written.path);
    let opts = opts(Some(&creds()));
    push_and_verify(&reg, &written, "team/app:v1", &opts);

    // Again, under another tag: every blob is already there.
    let log = Recorder::default();
    let pushed = push(&written.path, &reg.reference("team/app:v2"), &opts, &|e| {
        log.record(e)
    })
    .unwrap();
    let events = log.events();
    assert_eq!(
        count(&events, |e| matches!(e, PushEvent::BlobSkipped { .. })),
        2,
        "{events:?}"
    );
    assert_eq!(
        count(&events, |e| matches!(e, PushEvent::BlobUploading { .. })),
        0
    );
    assert_eq!(
        (
            pushed.blobs_skipped,
            pushed.blobs_uploaded,
            pushed.bytes_uploaded
        ),
        (2, 0, 0)
    );
    assert_eq!(pushed.digest, written.digest);
    assert_eq!(
        common::snapshot(&written.path),
        before,
        "the local image changed"
    );
}

#[test]
fn push_multi_arch_archive_in_chunks() {
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    // Incompressible content, so the layer really takes several chunks.
    let mut content = Vec::with_capacity(50_000);
    let mut x: u32 = 2_463_534_242;
    while content.len() < 50_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        content.extend_from_slice(&x.to_le_bytes());
    }
    let written = build_image(
        &work.path().join("img.tar"),
        Format::OciArchive,
        &[Arch::X86_64, Arch::Aarch64],
        &content,
    );
    let mut opts = opts(Some(&creds()));
    opts.chunk_size = Some(4096);
    let reference = reg.reference("multi:v1");
    let log = Recorder::default();
    let pushed = push(&written.path, &reference, &opts, &|e| log.record(e)).unwrap();
    let events = log.events();
    // one shared layer + two configs; two platform manifests by digest, the index by tag
    assert_eq!(pushed.blobs_uploaded, 3, "{events:?}");
    let manifests: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            PushEvent::ManifestPushed { reference, .. } => Some(reference.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(manifests.len(), 3);
    assert!(manifests[..2].iter().all(|r| r.starts_with("sha256:")));
    assert_eq!(manifests[2], "v1");
    push_and_verify(&reg, &written, "multi:v1", &opts);
    // each platform manifest is there by digest
    for image in &written.manifests {
        let by_digest = format!("docker://{}/multi@{}", reg.host(), image.manifest.digest);
        let raw = reg.skopeo("inspect", "", &["--raw", &by_digest]);
        assert_eq!(Digest::sha256_of(&raw), image.manifest.digest);
    }
}

#[test]
fn wrong_password_and_missing_credentials_are_clear() {
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let reference = reg.reference("app:v1");
    let e = push(
        &written.path,
        &reference,
        &opts(Some("ci:wrong-pw")),
        &|_| {},
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, PushError::Unauthorized { status: 401, .. }),
        "{e:?}"
    );
    assert!(
        msg.contains(&reg.host()) && msg.contains("--creds"),
        "{msg}"
    );
    assert!(
        !msg.contains("wrong-pw") && !format!("{e:?}").contains("wrong-pw"),
        "{msg}"
    );

    // No --creds: an auth file without this registry; the message names it.
    let auth = work.path().join("auth.json");
    std::fs::write(&auth, r#"{"auths":{"other.example":{"auth":"dTpw"}}}"#).unwrap();
    let mut o = opts(None);
    o.auth_env.registry_auth_file = Some(auth.clone());
    let e = push(&written.path, &reference, &o, &|_| {}).unwrap_err();
    assert!(e.to_string().contains(&auth.display().to_string()), "{e}");

    // The right credentials in that auth file (base64 `auth`) work.
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(creds())
    };
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let pushed = push(&written.path, &reference, &o, &|_| {}).unwrap();
    assert_eq!(pushed.digest, written.digest);
}

#[test]
fn unknown_host_is_clear() {
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let reference: Reference = "registry.invalid:5000/app:v1".parse().unwrap();
    let start = Instant::now();
    let e = push(&written.path, &reference, &opts(None), &|_| {}).unwrap_err();
    assert!(matches!(e, PushError::UnknownHost { .. }), "{e:?}");
    assert!(e.to_string().contains("registry.invalid:5000"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "no retries on an unknown host"
    );
}

#[test]
fn registry_killed_mid_push_fails_and_leaves_the_image_alone() {
    let reg = RefCell::new(Registry::start(Auth::Open, false));
    let work = tempfile::tempdir().unwrap();
    let written = build_image(
        &work.path().join("img.tar"),
        Format::OciArchive,
        &[Arch::X86_64, Arch::Aarch64],
        b"hi\n",
    );
    let before = common::snapshot(&written.path);
    let reference = reg.borrow().reference("app:v1");
    let delays = RefCell::new(Vec::new());
    let progress = |e: PushEvent| match e {
        PushEvent::BlobUploaded { .. } => reg.borrow_mut().kill(),
        PushEvent::Retrying { delay, .. } => delays.borrow_mut().push(delay),
        _ => {}
    };
    let e = push(&written.path, &reference, &opts(None), &progress).unwrap_err();
    assert!(
        matches!(e, PushError::Unreachable { attempts: 3, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&reference.registry), "{e}");
    // opts(): 2 retries, 20 ms doubling
    assert_eq!(
        *delays.borrow(),
        [Duration::from_millis(20), Duration::from_millis(40)],
        "exponential backoff before giving up"
    );
    assert_eq!(
        common::snapshot(&written.path),
        before,
        "the local image changed"
    );
}

#[test]
fn tls_registry_with_private_ca() {
    let reg = Registry::start(Auth::Htpasswd, true);
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());

    // Without the CA the certificate is not trusted: a TLS error, not a
    // silent fall back to plain HTTP.
    let e = push(
        &written.path,
        &reg.reference("app:v1"),
        &opts(Some(&creds())),
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(e, PushError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("--ca"), "{e}");

    let mut with_ca = opts(Some(&creds()));
    with_ca.ca = Some(reg.ca());
    push_and_verify(&reg, &written, "app:v1", &with_ca);

    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(reg.ca(), certs.join("ca.crt")).unwrap();
    let mut with_dir = opts(Some(&creds()));
    with_dir.cert_dir = Some(certs);
    let pushed = push(&written.path, &reg.reference("app:v2"), &with_dir, &|_| {}).unwrap();
    assert_eq!(pushed.digest, written.digest);
    assert_eq!(pushed.blobs_skipped, 2);
}

/// A token server for the registry's `auth: token`: it checks the basic
/// credentials and answers with a JWT (RS256, `x5c` = the signing cert the
/// registry trusts) granting pull+push on `repo`, minted with openssl.
struct TokenServer {
    realm: String,
    cert: PathBuf,
    /// Query strings of the token requests it answered.
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _server: common::server::Handled,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    fn start(repo: &str) -> TokenServer {
        use base64::Engine as _;
        require_tool("openssl");
        let dir = tempfile::tempdir().unwrap();
        let d = |f: &str| dir.path().join(f).display().to_string();
        run_ok(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &d("token.key"),
            "-out",
            &d("token.crt"),
            "-days",
            "2",
            "-subj",
            "/CN=minibuild test token signer",
        ]));
        let der = run_ok(Command::new("openssl").args([
            "x509",
            "-in",
            &d("token.crt"),
            "-outform",
            "DER",
        ]))
        .stdout;
        let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
        });
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": USER,
            "aud": TOKEN_SERVICE,
            "exp": now + 3600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": "minibuild-test",
            "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}],
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        std::fs::write(dir.path().join("input"), &signing_input).unwrap();
        let sig = run_ok(Command::new("openssl").args([
            "dgst",
            "-sha256",
            "-sign",
            &d("token.key"),
            &d("input"),
        ]))
        .stdout;
        let token = format!("{signing_input}.{}", b64url(&sig));

        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let expected_auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
        );
        let server = common::server::Handled::start(move |req| {
            let authorized = req
                .header("authorization")
                .is_some_and(|a| a.eq_ignore_ascii_case(&expected_auth));
            if !authorized {
                return common::server::Response::status(401).body("{}");
            }
            seen.lock().unwrap().push(req.query().to_string());
            common::server::Response::ok(serde_json::json!({"token": token}).to_string())
                .header("Content-Type", "application/json")
        });
        let realm = format!("{}/token", server.url);
        TokenServer {
            realm,
            _server: server,
            cert: dir.path().join("token.crt"),
            requests,
            _dir: dir,
        }
    }
}

#[test]
fn bearer_token_auth() {
    let tokens = TokenServer::start("app");
    let reg = Registry::start(
        Auth::Token {
            realm: tokens.realm.clone(),
            cert: tokens.cert.clone(),
        },
        false,
    );
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let pushed = push(
        &written.path,
        &reg.reference("app:v1"),
        &opts(Some(&creds())),
        &|_| {},
    )
    .unwrap();
    assert_eq!(pushed.digest, written.digest);
    let queries = tokens.requests.lock().unwrap().clone();
    assert!(!queries.is_empty());
    assert!(
        queries[0].contains("scope=repository%3Aapp%3Apull%2Cpush")
            && queries[0].contains(&format!("service={TOKEN_SERVICE}")),
        "{queries:?}"
    );
    // The token server refuses a wrong password: a clear 401 naming --creds.
    let e = push(
        &written.path,
        &reg.reference("app:v2"),
        &opts(Some("ci:wrong")),
        &|_| {},
    )
    .unwrap_err();
    assert!(
        matches!(e, PushError::Unauthorized { status: 401, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("--creds"), "{e}");
}

/// Throughput of a 64 MiB layer to a local registry, monolithic and in
/// 8 MiB chunks: `cargo test --release --test push -- --ignored --nocapture`.
#[test]
#[ignore]
fn push_throughput() {
    let reg = Registry::start(Auth::Open, false);
    let work = tempfile::tempdir().unwrap();
    let mut content = Vec::with_capacity(64 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while content.len() < 64 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        content.extend_from_slice(&x.to_le_bytes());
    }
    let written = build_image(
        &work.path().join("big.tar"),
        Format::OciArchive,
        &[Arch::X86_64],
        &content,
    );
    for (tag, chunk) in [("mono", None), ("chunked", Some(8 << 20))] {
        let mut o = opts(None);
        o.chunk_size = chunk;
        let repo = format!("bench-{tag}:v1");
        let start = Instant::now();
        let pushed = push(&written.path, &reg.reference(&repo), &o, &|_| {}).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{tag}: {} bytes in {secs:.2}s = {:.0} MiB/s",
            pushed.bytes_uploaded,
            pushed.bytes_uploaded as f64 / secs / (1 << 20) as f64
        );
        assert_eq!(pushed.blobs_uploaded, 2);
    }
}

/// `minibuild RECIPE -o OUTPUT --push REF --creds …` from the fixture repo,
/// with the cache beside OUTPUT.
fn build_and_push(recipe: &Path, output: &Path, reference: &str) -> Command {
    let mut cmd = common::minibuild();
    cmd.arg(recipe)
        .arg("-o")
        .arg(output)
        .arg("--cache-dir")
        .arg(output.parent().unwrap().join("cache"))
        .arg("--baseurl")
        .arg(format!("fedora={}", common::fixture_file_url()))
        .args(["--no-gpgcheck", "fedora"])
        .arg("--push")
        .arg(reference)
        .arg("--creds")
        .arg(creds())
        .env("CI", "1");
    cmd
}

/// The whole CLI: `minibuild RECIPE --push REF` builds from the fixture repo,
/// pushes, prints the pinned reference last and writes the CI files.
#[test]
fn build_and_push_from_the_cli() {
    require_tool("skopeo");
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let reference = reg.reference("demo/busybox:1.0").to_string();
    let digestfile = work.path().join("digest");
    let refs = work.path().join("refs");
    let out = run_ok(
        build_and_push(
            &common::recipe("busybox.toml"),
            &work.path().join("img.tar"),
            &reference,
        )
        .arg("--digestfile")
        .arg(&digestfile)
        .arg("--image-refs")
        .arg(&refs),
    );
    let last = common::last_line(&out);
    let digest = std::fs::read_to_string(&digestfile).unwrap();
    assert_eq!(last, format!("{reference}@{digest}"));
    assert_eq!(std::fs::read_to_string(&refs).unwrap().trim_end(), last);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(PASS),
        "the password leaked into the output"
    );
    let inspect = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds(),
        &format!("docker://{reference}"),
    ]));
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["Digest"], digest.as_str());

    // `minibuild push` of the same archive: everything is already there.
    let again = run_ok(
        common::minibuild()
            .arg("push")
            .arg(work.path().join("img.tar"))
            .arg(&reference)
            .arg("--creds")
            .arg(creds()),
    );
    assert_eq!(common::last_line(&again), last);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("0 blobs uploaded"),
        "{again:?}"
    );
}

/// `GET /v2/<path>` on the (plain HTTP, htpasswd) registry with the test
/// credentials: the status and body.
fn registry_get(reg: &Registry, path: &str, accept: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let basic = Credentials::from_flag(&creds()).unwrap().basic_header();
    let mut resp = agent
        .get(&format!("http://{}/v2/{path}", reg.host()))
        .header("Authorization", &basic)
        .header("Accept", accept)
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, body)
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// What the registry lists under the referrers tag of `subject`, read back
/// the way oras or regclient would: the `sha256-<hex>` index, each artifact
/// manifest by digest, its SBOM blob. Checks the artifact's shape and
/// returns (artifact digest, SBOM bytes) per entry.
fn referrers_of(reg: &Registry, repo: &str, subject: &str) -> Vec<(String, Vec<u8>)> {
    let tag = subject.replacen(':', "-", 1);
    let (status, index) = registry_get(reg, &format!("{repo}/manifests/{tag}"), INDEX);
    assert_eq!(status, 200, "no referrers index under {tag}");
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(index["mediaType"], INDEX);
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap().to_string();
        assert_eq!(entry["mediaType"], MANIFEST);
        assert_eq!(entry["artifactType"], "application/spdx+json");
        let (status, raw) = registry_get(reg, &format!("{repo}/manifests/{digest}"), MANIFEST);
        assert_eq!(status, 200, "artifact {digest} missing");
        assert_eq!(Digest::sha256_of(&raw).to_string(), digest);
        assert_eq!(entry["size"], raw.len());
        let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(m["artifactType"], "application/spdx+json");
        assert_eq!(m["subject"]["digest"], subject);
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(m["config"]["digest"], EMPTY_DIGEST);
        assert_eq!(
            registry_get(reg, &format!("{repo}/blobs/{EMPTY_DIGEST}"), "*/*").1,
            b"{}"
        );
        // Reproducible: the created time is the SBOM's, from SOURCE_DATE_EPOCH.
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.created"],
            m["annotations"]["org.opencontainers.image.created"]
        );
        assert!(m["annotations"]["org.opencontainers.image.created"].is_string());
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], "application/spdx+json");
        let blob_digest = layers[0]["digest"].as_str().unwrap();
        let (status, blob) = registry_get(reg, &format!("{repo}/blobs/{blob_digest}"), "*/*");
        assert_eq!(status, 200);
        assert_eq!(Digest::sha256_of(&blob).to_string(), blob_digest);
        out.push((digest, blob));
    }
    out
}

/// `--push --attach-sbom` on distribution 2.8 (no referrers API): the SBOM
/// written beside the image is an artifact whose subject is the pushed
/// manifest, listed under the `sha256-<hex>` tag; stdout is still the image
/// only, and pushing again (`minibuild push --attach-sbom`) lists it once.
#[test]
fn build_push_attach_sbom_uses_the_referrers_tag_schema() {
    require_tool("skopeo");
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let reference = reg.reference("demo/busybox:1.0").to_string();
    let archive = work.path().join("img.tar");
    let out = run_ok(
        build_and_push(&common::recipe("busybox.toml"), &archive, &reference).arg("--attach-sbom"),
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout is the image only: {stdout}"
    );
    let (_, image_digest) = stdout.trim().rsplit_once('@').unwrap();
    let sbom_path = work.path().join("img.tar.spdx.json");
    let sbom = std::fs::read(&sbom_path).unwrap();

    let listed = referrers_of(&reg, "demo/busybox", image_digest);
    assert_eq!(listed.len(), 1);
    let (artifact, blob) = &listed[0];
    assert_eq!(
        *blob, sbom,
        "the attached SBOM is not the file beside the image"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("to {image_digest} as {artifact}"))
            && stderr.contains("listed under tag `sha256-"),
        "{stderr}"
    );
    // An independent client sees the same list under the tag.
    let tag = format!(
        "{}:{}",
        &reference[..reference.rfind(':').unwrap()],
        image_digest.replacen(':', "-", 1)
    );
    let raw = reg.skopeo("inspect", "", &["--raw", &format!("docker://{tag}")]);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"][0]["digest"], artifact.as_str());

    // Again, through the push subcommand: same artifact, still one entry.
    let again = run_ok(
        common::minibuild()
            .arg("push")
            .arg(&archive)
            .arg(&reference)
            .arg("--attach-sbom")
            .arg(&sbom_path)
            .arg("--creds")
            .arg(creds()),
    );
    assert_eq!(String::from_utf8(again.stdout.clone()).unwrap(), stdout);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("as {artifact} (already listed")),
        "{stderr}"
    );
    assert_eq!(referrers_of(&reg, "demo/busybox", image_digest), listed);
}

/// Two arches: each arch's SBOM is attached to that arch's manifest, not
/// to the index.
#[test]
fn multi_arch_sboms_go_to_their_platform_manifests() {
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let recipe = work.path().join("multi.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"busybox\"\ntag = \"1\"\narch = [\"x86_64\", \"aarch64\"]\n\
             entrypoint = [\"/usr/sbin/busybox\"]\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [\"busybox\"]\n",
            common::fixture_file_url()
        ),
    )
    .unwrap();
    let reference = reg.reference("multi/busybox:1").to_string();
    let out = run_ok(
        build_and_push(&recipe, &work.path().join("m.tar"), &reference).arg("--attach-sbom"),
    );
    let (_, index_digest) = common::last_line(&out)
        .rsplit_once('@')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let (status, index) = registry_get(
        &reg,
        &format!("multi/busybox/manifests/{index_digest}"),
        INDEX,
    );
    assert_eq!(status, 200);
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let mut seen = 0;
    for m in index["manifests"].as_array().unwrap() {
        let arch = match m["platform"]["architecture"].as_str().unwrap() {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            other => panic!("unexpected platform {other}"),
        };
        let sbom = std::fs::read(work.path().join(format!("m.tar.{arch}.spdx.json"))).unwrap();
        let listed = referrers_of(&reg, "multi/busybox", m["digest"].as_str().unwrap());
        assert_eq!(listed.len(), 1, "{arch}");
        assert_eq!(listed[0].1, sbom, "{arch} manifest carries another SBOM");
        seen += 1;
    }
    assert_eq!(seen, 2);
    // Nothing is attached to the index itself.
    let tag = index_digest.replacen(':', "-", 1);
    assert_eq!(
        registry_get(&reg, &format!("multi/busybox/manifests/{tag}"), INDEX).0,
        404
    );
}

/// `--attach-sbom` without `--push` is refused before any work.
#[test]
fn attach_sbom_needs_push() {
    let work = tempfile::tempdir().unwrap();
    let out = common::minibuild()
        .arg(common::recipe("busybox.toml"))
        .arg("-o")
        .arg(work.path().join("img.tar"))
        .arg("--cache-dir")
        .arg(work.path().join("cache"))
        .arg("--attach-sbom")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--attach-sbom")
            && stderr.contains("needs --push")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!work.path().join("img.tar").exists());
    assert!(
        !work.path().join("cache").exists(),
        "work started before the refusal"
    );
}

/// `minibuild push IMAGE REF` from the CLI, with no auth file of the machine
/// running the tests (HOME is `work`).
fn cli_push(image: &Path, reference: &str, work: &Path) -> Command {
    let mut cmd = common::minibuild();
    cmd.arg("push")
        .arg(image)
        .arg(reference)
        .env("HOME", work)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env("CI", "1");
    cmd
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// [`cli_push`] with `--creds-file FILE`, which must fail: its stderr.
fn failed_push(image: &Path, reference: &str, work: &Path, file: &Path) -> String {
    let out = cli_push(image, reference, work)
        .arg("--creds-file")
        .arg(file)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "{stderr}");
    stderr
}

/// The password kept off the command line (where /proc/PID/cmdline shows
/// it to every user): `--creds-file` and `--username --password-stdin`
/// log in to the htpasswd registry; a wrong password names the file and
/// never shows the password.
#[test]
fn creds_file_and_password_stdin_from_the_cli() {
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let reference = reg.reference("app:v1").to_string();
    let file = work.path().join("creds");
    std::fs::write(&file, format!("{}\n", creds())).unwrap();

    let out = run_ok(
        cli_push(&written.path, &reference, work.path())
            .arg("--creds-file")
            .arg(&file),
    );
    assert_eq!(
        common::last_line(&out),
        format!("{reference}@{}", written.digest)
    );
    let inspect = reg.skopeo("inspect", "", &[&format!("docker://{reference}")]);
    let json: serde_json::Value = serde_json::from_slice(&inspect).unwrap();
    assert_eq!(json["Digest"], written.digest.to_string());

    let mut child = cli_push(
        &written.path,
        &reg.reference("app:v2").to_string(),
        work.path(),
    )
    .args(["--username", USER, "--password-stdin"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{PASS}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        common::last_line(&out).ends_with(&written.digest.to_string()),
        "{out:?}"
    );

    std::fs::write(&file, "ci:wrong-pw\n").unwrap();
    let stderr = failed_push(&written.path, &reference, work.path(), &file);
    assert!(
        stderr.contains(&format!("--creds-file {}", file.display())) && stderr.contains("rejected"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-pw"), "{stderr}");

    // Two sources at once is an error, before anything is sent.
    let out = cli_push(&written.path, &reference, work.path())
        .arg("--creds-file")
        .arg(&file)
        .args(["--creds", "a:b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("cannot be used with"), "{out:?}");
}

/// A registry that is not loopback (127.0.0.2: minibuild gives plain HTTP
/// and its single HTTPS try only to localhost, 127.0.0.1 and ::1) fails
/// at once on a TLS error, with the hint, instead of five retries and
/// "stopped responding"; the same for a plain-HTTP registry reached
/// without --insecure. With --ca, or --insecure, the pushes go through.
#[test]
fn tls_errors_of_a_remote_registry_are_not_retried() {
    let work = tempfile::tempdir().unwrap();
    let written = small_image(work.path());
    let file = work.path().join("creds");
    std::fs::write(&file, format!("{}\n", creds())).unwrap();

    let tls = Registry::start_on("127.0.0.2", Auth::Htpasswd, true);
    let reference = tls.reference("app:v1").to_string();
    let stderr = failed_push(&written.path, &reference, work.path(), &file);
    for needle in ["TLS", "certificate", "--ca", "--cert-dir", "--insecure"] {
        assert!(stderr.contains(needle), "no `{needle}` in {stderr}");
    }
    assert!(
        !stderr.contains("retry") && !stderr.contains("stopped responding"),
        "{stderr}"
    );
    run_ok(
        cli_push(&written.path, &reference, work.path())
            .arg("--creds-file")
            .arg(&file)
            .arg("--ca")
            .arg(tls.ca()),
    );

    let plain = Registry::start_on("127.0.0.2", Auth::Htpasswd, false);
    let reference = plain.reference("app:v1").to_string();
    let stderr = failed_push(&written.path, &reference, work.path(), &file);
    assert!(
        stderr.contains("plain HTTP") && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(!stderr.contains("retry"), "{stderr}");
    run_ok(
        cli_push(&written.path, &reference, work.path())
            .arg("--creds-file")
            .arg(&file)
            .arg("--insecure"),
    );
}

/// Several recipes with `--push REGISTRY/{name}:TAG`: each image is pushed
/// under its own name, and stdout pairs each recipe with its pinned reference.
#[test]
fn several_recipes_push_each_under_its_name() {
    require_tool("skopeo");
    let reg = Registry::start(Auth::Htpasswd, false);
    let work = tempfile::tempdir().unwrap();
    let recipes = [
        common::recipe("busybox.toml"),
        common::recipe("distroless-base.toml"),
    ];
    let out = run_ok(
        common::minibuild()
            .arg("build")
            .args(&recipes)
            .arg("--output-dir")
            .arg(work.path())
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .arg("--baseurl")
            .arg(format!("fedora={}", common::fixture_file_url()))
            .args(["--no-gpgcheck", "fedora"])
            .arg("--push")
            .arg(format!("{}/fleet/{{name}}:1.0", reg.host()))
            .arg("--creds")
            .arg(creds())
            .env("CI", "1"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for ((line, recipe), name) in lines
        .iter()
        .zip(&recipes)
        .zip(["busybox", "distroless-base"])
    {
        let reference = format!("{}/fleet/{name}:1.0", reg.host());
        let (label, pinned) = line.split_once(' ').unwrap();
        assert_eq!(label, recipe.display().to_string());
        let digest = pinned
            .strip_prefix(&format!("{reference}@"))
            .unwrap_or_else(|| panic!("{line}"));
        let inspect = reg.skopeo("inspect", "", &["--raw", &format!("docker://{reference}")]);
        assert_eq!(
            minibuild::digest::Digest::sha256_of(&inspect).to_string(),
            digest,
            "{name}: the registry serves the manifest stdout names"
        );
    }
}
