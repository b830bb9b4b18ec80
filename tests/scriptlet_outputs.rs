//! End to end: what `%post` scriptlets would have produced. A private CA from
//! the recipe makes TLS verification inside the image succeed (and its
//! absence makes it fail); a library in a directory named only in
//! /etc/ld.so.conf.d is found through the native /etc/ld.so.cache, whose
//! entries agree with Debian's `ldconfig -r` on the same root.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;
use minibuild::rootfs::ldcache::LdCache;

fn write_recipe(dir: &Path, install: &[&str], extra: &str) -> PathBuf {
    let path = dir.join("recipe.toml");
    let list: Vec<String> = install.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "[image]\nname = \"t\"\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n\n\
             [options]\nreleasever = \"40\"\n{extra}",
            fixture_file_url(),
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

fn build_and_unpack(recipe: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("image.oci.tar");
    run_ok(&mut build_cmd(recipe, &out, &dir.join("cache")));
    unpack_archive(&out, dir)
}

fn openssl(dir: &Path, args: &[&str]) {
    require_tool("openssl");
    run_ok(Command::new("openssl").args(args).current_dir(dir));
}

/// A TLS server on 127.0.0.1, killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 it signed, served by
/// `openssl s_server`.
fn tls_server(dir: &Path) -> TlsServer {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-days",
        "2",
        "-subj",
        "/CN=minibuild test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req", "-new"];
    args.extend(ec);
    args.extend([
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
    ]);
    openssl(dir, &args);
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "srv.pem",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server", "-quiet", "-www", "-cert", "srv.pem", "-key", "srv.key", "-accept",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    // Wait until it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    TlsServer { child, port }
}

/// `openssl s_client` inside the image (chroot), verification errors fatal.
fn s_client(rootfs: &Path, port: u16) -> Output {
    Command::new("chroot")
        .arg(rootfs)
        .args([
            "/usr/bin/openssl",
            "s_client",
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-connect",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .env_clear()
        .env("PATH", "/usr/bin:/usr/sbin")
        .stdin(Stdio::null())
        .output()
        .expect("chroot")
}

#[test]
fn private_ca_from_the_recipe_makes_tls_verify_inside_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let server = tls_server(tmp.path());
    let pkgs = ["ca-certificates", "openssl", "glibc-minimal-langpack"];

    let with = tmp.path().join("with");
    std::fs::create_dir(&with).unwrap();
    std::fs::copy(tmp.path().join("ca.pem"), with.join("my-ca.pem")).unwrap();
    let recipe = write_recipe(
        &with,
        &pkgs,
        "\n[certificates]\nadditional = [\"my-ca.pem\"]\n",
    );
    let rootfs = build_and_unpack(&recipe, &with);
    let bundle =
        std::fs::read_to_string(rootfs.join("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"))
            .unwrap();
    assert!(bundle.contains("# minibuild test CA\n"));
    // Debian's Mozilla set from the p11-kit source is there too, sorted by label.
    assert!(bundle.matches("-----BEGIN CERTIFICATE-----").count() > 100);
    assert!(rootfs
        .join("etc/pki/ca-trust/source/anchors/my-ca.pem")
        .is_file());
    // The package's (absolute) symlinks now resolve inside the image.
    for link in [
        "etc/pki/tls/certs/ca-bundle.crt",
        "etc/pki/tls/cert.pem",
        "etc/pki/tls/certs/ca-bundle.trust.crt",
    ] {
        let target = std::fs::read_link(rootfs.join(link)).unwrap();
        let inside = rootfs.join(target.strip_prefix("/").unwrap());
        assert!(
            std::fs::metadata(&inside).is_ok_and(|m| m.len() > 0),
            "{link} -> {target:?}"
        );
    }
    let ok = s_client(&rootfs, server.port);
    assert!(
        ok.status.success(),
        "TLS verification inside the image failed: {}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let without = tmp.path().join("without");
    std::fs::create_dir(&without).unwrap();
    let recipe = write_recipe(&without, &pkgs, "");
    let rootfs = build_and_unpack(&recipe, &without);
    let no = s_client(&rootfs, server.port);
    assert!(!no.status.success(), "verified without the private CA");
    assert!(
        String::from_utf8_lossy(&no.stdout).contains("Verify return code: 19")
            || String::from_utf8_lossy(&no.stderr).contains("verify error"),
        "{no:?}"
    );
}

#[test]
fn library_in_ld_so_conf_d_dir_runs_through_the_native_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write_recipe(tmp.path(), &["fx", "glibc-minimal-langpack"], "");
    let rootfs = build_and_unpack(&recipe, tmp.path());
    let out = run_in(&rootfs, &["/opt/fx/bin/fx-hello"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fx 42\n");

    let ours = LdCache::parse(&std::fs::read(rootfs.join("etc/ld.so.cache")).unwrap()).unwrap();
    assert!(
        ours.iter().any(|e| e.path == "/opt/fx/lib/libfx.so.1"),
        "{ours:?}"
    );

    // Debian's ldconfig on the same root (it knows Debian's built-in dirs,
    // we use Fedora's /lib64 and /usr/lib64): every entry it makes from the
    // configured directories is ours too, in the same relative order.
    let reference = rootfs.join("ld.so.cache.ref");
    run_ok(
        Command::new("ldconfig")
            .args(["-X", "-C", "/ld.so.cache.ref", "-r"])
            .arg(&rootfs),
    );
    let theirs = LdCache::parse(&std::fs::read(&reference).unwrap()).unwrap();
    let from_conf = |e: &&minibuild::rootfs::ldcache::CacheEntry| {
        !(e.path.starts_with("/lib64/") || e.path.starts_with("/usr/lib64/"))
    };
    let ours_conf: Vec<_> = ours.iter().filter(from_conf).collect();
    let theirs_conf: Vec<_> = theirs.iter().filter(from_conf).collect();
    assert_eq!(ours_conf, theirs_conf);
    assert!(theirs.len() > 20, "{}", theirs.len());
}
