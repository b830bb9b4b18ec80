//! OpenPGP checks: RPM header signatures and detached `repomd.xml.asc`.
//!
//! A [`Keyring`] holds one repo's public keys (armored or binary, several per
//! file allowed), each optionally pinned by fingerprint in the recipe. An RPM
//! is accepted when
//! 1. one of its header signatures verifies against one of the keys (the
//!    signature covers the header only: names, file list, digests), and
//! 2. the header's own digests match (SHA-1/SHA-256/SHA3 of the header), and
//! 3. the payload digest recorded in the signed header (`PAYLOADDIGEST`,
//!    SHA-256 or SHA-512) matches the payload bytes, so the files are bound
//!    to the signature too.
//!
//! The headers come already read ([`RpmFile`], read once per build); the
//! payload is streamed through the hash, never held in memory. Verification itself is the
//! `rpm` crate's (`signature-pgp`, pure Rust: RSA, EdDSA, ECDSA; v4 and v6
//! signatures); this module chooses what to trust and says why it refused.
//!
//! `repomd.xml` is checked the same way against its detached, armored
//! signature before any of it is parsed.

use std::fmt;

use ::rpm::signature::pgp::Verifier;
use ::rpm::signature::Verifying as _;
use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::ser::Serialize as _;
use pgp::types::KeyDetails as _;
use sha2::Digest as _;

use crate::package::file::RpmFile;
use crate::package::Nevra;

/// One trusted public key.
#[derive(Clone)]
pub struct Key {
    /// Primary key fingerprint, uppercase hex (as `gpg --fingerprint` without spaces).
    pub fingerprint: String,
    /// Where it came from (URL), for messages and provenance.
    pub source: String,
    verifier: Verifier,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} from {})", self.fingerprint, self.source)
    }
}

/// The keys one repository's packages (and metadata) must be signed with.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    pub keys: Vec<Key>,
    /// Accept signatures over SHA-1 (or MD5) and v3 signatures, which are
    /// refused by default (the recipe's `options.legacy_signatures`).
    pub allow_legacy: bool,
}

/// Why a signature packet is too weak to trust by default: `None` for a
/// v4/v6 signature over SHA-2 or SHA-3. RHEL 9's default crypto policy
/// refuses the same; a SHA-1 collision lets one signed header stand for another.
fn weakness(packet: &[u8]) -> Option<String> {
    use pgp::crypto::hash::HashAlgorithm as H;
    use pgp::packet::SignatureVersion as V;
    let sig = match parse_detached(packet) {
        Ok(s) => s.signature,
        Err(_) => return Some("an unreadable (pre-v4?) signature".into()),
    };
    if !matches!(sig.version(), V::V4 | V::V6) {
        return Some(format!("a {:?} signature", sig.version()));
    }
    match sig.hash_alg() {
        Some(H::Sha256 | H::Sha384 | H::Sha512 | H::Sha224 | H::Sha3_256 | H::Sha3_512) => None,
        Some(H::Md5) => Some("an MD5 signature digest".into()),
        Some(H::Sha1) => Some("a SHA-1 signature digest".into()),
        Some(other) => Some(format!("a {other} signature digest")),
        None => Some("a signature without a known digest".into()),
    }
}

/// The hint for a refused weak signature.
const LEGACY_HINT: &str = "refused by default (weak digest or old signature format); for an old distribution whose packages are signed so, set `legacy_signatures = true` in [options], knowingly (recorded in the provenance)";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read OpenPGP public keys from {source_url}: {reason}")]
    BadKey { source_url: String, reason: String },
    #[error("{source_url} holds no key with the pinned fingerprint {pinned} (found: {found})\n  hint: the key changed or the pin is wrong; compare with the distribution's published fingerprint")]
    PinMismatch {
        source_url: String,
        pinned: String,
        found: String,
    },
    #[error("{nevra}: {reason}\n  signature key id: {key_ids}; keys tried: {tried}\n  hint: import the right key with `gpgkey`, or set `gpgcheck = false` for this repo (or pass `--no-gpgcheck REPO`) to build without the check, knowingly")]
    Package {
        nevra: String,
        key_ids: String,
        tried: String,
        reason: String,
    },
    #[error("{what}: {reason}\n  signature key id: {key_ids}; keys tried: {tried}\n  hint: the metadata may have been tampered with, or the repo is signed with another key")]
    Detached {
        what: String,
        key_ids: String,
        tried: String,
        reason: String,
    },
}

