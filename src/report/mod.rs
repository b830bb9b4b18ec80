//! What the user is told while a build runs, as data: the library sends
//! typed [`Event`]s to a [`Reporter`] and never prints. The CLI's printer
//! renders them (bars on a terminal, plain lines in logs, JSON lines with
//! `--log-format json`); stdout stays reserved for results (the digest).

mod event;

use std::sync::Mutex;

pub use event::{Account, Event, Level, NotRun};

/// A counter for one long step (bytes downloaded, packages unpacked).
pub trait Progress: Send + Sync {
    fn inc(&self, n: u64);
    /// Ends the step with its summary.
    fn finish(&self, summary: Event);
}

/// Receives what the pipeline has to say.
pub trait Reporter: Sync {
    fn event(&self, event: Event);
    /// A counted step that starts with `start`; `bytes` makes the counter
    /// show sizes instead of items.
    fn progress(&self, start: Event, total: u64, bytes: bool) -> Box<dyn Progress>;
}

/// A progress that counts nothing (for reporters that draw no bars).
pub struct Silent;
impl Progress for Silent {
    fn inc(&self, _: u64) {}
    fn finish(&self, _: Event) {}
}

/// A reporter that records events, for tests of the stages.
#[derive(Default)]
pub struct Recording {
    pub events: Mutex<Vec<Event>>,
}

impl Reporter for Recording {
    fn event(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }
    fn progress(&self, start: Event, _total: u64, _bytes: bool) -> Box<dyn Progress> {
        self.event(start);
        Box::new(Silent)
    }
}

/// A reporter for one recipe of several built in one run: every event,
/// and every step's summary, goes on as [`Event::Recipe`].
pub struct ForRecipe<'a> {
    pub recipe: String,
    pub inner: &'a dyn Reporter,
}

impl Reporter for ForRecipe<'_> {
    fn event(&self, event: Event) {
        self.inner.event(event.in_recipe(&self.recipe));
    }
    fn progress(&self, start: Event, total: u64, bytes: bool) -> Box<dyn Progress> {
        Box::new(RecipeProgress {
            recipe: self.recipe.clone(),
            inner: self
                .inner
                .progress(start.in_recipe(&self.recipe), total, bytes),
        })
    }
}

struct RecipeProgress {
    recipe: String,
    inner: Box<dyn Progress>,
}

impl Progress for RecipeProgress {
    fn inc(&self, n: u64) {
        self.inner.inc(n);
    }
    fn finish(&self, summary: Event) {
        self.inner.finish(summary.in_recipe(&self.recipe));
    }
}

/// What a fetch stage got from where, for its closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchTally {
    pub downloaded: u64,
    pub downloaded_bytes: u64,
    pub cached: u64,
    pub cached_bytes: u64,
}

impl FetchTally {
    /// Count one package of `bytes`, found in the cache or downloaded.
    pub fn add(&mut self, cached: bool, bytes: u64) {
        if cached {
            self.cached += 1;
            self.cached_bytes += bytes;
        } else {
            self.downloaded += 1;
            self.downloaded_bytes += bytes;
        }
    }

    /// The closing event of fetching for `arch`.
    pub fn event(&self, arch: &str) -> Event {
        Event::Fetched {
            arch: arch.to_string(),
            downloaded: self.downloaded,
            downloaded_bytes: self.downloaded_bytes,
            cached: self.cached,
            cached_bytes: self.cached_bytes,
        }
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(116 * 1024 * 1024), "116.0 MiB");
    }

    #[test]
    fn fetch_summary_says_where_bytes_came_from() {
        let t = FetchTally {
            downloaded: 2,
            downloaded_bytes: 1536 << 10,
            cached: 3,
            cached_bytes: 4 << 20,
        };
        assert_eq!(
            t.event("x86_64").to_string(),
            "2 downloaded (1.5 MiB), 3 from the cache (4.0 MiB)"
        );
    }

    #[test]
    fn a_recipe_reporter_names_the_recipe_on_every_event() {
        let r = Recording::default();
        let tagged = ForRecipe {
            recipe: "a.toml".into(),
            inner: &r,
        };
        tagged.event(Event::Unpacking { packages: 1 });
        tagged
            .progress(Event::Unpacking { packages: 2 }, 2, false)
            .finish(Event::Unpacked { paths: 4 });
        let events = r.events.lock().unwrap();
        assert_eq!(
            *events,
            vec![
                Event::Unpacking { packages: 1 }.in_recipe("a.toml"),
                Event::Unpacking { packages: 2 }.in_recipe("a.toml"),
            ]
        );
    }

    #[test]
    fn recording_reporter_keeps_order() {
        let r = Recording::default();
        let a = Event::Unpacking { packages: 1 };
        let b = Event::Warning {
            message: "b".into(),
        };
        r.event(a.clone());
        r.event(b.clone());
        let p = r.progress(Event::Unpacking { packages: 2 }, 3, false);
        p.inc(1);
        p.finish(Event::Unpacked { paths: 4 });
        assert_eq!(
            *r.events.lock().unwrap(),
            vec![a, b, Event::Unpacking { packages: 2 }]
        );
    }
}
