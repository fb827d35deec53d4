//! One resolver for every face: hop specs, `-o` options and ssh_config turned into [`Route`]s,
//! the way ssh resolves them. The CLI, the agent's profiles and library users all call it.
//!
//! - A destination (`[user@]host[:port]` or a `Host` alias) gets its ssh_config entry: HostName,
//!   User, Port, IdentityFile, known_hosts options, ProxyJump or ProxyCommand (whichever is
//!   obtained first, as in ssh), LocalForward, DynamicForward, RemoteForward.
//! - Jump hosts are resolved the same way; the first jump's own ProxyJump/ProxyCommand is
//!   followed, later jumps are reached through the one before (ssh's `-J` rule).
//! - Options given by the caller ([`Overrides`], like `-o` and `-i`) come before the files and
//!   so win; the per-host ones (HostName, Port, ProxyJump, ProxyCommand, HostKeyAlias,
//!   LocalForward, DynamicForward, RemoteForward) apply to the destination only, the others to
//!   every hop. `-D` specs ([`Request::dynamic_forwards`]) are the destination's first
//!   `DynamicForward`s, as in ssh (and `-G` prints them so).
//!
//! The process environment is read only by [`Environment::from_process`]; everything else
//! takes an [`Environment`].
//!
//! ```no_run
//! use tunnelkit_core::resolve::{Environment, Request};
//! let env = Environment::from_process(None, false);
//! let request = Request {
//!     destination: "prod-rdp".into(),
//!     ..Default::default()
//! };
//! let resolved = tunnelkit_core::resolve::resolve(&env, &request)?;
//! println!("{:?}", resolved.routes);
//! # Ok::<(), tunnelkit_core::resolve::ResolveError>(())
//! ```

mod proxy_command;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Forward, Hop, Route};
use crate::options::SshOptions;
use crate::remote::RemoteForward;
use crate::spec::{self, HopSpec, SpecError};
use crate::ssh_config::{evaluate, ConfigError, HostConfig, Query};

pub use crate::env::Environment;
pub use proxy_command::expand_proxy_command;

/// ProxyJump chains nest at most this deep (a loop in ssh_config is an error, not a hang).
pub const MAX_JUMP_DEPTH: usize = 8;

/// `-o` keywords that name one host: they apply to the destination, not to its jump hosts.
const PER_HOST: &[&str] = &[
    "hostname",
    "port",
    "proxyjump",
    "proxycommand",
    "hostkeyalias",
    "localforward",
    "dynamicforward",
    "remoteforward",
];

/// Why a request could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A hop, jump list or forward string is malformed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An ssh_config file is wrong (with its file and line).
    #[error(transparent)]
    SshConfig(#[from] ConfigError),
    /// Anything else, described (e.g. `-o Bogus=1: unknown option`).
    #[error("{0}")]
    Invalid(String),
}

/// Options the caller gives for every hop, before ssh_config (so they win).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `Key=Value` or `Key Value` texts, like `-o`, in order.
    pub options: Vec<String>,
    /// Identity files, like `-i`, tried after those from `options`.
    pub identity_files: Vec<PathBuf>,
}

/// A tunnel as the command line describes it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The destination: `[user@]host[:port]`, `ssh://...`, or a `Host` alias.
    pub destination: String,
    /// Jump hosts (`-J`): `[user@]host[:port][,...]` or `none`.
    pub jump: Option<String>,
    /// The destination's login (`-l`).
    pub login: Option<String>,
    /// The destination's port (`-p`).
    pub port: Option<u16>,
    /// Options for every hop (`-o`, `-i`).
    pub overrides: Overrides,
    /// DR routes: `[user@]host[:port][,host...]`, the last host the destination.
    pub dr: Vec<String>,
    /// Local forwards (`-L`), before the destination's `LocalForward` lines.
    pub local_forwards: Vec<String>,
    /// Dynamic (SOCKS) forwards (`-D [bind_address:]port`), before the destination's
    /// `DynamicForward` lines.
    pub dynamic_forwards: Vec<String>,
    /// Remote forwards (`-R`), before the destination's `RemoteForward` lines.
    pub remote_forwards: Vec<String>,
}

