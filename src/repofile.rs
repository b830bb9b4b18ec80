//! dnf `.repo` files (INI): the sections a recipe's `[[repo]] from = "…"`
//! takes its repositories from.
//!
//! Read as libdnf reads them: `[id]` sections of `key = value` lines, `#`
//! and `;` comments, indented lines continuing the previous value, lists
//! (baseurl, gpgkey) split on whitespace and commas, booleans as
//! 1/0/yes/no/true/false/on/off. Variables the caller passes (the recipe's
//! `vars`, `DNF_VAR_*` from the environment) are expanded here;
//! `$releasever`, `$basearch`, `$arch` and `$releasever_major`/`_minor` are
//! left for the per-arch substitution.
//! Options minibuild does not act on are returned, so the caller can say so.
//!
//! Pure: text in, data out; no input makes it panic.

use std::collections::BTreeMap;

/// One `[section]`, with what minibuild uses of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub id: String,
    /// Line of the `[id]` header (1-based).
    pub line: usize,
    pub enabled: bool,
    pub baseurls: Vec<String>,
    pub metalink: Option<String>,
    pub mirrorlist: Option<String>,
    pub gpgkeys: Vec<String>,
    pub gpgcheck: Option<bool>,
    pub repo_gpgcheck: Option<bool>,
    pub priority: Option<i32>,
    pub cost: Option<u32>,
    /// Options minibuild ignores: `(line, key, why)`.
    pub ignored: Vec<(usize, String, &'static str)>,
    /// The first unknown variable in a URL: an error once the section is
    /// used, not before (a disabled section may name a variable never set).
    pub unresolved: Option<RepoFileError>,
}

/// A problem at a line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFileError {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

fn error(line: usize, message: String, hint: &str) -> RepoFileError {
    RepoFileError {
        line,
        message,
        hint: (!hint.is_empty()).then(|| hint.to_string()),
    }
}

/// Variables minibuild substitutes per target arch, after this module.
const LATE: &[&str] = &[
    "releasever",
    "releasever_major",
    "releasever_minor",
    "basearch",
    "arch",
];

/// Why a known option is ignored (shown to the user); anything else is
/// "not an option minibuild knows".
fn ignored_why(key: &str) -> &'static str {
    match key {
        "skip_if_unavailable" => "a repo that cannot be read always fails the build",
        "countme" => "minibuild sends no usage count to mirrors",
        "metadata_expire"
        | "fastestmirror"
        | "max_parallel_downloads"
        | "deltarpm"
        | "minrate"
        | "throttle"
        | "timeout"
        | "retries"
        | "ip_resolve"
        | "bandwidth"
        | "enabled_metadata"
        | "mirrorlist_expire" => {
            "it tunes dnf's downloads and caches, which work differently here (see --timeout)"
        }
        "sslverify" => "TLS certificates are always verified",
        "sslcacert" | "sslclientcert" | "sslclientkey" => {
            "give a CA with --ca or --cert-dir instead"
        }
        "proxy" | "proxy_username" | "proxy_password" | "proxy_auth_method" => {
            "mirrors are reached directly"
        }
        "excludepkgs" | "exclude" | "includepkgs" => {
            "use packages.exclude in the recipe instead (it changes what can be installed)"
        }
        "module_hotfixes" => "modularity filtering is not applied",
        _ => "not an option minibuild knows",
    }
}

