//! The CLI's error paths: bad input gets a clear error and leaves nothing behind.

mod common;

use common::*;

#[test]
fn recipe_errors_name_file_line_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("bad.toml");
    std::fs::write(&recipe, "[packages]\ninstall = [\"a\"]\nexlude = []\n").unwrap();
    let out = tmp.path().join("bad.oci.tar");
    let res = minibuild()
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("recipe_unknown_field", snapshot::error_message(&res)));
    assert!(
        res.stdout.is_empty(),
        "nothing on stdout for a failed build"
    );
    assert!(!out.exists(), "no output for a failed build");
}

#[test]
fn missing_package_is_named_and_no_output_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [\"no-such-package\"]\n",
            fixture_file_url()
        ),
    )
    .unwrap();
    let out = tmp.path().join("r.oci.tar");
    let res = minibuild()
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("unknown_package", snapshot::error_message(&res)));
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "r.toml" && n != "cache")
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written files left: {leftovers:?}"
    );
}

#[test]
fn unreachable_repo_names_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let res = minibuild()
        .arg(recipe("busybox.toml"))
        .arg("-o")
        .arg(tmp.path().join("x.tar"))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg("--baseurl")
        .arg("fedora=http://127.0.0.1:9/nothing/")
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("unreachable_repo", snapshot::error_message(&res)));
}

#[test]
fn every_shipped_recipe_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "toml") {
            minibuild::recipe::load(&e.path()).unwrap_or_else(|err| panic!("{err:#}"));
            n += 1;
        }
    }
    assert!(n >= 3, "expected the example recipes, found {n}");
}

#[test]
fn cache_info_and_clean_by_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let build = |out: &str| {
        run_ok(
            build_cmd(&recipe("busybox.toml"), &tmp.path().join(out), &cache)
                .arg("--baseurl")
                .arg(format!("fedora={}", fixture_file_url()))
                .args(["--no-gpgcheck", "fedora"]),
        )
    };
    let cache_cmd = |args: &[&str]| {
        let out = run_ok(
            minibuild()
                .arg("cache")
                .args(args)
                .arg("--cache-dir")
                .arg(&cache),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    build("a.tar");
    assert_eq!(cache_cmd(&["dir"]).trim(), cache.display().to_string());
    let info = cache_cmd(&["info"]);
    let files = |bucket: &str| -> u64 {
        let line = info
            .lines()
            .find(|l| l.starts_with(bucket))
            .unwrap_or_else(|| panic!("no {bucket} line in:\n{info}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(files("rpms") >= 1, "{info}");
    assert_eq!(files("layers"), 2, "one layer: blob + json\n{info}");

    let cleaned = cache_cmd(&["clean", "--only", "layers"]);
    assert!(cleaned.starts_with("removed 2 files"), "{cleaned}");
    let info = cache_cmd(&["info"]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("layers") && l.split_whitespace().nth(1) == Some("0")),
        "{info}"
    );
    // Without its layer entry the next build compresses again; the RPMs are still cached.
    let again = build("b.tar");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("compressed blob reused"), "{stderr}");

    let bad = minibuild()
        .args(["cache", "clean", "--only", "blobs", "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown cache bucket `blobs`"));
    cache_cmd(&["clean"]);
    assert!(!cache.join("v1/rpms").exists() && !cache.join("v1/layers").exists());
}

/// The README's one-line way to try an example recipe on the fixture repo:
/// `--baseurl` points one repo there, `--disablerepo` leaves the other out.
#[test]
fn disablerepo_leaves_a_recipe_repo_out() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = |extra: &[&str]| {
        minibuild()
            .arg("plan")
            .arg(recipe("nginx.toml"))
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg("--baseurl")
            .arg(format!("fedora={}", fixture_file_url()))
            .args(["--no-gpgcheck", "fedora"])
            .args(extra)
            .env("CI", "1")
            .output()
            .unwrap()
    };
    let ok = plan(&["--disablerepo", "updates"]);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(
        !stderr.contains("dl.fedoraproject.org") && !stderr.contains("of updates"),
        "the disabled repo was read: {stderr}"
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("nginx"));

    let bad = plan(&["--disablerepo", "updatez"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("--disablerepo names repo `updatez`") && stderr.contains("fedora, updates"),
        "{stderr}"
    );
}
