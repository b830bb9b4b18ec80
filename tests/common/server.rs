//! A static file server on 127.0.0.1 for tests: serves a directory over
//! HTTP/1.1 GET, one thread per connection, stopped when dropped. A single
//! `Range: bytes=A-B` (or `A-`) is answered with 206 and counted.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

pub struct Server {
    pub url: String,
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicUsize>,
    /// Requests answered with a byte range (206).
    pub ranges: Arc<AtomicUsize>,
    addr: std::net::SocketAddr,
}

impl Server {
    pub fn serve(root: &Path) -> Server {
        Server::serve_throttled(root, None)
    }

    /// [`serve`](Self::serve), sending whole files at about `bytes_per_sec`
    /// (in 16 KiB writes): a slow mirror.
    pub fn serve_throttled(root: &Path, bytes_per_sec: Option<u64>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let ranges = Arc::new(AtomicUsize::new(0));
        let root = root.to_path_buf();
        let (stop2, requests2, ranges2) = (stop.clone(), requests.clone(), ranges.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let root = root.clone();
                requests2.fetch_add(1, Ordering::SeqCst);
                let ranges = ranges2.clone();
                thread::spawn(move || {
                    let _ = handle(conn, &root, &ranges, bytes_per_sec);
                });
            }
        });
        Server {
            url: format!("http://{addr}"),
            stop,
            requests,
            ranges,
            addr,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn handle(
    conn: TcpStream,
    root: &Path,
    ranges: &AtomicUsize,
    bytes_per_sec: Option<u64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let (request_line, range) = read_request(&mut reader)?;
    let mut conn = conn;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    match local_path(root, path).and_then(|p| std::fs::read(p).ok()) {
        Some(body) if range.is_some_and(|(a, _)| a < body.len()) => {
            let (a, b) = range.unwrap();
            let end = b.map_or(body.len(), |b| (b + 1).min(body.len()));
            ranges.fetch_add(1, Ordering::SeqCst);
            write!(
                conn,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                end - 1,
                body.len(),
                end - a
            )?;
            conn.write_all(&body[a..end])
        }
        Some(body) => {
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            let Some(rate) = bytes_per_sec else {
                return conn.write_all(&body);
            };
            for chunk in body.chunks(16 << 10) {
                conn.write_all(chunk)?;
                let secs = chunk.len() as f64 / rate as f64;
                thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            Ok(())
        }
        None => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

/// The request line and the `Range` asked for, if any.
#[allow(clippy::type_complexity)]
fn read_request(
    reader: &mut impl BufRead,
) -> std::io::Result<(String, Option<(usize, Option<usize>)>)> {
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some(r) = parse_range(&header) {
            range = Some(r);
        }
    }
    Ok((request_line, range))
}

/// `Range: bytes=A-B` (or `A-`) as (A, B).
fn parse_range(header: &str) -> Option<(usize, Option<usize>)> {
    let (name, value) = header.split_once(':')?;
    if !name.eq_ignore_ascii_case("range") {
        return None;
    }
    let (a, b) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()))
}

fn local_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.split('?').next()?.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
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

/// A loopback HTTP server that answers each path as scripted (404 for the
/// rest), and records every request path it saw, in order.
pub struct Scripted {
    pub url: String,
    pub seen: Arc<std::sync::Mutex<Vec<String>>>,
    /// Body bytes written, all requests together.
    pub sent: Arc<AtomicUsize>,
    routes: Arc<std::sync::Mutex<std::collections::BTreeMap<String, Reply>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Scripted {
    pub fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let s = Scripted {
            url: format!("http://{addr}"),
            seen: Arc::default(),
            sent: Arc::default(),
            routes: Arc::default(),
            stop: Arc::default(),
            addr,
        };
        let (seen, sent, routes, stop) = (
            s.seen.clone(),
            s.sent.clone(),
            s.routes.clone(),
            s.stop.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (seen, sent, routes) = (seen.clone(), sent.clone(), routes.clone());
                thread::spawn(move || {
                    let _ = answer(conn, &seen, &sent, &routes);
                });
            }
        });
        s
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

    /// Request paths seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(
    conn: TcpStream,
    seen: &std::sync::Mutex<Vec<String>>,
    sent: &AtomicUsize,
    routes: &std::sync::Mutex<std::collections::BTreeMap<String, Reply>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let (request_line, range) = read_request(&mut reader)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    seen.lock().unwrap().push(path.clone());
    let reply = routes.lock().unwrap().get(&path).cloned();
    match reply {
        None => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Some(Reply::Bytes(body)) => {
            let (status, part) = match range {
                Some((a, b)) if a < body.len() => {
                    let end = b.map_or(body.len(), |b| (b + 1).min(body.len()));
                    ("206 Partial Content", &body[a..end])
                }
                _ => ("200 OK", &body[..]),
            };
            write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            )?;
            sent.fetch_add(part.len(), Ordering::SeqCst);
            conn.write_all(part)
        }
        Some(Reply::Redirect(to)) => write!(
            conn,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Some(Reply::Endless) => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let zeros = vec![0u8; 1 << 16];
            loop {
                conn.write_all(&zeros)?;
                sent.fetch_add(zeros.len(), Ordering::SeqCst);
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
                sent.fetch_add(1, Ordering::SeqCst);
                thread::sleep(gap);
            }
            Ok(())
        }
        Some(Reply::Silent) => {
            // Hold the connection open, say nothing, until the client leaves.
            let mut buf = [0u8; 1];
            let _ = std::io::Read::read(&mut reader, &mut buf);
            Ok(())
        }
    }
}
