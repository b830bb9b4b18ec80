//! `--cache-repo REGISTRY/REPO`: a cache shared by many machines through a
//! registry they already run. Before an RPM is fetched from a mirror, or a
//! layer compressed, it is looked for there; after a build, what the
//! registry lacked is pushed.
//!
//! Each entry is a tag pointing to an OCI artifact manifest whose one
//! layer is the cached blob (a bare blob would do for lookups, but a
//! registry may garbage-collect blobs no manifest references):
//!
//! ```text
//! rpm-sha256-<hex>            artifactType application/vnd.minibuild.rpm,
//!                             layer = the RPM (hex: the repo's sha256 of it)
//! layer-<codec>.<build>-<hex> artifactType application/vnd.minibuild.layer,
//!                             layer = the compressed blob (hex: its diff_id;
//!                             key: [`LayerCache::key`]), annotated with the
//!                             uncompressed size
//! ```
//!
//! Nothing that comes back is trusted. An RPM entry must name the digest
//! the repo metadata gives (only sha256 repos use the cache) and its blob
//! must hash to it while it streams; the fetch stage then re-hashes it
//! against the metadata and the signature check runs as for any download.
//! A layer is adopted into the local layer cache, which decompresses and
//! hashes it against the diff_id before use. A refused entry is a warning
//! naming it, and the build falls back to the mirror or the compressor.
//! The registry being unreachable or refusing credentials is a warning,
//! never a build failure.
//!
//! When one run builds several recipes (`minibuild build a.toml b.toml`),
//! their builds share one [`CacheRepo`] and what it has learnt: each entry
//! is looked up once, each new entry pushed once, and the registry given
//! up on once, even while the images are written in parallel.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use crate::digest::{Algorithm, Digest};
use crate::image::layer_cache::LayerCache;
use crate::image::manifest::MEDIA_TYPE_MANIFEST;
use crate::image::{Compression, LayerInfo};
use crate::registry::{PushError, PushOptions, Reference, Session};

pub const ARTIFACT_RPM: &str = "application/vnd.minibuild.rpm";
pub const ARTIFACT_LAYER: &str = "application/vnd.minibuild.layer";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";
const ANNOTATION_UNCOMPRESSED: &str = "dev.minibuild.uncompressed-size";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// The most a layer blob from the cache may weigh (far above any image
/// minibuild makes; stops an endless body).
const LAYER_MAX: u64 = 16 << 30;

/// Where the shared cache is and how to reach it (the `--push` flags'
/// credentials and TLS settings). Clones share what the run looked up and
/// pushed: give every build of a run a clone of one parsed value.
#[derive(Debug, Clone)]
pub struct CacheRepo {
    pub reference: Reference,
    pub opts: PushOptions,
    state: Arc<RunState>,
}

impl CacheRepo {
    /// `REGISTRY/REPO` (a tag, if given, is ignored: entries have their own).
    pub fn parse(s: &str, opts: PushOptions) -> Result<CacheRepo, String> {
        let reference = s
            .parse::<Reference>()
            .or_else(|_| format!("{s}:cache").parse::<Reference>())
            .map_err(|e| format!("invalid --cache-repo `{s}`: {e}; write REGISTRY/REPO, e.g. 127.0.0.1:5000/ci-cache"))?;
        // Fewer retries than a push: a missing cache must not slow a build much.
        let opts = PushOptions {
            retries: opts.retries.min(1),
            ..opts
        };
        Ok(CacheRepo {
            reference,
            opts,
            state: Arc::default(),
        })
    }

    /// `REGISTRY/REPO`, for messages.
    pub fn name(&self) -> String {
        self.reference.name()
    }
}

/// The tag of the entry for an RPM with checksum `digest`.
pub fn rpm_tag(digest: &Digest) -> String {
    format!("rpm-{}-{}", digest.algo().name(), digest.hex())
}

/// The tag of the entry for a layer with local cache key `key`.
pub fn layer_tag(key: &str) -> String {
    format!("layer-{key}")
}

