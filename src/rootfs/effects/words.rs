//! Just enough of POSIX shell to read account and `/etc/shells` commands as a list of simple
//! commands: words with quotes removed, split at newlines, `;`, `&&`, `||`,
//! `|` and `&`, with redirections and here-documents kept apart.
//!
//! Nothing is expanded: a word that needs a variable or a command
//! substitution is marked, so a pass can refuse it (and say so) instead of
//! guessing. Compound commands are flattened: `if`, `then`, `else`, `fi`,
//! `!` and friends are dropped, so `if ! getent passwd x; then useradd x; fi`
//! reads as `getent passwd x` and `useradd x`. That is sound for account
//! commands because creating an account that exists is a no-op here, as the
//! `getent` guards make it in the real scriptlet.

use super::lex::{self, Tok};

/// One word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// An unquoted or double-quoted `$`, or a backquote: the real value is
    /// only known when the shell runs.
    pub expands: bool,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<Word>,
    /// `(operator, target)` redirections, e.g. `(">>", "/etc/shells")`.
    pub redirects: Vec<(String, String)>,
    /// The text of a here-document fed to the command, if any.
    pub heredoc: Option<String>,
    /// The (first) source line, for messages.
    pub line: String,
}

impl Command {
    /// The command's name without its directory (`/usr/sbin/useradd` → `useradd`).
    pub fn name(&self) -> &str {
        let first = self.words.first().map(|w| w.text.as_str()).unwrap_or("");
        first.rsplit('/').next().unwrap_or(first)
    }
}

/// Words that only shape control flow; dropped from the front of a command.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];

/// Split `body` into simple commands (see the module comment).
pub fn commands(body: &str) -> Vec<Command> {
    let (chars, toks) = lex::tokens(body);
    let mut out = Vec::new();
    let mut cur = Builder::default();
    let mut line_start = 0;
    // Commands waiting for a here-document (usize::MAX: not yet finished),
    // and those the here-documents after this newline feed.
    let mut pending: Vec<usize> = Vec::new();
    let mut feeding: std::collections::VecDeque<usize> = Default::default();
    for t in toks {
        match t.tok {
            Tok::Word(w) => cur.words.push(Word {
                text: w.text(),
                expands: w.expands(),
            }),
            // Grouping is flattened: a lone brace or parenthesis is a word.
            Tok::Op(op @ ("(" | ")" | "{" | "}")) => cur.words.push(Word {
                text: op.to_string(),
                expands: false,
            }),
            Tok::Op(op) => {
                let eol = chars[t.start..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| t.start + p);
                let line: String = chars[line_start..eol].iter().collect();
                let index = out.len();
                if let Some(cmd) = cur.finish(line.trim()) {
                    out.push(cmd);
                    for h in pending.iter_mut().filter(|h| **h == usize::MAX) {
                        *h = index;
                    }
                }
                if op == "\n" {
                    feeding = std::mem::take(&mut pending).into();
                    line_start = t.end;
                }
            }
            Tok::Redirect { op, target } => {
                if op.starts_with("<<") && !op.starts_with("<<<") {
                    pending.push(usize::MAX);
                }
                cur.redirects.push((op, target.text()));
            }
            Tok::Heredoc(text) => {
                if let Some(command) = feeding.pop_front().and_then(|i| out.get_mut(i)) {
                    command.heredoc = Some(text);
                }
                line_start = t.end;
            }
        }
    }
    let line: String = chars[line_start.min(chars.len())..].iter().collect();
    // A here-document operator on the last line has no body to read.
    out.extend(cur.finish(line.trim()));
    out
}

#[derive(Default)]
struct Builder {
    words: Vec<Word>,
    redirects: Vec<(String, String)>,
}

impl Builder {
    fn finish(&mut self, line: &str) -> Option<Command> {
        let mut words = std::mem::take(&mut self.words);
        let redirects = std::mem::take(&mut self.redirects);
        let skip = words
            .iter()
            .take_while(|w| !w.expands && KEYWORDS.contains(&w.text.as_str()))
            .count();
        words.drain(..skip);
        if words.is_empty() && redirects.is_empty() {
            return None;
        }
        Some(Command {
            words,
            redirects,
            heredoc: None,
            line: line.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(c: &Command) -> Vec<&str> {
        c.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn splits_guards_quotes_redirections_and_continuations() {
        let cmds = commands(
            "getent group 'frrvty' >/dev/null || groupadd -r 'frrvty' || :\n\
             # a comment\n\
             getent passwd x >/dev/null 2>&1 || \\\n    useradd -c \"A \\\"B\\\"\" -r x\n\
             if ! getent passwd y; then useradd $NAME; fi\n",
        );
        let all: Vec<Vec<&str>> = cmds.iter().map(words).collect();
        assert_eq!(
            all,
            [
                vec!["getent", "group", "frrvty"],
                vec!["groupadd", "-r", "frrvty"],
                vec![":"],
                vec!["getent", "passwd", "x"],
                vec!["useradd", "-c", "A \"B\"", "-r", "x"],
                vec!["getent", "passwd", "y"],
                vec!["useradd", "$NAME"],
            ]
        );
        assert_eq!(
            cmds[3].redirects,
            [
                (">".to_string(), "/dev/null".to_string()),
                ("2>&".to_string(), "1".to_string())
            ]
        );
        assert!(!cmds[4].words[2].expands);
        assert!(cmds[6].words[1].expands);
        assert_eq!(cmds[1].name(), "groupadd");
        assert_eq!(cmds[6].line, "if ! getent passwd y; then useradd $NAME; fi");
    }

    #[test]
    fn reads_here_documents() {
        let cmds = commands(
            "/usr/sbin/sysusers2shadow me.conf <<\"EOF\"\nu   me   -     \"myself\" /dev/null\ng   asdf\nEOF\necho done >> /etc/shells\n",
        );
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0].name(), "sysusers2shadow");
        assert_eq!(
            cmds[0].heredoc.as_deref(),
            Some("u   me   -     \"myself\" /dev/null\ng   asdf\n")
        );
        assert_eq!(words(&cmds[1]), ["echo", "done"]);
        assert_eq!(
            cmds[1].redirects,
            [(">>".to_string(), "/etc/shells".to_string())]
        );
    }
}
