//! Users and groups without scriptlets: `sysusers.d` files shipped by the
//! installed packages and the recipe's `[accounts]`, written into the
//! image's own `etc/passwd`, `etc/group` (and `etc/shadow`, `etc/gshadow`
//! when those exist, with locked `!` passwords).
//!
//! Fedora packages create their accounts with `%sysusers_create_compat` in
//! `%pre` (never run here) and ship the same declaration as
//! `usr/lib/sysusers.d/NAME.conf`; reading that file is how this module
//! replaces the scriptlet. Lines follow sysusers.d(5): `u`, `g`, `m` and `r`
//! are honoured; an existing account of the same name is never changed.
//!
//! Ids are deterministic. Explicit ids are honoured when free. The rest are
//! allocated after all explicit ones, in name order: sysusers.d accounts
//! from 999 downwards (systemd's system range, narrowed by an `r` line),
//! recipe accounts from 1000 upwards (the first regular-user id). A `u`
//! line without its own group gets a group of the same name with the same
//! id when that id is free in both files, as systemd-sysusers does.
//!
//! The account files are never edited in place: the new text goes to a new
//! staging blob and the tree entry points at it, so the package's original
//! blob (and any host file) is untouched.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::staging::Staging;
use super::tree::implied_dir;
use super::{BlobRef, Entry, Kind, Tree};

/// Accounts a build asks for (the recipe's `[accounts]`, converted by the
/// pipeline): unset fields take the defaults of [`requested`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub users: Vec<NewUser>,
    pub groups: Vec<NewGroup>,
}

/// A user to create; see [`Requested`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub uid: Option<u32>,
    /// The primary group's id; without it, a group named like the user.
    pub gid: Option<u32>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

/// A group to create, with the users added to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    pub gid: Option<u32>,
    pub members: Vec<String>,
}

/// The build's accounts as a request: automatic ids from 1000 upwards; a
/// user's home defaults to `/`, its shell to `/sbin/nologin`.
pub fn requested(accounts: &Requested) -> Request {
    let mut req = Request::new("recipe [accounts]", RECIPE_RANGE, false);
    for u in &accounts.users {
        req.users.push(UserRequest {
            name: u.name.clone(),
            uid: u.uid,
            group: u.gid.map(GroupRef::Id),
            gecos: u.gecos.clone().unwrap_or_default(),
            home: u.home.clone().unwrap_or_else(|| "/".into()),
            shell: u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into()),
        });
    }
    for g in &accounts.groups {
        req.groups.push(GroupRequest {
            name: g.name.clone(),
            gid: g.gid,
        });
        for m in &g.members {
            req.members.push((m.clone(), g.name.clone()));
        }
    }
    req
}

/// Where package-shipped sysusers.d files live; `etc/sysusers.d` overrides a
/// file of the same name (as with systemd), a symlink to `/dev/null` masks it.
pub const SYSUSERS_DIRS: &[&str] = &["usr/lib/sysusers.d", "etc/sysusers.d"];

/// The system range sysusers.d allocates in, downwards (systemd's defaults).
pub const SYSTEM_RANGE: (u32, u32) = (1, 999);
/// The range recipe accounts without an explicit id are allocated in, upwards.
pub const RECIPE_RANGE: (u32, u32) = (1000, 59999);

/// A group a user belongs to, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Id(u32),
    Name(String),
}

/// A user to create when no user of that name exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRequest {
    pub name: String,
    pub uid: Option<u32>,
    /// The primary group; `None` means a group named like the user.
    pub group: Option<GroupRef>,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A group to create when no group of that name exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRequest {
    pub name: String,
    pub gid: Option<u32>,
}

/// One source's accounts (all sysusers.d files, or the recipe), with the
/// range its automatic ids come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub users: Vec<UserRequest>,
    pub groups: Vec<GroupRequest>,
    /// `(user, group)`: add the user to the group's member list.
    pub members: Vec<(String, String)>,
    /// Inclusive range for automatic ids.
    pub range: (u32, u32),
    /// Allocate from the top of the range down (sysusers) or bottom up.
    pub downward: bool,
    /// An explicit id that is taken falls back to an allocated one
    /// (sysusers, and scriptlets whose guards make useradd's failure
    /// harmless) instead of failing the build (the recipe's ids are exact).
    pub fallback: bool,
    /// Where the request came from, for messages.
    pub source: String,
}

