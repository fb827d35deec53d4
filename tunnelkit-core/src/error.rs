//! The core's one error type. Each variant says what went wrong in an admin's words, and
//! [`Error::is_permanent`] tells the supervisor whether trying again could help: it decides
//! retries from that, never from message text.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::spec::SpecError;

/// Which step of bringing up a hop failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Resolving the name and opening the TCP connection (first hop only).
    Connect,
    /// Opening the `direct-tcpip` channel through the previous hop (later hops).
    Jump,
    /// SSH version exchange and key exchange.
    Handshake,
    /// User authentication.
    Auth,
    /// Opening a forward's channel to its target.
    ChannelOpen,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "TCP connect",
            Stage::Jump => "jump through the previous hop",
            Stage::Handshake => "SSH handshake",
            Stage::Auth => "authentication",
            Stage::ChannelOpen => "channel open",
        })
    }
}

/// Why an established session ended. The supervisor's rules key on this, never on text:
/// an orderly close is followed by an immediate reconnect to the same route; a reset or silence
/// moves to the next route at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionLoss {
    /// The server ended the session in order: it sent SSH_MSG_DISCONNECT, or closed the transport
    /// (EOF) while no forwarded connection was open, so nothing was lost. sshd does this for
    /// `UnusedConnectionTimeout`, `ChannelTimeout` followed by it, a restart or an admin's kill.
    Closed {
        /// The hop that closed, as `user@host:port`.
        hop: String,
        /// The server's message (SSH_MSG_DISCONNECT), or what was seen (EOF).
        detail: String,
    },
    /// The transport failed: reset, broken pipe, a protocol error, or EOF while connections were
    /// open (their data may be lost).
    Reset {
        /// The hop whose transport failed.
        hop: String,
        /// The error.
        detail: String,
    },
    /// Nothing was received for `ServerAliveInterval x ServerAliveCountMax` while we were running
    /// and probing (time our own process was stopped does not count).
    Silent {
        /// How long nothing was heard.
        silent_for: Duration,
        /// `ServerAliveInterval`.
        interval: Duration,
        /// `ServerAliveCountMax`.
        count_max: u32,
    },
    /// After a network change (interface, address or default route), the probe of the session in
    /// use got no answer within its deadline.
    NoAnswerAfterNetworkChange {
        /// The probe's deadline.
        waited: Duration,
    },
    /// The tunnel is stopping.
    Stopped,
}

impl SessionLoss {
    /// True for an orderly close by the server: reconnect to the same route at once; fail over
    /// only if that route then cannot be reached or authenticated.
    pub fn is_orderly(&self) -> bool {
        matches!(self, SessionLoss::Closed { .. })
    }
}

impl std::fmt::Display for SessionLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionLoss::Closed { hop, detail } => write!(f, "{hop} closed the session ({detail})"),
            SessionLoss::Reset { hop, detail } => write!(f, "connection to {hop} failed: {detail}"),
            SessionLoss::Silent {
                silent_for,
                interval,
                count_max,
            } => write!(
                f,
                "no reply to keepalives for {:.1}s (ServerAliveInterval {}s x ServerAliveCountMax {count_max})",
                silent_for.as_secs_f32(),
                interval.as_secs_f32()
            ),
            SessionLoss::NoAnswerAfterNetworkChange { waited } => write!(
                f,
                "no reply to a keepalive within {:.1}s after a network change",
                waited.as_secs_f32()
            ),
            SessionLoss::Stopped => f.write_str("the tunnel is stopping"),
        }
    }
}

/// What kind of failure a route attempt ended with, as the supervisor's rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AttemptFailure {
    /// Not reachable, timed out, closed during the handshake: try the next route, retry later.
    Unreachable,
    /// Credentials refused: retried only on the capped backoff, so no account gets locked.
    AuthRefused,
    /// A person must supply something nobody could be asked for.
    NeedsInput,
    /// Host key changed, revoked or unknown: the route is never tried again by itself.
    HostKey,
    /// Configuration that cannot work (bad option, missing key file): retried on the backoff.
    Config,
}

