use std::path::Path;
use std::process::Command;

use super::*;
use crate::rootfs::{tree::implied_dir, BlobRef, Entry};

#[test]
fn libcmp_compares_digit_runs_numerically() {
    assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Ordering::Greater);
    assert_eq!(libcmp("libfoo.so.9", "libfoo.so.10"), Ordering::Less);
    assert_eq!(libcmp("libc.so.6", "libc.so.6"), Ordering::Equal);
    // A digit sorts after a non-digit; a longer name after its prefix.
    assert_eq!(libcmp("lib1", "liba"), Ordering::Greater);
    assert_eq!(libcmp("libz.so", "libz.so.1"), Ordering::Less);
    assert_eq!(libcmp("libb", "liba"), Ordering::Greater);
}

#[test]
fn string_table_shares_suffixes_like_glibc() {
    let (table, off) = string_table(&["libz.so.1", "/usr/lib64/libz.so.1", "libc.so.6"]);
    // "libz.so.1" is a suffix of the path: stored once.
    assert_eq!(off["/usr/lib64/libz.so.1"] + 11, off["libz.so.1"]);
    assert_eq!(
        table.len(),
        "/usr/lib64/libz.so.1".len() + 1 + "libc.so.6".len() + 1
    );
    // Reversed strings, descending: "...1" before "...6"? '6' > '1', so libc first.
    assert_eq!(off["libc.so.6"], 0);
}

#[test]
fn system_dirs_expand_like_upstream_glibc() {
    assert_eq!(
        system_dir("/usr/lib64", Arch::X86_64),
        ["/usr/lib", "/usr/lib64", "/usr/libx32"]
    );
    assert_eq!(
        system_dir("/lib64", Arch::Aarch64),
        ["/lib", "/lib64", "/libilp32"]
    );
    assert_eq!(system_dir("/opt/x", Arch::X86_64), ["/opt/x"]);
}

/// A tree mirroring a host directory: blobs are the host files themselves.
fn tree_of(root: &Path) -> Tree {
    fn walk(tree: &mut Tree, root: &Path, dir: &Path) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let kind = if meta.file_type().is_symlink() {
                Kind::Symlink {
                    target: std::fs::read_link(&p).unwrap().to_str().unwrap().into(),
                }
            } else if meta.is_dir() {
                Kind::Dir
            } else {
                Kind::File {
                    blob: BlobRef::whole_file(&p).unwrap(),
                    size: meta.len(),
                    link_id: None,
                }
            };
            let is_dir = kind == Kind::Dir;
            tree.entries.insert(
                rel,
                Entry {
                    kind,
                    package: Some("fixture".into()),
                    ..implied_dir()
                },
            );
            if is_dir {
                walk(tree, root, &p);
            }
        }
    }
    let mut tree = Tree::default();
    walk(&mut tree, root, root);
    tree
}

