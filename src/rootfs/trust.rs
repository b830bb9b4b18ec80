//! The CA trust store, rebuilt natively: what `update-ca-trust` (p11-kit's
//! `trust extract`) does in `ca-certificates`' `%post`. Fedora and RHEL ship
//! the extracted bundles as `%ghost` files, so an image unpacked without
//! scriptlets has no TLS trust until this runs.
//!
//! Sources, in priority order (the first label seen for a certificate wins):
//! `/etc/pki/ca-trust/source/**`, then `/usr/share/pki/ca-trust-source/**`.
//! Under each:
//! - `anchors/`: PEM or DER certificates, trusted for every purpose;
//! - `blocklist/` (or the older `blacklist/`): certificates to distrust;
//! - `*.p11-kit` files anywhere: `[p11-kit-object-v1]` sections whose
//!   `trusted: true` / `x-distrusted: true` and PEM block say what is
//!   trusted, and `class: x-certificate-extension` sections whose
//!   extended-key-usage extension (OID 2.5.29.37) limits the purposes of the
//!   certificate with the same public key;
//! - elsewhere, OpenSSL `TRUSTED CERTIFICATE` blocks carry their own
//!   trust/reject lists; a plain certificate outside `anchors/` has no trust
//!   (as in p11-kit) and is ignored.
//!
//! Distrust always wins. Written (sorted by label, then DER bytes, so the
//! same sources give the same bytes):
//! - `extracted/pem/tls-ca-bundle.pem`, `email-ca-bundle.pem`,
//!   `objsign-ca-bundle.pem`: trusted anchors for server-auth, email and
//!   code-signing, each `# LABEL` + PEM, as `trust extract --comment`;
//! - `extracted/openssl/ca-bundle.trust.crt`: every trusted or distrusted
//!   certificate as an OpenSSL `TRUSTED CERTIFICATE` (trust = the allowed
//!   purposes, reject = anyExtendedKeyUsage for distrusted ones, alias =
//!   label).
//!
//! Not written: the Java keystore, the EDK2 list and the OpenSSL
//! `directory-hash/` links; the package's symlinks to them stay dangling.

use std::collections::BTreeMap;

use super::der::{self, PemBlock};
use super::staging::Staging;
use super::{generated, Kind, Tree};

/// Trust sources, highest priority first.
pub const SOURCE_DIRS: [&str; 2] = ["etc/pki/ca-trust/source", "usr/share/pki/ca-trust-source"];
/// Where recipe-supplied CAs are placed, as an administrator would.
pub const ANCHORS_DIR: &str = "etc/pki/ca-trust/source/anchors";
pub const TLS_BUNDLE: &str = "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem";
pub const EMAIL_BUNDLE: &str = "etc/pki/ca-trust/extracted/pem/email-ca-bundle.pem";
pub const OBJSIGN_BUNDLE: &str = "etc/pki/ca-trust/extracted/pem/objsign-ca-bundle.pem";
pub const OPENSSL_BUNDLE: &str = "etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt";

/// Extended key usage OIDs (DER content bytes).
const OID_SERVER_AUTH: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 1];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 2];
const OID_CODE_SIGNING: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 3];
const OID_EMAIL: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 4];
const OID_IPSEC_END_SYSTEM: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 5];
const OID_IPSEC_TUNNEL: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 6];
const OID_IPSEC_USER: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 7];
const OID_TIME_STAMPING: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 8];
const OID_ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
/// The extended-key-usage extension, 2.5.29.37.
const OID_EKU_EXTENSION: &str = "2.5.29.37";
/// The purposes p11-kit writes for an anchor without EKU limits.
const KNOWN_USAGES: [&[u8]; 8] = [
    OID_SERVER_AUTH,
    OID_CLIENT_AUTH,
    OID_CODE_SIGNING,
    OID_EMAIL,
    OID_IPSEC_END_SYSTEM,
    OID_IPSEC_TUNNEL,
    OID_IPSEC_USER,
    OID_TIME_STAMPING,
];

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read /{path} (staging blob {blob}) while building the CA trust store")]
    Read {
        path: String,
        blob: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{name}: no certificate found (expected PEM `BEGIN CERTIFICATE` blocks or one DER certificate)\n  hint: check [certificates] additional in the recipe"
    )]
    NoCertificate { name: String },
    #[error(transparent)]
    Place(#[from] generated::GeneratedError),
}

/// What [`extract`] found and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustReport {
    /// Certificates trusted (and not distrusted).
    pub anchors: usize,
    pub distrusted: usize,
    /// Anchors in the TLS bundle.
    pub tls: usize,
    /// Image paths written.
    pub written: Vec<String>,
    /// Source files that held nothing usable, with the reason.
    pub ignored: Vec<(String, String)>,
}

