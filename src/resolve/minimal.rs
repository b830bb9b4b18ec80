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
//! The family is the one whose minimal providers the repos carry most of;
//! a repo that has none of them gets no built-in preference.

/// A distro family's minimal providers, each a package that can stand in
/// for a bigger one satisfying the same dependency.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub minimal: &'static [&'static str],
}

/// The built-in list. Fedora, RHEL, CentOS Stream, AlmaLinux and Rocky share
/// these package names.
pub const FAMILIES: &[Family] = &[Family {
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
}];

/// Whether a recipe with these `langs` gets minimal providers by default.
pub fn applies(langs: &[String]) -> bool {
    langs == ["C"]
}

/// The minimal providers to prefer for a repo set in which `has_name` says
/// which package names exist.
pub fn providers(has_name: impl Fn(&str) -> bool) -> Vec<String> {
    let carried = |f: &Family| f.minimal.iter().filter(|n| has_name(n)).count();
    FAMILIES
        .iter()
        .map(|f| (carried(f), f))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map(|(_, f)| f.minimal.iter().map(|n| n.to_string()).collect())
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
        let fedora = providers(|n| n == "coreutils-single");
        assert!(fedora.contains(&"glibc-minimal-langpack".to_string()));
        assert!(providers(|_| false).is_empty());
    }
}
