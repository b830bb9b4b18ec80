//! Streaming parser for `primary.xml`: one [`Package`] per `<package>`.
//!
//! A Fedora primary is ~75,000 packages and well over 100 MB of XML, so the
//! document is never held in memory: quick-xml's buffered reader yields one
//! event at a time into a reused buffer, element names are matched as bytes,
//! and text is collected into one reused `String` until its element closes.
//! Attribute values are borrowed unless they contain entities.
//!
//! Mapping of rpm-md to [`Package`]:
//! - `<version epoch ver rel>`: a missing epoch is 0.
//! - `<rpm:entry name flags epoch ver rel pre>`: no `flags` means an
//!   unversioned dependency; `pre` (an install-ordering hint) is ignored;
//!   rich dependencies such as `(a or b)` arrive in `name` and are kept verbatim.
//! - `<location xml:base="…" href="…">`: with `xml:base` the location becomes an
//!   absolute URL (the package lives elsewhere than the repo).

use std::borrow::Cow;
use std::io::BufRead;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::Package;
use crate::digest::{Digest, DigestError};
use crate::package::{Cmp, Dep, Evr, Nevra};

#[derive(Debug, thiserror::Error)]
pub enum PrimaryError {
    #[error("primary.xml is not valid UTF-8 at byte {position} ({context}): the file is damaged\n  hint: the mirror served a damaged file; report it to the mirror, then run `minibuild cache clean --only repodata` and retry")]
    Utf8 { position: u64, context: String },
    #[error("malformed primary.xml at byte {position}{}",
        package.as_ref().map(|p| format!(" (in package `{p}`)")).unwrap_or_default())]
    Xml {
        position: u64,
        package: Option<String>,
        #[source]
        source: quick_xml::Error,
    },
    #[error("package `{package}` (primary.xml byte {position}): {message}")]
    Invalid {
        package: String,
        position: u64,
        message: String,
    },
    #[error("not a primary.xml: {0} bytes without a <metadata> element (an empty file, or HTML or text instead of XML); if the checksum matched, report the mirror, else run `minibuild cache clean --only repodata`")]
    NoMetadata(u64),
    #[error("package `{package}` (primary.xml byte {position}) has an unusable checksum")]
    Checksum {
        package: String,
        position: u64,
        #[source]
        source: DigestError,
    },
}

/// Text-bearing elements whose content we keep.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Name,
    Arch,
    Checksum,
    Summary,
    Packager,
    License,
    Vendor,
    SourceRpm,
    File,
}

impl Field {
    /// Text elements other than `<checksum>` (which also has an attribute).
    fn from_local_name(name: &str) -> Option<Field> {
        Some(match name {
            "file" => Field::File,
            "name" => Field::Name,
            "arch" => Field::Arch,
            "summary" => Field::Summary,
            "packager" => Field::Packager,
            "license" => Field::License,
            "vendor" => Field::Vendor,
            "sourcerpm" => Field::SourceRpm,
            _ => return None,
        })
    }
}

/// Which dependency list `<rpm:entry>` elements currently go to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DepList {
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Suggests,
    Supplements,
    Enhances,
}

impl DepList {
    fn from_local_name(name: &str) -> Option<DepList> {
        Some(match name {
            "provides" => DepList::Provides,
            "requires" => DepList::Requires,
            "conflicts" => DepList::Conflicts,
            "obsoletes" => DepList::Obsoletes,
            "recommends" => DepList::Recommends,
            "suggests" => DepList::Suggests,
            "supplements" => DepList::Supplements,
            "enhances" => DepList::Enhances,
            _ => return None,
        })
    }
}

/// A package under construction; `Package` minus what is only known at the end.
#[derive(Default)]
struct Draft {
    name: String,
    arch: String,
    epoch: u64,
    version: String,
    release: String,
    checksum_type: String,
    checksum: String,
    location: String,
    download_size: u64,
    installed_size: u64,
    build_time: u64,
    summary: String,
    license: String,
    vendor: String,
    packager: String,
    source_rpm: String,
    provides: Vec<Dep>,
    requires: Vec<Dep>,
    conflicts: Vec<Dep>,
    obsoletes: Vec<Dep>,
    recommends: Vec<Dep>,
    suggests: Vec<Dep>,
    supplements: Vec<Dep>,
    enhances: Vec<Dep>,
    files: Vec<String>,
}

