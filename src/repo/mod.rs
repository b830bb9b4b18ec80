//! Repository metadata: `repomd.xml` → `primary.xml.{zst,xz,gz}` → [`RepoIndex`].
//!
//! Loading is the only I/O here; the parsed index is plain data handed to the
//! resolver.
//!
//! [`load`] fetches `repodata/repomd.xml` (always, unless offline: it is small
//! and says whether anything changed), then the primary file it names. The
//! primary file is kept in the cache under the checksum repomd.xml gives it,
//! so a warm run re-downloads nothing but repomd.xml; every use re-hashes the
//! cached file, and a checksum that does not match what repomd.xml promised
//! is an error, never silently used.
//!
//! A repo reached through a metalink or mirrorlist is loaded by
//! [`mirrors::load`], which runs [`load_checked`] on one mirror after
//! another ([`metalink`] and [`mirrorlist`] read the documents).

mod capindex;
// Public only for the fuzz target (tests/fuzz); not an API.
#[doc(hidden)]
pub mod codec;
mod decompress;
mod expansion;
pub mod filelists;
mod map;
pub mod metalink;
pub mod mirrorlist;
pub mod mirrors;
pub mod parsed;
pub mod primary;
pub mod repomd;
mod store;

pub use capindex::CapIndex;
pub use decompress::{decompress, Compression, DecompressError};
pub use primary::PrimaryError;
pub use repomd::{Repomd, RepomdError};
pub use store::{PackageSet, Part, Summary};

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use crate::cache::{self, Bucket, Cache, EntryError};
use crate::digest::{Digest, DigestError};
use crate::http::{self, Client, HttpError};
use crate::location;
use crate::package::Package;

/// One repository's parsed metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoIndex {
    /// The recipe's name for the repo.
    pub name: String,
    /// The base URL after `$releasever`/`$basearch` substitution, ending in `/`.
    pub baseurl: String,
    /// `<revision>` from repomd.xml (provenance).
    pub revision: String,
    /// Checksum of repomd.xml itself (cache key, provenance).
    pub repomd_digest: Digest,
    /// Its packages with their capability index, decoded from the
    /// parsed-metadata cache as they are used.
    pub packages: PackageSet,
    /// Things worth a line to the user (a damaged cache entry rebuilt).
    pub notes: Vec<String>,
    /// The metalink or mirrorlist `baseurl` was picked from (provenance).
    pub via: Option<String>,
}

/// One repository to load: plain data the CLI builds from the recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// The recipe's name for the repo (used in messages and the index).
    pub name: String,
    /// Base URL or path with `$releasever`/`$basearch` already substituted.
    pub baseurl: String,
    /// Position in the recipe's `[[repo]]` list, stored in every [`Package::repo`].
    pub index: usize,
}

