use super::*;

#[test]
fn remote_forwards() {
    let r = parse_remote_forward("13389:winserver:3389").unwrap();
    assert_eq!(
        (
            r.bind_host.as_deref(),
            r.bind_port,
            r.target_host.as_str(),
            r.target_port
        ),
        (None, 13389, "winserver", 3389)
    );
    assert_eq!(r.to_string(), "13389:winserver:3389");
    let r = parse_remote_forward("0:localhost:5900").unwrap();
    assert_eq!(r.bind_port, 0);
    let r = parse_remote_forward("*:8080:127.0.0.1:80").unwrap();
    assert_eq!(r.bind_host.as_deref(), Some(""));
    assert_eq!(r.to_string(), "*:8080:127.0.0.1:80");
    let r = parse_remote_forward(":8080:127.0.0.1:80").unwrap();
    assert_eq!(r.bind_host.as_deref(), Some(""));
    let r = parse_remote_forward("localhost:8080:h:80").unwrap();
    assert_eq!(r.bind_host, None);
    let r = parse_remote_forward("[::1]:8080:[fe80::1]:80").unwrap();
    assert_eq!(
        (r.bind_host.as_deref(), r.target_host.as_str()),
        (Some("::1"), "fe80::1")
    );
    assert_eq!(r.to_string(), "[::1]:8080:[fe80::1]:80");
    let r = parse_remote_forward("10.0.0.5:13389:dc1:3389").unwrap();
    assert_eq!(r.bind_host.as_deref(), Some("10.0.0.5"));
    for (bad, why) in [
        ("", "empty"),
        ("8080", "dynamic"),
        ("0.0.0.0:8080", "dynamic"),
        ("8080:/tmp/sock", "Unix socket"),
        ("8080:host", "dynamic"),
        ("70000:h:80", "listen port"),
        ("8080:h:0", "target port"),
        ("8080:h:x", "target port"),
        ("8080::80", "empty"),
        ("a:b:8080:h:80", "expected"),
        ("8080:-oProxy:80", "'-'"),
    ] {
        let e = parse_remote_forward(bad).unwrap_err();
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
}

#[test]
fn remote_listen_addresses() {
    assert_eq!(parse_remote_listen("13389").unwrap(), (None, 13389));
    assert_eq!(parse_remote_listen("localhost:0").unwrap(), (None, 0));
    assert_eq!(
        parse_remote_listen("*:5900").unwrap(),
        (Some(String::new()), 5900)
    );
    assert_eq!(
        parse_remote_listen("0.0.0.0:13389").unwrap(),
        (Some("0.0.0.0".into()), 13389)
    );
    assert_eq!(
        parse_remote_listen("[::1]:80").unwrap(),
        (Some("::1".into()), 80)
    );
    for bad in ["", "host", "h:99999", "a b:1", "-x:1"] {
        assert!(parse_remote_listen(bad).is_err(), "{bad}");
    }
}

#[test]
fn hops() {
    let h = parse_hop("ops@gw.example.com:2222").unwrap();
    assert_eq!(h.user.as_deref(), Some("ops"));
    assert_eq!(h.host, "gw.example.com");
    assert_eq!(h.port, Some(2222));
    let h = parse_hop("bastion").unwrap();
    assert_eq!((h.user, h.host.as_str(), h.port), (None, "bastion", None));
    let h = parse_hop("admin@[::1]:22").unwrap();
    assert_eq!((h.host.as_str(), h.port), ("::1", Some(22)));
    let h = parse_hop("[fe80::1]").unwrap();
    assert_eq!((h.host.as_str(), h.port), ("fe80::1", None));
    let h = parse_hop("ssh://me@host:2200").unwrap();
    assert_eq!((h.user.as_deref(), h.port), (Some("me"), Some(2200)));
    // user names may contain '@' (e.g. domain accounts); the last '@' splits.
    let h = parse_hop("me@corp@host").unwrap();
    assert_eq!(h.user.as_deref(), Some("me@corp"));
    assert_eq!(h.to_string(), "me@corp@host");
    assert_eq!(parse_hop("a@[::1]:2").unwrap().to_string(), "a@[::1]:2");
    // Found by the property tests: brackets inside a host name never round-trip.
    assert!(parse_hop("[:.2[3p.i][.[8k:0759]").is_err());
    assert!(parse_hop("a[b]").is_err());
}

#[test]
fn bad_hops() {
    for bad in [
        "",
        "@host",
        "host:",
        "host:0",
        "host:65536",
        "host:abc",
        "[::1",
        "[::1]x",
        "-oProxyCommand=x",
        "a b",
        "u@",
    ] {
        let e = parse_hop(bad).unwrap_err();
        assert_eq!(e.what, "hop", "{bad}");
        assert!(e.to_string().contains(bad), "{e}");
    }
}

#[test]
fn jump_lists() {
    let j = parse_jump_list("ops@gw,admin@bastion:2222").unwrap();
    assert_eq!(j.len(), 2);
    assert_eq!(j[1].port, Some(2222));
    assert!(parse_jump_list("none").unwrap().is_empty());
    let e = parse_jump_list("gw,,bastion").unwrap_err();
    assert!(e.reason.contains("hop ``"), "{e}");
}

#[test]
fn forwards() {
    let f = parse_forward("13389:winserver:3389").unwrap();
    assert_eq!(
        f,
        ForwardSpec {
            bind_host: None,
            bind_port: 13389,
            remote_host: "winserver".into(),
            remote_port: 3389
        }
    );
    let f = parse_forward("[::1]:8080:[fe80::1]:80").unwrap();
    assert_eq!(f.bind_host.as_deref(), Some("::1"));
    assert_eq!(f.remote_host, "fe80::1");
    assert_eq!(f.to_string(), "[::1]:8080:[fe80::1]:80");
    let f = parse_forward("0.0.0.0:0:vnc:5901").unwrap();
    assert_eq!((f.bind_host.as_deref(), f.bind_port), (Some("0.0.0.0"), 0));
    let f = parse_forward("*:5901:vnc:5901").unwrap();
    assert_eq!(f.bind_host.as_deref(), Some("*"));
    let f = parse_forward("localhost:5901:vnc:5901").unwrap();
    assert_eq!(f.bind_host, None);
}

#[test]
fn bad_forwards() {
    for (bad, needle) in [
        ("", "empty"),
        ("13389:winserver", "expected"),
        ("a:b:c:d:e", "expected"),
        ("x:winserver:3389", "local port"),
        ("70000:winserver:3389", "local port"),
        ("1:winserver:0", "remote port"),
        ("1::3389", "host name is empty"),
        ("[::1:8080:h:80", "missing ']'"),
        ("/tmp/sock:h:1", "Unix socket"),
    ] {
        let e = parse_forward(bad).unwrap_err();
        assert!(e.to_string().contains(needle), "{bad}: {e}");
    }
}

#[test]
fn dynamic_forwards() {
    for (text, bind, port, back) in [
        ("1080", None, 1080, "1080"),
        ("0", None, 0, "0"),
        ("127.0.0.1:1080", Some("127.0.0.1"), 1080, "127.0.0.1:1080"),
        ("[::1]:1080", Some("::1"), 1080, "[::1]:1080"),
        ("*:1080", Some("*"), 1080, "*:1080"),
        (":1080", Some("*"), 1080, "*:1080"),
        ("localhost:1080", None, 1080, "1080"),
        (" 1080 ", None, 1080, "1080"),
    ] {
        let d = parse_dynamic(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (d.bind_host.as_deref(), d.bind_port),
            (bind, port),
            "{text}"
        );
        assert_eq!(d.to_string(), back, "{text}");
        assert_eq!(parse_dynamic(&d.to_string()).unwrap(), d, "{text}");
    }
    for (bad, needle) in [
        ("", "empty"),
        ("x", "local port"),
        ("70000", "local port"),
        ("h:1:2", "expected [bind_address:]port"),
        ("::1:1080", "expected [bind_address:]port"),
        ("[::1]", "local port"),
        ("[::1:1080", "missing ']'"),
        ("127.0.0.1/1080", "expected [bind_address:]port"),
        ("a b:1080", "contains ' '"),
        ("-x:1080", "cannot start with '-'"),
    ] {
        let e = parse_dynamic(bad).unwrap_err();
        assert_eq!(e.what, "dynamic forward", "{bad}");
        assert!(e.to_string().contains(needle), "{bad}: {e}");
    }
}

#[test]
fn targets_and_listens() {
    assert_eq!(
        parse_target("app.internal:3389").unwrap(),
        ("app.internal".into(), 3389)
    );
    assert_eq!(parse_target("[::1]:5901").unwrap(), ("::1".into(), 5901));
    assert!(parse_target("app.internal").is_err());
    assert_eq!(parse_listen("13389").unwrap(), (None, 13389));
    assert_eq!(
        parse_listen("127.0.0.2:5901").unwrap(),
        (Some("127.0.0.2".into()), 5901)
    );
    assert!(parse_listen("host:x").is_err());
}

/// One reading of a local listen address: a profile's `local`, the bind address of `-L` and
/// that of `-D` give the same bind for the same text (ssh's rules: a bare port and `localhost`
/// are loopback, `*` and an empty address every interface, IPv6 in brackets).
#[test]
fn the_command_line_and_profiles_bind_the_same_address_for_the_same_text() {
    for (text, bind, port, exposed) in [
        ("13389", None, 13389, false),
        ("localhost:13389", None, 13389, false),
        ("*:13389", Some(ALL_INTERFACES), 13389, true),
        (":13389", Some(ALL_INTERFACES), 13389, true),
        ("0.0.0.0:13389", Some("0.0.0.0"), 13389, true),
        ("[::]:13389", Some("::"), 13389, true),
        ("[::1]:13389", Some("::1"), 13389, false),
        ("127.0.0.2:0", Some("127.0.0.2"), 0, false),
        ("192.0.2.7:13389", Some("192.0.2.7"), 13389, true),
        ("lanhost:13389", Some("lanhost"), 13389, true),
    ] {
        let want = (bind.map(String::from), port);
        assert_eq!(parse_listen(text).unwrap(), want, "local = {text:?}");
        let l = parse_forward(&format!("{text}:target:22")).unwrap();
        assert_eq!((l.bind_host, l.bind_port), want, "-L {text}:target:22");
        let d = parse_dynamic(text).unwrap();
        assert_eq!((d.bind_host, d.bind_port), want, "-D {text}");
        let host = bind.unwrap_or("127.0.0.1");
        assert_eq!(!is_loopback_bind(host), exposed, "{text}");
    }
    for bad in ["", "::1:13389", "[::1]", "a b:1", "/tmp/s", "h:1:2"] {
        assert!(parse_listen(bad).is_err(), "{bad:?}");
        assert!(parse_dynamic(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn seconds_or_never() {
    use std::time::Duration;
    assert_eq!(
        parse_seconds_or_never("failback", "60"),
        Ok(Some(Duration::from_secs(60)))
    );
    assert_eq!(
        parse_seconds_or_never("failback", "0"),
        Ok(Some(Duration::ZERO))
    );
    assert_eq!(parse_seconds_or_never("failback", "Never"), Ok(None));
    let e = parse_seconds_or_never("failback", "-1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid failback `-1`: expected a number of seconds or `never`"
    );
    assert!(parse_seconds_or_never("failback", "1.5").is_err());
    assert!(parse_seconds_or_never("failback", "").is_err());
}
