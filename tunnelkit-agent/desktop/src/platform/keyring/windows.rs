//! Secrets on Windows: the Credential Manager (windows-native-keyring-store).

use std::sync::Arc;

use keyring_core::CredentialStore;
use tunnelkit_core::SecretStoreError;

use super::{failed, Backend};

pub(crate) fn candidates() -> Vec<Backend> {
    vec![Backend::CredentialManager]
}

pub(crate) fn store(backend: Backend) -> Result<Option<Arc<CredentialStore>>, SecretStoreError> {
    match backend {
        Backend::CredentialManager => Ok(Some(
            windows_native_keyring_store::Store::new()
                .map_err(|e| failed(backend.place(), "open", e))?,
        )),
        other => Err(super::elsewhere(other)),
    }
}

pub(crate) use super::no_kernel as kernel;