impl AttemptFailure {
    /// True when the route is never tried again by itself (a host key problem): a person must
    /// act (fix known_hosts, or bring the profile up again).
    pub fn never_retried(self) -> bool {
        matches!(self, AttemptFailure::HostKey)
    }

    /// True when a person must supply something (a passphrase, password, one-time code or host
    /// key decision) that nobody could be asked for.
    pub fn needs_input(self) -> bool {
        matches!(self, AttemptFailure::NeedsInput)
    }
}

/// Why a command tunnelkit ran for itself (a certificate command) did not succeed. What it
/// printed is never part of it: only how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandFailure {
    /// It could not be started (not found, not executable).
    #[error("cannot run it: {0}")]
    Start(String),
    /// It exited with a status other than 0.
    #[error("exited with status {code} (its output, {stdout_bytes} bytes on stdout and {stderr_bytes} on stderr, is not shown: it may hold secrets; run the command yourself to see it)")]
    Exit {
        /// The exit status.
        code: i32,
        /// Bytes it wrote to standard output.
        stdout_bytes: u64,
        /// Bytes it wrote to standard error.
        stderr_bytes: u64,
    },
    /// It was ended by a signal.
    #[error("ended by a signal ({0})")]
    Signal(String),
    /// It did not finish within its deadline and was ended with its process group.
    #[error("did not finish within {} s; ended with its process group", .0.as_secs())]
    Timeout(Duration),
}

/// Why a host certificate was refused, in the order ssh checks (the texts are ssh's terms).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateRejection {
    /// A matching `@revoked` line names the certificate's CA key.
    #[error("its CA key is marked as revoked in {}:{line}", file.display())]
    CaRevoked {
        /// The file holding the `@revoked` line.
        file: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
    /// It is signed by a key that none of the host's `@cert-authority` lines names.
    #[error(
        "it is signed by CA key {ca}, which is not the CA of the @cert-authority lines for this \
         host ({})",
        lines.join(", ")
    )]
    UnknownCa {
        /// SHA256 fingerprint of the key that signed it.
        ca: String,
        /// The `file:line` of each `@cert-authority` line that applies to the host.
        lines: Vec<String>,
    },
    /// Its validity interval is empty (`valid_after >= valid_before`).
    #[error("its validity interval is empty ({after} to {before})")]
    EmptyValidity {
        /// `valid_after`, seconds since the epoch.
        after: u64,
        /// `valid_before`, seconds since the epoch.
        before: u64,
    },
    /// The CA's signature over it does not verify.
    #[error("its CA signature does not verify")]
    BadSignature,
    /// It is a user certificate, not a host certificate.
    #[error("it is not a host certificate (it is a user certificate)")]
    NotAHostCertificate,
    /// It is not valid yet.
    #[error("it is not yet valid (valid {})", crate::session::validity::validity(*after, *before))]
    NotYetValid {
        /// `valid_after`, seconds since the epoch.
        after: u64,
        /// `valid_before`, seconds since the epoch (`u64::MAX`: forever).
        before: u64,
    },
    /// It has expired.
    #[error("it has expired (valid {})", crate::session::validity::validity(*after, *before))]
    Expired {
        /// `valid_after`, seconds since the epoch.
        after: u64,
        /// `valid_before`, seconds since the epoch.
        before: u64,
    },
    /// The name connected to (the `HostKeyAlias`, else the host name) is not among its
    /// principals.
    #[error("'{principal}' is not a listed principal (principals: {})", principals.join(", "))]
    WrongPrincipal {
        /// The name connected to, lowercased.
        principal: String,
        /// The principals it lists.
        principals: Vec<String>,
    },
    /// It carries critical options, which ssh does not support for host certificates.
    #[error("it contains unsupported critical options: {}", names.join(", "))]
    CriticalOptions {
        /// Their names.
        names: Vec<String>,
    },
    /// Its CA signed it with an algorithm ssh's default `CASignatureAlgorithms` refuses.
    #[error("its CA signed it with {algorithm}, which is not allowed")]
    WeakSignature {
        /// `ssh-rsa (SHA-1)` or `ssh-dss (DSA)`.
        algorithm: &'static str,
    },
}

