//! User-supplied header fields and redirect Contacts.
//!
//! The softphone lets its user add header fields to what it sends (`customsipheader`,
//! `setsipheader`) and forward an incoming call with a 3xx (RFC 3261 §8.3.1, §21.3).
//! Both are applied to the messages on their way out, in the endpoint's send hook (every
//! request and response the transaction layer sends passes it, retransmissions too), so
//! they reach every message whoever builds it: REGISTER, INVITE and its re-sends with
//! credentials, CANCEL, ACK, in-dialog requests, MESSAGE, SUBSCRIBE, PUBLISH, and our
//! responses (provisional and final).
//!
//! Names and values are checked when they are set ([`validate_header`]): a value with a
//! CR or LF would let a caller inject header fields or a body; a name that is not an RFC
//! 3261 §25.1 `token` would make the message unparsable; and the fields the transaction
//! and dialog layers own (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length,
//! Content-Type) cannot be added without breaking the message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rsipstack::sip::{HasHeaders, Header, SipMessage};

use crate::SipError;

/// How long the headers of a finished call are kept: requests of the call may still be
/// sent (BYE after `Ended`, retransmissions; 64*T1 = 32 s is the longest transaction).
const KEEP_AFTER_END: Duration = Duration::from_secs(40);

/// Header fields the transaction/dialog layers own (long and compact forms, RFC 3261 §7.3.3).
const RESERVED: [&str; 14] = [
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "max-forwards",
    "content-length",
    "l",
    "content-type",
    "c",
];

/// RFC 3261 §25.1 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

