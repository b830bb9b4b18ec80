//! Checks a finished tree the way a reviewer would: does every program find
//! its interpreter and libraries, is anything setuid, world-writable (only a
//! sticky directory such as /tmp may be) or granted file capabilities, did a
//! package manager sneak in, is there a CA bundle when TLS is expected.
//!
//! Runs over the [`Tree`] (paths resolved through the tree's own symlinks,
//! never the host's); ELF files are read from their staging blobs.

use std::collections::BTreeSet;
use std::fmt;

use crate::elf;
use crate::image::load::Loaded;
use crate::package_manager::STATE_PATHS;
use crate::rootfs::{Entry, Kind, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub severity: Severity,
    /// Image path (with leading `/`) the finding is about.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Whether the image is expected to trust TLS servers (it has `ca-certificates`).
    pub expect_ca_bundle: bool,
}

/// Where rpm-based distributions keep the CA bundle that OpenSSL, GnuTLS and curl read.
const CA_BUNDLES: &[&str] = &[
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/certs/ca-bundle.crt",
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
];

/// Everything worth reporting about one platform of an image read back
/// from disk: the tree's findings plus, as errors, the layer entries the
/// tree could not hold; sorted.
pub fn check_loaded(loaded: &Loaded, opts: &CheckOptions) -> Vec<Finding> {
    let mut findings = check(&loaded.tree, opts);
    findings.extend(loaded.skipped.iter().map(|s| Finding {
        severity: Severity::Error,
        path: s.path.clone(),
        message: s.reason.clone(),
    }));
    findings.sort();
    findings
}

/// Everything worth reporting about `tree`, sorted (errors last, then by path).
pub fn check(tree: &Tree, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = BTreeSet::new();
    let mut push = |severity, path: &str, message: String| {
        out.insert(Finding {
            severity,
            path: format!("/{path}"),
            message,
        });
    };
    let lib_dirs = library_dirs(tree);
    for (path, entry) in &tree.entries {
        if entry.mode & 0o6000 != 0 && !matches!(entry.kind, Kind::Dir) {
            let bits = match entry.mode & 0o6000 {
                0o4000 => "setuid",
                0o2000 => "setgid",
                _ => "setuid and setgid",
            };
            push(
                Severity::Error,
                path,
                format!("is {bits} ({:04o})", entry.mode & 0o7777),
            );
        }
        // Only a sticky directory (/tmp itself) may be world-writable; what
        // sits under /tmp in an image is as exposed as anything else.
        let world_writable = entry.mode & 0o002 != 0 && !matches!(entry.kind, Kind::Symlink { .. });
        let sticky_dir = matches!(entry.kind, Kind::Dir) && entry.mode & 0o1000 != 0;
        if world_writable && !sticky_dir {
            push(
                Severity::Error,
                path,
                format!("is world-writable ({:04o})", entry.mode & 0o7777),
            );
        }
        if let Some(value) = entry.xattrs.get("security.capability") {
            let (severity, message) = describe_caps(value);
            push(severity, path, message);
        }
        if let Kind::File { blob, .. } = &entry.kind {
            if may_be_elf(path, entry) {
                let dynamic = elf::read(blob.open()).ok().flatten();
                if let Some(d) = dynamic {
                    check_elf(tree, path, &d, &lib_dirs, &mut push);
                }
            }
        }
    }
    // The package manager's commands: their presence means a package
    // manager is in the image (its data, such as the kept rpmdb, does not).
    let executables = STATE_PATHS.iter().filter(|p| p.starts_with("usr/bin/"));
    for pm in executables {
        if tree.entries.contains_key(*pm) {
            push(
                Severity::Error,
                pm,
                "package manager present in the image".into(),
            );
        }
    }
    if opts.expect_ca_bundle {
        let found = CA_BUNDLES.iter().any(|p| {
            resolve(tree, p)
                .and_then(|r| tree.entries.get(&r))
                .is_some_and(|e| matches!(e.kind, Kind::File { size, .. } if size > 0))
        });
        if !found {
            push(
                Severity::Error,
                CA_BUNDLES[0],
                "no CA bundle: TLS clients in this image will trust no server (ca-certificates' bundle is made by a scriptlet)".into(),
            );
        }
    }
    let mut v: Vec<Finding> = out.into_iter().collect();
    v.sort_by(|a, b| (a.severity, &a.path).cmp(&(b.severity, &b.path)));
    v
}