/// Parse a `.repo` file; `vars` expands `$name`/`${name}` besides the late ones.
pub fn parse(text: &str, vars: &BTreeMap<String, String>) -> Result<Vec<Section>, RepoFileError> {
    // (section id, header line, [(line, key, value)])
    type Raw = (String, usize, Vec<(usize, String, String)>);
    let mut raw: Vec<Raw> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation of the previous value (multi-line baseurl/gpgkey lists).
            match raw.last_mut().and_then(|s| s.2.last_mut()) {
                Some((_, _, value)) => {
                    value.push('\n');
                    value.push_str(trimmed);
                    continue;
                }
                None => {
                    return Err(error(
                        n,
                        "an indented line continues no `key = value`".into(),
                        "remove the leading whitespace, or put it under a key",
                    ))
                }
            }
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(id) = header.strip_suffix(']').map(str::trim) else {
                return Err(error(
                    n,
                    format!("`{trimmed}` is not a section header"),
                    "a section header is `[id]` on a line of its own",
                ));
            };
            if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(error(
                    n,
                    format!("section id `{id}` is invalid"),
                    "a repo id is one word such as `fedora` or `updates-testing`",
                ));
            }
            if let Some(first) = raw.iter().find(|s| s.0 == id) {
                return Err(error(
                    n,
                    format!("section [{id}] appears twice (first at line {})", first.1),
                    "give each section a distinct id",
                ));
            }
            raw.push((id.to_string(), n, Vec::new()));
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(error(
                n,
                format!("`{}` is not `key = value`", shorten(trimmed)),
                "each line of a section is `key = value`; comments start with #",
            ));
        };
        let Some(section) = raw.last_mut() else {
            return Err(error(
                n,
                format!("`{}` comes before any [section]", key.trim()),
                "start the file with a section header such as `[fedora]`",
            ));
        };
        section
            .2
            .push((n, key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    raw.into_iter()
        .map(|(id, line, entries)| section(id, line, entries, vars))
        .collect()
}

fn section(
    id: String,
    line: usize,
    entries: Vec<(usize, String, String)>,
    vars: &BTreeMap<String, String>,
) -> Result<Section, RepoFileError> {
    let mut s = Section {
        id,
        line,
        enabled: true,
        ..Section::default()
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let id = s.id.clone();
    for (n, key, value) in entries {
        if let Some(first) = seen.insert(key.clone(), n) {
            return Err(error(
                n,
                format!("[{id}] sets `{key}` twice (first at line {first})"),
                "keep one of them",
            ));
        }
        let at = |message: String, hint: &str| error(n, format!("[{id}] {key}: {message}"), hint);
        let boolean = |v: &str| match v.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(true),
            "0" | "no" | "false" | "off" => Ok(false),
            _ => Err(at(
                format!("`{}` is not a boolean", shorten(v)),
                "write 1 or 0 (or yes/no, true/false, on/off)",
            )),
        };
        let expand = |v: &str| {
            expand(v, vars).map_err(|name| {
                at(
                    format!("unknown variable `${name}`"),
                    &format!(
                        "define it in the recipe's [[repo]]: vars = {{ {name} = \"…\" }}, or export DNF_VAR_{name} (known without it: $releasever, $basearch, $arch)"
                    ),
                )
            })
        };
        let list = |v: &str| -> Result<Vec<String>, RepoFileError> {
            v.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|x| !x.is_empty())
                .map(expand)
                .collect()
        };
        let single = |v: &str| -> Result<Option<String>, RepoFileError> {
            let items = list(v)?;
            if items.len() > 1 {
                return Err(at(
                    "takes one URL, not a list".into(),
                    "keep one URL; list several base URLs under baseurl",
                ));
            }
            Ok(items.into_iter().next())
        };
        if matches!(
            key.as_str(),
            "baseurl" | "metalink" | "mirrorlist" | "gpgkey"
        ) {
            if let Err(e) = expand(&value) {
                s.unresolved.get_or_insert(e);
                continue;
            }
        }
        match key.as_str() {
            "name" => {}
            "type" if matches!(value.as_str(), "rpm-md" | "rpm" | "yum" | "") => {}
            "enabled" => s.enabled = boolean(&value)?,
            "baseurl" => s.baseurls = list(&value)?,
            "metalink" => s.metalink = single(&value)?,
            "mirrorlist" => s.mirrorlist = single(&value)?,
            "gpgkey" => s.gpgkeys = list(&value)?,
            "gpgcheck" | "pkg_gpgcheck" => s.gpgcheck = Some(boolean(&value)?),
            "repo_gpgcheck" => s.repo_gpgcheck = Some(boolean(&value)?),
            "priority" => {
                s.priority = Some(value.parse().map_err(|_| {
                    at(
                        format!("`{}` is not a number", shorten(&value)),
                        "a priority is a whole number; lower wins (default 99)",
                    )
                })?)
            }
            "cost" => {
                s.cost = Some(value.parse().map_err(|_| {
                    at(
                        format!("`{}` is not a number", shorten(&value)),
                        "a cost is a whole number; lower is preferred (default 1000)",
                    )
                })?)
            }
            "username" | "password" => {
                return Err(at(
                    "credentials are not read from .repo files".into(),
                    "remove it and put the credential in ~/.netrc (`machine HOST login USER password …`), or write the repo in the recipe with username and password_env",
                ))
            }
            _ => s.ignored.push((n, key.clone(), ignored_why(&key))),
        }
    }
    Ok(s)
}