/// Normalize a fingerprint as written by people (`ABCD 1234 …`, `0x…`, lowercase).
pub fn normalize_fingerprint(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

impl Keyring {
    /// Add every public key in `bytes` (armored or binary); when `pin` is
    /// given, only the key with that fingerprint is kept and its absence is an error.
    pub fn add(
        &mut self,
        bytes: &[u8],
        source: &str,
        pin: Option<&str>,
    ) -> Result<(), SignatureError> {
        let bad = |reason: String| SignatureError::BadKey {
            source_url: source.to_string(),
            reason,
        };
        let keys = parse_keys(bytes).map_err(bad)?;
        if keys.is_empty() {
            return Err(bad("no public key found in it".into()));
        }
        let mut found = Vec::new();
        let mut added = 0;
        for key in keys {
            let fingerprint = format!("{:X}", key.fingerprint());
            found.push(fingerprint.clone());
            if pin.is_some_and(|p| normalize_fingerprint(p) != fingerprint) {
                continue;
            }
            let armored = key
                .to_armored_string(Default::default())
                .map_err(|e| bad(e.to_string()))?;
            let verifier =
                Verifier::from_asc(&armored).map_err(|e| bad(format!("key {fingerprint}: {e}")))?;
            self.keys.push(Key {
                fingerprint,
                source: source.to_string(),
                verifier,
            });
            added += 1;
        }
        if let (Some(pin), 0) = (pin, added) {
            return Err(SignatureError::PinMismatch {
                source_url: source.to_string(),
                pinned: normalize_fingerprint(pin),
                found: found.join(", "),
            });
        }
        Ok(())
    }

    pub fn fingerprints(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.fingerprint.as_str()).collect()
    }

    fn tried(&self) -> String {
        if self.keys.is_empty() {
            "none (the repo has no gpgkey)".to_string()
        } else {
            self.fingerprints().join(", ")
        }
    }

    /// The first key whose verifier accepts `signature` over `data`.
    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<&Key, String> {
        let mut last = "no key to verify with".to_string();
        for key in &self.keys {
            match key.verifier.verify(data, signature) {
                Ok(()) => return Ok(key),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    /// Verify `rpm` (see the module docs); returns the fingerprint that signed it.
    pub fn verify_rpm(&self, rpm: &RpmFile, nevra: &Nevra) -> Result<String, SignatureError> {
        let fail = |key_ids: String, reason: String| SignatureError::Package {
            nevra: nevra.to_string(),
            key_ids,
            tried: self.tried(),
            reason,
        };
        let meta = rpm.metadata();
        let infos = meta.signatures().unwrap_or_default();
        let raw = meta
            .raw_signatures()
            .map_err(|e| fail("-".into(), format!("unreadable signature header: {e}")))?;
        let key_ids = if infos.is_empty() {
            "none".to_string()
        } else {
            infos
                .iter()
                .map(|i| {
                    i.fingerprint()
                        .or(i.key_id())
                        .unwrap_or("unknown")
                        .to_uppercase()
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if raw.is_empty() {
            return Err(fail(key_ids, "the package is not signed".into()));
        }
        let digests = meta
            .check_digests()
            .map_err(|e| fail(key_ids.clone(), format!("cannot check header digests: {e}")))?;
        if !digests.has_header_digest() {
            return Err(fail(key_ids, "the header carries no digest".into()));
        }
        digests
            .result()
            .map_err(|e| fail(key_ids.clone(), format!("header damaged: {e}")))?;
        let header = meta
            .header_bytes()
            .map_err(|e| fail(key_ids.clone(), e.to_string()))?;
        let mut signer = None;
        let mut last = String::new();
        let mut weak = Vec::new();
        for sig in &raw {
            if let Some(why) = weakness(sig).filter(|_| !self.allow_legacy) {
                weak.push(why);
                continue;
            }
            match self.verify(&header, sig) {
                Ok(key) => {
                    signer = Some(key.fingerprint.clone());
                    break;
                }
                Err(e) => last = e,
            }
        }
        let Some(signer) = signer else {
            if last.is_empty() && !weak.is_empty() {
                return Err(fail(
                    key_ids,
                    format!("signed only with {}, {LEGACY_HINT}", weak.join(" and ")),
                ));
            }
            return Err(fail(
                key_ids,
                format!("no header signature verifies with the repo's keys ({last})"),
            ));
        };
        let mut payload = rpm
            .payload()
            .map_err(|e| fail(key_ids.clone(), e.to_string()))?;
        check_payload(meta, &mut payload).map_err(|reason| fail(key_ids, reason))?;
        Ok(signer)
    }

    /// Verify `data` against a detached (armored or binary) `signature`; `what` names it in errors.
    pub fn verify_detached(
        &self,
        data: &[u8],
        signature: &[u8],
        what: &str,
    ) -> Result<String, SignatureError> {
        let fail = |key_ids: String, reason: String| SignatureError::Detached {
            what: what.to_string(),
            key_ids,
            tried: self.tried(),
            reason,
        };
        let sig = parse_detached(signature).map_err(|e| fail("-".into(), e))?;
        let key_ids = {
            let mut ids: Vec<String> = sig
                .signature
                .issuer_fingerprint()
                .iter()
                .map(|f| format!("{f:X}"))
                .collect();
            if ids.is_empty() {
                ids = sig
                    .signature
                    .issuer_key_id()
                    .iter()
                    .map(|k| hex::encode_upper(k.as_ref()))
                    .collect();
            }
            if ids.is_empty() {
                "unknown".to_string()
            } else {
                ids.join(", ")
            }
        };
        let bytes = sig
            .to_bytes()
            .map_err(|e| fail(key_ids.clone(), e.to_string()))?;
        if let Some(why) = weakness(&bytes).filter(|_| !self.allow_legacy) {
            return Err(fail(key_ids, format!("signed with {why}, {LEGACY_HINT}")));
        }
        self.verify(data, &bytes)
            .map(|k| k.fingerprint.clone())
            .map_err(|e| fail(key_ids, format!("the signature does not verify ({e})")))
    }
}

fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
    let iter: Box<dyn Iterator<Item = pgp::errors::Result<SignedPublicKey>>> = if armored {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        SignedPublicKey::from_string_many(text)
            .map_err(|e| e.to_string())?
            .0
    } else {
        SignedPublicKey::from_bytes_many(bytes).map_err(|e| e.to_string())?
    };
    // Keys this library cannot use (old algorithms) are skipped, not fatal: a
    // distribution keyring may carry several generations of keys.
    Ok(iter.filter_map(Result::ok).collect())
}

fn parse_detached(bytes: &[u8]) -> Result<DetachedSignature, String> {
    let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
    if armored {
        DetachedSignature::from_armor_single(bytes)
            .map(|(s, _)| s)
            .map_err(|e| format!("not an OpenPGP signature: {e}"))
    } else {
        DetachedSignature::from_bytes(bytes).map_err(|e| format!("not an OpenPGP signature: {e}"))
    }
}

/// Hash the rest of `payload` (the bytes after the header) and compare with
/// the digests the signed header records.
fn check_payload(
    meta: &::rpm::PackageMetadata,
    payload: &mut impl std::io::Read,
) -> Result<(), String> {
    use ::rpm::IndexTag;
    let tag = |t: IndexTag| -> Option<String> {
        meta.header
            .get_entry_data_as_string(t)
            .map(str::to_string)
            .ok()
            .or_else(|| {
                meta.header
                    .get_entry_data_as_string_array(t)
                    .ok()
                    .and_then(|v| v.first().map(|s| s.to_string()))
            })
            .filter(|s| !s.is_empty())
    };
    let want256 = tag(IndexTag::RPMTAG_PAYLOADSHA256);
    let want512 = tag(IndexTag::RPMTAG_PAYLOAD_SHA512);
    if want256.is_none() && want512.is_none() {
        return Err(
            "the header records no payload digest, so the signature does not cover the files"
                .into(),
        );
    }
    let mut h256 = sha2::Sha256::new();
    let mut h512 = sha2::Sha512::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = payload
            .read(&mut buf)
            .map_err(|e| format!("cannot read the payload: {e}"))?;
        if n == 0 {
            break;
        }
        if want256.is_some() {
            h256.update(&buf[..n]);
        }
        if want512.is_some() {
            h512.update(&buf[..n]);
        }
    }
    if let Some(w) = want256 {
        let got = hex::encode(h256.finalize());
        if !w.eq_ignore_ascii_case(&got) {
            return Err(format!(
                "payload SHA-256 is {got}, the signed header says {w}: the files were altered"
            ));
        }
    }
    if let Some(w) = want512 {
        let got = hex::encode(h512.finalize());
        if !w.eq_ignore_ascii_case(&got) {
            return Err(format!(
                "payload SHA-512 is {got}, the signed header says {w}: the files were altered"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalized() {
        assert_eq!(
            normalize_fingerprint(" 0xabcd 1234\tEF "),
            "ABCD1234EF".to_string()
        );
        assert_eq!(normalize_fingerprint("ABCD"), "ABCD");
    }

    #[test]
    fn garbage_is_not_a_key() {
        let mut k = Keyring::default();
        let e = k.add(b"hello", "file:///x", None).unwrap_err();
        assert!(matches!(e, SignatureError::BadKey { .. }), "{e}");
        let e = k
            .add(
                b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n",
                "u",
                None,
            )
            .unwrap_err();
        assert!(matches!(e, SignatureError::BadKey { .. }), "{e}");
        assert!(k.keys.is_empty());
    }
}
