//! A small deterministic tar writer shared by the layer and the oci-archive.
//!
//! Every header is a POSIX ustar header built from scratch: only the fields
//! we set carry data (no atime/ctime, device numbers 0, no host lookups).
//! Whatever does not fit ustar — paths or link targets over 100 bytes, owner
//! names over 32 bytes, ids or sizes beyond the octal fields, and extended
//! attributes — goes into a PAX extended header (`x`) just before the entry,
//! which every reader we care about (Go's archive/tar in docker, containerd,
//! skopeo and umoci; GNU tar; bsdtar) understands. Names are written verbatim,
//! so the caller decides the naming convention.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use tar::{EntryType, Header};

const BLOCK: usize = 512;
/// Largest value an ustar numeric field of 8 bytes (7 octal digits) holds.
const MAX_OCTAL_ID: u64 = 0o7_777_777;
/// Largest size the 12-byte (11 octal digits) size field holds.
const MAX_OCTAL_SIZE: u64 = 0o77_777_777_777;

/// What an entry is, with the data only that type has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind<'a> {
    Dir,
    File { size: u64 },
    Symlink { target: &'a str },
    Hardlink { target: &'a str },
    Fifo,
}

/// Everything that goes into one entry's header.
#[derive(Debug, Clone)]
pub struct TarMeta<'a> {
    /// The name exactly as it appears in the archive.
    pub name: &'a str,
    pub kind: TarKind<'a>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: &'a str,
    pub group: &'a str,
    pub mtime: u64,
    pub xattrs: &'a BTreeMap<String, Vec<u8>>,
}

/// Writes entries into `inner`; call [`TarWriter::finish`] to add the
/// end-of-archive marker.
pub struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    /// Append one entry. For [`TarKind::File`], `data` must yield exactly
    /// `size` bytes; it is streamed, never buffered whole.
    pub fn append(&mut self, meta: &TarMeta<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let size = match meta.kind {
            TarKind::File { size } => size,
            _ => 0,
        };

        let mut header = Header::new_ustar();
        let ustar = header
            .as_ustar_mut()
            .expect("new_ustar gives a ustar header");
        if !put_bytes(&mut ustar.name, meta.name.as_bytes()) {
            // Go's reader and GNU tar take the PAX `path`; the truncated name
            // is only what a pre-POSIX reader would see.
            pax.push(("path".into(), meta.name.as_bytes().to_vec()));
            put_truncated(&mut ustar.name, meta.name.as_bytes());
        }
        let link_target = match meta.kind {
            TarKind::Symlink { target } | TarKind::Hardlink { target } => Some(target),
            _ => None,
        };
        if let Some(target) = link_target {
            if !put_bytes(&mut ustar.linkname, target.as_bytes()) {
                pax.push(("linkpath".into(), target.as_bytes().to_vec()));
                put_truncated(&mut ustar.linkname, target.as_bytes());
            }
        }
        if !put_bytes(&mut ustar.uname, meta.user.as_bytes()) {
            pax.push(("uname".into(), meta.user.as_bytes().to_vec()));
        }
        if !put_bytes(&mut ustar.gname, meta.group.as_bytes()) {
            pax.push(("gname".into(), meta.group.as_bytes().to_vec()));
        }
        if u64::from(meta.uid) > MAX_OCTAL_ID {
            pax.push(("uid".into(), meta.uid.to_string().into_bytes()));
        }
        if u64::from(meta.gid) > MAX_OCTAL_ID {
            pax.push(("gid".into(), meta.gid.to_string().into_bytes()));
        }
        if size > MAX_OCTAL_SIZE {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        for (name, value) in meta.xattrs {
            pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
        }

        header.set_entry_type(match meta.kind {
            TarKind::Dir => EntryType::Directory,
            TarKind::File { .. } => EntryType::Regular,
            TarKind::Symlink { .. } => EntryType::Symlink,
            TarKind::Hardlink { .. } => EntryType::Link,
            TarKind::Fifo => EntryType::Fifo,
        });
        header.set_mode(meta.mode & 0o7777);
        header.set_uid(u64::from(meta.uid).min(MAX_OCTAL_ID));
        header.set_gid(u64::from(meta.gid).min(MAX_OCTAL_ID));
        header.set_size(size.min(MAX_OCTAL_SIZE));
        header.set_mtime(meta.mtime);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        header.set_cksum();

        if !pax.is_empty() {
            self.write_pax(meta, &pax)?;
        }
        self.inner.write_all(header.as_bytes())?;

        if let TarKind::File { size } = meta.kind {
            let data = data.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "file entry without data")
            })?;
            let copied = io::copy(&mut data.take(size), &mut self.inner)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "`{}` is {copied} bytes on disk but {size} bytes in the tree \
                         (was the staging blob changed after unpacking?)",
                        meta.name
                    ),
                ));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    /// Write the PAX extended header for `meta` and its records.
    fn write_pax(&mut self, meta: &TarMeta<'_>, records: &[(String, Vec<u8>)]) -> io::Result<()> {
        let mut body = Vec::new();
        for (key, value) in records {
            body.extend_from_slice(&pax_record(key, value));
        }
        let mut header = Header::new_ustar();
        let ustar = header.as_ustar_mut().expect("ustar header");
        // The name of a PAX header is informational; keep it short and stable.
        let base = meta.name.trim_end_matches('/');
        let base = base.rsplit('/').next().unwrap_or(base);
        put_truncated(&mut ustar.name, format!("PaxHeaders/{base}").as_bytes());
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(body.len() as u64);
        header.set_mtime(meta.mtime);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        header.set_cksum();
        self.inner.write_all(header.as_bytes())?;
        self.inner.write_all(&body)?;
        self.pad(body.len() as u64)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.inner.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Write the two zero blocks that end an archive and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; BLOCK * 2])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Copy `value` into a NUL-padded field if it fits (a full field without a
/// terminating NUL is valid ustar).
fn put_bytes(field: &mut [u8], value: &[u8]) -> bool {
    if value.len() > field.len() || value.contains(&0) {
        return false;
    }
    field[..value.len()].copy_from_slice(value);
    true
}

fn put_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    for b in &mut field[..n] {
        if *b == 0 {
            *b = b'_';
        }
    }
}

