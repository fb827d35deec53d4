//! Secrets on Linux: the Secret Service on the D-Bus session bus when one answers for it,
//! else the kernel's user keyring.

use std::sync::Arc;

use keyring_core::CredentialStore;
use tunnelkit_core::SecretStoreError;

use super::{failed, Backend};

pub(crate) fn candidates() -> Vec<Backend> {
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
    if bus {
        vec![Backend::SecretService, Backend::Keyutils]
    } else {
        vec![Backend::Keyutils]
    }
}

pub(crate) fn store(backend: Backend) -> Result<Option<Arc<CredentialStore>>, SecretStoreError> {
    match backend {
        Backend::SecretService => Ok(Some(
            zbus_secret_service_keyring_store::Store::new()
                .map_err(|e| failed(backend.place(), "open", e))?,
        )),
        Backend::Keyutils => Ok(None),
        other => Err(super::elsewhere(other)),
    }
}

/// The kernel's user keyring, through `linux-keyutils`.
pub(crate) mod kernel {
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
    use tunnelkit_core::SecretStoreError;

    use crate::platform::keyring::{failed, SERVICE};

    const STORE: &str = "kernel keyring";

    fn err(what: &'static str) -> impl Fn(KeyError) -> SecretStoreError {
        // `KeyError` is `std::error::Error` only with a feature we do not enable: its name.
        move |e| failed(STORE, what, format!("{e:?}"))
    }

    /// The user keyring, possessed by this process (linked from its process keyring, so the
    /// possessor's permissions apply whatever the session keyring is).
    fn ring() -> Result<KeyRing, SecretStoreError> {
        let process = KeyRing::from_special_id(KeyRingIdentifier::Process, true)
            .map_err(err("process keyring"))?;
        process
            .link_keyring_id(KeyRingIdentifier::User)
            .map_err(err("link the user keyring"))?;
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(err("user keyring"))
    }

    fn description(name: &str) -> String {
        format!("{}:{name}", SERVICE)
    }

    pub fn set(name: &str, secret: &str) -> Result<(), SecretStoreError> {
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

    pub fn get(name: &str) -> Result<Option<String>, SecretStoreError> {
        match ring()?.search(&description(name)) {
            Ok(key) => {
                let bytes = key.read_to_vec().map_err(err("read"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| SecretStoreError::NotUtf8 {
                        store: STORE.to_string(),
                    })
            }
            // An invalidated key may be seen as revoked until the kernel collects it.
            Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired) => {
                Ok(None)
            }
            Err(e) => Err(err("search")(e)),
        }
    }

    pub fn delete(name: &str) -> Result<bool, SecretStoreError> {
        match ring()?.search(&description(name)) {
            Ok(key) => key.invalidate().map(|()| true).map_err(err("invalidate")),
            Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired) => {
                Ok(false)
            }
            Err(e) => Err(err("search")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::secrets::tests::round_trip;
    use crate::secrets::{Backend, Keyring};
    use tunnelkit_core::prompt::SecretString;
    use tunnelkit_core::SecretKey;

    #[test]
    fn secret_service_is_chosen_only_when_forced_or_a_bus_answers() {
        // No session bus in unit tests: the default falls back to the kernel keyring.
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
            && std::env::var_os("TUNNELKIT_KEYRING").is_none()
        {
            assert_eq!(Keyring::from_env().unwrap().backend(), Backend::Keyutils);
        }
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
