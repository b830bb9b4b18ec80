//! Attaching an SBOM to a pushed image as an OCI artifact (distribution
//! spec 1.1 "referrers").
//!
//! An artifact is an ordinary image manifest whose `subject` is the image
//! manifest it is about:
//!
//! ```text
//! { "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!   "artifactType": "application/spdx+json",
//!   "config": <the empty descriptor: application/vnd.oci.empty.v1+json, `{}`>,
//!   "layers": [ <the SBOM blob, titled with its file name> ],
//!   "subject": <the image manifest's descriptor>,
//!   "annotations": { "org.opencontainers.image.created": <the SBOM's own time> } }
//! ```
//!
//! It is pushed by digest, never tagged. A registry with the referrers API
//! indexes it itself and says so with an `OCI-Subject` header on the PUT.
//! Without one (distribution 2.8, many mirrors) the client keeps the list:
//! the referrers tag schema, an image index under the tag
//! `sha256-<hex of the subject>`, read, extended with the artifact's
//! descriptor unless it is already listed, and written back. That is the
//! layout oras, regclient and cosign's OCI 1.1 mode look for when a
//! registry has no referrers API.
//!
//! Everything that reaches bytes is a pure function here (canonical JSON,
//! the creation time taken from the SBOM, which the build derived from
//! SOURCE_DATE_EPOCH), so attaching the same SBOM twice gives the same
//! artifact digest and leaves one entry in the list. The HTTP side is
//! `attach`, on the push's registry `Client`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::digest::Digest;

use crate::image::json::to_canonical_vec;
use crate::image::manifest::{Descriptor, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use crate::image::BlobSource;

use super::client::Client;
use super::error::PushError;
use super::event::PushEvent;

/// The config of an artifact with no config: the two bytes `{}`.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub(crate) const EMPTY_JSON: &[u8] = b"{}";
pub const MEDIA_TYPE_SPDX: &str = "application/spdx+json";
pub const MEDIA_TYPE_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// An SBOM file, read and recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub path: PathBuf,
    /// [`MEDIA_TYPE_SPDX`] or [`MEDIA_TYPE_CYCLONEDX`]; also the artifact type.
    pub media_type: &'static str,
    /// The image manifest the SBOM says it describes, when it names one
    /// (minibuild's SBOMs always do).
    pub describes: Option<Digest>,
    /// The SBOM's creation time (SPDX `creationInfo.created`, CycloneDX
    /// `metadata.timestamp`), reused for the artifact so it is reproducible.
    pub created: Option<String>,
    bytes: Vec<u8>,
}

impl Sbom {
    pub fn read(path: &Path) -> Result<Sbom, PushError> {
        let bytes = std::fs::read(path).map_err(|e| sbom_err(path, e.to_string()))?;
        Sbom::parse(path, bytes).map_err(|reason| sbom_err(path, reason))
    }

    /// Recognise SPDX (`spdxVersion`) or CycloneDX (`bomFormat`) JSON.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Sbom, String> {
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON ({e})"))?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let digest = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| s.parse().ok());
        let (media_type, describes, created) = if json.get("spdxVersion").is_some() {
            // The image is the package of purpose CONTAINER; its version is
            // the manifest digest (as minibuild and syft write it).
            let image = json
                .get("packages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| {
                    p.get("primaryPackagePurpose").and_then(Value::as_str) == Some("CONTAINER")
                });
            (
                MEDIA_TYPE_SPDX,
                digest(image.and_then(|p| p.get("versionInfo"))),
                text(json.pointer("/creationInfo/created")),
            )
        } else if json.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
            (
                MEDIA_TYPE_CYCLONEDX,
                digest(json.pointer("/metadata/component/version")),
                text(json.pointer("/metadata/timestamp")),
            )
        } else {
            return Err(
                "neither SPDX (no `spdxVersion`) nor CycloneDX (no `bomFormat`) JSON".into(),
            );
        };
        Ok(Sbom {
            path: path.to_path_buf(),
            media_type,
            describes,
            created,
            bytes,
        })
    }

    /// The file name, for the layer's title annotation.
    fn title(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sbom.json".into())
    }

    fn layer(&self) -> Descriptor {
        let mut d = Descriptor::new(
            self.media_type,
            Digest::sha256_of(&self.bytes),
            self.bytes.len() as u64,
        );
        d.annotations.insert(ANNOTATION_TITLE.into(), self.title());
        d
    }

    fn annotations(&self) -> BTreeMap<String, String> {
        self.created
            .iter()
            .map(|c| (ANNOTATION_CREATED.to_string(), c.clone()))
            .collect()
    }
}

