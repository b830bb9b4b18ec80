//! Image references for pushing: `REGISTRY/REPO:TAG` or `REGISTRY/REPO@sha256:…`.
//!
//! Unlike docker, the registry host is never implied: the first path
//! component is always the registry (`localhost:5000/app:1`,
//! `registry.example/team/app@sha256:…`), so no registry name is built in.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Algorithm, Digest};

/// What a reference points at inside the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    Digest(Digest),
    /// `REPO:TAG@sha256:…`: the tag is pushed and the digest must match.
    TagAndDigest(String, Digest),
}

/// A parsed `REGISTRY/REPO(:TAG|@DIGEST)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host`, `host:port`, or `[::1]:port`.
    pub registry: String,
    /// Repository path inside the registry (`team/app`).
    pub repository: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    /// The tag to push the top manifest under, if any.
    pub fn tag(&self) -> Option<&str> {
        match &self.target {
            Target::Tag(t) | Target::TagAndDigest(t, _) => Some(t),
            Target::Digest(_) => None,
        }
    }

    /// The digest the reference pins, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.target {
            Target::Digest(d) | Target::TagAndDigest(_, d) => Some(d),
            Target::Tag(_) => None,
        }
    }

    /// `REGISTRY/REPO` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `REGISTRY/REPO[:TAG]@DIGEST`: what CI pipelines pin after a push.
    pub fn pinned(&self, digest: &Digest) -> String {
        match self.tag() {
            Some(tag) => format!("{}:{tag}@{digest}", self.name()),
            None => format!("{}@{digest}", self.name()),
        }
    }

    /// The host part without the port, brackets removed (`::1`).
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// True for registries on this machine, where plain HTTP is allowed
    /// without `--insecure` (as docker and podman do).
    pub fn is_loopback(&self) -> bool {
        matches!(self.host(), "localhost" | "127.0.0.1" | "::1")
    }
}

/// `host` of `host:port` / `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        match &self.target {
            Target::Tag(t) => write!(f, ":{t}"),
            Target::Digest(d) => write!(f, "@{d}"),
            Target::TagAndDigest(t, d) => write!(f, ":{t}@{d}"),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let (algo, hex) = d
                    .split_once(':')
                    .ok_or_else(|| err("the digest must look like `sha256:<64 hex digits>`"))?;
                if algo != "sha256" {
                    return Err(err("only sha256 digests are supported"));
                }
                let digest = Digest::new(Algorithm::Sha256, hex)
                    .map_err(|_| err("the digest must look like `sha256:<64 hex digits>`"))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            err("expected REGISTRY/REPO:TAG with an explicit registry host (e.g. `localhost:5000/app:1`)")
        })?;
        if !valid_registry(registry) {
            return Err(err(
                "the first component must be a registry host (`host`, `host:port` or `[ipv6]:port`)",
            ));
        }
        // A tag is a `:` after the last `/` (registry ports are before it).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        if !repository.split('/').all(valid_component) {
            return Err(err(
                "repository components are lowercase letters and digits separated by `.`, `_`, `__`, `-` or `/`",
            ));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(err(
                    "a tag is up to 128 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`",
                ));
            }
        }
        let target = match (tag, digest) {
            (Some(t), None) => Target::Tag(t.to_string()),
            (None, Some(d)) => Target::Digest(d),
            (Some(t), Some(d)) => Target::TagAndDigest(t.to_string(), d),
            (None, None) => {
                return Err(err(
                    "missing tag or digest (add `:TAG`; minibuild does not assume `latest`)",
                ))
            }
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            target,
        })
    }
}

fn valid_registry(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else {
            return false;
        };
        let ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        match (tail, tail.strip_prefix(':')) {
            ("", _) => (ok, None),
            (_, Some(port)) => (ok, Some(port)),
            (_, None) => return false,
        }
    } else {
        let (h, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let ok = !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        (ok, port)
    };
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` from the distribution spec.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn registry_port_repo_tag() {
        let r = parse("127.0.0.1:5000/team/app:1.2");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.target, Target::Tag("1.2".into()));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:1.2");
    }

    #[test]
    fn digest_forms() {
        let r = parse(&format!("registry.example/app@sha256:{HEX}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert!(!r.is_loopback());
        let r = parse(&format!("registry.example:443/app:v1@sha256:{HEX}"));
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(
            r.to_string(),
            format!("registry.example:443/app:v1@sha256:{HEX}")
        );
        let d = Digest::new(Algorithm::Sha256, HEX).unwrap();
        assert_eq!(
            parse("localhost/app:v1").pinned(&d),
            format!("localhost/app:v1@sha256:{HEX}")
        );
    }

    #[test]
    fn ipv6_loopback() {
        let r = parse("[::1]:5000/app:x");
        assert_eq!(r.host(), "::1");
        assert!(r.is_loopback());
    }

    #[test]
    fn rejects_missing_registry_tag_or_bad_names() {
        for bad in [
            "app:1",
            "localhost:5000/app",
            "localhost:5000/App:1",
            "localhost:5000/app:-x",
            "localhost:5000/app@sha256:abc",
            "localhost:5000/app@md5:0123",
            "local_host/app:1",
            "localhost:50a/app:1",
            "localhost:5000/a//b:1",
            "localhost:5000/a..b:1",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad} accepted");
        }
        let e = "app:1".parse::<Reference>().unwrap_err();
        assert!(e.to_string().contains("explicit registry host"), "{e}");
    }

    #[test]
    fn separators_in_components() {
        assert!(valid_component("a__b"));
        assert!(valid_component("a---b.c_d"));
        assert!(!valid_component("a___b"));
        assert!(!valid_component("a-"));
    }
}
