//! Table tests of the resolver against ssh_config files in a temporary directory.

use super::*;
use crate::ssh_config::Sources;

fn env_with(config: &str) -> (tempfile::TempDir, Environment) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, config).unwrap();
    let env = Environment {
        local_user: "me".into(),
        home: dir.path().to_path_buf(),
        sources: Sources::file(&file),
        shell: PathBuf::from("/bin/sh"),
        interactive: false,
        agent_socket: None,
    };
    (dir, env)
}

fn labels(r: &Route) -> Vec<String> {
    r.hops.iter().map(|h| h.label()).collect()
}

const CONFIG: &str = "\
Host prod
  HostName bastion.prod.example
  User admin
  ProxyCommand socat - TCP:%h:%p,user=%r,alias=%n,key=%k,pct=%%
  ProxyJump ignored-because-second
Host viajump
  ProxyJump edge
  ProxyCommand ignored-because-second %h
Host edge
  HostName 203.0.113.7
  Port 2200
  ProxyCommand ssh -W %h:%p outer
Host off
  ProxyCommand none
  ProxyJump never
Host badtoken
  ProxyCommand nc %u %h
";

#[test]
fn proxy_command_is_expanded_as_ssh_does() {
    let (_d, env) = env_with(CONFIG);
    let o = Overrides::default();
    let r = Resolver::new(&env, &o);
    let dest = r.destination("prod", None, None, None).unwrap();
    let route = r.route("primary", &dest).unwrap();
    assert_eq!(labels(&route), ["admin@bastion.prod.example:22"]);
    let pc = route.hops[0].proxy_command.clone().unwrap();
    assert_eq!(
        pc.command,
        "exec socat - TCP:bastion.prod.example:22,user=admin,alias=prod,key=prod,pct=%"
    );
    assert_eq!(
        pc.configured,
        "socat - TCP:%h:%p,user=%r,alias=%n,key=%k,pct=%%"
    );
}

#[test]
fn first_of_proxyjump_and_proxycommand_wins_on_every_hop() {
    let (_d, env) = env_with(CONFIG);
    let o = Overrides::default();
    let r = Resolver::new(&env, &o);
    // viajump: ProxyJump first; edge (the first jump) has its own ProxyCommand.
    let dest = r.destination("viajump", None, None, None).unwrap();
    let route = r.route("primary", &dest).unwrap();
    assert_eq!(labels(&route), ["me@203.0.113.7:2200", "me@viajump:22"]);
    assert_eq!(
        route.hops[0].proxy_command.as_ref().unwrap().command,
        "exec ssh -W 203.0.113.7:2200 outer"
    );
    assert!(route.hops[1].proxy_command.is_none());
    // ProxyCommand none takes the slot: no jump, no command.
    let dest = r.destination("off", None, None, None).unwrap();
    let route = r.route("primary", &dest).unwrap();
    assert_eq!(labels(&route), ["me@off:22"]);
    assert!(route.hops[0].proxy_command.is_none());
    // -J sets the slot first: the destination's ProxyCommand is not used, and a later jump
    // host's ProxyCommand neither (it is reached through the one before).
    let dest = r.destination("prod", None, None, Some("off,edge")).unwrap();
    let route = r.route("primary", &dest).unwrap();
    assert_eq!(
        labels(&route),
        [
            "me@off:22",
            "me@203.0.113.7:2200",
            "admin@bastion.prod.example:22"
        ]
    );
    assert!(route.hops.iter().all(|h| h.proxy_command.is_none()));
}

#[test]
fn routes_of_hosts_and_dr_routes_resolve_aliases() {
    let (_d, env) = env_with(CONFIG);
    let o = Overrides::default();
    let r = Resolver::new(&env, &o);
    let (route, dest) = r.route_of_hosts("dr", &["prod"]).unwrap();
    assert_eq!(dest.host_name, "bastion.prod.example");
    assert!(route.hops[0].proxy_command.is_some());
    let req = Request {
        destination: "off".into(),
        dr: vec!["prod".into(), "off,viajump".into()],
        local_forwards: vec!["0:target:80".into()],
        ..Default::default()
    };
    let res = resolve(&env, &req).unwrap();
    assert_eq!(res.routes.len(), 3);
    assert!(res.routes[1].hops[0].proxy_command.is_some());
    // The DR route's jump list is its -J: viajump's own ProxyJump is not followed.
    assert_eq!(labels(&res.routes[2]), ["me@off:22", "me@viajump:22"]);
    assert_eq!(res.forwards.len(), 1);
}

