//! Files as each OS has them: opening without blocking on special files, their type in an
//! admin's words, and owner-only permissions for what tunnelkit creates.

use std::fs::{DirBuilder, FileType, OpenOptions};

/// Makes `options` open without waiting: on Unix `O_NONBLOCK` (a FIFO without a writer does
/// not block the open) and `O_NOCTTY` (a terminal never becomes ours). Windows has no FIFOs
/// in the file namespace that an open would wait on; nothing to add.
pub(crate) fn no_wait(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32,
    );
    #[cfg(not(unix))]
    let _ = options;
}

/// A file created readable and writable by its owner only (0600 on Unix; on Windows the
/// user's profile directory already keeps other users out, as Win32-OpenSSH relies on).
pub(crate) fn owner_only(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    #[cfg(not(unix))]
    let _ = options;
}

/// A directory created for its owner only (0700 on Unix; see [`owner_only`] for Windows).
pub(crate) fn owner_only_dir(builder: &mut DirBuilder) {
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(builder, 0o700);
    #[cfg(not(unix))]
    let _ = builder;
}

/// Names a file type that is not a regular file in an admin's words: `a directory`, `a FIFO
/// (named pipe)`, ...
pub(crate) fn describe(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        } else if file_type.is_char_device() {
            return "a character device";
        } else if file_type.is_block_device() {
            return "a block device";
        } else if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_symlink() {
        return "a symbolic link";
    }
    "not a regular file"
}

/// The permission bits of a file that group or others may access (Unix mode `& 0o077` not
/// zero), as ssh refuses private keys: `Some(mode)` then. On Windows, where access is an ACL
/// and Win32-OpenSSH checks it against the user's profile, `None` (not checked here yet).
pub(crate) fn open_to_others(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The permission bits (`mode & 0o777`) on Unix; `None` where files have ACLs instead (for
/// tests that check what [`owner_only`] and [`owner_only_dir`] made).
#[cfg(test)]
pub(crate) fn mode_bits(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// What [`mode_bits`] reads for a file made [`owner_only`] and a directory made
/// [`owner_only_dir`].
#[cfg(test)]
pub(crate) const OWNER_ONLY_MODES: (Option<u32>, Option<u32>) = if cfg!(unix) {
    (Some(0o600), Some(0o700))
} else {
    (None, None)
};

/// The user id of this process (on Windows, which has no uids, 0: see [`owner_and_mode`]).
pub(crate) fn current_uid() -> u32 {
    #[cfg(unix)]
    return rustix::process::getuid().as_raw();
    #[cfg(not(unix))]
    return 0;
}

/// A file's owner (uid) and mode bits, as StrictModes reads them. On Windows, where access is
/// an ACL, every file reads as owned by this user and writable by nobody else: the trust
/// checks ([`crate::trust`]) do not apply there yet (docs/platforms.md says so).
pub(crate) fn owner_and_mode(meta: &std::fs::Metadata) -> (u32, u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.uid(), meta.mode())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (current_uid(), 0o600)
    }
}
