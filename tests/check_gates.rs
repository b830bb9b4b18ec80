//! CI gates: `minibuild check IMAGE` with gate flags or `--recipe`, and a
//! recipe's `[check]` table failing `build`; dive's wasted bytes measured
//! on a real two-layer image (a second layer added with umoci).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// Exit status of a failed gate (README, "Gates").
const GATE_FAILED: i32 = 3;

fn recipe_with(dir: &Path, install: &str, extra: &str) -> PathBuf {
    let path = dir.join("r.toml");
    fs::write(
        &path,
        format!(
            "[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [{install}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n{extra}",
            fixture_file_url()
        ),
    )
    .unwrap();
    path
}

fn build(recipe: &Path, out: &Path, format: &str) -> Output {
    minibuild()
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .arg("--format")
        .arg(format)
        .arg("--cache-dir")
        .arg(out.parent().unwrap().join("cache"))
        .env("CI", "1")
        .output()
        .unwrap()
}

/// Sizes and counts follow the fixture packages; the message's shape is what is pinned.
fn settings(tmp: &Path) -> insta::Settings {
    let mut s = snapshot::stable(&[(tmp, "[TMP]")]);
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    s.add_filter(r"\d+(\.\d+)? (B|kB|MB|GB)\b", "[SIZE]");
    s.add_filter(r"\d+ files > (\d+) by \d+", "[N] files > $1 by [N]");
    s
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn recipe_gates_fail_the_build_keep_the_image_and_check_says_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_with(
        tmp.path(),
        "\"bash\"",
        "[check]\nmax_size = \"1MB\"\nmax_files = 10\nforbid_packages = [\"bash*\", \"dnf*\"]\nrequire_non_root = true\n",
    );
    let img = tmp.path().join("app.oci.tar");
    let res = build(&recipe, &img, "oci-archive");
    assert_eq!(res.status.code(), Some(GATE_FAILED), "{res:?}");
    assert!(img.is_file(), "a failed gate keeps the image");
    assert_eq!(stdout(&res), "", "no digest is printed for a failed build");
    settings(tmp.path())
        .bind(|| insta::assert_snapshot!("build_gate_failure", snapshot::error_message(&res)));

    // The same gates from the recipe, on the image read back.
    let res = minibuild()
        .arg("check")
        .arg(&img)
        .arg("--recipe")
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(GATE_FAILED), "{res:?}");
    settings(tmp.path())
        .bind(|| insta::assert_snapshot!("check_gate_failure", snapshot::stdout_text(&res)));

    // Flags win over the recipe: a larger budget passes that gate; the others still fail.
    let res = minibuild()
        .arg("check")
        .arg(&img)
        .arg("--recipe")
        .arg(&recipe)
        .args(["--max-size", "1GiB", "--max-files", "100000"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(GATE_FAILED));
    let out = stdout(&res);
    assert!(
        !out.contains("max_size") && !out.contains("max_files"),
        "{out}"
    );
    assert!(
        out.contains("gate failed: forbid_packages: `bash*` matches installed bash"),
        "{out}"
    );

    // Within every limit: exit 0, and the ok line shows what was measured.
    let res = minibuild()
        .arg("check")
        .arg(&img)
        .args(["--max-size", "1GiB", "--forbid-package", "dnf*"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let out = stdout(&res);
    assert!(
        out.contains(": ok (") && out.contains("max_size: "),
        "{out}"
    );
    assert!(
        out.contains("forbid_packages: ") && out.contains(" installed packages"),
        "{out}"
    );

    // A bad --recipe cannot be checked against: 2, as for an unreadable image.
    let text = fs::read_to_string(&recipe).unwrap();
    fs::write(
        tmp.path().join("bad.toml"),
        text.replace("max_size = \"1MB\"", "max_size = \"big\""),
    )
    .unwrap();
    let res = minibuild()
        .arg("check")
        .arg(&img)
        .arg("--recipe")
        .arg(tmp.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2), "{res:?}");
    assert!(String::from_utf8_lossy(&res.stderr).contains("check.max_size: `big` is not a size"));
}

#[test]
fn passing_gates_are_logged_and_unrecorded_packages_are_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_with(
        tmp.path(),
        "\"bash\"",
        "[image]\nuser = \"1000\"\n[options]\nrpmdb = false\n[check]\nforbid_packages = [\"dnf*\"]\nrequire_non_root = true\nlowest_efficiency = \"99%\"\n",
    );
    let img = tmp.path().join("app.oci");
    let res = build(&recipe, &img, "oci");
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains(
            "[check] gates passed for linux/amd64: require_non_root: 1000, lowest_efficiency: 100%"
        ),
        "{err}"
    );
    assert!(
        err.contains("[check] linux/amd64: forbid_packages: not checked: the image records no installed packages"),
        "{err}"
    );
    // A --format the gates cannot read back is refused before the build.
    let res = build(&recipe, &tmp.path().join("d.tar"), "docker-archive");
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("use --format oci-archive or oci"));
}

