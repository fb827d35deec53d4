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

/// A parsed `-L` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    /// The local address to bind; `None` means loopback (127.0.0.1).
    pub bind_host: Option<String>,
    /// The local port; 0 lets the system pick one (reported once bound).
    pub bind_port: u16,
    /// The target host, as the route's last hop resolves it.
    pub remote_host: String,
    /// The target port.
    pub remote_port: u16,
}

impl fmt::Display for ForwardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = &self.bind_host {
            write!(f, "{}:", bracket(b))?;
        }
        write!(
            f,
            "{}:{}:{}",
            self.bind_port,
            bracket(&self.remote_host),
            self.remote_port
        )
    }
}

/// Splits on ':' outside brackets; brackets are removed from the fields.
fn split_fields<'a>(what: &'static str, input: &'a str) -> Result<Vec<&'a str>, SpecError> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner
                .find(']')
                .ok_or_else(|| err(what, input, "missing ']' after an IPv6 address"))?;
            out.push(&inner[..close]);
            rest = &inner[close + 1..];
            if rest.is_empty() {
                return Ok(out);
            }
            rest = rest
                .strip_prefix(':')
                .ok_or_else(|| err(what, input, "expected ':' after ']'"))?;
        } else {
            match rest.find(':') {
                Some(i) => {
                    out.push(&rest[..i]);
                    rest = &rest[i + 1..];
                }
                None => {
                    out.push(rest);
                    return Ok(out);
                }
            }
        }
    }
}

/// Parses a local forward: `[bind_address:]port:host:hostport`, the same syntax as `ssh -L`.
/// The remote side may also be given as one `host:hostport` pair in a separate field (see
/// [`parse_target`]). An empty bind address or `*` means every address, as in ssh.
pub fn parse_forward(input: &str) -> Result<ForwardSpec, SpecError> {
    let what = "forward";
    let s = input.trim();
    if s.is_empty() {
        return Err(err(what, input, "it is empty"));
    }
    if s.contains('/') {
        return Err(err(
            what,
            input,
            "Unix socket forwards are not supported; use [bind_address:]port:host:hostport",
        ));
    }
    let fields = split_fields(what, s)?;
    let (bind, port, host, hostport) = match fields.as_slice() {
        [p, h, hp] => (None, *p, *h, *hp),
        [b, p, h, hp] => (Some(*b), *p, *h, *hp),
        _ => {
            return Err(err(
                what,
                input,
                "expected [bind_address:]port:host:hostport (IPv6 addresses in brackets)",
            ))
        }
    };
    let bind_port = parse_port(port, true)
        .map_err(|e| err(what, input, format!("local port: {}", e.reason)))?;
    let bind_host = match bind {
        None => None,
        Some("") | Some("*") => Some("0.0.0.0".to_string()),
        Some("localhost") => None,
        Some(b) => {
            check_host(what, input, b)?;
            Some(b.to_string())
        }
    };
    check_host(what, input, host)?;
    let remote_port = parse_port(hostport, false)
        .map_err(|e| err(what, input, format!("remote port: {}", e.reason)))?;
    Ok(ForwardSpec {
        bind_host,
        bind_port,
        remote_host: host.to_string(),
        remote_port,
    })
}

/// A parsed `-D` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicSpec {
    /// The local address to bind; `None` means loopback (127.0.0.1).
    pub bind_host: Option<String>,
    /// The local port; 0 lets the system pick one (reported once bound).
    pub bind_port: u16,
}

impl fmt::Display for DynamicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = &self.bind_host {
            write!(f, "{}:", bracket(b))?;
        }
        write!(f, "{}", self.bind_port)
    }
}

