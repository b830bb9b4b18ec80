//! The crypto-policies package's lua `%post` (Fedora, RHEL, Azure Linux,
//! openSUSE): on a first install (no `/etc/crypto-policies/config`) it
//! writes `DEFAULT` to `config` and `state/current`, then links every file
//! of `/usr/share/crypto-policies/DEFAULT/` as
//! `/etc/crypto-policies/back-ends/BACKEND.config` (BACKEND: the name up to
//! its first dot). OpenSSL, GnuTLS, NSS, OpenSSH and Kerberos read their
//! system policy through these links.
//!
//! Two variants exist in real specs: older ones (Azure Linux's, imported
//! from Fedora 32) iterate `posix.files` without skipping `.` and `..`,
//! which leaves `back-ends/.config → …/DEFAULT/..` (readdir returns `.`
//! then `..` first, and each replaces the last); newer ones skip them.
//! openSUSE's then removes the `libreswan`, `javasystem` and `openssl`
//! links again (`if st and st.type == "link" then posix.unlink(…)`).
//!
//! The policy is always DEFAULT: the lua reads `/proc/sys/crypto/fips_enabled`
//! of the machine it runs on, which for an image build is not the machine
//! the image will run on.

use super::place::put_symlink;
use super::{Done, EffectError, Input, NotDone, Report};
use crate::rootfs::generated::{newest_mtime, put_file};
use crate::rootfs::staging::Staging;
use crate::rootfs::unpack::{ScriptletKind, SkippedScriptlet};
use crate::rootfs::{Kind, Tree};

pub const NAME: &str = "crypto policy";

const PACKAGE: &str = "crypto-policies";
const POLICY_DIR: &str = "/usr/share/crypto-policies/DEFAULT";
const BACK_ENDS: &str = "/etc/crypto-policies/back-ends";

/// The recognised shape of the %post body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The loop skips `.` and `..`.
    pub skips_dots: bool,
    /// Links removed after the loop when they are symlinks.
    pub unlinked: Vec<String>,
}

/// Whether `s` is crypto-policies' back-end %post, and its shape.
pub fn recognise(package: &str, s: &SkippedScriptlet) -> Option<Shape> {
    if package != PACKAGE {
        return None;
    }
    recognise_body(s)
}

/// [`recognise`] by the scriptlet alone (for `plan`, which names no
/// package to the classifier).
pub fn recognise_body(s: &SkippedScriptlet) -> Option<Shape> {
    let lua = s.interpreter.first().is_some_and(|i| i == "<lua>");
    if s.kind != ScriptletKind::PostIn || !lua {
        return None;
    }
    let body = &s.body;
    let needed = [
        "if not posix.access(\"/etc/crypto-policies/config\") then",
        "local policypath = \"/usr/share/crypto-policies/\"..policy",
        "for fn in posix.files(policypath) do",
        "local cfgfn = \"/etc/crypto-policies/back-ends/\"..backend..\".config\"",
        "posix.symlink(policypath..\"/\"..fn, cfgfn)",
    ];
    if !needed.iter().all(|n| body.contains(n)) {
        return None;
    }
    let skips_dots = body.contains("if fn ~= \".\" and fn ~= \"..\" then");
    // `cfg_path_x = "/etc/…"` … `if st and st.type == "link" then posix.unlink(cfg_path_x)`.
    let mut unlinked = Vec::new();
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    for (n, l) in lines.iter().enumerate() {
        let Some((var, value)) = l.split_once(" = \"") else {
            continue;
        };
        let Some(path) = value.strip_suffix('"') else {
            continue;
        };
        let tail = lines[n + 1..].iter().take(4).copied().collect::<Vec<_>>();
        let shape = [
            format!("st = posix.stat({var})"),
            "if st and st.type == \"link\" then".to_string(),
            format!("posix.unlink({var})"),
            "end".to_string(),
        ];
        if tail == shape.iter().map(String::as_str).collect::<Vec<_>>() {
            unlinked.push(path.to_string());
        }
    }
    Some(Shape {
        skips_dots,
        unlinked,
    })
}

