//! Unpacking one RPM into the [`Tree`] without running anything from it.
//!
//! The lead, signature header and main header come already parsed
//! ([`RpmFile`], read once per build); the payload is streamed from the
//! file, decompressed as a stream and read member by member
//! ([`super::cpio`]). As in rpm itself, the header is the source of truth
//! for metadata (type, mode, owner names, mtime, symlink target, flags,
//! language, capabilities, hardlink identity); the payload only supplies
//! file contents, appended to the staging pack. Payload names never
//! become host paths: each header path is resolved inside the tree
//! ([`Tree::resolve`]).
//!
//! Hardlinks: files of one package sharing `(FILEDEVICES, FILEINODES)` form
//! a set whose content is stored once, with the set's last member in the
//! archive (rpm's `rpmfiArchiveReadHeader`); all kept members share that
//! blob and a `link_id`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use rpm::IndexTag;

use crate::package::file::{ReadError, RpmFile};

use super::cpio::{bound_exceeded, Bounded, CpioError, CpioReader, Member};
use super::exclude::{excluded_by, PathPattern};
use super::filedigest::FileDigests;
use super::payload::Compressor;
use super::staging::{Blob, Staging};
use super::tree::{Inserted, TreeError};
use super::{caps, Entry, Kind, Tree};

/// What to leave out while unpacking (the recipe's `[options]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Install `%doc` files. `%license` files are always installed, as with
    /// `dnf --nodocs`.
    pub docs: bool,
    /// Languages to keep for `%lang(..)` files (rpm's `%_install_langs`);
    /// `"all"` keeps every language. Untagged files and files tagged `C` or
    /// `POSIX` are always kept.
    pub langs: Vec<String>,
    /// Carry `FILECAPS` as `security.capability` xattrs. Default on: tools
    /// like `ping` or `newuidmap` need their capabilities to work.
    pub keep_caps: bool,
    /// Paths no package installs (`options.exclude_paths`), matched on the
    /// header path and on the path it resolves to in the image.
    pub exclude_paths: Vec<PathPattern>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            docs: false,
            langs: vec!["C".to_string()],
            keep_caps: true,
            exclude_paths: Vec::new(),
        }
    }
}

/// Scriptlet kinds found in a header; none of them is ever run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScriptletKind {
    PreTrans,
    PreIn,
    PostIn,
    PreUn,
    PostUn,
    PostTrans,
    PreUnTrans,
    PostUnTrans,
    Verify,
    Trigger,
    FileTrigger,
    TransFileTrigger,
}

impl fmt::Display for ScriptletKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScriptletKind::PreTrans => "%pretrans",
            ScriptletKind::PreIn => "%pre",
            ScriptletKind::PostIn => "%post",
            ScriptletKind::PreUn => "%preun",
            ScriptletKind::PostUn => "%postun",
            ScriptletKind::PostTrans => "%posttrans",
            ScriptletKind::PreUnTrans => "%preuntrans",
            ScriptletKind::PostUnTrans => "%postuntrans",
            ScriptletKind::Verify => "%verifyscript",
            ScriptletKind::Trigger => "%trigger",
            ScriptletKind::FileTrigger => "%filetrigger",
            ScriptletKind::TransFileTrigger => "%transfiletrigger",
        })
    }
}

/// A scriptlet the package carries and minibuild did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedScriptlet {
    pub kind: ScriptletKind,
    /// The interpreter and its arguments (`/bin/sh`, `<lua>`), if recorded.
    pub interpreter: Vec<String>,
    pub body: String,
    /// For triggers: the package names or paths that fire it.
    pub triggered_by: Vec<String>,
}

