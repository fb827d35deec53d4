//! The agent and bastions that ask for a one-time code: real OpenSSH sshds whose own PAM
//! service asks a TOTP code through pam_oath after the key (`AuthenticationMethods
//! publickey,keyboard-interactive`), answered on a pty through `tunnelkit up` as a person would.
//! `up` asks once; a restarted bastion with a client knocking on the forward is not hammered;
//! `up` again asks once; a hot standby behind a second TOTP bastion takes a failover with
//! nobody at the terminal; two profiles to one TOTP bastion need one code (one shared login).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use tunnelkit_tests::blocking_echo as echo;
use tunnelkit_tests::pty::{on_pty, Answer, Rule, Screen};
use tunnelkit_tests::{EchoServer, KeyPair, PamAuth, Sshd, SshdOptions, TestDir, TunnelkitAgent};

mod agent_site;
use agent_site::{bin, local_of, Agent, DEADLINE};

/// pam_oath's question.
const CODE_PROMPT: &str = "One-time password";

/// A bastion asking the key, then a TOTP code with `secret`.
fn totp_bastion(key: &KeyPair, secret: &str) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: vec!["AuthenticationMethods publickey,keyboard-interactive".into()],
        pam: Some(PamAuth {
            totp_secret: Some(secret.into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

struct Site {
    dir: TestDir,
    key: KeyPair,
    echo: tunnelkit_tests::Server,
}

async fn site() -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let echo = EchoServer::start().await;
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    Site { dir, key, echo }
}

/// Writes profile `name` through `routes` (name, bastion), the first the primary.
fn write_profile(s: &Site, name: &str, routes: &[(&str, &Sshd)], hot: bool) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let known_hosts = s.dir.path().join("known_hosts");
    let lines: Vec<String> = routes.iter().map(|(_, b)| b.known_hosts_line()).collect();
    std::fs::write(&known_hosts, lines.join("\n") + "\n").unwrap();
    let mut text = format!(
        "autostart = false\nhot_standby = {hot}\nstandby_probe = 300\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\nServerAliveCountMax = 3\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n",
        s.key.private.display(),
        known_hosts.display(),
        s.echo.addr().port(),
    );
    for (route, b) in routes {
        text.push_str(&format!(
            "\n[[route]]\nname = \"{route}\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
            b.port()
        ));
    }
    let profiles = s.dir.path().join("profiles");
    let tmp = profiles.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, profiles.join(format!("{name}.toml"))).unwrap();
}

fn start_agent(s: &Site) -> TunnelkitAgent {
    Agent::start(s.dir.path(), &s.dir.path().join("profiles"), "mock")
}

/// `tunnelkit up NAME` on a pty, answering by `rules`.
fn up_on_pty(agent: &TunnelkitAgent, name: &str, rules: &[Rule]) -> Screen {
    let args: Vec<OsString> = vec![
        "up".into(),
        name.into(),
        "--socket".into(),
        agent.socket().into(),
    ];
    on_pty(
        std::path::Path::new(bin()),
        &args,
        &[("TUNNELKIT_KEYRING", "mock".into())],
        rules,
        Duration::from_secs(60),
    )
}

fn code_rule(prompt: &str, secret: &str, steps: u32) -> Rule {
    Rule {
        prompt: prompt.into(),
        answer: Answer::Totp {
            secret: secret.into(),
            steps,
        },
        times: 3,
    }
}

const SECRET_A: &str = "3132333435363738393031323334353637383930";
const SECRET_B: &str = "4142434445464748494a4b4c4d4e4f5051525354";

