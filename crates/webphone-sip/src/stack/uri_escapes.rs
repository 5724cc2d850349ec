//! Request-URI escapes on the way out.
//!
//! rsipstack 0.7.14 keeps a URI's user part as received, escapes included (`%2B`), and
//! percent-encodes it again when it writes the URI, `%` included: a peer's Contact
//! `sip:a%2Bb@host` becomes the Request-URI `sip:a%252Bb@host` of our BYE, which names
//! another user (RFC 3261 §19.1.4 compares URIs with escapes decoded, and `%25` decodes to a
//! literal `%`). Dialled URIs with escapes (`sip:%2A97%23@pbx`) come out the same way.
//!
//! [`restore_request_uri_escapes`] undoes that second round in the Request-URI of a request
//! we send, the one URI the far end routes by: a `%25` followed by two hex digits in the
//! userinfo goes back to `%`. A user part holding a literal `%` followed by two hex digits
//! cannot be written by rsipstack's model anyway (it stores no decoded form), so the
//! rewrite only ever restores what the URI was. Header fields are left alone: rsipstack
//! copies the ones it received as text, and rewriting those could change an echoed value.
//!
//! Over TCP, TLS and WebSocket rsipstack writes the bytes itself, so no datagram can be
//! rewritten: there [`decode_request_uri_user`] (called before the message is sent) stores
//! the user part decoded, and rsipstack's writer escapes it once, in the canonical form
//! (`%2A97%23` goes out as `*97%23`, equal under RFC 3261 §19.1.4). A reserved character
//! the writer leaves plain in a user part (`&=+$,;?/`) loses its escape that way (`%2B`
//! becomes `+`); servers route both alike, and it is still the same user, where the double
//! escape named another.

use rsipstack::sip::{Header, SipMessage, Uri};

/// The request in `data` with the double escapes of its Request-URI user part undone,
/// `None` when there is nothing to undo (or `data` is a response).
pub(crate) fn restore_request_uri_escapes(data: &[u8]) -> Option<Vec<u8>> {
    let line_end = data.windows(2).position(|w| w == b"\r\n")?;
    let line = &data[..line_end];
    if line.starts_with(b"SIP/") {
        return None;
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let uri_start = line.iter().position(|&b| b == b' ')? + 1;
    let uri_len = line[uri_start..].iter().position(|&b| b == b' ')?;
    let uri = &line[uri_start..uri_start + uri_len];
    let fixed = restore_uri_escapes(uri)?;
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&data[..uri_start]);
    out.extend_from_slice(&fixed);
    out.extend_from_slice(&data[uri_start + uri_len..]);
    Some(out)
}

/// The Request-URI text as it goes on the wire over `transport`: with the double escapes
/// of its user part undone over UDP (where [`restore_request_uri_escapes`] rewrites the
/// datagram), with its user part decoded and escaped once by rsipstack over the stream
/// transports ([`decode_request_uri_user`]). Digest's `uri=` must name the same text (RFC
/// 7616 §3.4: the server compares it with the Request-URI).
pub(crate) fn wire_request_uri(uri: &Uri, transport: crate::Transport) -> String {
    if transport != crate::Transport::Udp {
        let mut uri = uri.clone();
        decode_uri_user(&mut uri);
        return uri.to_string();
    }
    let text = uri.to_string();
    match restore_uri_escapes(text.as_bytes()).map(String::from_utf8) {
        Some(Ok(fixed)) => fixed,
        _ => text,
    }
}

/// Over a stream transport (the top Via says TCP, TLS, WS or WSS), the Request-URI's user
/// part of a request we send decoded, so that rsipstack's writer escapes it once; whether
/// it changed. UDP requests are left to [`restore_request_uri_escapes`].
pub(crate) fn decode_request_uri_user(msg: &mut SipMessage) -> bool {
    let SipMessage::Request(req) = msg else {
        return false;
    };
    let over_udp = req.headers.iter().find_map(|h| match h {
        Header::Via(v) => Some(
            v.value()
                .split_whitespace()
                .next()
                .is_some_and(|p| p.to_ascii_uppercase().ends_with("/UDP")),
        ),
        _ => None,
    });
    if over_udp != Some(false) {
        return false;
    }
    decode_uri_user(&mut req.uri)
}

