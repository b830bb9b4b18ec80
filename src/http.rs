//! One door for reading bytes by location: `file://` URLs, plain paths and
//! `http(s)://` URLs, all opened as a streaming reader.
//!
//! A [`Client`] wraps a `ureq` agent (rustls; the system's trust store plus
//! any `--ca`/`--cert-dir` CAs, see [`TlsTrust`]), a [`RetryPolicy`], the
//! repos' credentials (each sent only to its own origin, looked up again on
//! every redirect hop, see `crate::credentials`) and, with `--offline`, a
//! refusal of every network request. There is no global state: the CLI
//! builds one client and hands it to each stage.
//!
//! Mirrors are not trusted, so every request is fenced and bounded:
//! - the policy's allow-list (`Fence`) is checked on every URL fetched,
//!   redirect targets included; redirects are followed by
//!   [`follow_redirects`] (the loop the registry client shares), one hop at
//!   a time, to targets `location::redirect` allows: never from https to
//!   http and never to `file://`;
//! - every read has a byte bound (the size the checksummed metadata declares,
//!   or a hard cap for small files) and a deadline scaled by that bound, on
//!   top of connect and idle timeouts ([`Timeouts`]);
//! - a local location must be a regular file (a FIFO would block forever).
//!
//! Retries: [`Client::open`] retries the *request* (connect errors, timeouts,
//! HTTP 5xx, 408 and 429) with exponential backoff. A failure while reading
//! the body cannot be retried by the reader itself, so callers that stream a
//! whole file wrap the open-and-read in [`Client::retrying`], which re-runs
//! the closure on any [`Retryable`] error that is transient (an
//! [`HttpError`], or the cache's download error around one).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::location::{self, Fence, LocationError};

/// Sent with every request so mirror operators can see who is asking.
pub const USER_AGENT: &str = concat!("minibuild/", env!("CARGO_PKG_VERSION"));

/// Hard cap on a small file read whole into memory: repomd.xml, its `.asc`,
/// a gpgkey (real ones are a few KiB).
pub const SMALL_FILE_MAX: u64 = 4 << 20;

/// Redirect hops followed per request.
const MAX_REDIRECTS: u32 = 8;

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

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting, waiting for the response head, and the longest silence
    /// while reading a body (`--timeout`).
    pub idle: Duration,
    /// The slowest average rate tolerated over a whole body, in bytes per
    /// second: a request must end within `idle + bound / min_rate`, so a
    /// server trickling one byte per second is cut off.
    pub min_rate: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: Duration::from_secs(30),
            min_rate: 64 << 10,
        }
    }
}

impl Timeouts {
    /// The overall deadline for a transfer of at most `bound` bytes.
    pub fn deadline(&self, bound: u64) -> Duration {
        self.idle
            .saturating_add(Duration::from_secs(bound / self.min_rate.max(1)))
    }
}

/// Extra trust for TLS: `--ca FILE` and `--cert-dir DIR` (`*.crt` CAs and a
/// `*.cert` + `*.key` client certificate, as in containers' `certs.d`).
/// They add to the system's roots, never replace them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsTrust {
    pub ca: Option<PathBuf>,
    pub cert_dir: Option<PathBuf>,
}

/// Everything a [`Client`] is configured with besides retries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub timeouts: Timeouts,
    pub tls: TlsTrust,
    /// The policy's allow-list, checked on every URL fetched.
    pub fence: Fence,
    /// Who to tell while a request waits for its answer (none: silence).
    pub waiting: Option<WaitNotice>,
    /// `--offline`: refuse every network request (the cache and local
    /// paths only), so a build that needs the network says so instead of
    /// waiting on a mirror it cannot reach.
    pub offline: bool,
}

/// Told every `every` that a request is still waiting for the server's
/// answer, so a log shows a stalled mirror before its timeout ends it.
#[derive(Clone)]
pub struct WaitNotice {
    pub every: Duration,
    pub tell: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
}

