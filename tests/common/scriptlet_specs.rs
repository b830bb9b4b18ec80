//! Packages whose scriptlets are copied from real specs, built with
//! rpmbuild into a repo, for the scriptlet-effect tests (diff_dnf_links,
//! plan_scriptlets). Each names its source spec; payloads and %files are
//! reduced to what the scriptlet touches.

use std::path::{Path, PathBuf};

use super::{createrepo, rpmbuild, run_ok};

/// A package built for the test: its spec, and a file to put in SOURCES.
pub struct Spec {
    pub name: &'static str,
    pub body: String,
}

const HEADER: &str =
    "Version: 1.0\nRelease: 1\nSummary: scriptlet effect fixture\nLicense: MIT\nAutoReqProv: no\n";

pub fn cracklib() -> Spec {
    Spec {
        name: "cracklib",
        body: format!(
            "Name: cracklib\n{HEADER}BuildArch: noarch\nRequires(post): bash coreutils-single\n%description\ncracklib's %post\n\
             %install\nmkdir -p %{{buildroot}}%{{_datadir}}/cracklib\n\
             for e in hwm pwd pwi; do echo empty-$e > %{{buildroot}}%{{_datadir}}/cracklib/empty.$e; done\n\
             %post\n/sbin/ldconfig\n[ $1 = 1 ] || exit 0\necho \"using empty dict to provide pw_dict\" >&2\n\
             ln -sf empty.hwm %{{_datadir}}/cracklib/pw_dict.hwm\nln -sf empty.pwd %{{_datadir}}/cracklib/pw_dict.pwd\n\
             ln -sf empty.pwi %{{_datadir}}/cracklib/pw_dict.pwi\n\
             %triggerin -- cracklib-dicts\n[ $2 = 1 ] || exit 0\necho \"switching pw_dict to cracklib-dicts\" >&2\n\
             ln -sf words.hwm %{{_datadir}}/cracklib/pw_dict.hwm\nln -sf words.pwd %{{_datadir}}/cracklib/pw_dict.pwd\n\
             ln -sf words.pwi %{{_datadir}}/cracklib/pw_dict.pwi\n\
             %files\n%dir %{{_datadir}}/cracklib\n%{{_datadir}}/cracklib/empty*\n"
        ),
    }
}

pub fn azure_filesystem_debug() -> Spec {
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

pub fn suse_var_run() -> Spec {
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

pub const CRYPTO_BACK_ENDS: [&str; 11] = [
    "bind",
    "gnutls",
    "java",
    "krb5",
    "libreswan",
    "libssh",
    "nss",
    "openssh",
    "opensshserver",
    "opensslcnf",
    "openssl",
];

pub fn crypto_policies() -> Spec {
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
pub fn chkconfig_alternatives(src: &Path) -> Spec {
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

/// `requires`: what provides update-alternatives (`chkconfig-alternatives`
/// when the real tool is built, nothing for `plan`, which reads headers only).
pub fn p11_kit_trust(requires: &str) -> Spec {
    Spec {
        name: "p11-kit-trust",
        body: format!(
            "Name: p11-kit-trust\n{HEADER}BuildArch: noarch\nRequires(post): bash {requires}\n%description\np11-kit-trust's %post\n\
             %define alt_ckbi  libnssckbi.so.x86_64\n\
             %install\nmkdir -p %{{buildroot}}/usr/lib64/pkcs11\necho trust > %{{buildroot}}/usr/lib64/pkcs11/p11-kit-trust.so\n\
             %post\n%{{_sbindir}}/update-alternatives --install /usr/lib64/libnssckbi.so \\\n        %{{alt_ckbi}} /usr/lib64/pkcs11/p11-kit-trust.so 30\n\
             %files\n%dir /usr/lib64/pkcs11\n%ghost /usr/lib64/libnssckbi.so\n/usr/lib64/pkcs11/p11-kit-trust.so\n"
        ),
    }
}

/// A library package's `%post -p /sbin/ldconfig` / `%postun -p /sbin/ldconfig`
/// (the form 75 of Azure Linux's 103 base-image scriptlets take, e.g.
/// SPECS/p11-kit's main package). Azure Linux spells it /sbin/ldconfig; the
/// fixture's glibc ships only /usr/sbin/ldconfig, and rpmbuild turns the
/// interpreter into a Requires, so the path here is that one.
pub fn ldconfig_user() -> Spec {
    Spec {
        name: "libfixture",
        body: format!(
            "Name: libfixture\n{HEADER}BuildArch: noarch\n%description\n-p /sbin/ldconfig\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/libfixture\necho x > %{{buildroot}}/usr/share/libfixture/x\n\
             %post -p /usr/sbin/ldconfig\n%postun -p /usr/sbin/ldconfig\n%files\n/usr/share/libfixture\n"
        ),
    }
}

/// glibc's transaction file trigger on the library directories, as in
/// Fedora's glibc.spec (`%transfiletriggerin common -P 2000000`).
pub fn glibc_file_trigger() -> Spec {
    Spec {
        name: "glibc-trigger",
        body: format!(
            "Name: glibc-trigger\n{HEADER}BuildArch: noarch\n%description\nglibc's file trigger\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/glibc-trigger\necho x > %{{buildroot}}/usr/share/glibc-trigger/x\n\
             %transfiletriggerin -P 2000000 -- /lib /usr/lib /lib64 /usr/lib64\n/sbin/ldconfig\n\
             %files\n/usr/share/glibc-trigger\n"
        ),
    }
}

pub fn build_repo(dir: &Path, specs: &[Spec]) -> PathBuf {
    let repo = dir.join("effects-repo");
    std::fs::create_dir_all(&repo).unwrap();
    for s in specs {
        let top = dir.join(format!("rpmbuild-{}", s.name));
        std::fs::create_dir_all(&top).unwrap();
        let spec = top.join(format!("{}.spec", s.name));
        std::fs::write(&spec, &s.body).unwrap();
        run_ok(rpmbuild(&top, &repo).arg(&spec));
    }
    createrepo(&repo);
    repo
}
