//! Supply chain end to end: signature checks (RPM headers, repomd.xml.asc,
//! fingerprint pins), the SBOM and provenance written beside the image, and
//! `--policy` refusing repos before any download.
//!
//! The signed repos come from tests/fixtures/make-signed.sh (throwaway keys,
//! `rpmsign --addsign`), run once per test binary; the real v4/v6 signed
//! packages from the rpm-rs corpus check algorithms our fixtures cannot make.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::*;
use minibuild::digest::Digest;
use minibuild::package::file::RpmFile;
use minibuild::package::Nevra;
use minibuild::signature::Keyring;

/// target/fixtures/signed, built on first use.
fn signed() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let fixtures = fixtures();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-signed.sh");
        run_ok(std::process::Command::new(script).arg(&fixtures));
        fixtures.join("signed")
    })
    .clone()
}

fn fpr(name: &str) -> String {
    std::fs::read_to_string(signed().join(format!("keys/{name}.fpr")))
        .unwrap()
        .trim()
        .to_string()
}

/// Write a recipe for busybox + basesystem from `baseurl` with the given repo lines.
fn write_recipe(dir: &Path, baseurl: &str, repo_extra: &str) -> PathBuf {
    let path = dir.join("app.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"signed\"\nbaseurl = \"{baseurl}\"\n{repo_extra}\n\n[packages]\ninstall = [\"busybox\", \"basesystem\"]\n"
        ),
    )
    .unwrap();
    path
}

fn build(recipe: &Path, dir: &Path, extra: &[&str]) -> Output {
    build_cmd(recipe, &dir.join("app.oci.tar"), &dir.join("cache"))
        .args(extra)
        .output()
        .unwrap()
}

fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "build should fail:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`:\n{stderr}");
    }
}

fn signed_url(key: &str) -> String {
    format!("file://{}/{key}/$basearch/", signed().display())
}

#[test]
fn signed_repo_builds_with_sbom_and_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    // Binary key, pinned; repomd.xml.asc checked too.
    let recipe = write_recipe(
        tmp.path(),
        &signed_url("rsa"),
        &format!(
            "repo_gpgcheck = true\ngpgkey = [{{ url = \"{}\", fingerprint = \"{}\" }}]",
            signed().join("keys/rsa.gpg").display(),
            fpr("rsa")
        ),
    );
    let out = build(&recipe, tmp.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 of 4 package signatures verified"),
        "{stderr}"
    );
    let digest = last_line(&out);

    // SBOM: exactly the installed packages, with their sha256 and purls, and the image digest.
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.spdx.json")).unwrap())
            .unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let packages = sbom["packages"].as_array().unwrap();
    assert_eq!(
        packages[0]["versionInfo"],
        digest.as_str(),
        "image digest recorded"
    );
    let mut names: Vec<&str> = packages[1..]
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["basesystem", "busybox", "filesystem", "setup"]);
    let repo_dir = signed().join("rsa/x86_64");
    for p in &packages[1..] {
        let name = p["name"].as_str().unwrap();
        let file = std::fs::read_dir(&repo_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|f| {
                let n = f.file_name().unwrap().to_string_lossy();
                n.starts_with(&format!("{name}-")) && n.ends_with(".rpm")
            })
            .unwrap();
        let sha = Digest::sha256_of(&std::fs::read(&file).unwrap());
        assert_eq!(p["checksums"][0]["checksumValue"], sha.hex(), "{name}");
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        assert!(
            purl.starts_with("pkg:rpm/") && purl.contains(&format!("/{name}@")),
            "{purl}"
        );
    }
    assert!(sbom["creationInfo"]["comment"]
        .as_str()
        .unwrap()
        .contains("verified for every repository"));

    // Provenance: subject = the image, every RPM with its sha256, the recipe.
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.intoto.json")).unwrap())
            .unwrap();
    assert_eq!(prov["subject"][0]["name"], "app:latest");
    assert_eq!(
        format!(
            "sha256:{}",
            prov["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        digest
    );
    let deps = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let recipe_sha = Digest::sha256_of(&std::fs::read(&recipe).unwrap());
    assert_eq!(deps[0]["digest"]["sha256"], recipe_sha.hex());
    let rpms: Vec<&serde_json::Value> = deps
        .iter()
        .filter(|d| d["uri"].as_str().unwrap().ends_with(".rpm"))
        .collect();
    assert_eq!(rpms.len(), 4);
    assert!(rpms
        .iter()
        .all(|d| d["annotations"]["signedBy"] == fpr("rsa").as_str()));
    let repo = deps
        .iter()
        .find(|d| d["name"] == "repo:signed:x86_64")
        .unwrap();
    assert_eq!(repo["annotations"]["repo_gpgcheck"], true);
    assert!(
        repo["digest"]["sha256"].is_string(),
        "repomd.xml digest recorded"
    );

    // Deterministic: a second build (another directory, so the provenance's
    // recipe URI differs) writes the same image and the same SBOM bytes.
    let again = tempfile::tempdir().unwrap();
    std::fs::copy(&recipe, again.path().join("app.toml")).unwrap();
    let out2 = build(&again.path().join("app.toml"), again.path(), &[]);
    assert!(out2.status.success());
    assert_eq!(last_line(&out2), digest);
    let f = "app.oci.tar.spdx.json";
    assert_eq!(
        std::fs::read(tmp.path().join(f)).unwrap(),
        std::fs::read(again.path().join(f)).unwrap(),
        "{f} differs between two builds"
    );

    // Annotations on the manifest: recipe digest and the repo with its revision.
    require_tool("skopeo");
    let raw = run_ok(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tmp.path().join("app.oci.tar").display()),
    ]));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let ann = &manifest["annotations"];
    assert_eq!(ann["dev.minibuild.recipe.digest"], recipe_sha.to_string());
    // The repo's state and checks, not its URL (which is in the provenance only).
    let repo_ann = ann["dev.minibuild.repo.signed"].as_str().unwrap();
    assert!(
        repo_ann.starts_with("revision=") && repo_ann.ends_with("gpgcheck=on repo_gpgcheck=on"),
        "{repo_ann}"
    );
}