impl Request {
    /// The caller's options with the `-D` specs first, as the destination's
    /// `DynamicForward`s (checked here, so that a bad one is reported as `-D`).
    fn overrides(&self) -> Result<Overrides, ResolveError> {
        let mut o = self.overrides.clone();
        let mut dynamic = Vec::with_capacity(self.dynamic_forwards.len());
        for d in &self.dynamic_forwards {
            spec::parse_dynamic(d).map_err(|e| ResolveError::Invalid(format!("-D: {e}")))?;
            dynamic.push(format!("DynamicForward={d}"));
        }
        o.options.splice(0..0, dynamic);
        Ok(o)
    }
}

/// A resolved [`Request`].
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The primary route, then the DR routes (`dr`, `dr2`, ...).
    pub routes: Vec<Route>,
    /// The `-L` forwards, then the destination's `LocalForward`s, then its `DynamicForward`s
    /// (`-D` first), `GatewayPorts` applied.
    pub forwards: Vec<Forward>,
    /// The `-R` forwards, then the destination's `RemoteForward`s.
    pub remote_forwards: Vec<RemoteForward>,
    /// The primary destination as resolved (its options hold `ExitOnForwardFailure`,
    /// `ConnectionAttempts`, the keywords accepted but unused, ...).
    pub destination: HostConfig,
}

/// Resolves hosts in ssh_config with the caller's options first.
#[derive(Debug, Clone)]
pub struct Resolver<'a> {
    env: &'a Environment,
    overrides: &'a Overrides,
}

impl<'a> Resolver<'a> {
    /// A resolver for `env`, applying `overrides` to every hop.
    pub fn new(env: &'a Environment, overrides: &'a Overrides) -> Self {
        Resolver { env, overrides }
    }

    /// The caller's options for one host: its own user/port first, then the overrides.
    fn cmdline(
        &self,
        user: Option<&str>,
        port: Option<u16>,
        jump: Option<&str>,
        is_jump: bool,
    ) -> Result<SshOptions, ResolveError> {
        let mut o = SshOptions {
            user: user.map(str::to_string),
            port,
            ..Default::default()
        };
        if let Some(j) = jump {
            o.proxy_jump = Some(if j.eq_ignore_ascii_case("none") {
                String::new()
            } else {
                j.to_string()
            });
        }
        for kv in &self.overrides.options {
            let key = kv
                .trim()
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if is_jump && PER_HOST.contains(&key.as_str()) {
                continue;
            }
            if key == "proxycommand" && jump.is_some_and(|j| !j.eq_ignore_ascii_case("none")) {
                return Err(ResolveError::Invalid(format!(
                    "-o {kv}: cannot specify -J with ProxyCommand (as ssh)"
                )));
            }
            o.apply_kv(kv)
                .map_err(|e| ResolveError::Invalid(format!("-o {kv}: {e}")))?;
        }
        o.identity_files
            .extend(self.overrides.identity_files.iter().cloned());
        Ok(o)
    }

    fn host(
        &self,
        h: &HopSpec,
        user: Option<&str>,
        port: Option<u16>,
        jump: Option<&str>,
        is_jump: bool,
    ) -> Result<HostConfig, ResolveError> {
        let q = Query {
            host: h.host.clone(),
            local_user: self.env.local_user.clone(),
            home: self.env.home.clone(),
            exec: crate::ssh_config::MatchExec::Shell(self.env.shell.clone()),
        };
        let cmdline = self.cmdline(h.user.as_deref().or(user), h.port.or(port), jump, is_jump)?;
        Ok(evaluate(&q, cmdline, &self.env.sources)?)
    }

    /// The hop for a resolved host, with its ProxyCommand (if any) expanded.
    pub fn hop(&self, c: &HostConfig) -> Result<Hop, ResolveError> {
        let mut hop = Hop::new(
            c.user.clone(),
            c.host_name.clone(),
            c.port,
            Arc::new(c.options.hop_options(self.env)),
        );
        hop.host_key_alias = c.options.host_key_alias.clone();
        if let Some(cmd) = c.options.proxy_command.as_deref().filter(|c| !c.is_empty()) {
            hop.proxy_command = Some(expand_proxy_command(cmd, c, &self.env.shell)?);
        }
        Ok(hop)
    }