impl fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitNotice")
            .field("every", &self.every)
            .finish_non_exhaustive()
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
    #[error("{} is a {kind}, not a regular file; a repo location must name a file\n  hint: check the repo's metadata and the path", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("`{url}` is neither a local path, a file:// URL nor an http(s):// URL")]
    UnsupportedScheme { url: String },
    #[error("{url} is not in the cache and --offline forbids the network\n  hint: run once without --offline to fill the cache")]
    Offline { url: String },
    #[error("refused to fetch {0}")]
    Refused(#[from] LocationError),
    #[error("{url} sends more than {limit} bytes, the most {why}; stopped reading\n  hint: the mirror may be mid-sync, or serving a wrong or hostile file; try again later, or report it and use another mirror")]
    TooLarge {
        url: String,
        limit: u64,
        why: &'static str,
    },
    #[error("{url} did not finish within {}s (deadline for {bound} bytes at the slowest rate allowed, {} bytes/s, after a {}s start)\n  hint: the mirror is too slow or stalling; raise --timeout or use another mirror", deadline.as_secs(), timeouts.min_rate, timeouts.idle.as_secs())]
    Deadline {
        url: String,
        deadline: Duration,
        bound: u64,
        timeouts: Timeouts,
    },
    #[error("{url} redirects more than {MAX_REDIRECTS} times\n  hint: the mirror is misconfigured; use another mirror")]
    TooManyRedirects { url: String },
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

/// A TLS failure: a handshake or certificate error, which ureq reports as
/// `Tls`/`Rustls` or as an `Io` error wrapping the rustls error. Trying
/// again cannot fix it.
fn is_tls_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

fn transport_hint(e: &ureq::Error) -> &'static str {
    if is_tls_failure(e) {
        return "the TLS handshake failed; check the system's CA certificates and the server name, or trust a private CA with --ca FILE or --cert-dir DIR";
    }
    match e {
        ureq::Error::HostNotFound => "the host name does not resolve; check the URL and DNS",
        ureq::Error::Timeout(_) => {
            "the server did not answer in time; check the network and the URL, or raise --timeout"
        }
        ureq::Error::ConnectionFailed => {
            "the server is unreachable; check the network, proxy (https_proxy) and the URL"
        }
        _ => "check the URL and the network",
    }
}

impl HttpError {
    /// Whether trying again might succeed: 5xx/408/429, connection and
    /// timeout failures, and streams cut short. Not 404, not local files,
    /// not a refusal, a bound or a deadline crossed (the mirror would do
    /// the same again).
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..=599).contains(status)
            }
            HttpError::Transport { source, .. } => {
                !is_tls_failure(source)
                    && matches!(
                        source,
                        ureq::Error::Timeout(_)
                            | ureq::Error::ConnectionFailed
                            | ureq::Error::Io(_)
                            | ureq::Error::Protocol(_)
                            | ureq::Error::BodyStalled
                    )
            }
            HttpError::Read { .. } => true,
            HttpError::File { .. }
            | HttpError::NotAFile { .. }
            | HttpError::UnsupportedScheme { .. }
            | HttpError::Offline { .. }
            | HttpError::Refused(_)
            | HttpError::TooLarge { .. }
            | HttpError::Deadline { .. }
            | HttpError::TooManyRedirects { .. } => false,
        }
    }

    /// A failed request (first attempt).
    pub fn transport(url: &str, source: ureq::Error) -> HttpError {
        HttpError::Transport {
            url: url.to_string(),
            attempts: 1,
            source,
        }
    }

    /// An error from reading an opened body (which only yields `io::Error`):
    /// a crossed bound or deadline keeps its own kind.
    pub fn read(url: &str, source: io::Error) -> HttpError {
        if source
            .get_ref()
            .is_some_and(|e| e.downcast_ref::<Crossed>().is_some())
        {
            let inner = source.into_inner().expect("checked above");
            return match *inner.downcast::<Crossed>().expect("checked above") {
                Crossed::Limit { limit, why } => HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                    why,
                },
                Crossed::Deadline {
                    deadline,
                    bound,
                    timeouts,
                } => HttpError::Deadline {
                    url: url.to_string(),
                    deadline,
                    bound,
                    timeouts,
                },
            };
        }
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
            _ => {}
        }
    }
}

/// How many bytes a read may bring, and why that many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub bytes: u64,
    /// For the message: "repomd.xml declares", "allowed for a small file"…
    pub why: &'static str,
}

