//! Rich (boolean) dependencies, rpm ≥ 4.13: `(a or b)`, `(a if b else c)`,
//! `(a with b)`, nested, with versions inside (`(foo >= 1.2 or bar)`).
//!
//! [`parse`] turns the text into a [`Rich`] tree. The solver does not take
//! trees: [`clauses`] rewrites one into conjunctive normal form, a list of
//! [`Clause`]s "one of `pos` is installed, or one of `neg` is not". Each
//! clause with at least one positive atom is exactly a resolvo conditional
//! requirement: `pos₁ | pos₂ | …` required if `neg₁ and neg₂ and …`. That
//! is how `if`, `unless` and `else` are encoded without approximation:
//!
//! - `(a if b)`            = `¬b ∨ a`
//! - `(a if b else c)`     = `(¬b ∨ a) ∧ (b ∨ c)`
//! - `(a unless b)`        = `a ∧ ¬b`
//! - `(a unless b else c)` = `(a ∧ ¬b) ∨ (c ∧ b)`
//!
//! `unless` is libsolv's reading (cplxdeps.c), not the mirror image of
//! `if`: rpm only accepts it where the expression names what to *avoid* or
//! what *triggers* (`Conflicts: (driver unless platform)` = conflict with
//! `driver` when `platform` is absent; `Supplements: (a unless b)` fires when
//! `a` is installed and `b` is not). As `b ∨ a` the first would conflict with
//! `platform` too; tests/parity.rs checks this against dnf.
//!
//! `with`/`without` are not boolean connectives between packages: they ask
//! for *one* package satisfying both (or the first but not the second), so
//! they form a single [`Atom`].

use crate::package::{Cmp, Dep, Evr};

/// A parsed dependency expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    Simple(Dep),
    And(Vec<Rich>),
    Or(Vec<Rich>),
    If {
        then: Box<Rich>,
        cond: Box<Rich>,
        otherwise: Option<Box<Rich>>,
    },
    Unless {
        then: Box<Rich>,
        cond: Box<Rich>,
        otherwise: Option<Box<Rich>>,
    },
    With(Vec<Rich>),
    Without(Box<Rich>, Box<Rich>),
}

/// What one installed package must satisfy: a plain dependency, or several
/// at once (`with`), or one but not another (`without`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Atom {
    Dep(Dep),
    With(Vec<Atom>),
    Without(Box<Atom>, Box<Atom>),
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::Dep(d) => write!(f, "{d}"),
            Atom::With(xs) => {
                let parts: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                write!(f, "({})", parts.join(" with "))
            }
            Atom::Without(a, b) => write!(f, "({a} without {b})"),
        }
    }
}

/// One CNF clause: satisfied when any `pos` atom holds or any `neg` atom
/// does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clause {
    pub pos: Vec<Atom>,
    pub neg: Vec<Atom>,
}

/// A dependency text that is not a valid (rich) dependency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse dependency `{text}`: {reason} (at byte {pos})")]
pub struct RichError {
    pub text: String,
    pub reason: String,
    pub pos: usize,
}

/// CNF blow-up guard: real rich deps have a handful of clauses.
const MAX_CLAUSES: usize = 256;

/// Parse a dependency as written in a spec file or a recipe: `name`,
/// `name >= 1.2-3`, or a parenthesized rich expression.
pub fn parse(text: &str) -> Result<Rich, RichError> {
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let rich = p.term()?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected text after the dependency"));
    }
    Ok(rich)
}

/// Parse a [`Dep`] (from repo metadata, where rich deps sit in `name`).
pub fn parse_dep(dep: &Dep) -> Result<Rich, RichError> {
    if dep.is_rich() {
        parse(&dep.name)
    } else {
        Ok(Rich::Simple(dep.clone()))
    }
}

