//! One door for reading bytes by location: `file://` URLs, plain paths and
//! `http(s)://` URLs, all opened as a streaming reader.
//!
//! A [`Client`] wraps a `ureq` agent (rustls with the platform verifier, so
//! the system's trust store decides) plus a [`RetryPolicy`]. There is no
//! global state: the CLI builds one client and hands it to each stage, and the
//! registry push reuses its agent via [`Client::agent`].
//!
//! Retries: [`Client::open`] retries the *request* (connect errors, timeouts,
//! HTTP 5xx, 408 and 429) with exponential backoff. A failure while reading
//! the body cannot be retried by the reader itself, so callers that stream a
//! whole file wrap the open-and-read in [`Client::retrying`], which re-runs
//! the closure on [`HttpError::is_transient`] errors.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

/// Sent with every request so mirror operators can see who is asking.
pub const USER_AGENT: &str = concat!("minibuild/", env!("CARGO_PKG_VERSION"));

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, including the first (1 = no retry).
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt.saturating_sub(1)).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A failure to open or read a location; the message names the location and
/// suggests what to check.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url} answered HTTP {status}{}; {}", tries(*attempts), status_hint(*status))]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("cannot fetch {url}{}; {}", tries(*attempts), transport_hint(source))]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: ureq::Error,
    },
    #[error("reading {url} failed mid-transfer{}; the connection dropped or stalled, try again", tries(*attempts))]
    Read {
        url: String,
        attempts: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}; check that the path exists and is readable", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{url}` is neither a local path, a file:// URL nor an http(s):// URL")]
    UnsupportedScheme { url: String },
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        404 | 410 => "check the base URL and the $releasever/$basearch it was built from",
        401 | 403 => "the server refused access; check the URL and any credentials it needs",
        429 => "the server is rate-limiting; wait a while or use another mirror",
        500..=599 => "the server failed; try again later or use another mirror",
        _ => "check the URL",
    }
}

fn transport_hint(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::HostNotFound => "the host name does not resolve; check the URL and DNS",
        ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
            "the server is unreachable; check the network, proxy (https_proxy) and the URL"
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
            "the TLS handshake failed; check the system's CA certificates and the server name"
        }
        _ => "check the URL and the network",
    }
}

impl HttpError {
    /// Whether trying again might succeed: 5xx/408/429, connection and
    /// timeout failures, and streams cut short. Not 404, not local files.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..=599).contains(status)
            }
            HttpError::Transport { source, .. } => matches!(
                source,
                ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Io(_)
                    | ureq::Error::Protocol(_)
                    | ureq::Error::BodyStalled
            ),
            HttpError::Read { .. } => true,
            HttpError::File { .. } | HttpError::UnsupportedScheme { .. } => false,
        }
    }

    /// An error from reading an opened body (which only yields `io::Error`).
    /// A failed request (first attempt).
    pub fn transport(url: &str, source: ureq::Error) -> HttpError {
        HttpError::Transport {
            url: url.to_string(),
            attempts: 1,
            source,
        }
    }

    pub fn read(url: &str, source: io::Error) -> HttpError {
        HttpError::Read {
            url: url.to_string(),
            attempts: 1,
            source,
        }
    }
}

/// Errors [`Client::retrying`] can classify and annotate.
pub trait Retryable {
    /// Whether another attempt might succeed.
    fn is_transient(&self) -> bool;
    /// Called on the final error with the number of attempts made.
    fn record_attempts(&mut self, _attempts: u32) {}
}

impl Retryable for HttpError {
    fn is_transient(&self) -> bool {
        HttpError::is_transient(self)
    }

    fn record_attempts(&mut self, n: u32) {
        match self {
            HttpError::Status { attempts, .. }
            | HttpError::Transport { attempts, .. }
            | HttpError::Read { attempts, .. } => *attempts = n,
            HttpError::File { .. } | HttpError::UnsupportedScheme { .. } => {}
        }
    }
}

/// An opened location, read as a stream.
pub struct Body {
    reader: Box<dyn Read + Send>,
    len: Option<u64>,
}

impl Body {
    /// The length announced by the server or the file system, if any.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").field("len", &self.len).finish()
    }
}

/// Where a location string points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    File(PathBuf),
    Http,
}

