//! Symlinks and directories scriptlets make: `ln -s` (with `-f`, `-n`,
//! `-T`), `mkdir` (`-p`, `-m`), and lua's `posix.symlink` / `posix.mkdir`,
//! with the guards real specs put around them (`[ -e X ] ||`,
//! `if [ ! -L X ]`, `[ $1 = 1 ] || exit 0`; lua's `if not posix.stat(X)`).
//! Shapes found in real base images: SUSE filesystem's `/var/run` and
//! `/var/lock`, cracklib's `/usr/share/cracklib/pw_dict.*`, Azure Linux
//! filesystem's links under `/usr/lib/debug/`.
//!
//! Paths are image paths, placed with [`Tree::resolve`], so a link in the
//! tree never leads a write out of it. A command whose words or guard
//! cannot be decided is reported as not done, naming the line.

use super::place::{file_test, put_dir, put_symlink, tree_msg, Placed};
use super::shell::{self, Command, Host, Status};
use super::{Done, EffectError, Input, NotDone, Report};
use crate::rootfs::generated::newest_mtime;
use crate::rootfs::staging::Staging;
use crate::rootfs::unpack::{ScriptletKind, SkippedScriptlet};
use crate::rootfs::{Kind, Tree};

pub const NAME: &str = "links";

/// One effect to apply, in scriptlet order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ln -s TARGET LINK` (LINK absolute); `into_dir`: without `-n`/`-T`,
    /// an existing directory at LINK receives the link inside it.
    Symlink {
        target: String,
        link: String,
        force: bool,
        into_dir: bool,
    },
    Mkdir {
        path: String,
        parents: bool,
        mode: u32,
    },
}

/// `ln` arguments (after the command name): the symlinks asked for, or why not.
pub fn parse_ln(args: &[&str]) -> Result<Vec<Op>, String> {
    let (mut symbolic, mut force, mut no_deref, mut target_dir) = (false, false, false, None);
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--symbolic" => symbolic = true,
            "--force" => force = true,
            "--no-dereference" | "--no-target-directory" => no_deref = true,
            "--verbose" => {}
            "-t" => target_dir = Some(it.next().ok_or("ln -t needs a directory")?.to_string()),
            "--" => rest.extend(it.by_ref().copied()),
            a if a.starts_with("--") => return Err(format!("ln option {a} not understood")),
            a if a.starts_with('-') && a.len() > 1 => {
                for c in a[1..].chars() {
                    match c {
                        's' => symbolic = true,
                        'f' => force = true,
                        'n' | 'T' => no_deref = true,
                        'v' => {}
                        c => return Err(format!("ln option -{c} not understood")),
                    }
                }
            }
            a => rest.push(a),
        }
    }
    if !symbolic {
        return Err("ln without -s (a hard link) is not emulated".into());
    }
    let (targets, dir): (Vec<&str>, Option<String>) = match (target_dir, rest.as_slice()) {
        (Some(d), r) if !r.is_empty() => (r.to_vec(), Some(d)),
        (None, [t, l]) => {
            let l = l.to_string();
            return Ok(vec![Op::Symlink {
                target: t.to_string(),
                link: l,
                force,
                into_dir: !no_deref,
            }]);
        }
        (None, [_]) => {
            return Err("ln with one operand links into the working directory; not emulated".into())
        }
        (None, r) if r.len() > 2 => {
            let (d, t) = r.split_last().expect("len > 2");
            (t.to_vec(), Some(d.to_string()))
        }
        _ => return Err("ln needs a target and a link name".into()),
    };
    let dir = dir.unwrap_or_default();
    Ok(targets
        .iter()
        .map(|t| Op::Symlink {
            target: t.to_string(),
            link: format!(
                "{}/{}",
                dir.trim_end_matches('/'),
                t.rsplit('/').next().unwrap_or(t)
            ),
            force,
            into_dir: false,
        })
        .collect())
}

