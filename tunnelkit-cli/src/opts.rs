//! The command line: OpenSSH's flags for the tunnel face (`tunnelkit [options] destination`),
//! plus subcommands. Parsing only; [`crate::resolve`] turns these into a validated config.
//!
//! The doc comments here are the `--help` text, written in ssh's own syntax (`[user@]host[:port]`),
//! which rustdoc would read as links: hence the `allow` below.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::candidates::profile_candidates;

/// ssh's one-line usage, adapted: printed after a usage error.
pub const USAGE: &str = "\
usage: tunnelkit [-46CfGgNnqTv] [-D [bind_address:]port] [-F configfile]
           [-i identity_file] [-J destination]
           [-L [bind_address:]port:host:hostport] [-l login_name] [-o option]
           [-p port] [-R [bind_address:]port:host:hostport]
           [--dr destination] [--failback seconds|never]
           [--route-wait seconds] [--standby-probe seconds|never]
           [--hot-standby] [--retry] destination
       tunnelkit demo|agent|status|up|down|open|reload|logs|drill|secret ...
       tunnelkit completions bash|zsh|fish
       tunnelkit man
       tunnelkit --help
";

/// The message for a command line clap refused: for an unknown flag ssh's
/// `unknown option -- x` and usage, for anything else clap's message without its
/// `-- -x` tip (tunnelkit takes no such positional values).
pub fn parse_error_text(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let what = match arg.strip_prefix('-') {
                Some(short) if !short.starts_with('-') => {
                    format!("-- {}", short.chars().next().unwrap_or('?'))
                }
                _ => arg.clone(),
            };
            return format!("unknown option {what}\n{USAGE}");
        }
    }
    let text = e.render().to_string();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !(l.contains("tip:") && l.contains("as a value")))
        .collect();
    kept.join("\n") + "\n"
}

/// The subcommand `word` was probably meant to be (`stauts` -> `status`), if any.
pub fn similar_subcommand(word: &str) -> Option<String> {
    let cmd = Opts::command();
    cmd.get_subcommands()
        .map(|c| (strsim::jaro(word, c.get_name()), c.get_name().to_string()))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// The `--help` epilogue (also the man page's EXAMPLES).
pub const EXAMPLES: &str = "\
Examples:
  RDP to a Windows server that only the bastion can reach, through a gateway:
    tunnelkit -N -L 13389:winserver:3389 -J ops@gw.example.com admin@bastion.example.com
    (then point the RDP client at 127.0.0.1:13389)

  VNC display :1 with a DR site that takes over when the primary bastion fails:
    tunnelkit -N -L 5901:vnc-host:5901 admin@bastion.prod --dr admin@bastion.dr

  Try it with nothing installed:
    tunnelkit demo

  A SOCKS proxy for the web consoles (iLO, iDRAC, vCenter) behind the bastion; names are
  resolved by the bastion (in the browser: SOCKS5 proxy 127.0.0.1:1080, proxy DNS):
    tunnelkit -N -D 1080 admin@bastion.example.com

  Publish this NATed server's RDP port on the bastion (its port 13389, loopback only), and on
  the DR bastion when the primary dies:
    tunnelkit -N -R 13389:localhost:3389 admin@bastion.prod --dr admin@bastion.dr

  In the background once the forward is up (as ssh -fNT), on an IPv4 address:
    tunnelkit -fNT -4 -L 8443:intranet:443 admin@bastion.example.com

Exit status: 0 after Ctrl-C, SIGTERM or SIGHUP (a closed terminal; ignored when started under
nohup), 255 on errors (as ssh); with -f, 0 once the tunnel runs in the background.";

/// SSH tunnels that stay up: local forwards through jump hosts, with DR failover.
#[derive(Debug, Parser)]
#[command(
    name = "tunnelkit",
    version,
    about,
    long_about = "tunnelkit opens SSH local port forwards (ssh -L), SOCKS proxies (ssh -D) and remote \
forwards (ssh -R) through a bastion or a chain of jump hosts (-J), keeps them alive with keepalives \
and reconnects, and moves them to a disaster-recovery route (--dr) when the primary bastion dies or \
goes silent. Its flags mean what they mean to ssh.",
    args_conflicts_with_subcommands = true,
    after_help = EXAMPLES
)]
pub struct Opts {
    /// A subcommand; without one, tunnelkit opens the forwards given by the flags.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The ssh-style tunnel options.
    #[command(flatten)]
    pub ssh: SshArgs,
}

