//! The download stage: planned packages in, verified local `.rpm` paths out.
//!
//! Packages are stored content-addressed, `<cache>/v1/rpms/<hex>.rpm` where
//! `<hex>` is the package checksum from primary.xml, so the same file is never
//! downloaded twice, whatever repo or run asks for it. A cached file is
//! re-hashed before use; one that does not match is deleted and fetched again.
//! Downloads stream into a temp file in the same directory while being hashed,
//! are checked against the checksum and size the metadata promised, and only
//! then renamed into place.
//!
//! A bounded pool of scoped threads works through the list; the first failure
//! stops the others from starting new downloads. Progress is reported through
//! a callback, never printed.

use std::path::{Path, PathBuf};

use crate::cache::{self, Bucket, Cache, EntryError, Transfer};
use crate::digest::Digest;
use crate::http::{Client, HttpError};
use crate::location;
use crate::package::Package;

/// Parallel downloads when the caller has no opinion: enough to hide latency
/// on a mirror, few enough to be polite to it.
pub const DEFAULT_JOBS: usize = 6;

/// What the download stage reports; `index` is the position in the input.
#[derive(Debug, Clone, Copy)]
pub enum FetchEvent<'a> {
    /// Work on a package began; `total` is its size from the metadata.
    Started {
        index: usize,
        package: &'a Package,
        total: u64,
    },
    /// `bytes` more bytes of the package arrived.
    Progress {
        index: usize,
        package: &'a Package,
        bytes: u64,
    },
    /// A transient failure discarded `discarded` bytes; the download restarts.
    Restarted {
        index: usize,
        package: &'a Package,
        discarded: u64,
    },
    /// The cached copy at `path` did not match its checksum and was
    /// deleted; the package is downloaded again.
    Dropped {
        index: usize,
        package: &'a Package,
        path: &'a Path,
    },
    /// The package is in the cache and verified.
    Finished {
        index: usize,
        package: &'a Package,
        cached: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {nevra}")]
    Download {
        nevra: String,
        #[source]
        source: HttpError,
    },
    #[error(transparent)]
    Mismatch(Box<Mismatch>),
    #[error("{nevra}: cache error at {}; check permissions or free space", path.display())]
    Cache {
        nevra: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A package whose bytes are not what the metadata promised.
#[derive(Debug, thiserror::Error)]
#[error("{nevra}: {url} has {actual} ({actual_size} bytes) but the repo metadata says {expected} ({expected_size} bytes); the mirror may be mid-sync or serving a corrupt file, try again later or use another mirror")]
pub struct Mismatch {
    pub nevra: String,
    pub url: String,
    pub expected: Digest,
    pub actual: Digest,
    pub expected_size: u64,
    pub actual_size: u64,
}

/// Where `package` lives in the cache once fetched.
pub fn cache_path(cache: &Cache, package: &Package) -> PathBuf {
    cache
        .bucket(Bucket::Rpms)
        .join(format!("{}.rpm", package.checksum.hex()))
}

/// Make every package available locally, downloading what the cache lacks.
///
/// `packages` pairs each package with the base URL of its repository
/// (ending in `/`, as in [`crate::repo::RepoIndex::baseurl`]). The result
/// holds one path per input, in the same order. `jobs` bounds the parallel
/// downloads (0 is taken as 1).
pub fn fetch(
    client: &Client,
    cache: &Cache,
    packages: &[(&Package, &str)],
    jobs: usize,
    progress: &(dyn Fn(FetchEvent<'_>) + Sync),
) -> Result<Vec<PathBuf>, FetchError> {
    let results = crate::pool::map(
        packages,
        jobs,
        |r: &Result<PathBuf, FetchError>| r.is_err(),
        |index, &(package, baseurl)| fetch_one(client, cache, index, package, baseurl, progress),
    );

    // Report the first failure in input order, so the message is stable.
    let mut paths = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(p)) => paths.push(p),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(paths),
    }
}

/// Cache paths being fetched by this process, and the signal that one is done.
static IN_FLIGHT: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

/// This thread's exclusive right to fetch one cache path, until dropped.
/// Process-wide like the cache directory it guards; a thread holds at most
/// one claim at a time, so claims cannot deadlock.
struct Claim(PathBuf);

impl Claim {
    fn take(path: &Path) -> Claim {
        let mut busy = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(path) {
            busy = RELEASED.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(path.to_path_buf());
        Claim(path.to_path_buf())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        IN_FLIGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
        RELEASED.notify_all();
    }
}

fn fetch_one(
    client: &Client,
    cache: &Cache,
    index: usize,
    package: &Package,
    baseurl: &str,
    progress: &(dyn Fn(FetchEvent<'_>) + Sync),
) -> Result<PathBuf, FetchError> {
    let nevra = || package.nevra.to_string();
    let dest = cache_path(cache, package);
    // Another recipe of the same run may be fetching this very file: wait
    // for it, then find it in the cache, rather than download it twice.
    let _claim = Claim::take(&dest);
    progress(FetchEvent::Started {
        index,
        package,
        total: package.download_size,
    });
    let entry =
        cache::verify_entry(&dest, &package.checksum).map_err(|source| FetchError::Cache {
            nevra: nevra(),
            path: dest.clone(),
            source,
        })?;
    if entry == cache::Entry::Dropped {
        progress(FetchEvent::Dropped {
            index,
            package,
            path: &dest,
        });
    }
    let cached = entry.is_valid();
    if !cached {
        // The metadata chose the location: it must stay under the repo's
        // base, or keep its scheme when absolute (xml:base).
        let url =
            location::resolve(baseurl, &package.location).map_err(|e| FetchError::Download {
                nevra: nevra(),
                source: HttpError::Refused(e),
            })?;
        // primary.xml writes 0 when it does not know the size.
        let expected_size = Some(package.download_size).filter(|&n| n > 0);
        cache::download_verified(
            client,
            &url,
            &dest,
            &package.checksum,
            expected_size,
            &mut |t| match t {
                Transfer::Bytes(bytes) => progress(FetchEvent::Progress {
                    index,
                    package,
                    bytes,
                }),
                Transfer::Restart(discarded) => progress(FetchEvent::Restarted {
                    index,
                    package,
                    discarded,
                }),
            },
        )
        .map_err(|e| match e {
            EntryError::Http(source) => FetchError::Download {
                nevra: nevra(),
                source,
            },
            EntryError::Mismatch {
                url,
                expected,
                actual,
                actual_size,
                ..
            } => FetchError::Mismatch(Box::new(Mismatch {
                nevra: nevra(),
                url,
                expected,
                actual,
                expected_size: package.download_size,
                actual_size,
            })),
            EntryError::Io { path, source } => FetchError::Cache {
                nevra: nevra(),
                path,
                source,
            },
        })?;
    }
    progress(FetchEvent::Finished {
        index,
        package,
        cached,
    });
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_server::{Fault, Server};
    use crate::http::RetryPolicy;
    use crate::package::{Evr, Nevra};
    use std::time::Duration;

    fn client() -> Client {
        Client::with_retry(RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        })
    }

    fn package(name: &str, content: &[u8]) -> Package {
        Package {
            download_size: content.len() as u64,
            ..Package::new(
                Nevra::new(name, Evr::parse("1.0-1"), "x86_64"),
                0,
                format!("Packages/{name}-1.0-1.x86_64.rpm"),
                Digest::sha256_of(content),
            )
        }
    }

    #[test]
    fn a_claimed_path_waits_for_its_holder() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let path = Path::new("/claim-test/x.rpm");
        let inside = AtomicUsize::new(0);
        let widest = AtomicUsize::new(0);
        crate::pool::map(
            &[(); 4],
            4,
            |_| false,
            |_, _| {
                let _claim = Claim::take(path);
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                widest.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
                inside.fetch_sub(1, Ordering::SeqCst);
            },
        );
        assert_eq!(widest.load(Ordering::SeqCst), 1);
        assert!(!IN_FLIGHT.lock().unwrap().contains(path), "released");
    }

    /// Serve `n` packages with distinct contents; return them.
    fn serve(server: &Server, n: usize) -> Vec<(Package, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let content: Vec<u8> = (0..20_000 + i * 977).map(|b| (b * 31 + i) as u8).collect();
                let p = package(&format!("pkg{i}"), &content);
                server.put(&p.location, content.clone());
                (p, content)
            })
            .collect()
    }

    /// Records events as (index, kind, bytes) for assertions.
    struct Log(std::sync::Mutex<Vec<(usize, &'static str, u64)>>);

    impl Log {
        fn new() -> Log {
            Log(std::sync::Mutex::new(Vec::new()))
        }
        fn record(&self, e: FetchEvent<'_>) {
            let entry = match e {
                FetchEvent::Started { index, total, .. } => (index, "started", total),
                FetchEvent::Progress { index, bytes, .. } => (index, "progress", bytes),
                FetchEvent::Restarted {
                    index, discarded, ..
                } => (index, "restarted", discarded),
                FetchEvent::Dropped { index, .. } => (index, "dropped", 0),
                FetchEvent::Finished { index, cached, .. } => {
                    (index, if cached { "cached" } else { "downloaded" }, 0)
                }
            };
            self.0.lock().unwrap().push(entry);
        }
        fn count(&self, kind: &str) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.1 == kind)
                .count()
        }
        fn bytes(&self, index: usize) -> u64 {
            let log = self.0.lock().unwrap();
            let got: u64 = log
                .iter()
                .filter(|e| e.0 == index && e.1 == "progress")
                .map(|e| e.2)
                .sum();
            let lost: u64 = log
                .iter()
                .filter(|e| e.0 == index && e.1 == "restarted")
                .map(|e| e.2)
                .sum();
            got - lost
        }
    }

    #[test]
    fn downloads_in_order_then_serves_from_cache() {
        let server = Server::start();
        let pkgs = serve(&server, 7);
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let input: Vec<(&Package, &str)> = pkgs.iter().map(|(p, _)| (p, &*server.base)).collect();

        let log = Log::new();
        let paths = fetch(&client(), &cache, &input, 3, &|e| log.record(e)).unwrap();
        assert_eq!(paths.len(), 7);
        for (i, ((p, content), path)) in pkgs.iter().zip(&paths).enumerate() {
            assert_eq!(&std::fs::read(path).unwrap(), content);
            assert_eq!(
                path,
                &dir.path().join(format!("v1/rpms/{}.rpm", p.checksum.hex()))
            );
            assert_eq!(log.bytes(i), content.len() as u64);
            assert_eq!(server.hits(&p.location), 1);
        }
        assert_eq!(log.count("started"), 7);
        assert_eq!(log.count("downloaded"), 7);

        // Warm run: nothing requested from the server.
        let log = Log::new();
        let again = fetch(&client(), &cache, &input, 3, &|e| log.record(e)).unwrap();
        assert_eq!(again, paths);
        assert_eq!(log.count("cached"), 7);
        assert_eq!(log.count("progress"), 0);
        for (p, _) in &pkgs {
            assert_eq!(server.hits(&p.location), 1);
        }
        // No temp files left behind.
        let leftovers = std::fs::read_dir(cache.bucket(Bucket::Rpms))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".partial")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_corrupt_cache_entry_is_deleted_and_fetched_again() {
        let server = Server::start();
        let pkgs = serve(&server, 2);
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let input: Vec<(&Package, &str)> = pkgs.iter().map(|(p, _)| (p, &*server.base)).collect();
        let paths = fetch(&client(), &cache, &input, 2, &|_| {}).unwrap();

        // Truncate one entry and flip a byte in the other.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&paths[0])
            .unwrap();
        f.set_len(100).unwrap();
        let mut bytes = std::fs::read(&paths[1]).unwrap();
        bytes[5] ^= 1;
        std::fs::write(&paths[1], bytes).unwrap();

        let log = Log::new();
        let again = fetch(&client(), &cache, &input, 2, &|e| log.record(e)).unwrap();
        assert_eq!(log.count("downloaded"), 2);
        assert_eq!(log.count("dropped"), 2, "each damaged entry is reported");
        for ((p, content), path) in pkgs.iter().zip(&again) {
            assert_eq!(&std::fs::read(path).unwrap(), content);
            assert_eq!(server.hits(&p.location), 2);
        }
    }

    #[test]
    fn a_corrupt_download_names_package_url_and_digests() {
        let server = Server::start();
        let pkgs = serve(&server, 1);
        let (p, _) = &pkgs[0];
        server.fault(&p.location, Some(Fault::Corrupt));
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let err = fetch(&client(), &cache, &[(p, &*server.base)], 1, &|_| {}).unwrap_err();
        let FetchError::Mismatch(ref m) = err else {
            panic!("{err:?}")
        };
        let Mismatch {
            nevra,
            url,
            expected,
            actual,
            ..
        } = &**m;
        assert_eq!(nevra, "pkg0-1.0-1.x86_64");
        assert_eq!(url, &server.url(&p.location));
        assert_eq!(expected, &p.checksum);
        assert_ne!(actual, &p.checksum);
        let msg = err.to_string();
        for part in [
            nevra.as_str(),
            url,
            &expected.to_string(),
            &actual.to_string(),
        ] {
            assert!(msg.contains(part), "{msg} lacks {part}");
        }
        // A corrupt download is not retried (the mirror would serve it again)
        // and leaves nothing in the cache.
        assert_eq!(server.hits(&p.location), 1);
        assert!(!cache_path(&cache, p).exists());
    }

    #[test]
    fn retries_a_503_and_a_truncated_transfer() {
        let server = Server::start();
        let pkgs = serve(&server, 2);
        server.fault(&pkgs[0].0.location, Some(Fault::Unavailable(1)));
        server.fault(&pkgs[1].0.location, Some(Fault::Truncate));
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let input: Vec<(&Package, &str)> = pkgs.iter().map(|(p, _)| (p, &*server.base)).collect();

        // The truncation fault persists, so package 1 fails after 3 tries;
        // clear it from another thread once the first truncated try is seen.
        let srv = server.clone();
        let loc = pkgs[1].0.location.clone();
        let log = Log::new();
        let paths = fetch(&client(), &cache, &input, 1, &|e| {
            if let FetchEvent::Restarted { .. } = e {
                srv.fault(&loc, None);
            }
            log.record(e)
        })
        .unwrap();
        assert_eq!(server.hits(&pkgs[0].0.location), 2);
        assert_eq!(server.hits(&pkgs[1].0.location), 2);
        assert_eq!(log.count("restarted"), 1);
        assert_eq!(log.bytes(1), pkgs[1].1.len() as u64);
        assert_eq!(std::fs::read(&paths[1]).unwrap(), pkgs[1].1);
    }

    #[test]
    fn a_missing_package_is_an_error_naming_it() {
        let server = Server::start();
        let p = package("ghost", b"boo");
        let dir = tempfile::tempdir().unwrap();
        let err = fetch(
            &client(),
            &Cache::new(dir.path()),
            &[(&p, &*server.base)],
            4,
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(err, FetchError::Download { .. }), "{err:?}");
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            chain.contains("ghost-1.0-1.x86_64") && chain.contains("404"),
            "{chain}"
        );
        assert_eq!(server.hits(&p.location), 1);
    }

    /// End to end against real packages: a repo made by createrepo_c from
    /// createrepo_c's own test RPMs, served over HTTP, loaded and fetched.
    /// Needs the shared corpus and createrepo_c (`make deps-fixtures`).
    #[test]
    fn createrepo_c_repos_load_and_fetch() {
        let rpms = &crate::testing::corpus("createrepo_c/tests/testdata/packages");
        // Debian's createrepo_c 0.17 cannot write zstd; unit tests cover it.
        for compress in ["xz", "gz"] {
            let repo = tempfile::tempdir().unwrap();
            let mut originals = std::collections::BTreeMap::new();
            for entry in std::fs::read_dir(rpms).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".x86_64.rpm") && !name.contains("signed") {
                    std::fs::copy(&path, repo.path().join(&name)).unwrap();
                    originals.insert(name, std::fs::read(&path).unwrap());
                }
            }
            let status = std::process::Command::new("createrepo_c")
                .args(["--quiet", "--no-database"])
                .arg(format!("--general-compress-type={compress}"))
                .arg(repo.path())
                .status()
                .expect("createrepo_c must be installed for this test");
            assert!(status.success());

            let server = Server::start();
            for entry in walk(repo.path()) {
                let rel = entry.strip_prefix(repo.path()).unwrap();
                server.put(
                    &format!("os/{}", rel.display()),
                    std::fs::read(&entry).unwrap(),
                );
            }
            let cache_dir = tempfile::tempdir().unwrap();
            let cache = Cache::new(cache_dir.path());
            let spec = crate::repo::RepoSpec {
                name: "test".into(),
                baseurl: server.url("os"),
                index: 0,
            };
            let index = crate::repo::load(
                &client(),
                &cache,
                &spec,
                crate::repo::LoadOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{compress}: {e}"));
            assert_eq!(index.packages.len(), originals.len(), "{compress}");
            let input: Vec<(&Package, &str)> = index
                .packages
                .iter()
                .map(|p| (p, index.baseurl.as_str()))
                .collect();
            let paths = fetch(&client(), &cache, &input, 4, &|_| {}).unwrap();
            for (p, path) in index.packages.iter().zip(&paths) {
                assert_eq!(
                    &std::fs::read(path).unwrap(),
                    &originals[&p.location],
                    "{}",
                    p.nevra
                );
            }
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn empty_input_is_empty_output() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fetch(&client(), &Cache::new(dir.path()), &[], 4, &|_| {}).unwrap();
        assert!(paths.is_empty());
    }
}