/// A small root with libraries from the test host, laid out like an image:
/// usrmerge symlinks, a multiarch dir listed twice (through `/lib` and
/// `/usr/lib`), a private dir from ld.so.conf.d, a dev `.so` link, a versioned
/// file behind its soname link, a linker script, and a file with no soname.
fn sample_root(dir: &Path) -> std::path::PathBuf {
    let r = dir.join("root");
    let multi = r.join("usr/lib/x86_64-linux-gnu");
    for d in [
        "etc/ld.so.conf.d",
        "usr/lib64",
        "opt/fx/lib",
        "usr/lib/x86_64-linux-gnu",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib64", r.join("lib64")).unwrap();
    std::fs::write(
        r.join("etc/ld.so.conf"),
        "# comment\ninclude /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/ld.so.conf.d/fx.conf"),
        "/opt/fx/lib/   # private\n/lib/x86_64-linux-gnu\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/ld.so.conf.d/zz.conf"),
        "/usr/lib/x86_64-linux-gnu\n",
    )
    .unwrap();
    std::fs::write(r.join("etc/ld.so.conf.d/ignored.txt"), "/nowhere\n").unwrap();
    let host = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];
    let find = |name: &str| {
        host.iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{name} not on the test host"))
    };
    std::fs::copy(find("libc.so.6"), multi.join("libc.so.6")).unwrap();
    let libz = std::fs::canonicalize(find("libz.so.1")).unwrap();
    let libz_name = libz.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::copy(&libz, multi.join(&libz_name)).unwrap();
    std::os::unix::fs::symlink(&libz_name, multi.join("libz.so.1")).unwrap();
    std::os::unix::fs::symlink("libz.so.1", multi.join("libz.so")).unwrap();
    std::fs::write(
        multi.join("libm.so"),
        "/* GNU ld script */\nGROUP ( libm.so.6 )\n",
    )
    .unwrap();
    std::fs::copy(
        std::fs::canonicalize(find("ld-linux-x86-64.so.2")).unwrap(),
        r.join("usr/lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    // A copy under another name is keyed by its soname: the cache names
    // DIR/SONAME, a path that need not exist (ldconfig would make the link).
    std::fs::copy(&libz, r.join("opt/fx/lib/libzcopy.so.3")).unwrap();
    r
}

fn debian_options(generator: &str) -> LdCacheOptions {
    LdCacheOptions {
        arch: Arch::X86_64,
        system_dirs: [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib",
            "/usr/lib",
        ]
        .map(String::from)
        .to_vec(),
        expand_system_dirs: false,
        generator: generator.to_string(),
    }
}

/// The strong check: for the same tree, our bytes equal those of the host's
/// (Debian 12) `ldconfig -r`, given its built-in directories and its
/// generator string.
#[test]
fn same_bytes_as_ldconfig() {
    if !Path::new("/lib/x86_64-linux-gnu/libc.so.6").exists() {
        panic!("this test needs an x86-64 Debian-style host (ldconfig, /lib/x86_64-linux-gnu)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = sample_root(tmp.path());
    let out = Command::new("ldconfig")
        .args(["-X", "-C", "/ld.so.cache.ref", "-r"])
        .arg(&root)
        .output()
        .expect("ldconfig on the test host");
    assert!(out.status.success(), "{out:?}");
    let reference = std::fs::read(root.join("ld.so.cache.ref")).unwrap();
    // ldconfig also wrote its aux cache into the root; not part of the tree.
    let tree = tree_of(&root);
    let generator_at = reference
        .windows(8)
        .position(|w| w == b"ldconfig")
        .expect("generator string");
    let generator = std::str::from_utf8(&reference[generator_at..]).unwrap();
    let cache = scan(&tree, &debian_options(generator)).unwrap();
    let parsed = LdCache::parse(&reference).unwrap();
    assert_eq!(cache.entries, parsed, "entries differ from ldconfig's");
    assert!(cache
        .entries
        .iter()
        .any(|e| e.path == "/opt/fx/lib/libz.so.1"));
    assert_eq!(
        cache.to_bytes(generator),
        reference,
        "bytes differ from ldconfig's"
    );
}

#[test]
fn fedora_layout_cache_lists_private_and_lib64_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = sample_root(tmp.path());
    let tree = tree_of(&root);
    let opts = LdCacheOptions::fedora(Arch::X86_64).unwrap();
    let cache = scan(&tree, &opts).unwrap();
    let paths: Vec<&str> = cache.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/opt/fx/lib/libz.so.1"), "{paths:?}");
    assert!(paths.contains(&"/lib64/ld-linux-x86-64.so.2"), "{paths:?}");
    // /usr/lib/x86_64-linux-gnu is the same directory as the earlier /lib/…: listed once.
    assert!(
        paths.contains(&"/lib/x86_64-linux-gnu/libc.so.6"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("/usr/lib/x86_64")),
        "{paths:?}"
    );
    // The linker script is no library.
    assert!(!paths.iter().any(|p| p.ends_with("libm.so")), "{paths:?}");
    assert!(cache
        .entries
        .iter()
        .all(|e| e.flags == FLAG_ELF_LIBC6 | FLAG_X8664_LIB64));
    // Sorted as ldconfig sorts: soname descending.
    for w in cache.entries.windows(2) {
        assert_ne!(compare(&w[0], &w[1]), Ordering::Greater, "{w:?}");
    }
    let bytes = cache.to_bytes(&opts.generator);
    assert_eq!(LdCache::parse(&bytes).unwrap(), cache.entries);
}

#[test]
fn write_puts_the_cache_in_the_tree_only_with_ld_so_conf() {
    let tmp = tempfile::tempdir().unwrap();
    let root = sample_root(tmp.path());
    let mut tree = tree_of(&root);
    let mut staging = Staging::new(tmp.path().join("staging")).unwrap();
    let opts = LdCacheOptions::fedora(Arch::X86_64).unwrap();
    let report = write(&mut tree, &mut staging, &opts).unwrap().unwrap();
    assert!(report.entries >= 4, "{report:?}");
    let e = &tree.entries[CACHE_PATH];
    assert_eq!((e.mode, e.package.as_deref()), (0o644, None));
    let Kind::File { blob, .. } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(&blob.read_to_vec().unwrap()[..20], b"glibc-ld.so.cache1.1");

    tree.entries.remove(CONF_PATH);
    tree.entries.remove(CACHE_PATH);
    assert_eq!(write(&mut tree, &mut staging, &opts).unwrap(), None);
    assert!(!tree.entries.contains_key(CACHE_PATH));
}
