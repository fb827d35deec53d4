//! The OpenSSH option keywords tunnelkit understands (`-o Key=Value`, ssh_config, a profile's
//! `[ssh]` table), with OpenSSH's rule that the first value obtained wins. Keywords that OpenSSH
//! knows but tunnelkit does not use are accepted and listed as ignored only when their absence
//! cannot change where or how tunnelkit connects ([`HARMLESS`]); the others are refused
//! ([`REFUSED`], [`REFUSED_UNLESS`]), and so is anything OpenSSH does not know.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AddressFamily, HopOptions, StrictHostKeyChecking};

mod keywords;
pub(crate) mod rekey;

pub use keywords::{ignored_keywords, HARMLESS, REFUSED, REFUSED_UNLESS, SUPPORTED};
pub use rekey::{RekeyLimit, RekeyLimitError};

/// Why an option was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// Not an OpenSSH keyword at all.
    #[error("unknown option `{0}`")]
    Unknown(String),
    /// A keyword tunnelkit knows with a value it cannot use.
    #[error("option {key}: bad value `{value}`: {expected}")]
    BadValue {
        /// The keyword, canonical spelling.
        key: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// Not `Key=Value` or `Key Value`.
    #[error("`{0}`: expected Key=Value")]
    Syntax(String),
    /// An OpenSSH keyword (or value) that decides where or how ssh connects, which tunnelkit
    /// does not implement: refused rather than ignored.
    #[error("{key} {value} is not supported by tunnelkit: {reason}")]
    Unsupported {
        /// The keyword, canonical spelling.
        key: &'static str,
        /// The value given.
        value: String,
        /// What tunnelkit does instead, or why not.
        reason: &'static str,
    },
}

/// Options gathered from flags, ssh_config or a profile, before defaults are applied.
/// Single-valued options keep the first value set (OpenSSH's rule); `IdentityFile`,
/// `CertificateFile`, `LocalForward`, `DynamicForward` and `RemoteForward` accumulate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshOptions {
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `HostName`.
    pub host_name: Option<String>,
    /// `HostKeyAlias`.
    pub host_key_alias: Option<String>,
    /// `IdentityFile`, in order.
    pub identity_files: Vec<PathBuf>,
    /// `CertificateFile`, in order.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<bool>,
    /// `IdentityAgent`: `Some(None)` is `none`.
    pub identity_agent: Option<Option<PathBuf>>,
    /// `UserKnownHostsFile` (several files allowed).
    pub user_known_hosts: Option<Vec<PathBuf>>,
    /// `GlobalKnownHostsFile`.
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `HashKnownHosts`.
    pub hash_known_hosts: Option<bool>,
    /// `BatchMode`.
    pub batch_mode: Option<bool>,
    /// `PasswordAuthentication`.
    pub password_authentication: Option<bool>,
    /// `KbdInteractiveAuthentication`.
    pub kbd_interactive_authentication: Option<bool>,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// `ConnectionAttempts`.
    pub connection_attempts: Option<u32>,
    /// `ServerAliveInterval` (0 disables).
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
    /// `Ciphers`, as a list.
    pub ciphers: Option<Vec<String>>,
    /// `ExitOnForwardFailure`.
    pub exit_on_forward_failure: Option<bool>,
    /// `GatewayPorts`.
    pub gateway_ports: Option<bool>,
    /// `AddressFamily` (`-4`, `-6`).
    pub address_family: Option<AddressFamily>,
    /// `Compression` (`-C`).
    pub compression: Option<bool>,
    /// `RekeyLimit`'s data part (`Some(None)` is `default`). OpenSSH records the two parts
    /// separately, each first-wins: see [`SshOptions::rekey_limit`].
    pub rekey_limit_data: Option<Option<u64>>,
    /// `RekeyLimit`'s time part, when a line gave one other than `none` (`Some(None)` is 0).
    pub rekey_limit_time: Option<Option<Duration>>,
    /// `ProxyJump` (`none` is an empty string). `ProxyJump` and `ProxyCommand` share one slot,
    /// as in OpenSSH: whichever is obtained first wins, the other is then ignored.
    pub proxy_jump: Option<String>,
    /// `ProxyCommand`, as written (tokens unexpanded; `none` is an empty string).
    pub proxy_command: Option<String>,
    /// `IgnoreUnknown`: patterns of unknown keywords to skip (ssh_config only).
    pub ignore_unknown: Option<String>,
    /// `LocalForward` values, as `-L` specs.
    pub local_forwards: Vec<String>,
    /// `DynamicForward` values, as `-D` specs (as written, for `-G`).
    pub dynamic_forwards: Vec<String>,
    /// `RemoteForward` values, as `-R` specs.
    pub remote_forwards: Vec<String>,
    /// Keywords seen and ignored, for `-v`.
    pub ignored: Vec<String>,
}

