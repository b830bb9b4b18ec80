//! `/etc/ld.so.cache`, written natively: what glibc's `%post` (`ldconfig`)
//! would have produced, without running anything from the image.
//!
//! The mechanism follows glibc's `elf/ldconfig.c` and `elf/cache.c` (2.36):
//!
//! 1. Directories: the lines of `/etc/ld.so.conf` in order (`include GLOB`
//!    reads more files, sorted as glob(3) sorts; `#` starts a comment), then
//!    the built-in system directories (`/lib64` and `/usr/lib64` on Fedora,
//!    each expanded like glibc's `add_system_dir`: `/lib`, `/lib64`,
//!    `/libx32`). A directory is looked up through the image's symlinks; the
//!    first name of a directory wins (ldconfig compares inodes).
//! 2. In each directory, names that look like DSOs (`lib*.so*`, `ld-*.so*`,
//!    `ld.so.*`, `ld64.so.*`) and are ELF shared objects (`ET_DYN`) become
//!    candidates, keyed by their `DT_SONAME` (or their name). A symlink named
//!    after its soname, or a `libfoo.so` development link, stays a link and
//!    is keyed by its own name; a plain file beats a link for the same key,
//!    otherwise the higher version (glibc's `_dl_cache_libcmp`) wins.
//! 3. Every survivor becomes an entry `soname → DIR/soname` with the flags
//!    of its ELF class and machine (`FLAG_ELF_LIBC6 | FLAG_X8664_LIB64` for
//!    x86-64). Entries are sorted as ldconfig sorts them: by soname,
//!    descending in `_dl_cache_libcmp` order, then by flags, descending, and
//!    in directory order among equals.
//! 4. The file is the new format only (`glibc-ld.so.cache1.1`, what glibc ≥
//!    2.32 writes by default): header, entries, a string table with glibc's
//!    suffix sharing (strings sorted by reversed bytes, descending), then the
//!    extension directory holding the generator string.
//!
//! Not done: glibc-hwcaps subdirectories and legacy hwcap directories
//! (`tls`, `x86_64`, `haswell`…) are not descended into; their libraries
//! are still found by the dynamic linker's own search.

use std::cmp::Ordering;

use super::staging::Staging;
use super::{generated, Kind, Tree};
use crate::elf;
use crate::package::Arch;

/// Where the cache goes.
pub const CACHE_PATH: &str = "etc/ld.so.cache";
/// The file whose presence means "this image has glibc's dynamic linker".
pub const CONF_PATH: &str = "etc/ld.so.conf";

const MAGIC: &[u8; 17] = b"glibc-ld.so.cache";
const VERSION: &[u8; 3] = b"1.1";
const HEADER_SIZE: usize = 48;
const ENTRY_SIZE: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_GENERATOR: u32 = 0;
/// `cache_file_new_flags_endian_little`: the cache is little-endian.
const FLAGS_ENDIAN_LITTLE: u8 = 2;

pub const FLAG_ELF: i32 = 0x0001;
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
pub const FLAG_X8664_LIB64: i32 = 0x0300;
pub const FLAG_X8664_LIBX32: i32 = 0x0800;
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;

const EM_X86_64: u16 = 62;
const ET_DYN: u16 = 3;

/// What to build the cache for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCacheOptions {
    pub arch: Arch,
    /// The dynamic linker's built-in directories (glibc's `SLIBDIR` and
    /// `LIBDIR`), absolute, before `add_system_dir` expansion.
    pub system_dirs: Vec<String>,
    /// Expand each system directory as upstream glibc's `add_system_dir`
    /// does (`/usr/lib64` → `/usr/lib`, `/usr/lib64`, `/usr/libx32`);
    /// Debian's ldconfig adds its directories as they are.
    pub expand_system_dirs: bool,
    /// The generator string stored in the cache's extension section.
    pub generator: String,
}

impl LdCacheOptions {
    /// Fedora/RHEL's layout for `arch` (`/lib64`, `/usr/lib64`); `None` for
    /// architectures whose cache flags this module does not know.
    pub fn fedora(arch: Arch) -> Option<Self> {
        match arch {
            Arch::X86_64 | Arch::Aarch64 => Some(LdCacheOptions {
                arch,
                system_dirs: vec!["/lib64".into(), "/usr/lib64".into()],
                expand_system_dirs: true,
                generator: format!("minibuild {}", env!("CARGO_PKG_VERSION")),
            }),
            _ => None,
        }
    }
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub flags: i32,
    pub soname: String,
    /// Absolute path in the image, `DIR/soname`.
    pub path: String,
}

