//! busybox's applet symlinks (`options.busybox_links`), found without
//! running busybox.
//!
//! Nothing from the image is ever executed, so `busybox --list-full` is not
//! an option. Instead the two tables busybox's build generates
//! (`applets/applet_tables.c` writes them into `applet_tables.h`) are read
//! from the ELF file's read-only loadable segments:
//!
//! - `applet_names`: every applet name, NUL-terminated, in strictly
//!   ascending byte order, the whole string ending in an extra NUL
//!   (`"[\0[[\0acpid\0…\0\0"`).
//! - `applet_install_loc`: one nibble per applet, two applets per byte, low
//!   nibble first: 0 `/`, 1 `/bin`, 2 `/sbin`, 3 `/usr/bin`, 4 `/usr/sbin`
//!   (with `CONFIG_INSTALL_NO_USR` 3 and 4 become 1 and 2 at build time).
//!
//! The name table is the one sorted name list holding at least
//! [`MIN_ANCHORS`] of the [`ANCHORS`] (applets whose location busybox has
//! fixed for years: `ls` in `/bin`, `chroot` in `/usr/sbin`, …). The location
//! table is the one run of `ceil(n / 2)` bytes whose nibbles are all ≤ 4 and
//! which puts every anchor present where busybox declares it. Anything but
//! exactly one match for each is an error naming the file: the links are
//! never guessed.
//!
//! Links are relative (`usr/bin/ls → ../sbin/busybox`), computed between
//! the *resolved* directories, so they work inside the container, under
//! `chroot`, and also when the unpacked rootfs is inspected on a host (an
//! absolute target would point at the host's `/usr/sbin/busybox` there).
//! Parents are resolved through the tree, so `/bin → usr/bin` places
//! `bin/ls` at `usr/bin/ls`; a path that already exists (shipped by a
//! package or a `[[copy]]`) is left alone.

use std::io;

use super::tree::TreeError;
use super::{generated, BlobRef, Entry, Kind, Tree};
use crate::elf;

/// Where busybox packages put the binary (Fedora: `/usr/sbin/busybox`).
pub const BINARY_PATHS: &[&str] = &[
    "usr/sbin/busybox",
    "usr/bin/busybox",
    "sbin/busybox",
    "bin/busybox",
];

/// Install directories by `applet_install_loc` value (busybox's
/// `bb_install_loc_t`).
pub const INSTALL_DIRS: [&str; 5] = ["", "bin", "sbin", "usr/bin", "usr/sbin"];

/// Applets and the location busybox's source gives them (`//applet:` lines),
/// unchanged for many releases. They identify the tables and check them.
pub const ANCHORS: &[(&str, u8)] = &[
    ("[", 3),
    ("[[", 3),
    ("cat", 1),
    ("chroot", 4),
    ("echo", 1),
    ("env", 3),
    ("ifconfig", 2),
    ("init", 2),
    ("ls", 1),
    ("mount", 1),
    ("sed", 1),
    ("sh", 1),
    ("true", 1),
    ("wc", 3),
];

/// How many anchors a name table must contain to be taken for busybox's.
pub const MIN_ANCHORS: usize = 3;

/// One applet: its name and install directory (an [`INSTALL_DIRS`] entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applet {
    pub name: String,
    pub dir: &'static str,
}

impl Applet {
    /// The image path busybox would install it at (`usr/bin/[`).
    pub fn path(&self) -> String {
        if self.dir.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.dir, self.name)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusyboxError {
    #[error(
        "busybox_links = true, but the image has no busybox binary (looked for /{})\n  \
         hint: install the `busybox` package, or drop `busybox_links` from [options]",
        BINARY_PATHS.join(", /")
    )]
    NoBinary,
    #[error("cannot read /{path} (staging blob {blob})")]
    Read {
        path: String,
        blob: BlobRef,
        #[source]
        source: io::Error,
    },
    #[error(
        "/{path}: cannot find busybox's applet tables: {why}\n  \
         hint: this busybox may be built without them (CONFIG_FEATURE_INSTALLER) or laid out \
         differently; drop `busybox_links` from [options] and add the links with [[copy]] or a package"
    )]
    NoTables { path: String, why: String },
    #[error("cannot place the busybox applet link /{path}")]
    Tree {
        path: String,
        #[source]
        source: Box<TreeError>,
    },
}

/// What [`add_links`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkReport {
    /// The busybox binary the links point at (resolved image path).
    pub binary: String,
    /// Links created (resolved image paths).
    pub created: Vec<String>,
    /// Applet paths left alone because something was already there.
    pub existing: Vec<String>,
}

