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
//! terminal. `TUNNELKIT_KEYRING=secret-service|keyutils|mock` forces a store (`mock`:
//! keyring-core's in-memory store, for tests); the choice is logged. Entry names: `tunnelkit:password:USER@HOST[:PORT]` and
//! `tunnelkit:passphrase:/absolute/key/path` ([`SecretKey::entry_name`]).

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use tunnelkit_core::prompt::{ExposeSecret, SecretString};
use tunnelkit_core::{SecretKey, SecretStore};

/// The service name of every tunnelkit entry (the prefix of kernel key descriptions).
pub const SERVICE: &str = "tunnelkit";

/// Which store backs the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service on the D-Bus session bus.
    SecretService,
    /// The Linux kernel keyutils user keyring.
    Keyutils,
    /// An in-memory store, for tests.
    Mock,
}

impl Backend {
    /// Where a secret in this store is, in words: `the Secret Service`, `the kernel keyring`.
    pub fn place(self) -> &'static str {
        match self {
            Backend::SecretService => "the Secret Service (the desktop keyring)",
            Backend::Keyutils => "the kernel keyring (keyutils: kept until the next reboot)",
            Backend::Mock => "the in-memory test keyring",
        }
    }
}

/// The kernel's user keyring, through `linux-keyutils`.
mod user_keyring {
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

    fn err(what: &str) -> impl Fn(KeyError) -> String + '_ {
        move |e| format!("kernel keyring: {what}: {e:?}")
    }

    /// The user keyring, possessed by this process (linked from its process keyring, so the
    /// possessor's permissions apply whatever the session keyring is).
    fn ring() -> Result<KeyRing, String> {
        let process = KeyRing::from_special_id(KeyRingIdentifier::Process, true)
            .map_err(err("process keyring"))?;
        process
            .link_keyring_id(KeyRingIdentifier::User)
            .map_err(err("link the user keyring"))?;
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(err("user keyring"))
    }

    fn description(name: &str) -> String {
        format!("{}:{name}", super::SERVICE)
    }

    pub fn set(name: &str, secret: &str) -> Result<(), String> {
        let key = ring()?
            .add_key(&description(name), secret.as_bytes())
            .map_err(err("add"))?;
        // Usable by this user's other processes (an agent in another session), nobody else.
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW | Permission::READ | Permission::WRITE | Permission::SEARCH)
            .build();
        key.set_perms(perms).map_err(err("set permissions"))
    }

    pub fn get(name: &str) -> Result<Option<String>, String> {
        match ring()?.search(&description(name)) {
            Ok(key) => {
                let bytes = key.read_to_vec().map_err(err("read"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| "kernel keyring: the secret is not UTF-8".into())
            }
            // An invalidated key may be seen as revoked until the kernel collects it.
            Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired) => {
                Ok(None)
            }
            Err(e) => Err(err("search")(e)),
        }
    }

    pub fn delete(name: &str) -> Result<bool, String> {
        match ring()?.search(&description(name)) {
            Ok(key) => key.invalidate().map(|()| true).map_err(err("invalidate")),
            Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired) => {
                Ok(false)
            }
            Err(e) => Err(err("search")(e)),
        }
    }
}

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
    pub fn from_env() -> Result<Keyring, String> {
        match std::env::var("TUNNELKIT_KEYRING").as_deref() {
            Ok("mock") => Keyring::new(Backend::Mock),
            Ok("keyutils") => Keyring::new(Backend::Keyutils),
            Ok("secret-service") => Keyring::new(Backend::SecretService),
            Ok(other) => Err(format!(
                "TUNNELKIT_KEYRING={other}: expected secret-service, keyutils or mock"
            )),
            Err(_) => {
                let bus =
                    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
                if bus {
                    match Keyring::new(Backend::SecretService).and_then(|k| k.probe().map(|()| k)) {
                        Ok(k) => return Ok(k),
                        Err(e) => {
                            tracing::info!("secrets: no Secret Service on the session bus ({e})")
                        }
                    }
                }
                Keyring::new(Backend::Keyutils)
            }
        }
    }

    /// A keyring on the given backend.
    pub fn new(backend: Backend) -> Result<Keyring, String> {
        let store: Option<Arc<CredentialStore>> = match backend {
            Backend::Mock => Some(keyring_core::mock::Store::new().map_err(|e| e.to_string())?),
            Backend::SecretService => {
                Some(zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?)
            }
            Backend::Keyutils => None,
        };
        tracing::info!("secrets: using the {backend:?} keyring");
        Ok(Keyring { store, backend })
    }

    /// The store this keyring uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the store answers (a lookup of an entry that does not exist).
    fn probe(&self) -> Result<(), String> {
        let key = SecretKey::Password {
            user: "probe".into(),
            host: "tunnelkit.invalid".into(),
            port: 22,
        };
        self.get(&key).map(drop)
    }

    fn entry(store: &Arc<CredentialStore>, key: &SecretKey) -> Result<Entry, String> {
        Entry::new_in_store(store, SERVICE, &key.entry_name()).map_err(|e| e.to_string())
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, key: &SecretKey, secret: &SecretString) -> Result<(), String> {
        match &self.store {
            Some(store) => Self::entry(store, key)?
                .set_password(secret.expose_secret())
                .map_err(|e| e.to_string()),
            None => user_keyring::set(&key.entry_name(), secret.expose_secret()),
        }
    }

    /// Removes a secret; `Ok(false)` when there was none.
    pub fn delete(&self, key: &SecretKey) -> Result<bool, String> {
        match &self.store {
            Some(store) => match Self::entry(store, key)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
            None => user_keyring::delete(&key.entry_name()),
        }
    }
}

