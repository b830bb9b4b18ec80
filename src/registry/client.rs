//! The registry client of a push: the subset of the OCI distribution API a
//! push needs, on `ureq` (blocking), with authentication and retries.
//!
//! - `GET /v2/` pings the registry; a 401 carries the challenge: `Basic`
//!   (send the credentials on every request) or `Bearer realm,service,scope`
//!   (trade the credentials for a token at `realm`, scope
//!   `repository:REPO:pull,push`). A later 401 (expired token) re-runs the
//!   challenge once.
//! - `HEAD /v2/REPO/blobs/DIGEST` tells whether a blob is already there.
//! - `POST /v2/REPO/blobs/uploads/` opens an upload; then either one
//!   `PUT <location>?digest=D` with the whole blob (monolithic) or `PATCH`
//!   chunks with `Content-Range` and a final empty `PUT`.
//! - `PUT /v2/REPO/manifests/REF` with the manifest's own bytes and media type;
//!   `GET` of the same URL reads one back (the referrers tag schema's index).
//!
//! Credentials stay in scope (`origin.rs`): the token realm is checked
//! before the password goes to it, an upload `Location` must be on the
//! registry's origin, and redirects are followed here (GET and HEAD only,
//! never from https to http), with `Authorization` dropped once one leaves
//! the origin the request was for.
//!
//! Connect errors, timeouts, 5xx and 429 are retried with exponential
//! backoff; a blob upload is restarted from `POST` (the registry may have
//! dropped the session). TLS errors are not retried. Everything else fails
//! at once with the registry, the URL and the registry's own error message.

use std::io;
use std::net::ToSocketAddrs as _;
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::Body;

use crate::digest::Digest;

use crate::image::BlobSource;

use super::auth::{Challenge, Found};
use super::error::PushError;
use super::event::PushEvent;
use super::options::PushOptions;
use super::origin::{self, Origin, Refusal, Scheme};
use super::reference::Reference;

enum AuthHeader {
    None,
    Basic(String),
    Bearer(String),
}

impl AuthHeader {
    fn value(&self) -> Option<&str> {
        match self {
            AuthHeader::None => None,
            AuthHeader::Basic(v) | AuthHeader::Bearer(v) => Some(v),
        }
    }
}

/// What a request failed with, before it becomes a [`PushError`].
enum Failure {
    /// Worth retrying: connection trouble, 5xx, 429.
    Transient(String, Option<Duration>),
    /// 401 with a token: it expired or lacks a scope; authenticate again.
    Reauth(Challenge),
    Fatal(PushError),
}

/// What the registry said when it stored a manifest.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `Docker-Content-Digest`, the digest it stored the bytes under.
    pub digest: Option<String>,
    /// `OCI-Subject`: present when the registry indexed the manifest's
    /// `subject` itself (it has the referrers API).
    pub subject: Option<String>,
}

pub struct Client<'a> {
    agent: ureq::Agent,
    reference: &'a Reference,
    /// `scheme://registry`
    base: String,
    /// The origin of `base`: where the registry's credentials may go.
    origin: Origin,
    creds: Found,
    auth: AuthHeader,
    opts: &'a PushOptions,
    progress: &'a dyn Fn(PushEvent),
}

impl<'a> Client<'a> {
    /// Reach the registry of `reference` and authenticate.
    pub fn connect(
        reference: &'a Reference,
        opts: &'a PushOptions,
        creds: Found,
        progress: &'a dyn Fn(PushEvent),
    ) -> Result<Self, PushError> {
        let registry = &reference.registry;
        let default_port = 443;
        let port = registry
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or(default_port);
        if let Err(source) = (reference.host(), port).to_socket_addrs() {
            return Err(PushError::UnknownHost {
                registry: registry.clone(),
                source,
            });
        }
        let agent = super::tls::agent(opts, registry)?;
        let plain_allowed = opts.insecure || reference.is_loopback();
        let mut client = Client {
            agent,
            reference,
            base: format!("https://{registry}"),
            origin: Origin::of(&format!("https://{registry}")).ok_or_else(|| {
                PushError::Registry {
                    registry: registry.clone(),
                    what: "is not a valid host[:port]".into(),
                }
            })?,
            creds,
            auth: AuthHeader::None,
            opts,
            progress,
        };
        let ping = if plain_allowed {
            // HTTPS first, once; a registry that does not speak TLS on a
            // loopback or --insecure host is then tried over plain HTTP.
            let url = format!("{}/v2/", client.base);
            match client.call("GET", &url, &[], None, false) {
                Ok(resp) => client.ping_answer(&url, resp)?,
                Err(https_failure) => {
                    client.base = format!("http://{registry}");
                    client.origin.scheme = Scheme::Http;
                    match client.ping() {
                        // An HTTPS server refusing plain HTTP: the TLS error is the real one.
                        Err(PushError::Registry { .. }) => {
                            return Err(match https_failure {
                                Failure::Fatal(e) => e,
                                Failure::Reauth(_) => client.unauthorized(StatusCode::UNAUTHORIZED),
                                Failure::Transient(reason, _) => PushError::Tls {
                                    registry: registry.clone(),
                                    reason,
                                },
                            })
                        }
                        other => other?,
                    }
                }
            }
        } else {
            client.ping()?
        };
        if let Some(challenge) = ping {
            client.authenticate(&challenge)?;
        }
        Ok(client)
    }

