//! The validated configuration every face produces: [`TunnelConfig`] holds routes of [`Hop`]s in
//! priority order and the [`Forward`]s they carry. Nothing here knows whether a value came from a
//! flag, ssh_config or a profile; the runtime never has to unwrap an option.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod certificate_command;
mod forwards;

pub use certificate_command::{CertificateCommand, CertificateCommandError};
pub use forwards::{Forward, ForwardKind, ForwardType, RemoteBind, RemoteForward, Target};

/// Named deadlines and defaults, in one place.
pub mod defaults {
    use std::time::Duration;
    /// `ConnectTimeout` when none is given: TCP connect, handshake, auth and channel open.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// `ServerAliveInterval`: how often an idle session is probed.
    pub const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
    /// `ServerAliveCountMax`: unanswered probes before a session is declared dead.
    pub const SERVER_ALIVE_COUNT_MAX: u32 = 3;
    /// How long a new local connection waits for a route to come up before it is closed.
    pub const ROUTE_WAIT: Duration = Duration::from_secs(10);
    /// Failback hold time: the primary must be healthy this long before traffic returns.
    pub const FAILBACK: Duration = Duration::from_secs(60);
    /// How often a higher-priority route is probed while a lower one carries traffic.
    pub const FAILBACK_PROBE_INTERVAL: Duration = Duration::from_secs(5);
    /// How often each standby route (below the one in use) is probed: connect, host key,
    /// authenticate, close. Each probe falls at random within the last fifth of the interval.
    pub const STANDBY_PROBE: Duration = Duration::from_secs(300);
    /// First delay of the reconnect backoff once every route has failed.
    pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
    /// Cap of the reconnect backoff.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
    /// A session up this long resets the backoff.
    pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);
    /// How long a SOCKS client has to complete its handshake (greeting and request) before it
    /// is refused and closed.
    pub const SOCKS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The most one channel's receive window grows to on a long path ([`super::ReceiveWindows`]).
    pub const WINDOW_MAX: u32 = 64 << 20;
    /// What the receive windows of one SSH session may grow, together, beyond 2 MiB each.
    pub const WINDOW_BUDGET: u64 = 128 << 20;
    /// Concurrent connections per forward; more wait in the listen backlog.
    pub const MAX_CONNECTIONS_PER_FORWARD: usize = 4096;
    /// The most a connection reads from its local client at once; the buffer is allocated
    /// only when the client has sent something, and becomes the SSH packet's payload.
    pub const COPY_BUFFER: usize = 32 * 1024;
    /// Default SSH port.
    pub const SSH_PORT: u16 = 22;
    /// A certificate command runs before a connect when no certificate file of the hop stays
    /// valid this much longer (covers the connect itself and a server clock somewhat ahead).
    pub const CERTIFICATE_REFRESH_MARGIN: Duration = Duration::from_secs(120);
    /// How long a certificate command may run (a browser login included) before it is ended
    /// with its process group and the attempt fails.
    pub const CERTIFICATE_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
}

/// `AddressFamily` (`-4`, `-6`): which addresses of a hop's name are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AddressFamily {
    /// Every address the name resolves to, in resolver order (`any`, the default).
    #[default]
    Any,
    /// IPv4 addresses only (`inet`, `-4`).
    Inet,
    /// IPv6 addresses only (`inet6`, `-6`).
    Inet6,
}

impl AddressFamily {
    /// True when `addr` is of this family.
    pub fn allows(self, addr: &std::net::SocketAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::Inet => addr.is_ipv4(),
            AddressFamily::Inet6 => addr.is_ipv6(),
        }
    }

    /// OpenSSH's spelling: `any`, `inet` or `inet6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Any => "any",
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        }
    }
}

/// `StrictHostKeyChecking`: what to do with a host whose key is not in known_hosts.
/// A *changed* key is refused under every setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StrictHostKeyChecking {
    /// Refuse unknown hosts (the default when no person can be asked).
    #[default]
    Yes,
    /// Ask the person (fingerprint shown); refuse when nobody can be asked.
    Ask,
    /// Learn unknown hosts (written hashed when `HashKnownHosts`), refuse changed ones.
    AcceptNew,
    /// Accept unknown hosts without writing them; changed keys are still refused.
    No,
}

