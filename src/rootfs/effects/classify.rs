//! What a skipped scriptlet would have done, for the build report and `plan`.
//!
//! Scriptlets are never run. Most of what real distributions' do falls
//! into a few kinds, recognised here by interpreter and body (shell and
//! lua alike, triggers and file triggers included), each with what
//! minibuild does about it: emulated by a pass of this module's parent,
//! written natively (the linker cache, CA bundles), done from sysusers.d,
//! or not done. The kinds the passes emulate are decided by the passes'
//! own readers (run against an empty tree, so only the body counts); the
//! rest is a match on command names, a guess for the reader only.

use super::{alternatives, crypto_policy, links};
use crate::rootfs::unpack::{ScriptletKind, SkippedScriptlet};
use crate::rootfs::Tree;

/// Effects recognised by command name: (needles, description).
const EFFECTS: &[(&[&str], &str)] = &[
    (&["useradd", "groupadd", "usermod", "sysusers"], "accounts"),
    (
        &["systemctl", "systemd-update-helper", "preset"],
        "systemd units",
    ),
    (&["tmpfiles"], "tmpfiles"),
    (&["ldconfig"], "linker cache"),
    (&["update-ca-trust"], "CA trust"),
    (&["gtk-update-icon-cache", "glib-compile-schemas"], "caches"),
    (&["install-info"], "info index"),
    (&["/etc/shells", "add-shell", "remove-shell"], "shells"),
    (&["pwconv", "grpconv"], "shadow"),
];

/// The kinds of effect `body` has by command name, in `EFFECTS` order.
pub fn effects(body: &str) -> Vec<&'static str> {
    EFFECTS
        .iter()
        .filter(|(needles, _)| needles.iter().any(|n| body.contains(n)))
        .map(|&(_, what)| what)
        .collect()
}

/// Whether a scriptlet of this kind runs on a first install.
fn runs_on_install(kind: ScriptletKind) -> bool {
    super::shell::install_args(kind).is_some()
}

/// The program of a `-p PROG` scriptlet, without its directory.
fn program(s: &SkippedScriptlet) -> Option<&str> {
    let p = s.interpreter.first()?;
    Some(p.rsplit('/').next().unwrap_or(p))
}

/// What the links reader makes of `s`: Some(emulated?) when it has links.
fn links_effect(s: &SkippedScriptlet) -> Option<bool> {
    let mut scratch = Tree::default();
    let found = links::scriptlet(&mut scratch, s, 0, &mut Vec::new());
    (!found.ops.is_empty() || !found.not_done.is_empty()).then_some(found.not_done.is_empty())
}

/// What one skipped scriptlet would have done and whether minibuild did
/// it: `["accounts, done from sysusers.d"]`; empty when nothing is
/// recognised (`has_sysusers`: the package ships a sysusers.d file, so its
/// accounts were created natively).
pub fn notes(s: &SkippedScriptlet, has_sysusers: bool) -> Vec<String> {
    let mut out = Vec::new();
    let install = runs_on_install(s.kind);
    let trigger = matches!(
        s.kind,
        ScriptletKind::Trigger | ScriptletKind::FileTrigger | ScriptletKind::TransFileTrigger
    );
    // `-p /sbin/ldconfig` with no body: the interpreter is the effect.
    if matches!(program(s), Some("ldconfig")) && s.body.trim().is_empty() {
        return vec!["linker cache, written natively".to_string()];
    }
    if crypto_policy::recognise_body(s).is_some() {
        out.push("crypto-policy links, emulated".to_string());
    } else if install && s.body.contains("alternatives") {
        let lua = links::is_lua(s);
        out.push(match alternatives::classify(s) {
            Some(true) if !lua => "alternatives, emulated".to_string(),
            Some(_) => "alternatives, not done".to_string(),
            None if lua && s.body.contains("--install") => "alternatives, not done".to_string(),
            None => String::new(),
        });
        out.retain(|n| !n.is_empty());
    } else if trigger && s.body.contains("alternatives --install") {
        out.push("alternatives, not done (trigger)".to_string());
    }
    if crypto_policy::recognise_body(s).is_none() {
        match links_effect(s) {
            Some(true) => out.push("symlinks/directories, emulated".to_string()),
            Some(false) => out.push("symlinks/directories, not done".to_string()),
            None => {}
        }
    }
    for e in effects(&s.body) {
        out.push(match e {
            "accounts" if has_sysusers => "accounts, done from sysusers.d".to_string(),
            // The accounts, shells and shadow passes emulate these.
            "accounts"
                if super::accounts::runs_on_install(s.kind)
                    && super::accounts::fully_recognised(&s.body, &s.interpreter) =>
            {
                "accounts, done from scriptlet".to_string()
            }
            "shells"
                if super::accounts::runs_on_install(s.kind)
                    && super::shells::added(&s.body, super::accounts::is_lua(&s.interpreter))
                        .is_some_and(|p| !p.is_empty()) =>
            {
                "shells, done from scriptlet".to_string()
            }
            "shadow" => "shadow, written natively".to_string(),
            // The pipeline writes these itself (rootfs::generated, ldcache, trust).
            "linker cache" | "CA trust" => format!("{e}, written natively"),
            e => format!("{e}, not done"),
        });
    }
    out
}

