//! End to end: `arch = ["x86_64", "aarch64"]` gives one OCI image index with
//! a manifest per platform that skopeo resolves per architecture, the same
//! bytes on every build, and a clear refusal for docker-archive.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// busybox for both fixture architectures, straight from the file:// repo.
fn write_recipe(dir: &Path) -> PathBuf {
    let path = dir.join("multi.toml");
    std::fs::write(
        &path,
        format!(
            r#"[image]
name = "busybox"
tag = "1.35"
arch = ["x86_64", "aarch64"]
entrypoint = ["/usr/sbin/busybox"]
cmd = ["sh"]
version = "1.35.0"
source = "https://git.example/recipes"
revision = "0123abc"
healthcheck = {{ test = ["CMD", "/usr/sbin/busybox", "true"], interval = "30s", timeout = "5s", retries = 3, start_period = "1m" }}

[[repo]]
name = "fedora"
baseurl = "{}"
gpgcheck = false

[packages]
install = ["busybox"]
"#,
            fixture_file_url()
        ),
    )
    .unwrap();
    path
}

fn build(recipe: &Path, out: &Path, cache: &Path, format: &str) -> std::process::Output {
    build_cmd(recipe, out, cache)
        .arg("--format")
        .arg(format)
        .output()
        .unwrap()
}

/// The ELF `e_machine` of a file: 62 is x86-64, 183 is AArch64.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    require_tool("skopeo");
    let out = run_ok(Command::new("skopeo").args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_arches_make_one_index_that_resolves_per_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path());
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("multi.oci.tar");
    let first = build(&recipe, &out, &cache, "oci-archive");
    assert!(first.status.success(), "{first:?}");
    let digest = last_line(&first);
    let archive = format!("oci-archive:{}", out.display());

    // The tag points at an image index listing both platforms.
    let index = skopeo_json(&["inspect", "--raw", &archive]);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms,
        [
            &serde_json::json!({"architecture": "amd64", "os": "linux"}),
            &serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
        ]
    );
    for (key, value) in [
        ("title", "busybox"),
        ("version", "1.35.0"),
        ("source", "https://git.example/recipes"),
        ("revision", "0123abc"),
    ] {
        assert_eq!(
            index["annotations"][format!("org.opencontainers.image.{key}")],
            value,
            "index annotation {key}"
        );
    }
    assert_eq!(
        digest,
        format!(
            "sha256:{}",
            sha256_hex(&run_ok(Command::new("skopeo").args(["inspect", "--raw", &archive])).stdout)
        ),
        "the printed digest is the index's"
    );

    // skopeo picks the arm64 manifest, whose layer holds the aarch64 busybox.
    let arm = skopeo_json(&["inspect", "--override-arch", "arm64", &archive]);
    assert_eq!(arm["Architecture"], "arm64");
    let arm_rootfs = unpack_archive_for(&out, tmp.path(), Some("arm64"));
    let arm_layout = tmp.path().join("layout-arm64");
    assert_eq!(
        elf_machine(&arm_rootfs.join("usr/sbin/busybox")),
        183,
        "aarch64 busybox in the arm64 image"
    );
    // The platform manifest carries the annotations too.
    let layout_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(arm_layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = layout_index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(arm_layout.join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        "0123abc"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );

    // The healthcheck, as Docker and Podman read it: nanosecond durations.
    // (`--raw`: without it skopeo re-marshals through the OCI config type,
    // which has no Healthcheck field.)
    let config = skopeo_json(&[
        "inspect",
        "--config",
        "--raw",
        "--override-arch",
        "arm64",
        &archive,
    ]);
    assert_eq!(
        config["config"]["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD", "/usr/sbin/busybox", "true"],
            "Interval": 30_000_000_000u64,
            "Timeout": 5_000_000_000u64,
            "StartPeriod": 60_000_000_000u64,
            "Retries": 3,
        })
    );
    // The history names what was installed, for this arch.
    let created_by = config["history"][0]["created_by"].as_str().unwrap();
    assert!(
        created_by.contains("install busybox-") && created_by.contains(".aarch64"),
        "{created_by}"
    );

    // The amd64 one (the host's) runs.
    let amd = skopeo_json(&["inspect", "--override-arch", "amd64", &archive]);
    assert_eq!(amd["Architecture"], "amd64");
    assert_ne!(amd["Layers"], arm["Layers"]);
    let rootfs = unpack_archive(&out, tmp.path());
    assert_eq!(elf_machine(&rootfs.join("usr/sbin/busybox")), 62);
    let hello = run_in(&rootfs, &["/usr/sbin/busybox", "echo", "hello"]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");

    // Built again (warm cache, new output): the same index digest.
    let again = build(
        &recipe,
        &tmp.path().join("again.tar"),
        &cache,
        "oci-archive",
    );
    assert!(again.status.success(), "{again:?}");
    assert_eq!(last_line(&again), digest);
}

#[test]
fn docker_archive_refuses_two_arches() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path());
    let out = tmp.path().join("multi.docker.tar");
    let result = build(&recipe, &out, &tmp.path().join("cache"), "docker-archive");
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("docker-archive holds one architecture")
            && stderr.contains("x86_64, aarch64")
            && stderr.contains("use --format oci or oci-archive"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written on refusal");
}

#[test]
fn rootfs_refuses_two_arches_before_downloading() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path());
    let out = tmp.path().join("multi.oci.tar");
    let cache = tmp.path().join("cache");
    let rootfs = tmp.path().join("root");
    let result = build_cmd(&recipe, &out, &cache)
        .arg("--rootfs")
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("--rootfs writes one tree") && stderr.contains("x86_64, aarch64"),
        "{stderr}"
    );
    assert!(!out.exists() && !rootfs.exists());
    assert!(
        !cache.join("v1/rpms").exists(),
        "no package was downloaded before the refusal"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
