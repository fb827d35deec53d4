//! Where each OS keeps secrets, under keyring-core: the Secret Service or the kernel keyring
//! on Linux, the login Keychain on macOS, the Credential Manager on Windows.
//! [`crate::secrets`] chooses among `candidates` and reads and writes through `store` (or,
//! for the kernel keyring, which keyring-core's own store cannot serve a daemon, `kernel`).

use std::sync::Arc;

use keyring_core::CredentialStore;
use tunnelkit_core::SecretStoreError;

use crate::secrets::Backend;

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
        Backend::Mock => {
            Ok(Some(keyring_core::mock::Store::new().map_err(|e| {
                crate::secrets::failed(backend.place(), "open", e)
            })?))
        }
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
        super::elsewhere(crate::secrets::Backend::Keyutils)
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
