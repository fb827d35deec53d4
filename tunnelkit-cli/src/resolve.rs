//! Turns the ssh-style flags into one validated [`TunnelConfig`] through the core's resolver
//! ([`tunnelkit_core::resolve`]): routes (the primary from `-J`/`ProxyJump`/`ProxyCommand` and
//! the destination, DR routes from `--dr`), forwards from `-L`/`LocalForward`, SOCKS proxies
//! from `-D`/`DynamicForward` and remote forwards from `-R`/`RemoteForward`, options
//! from `-o`/`-i` and each host's own ssh_config entries. Every mistake is a [`UsageError`]
//! that says what was wrong and where.

use std::time::Duration;

use tunnelkit_core::resolve::{self as core, Environment, Overrides, Request, ResolveError};
use tunnelkit_core::spec;
use tunnelkit_core::{CertificateCommand, Failback, TunnelConfig};

use crate::opts::SshArgs;

/// A mistake on the command line or in ssh_config (exit 255, as ssh). What the CLI does
/// differently for some mistakes (`-f` without a forward) keys on the variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No destination was given.
    #[error("no destination given: tunnelkit [options] [user@]host[:port]")]
    NoDestination,
    /// Neither the flags nor ssh_config give a forward.
    #[error(
        "no forwards: give at least one -L or -R [bind_address:]port:host:hostport or \
         -D [bind_address:]port (or LocalForward/RemoteForward/DynamicForward in ssh_config)"
    )]
    NoForwards,
    /// A flag's value holds a line break or NUL.
    #[error(transparent)]
    Value(#[from] crate::opts::ValueError),
    /// A hop, forward or port string could not be parsed.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// ssh_config or the options could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The resolved tunnel is inconsistent.
    #[error(transparent)]
    Config(tunnelkit_core::Error),
    /// Another flag's value is wrong, said in words (nothing decides on it but the exit status).
    #[error("{0}")]
    Invalid(String),
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
    tunnelkit_core::env::local_user()
}

/// The flags as a core [`Request`], and the environment they are resolved in.
fn request(args: &SshArgs, interactive: bool) -> Result<(Environment, Request), UsageError> {
    let env = Environment::from_process(args.config_file.as_deref(), interactive);
    let port = match &args.port {
        Some(p) => Some(
            spec::parse_port(p, false)
                .map_err(|e| UsageError::Invalid(format!("-p {p}: {}", e.reason)))?,
        ),
        None => None,
    };
    let req = Request {
        destination: args.destination.clone().unwrap_or_default(),
        jump: args.jump.clone(),
        login: args.login.clone(),
        port,
        overrides: Overrides {
            options: args.all_options(),
            identity_files: args.identity.clone(),
        },
        dr: args.dr.clone(),
        local_forwards: args.local.clone(),
        dynamic_forwards: args.dynamic.clone(),
        remote_forwards: args.remote.clone(),
    };
    Ok((env, req))
}

/// `tunnelkit -G`: the destination's configuration in `ssh -G`'s format.
pub fn print_config(args: &SshArgs) -> Result<String, UsageError> {
    if args.destination.is_none() {
        return Err(UsageError::Invalid("-G needs a destination".into()));
    }
    let (env, req) = request(args, false)?;
    Ok(core::print_config(&env, &req)?)
}

/// Resolves the flags. `interactive` says whether a person can answer prompts (a TTY).
pub fn resolve(args: &SshArgs, interactive: bool) -> Result<Resolved, UsageError> {
    if args.destination.is_none() {
        return Err(UsageError::NoDestination);
    }
    let (env, req) = request(args, interactive)?;
    let r = core::resolve(&env, &req)?;
    if r.forwards.is_empty() && r.remote_forwards.is_empty() {
        return Err(UsageError::NoForwards);
    }
    let o = &r.destination.options;
    let mut routes = r.routes;
    if let Some(line) = &args.certificate_command {
        let command = match shlex::split(line) {
            None => Err("a quote does not close".to_string()),
            Some(words) => CertificateCommand::new(words).map_err(|e| e.to_string()),
        }
        .map_err(|e| UsageError::Invalid(format!("--certificate-command {line:?}: {e}")))?;
        for route in &mut routes {
            route.set_certificate_command(Some(&command));
        }
    }
    let mut config = TunnelConfig::new(routes, r.forwards);
    config.remote_forwards = r.remote_forwards;
    if let Some(fb) = &args.failback {
        config.failback = parse_failback(fb)?;
    }
    if let Some(w) = args.route_wait {
        config.route_wait = Duration::from_secs(w);
    }
    if let Some(p) = &args.standby_probe {
        config.standby_probe = parse_standby_probe(p)?;
    }
    config.hot_standby = args.hot_standby;
    config.give_up_after_rounds = if args.retry {
        None
    } else {
        Some(o.connection_attempts.unwrap_or(1))
    };
    config.validate().map_err(UsageError::Config)?;
    Ok(Resolved {
        config,
        exit_on_forward_failure: o.exit_on_forward_failure.unwrap_or(false),
        ignored_options: o.ignored.clone(),
    })
}

