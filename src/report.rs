//! Progress and messages on stderr: the one place that decides what the user sees
//! while a build runs. stdout is reserved for results (the digest).
//!
//! Stages call the [`Reporter`] trait; the library never prints. On a terminal
//! the reporter draws indicatif bars; otherwise (CI logs, pipes) it writes one
//! plain line when a step starts, one every few seconds while it runs (so a
//! long download is visibly alive) and one when it ends, never bars.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A counter for one long step (bytes downloaded, packages unpacked).
pub trait Progress: Send + Sync {
    fn inc(&self, n: u64);
    /// Ends the step, printing `message` as its summary.
    fn finish(&self, message: &str);
}

/// Receives what the pipeline has to say.
pub trait Reporter: Sync {
    /// A step that starts now (`Resolving dependencies`).
    fn step(&self, message: &str);
    /// A fact worth a line (`Resolved 12 packages, 14.2 MiB to download`).
    fn info(&self, message: &str);
    fn warn(&self, message: &str);
    /// A counted step; `bytes` makes the counter show sizes instead of items.
    fn progress(&self, message: &str, total: u64, bytes: bool) -> Box<dyn Progress>;
}

/// Seconds between plain progress lines, unless `MINIBUILD_PROGRESS_INTERVAL` says otherwise.
const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The stderr reporter used by the CLI.
pub struct Stderr {
    fancy: bool,
    quiet: bool,
    start: Instant,
    lock: Mutex<()>,
    /// How often a plain (non-terminal) progress prints a line.
    interval: Duration,
}

impl Stderr {
    pub fn new(quiet: bool) -> Self {
        let fancy = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let mut reporter = Stderr {
            fancy,
            quiet,
            start: Instant::now(),
            lock: Mutex::new(()),
            interval: DEFAULT_PROGRESS_INTERVAL,
        };
        if let Some(v) = std::env::var_os("MINIBUILD_PROGRESS_INTERVAL") {
            match progress_interval(&v.to_string_lossy()) {
                Some(d) => reporter.interval = d,
                None => reporter.warn(&format!(
                    "MINIBUILD_PROGRESS_INTERVAL=`{}` is not a number of seconds; using {}\n  hint: e.g. MINIBUILD_PROGRESS_INTERVAL=30",
                    v.to_string_lossy(),
                    DEFAULT_PROGRESS_INTERVAL.as_secs()
                )),
            }
        }
        reporter
    }

    /// Lines for requests still waiting for an answer, in logs (on a
    /// terminal the bars show the build is alive) unless quiet.
    pub fn waiting_notice(&self) -> Option<crate::http::WaitNotice> {
        (!self.fancy && !self.quiet).then(|| crate::http::WaitNotice {
            every: self.interval,
            tell: std::sync::Arc::new(|line: &str| {
                let _ = writeln!(std::io::stderr().lock(), "         {line}");
            }),
        })
    }

    fn line(&self, prefix: &str, message: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{prefix}{message}");
    }
}

impl Reporter for Stderr {
    fn step(&self, message: &str) {
        if !self.quiet {
            let t = self.start.elapsed().as_secs_f64();
            self.line(&format!("[{t:6.2}s] "), message);
        }
    }

    fn info(&self, message: &str) {
        if !self.quiet {
            self.line("         ", message);
        }
    }

    fn warn(&self, message: &str) {
        self.line("warning: ", message);
    }

