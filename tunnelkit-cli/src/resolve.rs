//! Turns the ssh-style flags and ssh_config into one validated [`TunnelConfig`]: routes (the
//! primary from `-J`/`ProxyJump` and the destination, DR routes from `--dr`), forwards from
//! `-L` and `LocalForward`, options from `-o`/`-i` (applied to every hop) and each host's own
//! ssh_config entries. Every mistake is a [`UsageError`] that says what was wrong and where.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tunnelkit_core::spec::{self, HopSpec};
use tunnelkit_core::ssh_config::{evaluate, HostConfig, Query, Sources};
use tunnelkit_core::{AddressFamily, Failback, Forward, Hop, Route, SshOptions, TunnelConfig};

use crate::opts::SshArgs;

/// ProxyJump chains nest at most this deep (a loop in ssh_config is an error, not a hang).
const MAX_JUMP_DEPTH: usize = 8;

/// A mistake on the command line or in ssh_config (exit 255, as ssh).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<spec::SpecError> for UsageError {
    fn from(e: spec::SpecError) -> Self {
        UsageError(e.to_string())
    }
}

impl From<tunnelkit_core::ssh_config::ConfigError> for UsageError {
    fn from(e: tunnelkit_core::ssh_config::ConfigError) -> Self {
        UsageError(e.to_string())
    }
}

/// The resolved command line.
#[derive(Debug)]
pub struct Resolved {
    /// The tunnel.
    pub config: TunnelConfig,
    /// `ExitOnForwardFailure`: exit when a forward cannot be bound.
    pub exit_on_forward_failure: bool,
    /// Keywords accepted but unused, for `-v`.
    pub ignored_options: Vec<String>,
}

/// The local user name, as ssh uses it when no user is given.
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

/// Looks hosts up in ssh_config with the command line's options first.
struct Resolver<'a> {
    args: &'a SshArgs,
    sources: Sources,
    home: PathBuf,
    interactive: bool,
}

