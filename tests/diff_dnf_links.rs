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
use std::path::{Path, PathBuf};
use std::process::Command;

use common::treediff::{layer, walk};
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

fn rule_for(path: &str, a: Option<&common::treediff::Node>, b: Option<&common::treediff::Node>) -> Option<Rule> {
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

/// A package built for the test: its spec, and a file to put in SOURCES.
struct Spec {
    name: &'static str,
    body: String,
}

const HEADER: &str = "Version: 1.0\nRelease: 1\nSummary: scriptlet effect fixture\nLicense: MIT\nAutoReqProv: no\n";

fn cracklib() -> Spec {
    Spec {
        name: "cracklib",
        body: format!(
            "Name: cracklib\n{HEADER}BuildArch: noarch\nRequires(post): bash coreutils-single\n%description\ncracklib's %post\n\
             %install\nmkdir -p %{{buildroot}}%{{_datadir}}/cracklib\n\
             for e in hwm pwd pwi; do echo empty-$e > %{{buildroot}}%{{_datadir}}/cracklib/empty.$e; done\n\
             %post\n/sbin/ldconfig\n[ $1 = 1 ] || exit 0\necho \"using empty dict to provide pw_dict\" >&2\n\
             ln -sf empty.hwm %{{_datadir}}/cracklib/pw_dict.hwm\nln -sf empty.pwd %{{_datadir}}/cracklib/pw_dict.pwd\n\
             ln -sf empty.pwi %{{_datadir}}/cracklib/pw_dict.pwi\n\
             %files\n%dir %{{_datadir}}/cracklib\n%{{_datadir}}/cracklib/empty*\n"
        ),
    }
}

fn azure_filesystem_debug() -> Spec {
    Spec {
        name: "azl-debug-dirs",
        body: format!(
            "Name: azl-debug-dirs\n{HEADER}BuildArch: noarch\n%description\nAzure Linux filesystem's %post\n\
             %install\ninstall -vdm 755 %{{buildroot}}/usr/lib/debug/{{lib,bin,sbin,usr,.dwz}}\n\
             ln -svfn ../bin %{{buildroot}}/usr/lib/debug/usr/bin\nln -svfn ../sbin %{{buildroot}}/usr/lib/debug/usr/sbin\n\
             ln -svfn ../lib %{{buildroot}}/usr/lib/debug/usr/lib\nln -svfn lib %{{buildroot}}/usr/lib/debug/lib64\n\
             ln -svfn ../lib %{{buildroot}}/usr/lib/debug/usr/lib64\nln -svfn ../.dwz %{{buildroot}}/usr/lib/debug/usr/.dwz\n\
             %post -p <lua>\nposix.symlink(\"lib\", \"/usr/lib/debug/lib64\")\nposix.symlink(\"../bin\", \"/usr/lib/debug/usr/bin\")\n\
             posix.symlink(\"../sbin\", \"/usr/lib/debug/usr/sbin\")\nposix.symlink(\"../lib\", \"/usr/lib/debug/usr/lib\")\n\
             posix.symlink(\"../lib\", \"/usr/lib/debug/usr/lib64\")\nposix.symlink(\"../.dwz\", \"/usr/lib/debug/usr/.dwz\")\nreturn 0\n\
             %files\n%dir /usr/lib/debug\n%dir /usr/lib/debug/bin\n%dir /usr/lib/debug/lib\n%dir /usr/lib/debug/sbin\n\
             %dir /usr/lib/debug/usr\n%dir /usr/lib/debug/.dwz\n%ghost /usr/lib/debug/lib64\n%ghost /usr/lib/debug/usr/bin\n\
             %ghost /usr/lib/debug/usr/lib\n%ghost /usr/lib/debug/usr/lib64\n%ghost /usr/lib/debug/usr/sbin\n%ghost /usr/lib/debug/usr/.dwz\n"
        ),
    }
}

fn suse_var_run() -> Spec {
    Spec {
        name: "suse-var-run",
        body: format!(
            "Name: suse-var-run\n{HEADER}BuildArch: noarch\n%description\nopenSUSE filesystem's %pretrans (the /var/run part)\n\
             %install\nmkdir -p %{{buildroot}}/run/lock %{{buildroot}}/var\n\
             %pretrans -p <lua>\nos.remove (\"/usr/include/X11\")\nos.remove (\"/usr/lib/X11\")\n\
             if not posix.readlink(\"/var/run\") then\n   os.rename(\"/var/run\",\"/var/run.rpmsave.tmpx\")\nend\n\
             if not posix.readlink(\"/var/lock\") then\n   os.rename(\"/var/lock\",\"/var/lock.rpmsave.tmpx\")\nend\n\
             if not posix.stat(\"/var/run\") then\n  posix.symlink(\"/run\",\"/var/run\")\nend\n\
             if not posix.stat(\"/var/lock\") then\n  posix.symlink(\"/run/lock\",\"/var/lock\")\nend\n\
             if posix.stat(\"/var/run.rpmsave.tmpx\") then\n  os.execute(\"mv /var/run.rpmsave.tmpx/* /var/run\")\n  os.remove(\"/var/run.rpmsave.tmpx\")\nend\n\
             %files\n%dir /run\n%dir /run/lock\n%dir /var\n"
        ),
    }
}

const CRYPTO_BACK_ENDS: [&str; 11] = [
    "bind", "gnutls", "java", "krb5", "libreswan", "libssh", "nss", "openssh", "opensshserver", "opensslcnf", "openssl",
];

fn crypto_policies() -> Spec {
    let files: String = CRYPTO_BACK_ENDS
        .iter()
        .map(|b| format!("echo {b}-policy > %{{buildroot}}%{{_datarootdir}}/crypto-policies/DEFAULT/{b}.txt\n"))
        .collect();
    Spec {
        name: "crypto-policies",
        body: format!(
            "Name: crypto-policies\n{HEADER}BuildArch: noarch\n%description\ncrypto-policies' %post\n\
             %install\nmkdir -p -m 755 %{{buildroot}}%{{_datarootdir}}/crypto-policies/DEFAULT\n\
             mkdir -p -m 755 %{{buildroot}}%{{_sysconfdir}}/crypto-policies/back-ends/ %{{buildroot}}%{{_sysconfdir}}/crypto-policies/state/\n{files}\
             %post -p <lua>\nif not posix.access(\"%{{_sysconfdir}}/crypto-policies/config\") then\n    local policy = \"DEFAULT\"\n\
             \x20   local cf = io.open(\"/proc/sys/crypto/fips_enabled\", \"r\")\n    if cf then\n        if cf:read() == \"1\" then\n\
             \x20           policy = \"FIPS\"\n        end\n        cf:close()\n    end\n\
             \x20   cf = io.open(\"%{{_sysconfdir}}/crypto-policies/config\", \"w\")\n    if cf then\n        cf:write(policy..\"\\n\")\n        cf:close()\n    end\n\
             \x20   cf = io.open(\"%{{_sysconfdir}}/crypto-policies/state/current\", \"w\")\n    if cf then\n        cf:write(policy..\"\\n\")\n        cf:close()\n    end\n\
             \x20   local policypath = \"%{{_datarootdir}}/crypto-policies/\"..policy\n    for fn in posix.files(policypath) do\n\
             \x20       local backend = fn:gsub(\".*/\", \"\"):gsub(\"%%..*\", \"\")\n\
             \x20       local cfgfn = \"%{{_sysconfdir}}/crypto-policies/back-ends/\"..backend..\".config\"\n\
             \x20       posix.unlink(cfgfn)\n        posix.symlink(policypath..\"/\"..fn, cfgfn)\n    end\nend\n\
             %files\n%dir %{{_sysconfdir}}/crypto-policies/\n%dir %{{_sysconfdir}}/crypto-policies/back-ends/\n%dir %{{_sysconfdir}}/crypto-policies/state/\n\
             %ghost %config(missingok,noreplace) %{{_sysconfdir}}/crypto-policies/config\n\
             %ghost %{{_sysconfdir}}/crypto-policies/state/current\n%{{_datarootdir}}/crypto-policies\n"
        ),
    }
}

/// chkconfig's `alternatives`, built statically from `src` (alternatives.c).
fn chkconfig_alternatives(src: &Path) -> Spec {
    Spec {
        name: "chkconfig-alternatives",
        body: format!(
            "Name: chkconfig-alternatives\n{HEADER}%description\nchkconfig's alternatives, built from {src}\n\
             %global debug_package %{{nil}}\n\
             %install\nmkdir -p %{{buildroot}}/usr/sbin %{{buildroot}}/etc/alternatives %{{buildroot}}/var/lib/alternatives\n\
             gcc -static -O1 -DVERSION='\"1\"' -DMERGED_SBIN=0 -o %{{buildroot}}/usr/sbin/alternatives {src}\n\
             ln -s alternatives %{{buildroot}}/usr/sbin/update-alternatives\n\
             %files\n/usr/sbin/alternatives\n/usr/sbin/update-alternatives\n%dir /etc/alternatives\n%dir /var/lib/alternatives\n",
            src = src.display()
        ),
    }
}

fn p11_kit_trust() -> Spec {
    Spec {
        name: "p11-kit-trust",
        body: format!(
            "Name: p11-kit-trust\n{HEADER}BuildArch: noarch\nRequires(post): bash chkconfig-alternatives\n%description\np11-kit-trust's %post\n\
             %define alt_ckbi  libnssckbi.so.x86_64\n\
             %install\nmkdir -p %{{buildroot}}/usr/lib64/pkcs11\necho trust > %{{buildroot}}/usr/lib64/pkcs11/p11-kit-trust.so\n\
             %post\n%{{_sbindir}}/update-alternatives --install /usr/lib64/libnssckbi.so \\\n        %{{alt_ckbi}} /usr/lib64/pkcs11/p11-kit-trust.so 30\n\
             %files\n%dir /usr/lib64/pkcs11\n%ghost /usr/lib64/libnssckbi.so\n/usr/lib64/pkcs11/p11-kit-trust.so\n"
        ),
    }
}

fn build_repo(dir: &Path, specs: &[Spec]) -> PathBuf {
    let repo = dir.join("effects-repo");
    std::fs::create_dir_all(&repo).unwrap();
    for s in specs {
        let top = dir.join(format!("rpmbuild-{}", s.name));
        std::fs::create_dir_all(&top).unwrap();
        let spec = top.join(format!("{}.spec", s.name));
        std::fs::write(&spec, &s.body).unwrap();
        run_ok(
            Command::new("rpmbuild")
                .args(["-bb", "--quiet"])
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("--define")
                .arg(format!("_rpmdir {}", repo.display()))
                .args(["--define", "_build_id_links none"])
                .args(["--define", "__os_install_post %{nil}"])
                .args(["--define", "_buildshell /bin/bash"])
                .arg(&spec)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .env("HOME", &top),
        );
    }
    run_ok(
        Command::new("createrepo_c")
            .args(["--quiet", "--no-database"])
            .arg(&repo),
    );
    repo
}

#[test]
fn scriptlet_links_match_dnf_installroot() {
    assert!(is_root(), "this test installs with dnf --installroot and must run as root");
    require_tool("dnf");
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let tmp = tempfile::tempdir().unwrap();
    let mut specs = vec![cracklib(), azure_filesystem_debug(), suse_var_run(), crypto_policies()];
    let alternatives = std::env::var_os("MINIBUILD_CHKCONFIG_SRC").map(PathBuf::from);
    match &alternatives {
        Some(src) => {
            require_tool("gcc");
            assert!(src.is_file(), "MINIBUILD_CHKCONFIG_SRC={} is not a file", src.display());
            specs.push(chkconfig_alternatives(src));
            specs.push(p11_kit_trust());
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
    run_ok(
        Command::new("dnf")
            .args(["-y", "-q", "--releasever=40", "--setopt=install_weak_deps=False", "--nodocs"])
            .arg(format!("--installroot={}", dnf_root.display()))
            .arg(format!("--repofrompath=fx,{fixture}"))
            .arg(format!("--repofrompath=fx2,file://{}/", repo.display()))
            .args(["--repo=fx", "--repo=fx2", "--setopt=fx.gpgcheck=0", "--setopt=fx2.gpgcheck=0"])
            .arg("install")
            .args(&install),
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
    let log = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);

    let theirs = walk(&dnf_root);
    let ours = layer(&archive);

    // What the scriptlets made is there on both sides, identical.
    let mut expected: Vec<String> = ["hwm", "pwd", "pwi"]
        .iter()
        .map(|e| format!("usr/share/cracklib/pw_dict.{e}"))
        .collect();
    expected.extend(
        ["lib64", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/.dwz"]
            .iter()
            .map(|l| format!("usr/lib/debug/{l}")),
    );
    expected.extend(CRYPTO_BACK_ENDS.iter().map(|b| format!("etc/crypto-policies/back-ends/{b}.config")));
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
        assert_eq!(theirs.get(p), ours.get(p), "/{p} differs (left dnf, right minibuild)\n{log}");
    }
    // The %pretrans ran on an empty root and made nothing: /var/run and
    // /var/lock are whatever the packages ship, on both sides.
    for p in ["var/run", "var/lock"] {
        assert_eq!(theirs.get(p), ours.get(p), "/{p}");
        assert!(ours.get(p).is_none_or(|n| n.content != "/run" && n.content != "/run/lock"), "/{p}: {:?}", ours.get(p));
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
            None => unexplained.push(format!("/{path}\n    dnf:       {a:?}\n    minibuild: {b:?}")),
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
    for pass in ["scriptlet effect, links (cracklib)", "scriptlet effect, crypto policy (crypto-policies)"] {
        assert!(log.contains(pass), "no `{pass}` in the build output:\n{log}");
    }
}