impl Draft {
    fn deps(&mut self, list: DepList) -> &mut Vec<Dep> {
        match list {
            DepList::Provides => &mut self.provides,
            DepList::Requires => &mut self.requires,
            DepList::Conflicts => &mut self.conflicts,
            DepList::Obsoletes => &mut self.obsoletes,
            DepList::Recommends => &mut self.recommends,
            DepList::Suggests => &mut self.suggests,
            DepList::Supplements => &mut self.supplements,
            DepList::Enhances => &mut self.enhances,
        }
    }

    fn store(&mut self, field: Field, text: &str) {
        let slot = match field {
            Field::Name => &mut self.name,
            Field::Arch => &mut self.arch,
            Field::Checksum => &mut self.checksum,
            Field::Summary => &mut self.summary,
            Field::Packager => &mut self.packager,
            Field::License => &mut self.license,
            Field::Vendor => &mut self.vendor,
            Field::SourceRpm => &mut self.source_rpm,
            Field::File => {
                self.files.push(text.to_string());
                return;
            }
        };
        slot.clear();
        slot.push_str(text);
    }

    /// `name-version-release.arch` for messages, before the package is whole.
    fn label(&self) -> String {
        if self.name.is_empty() {
            "<unnamed>".to_string()
        } else if self.version.is_empty() || self.arch.is_empty() {
            // Name read, the rest not yet: `b--.` would only confuse.
            self.name.clone()
        } else {
            format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            )
        }
    }

    fn finish(self, repo: usize, position: u64) -> Result<Package, PrimaryError> {
        let invalid = |d: &Draft, message: &str| PrimaryError::Invalid {
            package: d.label(),
            position,
            message: message.to_string(),
        };
        if self.name.is_empty() || self.arch.is_empty() || self.version.is_empty() {
            return Err(invalid(&self, "missing <name>, <arch> or <version ver>"));
        }
        if self.location.is_empty() {
            return Err(invalid(&self, "missing <location href>"));
        }
        let checksum = self
            .checksum_type
            .parse()
            .and_then(|algo| Digest::new(algo, self.checksum.trim()))
            .map_err(|source| PrimaryError::Checksum {
                package: self.label(),
                position,
                source,
            })?;
        Ok(Package {
            nevra: Nevra {
                name: self.name,
                evr: Evr::new(self.epoch, self.version, Some(self.release)),
                arch: self.arch,
            },
            repo,
            location: self.location,
            checksum,
            download_size: self.download_size,
            installed_size: self.installed_size,
            build_time: self.build_time,
            summary: self.summary,
            license: self.license,
            vendor: self.vendor,
            packager: self.packager,
            source_rpm: self.source_rpm,
            provides: self.provides,
            requires: self.requires,
            conflicts: self.conflicts,
            obsoletes: self.obsoletes,
            recommends: self.recommends,
            suggests: self.suggests,
            supplements: self.supplements,
            enhances: self.enhances,
            files: self.files,
        })
    }
}

/// Attribute values of one element, looked up by name.
struct Attrs<'a, 'e> {
    e: &'a BytesStart<'e>,
}

impl<'a, 'e> Attrs<'a, 'e> {
    fn each(
        &self,
        mut f: impl FnMut(&str, Cow<'a, str>) -> Result<(), String>,
    ) -> Result<(), AttrError> {
        let mut attrs = self.e.attributes();
        // Duplicate detection is quadratic and createrepo never writes duplicates.
        attrs.with_checks(false);
        for a in attrs {
            let a = a.map_err(|e| AttrError::Xml(e.into()))?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(AttrError::Xml)?;
            f(a.key.as_ref(), value).map_err(AttrError::Invalid)?;
        }
        Ok(())
    }
}

enum AttrError {
    Xml(quick_xml::Error),
    Invalid(String),
}

fn number(attr: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("`{attr}` is not a number: `{value}`"))
}

fn parse_version(e: &BytesStart<'_>, d: &mut Draft) -> Result<(), AttrError> {
    d.epoch = 0;
    Attrs { e }.each(|k, v| {
        match k {
            // createrepo writes epoch="0"; other generators omit it or leave it empty.
            "epoch" if !v.is_empty() => d.epoch = number("epoch", &v)?,
            "ver" => d.version = v.into_owned(),
            "rel" => d.release = v.into_owned(),
            _ => {}
        }
        Ok(())
    })
}

