//! Files as each OS names them.

/// The device and inode of this process's standard error (what `$JOURNAL_STREAM` names when
/// systemd's journal holds it); `None` where files have no such numbers (Windows).
pub(crate) fn stderr_id() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let meta = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata())
            .ok()?;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    None
}