#[test]
fn ed25519_signed_repo_builds_cyclonedx_without_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &signed_url("ed25519"),
        &format!(
            "gpgkey = \"{}\"",
            signed().join("keys/ed25519.asc").display()
        ),
    );
    let out = build(
        &recipe,
        tmp.path(),
        &["--sbom-format", "cyclonedx", "--no-provenance"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.cdx.json")).unwrap())
            .unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert!(!tmp.path().join("app.oci.tar.intoto.json").exists());
}

#[test]
fn unsigned_package_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &fixture_file_url(),
        &format!("gpgkey = \"{}\"", signed().join("keys/rsa.asc").display()),
    );
    let out = build(&recipe, tmp.path(), &[]);
    fails_with(
        &out,
        &[
            ".fc40.",
            "the package is not signed",
            "signature key id: none",
            &fpr("rsa"),
        ],
    );
    assert!(!tmp.path().join("app.oci.tar").exists());
}

#[test]
fn wrong_key_fails_naming_signature_and_tried_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &signed_url("rsa"),
        &format!("gpgkey = \"{}\"", signed().join("keys/other.asc").display()),
    );
    let out = build(&recipe, tmp.path(), &[]);
    // The signature's issuer (the RSA key) and the key tried (other) are both named.
    fails_with(
        &out,
        &["no header signature verifies", &fpr("rsa"), &fpr("other")],
    );
}

#[test]
fn pinned_fingerprint_mismatch_fails_before_download() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &signed_url("rsa"),
        &format!(
            "gpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
            signed().join("keys/rsa.asc").display(),
            fpr("other")
        ),
    );
    let out = build(&recipe, tmp.path(), &[]);
    fails_with(&out, &["pinned fingerprint", &fpr("other"), &fpr("rsa")]);
}

#[test]
fn tampered_repomd_fails_with_repo_gpgcheck() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo/x86_64");
    std::fs::create_dir_all(repo.join("repodata")).unwrap();
    let src = signed().join("rsa/x86_64/repodata");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), repo.join("repodata").join(e.file_name())).unwrap();
    }
    let md = repo.join("repodata/repomd.xml");
    let text = std::fs::read_to_string(&md).unwrap();
    std::fs::write(&md, text.replace("<revision>", "<revision>9")).unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &format!("file://{}/repo/$basearch/", tmp.path().display()),
        &format!(
            "repo_gpgcheck = true\ngpgkey = \"{}\"",
            signed().join("keys/rsa.asc").display()
        ),
    );
    let out = build(&recipe, tmp.path(), &[]);
    fails_with(&out, &["repomd.xml.asc", "does not verify", &fpr("rsa")]);
}

