//! Where each OS keeps secrets, under keyring-core: the Secret Service or the kernel keyring
//! on Linux, the login Keychain on macOS, the Credential Manager on Windows.
//! [`crate::secrets`] chooses among `candidates` and reads and writes through `store` (or,
//! for the kernel keyring, which keyring-core's own store cannot serve a daemon, `kernel`).

use std::sync::Arc;

use keyring_core::CredentialStore;
use tunnelkit_core::SecretStoreError;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use imp::kernel;

/// The stores to try when nothing is forced, best first; the last one is used without a
/// probe.
pub(crate) fn candidates() -> Vec<Backend> {
    imp::candidates()
}

/// The keyring-core store of `backend`; `None` for the kernel keyring (see `kernel`).
pub(crate) fn store(backend: Backend) -> Result<Option<Arc<CredentialStore>>, SecretStoreError> {
    match backend {
        Backend::Mock => Ok(Some(
            keyring_core::mock::Store::new().map_err(|e| failed(backend.place(), "open", e))?,
        )),
        other => imp::store(other),
    }
}

/// A store this OS does not have.
fn elsewhere(backend: Backend) -> SecretStoreError {
    SecretStoreError::NotOnThisSystem {
        store: backend.place().to_string(),
        os: std::env::consts::OS,
    }
}

/// The kernel keyring is Linux's: elsewhere every call says so.
#[cfg(not(target_os = "linux"))]
pub(crate) mod no_kernel {
    use tunnelkit_core::SecretStoreError;

    fn missing() -> SecretStoreError {
        super::elsewhere(super::Backend::Keyutils)
    }
    pub fn set(_name: &str, _secret: &str) -> Result<(), SecretStoreError> {
        Err(missing())
    }
    pub fn get(_name: &str) -> Result<Option<String>, SecretStoreError> {
        Err(missing())
    }
    pub fn delete(_name: &str) -> Result<bool, SecretStoreError> {
        Err(missing())
    }
}

/// The service name of every tunnelkit entry (the prefix of kernel key descriptions).
pub const SERVICE: &str = "tunnelkit";

/// Which store backs the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service on the D-Bus session bus.
    SecretService,
    /// The Linux kernel keyutils user keyring.
    Keyutils,
    /// The macOS login Keychain.
    Keychain,
    /// The Windows Credential Manager.
    CredentialManager,
    /// An in-memory store, for tests.
    Mock,
}

impl Backend {
    /// Where a secret in this store is, in words: `the Secret Service`, `the kernel keyring`.
    pub fn place(self) -> &'static str {
        match self {
            Backend::SecretService => "the Secret Service (the desktop keyring)",
            Backend::Keyutils => "the kernel keyring (keyutils: kept until the next reboot)",
            Backend::Keychain => "the login Keychain",
            Backend::CredentialManager => "the Windows Credential Manager",
            Backend::Mock => "the in-memory test keyring",
        }
    }
}

/// A store's own error as a [`SecretStoreError::Backend`].
pub(crate) fn failed(
    store: &str,
    operation: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> SecretStoreError {
    SecretStoreError::Backend {
        store: store.to_string(),
        operation,
        source: source.into(),
    }
}
