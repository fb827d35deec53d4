//! What an operator watches the agent with, against real OpenSSH sshds: the Prometheus
//! endpoint (`--metrics`, scraped with curl after traffic and parsed as text exposition
//! format), desktop notifications on a private session bus (watched with dbus-monitor) when a
//! real failover happens, and journal-style log lines under systemd (`JOURNAL_STREAM`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tunnelkit_tests::{
    blocking_echo as echo, refused_port, wait_until, EchoServer, KeyPair, SessionBus, Sshd,
    SshdOptions, TestDir, TunnelkitAgent, AGENT_DEADLINE,
};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

/// One sample line of the exposition format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{k="v",...}` (escapes `\\`, `\"`, `\n`); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !is_metric_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut chars = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("unquoted value")?
            .chars();
        let mut value = String::new();
        loop {
            match chars.next().ok_or("unterminated value")? {
                '"' => break,
                '\\' => match chars.next().ok_or("dangling escape")? {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                '\n' => return Err("newline in a value".into()),
                c => value.push(c),
            }
        }
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = chars.as_str();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses a whole page: every line must be a HELP, TYPE or other comment, or a sample of a
/// declared family (TYPE once, before its samples), with a float value.
fn parse_exposition(page: &str) -> Result<Vec<Sample>, String> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for (n, line) in page.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(c) = line.strip_prefix('#') {
            let words: Vec<&str> = c.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["HELP", name, _] if is_metric_name(name) => {}
                ["TYPE", name, kind] if is_metric_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if typed.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("TYPE twice".into()));
                    }
                }
                ["HELP" | "TYPE", ..] => return Err(at("malformed HELP/TYPE".into())),
                _ => {}
            }
            continue;
        }
        let end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..end];
        if !is_metric_name(name) {
            return Err(at("bad metric name".into()));
        }
        let (labels, rest) = if line[end..].starts_with('{') {
            parse_labels(&line[end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[end..])
        };
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| at("no value".into()))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|e| at(format!("value: {e}")))?,
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| at(format!("timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text".into()));
        }
        if !typed.contains_key(name) {
            return Err(at("sample before its TYPE".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

fn curl(url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl not found: install the curl package");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

struct Site {
    dir: TestDir,
    key: KeyPair,
    sshds: Vec<Sshd>,
    echo: tunnelkit_tests::Server,
    profiles: PathBuf,
}

/// `n` sshds accepting one key, an echo target, a profiles directory.
async fn site(n: usize) -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshds: Vec<Sshd> = (0..n)
        .map(|_| {
            Sshd::start(SshdOptions {
                authorized_keys: vec![key.public_line.clone()],
                ..Default::default()
            })
        })
        .collect();
    let echo = EchoServer::start().await;
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    Site {
        dir,
        key,
        sshds,
        echo,
        profiles,
    }
}

/// An autostart profile with one forward (local port 0) and a route per sshd, named
/// `primary`, `dr`, ... in order.
fn write_profile(s: &Site, name: &str) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let known_hosts = s.dir.path().join("known_hosts");
    let lines: Vec<String> = s.sshds.iter().map(|d| d.known_hosts_line()).collect();
    std::fs::write(&known_hosts, lines.join("\n") + "\n").unwrap();
    let mut text = format!(
        "autostart = true\nfailback = \"never\"\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\nServerAliveCountMax = 2\n\
         ConnectTimeout = 5\n\n[[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n",
        s.key.private.display(),
        known_hosts.display(),
        s.echo.addr().port(),
    );
    for (i, d) in s.sshds.iter().enumerate() {
        let route = ["primary", "dr"][i];
        text.push_str(&format!(
            "\n[[route]]\nname = \"{route}\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
            d.port()
        ));
    }
    std::fs::write(s.profiles.join(format!("{name}.toml")), text).unwrap();
}

fn local_of(p: &Value) -> SocketAddr {
    p["forwards"][0]["local"].as_str().unwrap().parse().unwrap()
}

fn agent(s: &Site, env: &[(&str, &str)], args: &[&str]) -> TunnelkitAgent {
    let mut cmd = Command::new(bin());
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    TunnelkitAgent::start_with(cmd, s.dir.path(), &s.profiles, "mock", &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_after_traffic_read_as_prometheus_text_with_the_right_counts() {
    let s = site(1).await;
    write_profile(&s, "db");
    let agent = agent(&s, &[], &["--metrics", "127.0.0.1:0"]);
    let local = local_of(&agent.wait_state("db", "up"));
    // Three echoed connections of known sizes, and one left open during the scrape.
    let sizes = [5usize, 1000, 64 * 1024];
    for n in sizes {
        assert_eq!(echo(local, &vec![b'x'; n]).len(), n);
    }
    let mut open = TcpStream::connect(local).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    open.write_all(b"held").unwrap();
    let mut back = [0u8; 4];
    open.read_exact(&mut back).unwrap();
    let sent = (sizes.iter().sum::<usize>() + 4) as f64;
    // The counters of a closed connection land once both directions have finished.
    wait_until(AGENT_DEADLINE, "the byte counters", || {
        agent.profile("db")["forwards"][0]["bytes_in"].as_f64() == Some(sent)
    });

    let addr = agent.metrics_addr();
    let (code, page) = curl(&format!("http://{addr}/metrics"));
    assert_eq!(code, "200", "{page}");
    let samples = parse_exposition(&page).unwrap_or_else(|e| panic!("{e}\n{page}"));
    let remote = format!("127.0.0.1:{}", s.echo.addr().port());
    let fw = [
        ("profile", "db"),
        ("forward", "0"),
        ("kind", "local"),
        ("local", &local.to_string()),
        ("remote", remote.as_str()),
    ];
    assert_eq!(
        value(&samples, "tunnelkit_forward_connections_total", &fw),
        4.0
    );
    assert_eq!(
        value(&samples, "tunnelkit_forward_connections_open", &fw),
        1.0
    );
    assert_eq!(
        value(&samples, "tunnelkit_forward_bytes_out_total", &fw),
        sent
    );
    assert_eq!(
        value(&samples, "tunnelkit_forward_bytes_in_total", &fw),
        sent
    );
    let db = [("profile", "db")];
    let up = [("profile", "db"), ("state", "up")];
    assert_eq!(value(&samples, "tunnelkit_profile_state", &up), 1.0);
    let down = [("profile", "db"), ("state", "down")];
    assert_eq!(value(&samples, "tunnelkit_profile_state", &down), 0.0);
    let route = [("profile", "db"), ("route", "primary")];
    assert_eq!(value(&samples, "tunnelkit_profile_route_info", &route), 1.0);
    assert_eq!(
        value(&samples, "tunnelkit_profile_failovers_total", &db),
        0.0
    );
    assert_eq!(
        value(&samples, "tunnelkit_profile_reconnects_total", &db),
        0.0
    );
    drop(open);

    // Only GET /metrics.
    assert_eq!(curl(&format!("http://{addr}/")).0, "404");
    assert_eq!(curl(&format!("http://{addr}/metrics/x")).0, "404");
    let post = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&post.stdout), "405");
}

#[test]
fn metrics_on_a_non_loopback_address_are_refused_unless_forced() {
    let dir = TestDir::new();
    let out = Command::new(bin())
        .args(["agent", "--metrics", "0.0.0.0:0", "--profiles"])
        .arg(dir.path().join("profiles"))
        .arg("--socket")
        .arg(dir.path().join("run/agent.sock"))
        .env("TUNNELKIT_KEYRING", "mock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve metrics on 0.0.0.0:0: it is not a loopback address")
            && err.contains("--metrics-allow-remote"),
        "{err}"
    );
    assert!(!dir.path().join("run/agent.sock").exists(), "no agent ran");
    let help = Command::new(bin())
        .args(["agent", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--metrics <ADDR>", "--metrics-allow-remote", "--no-notify"] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_failover_is_notified_on_the_session_bus_and_counted_in_the_metrics() {
    let s = site(2).await;
    write_profile(&s, "pair");
    let bus = SessionBus::start();
    let monitor = bus.monitor("interface='org.freedesktop.Notifications'");
    let agent = agent(
        &s,
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address())],
        &["--metrics", "127.0.0.1:0"],
    );
    let local = local_of(&agent.wait_state("pair", "up"));
    assert_eq!(echo(local, b"before"), b"before");
    s.sshds[0].kill();
    let p = agent.wait_state("pair", "degraded");
    assert_eq!(p["route"], "dr");
    assert_eq!(echo(local, b"after"), b"after");
    let mut calls = Vec::new();
    wait_until(AGENT_DEADLINE, "a Notify call on the bus", || {
        calls = monitor.calls("Notify");
        !calls.is_empty()
    });
    let call = &calls[0];
    assert!(
        call.contains("string \"tunnelkit\"")
            && call.contains("string \"tunnelkit: pair failed over to dr\"")
            && call.contains("Route primary failed; new connections use dr"),
        "{call}\nagent log:\n{}",
        agent.log()
    );
    assert!(
        call.contains("\"urgency\"") && call.contains("byte 1"),
        "{call}"
    );

    let (code, page) = curl(&format!("http://{}/metrics", agent.metrics_addr()));
    assert_eq!(code, "200");
    let samples = parse_exposition(&page).unwrap_or_else(|e| panic!("{e}\n{page}"));
    let pair = [("profile", "pair")];
    assert_eq!(
        value(&samples, "tunnelkit_profile_failovers_total", &pair),
        1.0
    );
    let rto = value(
        &samples,
        "tunnelkit_profile_last_failover_rto_seconds",
        &pair,
    );
    assert!(rto > 0.0 && rto < 20.0, "RTO {rto}s");
    let route = [("profile", "pair"), ("route", "dr")];
    assert_eq!(value(&samples, "tunnelkit_profile_route_info", &route), 1.0);
    let degraded = [("profile", "pair"), ("state", "degraded")];
    assert_eq!(value(&samples, "tunnelkit_profile_state", &degraded), 1.0);
    eprintln!("failover RTO as exported: {rto} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_notify_sends_nothing_to_the_bus() {
    let s = site(2).await;
    write_profile(&s, "quiet");
    let bus = SessionBus::start();
    let monitor = bus.monitor("interface='org.freedesktop.Notifications'");
    let agent = agent(
        &s,
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address())],
        &["--no-notify"],
    );
    agent.wait_state("quiet", "up");
    s.sshds[0].kill();
    assert_eq!(agent.wait_state("quiet", "degraded")["route"], "dr");
    wait_until(AGENT_DEADLINE, "the failover in the log", || {
        agent.log().contains("failover from primary to dr")
    });
    // One more request round: the agent has long handled the failover event by now.
    agent.status();
    assert!(monitor.calls("Notify").is_empty(), "{}", monitor.text());
    let log = agent.log();
    assert!(
        log.contains("desktop notifications off (--no-notify)"),
        "{log}"
    );
    assert!(!log.contains("desktop notifications on"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn under_systemd_every_line_has_a_journal_priority_and_no_timestamp() {
    let s = site(1).await;
    write_profile(&s, "ok");
    let refused = refused_port();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        s.profiles.join("nohost.toml"),
        format!(
            "autostart = true\n[[forward]]\nlocal = 0\nremote = \"127.0.0.1:1\"\n\
             [[route]]\nname = \"primary\"\nhops = [\"{user}@{}\"]\n",
            refused.addr()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(bin());
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let agent = TunnelkitAgent::start_under_journal(cmd, s.dir.path(), &s.profiles, "mock", &[]);
    agent.wait_state("ok", "up");
    wait_until(AGENT_DEADLINE, "nohost's failure in the log", || {
        agent.log().contains("route primary: failed")
    });
    let log_before_stop = agent.log();
    let status = agent.stop();
    assert!(status.success(), "{status:?}\n{log_before_stop}");
    let log = std::fs::read_to_string(s.dir.path().join("agent.log")).unwrap();
    assert!(!log.is_empty());
    for line in log.lines() {
        let p = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(p, Some("3" | "4" | "5" | "6" | "7")),
            "no priority: {line:?}\n{log}"
        );
        assert!(
            !line.contains(" INFO ") && !line.contains(" WARN ") && !line.contains("Z "),
            "a level word or timestamp: {line:?}"
        );
        assert!(!line.contains('\u{1b}'), "colour codes: {line:?}");
    }
    assert!(log.contains("<6>agent ready"), "{log}");
    assert!(
        log.lines().any(|l| l.starts_with("<4>")
            && l.contains("nohost")
            && l.contains("route primary: failed")),
        "{log}"
    );
    assert!(log.contains("<6>agent stopped"), "{log}");

    // The same agent with JOURNAL_STREAM naming another file logs as usual.
    let mut cmd = Command::new(bin());
    cmd.env("JOURNAL_STREAM", "1:1")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let plain = TunnelkitAgent::start_with(cmd, s.dir.path(), &s.profiles, "mock", &[]);
    wait_until(AGENT_DEADLINE, "the ready line", || {
        plain.log().contains("agent ready")
    });
    assert!(plain.log().contains(" INFO "), "{}", plain.log());
    assert!(!plain.log().starts_with('<'), "{}", plain.log());
}

/// A `[[remote]]` the bastion refuses (`AllowTcpForwarding local`) is not `up`: the profile is
/// `partial` with the remote forward and the bastion's answer in `last_error`, the metrics carry
/// the remote forward's state, and the log says it once, not on every retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_remote_forward_is_partial_with_its_reason_in_status_and_metrics_and_logged_once()
{
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: vec!["AllowTcpForwarding local".into()],
        ..Default::default()
    });
    let echo_server = EchoServer::start().await;
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "autostart = true\n\n[ssh]\nIdentityFile = \"{}\"\nUserKnownHostsFile = \"{}\"\n\
         ServerAliveInterval = 1\n\n[[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
         [[remote]]\nbind = 0\ntarget = \"127.0.0.1:{}\"\n\n[[route]]\nname = \"primary\"\n\
         hops = [\"{user}@127.0.0.1:{}\"]\n",
        key.private.display(),
        known_hosts.display(),
        echo_server.addr().port(),
        echo_server.addr().port(),
        sshd.port()
    );
    std::fs::write(profiles.join("pub.toml"), text).unwrap();
    let mut cmd = Command::new(bin());
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
    let args = [OsStr::new("--metrics"), OsStr::new("127.0.0.1:0")];
    let agent = TunnelkitAgent::start_with(cmd, dir.path(), &profiles, "mock", &args);

    let p = agent.wait_state("pub", "partial");
    let why = p["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        why.contains("remote forward") && why.contains("the bastion refused"),
        "{p}"
    );
    assert_eq!(p["remote_forwards"][0]["state"], "refused", "{p}");
    // The local forward works meanwhile: partial, not down.
    assert_eq!(echo(local_of(&p), b"still here"), b"still here");

    let addr = agent.metrics_addr();
    let (code, page) = curl(&format!("http://{addr}/metrics"));
    assert_eq!(code, "200", "{page}");
    let samples = parse_exposition(&page).unwrap_or_else(|e| panic!("{e}\n{page}"));
    let target = format!("127.0.0.1:{}", echo_server.addr().port());
    let remote = [
        ("profile", "pub"),
        ("remote_forward", "0"),
        ("bind", "localhost:0"),
        ("target", target.as_str()),
    ];
    let state = |st: &str| {
        let mut l = remote.to_vec();
        l.push(("state", st));
        value(&samples, "tunnelkit_remote_forward_state", &l)
    };
    assert_eq!(state("refused"), 1.0, "{page}");
    assert_eq!(state("active"), 0.0, "{page}");
    assert_eq!(
        value(
            &samples,
            "tunnelkit_profile_state",
            &[("profile", "pub"), ("state", "partial")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "tunnelkit_profile_state",
            &[("profile", "pub"), ("state", "up")]
        ),
        0.0
    );

    // Refused again and again (250 ms, 500 ms, 1 s, 2 s: at least 4 requests within 5 s), in
    // sshd's log, but said once in ours.
    wait_until(
        Duration::from_secs(10),
        "four requests in sshd's log",
        || sshd.log().matches("rtype tcpip-forward").count() >= 4,
    );
    let said = agent.log().matches("remote forward 0 on").count();
    assert_eq!(said, 1, "{}", agent.log());
}
