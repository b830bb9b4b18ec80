//! URLs as minibuild compares them: parsed, normalised, and fenced.
//!
//! A mirror chooses the strings minibuild fetches (package `<location>`,
//! `xml:base`, redirects), so two spellings of one place must compare equal
//! and no spelling may reach a place the recipe and policy did not allow.
//! [`Location::parse`] lowercases scheme and host, drops userinfo, a default
//! port and the fragment, percent-decodes each path segment and removes dot
//! segments (also `%2e%2e`), the way a server or the file system would read
//! them; an encoded `/` or NUL inside a segment is refused, as it could be read
//! either way. No `url` crate: it is not in this project's offline registry,
//! and the subset needed here is small.

use std::fmt;

/// Why a URL or location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{url}`: {rule}\n  hint: {hint}")]
pub struct LocationError {
    pub url: String,
    pub rule: String,
    pub hint: &'static str,
}

fn refuse(url: &str, rule: impl Into<String>, hint: &'static str) -> LocationError {
    LocationError {
        url: url.to_string(),
        rule: rule.into(),
        hint,
    }
}

/// The schemes minibuild fetches from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    File,
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::File => None,
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
        }
    }
}

/// A normalised absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub scheme: Scheme,
    /// Lowercase host (`[…]` kept for IPv6); empty for `file://`.
    pub host: String,
    /// `None` for the scheme's default port.
    pub port: Option<u16>,
    /// Decoded path segments, no `.` or `..`.
    segments: Vec<String>,
    /// The path ends in `/` (a directory, such as a repo base).
    dir: bool,
    /// `?…` as written, kept for fetching, ignored for matching.
    query: String,
}

impl Location {
    /// Parse `url`: `http(s)://`, `file://` (empty host or `localhost`), or
    /// an absolute local path (taken as `file://`).
    pub fn parse(url: &str) -> Result<Location, LocationError> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "file" => Scheme::File,
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    other => {
                        return Err(refuse(
                            url,
                            format!(
                                "the scheme `{other}` is not fetched (only https, http and file)"
                            ),
                            "use an https:// or file:// URL",
                        ))
                    }
                };
                (scheme, rest)
            }
            None if url.starts_with('/') => (Scheme::File, url),
            None => {
                return Err(refuse(
                    url,
                    "neither a URL nor an absolute path",
                    "write an https:// URL, a file:// URL or an absolute path",
                ))
            }
        };
        // A local file name may hold `?` and `#`; only URLs on the wire have
        // a query and fragment.
        let (rest, query) = if scheme == Scheme::File {
            (rest, String::new())
        } else {
            let rest = rest.split('#').next().unwrap_or_default();
            match rest.split_once('?') {
                Some((r, q)) => (r, format!("?{q}")),
                None => (rest, String::new()),
            }
        };
        let (authority, path) = if url.contains("://") {
            match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            }
        } else {
            ("", rest)
        };
        // Userinfo never takes part in a comparison (and is never printed).
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = split_port(url, hostport)?;
        let host = host.to_ascii_lowercase();
        let port = port.filter(|&p| Some(p) != scheme.default_port());
        match scheme {
            Scheme::File if !(host.is_empty() || host == "localhost") || port.is_some() => {
                return Err(refuse(
                    url,
                    "a file:// URL names another host",
                    "write file:///absolute/path",
                ))
            }
            Scheme::Http | Scheme::Https if host.is_empty() => {
                return Err(refuse(
                    url,
                    "the URL has no host",
                    "write https://HOST/path/",
                ))
            }
            _ => {}
        }
        let host = if scheme == Scheme::File {
            String::new()
        } else {
            host
        };
        let mut segments: Vec<String> = Vec::new();
        let raw: Vec<&str> = path.split('/').skip(1).collect();
        let dir = path.ends_with('/') || raw.last().is_some_and(|s| is_dot(&decode(s)));
        for seg in raw {
            let seg = decode(seg);
            if seg.contains('/') || seg.contains('\0') || seg.contains('\\') {
                return Err(refuse(
                    url,
                    "a path segment holds an encoded `/`, `\\` or NUL",
                    "write the path without encoded separators",
                ));
            }
            match seg.as_str() {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                _ => segments.push(seg),
            }
        }
        Ok(Location {
            scheme,
            host,
            port,
            segments,
            dir,
            query,
        })
    }

    /// Whether `self` is `prefix` or lies below it (whole segments only:
    /// `/f` does not cover `/fx`). Query strings are ignored.
    pub fn starts_with(&self, prefix: &Location) -> bool {
        self.scheme == prefix.scheme
            && self.host == prefix.host
            && self.port == prefix.port
            && self.segments.len() >= prefix.segments.len()
            && self.segments[..prefix.segments.len()] == prefix.segments[..]
    }

    /// `self` with `relative` (a path, possibly with `..`) appended to its
    /// directory.
    fn join_path(&self, relative: &str) -> Result<Location, LocationError> {
        let mut dir = self.clone();
        if !dir.dir {
            dir.segments.pop();
            dir.dir = true;
        }
        let mut text = dir.without_query();
        text.push_str(relative.trim_start_matches('/'));
        Location::parse(&text)
    }

    fn without_query(&self) -> String {
        let mut s = format!("{}://{}", self.scheme.as_str(), self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        for seg in &self.segments {
            s.push('/');
            s.push_str(&encode(seg));
        }
        if self.dir || self.segments.is_empty() {
            s.push('/');
        }
        s
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.without_query(), self.query)
    }
}

