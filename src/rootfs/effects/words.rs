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
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut cur = Builder::default();
    let mut i = 0;
    let mut line_start = 0;
    let mut pending_heredocs: Vec<(usize, String, bool)> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            ' ' | '\t' => {
                cur.end_word();
                i += 1;
            }
            '#' if cur.word.is_none() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\n' | ';' | '&' | '|' => {
                cur.end_word();
                let eol = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                let line: String = chars[line_start..eol].iter().collect();
                let index = out.len();
                if let Some(cmd) = cur.finish(line.trim()) {
                    out.push(cmd);
                    for h in pending_heredocs.iter_mut().filter(|h| h.0 == usize::MAX) {
                        h.0 = index;
                    }
                }
                if c == '\n' {
                    i += 1;
                    // Here-documents start on the line after their operator.
                    for (cmd, delim, strip) in std::mem::take(&mut pending_heredocs) {
                        let (text, next) = read_heredoc(&chars, i, &delim, strip);
                        if let Some(command) = out.get_mut(cmd) {
                            command.heredoc = Some(text);
                        }
                        i = next;
                    }
                    line_start = i;
                } else {
                    i += 1;
                    while i < chars.len() && matches!(chars[i], '&' | '|') {
                        i += 1;
                    }
                }
            }
            '<' | '>' => {
                cur.end_word();
                let mut op = String::new();
                // A leading file descriptor (`2>`) belongs to the operator.
                if let Some(last) = cur.words.last() {
                    if last.text.bytes().all(|b| b.is_ascii_digit())
                        && !last.text.is_empty()
                        && i > 0
                        && chars[i - 1].is_ascii_digit()
                    {
                        op = cur.words.pop().map(|w| w.text).unwrap_or_default();
                    }
                }
                while i < chars.len() && matches!(chars[i], '<' | '>' | '&' | '-') {
                    op.push(chars[i]);
                    i += 1;
                }
                while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                    i += 1;
                }
                let (target, next) = read_word(&chars, i);
                i = next;
                if op.starts_with("<<") && !op.starts_with("<<<") {
                    let strip = op.ends_with('-');
                    pending_heredocs.push((usize::MAX, target.text.clone(), strip));
                }
                cur.redirects.push((op, target.text));
            }
            _ => {
                let (word, next) = read_word(&chars, i);
                let w = cur.word.get_or_insert_with(|| Word {
                    text: String::new(),
                    expands: false,
                });
                w.text.push_str(&word.text);
                w.expands |= word.expands;
                i = next;
            }
        }
    }
    cur.end_word();
    let line: String = chars[line_start..].iter().collect();
    // A here-document operator on the last line has no body to read.
    out.extend(cur.finish(line.trim()));
    out
}

#[derive(Default)]
struct Builder {
    words: Vec<Word>,
    word: Option<Word>,
    redirects: Vec<(String, String)>,
}

impl Builder {
    fn end_word(&mut self) {
        if let Some(w) = self.word.take() {
            self.words.push(w);
        }
    }

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

/// One word (or word part) starting at `i`: up to an unquoted blank or
/// operator. Returns the word and the index after it.
fn read_word(chars: &[char], mut i: usize) -> (Word, usize) {
    let mut w = Word {
        text: String::new(),
        expands: false,
    };
    while i < chars.len() {
        match chars[i] {
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' => break,
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    w.text.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            w.text.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '$' | '`' => w.expands = true,
                        _ => {}
                    }
                    w.text.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '\\' => {
                if let Some(&c) = chars.get(i + 1) {
                    if c != '\n' {
                        w.text.push(c);
                    }
                }
                i += 2;
            }
            c => {
                if c == '$' || c == '`' {
                    w.expands = true;
                }
                w.text.push(c);
                i += 1;
            }
        }
    }
    (w, i)
}

/// The here-document starting at `i`, up to the line equal to `delim`
/// (tabs stripped first for `<<-`). Returns its text and the index after
/// the delimiter line.
fn read_heredoc(chars: &[char], mut i: usize, delim: &str, strip: bool) -> (String, usize) {
    let mut text = String::new();
    while i < chars.len() {
        let end = chars[i..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(chars.len(), |p| i + p);
        let line: String = chars[i..end].iter().collect();
        i = (end + 1).min(chars.len());
        let line = if strip {
            line.trim_start_matches('\t').to_string()
        } else {
            line
        };
        if line == delim {
            break;
        }
        text.push_str(&line);
        text.push('\n');
    }
    (text, i)
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