/// Per-package facts for the build report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageReport {
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
    pub name: String,
    /// RPMTAG_BUILDTIME, for a SOURCE_DATE_EPOCH default.
    pub build_time: u64,
    pub scriptlets: Vec<SkippedScriptlet>,
    /// Character/block devices and sockets, not representable rootless.
    pub skipped_devices: Vec<String>,
    pub skipped_docs: usize,
    pub skipped_langs: usize,
    pub skipped_ghosts: usize,
    /// Header paths left out by `exclude_paths`.
    pub excluded: Vec<String>,
    /// Header file indices left out on purpose (docs, languages,
    /// `exclude_paths`, directories they emptied): rpm's "not installed"
    /// state in the image's rpmdb.
    pub not_installed: BTreeSet<usize>,
    /// Paths placed in the tree (including identical duplicates).
    pub installed: usize,
    /// Directories whose metadata from this package lost to an earlier
    /// package's (see [`Inserted::KeptExistingDir`]).
    pub dir_metadata_kept: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot read the payload")]
    Open(#[source] ReadError),
    #[error("{path} has a malformed header: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("{path} is a source RPM; only binary RPMs can be installed")]
    SourcePackage { path: PathBuf },
    #[error("{path}: payload {what} `{value}` is not supported (minibuild reads cpio compressed with {}, as rpm does)\n  hint: rpmbuild writes only these; the package was made by another tool, or its header is damaged", super::payload::SUPPORTED)]
    Unsupported {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
    #[error("{nevra} ({path}): corrupt payload")]
    Payload {
        nevra: String,
        path: PathBuf,
        #[source]
        source: CpioError,
    },
    #[error("{nevra} ({path}): the decompressed payload passes {bound} bytes, {rule}; stopped before writing more\n  hint: the payload was altered after the header was made, or is a decompression bomb; report the package's source and turn gpgcheck on for its repo")]
    PayloadTooLarge {
        nevra: String,
        path: PathBuf,
        bound: u64,
        rule: PayloadRule,
    },
    #[error("{nevra}: payload member `{member}` is not in the header's file list")]
    UnknownMember { nevra: String, member: String },
    #[error("{nevra}: `{file}` is listed in the header but missing from the payload")]
    MissingMember { nevra: String, file: String },
    #[error("{nevra}: payload member `{file}` appears twice; refusing the package (rpm installs each header file once)\n  hint: the payload was altered after the header was made; report the package's source and turn gpgcheck on for its repo")]
    DuplicateMember { nevra: String, file: String },
    #[error("{nevra}: payload member `{file}` has {payload} bytes but the header says {header}; refusing the package\n  hint: the payload was altered after the header was made; report the package's source and turn gpgcheck on for its repo")]
    SizeMismatch {
        nevra: String,
        file: String,
        header: u64,
        payload: u64,
    },
    #[error("{nevra}: content of `{file}` has digest {actual} but the header says {expected}; refusing the package\n  hint: the payload was altered after the header was made; report the package's source and turn gpgcheck on for its repo")]
    DigestMismatch {
        nevra: String,
        file: String,
        expected: String,
        actual: String,
    },
    /// The host's fault (full, read-only), never the package's.
    #[error("{nevra}: cannot write `{file}` to the staging directory {}: {error}\n  hint: {}",
        dir.display(), super::staging::write_hint(error))]
    Staging {
        nevra: String,
        file: String,
        dir: PathBuf,
        error: io::Error,
    },
    #[error("{nevra}: cannot place `{file}` in the image")]
    Tree {
        nevra: String,
        file: String,
        #[source]
        source: Box<TreeError>,
    },
    #[error("{nevra}: `{file}`")]
    Caps {
        nevra: String,
        file: String,
        #[source]
        source: caps::CapsError,
    },
}

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

const RPMFILE_DOC: u32 = 1 << 1;
const RPMFILE_GHOST: u32 = 1 << 6;
const RPMFILE_LICENSE: u32 = 1 << 7;

/// One file of the header, by index.
#[derive(Debug)]
struct FileMeta {
    /// `/usr/bin/foo` as the header spells it.
    path: String,
    mode: u32,
    size: u64,
    mtime: u64,
    user: String,
    group: String,
    flags: u32,
    lang: String,
    linkto: String,
    caps: String,
    /// `(device, inode)`: equal keys within a package are hardlinks.
    dev_ino: (u32, u32),
}

/// Why a header file is not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Doc,
    Lang,
    Ghost,
    Device,
    Excluded,
}

/// rpm's "skip (now empty) directories that had skipped files": a
/// directory of the package whose direct children were all left out by the
/// doc or lang filters (at least one) is left out too, deepest first, as
/// `rpm --excludedocs` does (found by the dnf differential test:
/// `/usr/share/doc/bash` stayed, empty, with `docs = false`).
fn skip_emptied_dirs(files: &[FileMeta], skips: &mut [Option<Skip>]) {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    let mut dirs: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].mode & S_IFMT == S_IFDIR && skips[i].is_none())
        .collect();
    // Deepest first, so an emptied subdirectory counts as skipped for its parent.
    dirs.sort_by_key(|&i| std::cmp::Reverse(files[i].path.matches('/').count()));
    for d in dirs {
        let prefix = format!("{}/", files[d].path.trim_end_matches('/'));
        let mut reason = None;
        let mut kept = false;
        for (i, f) in files.iter().enumerate() {
            let Some(rest) = f.path.strip_prefix(&prefix) else {
                continue;
            };
            if rest.is_empty() || rest.contains('/') {
                continue;
            }
            match skips[i] {
                Some(r @ (Skip::Doc | Skip::Lang)) => reason = Some(r),
                _ => kept = true,
            }
        }
        if !kept && reason.is_some() {
            skips[d] = reason;
        }
    }
}

