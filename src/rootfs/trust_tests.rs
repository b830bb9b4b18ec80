use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::rootfs::{tree::implied_dir, BlobRef, Entry};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command on the test host");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A throwaway CA `NAME` (NAME.pem, NAME.key, NAME.der) in `dir`.
fn make_ca(dir: &Path, name: &str) -> Vec<u8> {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-in",
            &format!("{name}.pem"),
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
        dir,
    );
    std::fs::read(dir.join(format!("{name}.pem"))).unwrap()
}

/// A server certificate for 127.0.0.1 signed by CA `ca`, at `dir/server-CA.pem`.
fn make_server(dir: &Path, ca: &str) -> PathBuf {
    let name = format!("server-{ca}");
    openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    );
    dir.join(format!("{name}.pem"))
}

/// Put a file in the tree, its content in a host file under `dir`.
fn put(tree: &mut Tree, dir: &Path, path: &str, bytes: &[u8]) {
    let blob = dir.join(format!("blob-{}", tree.entries.len()));
    std::fs::write(&blob, bytes).unwrap();
    tree.ensure_parents(path);
    tree.entries.insert(
        path.to_string(),
        Entry {
            kind: Kind::File {
                blob: BlobRef::whole_file(&blob).unwrap(),
                size: bytes.len() as u64,
                link_id: None,
            },
            mode: 0o644,
            package: Some("ca-certificates".into()),
            mtime: 1_700_000_000,
            ..implied_dir()
        },
    );
}

fn read(tree: &Tree, path: &str) -> String {
    let Kind::File { blob, .. } = &tree.entries[path].kind else {
        panic!("{path} is not a file")
    };
    blob.read_to_string().unwrap()
}

fn p11_section(label: &str, attrs: &str, pem: &str) -> String {
    format!("[p11-kit-object-v1]\nlabel: \"{label}\"\n{attrs}modifiable: false\n{pem}\n")
}

/// The EKU extension (emailProtection only) as p11-kit writes it: `%xx`.
fn email_only_extension() -> String {
    let oids = der::encode(0x06, OID_EMAIL);
    let seq = der::encode(0x30, &oids);
    let mut ext = der::encode(0x06, &[0x55, 0x1d, 0x25]);
    ext.extend(der::encode(0x04, &seq));
    let ext = der::encode(0x30, &ext);
    ext.iter().map(|b| format!("%{b:02x}")).collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    tree: Tree,
    staging: Staging,
}

/// Sources of every kind: a p11-kit bundle (trusted, distrusted, email-only),
/// a PEM anchor in /etc, a DER anchor, a blocklisted CA, a plain cert
/// outside anchors/.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let pems: Vec<String> = ["good", "bad", "mail", "etc", "der", "blocked", "plain"]
        .iter()
        .map(|n| String::from_utf8(make_ca(&dir, n)).unwrap())
        .collect();
    let mail_key = {
        openssl(
            &[
                "x509", "-in", "mail.pem", "-pubkey", "-noout", "-out", "mail.pub",
            ],
            &dir,
        );
        std::fs::read_to_string(dir.join("mail.pub")).unwrap()
    };
    let p11 = [
        p11_section("Good Root", "trusted: true\nnss-mozilla-ca-policy: true\n", &pems[0]),
        p11_section("Bad Root", "x-distrusted: true\n", &pems[1]),
        p11_section("Mail Root", "trusted: true\n", &pems[2]),
        format!(
            "[p11-kit-object-v1]\nclass: x-certificate-extension\nlabel: \"Mail Root\"\nobject-id: 2.5.29.37\nvalue: \"{}\"\nmodifiable: false\n{mail_key}\n",
            email_only_extension()
        ),
    ]
    .concat();
    let mut tree = Tree::default();
    put(
        &mut tree,
        &dir,
        "usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit",
        p11.as_bytes(),
    );
    put(
        &mut tree,
        &dir,
        "etc/pki/ca-trust/source/anchors/etc.pem",
        pems[3].as_bytes(),
    );
    put(
        &mut tree,
        &dir,
        "usr/share/pki/ca-trust-source/anchors/der.crt",
        &std::fs::read(dir.join("der.der")).unwrap(),
    );
    // Blocked twice: as an anchor in /usr and in the /etc blocklist.
    put(
        &mut tree,
        &dir,
        "usr/share/pki/ca-trust-source/anchors/blocked.pem",
        pems[5].as_bytes(),
    );
    put(
        &mut tree,
        &dir,
        "etc/pki/ca-trust/source/blocklist/blocked.pem",
        pems[5].as_bytes(),
    );
    put(
        &mut tree,
        &dir,
        "etc/pki/ca-trust/source/plain.pem",
        pems[6].as_bytes(),
    );
    let staging = Staging::new(dir.join("staging")).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        tree,
        staging,
    }
}

