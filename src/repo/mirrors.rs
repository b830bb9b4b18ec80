//! Choosing a mirror: a repo's base URLs, then the mirrors its metalink or
//! mirrorlist names, tried in order until one serves usable metadata.
//!
//! Every request goes through the run's one [`Client`], so its fence, size
//! bounds and timeouts hold for mirrors picked from a document too. With a
//! metalink, every mirror's repomd.xml must match one of the hashes the
//! metalink publishes before anything in it is used (a stale mirror is
//! passed over); a mirror that fails for any reason other than the local
//! cache is passed over for the next. The documents are cached, so
//! `--offline` reaches the mirror used last time.

use std::path::PathBuf;

use super::metalink::{self, Metalink};
use super::{load_checked, mirrorlist, LoadOptions, RepoError, RepoIndex, RepoSpec, RepomdCheck};
use crate::cache::{Bucket, Cache};
use crate::digest::Digest;
use crate::http::Client;

/// Where one repo's metadata may come from, variables already substituted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources {
    /// Tried first, in order.
    pub baseurls: Vec<String>,
    pub metalink: Option<String>,
    pub mirrorlist: Option<String>,
}

/// The mirrors to try, best first, and what verifies them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidates {
    /// Base URLs ending in `/`.
    pub mirrors: Vec<String>,
    /// The metalink whose hashes every repomd.xml must match, and its URL.
    pub metalink: Option<(String, Metalink)>,
    /// The metalink or mirrorlist URL the mirrors came from (provenance).
    pub via: Option<String>,
    /// Worth a line to the user (entries passed over).
    pub notes: Vec<String>,
}

/// A repomd.xml that matches none of the metalink's hashes.
#[derive(Debug, thiserror::Error)]
#[error("its repomd.xml (sha256 {actual}) matches none of the {count} hash(es) the metalink {metalink} publishes: a stale or altered copy")]
pub struct Unverified {
    pub metalink: String,
    pub actual: String,
    pub count: usize,
}

/// `e` and its sources, joined: one line saying why a mirror was passed over.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// Fetch (or, offline, read from the cache) the metalink and mirrorlist of
/// `sources`, and list the mirrors to try. `substitute` expands the
/// `$releasever`/`$basearch` a mirrorlist's lines may hold.
pub fn candidates(
    client: &Client,
    cache: &Cache,
    repo: &str,
    sources: &Sources,
    options: LoadOptions,
    substitute: &dyn Fn(&str) -> Result<String, super::SubstituteError>,
) -> Result<Candidates, RepoError> {
    let mut out = Candidates {
        mirrors: sources
            .baseurls
            .iter()
            .map(|b| super::normalize_baseurl(b))
            .collect(),
        ..Candidates::default()
    };
    let bad = |url: &str, kind: &'static str, why: String| RepoError::MirrorDocument {
        repo: repo.to_string(),
        kind,
        url: url.to_string(),
        why,
    };
    if let Some(url) = &sources.metalink {
        let bytes = document(client, cache, repo, url, "metalink", options)?;
        let doc = metalink::parse(&bytes).map_err(|e| bad(url, "metalink", e.to_string()))?;
        remember(cache, repo, url, "metalink", &bytes)?;
        for s in &doc.skipped {
            out.notes.push(format!(
                "repo `{repo}`: metalink {url}: mirror {s} passed over (only http(s) mirrors of repodata/repomd.xml are used)"
            ));
        }
        push_new(&mut out.mirrors, doc.mirrors.iter().cloned());
        out.via = Some(url.clone());
        out.metalink = Some((url.clone(), doc));
    }
    if let Some(url) = &sources.mirrorlist {
        let bytes = document(client, cache, repo, url, "mirrorlist", options)?;
        let text = String::from_utf8_lossy(&bytes);
        let list = mirrorlist::parse(&text).map_err(|e| bad(url, "mirrorlist", e.to_string()))?;
        remember(cache, repo, url, "mirrorlist", &bytes)?;
        for s in &list.skipped {
            out.notes.push(format!(
                "repo `{repo}`: mirrorlist {url}: {s} passed over (not an http(s) URL)"
            ));
        }
        let mut mirrors = Vec::new();
        for m in &list.mirrors {
            mirrors.push(substitute(m).map_err(|e| bad(url, "mirrorlist", e.to_string()))?);
        }
        push_new(&mut out.mirrors, mirrors.into_iter());
        out.via.get_or_insert_with(|| url.clone());
    }
    Ok(out)
}

fn push_new(into: &mut Vec<String>, items: impl Iterator<Item = String>) {
    for m in items {
        if !into.contains(&m) {
            into.push(m);
        }
    }
}

