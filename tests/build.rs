//! End to end: `minibuild build` turns the fixture repository into images that
//! skopeo and umoci accept and that run.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::server::Server;
use common::*;

fn build(recipe: &Path, out: &Path, cache: &Path, baseurl: &str) -> std::process::Output {
    run_ok(
        build_cmd(recipe, out, cache)
            .arg("--baseurl")
            .arg(format!("fedora={baseurl}"))
            // The fixture repo is unsigned; the recipes name Fedora's key.
            .args(["--no-gpgcheck", "fedora"]),
    )
}

#[test]
fn busybox_builds_over_http_and_runs() {
    let server = Server::serve(&fixtures());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("busybox.oci.tar");
    let result = build(
        &recipe("busybox.toml"),
        &out,
        &tmp.path().join("cache"),
        &format!("{}/repo/$basearch/", server.url),
    );
    let digest = last_line(&result);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "last line: {digest:?}"
    );

    require_tool("skopeo");
    let inspect = run_ok(
        std::process::Command::new("skopeo")
            .args(["inspect", &format!("oci-archive:{}", out.display())]),
    );
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        json["Digest"],
        digest.as_str(),
        "skopeo sees the digest we printed"
    );
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(
        json["Layers"].as_array().map(Vec::len),
        Some(1),
        "single layer"
    );

    let rootfs = unpack_archive(&out, tmp.path());
    let hello = run_in(&rootfs, &["/usr/sbin/busybox", "echo", "hello"]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");
    assert!(
        !rootfs.join("usr/bin/rpm").exists(),
        "no package manager in the image (not even busybox's rpm applet)"
    );
    busybox_links_match_list_full(&rootfs);
}

/// `busybox_links = true` (recipes/busybox.toml): the applet links are
/// exactly what `--list-full` of the image's own busybox names (less the
/// `rpm` applet, removed with the package manager), all relative, and they
/// work: `/bin/ls`, `/bin/sh -c` with a pipe.
fn busybox_links_match_list_full(rootfs: &Path) {
    let list = run_in(rootfs, &["/usr/sbin/busybox", "--list-full"]);
    let want: std::collections::BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| *l != "usr/bin/rpm")
        .map(str::to_string)
        .collect();
    assert!(want.contains("bin/sh") && want.len() > 100, "{want:?}");
    let mut links = std::collections::BTreeSet::new();
    let mut dirs = vec![rootfs.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ty = e.file_type().unwrap();
            let rel = e
                .path()
                .strip_prefix(rootfs)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if ty.is_dir() {
                dirs.push(e.path());
            } else if ty.is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                assert!(target.is_relative(), "/{rel} → {}", target.display());
                assert_eq!(
                    std::fs::canonicalize(e.path()).unwrap(),
                    std::fs::canonicalize(rootfs.join("usr/sbin/busybox")).unwrap(),
                    "/{rel}"
                );
                links.insert(rel);
            }
        }
    }
    assert_eq!(links, want);
    let ls = run_in(rootfs, &["/bin/ls", "/usr/sbin"]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls.lines().any(|l| l == "busybox") && ls.lines().any(|l| l == "chroot"),
        "{ls}"
    );
    let sh = run_in(rootfs, &["/bin/sh", "-c", "echo a b c | wc -w"]);
    assert_eq!(String::from_utf8_lossy(&sh.stdout).trim(), "3");
}

#[test]
fn distroless_base_runs_dynamically_linked_bash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("base.oci.tar");
    let result = build(
        &recipe("distroless-base.toml"),
        &out,
        &tmp.path().join("cache"),
        &fixture_file_url(),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    let rootfs = unpack_archive(&out, tmp.path());
    let ls = run_in(&rootfs, &["/bin/bash", "-c", "ls /"]);
    let listing = String::from_utf8_lossy(&ls.stdout);
    for dir in ["etc", "usr", "bin", "tmp"] {
        assert!(
            listing.lines().any(|l| l == dir),
            "`ls /` lacks {dir}: {listing}\n{stderr}"
        );
    }
    // prefer picked the minimal providers.
    assert!(
        !rootfs.join("usr/share/i18n/locales").exists(),
        "all-langpacks was installed"
    );
    assert!(
        !rootfs.join("usr/share/doc/bash/CHANGES.gz").exists(),
        "docs were installed"
    );
}

