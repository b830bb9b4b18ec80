//! `minibuild vendor`: the locked RPMs and their repo's signed metadata in
//! a directory, then a build from it with the network gone gives the same
//! image. The vendored copy is treated as hostile as any mirror.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::server::Server;
use common::*;

fn recipe(dir: &Path) -> std::path::PathBuf {
    let signed = signed_fixtures();
    let fpr = fs::read_to_string(signed.join("keys/rsa.fpr")).unwrap();
    let path = dir.join("app.toml");
    fs::write(
        &path,
        format!(
            "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"r\"\n\
             baseurl = \"file:///unused/$basearch/\"\nrepo_gpgcheck = true\n\
             gpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}\n\n\
             [packages]\ninstall = [\"busybox\", \"basesystem\"]\n",
            signed.join("keys/rsa.asc").display(),
            fpr.trim()
        ),
    )
    .unwrap();
    path
}

fn run(cmd: &str, recipe: &Path, cache: &Path, mirror: &str) -> Command {
    let mut c = minibuild();
    c.arg(cmd)
        .arg(recipe)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--baseurl")
        .arg(format!("r={mirror}"));
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_vendored_directory_builds_the_same_image_with_no_network() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = recipe(tmp.path());
    let cache = tmp.path().join("cache");
    let server = Server::serve(&signed_fixtures().join("rsa"));
    let mirror = format!("{}/$basearch/", server.url);

    // No lock: nothing to vendor, and nothing written.
    let vendored = tmp.path().join("vendored");
    let res = run("vendor", &recipe, &cache, &mirror)
        .arg(&vendored)
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(
        stderr(&res).contains("hint: run `minibuild lock"),
        "{}",
        stderr(&res)
    );
    assert!(!vendored.exists());

    run_ok(&mut run("lock", &recipe, &cache, &mirror));
    let online = run_ok(
        run("build", &recipe, &cache, &mirror)
            .arg("-o")
            .arg(tmp.path().join("online.tar")),
    );
    run_ok(run("vendor", &recipe, &cache, &mirror).arg(&vendored));
    let repo = vendored.join("r/x86_64");
    assert!(repo.join("repodata/repomd.xml").is_file());
    assert_eq!(
        fs::read(repo.join("repodata/repomd.xml.asc")).unwrap(),
        fs::read(signed_fixtures().join("rsa/x86_64/repodata/repomd.xml.asc")).unwrap(),
        "the repo's own signature, byte for byte"
    );
    let rpms: Vec<_> = walk(&repo)
        .into_iter()
        .filter(|p| p.ends_with(".rpm"))
        .collect();
    assert!(rpms.len() >= 2, "{rpms:?}");
    drop(server);

    // Another machine: no server, an empty cache, only the vendored dir.
    let local = format!("file://{}/r/$basearch/", vendored.display());
    let cold = tmp.path().join("cold-cache");
    let offline = run_ok(
        run("build", &recipe, &cold, &local)
            .arg("-o")
            .arg(tmp.path().join("offline.tar"))
            .arg("--offline"),
    );
    assert_eq!(
        last_line(&offline),
        last_line(&online),
        "same image from the vendored dir"
    );

    // A vendored RPM altered afterwards is refused, as from any mirror.
    let victim = repo.join(&rpms[0]);
    let mut bytes = fs::read(&victim).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    fs::write(&victim, bytes).unwrap();
    let res = run("build", &recipe, &tmp.path().join("cache3"), &local)
        .arg("-o")
        .arg(tmp.path().join("tampered.tar"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    assert!(stderr(&res).contains("sha256"), "{}", stderr(&res));
    assert!(!tmp.path().join("tampered.tar").exists());

    // DIR that holds anything is the user's: refused, untouched.
    let res = run("vendor", &recipe, &cache, &local)
        .arg(&vendored)
        .output()
        .unwrap();
    assert!(stderr(&res).contains("is not empty"), "{}", stderr(&res));
    assert!(repo.join("repodata/repomd.xml").is_file());
}

/// Paths of regular files under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
