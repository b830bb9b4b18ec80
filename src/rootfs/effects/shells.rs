//! The shells pass: `/etc/shells` lines that shells' `%post` add.
//!
//! The forms real packages use:
//! - Fedora/RHEL bash: a lua `%post` that opens `/etc/shells` with `a+`
//!   and writes `/bin/sh` and `/bin/bash` when missing.
//! - Azure Linux bash, zsh and tcsh: `grep -q '^PATH$' /etc/shells
//!   || echo PATH >> /etc/shells` (and `echo PATH > /etc/shells` when the
//!   file is missing).
//! - Debian-style `add-shell PATH…` (SUSE packages call it too).
//! - Azure Linux ksh: `for s in /bin/ksh …; do … echo "$s" >> /etc/shells`
//!   (the loop's words stand in for `$s`).
//!
//! Each path is appended in the order the scriptlets name it, once.

use super::account_commands::lua_strings;
use super::accounts::{is_lua, runs_on_install};
use super::words;
use super::{Done, EffectError, Input, NotDone, Report};
use crate::rootfs::accounts as files;
use crate::rootfs::staging::Staging;
use crate::rootfs::Tree;

pub const NAME: &str = "shells";
const SHELLS: &str = "/etc/shells";

/// The paths a scriptlet body adds to `/etc/shells`; `None` when it
/// touches the file in a way not emulated.
pub fn added(body: &str, lua: bool) -> Option<Vec<String>> {
    if lua {
        if !body.contains(SHELLS) {
            return Some(Vec::new());
        }
        let paths: Vec<String> = lua_strings(body)
            .into_iter()
            .map(|(_, s)| s.trim_end_matches('\n').to_string())
            .filter(|s| s.starts_with('/') && s != SHELLS && !s.contains(char::is_whitespace))
            .collect();
        return (!paths.is_empty()).then_some(paths);
    }
    let mut paths = Vec::new();
    let mut other_use = false;
    // The innermost `for VAR in WORDS` seen: `$VAR` is each of WORDS.
    let mut loop_var: Option<(String, Vec<String>)> = None;
    for cmd in words::commands(body) {
        let to_shells = cmd
            .redirects
            .iter()
            .any(|(op, target)| (op == ">" || op == ">>") && target == SHELLS);
        let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
        let expands = cmd.words.iter().any(|w| w.expands);
        let loop_values = |w: &str| {
            let (var, values) = loop_var.as_ref()?;
            let name = w.strip_prefix('$')?;
            let name = name
                .strip_prefix('{')
                .and_then(|n| n.strip_suffix('}'))
                .unwrap_or(name);
            (name == var).then(|| values.clone())
        };
        match cmd.name() {
            "for" if words.get(2) == Some(&"in") && !expands => {
                loop_var = Some((
                    words[1].to_string(),
                    words[3..].iter().map(|w| w.to_string()).collect(),
                ));
            }
            "echo" if to_shells && !expands && words.len() == 2 => paths.push(words[1].to_string()),
            "echo" if to_shells && words.len() == 2 && loop_values(words[1]).is_some() => {
                paths.extend(loop_values(words[1]).unwrap_or_default())
            }
            "add-shell" if !expands => paths.extend(words[1..].iter().map(|w| w.to_string())),
            // Reading it (the `grep -q` guard) changes nothing.
            "grep" | "cat" | "test" | "[" => {}
            _ if to_shells || words.contains(&SHELLS) => other_use = true,
            _ => {}
        }
    }
    if other_use && paths.is_empty() {
        return None;
    }
    Some(paths)
}

