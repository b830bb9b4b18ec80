//! Registry credentials, found where users already keep them, and the
//! registry's authentication challenge.
//!
//! Lookup order (the one podman/skopeo use, then docker's):
//! 1. `--creds-file FILE`, `--username USER --password-stdin` or
//!    `--creds USER:PASS` (the last shows in the process list);
//! 2. `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
//!    `~/.config/containers/auth.json`, `~/.docker/config.json`; in each,
//!    `credHelpers[registry]`, then `auths[…]` (base64 `auth` or
//!    `username`/`password`; the longest key matching `registry/repo`
//!    wins), then the file's `credsStore`. The first file with an answer wins.
//!
//! Helpers are run as `docker-credential-<name> get` with the registry on
//! stdin. Secrets live in [`Secret`], whose `Debug` and `Display` print
//! nothing, so they cannot leak through logs or error messages.

use std::fmt;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

/// A password or token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for building an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A username and password for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    /// Parse `--creds USER:PASS` (the password may contain `:`).
    pub fn from_flag(s: &str) -> Result<Self, AuthError> {
        match s.split_once(':') {
            Some((user, pass)) if !user.is_empty() => Ok(Credentials {
                username: user.to_string(),
                password: Secret::new(pass),
            }),
            _ => Err(AuthError::BadFlag),
        }
    }

    /// `--creds-file FILE`: `USER:PASSWORD` on the file's one line.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let bad = |reason: String| AuthError::CredsFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CREDENTIAL_BYTES).read_to_string(&mut text))
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        let line = one_line(&text).ok_or_else(|| {
            bad(
                "it must hold one line, USER:PASSWORD (a password cannot contain a line break)"
                    .into(),
            )
        })?;
        Credentials::from_flag(line)
            .map_err(|_| bad("its line must be USER:PASSWORD, with a non-empty USER".into()))
    }

    /// `--username USER --password-stdin`: the password is the one line
    /// of `input`, as with `docker login --password-stdin`.
    pub fn from_stdin(username: &str, input: impl Read) -> Result<Self, AuthError> {
        let mut text = String::new();
        input
            .take(MAX_CREDENTIAL_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| AuthError::Stdin(format!("cannot read it: {e}")))?;
        let password = one_line(&text)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| AuthError::Stdin("it must hold the password, on one line".into()))?;
        if username.is_empty() {
            return Err(AuthError::Stdin("--username is empty".into()));
        }
        Ok(Credentials {
            username: username.to_string(),
            password: Secret::new(password),
        })
    }

    /// `Basic base64(user:pass)`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A credentials file or stdin holds a few hundred bytes; more is a mistake.
const MAX_CREDENTIAL_BYTES: u64 = 64 * 1024;

/// `text` without one trailing line break, if that leaves a single line.
fn one_line(text: &str) -> Option<&str> {
    let line = text
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(text);
    (!line.contains(['\n', '\r'])).then_some(line)
}

/// Where credentials came from (for "wrong password" messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredSource {
    Flag,
    CredsFile(PathBuf),
    Stdin,
    File(PathBuf),
    Helper(String),
}

impl fmt::Display for CredSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredSource::Flag => f.write_str("--creds"),
            CredSource::CredsFile(p) => write!(f, "--creds-file {}", p.display()),
            CredSource::Stdin => f.write_str("--password-stdin"),
            CredSource::File(p) => write!(f, "{}", p.display()),
            CredSource::Helper(h) => write!(f, "docker-credential-{h}"),
        }
    }
}

/// The result of a lookup: the credentials (if any), where they came from,
/// and every place that was searched (named in errors).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub credentials: Option<(Credentials, CredSource)>,
    pub searched: Vec<String>,
}

