//! `tunnelkit open`, the pure part: which forward of a profile to open, which RDP or VNC client
//! fits it (by the forward's remote port; [`clients`], per OS), the `.rdp` file some of them
//! read ([`rdp_file`]), and the client's command line pointed at the forward's local end. The
//! caller says which OS and which programs exist; nothing here runs anything or writes a file.

pub mod clients;
pub mod rdp_file;

pub use clients::{choose, install_hint, Chosen, Input, KnownClient, Os, KNOWN_CLIENTS};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use tunnelkit_agent::protocol::ForwardJson;
use tunnelkit_core::ForwardType;

/// What a forward carries, told by its remote port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Remote Desktop, port 3389.
    Rdp,
    /// VNC, ports 5900-5999 (display :0 to :99).
    Vnc,
}

impl Protocol {
    /// The protocol a remote port is for, if tunnelkit knows a client for it.
    pub fn of_port(port: u16) -> Option<Protocol> {
        match port {
            3389 => Some(Protocol::Rdp),
            5900..=5999 => Some(Protocol::Vnc),
            _ => None,
        }
    }

    /// `RDP` or `VNC`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rdp => "RDP",
            Protocol::Vnc => "VNC",
        }
    }
}

/// Why `tunnelkit open` cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The profile has no forward at all.
    #[error("{profile} has no forwards")]
    NoForwards {
        /// The profile.
        profile: String,
    },
    /// No forward matches the FORWARD given.
    #[error("{profile} has no forward {wanted}; its forwards: {listed}")]
    NoSuchForward {
        /// The profile.
        profile: String,
        /// What was asked for.
        wanted: String,
        /// `local -> remote, ...`.
        listed: String,
    },
    /// Several forwards fit: FORWARD must say which.
    #[error("{profile} has {count} forwards that could be meant ({listed}): name one, e.g. `tunnelkit open {profile} {example}`")]
    Ambiguous {
        /// The profile.
        profile: String,
        /// How many fit.
        count: usize,
        /// `local -> remote, ...`.
        listed: String,
        /// A FORWARD that would pick the first.
        example: String,
    },
    /// The forward is a SOCKS proxy (`-D`, `[[dynamic]]`): there is no one remote port to pick
    /// a client by, its clients name their targets.
    #[error("the forward {local} of {profile} is a SOCKS proxy (-D): `tunnelkit open` starts an RDP or VNC client on a port forward; point a browser or `curl --socks5-hostname {local}` at the proxy instead")]
    Dynamic {
        /// The profile.
        profile: String,
        /// The proxy's local address.
        local: String,
    },
    /// The forward's remote port is not one tunnelkit knows a client for.
    #[error("no client is known for {remote} (RDP is port 3389, VNC 5900-5999): give one with --client, e.g. --client 'xfreerdp /v:{{host}}:{{port}}'")]
    UnknownPort {
        /// The forward's remote `host:port`.
        remote: String,
    },
    /// None of the known clients for the protocol is installed.
    #[error("no {} client found on PATH (tried {tried}): {hint}, or give one with --client", .protocol.name())]
    NoClient {
        /// The protocol.
        protocol: Protocol,
        /// The programs looked for.
        tried: String,
        /// What to install or check on this OS ([`install_hint`]).
        hint: &'static str,
    },
    /// A value for the `.rdp` file is empty or has a control character (a line break would
    /// add a setting of its own).
    #[error(
        "{0:?} cannot go into a .rdp file (empty, or a control character such as a line break)"
    )]
    RdpFileValue(String),
    /// `--client` is empty or its quoting does not close.
    #[error("--client {0:?}: expected a command line, e.g. 'xfreerdp /u:admin /v:{{host}}:{{port}}' (quotes must close)")]
    BadClient(String),
    /// The forward has no local port yet.
    #[error("the forward {0} is not bound to a local port")]
    NotBound(String),
}

/// The port of a `host:port` (or `[v6]:port`) string.
pub fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