/// `mkdir` arguments: the directories asked for, or why not.
pub fn parse_mkdir(args: &[&str]) -> Result<Vec<Op>, String> {
    let (mut parents, mut mode) = (false, 0o755);
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "-p" | "--parents" => parents = true,
            "-v" | "--verbose" => {}
            "-m" | "--mode" => {
                let m = it.next().ok_or("mkdir -m needs a mode")?;
                mode = u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("mkdir mode {m} is not an octal mode"))?;
            }
            a if a.starts_with("-m") && a.len() > 2 => {
                mode = u32::from_str_radix(&a[2..], 8)
                    .map_err(|_| format!("mkdir mode {} is not an octal mode", &a[2..]))?;
            }
            "-pv" | "-vp" => parents = true,
            a if a.starts_with('-') => return Err(format!("mkdir option {a} not understood")),
            a => paths.push(Op::Mkdir {
                path: a.to_string(),
                parents,
                mode,
            }),
        }
    }
    // Options apply to every operand, wherever they were written.
    for p in &mut paths {
        if let Op::Mkdir {
            parents: pp,
            mode: m,
            ..
        } = p
        {
            *pp = parents;
            *m = mode;
        }
    }
    Ok(paths)
}

/// Apply `op` to the tree; what was done, for the report.
pub fn apply_op(tree: &mut Tree, op: &Op, mtime: u64) -> Result<Option<String>, String> {
    match op {
        Op::Symlink {
            target,
            link,
            force,
            into_dir,
        } => {
            if !link.starts_with('/') {
                return Err(format!(
                    "link name {link} is relative to the working directory"
                ));
            }
            let mut link = link.clone();
            if *into_dir && matches!(tree.follow(&link), Some((_, e)) if e.kind == Kind::Dir) {
                let base = target
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(target);
                link = format!("{}/{base}", link.trim_end_matches('/'));
            }
            let at = tree.resolve(&link).map_err(|e| tree_msg(&link, e))?;
            if !force && tree.entries.contains_key(&at) {
                // `ln -s` without -f fails on an existing name.
                return Ok(None);
            }
            if !parent_is_dir(tree, &at) {
                // symlink(2) does not create parents.
                return Ok(None);
            }
            let (at, placed) = put_symlink(tree, &link, target, mtime)?;
            Ok((placed == Placed::Created).then(|| format!("/{at} → {target}")))
        }
        Op::Mkdir {
            path,
            parents,
            mode,
        } => {
            if !path.starts_with('/') {
                return Err(format!(
                    "directory {path} is relative to the working directory"
                ));
            }
            if !parents {
                let at = tree.resolve(path).map_err(|e| tree_msg(path, e))?;
                if !parent_is_dir(tree, &at) {
                    return Ok(None);
                }
                if tree.entries.contains_key(&at) {
                    return Ok(None);
                }
            }
            let (at, placed) = put_dir(tree, path, *mode, mtime)?;
            Ok((placed == Placed::Created).then(|| format!("/{at}/ (mode {mode:o})")))
        }
    }
}

/// Whether the parent of the resolved image path `at` is a directory (the
/// root always is).
fn parent_is_dir(tree: &Tree, at: &str) -> bool {
    match at.rsplit_once('/') {
        None => true,
        Some((p, _)) => matches!(tree.follow(p), Some((_, e)) if e.kind == Kind::Dir),
    }
}

/// What one scriptlet asks for: ops to apply, and what could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub ops: Vec<Op>,
    pub not_done: Vec<String>,
}

/// `parse_ln` or `parse_mkdir`.
type Parser = fn(&[&str]) -> Result<Vec<Op>, String>;

struct ShHost<'t> {
    tree: &'t mut Tree,
    mtime: u64,
    kind: String,
    found: Found,
    done: Vec<String>,
}

impl Host for ShHost<'_> {
    fn file_test(&self, op: &str, path: &str) -> Option<bool> {
        file_test(self.tree, op, path)
    }

    fn run(&mut self, cmd: &Command, certain: bool) -> Status {
        let parse: Parser = match cmd.name() {
            Some("ln") => parse_ln,
            Some("mkdir") => parse_mkdir,
            _ => return Status::Unknown,
        };
        let at = format!("{} line {}: `{}`", self.kind, cmd.line, cmd.text);
        if !certain {
            self.found.not_done.push(format!(
                "{at}: runs under a condition minibuild cannot decide"
            ));
            return Status::Unknown;
        }
        let Some(words) = cmd.literal() else {
            self.found.not_done.push(format!(
                "{at}: a word depends on a variable minibuild cannot resolve"
            ));
            return Status::Unknown;
        };
        let ops = match parse(&words[1..]) {
            Ok(ops) => ops,
            Err(why) => {
                self.found.not_done.push(format!("{at}: {why}"));
                return Status::Unknown;
            }
        };
        let mut ok = true;
        for op in ops {
            // Applied at once: later guards in the same body see it.
            match apply_op(self.tree, &op, self.mtime) {
                Ok(Some(what)) => self.done.push(what),
                Ok(None) => ok = false,
                Err(why) => {
                    self.found.not_done.push(format!("{at}: {why}"));
                    ok = false;
                }
            }
            self.found.ops.push(op);
        }
        if ok {
            Status::Success
        } else {
            Status::Failure
        }
    }
}

