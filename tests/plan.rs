//! `plan`, `why` and `lock` end to end on the fixture repository.

mod common;

use std::path::Path;

use common::*;

fn write_recipe(dir: &Path, install: &[&str], extra: &str) -> std::path::PathBuf {
    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\narch = [\"x86_64\"]\n[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [{}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n{extra}",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

fn plan_json(recipe: &Path, cache: &Path) -> serde_json::Value {
    let out = run_ok(
        minibuild()
            .arg("plan")
            .arg(recipe)
            .arg("--json")
            .arg("--cache-dir")
            .arg(cache),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn plan_names(recipe: &Path, cache: &Path) -> Vec<String> {
    names_of(&plan_json(recipe, cache))
}

fn names_of(v: &serde_json::Value) -> Vec<String> {
    v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plan_picks_minimal_providers_and_skips_weak_deps() {
    let tmp = tempfile::tempdir().unwrap();
    // `/usr/bin/ls` is provided by both coreutils and coreutils-single: `prefer` decides.
    // (A request naming `coreutils` itself gets that package, as with dnf.)
    let recipe = write_recipe(tmp.path(), &["bash", "/usr/bin/ls"], "");
    let names = plan_names(&recipe, &tmp.path().join("cache"));
    for want in [
        "bash",
        "glibc",
        "glibc-minimal-langpack",
        "coreutils-single",
        "filesystem",
        "setup",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    for unwanted in ["glibc-all-langpacks", "coreutils", "dnf", "rpm"] {
        assert!(
            !names.contains(&unwanted.to_string()),
            "{unwanted} in {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "plan is sorted by name");

    // With weak deps on, basesystem's Recommends would bring in the package
    // manager: the plan leaves it out and says why.
    let recipe = write_recipe(tmp.path(), &["bash"], "[options]\nweak_deps = true\n");
    let json = plan_json(&recipe, &tmp.path().join("cache"));
    let names = names_of(&json);
    assert!(
        !names.contains(&"dnf".to_string()) && !names.contains(&"rpm".to_string()),
        "{names:?}"
    );
    let left: Vec<(String, String)> = json[0]["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["why"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        left.contains(&(
            "dnf".to_string(),
            "package manager, recommended by basesystem (dnf); nothing requested needs it"
                .to_string()
        )),
        "{left:?}"
    );
    assert!(left.iter().any(|(n, _)| n == "rpm"), "{left:?}");
    let table = run_ok(
        minibuild()
            .arg("plan")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache")),
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(
            "Left out with the package manager (`package_manager = true` keeps it):\n  dnf "
        ),
        "{text}"
    );

    // `package_manager = true` keeps it in the plan.
    let recipe = write_recipe(
        tmp.path(),
        &["bash"],
        "[options]\nweak_deps = true\npackage_manager = true\n",
    );
    let json = plan_json(&recipe, &tmp.path().join("cache"));
    let names = names_of(&json);
    assert!(
        names.contains(&"dnf".to_string()) && names.contains(&"rpm".to_string()),
        "{names:?}"
    );
    assert!(json[0].get("left_out").is_none(), "{json}");
}

#[test]
fn plan_table_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["nginx"], "");
    let cache = tmp.path().join("cache");
    let table = run_ok(
        minibuild()
            .arg("plan")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(&cache),
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("Package"), "{text}");
    assert!(
        text.contains("nginx ") && text.contains("requested"),
        "{text}"
    );
    assert!(text.contains("packages for x86_64:"), "{text}");

    let why = run_ok(
        minibuild()
            .arg("why")
            .arg(&recipe)
            .arg("openssl-libs")
            .arg("--cache-dir")
            .arg(&cache),
    );
    insta::assert_snapshot!("why_chain", snapshot::stdout_text(&why));

    let res = minibuild()
        .arg("why")
        .arg(&recipe)
        .arg("busybox")
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    snapshot::stable(&[(tmp.path(), "[TMP]")])
        .bind(|| insta::assert_snapshot!("why_not_installed", snapshot::error_message(&res)));
}

#[test]
fn lock_is_used_by_default_and_drift_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["busybox"], "");
    let cache = tmp.path().join("cache");
    run_ok(
        minibuild()
            .arg("lock")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(&cache),
    );
    let lock_path = tmp.path().join("r.toml.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.starts_with("# @generated"), "{lock}");
    assert!(
        lock.contains("name = \"busybox\"") && lock.contains("evr = \"1:1.35.0-4.fc40\""),
        "newest wins: {lock}"
    );

    // Pin the older busybox by editing the lock: the build must install exactly the lock.
    let older = lock
        .replace("1:1.35.0-4.fc40", "1:1.35.0-3.fc40")
        .replace("busybox-1.35.0-4", "busybox-1.35.0-3");
    let older_rpm = fixtures().join("repo/x86_64/busybox-1.35.0-3.fc40.x86_64.rpm");
    let digest = minibuild::digest::Digest::of_reader(
        minibuild::digest::Algorithm::Sha256,
        std::fs::File::open(&older_rpm).unwrap(),
    )
    .unwrap();
    let newer_checksum = lock
        .lines()
        .find(|l| l.starts_with("checksum"))
        .unwrap()
        .to_string();
    let older = older.replace(&newer_checksum, &format!("checksum = \"{digest}\""));
    let older = older.replace(
        &lock
            .lines()
            .find(|l| l.starts_with("download_size"))
            .unwrap()
            .to_string(),
        &format!(
            "download_size = {}",
            std::fs::metadata(&older_rpm).unwrap().len()
        ),
    );
    std::fs::write(&lock_path, older).unwrap();
    let out = tmp.path().join("img.oci.tar");
    let built = run_ok(
        minibuild()
            .arg(&recipe)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .env("CI", "1"),
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(
        stderr.contains("Using") && stderr.contains("r.toml.lock"),
        "{stderr}"
    );
    let rootfs = unpack_archive(&out, tmp.path());
    assert!(rootfs.join("usr/sbin/busybox").is_file());
    let locked_plan = run_ok(
        minibuild()
            .arg("plan")
            .arg(&recipe)
            .arg("--json")
            .arg("--cache-dir")
            .arg(&cache),
    );
    assert!(String::from_utf8_lossy(&locked_plan.stdout).contains("1:1.35.0-3.fc40"));

    // The recipe drifts: the build refuses and names the change.
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("[\"busybox\"]", "[\"busybox\", \"bash\"]");
    std::fs::write(&recipe, text).unwrap();
    let res = minibuild()
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("packages.install adds `bash`"), "{stderr}");
    assert!(stderr.contains("--update"), "{stderr}");
    // --no-lock resolves afresh.
    run_ok(
        minibuild()
            .arg(&recipe)
            .arg("-o")
            .arg(&out)
            .arg("--no-lock")
            .arg("--cache-dir")
            .arg(&cache),
    );
}

/// `plan` names the scriptlets the build will not run, read from the
/// package headers only: over HTTP with Range requests (nothing lands in
/// the RPM cache) and from a file:// repo, in the table and in `--json`.
#[test]
fn plan_reports_skipped_scriptlets_from_headers_only() {
    let server = common::server::Server::serve(&fixtures());
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["nginx-filesystem", "busybox"], "");
    let cache = tmp.path().join("cache");
    let plan = |extra: &[String], json: bool| {
        let mut cmd = minibuild();
        cmd.arg("plan").arg(&recipe).arg("--cache-dir").arg(&cache);
        if json {
            cmd.arg("--json");
        }
        run_ok(cmd.args(extra))
    };
    let over_http = vec![
        "--baseurl".to_string(),
        format!("fx={}/repo/$basearch/", server.url),
    ];
    let out = plan(&over_http, true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = |name: &str| {
        v[0]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))
            .clone()
    };
    let scriptlets = &pkg("nginx-filesystem")["scriptlets"];
    assert_eq!(scriptlets[0]["kind"], "%pre", "{scriptlets}");
    assert_eq!(scriptlets[0]["interpreter"][0], "/bin/sh", "{scriptlets}");
    assert_eq!(
        scriptlets[0]["effects"],
        serde_json::json!(["accounts, done from sysusers.d"])
    );
    assert_eq!(pkg("busybox")["scriptlets"], serde_json::json!([]));
    assert!(
        server.ranges.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "headers were read with Range requests"
    );
    let rpms = cache.join("v1/rpms");
    assert!(
        !rpms.exists() || std::fs::read_dir(&rpms).unwrap().next().is_none(),
        "plan downloads no package"
    );

    // file:// (the recipe's own baseurl): the table, and the scriptlet
    // report after its rows. Sizes follow the fixtures' Debian packages, so
    // they are redacted with the padding before them.
    let table = plan(&[], false);
    let mut settings = snapshot::stable(&[]);
    settings.add_filter(r" +\d+(\.\d+)? (B|KiB|MiB|GiB)\b", " [SIZE]");
    settings.bind(|| insta::assert_snapshot!("plan_table", snapshot::stdout_text(&table)));
}