#[test]
fn bundles_honour_trust_distrust_and_purposes() {
    let mut f = fixture();
    let report = extract(&mut f.tree, &mut f.staging).unwrap().unwrap();
    let tls = read(&f.tree, TLS_BUNDLE);
    let labels: Vec<&str> = tls.lines().filter_map(|l| l.strip_prefix("# ")).collect();
    // Sorted by label; distrusted, blocklisted, email-only and plain are out.
    assert_eq!(labels, ["Good Root", "der", "etc"]);
    assert_eq!(report.tls, 3);
    assert_eq!(report.anchors, 4, "{report:?}");
    assert_eq!(report.distrusted, 2, "{report:?}");
    assert_eq!(report.ignored.len(), 1, "{report:?}");
    assert!(report.ignored[0].0.ends_with("plain.pem"));
    let email = read(&f.tree, EMAIL_BUNDLE);
    assert!(email.contains("# Mail Root\n"), "{email}");
    let openssl_bundle = read(&f.tree, OPENSSL_BUNDLE);
    assert_eq!(
        openssl_bundle.matches("BEGIN TRUSTED CERTIFICATE").count(),
        6
    );
    let e = &f.tree.entries[TLS_BUNDLE];
    assert_eq!(
        (e.mode, e.package.as_deref(), e.mtime),
        (0o444, None, 1_700_000_000)
    );
}

#[test]
fn openssl_verifies_against_the_written_bundles() {
    let mut f = fixture();
    let good = make_server(&f.dir, "etc");
    let bad = make_server(&f.dir, "bad");
    extract(&mut f.tree, &mut f.staging).unwrap().unwrap();
    for bundle in [TLS_BUNDLE, OPENSSL_BUNDLE] {
        let file = f.dir.join("bundle.pem");
        std::fs::write(&file, read(&f.tree, bundle)).unwrap();
        let verify = |cert: &Path| {
            Command::new("openssl")
                .args(["verify", "-purpose", "sslserver", "-CAfile"])
                .arg(&file)
                .arg(cert)
                .output()
                .unwrap()
        };
        let ok = verify(&good);
        assert!(ok.status.success(), "{bundle}: {ok:?}");
        let no = verify(&bad);
        assert!(
            !no.status.success(),
            "{bundle}: distrusted CA still verifies"
        );
    }
}

#[test]
fn output_does_not_depend_on_source_order() {
    let mut a = fixture();
    extract(&mut a.tree, &mut a.staging).unwrap();
    let first = read(&a.tree, TLS_BUNDLE);
    // Same sources, the p11-kit file renamed so it is read last.
    let entry = a
        .tree
        .entries
        .remove("usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit")
        .unwrap();
    a.tree
        .entries
        .insert("usr/share/pki/ca-trust-source/zz.p11-kit".into(), entry);
    extract(&mut a.tree, &mut a.staging).unwrap();
    assert_eq!(read(&a.tree, TLS_BUNDLE), first);
}

#[test]
fn recipe_anchors_land_in_etc_and_junk_is_refused() {
    let mut f = fixture();
    let extra = make_ca(&f.dir, "private");
    let written = add_anchors(
        &mut f.tree,
        &mut f.staging,
        &[("certs/private.pem".into(), extra)],
    )
    .unwrap();
    assert_eq!(written, ["etc/pki/ca-trust/source/anchors/private.pem"]);
    extract(&mut f.tree, &mut f.staging).unwrap();
    assert!(read(&f.tree, TLS_BUNDLE).contains("# private\n"));
    let err = add_anchors(
        &mut f.tree,
        &mut f.staging,
        &[("x.pem".into(), b"nope".to_vec())],
    )
    .unwrap_err();
    assert!(matches!(err, TrustError::NoCertificate { .. }), "{err}");
}

#[test]
fn no_sources_no_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = Tree::default();
    let mut staging = Staging::new(tmp.path()).unwrap();
    assert_eq!(extract(&mut tree, &mut staging).unwrap(), None);
    assert!(tree.entries.is_empty());
}

#[test]
fn p11_values_decode_percent_escapes() {
    assert_eq!(p11_value("\"%30%1eab\""), [0x30, 0x1e, b'a', b'b']);
    assert_eq!(p11_value("\"Mail Root\""), b"Mail Root");
}
