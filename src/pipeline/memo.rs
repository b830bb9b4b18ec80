//! Repo metadata loaded once per run when several recipes are built
//! together (`minibuild build a.toml b.toml`): recipes naming the same repo
//! share one load, even when they resolve at the same time. A single-recipe
//! build has no memo (it would only hold a second copy of the index).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::repo::RepoIndex;

/// Loaded indexes by `key`. The slot's own lock is held while the first
/// recipe loads it, so a second recipe asking for the same repo waits for
/// that load instead of fetching repomd.xml and primary.xml again.
#[derive(Debug, Default)]
pub struct RepoMemo {
    slots: Mutex<HashMap<String, Arc<Mutex<Option<RepoIndex>>>>>,
}

impl RepoMemo {
    /// The index for `key`: a copy of the one loaded before, or `load()`'s
    /// (kept for the next recipe). `true` when it was loaded before. A
    /// failed load keeps nothing: the next recipe tries again and reports
    /// its own error.
    pub fn get_or_load<E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<RepoIndex, E>,
    ) -> Result<(RepoIndex, bool), E> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = slot.as_ref() {
            return Ok((index.clone(), true));
        }
        let index = load()?;
        *slot = Some(index.clone());
        Ok((index, false))
    }
}

/// What makes two recipes' repos the same load: where the metadata comes
/// from (base URLs, metalink, mirrorlist, after `--baseurl` overrides), the
/// substitutions, the arch, and how repomd.xml is verified and reached. The
/// recipe's name for the repo and its position are not part of it: they are
/// set on the copy (see [`renamed`]).
pub fn key(
    sources: &crate::repo::mirrors::Sources,
    releasever: &str,
    arch: crate::package::Arch,
    repo: &crate::recipe::Repo,
) -> String {
    format!(
        "{sources:?}|{releasever}|{}|{}|{:?}|{:?}",
        arch.rpm_name(),
        repo.repo_gpgcheck,
        repo.gpgkeys,
        repo.auth
    )
}

/// `index` as recipe repo `name` at position `position` (what
/// [`Package::repo`](crate::package::Package) indexes).
pub fn renamed(mut index: RepoIndex, name: &str, position: usize) -> RepoIndex {
    index.name = name.to_string();
    index.packages.set_repo(position);
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn index(name: &str) -> RepoIndex {
        RepoIndex {
            name: name.into(),
            baseurl: "http://m/".into(),
            revision: "1".into(),
            repomd_digest: Digest::sha256_of(b"repomd"),
            packages: Default::default(),
            notes: Vec::new(),
            via: None,
        }
    }

    #[test]
    fn one_load_per_key_even_when_asked_at_once() {
        let memo = RepoMemo::default();
        let loads = AtomicUsize::new(0);
        let keys = ["a", "b", "a", "a", "b", "a"];
        let got = crate::pool::map(
            &keys,
            6,
            |_| false,
            |_, k| {
                memo.get_or_load::<()>(k, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    Ok(index(k))
                })
            },
        );
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        let reused = got.iter().flatten().filter(|r| matches!(r, Ok((_, true))));
        assert_eq!(reused.count(), 4);
        for (k, r) in keys.iter().zip(&got) {
            assert_eq!(r.as_ref().unwrap().as_ref().unwrap().0.name, *k);
        }
    }

    #[test]
    fn a_copy_takes_the_recipes_name_and_position() {
        use crate::package::{Evr, Nevra};
        let mut i = index("fedora");
        i.packages = crate::repo::PackageSet::of(vec![crate::package::Package::new(
            Nevra::new("zlib", Evr::parse("1-1"), "x86_64"),
            0,
            "zlib.rpm".into(),
            Digest::sha256_of(b"zlib"),
        )]);
        let copy = renamed(i, "fx", 2);
        assert_eq!(copy.name, "fx");
        assert_eq!(copy.packages.package(0).repo, 2);
        assert_eq!(copy.packages.repo(0), 2);
    }

    #[test]
    fn a_failed_load_is_not_kept() {
        let memo = RepoMemo::default();
        assert_eq!(memo.get_or_load("k", || Err("down")), Err("down"));
        let (i, reused) = memo.get_or_load::<&str>("k", || Ok(index("x"))).unwrap();
        assert_eq!((i.name.as_str(), reused), ("x", false));
    }
}
