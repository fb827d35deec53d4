//! The agent as an admin uses it, against real OpenSSH sshds: profiles (one autostart),
//! `status --json`, `up`, `down`, `logs`, a profile edited while another carries a connection,
//! a broken profile, and a two-site profile's standby readiness and drill. Secrets:
//! `agent_secrets.rs`; the control socket's guards: `agent_socket.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use serde_json::Value;
use tunnelkit_tests::{blocking_echo as echo, wait_until, Sshd, SshdOptions};

mod agent_site;
use agent_site::{local_of, site, write_profile, Agent, Site, DEADLINE};

#[tokio::test(flavor = "multi_thread")]
async fn profiles_status_up_down_logs_and_a_broken_file() {
    let s = site(None).await;
    write_profile(&s, "auto", true, 0);
    write_profile(&s, "manual", false, 0);
    std::fs::write(
        s.profiles.join("broken.toml"),
        "autostart = true\n[[route]]\nname = \"r\"\nhops = [\"h\"]\n[[forward]]\nlocal = 1\nremote = \"x\"\n",
    )
    .unwrap();
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let auto = agent.wait_state("auto", "up");
    assert_eq!(auto["route"], "primary");
    assert_eq!(echo(local_of(&auto), b"autostarted"), b"autostarted");
    assert_eq!(agent.profile("manual")["state"], "down");
    let broken = agent.profile("broken");
    assert_eq!(broken["state"], "invalid");
    let err = broken["last_error"].as_str().unwrap();
    assert!(
        err.contains("broken.toml:7:") && err.contains("expected host:port"),
        "{err}"
    );

    let out = agent.cli(&["up", "manual"]);
    assert!(
        out.status.success(),
        "{}\nagent log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    // After `up` returns the forward is bound and the route is up.
    let manual = agent.profile("manual");
    assert_eq!(manual["state"], "up");
    assert_eq!(echo(local_of(&manual), b"manual"), b"manual");
    let counted = agent.profile("manual");
    assert_eq!(counted["forwards"][0]["total"], 1);
    assert_eq!(counted["forwards"][0]["bytes_out"], 6);

    let out = agent.cli(&["down", "manual"]);
    assert!(out.status.success());
    assert_eq!(agent.profile("manual")["state"], "down");
    let logs = agent.cli(&["logs", "auto"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("route primary: up"),
        "{logs:?}"
    );
    let out = agent.cli(&["up", "nosuch"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile named nosuch"));
}

#[tokio::test(flavor = "multi_thread")]
async fn editing_one_profile_does_not_cut_another() {
    let s = site(None).await;
    write_profile(&s, "steady", true, 0);
    write_profile(&s, "edited", true, 0);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let steady = agent.wait_state("steady", "up");
    let before = agent.wait_state("edited", "up");
    let mut flowing = TcpStream::connect(local_of(&steady)).unwrap();
    flowing.set_read_timeout(Some(DEADLINE)).unwrap();
    flowing.write_all(b"one").unwrap();
    let mut b = [0u8; 3];
    flowing.read_exact(&mut b).unwrap();

    // Change the edited profile's local port (0 -> a fixed free one) and wait for it to apply.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let edited_at = Instant::now();
    write_profile(&s, "edited", true, free);
    wait_until(DEADLINE, "the edit to apply", || {
        let p = agent.profile("edited");
        p["state"] == "up" && local_of(&p).port() == free
    });
    let took = edited_at.elapsed();
    assert_ne!(local_of(&before).port(), free);
    // The connection through the other profile kept flowing.
    flowing.write_all(b"two").unwrap();
    flowing.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"two", "the steady profile's connection was not cut");
    assert_eq!(agent.profile("steady")["reconnects"], 0);
    eprintln!("profile edit applied in {took:?}");
    // Removing a file stops and forgets that profile only.
    std::fs::remove_file(s.profiles.join("edited.toml")).unwrap();
    wait_until(DEADLINE, "the removal to apply", || {
        agent.status().len() == 1
    });
    flowing.write_all(b"333").unwrap();
    flowing.read_exact(&mut b).unwrap();
}

/// A two-site profile: forwards to an echo server and to a target that speaks first (VNC's
/// `RFB 003.008`), routes `primary` and `dr` through two sshds, standby probes every second.
fn write_dr_profile(s: &Site, dr: &Sshd, vnc: &tunnelkit_tests::Server) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "autostart = true\nstandby_probe = 1\nfailback = \"never\"\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\nConnectTimeout = 3\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
         [[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n\n\
         [[route]]\nname = \"dr\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        vnc.addr().port(),
        s.sshd.port(),
        dr.port()
    );
    std::fs::write(s.profiles.join("twosite.toml"), text).unwrap();
}

fn dr_route(p: &Value) -> Value {
    p["routes"][1].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_readiness_in_status_and_a_drill_that_reports_its_rto() {
    let s = site(None).await;
    let dr = Sshd::start(SshdOptions {
        authorized_keys: vec![s.key.public_line.clone()],
        ..Default::default()
    });
    let vnc = tunnelkit_tests::SpeakFirstServer::start(b"RFB 003.008\n").await;
    let trust = |dr: &Sshd| {
        std::fs::write(
            &s.known_hosts,
            format!("{}\n{}\n", s.sshd.known_hosts_line(), dr.known_hosts_line()),
        )
        .unwrap()
    };
    trust(&dr);
    write_dr_profile(&s, &dr, &vnc);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let p = agent.wait_state("twosite", "up");
    assert_eq!(p["routes"][0]["in_use"], true, "{p}");
    let mut last = Value::Null;
    wait_until(DEADLINE, "dr ready", || {
        last = dr_route(&agent.profile("twosite"));
        last["ready"] == true
    });
    assert!(
        last["probe_ms"].is_u64() && last["last_probe"].is_u64(),
        "{last}"
    );
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.contains("route dr") && l.contains("standby") && l.contains("READY")),
        "{table}"
    );

    // A connection held through the drill.
    let echo_addr = local_of(&p);
    let mut held = TcpStream::connect(echo_addr).unwrap();
    held.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut b = [0u8; 4];
    held.write_all(b"held").unwrap();
    held.read_exact(&mut b).unwrap();
    let dr_before = dr.connections();

    let out = agent.cli(&["drill", "twosite", "--json"]);
    assert!(out.status.success(), "{out:?}\n{}", agent.log());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("primary"), Some("dr")),
        "{report}"
    );
    assert_eq!(report["carried"], true, "{report}");
    let rto = report["rto_ms"].as_u64().unwrap();
    assert!(rto < 10_000, "{report}");
    assert_eq!(report["forwards"][1]["reached"], true, "{report}");
    assert_eq!(
        report["forwards"][1]["first_bytes"], 12,
        "the VNC greeting arrived: {report}"
    );
    assert_eq!(report["back_on"], "primary", "{report}");
    assert!(
        dr.connections() > dr_before,
        "the drill went through the DR bastion"
    );
    eprintln!("drill RTO {rto} ms: {report}");
    let text = agent.cli(&["drill", "twosite"]);
    let lines = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.status.success(), "{text:?}");
    assert!(
        lines.contains("route   dr") && lines.contains("CARRIED  RTO"),
        "{lines}"
    );
    assert_eq!(
        lines.lines().filter(|l| l.starts_with("forward ")).count(),
        2,
        "{lines}"
    );

    let after = agent.profile("twosite");
    assert_eq!(after["route"], "primary", "back on the primary: {after}");
    held.write_all(b"live").unwrap();
    held.read_exact(&mut b).unwrap();
    assert_eq!(
        &b, b"live",
        "the held connection still echoes after the drill"
    );

    // The DR bastion's host key changes: not ready, with the reason, and a drill says why.
    dr.replace_host_key();
    wait_until(DEADLINE, "dr not ready", || {
        last = dr_route(&agent.profile("twosite"));
        last["ready"] == false
    });
    let why = last["last_error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("IDENTIFICATION HAS CHANGED"), "{last}");
    let logs = String::from_utf8_lossy(&agent.cli(&["logs", "twosite"]).stdout).to_string();
    assert!(logs.contains("standby route dr: NOT READY"), "{logs}");
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("standby route dr: NOT READY")),
        "a warning in the agent's log:\n{}",
        agent.log()
    );
    let out = agent.cli(&["drill", "twosite"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be brought up") && err.contains("IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert_eq!(echo(echo_addr, b"primary serves"), b"primary serves");
    // Fixed: ready again.
    trust(&dr);
    wait_until(DEADLINE, "dr ready again", || {
        dr_route(&agent.profile("twosite"))["ready"] == true
    });
    let p = agent.profile("twosite");
    assert_eq!(
        (p["reconnects"].as_u64(), p["failovers"].as_u64()),
        (Some(0), Some(0)),
        "{p}"
    );
}

/// A drill that tests nothing is no pass, and `--json` always prints a report: a profile whose
/// forwards are all SOCKS proxies says UNTESTED and exits 255 (its DR session did come up); a
/// profile without a DR route prints a JSON report saying why, not nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_of_socks_proxies_alone_is_untested_and_one_without_dr_is_json_too() {
    let s = site(None).await;
    write_profile(&s, "single", true, 0);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "autostart = true\nfailback = \"never\"\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\nConnectTimeout = 3\n\n\
         [[dynamic]]\nlocal = 0\n\n\
         [[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{port}\"]\n\n\
         [[route]]\nname = \"dr\"\nhops = [\"{user}@127.0.0.1:{port}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        port = s.sshd.port()
    );
    std::fs::write(s.profiles.join("proxies.toml"), text).unwrap();
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    agent.wait_state("proxies", "up");
    agent.wait_state("single", "up");

    let out = agent.cli(&["drill", "proxies"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(255), "{text}\n{err}");
    assert!(
        text.contains("UNTESTED") && !text.contains("CARRIED"),
        "{text}"
    );
    assert!(
        err.contains("nothing was tested through the DR route dr"),
        "{err}"
    );
    let out = agent.cli(&["drill", "proxies", "--json"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["carried"], false, "{report}");
    assert_eq!(report["forwards"][0]["skipped"], true, "{report}");

    let out = agent.cli(&["drill", "single", "--json"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON on stdout ({e}): {out:?}"));
    assert_eq!(report["carried"], false, "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("no DR route")),
        "{report}"
    );
}
