//! `options.exclude_paths`: image paths no package may install, the way to
//! settle a file conflict between two packages (or to drop files nobody
//! needs) without leaving a package out.
//!
//! Rules, deliberately small:
//! - a pattern is an absolute path, `/usr/share/foo/bar`;
//! - `*` matches any characters inside one path component (never `/`),
//!   `?` exactly one; everything else is literal (no `**`, no `[…]`);
//! - a pattern that matches a directory also excludes everything below it
//!   (`/usr/lib/x` and `/usr/lib/x/*` both drop the files in it; only the
//!   first drops the directory itself).
//!
//! A header path is tested both as written (`/lib/x/y`) and as it lands in
//! the image after symlinked parents (`/usr/lib/x/y` with `/lib → usr/lib`),
//! so a pattern in either spelling works.

use std::fmt;

// `*` and `?` matching, the same as for `[packages] exclude`; applied to
// one component at a time, so `*` never crosses a `/`.
use crate::glob::glob_match as glob;

/// One validated `exclude_paths` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    /// Components, `/usr/lib/x/*` → `["usr", "lib", "x", "*"]`.
    parts: Vec<String>,
}

impl PathPattern {
    /// Validate `text`; the error says what is wrong in a sentence.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err(format!("`{text}` is not an absolute path"));
        }
        let parts: Vec<String> = text
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if parts.is_empty() {
            return Err("`/` would exclude the whole image".to_string());
        }
        if let Some(bad) = parts.iter().find(|p| *p == "." || *p == "..") {
            return Err(format!("`{text}` has a `{bad}` component"));
        }
        if parts.iter().any(|p| p.contains("**")) {
            return Err(format!(
                "`{text}`: `**` is not supported; a directory pattern already covers everything below it"
            ));
        }
        Ok(PathPattern {
            text: text.to_string(),
            parts,
        })
    }

    /// Whether the image path `path` (leading `/` optional, already
    /// normalized) is the pattern's path or lies below it.
    pub fn matches(&self, path: &str) -> bool {
        let mut comps = path.split('/').filter(|p| !p.is_empty());
        self.parts
            .iter()
            .all(|pat| comps.next().is_some_and(|c| glob(pat, c)))
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The first pattern matching any of `paths`.
pub fn excluded_by<'a>(patterns: &'a [PathPattern], paths: &[&str]) -> Option<&'a PathPattern> {
    patterns
        .iter()
        .find(|pat| paths.iter().any(|p| pat.matches(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn globs_stay_inside_one_component() {
        assert!(glob("*", "anything"));
        assert!(glob("*.conf", "a.conf"));
        assert!(!glob("*.conf", "a.conf.bak"));
        assert!(glob("lib*.so.?", "libfoo.so.1"));
        assert!(!glob("lib*.so.?", "libfoo.so.12"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(glob("", ""));
        assert!(!glob("?", ""));
    }

    #[test]
    fn patterns_match_the_path_and_below() {
        let p = pat("/usr/share/clash/greeting");
        assert!(p.matches("usr/share/clash/greeting"));
        assert!(p.matches("/usr/share/clash/greeting"));
        assert!(!p.matches("usr/share/clash/greeting2"));
        assert!(!p.matches("usr/share/clash"));
        let dir = pat("/usr/lib/x/");
        assert!(dir.matches("usr/lib/x"));
        assert!(dir.matches("usr/lib/x/y/z"));
        let star = pat("/usr/lib/x/*");
        assert!(!star.matches("usr/lib/x"));
        assert!(star.matches("usr/lib/x/y"));
        assert!(star.matches("usr/lib/x/y/z"));
        assert!(!pat("/usr/*/x").matches("usr/lib/y/x"));
        assert!(pat("/usr/*/x").matches("usr/lib/x"));
    }

    #[test]
    fn invalid_patterns_say_why() {
        assert!(PathPattern::parse("usr/x")
            .unwrap_err()
            .contains("absolute"));
        assert!(PathPattern::parse("/").unwrap_err().contains("whole image"));
        assert!(PathPattern::parse("/usr/../etc")
            .unwrap_err()
            .contains("`..`"));
        assert!(PathPattern::parse("/usr/**/x").unwrap_err().contains("**"));
        assert_eq!(pat("/a//b").to_string(), "/a//b");
    }

    #[test]
    fn excluded_by_tries_every_spelling() {
        let pats = [pat("/usr/lib/x"), pat("/etc/*.conf")];
        assert_eq!(
            excluded_by(&pats, &["/lib/x/y", "usr/lib/x/y"]).map(|p| p.to_string()),
            Some("/usr/lib/x".to_string())
        );
        assert!(excluded_by(&pats, &["/etc/a/b.conf"]).is_none());
    }
}
