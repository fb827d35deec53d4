//! Every parser of outside input, fed arbitrary text: it returns a value or an error, never
//! panics, and what it accepts is well formed (round trips where a printed form exists).
//! Case counts are proptest's (`PROPTEST_CASES` raises them for a longer run).

use proptest::prelude::*;
use tunnelkit_core::socks::{Handshake, Step, MAX_HANDSHAKE};
use tunnelkit_core::spec::{
    parse_dynamic, parse_forward, parse_hop, parse_jump_list, parse_listen, parse_target,
};
use tunnelkit_core::ssh_config::{evaluate, MatchExec, Query, Sources};
use tunnelkit_core::SshOptions;

/// Text shaped like the inputs: hosts, ports, brackets, separators, and any character.
fn spec_like() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,64}",
        "[a-z0-9@:\\[\\]\\.,*/!% -]{0,40}",
        "([a-z]{1,8}@)?(\\[[0-9a-f:]{0,20}\\]|[a-z0-9.-]{1,16})(:[0-9]{0,6})?",
        "([0-9a-z.*\\[\\]:]{0,12}:)?[0-9]{0,6}:[a-z0-9.\\[\\]:]{0,16}:[0-9]{0,6}",
    ]
}

proptest! {
    #[test]
    fn hop_specs(s in spec_like()) {
        if let Ok(h) = parse_hop(&s) {
            prop_assert!(!h.host.is_empty());
            // What we print, we parse back to the same thing.
            prop_assert_eq!(parse_hop(&h.to_string()).unwrap(), h);
        }
    }

    #[test]
    fn jump_lists(s in spec_like()) {
        if let Ok(list) = parse_jump_list(&s) {
            for h in list {
                prop_assert!(!h.host.is_empty());
            }
        }
    }

    #[test]
    fn forward_specs(s in spec_like()) {
        if let Ok(f) = parse_forward(&s) {
            prop_assert!(f.remote_port != 0);
            prop_assert_eq!(parse_forward(&f.to_string()).unwrap(), f);
        }
    }

    #[test]
    fn dynamic_specs(s in spec_like()) {
        if let Ok(d) = parse_dynamic(&s) {
            prop_assert_eq!(parse_dynamic(&d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn socks_handshakes(bytes in prop::collection::vec(any::<u8>(), 0..600), first in 0u8..6) {
        // Mostly SOCKS-shaped: the first byte 4 or 5 more often than not.
        let mut input = bytes;
        if let Some(b) = input.first_mut() {
            *b = [4, 5, 5, *b, 4, 5][usize::from(first)];
        }
        let mut hs = Handshake::new();
        let mut buf: &[u8] = &input;
        for _ in 0..4 {
            match hs.step(buf) {
                Step::NeedMore => {
                    prop_assert!(buf.len() <= MAX_HANDSHAKE);
                    break;
                }
                Step::Send { consumed, .. } => buf = &buf[consumed..],
                Step::Connect { request, consumed } => {
                    prop_assert!(consumed <= buf.len() && request.port != 0);
                    break;
                }
                Step::Refuse { .. } => break,
            }
        }
    }

    #[test]
    fn targets_and_listens(s in spec_like()) {
        if let Ok((host, port)) = parse_target(&s) {
            prop_assert!(!host.is_empty() && port != 0);
        }
        let _ = parse_listen(&s);
    }

    #[test]
    fn dash_o_options(k in "[A-Za-z]{0,24}", sep in "[ =\t]{0,3}", v in ".{0,40}") {
        let mut o = SshOptions::default();
        let _ = o.apply_kv(&format!("{k}{sep}{v}"));
        let _ = o.hop_options(&tunnelkit_core::Environment::from_process(None, false));
    }

    #[test]
    fn ssh_config_files(lines in proptest::collection::vec(prop_oneof![
        ".{0,60}",
        "(Host|Match|HostName|User|Port|IdentityFile|ProxyJump|LocalForward|Include) [ -~]{0,30}",
        "Match (host|user|originalhost|localuser|all|final|canonical|!host) [ -~]{0,20}",
    ], 0..12), host in "[a-zA-Z0-9.-]{1,12}") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, lines.join("\n")).unwrap();
        let q = Query { host, local_user: "me".into(), home: dir.path().to_path_buf(), exec: MatchExec::Refuse };
        if let Ok(c) = evaluate(&q, SshOptions::default(), &Sources::file(&file)) {
            let _ = tunnelkit_core::ssh_config::print_g(&c, std::path::Path::new("/home/u"));
        }
    }

    #[test]
    fn known_hosts_lines(lines in proptest::collection::vec(prop_oneof![
        ".{0,80}",
        "(@revoked |@cert-authority )?[a-z0-9.*?!,\\[\\]:|=+/]{0,30} (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]{0,80}",
    ], 0..10), name in "[a-z0-9.\\[\\]:]{1,20}") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, lines.join("\n")).unwrap();
        let key = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
        let v = tunnelkit_core::session::hostkey::check(&[file], &name, key.public_key()).unwrap();
        // A fresh random key can never be "known" from random text.
        prop_assert!(!matches!(v, tunnelkit_core::session::hostkey::Verdict::Known));
    }
}