fn classify(url: &str) -> Result<Target, HttpError> {
    if let Some(rest) = url.strip_prefix("file://") {
        // `file:///abs` and `file://localhost/abs`; other hosts are not local.
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(HttpError::UnsupportedScheme {
                url: url.to_string(),
            });
        }
        return Ok(Target::File(PathBuf::from(percent_decode(path))));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Target::Http);
    }
    if url.contains("://") {
        return Err(HttpError::UnsupportedScheme {
            url: url.to_string(),
        });
    }
    Ok(Target::File(PathBuf::from(url)))
}

/// `%20` → space in `file://` URLs; invalid escapes are kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Join a location relative to a base ending in `/`. A location that is
/// itself absolute (`xml:base` in primary.xml makes those) wins.
pub fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let mut url = String::with_capacity(base.len() + location.len() + 1);
    url.push_str(base);
    if !url.ends_with('/') {
        url.push('/');
    }
    url.push_str(location.trim_start_matches('/'));
    url
}

/// Opens locations; cheap to clone (the agent's connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    retry: RetryPolicy,
    /// Repo credentials, each sent only to its own origin (see [`crate::credentials`]).
    auth: std::sync::Arc<crate::credentials::AuthTable>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client::with_retry(RetryPolicy::default())
    }

    pub fn with_retry(retry: RetryPolicy) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .user_agent(USER_AGENT)
            // We verify bytes against checksums of the file as stored; a
            // transparently decompressed body would never match.
            .accept_encoding("identity")
            // Status codes are classified here (retry 5xx, not 404).
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // No total body limit (RPMs can be large), but a stalled read fails.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            retry,
            auth: Default::default(),
        }
    }

    /// This client, sending `auth`'s credentials to their origins.
    pub fn with_auth(mut self, auth: crate::credentials::AuthTable) -> Client {
        self.auth = std::sync::Arc::new(auth);
        self
    }

    /// A GET for `url`, with its origin's credential when there is one.
    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let request = self.agent.get(url);
        match self.auth.header_for(url) {
            Some(value) => request.header("Authorization", &value),
            None => request,
        }
    }

    /// The underlying agent, for requests other than plain GETs (registry
    /// push). It is configured with `http_status_as_error(false)`: callers
    /// check the status themselves, and can reuse [`Client::retrying`].
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Open `url` (a `file://` URL, a plain path or an `http(s)://` URL) for
    /// reading, retrying transient failures of the request.
    pub fn open(&self, url: &str) -> Result<Body, HttpError> {
        self.retrying(|| self.open_once(url))
    }

    /// Read all of `url` into memory, retrying the whole transfer on
    /// transient failures. For small files (repomd.xml).
    pub fn read_to_vec(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.retrying(|| {
            let mut body = self.open_once(url)?;
            let mut buf = Vec::with_capacity(body.len().unwrap_or(0).min(1 << 24) as usize);
            body.read_to_end(&mut buf)
                .map_err(|e| HttpError::read(url, e))?;
            Ok(buf)
        })
    }

    /// Bytes `start..end` of `url` (fewer when the file is shorter),
    /// retrying transient failures. Over HTTP this is a `Range` request; a
    /// server that ignores it and answers 200 is read only up to `end`.
    pub fn read_range(&self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, HttpError> {
        let want = end.saturating_sub(start);
        self.retrying(|| {
            let mut buf = Vec::with_capacity(want.min(1 << 24) as usize);
            match classify(url)? {
                Target::File(path) => {
                    let file_err = |source| HttpError::File {
                        path: path.clone(),
                        source,
                    };
                    let mut file = File::open(&path).map_err(file_err)?;
                    io::Seek::seek(&mut file, io::SeekFrom::Start(start)).map_err(file_err)?;
                    file.take(want).read_to_end(&mut buf).map_err(file_err)?;
                }
                Target::Http => {
                    let range = format!("bytes={start}-{}", end.saturating_sub(1));
                    let response = self
                        .get(url)
                        .header("Range", &range)
                        .call()
                        .map_err(|source| HttpError::transport(url, source))?;
                    let status = response.status().as_u16();
                    let skip = match status {
                        206 => 0,
                        200 => start,
                        _ => {
                            return Err(HttpError::Status {
                                url: url.to_string(),
                                status,
                                attempts: 1,
                            })
                        }
                    };
                    let mut body = response.into_body().into_reader();
                    io::copy(&mut (&mut body).take(skip), &mut io::sink())
                        .map_err(|e| HttpError::read(url, e))?;
                    body.take(want)
                        .read_to_end(&mut buf)
                        .map_err(|e| HttpError::read(url, e))?;
                }
            }
            Ok(buf)
        })
    }

    /// Run `op` until it succeeds, fails permanently, or the policy's
    /// attempts are used up, sleeping with exponential backoff in between.
    /// The final error records how many attempts were made.
    pub fn retrying<T, E: Retryable>(&self, mut op: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < attempts => {
                    std::thread::sleep(self.retry.backoff(attempt));
                    attempt += 1;
                }
                Err(mut e) => {
                    e.record_attempts(attempt);
                    return Err(e);
                }
            }
        }
    }

    /// One try at opening `url`, no retries.
    pub fn open_once(&self, url: &str) -> Result<Body, HttpError> {
        match classify(url)? {
            Target::File(path) => {
                let file = File::open(&path).map_err(|source| HttpError::File {
                    path: path.clone(),
                    source,
                })?;
                let len = file.metadata().ok().map(|m| m.len());
                Ok(Body {
                    reader: Box::new(file),
                    len,
                })
            }
            Target::Http => {
                let response = self
                    .get(url)
                    .call()
                    .map_err(|source| HttpError::transport(url, source))?;
                let status = response.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(HttpError::Status {
                        url: url.to_string(),
                        status,
                        attempts: 1,
                    });
                }
                let body = response.into_body();
                let len = body.content_length();
                Ok(Body {
                    reader: Box::new(body.into_reader()),
                    len,
                })
            }
        }
    }
}

