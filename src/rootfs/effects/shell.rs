//! A reader for the small subset of `/bin/sh` real scriptlets use around
//! the commands the passes emulate: words with quotes, `$1`/`$2`, literal
//! variable assignments, `;`, `&&`, `||`, `if/then/elif/else/fi`, `exit`
//! and `test`/`[`. Nothing is executed: each simple command is handed to a
//! [`Host`], which says what it would return; conditions a `Host` cannot
//! decide (an unknown command's status, a variable from the environment)
//! make everything they guard *uncertain*, and a pass reports an effect it
//! meets under uncertainty as not done instead of guessing.
//!
//! Loops, `case`, functions, subshells and command substitution are not
//! followed: from the first one on, the rest of the body is uncertain.

use std::collections::HashMap;

use super::lex::{self, Part};

/// One simple command, its words expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The words after expansion; `None` for a word holding something that
    /// could not be expanded (`$HOME`, `` `cmd` ``).
    pub words: Vec<Option<String>>,
    /// 1-based line in the body.
    pub line: usize,
    /// The command as written, for messages.
    pub text: String,
}

impl Command {
    /// The command name without its directory (`/usr/sbin/alternatives` →
    /// `alternatives`), if it expanded.
    pub fn name(&self) -> Option<&str> {
        let w = self.words.first()?.as_deref()?;
        Some(w.rsplit('/').next().unwrap_or(w))
    }

    /// Every word, or `None` when one did not expand.
    pub fn literal(&self) -> Option<Vec<&str>> {
        self.words.iter().map(|w| w.as_deref()).collect()
    }
}

/// What a command returns, as far as the reader can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Unknown,
}

/// The side the passes play: file tests against the tree, and commands.
pub trait Host {
    /// `-e`, `-f`, `-d`, `-L`/`-h`, `-x`, `-s` on an image path; `None`
    /// when the test is not understood.
    fn file_test(&self, op: &str, path: &str) -> Option<bool>;
    /// Emulate (or ignore) `cmd`; `certain` is false when the command runs
    /// only under a condition that could not be decided.
    fn run(&mut self, cmd: &Command, certain: bool) -> Status;
}

/// A token as this reader sees it: a word with its value (`None` when it
/// could not be expanded) and its text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Option<String>, String),
    /// `;`, newline, `&&`, `||`, `|`, `&`, a lone `(`, `)`, `{`, `}`
    Op(&'static str),
    /// A redirection, dropped from its command; `heredoc` for `<<`.
    Redirect {
        heredoc: bool,
    },
}

/// A word's value with `vars` known, or `None`.
fn expand(w: &lex::Word, vars: &HashMap<String, String>) -> Option<String> {
    let mut s = String::new();
    for p in &w.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            // A lone `$` is itself.
            Part::Param { raw, .. } if raw == "$" => s.push('$'),
            Part::Param { name, .. } => s.push_str(vars.get(name)?),
            Part::Subst { .. } => return None,
        }
    }
    Some(s)
}

/// The body's tokens with `vars` expanded, each with its line.
fn expanded(lexed: &[lex::Token], vars: &HashMap<String, String>) -> Vec<(Tok, usize)> {
    lexed
        .iter()
        .filter_map(|t| {
            let tok = match &t.tok {
                lex::Tok::Word(w) => Tok::Word(expand(w, vars), w.raw.clone()),
                lex::Tok::Op(o) => Tok::Op(o),
                lex::Tok::Redirect { .. } => Tok::Redirect {
                    heredoc: t.tok.is_heredoc(),
                },
                // Its lines are not commands.
                lex::Tok::Heredoc(_) => return None,
            };
            Some((tok, t.line))
        })
        .collect()
}

/// Where the reader is in an `if`.
struct Frame {
    /// Whether the enclosing code runs: Some(true) yes, None uncertain.
    outer: Option<bool>,
    /// A branch of this `if` already ran for sure.
    taken: bool,
    /// Whether the current branch body runs.
    now: Option<bool>,
    /// An earlier branch may have run (its condition was undecided).
    maybe_taken: bool,
    /// Reading the condition (between `if`/`elif` and `then`).
    in_cond: bool,
}

impl Frame {
    /// Close the current branch before `elif`/`else`.
    fn next_branch(&mut self) {
        self.taken |= self.now == Some(true);
        self.maybe_taken |= self.now.is_none();
    }

    /// Whether a branch whose own condition is `cond` runs.
    fn branch(&self, cond: Option<bool>) -> Option<bool> {
        if self.taken {
            Some(false)
        } else if self.maybe_taken {
            and(None, cond)
        } else {
            cond
        }
    }
}