struct Parser<'t> {
    text: &'t str,
    s: &'t [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> RichError {
        RichError {
            text: self.text.to_string(),
            reason: reason.into(),
            pos: self.pos,
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// A name or version token: up to whitespace or an unbalanced `)`, so
    /// that `perl(Foo::Bar)` stays one token.
    fn token(&mut self) -> &str {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                c if c.is_ascii_whitespace() => break,
                b'<' | b'>' | b'=' if depth == 0 => break,
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn term(&mut self) -> Result<Rich, RichError> {
        self.skip_ws();
        match self.peek() {
            Some(b'(') => self.group(),
            Some(_) => self.simple(),
            None => Err(self.err("expected a dependency, found the end")),
        }
    }

    fn simple(&mut self) -> Result<Rich, RichError> {
        let name = self.token().to_string();
        if name.is_empty() {
            return Err(self.err("expected a package or capability name"));
        }
        let save = self.pos;
        self.skip_ws();
        let cmp = match (self.peek(), self.s.get(self.pos + 1).copied()) {
            (Some(b'<'), Some(b'=')) => Some((Cmp::Le, 2)),
            (Some(b'>'), Some(b'=')) => Some((Cmp::Ge, 2)),
            (Some(b'='), Some(b'=')) => Some((Cmp::Eq, 2)),
            (Some(b'<'), _) => Some((Cmp::Lt, 1)),
            (Some(b'>'), _) => Some((Cmp::Gt, 1)),
            (Some(b'='), _) => Some((Cmp::Eq, 1)),
            _ => None,
        };
        let Some((cmp, len)) = cmp else {
            self.pos = save;
            return Ok(Rich::Simple(Dep::any(name)));
        };
        self.pos += len;
        self.skip_ws();
        let evr = self.token();
        if evr.is_empty() {
            return Err(self.err(format!("expected a version after `{}`", cmp.symbol())));
        }
        Ok(Rich::Simple(Dep::versioned(name, cmp, Evr::parse(evr))))
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn close(&mut self) -> Result<(), RichError> {
        self.skip_ws();
        if self.peek() != Some(b')') {
            return Err(self.err("expected `)`"));
        }
        self.pos += 1;
        Ok(())
    }

    fn group(&mut self) -> Result<Rich, RichError> {
        self.pos += 1; // `(`
        let first = self.term()?;
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(first);
        }
        let op_pos = self.pos;
        let op = self.word().to_string();
        let rich = match op.as_str() {
            "and" | "or" | "with" => {
                let mut items = vec![first, self.term()?];
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b')') || self.peek().is_none() {
                        break;
                    }
                    let next = self.word();
                    if next != op {
                        let next = next.to_string();
                        return Err(self.err(format!(
                            "`{op}` and `{next}` cannot be mixed without parentheses"
                        )));
                    }
                    items.push(self.term()?);
                }
                match op.as_str() {
                    "and" => Rich::And(items),
                    "or" => Rich::Or(items),
                    _ => Rich::With(items),
                }
            }
            "without" => Rich::Without(Box::new(first), Box::new(self.term()?)),
            "if" | "unless" => {
                let cond = Box::new(self.term()?);
                self.skip_ws();
                let otherwise = if self.peek() == Some(b')') {
                    None
                } else {
                    let w = self.word().to_string();
                    if w != "else" {
                        return Err(self.err(format!("expected `else` or `)`, found `{w}`")));
                    }
                    Some(Box::new(self.term()?))
                };
                let then = Box::new(first);
                if op == "if" {
                    Rich::If {
                        then,
                        cond,
                        otherwise,
                    }
                } else {
                    Rich::Unless {
                        then,
                        cond,
                        otherwise,
                    }
                }
            }
            "" => return Err(self.err("expected an operator (and, or, if, unless, with, without)")),
            other => {
                let other = other.to_string();
                self.pos = op_pos;
                return Err(self.err(format!("unknown operator `{other}`")));
            }
        };
        self.close()?;
        Ok(rich)
    }
}