    /// The hops that reach the hosts of a jump list, in order: the first host's own
    /// ProxyJump chain (or ProxyCommand) from ssh_config, then each host through the one
    /// before (as `ssh -J` does).
    fn jump_chain(&self, list: &str, depth: usize) -> Result<Vec<Hop>, ResolveError> {
        if depth > MAX_JUMP_DEPTH {
            return Err(ResolveError::Invalid(format!(
                "ProxyJump {list}: jump hosts nest more than {MAX_JUMP_DEPTH} deep (a loop in ssh_config?)"
            )));
        }
        let mut hops = Vec::new();
        for (i, h) in spec::parse_jump_list(list)?.iter().enumerate() {
            let c = self.host(h, None, None, (i > 0).then_some("none"), true)?;
            if i == 0 {
                if let Some(j) = c.options.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
                    hops.extend(self.jump_chain(j, depth + 1)?);
                }
            }
            hops.push(self.hop(&c)?);
        }
        Ok(hops)
    }

    /// A route to a resolved destination: through its ProxyJump chain, or its ProxyCommand,
    /// or straight.
    pub fn route(&self, name: &str, dest: &HostConfig) -> Result<Route, ResolveError> {
        let mut hops = match dest.options.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
            Some(j) => self.jump_chain(j, 0)?,
            None => Vec::new(),
        };
        hops.push(self.hop(dest)?);
        Ok(Route {
            name: name.into(),
            hops,
        })
    }

    /// A destination as resolved: `user@host:port` as typed, then `login`/`port`/`jump` (the
    /// command line's `-l`, `-p`, `-J`), then ssh_config.
    pub fn destination(
        &self,
        text: &str,
        login: Option<&str>,
        port: Option<u16>,
        jump: Option<&str>,
    ) -> Result<HostConfig, ResolveError> {
        let h = spec::parse_hop(text)?;
        if let Some(j) = jump.filter(|j| !j.eq_ignore_ascii_case("none")) {
            spec::parse_jump_list(j)?;
        }
        self.host(&h, login, port, jump, false)
    }

    /// A route given as a list of hosts, jump hosts first, the destination last (a profile's
    /// `hops`, or `--dr a,b`): the destination resolved with the others as its `-J`.
    pub fn route_of_hosts(
        &self,
        name: &str,
        hosts: &[&str],
    ) -> Result<(Route, HostConfig), ResolveError> {
        let (last, jumps) = hosts.split_last().ok_or_else(|| {
            ResolveError::Invalid(format!(
                "route {name}: a route needs at least a destination"
            ))
        })?;
        let jumps = (!jumps.is_empty()).then(|| jumps.join(","));
        let dest = self.destination(last, None, None, jumps.as_deref())?;
        Ok((self.route(name, &dest)?, dest))
    }
}

/// The forwards of `-L` specs and a destination's `LocalForward` lines, then its
/// `DynamicForward` lines (SOCKS proxies), with `GatewayPorts`.
pub fn forwards(
    specs: impl IntoIterator<Item = impl AsRef<str>>,
    dest: &HostConfig,
) -> Result<Vec<Forward>, ResolveError> {
    let o = &dest.options;
    let mut out = Vec::new();
    let given: Vec<String> = specs.into_iter().map(|s| s.as_ref().to_string()).collect();
    for l in given.iter().chain(&o.local_forwards) {
        let f = spec::parse_forward(l).map_err(|e| ResolveError::Invalid(format!("-L: {e}")))?;
        let mut fwd = Forward::from_spec(&f);
        if f.bind_host.is_none() {
            default_bind(&mut fwd, o);
        }
        family_bind(&mut fwd, o);
        out.push(fwd);
    }
    for d in &o.dynamic_forwards {
        let spec = spec::parse_dynamic(d).map_err(|e| ResolveError::Invalid(format!("-D: {e}")))?;
        let mut fwd = Forward::from_dynamic_spec(&spec);
        if spec.bind_host.is_none() {
            default_bind(&mut fwd, o);
        }
        family_bind(&mut fwd, o);
        out.push(fwd);
    }
    Ok(out)
}

/// The address of a forward given without one: as ssh binds "localhost" (or every address
/// with `GatewayPorts`) in the family asked.
fn default_bind(fwd: &mut Forward, o: &SshOptions) {
    let v6 = o.address_family == Some(crate::config::AddressFamily::Inet6);
    match (o.gateway_ports == Some(true), v6) {
        (true, false) => fwd.bind_host = spec::ALL_INTERFACES.into(),
        (true, true) => fwd.bind_host = "::".into(),
        (false, true) => fwd.bind_host = "::1".into(),
        (false, false) => {}
    }
}