fn describe(forwards: &[ForwardJson]) -> String {
    forwards
        .iter()
        .map(|f| format!("{} -> {}", f.local, f.remote))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `wanted` names the local address `label` (`host:port` as `status` prints it, up or
/// down): the same port, and the same host once `localhost` is read as 127.0.0.1 (the bind
/// tunnelkit uses for it), `*`, an empty host, `0.0.0.0` and `::` as every interface, IPv6
/// with or without brackets and IP addresses by value.
pub fn same_local(label: &str, wanted: &str) -> bool {
    fn split(a: &str) -> Option<(String, u16)> {
        let (host, port) = a.trim().rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "*".to_string(),
            Ok(ip) => ip.to_string(),
            Err(_) if host.is_empty() || host == "*" => "*".to_string(),
            Err(_) if host.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST.to_string(),
            Err(_) => host.to_ascii_lowercase(),
        };
        Some((host, port.parse().ok()?))
    }
    label == wanted || matches!((split(label), split(wanted)), (Some(a), Some(b)) if a == b)
}

/// The index of the forward to open. `wanted`: a local port, a remote port or a remote
/// `host:port`; `None`: the only forward, or else the only one with an RDP or VNC port. A SOCKS
/// proxy is refused ([`OpenError::Dynamic`]).
pub fn pick_forward(
    profile: &str,
    forwards: &[ForwardJson],
    wanted: Option<&str>,
) -> Result<usize, OpenError> {
    if forwards.is_empty() {
        return Err(OpenError::NoForwards {
            profile: profile.to_string(),
        });
    }
    let fits: Vec<usize> = match wanted {
        None if forwards.len() == 1 => vec![0],
        None => (0..forwards.len())
            .filter(|&i| {
                port_of(&forwards[i].remote)
                    .and_then(Protocol::of_port)
                    .is_some()
            })
            .collect(),
        Some(w) => {
            let number: Option<u16> = w.parse().ok();
            (0..forwards.len())
                .filter(|&i| {
                    let f = &forwards[i];
                    match number {
                        Some(n) => port_of(&f.local) == Some(n) || port_of(&f.remote) == Some(n),
                        // A remote `host:port`, or the forward's own local address in any
                        // form `status` shows it (up: `127.0.0.1:13389`, down: as configured).
                        None => f.remote.eq_ignore_ascii_case(w) || same_local(&f.local, w),
                    }
                })
                .collect()
        }
    };
    match fits.as_slice() {
        [one] if forwards[*one].kind == ForwardType::Dynamic => Err(OpenError::Dynamic {
            profile: profile.to_string(),
            local: forwards[*one].local.clone(),
        }),
        [one] => Ok(*one),
        [] if wanted.is_some() => Err(OpenError::NoSuchForward {
            profile: profile.to_string(),
            wanted: wanted.unwrap_or_default().to_string(),
            listed: describe(forwards),
        }),
        _ => {
            // Candidates to name: never a SOCKS proxy, which `open` refuses.
            let pool: Vec<usize> = if fits.is_empty() {
                (0..forwards.len()).collect()
            } else {
                fits
            };
            let shown: Vec<ForwardJson> = pool
                .iter()
                .map(|&i| forwards[i].clone())
                .filter(|f| f.kind != ForwardType::Dynamic)
                .collect();
            let Some(first) = shown.first() else {
                return Err(OpenError::Dynamic {
                    profile: profile.to_string(),
                    local: forwards[pool[0]].local.clone(),
                });
            };
            let example = first.remote.clone();
            Err(OpenError::Ambiguous {
                profile: profile.to_string(),
                count: shown.len(),
                listed: describe(&shown),
                example,
            })
        }
    }
}

/// `--client CMD` split into words as a shell would (quotes, backslashes), without a shell.
pub fn parse_client(command: &str) -> Result<Vec<String>, OpenError> {
    match shlex::split(command) {
        Some(words) if !words.is_empty() => Ok(words),
        _ => Err(OpenError::BadClient(command.to_string())),
    }
}

/// Where a client reaches a forward: its bound address, with a wildcard bind (`0.0.0.0`, `::`)
/// reached on loopback. The host is bracketed for IPv6 (`[::1]`), as the clients expect.
pub fn endpoint(local: &str) -> Result<(String, u16), OpenError> {
    let not_bound = || OpenError::NotBound(local.to_string());
    let (host, port) = match local.parse::<SocketAddr>() {
        Ok(addr) => {
            let ip = match addr.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let host = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            (host, addr.port())
        }
        Err(_) => {
            let (host, port) = local.rsplit_once(':').ok_or_else(not_bound)?;
            (host.to_string(), port.parse().map_err(|_| not_bound())?)
        }
    };
    if port == 0 {
        return Err(not_bound());
    }
    Ok((host, port))
}

/// The command line with `{host}` and `{port}` replaced in every word (after splitting, so a
/// value can never become two arguments), and `{file}` by `file` when there is one
/// ([`Input::RdpFile`]).
pub fn fill(argv: &[String], host: &str, port: u16, file: Option<&Path>) -> Vec<String> {
    argv.iter()
        .map(|w| {
            let w = w
                .replace("{host}", host)
                .replace("{port}", &port.to_string());
            match file {
                Some(f) => w.replace("{file}", &f.to_string_lossy()),
                None => w,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(local: &str, remote: &str) -> ForwardJson {
        ForwardJson {
            kind: if remote == "socks" {
                ForwardType::Dynamic
            } else {
                ForwardType::Local
            },
            local: local.into(),
            exposed: false,
            remote: remote.into(),
            active: 0,
            total: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    #[test]
    fn ports_tell_the_protocol() {
        assert_eq!(Protocol::of_port(3389), Some(Protocol::Rdp));
        assert_eq!(Protocol::of_port(5900), Some(Protocol::Vnc));
        assert_eq!(Protocol::of_port(5901), Some(Protocol::Vnc));
        assert_eq!(Protocol::of_port(5999), Some(Protocol::Vnc));
        assert_eq!(Protocol::of_port(6000), None);
        assert_eq!(Protocol::of_port(443), None);
    }

    #[test]
    fn the_forward_is_picked_by_port_or_remote_or_the_only_desktop_one() {
        let fs = [
            fwd("127.0.0.1:8443", "intranet:443"),
            fwd("127.0.0.1:13389", "winserver:3389"),
            fwd("127.0.0.1:15901", "vnc:5901"),
        ];
        assert_eq!(pick_forward("p", &fs[..1], None), Ok(0));
        assert_eq!(pick_forward("p", &fs[..2], None), Ok(1));
        assert_eq!(pick_forward("p", &fs, Some("13389")), Ok(1));
        assert_eq!(pick_forward("p", &fs, Some("5901")), Ok(2));
        assert_eq!(pick_forward("p", &fs, Some("WinServer:3389")), Ok(1));
        // The local address as `status` prints it names the forward too.
        assert_eq!(pick_forward("p", &fs, Some("127.0.0.1:15901")), Ok(2));
        let e = pick_forward("p", &fs, None).unwrap_err();
        assert!(matches!(e, OpenError::Ambiguous { count: 2, .. }), "{e}");
        assert!(
            e.to_string().contains("tunnelkit open p winserver:3389"),
            "{e}"
        );
        let e = pick_forward("p", &fs, Some("22")).unwrap_err();
        assert!(
            e.to_string()
                .contains("no forward 22; its forwards: 127.0.0.1:8443 -> intranet:443"),
            "{e}"
        );
        assert!(matches!(
            pick_forward("p", &[], None),
            Err(OpenError::NoForwards { .. })
        ));
    }

    #[test]
    fn a_local_address_is_named_in_every_form_status_shows_it() {
        let fs = [
            fwd("127.0.0.2:13389", "winserver:3389"),
            fwd("127.0.0.1:13390", "other:3389"),
            fwd("[::1]:15901", "vnc:5901"),
            fwd("0.0.0.0:13391", "third:3389"),
            fwd("*:13392", "fourth:3389"),
        ];
        for (wanted, index) in [
            ("127.0.0.2:13389", 0),
            (" 127.0.0.2:13389", 0),
            // Down, a profile's `local = 13390` shows as configured; up, as bound.
            ("localhost:13390", 1),
            ("LOCALHOST:13390", 1),
            ("127.0.0.1:13390", 1),
            ("[::1]:15901", 2),
            ("::1:15901", 2),
            ("[0:0:0:0:0:0:0:1]:15901", 2),
            ("*:13391", 3),
            ("[::]:13391", 3),
            (":13391", 3),
            ("0.0.0.0:13392", 4),
        ] {
            assert_eq!(pick_forward("p", &fs, Some(wanted)), Ok(index), "{wanted}");
        }
        for wanted in [
            "127.0.0.3:13389",
            "127.0.0.2:13390",
            "localhost:13389",
            "[::1]:13389",
        ] {
            assert!(
                matches!(
                    pick_forward("p", &fs, Some(wanted)),
                    Err(OpenError::NoSuchForward { .. })
                ),
                "{wanted}"
            );
        }
    }

    #[test]
    fn a_socks_proxy_is_refused_with_what_to_do_instead() {
        let socks = fwd("127.0.0.1:1080", "socks");
        let e = pick_forward("web", std::slice::from_ref(&socks), None).unwrap_err();
        assert!(matches!(e, OpenError::Dynamic { .. }), "{e}");
        assert!(e.to_string().contains("is a SOCKS proxy (-D)"), "{e}");
        assert!(
            e.to_string()
                .contains("curl --socks5-hostname 127.0.0.1:1080"),
            "{e}"
        );
        let fs = [socks, fwd("127.0.0.1:13389", "winserver:3389")];
        // Without FORWARD: the only desktop forward, the proxy is not a candidate.
        assert_eq!(pick_forward("p", &fs, None), Ok(1));
        // No desktop port among several forwards: the proxy is neither listed nor the example.
        let web = [
            fwd("127.0.0.1:1080", "socks"),
            fwd("127.0.0.1:8443", "intranet:443"),
            fwd("127.0.0.1:2222", "git:22"),
        ];
        let e = pick_forward("p", &web, None).unwrap_err();
        assert!(matches!(e, OpenError::Ambiguous { count: 2, .. }), "{e}");
        assert!(!e.to_string().contains("1080"), "{e}");
        assert!(
            e.to_string().contains("tunnelkit open p intranet:443"),
            "{e}"
        );
        // Only proxies: the proxy is refused, never suggested.
        let two_proxies = [web[0].clone(), web[0].clone()];
        assert!(matches!(
            pick_forward("p", &two_proxies, None),
            Err(OpenError::Dynamic { .. })
        ));
        // Named by its local port or as `socks`: refused, not opened with a desktop client.
        for wanted in ["1080", "socks"] {
            assert!(
                matches!(
                    pick_forward("p", &fs, Some(wanted)),
                    Err(OpenError::Dynamic { .. })
                ),
                "{wanted}"
            );
        }
    }

    #[test]
    fn client_commands_split_without_a_shell_and_values_stay_one_word() {
        let argv = parse_client("xfreerdp +auth-only '/p:two words' /v:{host}:{port}").unwrap();
        assert_eq!(
            argv,
            ["xfreerdp", "+auth-only", "/p:two words", "/v:{host}:{port}"]
        );
        let filled = fill(&argv, "127.0.0.1", 40001, None);
        assert_eq!(filled[3], "/v:127.0.0.1:40001");
        let injected = fill(&["x{host}".to_string()], "a b; rm", 1, None);
        assert_eq!(injected, ["xa b; rm"]);
        assert!(parse_client("").is_err());
        assert!(parse_client("xfreerdp 'open").is_err());
    }

    #[test]
    fn the_endpoint_is_the_bound_address_on_loopback_for_a_wildcard() {
        assert_eq!(endpoint("127.0.0.1:40001"), Ok(("127.0.0.1".into(), 40001)));
        // A profile's own loopback address (`local = "127.0.0.5:3389"`) is kept.
        assert_eq!(endpoint("127.0.0.5:3389"), Ok(("127.0.0.5".into(), 3389)));
        assert_eq!(endpoint("0.0.0.0:5901"), Ok(("127.0.0.1".into(), 5901)));
        assert_eq!(endpoint("[::]:5901"), Ok(("[::1]".into(), 5901)));
        assert_eq!(endpoint("[::1]:3389"), Ok(("[::1]".into(), 3389)));
        assert_eq!(endpoint("localhost:13389"), Ok(("localhost".into(), 13389)));
        assert!(matches!(
            endpoint("127.0.0.1:0"),
            Err(OpenError::NotBound(_))
        ));
    }
}
