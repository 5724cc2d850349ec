//! The local WebSocket service's request path (webphone-cli `--serve`): one text frame is read
//! as a call (`parse_request`, the module is compiled in from the CLI's source), the reply
//! is built, and a `setparameter`/`getparameter` call goes on into the parameter store's
//! validation as the engine does. Nothing may panic; every reply is JSON with the request id.
#![no_main]

#[path = "../../../webphone-cli/src/serve/protocol.rs"]
#[allow(dead_code)]
mod protocol;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use webphone_engine::params::ParamStore;

/// The id came back unchanged; floats within serde_json's shortest-representation rounding
/// (without its `float_roundtrip` feature, `1e111` may read back one ulp away).
fn same_id(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || ((x - y) / y).abs() < 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_id(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_id(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match protocol::parse_request(text) {
        Ok(req) => {
            assert!(!req.func.trim().is_empty());
            let mut store = ParamStore::new();
            let value = match (req.func.to_ascii_lowercase().as_str(), req.args.as_slice()) {
                ("setparameter", [name, value, ..]) => {
                    let _ = store.set(name, value);
                    Value::Bool(true)
                }
                ("getparameter", [name, ..]) => Value::from(store.get(name)),
                _ => Value::from(text),
            };
            let value = protocol::redact_result(&req.func, &req.args, value);
            let reply = protocol::ok_reply(&req.id, value);
            let back: Value = serde_json::from_str(&reply).expect("reply is JSON");
            assert!(same_id(&back["id"], &req.id), "{reply}");
        }
        Err(bad) => {
            let reply = protocol::err_reply(&bad.id, &bad.message);
            let back: Value = serde_json::from_str(&reply).expect("reply is JSON");
            assert!(same_id(&back["id"], &bad.id), "{reply}");
        }
    }
});