/// Which of `subjects` (the image's manifests, descriptor per platform, and
/// the top index if any) each SBOM is attached to, by index into `subjects`.
///
/// An SBOM that names a digest goes to that manifest and nowhere else (a
/// stale SBOM from another build is refused, not attached to the wrong
/// image). One that names none goes to the only platform manifest, and is
/// refused for a multi-arch image, where its platform cannot be told.
pub fn match_subjects(
    subjects: &[Descriptor],
    platforms: usize,
    sboms: &[Sbom],
) -> Result<Vec<usize>, PushError> {
    sboms
        .iter()
        .map(|sbom| match &sbom.describes {
            Some(d) => subjects.iter().position(|s| s.digest == *d).ok_or_else(|| {
                let known: Vec<String> = subjects.iter().map(|s| s.digest.to_string()).collect();
                sbom_err(
                    &sbom.path,
                    format!(
                        "it describes {d}, which is not in this image ({}); was it written by another build?",
                        known.join(", ")
                    ),
                )
            }),
            None if platforms == 1 => Ok(0),
            None => Err(sbom_err(
                &sbom.path,
                format!(
                    "it names no image digest, and the image has {platforms} platforms; \
                     attach it with `minibuild push` to a one-platform image, or give an SBOM written by minibuild"
                ),
            )),
        })
        .collect()
}

/// The artifact manifest attaching `sbom` to `subject`, canonical JSON.
pub fn artifact_manifest(subject: &Descriptor, sbom: &Sbom) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": sbom.media_type,
        "config": empty_descriptor().to_json(),
        "layers": [sbom.layer().to_json()],
        "subject": plain(subject).to_json(),
    });
    let annotations = sbom.annotations();
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    to_canonical_vec(&m)
}

/// The entry for an artifact in a referrers list: its descriptor plus its
/// `artifactType` and annotations, as the spec asks.
pub fn referrer_entry(manifest: &[u8], sbom: &Sbom) -> Value {
    let mut d = Descriptor::new(
        MEDIA_TYPE_MANIFEST,
        Digest::sha256_of(manifest),
        manifest.len() as u64,
    );
    d.annotations = sbom.annotations();
    let mut v = d.to_json();
    v["artifactType"] = json!(sbom.media_type);
    v
}

/// The referrers tag schema's tag for `subject`: `<alg>-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algo().name(), subject.hex())
}

/// The referrers list with `entry` added: None when it is already listed
/// (nothing to write), else the new index. A missing list (`existing` None)
/// starts empty. Entries already there (maybe written by another tool) keep
/// their order and fields, and the new one goes last, so the same pushes in
/// the same order give the same bytes.
pub fn merge_referrers(existing: Option<&[u8]>, entry: &Value) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        None => json!({ "schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [] }),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?,
    };
    match index.get("mediaType").and_then(Value::as_str) {
        None | Some(MEDIA_TYPE_INDEX) => {}
        Some(other) => return Err(format!("it is a {other}, not an image index")),
    }
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or("it is not an image index (no `manifests` list)")?;
    if manifests
        .iter()
        .any(|m| m.get("digest") == entry.get("digest"))
    {
        return Ok(None);
    }
    manifests.push(entry.clone());
    Ok(Some(to_canonical_vec(&index)))
}

