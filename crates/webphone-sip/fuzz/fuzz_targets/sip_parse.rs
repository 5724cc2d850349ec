//! SIP message parser: our bounded wrapper, the 400 builder, and a serialize/re-parse
//! round trip of everything accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone_sip::parse::{error_response, parse_message};

fuzz_target!(|data: &[u8]| {
    match parse_message(data) {
        Ok(msg) => {
            let _ = msg.header_values("Via");
            let _ = msg.request_uri();
            // What we accepted serializes and parses again without panicking.
            let _ = parse_message(&msg.to_bytes());
        }
        Err(e) => {
            if let Some(resp) = error_response(data, &e) {
                assert!(resp.starts_with(b"SIP/2.0 "));
            }
        }
    }
});
