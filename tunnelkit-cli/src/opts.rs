//! The command line: OpenSSH's flags for the tunnel face (`tunnelkit [options] destination`),
//! plus subcommands. Parsing only; [`crate::resolve`] turns these into a validated config.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  RDP to a Windows server that only the bastion can reach, through a gateway:
    tunnelkit -N -L 13389:winserver:3389 -J ops@gw.example.com admin@bastion.example.com
    (then point the RDP client at 127.0.0.1:13389)

  VNC display :1 with a DR site that takes over when the primary bastion fails:
    tunnelkit -N -L 5901:vnc-host:5901 admin@bastion.prod --dr admin@bastion.dr

  Try it with nothing installed:
    tunnelkit demo

Exit status: 0 after Ctrl-C/SIGTERM, 255 on errors (as ssh).";

/// SSH tunnels that stay up: local forwards through jump hosts, with DR failover.
#[derive(Debug, Parser)]
#[command(
    name = "tunnelkit",
    version,
    about,
    long_about = "tunnelkit opens SSH local port forwards (ssh -L) through a bastion or a chain of jump \
hosts (-J), keeps them alive with keepalives and reconnects, and moves them to a disaster-recovery \
route (--dr) when the primary bastion dies or goes silent. Its flags mean what they mean to ssh.",
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
    Agent(AgentArgs),
    /// Show every profile: state, route, forwards, connections, bytes, last error.
    Status(StatusArgs),
    /// Start a profile and wait until it is up; on a terminal, answer what it needs
    /// (passphrase, password, one-time code, host key).
    Up(NameArgs),
    /// Stop a profile.
    Down(NameArgs),
    /// Make the agent re-read the profiles directory now.
    Reload(SocketArgs),
    /// Show a profile's recent events.
    Logs(NameArgs),
    /// Store or delete a password or key passphrase in the OS keyring.
    Secret(SecretArgs),
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
pub struct AgentArgs {
    /// The profiles directory (default $XDG_CONFIG_HOME/tunnelkit/profiles).
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Where to listen.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// More log output.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
}

/// Options of `tunnelkit status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (a list of profiles; see README for the schema).
    #[arg(long)]
    pub json: bool,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
}

/// A profile name and the agent's socket.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The profile's name (its file name without .toml).
    pub name: String,
    /// Where the agent is.
    #[command(flatten)]
    pub socket: SocketArgs,
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

/// The ssh-compatible options.
#[derive(Debug, Args, Default)]
pub struct SshArgs {
    /// Do not run a remote command (accepted for ssh compatibility: tunnelkit never runs one).
    #[arg(short = 'N')]
    pub no_command: bool,

    /// Forward a local port: [bind_address:]port:host:hostport. The host is resolved by the
    /// route's last hop. Binds to 127.0.0.1 unless a bind address is given; port 0 picks a
    /// free port (printed at start). Repeatable.
    #[arg(short = 'L', value_name = "[bind_address:]port:host:hostport")]
    pub local: Vec<String>,

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
    /// reads no file. Host aliases, HostName, User, Port, IdentityFile, ProxyJump, LocalForward
    /// and the other keywords tunnelkit uses are taken from it, as ssh does.
    #[arg(short = 'F', value_name = "configfile")]
    pub config_file: Option<PathBuf>,

    /// Print the configuration resolved for the destination, in `ssh -G`'s format, and exit.
    #[arg(short = 'G')]
    pub print_config: bool,

    /// An OpenSSH option, Key=Value; repeatable. Unlike ssh -J, applied to every hop.
    /// Used: User, Port, IdentityFile, IdentitiesOnly, IdentityAgent, UserKnownHostsFile,
    /// GlobalKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, BatchMode, ConnectTimeout,
    /// ConnectionAttempts, Ciphers, ServerAliveInterval, ServerAliveCountMax,
    /// ExitOnForwardFailure, PasswordAuthentication, KbdInteractiveAuthentication, GatewayPorts.
    #[arg(short = 'o', value_name = "Key=Value")]
    pub options: Vec<String>,

    /// More log output; repeat for more (-v info details, -vv debug, -vvv trace).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Quiet: only errors.
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

    /// Keep retrying (with backoff) even if no route comes up at start. By default tunnelkit
    /// exits like ssh when it cannot connect at all at start; once up, it never gives up.
    #[arg(long)]
    pub retry: bool,

    /// The destination: [user@]host[:port] or ssh://[user@]host[:port].
    #[arg(value_name = "destination")]
    pub destination: Option<String>,
}
