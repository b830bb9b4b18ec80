//! Cache of parsed primary metadata, so a warm run does not reparse XML.
//!
//! Parsing a Fedora primary (≈140 MB of XML, 75,000 packages) costs about a
//! second; reading back the same `Vec<Package>` from a compact binary copy
//! costs a small fraction of that. The copy lives beside the compressed
//! primary in the repodata bucket (`<cache>/v1/repodata/<sha>-primary.parsed`),
//! keyed by the checksum repomd.xml gives the primary file: a new primary
//! means a new key, so entries never go stale, they only go unused.
//!
//! Format: [`MAGIC`], then [postcard] of `Vec<Package>`. postcard (serde,
//! varint integers, length-prefixed strings) is chosen for load speed and
//! size with no schema machinery: deserializing is one pass over a byte
//! slice. rkyv would be faster still (zero-copy), but it needs its own
//! derives on the shared types (Package, Nevra, Evr, Dep, Digest); not worth
//! it while postcard meets the target. [`MAGIC`] carries a format number and
//! the crate version, because postcard is not self-describing: any change to
//! [`Package`] must not be read with the old layout. Writes are atomic (temp
//! file + rename); an entry that fails to decode is treated as missing and
//! overwritten by the caller.

use std::path::{Path, PathBuf};

use super::Package;

/// Header of every entry: format number and crate version.
const MAGIC: &[u8] = concat!(
    "minibuild-parsed-primary/1/",
    env!("CARGO_PKG_VERSION"),
    "\n"
)
.as_bytes();

/// Where the parsed copy of the primary cached at `primary` lives.
pub fn path_for(primary: &Path) -> PathBuf {
    let mut name = primary
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    // `<sha>-primary.xml.zst` → `<sha>-primary.parsed`
    if let Some(i) = name.find("-primary") {
        name.truncate(i + "-primary".len());
    }
    name.push_str(".parsed");
    primary.with_file_name(name)
}

/// The cached packages, with `repo` set to `repo`; `None` when there is no
/// entry or it cannot be decoded (stale format, truncated, corrupt).
pub fn read(path: &Path, repo: usize) -> Option<Vec<Package>> {
    let bytes = std::fs::read(path).ok()?;
    let body = bytes.strip_prefix(MAGIC)?;
    let mut packages: Vec<Package> = postcard::from_bytes(body).ok()?;
    for p in &mut packages {
        p.repo = repo;
    }
    Some(packages)
}

/// Store `packages` at `path` atomically.
pub fn write(path: &Path, packages: &[Package]) -> std::io::Result<()> {
    let mut bytes = MAGIC.to_vec();
    let bytes = postcard::to_extend(packages, std::mem::take(&mut bytes))
        .map_err(|e| std::io::Error::other(format!("cannot encode parsed metadata: {e}")))?;
    super::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages() -> Vec<Package> {
        let xml = r#"<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
<package type="rpm"><name>bash</name><arch>x86_64</arch><version epoch="1" ver="5.2" rel="3"/>
<checksum type="sha256" pkgid="YES">e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</checksum>
<location href="b.rpm"/><format><rpm:provides><rpm:entry name="/bin/sh"/><rpm:entry name="bash" flags="EQ" epoch="1" ver="5.2" rel="3"/></rpm:provides>
<rpm:requires><rpm:entry name="(a or b)"/></rpm:requires><file>/usr/bin/bash</file></format></package></metadata>"#;
        super::super::primary::parse(xml.as_bytes(), 0).unwrap()
    }

    #[test]
    fn round_trips_and_sets_the_repo_index() {
        let dir = tempfile::tempdir().unwrap();
        let primary = dir.path().join("abc-primary.xml.zst");
        let path = path_for(&primary);
        assert_eq!(path, dir.path().join("abc-primary.parsed"));
        assert_eq!(read(&path, 0), None);
        let pkgs = packages();
        write(&path, &pkgs).unwrap();
        let back = read(&path, 3).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].repo, 3);
        let mut want = pkgs[0].clone();
        want.repo = 3;
        assert_eq!(back[0], want);
    }

    #[test]
    fn corrupt_or_foreign_entries_read_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-primary.parsed");
        write(&path, &packages()).unwrap();
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() - 5]).unwrap();
        assert_eq!(read(&path, 0), None, "truncated");
        let mut other = b"minibuild-parsed-primary/0/0.0.0\n".to_vec();
        other.extend_from_slice(&good[MAGIC.len()..]);
        std::fs::write(&path, other).unwrap();
        assert_eq!(read(&path, 0), None, "other format");
    }
}
