//! Metalink documents as Fedora's MirrorManager serves them: the mirrors of
//! one repository and the hashes of its current `repomd.xml`.
//!
//! Only the `<file name="repomd.xml">` entry matters. Its `<verification>`
//! holds the current repomd.xml's hashes and `<mm0:alternates>` those of
//! copies still accepted while mirrors sync; a repomd.xml matching none of
//! them is stale or forged and refused. As librepo (`lr_get_best_checksum`),
//! each set is compared by its strongest hash; unlike librepo only sha256
//! and sha512 count, so a set with only md5/sha1 protects nothing.
//!
//! Pure: bytes in, data out; no input makes it panic.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::digest::{Algorithm, Digest};

/// A parsed metalink: the mirrors to try and the hashes to accept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metalink {
    /// Base URLs (ending in `/`), best first: https before http, then by
    /// descending `preference`, then document order.
    pub mirrors: Vec<String>,
    /// One accepted hash per `<verification>` (the current file first, then
    /// its alternates): the strongest of that set minibuild can compute.
    pub hashes: Vec<Digest>,
    /// `<url>`s passed over (not http(s), or not ending in repodata/repomd.xml).
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetalinkError {
    #[error("not a metalink document: {0}")]
    Xml(String),
    #[error("the metalink has no <file name=\"repomd.xml\"> entry")]
    NoRepomd,
    #[error("the metalink publishes no sha256 or sha512 hash of repomd.xml, so a mirror's copy cannot be verified")]
    NoHash,
    #[error("the metalink lists no http(s) mirror of repodata/repomd.xml{}", skipped_note(.0))]
    NoMirror(Vec<String>),
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (passed over: {})", skipped.join(", "))
    }
}

impl Metalink {
    /// Whether `bytes` (a repomd.xml) matches one of the published hashes.
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        self.hashes.iter().any(|want| {
            let got = Digest::of_reader(want.algo(), bytes);
            got.is_ok_and(|got| got.hex().eq_ignore_ascii_case(want.hex()))
        })
    }
}

/// One `<url>` under `<resources>`.
struct Resource {
    url: String,
    preference: i64,
}

/// Which element's text is being collected.
enum Text {
    None,
    Hash(String),
    Url(i64),
}

