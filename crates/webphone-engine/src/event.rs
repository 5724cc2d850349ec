//! The engine's event stream: high-level callbacks and low-level notification strings.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One event for the front doors.
///
/// Serialises as `{"ev":"onRegistered","args":[...]}` for callbacks and
/// `{"ev":"notification","text":"STATUS,..."}` for notification strings, the JSON shape shared
/// by the Tauri event channel and the local WebSocket service.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A high-level callback such as `onRegistered` or `onCdr`, with its arguments.
    Callback {
        name: String,
        args: Vec<serde_json::Value>,
    },
    /// One notification string exactly as the `onEvents` stream carries it (no CRLF).
    Notification(String),
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self {
            Event::Callback { name, args } => {
                m.serialize_entry("ev", name)?;
                m.serialize_entry("args", args)?;
            }
            Event::Notification(text) => {
                m.serialize_entry("ev", "notification")?;
                m.serialize_entry("text", text)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_to_the_wire_json_shape() {
        let cb = Event::Callback {
            name: "onRegisterFailed".into(),
            args: vec![serde_json::json!("Authentication failed")],
        };
        assert_eq!(
            serde_json::to_string(&cb).unwrap(),
            r#"{"ev":"onRegisterFailed","args":["Authentication failed"]}"#
        );
        let n = Event::Notification("START,api".into());
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"ev":"notification","text":"START,api"}"#
        );
    }
}