/// What a build got from the cache repo, and what it has to push after.
#[derive(Debug, Default)]
pub struct Tally {
    pub rpms: u64,
    pub rpm_bytes: u64,
    pub layers: u64,
    pub layer_bytes: u64,
    /// RPMs to push: (checksum, path, size, file name).
    rpms_to_push: Vec<(Digest, PathBuf, u64, String)>,
    /// Layers to push: (cache key, layer).
    layers_to_push: Vec<(String, LayerInfo)>,
}

/// A problem with the cache repo, already worded for a warning.
pub type Warning = String;

/// What a lookup of one entry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Fetched and checked: the entry is right.
    Hit,
    /// No entry under the tag.
    Missing,
    /// An entry that failed a check (poisoned, or cut short).
    Refused,
}

/// What the builds of one run know about the cache repo, so that two
/// recipes needing the same RPM or layer ask the registry once.
#[derive(Debug, Default)]
struct RunState {
    /// After a first failure to reach the registry, the run stops trying.
    down: Mutex<bool>,
    /// Per tag, what its lookup found; the slot's own lock is held during
    /// the lookup, so a build asking for a tag another is fetching waits
    /// for that fetch (and its file) instead of racing it.
    lookups: Mutex<HashMap<String, Arc<Mutex<Option<Lookup>>>>>,
    /// Tags the repo holds as they should be, or that a build of this run
    /// has taken on to push: nobody pushes them again.
    settled: Mutex<HashSet<String>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RunState {
    /// Run `look` for `tag` unless a build of this run did already; its
    /// answer when it ran now. `look` returning None (the registry could
    /// not be asked) records nothing.
    fn look_once(&self, tag: &str, look: impl FnOnce() -> Option<Lookup>) -> Option<Lookup> {
        let slot = locked(&self.lookups)
            .entry(tag.to_string())
            .or_default()
            .clone();
        let mut slot = locked(&slot);
        if slot.is_some() {
            return None;
        }
        let found = look()?;
        *slot = Some(found);
        if found == Lookup::Hit {
            locked(&self.settled).insert(tag.to_string());
        }
        Some(found)
    }

    /// What the lookup of `tag` found, if this run made one.
    fn looked(&self, tag: &str) -> Option<Lookup> {
        let slot = locked(&self.lookups).get(tag).cloned()?;
        let found = *locked(&slot);
        found
    }

    /// A hit that a later check refused: the entry must be pushed again.
    fn refused(&self, tag: &str) {
        let slot = locked(&self.lookups)
            .entry(tag.to_string())
            .or_default()
            .clone();
        *locked(&slot) = Some(Lookup::Refused);
        locked(&self.settled).remove(tag);
    }

    /// Take on pushing `tag`: false when it is settled already.
    fn claim(&self, tag: &str) -> bool {
        locked(&self.settled).insert(tag.to_string())
    }
}

/// One build's use of the cache repo. The registry is reached once per
/// stage; after a first failure to reach it the run stops trying.
pub struct Shared<'a> {
    pub repo: &'a CacheRepo,
    pub tally: Mutex<Tally>,
}

impl<'a> Shared<'a> {
    pub fn new(repo: &'a CacheRepo) -> Self {
        Shared {
            repo,
            tally: Mutex::new(Tally::default()),
        }
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        locked(&self.tally)
    }

    fn state(&self) -> &RunState {
        &self.repo.state
    }

