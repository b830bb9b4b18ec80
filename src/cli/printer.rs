//! The one printer of [`Event`]s: what the user sees on stderr while a
//! command runs. stdout is reserved for results (the digest).
//!
//! `--log-format auto` draws indicatif bars on a terminal and writes plain
//! lines elsewhere (CI logs, pipes): one when a step starts, one every few
//! seconds while it runs (so a long download is visibly alive) and one when
//! it ends. `plain` forces the lines; `json` writes one JSON object per
//! event and line, with an `"event"` field, for CI systems that parse logs.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use minibuild::report::{human_bytes, Event, Level, Progress, Reporter, Silent};

use super::LogFormat;

/// Seconds between plain progress lines, unless `MINIBUILD_PROGRESS_INTERVAL` says otherwise.
const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The three forms a log takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Bars,
    Plain,
    Json,
}

/// The stderr printer used by every command.
pub struct Printer {
    form: Form,
    quiet: bool,
    start: Instant,
    /// How often a plain or JSON progress says where it is.
    interval: Duration,
}

impl Printer {
    pub fn new(format: LogFormat, quiet: bool) -> Self {
        let form = match format {
            LogFormat::Json => Form::Json,
            LogFormat::Plain => Form::Plain,
            LogFormat::Auto
                if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() =>
            {
                Form::Bars
            }
            LogFormat::Auto => Form::Plain,
        };
        let mut printer = Printer {
            form,
            quiet,
            start: Instant::now(),
            interval: DEFAULT_PROGRESS_INTERVAL,
        };
        if let Some(v) = std::env::var_os("MINIBUILD_PROGRESS_INTERVAL") {
            match progress_interval(&v.to_string_lossy()) {
                Some(d) => printer.interval = d,
                None => printer.event(Event::Warning {
                    message: format!(
                        "MINIBUILD_PROGRESS_INTERVAL=`{}` is not a number of seconds; using {}\n  hint: e.g. MINIBUILD_PROGRESS_INTERVAL=30",
                        v.to_string_lossy(),
                        DEFAULT_PROGRESS_INTERVAL.as_secs()
                    ),
                }),
            }
        }
        printer
    }

    /// Lines for requests still waiting for an answer, in logs (on a
    /// terminal the bars show the build is alive) unless quiet.
    pub fn waiting_notice(&self) -> Option<minibuild::http::WaitNotice> {
        if self.quiet {
            return None;
        }
        let tell: Arc<dyn Fn(&str) + Send + Sync> = match self.form {
            Form::Bars => return None,
            Form::Plain => Arc::new(|line: &str| write_err(&format!("         {line}"))),
            Form::Json => Arc::new(|line: &str| write_err(&waiting_json(line))),
        };
        Some(minibuild::http::WaitNotice {
            every: self.interval,
            tell,
        })
    }

    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// `error: …` and each cause on stderr; with `--log-format json`, one
/// `{"event": "error", "message": …, "causes": […]}` line, so that a log
/// parser sees the failure too.
pub fn error(err: &anyhow::Error, format: LogFormat) {
    if format == LogFormat::Json {
        let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
        write_err(&format!(
            r#"{{"event":"error","level":"error","message":{},"causes":{}}}"#,
            serde_json::Value::from(err.to_string()),
            serde_json::Value::from(causes)
        ));
        return;
    }
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    write_err(&text);
}

/// The line that says SIGINT/SIGTERM stopped the run (temporaries.rs calls
/// it from its signal thread, just before the exit).
pub fn interrupted(signal: &str, removed: usize, format: LogFormat) {
    let event = Event::Interrupted {
        signal: signal.to_string(),
        removed,
    };
    let line = match format {
        LogFormat::Json => json(&event, &[]),
        _ => plain(&event, 0.0),
    };
    write_err(&line);
}

/// One write of `text` and a newline: lines from worker threads never interleave.
fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// The plain-log lines of `event`, `t` seconds into the run.
fn plain(event: &Event, t: f64) -> String {
    let text = event.to_string();
    match event.level() {
        // A warning's own continuation lines (`  hint: …`) stay as worded.
        Level::Warning => format!("warning: {text}"),
        Level::Step | Level::Info => {
            let mut out = String::new();
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                if i == 0 && event.level() == Level::Step {
                    out.push_str(&format!("[{t:6.2}s] {line}"));
                } else {
                    out.push_str("         ");
                    out.push_str(line);
                }
            }
            out
        }
    }
}

/// The JSON line of `event`: its fields, `"event"`, `"level"`, the plain
/// `"message"`, and `extra` (e.g. a finished step's `"seconds"`).
fn json(event: &Event, extra: &[(&str, serde_json::Value)]) -> String {
    let (recipe, event) = event.parts();
    let level = match event.level() {
        Level::Step => "step",
        Level::Info => "info",
        Level::Warning => "warning",
    };
    let fields = match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    // `event` and `level` first, for people reading the log; then the
    // event's fields, the message and the extras.
    let mut pairs: Vec<(&str, serde_json::Value)> =
        vec![("event", event.name().into()), ("level", level.into())];
    if let Some(recipe) = recipe {
        pairs.push(("recipe", recipe.into()));
    }
    pairs.extend(
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "event")
            .map(|(k, v)| (k.as_str(), v.clone())),
    );
    pairs.push(("message", event.to_string().into()));
    pairs.extend(extra.iter().cloned());
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