/// How a certificate's source placed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Anchor,
    Blocklist,
    Plain,
}

#[derive(Debug, Clone, Default)]
struct CertState {
    label: String,
    trusted: bool,
    distrusted: bool,
    /// Purposes from an OpenSSL trusted certificate's own trust list.
    purposes: Option<Vec<Vec<u8>>>,
}

/// Everything read from the sources.
#[derive(Debug, Default)]
struct Store {
    /// DER certificate → state.
    certs: BTreeMap<Vec<u8>, CertState>,
    /// SubjectPublicKeyInfo DER → allowed purposes (EKU OIDs).
    eku: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
}

impl Store {
    fn add(&mut self, der: Vec<u8>, label: String, trusted: bool, distrusted: bool) {
        let s = self.certs.entry(der).or_insert_with(|| CertState {
            label,
            ..CertState::default()
        });
        s.trusted |= trusted;
        s.distrusted |= distrusted;
    }

    /// The allowed purposes of a certificate: an attached EKU extension,
    /// then the certificate's OpenSSL trust list, else every known usage.
    fn purposes(&self, der: &[u8], state: &CertState) -> Vec<Vec<u8>> {
        if let Some(eku) = der::cert_info(der).and_then(|i| self.eku.get(&i.spki)) {
            return eku.clone();
        }
        if let Some(p) = &state.purposes {
            return p.clone();
        }
        KNOWN_USAGES.iter().map(|o| o.to_vec()).collect()
    }
}

/// Place recipe-supplied CA files (name, bytes) in `/etc/pki/ca-trust/
/// source/anchors/`, where [`extract`] (and a later `update-ca-trust`)
/// finds them. Each must hold at least one certificate.
pub fn add_anchors(
    tree: &mut Tree,
    staging: &mut Staging,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<String>, TrustError> {
    let mtime = generated::newest_mtime(tree);
    let mut written = Vec::new();
    for (name, bytes) in files {
        if certificates_in(bytes).is_empty() {
            return Err(TrustError::NoCertificate { name: name.clone() });
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        let path = format!("{ANCHORS_DIR}/{base}");
        written.push(generated::put_file(
            tree, staging, &path, bytes, 0o644, mtime,
        )?);
    }
    Ok(written)
}

/// Plain certificates in a PEM or DER file (no trust attached).
fn certificates_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let blocks = der::pem_blocks(&text);
    if blocks.is_empty() {
        return der::cert_info(bytes)
            .map(|_| vec![bytes.to_vec()])
            .unwrap_or_default();
    }
    blocks
        .into_iter()
        .filter_map(|b| match b.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => Some(b.der),
            "TRUSTED CERTIFICATE" => split_trusted(&b.der).map(|(c, _)| c.to_vec()),
            _ => None,
        })
        .collect()
}

/// An OpenSSL trusted certificate: the certificate, then X509_CERT_AUX.
fn split_trusted(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let cert = der::tlv(der)?;
    Some((cert.raw, &der[cert.raw.len()..]))
}

/// X509_CERT_AUX: (trust OIDs, reject OIDs, alias).
fn parse_aux(aux: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Option<String>) {
    let mut trust = Vec::new();
    let mut reject = Vec::new();
    let mut alias = None;
    let Some(seq) = der::tlv(aux).filter(|t| t.tag == 0x30) else {
        return (trust, reject, alias);
    };
    for f in der::children(seq.content).unwrap_or_default() {
        let oids = || {
            der::children(f.content)
                .unwrap_or_default()
                .into_iter()
                .filter(|o| o.tag == 0x06)
                .map(|o| o.content.to_vec())
                .collect::<Vec<_>>()
        };
        match f.tag {
            0x30 => trust = oids(),
            0xa0 => reject = oids(),
            0x0c => alias = Some(String::from_utf8_lossy(f.content).into_owned()),
            _ => {}
        }
    }
    (trust, reject, alias)
}

fn label_of(der: &[u8], fallback: &str) -> String {
    der::cert_info(der)
        .and_then(|i| i.subject_name)
        .unwrap_or_else(|| fallback.to_string())
}

