//! Which scriptlets a plan's packages carry, read from their headers only,
//! so `minibuild plan` can say what will not run before anything is
//! downloaded in full.
//!
//! primary.xml carries no scriptlets, and a plan from a lock carries no
//! metadata at all, so the RPM's own header is read. An .rpm starts with a
//! 96-byte lead, the signature header (16-byte intro: magic, reserved,
//! index count, data size; padded to 8 bytes) and the main header (same
//! intro); both intros give their own length, so the end of the main header
//! is known from the first bytes. [`header_end`] (the RPM reader's own
//! parser of those sizes, with rpm's limits) computes it from a prefix;
//! [`read_header`] reads the prefix (`PREFIX` bytes, which hold the whole
//! header of most packages) and, only if the header is longer, the rest —
//! from the cached RPM when there is one, else with `Range` requests
//! ([`Client::read_range`]; `file://` repos read the bytes in place). The
//! RPM reader ([`Headers`]) then checks and parses them, and
//! [`crate::rootfs::unpack::scriptlets`] lists what the build will skip.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::cache::Cache;
use crate::http::Client;
use crate::location;
use crate::package::file::{header_end, HeaderEnd, Headers};
use crate::package::Package;
use crate::rootfs::effects;
use crate::rootfs::unpack::{self, SkippedScriptlet};

/// The first read: enough for the lead, the signature and the main header
/// of most packages (a large file list makes the header longer).
pub const PREFIX: u64 = 64 * 1024;

/// The lead, signature and main header of `package`, as bytes: from
/// `cached` when that file exists, else from `baseurl` + location.
pub fn read_header(
    client: &Client,
    cached: &Path,
    package: &Package,
    baseurl: &str,
) -> anyhow::Result<Vec<u8>> {
    let url = location::resolve(baseurl, &package.location)
        .with_context(|| format!("refused to read the header of {}", package.nevra))?;
    let read = |start: u64, end: u64| -> anyhow::Result<Vec<u8>> {
        if let Ok(file) = File::open(cached) {
            let mut file = std::io::BufReader::new(file);
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            file.take(end - start).read_to_end(&mut buf)?;
            return Ok(buf);
        }
        Ok(client.read_range(&url, start, end)?)
    };
    let mut bytes = read(0, PREFIX)?;
    loop {
        let end = match header_end(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{url}: {e}\n  hint: the file is damaged or hostile; report it to the mirror"
            )
        })? {
            HeaderEnd::At(layout) => layout.main.end as u64,
            HeaderEnd::Need(n) => n as u64,
        };
        // The metadata's size is checksummed with the package; a header
        // claimed to reach past it is a lie, not a reason to read more.
        if package.download_size > 0 && end > package.download_size {
            anyhow::bail!(
                "{url}: the header claims to end at byte {end}, past the package's size of {} bytes in the repo metadata\n  hint: the file is damaged or hostile; report it to the mirror",
                package.download_size
            );
        }
        if end as usize <= bytes.len() {
            bytes.truncate(end as usize);
            return Ok(bytes);
        }
        let have = bytes.len() as u64;
        let more = read(have, end)?;
        if more.is_empty() {
            anyhow::bail!("{url}: the file ends at byte {have}, inside its header");
        }
        bytes.extend(more);
    }
}

/// One scriptlet in the `plan` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptletView {
    /// `%pre`, `%post`, `%trigger`…
    pub kind: String,
    /// The interpreter and its arguments (`/bin/sh`, `<lua>`), if recorded.
    pub interpreter: Vec<String>,
    /// What it would have done, as in the build output
    /// (`accounts, done from sysusers.d`); empty when not recognised.
    pub effects: Vec<String>,
}

/// The scriptlets in the header `bytes` (lead + signature + header).
pub fn from_header(bytes: &[u8]) -> anyhow::Result<Vec<ScriptletView>> {
    let headers = Headers::parse(bytes).context("not a valid RPM header")?;
    let meta = headers.metadata();
    let has_sysusers = meta
        .get_file_paths()
        .unwrap_or_default()
        .iter()
        .any(|p| p.starts_with("/usr/lib/sysusers.d"));
    let list = unpack::scriptlets(meta).context("malformed scriptlet tags")?;
    Ok(list.iter().map(|s| view(s, has_sysusers)).collect())
}

fn view(s: &SkippedScriptlet, has_sysusers: bool) -> ScriptletView {
    ScriptletView {
        kind: s.kind.to_string(),
        interpreter: s.interpreter.clone(),
        effects: effects::notes(s, has_sysusers),
    }
}

/// The scriptlets of every package, in input order, `jobs` headers at a
/// time. `packages` pairs each package with its repo's base URL. A package
/// whose header cannot be read gets the error instead.
pub fn for_packages(
    client: &Client,
    cache: &Cache,
    packages: &[(&Package, &str)],
    jobs: usize,
) -> Vec<anyhow::Result<Vec<ScriptletView>>> {
    crate::pool::map(
        packages,
        jobs,
        |_| false,
        |_, &(package, baseurl)| {
            let cached = crate::fetch::cache_path(cache, package);
            read_header(client, &cached, package, baseurl)
                .and_then(|bytes| from_header(&bytes))
                .with_context(|| {
                    format!(
                        "cannot read the header of {} ({}); the file is damaged or not an RPM: report the mirror",
                        package.nevra,
                        crate::http::join(baseurl, &package.location)
                    )
                })
        },
    )
    .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("not read"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real package built here: its header bytes end where the payload
    /// starts, and parse to the scriptlets the full unpack reports.
    #[test]
    fn reads_the_header_of_a_real_rpm_from_a_file_url() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = ::rpm::PackageBuilder::new("s", "1.0", "MIT", "x86_64", "s")
            .pre_install_script("useradd -r s")
            .post_install_script("/sbin/ldconfig")
            .with_file_contents(
                "u s - \"s\" /\n",
                ::rpm::FileOptions::new("/usr/lib/sysusers.d/s.conf"),
            )
            .unwrap()
            .build()
            .unwrap();
        let path = dir.path().join("s-1.0-1.x86_64.rpm");
        pkg.write_file(&path).unwrap();
        let package = Package::new(
            crate::package::Nevra::new("s", crate::package::Evr::parse("1.0-1"), "x86_64"),
            0,
            "s-1.0-1.x86_64.rpm".into(),
            crate::digest::Digest::sha256_of(b"x"),
        );
        let base = format!("file://{}/", dir.path().display());
        let bytes = read_header(
            &Client::new(),
            &dir.path().join("absent.rpm"),
            &package,
            &base,
        )
        .unwrap();
        let full = std::fs::read(&path).unwrap();
        assert!(bytes.len() < full.len() && full.starts_with(&bytes));
        let views = from_header(&bytes).unwrap();
        assert_eq!(
            views,
            [
                ScriptletView {
                    kind: "%pre".into(),
                    interpreter: vec![],
                    effects: vec!["accounts, done from sysusers.d".into()],
                },
                ScriptletView {
                    kind: "%post".into(),
                    interpreter: vec![],
                    effects: vec!["linker cache, written natively".into()],
                },
            ]
        );
        // The cached copy is preferred: a cache file with other content wins.
        let other = dir.path().join("other.rpm");
        std::fs::write(&other, b"junk").unwrap();
        let err = read_header(&Client::new(), &other, &package, &base).unwrap_err();
        assert!(err.to_string().contains("not an RPM"), "{err}");
    }
}