#[test]
fn same_recipe_same_digest_cold_and_warm() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = fixture_file_url();
    let cold = build(
        &recipe("distroless-base.toml"),
        &tmp.path().join("a.tar"),
        &cache,
        &url,
    );
    let warm = build(
        &recipe("distroless-base.toml"),
        &tmp.path().join("b.tar"),
        &cache,
        &url,
    );
    let other = build(
        &recipe("distroless-base.toml"),
        &tmp.path().join("c.tar"),
        &tmp.path().join("cache2"),
        &url,
    );
    assert_eq!(last_line(&cold), last_line(&warm));
    assert_eq!(last_line(&cold), last_line(&other));
    let a = std::fs::read(tmp.path().join("a.tar")).unwrap();
    assert_eq!(
        a,
        std::fs::read(tmp.path().join("b.tar")).unwrap(),
        "the warm archive (layer from the cache) is byte-identical"
    );
    assert_eq!(
        a,
        std::fs::read(tmp.path().join("c.tar")).unwrap(),
        "the archives are byte-identical"
    );
    // The warm build took its layer from the cache; the cold ones compressed.
    let reused = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr).contains("compressed blob reused")
    };
    assert!(!reused(&cold) && !reused(&other));
    assert!(reused(&warm), "{}", String::from_utf8_lossy(&warm.stderr));
}

#[test]
fn corrupt_cache_entry_is_refetched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = fixture_file_url();
    let first = build(
        &recipe("busybox.toml"),
        &tmp.path().join("a.tar"),
        &cache,
        &url,
    );
    let mut corrupted = 0;
    for entry in walk(&cache) {
        if entry.extension().is_some_and(|e| e == "rpm") {
            std::fs::write(&entry, b"truncated").unwrap();
            corrupted += 1;
        }
    }
    assert!(
        corrupted > 0,
        "no cached rpm found under {}",
        cache.display()
    );
    let second = build(
        &recipe("busybox.toml"),
        &tmp.path().join("b.tar"),
        &cache,
        &url,
    );
    assert_eq!(last_line(&first), last_line(&second));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn nginx_from_two_repos_with_xz_and_gzip_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nginx.oci.tar");
    let fx = fixtures();
    let result = run_ok(
        minibuild()
            .arg(recipe("nginx.toml"))
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg("--baseurl")
            .arg(format!("fedora=file://{}/repo-xz/$basearch/", fx.display()))
            .arg("--baseurl")
            .arg(format!(
                "updates=file://{}/repo-gz/$basearch/",
                fx.display()
            ))
            .args(["--no-gpgcheck", "fedora", "--no-gpgcheck", "updates"])
            .env("CI", "1"),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("Loading metadata of updates") && stderr.contains("repo-gz"),
        "{stderr}"
    );
    let rootfs = unpack_archive(&out, tmp.path());
    let version = run_in(&rootfs, &["/usr/sbin/nginx", "-v"]);
    assert!(
        String::from_utf8_lossy(&version.stderr).contains("nginx version: nginx/1.22"),
        "{version:?}"
    );
    // Weak deps stay out: nginx-docs (Recommends) and dnf (basesystem's Recommends).
    assert!(!rootfs.join("usr/bin/dnf").exists());
    assert!(!rootfs.join("usr/share/doc/nginx-docs").exists());
    assert!(rootfs.join("usr/share/nginx/html/index.html").is_file());
    serves_as_unprivileged_user(&rootfs, &out);
}

