//! `tunnelkit -G`: the resolved configuration in `ssh -G`'s format (lowercase keyword, space,
//! value), for the keywords tunnelkit uses. Where a keyword is not set, OpenSSH's default is
//! printed, so the output compares line by line with `ssh -G`.

use std::fmt::Write;

use super::HostConfig;
use crate::config::StrictHostKeyChecking;
use crate::spec::{parse_dynamic, parse_forward};

/// OpenSSH 9's default cipher order, printed when `Ciphers` is not set.
const DEFAULT_CIPHERS: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,\
aes128-gcm@openssh.com,aes256-gcm@openssh.com";
/// The identity files ssh tries when none is configured, as ssh -G lists them.
const DEFAULT_IDENTITIES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

fn yn(v: Option<bool>, default: bool) -> &'static str {
    if v.unwrap_or(default) {
        "yes"
    } else {
        "no"
    }
}

/// Formats `c` as `ssh -G` would, for a user whose home is `home` (default known_hosts files).
pub fn print_g(c: &HostConfig, home: &std::path::Path) -> String {
    let o = &c.options;
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(s, "{k} {v}");
    };
    line("user", &c.user);
    line("hostname", &c.host_name);
    line("port", &c.port.to_string());
    line(
        "addressfamily",
        o.address_family.unwrap_or_default().as_str(),
    );
    line("batchmode", yn(o.batch_mode, false));
    line("compression", yn(o.compression, false));
    line("exitonforwardfailure", yn(o.exit_on_forward_failure, false));
    line("gatewayports", yn(o.gateway_ports, false));
    line("hashknownhosts", yn(o.hash_known_hosts, false));
    line("identitiesonly", yn(o.identities_only, false));
    line(
        "kbdinteractiveauthentication",
        yn(o.kbd_interactive_authentication, true),
    );
    line(
        "passwordauthentication",
        yn(o.password_authentication, true),
    );
    line(
        "stricthostkeychecking",
        match o.strict_host_key_checking {
            None | Some(StrictHostKeyChecking::Ask) => "ask",
            Some(StrictHostKeyChecking::Yes) => "true",
            Some(StrictHostKeyChecking::No) => "false",
            Some(StrictHostKeyChecking::AcceptNew) => "accept-new",
        },
    );
    line(
        "connectionattempts",
        &o.connection_attempts.unwrap_or(1).to_string(),
    );
    line(
        "serveralivecountmax",
        &o.server_alive_count_max.unwrap_or(3).to_string(),
    );
    // OpenSSH probes every 300 s under BatchMode when no interval is set.
    let alive_default = if o.batch_mode == Some(true) { 300 } else { 0 };
    line(
        "serveraliveinterval",
        &o.server_alive_interval
            .map(|d| d.as_secs())
            .unwrap_or(alive_default)
            .to_string(),
    );
    line("rekeylimit", &o.rekey_limit().to_string());
    line(
        "ciphers",
        &o.ciphers
            .as_ref()
            .map(|c| c.join(","))
            .unwrap_or_else(|| DEFAULT_CIPHERS.to_string()),
    );
    if let Some(a) = &o.host_key_alias {
        line("hostkeyalias", a);
    }
    match &o.identity_agent {
        Some(Some(a)) => line("identityagent", &a.display().to_string()),
        Some(None) => line("identityagent", "none"),
        None => {}
    }
    // As ssh -G: dynamic forwards, then local, then remote.
    for d in &o.dynamic_forwards {
        if let Ok(spec) = parse_dynamic(d) {
            line("dynamicforward", &dynamic_forward(d, spec.bind_port));
        }
    }
    for f in &o.local_forwards {
        if let Ok(spec) = parse_forward(f) {
            let bind = match written_bind(f, spec.bind_host.as_deref()) {
                Some(b) => format!("[{b}]:{}", spec.bind_port),
                None => spec.bind_port.to_string(),
            };
            line(
                "localforward",
                &format!("{bind} [{}]:{}", spec.remote_host, spec.remote_port),
            );
        }
    }
    for f in &o.remote_forwards {
        if let Ok(spec) = crate::spec::parse_remote_forward(f) {
            let bind = match written_bind(f, spec.bind_host.as_deref()) {
                Some(b) => format!("[{b}]:{}", spec.bind_port),
                None => spec.bind_port.to_string(),
            };
            line(
                "remoteforward",
                &format!("{bind} [{}]:{}", spec.target_host, spec.target_port),
            );
        }
    }
    let identities: Vec<String> = if c.identity_files_raw.is_empty() && o.identity_files.is_empty()
    {
        DEFAULT_IDENTITIES.iter().map(|s| s.to_string()).collect()
    } else if c.identity_files_raw.is_empty() {
        o.identity_files
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    } else {
        c.identity_files_raw.clone()
    };
    for f in identities {
        line("identityfile", &f);
    }
    for f in &c.certificate_files_raw {
        line("certificatefile", f);
    }
    let files = |v: &Option<Vec<std::path::PathBuf>>, default: Vec<std::path::PathBuf>| {
        v.clone()
            .unwrap_or(default)
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The defaults are the ones connections use: one list, in HostKeyPolicy::standard.
    let standard = crate::config::HostKeyPolicy::standard(home);
    line(
        "globalknownhostsfile",
        &files(&o.global_known_hosts, standard.global_files),
    );
    line(
        "userknownhostsfile",
        &files(&o.user_known_hosts, standard.user_files),
    );
    line(
        "connecttimeout",
        &o.connect_timeout
            .map(|d| d.as_secs().to_string())
            .unwrap_or_else(|| "none".into()),
    );
    if let Some(j) = o.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
        line("proxyjump", j);
    }
    // Only `no` is accepted (`yes` is refused), so this is always what ssh prints.
    line("proxyusefdpass", "no");
    if let Some(c) = o.proxy_command.as_deref().filter(|c| !c.is_empty()) {
        line("proxycommand", c);
    }
    s
}

/// A `DynamicForward` as `ssh -G` prints it: the port alone, or the bind address as written
/// (`*`, `localhost`, empty) in brackets before it.
fn dynamic_forward(spec: &str, port: u16) -> String {
    match spec.rsplit_once(':') {
        Some((bind, _)) => {
            let bind = bind
                .strip_prefix('[')
                .and_then(|b| b.strip_suffix(']'))
                .unwrap_or(bind);
            format!("[{bind}]:{port}")
        }
        None => port.to_string(),
    }
}
/// As ssh -G prints a forward's listen address: bracketed as written (`[*]`, `[]`,
/// `[localhost]`), whatever it binds.
fn written_bind<'a>(line: &str, parsed: Option<&'a str>) -> Option<&'a str> {
    if line.starts_with(':') {
        Some("")
    } else if line.starts_with("*:") {
        Some("*")
    } else if line.starts_with("localhost:") {
        Some("localhost")
    } else {
        parsed
    }
}