/// No payload expands beyond this, whatever its header declares: bigger
/// than any distribution package, small enough that a lying header cannot
/// fill a disk unnoticed (the free-space check sees the plan's sizes).
pub const MAX_PAYLOAD: u64 = 64 << 30;

/// Where a payload's bound comes from, for the error that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadRule {
    /// The header's `LONGARCHIVESIZE`/`ARCHIVESIZE`: rpm's size of the
    /// uncompressed cpio archive.
    ArchiveSize,
    /// No archive size tag: the most a newc archive of the header's files
    /// (their sizes and names) can take.
    FileList,
    /// [`MAX_PAYLOAD`], below what the header declares.
    HardCap,
}

impl fmt::Display for PayloadRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadRule::ArchiveSize => "the archive size its header declares and a cpio trailer",
            PayloadRule::FileList => "the most its header's file list allows",
            PayloadRule::HardCap => "minibuild's hard cap on one package's payload",
        })
    }
}

/// The newc trailer member: 110-byte header, `TRAILER!!!` + NUL, padded to 4.
const NEWC_TRAILER: u64 = 124;

/// How many decompressed bytes the payload of `meta` (with `files`) may
/// have. rpm ≥ 4.14 keeps the archive size in the signature header
/// (`PAYLOADSIZE`/`LONGARCHIVESIZE`), older rpm in the main header.
fn payload_bound(
    meta: &rpm::PackageMetadata,
    files: &[FileMeta],
) -> Result<(u64, PayloadRule), String> {
    use rpm::IndexSignatureTag as Sig;
    fn size_of<T: rpm::Tag + fmt::Debug>(
        h: &rpm::Header<T>,
        tags: [T; 2],
    ) -> Result<Option<u64>, String> {
        let Some(tag) = tags.into_iter().find(|&t| h.entry_is_present(t)) else {
            return Ok(None);
        };
        match h.get_entry_data_as_u64(tag) {
            Ok(v) => Ok(Some(v)),
            Err(_) => h
                .get_entry_data_as_u32(tag)
                .map(|v| Some(u64::from(v)))
                .map_err(|e| format!("{tag:?}: {e}")),
        }
    }
    let declared = match size_of(
        &meta.header,
        [
            IndexTag::RPMTAG_LONGARCHIVESIZE,
            IndexTag::RPMTAG_ARCHIVESIZE,
        ],
    )? {
        Some(size) => Some(size),
        None => size_of(
            &meta.signature,
            [Sig::RPMSIGTAG_LONGARCHIVESIZE, Sig::RPMSIGTAG_PAYLOADSIZE],
        )?,
    };
    let (declared, rule) = match declared {
        // Room for the trailer member: createrepo_c's test package
        // Rimmer-1.0.2-2 (rpm 4.11.90) declares 420 bytes and carries 544,
        // the 124 of the trailer; rpm never bounds by the size and installs it.
        Some(size) => (size.saturating_add(NEWC_TRAILER), PayloadRule::ArchiveSize),
        None => {
            // newc: 110-byte header, `./` + name + NUL, data, each padded to 4.
            let member = |name_len: u64, size: u64| (110 + name_len + 3 + 3) + size;
            let sum = files.iter().fold(member(11, 0), |acc, f| {
                acc.saturating_add(member(f.path.len() as u64 + 2, f.size))
            });
            (sum, PayloadRule::FileList)
        }
    };
    Ok(if declared > MAX_PAYLOAD {
        (MAX_PAYLOAD, PayloadRule::HardCap)
    } else {
        (declared, rule)
    })
}

