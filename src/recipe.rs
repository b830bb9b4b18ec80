//! The recipe: a TOML file naming repositories, packages and image settings.
//!
//! Parsing happens in two steps: serde reads the text into `Raw*` structs that
//! keep source spans (unknown keys and wrong types are rejected there, with
//! toml's own position), then [`parse`] checks what serde cannot (empty
//! package list, missing repo, bad arch or port), one function per table,
//! and produces the plain [`Recipe`] the pipeline uses. Every error carries
//! `file:line:column` and a hint.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::digest::Digest;
use crate::duration::parse_duration;
use crate::gates::spec::{self as gate, Gates};
use crate::healthcheck::Healthcheck;
use crate::package::Arch;
use crate::rootfs::exclude::PathPattern;

/// The name of the synthetic repo of `[packages] local` (see the `local` module).
pub const LOCAL_REPO: &str = "@local";

/// A validated recipe, with paths already resolved against the recipe's directory.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub path: PathBuf,
    /// sha256 of the recipe text, recorded for provenance.
    pub digest: Digest,
    pub image: Image,
    pub repos: Vec<Repo>,
    pub packages: Packages,
    pub options: Options,
    pub copies: Vec<Copy>,
    /// `[certificates] additional`: private CA files (PEM or DER), resolved
    /// against the recipe's directory, added to the image's trust store.
    pub certificates: Vec<PathBuf>,
    pub accounts: Accounts,
    /// `[check]`: CI gates `build` runs on the image it wrote (and
    /// `check --recipe` reads).
    pub gates: Gates,
    /// What the recipe asks for that minibuild leaves aside (ignored `.repo`
    /// options, disabled sections), one line each, for the user to see.
    pub warnings: Vec<String>,
    /// The core recipe `image.base` names, once loaded (see [`Recipe::set_core`]).
    pub core: Option<Box<Recipe>>,
}

impl Recipe {
    /// Attach the loaded core recipe of `image.base`. A core is one layer:
    /// it may not have a base of its own.
    pub fn set_core(&mut self, core: Recipe) -> Result<(), OverrideError> {
        if core.image.base.is_some() {
            return Err(OverrideError::NestedBase {
                recipe: self.path.clone(),
                core: core.path.clone(),
            });
        }
        self.core = Some(Box::new(core));
        Ok(())
    }

    /// `--no-gpgcheck NAME…`: turn the named repos' checks off, as if the
    /// recipe said so (and so recorded wherever the recipe's choice is).
    pub fn disable_gpgcheck(&mut self, names: &[String]) -> Result<(), OverrideError> {
        for name in names {
            if name == LOCAL_REPO && !self.packages.local.files.is_empty() {
                self.packages.local.gpgcheck = false;
                continue;
            }
            let i = self.repo_index(name, "--no-gpgcheck")?;
            self.repos[i].gpgcheck = false;
            self.repos[i].repo_gpgcheck = false;
        }
        Ok(())
    }

    /// `--disablerepo NAME`: leave the named repos out of this run.
    pub fn disable_repos(&mut self, names: &[String]) -> Result<(), OverrideError> {
        for name in names {
            let i = self.repo_index(name, "--disablerepo")?;
            self.repos.remove(i);
        }
        if !names.is_empty() && self.repos.is_empty() {
            return Err(OverrideError::NoRepoLeft {
                recipe: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The index of repo `name`, or an error naming `flag` and the repos there are.
    fn repo_index(&self, name: &str, flag: &'static str) -> Result<usize, OverrideError> {
        self.repos
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| OverrideError::UnknownRepo {
                flag,
                name: name.to_string(),
                recipe: self.path.clone(),
                known: self.repos.iter().map(|r| r.name.clone()).collect(),
            })
    }
}

/// Why a command-line override (or the core recipe) does not fit the recipe.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error(
        "{}: the core recipe {} has a base itself; a core is the bottom layer\n  hint: remove `base` from {}",
        recipe.display(),
        core.display(),
        core.display()
    )]
    NestedBase { recipe: PathBuf, core: PathBuf },
    #[error("{flag} names repo `{name}`, but {} has only: {}", recipe.display(), known.join(", "))]
    UnknownRepo {
        flag: &'static str,
        name: String,
        recipe: PathBuf,
        known: Vec<String>,
    },
    #[error(
        "--disablerepo leaves {} without any repo\n  hint: keep at least one, or point one elsewhere with --baseurl NAME=URL",
        recipe.display()
    )]
    NoRepoLeft { recipe: PathBuf },
}

/// `[accounts]`: users and groups to create in the image (apko's shape).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounts {
    pub users: Vec<AccountUser>,
    pub groups: Vec<AccountGroup>,
    /// The user the image runs as; the same as `image.user`.
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountUser {
    pub name: String,
    pub uid: Option<u32>,
    /// The primary group's id; without it, a group named like the user.
    pub gid: Option<u32>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountGroup {
    pub name: String,
    pub gid: Option<u32>,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub name: String,
    pub tag: String,
    pub arch: Vec<Arch>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `port/proto`, protocol defaulted to `tcp`.
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// `org.opencontainers.image.version`; defaults to the tag unless it is `latest`.
    pub version: Option<String>,
    /// `org.opencontainers.image.source`: where the recipe lives (a VCS URL).
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`: the source's commit.
    pub revision: Option<String>,
    /// `base = "core.toml"`: the core recipe whose packages form the first
    /// layer (resolved against this recipe's directory).
    pub base: Option<PathBuf>,
    /// `base = "REGISTRY/REPO:TAG"` (or `@sha256:…`): a published image
    /// whose layers are kept and whose rpmdb is the installed set.
    pub base_image: Option<crate::registry::Reference>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub name: String,
    /// As written (after resolving a relative path to `file://`), `$releasever`
    /// and `$basearch` still unsubstituted; empty when the repo is reached
    /// only through `metalink` or `mirrorlist`.
    pub baseurl: String,
    /// Further base URLs (a `.repo` file's baseurl list), tried after `baseurl`.
    pub more_baseurls: Vec<String>,
    /// MirrorManager metalink URL: mirrors, and the hashes their repomd.xml must match.
    pub metalink: Option<String>,
    /// URL of a plain list of mirrors' base URLs.
    pub mirrorlist: Option<String>,
    pub gpgkeys: Vec<GpgKey>,
    pub gpgcheck: bool,
    pub repo_gpgcheck: bool,
    /// dnf's priority: lower wins (default 99).
    pub priority: i32,
    /// dnf's cost: among equal priorities, lower is preferred (default 1000).
    pub cost: u32,
    /// Where the mirror's username and password come from, if it needs them.
    pub auth: RepoAuth,
}

impl Repo {
    /// Every URL template the repo names: base URLs, metalink, mirrorlist.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.baseurl.as_str())
            .filter(|b| !b.is_empty())
            .chain(self.more_baseurls.iter().map(String::as_str))
            .chain(self.metalink.as_deref())
            .chain(self.mirrorlist.as_deref())
    }

    /// The first of them: what the lock records as the repo's origin.
    pub fn origin(&self) -> &str {
        self.templates().next().unwrap_or_default()
    }
}

/// A repo's credential sources (see `crate::credentials`); the password
/// itself is never in the recipe, and read only when the repo is used.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoAuth {
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// `user:pass@` written in the baseurl, split off it (the baseurl above has none).
    pub from_url: Option<crate::credentials::Credential>,
}

/// Where a secret value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// Written in the recipe (only for a username).
    Inline(String),
    /// The named environment variable.
    Env(String),
    /// The file's first line (resolved against the recipe's directory).
    File(PathBuf),
}

/// A signing key: where to get it and, optionally, the fingerprint it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgKey {
    /// URL (a relative path in the recipe is already a `file://` URL here).
    pub url: String,
    /// Primary key fingerprint, uppercase hex without spaces; a key file
    /// holding no key with this fingerprint is refused.
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packages {
    pub install: Vec<String>,
    pub exclude: Vec<String>,
    pub prefer: Vec<String>,
    /// Providers to pass over while another one satisfies the dependency.
    pub avoid: Vec<String>,
    /// `local`: RPM files of one's own, installed from the `@local` repo.
    pub local: Local,
}

/// `[packages] local`, `local_gpgcheck`, `local_gpgkey`: RPM files given
/// by path, resolved as the top-priority repo `@local` (see the `local` module).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Local {
    /// Paths (a `*` or `?` allowed in the file name) as written, relative
    /// to the recipe's directory.
    pub files: Vec<String>,
    /// On by default, as for repos.
    pub gpgcheck: bool,
    /// `local_gpgkey`, or else every key the recipe's repos name.
    pub gpgkeys: Vec<GpgKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub releasever: Option<String>,
    pub weak_deps: bool,
    pub docs: bool,
    pub langs: Vec<String>,
    pub strip_setuid: bool,
    pub package_manager: bool,
    pub keep_caps: bool,
    /// Clamp for file mtimes and the image's `created`; `SOURCE_DATE_EPOCH`
    /// in the environment overrides it; when neither is set the newest
    /// package build time is used.
    pub source_date_epoch: Option<u64>,
    /// Write `var/lib/rpm/rpmdb.sqlite` so scanners see the packages (default true).
    pub rpmdb: bool,
    /// Create busybox's applet symlinks, read from the binary's own tables (default false).
    pub busybox_links: bool,
    /// Paths no package installs (settles file conflicts), see [`PathPattern`].
    pub exclude_paths: Vec<PathPattern>,
    /// Accept SHA-1/MD5 signature digests and v3 signatures, which are
    /// refused by default (old distributions only; recorded in provenance).
    pub legacy_signatures: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Resolved against the recipe's directory.
    pub src: PathBuf,
    /// Absolute path inside the image.
    pub dest: String,
    pub mode: Option<u32>,
}

/// A recipe problem with its position in the file.
#[derive(Debug, thiserror::Error)]
pub struct RecipeError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default)]
    image: RawImage,
    #[serde(default, rename = "repo")]
    repos: Vec<Spanned<RawRepo>>,
    packages: Option<Spanned<RawPackages>>,
    #[serde(default)]
    options: RawOptions,
    #[serde(default, rename = "copy")]
    copies: Vec<Spanned<RawCopy>>,
    #[serde(default)]
    accounts: RawAccounts,
    #[serde(default)]
    certificates: RawCertificates,
    #[serde(default)]
    check: RawCheck,
}