fn is_dot(seg: &str) -> bool {
    seg == "." || seg == ".."
}

fn split_port<'a>(url: &str, hostport: &'a str) -> Result<(&'a str, Option<u16>), LocationError> {
    let bad_port = || refuse(url, "the port is not a number", "check the URL");
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad_port)?;
        let host = &hostport[..host.len() + 2];
        return match after.strip_prefix(':') {
            Some(p) if !p.is_empty() => Ok((host, Some(p.parse().map_err(|_| bad_port())?))),
            _ => Ok((host, None)),
        };
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => Ok((h, Some(p.parse().map_err(|_| bad_port())?))),
        Some((h, _)) => Ok((h, None)),
        None => Ok((hostport, None)),
    }
}

/// `%41` → `A`; invalid escapes are kept as written.
pub fn decode(s: &str) -> String {
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

/// Encode what cannot stand in a path segment as written.
fn encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a repo's metadata may send minibuild: `location` (a `<location
/// href>`, possibly made absolute by `xml:base`) resolved against the repo's
/// `base`. A relative location must stay under the base; an absolute one
/// must keep the base's scheme (http may become https, never the reverse),
/// and `file://` is only for a `file://` repo. Hosts are left to the policy
/// fence, which sees every URL fetched. Returns the normalised URL.
pub fn resolve(base: &str, location: &str) -> Result<String, LocationError> {
    let base_loc = Location::parse(&dir_form(base))?;
    if location.contains("://") {
        let loc = Location::parse(location)?;
        scheme_may_follow(base_loc.scheme, loc.scheme, location, "the repo metadata")?;
        return Ok(loc.to_string());
    }
    let loc = base_loc.join_path(location)?;
    if !loc.starts_with(&base_loc) || loc.segments.len() == base_loc.segments.len() {
        return Err(refuse(
            location,
            format!("the location leaves the repo's base {base_loc}"),
            "the repo metadata is malformed or hostile; report it to the mirror",
        ));
    }
    Ok(loc.to_string())
}

/// Where a redirect from `from` to `target` (a `Location` header) leads:
/// only to http(s), never from https to http.
pub fn redirect(from: &str, target: &str) -> Result<String, LocationError> {
    let from_loc = Location::parse(from)?;
    let next = if target.contains("://") {
        Location::parse(target)?
    } else if let Some(rest) = target.strip_prefix("//") {
        Location::parse(&format!("{}://{rest}", from_loc.scheme.as_str()))?
    } else if let Some(path) = target.strip_prefix('/') {
        let mut origin = from_loc.clone();
        origin.segments.clear();
        origin.dir = true;
        Location::parse(&format!("{}{path}", origin.without_query()))?
    } else {
        from_loc.join_path(target)?
    };
    if next.scheme == Scheme::File {
        return Err(refuse(
            target,
            format!("{from} redirects to a local file; a redirect to file:// is never followed"),
            "the server is misconfigured or hostile; use another mirror",
        ));
    }
    scheme_may_follow(from_loc.scheme, next.scheme, target, from)?;
    Ok(next.to_string())
}

fn scheme_may_follow(from: Scheme, to: Scheme, url: &str, who: &str) -> Result<(), LocationError> {
    match (from, to) {
        (a, b) if a == b => Ok(()),
        (Scheme::Http, Scheme::Https) => Ok(()),
        (Scheme::Https, Scheme::Http) => Err(refuse(
            url,
            format!("{who} downgrades https to plain http"),
            "a repo reached over https is only read over https; use another mirror",
        )),
        (_, Scheme::File) => Err(refuse(
            url,
            format!("{who} points a remote repo at a local file; file:// is only allowed from a file:// repo"),
            "the repo metadata is malformed or hostile; report it to the mirror",
        )),
        (Scheme::File, _) => Err(refuse(
            url,
            format!("{who} points a file:// repo at the network"),
            "a local repo's packages must be local; regenerate its metadata",
        )),
        _ => unreachable!("every other pair of schemes is equal or covered above"),
    }
}

/// `base` as a directory (ending in `/`), an absolute path made `file://`.
fn dir_form(base: &str) -> String {
    let mut s = base.trim().to_string();
    if !s.contains("://") && !s.starts_with('/') {
        if let Ok(cwd) = std::env::current_dir() {
            s = cwd.join(&s).to_string_lossy().into_owned();
        }
    }
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// The allow-list of `--policy allow_repos`, applied to every URL fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    allowed: Vec<Location>,
}

impl Fence {
    /// A fence of these prefixes; empty allows everything.
    pub fn new(prefixes: &[String]) -> Result<Fence, LocationError> {
        let allowed = prefixes
            .iter()
            .map(|p| Location::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Fence { allowed })
    }

    pub fn is_open(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether `url` (normalised) lies under an allowed prefix.
    pub fn allows(&self, url: &str) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        match Location::parse(&dir_or_file(url)) {
            Ok(loc) => self.allowed.iter().any(|p| loc.starts_with(p)),
            Err(_) => false,
        }
    }

    /// [`Fence::allows`], or an error naming the URL and the prefixes.
    pub fn check(&self, url: &str) -> Result<(), LocationError> {
        if self.allows(url) {
            return Ok(());
        }
        let list: Vec<String> = self.allowed.iter().map(Location::to_string).collect();
        Err(refuse(
            url,
            format!(
                "outside the policy's allow_repos ({}), after normalising dot segments, percent-encoding and ports",
                list.join(", ")
            ),
            "use a mirror the policy lists, or ask for it to be added",
        ))
    }
}

/// A relative local path made absolute, so it can be fenced.
fn dir_or_file(url: &str) -> String {
    if url.contains("://") || url.starts_with('/') {
        url.to_string()
    } else {
        std::env::current_dir()
            .map(|d| d.join(url).to_string_lossy().into_owned())
            .unwrap_or_else(|_| url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(u: &str) -> String {
        Location::parse(u).unwrap().to_string()
    }

    #[test]
    fn normalises_case_ports_dots_and_escapes() {
        assert_eq!(
            norm("HTTPS://M.Example:443/a/./b/../c/"),
            "https://m.example/a/c/"
        );
        assert_eq!(norm("http://h:80/%61llowed/x"), "http://h/allowed/x");
        assert_eq!(norm("http://h:8080/a"), "http://h:8080/a");
        assert_eq!(norm("http://u:p@h/a/%2e%2e/b"), "http://h/b");
        assert_eq!(norm("file:///mirror/../outside/"), "file:///outside/");
        assert_eq!(norm("file://localhost/a%20b"), "file:///a%20b");
        assert_eq!(norm("/srv/repo/"), "file:///srv/repo/");
        assert_eq!(norm("http://h/a/.."), "http://h/");
        assert_eq!(norm("http://[::1]:8080/x?y=1#z"), "http://[::1]:8080/x?y=1");
        assert!(Location::parse("http://h/a%2f..%2fb").is_err());
        assert!(Location::parse("ftp://h/").is_err());
        assert!(Location::parse("file://other/x").is_err());
        assert!(Location::parse("http://h:x/").is_err());
    }

    #[test]
    fn fence_matches_whole_segments_after_normalising() {
        let f = Fence::new(&[
            "https://m.example/allowed/".into(),
            "file:///mirror/".into(),
        ])
        .unwrap();
        assert!(f.allows("https://m.example/allowed/x/repodata/repomd.xml"));
        assert!(f.allows("https://M.EXAMPLE:443/allowed/./x"));
        assert!(!f.allows("https://m.example/allowed/../evil/"));
        assert!(!f.allows("https://m.example/allowed/%2e%2e/evil/"));
        assert!(!f.allows("https://m.example/allowedx/"));
        assert!(!f.allows("https://m.example.evil/allowed/"));
        assert!(!f.allows("http://m.example/allowed/"));
        assert!(!f.allows("https://m.example:8443/allowed/"));
        assert!(f.allows("file:///mirror/f/a.rpm"));
        assert!(!f.allows("file:///mirror/../outside/"));
        assert!(!f.allows("/mirror/../etc/shadow"));
        assert!(Fence::default().allows("http://anything/"));
        let e = f.check("https://m.example/allowed/../evil/").unwrap_err();
        assert!(e.to_string().contains("allow_repos"), "{e}");
    }

    #[test]
    fn locations_stay_under_the_base_and_keep_the_scheme() {
        let base = "https://m.example/repo/";
        assert_eq!(
            resolve(base, "Packages/a.rpm").unwrap(),
            "https://m.example/repo/Packages/a.rpm"
        );
        assert_eq!(
            resolve(base, "/Packages/a.rpm").unwrap(),
            "https://m.example/repo/Packages/a.rpm"
        );
        assert!(resolve(base, "../other/a.rpm").is_err());
        assert!(resolve(base, "Packages/%2e%2e/%2e%2e/x.rpm").is_err());
        assert!(resolve(base, "file:///etc/shadow").is_err());
        assert!(resolve(base, "http://cdn.example/a.rpm").is_err());
        assert_eq!(
            resolve(base, "https://cdn.example/pool/a.rpm").unwrap(),
            "https://cdn.example/pool/a.rpm"
        );
        assert!(resolve("http://m/r/", "https://cdn/a.rpm").is_ok());
        assert!(resolve("file:///srv/r/", "file:///srv/r/a.rpm").is_ok());
        assert!(resolve("file:///srv/r/", "../../etc/shadow").is_err());
        assert!(resolve("/srv/r", "a.rpm").unwrap() == "file:///srv/r/a.rpm");
        assert!(resolve("file:///srv/r/", "http://internal/x").is_err());
    }

    #[test]
    fn redirects_never_downgrade_nor_go_local() {
        assert_eq!(redirect("http://a/r/x", "/y/z").unwrap(), "http://a/y/z");
        assert_eq!(redirect("http://a/r/x", "z").unwrap(), "http://a/r/z");
        assert_eq!(redirect("https://a/r/x", "//b/q").unwrap(), "https://b/q");
        assert!(redirect("http://a/r/x", "https://b/q").is_ok());
        let down = redirect("https://a/r/x", "http://b/q").unwrap_err();
        assert!(down.rule.contains("downgrades"), "{down}");
        let local = redirect("http://a/r/x", "file:///etc/passwd").unwrap_err();
        assert!(local.rule.contains("file://"), "{local}");
    }
}
