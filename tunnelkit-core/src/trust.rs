//! Whom a file on disk is trusted from: OpenSSH's StrictModes rule, in one place. A file that
//! can run a command (a profile's or ssh_config's ProxyCommand) or name a key is used only if
//! nobody but this user (or root) could have written it:
//!
//! - [`flaw`] is the rule on one file or directory, a pure function of its owner and mode:
//!   the owner is this user or root, and it is not writable by group or others. A directory
//!   that is only *passed through* (an ancestor) may be world-writable if its sticky bit is set
//!   (`/tmp`): others can add entries there but cannot rename or remove ours.
//! - [`check_path`] applies it along the whole path, as OpenSSH's `safe_path()` (misc.c) does:
//!   every directory from `/` down to the file, and every symbolic link followed on the way
//!   (the link must be owned by this user or root, and the directories of its target are
//!   checked as well). OpenSSH stops at the home directory; this walks to `/`.
//! - [`check_config_file`] is ssh's narrower rule for `~/.ssh/config` and Included files
//!   (readconf.c, `SSHCONF_CHECKPERM`: the file alone, "Bad owner or permissions").
//!
//! Owners and modes come from the platform layer (`platform::files`); on Windows,
//! where access is an ACL, these checks do not apply yet.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// At most this many symbolic links are followed in one path (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;

/// The set-user-ID-free bits that matter: group- and other-writable.
const GROUP_OTHER_WRITE: u32 = 0o022;
/// The sticky bit: in such a directory only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// The user id of this process.
pub fn current_uid() -> u32 {
    crate::platform::files::current_uid()
}

/// A user as shown in errors: `uid 65534 (nobody)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uid(pub u32);

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match user_name(self.0) {
            Some(name) => write!(f, "uid {} ({name})", self.0),
            None => write!(f, "uid {}", self.0),
        }
    }
}

/// The login name of `uid` from `/etc/passwd`, if it is there (for messages only).
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// Who may own what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// This user or root (StrictModes).
    UserOrRoot,
    /// This user only (the control socket's directory).
    UserOnly,
}

/// Where the checked object sits on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The file or directory asked about: never writable by group or others.
    Target,
    /// A directory passed through on the way: writable by others only with the sticky bit.
    Ancestor,
}

/// What is wrong with one file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Owned by another user.
    Owner,
    /// Writable by group or others.
    Writable,
}

/// The rule on one object: `owner` and `mode` (`st_mode`) as `stat` reports them, `me` this
/// process's uid. `None`: trusted.
pub fn flaw(owner: u32, mode: u32, me: u32, owners: Owners, place: Place) -> Option<Flaw> {
    let owner_ok = owner == me || (owners == Owners::UserOrRoot && owner == 0);
    if !owner_ok {
        return Some(Flaw::Owner);
    }
    let writable = mode & GROUP_OTHER_WRITE != 0;
    let sticky_passage = place == Place::Ancestor && mode & STICKY != 0;
    if writable && !sticky_passage {
        return Some(Flaw::Writable);
    }
    None
}

/// Why a path is not trusted; the message names the path, the owner or mode, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// A file, directory or symbolic link on the path belongs to another user.
    #[error(
        "{}: owned by {owner}, not by you ({me}) or root: another user could change it; \
         run `chown {} {}` if it is yours",
        path.display(), me.0, path.display()
    )]
    Owner {
        /// The object.
        path: PathBuf,
        /// Its owner.
        owner: Uid,
        /// This process's user.
        me: Uid,
    },
    /// A file or directory on the path is writable by group or others.
    #[error(
        "{}: writable by group or others (mode {mode:04o}, owner {owner}): another user could \
         change it; run `chmod go-w {}`",
        path.display(), path.display()
    )]
    Writable {
        /// The object.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: Uid,
    },
    /// More than [`MAX_SYMLINKS`] symbolic links.
    #[error("{}: more than {MAX_SYMLINKS} symbolic links", path.display())]
    Loop {
        /// The path asked about.
        path: PathBuf,
    },
    /// Something on the path could not be examined (missing, not a directory, ...).
    #[error("{}: {message}", path.display())]
    Unreadable {
        /// The object.
        path: PathBuf,
        /// What `stat` or `readlink` said.
        message: String,
        /// True when it does not exist.
        missing: bool,
    },
}