impl Found {
    /// "--creds" or the list of files/helpers searched, for error messages.
    pub fn describe(&self) -> String {
        match &self.credentials {
            Some((_, source)) => format!("credentials from {source}"),
            None if self.searched.is_empty() => "no credentials".to_string(),
            None => format!("no credentials found in {}", self.searched.join(", ")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--creds must be USER:PASSWORD")]
    BadFlag,
    #[error("--creds-file `{}`: {reason}", path.display())]
    CredsFile { path: PathBuf, reason: String },
    #[error("--password-stdin: {0}; pipe the password in, e.g. `printenv REGISTRY_PASSWORD | minibuild … --username USER --password-stdin`")]
    Stdin(String),
    #[error("cannot read the auth file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the auth file `{}` is not valid JSON", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the auth file `{}` has an invalid `auth` entry for `{key}` (expected base64 of USER:PASSWORD)", path.display())]
    BadAuthEntry { path: PathBuf, key: String },
    #[error("credential helper docker-credential-{helper} failed for `{registry}`: {reason}")]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
}

/// The environment the lookup reads (explicit, so tests need no global env).
#[derive(Debug, Clone, Default)]
pub struct AuthEnv {
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// `PATH` for finding `docker-credential-*` helpers (None: inherit).
    pub path: Option<std::ffi::OsString>,
}

impl AuthEnv {
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        AuthEnv {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            home: var("HOME"),
            path: None,
        }
    }

    /// The auth files to search, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        files.extend(self.registry_auth_file.clone());
        if let Some(x) = &self.xdg_runtime_dir {
            files.push(x.join("containers/auth.json"));
        }
        if let Some(h) = &self.home {
            files.push(h.join(".config/containers/auth.json"));
            files.push(h.join(".docker/config.json"));
        }
        files
    }
}

/// Find credentials for `registry` (`host:port`) and `repository`.
pub fn lookup(
    registry: &str,
    repository: &str,
    given: Option<&(Credentials, CredSource)>,
    env: &AuthEnv,
) -> Result<Found, AuthError> {
    if let Some((c, source)) = given {
        return Ok(Found {
            credentials: Some((c.clone(), source.clone())),
            searched: vec![source.to_string()],
        });
    }
    let mut found = Found::default();
    for path in env.files() {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(AuthError::Read { path, source }),
        };
        found.searched.push(path.display().to_string());
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| AuthError::Parse {
                path: path.clone(),
                source,
            })?;
        if let Some(creds) = from_auth_file(&json, &path, registry, repository, env)? {
            found.credentials = Some(creds);
            return Ok(found);
        }
    }
    Ok(found)
}

/// Credentials for `registry` in one parsed auth file, if it has any.
fn from_auth_file(
    json: &serde_json::Value,
    path: &Path,
    registry: &str,
    repository: &str,
    env: &AuthEnv,
) -> Result<Option<(Credentials, CredSource)>, AuthError> {
    if let Some(helper) = json
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .and_then(|h| h.as_str())
    {
        return run_helper(helper, registry, env);
    }
    let full = format!("{registry}/{repository}");
    let best = json
        .get("auths")
        .and_then(|a| a.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(key, entry)| {
            let k = normalize_key(key);
            let matches = full == k || full.starts_with(&format!("{k}/"));
            matches.then_some((k.len(), key, entry))
        })
        .max_by_key(|(len, _, _)| *len);
    if let Some((_, key, entry)) = best {
        if let Some(c) = decode_entry(entry, path, key)? {
            return Ok(Some((c, CredSource::File(path.to_path_buf()))));
        }
    }
    if let Some(store) = json.get("credsStore").and_then(|s| s.as_str()) {
        return run_helper(store, registry, env);
    }
    Ok(None)
}

/// `https://host:port/v1/` → `host:port`; `host/ns` stays `host/ns`.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    k.strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
}

fn decode_entry(
    entry: &serde_json::Value,
    path: &Path,
    key: &str,
) -> Result<Option<Credentials>, AuthError> {
    let bad = || AuthError::BadAuthEntry {
        path: path.to_path_buf(),
        key: key.to_string(),
    };
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        return Credentials::from_flag(&raw).map(Some).map_err(|_| bad());
    }
    let user = entry.get("username").and_then(|u| u.as_str());
    let pass = entry.get("password").and_then(|p| p.as_str());
    Ok(match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
            username: u.to_string(),
            password: Secret::new(p),
        }),
        _ => None,
    })
}