/// How host keys are checked for one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// Policy for unknown hosts.
    pub strict: StrictHostKeyChecking,
    /// User known_hosts files, searched in order; new keys are written to the first.
    pub user_files: Vec<PathBuf>,
    /// System known_hosts files, read only.
    pub global_files: Vec<PathBuf>,
    /// Write learned keys hashed (`|1|salt|hash`), as `HashKnownHosts yes`.
    pub hash_new_entries: bool,
}

impl Default for HostKeyPolicy {
    /// [`HostKeyPolicy::standard`] under this process's [home](crate::env::home_dir).
    fn default() -> Self {
        HostKeyPolicy::standard(&crate::env::home_dir())
    }
}

impl HostKeyPolicy {
    /// OpenSSH's defaults for a user whose home is `home`: `StrictHostKeyChecking yes`,
    /// `~/.ssh/known_hosts{,2}`, `/etc/ssh/ssh_known_hosts{,2}` (`%ProgramData%\ssh\...` on
    /// Windows), learned keys hashed.
    pub fn standard(home: &std::path::Path) -> Self {
        HostKeyPolicy {
            strict: StrictHostKeyChecking::Yes,
            user_files: vec![
                home.join(".ssh/known_hosts"),
                home.join(".ssh/known_hosts2"),
            ],
            global_files: {
                let system = crate::platform::paths::system_ssh_dir();
                vec![
                    system.join("ssh_known_hosts"),
                    system.join("ssh_known_hosts2"),
                ]
            },
            hash_new_entries: true,
        }
    }
}

/// How a hop authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Identity files to try (after the agent), in order. Empty means `default_identity_files`.
    pub identity_files: Vec<PathBuf>,
    /// OpenSSH's default identities (`~/.ssh/id_*`), tried when `identity_files` is empty.
    pub default_identity_files: Vec<PathBuf>,
    /// `CertificateFile`s: OpenSSH certificates tried with the identity whose key they certify
    /// (a `KEY-cert.pub` beside a key is always tried too).
    pub certificate_files: Vec<PathBuf>,
    /// Only use the identity files given (agent keys only when they match one of them).
    pub identities_only: bool,
    /// The agent socket: `None` disables the agent; default is `$SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Never ask a person for anything (`BatchMode yes`).
    pub batch_mode: bool,
    /// Try password authentication.
    pub password: bool,
    /// Try keyboard-interactive authentication.
    pub keyboard_interactive: bool,
    /// Run before a connect when this hop's certificate is missing or about to expire (not an
    /// ssh option: a profile's `certificate_command`, `--certificate-command`).
    pub certificate_command: Option<CertificateCommand>,
}

impl Default for AuthOptions {
    /// [`AuthOptions::standard`] for this process ([`home_dir`](crate::env::home_dir),
    /// [`agent_socket`](crate::env::agent_socket)).
    fn default() -> Self {
        AuthOptions::standard(&crate::env::home_dir(), crate::env::agent_socket())
    }
}

impl AuthOptions {
    /// OpenSSH's defaults for a user whose home is `home`, with `agent_socket` as the agent:
    /// every method on, the identity files `~/.ssh/id_{rsa,ecdsa,ecdsa_sk,ed25519,ed25519_sk}`
    /// when none is configured.
    pub fn standard(home: &std::path::Path, agent_socket: Option<PathBuf>) -> Self {
        AuthOptions {
            identity_files: Vec::new(),
            default_identity_files: [
                "id_rsa",
                "id_ecdsa",
                "id_ecdsa_sk",
                "id_ed25519",
                "id_ed25519_sk",
            ]
            .iter()
            .map(|n| home.join(".ssh").join(n))
            .collect(),
            certificate_files: Vec::new(),
            identities_only: false,
            agent_socket,
            batch_mode: false,
            password: true,
            keyboard_interactive: true,
            certificate_command: None,
        }
    }