/// One package's skipped scriptlets as `%pre: accounts, done from
/// sysusers.d; %post` (see [`notes`]).
pub fn describe(scriptlets: &[SkippedScriptlet], has_sysusers: bool) -> String {
    let parts: Vec<String> = scriptlets
        .iter()
        .map(|s| {
            let what = notes(s, has_sysusers);
            if what.is_empty() {
                s.kind.to_string()
            } else {
                format!("{}: {}", s.kind, what.join("; "))
            }
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: ScriptletKind, body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            kind,
            interpreter: vec!["/bin/sh".into()],
            body: body.into(),
            triggered_by: vec![],
        }
    }

    fn with(interpreter: &str, kind: ScriptletKind, body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            interpreter: vec![interpreter.into()],
            ..s(kind, body)
        }
    }

    #[test]
    fn names_effects_and_what_was_done() {
        let pre = s(
            ScriptletKind::PreIn,
            "getent group nginx >/dev/null || groupadd -r nginx\nuseradd -r nginx",
        );
        let post = s(
            ScriptletKind::PostIn,
            "if [ $1 -eq 1 ]; then systemctl --no-reload preset nginx.service; fi",
        );
        let alt = s(
            ScriptletKind::PostIn,
            "/usr/sbin/alternatives --install /usr/bin/ld ld /usr/bin/ld.bfd 50",
        );
        let lua = with("<lua>", ScriptletKind::PostTrans, "print('hello')");
        assert_eq!(
            describe(&[pre.clone(), post.clone()], true),
            "%pre: accounts, done from sysusers.d; %post: systemd units, not done"
        );
        assert_eq!(
            describe(std::slice::from_ref(&pre), false),
            "%pre: accounts, done from scriptlet"
        );
        let odd = s(ScriptletKind::PreIn, "useradd -r $NAME");
        assert_eq!(describe(&[odd], false), "%pre: accounts, not done");
        let bash = s(
            ScriptletKind::PostIn,
            "grep -q '^/bin/bash$' /etc/shells || echo /bin/bash >> /etc/shells",
        );
        let shadow = s(ScriptletKind::PostIn, "/usr/sbin/pwconv\n/usr/sbin/grpconv");
        assert_eq!(
            describe(&[bash, shadow], false),
            "%post: shells, done from scriptlet; %post: shadow, written natively"
        );
        assert_eq!(
            describe(&[alt, lua], false),
            "%post: alternatives, emulated; %posttrans"
        );
        assert_eq!(
            describe(&[s(ScriptletKind::PostIn, "/sbin/ldconfig")], false),
            "%post: linker cache, written natively"
        );
        assert_eq!(
            effects("systemd-tmpfiles --create x.conf; /sbin/ldconfig"),
            ["tmpfiles", "linker cache"]
        );
    }

    #[test]
    fn by_interpreter_lua_and_triggers() {
        // `%post -p /sbin/ldconfig`: no body at all (75 of Azure Linux's 103).
        assert_eq!(
            notes(&with("/sbin/ldconfig", ScriptletKind::PostUn, ""), false),
            ["linker cache, written natively"]
        );
        // glibc's %transfiletriggerin on the library directories (Fedora glibc.spec).
        let ft = SkippedScriptlet {
            triggered_by: vec!["/lib".into(), "/usr/lib".into()],
            ..with("/sbin/ldconfig", ScriptletKind::TransFileTrigger, "")
        };
        assert_eq!(notes(&ft, false), ["linker cache, written natively"]);
        // Azure Linux filesystem's lua %post.
        let fs = with(
            "<lua>",
            ScriptletKind::PostIn,
            "posix.symlink(\"lib\", \"/usr/lib/debug/lib64\")\nreturn 0\n",
        );
        assert_eq!(notes(&fs, false), ["symlinks/directories, emulated"]);
        // A lua loop the reader cannot follow.
        let lp = with(
            "<lua>",
            ScriptletKind::PostIn,
            "for i in pairs(t) do\n  posix.symlink(t[i], i)\nend\n",
        );
        assert_eq!(notes(&lp, false), ["symlinks/directories, not done"]);
        // lua calling alternatives.
        let la = with(
            "<lua>",
            ScriptletKind::PostIn,
            "rpm.execute(\"alternatives\", \"--install\", \"/usr/bin/x\", \"x\", \"/usr/bin/x1\", \"10\")",
        );
        assert_eq!(notes(&la, false), ["alternatives, not done"]);
        // cracklib's %triggerin: symlinks in a trigger are reported, not done.
        let tr = SkippedScriptlet {
            triggered_by: vec!["cracklib-dicts".into()],
            ..s(
                ScriptletKind::Trigger,
                "[ $2 = 1 ] || exit 0\nln -sf words.pwd /usr/share/cracklib/pw_dict.pwd\n",
            )
        };
        assert_eq!(notes(&tr, false), ["symlinks/directories, not done"]);
        // Removal scriptlets do nothing on install, but their commands are named.
        let un = s(
            ScriptletKind::PostUn,
            "alternatives --remove ld /usr/bin/ld.bfd",
        );
        assert!(notes(&un, false).is_empty());
    }
}
