//! SOCKS for dynamic forwards (`ssh -D`): a pure parser of the client's side of the handshake,
//! SOCKS5 (RFC 1928: the CONNECT command, the "no authentication" method; IPv4, IPv6 and domain
//! names) and SOCKS4/4a. Domain names are never resolved here: they travel as they are to the far
//! end, whose sshd resolves them (as ssh does), so a name known only inside the site works.
//!
//! [`Handshake`] is a state machine fed with the bytes received so far; it never reads or writes
//! by itself, so every case is a table test and a fuzz target. Bad input (an unknown version,
//! BIND or UDP ASSOCIATE, no acceptable method, a bad address type, an empty or oversized name)
//! is a [`SocksError`] with the reply the protocol has for it; a greeting that stops short is
//! answered the same way by [`Handshake::refusal`] when the client closes or the deadline
//! ([`defaults::SOCKS_HANDSHAKE_TIMEOUT`](crate::defaults::SOCKS_HANDSHAKE_TIMEOUT)) passes.
//!
//! The async shell around it (read, write, deadline) is the private `io` module.

pub(crate) mod io;
#[cfg(test)]
mod tests;
mod wire;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::config::Target;

/// The longest domain name accepted (SOCKS5 carries at most 255 bytes; SOCKS4a the same here).
pub const MAX_NAME: usize = 255;
/// The longest SOCKS4 user id accepted (it is read and ignored).
pub const MAX_USER_ID: usize = 255;
/// The most bytes a handshake can take before the request is complete (SOCKS4a with the
/// longest user id and name): a client that sends more without finishing is refused.
pub const MAX_HANDSHAKE: usize = 8 + MAX_USER_ID + 1 + MAX_NAME + 1;

/// SOCKS5's "no authentication required" method.
const NO_AUTH: u8 = 0x00;
/// SOCKS5's "no acceptable methods" answer.
const NO_ACCEPTABLE: u8 = 0xff;

/// The protocol a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// SOCKS4: an IPv4 address.
    Socks4,
    /// SOCKS4a: a domain name, resolved by the far end.
    Socks4a,
    /// SOCKS5.
    Socks5,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Socks4 => "SOCKS4",
            Version::Socks4a => "SOCKS4a",
            Version::Socks5 => "SOCKS5",
        })
    }
}

/// Where a client asked to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Host {
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (SOCKS5 only).
    Ipv6(Ipv6Addr),
    /// A domain name, unresolved: the route's last hop resolves it.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A complete CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The protocol spoken.
    pub version: Version,
    /// Where to connect.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl Request {
    /// The target of the `direct-tcpip` channel: the host as the client gave it.
    pub fn target(&self) -> Target {
        Target {
            host: self.host.to_string(),
            port: self.port,
        }
    }

    /// The reply to send once the channel is open (or could not be).
    pub fn reply(&self, outcome: Outcome) -> Vec<u8> {
        match self.version {
            Version::Socks5 => socks5_reply(outcome),
            Version::Socks4 | Version::Socks4a => socks4_reply(outcome),
        }
    }
}

/// What the reply to a request says. SOCKS4 has only "granted" and "rejected"; every failure
/// is "rejected" there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Connected.
    Granted,
    /// Any other failure (SOCKS5 `01`).
    GeneralFailure,
    /// No route is up (SOCKS5 `03`).
    NetworkUnreachable,
    /// The channel open ran out of time (SOCKS5 `04`).
    HostUnreachable,
    /// The far end could not connect to the target (SOCKS5 `05`).
    ConnectionRefused,
    /// BIND or UDP ASSOCIATE (SOCKS5 `07`).
    CommandNotSupported,
    /// An address type other than IPv4, IPv6 or a domain name (SOCKS5 `08`).
    AddressTypeNotSupported,
}

impl Outcome {
    /// SOCKS5's reply code.
    pub fn socks5_code(self) -> u8 {
        match self {
            Outcome::Granted => 0x00,
            Outcome::GeneralFailure => 0x01,
            Outcome::NetworkUnreachable => 0x03,
            Outcome::HostUnreachable => 0x04,
            Outcome::ConnectionRefused => 0x05,
            Outcome::CommandNotSupported => 0x07,
            Outcome::AddressTypeNotSupported => 0x08,
        }
    }

    /// SOCKS4's reply code: 90 granted, 91 rejected.
    pub fn socks4_code(self) -> u8 {
        match self {
            Outcome::Granted => 90,
            _ => 91,
        }
    }
}

/// SOCKS5's reply: the code, and a bound address of 0.0.0.0:0 (the far end's address is not
/// known here, and clients do not use it for CONNECT).
fn socks5_reply(outcome: Outcome) -> Vec<u8> {
    vec![5, outcome.socks5_code(), 0, 1, 0, 0, 0, 0, 0, 0]
}

