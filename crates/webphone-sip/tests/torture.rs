//! RFC 4475 (SIP torture test messages) and RFC 5118 (IPv6 torture test messages) through
//! `webphone_sip::parse::parse_message`: every valid message parses with the interesting
//! fields right, every invalid one is refused, and a refused request gets the 400/505 the
//! RFC asks for from `error_response`. The vectors are files under `tests/vectors/`, written
//! from the RFC texts (section numbers in the table below).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use webphone_sip::parse::{
    error_response, parse_message, ParseError, MAX_HEADER_LEN, MAX_MESSAGE_LEN,
};

fn vector(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Must parse.
    Valid,
    /// Must be refused; a request gets a response with this status (0: a response, never
    /// answered).
    Invalid(u16),
    /// Well-formed, with a method we do not implement: refused as such and answered
    /// 501 with our Allow list (RFC 3261 §21.5.2).
    Unimplemented,
}
use Expect::*;

const VECTORS: &[(&str, Expect)] = &[
    // RFC 4475 §3.1.1 valid messages
    ("rfc4475/valid/wsinv.sip", Valid),           // 3.1.1.1
    ("rfc4475/valid/intmeth.sip", Unimplemented), // 3.1.1.2
    ("rfc4475/valid/esc01.sip", Valid),           // 3.1.1.3
    ("rfc4475/valid/escnull.sip", Valid),         // 3.1.1.4
    ("rfc4475/valid/esc02.sip", Unimplemented),   // 3.1.1.5: RE%47IST%45R is not REGISTER
    ("rfc4475/valid/lwsdisp.sip", Valid),         // 3.1.1.6
    ("rfc4475/valid/longreq.sip", Valid),         // 3.1.1.7
    ("rfc4475/valid/dblreq.sip", Valid),          // 3.1.1.8
    ("rfc4475/valid/semiuri.sip", Valid),         // 3.1.1.9
    ("rfc4475/valid/transports.sip", Valid),      // 3.1.1.10
    ("rfc4475/valid/mpart01.sip", Valid),         // 3.1.1.11
    ("rfc4475/valid/unreason.sip", Valid),        // 3.1.1.12
    ("rfc4475/valid/noreason.sip", Valid),        // 3.1.1.13
    // RFC 4475 §3.1.2 invalid messages
    ("rfc4475/invalid/badinv01.sip", Invalid(400)), // 3.1.2.1
    ("rfc4475/invalid/clerr.sip", Invalid(400)),    // 3.1.2.2
    ("rfc4475/invalid/ncl.sip", Invalid(400)),      // 3.1.2.3
    ("rfc4475/invalid/scalar02.sip", Invalid(400)), // 3.1.2.4
    ("rfc4475/invalid/scalarlg.sip", Invalid(0)),   // 3.1.2.5 (response)
    ("rfc4475/invalid/quotbal.sip", Invalid(400)),  // 3.1.2.6
    ("rfc4475/invalid/ltgtruri.sip", Invalid(400)), // 3.1.2.7
    ("rfc4475/invalid/lwsruri.sip", Invalid(400)),  // 3.1.2.8
    ("rfc4475/invalid/lwsstart.sip", Invalid(400)), // 3.1.2.9
    ("rfc4475/invalid/trws.sip", Invalid(400)),     // 3.1.2.10
    ("rfc4475/invalid/escruri.sip", Invalid(400)),  // 3.1.2.11
    ("rfc4475/invalid/baddate.sip", Invalid(400)),  // 3.1.2.12
    ("rfc4475/invalid/regbadct.sip", Invalid(400)), // 3.1.2.13
    ("rfc4475/invalid/badaspec.sip", Invalid(400)), // 3.1.2.14
    ("rfc4475/invalid/baddn.sip", Invalid(400)),    // 3.1.2.15
    ("rfc4475/invalid/badvers.sip", Invalid(505)),  // 3.1.2.16
    ("rfc4475/invalid/mismatch01.sip", Invalid(400)), // 3.1.2.17
    ("rfc4475/invalid/mismatch02.sip", Invalid(400)), // 3.1.2.18
    ("rfc4475/invalid/bigcode.sip", Invalid(0)),    // 3.1.2.19 (response)
    // RFC 4475 §3.2 transaction layer: syntactically valid
    ("rfc4475/semantic/badbranch.sip", Valid), // 3.2.1
    // RFC 4475 §3.3 application layer: syntax errors first ...
    ("rfc4475/invalid/insuf.sip", Invalid(400)), // 3.3.1 missing required headers
    ("rfc4475/invalid/multi01.sip", Invalid(400)), // 3.3.8 multiple single-value headers
    ("rfc4475/invalid/mcl01.sip", Invalid(400)), // 3.3.9 multiple Content-Length
    // ... then valid syntax that a UA answers by meaning (416, 420, 415, 401, 406, 483)
    ("rfc4475/semantic/unkscm.sip", Valid),   // 3.3.2
    ("rfc4475/semantic/novelsc.sip", Valid),  // 3.3.3
    ("rfc4475/semantic/unksm2.sip", Valid),   // 3.3.4
    ("rfc4475/semantic/bext01.sip", Valid),   // 3.3.5
    ("rfc4475/semantic/invut.sip", Valid),    // 3.3.6
    ("rfc4475/semantic/regaut01.sip", Valid), // 3.3.7
    ("rfc4475/semantic/bcast.sip", Valid),    // 3.3.10
    ("rfc4475/semantic/zeromf.sip", Valid),   // 3.3.11
    ("rfc4475/semantic/cparam01.sip", Valid), // 3.3.12
    ("rfc4475/semantic/cparam02.sip", Valid), // 3.3.12
    ("rfc4475/semantic/regescrt.sip", Valid), // 3.3.13
    ("rfc4475/semantic/sdp01.sip", Valid),    // 3.3.14
    // RFC 4475 §3.4 backward compatibility
    ("rfc4475/valid/inv2543.sip", Valid), // 3.4.1
    // RFC 5118 §4
    ("rfc5118/valid/ipv6-good.sip", Valid),         // 4.1
    ("rfc5118/invalid/ipv6-bad.sip", Invalid(400)), // 4.2
    ("rfc5118/valid/port-ambiguous.sip", Valid),    // 4.3
    ("rfc5118/valid/port-unambiguous.sip", Valid),  // 4.4
    ("rfc5118/valid/via-received-param-with-delim.sip", Valid), // 4.5
    ("rfc5118/valid/via-received-param-no-delim.sip", Valid), // 4.5
    ("rfc5118/valid/ipv6-in-sdp.sip", Valid),       // 4.6
    ("rfc5118/valid/mult-ip-in-header.sip", Valid), // 4.7
    ("rfc5118/valid/mult-ip-in-sdp.sip", Valid),    // 4.8
    ("rfc5118/valid/ipv4-mapped-ipv6.sip", Valid),  // 4.9
    // 4.10: the RFC allows refusing or (robustly) accepting the extra colon; we refuse.
    ("rfc5118/invalid/ipv6-bug-abnf-3-colons.sip", Invalid(400)), // 4.10
    ("rfc5118/valid/ipv6-correct-abnf-2-colons.sip", Valid),      // 4.10
    // ordinary traffic (fuzz seeds, benchmark messages)
    ("common/invite.sip", Valid),
    ("common/ok200.sip", Valid),
    ("common/register.sip", Valid),
];

