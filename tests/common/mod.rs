//! Shared harness for the end-to-end tests: the fixture repository, a loopback
//! HTTP server, the minibuild binary, and the external consumers (skopeo,
//! umoci, chroot) that prove an image is valid and runs.
#![allow(dead_code)]

pub mod bdb;
pub mod registry;
pub mod scriptlet_specs;
pub mod server;
pub mod snapshot;
pub mod treediff;
// One definition of where the shared corpus is, for unit and end-to-end tests.
#[path = "../../src/testing.rs"]
mod testing;
#[allow(unused_imports)]
pub use testing::corpus;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture repository built by `make fixtures` (tests/fixtures/make-repo.sh).
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("MINIBUILD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"));
    let repodata = dir.join("repo/x86_64/repodata/repomd.xml");
    assert!(
        repodata.is_file(),
        "fixture repository missing: {} not found.\n  hint: run `make fixtures` (or `make test`, which builds it)",
        repodata.display()
    );
    dir
}

/// `file://` URL of the fixture repo with `$basearch` left for minibuild to fill in.
pub fn fixture_file_url() -> String {
    format!("file://{}/repo/$basearch/", fixtures().display())
}

pub fn recipe(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("recipes")
        .join(name)
}

pub fn minibuild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minibuild"))
}

/// `minibuild build RECIPE -o OUT --cache-dir CACHE` with plain (non-TTY)
/// progress; callers add their own flags.
pub fn build_cmd(recipe: &Path, out: &Path, cache: &Path) -> Command {
    let mut cmd = minibuild();
    cmd.arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .env("CI", "1");
    cmd
}

/// Panics with an install hint when a test's external tool is missing: a
/// test that cannot check what it claims must fail, not pass.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed.\n  hint: run `make deps-test`"
    );
}

/// Run a command, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The last line of stdout, where minibuild prints the manifest digest.
pub fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Extract an oci-archive with umoci into `dir/rootfs` (rootless mode, so no
/// chown is needed and ownership is recorded in umoci's metadata instead).
pub fn unpack_archive(archive: &Path, dir: &Path) -> PathBuf {
    unpack_archive_for(archive, dir, None)
}

/// [`unpack_archive`] for the platform `arch` (an OCI name such as `arm64`)
/// of a multi-arch image, into `dir/layout-ARCH` and `dir/bundle-ARCH`.
pub fn unpack_archive_for(archive: &Path, dir: &Path, arch: Option<&str>) -> PathBuf {
    unpack_image(&format!("oci-archive:{}", archive.display()), dir, arch)
}

/// [`unpack_archive_for`] from any skopeo source (`docker-archive:FILE`…);
/// the copy stays in `dir/layout[-ARCH]` as `img`.
pub fn unpack_image(source: &str, dir: &Path, arch: Option<&str>) -> PathBuf {
    require_tool("skopeo");
    require_tool("umoci");
    let suffix = arch.map(|a| format!("-{a}")).unwrap_or_default();
    let layout = dir.join(format!("layout{suffix}"));
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet"]);
    if let Some(arch) = arch {
        copy.args(["--override-arch", arch]);
    }
    run_ok(copy.args([source, &format!("oci:{}:img", layout.display())]));
    let bundle = dir.join(format!("bundle{suffix}"));
    run_ok(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:img", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    bundle.join("rootfs")
}

/// Run `argv` inside `rootfs` with chroot (as root) or in a user namespace.
pub fn run_in(rootfs: &Path, argv: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("chroot");
        c.arg(rootfs);
        c
    } else {
        let mut c = Command::new("unshare");
        c.args(["--map-root-user", "chroot"]).arg(rootfs);
        c
    };
    cmd.args(argv)
        .env_clear()
        .env("PATH", "/usr/bin:/usr/sbin:/bin:/sbin");
    run_ok(&mut cmd)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions; reading /proc avoids a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Hash of every file in a directory tree (or of one file).
pub fn snapshot(path: &Path) -> std::collections::BTreeMap<PathBuf, minibuild::digest::Digest> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            out.insert(
                p.clone(),
                minibuild::digest::Digest::sha256_of(&std::fs::read(&p).unwrap()),
            );
        }
    }
    out
}

/// target/fixtures/signed (tests/fixtures/make-signed.sh, built on first
/// use): busybox and its three dependencies signed with a throwaway RSA
/// key (`rsa/`, `keys/rsa.asc`, `keys/rsa.fpr`), repomd.xml.asc too.
pub fn signed_fixtures() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let fixtures = fixtures();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-signed.sh");
        run_ok(Command::new(script).arg(&fixtures));
        fixtures.join("signed")
    })
    .clone()
}

/// `rpmbuild -bb` for the tests' own packages: topdir `top`, RPMs into
/// `rpmdir`, no build-id links or post-install processing, bash for
/// scriptlets in %install, SOURCE_DATE_EPOCH fixed. Add more `--define`s,
/// then the spec file, and run it.
pub fn rpmbuild(top: &Path, rpmdir: &Path) -> Command {
    require_tool("rpmbuild");
    let mut cmd = Command::new("rpmbuild");
    cmd.args(["-bb", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", rpmdir.display()))
        .args(["--define", "_build_id_links none"])
        .args(["--define", "__os_install_post %{nil}"])
        .args(["--define", "_buildshell /bin/bash"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("HOME", top);
    cmd
}

/// rpm-md metadata for the RPMs under `repo` (createrepo_c, no sqlite).
pub fn createrepo(repo: &Path) {
    require_tool("createrepo_c");
    run_ok(
        Command::new("createrepo_c")
            .args(["--quiet", "--no-database"])
            .arg(repo),
    );
}

/// A temporary directory that lives as long as the test process: for a
/// fixture built once in a `OnceLock` and shared by a file's tests. A
/// static is never dropped, so a plain `TempDir` there would stay behind
/// in `$TMPDIR`; these are removed when the process exits (all tests
/// done, passed or failed). `cleanup` runs first, e.g. to stop a daemon
/// started in the directory.
pub fn process_tempdir(prefix: &str, cleanup: Option<fn(&Path)>) -> PathBuf {
    use std::sync::{Mutex, Once};
    type Held = (tempfile::TempDir, Option<fn(&Path)>);
    static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());
    static REGISTER: Once = Once::new();
    extern "C" fn remove_all() {
        let held = std::mem::take(&mut *HELD.lock().unwrap_or_else(|e| e.into_inner()));
        for (dir, cleanup) in held {
            if let Some(f) = cleanup {
                // No unwinding out of an exit handler.
                let _ = std::panic::catch_unwind(|| f(dir.path()));
            }
            drop(dir);
        }
    }
    REGISTER.call_once(|| {
        // SAFETY: remove_all is a plain extern "C" fn that does not unwind.
        let registered = unsafe { libc::atexit(remove_all) };
        assert_eq!(registered, 0, "cannot register the temporaries' cleanup");
    });
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let path = dir.path().to_path_buf();
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((dir, cleanup));
    path
}

/// Package names the image's rpmdb lists, as the real rpm reads it.
pub fn rpm_names(rootfs: &Path) -> std::collections::BTreeSet<String> {
    require_tool("rpm");
    let out = run_ok(Command::new("rpm").arg("--root").arg(rootfs).args([
        "--dbpath",
        "/var/lib/rpm",
        "-qa",
        "--qf",
        "%{NAME}\\n",
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