    /// `GET /v2/`: None when open, the challenge when it asks for auth.
    fn ping(&mut self) -> Result<Option<Challenge>, PushError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send("GET", &url, "check the registry", &[], None, false)?;
        self.ping_answer(&url, resp)
    }

    fn ping_answer(&self, url: &str, resp: Response<Body>) -> Result<Option<Challenge>, PushError> {
        match resp.status() {
            s if s.is_success() => Ok(None),
            StatusCode::UNAUTHORIZED => Ok(Some(challenge_of(&resp, &self.reference.registry)?)),
            _ => Err(self.unexpected("GET", url, resp)),
        }
    }

    fn authenticate(&mut self, challenge: &Challenge) -> Result<(), PushError> {
        let creds = self.creds.credentials.as_ref().map(|(c, _)| c.clone());
        match challenge {
            Challenge::Basic => {
                let Some(c) = creds else {
                    return Err(self.unauthorized(StatusCode::UNAUTHORIZED));
                };
                self.auth = AuthHeader::Basic(c.basic_header());
                // Check the password now, not halfway through the upload.
                let url = format!("{}/v2/", self.base);
                let resp = self.send("GET", &url, "log in", &[], None, true)?;
                match resp.status() {
                    s if s.is_success() => Ok(()),
                    s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                        Err(self.unauthorized(s))
                    }
                    _ => Err(self.unexpected("GET", &url, resp)),
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                // The password goes to the realm: check it first.
                origin::check_realm(realm, &self.origin, self.opts.insecure)
                    .map_err(|rule| self.refused("the token realm", realm, rule))?;
                let scope = format!("repository:{}:pull,push", self.reference.repository);
                let sep = if realm.contains('?') { '&' } else { '?' };
                let mut url = format!("{realm}{sep}scope={}", query_escape(&scope));
                if let Some(s) = service {
                    url.push_str(&format!("&service={}", query_escape(s)));
                }
                let basic = creds.map(|c| c.basic_header());
                self.auth = match basic {
                    Some(b) => AuthHeader::Basic(b),
                    None => AuthHeader::None,
                };
                let mut resp = self.send("GET", &url, "get a token", &[], None, true)?;
                let status = resp.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(self.unauthorized(status));
                }
                if !status.is_success() {
                    return Err(self.unexpected("GET", realm, resp));
                }
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_string()
                    .unwrap_or_default();
                let json: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                let token = json
                    .get("token")
                    .or_else(|| json.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| PushError::Registry {
                        registry: self.reference.registry.clone(),
                        what: format!("the token server {realm} answered without a token"),
                    })?;
                self.auth = AuthHeader::Bearer(format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    /// Whether the repository already has `digest`.
    pub fn blob_exists(&mut self, digest: &Digest) -> Result<bool, PushError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base, self.reference.repository
        );
        let resp = self.request("HEAD", &url, "check blob", &[], None)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.unexpected("HEAD", &url, resp)),
        }
    }

    /// Upload a blob, restarting from the POST on transient failures (and
    /// once after an expired token).
    pub fn upload_blob(&mut self, digest: &Digest, source: &BlobSource) -> Result<(), PushError> {
        // A local read problem is not the registry's: report it before any upload.
        source.open().map_err(|e| PushError::ReadBlob {
            path: source.path.clone(),
            digest: digest.clone(),
            source: e,
        })?;
        let what = format!("upload {digest}");
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            match self.upload_once(digest, source) {
                Ok(()) => return Ok(()),
                Err(Failure::Reauth(challenge)) if !reauthenticated => {
                    reauthenticated = true;
                    self.authenticate(&challenge)?;
                }
                Err(Failure::Reauth(_)) => return Err(self.unauthorized(StatusCode::UNAUTHORIZED)),
                Err(Failure::Transient(reason, wait)) if attempt < self.opts.retries => {
                    attempt += 1;
                    self.backoff(&what, attempt, reason, wait);
                }
                Err(Failure::Transient(reason, _)) => {
                    return Err(PushError::Unreachable {
                        registry: self.reference.registry.clone(),
                        what,
                        attempts: attempt + 1,
                        reason,
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    fn upload_once(&mut self, digest: &Digest, source: &BlobSource) -> Result<(), Failure> {
        let repo = &self.reference.repository;
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self.call_once("POST", &url, &[], None, digest)?;
        let resp = self.expect("POST", &url, resp, &[StatusCode::ACCEPTED])?;
        let mut location = self.location(&resp, &url)?;
        let final_body = match self.opts.chunk_size {
            None => Some(source.clone()),
            Some(chunk) => {
                let chunk = chunk.max(1);
                let mut start = 0;
                while start < source.size {
                    let len = chunk.min(source.size - start);
                    let part = BlobSource {
                        path: source.path.clone(),
                        offset: source.offset + start,
                        size: len,
                    };
                    let range = format!("{start}-{}", start + len - 1);
                    let headers = [
                        ("Content-Type", "application/octet-stream".to_string()),
                        ("Content-Range", range),
                    ];
                    let resp = self.call_once("PATCH", &location, &headers, Some(&part), digest)?;
                    let resp = self.expect("PATCH", &location, resp, &[StatusCode::ACCEPTED])?;
                    location = self.location(&resp, &location)?;
                    start += len;
                }
                None
            }
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!(
            "{location}{sep}digest={}",
            query_escape(&digest.to_string())
        );
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let resp = self.call_once("PUT", &put_url, &headers, final_body.as_ref(), digest)?;
        let done = [
            StatusCode::CREATED,
            StatusCode::NO_CONTENT,
            StatusCode::ACCEPTED,
        ];
        self.expect("PUT", &put_url, resp, &done).map(drop)
    }

    /// `resp` if its status is one of `ok`; otherwise what to do about it.
    fn expect(
        &self,
        method: &str,
        url: &str,
        resp: Response<Body>,
        ok: &[StatusCode],
    ) -> Result<Response<Body>, Failure> {
        let status = resp.status();
        if ok.contains(&status) {
            return Ok(resp);
        }
        if status == StatusCode::UNAUTHORIZED && matches!(self.auth, AuthHeader::Bearer(_)) {
            let challenge =
                challenge_of(&resp, &self.reference.registry).map_err(Failure::Fatal)?;
            return Err(Failure::Reauth(challenge));
        }
        Err(classify(status, &resp)
            .unwrap_or_else(|| Failure::Fatal(self.unexpected(method, url, resp))))
    }

    /// `PUT /v2/REPO/manifests/REF` with exactly `bytes`.
    pub fn put_manifest(
        &mut self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Stored, PushError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base, self.reference.repository
        );
        let headers = [("Content-Type", media_type.to_string())];
        let resp = self.request("PUT", &url, "push manifest", &headers, Some(bytes))?;
        if !resp.status().is_success() {
            return Err(self.unexpected("PUT", &url, resp));
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Stored {
            digest: header("Docker-Content-Digest"),
            subject: header("OCI-Subject"),
        })
    }

    /// `GET /v2/REPO/manifests/REF` accepting `accept`: the bytes, or None
    /// when the registry has no such manifest (404).
    pub fn get_manifest(
        &mut self,
        reference: &str,
        accept: &str,
    ) -> Result<Option<Vec<u8>>, PushError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base, self.reference.repository
        );
        let headers = [("Accept", accept.to_string())];
        let mut resp = self.request("GET", &url, "read manifest", &headers, None)?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => resp
                .body_mut()
                .with_config()
                .limit(4 << 20)
                .read_to_vec()
                .map(Some)
                .map_err(|e| PushError::Registry {
                    registry: self.reference.registry.clone(),
                    what: format!("GET {url}: cannot read the manifest: {e}"),
                }),
            _ => Err(self.unexpected("GET", &url, resp)),
        }
    }

    /// `GET /v2/REPO/{path}` (a `blobs/…` or `manifests/…` path) with
    /// retries, authentication and the redirect rules of [`Self::call`]:
    /// the response to stream, or None on 404. Other statuses are errors.
    pub fn get(
        &mut self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Option<Response<Body>>, PushError> {
        let url = self.url(path);
        let resp = self.request("GET", &url, "pull", headers, None)?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp)),
            _ => Err(self.unexpected("GET", &url, resp)),
        }
    }

    /// The absolute URL of `path` under `/v2/REPO/`, for requests and messages.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.reference.repository)
    }

    /// `host[:port]` of the registry, for messages.
    pub fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// One request with retries and one re-authentication on 401.
    fn request(
        &mut self,
        method: &str,
        url: &str,
        what: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Response<Body>, PushError> {
        let resp = self.send(method, url, what, headers, body, true)?;
        if resp.status() != StatusCode::UNAUTHORIZED || matches!(self.auth, AuthHeader::Basic(_)) {
            return Ok(resp);
        }
        // An expired token or a scope the first token lacked.
        let challenge = challenge_of(&resp, &self.reference.registry)?;
        self.authenticate(&challenge)?;
        let resp = self.send(method, url, what, headers, body, true)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(resp.status()));
        }
        Ok(resp)
    }

    /// Send with retries on transient failures (but not on 401/403/404).
    fn send(
        &mut self,
        method: &str,
        url: &str,
        what: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        with_auth: bool,
    ) -> Result<Response<Body>, PushError> {
        let mut attempt = 0;
        loop {
            let result = self.call(method, url, headers, body, with_auth);
            let failure = match result {
                Ok(resp) => match classify(resp.status(), &resp) {
                    Some(f) => f,
                    None => return Ok(resp),
                },
                Err(f) => f,
            };
            match failure {
                Failure::Transient(reason, wait) if attempt < self.opts.retries => {
                    attempt += 1;
                    self.backoff(what, attempt, reason, wait);
                }
                Failure::Transient(reason, _) => {
                    return Err(PushError::Unreachable {
                        registry: self.reference.registry.clone(),
                        what: format!("{what} ({method} {url})"),
                        attempts: attempt + 1,
                        reason,
                    })
                }
                Failure::Fatal(e) => return Err(e),
                Failure::Reauth(_) => return Err(self.unauthorized(StatusCode::UNAUTHORIZED)),
            }
        }
    }

    fn backoff(&self, what: &str, attempt: u32, reason: String, wait: Option<Duration>) {
        let exp = self.opts.backoff.saturating_mul(1 << (attempt - 1).min(10));
        let delay = wait.unwrap_or(exp).min(Duration::from_secs(30));
        (self.progress)(PushEvent::Retrying {
            what: what.to_string(),
            attempt,
            delay,
            reason,
        });
        std::thread::sleep(delay);
    }

    /// A single request, following the redirects of a GET or HEAD;
    /// transport errors classified.
    ///
    /// The agent follows no redirect itself: ureq would turn a redirected
    /// PUT or POST into a GET (a push that "succeeds" without storing
    /// anything), and the credential rules belong here, in one place.
    fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        with_auth: bool,
    ) -> Result<Response<Body>, Failure> {
        const MAX_REDIRECTS: usize = 5;
        let auth = self.auth.value().filter(|_| with_auth);
        if !matches!(method, "GET" | "HEAD") {
            return self.call_direct(method, url, headers, body, auth);
        }
        let start = Origin::of(url);
        let mut auth = auth;
        let (resp, _) = crate::http::follow_redirects(
            url,
            MAX_REDIRECTS,
            |current| {
                // A credential is for the origin it was meant for, not for
                // wherever that origin sends the client next.
                if Origin::of(current) != start {
                    auth = None;
                }
                self.call_direct(method, current, headers, body, auth)
            },
            |current, location| {
                let next = origin::resolve(current, location);
                let to = Origin::of(&next).ok_or_else(|| {
                    Failure::Fatal(self.refused("a redirect to", &next, Refusal::NotHttp))
                })?;
                if to.scheme == Scheme::Http && current.starts_with("https:") {
                    return Err(Failure::Fatal(self.refused(
                        "a redirect to",
                        &next,
                        Refusal::Downgrade,
                    )));
                }
                Ok(next)
            },
            |last| {
                Failure::Fatal(PushError::Registry {
                    registry: self.reference.registry.clone(),
                    what: format!("more than {MAX_REDIRECTS} redirects, the last to {last}"),
                })
            },
        )?;
        Ok(resp)
    }

    /// One request to `url`, nothing followed.
    fn call_direct(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        auth: Option<&str>,
    ) -> Result<Response<Body>, Failure> {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(v) = auth {
            req = req.header("Authorization", v);
        }
        match body {
            Some(b) => req
                .body(b.to_vec())
                .map_err(|e| self.fatal_http(url, e))
                .and_then(|r| self.agent.run(r).map_err(|e| self.transport(url, e))),
            None => req
                .body(())
                .map_err(|e| self.fatal_http(url, e))
                .and_then(|r| self.agent.run(r).map_err(|e| self.transport(url, e))),
        }
    }

    /// A single authenticated request whose body streams from a blob source.
    fn call_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&BlobSource>,
        digest: &Digest,
    ) -> Result<Response<Body>, Failure> {
        let Some(src) = body else {
            let mut h = headers.to_vec();
            h.push(("Content-Length", "0".into()));
            return self.call(method, url, &h, None, true);
        };
        let reader = src.open().map_err(|e| {
            Failure::Fatal(PushError::ReadBlob {
                path: src.path.clone(),
                digest: digest.clone(),
                source: e,
            })
        })?;
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Content-Length", src.size.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(v) = self.auth.value() {
            req = req.header("Authorization", v);
        }
        let req = req
            .body(ureq::SendBody::from_owned_reader(reader))
            .map_err(|e| self.fatal_http(url, e))?;
        self.agent.run(req).map_err(|e| self.transport(url, e))
    }

    fn fatal_http(&self, url: &str, e: ureq::http::Error) -> Failure {
        Failure::Fatal(PushError::Registry {
            registry: self.reference.registry.clone(),
            what: format!("cannot build a request for {url}: {e}"),
        })
    }

    fn transport(&self, url: &str, e: ureq::Error) -> Failure {
        let registry = self.reference.registry.clone();
        match e {
            // rustls reports a failed handshake as InvalidData: a
            // certificate problem (or a plain-HTTP answer) that no retry fixes.
            ureq::Error::Io(io)
                if io.kind() == io::ErrorKind::InvalidData && url.starts_with("https:") =>
            {
                let reason = io.to_string();
                Failure::Fatal(if reason.contains("InvalidContentType") {
                    PushError::PlainHttp {
                        registry,
                        url: url.to_string(),
                    }
                } else {
                    PushError::Tls {
                        registry,
                        reason: format!("{url}: {reason}"),
                    }
                })
            }
            ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::BodyStalled => Failure::Transient(format!("{url}: {e}"), None),
            ureq::Error::HostNotFound => Failure::Fatal(PushError::UnknownHost {
                registry,
                source: io::Error::new(io::ErrorKind::NotFound, "host not found"),
            }),
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
                Failure::Fatal(PushError::Tls {
                    registry,
                    reason: e.to_string(),
                })
            }
            ureq::Error::Protocol(_) => Failure::Fatal(PushError::Protocol {
                registry,
                reason: format!("{url}: {e}"),
            }),
            other => Failure::Fatal(PushError::Registry {
                registry,
                what: format!("{url}: {other}"),
            }),
        }
    }

    /// The upload URL from `Location`, made absolute.
    fn location(&self, resp: &Response<Body>, url: &str) -> Result<String, Failure> {
        let loc = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Failure::Fatal(PushError::Registry {
                    registry: self.reference.registry.clone(),
                    what: format!("{url} answered {} without a Location header", resp.status()),
                })
            })?;
        let location = origin::resolve(url, loc);
        // Every PATCH and PUT to it carries the registry's credentials.
        origin::check_upload(&location, &self.origin)
            .map_err(|rule| Failure::Fatal(self.refused("the upload location", &location, rule)))?;
        Ok(location)
    }

    fn refused(&self, what: &'static str, url: &str, rule: Refusal) -> PushError {
        PushError::Refused {
            registry: self.reference.registry.clone(),
            what,
            url: url.to_string(),
            rule,
        }
    }

    fn unauthorized(&self, status: StatusCode) -> PushError {
        PushError::Unauthorized {
            registry: self.reference.registry.clone(),
            repository: self.reference.repository.clone(),
            status: status.as_u16(),
            looked: self.creds.describe(),
            had_credentials: self.creds.credentials.is_some(),
        }
    }

    fn unexpected(&self, method: &str, url: &str, mut resp: Response<Body>) -> PushError {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return self.unauthorized(status);
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        // Only a GET or HEAD is redirected; a write would land elsewhere.
        let redirect = match resp.headers().get("Location").and_then(|v| v.to_str().ok()) {
            Some(to) if status.is_redirection() => format!(
                " (to {to}); minibuild does not follow a redirected {method}: push to the registry that serves it directly"
            ),
            _ => String::new(),
        };
        PushError::Registry {
            registry: self.reference.registry.clone(),
            what: format!(
                "{method} {url} answered {status}{redirect}{}",
                registry_message(&body)
            ),
        }
    }
}