    /// A session, or None (with a warning) when the registry is not usable.
    fn session(&self, warn: &(dyn Fn(Warning) + Sync)) -> Option<Session<'a>> {
        let mut down = locked(&self.state().down);
        if *down {
            return None;
        }
        match Session::connect(&self.repo.reference, &self.repo.opts, &|_| {}) {
            Ok(s) => Some(s),
            Err(e) => {
                *down = true;
                warn(format!(
                    "cache repo {} is not usable, building without it: {e}",
                    self.repo.name()
                ));
                None
            }
        }
    }

    /// Fill `wanted` (checksum, expected size, cache path, file name) from
    /// the cache repo where it has them; the rest are remembered for
    /// [`Self::push`]. Only sha256 checksums are looked up.
    pub fn fetch_rpms(
        &self,
        wanted: &[(Digest, u64, PathBuf, String)],
        jobs: usize,
        warn: &(dyn Fn(Warning) + Sync),
    ) {
        let looked: Vec<bool> = wanted
            .iter()
            .map(|(d, _, path, _)| d.algo() == Algorithm::Sha256 && !path.exists())
            .collect();
        let todo: Vec<usize> = (0..wanted.len()).filter(|&i| looked[i]).collect();
        let got: Vec<Mutex<Option<u64>>> = wanted.iter().map(|_| Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        // Each worker holds its own session: a round trip per entry is the
        // cost, so entries are fetched `jobs` at a time, like downloads.
        let worker = || {
            let mut session = None;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&i) = todo.get(n) else { return };
                let (digest, size, path, name) = &wanted[i];
                // Another build of the run may have looked already: then
                // the RPM is in the local cache, or it was not in the repo.
                self.state().look_once(&rpm_tag(digest), || {
                    if session.is_none() {
                        session = self.session(warn);
                    }
                    let s = session.as_mut()?;
                    Some(match fetch_rpm(s, digest, *size, path) {
                        Ok(Some(n)) => {
                            *locked(&got[i]) = Some(n);
                            Lookup::Hit
                        }
                        Ok(None) => Lookup::Missing,
                        Err(e) => {
                            warn(format!(
                                "cache repo {}: entry {} for {name} refused, fetching it from the mirror: {e}",
                                self.repo.name(),
                                rpm_tag(digest)
                            ));
                            Lookup::Refused
                        }
                    })
                });
            }
        };
        if !todo.is_empty() {
            std::thread::scope(|scope| {
                for _ in 0..jobs.clamp(1, todo.len()) {
                    scope.spawn(worker);
                }
            });
        }
        let mut tally = self.tally();
        for ((digest, size, path, name), got) in wanted.iter().zip(got) {
            match got.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(n) => {
                    tally.rpms += 1;
                    tally.rpm_bytes += n;
                }
                None if digest.algo() == Algorithm::Sha256 => {
                    tally
                        .rpms_to_push
                        .push((digest.clone(), path.clone(), *size, name.clone()));
                }
                None => {}
            }
        }
    }

    /// Put the layer with local cache key `key` into `layers` from the
    /// cache repo, if it has it and the local cache does not. The local
    /// cache verifies it before use. Returns the bytes fetched, if any.
    pub fn fetch_layer(
        &self,
        layers: &LayerCache,
        key: &str,
        warn: &(dyn Fn(Warning) + Sync),
    ) -> Option<u64> {
        if layers.has(key) {
            return None;
        }
        let tag = layer_tag(key);
        let mut fetched = None;
        self.state().look_once(&tag, || {
            let mut session = self.session(warn)?;
            let tmp = layers
                .dir()
                .join(format!("{}{key}.remote", crate::cache::PARTIAL_PREFIX));
            let found = match fetch_layer(&mut session, key, &tmp) {
                Ok(None) => Lookup::Missing,
                Ok(Some((digest, size, uncompressed))) => {
                    match layers.adopt(key, &tmp, &digest, size, uncompressed) {
                        Ok(()) => {
                            let mut tally = self.tally();
                            tally.layers += 1;
                            tally.layer_bytes += size;
                            fetched = Some(size);
                            Lookup::Hit
                        }
                        Err(e) => {
                            warn(format!(
                                "cannot store the layer {digest} from cache repo {} in {}: {e}",
                                self.repo.name(),
                                layers.dir().display()
                            ));
                            // Not known right: the push checks the entry.
                            Lookup::Refused
                        }
                    }
                }
                Err(e) => {
                    warn(format!(
                        "cache repo {}: entry {tag} refused, compressing the layer here: {e}",
                        self.repo.name(),
                    ));
                    Lookup::Refused
                }
            };
            let _ = std::fs::remove_file(&tmp);
            Some(found)
        });
        fetched
    }

    /// A layer [`Self::fetch_layer`] brought failed the local cache's
    /// check: it does not count as a hit.
    pub fn refused_layer(&self, key: &str, bytes: u64) {
        self.state().refused(&layer_tag(key));
        let mut tally = self.tally();
        tally.layers = tally.layers.saturating_sub(1);
        tally.layer_bytes = tally.layer_bytes.saturating_sub(bytes);
    }

    /// Remember a layer this build wrote, to push if the repo lacks it.
    /// `blob` is where its compressed bytes stay until the push.
    pub fn wrote_layer(&self, key: String, layer: &LayerInfo, blob: PathBuf) {
        let layer = LayerInfo {
            path_of_blob: blob,
            ..layer.clone()
        };
        self.tally().layers_to_push.push((key, layer));
    }

    /// Push every RPM and layer of this build the repo lacks (or holds
    /// under a tag pointing elsewhere: a poisoned entry is overwritten).
    /// An entry that another build of the run pushes, or that a lookup
    /// found right, counts as present without a request.
    pub fn push(&self, warn: &(dyn Fn(Warning) + Sync)) -> Pushed {
        let (rpms, layers) = {
            let mut t = self.tally();
            (
                std::mem::take(&mut t.rpms_to_push),
                std::mem::take(&mut t.layers_to_push),
            )
        };
        let mut pushed = Pushed::default();
        if rpms.is_empty() && layers.is_empty() {
            return pushed;
        }
        let Some(mut session) = self.session(warn) else {
            return pushed;
        };
        for (digest, path, size, name) in rpms {
            let size = if size > 0 {
                size
            } else {
                std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            };
            let entry = Entry {
                tag: rpm_tag(&digest),
                artifact_type: ARTIFACT_RPM,
                media_type: ARTIFACT_RPM,
                digest,
                size,
                annotations: json!({ ANNOTATION_TITLE: name }),
            };
            self.push_once(&mut session, &entry, &path, &mut pushed, warn);
        }
        for (key, layer) in layers {
            let entry = Entry {
                tag: layer_tag(&key),
                artifact_type: ARTIFACT_LAYER,
                media_type: layer.media_type,
                digest: layer.digest.clone(),
                size: layer.size,
                annotations: json!({
                    ANNOTATION_UNCOMPRESSED: layer.uncompressed_size.to_string(),
                    "dev.minibuild.diff-id": layer.diff_id.to_string(),
                }),
            };
            self.push_once(&mut session, &entry, &layer.path_of_blob, &mut pushed, warn);
        }
        pushed
    }

    /// Push `entry` unless it is settled for the run; a failed push is
    /// left for another build of the run to try.
    fn push_once(
        &self,
        session: &mut Session,
        entry: &Entry,
        blob: &Path,
        pushed: &mut Pushed,
        warn: &(dyn Fn(Warning) + Sync),
    ) {
        let state = self.state();
        if !state.claim(&entry.tag) {
            pushed.present += 1;
            return;
        }
        // A tag this run found missing needs no second look before the push.
        let check = state.looked(&entry.tag) != Some(Lookup::Missing);
        match push_entry(session, entry, blob, check) {
            Ok(Some(bytes)) => {
                pushed.entries += 1;
                pushed.bytes += bytes;
            }
            Ok(None) => pushed.present += 1,
            Err(e) => {
                locked(&state.settled).remove(&entry.tag);
                warn(format!(
                    "cannot push {} to cache repo {}: {e}",
                    entry.tag,
                    self.repo.name()
                ))
            }
        }
    }
}