impl Opts {
    /// The number of `-v` given, wherever it was given.
    pub fn verbosity(&self) -> u8 {
        match &self.command {
            Some(Command::Agent(a)) => a.verbose.max(self.ssh.verbose),
            _ => self.ssh.verbose,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a tunnel working and failing over, with nothing installed: starts throwaway SSH
    /// bastions and a target service inside this process, on loopback.
    Demo(DemoArgs),
    /// Run the background agent in the foreground: it keeps the profiles in the profiles
    /// directory alive and answers `tunnelkit status|up|down|reload|logs` on its socket.
    /// `tunnelkit agent install` starts it at every login instead.
    Agent(AgentArgs),
    /// Show every profile: state, route, forwards, connections, bytes, last error.
    Status(StatusArgs),
    /// Start a profile and wait until it is up; on a terminal, answer what it needs
    /// (passphrase, password, one-time code, host key).
    Up(NameArgs),
    /// Stop a profile.
    Down(NameArgs),
    /// Start the RDP or VNC client for a profile's forward, bringing the profile up first if it
    /// is down (answering on the terminal what it needs, as `up` does). The client is chosen by
    /// the forward's remote port: 3389 RDP (xfreerdp, wlfreerdp, remmina), 5900-5999 VNC
    /// (TigerVNC vncviewer, remmina); --client names another. Exits with the client.
    Open(OpenArgs),
    /// Make the agent re-read the profiles directory now.
    Reload(SocketArgs),
    /// Show a profile's recent events.
    Logs(NameArgs),
    /// Test a running profile's DR route on the real network: move new connections to it
    /// (existing ones keep their session), open a test connection to every forward's target
    /// through it, report the measured RTO, then move back (or stay, with --stay). Exits 255
    /// when the DR route does not carry the test, saying why.
    Drill(DrillArgs),
    /// Store or delete a password or key passphrase in the OS keyring.
    Secret(SecretArgs),
    /// Print the shell completion script for bash, zsh or fish (subcommands, flags, profile
    /// names). In ~/.bashrc: `source <(tunnelkit completions bash)`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `tunnelkit man | man -l -`, or save it as
    /// /usr/local/share/man/man1/tunnelkit.1.
    Man,
}

impl Command {
    /// Commands whose output is one sentence or a document (`secret`, `completions`, `man`,
    /// `agent install|uninstall|status`):
    /// they log only warnings and errors unless `-v` is given, so `secret set` prints its
    /// sentence and no log line.
    pub fn is_quiet(&self) -> bool {
        match self {
            Command::Agent(a) => a.autostart.is_some(),
            c => matches!(
                c,
                Command::Secret(_) | Command::Completions(_) | Command::Man
            ),
        }
    }
}

/// Where the agent's socket is.
#[derive(Debug, Args)]
pub struct SocketArgs {
    /// The agent's control socket (default: $TUNNELKIT_SOCKET, else
    /// $XDG_RUNTIME_DIR/tunnelkit/agent.sock, else /tmp/tunnelkit-$UID/agent.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Options of `tunnelkit agent`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_value_name = "AUTOSTART"
)]
pub struct AgentArgs {
    /// Without one, the agent runs here in the foreground.
    #[command(subcommand)]
    pub autostart: Option<AutostartCommand>,
    /// The profiles directory (default $XDG_CONFIG_HOME/tunnelkit/profiles).
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Where to listen.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9187): per profile
    /// and forward state, route, connections, bytes, failovers, reconnects, last failover
    /// time. Loopback addresses only, unless --metrics-allow-remote.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Allow --metrics on an address that is not loopback (anyone who reaches it sees every
    /// profile's names, routes and traffic).
    #[arg(long, requires = "metrics")]
    pub metrics_allow_remote: bool,
    /// No desktop notifications (by default the agent sends one on failover, failback, a
    /// profile failing for good and a profile needing input, when a D-Bus session bus is
    /// there: $DBUS_SESSION_BUS_ADDRESS).
    #[arg(long)]
    pub no_notify: bool,
    /// Append the log to FILE (its directory is created) instead of standard error: what the
    /// Windows logon task does, with %LOCALAPPDATA%\tunnelkit\agent.log.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// More log output.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
}

