//! Just enough DER and PEM for the trust store: TLV walking, the pieces of
//! an X.509 certificate the bundles need (subject common name, public key
//! info), base64, and PEM blocks.

/// One DER element: its tag, the whole encoding and the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub raw: &'a [u8],
    pub content: &'a [u8],
}

/// Read the element at the start of `b`; `None` when it is malformed
/// (indefinite or oversized lengths included).
pub fn tlv(b: &[u8]) -> Option<Tlv<'_>> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for &byte in b.get(2..2 + n)? {
            len = (len << 8) | usize::from(byte);
        }
        (len, 2 + n)
    };
    let raw = b.get(..header.checked_add(len)?)?;
    Some(Tlv {
        tag,
        raw,
        content: &raw[header..],
    })
}

/// The elements inside a constructed element's content.
pub fn children(mut content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let t = tlv(content)?;
        content = &content[t.raw.len()..];
        out.push(t);
    }
    Some(out)
}

/// Encode a length in DER.
fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// Encode one element.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// The parts of a certificate the trust store uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's commonName (or organizationName), if any.
    pub subject_name: Option<String>,
    /// The DER SubjectPublicKeyInfo, which p11-kit uses to attach
    /// certificate extensions to a certificate.
    pub spki: Vec<u8>,
}

/// OID 2.5.4.3 (commonName) and 2.5.4.10 (organizationName), DER content.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

/// Parse a DER X.509 certificate far enough for [`CertInfo`]; `None` when
/// `der` is not a certificate.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let cert = tlv(der)?;
    if cert.tag != 0x30 || cert.raw.len() != der.len() {
        return None;
    }
    let parts = children(cert.content)?;
    let tbs = parts.first().filter(|t| t.tag == 0x30)?;
    let mut fields = children(tbs.content)?.into_iter();
    let mut f = fields.next()?;
    if f.tag == 0xa0 {
        // [0] version
        f = fields.next()?;
    }
    // serialNumber (f), signature, issuer, validity, subject, spki
    if f.tag != 0x02 {
        return None;
    }
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let _validity = fields.next()?;
    let subject = fields.next()?;
    let spki = fields.next().filter(|t| t.tag == 0x30)?;
    let mut cn = None;
    let mut org = None;
    for rdn in children(subject.content)? {
        for atv in children(rdn.content)? {
            let kv = children(atv.content)?;
            let (Some(oid), Some(val)) = (kv.first(), kv.get(1)) else {
                continue;
            };
            let text = String::from_utf8_lossy(val.content).into_owned();
            if oid.content == OID_CN {
                cn = Some(text);
            } else if oid.content == OID_O {
                org = Some(text);
            }
        }
    }
    Some(CertInfo {
        subject_name: cn.or(org),
        spki: spki.raw.to_vec(),
    })
}

/// Standard base64 with padding (the `base64` crate, as the registry and
/// repo credentials use: one implementation in the project).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 with whitespace skipped; `None` on anything else that is not
/// canonical padded base64 (a damaged PEM block is dropped, not half-read).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = text.split_ascii_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// A PEM block: its label (`CERTIFICATE`, `TRUSTED CERTIFICATE`, …) and
/// decoded bytes, plus the line index where it ends (for callers that
/// interleave PEM with other lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Every well-formed PEM block in `text`, in order.
pub fn pem_blocks(text: &str) -> Vec<PemBlock> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if let Some((begin, body)) = current.take() {
                if begin == label {
                    if let Some(der) = base64_decode(&body) {
                        out.push(PemBlock { label: begin, der });
                    }
                }
            }
        } else if let Some((_, body)) = current.as_mut() {
            // Header lines (`Proc-Type: …`) never appear in certificates.
            body.push_str(line);
        }
    }
    out
}

/// `der` as a PEM block with 64-column lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let e = base64_encode(data);
            assert_eq!(base64_decode(&e).unwrap(), data, "{e}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm9v\n YmE=").unwrap(), b"fooba");
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Zm8"), None, "unpadded: not canonical");
    }

    #[test]
    fn tlv_reads_short_and_long_lengths() {
        let long = encode(0x04, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let t = tlv(&long).unwrap();
        assert_eq!((t.tag, t.content.len()), (0x04, 300));
        assert_eq!(tlv(&[0x30, 0x05, 1]), None, "truncated");
        assert_eq!(tlv(&[0x30, 0x80]), None, "indefinite length");
    }

    #[test]
    fn pem_blocks_skip_mismatched_and_garbage() {
        let text = format!(
            "junk\n{}# c\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n{}",
            pem("CERTIFICATE", b"abc"),
            pem("TRUSTED CERTIFICATE", b"xyz")
        );
        let blocks = pem_blocks(&text);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0].der, b"abc");
        assert_eq!(blocks[1].label, "TRUSTED CERTIFICATE");
    }
}
