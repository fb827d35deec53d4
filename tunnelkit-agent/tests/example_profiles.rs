//! Every example profile shipped in `profiles/` loads and means what its comments say.

use std::path::Path;

use tunnelkit_agent::profile::load;
use tunnelkit_core::ForwardKind;

#[test]
fn every_example_profile_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let p = load(&path, "me").unwrap_or_else(|e| panic!("{e}"));
            assert!(!p.description.is_empty(), "{} has a description", p.name);
            names.push(p.name);
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "dr-pair",
            "finance-rdp",
            "lab-vnc",
            "nated-rdp",
            "web-consoles"
        ]
    );
}

#[test]
fn the_examples_say_what_they_do() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let rdp = load(&dir.join("finance-rdp.toml"), "me").unwrap();
    assert!(rdp.autostart);
    assert_eq!(rdp.config.routes.len(), 2);
    assert_eq!(rdp.config.forwards[0].bind_port, 13389);
    assert_eq!(
        rdp.config.forwards[0]
            .target_for("dr-frankfurt")
            .unwrap()
            .host,
        "app.fra.internal"
    );
    let vnc = load(&dir.join("lab-vnc.toml"), "me").unwrap();
    assert_eq!(vnc.config.forwards[0].bind_port, 5901);
    assert_eq!(
        vnc.config.forwards[0].target_for("primary").unwrap().port,
        5901
    );
    let pair = load(&dir.join("dr-pair.toml"), "me").unwrap();
    assert_eq!(pair.config.routes[1].name, "site-b");
    assert_eq!(pair.config.routes[1].hops.len(), 2);
    assert_eq!(pair.config.route_wait.as_secs(), 15);
    let socks = load(&dir.join("web-consoles.toml"), "me").unwrap();
    let f = &socks.config.forwards[0];
    assert_eq!(f.kind, ForwardKind::Dynamic);
    assert_eq!(f.bind_label(), "127.0.0.1:1080");
    assert_eq!(f.max_connections, 256);
    assert_eq!(socks.config.routes.len(), 2);
    let nated = load(&dir.join("nated-rdp.toml"), "me").unwrap();
    assert!(nated.config.forwards.is_empty());
    let r = &nated.config.remote_forwards[0];
    assert_eq!(r.bind_for("primary").to_string(), "localhost:13389");
    assert_eq!(r.bind_for("dr").to_string(), "0.0.0.0:13390");
    assert_eq!(r.target.port, 3389);
}