/// Unpack `rpm` into `tree`, contents into `staging`.
pub fn unpack(
    tree: &mut Tree,
    staging: &mut Staging,
    rpm: &RpmFile,
    opts: &UnpackOptions,
) -> Result<PackageReport, UnpackError> {
    let rpm_path = rpm.path();
    let meta = rpm.metadata();
    if meta.is_source_package() {
        return Err(UnpackError::SourcePackage {
            path: rpm_path.to_path_buf(),
        });
    }
    let malformed = |what: String| UnpackError::Malformed {
        path: rpm_path.to_path_buf(),
        what,
    };
    let name = meta
        .get_name()
        .map_err(|e| malformed(format!("no name: {e}")))?
        .to_string();
    let nevra = nevra_of(meta);
    let files = read_file_list(&meta.header).map_err(malformed)?;
    let digests = FileDigests::read(&meta.header, files.len()).map_err(malformed)?;
    let mut report = PackageReport {
        nevra: nevra.clone(),
        name: name.clone(),
        build_time: meta.get_build_time().unwrap_or(0),
        scriptlets: scriptlets(meta).map_err(|e| malformed(format!("scriptlets: {e}")))?,
        ..Default::default()
    };

    let mut skips: Vec<Option<Skip>> = files.iter().map(|f| skip_reason(f, opts)).collect();
    if !opts.exclude_paths.is_empty() {
        for (f, skip) in files.iter().zip(skips.iter_mut()) {
            let resolved = tree.resolve(&f.path).unwrap_or_default();
            if excluded_by(&opts.exclude_paths, &[&f.path, &resolved]).is_some() {
                *skip = Some(Skip::Excluded);
            }
        }
    }
    skip_emptied_dirs(&files, &mut skips);
    let links = hardlink_sets(&files);

    let (bound, rule) = payload_bound(meta, &files).map_err(malformed)?;
    let reader = rpm.payload().map_err(UnpackError::Open)?;
    let payload = Box::new(Bounded::new(
        decompressor(&meta.header, reader, rpm_path)?,
        bound,
    ));
    let contents = read_payload(
        payload, &files, &digests, &skips, &links, staging, &nevra, rpm_path,
    )
    .map_err(|e| match e {
        UnpackError::Payload { source, .. } if bound_exceeded(&source).is_some() => {
            UnpackError::PayloadTooLarge {
                nevra: nevra.clone(),
                path: rpm_path.to_path_buf(),
                bound,
                rule,
            }
        }
        e => e,
    })?;

    // Hardlink sets: one blob (carried by one member) and one link id for
    // the kept members.
    let mut link_blob: HashMap<(u32, u32), (Blob, Option<u64>)> = HashMap::new();
    for (key, members) in &links {
        let kept: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| skips[i].is_none())
            .collect();
        if kept.is_empty() {
            continue;
        }
        let blob = match members.iter().find_map(|i| contents.get(i)) {
            Some(blob) => blob.clone(),
            // Every member was empty: no member carried data.
            None => write_blob(staging, &mut io::empty(), &nevra, &files[kept[0]].path)?,
        };
        let link_id = (kept.len() > 1).then(|| staging.new_link_id());
        link_blob.insert(*key, (blob, link_id));
    }

    for (i, f) in files.iter().enumerate() {
        if matches!(skips[i], Some(Skip::Doc | Skip::Lang | Skip::Excluded)) {
            report.not_installed.insert(i);
        }
        match skips[i] {
            Some(Skip::Doc) => report.skipped_docs += 1,
            Some(Skip::Lang) => report.skipped_langs += 1,
            Some(Skip::Ghost) => report.skipped_ghosts += 1,
            Some(Skip::Device) => report.skipped_devices.push(f.path.clone()),
            Some(Skip::Excluded) => report.excluded.push(f.path.clone()),
            None => {}
        }
        // `filesystem` owns `/` itself. A layer has no entry for its root
        // (the runtime owns it), so there is nothing to place.
        if super::tree::normalize(&f.path).is_empty() {
            continue;
        }
        let tree_err = |source| UnpackError::Tree {
            nevra: nevra.clone(),
            file: f.path.clone(),
            source: Box::new(source),
        };
        if skips[i] == Some(Skip::Ghost) {
            // Not created, but its directory is: the program that makes
            // the ghost at runtime expects it (e.g. /var/log/app/app.log).
            let at = tree.resolve(&f.path).map_err(tree_err)?;
            tree.ensure_parents(&at);
        }
        if skips[i].is_some() {
            continue;
        }
        let kind = match f.mode & S_IFMT {
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink {
                target: f.linkto.clone(),
            },
            S_IFIFO => Kind::Fifo,
            S_IFREG => {
                let (blob, link_id) = match link_blob.get(&f.dev_ino) {
                    Some((blob, link_id)) => (blob.clone(), *link_id),
                    None => match contents.get(&i) {
                        Some(blob) => (blob.clone(), None),
                        None => {
                            return Err(UnpackError::MissingMember {
                                nevra: nevra.clone(),
                                file: f.path.clone(),
                            })
                        }
                    },
                };
                Kind::File {
                    blob: blob.blob,
                    size: blob.size,
                    link_id,
                }
            }
            other => {
                return Err(UnpackError::Malformed {
                    path: rpm_path.to_path_buf(),
                    what: format!("`{}` has unknown file type {other:o}", f.path),
                })
            }
        };
        let mut xattrs = BTreeMap::new();
        if opts.keep_caps && !f.caps.is_empty() {
            let value = caps::to_xattr(&f.caps).map_err(|source| UnpackError::Caps {
                nevra: nevra.clone(),
                file: f.path.clone(),
                source,
            })?;
            if let Some(value) = value {
                xattrs.insert("security.capability".to_string(), value);
            }
        }
        let entry = Entry {
            kind,
            mode: f.mode & 0o7777,
            user: f.user.clone(),
            group: f.group.clone(),
            uid: 0,
            gid: 0,
            mtime: f.mtime,
            xattrs,
            package: Some(name.clone()),
        };
        // A lone file's blob is unused when an identical copy is already
        // installed (multilib `/usr/share` files): give it back to staging.
        let lone_blob = match &entry.kind {
            Kind::File {
                blob,
                link_id: None,
                ..
            } => Some(blob.clone()),
            _ => None,
        };
        let at = tree.resolve(&f.path).map_err(tree_err)?;
        match tree
            .insert(at.clone(), entry, staging, &nevra)
            .map_err(tree_err)?
        {
            Inserted::KeptExistingDir => report.dir_metadata_kept.push(at),
            Inserted::Identical => {
                if let Some(blob) = lone_blob {
                    // Best effort: a leftover blob only costs disk space.
                    staging.discard(&blob);
                }
            }
            Inserted::Placed | Inserted::KeptSymlink => {}
        }
        report.installed += 1;
    }
    Ok(report)
}