/// Every address (`*`) in the one family `AddressFamily` allows, as ssh binds it.
fn family_bind(fwd: &mut Forward, o: &SshOptions) {
    if fwd.bind_host != spec::ALL_INTERFACES {
        return;
    }
    match o.address_family {
        Some(crate::config::AddressFamily::Inet) => fwd.bind_host = "0.0.0.0".into(),
        Some(crate::config::AddressFamily::Inet6) => fwd.bind_host = "::".into(),
        _ => {}
    }
}

/// The remote forwards of `-R` specs and a destination's `RemoteForward` lines. Without a bind
/// address the bastion listens on its loopback (ssh sends `localhost`); the client's
/// `GatewayPorts` does not apply (the server's does).
pub fn remote_forwards(
    specs: impl IntoIterator<Item = impl AsRef<str>>,
    dest: &HostConfig,
) -> Result<Vec<RemoteForward>, ResolveError> {
    let given: Vec<String> = specs.into_iter().map(|s| s.as_ref().to_string()).collect();
    given
        .iter()
        .chain(&dest.options.remote_forwards)
        .map(|r| {
            spec::parse_remote_forward(r)
                .map(|s| RemoteForward::from_spec(&s))
                .map_err(|e| ResolveError::Invalid(format!("-R: {e}")))
        })
        .collect()
}

/// Resolves a whole request: the primary route, the DR routes and the forwards.
pub fn resolve(env: &Environment, req: &Request) -> Result<Resolved, ResolveError> {
    let overrides = req.overrides()?;
    let r = Resolver::new(env, &overrides);
    let dest = r.destination(
        &req.destination,
        req.login.as_deref(),
        req.port,
        req.jump.as_deref(),
    )?;
    let mut routes = vec![r.route("primary", &dest)?];
    for (n, dr) in req.dr.iter().enumerate() {
        let hosts: Vec<&str> = dr.split(',').collect();
        let (last, jumps) = hosts.split_last().ok_or_else(|| {
            ResolveError::Invalid(format!(
                "--dr {dr}: a DR route needs at least a destination"
            ))
        })?;
        let jumps = (!jumps.is_empty()).then(|| jumps.join(","));
        let c = r
            .destination(last, req.login.as_deref(), req.port, jumps.as_deref())
            .map_err(|e| ResolveError::Invalid(format!("--dr: {e}")))?;
        let name = if n == 0 {
            "dr".to_string()
        } else {
            format!("dr{}", n + 1)
        };
        routes.push(r.route(&name, &c)?);
    }
    let forwards = forwards(&req.local_forwards, &dest)?;
    let remote_forwards = remote_forwards(&req.remote_forwards, &dest)?;
    Ok(Resolved {
        routes,
        forwards,
        remote_forwards,
        destination: dest,
    })
}

/// `-G`: the destination's configuration in `ssh -G`'s format.
pub fn print_config(env: &Environment, req: &Request) -> Result<String, ResolveError> {
    let overrides = req.overrides()?;
    let r = Resolver::new(env, &overrides);
    let mut c = r.destination(
        &req.destination,
        req.login.as_deref(),
        req.port,
        req.jump.as_deref(),
    )?;
    // A bad -L or -R is an error, as in ssh -G, not a line left out.
    for l in &req.local_forwards {
        spec::parse_forward(l).map_err(|e| ResolveError::Invalid(format!("-L: {e}")))?;
    }
    for r in &req.remote_forwards {
        spec::parse_remote_forward(r).map_err(|e| ResolveError::Invalid(format!("-R: {e}")))?;
    }
    // As ssh -G: the -L and -R flags first, then the destination's LocalForward and
    // RemoteForward lines (-D are already its first DynamicForwards).
    let mut local = req.local_forwards.clone();
    local.append(&mut c.options.local_forwards);
    c.options.local_forwards = local;
    let mut remote = req.remote_forwards.clone();
    remote.append(&mut c.options.remote_forwards);
    c.options.remote_forwards = remote;
    Ok(crate::ssh_config::print_g(&c, &env.home))
}

#[cfg(test)]
mod tests;
