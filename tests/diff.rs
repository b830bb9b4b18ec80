//! `minibuild diff A B` end to end: two images built from the fixture repo
//! (the second with a newer busybox, one more package, a changed env and
//! label), the same
//! image as an archive and as a layout directory, two locks, the images
//! pushed to a loopback registry and diffed by reference (one platform and
//! an index), and inputs that cannot be read. Exit codes as diff(1): 0 same, 1 different, 2
//! unreadable.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::snapshot::{stable, stdout_text};
use common::*;

/// The recipe: busybox from the (unsigned) fixture repo, plus what
/// `install` adds from a local repo of one package built here.
fn recipe(env: &str, label: &str, install: &str, extra_repo: &Path) -> String {
    format!(
        r#"[image]
name = "diffed"
tag = "1"
arch = ["x86_64"]
entrypoint = ["/usr/sbin/busybox"]
cmd = ["sh"]
env = {{ {env} }}
labels = {{ release = "{label}" }}

[[repo]]
name = "fedora"
baseurl = "file://{fixtures}/repo/$basearch/"
gpgcheck = false

[[repo]]
name = "extra"
baseurl = "file://{extra}/"
gpgcheck = false

[packages]
install = [{install}]

[options]
source_date_epoch = 1700000000
"#,
        fixtures = fixtures().display(),
        extra = extra_repo.display(),
    )
}

/// A noarch `hello` with one 300-byte file.
fn extra_repo(dir: &Path) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join("extra");
    let top = dir.join("rpmbuild");
    std::fs::create_dir_all(&top).unwrap();
    let spec = top.join("hello.spec");
    std::fs::write(
        &spec,
        "Name: hello\nVersion: 1.0\nRelease: 1\nSummary: diff test\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%description\ndiff test package\n%install\nmkdir -p %{buildroot}/usr/share/hello\nhead -c 300 /dev/zero > %{buildroot}/usr/share/hello/greeting\n%files\n/usr/share/hello\n",
    )
    .unwrap();
    run_ok(rpmbuild(&top, &repo).arg(&spec));
    createrepo(&repo);
    repo
}

struct Built {
    dir: PathBuf,
    /// Recipe A's image as an oci-archive and as a layout directory.
    a: PathBuf,
    a_layout: PathBuf,
    /// Recipe B's image (newer busybox, one more package, other env and label).
    b: PathBuf,
    /// Recipe B built with `rpmdb = false`.
    b_no_rpmdb: PathBuf,
    a_recipe: PathBuf,
    b_recipe: PathBuf,
}

fn build(recipe: &Path, out: &Path, cache: &Path, format: &str) {
    run_ok(build_cmd(recipe, out, cache).args(["--format", format]));
}

/// Built once for every test in this file.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = common::process_tempdir("minibuild-diff-", None);
        let extra = extra_repo(&dir);
        let a_recipe = dir.join("a.toml");
        let b_recipe = dir.join("b.toml");
        std::fs::write(
            &a_recipe,
            recipe(r#"MODE = "old""#, "1", r#""busybox < 1:1.35.0-4""#, &extra),
        )
        .unwrap();
        std::fs::write(
            &b_recipe,
            recipe(
                r#"MODE = "new", EXTRA = "yes""#,
                "2",
                r#""busybox", "hello""#,
                &extra,
            ),
        )
        .unwrap();
        let cache = dir.join("cache");
        let (a, a_layout, b) = (dir.join("a.tar"), dir.join("a.oci"), dir.join("b.tar"));
        build(&a_recipe, &a, &cache, "oci-archive");
        build(&a_recipe, &a_layout, &cache, "oci");
        build(&b_recipe, &b, &cache, "oci-archive");
        let no_rpmdb_recipe = dir.join("b-no-rpmdb.toml");
        let text = std::fs::read_to_string(&b_recipe).unwrap();
        std::fs::write(&no_rpmdb_recipe, format!("{text}rpmdb = false\n")).unwrap();
        let b_no_rpmdb = dir.join("b-no-rpmdb.tar");
        build(&no_rpmdb_recipe, &b_no_rpmdb, &cache, "oci-archive");
        Built {
            dir,
            a,
            a_layout,
            b,
            b_no_rpmdb,
            a_recipe,
            b_recipe,
        }
    })
}

fn diff(args: &[&Path], json: bool) -> Output {
    let mut cmd = minibuild();
    cmd.arg("diff").args(args);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout_text(out)))
}

