//! Tests of the host key module (kept apart so the module reads in one sitting).
use super::*;
use crate::glob::glob;
use crate::prompt::{PromptRequest, SecretString};
use russh::keys::ssh_key::{EcdsaCurve, PrivateKey};
use std::path::Path;
use std::sync::{Arc, Mutex};
use StrictHostKeyChecking as S;

const UNKNOWN: Verdict = Verdict::Unknown {
    other_types: Vec::new(),
};
const P256: Algorithm = Algorithm::Ecdsa {
    curve: EcdsaCurve::NistP256,
};

fn key(algorithm: Algorithm) -> PublicKey {
    let private = PrivateKey::random(&mut rand::rng(), algorithm).unwrap();
    private.public_key().clone()
}

/// A known_hosts line: `hosts type base64`.
fn entry(hosts: &str, key: &PublicKey) -> String {
    format!("{hosts} {}", key.to_openssh().unwrap())
}

/// Writes `lines`, each ended by `\n`, to `dir/name`.
fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn one(file: &Path, name: &str, key: &PublicKey) -> Verdict {
    check(&[file.to_path_buf()], name, key).unwrap()
}

#[test]
fn names_fingerprints_and_wildcards() {
    assert_eq!(lookup_name("h.example", 22), "h.example");
    assert_eq!(lookup_name("h.example", 2222), "[h.example]:2222");
    let fp = fingerprint(&key(Algorithm::Ed25519));
    assert!(fp.starts_with("SHA256:") && fp.len() == 50, "{fp}");
    assert!(glob("*.ex?mple", "a.b.example", false));
    assert!(glob("a*b*c", "axbyc", false) && !glob("a*b*c", "axby", false));
    assert!(glob("*", "", false) && !glob("?", "", false));
}

#[test]
fn plain_ports_case_tabs_comments_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Algorithm::Ed25519);
    let kt = k.to_openssh().unwrap();
    let f = write(
        dir.path(),
        "known_hosts",
        &[
            "# a comment".into(),
            String::new(),
            "   \t".into(),
            "garbage".into(),
            "only.host ssh-ed25519".into(),
            "bad.key.example ssh-ed25519 AAAAnotbase64!".into(),
            format!("@bogus marked.example {kt}"),
            format!("|1|c2FsdA==|aGFzaA== {kt}"),
            format!("Plain.Example,alias {kt} a comment"),
            format!("  [ported.example]:2222\t{kt}"),
            format!("tabs.example\t\t{}", kt.replacen(' ', "\t \t", 1)),
            format!("@cert-authority ca.example {kt}"),
        ],
    );
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(b"utf8.example \xff\xfe\n");
    std::fs::write(&f, bytes).unwrap();
    let files = vec![dir.path().join("missing"), f];
    let v = |n: &str| check(&files, n, &k).unwrap();
    assert_eq!(v("plain.example"), Verdict::Known);
    assert_eq!(v("ALIAS"), Verdict::Known, "names match case-insensitively");
    assert_eq!(v("[ported.example]:2222"), Verdict::Known);
    assert_eq!(v("ported.example"), UNKNOWN, "port 22 is another name");
    assert_eq!(v("tabs.example"), Verdict::Known);
    for skipped in [
        "only.host",
        "bad.key.example",
        "marked.example",
        "ca.example",
    ] {
        assert_eq!(v(skipped), UNKNOWN, "{skipped}");
    }
}

#[test]
fn wildcards_and_negation() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Algorithm::Ed25519);
    let f = write(
        dir.path(),
        "kh",
        &[
            entry("*.wild.example,!secret.wild.example,db?.example", &k),
            entry("[*.ports.example]:*,!*:22", &k),
        ],
    );
    for known in [
        "a.wild.example",
        "A.B.WILD.example",
        "db1.example",
        "[x.ports.example]:2",
    ] {
        assert_eq!(one(&f, known, &k), Verdict::Known, "{known}");
    }
    for name in [
        "db12.example",
        "wild.example",
        "secret.wild.example",
        "[x.ports.example]:22",
    ] {
        assert_eq!(one(&f, name, &k), UNKNOWN, "{name}: a negated match wins");
    }
}