/// Read `body` with `$1`, `$2`… set to `args`, handing each simple
/// command to `host`.
pub fn run(body: &str, args: &[&str], host: &mut dyn Host) {
    let mut vars: HashMap<String, String> = args
        .iter()
        .enumerate()
        .map(|(i, a)| ((i + 1).to_string(), a.to_string()))
        .collect();
    vars.insert("#".into(), args.len().to_string());
    let (_, lexed) = lex::tokens(body);
    let mut toks = expanded(&lexed, &vars);
    // Assignments seen in the body: expand again with them known when there are any.
    let mut lexer_vars = vars.clone();
    let assigned: Vec<(String, String)> = toks
        .iter()
        .filter_map(|(t, _)| match t {
            Tok::Word(Some(v), raw) => {
                let (k, val) = v.split_once('=')?;
                let ok = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && raw.starts_with(k);
                ok.then(|| (k.to_string(), val.to_string()))
            }
            _ => None,
        })
        .collect();
    if !assigned.is_empty() {
        // A variable assigned twice to different values is unknown.
        let mut seen: HashMap<String, Option<String>> = HashMap::new();
        for (k, v) in assigned {
            seen.entry(k)
                .and_modify(|old| {
                    if old.as_deref() != Some(v.as_str()) {
                        *old = None
                    }
                })
                .or_insert(Some(v));
        }
        for (k, v) in seen {
            match v {
                Some(v) => {
                    lexer_vars.insert(k, v);
                }
                None => {
                    lexer_vars.remove(&k);
                }
            }
        }
        toks = expanded(&lexed, &lexer_vars);
    }
    drop(vars);
    Reader {
        host,
        frames: Vec::new(),
        stopped: false,
        lost: false,
    }
    .read(&toks);
}

struct Reader<'h> {
    host: &'h mut dyn Host,
    frames: Vec<Frame>,
    /// `exit` ran for sure.
    stopped: bool,
    /// An unsupported construct was met: everything after is uncertain.
    lost: bool,
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

