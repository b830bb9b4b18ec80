//! The shadow pass: `/etc/shadow` and `/etc/gshadow` as shadow-utils'
//! `pwconv` and `grpconv` make them, when the image has shadow-utils
//! (Fedora, RHEL, Azure Linux) or `shadow` (openSUSE). Azure Linux runs
//! both in shadow-utils' `%post`; without them `passwd`, `su` and PAM's
//! `pam_unix` find no shadow entry.
//!
//! As in shadow's `pwconv.c`: each passwd entry whose password field is
//! not `x`, or that has no shadow entry, gets one holding that field (so a
//! shipped `x` stays `x`: not a hash, so locked), aging from
//! `/etc/login.defs` (`PASS_MIN_DAYS`, `PASS_MAX_DAYS`, `PASS_WARN_AGE`;
//! empty without it), and its passwd field becomes `x`; shadow entries
//! without a passwd entry go. `grpconv.c` does the same for groups with an
//! empty administrator list. Accounts the accounts pass created get what
//! useradd and groupadd write, as they run after pwconv: `!`, and for a
//! user no aging when it is a system account (uid below 1000, `-r`).
//!
//! One deliberate difference: the last-change day is left empty rather
//! than set to the build day, so the image stays reproducible (an empty
//! field only means password aging is off). New files are mode 0440, as
//! shadow's commonio creates them (seen with Debian 12's pwconv); a `chmod MODE /etc/shadow` in the
//! package's own scriptlets (Azure Linux: `chmod 000`) is applied after.

use std::collections::{BTreeMap, BTreeSet};

use super::accounts::{created, runs_on_install};
use super::words;
use super::{Done, EffectError, Input, Report};
use crate::rootfs::accounts as files;
use crate::rootfs::staging::Staging;
use crate::rootfs::Tree;

pub const NAME: &str = "shadow";

/// The packages that carry pwconv/grpconv.
pub const SHADOW_PACKAGES: &[&str] = &["shadow-utils", "shadow"];

/// `login.defs` values pwconv reads (empty when unset).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Aging {
    pub min: String,
    pub max: String,
    pub warn: String,
}

impl Aging {
    pub fn from_login_defs(text: &str) -> Aging {
        let get = |key: &str| {
            text.lines()
                .rev()
                .find_map(|l| {
                    let mut f = l.split_whitespace();
                    (f.next() == Some(key)).then(|| f.next().unwrap_or("").to_string())
                })
                .filter(|v| v.parse::<i64>().is_ok_and(|n| n >= 0))
                .unwrap_or_default()
        };
        Aging {
            min: get("PASS_MIN_DAYS"),
            max: get("PASS_MAX_DAYS"),
            warn: get("PASS_WARN_AGE"),
        }
    }
}