impl Bound {
    /// At most `bytes`, because `why`.
    pub const fn new(bytes: u64, why: &'static str) -> Bound {
        Bound { bytes, why }
    }

    /// The cap on small files read whole.
    pub const SMALL_FILE: Bound = Bound::new(SMALL_FILE_MAX, "allowed for a small file");
}

/// A bound or deadline crossed mid-body; carried inside an `io::Error`
/// and turned back into [`HttpError`] by [`HttpError::read`].
#[derive(Debug)]
enum Crossed {
    Limit {
        limit: u64,
        why: &'static str,
    },
    Deadline {
        deadline: Duration,
        bound: u64,
        timeouts: Timeouts,
    },
}

impl fmt::Display for Crossed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crossed::Limit { limit, why } => write!(f, "more than {limit} bytes ({why})"),
            Crossed::Deadline { deadline, .. } => {
                write!(f, "not finished within {}s", deadline.as_secs())
            }
        }
    }
}

impl std::error::Error for Crossed {}

/// A body reader that fails past `limit` bytes or after `deadline`.
struct Guarded<R> {
    inner: R,
    read: u64,
    bound: Bound,
    started: Instant,
    deadline: Duration,
    /// The bytes the deadline was scaled for.
    expected: u64,
    timeouts: Timeouts,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.started.elapsed() > self.deadline {
            return Err(io::Error::other(Crossed::Deadline {
                deadline: self.deadline,
                bound: self.expected,
                timeouts: self.timeouts,
            }));
        }
        // Ask for one byte more than allowed, to tell "exactly at the
        // bound" from "past it".
        let room = (self.bound.bytes - self.read.min(self.bound.bytes)).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.bound.bytes {
            return Err(io::Error::other(Crossed::Limit {
                limit: self.bound.bytes,
                why: self.bound.why,
            }));
        }
        Ok(n)
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
        return Ok(Target::File(PathBuf::from(location::decode(path))));
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

/// Open a local location as a regular file, without blocking on a FIFO
/// (`O_NONBLOCK`) and refusing anything else (a directory, a device).
fn open_regular(path: &Path) -> Result<File, HttpError> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let file_err = |source| HttpError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(file_err)?;
    let kind = file.metadata().map_err(file_err)?.file_type();
    let name = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "device"
    } else {
        "special file"
    };
    Err(HttpError::NotAFile {
        path: path.to_path_buf(),
        kind: name,
    })
}

/// Join a location relative to a base ending in `/`. A location that is
/// itself absolute (`xml:base` in primary.xml makes those) wins. For
/// display and provenance only: what is fetched goes through
/// `location::resolve`, which also fences it.
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
    timeouts: Timeouts,
    fence: Fence,
    waiting: Option<WaitNotice>,
    offline: bool,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// A `--ca`/`--cert-dir` file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {} for TLS: {reason}\n  hint: give --ca a PEM file of CA certificates, --cert-dir a directory of *.crt (and *.cert/*.key)", path.display())]
pub struct TrustError {
    pub path: PathBuf,
    pub reason: String,
}

impl Client {
    pub fn new() -> Client {
        Client::with_retry(RetryPolicy::default())
    }

    pub fn with_retry(retry: RetryPolicy) -> Client {
        Client::with_options(retry, &ClientOptions::default())
            .expect("no trust files to read, nothing can fail")
    }

