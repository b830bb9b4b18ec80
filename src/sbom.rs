//! Software bill of materials: every installed RPM with its identity, origin,
//! license and checksum, in SPDX 2.3 or CycloneDX 1.5 JSON.
//!
//! Pure functions from a [`Plan`] plus image facts to a JSON value; the
//! pipeline writes the result beside the image. Package identifiers are purls
//! as scanners expect them for RPMs:
//! `pkg:rpm/<distro-id>/<name>@<version>-<release>?arch=<arch>&epoch=<n>&distro=<id>-<version>`.

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::package::Package;
use crate::resolve::order::dependency_graph;
use crate::resolve::Plan;

/// Facts about the image the SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `name:tag`.
    pub name: String,
    pub manifest_digest: Digest,
    pub arch: String,
    /// From the image's os-release (`ID`, `VERSION_ID`), when it has one.
    pub distro: Option<Distro>,
    /// RFC 3339 creation time (SOURCE_DATE_EPOCH, so the SBOM is reproducible too).
    pub created: String,
    /// Repo index → substituted base URL (for download locations).
    pub baseurls: Vec<String>,
    /// The repo index of the recipe's local RPMs (`@local`), if any: their
    /// purls name the file and its sha256 rather than a distribution.
    pub local_repo: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
}

impl Distro {
    /// Parse `os-release` text (`ID=fedora`, `VERSION_ID=40`, values maybe quoted).
    pub fn from_os_release(text: &str) -> Option<Distro> {
        let get = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
            })
        };
        Some(Distro {
            id: get("ID")?,
            version_id: get("VERSION_ID").unwrap_or_default(),
        })
    }
}

/// The purl of an RPM, per the purl spec's `rpm` type.
pub fn purl(pkg: &Package, distro: Option<&Distro>) -> String {
    let n = &pkg.nevra;
    let namespace = distro.map_or("unknown", |d| d.id.as_str());
    let release = n.evr.release.as_deref().unwrap_or("");
    let mut s = format!(
        "pkg:rpm/{}/{}@{}",
        enc(namespace),
        enc(&n.name),
        enc(&n.evr.version)
    );
    if !release.is_empty() {
        s.push('-');
        s.push_str(&enc(release));
    }
    s.push_str(&format!("?arch={}", enc(&n.arch)));
    if n.evr.epoch != 0 {
        s.push_str(&format!("&epoch={}", n.evr.epoch));
    }
    if let Some(d) = distro {
        s.push_str(&format!(
            "&distro={}",
            enc(&format!("{}-{}", d.id, d.version_id))
        ));
    }
    s
}

/// The purl of `pkg` in `subject`'s image: a local RPM (built by the user,
/// not the distribution) gets the namespace `local` and the qualifiers
/// `checksum=sha256:…` and `file_name=` (its path relative to the recipe).
fn purl_in(pkg: &Package, distro: Option<&Distro>, subject: &Subject) -> String {
    if subject.local_repo != Some(pkg.repo) {
        return purl(pkg, distro);
    }
    let local = Distro {
        id: "local".into(),
        version_id: String::new(),
    };
    let base = purl(pkg, Some(&local));
    let base = base.split("&distro=").next().unwrap_or(&base);
    format!(
        "{base}&checksum={}:{}&file_name={}",
        pkg.checksum.algo().name(),
        pkg.checksum.hex(),
        enc(&pkg.location)
    )
}

/// Percent-encode what purl components may not contain.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SPDX element ids allow only letters, digits, `.` and `-`.
fn spdx_id(prefix: &str, name: &str, arch: &str) -> String {
    let clean: String = format!("{name}-{arch}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{prefix}-{clean}")
}

/// Whether an RPM `License:` is plausibly an SPDX expression (Fedora ≥ 38 uses
/// SPDX); older free-text tags such as `GPLv2+` go into a comment instead.
fn spdx_license(license: &str) -> Option<&str> {
    let ok = !license.is_empty()
        && license
            .split([' ', '(', ')'])
            .filter(|t| !t.is_empty())
            .all(|t| {
                matches!(t, "AND" | "OR" | "WITH")
                    || (t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
                        && !t.ends_with('+')
                        && KNOWN_PREFIXES.iter().any(|p| t.starts_with(p)))
            });
    ok.then_some(license)
}