/// pwconv (or grpconv, `group = true`) over `db` and the current shadow
/// text: returns the new db text and the new shadow text. `created`
/// accounts (name → id) get `!` when they have no shadow entry.
pub fn convert(
    db: &str,
    shadow: Option<&str>,
    aging: &Aging,
    created: &BTreeMap<String, u32>,
    group: bool,
) -> (String, String) {
    let shadow_lines: Vec<&str> = shadow.map(|s| s.lines().collect()).unwrap_or_default();
    let name_of = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let mut new_db = String::new();
    let mut names = BTreeSet::new();
    let mut updated: Vec<(String, String)> = Vec::new();
    for line in db.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if line.trim().is_empty() || line.starts_with(['+', '-', '#']) || fields.len() < 3 {
            new_db.push_str(line);
            new_db.push('\n');
            continue;
        }
        let name = fields[0].to_string();
        names.insert(name.clone());
        let existing = shadow_lines.iter().find(|l| name_of(l) == name);
        let pw = fields[1];
        if existing.is_none() || pw != "x" {
            let made = created
                .get(&name)
                .filter(|_| existing.is_none() && pw == "x");
            let pw = if made.is_some() { "!" } else { pw };
            // useradd -r leaves a system account without aging.
            let no_aging = Aging::default();
            let aging = match made {
                Some(&id) if id < 1000 => &no_aging,
                _ => aging,
            };
            let entry = match (existing, group) {
                (Some(e), _) => {
                    let mut f: Vec<&str> = e.split(':').collect();
                    if f.len() > 1 {
                        f[1] = pw;
                    }
                    f.join(":")
                }
                (None, false) => {
                    format!("{name}:{pw}::{}:{}:{}:::", aging.min, aging.max, aging.warn)
                }
                (None, true) => format!("{name}:{pw}::{}", fields.get(3).unwrap_or(&"")),
            };
            updated.push((name, entry));
        }
        fields[1] = "x";
        new_db.push_str(&fields.join(":"));
        new_db.push('\n');
    }
    let mut new_shadow = String::new();
    for l in &shadow_lines {
        let name = name_of(l);
        if !names.contains(&name) {
            continue;
        }
        match updated.iter().position(|(n, _)| *n == name) {
            Some(i) => new_shadow.push_str(&updated.remove(i).1),
            None => new_shadow.push_str(l),
        }
        new_shadow.push('\n');
    }
    for (_, entry) in updated {
        new_shadow.push_str(&entry);
        new_shadow.push('\n');
    }
    (new_db, new_shadow)
}

/// The pass (see the module comment).
pub fn pass(
    tree: &mut Tree,
    stage: &mut Staging,
    input: &Input<'_>,
    report: &mut Report,
) -> Result<(), EffectError> {
    let Some(package) = tree
        .entries
        .values()
        .filter_map(|e| e.package.as_deref())
        .find(|p| SHADOW_PACKAGES.contains(p))
        .map(str::to_string)
    else {
        return Ok(());
    };
    let err = |what: &str, e: files::AccountsError| EffectError {
        pass: NAME,
        message: format!("cannot write /etc/{what}"),
        source: Some(Box::new(e)),
    };
    let aging = Aging::from_login_defs(
        &files::read_text(tree, "etc/login.defs")
            .map_err(|e| err("shadow", e))?
            .unwrap_or_default(),
    );
    let made: Vec<(bool, String, u32)> = report
        .done
        .iter()
        .filter_map(created)
        .map(|(g, n, id)| (g, n.to_string(), id))
        .collect();
    let made_by = |group: bool| -> BTreeMap<String, u32> {
        made.iter()
            .filter(|(g, _, _)| *g == group)
            .map(|(_, n, id)| (n.clone(), *id))
            .collect()
    };
    for (db_path, shadow_path, group) in [
        ("etc/passwd", "etc/shadow", false),
        ("etc/group", "etc/gshadow", true),
    ] {
        let Some(db) = files::read_text(tree, db_path).map_err(|e| err(shadow_path, e))? else {
            continue;
        };
        let shadow = files::read_text(tree, shadow_path).map_err(|e| err(shadow_path, e))?;
        let (new_db, new_shadow) = convert(&db, shadow.as_deref(), &aging, &made_by(group), group);
        if new_db != db {
            files::write_text(tree, stage, db_path, &new_db, 0o644).map_err(|e| err(db_path, e))?;
        }
        if shadow.as_deref() != Some(new_shadow.as_str()) {
            files::write_text(tree, stage, shadow_path, &new_shadow, 0o440)
                .map_err(|e| err(shadow_path, e))?;
            report.done.push(Done {
                pass: NAME,
                package: Some(package.clone()),
                what: format!(
                    "/{shadow_path} written as {} would ({} entries)",
                    if group { "grpconv" } else { "pwconv" },
                    new_shadow.lines().count()
                ),
            });
        }
    }
    let bodies = input
        .scripts
        .iter()
        .filter(|s| s.package == package)
        .flat_map(|s| &s.scriptlets)
        .filter(|s| runs_on_install(s.kind))
        .map(|s| s.body.as_str());
    for (path, mode) in bodies.flat_map(chmods) {
        let resolved = tree.resolve(&path).unwrap_or(path);
        if let Some(e) = tree.entries.get_mut(&resolved) {
            e.mode = mode;
            report.done.push(Done {
                pass: NAME,
                package: Some(package.clone()),
                what: format!("chmod {mode:03o} /{resolved}"),
            });
        }
    }
    Ok(())
}

