//! Reading the profiles directory: every `*.toml` file, regular files only, at most
//! [`MAX_PROFILE_BYTES`] each. Nothing is skipped in silence: a file that cannot be used (not
//! UTF-8, a FIFO, too large, unreadable, a name that is not UTF-8) is still listed, with why,
//! so that `tunnelkit status` shows it `invalid`.
//!
//! A profile can run a command (a ProxyCommand) and names keys, so a file that another user
//! could have written is not even read: the directory and each file pass
//! [`tunnelkit_core::trust::check_path`] (OpenSSH's StrictModes along the whole path, symbolic
//! links followed), and a profile whose name has a control or invisible character (see
//! [`name_flaw`]) is not read either. Both are listed as [`Unusable::Refused`], which
//! `tunnelkit status` shows `refused`, with the path and the fix.
//!
//! Blocking file I/O: run it on a blocking thread ([`read_dir_blocking`] via `spawn_blocking`),
//! never on the registry's task.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use tunnelkit_core::trust::{check_path, Untrusted};

/// The largest profile file read.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;
/// Files considered per scan; more are reported once and ignored.
pub const MAX_PROFILES: usize = 4096;

/// Why a profile file's text is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// It cannot be read as a profile (`file: why`): `invalid` in status.
    Broken(String),
    /// It is not trusted, so it was not read (`file: refused: why`): `refused` in status.
    Refused(String),
}

impl Unusable {
    /// The sentence shown in status and the log.
    pub fn reason(&self) -> &str {
        match self {
            Unusable::Broken(r) | Unusable::Refused(r) => r,
        }
    }
}

/// One profile file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFile {
    /// The file.
    pub path: PathBuf,
    /// Its text, or why it cannot be used.
    pub text: Result<String, Unusable>,
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
    // A directory that cannot be examined is reported by read_dir below; one that another
    // user could write makes every file in it refused.
    let dir_flaw = check_path(dir).err().filter(is_trust_flaw);
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
        let shown = || shown_path(&path);
        let (name, text) = match stem.to_str() {
            None => (
                stem.to_string_lossy().into_owned(),
                Err(Unusable::Broken(format!(
                    "{}: the file name is not UTF-8; rename it",
                    shown()
                ))),
            ),
            Some(n) => match name_flaw(n) {
                Some(why) => (
                    safe_name(n),
                    Err(Unusable::Refused(format!("{}: refused: {why}", shown()))),
                ),
                None => (n.to_string(), read_trusted(&path, dir_flaw.as_ref())),
            },
        };
        scanned.files.insert(name, ProfileFile { path, text });
    }
    scanned
}

/// A profile file's text, unless it or its directory is not trusted.
fn read_trusted(path: &Path, dir_flaw: Option<&Untrusted>) -> Result<String, Unusable> {
    if let Some(e) = dir_flaw {
        return Err(Unusable::Refused(format!(
            "{}: refused: the profiles directory is not safe: {e}",
            path.display()
        )));
    }
    match check_path(path) {
        Err(e) if is_trust_flaw(&e) => Err(Unusable::Refused(format!(
            "{}: refused: {e}",
            path.display()
        ))),
        // Missing or unreadable: read_profile says so.
        _ => read_profile(path)
            .map_err(|e| Unusable::Broken(tunnelkit_core::error::Chain(&e).to_string())),
    }
}

/// True for an owner, mode or link loop problem; false for a path that cannot be examined.
fn is_trust_flaw(e: &Untrusted) -> bool {
    !matches!(e, Untrusted::Unreadable { .. })
}

/// Why `name` (a file stem) cannot be a profile name, or `None`. Refused: control characters
/// (C0, DEL, C1: a newline would forge lines in `status`, the log and shell completion) and
/// invisible or bidirectional formatting characters (they make one name look like another).
pub fn name_flaw(name: &str) -> Option<String> {
    let bad = name.chars().find(|c| c.is_control() || is_invisible(*c))?;
    Some(format!(
        "the profile name has the character U+{:04X}, which status, logs and shell \
         completion cannot show safely (control and invisible characters are refused); \
         rename the file",
        u32::from(bad)
    ))
}

/// Unicode format characters that change how text around them is shown.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A refused name as it is listed: every control or invisible character escaped (`\n`,
/// `\u{202e}`), so that it prints on one line and looks like what it is.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A path with its file name made [`safe_name`].
fn shown_path(path: &Path) -> String {
    safe_name(&path.display().to_string())
}

