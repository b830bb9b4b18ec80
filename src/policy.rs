//! A site policy (`--policy POLICY.toml`): which repositories a build may use
//! and which keys must sign them. Checked against the recipe before anything
//! is downloaded, so a recipe pointing elsewhere fails without touching the network.
//!
//! ```toml
//! # Repo base URLs (after $releasever/$basearch and --baseurl) must start with one of these.
//! allow_repos = ["https://mirror.example.org/fedora/", "file:///srv/mirror/"]
//! # Every repo must check signatures, with keys pinned to one of these fingerprints.
//! signing_keys = ["115DF9AEF857853EE8445D0A0727707EA15B79CC"]
//! # Every repo must also verify repomd.xml.asc (default false).
//! require_repo_gpgcheck = true
//! ```
//!
//! Prefixes match whole path segments after both sides are normalised
//! (`crate::location`): `https://mirror.example.org` allows
//! `https://mirror.example.org/x/` but not `https://mirror.example.org.evil/`,
//! and `…/allowed/../evil/` or `…/allowed/%2e%2e/evil/` is `…/evil/`. The
//! list is checked here against each repo's base URL before anything is
//! fetched, and again by the HTTP client ([`Policy::fence`]) on every URL
//! actually fetched: package locations, `xml:base`, redirect targets.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::location::Fence;
use crate::recipe::Repo;
use crate::signature::normalize_fingerprint;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Where it was read from (for messages).
    #[serde(skip)]
    pub path: PathBuf,
    /// Allowed base URL prefixes; empty allows any URL.
    #[serde(default)]
    pub allow_repos: Vec<String>,
    /// Allowed signing key fingerprints; when non-empty every repo must have
    /// `gpgcheck` on and every `gpgkey` pinned to one of them.
    #[serde(default)]
    pub signing_keys: Vec<String>,
    #[serde(default)]
    pub require_repo_gpgcheck: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("repo `{repo}` is not allowed by the policy {policy}: {rule}\n  hint: {hint}")]