/// A lua string literal `"…"` or `'…'` (simple escapes), and the rest.
fn lua_string(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                e => out.push(e),
            },
            c if c == q => return Some((out, &s[1 + i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// `f("a", "b")` → the literal arguments, if all are string literals.
fn lua_call(line: &str, func: &str) -> Option<Option<Vec<String>>> {
    let rest = line.strip_prefix(func)?.trim_start().strip_prefix('(')?;
    let mut args = Vec::new();
    let mut rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix(')') {
        return Some(r.trim().is_empty().then_some(args));
    }
    loop {
        let Some((s, r)) = lua_string(rest) else {
            return Some(None);
        };
        args.push(s);
        let r = r.trim_start();
        if let Some(r) = r.strip_prefix(',') {
            rest = r;
        } else if let Some(r) = r.strip_prefix(')') {
            return Some(r.trim().is_empty().then_some(args));
        } else {
            return Some(None);
        }
    }
}

/// A lua guard `if [not] posix.stat|access|readlink("P") then`: whether P
/// must be absent (`not`) and P.
fn lua_guard(line: &str) -> Option<(bool, String, &'static str)> {
    let cond = line.strip_prefix("if ")?.strip_suffix("then")?.trim();
    let (negated, call) = match cond.strip_prefix("not ") {
        Some(c) => (true, c.trim()),
        None => (false, cond),
    };
    for (f, kind) in [
        // rpm's posix.stat is lstat: a dangling symlink exists.
        ("posix.stat", "lstat"),
        ("posix.access", "-e"),
        ("posix.readlink", "-L"),
    ] {
        if let Some(Some(args)) = lua_call(call, f) {
            if let [p] = args.as_slice() {
                return Some((negated, p.clone(), kind));
            }
        }
    }
    None
}

/// `line` without a `--` comment outside string literals.
fn strip_lua_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = '\0';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q && prev != '\\' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '-' && prev == '-' => return &line[..i - 1],
            None => {}
        }
        prev = c;
    }
    line
}