/// How the registry learns about an attached artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// It answered with `OCI-Subject`: it has the referrers API.
    ReferrersApi,
    /// The referrers tag schema; `added` is false when the tag's index
    /// already listed the artifact.
    Tag { tag: String, added: bool },
}

/// One SBOM attached to one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub sbom: PathBuf,
    /// The image manifest (or index) it is attached to.
    pub subject: Digest,
    /// The artifact manifest's digest.
    pub digest: Digest,
    pub listing: Listing,
}

/// `attached app.spdx.json to sha256:… as sha256:… (…)`, a log line.
impl std::fmt::Display for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attached {} to {} as {}",
            self.sbom.display(),
            self.subject,
            self.digest
        )?;
        match &self.listing {
            Listing::ReferrersApi => write!(f, " (the registry lists referrers itself)"),
            Listing::Tag { tag, added: true } => write!(f, " (listed under tag `{tag}`)"),
            Listing::Tag { tag, added: false } => {
                write!(f, " (already listed under tag `{tag}`)")
            }
        }
    }
}

/// Push the artifact for `sbom` about `subject`, then list it.
pub(super) fn attach(
    client: &mut Client,
    subject: &Descriptor,
    sbom: &Sbom,
    progress: &dyn Fn(PushEvent),
) -> Result<Attached, PushError> {
    upload_bytes(client, EMPTY_JSON, progress)?;
    upload_bytes(client, &sbom.bytes, progress)?;
    let manifest = artifact_manifest(subject, sbom);
    let digest = Digest::sha256_of(&manifest);
    let stored = client.put_manifest(&digest.to_string(), MEDIA_TYPE_MANIFEST, &manifest)?;
    progress(PushEvent::ManifestPushed {
        digest: digest.clone(),
        reference: digest.to_string(),
    });
    let listing = if stored.subject.is_some() {
        Listing::ReferrersApi
    } else {
        let tag = referrers_tag(&subject.digest);
        let existing = client.get_manifest(&tag, MEDIA_TYPE_INDEX)?;
        let merged = merge_referrers(existing.as_deref(), &referrer_entry(&manifest, sbom))
            .map_err(|reason| PushError::Registry {
                registry: client.registry().to_string(),
                what: format!(
                    "the referrers tag `{tag}` holds something minibuild cannot extend: {reason}; \
                     delete that tag or push to another repository"
                ),
            })?;
        let added = merged.is_some();
        if let Some(index) = merged {
            client.put_manifest(&tag, MEDIA_TYPE_INDEX, &index)?;
            progress(PushEvent::ManifestPushed {
                digest: Digest::sha256_of(&index),
                reference: tag.clone(),
            });
        }
        Listing::Tag { tag, added }
    };
    Ok(Attached {
        sbom: sbom.path.clone(),
        subject: subject.digest.clone(),
        digest,
        listing,
    })
}

/// Upload a small in-memory blob unless the registry has it. The client
/// streams blobs from files, so the bytes go through a temporary file.
pub(crate) fn upload_bytes(
    client: &mut Client,
    bytes: &[u8],
    progress: &dyn Fn(PushEvent),
) -> Result<(), PushError> {
    let digest = Digest::sha256_of(bytes);
    let size = bytes.len() as u64;
    if client.blob_exists(&digest)? {
        progress(PushEvent::BlobSkipped { digest, size });
        return Ok(());
    }
    let spool = |e: std::io::Error| PushError::ReadBlob {
        path: std::env::temp_dir(),
        digest: digest.clone(),
        source: e,
    };
    let mut tmp = tempfile::NamedTempFile::new().map_err(spool)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(spool)?;
    let source = BlobSource {
        path: tmp.path().to_path_buf(),
        offset: 0,
        size,
    };
    progress(PushEvent::BlobUploading {
        digest: digest.clone(),
        size,
    });
    client.upload_blob(&digest, &source)?;
    progress(PushEvent::BlobUploaded { digest, size });
    Ok(())
}

