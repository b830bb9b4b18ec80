//! Account creation read from scriptlet bodies, never run.
//!
//! The forms real distributions use:
//! - RHEL/CentOS/Rocky/Alma and Azure Linux: `getent group g >/dev/null ||
//!   groupadd -r g` and `getent passwd u >/dev/null || useradd -r -g g -d
//!   HOME -s SHELL -c GECOS u` in `%pre`, sometimes `usermod -a -G`.
//! - Fedora: `%sysusers_create_compat`, which systemd's
//!   `sysusers.generate-pre.sh` expands at build time into those same lines
//!   (with `if ! getent passwd ID` for a fixed uid).
//! - openSUSE: `%sysusers_generate_pre`, which sysuser-tools expands into
//!   `/usr/sbin/sysusers2shadow NAME.conf <<"EOF"` followed by the
//!   package's sysusers.d lines. Issue 14 reports lua `%pre`s too
//!   (system-user-root); their real bodies are not in the sources searched,
//!   so lua is read in the general forms: `/etc/passwd` and `/etc/group`
//!   lines written through `io.open`, and the commands above run through
//!   `os.execute` or `rpm.execute`.
//!
//! The `getent` guards need no emulation: an account whose name exists is
//! never changed ([`crate::rootfs::accounts`]), which is what they ensure.

use super::words::{self, Command, Word};
use crate::rootfs::accounts::GroupRef;

/// One account change a scriptlet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOp {
    Group {
        name: String,
        gid: Option<u32>,
        /// `-r`: the system range, allocated downwards.
        system: bool,
    },
    User {
        name: String,
        uid: Option<u32>,
        /// `-g`; `None`: a group named like the user (`-U`, the default).
        group: Option<GroupRef>,
        /// `-G`: supplementary groups.
        groups: Vec<String>,
        gecos: String,
        /// `None`: useradd's default, `HOME/NAME`.
        home: Option<String>,
        /// `None`: useradd's default shell.
        shell: Option<String>,
        system: bool,
    },
    /// `usermod -a -G group user`, `gpasswd -a user group`.
    Member { user: String, group: String },
    /// sysusers.d lines fed to `sysusers2shadow` or `systemd-sysusers -`.
    Sysusers(String),
}

/// A command about accounts that is not emulated, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognised {
    pub line: String,
    pub why: String,
}

/// Commands that change accounts; anything else in a body is not ours.
const ACCOUNT_COMMANDS: &[&str] = &[
    "useradd",
    "groupadd",
    "usermod",
    "groupmod",
    "gpasswd",
    "adduser",
    "addgroup",
    "userdel",
    "groupdel",
    "sysusers2shadow",
    "systemd-sysusers",
    "chpasswd",
    "passwd",
];

/// The account changes in one scriptlet body. `lua`: the interpreter is
/// rpm's embedded lua.
pub fn parse(body: &str, lua: bool) -> (Vec<AccountOp>, Vec<Unrecognised>) {
    if lua {
        return parse_lua(body);
    }
    let mut ops = Vec::new();
    let mut unknown = Vec::new();
    for cmd in words::commands(body) {
        if !ACCOUNT_COMMANDS.contains(&cmd.name()) {
            continue;
        }
        match command(&cmd) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => {}
            Err(why) => unknown.push(Unrecognised {
                line: cmd.line.clone(),
                why,
            }),
        }
    }
    (ops, unknown)
}

/// Whether `body` has anything [`parse`] looks at.
pub fn mentions_accounts(body: &str) -> bool {
    ACCOUNT_COMMANDS
        .iter()
        .filter(|c| **c != "passwd")
        .any(|c| body.contains(c))
        || (body.contains("/etc/passwd") || body.contains("/etc/group"))
}