/// Read a lua body line by line: top-level `posix.symlink`/`posix.mkdir`
/// calls with literal arguments, inside `if [not] posix.stat(…) then … end`
/// guards; anything else that could change control flow makes the rest
/// uncertain.
fn lua(body: &str, kind: &str, tree: &mut Tree, mtime: u64, done: &mut Vec<String>) -> Found {
    let mut found = Found::default();
    // Guard stack: Some(run?) per open `if`, None for an undecided block.
    let mut guards: Vec<Option<bool>> = Vec::new();
    let mut lost = false;
    // `st = posix.stat("P")`: the variable and its path, for `st.type` guards.
    let mut stat_var: Option<(String, String)> = None;
    for (n, raw) in body.lines().enumerate() {
        let line = strip_lua_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{kind} line {}: `{}`", n + 1, raw.trim());
        let live = !lost && guards.iter().all(|g| *g == Some(true));
        let dead = guards.contains(&Some(false));
        if let Some((negated, path, op)) = lua_guard(line) {
            let exists = file_test(tree, op, &path);
            guards.push(exists.map(|e| e != negated));
            continue;
        }
        if let Some((var, call)) = line.trim_start_matches("local ").split_once(" = ") {
            if let Some(Some(args)) = lua_call(call, "posix.stat") {
                if let [p] = args.as_slice() {
                    stat_var = Some((var.to_string(), p.clone()));
                    continue;
                }
            }
        }
        if let Some(cond) = line
            .strip_prefix("if ")
            .and_then(|l| l.strip_suffix(" then"))
        {
            // `if st and st.type == "link" then` after `st = posix.stat("P")`.
            if let Some((var, path)) = &stat_var {
                if cond == format!("{var} and {var}.type == \"link\"") {
                    guards.push(file_test(tree, "-L", path));
                    continue;
                }
            }
            // `if arg[2] == 2 then`: rpm's lua scriptlets get `$1` as arg[2],
            // which is 1 on a first install.
            if let Some(n) = cond.strip_prefix("arg[2] == ") {
                if let Ok(n) = n.trim().parse::<i64>() {
                    guards.push(Some(n == 1));
                    continue;
                }
            }
            // `if "x86_64" == "riscv64" then`: a macro already expanded.
            if let Some((a, b)) = cond.split_once(" == ") {
                if let (Some((a, ra)), Some((b, rb))) = (lua_string(a), lua_string(b)) {
                    if ra.trim().is_empty() && rb.trim().is_empty() {
                        guards.push(Some(a == b));
                        continue;
                    }
                }
            }
        }
        if line.starts_with("posix.chmod") {
            // %pretrans: the package's payload sets the modes of its own
            // paths right after; elsewhere a mode change is not emulated.
            if !dead && kind != "%pretrans" {
                found
                    .not_done
                    .push(format!("{at}: posix.chmod is not emulated"));
            }
            continue;
        }
        if line == "end" {
            guards.pop();
            continue;
        }
        if line == "else" {
            if let Some(g) = guards.last_mut() {
                *g = g.map(|b| !b);
            }
            continue;
        }
        let symlink = lua_call(line, "posix.symlink");
        let mkdir = lua_call(line, "posix.mkdir");
        let op = match (symlink, mkdir) {
            (Some(Some(a)), _) if a.len() == 2 => Some(Op::Symlink {
                target: a[0].clone(),
                link: a[1].clone(),
                force: false,
                into_dir: false,
            }),
            (_, Some(Some(a))) if a.len() == 1 => Some(Op::Mkdir {
                path: a[0].clone(),
                parents: false,
                mode: 0o777 & !0o022,
            }),
            (Some(_), _) | (_, Some(_)) => {
                if !dead {
                    found
                        .not_done
                        .push(format!("{at}: arguments minibuild cannot resolve"));
                }
                continue;
            }
            _ => None,
        };
        match op {
            Some(op) if live => {
                match apply_op(tree, &op, mtime) {
                    Ok(Some(what)) => done.push(what),
                    Ok(None) => {}
                    Err(why) => found.not_done.push(format!("{at}: {why}")),
                }
                found.ops.push(op);
            }
            Some(_) if dead => {}
            Some(_) => found.not_done.push(format!(
                "{at}: runs under a condition minibuild cannot decide"
            )),
            None => {
                let harmless = line == "return 0"
                    || line.starts_with("print(")
                    || line.starts_with("local ")
                        && !line.contains('{')
                        && !line.contains("function");
                let opens = ["if ", "for ", "while ", "function ", "repeat", "do"]
                    .iter()
                    .any(|k| line.starts_with(k))
                    || line.contains(" function")
                    || line.ends_with(" do")
                    || line.ends_with(" then");
                if line.starts_with("return") && live && guards.is_empty() {
                    break;
                }
                if opens {
                    guards.push(None);
                } else if !harmless && !dead && line.starts_with("os.") {
                    // os.remove/os.rename/os.execute on the live tree: not emulated.
                    if line.starts_with("os.remove") || line.starts_with("os.rename") {
                        if let Some(Some(args)) =
                            lua_call(line, "os.remove").or(lua_call(line, "os.rename"))
                        {
                            if args.first().is_some_and(|p| {
                                file_test(tree, "-e", p) == Some(false)
                                    && file_test(tree, "-L", p) == Some(false)
                            }) {
                                // Removing or renaming what is not there: nothing happens.
                                continue;
                            }
                        }
                    }
                    lost = true;
                } else if !harmless && !dead && (line.contains('=') || line.contains('(')) {
                    lost = true;
                }
            }
        }
    }
    found
}

/// Whether the interpreter is lua (`<lua>`).
pub fn is_lua(s: &SkippedScriptlet) -> bool {
    s.interpreter.first().is_some_and(|i| i == "<lua>")
}

/// Whether the interpreter is a POSIX shell (none recorded means /bin/sh).
pub fn is_shell(s: &SkippedScriptlet) -> bool {
    match s.interpreter.first().map(String::as_str) {
        None => true,
        Some(i) => matches!(i.rsplit('/').next(), Some("sh" | "bash" | "dash")),
    }
}