/// The example recipe runs nginx as `nginx` on 8080: start it in the
/// unpacked image as the image's own user and fetch a page.
fn serves_as_unprivileged_user(rootfs: &Path, archive: &Path) {
    let inspect = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let user = config["config"]["User"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (uid, gid) = user.split_once(':').expect("image user is uid:gid");
    assert_ne!(uid, "0", "the nginx image must not run as root: {user}");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with(&format!("nginx:x:{uid}:{gid}:"))),
        "{passwd}"
    );
    assert!(
        is_root(),
        "starting nginx as uid {uid} in the image needs root (chroot --userspec); run the suite as root, as CI does"
    );
    // A container runtime gives the image /dev and /proc (nginx logs to
    // /dev/stdout, a link into /proc): bind the host's in a private mount namespace.
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    std::fs::create_dir_all(rootfs.join("proc")).unwrap();
    let nginx = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --rbind /dev "$1/dev" && mount --rbind /proc "$1/proc" && exec chroot --userspec="$2" "$1" /usr/sbin/nginx -g 'daemon off;'"#)
        .args(["sh"])
        .arg(rootfs)
        .arg(&user)
        .env_clear()
        .env("PATH", "/usr/bin:/usr/sbin:/bin:/sbin")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut page = None;
    for _ in 0..100 {
        let got = Command::new("curl")
            .args(["-sf", "--max-time", "2", "http://127.0.0.1:8080/"])
            .output()
            .unwrap();
        if got.status.success() {
            page = Some(String::from_utf8_lossy(&got.stdout).into_owned());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // nginx's workers outlive a killed master: stop the whole process group.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", nginx.id())])
        .status();
    let out = nginx.wait_with_output().unwrap();
    let page = page.unwrap_or_else(|| {
        panic!(
            "nginx as {user} did not serve on 8080: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(page.contains("nginx"), "{page}");
}

#[test]
fn copy_brings_local_files_into_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello.sh"), "#!/bin/sh\necho copied-in\n").unwrap();
    let recipe_path = tmp.path().join("app.toml");
    std::fs::write(
        &recipe_path,
        format!(
            "[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [\"bash\"]\nprefer = [\"glibc-minimal-langpack\"]\n\
             [[copy]]\nsrc = \"hello.sh\"\ndest = \"/usr/local/bin/hello\"\nmode = \"0755\"\n",
            fixture_file_url()
        ),
    )
    .unwrap();
    let out = tmp.path().join("app.oci.tar");
    run_ok(
        minibuild()
            .arg(&recipe_path)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    let rootfs = unpack_archive(&out, tmp.path());
    let res = run_in(&rootfs, &["/bin/bash", "/usr/local/bin/hello"]);
    assert_eq!(String::from_utf8_lossy(&res.stdout), "copied-in\n");
}

/// clash-a and clash-b both ship /usr/share/clash/greeting with different
/// content: the build fails naming both packages and `exclude_paths`; with
/// the path excluded it succeeds, neither copy is in the image, and the
/// identical /usr/share/clash/common is installed once.
#[test]
fn file_conflicts_fail_and_exclude_paths_settles_them() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |extra: &str| {
        let path = tmp.path().join("clash.toml");
        std::fs::write(
            &path,
            format!(
                "[image]\nname = \"clash\"\narch = [\"x86_64\"]\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\
                 [packages]\ninstall = [\"clash-a\", \"clash-b\"]\n[options]\nrpmdb = false\n{extra}",
                fixture_file_url()
            ),
        )
        .unwrap();
        path
    };
    let out = tmp.path().join("clash.oci.tar");
    let failed = build_cmd(&write(""), &out, &tmp.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains("/usr/share/clash/greeting")
            && stderr.contains("clash-a")
            && stderr.contains("clash-b-1.0-1.fc40.noarch")
            && stderr.contains("exclude_paths = [\"/usr/share/clash/greeting\"]"),
        "{stderr}"
    );
    assert!(!out.exists(), "a failed build leaves nothing behind");

    let result = build(
        &write("exclude_paths = [\"/usr/share/clash/greet*\"]\n"),
        &out,
        &tmp.path().join("cache"),
        &fixture_file_url(),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("clash-a: left out by exclude_paths: /usr/share/clash/greeting")
            && stderr.contains("clash-b: left out by exclude_paths: /usr/share/clash/greeting"),
        "{stderr}"
    );
    let rootfs = unpack_archive(&out, tmp.path());
    let dir = rootfs.join("usr/share/clash");
    assert!(!dir.join("greeting").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("common")).unwrap(),
        "the same in both\n"
    );
    assert!(dir.join("only-a").is_file() && dir.join("only-b").is_file());
}
