//! Trust end to end: what goes into the image digest (content only, never
//! the mirror's URL), repo credentials (sent only to their host, recorded
//! nowhere), trust anchors fetched safely, signatures on by default, signed
//! metadata that cannot go back in time, and weak signatures refused.
//!
//! The attacker is played by scripted HTTP servers on 127.0.0.1 and by
//! packages and metadata signed with a throwaway key made here. Every refusal
//! also checks that a canary file outside the work directories is untouched
//! and that no output was left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::server::{Handled as Hostile, Response};
use common::*;

// ---------------------------------------------------------------- fixtures

fn signed() -> PathBuf {
    signed_fixtures()
}

fn rsa_fpr() -> String {
    std::fs::read_to_string(signed().join("keys/rsa.fpr"))
        .unwrap()
        .trim()
        .to_string()
}

/// A throwaway signing key of this test binary: (GNUPGHOME, fingerprint, public key file).
struct Signer {
    home: PathBuf,
    fpr: String,
    public: PathBuf,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        require_tool("gpg");
        // gpg starts an agent in GNUPGHOME: stop it before the directory goes.
        let dir = common::process_tempdir(
            "minibuild-trust-gpg-",
            Some(|dir| {
                let _ = Command::new("gpgconf")
                    .env("GNUPGHOME", dir.join("gnupg"))
                    .args(["--kill", "gpg-agent"])
                    .status();
            }),
        );
        let home = dir.join("gnupg");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let gpg = || {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", &home)
                .args(["--batch", "--quiet", "--no-tty"]);
            c
        };
        run_ok(gpg().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "minibuild trust test <trust@minibuild.invalid>",
            "rsa2048",
            "sign",
            "never",
        ]));
        let colons = run_ok(gpg().args(["--with-colons", "--list-keys"]));
        let fpr = String::from_utf8_lossy(&colons.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap();
        let public = dir.join("key.asc");
        let exported = run_ok(gpg().args(["--armor", "--export", &fpr]));
        std::fs::write(&public, exported.stdout).unwrap();
        Signer { home, fpr, public }
    })
}

impl Signer {
    /// Write `repodata/repomd.xml.asc` for the repo at `dir`.
    fn sign_repomd(&self, dir: &Path) {
        let repomd = dir.join("repodata/repomd.xml");
        run_ok(Command::new("gpg").env("GNUPGHOME", &self.home).args([
            "--batch",
            "--yes",
            "--local-user",
            &self.fpr,
            "--detach-sign",
            "--armor",
            repomd.to_str().unwrap(),
        ]));
    }

    /// Sign `rpms` in place with `rpmsign`, over `digest` (sha256, sha1…).
    fn sign_rpms(&self, rpms: &[PathBuf], digest: &str) {
        require_tool("rpmsign");
        let gpg = which("gpg");
        let mut cmd = Command::new("rpmsign");
        cmd.args([
            "--define",
            &format!("__gpg {}", gpg.display()),
            "--define",
            &format!("_gpg_name {}", self.fpr),
            "--define",
            &format!("_gpg_path {}", self.home.display()),
            "--define",
            &format!("_gpg_digest_algo {digest}"),
            "--addsign",
        ])
        .args(rpms);
        run_ok(&mut cmd);
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not installed.\n  hint: run `make deps-test`"))
}

/// Copy busybox and its dependencies (unsigned) from the fixture repo into `dir`.
fn copy_busybox_rpms(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let src = fixtures().join("repo/x86_64");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        let wanted = ["busybox-1.35.0-4", "setup-", "filesystem-", "basesystem-"]
            .iter()
            .any(|w| n.starts_with(w));
        if wanted && n.ends_with(".rpm") {
            let to = dir.join(&n);
            std::fs::copy(&p, &to).unwrap();
            out.push(to);
        }
    }
    assert_eq!(
        out.len(),
        4,
        "fixture RPMs for busybox not found in {}",
        src.display()
    );
    out
}

