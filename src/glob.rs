//! Shell-style wildcards for package names (`exclude`, the package-manager list)
//! and `exclude_paths` components: one matcher, so a pattern means the same
//! everywhere a recipe accepts one.

/// `*` matches any run of characters, `?` one character (also used for
/// `exclude_paths` components, see `rootfs::exclude`).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn star_and_question_mark() {
        assert!(glob_match("dnf*", "dnf-data"));
        assert!(glob_match("*-langpack-?", "glibc-langpack-c"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("dnf?", "dnf"));
        assert!(!glob_match("rpm", "rpm-libs"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