/// Check one header field to be added to our messages (see the module documentation).
/// Returns the trimmed name and value.
pub(crate) fn validate_header(name: &str, value: &str) -> Result<(String, String), SipError> {
    let bad = |reason: &str| SipError::InvalidHeader {
        name: name.escape_debug().to_string(),
        reason: reason.to_string(),
    };
    let n = name.trim();
    if n.is_empty() {
        return Err(bad("empty header name"));
    }
    if !n.chars().all(is_token_char) {
        return Err(bad(
            "header name must be an RFC 3261 token (letters, digits, -.!%*_+`'~)",
        ));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(n)) {
        return Err(bad("this header is managed by the SIP stack"));
    }
    if value.contains(['\r', '\n']) {
        return Err(bad("header value contains CR or LF"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad("header value contains a control character"));
    }
    if value.len() > 4096 {
        return Err(bad("header value longer than 4096 bytes"));
    }
    Ok((n.to_string(), value.trim().to_string()))
}

/// Validate a whole list (all or nothing).
pub(crate) fn validate_headers(
    headers: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, SipError> {
    headers.iter().map(|(n, v)| validate_header(n, v)).collect()
}

/// Check one Contact of a redirect (RFC 3261 §20.10: `name-addr` or `addr-spec`, with
/// parameters such as `q` or `expires`) and return the header value to send.
pub(crate) fn redirect_contact(contact: &str) -> Result<String, SipError> {
    let bad = |reason: String| SipError::InvalidHeader {
        name: "Contact".into(),
        reason,
    };
    if contact.contains(['\r', '\n']) || contact.chars().any(|c| c.is_control()) {
        return Err(bad("contact contains a control character".into()));
    }
    let c = contact.trim();
    if c.is_empty() || c == "*" {
        return Err(bad("empty contact".into()));
    }
    let (uri, value) = match (c.find('<'), c.rfind('>')) {
        (Some(a), Some(b)) if a < b => (&c[a + 1..b], c.to_string()),
        (None, None) => {
            // A bare URI: its parameters would become header parameters (RFC 3261 §20),
            // so it goes between angle brackets whole.
            (c, format!("<{c}>"))
        }
        _ => return Err(bad(format!("unbalanced angle brackets in {c:?}"))),
    };
    crate::stack::validate_uri(uri.trim()).map_err(|e| bad(format!("{uri:?}: {e}")))?;
    Ok(value)
}

#[derive(Default)]
struct CallHeaders {
    headers: Vec<(String, String)>,
    ended: Option<Instant>,
}

/// The header fields and redirects to apply, shared by the [`crate::SipUa`] handles, the
/// driver and the send hook.
#[derive(Default)]
pub(crate) struct ExtraHeaders {
    /// For every request.
    global: Vec<(String, String)>,
    /// For the requests of one call, by SIP Call-ID.
    calls: HashMap<String, CallHeaders>,
    /// Contacts of a 3xx to send for the INVITE with this Call-ID, with when they were set.
    redirects: HashMap<String, (Vec<String>, Instant)>,
}

impl ExtraHeaders {
    pub(crate) fn set_global(&mut self, headers: Vec<(String, String)>) {
        self.global = headers;
    }

    pub(crate) fn set_call(&mut self, call_id: &str, headers: Vec<(String, String)>) {
        self.prune(Instant::now());
        if headers.is_empty() {
            self.calls.remove(call_id);
        } else {
            self.calls.entry(call_id.to_string()).or_default().headers = headers;
        }
    }

    /// The call is over: keep its headers a little for the requests still going out.
    pub(crate) fn call_ended(&mut self, call_id: &str) {
        let now = Instant::now();
        if let Some(c) = self.calls.get_mut(call_id) {
            c.ended.get_or_insert(now);
        }
        self.prune(now);
    }

    pub(crate) fn set_redirect(&mut self, call_id: &str, contacts: Vec<String>) {
        let now = Instant::now();
        self.prune(now);
        self.redirects.insert(call_id.to_string(), (contacts, now));
    }

    fn prune(&mut self, now: Instant) {
        self.calls.retain(|_, c| {
            c.ended
                .is_none_or(|t| now.saturating_duration_since(t) < KEEP_AFTER_END)
        });
        self.redirects
            .retain(|_, (_, t)| now.saturating_duration_since(*t) < KEEP_AFTER_END);
    }

    fn is_empty(&self) -> bool {
        self.global.is_empty() && self.calls.is_empty() && self.redirects.is_empty()
    }

    /// Add our header fields to an outgoing message (the send hook): the global ones and
    /// the call's to every request and response, the redirect Contacts to a 3xx.
    pub(crate) fn apply(&self, msg: &mut SipMessage) {
        if self.is_empty() {
            return;
        }
        let call_id = msg.headers().iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.value().trim().to_string()),
            _ => None,
        });
        match msg {
            SipMessage::Request(req) => {
                let per_call = call_id
                    .as_deref()
                    .and_then(|id| self.calls.get(id))
                    .map(|c| c.headers.as_slice())
                    .unwrap_or_default();
                for (name, value) in self.global.iter().chain(per_call) {
                    push_once(&mut req.headers, name, value);
                }
            }
            SipMessage::Response(resp) => {
                let per_call = call_id
                    .as_deref()
                    .and_then(|id| self.calls.get(id))
                    .map(|c| c.headers.as_slice())
                    .unwrap_or_default();
                for (name, value) in self.global.iter().chain(per_call) {
                    push_once(&mut resp.headers, name, value);
                }
                let code = resp.status_code.code();
                if !(300..400).contains(&code) {
                    return;
                }
                let is_invite = resp.headers.iter().any(|h| {
                    matches!(h, Header::CSeq(c)
                        if c.value().split_whitespace().nth(1) == Some("INVITE"))
                });
                let Some((contacts, _)) = call_id
                    .as_deref()
                    .filter(|_| is_invite)
                    .and_then(|id| self.redirects.get(id))
                else {
                    return;
                };
                // RFC 3261 §21.3: the Contacts of a 3xx are the alternative locations
                // (not our own address, which the dialog layer put there).
                resp.headers.retain(|h| !matches!(h, Header::Contact(_)));
                let at = content_length_position(&resp.headers);
                for (i, c) in contacts.iter().enumerate() {
                    resp.headers
                        .0
                        .insert(at + i, Header::Contact(c.clone().into()));
                }
            }
        }
    }
}

/// Where new fields go: before `Content-Length` (kept last for readability), else at the end.
fn content_length_position(headers: &rsipstack::sip::Headers) -> usize {
    headers
        .iter()
        .position(|h| matches!(h, Header::ContentLength(_)))
        .unwrap_or(headers.len())
}

