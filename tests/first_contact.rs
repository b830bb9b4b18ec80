//! End to end: what a newcomer hits first (issue 15). A docker-archive that
//! skopeo and podman load.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The busybox recipe against the fixture repo at `baseurl`, `--format format`.
fn build(out: &Path, cache: &Path, baseurl: &str, format: &str) -> Command {
    build_recipe(&recipe("busybox.toml"), out, cache, baseurl, format)
}

fn build_recipe(recipe: &Path, out: &Path, cache: &Path, baseurl: &str, format: &str) -> Command {
    let mut cmd = build_cmd(recipe, out, cache);
    cmd.args(["--format", format, "--no-sbom", "--no-provenance"])
        .arg("--baseurl")
        .arg(format!("fedora={baseurl}"));
    cmd
}

#[test]
fn docker_archive_of_busybox_loads_with_skopeo_and_podman() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("busybox.docker.tar");
    let built = run_ok(&mut build(
        &out,
        &tmp.path().join("cache"),
        &fixture_file_url(),
        "docker-archive",
    ));
    let digest = last_line(&built);
    assert!(digest.starts_with("sha256:"), "{digest}");

    // docker load reads RepoTags: the recipe's name and tag, once each.
    let mut ar = tar::Archive::new(fs::File::open(&out).unwrap());
    let manifest: serde_json::Value = ar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap() == Path::new("manifest.json"))
        .map(|e| serde_json::from_reader(e).unwrap())
        .expect("manifest.json in the archive");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["busybox:latest"])
    );

    // skopeo reads it (into tmp/layout) and the layer unpacks to a busybox that runs.
    let rootfs = unpack_image(
        &format!("docker-archive:{}", out.display()),
        tmp.path(),
        None,
    );
    let hello = run_in(&rootfs, &["/usr/sbin/busybox", "echo", "loaded"]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "loaded\n");
    let layout = tmp.path().join("layout");
    let inspect = |what: &[&str]| -> serde_json::Value {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect")
            .args(what)
            .arg(format!("oci:{}:img", layout.display()));
        serde_json::from_slice(&run_ok(&mut cmd).stdout).unwrap()
    };
    let image = inspect(&[]);
    assert_eq!(image["Architecture"], "amd64");
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["Layers"].as_array().map(Vec::len), Some(1));
    let config = inspect(&["--config"]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/sbin/busybox"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );

    // podman load tags it as the recipe says; its image ID is the config digest.
    require_tool("podman");
    let store = tmp.path().join("podman");
    let podman = |args: &[&str]| -> Output {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args)
            .env("XDG_RUNTIME_DIR", store.join("xdg"))
            .env("XDG_CONFIG_HOME", store.join("config"))
            .env("HOME", &store);
        run_ok(&mut cmd)
    };
    let loaded = podman(&["load", "--quiet", "--input", out.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("busybox:latest"),
        "{}",
        String::from_utf8_lossy(&loaded.stdout)
    );
    let inspect = podman(&["image", "inspect", "busybox:latest"]);
    let image: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(image[0]["Architecture"], "amd64");
    assert_eq!(
        image[0]["Config"]["Entrypoint"],
        serde_json::json!(["/usr/sbin/busybox"])
    );
    assert_eq!(
        format!("{}.json", image[0]["Id"].as_str().unwrap()),
        manifest[0]["Config"].as_str().unwrap(),
        "the image ID is the archive's config digest"
    );
}