fn command(cmd: &Command) -> Result<Option<AccountOp>, String> {
    if let Some(w) = cmd.words.iter().find(|w| w.expands) {
        return Err(format!(
            "`{}` needs the shell to expand it; not emulated",
            w.text
        ));
    }
    let args: Vec<&str> = cmd.words[1..].iter().map(|w| w.text.as_str()).collect();
    match cmd.name() {
        "useradd" => useradd(&args).map(Some),
        "groupadd" => groupadd(&args).map(Some),
        "usermod" => usermod(&args).map(Some),
        "gpasswd" => match args.as_slice() {
            ["-a", user, group] => Ok(Some(AccountOp::Member {
                user: user.to_string(),
                group: group.to_string(),
            })),
            _ => Err("gpasswd: only `gpasswd -a USER GROUP` is emulated".into()),
        },
        "sysusers2shadow" | "systemd-sysusers" => match &cmd.heredoc {
            Some(text) => Ok(Some(AccountOp::Sysusers(text.clone()))),
            // Without inline lines it reads the package's sysusers.d file,
            // which the accounts pass reads anyway.
            None if args
                .iter()
                .all(|a| !a.starts_with('-') || a.starts_with("--root")) =>
            {
                Ok(None)
            }
            None => Err(format!("{}: options not emulated", cmd.name())),
        },
        other => Err(format!("{other}: not emulated")),
    }
}

/// Expand combined short options (`-aG` → `-a -G`, `-u74` → `-u 74`) given
/// which letters take a value.
fn expand(args: &[&str], takes_value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") {
            for (i, c) in a[1..].char_indices() {
                out.push(format!("-{c}"));
                if takes_value.contains(c) {
                    let rest = &a[1 + i + c.len_utf8()..];
                    if !rest.is_empty() {
                        out.push(rest.to_string());
                    }
                    break;
                }
            }
        } else if let Some((opt, value)) = a.split_once('=').filter(|_| a.starts_with("--")) {
            out.push(opt.to_string());
            out.push(value.to_string());
        } else {
            out.push(a.to_string());
        }
    }
    out
}

fn id(value: Option<&String>, opt: &str) -> Result<u32, String> {
    value
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&id| id < 65535)
        .ok_or_else(|| format!("{opt} needs a numeric id"))
}

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, opt: &str) -> Result<String, String> {
    it.next()
        .cloned()
        .ok_or_else(|| format!("{opt} needs a value"))
}

fn useradd(args: &[&str]) -> Result<AccountOp, String> {
    let args = expand(args, "ugGdscKefkpbZ");
    let mut it = args.iter();
    let (mut uid, mut group, mut groups) = (None, None, Vec::new());
    let (mut gecos, mut home, mut shell) = (String::new(), None, None);
    let (mut system, mut no_user_group, mut name) = (false, false, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-r" | "--system" => system = true,
            "-u" | "--uid" => uid = Some(id(it.next(), a)?),
            "-g" | "--gid" => {
                let g = value(&mut it, a)?;
                group = Some(match g.parse::<u32>() {
                    Ok(gid) => GroupRef::Id(gid),
                    Err(_) => GroupRef::Name(g),
                });
            }
            "-G" | "--groups" => {
                let g = value(&mut it, a)?;
                groups.extend(g.split(',').filter(|g| !g.is_empty()).map(str::to_string));
            }
            "-d" | "--home-dir" | "--home" => home = Some(value(&mut it, a)?),
            "-s" | "--shell" => shell = Some(value(&mut it, a)?),
            "-c" | "--comment" => gecos = value(&mut it, a)?,
            // No home directory is made either way (see the accounts pass).
            "-M" | "--no-create-home" | "-l" | "--no-log-init" => {}
            "-N" | "--no-user-group" => no_user_group = true,
            "-U" | "--user-group" | "-o" | "--non-unique" => {}
            "-K" | "--key" => {
                value(&mut it, a)?;
            }
            "-m" | "--create-home" => {
                return Err("useradd -m: creating the home directory is not emulated".into())
            }
            s if s.starts_with('-') => return Err(format!("useradd {s}: option not emulated")),
            s if name.is_none() => name = Some(s.to_string()),
            s => return Err(format!("useradd: unexpected argument `{s}`")),
        }
    }
    let name = name.ok_or("useradd: no user name")?;
    if no_user_group && group.is_none() {
        // useradd's default group (GROUP= in /etc/default/useradd), `users`.
        group = Some(GroupRef::Id(100));
    }
    Ok(AccountOp::User {
        name,
        uid,
        group,
        groups,
        gecos,
        home,
        shell,
        system,
    })
}