/// One PAX record: `"<len> <key>=<value>\n"` where `<len>` counts the whole
/// record including its own digits.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    debug_assert_eq!(out.len(), len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        // 7 + 91 = 98 bytes without the length; with "100 " it is 101 bytes,
        // which needs three digits: the loop must settle on 101.
        let value = vec![b'x'; 91];
        let rec = pax_record("path", &value);
        assert!(rec.starts_with(b"101 path="));
        assert_eq!(rec.len(), 101);
    }

    fn meta<'a>(
        name: &'a str,
        kind: TarKind<'a>,
        xattrs: &'a BTreeMap<String, Vec<u8>>,
    ) -> TarMeta<'a> {
        TarMeta {
            name,
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            user: "root",
            group: "root",
            mtime: 1,
            xattrs,
        }
    }

    #[test]
    fn long_names_round_trip_through_a_reader() {
        let none = BTreeMap::new();
        let long = format!("usr/{}/file", "d".repeat(150));
        let target = format!("../{}", "t".repeat(120));
        let mut w = TarWriter::new(Vec::new());
        w.append(
            &meta(&long, TarKind::Symlink { target: &target }, &none),
            None,
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut entries = ar.entries().unwrap();
        let e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str().unwrap(), long);
        assert_eq!(e.link_name().unwrap().unwrap().to_str().unwrap(), target);
        assert!(entries.next().is_none());
    }

    #[test]
    fn short_file_has_no_pax_and_pads_to_blocks() {
        let none = BTreeMap::new();
        let mut w = TarWriter::new(Vec::new());
        let mut data: &[u8] = b"hello";
        w.append(
            &meta("a", TarKind::File { size: 5 }, &none),
            Some(&mut data),
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        // header + one data block + two end blocks
        assert_eq!(bytes.len(), 4 * BLOCK);
        assert_eq!(bytes[156], b'0');
    }

    #[test]
    fn short_data_is_an_error() {
        let none = BTreeMap::new();
        let mut w = TarWriter::new(Vec::new());
        let mut data: &[u8] = b"hi";
        let err = w
            .append(
                &meta("a", TarKind::File { size: 5 }, &none),
                Some(&mut data),
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