impl Reporter for Printer {
    fn event(&self, event: Event) {
        if self.quiet && event.level() != Level::Warning {
            return;
        }
        match self.form {
            Form::Json => write_err(&json(&event, &[])),
            Form::Bars | Form::Plain => write_err(&plain(&event, self.elapsed())),
        }
    }

    fn progress(&self, start: Event, total: u64, bytes: bool) -> Box<dyn Progress> {
        if self.quiet {
            return Box::new(Silent);
        }
        // Several recipes at once: each progress line names its recipe.
        let recipe = start.parts().0.map(str::to_string);
        self.event(start);
        let now = Instant::now();
        if self.form != Form::Bars {
            return Box::new(Counted {
                recipe,
                json: self.form == Form::Json,
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

/// `MINIBUILD_PROGRESS_INTERVAL`: seconds (fractions allowed), at least 0.1.
fn progress_interval(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.1).then(|| Duration::from_secs_f64(secs))
}

/// Progress for logs: a line (or JSON object) every `interval` while work is counted.
struct Counted {
    recipe: Option<String>,
    json: bool,
    start: Instant,
    total: u64,
    bytes: bool,
    interval: Duration,
    /// Done so far, and when the last line was printed.
    state: Mutex<(u64, Instant)>,
}
impl Progress for Counted {
    fn inc(&self, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += n;
        let now = Instant::now();
        if now.duration_since(state.1) < self.interval {
            return;
        }
        state.1 = now;
        let mut line = progress_line(state.0, self.total, self.bytes, now - self.start);
        if self.json {
            let recipe = self.recipe.as_deref();
            write_err(&progress_json(
                state.0, self.total, self.bytes, &line, recipe,
            ));
        } else {
            if let Some(r) = &self.recipe {
                line = format!("{r}: {line}");
            }
            write_err(&format!("         {line}"));
        }
    }
    fn finish(&self, summary: Event) {
        let seconds = self.start.elapsed().as_secs_f64();
        if self.json {
            write_err(&json(&summary, &[("seconds", seconds.into())]));
        } else {
            write_err(&format!("         {summary} ({seconds:.2}s)"));
        }
    }
}

struct Bar(ProgressBar);
impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self, summary: Event) {
        let elapsed = self.0.elapsed().as_secs_f64();
        self.0.finish_and_clear();
        write_err(&format!("         {summary} ({elapsed:.2}s)"));
    }
}

/// A JSON line for a request still waiting for its answer.
fn waiting_json(line: &str) -> String {
    format!(
        r#"{{"event":"waiting","level":"info","message":{}}}"#,
        serde_json::Value::from(line)
    )
}

/// A JSON line for a counted step still running: `done` of `total` bytes
/// or items, of `recipe` when several run.
fn progress_json(done: u64, total: u64, bytes: bool, line: &str, recipe: Option<&str>) -> String {
    let unit = if bytes { "bytes" } else { "items" };
    let recipe = recipe
        .map(|r| format!(r#""recipe":{},"#, serde_json::Value::from(r)))
        .unwrap_or_default();
    format!(
        r#"{{"event":"progress","level":"info",{recipe}"done":{done},"total":{total},"unit":"{unit}","message":{}}}"#,
        serde_json::Value::from(line)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn plain_lines_by_level() {
        let step = Event::Unpacking { packages: 3 };
        assert_eq!(plain(&step, 1.5), "[  1.50s] Unpacking 3 packages");
        let info = Event::Resolved {
            arch: "x86_64".into(),
            packages: 2,
            download_bytes: 0,
            installed_bytes: 1024,
            millis: 3.0,
        };
        assert_eq!(
            plain(&info, 0.0),
            "         Resolved in 3.0 ms\n         2 packages: 0 B to download, 1.0 KiB installed"
        );
        let warn = Event::Warning {
            message: "x\n  hint: y".into(),
        };
        assert_eq!(plain(&warn, 0.0), "warning: x\n  hint: y");
    }

    #[test]
    fn a_recipe_event_is_its_own_json_line_with_the_recipe() {
        let line = json(&Event::Unpacked { paths: 7 }.in_recipe("a.toml"), &[]);
        assert!(
            line.starts_with(r#"{"event":"unpacked","level":"info","recipe":"a.toml","#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], "7 paths");
        let text = plain(&Event::Unpacking { packages: 3 }.in_recipe("a.toml"), 1.5);
        assert_eq!(text, "[  1.50s] a.toml: Unpacking 3 packages");
        let v: serde_json::Value =
            serde_json::from_str(&progress_json(1, 2, false, "1 of 2", Some("a.toml"))).unwrap();
        assert_eq!(
            (&v["event"], &v["recipe"]),
            (&"progress".into(), &"a.toml".into())
        );
        let v: serde_json::Value =
            serde_json::from_str(&progress_json(1, 2, false, "1 of 2", None)).unwrap();
        assert!(v.get("recipe").is_none());
    }

    #[test]
    fn json_lines_carry_event_level_and_message() {
        let line = json(
            &Event::Unpacked { paths: 7 },
            &[("seconds", serde_json::Value::from(0.5))],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "event": "unpacked", "paths": 7, "level": "info",
                "message": "7 paths", "seconds": 0.5,
            })
        );
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(r#"{"event":"unpacked","level":"info","#),
            "{line}"
        );
    }
}
