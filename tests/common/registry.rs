//! Debian's `docker-registry` (the CNCF distribution registry) on a free
//! loopback port: the one starter for the tests that push to or pull from
//! a real registry. Its config, storage and logs live in a temporary
//! directory removed on drop, with the process.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::require_tool;

/// A running registry; killed (and its directory removed) on drop.
pub struct Registry {
    child: Option<Child>,
    /// 127.0.0.1, or another loopback address to stand for another host.
    pub ip: &'static str,
    pub port: u16,
    /// config.yml, storage/, registry.log (stderr), access.log (stdout).
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// An open registry (no auth, plain HTTP) on 127.0.0.1.
    pub fn open() -> Registry {
        Registry::start("127.0.0.1", |_| String::new())
    }

    /// An open registry's read and write behind htpasswd basic auth for
    /// `user:pass` (plain HTTP, as the registry allows on loopback).
    #[allow(dead_code)]
    pub fn with_htpasswd(user: &str, pass: &str) -> Registry {
        Registry::start("127.0.0.1", |dir| htpasswd_config(dir, user, pass))
    }

    /// A registry on `ip`. `extra(dir)` may write files into the
    /// registry's directory and returns YAML appended to its config, whose
    /// last section is `http:` (so indented `  tls:` lines extend it, and
    /// top-level sections such as `auth:` follow).
    pub fn start(ip: &'static str, extra: impl FnOnce(&Path) -> String) -> Registry {
        require_tool("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(ip);
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {ip}:{port}\n",
            dir.path().join("storage").display()
        );
        config.push_str(&extra(dir.path()));
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let file = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            // The access log (one line per request) goes to stdout.
            .stdout(file("access.log"))
            .stderr(file("registry.log"))
            .spawn()
            .expect("cannot start docker-registry");
        let mut reg = Registry {
            child: Some(child),
            ip,
            port,
            dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect((self.ip, self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not listen within 10 s: {}", self.log());
    }

    /// What the registry wrote on stderr (errors), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `IP:PORT`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `HOST:PORT/REPO`.
    pub fn repo(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// Where `extra` wrote `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The requests served so far, as (method, path) from the access log
    /// (its lines read `… "GET /v2/… HTTP/1.1" 200 …`).
    pub fn requests(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.file("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let quoted = line.split('"').nth(1)?;
                let mut words = quoted.split_whitespace();
                Some((words.next()?.to_string(), words.next()?.to_string()))
            })
            .collect()
    }

    /// Bytes the registry stores (blobs and manifests).
    pub fn stored_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.file("storage"))
    }

    /// Stop the process now (the directory stays until drop).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free on `ip` (bound and released: the registry takes it next).
pub fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Write an htpasswd file for `user:pass` into `dir`; the `auth:` section
/// that points the registry at it.
#[allow(dead_code)]
pub fn htpasswd_config(dir: &Path, user: &str, pass: &str) -> String {
    require_tool("htpasswd");
    let out = super::run_ok(Command::new("htpasswd").args(["-Bbn", "-C", "4", user, pass]));
    std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
    format!(
        "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
        dir.join("htpasswd").display()
    )
}
