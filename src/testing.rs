//! Helpers shared by unit tests.

use std::path::PathBuf;

/// A directory of the shared corpus of real-world RPMs and repodata: `sub`
/// under `MINIBUILD_CORPUS`, else under `../shared/corpus` beside the project
/// root (where CI puts it). Panics with what to do when it is missing, so a
/// test that needs the corpus fails rather than passing without it.
pub fn corpus(sub: &str) -> PathBuf {
    let root = std::env::var_os("MINIBUILD_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let dir = root.join(sub);
    assert!(
        dir.exists(),
        "the shared corpus is missing: {} not found\n  hint: put the shared material beside the project (../shared/corpus) or set MINIBUILD_CORPUS to its corpus/ directory",
        dir.display()
    );
    dir
}
