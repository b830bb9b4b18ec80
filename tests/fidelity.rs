//! End to end: accounts from sysusers.d and the recipe, the scanner-readable
//! rpmdb, busybox applet links and `--rootfs`, checked with tools that are
//! not minibuild (the layer's tar headers read with the `tar` crate,
//! Debian's `rpm --root`).

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use common::*;

fn write_recipe(dir: &Path, install: &[&str], extra: &str) -> PathBuf {
    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "[image]\narch = [\"x86_64\"]\n{extra}\n[[repo]]\nname = \"fx\"\nbaseurl = \"{}\"\ngpgcheck = false\n[packages]\ninstall = [{}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

/// Build `recipe` as an OCI layout directory; returns (layout, stderr).
fn build_layout(recipe: &Path, dir: &Path, args: &[&str]) -> (PathBuf, String) {
    let layout = dir.join("image.oci");
    let out = run_ok(
        build_cmd(recipe, &layout, &dir.join("cache"))
            .args(["--format", "oci"])
            .args(args),
    );
    (layout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_reader(File::open(path).unwrap()).unwrap()
}

/// The single-platform image's manifest.
fn manifest(layout: &Path) -> serde_json::Value {
    let index = json(&layout.join("index.json"));
    let mut m = json(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    if m["manifests"].is_array() {
        m = json(&blob(layout, m["manifests"][0]["digest"].as_str().unwrap()));
    }
    m
}

/// One tar header of the layer.
#[derive(Debug)]
struct Header {
    uid: u64,
    gid: u64,
    mode: u32,
    content: Vec<u8>,
}

/// Every path of the (gzip) layer, as its tar header says.
fn layer(layout: &Path) -> BTreeMap<String, Header> {
    let m = manifest(layout);
    let layer = &m["layers"][0];
    assert!(layer["mediaType"].as_str().unwrap().ends_with("tar+gzip"));
    let file = File::open(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let h = entry.header();
        let mut header = Header {
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mode: h.mode().unwrap(),
            content: Vec::new(),
        };
        if path.starts_with("etc/") || path.contains("sysusers") {
            std::io::Read::read_to_end(&mut entry, &mut header.content).unwrap();
        }
        out.insert(path.trim_end_matches('/').to_string(), header);
    }
    out
}

fn config(layout: &Path) -> serde_json::Value {
    json(&blob(
        layout,
        manifest(layout)["config"]["digest"].as_str().unwrap(),
    ))
}

#[test]
fn sysusers_account_owns_its_files_by_numeric_id() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        tmp.path(),
        &["nginx", "glibc-minimal-langpack"],
        "user = \"nginx\"\n\
         [accounts]\n\
         [[accounts.groups]]\nname = \"web\"\nmembers = [\"nginx\", \"app\"]\n\
         [[accounts.users]]\nname = \"app\"\nuid = 1500\nshell = \"/bin/sh\"\n",
    );
    let (layout, stderr) = build_layout(&recipe, tmp.path(), &[]);
    // sysusers.d accounts come from the accounts pass (with the
    // scriptlets'), the recipe's after it, through the same allocator.
    assert!(
        stderr.contains("scriptlet effect, accounts: user nginx (999:999), from sysusers.d"),
        "{stderr}"
    );
    assert!(
        stderr.contains("accounts created: users app (1500:1500)"),
        "{stderr}"
    );
    let files = layer(&layout);
    let dir = &files["var/lib/nginx"];
    assert_eq!((dir.uid, dir.gid, dir.mode & 0o7777), (999, 999, 0o770));
    let passwd = String::from_utf8_lossy(&files["etc/passwd"].content).into_owned();
    assert!(
        passwd.contains("\nnginx:x:999:999:Nginx web server:/var/lib/nginx:/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(
        passwd.contains("\napp:x:1500:1500::/:/bin/sh\n"),
        "{passwd}"
    );
    let group = String::from_utf8_lossy(&files["etc/group"].content).into_owned();
    assert!(group.contains("\nnginx:x:999:\n"), "{group}");
    assert!(group.contains("\nweb:x:1000:nginx,app\n"), "{group}");
    let shadow = String::from_utf8_lossy(&files["etc/shadow"].content).into_owned();
    assert!(shadow.contains("\nnginx:!:::::::\n"), "{shadow}");
    // The shadow file keeps setup's mode; other files stay root's.
    assert_eq!(files["etc/shadow"].mode & 0o7777, 0);
    assert_eq!(
        (files["usr/sbin/nginx"].uid, files["usr/sbin/nginx"].gid),
        (0, 0)
    );
    // image.user named the account: the config carries its numeric ids.
    assert_eq!(config(&layout)["config"]["User"], "999:999");
    // The skipped %pre is reported as handled by sysusers.d.
    assert!(
        stderr.contains("nginx-filesystem (%pre: accounts, done from sysusers.d)"),
        "{stderr}"
    );
}

#[test]
fn unknown_image_user_is_a_build_error() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["bash"], "user = \"ngnix\"\n");
    let out = build_cmd(
        &recipe,
        &tmp.path().join("x.tar"),
        &tmp.path().join("cache"),
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the image has no user `ngnix` in /etc/passwd"),
        "{stderr}"
    );
    assert!(!tmp.path().join("x.tar").exists());
}