/// `chmod OCTAL /etc/shadow` (or gshadow) commands in `body`, as
/// (tree path, mode).
pub fn chmods(body: &str) -> Vec<(String, u32)> {
    words::commands(body)
        .iter()
        .filter(|c| c.name() == "chmod" && !c.words.iter().any(|w| w.expands))
        .filter_map(|c| match c.words.as_slice() {
            [_, mode, path] if path.text == "/etc/shadow" || path.text == "/etc/gshadow" => {
                let mode = u32::from_str_radix(&mode.text, 8).ok()?;
                Some((path.text[1..].to_string(), mode & 0o7777))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pwconv_from_passwd_alone() {
        // Azure Linux filesystem's /etc/passwd shape, and login.defs values
        // as Azure Linux shadow-utils ships them.
        let aging = Aging::from_login_defs(
            "# comment\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\n",
        );
        let passwd = "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/dev/null:/bin/false\nsvc:x:999:999::/:/sbin/nologin\n";
        let created = BTreeMap::from([("svc".to_string(), 999), ("app".to_string(), 1000)]);
        let passwd = format!("{passwd}app:x:1000:1000::/home/app:/bin/sh\n");
        let (db, shadow) = convert(&passwd, None, &aging, &created, false);
        assert_eq!(db, passwd);
        // pwconv copies `x`; useradd's system account has no aging.
        assert_eq!(
            shadow,
            "root:x::0:99999:7:::\nbin:x::0:99999:7:::\nsvc:!:::::::\napp:!::0:99999:7:::\n"
        );
    }

    #[test]
    fn pwconv_moves_passwords_keeps_and_drops_entries() {
        let passwd = "root:$6$abc:0:0::/root:/bin/sh\nkept:x:5:5::/:/bin/sh\n";
        let shadow = "kept:!!:19000:0:99999:7:::\nroot:old:1::::::\ngone:!:::::::\n";
        let (db, new) = convert(
            passwd,
            Some(shadow),
            &Aging::default(),
            &BTreeMap::new(),
            false,
        );
        assert_eq!(db, "root:x:0:0::/root:/bin/sh\nkept:x:5:5::/:/bin/sh\n");
        assert_eq!(new, "kept:!!:19000:0:99999:7:::\nroot:$6$abc:1::::::\n");
        assert_eq!(
            Aging::from_login_defs("PASS_MAX_DAYS -1\n"),
            Aging::default()
        );
    }

    #[test]
    fn azure_linux_shadow_utils_post_chmod() {
        // microsoft/azurelinux SPECS/shadow-utils/shadow-utils.spec %post
        // (%{_sbindir} = /usr/sbin, %{_sysconfdir} = /etc).
        let body = "/usr/sbin/pwconv\n/usr/sbin/grpconv\nchmod 000 /etc/shadow\n";
        assert_eq!(chmods(body), [("etc/shadow".to_string(), 0)]);
        assert!(chmods("chmod u+w /etc/shadow\nchmod 600 /etc/motd").is_empty());
    }

    #[test]
    fn grpconv_copies_members() {
        let group = "root:x:0:\nwheel:x:10:alice,bob\n";
        let made = BTreeMap::from([("app".to_string(), 999)]);
        let group = format!("{group}app:x:999:\n");
        let (db, gshadow) = convert(&group, None, &Aging::default(), &made, true);
        assert_eq!(db, group);
        assert_eq!(gshadow, "root:x::\nwheel:x::alice,bob\napp:!::\n");
    }
}