/// Everything that can go wrong in tunnelkit-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hop, forward or port string could not be parsed. Permanent.
    #[error(transparent)]
    Spec(#[from] SpecError),

    /// A configuration value is invalid or inconsistent (unknown option, bad value). Permanent.
    #[error("{0}")]
    Config(String),

    /// A bug in tunnelkit: something that cannot happen did (an index out of range, an
    /// invariant that validation should have held). Not the user's configuration. Permanent.
    #[error("internal error (a bug in tunnelkit; please report it): {0}")]
    Internal(String),

    /// A local forward could not be bound (port in use, no permission, bad address). Permanent.
    #[error("bind {addr}: {reason}")]
    Bind {
        /// The address as `host:port`.
        addr: String,
        /// The OS error in ssh's words, e.g. `address already in use`.
        reason: String,
    },

    /// Could not reach a host: refused, unreachable, name not found. Transient.
    #[error("connect to {host} port {port}: {reason}")]
    Connect {
        /// Host as configured.
        host: String,
        /// Port.
        port: u16,
        /// The OS or resolver error.
        reason: String,
    },

    /// A step did not finish within its deadline. Transient.
    #[error("{stage} with {host} port {port} timed out after {}s", after.as_secs_f32())]
    Timeout {
        /// What was being done.
        stage: Stage,
        /// Host as configured.
        host: String,
        /// Port.
        port: u16,
        /// The deadline that passed.
        after: Duration,
    },

    /// The SSH protocol failed (bad banner, no common algorithm, connection closed). Transient.
    #[error("SSH with {host} port {port} failed during {stage}: {reason}")]
    Protocol {
        /// What was being done.
        stage: Stage,
        /// Host as configured.
        host: String,
        /// Port.
        port: u16,
        /// The protocol error.
        reason: String,
    },

    /// The server's host key differs from the one recorded in known_hosts. Permanent, never
    /// retried: it may be an attack.
    #[error(
        "REMOTE HOST IDENTIFICATION HAS CHANGED for {host}: the server offered {key_type} key \
         {fingerprint}, but {file}:{line} records a different key. Someone could be intercepting \
         the connection, or the host key was changed. Refusing to connect. If the change is \
         expected, remove the old key with: ssh-keygen -f \"{file}\" -R \"{host}\""
    )]
    HostKeyChanged {
        /// The host as looked up in known_hosts (`host` or `[host]:port`).
        host: String,
        /// Key type offered by the server.
        key_type: String,
        /// SHA256 fingerprint of the offered key.
        fingerprint: String,
        /// known_hosts file holding the old key.
        file: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },

    /// The server's host key is marked `@revoked`. Permanent.
    #[error("host key {fingerprint} for {host} is marked as revoked in {file}:{line}; refusing to connect")]
    HostKeyRevoked {
        /// The host as looked up.
        host: String,
        /// SHA256 fingerprint.
        fingerprint: String,
        /// The file holding the `@revoked` line.
        file: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },

    /// The server's host certificate is not vouched for by the `@cert-authority` lines that apply
    /// to the host: untrusted or revoked CA, bad signature, not a host certificate, not valid
    /// now, or the name connected to is not among its principals. Permanent, never retried.
    #[error("host certificate of {host} refused: {reason} ({certificate}); refusing to connect")]
    HostCertificateRejected {
        /// The host as looked up in known_hosts (`host`, `[host]:port` or the `HostKeyAlias`).
        host: String,
        /// Which certificate: its ID, serial and the SHA256 fingerprint of its CA key.
        certificate: String,
        /// What failed (its text, e.g. `it has expired (valid from ... to ...)`).
        reason: CertificateRejection,
    },

    /// The host is not in known_hosts and the policy (or the person asked) refused it. Permanent.
    #[error(
        "host key verification failed: no key for {host} in {files} ({key_type} key {fingerprint}); \
         {why}"
    )]
    HostKeyUnknown {
        /// The host as looked up.
        host: String,
        /// Key type.
        key_type: String,
        /// SHA256 fingerprint.
        fingerprint: String,
        /// The known_hosts files searched.
        files: String,
        /// Why it was not accepted (policy, or the answer).
        why: String,
    },

    /// The server accepted none of the credentials tried. Permanent for this attempt; the
    /// supervisor retries it only on the capped backoff, so an account is not locked.
    #[error("{user}@{host}: permission denied ({tried}); server allows: {allowed}")]
    AuthRejected {
        /// Login name.
        user: String,
        /// Host as configured.
        host: String,
        /// What was tried, e.g. `agent, publickey ~/.ssh/id_ed25519`.
        tried: String,
        /// Methods the server still offered.
        allowed: String,
    },

    /// A private key file could not be used (unreadable, too open, bad passphrase). Permanent.
    #[error("{}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Something needed a person (passphrase, password, host key decision) and none could be
    /// asked (BatchMode, no TTY, no agent client attached). Permanent until input is given.
    #[error("needs input: {0}")]
    NeedsInput(String),

    /// The bastion refused to open a channel to the target (refused, prohibited). Affects one
    /// connection only. Transient.
    #[error("channel to {target} refused by {hop}: {reason}")]
    ChannelRefused {
        /// `host:port` of the target.
        target: String,
        /// The hop that refused.
        hop: String,
        /// The server's reason.
        reason: String,
    },

    /// An established session ended (closed, reset, keepalive timeout). Transient.
    #[error("session lost: {0}")]
    SessionLost(String),

    /// No route is up and none came up in time for a waiting connection. Transient.
    #[error("no route is up (waited {}s)", .0.as_secs_f32())]
    NoRoute(Duration),

    /// An error on one hop of a route, with the route and hop named. Its text includes the
    /// inner error's, so the inner error is not also its `source()` (a cause is shown once).
    #[error("route {route}, hop {index} ({hop}): {error}")]
    Hop {
        /// Route name.
        route: String,
        /// 1-based index of the hop in the route.
        index: usize,
        /// `user@host:port` of the hop.
        hop: String,
        /// What went wrong there.
        error: Box<Error>,
    },

    /// The certificate command (a profile's `certificate_command`, `--certificate-command`)
    /// did not refresh the certificate: it could not start, failed, or ran too long. Its output
    /// is never shown (it may hold tokens). Transient: the route is tried again later.
    #[error("certificate command {program}: {failure}")]
    CertificateCommand {
        /// The program (the command's first word).
        program: String,
        /// What happened.
        failure: CommandFailure,
    },

    /// Local I/O error, with what was being done. Its text includes the OS error's, so that
    /// is not also its `source()` (a cause is shown once).
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        error: std::io::Error,
    },
}