fn createrepo(dir: &Path, revision: &str) {
    require_tool("createrepo_c");
    run_ok(Command::new("createrepo_c").args([
        "--quiet",
        "--revision",
        revision,
        dir.to_str().unwrap(),
    ]));
}

// ---------------------------------------------------------------- harness

/// A work directory, plus a canary file beside it that no build may touch.
struct Work {
    dir: tempfile::TempDir,
    canary: PathBuf,
    _outside: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let outside = tempfile::tempdir().unwrap();
        let canary = outside.path().join("canary");
        std::fs::write(&canary, "untouched\n").unwrap();
        Work {
            dir: tempfile::tempdir().unwrap(),
            canary,
            _outside: outside,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The final error of a run in this work dir, as snapshot `name`; key
    /// fingerprints (a fresh key per run) redacted.
    fn snapshot(&self, name: &str, out: &Output) {
        let mut settings = snapshot::stable(&[(self.path(), "[TMP]")]);
        settings.add_filter(r"\b[0-9A-F]{40}\b", "[FINGERPRINT]");
        // createrepo stamps the current time: two revisions made within one
        // second add no timestamp clause, otherwise they do.
        settings.add_filter(r", newest timestamp \d+ is older than \d+ seen before", "");
        settings.bind(|| insta::assert_snapshot!(name.to_string(), snapshot::error_message(out)));
    }

    /// A recipe for busybox + basesystem from repo `r` with the given lines.
    fn recipe(&self, file: &str, baseurl: &str, repo_lines: &str, options: &str) -> PathBuf {
        let path = self.path().join(file);
        std::fs::write(
            &path,
            format!(
                "[image]\nname = \"app\"\narch = [\"x86_64\"]\n\n[[repo]]\nname = \"r\"\nbaseurl = \"{baseurl}\"\n{repo_lines}\n\n[packages]\ninstall = [\"busybox\", \"basesystem\"]\n\n[options]\n{options}\n"
            ),
        )
        .unwrap();
        path
    }

    /// `minibuild build RECIPE -o OUT` with the SBOM and provenance beside it.
    fn build(&self, recipe: &Path, out: &str, extra: &[&str]) -> Command {
        let mut cmd = build_cmd(recipe, &self.path().join(out), &self.path().join("cache"));
        cmd.args(extra).env("HOME", self.path());
        cmd
    }

    /// The refusal left nothing behind: no image, no SBOM, no provenance,
    /// no temporary file beside them, and the canary is untouched.
    fn assert_clean_refusal(&self, out: &Output, name: &str, needles: &[&str]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the build should fail:\n{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "stderr lacks `{n}`:\n{stderr}");
        }
        let left: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n2| n2.starts_with(name) || n2.starts_with(".minibuild-"))
            .collect();
        assert!(left.is_empty(), "partial outputs left: {left:?}");
        assert_eq!(
            std::fs::read_to_string(&self.canary).unwrap(),
            "untouched\n"
        );
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "the build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The image's manifest and config as JSON text (via skopeo).
fn manifest_and_config(archive: &Path) -> String {
    require_tool("skopeo");
    let image = format!("oci-archive:{}", archive.display());
    let raw = run_ok(Command::new("skopeo").args(["inspect", "--raw", &image]));
    let config = run_ok(Command::new("skopeo").args(["inspect", "--config", &image]));
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&raw.stdout),
        String::from_utf8_lossy(&config.stdout)
    )
}

// ---------------------------------------------------------------- tests

