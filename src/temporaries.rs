//! Temporaries that outlive no build: removed on SIGINT/SIGTERM, swept by
//! the next run after a SIGKILL.
//!
//! Every staging directory and temp file beside an output or in `$TMPDIR`
//! is created through [`dir_in`]/[`file_in`], which name it
//! `<base><pid>.<start>-XXXXXX` and record it. `<start>` is the process's
//! start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot): pid
//! and start time together name one process even after the pid is reused.
//! The name is the owner marker, written by the same `mkdir`/`open` that
//! creates the temporary, so no kill can leave one without it.
//!
//! - SIGINT/SIGTERM: [`remove_on_interrupt`] blocks both signals in every
//!   thread and waits for them in its own thread with `sigwait`, so the
//!   clean-up runs as ordinary code (locks, `remove_dir_all`), not in a
//!   signal handler; it removes every recorded temporary and exits with
//!   128 + the signal (130, 143). An interrupt that arrives while outputs
//!   are being renamed into place waits for [`commit_section`] to end, so
//!   the outputs are either all old or all new. `main` calls
//!   [`defer_to_interrupt`] before it reports: a build that fails because
//!   its temporaries vanished under it must not exit 1 before the handler.
//! - SIGKILL: nothing runs. [`sweep`] removes, in one directory, entries
//!   named by our pattern whose owner process is gone, and never anything
//!   else: no name match, a live owner, or an unreadable `/proc` keeps it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tempfile::{NamedTempFile, TempDir};

/// Temporaries this process created (some may be gone or renamed already).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Held while outputs are renamed into place; an interrupt waits for it.
static COMMIT: Mutex<()> = Mutex::new(());
/// Set as soon as SIGINT/SIGTERM arrives, before the clean-up starts.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One process, across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pid: u32,
    start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Option<Owner> {
        static ME: OnceLock<Option<Owner>> = OnceLock::new();
        *ME.get_or_init(|| Owner::of_pid(std::process::id()))
    }

    /// The process now running as `pid`, if any.
    fn of_pid(pid: u32) -> Option<Owner> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses,
        // so count fields after the last `)`. Start time is field 22.
        let after = &stat[stat.rfind(')')? + 1..];
        let start = after.split_whitespace().nth(19)?.parse().ok()?;
        Some(Owner { pid, start })
    }

    /// Whether the process is certainly gone; `false` when it cannot be told.
    fn is_gone(self) -> bool {
        if !Path::new("/proc/self/stat").exists() {
            return false;
        }
        Owner::of_pid(self.pid) != Some(self)
    }

    fn tag(self) -> String {
        format!("{}.{}", self.pid, self.start)
    }

    /// The owner in `name` if it is `<base><pid>.<start>-<suffix>`.
    fn from_name(name: &str, base: &str) -> Option<Owner> {
        let (tag, suffix) = name.strip_prefix(base)?.split_once('-')?;
        let (pid, start) = tag.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(pid) || !digits(start) || suffix.is_empty() {
            return None;
        }
        Some(Owner {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }
}

/// `<base><pid>.<start>-`, or `base` alone where `/proc` is unavailable
/// (such temporaries are still removed on interrupt, never swept).
fn prefix(base: &str) -> String {
    match Owner::current() {
        Some(me) => format!("{base}{}-", me.tag()),
        None => base.to_string(),
    }
}

/// A temp directory in `parent` (mode `perm` before the umask), removed on
/// interrupt and sweepable after a kill.
pub fn dir_in(parent: &Path, base: &str, perm: fs::Permissions) -> io::Result<TempDir> {
    // Created under the lock, so an interrupt cannot fall between the
    // creation and the record.
    let mut live = lock(&LIVE);
    let dir = tempfile::Builder::new()
        .prefix(&prefix(base))
        .permissions(perm)
        .tempdir_in(parent)?;
    live.push(dir.path().to_path_buf());
    Ok(dir)
}

/// A temp file in `parent`, like [`dir_in`].
pub fn file_in(parent: &Path, base: &str, perm: fs::Permissions) -> io::Result<NamedTempFile> {
    let mut live = lock(&LIVE);
    let file = tempfile::Builder::new()
        .prefix(&prefix(base))
        .permissions(perm)
        .tempfile_in(parent)?;
    live.push(file.path().to_path_buf());
    Ok(file)
}

/// While the returned guard lives, SIGINT/SIGTERM wait: hold it around the
/// renames that publish a set of outputs. Not reentrant.
pub fn commit_section() -> MutexGuard<'static, ()> {
    lock(&COMMIT)
}

/// Remove every recorded temporary that still exists; how many there were,
/// and the record's lock, which the caller holds until it exits: the
/// build's other threads still run, and one that tried to create a
/// temporary after the clean-up would leave it behind.
fn remove_live() -> (usize, MutexGuard<'static, Vec<PathBuf>>) {
    let live = lock(&LIVE);
    let removed = live.iter().filter(|p| remove(p).unwrap_or(false)).count();
    (removed, live)
}

