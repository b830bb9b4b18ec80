//! A read-only reader for rpm's Berkeley DB `Packages` database (rpm <
//! 4.16: RHEL/UBI 8, CentOS 7/8, Rocky/Alma 8): a Berkeley DB **hash**
//! database whose keys are 4-byte header instances ("record numbers", in
//! the byte order of the machine that wrote the file, which is also the
//! byte order of the metadata page) and whose values are stored headers,
//! as in the sqlite rpmdb's `Packages.blob`.
//!
//! It follows rpm's own read-only reader (`lib/backend/bdb_ro.c`): the
//! hash metadata page (page 0: magic 0x061561 in either byte order, hash
//! version 8 to 10, page size, last page, highest bucket and the
//! `spares` table mapping buckets to pages), then every bucket's chain of
//! hash pages (types `P_HASH_UNSORTED` = 2 and `P_HASH` = 13), whose
//! items come in key/data pairs of type `H_KEYDATA` (1, on the page) or
//! `H_OFFPAGE` (3, in a chain of `P_OVERFLOW` = 7 pages). Duplicate items
//! (`H_DUPLICATE`, `H_OFFDUP`), which rpm never writes in `Packages`, are
//! refused.
//!
//! The file is treated as hostile: every offset, count, page number and
//! length is checked; no page is read twice (which bounds every chain,
//! cyclic or not, by the file's page count) and the data returned may not
//! exceed the file's size.

use std::collections::BTreeMap;

/// Why a `Packages` file cannot be read; the caller names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BdbError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, BdbError> {
    Err(BdbError(msg.into()))
}

const HASH_MAGIC: u32 = 0x0006_1561;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;
/// Size of a page's header: LSN (8), page number, previous and next page
/// (4 each), item count and free-space offset (2 each), level, type.
const PAGE_HEADER: usize = 26;

fn u16_at(big_endian: bool, b: &[u8], off: usize) -> Result<u16, BdbError> {
    let Some(s) = b.get(off..off + 2) else {
        return err(format!("offset {off} lies outside its page"));
    };
    let a = [s[0], s[1]];
    Ok(if big_endian {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    })
}

/// The database file, its byte order and geometry, and the pages read.
struct Db<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    page_size: usize,
    /// Pages the file holds and the metadata admits (`last_pgno` + 1, at
    /// most what the file's length allows).
    pages: usize,
    visited: Vec<bool>,
    /// Bytes returned so far, keys and data.
    out: usize,
}

impl<'a> Db<'a> {
    fn u16_at(&self, b: &[u8], off: usize) -> Result<u16, BdbError> {
        u16_at(self.big_endian, b, off)
    }

    fn u32_at(&self, b: &[u8], off: usize) -> Result<u32, BdbError> {
        let Some(s) = b.get(off..off + 4) else {
            return err(format!("offset {off} lies outside its page"));
        };
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// Page `pgno`, read once: a second visit is a cycle.
    fn page(&mut self, pgno: u32, from: &str) -> Result<&'a [u8], BdbError> {
        let n = pgno as usize;
        if n == 0 || n >= self.pages {
            return err(format!(
                "{from} points to page {pgno}, past the end of the file ({} pages)",
                self.pages
            ));
        }
        if std::mem::replace(&mut self.visited[n], true) {
            return err(format!(
                "{from} points to page {pgno}, which was already read (a cycle)"
            ));
        }
        let bytes: &'a [u8] = self.bytes;
        let page = &bytes[n * self.page_size..(n + 1) * self.page_size];
        let stored = self.u32_at(page, 8)?;
        if stored != pgno {
            return err(format!("page {pgno} says it is page {stored}"));
        }
        Ok(page)
    }

    /// Counts `n` more bytes of output against the file's size.
    fn spend(&mut self, n: usize) -> Result<(), BdbError> {
        self.out = self.out.saturating_add(n);
        if self.out > self.bytes.len() {
            return err(format!(
                "the items claim more data than the file's {} bytes",
                self.bytes.len()
            ));
        }
        Ok(())
    }

    /// The item of `len` bytes at `off` of hash page `pgno`.
    fn item(
        &mut self,
        page: &'a [u8],
        pgno: u32,
        off: usize,
        len: usize,
    ) -> Result<Vec<u8>, BdbError> {
        let Some(item) = page.get(off..off + len).filter(|i| !i.is_empty()) else {
            return err(format!(
                "page {pgno}: an item of {len} bytes at offset {off} does not fit"
            ));
        };
        match item[0] {
            H_KEYDATA => {
                self.spend(len - 1)?;
                Ok(item[1..].to_vec())
            }
            H_OFFPAGE => {
                if len != 12 {
                    return err(format!(
                        "page {pgno}: an overflow item of {len} bytes, not 12"
                    ));
                }
                let first = self.u32_at(item, 4)?;
                let total = self.u32_at(item, 8)? as usize;
                self.overflow(pgno, first, total)
            }
            H_DUPLICATE | H_OFFDUP => err(format!(
                "page {pgno}: duplicate items, which rpm's Packages never holds"
            )),
            t => err(format!("page {pgno}: unknown item type {t}")),
        }
    }