#[test]
fn revoked_changed_and_other_types() {
    let dir = tempfile::tempdir().unwrap();
    let [k, old, older] = [(); 3].map(|_| key(Algorithm::Ed25519));
    let ecdsa = key(P256);
    let first = write(dir.path(), "first", &[entry("other.example", &old)]);
    let second = write(
        dir.path(),
        "second",
        &[
            entry("h.example", &older),
            entry("h.example,other.example", &ecdsa),
            "# comment".into(),
            entry("H.example", &old),
            entry("@revoked *", &ecdsa),
            entry("@revoked elsewhere.example", &k),
        ],
    );
    let files = [first, second.clone()];
    let at = |line| (second.clone(), line);
    let changed = |(file, line)| Verdict::Changed { file, line };
    let revoked = |(file, line)| Verdict::Revoked { file, line };
    // The last differing line of the same algorithm is reported, as ssh does.
    assert_eq!(check(&files, "h.example", &k).unwrap(), changed(at(4)));
    // `@revoked` applies where its patterns match (`*`: everywhere), over a recorded key.
    assert_eq!(check(&files, "h.example", &ecdsa).unwrap(), revoked(at(5)));
    assert_eq!(check(&files, "anything", &ecdsa).unwrap(), revoked(at(5)));
    assert_eq!(
        check(&files, "elsewhere.example", &k).unwrap(),
        revoked(at(6))
    );
    assert_eq!(
        check(&files, "other.example", &old).unwrap(),
        Verdict::Known
    );
    let algorithms = known_algorithms(&files, "H.EXAMPLE").unwrap();
    assert_eq!(
        algorithms,
        [Algorithm::Ed25519, P256],
        "@revoked lines are not known keys"
    );
    // Only a key of another algorithm for the name: unknown, and that line is listed.
    let third = write(dir.path(), "third", &[entry("e.example", &ecdsa)]);
    let other_types = vec![(third.clone(), 1, "ecdsa-sha2-nistp256".to_string())];
    assert_eq!(
        one(&third, "e.example", &k),
        Verdict::Unknown { other_types }
    );
}

