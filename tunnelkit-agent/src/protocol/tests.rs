//! The protocol's table tests: versions, strictness, sizes.

use super::*;

#[test]
fn a_request_round_trips_with_its_version() {
    let r = Request::Up {
        name: "db".into(),
        interactive: true,
    };
    let l = encode_request(&r);
    assert!(l.ends_with(b"\n"));
    assert!(String::from_utf8_lossy(&l).contains("\"version\":5"));
    assert_eq!(decode_request(&l).unwrap(), r);
}

#[test]
fn a_request_without_or_with_another_version_is_named_as_such() {
    let e = decode_request(b"{\"request\":\"status\"}\n").unwrap_err();
    assert_eq!(
        e,
        ProtocolError::Version {
            theirs: None,
            from_agent: false
        }
    );
    assert!(e.to_string().starts_with(
        "the client speaks control protocol 1 (no version field), this agent speaks 5"
    ));
    let e = decode_request(b"{\"request\":\"status\",\"version\":7}").unwrap_err();
    assert!(e.to_string().contains("protocol 7"), "{e}");
    // Shape errors come first: an unknown request is malformed whatever its version.
    let e = decode_request(b"{\"request\":\"explode\"}").unwrap_err();
    assert!(e.to_string().starts_with("malformed request"), "{e}");
    let e = decode_request(b"{\"request\":\"status\",\"version\":\"2\"}").unwrap_err();
    assert!(e.to_string().contains("version is not a number"), "{e}");
}

#[test]
fn replies_round_trip_typed() {
    let replies = [
        Reply::Done {
            result: Response::Down {
                name: "a".into(),
                was_running: true,
            },
        },
        Reply::Done {
            result: Response::Reload(ReloadSummary::default()),
        },
        Reply::Done {
            result: Response::Status { profiles: vec![] },
        },
        Reply::Progress { text: "x".into() },
        Reply::Error {
            message: "no".into(),
        },
    ];
    for r in replies {
        assert_eq!(decode_reply(&encode_reply(&r)).unwrap(), r);
    }
}

#[test]
fn a_reply_from_an_agent_of_another_version_is_an_error_not_an_empty_result() {
    // What an agent before protocol versions sent for `status`.
    let old = br#"{"type":"done","result":[{"name":"a","state":"up"}]}"#;
    let e = decode_reply(old).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "the agent speaks control protocol 1 (no version field), this client speaks 5"
        ),
        "{e}"
    );
    let newer = br#"{"version":6,"type":"done","result":{"kind":"status","profiles":[]}}"#;
    assert!(decode_reply(newer)
        .unwrap_err()
        .to_string()
        .contains("protocol 6"));
    // An agent of protocol 3 (remote forwards and routes, before forwards had a kind).
    let before_kinds = br#"{"version":3,"type":"done","result":{"kind":"status","profiles":[]}}"#;
    assert_eq!(
        decode_reply(before_kinds).unwrap_err().to_string(),
        "the agent speaks control protocol 3, this client speaks 5: run the client and the \
         agent from the same tunnelkit build (restart the agent after an upgrade)"
    );
    // An agent of protocol 4 (before the `partial` and `refused` states): named, not misread.
    let before_states = br#"{"version":4,"type":"done","result":{"kind":"status","profiles":[]}}"#;
    assert!(decode_reply(before_states)
        .unwrap_err()
        .to_string()
        .starts_with("the agent speaks control protocol 4, this client speaks 5"));
    let odd = br#"{"version":5,"type":"done","result":{"kind":"teleport"}}"#;
    assert!(matches!(
        decode_reply(odd),
        Err(ProtocolError::Malformed { what: "reply", .. })
    ));
}

#[test]
fn a_repeated_or_unknown_key_in_a_request_is_refused_by_name() {
    let dup = br#"{"request":"down","name":"a","name":"b","version":5}"#;
    let e = decode_request(dup).unwrap_err().to_string();
    assert!(
        e.starts_with("malformed request: duplicate key `name`"),
        "{e}"
    );
    let e = decode_request(br#"{"request":"status","version":5,"version":5}"#).unwrap_err();
    assert!(e.to_string().contains("duplicate key `version`"), "{e}");
    for (line, key) in [
        (
            &br#"{"request":"status","force":true,"version":5}"#[..],
            "force",
        ),
        (
            br#"{"request":"down","name":"a","all":true,"version":5}"#,
            "all",
        ),
        (br#"{"request":"drill","name":"a","version":5,"x":1}"#, "x"),
    ] {
        let e = decode_request(line).unwrap_err().to_string();
        assert!(e.starts_with("malformed request: unknown"), "{e}");
        assert!(e.contains(&format!("`{key}`")), "{e}");
    }
    // A key with a default may be left out.
    let ok = br#"{"request":"drill","name":"a","version":5}"#;
    assert_eq!(
        decode_request(ok).unwrap(),
        Request::Drill {
            name: "a".into(),
            stay: false
        }
    );
    let e = decode_client_message(br#"{"type":"answer","value":"y","again":1}"#);
    assert!(e.unwrap_err().to_string().contains("`again`"));
    let e = decode_client_message(br#"{"type":"answer","value":"y","value":"n"}"#);
    assert!(e.unwrap_err().to_string().contains("duplicate key `value`"));
}

#[test]
fn a_reply_far_larger_than_a_request_may_be_is_read() {
    let logs = (0..5_000)
        .map(|i| LogLine {
            unix_ms: i,
            text: "x".repeat(100),
        })
        .collect::<Vec<_>>();
    let r = Reply::Done {
        result: Response::Logs {
            name: "a".into(),
            lines: logs,
        },
    };
    let line = encode_reply(&r);
    assert!(line.len() > 8 * MAX_CLIENT_LINE, "{}", line.len());
    assert_eq!(decode_reply(&line).unwrap(), r);
    assert_eq!(
        decode_reply(&vec![b' '; MAX_AGENT_LINE + 1]),
        Err(ProtocolError::TooLong(MAX_AGENT_LINE))
    );
}

#[test]
fn oversized_and_non_utf8_lines_are_refused() {
    assert_eq!(
        decode_request(&vec![b' '; MAX_CLIENT_LINE + 1]),
        Err(ProtocolError::TooLong(MAX_CLIENT_LINE))
    );
    assert_eq!(decode_reply(b"\xff\n"), Err(ProtocolError::NotUtf8));
}