/// A boolean formula over atoms, before normalization.
enum Expr {
    Lit(Atom),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn to_atom(rich: &Rich) -> Result<Atom, String> {
    Ok(match rich {
        Rich::Simple(d) => Atom::Dep(d.clone()),
        Rich::With(xs) => Atom::With(xs.iter().map(to_atom).collect::<Result<_, _>>()?),
        Rich::Without(a, b) => Atom::Without(Box::new(to_atom(a)?), Box::new(to_atom(b)?)),
        _ => return Err("`with`/`without` take simple dependencies only".to_string()),
    })
}

fn to_expr(rich: &Rich) -> Result<Expr, String> {
    let e = |r: &Rich| to_expr(r);
    Ok(match rich {
        Rich::Simple(_) | Rich::With(_) | Rich::Without(..) => Expr::Lit(to_atom(rich)?),
        Rich::And(xs) => Expr::And(xs.iter().map(e).collect::<Result<_, _>>()?),
        // libsolv sorts a rule's candidates by package name, so dnf takes
        // `a` for `(b or a)` (tests/parity.rs): alternatives that are plain
        // names are tried in name order. The solver keeps the clause's atom
        // order (an `if … else` clause relies on it), so sort here.
        Rich::Or(xs) if xs.iter().all(|x| matches!(x, Rich::Simple(_))) => {
            let mut xs: Vec<&Rich> = xs.iter().collect();
            xs.sort_by(|a, b| match (a, b) {
                (Rich::Simple(a), Rich::Simple(b)) => a.name.cmp(&b.name),
                _ => std::cmp::Ordering::Equal,
            });
            Expr::Or(xs.into_iter().map(e).collect::<Result<_, _>>()?)
        }
        Rich::Or(xs) => Expr::Or(xs.iter().map(e).collect::<Result<_, _>>()?),
        Rich::If {
            then,
            cond,
            otherwise,
        } => {
            let first = Expr::Or(vec![e(then)?, not(e(cond)?)]);
            match otherwise {
                None => first,
                // `else` branch first: resolvo tries union members in
                // order, and installing `cond` just to satisfy this clause
                // would be surprising.
                Some(c) => Expr::And(vec![first, Expr::Or(vec![e(c)?, e(cond)?])]),
            }
        }
        Rich::Unless {
            then,
            cond,
            otherwise,
        } => {
            let first = Expr::And(vec![e(then)?, not(e(cond)?)]);
            match otherwise {
                None => first,
                Some(c) => Expr::Or(vec![first, Expr::And(vec![e(c)?, e(cond)?])]),
            }
        }
    })
}

/// CNF of `expr` (or of its negation): De Morgan on the way down,
/// distribution of `or` over `and`.
fn cnf(expr: &Expr, negated: bool) -> Result<Vec<Clause>, String> {
    Ok(match (expr, negated) {
        (Expr::Lit(a), false) => vec![Clause {
            pos: vec![a.clone()],
            neg: vec![],
        }],
        (Expr::Lit(a), true) => vec![Clause {
            pos: vec![],
            neg: vec![a.clone()],
        }],
        (Expr::Not(e), n) => cnf(e, !n)?,
        (Expr::And(xs), false) | (Expr::Or(xs), true) => {
            let mut out = Vec::new();
            for x in xs {
                out.extend(cnf(x, negated)?);
            }
            out
        }
        (Expr::Or(xs), false) | (Expr::And(xs), true) => {
            let mut out = vec![Clause::default()];
            for x in xs {
                let sub = cnf(x, negated)?;
                let mut next = Vec::with_capacity(out.len() * sub.len());
                for a in &out {
                    for b in &sub {
                        let mut c = a.clone();
                        c.pos.extend(b.pos.iter().cloned());
                        c.neg.extend(b.neg.iter().cloned());
                        next.push(c);
                    }
                }
                if next.len() > MAX_CLAUSES {
                    return Err("expression too large to normalize".to_string());
                }
                out = next;
            }
            out
        }
    })
}

/// The clauses that must hold when a package `Requires` (`negated = false`)
/// or `Conflicts` with (`negated = true`) the expression.
pub fn clauses(rich: &Rich, negated: bool) -> Result<Vec<Clause>, String> {
    cnf(&to_expr(rich)?, negated)
}

/// Evaluate the expression given which atoms hold (for `Supplements` and for
/// checking whether a weak dependency is already met).
pub fn eval(rich: &Rich, holds: &mut dyn FnMut(&Atom) -> bool) -> bool {
    match rich {
        Rich::Simple(_) | Rich::With(_) | Rich::Without(..) => match to_atom(rich) {
            Ok(a) => holds(&a),
            Err(_) => false,
        },
        Rich::And(xs) => xs.iter().all(|x| eval(x, holds)),
        Rich::Or(xs) => xs.iter().any(|x| eval(x, holds)),
        Rich::If {
            then,
            cond,
            otherwise,
        } => {
            if eval(cond, holds) {
                eval(then, holds)
            } else {
                otherwise.as_ref().is_none_or(|c| eval(c, holds))
            }
        }
        Rich::Unless {
            then,
            cond,
            otherwise,
        } => {
            if eval(cond, holds) {
                otherwise.as_ref().is_some_and(|c| eval(c, holds))
            } else {
                eval(then, holds)
            }
        }
    }
}

/// Every atom mentioned, in order (to find what a rich dep pulled in).
pub fn atoms(rich: &Rich, out: &mut Vec<Atom>) {
    match rich {
        Rich::Simple(_) | Rich::With(_) | Rich::Without(..) => {
            if let Ok(a) = to_atom(rich) {
                out.push(a);
            }
        }
        Rich::And(xs) | Rich::Or(xs) => xs.iter().for_each(|x| atoms(x, out)),
        Rich::If {
            then,
            cond,
            otherwise,
        }
        | Rich::Unless {
            then,
            cond,
            otherwise,
        } => {
            atoms(then, out);
            atoms(cond, out);
            if let Some(c) = otherwise {
                atoms(c, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(s: &str) -> Rich {
        let Rich::Simple(d) = parse(s).unwrap() else {
            panic!("{s}")
        };
        Rich::Simple(d)
    }

    fn atom(s: &str) -> Atom {
        to_atom(&simple(s)).unwrap()
    }

    #[test]
    fn simple_deps_with_versions_and_parenthesized_names() {
        assert_eq!(parse("foo").unwrap(), Rich::Simple(Dep::any("foo")));
        assert_eq!(
            parse("foo >= 1:1.2-3").unwrap(),
            Rich::Simple(Dep::versioned("foo", Cmp::Ge, Evr::parse("1:1.2-3")))
        );
        assert_eq!(
            parse("perl(Foo::Bar)<2").unwrap(),
            Rich::Simple(Dep::versioned("perl(Foo::Bar)", Cmp::Lt, Evr::parse("2")))
        );
        assert_eq!(
            parse("a == 1").unwrap(),
            Rich::Simple(Dep::versioned("a", Cmp::Eq, Evr::parse("1")))
        );
    }

    #[test]
    fn every_operator_nested() {
        let r = parse("(foo >= 1.2 or (bar if baz else perl(X)) or qux)").unwrap();
        let Rich::Or(items) = &r else { panic!("{r:?}") };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], simple("foo >= 1.2"));
        assert_eq!(
            items[1],
            Rich::If {
                then: Box::new(simple("bar")),
                cond: Box::new(simple("baz")),
                otherwise: Some(Box::new(simple("perl(X)"))),
            }
        );
        assert!(matches!(parse("(a and b and c)").unwrap(), Rich::And(v) if v.len() == 3));
        assert!(matches!(parse("(a with b)").unwrap(), Rich::With(v) if v.len() == 2));
        assert!(matches!(parse("(a without b)").unwrap(), Rich::Without(..)));
        assert!(matches!(
            parse("(a unless b else c)").unwrap(),
            Rich::Unless {
                otherwise: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_text_and_the_problem() {
        let e = parse("(a and b or c)").unwrap_err();
        assert!(e.reason.contains("cannot be mixed"), "{e}");
        assert!(e.to_string().contains("(a and b or c)"));
        assert!(parse("(a xor b)").unwrap_err().reason.contains("`xor`"));
        assert!(parse("(a or b").unwrap_err().reason.contains("`)`"));
        assert!(parse("(a >= )").unwrap_err().reason.contains("version"));
        assert!(parse("(a if b otherwise c)")
            .unwrap_err()
            .reason
            .contains("else"));
        assert!(parse("((a or b) with c)").is_ok());
        assert!(clauses(&parse("((a or b) with c)").unwrap(), false).is_err());
    }

    #[test]
    fn if_else_and_unless_encode_exactly() {
        let c = clauses(&parse("(a if b else c)").unwrap(), false).unwrap();
        assert_eq!(
            c,
            vec![
                Clause {
                    pos: vec![atom("a")],
                    neg: vec![atom("b")]
                },
                Clause {
                    pos: vec![atom("c"), atom("b")],
                    neg: vec![]
                },
            ]
        );
        // Conflicts: (a unless b) = ¬(a ∧ ¬b): `a` only together with `b`.
        let c = clauses(&parse("(a unless b)").unwrap(), true).unwrap();
        assert_eq!(
            c,
            vec![Clause {
                pos: vec![atom("b")],
                neg: vec![atom("a")]
            }]
        );
        // (a ∧ ¬b) ∨ (c ∧ b): (a ∨ c), (a ∨ b), (¬b ∨ c) and a tautology.
        let c = clauses(&parse("(a unless b else c)").unwrap(), false).unwrap();
        for want in [
            Clause {
                pos: vec![atom("a"), atom("c")],
                neg: vec![],
            },
            Clause {
                pos: vec![atom("a"), atom("b")],
                neg: vec![],
            },
            Clause {
                pos: vec![atom("c")],
                neg: vec![atom("b")],
            },
        ] {
            assert!(c.contains(&want), "{want:?} not in {c:?}");
        }
        // Conflicts: (a and b) may not both be installed.
        let c = clauses(&parse("(a and b)").unwrap(), true).unwrap();
        assert_eq!(
            c,
            vec![Clause {
                pos: vec![],
                neg: vec![atom("a"), atom("b")]
            }]
        );
        // Distribution: (a and b) or c.
        let c = clauses(&parse("((a and b) or c)").unwrap(), false).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.pos.contains(&atom("c"))));
    }

    #[test]
    fn eval_follows_rpm_semantics() {
        let r = parse("(a if b else c)").unwrap();
        let with = |set: &'static [&'static str]| move |a: &Atom| matches!(a, Atom::Dep(d) if set.contains(&&*d.name));
        assert!(eval(&r, &mut with(&["a", "b"])));
        assert!(!eval(&r, &mut with(&["b"])));
        assert!(eval(&r, &mut with(&["c"])));
        assert!(!eval(&r, &mut with(&[])));
        let r = parse("(a unless b)").unwrap();
        assert!(eval(&r, &mut with(&["a"])));
        assert!(!eval(&r, &mut with(&["a", "b"])));
        assert!(!eval(&r, &mut with(&["b"])));
        assert!(!eval(&r, &mut with(&[])));
        let r = parse("(a unless b else c)").unwrap();
        assert!(eval(&r, &mut with(&["b", "c"])));
        assert!(!eval(&r, &mut with(&["a", "b"])));
    }
}
