//! Local RPMs as inputs (`[packages] local`): an RPM built here with
//! rpmbuild, which requires a package of the fixture repo, goes into the
//! image with that dependency, the lock and the SBOM by sha256; a changed
//! file makes the lock stale; signatures are checked like a repo's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Build a noarch (or `arch`) RPM `name-version-1` whose `/usr/bin/<name>`
/// says `says`, requiring `requires`, into `dir/dist`; returns its path.
fn local_rpm(dir: &Path, name: &str, version: &str, requires: &str, says: &str) -> PathBuf {
    local_rpm_for(dir, name, version, requires, says, "noarch")
}

fn local_rpm_for(
    dir: &Path,
    name: &str,
    version: &str,
    requires: &str,
    says: &str,
    arch: &str,
) -> PathBuf {
    let top = dir.join(format!("rpmbuild-{name}-{version}-{arch}"));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&top).unwrap();
    let spec = top.join(format!("{name}.spec"));
    let build_arch = match arch {
        "noarch" => "BuildArch: noarch\n",
        _ => "",
    };
    let requires = match requires {
        "" => String::new(),
        r => format!("Requires: {r}\n"),
    };
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: local test\nLicense: MIT\n{build_arch}AutoReqProv: no\n{requires}%description\nlocal test package\n%install\nmkdir -p %{{buildroot}}/usr/bin\nprintf '#!/bin/sh\\necho {says}\\n' > %{{buildroot}}/usr/bin/{name}\nchmod 755 %{{buildroot}}/usr/bin/{name}\n%files\n/usr/bin/{name}\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let mut cmd = rpmbuild(&top, &out);
    if arch != "noarch" {
        // BuildArch must be the host's; --target builds for another arch.
        cmd.args(["--target", arch]);
    }
    run_ok(cmd.arg(&spec));
    let built = out
        .join(arch)
        .join(format!("{name}-{version}-1.{arch}.rpm"));
    let dest = dir.join("dist").join(built.file_name().unwrap());
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::rename(&built, &dest).unwrap();
    dest
}

/// A recipe in `dir` with the fixture repo (unsigned) and `packages` lines.
fn recipe(dir: &Path, packages: &str) -> PathBuf {
    let path = dir.join("app.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n[packages]\n{packages}\n",
            fixture_file_url()
        ),
    )
    .unwrap();
    path
}

fn mb(dir: &Path, args: &[&str]) -> Command {
    let mut c = minibuild();
    c.args(args)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("CI", "1");
    c
}

fn build(dir: &Path, recipe: &Path, out: &str, more: &[&str]) -> Output {
    let mut c = build_cmd(recipe, &dir.join(out), &dir.join("cache"));
    c.args(more);
    c.output().unwrap()
}

fn sha256_file(path: &Path) -> String {
    treediff::sha256(&std::fs::read(path).unwrap())
}

fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`:\n{stderr}");
    }
}

#[test]
fn a_local_rpm_goes_into_the_image_lock_and_sbom() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rpm = local_rpm(dir, "hello", "1.0", "busybox", "hello from local");
    let recipe = recipe(
        dir,
        "local = [\"dist/hello-*.noarch.rpm\"]\nlocal_gpgcheck = false",
    );
    let sum = sha256_file(&rpm);

    // The lock names the file by its path relative to the recipe and its sha256.
    run_ok(mb(dir, &["lock"]).arg(&recipe));
    let lock = std::fs::read_to_string(dir.join("app.toml.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|e| e.contains("name = \"hello\""))
        .unwrap_or_else(|| panic!("hello is not locked:\n{lock}"));
    assert!(entry.contains("repo = \"@local\""), "{entry}");
    assert!(
        entry.contains("location = \"dist/hello-1.0-1.noarch.rpm\""),
        "{entry}"
    );
    assert!(entry.contains(&format!("sha256:{sum}")), "{entry}");
    assert!(entry.contains("requested = \"hello\""), "{entry}");
    assert!(
        lock.contains("local = [\"dist/hello-*.noarch.rpm\"]"),
        "{lock}"
    );
    // The repo dependency was resolved from the fixture repo.
    assert!(
        lock.split("[[package]]")
            .any(|e| e.contains("name = \"busybox\"") && e.contains("repo = \"fedora\"")),
        "{lock}"
    );

    // plan shows it, from @local.
    let plan = run_ok(mb(dir, &["plan", "--json"]).arg(&recipe));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let rows = plan[0]["packages"].as_array().unwrap();
    let hello = rows.iter().find(|r| r["name"] == "hello").unwrap();
    assert_eq!(hello["repo"], "@local", "{hello}");

    let first = build(dir, &recipe, "a.oci.tar", &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let digest = last_line(&first);

    // The local file and the repo dependency are in the layer.
    let layer = treediff::layer(&dir.join("a.oci.tar"));
    let script = &layer["usr/bin/hello"];
    assert_eq!(script.kind, 'f');
    assert_eq!(script.mode & 0o777, 0o755);
    assert_eq!(
        script.content,
        treediff::sha256(b"#!/bin/sh\necho hello from local\n")
    );
    assert!(
        layer.keys().any(|p| p.ends_with("bin/busybox")),
        "busybox (required by hello) is missing"
    );

    // The SBOM lists it by sha256, with a purl naming the file.
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.oci.tar.spdx.json")).unwrap()).unwrap();
    let pkg = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .expect("hello in the SBOM");
    assert_eq!(pkg["checksums"][0]["checksumValue"], sum.as_str());
    let purl = pkg["externalRefs"][0]["referenceLocator"].as_str().unwrap();
    assert_eq!(
        purl,
        format!("pkg:rpm/local/hello@1.0-1?arch=noarch&checksum=sha256:{sum}&file_name=dist%2Fhello-1.0-1.noarch.rpm")
    );
    assert!(
        pkg["downloadLocation"]
            .as_str()
            .unwrap()
            .ends_with("/dist/hello-1.0-1.noarch.rpm"),
        "{pkg}"
    );
    assert!(
        sbom["creationInfo"]["comment"]
            .as_str()
            .unwrap()
            .contains("@local"),
        "unchecked local RPMs are said so: {}",
        sbom["creationInfo"]["comment"]
    );

    // The provenance has the file by URI and sha256, and says it went unchecked.
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.oci.tar.intoto.json")).unwrap()).unwrap();
    let def = &prov["predicate"]["buildDefinition"];
    let deps = def["resolvedDependencies"].as_array().unwrap();
    let file = deps
        .iter()
        .find(|d| d["name"] == "hello-1.0-1.noarch")
        .expect("hello in the provenance");
    assert!(
        file["uri"]
            .as_str()
            .unwrap()
            .ends_with("/dist/hello-1.0-1.noarch.rpm"),
        "{file}"
    );
    assert_eq!(file["digest"]["sha256"], sum.as_str());
    let local = deps
        .iter()
        .find(|d| d["name"] == "repo:@local:x86_64")
        .expect("@local among the sources");
    assert_eq!(local["annotations"]["gpgcheck"], false);
    assert!(
        def["internalParameters"]["signatureChecksOff"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("@local")),
        "{def}"
    );

    // Rebuilt, and rebuilt offline: the same image.
    let again = build(dir, &recipe, "b.oci.tar", &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(last_line(&again), digest);
    let offline = build(dir, &recipe, "c.oci.tar", &["--offline"]);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(last_line(&offline), digest);
    // Offline without the lock: resolution reads the repo from the cache and
    // the local file from disk, and gives what an online resolution gives
    // (not the locked digest: a build from a lock records the lock's digest).
    let unlocked = build(dir, &recipe, "d.oci.tar", &["--no-lock"]);
    assert!(
        unlocked.status.success(),
        "{}",
        String::from_utf8_lossy(&unlocked.stderr)
    );
    let offline_unlocked = build(dir, &recipe, "d2.oci.tar", &["--offline", "--no-lock"]);
    assert!(
        offline_unlocked.status.success(),
        "{}",
        String::from_utf8_lossy(&offline_unlocked.stderr)
    );
    assert_eq!(last_line(&offline_unlocked), last_line(&unlocked));

    // The same NEVRA rebuilt with other content: the lock is stale, and says which file.
    local_rpm(dir, "hello", "1.0", "busybox", "hello, changed");
    assert_ne!(sha256_file(&rpm), sum);
    fails_with(
        &build(dir, &recipe, "e.oci.tar", &[]),
        &[
            "local RPM dist/hello-1.0-1.noarch.rpm changed since the lock",
            &sum,
            "minibuild lock",
        ],
    );
    fails_with(
        &mb(dir, &["lock"]).arg(&recipe).output().unwrap(),
        &["dist/hello-1.0-1.noarch.rpm changed since the lock"],
    );
    // Gone altogether: named too.
    std::fs::remove_file(&rpm).unwrap();
    fails_with(
        &build(dir, &recipe, "e.oci.tar", &[]),
        &["local RPM dist/hello-1.0-1.noarch.rpm cannot be read"],
    );
}

#[test]
fn a_local_package_wins_over_the_repo_package_of_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Older than the repo's busybox 1.35: priority, not version, decides.
    local_rpm(dir, "busybox", "0.1", "", "local busybox");
    let recipe = recipe(
        dir,
        "install = [\"busybox\"]\nlocal = [\"./dist/busybox-0.1-1.noarch.rpm\"]\nlocal_gpgcheck = false",
    );
    let plan = run_ok(mb(dir, &["plan", "--json", "--no-lock"]).arg(&recipe));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let rows = plan[0]["packages"].as_array().unwrap();
    let busybox: Vec<_> = rows.iter().filter(|r| r["name"] == "busybox").collect();
    assert_eq!(busybox.len(), 1, "{rows:?}");
    assert_eq!(busybox[0]["repo"], "@local");
    assert_eq!(busybox[0]["evr"], "0.1-1");
}

#[test]
fn errors_name_the_local_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plan = |local: &str| {
        let recipe = recipe(dir, &format!("local = [{local}]\nlocal_gpgcheck = false"));
        mb(dir, &["plan", "--no-lock"])
            .arg(&recipe)
            .output()
            .unwrap()
    };
    let good = local_rpm(dir, "hello", "1.0", "busybox", "hi");

    fails_with(
        &plan("\"dist/missing.rpm\""),
        &["dist/missing.rpm", "does not exist"],
    );
    fails_with(
        &plan("\"dist/none-*.rpm\""),
        &["dist/none-*.rpm", "matches no file"],
    );

    std::fs::write(dir.join("dist/notes.rpm"), "not an rpm at all\n").unwrap();
    fails_with(
        &plan("\"dist/notes.rpm\""),
        &["dist/notes.rpm", "is not an RPM file"],
    );

    // A header whose first index entry points far outside its store: the
    // checked reader refuses it before the rpm crate could index with it.
    let mut bytes = std::fs::read(&good).unwrap();
    let sig_entries = u32::from_be_bytes(bytes[96 + 8..96 + 12].try_into().unwrap()) as usize;
    let sig_store = u32::from_be_bytes(bytes[96 + 12..96 + 16].try_into().unwrap()) as usize;
    let sig_len = 16 + 16 * sig_entries + sig_store;
    let main = 96 + sig_len + (8 - sig_len % 8) % 8;
    assert_eq!(bytes[main..main + 4], [0x8e, 0xad, 0xe8, 0x01]);
    bytes[main + 16 + 8..main + 16 + 12].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    std::fs::write(dir.join("dist/damaged.rpm"), &bytes).unwrap();
    fails_with(
        &plan("\"dist/damaged.rpm\""),
        &["dist/damaged.rpm", "damaged header", "outside"],
    );
    // Truncated inside the header: damaged too, not a panic.
    let whole = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("dist/short.rpm"), &whole[..main + 40]).unwrap();
    fails_with(
        &plan("\"dist/short.rpm\""),
        &["dist/short.rpm", "damaged header"],
    );

    let arm = local_rpm_for(dir, "armonly", "1.0", "", "arm", "aarch64");
    assert!(arm.is_file());
    fails_with(
        &plan("\"dist/armonly-1.0-1.aarch64.rpm\""),
        &["armonly-1.0-1.aarch64.rpm", "built for aarch64", "x86_64"],
    );

    local_rpm(dir, "hello", "2.0", "busybox", "hi again");
    fails_with(
        &plan("\"dist/hello-1.0-1.noarch.rpm\", \"dist/hello-2.0-1.noarch.rpm\""),
        &[
            "dist/hello-1.0-1.noarch.rpm",
            "dist/hello-2.0-1.noarch.rpm",
            "both package `hello`",
        ],
    );
}

/// A throwaway signing key in `dir/gnupg`: `(GNUPGHOME, fingerprint, public key file)`.
fn signing_key(dir: &Path) -> (PathBuf, String, PathBuf) {
    require_tool("gpg");
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = || {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &home)
            .args(["--batch", "--quiet", "--no-tty"]);
        c
    };
    run_ok(gpg().args([
        "--passphrase",
        "",
        "--quick-gen-key",
        "local rpm test <local@minibuild.invalid>",
        "rsa2048",
        "sign",
        "never",
    ]));
    let listing = run_ok(gpg().args(["--with-colons", "--list-keys", "local@minibuild.invalid"]));
    let fpr = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|l| l.starts_with("fpr"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();
    let public = dir.join("local-key.asc");
    let exported = run_ok(gpg().args(["--armor", "--export", &fpr]));
    std::fs::write(&public, exported.stdout).unwrap();
    (home, fpr, public)
}

#[test]
fn local_signatures_are_checked_like_a_repos() {
    require_tool("rpmsign");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rpm = local_rpm(dir, "hello", "1.0", "busybox", "signed hello");
    let (home, fpr, public) = signing_key(dir);
    run_ok(
        Command::new("rpmsign")
            .arg("--define")
            .arg(format!("__gpg {}", "/usr/bin/gpg"))
            .arg("--define")
            .arg(format!("_gpg_name {fpr}"))
            .arg("--define")
            .arg(format!("_gpg_path {}", home.display()))
            .arg("--addsign")
            .arg(&rpm)
            .env("GNUPGHOME", &home),
    );

    // Checked with a key that did not sign it (the signed fixtures' RSA key): refused.
    let known = signed_fixtures().join("keys/rsa.asc");
    let recipe_with = |key: &Path| {
        recipe(
            dir,
            &format!(
                "local = [\"dist/hello-1.0-1.noarch.rpm\"]\nlocal_gpgkey = \"{}\"",
                key.display()
            ),
        )
    };
    let r = recipe_with(&known);
    fails_with(
        &build(dir, &r, "bad.oci.tar", &["--no-lock"]),
        &[
            "local RPM dist/hello-1.0-1.noarch.rpm",
            &fpr[fpr.len() - 16..],
        ],
    );
    assert!(!dir.join("bad.oci.tar").exists());
    // No key and no local_gpgcheck = false: refused before anything is read.
    let keyless = recipe(dir, "local = [\"dist/hello-1.0-1.noarch.rpm\"]");
    fails_with(
        &mb(dir, &["plan", "--no-lock"])
            .arg(&keyless)
            .output()
            .unwrap(),
        &["packages.local", "no key", "local_gpgkey"],
    );

    // With the key that signed it: built, and the signature counted.
    let r = recipe_with(&public);
    let ok = build(dir, &r, "good.oci.tar", &["--no-lock"]);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(stderr.contains("1 of "), "{stderr}");
    let layer = treediff::layer(&dir.join("good.oci.tar"));
    assert!(layer.contains_key("usr/bin/hello"));
}