impl SecretStore for Keyring {
    fn get(&self, key: &SecretKey) -> Result<Option<SecretString>, String> {
        let found = match &self.store {
            Some(store) => match Self::entry(store, key)?.get_password() {
                Ok(s) => Some(s),
                Err(keyring_core::Error::NoEntry) => None,
                Err(e) => return Err(e.to_string()),
            },
            None => user_keyring::get(&key.entry_name())?,
        };
        Ok(found.map(SecretString::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(k: &Keyring) {
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
    fn secret_service_is_chosen_only_when_forced_or_a_bus_answers() {
        // No session bus in unit tests: the default falls back to the kernel keyring.
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
            && std::env::var_os("TUNNELKIT_KEYRING").is_none()
        {
            assert_eq!(Keyring::from_env().unwrap().backend, Backend::Keyutils);
        }
    }

    #[test]
    fn mock_store_round_trip() {
        round_trip(&Keyring::new(Backend::Mock).unwrap());
    }

    #[test]
    fn kernel_keyutils_round_trip() {
        // The real kernel keyring (keyutils works on these machines).
        round_trip(&Keyring::new(Backend::Keyutils).unwrap());
    }

    #[test]
    fn kernel_keyring_is_shared_with_another_process() {
        // Stored here, read by a separate process (as the CLI stores and the agent reads).
        let k = Keyring::new(Backend::Keyutils).unwrap();
        let key =
            SecretKey::Passphrase(format!("/tmp/tunnelkit-test-{}", std::process::id()).into());
        k.set(&key, &SecretString::from("shared".to_string()))
            .unwrap();
        let out = std::process::Command::new("keyctl")
            .args([
                "search",
                "@u",
                "user",
                &format!("tunnelkit:{}", key.entry_name()),
            ])
            .output()
            .expect("keyctl not found: install the keyutils package");
        assert!(out.status.success(), "another process finds it: {out:?}");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let read = std::process::Command::new("keyctl")
            .args(["pipe", &id])
            .output()
            .unwrap();
        assert_eq!(read.stdout, b"shared");
        assert!(k.delete(&key).unwrap());
    }
}