/// Read one scriptlet for links, applying what it does to `tree`.
pub fn scriptlet(
    tree: &mut Tree,
    s: &SkippedScriptlet,
    mtime: u64,
    done: &mut Vec<String>,
) -> Found {
    let kind = s.kind.to_string();
    let Some(args) = shell::install_args(s.kind) else {
        let triggered = matches!(
            s.kind,
            ScriptletKind::Trigger | ScriptletKind::FileTrigger | ScriptletKind::TransFileTrigger
        );
        let mentions = s.body.contains("ln ")
            || s.body.contains("mkdir")
            || s.body.contains("posix.symlink")
            || s.body.contains("posix.mkdir");
        return Found {
            ops: vec![],
            not_done: if triggered && mentions {
                vec![format!(
                    "{kind} on {}: triggers are not emulated",
                    s.triggered_by.join(", ")
                )]
            } else {
                vec![]
            },
        };
    };
    if s.kind == ScriptletKind::PreTrans {
        // %pretrans runs before anything is unpacked: on a first install
        // it sees an empty root, where only top-level names can be made.
        let mut empty = Tree::default();
        let mut made = Vec::new();
        let found = read(&mut empty, s, &kind, args, mtime, &mut made);
        for (path, entry) in empty.entries {
            if let std::collections::btree_map::Entry::Vacant(v) = tree.entries.entry(path) {
                v.insert(entry);
            }
        }
        done.extend(made);
        return found;
    }
    read(tree, s, &kind, args, mtime, done)
}

/// Read `s` against `tree`.
fn read(
    tree: &mut Tree,
    s: &SkippedScriptlet,
    kind: &str,
    args: &[&str],
    mtime: u64,
    done: &mut Vec<String>,
) -> Found {
    let kind = kind.to_string();
    if is_lua(s) {
        return lua(&s.body, &kind, tree, mtime, done);
    }
    if !is_shell(s) {
        return Found::default();
    }
    let mut host = ShHost {
        tree,
        mtime,
        kind,
        found: Found::default(),
        done: Vec::new(),
    };
    shell::run(&s.body, args, &mut host);
    done.extend(host.done);
    host.found
}