#[test]
fn two_images_show_the_added_package_files_config_and_layers() {
    let b = built();
    let out = diff(&[&b.a, &b.b], false);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_text(&out));
    let mut settings = stable(&[(&b.dir, "[DIR]")]);
    // Layer digests and compressed sizes move with the compressor, not
    // with what this test is about.
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    settings.add_filter(r"(?m)^(  [AB] sha256:\[DIGEST\]) .*$", "$1 [SIZE]");
    settings.add_filter(r"(?m)^(layers: \d+ → \d+), .*$", "$1, [SIZES]");
    settings.bind(|| insta::assert_snapshot!("images", stdout_text(&out)));

    let v = json(&diff(&[&b.a, &b.b], true));
    assert_eq!(v["kind"], "images");
    assert_eq!(v["identical"], false);
    let part = &v["parts"][0];
    assert_eq!(part["name"], "linux/amd64");
    let changes = part["packages"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["change"], "upgraded");
    assert_eq!(changes[0]["old"], "busybox-1:1.35.0-3.fc40.x86_64");
    assert_eq!(changes[0]["new"], "busybox-1:1.35.0-4.fc40.x86_64");
    assert_eq!(changes[1]["change"], "added");
    assert_eq!(changes[1]["new"], "hello-1.0-1.noarch");
    assert_eq!(changes[1]["size_delta"], 300);
    let sizes = |k: &str| part["packages"][k].as_i64().unwrap();
    let deltas: i64 = changes
        .iter()
        .map(|c| c["size_delta"].as_i64().unwrap())
        .sum();
    assert_eq!(sizes("new_total") - sizes("old_total"), deltas);
    assert_eq!(part["packages"]["source"], "rpmdb");
    let env: Vec<(&str, &serde_json::Value, &serde_json::Value)> = part["config"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] == "env")
        .map(|c| (c["key"].as_str().unwrap(), &c["old"], &c["new"]))
        .collect();
    assert_eq!(
        env,
        [
            ("EXTRA", &serde_json::Value::Null, &"yes".into()),
            ("MODE", &"old".into(), &"new".into()),
        ]
    );
    assert!(part["config"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "labels" && c["key"] == "release" && c["new"] == "2"));
    let files = &part["files"];
    let added: Vec<&str> = files["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    // busybox alone has no /usr/share.
    assert_eq!(
        added,
        [
            "/usr/share",
            "/usr/share/hello",
            "/usr/share/hello/greeting"
        ]
    );
    assert_eq!(files["removed"].as_array().unwrap().len(), 0);
    let changed: Vec<&str> = files["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"/var/lib/rpm/rpmdb.sqlite"),
        "{changed:?}"
    );
    // The plain report counts the same files.
    let plain = stdout_text(&out);
    let line = format!(
        "files: {} added, 0 removed, {} changed",
        added.len(),
        changed.len()
    );
    assert!(plain.contains(&line), "{line} not in:\n{plain}");
    assert_eq!(part["layers"]["old"].as_array().unwrap().len(), 1);
}

#[test]
fn the_same_image_as_archive_and_layout_has_no_differences() {
    let b = built();
    let out = diff(&[&b.a, &b.a_layout], false);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_text(&out));
    assert!(
        stdout_text(&out).ends_with("no differences\n"),
        "{}",
        stdout_text(&out)
    );
    let v = json(&diff(&[&b.a_layout, &b.a], true));
    assert_eq!(v["identical"], true);
    assert_eq!(v["a_manifests"], v["b_manifests"]);
}

#[test]
fn without_an_rpmdb_packages_are_left_out_with_a_note() {
    let b = built();
    let out = diff(&[&b.b, &b.b_no_rpmdb], false);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout_text(&out);
    let note = format!(
        "note: {} has no rpmdb (var/lib/rpm/rpmdb.sqlite or usr/lib/sysimage/rpm/rpmdb.sqlite or var/lib/rpm/Packages or usr/lib/sysimage/rpm/Packages): packages not compared",
        b.b_no_rpmdb.display()
    );
    assert!(text.contains(&note), "{text}");
    assert!(
        text.contains("  - /var/lib/rpm/rpmdb.sqlite (file, "),
        "{text}"
    );
    let v = json(&diff(&[&b.b, &b.b_no_rpmdb], true));
    assert!(v["parts"][0]["packages"].is_null());
}

#[test]
fn two_locks() {
    let b = built();
    for r in [&b.a_recipe, &b.b_recipe] {
        run_ok(
            minibuild()
                .arg("lock")
                .arg(r)
                .arg("--cache-dir")
                .arg(b.dir.join("cache")),
        );
    }
    let (la, lb) = (b.dir.join("a.toml.lock"), b.dir.join("b.toml.lock"));
    let out = diff(&[&la, &lb], false);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_text(&out));
    let text = stdout_text(&out);
    assert!(
        text.contains("packages (lock): 1 added, 0 removed, 1 upgraded")
            && text.contains("  added      hello-1.0-1.noarch  +300 B"),
        "{text}"
    );
    let v = json(&diff(&[&la, &lb], true));
    assert_eq!(v["kind"], "locks");
    assert_eq!(v["parts"][0]["name"], "x86_64");
    assert_eq!(v["parts"][0]["packages"]["changes"][1]["name"], "hello");
    let same = diff(&[&la, &la], false);
    assert_eq!(same.status.code(), Some(0));
    assert!(stdout_text(&same).ends_with("no differences\n"));
}