impl Untrusted {
    /// True when the path (or a directory on it) does not exist: not a trust problem.
    pub fn is_missing(&self) -> bool {
        matches!(self, Untrusted::Unreadable { missing: true, .. })
    }
}

fn judged(
    path: &Path,
    meta: &std::fs::Metadata,
    owners: Owners,
    place: Place,
) -> Result<(), Untrusted> {
    let me = current_uid();
    let (uid, raw_mode) = crate::platform::files::owner_and_mode(meta);
    // A symbolic link's own mode is always 0777 and means nothing: only its owner counts.
    let mode = if meta.file_type().is_symlink() {
        0
    } else {
        raw_mode
    };
    match flaw(uid, mode, me, owners, place) {
        None => Ok(()),
        Some(Flaw::Owner) => Err(Untrusted::Owner {
            path: path.to_path_buf(),
            owner: Uid(uid),
            me: Uid(me),
        }),
        Some(Flaw::Writable) => Err(Untrusted::Writable {
            path: path.to_path_buf(),
            mode: raw_mode & 0o7777,
            owner: Uid(uid),
        }),
    }
}

fn unreadable(path: &Path, e: std::io::Error) -> Untrusted {
    Untrusted::Unreadable {
        path: path.to_path_buf(),
        missing: e.kind() == std::io::ErrorKind::NotFound,
        message: e.to_string(),
    }
}

/// The rule on one object as `stat` (symbolic links followed) sees it.
pub fn check_one(
    path: &Path,
    owners: Owners,
    place: Place,
) -> Result<std::fs::Metadata, Untrusted> {
    let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
    judged(path, &meta, owners, place)?;
    Ok(meta)
}

/// ssh's check of `~/.ssh/config` and of Included files: the file itself is owned by this user
/// or root and not writable by group or others (`Bad owner or permissions on FILE`).
pub fn check_config_file(path: &Path) -> Result<(), Untrusted> {
    check_one(path, Owners::UserOrRoot, Place::Target).map(|_| ())
}

/// Checks `path` and everything its resolution passes through: `/` and every directory down
/// to it, every symbolic link (its owner), and the same along each link's target. Returns the
/// resolved path. `path` itself must be owned by this user or root and not writable by group
/// or others; directories passed through may be world-writable with the sticky bit.
pub fn check_path(path: &Path) -> Result<PathBuf, Untrusted> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| unreadable(path, e))?
            .join(path)
    };
    let mut todo: VecDeque<OsString> = components(&absolute);
    let mut current = PathBuf::from("/");
    check_one(&current, Owners::UserOrRoot, Place::Ancestor)?;
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            current.pop();
            continue;
        }
        let next = current.join(&name);
        let meta = std::fs::symlink_metadata(&next).map_err(|e| unreadable(&next, e))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Untrusted::Loop {
                    path: path.to_path_buf(),
                });
            }
            // Who made the link decides where it leads (a link's own mode means nothing).
            judged(&next, &meta, Owners::UserOrRoot, Place::Ancestor)?;
            let target = std::fs::read_link(&next).map_err(|e| unreadable(&next, e))?;
            if target.is_absolute() {
                current = PathBuf::from("/");
            }
            for c in components(&target).into_iter().rev() {
                todo.push_front(c);
            }
            continue;
        }
        let place = if todo.is_empty() {
            Place::Target
        } else {
            Place::Ancestor
        };
        judged(&next, &meta, Owners::UserOrRoot, place)?;
        current = next;
    }
    Ok(current)
}

/// The names of a path, `.` dropped and `..` kept (resolved against links as the walk goes).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

// Unix owners, modes and symbolic links: the rule these tests check applies on Unix only.
#[cfg(test)]
#[cfg(unix)]
#[path = "trust_tests.rs"]
mod tests;