/// The canonical spelling of a keyword, or `None` if OpenSSH does not know it.
pub fn canonical(key: &str) -> Option<&'static str> {
    SUPPORTED
        .iter()
        .copied()
        .chain(HARMLESS.iter().map(|(k, _)| *k))
        .chain(REFUSED.iter().map(|(k, _)| *k))
        .chain(REFUSED_UNLESS.iter().map(|(k, _, _)| *k))
        .find(|k| k.eq_ignore_ascii_case(key))
}

/// Whether a keyword that tunnelkit does not use may be accepted with this value: `Ok` for
/// [`HARMLESS`] ones and "off" values, the refusal otherwise.
fn check_unused(key: &'static str, value: &str) -> Result<(), OptionError> {
    let refuse = |reason: &'static str| OptionError::Unsupported {
        key,
        value: value.to_string(),
        reason,
    };
    if let Some((_, reason)) = REFUSED.iter().find(|(k, _)| *k == key) {
        return Err(refuse(reason));
    }
    if let Some((_, ok, reason)) = REFUSED_UNLESS.iter().find(|(k, _, _)| *k == key) {
        let v = value.to_ascii_lowercase();
        let off = ok.iter().any(|o| *o == v)
            || (ok.contains(&"no") && v == "false")
            || (ok.contains(&"yes") && v == "true");
        if !off {
            return Err(refuse(reason));
        }
    }
    Ok(())
}

fn yes_no(key: &'static str, v: &str) -> Result<bool, OptionError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(bad(key, v, "yes or no")),
    }
}

fn bad(key: &'static str, value: &str, expected: &str) -> OptionError {
    OptionError::BadValue {
        key,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

fn number(key: &'static str, v: &str) -> Result<u32, OptionError> {
    v.parse().map_err(|_| bad(key, v, "a whole number"))
}

/// Expands a leading `~` or `~/` to the home directory.
pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return crate::env::home_dir();
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return crate::env::home_dir().join(rest);
    }
    PathBuf::from(p)
}

fn set_first<T>(slot: &mut Option<T>, v: T) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

impl SshOptions {
    /// Applies `Key=Value` or `Key Value` (as given to `-o`).
    pub fn apply_kv(&mut self, text: &str) -> Result<(), OptionError> {
        let t = text.trim();
        let (k, v) = match t.find(|c: char| c == '=' || c.is_whitespace()) {
            Some(i) => (
                &t[..i],
                t[i..].trim_start_matches(|c: char| c == '=' || c.is_whitespace()),
            ),
            None => return Err(OptionError::Syntax(text.to_string())),
        };
        if k.is_empty() || v.is_empty() {
            return Err(OptionError::Syntax(text.to_string()));
        }
        self.apply(k, v.trim())
    }

