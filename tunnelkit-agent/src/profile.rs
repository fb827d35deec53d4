//! Profiles: one TOML file per tunnel, named by its file stem. [`parse`] turns the raw TOML
//! ([`RawProfile`], `deny_unknown_fields`) into a validated [`Profile`] holding a
//! [`TunnelConfig`]; every mistake is a [`ProfileError`] with the file, line and column and what
//! was expected. Secrets never belong in a profile: passwords and passphrases live in the
//! keyring (`tunnelkit secret set ...`).
//!
//! Hops are resolved by the core's resolver ([`tunnelkit_core::resolve`]) exactly as the command
//! line resolves them: a hop that names a `Host` alias of `~/.ssh/config` gets its HostName,
//! User, Port, IdentityFile, ProxyJump, ProxyCommand and known_hosts options; a profile with
//! none of `[[forward]]`, `[[dynamic]]` and `[[remote]]` takes the `LocalForward`,
//! `DynamicForward` and `RemoteForward` lines of its primary destination. `[[dynamic]]` is a
//! SOCKS proxy (`ssh -D`). `[[remote]]` is a remote forward (`ssh -R`): the bastion of the
//! route in use listens, and connections come back to a target on this side. `[ssh]` options
//! apply to every hop, like `-o`; the keys that name one host or that a profile cannot apply
//! are refused with their line and column. `certificate_command` (the profile's, or a route's
//! own) refreshes a short-lived certificate before a connect
//! ([`CertificateCommand`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tunnelkit_core::resolve::{self as core, Environment, Overrides, Resolver};
use tunnelkit_core::spec;
use tunnelkit_core::ssh_config::HostConfig;
use tunnelkit_core::{
    CertificateCommand, Failback, Forward, ForwardKind, RemoteBind, RemoteForward, Route,
    SshOptions, Target, TunnelConfig,
};

mod listen;

pub use listen::RawDynamic;

/// `[ssh]` keys a profile cannot apply to every hop, and where they belong instead.
const NOT_IN_PROFILE: &[(&str, &str)] = &[
    ("User", "belongs in each route's hops ([user@]host[:port]) or in ssh_config's Host entry"),
    ("Port", "belongs in each route's hops ([user@]host[:port]) or in ssh_config's Host entry"),
    ("HostName", "names one host: put it in ssh_config under the Host a hop names"),
    ("ProxyJump", "belongs in the route's hops (jump hosts first) or in ssh_config's Host entry"),
    ("ProxyCommand", "names one host: put it in ssh_config under the Host a hop names"),
    ("HostKeyAlias", "names one host: put it in ssh_config under the Host a hop names"),
    ("LocalForward", "use [[forward]] (or LocalForward under the primary destination's Host in ssh_config)"),
    ("DynamicForward", "use [[dynamic]] (or DynamicForward under the primary destination's Host in ssh_config)"),
    ("RemoteForward", "use [[remote]] (or RemoteForward under the primary destination's Host in ssh_config)"),
    ("GatewayPorts", "set the bind address in [[forward]]: local = \"*:PORT\" (every address)"),
    ("ExitOnForwardFailure", "does not apply to the agent: a forward that cannot be bound is shown in `tunnelkit status`"),
    ("ConnectionAttempts", "does not apply to the agent: it retries every route with backoff until stopped"),
];

/// A profile file that could not be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ProfileError {
    /// The profile file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

/// The file as written (`deny_unknown_fields`: a misspelt key is an error, not ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Free text shown in `tunnelkit status`.
    #[serde(default)]
    pub description: Option<String>,
    /// Start when the agent starts.
    #[serde(default)]
    pub autostart: bool,
    /// Seconds, or "never".
    #[serde(default)]
    pub failback: Option<Spanned<toml::Value>>,
    /// Seconds a new connection waits for a route.
    #[serde(default)]
    pub route_wait: Option<Spanned<u64>>,
    /// Seconds between background probes of each standby route, or "never".
    #[serde(default)]
    pub standby_probe: Option<Spanned<toml::Value>>,
    /// Keep the next route's session up, so a failover needs no handshake.
    #[serde(default)]
    pub hot_standby: bool,
    /// Refreshes a short-lived certificate before a connect: `["program", "arg", ...]`, run
    /// without a shell, for every route's hops (a route's own replaces it).
    #[serde(default)]
    pub certificate_command: Option<Spanned<toml::Value>>,
    /// OpenSSH options applied to every hop, as with `-o`.
    #[serde(default)]
    pub ssh: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Local forwards.
    #[serde(default)]
    pub forward: Vec<RawForward>,
    /// SOCKS proxies (dynamic forwards).
    #[serde(default)]
    pub dynamic: Vec<RawDynamic>,
    /// Remote forwards (`ssh -R`).
    #[serde(default)]
    pub remote: Vec<RawRemote>,
    /// Routes: the first is the primary, then DR routes in order.
    #[serde(default)]
    pub route: Vec<RawRoute>,
}

