//! Display names with `<` or `>` inside their quotes, kept as the peer wrote them.
//!
//! rsipstack's typed From/To split a name-addr at its first `<`, also at one inside a quoted
//! display name (`"<i>Eve</i> & Co" <sip:eve@host>`, valid by RFC 3261 §25.1), and a dialog
//! built from such a header writes a broken To into the requests it sends in the dialog
//! (`To: <i>;Eve</i> & Co" <sip:eve@host>;tag=...`): the peer ignores or refuses them, so a
//! BYE never ends its call. The header of such a peer is kept here per dialog (its Call-ID
//! and the peer's tag), from the From of a request it sent or the To of a response to ours,
//! and [`QuotedNames::repair`] puts it back as the To of every request we send in that
//! dialog. Nothing is kept for ordinary names (the common case costs one scan of a header).

use std::collections::VecDeque;

use rsipstack::sip::{Header, SipMessage};

/// Dialogs remembered at most (the oldest is forgotten first).
const KEEP: usize = 256;

/// The kept headers: ((Call-ID, the peer's tag), the header's value as the peer wrote it).
#[derive(Debug, Default)]
pub(crate) struct QuotedNames {
    kept: VecDeque<((String, String), String)>,
}

/// Whether a From/To value has `<` or `>` inside a quoted display name.
fn needs_keeping(value: &str) -> bool {
    let Some(open) = value.trim_start().strip_prefix('"') else {
        return false;
    };
    let mut escaped = false;
    for c in open.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return false,
            (false, '<' | '>') => return true,
            _ => {}
        }
    }
    false
}

/// The `tag` parameter of a From/To value (after its last `;tag=`), also in a value whose
/// display name rsipstack broke.
fn tag_of(value: &str) -> Option<&str> {
    let lower = value.to_ascii_lowercase();
    let at = lower.rfind(";tag=")? + ";tag=".len();
    let tag = value[at..].split([';', ' ', '\t', ',']).next()?.trim();
    (!tag.is_empty()).then_some(tag)
}

fn call_id(headers: &rsipstack::sip::Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::CallId(v) => Some(v.value().trim().to_string()),
        _ => None,
    })
}

impl QuotedNames {
    /// A message received: its peer's header is kept when its display name needs it (the
    /// From of a request, the To of a response).
    pub(crate) fn note_received(&mut self, msg: &SipMessage) {
        let (headers, request) = match msg {
            SipMessage::Request(r) => (&r.headers, true),
            SipMessage::Response(r) => (&r.headers, false),
        };
        let Some(value) = headers.iter().find_map(|h| match h {
            Header::From(v) if request => Some(v.value().to_string()),
            Header::To(v) if !request => Some(v.value().to_string()),
            _ => None,
        }) else {
            return;
        };
        if !needs_keeping(&value) {
            return;
        }
        let (Some(id), Some(tag)) = (call_id(headers), tag_of(&value).map(str::to_string)) else {
            return;
        };
        let key = (id, tag);
        if self.kept.iter().any(|(k, _)| *k == key) {
            return;
        }
        if self.kept.len() >= KEEP {
            self.kept.pop_front();
        }
        self.kept.push_back((key, value));
    }

    /// A request we are about to send: in a dialog with such a peer, its To becomes the
    /// peer's header as it wrote it. Whether it changed.
    pub(crate) fn repair(&self, msg: &mut SipMessage) -> bool {
        if self.kept.is_empty() {
            return false;
        }
        let SipMessage::Request(req) = msg else {
            return false;
        };
        let Some(id) = call_id(&req.headers) else {
            return false;
        };
        for h in req.headers.iter_mut() {
            if let Header::To(v) = h {
                let Some(tag) = tag_of(v.value()) else {
                    return false;
                };
                let found = self
                    .kept
                    .iter()
                    .find(|((i, t), _)| *i == id && t == tag)
                    .map(|(_, value)| value.clone());
                return match found {
                    Some(value) if value != v.value() => {
                        *h = Header::To(value.into());
                        true
                    }
                    _ => false,
                };
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SipMessage {
        rsipstack::sip::parser::parse_message(text.as_bytes()).unwrap()
    }

    const FROM_EVE: &str = r#""<i>Eve</i> & Co" <sip:1003@127.0.0.1:5060>;tag=eve1"#;

    #[test]
    fn a_bye_to_a_caller_with_markup_in_its_name_carries_its_from_as_written() {
        let mut q = QuotedNames::default();
        let invite = format!(
            "INVITE sip:1001@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n\
             From: {FROM_EVE}\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
        q.note_received(&parse(&invite));
        // What rsipstack's dialog writes.
        let mut bye = parse(
            "BYE sip:1003@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb\r\n\
             From: <sip:1001@127.0.0.1>;tag=me\r\nTo: <i>;Eve</i> & Co\" <sip:1003@127.0.0.1:5060>;tag=eve1\r\n\
             Call-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(q.repair(&mut bye));
        let text = bye.to_string();
        assert!(text.contains(&format!("To: {FROM_EVE}\r\n")), "{text}");
        // Another dialog, or the same Call-ID with another tag, is left alone.
        let mut other = parse(
            "BYE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKc\r\nFrom: <sip:1001@h>;tag=me\r\n\
             To: <sip:x@h>;tag=other\r\nCall-ID: c1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!q.repair(&mut other));
    }

    #[test]
    fn ordinary_names_are_not_kept() {
        assert!(!needs_keeping(r#""Bob Smith" <sip:b@h>;tag=1"#));
        assert!(!needs_keeping("Bob <sip:b@h>;tag=1"));
        assert!(!needs_keeping("<sip:b@h>;tag=1"));
        assert!(!needs_keeping(r#""a \" b" <sip:b@h>"#));
        assert!(needs_keeping(r#""a \" <b>" <sip:b@h>"#));
        let mut q = QuotedNames::default();
        q.note_received(&parse(
            "INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKd\r\nFrom: \"Bob\" <sip:b@h>;tag=1\r\n\
             To: <sip:a@h>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ));
        assert!(q.kept.is_empty());
    }

    #[test]
    fn tags_are_found_in_broken_values_and_the_memory_is_bounded() {
        assert_eq!(tag_of(r#"<i>;Eve</i>" <sip:a@h>;tag=abc;x=1"#), Some("abc"));
        assert_eq!(tag_of("<sip:a@h>;TAG=Q"), Some("Q"));
        assert_eq!(tag_of("<sip:a@h>"), None);
        let mut q = QuotedNames::default();
        for n in 0..(KEEP + 10) {
            q.note_received(&parse(&format!(
                "MESSAGE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{n}\r\nFrom: \"<{n}>\" <sip:b@h>;tag=t{n}\r\n\
                 To: <sip:a@h>\r\nCall-ID: m{n}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
            )));
        }
        assert_eq!(q.kept.len(), KEEP);
    }
}
