//! CI gates on a finished image: size, file count, forbidden packages, a
//! non-root user and dive's layer efficiency. `minibuild check` runs them
//! from flags or a recipe's `[check]` table; `build` runs a recipe's on the
//! image it wrote.

mod installed;
pub mod spec;
pub mod waste;

use std::fmt;

use crate::glob::glob_match;
use crate::image::load::Loaded;
use crate::rootfs::{Kind, Tree};

pub use spec::Gates;
use spec::{show_ratio, show_size};
use waste::Waste;

/// `check`'s and `build`'s exit status when the image was read, has no
/// errors, and a gate failed.
pub const EXIT_GATE_FAILED: u8 = 3;

/// A gate the image does not pass, with the measured value and by how much.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Failure {
    /// The recipe key (`max_size`, …).
    pub gate: &'static str,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.gate, self.message)
    }
}

/// What the gates found about one platform.
#[derive(Debug, Default)]
pub struct Outcome {
    pub failures: Vec<Failure>,
    /// Gates that could not be evaluated, and why.
    pub warnings: Vec<String>,
    /// What each gate measured (`max_size: 12.3 MB`), for a passing log.
    pub figures: Vec<String>,
}

/// Run `gates` over one loaded platform.
pub fn evaluate(loaded: &Loaded, gates: &Gates) -> Outcome {
    let mut out = Outcome::default();
    let waste = Waste::of(&loaded.layers);
    let mut figure = |gate: &str, value: String| out.figures.push(format!("{gate}: {value}"));
    if gates.max_size.is_some() {
        figure("max_size", show_size(waste.total));
    }
    if gates.max_files.is_some() {
        figure("max_files", files(loaded).to_string());
    }
    if gates.require_non_root {
        figure(
            "require_non_root",
            loaded.user.clone().unwrap_or_else(|| "(no User)".into()),
        );
    }
    if gates.lowest_efficiency.is_some() {
        figure("lowest_efficiency", show_ratio(waste.efficiency()));
    }
    if gates.highest_wasted_bytes.is_some() {
        figure("highest_wasted_bytes", show_size(waste.wasted));
    }
    if gates.highest_user_wasted_percent.is_some() {
        figure(
            "highest_user_wasted_percent",
            show_ratio(waste.user_wasted_ratio()),
        );
    }
    let mut fail = |gate, message| out.failures.push(Failure { gate, message });
    if let Some(max) = gates.max_size {
        if waste.total > max {
            fail(
                "max_size",
                format!(
                    "{} > {} by {} (files in all layers, uncompressed; {} compressed)",
                    show_size(waste.total),
                    show_size(max),
                    show_size(waste.total - max),
                    show_size(compressed(loaded))
                ),
            );
        }
    }
    if let Some(max) = gates.max_files {
        let files = files(loaded);
        if files > max {
            fail(
                "max_files",
                format!("{files} files > {max} by {}", files - max),
            );
        }
    }
    if gates.require_non_root {
        match loaded.user.as_deref().map(|u| runs_as_root(&loaded.tree, u)) {
            None => fail(
                "require_non_root",
                "the config sets no User, so the container runs as root (set [image] user or [accounts] run_as)".into(),
            ),
            Some(true) => fail(
                "require_non_root",
                format!(
                    "the config's User `{}` is root",
                    loaded.user.as_deref().unwrap_or_default()
                ),
            ),
            Some(false) => {}
        }
    }
    if let Some(lowest) = gates.lowest_efficiency {
        let e = waste.efficiency();
        if e < lowest {
            fail(
                "lowest_efficiency",
                format!(
                    "{} < {} by {} ({} of {} wasted)",
                    show_ratio(e),
                    show_ratio(lowest),
                    show_ratio(lowest - e),
                    show_size(waste.wasted),
                    show_size(waste.total)
                ),
            );
        }
    }
    if let Some(highest) = gates.highest_wasted_bytes {
        if waste.wasted > highest {
            fail(
                "highest_wasted_bytes",
                format!(
                    "{} > {} by {}",
                    show_size(waste.wasted),
                    show_size(highest),
                    show_size(waste.wasted - highest)
                ),
            );
        }
    }
    if let Some(highest) = gates.highest_user_wasted_percent {
        let r = waste.user_wasted_ratio();
        if r > highest {
            fail(
                "highest_user_wasted_percent",
                format!(
                    "{} > {} by {} ({} wasted of {} above the base layer)",
                    show_ratio(r),
                    show_ratio(highest),
                    show_ratio(r - highest),
                    show_size(waste.wasted),
                    show_size(waste.total - waste.base)
                ),
            );
        }
    }
    if !gates.forbid_packages.is_empty() {
        match installed::names(&loaded.tree) {
            Ok(names) => {
                out.figures.push(format!(
                    "forbid_packages: {} installed packages",
                    names.len()
                ));
                let mut fail = |gate, message| out.failures.push(Failure { gate, message });
                for pattern in &gates.forbid_packages {
                    let hits: Vec<&str> = names
                        .iter()
                        .filter(|n| glob_match(pattern, n))
                        .map(String::as_str)
                        .collect();
                    if !hits.is_empty() {
                        fail(
                            "forbid_packages",
                            format!("`{pattern}` matches installed {}", hits.join(", ")),
                        );
                    }
                }
            }
            Err(why) => out
                .warnings
                .push(format!("forbid_packages: not checked: {why}")),
        }
    }
    out.failures.sort();
    out
}

