//! `repodata/repomd.xml`: the index of a repository's metadata files.
//!
//! Each `<data type="…">` names one file (primary, filelists, other, comps,
//! updateinfo, their `_zck` variants…) with the checksum of the file as
//! stored and of its uncompressed content. Only `primary` is used today; the
//! rest are kept so provenance and later stages can see them.

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::digest::{Digest, DigestError};

/// A `<checksum type="…">value</checksum>` as written; the type may be one
/// minibuild cannot verify (`sha1` in old repos), so it is kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checksum {
    pub kind: String,
    pub value: String,
}

impl Checksum {
    pub fn digest(&self) -> Result<Digest, DigestError> {
        Digest::new(self.kind.parse()?, self.value.trim())
    }
}

/// One `<data>` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataFile {
    /// `<location href>`, relative to the repo's base URL.
    pub location: String,
    /// Of the file as stored (compressed).
    pub checksum: Checksum,
    /// Of the uncompressed content, when the file is compressed.
    pub open_checksum: Option<Checksum>,
    pub size: Option<u64>,
    pub open_size: Option<u64>,
    pub timestamp: Option<u64>,
}

/// A parsed repomd.xml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repomd {
    /// `<revision>`: usually a timestamp, sometimes a compose id.
    pub revision: String,
    /// Files by `type` attribute, sorted.
    pub data: BTreeMap<String, DataFile>,
}

impl Repomd {
    pub fn primary(&self) -> Option<&DataFile> {
        self.data.get("primary")
    }
}

/// How new a repomd.xml is: its `<revision>` (when a number, as createrepo
/// writes it) and its newest `<data>` timestamp. Used against rollback: a
/// mirror replaying an old, validly signed repomd.xml to hold back updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Freshness {
    pub revision: Option<u64>,
    pub timestamp: Option<u64>,
}

/// A validly signed repomd.xml older than one seen before.
#[derive(Debug, thiserror::Error)]
#[error("repo `{repo}`: {url} goes back in time: {what}; a mirror may be replaying old, validly signed metadata to hold back updates\n  hint: use another mirror; if the repo was deliberately reverted, build once with --allow-downgrade (recorded in the provenance)")]
pub struct Rollback {
    pub repo: String,
    pub url: String,
    pub what: String,
}

impl Freshness {
    pub fn of(md: &Repomd) -> Freshness {
        Freshness {
            revision: md.revision.trim().parse().ok(),
            timestamp: md.data.values().filter_map(|d| d.timestamp).max(),
        }
    }

    /// In words, how `self` (just fetched) is older than `seen`; `None` when it is not.
    pub fn older_than(&self, seen: &Freshness) -> Option<String> {
        let back =
            |new: Option<u64>, old: Option<u64>| matches!((new, old), (Some(n), Some(o)) if n < o);
        let mut what = Vec::new();
        if back(self.revision, seen.revision) {
            what.push(format!(
                "revision {} is older than {} seen before",
                self.revision.unwrap_or_default(),
                seen.revision.unwrap_or_default()
            ));
        }
        if back(self.timestamp, seen.timestamp) {
            what.push(format!(
                "newest timestamp {} is older than {} seen before",
                self.timestamp.unwrap_or_default(),
                seen.timestamp.unwrap_or_default()
            ));
        }
        (!what.is_empty()).then(|| what.join(", "))
    }

    /// Field by field, the newer of the two.
    pub fn newest(self, other: Freshness) -> Freshness {
        Freshness {
            revision: self.revision.max(other.revision),
            timestamp: self.timestamp.max(other.timestamp),
        }
    }

    fn to_text(self) -> String {
        let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        format!(
            "revision {}\ntimestamp {}\n",
            n(self.revision),
            n(self.timestamp)
        )
    }