/// The cache's content, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    pub entries: Vec<CacheEntry>,
    /// The directories scanned, in order (as named, not resolved).
    pub dirs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("cannot read /{path} (staging blob {blob}) while building /etc/ld.so.cache")]
    Read {
        path: String,
        blob: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Place(#[from] generated::GeneratedError),
    #[error("malformed ld.so.cache: {0}")]
    Malformed(String),
}

/// What [`write()`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCacheReport {
    pub entries: usize,
    pub dirs: Vec<String>,
}

/// Build the cache for `tree` and store it at `/etc/ld.so.cache`. Does
/// nothing (`Ok(None)`) when the image has no `/etc/ld.so.conf`, i.e. no
/// glibc whose `%post` would have run ldconfig.
pub fn write(
    tree: &mut Tree,
    staging: &mut Staging,
    opts: &LdCacheOptions,
) -> Result<Option<LdCacheReport>, LdCacheError> {
    if tree.follow(CONF_PATH).is_none() {
        return Ok(None);
    }
    let cache = scan(tree, opts)?;
    let bytes = cache.to_bytes(&opts.generator);
    let mtime = generated::newest_mtime(tree);
    generated::put_file(tree, staging, CACHE_PATH, &bytes, 0o644, mtime)?;
    Ok(Some(LdCacheReport {
        entries: cache.entries.len(),
        dirs: cache.dirs,
    }))
}

/// The directories ldconfig would scan, in order: ld.so.conf, then the
/// system directories.
pub fn directories(tree: &Tree, opts: &LdCacheOptions) -> Vec<String> {
    let mut dirs = Vec::new();
    parse_conf(tree, "/etc/ld.so.conf", &mut dirs, 0);
    for d in &opts.system_dirs {
        if opts.expand_system_dirs {
            dirs.extend(system_dir(d, opts.arch));
        } else {
            dirs.push(d.clone());
        }
    }
    dirs
}

/// glibc's `add_system_dir` for x86-64 and aarch64: `/X/lib64` adds
/// `/X/lib`, `/X/lib64` and the ABI variant directory.
fn system_dir(dir: &str, arch: Arch) -> Vec<String> {
    let variant = if arch == Arch::Aarch64 {
        "ilp32"
    } else {
        "x32"
    };
    let base = dir
        .strip_suffix("/lib64")
        .or_else(|| dir.strip_suffix(&format!("/lib{variant}")))
        .map(|b| format!("{b}/lib"))
        .unwrap_or_else(|| dir.to_string());
    match base.strip_suffix("/lib") {
        Some(_) => vec![
            base.clone(),
            format!("{base}64"),
            format!("{base}{variant}"),
        ],
        None => vec![base],
    }
}

/// Read one configuration file (a path inside the image) into `dirs`.
fn parse_conf(tree: &Tree, path: &str, dirs: &mut Vec<String>, depth: u32) {
    // Include loops would recurse forever in ldconfig too; stop quietly.
    if depth > 16 {
        return;
    }
    let Some(text) = read_text(tree, path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim_start();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pattern in rest.split([' ', '\t']).filter(|p| !p.is_empty()) {
                let pattern = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    format!("{dir}/{pattern}")
                };
                for file in glob(tree, &pattern) {
                    parse_conf(tree, &file, dirs, depth + 1);
                }
            }
        } else if line.len() > 5
            && line[..5].eq_ignore_ascii_case("hwcap")
            && line[5..].starts_with([' ', '\t'])
        {
            // ldconfig ignores hwcap directives (with a warning).
        } else {
            // `dir=TYPE` (an old library-type override) keeps the dir part.
            let dir = line.split('=').next().unwrap_or("").trim_end();
            let dir = if dir.len() > 1 {
                dir.trim_end_matches('/')
            } else {
                dir
            };
            let dir = if dir.is_empty() { "/" } else { dir };
            dirs.push(dir.to_string());
        }
    }
}