// A cheap plausibility filter, not a license list: tokens that start like the
// SPDX ids RPM distributions use.
const KNOWN_PREFIXES: &[&str] = &[
    "GPL-",
    "LGPL-",
    "AGPL-",
    "MIT",
    "BSD-",
    "Apache-",
    "MPL-",
    "ISC",
    "Zlib",
    "OpenSSL",
    "Python-",
    "PSF-",
    "Artistic-",
    "CC0-",
    "CC-BY",
    "Unlicense",
    "BSL-",
    "LicenseRef-",
    "GFDL-",
    "Ruby",
    "PHP-",
    "curl",
    "Unicode-",
    "X11",
    "0BSD",
    "bzip2-",
    "Sleepycat",
    "Vim",
    "OFL-",
    "ICU",
    "NTP",
    "HPND",
    "Spencer-",
    "W3C",
    "WTFPL",
    "libtiff",
    "IJG",
    "FSFAP",
    "FSFUL",
    "Beerware",
    "TCL",
    "MIT-",
    "blessing",
    "Boehm-GC",
    "LPPL-",
    "EPL-",
    "CDDL-",
    "Intel",
    "SSPL-",
    "Latex2e",
    "TTWL",
    "SGI-",
    "GPL-2.0",
    "LGPL-2.1",
];

