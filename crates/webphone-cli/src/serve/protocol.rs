//! The wire protocol of the local service: JSON text frames.
//!
//! Request `{"id":7,"fn":"call","args":["1002"]}`; reply `{"id":7,"ok":<value>}` or
//! `{"id":7,"err":"<message>"}`. A request that cannot be read gets `{"id":null,"err":...}`
//! (or its own `id` when that much could be read). Events are the engine's [`Event`] JSON.
//!
//! [`Event`]: webphone_engine::Event

use serde_json::{json, Value};
use webphone_engine::params::{is_secret, REDACTED};

/// One API call read from a text frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Echoed back in the reply; any JSON value the client chose (usually a number).
    pub id: Value,
    pub func: String,
    pub args: Vec<String>,
}

/// A frame that is not a usable request; `id` is the request's id when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    pub id: Value,
    pub message: String,
}

/// Reads one request. Arguments are strings on the wire; numbers and booleans are accepted and
/// converted ("all parameters can be passed as strings"), `null` becomes the empty string.
pub fn parse_request(text: &str) -> Result<Request, BadRequest> {
    let v: Value = serde_json::from_str(text).map_err(|e| BadRequest {
        id: Value::Null,
        message: format!("malformed request (not JSON): {e}"),
    })?;
    let Value::Object(mut obj) = v else {
        return Err(BadRequest {
            id: Value::Null,
            message: "malformed request: expected an object {\"id\":..,\"fn\":..,\"args\":[..]}"
                .into(),
        });
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let bad = |message: String| BadRequest {
        id: id.clone(),
        message,
    };
    let func = match obj.remove("fn") {
        Some(Value::String(f)) if !f.trim().is_empty() => f.trim().to_string(),
        _ => {
            return Err(bad(
                "malformed request: \"fn\" must be a function name".into()
            ))
        }
    };
    let args = match obj.remove("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, a) in list.into_iter().enumerate() {
                out.push(match a {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(bad(format!(
                            "malformed request: argument {i} must be a string"
                        )));
                    }
                });
            }
            out
        }
        Some(_) => return Err(bad("malformed request: \"args\" must be an array".into())),
    };
    Ok(Request { id, func, args })
}

/// `{"id":..,"ok":value}`.
pub fn ok_reply(id: &Value, value: Value) -> String {
    json!({ "id": id, "ok": value }).to_string()
}

/// `{"id":..,"err":"message"}`.
pub fn err_reply(id: &Value, message: &str) -> String {
    json!({ "id": id, "err": message }).to_string()
}

/// What a page may see of a result: the value of a secret parameter (password, md5, ...) is
/// replaced by `<redacted>`, because any allowed page could read it otherwise.
pub fn redact_result(func: &str, args: &[String], value: Value) -> Value {
    if !func.eq_ignore_ascii_case("getparameter") {
        return value;
    }
    let Some(name) = args.first() else {
        return value;
    };
    match &value {
        Value::String(s) if !s.is_empty() && is_secret(name) => Value::from(REDACTED),
        Value::Null | Value::String(_) => value,
        _ if is_secret(name) => Value::from(REDACTED),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_with_its_id_function_and_string_arguments() {
        let r = parse_request(r#"{"id":7,"fn":"call","args":["1002",3,true,null]}"#).unwrap();
        assert_eq!(r.id, json!(7));
        assert_eq!(r.func, "call");
        assert_eq!(r.args, vec!["1002", "3", "true", ""]);
        let r = parse_request(r#"{"id":"a","fn":"start"}"#).unwrap();
        assert!(r.args.is_empty());
    }

    #[test]
    fn malformed_requests_are_answered_with_a_reason() {
        let e = parse_request("{nope").unwrap_err();
        assert_eq!(e.id, Value::Null);
        assert!(e.message.contains("not JSON"), "{}", e.message);
        assert!(parse_request("[1,2]").is_err());
        let e = parse_request(r#"{"id":3,"args":[]}"#).unwrap_err();
        assert_eq!(e.id, json!(3));
        let e = parse_request(r#"{"id":4,"fn":"call","args":"1002"}"#).unwrap_err();
        assert_eq!(e.id, json!(4));
        assert!(parse_request(r#"{"id":5,"fn":"call","args":[{"a":1}]}"#).is_err());
    }

    #[test]
    fn secret_parameters_are_redacted_and_others_pass() {
        let a = |s: &str| vec![s.to_string()];
        assert_eq!(
            redact_result("getparameter", &a("password"), json!("pw")),
            json!(REDACTED)
        );
        assert_eq!(
            redact_result("GetParameter", &a("md5"), json!("x")),
            json!(REDACTED)
        );
        assert_eq!(
            redact_result("getparameter", &a("password"), json!("")),
            json!("")
        );
        assert_eq!(
            redact_result("getparameter", &a("username"), json!("1001")),
            json!("1001")
        );
        assert_eq!(
            redact_result("call", &a("password"), json!("x")),
            json!("x")
        );
    }

    #[test]
    fn replies_have_the_wire_shape() {
        let back = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        assert_eq!(
            back(ok_reply(&json!(1), json!(true))),
            json!({"id":1,"ok":true})
        );
        assert_eq!(
            back(err_reply(&Value::Null, "bad")),
            json!({"id":null,"err":"bad"})
        );
    }
}