fn nevra_of(meta: &rpm::PackageMetadata) -> String {
    let name = meta.get_name().unwrap_or("?");
    let epoch = match meta.get_epoch() {
        Ok(e) if e != 0 => format!("{e}:"),
        _ => String::new(),
    };
    format!(
        "{name}-{epoch}{}-{}.{}",
        meta.get_version().unwrap_or("?"),
        meta.get_release().unwrap_or("?"),
        meta.get_arch().unwrap_or("?")
    )
}

type Header = rpm::Header<IndexTag>;

fn is_absent<T>(r: &Result<T, rpm::Error>) -> bool {
    matches!(r, Err(rpm::Error::TagNotFound(_)))
}

fn strings(h: &Header, tag: IndexTag, n: usize) -> Result<Vec<String>, String> {
    let v = h.get_entry_data_as_string_array(tag);
    if is_absent(&v) {
        return Ok(vec![String::new(); n]);
    }
    let v = v.map_err(|e| format!("{tag:?}: {e}"))?;
    if v.len() != n {
        return Err(format!("{tag:?} has {} entries for {n} files", v.len()));
    }
    Ok(v.into_iter().map(str::to_string).collect())
}

fn numbers(h: &Header, tag: IndexTag, n: usize) -> Result<Vec<u64>, String> {
    let v: Result<Vec<u64>, _> = match h.get_entry_data_as_u32_array(tag) {
        Ok(v) => Ok(v.into_iter().map(u64::from).collect()),
        Err(_) => match h.get_entry_data_as_u16_array(tag) {
            Ok(v) => Ok(v.into_iter().map(u64::from).collect()),
            Err(_) => h.get_entry_data_as_u64_array(tag),
        },
    };
    if is_absent(&v) {
        return Ok(vec![0; n]);
    }
    let v = v.map_err(|e| format!("{tag:?}: {e}"))?;
    if v.len() != n {
        return Err(format!("{tag:?} has {} entries for {n} files", v.len()));
    }
    Ok(v)
}

