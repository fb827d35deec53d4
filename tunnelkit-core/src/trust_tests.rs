use super::*;
use std::os::unix::fs::PermissionsExt;

const ME: u32 = 1000;
const OTHER: u32 = 65534;

#[test]
fn the_rule_on_one_object() {
    use Flaw::*;
    use Owners::*;
    use Place::*;
    // (owner, mode, owners, place, expected)
    let table: &[(u32, u32, Owners, Place, Option<Flaw>)] = &[
        (ME, 0o100600, UserOrRoot, Target, None),
        (ME, 0o100644, UserOrRoot, Target, None),
        (0, 0o040755, UserOrRoot, Target, None),
        (0, 0o040755, UserOnly, Target, Some(Owner)),
        (OTHER, 0o100600, UserOrRoot, Target, Some(Owner)),
        (OTHER, 0o040755, UserOrRoot, Ancestor, Some(Owner)),
        (ME, 0o100666, UserOrRoot, Target, Some(Writable)),
        (ME, 0o100620, UserOrRoot, Target, Some(Writable)),
        (ME, 0o100602, UserOrRoot, Target, Some(Writable)),
        (ME, 0o040777, UserOrRoot, Target, Some(Writable)),
        (ME, 0o040777, UserOrRoot, Ancestor, Some(Writable)),
        // /tmp: passing through a sticky world-writable directory is safe...
        (0, 0o041777, UserOrRoot, Ancestor, None),
        // ...but it is never trusted as the file or directory itself.
        (0, 0o041777, UserOrRoot, Target, Some(Writable)),
        // Read and execute bits for others do not matter.
        (ME, 0o040755, UserOnly, Target, None),
        (ME, 0o040700, UserOnly, Target, None),
    ];
    for (owner, mode, owners, place, want) in table {
        assert_eq!(
            flaw(*owner, *mode, ME, *owners, *place),
            *want,
            "owner {owner} mode {mode:o} {owners:?} {place:?}"
        );
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(p: &Path) {
    let out = std::process::Command::new("chown")
        .args(["-h", "65534"])
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success(), "chown: {out:?}");
}

/// A private directory under the temporary directory, with a profile in it.
fn site() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profiles");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o700);
    let file = dir.join("a.toml");
    std::fs::write(&file, "").unwrap();
    chmod(&file, 0o600);
    (tmp, dir, file)
}

#[test]
fn a_private_path_is_trusted_and_resolved() {
    let (_tmp, dir, file) = site();
    assert_eq!(check_path(&file).unwrap(), file.canonicalize().unwrap());
    assert_eq!(check_path(&dir).unwrap(), dir.canonicalize().unwrap());
    let e = check_path(&dir.join("missing.toml")).unwrap_err();
    assert!(e.is_missing(), "{e}");
}

#[test]
fn a_writable_file_or_directory_is_refused_with_its_mode_and_the_fix() {
    let (_tmp, dir, file) = site();
    chmod(&file, 0o666);
    let e = check_path(&file).unwrap_err();
    assert!(matches!(e, Untrusted::Writable { mode: 0o666, .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("run `chmod go-w {}`", file.display())),
        "{text}"
    );
    chmod(&file, 0o600);
    chmod(&dir, 0o777);
    // The directory is refused for itself and as the file's parent.
    for p in [&dir, &file] {
        let e = check_path(p).unwrap_err();
        assert!(
            matches!(&e, Untrusted::Writable { path, mode: 0o777, .. } if path == &dir),
            "{e}"
        );
    }
}

#[test]
fn a_foreign_owner_anywhere_on_the_path_is_refused() {
    let (_tmp, dir, file) = site();
    if current_uid() != 0 {
        // chown needs root; the integration tests (run as root) cover this too.
        assert!(matches!(check_path(Path::new("/nonexistent")), Err(e) if e.is_missing()));
        return;
    }
    chown_nobody(&dir);
    let e = check_path(&file).unwrap_err();
    assert!(
        matches!(&e, Untrusted::Owner { path, owner: Uid(65534), .. } if path == &dir),
        "{e}"
    );
    assert!(e.to_string().contains("owned by uid 65534"), "{e}");
}

#[test]
fn symbolic_links_are_followed_and_their_targets_checked() {
    let (tmp, dir, file) = site();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    std::fs::write(open.join("b.toml"), "").unwrap();
    chmod(&open.join("b.toml"), 0o600);
    // A private link into a writable directory.
    let link = dir.join("b.toml");
    std::os::unix::fs::symlink(open.join("b.toml"), &link).unwrap();
    let e = check_path(&link).unwrap_err();
    assert!(
        matches!(&e, Untrusted::Writable { path, .. } if path == &open),
        "{e}"
    );
    // A relative link to a private file is fine and resolves to it.
    let rel = dir.join("c.toml");
    std::os::unix::fs::symlink("a.toml", &rel).unwrap();
    assert_eq!(check_path(&rel).unwrap(), file.canonicalize().unwrap());
    // A directory link to the writable directory.
    let dlink = tmp.path().join("via");
    std::os::unix::fs::symlink(&open, &dlink).unwrap();
    assert!(matches!(
        check_path(&dlink),
        Err(Untrusted::Writable { .. })
    ));
    // A loop.
    let l1 = dir.join("l1");
    std::os::unix::fs::symlink("l2", &l1).unwrap();
    std::os::unix::fs::symlink("l1", dir.join("l2")).unwrap();
    assert!(matches!(check_path(&l1), Err(Untrusted::Loop { .. })));
    if current_uid() == 0 {
        // A link owned by someone else may lead anywhere they like.
        let theirs = dir.join("d.toml");
        std::os::unix::fs::symlink("a.toml", &theirs).unwrap();
        chown_nobody(&theirs);
        assert!(matches!(check_path(&theirs), Err(Untrusted::Owner { .. })));
    }
}

#[test]
fn ssh_config_rule_checks_the_file_alone() {
    let (_tmp, dir, file) = site();
    chmod(&dir, 0o777);
    // ssh's readconf.c looks at the file only.
    check_config_file(&file).unwrap();
    chmod(&file, 0o664);
    let e = check_config_file(&file).unwrap_err();
    assert!(matches!(e, Untrusted::Writable { mode: 0o664, .. }), "{e}");
}
