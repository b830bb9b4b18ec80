//! Differential test for the scriptlet effects that make links: packages
//! whose scriptlets are copied from real specs are installed by
//! `dnf --installroot` (which runs them: shell ones in a chroot with the
//! fixture's bash, lua ones inside rpm) and built by minibuild (which reads
//! them and emulates the effect). The symlinks, directories and files they
//! leave must come out the same; every other difference is a named [`Rule`].
//!
//! Scriptlets used, each verbatim from its spec (only %files and payloads
//! are reduced to what the scriptlet touches):
//! - cracklib `%post` (microsoft/azurelinux SPECS/cracklib): `ln -sf` behind
//!   `[ $1 = 1 ] || exit 0`;
//! - Azure Linux filesystem `%post -p <lua>` (SPECS/filesystem): six
//!   `posix.symlink` under /usr/lib/debug;
//! - openSUSE filesystem `%pretrans -p <lua>`, its /var/run and /var/lock
//!   part (bmwiedemann/openSUSE packages/f/filesystem): on a first install
//!   it runs on an empty root and makes nothing;
//! - crypto-policies `%post -p <lua>` (SPECS-EXTENDED/crypto-policies):
//!   config, state/current and the DEFAULT back-end links;
//! - p11-kit-trust `%post` (SPECS/p11-kit): `update-alternatives --install`,
//!   only when MINIBUILD_CHKCONFIG_SRC names chkconfig's alternatives.c
//!   (fedora-sysv/chkconfig): no registry the project's machines reach ships
//!   chkconfig (Debian has none), so the real tool is built here with gcc
//!   only when its source is given; the state format is pinned by the unit
//!   tests in src/rootfs/effects/alternatives.rs otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::scriptlet_specs::*;
use common::treediff::{dnf_install, layer, walk};
use common::*;

/// An allowed difference, with why it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// The package manager's own state (rpmdb, dnf history, caches, logs).
    PackageManagerState,
    /// /etc/ld.so.cache: minibuild writes its own (cracklib's %post runs
    /// the fixture's ldconfig under dnf).
    Generated,
    /// `strip_setuid` (the default) clears setuid/setgid bits.
    SetuidStripped,
}

fn rule_for(
    path: &str,
    a: Option<&common::treediff::Node>,
    b: Option<&common::treediff::Node>,
) -> Option<Rule> {
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
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if STATE.iter().any(|p| under(p)) {
        return Some(Rule::PackageManagerState);
    }
    if path == "etc/ld.so.cache" {
        return Some(Rule::Generated);
    }
    match (a, b) {
        (Some(a), Some(b)) if a.mode & 0o6000 != 0 && b.mode == a.mode & !0o6000 => {
            let mut a = a.clone();
            a.mode = b.mode;
            (a == *b).then_some(Rule::SetuidStripped)
        }
        _ => None,
    }
}

#[test]
fn scriptlet_links_match_dnf_installroot() {
    assert!(
        is_root(),
        "this test installs with dnf --installroot and must run as root"
    );
    require_tool("dnf");
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let tmp = tempfile::tempdir().unwrap();
    let mut specs = vec![
        cracklib(),
        azure_filesystem_debug(),
        suse_var_run(),
        crypto_policies(),
    ];
    let alternatives = std::env::var_os("MINIBUILD_CHKCONFIG_SRC").map(PathBuf::from);
    match &alternatives {
        Some(src) => {
            require_tool("gcc");
            assert!(src.is_file(), "MINIBUILD_CHKCONFIG_SRC={} is not a file", src.display());
            specs.push(chkconfig_alternatives(src));
            specs.push(p11_kit_trust("chkconfig-alternatives"));
        }
        None => eprintln!(
            "diff_dnf_links: alternatives not compared (set MINIBUILD_CHKCONFIG_SRC to chkconfig's alternatives.c to include it)"
        ),
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let mut install: Vec<&str> = vec!["bash", "coreutils-single", "glibc-minimal-langpack"];
    install.extend(&names);
    let repo = build_repo(tmp.path(), &specs);

    let dnf_root = tmp.path().join("dnf-root");
    let fixture = format!("file://{}/repo/x86_64/", fixtures().display());
    dnf_install(
        &dnf_root,
        &[
            ("fx", fixture.clone()),
            ("fx2", format!("file://{}/", repo.display())),
        ],
        &install,
    );

    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"links\"\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [[repo]]\nname = \"effects\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\n\n[options]\nreleasever = \"40\"\ndocs = false\nlangs = [\"all\"]\n",
            fixture_file_url(),
            repo.display(),
            list.join(", ")
        ),
    )
    .unwrap();
    let archive = tmp.path().join("image.oci.tar");
    let out = run_ok(&mut build_cmd(&recipe, &archive, &tmp.path().join("cache")));
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);

    let theirs = walk(&dnf_root);
    let ours = layer(&archive);

    // What the scriptlets made is there on both sides, identical.
    let mut expected: Vec<String> = ["hwm", "pwd", "pwi"]
        .iter()
        .map(|e| format!("usr/share/cracklib/pw_dict.{e}"))
        .collect();
    expected.extend(
        [
            "lib64",
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "usr/.dwz",
        ]
        .iter()
        .map(|l| format!("usr/lib/debug/{l}")),
    );
    expected.extend(
        CRYPTO_BACK_ENDS
            .iter()
            .map(|b| format!("etc/crypto-policies/back-ends/{b}.config")),
    );
    // The Azure Linux loop does not skip `.` and `..`: `.config → DEFAULT/..`.
    expected.extend([
        "etc/crypto-policies/back-ends/.config".into(),
        "etc/crypto-policies/config".into(),
        "etc/crypto-policies/state/current".into(),
    ]);
    if alternatives.is_some() {
        expected.extend([
            "usr/lib64/libnssckbi.so".to_string(),
            "etc/alternatives/libnssckbi.so.x86_64".to_string(),
            "var/lib/alternatives/libnssckbi.so.x86_64".to_string(),
        ]);
    }
    for p in &expected {
        assert!(theirs.contains_key(p), "dnf's scriptlets did not make /{p}");
        assert_eq!(
            theirs.get(p),
            ours.get(p),
            "/{p} differs (left dnf, right minibuild)\n{log}"
        );
    }
    // The %pretrans ran on an empty root and made nothing: /var/run and
    // /var/lock are whatever the packages ship, on both sides.
    for p in ["var/run", "var/lock"] {
        assert_eq!(theirs.get(p), ours.get(p), "/{p}");
        assert!(
            ours.get(p)
                .is_none_or(|n| n.content != "/run" && n.content != "/run/lock"),
            "/{p}: {:?}",
            ours.get(p)
        );
    }

    // And nothing else differs, but for the named rules.
    let mut unexplained = Vec::new();
    let mut used: BTreeMap<Rule, usize> = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for path in keys {
        let (a, b) = (theirs.get(path), ours.get(path));
        if a == b {
            continue;
        }
        match rule_for(path, a, b) {
            Some(r) => *used.entry(r).or_default() += 1,
            None => unexplained.push(format!(
                "/{path}\n    dnf:       {a:?}\n    minibuild: {b:?}"
            )),
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s):\n{}\n{log}",
        unexplained.len(),
        unexplained.join("\n")
    );
    assert!(used.contains_key(&Rule::PackageManagerState), "{used:?}");
    // The build report says what each pass did.
    for pass in [
        "scriptlet effect, links (cracklib)",
        "scriptlet effect, crypto policy (crypto-policies)",
    ] {
        assert!(
            log.contains(pass),
            "no `{pass}` in the build output:\n{log}"
        );
    }
}
