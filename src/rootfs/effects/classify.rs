//! What a skipped scriptlet would have done, for the build report.
//!
//! Scriptlets are never run. Most of what Fedora's do falls into a few
//! kinds, recognised here by the commands in their bodies, so the report
//! can say which effects minibuild did natively (accounts, from the
//! package's sysusers.d file) and which are simply not done (alternatives,
//! systemd unit presets, tmpfiles, icon caches). The match is on command names
//! only: a guess for the reader, never used to change the image.

use crate::rootfs::unpack::SkippedScriptlet;

/// Effects recognised in scriptlet bodies: (command substring, description).
const EFFECTS: &[(&[&str], &str)] = &[
    (&["useradd", "groupadd", "usermod", "sysusers"], "accounts"),
    (&["alternatives"], "alternatives"),
    (
        &["systemctl", "systemd-update-helper", "preset"],
        "systemd units",
    ),
    (&["tmpfiles"], "tmpfiles"),
    (&["ldconfig"], "ldconfig"),
    (&["update-ca-trust"], "CA trust"),
    (&["gtk-update-icon-cache", "glib-compile-schemas"], "caches"),
    (&["install-info"], "info index"),
    (&["/etc/shells", "add-shell"], "shells"),
    (&["pwconv", "grpconv"], "shadow"),
];

/// The kinds of effect `body` has, in [`EFFECTS`] order.
pub fn effects(body: &str) -> Vec<&'static str> {
    EFFECTS
        .iter()
        .filter(|(needles, _)| needles.iter().any(|n| body.contains(n)))
        .map(|&(_, what)| what)
        .collect()
}

/// What one skipped scriptlet would have done and whether minibuild did
/// it: `["accounts, done from sysusers.d"]`; empty when nothing is
/// recognised (`has_sysusers`: the package ships a sysusers.d file, so its
/// accounts were created natively).
pub fn notes(s: &SkippedScriptlet, has_sysusers: bool) -> Vec<String> {
    effects(&s.body)
        .iter()
        .map(|&e| match e {
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
            // The pipeline writes these itself (rootfs::generated).
            "ldconfig" | "CA trust" => format!("{e}, written natively"),
            e => format!("{e}, not done"),
        })
        .collect()
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
    use crate::rootfs::unpack::ScriptletKind;

    fn s(kind: ScriptletKind, body: &str) -> SkippedScriptlet {
        SkippedScriptlet {
            kind,
            interpreter: vec!["/bin/sh".into()],
            body: body.into(),
            triggered_by: vec![],
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
        let lua = s(ScriptletKind::PostTrans, "print('hello')");
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
            "%post: alternatives, not done; %posttrans"
        );
        assert_eq!(
            describe(&[s(ScriptletKind::PostIn, "/sbin/ldconfig")], false),
            "%post: ldconfig, written natively"
        );
        assert_eq!(
            effects("systemd-tmpfiles --create x.conf; /sbin/ldconfig"),
            ["tmpfiles", "ldconfig"]
        );
    }
}