/// One `[[forward]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// `port`, `host:port` or `[v6]:port`; a bare port means 127.0.0.1.
    pub local: Spanned<toml::Value>,
    /// `host:port` as the route's last hop resolves it.
    pub remote: Spanned<String>,
    /// Per-route targets: `route name = "host:port"`.
    #[serde(default)]
    pub remote_by_route: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Concurrent connections at most.
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
}

/// One `[[remote]]`: a port on the bastion of the route in use, forwarded back to a target on
/// this side.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemote {
    /// Where the bastion listens: `port` (its loopback), `"*:port"` (every address, if its
    /// GatewayPorts allows), `"host:port"` or `"[v6]:port"`; port 0 lets it pick one.
    pub bind: Spanned<toml::Value>,
    /// `host:port` this side connects to for each connection.
    pub target: Spanned<String>,
    /// Per-route listen addresses: `route name = "host:port"` (or a port).
    #[serde(default)]
    pub bind_by_route: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Concurrent connections at most.
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
}

/// One `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Shown in status and events.
    pub name: Spanned<String>,
    /// `[user@]host[:port]`, jump hosts first, the destination last.
    pub hops: Spanned<Vec<Spanned<String>>>,
    /// This route's certificate command, in place of the profile's.
    #[serde(default)]
    pub certificate_command: Option<Spanned<toml::Value>>,
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The file stem.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Free text.
    pub description: String,
    /// Start when the agent starts.
    pub autostart: bool,
    /// The tunnel.
    pub config: TunnelConfig,
}

/// The environment profiles are resolved in: this process's home, shell and ssh_config files
/// (`~/.ssh/config`, `/etc/ssh/ssh_config`), with `local_user`.
pub fn environment(local_user: &str) -> Environment {
    let mut env = Environment::from_process(None, false);
    env.local_user = local_user.to_string();
    env
}

/// Reads and parses a profile file.
pub fn load(file: &Path, local_user: &str) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(file).map_err(|e| ProfileError {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        message: format!("cannot read: {e}"),
    })?;
    parse(file, &text, local_user)
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> ProfileError {
        let (line, column) = line_col(self.text, span.start);
        ProfileError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        toml::Value::Array(a) => {
            let parts: Option<Vec<String>> = a.iter().map(value_text).collect();
            parts.map(|p| p.join(" "))
        }
        _ => None,
    }
}

/// Parses profile text in this process's [`environment`]. `file` names the profile (its stem)
/// and appears in errors.
pub fn parse(file: &Path, text: &str, local_user: &str) -> Result<Profile, ProfileError> {
    parse_in(file, text, &environment(local_user))
}

