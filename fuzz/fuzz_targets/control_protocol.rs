//! The agent's control socket (`protocol::decode_request`, `decode_client_message`,
//! `decode_reply`): any bytes are decoded or refused with a reason; what is decoded encodes
//! back (`encode_request`, `encode_client_message`, `encode_reply`: with the protocol version)
//! to the same request, answer or reply; a request carrying the input as a profile name survives
//! the trip through JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnelkit_agent::protocol::{
    decode_client_message, decode_reply, decode_request, encode_client_message, encode_reply,
    encode_request, ClientMessage, Request,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(&r)), Ok(r));
    }
    if let Ok(m) = decode_client_message(data) {
        assert_eq!(decode_client_message(&encode_client_message(&m)), Ok(m));
    }
    if let Ok(r) = decode_reply(data) {
        assert_eq!(decode_reply(&encode_reply(&r)), Ok(r));
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
            assert_eq!(decode_request(&encode_request(&r)), Ok(r));
        }
        let m = ClientMessage::Answer { value: Some(name) };
        assert_eq!(decode_client_message(&encode_client_message(&m)), Ok(m));
    }
});
