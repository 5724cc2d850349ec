//! Network change: the Contact of dialogs set up before the local address moved.
//!
//! A dialog keeps the Contact it was created with (RFC 3261 §12.1: the local target); the
//! stack cannot change it afterwards. When the network changes under us
//! ([`crate::SipUa::network_changed`]), the old address is unreachable, and RFC 3261 §12.2
//! lets a target refresh request (re-INVITE, UPDATE, RFC 3311 §5.1) carry a new Contact.
//! [`ContactMoves`] remembers every address we moved away from and rewrites it to the
//! current one in the `Contact` header fields of whatever we send (the send hook), so the
//! re-INVITE that refreshes the media also refreshes the remote target, and so do our
//! responses in the dialog.
//!
//! The registrar still holds the binding of the old address, and would fork incoming calls
//! to it until it expires. Anyone with the credentials may remove a binding (RFC 3261
//! §10.2.2): until a REGISTER succeeds after the move, each REGISTER we send also carries the
//! old Contact with `expires=0`.

use rsipstack::sip::{Header, Method, SipMessage};

/// Addresses (`host:port` as written in our Contact URIs) we moved away from, and the one
/// we are at now.
#[derive(Debug, Default)]
pub(crate) struct ContactMoves {
    old: Vec<String>,
    current: Option<String>,
    /// Old addresses whose bindings the next REGISTERs remove.
    release: Vec<String>,
}

impl ContactMoves {
    /// We moved from `old` to `new` (both `host:port`, IPv6 hosts in brackets).
    pub(crate) fn moved(&mut self, old: &str, new: &str) {
        if old == new {
            return;
        }
        if !self.old.iter().any(|o| o == old) {
            self.old.push(old.to_string());
        }
        if !self.release.iter().any(|o| o == old) {
            self.release.push(old.to_string());
        }
        // Moving back to an address we had before: it is current again.
        self.old.retain(|o| o != new);
        self.release.retain(|o| o != new);
        self.current = Some(new.to_string());
    }

    /// The registrar holds a binding of `old` (`host:port`) that is no longer ours (a NAT
    /// mapping of an address we left): the next REGISTERs remove it, without rewriting it
    /// anywhere else.
    pub(crate) fn release(&mut self, old: &str) {
        if !self.release.iter().any(|o| o == old) {
            self.release.push(old.to_string());
        }
    }

    /// A REGISTER succeeded: the old bindings are gone.
    pub(crate) fn released(&mut self) {
        self.release.clear();
    }

    /// Rewrite old addresses in the Contact header fields of an outgoing message.
    pub(crate) fn apply(&self, msg: &mut SipMessage) {
        let register = matches!(msg, SipMessage::Request(r) if r.method == Method::Register);
        let headers = match msg {
            SipMessage::Request(r) => &mut r.headers,
            SipMessage::Response(r) => &mut r.headers,
        };
        let current = self.current.as_deref().unwrap_or_default();
        for h in headers.iter_mut().filter(|_| !current.is_empty()) {
            if let Header::Contact(c) = h {
                if c.value().ends_with(";expires=0") {
                    // A binding being removed (below) names the old address on purpose.
                    continue;
                }
                let mut value = c.value().to_string();
                let mut changed = false;
                for old in &self.old {
                    if let Some(v) = replace_hostport(&value, old, current) {
                        value = v;
                        changed = true;
                    }
                }
                if changed {
                    *h = Header::Contact(value.into());
                }
            }
        }
        if !register || self.release.is_empty() {
            return;
        }
        // Our Contact (the first one not being removed), as the pattern of the old ones.
        let ours = headers.iter().enumerate().find_map(|(i, h)| match h {
            Header::Contact(c) if !c.value().ends_with(";expires=0") => {
                Some((i, c.value().to_string()))
            }
            _ => None,
        });
        let Some((at, ours)) = ours else { return };
        let Some(here) = uri_hostport(&ours) else {
            return;
        };
        let mut add = Vec::new();
        for old in self.release.iter().filter(|o| o.as_str() != here) {
            let Some(uri) = replace_hostport(&ours, here, old) else {
                continue;
            };
            // Drop parameters of our own binding (`;expires=..`) after the URI.
            let uri = match uri.find('>') {
                Some(end) => uri[..=end].to_string(),
                None => uri,
            };
            let already = headers
                .iter()
                .any(|h| matches!(h, Header::Contact(c) if c.value().starts_with(uri.as_str())));
            if !already {
                add.push(Header::Contact(format!("{uri};expires=0").into()));
            }
        }
        for (n, h) in add.into_iter().enumerate() {
            headers.0.insert(at + 1 + n, h);
        }
    }
}