/// Add `name: value` unless the message already has that exact field (a message that
/// passes the hook twice, e.g. a stored response sent again, gets it once).
fn push_once(headers: &mut rsipstack::sip::Headers, name: &str, value: &str) {
    let present = headers
        .iter()
        .any(|h| h.name().eq_ignore_ascii_case(name) && h.value().trim() == value);
    if !present {
        let at = content_length_position(headers);
        headers
            .0
            .insert(at, Header::Other(name.to_string(), value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SipMessage {
        let text = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: q1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        SipMessage::try_from(text).expect("valid request")
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(validate_header("X-Key", "v\r\nVia: evil").is_err());
        assert!(validate_header("X-Key", "v\nBYE").is_err());
        assert!(validate_header("X Key", "v").is_err());
        assert!(validate_header("X-Key:", "v").is_err());
        assert!(validate_header("", "v").is_err());
        assert!(validate_header("Content-Length", "0").is_err());
        assert!(validate_header("call-id", "x").is_err());
        assert!(validate_header("X-Key", "a\u{0}b").is_err());
        assert_eq!(
            validate_header(" X-Key ", " a b\tc ").expect("valid"),
            ("X-Key".to_string(), "a b\tc".to_string())
        );
        assert!(validate_header("P-Preferred-Identity", "<sip:1001@example.com>").is_ok());
    }

    #[test]
    fn redirect_contacts_are_checked_and_bracketed() {
        assert_eq!(
            redirect_contact("sip:1003@10.0.0.1;transport=tcp").expect("valid"),
            "<sip:1003@10.0.0.1;transport=tcp>"
        );
        assert_eq!(
            redirect_contact("\"Bob\" <sip:bob@example.com>;q=0.5").expect("valid"),
            "\"Bob\" <sip:bob@example.com>;q=0.5"
        );
        assert!(redirect_contact("sip:a@b\r\nX: y").is_err());
        assert!(redirect_contact("<sip:a@b").is_err());
        assert!(redirect_contact("").is_err());
    }

    #[test]
    fn global_and_call_headers_go_into_requests_once() {
        let mut x = ExtraHeaders::default();
        x.set_global(vec![("X-Global".into(), "1".into())]);
        x.set_call("q1", vec![("X-Call".into(), "2".into())]);
        x.set_call("other", vec![("X-Other".into(), "3".into())]);
        let mut m = request();
        x.apply(&mut m);
        x.apply(&mut m);
        let text = m.to_string();
        assert_eq!(text.matches("X-Global: 1\r\n").count(), 1, "{text}");
        assert_eq!(text.matches("X-Call: 2\r\n").count(), 1, "{text}");
        assert!(!text.contains("X-Other"), "{text}");
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
        x.set_global(vec![]);
        x.set_call("q1", vec![]);
        let mut m = request();
        x.apply(&mut m);
        assert!(!m.to_string().contains("X-"));
    }

    #[test]
    fn redirect_replaces_our_contact_in_the_3xx() {
        let mut x = ExtraHeaders::default();
        x.set_redirect("q1", vec!["<sip:1003@10.0.0.1>".into()]);
        let text = "SIP/2.0 302 Moved Temporarily\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q1\r\nCSeq: 1 INVITE\r\nContact: <sip:me@127.0.0.1>\r\nContent-Length: 0\r\n\r\n";
        let mut m = SipMessage::try_from(text).expect("valid response");
        x.apply(&mut m);
        x.apply(&mut m);
        let out = m.to_string();
        assert!(!out.contains("sip:me@"), "{out}");
        assert_eq!(
            out.matches("Contact: <sip:1003@10.0.0.1>").count(),
            1,
            "{out}"
        );
        // Another call's 3xx is left alone.
        x.set_redirect("other", vec!["<sip:x@10.0.0.2>".into()]);
        let mut m = SipMessage::try_from(text.replace("q1", "q2").as_str()).expect("valid");
        x.apply(&mut m);
        assert!(m.to_string().contains("sip:me@"));
    }
}
