//! The agent's control socket (`protocol::decode_request`, `decode_client_message`,
//! `decode_reply`): any bytes are decoded or refused with a reason; what is decoded encodes
//! back to the same request or answer; a request carrying the input as a profile name survives
//! the trip through JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_agent::protocol::{
    decode_client_message, decode_reply, decode_request, ClientMessage, Request,
};

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(v).expect("encode");
    line.push(b'\n');
    line
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode_request(data) {
        assert_eq!(decode_request(&encode(&r)), Ok(r));
    }
    if let Ok(m) = decode_client_message(data) {
        assert_eq!(decode_client_message(&encode(&m)), Ok(m));
    }
    if let Ok(r) = decode_reply(data) {
        decode_reply(&encode(&r)).expect("a reply encodes to a reply");
    }
    if let Ok(name) = std::str::from_utf8(data) {
        let name = name.to_string();
        for r in [
            Request::Up {
                name: name.clone(),
                interactive: true,
            },
            Request::Down { name: name.clone() },
            Request::Logs { name: name.clone() },
        ] {
            assert_eq!(decode_request(&encode(&r)), Ok(r));
        }
        let m = ClientMessage::Answer { value: Some(name) };
        assert_eq!(decode_client_message(&encode(&m)), Ok(m));
    }
});