/// The pass (see the module comment).
pub fn pass(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for scripts in input.scripts {
        for s in scripts
            .scriptlets
            .iter()
            .filter(|s| runs_on_install(s.kind))
        {
            match added(&s.body, is_lua(&s.interpreter)) {
                Some(paths) => {
                    wanted.extend(paths.into_iter().map(|p| (scripts.package.clone(), p)))
                }
                None => report.not_done.push(NotDone {
                    pass: NAME,
                    package: scripts.package.clone(),
                    why: format!("{}: changes /etc/shells in a way not emulated", s.kind),
                }),
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let err = |e: files::AccountsError| EffectError {
        pass: NAME,
        message: "cannot update /etc/shells".into(),
        source: Some(Box::new(e)),
    };
    let mut text = files::read_text(tree, "etc/shells")
        .map_err(err)?
        .unwrap_or_default();
    let mut changed = false;
    for (package, path) in wanted {
        if text.lines().any(|l| l.trim() == path) {
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&path);
        text.push('\n');
        changed = true;
        report.done.push(Done {
            pass: NAME,
            package: Some(package),
            what: format!("{path} added to /etc/shells"),
        });
    }
    if changed {
        files::write_text(tree, stage, "etc/shells", &text, 0o644).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedora_bash_lua_post() {
        // Fedora/RHEL bash.spec `%post -p <lua>`, as `rpm -q --scripts bash`
        // prints it on CentOS/RHEL 7 (quoted in public write-ups of rpm -q).
        let body = "nl        = '\\n'\nsh        = '/bin/sh'..nl\nbash      = '/bin/bash'..nl\n\
f = io.open('/etc/shells', 'a+')\nif f then\n  local shells = nl..f:read('*all')..nl\n\
  if not shells:find(nl..sh) then f:write(sh) end\n\
  if not shells:find(nl..bash) then f:write(bash) end\n  f:close()\nend\n";
        assert_eq!(added(body, true).unwrap(), ["/bin/sh", "/bin/bash"]);
        assert_eq!(added("print('x')", true).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn azure_linux_bash_post() {
        // microsoft/azurelinux SPECS/bash/bash.spec %post (%{_bindir} = /usr/bin).
        let body = "if [ $1 -eq 1 ] ; then\n    if [ ! -f \"/root/.bash_logout\" ] ; then\n        cp /etc/skel/.bash_logout /root/.bash_logout\n    fi\n\
    if [ ! -f /etc/shells ]; then\n        echo \"/bin/sh\" >> /etc/shells\n        echo \"/bin/bash\" >> /etc/shells\n\
        echo \"/usr/bin/sh\" >> /etc/shells\n        echo \"/usr/bin/bash\" >> /etc/shells\n    else\n\
        grep -q '^/bin/sh$' /etc/shells || \\\n        echo \"/bin/sh\" >> /etc/shells\n\
        grep -q '^/bin/bash$' /etc/shells || \\\n        echo \"/bin/bash\" >> /etc/shells\n\
        grep -q '^/usr/bin/sh$' /etc/shells || \\\n        echo \"/usr/bin/sh\" >> /etc/shells\n\
        grep -q '^/usr/bin/bash$' /etc/shells || \\\n        echo \"/usr/bin/bash\" >> /etc/shells\n    fi\nfi\n";
        let paths = added(body, false).unwrap();
        // Both branches are read; the pass appends each path once.
        assert_eq!(
            paths[..4],
            ["/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"]
        );
        assert_eq!(paths.len(), 8);
    }

    #[test]
    fn zsh_style_overwrite_and_add_shell_and_unknown() {
        // microsoft/azurelinux SPECS/zsh/zsh.spec %post (%{_bindir} = /usr/bin).
        let body = "if [ \"$1\" = 1 ]; then\n  if [ ! -f /etc/shells ] ; then\n    echo \"/usr/bin/zsh\" > /etc/shells\n    echo \"/bin/zsh\" >> /etc/shells\n  else\n\
    grep -q \"^/usr/bin/zsh$\" /etc/shells || echo \"/usr/bin/zsh\" >> /etc/shells\n\
    grep -q \"^/bin/zsh$\" /etc/shells || echo \"/bin/zsh\" >> /etc/shells\n  fi\nfi\n";
        assert_eq!(
            added(body, false).unwrap()[..2],
            ["/usr/bin/zsh", "/bin/zsh"]
        );
        assert_eq!(
            added("add-shell /bin/dash /usr/bin/dash", false).unwrap(),
            ["/bin/dash", "/usr/bin/dash"]
        );
        assert_eq!(added("sed -i '/^\\/bin\\/x$/d' /etc/shells", false), None);
        // microsoft/azurelinux SPECS/ksh/ksh.spec %post (its /etc/shells part).
        let ksh = "for s in /bin/ksh /bin/rksh /usr/bin/ksh /usr/bin/rksh\ndo\n  if [ ! -f /etc/shells ]; then\n        echo \"$s\" > /etc/shells\n  else\n        if ! grep -q '^'\"$s\"'$' /etc/shells ; then\n                echo \"$s\" >> /etc/shells\n        fi\n  fi\ndone\n";
        assert_eq!(
            added(ksh, false).unwrap()[..4],
            ["/bin/ksh", "/bin/rksh", "/usr/bin/ksh", "/usr/bin/rksh"]
        );
        assert_eq!(added("echo $SHELL >> /etc/shells", false), None);
    }
}