    /// The identity files that will be tried: the configured ones, or OpenSSH's defaults.
    pub fn effective_identity_files(&self) -> Vec<PathBuf> {
        if !self.identity_files.is_empty() {
            return self.identity_files.clone();
        }
        self.default_identity_files.clone()
    }
}

/// The options of one hop, as OpenSSH would apply them to that host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopOptions {
    /// Authentication.
    pub auth: AuthOptions,
    /// Host key checking.
    pub host_keys: HostKeyPolicy,
    /// Deadline for each of TCP connect, handshake, auth and channel open.
    pub connect_timeout: Duration,
    /// Keepalive probe interval; zero disables probes (not recommended).
    pub server_alive_interval: Duration,
    /// Unanswered probes before the session is declared dead.
    pub server_alive_count_max: u32,
    /// Preferred ciphers, OpenSSH names, most preferred first; empty keeps russh's order.
    pub ciphers: Vec<String>,
    /// `AddressFamily`: which addresses of the first hop's name are tried (later hops are
    /// reached through a channel: the hop before resolves their names).
    pub address_family: AddressFamily,
    /// `Compression`: offer zlib (`zlib@openssh.com`, `zlib`) before `none`, as ssh does.
    pub compression: bool,
    /// How far the receive windows of this hop's channels may grow (not an ssh option).
    pub receive_windows: ReceiveWindows,
    /// `RekeyLimit`: how much data, and optionally how much time, before this hop's session
    /// renews its keys (OpenSSH's `default none` unless set).
    pub rekey_limit: crate::options::rekey::RekeyLimit,
}

/// How large the receive windows of one SSH session's channels may grow: the window is what the
/// server may send us before we answer, so across a long path it bounds downloads
/// (window / round trip). A window grows while its reader keeps up and the path holds more
/// than the window, and what the server may have outstanding follows what the last round trip
/// carried (vendor/README.md, "Receive windows that follow the path"). The command line and
/// profiles use the defaults; an embedder may set its own.
///
/// ```
/// let mut o = tunnelkit_core::HopOptions::default();
/// // Windows fixed at 2 MiB, as OpenSSH's client has them:
/// o.receive_windows = tunnelkit_core::ReceiveWindows { max: 2 << 20, budget: 0 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveWindows {
    /// The most one channel's window grows to, in bytes (default 64 MiB); 2 MiB or less keeps
    /// every window at its initial 2 MiB.
    pub max: u32,
    /// What all channels of one session together may grow beyond their initial 2 MiB each, in
    /// bytes (default 128 MiB), so that 1,000 connections cannot each claim `max`. With `-J`,
    /// each hop's session has its own.
    pub budget: u64,
}

impl Default for ReceiveWindows {
    fn default() -> Self {
        ReceiveWindows {
            max: defaults::WINDOW_MAX,
            budget: defaults::WINDOW_BUDGET,
        }
    }
}

impl Default for HopOptions {
    /// tunnelkit's defaults, with this process's home and agent socket (see [`crate::env`]).
    fn default() -> Self {
        HopOptions::with(AuthOptions::default(), HostKeyPolicy::default())
    }
}

impl HopOptions {
    /// tunnelkit's defaults for the user of a captured [`Environment`](crate::Environment): its
    /// home's known_hosts and identities, its agent socket. Nothing is read from the process.
    pub fn for_env(env: &crate::Environment) -> Self {
        HopOptions::with(
            AuthOptions::standard(&env.home, env.agent_socket.clone()),
            HostKeyPolicy::standard(&env.home),
        )
    }

    fn with(auth: AuthOptions, host_keys: HostKeyPolicy) -> Self {
        HopOptions {
            auth,
            host_keys,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            server_alive_interval: defaults::SERVER_ALIVE_INTERVAL,
            server_alive_count_max: defaults::SERVER_ALIVE_COUNT_MAX,
            ciphers: Vec::new(),
            address_family: AddressFamily::Any,
            compression: false,
            receive_windows: ReceiveWindows::default(),
            rekey_limit: crate::options::rekey::RekeyLimit::default(),
        }
    }
}

