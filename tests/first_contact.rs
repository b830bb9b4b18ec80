//! End to end: what a newcomer hits first (issue 15). A docker-archive that
//! skopeo and podman load, `-o` that never destroys what minibuild did not
//! write, download progress that a CI log can follow, and minimal providers
//! by default.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use common::server::{Reply, Scripted, Server};
use common::*;

/// The busybox recipe against the fixture repo at `baseurl`, `--format format`.
fn build(out: &Path, cache: &Path, baseurl: &str, format: &str) -> Command {
    build_recipe(&recipe("busybox.toml"), out, cache, baseurl, format)
}

fn build_recipe(recipe: &Path, out: &Path, cache: &Path, baseurl: &str, format: &str) -> Command {
    let mut cmd = build_cmd(recipe, out, cache);
    cmd.args(["--format", format, "--no-sbom", "--no-provenance"])
        .arg("--baseurl")
        .arg(format!("fedora={baseurl}"))
        // The fixture repo is unsigned.
        .args(["--no-gpgcheck", "fedora"]);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Names in `dir`, sorted: what a run left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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

/// A work dir with a canary outside it: `-o` is aimed at things that must
/// survive, over HTTP so the test sees whether anything was fetched.
struct Victim {
    tmp: tempfile::TempDir,
    server: Server,
    canary: PathBuf,
}

impl Victim {
    fn new() -> Victim {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("work")).unwrap();
        let canary = tmp.path().join("canary.txt");
        fs::write(&canary, "precious").unwrap();
        Victim {
            tmp,
            server: Server::serve(&fixtures()),
            canary,
        }
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn build(&self, out: &Path, format: &str) -> Command {
        self.build_recipe(&recipe("busybox.toml"), out, format)
    }

    fn build_recipe(&self, recipe: &Path, out: &Path, format: &str) -> Command {
        build_recipe(
            recipe,
            out,
            &self.tmp.path().join("cache"),
            &format!("{}/repo/$basearch/", self.server.url),
            format,
        )
    }

    /// The final error of a run in this work dir, as snapshot `name`.
    fn snapshot(&self, name: &str, result: &Output) {
        snapshot::stable(&[(self.tmp.path(), "[TMP]")])
            .bind(|| insta::assert_snapshot!(name.to_string(), snapshot::error_message(result)));
    }

    /// The build failed before fetching anything, naming `out` and the rule.
    fn assert_refused(&self, result: &Output, out: &Path, rule: &str) {
        let err = stderr(result);
        assert!(!result.status.success(), "{err}");
        assert!(
            err.contains(&format!("refusing to replace `{}`", out.display())) && err.contains(rule),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        assert_eq!(
            self.server.requests.load(Ordering::SeqCst),
            0,
            "refused before any download: {err}"
        );
        assert_eq!(fs::read_to_string(&self.canary).unwrap(), "precious");
    }
}

#[test]
fn output_refuses_the_recipe_and_foreign_files_before_the_build() {
    let v = Victim::new();
    let own = v.work().join("busybox.toml");
    fs::copy(recipe("busybox.toml"), &own).unwrap();
    let original = fs::read(&own).unwrap();
    // `minibuild build busybox.toml -o busybox.toml`: a slip of the shell history.
    let result = v.build_recipe(&own, &own, "oci-archive").output().unwrap();
    v.assert_refused(&result, &own, "not an image minibuild wrote");
    v.snapshot("output_is_the_recipe", &result);
    assert_eq!(fs::read(&own).unwrap(), original, "the recipe is intact");

    // A symlink aimed at a file outside the work dir is not followed nor replaced.
    let link = v.work().join("link.tar");
    std::os::unix::fs::symlink(&v.canary, &link).unwrap();
    let result = v.build(&link, "oci-archive").output().unwrap();
    v.assert_refused(&result, &link, "not an image minibuild wrote");
    v.snapshot("output_is_a_foreign_symlink", &result);
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());

    // A directory given for an archive fails now, not after the build; even with --force.
    let dir = v.work().join("out");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep.txt"), "keep").unwrap();
    for force in [false, true] {
        let mut cmd = v.build(&dir, "docker-archive");
        if force {
            cmd.arg("--force");
        }
        let result = cmd.output().unwrap();
        v.assert_refused(&result, &dir, "is a directory");
        v.snapshot(&format!("output_is_a_directory_force_{force}"), &result);
    }
    assert_eq!(fs::read_to_string(dir.join("keep.txt")).unwrap(), "keep");
    assert_eq!(
        listing(&v.work()),
        ["busybox.toml", "link.tar", "out"],
        "nothing partial left behind"
    );
}

#[test]
fn output_replaces_only_a_previous_output_of_the_same_format_or_with_force() {
    let v = Victim::new();
    let out = v.work().join("busybox.tar");
    let first = run_ok(&mut v.build(&out, "oci-archive"));
    // The same format again: a previous minibuild output is replaced.
    let again = run_ok(&mut v.build(&out, "oci-archive"));
    assert_eq!(last_line(&first), last_line(&again));

    // Another format would silently change what the file is: refused.
    let requests = v.server.requests.load(Ordering::SeqCst);
    let before = fs::read(&out).unwrap();
    let result = v.build(&out, "docker-archive").output().unwrap();
    assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
    v.snapshot("output_of_another_format", &result);
    assert_eq!(v.server.requests.load(Ordering::SeqCst), requests);
    assert_eq!(fs::read(&out).unwrap(), before);

    // A docker-archive is recognised as ours too, and --force replaces any file.
    let docker = v.work().join("busybox.docker.tar");
    run_ok(&mut v.build(&docker, "docker-archive"));
    run_ok(&mut v.build(&docker, "docker-archive"));
    let foreign = v.work().join("notes.tar");
    fs::write(&foreign, "not an image").unwrap();
    run_ok(v.build(&foreign, "oci-archive").arg("--force"));
    let mut ar = tar::Archive::new(fs::File::open(&foreign).unwrap());
    assert!(ar
        .entries()
        .unwrap()
        .any(|e| e.unwrap().path().unwrap() == Path::new("oci-layout")));
    assert_eq!(
        listing(&v.work()),
        ["busybox.docker.tar", "busybox.tar", "notes.tar"]
    );
    assert_eq!(fs::read_to_string(&v.canary).unwrap(), "precious");
}

/// The `Fetching` step's closing line without its timing.
fn fetch_summary(err: &str) -> String {
    let mut lines = err.lines().skip_while(|l| !l.contains("Fetching "));
    lines.next().expect("a Fetching step");
    let line = lines
        .find(|l| l.contains(" downloaded ("))
        .expect("a closing line");
    let (text, timing) = line.trim().rsplit_once(" (").unwrap();
    assert!(timing.ends_with("s)"), "{line}");
    text.to_string()
}

#[test]
fn slow_downloads_print_progress_and_the_summary_says_what_came_from_where() {
    // busybox (~0.9 MiB) at 512 KiB/s: about two seconds of download.
    let server = Server::serve_throttled(&fixtures(), Some(512 << 10));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = format!("{}/repo/$basearch/", server.url);
    let first = run_ok(
        build(&tmp.path().join("a.tar"), &cache, &url, "oci-archive")
            .env("MINIBUILD_PROGRESS_INTERVAL", "0.3"),
    );
    let err = stderr(&first);
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(" of ") && l.ends_with("/s"))
        .collect();
    assert!(
        progress.len() >= 2,
        "periodic progress lines while downloading:\n{err}"
    );
    let rpm = fixtures().join("repo/x86_64/busybox-1.35.0-4.fc40.x86_64.rpm");
    let size = fs::metadata(&rpm).unwrap().len();
    let size = format!("{:.1} KiB", size as f64 / 1024.0);
    assert!(
        progress[0].contains(&format!(" of {size} (")),
        "{}",
        progress[0]
    );
    assert_eq!(
        fetch_summary(&err),
        format!("1 downloaded ({size}), 0 from the cache (0 B)")
    );

    let second = run_ok(
        build(&tmp.path().join("b.tar"), &cache, &url, "oci-archive")
            .env("MINIBUILD_PROGRESS_INTERVAL", "0.3"),
    );
    assert_eq!(
        fetch_summary(&stderr(&second)),
        format!("0 downloaded (0 B), 1 from the cache ({size})")
    );
}