impl Reader<'_> {
    /// Whether code at the current point runs.
    fn live(&self) -> Option<bool> {
        if self.stopped {
            return Some(false);
        }
        let here = self.frames.last().map_or(Some(true), |f| {
            if f.in_cond {
                and(f.outer, f.branch(Some(true)))
            } else {
                and(f.outer, f.now)
            }
        });
        if self.lost && here != Some(false) {
            return None;
        }
        here
    }

    fn read(&mut self, toks: &[(Tok, usize)]) {
        // Split into and-or lists at `;`, newline, `&`.
        let mut i = 0;
        while i < toks.len() {
            let start = i;
            while i < toks.len() && !matches!(toks[i].0, Tok::Op(";" | "\n" | "&")) {
                i += 1;
            }
            self.list(&toks[start..i]);
            i += 1;
        }
    }

    /// One and-or list: `a && b || c`, or a keyword.
    fn list(&mut self, toks: &[(Tok, usize)]) {
        if toks.is_empty() {
            return;
        }
        let keyword = |t: &Tok| match t {
            Tok::Word(Some(w), raw) if w == raw => Some(w.clone()),
            _ => None,
        };
        let mut toks = toks;
        // Keywords that open or continue an `if`, and the `}` closing a
        // group, may be followed by a command.
        loop {
            if matches!(toks.first(), Some((Tok::Op("}"), _))) {
                self.frames.pop();
                toks = &toks[1..];
                continue;
            }
            let Some(k) = toks.first().and_then(|(t, _)| keyword(t)) else {
                break;
            };
            match k.as_str() {
                "if" => {
                    let outer = self.live();
                    self.frames.push(Frame {
                        outer,
                        taken: false,
                        now: None,
                        maybe_taken: false,
                        in_cond: true,
                    });
                }
                "then" => {
                    if let Some(f) = self.frames.last_mut() {
                        f.in_cond = false;
                    }
                }
                "elif" => {
                    if let Some(f) = self.frames.last_mut() {
                        f.next_branch();
                        f.in_cond = true;
                    }
                }
                "else" => {
                    if let Some(f) = self.frames.last_mut() {
                        f.next_branch();
                        f.now = f.branch(Some(true));
                    }
                }
                "fi" => {
                    self.frames.pop();
                }
                "for" | "while" | "until" | "case" | "do" | "done" | "esac" | "function" => {
                    self.lost = true;
                    return;
                }
                _ => break,
            }
            toks = &toks[1..];
        }
        if toks.is_empty() {
            return;
        }
        // `A || { B`: open the group, then read B inside it.
        if let Some(p) = toks.iter().position(|(t, _)| *t == Tok::Op("{")) {
            if p + 1 < toks.len() {
                self.list(&toks[..p + 1]);
                self.list(&toks[p + 1..]);
                return;
            }
        }
        // `A || {` / `A && {` / `{`: a group that runs as A's status says.
        if let Some(((Tok::Op("{"), _), before)) = toks.split_last() {
            let live = self.live();
            let runs = match before.split_last() {
                None => live,
                Some(((Tok::Op(op @ ("&&" | "||")), _), cond)) => {
                    let status = self.and_or(cond);
                    and(
                        live,
                        if *op == "&&" {
                            status
                        } else {
                            status.map(|s| !s)
                        },
                    )
                }
                Some(_) => {
                    self.lost = true;
                    return;
                }
            };
            self.frames.push(Frame {
                outer: live,
                taken: false,
                now: runs,
                maybe_taken: false,
                in_cond: false,
            });
            return;
        }
        if toks
            .iter()
            .any(|(t, _)| matches!(t, Tok::Op("(" | ")" | "{" | "}")))
        {
            self.lost = true;
            return;
        }
        self.and_or(toks);
    }

    /// Evaluate `a && b || c` (no keywords); its status. In an `if`
    /// condition, the status decides the branch.
    fn and_or(&mut self, toks: &[(Tok, usize)]) -> Option<bool> {
        let in_cond = self.frames.last().is_some_and(|f| f.in_cond);
        let live = self.live();
        // Evaluate `a && b || c` left to right.
        let mut status: Option<bool> = Some(true);
        let mut runs: Option<bool> = live;
        let mut i = 0;
        while i < toks.len() {
            let start = i;
            while i < toks.len() && !matches!(toks[i].0, Tok::Op("&&" | "||" | "|")) {
                i += 1;
            }
            let s = self.simple(&toks[start..i], runs);
            if runs != Some(false) {
                status = if runs == Some(true) {
                    s
                } else {
                    // Ran or not: the status is whatever it was, or this.
                    if status == s {
                        s
                    } else {
                        None
                    }
                };
            }
            let op = toks.get(i).map(|(t, _)| t.clone());
            i += 1;
            runs = match op {
                Some(Tok::Op("&&")) => and(live, status),
                Some(Tok::Op("||")) => and(live, status.map(|s| !s)),
                Some(Tok::Op("|")) => {
                    // A pipeline's status is its last command's.
                    live
                }
                _ => break,
            };
        }
        if in_cond {
            if let Some(f) = self.frames.last_mut() {
                f.now = f.branch(status);
            }
        }
        status
    }

    /// One simple command (redirections dropped), if it runs; its status.
    fn simple(&mut self, toks: &[(Tok, usize)], runs: Option<bool>) -> Option<bool> {
        let mut words = Vec::new();
        let mut text = Vec::new();
        let line = toks.first().map_or(0, |t| t.1);
        for (t, _) in toks {
            if *t == (Tok::Redirect { heredoc: true }) {
                // What a here-document feeds the command is not followed.
                self.lost = true;
                return None;
            }
            let Tok::Word(v, raw) = t else { continue };
            words.push(v.clone());
            text.push(raw.clone());
        }
        // Leading assignments were already taken into account by the lexer.
        while words.first().is_some_and(|w| {
            w.as_deref().is_some_and(|w| {
                w.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            })
        }) {
            words.remove(0);
            text.remove(0);
        }
        if words.is_empty() {
            return Some(true);
        }
        let mut negate = false;
        if words[0].as_deref() == Some("!") {
            negate = true;
            words.remove(0);
            text.remove(0);
        }
        let cmd = Command {
            words,
            line,
            text: text.join(" "),
        };
        if runs == Some(false) {
            return None;
        }
        let status = match cmd.name() {
            Some("exit") => {
                if runs == Some(true) {
                    self.stopped = true;
                } else {
                    self.lost = true;
                }
                return None;
            }
            Some("true" | ":") => Some(true),
            Some("false") => Some(false),
            Some("echo" | "printf") => Some(true),
            Some("test") => self.test(&cmd.words[1..]),
            Some("[") => match cmd.words.last() {
                Some(Some(l)) if l == "]" => self.test(&cmd.words[1..cmd.words.len() - 1]),
                _ => None,
            },
            _ => match self.host.run(&cmd, runs == Some(true)) {
                Status::Success => Some(true),
                Status::Failure => Some(false),
                Status::Unknown => None,
            },
        };
        if negate {
            status.map(|s| !s)
        } else {
            status
        }
    }

    /// `test` / `[ ]` arguments.
    fn test(&self, args: &[Option<String>]) -> Option<bool> {
        let args: Vec<&str> = args.iter().map(|a| a.as_deref()).collect::<Option<_>>()?;
        eval_test(&args, &|op, p| self.host.file_test(op, p))
    }
}