impl Error {
    /// True when retrying the same thing cannot help without a change (config, host key,
    /// credentials, a person's input). The supervisor never retries these in a fast loop.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Spec(_)
            | Error::Config(_)
            | Error::Internal(_)
            | Error::Bind { .. }
            | Error::HostKeyChanged { .. }
            | Error::HostKeyRevoked { .. }
            | Error::HostCertificateRejected { .. }
            | Error::HostKeyUnknown { .. }
            | Error::AuthRejected { .. }
            | Error::KeyFile { .. }
            | Error::NeedsInput(_) => true,
            Error::Hop { error, .. } => error.is_permanent(),
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Protocol { .. }
            | Error::ChannelRefused { .. }
            | Error::SessionLost(_)
            | Error::NoRoute(_)
            | Error::CertificateCommand { .. }
            | Error::Io { .. } => false,
        }
    }

    /// True for a host key problem: the route using it must never be tried again by itself.
    pub fn is_host_key(&self) -> bool {
        match self {
            Error::HostKeyChanged { .. }
            | Error::HostKeyRevoked { .. }
            | Error::HostCertificateRejected { .. }
            | Error::HostKeyUnknown { .. } => true,
            Error::Hop { error, .. } => error.is_host_key(),
            _ => false,
        }
    }

    /// How the supervisor treats this error when a route attempt fails with it.
    pub fn attempt_failure(&self) -> AttemptFailure {
        match self.root() {
            e if e.is_host_key() => AttemptFailure::HostKey,
            Error::AuthRejected { .. } => AttemptFailure::AuthRefused,
            Error::NeedsInput(_) => AttemptFailure::NeedsInput,
            e if e.is_permanent() => AttemptFailure::Config,
            _ => AttemptFailure::Unreachable,
        }
    }

    /// The innermost error, below any [`Error::Hop`] wrapping.
    pub fn root(&self) -> &Error {
        match self {
            Error::Hop { error, .. } => error.root(),
            e => e,
        }
    }

    /// The same error again, for a second party that waited on one attempt (tunnels sharing a
    /// login through a [`SessionPool`](crate::SessionPool) each see the failure): the same
    /// variant and fields; an I/O error keeps its kind and text.
    pub(crate) fn replicate(&self) -> Error {
        match self {
            Error::CertificateCommand { program, failure } => Error::CertificateCommand {
                program: program.clone(),
                failure: failure.clone(),
            },
            Error::Spec(e) => Error::Spec(e.clone()),
            Error::Config(s) => Error::Config(s.clone()),
            Error::Internal(s) => Error::Internal(s.clone()),
            Error::Bind { addr, reason } => Error::Bind {
                addr: addr.clone(),
                reason: reason.clone(),
            },
            Error::Connect { host, port, reason } => Error::Connect {
                host: host.clone(),
                port: *port,
                reason: reason.clone(),
            },
            Error::Timeout {
                stage,
                host,
                port,
                after,
            } => Error::Timeout {
                stage: *stage,
                host: host.clone(),
                port: *port,
                after: *after,
            },
            Error::Protocol {
                stage,
                host,
                port,
                reason,
            } => Error::Protocol {
                stage: *stage,
                host: host.clone(),
                port: *port,
                reason: reason.clone(),
            },
            Error::HostKeyChanged {
                host,
                key_type,
                fingerprint,
                file,
                line,
            } => Error::HostKeyChanged {
                host: host.clone(),
                key_type: key_type.clone(),
                fingerprint: fingerprint.clone(),
                file: file.clone(),
                line: *line,
            },
            Error::HostKeyRevoked {
                host,
                fingerprint,
                file,
                line,
            } => Error::HostKeyRevoked {
                host: host.clone(),
                fingerprint: fingerprint.clone(),
                file: file.clone(),
                line: *line,
            },
            Error::HostCertificateRejected {
                host,
                certificate,
                reason,
            } => Error::HostCertificateRejected {
                host: host.clone(),
                certificate: certificate.clone(),
                reason: reason.clone(),
            },
            Error::HostKeyUnknown {
                host,
                key_type,
                fingerprint,
                files,
                why,
            } => Error::HostKeyUnknown {
                host: host.clone(),
                key_type: key_type.clone(),
                fingerprint: fingerprint.clone(),
                files: files.clone(),
                why: why.clone(),
            },
            Error::AuthRejected {
                user,
                host,
                tried,
                allowed,
            } => Error::AuthRejected {
                user: user.clone(),
                host: host.clone(),
                tried: tried.clone(),
                allowed: allowed.clone(),
            },
            Error::KeyFile { path, reason } => Error::KeyFile {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::NeedsInput(s) => Error::NeedsInput(s.clone()),
            Error::ChannelRefused {
                target,
                hop,
                reason,
            } => Error::ChannelRefused {
                target: target.clone(),
                hop: hop.clone(),
                reason: reason.clone(),
            },
            Error::SessionLost(s) => Error::SessionLost(s.clone()),
            Error::NoRoute(d) => Error::NoRoute(*d),
            Error::Hop {
                route,
                index,
                hop,
                error,
            } => Error::Hop {
                route: route.clone(),
                index: *index,
                hop: hop.clone(),
                error: Box::new(error.replicate()),
            },
            Error::Io { context, error } => Error::Io {
                context: context.clone(),
                error: std::io::Error::new(error.kind(), error.to_string()),
            },
        }
    }

    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            error,
        }
    }
}

