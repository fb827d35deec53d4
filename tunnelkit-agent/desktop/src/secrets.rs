//! Passwords and key passphrases in the OS keyring, never in profiles, flags or logs.
//!
//! Where a D-Bus session bus offers the Secret Service (GNOME Keyring, KWallet, KeePassXC), secrets
//! go there (`zbus-secret-service-keyring-store` under `keyring-core`); they survive reboots and
//! are unlocked with the desktop login. Otherwise the kernel keyutils store holds them, in the
//! *user keyring* (`@u`): every process
//! of the user shares it (the CLI that stores a secret and the agent that uses it need not share
//! a login session), and nobody else can read it. Keys are written with permissions for the
//! user (read, search, write) as well as the possessor, through the process keyring, so that a
//! daemon in another session finds them.
//!
//! Why not `linux-keyutils-keyring-store` (keyring-core's keyutils store): it links each secret
//! from the *session* keyring into the *persistent* keyring. In a plain session keyring, as on
//! many servers and CI machines, the kernel refuses that link (`AccessDenied`), and looking up
//! the session keyring creates a new one per thread, which a multi-threaded daemon cannot rely
//! on. The `linux-keyutils` crate gives the kernel calls directly.
//!
//! Keyutils secrets do not survive a reboot: after one, `tunnelkit up NAME` asks again on a
//! terminal. On macOS secrets go to the login Keychain, on Windows to the Credential Manager
//! (generic credentials), through keyring-core's native stores ([`crate::platform::keyring`]).
//! `TUNNELKIT_KEYRING=secret-service|keyutils|keychain|credential-manager|mock` forces a store
//! (`mock`: keyring-core's in-memory store, for tests); the choice is logged. Entry names: `tunnelkit:password:USER@HOST[:PORT]` and
//! `tunnelkit:passphrase:/absolute/key/path` ([`SecretKey::entry_name`]).

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use tunnelkit_core::prompt::{ExposeSecret, SecretString};
use tunnelkit_core::{SecretKey, SecretStore, SecretStoreError};

use crate::platform;
use crate::platform::keyring::kernel;

pub use crate::platform::keyring::{Backend, SERVICE};

/// Why a [`Keyring`] could not be chosen or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// `TUNNELKIT_KEYRING` names no store.
    #[error(
        "TUNNELKIT_KEYRING={value}: expected secret-service, keyutils, keychain, \
         credential-manager or mock"
    )]
    UnknownBackend {
        /// The variable's value.
        value: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] SecretStoreError),
}

use crate::platform::keyring::failed;

/// A keyring-backed [`SecretStore`].
#[derive(Clone)]
pub struct Keyring {
    /// The keyring-core store (Secret Service or mock); `None` for the kernel keyring.
    store: Option<Arc<CredentialStore>>,
    backend: Backend,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({:?})", self.backend)
    }
}

impl Keyring {
    /// The store chosen by `TUNNELKIT_KEYRING` (`secret-service`, `keyutils` or `mock`); by
    /// default the Secret Service when a session bus answers for it, else the kernel keyring.
    pub fn from_env() -> Result<Keyring, KeyringError> {
        match std::env::var("TUNNELKIT_KEYRING").as_deref() {
            Ok("mock") => Keyring::new(Backend::Mock),
            Ok("keyutils") => Keyring::new(Backend::Keyutils),
            Ok("secret-service") => Keyring::new(Backend::SecretService),
            Ok("keychain") => Keyring::new(Backend::Keychain),
            Ok("credential-manager") => Keyring::new(Backend::CredentialManager),
            Ok(other) => Err(KeyringError::UnknownBackend {
                value: other.to_string(),
            }),
            Err(_) => {
                let mut candidates = platform::keyring::candidates();
                let last = candidates.pop().unwrap_or(Backend::Mock);
                for backend in candidates {
                    match Keyring::new(backend).and_then(|k| k.probe().map(|()| k)) {
                        Ok(k) => return Ok(k),
                        Err(e) => {
                            tracing::info!(
                                "secrets: {} does not answer ({})",
                                backend.place(),
                                tunnelkit_core::error::Chain(&e)
                            )
                        }
                    }
                }
                Keyring::new(last)
            }
        }
    }

    /// A keyring on the given backend.
    pub fn new(backend: Backend) -> Result<Keyring, KeyringError> {
        let store = platform::keyring::store(backend)?;
        tracing::info!("secrets: using the {backend:?} keyring");
        Ok(Keyring { store, backend })
    }

    /// The store this keyring uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the store answers (a lookup of an entry that does not exist).
    fn probe(&self) -> Result<(), KeyringError> {
        let key = SecretKey::Password {
            user: "probe".into(),
            host: "tunnelkit.invalid".into(),
            port: 22,
        };
        self.get(&key).map(drop)?;
        Ok(())
    }

    fn entry(
        &self,
        store: &Arc<CredentialStore>,
        key: &SecretKey,
    ) -> Result<Entry, SecretStoreError> {
        Entry::new_in_store(store, SERVICE, &key.entry_name())
            .map_err(|e| failed(self.backend.place(), "open the entry", e))
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, key: &SecretKey, secret: &SecretString) -> Result<(), SecretStoreError> {
        match &self.store {
            Some(store) => self
                .entry(store, key)?
                .set_password(secret.expose_secret())
                .map_err(|e| failed(self.backend.place(), "store", e)),
            None => kernel::set(&key.entry_name(), secret.expose_secret()),
        }
    }

    /// Removes a secret; `Ok(false)` when there was none.
    pub fn delete(&self, key: &SecretKey) -> Result<bool, SecretStoreError> {
        match &self.store {
            Some(store) => match self.entry(store, key)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(failed(self.backend.place(), "delete", e)),
            },
            None => kernel::delete(&key.entry_name()),
        }
    }
}

impl SecretStore for Keyring {
    fn get(&self, key: &SecretKey) -> Result<Option<SecretString>, SecretStoreError> {
        let found = match &self.store {
            Some(store) => match self.entry(store, key)?.get_password() {
                Ok(s) => Some(s),
                Err(keyring_core::Error::NoEntry) => None,
                Err(e) => return Err(failed(self.backend.place(), "read", e)),
            },
            None => kernel::get(&key.entry_name())?,
        };
        Ok(found.map(SecretString::from))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Stores, replaces, reads and deletes one secret in `k`.
    pub(crate) fn round_trip(k: &Keyring) {
        let key = SecretKey::Password {
            user: "admin".into(),
            host: format!("test-{}.invalid", std::process::id()),
            port: 2222,
        };
        assert!(k.get(&key).unwrap().is_none());
        k.set(&key, &SecretString::from("s3cret".to_string()))
            .unwrap();
        assert_eq!(k.get(&key).unwrap().unwrap().expose_secret(), "s3cret");
        k.set(&key, &SecretString::from("changed".to_string()))
            .unwrap();
        assert_eq!(k.get(&key).unwrap().unwrap().expose_secret(), "changed");
        assert!(k.delete(&key).unwrap());
        assert!(!k.delete(&key).unwrap());
        assert!(k.get(&key).unwrap().is_none());
    }

    #[test]
    fn mock_store_round_trip() {
        round_trip(&Keyring::new(Backend::Mock).unwrap());
    }
}