/// `docker-credential-<helper> get` with the registry on stdin.
fn run_helper(
    helper: &str,
    registry: &str,
    env: &AuthEnv,
) -> Result<Option<(Credentials, CredSource)>, AuthError> {
    let fail = |reason: String| AuthError::Helper {
        helper: helper.to_string(),
        registry: registry.to_string(),
        reason,
    };
    let program = format!("docker-credential-{helper}");
    let mut cmd = Command::new(&program);
    if let Some(path) = &env.path {
        cmd.env("PATH", path);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run `{program}` ({e}); is it installed and on PATH?"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(format!("cannot write to it: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot read its output: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper protocol's "nothing stored" answer is not an error.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{} {}", out.status, stderr.trim())));
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| fail(format!("its output is not JSON: {e}")))?;
    let user = json.get("Username").and_then(|u| u.as_str()).unwrap_or("");
    let secret = json.get("Secret").and_then(|s| s.as_str()).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        Credentials {
            username: user.to_string(),
            password: Secret::new(secret),
        },
        CredSource::Helper(helper.to_string()),
    )))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parse `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `a="x,y", b=z` → [(a, "x,y"), (b, z)]; quoted values may hold commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((name, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: Secret::new(p),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = creds("alice", "hunter2");
        let shown = format!(
            "{c:?} {:?}",
            Found {
                credentials: Some((c.clone(), CredSource::Flag)),
                searched: vec![],
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn flag_keeps_colons_in_password() {
        assert_eq!(Credentials::from_flag("u:a:b").unwrap(), creds("u", "a:b"));
        assert!(Credentials::from_flag("nopass").is_err());
        assert!(Credentials::from_flag(":x").is_err());
        assert_eq!(creds("u", "p").basic_header(), "Basic dTpw");
    }

    #[test]
    fn creds_file_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(&file, "u:p:w\r\n").unwrap();
        assert_eq!(Credentials::from_file(&file).unwrap(), creds("u", "p:w"));
        std::fs::write(&file, "u:p\nextra\n").unwrap();
        let e = Credentials::from_file(&file).unwrap_err().to_string();
        assert!(
            e.contains(&file.display().to_string()) && e.contains("one line"),
            "{e}"
        );
        std::fs::write(&file, "nopass").unwrap();
        let e = Credentials::from_file(&file).unwrap_err().to_string();
        assert!(e.contains("USER:PASSWORD"), "{e}");
        assert!(
            !e.contains("nopass"),
            "the file's content is not echoed: {e}"
        );
        let missing = dir.path().join("missing");
        assert!(Credentials::from_file(&missing).is_err());

        assert_eq!(
            Credentials::from_stdin("u", &b"pw\n"[..]).unwrap(),
            creds("u", "pw")
        );
        assert!(Credentials::from_stdin("u", &b""[..]).is_err());
        assert!(Credentials::from_stdin("u", &b"a\nb"[..]).is_err());
    }

    #[test]
    fn auth_file_order_and_key_forms() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let xdg = dir.path().join("run");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::create_dir_all(xdg.join("containers")).unwrap();
        // docker config: legacy https://…/v1/ key, base64 auth
        std::fs::write(
            home.join(".docker/config.json"),
            r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"ZG9jazpwdw=="}}}"#,
        )
        .unwrap();
        let env = AuthEnv {
            registry_auth_file: None,
            xdg_runtime_dir: Some(xdg.clone()),
            home: Some(home.clone()),
            path: None,
        };
        let f = lookup("reg.example:5000", "app", None, &env).unwrap();
        let (c, src) = f.credentials.unwrap();
        assert_eq!(c, creds("dock", "pw"));
        assert_eq!(src, CredSource::File(home.join(".docker/config.json")));

        // containers auth.json in XDG_RUNTIME_DIR wins; a repo-specific key beats the host key
        std::fs::write(
            xdg.join("containers/auth.json"),
            r#"{"auths":{"reg.example:5000":{"auth":"aG9zdDpwdw=="},
                         "reg.example:5000/team":{"username":"team","password":"tpw"}}}"#,
        )
        .unwrap();
        let f = lookup("reg.example:5000", "team/app", None, &env).unwrap();
        assert_eq!(f.credentials.unwrap().0, creds("team", "tpw"));
        let f = lookup("reg.example:5000", "other", None, &env).unwrap();
        assert_eq!(f.credentials.unwrap().0, creds("host", "pw"));
        // a different port is a different registry
        let f = lookup("reg.example:5001", "app", None, &env).unwrap();
        assert!(f.credentials.is_none());
        assert_eq!(f.searched.len(), 2, "{:?}", f.searched);
        assert!(
            f.describe().contains("containers/auth.json"),
            "{}",
            f.describe()
        );
    }

    #[test]
    fn flag_wins_and_bad_entries_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"auths":{"r.example":{"auth":"!!notbase64"}}}"#).unwrap();
        let env = AuthEnv {
            registry_auth_file: Some(file.clone()),
            ..AuthEnv::default()
        };
        let flag = (creds("f", "p"), CredSource::Flag);
        let f = lookup("r.example", "app", Some(&flag), &env).unwrap();
        assert_eq!(f.credentials.unwrap().1, CredSource::Flag);
        let e = lookup("r.example", "app", None, &env).unwrap_err();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn credential_helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-mbtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread reg\n[ \"$1\" = get ] || exit 3\n\
             if [ \"$reg\" = h.example ]; then echo '{\"ServerURL\":\"h.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}';\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            r#"{"credsStore":"mbtest","credHelpers":{"other.example":"missing"}}"#,
        )
        .unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        let env = AuthEnv {
            registry_auth_file: Some(file.clone()),
            path: Some(path.into()),
            ..AuthEnv::default()
        };
        let f = lookup("h.example", "app", None, &env).unwrap();
        let (c, src) = f.credentials.unwrap();
        assert_eq!(c, creds("hu", "hs"));
        assert_eq!(src, CredSource::Helper("mbtest".into()));
        // "credentials not found" is no credentials, not an error
        let f = lookup("n.example", "app", None, &env).unwrap();
        assert!(f.credentials.is_none());
        // a helper that is not installed: the error names it
        let e = lookup("other.example", "app", None, &env).unwrap_err();
        assert!(e.to_string().contains("docker-credential-missing"), "{e}");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }
}
