//! `alternatives --install` (Fedora/RHEL chkconfig) and SUSE's
//! `update-alternatives --install` (dpkg's tool), emulated: the links
//! LINK → /etc/alternatives/NAME → PATH of the best choice, its followers'
//! (slaves') links, and the state file, byte for byte as each tool writes it.
//!
//! - chkconfig (alternatives.c `writeState`): `/var/lib/alternatives/NAME`:
//!   `auto`, LINK, then per follower its name and link, an empty line, then
//!   per choice in install order PATH, `[@FAMILY@]PRIORITY[ INITSCRIPT]`
//!   and one line per follower (its path or empty). Ties: the first
//!   installed keeps the link (a new choice wins only with a strictly
//!   higher priority). The target need not exist.
//! - dpkg (update-alternatives.c `alternative_save`), SUSE's admindir
//!   `/var/lib/rpm/alternatives/NAME`: `auto`, LINK, slaves sorted by name
//!   (name, link), an empty line, choices sorted by path (path, priority,
//!   one line per slave), and a final empty line. The path must exist; a
//!   slave whose file is missing gets no link. Ties: the current choice
//!   stays, which on a fresh install is the first installed.
//!
//! Which tool runs is read from the tree (who ships `alternatives` or
//! `update-alternatives`), else from the command name.

use std::collections::BTreeMap;

use super::links::is_shell;
use super::place::{file_test, put_symlink};
use super::shell::{self, Command, Host, Status};
use super::{Done, EffectError, Input, NotDone, Report};
use crate::rootfs::generated::{newest_mtime, put_file};
use crate::rootfs::staging::Staging;
use crate::rootfs::unpack::{ScriptletKind, SkippedScriptlet};
use crate::rootfs::{Kind, Tree};

pub const NAME: &str = "alternatives";

/// Which implementation's rules and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Fedora/RHEL/Azure Linux chkconfig `alternatives`.
    Chkconfig,
    /// dpkg's `update-alternatives`, as SUSE ships it.
    Dpkg,
}

impl Tool {
    pub fn admin_dir(self) -> &'static str {
        match self {
            Tool::Chkconfig => "/var/lib/alternatives",
            Tool::Dpkg => "/var/lib/rpm/alternatives",
        }
    }
}

/// One `--install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i32,
    /// (link, name, path)
    pub followers: Vec<(String, String, String)>,
    pub family: Option<String>,
    pub initscript: Option<String>,
}

/// What an `alternatives` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Install(Install),
    /// `--display`, `--list`…: reads only.
    Nothing,
}

/// C's `strtol(s, &end, 0)` with `*end == 0` required, as chkconfig parses
/// priorities (`010` is octal); dpkg uses base 10.
fn priority(s: &str, tool: Tool) -> Option<i32> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match tool {
        Tool::Chkconfig if digits.starts_with("0x") || digits.starts_with("0X") => {
            i64::from_str_radix(&digits[2..], 16).ok()?
        }
        Tool::Chkconfig if digits.len() > 1 && digits.starts_with('0') => {
            i64::from_str_radix(&digits[1..], 8).ok()?
        }
        _ => digits.parse::<i64>().ok()?,
    };
    i32::try_from(if neg { -v } else { v }).ok()
}

/// Parse the arguments after the command name.
pub fn parse(args: &[&str], tool: Tool) -> Result<Request, String> {
    let mut install: Option<Install> = None;
    let mut followers = Vec::new();
    let (mut family, mut initscript) = (None, None);
    let mut it = args.iter().copied();
    let three = |it: &mut dyn Iterator<Item = &str>, what: &str| -> Result<[String; 3], String> {
        let mut v = [String::new(), String::new(), String::new()];
        for slot in &mut v {
            *slot = it
                .next()
                .ok_or(format!("{what} needs LINK NAME PATH"))?
                .to_string();
        }
        Ok(v)
    };
    while let Some(a) = it.next() {
        match a {
            "--install" => {
                let [link, name, path] = three(&mut it, "--install")?;
                let p = it.next().ok_or("--install needs a priority")?;
                let priority = priority(p, tool).ok_or(format!("priority {p} is not a number"))?;
                install = Some(Install {
                    link,
                    name,
                    path,
                    priority,
                    followers: vec![],
                    family: None,
                    initscript: None,
                });
            }
            "--slave" | "--follower" => {
                let [l, n, p] = three(&mut it, a)?;
                followers.push((l, n, p));
            }
            "--family" if tool == Tool::Chkconfig => {
                family = Some(it.next().ok_or("--family needs a name")?.to_string())
            }
            "--initscript" if tool == Tool::Chkconfig => {
                initscript = Some(it.next().ok_or("--initscript needs a service")?.to_string())
            }
            "--verbose" | "--quiet" => {}
            "--display" | "--list" | "--query" | "--get-selections" => return Ok(Request::Nothing),
            other => return Err(format!("`{other}` is not emulated")),
        }
    }
    let mut i = install.ok_or("only --install is emulated")?;
    i.followers = followers;
    i.family = family;
    i.initscript = initscript;
    Ok(Request::Install(i))
}