fn parse_entry(e: &BytesStart<'_>) -> Result<Dep, AttrError> {
    let mut name = None;
    let mut flags = None;
    let (mut epoch, mut ver, mut rel) = (0, None, None);
    Attrs { e }.each(|k, v| {
        match k {
            "name" => name = Some(v.into_owned()),
            "flags" => {
                flags = Some(
                    Cmp::from_repomd(&v)
                        .ok_or_else(|| format!("unknown dependency flags `{v}`"))?,
                )
            }
            "epoch" if !v.is_empty() => epoch = number("epoch", &v)?,
            "ver" => ver = Some(v.into_owned()),
            "rel" => rel = Some(v.into_owned()),
            _ => {}
        }
        Ok(())
    })?;
    let name = name.ok_or_else(|| AttrError::Invalid("<rpm:entry> without name".into()))?;
    Ok(match flags {
        Some(cmp) => Dep::versioned(name, cmp, Evr::new(epoch, ver.unwrap_or_default(), rel)),
        None => Dep::any(name),
    })
}

fn parse_location(e: &BytesStart<'_>, d: &mut Draft) -> Result<(), AttrError> {
    let mut base: Option<String> = None;
    Attrs { e }.each(|k, v| {
        match k {
            "href" => d.location = v.into_owned(),
            "xml:base" if !v.is_empty() => base = Some(v.into_owned()),
            _ => {}
        }
        Ok(())
    })?;
    if let Some(base) = base {
        d.location = crate::http::join(&base, &d.location);
    }
    Ok(())
}

fn parse_size(e: &BytesStart<'_>, d: &mut Draft) -> Result<(), AttrError> {
    Attrs { e }.each(|k, v| {
        match k {
            "package" => d.download_size = number("package", &v)?,
            "installed" => d.installed_size = number("installed", &v)?,
            _ => {}
        }
        Ok(())
    })
}

fn parse_time(e: &BytesStart<'_>, d: &mut Draft) -> Result<(), AttrError> {
    Attrs { e }.each(|k, v| {
        if k == "build" {
            d.build_time = number("build", &v)?;
        }
        Ok(())
    })
}

fn parse_checksum_type(e: &BytesStart<'_>, d: &mut Draft) -> Result<(), AttrError> {
    Attrs { e }.each(|k, v| {
        if k == "type" {
            d.checksum_type.clear();
            d.checksum_type.push_str(&v);
        }
        Ok(())
    })
}

/// Append an entity reference (`&amp;`, `&#x263a;`) to `text`.
pub(super) fn push_ref(text: &mut String, r: &BytesRef<'_>) -> Result<(), String> {
    if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
        text.push(c);
        return Ok(());
    }
    match quick_xml::escape::resolve_predefined_entity(r) {
        Some(s) => {
            text.push_str(s);
            Ok(())
        }
        None => Err(format!("unknown entity `&{};`", &**r)),
    }
}

/// Parse a whole (already decompressed) primary.xml. `repo` is stored in
/// every package: the index of the repository in the recipe's order.
/// Places a reader error. quick-xml reports no position for a decoding
/// error (its `error_position` stays 0), but the UTF-8 error counts the
/// valid bytes from the start of the event, which began at `start`.
fn where_error(
    source: quick_xml::Error,
    start: u64,
    error_position: u64,
    draft: &Option<Draft>,
    previous: &Option<String>,
) -> PrimaryError {
    let package = match (draft.as_ref().map(Draft::label), previous) {
        (Some(label), _) if label != "<unnamed>" => Some(format!("in package `{label}`")),
        (_, Some(prev)) => Some(format!("after package `{prev}`")),
        (Some(label), None) => Some(format!("in package `{label}`")),
        (None, None) => None,
    };
    match source {
        quick_xml::Error::Encoding(quick_xml::encoding::EncodingError::Utf8(e)) => {
            PrimaryError::Utf8 {
                position: start + e.valid_up_to() as u64,
                context: package.unwrap_or_else(|| "before the first package".into()),
            }
        }
        source => PrimaryError::Xml {
            position: error_position,
            package: draft.as_ref().map(Draft::label),
            source,
        },
    }
}

