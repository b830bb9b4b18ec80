//! Differential test: the same package set installed by Debian's dnf
//! (`--installroot`, scriptlets and all) and built by minibuild must give the
//! same tree — path, type, mode, numeric owner, size, sha256, symlink target —
//! except for the differences named in [`Rule`], each with its reason.

mod common;

use std::collections::BTreeMap;

use common::treediff::{dnf_install, layer, walk, Node};
use common::*;

const PACKAGES: [&str; 6] = [
    "bash",
    "coreutils-single",
    "glibc-minimal-langpack",
    "util-linux-core",
    "ca-certificates",
    "fx",
];

/// An allowed difference, with why it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The package manager's own state (rpmdb, dnf history, caches, logs):
    /// minibuild ships no package manager database.
    PackageManagerState,
    /// Files minibuild writes in place of `%post` scriptlets
    /// (update-ca-trust, ldconfig); dnf's scriptlet-less stand-ins here did
    /// not run those tools (the fixture has none), so only minibuild has them.
    Generated,
    /// `strip_setuid` (the default) clears setuid/setgid bits.
    SetuidStripped,
}

fn rule_for_path(path: &str) -> Option<Rule> {
    // Debian's rpm keeps its database in `~/.rpmdb` (here /root/.rpmdb);
    // dnf creates /etc/dnf for its module state.
    const STATE: [&str; 8] = [
        "root/.rpmdb",
        "etc/dnf",
        "var/lib/rpm",
        "var/lib/dnf",
        "var/cache",
        "var/log",
        "usr/lib/sysimage/rpm",
        "usr/lib/sysimage/dnf",
    ];
    const GENERATED: [&str; 5] = [
        "etc/ld.so.cache",
        "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/pem/objsign-ca-bundle.pem",
        "etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt",
    ];
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if STATE.iter().any(|p| under(p)) {
        Some(Rule::PackageManagerState)
    } else if GENERATED.contains(&path) {
        Some(Rule::Generated)
    } else {
        None
    }
}

#[test]
fn minibuild_matches_dnf_installroot() {
    require_tool("dnf");
    let tmp = tempfile::tempdir().unwrap();
    let repo = format!("file://{}/repo/x86_64/", fixtures().display());
    let dnf_root = tmp.path().join("dnf-root");
    dnf_install(&dnf_root, &[("fx", repo)], &PACKAGES);

    let list: Vec<String> = PACKAGES.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"diff\"\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\n\n[options]\nreleasever = \"40\"\ndocs = false\nlangs = [\"all\"]\n",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    let archive = tmp.path().join("image.oci.tar");
    run_ok(&mut build_cmd(&recipe, &archive, &tmp.path().join("cache")));

    let theirs = walk(&dnf_root);
    let ours = layer(&archive);
    let mut unexplained = Vec::new();
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for path in keys {
        let (a, b) = (theirs.get(path), ours.get(path));
        if a == b {
            continue;
        }
        let rule = rule_for_path(path).or_else(|| match (a, b) {
            (Some(a), Some(b))
                if a.mode & 0o6000 != 0
                    && b.mode == a.mode & !0o6000
                    && Node {
                        mode: b.mode,
                        ..a.clone()
                    } == *b =>
            {
                Some(Rule::SetuidStripped)
            }
            _ => None,
        });
        match rule {
            Some(r) => *used.entry(format!("{r:?}")).or_default() += 1,
            None => unexplained.push(format!(
                "/{path}\n    dnf:       {a:?}\n    minibuild: {b:?}"
            )),
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s):\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    // The rules are not vacuous: each one explained something.
    for r in ["PackageManagerState", "Generated", "SetuidStripped"] {
        assert!(used.contains_key(r), "rule {r} explained nothing: {used:?}");
    }
    assert!(theirs.len() > 500, "dnf installed {} paths", theirs.len());
}