/// `$name` and `${name}` from `vars`, the late variables kept as written;
/// `Err(name)` for any other variable. A `$` not followed by a name is kept.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, written) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &after[..end + 2]),
                None => ("", ""),
            }
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            (&after[..end], &after[..end])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(v) = vars.get(name) {
            out.push_str(v);
        } else if LATE.contains(&name) {
            out.push('$');
            out.push_str(written);
        } else {
            return Err(name.chars().take(40).collect());
        }
        rest = &after[written.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// At most 60 characters of `s`, for messages about arbitrary input.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fedora's fedora.repo (fedora-repos 40), abridged to two sections.
    const FEDORA: &str = "\
[fedora]
name=Fedora $releasever - $basearch
#baseurl=http://download.example/pub/fedora/linux/releases/$releasever/Everything/$basearch/os/
metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch
enabled=1
countme=1
metadata_expire=7d
repo_gpgcheck=0
type=rpm
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch
skip_if_unavailable=False

[fedora-debuginfo]
name=Fedora $releasever - $basearch - Debug
metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-debug-$releasever&arch=$basearch
enabled=0
";

    #[test]
    fn reads_fedora_repo_files() {
        let s = parse(FEDORA, &BTreeMap::new()).unwrap();
        assert_eq!(s.len(), 2);
        let f = &s[0];
        assert_eq!((f.id.as_str(), f.line, f.enabled), ("fedora", 1, true));
        assert_eq!(
            f.metalink.as_deref(),
            Some(
                "https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch"
            )
        );
        assert!(f.baseurls.is_empty() && f.mirrorlist.is_none());
        assert_eq!(
            f.gpgkeys,
            ["file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch"]
        );
        assert_eq!((f.gpgcheck, f.repo_gpgcheck), (Some(true), Some(false)));
        let ignored: Vec<(usize, &str)> =
            f.ignored.iter().map(|(n, k, _)| (*n, k.as_str())).collect();
        assert_eq!(
            ignored,
            [
                (6, "countme"),
                (7, "metadata_expire"),
                (12, "skip_if_unavailable")
            ]
        );
        assert!(!s[1].enabled);
    }

    #[test]
    fn lists_continuations_variables_and_numbers() {
        let vars = BTreeMap::from([("contentdir".to_string(), "centos".to_string())]);
        let text = "; CentOS style\n[baseos]\nbaseurl = https://a.example/$contentdir/$releasever/BaseOS/$basearch/os/,\n  https://b.example/${contentdir}/$releasever_major/\n\thttps://c.example/x\ngpgkey=file:///k1 file:///k2\npriority = 10\ncost=500\nENABLED=yes\n";
        let s = &parse(text, &vars).unwrap()[0];
        assert_eq!(
            s.baseurls,
            [
                "https://a.example/centos/$releasever/BaseOS/$basearch/os/",
                "https://b.example/centos/$releasever_major/",
                "https://c.example/x"
            ]
        );
        assert_eq!(s.gpgkeys, ["file:///k1", "file:///k2"]);
        assert_eq!((s.priority, s.cost, s.enabled), (Some(10), Some(500), true));
    }

    #[test]
    fn errors_name_the_line_section_and_key() {
        let e = |text: &str| parse(text, &BTreeMap::new()).unwrap_err();
        let u = parse("[a]\nbaseurl=https://m/$contentdir/\n", &BTreeMap::new()).unwrap()[0]
            .unresolved
            .clone()
            .unwrap();
        assert_eq!(u.line, 2);
        assert_eq!(u.message, "[a] baseurl: unknown variable `$contentdir`");
        assert!(u.hint.unwrap().contains("vars = { contentdir"));
        let b = e("[a]\nenabled=maybe\n");
        assert_eq!(
            (b.line, b.message.as_str()),
            (2, "[a] enabled: `maybe` is not a boolean")
        );
        assert_eq!(
            e("baseurl=x\n").message,
            "`baseurl` comes before any [section]"
        );
        assert_eq!(e("[a]\njunk\n").message, "`junk` is not `key = value`");
        assert_eq!(e("[a\n").message, "`[a` is not a section header");
        assert_eq!(
            e("[a]\n[b]\n[a]\n").message,
            "section [a] appears twice (first at line 1)"
        );
        assert_eq!(
            e("[a]\ngpgcheck=1\ngpgcheck=0\n").message,
            "[a] sets `gpgcheck` twice (first at line 2)"
        );
        let p = e("[a]\nusername=u\npassword=hunter2\n");
        assert_eq!(p.line, 2);
        assert!(p.hint.unwrap().contains(".netrc"));
        assert!(e("[a]\npriority=high\n").message.contains("not a number"));
        assert!(e("[a]\nmetalink=https://a https://b\n")
            .message
            .contains("one URL"));
        assert_eq!(e("  indented\n").line, 1);
    }

    #[test]
    fn expand_keeps_late_variables_and_lone_dollars() {
        let vars = BTreeMap::from([("x".to_string(), "1".to_string())]);
        assert_eq!(
            expand("a$x/${x}/$basearch/${releasever}/$/b$", &vars).unwrap(),
            "a1/1/$basearch/${releasever}/$/b$"
        );
        assert_eq!(expand("${unclosed", &vars).unwrap(), "${unclosed");
        assert_eq!(expand("$nope", &vars), Err("nope".to_string()));
    }

    #[test]
    fn never_panics_on_arbitrary_text() {
        let alphabet: Vec<char> = "[]=$ {}\n\t#;,abcé1".chars().collect();
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..3000 {
            let len = (seed % 48) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&text, &BTreeMap::new());
            let _ = parse(&format!("[s]\nbaseurl={text}"), &BTreeMap::new());
        }
    }
}