/// One choice in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    path: String,
    priority: i32,
    family: Option<String>,
    initscript: Option<String>,
    /// follower name → path
    followers: BTreeMap<String, String>,
}

/// One link group (NAME), as the state file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    tool: Tool,
    name: String,
    link: String,
    /// (name, link), chkconfig: first-seen order.
    followers: Vec<(String, String)>,
    /// Install order.
    choices: Vec<Choice>,
    best: usize,
}

impl Group {
    fn new(tool: Tool, i: &Install) -> Group {
        Group {
            tool,
            name: i.name.clone(),
            link: i.link.clone(),
            followers: vec![],
            choices: vec![],
            best: 0,
        }
    }

    /// Add (or replace) a choice, as each tool's `--install` does.
    pub fn install(&mut self, i: &Install) -> Result<(), String> {
        if i.link != self.link {
            return Err(format!(
                "the primary link for {} must be {} (asked for {})",
                self.name, self.link, i.link
            ));
        }
        for (l, n, _) in &i.followers {
            match self.followers.iter().find(|(fname, _)| fname == n) {
                Some((_, fl)) if fl != l => {
                    return Err(format!("follower {n} is {fl}, asked for {l}"));
                }
                Some(_) => {}
                None => self.followers.push((n.clone(), l.clone())),
            }
        }
        let choice = Choice {
            path: i.path.clone(),
            priority: i.priority,
            family: i.family.clone(),
            initscript: i.initscript.clone(),
            followers: i
                .followers
                .iter()
                .map(|(_, n, p)| (n.clone(), p.clone()))
                .collect(),
        };
        match self.choices.iter().position(|c| c.path == i.path) {
            Some(at) => self.choices[at] = choice,
            None => {
                self.choices.push(choice);
                let new = self.choices.len() - 1;
                if self.choices[self.best].priority < i.priority {
                    self.best = new;
                }
            }
        }
        // A replaced choice may have changed priority: recompute, first max wins.
        let mut best = 0;
        for (n, c) in self.choices.iter().enumerate() {
            if c.priority > self.choices[best].priority {
                best = n;
            }
        }
        if self.choices[self.best].priority < self.choices[best].priority {
            self.best = best;
        }
        if self.tool == Tool::Dpkg {
            // Slaves no choice provides are dropped when saving.
            let choices = &self.choices;
            self.followers
                .retain(|(n, _)| choices.iter().any(|c| c.followers.contains_key(n)));
        }
        Ok(())
    }

    /// The state file's bytes.
    pub fn state(&self) -> String {
        let mut out = format!("auto\n{}\n", self.link);
        let mut followers = self.followers.clone();
        let mut choices: Vec<&Choice> = self.choices.iter().collect();
        if self.tool == Tool::Dpkg {
            followers.sort();
            choices.sort_by(|a, b| a.path.cmp(&b.path));
        }
        for (n, l) in &followers {
            out.push_str(&format!("{n}\n{l}\n"));
        }
        out.push('\n');
        for c in choices {
            out.push_str(&c.path);
            out.push('\n');
            if let Some(f) = &c.family {
                out.push_str(&format!("@{f}@"));
            }
            out.push_str(&c.priority.to_string());
            if let Some(s) = &c.initscript {
                out.push_str(&format!(" {s}"));
            }
            out.push('\n');
            for (n, _) in &followers {
                out.push_str(c.followers.get(n).map_or("", String::as_str));
                out.push('\n');
            }
        }
        if self.tool == Tool::Dpkg {
            out.push('\n');
        }
        out
    }

