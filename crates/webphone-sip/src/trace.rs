//! Redaction of SIP message traces ([`crate::SipEvent::Trace`]).
//!
//! The password never travels in SIP, but a digest `response` (RFC 2617 §3.2.2, RFC 7616
//! §3.4) together with the nonce, `cnonce` and the other parameters it covers lets anyone
//! holding the trace brute-force the password offline; so does the server's `rspauth`
//! (RFC 2617 §3.2.3). Traces therefore replace these values in the header fields that carry
//! them. Pure string processing, no I/O.

/// What a redacted parameter value becomes.
pub(crate) const REDACTED: &str = "\"<redacted>\"";

/// Header fields whose digest parameters are redacted (RFC 3261 §20.7, §20.28; RFC 2617
/// §3.2.3). None of them has a compact form (RFC 3261 §7.3.3).
const AUTH_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "authentication-info",
    "proxy-authentication-info",
];

/// Parameters whose values are redacted in those header fields.
const SECRET_PARAMS: &[&str] = &["response", "cnonce", "rspauth"];

/// `msg` (the text of one SIP message) with the `response`, `cnonce` and `rspauth`
/// values of its `Authorization`, `Proxy-Authorization`, `Authentication-Info` and
/// `Proxy-Authentication-Info` header fields replaced by [`REDACTED`]. Header names and
/// parameter names match case-insensitively; folded header lines (RFC 3261 §7.3.1) are
/// handled; the body (after the first empty line) is copied unchanged. Never panics,
/// whatever the input.
pub(crate) fn redact_credentials(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len() + 16);
    let mut pos = 0;
    while pos < msg.len() {
        let line_end = next_line(msg, pos);
        if msg[pos..line_end].trim_end_matches(['\r', '\n']).is_empty() {
            // End of the header section: the body is not ours to interpret.
            out.push_str(&msg[pos..]);
            break;
        }
        // One header field: its first line and any continuation lines.
        let mut end = line_end;
        while end < msg.len() && msg[end..].starts_with([' ', '\t']) {
            end = next_line(msg, end);
        }
        let field = &msg[pos..end];
        match field.split_once(':') {
            Some((name, value)) if is_auth_header(name) => {
                out.push_str(name);
                out.push(':');
                let core = value.trim_end_matches(['\r', '\n']);
                redact_params(core, &mut out);
                out.push_str(&value[core.len()..]);
            }
            _ => out.push_str(field),
        }
        pos = end;
    }
    out
}

/// Index just after the `\n` ending the line that starts at `pos` (or the end of `s`).
fn next_line(s: &str, pos: usize) -> usize {
    s[pos..].find('\n').map_or(s.len(), |i| pos + i + 1)
}