/// Starting the agent at login: `tunnelkit agent install|uninstall|status`.
#[derive(Debug, Subcommand)]
pub enum AutostartCommand {
    /// Start the agent at every login, and now, running this binary: a systemd user unit
    /// (~/.config/systemd/user/tunnelkit-agent.service) on Linux, a LaunchAgent
    /// (~/Library/LaunchAgents/com.tunnelkit.agent.plist) on macOS, a Task Scheduler logon
    /// task (tunnelkit-agent) on Windows.
    Install(InstallArgs),
    /// Stop the agent started at login and remove its autostart.
    Uninstall,
    /// Say which autostart is installed, where, and whether it runs this binary (exit 0 when
    /// it does, 255 when it is missing or runs another).
    Status,
}

/// Options of `tunnelkit agent install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print where the file would go and what it would say; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `tunnelkit status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (a list of profiles; schema in docs/profiles-and-agent.md). Never shortened.
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Redraw the table every --interval seconds until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between redraws with --watch (0.2 to 3600). Default 2.
    #[arg(long, value_name = "SECONDS", requires = "watch", value_parser = parse_interval)]
    pub interval: Option<std::time::Duration>,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// The `--watch` interval: seconds, 0.2 to 3600.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.2..=3600.0).contains(&s) => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err(format!("{text}: expected seconds from 0.2 to 3600")),
    }
}

/// A profile name and the agent's socket.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The profile's name (its file name without .toml).
    #[arg(add = ArgValueCandidates::new(profile_candidates))]
    pub name: String,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Options of `tunnelkit open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The profile's name (its file name without .toml).
    #[arg(add = ArgValueCandidates::new(profile_candidates))]
    pub name: String,
    /// Which forward, when the profile has several: its local port, its remote port, or its
    /// remote host:port. Default: the only forward, or the only one with an RDP or VNC port.
    #[arg(value_name = "FORWARD")]
    pub forward: Option<String>,
    /// The client to start instead of the built-in choice, split into words as a shell would
    /// (no shell runs it); {host} and {port} are replaced by the forward's local address, e.g.
    /// 'xfreerdp /u:admin /v:{host}:{port}'.
    #[arg(long, value_name = "CMD")]
    pub client: Option<String>,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// Options of `tunnelkit drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The profile's name (its file name without .toml); it must be running.
    pub name: String,
    /// Stay on the DR route afterwards (the profile's failback rule then applies, as after a
    /// real failover).
    #[arg(long)]
    pub stay: bool,
    /// Print the report as JSON (schema in docs/failover.md).
    #[arg(long)]
    pub json: bool,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// A shell `tunnelkit completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Options of `tunnelkit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// `tunnelkit secret set|delete KIND NAME`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// `set` or `delete`.
    #[arg(value_parser = ["set", "delete"])]
    pub action: String,
    /// `password` (for USER@HOST[:PORT]) or `passphrase` (for a key file).
    #[arg(value_parser = ["password", "passphrase"])]
    pub kind: String,
    /// USER@HOST[:PORT] for a password, the key file's path for a passphrase.
    pub name: String,
}

/// Options of `tunnelkit demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Skip the failover part (only the basic forward).
    #[arg(long)]
    pub no_failover: bool,
}

impl SshArgs {
    /// The flags that stand for an ssh option (`-4`, `-6`, `-C`, `-g`), as `Key=Value`, before
    /// the `-o` options: as in ssh, such a flag wins over `-o` and ssh_config.
    pub fn all_options(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.ipv4 {
            v.push("AddressFamily=inet".to_string());
        }
        if self.ipv6 {
            v.push("AddressFamily=inet6".to_string());
        }
        if self.compression {
            v.push("Compression=yes".to_string());
        }
        if self.gateway_ports {
            v.push("GatewayPorts=yes".to_string());
        }
        v.extend(self.options.iter().cloned());
        v
    }