    /// (link, target) pairs the best choice needs, and links to remove.
    pub fn links(&self, exists: &dyn Fn(&str) -> bool) -> (Vec<(String, String)>, Vec<String>) {
        let best = &self.choices[self.best];
        let alt = |n: &str| format!("/etc/alternatives/{n}");
        let mut make = vec![
            (self.link.clone(), alt(&self.name)),
            (alt(&self.name), best.path.clone()),
        ];
        let mut remove = vec![];
        for (n, l) in &self.followers {
            match best.followers.get(n) {
                Some(p) if self.tool == Tool::Chkconfig || exists(p) => {
                    make.push((l.clone(), alt(n)));
                    make.push((alt(n), p.clone()));
                }
                _ => {
                    remove.push(l.clone());
                    remove.push(alt(n));
                }
            }
        }
        (make, remove)
    }
}

/// The tool the image's packages ship, else the one the name suggests.
fn tool_for(tree: &Tree, command: &str) -> Tool {
    for dir in ["usr/sbin", "usr/bin", "sbin"] {
        if let Some(e) = tree.entries.get(&format!("{dir}/update-alternatives")) {
            if e.package.as_deref() == Some("update-alternatives") {
                return Tool::Dpkg;
            }
        }
        if tree.entries.contains_key(&format!("{dir}/alternatives")) {
            return Tool::Chkconfig;
        }
    }
    if command == "update-alternatives" && tree.entries.contains_key("var/lib/rpm/alternatives") {
        Tool::Dpkg
    } else {
        Tool::Chkconfig
    }
}

struct AltHost<'t> {
    tree: &'t Tree,
    kind: String,
    installs: Vec<(Tool, Install)>,
    not_done: Vec<String>,
}

impl Host for AltHost<'_> {
    fn file_test(&self, op: &str, path: &str) -> Option<bool> {
        file_test(self.tree, op, path)
    }

    fn run(&mut self, cmd: &Command, certain: bool) -> Status {
        let Some(name @ ("alternatives" | "update-alternatives")) = cmd.name() else {
            return Status::Unknown;
        };
        let at = format!("{} line {}: `{}`", self.kind, cmd.line, cmd.text);
        let tool = tool_for(self.tree, name);
        let Some(words) = cmd.literal() else {
            self.not_done.push(format!(
                "{at}: a word depends on a variable minibuild cannot resolve"
            ));
            return Status::Unknown;
        };
        match parse(&words[1..], tool) {
            Ok(Request::Nothing) => Status::Success,
            Ok(Request::Install(_)) if !certain => {
                self.not_done.push(format!(
                    "{at}: runs under a condition minibuild cannot decide"
                ));
                Status::Unknown
            }
            Ok(Request::Install(i)) => {
                if tool == Tool::Dpkg && file_test(self.tree, "-e", &i.path) != Some(true) {
                    // dpkg refuses: "alternative path … doesn't exist".
                    self.not_done.push(format!(
                        "{at}: {} is not in the image (update-alternatives refuses)",
                        i.path
                    ));
                    return Status::Failure;
                }
                self.installs.push((tool, i));
                Status::Success
            }
            Err(why) => {
                self.not_done.push(format!("{at}: {why}"));
                Status::Unknown
            }
        }
    }
}

/// For the classifier: `Some(true)` when a shell scriptlet's
/// `alternatives` commands are all emulated, `Some(false)` when one is not,
/// `None` when it has none (or is not a shell scriptlet).
pub fn classify(s: &SkippedScriptlet) -> Option<bool> {
    let args = shell::install_args(s.kind)?;
    if !is_shell(s) {
        return None;
    }
    let tree = Tree::default();
    let mut host = AltHost {
        tree: &tree,
        kind: s.kind.to_string(),
        installs: vec![],
        not_done: vec![],
    };
    shell::run(&s.body, args, &mut host);
    if !host.not_done.is_empty() {
        Some(false)
    } else {
        (!host.installs.is_empty()).then_some(true)
    }
}

