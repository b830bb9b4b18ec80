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
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = value
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok())));
            }
        }
    }
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

fn local_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.split('?').next()?.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}