/// SOCKS4's reply (version byte 0, then the code; port and address are ignored by clients).
fn socks4_reply(outcome: Outcome) -> Vec<u8> {
    vec![0, outcome.socks4_code(), 0, 0, 0, 0, 0, 0]
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocksError {
    /// The first byte is neither 4 nor 5.
    #[error("unknown SOCKS version {0:#04x}")]
    UnknownVersion(u8),
    /// A SOCKS5 request whose version byte is not 5.
    #[error("SOCKS5 request with version byte {0:#04x}")]
    BadRequestVersion(u8),
    /// The client offered no method we accept (only "no authentication" is). Its text names
    /// at most [`METHODS_SHOWN`] of them: a log line built from peer input stays short.
    #[error("SOCKS5: {} (only 00, no authentication, is accepted)", methods_text(.0))]
    NoAcceptableMethod(Vec<u8>),
    /// A command other than CONNECT (BIND, UDP ASSOCIATE, ...).
    #[error("{version}: command {command:#04x} ({}) is not supported, only CONNECT", command_name(*command, *version))]
    UnsupportedCommand {
        /// The protocol spoken.
        version: Version,
        /// The command byte.
        command: u8,
    },
    /// A SOCKS5 address type other than 1 (IPv4), 3 (domain name) or 4 (IPv6).
    #[error("SOCKS5: address type {0:#04x} is not supported")]
    UnsupportedAddressType(u8),
    /// A domain name of length zero.
    #[error("{0}: the domain name is empty")]
    EmptyName(Version),
    /// A SOCKS4a domain name longer than [`MAX_NAME`].
    #[error("SOCKS4a: the domain name is longer than {MAX_NAME} bytes")]
    NameTooLong,
    /// A SOCKS4 user id longer than [`MAX_USER_ID`].
    #[error("SOCKS4: the user id is longer than {MAX_USER_ID} bytes")]
    UserIdTooLong,
    /// A domain name that is not UTF-8 or holds control characters or white space.
    #[error("{0}: the domain name is not a host name")]
    BadName(Version),
    /// Port 0 is not a destination.
    #[error("{0}: port 0 is not a destination")]
    PortZero(Version),
    /// The client closed before the request was complete.
    #[error("the client closed the connection before its SOCKS request was complete")]
    Truncated,
    /// The request was not complete before the deadline.
    #[error("no complete SOCKS request within {0:?}")]
    Timeout(std::time::Duration),
    /// Reading from or writing to the client failed.
    #[error("SOCKS handshake: {0}")]
    Io(String),
}

/// The most SOCKS5 methods an error's text lists one by one; more are summarised by count.
pub const METHODS_SHOWN: usize = 8;

fn methods_text(methods: &[u8]) -> String {
    if methods.len() <= METHODS_SHOWN {
        format!("no acceptable authentication method among {methods:02x?}")
    } else {
        format!("{} methods offered, none acceptable", methods.len())
    }
}

fn command_name(command: u8, version: Version) -> &'static str {
    match (version, command) {
        (_, 2) => "BIND",
        (Version::Socks5, 3) => "UDP ASSOCIATE",
        _ => "unknown",
    }
}

/// What to do next in a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read more bytes, then call [`Handshake::step`] again with everything not yet consumed.
    NeedMore,
    /// Send `reply` to the client, drop the first `consumed` bytes of the input, and call
    /// [`Handshake::step`] again with the rest (a client may send its request before the
    /// method reply arrives).
    Send {
        /// The bytes to write.
        reply: Vec<u8>,
        /// How many input bytes this step used.
        consumed: usize,
    },
    /// The request is complete: open the channel, then send [`Request::reply`]. Input after
    /// the first `consumed` bytes is the client's first data for the target.
    Connect {
        /// What the client asked for.
        request: Request,
        /// How many input bytes the request used.
        consumed: usize,
    },
    /// Refused: send `reply` (when the protocol has one) and close.
    Refuse {
        /// The refusal, in the protocol's words.
        reply: Option<Vec<u8>>,
        /// Why, for the log.
        error: SocksError,
    },
}

/// Where a handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Nothing decided yet.
    #[default]
    Greeting,
    /// SOCKS5, "no authentication" chosen: the request comes next.
    Socks5Request,
    /// A request was returned or the handshake refused: nothing more to parse.
    Finished,
}

/// The server side of one SOCKS handshake, fed with the bytes the client sent.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    phase: Phase,
    /// The version byte once seen, so that a handshake cut short is refused in its protocol.
    version: Option<u8>,
}

impl Handshake {
    /// A handshake that has seen nothing.
    pub fn new() -> Self {
        Handshake::default()
    }

    /// Parses `input` (every byte received and not yet consumed) and says what to do next.
    /// Never needs more than [`MAX_HANDSHAKE`] bytes in all.
    pub fn step(&mut self, input: &[u8]) -> Step {
        let step = match self.phase {
            Phase::Greeting => self.greeting(input),
            Phase::Socks5Request => wire::socks5_request(input),
            Phase::Finished => Step::Refuse {
                reply: None,
                error: SocksError::Io("the handshake is already over".into()),
            },
        };
        match &step {
            Step::Send { .. } => self.phase = Phase::Socks5Request,
            Step::Connect { .. } | Step::Refuse { .. } => self.phase = Phase::Finished,
            Step::NeedMore => {}
        }
        step
    }

    /// The refusal to send when the handshake is cut short (`error` is [`SocksError::Truncated`]
    /// or [`SocksError::Timeout`]), in the protocol the client began to speak.
    pub fn refusal(&mut self, error: SocksError) -> Step {
        let reply = match (self.phase, self.version) {
            (Phase::Finished, _) | (Phase::Greeting, None) => None,
            (Phase::Greeting, Some(4)) => Some(socks4_reply(Outcome::GeneralFailure)),
            (Phase::Greeting, Some(_)) => Some(vec![5, NO_ACCEPTABLE]),
            (Phase::Socks5Request, _) => Some(socks5_reply(Outcome::GeneralFailure)),
        };
        self.phase = Phase::Finished;
        Step::Refuse { reply, error }
    }

    fn greeting(&mut self, input: &[u8]) -> Step {
        let Some(&version) = input.first() else {
            return Step::NeedMore;
        };
        self.version = Some(version);
        match version {
            5 => wire::socks5_greeting(input),
            4 => wire::socks4_request(input),
            // No protocol to answer in: SOCKS5's "no acceptable methods" is the refusal a
            // SOCKS5 server gives any greeting it cannot serve.
            v => Step::Refuse {
                reply: Some(vec![5, NO_ACCEPTABLE]),
                error: SocksError::UnknownVersion(v),
            },
        }
    }
}
