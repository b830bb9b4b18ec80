//! `minibuild build a.toml b.toml …`: several recipes in one run share the
//! repo metadata and the RPMs, a broken recipe fails alone, and each image
//! is the one its recipe builds on its own.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::server::{Handled, Response};
use common::{fixtures, minibuild};

/// A recipe for the fixture repo at `baseurl`, installing `packages`.
fn write_recipe(dir: &Path, file: &str, repo: &str, baseurl: &str, packages: &[&str]) -> PathBuf {
    let path = dir.join(file);
    let install: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "[[repo]]\nname = \"{repo}\"\nbaseurl = \"{baseurl}\"\ngpgcheck = false\n\
             [packages]\ninstall = [{}]\n",
            install.join(", ")
        ),
    )
    .unwrap();
    path
}

fn build(args: &[&Path], extra: &[&str], cache: &Path) -> Output {
    let mut cmd = minibuild();
    cmd.arg("build")
        .args(args)
        .args(extra)
        .arg("--cache-dir")
        .arg(cache)
        .env("CI", "1");
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Each recipe built alone: its digest (a fresh cache per recipe).
fn alone(recipe: &Path, out: &Path, cache: &Path) -> String {
    let res = build(&[recipe], &["-o", out.to_str().unwrap()], cache);
    assert!(res.status.success(), "{}", text(&res.stderr));
    common::last_line(&res)
}

#[test]
fn three_recipes_one_broken_share_metadata_and_rpms() {
    let root = fixtures().join("repo");
    let served = root.clone();
    let server = Handled::start(move |r| Response::file(&served, r.path()));
    let baseurl = format!("{}/$basearch/", server.url);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recipes");
    std::fs::create_dir(&dir).unwrap();
    // Two names for the one repo: shared all the same.
    let a = write_recipe(
        &dir,
        "a.toml",
        "fx",
        &baseurl,
        &["bash", "coreutils-single"],
    );
    let b = write_recipe(&dir, "b.toml", "fedora", &baseurl, &["bash", "zlib"]);
    let broken = write_recipe(&dir, "broken.toml", "fx", &baseurl, &["no-such-package"]);

    let want_a = alone(&a, &tmp.path().join("alone-a.tar"), &tmp.path().join("c1"));
    let want_b = alone(&b, &tmp.path().join("alone-b.tar"), &tmp.path().join("c2"));
    let before = server.requests().len();

    let outdir = tmp.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let res = build(
        &[&a, &broken, &b],
        &[
            "--output-dir",
            outdir.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &tmp.path().join("c3"),
    );
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert_eq!(
        text(&res.stdout),
        format!("{} {want_a}\n{} {want_b}\n", a.display(), b.display()),
        "one line per built recipe, in the order given; {stderr}"
    );
    assert!(
        stderr.contains(&format!("1 of 3 recipes failed: {}", broken.display()))
            && stderr.contains("no-such-package"),
        "stderr names the failed recipe and why: {stderr}"
    );
    // The images are the ones each recipe builds alone.
    for (name, want) in [("a", &want_a), ("b", &want_b)] {
        let image = outdir.join(format!("{name}.oci.tar"));
        let check = minibuild().arg("check").arg(&image).output().unwrap();
        assert!(
            text(&check.stdout).contains(want.as_str()),
            "{}: {}",
            image.display(),
            text(&check.stdout)
        );
        assert!(outdir.join(format!("{name}.oci.tar.spdx.json")).is_file());
    }
    // Each progress line says which recipe it is about.
    let resolved: Vec<String> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "resolving")
        .map(|v| v["recipe"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut resolved_sorted = resolved.clone();
    resolved_sorted.sort();
    let mut labels: Vec<String> = [&a, &b, &broken]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    labels.sort();
    assert_eq!(resolved_sorted, labels, "{stderr}");

    // One fetch of each file, whichever recipes needed it.
    let mut fetched: BTreeMap<String, usize> = BTreeMap::new();
    for r in &server.requests()[before..] {
        *fetched.entry(r.path().to_string()).or_default() += 1;
    }
    let twice: Vec<_> = fetched.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");
    assert_eq!(fetched.get("/x86_64/repodata/repomd.xml"), Some(&1));
    assert!(
        fetched.keys().any(|p| p.contains("primary.xml")),
        "{fetched:?}"
    );
    for shared in ["bash-", "glibc-2", "zlib-"] {
        let n = fetched
            .keys()
            .filter(|p| p.starts_with(&format!("/x86_64/{shared}")) && p.ends_with(".rpm"))
            .count();
        assert_eq!(n, 1, "{shared}: {fetched:?}");
    }
}

#[test]
fn a_directory_is_its_recipes_and_a_bad_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir(&dir).unwrap();
    let url = common::fixture_file_url();
    let one = write_recipe(&dir, "one.toml", "fx", &url, &["zlib"]);
    std::fs::write(dir.join("notes.toml"), "this is = not [ a recipe").unwrap();
    std::fs::write(dir.join("README.md"), "not a toml file").unwrap();
    // --output-dir is created, parents too.
    let outdir = tmp.path().join("out").join("images");
    let res = build(
        &[&dir],
        &["--output-dir", outdir.to_str().unwrap()],
        &tmp.path().join("cache"),
    );
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    let stdout = text(&res.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{} sha256:", one.display())),
        "{stdout}"
    );
    assert!(outdir.join("one.oci.tar").is_file());
    let notes = dir.join("notes.toml").display().to_string();
    assert!(
        stderr.contains(&format!("{notes} was not built"))
            && stderr.contains(&format!("1 of 2 recipes failed: {notes}")),
        "{stderr}"
    );
}

#[test]
fn flags_naming_one_file_are_refused_with_several_recipes() {
    let tmp = tempfile::tempdir().unwrap();
    let url = common::fixture_file_url();
    let a = write_recipe(tmp.path(), "a.toml", "fx", &url, &["zlib"]);
    let b = write_recipe(tmp.path(), "b.toml", "fx", &url, &["bash"]);
    let cache = tmp.path().join("cache");
    for (flags, says) in [
        (&["-o", "x.tar"][..], "--output-dir"),
        (&["--sbom", "x.json"][..], "--sbom names one file"),
        (&["--push", "127.0.0.1:9/app:1"][..], "{name}"),
    ] {
        let res = build(&[&a, &b], flags, &cache);
        let stderr = text(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert!(res.stdout.is_empty());
    }
    assert!(!cache.exists(), "refused before any work");
    // Two recipes whose images would land on one path.
    let same = tmp.path().join("other");
    std::fs::create_dir(&same).unwrap();
    let a2 = write_recipe(&same, "a.toml", "fx", &url, &["bash"]);
    let res = build(&[&a, &a2], &[], &cache);
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("would both write a.oci.tar"), "{stderr}");
}