impl Request {
    pub fn new(source: &str, range: (u32, u32), downward: bool) -> Request {
        Request {
            users: Vec::new(),
            groups: Vec::new(),
            members: Vec::new(),
            range,
            downward,
            fallback: downward,
            source: source.to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.members.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{file}:{line}: {message}\n  hint: see sysusers.d(5) for the line format")]
    Sysusers {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read the image's /{path} from staging blob {blob}")]
    Read {
        path: String,
        blob: BlobRef,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the new /{path} to the staging directory")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("/{path} in the image is a {kind}, not a regular file; cannot add accounts to it")]
    NotAFile { path: String, kind: &'static str },
    #[error("{source_name}: {what} {id} for `{name}` is already used by `{other}`\n  hint: pick a free id or leave it out to have one allocated")]
    IdTaken {
        source_name: String,
        what: &'static str,
        id: u32,
        name: String,
        other: String,
    },
    #[error("{source_name}: no free {what} left in {lo}..={hi} for `{name}`")]
    RangeFull {
        source_name: String,
        what: &'static str,
        lo: u32,
        hi: u32,
        name: String,
    },
    #[error("{source_name}: user `{user}` names group {group}, which does not exist\n  hint: add it under [[accounts.groups]] or leave the group out to get one named like the user")]
    UnknownGroup {
        source_name: String,
        user: String,
        group: String,
    },
    #[error("image.user `{spec}`: the image has no {what} `{name}` in /etc/{file}\n  hint: create it in [accounts] (or a package's sysusers.d file), or use a numeric id")]
    UnknownUser {
        spec: String,
        what: &'static str,
        name: String,
        file: &'static str,
    },
}

/// Parse one sysusers.d file into `req` (`file` names it for errors).
pub fn parse_sysusers(text: &str, file: &str, req: &mut Request) -> Result<(), AccountsError> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| AccountsError::Sysusers {
            file: file.to_string(),
            line: n + 1,
            message,
        };
        let fields = split_fields(line).map_err(|m| err(m.to_string()))?;
        let field = |i: usize| fields.get(i).map(String::as_str).filter(|f| *f != "-");
        let (Some(kind), Some(name)) = (fields.first(), fields.get(1)) else {
            return Err(err("expected a type and a name".into()));
        };
        match kind.as_str() {
            "u" | "u!" => {
                let (uid, group) = parse_user_id(field(2)).map_err(err)?;
                req.users.push(UserRequest {
                    name: name.clone(),
                    uid,
                    group,
                    gecos: field(3).unwrap_or("").to_string(),
                    home: field(4).unwrap_or("/").to_string(),
                    shell: field(5).unwrap_or("/usr/sbin/nologin").to_string(),
                });
            }
            "g" => {
                let gid = match field(2) {
                    None => None,
                    // A path means "the group owning this file": unknowable here.
                    Some(p) if p.starts_with('/') => None,
                    Some(id) => Some(parse_id(id).map_err(err)?),
                };
                req.groups.push(GroupRequest {
                    name: name.clone(),
                    gid,
                });
            }
            "m" => {
                let group = field(2).ok_or_else(|| err("`m` needs a user and a group".into()))?;
                req.members.push((name.clone(), group.to_string()));
            }
            "r" => {
                let range = field(2).ok_or_else(|| err("`r` needs a range".into()))?;
                let (lo, hi) = match range.split_once('-') {
                    Some((lo, hi)) => (parse_id(lo).map_err(err)?, parse_id(hi).map_err(err)?),
                    None => {
                        let id = parse_id(range).map_err(err)?;
                        (id, id)
                    }
                };
                if lo > hi || lo == 0 {
                    return Err(err(format!("invalid range `{range}`")));
                }
                req.range = (lo, hi);
            }
            other => return Err(err(format!("unknown line type `{other}`"))),
        }
    }
    Ok(())
}

fn parse_id(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|&id| id < 65535)
        .ok_or_else(|| format!("`{s}` is not a valid id"))
}

/// `u`'s id field: `-`, `UID`, `UID:GID`, `UID:GROUP`, `-:GROUP` or a path.
fn parse_user_id(field: Option<&str>) -> Result<(Option<u32>, Option<GroupRef>), String> {
    let Some(field) = field else {
        return Ok((None, None));
    };
    if field.starts_with('/') {
        return Ok((None, None));
    }
    let (uid, group) = match field.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (field, None),
    };
    let uid = if uid == "-" {
        None
    } else {
        Some(parse_id(uid)?)
    };
    let group = match group {
        None => None,
        Some(g) if g.bytes().all(|b| b.is_ascii_digit()) => Some(GroupRef::Id(parse_id(g)?)),
        Some(g) => Some(GroupRef::Name(g.to_string())),
    };
    Ok((uid, group))
}

/// Whitespace-separated fields, double quotes grouping (sysusers' quoting).
fn split_fields(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(fields);
        };
        let mut field = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quote"),
                    Some(c) if c == first => break,
                    Some('\\') => field.extend(chars.next()),
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
    }
}

