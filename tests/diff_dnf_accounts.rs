//! Differential test for the account, /etc/shells and shadow effects:
//! packages whose scriptlets are real ones (Azure Linux's frr `%pre` and
//! shadow-utils `%post`, Fedora's expanded `%sysusers_create_compat` for
//! openssh-server, Fedora's bash lua `%post`) are installed by dnf
//! `--installroot`, which RUNS them in a chroot with the real shadow tools
//! (Debian's useradd, groupadd, usermod, pwconv and grpconv, packaged here
//! as shadow-utils), and built by minibuild, which parses them. The account
//! files, /etc/shells and every owner must come out the same, except for
//! the differences named in [`Rule`], each with its reason.
//!
//! Runs as root: dnf's scriptlets chroot into the install root.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::treediff::{dnf_install, layer, walk};
use common::*;

/// An allowed difference, with why it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// pwconv and useradd write the day they ran as the last password
    /// change; minibuild leaves the field empty so the image is
    /// reproducible (empty only turns password aging off).
    LastChangeDay,
    /// shadow's tools keep a backup of each file they rewrite (`passwd-`,
    /// `shadow-`…) and leave their lock file; minibuild writes the final
    /// files only.
    ToolLeftovers,
}

/// Files compared line by line (the others only by owner).
const ACCOUNT_FILES: [&str; 5] = [
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/gshadow",
    "etc/shells",
];

const LEFTOVERS: [&str; 5] = [
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/.pwd.lock",
];

/// The Azure Linux `frr.spec` `%pre`, with `%{name}` expanded (frr).
const FRR_PRE: &str = "getent group 'frrvty' >/dev/null || groupadd -r 'frrvty' || :

getent group 'frr' >/dev/null || groupadd -r 'frr' || :

getent passwd 'frr' >/dev/null || \\
  useradd -r -g 'frr' -d '/var/run/frr' -s '/sbin/nologin' -c 'FRRouting routing suite' 'frr' || :

# add frr to frrvty groups
usermod -a -G frrvty frr
";

/// Fedora openssh-server's `%pre` as `rpm -q --scripts` prints it: systemd's
/// sysusers.generate-pre.sh expansion of `u sshd 74 ...`.
const SSHD_PRE: &str = "
# generated from openssh-server-systemd-sysusers.conf
getent group 'sshd' >/dev/null || groupadd -f -g '74' -r 'sshd' || :
if ! getent passwd 'sshd' >/dev/null; then
    if ! getent passwd '74' >/dev/null; then
        useradd -r -u '74' -g 'sshd' -d '/usr/share/empty.sshd' -s '/usr/sbin/nologin' -c 'Privilege-separated SSH' 'sshd' || :
    else
        useradd -r -g 'sshd' -d '/usr/share/empty.sshd' -s '/usr/sbin/nologin' -c 'Privilege-separated SSH' 'sshd' || :
    fi
fi
";

/// Fedora/RHEL `bash.spec` `%post -p <lua>`.
const BASH_LUA_POST: &str = "nl        = '\\n'
sh        = '/bin/sh'..nl
bash      = '/bin/bash'..nl
f = io.open('/etc/shells', 'a+')
if f then
  local shells = nl..f:read('*all')..nl
  if not shells:find(nl..sh) then f:write(sh) end
  if not shells:find(nl..bash) then f:write(bash) end
  f:close()
end
";

/// Azure Linux `shadow-utils.spec` `%post`.
const SHADOW_UTILS_POST: &str = "/usr/sbin/pwconv
/usr/sbin/grpconv
chmod 000 /etc/shadow
";

/// Host libraries the shadow tools need that the fixture repo lacks.
const TOOL_LIBS: [&str; 5] = [
    "libaudit.so.1",
    "libbz2.so.1.0",
    "libcap-ng.so.0",
    "libsemanage.so.2",
    "libsepol.so.2",
];
const TOOLS: [&str; 5] = ["useradd", "groupadd", "usermod", "pwconv", "grpconv"];