/// `[check]`: the gates' keys are dive's CI rules in snake case, plus size,
/// file-count, package and user gates.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    max_size: Option<Spanned<SizeValue>>,
    max_files: Option<u64>,
    #[serde(default)]
    forbid_packages: Vec<String>,
    #[serde(default)]
    require_non_root: bool,
    lowest_efficiency: Option<Spanned<RatioValue>>,
    highest_wasted_bytes: Option<Spanned<SizeValue>>,
    highest_user_wasted_percent: Option<Spanned<RatioValue>>,
}

/// `max_size = 50000000` (bytes) or `"50MB"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// `lowest_efficiency = 0.9` or `"90%"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RatioValue {
    Number(f64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    #[serde(default)]
    users: Vec<AccountUser>,
    #[serde(default)]
    groups: Vec<AccountGroup>,
    run_as: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCertificates {
    #[serde(default)]
    additional: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    name: Option<String>,
    tag: Option<Spanned<String>>,
    arch: Option<Spanned<StringOrList>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    workdir: Option<Spanned<String>>,
    user: Option<String>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    volumes: Vec<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    stop_signal: Option<String>,
    healthcheck: Option<Spanned<RawHealthcheck>>,
    version: Option<String>,
    source: Option<String>,
    revision: Option<String>,
    base: Option<Spanned<String>>,
}

/// `healthcheck = { test = ["CMD", "…"], interval = "30s", … }`; a string
/// `test` means `["CMD-SHELL", test]`, as in Docker Compose.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    test: StringOrList,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    start_period: Option<Spanned<String>>,
    retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: Option<Spanned<String>>,
    /// A dnf `.repo` file (relative to the recipe) whose sections are the repos.
    from: Option<Spanned<String>>,
    /// With `from`: take only this section.
    section: Option<Spanned<String>>,
    /// With `from`: values for the file's own `$variables`.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    baseurl: Option<Spanned<String>>,
    metalink: Option<Spanned<String>>,
    mirrorlist: Option<Spanned<String>>,
    gpgkey: Option<KeyOrList>,
    gpgcheck: Option<bool>,
    repo_gpgcheck: Option<bool>,
    priority: Option<i32>,
    cost: Option<u32>,
    username: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
    password_file: Option<String>,
    /// Refused: a password does not belong in the recipe.
    password: Option<Spanned<String>>,
}

/// `gpgkey = "URL"`, `gpgkey = { url, fingerprint }` or a list of either.
/// Deserialized by hand: serde's untagged enums say only "data did not
/// match any variant of untagged enum KeyOrList" for a misspelt key.
enum KeyOrList {
    One(RawKey),
    Many(Vec<RawKey>),
}

enum RawKey {
    Url(String),
    Pinned(PinnedKey),
}

struct PinnedKey {
    url: String,
    fingerprint: String,
}

/// The accepted forms, for every gpgkey error.
const KEY_FORMS: &str =
    "a string (URL or path), a list of them, or a table { url = \"…\", fingerprint = \"…\" }";

impl<'de> Deserialize<'de> for KeyOrList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor { in_list: false })
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(KeyVisitor { in_list: true })? {
            KeyOrList::One(k) => Ok(k),
            KeyOrList::Many(_) => unreachable!("a list inside a list is refused by visit_seq"),
        }
    }
}

struct KeyVisitor {
    in_list: bool,
}

impl<'de> serde::de::Visitor<'de> for KeyVisitor {
    type Value = KeyOrList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a gpgkey: {KEY_FORMS}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyOrList, E> {
        Ok(KeyOrList::One(RawKey::Url(v.to_string())))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyOrList, A::Error> {
        if self.in_list {
            return Err(serde::de::Error::custom(format!(
                "gpgkey: a list inside a list; a gpgkey is {KEY_FORMS}"
            )));
        }
        let mut keys = Vec::new();
        while let Some(k) = seq.next_element::<RawKey>()? {
            keys.push(k);
        }
        Ok(KeyOrList::Many(keys))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KeyOrList, A::Error> {
        use serde::de::Error as _;
        let (mut url, mut fingerprint) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "url" => &mut url,
                "fingerprint" => &mut fingerprint,
                other => {
                    return Err(A::Error::custom(format!(
                        "gpgkey: unknown key `{other}` (expected `url` and `fingerprint`); a gpgkey is {KEY_FORMS}"
                    )))
                }
            };
            if slot.is_some() {
                return Err(A::Error::custom(format!("gpgkey: `{key}` given twice")));
            }
            *slot = Some(map.next_value::<String>()?);
        }
        match (url, fingerprint) {
            (Some(url), Some(fingerprint)) => {
                Ok(KeyOrList::One(RawKey::Pinned(PinnedKey { url, fingerprint })))
            }
            (None, _) => Err(A::Error::custom(format!(
                "gpgkey: the table has no `url`; a gpgkey is {KEY_FORMS}"
            ))),
            (_, None) => Err(A::Error::custom(format!(
                "gpgkey: the table has no `fingerprint`; a gpgkey is {KEY_FORMS} (or give the URL alone as a string, unpinned)"
            ))),
        }
    }
}

/// dnf's default priority: lower wins.
const DEFAULT_PRIORITY: i32 = 99;
/// dnf's default cost: among equal priorities, lower is preferred.
const DEFAULT_COST: u32 = 1000;

fn no_install() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackages {
    /// May be left out when `local` names what to install.
    #[serde(default = "no_install")]
    install: Spanned<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    prefer: Vec<String>,
    avoid: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    local: Vec<String>,
    local_gpgcheck: Option<bool>,
    local_gpgkey: Option<KeyOrList>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOptions {
    releasever: Option<StringOrInt>,
    weak_deps: bool,
    docs: bool,
    langs: Vec<String>,
    strip_setuid: bool,
    package_manager: bool,
    keep_caps: bool,
    source_date_epoch: Option<u64>,
    rpmdb: bool,
    busybox_links: bool,
    exclude_paths: Vec<String>,
    legacy_signatures: bool,
}

impl Default for RawOptions {
    fn default() -> Self {
        RawOptions {
            releasever: None,
            weak_deps: false,
            docs: false,
            langs: vec!["C".to_string()],
            strip_setuid: true,
            package_manager: false,
            keep_caps: false,
            source_date_epoch: None,
            rpmdb: true,
            busybox_links: false,
            exclude_paths: Vec::new(),
            legacy_signatures: false,
        }
    }
}

/// `releasever = 40` and `releasever = "40"` both mean the string "40".
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrInt {
    S(String),
    I(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCopy {
    src: String,
    dest: Spanned<String>,
    mode: Option<Spanned<String>>,
}

/// Read and validate the recipe at `path`.
pub fn load(path: &Path) -> Result<Recipe, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = utf8(path, bytes)?;
    Ok(parse(path, &text)?)
}

/// Why a recipe file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read recipe {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] RecipeError),
}

/// The recipe as text, or an error placing its first invalid byte.
fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, RecipeError> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        // The prefix is valid UTF-8 by definition of `valid_up_to`.
        let before = std::str::from_utf8(&bytes[..bad]).unwrap_or_default();
        let (line, column) = line_col(before, bad);
        RecipeError {
            path: path.to_path_buf(),
            line,
            column,
            message: format!(
                "the recipe is not UTF-8: byte 0x{:02x} at offset {bad}",
                bytes[bad]
            ),
            hint: Some(
                "save the recipe as UTF-8 (e.g. `iconv -f latin1 -t utf-8`); TOML files are UTF-8"
                    .into(),
            ),
        }
    })
}

/// Parse and validate recipe `text`; `path` names it in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let at = |span: Option<Range<usize>>, message: String, hint: Option<&str>| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        RecipeError {
            path: path.to_path_buf(),
            line,
            column,
            message,
            hint: hint.map(str::to_string),
        }
    };
    let raw = read_raw(text, &at)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (mut packages, local) = packages(raw.packages, &at)?;
    let mut warnings = Vec::new();
    let repos = repos(path, &dir, raw.repos, &at, &mut warnings)?;
    packages.local = local_inputs(&dir, local, &repos, &at)?;
    let image = image(path, raw.image, raw.accounts.run_as.as_ref(), &at)?;
    let accounts = accounts(raw.accounts, &at)?;
    let options = options(raw.options, &repos, &at)?;
    let copies = copies(&dir, raw.copies, &at)?;
    let gates = gates(raw.check, &at)?;
    Ok(Recipe {
        path: path.to_path_buf(),
        digest: Digest::sha256_of(text.as_bytes()),
        image,
        repos,
        packages,
        options,
        copies,
        accounts,
        gates,
        warnings,
        core: None,
        certificates: raw
            .certificates
            .additional
            .iter()
            .map(|c| dir.join(c))
            .collect(),
    })
}

/// The text as serde reads it: syntax, unknown keys and wrong types.
fn read_raw(text: &str, at: &At) -> Result<RawRecipe, RecipeError> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_string();
        let hint = if message.starts_with("gpgkey:") || message.contains("a gpgkey") {
            Some("check the spelling; the fingerprint is the key's full fingerprint, as `gpg --show-keys` prints it")
        } else if message.contains("unknown field") {
            Some("check the spelling; the recipe keys are listed in README.md")
        } else if message.contains("invalid type") {
            Some("check the value's type (a string in quotes, a list in [ ], true/false)")
        } else {
            None
        };
        at(e.span(), message, hint)
    })
}

