//! The accounts pass: users and groups the packages' scriptlets would have
//! created, plus every sysusers.d file, through the one allocator of
//! [`crate::rootfs::accounts`].
//!
//! A package that ships a sysusers.d file gets its accounts from that file
//! only (its scriptlet is the same declaration, expanded at build time).
//! Scriptlet accounts are created in install order, command by command, as
//! rpm would run them: each command is its own request, so a `groupadd`
//! takes the next free id before the `useradd` after it. System accounts
//! (`-r`) come from 999 downwards and others from 1000 upwards, like
//! useradd's defaults; an explicit id that is taken falls back to a free
//! one. No home directory is made (`useradd -m` is reported as not done).

use std::collections::BTreeMap;

use super::account_commands::{self, AccountOp};
use super::{Done, EffectError, Input, NotDone, Report};
use crate::rootfs::accounts::{
    self, GroupRequest, Request, UserRequest, RECIPE_RANGE, SYSTEM_RANGE,
};
use crate::rootfs::staging::Staging;
use crate::rootfs::unpack::ScriptletKind;
use crate::rootfs::Tree;

pub const NAME: &str = "accounts";

/// Scriptlets that run on a fresh install (uninstall ones and triggers never do).
pub fn runs_on_install(kind: ScriptletKind) -> bool {
    matches!(
        kind,
        ScriptletKind::PreTrans
            | ScriptletKind::PreIn
            | ScriptletKind::PostIn
            | ScriptletKind::PostTrans
    )
}

/// Whether the interpreter is rpm's embedded lua.
pub fn is_lua(interpreter: &[String]) -> bool {
    interpreter.first().is_some_and(|i| i == "<lua>")
}

fn error(message: String, source: accounts::AccountsError) -> EffectError {
    EffectError {
        pass: NAME,
        message,
        source: Some(Box::new(source)),
    }
}

