//! What a build has to say, as data: one [`Event`] per fact. The CLI's
//! printer decides the form (bars, plain lines, JSON lines); the text of a
//! plain line is the event's `Display`, so every form says the same thing.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::human_bytes;

/// How a plain log shows an event: a timed step, an indented fact, or a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A step that starts now (`[  0.12s] Resolving …`).
    Step,
    /// A fact worth a line, indented under its step.
    Info,
    /// Needs attention; shown even with `--quiet`.
    Warning,
}

/// One account created in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    /// The user's uid, or the group's gid.
    pub id: u32,
    /// A user's primary gid; `None` for a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// A package whose scriptlets were not run, and what they would have done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotRun {
    pub package: String,
    pub what: String,
}

/// Everything the pipeline and the commands report. JSON: an object with
/// `"event"` (the variant in snake_case) and the fields below.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A warning about the recipe or the command line, already worded.
    Warning {
        message: String,
    },
    /// The plan comes from the lock beside the recipe.
    UsingLock {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    /// A repo whose package signatures are not checked.
    SignaturesUnchecked {
        repo: String,
    },
    LoadingRepo {
        repo: String,
        arch: String,
        /// The mirror, metalink or mirrorlist the metadata comes from.
        from: String,
    },
    /// The mirror a metalink or mirrorlist led to.
    MirrorPicked {
        repo: String,
        baseurl: String,
        via: String,
    },
    RepoLoaded {
        repo: String,
        packages: usize,
        revision: String,
        millis: f64,
    },
    /// A repo another recipe of the same run already loaded: not loaded again.
    RepoShared {
        repo: String,
        arch: String,
        packages: usize,
    },
    /// An event of one recipe among several built in one run. Its JSON
    /// form is the inner event's with a `"recipe"` field (see
    /// [`Event::parts`]); the plain line starts with `RECIPE: `.
    Recipe {
        recipe: String,
        #[serde(skip)]
        event: Box<Event>,
    },
    /// primary.xml cannot answer a file requirement: the file lists are read.
    LoadingFileLists {
        repo: String,
        arch: String,
    },
    Resolving {
        arch: String,
        requests: Vec<String>,
    },
    /// A package the resolver left out (the package manager, when not wanted).
    LeftOut {
        package: String,
        why: String,
    },
    Resolved {
        arch: String,
        packages: usize,
        download_bytes: u64,
        installed_bytes: u64,
        millis: f64,
    },
    /// A temporary left by a killed build, removed.
    DebrisRemoved {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    Fetching {
        arch: String,
        packages: usize,
        bytes: u64,
    },
    /// A cached RPM failed its checksum and is downloaded again.
    CacheEntryDropped {
        package: String,
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    Fetched {
        arch: String,
        downloaded: u64,
        downloaded_bytes: u64,
        cached: u64,
        cached_bytes: u64,
    },
    SignaturesVerified {
        verified: usize,
        packages: usize,
    },
    Unpacking {
        packages: usize,
    },
    PathsExcluded {
        package: String,
        paths: Vec<String>,
    },
    DeviceNodeSkipped {
        package: String,
        path: String,
    },
    Unpacked {
        paths: usize,
    },
    ScriptletsNotRun {
        packages: Vec<NotRun>,
    },
    /// A scriptlet's effect done in its stead (`alternatives`, `shells`…).
    EffectDone {
        pass: String,
        package: Option<String>,
        what: String,
    },
    /// A scriptlet's effect recognised but not done.
    NotDone {
        pass: String,
        package: String,
        why: String,
    },
    /// A recipe `[[copy]]` put into the tree.
    Copied {
        #[serde(serialize_with = "as_text")]
        src: PathBuf,
        dest: String,
        paths: usize,
    },
    BusyboxLinks {
        binary: String,
        created: usize,
        existing: usize,
    },
    SetuidCleared {
        path: String,
        mode: u32,
    },
    PackageManagerRemoved {
        packages: Vec<String>,
        paths: usize,
    },
    /// A removed package's directory kept for other packages' paths.
    DirectoryKept {
        path: String,
    },
    /// A symlink whose target went with the package manager.
    SymlinkDangles {
        path: String,
        target: String,
        package: Option<String>,
    },
    /// A requirement only a removed package-manager package provided.
    RequirementBroken {
        package: String,
        requires: String,
        removed: Vec<String>,
    },
    AccountsCreated {
        users: Vec<Account>,
        groups: Vec<Account>,
    },
    /// An owner the image's passwd/group does not know, mapped to root.
    UnknownOwner {
        owner: String,
    },
    TrustStore {
        anchors: usize,
        tls: usize,
        distrusted: usize,
    },
    TrustSourceIgnored {
        path: String,
        why: String,
    },
    LinkerCache {
        libraries: usize,
        dirs: Vec<String>,
    },
    NoLinkerCache {
        arch: String,
    },
    /// A finding of the image check (`check::check`).
    CheckFinding {
        severity: String,
        path: String,
        message: String,
    },
    FifoSkipped {
        path: String,
    },
    /// The recipe's `[check]` gates passed on one platform of the image written.
    GatesPassed {
        platform: String,
        /// The measured figures, `max_size: 12.3 MB`-style.
        figures: Vec<String>,
    },
    RootfsWritten {
        #[serde(serialize_with = "as_text")]
        dir: PathBuf,
    },
    WritingLayer {
        arch: String,
    },
    /// `--cache-repo`: unreachable, refused credentials, or an entry refused
    /// (named in the message); the build goes on without it.
    CacheRepoWarning {
        repo: String,
        message: String,
    },
    /// `--cache-repo`: what came from the shared cache (verified).
    CacheRepoHits {
        repo: String,
        rpms: u64,
        rpm_bytes: u64,
        layers: u64,
        layer_bytes: u64,
    },
    /// `--cache-repo`: entries pushed after the build.
    CacheRepoPushed {
        repo: String,
        entries: u64,
        bytes: u64,
        present: u64,
    },
    /// `[image] base`: the core's tree is built first, as the first layer.
    BuildingCore {
        arch: String,
        #[serde(serialize_with = "as_text")]
        recipe: PathBuf,
        packages: usize,
    },
    /// A published base image (`[image] base = "REGISTRY/REPO:TAG"`), pulled
    /// or found in the cache, with its rpmdb read.
    BaseImagePulled {
        arch: String,
        reference: String,
        digest: String,
        layers: usize,
        bytes: u64,
        packages: usize,
    },
    /// The app's layer over the core: paths it adds or changes, whiteouts.
    AppLayerDiffed {
        arch: String,
        /// What the layer sits on: `the core` or `the base image REF`.
        over: String,
        paths: usize,
        whiteouts: usize,
    },
    /// A bad layer-cache entry, dropped; the layer is compressed again.
    LayerCacheEntryReplaced {
        why: String,
    },
    LayerWritten {
        arch: String,
        digest: String,
        size: u64,
        uncompressed_size: u64,
        /// The compressed blob came from the layer cache.
        reused: bool,
    },
    ImageWritten {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
        digest: String,
    },
    SbomWritten {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    ProvenanceWritten {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    Pushing {
        #[serde(serialize_with = "as_text")]
        image: PathBuf,
        reference: String,
    },
    /// One step of a push (a blob skipped or uploaded, a manifest stored, a retry).
    PushStep {
        message: String,
    },
    Pushed {
        blobs_uploaded: usize,
        bytes_uploaded: u64,
        blobs_skipped: usize,
    },
    /// An SBOM attached to the pushed image.
    Attached {
        message: String,
    },
    LockUpToDate {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
    },
    LockWritten {
        #[serde(serialize_with = "as_text")]
        path: PathBuf,
        packages: usize,
    },
    Vendored {
        #[serde(serialize_with = "as_text")]
        dir: PathBuf,
        repo: String,
        arch: String,
        packages: usize,
        bytes: u64,
    },
    /// SIGINT or SIGTERM arrived: the temporaries were removed and the
    /// process exits 128 + the signal's number.
    Interrupted {
        signal: String,
        removed: usize,
    },
}

/// Paths as text in JSON: serde refuses a non-UTF-8 path.
fn as_text<S: serde::Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&path.display())
}

impl Event {
    /// How a plain log shows it.
    pub fn level(&self) -> Level {
        use Event::*;
        match self {
            Recipe { event, .. } => event.level(),
            Warning { .. }
            | SignaturesUnchecked { .. }
            | CacheEntryDropped { .. }
            | DeviceNodeSkipped { .. }
            | NotDone { .. }
            | SymlinkDangles { .. }
            | RequirementBroken { .. }
            | UnknownOwner { .. }
            | TrustSourceIgnored { .. }
            | NoLinkerCache { .. }
            | CheckFinding { .. }
            | FifoSkipped { .. }
            | CacheRepoWarning { .. }
            | LayerCacheEntryReplaced { .. }
            | Interrupted { .. } => Level::Warning,
            UsingLock { .. }
            | LoadingRepo { .. }
            | LoadingFileLists { .. }
            | Resolving { .. }
            | Fetching { .. }
            | Unpacking { .. }
            | RootfsWritten { .. }
            | WritingLayer { .. }
            | BuildingCore { .. }
            | BaseImagePulled { .. }
            | ImageWritten { .. }
            | Pushing { .. }
            | LockUpToDate { .. }
            | LockWritten { .. }
            | Vendored { .. } => Level::Step,
            _ => Level::Info,
        }
    }

    /// `self` as an event of recipe `recipe` (several recipes in one run).
    pub fn in_recipe(self, recipe: &str) -> Event {
        Event::Recipe {
            recipe: recipe.to_string(),
            event: Box::new(self),
        }
    }

    /// The recipe an event belongs to (when several run) and the event itself.
    pub fn parts(&self) -> (Option<&str>, &Event) {
        match self {
            Event::Recipe { recipe, event } => {
                let (_, inner) = event.parts();
                (Some(recipe), inner)
            }
            _ => (None, self),
        }
    }

    /// The `"event"` name of its JSON form.
    pub fn name(&self) -> String {
        if let Event::Recipe { event, .. } = self {
            return event.name();
        }
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => match map.get("event") {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }
}

/// The plain-log text (without the step time or indent). A few events take
/// two lines, separated by `\n`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Event::*;
        match self {
            Warning { message } => f.write_str(message),
            UsingLock { path } => write!(f, "Using {}", path.display()),
            SignaturesUnchecked { repo } => write!(
                f,
                "repo `{repo}`: package signatures are NOT checked (gpgcheck off); recorded in the SBOM and provenance"
            ),
            LoadingRepo { repo, arch, from } => {
                write!(f, "Loading metadata of {repo} ({arch}) from {from}")
            }
            MirrorPicked { repo, baseurl, via } => {
                write!(f, "{repo}: mirror {baseurl} (from {via})")
            }
            RepoLoaded {
                repo,
                packages,
                revision,
                millis,
            } => write!(
                f,
                "{repo}: {packages} packages, revision {revision} (loaded in {millis:.1} ms)"
            ),
            RepoShared {
                repo,
                arch,
                packages,
            } => write!(
                f,
                "{repo} ({arch}): {packages} packages, already loaded for another recipe"
            ),
            Recipe { recipe, event } => write!(f, "{recipe}: {event}"),
            LoadingFileLists { repo, arch } => write!(f, "Loading file lists of {repo} ({arch})"),
            Resolving { arch, requests } => {
                write!(f, "Resolving {} for {arch}", requests.join(", "))
            }
            LeftOut { package, why } => write!(f, "left out {package}: {why}"),
            Resolved {
                packages,
                download_bytes,
                installed_bytes,
                millis,
                ..
            } => write!(
                f,
                "Resolved in {millis:.1} ms\n{packages} packages: {} to download, {} installed",
                human_bytes(*download_bytes),
                human_bytes(*installed_bytes)
            ),
            DebrisRemoved { path } => write!(
                f,
                "removed {}, left by an interrupted build",
                path.display()
            ),
            Fetching { arch, packages, .. } => write!(f, "Fetching {packages} packages for {arch}"),
            CacheEntryDropped { package, path } => write!(
                f,
                "cache entry {} of {package} did not match its checksum: dropped, downloading it again",
                path.display()
            ),
            Fetched {
                downloaded,
                downloaded_bytes,
                cached,
                cached_bytes,
                ..
            } => write!(
                f,
                "{downloaded} downloaded ({}), {cached} from the cache ({})",
                human_bytes(*downloaded_bytes),
                human_bytes(*cached_bytes)
            ),
            SignaturesVerified { verified, packages } => {
                write!(f, "{verified} of {packages} package signatures verified")
            }
            Unpacking { packages } => write!(f, "Unpacking {packages} packages"),
            PathsExcluded { package, paths } => write!(
                f,
                "{package}: left out by exclude_paths: {}",
                paths.join(", ")
            ),
            DeviceNodeSkipped { package, path } => write!(
                f,
                "{package}: device node /{path} left out (images cannot carry device nodes rootless)"
            ),
            Unpacked { paths } => write!(f, "{paths} paths"),
            ScriptletsNotRun { packages } => {
                f.write_str("scriptlets not run: ")?;
                for (i, p) in packages.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{} ({})", p.package, p.what)?;
                }
                Ok(())
            }
            EffectDone {
                pass,
                package,
                what,
            } => {
                let by = package
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default();
                write!(f, "scriptlet effect, {pass}{by}: {what}")
            }
            NotDone { pass, package, why } => {
                write!(f, "scriptlet effect not done, {pass} ({package}): {why}")
            }
            Copied { src, dest, paths } => {
                write!(f, "copied {} → {dest} ({paths} paths)", src.display())
            }
            BusyboxLinks {
                binary,
                created,
                existing,
            } => write!(
                f,
                "busybox applet links: {created} → /{binary} ({existing} paths already there, kept)"
            ),
            SetuidCleared { path, mode } => {
                write!(f, "cleared setuid/setgid on /{path} (was {mode:04o})")
            }
            PackageManagerRemoved { packages, paths } => write!(
                f,
                "removed the package manager: {} ({paths} paths; set `package_manager = true` in [options] to keep it)",
                packages.join(", ")
            ),
            DirectoryKept { path } => write!(
                f,
                "kept /{path}: a removed package's directory that still holds other packages' paths"
            ),
            SymlinkDangles {
                path,
                target,
                package,
            } => write!(
                f,
                "/{path} ({}) → {target} dangles: its target went with the package manager",
                package.as_deref().unwrap_or("no package")
            ),
            RequirementBroken {
                package,
                requires,
                removed,
            } => write!(
                f,
                "{package} requires `{requires}`, which only the removed package-manager package {} provided",
                removed.join(", ")
            ),
            AccountsCreated { users, groups } => {
                let users: Vec<String> = users
                    .iter()
                    .map(|u| format!("{} ({}:{})", u.name, u.id, u.gid.unwrap_or(u.id)))
                    .collect();
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| format!("{} ({})", g.name, g.id))
                    .collect();
                write!(
                    f,
                    "accounts created: users {}; groups {}",
                    users.join(", "),
                    groups.join(", ")
                )
            }
            UnknownOwner { owner } => write!(
                f,
                "owner not in the image's /etc/passwd or /etc/group, using root:{owner}"
            ),
            TrustStore {
                anchors,
                tls,
                distrusted,
            } => write!(
                f,
                "CA trust store: {anchors} anchors ({tls} for TLS), {distrusted} distrusted"
            ),
            TrustSourceIgnored { path, why } => write!(f, "trust source /{path} ignored: {why}"),
            LinkerCache { libraries, dirs } => write!(
                f,
                "/etc/ld.so.cache: {libraries} libraries from {}",
                dirs.join(" ")
            ),
            NoLinkerCache { arch } => write!(
                f,
                "no /etc/ld.so.cache for {arch}: its cache flags are not known to minibuild"
            ),
            CheckFinding { path, message, .. } => write!(f, "check: {path}: {message}"),
            FifoSkipped { path } => write!(f, "--rootfs: fifo /{path} not created"),
            GatesPassed { platform, figures } => {
                write!(f, "[check] gates passed for {platform}: {}", figures.join(", "))
            }
            RootfsWritten { dir } => {
                write!(f, "Wrote the root filesystem to {}", dir.display())
            }
            WritingLayer { arch } => write!(f, "Writing the {arch} layer"),
            CacheRepoWarning { message, .. } => f.write_str(message),
            CacheRepoHits {
                repo,
                rpms,
                rpm_bytes,
                layers,
                layer_bytes,
            } => write!(
                f,
                "cache repo {repo}: {rpms} RPM(s) ({}) and {layers} layer(s) ({}) from the shared cache",
                human_bytes(*rpm_bytes),
                human_bytes(*layer_bytes)
            ),
            CacheRepoPushed {
                repo,
                entries,
                bytes,
                present,
            } => write!(
                f,
                "cache repo {repo}: pushed {entries} entr{} ({} uploaded), {present} already there",
                if *entries == 1 { "y" } else { "ies" },
                human_bytes(*bytes)
            ),
            BuildingCore {
                arch,
                recipe,
                packages,
            } => write!(
                f,
                "Building the {arch} core layer from {} ({packages} packages)",
                recipe.display()
            ),
            BaseImagePulled {
                arch,
                reference,
                digest,
                layers,
                bytes,
                packages,
            } => write!(
                f,
                "Base image {reference} for {arch}: {digest}, {layers} layers ({}), {packages} packages installed",
                crate::report::human_bytes(*bytes)
            ),
            AppLayerDiffed {
                arch,
                over,
                paths,
                whiteouts,
            } => write!(
                f,
                "{arch} app layer over {over}: {paths} paths added or changed, {whiteouts} removed"
            ),
            Interrupted { signal, removed } => write!(
                f,
                "interrupted by {signal}; removed {removed} temporary file(s) or dir(s)"
            ),
            LayerCacheEntryReplaced { why } => write!(
                f,
                "layer cache: the entry for this layer was bad ({why}); dropped it and compressed the layer again"
            ),
            LayerWritten {
                digest,
                size,
                uncompressed_size,
                reused,
                ..
            } => write!(
                f,
                "layer {digest} ({} compressed, {} uncompressed{})",
                human_bytes(*size),
                human_bytes(*uncompressed_size),
                if *reused {
                    "; same tar as an earlier build, compressed blob reused"
                } else {
                    ""
                }
            ),
            ImageWritten { path, .. } => write!(f, "Wrote {}", path.display()),
            SbomWritten { path } | ProvenanceWritten { path } => {
                write!(f, "wrote {}", path.display())
            }
            Pushing { image, reference } => {
                write!(f, "Pushing {} to {reference}", image.display())
            }
            PushStep { message } | Attached { message } => f.write_str(message),
            Pushed {
                blobs_uploaded,
                bytes_uploaded,
                blobs_skipped,
            } => write!(
                f,
                "{blobs_uploaded} blobs uploaded ({}), {blobs_skipped} already there",
                human_bytes(*bytes_uploaded)
            ),
            LockUpToDate { path } => write!(
                f,
                "{} is up to date (use --update to re-resolve)",
                path.display()
            ),
            LockWritten { path, packages } => {
                write!(f, "Wrote {} ({packages} packages)", path.display())
            }
            Vendored {
                dir,
                repo,
                arch,
                packages,
                bytes,
            } => write!(
                f,
                "{}/{repo}/{arch}: {packages} packages ({})",
                dir.display(),
                human_bytes(*bytes)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_the_event_and_paths_are_text() {
        let e = Event::ImageWritten {
            path: PathBuf::from("/o/app.oci.tar"),
            digest: "sha256:ab".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"event": "image_written", "path": "/o/app.oci.tar", "digest": "sha256:ab"})
        );
        assert_eq!(e.name(), "image_written");
        assert_eq!(e.level(), Level::Step);
        assert_eq!(e.to_string(), "Wrote /o/app.oci.tar");
    }

    #[test]
    fn a_recipe_event_is_its_inner_event_named() {
        let inner = Event::Unpacking { packages: 3 };
        let e = inner.clone().in_recipe("a.toml");
        assert_eq!(e.name(), "unpacking");
        assert_eq!(e.level(), Level::Step);
        assert_eq!(e.to_string(), "a.toml: Unpacking 3 packages");
        assert_eq!(e.parts(), (Some("a.toml"), &inner));
        assert_eq!(inner.parts(), (None, &inner));
    }

    #[test]
    fn plain_text_of_multi_part_events() {
        let e = Event::Resolved {
            arch: "x86_64".into(),
            packages: 3,
            download_bytes: 1536,
            installed_bytes: 4 << 20,
            millis: 12.34,
        };
        assert_eq!(
            e.to_string(),
            "Resolved in 12.3 ms\n3 packages: 1.5 KiB to download, 4.0 MiB installed"
        );
        let e = Event::ScriptletsNotRun {
            packages: vec![
                NotRun {
                    package: "a".into(),
                    what: "post".into(),
                },
                NotRun {
                    package: "b".into(),
                    what: "pre, post".into(),
                },
            ],
        };
        assert_eq!(e.to_string(), "scriptlets not run: a (post); b (pre, post)");
        let e = Event::AccountsCreated {
            users: vec![Account {
                name: "app".into(),
                id: 1000,
                gid: Some(1001),
            }],
            groups: vec![Account {
                name: "app".into(),
                id: 1001,
                gid: None,
            }],
        };
        assert_eq!(
            e.to_string(),
            "accounts created: users app (1000:1001); groups app (1001)"
        );
        assert_eq!(e.level(), Level::Info);
    }
}