/// A mirror that accepts the connection and never answers: the log says
/// what is being waited for, every progress interval, until the timeout.
#[test]
fn a_silent_mirror_is_reported_while_waiting_then_times_out() {
    let server = Scripted::start();
    server.route("repo/repodata/repomd.xml", Reply::Silent);
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("canary.txt");
    fs::write(&canary, "precious").unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    let out = work.join("busybox.tar");
    let started = std::time::Instant::now();
    let result = build(
        &out,
        &tmp.path().join("cache"),
        &format!("{}/repo/", server.url),
        "oci-archive",
    )
    .args(["--timeout", "3"])
    .env("MINIBUILD_PROGRESS_INTERVAL", "0.5")
    .output()
    .unwrap();
    let err = stderr(&result);
    assert!(!result.status.success(), "{err}");

    let url = format!("{}/repo/repodata/repomd.xml", server.url);
    let waiting: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&format!("still waiting for {url} (")))
        .collect();
    assert!(!waiting.is_empty(), "no waiting line:\n{err}");
    assert!(waiting.iter().all(|l| l.ends_with(" s of 3 s)")), "{err}");
    // Lines every 0.5 s over 3 s per try: several, not one per try.
    assert!(waiting.len() >= 4, "{err}");
    // Then the timeout itself, naming the URL and the flag to raise.
    let (_, tail) = err.rsplit_once("still waiting").unwrap();
    let (_, tail) = tail.split_once('\n').unwrap_or_default();
    assert!(tail.contains(&url) && tail.contains("--timeout"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    assert_eq!(listing(&work), Vec::<String>::new(), "nothing left: {err}");
    assert_eq!(fs::read_to_string(&canary).unwrap(), "precious");
}

/// `minibuild plan --json` of bash + `/usr/bin/ls` with `extra` recipe lines:
/// each package's name and its reason.
fn plan_reasons(dir: &Path, extra: &str) -> Vec<(String, String)> {
    let recipe = dir.join("r.toml");
    fs::write(
        &recipe,
        format!(
            "[image]\narch = [\"x86_64\"]\n[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n\
             [packages]\ninstall = [\"bash\", \"/usr/bin/ls\"]\n{extra}",
            fixture_file_url()
        ),
    )
    .unwrap();
    let out = run_ok(
        minibuild()
            .arg("plan")
            .arg(&recipe)
            .arg("--json")
            .arg("--cache-dir")
            .arg(dir.join("cache")),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("reason"))
        })
        .collect()
}