pub(crate) fn empty_descriptor() -> Descriptor {
    Descriptor::new(MEDIA_TYPE_EMPTY, Digest::sha256_of(EMPTY_JSON), 2)
}

/// A subject is named by media type, digest and size only.
fn plain(d: &Descriptor) -> Descriptor {
    Descriptor::new(&d.media_type, d.digest.clone(), d.size)
}

fn sbom_err(path: &Path, reason: String) -> PushError {
    PushError::Sbom {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn spdx(describes: &str) -> Vec<u8> {
        format!(
            r#"{{"spdxVersion":"SPDX-2.3","creationInfo":{{"created":"2023-11-14T22:13:20Z"}},
               "packages":[{{"SPDXID":"SPDXRef-Image","versionInfo":"{describes}","primaryPackagePurpose":"CONTAINER"}},
                           {{"SPDXID":"SPDXRef-Package-rpm-a","versionInfo":"1-1","primaryPackagePurpose":"OPERATING-SYSTEM"}}]}}"#
        )
        .into_bytes()
    }

    fn manifest(c: char) -> Descriptor {
        Descriptor::new(MEDIA_TYPE_MANIFEST, digest(c), 500)
    }

    #[test]
    fn recognises_spdx_and_cyclonedx() {
        let s = Sbom::parse(
            Path::new("/o/app.spdx.json"),
            spdx(&digest('a').to_string()),
        )
        .unwrap();
        assert_eq!(s.media_type, MEDIA_TYPE_SPDX);
        assert_eq!(s.describes, Some(digest('a')));
        assert_eq!(s.created.as_deref(), Some("2023-11-14T22:13:20Z"));

        let cdx = format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{{"timestamp":"2024-01-01T00:00:00Z","component":{{"type":"container","version":"{}"}}}}}}"#,
            digest('b')
        );
        let c = Sbom::parse(Path::new("x.cdx.json"), cdx.into_bytes()).unwrap();
        assert_eq!(c.media_type, MEDIA_TYPE_CYCLONEDX);
        assert_eq!(c.describes, Some(digest('b')));
        assert_eq!(c.created.as_deref(), Some("2024-01-01T00:00:00Z"));

        // A third-party SBOM whose image version is no digest: attachable, names nothing.
        let other = Sbom::parse(Path::new("s.json"), spdx("1.0")).unwrap();
        assert_eq!(other.describes, None);

        let e = Sbom::parse(Path::new("p.json"), br#"{"predicateType":"x"}"#.to_vec()).unwrap_err();
        assert!(e.contains("neither SPDX"), "{e}");
        assert!(Sbom::parse(Path::new("p.json"), b"<xml/>".to_vec())
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn artifact_manifest_bytes() {
        let sbom = Sbom::parse(
            Path::new("/o/app.spdx.json"),
            spdx(&digest('a').to_string()),
        )
        .unwrap();
        let layer = Digest::sha256_of(&sbom.bytes);
        let size = sbom.bytes.len();
        let bytes = artifact_manifest(&manifest('a'), &sbom);
        let expected = format!(
            concat!(
                r#"{{"annotations":{{"org.opencontainers.image.created":"2023-11-14T22:13:20Z"}},"#,
                r#""artifactType":"application/spdx+json","#,
                r#""config":{{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","mediaType":"application/vnd.oci.empty.v1+json","size":2}},"#,
                r#""layers":[{{"annotations":{{"org.opencontainers.image.title":"app.spdx.json"}},"digest":"{layer}","mediaType":"application/spdx+json","size":{size}}}],"#,
                r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"#,
                r#""subject":{{"digest":"{subject}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":500}}}}"#
            ),
            layer = layer,
            size = size,
            subject = digest('a'),
        );
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        // The empty config's digest is the spec's, from the two bytes `{}`.
        assert_eq!(
            empty_descriptor().digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        // Same SBOM, same artifact: pushing again changes nothing.
        assert_eq!(artifact_manifest(&manifest('a'), &sbom), bytes);

        // The referrers entry carries the artifact type and annotations.
        let entry = referrer_entry(&bytes, &sbom);
        assert_eq!(entry["digest"], Digest::sha256_of(&bytes).to_string());
        assert_eq!(entry["size"], bytes.len());
        assert_eq!(entry["artifactType"], MEDIA_TYPE_SPDX);
        assert_eq!(entry["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(
            entry["annotations"][ANNOTATION_CREATED],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn no_creation_time_no_annotation() {
        let sbom = Sbom::parse(
            Path::new("b.cdx.json"),
            br#"{"bomFormat":"CycloneDX","metadata":{}}"#.to_vec(),
        )
        .unwrap();
        let m: Value = serde_json::from_slice(&artifact_manifest(&manifest('a'), &sbom)).unwrap();
        assert!(m.get("annotations").is_none(), "{m}");
        assert_eq!(m["artifactType"], MEDIA_TYPE_CYCLONEDX);
        assert_eq!(m["layers"][0]["mediaType"], MEDIA_TYPE_CYCLONEDX);
    }

    fn entry(c: char) -> Value {
        json!({ "mediaType": MEDIA_TYPE_MANIFEST, "digest": digest(c).to_string(), "size": 9, "artifactType": MEDIA_TYPE_SPDX })
    }

    #[test]
    fn referrers_list_starts_empty_appends_once() {
        let first = merge_referrers(None, &entry('a')).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(first.clone()).unwrap(),
            format!(
                r#"{{"manifests":[{{"artifactType":"application/spdx+json","digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":9}}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#,
                digest('a')
            )
        );
        // Already listed: nothing to write.
        assert_eq!(merge_referrers(Some(&first), &entry('a')).unwrap(), None);
        // Another artifact goes last; the first (and unknown fields) stay.
        let mut theirs: Value = serde_json::from_slice(&first).unwrap();
        theirs["annotations"] = json!({"written.by": "oras"});
        let second = merge_referrers(Some(&to_canonical_vec(&theirs)), &entry('b'))
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&second).unwrap();
        let digests: Vec<&str> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, [digest('a').to_string(), digest('b').to_string()]);
        assert_eq!(v["annotations"]["written.by"], "oras");
        assert_eq!(merge_referrers(Some(&second), &entry('b')).unwrap(), None);
    }

    #[test]
    fn referrers_tag_holding_something_else_is_refused() {
        let image = json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST, "layers": []});
        let e = merge_referrers(Some(&to_canonical_vec(&image)), &entry('a')).unwrap_err();
        assert!(e.contains("not an image index"), "{e}");
        let e = merge_referrers(Some(br#"{"schemaVersion":2}"#), &entry('a')).unwrap_err();
        assert!(e.contains("no `manifests`"), "{e}");
        assert!(merge_referrers(Some(b"garbage"), &entry('a')).is_err());
    }

    #[test]
    fn tag_of_a_digest() {
        assert_eq!(
            referrers_tag(&digest('c')),
            format!("sha256-{}", "c".repeat(64))
        );
    }

    fn sbom_describing(name: &str, d: Option<Digest>) -> Sbom {
        let version = d.map_or("1.0".to_string(), |d| d.to_string());
        Sbom::parse(Path::new(name), spdx(&version)).unwrap()
    }

    #[test]
    fn sboms_go_to_the_manifest_they_describe() {
        // Two platforms and their index, as `LocalImage::subjects` lists them.
        let subjects = [
            manifest('a'),
            manifest('b'),
            Descriptor::new(MEDIA_TYPE_INDEX, digest('e'), 300),
        ];
        let sboms = [
            sbom_describing("b.json", Some(digest('b'))),
            sbom_describing("a.json", Some(digest('a'))),
        ];
        assert_eq!(match_subjects(&subjects, 2, &sboms).unwrap(), [1, 0]);

        let stale = [sbom_describing("old.json", Some(digest('f')))];
        let e = match_subjects(&subjects, 2, &stale)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.json")
                && e.contains(&digest('f').to_string())
                && e.contains("another build"),
            "{e}"
        );

        let anonymous = [sbom_describing("x.json", None)];
        let e = match_subjects(&subjects, 2, &anonymous)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json") && e.contains("2 platforms"), "{e}");
        // One platform: an SBOM naming no digest can only be about it.
        assert_eq!(
            match_subjects(&[manifest('a')], 1, &anonymous).unwrap(),
            [0]
        );
    }

    #[test]
    fn attached_reads_as_a_log_line() {
        let a = Attached {
            sbom: "app.spdx.json".into(),
            subject: digest('a'),
            digest: digest('d'),
            listing: Listing::Tag {
                tag: referrers_tag(&digest('a')),
                added: false,
            },
        };
        assert_eq!(
            a.to_string(),
            format!(
                "attached app.spdx.json to {} as {} (already listed under tag `sha256-{}`)",
                digest('a'),
                digest('d'),
                "a".repeat(64)
            )
        );
    }

    /// A loopback registry with the referrers API, as far as a push sees
    /// it: blobs exist, a manifest PUT is answered with `OCI-Subject`, any
    /// other request is a 400. Records `METHOD PATH sha256(body)`.
    fn referrers_api_registry(subject: Digest) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream);
                let mut first = [0u8; 1];
                // The HTTPS probe's ClientHello: hang up, as a plain server does.
                if reader.read_exact(&mut first).is_err() || first[0] == 0x16 {
                    continue;
                }
                let mut head = String::from(first[0] as char);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let status = match method {
                    "GET" if path == "/v2/" => "200 OK\r\n".to_string(),
                    "HEAD" if path.contains("/blobs/") => "200 OK\r\n".to_string(),
                    "PUT" if path.contains("/manifests/sha256:") => {
                        format!("201 Created\r\nOCI-Subject: {subject}\r\n")
                    }
                    _ => "400 Bad Request\r\n".to_string(),
                };
                let _ = tx.send(format!("{method} {path} {}", Digest::sha256_of(&body)));
                let resp =
                    format!("HTTP/1.1 {status}Content-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = reader.get_mut().write_all(resp.as_bytes());
            }
        });
        (addr, rx)
    }

    #[test]
    fn a_registry_with_the_referrers_api_gets_no_tag() {
        let subject = manifest('a');
        let (addr, log) = referrers_api_registry(subject.digest.clone());
        let reference: crate::registry::reference::Reference =
            format!("{addr}/app:v1").parse().unwrap();
        let opts = crate::registry::options::PushOptions {
            auth_env: Default::default(),
            retries: 0,
            ..Default::default()
        };
        let mut client = Client::connect(&reference, &opts, Default::default(), &|_| {}).unwrap();
        let sbom = Sbom::parse(
            Path::new("app.spdx.json"),
            spdx(&subject.digest.to_string()),
        )
        .unwrap();
        let attached = attach(&mut client, &subject, &sbom, &|_| {}).unwrap();
        let manifest = artifact_manifest(&subject, &sbom);
        assert_eq!(attached.digest, Digest::sha256_of(&manifest));
        assert_eq!(attached.listing, Listing::ReferrersApi);
        let empty = Digest::sha256_of(b"");
        let requests: Vec<String> = log
            .try_iter()
            .filter(|r| !r.starts_with("GET /v2/ "))
            .collect();
        assert_eq!(
            requests,
            [
                format!(
                    "HEAD /v2/app/blobs/{} {empty}",
                    Digest::sha256_of(EMPTY_JSON)
                ),
                format!(
                    "HEAD /v2/app/blobs/{} {empty}",
                    Digest::sha256_of(&sbom.bytes)
                ),
                format!(
                    "PUT /v2/app/manifests/{} {}",
                    attached.digest, attached.digest
                ),
            ]
        );
    }
}