/// The sysusers.d files in the tree, parsed in file-name order (an
/// `etc/sysusers.d` file replaces the `usr/lib` one of the same name).
pub fn sysusers_request(tree: &Tree) -> Result<Request, AccountsError> {
    let mut files: BTreeMap<String, Option<(String, BlobRef)>> = BTreeMap::new();
    for dir in SYSUSERS_DIRS {
        let dir = tree.resolve(dir).unwrap_or_else(|_| dir.to_string());
        let prefix = format!("{dir}/");
        for (path, e) in tree.entries.range(prefix.clone()..) {
            let Some(name) = path.strip_prefix(&prefix) else {
                break;
            };
            if name.contains('/') || !name.ends_with(".conf") {
                continue;
            }
            let file = match &e.kind {
                Kind::File { blob, .. } => Some((path.clone(), blob.clone())),
                // A symlink (to /dev/null) masks the file of that name.
                _ => None,
            };
            files.insert(name.to_string(), file);
        }
    }
    let mut req = Request::new("sysusers.d", SYSTEM_RANGE, true);
    for (path, blob) in files.into_values().flatten() {
        let text = read_blob(&path, &blob)?;
        parse_sysusers(&text, &format!("/{path}"), &mut req)?;
    }
    Ok(req)
}

/// Whether `package` placed a sysusers.d file in the tree.
pub fn ships_sysusers(tree: &Tree, package: &str) -> bool {
    SYSUSERS_DIRS.iter().any(|dir| {
        let prefix = format!("{dir}/");
        tree.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .any(|(_, e)| e.package.as_deref() == Some(package))
    })
}

fn read_blob(path: &str, blob: &BlobRef) -> Result<String, AccountsError> {
    let bytes = blob.read_to_vec().map_err(|source| AccountsError::Read {
        path: path.to_string(),
        blob: blob.clone(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// One `name:x:id:...` database: its lines as found, plus what was added.
#[derive(Debug, Default)]
struct Db {
    lines: Vec<String>,
    /// Name → (id, line index).
    by_name: BTreeMap<String, (u32, usize)>,
    /// Id → name.
    by_id: BTreeMap<u32, String>,
    changed: bool,
}

impl Db {
    fn parse(text: &str) -> Db {
        let mut db = Db::default();
        for line in text.lines() {
            db.push_line(line.to_string());
        }
        db.changed = false;
        db
    }

    fn push_line(&mut self, line: String) {
        let mut fields = line.split(':');
        if let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) {
            if let Ok(id) = id.trim().parse::<u32>() {
                // The first line wins, as with getpwnam.
                self.by_name
                    .entry(name.to_string())
                    .or_insert((id, self.lines.len()));
                self.by_id.entry(id).or_insert_with(|| name.to_string());
            }
        }
        self.lines.push(line);
        self.changed = true;
    }

    fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).map(|&(id, _)| id)
    }

    fn line(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(|&(_, i)| self.lines[i].as_str())
    }

    fn text(&self) -> String {
        let mut out = self.lines.join("\n");
        out.push('\n');
        out
    }
}

/// The image's account files while accounts are being added.
#[derive(Debug)]
struct Files {
    passwd: Db,
    group: Db,
    /// Present only when the image has the file.
    shadow: Option<Db>,
    gshadow: Option<Db>,
    /// Lines to add to a group's member list (group → users, in order).
    members: BTreeMap<String, Vec<String>>,
}

impl Files {
    fn add_group(&mut self, name: &str, gid: u32) {
        self.group.push_line(format!("{name}:x:{gid}:"));
        if let Some(gs) = &mut self.gshadow {
            gs.push_line(format!("{name}:!::"));
        }
    }

    fn add_user(&mut self, u: &UserRequest, uid: u32, gid: u32) {
        self.passwd.push_line(format!(
            "{}:x:{uid}:{gid}:{}:{}:{}",
            u.name, u.gecos, u.home, u.shell
        ));
        if let Some(s) = &mut self.shadow {
            s.push_line(format!("{}:!:::::::", u.name));
        }
    }

    fn id_free_for_both(&self, id: u32) -> bool {
        !self.passwd.by_id.contains_key(&id) && !self.group.by_id.contains_key(&id)
    }

    /// Add `user` to `group`'s member list (4th field of group and gshadow).
    fn add_member(&mut self, user: &str, group: &str) {
        let current: Vec<&str> = self
            .group
            .line(group)
            .and_then(|l| l.split(':').nth(3))
            .map(|m| m.split(',').filter(|m| !m.is_empty()).collect())
            .unwrap_or_default();
        let pending = self.members.entry(group.to_string()).or_default();
        if !current.contains(&user) && !pending.iter().any(|m| m == user) {
            pending.push(user.to_string());
        }
    }

    fn apply_members(&mut self) {
        for (group, users) in std::mem::take(&mut self.members) {
            if users.is_empty() {
                continue;
            }
            for (db, field) in [(Some(&mut self.group), 3), (self.gshadow.as_mut(), 3)] {
                let Some(db) = db else { continue };
                // By name prefix: gshadow lines have no id to index them by.
                let prefix = format!("{group}:");
                let Some(i) = db.lines.iter().position(|l| l.starts_with(&prefix)) else {
                    continue;
                };
                let mut fields: Vec<String> = db.lines[i].split(':').map(str::to_string).collect();
                fields.resize(fields.len().max(field + 1), String::new());
                let mut list: Vec<String> = fields[field]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect();
                list.extend(users.iter().cloned());
                fields[field] = list.join(",");
                db.lines[i] = fields.join(":");
                db.changed = true;
            }
        }
    }
}

/// What [`apply`] created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountsReport {
    /// `(name, uid, gid)` of each created user.
    pub users: Vec<(String, u32, u32)>,
    /// `(name, gid)` of each created group.
    pub groups: Vec<(String, u32)>,
}

