//! Reading the profiles directory: every `*.toml` file, regular files only, at most
//! [`MAX_PROFILE_BYTES`] each. Nothing is skipped in silence: a file that cannot be used (not
//! UTF-8, a FIFO, too large, unreadable, a name that is not UTF-8) is still listed, with why,
//! so that `tunnelkit status` shows it `invalid`. Blocking file I/O: run it on a blocking
//! thread ([`read_dir_blocking`] via `spawn_blocking`), never on the registry's task.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest profile file read.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;
/// Files considered per scan; more are reported once and ignored.
pub const MAX_PROFILES: usize = 4096;

/// One profile file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFile {
    /// The file.
    pub path: PathBuf,
    /// Its text, or why it cannot be used (`file: why`).
    pub text: Result<String, String>,
}

/// What a scan found, by profile name (the file stem).
#[derive(Debug, Default)]
pub struct Scanned {
    /// The profile files.
    pub files: BTreeMap<String, ProfileFile>,
    /// A problem with the directory itself (the agent keeps its profiles as they are).
    pub dir_error: Option<String>,
}

/// Reads every profile file of `dir`.
pub fn read_dir_blocking(dir: &Path) -> Scanned {
    let mut scanned = Scanned::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            scanned.dir_error = Some(format!("profiles directory {}: {e}", dir.display()));
            return scanned;
        }
    };
    for entry in entries.filter_map(Result::ok).take(MAX_PROFILES) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let Some(stem) = path.file_stem() else {
            continue;
        };
        let (name, text) = match stem.to_str() {
            Some(n) => (n.to_string(), read_profile(&path)),
            None => (
                stem.to_string_lossy().into_owned(),
                Err(format!(
                    "{}: the file name is not UTF-8; rename it",
                    path.display()
                )),
            ),
        };
        scanned.files.insert(name, ProfileFile { path, text });
    }
    scanned
}

/// Reads one profile file: a regular file (symbolic links followed), at most
/// [`MAX_PROFILE_BYTES`], UTF-8.
pub fn read_profile(path: &Path) -> Result<String, String> {
    let fail = |why: String| format!("{}: {why}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(fail(format!(
            "larger than {MAX_PROFILE_BYTES} bytes ({} bytes)",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    // Room for the whole file and one byte more, so that it is read in one call and the end
    // is seen at the next (from an empty buffer, `read_to_end` reads 32, 32, 64, ... bytes:
    // six reads for a typical profile, every poll, for every profile).
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(fail(format!("larger than {MAX_PROFILE_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        format!(
            "{}:{line}:{column}: not UTF-8 text (profiles are UTF-8 TOML)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_utf8_file_is_listed_with_where_it_breaks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.toml"), "autostart = true\n").unwrap();
        std::fs::write(
            dir.path().join("latin1.toml"),
            b"description = \"caf\xe9\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let s = read_dir_blocking(dir.path());
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.files["good"].text.as_deref(), Ok("autostart = true\n"));
        let e = s.files["latin1"].text.clone().unwrap_err();
        assert!(
            e.ends_with("latin1.toml:1:19: not UTF-8 text (profiles are UTF-8 TOML)"),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_a_directory_and_a_huge_file_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo (coreutils) failed");
        std::fs::create_dir(dir.path().join("dir.toml")).unwrap();
        let big = std::fs::File::create(dir.path().join("big.toml")).unwrap();
        big.set_len(MAX_PROFILE_BYTES + 1).unwrap();
        let s = read_dir_blocking(dir.path());
        assert!(s.files["fifo"]
            .text
            .clone()
            .unwrap_err()
            .ends_with("not a regular file"));
        assert!(s.files["dir"]
            .text
            .clone()
            .unwrap_err()
            .ends_with("not a regular file"));
        assert!(s.files["big"]
            .text
            .clone()
            .unwrap_err()
            .contains("larger than 1048576 bytes"));
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_list() {
        let s = read_dir_blocking(Path::new("/nonexistent/tunnelkit/profiles"));
        assert!(s
            .dir_error
            .unwrap()
            .contains("/nonexistent/tunnelkit/profiles"));
    }
}