/// Describes an I/O error in ssh's short words (`address already in use`, `connection refused`).
pub fn os_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::AddrInUse => "address already in use".into(),
        K::ConnectionRefused => "connection refused".into(),
        K::PermissionDenied => "permission denied".into(),
        K::AddrNotAvailable => "cannot assign requested address".into(),
        K::TimedOut => "connection timed out".into(),
        K::ConnectionReset => "connection reset by peer".into(),
        _ => {
            let s = e.to_string();
            // Drop Rust's " (os error N)" suffix.
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// Shows an error and each of its causes once, joined by `: ` (what `anyhow` prints under
/// `{:#}`), for places that turn an error into one line of text.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        // Bounded: a chain is short, and a cycle must not hang the caller.
        let mut cause = self.0.source();
        for _ in 0..MAX_CAUSES {
            let Some(c) = cause else { break };
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// At most this many causes are shown by [`Chain`].
const MAX_CAUSES: usize = 16;

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanence() {
        let changed = Error::HostKeyChanged {
            host: "h".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:x".into(),
            file: "/k".into(),
            line: 3,
        };
        assert!(changed.is_permanent() && changed.is_host_key());
        let wrapped = Error::Hop {
            route: "primary".into(),
            index: 1,
            hop: "a@h:22".into(),
            error: Box::new(changed),
        };
        assert!(wrapped.is_permanent() && wrapped.is_host_key());
        // What an event says follows from one fact: a host key problem is never retried and
        // needs no input; input that nobody could give is retried when someone can answer.
        assert_eq!(wrapped.attempt_failure(), AttemptFailure::HostKey);
        assert!(wrapped.attempt_failure().never_retried());
        assert!(!wrapped.attempt_failure().needs_input());
        let input = Error::Hop {
            route: "primary".into(),
            index: 1,
            hop: "a@h:22".into(),
            error: Box::new(Error::NeedsInput("passphrase".into())),
        };
        assert!(input.attempt_failure().needs_input());
        assert!(!input.attempt_failure().never_retried());
        assert!(wrapped.to_string().contains("/k:3"), "{wrapped}");
        // The inner error is shown once: in the text, not again as a cause.
        let all = Chain(&wrapped).to_string();
        assert_eq!(all.matches("/k:3").count(), 1, "{all}");
        let io = Error::Hop {
            route: "primary".into(),
            index: 1,
            hop: "a@h:22".into(),
            error: Box::new(Error::io(
                "read key",
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            )),
        };
        let all = Chain(&io).to_string();
        assert_eq!(all.matches("permission denied").count(), 1, "{all}");
        let refused = Error::Connect {
            host: "h".into(),
            port: 22,
            reason: "connection refused".into(),
        };
        assert!(!refused.is_permanent());
        assert_eq!(
            os_reason(&std::io::Error::from(std::io::ErrorKind::AddrInUse)),
            "address already in use"
        );
    }
}
