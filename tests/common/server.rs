//! The tests' one HTTP/1.1 server on loopback. A single core ([`Core`])
//! accepts connections (one thread each), reads and records every request,
//! and hands it to a handler that writes the answer; it stops when dropped.
//! Three front-ends give it a behaviour:
//!
//! - [`Server`]: a static mirror of a directory (GET, a single `Range`
//!   answered with 206 and counted, optionally throttled);
//! - [`Scripted`]: a misbehaving mirror, each path answered as scripted
//!   ([`Reply`]: bytes, redirect, endless, trickle, silence; 404 otherwise);
//! - [`Handled`]: a closure from [`Request`] to [`Response`] (hostile mirrors,
//!   registries, token servers), on any loopback address.
//!
//! A TLS ClientHello (minibuild tries https first on loopback registries)
//! is hung up on, as a plain HTTP server effectively does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as the server saw it (its body read and dropped).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: `/path?query`.
    pub target: String,
    /// Every header line, as sent (`Name: value`).
    pub headers: Vec<String>,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The query string, or "".
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// `Range: bytes=A-B` (or `A-`) as (A, B).
    fn range(&self) -> Option<(usize, Option<usize>)> {
        let (a, b) = self
            .header("range")?
            .strip_prefix("bytes=")?
            .split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()))
    }
}

type Handler = dyn Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync;

/// The accept loop, the request log and the stop switch.
pub struct Core {
    /// `http://IP:PORT`
    pub url: String,
    pub addr: std::net::SocketAddr,
    /// Connections accepted.
    pub requests: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Core {
    fn start(ip: &str, handler: Arc<Handler>) -> Core {
        let listener = TcpListener::bind((ip, 0)).expect("bind a loopback address");
        let addr = listener.local_addr().unwrap();
        let core = Core {
            url: format!("http://{addr}"),
            addr,
            requests: Arc::default(),
            log: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, log, stop) = (core.requests.clone(), core.log.clone(), core.stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                requests.fetch_add(1, Ordering::SeqCst);
                let (log, handler) = (log.clone(), handler.clone());
                thread::spawn(move || {
                    if let Some(request) = read_request(&conn) {
                        log.lock().unwrap().push(request.clone());
                        let _ = handler(&request, &mut conn);
                    }
                });
            }
        });
        core
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

/// The request head, its body read (and dropped) by Content-Length; `None`
/// for a TLS ClientHello or a connection closed before a request.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).ok()? == 0 || first[0] == 0x16 {
        return None;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    let mut length = 0u64;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        headers.push(h.trim_end().to_string());
    }
    std::io::copy(&mut reader.take(length), &mut std::io::sink()).ok()?;
    Some(Request {
        method,
        target,
        headers,
    })
}

/// A whole answer: status, headers, body (`Content-Length` and
/// `Connection: close` are added).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Response {
        Response::status(200).body(body)
    }

    /// The file at `path` (a request path) under `root`, or 404.
    pub fn file(root: &Path, path: &str) -> Response {
        match local_path(root, path).and_then(|p| std::fs::read(p).ok()) {
            Some(body) => Response::ok(body),
            None => Response::status(404),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    fn write_to(&self, conn: &mut TcpStream) -> std::io::Result<()> {
        write!(conn, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status))?;
        for (k, v) in &self.headers {
            write!(conn, "{k}: {v}\r\n")?;
        }
        write!(
            conn,
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        )?;
        conn.write_all(&self.body)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "X",
    }
}

/// 200 with `body`, or 206 with the part a single `Range` asks for (counted
/// in `ranges`).
fn bytes_or_range(request: &Request, body: &[u8], ranges: &AtomicUsize) -> Response {
    match request.range() {
        Some((a, b)) if a < body.len() => {
            let end = b.map_or(body.len(), |b| (b + 1).min(body.len()));
            ranges.fetch_add(1, Ordering::SeqCst);
            Response::status(206)
                .header(
                    "Content-Range",
                    format!("bytes {a}-{}/{}", end - 1, body.len()),
                )
                .body(&body[a..end])
        }
        _ => Response::ok(body),
    }
}

fn local_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.split('?').next()?.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

/// A static mirror of a directory on 127.0.0.1.
pub struct Server {
    pub url: String,
    /// Connections accepted.
    pub requests: Arc<AtomicUsize>,
    /// Requests answered with a byte range (206).
    pub ranges: Arc<AtomicUsize>,
    _core: Core,
}

impl Server {
    pub fn serve(root: &Path) -> Server {
        Server::serve_throttled(root, None)
    }

