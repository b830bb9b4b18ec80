//! Which packages make up the package manager, by name.
//!
//! Images leave the package manager out (recipe `package_manager = false`,
//! the default): resolution leaves these packages out where nothing
//! requested needs them, and hardening removes the ones still installed as
//! whole packages (their own files only) and drops them from the image's
//! rpmdb. The names come from the distributions' spec files:
//!
//! - Fedora / RHEL / CentOS Stream: rpm.spec (`rpm`, `rpm-libs`,
//!   `rpm-build`, `rpm-build-libs`, `rpm-sign`, `rpm-sign-libs`,
//!   `rpm-plugin-*`, `python3-rpm`), rpm-sequoia.spec, dnf.spec (`dnf`,
//!   `dnf-data`, `dnf-automatic`, `python3-dnf`, `yum`), dnf-plugins-core
//!   (`dnf-plugins-core`, `python3-dnf-plugin-*`, `yum-utils`), libdnf.spec
//!   (`libdnf`, `python3-libdnf`, `python3-hawkey`), dnf5.spec
//!   (`dnf5`, `dnf5-plugins`, `libdnf5`, `libdnf5-cli`, `libdnf5-plugin-*`,
//!   `python3-libdnf5`; rpm-software-management/dnf5), microdnf.spec,
//!   librepo.spec (`librepo`, `python3-librepo`), libsolv.spec (`libsolv`,
//!   `libsolv-tools`, `python3-solv`), libcomps.spec (`libcomps`,
//!   `python3-libcomps`).
//! - Azure Linux / CBL-Mariner (microsoft/azurelinux SPECS/rpm/rpm.spec,
//!   SPECS/tdnf/tdnf.spec): `rpm`, `rpm-libs`, `rpm-build` (which provides
//!   `rpm-sign` and ships rpmbuild/rpmsign), `rpm-build-libs`, `rpm-devel`,
//!   `rpm-lang`, `python3-rpm`; `tdnf` (ships libtdnf.so), `tdnf-cli-libs`,
//!   `tdnf-plugin-repogpgcheck`, `tdnf-python`, `tdnf-autoupdate`,
//!   `tdnf-devel`; `libsolv`.
//! - openSUSE / SLE (zypper, libzypp and rpm spec files, e.g. the Tumbleweed
//!   pool in aplanas/meta-microos): `zypper`, `zypper-needs-restarting`,
//!   `libzypp`, `libsolv-tools`, `libsolv-tools-base`, `rpm`, `rpm-ndb`.
//!
//! Macro packages (`systemd-rpm-macros`, pkgconf's macros, SUSE's
//! `rpm-config-SUSE`, `mariner-rpm-macros`) are not the package manager:
//! they stay, as do their files under `/usr/lib/rpm`.

use crate::glob::glob_match;

/// Package-manager package names; `*` matches any run of characters.
pub const PACKAGES: &[&str] = &[
    // rpm itself and its subpackages.
    "rpm",
    "rpm-libs",
    "rpm-build*",
    "rpm-sign*",
    "rpm-devel",
    "rpm-lang",
    "rpm-ndb",
    "rpm-sequoia",
    "rpm-plugin-*",
    "python3-rpm",
    // dnf 4, yum, dnf 5, microdnf and their libraries.
    "dnf*",
    "python3-dnf*",
    "libdnf*",
    "python3-libdnf*",
    "python3-hawkey",
    "yum*",
    "microdnf",
    "librepo*",
    "python3-librepo",
    "libcomps*",
    "python3-libcomps",
    // libsolv (dnf, tdnf and zypper all solve with it).
    "libsolv*",
    "python3-solv",
    // tdnf (Photon, Azure Linux).
    "tdnf*",
    "libtdnf*",
    // zypper.
    "zypper*",
    "libzypp*",
];

/// Whether the package `name` is part of the package manager.
pub fn is_package_manager(name: &str) -> bool {
    PACKAGES.iter().any(|p| glob_match(p, name))
}

/// Paths of the package manager's state that rpm, dnf, tdnf or zypper
/// create at run time (databases, caches, logs, repo configuration) and
/// that are often owned by no package, plus the commands' usual names (a
/// busybox `rpm` applet link is one). Removed only where no kept package
/// owns them.
pub const STATE_PATHS: &[&str] = &[
    "var/lib/rpm",
    "var/lib/dnf",
    "var/lib/yum",
    "var/lib/tdnf",
    "var/lib/zypp",
    "var/cache/dnf",
    "var/cache/yum",
    "var/cache/tdnf",
    "var/cache/zypp",
    "var/cache/libdnf5",
    "var/log/dnf.log",
    "var/log/dnf.librepo.log",
    "var/log/dnf.rpm.log",
    "var/log/dnf5.log",
    "var/log/hawkey.log",
    "var/log/tdnf.log",
    "var/log/zypper.log",
    "var/log/zypp",
    "usr/lib/sysimage/rpm",
    "usr/lib/sysimage/dnf",
    "usr/bin/rpm",
    "usr/bin/dnf",
    "usr/bin/dnf-3",
    "usr/bin/dnf5",
    "usr/bin/yum",
    "usr/bin/microdnf",
    "usr/bin/tdnf",
    "usr/bin/zypper",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_across_distributions() {
        for pm in [
            "rpm",
            "rpm-libs",
            "rpm-build-libs",
            "rpm-sign-libs",
            "rpm-plugin-selinux",
            "python3-rpm",
            "dnf",
            "dnf-data",
            "python3-dnf-plugin-versionlock",
            "libdnf5-cli",
            "python3-hawkey",
            "yum",
            "microdnf",
            "librepo",
            "libsolv-tools-base",
            "tdnf",
            "tdnf-cli-libs",
            "tdnf-plugin-repogpgcheck",
            "zypper",
            "libzypp",
            "rpm-ndb",
        ] {
            assert!(is_package_manager(pm), "{pm}");
        }
        for kept in [
            "systemd-rpm-macros",
            "rpm-config-SUSE",
            "mariner-rpm-macros",
            "pkgconf",
            "rpmlint",
            "libsemanage",
            "python3-rpm-macros",
            "bash",
        ] {
            assert!(!is_package_manager(kept), "{kept}");
        }
    }
}