/// Allocate a free id in `req`'s range (`free` says which ids are usable).
fn allocate(
    req: &Request,
    what: &'static str,
    name: &str,
    free: impl Fn(u32) -> bool,
) -> Result<u32, AccountsError> {
    let (lo, hi) = req.range;
    let found = if req.downward {
        (lo..=hi).rev().find(|&id| free(id))
    } else {
        (lo..=hi).find(|&id| free(id))
    };
    found.ok_or_else(|| AccountsError::RangeFull {
        source_name: req.source.clone(),
        what,
        lo,
        hi,
        name: name.to_string(),
    })
}

/// An explicit id, or `None` when taken and the source allows falling back
/// to an automatic one (see [`Request::fallback`]).
fn explicit(
    req: &Request,
    db: &Db,
    what: &'static str,
    id: u32,
    name: &str,
) -> Result<Option<u32>, AccountsError> {
    match db.by_id.get(&id) {
        None => Ok(Some(id)),
        Some(_) if req.fallback => Ok(None),
        Some(other) => Err(AccountsError::IdTaken {
            source_name: req.source.clone(),
            what,
            id,
            name: name.to_string(),
            other: other.clone(),
        }),
    }
}

/// `want` if free in `db` (see [`explicit`]), else an allocated id free in `db`.
fn pick(
    req: &Request,
    db: &Db,
    what: &'static str,
    name: &str,
    want: Option<u32>,
) -> Result<u32, AccountsError> {
    let wanted = match want {
        Some(id) => explicit(req, db, what, id, name)?,
        None => None,
    };
    match wanted {
        Some(id) => Ok(id),
        None => allocate(req, what, name, |id| !db.by_id.contains_key(&id)),
    }
}