/// `test` semantics for the forms scriptlets use: `! E`, `-e P`…, `-z S`,
/// `-n S`, `A = B`, `A != B`, `N -eq M`…, and `-a`/`-o` between them.
pub fn eval_test(args: &[&str], file: &dyn Fn(&str, &str) -> Option<bool>) -> Option<bool> {
    if let Some(i) = args.iter().position(|&a| a == "-o") {
        let (l, r) = (eval_test(&args[..i], file), eval_test(&args[i + 1..], file));
        return match (l, r) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
    }
    if let Some(i) = args.iter().position(|&a| a == "-a") {
        return and(eval_test(&args[..i], file), eval_test(&args[i + 1..], file));
    }
    match args {
        ["!", rest @ ..] => eval_test(rest, file).map(|b| !b),
        [s] => Some(!s.is_empty()),
        ["-z", s] => Some(s.is_empty()),
        ["-n", s] => Some(!s.is_empty()),
        [op, p] if op.len() == 2 && op.starts_with('-') => file(op, p),
        [a, "=" | "==", b] => Some(a == b),
        [a, "!=", b] => Some(a != b),
        [a, op, b] => {
            let (a, b) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
            Some(match *op {
                "-eq" => a == b,
                "-ne" => a != b,
                "-gt" => a > b,
                "-ge" => a >= b,
                "-lt" => a < b,
                "-le" => a <= b,
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The arguments rpm passes a scriptlet on a first install: `$1` is the
/// number of instances of the package after the transaction (1); a
/// trigger's `$2` is that of the triggering package. Removal scriptlets
/// never run on install: `None`.
pub fn install_args(kind: crate::rootfs::unpack::ScriptletKind) -> Option<&'static [&'static str]> {
    use crate::rootfs::unpack::ScriptletKind::*;
    match kind {
        PreTrans | PreIn | PostIn | PostTrans => Some(&["1"]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records commands with their certainty; `-e` is true for `/yes` only.
    #[derive(Default)]
    struct Log(Vec<(String, bool)>);

    impl Host for Log {
        fn file_test(&self, op: &str, path: &str) -> Option<bool> {
            match op {
                "-e" | "-L" => Some(path == "/yes"),
                "-w" | "-d" => Some(path == "/var" || path == "/yes"),
                _ => None,
            }
        }
        fn run(&mut self, cmd: &Command, certain: bool) -> Status {
            let words: Vec<String> = cmd
                .words
                .iter()
                .map(|w| w.clone().unwrap_or_else(|| "?".into()))
                .collect();
            self.0.push((words.join(" "), certain));
            if cmd.name() == Some("grep") {
                Status::Unknown
            } else {
                Status::Success
            }
        }
    }

    fn log(body: &str) -> Vec<(String, bool)> {
        let mut l = Log::default();
        run(body, &["1"], &mut l);
        l.0
    }

    #[test]
    fn here_document_lines_and_glued_redirections_are_not_commands() {
        // The shared tokenizer reads the here-document's lines as its body;
        // what follows is uncertain (the fed command is not followed).
        assert_eq!(
            log("cat <<EOF >/x\nln -s a /in-doc\nEOF\nln -s b /after"),
            [("ln -s b /after".into(), false)]
        );
        assert_eq!(
            log("ln -s a /b>/dev/null 2>&1"),
            [("ln -s a /b".into(), true)]
        );
    }

    #[test]
    fn guards_and_exit() {
        // cracklib.spec %post (microsoft/azurelinux SPECS/cracklib), %{_datadir} expanded.
        let body = "/sbin/ldconfig\n[ $1 = 1 ] || exit 0\necho \"using empty dict to provide pw_dict\" >&2\nln -sf empty.hwm /usr/share/cracklib/pw_dict.hwm\n";
        assert_eq!(
            log(body),
            [
                ("/sbin/ldconfig".into(), true),
                (
                    "ln -sf empty.hwm /usr/share/cracklib/pw_dict.hwm".into(),
                    true
                )
            ]
        );
        assert_eq!(log("[ $1 = 2 ] || exit 0\nln -s a b"), []);
        assert_eq!(
            log("[ -e /yes ] || ln -s a /yes; [ -e /no ] || ln -s a /no"),
            [("ln -s a /no".into(), true)]
        );
        assert_eq!(log("test -e /no && ln -s a b"), []);
    }

    #[test]
    fn if_branches_and_uncertainty() {
        let body = "if [ ! -L /yes ]; then\n  ln -s x /yes\nelif [ -e /no ]; then\n  mkdir -p /a\nelse\n  mkdir -p /b\nfi\nif grep -q x /f; then ln -s y /z; fi\n";
        assert_eq!(
            log(body),
            [
                ("mkdir -p /b".into(), true),
                ("grep -q x /f".into(), true),
                ("ln -s y /z".into(), false)
            ]
        );
        // Variables: a literal assignment expands; the environment does not.
        assert_eq!(
            log("D=/usr/share/x\nln -s a \"$D/b\" 2>/dev/null; ln -s a $HOME/c"),
            [
                ("ln -s a /usr/share/x/b".into(), true),
                ("ln -s a ?".into(), true)
            ]
        );
        // A loop makes the rest uncertain.
        assert_eq!(
            log("for f in a b; do ln -s $f /x; done\nln -s c /d"),
            [("ln -s c /d".into(), false)]
        );
        // Line continuations and comments.
        assert_eq!(
            log("# note\nmkdir -p \\\n  /a/b # trailing\n"),
            [("mkdir -p /a/b".into(), true)]
        );
    }

    #[test]
    fn brace_groups() {
        // systemd.spec %post (microsoft/azurelinux SPECS/systemd), its
        // control flow with the comments left out and %{_localstatedir} expanded.
        let body = "systemd-machine-id-setup &>/dev/null || :\n\nsystemctl daemon-reexec &>/dev/null || {\n  if [ $1 -gt 1 ] && [ -d /run/systemd/system ] ; then\n    kill -TERM 1 &>/dev/null || :\n  fi\n}\n\n[ $1 -eq 1 ] || exit 0\n\n[ -w /var ] && mkdir -p /var/log/journal\n\n[ -w /var ] && journalctl --update-catalog || :\nsystemd-sysusers || :\n";
        let got = log(body);
        assert!(
            got.contains(&("mkdir -p /var/log/journal".to_string(), true)),
            "{got:?}"
        );
        assert!(!got.iter().any(|(c, _)| c.starts_with("kill")), "{got:?}");
        assert_eq!(
            log("true || { ln -s a b; }\nln -s c d"),
            [("ln -s c d".into(), true)]
        );
        assert_eq!(
            log("false || {\nln -s a b\n}"),
            [("ln -s a b".into(), true)]
        );
    }

    #[test]
    fn malformed_bodies_do_not_panic() {
        for body in [
            "'unterminated",
            "\"$",
            "${",
            "${x",
            "if",
            "fi fi then",
            "[ ]",
            "[",
            "\\",
            "`",
            "ln -s",
            "((",
            "a >",
            "2>&",
            "<<EOF\nln -s a b\nEOF",
            "elif else",
            "x=1 x=2 ln -s $x y",
            "! ! !",
            "&&||;|&",
            "exit",
            "[ a -eq ]",
            "test -x",
            "$(",
            "\u{1F600}",
            "$#",
        ] {
            log(body);
        }
        assert!(crate::rootfs::effects::links::scriptlet(
            &mut crate::rootfs::Tree::default(),
            &crate::rootfs::unpack::SkippedScriptlet {
                kind: crate::rootfs::unpack::ScriptletKind::PostIn,
                interpreter: vec!["<lua>".into()],
                body: "posix.symlink(\"a\nposix.mkdir('\u{e9}\\\nif not posix.stat(\"x\") then\n--\"\nend end end\n".into(),
                triggered_by: vec![],
            },
            0,
            &mut vec![],
        )
        .ops
        .is_empty());
    }

    #[test]
    fn test_forms() {
        let no = |_: &str, _: &str| None;
        assert_eq!(eval_test(&["1", "-eq", "1"], &no), Some(true));
        assert_eq!(eval_test(&["a", "!=", "a"], &no), Some(false));
        assert_eq!(eval_test(&["-z", ""], &no), Some(true));
        assert_eq!(eval_test(&["-e", "/x"], &no), None);
        assert_eq!(
            eval_test(&["1", "=", "1", "-o", "-e", "/x"], &no),
            Some(true)
        );
        assert_eq!(eval_test(&["!", "1", "=", "2"], &no), Some(true));
    }
}
