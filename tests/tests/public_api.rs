//! The library's public face is the one listed in `docs/public-api.txt`: a change to what an
//! embedder can name (an item added, removed, or a signature changed) fails this test until the
//! listing is updated with it, so that every change of the face is deliberate and reviewed.
//!
//! The listing comes from rustdoc's JSON output of `tunnelkit-core` (the stable toolchain's
//! rustdoc, its unstable JSON switch allowed by `RUSTC_BOOTSTRAP=1` for that one call), read by
//! the `public-api` crate. It is built in `target/public-api`, apart from the other builds.
//! To accept a change: `TUNNELKIT_BLESS_PUBLIC_API=1 cargo test -p tunnelkit-tests --test public_api`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const LISTING: &str = "docs/public-api.txt";

#[test]
fn the_public_face_of_tunnelkit_core_is_the_one_listed_in_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = root.join("target").join("public-api");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "rustdoc",
            "-p",
            "tunnelkit-core",
            "--lib",
            "--locked",
            "--quiet",
        ])
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTDOCFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo rustdoc (JSON) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = public_api::Builder::from_rustdoc_json(target.join("doc/tunnelkit_core.json"))
        .omit_blanket_impls(true)
        .omit_auto_trait_impls(true)
        .omit_auto_derived_impls(true)
        .build()
        .expect("rustdoc JSON of tunnelkit-core read");
    let now = api.to_string();
    let path = root.join(LISTING);
    if std::env::var_os("TUNNELKIT_BLESS_PUBLIC_API").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let listed = std::fs::read_to_string(&path).unwrap_or_default();
    let (now_lines, listed_lines): (BTreeSet<&str>, BTreeSet<&str>) =
        (now.lines().collect(), listed.lines().collect());
    let added: Vec<&str> = now_lines.difference(&listed_lines).copied().collect();
    let removed: Vec<&str> = listed_lines.difference(&now_lines).copied().collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the public face of tunnelkit-core differs from {LISTING}:\n\
         added ({}):\n  {}\nremoved ({}):\n  {}\n\
         If the change is meant, update the listing with \
         `TUNNELKIT_BLESS_PUBLIC_API=1 cargo test -p tunnelkit-tests --test public_api` \
         and commit it with the change.",
        added.len(),
        added.join("\n  "),
        removed.len(),
        removed.join("\n  ")
    );
}