/// Issue 15 item 3: the same RPMs from a file path, a symlinked path and a
/// loopback HTTP mirror give one image digest; only the provenance tells
/// the mirrors apart.
#[test]
fn the_digest_depends_on_content_not_on_the_mirror() {
    let w = Work::new();
    let repo = signed().join("rsa");
    let link = w.path().join("mirror-link");
    std::os::unix::fs::symlink(&repo, &link).unwrap();
    let server = Hostile::start(move |r| Response::file(&repo, r.path()));
    let recipe = w.recipe(
        "app.toml",
        "file:///unused/$basearch/",
        &format!(
            "repo_gpgcheck = true\ngpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
            signed().join("keys/rsa.asc").display(),
            rsa_fpr()
        ),
        "",
    );
    let mirrors = [
        format!("file://{}/rsa/$basearch/", signed().display()),
        format!("file://{}/$basearch/", link.display()),
        format!("{}/$basearch/", server.url),
    ];
    let mut digests = Vec::new();
    for (i, m) in mirrors.iter().enumerate() {
        let out = ok(w
            .build(
                &recipe,
                &format!("m{i}.oci.tar"),
                &["--baseurl", &format!("r={m}")],
            )
            .output()
            .unwrap());
        digests.push(last_line(&out));
        let prov =
            std::fs::read_to_string(w.path().join(format!("m{i}.oci.tar.intoto.json"))).unwrap();
        let base = m.replace("$basearch", "x86_64");
        assert!(prov.contains(&base), "provenance names the mirror {base}");
    }
    assert!(digests[0].starts_with("sha256:"), "{digests:?}");
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "one digest for three mirrors: {digests:?}"
    );
    // (The RPMs came from the cache by checksum; the metadata from each mirror.)
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path().ends_with("repomd.xml")));
    // The manifest says which repo state and checks made the image, not where it came from.
    let text = manifest_and_config(&w.path().join("m2.oci.tar"));
    assert!(
        text.contains("\"dev.minibuild.repo.r\":\"revision=")
            || text.contains("\"dev.minibuild.repo.r\": \"revision="),
        "{text}"
    );
    assert!(text.contains("gpgcheck=on repo_gpgcheck=on"), "{text}");
    for m in &mirrors {
        let host_or_path = m.trim_end_matches("$basearch/");
        assert!(
            !text.contains(host_or_path),
            "{host_or_path} in the image:\n{text}"
        );
    }
}

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw-7f2a";

/// The signed repo behind Basic auth; `.rpm` requests are redirected to
/// `elsewhere` (another host name for loopback), which must never see the
/// credential.
fn private_mirror(elsewhere: &Hostile) -> Hostile {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let repo = signed().join("rsa");
    let redirect = format!("http://localhost:{}", elsewhere.port);
    Hostile::start(move |r| {
        if r.header("authorization") != Some(expected.as_str()) {
            return Response::status(401).header("WWW-Authenticate", "Basic realm=\"private\"");
        }
        if r.path().ends_with(".rpm") {
            return Response::status(302).header("Location", format!("{redirect}{}", r.path()));
        }
        Response::file(&repo, r.path())
    })
}

