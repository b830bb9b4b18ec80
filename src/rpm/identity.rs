//! Does a downloaded RPM's signed header name the package the metadata chose?
//!
//! The checksum in primary.xml (or the lock) only proves the bytes are the
//! ones the metadata pointed at; whoever serves the metadata can point a
//! `busybox` entry at any other signed RPM. rpm and dnf compare the header's
//! name, epoch, version, release and arch with the entry; so does this,
//! whether or not signatures are checked.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{Evr, Nevra};

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

/// The name-epoch:version-release.arch that `path`'s header carries.
pub fn header_nevra(path: &Path) -> Result<Nevra, Box<dyn std::error::Error + Send + Sync>> {
    let mut reader = BufReader::new(File::open(path)?);
    let meta = super::metadata::read_metadata(&mut reader)?;
    let epoch = match meta.get_epoch() {
        Ok(e) => u64::from(e),
        Err(::rpm::Error::TagNotFound(_)) => 0,
        Err(e) => return Err(e.into()),
    };
    Ok(Nevra::new(
        meta.get_name()?,
        Evr::new(
            epoch,
            meta.get_version()?,
            Some(meta.get_release()?.to_string()),
        ),
        meta.get_arch()?,
    ))
}

/// Refuse `path` unless its header is `expected`.
pub fn check(path: &Path, expected: &Nevra) -> Result<(), IdentityError> {
    let actual = header_nevra(path).map_err(|source| IdentityError::Unreadable {
        path: path.to_path_buf(),
        expected: Box::new(expected.clone()),
        source,
    })?;
    if &actual != expected {
        return Err(IdentityError::Swapped {
            path: path.to_path_buf(),
            expected: Box::new(expected.clone()),
            actual: Box::new(actual),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_its_own_header_and_names_both_on_a_swap() {
        let path = crate::testing::corpus("createrepo_c/tests/testdata/packages")
            .join("Archer-3.4.5-6.x86_64.rpm");
        let archer = Nevra::new("Archer", Evr::parse("2:3.4.5-6"), "x86_64");
        check(&path, &archer).unwrap();
        let other = Nevra::new("fake_bash", Evr::parse("1.1.1-1"), "x86_64");
        let err = check(&path, &other).unwrap_err().to_string();
        assert!(
            err.contains("fake_bash-1.1.1-1.x86_64") && err.contains("Archer-2:3.4.5-6.x86_64"),
            "{err}"
        );
        // Each field counts: another epoch, release or arch is not it.
        for wrong in ["3.4.5-6", "2:3.4.5-7"] {
            let n = Nevra::new("Archer", Evr::parse(wrong), "x86_64");
            assert!(check(&path, &n).is_err(), "{wrong}");
        }
        assert!(check(
            &path,
            &Nevra::new("Archer", Evr::parse("2:3.4.5-6"), "i686")
        )
        .is_err());
    }
}