/// Parses a dynamic (SOCKS) forward: `[bind_address:]port`, the same syntax as `ssh -D`
/// (IPv6 bind addresses in brackets). An empty bind address or `*` means every address,
/// `localhost` loopback, as in ssh; port 0 picks a free port (ssh refuses 0).
pub fn parse_dynamic(input: &str) -> Result<DynamicSpec, SpecError> {
    let what = "dynamic forward";
    let s = input.trim();
    if s.is_empty() {
        return Err(err(what, input, "it is empty"));
    }
    if s.contains('/') {
        return Err(err(what, input, "expected [bind_address:]port"));
    }
    let fields = split_fields(what, s)?;
    let (bind, port) = match fields.as_slice() {
        [p] => (None, *p),
        [b, p] => (Some(*b), *p),
        _ => {
            return Err(err(
                what,
                input,
                "expected [bind_address:]port (IPv6 addresses in brackets)",
            ))
        }
    };
    let bind_port = parse_port(port, true)
        .map_err(|e| err(what, input, format!("local port: {}", e.reason)))?;
    let bind_host = match bind {
        None | Some("localhost") => None,
        Some("") | Some("*") => Some("0.0.0.0".to_string()),
        Some(b) => {
            check_host(what, input, b)?;
            Some(b.to_string())
        }
    };
    Ok(DynamicSpec {
        bind_host,
        bind_port,
    })
}

/// A parsed `-R` value: the route's last hop listens on `bind_host:bind_port` and sends each
/// connection back to `target_host:target_port`, which this side connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteForwardSpec {
    /// The address the bastion listens on, as sent in the `tcpip-forward` request: `None` means
    /// its loopback only (ssh sends `localhost`); `Some("")` every address (written `*` or an
    /// empty field; the server's `GatewayPorts` decides); otherwise the address given.
    pub bind_host: Option<String>,
    /// The port on the bastion; 0 lets the bastion pick one (reported once allocated).
    pub bind_port: u16,
    /// The target host, resolved on this side.
    pub target_host: String,
    /// The target port.
    pub target_port: u16,
}

impl fmt::Display for RemoteForwardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bind_host.as_deref() {
            None => {}
            Some("") => f.write_str("*:")?,
            Some(b) => write!(f, "{}:", bracket(b))?,
        }
        write!(
            f,
            "{}:{}:{}",
            self.bind_port,
            bracket(&self.target_host),
            self.target_port
        )
    }
}

/// Parses a remote forward: `[bind_address:]port:host:hostport`, the syntax of `ssh -R`. The
/// bastion listens on its loopback unless a bind address is given (`*` or an empty field: every
/// address, if the server's `GatewayPorts` allows it). ssh's other `-R` forms (a dynamic
/// `-R [bind_address:]port`, Unix sockets) are refused by name.
pub fn parse_remote_forward(input: &str) -> Result<RemoteForwardSpec, SpecError> {
    let what = "remote forward";
    let s = input.trim();
    if s.is_empty() {
        return Err(err(what, input, "it is empty"));
    }
    if s.contains('/') {
        return Err(err(
            what,
            input,
            "Unix socket forwards are not supported; use [bind_address:]port:host:hostport",
        ));
    }
    let fields = split_fields(what, s)?;
    let (bind, port, host, hostport) = match fields.as_slice() {
        [p, h, hp] => (None, *p, *h, *hp),
        [b, p, h, hp] => (Some(*b), *p, *h, *hp),
        [_] | [_, _] => {
            return Err(err(
                what,
                input,
                "a dynamic remote forward (-R [bind_address:]port, a SOCKS proxy on the \
                 bastion) is not supported; use [bind_address:]port:host:hostport",
            ))
        }
        _ => {
            return Err(err(
                what,
                input,
                "expected [bind_address:]port:host:hostport (IPv6 addresses in brackets)",
            ))
        }
    };
    let bind_port = parse_port(port, true)
        .map_err(|e| err(what, input, format!("listen port: {}", e.reason)))?;
    let bind_host = match bind {
        None | Some("localhost") => None,
        Some("") | Some("*") => Some(String::new()),
        Some(b) => {
            check_host(what, input, b)?;
            Some(b.to_string())
        }
    };
    check_host(what, input, host)?;
    let target_port = parse_port(hostport, false)
        .map_err(|e| err(what, input, format!("target port: {}", e.reason)))?;
    Ok(RemoteForwardSpec {
        bind_host,
        bind_port,
        target_host: host.to_string(),
        target_port,
    })
}