    /// A client with these timeouts, TLS trust and fence.
    pub fn with_options(retry: RetryPolicy, options: &ClientOptions) -> Result<Client, TrustError> {
        let tls = tls_config(&options.tls, false)?;
        let t = options.timeouts;
        let config = ureq::Agent::config_builder()
            .user_agent(USER_AGENT)
            // We verify bytes against checksums of the file as stored; a
            // transparently decompressed body would never match.
            .accept_encoding("identity")
            // Status codes are classified here (retry 5xx, not 404).
            .http_status_as_error(false)
            // Redirects are followed by `get`, which checks each hop.
            .max_redirects(0)
            .timeout_connect(Some(t.idle))
            .timeout_recv_response(Some(t.idle))
            .timeout_per_read(Some(t.idle))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            retry,
            auth: Default::default(),
            timeouts: t,
            fence: options.fence.clone(),
            waiting: options.waiting.clone(),
            offline: options.offline,
        })
    }

    /// This client, sending `auth`'s credentials to their origins.
    pub fn with_auth(mut self, auth: crate::credentials::AuthTable) -> Client {
        self.auth = std::sync::Arc::new(auth);
        self
    }

    /// The same client without the policy fence, for URLs the recipe names
    /// itself rather than a mirror (gpgkey files: `signing_keys` governs those).
    pub fn unfenced(&self) -> Client {
        Client {
            fence: Fence::default(),
            ..self.clone()
        }
    }

    /// The same client trying each request once: for a mirror with others
    /// left to try, moving on beats waiting out backoffs (as librepo does).
    pub fn without_retry(&self) -> Client {
        Client {
            retry: RetryPolicy {
                attempts: 1,
                ..self.retry.clone()
            },
            ..self.clone()
        }
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Open `url` (a `file://` URL, a plain path or an `http(s)://` URL) for
    /// reading at most `bound` bytes, retrying transient failures of the
    /// request.
    pub fn open(&self, url: &str, bound: Bound) -> Result<Body, HttpError> {
        self.retrying(|| self.open_once(url, bound))
    }

    /// Read all of `url` into memory, retrying the whole transfer on
    /// transient failures. For small files (repomd.xml, signatures, keys):
    /// at most [`SMALL_FILE_MAX`] bytes.
    pub fn read_to_vec(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.retrying(|| {
            let mut body = self.open_once(url, Bound::SMALL_FILE)?;
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
        let bound = Bound::new(end, "asked for in this range read");
        self.retrying(|| {
            self.fence.check(url)?;
            let mut buf = Vec::with_capacity(want.min(1 << 24) as usize);
            match classify(url)? {
                Target::File(path) => {
                    let file_err = |source| HttpError::File {
                        path: path.clone(),
                        source,
                    };
                    let mut file = open_regular(&path)?;
                    io::Seek::seek(&mut file, io::SeekFrom::Start(start)).map_err(file_err)?;
                    file.take(want).read_to_end(&mut buf).map_err(file_err)?;
                }
                Target::Http => {
                    let range = format!("bytes={start}-{}", end.saturating_sub(1));
                    let (response, final_url) = self.get(url, Some(&range))?;
                    let status = response.status().as_u16();
                    let skip = match status {
                        206 => 0,
                        200 => start,
                        _ => {
                            return Err(HttpError::Status {
                                url: final_url,
                                status,
                                attempts: 1,
                            })
                        }
                    };
                    let mut body = self.guard(response.into_body().into_reader(), bound, None);
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

    /// One try at opening `url` to read at most `bound` bytes, no retries.
    pub fn open_once(&self, url: &str, bound: Bound) -> Result<Body, HttpError> {
        self.fence.check(url)?;
        let too_large = |len: u64| {
            (len > bound.bytes).then(|| HttpError::TooLarge {
                url: url.to_string(),
                limit: bound.bytes,
                why: bound.why,
            })
        };
        match classify(url)? {
            Target::File(path) => {
                let file = open_regular(&path)?;
                let len = file.metadata().ok().map(|m| m.len());
                if let Some(e) = len.and_then(too_large) {
                    return Err(e);
                }
                Ok(Body {
                    reader: Box::new(self.guard(file, bound, len)),
                    len,
                })
            }
            Target::Http => {
                let (response, final_url) = self.get(url, None)?;
                let status = response.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(HttpError::Status {
                        url: final_url,
                        status,
                        attempts: 1,
                    });
                }
                let body = response.into_body();
                let len = body.content_length();
                if let Some(e) = len.and_then(too_large) {
                    return Err(e);
                }
                let reader = body.into_reader();
                Ok(Body {
                    reader: Box::new(self.guard(reader, bound, len)),
                    len,
                })
            }
        }
    }

    /// `inner` bounded by `bound`, with a deadline for `announced` bytes
    /// when the server said how many (a short file gets a short deadline).
    fn guard<R: Read>(&self, inner: R, bound: Bound, announced: Option<u64>) -> Guarded<R> {
        let expected = announced.map_or(bound.bytes, |n| n.min(bound.bytes));
        Guarded {
            inner,
            read: 0,
            bound,
            started: Instant::now(),
            deadline: self.timeouts.deadline(expected),
            expected,
            timeouts: self.timeouts,
        }
    }

    /// GET `url`, following redirects one hop at a time: each target must
    /// pass [`location::redirect`] (no downgrade, no `file://`) and the
    /// fence. Returns the final response and its URL.
    fn get(
        &self,
        url: &str,
        range: Option<&str>,
    ) -> Result<(ureq::http::Response<ureq::Body>, String), HttpError> {
        if self.offline {
            return Err(HttpError::Offline {
                url: url.to_string(),
            });
        }
        follow_redirects(
            url,
            MAX_REDIRECTS as usize,
            |current| {
                self.fence.check(current)?;
                let mut request = self.agent.get(current);
                // Looked up per hop: a redirect to another origin carries no credential.
                if let Some(value) = self.auth.header_for(current) {
                    request = request.header("Authorization", &value);
                }
                if let Some(r) = range {
                    request = request.header("Range", r);
                }
                self.while_waiting(current, || request.call())
                    .map_err(|source| HttpError::transport(current, source))
            },
            |current, target| Ok(location::redirect(current, target)?),
            |_| HttpError::TooManyRedirects {
                url: url.to_string(),
            },
        )
    }

    /// Run `call` (a request up to its response head), telling the
    /// [`WaitNotice`] every interval until it returns.
    fn while_waiting<T>(&self, url: &str, call: impl FnOnce() -> T) -> T {
        let Some(notice) = &self.waiting else {
            return call();
        };
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let limit = self.timeouts.idle.as_secs();
        std::thread::scope(|s| {
            s.spawn(move || {
                let started = Instant::now();
                // Disconnected (the call returned) ends the loop.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    wait.recv_timeout(notice.every)
                {
                    let waited = started.elapsed().as_secs_f64();
                    (notice.tell)(&format!(
                        "still waiting for {url} ({waited:.1} s of {limit} s)"
                    ));
                }
            });
            let answer = call();
            drop(done);
            answer
        })
    }
}

/// The rustls configuration for mirrors and registries alike: the platform
/// verifier, or, with extra CAs, the system's roots plus those; `insecure`
/// (registries only, `--insecure`) turns verification off.
pub fn tls_config(trust: &TlsTrust, insecure: bool) -> Result<ureq::tls::TlsConfig, TrustError> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let mut extra: Vec<Certificate<'static>> = Vec::new();
    let mut client_cert = None;
    if let Some(file) = &trust.ca {
        extra.extend(read_certs(file)?);
    }
    if let Some(dir) = &trust.cert_dir {
        let unreadable = |path: &Path, e: io::Error| TrustError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
        let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in &names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => extra.extend(read_certs(path)?),
                Some("cert") => {
                    let key_path = path.with_extension("key");
                    let chain = read_certs(path)?;
                    let pem = std::fs::read(&key_path).map_err(|e| unreadable(&key_path, e))?;
                    let key = PrivateKey::from_pem(&pem).map_err(|e| TrustError {
                        path: key_path.clone(),
                        reason: e.to_string(),
                    })?;
                    client_cert = Some(ClientCert::new_with_certs(&chain, key));
                }
                _ => {}
            }
        }
    }
    let roots = if extra.is_empty() {
        RootCerts::PlatformVerifier
    } else {
        let mut all = extra;
        let native = rustls_native_certs::load_native_certs();
        all.extend(
            native
                .certs
                .into_iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
        );
        RootCerts::new_with_certs(&all)
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client_cert)
        .disable_verification(insecure)
        .build())
}

fn read_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, TrustError> {
    let pem = std::fs::read(path).map_err(|e| TrustError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TrustError {
            path: path.to_path_buf(),
            reason: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
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

/// Send a request to `url`, then to each redirect target in turn, at most
/// `max` redirects: the one loop behind mirror reads and registry calls.
/// `send` makes one request (credentials and the fence are per hop, so its
/// business); a 301, 302, 303, 307 or 308 with a `Location` goes on to
/// `next(current, location)`, which resolves the target or refuses it.
/// The rules differ by caller: a mirror's target is a `location` (normalised
/// and fenced; `file://` and downgrades refused), a registry's is resolved
/// as written (a CDN's signed URL must not be re-encoded) and must be
/// http(s) without a downgrade. Returns the final response and its URL;
/// `too_many` gets the last URL.
pub fn follow_redirects<B, E>(
    url: &str,
    max: usize,
    mut send: impl FnMut(&str) -> Result<ureq::http::Response<B>, E>,
    mut next: impl FnMut(&str, &str) -> Result<String, E>,
    too_many: impl FnOnce(&str) -> E,
) -> Result<(ureq::http::Response<B>, String), E> {
    let mut current = url.to_string();
    for _ in 0..=max {
        let response = send(&current)?;
        let redirects = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        let target = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .filter(|_| redirects);
        let Some(target) = target else {
            return Ok((response, current));
        };
        current = next(&current, target)?;
    }
    Err(too_many(&current))
}

#[cfg(test)]
mod tests {
    use super::test_server::{Fault, Server};
    use super::*;

    #[test]
    fn follow_redirects_hops_stops_and_counts() {
        use ureq::http::Response;
        // `/n` redirects to `/n+1` until `/3`, which answers 200; `/x` is a
        // 302 without Location (returned as is).
        let send = |url: &str| -> Result<Response<()>, String> {
            let n: u32 = url.trim_start_matches("/").parse().unwrap_or(99);
            let b = Response::builder();
            Ok(match n {
                99 => b.status(302).body(()).unwrap(),
                3.. => b.status(200).body(()).unwrap(),
                _ => b
                    .status(if n == 0 { 301 } else { 307 })
                    .header("location", format!("/{}", n + 1))
                    .body(())
                    .unwrap(),
            })
        };
        let next = |_: &str, to: &str| Ok(to.to_string());
        let too_many = |last: &str| format!("too many, last {last}");
        let (r, at) = follow_redirects("/0", 3, send, next, too_many).unwrap();
        assert_eq!((r.status().as_u16(), at.as_str()), (200, "/3"));
        assert_eq!(
            follow_redirects("/0", 2, send, next, too_many).unwrap_err(),
            "too many, last /3"
        );
        let (r, at) = follow_redirects("/x", 3, send, next, too_many).unwrap();
        assert_eq!((r.status().as_u16(), at.as_str()), (302, "/x"));
        let refuse = |from: &str, to: &str| Err::<String, _>(format!("{from} -> {to} refused"));
        assert_eq!(
            follow_redirects("/1", 3, send, refuse, too_many).unwrap_err(),
            "/1 -> /2 refused"
        );
    }

    #[test]
    fn a_waiting_request_is_told_every_interval_and_a_quick_one_not_at_all() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let heard = lines.clone();
        let options = ClientOptions {
            waiting: Some(WaitNotice {
                every: Duration::from_millis(100),
                tell: std::sync::Arc::new(move |l: &str| heard.lock().unwrap().push(l.into())),
            }),
            ..ClientOptions::default()
        };
        let c = Client::with_options(RetryPolicy::default(), &options).unwrap();
        assert_eq!(c.while_waiting("http://m/x", || 7), 7);
        assert!(lines.lock().unwrap().is_empty());
        c.while_waiting("http://m/x", || {
            std::thread::sleep(Duration::from_millis(350))
        });
        let lines = lines.lock().unwrap();
        assert!((2..=4).contains(&lines.len()), "{lines:?}");
        assert!(
            lines[0].starts_with("still waiting for http://m/x (0.")
                && lines[0].ends_with(" s of 30 s)"),
            "{lines:?}"
        );
    }

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
        assert_eq!(location::decode("/a%2"), "/a%2");
        assert_eq!(location::decode("/a%zz%41"), "/a%zzA");
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
        assert_eq!(c.open(&url, Bound::SMALL_FILE).unwrap().len(), Some(5));

        let err = c
            .open(dir.path().join("nope").to_str().unwrap(), Bound::SMALL_FILE)
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
        let err = quick_client()
            .open(&s.url("missing"), Bound::SMALL_FILE)
            .unwrap_err();
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
        let err = quick_client().open(&url, Bound::SMALL_FILE).unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}
