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
/// datagram), as rsipstack wrote it over the stream transports. Digest's `uri=` must
/// name the same text (RFC 7616 §3.4: the server compares it with the Request-URI).
pub(crate) fn wire_request_uri(uri: String, transport: crate::Transport) -> String {
    if transport != crate::Transport::Udp {
        return uri;
    }
    match restore_uri_escapes(uri.as_bytes()).map(String::from_utf8) {
        Some(Ok(fixed)) => fixed,
        _ => uri,
    }
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

    #[test]
    fn digest_uri_names_the_request_uri_as_sent_on_each_transport() {
        let written = "sip:%252A97%2523@pbx.example.com;user=phone".to_string();
        assert_eq!(
            wire_request_uri(written.clone(), crate::Transport::Udp),
            "sip:%2A97%23@pbx.example.com;user=phone"
        );
        // Over TCP the datagram guard does not rewrite the request: the digest must not either.
        assert_eq!(
            wire_request_uri(written.clone(), crate::Transport::Tcp),
            written
        );
        let plain = "sip:bob@example.com".to_string();
        assert_eq!(
            wire_request_uri(plain.clone(), crate::Transport::Udp),
            plain
        );
        // The userinfo ends at the last `@`.
        assert_eq!(
            wire_request_uri("sip:j%2540x.com@proxy.net".into(), crate::Transport::Udp),
            "sip:j%40x.com@proxy.net"
        );
    }
}