fn read_file_list(h: &Header) -> Result<Vec<FileMeta>, String> {
    let basenames = h.get_entry_data_as_string_array(IndexTag::RPMTAG_BASENAMES);
    if is_absent(&basenames) {
        return Ok(Vec::new());
    }
    let basenames = basenames.map_err(|e| format!("BASENAMES: {e}"))?;
    let n = basenames.len();
    let dirnames = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_DIRNAMES)
        .map_err(|e| format!("DIRNAMES: {e}"))?;
    let dirindexes = numbers(h, IndexTag::RPMTAG_DIRINDEXES, n)?;
    let modes = numbers(h, IndexTag::RPMTAG_FILEMODES, n)?;
    let sizes = if h.entry_is_present(IndexTag::RPMTAG_LONGFILESIZES) {
        numbers(h, IndexTag::RPMTAG_LONGFILESIZES, n)?
    } else {
        numbers(h, IndexTag::RPMTAG_FILESIZES, n)?
    };
    let mtimes = numbers(h, IndexTag::RPMTAG_FILEMTIMES, n)?;
    let flags = numbers(h, IndexTag::RPMTAG_FILEFLAGS, n)?;
    let devices = numbers(h, IndexTag::RPMTAG_FILEDEVICES, n)?;
    let inodes = numbers(h, IndexTag::RPMTAG_FILEINODES, n)?;
    let users = strings(h, IndexTag::RPMTAG_FILEUSERNAME, n)?;
    let groups = strings(h, IndexTag::RPMTAG_FILEGROUPNAME, n)?;
    let langs = strings(h, IndexTag::RPMTAG_FILELANGS, n)?;
    let linktos = strings(h, IndexTag::RPMTAG_FILELINKTOS, n)?;
    let caps = strings(h, IndexTag::RPMTAG_FILECAPS, n)?;

    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let dir = dirnames
            .get(dirindexes[i] as usize)
            .ok_or_else(|| format!("DIRINDEXES[{i}] = {} is out of range", dirindexes[i]))?;
        let or_root = |s: &str| {
            if s.is_empty() {
                "root".to_string()
            } else {
                s.to_string()
            }
        };
        files.push(FileMeta {
            path: format!("{dir}{}", basenames[i]),
            mode: modes[i] as u32,
            size: sizes[i],
            mtime: mtimes[i],
            user: or_root(&users[i]),
            group: or_root(&groups[i]),
            flags: flags[i] as u32,
            lang: langs[i].clone(),
            linkto: linktos[i].clone(),
            caps: caps[i].clone(),
            dev_ino: (devices[i] as u32, inodes[i] as u32),
        });
    }
    Ok(files)
}

fn skip_reason(f: &FileMeta, opts: &UnpackOptions) -> Option<Skip> {
    if f.flags & RPMFILE_GHOST != 0 {
        return Some(Skip::Ghost);
    }
    if matches!(f.mode & S_IFMT, S_IFCHR | S_IFBLK | S_IFSOCK) {
        return Some(Skip::Device);
    }
    if f.flags & RPMFILE_DOC != 0 && f.flags & RPMFILE_LICENSE == 0 && !opts.docs {
        return Some(Skip::Doc);
    }
    if !lang_wanted(&f.lang, &opts.langs) {
        return Some(Skip::Lang);
    }
    None
}

/// Whether a file tagged `file_langs` (rpm allows `de|de_AT`) is installed
/// for the configured `langs`. A configured `de` keeps `de`, `de_DE`,
/// `de_DE.UTF-8` and `de@euro`; a configured `de_DE` also keeps `de` (the
/// direction rpm's own prefix match in `skipInstallFiles` accepts).
pub fn lang_wanted(file_langs: &str, langs: &[String]) -> bool {
    let always = |l: &str| matches!(l, "" | "C" | "POSIX");
    if always(file_langs) || langs.iter().any(|l| l == "all") {
        return true;
    }
    let is_locale_prefix = |short: &str, long: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['_', '.', '@']))
    };
    file_langs.split('|').any(|fl| {
        always(fl)
            || langs
                .iter()
                .any(|l| is_locale_prefix(l, fl) || is_locale_prefix(fl, l))
    })
}

/// Hardlink sets: regular, non-ghost files sharing `(device, inode)`.
fn hardlink_sets(files: &[FileMeta]) -> BTreeMap<(u32, u32), Vec<usize>> {
    let mut sets: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        if f.mode & S_IFMT == S_IFREG && f.flags & RPMFILE_GHOST == 0 {
            sets.entry(f.dev_ino).or_default().push(i);
        }
    }
    sets.retain(|_, members| members.len() > 1);
    sets
}

fn decompressor<'a>(
    h: &Header,
    mut reader: BufReader<File>,
    rpm_path: &Path,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let unsupported = |what, value: &str| UnpackError::Unsupported {
        path: rpm_path.to_path_buf(),
        what,
        value: value.to_string(),
    };
    let read_err = |source| {
        UnpackError::Open(ReadError::Open {
            path: rpm_path.to_path_buf(),
            source,
        })
    };
    if let Ok(format) = h.get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADFORMAT) {
        if format != "cpio" {
            return Err(unsupported("format", format));
        }
    }
    let compressor = match h.get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADCOMPRESSOR) {
        Ok(c) => Compressor::from_tag(c).ok_or_else(|| unsupported("compressor", c))?,
        // No tag: rpm assumes gzip, whose reader passes an uncompressed
        // archive through; recognize that one by its cpio magic.
        Err(_) => {
            let head = reader.fill_buf().map_err(read_err)?;
            if head.starts_with(b"0707") {
                Compressor::None
            } else {
                Compressor::Gzip
            }
        }
    };
    compressor.decoder(reader).map_err(read_err)
}