#[test]
fn mistakes_are_errors_that_say_where() {
    let (_d, env) = env_with(CONFIG);
    let o = Overrides::default();
    let r = Resolver::new(&env, &o);
    let dest = r.destination("badtoken", None, None, None).unwrap();
    let e = r.route("primary", &dest).unwrap_err();
    assert!(e.to_string().contains("unknown token %u"), "{e}");
    let o = Overrides {
        options: vec!["ProxyCommand=nc %h %p".into()],
        ..Default::default()
    };
    let r = Resolver::new(&env, &o);
    let e = r.destination("prod", None, None, Some("edge")).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot specify -J with ProxyCommand"),
        "{e}"
    );
    // -o ProxyCommand applies to the destination only, and wins over ssh_config.
    let dest = r.destination("viajump", None, None, None).unwrap();
    let route = r.route("primary", &dest).unwrap();
    assert_eq!(labels(&route), ["me@viajump:22"]);
    assert_eq!(
        route.hops[0].proxy_command.as_ref().unwrap().command,
        "exec nc viajump 22"
    );
    let (_d, env) = env_with("Host x\n  KexAlgorithms curve25519-sha256\n");
    let o = Overrides::default();
    let e = Resolver::new(&env, &o)
        .destination("x", None, None, None)
        .unwrap_err();
    assert!(
        e.to_string().ends_with(
            "config:2: KexAlgorithms curve25519-sha256 is not supported by tunnelkit: \
             the key exchange algorithms cannot be restricted"
        ),
        "{e}"
    );
}

#[test]
fn ignore_unknown_skips_what_it_names() {
    let (_d, env) = env_with("IgnoreUnknown Frob*\nHost x\n  Frobnicate yes\n  User u\n");
    let o = Overrides::default();
    let c = Resolver::new(&env, &o)
        .destination("x", None, None, None)
        .unwrap();
    assert_eq!(c.user, "u");
    let (_d, env) = env_with("Host x\n  Frobnicate yes\n");
    assert!(Resolver::new(&env, &o)
        .destination("x", None, None, None)
        .is_err());
}