#[test]
fn every_vector_gets_the_rfc_verdict() {
    let mut failures = Vec::new();
    for (path, expect) in VECTORS {
        let data = vector(path);
        let got = parse_message(&data);
        match (expect, &got) {
            (Valid, Ok(_)) => {}
            (Invalid(code), Err(e)) => {
                let resp = error_response(&data, e);
                match (code, resp) {
                    (0, None) => {}
                    (0, Some(_)) => failures.push(format!("{path}: a response was answered")),
                    (c, Some(r)) => {
                        let r = String::from_utf8(r).unwrap();
                        if !r.starts_with(&format!("SIP/2.0 {c} ")) {
                            failures.push(format!("{path}: expected {c}, got {r}"));
                        }
                        // Framed, with the transaction headers copied (verbatim, so it
                        // need not pass our own checks when the request's did not).
                        for h in ["\r\nVia: ", "\r\nCall-ID: ", "\r\nCSeq: "] {
                            // (insuf has no Call-ID to copy.)
                            let exempt = h.contains("Call-ID") && path.ends_with("insuf.sip");
                            if !(r.contains(h) || exempt) {
                                failures.push(format!("{path}: {c} without {h:?}"));
                            }
                        }
                        if !r.ends_with("Content-Length: 0\r\n\r\n") {
                            failures.push(format!("{path}: {c} not framed: {r}"));
                        }
                    }
                    (c, None) => failures.push(format!("{path}: no {c} built for {e}")),
                }
            }
            (Unimplemented, Err(e @ ParseError::UnknownMethod(_))) => {
                let r = error_response(&data, e).map(|r| String::from_utf8(r).unwrap());
                match r {
                    Some(r)
                        if r.starts_with("SIP/2.0 501 ") && r.contains("\r\nAllow: INVITE,") => {}
                    other => {
                        failures.push(format!("{path}: expected 501 with Allow, got {other:?}"))
                    }
                }
            }
            (Unimplemented, other) => {
                failures.push(format!("{path}: expected an unknown method, got {other:?}"))
            }
            (Valid, Err(e)) => failures.push(format!("{path}: refused: {e}")),
            (Invalid(_), Ok(_)) => failures.push(format!("{path}: accepted")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_vector_file_is_in_the_table() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut missing = Vec::new();
    for dir in [
        "rfc4475/valid",
        "rfc4475/invalid",
        "rfc4475/semantic",
        "rfc5118/valid",
        "rfc5118/invalid",
        "common",
    ] {
        for f in std::fs::read_dir(root.join(dir)).unwrap() {
            let name = format!("{dir}/{}", f.unwrap().file_name().to_string_lossy());
            if !VECTORS.iter().any(|(p, _)| *p == name) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "vectors without a verdict: {missing:?}");
}

fn parse(path: &str) -> webphone_sip::parse::SipMessage {
    parse_message(&vector(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn wsinv_folded_headers_and_odd_whitespace() {
    let m = parse("rfc4475/valid/wsinv.sip");
    assert_eq!(m.method().as_deref(), Some("INVITE"));
    assert_eq!(m.header("Max-Forwards"), Some("0068"));
    assert_eq!(m.header("Call-ID"), Some("wsinv.ndaksdj@192.0.2.1"));
    // CSeq folded over two lines
    assert_eq!(m.header("CSeq"), Some("0009 INVITE"));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    // Via and v: (compact form, two via-parms folded over four lines)
    let vias = m.header_values("Via");
    assert_eq!(vias.len(), 2, "{vias:?}");
    assert!(vias[0].contains("192.0.2.2;rport;branch=390skdjuw"));
    assert!(vias[1].contains("z9hG4bK9ikj8") && vias[1].contains("z9hG4bK30239"));
    // empty Subject (s :)
    assert_eq!(m.header("Subject"), Some(""));
    assert!(m
        .header("Contact")
        .unwrap()
        .starts_with(r#""Quoted string \"\"""#));
    assert!(m.header("From").unwrap().contains(r#""J Rosenberg \\\"""#));
    assert_eq!(m.body().len(), 150);
    assert!(m.body().starts_with(b"v=0\r\n"));
}

#[test]
fn esc01_escapes_kept_verbatim() {
    let m = parse("rfc4475/valid/esc01.sip");
    assert_eq!(m.header("To"), Some("sip:%75se%72@example.com"));
    assert_eq!(m.header("i"), Some("esc01.239409asdfakjkn23onasd0-3234"));
    assert_eq!(m.header("Content-Type"), Some("application/sdp"));
    assert!(m
        .header("Contact")
        .unwrap()
        .contains("n%61me=v%61lue%25%34%31"));
}

#[test]
fn escnull_two_contacts_with_escaped_nulls() {
    let m = parse("rfc4475/valid/escnull.sip");
    assert_eq!(
        m.header_values("Contact"),
        vec![
            "<sip:%00@host5.example.com>",
            "<sip:%00%00@host5.example.com>"
        ]
    );
    assert_eq!(m.header("Content-Length"), Some("0"));
}

#[test]
fn longreq_long_values_and_34_vias() {
    let m = parse("rfc4475/valid/longreq.sip");
    assert_eq!(m.header_values("Via").len(), 33);
    assert!(m.header("To").unwrap().contains(&"extreme".repeat(10)));
    assert!(m.header("From").unwrap().contains(&"982".repeat(50)));
    assert_eq!(
        m.header("Call-ID"),
        Some(format!("longreq.one{}longcallid", "really".repeat(20)).as_str())
    );
    assert_eq!(m.body().len(), 150);
}

#[test]
fn dblreq_trailing_request_in_datagram_is_ignored() {
    let m = parse("rfc4475/valid/dblreq.sip");
    assert_eq!(m.method().as_deref(), Some("REGISTER"));
    assert!(m.body().is_empty());
}

#[test]
fn mpart01_binary_body_kept_byte_for_byte() {
    let raw = vector("rfc4475/valid/mpart01.sip");
    let m = parse("rfc4475/valid/mpart01.sip");
    let body_at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(m.body(), &raw[body_at..]);
    assert!(m.body().contains(&0u8) && m.body().contains(&0xffu8));
    // serialized again, the body is unchanged
    let again = parse_message(&m.to_bytes()).unwrap();
    assert_eq!(again.body(), m.body());
}

#[test]
fn responses_with_unusual_or_empty_reason_phrases() {
    let m = parse("rfc4475/valid/unreason.sip");
    assert_eq!(m.status_code(), Some(200));
    assert_eq!(m.body().len(), 154);
    let m = parse("rfc4475/valid/noreason.sip");
    assert_eq!(m.status_code(), Some(100));
}

#[test]
fn transports_and_semicolon_uri_user() {
    let m = parse("rfc4475/valid/transports.sip");
    let vias = m.header_values("Via");
    assert_eq!(vias.len(), 5);
    assert!(vias[3].starts_with("SIP/2.0/UNKNOWN t4.example.com"));
    let m = parse("rfc4475/valid/semiuri.sip");
    assert!(m
        .request_uri()
        .unwrap()
        .contains("user;par=u%40example.net@example.com"));
    assert_eq!(
        m.header("Accept"),
        Some("application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag")
    );
}

#[test]
fn ipv6_references_come_out_right() {
    let m = parse("rfc5118/valid/port-unambiguous.sip");
    assert_eq!(m.request_uri().as_deref(), Some("sip:[2001:db8::10]:5070"));
    let m = parse("rfc5118/valid/ipv6-good.sip");
    assert_eq!(m.request_uri().as_deref(), Some("sip:[2001:db8::10]"));
    let m = parse("rfc5118/valid/mult-ip-in-header.sip");
    assert_eq!(m.header_values("Via").len(), 3);
    let m = parse("rfc5118/valid/ipv4-mapped-ipv6.sip");
    assert!(m
        .header("Via")
        .unwrap()
        .contains("[::ffff:192.0.2.10]:19823"));
}

#[test]
fn invalid_vectors_fail_for_the_right_reason() {
    let err = |p: &str| parse_message(&vector(p)).unwrap_err();
    assert!(matches!(
        err("rfc4475/invalid/clerr.sip"),
        ParseError::ContentLength(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/ncl.sip"),
        ParseError::ContentLength(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/mcl01.sip"),
        ParseError::ContentLength(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/insuf.sip"),
        ParseError::Missing(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/multi01.sip"),
        ParseError::Duplicate(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/badvers.sip"),
        ParseError::Version(_)
    ));
    assert!(matches!(
        err("rfc4475/invalid/mismatch01.sip"),
        ParseError::CSeqMismatch { .. }
    ));
    assert!(matches!(
        err("rfc4475/invalid/mismatch02.sip"),
        ParseError::CSeqMismatch { .. }
    ));
    for p in ["lwsruri", "lwsstart", "trws", "ltgtruri", "escruri"] {
        assert!(
            matches!(
                err(&format!("rfc4475/invalid/{p}.sip")),
                ParseError::StartLine(_)
            ),
            "{p}"
        );
    }
    for p in [
        "badinv01", "quotbal", "regbadct", "badaspec", "baddn", "baddate", "scalar02",
    ] {
        assert!(
            matches!(
                err(&format!("rfc4475/invalid/{p}.sip")),
                ParseError::Header { .. }
            ),
            "{p}: {}",
            err(&format!("rfc4475/invalid/{p}.sip"))
        );
    }
}

#[test]
fn error_response_copies_the_transaction_headers() {
    let data = vector("rfc4475/invalid/mismatch01.sip");
    let e = parse_message(&data).unwrap_err();
    let r = String::from_utf8(error_response(&data, &e).unwrap()).unwrap();
    assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
    assert!(r.contains("Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n"));
    assert!(r.contains("Call-ID: mismatch01.dj0234sxdfl3\r\n"));
    assert!(r.contains("CSeq: 8 INVITE\r\n"));
    assert!(r.contains("To: sip:j.user@example.com;tag="));
    // insuf has no From/To/Call-ID: answered with what the client matches by (Via, CSeq).
    let data = vector("rfc4475/invalid/insuf.sip");
    let e = parse_message(&data).unwrap_err();
    let r = String::from_utf8(error_response(&data, &e).unwrap()).unwrap();
    assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
    assert!(r.contains("Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\n"));
    assert!(r.contains("CSeq: 193942 INVITE\r\n"));
    assert!(!r.contains("From:") && !r.contains("Call-ID:"), "{r}");
}

fn options_with(extra: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "OPTIONS sip:u@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: c1\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

#[test]
fn sizes_are_bounded() {
    assert!(parse_message(&options_with("", b"")).is_ok());
    // a header just under the limit passes, one over it is refused
    let ok = format!("X-Long: {}\r\n", "a".repeat(MAX_HEADER_LEN - 16));
    assert!(parse_message(&options_with(&ok, b"")).is_ok());
    let long = format!("X-Long: {}\r\n", "a".repeat(MAX_HEADER_LEN));
    assert!(matches!(
        parse_message(&options_with(&long, b"")),
        Err(ParseError::HeaderTooLong { .. })
    ));
    // folding does not get around the header limit
    let folded = format!(
        "X-Long: a\r\n{}",
        " bbbbbbbbbbbbbbbb\r\n".repeat(MAX_HEADER_LEN / 16)
    );
    assert!(matches!(
        parse_message(&options_with(&folded, b"")),
        Err(ParseError::HeaderTooLong { .. })
    ));
    // a message over 64 KiB is refused with 513
    let big = options_with("", &vec![b'x'; MAX_MESSAGE_LEN]);
    let e = parse_message(&big).unwrap_err();
    assert!(matches!(e, ParseError::TooLarge { .. }));
    let r = String::from_utf8(error_response(&big, &e).unwrap()).unwrap();
    assert!(r.starts_with("SIP/2.0 513 "), "{r}");
    // too many header fields
    let many = "X-A: 1\r\n".repeat(300);
    assert!(matches!(
        parse_message(&options_with(&many, b"")),
        Err(ParseError::TooManyHeaders(_))
    ));
    // a huge Content-Length is an error, not an allocation
    let huge = options_with("", b"").replace_content_length("99999999999999999999999");
    assert!(matches!(
        parse_message(&huge),
        Err(ParseError::ContentLength(_))
    ));
}

#[test]
fn non_utf8_header_line_is_refused_not_truncated() {
    // rsipstack would stop reading headers at this line and accept the message without
    // the headers after it; we refuse it.
    let mut m = options_with("", b"");
    let at = m.windows(7).position(|w| w == b"Call-ID").unwrap();
    m.splice(at..at, b"X-Latin1: caf\xe9\r\n".iter().copied());
    assert!(parse_message(&m).is_err());
}

trait ReplaceCl {
    fn replace_content_length(self, v: &str) -> Vec<u8>;
}
impl ReplaceCl for Vec<u8> {
    fn replace_content_length(self, v: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("Content-Length: 0", &format!("Content-Length: {v}"))
            .into_bytes()
    }
}

#[test]
#[ignore = "rsipstack 0.7.14 re-escapes '%' in the Request-URI user part: sips%3Auser%40example.com comes out as sips%253Auser%2540example.com (on the wire over UDP stack/uri_escapes.rs undoes it, torture_live bye_goes_to_an_escaped_contact_as_written; not over TCP/TLS/WS)"]
fn esc01_request_uri_survives_a_round_trip() {
    let m = parse("rfc4475/valid/esc01.sip");
    assert_eq!(
        m.request_uri().as_deref(),
        Some("sip:sips%3Auser%40example.com@example.net")
    );
}