#[test]
fn io_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Algorithm::Ed25519);
    let not_a_file = dir.path().join("known_hosts");
    std::fs::create_dir(&not_a_file).unwrap();
    let under_a_file = write(dir.path(), "f", &[]).join("known_hosts");
    for e in [
        check(std::slice::from_ref(&not_a_file), "h", &k).unwrap_err(),
        append(&not_a_file, "h", &k, false).unwrap_err(),
        append(&under_a_file, "h", &k, false).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn append_creates_private_files_and_hashes() {
    use crate::platform::files::{mode_bits, OWNER_ONLY_MODES};
    let dir = tempfile::tempdir().unwrap();
    let k = key(Algorithm::Ed25519);
    let f = dir.path().join("new/.ssh/known_hosts");
    append(&f, "[H.Example]:2200", &k, true).unwrap();
    let written = std::fs::read_to_string(&f).unwrap();
    assert!(
        written.starts_with("|1|") && !written.contains("xample"),
        "{written}"
    );
    assert!(written.ends_with(&(entry("", &k) + "\n")), "{written}");
    let mode = |p: &Path| mode_bits(&std::fs::metadata(p).unwrap());
    assert_eq!((mode(&f), mode(f.parent().unwrap())), OWNER_ONLY_MODES);
    assert_eq!(one(&f, "[h.example]:2200", &k), Verdict::Known);
    assert_eq!(one(&f, "[H.EXAMPLE]:2200", &k), Verdict::Known);
    assert_eq!(one(&f, "h.example", &k), UNKNOWN);
    // A plain entry, lowercased, after a hand-edited last line without its newline.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "# no newline").unwrap();
    append(&plain, "Plain.Example", &k, false).unwrap();
    let written = std::fs::read_to_string(&plain).unwrap();
    assert_eq!(
        written,
        format!("# no newline\n{}\n", entry("plain.example", &k))
    );
}

/// ssh-keygen finds what `append` hashes, and `check` finds what ssh-keygen -H hashes.
#[test]
fn hashed_names_agree_with_ssh_keygen() {
    let ssh_keygen = |args: &[&str], file: &Path| {
        std::process::Command::new("ssh-keygen")
            .args(args)
            .arg("-f")
            .arg(file)
            .output()
            .expect("this test needs ssh-keygen: install the openssh-client package")
    };
    let dir = tempfile::tempdir().unwrap();
    let k = key(Algorithm::Ed25519);
    let ours = dir.path().join("ours");
    append(&ours, "[KG.example]:2222", &k, true).unwrap();
    let found = ssh_keygen(&["-F", "[kg.example]:2222"], &ours);
    assert!(
        found.status.success() && !found.stdout.is_empty(),
        "{found:?}"
    );
    let theirs = write(
        dir.path(),
        "theirs",
        &[entry("kg.example,[kg.example]:2222", &k)],
    );
    let hashed = ssh_keygen(&["-H"], &theirs);
    assert!(hashed.status.success(), "ssh-keygen -H: {hashed:?}");
    let written = std::fs::read_to_string(&theirs).unwrap();
    assert!(
        written.starts_with("|1|") && !written.contains("kg.example"),
        "{written}"
    );
    assert_eq!(one(&theirs, "kg.example", &k), Verdict::Known);
    assert_eq!(one(&theirs, "[KG.example]:2222", &k), Verdict::Known);
    assert_eq!(one(&theirs, "[kg.example]:22", &k), UNKNOWN);
}

/// Answers every question with `answer` and records the questions.
struct Person {
    answer: Option<bool>,
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Prompter for Person {
    async fn secret(&self, _: &PromptRequest) -> Result<Option<SecretString>, crate::PromptError> {
        Ok(None)
    }
    async fn confirm(&self, q: &Confirm) -> Result<Option<bool>, crate::PromptError> {
        self.asked.lock().unwrap().push(q.question.clone());
        Ok(self.answer)
    }
}

/// Verifies `key` for `[h.example]:2222` (or `alias`) with `dir/known_hosts` as the only
/// file; returns the outcome and the questions asked.
async fn run(
    dir: &Path,
    strict: S,
    key: &PublicKey,
    answer: Option<bool>,
    alias: Option<&str>,
) -> (crate::Result<()>, Vec<String>) {
    let mut o = crate::config::HopOptions::default();
    o.host_keys.user_files = vec![dir.join("known_hosts")];
    o.host_keys.global_files = Vec::new();
    o.host_keys.strict = strict;
    let mut hop = Hop::new("u", "h.example", 2222, Arc::new(o));
    hop.host_key_alias = alias.map(String::from);
    let person = Person {
        answer,
        asked: Mutex::new(Vec::new()),
    };
    let result = verify(&hop, key, &person).await;
    (result, person.asked.into_inner().unwrap())
}

fn why(result: crate::Result<()>) -> String {
    match result {
        Err(Error::HostKeyUnknown { why, .. }) => why,
        other => panic!("expected HostKeyUnknown, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_host_under_each_policy() {
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let k = key(Algorithm::Ed25519);
    let fp = fingerprint(&k);
    let (e, asked) = run(dir.path(), S::Yes, &k, Some(true), None).await;
    let text = e.as_ref().unwrap_err().to_string();
    let expected = format!(
        "no key for [h.example]:2222 in {} (ED25519 key {fp}); StrictHostKeyChecking=yes",
        kh.display()
    );
    assert!(text.ends_with(&expected) && asked.is_empty(), "{text}");
    let (ok, _) = run(dir.path(), S::No, &k, None, None).await;
    assert!(
        ok.is_ok() && !kh.exists(),
        "StrictHostKeyChecking=no never writes"
    );

    let (e, asked) = run(dir.path(), S::Ask, &k, None, None).await;
    let nobody = "StrictHostKeyChecking=ask and nobody can be asked (no TTY or BatchMode)";
    assert_eq!(why(e), nobody);
    let question = format!(
        "The authenticity of host '[h.example]:2222' can't be established.\n\
         ED25519 key fingerprint is {fp}.\n\
         Are you sure you want to continue connecting (yes/no)? "
    );
    assert_eq!(asked, vec![question]);
    let (e, _) = run(dir.path(), S::Ask, &k, Some(false), None).await;
    assert_eq!(why(e), "you answered no");
    assert!(!kh.exists());
    let (ok, _) = run(dir.path(), S::Ask, &k, Some(true), None).await;
    assert!(ok.is_ok() && one(&kh, "[h.example]:2222", &k) == Verdict::Known);
    // Now known: accepted under the strictest policy, without a question.
    let (ok, asked) = run(dir.path(), S::Yes, &k, Some(false), None).await;
    assert!(ok.is_ok() && asked.is_empty());
}

#[tokio::test]
async fn accept_new_learns_a_hashed_entry_under_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let k = key(Algorithm::Ed25519);
    let (ok, _) = run(dir.path(), S::AcceptNew, &k, None, Some("Alias.Example")).await;
    ok.unwrap();
    let learned = std::fs::read_to_string(&kh).unwrap();
    assert!(
        learned.starts_with("|1|") && learned.lines().count() == 1,
        "{learned}"
    );
    assert_eq!(one(&kh, "alias.example", &k), Verdict::Known);
    assert_eq!(
        one(&kh, "[h.example]:2222", &k),
        UNKNOWN,
        "the alias replaces the name"
    );
    let (ok, _) = run(dir.path(), S::Yes, &k, None, Some("alias.example")).await;
    ok.unwrap();
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        learned,
        "nothing more written"
    );
}

#[tokio::test]
async fn changed_and_revoked_are_refused_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let [old, new, bad] = [(); 3].map(|_| key(Algorithm::Ed25519));
    let lines = [
        "# comment".into(),
        entry("[h.example]:2222", &old),
        entry("@revoked *", &bad),
    ];
    let kh = write(dir.path(), "known_hosts", &lines);
    for s in [S::Yes, S::Ask, S::AcceptNew, S::No] {
        let (e, asked) = run(dir.path(), s, &new, Some(true), None).await;
        let e = e.unwrap_err();
        assert!(
            matches!(e, Error::HostKeyChanged { line: 2, .. }),
            "{s:?}: {e}"
        );
        assert!(
            e.to_string().contains(&fingerprint(&new)) && asked.is_empty(),
            "{e}"
        );
        let (e, asked) = run(dir.path(), s, &bad, Some(true), None).await;
        let e = e.unwrap_err();
        assert!(
            matches!(e, Error::HostKeyRevoked { line: 3, .. }),
            "{s:?}: {e}"
        );
        assert!(asked.is_empty(), "{s:?}: nobody is asked");
    }
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        lines.join("\n") + "\n"
    );
}

#[tokio::test]
async fn other_key_types_are_named_and_never_learned_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let kh = write(
        dir.path(),
        "known_hosts",
        &[entry("[h.example]:2222", &key(P256))],
    );
    let k = key(Algorithm::Ed25519);
    let listed = format!(
        "keys of other types are known for this host: ecdsa-sha2-nistp256 at {}:1",
        kh.display()
    );
    let (e, _) = run(dir.path(), S::AcceptNew, &k, None, None).await;
    assert!(why(e).ends_with(&listed));
    let (e, _) = run(dir.path(), S::Yes, &k, None, None).await;
    assert_eq!(why(e), format!("StrictHostKeyChecking=yes; {listed}"));
    let (ok, asked) = run(dir.path(), S::Ask, &k, Some(true), None).await;
    ok.unwrap();
    let expected = "The authenticity of host '[h.example]:2222' can't be established\n\
                    but keys of different type are already known for this host.\nED25519 key";
    assert!(asked[0].starts_with(expected), "{asked:?}");
    assert_eq!(one(&kh, "[h.example]:2222", &k), Verdict::Known);
}