#[test]
fn dynamic_forwards_come_from_dash_d_then_ssh_config() {
    use crate::config::ForwardKind;
    let (_d, env) = env_with(
        "Host socks\n  DynamicForward 1090\n  DynamicForward *:1091\n  LocalForward 5 t:6\n\
         Host gw\n  DynamicForward 1099\n",
    );
    let req = Request {
        destination: "socks".into(),
        jump: Some("gw".into()),
        dynamic_forwards: vec!["1080".into(), "[::1]:1081".into()],
        ..Default::default()
    };
    let res = resolve(&env, &req).unwrap();
    let got: Vec<(String, bool)> = res
        .forwards
        .iter()
        .map(|f| (f.bind_label(), f.kind == ForwardKind::Dynamic))
        .collect();
    // -L and LocalForward first, then -D, then DynamicForward; the jump host's are not used.
    assert_eq!(
        got,
        [
            ("127.0.0.1:5".to_string(), false),
            ("127.0.0.1:1080".to_string(), true),
            ("[::1]:1081".to_string(), true),
            ("127.0.0.1:1090".to_string(), true),
            ("*:1091".to_string(), true),
        ]
    );
    assert_eq!(res.forwards[1].target_for("primary"), None);
    // ssh -G lists -D first, as ssh does.
    let g = print_config(&env, &req).unwrap();
    let lines: Vec<&str> = g
        .lines()
        .filter(|l| l.starts_with("dynamicforward"))
        .collect();
    assert_eq!(
        lines,
        [
            "dynamicforward 1080",
            "dynamicforward [::1]:1081",
            "dynamicforward 1090",
            "dynamicforward [*]:1091"
        ]
    );
    // GatewayPorts and AddressFamily give the default bind address, as for -L.
    let req = Request {
        destination: "plain".into(),
        dynamic_forwards: vec!["1080".into()],
        overrides: Overrides {
            options: vec!["GatewayPorts=yes".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        resolve(&env, &req).unwrap().forwards[0].bind_label(),
        "*:1080"
    );
    // Every address in the one family asked, as ssh binds it.
    let req = Request {
        destination: "plain".into(),
        dynamic_forwards: vec!["*:1080".into()],
        overrides: Overrides {
            options: vec!["AddressFamily=inet".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        resolve(&env, &req).unwrap().forwards[0].bind_label(),
        "0.0.0.0:1080"
    );
    let bad = Request {
        destination: "plain".into(),
        dynamic_forwards: vec!["1:2:3".into()],
        ..Default::default()
    };
    let e = resolve(&env, &bad).unwrap_err().to_string();
    assert!(e.starts_with("-D: invalid dynamic forward `1:2:3`"), "{e}");
}

#[test]
fn remote_forwards_come_from_flags_then_the_destination_and_print_as_ssh_g() {
    let (_d, env) = env_with(
        "Host nated\n  HostName bastion.example\n  RemoteForward 13389 localhost:3389\n  \
         RemoteForward *:0 [::1]:5900\n  RemoteForward :7000 h:70\n",
    );
    let req = Request {
        destination: "nated".into(),
        remote_forwards: vec!["10.0.0.5:8080:web:80".into()],
        ..Default::default()
    };
    let res = resolve(&env, &req).unwrap();
    let got: Vec<(String, u16, String)> = res
        .remote_forwards
        .iter()
        .map(|r| (r.bind.host.clone(), r.bind.port, r.target.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.0.0.5".into(), 8080, "web:80".into()),
            ("localhost".into(), 13389, "localhost:3389".into()),
            ("".into(), 0, "[::1]:5900".into()),
            ("".into(), 7000, "h:70".into()),
        ]
    );
    let g = print_config(&env, &req).unwrap();
    assert!(g.contains("remoteforward 13389 [localhost]:3389\n"), "{g}");
    assert!(g.contains("remoteforward [*]:0 [::1]:5900\n"), "{g}");
    assert!(g.contains("remoteforward []:7000 [h]:70\n"), "{g}");
    assert!(
        g.contains("remoteforward [10.0.0.5]:8080 [web]:80\n"),
        "{g}"
    );
    // A dynamic -R is refused with its name, not dropped.
    let bad = Request {
        destination: "nated".into(),
        remote_forwards: vec!["8080".into()],
        ..Default::default()
    };
    let e = resolve(&env, &bad).unwrap_err();
    assert!(e.to_string().contains("dynamic remote forward"), "{e}");
}

#[test]
fn dash_g_prints_the_flags_forwards_before_the_files() {
    let (_d, env) = env_with("Host site\n  LocalForward 5901 vnc:5901\n");
    let req = Request {
        destination: "site".into(),
        local_forwards: vec!["8443:intranet:443".into()],
        ..Default::default()
    };
    let g = print_config(&env, &req).unwrap();
    let lines: Vec<&str> = g
        .lines()
        .filter(|l| l.starts_with("localforward"))
        .collect();
    assert_eq!(
        lines,
        [
            "localforward 8443 [intranet]:443",
            "localforward 5901 [vnc]:5901"
        ]
    );
    for (bad, flag) in [
        (
            Request {
                local_forwards: vec!["8443".into()],
                ..req.clone()
            },
            "-L: ",
        ),
        (
            Request {
                remote_forwards: vec!["8443".into()],
                ..req.clone()
            },
            "-R: ",
        ),
    ] {
        let e = print_config(&env, &bad).unwrap_err().to_string();
        assert!(e.starts_with(flag), "{e}");
    }
}