#[test]
fn unchecked_repo_is_recorded_in_sbom_and_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &fixture_file_url(), "gpgcheck = false");
    let out = build(&recipe, tmp.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("signatures are NOT checked"), "{stderr}");
    let sbom = std::fs::read_to_string(tmp.path().join("app.oci.tar.spdx.json")).unwrap();
    assert!(
        sbom.contains("NOT verified for repositories: signed"),
        "{sbom}"
    );
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.intoto.json")).unwrap())
            .unwrap();
    assert_eq!(
        prov["predicate"]["buildDefinition"]["internalParameters"]["signatureChecksOff"],
        serde_json::json!(["signed"])
    );
}

#[test]
fn build_from_lock_fills_sbom_fields_from_headers_and_records_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &fixture_file_url(), "gpgcheck = false");
    run_ok(
        minibuild()
            .arg("lock")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    let lock = tmp.path().join("app.toml.lock");
    let out = build(&recipe, tmp.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.spdx.json")).unwrap())
            .unwrap();
    let busybox = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "busybox")
        .unwrap();
    assert_eq!(busybox["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(busybox["supplier"], "Organization: Fedora Project");
    assert!(busybox["summary"]
        .as_str()
        .unwrap()
        .starts_with("Statically linked"));
    assert!(busybox["sourceInfo"]
        .as_str()
        .unwrap()
        .contains("busybox-1.35.0-4.fc40.src.rpm"));
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("app.oci.tar.intoto.json")).unwrap())
            .unwrap();
    let lock_sha = Digest::sha256_of(&std::fs::read(&lock).unwrap());
    let deps = &prov["predicate"]["buildDefinition"]["resolvedDependencies"];
    assert_eq!(deps[1]["name"], "lock");
    assert_eq!(deps[1]["digest"]["sha256"], lock_sha.hex());
}

