//! Inputs found by the fuzz targets in `fuzz/` (docs/fuzzing.md), each kept as a literal so the
//! bug it showed stays fixed. Each test names its target and what went wrong.

use tunnelkit_core::spec::parse_hop;

/// hop_spec: `ssh://ssh://a@h` was a hop with the user `ssh://a`, which prints as `ssh://a@h`,
/// which parses as the user `a`. A user name never contains '/'.
#[test]
fn hop_user_with_a_slash_is_refused() {
    let found = "ssh://ssh://a,m[iN@[2008:1]:2200/a,m[iN@[2008:1]:2200/";
    for input in [found, "ssh://ssh://a@h", "a/b@h"] {
        let e = parse_hop(input).unwrap_err();
        assert!(e.reason.contains("'/'"), "{input}: {e}");
    }
    // A URI's trailing slash is still fine.
    assert_eq!(parse_hop("ssh://a@h/").unwrap().to_string(), "a@h");
}
