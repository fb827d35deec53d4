//! A crate outside this workspace that depends on tunnelkit-core by path, with no `[patch]`, gets
//! the flow-control fork of russh (`tunnelkit-russh`, vendor/README.md) and builds.
//!
//! The first wave used `[patch.crates-io]`, which reaches only this workspace: an embedder silently
//! got upstream russh, where one stalled reader freezes a whole SSH connection.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("tests/ has a parent"))
}

/// Writes an embedder crate into `dir`: the dependency of docs/embedding.md, as an outside program would hold it.
fn write_embedder(dir: &Path, root: &Path) {
    let core = root.join("tunnelkit-core");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"outside-embedder\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\ntunnelkit-core = {{ path = {core:?} }}\n\
             tokio = {{ version = \"1\", features = [\"full\"] }}\n\
             tokio-util = \"0.7\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    let forward = tunnelkit_core::spec::parse_forward(\"13389:winserver:3389\");\n    \
         println!(\"{}\", forward.is_ok());\n}\n",
    )
    .unwrap();
    // The workspace's lock file, so that resolution picks the versions already downloaded.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

fn cargo(dir: &Path, args: &[&str], target_dir: &Path) -> std::process::Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"))
}

#[test]
fn an_outside_crate_gets_the_flow_control_fork_and_builds() {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    write_embedder(dir.path(), &root);
    // Its own target directory (not the one this test runs from, which cargo may hold locked),
    // kept between runs so that a second run checks in seconds.
    let target = root.join("target").join("embedder-check");

    let tree = cargo(
        dir.path(),
        &["tree", "--offline", "--prefix", "none", "-e", "normal"],
        &target,
    );
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let vendor = root.join("vendor").join("russh");
    assert!(
        text.lines()
            .any(|l| l.starts_with("tunnelkit-russh v0.65.1 (")
                && l.contains(&*vendor.to_string_lossy())),
        "the embedder's graph lacks tunnelkit-russh from {}:\n{text}",
        vendor.display()
    );
    assert!(
        !text.lines().any(|l| l.starts_with("russh v")),
        "the embedder's graph holds upstream russh:\n{text}"
    );

    let check = cargo(dir.path(), &["check", "--offline", "--quiet"], &target);
    assert!(
        check.status.success(),
        "the embedder does not build: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}
