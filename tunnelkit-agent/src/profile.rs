//! Profiles: one TOML file per tunnel, named by its file stem. [`parse`] turns the raw TOML
//! ([`RawProfile`], `deny_unknown_fields`) into a validated [`Profile`] holding a
//! [`TunnelConfig`]; every mistake is a [`ProfileError`] with the file, line and column and what
//! was expected. Secrets never belong in a profile: passwords and passphrases live in the
//! keyring (`tunnelkit secret set ...`).
//!
//! Hops are resolved by the core's resolver ([`tunnelkit_core::resolve`]) exactly as the command
//! line resolves them: a hop that names a `Host` alias of `~/.ssh/config` gets its HostName,
//! User, Port, IdentityFile, ProxyJump, ProxyCommand and known_hosts options; a profile without
//! `[[forward]]` or `[[dynamic]]` takes the `LocalForward` and `DynamicForward` lines of its
//! primary destination. `[[dynamic]]` is a SOCKS proxy (`ssh -D`). `[ssh]` options
//! apply to every hop, like `-o`; the keys that name one host or that a profile cannot apply
//! are refused with their line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tunnelkit_core::resolve::{self as core, Environment, Overrides, Resolver};
use tunnelkit_core::spec;
use tunnelkit_core::ssh_config::HostConfig;
use tunnelkit_core::{Failback, Forward, ForwardKind, Route, SshOptions, Target, TunnelConfig};

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
    ("GatewayPorts", "set the bind address in [[forward]]: local = \"0.0.0.0:PORT\""),
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
    /// OpenSSH options applied to every hop, as with `-o`.
    #[serde(default)]
    pub ssh: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Local forwards.
    #[serde(default)]
    pub forward: Vec<RawForward>,
    /// SOCKS proxies (dynamic forwards).
    #[serde(default)]
    pub dynamic: Vec<RawDynamic>,
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

