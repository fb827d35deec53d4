//! Hops and jump lists (`spec::parse_hop`, `parse_jump_list`): an accepted hop has a host and a
//! non-zero port if any, prints back to itself, and a jump list prints back to the same list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::spec::{parse_hop, parse_jump_list, HopSpec};

fn well_formed(input: &str, h: &HopSpec) {
    assert!(!h.host.is_empty(), "{input:?} -> {h:?}");
    assert!(h.port != Some(0), "{input:?} -> {h:?}");
    assert!(h.user.as_deref() != Some(""), "{input:?} -> {h:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = parse_hop(s) {
        well_formed(s, &h);
        let printed = h.to_string();
        assert_eq!(
            parse_hop(&printed).as_ref(),
            Ok(&h),
            "{s:?} printed {printed:?}"
        );
    }
    if let Ok(list) = parse_jump_list(s) {
        for h in &list {
            well_formed(s, h);
        }
        let printed = list
            .iter()
            .map(HopSpec::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // One hop named `none` prints as the word that means "no jump hosts", as in ssh.
        if !printed.eq_ignore_ascii_case("none") && !list.is_empty() {
            assert_eq!(
                parse_jump_list(&printed).as_ref(),
                Ok(&list),
                "{s:?} printed {printed:?}"
            );
        }
    }
});
