//! dive's layer-efficiency arithmetic, over the per-layer file lists
//! [`crate::image::load`] keeps.
//!
//! dive (github.com/wagoodman/dive, `dive/image/analysis.go` `Analyze`,
//! `dive/filetree/efficiency.go` `Efficiency`):
//! - a layer's size is the sum of its tar entries' sizes; `SizeBytes` sums
//!   every layer, `UserSizeByes` every layer but the first ("all bytes
//!   except for the base image");
//! - `WastedUserPercent = wastedBytes / userSizeBytes`;
//! - a path seen in more than one layer is an inefficiency, and a whiteout
//!   counts the size of what it removed.
//!
//! dive's releases differ on how much of a duplicated path is waste
//! (older ones sum every copy, `CumulativeSize`; newer ones only the copies
//! but the last, "the final copy is part of the image no matter what"),
//! and its efficiency score is min-size/cumulative-size per path. minibuild
//! takes the newer reading and states efficiency in the same terms:
//! wasted = the bytes of every version of a path but the visible one (all
//! of them when a whiteout removed it); efficiency = 1 - wasted / total;
//! user wasted ratio = wasted / (total - first layer).

use std::collections::BTreeMap;

use crate::image::load::{Change, LayerFiles};

/// The figures the efficiency gates compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waste {
    /// Bytes of every file in every layer (dive's `SizeBytes`).
    pub total: u64,
    /// The first (base) layer's bytes.
    pub base: u64,
    /// Bytes shipped in a layer and replaced or removed by one above.
    pub wasted: u64,
}

impl Waste {
    pub fn of(layers: &[LayerFiles]) -> Waste {
        let mut visible: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0;
        let mut base = 0;
        let mut wasted = 0;
        for (i, layer) in layers.iter().enumerate() {
            for change in &layer.changes {
                match change {
                    Change::Put { path, size } => {
                        total += size;
                        if i == 0 {
                            base += size;
                        }
                        wasted += visible.insert(path, *size).unwrap_or(0);
                    }
                    Change::Remove { path } => wasted += remove_under(&mut visible, path, true),
                    Change::Opaque { dir } => wasted += remove_under(&mut visible, dir, false),
                }
            }
        }
        Waste {
            total,
            base,
            wasted,
        }
    }

    /// 1 - wasted / total; 1 for an empty image.
    pub fn efficiency(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            1.0 - self.wasted as f64 / self.total as f64
        }
    }

    /// wasted / (total - base); 0 when nothing is wasted, infinite when
    /// upper layers only remove (dive divides by zero there too).
    pub fn user_wasted_ratio(&self) -> f64 {
        let user = self.total - self.base;
        match (self.wasted, user) {
            (0, _) => 0.0,
            (_, 0) => f64::INFINITY,
            (w, u) => w as f64 / u as f64,
        }
    }
}

/// Drop what lies under `path` (and `path` itself when `itself`) from the
/// visible set; the bytes dropped.
fn remove_under(visible: &mut BTreeMap<&str, u64>, path: &str, itself: bool) -> u64 {
    let prefix = format!("{path}/");
    let mut gone = 0;
    visible.retain(|k, size| {
        let hit = (itself && *k == path) || k.starts_with(&prefix) || path.is_empty();
        if hit {
            gone += *size;
        }
        !hit
    });
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(path: &str, size: u64) -> Change {
        Change::Put {
            path: path.into(),
            size,
        }
    }

    fn layer(changes: Vec<Change>) -> LayerFiles {
        LayerFiles {
            blob_size: 0,
            changes,
        }
    }

    #[test]
    fn a_file_replaced_above_wastes_its_lower_version() {
        let layers = [
            layer(vec![put("etc", 0), put("etc/big", 600), put("bin/sh", 400)]),
            layer(vec![put("etc/big", 100), put("app", 900)]),
        ];
        let w = Waste::of(&layers);
        assert_eq!(
            w,
            Waste {
                total: 2000,
                base: 1000,
                wasted: 600
            }
        );
        assert!((w.efficiency() - 0.7).abs() < 1e-9);
        assert!((w.user_wasted_ratio() - 0.6).abs() < 1e-9);
    }

    #[test]
    fn every_version_but_the_top_one_is_wasted() {
        let layers = [
            layer(vec![put("f", 10)]),
            layer(vec![put("f", 20)]),
            layer(vec![put("f", 30)]),
        ];
        assert_eq!(Waste::of(&layers).wasted, 30);
    }

    #[test]
    fn whiteouts_waste_everything_they_remove() {
        let layers = [
            layer(vec![
                put("d", 0),
                put("d/a", 5),
                put("d/sub/b", 7),
                put("dd", 11),
                put("o/x", 3),
            ]),
            layer(vec![
                Change::Remove { path: "d".into() },
                Change::Opaque { dir: "o".into() },
                put("o/y", 2),
            ]),
        ];
        let w = Waste::of(&layers);
        // d/a, d/sub/b and o/x; not dd, which only shares a prefix.
        assert_eq!(w.wasted, 15);
        assert_eq!(w.total, 28);
        assert_eq!(w.base, 26);
    }

    #[test]
    fn one_layer_wastes_nothing_and_removal_only_is_infinite() {
        let one = Waste::of(&[layer(vec![put("a", 4)])]);
        assert_eq!(
            (one.wasted, one.efficiency(), one.user_wasted_ratio()),
            (0, 1.0, 0.0)
        );
        let removal = Waste::of(&[
            layer(vec![put("a", 4)]),
            layer(vec![Change::Remove { path: "a".into() }]),
        ]);
        assert_eq!(removal.wasted, 4);
        assert_eq!(removal.efficiency(), 0.0);
        assert!(removal.user_wasted_ratio().is_infinite());
        assert_eq!(Waste::of(&[]).efficiency(), 1.0);
    }
}