fn rpm_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rpm_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rpm") {
            out.push(p);
        }
    }
}

fn lines(out: &std::process::Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn rpm_reads_the_image_package_database() {
    require_tool("rpm");
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["bash"], "");
    let out = tmp.path().join("img.oci.tar");
    run_ok(&mut build_cmd(&recipe, &out, &tmp.path().join("cache")));
    let rootfs = unpack_archive(&out, tmp.path());
    assert!(rootfs.join("var/lib/rpm/rpmdb.sqlite").is_file());
    assert!(
        !rootfs.join("usr/bin/rpm").exists(),
        "still no package manager"
    );

    // What was fetched is what was installed.
    let mut rpms = Vec::new();
    rpm_files(&tmp.path().join("cache"), &mut rpms);
    assert!(rpms.len() > 5, "{rpms:?}");
    let expected = lines(&run_ok(
        std::process::Command::new("rpm")
            .args(["-qp", "--nosignature", "--qf", "%{NEVRA}\\n"])
            .args(&rpms),
    ));
    let query = |args: &[&str]| {
        run_ok(
            std::process::Command::new("rpm")
                .arg("--root")
                .arg(&rootfs)
                .args(["--dbpath", "/var/lib/rpm"])
                .args(args),
        )
    };
    let installed = lines(&query(&["-qa", "--qf", "%{NEVRA}\\n"]));
    assert_eq!(installed, expected);
    let owner = query(&["-qf", "/usr/bin/bash", "--qf", "%{NAME}\\n"]);
    assert_eq!(String::from_utf8_lossy(&owner.stdout), "bash\n");
}

#[test]
fn rpmdb_false_leaves_the_database_out() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["bash"], "");
    let text = std::fs::read_to_string(&recipe).unwrap() + "[options]\nrpmdb = false\n";
    std::fs::write(&recipe, text).unwrap();
    let (layout, _) = build_layout(&recipe, tmp.path(), &[]);
    let files = layer(&layout);
    assert!(files.contains_key("usr/bin/bash"));
    assert!(
        !files.keys().any(|p| p.starts_with("var/lib/rpm")),
        "no rpmdb"
    );
}

#[test]
fn rootfs_dir_holds_the_final_tree() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["nginx", "glibc-minimal-langpack"], "");
    let dir = tmp.path().join("rootfs");
    let args = ["--rootfs", dir.to_str().unwrap()];
    build_layout(&recipe, tmp.path(), &args);
    assert!(dir.join("usr/sbin/nginx").is_file());
    assert!(dir.join("var/lib/rpm/rpmdb.sqlite").is_file());
    let meta = std::fs::symlink_metadata(dir.join("var/lib/nginx")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o770);
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        // As root, ownership is applied: nginx's id from sysusers.d.
        assert_eq!((meta.uid(), meta.gid()), (999, 999));
    }
    // Building again replaces our own rootfs; someone else's is refused.
    build_layout(&recipe, tmp.path(), &args);
    assert!(dir.join("usr/sbin/nginx").is_file());
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("x"), "").unwrap();
    let out = build_cmd(
        &recipe,
        &tmp.path().join("other.oci"),
        &tmp.path().join("cache"),
    )
    .args(["--format", "oci", "--rootfs"])
    .arg(&theirs)
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to replace it"));
    assert!(theirs.join("x").is_file());
}