/// The applets of the busybox ELF image `data`, in table (name) order.
/// `why` in the error says which table was missing or ambiguous.
pub fn applets(data: &[u8]) -> Result<Vec<Applet>, String> {
    let segments = elf::load_segments(io::Cursor::new(data))
        .map_err(|e| format!("not a readable ELF file ({e})"))?
        .ok_or("not an ELF file")?;
    // The tables are `const`: read-only data, never in writable segments.
    let ranges: Vec<&[u8]> = segments
        .iter()
        .filter(|s| s.flags & elf::PF_W == 0)
        .filter_map(|s| {
            let end = s.offset.checked_add(s.filesz)?;
            data.get(usize::try_from(s.offset).ok()?..usize::try_from(end).ok()?)
        })
        .collect();

    let mut tables = Vec::new();
    for r in &ranges {
        tables.extend(
            name_tables(r)
                .into_iter()
                .filter(|t| anchors_in(t) >= MIN_ANCHORS),
        );
    }
    let names = match tables.as_slice() {
        [one] => one,
        [] => return Err("no sorted applet name list (applet_names) found".to_string()),
        many => {
            return Err(format!(
                "{} candidate applet name lists found, cannot tell which is applet_names",
                many.len()
            ))
        }
    };

    let mut locs = Vec::new();
    for r in &ranges {
        locs.extend(location_tables(r, names));
    }
    let locs = match locs.as_slice() {
        [one] => one,
        [] => {
            return Err(format!(
                "{} applet names, but no matching install-location table (applet_install_loc)",
                names.len()
            ))
        }
        many => {
            return Err(format!(
                "{} candidate install-location tables for {} applets, cannot tell which is applet_install_loc",
                many.len(),
                names.len()
            ))
        }
    };
    Ok(names
        .iter()
        .zip(locs)
        .map(|(name, &loc)| Applet {
            name: name.clone(),
            dir: INSTALL_DIRS[usize::from(loc)],
        })
        .collect())
}

fn anchors_in(names: &[String]) -> usize {
    ANCHORS
        .iter()
        .filter(|(a, _)| names.binary_search_by(|n| n.as_str().cmp(a)).is_ok())
        .count()
}

/// A byte that can appear in an applet name (`[[`, `mkfs.ext2`, `run-parts`).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'[' | b']' | b'_' | b'-' | b'.' | b'+')
}

/// Every maximal list `name\0name\0…name\0\0` in `data` with at least two
/// names in strictly ascending byte order (as `applet_names` is sorted with
/// `strcmp`). A list restarts after a name that breaks the order, so a
/// stray string just before the table does not hide it.
fn name_tables(data: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < data.len() {
        // A table starts where a name starts: after a NUL (the string
        // before it) or any other byte that cannot be part of a name.
        if !name_byte(data[p]) || (p > 0 && name_byte(data[p - 1])) {
            p += 1;
            continue;
        }
        let mut names: Vec<&[u8]> = Vec::new();
        let mut q = p;
        let terminated = loop {
            let len = data[q..].iter().take_while(|&&b| name_byte(b)).count();
            let end = q + len;
            if len == 0 || len > 64 || data.get(end) != Some(&0) {
                break false;
            }
            let name = &data[q..end];
            if names.last().is_some_and(|last| *last >= name) {
                break false;
            }
            names.push(name);
            q = end + 1;
            if data.get(q) == Some(&0) {
                break true;
            }
        };
        if terminated && names.len() >= 2 {
            out.push(
                names
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect(),
            );
            p = q + 1;
        } else {
            // Resume at the next name start, not inside this one.
            p = q.max(p + 1);
        }
    }
    out
}

/// Every offset in `data` where a nibble-packed location table for `names`
/// fits: all nibbles ≤ 4, an odd count's padding nibble 0, and each anchor
/// at its declared place (under busybox's normal or `INSTALL_NO_USR` map).
fn location_tables(data: &[u8], names: &[String]) -> Vec<Vec<u8>> {
    let n = names.len();
    let len = n.div_ceil(2);
    let anchors: Vec<(usize, u8)> = ANCHORS
        .iter()
        .filter_map(|(a, loc)| {
            let i = names.binary_search_by(|x| x.as_str().cmp(a)).ok()?;
            Some((i, *loc))
        })
        .collect();
    let no_usr = |loc: u8| match loc {
        3 => 1,
        4 => 2,
        l => l,
    };
    let nibble = |w: &[u8], i: usize| (w[i / 2] >> (4 * (i % 2))) & 0xf;
    let mut out = Vec::new();
    if data.len() < len {
        return out;
    }
    for start in 0..=data.len() - len {
        let w = &data[start..start + len];
        let fits =
            |map: &dyn Fn(u8) -> u8| anchors.iter().all(|&(i, loc)| nibble(w, i) == map(loc));
        if !(fits(&|l| l) || fits(&no_usr)) {
            continue;
        }
        if n % 2 == 1 && w[len - 1] >> 4 != 0 {
            continue;
        }
        if w.iter().all(|b| b & 0xf <= 4 && b >> 4 <= 4) {
            out.push((0..n).map(|i| nibble(w, i)).collect());
        }
    }
    out
}

