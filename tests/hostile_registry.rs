//! A hostile registry tries to get the registry password (or token) sent
//! somewhere else: a token realm over plain http on another host, an
//! upload `Location` on another host, a redirect of the token request.
//!
//! Each test runs `minibuild push` against a scripted registry on
//! 127.0.0.1 and a thief listening on 127.0.0.2, which records every
//! request it gets. minibuild allows plain HTTP without `--insecure` only
//! for `localhost`, `127.0.0.1` and `::1` (as docker does for its own
//! loopback names), so 127.0.0.2 is "another host" for every credential
//! rule while the traffic never leaves the loopback interface. The tests
//! assert the refusal and its message, that the thief never saw the
//! password, and that nothing changed outside the work directory.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Output;

use base64::Engine as _;
use common::server::{Handled, Request, Response};
use minibuild::image::{Compression, Format, ImageConfig, ImageWriter, LayerOptions};
use minibuild::package::Arch;
use minibuild::rootfs::Tree;

const USER: &str = "ci";
const PASS: &str = "hostile-test-pw";

fn respond(status: u16, headers: &[(&str, String)]) -> Response {
    headers
        .iter()
        .fold(Response::status(status), |r, (k, v)| r.header(k, v.clone()))
        .body("{}")
}

fn basic() -> String {
    let raw = format!("{USER}:{PASS}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A registry on 127.0.0.1 that asks for the password (Basic) and answers
/// each request that carries it with `answer(method)`.
fn basic_auth_registry(answer: impl Fn(&str) -> Response + Send + Sync + 'static) -> Handled {
    Handled::start_on(
        "127.0.0.1",
        Box::new(move |req: &Request| {
            if req.headers.iter().any(|h| h.ends_with(&basic())) {
                answer(&req.method)
            } else {
                respond(
                    401,
                    &[("WWW-Authenticate", r#"Basic realm="hostile""#.into())],
                )
            }
        }),
    )
}

/// A registry on 127.0.0.1 that answers everything with a Bearer
/// challenge naming `realm` (service `hostile`).
fn bearer_registry(realm: &str) -> Handled {
    let challenge = format!(r#"Bearer realm="{realm}",service="hostile""#);
    Handled::start_on(
        "127.0.0.1",
        Box::new(move |_: &Request| respond(401, &[("WWW-Authenticate", challenge.clone())])),
    )
}

/// The password, in clear or base64, anywhere in what `server` received.
fn leaked(server: &Handled) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    server
        .requests()
        .iter()
        .flat_map(|s| s.headers.iter().chain([&s.target]))
        .any(|h| h.contains(PASS) || h.contains(&b64))
}

/// The work directory of one test: an image, a credentials file, an
/// empty HOME (no auth file of the machine is read), and a canary beside
/// them that nothing may touch.
struct Work {
    dir: tempfile::TempDir,
    image: PathBuf,
    creds_file: PathBuf,
    canary: PathBuf,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("img");
        let mut w = ImageWriter::new(&image).unwrap();
        let opts = LayerOptions {
            source_date_epoch: 1_700_000_000,
            compression: Compression::Gzip,
        };
        let layer = w.add_layer(&Tree::default(), &opts).unwrap();
        w.add_image(&ImageConfig::new(Arch::X86_64, 1_700_000_000), &[layer])
            .unwrap();
        w.commit(Format::Oci, "v1").unwrap();
        let creds_file = dir.path().join("creds");
        std::fs::write(&creds_file, format!("{USER}:{PASS}\n")).unwrap();
        let canary = dir.path().join("canary");
        std::fs::write(&canary, "untouched").unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Work {
            dir,
            image,
            creds_file,
            canary,
        }
    }

    /// `minibuild push IMAGE REGISTRY/app:v1 --creds-file … --digestfile …`.
    fn push(&self, registry: &str) -> Output {
        self.push_with(registry, &[])
    }

    /// [`Work::push`] with `extra` flags.
    fn push_with(&self, registry: &str, extra: &[&str]) -> Output {
        let before = common::snapshot(self.dir.path());
        let out = common::minibuild()
            .arg("push")
            .args(extra)
            .arg(&self.image)
            .arg(format!("{registry}/app:v1"))
            .arg("--creds-file")
            .arg(&self.creds_file)
            .arg("--digestfile")
            .arg(self.dir.path().join("digest"))
            .env("HOME", self.dir.path().join("home"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env("CI", "1")
            .output()
            .unwrap();
        // Nothing written, nothing half-written: the image, the canary and
        // the credentials are as they were, and no digest file appeared.
        assert_eq!(
            common::snapshot(self.dir.path()),
            before,
            "the work directory changed"
        );
        assert_eq!(std::fs::read_to_string(&self.canary).unwrap(), "untouched");
        out
    }
}

fn failed_with(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the push succeeded:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "no `{n}` in:\n{stderr}");
    }
    assert!(
        !stderr.contains(PASS),
        "the password is in the output:\n{stderr}"
    );
    stderr
}

/// A loopback registry whose challenge sends the password to a token
/// realm over plain http on another host (issue 12, critical 2a): refused
/// before anything is sent there.
#[test]
fn plain_http_token_realm_on_another_host_gets_nothing() {
    let thief = Handled::start_on(
        "127.0.0.2",
        Box::new(|_: &Request| respond(200, &[("Content-Type", "application/json".into())])),
    );
    let realm = format!("http://{}/token", thief.addr);
    let registry = bearer_registry(&realm);
    let work = Work::new();
    let out = work.push(&registry.addr);
    failed_with(&out, &[&realm, "token realm must be https", "--insecure"]);
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
    assert!(!leaked(&registry), "the registry only ever got its 401s");
}

/// A registry that takes the password (Basic) and then hands out an upload
/// location on another host (issue 12, critical 2b): no PATCH or PUT goes
/// there, and the push stops naming the location and the rule.
#[test]
fn upload_location_on_another_host_gets_nothing() {
    let thief = Handled::start_on("127.0.0.2", Box::new(|_: &Request| respond(201, &[])));
    let location = format!("http://{}/v2/app/blobs/uploads/stolen", thief.addr);
    let loc = location.clone();
    let registry = basic_auth_registry(move |method| match method {
        "HEAD" => respond(404, &[]),
        "POST" => respond(202, &[("Location", loc.clone())]),
        _ => respond(200, &[]),
    });
    let work = Work::new();
    let out = work.push(&registry.addr);
    failed_with(
        &out,
        &[
            &location,
            "upload location",
            "registry credentials go only to the registry",
        ],
    );
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
    // The registry did get the password: it asked for it, on its own origin.
    assert!(leaked(&registry));
}

/// The request's `Host`, to name the server itself in an answer.
fn host_of(req: &Request) -> String {
    req.headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

/// A token realm on the registry's own host (loopback, so plain http is
/// allowed) that redirects the token request to another host: the
/// redirect is followed without the password, and the push fails on the
/// thief's 401.
#[test]
fn redirected_token_request_carries_no_password() {
    let thief = Handled::start_on(
        "127.0.0.2",
        Box::new(|_: &Request| {
            respond(
                401,
                &[("WWW-Authenticate", r#"Basic realm="thief""#.into())],
            )
        }),
    );
    let stolen = format!("http://{}/token", thief.addr);
    let registry = Handled::start_on(
        "127.0.0.1",
        Box::new(move |req: &Request| {
            if req.target.starts_with("/token") {
                return respond(307, &[("Location", stolen.clone())]);
            }
            let realm = format!("http://{}/token", host_of(req));
            let challenge = format!(r#"Bearer realm="{realm}",service="hostile""#);
            respond(401, &[("WWW-Authenticate", challenge)])
        }),
    );
    let work = Work::new();
    let out = work.push(&registry.addr);
    failed_with(&out, &[&registry.addr, "401"]);
    let seen = thief.requests();
    assert_eq!(seen.len(), 1, "the redirect was followed once: {seen:?}");
    assert!(seen[0].header("authorization").is_none(), "{seen:?}");
    assert!(!leaked(&thief));
    // The realm on the registry's own host did get the password.
    assert!(leaked(&registry));
}

/// A manifest PUT answered with a redirect to another host: ureq on its
/// own would follow it as a GET, and the push would "succeed" with nothing
/// stored. Not followed: the push fails naming the status.
#[test]
fn redirected_manifest_put_is_not_followed() {
    let thief = Handled::start_on("127.0.0.2", Box::new(|_: &Request| respond(201, &[])));
    let elsewhere = format!("http://{}/v2/app/manifests/v1", thief.addr);
    let registry = basic_auth_registry(move |method| match method {
        // Every blob is "already there".
        "PUT" => respond(302, &[("Location", elsewhere.clone())]),
        _ => respond(200, &[]),
    });
    let work = Work::new();
    let out = work.push(&registry.addr);
    failed_with(&out, &["PUT", "/v2/app/manifests/v1", "302"]);
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
}

/// `openssl s_server -HTTP` on 127.0.0.1 with a throwaway self-signed
/// certificate: it answers `GET /NAME` with the raw response in the file
/// NAME of its directory. Killed on drop.
struct TlsFiles {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl TlsFiles {
    /// Serve `files` (name, raw HTTP response).
    fn start(files: &[(&str, String)]) -> TlsFiles {
        common::require_tool("openssl");
        let dir = tempfile::tempdir().unwrap();
        common::run_ok(
            std::process::Command::new("openssl")
                .current_dir(dir.path())
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    "key.pem",
                    "-out",
                    "cert.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                ]),
        );
        for (name, response) in files {
            std::fs::write(dir.path().join(name), response).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "s_server", "-quiet", "-HTTP", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .arg("-accept")
            .arg(&addr)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TlsFiles {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An https token realm that redirects down to plain http: refused, even
/// with --insecure (needed here to accept s_server's self-signed
/// certificate), since the token would then come over the network in
/// clear text and could be anyone's.
#[test]
fn https_to_http_redirect_is_refused() {
    let thief = Handled::start_on(
        "127.0.0.2",
        Box::new(|_: &Request| respond(200, &[("Content-Type", "application/json".into())])),
    );
    let stolen = format!("http://{}/token", thief.addr);
    // The token request minibuild makes, as s_server names the file.
    let query = "token?scope=repository%3Aapp%3Apull%2Cpush&service=hostile";
    let realm = TlsFiles::start(&[(
        query,
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {stolen}\r\nContent-Length: 0\r\n\r\n"
        ),
    )]);
    let registry = bearer_registry(&format!("https://{}/token", realm.addr));
    let work = Work::new();
    let out = work.push_with(&registry.addr, &["--insecure"]);
    failed_with(
        &out,
        &[&stolen, "a redirect to", "from https down to plain http"],
    );
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
}