fn groupadd(args: &[&str]) -> Result<AccountOp, String> {
    let args = expand(args, "gKpPRU");
    let mut it = args.iter();
    let (mut gid, mut system, mut name) = (None, false, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-r" | "--system" => system = true,
            "-g" | "--gid" => gid = Some(id(it.next(), a)?),
            // -f: succeed when the group exists, pick another id when the
            // asked one is taken; both are what the allocator does anyway.
            "-f" | "--force" | "-o" | "--non-unique" => {}
            "-K" | "--key" => {
                value(&mut it, a)?;
            }
            s if s.starts_with('-') => return Err(format!("groupadd {s}: option not emulated")),
            s if name.is_none() => name = Some(s.to_string()),
            s => return Err(format!("groupadd: unexpected argument `{s}`")),
        }
    }
    Ok(AccountOp::Group {
        name: name.ok_or("groupadd: no group name")?,
        gid,
        system,
    })
}

fn usermod(args: &[&str]) -> Result<AccountOp, String> {
    let args = expand(args, "GcdgsulLeEfpRP");
    let (mut append, mut groups, mut user) = (false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-a" | "--append" => append = true,
            "-G" | "--groups" => groups = Some(value(&mut it, a)?),
            s if s.starts_with('-') => return Err(format!("usermod {s}: option not emulated")),
            s if user.is_none() => user = Some(s.to_string()),
            s => return Err(format!("usermod: unexpected argument `{s}`")),
        }
    }
    match (append, groups, user) {
        (true, Some(groups), Some(user)) => {
            let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
            // One group per op keeps the op list flat; several are rare.
            match groups.as_slice() {
                [group] => Ok(AccountOp::Member {
                    user,
                    group: group.to_string(),
                }),
                _ => Err("usermod -a -G with several groups: not emulated".into()),
            }
        }
        _ => Err("usermod: only `usermod -a -G GROUP USER` is emulated".into()),
    }
}