/// Capabilities that amount to root (capabilities(7), and the well-known
/// escalations from each): a file granting one is as serious as setuid-root.
const ROOT_EQUIVALENT_CAPS: &[&str] = &[
    "cap_sys_admin",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_ptrace",
    "cap_setuid",
    "cap_setgid",
    "cap_setfcap",
    "cap_setpcap",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_chown",
    "cap_fowner",
    "cap_bpf",
    "cap_mknod",
];

/// A `security.capability` xattr as a finding: an error when it grants a
/// root-equivalent capability (or cannot be read), a warning otherwise
/// (`cap_net_raw` on ping is common and narrow).
fn describe_caps(value: &[u8]) -> (Severity, String) {
    match crate::rootfs::caps::from_xattr(value) {
        Some((names, effective)) => {
            let worst = names
                .iter()
                .any(|n| ROOT_EQUIVALENT_CAPS.contains(&n.as_str()) || n.starts_with("cap_bit"));
            let severity = if worst {
                Severity::Error
            } else {
                Severity::Warning
            };
            let raised = if effective { "=ep" } else { "=p" };
            (
                severity,
                format!("has file capabilities {}{raised}", names.join(",")),
            )
        }
        None => (
            Severity::Error,
            format!(
                "has a security.capability xattr minibuild cannot read ({} bytes)",
                value.len()
            ),
        ),
    }
}

fn may_be_elf(path: &str, entry: &Entry) -> bool {
    entry.mode & 0o111 != 0 || path.contains(".so")
}

fn check_elf(
    tree: &Tree,
    path: &str,
    d: &elf::Dynamic,
    lib_dirs: &[String],
    push: &mut impl FnMut(Severity, &str, String),
) {
    if let Some(interp) = &d.interpreter {
        if resolve_file(tree, interp.trim_start_matches('/')).is_none() {
            push(
                Severity::Error,
                path,
                format!("its interpreter {interp} is missing"),
            );
        }
    }
    let origin = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    for lib in &d.needed {
        let found = if lib.contains('/') {
            resolve_file(tree, lib.trim_start_matches('/')).is_some()
        } else {
            let runpath = d.runpath.iter().map(|r| {
                r.replace("$ORIGIN", &format!("/{origin}"))
                    .replace("${ORIGIN}", &format!("/{origin}"))
            });
            runpath.chain(lib_dirs.iter().cloned()).any(|dir| {
                resolve_file(tree, &format!("{}/{lib}", dir.trim_matches('/'))).is_some()
            })
        };
        if !found {
            push(
                Severity::Error,
                path,
                format!("needs {lib}, which is not in the image"),
            );
        }
    }
}

/// The dynamic linker's search path: `/etc/ld.so.conf` (with its `include`
/// globs of the form `dir/*.conf`) and the default directories.
fn library_dirs(tree: &Tree) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut conf_files = vec!["etc/ld.so.conf".to_string()];
    let mut i = 0;
    while i < conf_files.len() && i < 64 {
        let text = read_small(tree, &conf_files[i].clone()).unwrap_or_default();
        for line in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
        {
            if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
                // Relative includes are relative to the including file's directory.
                let pattern = match pattern.strip_prefix('/') {
                    Some(abs) => abs.to_string(),
                    None => {
                        let here = conf_files[i].rsplit_once('/').map_or("", |(d, _)| d);
                        format!("{here}/{pattern}")
                    }
                };
                let (dir, glob) = pattern.rsplit_once('/').unwrap_or(("etc", &pattern));
                let suffix = glob.strip_prefix('*').unwrap_or(glob);
                let mut found: Vec<String> = tree
                    .entries
                    .range(format!("{dir}/")..)
                    .take_while(|(p, _)| p.starts_with(&format!("{dir}/")))
                    .map(|(p, _)| p.clone())
                    .filter(|p| !p[dir.len() + 1..].contains('/') && p.ends_with(suffix))
                    .collect();
                found.sort();
                conf_files.extend(found);
            } else if line.starts_with('/') {
                dirs.push(line.to_string());
            }
        }
        i += 1;
    }
    for d in [
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ] {
        dirs.push(d.to_string());
    }
    dirs
}