/// Parses where a bastion listens for a remote forward, as profiles write it: a bare port (the
/// bastion's loopback), `*:port` (every address), `host:port` or `[v6]:port`. The address comes
/// back as [`RemoteForwardSpec::bind_host`] has it.
pub fn parse_remote_listen(input: &str) -> Result<(Option<String>, u16), SpecError> {
    let what = "bastion listen address";
    let s = input.trim();
    if let Ok(p) = parse_port(s, true) {
        return Ok((None, p));
    }
    let (host, port) = split_host_port(what, input, s)?;
    let port = port.ok_or_else(|| err(what, input, "expected a port, or host:port"))?;
    let port = parse_port(port, true).map_err(|e| err(what, input, e.reason))?;
    let host = match host {
        "" | "*" => Some(String::new()),
        "localhost" => None,
        h => {
            check_host(what, input, h)?;
            Some(h.to_string())
        }
    };
    Ok((host, port))
}

/// Parses a remote target `host:port` (or `[v6]:port`), as used in profiles.
pub fn parse_target(input: &str) -> Result<(String, u16), SpecError> {
    let what = "target";
    let (host, port) = split_host_port(what, input, input.trim())?;
    check_host(what, input, host)?;
    let port = port.ok_or_else(|| err(what, input, "expected host:port"))?;
    let port = parse_port(port, false).map_err(|e| err(what, input, e.reason))?;
    Ok((host.to_string(), port))
}