/// `--failback SECONDS|never`.
pub fn parse_failback(s: &str) -> Result<Failback, UsageError> {
    tunnelkit_core::spec::parse_seconds_or_never("--failback", s)
        .map(Failback::from_hold)
        .map_err(|e| UsageError::Invalid(format!("--failback {s}: {}", e.reason)))
}

/// `--standby-probe SECONDS|never`.
pub fn parse_standby_probe(s: &str) -> Result<Option<Duration>, UsageError> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
        _ => Err(UsageError::Invalid(format!(
            "--standby-probe {s}: expected a number of seconds (at least 1) or `never`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::PathBuf;

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
        assert_eq!(
            c.standby_probe,
            Some(tunnelkit_core::defaults::STANDBY_PROBE)
        );
        assert!(!c.hot_standby);
        let r = resolve(
            &args(&[
                "-L",
                "1:h:2",
                "b",
                "--dr",
                "d",
                "--standby-probe",
                "never",
                "--hot-standby",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(r.config.standby_probe, None);
        assert!(r.config.hot_standby);
        assert_eq!(
            parse_standby_probe("45").unwrap(),
            Some(Duration::from_secs(45))
        );
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
        assert_eq!(
            r.config.forwards[0].target_for("primary").unwrap().host,
            "winserver"
        );
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
        assert!(resolve(&a, false)
            .unwrap_err()
            .to_string()
            .contains("nest more than"));
    }

    #[test]
    fn a_certificate_command_goes_to_every_hop_of_every_route_as_words() {
        let line = "step ssh certificate 'alice smith' /home/alice/.ssh/id_step --force";
        let r = resolve(
            &args(&[
                "-L",
                "1:h:2",
                "-J",
                "gw",
                "bastion",
                "--dr",
                "dr",
                "--certificate-command",
                line,
            ]),
            false,
        )
        .unwrap();
        let hops: Vec<_> = r.config.routes.iter().flat_map(|r| &r.hops).collect();
        assert_eq!(hops.len(), 3);
        for hop in hops {
            let c = hop.options.auth.certificate_command.as_ref().unwrap();
            assert_eq!(
                c.argv(),
                [
                    "step",
                    "ssh",
                    "certificate",
                    "alice smith",
                    "/home/alice/.ssh/id_step",
                    "--force"
                ]
            );
        }
        let r = resolve(&args(&["-L", "1:h:2", "b"]), false).unwrap();
        assert!(r.config.routes[0].hops[0]
            .options
            .auth
            .certificate_command
            .is_none());
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
            (
                vec!["-D", "h:1:2", "h"],
                "-D: invalid dynamic forward `h:1:2`",
            ),
            (vec!["-L", "1:h:2"], "no destination"),
            (vec!["h"], "no forwards"),
            (
                vec!["-L", "1:h:2", "--failback", "soon", "h"],
                "--failback soon",
            ),
            (
                vec!["-L", "1:h:2", "--standby-probe", "0", "h"],
                "--standby-probe 0: expected",
            ),
            // Not an ssh keyword: only tunnelkit's own flag sets it.
            (
                vec!["-L", "1:h:2", "-o", "CertificateCommand=step", "h"],
                "unknown option `CertificateCommand`",
            ),
            (
                vec!["-L", "1:h:2", "--certificate-command", "step 'x", "h"],
                "--certificate-command \"step 'x\": a quote does not close",
            ),
            (
                vec!["-L", "1:h:2", "--certificate-command", " ", "h"],
                "--certificate-command \" \": expected a program",
            ),
        ] {
            let e = resolve(&args(&a), false).unwrap_err();
            assert!(e.to_string().contains(needle), "{a:?}: {e}");
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
        assert!(resolve(&a, false)
            .unwrap_err()
            .to_string()
            .contains("/no/such/file"));
    }
}
