//! Profile files (`tunnelkit_agent::profile::parse`). Checks: an error's line and column lie in
//! the text; a profile accepted has routes with hops, forwards (local ones with targets) and limits, and
//! passes `TunnelConfig::validate`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tunnelkit_agent::profile::parse;
use tunnelkit_core::ForwardKind;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(Path::new("/fuzz/profile.toml"), text, "me") {
        Ok(p) => {
            let c = &p.config;
            assert_eq!(p.name, "profile");
            assert!(!c.routes.is_empty() && !c.forwards.is_empty());
            for r in &c.routes {
                assert!(!r.hops.is_empty());
                for h in &r.hops {
                    assert!(
                        !h.host.is_empty() && h.port != 0 && !h.user.is_empty(),
                        "{h:?}"
                    );
                }
            }
            for f in &c.forwards {
                assert!(!f.bind_host.is_empty() && f.max_connections >= 1, "{f:?}");
                if let ForwardKind::Local {
                    target,
                    route_targets,
                } = &f.kind
                {
                    assert!(!target.host.is_empty() && target.port != 0, "{f:?}");
                    for (_, t) in route_targets {
                        assert!(!t.host.is_empty() && t.port != 0, "{t:?}");
                    }
                }
            }
            c.validate().expect("an accepted profile validates");
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{e} ({lines} lines)");
            let width = text
                .split('\n')
                .nth(e.line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(
                e.column >= 1 && e.column <= width + 1,
                "{e} (line of {width} chars)"
            );
        }
    }
});