fn write_blob(
    staging: &mut Staging,
    data: &mut dyn Read,
    nevra: &str,
    file: &str,
) -> Result<Blob, UnpackError> {
    let dir = staging.dir().to_path_buf();
    let err = |error| UnpackError::Staging {
        nevra: nevra.to_string(),
        file: file.to_string(),
        dir: dir.clone(),
        error,
    };
    let mut w = staging.create_blob().map_err(err)?;
    io::copy(data, &mut w).map_err(|e| err(w.write_error().unwrap_or(e)))?;
    let blob = w.finish().map_err(err)?;
    staging.record(&blob);
    Ok(blob)
}

/// Stream the payload; returns the blob of every regular-file member that
/// is needed (kept, or carrying a kept hardlink set's content), by index.
/// Each member must be a header file, once, with the header's size (a
/// hardlink set's members other than its carrier have none) and digest.
#[allow(clippy::too_many_arguments)]
fn read_payload(
    payload: Box<dyn Read + '_>,
    files: &[FileMeta],
    digests: &FileDigests,
    skips: &[Option<Skip>],
    links: &BTreeMap<(u32, u32), Vec<usize>>,
    staging: &mut Staging,
    nevra: &str,
    rpm_path: &Path,
) -> Result<HashMap<usize, Blob>, UnpackError> {
    let by_name: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.trim_start_matches('/'), i))
        .collect();
    let payload_err = |source| UnpackError::Payload {
        nevra: nevra.to_string(),
        path: rpm_path.to_path_buf(),
        source,
    };
    let mut cpio = CpioReader::new(payload);
    let mut seen = vec![false; files.len()];
    let mut contents = HashMap::new();
    while let Some(member) = cpio.next_member().map_err(payload_err)? {
        let (i, size) = match member {
            Member::Named { name, size } => {
                let key = name.trim_start_matches("./").trim_start_matches('/');
                let i = *by_name.get(key).ok_or_else(|| UnpackError::UnknownMember {
                    nevra: nevra.to_string(),
                    member: name.clone(),
                })?;
                (i, size)
            }
            Member::Indexed { index } => {
                let i = index as usize;
                let f = files.get(i).ok_or_else(|| UnpackError::UnknownMember {
                    nevra: nevra.to_string(),
                    member: format!("#{index}"),
                })?;
                // Only the set's last member carries a hardlink set's data.
                let carries = match links.get(&f.dev_ino) {
                    Some(members) => members.last() == Some(&i),
                    None => true,
                };
                // As rpm's iterReadArchiveNext: symlinks carry their target.
                let size = match f.mode & S_IFMT {
                    S_IFREG if carries => f.size,
                    S_IFLNK => f.size,
                    _ => 0,
                };
                cpio.set_size(size);
                (i, size)
            }
        };
        let f = &files[i];
        if std::mem::replace(&mut seen[i], true) {
            return Err(UnpackError::DuplicateMember {
                nevra: nevra.to_string(),
                file: f.path.clone(),
            });
        }
        // Checked before a byte of the member is read (even to skip it):
        // its data is what the header says it is, or nothing.
        let in_set = links.contains_key(&f.dev_ino);
        let expected = match f.mode & S_IFMT {
            S_IFREG | S_IFLNK => f.size,
            _ => 0,
        };
        let allowed = size == expected || (in_set && f.mode & S_IFMT == S_IFREG && size == 0);
        if !allowed {
            return Err(UnpackError::SizeMismatch {
                nevra: nevra.to_string(),
                file: f.path.clone(),
                header: expected,
                payload: size,
            });
        }
        if f.mode & S_IFMT != S_IFREG {
            continue; // symlink targets and modes come from the header
        }
        let mismatch = |(expected, actual)| UnpackError::DigestMismatch {
            nevra: nevra.to_string(),
            file: f.path.clone(),
            expected,
            actual,
        };
        // A member with the header's size carries the file's content.
        let carries = size == f.size;
        let needed = match links.get(&f.dev_ino) {
            Some(members) => size > 0 && members.iter().any(|&m| skips[m].is_none()),
            None => skips[i].is_none(),
        };
        // A staging blob is hashed with sha256 anyway: with sha256 file
        // digests, a kept file is not hashed a second time.
        let blob_hash_is_digest = needed && digests.is_sha256();
        let mut digest = digests
            .hasher_for(i)
            .filter(|_| carries && !blob_hash_is_digest);
        if needed {
            let dir = staging.dir().to_path_buf();
            let err = |error| UnpackError::Staging {
                nevra: nevra.to_string(),
                file: f.path.clone(),
                dir: dir.clone(),
                error,
            };
            let mut w = staging.create_blob().map_err(err)?;
            let copied = match &mut digest {
                Some(d) => cpio.copy_data(&mut d.writer(&mut w)),
                None => cpio.copy_data(&mut w),
            };
            if let Err(e) = copied {
                // A full `$TMPDIR` is not a damaged package.
                return Err(w.write_error().map_or_else(|| payload_err(e), err));
            }
            let blob = w.finish().map_err(err)?;
            if carries {
                digests.check_sha256(i, &blob.sha256).map_err(mismatch)?;
            }
            staging.record(&blob);
            contents.insert(i, blob);
        } else if let Some(d) = &mut digest {
            cpio.copy_data(&mut d.writer(io::sink()))
                .map_err(payload_err)?;
        }
        if let Some(d) = digest {
            d.verify().map_err(mismatch)?;
        }
    }
    if let Some(i) = (0..files.len()).find(|&i| !seen[i] && files[i].flags & RPMFILE_GHOST == 0) {
        return Err(UnpackError::MissingMember {
            nevra: nevra.to_string(),
            file: files[i].path.clone(),
        });
    }
    Ok(contents)
}

