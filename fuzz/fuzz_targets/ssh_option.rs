//! `-o Key=Value` (`SshOptions::apply_kv`), one option per input line, all into one
//! `SshOptions` as repeated `-o` flags are: values accepted are well formed (ports, timeouts,
//! forwards, jump lists, ciphers), keywords are case-insensitive, the first value wins, and
//! `hop_options` never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::spec::{parse_forward, parse_jump_list};
use tunnelkit_core::SshOptions;

fn well_formed(o: &SshOptions) {
    assert!(o.port != Some(0));
    assert!(o.connect_timeout.is_none_or(|t| t.as_secs() >= 1));
    assert!(o.connection_attempts != Some(0));
    assert!(o.server_alive_count_max != Some(0));
    for f in &o.local_forwards {
        assert!(parse_forward(f).is_ok(), "LocalForward kept {f:?}");
    }
    if let Some(j) = o.proxy_jump.as_deref().filter(|j| !j.is_empty()) {
        assert!(parse_jump_list(j).is_ok(), "ProxyJump kept {j:?}");
    }
    for interactive in [false, true] {
        let env = tunnelkit_core::Environment {
            local_user: "fuzz".into(),
            home: "/home/fuzz".into(),
            sources: Default::default(),
            shell: "/bin/sh".into(),
            interactive,
            agent_socket: None,
        };
        let _ = o.hop_options(&env);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut all = SshOptions::default();
    for line in s.split('\n') {
        let before = all.clone();
        let result = all.apply_kv(line);
        if result.is_err() {
            assert_eq!(all, before, "a refused {line:?} changed the options");
        }
        // Alone, and with the keyword in upper case: the same outcome.
        let mut one = SshOptions::default();
        let alone = one.apply_kv(line);
        assert_eq!(
            alone.is_ok(),
            result.is_ok(),
            "{line:?} depends on earlier options"
        );
        let t = line.trim_start();
        let end = t
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(t.len());
        let upper = format!("{}{}", t[..end].to_ascii_uppercase(), &t[end..]);
        let mut up = SshOptions::default();
        let upper_result = up.apply_kv(&upper);
        assert_eq!(upper_result.is_ok(), alone.is_ok(), "{line:?} vs {upper:?}");
        if alone.is_ok() {
            assert_eq!(up, one, "{line:?} vs {upper:?}");
            // Applying it again changes nothing but the lists that accumulate.
            let mut twice = one.clone();
            twice.apply_kv(line).expect("accepted once, accepted twice");
            assert_eq!(twice.user, one.user);
            assert_eq!(twice.port, one.port);
            assert_eq!(twice.proxy_jump, one.proxy_jump);
            assert_eq!(twice.ciphers, one.ciphers);
        }
        well_formed(&one);
    }
    well_formed(&all);
});
