//! Inputs found by the fuzz targets in `fuzz/` (docs/fuzzing.md), each kept as a literal so the
//! bug it showed stays fixed. Each test names its target and what went wrong.

use tunnelkit_core::session::hostkey::{append, check, PublicKey, Verdict};
use tunnelkit_core::spec::parse_hop;

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILZc+CFqfWDQUAo94Fo6kBxZjt7lIK4ewWqIgfQtOW4e";

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

/// known_hosts: a key learned for the name `` (an empty `HostKeyAlias`) was written unhashed
/// as ` ssh-ed25519 ...`, a line that reads back as the host pattern `ssh-ed25519`: the key was
/// never known afterwards. Names that cannot be written as themselves are refused unhashed;
/// hashed, any name works.
#[test]
fn learned_keys_are_known_afterwards_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = PublicKey::from_openssh(ED25519).unwrap();
    for name in ["", "a b", "a,b", "*", "h?st", "!h", "#h", "@h", "|1|x"] {
        let file = dir.path().join("known_hosts");
        let _ = std::fs::remove_file(&file);
        let e = append(&file, name, &key, false).unwrap_err();
        assert!(e.to_string().contains("HashKnownHosts"), "{name:?}: {e}");
        append(&file, name, &key, true).unwrap();
        let files = [file];
        assert_eq!(
            check(&files, name, &key).unwrap(),
            Verdict::Known,
            "{name:?}"
        );
        assert!(
            !matches!(
                check(&files, "other.example", &key).unwrap(),
                Verdict::Known
            ),
            "{name:?}"
        );
    }
}
