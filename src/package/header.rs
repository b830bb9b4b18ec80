//! What an .rpm file's own header says about its dependencies and files.
//!
//! Used where repo metadata is not at hand (a build from a lock) or not
//! complete (primary lists only some files): the header is the truth.

use super::file::Headers;
use super::Package;
use super::{Cmp, Dep, Evr};

/// `pkg` with provides, requires and files replaced by those of `headers`,
/// and the descriptive fields the SBOM needs (summary, license, vendor,
/// packager, source RPM) filled from the header where `pkg` has none (a plan
/// read from a lock carries only identities and checksums).
pub fn with_header_deps(headers: &Headers, pkg: &Package) -> Package {
    let meta = headers.metadata();
    let deps = |v: Vec<::rpm::Dependency>| v.into_iter().map(convert).collect::<Vec<Dep>>();
    let mut out = pkg.clone();
    out.provides = deps(meta.get_provides().unwrap_or_default());
    out.requires = deps(meta.get_requires().unwrap_or_default());
    let fill = |field: &mut String, value: Result<&str, ::rpm::Error>| {
        if field.is_empty() {
            *field = value.unwrap_or_default().to_string();
        }
    };
    fill(&mut out.summary, meta.get_summary());
    fill(&mut out.license, meta.get_license());
    fill(&mut out.vendor, meta.get_vendor());
    fill(&mut out.packager, meta.get_packager());
    fill(&mut out.source_rpm, meta.get_source_rpm());
    out.files = meta
        .get_file_paths()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out
}

/// The package `headers` describe, as a repo record: identity, sizes,
/// descriptive fields, every dependency and the file list (the header is
/// complete where primary.xml is not).
pub fn package_of(
    headers: &Headers,
    repo: usize,
    location: String,
    checksum: crate::digest::Digest,
) -> Result<Package, ::rpm::Error> {
    let meta = headers.metadata();
    let nevra = headers.nevra()?;
    let deps = |v: Result<Vec<::rpm::Dependency>, ::rpm::Error>| -> Vec<Dep> {
        v.unwrap_or_default().into_iter().map(convert).collect()
    };
    let text = |v: Result<&str, ::rpm::Error>| v.unwrap_or_default().to_string();
    Ok(Package {
        installed_size: meta.get_installed_size().unwrap_or_default(),
        build_time: meta.get_build_time().unwrap_or_default(),
        summary: text(meta.get_summary()),
        license: text(meta.get_license()),
        vendor: text(meta.get_vendor()),
        packager: text(meta.get_packager()),
        source_rpm: text(meta.get_source_rpm()),
        provides: deps(meta.get_provides()),
        requires: deps(meta.get_requires()),
        conflicts: deps(meta.get_conflicts()),
        obsoletes: deps(meta.get_obsoletes()),
        recommends: deps(meta.get_recommends()),
        suggests: deps(meta.get_suggests()),
        supplements: deps(meta.get_supplements()),
        enhances: deps(meta.get_enhances()),
        files: meta
            .get_file_paths()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        ..Package::new(nevra, repo, location, checksum)
    })
}

/// A header dependency as the resolver reads it.
pub(crate) fn convert(d: ::rpm::Dependency) -> Dep {
    use ::rpm::DependencyFlags as F;
    let f = d.flags & (F::LESS | F::GREATER | F::EQUAL);
    let cmp = if f == F::LESS {
        Some(Cmp::Lt)
    } else if f == F::LE {
        Some(Cmp::Le)
    } else if f == F::EQUAL {
        Some(Cmp::Eq)
    } else if f == F::GE {
        Some(Cmp::Ge)
    } else if f == F::GREATER {
        Some(Cmp::Gt)
    } else {
        None
    };
    match cmp {
        Some(cmp) if !d.version.is_empty() => Dep::versioned(d.name, cmp, Evr::parse(&d.version)),
        _ => Dep::any(d.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_flags_and_versions() {
        let d = convert(::rpm::Dependency::greater_eq("glibc", "2.34-1"));
        assert_eq!(d, Dep::versioned("glibc", Cmp::Ge, Evr::parse("2.34-1")));
        let d = convert(::rpm::Dependency::any("/bin/sh"));
        assert_eq!(d, Dep::any("/bin/sh"));
        let d = convert(::rpm::Dependency::less("foo", "1:2"));
        assert_eq!(d.to_string(), "foo < 1:2");
    }
}