#[test]
fn unreadable_inputs_exit_2_naming_them() {
    let b = built();
    let missing = b.dir.join("missing.tar");
    let out = diff(&[&b.a, &missing], false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let junk = b.dir.join("junk.tar");
    std::fs::write(&junk, "not an image").unwrap();
    let out = diff(&[&junk, &b.a], false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&junk.display().to_string()), "{err}");

    let bad_lock = b.dir.join("junk.lock");
    std::fs::write(&bad_lock, "packages = 3").unwrap();
    let out = diff(&[&bad_lock, &bad_lock], false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&bad_lock.display().to_string()), "{err}");

    // Meant as a reference but not a valid one: the reason, no network.
    let out = minibuild()
        .args(["diff", "registry.example.com/App:1"])
        .arg(&b.a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry.example.com/App:1") && err.contains("not a registry reference"),
        "{err}"
    );
}

/// `minibuild push IMAGE REF`: the pinned `REF@sha256:…` it prints.
fn push(image: &Path, reference: &str) -> String {
    let out = run_ok(minibuild().arg("push").arg(image).arg(reference));
    stdout_text(&out).trim().to_string()
}

fn diff_refs(a: &str, b: &str, cache: &Path, json: bool) -> Output {
    let mut cmd = minibuild();
    cmd.args(["diff", a, b]).arg("--cache-dir").arg(cache);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

/// The report without the inputs' names, which differ by design.
fn without_names(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    o.remove("a");
    o.remove("b");
    v
}

#[test]
fn registry_references_are_pulled_and_diffed_like_the_archives() {
    let b = built();
    let registry = common::registry::Registry::open();
    let cache = tempfile::tempdir().unwrap();
    let a_tag = registry.repo("diffed:a");
    push(&b.a, &a_tag);
    let b_pinned = push(&b.b, &registry.repo("diffed:b"));
    // By digest, without the tag.
    let (_, b_digest) = b_pinned.split_once('@').unwrap();
    let b_ref = format!("{}@{b_digest}", registry.repo("diffed"));

    let out = diff_refs(&a_tag, &b_ref, cache.path(), false);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout_text(&out);
    assert!(text.starts_with(&format!("A: {a_tag} sha256:")), "{text}");
    assert!(text.contains(&format!("B: {b_ref} {b_digest}")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  added") && l.contains("hello-1.0-1.noarch")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  upgraded") && l.contains("busybox")),
        "{text}"
    );

    // The same report as diffing the archives, but for the inputs' names.
    let remote = json(&diff_refs(&a_tag, &b_ref, cache.path(), true));
    assert_eq!(remote["a"], a_tag.as_str());
    assert_eq!(remote["b"], b_ref.as_str());
    let local = json(&diff(&[&b.a, &b.b], true));
    assert_eq!(without_names(remote), without_names(local));

    // Mixed: a file and a reference to the same image are identical, from
    // the cache (the registry is gone, the digest is known).
    drop(registry);
    let out = diff_refs(b.b.to_str().unwrap(), &b_ref, cache.path(), false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout_text(&out).ends_with("no differences\n"));
}

#[test]
fn a_missing_tag_exits_2_naming_the_reference() {
    let b = built();
    let registry = common::registry::Registry::open();
    let cache = tempfile::tempdir().unwrap();
    push(&b.a, &registry.repo("diffed:a"));
    let missing = registry.repo("diffed:nope");
    let out = diff_refs(b.a.to_str().unwrap(), &missing, cache.path(), false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&missing) && err.contains("no such tag"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// Two-platform images pushed as indexes: every platform is pulled and
/// diffed by os/arch, as the local archives are.
#[test]
fn registry_indexes_are_diffed_per_platform() {
    let b = built();
    let two_arches = |recipe: &Path, name: &str| {
        let text = std::fs::read_to_string(recipe)
            .unwrap()
            .replace(r#"arch = ["x86_64"]"#, r#"arch = ["x86_64", "aarch64"]"#)
            // The aarch64 fixtures have the newer busybox only.
            .replace(r#""busybox < 1:1.35.0-4""#, r#""busybox""#);
        let path = b.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = b.dir.join(format!("{name}.tar"));
        build(&path, &out, &b.dir.join("cache"), "oci-archive");
        out
    };
    let (a, bb) = (
        two_arches(&b.a_recipe, "a-multi"),
        two_arches(&b.b_recipe, "b-multi"),
    );
    let registry = common::registry::Registry::open();
    let cache = tempfile::tempdir().unwrap();
    let (a_ref, b_ref) = (registry.repo("multi:a"), registry.repo("multi:b"));
    push(&a, &a_ref);
    push(&bb, &b_ref);

    let out = diff_refs(&a_ref, &b_ref, cache.path(), true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote = json(&out);
    let names: Vec<&str> = remote["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    for part in remote["parts"].as_array().unwrap() {
        let added: Vec<&str> = part["packages"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["change"] == "added")
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(added.contains(&"hello"), "{part}");
    }
    let local = json(&diff(&[&a, &bb], true));
    assert_eq!(without_names(remote), without_names(local));

    // An index against a one-platform image: arm64 is only in A.
    let out = diff_refs(&a_ref, b.b.to_str().unwrap(), cache.path(), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout_text(&out).contains("linux/arm64: only in A"),
        "{}",
        stdout_text(&out)
    );
}
