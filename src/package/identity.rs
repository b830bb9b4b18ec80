//! Does a downloaded RPM's signed header name the package the metadata chose?
//!
//! The checksum in primary.xml (or the lock) only proves the bytes are the
//! ones the metadata pointed at; whoever serves the metadata can point a
//! `busybox` entry at any other signed RPM. rpm and dnf compare the header's
//! name, epoch, version, release and arch with the entry; so does this,
//! whether or not signatures are checked.

use std::path::{Path, PathBuf};

use super::file::{ReadError, RpmFile};
use super::Nevra;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{} (chosen by the repo metadata as {expected}) is {actual} by its own header; refusing a package swapped in the metadata\n  hint: the mirror's primary.xml (or the lock) points {expected} at another package's file; report the mirror, or use one whose metadata is signed (repo_gpgcheck = true)", path.display())]
    Swapped {
        path: PathBuf,
        expected: Box<Nevra>,
        actual: Box<Nevra>,
    },
    #[error("{} (chosen as {expected}): cannot read its header to check which package it is\n  hint: the file is damaged or not an RPM; run `minibuild cache clean` and retry, or report the mirror", path.display())]
    Unreadable {
        path: PathBuf,
        expected: Box<Nevra>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Refuse `rpm` unless its header is `expected`.
pub fn check(rpm: &RpmFile, expected: &Nevra) -> Result<(), IdentityError> {
    let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| IdentityError::Unreadable {
        path: rpm.path().to_path_buf(),
        expected: Box::new(expected.clone()),
        source,
    };
    let actual = rpm.headers().nevra().map_err(|e| unreadable(e.into()))?;
    if &actual != expected {
        return Err(IdentityError::Swapped {
            path: rpm.path().to_path_buf(),
            expected: Box::new(expected.clone()),
            actual: Box::new(actual),
        });
    }
    Ok(())
}

/// Read the headers of the .rpm at `path` (the one read of them in a
/// build) and refuse it unless it is `expected`.
pub fn open_checked(path: &Path, expected: &Nevra) -> Result<RpmFile, IdentityError> {
    let rpm = RpmFile::open(path).map_err(|e: ReadError| IdentityError::Unreadable {
        path: path.to_path_buf(),
        expected: Box::new(expected.clone()),
        source: e.into(),
    })?;
    check(&rpm, expected)?;
    Ok(rpm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::Evr;

    #[test]
    fn matches_its_own_header_and_names_both_on_a_swap() {
        let path = crate::testing::corpus("createrepo_c/tests/testdata/packages")
            .join("Archer-3.4.5-6.x86_64.rpm");
        let archer = Nevra::new("Archer", Evr::parse("2:3.4.5-6"), "x86_64");
        let rpm = open_checked(&path, &archer).unwrap();
        assert_eq!(rpm.path(), path);
        let other = Nevra::new("fake_bash", Evr::parse("1.1.1-1"), "x86_64");
        let err = check(&rpm, &other).unwrap_err().to_string();
        assert!(
            err.contains("fake_bash-1.1.1-1.x86_64") && err.contains("Archer-2:3.4.5-6.x86_64"),
            "{err}"
        );
        // Each field counts: another epoch, release or arch is not it.
        for wrong in ["3.4.5-6", "2:3.4.5-7"] {
            let n = Nevra::new("Archer", Evr::parse(wrong), "x86_64");
            assert!(check(&rpm, &n).is_err(), "{wrong}");
        }
        assert!(check(&rpm, &Nevra::new("Archer", Evr::parse("2:3.4.5-6"), "i686")).is_err());
        // A file that is not an RPM is unreadable, named.
        let err = open_checked(Path::new("/dev/null"), &archer).unwrap_err();
        assert!(matches!(err, IdentityError::Unreadable { .. }), "{err}");
    }
}