/// A hop's `ProxyCommand`: the connection to the hop is the command's stdin and stdout, as in
/// ssh. It runs as `SHELL -c "exec COMMAND"` in its own process group, which is killed when the
/// hop's session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCommand {
    /// The command as configured, tokens unexpanded (for messages).
    pub configured: String,
    /// What the shell runs: `exec ` and the command with `%h %n %p %r %k %%` expanded.
    pub command: String,
    /// The shell (`$SHELL`, else `/bin/sh`, as ssh does).
    pub shell: PathBuf,
}

/// One SSH server on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The address to connect to (ssh_config's `HostName`, or the name typed).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The login name.
    pub user: String,
    /// `HostKeyAlias`: looked up in known_hosts verbatim instead of `host` / `[host]:port`.
    pub host_key_alias: Option<String>,
    /// `ProxyCommand`: reach this hop through a command's stdin/stdout instead of TCP. Only
    /// the first hop of a route can have one (ssh's rule: ProxyJump and ProxyCommand exclude
    /// each other).
    pub proxy_command: Option<ProxyCommand>,
    /// Options for this hop.
    pub options: Arc<HopOptions>,
}

impl Hop {
    /// A hop with the given options and no host key alias.
    pub fn new(
        user: impl Into<String>,
        host: impl Into<String>,
        port: u16,
        options: Arc<HopOptions>,
    ) -> Self {
        Hop {
            host_key_alias: None,
            proxy_command: None,
            host: host.into(),
            port,
            user: user.into(),
            options,
        }
    }

    /// `user@host:port`, for messages.
    pub fn label(&self) -> String {
        format!(
            "{}@{}:{}",
            self.user,
            crate::spec::bracket(&self.host),
            self.port
        )
    }
}

/// A named chain of hops; forwards exit at the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Name used in events and status (`primary`, `dr`, `dr-frankfurt`, ...).
    pub name: String,
    /// Jump hosts first, the destination last. Never empty.
    pub hops: Vec<Hop>,
}

/// When traffic returns to a higher-priority route after a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failback {
    /// Once the route has been healthy for this long.
    After(Duration),
    /// Stay on the route in use until it fails.
    Never,
}

impl Failback {
    /// From [`parse_seconds_or_never`](crate::spec::parse_seconds_or_never)'s value: `None`
    /// (`never`) is [`Failback::Never`].
    pub fn from_hold(hold: Option<Duration>) -> Self {
        hold.map_or(Failback::Never, Failback::After)
    }
}

/// Reconnect backoff, used only once every route has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub min: Duration,
    /// Cap.
    pub max: Duration,
    /// A session up this long resets the backoff.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: defaults::BACKOFF_MIN,
            max: defaults::BACKOFF_MAX,
            reset_after: defaults::BACKOFF_RESET_AFTER,
        }
    }
}

