//! `-L` and `-D` specs, profile targets and listen addresses (`spec::parse_forward`,
//! `parse_dynamic`, `parse_target`, `parse_listen`): what is accepted is well formed and prints
//! back to itself, and a forward's remote side is also a valid target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::spec::{bracket, parse_dynamic, parse_forward, parse_listen, parse_target};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = parse_forward(s) {
        assert!(f.remote_port != 0, "{s:?} -> {f:?}");
        assert!(!f.remote_host.is_empty(), "{s:?} -> {f:?}");
        assert!(f.bind_host.as_deref() != Some(""), "{s:?} -> {f:?}");
        let printed = f.to_string();
        assert_eq!(
            parse_forward(&printed).as_ref(),
            Ok(&f),
            "{s:?} printed {printed:?}"
        );
        let target = format!("{}:{}", bracket(&f.remote_host), f.remote_port);
        assert_eq!(
            parse_target(&target),
            Ok((f.remote_host.clone(), f.remote_port)),
            "{s:?}: the -L remote side is not a valid profile target"
        );
    }
    if let Ok(d) = parse_dynamic(s) {
        assert!(d.bind_host.as_deref() != Some(""), "{s:?} -> {d:?}");
        let printed = d.to_string();
        assert_eq!(
            parse_dynamic(&printed).as_ref(),
            Ok(&d),
            "{s:?} printed {printed:?}"
        );
    }
    if let Ok((host, port)) = parse_target(s) {
        assert!(!host.is_empty() && port != 0, "{s:?}");
        let printed = format!("{}:{port}", bracket(&host));
        assert_eq!(
            parse_target(&printed),
            Ok((host, port)),
            "{s:?} printed {printed:?}"
        );
    }
    if let Ok((host, port)) = parse_listen(s) {
        let printed = match &host {
            Some(h) => {
                assert!(!h.is_empty(), "{s:?}");
                format!("{}:{port}", bracket(h))
            }
            None => port.to_string(),
        };
        assert_eq!(
            parse_listen(&printed),
            Ok((host, port)),
            "{s:?} printed {printed:?}"
        );
    }
});