    fn from_text(text: &str) -> Freshness {
        let mut f = Freshness::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("revision", v)) => f.revision = v.parse().ok(),
                Some(("timestamp", v)) => f.timestamp = v.parse().ok(),
                _ => {}
            }
        }
        f
    }

    /// Refuse `repomd` (already signature-checked, fetched from `url`) when it
    /// is older than the newest seen for `url` (recorded in `dir`), unless
    /// `allow_downgrade`; then record the newest. The record is per URL: the
    /// same URL must not go back, whatever the recipe calls it.
    pub fn check_and_record(
        dir: &std::path::Path,
        repo: &str,
        url: &str,
        repomd: &[u8],
        allow_downgrade: bool,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let new = Freshness::of(&parse(repomd)?);
        let record = dir.join(format!(
            "{}.newest",
            &Digest::sha256_of(url.as_bytes()).hex()[..32]
        ));
        let seen = std::fs::read_to_string(&record)
            .map(|t| Freshness::from_text(&t))
            .unwrap_or_default();
        if let Some(what) = new.older_than(&seen) {
            if !allow_downgrade {
                return Err(Box::new(Rollback {
                    repo: repo.to_string(),
                    url: url.to_string(),
                    what,
                }));
            }
        }
        let newest = new.newest(seen);
        if newest != seen {
            std::fs::create_dir_all(dir)?;
            crate::fsutil::write_atomic(&record, newest.to_text().as_bytes())
                .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepomdError {
    #[error("malformed XML at byte {position}")]
    Xml {
        position: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("<data type=\"{kind}\"> has a non-numeric <{field}> `{value}`")]
    Number {
        kind: String,
        field: &'static str,
        value: String,
    },
    #[error("<data type=\"{kind}\"> lacks <{field}>")]
    Missing { kind: String, field: &'static str },
    #[error("not a repomd.xml (root element is <{0}>)")]
    NotRepomd(String),
}

/// Which text-bearing element we are inside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Revision,
    Checksum,
    OpenChecksum,
    Size,
    OpenSize,
    Timestamp,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, quick_xml::Error> {
    for a in e.attributes() {
        let a = a.map_err(quick_xml::Error::from)?;
        if a.key.as_ref() == name {
            return Ok(Some(
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

/// Parse repomd.xml from memory (it is a few kilobytes).
pub fn parse(xml: &[u8]) -> Result<Repomd, RepomdError> {
    let mut reader = Reader::from_reader(xml);
    let xml_err = |reader: &Reader<&[u8]>, source| RepomdError::Xml {
        position: reader.error_position(),
        source,
    };
    let mut out = Repomd::default();
    let mut seen_root = false;
    // The <data> being read: its type and fields so far.
    let mut current: Option<(String, DataFile)> = None;
    let mut field: Option<Field> = None;
    let mut text = String::new();
    let mut checksum_kind = String::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(&reader, e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                if !seen_root {
                    seen_root = true;
                    if local.as_ref() != "repomd" {
                        let name = local.as_ref().to_string();
                        return Err(RepomdError::NotRepomd(name));
                    }
                    continue;
                }
                let get = |name| attr(e, name).map_err(|err| xml_err(&reader, err));
                match local.as_ref() {
                    "data" => {
                        let kind = get("type")?.unwrap_or_default();
                        current = Some((kind, DataFile::default()));
                    }
                    "location" => {
                        if let Some((_, d)) = current.as_mut() {
                            d.location = get("href")?.unwrap_or_default();
                        }
                    }
                    "revision" => field = Some(Field::Revision),
                    "checksum" | "open-checksum" if current.is_some() => {
                        checksum_kind = get("type")?.unwrap_or_default();
                        field = Some(if local.as_ref() == "checksum" {
                            Field::Checksum
                        } else {
                            Field::OpenChecksum
                        });
                    }
                    "size" if current.is_some() => field = Some(Field::Size),
                    "open-size" if current.is_some() => field = Some(Field::OpenSize),
                    "timestamp" if current.is_some() => field = Some(Field::Timestamp),
                    _ => {}
                }
                text.clear();
                if matches!(event, Event::Empty(_)) {
                    field = None;
                }
            }
            Event::Text(t) if field.is_some() => text.push_str(&t.xml10_content()),
            Event::End(e) => {
                if let Some(f) = field.take() {
                    store(f, &mut out, current.as_mut(), &text, &checksum_kind)?;
                } else if e.local_name().as_ref() == "data" {
                    if let Some((kind, d)) = current.take() {
                        if d.location.is_empty() {
                            return Err(RepomdError::Missing {
                                kind,
                                field: "location",
                            });
                        }
                        if d.checksum.value.is_empty() {
                            return Err(RepomdError::Missing {
                                kind,
                                field: "checksum",
                            });
                        }
                        out.data.insert(kind, d);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(RepomdError::NotRepomd(String::new()));
    }
    Ok(out)
}

fn store(
    field: Field,
    out: &mut Repomd,
    current: Option<&mut (String, DataFile)>,
    text: &str,
    checksum_kind: &str,
) -> Result<(), RepomdError> {
    let text = text.trim();
    let Some((kind, d)) = current else {
        if field == Field::Revision {
            out.revision = text.to_string();
        }
        return Ok(());
    };
    let number = |name: &'static str| {
        text.parse::<u64>().map_err(|_| RepomdError::Number {
            kind: kind.clone(),
            field: name,
            value: text.to_string(),
        })
    };
    let checksum = || Checksum {
        kind: checksum_kind.to_string(),
        value: text.to_string(),
    };
    match field {
        Field::Revision => out.revision = text.to_string(),
        Field::Checksum => d.checksum = checksum(),
        Field::OpenChecksum => d.open_checksum = Some(checksum()),
        Field::Size => d.size = Some(number("size")?),
        Field::OpenSize => d.open_size = Some(number("open-size")?),
        // createrepo_c writes integers; some tools wrote `1644263915.0`.
        Field::Timestamp => {
            let whole = text.split('.').next().unwrap_or(text);
            d.timestamp = Some(whole.parse().map_err(|_| RepomdError::Number {
                kind: kind.clone(),
                field: "timestamp",
                value: text.to_string(),
            })?)
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_refuses_going_back_and_records_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let md = |rev: u64, ts: u64| {
            format!(
                "<repomd><revision>{rev}</revision><data type=\"primary\"><checksum type=\"sha256\">{}</checksum><location href=\"p.xml\"/><timestamp>{ts}</timestamp></data></repomd>",
                "0".repeat(64)
            )
        };
        let check = |xml: &str, allow| {
            Freshness::check_and_record(
                dir.path(),
                "f",
                "https://m/r/repomd.xml",
                xml.as_bytes(),
                allow,
            )
        };
        check(&md(200, 2000), false).unwrap();
        check(&md(200, 2000), false).unwrap();
        let e = check(&md(100, 2000), false).unwrap_err().to_string();
        assert!(
            e.contains("revision 100 is older than 200") && e.contains("--allow-downgrade"),
            "{e}"
        );
        let e = check(&md(300, 1000), false).unwrap_err().to_string();
        assert!(e.contains("timestamp 1000 is older than 2000"), "{e}");
        check(&md(100, 1000), true).unwrap();
        // Allowing it once does not lower the mark.
        assert!(check(&md(150, 2000), false).is_err());
        check(&md(300, 3000), false).unwrap();
        assert!(check(&md(200, 2000), false).is_err());
        // Another URL has its own record.
        Freshness::check_and_record(
            dir.path(),
            "f",
            "https://other/r/repomd.xml",
            md(1, 1).as_bytes(),
            false,
        )
        .unwrap();
    }
    use crate::digest::Algorithm;

    /// repomd.xml of the CentOS Stream 9 BaseOS snapshot in osbuild/images
    /// (test/data/testrepo, Apache-2.0), trimmed to three entries.
    const CENTOS9: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1644263915</revision>
  <data type="primary">
    <checksum type="sha256">130494033cb9bffa40828ebc814d016920d9ce5d60041467af283ffcf38adef0</checksum>
    <open-checksum type="sha256">4fd621cd9253a7d7013af758bbf4b200142f29515ad0fb99d544864a5ad7e4a7</open-checksum>
    <location href="repodata/130494033cb9bffa40828ebc814d016920d9ce5d60041467af283ffcf38adef0-primary.xml.gz"/>
    <timestamp>1644263915</timestamp>
    <size>1063488</size>
    <open-size>8471009</open-size>
  </data>
  <data type="filelists">
    <checksum type="sha256">7b99933643e8bff43d3d82180e7d678fac89b6a1b9b8f5f88ea93a5c3b9b5dbd</checksum>
    <open-checksum type="sha256">ed7d3c472ce8251bd9747e5fdc5c5e294de84fe3c77f62ecf5911483208e96ee</open-checksum>
    <location href="repodata/7b99933643e8bff43d3d82180e7d678fac89b6a1b9b8f5f88ea93a5c3b9b5dbd-filelists.xml.gz"/>
    <timestamp>1644263915</timestamp>
    <size>612567</size>
    <open-size>5894169</open-size>
  </data>
  <data type="group">
    <checksum type="sha256">40232bada337516d6e75012012436d8138a529f3ac7171f07fbef5bd6c6e6a3a</checksum>
    <location href="repodata/40232bada337516d6e75012012436d8138a529f3ac7171f07fbef5bd6c6e6a3a-comps-BaseOS.x86_64.xml"/>
    <timestamp>1644263907</timestamp>
    <size>39248</size>
  </data>
</repomd>
"#;

    /// The shape Fedora's mirrors serve: zstd primary, zchunk variants with
    /// header checksums, `<tags>` (hand-written after Fedora 40's layout).
    const FEDORA_SHAPE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1713225600</revision>
  <tags>
    <distro cpeid="cpe:/o:fedoraproject:fedora:40">Fedora 40</distro>
    <content>binary-x86_64</content>
  </tags>
  <data type="primary">
    <checksum type="sha256">4f1a8bd3c1b9a0f0d5c6e8b1e4a1d7c0f1e2d3c4b5a69788796a5b4c3d2e1f00</checksum>
    <open-checksum type="sha256">0e1f2d3c4b5a69788796a5b4c3d2e1f004f1a8bd3c1b9a0f0d5c6e8b1e4a1d7c</open-checksum>
    <location href="repodata/4f1a8bd3c1b9a0f0d5c6e8b1e4a1d7c0f1e2d3c4b5a69788796a5b4c3d2e1f00-primary.xml.zst"/>
    <timestamp>1713225555</timestamp>
    <size>19824316</size>
    <open-size>143512734</open-size>
  </data>
  <data type="primary_zck">
    <checksum type="sha256">aa1a8bd3c1b9a0f0d5c6e8b1e4a1d7c0f1e2d3c4b5a69788796a5b4c3d2e1f00</checksum>
    <open-checksum type="sha256">bb1f2d3c4b5a69788796a5b4c3d2e1f004f1a8bd3c1b9a0f0d5c6e8b1e4a1d7c</open-checksum>
    <header-checksum type="sha256">cc1f2d3c4b5a69788796a5b4c3d2e1f004f1a8bd3c1b9a0f0d5c6e8b1e4a1d7c</header-checksum>
    <location href="repodata/aa-primary.xml.zck"/>
    <timestamp>1713225555</timestamp>
    <size>27000000</size>
    <open-size>143512734</open-size>
    <header-size>712345</header-size>
  </data>
</repomd>
"#;

    #[test]
    fn parses_a_real_centos_repomd() {
        let md = parse(CENTOS9.as_bytes()).unwrap();
        assert_eq!(md.revision, "1644263915");
        assert_eq!(
            md.data.keys().collect::<Vec<_>>(),
            ["filelists", "group", "primary"]
        );
        let p = md.primary().unwrap();
        assert_eq!(
            p.location,
            "repodata/130494033cb9bffa40828ebc814d016920d9ce5d60041467af283ffcf38adef0-primary.xml.gz"
        );
        let d = p.checksum.digest().unwrap();
        assert_eq!(d.algo(), Algorithm::Sha256);
        assert_eq!(
            d.hex(),
            "130494033cb9bffa40828ebc814d016920d9ce5d60041467af283ffcf38adef0"
        );
        assert_eq!(
            p.open_checksum.as_ref().unwrap().value,
            "4fd621cd9253a7d7013af758bbf4b200142f29515ad0fb99d544864a5ad7e4a7"
        );
        assert_eq!(p.size, Some(1063488));
        assert_eq!(p.open_size, Some(8471009));
        assert_eq!(p.timestamp, Some(1644263915));
        let g = &md.data["group"];
        assert_eq!(g.open_checksum, None);
        assert_eq!(g.timestamp, Some(1644263907));
    }

    #[test]
    fn header_checksums_and_tags_do_not_leak_into_entries() {
        let md = parse(FEDORA_SHAPE.as_bytes()).unwrap();
        assert_eq!(md.revision, "1713225600");
        let zck = &md.data["primary_zck"];
        assert!(zck.checksum.value.starts_with("aa1a"));
        assert!(zck
            .open_checksum
            .as_ref()
            .unwrap()
            .value
            .starts_with("bb1f"));
        assert_eq!(zck.size, Some(27000000));
        assert!(md.primary().unwrap().location.ends_with(".zst"));
    }

    #[test]
    fn keeps_unverifiable_checksum_types_as_text() {
        let xml = r#"<repomd><revision>1</revision><data type="primary">
            <checksum type="sha">da39a3ee5e6b4b0d3255bfef95601890afd80709</checksum>
            <location href="repodata/primary.xml.gz"/><timestamp>1.5</timestamp></data></repomd>"#;
        let md = parse(xml.as_bytes()).unwrap();
        let p = md.primary().unwrap();
        assert_eq!(p.checksum.kind, "sha");
        assert_eq!(p.timestamp, Some(1));
        assert!(p.checksum.digest().is_err());
    }

    #[test]
    fn rejects_other_documents_and_broken_entries() {
        assert!(matches!(
            parse(b"<html><body>503</body></html>"),
            Err(RepomdError::NotRepomd(n)) if n == "html"
        ));
        assert!(matches!(parse(b""), Err(RepomdError::NotRepomd(_))));
        let no_loc =
            r#"<repomd><data type="primary"><checksum type="sha256">00</checksum></data></repomd>"#;
        assert!(matches!(
            parse(no_loc.as_bytes()),
            Err(RepomdError::Missing {
                field: "location",
                ..
            })
        ));
        let bad_size = r#"<repomd><data type="primary"><size>big</size></data></repomd>"#;
        assert!(matches!(
            parse(bad_size.as_bytes()),
            Err(RepomdError::Number { field: "size", .. })
        ));
    }

    /// Every repomd.xml in the shared corpus parses and has a primary entry.
    #[test]
    fn corpus_repomds_parse() {
        let root = &crate::testing::corpus("");
        let out = std::process::Command::new("find")
            .arg(root)
            .args(["-name", "repomd.xml"])
            .output()
            .unwrap();
        let paths = String::from_utf8(out.stdout).unwrap();
        let mut n = 0;
        for path in paths.lines() {
            let bytes = std::fs::read(path).unwrap();
            if !bytes.starts_with(b"<") {
                // A git symlink checked out as a text file (libdnf's gpg-no-asc).
                continue;
            }
            let md = parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
            // Yum-era repos may carry only the sqlite flavour.
            assert!(
                md.primary().is_some() || md.data.contains_key("primary_db"),
                "{path} has no primary"
            );
            n += 1;
        }
        assert!(
            n > 10,
            "only {n} repomd.xml files found under {}",
            root.display()
        );
    }
}