/// The layer blobs' bytes, as a registry stores them.
fn compressed(loaded: &Loaded) -> u64 {
    loaded.layers.iter().map(|l| l.blob_size).sum()
}

/// Every path of the merged tree but directories.
fn files(loaded: &Loaded) -> u64 {
    loaded
        .tree
        .entries
        .values()
        .filter(|e| !matches!(e.kind, Kind::Dir))
        .count() as u64
}

/// `root`, `0`, either as `USER:GROUP`, or a name the image's
/// /etc/passwd gives uid 0 (what the runtime would resolve it to).
fn runs_as_root(tree: &Tree, user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    if name == "root" || name == "0" {
        return true;
    }
    let passwd = match tree.entries.get("etc/passwd").map(|e| &e.kind) {
        Some(Kind::File { blob, .. }) => blob.read_to_string().unwrap_or_default(),
        _ => return false,
    };
    passwd.lines().any(|l| {
        let mut f = l.split(':');
        f.next() == Some(name) && f.nth(1) == Some("0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::load::{Change, LayerFiles};
    use crate::image::test_tree::TestTree;

    fn loaded(user: Option<&str>, layers: Vec<LayerFiles>) -> Loaded {
        let mut t = TestTree::new();
        t.file("app/bin", 0o755, b"x");
        t.file(
            "etc/passwd",
            0o644,
            b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/sbin/nologin\n",
        );
        Loaded {
            platform: "linux/amd64".into(),
            manifest_digest: crate::digest::Digest::sha256_of(b"m"),
            tree: t.tree,
            layers,
            user: user.map(str::to_string),
            skipped: vec![],
        }
    }

    fn two_layers() -> Vec<LayerFiles> {
        let put = |p: &str, size| Change::Put {
            path: p.into(),
            size,
        };
        vec![
            LayerFiles {
                blob_size: 10,
                changes: vec![put("etc/big", 40_000_000), put("bin/sh", 10_000_000)],
            },
            LayerFiles {
                blob_size: 10,
                changes: vec![put("etc/big", 1_200_000), put("app/bin", 10_000_000)],
            },
        ]
    }

    #[test]
    fn each_failed_gate_says_by_how_much() {
        let gates = Gates {
            max_size: Some(50_000_000),
            max_files: Some(1),
            require_non_root: true,
            lowest_efficiency: Some(0.9),
            highest_wasted_bytes: Some(30_000_000),
            highest_user_wasted_percent: Some(0.5),
            ..Gates::default()
        };
        let got = evaluate(&loaded(Some("0:0"), two_layers()), &gates);
        let lines: Vec<String> = got.failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "highest_user_wasted_percent: 357.1% > 50% by 307.1% (40 MB wasted of 11.2 MB above the base layer)",
                "highest_wasted_bytes: 40 MB > 30 MB by 10 MB",
                "lowest_efficiency: 34.6% < 90% by 55.4% (40 MB of 61.2 MB wasted)",
                "max_files: 2 files > 1 by 1",
                "max_size: 61.2 MB > 50 MB by 11.2 MB (files in all layers, uncompressed; 20 B compressed)",
                "require_non_root: the config's User `0:0` is root",
            ]
        );
        // No rpmdb in the tree: not checkable, a warning, not a failure.
        assert!(got.warnings.is_empty());
    }

    #[test]
    fn gates_within_their_limits_pass() {
        let gates = Gates {
            max_size: Some(61_200_000),
            max_files: Some(2),
            require_non_root: true,
            lowest_efficiency: Some(0.3),
            highest_wasted_bytes: Some(40_000_000),
            highest_user_wasted_percent: Some(1.0),
            ..Gates::default()
        };
        let got = evaluate(&loaded(Some("app"), two_layers()), &gates);
        // 357% of user bytes wasted is over 100%.
        assert_eq!(
            got.failures.iter().map(|f| f.gate).collect::<Vec<_>>(),
            ["highest_user_wasted_percent"]
        );
        let alias = evaluate(
            &loaded(Some("toor"), two_layers()),
            &Gates {
                require_non_root: true,
                ..Gates::default()
            },
        );
        assert_eq!(
            alias.failures[0].message,
            "the config's User `toor` is root"
        );
        let no_user = evaluate(
            &loaded(None, two_layers()),
            &Gates {
                require_non_root: true,
                ..Gates::default()
            },
        );
        assert_eq!(no_user.failures[0].gate, "require_non_root");
    }

    #[test]
    fn forbidden_packages_without_an_rpmdb_are_a_warning() {
        let gates = Gates {
            forbid_packages: vec!["bash".into()],
            ..Gates::default()
        };
        let got = evaluate(&loaded(None, two_layers()), &gates);
        assert!(got.failures.is_empty());
        assert_eq!(got.warnings.len(), 1);
        assert!(got.warnings[0].contains("rpmdb"), "{:?}", got.warnings);
    }
}