/// Parse a metalink document.
pub fn parse(xml: &[u8]) -> Result<Metalink, MetalinkError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut seen_root = false;
    // Inside <file name="repomd.xml">.
    let mut in_repomd = false;
    let mut found_repomd = false;
    // Hash sets: the <verification> being read is the last one.
    let mut sets: Vec<Vec<(String, String)>> = Vec::new();
    let mut resources: Vec<Resource> = Vec::new();
    let mut text = Text::None;
    let mut value = String::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| MetalinkError::Xml(format!("at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                let name = local.as_ref();
                if !seen_root {
                    seen_root = true;
                    if name != "metalink" {
                        return Err(MetalinkError::Xml(format!(
                            "the root element is <{}>, not <metalink>",
                            name
                        )));
                    }
                    continue;
                }
                let empty = matches!(event, Event::Empty(_));
                match name {
                    "file" if !empty => {
                        in_repomd = attr(e, "name").as_deref() == Some("repomd.xml");
                        found_repomd |= in_repomd;
                    }
                    "verification" if in_repomd => sets.push(Vec::new()),
                    "hash" if in_repomd && !empty => {
                        text = Text::Hash(attr(e, "type").unwrap_or_default());
                        value.clear();
                    }
                    "url" if in_repomd && !empty => {
                        let preference = attr(e, "preference")
                            .and_then(|p| p.trim().parse().ok())
                            .unwrap_or(0);
                        text = Text::Url(preference);
                        value.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if !matches!(text, Text::None) => value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if !matches!(text, Text::None) => {
                let entity: &str = r.as_ref();
                value.push_str(match entity {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                });
            }
            Event::End(e) => match (
                e.local_name().as_ref(),
                std::mem::replace(&mut text, Text::None),
            ) {
                ("hash", Text::Hash(kind)) => {
                    if let Some(set) = sets.last_mut() {
                        set.push((kind, value.trim().to_string()));
                    }
                }
                ("url", Text::Url(preference)) => resources.push(Resource {
                    url: value.trim().to_string(),
                    preference,
                }),
                ("file", _) => in_repomd = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(MetalinkError::Xml("the document is empty".into()));
    }
    if !found_repomd {
        return Err(MetalinkError::NoRepomd);
    }
    let hashes: Vec<Digest> = sets.iter().filter_map(|set| strongest(set)).collect();
    if hashes.is_empty() {
        return Err(MetalinkError::NoHash);
    }
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for (order, r) in resources.into_iter().enumerate() {
        let https = r.url.starts_with("https://");
        let base = r
            .url
            .strip_suffix("repodata/repomd.xml")
            .filter(|_| https || r.url.starts_with("http://"))
            .filter(|b| b.ends_with('/'));
        match base {
            Some(base) => usable.push((!https, -r.preference, order, base.to_string())),
            None => skipped.push(r.url),
        }
    }
    if usable.is_empty() {
        return Err(MetalinkError::NoMirror(skipped));
    }
    usable.sort();
    let mut mirrors: Vec<String> = Vec::with_capacity(usable.len());
    for (.., base) in usable {
        if !mirrors.contains(&base) {
            mirrors.push(base);
        }
    }
    Ok(Metalink {
        mirrors,
        hashes,
        skipped,
    })
}

/// The strongest hash of one `<verification>` set that minibuild computes.
fn strongest(set: &[(String, String)]) -> Option<Digest> {
    [Algorithm::Sha512, Algorithm::Sha256]
        .iter()
        .find_map(|&algo| {
            set.iter()
                .filter(|(kind, _)| kind.parse::<Algorithm>().ok() == Some(algo))
                .find_map(|(_, hex)| Digest::new(algo, &hex.to_ascii_lowercase()).ok())
        })
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A metalink as MirrorManager writes it (shape of librepo's
    /// tests/test_data/metalinks/metalink_with_alternates, trimmed).
    fn document(current: &Digest, alternate: &Digest) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
  <files>
    <file name="repomd.xml">
      <mm0:timestamp>1381706941</mm0:timestamp>
      <size>4761</size>
      <verification>
        <hash type="md5">0ffcd7798421c9a6760f3e4202cc4675</hash>
        <hash type="sha1">d28e40ca29b3b1d1e2976610e8858f976b06f02e</hash>
        <hash type="sha256">{}</hash>
      </verification>
      <mm0:alternates>
        <mm0:alternate>
          <mm0:timestamp>1381706000</mm0:timestamp>
          <verification>
            <hash type="md5">0c5b64d395d5364633df7c8e97a07fd6</hash>
            <hash type="sha256">{}</hash>
          </verification>
        </mm0:alternate>
      </mm0:alternates>
      <resources maxconnections="1">
        <url protocol="ftp" type="ftp" location="GB" preference="100">ftp://ftp.example/f/repodata/repomd.xml</url>
        <url protocol="http" type="http" location="GB" preference="99">http://a.example/f/repodata/repomd.xml</url>
        <url protocol="rsync" type="rsync" location="GB" preference="99">rsync://a.example/f/repodata/repomd.xml</url>
        <url protocol="https" type="https" location="DE" preference="50">https://b.example/f/repodata/repomd.xml</url>
        <url protocol="https" type="https" location="NL" preference="98">https://c.example/f/repodata/repomd.xml?x=1&amp;y=2</url>
        <url protocol="https" type="https" location="NL" preference="98">https://d.example/f/repodata/repomd.xml</url>
      </resources>
    </file>
  </files>
</metalink>
"#,
            current.hex(),
            alternate.hex()
        )
    }

    #[test]
    fn mirrors_https_first_by_preference_with_every_hash_set() {
        let (cur, alt) = (Digest::sha256_of(b"new"), Digest::sha256_of(b"old"));
        let m = parse(document(&cur, &alt).as_bytes()).unwrap();
        assert_eq!(
            m.mirrors,
            [
                "https://d.example/f/",
                "https://b.example/f/",
                "http://a.example/f/"
            ]
        );
        assert_eq!(m.hashes, [cur, alt]);
        assert_eq!(
            m.skipped,
            [
                "ftp://ftp.example/f/repodata/repomd.xml",
                "rsync://a.example/f/repodata/repomd.xml",
                "https://c.example/f/repodata/repomd.xml?x=1&y=2"
            ]
        );
        assert!(m.accepts(b"new") && m.accepts(b"old"));
        assert!(!m.accepts(b"stale"));
    }

    #[test]
    fn the_strongest_hash_of_a_set_decides() {
        let sha512 = Digest::of_reader(Algorithm::Sha512, &b"x"[..]).unwrap();
        let set = vec![
            (
                "sha256".to_string(),
                Digest::sha256_of(b"other").hex().to_string(),
            ),
            ("sha512".to_string(), sha512.hex().to_uppercase()),
        ];
        assert_eq!(strongest(&set), Some(sha512));
        let weak = vec![(
            "md5".to_string(),
            "0c5b64d395d5364633df7c8e97a07fd6".to_string(),
        )];
        assert_eq!(strongest(&weak), None);
    }

    #[test]
    fn documents_that_verify_nothing_are_refused() {
        let only_md5 = r#"<metalink><files><file name="repomd.xml"><verification>
            <hash type="md5">0c5b64d395d5364633df7c8e97a07fd6</hash></verification>
            <resources><url>https://m/repodata/repomd.xml</url></resources></file></files></metalink>"#;
        assert_eq!(parse(only_md5.as_bytes()), Err(MetalinkError::NoHash));
        let h = Digest::sha256_of(b"");
        let no_https = format!(
            r#"<metalink><files><file name="repomd.xml"><verification><hash type="sha256">{}</hash></verification>
            <resources><url>ftp://m/repodata/repomd.xml</url><url>https://m/other.xml</url></resources></file></files></metalink>"#,
            h.hex()
        );
        let e = parse(no_https.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the metalink lists no http(s) mirror of repodata/repomd.xml (passed over: ftp://m/repodata/repomd.xml, https://m/other.xml)"
        );
        let other_file = r#"<metalink><files><file name="x.iso"/></files></metalink>"#;
        assert_eq!(parse(other_file.as_bytes()), Err(MetalinkError::NoRepomd));
        let html = b"<html><body>503</body></html>";
        assert!(matches!(parse(html), Err(MetalinkError::Xml(m)) if m.contains("<html>")));
        assert!(matches!(parse(b""), Err(MetalinkError::Xml(_))));
    }

    #[test]
    fn never_panics_on_mangled_input() {
        let good = document(&Digest::sha256_of(b"a"), &Digest::sha256_of(b"b")).into_bytes();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let mut bytes = good.clone();
            let cut = (next() % bytes.len() as u64) as usize;
            bytes.truncate(cut.max(1));
            for _ in 0..(next() % 8) {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let _ = parse(&bytes);
        }
    }
}