    fn progress(&self, message: &str, total: u64, bytes: bool) -> Box<dyn Progress> {
        if self.quiet {
            return Box::new(Silent);
        }
        self.step(message);
        if !self.fancy {
            let now = Instant::now();
            return Box::new(Plain {
                start: now,
                total,
                bytes,
                interval: self.interval,
                state: Mutex::new((0, now)),
            });
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if bytes {
            "         {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}"
        } else {
            "         {bar:30} {pos}/{len} {msg}"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Box::new(Bar(bar))
    }
}

struct Silent;
impl Progress for Silent {
    fn inc(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}

/// `MINIBUILD_PROGRESS_INTERVAL`: seconds (fractions allowed), at least 0.1.
fn progress_interval(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.1).then(|| Duration::from_secs_f64(secs))
}

/// Progress for logs: a line every `interval` while work is counted.
struct Plain {
    start: Instant,
    total: u64,
    bytes: bool,
    interval: Duration,
    /// Done so far, and when the last line was printed.
    state: Mutex<(u64, Instant)>,
}
impl Progress for Plain {
    fn inc(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += n;
        let now = Instant::now();
        if now.duration_since(state.1) < self.interval {
            return;
        }
        state.1 = now;
        let line = progress_line(state.0, self.total, self.bytes, now - self.start);
        let _ = writeln!(std::io::stderr().lock(), "         {line}");
    }
    fn finish(&self, message: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "         {message} ({:.2}s)",
            self.start.elapsed().as_secs_f64()
        );
    }
}

struct Bar(ProgressBar);
impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self, message: &str) {
        let elapsed = self.0.elapsed().as_secs_f64();
        self.0.finish_and_clear();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "         {message} ({elapsed:.2}s)");
    }
}

/// A reporter that records messages, for tests of the stages.
#[derive(Default)]
pub struct Recording {
    pub lines: Mutex<Vec<String>>,
}

impl Reporter for Recording {
    fn step(&self, message: &str) {
        self.lines.lock().unwrap().push(format!("step: {message}"));
    }
    fn info(&self, message: &str) {
        self.lines.lock().unwrap().push(format!("info: {message}"));
    }
    fn warn(&self, message: &str) {
        self.lines.lock().unwrap().push(format!("warn: {message}"));
    }
    fn progress(&self, message: &str, _total: u64, _bytes: bool) -> Box<dyn Progress> {
        self.lines.lock().unwrap().push(format!("step: {message}"));
        Box::new(Silent)
    }
}

/// A plain progress line: `3.0 MiB of 12.0 MiB (25%), 1.5 MiB/s` for bytes,
/// `30 of 120 (25%)` for items.
fn progress_line(done: u64, total: u64, bytes: bool, elapsed: Duration) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(0);
    if !bytes {
        return format!("{done} of {total} ({percent}%)");
    }
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{} of {} ({percent}%), {}/s",
        human_bytes(done),
        human_bytes(total),
        human_bytes(rate as u64)
    )
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

    /// `2 downloaded (1.5 MiB), 3 from the cache (4.0 MiB)`.
    pub fn summary(&self) -> String {
        format!(
            "{} downloaded ({}), {} from the cache ({})",
            self.downloaded,
            human_bytes(self.downloaded_bytes),
            self.cached,
            human_bytes(self.cached_bytes)
        )
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
    fn plain_progress_lines() {
        let s = Duration::from_secs(2);
        assert_eq!(
            progress_line(3 << 20, 12 << 20, true, s),
            "3.0 MiB of 12.0 MiB (25%), 1.5 MiB/s"
        );
        assert_eq!(progress_line(30, 120, false, s), "30 of 120 (25%)");
        // primary.xml may not know sizes: no division by zero.
        assert_eq!(progress_line(5, 0, true, s), "5 B of 0 B (0%), 2 B/s");
        assert_eq!(progress_interval("0.5"), Some(Duration::from_millis(500)));
        for bad in ["", "x", "0", "-1", "NaN", "inf"] {
            assert_eq!(progress_interval(bad), None, "{bad}");
        }
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
            t.summary(),
            "2 downloaded (1.5 MiB), 3 from the cache (4.0 MiB)"
        );
    }

    #[test]
    fn recording_reporter_keeps_order() {
        let r = Recording::default();
        r.step("a");
        r.warn("b");
        r.progress("c", 3, false).finish("done");
        assert_eq!(
            *r.lines.lock().unwrap(),
            vec!["step: a", "warn: b", "step: c"]
        );
    }
}