/// One fixture package: name, version-release, extra preamble, %install
/// body, %files, scriptlets.
struct Spec {
    name: &'static str,
    evr: (&'static str, &'static str),
    preamble: String,
    install: String,
    files: String,
    scripts: String,
}

fn build(dir: &Path, repo: &Path, spec: &Spec) {
    let top = dir.join(format!("rpmbuild-{}", spec.name));
    std::fs::create_dir_all(&top).unwrap();
    let path = top.join(format!("{}.spec", spec.name));
    std::fs::write(
        &path,
        format!(
            "Name: {n}\nVersion: {v}\nRelease: {r}\nSummary: scriptlet fixture\nLicense: MIT\nAutoReqProv: no\n{pre}\n\
             %description\nscriptlet fixture\n%install\n{install}\n{scripts}\n%files\n{files}\n",
            n = spec.name,
            v = spec.evr.0,
            r = spec.evr.1,
            pre = spec.preamble,
            install = spec.install,
            scripts = spec.scripts,
            files = spec.files,
        ),
    )
    .unwrap();
    run_ok(rpmbuild(&top, repo).arg(&path));
}

/// Where the host keeps `lib` (Debian's multiarch directory).
fn host_lib(lib: &str) -> PathBuf {
    let p = Path::new("/lib/x86_64-linux-gnu").join(lib);
    assert!(
        p.exists(),
        "{} missing on the host (passwd's libraries)",
        p.display()
    );
    std::fs::canonicalize(p).unwrap()
}

fn make_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("accts-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let scriptlet = |kind: &str, body: &str| format!("{kind}\n{body}\n");
    let specs = [
        // Azure Linux's shape: the account files without shadow files and
        // without /etc/shells (filesystem ships them there); newer than the
        // fixture's setup so both installers pick it.
        Spec {
            name: "setup",
            evr: ("2.14.5", "3"),
            preamble: "BuildArch: noarch".into(),
            install: "mkdir -p %{buildroot}/etc\n\
                printf 'root:x:0:0:root:/root:/bin/bash\\nbin:x:1:1:bin:/dev/null:/bin/false\\ndaemon:x:6:6:Daemon User:/dev/null:/bin/false\\nnobody:x:65534:65534:Unprivileged User:/dev/null:/bin/false\\n' > %{buildroot}/etc/passwd\n\
                printf 'root:x:0:\\nbin:x:1:daemon\\ntty:x:5:\\ndaemon:x:6:\\nwheel:x:10:\\nusers:x:100:\\nnogroup:x:65534:\\n' > %{buildroot}/etc/group\n"
                .into(),
            files: "%config(noreplace) /etc/passwd\n%config(noreplace) /etc/group\n".into(),
            scripts: String::new(),
        },
        Spec {
            name: "shadow-utils",
            evr: ("1.0", "1"),
            preamble: "Requires(pre,post): setup bash glibc glibc-common libselinux pcre2 coreutils-single".into(),
            install: {
                let mut s = String::from(
                    "mkdir -p %{buildroot}/usr/sbin %{buildroot}/usr/lib/x86_64-linux-gnu %{buildroot}/etc/default\n\
                     cp /etc/login.defs %{buildroot}/etc/login.defs\n\
                     cp /etc/default/useradd %{buildroot}/etc/default/useradd\n",
                );
                for t in TOOLS {
                    s.push_str(&format!("cp /usr/sbin/{t} %{{buildroot}}/usr/sbin/{t}\n"));
                }
                for l in TOOL_LIBS {
                    s.push_str(&format!(
                        "cp {} %{{buildroot}}/usr/lib/x86_64-linux-gnu/{l}\n",
                        host_lib(l).display()
                    ));
                }
                s
            },
            files: {
                let mut f = String::from(
                    "%config(noreplace) /etc/login.defs\n%config(noreplace) /etc/default/useradd\n",
                );
                for t in TOOLS {
                    f.push_str(&format!("/usr/sbin/{t}\n"));
                }
                for l in TOOL_LIBS {
                    f.push_str(&format!("/usr/lib/x86_64-linux-gnu/{l}\n"));
                }
                f
            },
            scripts: scriptlet("%post", SHADOW_UTILS_POST),
        },
        Spec {
            name: "frr",
            evr: ("1.0", "1"),
            preamble: "BuildArch: noarch\nRequires(pre): shadow-utils glibc-common".into(),
            install: "mkdir -p %{buildroot}/etc/frr\necho watchfrr_enable=yes > %{buildroot}/etc/frr/daemons\n".into(),
            files: "%dir %attr(0750,frr,frrvty) /etc/frr\n%attr(0640,frr,frr) /etc/frr/daemons\n".into(),
            scripts: scriptlet("%pre", FRR_PRE),
        },
        Spec {
            name: "openssh-server",
            evr: ("1.0", "1"),
            preamble: "BuildArch: noarch\nRequires(pre): shadow-utils glibc-common".into(),
            install: "mkdir -p %{buildroot}/usr/share/empty.sshd\n".into(),
            files: "%dir %attr(0711,sshd,sshd) /usr/share/empty.sshd\n".into(),
            scripts: scriptlet("%pre", SSHD_PRE),
        },
        Spec {
            name: "bash-shells",
            evr: ("1.0", "1"),
            preamble: "BuildArch: noarch\nRequires(post): setup".into(),
            install: "mkdir -p %{buildroot}/usr/share/bash-shells\ntouch %{buildroot}/usr/share/bash-shells/marker\n".into(),
            files: "/usr/share/bash-shells/marker\n".into(),
            scripts: scriptlet("%post -p <lua>", BASH_LUA_POST),
        },
        // An owner nobody creates: rpm warns and uses root.
        Spec {
            name: "ghost-owned",
            evr: ("1.0", "1"),
            preamble: "BuildArch: noarch\nRequires: setup".into(),
            install: "mkdir -p %{buildroot}/srv/ghost\necho x > %{buildroot}/srv/ghost/file\n".into(),
            files: "%attr(0644,ghost,ghostgrp) /srv/ghost/file\n".into(),
            scripts: String::new(),
        },
    ];
    for s in &specs {
        build(dir, &repo, s);
    }
    createrepo(&repo);
    repo
}

