//! The one tokenizer of scriptlet shell bodies, shared by the two readings
//! of them: [`super::shell`] (conditions decided, `$1` and assignments
//! expanded) and [`super::words`] (a flat list of simple commands with
//! their redirections and here-documents).
//!
//! It splits a body into words, operators (`;`, newline, `&&`, `||`, `|`,
//! `&`, and `(`, `)`, `{`, `}` standing alone), redirections (`>`, `2>&`,
//! `<<-`… with their target word) and here-document bodies. Quotes are
//! removed as POSIX says; nothing is expanded here: a word keeps `$NAME`,
//! `${NAME}`, `$1` and command substitutions as [`Part`]s, so each reader
//! decides what it can know.

/// A piece of a word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// `$NAME`, `${NAME}`, `$1`, `$?`, `$#`; `name` is empty for a `$`
    /// followed by nothing a name can start with.
    Param {
        name: String,
        raw: String,
    },
    /// A backquote or `$(`: the start of a command substitution.
    Subst {
        raw: &'static str,
    },
}

/// One word: its parts and its text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub parts: Vec<Part>,
    pub raw: String,
}

impl Word {
    /// The text with quotes removed and expansions left as written.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Param { raw, .. } => s.push_str(raw),
                Part::Subst { raw } => s.push_str(raw),
            }
        }
        s
    }

    /// Whether the shell would expand something in it.
    pub fn expands(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Lit(_)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    /// `;`, newline, `&&`, `||`, `|`, `&`, or a lone `(`, `)`, `{`, `}`.
    Op(&'static str),
    /// `op` with any leading file descriptor (`2>&`), and its target.
    Redirect {
        op: String,
        target: Word,
    },
    /// The body of a here-document, after the newline that ends the line
    /// of its operator (one per `<<` on that line, in order).
    Heredoc(String),
}

impl Tok {
    /// A redirection that starts a here-document (or here-string).
    pub fn is_heredoc(&self) -> bool {
        matches!(self, Tok::Redirect { op, .. } if op.starts_with("<<"))
    }
}

/// A token and where it is: char offsets in the body, and the 1-based line
/// it ends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// The body as chars (the offsets of [`Token`] index it) and its tokens.
pub fn tokens(body: &str) -> (Vec<char>, Vec<Token>) {
    let chars: Vec<char> = body.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut line = 1;
    let mut counted = 0;
    // Here-documents whose operator is on the current line: delimiter, `<<-`.
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    let mut push = |out: &mut Vec<Token>, tok, start, end: usize| {
        line += chars[counted..end].iter().filter(|&&c| c == '\n').count();
        counted = end;
        out.push(Token {
            tok,
            start,
            end,
            line,
        });
    };
    while i < chars.len() {
        let start = i;
        match chars[i] {
            ' ' | '\t' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\n' => {
                i += 1;
                push(&mut out, Tok::Op("\n"), start, i);
                // Here-documents start on the line after their operator.
                for (delim, strip) in std::mem::take(&mut pending) {
                    let from = i;
                    let (text, next) = read_heredoc(&chars, i, &delim, strip);
                    i = next;
                    push(&mut out, Tok::Heredoc(text), from, i);
                }
            }
            c @ (';' | '&' | '|') => {
                i += 1;
                let op = match (c, chars.get(i)) {
                    ('&', Some('&')) => "&&",
                    ('|', Some('|')) => "||",
                    (';', _) => ";",
                    ('&', _) => "&",
                    _ => "|",
                };
                i += op.len() - 1;
                push(&mut out, Tok::Op(op), start, i);
            }
            '<' | '>' => {
                let mut op = String::new();
                let mut start = start;
                // A file descriptor written right before (`2>`) belongs to it.
                if let Some(Token {
                    tok: Tok::Word(w),
                    end,
                    ..
                }) = out.last()
                {
                    if *end == i && !w.raw.is_empty() && w.raw.bytes().all(|b| b.is_ascii_digit()) {
                        op = w.raw.clone();
                        start = out.last().map_or(start, |t| t.start);
                        out.pop();
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
                    pending.push((target.text(), op.ends_with('-')));
                }
                push(&mut out, Tok::Redirect { op, target }, start, i);
            }
            c @ ('(' | ')' | '{' | '}')
                if chars.get(i + 1).is_none_or(|n| " \t\n;".contains(*n)) =>
            {
                i += 1;
                let op = match c {
                    '(' => "(",
                    ')' => ")",
                    '{' => "{",
                    _ => "}",
                };
                push(&mut out, Tok::Op(op), start, i);
            }
            _ => {
                let (word, next) = read_word(&chars, i);
                i = next;
                push(&mut out, Tok::Word(word), start, i);
            }
        }
    }
    (chars, out)
}

/// One word starting at `i`: up to an unquoted blank, operator or
/// redirection. Returns it and the index after it.
fn read_word(chars: &[char], mut i: usize) -> (Word, usize) {
    let start = i;
    let mut parts: Vec<Part> = Vec::new();
    let lit = |parts: &mut Vec<Part>, c: char| match parts.last_mut() {
        Some(Part::Lit(s)) => s.push(c),
        _ => parts.push(Part::Lit(c.to_string())),
    };
    while i < chars.len() {
        match chars[i] {
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' => break,
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    lit(&mut parts, chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            lit(&mut parts, chars[i + 1]);
                            i += 2;
                        }
                        '$' => i = dollar(chars, i, &mut parts),
                        '`' => {
                            parts.push(Part::Subst { raw: "`" });
                            i += 1;
                        }
                        c => {
                            lit(&mut parts, c);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '\\' => {
                if let Some(&c) = chars.get(i + 1) {
                    if c != '\n' {
                        lit(&mut parts, c);
                    }
                }
                i += 2;
            }
            '$' => i = dollar(chars, i, &mut parts),
            '`' => {
                parts.push(Part::Subst { raw: "`" });
                i += 1;
            }
            c => {
                lit(&mut parts, c);
                i += 1;
            }
        }
    }
    let i = i.min(chars.len());
    let raw = chars[start.min(i)..i].iter().collect();
    (Word { parts, raw }, i)
}

/// The `$…` at `i` as a part; the index after it.
fn dollar(chars: &[char], i: usize, parts: &mut Vec<Part>) -> usize {
    let mut j = i + 1;
    let name: String = match chars.get(j) {
        Some('{') => {
            j += 1;
            let from = j;
            while j < chars.len() && chars[j] != '}' {
                j += 1;
            }
            let name = chars[from..j].iter().collect();
            j = (j + 1).min(chars.len());
            name
        }
        Some(&c) if c.is_ascii_digit() || c == '?' || c == '#' => {
            j += 1;
            c.to_string()
        }
        Some(&c) if c.is_ascii_alphabetic() || c == '_' => {
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            chars[i + 1..j].iter().collect()
        }
        Some('(') => {
            // `$(`: the `(` stays in the word, as text.
            parts.push(Part::Subst { raw: "$" });
            return j;
        }
        _ => String::new(),
    };
    parts.push(Part::Param {
        name,
        raw: chars[i..j].iter().collect(),
    });
    j
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

    fn kinds(body: &str) -> Vec<String> {
        tokens(body)
            .1
            .into_iter()
            .map(|t| match t.tok {
                Tok::Word(w) => format!("w:{}", w.text()),
                Tok::Op(o) => format!("op:{}", o.replace('\n', "\\n")),
                Tok::Redirect { op, target } => format!("r:{op}{}", target.text()),
                Tok::Heredoc(h) => format!("h:{h}"),
            })
            .collect()
    }

    #[test]
    fn words_operators_redirections_and_here_documents() {
        assert_eq!(
            kinds("a 'b c' \"d\\\"$X\" 2>&1 >>/f && { e; }\ncat <<-EOF | x\n\tbody\n\tEOF\nz"),
            [
                "w:a", "w:b c", "w:d\"$X", "r:2>&1", "r:>>/f", "op:&&", "op:{", "w:e", "op:;",
                "op:}", "op:\\n", "w:cat", "r:<<-EOF", "op:|", "w:x", "op:\\n", "h:body\n", "w:z",
            ]
        );
    }

    #[test]
    fn parts_keep_expansions_and_lines_count() {
        let (_, toks) = tokens("x${A}$1$ `y` $(z)\\\n  w");
        let Tok::Word(w) = &toks[0].tok else {
            panic!("{toks:?}")
        };
        assert_eq!(
            w.parts,
            [
                Part::Lit("x".into()),
                Part::Param {
                    name: "A".into(),
                    raw: "${A}".into()
                },
                Part::Param {
                    name: "1".into(),
                    raw: "$1".into()
                },
                Part::Param {
                    name: String::new(),
                    raw: "$".into()
                },
            ]
        );
        assert!(w.expands() && !toks.iter().any(|t| t.tok.is_heredoc()));
        assert_eq!(toks.last().map(|t| t.line), Some(2));
    }
}