#[test]
fn check_errors_outrank_failed_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_with(
        tmp.path(),
        "\"util-linux-core\", \"bash\"",
        "[options]\nstrip_setuid = false\n",
    );
    let img = tmp.path().join("kept.oci.tar");
    let res = build(&recipe, &img, "oci-archive");
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let res = minibuild()
        .arg("check")
        .arg(&img)
        .args(["--max-files", "1"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1), "errors first: exit 1");
    let out = stdout(&res);
    assert!(out.contains("error: /usr/bin/mount: is setuid"), "{out}");
    assert!(out.contains("gate failed: max_files: "), "{out}");
}

/// A real two-layer image: minibuild's layer, then umoci's, which replaces
/// /usr/bin/bash and removes /etc/bash.bashrc. Wasted bytes are exactly
/// the lower versions' sizes.
#[test]
fn wasted_bytes_and_efficiency_on_a_two_layer_image() {
    require_tool("umoci");
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe_with(tmp.path(), "\"bash\"", "");
    let img = tmp.path().join("app.oci");
    let res = build(&recipe, &img, "oci");
    assert_eq!(res.status.code(), Some(0), "{res:?}");
    let bundle = tmp.path().join("bundle");
    let image_ref = format!("{}:latest", img.display());
    run_ok(
        std::process::Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image_ref])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let replaced = rootfs.join("usr/bin/bash");
    let removed = rootfs.join("etc/bash.bashrc");
    let wasted = fs::metadata(&replaced).unwrap().len() + fs::metadata(&removed).unwrap().len();
    let new_bash = b"#!/bin/true\n";
    fs::write(&replaced, new_bash).unwrap();
    fs::remove_file(&removed).unwrap();
    run_ok(
        std::process::Command::new("umoci")
            .args(["repack", "--image", &image_ref])
            .arg(&bundle),
    );

    let check = |args: &[String]| {
        minibuild()
            .arg("check")
            .arg(&img)
            .args(args)
            .output()
            .unwrap()
    };
    // The exact figure: at the limit passes, one byte under fails "by 1 B".
    let at = check(&["--highest-wasted-bytes".into(), wasted.to_string()]);
    assert_eq!(at.status.code(), Some(0), "{at:?}");
    let under = check(&["--highest-wasted-bytes".into(), (wasted - 1).to_string()]);
    assert_eq!(under.status.code(), Some(GATE_FAILED), "{under:?}");
    assert!(stdout(&under).ends_with(" by 1 B\n"), "{}", stdout(&under));

    // Efficiency = 1 - wasted/total, and nearly all of the user layer's
    // bytes are waste: umoci's layer holds only the new 12-byte bash.
    let res = check(&[
        "--lowest-efficiency".into(),
        "100%".into(),
        "--highest-user-wasted-percent".into(),
        "50%".into(),
    ]);
    assert_eq!(res.status.code(), Some(GATE_FAILED));
    let out = stdout(&res);
    let user_line = out
        .lines()
        .find(|l| l.contains("highest_user_wasted_percent"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        user_line.ends_with(&format!(
            "wasted of {} B above the base layer)",
            new_bash.len()
        )),
        "{user_line}"
    );
    assert!(out.contains("gate failed: lowest_efficiency: "), "{out}");
    let mut s = settings(tmp.path());
    s.add_filter(r"\d+(\.\d+)?%", "[PCT]");
    s.bind(|| insta::assert_snapshot!("two_layer_gate_failure", out));
}