/// Issue 12 Critical 3: a private mirror's username and password come from
/// the environment, a file, ~/.netrc or the URL; they reach only that host
/// (not a redirect elsewhere) and appear in no output.
#[test]
fn repo_credentials_reach_only_their_host_and_are_recorded_nowhere() {
    let w = Work::new();
    let repo = signed().join("rsa");
    let elsewhere = Hostile::start(move |r| Response::file(&repo, r.path()));
    let mirror = private_mirror(&elsewhere);
    let key = format!(
        "gpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
        signed().join("keys/rsa.asc").display(),
        rsa_fpr()
    );
    let baseurl = format!("{}/$basearch/", mirror.url);

    // Without a credential: refused by the server, the URL named, nothing left.
    let bare = w.recipe("bare.toml", &baseurl, &key, "");
    let out = w.build(&bare, "bare.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(&out, "bare.oci.tar", &["401", &mirror.url]);

    // From the environment, from a file, from ~/.netrc.
    let secrets = w.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("mirror-password"), format!("{PASSWORD}\n")).unwrap();
    let env = w.recipe(
        "env.toml",
        &baseurl,
        &format!("{key}\nusername = \"{USER}\"\npassword_env = \"MIRROR_PASSWORD\""),
        "",
    );
    let file = w.recipe(
        "file.toml",
        &baseurl,
        &format!(
            "{key}\nusername_env = \"MIRROR_USER\"\npassword_file = \"secrets/mirror-password\""
        ),
        "",
    );
    let netrc = w.recipe("netrc.toml", &baseurl, &key, "");
    // In the URL, as dnf allows: taken out of it at once.
    let inline = w.recipe(
        "inline.toml",
        &format!(
            "http://{USER}:{PASSWORD}@127.0.0.1:{}/$basearch/",
            mirror.port
        ),
        &key,
        "",
    );
    let mut outputs = Vec::new();
    let env_out = ok(w
        .build(&env, "env.oci.tar", &[])
        .env("MIRROR_PASSWORD", PASSWORD)
        .output()
        .unwrap());
    outputs.push(("env", env_out));
    outputs.push((
        "file",
        ok(w.build(&file, "file.oci.tar", &[])
            .env("MIRROR_USER", USER)
            .output()
            .unwrap()),
    ));
    std::fs::write(
        w.path().join(".netrc"),
        format!("machine other.example login x password y\nmachine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    )
    .unwrap();
    outputs.push((
        "netrc",
        ok(w.build(&netrc, "netrc.oci.tar", &[]).output().unwrap()),
    ));
    std::fs::remove_file(w.path().join(".netrc")).unwrap();
    outputs.push((
        "inline",
        ok(w.build(&inline, "inline.oci.tar", &[]).output().unwrap()),
    ));
    let lock = run_ok(
        minibuild()
            .arg("lock")
            .arg(&inline)
            .arg("--cache-dir")
            .arg(w.path().join("cache"))
            .env("HOME", w.path())
            .env("CI", "1"),
    );

    // The mirror got the credential; the host it redirected to never did.
    assert!(mirror
        .requests()
        .iter()
        .any(|r| r.header("authorization").is_some()));
    let redirected = elsewhere.requests();
    assert!(
        redirected.iter().any(|r| r.path().ends_with(".rpm")),
        "the packages came through the redirect"
    );
    assert!(
        redirected
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "credential sent to another host: {redirected:?}"
    );

    // Nowhere in what minibuild prints or writes.
    let mut texts = vec![(
        "lock".to_string(),
        std::fs::read_to_string(w.path().join("inline.toml.lock")).unwrap()
            + &String::from_utf8_lossy(&lock.stderr),
    )];
    for (name, out) in &outputs {
        let archive = w.path().join(format!("{name}.oci.tar"));
        texts.push((
            format!("{name} stderr"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
        texts.push((
            format!("{name} stdout"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
        texts.push((format!("{name} image"), manifest_and_config(&archive)));
        for ext in ["spdx.json", "intoto.json"] {
            let p = w.path().join(format!("{name}.oci.tar.{ext}"));
            texts.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    for (what, text) in &texts {
        assert!(
            !text.contains(PASSWORD),
            "the password is in {what}:\n{text}"
        );
        assert!(
            !text.contains(&format!("{USER}@")) && !text.contains(&format!("{USER}:")),
            "userinfo in {what}:\n{text}"
        );
    }
    assert_eq!(std::fs::read_to_string(&w.canary).unwrap(), "untouched\n");
}

/// Issue 12 High 4: a key fetched over plain http from the mirror itself is
/// whatever the mirror says; it is refused unless pinned by fingerprint.
#[test]
fn a_gpgkey_over_plain_http_needs_a_pinned_fingerprint() {
    let w = Work::new();
    let root = signed();
    let mirror = Hostile::start(move |r| {
        // The attacker serves its own key where the recipe looks for one.
        match r.path().strip_prefix("/keys/") {
            Some(_) => Response::file(&root.join("keys"), &r.path()["/keys".len()..]),
            None => Response::file(&root.join("rsa"), r.path()),
        }
    });
    let baseurl = format!("{}/$basearch/", mirror.url);
    let key_url = format!("{}/keys/rsa.asc", mirror.url);
    let plain = w.recipe(
        "plain.toml",
        &baseurl,
        &format!("gpgkey = \"{key_url}\""),
        "",
    );
    let out = w.build(&plain, "plain.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "plain.oci.tar",
        &["repo `r`", &key_url, "plain http", "hint:", "fingerprint"],
    );
    assert!(
        mirror.requests().is_empty(),
        "refused before anything was fetched: {:?}",
        mirror.requests()
    );

    // Pinned to the fingerprint the recipe's author checked: accepted.
    let pinned = w.recipe(
        "pinned.toml",
        &baseurl,
        &format!(
            "gpgkey = {{ url = \"{key_url}\", fingerprint = \"{}\" }}",
            rsa_fpr()
        ),
        "",
    );
    let out = ok(w.build(&pinned, "pinned.oci.tar", &[]).output().unwrap());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4 of 4 package signatures verified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Pinned, but the mirror swaps in another key: refused by the pin.
    let other = std::fs::read_to_string(signed().join("keys/other.fpr")).unwrap();
    let swapped = w.recipe(
        "swapped.toml",
        &baseurl,
        &format!(
            "gpgkey = {{ url = \"{}/keys/other.asc\", fingerprint = \"{}\" }}",
            mirror.url,
            rsa_fpr()
        ),
        "",
    );
    let out = w.build(&swapped, "swapped.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "swapped.oci.tar",
        &["pinned fingerprint", other.trim()],
    );
}

/// Issue 12 Medium 10: a repo without a key does not quietly build
/// unchecked; `gpgcheck = false` (or `--no-gpgcheck NAME`) must say so.
#[test]
fn a_repo_without_gpgkey_fails_closed() {
    let w = Work::new();
    let baseurl = fixture_file_url();
    let silent = w.recipe("silent.toml", &baseurl, "", "");
    let out = w.build(&silent, "silent.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "silent.oci.tar",
        &[
            "silent.toml:5:1",
            "repo `r` names no gpgkey",
            "gpgcheck = false",
        ],
    );
    w.snapshot("repo_without_gpgkey", &out);
    // --strict changes nothing about it, and neither does an explicit gpgcheck = true.
    let on = w.recipe("on.toml", &baseurl, "gpgcheck = true", "");
    let out = w.build(&on, "on.oci.tar", &["--strict"]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "on.oci.tar",
        &["checks signatures but names no gpgkey"],
    );
    w.snapshot("gpgcheck_true_without_gpgkey", &out);

    // Written out: builds, warns, and records it.
    let off = w.recipe("off.toml", &baseurl, "gpgcheck = false", "");
    let written = ok(w.build(&off, "off.oci.tar", &[]).output().unwrap());
    // From the command line, for a recipe that names a key the mirror does not match.
    let keyed = w.recipe(
        "keyed.toml",
        &baseurl,
        &format!("gpgkey = \"{}\"", signed().join("keys/rsa.asc").display()),
        "",
    );
    let flagged = ok(w
        .build(&keyed, "keyed.oci.tar", &["--no-gpgcheck", "r"])
        .output()
        .unwrap());
    for (name, out) in [("off", &written), ("keyed", &flagged)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("package signatures are NOT checked"),
            "{stderr}"
        );
        let image = manifest_and_config(&w.path().join(format!("{name}.oci.tar")));
        assert!(image.contains("gpgcheck=off"), "{image}");
        let prov =
            std::fs::read_to_string(w.path().join(format!("{name}.oci.tar.intoto.json"))).unwrap();
        assert!(
            prov.contains("\"signatureChecksOff\": [\n") && prov.contains("\"r\""),
            "{prov}"
        );
    }
    let out = w
        .build(&keyed, "typo.oci.tar", &["--no-gpgcheck", "fedora"])
        .output()
        .unwrap();
    w.assert_clean_refusal(&out, "typo.oci.tar", &["--no-gpgcheck names repo `fedora`"]);
    w.snapshot("no_gpgcheck_unknown_repo", &out);
}

/// Issue 12 Medium 9: with repo_gpgcheck, an older repomd.xml (validly
/// signed, replayed by the mirror) is refused unless --allow-downgrade.
#[test]
fn a_replayed_older_signed_repomd_is_refused() {
    let w = Work::new();
    let s = signer();
    let mirror = w.path().join("mirror");
    copy_busybox_rpms(&mirror);
    // Revision 100, kept aside; then revision 200 is published.
    createrepo(&mirror, "100");
    s.sign_repomd(&mirror);
    let old = w.path().join("repodata-100");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(mirror.join("repodata"))
            .arg(&old),
    );
    std::fs::remove_dir_all(mirror.join("repodata")).unwrap();
    createrepo(&mirror, "200");
    s.sign_repomd(&mirror);

    let recipe = w.recipe(
        "app.toml",
        &format!("file://{}/", mirror.display()),
        &format!(
            "gpgcheck = false\nrepo_gpgcheck = true\ngpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
            s.public.display(),
            s.fpr
        ),
        "",
    );
    let fresh = ok(w.build(&recipe, "new.oci.tar", &[]).output().unwrap());
    assert!(String::from_utf8_lossy(&fresh.stderr).contains("revision 200"));

    // The mirror now serves the old, validly signed metadata.
    std::fs::remove_dir_all(mirror.join("repodata")).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(&old)
            .arg(mirror.join("repodata")),
    );
    let out = w.build(&recipe, "old.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "old.oci.tar",
        &[
            "repo `r`",
            "repomd.xml goes back in time",
            "revision 100 is older than 200",
            "--allow-downgrade",
        ],
    );
    w.snapshot("repomd_replayed_older", &out);

    // Knowingly: accepted, and the provenance says so.
    let out = ok(w
        .build(&recipe, "old.oci.tar", &["--allow-downgrade"])
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revision 100"));
    let prov = std::fs::read_to_string(w.path().join("old.oci.tar.intoto.json")).unwrap();
    assert!(prov.contains("\"repomdDowngradeAllowed\": true"), "{prov}");
    // The mark stays at the newest seen: the replay is still refused afterwards.
    let out = w.build(&recipe, "again.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(&out, "again.oci.tar", &["revision 100 is older than 200"]);
}

/// Issue 12 Low 11: packages signed over SHA-1 are refused by default,
/// naming the package and the opt-in; `legacy_signatures = true` accepts
/// them and the provenance records it.
#[test]
fn sha1_signatures_are_refused_unless_the_recipe_opts_in() {
    let w = Work::new();
    let s = signer();
    let mirror = w.path().join("mirror");
    let rpms = copy_busybox_rpms(&mirror);
    s.sign_rpms(&rpms, "sha1");
    createrepo(&mirror, "1");
    let key = format!(
        "gpgkey = {{ url = \"{}\", fingerprint = \"{}\" }}",
        s.public.display(),
        s.fpr
    );
    let baseurl = format!("file://{}/", mirror.display());
    let strict = w.recipe("strict.toml", &baseurl, &key, "");
    let out = w.build(&strict, "strict.oci.tar", &[]).output().unwrap();
    w.assert_clean_refusal(
        &out,
        "strict.oci.tar",
        &[
            "SHA-1 signature digest",
            "legacy_signatures = true",
            "hint:",
        ],
    );
    w.snapshot("sha1_signature_refused", &out);

    let legacy = w.recipe("legacy.toml", &baseurl, &key, "legacy_signatures = true");
    let out = ok(w.build(&legacy, "legacy.oci.tar", &[]).output().unwrap());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4 of 4 package signatures verified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prov = std::fs::read_to_string(w.path().join("legacy.oci.tar.intoto.json")).unwrap();
    assert!(
        prov.contains("\"legacySignaturesAccepted\": true"),
        "{prov}"
    );

    // The same packages signed over SHA-256 need no opt-in.
    let modern = w.path().join("modern");
    let rpms = copy_busybox_rpms(&modern);
    s.sign_rpms(&rpms, "sha256");
    createrepo(&modern, "1");
    let ok_recipe = w.recipe(
        "modern.toml",
        &format!("file://{}/", modern.display()),
        &key,
        "",
    );
    ok(w.build(&ok_recipe, "modern.oci.tar", &[]).output().unwrap());
}