    /// [`serve`](Self::serve), sending whole files at about `bytes_per_sec`
    /// (in 16 KiB writes): a slow mirror.
    pub fn serve_throttled(root: &Path, bytes_per_sec: Option<u64>) -> Server {
        let root = root.to_path_buf();
        let ranges = Arc::new(AtomicUsize::new(0));
        let counted = ranges.clone();
        let core = Core::start(
            "127.0.0.1",
            Arc::new(move |request, conn| {
                let Some(body) =
                    local_path(&root, request.path()).and_then(|p| std::fs::read(p).ok())
                else {
                    return Response::status(404).write_to(conn);
                };
                let answer = bytes_or_range(request, &body, &counted);
                match bytes_per_sec {
                    Some(rate) if answer.status == 200 => {
                        write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )?;
                        for chunk in body.chunks(16 << 10) {
                            conn.write_all(chunk)?;
                            let secs = chunk.len() as f64 / rate as f64;
                            thread::sleep(std::time::Duration::from_secs_f64(secs));
                        }
                        Ok(())
                    }
                    _ => answer.write_to(conn),
                }
            }),
        );
        Server {
            url: core.url.clone(),
            requests: core.requests.clone(),
            ranges,
            _core: core,
        }
    }
}

/// What a [`Scripted`] server answers for one path: a mirror that misbehaves
/// on purpose.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with these bytes (honouring a single `Range`).
    Bytes(Vec<u8>),
    /// 302 to this `Location`.
    Redirect(String),
    /// 200 with no length, then zeros until the client hangs up.
    Endless,
    /// 200 announcing these bytes, then one byte every `gap`.
    Trickle(Vec<u8>, std::time::Duration),
    /// Read the request, never answer.
    Silent,
}

type Routes = Arc<Mutex<std::collections::BTreeMap<String, Reply>>>;

/// A loopback HTTP server that answers each path as scripted (404 for the
/// rest), and records every request path it saw, in order.
pub struct Scripted {
    pub url: String,
    /// Body bytes written, all requests together.
    pub sent: Arc<AtomicUsize>,
    routes: Routes,
    core: Core,
}

impl Scripted {
    pub fn start() -> Scripted {
        let routes: Routes = Arc::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let (table, counter) = (routes.clone(), sent.clone());
        let ranges = AtomicUsize::new(0);
        let core = Core::start(
            "127.0.0.1",
            Arc::new(move |request, conn| {
                // Routes are whole targets, query included (`mm/metalink?repo=…`).
                let target = request.target.trim_start_matches('/');
                let reply = table.lock().unwrap().get(target).cloned();
                match reply {
                    None => Response::status(404).write_to(conn),
                    Some(Reply::Bytes(body)) => {
                        let answer = bytes_or_range(request, &body, &ranges);
                        counter.fetch_add(answer.body.len(), Ordering::SeqCst);
                        answer.write_to(conn)
                    }
                    Some(Reply::Redirect(to)) => {
                        Response::status(302).header("Location", to).write_to(conn)
                    }
                    Some(Reply::Endless) => {
                        conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
                        let zeros = vec![0u8; 1 << 16];
                        loop {
                            conn.write_all(&zeros)?;
                            counter.fetch_add(zeros.len(), Ordering::SeqCst);
                        }
                    }
                    Some(Reply::Trickle(body, gap)) => {
                        write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )?;
                        for b in body {
                            conn.write_all(&[b])?;
                            conn.flush()?;
                            counter.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(gap);
                        }
                        Ok(())
                    }
                    Some(Reply::Silent) => {
                        // Hold the connection open, say nothing, until the client leaves.
                        let mut buf = [0u8; 1];
                        let _ = conn.read(&mut buf);
                        Ok(())
                    }
                }
            }),
        );
        Scripted {
            url: core.url.clone(),
            sent,
            routes,
            core,
        }
    }

    /// Answer `path` (no leading `/`) with `reply`.
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.trim_start_matches('/').to_string(), reply);
    }

    /// Serve every file below `dir` under `prefix/`.
    pub fn route_dir(&self, prefix: &str, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let key = format!("{}/{name}", prefix.trim_end_matches('/'));
            if path.is_dir() {
                self.route_dir(&key, &path);
            } else {
                self.route(&key, Reply::Bytes(std::fs::read(&path).unwrap()));
            }
        }
    }

    /// Request targets seen so far (no leading `/`, query included).
    pub fn requests(&self) -> Vec<String> {
        self.core
            .log()
            .iter()
            .map(|r| r.target.trim_start_matches('/').to_string())
            .collect()
    }
}

/// A server whose every answer is `handler(request)`; requests are logged.
pub struct Handled {
    /// `http://IP:PORT`
    pub url: String,
    /// `IP:PORT`
    pub addr: String,
    pub port: u16,
    core: Core,
}

impl Handled {
    /// On 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Handled {
        Handled::start_on("127.0.0.1", handler)
    }

    /// On another loopback address (127.0.0.2 plays another host).
    pub fn start_on(
        ip: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Handled {
        let core = Core::start(
            ip,
            Arc::new(move |request, conn| handler(request).write_to(conn)),
        );
        Handled {
            url: core.url.clone(),
            addr: core.addr.to_string(),
            port: core.addr.port(),
            core,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.core.log()
    }
}