#[tokio::test(flavor = "multi_thread")]
async fn up_asks_once_a_restarted_bastion_is_not_hammered_and_up_asks_once_again() {
    let s = site().await;
    let bastion = totp_bastion(&s.key, SECRET_A);
    write_profile(&s, "mfa", &[("primary", &bastion)], false);
    let agent = start_agent(&s);

    let screen = up_on_pty(&agent, "mfa", &[code_rule(CODE_PROMPT, SECRET_A, 0)]);
    assert_eq!(screen.code, Some(0), "up: {}", screen.text);
    assert_eq!(screen.answered.len(), 1, "asked once: {}", screen.text);
    assert!(
        screen.text.contains("route primary:"),
        "the prompt names the route: {}",
        screen.text
    );
    let p = agent.wait_state("mfa", "up");
    let local = local_of(&p);
    assert_eq!(echo(local, b"through the code"), b"through the code");
    assert_eq!(bastion.accepted_kbd_int(), 1, "{}", bastion.log());

    // The bastion restarts: the next login needs a new code and nobody is attached. A client
    // knocks on the forward every 2 s for 30 s.
    let before = bastion.kbd_int_logins();
    bastion.kill();
    bastion.restart();
    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..15 {
        if let Ok(mut c) = std::net::TcpStream::connect_timeout(&local, Duration::from_secs(1)) {
            use std::io::Read;
            let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
            let mut b = [0u8; 16];
            if matches!(c.read(&mut b), Ok(0)) {
                refused += 1;
            }
        }
        std::thread::sleep(Duration::from_secs(2).saturating_sub(Duration::from_millis(50)));
        if started.elapsed() > Duration::from_secs(40) {
            break;
        }
    }
    let logins = bastion.kbd_int_logins() - before;
    eprintln!("after the restart, 30 s of knocking: {logins} login(s), {refused} of 15 knocks closed at once");
    assert!(
        logins <= 3,
        "{logins} logins in 30 s of knocking (at most 3):\n{}",
        bastion.log()
    );
    assert!(refused >= 10, "knocks closed at once: {refused} of 15");
    let p = agent.wait_state("mfa", "needs-input");
    assert!(
        p["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("route primary"),
        "{p}"
    );

    // `up` again asks once (a code one step ahead: pam_oath refuses the one already used).
    let screen = up_on_pty(&agent, "mfa", &[code_rule(CODE_PROMPT, SECRET_A, 1)]);
    assert_eq!(screen.code, Some(0), "up again: {}", screen.text);
    assert_eq!(screen.answered.len(), 1, "asked once: {}", screen.text);
    let p = agent.wait_state("mfa", "up");
    assert_eq!(echo(local_of(&p), b"back"), b"back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_standby_behind_totp_fails_over_with_nobody_at_the_terminal() {
    let s = site().await;
    let primary = totp_bastion(&s.key, SECRET_A);
    let dr = totp_bastion(&s.key, SECRET_B);
    write_profile(&s, "pair", &[("primary", &primary), ("dr", &dr)], true);
    let agent = start_agent(&s);

    // `up` asks both codes, each named by its route.
    let screen = up_on_pty(
        &agent,
        "pair",
        &[
            code_rule("route primary: (", SECRET_A, 0),
            code_rule("route dr: (", SECRET_B, 0),
        ],
    );
    assert_eq!(screen.code, Some(0), "up: {}", screen.text);
    assert_eq!(
        screen.answered,
        vec!["route primary: (".to_string(), "route dr: (".to_string()],
        "{}",
        screen.text
    );
    assert!(
        screen.text.contains("ready (authenticated)"),
        "{}",
        screen.text
    );
    let p = agent.wait_state("pair", "up");
    assert_eq!(p["routes"][1]["hot"], true, "{p}");
    assert_eq!(
        dr.accepted_kbd_int(),
        1,
        "the DR bastion accepted the code before the failure:\n{}",
        dr.log()
    );
    let local = local_of(&p);
    assert_eq!(echo(local, b"on primary"), b"on primary");

    // The primary dies; nobody is at the terminal.
    let dr_logins = dr.kbd_int_logins();
    let killed = Instant::now();
    primary.kill();
    let p = agent.wait_state("pair", "degraded");
    let took = killed.elapsed();
    assert_eq!(p["route"], "dr", "{p}");
    assert!(took < DEADLINE, "failed over in {took:?}");
    assert_eq!(echo(local, b"on dr"), b"on dr");
    assert_eq!(
        dr.kbd_int_logins(),
        dr_logins,
        "no new login on the DR bastion: the standby session took over"
    );
    eprintln!(
        "failover to the hot standby behind TOTP: {} ms",
        took.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_profiles_to_one_totp_bastion_need_one_code() {
    let s = site().await;
    let bastion = totp_bastion(&s.key, SECRET_A);
    write_profile(&s, "rdp", &[("primary", &bastion)], false);
    write_profile(&s, "vnc", &[("primary", &bastion)], false);
    let agent = start_agent(&s);
    let screen = up_on_pty(&agent, "rdp", &[code_rule(CODE_PROMPT, SECRET_A, 0)]);
    assert_eq!(screen.code, Some(0), "up rdp: {}", screen.text);
    assert_eq!(screen.answered.len(), 1, "{}", screen.text);
    // No terminal: `up vnc` would fail if its login needed a code. It joins rdp's session.
    let out = agent.cli(&["up", "vnc"]);
    assert!(
        out.status.success(),
        "up vnc without a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vnc = agent.wait_state("vnc", "up");
    let rdp = agent.wait_state("rdp", "up");
    assert_eq!(echo(local_of(&rdp), b"rdp"), b"rdp");
    assert_eq!(echo(local_of(&vnc), b"vnc"), b"vnc");
    assert_eq!(bastion.connections(), 1, "one SSH connection");
    assert_eq!(bastion.kbd_int_logins(), 1, "one login:\n{}", bastion.log());
    assert_eq!(bastion.accepted_kbd_int(), 1);
    assert_eq!(
        agent.profile("vnc")["shared_with"],
        serde_json::json!(["rdp"])
    );
}
