//! `minibuild check` on a foreign image crafted byte by byte: what a tree
//! cannot hold (device nodes, `..` names, hardlinks out of the root) and
//! what a reviewer must see (file capabilities, setuid and world-writable
//! files under /tmp and /var/tmp) is reported as an error, never skipped,
//! and checking leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sha2::{Digest as _, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha(data);
    std::fs::write(
        layout.join("blobs/sha256").join(&digest["sha256:".len()..]),
        data,
    )
    .unwrap();
    digest
}

/// An OCI layout at `dir` with one image of one uncompressed `layer`.
fn layout(dir: &Path, layer: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let layer_digest = put_blob(dir, layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_digest = put_blob(dir, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_digest = put_blob(dir, manifest.as_bytes());
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MANIFEST}","digest":"{manifest_digest}","size":{}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Set the raw name, bypassing the tar crate's refusal of `..`.
fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, mut h: tar::Header, data: &[u8]) {
    raw_name(&mut h, name);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn hostile_layer() -> Vec<u8> {
    use tar::EntryType::*;
    let mut builder = tar::Builder::new(Vec::new());
    let b = &mut builder;
    append(b, "tmp/", header(Directory, 0o1777, 0), b"");
    append(b, "var/", header(Directory, 0o755, 0), b"");
    append(b, "var/tmp/", header(Directory, 0o1777, 0), b"");
    append(b, "tmp/suid", header(Regular, 0o4755, 3), b"#!\n");
    append(b, "var/tmp/notes", header(Regular, 0o666, 0), b"");
    let mut mem = header(Char, 0o640, 0);
    mem.set_device_major(1).unwrap();
    mem.set_device_minor(1).unwrap();
    append(b, "dev/mem", mem, b"");
    let mut sda = header(Block, 0o660, 0);
    sda.set_device_major(8).unwrap();
    sda.set_device_minor(0).unwrap();
    append(b, "dev/sda", sda, b"");
    append(b, "../../etc/evil", header(Regular, 0o644, 3), b"x\n\n");
    let mut link = header(Link, 0o644, 0);
    link.set_link_name_literal("../../etc/shadow").unwrap();
    append(b, "usr/bin/shadow", link, b"");
    // security.capability for cap_sys_admin=ep (vfs_cap_data revision 2),
    // as the PAX record of the entry that follows.
    let mut caps = Vec::new();
    for word in [0x0200_0001u32, 1 << 21, 0, 0, 0] {
        caps.extend_from_slice(&word.to_le_bytes());
    }
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &caps[..])])
        .unwrap();
    append(b, "usr/bin/admin", header(Regular, 0o755, 3), b"#!\n");
    builder.into_inner().unwrap()
}

#[test]
fn check_reports_what_a_foreign_image_hides() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("canary");
    std::fs::write(&canary, "host file\n").unwrap();
    let private_tmp = tmp.path().join("tmpdir");
    std::fs::create_dir(&private_tmp).unwrap();
    let dir = layout(&tmp.path().join("img.oci"), &hostile_layer());

    // The same image as a layout directory and as an oci-archive.
    let archive = tmp.path().join("img.oci.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        b.append_dir_all(".", &dir).unwrap();
        b.finish().unwrap();
    }
    for image in [&dir, &archive] {
        let res = minibuild()
            .arg("check")
            .arg(image)
            .env("TMPDIR", &private_tmp)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&res.stdout);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "findings exit 1: {out}{err}");
        assert!(err.is_empty(), "findings, not an error: {err}");
        for want in [
            "linux/amd64 error: /tmp/suid: is setuid (4755)",
            "linux/amd64 error: /var/tmp/notes: is world-writable (0666)",
            "linux/amd64 error: /usr/bin/admin: has file capabilities cap_sys_admin=ep",
            "linux/amd64 error: /dev/mem: is a character device node (1:1, mode 0640)",
            "linux/amd64 error: /dev/sda: is a block device node (8:0, mode 0660)",
            "linux/amd64 error: /../../etc/evil: has a `..` component",
            "linux/amd64 error: /usr/bin/shadow: is a hardlink to `../../etc/shadow`, outside the image root",
        ] {
            assert!(out.contains(want), "{} lacks `{want}`:\n{out}", image.display());
        }
        assert!(
            out.contains("(layer sha256:"),
            "findings name the layer:\n{out}"
        );
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "host file\n");
        assert!(!tmp.path().join("etc").exists());
        let left: Vec<_> = std::fs::read_dir(&private_tmp).unwrap().collect();
        assert!(left.is_empty(), "check left {left:?} in TMPDIR");
    }
}

/// An image that cannot be read exits 2, not 1: "cannot tell" is not
/// "has problems", so a CI gate can tell a broken pipeline from a bad image.
#[test]
fn an_unreadable_image_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.oci.tar");
    let not_tar = tmp.path().join("notes.txt");
    std::fs::write(&not_tar, "not an image\n").unwrap();
    for image in [&missing, &not_tar] {
        let res = minibuild().arg("check").arg(image).output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{err}");
        assert!(err.contains(&image.display().to_string()), "{err}");
        assert!(res.stdout.is_empty());
    }
}
