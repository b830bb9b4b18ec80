//! Snapshot tests of what users read (insta): the final error message and
//! the report on stdout, with what varies between machines and runs
//! replaced by placeholders so that a snapshot is the same everywhere.
//!
//! A snapshot that differs fails the test. To accept a deliberate change,
//! `cargo insta review` (cargo-insta) or `INSTA_UPDATE=always cargo test
//! --test NAME` and read the diff in `git diff tests/snapshots/`.

use std::path::Path;
use std::process::Output;

/// The error as the user reads it: stderr from the first `error:` line on.
/// Progress lines before it are the pipeline's events and are not part of
/// the message (their wording belongs to the progress printer).
pub fn error_message(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect();
    assert!(
        !lines.is_empty(),
        "no `error:` line on stderr (exit {:?}):\n{err}",
        out.status.code()
    );
    lines.join("\n")
}

/// stdout as text.
pub fn stdout_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Settings whose filters make output machine-independent: `dirs` (each
/// replaced by its placeholder, longest first so nested directories win),
/// the fixture repository, the source tree, any other temporary directory
/// and loopback ports. Durations are left alone: add [`DURATIONS`] where a
/// message has one.
pub fn stable(dirs: &[(&Path, &str)]) -> insta::Settings {
    // Snapshots land in tests/snapshots/ as TESTFILE__NAME.snap.
    let mut settings = insta::Settings::clone_current();
    let mut named: Vec<(String, String)> = dirs
        .iter()
        .map(|(d, name)| (d.display().to_string(), name.to_string()))
        .collect();
    if let Some(fixtures) = std::env::var_os("MINIBUILD_FIXTURES") {
        named.push((
            Path::new(&fixtures).display().to_string(),
            "[FIXTURES]".into(),
        ));
    }
    named.push((env!("CARGO_MANIFEST_DIR").into(), "[ROOT]".into()));
    named.sort_by_key(|(d, _)| std::cmp::Reverse(d.len()));
    for (dir, name) in named {
        settings.add_filter(&regex_escape(&dir), name);
    }
    // tempfile's directories not named above (a server's, a TMPDIR's).
    let tmp = std::env::temp_dir().display().to_string();
    settings.add_filter(
        &format!("{}/\\.tmp[A-Za-z0-9]{{6}}", regex_escape(&tmp)),
        "[TMP]",
    );
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings
}

/// A filter for durations as the CLI prints them (`1.2s`, `350 ms`).
pub const DURATIONS: (&str, &str) = (r"\b\d+(\.\d+)? ?(ms|s)\b", "[DURATION]");

/// `text` with every regex metacharacter escaped (paths are literals).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
