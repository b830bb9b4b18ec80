//! Progress and messages on stderr: the one place that decides what the user sees
//! while a build runs. stdout is reserved for results (the digest).
//!
//! Stages call the [`Reporter`] trait; the library never prints. On a terminal
//! the reporter draws indicatif bars; otherwise (CI logs, pipes) it writes one
//! plain line when a step starts and one when it ends, never bars.

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

/// The stderr reporter used by the CLI.
pub struct Stderr {
    fancy: bool,
    quiet: bool,
    start: Instant,
    lock: Mutex<()>,
}

impl Stderr {
    pub fn new(quiet: bool) -> Self {
        let fancy = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Stderr {
            fancy,
            quiet,
            start: Instant::now(),
            lock: Mutex::new(()),
        }
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
            return Box::new(Plain {
                start: Instant::now(),
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

struct Plain {
    start: Instant,
}
impl Progress for Plain {
    fn inc(&self, _: u64) {}
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