/// `[packages]`: present, installing something, prefer and avoid disjoint.
/// `[packages]`; its local RPMs are read apart ([`LocalRaw`]), to be checked
/// against the repos' keys once those are known.
fn packages(
    raw: Option<Spanned<RawPackages>>,
    at: &At,
) -> Result<(Packages, LocalRaw), RecipeError> {
    let Some(packages) = raw else {
        return Err(at(
            None,
            "missing [packages] table".into(),
            Some("add `[packages]` with `install = [\"…\"]` naming what the image needs"),
        ));
    };
    let packages_span = packages.span();
    let mut packages = packages.into_inner();
    // Local RPMs are installed themselves: with them, `install` may be empty.
    if packages.local.is_empty()
        && packages
            .install
            .get_ref()
            .iter()
            .all(|p| p.trim().is_empty())
    {
        // Left out altogether (span 0..0): point at the [packages] table.
        let span = Some(packages.install.span())
            .filter(|s| !s.is_empty())
            .unwrap_or(packages_span.clone());
        return Err(at(
            Some(span),
            "packages.install is empty".into(),
            Some("name at least one package, e.g. install = [\"busybox\"]"),
        ));
    }
    let avoid = match packages.avoid.take() {
        None => Vec::new(),
        Some(avoid) => {
            let span = avoid.span();
            let avoid = avoid.into_inner();
            if let Some(both) = avoid.iter().find(|a| packages.prefer.contains(a)) {
                return Err(at(
                    Some(span),
                    format!("`{both}` is in both packages.prefer and packages.avoid"),
                    Some("keep it in one of them: prefer chooses it, avoid passes over it"),
                ));
            }
            avoid
        }
    };
    let local = LocalRaw {
        span: packages_span,
        files: std::mem::take(&mut packages.local),
        gpgcheck: packages.local_gpgcheck,
        gpgkey: packages.local_gpgkey.take(),
    };
    let packages = Packages {
        install: packages.install.into_inner(),
        exclude: packages.exclude,
        prefer: packages.prefer,
        avoid,
        local: Local::default(),
    };
    Ok((packages, local))
}

/// `[packages]`' local-RPM keys as written.
struct LocalRaw {
    span: Range<usize>,
    files: Vec<String>,
    gpgcheck: Option<bool>,
    gpgkey: Option<KeyOrList>,
}

/// `[[repo]]`s, each written out or taken from a .repo file, named once.
fn repos(
    path: &Path,
    dir: &Path,
    raw: Vec<Spanned<RawRepo>>,
    at: &At,
    warnings: &mut Vec<String>,
) -> Result<Vec<Repo>, RecipeError> {
    if raw.is_empty() {
        return Err(at(
            None,
            "the recipe names no repository".into(),
            Some("add a [[repo]] table with `name` and `baseurl`"),
        ));
    }
    let mut repos: Vec<Repo> = Vec::new();
    for spanned in raw {
        let span = spanned.span();
        let r = spanned.into_inner();
        let found = match &r.from {
            Some(from) => from_repo_file(path, dir, from, &r, at, warnings)?,
            None => vec![recipe_repo(dir, span, r, at)?],
        };
        for repo in found {
            if repo.name == LOCAL_REPO {
                return Err(at(
                    None,
                    format!("repo name `{LOCAL_REPO}` is reserved for packages.local"),
                    Some("give the repo another name"),
                ));
            }
            if repos.iter().any(|x| x.name == repo.name) {
                return Err(at(
                    None,
                    format!("repo `{}` is defined twice", repo.name),
                    Some("give each [[repo]] (and each .repo section taken) a distinct name"),
                ));
            }
            repos.push(repo);
        }
    }
    Ok(repos)
}

/// `[check]`: sizes and ratios read into numbers, each error at its value.
fn gates(c: RawCheck, at: &At) -> Result<Gates, RecipeError> {
    let size = |key: &str, v: Option<Spanned<SizeValue>>| {
        v.map(|v| {
            let span = v.span();
            match v.into_inner() {
                SizeValue::Bytes(n) => Ok(n),
                SizeValue::Text(s) => gate::parse_size(&s)
                    .map_err(|e| at(Some(span), format!("check.{key}: {e}"), None)),
            }
        })
        .transpose()
    };
    let ratio = |key: &str, v: Option<Spanned<RatioValue>>| {
        v.map(|v| {
            let span = v.span();
            match v.into_inner() {
                RatioValue::Number(n) => gate::ratio(n),
                RatioValue::Text(s) => gate::parse_ratio(&s),
            }
            .map_err(|e| {
                at(
                    Some(span),
                    format!("check.{key}: {e}"),
                    Some("a ratio is 0.9 or \"90%\""),
                )
            })
        })
        .transpose()
    };
    Ok(Gates {
        max_size: size("max_size", c.max_size)?,
        max_files: c.max_files,
        forbid_packages: c.forbid_packages,
        require_non_root: c.require_non_root,
        lowest_efficiency: ratio("lowest_efficiency", c.lowest_efficiency)?,
        highest_wasted_bytes: size("highest_wasted_bytes", c.highest_wasted_bytes)?,
        highest_user_wasted_percent: ratio(
            "highest_user_wasted_percent",
            c.highest_user_wasted_percent,
        )?,
    })
}

/// `[image]`, with `accounts.run_as` as its user when given (it must agree
/// with `image.user`).
fn image(
    path: &Path,
    img: RawImage,
    run_as: Option<&Spanned<String>>,
    at: &At,
) -> Result<Image, RecipeError> {
    let arch = arches(img.arch, at)?;
    let mut ports = Vec::new();
    for p in img.ports {
        ports.push(normalize_port(p.get_ref()).ok_or_else(|| {
            at(
                Some(p.span()),
                format!("invalid port `{}`", p.get_ref()),
                Some("write PORT or PORT/tcp or PORT/udp, e.g. \"8080/tcp\""),
            )
        })?);
    }
    let workdir = img
        .workdir
        .as_ref()
        .map(|w| absolute(w, "image.workdir", at))
        .transpose()?;
    let volumes = img
        .volumes
        .iter()
        .map(|v| absolute(v, "volume", at))
        .collect::<Result<Vec<_>, _>>()?;
    let tag = match img.tag {
        Some(t) if !valid_tag(t.get_ref()) => {
            return Err(at(
                Some(t.span()),
                format!("invalid image tag `{}`", t.get_ref()),
                Some("a tag is up to 128 of [A-Za-z0-9_.-], not starting with . or -"),
            ))
        }
        Some(t) => t.into_inner(),
        None => "latest".to_string(),
    };
    let name = img.name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into())
    });
    let mut user = img.user;
    if let Some(run_as) = run_as {
        match &user {
            Some(u) if u != run_as.get_ref() => {
                return Err(at(
                    Some(run_as.span()),
                    format!(
                        "accounts.run_as `{}` differs from image.user `{u}`",
                        run_as.get_ref()
                    ),
                    Some("set only one of them"),
                ))
            }
            _ => user = Some(run_as.get_ref().clone()),
        }
    }
    let healthcheck = img.healthcheck.map(|h| healthcheck(h, at)).transpose()?;
    let (base, base_image) = match img.base {
        Some(b) if !b.get_ref().ends_with(".toml") => (None, Some(base_image(b, at)?)),
        b => (b.map(|b| base(path, b, at)).transpose()?, None),
    };
    Ok(Image {
        name,
        tag,
        arch,
        entrypoint: img.entrypoint,
        cmd: img.cmd,
        env: img.env,
        workdir,
        user,
        ports,
        volumes,
        labels: img.labels,
        annotations: img.annotations,
        stop_signal: img.stop_signal,
        healthcheck,
        version: img.version,
        source: img.source,
        revision: img.revision,
        base,
        base_image,
    })
}

/// `image.base` that is not a `.toml` recipe: a registry reference.
fn base_image(b: Spanned<String>, at: &At) -> Result<crate::registry::Reference, RecipeError> {
    b.get_ref().parse().map_err(|e: crate::registry::reference::ReferenceError| {
        at(
            Some(b.span()),
            format!(
                "image.base `{}` is neither a core recipe (`*.toml`) nor an image reference: {}",
                b.get_ref(),
                e.reason
            ),
            Some("name a core recipe file (base = \"core.toml\") or a published image (base = \"registry.example/ubi9/ubi-micro:9.4\" or REGISTRY/REPO@sha256:…)"),
        )
    })
}