    /// Refuses what would smuggle a line into a config: a newline, carriage return or NUL in
    /// any value (`-o`, `-L`, `-D`, `-R`, `-J`, `-l`, `-p`, `--dr`, the destination). ssh_config
    /// has one keyword per line, and `-G` prints one per line.
    pub fn check_values(&self) -> Result<(), ValueError> {
        let named = self
            .options
            .iter()
            .map(|v| ("-o", v.as_str()))
            .chain(self.local.iter().map(|v| ("-L", v.as_str())))
            .chain(self.dynamic.iter().map(|v| ("-D", v.as_str())))
            .chain(self.remote.iter().map(|v| ("-R", v.as_str())))
            .chain(self.dr.iter().map(|v| ("--dr", v.as_str())))
            .chain(self.jump.iter().map(|v| ("-J", v.as_str())))
            .chain(self.login.iter().map(|v| ("-l", v.as_str())))
            .chain(self.port.iter().map(|v| ("-p", v.as_str())))
            .chain(self.destination.iter().map(|v| ("destination", v.as_str())));
        for (flag, v) in named {
            if let Some(c) = v.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
                return Err(ValueError {
                    flag,
                    value: v.to_string(),
                    character: c,
                });
            }
        }
        Ok(())
    }
}

/// A flag's value that holds a line break or NUL (see [`SshArgs::check_values`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{flag} {}: a value may not contain {}",
    value.escape_debug(),
    match character {
        '\n' => "a newline",
        '\r' => "a carriage return",
        _ => "a NUL character",
    }
)]
pub struct ValueError {
    /// The flag (`-o`, `-L`, ...) or `destination`.
    pub flag: &'static str,
    /// The value as given.
    pub value: String,
    /// The character refused: `\n`, `\r` or NUL.
    pub character: char,
}

/// The ssh-compatible options.
#[derive(Debug, Args, Default)]
pub struct SshArgs {
    /// Do not run a remote command (accepted for ssh compatibility: tunnelkit never runs one).
    #[arg(short = 'N')]
    pub no_command: bool,

    /// Go to the background once the forwards are bound and the first route is up (after any
    /// passphrase or password was asked), as `ssh -f -N` does; the command then exits 0. Errors
    /// before that point are printed and exit 255. Needs at least one forward.
    #[arg(short = 'f')]
    pub background: bool,

    /// No pseudo-terminal (accepted for ssh compatibility: tunnelkit never asks for one).
    #[arg(short = 'T')]
    pub no_tty: bool,

    /// Standard input from /dev/null (accepted for ssh compatibility: tunnelkit never reads
    /// standard input; prompts use the terminal).
    #[arg(short = 'n')]
    pub stdin_null: bool,

    /// Connect over IPv4 only (`AddressFamily inet`), to every hop tunnelkit connects to.
    #[arg(short = '4', overrides_with = "ipv6")]
    pub ipv4: bool,

    /// Connect over IPv6 only (`AddressFamily inet6`), to every hop tunnelkit connects to;
    /// forwards without a bind address then listen on ::1 (as ssh binds localhost).
    #[arg(short = '6', overrides_with = "ipv4")]
    pub ipv6: bool,

    /// Let other hosts connect to the local forwards (`GatewayPorts yes`): forwards without a
    /// bind address listen on all addresses.
    #[arg(short = 'g')]
    pub gateway_ports: bool,

    /// Compress the SSH traffic of every hop with zlib (`Compression yes`). Helps on slow
    /// links with compressible data; costs CPU and hurts on fast links.
    #[arg(short = 'C')]
    pub compression: bool,

    /// Forward a local port: [bind_address:]port:host:hostport. The host is resolved by the
    /// route's last hop. Binds to 127.0.0.1 unless a bind address is given; port 0 picks a
    /// free port (printed at start). Repeatable.
    #[arg(short = 'L', value_name = "[bind_address:]port:host:hostport")]
    pub local: Vec<String>,

    /// A SOCKS proxy on a local port: [bind_address:]port. Each connection goes where its
    /// client asks (SOCKS5 without authentication, SOCKS4, SOCKS4a), through the route in use;
    /// names are resolved by the route's last hop. Binds to 127.0.0.1 unless a bind address is
    /// given; port 0 picks a free port (printed at start). Repeatable.
    #[arg(short = 'D', value_name = "[bind_address:]port")]
    pub dynamic: Vec<String>,

    /// Forward a port of the bastion back to this side: [bind_address:]port:host:hostport.
    /// The route's last hop listens (on its loopback unless a bind address is given; `*` asks
    /// for every address, which the server's GatewayPorts must allow) and each connection goes
    /// to host:hostport as this machine resolves it. Port 0 lets the bastion pick one (printed
    /// as "Allocated port N"). Requested again after every reconnect and on the DR route after
    /// a failover. Repeatable.
    #[arg(short = 'R', value_name = "[bind_address:]port:host:hostport")]
    pub remote: Vec<String>,

