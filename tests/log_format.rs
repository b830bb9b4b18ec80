//! `--log-format json`: every stderr line of a build is one JSON object
//! naming its event, in the order the pipeline runs; stdout still carries
//! only the digest.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// The fixture busybox build, `--log-format FORMAT` given before the
/// subcommand (the flag is global).
fn build(dir: &Path, format: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = minibuild();
    cmd.args(["--log-format", format, "build"])
        .arg(recipe("busybox.toml"))
        .arg("-o")
        .arg(dir.join("busybox.oci.tar"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--baseurl")
        .arg(format!("fedora={}", fixture_file_url()))
        .args(["--no-gpgcheck", "fedora"])
        .args(extra)
        .env("CI", "1");
    run_ok(&mut cmd)
}

fn json_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(v["event"].is_string(), "no \"event\": {line}");
            assert!(v["message"].is_string(), "no \"message\": {line}");
            v
        })
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[test]
fn json_log_is_one_event_per_line_in_pipeline_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = build(tmp.path(), "json", &[]);
    let digest = last_line(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "stdout is the digest only"
    );
    let events = json_lines(&out.stderr);
    let names = names(&events);
    // The stages, in order (other events may come between them).
    let stages = [
        "loading_repo",
        "repo_loaded",
        "resolving",
        "resolved",
        "signatures_unchecked",
        "fetching",
        "fetched",
        "unpacking",
        "unpacked",
        "busybox_links",
        "writing_layer",
        "layer_written",
        "image_written",
        "sbom_written",
        "provenance_written",
    ];
    let mut at = 0;
    for stage in stages {
        at += names[at..]
            .iter()
            .position(|n| *n == stage)
            .unwrap_or_else(|| panic!("no `{stage}` after event {at} in {names:?}"));
    }
    let by_name = |name: &str| events.iter().find(|e| e["event"] == name).unwrap();
    assert_eq!(by_name("image_written")["digest"], digest.as_str());
    assert_eq!(
        by_name("image_written")["path"],
        tmp.path().join("busybox.oci.tar").display().to_string()
    );
    let loaded = by_name("repo_loaded");
    assert_eq!(loaded["repo"], "fedora");
    assert!(loaded["packages"].as_u64().unwrap() > 0, "{loaded}");
    let resolved = by_name("resolved");
    assert_eq!(resolved["arch"], "x86_64");
    assert!(resolved["packages"].as_u64().unwrap() >= 1, "{resolved}");
    // A finished step says how long it took.
    assert!(by_name("fetched")["seconds"].is_f64());
    assert_eq!(by_name("fetched")["downloaded"], resolved["packages"]);
    assert!(by_name("layer_written")["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(by_name("signatures_unchecked")["level"], "warning");

    // The same build again, plain: the same digest, and lines for people.
    let again = build(tmp.path(), "plain", &[]);
    assert_eq!(last_line(&again), digest);
    let plain = String::from_utf8_lossy(&again.stderr);
    assert!(plain.lines().all(|l| !l.starts_with('{')), "{plain}");
    assert!(plain.contains("0 downloaded (0 B), "), "{plain}");

    // Quiet JSON: only what needs attention.
    let quiet = build(tmp.path(), "json", &["--quiet"]);
    let quiet = json_lines(&quiet.stderr);
    assert!(!quiet.is_empty());
    assert!(quiet.iter().all(|e| e["level"] == "warning"), "{quiet:?}");
}

#[test]
fn a_failed_build_ends_its_json_log_with_the_error() {
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
    let out = minibuild()
        .arg(&recipe)
        .args(["--log-format", "json", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let events = json_lines(&out.stderr);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error", "{events:?}");
    assert_eq!(last["level"], "error");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("no-such-package"),
        "{last}"
    );
    assert!(last["causes"].is_array());
    assert!(names(&events).contains(&"repo_loaded"), "{events:?}");
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    let out = minibuild()
        .args(["--log-format", "xml", "plan", "x.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auto") && err.contains("plain") && err.contains("json"),
        "{err}"
    );
}