    /// The `total` bytes of the overflow chain starting at `first`.
    fn overflow(&mut self, from: u32, first: u32, total: usize) -> Result<Vec<u8>, BdbError> {
        if total == 0 {
            return err(format!("page {from}: an empty overflow item"));
        }
        self.spend(total)?;
        let mut out = Vec::with_capacity(total);
        let (mut pgno, mut prev) = (first, from);
        while out.len() < total {
            if pgno == 0 {
                return err(format!(
                    "page {prev}: the overflow chain ends after {} of its {total} bytes",
                    out.len()
                ));
            }
            let page = self.page(pgno, &format!("page {prev}"))?;
            if page[25] != P_OVERFLOW {
                return err(format!(
                    "page {pgno}: type {}, not an overflow page",
                    page[25]
                ));
            }
            let len = self.u16_at(page, 22)? as usize;
            if PAGE_HEADER + len > self.page_size || len > total - out.len() {
                return err(format!(
                    "page {pgno}: {len} bytes of overflow data do not fit"
                ));
            }
            out.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + len]);
            prev = pgno;
            pgno = self.u32_at(page, 16)?;
        }
        Ok(out)
    }
}

/// The header blobs of a `Packages` hash database, each with its header
/// instance, in instance order; instance 0 (rpm's counter record) is left
/// out.
pub fn blobs(bytes: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, BdbError> {
    let Some(meta) = bytes.get(..512) else {
        return err(format!(
            "{} bytes, too short for a Berkeley DB file",
            bytes.len()
        ));
    };
    let magic = [meta[12], meta[13], meta[14], meta[15]];
    let big_endian = if u32::from_le_bytes(magic) == HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == HASH_MAGIC {
        true
    } else {
        return err("not a Berkeley DB hash database (no hash magic on page 0)");
    };
    let mut db = Db {
        bytes,
        big_endian,
        page_size: 512,
        pages: 1,
        visited: Vec::new(),
        out: 0,
    };
    let version = db.u32_at(meta, 16)?;
    if !(8..=10).contains(&version) {
        return err(format!("unsupported hash version {version}"));
    }
    let page_size = db.u32_at(meta, 20)?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return err(format!("invalid page size {page_size}"));
    }
    if meta[25] != P_HASHMETA {
        return err(format!("page 0 has type {}, not hash metadata", meta[25]));
    }
    db.page_size = page_size as usize;
    let last = db.u32_at(meta, 32)? as usize;
    db.pages = (bytes.len() / db.page_size).min(last.saturating_add(1));
    db.visited = vec![false; db.pages];
    let max_bucket = db.u32_at(meta, 72)?;
    if max_bucket as usize >= db.pages {
        return err(format!(
            "{} buckets in a file of {} pages",
            u64::from(max_bucket) + 1,
            db.pages
        ));
    }
    let mut spares = [0u32; 32];
    for (i, s) in spares.iter_mut().enumerate() {
        *s = db.u32_at(meta, 96 + 4 * i)?;
    }
    let mut records = BTreeMap::new();
    for bucket in 0..=max_bucket {
        // rpm's hash_bucket_to_page: the bucket plus the spare pages of
        // its split point (its bit length).
        let split = (32 - bucket.leading_zeros()) as usize;
        let Some(pgno) = spares.get(split).and_then(|s| bucket.checked_add(*s)) else {
            return err(format!("bucket {bucket} has no page"));
        };
        let mut next = pgno;
        let mut from = format!("bucket {bucket}");
        while next != 0 {
            let pgno = next;
            let page = db.page(pgno, &from)?;
            if page[25] != P_HASH && page[25] != P_HASH_UNSORTED {
                return err(format!("page {pgno}: type {}, not a hash page", page[25]));
            }
            let n = db.u16_at(page, 20)? as usize;
            let index_end = PAGE_HEADER + 2 * n;
            if !n.is_multiple_of(2) || index_end > db.page_size {
                return err(format!(
                    "page {pgno}: {n} items do not fit in key/data pairs"
                ));
            }
            let page_size = db.page_size;
            let offset = |i: usize| -> Result<usize, BdbError> {
                let off = u16_at(big_endian, page, PAGE_HEADER + 2 * i)? as usize;
                if off < index_end || off >= page_size {
                    return err(format!(
                        "page {pgno}: item {i} at offset {off} is outside the page's data"
                    ));
                }
                Ok(off)
            };
            for i in (0..n).step_by(2) {
                let (koff, voff) = (offset(i)?, offset(i + 1)?);
                // Items fill the page from its end: each ends where the
                // one before it starts.
                let kend = if i == 0 { db.page_size } else { offset(i - 1)? };
                let (Some(klen), Some(vlen)) = (kend.checked_sub(koff), koff.checked_sub(voff))
                else {
                    return err(format!("page {pgno}: items {i} and {} overlap", i + 1));
                };
                let key = db.item(page, pgno, koff, klen)?;
                let value = db.item(page, pgno, voff, vlen)?;
                let Ok(key) = <[u8; 4]>::try_from(key.as_slice()) else {
                    return err(format!(
                        "page {pgno}: a key of {} bytes, not a 4-byte header instance",
                        key.len()
                    ));
                };
                let instance = if big_endian {
                    u32::from_be_bytes(key)
                } else {
                    u32::from_le_bytes(key)
                };
                if instance == 0 {
                    continue;
                }
                if records.insert(instance, value).is_some() {
                    return err(format!("header instance {instance} is stored twice"));
                }
            }
            from = format!("page {pgno}");
            next = db.u32_at(page, 16)?;
        }
    }
    Ok(records.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Berkeley DB's db_load: `testdata/make-bdb.sh`.
    const LE_512: &[u8] = include_bytes!("testdata/packages-le-512");
    const BE_4096: &[u8] = include_bytes!("testdata/packages-be-4096");

    /// What `make-bdb.sh` stores: instances 1..5 (0 left out), in order.
    fn expected() -> Vec<(u32, Vec<u8>)> {
        [(1, 100), (2, 700), (3, 3000), (4, 10), (5, 2000)]
            .into_iter()
            .map(|(inst, n)| {
                let data = (0..n).map(|j| ((inst * 31 + j) % 251) as u8).collect();
                (inst, data)
            })
            .collect()
    }

    fn page_type(file: &[u8], size: usize, pgno: usize) -> u8 {
        file[pgno * size + 25]
    }

    #[test]
    fn reads_both_byte_orders_and_overflow_chains_in_instance_order() {
        assert_eq!(blobs(LE_512).unwrap(), expected());
        assert_eq!(blobs(BE_4096).unwrap(), expected());
        // The small pages hold the long records in overflow pages.
        let types: Vec<u8> = (0..LE_512.len() / 512)
            .map(|p| page_type(LE_512, 512, p))
            .collect();
        assert!(types.contains(&P_OVERFLOW), "{types:?}");
        assert_eq!(BE_4096[12..16], [0, 0x06, 0x15, 0x61]);
    }

    #[test]
    fn refuses_what_is_not_a_hash_database() {
        assert!(blobs(&[]).unwrap_err().0.contains("too short"));
        assert!(blobs(&[0; 4096]).unwrap_err().0.contains("no hash magic"));
        let short = &LE_512[..LE_512.len() - 512];
        assert!(blobs(short)
            .unwrap_err()
            .0
            .contains("past the end of the file"));
    }

    #[test]
    fn a_cyclic_overflow_chain_is_an_error() {
        let mut f = LE_512.to_vec();
        let ov = (1..f.len() / 512)
            .find(|&p| page_type(&f, 512, p) == P_OVERFLOW)
            .unwrap();
        // The overflow page's next page: itself.
        f[ov * 512 + 16..ov * 512 + 20].copy_from_slice(&(ov as u32).to_le_bytes());
        let err = blobs(&f).unwrap_err().0;
        assert!(err.contains("already read"), "{err}");
    }

    #[test]
    fn a_wrong_page_number_or_item_count_is_an_error() {
        let mut f = LE_512.to_vec();
        f[512 + 8] = 9;
        assert!(blobs(&f).unwrap_err().0.contains("says it is page 9"));
        let mut f = LE_512.to_vec();
        f[512 + 20..512 + 22].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(blobs(&f).unwrap_err().0.contains("items do not fit"));
    }

    #[test]
    fn no_single_byte_change_panics() {
        // Every byte of both files, set to 0x00, 0xff and flipped: an
        // error or a result, never a panic or a hang.
        for file in [LE_512, BE_4096] {
            let mut f = file.to_vec();
            for i in 0..f.len() {
                let orig = f[i];
                for v in [0, 0xff, !orig] {
                    f[i] = v;
                    if let Ok(records) = blobs(&f) {
                        let total: usize = records.iter().map(|(_, b)| b.len()).sum();
                        assert!(total <= f.len());
                    }
                }
                f[i] = orig;
            }
        }
    }
}