/// What [`Shared::push`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pushed {
    /// Entries written (tag and manifest), and the blob bytes uploaded.
    pub entries: u64,
    pub bytes: u64,
    /// Entries the repo already had, as they should be.
    pub present: u64,
}

/// One cache entry: a tag, an artifact manifest, one blob.
struct Entry {
    tag: String,
    artifact_type: &'static str,
    media_type: &'static str,
    digest: Digest,
    size: u64,
    annotations: Value,
}

impl Entry {
    fn manifest(&self) -> Vec<u8> {
        let v = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "artifactType": self.artifact_type,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": Digest::sha256_of(EMPTY_JSON).to_string(),
                "size": EMPTY_JSON.len(),
            },
            "layers": [{
                "mediaType": self.media_type,
                "digest": self.digest.to_string(),
                "size": self.size,
                "annotations": self.annotations,
            }],
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Push `entry` unless (`check`) its tag already names its blob:
/// Some(bytes uploaded) when written, None when already there.
fn push_entry(
    session: &mut Session,
    entry: &Entry,
    blob: &Path,
    check: bool,
) -> Result<Option<u64>, PushError> {
    if check {
        if let Ok(Some(found)) = the_layer(session, &entry.tag) {
            if found.digest == entry.digest {
                return Ok(None);
            }
        }
    }
    let uploaded = session.put_blob_file(&entry.digest, blob, entry.size)?;
    session.put_blob_bytes(EMPTY_JSON)?;
    session.put_manifest(&entry.tag, MEDIA_TYPE_MANIFEST, &entry.manifest())?;
    Ok(Some(if uploaded { entry.size } else { 0 }))
}

/// The one layer of the artifact manifest under `tag`, as found.
#[derive(Debug)]
struct Found {
    digest: Digest,
    size: u64,
    uncompressed: Option<u64>,
}

/// Read the manifest under `tag`: None when there is none; an error when
/// it is not a one-layer artifact manifest.
fn the_layer(session: &mut Session, tag: &str) -> Result<Option<Found>, String> {
    let Some(manifest) = session
        .manifest(tag, &[MEDIA_TYPE_MANIFEST])
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    parse_entry(&manifest.bytes).map(Some)
}

fn parse_entry(bytes: &[u8]) -> Result<Found, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("its manifest is not JSON: {e}"))?;
    let layers = v["layers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let [layer] = layers else {
        return Err(format!("its manifest has {} layers, not one", layers.len()));
    };
    let digest = layer["digest"]
        .as_str()
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or("its layer has no valid digest")?;
    let size = layer["size"].as_u64().ok_or("its layer has no size")?;
    let uncompressed = layer["annotations"][ANNOTATION_UNCOMPRESSED]
        .as_str()
        .and_then(|s| s.parse().ok());
    Ok(Found {
        digest,
        size,
        uncompressed,
    })
}