fn is_auth_header(name: &str) -> bool {
    let name = name.trim();
    AUTH_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Index just after the quoted string starting at `b[start] == b'"'` (or `b.len()` when it
/// is not terminated). Backslash escapes (RFC 3261 §25.1 `quoted-pair`) are honoured.
fn skip_quoted(b: &[u8], start: usize) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// Copy `value` (a credentials / authentication-info value) into `out`, replacing the
/// values of [`SECRET_PARAMS`] with [`REDACTED`]. Every index used to slice `value` sits
/// next to an ASCII byte, so slicing never splits a UTF-8 character.
fn redact_params(value: &str, out: &mut String) {
    let b = value.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            i = skip_quoted(b, i);
            continue;
        }
        if !is_token_char(c) {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < b.len() && is_token_char(b[i]) {
            i += 1;
        }
        let name = &value[name_start..i];
        let mut k = i;
        while k < b.len() && is_ws(b[k]) {
            k += 1;
        }
        if k >= b.len() || b[k] != b'=' {
            // A scheme name (`Digest`) or a bare token.
            continue;
        }
        k += 1;
        while k < b.len() && is_ws(b[k]) {
            k += 1;
        }
        let value_start = k;
        let value_end = if k < b.len() && b[k] == b'"' {
            skip_quoted(b, k)
        } else {
            let mut e = k;
            while e < b.len() && b[e] != b',' && !is_ws(b[e]) {
                e += 1;
            }
            e
        };
        if SECRET_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p)) {
            out.push_str(&value[copied..value_start]);
            out.push_str(REDACTED);
            copied = value_end;
        }
        i = value_end.max(i);
    }
    out.push_str(&value[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = REDACTED;

    #[test]
    fn redacts_response_and_cnonce_of_authorization() {
        let msg = "REGISTER sip:example.com SIP/2.0\r\n\
                   Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
                   Authorization: Digest username=\"1001\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"f00d\", qop=auth, nc=00000001\r\n\
                   Content-Length: 0\r\n\r\n";
        let want = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
             Authorization: Digest username=\"1001\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response={R}, algorithm=MD5, cnonce={R}, qop=auth, nc=00000001\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn header_and_parameter_names_are_case_insensitive() {
        let msg = "INVITE sip:b@h SIP/2.0\r\nAUTHORIZATION: Digest RESPONSE=\"aa\", CNonce=\"bb\"\r\nproxy-authorization: digest Response=\"cc\"\r\n\r\n";
        let want = format!(
            "INVITE sip:b@h SIP/2.0\r\nAUTHORIZATION: Digest RESPONSE={R}, CNonce={R}\r\nproxy-authorization: digest Response={R}\r\n\r\n"
        );
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn unquoted_values_and_compact_spacing() {
        // No spaces after `:` or `,`, whitespace around `=` and before `:`.
        let msg = "BYE sip:b@h SIP/2.0\r\nAuthorization:Digest response=abc123,cnonce=xyz,nc=00000001\r\nProxy-Authorization : Digest username=\"u\" , response = \"dd\"\r\n\r\n";
        let want = format!(
            "BYE sip:b@h SIP/2.0\r\nAuthorization:Digest response={R},cnonce={R},nc=00000001\r\nProxy-Authorization : Digest username=\"u\" , response = {R}\r\n\r\n"
        );
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn several_headers_and_authentication_info() {
        let msg = "SIP/2.0 200 OK\r\n\
                   Authorization: Digest response=\"1\"\r\n\
                   Authorization: Digest response=\"2\"\r\n\
                   Proxy-Authorization: Digest response=\"3\"\r\n\
                   Authentication-Info: qop=auth, rspauth=\"4\", cnonce=\"5\", nc=00000001\r\n\
                   Proxy-Authentication-Info: rspauth=\"6\"\r\n\r\n";
        let out = redact_credentials(msg);
        for secret in ["\"1\"", "\"2\"", "\"3\"", "\"4\"", "\"5\"", "\"6\""] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert_eq!(out.matches(R).count(), 6);
        assert!(out.contains("qop=auth, rspauth="));
        assert!(out.contains("nc=00000001"));
    }

    #[test]
    fn other_headers_and_the_body_are_untouched() {
        // `WWW-Authenticate` carries no secret; `i:` is the compact Call-ID; a body that
        // quotes a header is not a header.
        let msg = "SIP/2.0 401 Unauthorized\r\n\
                   WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\n\
                   X-Response: response=\"keep\"\r\n\
                   i: response=keep\r\n\
                   Via: SIP/2.0/UDP h;response=keep\r\n\
                   Content-Length: 44\r\n\r\n\
                   Authorization: Digest response=\"body-keep\"\r\n";
        assert_eq!(redact_credentials(msg), msg);
    }

    #[test]
    fn quoted_strings_are_skipped_and_escapes_honoured() {
        // `response=` inside a quoted value is not a parameter; an escaped quote does not
        // end the quoted string.
        let msg = "A sip:x SIP/2.0\r\nAuthorization: Digest username=\"a\\\" response=no\", uri=\"sip:x;response=no\", response=\"yes\"\r\n\r\n";
        let want = format!(
            "A sip:x SIP/2.0\r\nAuthorization: Digest username=\"a\\\" response=no\", uri=\"sip:x;response=no\", response={R}\r\n\r\n"
        );
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn folded_header_lines() {
        let msg = "INVITE sip:b@h SIP/2.0\r\nAuthorization: Digest username=\"u\",\r\n  response=\"secret\",\r\n\tcnonce=\"c\"\r\nCSeq: 2 INVITE\r\n\r\n";
        let want = format!(
            "INVITE sip:b@h SIP/2.0\r\nAuthorization: Digest username=\"u\",\r\n  response={R},\r\n\tcnonce={R}\r\nCSeq: 2 INVITE\r\n\r\n"
        );
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn bare_lf_and_no_trailing_newline() {
        let msg = "INVITE sip:b@h SIP/2.0\nAuthorization: Digest response=\"s\"\nCSeq: 1 INVITE";
        let want =
            format!("INVITE sip:b@h SIP/2.0\nAuthorization: Digest response={R}\nCSeq: 1 INVITE");
        assert_eq!(redact_credentials(msg), want);
        let msg = "Authorization: Digest response=abc";
        assert_eq!(
            redact_credentials(msg),
            format!("Authorization: Digest response={R}")
        );
    }

    #[test]
    fn unterminated_quote_keeps_the_line_end_and_next_header() {
        let msg = "X sip:x SIP/2.0\r\nAuthorization: Digest response=\"abc\r\nCSeq: 1 X\r\n\r\n";
        let want =
            format!("X sip:x SIP/2.0\r\nAuthorization: Digest response={R}\r\nCSeq: 1 X\r\n\r\n");
        assert_eq!(redact_credentials(msg), want);
    }

    #[test]
    fn messages_without_credentials_are_unchanged() {
        let msg = "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(redact_credentials(msg), msg);
        assert_eq!(redact_credentials(""), "");
    }

    #[test]
    fn garbage_does_not_panic() {
        let cases = [
            "Authorization:",
            "Authorization",
            ":",
            "Authorization: \"",
            "Authorization: \"\\",
            "Authorization: response=",
            "Authorization: response=\"",
            "Authorization: response=\"\\",
            "Authorization: response  =  ",
            "Authorization: =,=,\"=\",response",
            "Authorization: ü=ö, response=\"é\", cnonce=ß€\r\n",
            "\r\n\r\n\r\n",
            "\n",
            "  \t\r\n Authorization: response=x",
            "Authorization: Digest response=x\r\n \r\n\tcnonce=y",
        ];
        for c in cases {
            let out = redact_credentials(c);
            assert!(!out.contains("response=x"), "{c:?} -> {out:?}");
        }
        // Pseudo-random strings over an alphabet of the characters that matter.
        let alphabet: Vec<char> = "Authorization:Proxy-aAuth response cnonce=\",\\\r\n\t ;éx"
            .chars()
            .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (seed % 80) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = redact_credentials(&format!("Authorization: {s}"));
            let _ = redact_credentials(&s);
        }
    }
}
