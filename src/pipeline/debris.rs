//! Temporaries that killed runs left behind, swept before a new run makes its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Settings;
use crate::cache::{Bucket, Cache, PARTIAL_PREFIX};
use crate::report::{Event, Reporter};

/// Name start of the per-arch staging directories in `$TMPDIR`.
pub(super) const STAGING_PREFIX: &str = "minibuild-rootfs-";

/// Remove what killed builds left beside the outputs and in `$TMPDIR`:
/// only our own temporaries whose process is gone (see temporaries.rs).
pub(super) fn sweep_debris(output: &Path, settings: &Settings, reporter: &dyn Reporter) {
    use crate::fsutil::{parent_dir, TEMP_PREFIX};
    use crate::image::{archive::ARCHIVE_PREFIX, layout::STAGING_PREFIX as OCI_PREFIX};
    let mut dirs: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    dirs.insert(std::env::temp_dir(), vec![STAGING_PREFIX]);
    let outputs = [
        Some(output),
        settings.outputs.sbom.as_deref(),
        settings.outputs.provenance.as_deref(),
    ];
    let mut add = |dir: PathBuf, more: &[&'static str]| {
        let bases = dirs.entry(dir).or_default();
        for base in more {
            if !bases.contains(base) {
                bases.push(base);
            }
        }
    };
    for path in outputs.into_iter().flatten() {
        add(
            parent_dir(path).to_path_buf(),
            &[OCI_PREFIX, ARCHIVE_PREFIX, TEMP_PREFIX],
        );
    }
    if let Some(dir) = &settings.rootfs_dir {
        use crate::rootfs::export::{OLD_PREFIX, TEMP_PREFIX as ROOTFS_PREFIX};
        add(parent_dir(dir).to_path_buf(), &[ROOTFS_PREFIX, OLD_PREFIX]);
    }
    // Downloads in progress and the layer cache's write_atomic temporaries.
    let cache = Cache::new(&settings.cache_dir);
    for bucket in Bucket::ALL {
        add(cache.bucket(bucket), &[PARTIAL_PREFIX, TEMP_PREFIX]);
    }
    sweep_dirs(dirs, reporter);
}

/// Sweep the write_atomic temporaries a killed `minibuild lock` left beside
/// `lock_path` (the only temporaries that command makes outside the cache).
pub fn sweep_beside_lock(lock_path: &Path, reporter: &dyn Reporter) {
    let dir = crate::fsutil::parent_dir(lock_path).to_path_buf();
    sweep_dirs(
        BTreeMap::from([(dir, vec![crate::fsutil::TEMP_PREFIX])]),
        reporter,
    );
}

fn sweep_dirs(dirs: BTreeMap<PathBuf, Vec<&str>>, reporter: &dyn Reporter) {
    for (dir, bases) in dirs {
        for path in crate::temporaries::sweep(&dir, &bases) {
            reporter.event(Event::DebrisRemoved { path });
        }
    }
}