/// The host-port of the first SIP URI in a Contact value (after `@`, else after `sip:` or
/// `sips:`), up to its parameters, headers or the closing `>`.
fn uri_hostport(value: &str) -> Option<&str> {
    let start = match value.find('@') {
        Some(i) => i + 1,
        None => value.find("sip:").map(|i| i + 4)?,
    };
    let rest = value.get(start..)?;
    let end = rest.find([';', '>', '?', ',', ' ']).unwrap_or(rest.len());
    rest.get(..end).filter(|h| !h.is_empty())
}

/// Replace the URI host-port `old` by `new` in `value` where it stands as a whole (after
/// `@` or `sip:`/`sips:`, followed by nothing, `;`, `>`, `?` or `,`); `None` if absent.
pub(crate) fn replace_hostport(value: &str, old: &str, new: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    while let Some(i) = rest.find(old) {
        let before = &rest[..i];
        let after = &rest[i + old.len()..];
        let starts = before.ends_with('@') || before.ends_with("sip:") || before.ends_with("sips:");
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ';' | '>' | '?' | ',' | ' '));
        out.push_str(before);
        if starts && ends {
            out.push_str(new);
            changed = true;
        } else {
            out.push_str(old);
        }
        rest = after;
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_of_an_old_address_is_rewritten_to_the_new_one() {
        let v = "<sip:1001@10.0.0.2:5060>;expires=60";
        assert_eq!(
            replace_hostport(v, "10.0.0.2:5060", "10.0.0.3:5060").as_deref(),
            Some("<sip:1001@10.0.0.3:5060>;expires=60")
        );
        let tcp = "<sip:1001@10.0.0.2:5060;transport=tcp>";
        assert_eq!(
            replace_hostport(tcp, "10.0.0.2:5060", "10.0.0.3:5070").as_deref(),
            Some("<sip:1001@10.0.0.3:5070;transport=tcp>")
        );
        let bare = "sip:10.0.0.2:5060";
        assert_eq!(
            replace_hostport(bare, "10.0.0.2:5060", "[fd00::3]:5060").as_deref(),
            Some("sip:[fd00::3]:5060")
        );
    }

    #[test]
    fn a_longer_address_containing_the_old_one_is_left_alone() {
        assert_eq!(
            replace_hostport("<sip:1001@110.0.0.2:50601>", "10.0.0.2:5060", "x:1"),
            None
        );
        assert_eq!(
            replace_hostport("<sip:1001@10.0.0.2:50601>", "10.0.0.2:5060", "x:1"),
            None
        );
        assert_eq!(
            replace_hostport("<sip:1001@10.0.0.9:5060>", "10.0.0.2:5060", "x:1"),
            None
        );
    }

    #[test]
    fn moves_rewrite_only_contact_fields_and_every_earlier_address() {
        let mut m = ContactMoves::default();
        m.moved("10.0.0.2:5060", "10.0.0.3:5060");
        m.moved("10.0.0.3:5060", "10.0.0.4:5060");
        let text = "INVITE sip:1002@10.0.0.1:5060 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.4:5060;branch=z9hG4bK1\r\n\
            From: <sip:1001@10.0.0.2:5060>;tag=a\r\n\
            To: <sip:1002@10.0.0.1>;tag=b\r\n\
            Call-ID: c1\r\n\
            CSeq: 2 INVITE\r\n\
            Contact: <sip:1001@10.0.0.2:5060>\r\n\
            Content-Length: 0\r\n\r\n";
        let mut msg = SipMessage::try_from(text).expect("parse");
        m.apply(&mut msg);
        let out = msg.to_string();
        assert!(out.contains("Contact: <sip:1001@10.0.0.4:5060>"), "{out}");
        // Not a Contact: untouched.
        assert!(
            out.contains("From: <sip:1001@10.0.0.2:5060>;tag=a"),
            "{out}"
        );
    }

    const REGISTER: &str = "REGISTER sip:10.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK2\r\n\
        From: <sip:1001@10.0.0.1:5060>;tag=a\r\n\
        To: <sip:1001@10.0.0.1:5060>\r\n\
        Call-ID: r1\r\n\
        CSeq: 7 REGISTER\r\n\
        Contact: <sip:1001@10.0.0.3:5060;transport=tcp>\r\n\
        Expires: 600\r\n\
        Content-Length: 0\r\n\r\n";

    fn contacts(msg: &SipMessage) -> Vec<String> {
        let headers = match msg {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        headers
            .iter()
            .filter_map(|h| match h {
                Header::Contact(c) => Some(c.value().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn registers_after_a_move_remove_the_old_binding_until_one_succeeds() {
        let mut m = ContactMoves::default();
        m.moved("10.0.0.2:5060", "10.0.0.3:5060");
        let mut msg = SipMessage::try_from(REGISTER).expect("parse");
        m.apply(&mut msg);
        assert_eq!(
            contacts(&msg),
            vec![
                "<sip:1001@10.0.0.3:5060;transport=tcp>".to_string(),
                "<sip:1001@10.0.0.2:5060;transport=tcp>;expires=0".to_string(),
            ]
        );
        // Applied again (a retransmission): not added twice.
        m.apply(&mut msg);
        assert_eq!(contacts(&msg).len(), 2);
        // Registered: later REGISTERs carry our binding only.
        m.released();
        let mut msg = SipMessage::try_from(REGISTER).expect("parse");
        m.apply(&mut msg);
        assert_eq!(contacts(&msg).len(), 1);
    }

    #[test]
    fn a_released_nat_binding_is_removed_by_the_next_registers_only() {
        // Behind a NAT the Contact was the mapping 203.0.113.7:40000; after a move the
        // REGISTER names another one, and the old mapping's binding goes.
        let mut m = ContactMoves::default();
        m.release("203.0.113.7:40000");
        let register = REGISTER.replace("10.0.0.3:5060", "203.0.113.7:41000");
        let mut msg = SipMessage::try_from(register.as_str()).expect("parse");
        m.apply(&mut msg);
        assert_eq!(
            contacts(&msg),
            vec![
                "<sip:1001@203.0.113.7:41000;transport=tcp>".to_string(),
                "<sip:1001@203.0.113.7:40000;transport=tcp>;expires=0".to_string(),
            ]
        );
        // Nothing is rewritten: the old address is not ours to replace in dialogs.
        let invite = register
            .replace("REGISTER sip:", "INVITE sip:")
            .replace("7 REGISTER", "7 INVITE")
            .replace("203.0.113.7:41000", "203.0.113.7:40000");
        let mut msg = SipMessage::try_from(invite.as_str()).expect("parse");
        m.apply(&mut msg);
        assert_eq!(
            contacts(&msg),
            vec!["<sip:1001@203.0.113.7:40000;transport=tcp>".to_string()]
        );
        // Registering the released address again keeps it.
        let same = REGISTER.replace("10.0.0.3:5060", "203.0.113.7:40000");
        let mut msg = SipMessage::try_from(same.as_str()).expect("parse");
        m.apply(&mut msg);
        assert_eq!(contacts(&msg).len(), 1);
    }

    #[test]
    fn only_registers_carry_the_removal() {
        let mut m = ContactMoves::default();
        m.moved("10.0.0.2:5060", "10.0.0.3:5060");
        let invite = REGISTER
            .replace("REGISTER sip:", "INVITE sip:")
            .replace("7 REGISTER", "7 INVITE");
        let mut msg = SipMessage::try_from(invite.as_str()).expect("parse");
        m.apply(&mut msg);
        assert_eq!(contacts(&msg).len(), 1);
    }

    #[test]
    fn moving_back_to_an_earlier_address_stops_rewriting_it() {
        let mut m = ContactMoves::default();
        m.moved("10.0.0.2:5060", "10.0.0.3:5060");
        m.moved("10.0.0.3:5060", "10.0.0.2:5060");
        assert_eq!(m.old, vec!["10.0.0.3:5060".to_string()]);
        assert_eq!(m.current.as_deref(), Some("10.0.0.2:5060"));
        m.moved("10.0.0.2:5060", "10.0.0.2:5060");
        assert_eq!(m.old.len(), 1);
    }
}
