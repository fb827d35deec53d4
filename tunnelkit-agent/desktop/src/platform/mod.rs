//! What Linux, macOS and Windows each do their own way, one module per concern with the same
//! small interface on every OS. `cfg` on the OS appears here and in no other module of this
//! crate.
//!
//! - [`keyring`]: where secrets are kept (the Secret Service or the kernel keyring on Linux,
//!   the login Keychain on macOS, the Credential Manager on Windows).
//! - [`desktop`]: desktop notifications (the freedesktop service on D-Bus; macOS's
//!   notification centre through `osascript`; Windows toasts).
//! - `files`: file identities (the journal's stream).

pub mod desktop;
pub(crate) mod files;
pub mod keyring;
