//! The packages an image's rpm database lists: `var/lib/rpm/rpmdb.sqlite`
//! (what minibuild writes, see `crate::rpmdb`) or Fedora's
//! `usr/lib/sysimage/rpm/rpmdb.sqlite`, or a Berkeley DB `Packages` (rpm <
//! 4.16), read by the rpmdb module's `read::in_tree`. Each stored header is a header
//! without its 8-byte magic; only the tags the diff needs are read, with
//! every offset bounds-checked, so a hostile image's database is an error
//! and never a panic.

use anyhow::{bail, Context as _};

use crate::package::Evr;
use crate::rootfs::Tree;

use super::packages::Package;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const SIZE: u32 = 1009;
const ARCH: u32 = 1022;
const SHA256HEADER: u32 = 273;
const SHA1HEADER: u32 = 269;
const LONGSIZE: u32 = 5009;

/// The image's packages, or `None` when it has no rpmdb.
pub fn packages(tree: &Tree) -> anyhow::Result<Option<Vec<Package>>> {
    let Some((path, blobs)) = crate::rpmdb::read::in_tree(tree)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(blobs.len());
    for (i, b) in blobs.iter().enumerate() {
        out.push(package(b).with_context(|| format!("/{path}: package header {}", i + 1))?);
    }
    Ok(Some(out))
}

/// One stored header's name, EVR, arch, installed size and header digest.
pub fn package(blob: &[u8]) -> anyhow::Result<Package> {
    let h = Header::parse(blob)?;
    let name = h.string(NAME)?.context("no NAME tag")?;
    let version = h.string(VERSION)?.context("no VERSION tag")?;
    let release = h.string(RELEASE)?;
    let epoch = h.u32(EPOCH)?.unwrap_or(0);
    // A source package or gpg-pubkey has no arch; rpm prints `(none)`.
    let arch = h.string(ARCH)?.unwrap_or_else(|| "(none)".into());
    let size = match h.u64(LONGSIZE)? {
        Some(s) => Some(s),
        None => h.u32(SIZE)?.map(u64::from),
    };
    let build_id = match h.string(SHA256HEADER)? {
        Some(d) => Some(d),
        None => h.string(SHA1HEADER)?,
    };
    Ok(Package {
        name,
        evr: Evr::new(u64::from(epoch), version, release),
        arch,
        size,
        build_id,
    })
}

/// An rpm header's index and data store.
struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> anyhow::Result<Header<'a>> {
        let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
            bail!("header is {} bytes, too short", blob.len());
        };
        let index_end = 8 + 16 * il as usize;
        let data_end = index_end + dl as usize;
        if blob.len() < data_end {
            bail!(
                "header says {il} tags and {dl} data bytes, but is only {} bytes",
                blob.len()
            );
        }
        Ok(Header {
            index: &blob[8..index_end],
            data: &blob[index_end..data_end],
        })
    }

    /// Type, offset and count of `tag`.
    fn find(&self, tag: u32) -> Option<(u32, usize, u32)> {
        self.index.chunks_exact(16).find_map(|e| {
            (be32(e, 0)? == tag).then(|| Some((be32(e, 4)?, be32(e, 8)? as usize, be32(e, 12)?)))?
        })
    }

    fn string(&self, tag: u32) -> anyhow::Result<Option<String>> {
        let Some((ty, at, _)) = self.find(tag) else {
            return Ok(None);
        };
        // STRING, STRING_ARRAY (first element) or I18NSTRING.
        if !matches!(ty, 6 | 8 | 9) {
            bail!("tag {tag} has type {ty}, not a string");
        }
        let rest = self.data.get(at..).context("tag offset past the data")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .with_context(|| format!("tag {tag}: string without its NUL"))?;
        Ok(Some(String::from_utf8_lossy(&rest[..end]).into_owned()))
    }

    fn u32(&self, tag: u32) -> anyhow::Result<Option<u32>> {
        let Some((ty, at, _)) = self.find(tag) else {
            return Ok(None);
        };
        if ty != 4 {
            bail!("tag {tag} has type {ty}, not int32");
        }
        be32(self.data, at)
            .map(Some)
            .with_context(|| format!("tag {tag}: offset past the data"))
    }

    fn u64(&self, tag: u32) -> anyhow::Result<Option<u64>> {
        let Some((ty, at, _)) = self.find(tag) else {
            return Ok(None);
        };
        if ty != 5 {
            bail!("tag {tag} has type {ty}, not int64");
        }
        let bytes = self
            .data
            .get(at..at + 8)
            .with_context(|| format!("tag {tag}: offset past the data"))?;
        Ok(Some(u64::from_be_bytes(bytes.try_into()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob (no magic) with the given (tag, type, data) entries.
    fn blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let entries: Vec<(u32, u32, &[u8])> = entries
            .iter()
            .map(|(t, k, b)| (*t, *k, b.as_slice()))
            .collect();
        crate::rpmdb::read::stored_header(&entries)
    }

    fn s(text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        v
    }

    #[test]
    fn reads_identity_size_and_digest() {
        let b = blob(&[
            (NAME, 6, s("bash")),
            (VERSION, 6, s("5.2")),
            (RELEASE, 6, s("1.fc40")),
            (EPOCH, 4, 2u32.to_be_bytes().to_vec()),
            (SIZE, 4, 4096u32.to_be_bytes().to_vec()),
            (ARCH, 6, s("x86_64")),
            (SHA256HEADER, 6, s("abc")),
        ]);
        let p = package(&b).unwrap();
        assert_eq!(p.nevra(), "bash-2:5.2-1.fc40.x86_64");
        assert_eq!((p.size, p.build_id.as_deref()), (Some(4096), Some("abc")));
    }

    #[test]
    fn truncated_or_mistyped_headers_are_errors() {
        let b = blob(&[(NAME, 6, s("bash")), (VERSION, 6, s("1"))]);
        for cut in [0, 3, 9, b.len() - 1] {
            assert!(package(&b[..cut]).is_err(), "cut at {cut}");
        }
        let typed = blob(&[(NAME, 4, vec![0, 0, 0, 1]), (VERSION, 6, s("1"))]);
        let e = package(&typed).unwrap_err().to_string();
        assert!(e.contains("not a string"), "{e}");
        let no_nul = blob(&[(NAME, 6, b"bash".to_vec())]);
        assert!(package(&no_nul).is_err());
    }
}