/// SPDX 2.3 JSON for `plan` installed in `subject`.
pub fn spdx(plan: &Plan, subject: &Subject) -> Value {
    let distro = subject.distro.as_ref();
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": subject.name,
        "versionInfo": subject.manifest_digest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": subject.manifest_digest.hex() }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let pkgs: Vec<&Package> = plan.packages.iter().map(|p| &p.package).collect();
    let ids: Vec<String> = pkgs
        .iter()
        .map(|p| spdx_id("Package-rpm", &p.nevra.name, &p.nevra.arch))
        .collect();
    for (pkg, id) in pkgs.iter().zip(&ids) {
        let mut entry = json!({
            "SPDXID": id,
            "name": pkg.nevra.name,
            "versionInfo": pkg.nevra.evr.to_string(),
            "supplier": if pkg.vendor.is_empty() { "NOASSERTION".to_string() } else { format!("Organization: {}", pkg.vendor) },
            "downloadLocation": subject.baseurls.get(pkg.repo).map_or("NOASSERTION".to_string(), |b| format!("{b}{}", pkg.location)),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": spdx_license(&pkg.license).unwrap_or("NOASSERTION"),
            "copyrightText": "NOASSERTION",
            "checksums": [{ "algorithm": pkg.checksum.algo().name().to_uppercase(), "checksumValue": pkg.checksum.hex() }],
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl_in(pkg, distro, subject),
            }],
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        });
        let obj = entry.as_object_mut().expect("object");
        if !pkg.source_rpm.is_empty() {
            obj.insert(
                "sourceInfo".into(),
                json!(format!("built from source RPM {}", pkg.source_rpm)),
            );
        }
        if !pkg.packager.is_empty() {
            obj.insert(
                "originator".into(),
                json!(format!("Organization: {}", pkg.packager)),
            );
        }
        if !pkg.summary.is_empty() {
            obj.insert("summary".into(), json!(pkg.summary));
        }
        if spdx_license(&pkg.license).is_none() && !pkg.license.is_empty() {
            obj.insert(
                "licenseComments".into(),
                json!(format!("RPM License tag: {}", pkg.license)),
            );
        }
        packages.push(entry);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    for (i, deps) in dependency_graph(&pkgs).iter().enumerate() {
        for &j in deps.keys() {
            relationships.push(json!({
                "spdxElementId": ids[i],
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": ids[j],
            }));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.name,
        "documentNamespace": format!("urn:minibuild:{}:{}", subject.arch, subject.manifest_digest),
        "creationInfo": {
            "created": subject.created,
            "creators": [format!("Tool: minibuild-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// CycloneDX 1.5 JSON for `plan` installed in `subject`.
pub fn cyclonedx(plan: &Plan, subject: &Subject) -> Value {
    let distro = subject.distro.as_ref();
    let pkgs: Vec<&Package> = plan.packages.iter().map(|p| &p.package).collect();
    let purls: Vec<String> = pkgs.iter().map(|p| purl_in(p, distro, subject)).collect();
    let components: Vec<Value> = pkgs
        .iter()
        .zip(&purls)
        .map(|(pkg, purl)| {
            let mut c = json!({
                "type": "library",
                "bom-ref": purl,
                "name": pkg.nevra.name,
                "version": pkg.nevra.evr.to_string(),
                "purl": purl,
                "hashes": [{ "alg": "SHA-256", "content": pkg.checksum.hex() }],
            });
            let obj = c.as_object_mut().expect("object");
            if !pkg.license.is_empty() {
                let l = match spdx_license(&pkg.license) {
                    Some(expr) => json!({ "expression": expr }),
                    None => json!({ "license": { "name": pkg.license } }),
                };
                obj.insert("licenses".into(), json!([l]));
            }
            if !pkg.vendor.is_empty() {
                obj.insert("supplier".into(), json!({ "name": pkg.vendor }));
            }
            if !pkg.source_rpm.is_empty() {
                obj.insert(
                    "properties".into(),
                    json!([{ "name": "rpm:sourcerpm", "value": pkg.source_rpm }]),
                );
            }
            c
        })
        .collect();
    let dependencies: Vec<Value> = dependency_graph(&pkgs)
        .iter()
        .enumerate()
        .map(|(i, deps)| json!({ "ref": purls[i], "dependsOn": deps.keys().map(|&j| &purls[j]).collect::<Vec<_>>() }))
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid_from_digest(&subject.manifest_digest)),
        "version": 1,
        "metadata": {
            "timestamp": subject.created,
            "tools": { "components": [{ "type": "application", "name": "minibuild", "version": env!("CARGO_PKG_VERSION") }] },
            "component": {
                "type": "container",
                "bom-ref": subject.manifest_digest.to_string(),
                "name": subject.name,
                "version": subject.manifest_digest.to_string(),
                "hashes": [{ "alg": "SHA-256", "content": subject.manifest_digest.hex() }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A version-8-shaped UUID derived from the digest, so the SBOM stays reproducible.
fn uuid_from_digest(d: &Digest) -> String {
    let h = d.hex();
    format!(
        "{}-{}-8{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{Dep, Evr, Nevra};
    use crate::resolve::{Planned, Reason};

    fn pkg(name: &str, evr: &str, license: &str, requires: &[&str]) -> Planned {
        Planned {
            package: Package {
                download_size: 1,
                installed_size: 1,
                summary: format!("{name} summary"),
                license: license.into(),
                vendor: "Fedora Project".into(),
                source_rpm: format!("{name}-src.rpm"),
                requires: requires.iter().map(|r| Dep::any(*r)).collect(),
                ..Package::new(
                    Nevra::new(name, Evr::parse(evr), "x86_64"),
                    0,
                    format!("Packages/{name}.rpm"),
                    Digest::sha256_of(name.as_bytes()),
                )
            },
            reason: Reason::Requested {
                request: name.into(),
            },
        }
    }

    fn subject() -> Subject {
        Subject {
            name: "base:latest".into(),
            manifest_digest: Digest::sha256_of(b"manifest"),
            arch: "x86_64".into(),
            distro: Distro::from_os_release("NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=40\n"),
            created: "2024-01-01T00:00:00Z".into(),
            baseurls: vec!["https://mirror.example/40/x86_64/os/".into()],
            local_repo: None,
        }
    }

    fn plan() -> Plan {
        Plan {
            choices: Default::default(),
            left_out: Vec::new(),
            packages: vec![
                pkg("bash", "5.2.26-3.fc40", "GPL-3.0-or-later", &["glibc"]),
                pkg("glibc", "2:2.39-2.fc40", "LGPLv2+ and GPLv2+", &[]),
            ],
        }
    }

    #[test]
    fn a_local_rpm_is_named_by_its_file_and_sha256() {
        let mut p = plan();
        p.packages[0].package.repo = 1;
        p.packages[0].package.location = "dist/bash-5.2.26-3.fc40.x86_64.rpm".into();
        let subject = Subject {
            baseurls: vec!["https://m/".into(), "file:///src/app/".into()],
            local_repo: Some(1),
            ..subject()
        };
        let hex = p.packages[0].package.checksum.hex().to_string();
        let doc = spdx(&p, &subject);
        let bash = &doc["packages"][1];
        assert_eq!(
            bash["externalRefs"][0]["referenceLocator"],
            format!("pkg:rpm/local/bash@5.2.26-3.fc40?arch=x86_64&checksum=sha256:{hex}&file_name=dist%2Fbash-5.2.26-3.fc40.x86_64.rpm")
        );
        assert_eq!(
            bash["downloadLocation"],
            "file:///src/app/dist/bash-5.2.26-3.fc40.x86_64.rpm"
        );
        // Repo packages keep the distribution's purl.
        let glibc = &doc["packages"][2]["externalRefs"][0]["referenceLocator"];
        assert!(
            glibc.as_str().unwrap().starts_with("pkg:rpm/fedora/glibc@"),
            "{glibc}"
        );
        let cdx = cyclonedx(&p, &subject);
        assert!(cdx["components"][0]["purl"]
            .as_str()
            .unwrap()
            .contains(&format!("checksum=sha256:{hex}")));
    }

    #[test]
    fn purls_follow_the_rpm_type() {
        let d = Distro {
            id: "fedora".into(),
            version_id: "40".into(),
        };
        let p = plan();
        assert_eq!(
            purl(&p.packages[0].package, Some(&d)),
            "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"
        );
        assert_eq!(
            purl(&p.packages[1].package, Some(&d)),
            "pkg:rpm/fedora/glibc@2.39-2.fc40?arch=x86_64&epoch=2&distro=fedora-40"
        );
    }

    #[test]
    fn spdx_lists_every_package_with_relationships() {
        let doc = spdx(&plan(), &subject());
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let pkgs = doc["packages"].as_array().unwrap();
        assert_eq!(pkgs.len(), 3, "image + 2 rpms");
        assert_eq!(pkgs[1]["licenseDeclared"], "GPL-3.0-or-later");
        assert_eq!(
            pkgs[2]["licenseDeclared"], "NOASSERTION",
            "free-text license not passed off as SPDX"
        );
        assert_eq!(
            pkgs[2]["licenseComments"],
            "RPM License tag: LGPLv2+ and GPLv2+"
        );
        assert_eq!(
            pkgs[1]["downloadLocation"],
            "https://mirror.example/40/x86_64/os/Packages/bash.rpm"
        );
        assert_eq!(
            pkgs[1]["checksums"][0]["checksumValue"],
            Digest::sha256_of(b"bash").hex()
        );
        let rels = doc["relationships"].as_array().unwrap();
        assert!(rels.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
            && r["spdxElementId"] == "SPDXRef-Package-rpm-bash-x86-64"
            && r["relatedSpdxElement"] == "SPDXRef-Package-rpm-glibc-x86-64"));
        assert_eq!(
            rels.iter()
                .filter(|r| r["relationshipType"] == "CONTAINS")
                .count(),
            2
        );
        assert!(doc["documentNamespace"]
            .as_str()
            .unwrap()
            .contains(&subject().manifest_digest.to_string()));
    }

    #[test]
    fn cyclonedx_has_components_hashes_and_deps() {
        let doc = cyclonedx(&plan(), &subject());
        assert_eq!(doc["specVersion"], "1.5");
        assert_eq!(doc["components"].as_array().unwrap().len(), 2);
        assert_eq!(
            doc["components"][0]["licenses"][0]["expression"],
            "GPL-3.0-or-later"
        );
        assert_eq!(
            doc["components"][1]["licenses"][0]["license"]["name"],
            "LGPLv2+ and GPLv2+"
        );
        assert_eq!(
            doc["dependencies"][0]["dependsOn"][0],
            doc["components"][1]["purl"]
        );
        assert_eq!(
            doc["serialNumber"].as_str().unwrap().len(),
            "urn:uuid:".len() + 36
        );
    }

    #[test]
    fn os_release_parsing() {
        let d = Distro::from_os_release("ID=\"rhel\"\nVERSION_ID='9.4'\n").unwrap();
        assert_eq!(
            d,
            Distro {
                id: "rhel".into(),
                version_id: "9.4".into()
            }
        );
        assert!(Distro::from_os_release("NAME=x\n").is_none());
    }
}
