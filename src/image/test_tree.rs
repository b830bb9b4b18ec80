//! Trees for tests: blobs are written into a temp dir owned by the tree.

use std::collections::BTreeMap;

use crate::rootfs::{BlobRef, Entry, Kind, Tree};

/// `security.capability` for `cap_net_raw=ep` (VFS_CAP_REVISION_2 with
/// the effective flag; permitted bit 13), as `setcap` writes it.
pub const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A tree builder for tests: blobs are written into a temp dir.
pub struct TestTree {
    pub dir: tempfile::TempDir,
    pub tree: Tree,
    next_blob: u64,
}

impl TestTree {
    pub fn new() -> Self {
        TestTree {
            dir: tempfile::tempdir().unwrap(),
            tree: Tree::default(),
            next_blob: 0,
        }
    }

    fn entry(kind: Kind, mode: u32) -> Entry {
        Entry {
            kind,
            mode,
            user: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            mtime: 1_000,
            xattrs: BTreeMap::new(),
            package: None,
        }
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Entry {
        self.tree
            .entries
            .insert(path.into(), Self::entry(Kind::Dir, mode));
        self.tree.entries.get_mut(path).unwrap()
    }

    pub fn file(&mut self, path: &str, mode: u32, content: &[u8]) -> &mut Entry {
        self.file_linked(path, mode, content, None)
    }

    pub fn file_linked(
        &mut self,
        path: &str,
        mode: u32,
        content: &[u8],
        link_id: Option<u64>,
    ) -> &mut Entry {
        self.next_blob += 1;
        let blob = self.dir.path().join(self.next_blob.to_string());
        std::fs::write(&blob, content).unwrap();
        let kind = Kind::File {
            blob: BlobRef::whole_file(blob).unwrap(),
            size: content.len() as u64,
            link_id,
        };
        self.tree
            .entries
            .insert(path.into(), Self::entry(kind, mode));
        self.tree.entries.get_mut(path).unwrap()
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Entry {
        let kind = Kind::Symlink {
            target: target.into(),
        };
        self.tree
            .entries
            .insert(path.into(), Self::entry(kind, 0o777));
        self.tree.entries.get_mut(path).unwrap()
    }

    pub fn fifo(&mut self, path: &str) -> &mut Entry {
        self.tree
            .entries
            .insert(path.into(), Self::entry(Kind::Fifo, 0o600));
        self.tree.entries.get_mut(path).unwrap()
    }

    /// A small tree using every kind of entry.
    pub fn sample() -> Self {
        let mut t = TestTree::new();
        t.dir("etc", 0o755);
        t.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
        t.dir("usr", 0o755);
        t.dir("usr/bin", 0o755);
        t.file_linked("usr/bin/a", 0o755, b"#!/bin/sh\necho hi\n", Some(7));
        t.file_linked("usr/bin/b", 0o755, b"#!/bin/sh\necho hi\n", Some(7));
        t.symlink("usr/bin/sh", "a");
        let ping = t.file("usr/bin/ping", 0o4755, b"\x7fELF");
        ping.xattrs.insert(
            "security.capability".into(),
            crate::image::test_tree::CAP_NET_RAW.to_vec(),
        );
        t.dir("var", 0o755);
        let run = t.fifo("var/initctl");
        run.user = "nginx".into();
        run.uid = 998;
        run.group = "nginx".into();
        run.gid = 997;
        t
    }
}

/// A one-layer image (`/etc/hello`) for each of `arches`, written as
/// `format` to `dest` with tag `v1`.
pub fn write_image(
    dest: &std::path::Path,
    format: super::Format,
    arches: &[crate::package::Arch],
) -> super::Written {
    use super::{Compression, ImageConfig, ImageWriter, LayerOptions};
    let mut t = TestTree::new();
    t.dir("etc", 0o755);
    t.file("etc/hello", 0o644, b"hello\n");
    let mut w = ImageWriter::new(dest).unwrap();
    let opts = LayerOptions {
        source_date_epoch: 1_700_000_000,
        compression: Compression::Gzip,
    };
    let layer = w.add_layer(&t.tree, &opts).unwrap();
    for &arch in arches {
        w.add_image(
            &ImageConfig::new(arch, 1_700_000_000),
            std::slice::from_ref(&layer),
        )
        .unwrap();
    }
    w.commit(format, "v1").unwrap()
}