fn read_small(tree: &Tree, path: &str) -> Option<String> {
    let resolved = resolve(tree, path)?;
    match &tree.entries.get(&resolved)?.kind {
        Kind::File { blob, size, .. } if *size < 1 << 20 => blob.read_to_string().ok(),
        _ => None,
    }
}

/// `path` resolved to a regular file, following symlinks inside the tree.
fn resolve_file(tree: &Tree, path: &str) -> Option<String> {
    let r = resolve(tree, path)?;
    matches!(tree.entries.get(&r)?.kind, Kind::File { .. }).then_some(r)
}

/// Resolve `path` (relative to the image root) through the tree's symlinks,
/// like the kernel would inside a chroot: `..` stops at the root, absolute
/// targets restart at the root, at most 40 links are followed.
pub fn resolve(tree: &Tree, path: &str) -> Option<String> {
    let mut todo: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(comp) = todo.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(comp);
        let cur = done.join("/");
        if let Some(Entry {
            kind: Kind::Symlink { target },
            ..
        }) = tree.entries.get(&cur)
        {
            hops += 1;
            if hops > 40 {
                return None;
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(
                target
                    .split('/')
                    .rev()
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
        }
    }
    let p = done.join("/");
    (p.is_empty() || tree.entries.contains_key(&p)).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::image::test_tree::TestTree as T;

    fn messages(f: &[Finding]) -> Vec<String> {
        f.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn resolves_inside_the_tree_only() {
        let mut t = T::new();
        t.dir("usr", 0o755);
        t.dir("usr/lib64", 0o755);
        t.symlink("lib64", "usr/lib64");
        t.file("usr/lib64/libx.so.1", 0o755, b"x");
        t.symlink("escape", "../../../../etc");
        t.symlink("abs", "/usr/lib64/libx.so.1");
        t.symlink("loop", "loop");
        assert_eq!(
            resolve(&t.tree, "lib64/libx.so.1").as_deref(),
            Some("usr/lib64/libx.so.1")
        );
        assert_eq!(
            resolve(&t.tree, "abs").as_deref(),
            Some("usr/lib64/libx.so.1")
        );
        assert_eq!(
            resolve(&t.tree, "escape"),
            None,
            "`..` stops at the root, and /etc is not in this tree"
        );
        assert_eq!(resolve(&t.tree, "loop"), None);
    }

    #[test]
    fn a_loaded_image_reports_what_its_tree_could_not_hold_as_errors() {
        let mut t = T::new();
        t.file("usr/bin/su", 0o4755, b"#!");
        let loaded = Loaded {
            platform: "linux/amd64".into(),
            manifest_digest: crate::digest::Digest::sha256_of(b"m"),
            tree: t.tree,
            layers: vec![],
            user: None,
            skipped: vec![crate::image::load::Skipped {
                path: "/dev/sda".into(),
                reason: "is a block device node (8:0, mode 0660) (layer sha256:1)".into(),
            }],
        };
        let got = check_loaded(&loaded, &CheckOptions::default());
        let errors: Vec<(&str, &str)> = got
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.path.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    "/dev/sda",
                    "is a block device node (8:0, mode 0660) (layer sha256:1)"
                ),
                ("/usr/bin/su", "is setuid (4755)"),
            ]
        );
    }

    #[test]
    fn flags_setuid_world_writable_and_package_managers() {
        let mut t = T::new();
        t.dir("tmp", 0o1777);
        t.dir("var", 0o755);
        t.dir("var/spool", 0o777);
        t.file("usr/bin/su", 0o4755, b"#!");
        t.file("usr/bin/write", 0o2755, b"#!");
        // Nothing under /tmp is exempt: only the sticky /tmp itself is.
        t.file("tmp/scratch", 0o666, b"");
        t.file("var/tmp/suid", 0o4755, b"#!");
        t.file("usr/bin/rpm", 0o755, b"#!");
        let caps = |text| {
            let mut xattrs = std::collections::BTreeMap::new();
            let value = crate::rootfs::caps::to_xattr(text).unwrap().unwrap();
            xattrs.insert("security.capability".to_string(), value);
            xattrs
        };
        t.file("usr/bin/ping", 0o755, b"#!");
        t.file("usr/bin/admin", 0o755, b"#!");
        t.tree.entries.get_mut("usr/bin/ping").unwrap().xattrs = caps("cap_net_raw=p");
        t.tree.entries.get_mut("usr/bin/admin").unwrap().xattrs = caps("cap_sys_admin=ep");
        let f = check(&t.tree, &CheckOptions::default());
        assert_eq!(
            messages(&f),
            vec![
                "/usr/bin/ping: has file capabilities cap_net_raw=p",
                "/tmp/scratch: is world-writable (0666)",
                "/usr/bin/admin: has file capabilities cap_sys_admin=ep",
                "/usr/bin/rpm: package manager present in the image",
                "/usr/bin/su: is setuid (4755)",
                "/usr/bin/write: is setgid (2755)",
                "/var/spool: is world-writable (0777)",
                "/var/tmp/suid: is setuid (4755)",
            ]
        );
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[1..].iter().all(|f| f.severity == Severity::Error));
    }

    #[test]
    fn finds_missing_libraries_of_real_binaries() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let host = elf::read(std::fs::File::open(&sh).unwrap())
            .unwrap()
            .unwrap();
        let mut t = T::new();
        t.file("usr/bin/sh", 0o755, &std::fs::read(&sh).unwrap());
        let f = check(&t.tree, &CheckOptions::default());
        let interp = host.interpreter.clone().unwrap();
        assert!(
            messages(&f).contains(&format!("/usr/bin/sh: its interpreter {interp} is missing")),
            "{f:?}"
        );
        for lib in &host.needed {
            assert!(
                messages(&f).contains(&format!(
                    "/usr/bin/sh: needs {lib}, which is not in the image"
                )),
                "{f:?}"
            );
        }
        // Provide them (under the usrmerge layout, through a symlinked /lib64 and ld.so.conf.d).
        t.dir("usr", 0o755);
        t.dir("usr/lib64", 0o755);
        t.symlink("lib64", "usr/lib64");
        t.file("etc/ld.so.conf", 0o644, b"include ld.so.conf.d/*.conf\n");
        t.file("etc/ld.so.conf.d/x.conf", 0o644, b"/opt/app/lib\n");
        let interp_name = interp.rsplit('/').next().unwrap();
        let interp_dir = interp
            .trim_start_matches('/')
            .rsplit_once('/')
            .unwrap()
            .0
            .to_string();
        t.file(&format!("usr/lib64/{interp_name}"), 0o755, b"ld");
        if interp_dir != "lib64" {
            t.file(&format!("{interp_dir}/{interp_name}"), 0o755, b"ld");
        }
        for lib in &host.needed {
            t.file(&format!("opt/app/lib/{lib}"), 0o755, b"lib");
        }
        let f = check(&t.tree, &CheckOptions::default());
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn ca_bundle_expected() {
        let mut t = T::new();
        let opts = CheckOptions {
            expect_ca_bundle: true,
        };
        assert_eq!(check(&t.tree, &opts).len(), 1);
        t.file(
            "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            0o644,
            b"-----BEGIN CERTIFICATE-----",
        );
        t.symlink(
            "etc/pki/tls/certs/ca-bundle.crt",
            "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        );
        assert!(check(&t.tree, &opts).is_empty());
    }
}