/// useradd's defaults from the image's `/etc/default/useradd` (`HOME`,
/// `SHELL`), else shadow's built-in `/home` and `/bin/bash`.
fn useradd_defaults(tree: &Tree) -> (String, String) {
    let text = accounts::read_text(tree, "etc/default/useradd")
        .ok()
        .flatten()
        .unwrap_or_default();
    let get = |key: &str, default: &str| {
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    (get("HOME", "/home"), get("SHELL", "/bin/bash"))
}

/// The request for one op (`source` names the package and scriptlet).
fn request(op: AccountOp, source: &str, defaults: &(String, String)) -> Request {
    let system = match &op {
        AccountOp::Group { system, .. } | AccountOp::User { system, .. } => *system,
        AccountOp::Member { .. } | AccountOp::Sysusers(_) => true,
    };
    let range = if system { SYSTEM_RANGE } else { RECIPE_RANGE };
    let mut req = Request::new(source, range, system);
    req.fallback = true;
    match op {
        AccountOp::Group { name, gid, .. } => req.groups.push(GroupRequest { name, gid }),
        AccountOp::User {
            name,
            uid,
            group,
            groups,
            gecos,
            home,
            shell,
            ..
        } => {
            for g in groups {
                req.members.push((name.clone(), g));
            }
            req.users.push(UserRequest {
                home: home.unwrap_or_else(|| format!("{}/{name}", defaults.0)),
                shell: shell.unwrap_or_else(|| defaults.1.clone()),
                name,
                uid,
                group,
                gecos,
            });
        }
        AccountOp::Member { user, group } => req.members.push((user, group)),
        AccountOp::Sysusers(_) => {}
    }
    req
}

/// The pass (see the module comment).
pub fn pass(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let sysusers = accounts::sysusers_request(tree)
        .map_err(|e| error("cannot read the image's sysusers.d files".into(), e))?;
    let mut requests = vec![sysusers];
    // Account name → the package whose scriptlet asked for it.
    let mut asked_by: BTreeMap<String, String> = BTreeMap::new();
    let defaults = useradd_defaults(tree);
    for scripts in input.scripts {
        if accounts::ships_sysusers(tree, &scripts.package) {
            continue;
        }
        for s in scripts
            .scriptlets
            .iter()
            .filter(|s| runs_on_install(s.kind))
        {
            let (ops, unknown) = account_commands::parse(&s.body, is_lua(&s.interpreter));
            for u in unknown {
                report.not_done.push(NotDone {
                    pass: NAME,
                    package: scripts.package.clone(),
                    why: format!("{}: `{}`: {}", s.kind, u.line, u.why),
                });
            }
            let source = format!("{} {}", scripts.package, s.kind);
            for op in ops {
                match op {
                    AccountOp::Sysusers(text) => {
                        let mut req = Request::new(&source, SYSTEM_RANGE, true);
                        accounts::parse_sysusers(&text, &format!("{source} (inline)"), &mut req)
                            .map_err(|e| {
                                error(format!("{source}: cannot read its sysusers lines"), e)
                            })?;
                        note_names(&req, &scripts.package, &mut asked_by);
                        requests.push(req);
                    }
                    op => {
                        let req = request(op, &source, &defaults);
                        note_names(&req, &scripts.package, &mut asked_by);
                        requests.push(req);
                    }
                }
            }
        }
    }
    let created = accounts::apply(tree, stage, &requests)
        .map_err(|e| error("cannot create the accounts".into(), e))?;
    let from = |name: &str| match asked_by.get(name) {
        Some(p) => (Some(p.clone()), "done from scriptlet"),
        None => (None, "from sysusers.d"),
    };
    for (name, gid) in &created.groups {
        let (package, how) = from(name);
        report.done.push(Done {
            pass: NAME,
            package,
            what: format!("group {name} ({gid}), {how}"),
        });
    }
    for (name, uid, gid) in &created.users {
        let (package, how) = from(name);
        report.done.push(Done {
            pass: NAME,
            package,
            what: format!("user {name} ({uid}:{gid}), {how}"),
        });
    }
    Ok(())
}

fn note_names(req: &Request, package: &str, asked_by: &mut BTreeMap<String, String>) {
    let names = req
        .users
        .iter()
        .map(|u| &u.name)
        .chain(req.groups.iter().map(|g| &g.name))
        .chain(req.members.iter().map(|(_, g)| g));
    for n in names {
        asked_by
            .entry(n.clone())
            .or_insert_with(|| package.to_string());
    }
}

/// What a [`Done`] of this pass created: `(is_group, name, id)` (the
/// shadow pass gives these the tools' `!` instead of pwconv's copy of `x`).
pub fn created(d: &Done) -> Option<(bool, &str, u32)> {
    if d.pass != NAME {
        return None;
    }
    let (is_group, rest) = match d.what.strip_prefix("user ") {
        Some(rest) => (false, rest),
        None => (true, d.what.strip_prefix("group ")?),
    };
    let (name, rest) = rest.split_once(" (")?;
    let id = rest.split([':', ')']).next()?.parse().ok()?;
    Some((is_group, name, id))
}

/// Whether every account command of `body` is emulated: `plan` says
/// "accounts, done from scriptlet" for it.
pub fn fully_recognised(body: &str, interpreter: &[String]) -> bool {
    let (ops, unknown) = account_commands::parse(body, is_lua(interpreter));
    !ops.is_empty() && unknown.is_empty()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::rootfs::effects::Scripts;
    use crate::rootfs::generated::put_file;
    use crate::rootfs::unpack::SkippedScriptlet;

    fn tree_with(stage: &mut Staging, files: &[(&str, &str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, package, text) in files {
            let at = put_file(&mut tree, stage, path, text.as_bytes(), 0o644, 0).unwrap();
            tree.entries.get_mut(&at).unwrap().package = Some(package.to_string());
        }
        tree
    }

    fn pre(package: &str, body: &str) -> Scripts {
        Scripts {
            package: package.into(),
            scriptlets: vec![SkippedScriptlet {
                kind: ScriptletKind::PreIn,
                interpreter: vec!["/bin/sh".into()],
                body: body.into(),
                triggered_by: vec![],
            }],
        }
    }

    #[test]
    fn scriptlets_and_sysusers_share_the_allocator_in_install_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = Staging::new(dir.path().join("s")).unwrap();
        let mut tree = tree_with(
            &mut stage,
            &[
                ("etc/passwd", "setup", "root:x:0:0:root:/root:/bin/bash\n"),
                ("etc/group", "setup", "root:x:0:\nusers:x:100:\n"),
                (
                    "etc/default/useradd",
                    "shadow-utils",
                    "GROUP=100\nSHELL=/bin/sh\n",
                ),
                (
                    "usr/lib/sysusers.d/nginx.conf",
                    "nginx",
                    "u nginx - \"Nginx\" /var/lib/nginx\n",
                ),
            ],
        );
        let scripts = [
            // Its sysusers.d file wins: this line is never read.
            pre("nginx", "useradd -r -u 5 -s /bin/false nginx"),
            // microsoft/azurelinux SPECS/frr/frr.spec %pre.
            pre(
                "frr",
                "getent group 'frrvty' >/dev/null || groupadd -r 'frrvty' || :\n\
                 getent group 'frr' >/dev/null || groupadd -r 'frr' || :\n\
                 getent passwd 'frr' >/dev/null || \\\n  useradd -r -g 'frr' -d '/var/run/frr' -s '/sbin/nologin' -c 'FRRouting routing suite' 'frr' || :\n\
                 usermod -a -G frrvty frr\n",
            ),
            pre("app", "useradd -c App app\nuseradd -m -r homed\n"),
        ];
        let mut report = Report::default();
        pass(
            &mut tree,
            &mut stage,
            &Input { scripts: &scripts },
            &mut report,
        )
        .unwrap();
        let passwd = accounts::read_text(&tree, "etc/passwd").unwrap().unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\n\
             nginx:x:999:999:Nginx:/var/lib/nginx:/usr/sbin/nologin\n\
             frr:x:998:997:FRRouting routing suite:/var/run/frr:/sbin/nologin\n\
             app:x:1000:1000:App:/home/app:/bin/sh\n"
        );
        let group = accounts::read_text(&tree, "etc/group").unwrap().unwrap();
        assert!(
            group.ends_with("frrvty:x:998:frr\nfrr:x:997:\napp:x:1000:\n"),
            "{group}"
        );
        let done: Vec<String> = report
            .done
            .iter()
            .map(|d| format!("{:?} {}", d.package, d.what))
            .collect();
        assert!(
            done.contains(&"None user nginx (999:999), from sysusers.d".to_string()),
            "{done:?}"
        );
        assert!(done.contains(&"Some(\"frr\") group frrvty (998), done from scriptlet".to_string()));
        assert_eq!(
            created(&report.done[report.done.len() - 1]),
            Some((false, "app", 1000))
        );
        assert_eq!(
            report.not_done,
            [NotDone {
                pass: NAME,
                package: "app".into(),
                why: "%pre: `useradd -m -r homed`: useradd -m: creating the home directory is not emulated".into(),
            }]
        );
    }
}
