//! Table tests of profile parsing: the documented shape, errors with file:line:col, keys a
//! profile cannot apply, hops naming ssh_config hosts, `[[dynamic]]` and `[[remote]]`.

use super::*;
use tunnelkit_core::defaults;
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

const REMOTE: &str = r#"
description = "Publish this NATed server's RDP on the bastion, DR included"

[[remote]]
bind = 13389
target = "127.0.0.1:3389"
bind_by_route = { dr = "0.0.0.0:13390" }
max_connections = 8

[[remote]]
bind = "*:0"
target = "localhost:5900"

[[route]]
name = "primary"
hops = ["admin@bastion.prod.example.com"]

[[route]]
name = "dr"
hops = ["admin@bastion.dr.example.com"]
"#;

#[test]
fn remote_forwards_parse_with_per_route_binds() {
    let p = parse_in(Path::new("/p/nated.toml"), REMOTE, &env()).unwrap();
    let c = &p.config;
    assert!(
        c.forwards.is_empty(),
        "a profile may have only remote forwards"
    );
    assert_eq!(c.remote_forwards.len(), 2);
    let r = &c.remote_forwards[0];
    assert_eq!(r.bind_for("primary").to_string(), "localhost:13389");
    assert_eq!(r.bind_for("dr").to_string(), "0.0.0.0:13390");
    assert_eq!(r.target.to_string(), "127.0.0.1:3389");
    assert_eq!(r.max_connections, 8);
    assert_eq!(c.remote_forwards[1].bind.to_string(), "*:0");
}

#[test]
fn remote_forward_mistakes_say_where() {
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (from, to, says) in [
        (
            "bind = 13389",
            "bind = 99999",
            "bind: invalid bastion listen address",
        ),
        ("bind = 13389", "bind = true", "expected a port"),
        (
            "target = \"127.0.0.1:3389\"",
            "target = \"127.0.0.1\"",
            "target: invalid target",
        ),
        ("{ dr = ", "{ nowhere = ", "no route named nowhere"),
        ("max_connections = 8", "max_connections = 0", "at least 1"),
        (
            "max_connections = 8",
            "listen = 1",
            "unknown field `listen`",
        ),
    ] {
        let text = REMOTE.replace(from, to);
        let e = err(&text);
        assert!(e.message.contains(says), "{to}: {e}");
        assert_eq!(
            e.line,
            line_of(&text, to.split(' ').next().unwrap()),
            "{to}: {e}"
        );
    }
    let e = err(&GOOD.replace("ServerAliveInterval = 5", "RemoteForward = \"1 h:2\""));
    assert!(
        e.message.starts_with("[ssh] RemoteForward use [[remote]]"),
        "{e}"
    );
}

#[test]
fn a_profile_without_forwards_takes_the_destinations_remote_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(
        &cfg,
        "Host nated\n  HostName bastion.example\n  RemoteForward 13389 localhost:3389\n",
    )
    .unwrap();
    let mut e = env();
    e.sources = Sources::file(&cfg);
    let text = "description = \"x\"\n[[route]]\nname = \"primary\"\nhops = [\"nated\"]\n";
    let p = parse_in(Path::new("/p/x.toml"), text, &e).unwrap();
    assert!(p.config.forwards.is_empty());
    assert_eq!(p.config.remote_forwards[0].bind.port, 13389);
}

#[test]
fn standby_probe_and_hot_standby() {
    let c = parse_in(Path::new("/p/x.toml"), GOOD, &env())
        .unwrap()
        .config;
    assert_eq!(
        c.standby_probe,
        Some(defaults::STANDBY_PROBE),
        "the default"
    );
    assert!(!c.hot_standby);
    let p = parse_in(
        Path::new("/p/x.toml"),
        &GOOD.replace("failback = 60", "standby_probe = 30\nhot_standby = true"),
        &env(),
    )
    .unwrap();
    assert_eq!(p.config.standby_probe, Some(Duration::from_secs(30)));
    assert!(p.config.hot_standby);
    let p = parse_in(
        Path::new("/p/x.toml"),
        &GOOD.replace("failback = 60", "standby_probe = \"never\""),
        &env(),
    )
    .unwrap();
    assert_eq!(p.config.standby_probe, None);
    for bad in [
        "standby_probe = 0",
        "standby_probe = \"sometimes\"",
        "standby_probe = -5",
    ] {
        let e = err(&GOOD.replace("failback = 60", bad));
        assert!(
            e.message.starts_with("standby_probe: expected"),
            "{bad}: {e}"
        );
        assert_eq!((e.line, e.column), (4, 17), "{bad}: {e}");
    }
}

#[test]
fn certificate_command_for_every_route_or_a_route_s_own() {
    let c = parse_in(Path::new("/p/x.toml"), GOOD, &env())
        .unwrap()
        .config;
    assert!(c.routes[0].hops[0]
        .options
        .auth
        .certificate_command
        .is_none());
    let text = GOOD
        .replace(
            "failback = 60",
            "failback = 60\ncertificate_command = [\"step\", \"ssh\", \"certificate\", \"alice smith\", \"$HOME\"]",
        )
        .replace(
            "hops = [\"admin@bastion.fra.example.com\"]",
            "hops = [\"admin@bastion.fra.example.com\"]\ncertificate_command = [\"/opt/dr/mint\"]",
        );
    let c = parse_in(Path::new("/p/x.toml"), &text, &env())
        .unwrap()
        .config;
    for hop in &c.routes[0].hops {
        let cmd = hop.options.auth.certificate_command.as_ref().unwrap();
        // Words as written: nothing split or expanded.
        assert_eq!(
            cmd.argv(),
            ["step", "ssh", "certificate", "alice smith", "$HOME"]
        );
    }
    let dr = c.routes[1].hops[0]
        .options
        .auth
        .certificate_command
        .as_ref();
    assert_eq!(dr.unwrap().argv(), ["/opt/dr/mint"]);
    for (bad, message) in [
        (
            "certificate_command = \"step ssh certificate alice\"",
            "certificate_command: expected an array of strings",
        ),
        (
            "certificate_command = [\"step\", 3]",
            "certificate_command: expected an array of strings",
        ),
        (
            "certificate_command = []",
            "certificate_command: expected a program",
        ),
        (
            "certificate_command = [\"\"]",
            "certificate_command: the program",
        ),
    ] {
        let e = err(&GOOD.replace("failback = 60", bad));
        assert!(e.message.starts_with(message), "{bad}: {e}");
        assert_eq!((e.line, e.column), (4, 23), "{bad}: {e}");
    }
    // Not an ssh option: refused in [ssh] like any unknown keyword.
    let e = err(&GOOD.replace("ServerAliveInterval = 5", "CertificateCommand = \"x\""));
    assert!(e.message.contains("CertificateCommand"), "{e}");
}
