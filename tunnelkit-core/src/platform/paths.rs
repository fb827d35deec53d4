//! Where each OS's OpenSSH keeps its system-wide files: `/etc/ssh` on Unix (Linux, macOS);
//! on Windows `%ProgramData%\ssh` (Win32-OpenSSH: `ssh_config`, `ssh_known_hosts`).

use std::ffi::OsString;
use std::path::PathBuf;

/// The directory of the system-wide ssh_config and known_hosts files.
pub(crate) fn system_ssh_dir() -> PathBuf {
    system_ssh_dir_for(cfg!(windows), std::env::var_os("ProgramData"))
}

/// [`system_ssh_dir`] for an OS (`windows`) and its `%ProgramData%` (default
/// `C:\ProgramData`), so that every OS's answer is tested anywhere.
pub(crate) fn system_ssh_dir_for(windows: bool, program_data: Option<OsString>) -> PathBuf {
    if windows {
        let base = program_data
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| OsString::from(r"C:\ProgramData"));
        PathBuf::from(base).join("ssh")
    } else {
        PathBuf::from("/etc/ssh")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_windows_system_files_are_where_their_openssh_reads_them() {
        assert_eq!(system_ssh_dir_for(false, None), PathBuf::from("/etc/ssh"));
        assert_eq!(
            system_ssh_dir_for(true, None),
            PathBuf::from(r"C:\ProgramData").join("ssh")
        );
        assert_eq!(
            system_ssh_dir_for(true, Some(r"D:\Data".into())),
            PathBuf::from(r"D:\Data").join("ssh")
        );
    }
}