/// One `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Shown in status and events.
    pub name: Spanned<String>,
    /// `[user@]host[:port]`, jump hosts first, the destination last.
    pub hops: Spanned<Vec<Spanned<String>>>,
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
        let (route, dest) = resolver
            .route_of_hosts(r.name.get_ref(), &hosts)
            .map_err(|e| cx.err(r.hops.span(), format!("route {}: {e}", r.name.get_ref())))?;
        primary.get_or_insert(dest);
        routes.push(route);
    }

    let none_given = raw.forward.is_empty() && raw.dynamic.is_empty();
    let mut forwards = match (&primary, none_given) {
        (Some(dest), true) => core::forwards(std::iter::empty::<&str>(), dest).map_err(|e| {
            cx.err(
                0..0,
                format!("LocalForward or DynamicForward of the primary destination: {e}"),
            )
        })?,
        _ => Vec::new(),
    };
    if none_given && forwards.is_empty() {
        return Err(cx.err(
            0..0,
            "no [[forward]] or [[dynamic]], and the primary destination has no LocalForward or \
             DynamicForward in ssh_config: a profile needs at least one forward",
        ));
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
    config.validate().map_err(|e| cx.err(0..0, e.to_string()))?;
    Ok(Profile {
        name,
        file: file.to_path_buf(),
        description: raw.description.unwrap_or_default(),
        autostart: raw.autostart,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnelkit_core::ssh_config::Sources;

    /// No ssh_config at all: the tests do not depend on the machine's files.
    fn env() -> Environment {
        Environment {
            local_user: "me".into(),
            home: PathBuf::from("/nonexistent"),
            sources: Sources::default(),
            shell: PathBuf::from("/bin/sh"),
            interactive: false,
            agent_socket: None,
        }
    }

    const GOOD: &str = r#"
description = "RDP to the finance app server; DR via the Frankfurt site"
autostart = true
failback = 60

[ssh]
IdentityFile = "~/.ssh/id_ed25519"
ServerAliveInterval = 5

[[forward]]
local = "127.0.0.1:13389"
remote = "app.internal:3389"
remote_by_route = { dr-frankfurt = "app.fra.internal:3389" }

[[forward]]
local = 5901
remote = "vnc.internal:5901"

[[route]]
name = "primary"
hops = ["ops@gw.example.com", "admin@bastion.prod.example.com:2222"]

[[route]]
name = "dr-frankfurt"
hops = ["admin@bastion.fra.example.com"]
"#;

    #[test]
    fn parses_the_documented_shape() {
        let p = parse_in(Path::new("/p/finance-rdp.toml"), GOOD, &env()).unwrap();
        assert_eq!(p.name, "finance-rdp");
        assert!(p.autostart);
        let c = &p.config;
        assert_eq!(
            c.routes[0].hops[1].label(),
            "admin@bastion.prod.example.com:2222"
        );
        assert_eq!(c.routes[1].hops[0].user, "admin");
        assert_eq!(c.forwards[1].bind_label(), "127.0.0.1:5901");
        assert_eq!(
            c.forwards[0].target_for("dr-frankfurt").unwrap().host,
            "app.fra.internal"
        );
        assert_eq!(
            c.forwards[0].target_for("primary").unwrap().host,
            "app.internal"
        );
        assert_eq!(c.failback, Failback::After(Duration::from_secs(60)));
        assert_eq!(
            c.routes[0].hops[0].options.server_alive_interval,
            Duration::from_secs(5)
        );
    }

    fn err(text: &str) -> ProfileError {
        parse_in(Path::new("/p/x.toml"), text, &env()).unwrap_err()
    }

    #[test]
    fn errors_name_file_line_column() {
        let e = err("autostart = true\nbogus = 1\n");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        assert!(e.to_string().starts_with("/p/x.toml:2:1: "), "{e}");
        assert!(e.message.contains("bogus"), "{e}");

        let e = err("autostart = \"yes\"\n");
        assert_eq!(e.line, 1, "{e}");

        let bad_hop = GOOD.replace("admin@bastion.fra.example.com", "admin@bastion:99999");
        let e = err(&bad_hop);
        let line = bad_hop.lines().position(|l| l.contains("99999")).unwrap() + 1;
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains("invalid hop"), "{e}");

        let bad_fwd = GOOD.replace("app.internal:3389\"", "app.internal\"");
        let e = err(&bad_fwd);
        assert!(e.message.contains("expected host:port"), "{e}");

        let e = err(&GOOD.replace("ServerAliveInterval = 5", "Password = \"x\""));
        assert!(e.message.contains("unknown option `Password`"), "{e}");

        let e = err(&GOOD.replace(
            "remote_by_route = { dr-frankfurt",
            "remote_by_route = { nowhere",
        ));
        assert!(e.message.contains("no route named nowhere"), "{e}");

        let e = err(&GOOD.replace("failback = 60", "failback = \"soon\""));
        assert!(e.message.contains("\"never\""), "{e}");
        assert_eq!(e.line, 4);
    }

    #[test]
    fn dynamic_tables_are_socks_proxies() {
        let text = format!(
            "{GOOD}\n[[dynamic]]\nlocal = 1080\n\n[[dynamic]]\nlocal = \"[::1]:1081\"\nmax_connections = 8\n"
        );
        let c = parse_in(Path::new("/p/x.toml"), &text, &env())
            .unwrap()
            .config;
        assert_eq!(c.forwards.len(), 4);
        assert_eq!(c.forwards[2].kind, ForwardKind::Dynamic);
        assert_eq!(c.forwards[2].bind_label(), "127.0.0.1:1080");
        assert_eq!(c.forwards[3].bind_label(), "[::1]:1081");
        assert_eq!(c.forwards[3].max_connections, 8);
        // Only [[dynamic]]: enough, without [[forward]].
        let only = "[[dynamic]]\nlocal = 1080\n[[route]]\nname = \"p\"\nhops = [\"b\"]\n";
        let c = parse_in(Path::new("/p/x.toml"), only, &env())
            .unwrap()
            .config;
        assert_eq!(c.forwards.len(), 1);
        for (bad, line, col, needle) in [
            (
                "local = 1080\nremote = \"a:1\"",
                3,
                1,
                "unknown field `remote`",
            ),
            ("local = true", 2, 9, "expected a port"),
            ("local = \"h:x\"", 2, 9, "invalid local address"),
            ("local = 1080\nmax_connections = 0", 3, 19, "at least 1"),
            ("max_connections = 3", 1, 1, "missing field `local`"),
        ] {
            let text = format!("[[dynamic]]\n{bad}\n[[route]]\nname = \"p\"\nhops = [\"b\"]\n");
            let e = err(&text);
            assert!(e.message.contains(needle), "{bad}: {e}");
            assert_eq!((e.line, e.column), (line, col), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_a_profile_cannot_apply_are_refused_where_they_are() {
        for key in [
            "HostName = \"x\"",
            "HostKeyAlias = \"x\"",
            "LocalForward = \"1 h:2\"",
            "DynamicForward = 1080",
            "ExitOnForwardFailure = true",
            "ProxyCommand = \"nc %h %p\"",
            "User = \"root\"",
        ] {
            let text = GOOD.replace("ServerAliveInterval = 5", key);
            let e = err(&text);
            let line = text.lines().position(|l| l == key).unwrap() + 1;
            assert_eq!((e.line, e.column), (line, 1), "{key}: {e}");
            let name = key.split(' ').next().unwrap();
            assert!(e.message.starts_with(&format!("[ssh] {name} ")), "{e}");
        }
        let e = err(&GOOD.replace("ServerAliveInterval = 5", "KexAlgorithms = \"x\""));
        assert!(e.message.contains("is not supported by tunnelkit"), "{e}");
    }

    #[test]
    fn hops_naming_ssh_config_hosts_resolve_as_the_command_line_does() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host prod-bastion\n  HostName bastion.prod.example\n  User admin\n  Port 2222\n  \
             ProxyJump ops-gw\n  IdentityFile /keys/prod\n  LocalForward 13389 winserver:3389\n\
             Host ops-gw\n  HostName gw.example\n  User ops\n\
             Host dr-bastion\n  ProxyCommand socat - TCP:%h:%p\n  UserKnownHostsFile /kh/dr\n",
        )
        .unwrap();
        let mut e = env();
        e.sources = Sources::file(&cfg);
        let text = "[[route]]\nname = \"primary\"\nhops = [\"prod-bastion\"]\n\
                    [[route]]\nname = \"dr\"\nhops = [\"dr-bastion\"]\n";
        let p = parse_in(Path::new("/p/x.toml"), text, &e).unwrap();
        let c = &p.config;
        let labels: Vec<String> = c.routes[0].hops.iter().map(|h| h.label()).collect();
        assert_eq!(
            labels,
            ["ops@gw.example:22", "admin@bastion.prod.example:2222"]
        );
        assert_eq!(
            c.routes[0].hops[1].options.auth.identity_files,
            vec![PathBuf::from("/keys/prod")]
        );
        // No [[forward]]: the primary destination's LocalForward.
        assert_eq!(c.forwards.len(), 1);
        assert_eq!(
            c.forwards[0].target_for("primary").unwrap().host,
            "winserver"
        );
        let dr = &c.routes[1].hops[0];
        assert_eq!(
            dr.proxy_command.as_ref().unwrap().command,
            "exec socat - TCP:dr-bastion:22"
        );
        assert_eq!(
            dr.options.host_keys.user_files,
            vec![PathBuf::from("/kh/dr")]
        );
        // An ssh_config mistake names the profile's hops and the ssh_config line.
        std::fs::write(&cfg, "Host prod-bastion\n  Frobnicate yes\n").unwrap();
        let err = parse_in(Path::new("/p/x.toml"), text, &e).unwrap_err();
        assert_eq!((err.line, err.column), (3, 8), "{err}");
        assert!(
            err.message.contains("config:2: Bad configuration option"),
            "{err}"
        );
        // DynamicForward in ssh_config counts as a forward too.
        std::fs::write(&cfg, "Host prod-bastion\n  DynamicForward 1080\n").unwrap();
        let p = parse_in(Path::new("/p/x.toml"), text, &e).unwrap();
        assert_eq!(p.config.forwards[0].kind, ForwardKind::Dynamic);
        assert_eq!(p.config.forwards[0].bind_label(), "127.0.0.1:1080");
        // Without forwards anywhere: an error.
        std::fs::write(&cfg, "").unwrap();
        let err = parse_in(Path::new("/p/x.toml"), text, &e).unwrap_err();
        assert!(err.message.contains("no [[forward]]"), "{err}");
    }
}
