//! Reading the small files tunnelkit trusts (known_hosts, private keys, certificates, profiles)
//! so that no file can hang or flood the process:
//!
//! - Only regular files are read. A FIFO, a device (`/dev/zero`, a TTY), a socket or a
//!   directory is refused with an error naming what it is. The path is checked with `stat`
//!   first, then opened with `O_NONBLOCK` (opening a FIFO never waits for a writer) and checked
//!   again on the opened descriptor, so a file swapped in between is caught too. On a regular
//!   file `O_NONBLOCK` changes nothing, so it is left set.
//! - At most a named limit of bytes is read ([`KNOWN_HOSTS_MAX`], [`KEY_FILE_MAX`]); a larger
//!   file (or one that grows past it while read) is refused.
//! - [`read_regular_async`] runs the read on tokio's blocking pool, so the runtime keeps
//!   serving signals and sessions meanwhile; since the read can neither block nor run
//!   without bound, that blocking task always ends soon, and a shutdown never waits on it.
//!
//! Errors are [`std::io::Error`]s (kind `NotFound` for a missing file, `InvalidInput` for a
//! file that is not regular or too large) so callers keep one error path and name the file.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest known_hosts file read: 16 MiB (about 100 000 lines).
pub const KNOWN_HOSTS_MAX: u64 = 16 << 20;
/// Largest private key, public key or certificate file read: 1 MiB (an RSA 16384-bit key is
/// about 12 KiB).
pub const KEY_FILE_MAX: u64 = 1 << 20;

fn refuse_unless_regular(meta: &std::fs::Metadata, limit: u64) -> io::Result<()> {
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a regular file: it is {}, which tunnelkit does not read",
                crate::platform::files::describe(meta.file_type())
            ),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("larger than the limit of {limit} bytes for this kind of file"),
    )
}

/// True for `/dev/null`, the one special file admins name on purpose
/// (`UserKnownHostsFile=/dev/null`): it reads as empty and takes writes, as with ssh.
pub fn is_dev_null(path: &Path) -> bool {
    path == Path::new("/dev/null")
}

/// Reads `path` if it is a regular file of at most `limit` bytes (`/dev/null` reads as empty);
/// never blocks on a FIFO or device and never reads more than `limit + 1` bytes. Blocking: call
/// it off the runtime (see [`read_regular_async`]) unless the file is known to be small and local.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    if is_dev_null(path) {
        return Ok(Vec::new());
    }
    // Refuse special files before opening them: opening a device can have effects of its own.
    refuse_unless_regular(&std::fs::metadata(path)?, limit)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::platform::files::no_wait(&mut options);
    let file = options.open(path)?;
    // The path may have been replaced between the stat and the open.
    refuse_unless_regular(&file.metadata()?, limit)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// [`read_regular`] as text; invalid UTF-8 is an `InvalidData` error.
#[cfg(test)]
fn read_regular_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// [`read_regular`] on tokio's blocking pool, so that the runtime is never held up by disk
/// I/O.
pub async fn read_regular_async(path: PathBuf, limit: u64) -> io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || read_regular(&path, limit))
        .await
        .map_err(|e| io::Error::other(format!("file reader task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let out = std::process::Command::new("mkfifo")
            .arg(path)
            .output()
            .expect("mkfifo (coreutils) runs");
        assert!(out.status.success(), "mkfifo failed");
    }

    #[test]
    fn regular_files_are_read_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, 10).unwrap(), b"0123456789");
        let e = read_regular(&f, 9).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("limit of 9 bytes"), "{e}");
        let missing = read_regular(&dir.path().join("none"), 10).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        std::fs::write(&f, b"\xff\xfe").unwrap();
        let e = read_regular_string(&f, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn special_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let started = Instant::now();
        for (path, what) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (dir.path(), "directory"),
        ] {
            let e = read_regular(path, KNOWN_HOSTS_MAX).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{path:?}");
            assert!(e.to_string().contains(what), "{path:?}: {e}");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn dev_null_reads_as_empty_as_with_ssh() {
        // `UserKnownHostsFile=/dev/null` is a common ssh idiom; /dev/zero stays refused above.
        assert_eq!(
            read_regular(Path::new("/dev/null"), KNOWN_HOSTS_MAX).unwrap(),
            b""
        );
    }

    #[tokio::test]
    async fn async_read_of_a_fifo_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            read_regular_async(fifo, KEY_FILE_MAX),
        )
        .await
        .expect("no wait on a FIFO");
        assert!(r.unwrap_err().to_string().contains("FIFO"));
    }
}