/// The links one run of the %post makes, in order: (link, target).
pub fn links(tree: &Tree, shape: &Shape) -> Vec<(String, String)> {
    let mut names: Vec<String> = Vec::new();
    if let Some((dir, e)) = tree.follow(POLICY_DIR) {
        if e.kind == Kind::Dir {
            if !shape.skips_dots {
                names.extend([".".to_string(), "..".to_string()]);
            }
            names.extend(tree.children(&dir).map(|(n, _)| n.to_string()));
        }
    }
    names
        .into_iter()
        .map(|fn_| {
            // fn:gsub(".*/", ""):gsub("%..*", ""): drop from the first dot.
            let backend = fn_.split('.').next().unwrap_or("");
            (
                format!("{BACK_ENDS}/{backend}.config"),
                format!("{POLICY_DIR}/{fn_}"),
            )
        })
        .collect()
}

/// The pass.
pub fn pass(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let Some(p) = input.scripts.iter().find(|p| p.package == PACKAGE) else {
        return Ok(());
    };
    let shape = p.scriptlets.iter().find_map(|s| recognise(&p.package, s));
    let Some(shape) = shape else {
        if p.scriptlets
            .iter()
            .any(|s| s.body.contains("crypto-policies/back-ends"))
        {
            report.not_done.push(NotDone {
                pass: NAME,
                package: p.package.clone(),
                why: "the %post that links /etc/crypto-policies/back-ends is not the shape minibuild knows; back-end links not made".into(),
            });
        }
        return Ok(());
    };
    if tree.follow("/etc/crypto-policies/config").is_some() {
        // Not a first install: the %post does nothing.
        return Ok(());
    }
    let mtime = newest_mtime(tree);
    let err = |path: &str, e: String| EffectError {
        pass: NAME,
        message: format!("{path}: {e}"),
        source: None,
    };
    // io.open(…, "w") fails when the directory is missing; the package ships both.
    for f in [
        "/etc/crypto-policies/config",
        "/etc/crypto-policies/state/current",
    ] {
        let parent = f.rsplit_once('/').map_or("/", |(d, _)| d);
        if matches!(tree.follow(parent), Some((_, e)) if e.kind == Kind::Dir) {
            put_file(tree, stage, f, b"DEFAULT\n", 0o644, mtime).map_err(|e| EffectError {
                pass: NAME,
                message: format!("cannot write {f}"),
                source: Some(Box::new(e)),
            })?;
        }
    }
    let back_ends_dir = matches!(tree.follow(BACK_ENDS), Some((_, e)) if e.kind == Kind::Dir);
    let mut made = Vec::new();
    if back_ends_dir {
        for (link, target) in links(tree, &shape) {
            put_symlink(tree, &link, &target, mtime).map_err(|e| err(&link, e))?;
            if !made.contains(&link) {
                made.push(link);
            }
        }
    }
    for u in &shape.unlinked {
        if let Ok(at) = tree.resolve(u) {
            if matches!(
                tree.entries.get(&at).map(|e| &e.kind),
                Some(Kind::Symlink { .. })
            ) {
                tree.entries.remove(&at);
                made.retain(|m| m != u);
            }
        }
    }
    report.done.push(Done {
        pass: NAME,
        package: Some(p.package.clone()),
        what: format!(
            "policy DEFAULT, {} back-end links in {BACK_ENDS}",
            made.len()
        ),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::tree::implied_dir;
    use crate::rootfs::Entry;

    /// crypto-policies.spec %post (microsoft/azurelinux
    /// SPECS-EXTENDED/crypto-policies/crypto-policies.spec), macros expanded.
    pub const AZURE_POST: &str = "if not posix.access(\"/etc/crypto-policies/config\") then\n    local policy = \"DEFAULT\"\n    local cf = io.open(\"/proc/sys/crypto/fips_enabled\", \"r\")\n    if cf then\n        if cf:read() == \"1\" then\n            policy = \"FIPS\"\n        end\n        cf:close()\n    end\n    cf = io.open(\"/etc/crypto-policies/config\", \"w\")\n    if cf then\n        cf:write(policy..\"\\n\")\n        cf:close()\n    end\n    cf = io.open(\"/etc/crypto-policies/state/current\", \"w\")\n    if cf then\n        cf:write(policy..\"\\n\")\n        cf:close()\n    end\n    local policypath = \"/usr/share/crypto-policies/\"..policy\n    for fn in posix.files(policypath) do\n        local backend = fn:gsub(\".*/\", \"\"):gsub(\"%..*\", \"\")\n        local cfgfn = \"/etc/crypto-policies/back-ends/\"..backend..\".config\"\n        posix.unlink(cfgfn)\n        posix.symlink(policypath..\"/\"..fn, cfgfn)\n    end\nend\n";

    /// The tail of openSUSE's crypto-policies.spec %post
    /// (bmwiedemann/openSUSE packages/c/crypto-policies), after the loop
    /// that skips `.` and `..`.
    const SUSE_TAIL: &str = "\ncfg_path_libreswan = \"/etc/crypto-policies/back-ends/libreswan.config\"\nst = posix.stat(cfg_path_libreswan)\nif st and st.type == \"link\" then\n   posix.unlink(cfg_path_libreswan)\nend\n";

    fn post(body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            kind: ScriptletKind::PostIn,
            interpreter: vec!["<lua>".into()],
            body: body.into(),
            triggered_by: vec![],
        }
    }

    fn tree() -> Tree {
        let mut t = Tree::default();
        for d in [
            "etc",
            "etc/crypto-policies",
            "etc/crypto-policies/back-ends",
            "etc/crypto-policies/state",
            "usr",
            "usr/share",
            "usr/share/crypto-policies",
            "usr/share/crypto-policies/DEFAULT",
        ] {
            t.entries.insert(d.into(), implied_dir());
        }
        for f in [
            "openssl.txt",
            "opensslcnf.txt",
            "libreswan.txt",
            "openssl_fips.txt",
        ] {
            t.entries.insert(
                format!("usr/share/crypto-policies/DEFAULT/{f}"),
                Entry {
                    kind: Kind::Fifo,
                    ..implied_dir()
                },
            );
        }
        t
    }

    #[test]
    fn azure_body_links_every_back_end_and_dot_config() {
        let shape = recognise("crypto-policies", &post(AZURE_POST)).unwrap();
        assert_eq!(
            shape,
            Shape {
                skips_dots: false,
                unlinked: vec![]
            }
        );
        let l = links(&tree(), &shape);
        assert_eq!(l[0].0, "/etc/crypto-policies/back-ends/.config");
        assert_eq!(
            l[1],
            (
                "/etc/crypto-policies/back-ends/.config".into(),
                "/usr/share/crypto-policies/DEFAULT/..".into()
            )
        );
        assert!(l.contains(&(
            "/etc/crypto-policies/back-ends/openssl_fips.config".into(),
            "/usr/share/crypto-policies/DEFAULT/openssl_fips.txt".into()
        )));
        assert_eq!(l.len(), 6);
        assert!(recognise("other", &post(AZURE_POST)).is_none());
    }

    #[test]
    fn suse_body_skips_dots_and_unlinks() {
        let body = AZURE_POST.replace(
            "    for fn in posix.files(policypath) do\n",
            "    for fn in posix.files(policypath) do\n        if fn ~= \".\" and fn ~= \"..\" then\n",
        ) + SUSE_TAIL;
        let shape = recognise("crypto-policies", &post(&body)).unwrap();
        assert!(shape.skips_dots);
        assert_eq!(
            shape.unlinked,
            ["/etc/crypto-policies/back-ends/libreswan.config"]
        );
        assert_eq!(links(&tree(), &shape).len(), 4);
    }
}
