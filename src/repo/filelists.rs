//! Streaming parser for `filelists.xml`: every package's complete file list.
//!
//! primary.xml lists only the paths most file dependencies name (`/usr/bin`,
//! `/etc`, …); a requirement on anything else (`/usr/share/…`) needs
//! filelists, which is several times larger, so it is read only when some
//! file requirement is not met by primary (see [`super::load_filelists`]).
//! Like primary.rs, one event at a time into reused buffers.
//!
//! `<package pkgid="SHA" name arch><version …/><file [type="dir"]>PATH</file>…`:
//! `pkgid` is the package's checksum, the same as primary's `<checksum>`,
//! which is how the lists are joined to [`super::Package`]s.

use std::io::BufRead;

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, thiserror::Error)]
#[error("malformed filelists.xml at byte {position}: {message}")]
pub struct FilelistsError {
    pub position: u64,
    pub message: String,
}

/// Call `each(pkgid, files)` for every `<package>`, in document order.
pub fn parse(
    input: impl BufRead,
    mut each: impl FnMut(&str, Vec<String>),
) -> Result<(), FilelistsError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::with_capacity(1 << 12);
    let mut pkgid = String::new();
    let mut files: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut in_file = false;
    loop {
        let err = |reader: &Reader<_>, message: String| FilelistsError {
            position: reader.buffer_position(),
            message,
        };
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(&reader, e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => match e.local_name().as_ref() {
                "package" => {
                    pkgid.clear();
                    files.clear();
                    for a in e.attributes() {
                        let a = a.map_err(|e| err(&reader, e.to_string()))?;
                        if a.key.local_name().as_ref() == "pkgid" {
                            let v = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map_err(|e| err(&reader, e.to_string()))?;
                            pkgid.push_str(&v);
                        }
                    }
                }
                "file" if matches!(event, Event::Start(_)) => {
                    in_file = true;
                    text.clear();
                }
                _ => {}
            },
            Event::Text(ref t) if in_file => text.push_str(&t.xml10_content()),
            Event::CData(ref t) if in_file => text.push_str(&t.xml10_content()),
            Event::GeneralRef(ref r) if in_file => {
                super::primary::push_ref(&mut text, r).map_err(|m| err(&reader, m))?
            }
            Event::End(ref e) => match e.local_name().as_ref() {
                "file" => {
                    in_file = false;
                    files.push(std::mem::take(&mut text));
                }
                "package" => each(&pkgid, std::mem::take(&mut files)),
                _ => {}
            },
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_files_and_dirs_per_package() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="aa11" name="a" arch="noarch"><version epoch="0" ver="1" rel="1"/>
  <file>/usr/share/a/data.txt</file><file type="dir">/usr/share/a</file><file>/usr/bin/a&amp;b</file>
</package>
<package pkgid="bb22" name="b" arch="noarch"><version epoch="0" ver="1" rel="1"/></package>
</filelists>"#;
        let mut seen = Vec::new();
        parse(xml.as_bytes(), |id, files| {
            seen.push((id.to_string(), files))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (
                    "aa11".to_string(),
                    vec![
                        "/usr/share/a/data.txt".to_string(),
                        "/usr/share/a".to_string(),
                        "/usr/bin/a&b".to_string()
                    ]
                ),
                ("bb22".to_string(), vec![])
            ]
        );
    }

    #[test]
    fn malformed_xml_is_an_error_with_a_position() {
        let xml = "<filelists><package pkgid=\"a\"><file>/x</package></filelists>";
        let e = parse(xml.as_bytes(), |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("malformed filelists.xml"), "{e}");
    }
}