/// The RPM `expected` into `dest`: Some(bytes) on a hit, None when the repo
/// has no entry. An entry naming another digest or size is refused before
/// anything is downloaded; the blob must hash to `expected` as it streams.
fn fetch_rpm(
    session: &mut Session,
    expected: &Digest,
    size: u64,
    dest: &Path,
) -> Result<Option<u64>, String> {
    let Some(found) = the_layer(session, &rpm_tag(expected))? else {
        return Ok(None);
    };
    if &found.digest != expected {
        return Err(format!(
            "it points to {}, not {expected} (the repo's checksum)",
            found.digest
        ));
    }
    if size > 0 && found.size != size {
        return Err(format!("it says {} bytes, the repo {size}", found.size));
    }
    let max = if size > 0 {
        size
    } else {
        crate::cache::UNDECLARED_MAX
    };
    session
        .blob_to_file(expected, dest, max)
        .map_err(|e| e.to_string())
}

/// The layer under `key` into `dest`: its (digest, size, uncompressed
/// size), or None when the repo has no entry.
fn fetch_layer(
    session: &mut Session,
    key: &str,
    dest: &Path,
) -> Result<Option<(Digest, u64, u64)>, String> {
    let Some(found) = the_layer(session, &layer_tag(key))? else {
        return Ok(None);
    };
    let uncompressed = found
        .uncompressed
        .ok_or("its layer has no uncompressed-size annotation")?;
    match session
        .blob_to_file(&found.digest, dest, found.size.min(LAYER_MAX))
        .map_err(|e| e.to_string())?
    {
        Some(n) if n == found.size => Ok(Some((found.digest, n, uncompressed))),
        Some(n) => Err(format!(
            "its blob has {n} bytes, its manifest says {}",
            found.size
        )),
        None => Ok(None),
    }
}

