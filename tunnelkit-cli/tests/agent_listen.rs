//! A profile's `local` address read as `ssh -L` reads its bind address, against a real agent and
//! OpenSSH sshd: `*:PORT` binds every interface (it failed with "failed to lookup address
//! information"), and `tunnelkit status` marks such a forward as reachable from other machines
//! (`exposed` in JSON, `(all interfaces)` in the table); a loopback one is not marked. A
//! malformed address is refused with the file, line and column.

use std::net::{Ipv4Addr, Ipv6Addr};

use tunnelkit_tests::blocking_echo as echo;

mod agent_site;
use agent_site::{site, Agent, Site};

fn profile(s: &Site, name: &str, local: &str) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "autostart = true\n[ssh]\nIdentityFile = \"{}\"\nUserKnownHostsFile = \"{}\"\n\
         [[forward]]\nlocal = \"{local}\"\nremote = \"127.0.0.1:{}\"\n\
         [[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        s.sshd.port()
    );
    std::fs::write(s.profiles.join(format!("{name}.toml")), text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn star_binds_every_interface_and_status_marks_it_exposed() {
    let s = site(None).await;
    profile(&s, "everywhere", "*:0");
    profile(&s, "private", "127.0.0.1:0");
    profile(&s, "broken", "*:13389:extra");
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let every = agent.wait_state("everywhere", "up");
    let f = &every["forwards"][0];
    assert_eq!(f["exposed"], true, "{every}");
    let local: std::net::SocketAddr = f["local"].as_str().unwrap().parse().unwrap();
    assert!(local.ip().is_unspecified(), "{local}");
    // Both families on the one port, as ssh binds 0.0.0.0 and ::.
    let v4 = (Ipv4Addr::LOCALHOST, local.port()).into();
    assert_eq!(echo(v4, b"over v4"), b"over v4");
    if local.is_ipv6() {
        let v6 = (Ipv6Addr::LOCALHOST, local.port()).into();
        assert_eq!(echo(v6, b"over v6"), b"over v6");
    }
    let private = agent.wait_state("private", "up");
    assert_eq!(private["forwards"][0]["exposed"], false, "{private}");
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{table}"))
            .to_string()
    };
    assert!(
        row("everywhere").contains(&format!("{local} (all interfaces)")),
        "{table}"
    );
    assert!(!row("private").contains("interfaces"), "{table}");
    let broken = agent.wait_state("broken", "invalid");
    let err = broken["last_error"].as_str().unwrap();
    assert!(
        err.contains("broken.toml:6:9") && err.contains("expected [bind_address:]port"),
        "{err}"
    );
}
