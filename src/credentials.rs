//! Repo credentials: where a mirror's username and password come from, and
//! the one rule for where they go.
//!
//! A password is never written into the recipe: it comes from the
//! environment (`password_env`), a file (`password_file`), or `~/.netrc`
//! (`machine HOST login USER password PASS`), as with dnf and curl. A URL
//! that carries `user:pass@` still works, but the userinfo is split off
//! as soon as the URL is read ([`split_userinfo`]), so no URL that minibuild
//! prints or records (stderr, annotations, SBOM, provenance, lock) holds it.
//!
//! The credential is bound to the repo's origin (`scheme://host:port`): the
//! [`AuthTable`] gives an `Authorization` header only for a URL of that
//! origin, so an `xml:base` or package location on another host never gets
//! it; on a redirect, the HTTP agent drops it (ureq's `redirect_auth_headers`
//! defaults to `Never`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// A username and password; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}, password hidden)", self.username)
    }
}

impl Credential {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value (RFC 7617 Basic).
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// `scheme://host:port` of an http(s) URL, lowercased, the default port made
/// explicit; `None` for files and anything unparsable (which get no credential).
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h, port),
            Err(_) if p.is_empty() => (h, default_port),
            Err(_) => (hostport, default_port),
        },
        _ => (hostport, default_port),
    };
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

/// The host of an http(s) URL, lowercased (what `~/.netrc` names).
pub fn host(url: &str) -> Option<String> {
    let o = origin(url)?;
    let hostport = o.split_once("://")?.1;
    Some(hostport.rsplit_once(':')?.0.to_string())
}

/// Split `scheme://user:pass@host/…` into the URL without userinfo and the
/// credential it carried (percent-decoded). Other URLs pass through.
pub fn split_userinfo(url: &str) -> (String, Option<Credential>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credential = Credential::new(
        crate::location::decode(user),
        crate::location::decode(password),
    );
    (format!("{scheme}://{hostport}{path}"), Some(credential))
}

/// The URL as it may be shown: without userinfo.
pub fn redact(url: &str) -> String {
    split_userinfo(url).0
}

/// `login`/`password` for `host` in netrc `text` (the first `machine` entry
/// that names it, else `default`); `macdef` bodies are skipped.
pub fn netrc_lookup(text: &str, host: &str) -> Option<Credential> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let words = line.split_whitespace();
        for w in words {
            if w == "macdef" {
                // A macro runs to the next empty line.
                for l in lines.by_ref() {
                    if l.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            tokens.push(w);
        }
    }
    let mut found: Option<(Option<&str>, Option<&str>)> = None;
    let mut default: Option<(Option<&str>, Option<&str>)> = None;
    let mut current: Option<bool> = None; // Some(true): the entry for `host`; Some(false): `default`.
    let mut i = 0;
    while i < tokens.len() {
        match (tokens[i], tokens.get(i + 1)) {
            ("machine", Some(name)) => {
                if found.is_some() {
                    break;
                }
                current = name.eq_ignore_ascii_case(host).then_some(true);
                if current.is_some() {
                    found = Some((None, None));
                }
                i += 2;
            }
            ("default", _) => {
                if found.is_some() {
                    break;
                }
                current = Some(false);
                default = Some((None, None));
                i += 1;
            }
            ("login", Some(v)) | ("password", Some(v)) | ("account", Some(v)) => {
                let slot = match current {
                    Some(true) => found.as_mut(),
                    Some(false) => default.as_mut(),
                    None => None,
                };
                if let Some((login, password)) = slot {
                    match tokens[i] {
                        "login" => *login = Some(v),
                        "password" => *password = Some(v),
                        _ => {}
                    }
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    let (login, password) = found.or(default)?;
    Some(Credential::new(login?, password.unwrap_or("")))
}

/// `$HOME/.netrc`, read only when it exists.
pub fn netrc_for(host: &str) -> Option<(Credential, PathBuf)> {
    let path = Path::new(&std::env::var_os("HOME")?).join(".netrc");
    let text = std::fs::read_to_string(&path).ok()?;
    netrc_lookup(&text, host).map(|c| (c, path))
}

/// Origin → credential: what the HTTP client may send, and where.
#[derive(Clone, Default)]
pub struct AuthTable {
    by_origin: BTreeMap<String, Credential>,
}

impl fmt::Debug for AuthTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_origin.keys()).finish()
    }
}

impl AuthTable {
    /// Bind `credential` to the origin of `url` (an http(s) URL); the first
    /// binding for an origin wins. False when the URL has no origin.
    pub fn insert(&mut self, url: &str, credential: Credential) -> bool {
        match origin(url) {
            Some(o) => {
                self.by_origin.entry(o).or_insert(credential);
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }

    /// The `Authorization` value for a request to `url`: only when `url` has
    /// exactly the origin the credential was given for.
    pub fn header_for(&self, url: &str) -> Option<String> {
        self.by_origin.get(&origin(url)?).map(Credential::basic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_make_the_port_explicit_and_ignore_userinfo() {
        assert_eq!(
            origin("https://Mirror.Example/f/40/").as_deref(),
            Some("https://mirror.example:443")
        );
        assert_eq!(
            origin("http://u:p@127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("http://[::1]:81/x").as_deref(),
            Some("http://[::1]:81")
        );
        assert_eq!(origin("file:///srv/repo/"), None);
        assert_eq!(origin("/srv/repo"), None);
        assert_eq!(
            host("https://u@Mirror.Example:8443/").as_deref(),
            Some("mirror.example")
        );
    }

    #[test]
    fn userinfo_is_split_off_and_decoded() {
        let (url, cred) = split_userinfo("https://alice:s%40cret@mirror.example/repo/?a=b@c");
        assert_eq!(url, "https://mirror.example/repo/?a=b@c");
        assert_eq!(cred, Some(Credential::new("alice", "s@cret")));
        let (url, cred) = split_userinfo("https://mirror.example/a@b/");
        assert_eq!((url.as_str(), cred), ("https://mirror.example/a@b/", None));
        assert_eq!(redact("file:///srv/r/"), "file:///srv/r/");
        assert!(!format!("{:?}", Credential::new("a", "hunter2")).contains("hunter2"));
    }

    #[test]
    fn credentials_go_only_to_their_origin() {
        let mut t = AuthTable::default();
        assert!(t.insert("http://127.0.0.1:8080/repo/", Credential::new("u", "p")));
        assert!(!t.insert("file:///srv/", Credential::new("u", "p")));
        assert_eq!(
            t.header_for("http://127.0.0.1:8080/repo/Packages/a.rpm")
                .as_deref(),
            Some("Basic dTpw")
        );
        for other in [
            "http://127.0.0.1:8081/repo/",
            "https://127.0.0.1:8080/repo/",
            "http://localhost:8080/repo/",
            "http://127.0.0.1:8080.evil.example/",
        ] {
            assert_eq!(t.header_for(other), None, "{other}");
        }
        assert!(!format!("{t:?}").contains("dTpw"));
    }

    #[test]
    fn netrc_entries_default_and_macros() {
        let text = "machine other.example login x password y\n\
                    macdef init\nmachine mirror.example login evil password evil\n\n\
                    machine Mirror.Example\n  login alice\n  password s3cret\n\
                    default login anon password guest\n";
        assert_eq!(
            netrc_lookup(text, "mirror.example"),
            Some(Credential::new("alice", "s3cret"))
        );
        assert_eq!(
            netrc_lookup(text, "unknown.example"),
            Some(Credential::new("anon", "guest"))
        );
        assert_eq!(netrc_lookup("machine a login b password c", "z"), None);
    }
}