fn reason_of<'a>(plan: &'a [(String, String)], name: &str) -> Option<&'a str> {
    plan.iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r.as_str())
}

#[test]
fn plan_avoids_what_the_recipe_avoids_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // avoid overrides the built-in minimal list.
    let plan = plan_reasons(tmp.path(), "avoid = [\"coreutils-single\"]\n");
    assert_eq!(
        reason_of(&plan, "coreutils"),
        Some("requested as `/usr/bin/ls`; chosen over coreutils-single: the recipe's avoid")
    );
    assert!(reason_of(&plan, "coreutils-common").is_some(), "{plan:?}");
    assert_eq!(reason_of(&plan, "coreutils-single"), None, "{plan:?}");
    // Only the avoided name moves: the minimal langpack is still chosen.
    assert!(
        reason_of(&plan, "glibc-minimal-langpack")
            .is_some_and(|r| r.ends_with("chosen over glibc-all-langpacks: minimal provider")),
        "{plan:?}"
    );

    // Weaker than exclude: a package requested by name is still installed.
    let plan = plan_reasons(tmp.path(), "avoid = [\"bash\"]\n");
    assert_eq!(reason_of(&plan, "bash"), Some("requested"), "{plan:?}");
}

/// A lock written without `avoid` no longer matches once the recipe avoids
/// something; `lock --update` records it and the plan follows it.
#[test]
fn avoid_is_checked_against_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    plan_reasons(tmp.path(), "");
    let recipe = tmp.path().join("r.toml");
    let lock = |extra: &[&str]| {
        minibuild()
            .arg("lock")
            .arg(&recipe)
            .args(extra)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .output()
            .unwrap()
    };
    let first = lock(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let locked = tmp.path().join("r.toml.lock");
    assert!(!fs::read_to_string(&locked).unwrap().contains("avoid"));
    let text = fs::read_to_string(&recipe).unwrap();
    fs::write(&recipe, format!("{text}avoid = [\"coreutils-single\"]\n")).unwrap();
    let drift = lock(&[]);
    assert_eq!(drift.status.code(), Some(1), "{}", stderr(&drift));
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("lock_drift_avoid", snapshot::error_message(&drift)));
    let updated = lock(&["--update"]);
    assert!(updated.status.success(), "{}", stderr(&updated));
    let text = fs::read_to_string(&locked).unwrap();
    assert!(text.contains("avoid = [\"coreutils-single\"]"), "{text}");
    assert!(text.contains("name = \"coreutils\"\n"), "{text}");
    assert!(!text.contains("name = \"coreutils-single\""), "{text}");
}