/// Read one source file into the store; `Err(reason)` when it held nothing.
fn read_source(
    store: &mut Store,
    name: &str,
    bytes: &[u8],
    category: Category,
) -> Result<(), String> {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    if name.ends_with(".p11-kit") {
        return read_p11kit(store, &String::from_utf8_lossy(bytes), category);
    }
    let text = String::from_utf8_lossy(bytes);
    let blocks = der::pem_blocks(&text);
    let blocks = if blocks.is_empty() && der::cert_info(bytes).is_some() {
        vec![PemBlock {
            label: "CERTIFICATE".into(),
            der: bytes.to_vec(),
        }]
    } else {
        blocks
    };
    let mut used = 0;
    for b in blocks {
        match b.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                if category == Category::Plain {
                    continue;
                }
                let label = label_of(&b.der, stem);
                store.add(
                    b.der,
                    label,
                    category == Category::Anchor,
                    category == Category::Blocklist,
                );
                used += 1;
            }
            "TRUSTED CERTIFICATE" => {
                let Some((cert, aux)) = split_trusted(&b.der) else {
                    continue;
                };
                let (trust, reject, alias) = parse_aux(aux);
                let distrusted = category == Category::Blocklist
                    || reject.iter().any(|r| r == OID_ANY_EKU)
                    || (!reject.is_empty() && trust.is_empty());
                let label = alias.unwrap_or_else(|| label_of(cert, stem));
                store.add(cert.to_vec(), label, !distrusted, distrusted);
                if !trust.is_empty() {
                    if let Some(s) = store.certs.get_mut(cert) {
                        s.purposes.get_or_insert(trust);
                    }
                }
                used += 1;
            }
            _ => {}
        }
    }
    if used == 0 {
        return Err(if category == Category::Plain {
            "no trust information (plain certificates belong in anchors/)".to_string()
        } else {
            "no certificate".to_string()
        });
    }
    Ok(())
}

