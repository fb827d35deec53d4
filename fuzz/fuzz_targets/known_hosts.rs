//! known_hosts files (`session::hostkey::check`, `known_algorithms`, `append`). Input: the name
//! looked up on the first line, the file's bytes after it. Checks: a key is `Known` or
//! `Revoked` only if the file holds its base64; `known_algorithms` lists the algorithm of a
//! `Known` key; a key appended for a name (hashed or not, after whatever the file held) is then
//! `Known` (or still `Revoked`) for that name, and appending never changes what the file says
//! about the key for another name.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tunnelkit_core::session::hostkey::{append, check, known_algorithms, PublicKey, Verdict};

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILZc+CFqfWDQUAo94Fo6kBxZjt7lIK4ewWqIgfQtOW4e";
const OTHER_NAME: &str = "other.fuzz.example";

struct Env {
    _dir: tempfile::TempDir,
    file: PathBuf,
    key: PublicKey,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("known_hosts");
        let key = PublicKey::from_openssh(ED25519).expect("the fixed key parses");
        Env {
            _dir: dir,
            file,
            key,
        }
    })
}

fn holds_key(content: &[u8]) -> bool {
    let b64 = ED25519.split(' ').nth(1).unwrap_or_default().as_bytes();
    content.windows(b64.len()).any(|w| w == b64)
}

fuzz_target!(|data: &[u8]| {
    let (name, content) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let e = env();
    let files = [e.file.clone()];
    std::fs::write(&e.file, content).expect("write known_hosts");
    let verdict = check(&files, name, &e.key).expect("check");
    let algorithms = known_algorithms(&files, name).expect("known_algorithms");
    match &verdict {
        Verdict::Known => {
            assert!(holds_key(content), "Known without the key in the file");
            assert!(algorithms.contains(&e.key.algorithm()), "{algorithms:?}");
        }
        Verdict::Revoked { .. } => assert!(holds_key(content), "Revoked without the key"),
        Verdict::Changed { .. } | Verdict::Unknown { .. } => {}
    }
    let other_before = check(&files, OTHER_NAME, &e.key).expect("check other");

    let hashed = name.len() % 2 == 1;
    if append(&e.file, name, &e.key, hashed).is_err() {
        return;
    }
    let after = check(&files, name, &e.key).expect("check after append");
    assert!(
        matches!(after, Verdict::Known | Verdict::Revoked { .. }),
        "appended {name:?} (hashed: {hashed}), then {after:?}"
    );
    if !name.eq_ignore_ascii_case(OTHER_NAME) {
        let other_after = check(&files, OTHER_NAME, &e.key).expect("check other after");
        assert_eq!(
            other_before, other_after,
            "appending {name:?} (hashed: {hashed}) changed the verdict for {OTHER_NAME}"
        );
    }
});
