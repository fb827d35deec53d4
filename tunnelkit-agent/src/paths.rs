//! Where the agent keeps things: the control socket and the profiles directory.

use std::path::PathBuf;

pub use tunnelkit_core::trust::current_uid;

/// The control socket: `--socket`, else `$TUNNELKIT_SOCKET`, else
/// `$XDG_RUNTIME_DIR/tunnelkit/agent.sock`, else `/tmp/tunnelkit-$UID/agent.sock`; on Windows
/// the named pipe `\\.\pipe\tunnelkit-agent-USERNAME`
/// ([`default_address`](crate::platform::control::default_address)).
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    if let Some(p) = std::env::var_os("TUNNELKIT_SOCKET").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    crate::platform::control::default_address()
}

/// The profiles directory: `--profiles`, else `$XDG_CONFIG_HOME/tunnelkit/profiles`, else
/// `~/.config/tunnelkit/profiles`.
pub fn profiles_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    match std::env::var_os("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("tunnelkit/profiles"),
        None => tunnelkit_core::env::home_dir().join(".config/tunnelkit/profiles"),
    }
}