/// glob(3) for a pattern whose wildcards are in the last component only
/// (`/etc/ld.so.conf.d/*.conf`), sorted bytewise as in the C locale.
fn glob(tree: &Tree, pattern: &str) -> Vec<String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !name.contains(['*', '?', '[']) {
        return vec![pattern.to_string()];
    }
    let Some((resolved, entry)) = tree.follow(if dir.is_empty() { "/." } else { dir }) else {
        return Vec::new();
    };
    if entry.kind != Kind::Dir {
        return Vec::new();
    }
    let mut out: Vec<String> = tree
        .children(&resolved)
        .filter(|(n, _)| !n.starts_with('.') && wildcard(name.as_bytes(), n.as_bytes()))
        .map(|(n, _)| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// `*` and `?` matching (no character classes).
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

fn read_text(tree: &Tree, path: &str) -> Option<String> {
    let (_, entry) = tree.follow(path)?;
    let Kind::File { blob, .. } = &entry.kind else {
        return None;
    };
    blob.read_to_vec()
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// glibc's `_dl_cache_libcmp`: digit runs compare numerically, so
/// `libfoo.so.10` sorts after `libfoo.so.9`.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() {
        if digit(a, i) {
            if !digit(b, j) {
                return Ordering::Greater;
            }
            // ldconfig accumulates in an int; wrap the same way.
            let (mut v1, mut v2) = (0i32, 0i32);
            while digit(a, i) {
                v1 = v1.wrapping_mul(10).wrapping_add(i32::from(a[i] - b'0'));
                i += 1;
            }
            while digit(b, j) {
                v2 = v2.wrapping_mul(10).wrapping_add(i32::from(b[j] - b'0'));
                j += 1;
            }
            if v1 != v2 {
                return v1.cmp(&v2);
            }
        } else if digit(b, j) {
            return Ordering::Less;
        } else if Some(&a[i]) != b.get(j) {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(b.get(j).unwrap_or(&0))
}

/// glibc's `_dl_is_dso`.
fn is_dso(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

/// A library found in one directory.
struct Candidate {
    name: String,
    soname: String,
    flags: i32,
    is_link: bool,
}

/// The cache flags of an ELF shared object on `arch`, as glibc's
/// `process_elf_file` (with the x86-64/aarch64 overrides) computes them;
/// `None` when ldconfig would skip the file.
fn elf_flags(d: &elf::Dynamic, arch: Arch) -> Option<i32> {
    if d.elf_type != ET_DYN {
        return None;
    }
    let generic = || {
        if d.needed
            .iter()
            .any(|n| n == "libc.so.6" || n == "libm.so.6")
        {
            FLAG_ELF_LIBC6
        } else {
            FLAG_ELF
        }
    };
    Some(match (arch, d.class64) {
        (Arch::X86_64, true) => FLAG_X8664_LIB64 | FLAG_ELF_LIBC6,
        (Arch::X86_64, false) if d.machine == EM_X86_64 => FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6,
        (Arch::Aarch64, true) => FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6,
        _ => generic(),
    })
}

/// Scan the image as ldconfig would and return the cache's entries.
pub fn scan(tree: &Tree, opts: &LdCacheOptions) -> Result<LdCache, LdCacheError> {
    let mut seen: Vec<String> = Vec::new();
    let mut dirs: Vec<(String, String)> = Vec::new();
    for dir in directories(tree, opts) {
        let Some((resolved, entry)) = tree.follow(&dir) else {
            continue;
        };
        if entry.kind != Kind::Dir || seen.contains(&resolved) {
            continue;
        }
        seen.push(resolved.clone());
        dirs.push((dir, resolved));
    }
    let mut entries: Vec<CacheEntry> = Vec::new();
    for (dir, resolved) in &dirs {
        let mut found: Vec<Candidate> = Vec::new();
        for (name, entry) in tree.children(resolved) {
            if !is_dso(name) || name.ends_with(".#prelink#") || name.contains(".#prelink#.") {
                continue;
            }
            let is_link = matches!(entry.kind, Kind::Symlink { .. });
            let Some((_, target_entry)) = tree.follow(&format!("{resolved}/{name}")) else {
                continue;
            };
            let Kind::File { blob, .. } = &target_entry.kind else {
                continue;
            };
            // Unreadable or non-ELF files are skipped, as ldconfig does.
            let Ok(Some(d)) = elf::read(blob.open()) else {
                continue;
            };
            let Some(flags) = elf_flags(&d, opts.arch) else {
                continue;
            };
            let mut soname = d.soname.clone().unwrap_or_else(|| name.to_string());
            let mut is_link = is_link;
            // A link keeps its own name only when it is named after the
            // soname or is the `.so` link for ld(1); otherwise it counts as
            // another file providing the soname.
            if is_link
                && name != soname
                && !(name.ends_with(".so") && soname.as_bytes().starts_with(name.as_bytes()))
            {
                is_link = false;
            }
            if is_link {
                soname = name.to_string();
            }
            if let Some(c) = found.iter_mut().find(|c| c.soname == soname) {
                if (!is_link && c.is_link)
                    || (is_link == c.is_link && libcmp(&c.name, name) == Ordering::Less)
                {
                    if c.flags != flags
                        && ((c.flags == FLAG_ELF && flags == FLAG_ELF_LIBC6)
                            || (c.flags == FLAG_ELF_LIBC6 && flags == FLAG_ELF))
                    {
                        c.flags = flags;
                    }
                    c.name = name.to_string();
                    c.is_link = is_link;
                }
                continue;
            }
            found.push(Candidate {
                name: name.to_string(),
                soname,
                flags,
                is_link,
            });
        }
        for c in found {
            let entry = CacheEntry {
                flags: c.flags,
                path: format!("{dir}/{}", c.soname),
                soname: c.soname,
            };
            // Insert after every entry that does not sort after it, as
            // ldconfig's add_to_cache does (stable among equals).
            let at = entries
                .iter()
                .position(|e| compare(e, &entry) == Ordering::Greater)
                .unwrap_or(entries.len());
            entries.insert(at, entry);
        }
    }
    Ok(LdCache {
        entries,
        dirs: dirs.into_iter().map(|(d, _)| d).collect(),
    })
}

/// ldconfig's `compare`: soname descending (libcmp), then flags descending.
fn compare(e1: &CacheEntry, e2: &CacheEntry) -> Ordering {
    libcmp(&e2.soname, &e1.soname).then(e2.flags.cmp(&e1.flags))
}

/// glibc's string table: unique strings, sorted by their reversed bytes in
/// descending order (longer first on ties), a string that is a suffix of
/// the previous one shares its bytes. Returns the table and each string's
/// offset.
fn string_table(strings: &[&str]) -> (Vec<u8>, std::collections::BTreeMap<String, u32>) {
    let mut unique: Vec<&str> = strings.to_vec();
    unique.sort_unstable();
    unique.dedup();
    unique.sort_by(|l, r| {
        let (l, r) = (l.as_bytes(), r.as_bytes());
        for k in 1..=l.len().min(r.len()) {
            let (a, b) = (l[l.len() - k], r[r.len() - k]);
            if a != b {
                return b.cmp(&a);
            }
        }
        r.len().cmp(&l.len())
    });
    let mut table = Vec::new();
    let mut offsets = std::collections::BTreeMap::new();
    let mut prev: Option<(&str, u32)> = None;
    for s in unique {
        let offset = match prev {
            Some((p, off)) if p.len() >= s.len() && p.ends_with(s) => {
                off + (p.len() - s.len()) as u32
            }
            _ => {
                let off = table.len() as u32;
                table.extend_from_slice(s.as_bytes());
                table.push(0);
                off
            }
        };
        offsets.insert(s.to_string(), offset);
        prev = Some((s, offset));
    }
    (table, offsets)
}

impl LdCache {
    /// The cache file's bytes (new format, little-endian).
    pub fn to_bytes(&self, generator: &str) -> Vec<u8> {
        let strings: Vec<&str> = self
            .entries
            .iter()
            .flat_map(|e| [e.soname.as_str(), e.path.as_str()])
            .collect();
        let (table, offsets) = string_table(&strings);
        let str_offset = (HEADER_SIZE + ENTRY_SIZE * self.entries.len()) as u32;
        let extension_offset = (str_offset as usize + table.len()).next_multiple_of(4);
        let mut out = Vec::with_capacity(extension_offset + 32 + generator.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(VERSION);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(table.len() as u32).to_le_bytes());
        out.push(FLAGS_ENDIAN_LITTLE);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&(extension_offset as u32).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        for e in &self.entries {
            out.extend_from_slice(&e.flags.to_le_bytes());
            out.extend_from_slice(&(str_offset + offsets[&e.soname]).to_le_bytes());
            out.extend_from_slice(&(str_offset + offsets[&e.path]).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // osversion (unused)
            out.extend_from_slice(&0u64.to_le_bytes()); // hwcap
        }
        out.extend_from_slice(&table);
        out.resize(extension_offset, 0);
        // Extension directory: one section, the generator string right after it.
        let section_dir = 8 + 16;
        out.extend_from_slice(&EXTENSION_MAGIC.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&EXTENSION_TAG_GENERATOR.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&((extension_offset + section_dir) as u32).to_le_bytes());
        out.extend_from_slice(&(generator.len() as u32).to_le_bytes());
        out.extend_from_slice(generator.as_bytes());
        out
    }

    /// Read the entries of a new-format cache file (for checks and tests).
    pub fn parse(bytes: &[u8]) -> Result<Vec<CacheEntry>, LdCacheError> {
        let bad = |m: &str| LdCacheError::Malformed(m.to_string());
        if bytes.len() < HEADER_SIZE || &bytes[..17] != MAGIC || &bytes[17..20] != VERSION {
            return Err(bad("not a glibc-ld.so.cache1.1 file"));
        }
        let u32_at = |o: usize| -> Result<u32, LdCacheError> {
            bytes
                .get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| bad("truncated"))
        };
        let cstr = |o: u32| -> Result<String, LdCacheError> {
            let rest = bytes
                .get(o as usize..)
                .ok_or_else(|| bad("string offset"))?;
            let end = rest
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| bad("unterminated string"))?;
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let n = u32_at(20)? as usize;
        (0..n)
            .map(|i| {
                let at = HEADER_SIZE + i * ENTRY_SIZE;
                Ok(CacheEntry {
                    flags: u32_at(at)? as i32,
                    soname: cstr(u32_at(at + 4)?)?,
                    path: cstr(u32_at(at + 8)?)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "ldcache_tests.rs"]
mod tests;