#[test]
fn policy_refuses_repo_before_any_download() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: a download attempt would fail differently.
    let recipe = write_recipe(
        tmp.path(),
        "http://127.0.0.1:9/repo/$basearch/",
        "gpgcheck = false",
    );
    let policy = tmp.path().join("policy.toml");
    std::fs::write(&policy, "allow_repos = [\"https://mirror.example/\"]\n").unwrap();
    let out = build(&recipe, tmp.path(), &["--policy", policy.to_str().unwrap()]);
    fails_with(
        &out,
        &[
            "repo `signed`",
            "allow_repos",
            "http://127.0.0.1:9/repo/x86_64/",
        ],
    );

    std::fs::write(&policy, format!("signing_keys = [\"{}\"]\n", fpr("rsa"))).unwrap();
    let plan = minibuild()
        .arg("plan")
        .arg(&recipe)
        .arg("--policy")
        .arg(&policy)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .output()
        .unwrap();
    fails_with(&plan, &["repo `signed`", "gpgcheck off"]);

    // Allowed: the signed repo with the pinned key passes the same policy.
    let ok = write_recipe(
        tmp.path(),
        &signed_url("rsa"),
        &format!(
            "gpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
            signed().join("keys/rsa.asc").display(),
            fpr("rsa")
        ),
    );
    let out = build(&ok, tmp.path(), &["--policy", policy.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keyring(files: &[PathBuf]) -> Keyring {
    let mut ring = Keyring::default();
    for f in files {
        ring.add(&std::fs::read(f).unwrap(), &f.display().to_string(), None)
            .unwrap();
    }
    ring
}

/// The headers of `path`, read as a build reads them.
fn open(path: &std::path::Path) -> RpmFile {
    RpmFile::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn nevra() -> Nevra {
    Nevra {
        name: "test".into(),
        evr: minibuild::package::Evr::parse("1-1"),
        arch: "noarch".into(),
    }
}

#[test]
fn tampered_payload_fails_and_good_signature_passes() {
    let dir = signed();
    let ring = keyring(&[dir.join("keys/rsa.asc")]);
    let rpm = std::fs::read_dir(dir.join("rsa/x86_64"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("busybox"))
        .unwrap();
    assert_eq!(ring.verify_rpm(&open(&rpm), &nevra()).unwrap(), fpr("rsa"));
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.rpm");
    let mut bytes = std::fs::read(&rpm).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let e = ring
        .verify_rpm(&open(&bad), &nevra())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("payload SHA-256") && e.contains("altered"),
        "{e}"
    );
}

/// The rpm-rs test corpus: real v4 and v6 signed packages with their keys.
fn corpus() -> PathBuf {
    common::corpus("rpm-rs-rpm/tests/assets")
}

#[test]
fn corpus_v4_and_v6_signatures_verify_with_their_keys_only() {
    let c = corpus();
    let cases = [
        (
            "RPMS/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v4/rpm-testkey-v4-rsa4096.asc",
        ),
        (
            "RPMS/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v4/rpm-testkey-v4-ed25519.asc",
        ),
        (
            "RPMS/v4/signed/rpm-basic-with-ecdsa-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v4/rpm-testkey-v4-ecdsa-nistp256.asc",
        ),
        (
            "RPMS/v6/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v6/rpm-testkey-v6-ed25519.asc",
        ),
        (
            "RPMS/v6/signed/rpm-basic-with-rsa4k-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v6/rpm-testkey-v6-rsa4k.asc",
        ),
        (
            "RPMS/v6/signed/rpm-basic-multiple-signatures-2.3.4-5.el9.noarch.rpm",
            "signing_keys/v6/rpm-testkey-v6-keyring.asc",
        ),
    ];
    for (rpm, key) in cases {
        let ring = keyring(&[c.join(key)]);
        let signer = ring
            .verify_rpm(&open(&c.join(rpm)), &nevra())
            .unwrap_or_else(|e| panic!("{rpm} with {key}: {e}"));
        assert!(ring.fingerprints().contains(&signer.as_str()), "{rpm}");
    }
    // Wrong key and unsigned packages are refused.
    let ring = keyring(&[c.join("signing_keys/v4/rpm-testkey-v4-ed25519.asc")]);
    let e = ring
        .verify_rpm(&open(&c.join(cases[0].0)), &nevra())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no header signature verifies"), "{e}");
    let e = ring
        .verify_rpm(
            &open(&c.join("RPMS/v4/rpm-basic-2.3.4-5.el9.noarch.rpm")),
            &nevra(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("not signed"), "{e}");
}

/// Old signature formats from rpm's own test data: a v3 signature packet is
/// refused by default, naming the opt-in; the v4 one by the same key passes.
#[test]
fn corpus_v3_signature_is_refused_by_default() {
    let data = common::corpus("rpm/tests/data");
    let mut ring = keyring(&[data.join("keys/rpm.org-rsa-2048-test.pub")]);
    let v4 = data.join("RPMS/hello-2.0-1.x86_64-signed.rpm");
    let v3 = data.join("RPMS/hello-2.0-1.x86_64-v3-signed.rpm");
    ring.verify_rpm(&open(&v4), &nevra())
        .unwrap_or_else(|e| panic!("{}: {e}", v4.display()));
    let e = ring
        .verify_rpm(&open(&v3), &nevra())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("V3 signature") && e.contains("legacy_signatures = true"),
        "{e}"
    );
    ring.allow_legacy = true;
    let e = ring
        .verify_rpm(&open(&v3), &nevra())
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_none_or(|e| !e.contains("legacy_signatures")),
        "with the opt-in, the v3 signature is at least tried: {e:?}"
    );
}

/// Memory check on a big package: `MINIBUILD_MEASURE_RPM=PKG.rpm MINIBUILD_MEASURE_KEY=KEY.asc
/// /usr/bin/time -v target/debug/deps/supply_chain-* --ignored measure` reports the peak RSS of
/// verifying it (the payload is streamed, so it stays far below the package size).
#[test]
#[ignore = "manual measurement; needs MINIBUILD_MEASURE_RPM and MINIBUILD_MEASURE_KEY"]
fn measure_verify_big_package() {
    let rpm =
        PathBuf::from(std::env::var_os("MINIBUILD_MEASURE_RPM").expect("MINIBUILD_MEASURE_RPM"));
    let key =
        PathBuf::from(std::env::var_os("MINIBUILD_MEASURE_KEY").expect("MINIBUILD_MEASURE_KEY"));
    let started = std::time::Instant::now();
    let signer = keyring(&[key]).verify_rpm(&open(&rpm), &nevra()).unwrap();
    eprintln!(
        "verified {} ({signer}) in {:?}",
        rpm.display(),
        started.elapsed()
    );
}
