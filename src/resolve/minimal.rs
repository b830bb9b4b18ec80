//! Minimal providers by default.
//!
//! rpm distributions ship a small package beside a full one where both
//! satisfy the same dependency: `coreutils-single` (one multicall binary)
//! beside `coreutils` + `coreutils-common` + `gmp`, `glibc-minimal-langpack`
//! beside every locale, `curl-minimal` beside the full `curl`. Left to the
//! name rules, a solver picks the full one (the name equal to the
//! capability, or simply the shorter name), which for `nginx` alone meant
//! 49.7 MiB installed instead of 31.9 MiB.
//!
//! So when a recipe keeps the default `langs = ["C"]`, the resolver tries
//! the minimal providers of the distro family first. The recipe still
//! decides: its `prefer` comes before this list, and `exclude` removes a
//! minimal provider outright. `plan` shows each such choice ("chosen over
//! coreutils: minimal provider").
//!
//! The family is the one whose minimal providers the repos carry most of
//! (on a tie, the one with the shorter list, of which the repos carry the
//! larger share); a repo that has none of them gets no built-in preference.
//!
//! Only real alternatives are listed: a package that provides the same
//! capability as the bigger one (by name or as a file provide) and does the
//! same job. Left out on purpose, with their sources:
//!
//! - openSUSE `busybox-*` (busybox-links.spec): they only `Conflicts:` with
//!   the GNU packages and ship busybox applets under the same paths, so a
//!   file dependency could take them, but with other behaviour (ash for
//!   `/bin/sh` through `busybox-sh`, busybox `sed`, `grep`…): opt in with
//!   `prefer`.
//! - openSUSE `*-mini` flavours (`libcurl-mini4`, `systemd-mini`,
//!   `krb5-mini`): build-service bootstrap packages, not for installation.
//! - openSUSE `glibc-locale-base`: `glibc-locale` requires it, so the two
//!   are never alternatives.
//! - openSUSE `ca-certificates-mozilla-prebuilt`: provides nothing the
//!   other does, and fills `/var/lib/ca-certificates` from a scriptlet,
//!   which minibuild does not run.
//! - Azure Linux (microsoft/azurelinux SPECS/): no pair qualifies. `glibc`
//!   itself carries C.utf8 and en_US.utf8 (`glibc-lang` holds message
//!   catalogues, `glibc-locales-all` the rest, neither an alternative);
//!   `ca-certificates-base` and `prebuilt-ca-certificates` provide no
//!   capability of `ca-certificates`; `curl`, `coreutils` and `util-linux`
//!   have no small variant; `systemd-bootstrap` is the toolchain's.

/// A distro family's minimal providers, each a package that can stand in
/// for a bigger one satisfying the same dependency.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub minimal: &'static [&'static str],
}

/// The built-in list, one entry per family.
pub const FAMILIES: &[Family] = &[
    // Fedora, RHEL, CentOS Stream, AlmaLinux and Rocky share these names.
    Family {
        name: "fedora",
        minimal: &[
            // glibc-langpack: no locales beyond C and C.UTF-8 (which glibc-common has).
            "glibc-minimal-langpack",
            // coreutils: one multicall binary; no coreutils-common, no gmp.
            "coreutils-single",
            // curl, libcurl: HTTP(S) only, no LDAP/SSH/brotli stacks.
            "curl-minimal",
            "libcurl-minimal",
            // util-linux: the tools a container uses, not the full set.
            "util-linux-core",
        ],
    },
    // openSUSE Tumbleweed and Leap, SLE (coreutils.spec's `single` flavour).
    Family {
        name: "opensuse",
        minimal: &[
            // `Provides: coreutils`, `Conflicts: coreutils`; one binary built
            // --without-gmp --without-openssl, no translations or man pages.
            "coreutils-single",
        ],
    },
];

/// The family whose minimal providers a repo set carries, if any: the most
/// names carried, then the shorter list (the larger share carried), then
/// the earlier entry.
pub fn family(has_name: impl Fn(&str) -> bool) -> Option<&'static Family> {
    let carried = |f: &Family| f.minimal.iter().filter(|n| has_name(n)).count();
    let mut best: Option<(usize, &'static Family)> = None;
    for f in FAMILIES {
        let n = carried(f);
        let better = match best {
            None => n > 0,
            Some((bn, bf)) => n > bn || (n == bn && f.minimal.len() < bf.minimal.len()),
        };
        if better {
            best = Some((n, f));
        }
    }
    best.map(|(_, f)| f)
}

/// Whether a recipe with these `langs` gets minimal providers by default.
pub fn applies(langs: &[String]) -> bool {
    langs == ["C"]
}

/// The minimal providers to prefer for a repo set in which `has_name` says
/// which package names exist.
pub fn providers(has_name: impl Fn(&str) -> bool) -> Vec<String> {
    family(has_name)
        .map(|f| f.minimal.iter().map(|n| n.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_c_and_only_a_family_the_repos_carry() {
        assert!(applies(&["C".into()]));
        assert!(!applies(&["en_US".into()]));
        assert!(!applies(&["C".into(), "de".into()]));
        let fedora = providers(|n| n == "glibc-minimal-langpack");
        assert!(fedora.contains(&"coreutils-single".to_string()));
        assert!(providers(|_| false).is_empty());
    }

    fn repo<'a>(names: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |n| names.contains(&n)
    }

    #[test]
    fn fedora_and_its_rebuilds_get_the_fedora_list() {
        let fedora = [
            "coreutils",
            "coreutils-single",
            "glibc-minimal-langpack",
            "curl-minimal",
            "libcurl-minimal",
            "util-linux-core",
            "glibc-all-langpacks",
        ];
        assert_eq!(family(repo(&fedora)).map(|f| f.name), Some("fedora"));
        // A RHEL-like repo without curl-minimal still has more Fedora names.
        let rhel = [
            "coreutils-single",
            "glibc-minimal-langpack",
            "util-linux-core",
        ];
        assert_eq!(family(repo(&rhel)).map(|f| f.name), Some("fedora"));
        assert_eq!(providers(repo(&fedora)).len(), 5);
        // Only coreutils-single, which both lists name: the shorter list
        // wins the tie, and either way prefers the same package.
        assert_eq!(
            family(repo(&["coreutils-single"])).map(|f| f.name),
            Some("opensuse")
        );
    }

    #[test]
    fn opensuse_gets_coreutils_single_and_nothing_of_fedora() {
        // Names from openSUSE Tumbleweed's coreutils, glibc, curl and busybox specs.
        let tumbleweed = [
            "coreutils",
            "coreutils-single",
            "glibc",
            "glibc-locale",
            "glibc-locale-base",
            "libcurl4",
            "curl",
            "busybox",
            "busybox-coreutils",
            "util-linux",
        ];
        assert_eq!(family(repo(&tumbleweed)).map(|f| f.name), Some("opensuse"));
        assert_eq!(providers(repo(&tumbleweed)), ["coreutils-single"]);
    }

    #[test]
    fn azure_linux_gets_no_builtin_preference() {
        // Names from microsoft/azurelinux SPECS/: none is a minimal provider.
        let azure = [
            "coreutils",
            "glibc",
            "glibc-lang",
            "glibc-locales-all",
            "curl",
            "curl-libs",
            "ca-certificates",
            "ca-certificates-base",
            "prebuilt-ca-certificates",
            "util-linux",
            "busybox",
            "systemd-bootstrap",
        ];
        assert!(family(repo(&azure)).is_none());
        assert!(providers(repo(&azure)).is_empty());
    }
}