/// The scriptlets and triggers `meta` carries (none of them is ever run).
pub fn scriptlets(meta: &rpm::PackageMetadata) -> Result<Vec<SkippedScriptlet>, rpm::Error> {
    use IndexTag::*;
    use ScriptletKind::*;
    let h = &meta.header;
    let mut out = Vec::new();
    for (kind, script, prog) in [
        (PreTrans, RPMTAG_PRETRANS, RPMTAG_PRETRANSPROG),
        (PreIn, RPMTAG_PREIN, RPMTAG_PREINPROG),
        (PostIn, RPMTAG_POSTIN, RPMTAG_POSTINPROG),
        (PreUn, RPMTAG_PREUN, RPMTAG_PREUNPROG),
        (PostUn, RPMTAG_POSTUN, RPMTAG_POSTUNPROG),
        (PostTrans, RPMTAG_POSTTRANS, RPMTAG_POSTTRANSPROG),
        (PreUnTrans, RPMTAG_PREUNTRANS, RPMTAG_PREUNTRANSPROG),
        (PostUnTrans, RPMTAG_POSTUNTRANS, RPMTAG_POSTUNTRANSPROG),
        (Verify, RPMTAG_VERIFYSCRIPT, RPMTAG_VERIFYSCRIPTPROG),
    ] {
        // `%post -p /sbin/ldconfig` has a program and no body.
        let body = h.get_entry_data_as_string(script).ok();
        let interpreter: Vec<String> = match h.get_entry_data_as_string_array(prog) {
            Ok(v) => v.into_iter().map(str::to_string).collect(),
            Err(_) => h
                .get_entry_data_as_string(prog)
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
        };
        if body.is_some() || !interpreter.is_empty() {
            out.push(SkippedScriptlet {
                kind,
                interpreter,
                body: body.unwrap_or_default().to_string(),
                triggered_by: Vec::new(),
            });
        }
    }
    for (kind, triggers) in [
        (Trigger, meta.get_triggers()?),
        (FileTrigger, meta.get_file_triggers()?),
        (TransFileTrigger, meta.get_trans_file_triggers()?),
    ] {
        for t in triggers {
            out.push(SkippedScriptlet {
                kind,
                interpreter: t.program,
                body: t.script,
                triggered_by: t.conditions.into_iter().map(|c| c.name).collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lang_matching_follows_install_langs() {
        let c = langs(&["C"]);
        assert!(lang_wanted("", &c));
        assert!(lang_wanted("C", &c));
        assert!(lang_wanted("POSIX", &c));
        assert!(!lang_wanted("de", &c));
        let de = langs(&["de"]);
        assert!(lang_wanted("de", &de));
        assert!(lang_wanted("de_DE", &de));
        assert!(lang_wanted("de_DE.UTF-8", &de));
        assert!(lang_wanted("fr|de_AT", &de));
        assert!(!lang_wanted("den", &de));
        assert!(!lang_wanted("fr", &de));
        assert!(lang_wanted("de", &langs(&["de_DE"])));
        assert!(lang_wanted("ja", &langs(&["all"])));
    }
}