impl Resolver<'_> {
    /// The command line's options for one host: its own user/port first, then `-o`, then `-i`.
    /// `-o` keywords that name one host (HostName, Port, ProxyJump, LocalForward) apply to the
    /// destination only; the others apply to every hop.
    fn cmdline(
        &self,
        user: Option<&str>,
        port: Option<u16>,
        jump: Option<&str>,
        is_jump: bool,
    ) -> Result<SshOptions, UsageError> {
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
        for kv in &self.args.all_options() {
            let key = kv
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or_default();
            let per_host = ["hostname", "port", "proxyjump", "localforward"]
                .contains(&key.to_ascii_lowercase().as_str());
            if is_jump && per_host {
                continue;
            }
            o.apply_kv(kv)
                .map_err(|e| UsageError(format!("-o {kv}: {e}")))?;
        }
        o.identity_files.extend(self.args.identity.iter().cloned());
        Ok(o)
    }

    fn host(
        &self,
        h: &HopSpec,
        user: Option<&str>,
        port: Option<u16>,
        jump: Option<&str>,
        is_jump: bool,
    ) -> Result<HostConfig, UsageError> {
        let q = Query {
            host: h.host.clone(),
            local_user: local_user(),
            home: self.home.clone(),
        };
        Ok(evaluate(
            &q,
            self.cmdline(h.user.as_deref().or(user), h.port.or(port), jump, is_jump)?,
            &self.sources,
        )?)
    }

    fn hop(&self, c: &HostConfig) -> Hop {
        let mut hop = Hop::new(
            c.user.clone(),
            c.host_name.clone(),
            c.port,
            Arc::new(c.options.hop_options(self.interactive)),
        );
        hop.host_key_alias = c.options.host_key_alias.clone();
        hop
    }

    /// The hops that reach the hosts of a jump list, in order: the first host's own ProxyJump
    /// chain from ssh_config, then each host through the one before (as `ssh -J` does).
    fn jump_chain(&self, list: &str, depth: usize) -> Result<Vec<Hop>, UsageError> {
        if depth > MAX_JUMP_DEPTH {
            return Err(UsageError(format!(
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
            hops.push(self.hop(&c));
        }
        Ok(hops)
    }

    /// A route to `dest` through `jumps` (or the destination's own ProxyJump).
    fn route(&self, name: &str, dest: &HostConfig) -> Result<Route, UsageError> {
        let mut hops = match dest.options.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
            Some(j) => self.jump_chain(j, 0)?,
            None => Vec::new(),
        };
        hops.push(self.hop(dest));
        Ok(Route {
            name: name.into(),
            hops,
        })
    }

    /// The destination as resolved: `user@host`, `-l`, `-p`, `-J` first, then ssh_config.
    fn destination(&self, text: &str, jump: Option<&str>) -> Result<HostConfig, UsageError> {
        let h = spec::parse_hop(text)?;
        let port = match &self.args.port {
            Some(p) => Some(
                spec::parse_port(p, false)
                    .map_err(|e| UsageError(format!("-p {p}: {}", e.reason)))?,
            ),
            None => None,
        };
        if let Some(j) = jump {
            spec::parse_jump_list(j)?;
        }
        self.host(&h, self.args.login.as_deref(), port, jump, false)
    }
}

fn resolver(args: &SshArgs, interactive: bool) -> Resolver<'_> {
    let home = dirs_home();
    let sources = match &args.config_file {
        Some(f) => Sources::file(f),
        None => Sources::standard(&home),
    };
    Resolver {
        args,
        sources,
        home,
        interactive,
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `tunnelkit -G`: the destination's configuration in `ssh -G`'s format.
pub fn print_config(args: &SshArgs) -> Result<String, UsageError> {
    let r = resolver(args, false);
    let dest = args
        .destination
        .as_deref()
        .ok_or_else(|| UsageError("-G needs a destination".into()))?;
    let c = r.destination(dest, args.jump.as_deref())?;
    Ok(tunnelkit_core::ssh_config::print_g(&c))
}

/// Resolves the flags. `interactive` says whether a person can answer prompts (a TTY).
pub fn resolve(args: &SshArgs, interactive: bool) -> Result<Resolved, UsageError> {
    let r = resolver(args, interactive);
    let dest_text = args.destination.as_deref().ok_or_else(|| {
        UsageError("no destination given: tunnelkit [options] [user@]host[:port]".into())
    })?;
    let dest = r.destination(dest_text, args.jump.as_deref())?;
    let mut routes = vec![r.route("primary", &dest)?];
    for (n, dr) in args.dr.iter().enumerate() {
        let hosts: Vec<&str> = dr.split(',').collect();
        let (last, jumps) = hosts.split_last().ok_or_else(|| {
            UsageError(format!(
                "--dr {dr}: a DR route needs at least a destination"
            ))
        })?;
        let jumps = (!jumps.is_empty()).then(|| jumps.join(","));
        let c = r
            .destination(last, jumps.as_deref())
            .map_err(|e| UsageError(format!("--dr: {e}")))?;
        let name = if n == 0 {
            "dr".to_string()
        } else {
            format!("dr{}", n + 1)
        };
        routes.push(r.route(&name, &c)?);
    }

    let o = &dest.options;
    let mut forwards = Vec::new();
    for l in args.local.iter().chain(&o.local_forwards) {
        let f = spec::parse_forward(l).map_err(|e| UsageError(format!("-L: {e}")))?;
        let mut fwd = Forward::from_spec(&f);
        if f.bind_host.is_none() {
            // As ssh binds "localhost" (or every address with GatewayPorts) in the family asked.
            let v6 = o.address_family == Some(AddressFamily::Inet6);
            match (o.gateway_ports == Some(true), v6) {
                (true, false) => fwd.bind_host = "0.0.0.0".into(),
                (true, true) => fwd.bind_host = "::".into(),
                (false, true) => fwd.bind_host = "::1".into(),
                (false, false) => {}
            }
        }
        forwards.push(fwd);
    }
    if forwards.is_empty() {
        return Err(UsageError(
            "no forwards: give at least one -L [bind_address:]port:host:hostport (or LocalForward in ssh_config)".into(),
        ));
    }

    let mut config = TunnelConfig::new(routes, forwards);
    if let Some(fb) = &args.failback {
        config.failback = parse_failback(fb)?;
    }
    if let Some(w) = args.route_wait {
        config.route_wait = Duration::from_secs(w);
    }
    config.give_up_after_rounds = if args.retry {
        None
    } else {
        Some(o.connection_attempts.unwrap_or(1))
    };
    config.validate().map_err(|e| UsageError(e.to_string()))?;
    Ok(Resolved {
        config,
        exit_on_forward_failure: o.exit_on_forward_failure.unwrap_or(false),
        ignored_options: o.ignored.clone(),
    })
}

/// `--failback SECONDS|never`.
pub fn parse_failback(s: &str) -> Result<Failback, UsageError> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(Failback::Never);
    }
    s.parse::<u64>()
        .map(|n| Failback::After(Duration::from_secs(n)))
        .map_err(|_| {
            UsageError(format!(
                "--failback {s}: expected a number of seconds or `never`"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(v: &[&str]) -> SshArgs {
        let mut all = vec!["tunnelkit", "-F", "none"];
        all.extend_from_slice(v);
        crate::opts::Opts::try_parse_from(all).unwrap().ssh
    }

    #[test]
    fn primary_with_jumps_and_dr() {
        let r = resolve(
            &args(&[
                "-N",
                "-L",
                "13389:winserver:3389",
                "-J",
                "ops@gw,relay:2200",
                "-l",
                "admin",
                "-p",
                "2222",
                "-o",
                "User=svc",
                "bastion",
                "--dr",
                "dr-gw,admin@bastion.dr",
            ]),
            false,
        )
        .unwrap();
        let c = &r.config;
        assert_eq!(c.routes.len(), 2);
        let p = &c.routes[0].hops;
        assert_eq!(p[0].label(), "ops@gw:22");
        // -o User applies to jumps; -l and -p only to the destination.
        assert_eq!(p[1].label(), "svc@relay:2200");
        assert_eq!(p[2].label(), "admin@bastion:2222");
        assert_eq!(c.routes[1].name, "dr");
        assert_eq!(c.routes[1].hops[0].label(), "svc@dr-gw:22");
        assert_eq!(c.routes[1].hops[1].label(), "admin@bastion.dr:2222");
        assert_eq!(c.forwards[0].bind_label(), "127.0.0.1:13389");
        assert_eq!(c.give_up_after_rounds, Some(1));
    }

    #[test]
    fn ssh_config_aliases_and_proxyjump_chains() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host prod-rdp\n  HostName bastion.prod.example.com\n  User admin\n  Port 2222\n  ProxyJump gw\n  \
             LocalForward 13389 winserver:3389\n  IdentityFile /keys/prod\n\
             Host gw\n  HostName gw.example.com\n  User ops\n  ProxyJump edge\n\
             Host edge\n  HostName 203.0.113.7\n  Port 2200\n",
        )
        .unwrap();
        let a = crate::opts::Opts::try_parse_from([
            "tunnelkit",
            "-F",
            cfg.to_str().unwrap(),
            "-N",
            "prod-rdp",
        ])
        .unwrap()
        .ssh;
        let r = resolve(&a, false).unwrap();
        let hops: Vec<String> = r.config.routes[0].hops.iter().map(|h| h.label()).collect();
        let me = local_user();
        assert_eq!(
            hops,
            [
                format!("{me}@203.0.113.7:2200"),
                "ops@gw.example.com:22".to_string(),
                "admin@bastion.prod.example.com:2222".to_string()
            ]
        );
        assert_eq!(r.config.forwards[0].target.host, "winserver");
        let dest = r.config.routes[0].hops.last().unwrap();
        assert_eq!(
            dest.options.auth.identity_files,
            vec![PathBuf::from("/keys/prod")]
        );
        // A loop is an error, not a hang.
        std::fs::write(&cfg, "Host a\n ProxyJump b\nHost b\n ProxyJump a\n").unwrap();
        let a = crate::opts::Opts::try_parse_from([
            "tunnelkit",
            "-F",
            cfg.to_str().unwrap(),
            "-L",
            "1:h:2",
            "a",
        ])
        .unwrap()
        .ssh;
        assert!(resolve(&a, false).unwrap_err().0.contains("nest more than"));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (a, needle) in [
            (vec!["-L", "nope", "h"], "-L: invalid forward `nope`"),
            (vec!["-L", "1:h:2", "-J", "a,,b", "h"], "invalid jump list"),
            (
                vec!["-L", "1:h:2", "-o", "Bogus=1", "h"],
                "unknown option `Bogus`",
            ),
            (vec!["-L", "1:h:2", "-p", "0", "h"], "-p 0"),
            (vec!["-L", "1:h:2"], "no destination"),
            (vec!["h"], "no forwards"),
            (
                vec!["-L", "1:h:2", "--failback", "soon", "h"],
                "--failback soon",
            ),
        ] {
            let e = resolve(&args(&a), false).unwrap_err();
            assert!(e.0.contains(needle), "{a:?}: {e}");
        }
        let a = crate::opts::Opts::try_parse_from([
            "tunnelkit",
            "-F",
            "/no/such/file",
            "-L",
            "1:h:2",
            "h",
        ])
        .unwrap()
        .ssh;
        assert!(resolve(&a, false).unwrap_err().0.contains("/no/such/file"));
    }
}