pub struct Violation {
    pub repo: String,
    pub policy: String,
    /// Which rule, in words.
    pub rule: String,
    pub hint: String,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Policy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut p: Policy =
            toml::from_str(text).map_err(|e| invalid(e.message().trim_end().to_string()))?;
        p.path = path.to_path_buf();
        Fence::new(&p.allow_repos).map_err(|e| invalid(format!("allow_repos: {e}")))?;
        p.signing_keys = p
            .signing_keys
            .iter()
            .map(|k| normalize_fingerprint(k))
            .collect();
        Ok(p)
    }

    /// The allow-list as the HTTP client applies it to every URL it fetches.
    pub fn fence(&self) -> Fence {
        // Validated when the policy was parsed.
        Fence::new(&self.allow_repos).unwrap_or_default()
    }

    /// Check one repo of the recipe, whose base URL (substituted, overridden) is `baseurl`.
    pub fn check(&self, repo: &Repo, baseurl: &str) -> Result<(), Violation> {
        let violation = |rule: String, hint: &str| Violation {
            repo: repo.name.clone(),
            policy: self.path.display().to_string(),
            rule,
            hint: hint.to_string(),
        };
        if !self.fence().allows(baseurl) {
            return Err(violation(
                format!(
                    "its URL {baseurl} is outside allow_repos ({})",
                    self.allow_repos.join(", ")
                ),
                "use a mirror the policy lists, or ask for it to be added",
            ));
        }
        if self.require_repo_gpgcheck && !repo.repo_gpgcheck {
            return Err(violation(
                "require_repo_gpgcheck is set, but the repo has repo_gpgcheck off".into(),
                "set `repo_gpgcheck = true` (the repo must publish repodata/repomd.xml.asc)",
            ));
        }
        if self.signing_keys.is_empty() {
            return Ok(());
        }
        if !repo.gpgcheck {
            return Err(violation(
                "signing_keys requires signature checks, but the repo has gpgcheck off".into(),
                "remove `gpgcheck = false` and give the repo a pinned gpgkey",
            ));
        }
        if repo.gpgkeys.is_empty() {
            return Err(violation(
                "signing_keys requires a gpgkey, and the repo has none".into(),
                "add gpgkey = [{ url = \"…\", fingerprint = \"…\" }] with an allowed fingerprint",
            ));
        }
        for key in &repo.gpgkeys {
            match &key.fingerprint {
                None => {
                    return Err(violation(
                        format!(
                            "signing_keys requires pinned keys, and {} has no fingerprint",
                            key.url
                        ),
                        "write the key as { url = \"…\", fingerprint = \"…\" }",
                    ))
                }
                Some(f) if !self.signing_keys.contains(f) => {
                    return Err(violation(
                        format!(
                            "key {f} ({}) is not among signing_keys ({})",
                            key.url,
                            self.signing_keys.join(", ")
                        ),
                        "use a key the policy lists, or ask for it to be added",
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// `url` lies under `prefix`, both normalised.
#[cfg(test)]
fn url_has_prefix(url: &str, prefix: &str) -> bool {
    Fence::new(&[prefix.to_string()]).unwrap().allows(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::GpgKey;

    fn repo(keys: &[(&str, Option<&str>)], gpgcheck: bool) -> Repo {
        Repo {
            name: "fedora".into(),
            baseurl: String::new(),
            more_baseurls: vec![],
            metalink: None,
            mirrorlist: None,
            gpgkeys: keys
                .iter()
                .map(|(u, f)| GpgKey {
                    url: u.to_string(),
                    fingerprint: f.map(str::to_string),
                })
                .collect(),
            gpgcheck,
            repo_gpgcheck: false,
            priority: 99,
            cost: 1000,
            auth: Default::default(),
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(Path::new("p.toml"), text).unwrap()
    }

    #[test]
    fn prefixes_match_at_path_boundaries() {
        assert!(url_has_prefix(
            "https://m.example/f/40/",
            "https://m.example"
        ));
        assert!(url_has_prefix(
            "https://m.example/f/40/",
            "https://m.example/f/"
        ));
        assert!(!url_has_prefix(
            "https://m.example.evil/f/",
            "https://m.example"
        ));
        assert!(!url_has_prefix(
            "https://m.example/fx/",
            "https://m.example/f"
        ));
        assert!(url_has_prefix("https://m.example/f", "https://m.example/f"));
        assert!(!url_has_prefix(
            "https://m.example/f/../evil/",
            "https://m.example/f/"
        ));
        assert!(!url_has_prefix(
            "file:///mirror/../outside/",
            "file:///mirror/"
        ));
        assert!(url_has_prefix(
            "https://M.example:443/%66/x/",
            "https://m.example/f/"
        ));
    }

    #[test]
    fn repo_outside_the_allow_list_is_named() {
        let p = policy("allow_repos = [\"https://m.example/\"]");
        let r = repo(&[], false);
        assert!(p.check(&r, "https://m.example/fedora/40/x86_64/").is_ok());
        let e = p.check(&r, "https://other.example/fedora/").unwrap_err();
        assert_eq!(e.repo, "fedora");
        let msg = e.to_string();
        assert!(
            msg.contains("`fedora`") && msg.contains("allow_repos"),
            "{msg}"
        );
        assert!(msg.contains("https://other.example/fedora/"), "{msg}");
    }

    #[test]
    fn signing_keys_require_pinned_allowed_keys() {
        let p = policy("signing_keys = [\"aaaa BBBB\"]");
        let url = "https://x/";
        let ok = repo(&[("k", Some("AAAABBBB"))], true);
        assert!(p.check(&ok, url).is_ok());
        let off = repo(&[("k", Some("AAAABBBB"))], false);
        assert!(p
            .check(&off, url)
            .unwrap_err()
            .rule
            .contains("gpgcheck off"));
        let unpinned = repo(&[("k", None)], true);
        assert!(p
            .check(&unpinned, url)
            .unwrap_err()
            .rule
            .contains("no fingerprint"));
        let other = repo(&[("k", Some("CCCC"))], true);
        assert!(p.check(&other, url).unwrap_err().rule.contains("CCCC"));
        let none = repo(&[], true);
        assert!(p.check(&none, url).unwrap_err().rule.contains("has none"));
    }

    #[test]
    fn repo_gpgcheck_can_be_required_and_typos_are_refused() {
        let p = policy("require_repo_gpgcheck = true");
        let mut r = repo(&[], false);
        assert!(p.check(&r, "u").is_err());
        r.repo_gpgcheck = true;
        assert!(p.check(&r, "u").is_ok());
        assert!(Policy::parse(Path::new("p"), "allow_repo = []").is_err());
    }
}