/// The relative symlink target from the directory of `link` to `target`
/// (both resolved image paths).
pub fn relative_target(link: &str, target: &str) -> String {
    let from: Vec<&str> = link.split('/').collect();
    let from = &from[..from.len() - 1];
    let to: Vec<&str> = target.split('/').collect();
    let common = from
        .iter()
        .zip(&to)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to.len() - 1);
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// Create busybox's applet symlinks in `tree`. The binary is the first of
/// [`BINARY_PATHS`] that is a regular file (after symlinks).
pub fn add_links(tree: &mut Tree) -> Result<LinkReport, BusyboxError> {
    let (binary, blob) = BINARY_PATHS
        .iter()
        .find_map(|p| match tree.follow(p) {
            Some((
                path,
                Entry {
                    kind: Kind::File { blob, .. },
                    ..
                },
            )) => Some((path, blob.clone())),
            _ => None,
        })
        .ok_or(BusyboxError::NoBinary)?;
    let data = blob.read_to_vec().map_err(|source| BusyboxError::Read {
        path: binary.clone(),
        blob,
        source,
    })?;
    let applets = applets(&data).map_err(|why| BusyboxError::NoTables {
        path: binary.clone(),
        why,
    })?;
    let mtime = generated::newest_mtime(tree);
    let mut report = LinkReport {
        binary: binary.clone(),
        ..Default::default()
    };
    for applet in &applets {
        let tree_err = |source| BusyboxError::Tree {
            path: applet.path(),
            source: Box::new(source),
        };
        let at = tree.resolve(&applet.path()).map_err(tree_err)?;
        if tree.entries.contains_key(&at) {
            report.existing.push(at);
            continue;
        }
        tree.ensure_parents(&at);
        let entry = Entry {
            kind: Kind::Symlink {
                target: relative_target(&at, &binary),
            },
            mode: 0o777,
            mtime,
            ..super::tree::implied_dir()
        };
        tree.entries.insert(at.clone(), entry);
        report.created.push(at);
    }
    report.created.sort();
    report.existing.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 file with one read-only PT_LOAD segment over `body`.
    fn elf_with(body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = &mut f[64..];
        ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[4..8].copy_from_slice(&4u32.to_le_bytes()); // PF_R
        ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        ph[32..40].copy_from_slice(&(body.len() as u64).to_le_bytes()); // p_filesz
        f.extend_from_slice(body);
        f
    }

    fn names_blob(names: &[&str]) -> Vec<u8> {
        let mut b: Vec<u8> = names
            .iter()
            .flat_map(|n| [n.as_bytes(), b"\0"].concat())
            .collect();
        b.push(0);
        b
    }

    fn packed(locs: &[u8]) -> Vec<u8> {
        locs.chunks(2)
            .map(|c| c[0] | c.get(1).map_or(0, |h| h << 4))
            .collect()
    }

    const NAMES: &[&str] = &["[", "[[", "cat", "chroot", "linuxrc", "ls", "vi"];
    const LOCS: &[u8] = &[3, 3, 1, 4, 0, 1, 3];

    #[test]
    fn reads_names_and_nibble_packed_locations() {
        // Decoys: a zero run and an unsorted list.
        let mut body = vec![0u8; 40];
        body.extend(names_blob(&["ls", "cat", "sh"]));
        body.extend(packed(LOCS));
        body.extend([0xff; 3]);
        body.extend(names_blob(NAMES));
        body.extend([0u8; 8]);
        let got = applets(&elf_with(&body)).unwrap();
        let paths: Vec<String> = got.iter().map(Applet::path).collect();
        assert_eq!(
            paths,
            [
                "usr/bin/[",
                "usr/bin/[[",
                "bin/cat",
                "usr/sbin/chroot",
                "linuxrc",
                "bin/ls",
                "usr/bin/vi"
            ]
        );
    }

    #[test]
    fn install_no_usr_tables_are_accepted() {
        let locs: Vec<u8> = LOCS
            .iter()
            .map(|&l| if l >= 3 { l - 2 } else { l })
            .collect();
        let mut body = packed(&locs);
        body.push(0xff);
        body.extend(names_blob(NAMES));
        let got = applets(&elf_with(&body)).unwrap();
        assert_eq!(got[0].path(), "bin/[");
        assert_eq!(got[3].path(), "sbin/chroot");
    }

    #[test]
    fn missing_or_ambiguous_tables_are_errors() {
        let names = names_blob(NAMES);
        let err = applets(&elf_with(&names)).unwrap_err();
        assert!(err.contains("applet_install_loc"), "{err}");
        // Two identical location tables: no guessing.
        let mut body = packed(LOCS);
        body.push(0xff);
        body.extend(packed(LOCS));
        body.push(0xff);
        body.extend(&names);
        let err = applets(&elf_with(&body)).unwrap_err();
        assert!(err.contains("2 candidate install-location tables"), "{err}");
        // Too few anchors: not recognisably busybox's table.
        let err = applets(&elf_with(&names_blob(&["alpha", "beta", "ls"]))).unwrap_err();
        assert!(err.contains("applet_names"), "{err}");
        assert!(applets(b"#!/bin/sh\n").unwrap_err().contains("not an ELF"));
    }

    #[test]
    fn relative_targets_between_resolved_paths() {
        assert_eq!(
            relative_target("usr/bin/ls", "usr/sbin/busybox"),
            "../sbin/busybox"
        );
        assert_eq!(
            relative_target("usr/sbin/chroot", "usr/sbin/busybox"),
            "busybox"
        );
        assert_eq!(
            relative_target("linuxrc", "usr/sbin/busybox"),
            "usr/sbin/busybox"
        );
        assert_eq!(
            relative_target("bin/ls", "usr/sbin/busybox"),
            "../usr/sbin/busybox"
        );
    }

    /// The real thing: Debian's busybox-static on the test host, against
    /// its own `--list-full` (run on the host, never from an image).
    #[test]
    fn matches_list_full_of_the_host_busybox() {
        let Ok(data) = std::fs::read("/bin/busybox") else {
            panic!("the tests need busybox-static (/bin/busybox): apt-get install busybox-static");
        };
        let got: Vec<String> = applets(&data).unwrap().iter().map(Applet::path).collect();
        let out = std::process::Command::new("/bin/busybox")
            .arg("--list-full")
            .output()
            .unwrap();
        let want: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert!(want.len() > 100, "{want:?}");
        assert_eq!(got, want);
    }

    #[test]
    fn links_respect_usr_merge_and_existing_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let mut staging = super::super::Staging::new(tmp.path()).unwrap();
        let mut body = packed(LOCS);
        body.push(0xff);
        body.extend(names_blob(NAMES));
        let mut tree = Tree::default();
        let link = |t: &str| Entry {
            kind: Kind::Symlink { target: t.into() },
            mode: 0o777,
            package: Some("filesystem".into()),
            ..super::super::tree::implied_dir()
        };
        tree.entries.insert("bin".into(), link("usr/bin"));
        generated::put_file(
            &mut tree,
            &mut staging,
            "usr/sbin/busybox",
            &elf_with(&body),
            0o755,
            7,
        )
        .unwrap();
        generated::put_file(
            &mut tree,
            &mut staging,
            "usr/bin/cat",
            b"not busybox",
            0o755,
            7,
        )
        .unwrap();
        let r = add_links(&mut tree).unwrap();
        assert_eq!(r.binary, "usr/sbin/busybox");
        assert_eq!(
            r.created,
            [
                "linuxrc",
                "usr/bin/[",
                "usr/bin/[[",
                "usr/bin/ls",
                "usr/bin/vi",
                "usr/sbin/chroot"
            ]
        );
        assert_eq!(r.existing, ["usr/bin/cat"]);
        assert_eq!(
            tree.entries["usr/bin/ls"].kind,
            Kind::Symlink {
                target: "../sbin/busybox".into()
            }
        );
        assert_eq!(tree.follow("bin/ls").unwrap().0, "usr/sbin/busybox");
        assert!(!tree.entries.contains_key("bin/ls"));
        assert!(matches!(
            tree.entries["usr/bin/cat"].kind,
            Kind::File { .. }
        ));
    }

    #[test]
    fn no_binary_is_an_error() {
        let mut tree = Tree::default();
        assert!(matches!(add_links(&mut tree), Err(BusyboxError::NoBinary)));
    }
}