/// Why a profile file's text could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// It could not be examined, opened or read.
    #[error("{}: cannot read", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It is not a regular file (a directory, a FIFO, a device): not opened.
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// It is larger than [`MAX_PROFILE_BYTES`].
    #[error(
        "{}: larger than {MAX_PROFILE_BYTES} bytes{}",
        path.display(),
        size.map(|n| format!(" ({n} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, when it was known before reading (it may have grown while read).
        size: Option<u64>,
    },
    /// It is not UTF-8 text.
    #[error("{}:{line}:{column}: not UTF-8 text (profiles are UTF-8 TOML)", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the first byte that is not UTF-8.
        line: usize,
        /// Its 1-based column (in bytes).
        column: usize,
    },
}

/// Reads one profile file: a regular file (symbolic links followed), at most
/// [`MAX_PROFILE_BYTES`], UTF-8.
pub fn read_profile(path: &Path) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: Some(meta.len()),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // Room for the whole file and one byte more, so that it is read in one call and the end
    // is seen at the next (from an empty buffer, `read_to_end` reads 32, 32, 64, ... bytes:
    // six reads for a typical profile, every poll, for every profile).
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: None,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        ReadError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            column,
        }
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
        let e = s.files["latin1"]
            .text
            .clone()
            .unwrap_err()
            .reason()
            .to_string();
        assert!(
            e.ends_with("latin1.toml:1:19: not UTF-8 text (profiles are UTF-8 TOML)"),
            "{e}"
        );
    }

    #[test]
    #[cfg(unix)] // FIFOs
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
            .reason()
            .ends_with("not a regular file"));
        assert!(s.files["dir"]
            .text
            .clone()
            .unwrap_err()
            .reason()
            .ends_with("not a regular file"));
        assert!(s.files["big"]
            .text
            .clone()
            .unwrap_err()
            .reason()
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

    #[test]
    fn names_with_control_or_invisible_characters_are_refused_and_shown_escaped() {
        for ok in ["db", "büro-rdp", "two words", "a.b_c+d@e"] {
            assert_eq!(name_flaw(ok), None, "{ok}");
        }
        let table = [
            ("two\nlines", "U+000A", "two\\nlines"),
            ("tab\there", "U+0009", "tab\\there"),
            ("esc\u{1b}[31m", "U+001B", "esc\\u{1b}[31m"),
            ("c1\u{85}", "U+0085", "c1\\u{85}"),
            ("del\u{7f}", "U+007F", "del\\u{7f}"),
            ("rlo\u{202e}fdp", "U+202E", "rlo\\u{202e}fdp"),
            ("zw\u{200b}sp", "U+200B", "zw\\u{200b}sp"),
        ];
        for (name, code, shown) in table {
            let why = name_flaw(name).unwrap();
            assert!(why.contains(code), "{why}");
            assert_eq!(safe_name(name), shown);
        }
    }

    #[test]
    #[cfg(unix)] // modes; Windows has ACLs
    fn untrusted_files_and_directories_are_refused_unread_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("profiles");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        std::fs::write(dir.join("good.toml"), "x").unwrap();
        chmod(&dir.join("good.toml"), 0o600);
        std::fs::write(dir.join("open.toml"), "x").unwrap();
        chmod(&dir.join("open.toml"), 0o666);
        std::fs::write(dir.join("bad\nname.toml"), "x").unwrap();
        let s = read_dir_blocking(&dir);
        assert_eq!(s.files["good"].text.as_deref(), Ok("x"));
        let Err(Unusable::Refused(why)) = &s.files["open"].text else {
            panic!("{:?}", s.files["open"]);
        };
        assert!(
            why.contains("mode 0666") && why.contains("chmod go-w"),
            "{why}"
        );
        assert!(matches!(
            &s.files["bad\\nname"].text,
            Err(Unusable::Refused(w)) if w.contains("U+000A") && !w.contains('\n')
        ));
        chmod(&dir, 0o777);
        let s = read_dir_blocking(&dir);
        let Err(Unusable::Refused(why)) = &s.files["good"].text else {
            panic!("{:?}", s.files["good"]);
        };
        assert!(why.contains("profiles directory is not safe"), "{why}");
    }
}
