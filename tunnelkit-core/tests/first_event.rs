//! A library user sees a tunnel's events from the first one: `Listening` for every forward,
//! then `Connecting`, then the route's fate; no event is emitted before the receiver exists.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, AttemptFailure, Environment, Event, Forward, Hop, Services, Target, Tunnel,
    TunnelConfig,
};

fn env(home: &std::path::Path) -> Environment {
    Environment {
        local_user: "nobody".into(),
        home: home.to_path_buf(),
        sources: Default::default(),
        shell: "/bin/sh".into(),
        interactive: false,
        agent_socket: None,
    }
}

#[tokio::test]
async fn listening_is_the_first_event_and_a_refused_route_is_typed() {
    let home = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then closed, so connecting is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = TunnelConfig::builder()
        .route(
            "primary",
            [Hop::builder("127.0.0.1")
                .port(port)
                .build(&env(home.path()))
                .unwrap()],
        )
        .forward(Forward::local(0, Target::new("127.0.0.1", 5901).unwrap()))
        .forward(Forward::local(0, Target::new("127.0.0.1", 3389).unwrap()))
        .give_up_after_rounds(1)
        .build()
        .unwrap();
    let listeners = bind_forwards(&config.forwards).await.unwrap();
    let (mut handle, mut events) = Tunnel::start_subscribed(
        config,
        listeners,
        Services::default(),
        CancellationToken::new(),
    )
    .unwrap();
    let addrs: Vec<_> = handle.local_addrs().iter().map(|a| a.unwrap()).collect();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for _ in 0..64 {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the tunnel did not give up within 20 s")
            .unwrap();
        let stop = matches!(e, Event::Stopped { .. });
        seen.push(e);
        if stop {
            break;
        }
    }
    assert_eq!(
        &seen[..2],
        &[
            Event::Listening {
                forward: 0,
                local: addrs[0]
            },
            Event::Listening {
                forward: 1,
                local: addrs[1]
            },
        ],
        "events: {seen:?}"
    );
    assert!(
        matches!(&seen[2], Event::Connecting { route } if route == "primary"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::RouteFailed {
                failure: AttemptFailure::Unreachable,
                ..
            }
        )),
        "a refused connection is typed as unreachable: {seen:?}"
    );
    assert!(handle.wait().await.is_err(), "gave up after one round");
    let status = handle.status();
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["state"], "failed", "{json}");
    assert_eq!(json["forwards"][1]["local"], addrs[1].to_string(), "{json}");
}