/// Lua bodies: commands run through `os.execute`/`rpm.execute`, and
/// `/etc/passwd` and `/etc/group` lines written with `io.open`.
fn parse_lua(body: &str) -> (Vec<AccountOp>, Vec<Unrecognised>) {
    let mut ops = Vec::new();
    let mut unknown = Vec::new();
    let strings = lua_strings(body);
    let writes_passwd = body.contains("/etc/passwd");
    let writes_group = body.contains("/etc/group");
    for (line, s) in &strings {
        // A whole command line as one string: os.execute("useradd -r x").
        let cmds = words::commands(s);
        if let Some(cmd) = cmds
            .iter()
            .find(|c| ACCOUNT_COMMANDS.contains(&c.name()) && c.words.len() > 1)
        {
            match command(cmd) {
                Ok(op) => ops.extend(op),
                Err(why) => unknown.push(Unrecognised {
                    line: line.clone(),
                    why,
                }),
            }
            continue;
        }
        for entry in s.lines() {
            let fields: Vec<&str> = entry.split(':').collect();
            let numeric = |f: &str| f.parse::<u32>().ok().filter(|&id| id < 65535);
            match fields.as_slice() {
                [name, _, uid, gid, gecos, home, shell] if writes_passwd => {
                    if let (Some(uid), Some(gid)) = (numeric(uid), numeric(gid)) {
                        ops.push(AccountOp::User {
                            name: name.to_string(),
                            uid: Some(uid),
                            group: Some(GroupRef::Id(gid)),
                            groups: Vec::new(),
                            gecos: gecos.to_string(),
                            home: Some(home.to_string()),
                            shell: Some(shell.to_string()),
                            system: true,
                        });
                    }
                }
                [name, _, gid, members] if writes_group => {
                    if let Some(gid) = numeric(gid) {
                        ops.push(AccountOp::Group {
                            name: name.to_string(),
                            gid: Some(gid),
                            system: true,
                        });
                        for m in members.split(',').filter(|m| !m.is_empty()) {
                            ops.push(AccountOp::Member {
                                user: m.to_string(),
                                group: name.to_string(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // `rpm.execute("/usr/sbin/useradd", "-r", "x")`: the command is split
    // over several strings.
    for call in body.split("rpm.execute(").skip(1) {
        let args: Vec<String> = lua_strings(call.split(')').next().unwrap_or(""))
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let Some(first) = args.first() else { continue };
        let name = first.rsplit('/').next().unwrap_or(first);
        if !ACCOUNT_COMMANDS.contains(&name) {
            continue;
        }
        let cmd = Command {
            words: args
                .iter()
                .map(|a| Word {
                    text: a.clone(),
                    expands: false,
                })
                .collect(),
            redirects: Vec::new(),
            heredoc: None,
            line: format!("rpm.execute({})", args.join(", ")),
        };
        match command(&cmd) {
            Ok(op) => ops.extend(op),
            Err(why) => unknown.push(Unrecognised {
                line: cmd.line,
                why,
            }),
        }
    }
    (ops, unknown)
}

/// The string literals of a lua chunk (`'…'`, `"…"`, `[[…]]`) with the
/// line each starts on, escapes `\n`, `\t`, `\\` and quotes decoded.
pub fn lua_strings(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.lines().collect();
    let line_of = |pos: usize| {
        let n = body[..pos].matches('\n').count();
        lines
            .get(n)
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    };
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'\'' | b'"') => {
                let start = i;
                let mut s = Vec::new();
                i += 1;
                while i < b.len() && b[i] != q && b[i] != b'\n' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        s.push(match b[i + 1] {
                            b'n' => b'\n',
                            b't' => b'\t',
                            c => c,
                        });
                        i += 2;
                    } else {
                        s.push(b[i]);
                        i += 1;
                    }
                }
                i += 1;
                out.push((line_of(start), String::from_utf8_lossy(&s).into_owned()));
            }
            b'[' if b.get(i + 1) == Some(&b'[') => {
                let start = i;
                let end = body[i + 2..].find("]]").map_or(b.len(), |e| i + 2 + e);
                let text = &body[i + 2..end];
                out.push((
                    line_of(start),
                    text.strip_prefix('\n').unwrap_or(text).to_string(),
                ));
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedora_sysusers_create_compat_expansion() {
        // Fedora openssh-server's %pre, as `rpm -q --scripts` prints it: the
        // expansion of `%sysusers_create_compat` (systemd's
        // sysusers.generate-pre.sh) for `u sshd 74 ...`.
        let body = "\n# generated from openssh-server-systemd-sysusers.conf\n\
getent group 'sshd' >/dev/null || groupadd -f -g '74' -r 'sshd' || :\n\
if ! getent passwd 'sshd' >/dev/null; then\n\
    if ! getent passwd '74' >/dev/null; then\n\
        useradd -r -u '74' -g 'sshd' -d '/usr/share/empty.sshd' -s '/usr/sbin/nologin' -c 'Privilege-separated SSH' 'sshd' || :\n\
    else\n\
        useradd -r -g 'sshd' -d '/usr/share/empty.sshd' -s '/usr/sbin/nologin' -c 'Privilege-separated SSH' 'sshd' || :\n\
    fi\n\
fi\n";
        let (ops, unknown) = parse(body, false);
        assert!(unknown.is_empty(), "{unknown:?}");
        let full = |uid| AccountOp::User {
            name: "sshd".into(),
            uid,
            group: Some(GroupRef::Name("sshd".into())),
            groups: vec![],
            gecos: "Privilege-separated SSH".into(),
            home: Some("/usr/share/empty.sshd".into()),
            shell: Some("/usr/sbin/nologin".into()),
            system: true,
        };
        assert_eq!(
            ops,
            [
                AccountOp::Group {
                    name: "sshd".into(),
                    gid: Some(74),
                    system: true
                },
                full(Some(74)),
                full(None),
            ]
        );
    }

    #[test]
    fn azure_linux_frr_groupadd_useradd_usermod() {
        // microsoft/azurelinux SPECS/frr/frr.spec %pre (%{name} = frr).
        let body = "getent group 'frrvty' >/dev/null || groupadd -r 'frrvty' || :\n\n\
getent group 'frr' >/dev/null || groupadd -r 'frr' || :\n\n\
getent passwd 'frr' >/dev/null || \\\n  useradd -r -g 'frr' -d '/var/run/frr' -s '/sbin/nologin' -c 'FRRouting routing suite' 'frr' || :\n\n\
# add frr to frrvty groups\n\
usermod -a -G frrvty frr\n";
        let (ops, unknown) = parse(body, false);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[0],
            AccountOp::Group {
                name: "frrvty".into(),
                gid: None,
                system: true
            }
        );
        assert!(
            matches!(&ops[2], AccountOp::User { name, home: Some(h), .. }
            if name == "frr" && h == "/var/run/frr")
        );
        assert_eq!(
            ops[3],
            AccountOp::Member {
                user: "frr".into(),
                group: "frrvty".into()
            }
        );
        // The combined form Fedora's tapauth-style specs use.
        let (ops, _) = parse(
            "usermod -aG tapauthd-clients tapauthd 2>/dev/null || true",
            false,
        );
        assert_eq!(
            ops,
            [AccountOp::Member {
                user: "tapauthd".into(),
                group: "tapauthd-clients".into()
            }]
        );
    }

    #[test]
    fn rhel_style_long_options_and_defaults() {
        // The Fedora packaging guidelines' dynamic-id form (UsersAndGroups).
        let body = "getent group GROUPNAME >/dev/null || groupadd -r GROUPNAME\n\
getent passwd USERNAME >/dev/null || \\\n    useradd -r -g GROUPNAME -d HOMEDIR -s /sbin/nologin \\\n    -c \"Useful comment about the purpose of this account\" USERNAME\nexit 0\n";
        let (ops, unknown) = parse(body, false);
        assert!(unknown.is_empty());
        assert!(matches!(&ops[1], AccountOp::User { gecos, .. }
            if gecos == "Useful comment about the purpose of this account"));
        let (ops, _) = parse(
            "useradd --system --uid=59 --no-create-home --no-user-group --comment=TPM tss",
            false,
        );
        assert_eq!(
            ops,
            [AccountOp::User {
                name: "tss".into(),
                uid: Some(59),
                group: Some(GroupRef::Id(100)),
                groups: vec![],
                gecos: "TPM".into(),
                home: None,
                shell: None,
                system: true,
            }]
        );
    }

    #[test]
    fn opensuse_sysusers_generate_pre_expansion() {
        // The %pre that sysuser-tools' `%sysusers_generate_pre` produces, from
        // the expected output in openSUSE sysuser-tools.spec's %check.
        let body = "/usr/sbin/sysusers2shadow me.conf <<\"EOF\"\nu   me   -     \"myself\" /dev/null\nm   me  nogroup\ng   asdf\nEOF\n";
        let (ops, unknown) = parse(body, false);
        assert!(unknown.is_empty());
        assert_eq!(
            ops,
            [AccountOp::Sysusers(
                "u   me   -     \"myself\" /dev/null\nm   me  nogroup\ng   asdf\n".into()
            )]
        );
    }

    #[test]
    fn lua_passwd_and_group_lines_and_rpm_execute() {
        // A constructed body in the general lua forms (see the module
        // comment: no real SUSE lua account body was found to copy).
        let body = "if not posix.access(\"/etc/passwd\") then\n\
  local f = io.open(\"/etc/passwd\", \"w\")\n\
  f:write(\"root:x:0:0:root:/root:/bin/bash\\n\")\n\
  f:close()\nend\n\
if not posix.access(\"/etc/group\") then\n\
  local f = io.open(\"/etc/group\", \"w\")\n\
  f:write([[root:x:0:\nshadow:x:15:\n]])\n  f:close()\nend\n\
rpm.execute(\"/usr/sbin/groupadd\", \"-r\", \"trusted\")\n";
        let (ops, unknown) = parse(body, true);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(
            ops,
            [
                AccountOp::User {
                    name: "root".into(),
                    uid: Some(0),
                    group: Some(GroupRef::Id(0)),
                    groups: vec![],
                    gecos: "root".into(),
                    home: Some("/root".into()),
                    shell: Some("/bin/bash".into()),
                    system: true,
                },
                AccountOp::Group {
                    name: "root".into(),
                    gid: Some(0),
                    system: true
                },
                AccountOp::Group {
                    name: "shadow".into(),
                    gid: Some(15),
                    system: true
                },
                AccountOp::Group {
                    name: "trusted".into(),
                    gid: None,
                    system: true
                },
            ]
        );
    }

    #[test]
    fn unrecognised_commands_are_named() {
        let (ops, unknown) = parse(
            "useradd -r -m -d /home/x x\nuseradd -r $USER\nuserdel old\nusermod -L x\n",
            false,
        );
        assert!(ops.is_empty());
        let whys: Vec<&str> = unknown.iter().map(|u| u.why.as_str()).collect();
        assert_eq!(
            whys,
            [
                "useradd -m: creating the home directory is not emulated",
                "`$USER` needs the shell to expand it; not emulated",
                "userdel: not emulated",
                "usermod -L: option not emulated",
            ]
        );
        assert_eq!(unknown[1].line, "useradd -r $USER");
        // Bodies without account commands are not ours at all.
        assert_eq!(
            parse("/sbin/ldconfig\nsystemctl preset x", false),
            (vec![], vec![])
        );
        assert!(!mentions_accounts("/sbin/ldconfig"));
        assert!(mentions_accounts("getent passwd x || useradd x"));
    }
}