const PACKAGES: [&str; 7] = [
    "bash",
    "coreutils-single",
    "shadow-utils",
    "frr",
    "openssh-server",
    "bash-shells",
    "ghost-owned",
];

/// The rule that explains `theirs` vs `ours` for one line of `path`, if any.
fn line_rule(path: &str, theirs: &str, ours: &str) -> Option<Rule> {
    if path != "etc/shadow" {
        return None;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (theirs.split(':').collect(), ours.split(':').collect());
    let day = |f: &str| f.parse::<u32>().is_ok();
    let same_but_day = a.len() == b.len()
        && a.len() > 2
        && day(a[2])
        && b[2].is_empty()
        && a.iter()
            .zip(&b)
            .enumerate()
            .all(|(i, (x, y))| i == 2 || x == y);
    same_but_day.then_some(Rule::LastChangeDay)
}

#[test]
fn account_effects_match_dnf_running_the_scriptlets() {
    assert!(
        is_root(),
        "this test runs dnf's scriptlets in a chroot: run it as root"
    );
    require_tool("dnf");
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let tmp = tempfile::tempdir().unwrap();
    let accts = make_repo(tmp.path());
    let fixture_repo = format!("file://{}/repo/x86_64/", fixtures().display());
    let dnf_root = tmp.path().join("dnf-root");
    dnf_install(
        &dnf_root,
        &[
            ("fx", fixture_repo.clone()),
            ("accts", format!("file://{}", accts.display())),
        ],
        &PACKAGES,
    );

    let list: Vec<String> = PACKAGES.iter().map(|p| format!("\"{p}\"")).collect();
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"accts\"\n\n\
             [[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [[repo]]\nname = \"accts\"\nbaseurl = \"file://{}\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\n\n[options]\nreleasever = \"40\"\ndocs = false\nlangs = [\"all\"]\n",
            fixture_file_url(),
            accts.display(),
            list.join(", ")
        ),
    )
    .unwrap();
    let archive = tmp.path().join("image.oci.tar");
    let out = run_ok(&mut build_cmd(&recipe, &archive, &tmp.path().join("cache")));
    let stderr = String::from_utf8_lossy(&out.stderr);

    let theirs = walk(&dnf_root);
    let ours = layer(&archive);
    let our_text = read_layer_files(&archive, &ACCOUNT_FILES);
    let mut unexplained = Vec::new();
    let mut used: BTreeMap<Rule, usize> = BTreeMap::new();

    // The account files, line by line.
    for path in ACCOUNT_FILES {
        let a = std::fs::read_to_string(dnf_root.join(path)).unwrap_or_default();
        let b = our_text
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        assert!(!a.is_empty(), "dnf's root has no /{path}");
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        for i in 0..la.len().max(lb.len()) {
            let (x, y) = (la.get(i).copied(), lb.get(i).copied());
            if x == y {
                continue;
            }
            match (x, y).0.zip(y).and_then(|(x, y)| line_rule(path, x, y)) {
                Some(r) => *used.entry(r).or_default() += 1,
                None => unexplained.push(format!(
                    "/{path} line {}\n    dnf:       {x:?}\n    minibuild: {y:?}",
                    i + 1
                )),
            }
        }
        // Mode and owner of the files themselves.
        let (na, nb) = (theirs.get(path), ours.get(path));
        match (na, nb) {
            (Some(na), Some(nb)) if (na.mode, na.uid, na.gid) == (nb.mode, nb.uid, nb.gid) => {}
            _ => unexplained.push(format!(
                "/{path} metadata\n    dnf:       {na:?}\n    minibuild: {nb:?}"
            )),
        }
    }
    // The shadow tools' leftovers exist only in dnf's root.
    for path in LEFTOVERS {
        if theirs.contains_key(path) && !ours.contains_key(path) {
            *used.entry(Rule::ToolLeftovers).or_default() += 1;
        }
    }
    // Every owner of every path both trees have.
    for (path, a) in &theirs {
        let Some(b) = ours.get(path) else { continue };
        if (a.uid, a.gid) != (b.uid, b.gid) {
            unexplained.push(format!(
                "/{path} owner\n    dnf:       {}:{}\n    minibuild: {}:{}",
                a.uid, a.gid, b.uid, b.gid
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s):\n{}\n(minibuild's report:\n{stderr})",
        unexplained.len(),
        unexplained.join("\n")
    );
    for r in [Rule::LastChangeDay, Rule::ToolLeftovers] {
        assert!(
            used.contains_key(&r),
            "rule {r:?} explained nothing: {used:?}"
        );
    }

    // The accounts exist with the owners rpm gave the files.
    let frr = &ours["etc/frr"];
    assert_ne!(frr.uid, 0, "/etc/frr should belong to frr");
    assert_eq!(ours["usr/share/empty.sshd"].uid, 74);
    // The unknown owner fell back to root, and the report says so.
    let ghost = &ours["srv/ghost/file"];
    assert_eq!((ghost.uid, ghost.gid), (0, 0));
    assert!(
        stderr.contains("/srv/ghost/file (ghost-owned): unknown user `ghost` and group `ghostgrp`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("scriptlet effect, accounts (frr): user frr"),
        "{stderr}"
    );

    // --strict refuses the unknown owner.
    let strict = build_cmd(
        &recipe,
        &tmp.path().join("strict.tar"),
        &tmp.path().join("cache"),
    )
    .arg("--strict")
    .output()
    .unwrap();
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("/srv/ghost/file (ghost-owned)"), "{err}");
}

/// The contents of `paths` in the archive's single layer.
fn read_layer_files(archive: &Path, paths: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = unpack_archive(archive, dir.path());
    paths
        .iter()
        .filter_map(|p| Some((p.to_string(), std::fs::read(rootfs.join(p)).ok()?)))
        .collect()
}