/// Parses a local listen address: a bare port (`13389`, loopback), `host:port` or `[v6]:port`.
pub fn parse_listen(input: &str) -> Result<(Option<String>, u16), SpecError> {
    let what = "local address";
    let s = input.trim();
    if let Ok(p) = parse_port(s, true) {
        return Ok((None, p));
    }
    let (host, port) = split_host_port(what, input, s)?;
    check_host(what, input, host)?;
    let port = port.ok_or_else(|| err(what, input, "expected a port, or host:port"))?;
    let port = parse_port(port, true).map_err(|e| err(what, input, e.reason))?;
    Ok((Some(host.to_string()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_forwards() {
        let r = parse_remote_forward("13389:winserver:3389").unwrap();
        assert_eq!(
            (
                r.bind_host.as_deref(),
                r.bind_port,
                r.target_host.as_str(),
                r.target_port
            ),
            (None, 13389, "winserver", 3389)
        );
        assert_eq!(r.to_string(), "13389:winserver:3389");
        let r = parse_remote_forward("0:localhost:5900").unwrap();
        assert_eq!(r.bind_port, 0);
        let r = parse_remote_forward("*:8080:127.0.0.1:80").unwrap();
        assert_eq!(r.bind_host.as_deref(), Some(""));
        assert_eq!(r.to_string(), "*:8080:127.0.0.1:80");
        let r = parse_remote_forward(":8080:127.0.0.1:80").unwrap();
        assert_eq!(r.bind_host.as_deref(), Some(""));
        let r = parse_remote_forward("localhost:8080:h:80").unwrap();
        assert_eq!(r.bind_host, None);
        let r = parse_remote_forward("[::1]:8080:[fe80::1]:80").unwrap();
        assert_eq!(
            (r.bind_host.as_deref(), r.target_host.as_str()),
            (Some("::1"), "fe80::1")
        );
        assert_eq!(r.to_string(), "[::1]:8080:[fe80::1]:80");
        let r = parse_remote_forward("10.0.0.5:13389:dc1:3389").unwrap();
        assert_eq!(r.bind_host.as_deref(), Some("10.0.0.5"));
        for (bad, why) in [
            ("", "empty"),
            ("8080", "dynamic"),
            ("0.0.0.0:8080", "dynamic"),
            ("8080:/tmp/sock", "Unix socket"),
            ("8080:host", "dynamic"),
            ("70000:h:80", "listen port"),
            ("8080:h:0", "target port"),
            ("8080:h:x", "target port"),
            ("8080::80", "empty"),
            ("a:b:8080:h:80", "expected"),
            ("8080:-oProxy:80", "'-'"),
        ] {
            let e = parse_remote_forward(bad).unwrap_err();
            assert!(e.reason.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn remote_listen_addresses() {
        assert_eq!(parse_remote_listen("13389").unwrap(), (None, 13389));
        assert_eq!(parse_remote_listen("localhost:0").unwrap(), (None, 0));
        assert_eq!(
            parse_remote_listen("*:5900").unwrap(),
            (Some(String::new()), 5900)
        );
        assert_eq!(
            parse_remote_listen("0.0.0.0:13389").unwrap(),
            (Some("0.0.0.0".into()), 13389)
        );
        assert_eq!(
            parse_remote_listen("[::1]:80").unwrap(),
            (Some("::1".into()), 80)
        );
        for bad in ["", "host", "h:99999", "a b:1", "-x:1"] {
            assert!(parse_remote_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hops() {
        let h = parse_hop("ops@gw.example.com:2222").unwrap();
        assert_eq!(h.user.as_deref(), Some("ops"));
        assert_eq!(h.host, "gw.example.com");
        assert_eq!(h.port, Some(2222));
        let h = parse_hop("bastion").unwrap();
        assert_eq!((h.user, h.host.as_str(), h.port), (None, "bastion", None));
        let h = parse_hop("admin@[::1]:22").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(22)));
        let h = parse_hop("[fe80::1]").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("fe80::1", None));
        let h = parse_hop("ssh://me@host:2200").unwrap();
        assert_eq!((h.user.as_deref(), h.port), (Some("me"), Some(2200)));
        // user names may contain '@' (e.g. domain accounts); the last '@' splits.
        let h = parse_hop("me@corp@host").unwrap();
        assert_eq!(h.user.as_deref(), Some("me@corp"));
        assert_eq!(h.to_string(), "me@corp@host");
        assert_eq!(parse_hop("a@[::1]:2").unwrap().to_string(), "a@[::1]:2");
        // Found by the property tests: brackets inside a host name never round-trip.
        assert!(parse_hop("[:.2[3p.i][.[8k:0759]").is_err());
        assert!(parse_hop("a[b]").is_err());
    }

    #[test]
    fn bad_hops() {
        for bad in [
            "",
            "@host",
            "host:",
            "host:0",
            "host:65536",
            "host:abc",
            "[::1",
            "[::1]x",
            "-oProxyCommand=x",
            "a b",
            "u@",
        ] {
            let e = parse_hop(bad).unwrap_err();
            assert_eq!(e.what, "hop", "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn jump_lists() {
        let j = parse_jump_list("ops@gw,admin@bastion:2222").unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[1].port, Some(2222));
        assert!(parse_jump_list("none").unwrap().is_empty());
        let e = parse_jump_list("gw,,bastion").unwrap_err();
        assert!(e.reason.contains("hop ``"), "{e}");
    }

    #[test]
    fn forwards() {
        let f = parse_forward("13389:winserver:3389").unwrap();
        assert_eq!(
            f,
            ForwardSpec {
                bind_host: None,
                bind_port: 13389,
                remote_host: "winserver".into(),
                remote_port: 3389
            }
        );
        let f = parse_forward("[::1]:8080:[fe80::1]:80").unwrap();
        assert_eq!(f.bind_host.as_deref(), Some("::1"));
        assert_eq!(f.remote_host, "fe80::1");
        assert_eq!(f.to_string(), "[::1]:8080:[fe80::1]:80");
        let f = parse_forward("0.0.0.0:0:vnc:5901").unwrap();
        assert_eq!((f.bind_host.as_deref(), f.bind_port), (Some("0.0.0.0"), 0));
        let f = parse_forward("*:5901:vnc:5901").unwrap();
        assert_eq!(f.bind_host.as_deref(), Some("0.0.0.0"));
        let f = parse_forward("localhost:5901:vnc:5901").unwrap();
        assert_eq!(f.bind_host, None);
    }

    #[test]
    fn bad_forwards() {
        for (bad, needle) in [
            ("", "empty"),
            ("13389:winserver", "expected"),
            ("a:b:c:d:e", "expected"),
            ("x:winserver:3389", "local port"),
            ("70000:winserver:3389", "local port"),
            ("1:winserver:0", "remote port"),
            ("1::3389", "host name is empty"),
            ("[::1:8080:h:80", "missing ']'"),
            ("/tmp/sock:h:1", "Unix socket"),
        ] {
            let e = parse_forward(bad).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn dynamic_forwards() {
        for (text, bind, port, back) in [
            ("1080", None, 1080, "1080"),
            ("0", None, 0, "0"),
            ("127.0.0.1:1080", Some("127.0.0.1"), 1080, "127.0.0.1:1080"),
            ("[::1]:1080", Some("::1"), 1080, "[::1]:1080"),
            ("*:1080", Some("0.0.0.0"), 1080, "0.0.0.0:1080"),
            (":1080", Some("0.0.0.0"), 1080, "0.0.0.0:1080"),
            ("localhost:1080", None, 1080, "1080"),
            (" 1080 ", None, 1080, "1080"),
        ] {
            let d = parse_dynamic(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (d.bind_host.as_deref(), d.bind_port),
                (bind, port),
                "{text}"
            );
            assert_eq!(d.to_string(), back, "{text}");
            assert_eq!(parse_dynamic(&d.to_string()).unwrap(), d, "{text}");
        }
        for (bad, needle) in [
            ("", "empty"),
            ("x", "local port"),
            ("70000", "local port"),
            ("h:1:2", "expected [bind_address:]port"),
            ("::1:1080", "expected [bind_address:]port"),
            ("[::1]", "local port"),
            ("[::1:1080", "missing ']'"),
            ("127.0.0.1/1080", "expected [bind_address:]port"),
            ("a b:1080", "contains ' '"),
            ("-x:1080", "cannot start with '-'"),
        ] {
            let e = parse_dynamic(bad).unwrap_err();
            assert_eq!(e.what, "dynamic forward", "{bad}");
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn targets_and_listens() {
        assert_eq!(
            parse_target("app.internal:3389").unwrap(),
            ("app.internal".into(), 3389)
        );
        assert_eq!(parse_target("[::1]:5901").unwrap(), ("::1".into(), 5901));
        assert!(parse_target("app.internal").is_err());
        assert_eq!(parse_listen("13389").unwrap(), (None, 13389));
        assert_eq!(
            parse_listen("127.0.0.2:5901").unwrap(),
            (Some("127.0.0.2".into()), 5901)
        );
        assert!(parse_listen("host:x").is_err());
    }

    #[test]
    fn seconds_or_never() {
        use std::time::Duration;
        assert_eq!(
            parse_seconds_or_never("failback", "60"),
            Ok(Some(Duration::from_secs(60)))
        );
        assert_eq!(
            parse_seconds_or_never("failback", "0"),
            Ok(Some(Duration::ZERO))
        );
        assert_eq!(parse_seconds_or_never("failback", "Never"), Ok(None));
        let e = parse_seconds_or_never("failback", "-1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid failback `-1`: expected a number of seconds or `never`"
        );
        assert!(parse_seconds_or_never("failback", "1.5").is_err());
        assert!(parse_seconds_or_never("failback", "").is_err());
    }
}
