//! Differential test of `rpm::rpmvercmp` and `Evr::compare` against two
//! oracles: the real rpm (`rpm.vercmp` in rpm's embedded lua, Debian's
//! rpm 4.18) and the `rpm-version` crate. Version strings are generated
//! from the characters whose handling differs between implementations:
//! digits (leading zeros), letters, `.`, `_`, `+`, `~`, `^`, and a
//! non-ASCII byte sequence.

mod common;

use std::cmp::Ordering;
use std::process::Command;

use common::*;
use minibuild::package::{rpmvercmp, Evr};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn version(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "0",
            "1",
            "2",
            "10",
            "007",
            "9999999999999999999999",
            "a",
            "b",
            "rc",
            "Z",
            ".",
            ".",
            "_",
            "+",
            "~",
            "^",
        ];
        let len = 1 + self.next() % 6;
        let mut v: String = (0..len).map(|_| self.pick(&PIECES)).collect();
        if self.next().is_multiple_of(16) {
            v.push('é');
        }
        v
    }
}

/// Pairs that differ only where implementations historically disagree,
/// then generated ones.
fn pairs() -> Vec<(String, String)> {
    let fixed = [
        ("1.0", "1.0"),
        ("1.0", "1.0.0"),
        ("1.0~rc1", "1.0"),
        ("1.0~rc1", "1.0~rc2"),
        ("1.0^git1", "1.0"),
        ("1.0^git1", "1.0.1"),
        ("1.0^", "1.0~"),
        ("01", "1"),
        ("1.a", "1.1"),
        ("a", "B"),
        ("1_0", "1.0"),
        ("1+2", "1.2"),
        ("~", "0"),
        ("^", "0"),
        ("1.0~", "1.0"),
        ("2.0", "10"),
        ("9999999999999999999999", "9999999999999999999998"),
    ];
    let mut out: Vec<(String, String)> = fixed
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..1500 {
        let a = g.version();
        // Half the pairs share a prefix, where the interesting cases are.
        let b = if g.next().is_multiple_of(2) {
            let cut = a
                .char_indices()
                .nth(a.chars().count() / 2)
                .map_or(a.len(), |(i, _)| i);
            format!("{}{}", &a[..cut], g.version())
        } else {
            g.version()
        };
        out.push((a, b));
    }
    out
}

fn sign(o: Ordering) -> i32 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

/// rpm's own answers, one lua call for all pairs.
fn real_rpm(pairs: &[(String, String)]) -> Vec<i32> {
    require_tool("rpm");
    // Debug quoting escapes `"` and `\` only; lua takes the UTF-8 bytes as they are.
    let lua_str = |s: &str| format!("{s:?}");
    // rpm's lua `print` inside a macro joins its output without newlines: collect, print once.
    let mut calls = String::from("local r = {}\n");
    for (a, b) in pairs {
        calls += &format!("r[#r + 1] = rpm.vercmp({}, {})\n", lua_str(a), lua_str(b));
    }
    calls += "print(table.concat(r, \"\\n\"))\n";
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pairs.lua");
    std::fs::write(&script, calls).unwrap();
    let out = run_ok(
        Command::new("rpm")
            .arg("--eval")
            .arg(format!("%{{lua: dofile(\"{}\")}}", script.display())),
    );
    let answers: Vec<i32> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(answers.len(), pairs.len(), "one answer per pair from rpm");
    answers
}

#[test]
fn rpmvercmp_agrees_with_real_rpm_and_the_rpm_version_crate() {
    let pairs = pairs();
    let rpm_says = real_rpm(&pairs);
    for answer in [-1, 0, 1] {
        let n = rpm_says.iter().filter(|&&a| a == answer).count();
        assert!(
            n > 10,
            "rpm answered {answer} only {n} times: the pairs are not varied enough"
        );
    }
    let mut disagree = Vec::new();
    for ((a, b), theirs) in pairs.iter().zip(rpm_says) {
        let ours = sign(rpmvercmp(a, b));
        let crate_says = sign(
            rpm_version::Evr::new("0", a.as_str(), "1").cmp(&rpm_version::Evr::new(
                "0",
                b.as_str(),
                "1",
            )),
        );
        if ours != theirs || crate_says != theirs {
            disagree.push(format!(
                "{a:?} vs {b:?}: rpm {theirs}, minibuild {ours}, rpm-version {crate_says}"
            ));
        }
    }
    assert!(
        disagree.is_empty(),
        "{} of {} pairs disagree:\n{}",
        disagree.len(),
        pairs.len(),
        disagree.join("\n")
    );
}

#[test]
fn evr_compare_follows_rpm_on_epochs_and_missing_releases() {
    // rpm compares releases only when both sides have one (a dependency
    // `foo >= 1.0` matches every release of 1.0).
    let cases = [
        ("1:1.0-1", "2.0-1", Ordering::Greater),
        ("1.0", "1.0-5", Ordering::Equal),
        ("1.0-5", "1.0-10", Ordering::Less),
        ("0:1.0-1", "1.0-1", Ordering::Equal),
        ("1.0-1~beta", "1.0-1", Ordering::Less),
    ];
    for (a, b, want) in cases {
        assert_eq!(Evr::parse(a).compare(&Evr::parse(b)), want, "{a} vs {b}");
    }
}