/// A metalink or mirrorlist: fetched, or offline read from the cache.
fn document(
    client: &Client,
    cache: &Cache,
    repo: &str,
    url: &str,
    kind: &'static str,
    options: LoadOptions,
) -> Result<Vec<u8>, RepoError> {
    if options.offline {
        return std::fs::read(cache_path(cache, url, kind)).map_err(|_| RepoError::NotCached {
            repo: repo.to_string(),
            baseurl: url.to_string(),
            what: kind,
        });
    }
    client.read_to_vec(url).map_err(|source| RepoError::Fetch {
        repo: repo.to_string(),
        source,
    })
}

/// Keep a document that parsed, for `--offline`.
fn remember(
    cache: &Cache,
    repo: &str,
    url: &str,
    kind: &str,
    bytes: &[u8],
) -> Result<(), RepoError> {
    let path = cache_path(cache, url, kind);
    super::write_atomic(&path, bytes).map_err(|source| RepoError::Cache {
        repo: repo.to_string(),
        path,
        source,
    })
}

fn cache_path(cache: &Cache, url: &str, kind: &str) -> PathBuf {
    cache.bucket(Bucket::Repomd).join(format!(
        "{kind}-{}.xml",
        &Digest::sha256_of(url.as_bytes()).hex()[..32]
    ))
}