fn process(
    files: &mut Files,
    req: &Request,
    report: &mut AccountsReport,
) -> Result<(), AccountsError> {
    // Groups first (users may name them), explicit ids before automatic
    // ones so an allocation never takes an id asked for later; automatic
    // ones in name order so the same inputs always give the same ids.
    let mut groups: Vec<&GroupRequest> = req.groups.iter().collect();
    groups.sort_by(|a, b| (a.gid.is_none(), &a.name).cmp(&(b.gid.is_none(), &b.name)));
    for g in groups {
        if files.group.id(&g.name).is_some() {
            continue;
        }
        let gid = pick(req, &files.group, "gid", &g.name, g.gid)?;
        files.add_group(&g.name, gid);
        report.groups.push((g.name.clone(), gid));
    }

    let mut users: Vec<&UserRequest> = req.users.iter().collect();
    users.sort_by(|a, b| (a.uid.is_none(), &a.name).cmp(&(b.uid.is_none(), &b.name)));
    for u in users {
        if files.passwd.id(&u.name).is_some() {
            continue;
        }
        let wanted = match u.uid {
            Some(id) => explicit(req, &files.passwd, "uid", id, &u.name)?,
            None => None,
        };
        let (uid, gid) = match &u.group {
            Some(GroupRef::Id(gid)) => {
                let uid = pick(req, &files.passwd, "uid", &u.name, wanted)?;
                if !files.group.by_id.contains_key(gid) {
                    // A numeric primary group that does not exist yet: one
                    // named like the user (so the gid has a name in ls -l).
                    files.add_group(&u.name, *gid);
                    report.groups.push((u.name.clone(), *gid));
                }
                (uid, *gid)
            }
            Some(GroupRef::Name(group)) => {
                let gid = files
                    .group
                    .id(group)
                    .ok_or_else(|| AccountsError::UnknownGroup {
                        source_name: req.source.clone(),
                        user: u.name.clone(),
                        group: format!("`{group}`"),
                    })?;
                let uid = pick(req, &files.passwd, "uid", &u.name, wanted)?;
                (uid, gid)
            }
            None => match files.group.id(&u.name) {
                Some(gid) => {
                    let uid = pick(req, &files.passwd, "uid", &u.name, wanted)?;
                    (uid, gid)
                }
                None => {
                    // The user's own group, with the same id when it is free.
                    let id = match wanted {
                        Some(uid) if !files.group.by_id.contains_key(&uid) => uid,
                        Some(uid) => {
                            let gid = allocate(req, "gid", &u.name, |id| {
                                !files.group.by_id.contains_key(&id)
                            })?;
                            files.add_group(&u.name, gid);
                            report.groups.push((u.name.clone(), gid));
                            files.add_user(u, uid, gid);
                            report.users.push((u.name.clone(), uid, gid));
                            continue;
                        }
                        None => allocate(req, "uid", &u.name, |id| files.id_free_for_both(id))?,
                    };
                    files.add_group(&u.name, id);
                    report.groups.push((u.name.clone(), id));
                    (id, id)
                }
            },
        };
        files.add_user(u, uid, gid);
        report.users.push((u.name.clone(), uid, gid));
    }

    for (user, group) in &req.members {
        if files.group.id(group).is_none() {
            // sysusers creates a group named in an `m` line implicitly.
            let gid = allocate(req, "gid", group, |id| !files.group.by_id.contains_key(&id))?;
            files.add_group(group, gid);
            report.groups.push((group.clone(), gid));
        }
        files.add_member(user, group);
    }
    files.apply_members();
    Ok(())
}

/// Read `path`'s account database from the tree (`None` when absent).
fn read_db(tree: &Tree, path: &str) -> Result<Option<Db>, AccountsError> {
    Ok(read_text(tree, path)?.map(|text| Db::parse(&text)))
}

/// Write `db` to a new blob and point `path`'s entry at it (creating the
/// entry, 0644 root:root, when the image had no such file).
fn write_db(
    tree: &mut Tree,
    staging: &mut Staging,
    path: &str,
    db: &Db,
) -> Result<(), AccountsError> {
    write_text(tree, staging, path, &db.text(), 0o644)
}

/// The text of the tree's regular file `path` (following symlinks), `None`
/// when absent.
pub fn read_text(tree: &Tree, path: &str) -> Result<Option<String>, AccountsError> {
    let resolved = tree.resolve(path).unwrap_or_else(|_| path.to_string());
    match tree.entries.get(&resolved).map(|e| &e.kind) {
        None => Ok(None),
        Some(Kind::File { blob, .. }) => read_blob(path, blob).map(Some),
        Some(other) => Err(AccountsError::NotAFile {
            path: path.to_string(),
            kind: match other {
                Kind::Dir => "directory",
                Kind::Symlink { .. } => "symlink",
                _ => "special file",
            },
        }),
    }
}

/// Point `path`'s entry at a new blob holding `text`, keeping the entry's
/// metadata; a new entry is root:root with `mode`.
pub fn write_text(
    tree: &mut Tree,
    staging: &mut Staging,
    path: &str,
    text: &str,
    mode: u32,
) -> Result<(), AccountsError> {
    let write_err = |source| AccountsError::Write {
        path: path.to_string(),
        source,
    };
    let mut w = staging.create_blob().map_err(write_err)?;
    w.write_all(text.as_bytes()).map_err(write_err)?;
    let blob = w.finish().map_err(write_err)?;
    staging.record(&blob);
    let resolved = tree.resolve(path).unwrap_or_else(|_| path.to_string());
    let kind = Kind::File {
        blob: blob.blob,
        size: blob.size,
        link_id: None,
    };
    match tree.entries.get_mut(&resolved) {
        Some(e) => e.kind = kind,
        None => {
            tree.ensure_parents(&resolved);
            tree.entries.insert(
                resolved,
                Entry {
                    kind,
                    mode,
                    ..implied_dir()
                },
            );
        }
    }
    Ok(())
}

