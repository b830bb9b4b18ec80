//! Where a registry URL points, and which URLs may receive the registry's
//! credentials.
//!
//! The registry names other URLs: a token realm in its `WWW-Authenticate`
//! challenge, an upload `Location`, a redirect. Each can point anywhere, so
//! each is checked before a credential goes with it (containers/image and
//! docker keep the same scope):
//!
//! - the password goes to the registry and to its token realm only; a
//!   realm must be https, except with `--insecure` or when both the
//!   registry and the realm are on this machine ([`Origin::is_loopback`]);
//! - a token or password for the registry goes to the registry's own
//!   origin (scheme, host, port) only: an upload location elsewhere is
//!   refused, a redirect elsewhere is followed without `Authorization`;
//! - nothing goes from https down to plain http.

use std::fmt;

/// `http` or `https`: the only schemes a registry may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The scheme, host and port of a URL: what a credential is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    /// Lowercase, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute http(s) URL; None for anything else, and
    /// for a URL with `user:password@` in it (a credential of its own).
    pub fn of(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = match uri.scheme_str()? {
            s if s.eq_ignore_ascii_case("https") => Scheme::Https,
            s if s.eq_ignore_ascii_case("http") => Scheme::Http,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        });
        Some(Origin { scheme, host, port })
    }

    /// This machine, by the names `Reference::is_loopback` accepts for a
    /// plain-HTTP registry. Other 127.0.0.0/8 addresses are not included:
    /// they may belong to another network namespace's service, and the
    /// tests use 127.0.0.2 to stand for "another host".
    pub fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "::1")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Why a URL named by the registry may not have the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an absolute http(s) URL, or one carrying `user:password@`.
    NotHttp,
    /// A token realm over plain http on a host that is not this machine.
    PlainHttpRealm,
    /// An upload location on another scheme, host or port than the registry.
    OtherOrigin { registry: Origin },
    /// A redirect from https down to plain http.
    Downgrade,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotHttp => f.write_str(
                "it is not an absolute http(s) URL without user:password@; the registry is misconfigured",
            ),
            Refusal::PlainHttpRealm => f.write_str(
                "a token realm must be https (the password would cross the network in clear text); \
                 plain http is allowed only when the registry and the realm are both on this machine, \
                 or with --insecure if you trust the network to the realm",
            ),
            Refusal::OtherOrigin { registry } => write!(
                f,
                "it is not on the registry's own origin {registry}, and registry credentials go only \
                 to the registry; check the registry's public URL setting (e.g. `http.host` of the \
                 distribution registry, or the proxy in front of it)"
            ),
            Refusal::Downgrade => f.write_str(
                "it goes from https down to plain http, where anything sent can be read and changed \
                 on the way; the registry or a proxy in front of it is misconfigured",
            ),
        }
    }
}

/// Whether the token `realm` may receive the password of `registry`.
pub fn check_realm(realm: &str, registry: &Origin, insecure: bool) -> Result<Origin, Refusal> {
    let origin = Origin::of(realm).ok_or(Refusal::NotHttp)?;
    let local = registry.is_loopback() && origin.is_loopback();
    if origin.scheme == Scheme::Http && !insecure && !local {
        return Err(Refusal::PlainHttpRealm);
    }
    Ok(origin)
}

/// Whether an upload `location` may receive the registry's credentials.
pub fn check_upload(location: &str, registry: &Origin) -> Result<(), Refusal> {
    let origin = Origin::of(location).ok_or(Refusal::NotHttp)?;
    if origin != *registry {
        return Err(Refusal::OtherOrigin {
            registry: registry.clone(),
        });
    }
    Ok(())
}

/// `location` (absolute, `/path` or relative) resolved against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    if Origin::of(location).is_some() || location.contains("://") {
        return location.to_string();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    if let Some(rest) = location.strip_prefix("//") {
        // Scheme-relative: `//host/path`.
        return format!("{}//{rest}", &base[..after_scheme - 2]);
    }
    if location.starts_with('/') {
        return format!("{}{location}", &base[..path_start]);
    }
    // Relative to the base's directory (query dropped).
    let path = base[path_start..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{}{dir}{location}", &base[..path_start])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Origin {
        Origin::of(url).unwrap()
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("HTTPS://Reg.Example/v2/"),
            Origin {
                scheme: Scheme::Https,
                host: "reg.example".into(),
                port: 443
            }
        );
        assert_eq!(origin("http://[::1]:5000/x").host, "::1");
        assert_eq!(
            origin("http://[::1]:5000/x").to_string(),
            "http://[::1]:5000"
        );
        assert_eq!(origin("http://127.0.0.1/").port, 80);
        assert_eq!(Origin::of("ftp://h/x"), None);
        assert_eq!(Origin::of("/v2/x"), None);
        assert_eq!(Origin::of("https://u:p@h/token"), None);
        assert!(origin("http://localhost:1").is_loopback());
        assert!(!origin("http://127.0.0.2:1").is_loopback());
    }

    #[test]
    fn realm_rules() {
        let remote = origin("https://reg.example");
        let local = origin("http://127.0.0.1:5000");
        assert!(check_realm("https://auth.example/token", &remote, false).is_ok());
        assert_eq!(
            check_realm("http://auth.example/token", &remote, false),
            Err(Refusal::PlainHttpRealm)
        );
        assert!(check_realm("http://auth.example/token", &remote, true).is_ok());
        assert!(check_realm("http://127.0.0.1:5001/token", &local, false).is_ok());
        // The loopback exception covers this machine only, not a remote
        // realm named by a local registry, nor a local realm of a remote one.
        assert_eq!(
            check_realm("http://127.0.0.2:5001/token", &local, false),
            Err(Refusal::PlainHttpRealm)
        );
        assert_eq!(
            check_realm("http://localhost:5001/token", &remote, false),
            Err(Refusal::PlainHttpRealm)
        );
        assert_eq!(
            check_realm("file:///etc/passwd", &local, true),
            Err(Refusal::NotHttp)
        );
    }

    #[test]
    fn upload_rules() {
        let reg = origin("https://reg.example");
        assert!(check_upload("https://reg.example:443/v2/a/blobs/uploads/1", &reg).is_ok());
        for other in [
            "https://cdn.example/v2/a/blobs/uploads/1",
            "https://reg.example:8443/v2/a/blobs/uploads/1",
            "http://reg.example/v2/a/blobs/uploads/1",
        ] {
            assert!(
                matches!(check_upload(other, &reg), Err(Refusal::OtherOrigin { .. })),
                "{other}"
            );
        }
    }

    #[test]
    fn resolves_locations() {
        let base = "https://r.example:5000/v2/app/blobs/uploads/?x=1";
        assert_eq!(resolve(base, "http://o/x"), "http://o/x");
        assert_eq!(resolve(base, "/v2/u/1"), "https://r.example:5000/v2/u/1");
        assert_eq!(resolve(base, "//o:1/y"), "https://o:1/y");
        assert_eq!(
            resolve(base, "abc?s=2"),
            "https://r.example:5000/v2/app/blobs/uploads/abc?s=2"
        );
        assert_eq!(resolve("http://h:1", "/v2/"), "http://h:1/v2/");
    }
}
