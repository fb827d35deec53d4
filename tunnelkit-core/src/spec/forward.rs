//! Forwards as admins type them: `-L`, `-D`, `-R`, and the addresses profiles write.

use std::fmt;

use super::{bracket, check_host, err, parse_port, split_host_port, SpecError};

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
    let (bind, port, host, hostport) = forward_fields(
        what,
        input,
        "expected [bind_address:]port:host:hostport (IPv6 addresses in brackets)",
    )?;
    let bind_port = parse_port(port, true)
        .map_err(|e| err(what, input, format!("local port: {}", e.reason)))?;
    let bind_host = bind_address(what, input, bind, ALL_INTERFACES)?;
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

/// The fields of `[bind_address:]port:host:hostport` (`-L`, `-R`): the bind address when
/// given, the port, the host and its port. `short` says what is wrong with one or two fields.
fn forward_fields<'a>(
    what: &'static str,
    input: &'a str,
    short: &str,
) -> Result<(Option<&'a str>, &'a str, &'a str, &'a str), SpecError> {
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
    match split_fields(what, s)?.as_slice() {
        [p, h, hp] => Ok((None, *p, *h, *hp)),
        [b, p, h, hp] => Ok((Some(*b), *p, *h, *hp)),
        [_] | [_, _] => Err(err(what, input, short)),
        _ => Err(err(
            what,
            input,
            "expected [bind_address:]port:host:hostport (IPv6 addresses in brackets)",
        )),
    }
}

/// Every local address of both families: what ssh binds for a local listener written `*:PORT`
/// or `:PORT` (`-L`, `-D`, a profile's `local`; and with `GatewayPorts yes`). ssh binds
/// `0.0.0.0` and `::`; tunnelkit binds one dual-stack socket on `::` that takes both (or
/// `0.0.0.0` where IPv6 is off).
pub const ALL_INTERFACES: &str = "*";

/// True when a listener on `host` is reachable from this machine only: `127.0.0.0/8`, `::1`,
/// `localhost`. Anything else (every interface, a LAN address, a name) is exposed: anyone who
/// can reach it can use the tunnel.
pub fn is_loopback_bind(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A bind address as ssh reads it: none or `localhost` is loopback (`None`), empty or `*` is
/// every address (`every`, as the caller writes it), anything else a checked host.
fn bind_address(
    what: &'static str,
    input: &str,
    bind: Option<&str>,
    every: &str,
) -> Result<Option<String>, SpecError> {
    match bind {
        None | Some("localhost") => Ok(None),
        Some("") | Some("*") => Ok(Some(every.to_string())),
        Some(b) => {
            check_host(what, input, b)?;
            Ok(Some(b.to_string()))
        }
    }
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
    let (bind_host, bind_port) = listen_address("dynamic forward", input)?;
    Ok(DynamicSpec {
        bind_host,
        bind_port,
    })
}

/// `[bind_address:]port` for a local listener, with ssh's `-L`/`-D` rules for the address
/// (see [`bind_address`]): the one reading of a local listen address, for the command line
/// and profiles alike.
fn listen_address(what: &'static str, input: &str) -> Result<(Option<String>, u16), SpecError> {
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
    let bind_host = bind_address(what, input, bind, ALL_INTERFACES)?;
    Ok((bind_host, bind_port))
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
    let (bind, port, host, hostport) = forward_fields(
        what,
        input,
        "a dynamic remote forward (-R [bind_address:]port, a SOCKS proxy on the bastion) is \
         not supported; use [bind_address:]port:host:hostport",
    )?;
    let bind_port = parse_port(port, true)
        .map_err(|e| err(what, input, format!("listen port: {}", e.reason)))?;
    let bind_host = bind_address(what, input, bind, "")?;
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

/// Parses a local listen address (a profile's `local`): `port` (loopback), `localhost:port`,
/// `host:port`, `[v6]:port`, `*:port` or `:port` (every address). The same reading as the
/// bind address of `-L` and `-D` ([`parse_forward`], [`parse_dynamic`]): `None` is loopback,
/// [`ALL_INTERFACES`] every address.
pub fn parse_listen(input: &str) -> Result<(Option<String>, u16), SpecError> {
    listen_address("local address", input)
}
