//! Parsing of the short strings admins type: hops (`[user@]host[:port]`), jump lists
//! (`host1,host2`), local forwards (`[bind_address:]port:host:hostport`), dynamic (SOCKS)
//! forwards (`[bind_address:]port`) and remote forwards (`[bind_address:]port:host:hostport`).
//!
//! These are pure functions with OpenSSH's syntax, including bracketed IPv6 addresses
//! (`[::1]:2222`, `[::1]:8080:[fe80::1]:80`) and `ssh://[user@]host[:port]` URIs in hop position.
//! Every error is a [`SpecError`] that names what was being parsed and what was wrong.

use std::fmt;

/// Why a hop or forward string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {reason}")]
pub struct SpecError {
    /// What was being parsed: "hop", "forward", "port", ...
    pub what: &'static str,
    /// The text as given.
    pub input: String,
    /// What was wrong, in words.
    pub reason: String,
}

fn err(what: &'static str, input: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        what,
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A parsed `[user@]host[:port]`. The port and user are optional; defaults are applied later
/// (from `-p`/`-l`, ssh_config or the built-in 22 and local user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSpec {
    /// The login name, when given with `user@`.
    pub user: Option<String>,
    /// Host name or address, without brackets.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

impl fmt::Display for HopSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", bracket(&self.host))?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Writes an IPv6 address in brackets, anything else as it is.
pub fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Parses a port number, 1..=65535, or 0 when `allow_zero` (a local port picked by the system).
pub fn parse_port(s: &str, allow_zero: bool) -> Result<u16, SpecError> {
    let n: u32 = s
        .parse()
        .map_err(|_| err("port", s, "expected a number from 1 to 65535"))?;
    match n {
        0 if allow_zero => Ok(0),
        1..=65535 => Ok(n as u16),
        _ => Err(err("port", s, "expected a number from 1 to 65535")),
    }
}

/// Parses a number of whole seconds, or `never` (any case): `None` for `never`. The one parser
/// of the `SECONDS|never` settings (`--failback`, `failback` in profiles, and their kin).
pub fn parse_seconds_or_never(
    what: &'static str,
    s: &str,
) -> Result<Option<std::time::Duration>, SpecError> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    s.parse::<u64>()
        .map(|n| Some(std::time::Duration::from_secs(n)))
        .map_err(|_| err(what, s, "expected a number of seconds or `never`"))
}

pub(crate) fn check_host(what: &'static str, input: &str, host: &str) -> Result<(), SpecError> {
    if host.is_empty() {
        return Err(err(what, input, "the host name is empty"));
    }
    if let Some(c) = host.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '@' | '/' | ',' | '\'' | '"' | '[' | ']')
    }) {
        return Err(err(what, input, format!("the host name contains {c:?}")));
    }
    if host.starts_with('-') {
        return Err(err(what, input, "a host name cannot start with '-'"));
    }
    Ok(())
}

/// Splits `host[:port]` or `[v6]:port` into host and optional port text.
fn split_host_port<'a>(
    what: &'static str,
    input: &str,
    s: &'a str,
) -> Result<(&'a str, Option<&'a str>), SpecError> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| err(what, input, "missing ']' after an IPv6 address"))?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Ok((host, None));
        }
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| err(what, input, "expected ':' and a port after ']'"))?;
        return Ok((host, Some(port)));
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            Ok((h, Some(p)))
        }
        // A bare IPv6 address without a port, as ssh accepts it.
        _ => Ok((s, None)),
    }
}

/// Parses one hop: `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`.
pub fn parse_hop(input: &str) -> Result<HopSpec, SpecError> {
    let what = "hop";
    let s = input.trim();
    if s.is_empty() {
        return Err(err(what, input, "it is empty"));
    }
    let s = match s.strip_prefix("ssh://") {
        Some(rest) => rest.strip_suffix('/').unwrap_or(rest),
        None => s,
    };
    let (user, hostport) = match s.rsplit_once('@') {
        Some((u, h)) => {
            if u.is_empty() {
                return Err(err(what, input, "the user name before '@' is empty"));
            }
            if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(err(what, input, "the user name contains white space"));
            }
            // No login name has one, and `ssh://` inside a user name would not print back.
            if u.contains('/') {
                return Err(err(what, input, "the user name contains '/'"));
            }
            (Some(u.to_string()), h)
        }
        None => (None, s),
    };
    let (host, port) = split_host_port(what, input, hostport)?;
    check_host(what, input, host)?;
    let port = match port {
        Some(p) => Some(parse_port(p, false).map_err(|e| err(what, input, e.reason))?),
        None => None,
    };
    Ok(HopSpec {
        user,
        host: host.to_string(),
        port,
    })
}

/// Parses a `-J` value: hops separated by commas, or `none` (no jump hosts) as an empty list.
pub fn parse_jump_list(input: &str) -> Result<Vec<HopSpec>, SpecError> {
    if input.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    input
        .split(',')
        .map(|h| {
            parse_hop(h).map_err(|e| SpecError {
                what: "jump list",
                input: input.to_string(),
                reason: format!("hop `{h}`: {}", e.reason),
            })
        })
        .collect()
}

mod forward;
#[cfg(test)]
mod tests;

pub use forward::{
    is_loopback_bind, parse_dynamic, parse_forward, parse_listen, parse_remote_forward,
    parse_remote_listen, parse_target, DynamicSpec, ForwardSpec, RemoteForwardSpec, ALL_INTERFACES,
};