/// How [`load`] may use the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Use only cached metadata; never touch the network.
    pub offline: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repo `{repo}`: cannot fetch its metadata")]
    Fetch {
        repo: String,
        #[source]
        source: HttpError,
    },
    #[error("repo `{repo}`: {url} is not a valid repomd.xml; check that the base URL points at a repository (the directory holding repodata/)")]
    Repomd {
        repo: String,
        url: String,
        #[source]
        source: RepomdError,
    },
    #[error("repo `{repo}`: {url} lists no primary metadata (a repo with only primary_db/sqlite metadata is too old; regenerate it with createrepo_c)")]
    NoPrimary { repo: String, url: String },
    #[error("repo `{repo}`: the primary metadata checksum in {url} cannot be verified")]
    Checksum {
        repo: String,
        url: String,
        #[source]
        source: DigestError,
    },
    #[error("repo `{repo}`: {url} has {actual} but repomd.xml says {expected}; the mirror may be mid-sync, try again in a few minutes or use another mirror")]
    Mismatch {
        repo: String,
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "repo `{repo}`: no cached metadata for {baseurl} ({what}); run once without --offline"
    )]
    NotCached {
        repo: String,
        baseurl: String,
        what: &'static str,
    },
    #[error("repo `{repo}`: cannot use its {kind} {url}: {why}\n  hint: check the {kind} URL (and $releasever/$basearch in it), or name a mirror with --baseurl {repo}=URL")]
    MirrorDocument {
        repo: String,
        kind: &'static str,
        url: String,
        why: String,
    },
    #[error("repo `{repo}`: no mirror from {via} serves usable metadata; tried:{}\n  hint: the mirrors may be mid-sync (try again later), or name a good one with --baseurl {repo}=URL", tried.iter().map(|(m, why)| format!("\n    {m}: {why}")).collect::<String>())]
    NoMirror {
        repo: String,
        via: String,
        tried: Vec<(String, String)>,
    },
    #[error("repo `{repo}`: cannot read {}", path.display())]
    Decompress {
        repo: String,
        path: PathBuf,
        #[source]
        source: DecompressError,
    },
    #[error("repo `{repo}`: cannot parse primary metadata from {url} (cached as {})", path.display())]
    Primary {
        repo: String,
        url: String,
        path: PathBuf,
        #[source]
        source: Box<PrimaryError>,
    },
    #[error("repo `{repo}`: {url} expands past {limit} bytes once decompressed: {rule}; refused\n  hint: the mirror serves a wrong or hostile file; report it to the mirror or use another one")]
    Expansion {
        repo: String,
        url: String,
        limit: u64,
        rule: String,
    },
    #[error("repo `{repo}`: cannot parse filelists metadata cached as {}", path.display())]
    Filelists {
        repo: String,
        path: PathBuf,
        #[source]
        source: filelists::FilelistsError,
    },
    #[error("repo `{repo}`: {url} failed its signature check")]
    Signature {
        repo: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("repo `{repo}`: cache error at {}; check permissions or pick another --cache-dir", path.display())]
    Cache {
        repo: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A base URL or path, ending in `/`.
pub fn normalize_baseurl(baseurl: &str) -> String {
    let mut s = baseurl.trim().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// An unknown `$variable` in a repo URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown variable `${name}` in `{url}` (known: $releasever, $releasever_major, $releasever_minor, $basearch, $arch)")]
pub struct SubstituteError {
    pub name: String,
    pub url: String,
}

/// Expand dnf's repo variables in `url`: `$releasever`, `$basearch` (and the
/// `${name}` forms), plus `$releasever_major`/`_minor` (split at the first
/// `.`) and `$arch` (= basearch: minibuild builds for the target, not the
/// host). Variable names are taken whole, so `$releasever_major` is never
/// read as `$releasever` + `_major`. A `$` not followed by a name is kept.
pub fn substitute(url: &str, releasever: &str, basearch: &str) -> Result<String, SubstituteError> {
    let (major, minor) = releasever.split_once('.').unwrap_or((releasever, ""));
    let value = |name: &str| match name {
        "releasever" => Some(releasever),
        "releasever_major" => Some(major),
        "releasever_minor" => Some(minor),
        "basearch" | "arch" => Some(basearch),
        _ => None,
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(url.len() + 16);
    let mut rest = url;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        let v = value(name).ok_or_else(|| SubstituteError {
            name: name.to_string(),
            url: url.to_string(),
        })?;
        out.push_str(v);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The cache file name for a metadata file: its checksum, then the part of
/// its name from `-primary.xml` on (so the compression stays visible).
#[cfg(test)]
fn cache_name(digest: &Digest, location: &str) -> String {
    cache_name_of(digest, location, "primary")
}

/// [`cache_name`] for any metadata `kind` (`primary`, `filelists`).
fn cache_name_of(digest: &Digest, location: &str, kind: &str) -> String {
    let base = location.rsplit('/').next().unwrap_or(location);
    let suffix: String = base
        .find(kind)
        .map_or(".xml", |i| &base[i + kind.len()..])
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    format!("{}-{kind}{suffix}", digest.hex())
}

/// Whether `baseurl` is reached over the network (not a path or `file://`).
fn is_remote(baseurl: &str) -> bool {
    baseurl.starts_with("http://") || baseurl.starts_with("https://")
}

/// Fetch (or read from `cache`) and parse one repository's metadata.
pub fn load(
    client: &Client,
    cache: &Cache,
    spec: &RepoSpec,
    options: LoadOptions,
) -> Result<RepoIndex, RepoError> {
    load_checked(client, cache, spec, options, &|_, _| Ok(()))
}

/// Checks fetched `repomd.xml` bytes (at the given URL) before they are used
/// or cached, e.g. against `repomd.xml.asc`.
pub type RepomdCheck<'a> =
    dyn Fn(&str, &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a;

/// [`load`], with `check` run on repomd.xml before anything in it is trusted.
pub fn load_checked(
    client: &Client,
    cache: &Cache,
    spec: &RepoSpec,
    options: LoadOptions,
    check: &RepomdCheck<'_>,
) -> Result<RepoIndex, RepoError> {
    let repo = || spec.name.clone();
    let baseurl = normalize_baseurl(&spec.baseurl);
    let repomd_url = http::join(&baseurl, "repodata/repomd.xml");
    let cache_err = |path: PathBuf, source| RepoError::Cache {
        repo: repo(),
        path,
        source,
    };

    // repomd.xml: from the network, remembered per base URL for --offline.
    let repomd_cached = repomd_cache_path(cache, &baseurl);
    // A repo on this machine is read in place even offline: it needs no network.
    let offline = options.offline && is_remote(&baseurl);
    let repomd_bytes = if offline {
        std::fs::read(&repomd_cached).map_err(|_| RepoError::NotCached {
            repo: repo(),
            baseurl: baseurl.clone(),
            what: "repomd.xml",
        })?
    } else {
        let bytes = client
            .read_to_vec(&repomd_url)
            .map_err(|source| RepoError::Fetch {
                repo: repo(),
                source,
            })?;
        check(&repomd_url, &bytes).map_err(|source| RepoError::Signature {
            repo: repo(),
            url: repomd_url.clone(),
            source,
        })?;
        write_atomic(&repomd_cached, &bytes).map_err(|e| cache_err(repomd_cached.clone(), e))?;
        bytes
    };
    let md = repomd::parse(&repomd_bytes).map_err(|source| RepoError::Repomd {
        repo: repo(),
        url: repomd_url.clone(),
        source,
    })?;
    let primary = md.primary().ok_or_else(|| RepoError::NoPrimary {
        repo: repo(),
        url: repomd_url.clone(),
    })?;

    // primary: content-addressed by the checksum repomd.xml gives it.
    let primary_url = data_url(spec, &baseurl, primary)?;
    let (_, path) = data_path(cache, spec, &baseurl, primary, "primary")?;
    // A warm run reads the parsed copy instead of the XML (see parsed.rs);
    // it was written from a verified primary, so the primary is not even
    // needed then.
    let parsed_path = parsed::path_for(&path);
    let mut notes = Vec::new();
    let cached = parsed::read(&parsed_path, spec.index).unwrap_or_else(|unusable| {
        notes.push(format!(
            "cache entry {} {unusable}; rebuilding it from the primary",
            parsed_path.display()
        ));
        None
    });
    let part = match cached {
        Some(part) => part,
        None => {
            fetch_data(client, cache, spec, &baseurl, primary, "primary", options)?;
            let (reader, crossed) = open_data(spec, &path, primary)?;
            let packages = primary::parse(reader, spec.index).map_err(|source| {
                expansion_error(spec, &primary_url, &crossed).unwrap_or(RepoError::Primary {
                    repo: repo(),
                    url: primary_url.clone(),
                    path: path.clone(),
                    source: Box::new(source),
                })
            })?;
            let caps = CapIndex::build(&packages);
            parsed::write(&parsed_path, &packages, &caps)
                .map_err(|e| cache_err(parsed_path.clone(), e))?;
            drop((packages, caps));
            // Read back what was just written, so that a cold run holds no
            // more than a warm one from here on.
            match parsed::read(&parsed_path, spec.index) {
                Ok(Some(part)) => part,
                _ => {
                    return Err(cache_err(
                        parsed_path,
                        std::io::Error::other("the entry just written does not read back"),
                    ))
                }
            }
        }
    };

    Ok(RepoIndex {
        name: spec.name.clone(),
        baseurl,
        revision: md.revision,
        repomd_digest: Digest::sha256_of(&repomd_bytes),
        packages: PackageSet::from_parts(vec![part]),
        notes,
        via: None,
    })
}

/// Where the cached copy of one `<data>` file lives (content-addressed by
/// the checksum repomd.xml gives it), whether or not it is there yet.
fn data_path(
    cache: &Cache,
    spec: &RepoSpec,
    baseurl: &str,
    data: &repomd::DataFile,
    kind: &'static str,
) -> Result<(Digest, PathBuf), RepoError> {
    let expected = data
        .checksum
        .digest()
        .map_err(|source| RepoError::Checksum {
            repo: spec.name.clone(),
            url: http::join(baseurl, "repodata/repomd.xml"),
            source,
        })?;
    let path = cache
        .bucket(Bucket::Repodata)
        .join(cache_name_of(&expected, &data.location, kind));
    Ok((expected, path))
}

/// The cached copy of one `<data>` file, downloaded and verified against
/// the checksum repomd.xml gives it when missing.
fn fetch_data(
    client: &Client,
    cache: &Cache,
    spec: &RepoSpec,
    baseurl: &str,
    data: &repomd::DataFile,
    kind: &'static str,
    options: LoadOptions,
) -> Result<PathBuf, RepoError> {
    let repo = || spec.name.clone();
    let cache_err = |path: PathBuf, source| RepoError::Cache {
        repo: repo(),
        path,
        source,
    };
    let (expected, path) = data_path(cache, spec, baseurl, data, kind)?;
    let url = data_url(spec, baseurl, data)?;
    let cached = cache::verify_entry(&path, &expected)
        .map_err(|e| cache_err(path.clone(), e))?
        .is_valid();
    if !cached {
        if options.offline && is_remote(baseurl) {
            return Err(RepoError::NotCached {
                repo: repo(),
                baseurl: baseurl.to_string(),
                what: if kind == "primary" {
                    "primary metadata"
                } else {
                    "filelists metadata"
                },
            });
        }
        cache::download_verified(client, &url, &path, &expected, data.size, &mut |_| {}).map_err(
            |e| match e {
                EntryError::Http(source) => RepoError::Fetch {
                    repo: repo(),
                    source,
                },
                EntryError::Mismatch {
                    url,
                    expected,
                    actual,
                    ..
                } => RepoError::Mismatch {
                    repo: repo(),
                    url,
                    expected,
                    actual,
                },
                EntryError::Io { path, source } => cache_err(path, source),
            },
        )?;
    }
    Ok(path)
}

/// All repos' packages laid end to end (recipe order), each with its
/// capability index; the indexes are left without packages. Moves, never
/// copies, the packages.
pub fn merge(indexes: &mut [RepoIndex]) -> PackageSet {
    let mut all = PackageSet::default();
    for index in indexes.iter_mut() {
        all.append(std::mem::take(&mut index.packages));
    }
    all
}

/// Replace each package's file list with the complete one from the repo's
/// filelists metadata (joined on the package checksum), and index them.
/// Returns false when the repo publishes no filelists. Uses the repomd.xml
/// [`load`] cached, so it must come after `load` for the same `spec`.
/// Every package of the repo is built (a Fedora's file lists are large
/// anyway), so this is only worth it when [`PackageSet::unmet_file_deps`].
pub fn load_filelists(
    client: &Client,
    cache: &Cache,
    spec: &RepoSpec,
    options: LoadOptions,
    set: &mut PackageSet,
) -> Result<bool, RepoError> {
    let repo = || spec.name.clone();
    let baseurl = normalize_baseurl(&spec.baseurl);
    let repomd_url = http::join(&baseurl, "repodata/repomd.xml");
    let repomd_cached = repomd_cache_path(cache, &baseurl);
    let bytes = std::fs::read(&repomd_cached).map_err(|_| RepoError::NotCached {
        repo: repo(),
        baseurl: baseurl.clone(),
        what: "repomd.xml",
    })?;
    let md = repomd::parse(&bytes).map_err(|source| RepoError::Repomd {
        repo: repo(),
        url: repomd_url,
        source,
    })?;
    let Some(data) = md.data.get("filelists") else {
        return Ok(false);
    };
    let path = fetch_data(client, cache, spec, &baseurl, data, "filelists", options)?;
    let url = data_url(spec, &baseurl, data)?;
    let (reader, crossed) = open_data(spec, &path, data)?;
    let mut parts = set.built_mut(spec.index);
    let by_id: std::collections::HashMap<String, (usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, part)| {
            part.iter()
                .enumerate()
                .filter(|(_, p)| p.repo == spec.index)
                .map(move |(i, p)| (p.checksum.hex().to_string(), (k, i)))
        })
        .collect();
    let parsed = filelists::parse(reader, |id, files| {
        if let Some(&(k, i)) = by_id.get(id) {
            parts[k][i].files = files;
        }
    });
    drop(parts);
    set.reindex();
    parsed.map_err(|source| {
        expansion_error(spec, &url, &crossed).unwrap_or(RepoError::Filelists {
            repo: repo(),
            path: path.clone(),
            source,
        })
    })?;
    Ok(true)
}

/// A repo's metadata as this cache holds it, for `minibuild vendor`: the
/// repomd.xml [`load`] cached (so it must come after `load` for `spec`), and
/// the cached, checksum-verified primary and filelists files (fetched when
/// missing) with their `<location>`s.
pub struct MetadataFiles {
    pub repomd: Vec<u8>,
    /// `(location in repomd.xml, cached file)`.
    pub data: Vec<(String, PathBuf)>,
}

pub fn metadata_files(
    client: &Client,
    cache: &Cache,
    spec: &RepoSpec,
    options: LoadOptions,
) -> Result<MetadataFiles, RepoError> {
    let baseurl = normalize_baseurl(&spec.baseurl);
    let repomd =
        std::fs::read(repomd_cache_path(cache, &baseurl)).map_err(|_| RepoError::NotCached {
            repo: spec.name.clone(),
            baseurl: baseurl.clone(),
            what: "repomd.xml",
        })?;
    let md = repomd::parse(&repomd).map_err(|source| RepoError::Repomd {
        repo: spec.name.clone(),
        url: http::join(&baseurl, "repodata/repomd.xml"),
        source,
    })?;
    let mut data = Vec::new();
    for kind in ["primary", "filelists"] {
        if let Some(d) = md.data.get(kind) {
            let path = fetch_data(client, cache, spec, &baseurl, d, kind, options)?;
            data.push((d.location.clone(), path));
        }
    }
    Ok(MetadataFiles { repomd, data })
}

/// Where a `<data>` file of repomd.xml is fetched from: its location must
/// stay under the repo's base ([`location::resolve`]).
fn data_url(spec: &RepoSpec, baseurl: &str, data: &repomd::DataFile) -> Result<String, RepoError> {
    location::resolve(baseurl, &data.location).map_err(|e| RepoError::Fetch {
        repo: spec.name.clone(),
        source: HttpError::Refused(e),
    })
}

/// What [`expansion::Expansion`] recorded as crossed, as an error naming `url`.
fn expansion_error(
    spec: &RepoSpec,
    url: &str,
    crossed: &std::sync::OnceLock<expansion::Overflow>,
) -> Option<RepoError> {
    crossed.get().map(|o| RepoError::Expansion {
        repo: spec.name.clone(),
        url: url.to_string(),
        limit: o.limit,
        rule: o.rule.clone(),
    })
}

/// A cached metadata file, decompressed as its name says and bounded by
/// what `data` declares ([`expansion`]); the cell says which bound was crossed.
#[allow(clippy::type_complexity)]
fn open_data(
    spec: &RepoSpec,
    path: &std::path::Path,
    data: &repomd::DataFile,
) -> Result<
    (
        Box<dyn BufRead + Send>,
        std::sync::Arc<std::sync::OnceLock<expansion::Overflow>>,
    ),
    RepoError,
> {
    let file = std::fs::File::open(path).map_err(|source| RepoError::Cache {
        repo: spec.name.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let plain = decompress(&name, BufReader::with_capacity(1 << 16, file)).map_err(|source| {
        RepoError::Decompress {
            repo: spec.name.clone(),
            path: path.to_path_buf(),
            source,
        }
    })?;
    let size = data
        .size
        .or_else(|| std::fs::metadata(path).ok().map(|m| m.len()));
    let (bounded, crossed) =
        expansion::Expansion::new(plain, expansion::limit(size, data.open_size));
    Ok((Box::new(bounded), crossed))
}

fn repomd_cache_path(cache: &Cache, baseurl: &str) -> PathBuf {
    cache.bucket(Bucket::Repomd).join(format!(
        "{}.xml",
        &Digest::sha256_of(baseurl.as_bytes()).hex()[..32]
    ))
}

/// Write the cache entry `path` atomically, creating its bucket: private,
/// and named like a download in progress while it is written.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = crate::fsutil::parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let mut tmp = crate::fsutil::AtomicFile::create_in(
        dir,
        crate::cache::PARTIAL_PREFIX,
        crate::cache::private_file_mode(),
    )?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_server::Server;
    use crate::http::RetryPolicy;
    use crate::package::Dep;
    use std::io::Write;
    use std::time::Duration;

    pub(super) fn client() -> Client {
        Client::with_retry(RetryPolicy {
            attempts: 2,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(10),
        })
    }

    pub(super) const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm"><name>bash</name><arch>x86_64</arch>
  <version epoch="0" ver="5.2.26" rel="3.fc40"/>
  <checksum type="sha256" pkgid="YES">e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</checksum>
  <location href="Packages/b/bash-5.2.26-3.fc40.x86_64.rpm"/>
  <format><rpm:provides><rpm:entry name="/bin/sh"/></rpm:provides></format></package>
<package type="rpm"><name>filesystem</name><arch>x86_64</arch>
  <version epoch="0" ver="3.18" rel="8.fc40"/>
  <checksum type="sha256" pkgid="YES">e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</checksum>
  <location href="Packages/f/filesystem-3.18-8.fc40.x86_64.rpm"/></package>
</metadata>
"#;

    pub(super) fn repomd(primary_file: &[u8], href: &str) -> String {
        let d = Digest::sha256_of(primary_file);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1713225600</revision>
<data type="primary"><checksum type="sha256">{}</checksum>
<location href="{href}"/><timestamp>1713225555</timestamp><size>{}</size></data></repomd>"#,
            d.hex(),
            primary_file.len()
        )
    }

    fn spec(baseurl: &str) -> RepoSpec {
        RepoSpec {
            name: "fedora".into(),
            baseurl: baseurl.into(),
            index: 1,
        }
    }

    /// Lay out a repository in `dir` with a primary compressed by `compress`.
    fn local_repo(dir: &std::path::Path, ext: &str, compressed: &[u8]) {
        let href = format!("repodata/abc-primary.xml{ext}");
        std::fs::create_dir_all(dir.join("repodata")).unwrap();
        std::fs::write(dir.join(&href), compressed).unwrap();
        std::fs::write(dir.join("repodata/repomd.xml"), repomd(compressed, &href)).unwrap();
    }

    fn check_index(index: &RepoIndex) {
        assert_eq!(index.name, "fedora");
        assert_eq!(index.revision, "1713225600");
        assert!(index.baseurl.ends_with('/'));
        let names: Vec<_> = index.packages.iter().map(|p| p.nevra.to_string()).collect();
        assert_eq!(
            names,
            ["bash-5.2.26-3.fc40.x86_64", "filesystem-3.18-8.fc40.x86_64"]
        );
        assert!(index.packages.iter().all(|p| p.repo == 1));
    }

    #[test]
    fn loads_local_repos_in_every_compression() {
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(PRIMARY.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(PRIMARY.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        for (ext, bytes) in [
            (".gz", gz),
            (".xz", xz),
            (".zst", zst),
            ("", PRIMARY.as_bytes().to_vec()),
        ] {
            let repo = tempfile::tempdir().unwrap();
            local_repo(repo.path(), ext, &bytes);
            let cache_dir = tempfile::tempdir().unwrap();
            let cache = Cache::new(cache_dir.path());
            // A plain path without trailing slash, and a file:// URL.
            let plain = repo.path().to_str().unwrap().to_string();
            let url = format!("file://{plain}");
            for base in [plain, url] {
                let index = load(&client(), &cache, &spec(&base), LoadOptions::default())
                    .unwrap_or_else(|e| panic!("{ext} {base}: {e}"));
                check_index(&index);
                assert_eq!(
                    index.repomd_digest,
                    Digest::sha256_of(
                        &std::fs::read(repo.path().join("repodata/repomd.xml")).unwrap()
                    )
                );
            }
            let cached = cache.bucket(Bucket::Repodata).join(format!(
                "{}-primary.xml{ext}",
                Digest::sha256_of(&bytes).hex()
            ));
            assert!(cached.is_file(), "{}", cached.display());
        }
    }

    #[test]
    fn warm_runs_fetch_only_repomd_and_offline_fetches_nothing() {
        let server = Server::start();
        let zst = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        let href = "repodata/abc-primary.xml.zst";
        server.put("repo/repodata/repomd.xml", repomd(&zst, href));
        server.put(&format!("repo/{href}"), zst);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let base = server.url("repo");

        let first = load(&client(), &cache, &spec(&base), LoadOptions::default()).unwrap();
        check_index(&first);
        let second = load(&client(), &cache, &spec(&base), LoadOptions::default()).unwrap();
        assert_eq!(first, second);
        assert_eq!(server.hits("repo/repodata/repomd.xml"), 2);
        assert_eq!(server.hits(&format!("repo/{href}")), 1);

        let offline = LoadOptions { offline: true };
        let third = load(&client(), &cache, &spec(&base), offline).unwrap();
        assert_eq!(first, third);
        assert_eq!(server.hits("repo/repodata/repomd.xml"), 2);

        // Offline with an empty cache says what to do.
        let empty = tempfile::tempdir().unwrap();
        let err = load(&client(), &Cache::new(empty.path()), &spec(&base), offline).unwrap_err();
        assert!(matches!(
            err,
            RepoError::NotCached {
                what: "repomd.xml",
                ..
            }
        ));
        assert!(err.to_string().contains("without --offline"), "{err}");
    }

    #[test]
    fn a_primary_that_does_not_match_repomd_is_refused() {
        let server = Server::start();
        let zst = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        let href = "repodata/abc-primary.xml.zst";
        // repomd.xml describes a different (older) primary: a mirror mid-sync.
        let old = zstd::encode_all(&b"<metadata/>"[..], 3).unwrap();
        // Longer than repomd.xml says: cut off at the declared size.
        server.put("r/repodata/repomd.xml", repomd(&old, href));
        server.put(&format!("r/{href}"), zst.clone());
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let err = load(
            &client(),
            &cache,
            &spec(&server.url("r")),
            LoadOptions::default(),
        )
        .unwrap_err();
        let msg = format!("{}", std::error::Error::source(&err).unwrap());
        assert!(
            msg.contains(&format!("more than {} bytes", old.len())) && msg.contains("mid-sync"),
            "{msg}"
        );
        // The declared size, another checksum.
        let same_size = repomd(&old, href).replace(
            &format!("<size>{}</size>", old.len()),
            &format!("<size>{}</size>", zst.len()),
        );
        server.put("r/repodata/repomd.xml", same_size);
        let err = load(
            &client(),
            &cache,
            &spec(&server.url("r")),
            LoadOptions::default(),
        )
        .unwrap_err();
        let RepoError::Mismatch {
            ref url,
            ref expected,
            ref actual,
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(url, &server.url(&format!("r/{href}")));
        assert_eq!(expected, &Digest::sha256_of(&old));
        assert_eq!(actual, &Digest::sha256_of(&zst));
        let msg = err.to_string();
        assert!(
            msg.contains("mid-sync") && msg.contains(&expected.to_string()),
            "{msg}"
        );
        // Neither the bad file nor a temp file is left in the cache.
        let left = std::fs::read_dir(cache.bucket(Bucket::Repodata))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_missing_repo_is_a_fetch_error_with_a_hint() {
        let server = Server::start();
        let cache_dir = tempfile::tempdir().unwrap();
        let err = load(
            &client(),
            &Cache::new(cache_dir.path()),
            &spec(&server.url("nope/40/x86_64/os/")),
            LoadOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, RepoError::Fetch { .. }), "{err:?}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("repodata/repomd.xml") && source.contains("404"),
            "{source}"
        );
    }

    #[test]
    fn file_deps_primary_cannot_answer_are_detected() {
        let primary = crate::repo::primary::parse(PRIMARY.as_bytes(), 0).unwrap();
        let mut pkgs = primary.clone();
        let unmet = |pkgs: &[Package], req: &[&str]| {
            PackageSet::of(pkgs.to_vec()).unmet_file_deps(req.iter().copied())
        };
        assert!(!unmet(&pkgs, &["bash", "/bin/sh"]));
        assert!(unmet(&pkgs, &["/usr/share/x"]));
        pkgs[1].requires.push(Dep::any("(/usr/share/y or bash)"));
        assert!(unmet(&pkgs, &["bash"]));
        pkgs[0].files.push("/usr/share/y".into());
        assert!(!unmet(&pkgs, &["bash"]));
    }

    #[test]
    fn substitutes_dnf_variables() {
        let s = |u| substitute(u, "40", "x86_64");
        assert_eq!(
            s("https://m/fedora/releases/$releasever/Everything/$basearch/os/").unwrap(),
            "https://m/fedora/releases/40/Everything/x86_64/os/"
        );
        assert_eq!(
            s("https://m/${releasever}/${basearch}").unwrap(),
            "https://m/40/x86_64"
        );
        assert_eq!(
            s("https://m/$basearch$releasever").unwrap(),
            "https://m/x86_6440"
        );
        assert_eq!(s("https://m/a$/b").unwrap(), "https://m/a$/b");
        assert_eq!(
            substitute(
                "https://m/$releasever_major/$releasever_minor/$releasever",
                "9.4",
                "aarch64"
            )
            .unwrap(),
            "https://m/9/4/9.4"
        );
        let err = s("https://m/$contentdir/$basearch").unwrap_err();
        assert_eq!(err.name, "contentdir");
    }

    #[test]
    fn normalizes_base_urls_and_cache_names() {
        assert_eq!(normalize_baseurl("http://h/r"), "http://h/r/");
        assert_eq!(normalize_baseurl("/srv/r/"), "/srv/r/");
        let d = Digest::sha256_of(b"");
        assert_eq!(
            cache_name(&d, "repodata/xyz-primary.xml.zst"),
            format!("{}-primary.xml.zst", d.hex())
        );
        assert_eq!(
            cache_name(&d, "repodata/primary.xml"),
            format!("{}-primary.xml", d.hex())
        );
        assert_eq!(
            cache_name(&d, "repodata/../../etc/passwd"),
            format!("{}-primary.xml", d.hex())
        );
    }
}