/// Parses profile text, resolving its hops in `env`.
pub fn parse_in(file: &Path, text: &str, env: &Environment) -> Result<Profile, ProfileError> {
    let cx = Ctx { file, text };
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, e.message().trim().to_string())
    })?;
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| cx.err(0..0, "the file name is not valid UTF-8"))?
        .to_string();

    let mut overrides = Overrides::default();
    for (k, v) in &raw.ssh {
        let text = value_text(v.get_ref()).ok_or_else(|| {
            cx.err(
                v.span(),
                format!("{}: expected a string, number or yes/no", k.get_ref()),
            )
        })?;
        let key = tunnelkit_core::options::canonical(k.get_ref());
        if let Some((name, why)) = NOT_IN_PROFILE.iter().find(|(n, _)| Some(*n) == key) {
            return Err(cx.err(k.span(), format!("[ssh] {name} {why}")));
        }
        // Checked here, so that a bad value is reported at its key.
        SshOptions::default()
            .apply(k.get_ref(), &text)
            .map_err(|e| cx.err(k.span(), format!("[ssh] {e}")))?;
        overrides.options.push(format!("{}={text}", k.get_ref()));
    }
    let resolver = Resolver::new(env, &overrides);

    if raw.route.is_empty() {
        return Err(cx.err(
            0..0,
            "no [[route]]: a profile needs at least one route (the primary)",
        ));
    }
    let profile_command = certificate_command(&cx, raw.certificate_command.as_ref())?;
    let mut routes = Vec::new();
    let mut primary: Option<HostConfig> = None;
    for r in &raw.route {
        if r.hops.get_ref().is_empty() {
            return Err(cx.err(
                r.hops.span(),
                "hops is empty: expected [\"[user@]host[:port]\", ...]",
            ));
        }
        for h in r.hops.get_ref() {
            spec::parse_hop(h.get_ref()).map_err(|e| cx.err(h.span(), e.to_string()))?;
        }
        if routes.iter().any(|x: &Route| &x.name == r.name.get_ref()) {
            return Err(cx.err(
                r.name.span(),
                format!("a second route named {}", r.name.get_ref()),
            ));
        }
        let hosts: Vec<&str> = r
            .hops
            .get_ref()
            .iter()
            .map(|h| h.get_ref().as_str())
            .collect();
        let (mut route, dest) = resolver
            .route_of_hosts(r.name.get_ref(), &hosts)
            .map_err(|e| cx.err(r.hops.span(), format!("route {}: {e}", r.name.get_ref())))?;
        let own = certificate_command(&cx, r.certificate_command.as_ref())?;
        route.set_certificate_command(own.as_ref().or(profile_command.as_ref()));
        primary.get_or_insert(dest);
        routes.push(route);
    }

    let from_ssh_config = raw.forward.is_empty() && raw.dynamic.is_empty() && raw.remote.is_empty();
    let (mut forwards, mut remote_forwards) = match (&primary, from_ssh_config) {
        (Some(dest), true) => (
            core::forwards(std::iter::empty::<&str>(), dest).map_err(|e| {
                cx.err(
                    0..0,
                    format!("LocalForward or DynamicForward of the primary destination: {e}"),
                )
            })?,
            core::remote_forwards(std::iter::empty::<&str>(), dest).map_err(|e| {
                cx.err(
                    0..0,
                    format!("RemoteForward of the primary destination: {e}"),
                )
            })?,
        ),
        _ => (Vec::new(), Vec::new()),
    };
    if from_ssh_config && forwards.is_empty() && remote_forwards.is_empty() {
        return Err(cx.err(
            0..0,
            "no [[forward]], [[dynamic]] or [[remote]], and the primary destination has no \
             LocalForward, DynamicForward or RemoteForward in ssh_config: a profile needs at \
             least one forward",
        ));
    }
    for r in &raw.remote {
        remote_forwards.push(remote_forward(&cx, r, &routes)?);
    }
    for f in &raw.forward {
        let (bind, port) = listen::local_address(&cx, &f.local)?;
        let (host, rport) = spec::parse_target(f.remote.get_ref())
            .map_err(|e| cx.err(f.remote.span(), e.to_string()))?;
        let mut route_targets = Vec::new();
        for (route, t) in &f.remote_by_route {
            if !routes.iter().any(|r| &r.name == route.get_ref()) {
                return Err(cx.err(
                    route.span(),
                    format!("remote_by_route: no route named {}", route.get_ref()),
                ));
            }
            let (h, p) =
                spec::parse_target(t.get_ref()).map_err(|e| cx.err(t.span(), e.to_string()))?;
            route_targets.push((route.get_ref().clone(), Target { host: h, port: p }));
        }
        forwards.push(Forward {
            bind_host: bind.unwrap_or_else(|| "127.0.0.1".into()),
            bind_port: port,
            kind: ForwardKind::Local {
                target: Target { host, port: rport },
                route_targets,
            },
            max_connections: listen::max_connections(&cx, &f.max_connections)?,
        });
    }
    for d in &raw.dynamic {
        forwards.push(listen::dynamic(&cx, d)?);
    }

    let mut config = TunnelConfig::new(routes, forwards);
    config.remote_forwards = remote_forwards;
    config.give_up_after_rounds = None;
    if let Some(fb) = &raw.failback {
        config.failback = match fb.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Failback::After(Duration::from_secs(*n as u64)),
            toml::Value::String(s) => {
                match tunnelkit_core::spec::parse_seconds_or_never("failback", s) {
                    Ok(hold) => Failback::from_hold(hold),
                    Err(_) => {
                        return Err(cx.err(
                            fb.span(),
                            "failback: expected a number of seconds or \"never\"",
                        ))
                    }
                }
            }
            _ => {
                return Err(cx.err(
                    fb.span(),
                    "failback: expected a number of seconds or \"never\"",
                ))
            }
        };
    }
    if let Some(w) = &raw.route_wait {
        config.route_wait = Duration::from_secs(*w.get_ref());
    }
    if let Some(p) = &raw.standby_probe {
        config.standby_probe = match p.get_ref() {
            toml::Value::Integer(n) if *n > 0 => Some(Duration::from_secs(*n as u64)),
            toml::Value::String(s) if s == "never" => None,
            _ => {
                return Err(cx.err(
                    p.span(),
                    "standby_probe: expected a number of seconds (at least 1) or \"never\"",
                ))
            }
        };
    }
    config.hot_standby = raw.hot_standby;
    config.validate().map_err(|e| cx.err(0..0, e.to_string()))?;
    Ok(Profile {
        name,
        file: file.to_path_buf(),
        description: raw.description.unwrap_or_default(),
        autostart: raw.autostart,
        config,
    })
}