pub fn parse(input: impl BufRead, repo: usize) -> Result<Vec<Package>, PrimaryError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut packages = Vec::new();
    let mut draft: Option<Draft> = None;
    let mut field: Option<Field> = None;
    let mut deps: Option<DepList> = None;
    let mut text = String::new();
    // An empty or non-XML file parses to no packages at all; the resolver
    // would then report "nothing provides X", blaming the recipe.
    let mut saw_metadata = false;

    // The last whole package, to place an error met before the next `<name>`.
    let mut previous: Option<String> = None;

    loop {
        let start = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|source| {
            where_error(source, start, reader.error_position(), &draft, &previous)
        })?;
        let position = reader.buffer_position();
        let fail = |d: &Option<Draft>, err: AttrError| match err {
            AttrError::Xml(source) => PrimaryError::Xml {
                position,
                package: d.as_ref().map(Draft::label),
                source,
            },
            AttrError::Invalid(message) => PrimaryError::Invalid {
                package: d.as_ref().map_or_else(|| "<none>".into(), Draft::label),
                position,
                message,
            },
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                if local == "package" {
                    // An empty `<package/>` describes nothing to install;
                    // createrepo_c skips it with a warning, and so do we.
                    if !empty {
                        draft = Some(Draft::default());
                    }
                    buf.clear();
                    continue;
                }
                if local == "metadata" {
                    saw_metadata = true;
                    // `packages="N"` sizes the vector once instead of ~17 regrowths.
                    let mut n = 0usize;
                    let _ = Attrs { e }.each(|k, v| {
                        if k == "packages" {
                            n = v.parse().unwrap_or(0);
                        }
                        Ok(())
                    });
                    packages.reserve(n.min(1 << 20));
                    buf.clear();
                    continue;
                }
                let Some(d) = draft.as_mut() else {
                    buf.clear();
                    continue;
                };
                let result = match local {
                    // By far the most frequent element: test it first.
                    "entry" => match deps {
                        Some(list) => parse_entry(e).map(|dep| d.deps(list).push(dep)),
                        None => Ok(()),
                    },
                    "version" => parse_version(e, d),
                    "time" => parse_time(e, d),
                    "size" => parse_size(e, d),
                    "location" => parse_location(e, d),
                    "checksum" => {
                        field = Some(Field::Checksum);
                        parse_checksum_type(e, d)
                    }
                    other => {
                        field = Field::from_local_name(other);
                        if field.is_none() && !empty {
                            deps = DepList::from_local_name(other).or(deps);
                        }
                        Ok(())
                    }
                };
                if let Err(err) = result {
                    return Err(fail(&draft, err));
                }
                text.clear();
                if empty {
                    // `<rpm:vendor/>`, `<file/>`: an empty value.
                    if let (Some(f), Some(d)) = (field.take(), draft.as_mut()) {
                        d.store(f, "");
                    }
                }
            }
            Event::Text(ref t) if field.is_some() => text.push_str(&t.xml10_content()),
            Event::CData(ref t) if field.is_some() => text.push_str(&t.xml10_content()),
            Event::GeneralRef(ref r) if field.is_some() => {
                if let Err(message) = push_ref(&mut text, r) {
                    return Err(fail(&draft, AttrError::Invalid(message)));
                }
            }
            Event::End(ref e) => {
                if let Some(f) = field.take() {
                    if let Some(d) = draft.as_mut() {
                        d.store(f, &text);
                    }
                } else {
                    let local = e.local_name();
                    match local.as_ref() {
                        "package" => {
                            if let Some(d) = draft.take() {
                                let package = d.finish(repo, position)?;
                                previous = Some(package.nevra.to_string());
                                packages.push(package);
                            }
                        }
                        other if DepList::from_local_name(other).is_some() => deps = None,
                        _ => {}
                    }
                }
            }
            Event::Eof => {
                if draft.is_some() {
                    return Err(fail(
                        &draft,
                        AttrError::Invalid(
                            "primary.xml ends inside this package (truncated file?)".into(),
                        ),
                    ));
                }
                if !saw_metadata {
                    return Err(PrimaryError::NoMetadata(reader.buffer_position()));
                }
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "152824bff2aa6d54f429d43e87a3ff3a0286505c6d93ec87692b5e3a9e3b97bf";

    fn doc(packages: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
{packages}
</metadata>"#
        )
    }

    fn one(xml: &str) -> Package {
        let mut v = parse(doc(xml).as_bytes(), 3).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    /// Shaped like createrepo_c's output for a real package (ModemManager
    /// from CentOS Stream 9), with every dependency kind present.
    const FULL: &str = r#"<package type="rpm">
  <name>ModemManager</name>
  <arch>x86_64</arch>
  <version epoch="2" ver="1.18.2" rel="3.el9"/>
  <checksum type="sha256" pkgid="YES">152824bff2aa6d54f429d43e87a3ff3a0286505c6d93ec87692b5e3a9e3b97bf</checksum>
  <summary>Mobile broadband &amp; modem &lt;management&gt; service&#x21;</summary>
  <description>The ModemManager service manages WWAN modems.</description>
  <packager>builder@centos.org</packager>
  <url>http://www.freedesktop.org/wiki/Software/ModemManager/</url>
  <time file="1640100835" build="1639745258"/>
  <size package="1203105" installed="4272086" archive="4303344"/>
  <location href="Packages/ModemManager-1.18.2-3.el9.x86_64.rpm"/>
  <format>
    <rpm:license>GPLv2+</rpm:license>
    <rpm:vendor>CentOS</rpm:vendor>
    <rpm:group>Unspecified</rpm:group>
    <rpm:buildhost>x86-04.stream.rdu2.redhat.com</rpm:buildhost>
    <rpm:sourcerpm>ModemManager-1.18.2-3.el9.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="45616" end="87781"/>
    <rpm:provides>
      <rpm:entry name="ModemManager" flags="EQ" epoch="2" ver="1.18.2" rel="3.el9"/>
      <rpm:entry name="libmm-shared-xmm.so()(64bit)"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="glib2" flags="GE" epoch="0" ver="2.68"/>
      <rpm:entry name="libqmi" flags="LE" ver="1.30"/>
      <rpm:entry name="(systemd if systemd-libs &gt;= 250)"/>
    </rpm:requires>
    <rpm:conflicts>
      <rpm:entry name="glib2(x86-64)" flags="LT" epoch="0" ver="2.68.4"/>
    </rpm:conflicts>
    <rpm:obsoletes>
      <rpm:entry name="mm-old" flags="GT" epoch="1" ver="0.9" rel="1"/>
    </rpm:obsoletes>
    <rpm:recommends>
      <rpm:entry name="(libmbim-utils or libqmi-utils)"/>
    </rpm:recommends>
    <rpm:suggests>
      <rpm:entry name="mm-docs"/>
    </rpm:suggests>
    <rpm:supplements>
      <rpm:entry name="(NetworkManager and wwan-hardware)"/>
    </rpm:supplements>
    <rpm:enhances>
      <rpm:entry name="NetworkManager" flags="EQ" epoch="1" ver="1.36.0"/>
    </rpm:enhances>
    <file>/etc/dbus-1/system.d/org.freedesktop.ModemManager1.conf</file>
    <file type="dir">/usr/lib/ModemManager</file>
    <file>/usr/bin/mmcli</file>
  </format>
</package>"#;

    #[test]
    fn fills_every_field() {
        let p = one(FULL);
        assert_eq!(p.nevra.to_string(), "ModemManager-2:1.18.2-3.el9.x86_64");
        assert_eq!(p.repo, 3);
        assert_eq!(p.location, "Packages/ModemManager-1.18.2-3.el9.x86_64.rpm");
        assert_eq!(p.checksum.to_string(), format!("sha256:{SHA}"));
        assert_eq!(p.download_size, 1203105);
        assert_eq!(p.installed_size, 4272086);
        assert_eq!(p.build_time, 1639745258);
        assert_eq!(p.summary, "Mobile broadband & modem <management> service!");
        assert_eq!(p.license, "GPLv2+");
        assert_eq!(p.vendor, "CentOS");
        assert_eq!(p.packager, "builder@centos.org");
        assert_eq!(p.source_rpm, "ModemManager-1.18.2-3.el9.src.rpm");
        let show = |v: &[Dep]| v.iter().map(Dep::to_string).collect::<Vec<_>>();
        assert_eq!(
            show(&p.provides),
            [
                "ModemManager = 2:1.18.2-3.el9",
                "libmm-shared-xmm.so()(64bit)"
            ]
        );
        assert_eq!(
            show(&p.requires),
            [
                "/bin/sh",
                "glib2 >= 2.68",
                "libqmi <= 1.30",
                "(systemd if systemd-libs >= 250)"
            ]
        );
        assert_eq!(show(&p.conflicts), ["glib2(x86-64) < 2.68.4"]);
        assert_eq!(show(&p.obsoletes), ["mm-old > 1:0.9-1"]);
        assert_eq!(show(&p.recommends), ["(libmbim-utils or libqmi-utils)"]);
        assert_eq!(show(&p.suggests), ["mm-docs"]);
        assert_eq!(show(&p.supplements), ["(NetworkManager and wwan-hardware)"]);
        assert_eq!(show(&p.enhances), ["NetworkManager = 1:1.36.0"]);
        assert!(p.requires[3].is_rich());
        assert_eq!(
            p.files,
            [
                "/etc/dbus-1/system.d/org.freedesktop.ModemManager1.conf",
                "/usr/lib/ModemManager",
                "/usr/bin/mmcli"
            ]
        );
    }

    #[test]
    fn dependency_ranges_are_typed() {
        let p = one(FULL);
        let (cmp, evr) = p.requires[1].range.clone().unwrap();
        assert_eq!(cmp, Cmp::Ge);
        assert_eq!(*evr, Evr::new(0, "2.68", None));
        // No `rel` attribute: the release is unknown, not empty.
        let (cmp, evr) = p.requires[2].range.clone().unwrap();
        assert_eq!(cmp, Cmp::Le);
        assert_eq!(evr.release, None);
        assert_eq!(p.requires[0].range, None);
    }

    #[test]
    fn missing_epoch_is_zero_and_empty_elements_are_empty() {
        let p = one(&format!(
            r#"<package type="rpm"><name>a</name><arch>noarch</arch>
            <version ver="1" rel="2"/><checksum type="sha256">{SHA}</checksum>
            <summary/><packager></packager><location href="a.rpm"/>
            <format><rpm:vendor/><rpm:license>MIT</rpm:license>
            <rpm:provides><rpm:entry name="a" flags="EQ" ver="1" rel="2"/></rpm:provides>
            </format></package>"#
        ));
        assert_eq!(p.nevra.evr, Evr::new(0, "1", Some("2".into())));
        assert_eq!(p.provides[0].range.as_ref().unwrap().1.epoch, 0);
        assert_eq!(p.vendor, "");
        assert_eq!(p.summary, "");
        assert_eq!(p.license, "MIT");
        assert_eq!(p.download_size, 0);
    }

    #[test]
    fn xml_base_makes_the_location_absolute() {
        let p = one(&format!(
            r#"<package type="rpm"><name>a</name><arch>noarch</arch>
            <version epoch="0" ver="1" rel="2"/><checksum type="sha256">{SHA}</checksum>
            <location xml:base="https://cdn.example/pool/" href="a/a-1-2.noarch.rpm"/>
            </package>"#
        ));
        assert_eq!(p.location, "https://cdn.example/pool/a/a-1-2.noarch.rpm");
    }

    #[test]
    fn several_packages_keep_their_own_lists() {
        let pkg = |n: &str, req: &str| {
            format!(
                r#"<package type="rpm"><name>{n}</name><arch>x86_64</arch>
                <version epoch="0" ver="1" rel="1"/><checksum type="sha256">{SHA}</checksum>
                <location href="{n}.rpm"/><format><rpm:requires>{req}</rpm:requires></format></package>"#
            )
        };
        let xml = doc(&(pkg("a", r#"<rpm:entry name="x"/>"#) + &pkg("b", "")));
        let v = parse(xml.as_bytes(), 0).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].requires.len(), 1);
        assert!(v[1].requires.is_empty());
        assert_eq!(v[1].nevra.name, "b");
    }

    #[test]
    fn errors_name_the_package_and_position() {
        let bad_flags = doc(&format!(
            r#"<package type="rpm"><name>a</name><arch>noarch</arch>
            <version epoch="0" ver="1" rel="2"/><checksum type="sha256">{SHA}</checksum>
            <location href="a.rpm"/><format><rpm:requires>
            <rpm:entry name="b" flags="XX" ver="1"/></rpm:requires></format></package>"#
        ));
        let err = parse(bad_flags.as_bytes(), 0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("a-1-2.noarch") && msg.contains("`XX`"),
            "{msg}"
        );

        let sha1 = doc(r#"<package type="rpm"><name>a</name><arch>noarch</arch>
            <version epoch="0" ver="1" rel="2"/>
            <checksum type="sha">da39a3ee5e6b4b0d3255bfef95601890afd80709</checksum>
            <location href="a.rpm"/></package>"#);
        let err = parse(sha1.as_bytes(), 0).unwrap_err();
        assert!(matches!(err, PrimaryError::Checksum { .. }), "{err:?}");

        for not_primary in ["", "<html><body>502 Bad Gateway</body></html>", "Moved\n"] {
            let err = parse(not_primary.as_bytes(), 0).unwrap_err();
            assert!(
                matches!(err, PrimaryError::NoMetadata(_)),
                "{not_primary:?}: {err:?}"
            );
        }

        let truncated = &doc(FULL)[..1500];
        let err = parse(truncated.as_bytes(), 0).unwrap_err();
        assert!(err.to_string().contains("ModemManager"), "{err}");
    }

    /// A damaged byte is placed exactly, after the last whole package, or in
    /// the package whose name is already known.
    #[test]
    fn invalid_utf8_names_the_byte_and_the_package() {
        let a = format!(
            r#"<package type="rpm"><name>a</name><arch>noarch</arch>
            <version epoch="0" ver="1" rel="2"/><checksum type="sha256">{SHA}</checksum>
            <location href="a.rpm"/></package>"#
        );
        for (tail, context) in [
            ("<package type=\"rpm\"><summary>\u{1}", "after package `a-1-2.noarch`"),
            ("<package type=\"rpm\"><name>b</name><summary>\u{1}", "in package `b`"),
            (
                "<package type=\"rpm\"><name>b</name><format><rpm:requires><rpm:entry name=\"\u{1}\"/>",
                "in package `b`",
            ),
        ] {
            let mut xml = doc(&format!("{a}\n{tail}")).into_bytes();
            let at = xml.iter().position(|&b| b == 1).unwrap();
            xml[at] = 0xff;
            let err = parse(&xml[..], 0).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "primary.xml is not valid UTF-8 at byte {at} ({context}): the file is damaged\n  \
                     hint: the mirror served a damaged file; report it to the mirror, then run \
                     `minibuild cache clean --only repodata` and retry"
                ),
                "{tail}"
            );
        }
    }

    /// Every primary file in the shared corpus parses, with one package per
    /// `<package>` element and a location for each.
    #[test]
    fn corpus_primaries_parse() {
        let root = &crate::testing::corpus("");
        let out = std::process::Command::new("find")
            .arg(root)
            .args(["-name", "*primary.xml*", "-not", "-name", "*.zck"])
            .output()
            .unwrap();
        let mut files = 0;
        let mut total = 0;
        for path in String::from_utf8(out.stdout).unwrap().lines() {
            let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
            let mut xml = String::new();
            std::io::Read::read_to_string(
                &mut super::super::decompress(path, file).unwrap(),
                &mut xml,
            )
            .unwrap();
            if !xml.contains("<metadata") {
                continue; // a snippet without the root element
            }
            if path.contains("/modified_repo_files/error_") {
                // createrepo_c's deliberately broken metadata must be refused.
                assert!(parse(xml.as_bytes(), 0).is_err(), "{path} parsed");
                continue;
            }
            // Count the elements: some test repos' `packages=` attributes lie.
            let present = xml.matches("</package>").count();
            let pkgs = parse(xml.as_bytes(), 0).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(pkgs.len(), present, "{path}");
            assert!(pkgs.iter().all(|p| !p.location.is_empty()), "{path}");
            files += 1;
            total += pkgs.len();
        }
        assert!(
            files > 10,
            "only {files} primary files under {}",
            root.display()
        );
        assert!(total > 1000, "only {total} packages");
    }

    #[test]
    fn empty_metadata_and_empty_packages_are_no_packages() {
        let v = parse(&br#"<metadata packages="0"/>"#[..], 0).unwrap();
        assert!(v.is_empty());
        let v = parse(doc(r#"<package type="rpm"/>"#).as_bytes(), 0).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn unknown_elements_are_ignored() {
        let p = one(&FULL.replace(
            "<packager>",
            "<foo>bar &amp; baz</foo><rpm:newthing a=\"1\"/><packager>",
        ));
        assert_eq!(p.packager, "builder@centos.org");
        assert_eq!(p.requires.len(), 4);
    }
}
