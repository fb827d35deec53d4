//! Turns the ssh-style flags into one validated [`TunnelConfig`]: routes (primary from `-J` and
//! the destination, DR routes from `--dr`), forwards from `-L`, options from `-o`/`-i` applied
//! to every hop. Every mistake is a [`UsageError`] that says what was wrong.

use std::sync::Arc;
use std::time::Duration;

use tunnelkit_core::spec::{self, HopSpec};
use tunnelkit_core::{defaults, Failback, Forward, Hop, Route, SshOptions, TunnelConfig};

use crate::opts::SshArgs;

/// A mistake on the command line (exit 255, as ssh).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<tunnelkit_core::spec::SpecError> for UsageError {
    fn from(e: tunnelkit_core::spec::SpecError) -> Self {
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

/// Resolves the flags. `interactive` says whether a person can answer prompts (a TTY).
pub fn resolve(args: &SshArgs, interactive: bool) -> Result<Resolved, UsageError> {
    if let Some(f) = &args.config_file {
        if f.as_os_str() != "none" {
            return Err(UsageError(format!(
                "-F {}: reading ssh_config files is not supported yet; use -F none and -o options",
                f.display()
            )));
        }
    }
    let mut options = SshOptions::default();
    for o in &args.options {
        options
            .apply_kv(o)
            .map_err(|e| UsageError(format!("-o {o}: {e}")))?;
    }
    for i in &args.identity {
        options.identity_files.insert(0, i.clone());
    }
    let hop_options = Arc::new(options.hop_options(interactive));

    let dest_text = args.destination.as_deref().ok_or_else(|| {
        UsageError("no destination given: tunnelkit [options] [user@]host[:port]".into())
    })?;
    let dest = spec::parse_hop(dest_text)?;
    let dest_port = match &args.port {
        Some(p) => Some(
            spec::parse_port(p, false).map_err(|e| UsageError(format!("-p {p}: {}", e.reason)))?,
        ),
        None => None,
    };
    let default_user = options.user.clone().unwrap_or_else(local_user);
    let default_port = options.port.unwrap_or(defaults::SSH_PORT);
    let hop = |h: &HopSpec, user: Option<&str>, port: Option<u16>| {
        Hop::new(
            h.user
                .clone()
                .or(user.map(str::to_string))
                .unwrap_or_else(|| default_user.clone()),
            h.host.clone(),
            h.port.or(port).unwrap_or(default_port),
            hop_options.clone(),
        )
    };

    let jumps = match &args.jump {
        Some(j) => spec::parse_jump_list(j)?,
        None => Vec::new(),
    };
    let mut primary: Vec<Hop> = jumps.iter().map(|h| hop(h, None, None)).collect();
    primary.push(hop(&dest, args.login.as_deref(), dest_port));
    let mut routes = vec![Route {
        name: "primary".into(),
        hops: primary,
    }];
    for (n, dr) in args.dr.iter().enumerate() {
        let hops = spec::parse_jump_list(dr).map_err(|e| UsageError(format!("--dr: {e}")))?;
        if hops.is_empty() {
            return Err(UsageError(format!(
                "--dr {dr}: a DR route needs at least a destination"
            )));
        }
        let last = hops.len() - 1;
        let hops = hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == last {
                    hop(h, args.login.as_deref(), dest_port)
                } else {
                    hop(h, None, None)
                }
            })
            .collect();
        let name = if n == 0 {
            "dr".to_string()
        } else {
            format!("dr{}", n + 1)
        };
        routes.push(Route { name, hops });
    }

    let mut forwards = Vec::new();
    for l in args.local.iter().chain(&options.local_forwards) {
        let f = spec::parse_forward(l).map_err(|e| UsageError(format!("-L: {e}")))?;
        let mut fwd = Forward::from_spec(&f);
        if options.gateway_ports == Some(true) && f.bind_host.is_none() {
            fwd.bind_host = "0.0.0.0".into();
        }
        forwards.push(fwd);
    }
    if forwards.is_empty() {
        return Err(UsageError(
            "no forwards: give at least one -L [bind_address:]port:host:hostport".into(),
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
        Some(options.connection_attempts.unwrap_or(1))
    };
    config.validate().map_err(|e| UsageError(e.to_string()))?;
    Ok(Resolved {
        config,
        exit_on_forward_failure: options.exit_on_forward_failure.unwrap_or(false),
        ignored_options: options.ignored.clone(),
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
        let mut all = vec!["tunnelkit"];
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
            (vec!["-L", "1:h:2", "-F", "/x", "h"], "-F /x"),
        ] {
            let e = resolve(&args(&a), false).unwrap_err();
            assert!(e.0.contains(needle), "{a:?}: {e}");
        }
    }
}
