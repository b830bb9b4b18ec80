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
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains(&format!("{}:3:1", recipe.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `exlude`"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
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
            "[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\n[packages]\ninstall = [\"no-such-package\"]\n",
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
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("no-such-package"), "{stderr}");
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
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("http://127.0.0.1:9/nothing/repodata/repomd.xml"),
        "{stderr}"
    );
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