/// `%xx` escapes and surrounding quotes of a p11-kit attribute value.
fn p11_value(raw: &str) -> Vec<u8> {
    let raw = raw.trim();
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The OIDs of an EKU extension: Extension ::= SEQ { extnID, critical?,
/// extnValue OCTET STRING { SEQ OF OID } }.
fn eku_oids(extension: &[u8]) -> Option<Vec<Vec<u8>>> {
    let ext = der::tlv(extension).filter(|t| t.tag == 0x30)?;
    let value = der::children(ext.content)?
        .into_iter()
        .find(|t| t.tag == 0x04)?;
    let seq = der::tlv(value.content).filter(|t| t.tag == 0x30)?;
    Some(
        der::children(seq.content)?
            .into_iter()
            .filter(|o| o.tag == 0x06)
            .map(|o| o.content.to_vec())
            .collect(),
    )
}

/// p11-kit's persist format: `[p11-kit-object-v1]` sections of
/// `key: value` lines and PEM blocks.
fn read_p11kit(store: &mut Store, text: &str, category: Category) -> Result<(), String> {
    let mut sections: Vec<(BTreeMap<String, String>, String)> = Vec::new();
    let mut in_section = false;
    let mut in_pem = false;
    for line in text.lines() {
        let t = line.trim();
        if !in_pem && t.starts_with('[') && t.ends_with(']') {
            in_section = t == "[p11-kit-object-v1]";
            if in_section {
                sections.push(Default::default());
            }
            continue;
        }
        let Some((attrs, pem)) = sections.last_mut().filter(|_| in_section) else {
            continue;
        };
        if t.starts_with("-----BEGIN ") {
            in_pem = true;
        }
        if in_pem {
            pem.push_str(t);
            pem.push('\n');
            if t.starts_with("-----END ") {
                in_pem = false;
            }
        } else if let Some((k, v)) = t.split_once(':') {
            if !t.starts_with('#') {
                attrs.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    let mut used = 0;
    for (attrs, pem) in sections {
        let blocks = der::pem_blocks(&pem);
        let is_true = |k: &str| attrs.get(k).is_some_and(|v| v == "true");
        let class = attrs.get("class").map(String::as_str);
        if class == Some("x-certificate-extension") {
            let is_eku = attrs
                .get("object-id")
                .is_some_and(|o| o == OID_EKU_EXTENSION);
            let key = blocks.iter().find(|b| b.label == "PUBLIC KEY");
            if let (true, Some(key), Some(value)) = (is_eku, key, attrs.get("value")) {
                if let Some(oids) = eku_oids(&p11_value(value)) {
                    store.eku.insert(key.der.clone(), oids);
                    used += 1;
                }
            }
            continue;
        }
        if class.is_some_and(|c| c != "certificate") {
            continue;
        }
        let Some(cert) = blocks.iter().find(|b| b.label == "CERTIFICATE") else {
            continue;
        };
        let distrusted = is_true("x-distrusted") || category == Category::Blocklist;
        let trusted =
            is_true("trusted") || (category == Category::Anchor && !attrs.contains_key("trusted"));
        let label = attrs
            .get("label")
            .map(|l| String::from_utf8_lossy(&p11_value(l)).into_owned())
            .unwrap_or_else(|| label_of(&cert.der, "certificate"));
        store.add(cert.der.clone(), label, trusted, distrusted);
        used += 1;
    }
    if used == 0 {
        return Err("no [p11-kit-object-v1] certificate or extension".to_string());
    }
    Ok(())
}

/// Every source file under the trust source directories, in priority order.
fn sources(tree: &Tree) -> Vec<(String, String, Category)> {
    let mut out = Vec::new();
    for root in SOURCE_DIRS {
        let Some((resolved, entry)) = tree.follow(root) else {
            continue;
        };
        if entry.kind != Kind::Dir {
            continue;
        }
        let prefix = format!("{resolved}/");
        for (path, _) in tree.entries.range(prefix.clone()..) {
            let Some(rel) = path.strip_prefix(&prefix) else {
                break;
            };
            let category = match rel.split('/').next() {
                Some("anchors") if rel.contains('/') => Category::Anchor,
                Some("blocklist" | "blacklist") if rel.contains('/') => Category::Blocklist,
                _ => Category::Plain,
            };
            out.push((path.clone(), rel.to_string(), category));
        }
    }
    out
}

/// Build the bundles from the image's trust sources and write them.
/// `Ok(None)` when the image has no trust source at all.
pub fn extract(tree: &mut Tree, staging: &mut Staging) -> Result<Option<TrustReport>, TrustError> {
    let files = sources(tree);
    let mut store = Store::default();
    let mut report = TrustReport::default();
    let mut any = false;
    for (path, rel, category) in files {
        let Some((target, entry)) = tree.follow(&path) else {
            continue;
        };
        let Kind::File { blob, .. } = &entry.kind else {
            continue;
        };
        any = true;
        let bytes = blob.read_to_vec().map_err(|source| TrustError::Read {
            path: target.clone(),
            blob: blob.to_string(),
            source,
        })?;
        if let Err(why) = read_source(&mut store, &rel, &bytes, category) {
            report.ignored.push((path, why));
        }
    }
    if !any {
        return Ok(None);
    }
    // Sorted by label, then DER: deterministic whatever the source order.
    let mut certs: Vec<(&Vec<u8>, &CertState)> = store.certs.iter().collect();
    certs.sort_by(|a, b| (&a.1.label, a.0).cmp(&(&b.1.label, b.0)));
    let bundle = |purpose: &[u8]| -> (String, usize) {
        let mut text = String::new();
        let mut n = 0;
        for (der, s) in &certs {
            if s.trusted && !s.distrusted && store.purposes(der, s).iter().any(|p| p == purpose) {
                text.push_str(&format!("# {}\n", s.label));
                text.push_str(&der::pem("CERTIFICATE", der));
                n += 1;
            }
        }
        (text, n)
    };
    let (tls, tls_count) = bundle(OID_SERVER_AUTH);
    let (email, _) = bundle(OID_EMAIL);
    let (objsign, _) = bundle(OID_CODE_SIGNING);
    let mut openssl = String::new();
    for (der, s) in &certs {
        if !s.trusted && !s.distrusted {
            continue;
        }
        let mut aux = Vec::new();
        if s.distrusted {
            let reject = der::encode(0x06, OID_ANY_EKU);
            aux.extend(der::encode(0xa0, &reject));
        } else {
            let oids: Vec<u8> = store
                .purposes(der, s)
                .iter()
                .flat_map(|o| der::encode(0x06, o))
                .collect();
            aux.extend(der::encode(0x30, &oids));
        }
        aux.extend(der::encode(0x0c, s.label.as_bytes()));
        let mut body = der.to_vec();
        body.extend(der::encode(0x30, &aux));
        openssl.push_str(&format!("# {}\n", s.label));
        openssl.push_str(&der::pem("TRUSTED CERTIFICATE", &body));
    }
    report.anchors = certs
        .iter()
        .filter(|(_, s)| s.trusted && !s.distrusted)
        .count();
    report.distrusted = certs.iter().filter(|(_, s)| s.distrusted).count();
    report.tls = tls_count;
    let mtime = generated::newest_mtime(tree);
    for (path, text) in [
        (TLS_BUNDLE, tls),
        (EMAIL_BUNDLE, email),
        (OBJSIGN_BUNDLE, objsign),
        (OPENSSL_BUNDLE, openssl),
    ] {
        report.written.push(generated::put_file(
            tree,
            staging,
            path,
            text.as_bytes(),
            0o444,
            mtime,
        )?);
    }
    Ok(Some(report))
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
