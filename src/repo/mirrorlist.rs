//! Mirrorlist documents: base URLs, one a line, `#` comments, tried in order.
//!
//! Pure: text in, data out; no input makes it panic.

/// What a mirrorlist document gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mirrorlist {
    /// Base URLs (ending in `/`), in the document's order, without repeats.
    pub mirrors: Vec<String>,
    /// Lines passed over: not an http(s) URL (`line N: text`).
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the mirrorlist names no http(s) mirror{}", if .skipped.is_empty() { String::new() } else { format!(" (passed over: {})", .skipped.join("; ")) })]
pub struct EmptyMirrorlist {
    pub skipped: Vec<String>,
}

/// Parse a mirrorlist: every non-blank line not starting with `#` is a
/// base URL (dnf and librepo read them so); `$releasever`-style variables in
/// it are left for the caller.
pub fn parse(text: &str) -> Result<Mirrorlist, EmptyMirrorlist> {
    let mut out = Mirrorlist::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let is_http = line.starts_with("https://") || line.starts_with("http://");
        if !is_http || line.contains(char::is_whitespace) {
            // Quote a bounded prefix: the document may be anything (an HTML error page).
            let shown: String = line.chars().take(80).collect();
            out.skipped.push(format!("line {}: {shown}", n + 1));
            continue;
        }
        let base = crate::repo::normalize_baseurl(line);
        if !out.mirrors.contains(&base) {
            out.mirrors.push(base);
        }
    }
    if out.mirrors.is_empty() {
        return Err(EmptyMirrorlist {
            skipped: out.skipped,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_order() {
        let m = parse(
            "# mirrors for updates\n\nhttps://a.example/f/$releasever/\n  http://b.example/f  \nftp://c.example/f/\nhttps://a.example/f/$releasever/\n",
        )
        .unwrap();
        assert_eq!(
            m.mirrors,
            ["https://a.example/f/$releasever/", "http://b.example/f/"]
        );
        assert_eq!(m.skipped, ["line 5: ftp://c.example/f/"]);
    }

    #[test]
    fn a_list_without_mirrors_is_an_error_naming_what_was_read() {
        let e = parse("<html>\n<body>Service Unavailable</body>\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the mirrorlist names no http(s) mirror (passed over: line 1: <html>; line 2: <body>Service Unavailable</body>)"
        );
        assert_eq!(
            parse("# nothing\n"),
            Err(EmptyMirrorlist { skipped: vec![] })
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_text() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from_u32((seed % 0x3000) as u32).unwrap_or('#')
                })
                .collect();
            let _ = parse(&text);
            let _ = parse(&format!("https://{text}\n#{text}"));
        }
    }
}