/// A tiny HTTP/1.1 file server on 127.0.0.1 for tests, with fault injection.
#[cfg(test)]
pub(crate) mod test_server {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    /// What the server does for one request to a path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Fault {
        /// Answer 503 this many more times before serving.
        Unavailable(u32),
        /// Announce the full length but send only half and close.
        Truncate,
        /// Serve the content with one byte flipped.
        Corrupt,
    }

    #[derive(Default)]
    struct State {
        files: BTreeMap<String, Vec<u8>>,
        faults: BTreeMap<String, Fault>,
        hits: BTreeMap<String, u32>,
    }

    /// Serves `files` (path → bytes) until dropped with the process.
    #[derive(Clone)]
    pub struct Server {
        pub base: String,
        state: Arc<Mutex<State>>,
    }

    impl Server {
        pub fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}/", listener.local_addr().unwrap());
            let state = Arc::new(Mutex::new(State::default()));
            let st = Arc::clone(&state);
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let st = Arc::clone(&st);
                    std::thread::spawn(move || {
                        let _ = serve(stream, &st);
                    });
                }
            });
            Server { base, state }
        }

        pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
            let mut st = self.state.lock().unwrap();
            st.files.insert(path.to_string(), bytes.into());
        }

        pub fn fault(&self, path: &str, fault: Option<Fault>) {
            let mut st = self.state.lock().unwrap();
            match fault {
                Some(f) => st.faults.insert(path.to_string(), f),
                None => st.faults.remove(path),
            };
        }

        /// How many requests reached `path`.
        pub fn hits(&self, path: &str) -> u32 {
            self.state
                .lock()
                .unwrap()
                .hits
                .get(path)
                .copied()
                .unwrap_or(0)
        }

        pub fn url(&self, path: &str) -> String {
            format!("{}{}", self.base, path)
        }
    }

    fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut stream = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let (status, body, fault) = {
                let mut st = state.lock().unwrap();
                *st.hits.entry(path.clone()).or_default() += 1;
                let fault = st.faults.get(&path).cloned();
                if let Some(Fault::Unavailable(n)) = fault {
                    if n > 1 {
                        st.faults.insert(path.clone(), Fault::Unavailable(n - 1));
                    } else {
                        st.faults.remove(&path);
                    }
                    (503, b"busy".to_vec(), None)
                } else {
                    match st.files.get(&path) {
                        Some(b) => (200, b.clone(), fault),
                        None => (404, b"not found".to_vec(), None),
                    }
                }
            };
            let mut body = body;
            if fault == Some(Fault::Corrupt) && !body.is_empty() {
                let mid = body.len() / 2;
                body[mid] ^= 0xff;
            }
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
                body.len(),
                if fault == Some(Fault::Truncate) {
                    "close"
                } else {
                    "keep-alive"
                }
            );
            stream.write_all(head.as_bytes())?;
            if fault == Some(Fault::Truncate) {
                stream.write_all(&body[..body.len() / 2])?;
                stream.flush()?;
                return Ok(());
            }
            stream.write_all(&body)?;
            stream.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{Fault, Server};
    use super::*;

    /// A server that ignores `Range` (this test server does) answers 200:
    /// the bytes before `start` are skipped and the rest cut at `end`.
    /// `file://` reads the range in place, short at the end of the file.
    #[test]
    fn read_range_over_http_without_range_support_and_from_files() {
        let server = Server::start();
        server.put("f", b"0123456789".to_vec());
        let c = Client::new();
        assert_eq!(c.read_range(&server.url("f"), 3, 6).unwrap(), b"345");
        assert_eq!(c.read_range(&server.url("f"), 8, 20).unwrap(), b"89");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let url = format!("file://{}/f", dir.path().display());
        assert_eq!(c.read_range(&url, 2, 4).unwrap(), b"23");
        assert_eq!(c.read_range(&url, 9, 64).unwrap(), b"9");
        assert!(c.read_range(&server.url("missing"), 0, 4).is_err());
    }

    fn quick_client() -> Client {
        Client::with_retry(RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        })
    }

    #[test]
    fn classifies_locations() {
        assert_eq!(
            classify("file:///srv/repo/x").unwrap(),
            Target::File("/srv/repo/x".into())
        );
        assert_eq!(
            classify("file://localhost/srv/a%20b").unwrap(),
            Target::File("/srv/a b".into())
        );
        assert_eq!(classify("repo/x").unwrap(), Target::File("repo/x".into()));
        assert_eq!(classify("https://h/x").unwrap(), Target::Http);
        assert!(matches!(
            classify("ftp://h/x"),
            Err(HttpError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            classify("file://otherhost/x"),
            Err(HttpError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("/a%2"), "/a%2");
        assert_eq!(percent_decode("/a%zz%41"), "/a%zzA");
    }

    #[test]
    fn join_handles_slashes_and_absolute_locations() {
        assert_eq!(
            join("http://h/r/", "Packages/a.rpm"),
            "http://h/r/Packages/a.rpm"
        );
        assert_eq!(
            join("http://h/r", "/Packages/a.rpm"),
            "http://h/r/Packages/a.rpm"
        );
        assert_eq!(
            join("http://h/r/", "https://cdn/x.rpm"),
            "https://cdn/x.rpm"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn reads_local_files_and_names_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"hello").unwrap();
        let c = quick_client();
        assert_eq!(c.read_to_vec(path.to_str().unwrap()).unwrap(), b"hello");
        let url = format!("file://{}", path.display());
        assert_eq!(c.open(&url).unwrap().len(), Some(5));

        let err = c
            .open(dir.path().join("nope").to_str().unwrap())
            .unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn retries_one_503_then_succeeds() {
        let s = Server::start();
        s.put("a", "payload");
        s.fault("a", Some(Fault::Unavailable(1)));
        let body = quick_client().read_to_vec(&s.url("a")).unwrap();
        assert_eq!(body, b"payload");
        assert_eq!(s.hits("a"), 2);
    }

    #[test]
    fn gives_up_after_the_policy_and_says_so() {
        let s = Server::start();
        s.put("a", "payload");
        s.fault("a", Some(Fault::Unavailable(10)));
        let err = quick_client().read_to_vec(&s.url("a")).unwrap_err();
        assert!(
            matches!(
                err,
                HttpError::Status {
                    status: 503,
                    attempts: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(s.hits("a"), 3);
        let msg = err.to_string();
        assert!(
            msg.contains(&s.url("a")) && msg.contains("after 3 attempts"),
            "{msg}"
        );
    }

    #[test]
    fn does_not_retry_404() {
        let s = Server::start();
        let err = quick_client().open(&s.url("missing")).unwrap_err();
        assert!(matches!(
            err,
            HttpError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ));
        assert_eq!(s.hits("missing"), 1);
        assert!(err.to_string().contains("$releasever"), "{err}");
    }

    #[test]
    fn a_truncated_body_is_a_transient_read_error() {
        let s = Server::start();
        s.put("big", vec![7u8; 10_000]);
        s.fault("big", Some(Fault::Truncate));
        let c = Client::with_retry(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        });
        let err = c.read_to_vec(&s.url("big")).unwrap_err();
        assert!(matches!(err, HttpError::Read { .. }), "{err:?}");
        assert!(err.is_transient());
    }

    #[test]
    fn connection_refused_is_transient_and_named() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let err = quick_client().open(&url).unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}