/// Remove `path` (a directory tree or a file, never through a symlink);
/// whether something was there.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => {
            // The build's other threads still run while this one cleans up,
            // and one may create a file in the directory between
            // remove_dir_all's last unlink and its rmdir (ENOTEMPTY, the
            // directory left behind). Renamed first, the directory is out of
            // their reach: paths under the old name no longer resolve. The
            // new name keeps the owner tag, so a sweep still knows it.
            let mut aside = path.as_os_str().to_owned();
            aside.push("-removing");
            let target = match fs::rename(path, &aside) {
                Ok(()) => PathBuf::from(aside),
                Err(_) => path.to_path_buf(),
            };
            let mut result = fs::remove_dir_all(&target);
            for _ in 0..3 {
                if result.is_ok() || !target.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                result = fs::remove_dir_all(&target);
            }
            result.map(|()| true)
        }
        Ok(_) => fs::remove_file(path).map(|()| true),
    }
}

/// Remove the entries of `dir` named `<base><pid>.<start>-…` for one of
/// `bases` whose owner process is gone (left by a killed run); the paths
/// removed. Anything else in `dir` is left alone, and so is what cannot be
/// removed (another user's).
pub fn sweep(dir: &Path, bases: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = bases
            .iter()
            .filter_map(|base| Owner::from_name(name, base))
            .any(|owner| Some(owner) != Owner::current() && owner.is_gone());
        let path = entry.path();
        if stale && remove(&path).unwrap_or(false) {
            removed.push(path);
        }
    }
    removed
}

/// Install the SIGINT/SIGTERM handling described in the module doc; `report`
/// gets the signal's name and how many temporaries were removed, and says so
/// in the log's own format. Call in `main` before any thread starts: threads
/// inherit the blocked mask, so the signals reach only the waiting thread.
/// (Child processes get an empty mask from `std::process::Command`.)
pub fn remove_on_interrupt(report: impl FnOnce(&'static str, usize) + Send + 'static) {
    // SAFETY: plain libc calls on a zeroed, then initialised, sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: `set` is initialised; `signal` is a valid out pointer.
        while unsafe { libc::sigwait(&set, &mut signal) } != 0 {}
        INTERRUPTED.store(true, Ordering::SeqCst);
        let _commit = commit_section();
        let (removed, _no_more_temporaries) = remove_live();
        let name = if signal == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        // The report is the last line: the build's threads still run, and
        // each of their lines waits for stderr's lock, held until the exit
        // (re-entrant, so `report` itself can take it).
        let _last_line = std::io::stderr().lock();
        report(name, removed);
        std::process::exit(128 + signal);
    });
}

/// For `main`, before it reports the outcome: while an interrupt is being
/// handled, the build's own failure (its temporaries removed under it, say)
/// is not the outcome, so wait for the handler, which reports the signal
/// and exits with 130/143. Without an interrupt, returns at once.
pub fn defer_to_interrupt() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_and_parse_back_strictly() {
        let me = Owner::current().expect("/proc on the test host");
        let name = format!(".minibuild-oci-{}-Ab12Cd", me.tag());
        assert_eq!(Owner::from_name(&name, ".minibuild-oci-"), Some(me));
        // A shorter base does not claim a longer one's names.
        assert_eq!(Owner::from_name(&name, ".minibuild-"), None);
        for other in [
            ".minibuild-oci-Ab12Cd",
            ".minibuild-oci-12.x-Ab",
            ".minibuild-oci-12.3-",
            "x",
        ] {
            assert_eq!(Owner::from_name(other, ".minibuild-oci-"), None, "{other}");
        }
        assert!(!me.is_gone());
    }

    #[test]
    fn sweep_removes_only_stale_entries_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        let me = Owner::current().unwrap();
        // pid 0 is never a process; a live pid with another start time is
        // a reused pid.
        let dead = Owner { pid: 0, start: 7 };
        let reused = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        let make = |name: &str| {
            let p = dir.path().join(name);
            fs::create_dir(&p).unwrap();
            fs::write(p.join("f"), "x").unwrap();
            p
        };
        let stale = make(&format!(".minibuild-oci-{}-aaaaaa", dead.tag()));
        let stale_reused = make(&format!(".minibuild-oci-{}-bbbbbb", reused.tag()));
        let stale_file = dir
            .path()
            .join(format!(".minibuild-archive-{}-cccccc", dead.tag()));
        fs::write(&stale_file, "x").unwrap();
        let keep = [
            make(&format!(".minibuild-oci-{}-dddddd", me.tag())),
            make(".minibuild-oci-eeeeee"),
            make(&format!("image-{}-ffffff", dead.tag())),
        ];
        let mut removed = sweep(dir.path(), &[".minibuild-oci-", ".minibuild-archive-"]);
        removed.sort();
        let mut want = vec![stale, stale_reused, stale_file];
        want.sort();
        assert_eq!(removed, want);
        for k in keep {
            assert!(k.join("f").is_file(), "{} was swept", k.display());
        }
    }

    #[test]
    fn recorded_temporaries_are_what_an_interrupt_removes() {
        let parent = tempfile::tempdir().unwrap();
        let dir = dir_in(
            parent.path(),
            "t-",
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let file = file_in(
            parent.path(),
            "t-",
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        assert!(
            Owner::from_name(dir.path().file_name().unwrap().to_str().unwrap(), "t-").is_some()
        );
        let (d, f) = (dir.keep(), file.into_temp_path().keep().unwrap());
        // Only these two: other tests' temporaries are recorded too.
        let live = lock(&LIVE);
        assert!(live.contains(&d) && live.contains(&f));
        drop(live);
        assert!(remove(&d).unwrap() && remove(&f).unwrap());
        assert!(!d.exists() && !f.exists() && !remove(&d).unwrap());
    }
}