/// Whether layers of `compression` go through the cache (uncompressed ones
/// are not cached locally either: the blob is the tar).
pub fn caches_layers(compression: Compression) -> bool {
    compression != Compression::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_valid_and_content_addressed() {
        let d = Digest::sha256_of(b"rpm");
        let tag = rpm_tag(&d);
        assert_eq!(tag, format!("rpm-sha256-{}", d.hex()));
        let r: Reference = format!("127.0.0.1:5000/cache:{tag}").parse().unwrap();
        assert_eq!(r.tag(), Some(tag.as_str()));
        let key = format!("pgzip-6.0123456789ab-{}", d.hex());
        let r: Reference = format!("127.0.0.1:5000/cache:{}", layer_tag(&key))
            .parse()
            .unwrap();
        assert!(r.tag().unwrap().len() <= 128);
    }

    #[test]
    fn entry_manifest_round_trips() {
        let d = Digest::sha256_of(b"blob");
        let e = Entry {
            tag: "t".into(),
            artifact_type: ARTIFACT_LAYER,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            digest: d.clone(),
            size: 4,
            annotations: json!({ ANNOTATION_UNCOMPRESSED: "10" }),
        };
        let found = parse_entry(&e.manifest()).unwrap();
        assert_eq!(
            (found.digest, found.size, found.uncompressed),
            (d, 4, Some(10))
        );
        let v: Value = serde_json::from_slice(&e.manifest()).unwrap();
        assert_eq!(v["artifactType"], ARTIFACT_LAYER);
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert!(parse_entry(b"<html>").is_err());
        assert!(parse_entry(br#"{"layers":[]}"#)
            .unwrap_err()
            .contains("0 layers"));
        assert!(parse_entry(br#"{"layers":[{"digest":"md5:x","size":1}]}"#).is_err());
        let two = format!(
            r#"{{"layers":[{{"digest":"{0}","size":1}},{{"digest":"{0}","size":1}}]}}"#,
            Digest::sha256_of(b"")
        );
        assert!(parse_entry(two.as_bytes())
            .unwrap_err()
            .contains("2 layers"));
    }

    #[test]
    fn clones_share_one_lookup_per_tag_and_one_push() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let repo = CacheRepo::parse("127.0.0.1:5000/ci/cache", PushOptions::default()).unwrap();
        let clones: Vec<CacheRepo> = (0..6).map(|_| repo.clone()).collect();
        let looks = AtomicUsize::new(0);
        let tags = ["a", "b", "a", "a", "b", "a"];
        let answers = crate::pool::map(
            &tags,
            6,
            |_| false,
            |i, tag| {
                clones[i].state.look_once(tag, || {
                    looks.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    Some(if *tag == "a" {
                        Lookup::Hit
                    } else {
                        Lookup::Missing
                    })
                })
            },
        );
        assert_eq!(looks.load(Ordering::SeqCst), 2);
        assert_eq!(answers.iter().flatten().flatten().count(), 2);
        let state = &repo.state;
        assert_eq!(state.looked("b"), Some(Lookup::Missing));
        // A hit is settled: nobody pushes it; a missing tag is pushed once.
        assert!(!state.claim("a"));
        assert!(state.claim("b"));
        assert!(!clones[3].state.claim("b"));
        // A hit a later check refused is pushed again.
        state.refused("a");
        assert_eq!(state.looked("a"), Some(Lookup::Refused));
        assert!(state.claim("a"));
        // A registry that could not be asked records nothing.
        assert_eq!(state.look_once("c", || None), None);
        assert_eq!(state.looked("c"), None);
        assert_eq!(
            state.look_once("c", || Some(Lookup::Missing)),
            Some(Lookup::Missing)
        );
        // Another run (another parse) knows nothing of this one.
        let other = CacheRepo::parse("127.0.0.1:5000/ci/cache", PushOptions::default()).unwrap();
        assert_eq!(other.state.looked("b"), None);
    }

    #[test]
    fn parse_takes_a_repo_with_or_without_tag() {
        let r = CacheRepo::parse("127.0.0.1:5000/ci/cache", PushOptions::default()).unwrap();
        assert_eq!(r.name(), "127.0.0.1:5000/ci/cache");
        assert!(r.opts.retries <= 1);
        assert!(CacheRepo::parse("nohost", PushOptions::default()).is_err());
    }
}