    /// Applies one keyword and value. The first value of a single-valued keyword wins.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        let key = canonical(key).ok_or_else(|| OptionError::Unknown(key.to_string()))?;
        let v = value;
        match key {
            "User" => set_first(&mut self.user, v.to_string()),
            "Port" => {
                let p = crate::spec::parse_port(v, false)
                    .map_err(|_| bad(key, v, "a port from 1 to 65535"))?;
                set_first(&mut self.port, p)
            }
            "HostName" => set_first(&mut self.host_name, v.to_string()),
            "ChallengeResponseAuthentication" => {
                // OpenSSH's old name for KbdInteractiveAuthentication.
                set_first(&mut self.kbd_interactive_authentication, yes_no(key, v)?)
            }
            "IgnoreUnknown" => set_first(&mut self.ignore_unknown, v.to_string()),
            "ProxyCommand" => {
                let c = if v.eq_ignore_ascii_case("none") {
                    String::new()
                } else {
                    v.to_string()
                };
                if self.proxy_jump.is_none() {
                    set_first(&mut self.proxy_command, c)
                }
            }
            "HostKeyAlias" => set_first(&mut self.host_key_alias, v.to_string()),
            "IdentityFile" => self.identity_files.push(expand_tilde(v)),
            "CertificateFile" => self.certificate_files.push(expand_tilde(v)),
            "IdentitiesOnly" => set_first(&mut self.identities_only, yes_no(key, v)?),
            "IdentityAgent" => {
                let a = if v.eq_ignore_ascii_case("none") {
                    None
                } else if v == "SSH_AUTH_SOCK" {
                    crate::env::agent_socket()
                } else {
                    Some(expand_tilde(v))
                };
                set_first(&mut self.identity_agent, a)
            }
            "UserKnownHostsFile" | "GlobalKnownHostsFile" => {
                let files: Vec<PathBuf> = if v.eq_ignore_ascii_case("none") {
                    Vec::new()
                } else {
                    v.split_whitespace().map(expand_tilde).collect()
                };
                let slot = if key == "UserKnownHostsFile" {
                    &mut self.user_known_hosts
                } else {
                    &mut self.global_known_hosts
                };
                set_first(slot, files)
            }
            "StrictHostKeyChecking" => {
                let s = match v.to_ascii_lowercase().as_str() {
                    "yes" | "true" => StrictHostKeyChecking::Yes,
                    "ask" => StrictHostKeyChecking::Ask,
                    "accept-new" => StrictHostKeyChecking::AcceptNew,
                    "no" | "off" | "false" => StrictHostKeyChecking::No,
                    _ => return Err(bad(key, v, "yes, ask, accept-new or no")),
                };
                set_first(&mut self.strict_host_key_checking, s)
            }
            "HashKnownHosts" => set_first(&mut self.hash_known_hosts, yes_no(key, v)?),
            "BatchMode" => set_first(&mut self.batch_mode, yes_no(key, v)?),
            "PasswordAuthentication" => {
                set_first(&mut self.password_authentication, yes_no(key, v)?)
            }
            "KbdInteractiveAuthentication" => {
                set_first(&mut self.kbd_interactive_authentication, yes_no(key, v)?)
            }
            "ConnectTimeout" => {
                let n = number(key, v)?;
                if n == 0 {
                    return Err(bad(key, v, "a number of seconds, at least 1"));
                }
                set_first(&mut self.connect_timeout, Duration::from_secs(n.into()))
            }
            "ConnectionAttempts" => {
                let n = number(key, v)?;
                if n == 0 {
                    return Err(bad(key, v, "at least 1"));
                }
                set_first(&mut self.connection_attempts, n)
            }
            "ServerAliveInterval" => set_first(
                &mut self.server_alive_interval,
                Duration::from_secs(number(key, v)?.into()),
            ),
            "ServerAliveCountMax" => {
                let n = number(key, v)?;
                if n == 0 {
                    return Err(bad(key, v, "at least 1"));
                }
                set_first(&mut self.server_alive_count_max, n)
            }
            "Ciphers" => {
                let list: Vec<String> = v.split(',').map(|c| c.trim().to_string()).collect();
                if let Some(c) = list
                    .iter()
                    .find(|c| russh::cipher::Name::try_from(c.as_str()).is_err())
                {
                    return Err(bad(
                        key,
                        v,
                        &format!(
                            "`{c}` is not supported; use aes128-gcm@openssh.com, aes256-gcm@openssh.com, \
                             chacha20-poly1305@openssh.com, aes128-ctr, aes192-ctr or aes256-ctr"
                        ),
                    ));
                }
                set_first(&mut self.ciphers, list)
            }
            "ExitOnForwardFailure" => set_first(&mut self.exit_on_forward_failure, yes_no(key, v)?),
            "GatewayPorts" => set_first(&mut self.gateway_ports, yes_no(key, v)?),
            "AddressFamily" => {
                let f = match v.to_ascii_lowercase().as_str() {
                    "any" => AddressFamily::Any,
                    "inet" => AddressFamily::Inet,
                    "inet6" => AddressFamily::Inet6,
                    _ => return Err(bad(key, v, "any, inet or inet6")),
                };
                set_first(&mut self.address_family, f)
            }
            "Compression" => set_first(&mut self.compression, yes_no(key, v)?),
            "RekeyLimit" => {
                let line =
                    rekey::RekeyLimitLine::parse(v).map_err(|e| bad(key, v, &e.to_string()))?;
                set_first(&mut self.rekey_limit_data, line.data);
                if let Some(t) = line.time {
                    set_first(&mut self.rekey_limit_time, t);
                }
            }
            "ProxyJump" => {
                let j = if v.eq_ignore_ascii_case("none") {
                    String::new()
                } else {
                    v.to_string()
                };
                if !j.is_empty() {
                    crate::spec::parse_jump_list(&j).map_err(|e| bad(key, v, &e.reason))?;
                }
                if self.proxy_command.is_none() {
                    set_first(&mut self.proxy_jump, j)
                }
            }
            "LocalForward" => {
                // ssh_config writes `LocalForward [bind:]port host:hostport`.
                let spec = v.split_whitespace().collect::<Vec<_>>().join(":");
                crate::spec::parse_forward(&spec).map_err(|e| bad(key, v, &e.reason))?;
                self.local_forwards.push(spec)
            }
            "DynamicForward" => {
                crate::spec::parse_dynamic(v).map_err(|e| bad(key, v, &e.reason))?;
                self.dynamic_forwards.push(v.trim().to_string())
            }
            "RemoteForward" => {
                // `RemoteForward [bind:]port host:hostport`, as LocalForward.
                let spec = v.split_whitespace().collect::<Vec<_>>().join(":");
                crate::spec::parse_remote_forward(&spec).map_err(|e| bad(key, v, &e.reason))?;
                self.remote_forwards.push(spec)
            }
            other => {
                check_unused(other, v)?;
                if !self.ignored.iter().any(|k| k == other) {
                    self.ignored.push(other.to_string())
                }
            }
        }
        Ok(())
    }

    /// The per-hop options with tunnelkit's defaults for `env`'s user for anything not set.
    /// `env.interactive` says whether a person can be asked (a TTY): it makes `ask` the default
    /// host key policy, as in ssh; without one the default is `yes`.
    pub fn hop_options(&self, env: &crate::Environment) -> HopOptions {
        let interactive = env.interactive;
        let mut o = HopOptions::for_env(env);
        if !self.identity_files.is_empty() {
            o.auth.identity_files = self.identity_files.clone();
        }
        o.auth.certificate_files = self.certificate_files.clone();
        if let Some(v) = self.identities_only {
            o.auth.identities_only = v;
        }
        if let Some(a) = &self.identity_agent {
            o.auth.agent_socket = a.clone();
        }
        o.auth.batch_mode = self.batch_mode.unwrap_or(false);
        if let Some(v) = self.password_authentication {
            o.auth.password = v;
        }
        if let Some(v) = self.kbd_interactive_authentication {
            o.auth.keyboard_interactive = v;
        }
        if let Some(f) = &self.user_known_hosts {
            o.host_keys.user_files = f.clone();
        }
        if let Some(f) = &self.global_known_hosts {
            o.host_keys.global_files = f.clone();
        }
        let can_ask = interactive && !o.auth.batch_mode;
        o.host_keys.strict = self.strict_host_key_checking.unwrap_or(if can_ask {
            StrictHostKeyChecking::Ask
        } else {
            StrictHostKeyChecking::Yes
        });
        if let Some(h) = self.hash_known_hosts {
            o.host_keys.hash_new_entries = h;
        }
        if let Some(t) = self.connect_timeout {
            o.connect_timeout = t;
        }
        if let Some(i) = self.server_alive_interval {
            o.server_alive_interval = i;
        }
        if let Some(c) = self.server_alive_count_max {
            o.server_alive_count_max = c;
        }
        if let Some(c) = &self.ciphers {
            o.ciphers = c.clone();
        }
        o.address_family = self.address_family.unwrap_or_default();
        o.compression = self.compression.unwrap_or(false);
        o.rekey_limit = self.rekey_limit();
        o
    }

    /// The `RekeyLimit` in effect: OpenSSH's `default none` for what no line set.
    pub fn rekey_limit(&self) -> RekeyLimit {
        RekeyLimit {
            data: self.rekey_limit_data.flatten(),
            time: self.rekey_limit_time.flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(interactive: bool) -> crate::Environment {
        crate::Environment {
            local_user: "alice".into(),
            home: PathBuf::from("/home/alice"),
            sources: crate::ssh_config::Sources::default(),
            shell: PathBuf::from("/bin/sh"),
            interactive,
            agent_socket: None,
        }
    }

    #[test]
    fn first_value_wins_and_lists_accumulate() {
        let mut o = SshOptions::default();
        o.apply_kv("User=alice").unwrap();
        o.apply_kv("user bob").unwrap();
        o.apply_kv("IdentityFile=/k1").unwrap();
        o.apply_kv("identityfile /k2").unwrap();
        o.apply_kv("ServerAliveInterval=1").unwrap();
        o.apply_kv("ServerAliveCountMax = 3").unwrap();
        assert_eq!(o.user.as_deref(), Some("alice"));
        assert_eq!(
            o.identity_files,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        let h = o.hop_options(&env(false));
        assert_eq!(h.server_alive_interval, Duration::from_secs(1));
        assert_eq!(h.server_alive_count_max, 3);
        assert_eq!(h.host_keys.strict, StrictHostKeyChecking::Yes);
        assert_eq!(
            o.hop_options(&env(true)).host_keys.strict,
            StrictHostKeyChecking::Ask
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let mut o = SshOptions::default();
        assert_eq!(
            o.apply_kv("Bogus=1"),
            Err(OptionError::Unknown("Bogus".into()))
        );
        let e = o.apply_kv("StrictHostKeyChecking=maybe").unwrap_err();
        assert!(e.to_string().contains("yes, ask, accept-new or no"), "{e}");
        let e = o.apply_kv("Port=99999").unwrap_err();
        assert!(e.to_string().contains("Port"), "{e}");
        let e = o.apply_kv("Ciphers=des").unwrap_err();
        assert!(e.to_string().contains("`des` is not supported"), "{e}");
        assert!(matches!(o.apply_kv("User"), Err(OptionError::Syntax(_))));
        assert!(o.apply_kv("ConnectTimeout=0").is_err());
        // Known to OpenSSH, unused by tunnelkit: accepted, remembered as ignored.
        o.apply_kv("ForwardX11=no").unwrap();
        assert_eq!(o.ignored, vec!["ForwardX11".to_string()]);
        // Unused keywords that decide where or how we connect are refused.
        let e = o.apply_kv("KexAlgorithms=curve25519-sha256").unwrap_err();
        assert!(
            e.to_string()
                .contains("KexAlgorithms curve25519-sha256 is not supported"),
            "{e}"
        );
        assert!(o.apply_kv("ProxyUseFdpass=yes").is_err());
        o.apply_kv("ProxyUseFdpass=no").unwrap();
        assert!(o.apply_kv("PubkeyAuthentication no").is_err());
        o.apply_kv("PubkeyAuthentication yes").unwrap();
        o.apply_kv("CheckHostIP=no").unwrap();
        assert!(o.apply_kv("CheckHostIP=yes").is_err());
        let e = o.apply_kv("AddressFamily=ipv4").unwrap_err();
        assert!(e.to_string().contains("any, inet or inet6"), "{e}");
    }

    #[test]
    fn address_family_and_compression() {
        let mut o = SshOptions::default();
        assert_eq!(
            o.hop_options(&env(false)).address_family,
            AddressFamily::Any
        );
        assert!(!o.hop_options(&env(false)).compression);
        o.apply_kv("AddressFamily=inet6").unwrap();
        o.apply_kv("AddressFamily=inet").unwrap();
        o.apply_kv("Compression yes").unwrap();
        let h = o.hop_options(&env(false));
        assert_eq!(h.address_family, AddressFamily::Inet6, "first value wins");
        assert!(h.compression);
        assert!(o.ignored.is_empty());
    }

    #[test]
    fn values() {
        let mut o = SshOptions::default();
        o.apply_kv("UserKnownHostsFile=/a /b").unwrap();
        o.apply_kv("BatchMode=yes").unwrap();
        o.apply_kv("StrictHostKeyChecking=accept-new").unwrap();
        o.apply_kv("LocalForward 13389 winserver:3389").unwrap();
        o.apply_kv("DynamicForward 1080").unwrap();
        o.apply_kv("DynamicForward=[::1]:1081").unwrap();
        assert!(o.apply_kv("DynamicForward 1080 x").is_err());
        o.apply_kv("RemoteForward 0 localhost:3389").unwrap();
        o.apply_kv("RemoteForward=*:5900 127.0.0.1:5900").unwrap();
        assert!(
            o.apply_kv("RemoteForward 5900").is_err(),
            "dynamic -R is refused"
        );
        o.apply_kv("ProxyJump=none").unwrap();
        // The first of ProxyJump and ProxyCommand wins.
        o.apply_kv("ProxyCommand=nc %h %p").unwrap();
        assert_eq!(o.proxy_command, None);
        let mut p = SshOptions::default();
        p.apply_kv("ProxyCommand=exec  nc %h %p").unwrap();
        p.apply_kv("ProxyJump=gw").unwrap();
        assert_eq!(p.proxy_command.as_deref(), Some("exec  nc %h %p"));
        assert_eq!(p.proxy_jump, None);
        o.apply_kv("Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com")
            .unwrap();
        let h = o.hop_options(&env(true));
        assert_eq!(
            h.host_keys.user_files,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert!(h.auth.batch_mode);
        assert_eq!(h.host_keys.strict, StrictHostKeyChecking::AcceptNew);
        assert_eq!(o.local_forwards, vec!["13389:winserver:3389".to_string()]);
        assert_eq!(o.dynamic_forwards, ["1080", "[::1]:1081"]);
        assert_eq!(
            o.remote_forwards,
            vec![
                "0:localhost:3389".to_string(),
                "*:5900:127.0.0.1:5900".into()
            ]
        );
        assert_eq!(o.proxy_jump.as_deref(), Some(""));
        assert_eq!(h.ciphers.len(), 2);
    }
}