/// `uri`'s user part with its `%XX` escapes decoded; whether it changed. A user whose
/// escapes do not decode to UTF-8 is left as it is (the model holds a `String`).
fn decode_uri_user(uri: &mut Uri) -> bool {
    let Some(auth) = uri.auth.as_mut() else {
        return false;
    };
    match decode_escapes(&auth.user) {
        Some(decoded) => {
            auth.user = decoded;
            true
        }
        None => false,
    }
}

/// `s` with every `%XX` (XX two hex digits) decoded; `None` when it has none or the result
/// is not UTF-8. A `%` not followed by two hex digits stays a literal `%`.
fn decode_escapes(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| Some((hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                changed = true;
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    if !changed {
        return None;
    }
    String::from_utf8(out).ok()
}

/// A `sip:`/`sips:` URI with the double escapes of its userinfo undone; `None` when
/// there is nothing to undo.
fn restore_uri_escapes(uri: &[u8]) -> Option<Vec<u8>> {
    let lower = uri.get(..5)?.to_ascii_lowercase();
    let scheme_len = if lower.starts_with(b"sips:") {
        5
    } else if lower.starts_with(b"sip:") {
        4
    } else {
        return None;
    };
    // The userinfo ends at the last `@` (no parameter or header may hold one, RFC 3261
    // §25.1; a user part sometimes does).
    let at = uri.iter().rposition(|&b| b == b'@')?;
    if at < scheme_len {
        return None;
    }
    let fixed = undo_double_escapes(&uri[scheme_len..at])?;
    let mut out = Vec::with_capacity(uri.len());
    out.extend_from_slice(&uri[..scheme_len]);
    out.extend_from_slice(&fixed);
    out.extend_from_slice(&uri[at..]);
    Some(out)
}

/// `%25XX` (XX two hex digits) to `%XX`; `None` when there is none.
fn undo_double_escapes(s: &[u8]) -> Option<Vec<u8>> {
    let is_double = |i: usize| {
        s.len() >= i + 5
            && &s[i..i + 3] == b"%25"
            && s[i + 3].is_ascii_hexdigit()
            && s[i + 4].is_ascii_hexdigit()
    };
    if !(0..s.len()).any(is_double) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if is_double(i) {
            out.push(b'%');
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(s: &str) -> Option<String> {
        restore_request_uri_escapes(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn bye_to_an_escaped_contact_user_names_the_same_user() {
        // What rsipstack writes for a remote target parsed from `sip:a%2Bb%40home@host`.
        let bye = "BYE sip:a%252Bb%2540home@127.0.0.1:5070;transport=udp SIP/2.0\r\n\
                   To: <sip:a%2Bb%40home@host>\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            fix(bye).as_deref(),
            Some(
                "BYE sip:a%2Bb%40home@127.0.0.1:5070;transport=udp SIP/2.0\r\n\
                 To: <sip:a%2Bb%40home@host>\r\nContent-Length: 0\r\n\r\n"
            )
        );
    }

    #[test]
    fn literal_percent_written_as_25_stays() {
        // A user typed as `50%` is stored raw and written `50%25`: not followed by two hex
        // digits, it is a real escaped percent sign.
        assert_eq!(fix("INVITE sip:50%25@pbx SIP/2.0\r\n\r\n"), None);
        // An escaped `%25` received as `%2525` is written `%252525`: one round undone.
        assert_eq!(
            fix("INVITE sip:a%252525@pbx SIP/2.0\r\n\r\n").as_deref(),
            Some("INVITE sip:a%2525@pbx SIP/2.0\r\n\r\n")
        );
    }

    #[test]
    fn responses_hosts_params_and_other_schemes_are_untouched() {
        assert_eq!(fix("SIP/2.0 200 OK\r\nTo: <sip:a%2541@h>\r\n\r\n"), None);
        assert_eq!(fix("BYE sip:host;x=%2541 SIP/2.0\r\n\r\n"), None);
        assert_eq!(fix("BYE tel:%2541 SIP/2.0\r\n\r\n"), None);
        assert_eq!(fix("BYE sip:plain@host SIP/2.0\r\n\r\n"), None);
        assert_eq!(fix("garbage"), None);
        assert_eq!(fix("BYE\r\n\r\n"), None);
        assert_eq!(
            fix("OPTIONS SIPS:%2523x@h SIP/2.0\r\n\r\n").as_deref(),
            Some("OPTIONS SIPS:%23x@h SIP/2.0\r\n\r\n")
        );
    }

    fn uri(s: &str) -> Uri {
        Uri::try_from(s).unwrap()
    }

    #[test]
    fn digest_uri_names_the_request_uri_as_sent_on_each_transport() {
        let dialled = uri("sip:%2A97%23@pbx.example.com;user=phone");
        assert_eq!(
            dialled.to_string(),
            "sip:%252A97%2523@pbx.example.com;user=phone",
            "rsipstack escapes the stored escapes again"
        );
        assert_eq!(
            wire_request_uri(&dialled, crate::Transport::Udp),
            "sip:%2A97%23@pbx.example.com;user=phone"
        );
        // Over TCP the user goes out decoded and escaped once (what
        // decode_request_uri_user makes rsipstack write): the digest names the same.
        assert_eq!(
            wire_request_uri(&dialled, crate::Transport::Tcp),
            "sip:*97%23@pbx.example.com;user=phone"
        );
        let plain = uri("sip:bob@example.com");
        for t in [crate::Transport::Udp, crate::Transport::Tls] {
            assert_eq!(wire_request_uri(&plain, t), "sip:bob@example.com");
        }
        // The userinfo ends at the last `@`.
        assert_eq!(
            wire_request_uri(&uri("sip:j%40x.com@proxy.net"), crate::Transport::Udp),
            "sip:j%40x.com@proxy.net"
        );
        assert_eq!(
            wire_request_uri(&uri("sip:j%40x.com@proxy.net"), crate::Transport::Ws),
            "sip:j%40x.com@proxy.net"
        );
    }

    fn request_over(via: &str, ruri: &str) -> SipMessage {
        let text = format!(
            "BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n"
        );
        rsipstack::sip::parser::parse_message(text.as_bytes()).unwrap()
    }

    fn request_line(msg: &SipMessage) -> String {
        let bytes = msg.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        text.lines().next().unwrap_or_default().to_string()
    }

    #[test]
    fn bye_over_tls_to_an_escaped_contact_user_is_escaped_once() {
        // A peer's Contact `sip:a%2Bb%40home%23x@host` over TLS: the BYE names that user,
        // never `a%252Bb...` (another user).
        let mut bye = request_over("TLS", "sip:a%2Bb%40home%23x@127.0.0.1:5071");
        assert!(decode_request_uri_user(&mut bye));
        assert_eq!(
            request_line(&bye),
            "BYE sip:a+b%40home%23x@127.0.0.1:5071 SIP/2.0"
        );
        for via in ["TCP", "WS", "WSS"] {
            let mut m = request_over(via, "sip:%2A97%23@pbx");
            assert!(decode_request_uri_user(&mut m), "{via}");
            assert_eq!(request_line(&m), "BYE sip:*97%23@pbx SIP/2.0", "{via}");
        }
    }

    #[test]
    fn udp_requests_and_plain_or_undecodable_users_are_left_alone() {
        let mut udp = request_over("UDP", "sip:%2A97%23@pbx");
        assert!(!decode_request_uri_user(&mut udp));
        let mut plain = request_over("TCP", "sip:bob@pbx");
        assert!(!decode_request_uri_user(&mut plain));
        // A literal `%` (not two hex digits after it) stays; `%25` decodes to it and is
        // escaped again as `%25`.
        let mut pct = request_over("TCP", "sip:50%25off@pbx");
        assert!(decode_request_uri_user(&mut pct));
        assert_eq!(request_line(&pct), "BYE sip:50%25off@pbx SIP/2.0");
        assert_eq!(decode_escapes("50%"), None);
        assert_eq!(decode_escapes("a%zz"), None);
        // Not UTF-8 once decoded: kept as received.
        assert_eq!(decode_escapes("%FF%FE"), None);
        assert_eq!(decode_escapes("%C3%BC").as_deref(), Some("\u{fc}"));
    }
}