    /// Jump hosts, in order: [user@]host[:port][,...], or `none`. Each later hop is reached
    /// through the one before; keys and agent stay on this machine.
    #[arg(short = 'J', value_name = "[user@]host[:port][,...]")]
    pub jump: Option<String>,

    /// Port of the destination (not of the jump hosts, as in ssh).
    #[arg(short = 'p', value_name = "port")]
    pub port: Option<String>,

    /// Login name at the destination (not at the jump hosts, as in ssh).
    #[arg(short = 'l', value_name = "login_name")]
    pub login: Option<String>,

    /// Identity (private key) file; repeatable. Unlike ssh -J, used for every hop.
    #[arg(short = 'i', value_name = "identity_file")]
    pub identity: Vec<PathBuf>,

    /// ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config; `none`
    /// reads no file. Host aliases, HostName, User, Port, IdentityFile, ProxyJump, LocalForward,
    /// DynamicForward and the other keywords tunnelkit uses are taken from it, as ssh does.
    #[arg(short = 'F', value_name = "configfile")]
    pub config_file: Option<PathBuf>,

    /// Print the configuration resolved for the destination, in `ssh -G`'s format, and exit.
    #[arg(short = 'G')]
    pub print_config: bool,

    /// An OpenSSH option, Key=Value; repeatable. Unlike ssh -J, applied to every hop.
    /// Used: User, Port, IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile,
    /// GlobalKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, BatchMode, ConnectTimeout,
    /// ConnectionAttempts, Ciphers, ServerAliveInterval, ServerAliveCountMax,
    /// ExitOnForwardFailure, PasswordAuthentication, KbdInteractiveAuthentication, GatewayPorts,
    /// AddressFamily, Compression, DynamicForward. A newline or NUL in a value is an error.
    #[arg(short = 'o', value_name = "Key=Value")]
    pub options: Vec<String>,

    /// More log output; repeat for more (-v info details, -vv debug, -vvv trace).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Quiet: only errors (the Forwarding lines on standard output stay).
    #[arg(short = 'q')]
    pub quiet: bool,

    /// A disaster-recovery route: [user@]host[:port][,host...], the last host being that
    /// route's destination and the ones before it its jump hosts (like -J). Repeatable: routes
    /// are tried in the order given, after the primary.
    #[arg(long = "dr", value_name = "[user@]host[:port][,...]")]
    pub dr: Vec<String>,

    /// Seconds the primary must stay healthy before new connections return to it after a
    /// failover, or `never`. Default 60.
    #[arg(long, value_name = "SECONDS|never")]
    pub failback: Option<String>,

    /// Seconds a new local connection waits for a route to come up before it is closed.
    /// Default 10.
    #[arg(long, value_name = "SECONDS")]
    pub route_wait: Option<u64>,

    /// Seconds between background probes of each DR route below the one in use (connect,
    /// host key, authenticate without prompting, close), so that a broken standby is reported
    /// before it is needed; or `never`. Failed probes back off. Default 300.
    #[arg(long, value_name = "SECONDS|never")]
    pub standby_probe: Option<String>,

    /// Keep the next DR route's session up and authenticated (with keepalives) while the
    /// primary carries traffic, so a failover needs no handshake. Costs one more SSH session.
    #[arg(long)]
    pub hot_standby: bool,

    /// Refresh a short-lived certificate before a connect: the command line is split into
    /// words as a shell would (quotes) and run without a shell, input from /dev/null, for at
    /// most 60 s, before each hop is connected whose certificate (CertificateFile, else
    /// IDENTITY-cert.pub) is missing or expires within 2 minutes. Its output is never shown or
    /// logged. Not an ssh option: there is no ssh_config keyword for it.
    #[arg(long, value_name = "'COMMAND [ARG...]'")]
    pub certificate_command: Option<String>,

    /// Keep retrying (with backoff) even if no route comes up at start. By default tunnelkit
    /// exits like ssh when it cannot connect at all at start; once up, it never gives up.
    #[arg(long)]
    pub retry: bool,

    /// The destination: [user@]host[:port] or ssh://[user@]host[:port].
    #[arg(value_name = "destination")]
    pub destination: Option<String>,
}