/// The pass.
pub fn pass(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let mtime = newest_mtime(tree);
    let mut groups: BTreeMap<(&'static str, String), (Group, String)> = BTreeMap::new();
    for p in input.scripts {
        for s in &p.scriptlets {
            if !s.body.contains("alternatives") {
                continue;
            }
            let not_done = |why: String| NotDone {
                pass: NAME,
                package: p.package.clone(),
                why,
            };
            let Some(args) = shell::install_args(s.kind) else {
                if matches!(
                    s.kind,
                    ScriptletKind::Trigger
                        | ScriptletKind::FileTrigger
                        | ScriptletKind::TransFileTrigger
                ) && s.body.contains("--install")
                {
                    report.not_done.push(not_done(format!(
                        "{} on {}: triggers are not emulated",
                        s.kind,
                        s.triggered_by.join(", ")
                    )));
                }
                continue;
            };
            if !is_shell(s) {
                report.not_done.push(not_done(format!(
                    "{}: alternatives from a lua scriptlet are not emulated",
                    s.kind
                )));
                continue;
            }
            let mut host = AltHost {
                tree,
                kind: s.kind.to_string(),
                installs: vec![],
                not_done: vec![],
            };
            shell::run(&s.body, args, &mut host);
            report
                .not_done
                .extend(host.not_done.into_iter().map(not_done));
            for (tool, i) in host.installs {
                let key = (tool.admin_dir(), i.name.clone());
                let (group, _) = groups
                    .entry(key)
                    .or_insert_with(|| (Group::new(tool, &i), p.package.clone()));
                if let Err(why) = group.install(&i) {
                    report.not_done.push(not_done(why));
                }
            }
        }
    }
    for ((admin, name), (group, package)) in groups {
        if group.choices.is_empty() {
            continue;
        }
        let err = |message: String| EffectError {
            pass: NAME,
            message,
            source: None,
        };
        let state_path = format!("{admin}/{name}");
        put_file(
            tree,
            stage,
            &state_path,
            group.state().as_bytes(),
            0o644,
            mtime,
        )
        .map_err(|e| EffectError {
            pass: NAME,
            message: format!("cannot write {state_path}"),
            source: Some(Box::new(e)),
        })?;
        let (make, remove) = {
            let t: &Tree = tree;
            group.links(&|p| file_test(t, "-e", p) == Some(true))
        };
        for l in remove {
            if let Ok(at) = tree.resolve(&l) {
                if matches!(
                    tree.entries.get(&at).map(|e| &e.kind),
                    Some(Kind::Symlink { .. })
                ) {
                    tree.entries.remove(&at);
                }
            }
        }
        let mut made = Vec::new();
        for (link, target) in make {
            let at = tree
                .resolve(&link)
                .map_err(|e| err(format!("{link}: {e}")))?;
            if matches!(tree.entries.get(&at).map(|e| &e.kind), Some(k) if !matches!(k, Kind::Symlink { .. }))
            {
                // Both tools leave a real file where the link would go.
                report.not_done.push(NotDone {
                    pass: NAME,
                    package: package.clone(),
                    why: format!("{link} is not a symlink in the image; alternatives leaves it"),
                });
                continue;
            }
            put_symlink(tree, &link, &target, mtime).map_err(err)?;
            made.push(format!("{link} → {target}"));
        }
        report.done.push(Done {
            pass: NAME,
            package: Some(package),
            what: format!("{name}: {} (state {state_path})", made.join(", ")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(line: &str, tool: Tool) -> Install {
        let words: Vec<&str> = line.split_whitespace().collect();
        match parse(&words[1..], tool).unwrap() {
            Request::Install(i) => i,
            r => panic!("{r:?}"),
        }
    }

    /// p11-kit.spec %post trust (microsoft/azurelinux SPECS/p11-kit, from
    /// Fedora), on x86_64 with %{_sbindir}, %{_libdir} and %{alt_ckbi} expanded.
    pub const P11_KIT_TRUST_POST: &str = "/usr/sbin/update-alternatives --install /usr/lib64/libnssckbi.so \\\n        libnssckbi.so.x86_64 /usr/lib64/pkcs11/p11-kit-trust.so 30\n";

    /// The commands the shell reader hands over for `body`.
    fn installs(body: &str, tree: &Tree) -> (Vec<(Tool, Install)>, Vec<String>) {
        let mut host = AltHost {
            tree,
            kind: "%post".into(),
            installs: vec![],
            not_done: vec![],
        };
        shell::run(body, &["1"], &mut host);
        (host.installs, host.not_done)
    }

    #[test]
    fn chkconfig_state_matches_write_state() {
        let (found, not_done) = installs(P11_KIT_TRUST_POST, &Tree::default());
        assert!(not_done.is_empty(), "{not_done:?}");
        let [(Tool::Chkconfig, i)] = found.as_slice() else {
            panic!("{found:?}")
        };
        let mut g = Group::new(Tool::Chkconfig, i);
        g.install(i).unwrap();
        assert_eq!(
            g.state(),
            "auto\n/usr/lib64/libnssckbi.so\n\n/usr/lib64/pkcs11/p11-kit-trust.so\n30\n"
        );
        // Constructed (not from a spec): a follower-less choice, then one
        // with a follower and a family, to pin the follower and family lines.
        let bfd = install(
            "alternatives --install /usr/bin/ld ld /usr/bin/ld.bfd 50",
            Tool::Chkconfig,
        );
        let gold = install(
            "alternatives --install /usr/bin/ld ld /usr/bin/ld.gold 30 --follower /usr/share/man/man1/ld.1.gz ld.1.gz /usr/share/man/man1/ld.gold.1.gz --family gnu",
            Tool::Chkconfig,
        );
        let mut g = Group::new(Tool::Chkconfig, &bfd);
        g.install(&bfd).unwrap();
        g.install(&gold).unwrap();
        assert_eq!(
            g.state(),
            "auto\n/usr/bin/ld\nld.1.gz\n/usr/share/man/man1/ld.1.gz\n\n/usr/bin/ld.bfd\n50\n\n/usr/bin/ld.gold\n@gnu@30\n/usr/share/man/man1/ld.gold.1.gz\n"
        );
        let (make, remove) = g.links(&|_| true);
        assert_eq!(
            make[1],
            ("/etc/alternatives/ld".into(), "/usr/bin/ld.bfd".into())
        );
        assert_eq!(
            remove,
            ["/usr/share/man/man1/ld.1.gz", "/etc/alternatives/ld.1.gz"]
        );
        // A tie keeps the first; a strictly higher priority wins.
        let tie = install(
            "alternatives --install /usr/bin/ld ld /usr/bin/ld.lld 50",
            Tool::Chkconfig,
        );
        g.install(&tie).unwrap();
        assert_eq!(g.links(&|_| true).0[1].1, "/usr/bin/ld.bfd");
        let hi = install(
            "alternatives --install /usr/bin/ld ld /usr/bin/ld.mold 010",
            Tool::Chkconfig,
        );
        assert_eq!(
            hi.priority, 8,
            "chkconfig reads priorities with strtol base 0"
        );
        let wrong = install(
            "alternatives --install /bin/ld ld /usr/bin/x 1",
            Tool::Chkconfig,
        );
        assert!(g.install(&wrong).unwrap_err().contains("primary link"));
    }

    #[test]
    fn dpkg_state_matches_alternative_save() {
        // /var/lib/rpm/alternatives/ld as found on openSUSE Leap 42.3 (quoted in saltstack salt's alternatives test).
        let i = install(
            "update-alternatives --install /usr/bin/ld ld /usr/bin/ld.bfd 2",
            Tool::Dpkg,
        );
        let mut g = Group::new(Tool::Dpkg, &i);
        g.install(&i).unwrap();
        assert_eq!(g.state(), "auto\n/usr/bin/ld\n\n/usr/bin/ld.bfd\n2\n\n");
        // Slaves sorted by name, choices by path.
        let b = install(
            "update-alternatives --install /usr/bin/x x /usr/bin/x-b 10 --slave /usr/bin/y y /usr/bin/y-b --slave /usr/bin/a a /usr/bin/a-b",
            Tool::Dpkg,
        );
        let a = install("update-alternatives --install /usr/bin/x x /usr/bin/x-a 20 --slave /usr/bin/a a /usr/bin/a-a", Tool::Dpkg);
        let mut g = Group::new(Tool::Dpkg, &b);
        g.install(&b).unwrap();
        g.install(&a).unwrap();
        assert_eq!(
            g.state(),
            "auto\n/usr/bin/x\na\n/usr/bin/a\ny\n/usr/bin/y\n\n/usr/bin/x-a\n20\n/usr/bin/a-a\n\n/usr/bin/x-b\n10\n/usr/bin/a-b\n/usr/bin/y-b\n\n"
        );
        // A slave whose file is missing gets no link.
        let (make, remove) = g.links(&|p| p != "/usr/bin/a-a");
        assert_eq!(make.len(), 2);
        assert!(remove.contains(&"/etc/alternatives/a".to_string()));
        assert!(parse(&["--set", "x", "/usr/bin/x-a"], Tool::Dpkg)
            .unwrap_err()
            .contains("--set"));
        assert!(parse(&["--install", "/a", "a", "/b", "high"], Tool::Dpkg).is_err());
    }
}