/// The pass: every package's install scriptlets, in install order.
pub fn pass(
    tree: &mut Tree,
    _stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let mtime = newest_mtime(tree);
    for p in input.scripts {
        for s in &p.scriptlets {
            if super::crypto_policy::recognise(&p.package, s).is_some() {
                // Its own pass reads it.
                continue;
            }
            let mut done = Vec::new();
            let found = scriptlet(tree, s, mtime, &mut done);
            report.done.extend(done.into_iter().map(|what| Done {
                pass: NAME,
                package: Some(p.package.clone()),
                what,
            }));
            report
                .not_done
                .extend(found.not_done.into_iter().map(|why| NotDone {
                    pass: NAME,
                    package: p.package.clone(),
                    why,
                }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::tree::implied_dir;
    use crate::rootfs::Entry;

    fn dir(tree: &mut Tree, p: &str) {
        tree.entries.insert(p.into(), implied_dir());
    }

    fn link(tree: &Tree, p: &str) -> Option<String> {
        match &tree.entries.get(p)?.kind {
            Kind::Symlink { target } => Some(target.clone()),
            _ => None,
        }
    }

    fn sh(kind: ScriptletKind, body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            kind,
            interpreter: vec!["/bin/sh".into()],
            body: body.into(),
            triggered_by: vec![],
        }
    }

    fn lua_s(kind: ScriptletKind, body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            interpreter: vec!["<lua>".into()],
            ..sh(kind, body)
        }
    }

    /// cracklib.spec (microsoft/azurelinux SPECS/cracklib/cracklib.spec),
    /// %post with %{_datadir} expanded, and its %triggerin.
    const CRACKLIB_POST: &str = "/sbin/ldconfig\n[ $1 = 1 ] || exit 0\necho \"using empty dict to provide pw_dict\" >&2\nln -sf empty.hwm /usr/share/cracklib/pw_dict.hwm\nln -sf empty.pwd /usr/share/cracklib/pw_dict.pwd\nln -sf empty.pwi /usr/share/cracklib/pw_dict.pwi\n";
    const CRACKLIB_TRIGGERIN: &str = "[ $2 = 1 ] || exit 0\necho \"switching pw_dict to cracklib-dicts\" >&2\nln -sf words.hwm /usr/share/cracklib/pw_dict.hwm\nln -sf words.pwd /usr/share/cracklib/pw_dict.pwd\nln -sf words.pwi /usr/share/cracklib/pw_dict.pwi\n";

    /// filesystem.spec %post (microsoft/azurelinux SPECS/filesystem/filesystem.spec).
    pub const MARINER_FILESYSTEM_POST: &str = "posix.symlink(\"lib\", \"/usr/lib/debug/lib64\")\nposix.symlink(\"../bin\", \"/usr/lib/debug/usr/bin\")\nposix.symlink(\"../sbin\", \"/usr/lib/debug/usr/sbin\")\nposix.symlink(\"../lib\", \"/usr/lib/debug/usr/lib\")\nposix.symlink(\"../lib\", \"/usr/lib/debug/usr/lib64\")\nposix.symlink(\"../.dwz\", \"/usr/lib/debug/usr/.dwz\")\nreturn 0\n";

    /// The /var/run and /var/lock part of openSUSE filesystem.spec's
    /// pretrans.lua (bmwiedemann/openSUSE packages/f/filesystem/filesystem.spec).
    const SUSE_FILESYSTEM_PRETRANS: &str = "os.remove (\"/usr/include/X11\")\nos.remove (\"/usr/lib/X11\")\nif not posix.readlink(\"/var/run\") then\n   os.rename(\"/var/run\",\"/var/run.rpmsave.tmpx\")\nend\nif not posix.readlink(\"/var/lock\") then\n   os.rename(\"/var/lock\",\"/var/lock.rpmsave.tmpx\")\nend\nif not posix.stat(\"/var/run\") then\n  posix.symlink(\"/run\",\"/var/run\")\nend\nif not posix.stat(\"/var/lock\") then\n  posix.symlink(\"/run/lock\",\"/var/lock\")\nend\nif posix.stat(\"/var/run.rpmsave.tmpx\") then\n  os.execute(\"mv /var/run.rpmsave.tmpx/* /var/run\")\n  os.remove(\"/var/run.rpmsave.tmpx\")\nend\n";

    /// filesystem.spec %pretrans (Fedora rpms/filesystem, as mirrored in
    /// major/fedora-rpm-specs), on x86_64 with merged sbin: %{_lib} expanded.
    const FEDORA_FILESYSTEM_PRETRANS: &str = "--# If we are running in pretrans in a fresh root, there is no /usr and\n--# symlinks.\nposix.mkdir(\"/usr\")\nposix.mkdir(\"/usr/bin\")\nposix.mkdir(\"/usr/lib\")\nposix.mkdir(\"/usr/lib/debug\")\nposix.mkdir(\"/usr/lib/debug/usr/\")\nposix.mkdir(\"/usr/lib/debug/usr/bin\")\nposix.mkdir(\"/usr/lib/debug/usr/lib\")\nposix.mkdir(\"/usr/lib/debug/usr/lib64\")\nposix.mkdir(\"/usr/lib64\")\nposix.mkdir(\"/usr/local\")\nposix.mkdir(\"/usr/local/bin\")\nposix.symlink(\"usr/bin\", \"/bin\")\nposix.symlink(\"usr/sbin\", \"/sbin\")\nposix.symlink(\"usr/lib\", \"/lib\")\nposix.symlink(\"usr/bin\", \"/usr/lib/debug/bin\")\nposix.symlink(\"usr/lib\", \"/usr/lib/debug/lib\")\nposix.symlink(\"usr/lib64\", \"/usr/lib/debug/lib64\")\nposix.symlink(\"../.dwz\", \"/usr/lib/debug/usr/.dwz\")\nposix.symlink(\"usr/sbin\", \"/usr/lib/debug/sbin\")\nposix.symlink(\"usr/lib64\", \"/lib64\")\nif \"x86_64\" == \"riscv64\" then\n  posix.symlink(\".\", \"/usr/lib64/lp64d\")\nend\nposix.mkdir(\"/run\")\nposix.mkdir(\"/proc\")\nposix.mkdir(\"/sys\")\nposix.chmod(\"/proc\", 0555)\nposix.chmod(\"/sys\", 0555)\nst = posix.stat(\"/media\")\nif st and st.type == \"link\" then\n  os.remove(\"/media\")\nend\nposix.mkdir(\"/var\")\nposix.symlink(\"../run\", \"/var/run\")\nposix.symlink(\"../run/lock\", \"/var/lock\")\n\nposix.symlink(\"bin\", \"/usr/sbin\")\nposix.symlink(\"bin\", \"/usr/lib/debug/usr/sbin\")\nposix.symlink(\"bin\", \"/usr/local/sbin\")\n";

    #[test]
    fn fedora_filesystem_pretrans_on_an_empty_root() {
        let mut tree = Tree::default();
        // The payload already placed /bin as a symlink: the pretrans does not win.
        tree.entries.insert(
            "bin".into(),
            Entry {
                kind: Kind::Symlink {
                    target: "usr/bin".into(),
                },
                ..implied_dir()
            },
        );
        let mut done = vec![];
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PreTrans, FEDORA_FILESYSTEM_PRETRANS),
            0,
            &mut done,
        );
        assert!(f.not_done.is_empty(), "{:?}", f.not_done);
        assert_eq!(link(&tree, "var/run").as_deref(), Some("../run"));
        assert_eq!(link(&tree, "usr/sbin").as_deref(), Some("bin"));
        assert_eq!(
            link(&tree, "usr/lib/debug/usr/.dwz").as_deref(),
            Some("../.dwz")
        );
        assert!(!tree.entries.contains_key("usr/lib64/lp64d"));
        // Fedora crypto-policies.spec %pretrans: its upgrade-only block is skipped.
        let upgrade = "if arg[2] == 2 then\n    posix.unlink(\"/var/lib/rpm-state/x\")\n    posix.mkdir(\"/var/lib/x\")\nend\n";
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PreTrans, upgrade),
            0,
            &mut vec![],
        );
        assert!(f.not_done.is_empty() && f.ops.is_empty(), "{f:?}");
        assert_eq!(tree.entries["proc"].kind, Kind::Dir);
        // /run/lock is not there: the link dangles, as under rpm.
        assert_eq!(link(&tree, "var/lock").as_deref(), Some("../run/lock"));
    }

    #[test]
    fn cracklib_post_links_the_empty_dict() {
        let mut tree = Tree::default();
        for d in ["usr", "usr/share", "usr/share/cracklib"] {
            dir(&mut tree, d);
        }
        let mut done = vec![];
        let f = scriptlet(
            &mut tree,
            &sh(ScriptletKind::PostIn, CRACKLIB_POST),
            0,
            &mut done,
        );
        assert_eq!(f.not_done, Vec::<String>::new());
        for ext in ["hwm", "pwd", "pwi"] {
            assert_eq!(
                link(&tree, &format!("usr/share/cracklib/pw_dict.{ext}")),
                Some(format!("empty.{ext}"))
            );
        }
        assert_eq!(done.len(), 3);
        // The trigger is reported, not guessed.
        let t = SkippedScriptlet {
            triggered_by: vec!["cracklib-dicts".into()],
            ..sh(ScriptletKind::Trigger, CRACKLIB_TRIGGERIN)
        };
        let f = scriptlet(&mut tree, &t, 0, &mut done);
        assert_eq!(
            f.not_done,
            ["%trigger on cracklib-dicts: triggers are not emulated"]
        );
        assert_eq!(
            link(&tree, "usr/share/cracklib/pw_dict.pwd").as_deref(),
            Some("empty.pwd")
        );
    }

    #[test]
    fn mariner_filesystem_debug_links() {
        let mut tree = Tree::default();
        for d in ["usr", "usr/lib", "usr/lib/debug", "usr/lib/debug/usr"] {
            dir(&mut tree, d);
        }
        let mut done = vec![];
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PostIn, MARINER_FILESYSTEM_POST),
            0,
            &mut done,
        );
        assert!(f.not_done.is_empty(), "{:?}", f.not_done);
        assert_eq!(done.len(), 6);
        assert_eq!(link(&tree, "usr/lib/debug/lib64").as_deref(), Some("lib"));
        assert_eq!(
            link(&tree, "usr/lib/debug/usr/.dwz").as_deref(),
            Some("../.dwz")
        );
        // posix.symlink does not replace: a second run changes nothing.
        let mut again = vec![];
        scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PostIn, MARINER_FILESYSTEM_POST),
            0,
            &mut again,
        );
        assert!(again.is_empty());
    }

    #[test]
    fn suse_var_run_guards() {
        let mut tree = Tree::default();
        for d in ["var", "run", "run/lock"] {
            dir(&mut tree, d);
        }
        // As %pretrans on a first install it sees an empty root: symlink(2)
        // fails without /var, as it does under rpm.
        let mut done = vec![];
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PreTrans, SUSE_FILESYSTEM_PRETRANS),
            0,
            &mut done,
        );
        assert!(f.not_done.is_empty(), "{:?}", f.not_done);
        assert!(done.is_empty() && !tree.entries.contains_key("var/run"));
        // The same body where /var exists: the guards pass and the links are made.
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PostIn, SUSE_FILESYSTEM_PRETRANS),
            0,
            &mut done,
        );
        assert!(f.not_done.is_empty(), "{:?}", f.not_done);
        assert_eq!(link(&tree, "var/run").as_deref(), Some("/run"));
        assert_eq!(link(&tree, "var/lock").as_deref(), Some("/run/lock"));
        // When /var/run is a directory, the guard keeps it, and renaming it
        // away is not emulated.
        let mut tree = Tree::default();
        for d in ["var", "var/run", "run"] {
            dir(&mut tree, d);
        }
        let f = scriptlet(
            &mut tree,
            &lua_s(ScriptletKind::PostIn, SUSE_FILESYSTEM_PRETRANS),
            0,
            &mut vec![],
        );
        assert!(tree.entries["var/run"].kind == Kind::Dir);
        assert!(!f.not_done.is_empty());
    }

    #[test]
    fn ln_forms() {
        assert_eq!(
            parse_ln(&["-snf", "../run", "/var/run"]).unwrap(),
            [Op::Symlink {
                target: "../run".into(),
                link: "/var/run".into(),
                force: true,
                into_dir: false
            }]
        );
        assert!(parse_ln(&["a", "b"]).unwrap_err().contains("hard link"));
        assert!(parse_ln(&["-s", "a"]).is_err());
        assert_eq!(parse_ln(&["-s", "/a/x", "/a/y", "/d"]).unwrap().len(), 2);
        let mut tree = Tree::default();
        dir(&mut tree, "etc");
        // Without -n, a directory receives the link inside it.
        let op = &parse_ln(&["-sf", "/usr/share/zoneinfo/UTC", "/etc"]).unwrap()[0];
        apply_op(&mut tree, op, 0).unwrap();
        assert_eq!(
            link(&tree, "etc/UTC").as_deref(),
            Some("/usr/share/zoneinfo/UTC")
        );
        // -s without -f keeps what is there.
        let op = &parse_ln(&["-s", "x", "/etc/UTC"]).unwrap()[0];
        assert_eq!(apply_op(&mut tree, op, 0).unwrap(), None);
        // Never out of the tree: an absolute symlinked parent resolves inside it.
        tree.entries.insert(
            "var".into(),
            Entry {
                kind: Kind::Symlink {
                    target: "/../../host".into(),
                },
                ..implied_dir()
            },
        );
        dir(&mut tree, "host");
        let op = &parse_ln(&["-sf", "t", "/var/x"]).unwrap()[0];
        apply_op(&mut tree, op, 0).unwrap();
        assert!(tree.entries.contains_key("host/x"));
    }

    #[test]
    fn mkdir_forms_and_unresolved_words() {
        assert_eq!(
            parse_mkdir(&["-p", "-m", "0700", "/var/lib/x"]).unwrap(),
            [Op::Mkdir {
                path: "/var/lib/x".into(),
                parents: true,
                mode: 0o700
            }]
        );
        assert!(parse_mkdir(&["-m", "u+rwx", "/x"]).is_err());
        let mut tree = Tree::default();
        let mut done = vec![];
        let f = scriptlet(
            &mut tree,
            &sh(ScriptletKind::PostIn, "mkdir -p /var/lib/x\nln -s a $RPM_INSTALL_PREFIX/b\nif grep -q x /etc/f; then ln -s a /c; fi"),
            0,
            &mut done,
        );
        assert_eq!(tree.entries["var/lib/x"].mode, 0o755);
        assert_eq!(f.not_done.len(), 2, "{:?}", f.not_done);
        assert!(f.not_done[0].contains("%post line 2"), "{}", f.not_done[0]);
        assert!(f.not_done[1].contains("cannot decide"));
        // Removal scriptlets do nothing on install.
        let f = scriptlet(
            &mut tree,
            &sh(ScriptletKind::PostUn, "ln -sf a /d"),
            0,
            &mut done,
        );
        assert!(f.not_done.is_empty() && !tree.entries.contains_key("d"));
    }
}