/// `check` preceded by the metalink's hash check, when there is a metalink.
fn verified<'a>(
    candidates: &'a Candidates,
    check: &'a RepomdCheck<'a>,
) -> impl Fn(&str, &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a {
    move |url, bytes| {
        if let Some((metalink, doc)) = &candidates.metalink {
            if !doc.accepts(bytes) {
                return Err(Box::new(Unverified {
                    metalink: metalink.clone(),
                    actual: Digest::sha256_of(bytes).hex().to_string(),
                    count: doc.hashes.len(),
                }));
            }
        }
        check(url, bytes)
    }
}

/// Why one mirror did not do.
enum Failed<E> {
    /// Try the next mirror; the reason is reported if none does.
    PassOver(String),
    /// End the search with this error (not the mirror's fault).
    Stop(E),
}

/// Mirrors passed over: (mirror, why), in order.
type Tried = Vec<(String, String)>;

/// How a search for a working mirror ended without one.
enum Fallback<E> {
    Stopped(E),
    /// Every mirror failed.
    Exhausted(Tried),
}

/// Try `attempt` on each of `mirrors` in order until one works: with
/// `once` (a client that does not retry) while other mirrors remain, so a
/// failing one is passed over at once, and with `last` for the last. The
/// first success comes with the mirrors passed over before it and why.
fn first_working<C, T, E>(
    mirrors: &[String],
    once: &C,
    last: &C,
    mut attempt: impl FnMut(&C, &str) -> Result<T, Failed<E>>,
) -> Result<(T, Tried), Fallback<E>> {
    let mut tried = Vec::new();
    for (n, mirror) in mirrors.iter().enumerate() {
        let client = if n + 1 == mirrors.len() { last } else { once };
        match attempt(client, mirror) {
            Ok(found) => return Ok((found, tried)),
            Err(Failed::PassOver(why)) => tried.push((mirror.clone(), why)),
            Err(Failed::Stop(e)) => return Err(Fallback::Stopped(e)),
        }
    }
    Err(Fallback::Exhausted(tried))
}

/// The error for `repo` when no mirror of `candidates` worked.
fn no_mirror(repo: &str, candidates: &Candidates, fallback: Fallback<RepoError>) -> RepoError {
    match fallback {
        Fallback::Stopped(e) => e,
        Fallback::Exhausted(tried) => RepoError::NoMirror {
            repo: repo.to_string(),
            via: candidates
                .via
                .clone()
                .unwrap_or_else(|| "its baseurl list".to_string()),
            tried,
        },
    }
}

/// [`load_checked`] from the first mirror that serves usable metadata. A
/// single plain base URL fails as before, with its own error; otherwise the
/// error lists every mirror tried and why it was passed over.
pub fn load(
    client: &Client,
    cache: &Cache,
    repo: &str,
    index: usize,
    candidates: &Candidates,
    options: LoadOptions,
    check: &RepomdCheck<'_>,
) -> Result<RepoIndex, RepoError> {
    let verify = verified(candidates, check);
    let once = client.without_retry();
    let single = candidates.via.is_none() && candidates.mirrors.len() == 1;
    let found = first_working(&candidates.mirrors, &once, client, |client, mirror| {
        let spec = RepoSpec {
            name: repo.to_string(),
            baseurl: mirror.to_string(),
            index,
        };
        match load_checked(client, cache, &spec, options, &verify) {
            Ok(found) => Ok(found),
            Err(e @ RepoError::Cache { .. }) => Err(Failed::Stop(e)),
            Err(e) if single => Err(Failed::Stop(e)),
            Err(e) => Err(Failed::PassOver(chain(&e))),
        }
    });
    let (mut found, tried) = found.map_err(|f| no_mirror(repo, candidates, f))?;
    found.notes.extend(candidates.notes.iter().cloned());
    for (url, why) in &tried {
        found
            .notes
            .push(format!("repo `{repo}`: mirror {url} passed over: {why}"));
    }
    found.via = candidates.via.clone();
    Ok(found)
}

/// The first mirror whose repomd.xml is reachable and verifies, for a build
/// from a lock (which reads no metadata, but must not fetch from a mirror
/// the metalink would refuse). Offline, the first candidate: packages come
/// from the cache by checksum.
pub fn pick(
    client: &Client,
    repo: &str,
    candidates: &Candidates,
    options: LoadOptions,
    check: &RepomdCheck<'_>,
) -> Result<String, RepoError> {
    if options.offline || (candidates.via.is_none() && candidates.mirrors.len() == 1) {
        if let Some(first) = candidates.mirrors.first() {
            return Ok(first.clone());
        }
    }
    let verify = verified(candidates, check);
    let once = client.without_retry();
    let found = first_working(&candidates.mirrors, &once, client, |client, mirror| {
        let url = crate::http::join(mirror, "repodata/repomd.xml");
        client
            .read_to_vec(&url)
            .map_err(|e| chain(&e))
            .and_then(|bytes| verify(&url, &bytes).map_err(|e| chain(e.as_ref())))
            .map(|()| mirror.to_string())
            .map_err(Failed::PassOver)
    });
    found
        .map(|(mirror, _)| mirror)
        .map_err(|f| no_mirror(repo, candidates, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_server::{Fault, Server};
    use crate::repo::tests::{client, repomd, PRIMARY};

    const HREF: &str = "repodata/p-primary.xml";

    /// Serve the test repo under `prefix/`; returns its repomd.xml bytes.
    fn serve_repo(server: &Server, prefix: &str) -> Vec<u8> {
        let md = repomd(PRIMARY.as_bytes(), HREF).into_bytes();
        server.put(&format!("{prefix}/repodata/repomd.xml"), md.clone());
        server.put(&format!("{prefix}/{HREF}"), PRIMARY);
        md
    }

    fn metalink_doc(mirrors: &[String], hash: &Digest) -> String {
        let urls: String = mirrors
            .iter()
            .map(|m| format!("<url protocol=\"http\">{m}repodata/repomd.xml</url>"))
            .collect();
        format!(
            "<metalink><files><file name=\"repomd.xml\"><verification><hash type=\"sha256\">{}</hash></verification><resources>{urls}</resources></file></files></metalink>",
            hash.hex()
        )
    }

    fn no_vars(m: &str) -> Result<String, crate::repo::SubstituteError> {
        Ok(m.to_string())
    }

    fn ok(_: &str, _: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    #[test]
    fn first_working_passes_over_with_no_retries_until_the_last() {
        let mirrors: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut asked = Vec::new();
        let found = first_working(&mirrors, &"once", &"last", |client, m| {
            asked.push(format!("{m}:{client}"));
            match m {
                "c" => Ok(m.to_uppercase()),
                _ => Err(Failed::<()>::PassOver(format!("{m} is down"))),
            }
        });
        let Ok((found, tried)) = found else {
            panic!("no mirror found")
        };
        assert_eq!(found, "C");
        assert_eq!(asked, ["a:once", "b:once", "c:last"]);
        let why: Vec<(&str, &str)> = tried
            .iter()
            .map(|(m, w)| (m.as_str(), w.as_str()))
            .collect();
        assert_eq!(why, [("a", "a is down"), ("b", "b is down")]);

        // A stop ends the search; none working lists every one tried.
        let stopped = first_working(&mirrors, &"once", &"last", |_, m| match m {
            "a" => Err(Failed::PassOver("down".into())),
            _ => Err::<(), _>(Failed::Stop(m.to_string())),
        });
        assert!(matches!(stopped, Err(Fallback::Stopped(ref m)) if m == "b"));
        let none = first_working(&mirrors, &"once", &"last", |_, _| {
            Err::<(), _>(Failed::<()>::PassOver("down".into()))
        });
        assert!(matches!(none, Err(Fallback::Exhausted(ref t)) if t.len() == 3));
        let empty = first_working(&[], &"once", &"last", |_, _| Ok::<(), Failed<()>>(()));
        assert!(matches!(empty, Err(Fallback::Exhausted(ref t)) if t.is_empty()));
    }

    #[test]
    fn mirrorlist_falls_back_past_5xx_and_a_bad_primary() {
        let server = Server::start();
        serve_repo(&server, "a");
        server.fault("a/repodata/repomd.xml", Some(Fault::Unavailable(100)));
        serve_repo(&server, "b");
        server.fault(&format!("b/{HREF}"), Some(Fault::Corrupt));
        serve_repo(&server, "c");
        let list = format!(
            "# three mirrors\n{}\n{}\n{}\n",
            server.url("a"),
            server.url("b/"),
            server.url("c")
        );
        server.put("list", list);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let sources = Sources {
            mirrorlist: Some(server.url("list")),
            ..Sources::default()
        };
        let opts = LoadOptions::default();
        let found = candidates(&client(), &cache, "fedora", &sources, opts, &no_vars).unwrap();
        assert_eq!(
            found.mirrors,
            [server.url("a/"), server.url("b/"), server.url("c/")]
        );
        let index = load(&client(), &cache, "fedora", 0, &found, opts, &ok).unwrap();
        assert_eq!(index.baseurl, server.url("c/"));
        assert_eq!(index.via, Some(server.url("list")));
        assert_eq!(index.packages.len(), 2);
        // With mirrors left to try, a failing one is not retried.
        assert_eq!(server.hits("a/repodata/repomd.xml"), 1);
        let notes = index.notes.join("\n");
        assert!(
            notes.contains(&format!("mirror {} passed over", server.url("a/")))
                && notes.contains("503"),
            "{notes}"
        );
        assert!(
            notes.contains(&format!("mirror {} passed over", server.url("b/")))
                && notes.contains("mid-sync"),
            "{notes}"
        );
    }

    #[test]
    fn offline_reaches_the_mirror_of_the_cached_metalink() {
        let server = Server::start();
        let md = serve_repo(&server, "good");
        let doc = metalink_doc(&[server.url("good/")], &Digest::sha256_of(&md));
        server.put("ml", doc);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let sources = Sources {
            metalink: Some(server.url("ml")),
            ..Sources::default()
        };
        let online = LoadOptions::default();
        let found = candidates(&client(), &cache, "f", &sources, online, &no_vars).unwrap();
        let first = load(&client(), &cache, "f", 0, &found, online, &ok).unwrap();
        let offline = LoadOptions { offline: true };
        let found = candidates(&client(), &cache, "f", &sources, offline, &no_vars).unwrap();
        let second = load(&client(), &cache, "f", 0, &found, offline, &ok).unwrap();
        assert_eq!(first, second);
        assert_eq!(server.hits("ml"), 1);
        let empty = tempfile::tempdir().unwrap();
        let e = candidates(
            &client(),
            &Cache::new(empty.path()),
            "f",
            &sources,
            offline,
            &no_vars,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                RepoError::NotCached {
                    what: "metalink",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn pick_skips_a_mirror_the_metalink_refuses() {
        let server = Server::start();
        let md = serve_repo(&server, "good");
        server.put("stale/repodata/repomd.xml", "<repomd/>");
        let doc = metalink_doc(
            &[server.url("stale/"), server.url("good/")],
            &Digest::sha256_of(&md),
        );
        server.put("ml", doc);
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(cache_dir.path());
        let sources = Sources {
            metalink: Some(server.url("ml")),
            ..Sources::default()
        };
        let opts = LoadOptions::default();
        let found = candidates(&client(), &cache, "f", &sources, opts, &no_vars).unwrap();
        assert_eq!(
            pick(&client(), "f", &found, opts, &ok).unwrap(),
            server.url("good/")
        );
        assert_eq!(server.hits("stale/repodata/repomd.xml"), 1);

        server.put(
            "ml",
            metalink_doc(&[server.url("stale/")], &Digest::sha256_of(b"x")),
        );
        let found = candidates(&client(), &cache, "f", &sources, opts, &no_vars).unwrap();
        let e = pick(&client(), "f", &found, opts, &ok)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "no mirror from {} serves usable metadata",
                server.url("ml")
            )) && e.contains("matches none of the 1 hash(es)"),
            "{e}"
        );
        // A metalink that is not one is named with what is wrong.
        server.put("ml", "<html>busy</html>");
        let e = candidates(&client(), &cache, "f", &sources, opts, &no_vars).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "repo `f`: cannot use its metalink {}: not a metalink document",
                server.url("ml")
            )),
            "{e}"
        );
    }
}