/// Create the accounts of `requests` (in order: sysusers.d first, then the
/// recipe) in the tree's account files. Files are rewritten only when
/// something was added.
pub fn apply(
    tree: &mut Tree,
    staging: &mut Staging,
    requests: &[Request],
) -> Result<AccountsReport, AccountsError> {
    let mut report = AccountsReport::default();
    if requests.iter().all(Request::is_empty) {
        return Ok(report);
    }
    let mut files = Files {
        passwd: read_db(tree, "etc/passwd")?.unwrap_or_default(),
        group: read_db(tree, "etc/group")?.unwrap_or_default(),
        shadow: read_db(tree, "etc/shadow")?,
        gshadow: read_db(tree, "etc/gshadow")?,
        members: BTreeMap::new(),
    };
    // An image without account files still needs root to be a name.
    if files.passwd.lines.is_empty() {
        files
            .passwd
            .push_line("root:x:0:0:root:/root:/bin/sh".into());
    }
    if files.group.lines.is_empty() {
        files.group.push_line("root:x:0:".into());
    }
    for req in requests {
        process(&mut files, req, &mut report)?;
    }
    for (path, db) in [
        ("etc/passwd", Some(&files.passwd)),
        ("etc/group", Some(&files.group)),
        ("etc/shadow", files.shadow.as_ref()),
        ("etc/gshadow", files.gshadow.as_ref()),
    ] {
        if let Some(db) = db.filter(|db| db.changed) {
            write_db(tree, staging, path, db)?;
        }
    }
    Ok(report)
}