/// `certificate_command = ["program", "arg", ...]`: an array of strings only, so that no
/// word is ever split or expanded by guesswork (a shell would be needed to read a string the
/// way a person means it).
fn certificate_command(
    cx: &Ctx<'_>,
    v: Option<&Spanned<toml::Value>>,
) -> Result<Option<CertificateCommand>, ProfileError> {
    let Some(v) = v else { return Ok(None) };
    let expected = "certificate_command: expected an array of strings, the program and its \
                    arguments, run without a shell, e.g. [\"step\", \"ssh\", \"certificate\", \
                    \"--force\", \"alice\", \"/home/alice/.ssh/id_step\"]";
    let words = match v.get_ref() {
        toml::Value::Array(a) => a
            .iter()
            .map(|w| w.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>(),
        _ => None,
    };
    let Some(words) = words else {
        return Err(cx.err(v.span(), expected));
    };
    CertificateCommand::new(words)
        .map(Some)
        .map_err(|e| cx.err(v.span(), format!("certificate_command: {e}")))
}

/// A bastion listen address written as a port or a string.
fn remote_bind(
    cx: &Ctx<'_>,
    v: &Spanned<toml::Value>,
    key: &str,
) -> Result<RemoteBind, ProfileError> {
    let text = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        _ => {
            return Err(cx.err(
                v.span(),
                format!("{key}: expected a port or \"host:port\" on the bastion"),
            ))
        }
    };
    let (host, port) =
        spec::parse_remote_listen(&text).map_err(|e| cx.err(v.span(), format!("{key}: {e}")))?;
    Ok(RemoteBind {
        host: host.unwrap_or_else(|| "localhost".into()),
        port,
    })
}

/// One `[[remote]]`, its routes checked against the profile's.
fn remote_forward(
    cx: &Ctx<'_>,
    r: &RawRemote,
    routes: &[Route],
) -> Result<RemoteForward, ProfileError> {
    let bind = remote_bind(cx, &r.bind, "bind")?;
    let (host, port) = spec::parse_target(r.target.get_ref())
        .map_err(|e| cx.err(r.target.span(), format!("target: {e}")))?;
    let mut route_binds = Vec::new();
    for (route, b) in &r.bind_by_route {
        if !routes.iter().any(|x| &x.name == route.get_ref()) {
            return Err(cx.err(
                route.span(),
                format!("bind_by_route: no route named {}", route.get_ref()),
            ));
        }
        route_binds.push((
            route.get_ref().clone(),
            remote_bind(cx, b, "bind_by_route")?,
        ));
    }
    let max_connections = listen::max_connections(cx, &r.max_connections)?;
    Ok(RemoteForward {
        bind,
        route_binds,
        target: Target { host, port },
        max_connections,
    })
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