/// Transient statuses: 5xx and 429 (with `Retry-After` seconds if given).
fn classify(status: StatusCode, resp: &Response<Body>) -> Option<Failure> {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        let wait = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Some(Failure::Transient(format!("status {status}"), wait));
    }
    None
}

fn challenge_of(resp: &Response<Body>, registry: &str) -> Result<Challenge, PushError> {
    resp.headers()
        .get_all("WWW-Authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::parse)
        .ok_or_else(|| PushError::Registry {
            registry: registry.to_string(),
            what: "answered 401 without a Basic or Bearer WWW-Authenticate challenge".into(),
        })
}

/// `: CODE message; …` from a distribution error body, or nothing.
fn registry_message(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    let msgs: Vec<String> = json
        .get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            format!("{code} {msg}").trim().to_string()
        })
        .collect();
    if msgs.is_empty() {
        String::new()
    } else {
        format!(": {}", msgs.join("; "))
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn escapes_scope_and_digest() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(query_escape("sha256:ab"), "sha256%3Aab");
    }

    /// A loopback server answering each connection with the next status
    /// of `script` (then 200 forever); returns its address.
    fn scripted_server(script: Vec<&'static str>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => buf.push(byte[0]),
                        _ => break,
                    }
                    // A TLS ClientHello (the HTTPS probe): hang up, as a
                    // plain HTTP server effectively does.
                    if buf == [0x16] {
                        break;
                    }
                }
                if buf == [0x16] {
                    continue;
                }
                let status = script.next().unwrap_or("200 OK");
                let resp = format!(
                    "HTTP/1.1 {status}\r\nRetry-After: 0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = std::io::Write::write_all(&mut stream, resp.as_bytes());
            }
        });
        addr
    }

    fn test_opts() -> PushOptions {
        PushOptions {
            auth_env: Default::default(),
            retries: 3,
            backoff: Duration::from_millis(5),
            ..PushOptions::default()
        }
    }

    #[test]
    fn retries_5xx_and_429_then_succeeds() {
        let addr = scripted_server(vec!["503 Service Unavailable", "429 Too Many Requests"]);
        let reference: Reference = format!("{addr}/app:v1").parse().unwrap();
        let opts = test_opts();
        let events = std::cell::RefCell::new(Vec::new());
        let progress = |e: PushEvent| events.borrow_mut().push(e);
        // The HTTPS probe fails on this plain server; the HTTP pings are retried.
        Client::connect(&reference, &opts, Found::default(), &progress).unwrap();
        let events = events.into_inner();
        let reasons: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                PushEvent::Retrying {
                    reason, attempt, ..
                } => Some(format!("{attempt} {reason}")),
                _ => None,
            })
            .collect();
        // Retry-After: 0 is honoured (no exponential wait needed here).
        assert_eq!(reasons.len(), 2, "{events:?}");
        assert!(
            reasons[0].starts_with("1 ") && reasons[0].contains("503"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("2 ") && reasons[1].contains("429"),
            "{reasons:?}"
        );
    }

    #[test]
    fn gives_up_after_the_retries() {
        let addr = scripted_server(vec!["502 Bad Gateway"; 10]);
        let reference: Reference = format!("{addr}/app:v1").parse().unwrap();
        let opts = test_opts();
        let e = Client::connect(&reference, &opts, Found::default(), &|_| {})
            .err()
            .unwrap();
        assert!(
            matches!(e, PushError::Unreachable { attempts: 4, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains(&addr), "{e}");
    }

    #[test]
    fn registry_error_messages() {
        let body = r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}},{"code":"X"}]}"#;
        assert_eq!(
            registry_message(body),
            ": MANIFEST_INVALID manifest invalid; X"
        );
        assert_eq!(registry_message("<html>"), "");
    }
}