/// The image config's `User` for the recipe's `spec` (`user`, `user:group`,
/// numeric or by name), with names resolved against the image's final
/// `etc/passwd` and `etc/group` to `uid:gid`.
///
/// Runtimes could resolve names themselves, but a numeric user is what
/// Kubernetes' `runAsNonRoot` can verify without starting the container,
/// and resolving here turns a typo into a build error instead of a
/// container that fails at start.
pub fn resolve_user(tree: &Tree, spec: &str) -> Result<String, AccountsError> {
    let passwd = read_db(tree, "etc/passwd")?.unwrap_or_default();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unknown = |what, name: &str, file| AccountsError::UnknownUser {
        spec: spec.to_string(),
        what,
        name: name.to_string(),
        file,
    };
    let (uid, primary_gid) = if numeric(user) {
        (user.to_string(), None)
    } else {
        let line = passwd
            .line(user)
            .ok_or_else(|| unknown("user", user, "passwd"))?;
        let mut fields = line.split(':').skip(2);
        let uid = fields.next().unwrap_or("0").trim().to_string();
        let gid = fields.next().map(|g| g.trim().to_string());
        (uid, gid)
    };
    let gid = match group {
        Some(g) if numeric(g) => Some(g.to_string()),
        Some(g) => {
            let groups = read_db(tree, "etc/group")?.unwrap_or_default();
            Some(
                groups
                    .id(g)
                    .ok_or_else(|| unknown("group", g, "group"))?
                    .to_string(),
            )
        }
        None => primary_gid,
    };
    Ok(match gid {
        Some(gid) => format!("{uid}:{gid}"),
        None => uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::generated::put_file;

    fn parse(text: &str) -> Request {
        let mut req = Request::new("sysusers.d", SYSTEM_RANGE, true);
        parse_sysusers(text, "test.conf", &mut req).unwrap();
        req
    }

    struct Env {
        _dir: tempfile::TempDir,
        staging: Staging,
        tree: Tree,
    }

    impl Env {
        fn new(files: &[(&str, &str)]) -> Env {
            let dir = tempfile::tempdir().unwrap();
            let mut staging = Staging::new(dir.path().join("staging")).unwrap();
            let mut tree = Tree::default();
            for (path, text) in files {
                let mode = if path.contains("shadow") { 0 } else { 0o644 };
                let at = put_file(&mut tree, &mut staging, path, text.as_bytes(), mode, 0).unwrap();
                tree.entries.get_mut(&at).unwrap().package = Some("setup".into());
            }
            Env {
                _dir: dir,
                staging,
                tree,
            }
        }

        fn text(&self, path: &str) -> String {
            match &self.tree.entries[path].kind {
                Kind::File { blob, .. } => blob.read_to_string().unwrap(),
                k => panic!("{path} is {k:?}"),
            }
        }
    }

    const SETUP: &[(&str, &str)] = &[
        ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n"),
        ("etc/group", "root:x:0:\nbin:x:1:\nwheel:x:10:\nnobody:x:65534:\n"),
        ("etc/shadow", "root:!locked::0:99999:7:::\n"),
        ("etc/gshadow", "root:!::\nwheel:!::\n"),
    ];

    #[test]
    fn parses_sysusers_lines() {
        let req = parse(
            "# comment\n\
             u nginx - \"Nginx web server\" /var/lib/nginx /sbin/nologin\n\
             u tss 59:tss 'TPM user' /dev/null\n\
             u! dbus 81 \"System Message Bus\"\n\
             g render -\n\
             g input 104\n\
             m nginx render\n\
             r - 500-900\n",
        );
        assert_eq!(req.users.len(), 3);
        assert_eq!(
            req.users[0],
            UserRequest {
                name: "nginx".into(),
                uid: None,
                group: None,
                gecos: "Nginx web server".into(),
                home: "/var/lib/nginx".into(),
                shell: "/sbin/nologin".into(),
            }
        );
        assert_eq!(req.users[1].uid, Some(59));
        assert_eq!(req.users[1].group, Some(GroupRef::Name("tss".into())));
        assert_eq!(req.users[1].gecos, "TPM user");
        assert_eq!(req.users[2].home, "/");
        assert_eq!(req.users[2].shell, "/usr/sbin/nologin");
        assert_eq!(
            req.groups,
            [
                GroupRequest {
                    name: "render".into(),
                    gid: None
                },
                GroupRequest {
                    name: "input".into(),
                    gid: Some(104)
                }
            ]
        );
        assert_eq!(req.members, [("nginx".to_string(), "render".to_string())]);
        assert_eq!(req.range, (500, 900));
    }

    #[test]
    fn rejects_bad_lines_with_position() {
        let mut req = Request::new("sysusers.d", SYSTEM_RANGE, true);
        let err = parse_sysusers("g ok\nx what\n", "/usr/lib/sysusers.d/a.conf", &mut req)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/usr/lib/sysusers.d/a.conf:2: unknown line type `x`"),
            "{err}"
        );
        let err = parse_sysusers("u a \"open\n", "f", &mut req)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unterminated quote"), "{err}");
        let err = parse_sysusers("u a 70000\n", "f", &mut req)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`70000` is not a valid id"), "{err}");
    }

    #[test]
    fn creates_sysusers_accounts_downwards_with_matching_group() {
        let mut env = Env::new(SETUP);
        let req = parse(
            "u nginx - \"Nginx web server\" /var/lib/nginx /sbin/nologin\n\
             u apache 48 \"Apache\" /usr/share/httpd /sbin/nologin\n\
             g render -\n\
             m nginx wheel\n",
        );
        let report = apply(&mut env.tree, &mut env.staging, &[req]).unwrap();
        // Explicit first (apache 48), then automatic in name order: the
        // group render (999), then nginx with uid = gid = 998.
        assert_eq!(
            report.users,
            [
                ("apache".to_string(), 48, 48),
                ("nginx".to_string(), 998, 998)
            ]
        );
        assert_eq!(
            report.groups,
            [
                ("render".to_string(), 999),
                ("apache".to_string(), 48),
                ("nginx".to_string(), 998)
            ]
        );
        let passwd = env.text("etc/passwd");
        assert!(
            passwd.starts_with("root:x:0:0:root:/root:/bin/bash\n"),
            "{passwd}"
        );
        assert!(
            passwd.ends_with(
                "apache:x:48:48:Apache:/usr/share/httpd:/sbin/nologin\n\
             nginx:x:998:998:Nginx web server:/var/lib/nginx:/sbin/nologin\n"
            ),
            "{passwd}"
        );
        let group = env.text("etc/group");
        assert!(group.contains("\nwheel:x:10:nginx\n"), "{group}");
        assert!(
            group.ends_with("render:x:999:\napache:x:48:\nnginx:x:998:\n"),
            "{group}"
        );
        let shadow = env.text("etc/shadow");
        assert!(
            shadow.ends_with("apache:!:::::::\nnginx:!:::::::\n"),
            "{shadow}"
        );
        let gshadow = env.text("etc/gshadow");
        assert!(gshadow.contains("wheel:!::nginx\n"), "{gshadow}");
        assert!(gshadow.ends_with("nginx:!::\n"), "{gshadow}");
        // The entry keeps its metadata; only the content changed.
        assert_eq!(env.tree.entries["etc/shadow"].mode, 0);
        assert_eq!(
            env.tree.entries["etc/passwd"].package.as_deref(),
            Some("setup")
        );
    }

    #[test]
    fn same_inputs_same_ids_whatever_the_order() {
        let a = parse("u zed -\nu alpha -\ng mid -\n");
        let b = parse("g mid -\nu alpha -\nu zed -\n");
        let mut env_a = Env::new(SETUP);
        let mut env_b = Env::new(SETUP);
        let ra = apply(&mut env_a.tree, &mut env_a.staging, &[a]).unwrap();
        let rb = apply(&mut env_b.tree, &mut env_b.staging, &[b]).unwrap();
        assert_eq!(ra, rb);
        assert_eq!(
            ra.users,
            [
                ("alpha".to_string(), 998, 998),
                ("zed".to_string(), 997, 997)
            ]
        );
    }

    #[test]
    fn existing_accounts_are_kept_and_taken_ids_fall_back() {
        let mut env = Env::new(SETUP);
        // bin exists (kept as is); uid 1 is taken, so sysusers allocates.
        let req = parse("u bin 5 \"other\"\nu daemon 1\n");
        let report = apply(&mut env.tree, &mut env.staging, &[req]).unwrap();
        assert_eq!(report.users, [("daemon".to_string(), 999, 999)]);
        assert!(env
            .text("etc/passwd")
            .contains("bin:x:1:1:bin:/bin:/sbin/nologin\n"));
    }

    #[test]
    fn recipe_accounts_upwards_and_exact() {
        let mut env = Env::new(SETUP);
        let mut req = Request::new("recipe [accounts]", RECIPE_RANGE, false);
        req.groups.push(GroupRequest {
            name: "app".into(),
            gid: None,
        });
        req.users.push(UserRequest {
            name: "svc".into(),
            uid: None,
            group: Some(GroupRef::Name("app".into())),
            gecos: String::new(),
            home: "/home/svc".into(),
            shell: "/bin/sh".into(),
        });
        req.users.push(UserRequest {
            name: "fixed".into(),
            uid: Some(1000),
            group: Some(GroupRef::Id(2000)),
            gecos: String::new(),
            home: "/".into(),
            shell: "/bin/sh".into(),
        });
        req.members.push(("svc".into(), "wheel".into()));
        let report = apply(&mut env.tree, &mut env.staging, &[req.clone()]).unwrap();
        assert_eq!(
            report.users,
            [
                ("fixed".to_string(), 1000, 2000),
                ("svc".to_string(), 1001, 1000)
            ]
        );
        assert!(env.text("etc/group").contains("fixed:x:2000:\n"));

        // An explicit recipe id that is taken is an error naming both.
        let mut env = Env::new(SETUP);
        req.users[1].uid = Some(1);
        let err = apply(&mut env.tree, &mut env.staging, &[req])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("uid 1 for `fixed` is already used by `bin`"),
            "{err}"
        );
    }

    #[test]
    fn reads_sysusers_files_from_the_tree_with_etc_override() {
        let env = Env::new(&[
            ("usr/lib/sysusers.d/a.conf", "u a -\n"),
            ("usr/lib/sysusers.d/b.conf", "u b -\n"),
            ("etc/sysusers.d/b.conf", "u b2 -\n"),
            ("usr/lib/sysusers.d/readme", "not a conf\n"),
        ]);
        let req = sysusers_request(&env.tree).unwrap();
        let names: Vec<&str> = req.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "b2"]);
        assert!(ships_sysusers(&env.tree, "setup"));
        assert!(!ships_sysusers(&env.tree, "nginx"));
    }

    #[test]
    fn creates_account_files_when_missing() {
        let mut env = Env::new(&[]);
        let report = apply(&mut env.tree, &mut env.staging, &[parse("u app -\n")]).unwrap();
        assert_eq!(report.users, [("app".to_string(), 999, 999)]);
        assert_eq!(
            env.text("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:999:999::/:/usr/sbin/nologin\n"
        );
        assert_eq!(env.tree.entries["etc/passwd"].mode, 0o644);
        assert!(!env.tree.entries.contains_key("etc/shadow"));
    }

    #[test]
    fn resolves_image_user() {
        let mut env = Env::new(SETUP);
        apply(&mut env.tree, &mut env.staging, &[parse("u nginx -\n")]).unwrap();
        assert_eq!(resolve_user(&env.tree, "nginx").unwrap(), "999:999");
        assert_eq!(resolve_user(&env.tree, "nginx:wheel").unwrap(), "999:10");
        assert_eq!(resolve_user(&env.tree, "1234").unwrap(), "1234");
        assert_eq!(resolve_user(&env.tree, "1234:5").unwrap(), "1234:5");
        assert_eq!(resolve_user(&env.tree, "root").unwrap(), "0:0");
        let err = resolve_user(&env.tree, "ngnix").unwrap_err().to_string();
        assert!(err.contains("no user `ngnix` in /etc/passwd"), "{err}");
        let err = resolve_user(&env.tree, "nginx:nope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no group `nope` in /etc/group"), "{err}");
    }
}