/// `image.base`: a core recipe, relative to the recipe's directory.
fn base(path: &Path, b: Spanned<String>, at: &At) -> Result<PathBuf, RecipeError> {
    if !b.get_ref().ends_with(".toml") {
        return Err(at(
            Some(b.span()),
            format!("image.base `{}` is not a recipe", b.get_ref()),
            Some("name a core recipe file, e.g. base = \"core.toml\" (relative to this recipe)"),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(dir.join(b.get_ref()))
}

/// `image.arch`: the host's when absent, else each named once.
fn arches(raw: Option<Spanned<StringOrList>>, at: &At) -> Result<Vec<Arch>, RecipeError> {
    let Some(a) = raw else {
        return Ok(vec![Arch::host().unwrap_or(Arch::X86_64)]);
    };
    let span = a.span();
    let names = match a.into_inner() {
        StringOrList::One(s) => vec![s],
        StringOrList::Many(v) => v,
    };
    if names.is_empty() {
        return Err(at(
            Some(span),
            "image.arch is empty".into(),
            Some("e.g. arch = [\"x86_64\"]"),
        ));
    }
    let mut out: Vec<Arch> = Vec::new();
    for n in names {
        let a: Arch = n
            .parse()
            .map_err(|e: String| at(Some(span.clone()), e, None))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// An image path (`what` names the key in the error), which must be absolute.
fn absolute(s: &Spanned<String>, what: &str, at: &At) -> Result<String, RecipeError> {
    if s.get_ref().starts_with('/') {
        Ok(s.get_ref().clone())
    } else {
        Err(at(
            Some(s.span()),
            format!("{what} `{}` must be an absolute path", s.get_ref()),
            Some("start it with /"),
        ))
    }
}

/// `image.healthcheck`: durations in Go syntax, the shape Docker enforces.
fn healthcheck(h: Spanned<RawHealthcheck>, at: &At) -> Result<Healthcheck, RecipeError> {
    let span = h.span();
    let h = h.into_inner();
    let duration = |d: Option<Spanned<String>>| {
        d.map(|d| {
            parse_duration(d.get_ref()).map_err(|e| {
                at(
                    Some(d.span()),
                    format!("image.healthcheck: {e}"),
                    Some("units: ms, s, m, h (Go duration syntax)"),
                )
            })
        })
        .transpose()
    };
    let check = Healthcheck {
        test: match h.test {
            StringOrList::One(line) => vec!["CMD-SHELL".to_string(), line],
            StringOrList::Many(v) => v,
        },
        interval_ns: duration(h.interval)?,
        timeout_ns: duration(h.timeout)?,
        start_period_ns: duration(h.start_period)?,
        retries: h.retries,
    };
    check.validate().map_err(|e| {
        at(
            Some(span),
            format!("image.healthcheck: {e}"),
            Some("test = [\"CMD\", \"/usr/bin/prog\", \"arg\"] or test = \"shell command\""),
        )
    })?;
    Ok(check)
}

/// `[accounts]`: user and group names valid and each given once.
fn accounts(raw: RawAccounts, at: &At) -> Result<Accounts, RecipeError> {
    let mut seen = std::collections::BTreeSet::new();
    let names = raw.users.iter().map(|u| ("user", &u.name));
    for (what, name) in names.chain(raw.groups.iter().map(|g| ("group", &g.name))) {
        let valid = !name.is_empty()
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid || !seen.insert((what, name.clone())) {
            return Err(at(
                None,
                format!("[accounts]: {what} name `{name}` is invalid or given twice"),
                Some("names are unique and made of letters, digits, `_`, `.` and `-`"),
            ));
        }
    }
    Ok(Accounts {
        users: raw.users,
        groups: raw.groups,
        run_as: raw.run_as.map(Spanned::into_inner),
    })
}

/// `[options]`: a releasever wherever a repo needs one, valid path patterns.
fn options(o: RawOptions, repos: &[Repo], at: &At) -> Result<Options, RecipeError> {
    let releasever = o.releasever.map(|r| match r {
        StringOrInt::S(s) => s,
        StringOrInt::I(i) => i.to_string(),
    });
    if releasever.is_none() {
        if let Some(r) = repos
            .iter()
            .find(|r| r.templates().any(|t| t.contains("releasever")))
        {
            return Err(at(
                None,
                format!(
                    "repo `{}` uses $releasever but options.releasever is not set",
                    r.name
                ),
                Some("add `[options]` with `releasever = \"40\"` (your distribution's release)"),
            ));
        }
    }
    let exclude_paths = o
        .exclude_paths
        .iter()
        .map(|p| {
            PathPattern::parse(p).map_err(|why| {
                at(
                    None,
                    format!("options.exclude_paths: {why}"),
                    Some("write absolute image paths; `*` and `?` match inside one component, e.g. \"/usr/lib/x/*\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Options {
        releasever,
        weak_deps: o.weak_deps,
        docs: o.docs,
        langs: o.langs,
        strip_setuid: o.strip_setuid,
        package_manager: o.package_manager,
        keep_caps: o.keep_caps,
        source_date_epoch: o.source_date_epoch,
        rpmdb: o.rpmdb,
        busybox_links: o.busybox_links,
        exclude_paths,
        legacy_signatures: o.legacy_signatures,
    })
}

/// `[[copy]]`s: sources relative to the recipe, absolute destinations,
/// octal modes.
fn copies(dir: &Path, raw: Vec<Spanned<RawCopy>>, at: &At) -> Result<Vec<Copy>, RecipeError> {
    let mut copies = Vec::new();
    for c in raw {
        let c = c.into_inner();
        let dest = absolute(&c.dest, "copy.dest", at)?;
        let mode = match c.mode {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        at(
                            Some(m.span()),
                            format!("invalid mode `{}`", m.get_ref()),
                            Some("an octal string such as \"0755\""),
                        )
                    })?,
            ),
        };
        copies.push(Copy {
            src: dir.join(&c.src),
            dest,
            mode,
        });
    }
    Ok(copies)
}

/// `[packages] local` and its signature settings. Signatures are checked
/// unless `local_gpgcheck = false`, with `local_gpgkey` or, without it, the
/// keys of the recipe's repos (an RPM rebuilt and signed with the same key
/// as one's own repo); no key at all fails closed, as for a repo.
fn local_inputs(dir: &Path, raw: LocalRaw, repos: &[Repo], at: &At) -> Result<Local, RecipeError> {
    let LocalRaw {
        span,
        files,
        gpgcheck,
        gpgkey,
    } = raw;
    let hint = "write local = [\"dist/app-1.0-1.x86_64.rpm\"], paths relative to the recipe (a `*` may stand in the file name)";
    for f in &files {
        if f.trim().is_empty() || f.contains("://") {
            return Err(at(
                Some(span),
                format!("packages.local: `{f}` is not a path to an RPM file"),
                Some(hint),
            ));
        }
    }
    let gpgcheck = gpgcheck.unwrap_or(true);
    let gpgkeys = match gpgkey {
        Some(keys) => gpgkeys(dir, keys),
        None => {
            let mut all: Vec<GpgKey> = Vec::new();
            for k in repos.iter().flat_map(|r| &r.gpgkeys) {
                if !all.contains(k) {
                    all.push(k.clone());
                }
            }
            all
        }
    };
    if files.is_empty() {
        return Ok(Local::default());
    }
    if gpgcheck && gpgkeys.is_empty() {
        return Err(at(
            Some(span),
            "packages.local: the local RPMs' signatures are checked (local_gpgcheck is on by default), but there is no key to check them with".into(),
            Some("add local_gpgkey = \"path/to/RPM-GPG-KEY\" (the key your RPMs are signed with), or local_gpgcheck = false for unsigned RPMs of your own, knowingly"),
        ));
    }
    if let Some(k) = gpgkeys
        .iter()
        .find(|k| gpgcheck && !key_transport_is_trusted(&k.url) && k.fingerprint.is_none())
    {
        return Err(at(
            Some(span),
            format!(
                "packages.local_gpgkey {} is fetched over plain http, so whoever sits on the path chooses the key",
                crate::credentials::redact(&k.url)
            ),
            Some("use an https:// or file URL (or a path next to the recipe), or pin it: { url = \"…\", fingerprint = \"…\" }"),
        ));
    }
    Ok(Local {
        files,
        gpgcheck,
        gpgkeys,
    })
}

/// The keys a `gpgkey`-shaped value names, relative paths made `file://` URLs.
fn gpgkeys(dir: &Path, keys: KeyOrList) -> Vec<GpgKey> {
    let keys = match keys {
        KeyOrList::One(k) => vec![k],
        KeyOrList::Many(ks) => ks,
    };
    keys.into_iter()
        .map(|k| match k {
            RawKey::Url(u) => GpgKey {
                url: resolve_location(dir, &crate::credentials::redact(&u)),
                fingerprint: None,
            },
            RawKey::Pinned(p) => GpgKey {
                url: resolve_location(dir, &crate::credentials::redact(&p.url)),
                fingerprint: Some(crate::signature::normalize_fingerprint(&p.fingerprint)),
            },
        })
        .collect()
}

/// Whether a key read from `url` comes from where the recipe's author put
/// it: a local file, or https (TLS authenticates the server).
fn key_transport_is_trusted(url: &str) -> bool {
    url.starts_with("file://") || url.to_ascii_lowercase().starts_with("https://")
}

/// Builds a [`RecipeError`] at a span of the recipe text.
type At<'a> = dyn Fn(Option<Range<usize>>, String, Option<&str>) -> RecipeError + 'a;

/// A repo before the checks every repo gets, wherever it was written.
struct Draft {
    name: String,
    baseurls: Vec<String>,
    metalink: Option<String>,
    mirrorlist: Option<String>,
    gpgkeys: Vec<GpgKey>,
    gpgcheck: Option<bool>,
    repo_gpgcheck: bool,
    priority: i32,
    cost: u32,
    auth: RepoAuth,
}

/// The checks every repo gets: a source to read, signature checks that
/// fail closed, keys over a transport that cannot swap them. `err` places
/// the problem (a span of the recipe, a line of a .repo file).
fn finish_repo(d: Draft, err: &dyn Fn(String, &str) -> RecipeError) -> Result<Repo, RecipeError> {
    let name = &d.name;
    if d.baseurls.is_empty() && d.metalink.is_none() && d.mirrorlist.is_none() {
        return Err(err(
            format!("repo `{name}` has no baseurl"),
            "add baseurl = \"https://…/$releasever/…/$basearch/os/\" or a local path (or metalink/mirrorlist = \"URL\")",
        ));
    }
    let gpgcheck = match d.gpgcheck {
        Some(on) => on,
        None if d.gpgkeys.is_empty() => {
            return Err(err(
                format!("repo `{name}` names no gpgkey, so its package signatures cannot be checked"),
                "add gpgkey = \"URL or path\" (the distribution's signing key), or write `gpgcheck = false` to build without the check, knowingly",
            ));
        }
        None => true,
    };
    if (gpgcheck || d.repo_gpgcheck) && d.gpgkeys.is_empty() {
        return Err(err(
            format!("repo `{name}` checks signatures but names no gpgkey"),
            "add gpgkey = \"URL or path\" to the repo, or set `gpgcheck = false` and `repo_gpgcheck = false`, knowingly",
        ));
    }
    for k in &d.gpgkeys {
        if (gpgcheck || d.repo_gpgcheck)
            && !key_transport_is_trusted(&k.url)
            && k.fingerprint.is_none()
        {
            return Err(err(
                format!(
                    "repo `{name}`: gpgkey {} is fetched over plain http, so whoever sits on the path (or the mirror itself) chooses the key",
                    crate::credentials::redact(&k.url)
                ),
                "use an https:// or file URL (or a path next to the recipe), or pin it: gpgkey = { url = \"…\", fingerprint = \"…\" } with the distribution's published fingerprint",
            ));
        }
    }
    let mut baseurls = d.baseurls.into_iter();
    Ok(Repo {
        name: d.name,
        baseurl: baseurls.next().unwrap_or_default(),
        more_baseurls: baseurls.collect(),
        metalink: d.metalink,
        mirrorlist: d.mirrorlist,
        gpgcheck,
        gpgkeys: d.gpgkeys,
        repo_gpgcheck: d.repo_gpgcheck,
        priority: d.priority,
        cost: d.cost,
        auth: d.auth,
    })
}

/// A `[[repo]]` written out in the recipe.
fn recipe_repo(
    dir: &Path,
    span: Range<usize>,
    r: RawRepo,
    at: &At<'_>,
) -> Result<Repo, RecipeError> {
    if let Some(s) = &r.section {
        return Err(at(
            Some(s.span()),
            "`section` picks a section of a .repo file, but this [[repo]] has no `from`".into(),
            Some("add from = \"file.repo\", or remove `section`"),
        ));
    }
    if !r.vars.is_empty() {
        return Err(at(
            Some(span),
            "`vars` fills the variables of a .repo file, but this [[repo]] has no `from`".into(),
            Some("add from = \"file.repo\", or remove `vars`"),
        ));
    }
    let Some(name) = r.name else {
        return Err(at(
            Some(span),
            "a [[repo]] has no name".into(),
            Some(
                "add name = \"…\" (or from = \"file.repo\" to take the repos of a dnf .repo file)",
            ),
        ));
    };
    let name_span = name.span();
    let name = name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(at(Some(name_span), "repo name is empty".into(), None));
    }
    let gpgkeys: Vec<RawKey> = match r.gpgkey {
        None => vec![],
        Some(KeyOrList::One(k)) => vec![k],
        Some(KeyOrList::Many(ks)) => ks,
    };
    let gpgkeys = gpgkeys
        .into_iter()
        .map(|k| match k {
            RawKey::Url(u) => GpgKey {
                url: resolve_location(dir, &crate::credentials::redact(&u)),
                fingerprint: None,
            },
            RawKey::Pinned(p) => GpgKey {
                url: resolve_location(dir, &crate::credentials::redact(&p.url)),
                fingerprint: Some(crate::signature::normalize_fingerprint(&p.fingerprint)),
            },
        })
        .collect::<Vec<_>>();
    if let Some(p) = &r.password {
        return Err(at(
            Some(p.span()),
            format!("repo `{name}`: a password is not written in the recipe"),
            Some("use password_env = \"VARIABLE\" or password_file = \"path\" (mode 0600), or a `machine` entry in ~/.netrc"),
        ));
    }
    let username = match (r.username, r.username_env) {
        (Some(_), Some(_)) => {
            return Err(at(
                Some(span),
                format!("repo `{name}` has both username and username_env"),
                Some("keep one of them"),
            ))
        }
        (Some(u), None) => Some(Secret::Inline(u)),
        (None, Some(v)) => Some(Secret::Env(v)),
        (None, None) => None,
    };
    let password = match (r.password_env, r.password_file) {
        (Some(_), Some(_)) => {
            return Err(at(
                Some(span),
                format!("repo `{name}` has both password_env and password_file"),
                Some("keep one of them"),
            ))
        }
        (Some(v), None) => Some(Secret::Env(v)),
        (None, Some(f)) => Some(Secret::File(dir.join(f))),
        (None, None) => None,
    };
    if password.is_some() != username.is_some() {
        return Err(at(
            Some(span),
            format!("repo `{name}` has a username or a password, but not both"),
            Some("give username (or username_env) together with password_env or password_file"),
        ));
    }
    let (baseurl, from_url) = match &r.baseurl {
        Some(b) => {
            let (b, cred) = crate::credentials::split_userinfo(b.get_ref());
            (Some(resolve_location(dir, &b)), cred)
        }
        None => (None, None),
    };
    let draft = Draft {
        name,
        baseurls: baseurl.into_iter().collect(),
        metalink: r.metalink.map(|m| resolve_location(dir, m.get_ref())),
        mirrorlist: r.mirrorlist.map(|m| resolve_location(dir, m.get_ref())),
        gpgkeys,
        gpgcheck: r.gpgcheck,
        repo_gpgcheck: r.repo_gpgcheck.unwrap_or(false),
        priority: r.priority.unwrap_or(DEFAULT_PRIORITY),
        cost: r.cost.unwrap_or(DEFAULT_COST),
        auth: RepoAuth {
            username,
            password,
            from_url,
        },
    };
    finish_repo(draft, &|message, hint| {
        at(Some(span.clone()), message, Some(hint))
    })
}

/// `[[repo]] from = "file.repo"`: the file's enabled sections (or the one
/// `section` names) as repos. Ignored options and disabled sections go to
/// `warnings`; errors name the .repo file, line and section.
fn from_repo_file(
    recipe_path: &Path,
    dir: &Path,
    from: &Spanned<String>,
    r: &RawRepo,
    at: &At<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Repo>, RecipeError> {
    let only_with_file = [
        ("baseurl", r.baseurl.is_some()),
        ("metalink", r.metalink.is_some()),
        ("mirrorlist", r.mirrorlist.is_some()),
        ("gpgkey", r.gpgkey.is_some()),
        ("gpgcheck", r.gpgcheck.is_some()),
        ("repo_gpgcheck", r.repo_gpgcheck.is_some()),
        ("priority", r.priority.is_some()),
        ("cost", r.cost.is_some()),
        ("username", r.username.is_some() || r.username_env.is_some()),
        (
            "password",
            r.password.is_some() || r.password_env.is_some() || r.password_file.is_some(),
        ),
    ];
    if let Some((key, _)) = only_with_file.iter().find(|(_, set)| *set) {
        return Err(at(
            Some(from.span()),
            format!(
                "a [[repo]] with `from` takes its settings from {}, but this one also sets `{key}`",
                from.get_ref()
            ),
            Some("set it in the .repo file, or write the repo out in the recipe instead of `from`"),
        ));
    }
    if r.name.is_some() && r.section.is_none() {
        return Err(at(
            Some(from.span()),
            "`name` with `from` renames one section, but no `section` is picked".into(),
            Some("add section = \"…\" naming the .repo section, or remove `name` (the section ids are the names)"),
        ));
    }
    let file = dir.join(from.get_ref());
    let text = std::fs::read(&file).map_err(|e| {
        at(
            Some(from.span()),
            format!("cannot read {}: {e}", file.display()),
            Some("`from` is a dnf .repo file, relative to the recipe's directory"),
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let in_file = |line: usize, message: String, hint: Option<String>| RecipeError {
        path: file.clone(),
        line,
        column: 1,
        message,
        hint,
    };
    // dnf's own way to set a variable, DNF_VAR_name, then the recipe's `vars`
    // (which win: the recipe is what is reviewed and versioned).
    let mut vars: BTreeMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("DNF_VAR_")?.to_string(), v)))
        .collect();
    vars.extend(r.vars.clone());
    let sections =
        crate::repofile::parse(&text, &vars).map_err(|e| in_file(e.line, e.message, e.hint))?;
    let shown = file.display();
    let picked: Vec<&crate::repofile::Section> = match &r.section {
        Some(want) => {
            let Some(s) = sections.iter().find(|s| &s.id == want.get_ref()) else {
                let ids: Vec<&str> = sections.iter().map(|s| s.id.as_str()).collect();
                return Err(at(
                    Some(want.span()),
                    format!(
                        "{shown} has no section [{}]; it has: {}",
                        want.get_ref(),
                        ids.join(", ")
                    ),
                    Some("check the spelling of `section`"),
                ));
            };
            if !s.enabled {
                warnings.push(format!(
                    "{shown}:{}: [{}] has enabled=0, but {} picks it by `section`; using it",
                    s.line,
                    s.id,
                    recipe_path.display()
                ));
            }
            vec![s]
        }
        None => {
            for s in sections.iter().filter(|s| !s.enabled) {
                warnings.push(format!(
                    "{shown}:{}: [{}] is disabled (enabled=0); left out",
                    s.line, s.id
                ));
            }
            sections.iter().filter(|s| s.enabled).collect()
        }
    };
    if picked.is_empty() {
        return Err(at(
            Some(from.span()),
            format!("{shown} has no enabled section"),
            Some("pick one with section = \"…\", or set enabled=1 in the file"),
        ));
    }
    let file_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    for s in picked {
        if let Some(e) = &s.unresolved {
            return Err(in_file(e.line, e.message.clone(), e.hint.clone()));
        }
        for (line, key, why) in &s.ignored {
            warnings.push(format!(
                "{shown}:{line}: [{}] {key} is ignored: {why}",
                s.id
            ));
        }
        let name = match (&r.name, &r.section) {
            (Some(n), Some(_)) => n.get_ref().trim().to_string(),
            _ => s.id.clone(),
        };
        let resolve = |u: &String| resolve_location(&file_dir, u);
        let draft = Draft {
            name,
            baseurls: s.baseurls.iter().map(resolve).collect(),
            metalink: s.metalink.as_ref().map(resolve),
            mirrorlist: s.mirrorlist.as_ref().map(resolve),
            gpgkeys: s
                .gpgkeys
                .iter()
                .map(|k| GpgKey {
                    url: resolve(k),
                    fingerprint: None,
                })
                .collect(),
            gpgcheck: s.gpgcheck,
            repo_gpgcheck: s.repo_gpgcheck.unwrap_or(false),
            priority: s.priority.unwrap_or(DEFAULT_PRIORITY),
            cost: s.cost.unwrap_or(DEFAULT_COST),
            auth: RepoAuth::default(),
        };
        let id = s.id.clone();
        out.push(finish_repo(draft, &|message, hint| {
            in_file(s.line, format!("[{id}]: {message}"), Some(hint.to_string()))
        })?);
    }
    Ok(out)
}

/// URLs pass through; anything else is a path, relative to the recipe's directory.
fn resolve_location(dir: &Path, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let p = dir.join(location);
    let p = std::path::absolute(&p).unwrap_or(p);
    let mut s = format!("file://{}", p.display());
    if location.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    s
}

fn normalize_port(p: &str) -> Option<String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let n: u16 = num.parse().ok()?;
    (n != 0 && matches!(proto, "tcp" | "udp" | "sctp")).then(|| format!("{n}/{proto}"))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[repo]]
name = "fedora"
baseurl = "https://example.org/releases/$releasever/Everything/$basearch/os/"
gpgcheck = false

[packages]
install = ["busybox"]

[options]
releasever = 40
"#;

    #[test]
    fn check_table_reads_sizes_and_ratios() {
        let text = format!(
            "{MINIMAL}\n[check]\nmax_size = \"50MB\"\nmax_files = 900\nforbid_packages = [\"dnf*\"]\nrequire_non_root = true\nlowest_efficiency = 0.95\nhighest_wasted_bytes = 1048576\nhighest_user_wasted_percent = \"20%\"\n"
        );
        let g = parse(Path::new("/x/r.toml"), &text).unwrap().gates;
        assert_eq!(
            g,
            Gates {
                max_size: Some(50_000_000),
                max_files: Some(900),
                forbid_packages: vec!["dnf*".into()],
                require_non_root: true,
                lowest_efficiency: Some(0.95),
                highest_wasted_bytes: Some(1 << 20),
                highest_user_wasted_percent: Some(0.2),
            }
        );
        assert!(parse(Path::new("/x/r.toml"), MINIMAL)
            .unwrap()
            .gates
            .is_empty());
    }

    #[test]
    fn check_table_errors_point_at_the_value() {
        let e = err(&format!("{MINIMAL}\n[check]\nmax_size = \"50 parsecs\"\n"));
        assert!(
            e.message
                .starts_with("check.max_size: `50 parsecs` is not a size"),
            "{e}"
        );
        assert_eq!(e.line, MINIMAL.lines().count() + 3);
        let e = err(&format!("{MINIMAL}\n[check]\nlowest_efficiency = 90\n"));
        assert!(e.message.contains("outside 0..1"), "{e}");
        assert!(e.hint.unwrap().contains("90%"));
        let e = err(&format!("{MINIMAL}\n[check]\nmax_sise = 1\n"));
        assert!(e.message.contains("unknown field `max_sise`"), "{e}");
    }

    #[test]
    fn certificates_resolve_against_the_recipe_dir() {
        let text = format!("{MINIMAL}\n[certificates]\nadditional = [\"ca/my-ca.pem\"]\n");
        let r = parse(Path::new("/x/busybox.toml"), &text).unwrap();
        assert_eq!(r.certificates, [PathBuf::from("/x/ca/my-ca.pem")]);
        assert!(parse(Path::new("/x/r.toml"), MINIMAL)
            .unwrap()
            .certificates
            .is_empty());
        let e = err(&format!("{MINIMAL}\n[certificates]\nextra = []\n"));
        assert!(e.message.contains("extra"), "{e}");
    }

    fn err(text: &str) -> RecipeError {
        parse(Path::new("r.toml"), text).expect_err("recipe should be rejected")
    }

    #[test]
    fn base_is_a_recipe_beside_this_one() {
        let text = format!("[image]\nbase = \"../core/core.toml\"\n{MINIMAL}");
        let r = parse(Path::new("/x/apps/web.toml"), &text).unwrap();
        assert_eq!(
            r.image.base.as_deref(),
            Some(Path::new("/x/apps/../core/core.toml"))
        );
        assert!(r.core.is_none(), "loaded by the caller, with its flags");
        assert!(parse(Path::new("/x/r.toml"), MINIMAL)
            .unwrap()
            .image
            .base
            .is_none());
        // Not `*.toml`: a published image, by tag or digest.
        let r = parse(
            Path::new("/x/r.toml"),
            &format!("[image]\nbase = \"quay.io/core:1\"\n{MINIMAL}"),
        )
        .unwrap();
        assert_eq!(r.image.base, None);
        assert_eq!(
            r.image.base_image.map(|b| b.to_string()).as_deref(),
            Some("quay.io/core:1")
        );
        let e = err(&format!("[image]\nbase = \"core\"\n{MINIMAL}"));
        assert!(
            e.message.contains("`core` is neither a core recipe") && e.hint.is_some(),
            "{e}"
        );
        // A core with a base of its own is refused by set_core.
        let mut app = parse(Path::new("/x/app.toml"), &text).unwrap();
        let core_with_base = parse(Path::new("/x/core.toml"), &text).unwrap();
        let e = app.set_core(core_with_base).unwrap_err().to_string();
        assert!(e.contains("has a base itself"), "{e}");
        let plain = parse(Path::new("/x/core.toml"), MINIMAL).unwrap();
        app.set_core(plain).unwrap();
        assert!(app.core.is_some());
    }

    #[test]
    fn local_rpms_are_checked_with_their_key_or_the_repos_keys() {
        let dir = Path::new("/w/app.toml");
        // Only local RPMs: `install` may be left out, and the key is local_gpgkey.
        let text = "[[repo]]\nname = \"f\"\nbaseurl = \"/r\"\ngpgcheck = false\n[packages]\nlocal = [\"dist/*.rpm\"]\nlocal_gpgkey = \"keys/mine.asc\"\n";
        let r = parse(dir, text).unwrap();
        assert!(r.packages.install.is_empty());
        assert_eq!(r.packages.local.files, ["dist/*.rpm"]);
        assert!(r.packages.local.gpgcheck);
        assert_eq!(r.packages.local.gpgkeys[0].url, "file:///w/keys/mine.asc");
        // Without local_gpgkey, the repos' keys (an RPM signed like one's own repo).
        let text = "[[repo]]\nname = \"f\"\nbaseurl = \"/r\"\ngpgkey = \"k.asc\"\n[packages]\ninstall = [\"a\"]\nlocal = [\"a.rpm\"]\n";
        let r = parse(dir, text).unwrap();
        assert_eq!(r.packages.local.gpgkeys[0].url, "file:///w/k.asc");
        // No key anywhere: refused unless local_gpgcheck = false.
        let keyless = MINIMAL.replace("install = [\"busybox\"]", "local = [\"a.rpm\"]");
        let e = err(&keyless);
        assert!(
            e.message.contains("packages.local") && e.message.contains("no key"),
            "{e}"
        );
        assert!(e
            .hint
            .as_deref()
            .unwrap()
            .contains("local_gpgcheck = false"));
        let r = parse(
            dir,
            &keyless.replace("local = [", "local_gpgcheck = false\nlocal = ["),
        )
        .unwrap();
        assert!(!r.packages.local.gpgcheck);
        // `--no-gpgcheck @local` turns it off like a repo's.
        let mut checked = parse(
            dir,
            &keyless.replace("local = [", "local_gpgkey = \"k\"\nlocal = ["),
        )
        .unwrap();
        checked.disable_gpgcheck(&["@local".into()]).unwrap();
        assert!(!checked.packages.local.gpgcheck);
        // A URL is not a local file; nothing at all to install is still an error.
        let e = err(&keyless.replace("\"a.rpm\"", "\"https://x/a.rpm\""));
        assert!(e.message.contains("not a path"), "{e}");
        let e = err(&MINIMAL.replace("install = [\"busybox\"]", ""));
        assert_eq!(e.message, "packages.install is empty");
    }

    #[test]
    fn metalink_and_mirrorlist_are_sources_of_their_own() {
        let text = MINIMAL.replace(
            "baseurl = \"https://example.org/releases/$releasever/Everything/$basearch/os/\"",
            "metalink = \"https://mirrors.example/metalink?repo=fedora-$releasever&arch=$basearch\"\nmirrorlist = \"https://mirrors.example/list\"",
        );
        let r = parse(Path::new("/x/r.toml"), &text).unwrap();
        let repo = &r.repos[0];
        assert_eq!(repo.baseurl, "");
        assert_eq!(
            repo.metalink.as_deref(),
            Some("https://mirrors.example/metalink?repo=fedora-$releasever&arch=$basearch")
        );
        assert_eq!(repo.origin(), repo.metalink.as_deref().unwrap());
        assert_eq!(repo.templates().count(), 2);
        // $releasever in a metalink needs options.releasever like a baseurl.
        let e = err(&text.replace("[options]\nreleasever = 40\n", ""));
        assert!(e.message.contains("uses $releasever"), "{e}");
    }

    /// A recipe taking its repos from `repo_text` (written as `dir/f.repo`).
    fn with_repo_file(dir: &Path, repo_text: &str, entry: &str) -> Result<Recipe, RecipeError> {
        std::fs::write(dir.join("f.repo"), repo_text).unwrap();
        let text = format!(
            "[[repo]]\nfrom = \"f.repo\"\n{entry}\n[packages]\ninstall = [\"busybox\"]\n[options]\nreleasever = 40\n"
        );
        parse(&dir.join("r.toml"), &text)
    }

    const REPO_FILE: &str = "[fedora]\nname=Fedora\nmetalink=https://m.example/metalink?repo=fedora-$releasever&arch=$basearch\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch\ncountme=1\n\n[updates]\nbaseurl=https://a.example/$contentdir/$releasever/ https://b.example/$releasever/\ngpgcheck=0\npriority=10\ncost=50\n\n[testing]\nbaseurl=https://t.example/\ngpgcheck=0\nenabled=0\n";

    #[test]
    fn repo_files_give_their_enabled_sections() {
        let dir = tempfile::tempdir().unwrap();
        let r = with_repo_file(dir.path(), REPO_FILE, "vars = { contentdir = \"pub\" }").unwrap();
        let names: Vec<&str> = r.repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["fedora", "updates"]);
        let (fedora, updates) = (&r.repos[0], &r.repos[1]);
        assert!(fedora.gpgcheck && !fedora.repo_gpgcheck);
        assert_eq!(
            fedora.gpgkeys[0].url,
            "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch"
        );
        assert_eq!(updates.baseurl, "https://a.example/pub/$releasever/");
        assert_eq!(updates.more_baseurls, ["https://b.example/$releasever/"]);
        assert_eq!((updates.priority, updates.cost), (10, 50));
        let f = dir.path().join("f.repo");
        assert_eq!(
            r.warnings,
            [
                format!(
                    "{}:14: [testing] is disabled (enabled=0); left out",
                    f.display()
                ),
                format!(
                    "{}:6: [fedora] countme is ignored: minibuild sends no usage count to mirrors",
                    f.display()
                ),
            ]
        );

        // One section, renamed; a disabled one picked by name is used, said so.
        let r =
            with_repo_file(dir.path(), REPO_FILE, "section = \"testing\"\nname = \"t\"").unwrap();
        assert_eq!(r.repos.len(), 1);
        assert_eq!(
            (r.repos[0].name.as_str(), r.repos[0].baseurl.as_str()),
            ("t", "https://t.example/")
        );
        assert!(
            r.warnings[0].contains("[testing] has enabled=0, but"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn repo_file_errors_name_the_file_line_and_section() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.repo");
        // $contentdir without vars.
        let e = with_repo_file(dir.path(), REPO_FILE, "").unwrap_err();
        assert_eq!((e.path.as_path(), e.line), (f.as_path(), 9));
        assert!(
            e.message
                .contains("[updates] baseurl: unknown variable `$contentdir`"),
            "{e}"
        );
        // A section that checks signatures without a key: the recipe's rule, at the section.
        let e = with_repo_file(dir.path(), "\n[x]\nbaseurl=https://x/\n", "").unwrap_err();
        assert_eq!((e.path.as_path(), e.line), (f.as_path(), 2));
        assert!(
            e.message.starts_with("[x]: repo `x` names no gpgkey"),
            "{e}"
        );
        let e = with_repo_file(
            dir.path(),
            "[x]\nbaseurl=https://x/\ngpgcheck=0\n",
            "gpgcheck = false",
        )
        .unwrap_err();
        assert!(e.message.contains("also sets `gpgcheck`"), "{e}");
        assert!(e.path.ends_with("r.toml"));
        let e = with_repo_file(
            dir.path(),
            "[x]\nbaseurl=https://x/\ngpgcheck=0\n",
            "section = \"y\"",
        )
        .unwrap_err();
        assert!(e.message.ends_with("has no section [y]; it has: x"), "{e}");
        let e = with_repo_file(dir.path(), "[x]\nbaseurl=https://x/\nenabled=0\n", "").unwrap_err();
        assert!(e.message.ends_with("has no enabled section"), "{e}");
        let e = with_repo_file(
            dir.path(),
            "[x]\nbaseurl=https://x/\ngpgcheck=0\n",
            "name = \"n\"",
        )
        .unwrap_err();
        assert!(e.message.contains("no `section` is picked"), "{e}");
        std::fs::remove_file(&f).unwrap();
        let text = "[[repo]]\nfrom = \"missing.repo\"\n[packages]\ninstall = [\"a\"]\n";
        let e = parse(&dir.path().join("r.toml"), text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert!(
            e.message.starts_with("cannot read ") && e.message.contains("missing.repo"),
            "{e}"
        );
        let e = err("[[repo]]\nname = \"a\"\nsection = \"b\"\nbaseurl = \"/r\"\ngpgcheck = false\n[packages]\ninstall = [\"a\"]\n");
        assert!(e.message.contains("has no `from`"), "{e}");
        // Two sources of the same name.
        let e = with_repo_file(
            dir.path(),
            "[fedora]\nbaseurl=https://x/\ngpgcheck=0\n",
            "[[repo]]\nname = \"fedora\"\nbaseurl = \"/r\"\ngpgcheck = false",
        )
        .unwrap_err();
        assert!(e.message.contains("repo `fedora` is defined twice"), "{e}");
    }

    #[test]
    fn avoid_is_read_and_must_not_contradict_prefer() {
        assert!(parse(Path::new("/x/r.toml"), MINIMAL)
            .unwrap()
            .packages
            .avoid
            .is_empty());
        let text = MINIMAL.replace(
            "install = [\"busybox\"]",
            "install = [\"busybox\"]\navoid = [\"coreutils-single\"]",
        );
        let r = parse(Path::new("/x/r.toml"), &text).unwrap();
        assert_eq!(r.packages.avoid, ["coreutils-single"]);

        let text = MINIMAL.replace(
            "install = [\"busybox\"]",
            "install = [\"busybox\"]\nprefer = [\"curl\"]\navoid = [\"curl\"]",
        );
        let e = err(&text);
        assert!(
            e.message
                .contains("`curl` is in both packages.prefer and packages.avoid"),
            "{e}"
        );
        assert_eq!((e.line, e.column), (10, 9), "{e}");
        assert!(e.to_string().contains("r.toml:10:9"), "{e}");
        assert!(e.hint.as_deref().unwrap().contains("keep it in one"), "{e}");

        let e = err(&MINIMAL.replace(
            "install = [\"busybox\"]",
            "install = [\"busybox\"]\navoid = \"curl\"",
        ));
        assert!(e.message.contains("invalid type"), "{e}");
        assert_eq!(e.line, 9, "{e}");
    }

    #[test]
    fn minimal_recipe_gets_defaults() {
        let r = parse(Path::new("/x/busybox.toml"), MINIMAL).unwrap();
        assert_eq!(r.image.name, "busybox");
        assert_eq!(r.image.tag, "latest");
        assert_eq!(r.options.releasever.as_deref(), Some("40"));
        assert_eq!(r.options.langs, vec!["C"]);
        assert!(r.options.strip_setuid && !r.options.weak_deps && !r.options.docs);
        assert!(!r.repos[0].gpgcheck, "as written");
        assert_eq!(r.repos[0].auth, RepoAuth::default());
        assert!(!r.options.legacy_signatures);
        assert_eq!(r.repos[0].priority, 99);
    }

    #[test]
    fn accounts_section_and_new_options() {
        let r = parse(Path::new("r.toml"), MINIMAL).unwrap();
        assert!(r.options.rpmdb && !r.options.busybox_links);
        assert_eq!(r.accounts, Accounts::default());
        let text = format!(
            "{MINIMAL}rpmdb = false\nbusybox_links = true\nexclude_paths = [\"/usr/share/x/*\"]\n\n[accounts]\nrun_as = \"app\"\n\
             [[accounts.users]]\nname = \"app\"\nuid = 1000\nhome = \"/srv\"\n\
             [[accounts.groups]]\nname = \"ops\"\nmembers = [\"app\"]\n"
        );
        let r = parse(Path::new("r.toml"), &text).unwrap();
        assert!(!r.options.rpmdb && r.options.busybox_links);
        assert_eq!(r.options.exclude_paths[0].to_string(), "/usr/share/x/*");
        let bad = parse(
            Path::new("r.toml"),
            &format!("{MINIMAL}exclude_paths = [\"usr/x\"]\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("exclude_paths") && bad.contains("not an absolute path"),
            "{bad}"
        );
        assert_eq!(r.image.user.as_deref(), Some("app"), "run_as sets the user");
        assert_eq!(r.accounts.users[0].uid, Some(1000));
        assert_eq!(r.accounts.users[0].home.as_deref(), Some("/srv"));
        assert_eq!(r.accounts.groups[0].members, ["app"]);

        let clash = format!("[image]\nuser = \"root\"\n{MINIMAL}[accounts]\nrun_as = \"app\"\n");
        let e = err(&clash);
        assert!(e.message.contains("differs from image.user `root`"), "{e}");
        let twice = format!(
            "{MINIMAL}[[accounts.users]]\nname = \"a\"\n[[accounts.users]]\nname = \"a\"\n"
        );
        assert!(err(&twice)
            .message
            .contains("`a` is invalid or given twice"));
        let bad = format!("{MINIMAL}[[accounts.groups]]\nname = \"a:b\"\n");
        assert!(err(&bad).message.contains("`a:b` is invalid"));
    }

    #[test]
    fn non_utf8_recipe_names_line_and_column() {
        let mut bytes = MINIMAL.as_bytes().to_vec();
        let at = MINIMAL.find("fedora").unwrap() + 2;
        bytes[at] = 0xe9; // `é` in Latin-1
        let e = utf8(Path::new("/x/r.toml"), bytes).unwrap_err();
        let line = 1 + MINIMAL[..at].matches('\n').count();
        assert_eq!(
            e.to_string(),
            format!(
                "/x/r.toml:{line}:11: the recipe is not UTF-8: byte 0xe9 at offset {at}\n  \
                 hint: save the recipe as UTF-8 (e.g. `iconv -f latin1 -t utf-8`); TOML files are UTF-8"
            )
        );
    }

    #[test]
    fn gpgkeys_plain_and_pinned() {
        let text = MINIMAL.replace("gpgcheck = false\n", "").replace(
            "baseurl = ",
            "gpgkey = [\"keys/a.asc\", { url = \"https://k.example/b\", fingerprint = \"ab12 cd34\" }]\nbaseurl = ",
        );
        let r = parse(Path::new("/x/r.toml"), &text).unwrap();
        let repo = &r.repos[0];
        assert!(repo.gpgcheck, "a key turns gpgcheck on by default");
        assert_eq!(
            repo.gpgkeys,
            vec![
                GpgKey {
                    url: "file:///x/keys/a.asc".into(),
                    fingerprint: None
                },
                GpgKey {
                    url: "https://k.example/b".into(),
                    fingerprint: Some("AB12CD34".into())
                },
            ]
        );
        let single = MINIMAL.replace("baseurl = ", "gpgkey = \"/k.asc\"\nbaseurl = ");
        let r = parse(Path::new("/x/r.toml"), &single).unwrap();
        assert!(!r.repos[0].gpgcheck, "an explicit false wins");
        assert_eq!(r.repos[0].gpgkeys[0].url, "file:///k.asc");
        let typo = MINIMAL.replace(
            "baseurl = ",
            "gpgkey = { url = \"/k\", fingerprnt = \"AB\" }\nbaseurl = ",
        );
        let e = parse(Path::new("/x/r.toml"), &typo).unwrap_err();
        let line = 1 + typo[..typo.find("gpgkey").unwrap()].matches('\n').count();
        assert_eq!(
            e.to_string(),
            format!(
                "/x/r.toml:{line}:10: gpgkey: unknown key `fingerprnt` (expected `url` and \
                 `fingerprint`); a gpgkey is a string (URL or path), a list of them, or a table \
                 {{ url = \"…\", fingerprint = \"…\" }}\n  hint: check the spelling; the \
                 fingerprint is the key's full fingerprint, as `gpg --show-keys` prints it"
            )
        );
        let number = MINIMAL.replace("baseurl = ", "gpgkey = [\"/k\", 7]\nbaseurl = ");
        let e = parse(Path::new("/x/r.toml"), &number).unwrap_err();
        assert!(
            e.message.starts_with(
                "invalid type: integer `7`, expected a gpgkey: a string (URL or path)"
            ),
            "{e}"
        );
    }

    #[test]
    fn signatures_fail_closed_and_keys_need_a_safe_transport() {
        let keyless = MINIMAL.replace("gpgcheck = false\n", "");
        let e = err(&keyless);
        assert!(e.message.contains("repo `fedora` names no gpgkey"), "{e}");
        assert!(
            e.hint.as_deref().unwrap().contains("gpgcheck = false"),
            "{e}"
        );
        let e = err(&keyless.replace(
            "baseurl = ",
            "repo_gpgcheck = true\ngpgcheck = false\nbaseurl = ",
        ));
        assert!(
            e.message.contains("checks signatures but names no gpgkey"),
            "{e}"
        );

        let plain = keyless.replace(
            "baseurl = ",
            "gpgkey = \"http://m.example/key\"\nbaseurl = ",
        );
        let e = err(&plain);
        assert!(
            e.message
                .contains("repo `fedora`: gpgkey http://m.example/key is fetched over plain http"),
            "{e}"
        );
        assert!(e.hint.as_deref().unwrap().contains("fingerprint"), "{e}");
        let pinned = keyless.replace(
            "baseurl = ",
            "gpgkey = { url = \"http://u:pw@m.example/key\", fingerprint = \"AB\" }\nbaseurl = ",
        );
        let r = parse(Path::new("r.toml"), &pinned).unwrap();
        assert_eq!(
            r.repos[0].gpgkeys[0].url, "http://m.example/key",
            "userinfo dropped"
        );
        // An unused key may come from anywhere.
        parse(
            Path::new("r.toml"),
            &plain.replace("baseurl = ", "gpgcheck = false\nbaseurl = "),
        )
        .unwrap();
    }

    #[test]
    fn credentials_come_from_the_environment_a_file_or_the_url() {
        let with = |lines: &str| {
            MINIMAL.replace(
                "gpgcheck = false\n",
                &format!("gpgcheck = false\n{lines}\n"),
            )
        };
        let r = parse(
            Path::new("/x/r.toml"),
            &with("username = \"alice\"\npassword_env = \"PW\""),
        )
        .unwrap();
        assert_eq!(
            r.repos[0].auth.username,
            Some(Secret::Inline("alice".into()))
        );
        assert_eq!(r.repos[0].auth.password, Some(Secret::Env("PW".into())));
        let r = parse(
            Path::new("/x/r.toml"),
            &with("username_env = \"U\"\npassword_file = \"secrets/pw\""),
        )
        .unwrap();
        assert_eq!(r.repos[0].auth.username, Some(Secret::Env("U".into())));
        assert_eq!(
            r.repos[0].auth.password,
            Some(Secret::File("/x/secrets/pw".into()))
        );

        let e = err(&with("username = \"a\"\npassword = \"hunter2\""));
        assert!(
            e.message
                .contains("a password is not written in the recipe"),
            "{e}"
        );
        assert!(e.hint.as_deref().unwrap().contains("password_env"), "{e}");
        assert!(err(&with("username = \"a\"")).message.contains("not both"));
        assert!(err(&with(
            "username = \"a\"\nusername_env = \"U\"\npassword_env = \"P\""
        ))
        .message
        .contains("both username and username_env"));

        let r = parse(
            Path::new("r.toml"),
            &MINIMAL.replace("https://example.org", "https://bob:p%40ss@example.org"),
        )
        .unwrap();
        assert!(
            r.repos[0].baseurl.starts_with("https://example.org/"),
            "{}",
            r.repos[0].baseurl
        );
        assert_eq!(
            r.repos[0].auth.from_url,
            Some(crate::credentials::Credential::new("bob", "p@ss"))
        );
    }

    #[test]
    fn no_gpgcheck_from_the_command_line() {
        let text = MINIMAL.replace(
            "gpgcheck = false\n",
            "gpgkey = \"/k\"\nrepo_gpgcheck = true\n",
        );
        let mut r = parse(Path::new("r.toml"), &text).unwrap();
        assert!(r.repos[0].gpgcheck && r.repos[0].repo_gpgcheck);
        r.disable_gpgcheck(&["fedora".into()]).unwrap();
        assert!(!r.repos[0].gpgcheck && !r.repos[0].repo_gpgcheck);
        let e = r
            .disable_gpgcheck(&["updates".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`updates`") && e.contains("fedora"), "{e}");
    }

    #[test]
    fn disablerepo_leaves_a_repo_out() {
        let text = format!(
            "{MINIMAL}[[repo]]\nname = \"updates\"\nbaseurl = \"file:///u/\"\ngpgcheck = false\n"
        );
        let mut r = parse(Path::new("r.toml"), &text).unwrap();
        assert_eq!(r.repos.len(), 2);
        r.disable_repos(&["updates".into()]).unwrap();
        let names: Vec<&str> = r.repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["fedora"]);
        let e = r.disable_repos(&["nope".into()]).unwrap_err().to_string();
        assert!(
            e.contains("--disablerepo names repo `nope`") && e.contains("fedora"),
            "{e}"
        );
        let e = r.disable_repos(&["fedora".into()]).unwrap_err().to_string();
        assert!(e.contains("without any repo"), "{e}");
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let e = err("[packages]\ninstall = [\"a\"]\nexlude = [\"b\"]\n");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("unknown field `exlude`"), "{e}");
        assert!(e.hint.is_some());
    }

    #[test]
    fn wrong_type_is_reported_at_the_value() {
        let e = err("[packages]\ninstall = \"busybox\"\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn empty_install_points_at_the_list() {
        let e = err("[[repo]]\nname=\"a\"\nbaseurl=\"/r\"\n[packages]\ninstall = []\n");
        assert_eq!((e.line, e.column), (5, 11), "{e}");
        assert_eq!(e.message, "packages.install is empty");
    }

    #[test]
    fn missing_repo_and_missing_baseurl() {
        let e = err("[packages]\ninstall = [\"a\"]\n");
        assert!(e.message.contains("no repository"), "{e}");
        let e = err("[[repo]]\nname = \"a\"\n[packages]\ninstall = [\"a\"]\n");
        assert!(e.message.contains("repo `a` has no baseurl"), "{e}");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn releasever_required_when_used() {
        let e = err(&MINIMAL.replace("[options]\nreleasever = 40\n", ""));
        assert!(e.message.contains("$releasever"), "{e}");
    }

    #[test]
    fn healthcheck_and_provenance_fields() {
        let r = parse(
            Path::new("r.toml"),
            &format!(
                "{MINIMAL}[image]\nversion = \"1.2\"\nsource = \"https://git.example/app\"\nrevision = \"abc123\"\n\
                 healthcheck = {{ test = [\"CMD\", \"/usr/bin/check\"], interval = \"1m30s\", timeout = \"5s\", start_period = \"500ms\", retries = 4 }}\n"
            ),
        )
        .unwrap();
        assert_eq!(r.image.version.as_deref(), Some("1.2"));
        assert_eq!(r.image.source.as_deref(), Some("https://git.example/app"));
        assert_eq!(r.image.revision.as_deref(), Some("abc123"));
        assert_eq!(
            r.image.healthcheck,
            Some(Healthcheck {
                test: vec!["CMD".into(), "/usr/bin/check".into()],
                interval_ns: Some(90_000_000_000),
                timeout_ns: Some(5_000_000_000),
                start_period_ns: Some(500_000_000),
                retries: Some(4),
            })
        );
        let r = parse(
            Path::new("r.toml"),
            &format!("{MINIMAL}[image]\nhealthcheck = {{ test = \"curl -f localhost\" }}\n"),
        )
        .unwrap();
        assert_eq!(
            r.image.healthcheck.unwrap().test,
            ["CMD-SHELL", "curl -f localhost"]
        );

        // Errors point at the line, with the problem and a hint.
        let e = err(&format!(
            "{MINIMAL}[image]\nhealthcheck = {{ test = [\"CMD\", \"x\"], interval = \"30 seconds\" }}\n"
        ));
        assert_eq!(e.line, 13, "{e}");
        assert!(e.message.contains("`30 seconds` is not a duration"), "{e}");
        let e = err(&format!(
            "{MINIMAL}[image]\nhealthcheck = {{ test = [\"curl\", \"-f\"] }}\n"
        ));
        assert_eq!(e.line, 13, "{e}");
        assert!(
            e.message.contains("must start with CMD, CMD-SHELL or NONE"),
            "{e}"
        );
        assert!(e.hint.is_some());
        let e = err(&format!(
            "{MINIMAL}[image]\nhealthcheck = {{ test = \"x\", every = \"1s\" }}\n"
        ));
        assert!(e.message.contains("unknown field `every`"), "{e}");
    }

    #[test]
    fn bad_arch_port_and_mode() {
        let e = err(&format!("{MINIMAL}[image]\narch = [\"sparc\"]\n"));
        assert!(e.message.contains("unknown architecture `sparc`"), "{e}");
        assert_eq!(e.line, 13);
        let e = err(&format!("{MINIMAL}[image]\nports = [\"http\"]\n"));
        assert!(e.message.contains("invalid port"), "{e}");
        let e = err(&format!(
            "{MINIMAL}[[copy]]\nsrc = \"a\"\ndest = \"/a\"\nmode = \"999\"\n"
        ));
        assert!(e.message.contains("invalid mode"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_recipe() {
        let text = MINIMAL.replace(
            "https://example.org/releases/$releasever/Everything/$basearch/os/",
            "../repo/$basearch/",
        );
        let r = parse(Path::new("/srv/recipes/x.toml"), &text).unwrap();
        assert_eq!(r.repos[0].baseurl, "file:///srv/recipes/../repo/$basearch/");
    }

    #[test]
    fn image_settings_are_normalized() {
        let r = parse(
            Path::new("r.toml"),
            &format!(
                "{MINIMAL}[image]\nname = \"web\"\narch = [\"x86_64\", \"arm64\", \"x86_64\"]\nports = [\"8080\", \"53/udp\"]\nenv = {{ B = \"2\", A = \"1\" }}\n"
            ),
        )
        .unwrap();
        assert_eq!(r.image.arch, vec![Arch::X86_64, Arch::Aarch64]);
        assert_eq!(r.image.ports, vec!["8080/tcp", "53/udp"]);
        assert_eq!(r.image.env.keys().collect::<Vec<_>>(), vec!["A", "B"]);
    }

    #[test]
    fn digest_tracks_the_text() {
        let a = parse(Path::new("r.toml"), MINIMAL).unwrap();
        let b = parse(Path::new("r.toml"), &format!("{MINIMAL}\n")).unwrap();
        assert_ne!(a.digest, b.digest);
    }
}