/// A whole tunnel: routes in priority order and the forwards they carry, of three kinds:
///
/// - local forwards ([`Forward::local`], [`ForwardKind::Local`], `ssh -L`) in
///   [`forwards`](Self::forwards): a port here, each connection a channel to one target;
/// - dynamic forwards ([`Forward::dynamic`], [`ForwardKind::Dynamic`], `ssh -D`), also in
///   [`forwards`](Self::forwards): a SOCKS proxy here, each connection a channel to where its
///   client asks;
/// - remote forwards ([`RemoteForward`], `ssh -R`) in
///   [`remote_forwards`](Self::remote_forwards): a port on the bastion of the route in use,
///   each connection coming back to a target on this side.
///
/// All three follow the route in use through reconnects, failover and failback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The primary route first, then DR routes. Never empty.
    pub routes: Vec<Route>,
    /// Local listeners, in order: port forwards ([`ForwardKind::Local`], `-L`) and SOCKS
    /// proxies ([`ForwardKind::Dynamic`], `-D`). Both kinds share the accept loop, the
    /// connection cap, the counters and failover; they differ only in where a connection's
    /// channel goes.
    pub forwards: Vec<Forward>,
    /// Remote forwards (`-R`): requested on the bastion of whichever route carries the tunnel.
    pub remote_forwards: Vec<RemoteForward>,
    /// Failback policy.
    pub failback: Failback,
    /// How often higher-priority routes are probed while on a DR route.
    pub failback_probe_interval: Duration,
    /// How long a new connection waits for a route before it is closed.
    pub route_wait: Duration,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Give up (the tunnel ends with an error) when no route has come up after this many
    /// rounds over all routes. `None` retries forever (what the agent does).
    pub give_up_after_rounds: Option<u32>,
    /// How often every route below the one in use is probed in the background (connect, host
    /// key, authenticate without asking anyone, close), so that [`Status::routes`] says
    /// whether a failover would work. Failed probes back off on [`backoff`](Self::backoff),
    /// never more often than this. `None` turns standby probes off.
    ///
    /// [`Status::routes`]: crate::Status::routes
    pub standby_probe: Option<Duration>,
    /// Keep the next route's session up and authenticated (with keepalives) while a route
    /// above it carries traffic, so that a failover needs no handshake: one more SSH session
    /// per tunnel.
    pub hot_standby: bool,
}

impl TunnelConfig {
    /// A tunnel with the given routes and forwards and default timings.
    pub fn new(routes: Vec<Route>, forwards: Vec<Forward>) -> Self {
        TunnelConfig {
            routes,
            forwards,
            remote_forwards: Vec::new(),
            failback: Failback::After(defaults::FAILBACK),
            failback_probe_interval: defaults::FAILBACK_PROBE_INTERVAL,
            route_wait: defaults::ROUTE_WAIT,
            backoff: Backoff::default(),
            give_up_after_rounds: None,
            standby_probe: Some(defaults::STANDBY_PROBE),
            hot_standby: false,
        }
    }

    /// Checks the invariants the runtime relies on.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error::Config;
        if self.routes.is_empty() {
            return Err(Config("a tunnel needs at least one route".into()));
        }
        for r in &self.routes {
            if r.hops.is_empty() {
                return Err(Config(format!("route {} has no hops", r.name)));
            }
            if let Some(h) = r.hops.iter().skip(1).find(|h| h.proxy_command.is_some()) {
                return Err(Config(format!(
                    "route {}: {} has a ProxyCommand but is not the first hop",
                    r.name,
                    h.label()
                )));
            }
        }
        for (i, a) in self.routes.iter().enumerate() {
            if self.routes[..i].iter().any(|b| b.name == a.name) {
                return Err(Config(format!("two routes are named {}", a.name)));
            }
        }
        for f in &self.forwards {
            if f.max_connections == 0 {
                return Err(Config(format!(
                    "forward {}: the connection limit must be at least 1",
                    f.bind_label()
                )));
            }
            let route_targets = match &f.kind {
                ForwardKind::Local { route_targets, .. } => route_targets.as_slice(),
                ForwardKind::Dynamic => &[],
            };
            for (r, _) in route_targets {
                if !self.routes.iter().any(|x| &x.name == r) {
                    return Err(Config(format!(
                        "forward {}: no route named {r}",
                        f.bind_label()
                    )));
                }
            }
        }
        for (i, f) in self.remote_forwards.iter().enumerate() {
            if f.max_connections == 0 {
                return Err(Config(format!(
                    "remote forward {i} ({}): the connection limit must be at least 1",
                    f.bind
                )));
            }
            for (r, _) in &f.route_binds {
                if !self.routes.iter().any(|x| &x.name == r) {
                    return Err(Config(format!(
                        "remote forward {i} ({}): no route named {r}",
                        f.bind
                    )));
                }
            }
        }
        Ok(())
    }
}
