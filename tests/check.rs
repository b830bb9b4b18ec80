//! `minibuild check IMAGE` and the post-build check on real images.

mod common;

use std::path::Path;

use common::*;

fn recipe_with(dir: &Path, install: &str, options: &str) -> std::path::PathBuf {
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [{install}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n[options]\n{options}",
            fixture_file_url()
        ),
    )
    .unwrap();
    path
}

#[test]
fn hardened_image_passes_and_kept_setuid_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    // Default hardening: mount/umount lose their setuid bit, the check is clean.
    let recipe = recipe_with(tmp.path(), "\"util-linux-core\", \"bash\"", "");
    let good = tmp.path().join("good.oci.tar");
    let built = run_ok(
        minibuild()
            .arg(&recipe)
            .arg("-o")
            .arg(&good)
            .arg("--cache-dir")
            .arg(&cache)
            .env("CI", "1"),
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(
        stderr.contains("cleared setuid/setgid on /usr/bin/mount (was 4755)"),
        "{stderr}"
    );
    assert!(!stderr.contains("check:"), "unexpected findings: {stderr}");
    let checked = run_ok(minibuild().arg("check").arg(&good));
    // The digest and the path count follow the fixtures' Debian packages.
    let mut settings = snapshot::stable(&[(tmp.path(), "[TMP]")]);
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"\(\d+ paths\)", "([N] paths)");
    settings.bind(|| insta::assert_snapshot!("check_clean", snapshot::stdout_text(&checked)));

    // strip_setuid = false keeps the bits: the check names each file, `check` fails, --strict fails the build.
    let recipe = recipe_with(
        tmp.path(),
        "\"util-linux-core\", \"bash\"",
        "strip_setuid = false\n",
    );
    let kept = tmp.path().join("kept.oci.tar");
    let built = run_ok(
        minibuild()
            .arg(&recipe)
            .arg("-o")
            .arg(&kept)
            .arg("--cache-dir")
            .arg(&cache)
            .env("CI", "1"),
    );
    assert!(
        String::from_utf8_lossy(&built.stderr).contains("check: /usr/bin/mount: is setuid (4755)")
    );
    let res = minibuild().arg("check").arg(&kept).output().unwrap();
    assert_eq!(res.status.code(), Some(1), "problems found: exit 1");
    insta::assert_snapshot!("check_setuid_kept", snapshot::stdout_text(&res));

    let strict = tmp.path().join("strict.oci.tar");
    let res = minibuild()
        .arg(&recipe)
        .arg("-o")
        .arg(&strict)
        .arg("--strict")
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    insta::assert_snapshot!("check_strict_build", snapshot::error_message(&res));
    assert!(!strict.exists(), "a failed strict build leaves no image");
}

/// A clean image passes; `--tls` additionally requires a CA bundle, which this
/// image (no ca-certificates) lacks. Missing libraries are covered by the unit
/// tests in src/check.rs, on real host binaries.
#[test]
fn check_requires_a_ca_bundle_with_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_with(tmp.path(), "\"bash\"", "");
    let out = tmp.path().join("img.oci");
    run_ok(
        minibuild()
            .arg(&recipe)
            .arg("--format")
            .arg("oci")
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    run_ok(minibuild().arg("check").arg(&out));
    // --tls requires a CA bundle, which this image does not have.
    let res = minibuild()
        .arg("check")
        .arg("--tls")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    insta::assert_snapshot!("check_tls_without_ca_bundle", snapshot::stdout_text(&res));
}