#[test]
fn plan_chooses_minimal_providers_by_default_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // No `prefer`: langs defaults to ["C"], so the minimal providers win.
    let plan = plan_reasons(tmp.path(), "");
    let langpack = reason_of(&plan, "glibc-minimal-langpack").expect("minimal langpack");
    assert!(
        langpack.ends_with("; chosen over glibc-all-langpacks: minimal provider"),
        "{langpack}"
    );
    let ls = reason_of(&plan, "coreutils-single").expect("coreutils-single");
    assert_eq!(
        ls,
        "requested as `/usr/bin/ls`; chosen over coreutils: minimal provider"
    );
    for full in ["glibc-all-langpacks", "coreutils", "coreutils-common"] {
        assert_eq!(reason_of(&plan, full), None, "{full} in {plan:?}");
    }

    // The recipe decides: its prefer first, and plan says it was the recipe.
    let plan = plan_reasons(tmp.path(), "prefer = [\"coreutils\"]\n");
    assert_eq!(
        reason_of(&plan, "coreutils"),
        Some("requested as `/usr/bin/ls`; chosen over coreutils-single: the recipe's prefer")
    );
    assert!(reason_of(&plan, "glibc-minimal-langpack").is_some());

    // Other languages: no built-in preference (the full langpack has their locales).
    let plan = plan_reasons(tmp.path(), "[options]\nlangs = [\"de\"]\n");
    assert!(
        reason_of(&plan, "glibc-all-langpacks").is_some(),
        "{plan:?}"
    );
    assert!(
        plan.iter().all(|(_, r)| !r.contains("chosen over")),
        "{plan:?}"
    );
}

/// `--offline`: a warm cache builds the same image without one request; a
/// cold one fails at once, naming the URL and the way out.
#[test]
fn offline_builds_from_the_cache_and_names_what_is_missing() {
    let v = Victim::new();
    let first = run_ok(&mut v.build(&v.work().join("a.tar"), "oci-archive"));
    let requests = v.server.requests.load(Ordering::SeqCst);
    assert!(requests > 0);

    let offline = run_ok(
        v.build(&v.work().join("b.tar"), "oci-archive")
            .arg("--offline"),
    );
    assert_eq!(last_line(&offline), last_line(&first), "same image offline");
    assert_eq!(
        v.server.requests.load(Ordering::SeqCst),
        requests,
        "--offline sent no request"
    );

    // A cold cache: refused before any request, naming what to do.
    let cold = build_recipe(
        &recipe("busybox.toml"),
        &v.work().join("c.tar"),
        &v.tmp.path().join("cold-cache"),
        &format!("{}/repo/$basearch/", v.server.url),
        "oci-archive",
    )
    .arg("--offline")
    .output()
    .unwrap();
    assert_eq!(cold.status.code(), Some(1), "{}", stderr(&cold));
    v.snapshot("offline_cold_cache", &cold);
    assert_eq!(v.server.requests.load(Ordering::SeqCst), requests);
    assert!(!v.work().join("c.tar").exists());

    // Metadata cached but not the RPMs (the cache `plan` fills): the RPM's URL is named.
    let meta_only = v.tmp.path().join("meta-cache");
    run_ok(
        minibuild()
            .arg("plan")
            .arg(recipe("busybox.toml"))
            .arg("--cache-dir")
            .arg(&meta_only)
            .arg("--baseurl")
            .arg(format!("fedora={}/repo/$basearch/", v.server.url))
            .args(["--no-gpgcheck", "fedora"]),
    );
    let requests = v.server.requests.load(Ordering::SeqCst);
    let cold_rpms = build_recipe(
        &recipe("busybox.toml"),
        &v.work().join("d.tar"),
        &meta_only,
        &format!("{}/repo/$basearch/", v.server.url),
        "oci-archive",
    )
    .arg("--offline")
    .output()
    .unwrap();
    assert_eq!(cold_rpms.status.code(), Some(1), "{}", stderr(&cold_rpms));
    v.snapshot("offline_rpm_not_cached", &cold_rpms);
    assert_eq!(v.server.requests.load(Ordering::SeqCst), requests);
}
