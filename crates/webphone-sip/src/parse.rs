//! Bounded, validating front end to the SIP message parser.
//!
//! rsipstack 0.7.14 parses leniently: header values stay untyped text, a bad
//! `Content-Length` counts as 0, a body shorter than `Content-Length` is accepted, duplicate
//! single-instance headers and a CSeq that disagrees with the method pass, and a header line
//! that is not UTF-8 silently ends the header list. [`parse_message`] runs our own checks
//! first (sizes, the start line, the header fields a UA relies on; RFC 3261 §7, §8.2.2, §18.3,
//! §25, and the cases of the RFC 4475 torture tests and the RFC 5118 IPv6 vectors), then
//! hands the bytes to rsipstack's parser. [`error_response`] builds the response a UA sends
//! for a refused request when its Via, From, To, Call-ID and CSeq can be found (400, 505 or 513).
//!
//! Nothing here allocates more than a constant factor of the (bounded) input.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use rsipstack::sip as rs;

/// Largest message accepted (bytes); a UDP datagram cannot be larger anyway.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Largest header field (name, value and folded continuation lines together).
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most header fields in one message.
pub const MAX_HEADERS: usize = 256;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge { len: usize, max: usize },
    #[error("header field {name:?} of {len} bytes exceeds {max}")]
    HeaderTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("no empty line ends the header section")]
    Incomplete,
    #[error("start line: {0}")]
    StartLine(String),
    #[error("SIP version {0:?} not supported")]
    Version(String),
    #[error("missing {0} header field")]
    Missing(&'static str),
    #[error("{0} header field appears more than once")]
    Duplicate(&'static str),
    #[error("Content-Length: {0}")]
    ContentLength(String),
    #[error("header field {name}: {reason}")]
    Header { name: String, reason: String },
    #[error("CSeq method {cseq:?} differs from the request method {method:?}")]
    CSeqMismatch { method: String, cseq: String },
    #[error("{0}")]
    Syntax(String),
    /// A well-formed request whose method we do not implement (an extension method, or a
    /// known name in other letter case: methods are case-sensitive, RFC 3261 §7.1).
    #[error("method {0:?} not implemented")]
    UnknownMethod(String),
}

impl ParseError {
    /// The status a UA answers a request refused for this reason with (RFC 3261 §8.2,
    /// §21.4.14 513, §21.5.2 501, §21.5.7 505).
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::Version(_) => 505,
            ParseError::TooLarge { .. } => 513,
            ParseError::UnknownMethod(_) => 501,
            _ => 400,
        }
    }

    fn header(name: &str, reason: impl Into<String>) -> ParseError {
        ParseError::Header {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// A parsed SIP message (request or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    inner: rs::SipMessage,
}

impl SipMessage {
    pub fn is_request(&self) -> bool {
        self.inner.is_request()
    }

    /// The request method (`None` for a response).
    pub fn method(&self) -> Option<String> {
        match &self.inner {
            rs::SipMessage::Request(r) => Some(r.method.to_string()),
            rs::SipMessage::Response(_) => None,
        }
    }

    /// The Request-URI as rsipstack serializes it (`None` for a response).
    pub fn request_uri(&self) -> Option<String> {
        match &self.inner {
            rs::SipMessage::Request(r) => Some(r.uri.to_string()),
            rs::SipMessage::Response(_) => None,
        }
    }

    /// The status code (`None` for a request).
    pub fn status_code(&self) -> Option<u16> {
        match &self.inner {
            rs::SipMessage::Response(r) => Some(r.status_code.code()),
            rs::SipMessage::Request(_) => None,
        }
    }

    /// Every value of a header field, in order; `name` is matched case-insensitively and
    /// compact forms (RFC 3261 §7.3.3) count as their long names.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let want = canonical(name);
        self.headers()
            .iter()
            .filter(|h| canonical(h.name()).eq_ignore_ascii_case(want))
            .map(|h| h.value().trim())
            .collect()
    }

    /// The first value of a header field.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.headers().len()
    }

    pub fn body(&self) -> &[u8] {
        match &self.inner {
            rs::SipMessage::Request(r) => &r.body,
            rs::SipMessage::Response(r) => &r.body,
        }
    }

    /// The message on the wire again (rsipstack's serializer).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    fn headers(&self) -> &Vec<rs::Header> {
        match &self.inner {
            rs::SipMessage::Request(r) => &r.headers.0,
            rs::SipMessage::Response(r) => &r.headers.0,
        }
    }

    /// The rsipstack message, for the stack module.
    #[allow(dead_code)]
    pub(crate) fn into_inner(self) -> rs::SipMessage {
        self.inner
    }
}

impl fmt::Display for SipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// Parse one complete message (a UDP datagram, or a framed stream message) with bounded
/// sizes and the checks described in the module documentation.
pub fn parse_message(data: &[u8]) -> Result<SipMessage, ParseError> {
    let raw = scan(data)?;
    validate(&raw)?;
    let end = raw.body_start + raw.body_len;
    if let Some(method) = extension_method(raw.start) {
        // rsipstack's method type has no extension variant. The rest of the request is
        // checked by parsing it under a method we know; a request that passes is
        // well-formed (RFC 4475 §3.1.1.2 and §3.1.1.5) and gets 501 (RFC 3261 §21.5.2).
        rs::parser::parse_message(&with_method(&raw, &data[raw.body_start..end], "OPTIONS"))
            .map_err(|e| ParseError::Syntax(e.to_string()))?;
        return Err(ParseError::UnknownMethod(method.to_string()));
    }
    let inner =
        rs::parser::parse_message(&data[..end]).map_err(|e| ParseError::Syntax(e.to_string()))?;
    Ok(SipMessage { inner })
}

/// The response to send for a request refused with `err`, when `data` is a request whose
/// Via and CSeq header fields can be found: what the client matches a response to its
/// transaction by (RFC 3261 §17.1.3). From, To and Call-ID are copied when present (§8.2.6.2);
/// a request without them still gets its 400 (RFC 4475 §3.3.1). `None` for responses (never
/// answered) and for requests too broken to answer.
pub fn error_response(data: &[u8], err: &ParseError) -> Option<Vec<u8>> {
    let data = &data[..data.len().min(MAX_MESSAGE_LEN)];
    let head_end = find(data, b"\r\n\r\n").unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let lines: Vec<String> = unfold(head).collect();
    let start = lines.first()?;
    if start.starts_with("SIP/") || start.split(' ').count() < 3 {
        return None;
    }
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match canonical(name.trim()) {
            "Via" => vias.push(value),
            "From" => {
                from.get_or_insert(value);
            }
            "To" => {
                to.get_or_insert(value);
            }
            "Call-ID" => {
                call_id.get_or_insert(value);
            }
            "CSeq" => {
                cseq.get_or_insert(value);
            }
            _ => {}
        }
    }
    if vias.is_empty() {
        return None;
    }
    let cseq = cseq?;
    let code = err.status_code();
    let reason = match code {
        501 => "Not Implemented",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "Bad Request",
    };
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in vias {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    if let Some(from) = from {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = to {
        let to_tag = if to.to_ascii_lowercase().contains(";tag=") {
            ""
        } else {
            ";tag=wp400"
        };
        out.push_str(&format!("To: {to}{to_tag}\r\n"));
    }
    if let Some(call_id) = call_id {
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
    }
    let warning: String = err
        .to_string()
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(120)
        .collect();
    out.push_str(&format!("CSeq: {cseq}\r\nWarning: 399 - \"{warning}\"\r\n"));
    if code == 501 {
        // What we do implement (RFC 3261 §20.5 allows Allow in any response).
        out.push_str(&format!("Allow: {}\r\n", crate::stack::ALLOW));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// Request methods rsipstack can represent, as RFC 3261 and its extensions spell them.
const KNOWN_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// The method of a request line when it is not one of [`KNOWN_METHODS`] (compared
/// case-sensitively, RFC 3261 §7.1); `None` for known methods and status lines.
fn extension_method(start: &str) -> Option<&str> {
    if start.starts_with("SIP/") {
        return None;
    }
    let method = start.split(' ').next()?;
    (!KNOWN_METHODS.contains(&method)).then_some(method)
}

/// The request of `raw` rebuilt with `method` in its request line and CSeq (header fields
/// unfolded, the body as given).
fn with_method(raw: &Raw<'_>, body: &[u8], method: &str) -> Vec<u8> {
    let rest = raw.start.split_once(' ').map_or("", |(_, r)| r);
    let mut out = format!("{method} {rest}\r\n");
    for (name, value) in &raw.headers {
        let value = if canonical(name) == "CSeq" {
            let num = value.split([' ', '\t']).next().unwrap_or("");
            format!("{num} {method}")
        } else {
            value.clone()
        };
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

// ---------------------------------------------------------------------------------------
// Framing

struct Raw<'a> {
    start: &'a str,
    headers: Vec<(String, String)>,
    body_start: usize,
    body_len: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Logical header lines: continuation lines (starting with SP or HT) joined with one SP.
fn unfold(head: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = head.split("\r\n").peekable();
    std::iter::from_fn(move || {
        let mut line = lines.next()?.to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                line.push(' ');
                line.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        Some(line)
    })
}

fn scan(data: &[u8]) -> Result<Raw<'_>, ParseError> {
    if data.len() > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLarge {
            len: data.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    let head_end = find(data, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
    let head = std::str::from_utf8(&data[..head_end])
        .map_err(|e| ParseError::Syntax(format!("header section is not UTF-8: {e}")))?;
    let (start, rest) = head.split_once("\r\n").unwrap_or((head, ""));
    if rest.starts_with([' ', '\t']) {
        return Err(ParseError::Syntax(
            "continuation line after the start line".into(),
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    let push = |h: (String, String), headers: &mut Vec<(String, String)>| {
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders(MAX_HEADERS));
        }
        headers.push(h);
        Ok(())
    };
    for line in rest.split("\r\n").filter(|_| !rest.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some((name, value)) = current.as_mut() {
                if name.len() + value.len() + line.len() > MAX_HEADER_LEN {
                    return Err(ParseError::HeaderTooLong {
                        name: name.clone(),
                        len: name.len() + value.len() + line.len(),
                        max: MAX_HEADER_LEN,
                    });
                }
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some(h) = current.take() {
            push(h, &mut headers)?;
        }
        if line.len() > MAX_HEADER_LEN {
            return Err(ParseError::HeaderTooLong {
                name: line
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(64)
                    .collect(),
                len: line.len(),
                max: MAX_HEADER_LEN,
            });
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::Syntax("header line without a colon".into()))?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::header(name, "invalid header field name"));
        }
        current = Some((name.to_string(), value.trim().to_string()));
    }
    if let Some(h) = current.take() {
        push(h, &mut headers)?;
    }
    let body_start = head_end + 4;
    let available = data.len() - body_start;
    let mut lengths = headers
        .iter()
        .filter(|(n, _)| canonical(n) == "Content-Length")
        .map(|(_, v)| v.as_str());
    let body_len = match lengths.next() {
        None => available,
        Some(first) => {
            if lengths.any(|other| other != first) {
                return Err(ParseError::ContentLength(
                    "several header fields with different values".into(),
                ));
            }
            if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::ContentLength(format!(
                    "not a number: {first:?}"
                )));
            }
            let n: usize = first
                .parse()
                .map_err(|_| ParseError::ContentLength("too large".into()))?;
            if n > available {
                return Err(ParseError::ContentLength(format!(
                    "{n} octets announced, {available} present"
                )));
            }
            n
        }
    };
    Ok(Raw {
        start,
        headers,
        body_start,
        body_len,
    })
}

// ---------------------------------------------------------------------------------------
// Checks

/// RFC 3261 §25.1 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// The long name of a header field name given in compact form (RFC 3261 §7.3.3, RFC 3515,
/// RFC 4028, RFC 6665); other names are returned as given.
fn canonical(name: &str) -> &str {
    const COMPACT: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
        ("u", "Allow-Events"),
    ];
    const LONG: &[&str] = &[
        "Call-ID",
        "Contact",
        "Content-Length",
        "Content-Type",
        "From",
        "To",
        "Via",
        "CSeq",
        "Max-Forwards",
        "Expires",
        "Date",
        "Route",
        "Record-Route",
        "Retry-After",
        "Warning",
    ];
    if let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
        return long;
    }
    LONG.iter()
        .find(|l| l.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

fn validate(raw: &Raw<'_>) -> Result<(), ParseError> {
    let request_method = check_start_line(raw.start)?;
    let values = |name: &str| -> Vec<&str> {
        raw.headers
            .iter()
            .filter(|(n, _)| canonical(n) == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if values(name).is_empty() {
            return Err(ParseError::Missing(name));
        }
    }
    for name in [
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Type",
        "Expires",
    ] {
        if values(name).len() > 1 {
            return Err(ParseError::Duplicate(name));
        }
    }
    for v in values("Via") {
        check_via(v).map_err(|r| ParseError::header("Via", r))?;
    }
    for name in ["From", "To"] {
        for v in values(name) {
            check_addresses(v, false).map_err(|r| ParseError::header(name, r))?;
        }
    }
    for v in values("Contact") {
        if v.trim() != "*" {
            check_addresses(v, true).map_err(|r| ParseError::header("Contact", r))?;
        }
    }
    for name in ["Route", "Record-Route"] {
        for v in values(name) {
            check_addresses(v, true).map_err(|r| ParseError::header(name, r))?;
        }
    }
    for v in values("Call-ID") {
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(ParseError::header(
                "Call-ID",
                "empty or contains whitespace",
            ));
        }
    }
    let cseq = values("CSeq")[0];
    let (num, cseq_method) = cseq
        .split_once([' ', '\t'])
        .ok_or_else(|| ParseError::header("CSeq", "no method"))?;
    let cseq_method = cseq_method.trim();
    match num.parse::<u32>() {
        Ok(n) if n < 1 << 31 => {}
        _ => return Err(ParseError::header("CSeq", "number not below 2**31")),
    }
    if !is_token(cseq_method) {
        return Err(ParseError::header("CSeq", "method is not a token"));
    }
    if let Some(method) = request_method {
        if method != cseq_method {
            return Err(ParseError::CSeqMismatch {
                method: method.to_string(),
                cseq: cseq_method.to_string(),
            });
        }
    }
    for v in values("Max-Forwards") {
        match v.parse::<u8>() {
            Ok(_) if v.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(ParseError::header("Max-Forwards", "not a number 0..=255")),
        }
    }
    for name in ["Expires", "Retry-After"] {
        for v in values(name) {
            let n = v.split([';', '(', ' ']).next().unwrap_or("").trim();
            if n.parse::<u32>().is_err() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::header(name, "not a 32-bit number"));
            }
        }
    }
    for v in values("Date") {
        if !v.trim_end().ends_with(" GMT") {
            return Err(ParseError::header("Date", "time zone is not GMT"));
        }
    }
    for v in values("Warning") {
        for w in split_list(v) {
            let code = w.split(' ').next().unwrap_or("");
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::header("Warning", "warn-code is not 3 digits"));
            }
        }
    }
    Ok(())
}

/// The request method for a request, `None` for a response.
fn check_start_line(line: &str) -> Result<Option<&str>, ParseError> {
    let parts: Vec<&str> = line.split(' ').collect();
    if line.starts_with("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        if parts.len() < 2 {
            return Err(ParseError::StartLine("no status code".into()));
        }
        check_version(parts[0])?;
        let code = parts[1];
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code < "100" {
            return Err(ParseError::StartLine(format!(
                "status code {:?} is not 3 digits 100..699",
                trunc(code)
            )));
        }
        if code >= "700" {
            return Err(ParseError::StartLine("status code above 699".into()));
        }
        if parts.len() < 3 {
            return Err(ParseError::StartLine(
                "no SP before the reason phrase".into(),
            ));
        }
        return Ok(None);
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (single SPs, RFC 3261 §7.1)
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ParseError::StartLine(
            "not Method SP Request-URI SP SIP-Version".into(),
        ));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !is_token(method) {
        return Err(ParseError::StartLine("method is not a token".into()));
    }
    if uri.starts_with('<') || uri.contains(['\t', '<', '>', '"']) {
        return Err(ParseError::StartLine(
            "Request-URI in angle brackets or with forbidden characters".into(),
        ));
    }
    check_version(version)?;
    let (scheme, _) = uri
        .split_once(':')
        .ok_or_else(|| ParseError::StartLine("Request-URI without a scheme".into()))?;
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        if after_userinfo(uri).contains('?') {
            return Err(ParseError::StartLine(
                "headers in a SIP Request-URI (RFC 3261 §19.1.5)".into(),
            ));
        }
        check_sip_uri(uri).map_err(ParseError::StartLine)?;
    } else {
        check_scheme(scheme).map_err(ParseError::StartLine)?;
    }
    Ok(Some(method))
}

fn trunc(s: &str) -> String {
    s.chars().take(24).collect()
}

fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let ok = v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        && v[4..]
            .split_once('.')
            .is_some_and(|(a, b)| is_digits(a) && is_digits(b));
    if ok {
        Err(ParseError::Version(v.to_string()))
    } else {
        Err(ParseError::StartLine(format!(
            "bad SIP-Version {:?}",
            trunc(v)
        )))
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_scheme(scheme: &str) -> Result<(), String> {
    let mut b = scheme.bytes();
    let first_alpha = b.next().is_some_and(|c| c.is_ascii_alphabetic());
    if first_alpha && b.all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) {
        Ok(())
    } else {
        Err("invalid URI scheme".into())
    }
}

/// `sip:`/`sips:` URI: userinfo@hostport;params?headers with a valid host and port.
/// What follows the scheme and the userinfo of a SIP URI: host, port, parameters and
/// headers. The userinfo may hold `?`, `;` and `/` (RFC 4475 §3.1.1.2) and, out of the
/// grammar but sent in the field, an unescaped `@` (an e-mail address as user name,
/// `sip:john@example.com@proxy.net`, which rsipstack reads the same way); neither
/// parameters nor headers may hold one (RFC 3261 §25.1). So the userinfo ends at the last
/// `@`, unless a `?` comes between the first and the last: then the later `@` sits in a
/// header (`sip:bob@host?subject=x@y`) and the userinfo ends at the first.
fn after_userinfo(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let (Some(first), Some(last)) = (rest.find('@'), rest.rfind('@')) else {
        return rest;
    };
    if first < last && rest[first + 1..last].contains('?') {
        &rest[first + 1..]
    } else {
        &rest[last + 1..]
    }
}

fn check_sip_uri(uri: &str) -> Result<(), String> {
    if !uri.contains(':') {
        return Err("no scheme".into());
    }
    let rest = after_userinfo(uri);
    let hostport_params = rest.split('?').next().unwrap_or(rest);
    if hostport_params.contains(char::is_whitespace) {
        return Err("whitespace in URI".into());
    }
    let hostport = hostport_params.split(';').next().unwrap_or("");
    check_hostport(hostport)?;
    for p in hostport_params.split(';').skip(1) {
        if p.is_empty() {
            return Err("empty URI parameter".into());
        }
    }
    Ok(())
}

fn check_hostport(hp: &str) -> Result<(), String> {
    let (host, port) = if let Some(v6) = hp.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unterminated IPv6 reference")?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 reference [{}]", trunc(addr)))?;
        match after {
            "" => return Ok(()),
            a => match a.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return Err("garbage after IPv6 reference".into()),
            },
        }
    } else {
        match hp.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if !host.is_empty() || !hp.starts_with('[') {
        let is_v4 = host.parse::<Ipv4Addr>().is_ok();
        let is_name = !host.is_empty()
            && host.split('.').enumerate().all(|(i, label)| {
                (!label.is_empty() || i > 0)
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !is_v4 && !is_name {
            return Err(format!("invalid host {:?}", trunc(host)));
        }
    }
    if let Some(p) = port {
        if !is_digits(p) || p.parse::<u16>().is_err() {
            return Err(format!("invalid port {:?}", trunc(p)));
        }
    }
    Ok(())
}

/// Split a header value at commas outside quoted strings and angle brackets.
fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut start) = (false, false, false, 0);
    for (i, c) in v.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out
}

/// Via = via-parm *(COMMA via-parm); via-parm = sent-protocol LWS sent-by *(SEMI via-params)
fn check_via(v: &str) -> Result<(), String> {
    for parm in split_list(v) {
        if parm.is_empty() {
            return Err("empty via-parm".into());
        }
        // sent-protocol: "SIP" SLASH "2.0" SLASH transport, LWS allowed around SLASH.
        let mut rest = parm;
        let mut fields = Vec::new();
        for i in 0..3 {
            let r = rest.trim_start();
            let end = r
                .find(|c: char| c == '/' || c.is_whitespace())
                .unwrap_or(r.len());
            fields.push(&r[..end]);
            rest = r[end..].trim_start();
            if i < 2 {
                rest = rest.strip_prefix('/').ok_or("sent-protocol without '/'")?;
            }
        }
        if !fields[0].eq_ignore_ascii_case("SIP") || !is_token(fields[1]) || !is_token(fields[2]) {
            return Err("bad sent-protocol".into());
        }
        if fields[1] != "2.0" {
            return Err(format!("protocol version {:?}", trunc(fields[1])));
        }
        let mut segs = rest.split(';');
        let sent_by = segs.next().unwrap_or("").trim();
        let sent_by = match sent_by.split_once(|c: char| c.is_whitespace()) {
            // "host : port" with LWS is allowed (RFC 3261 §25.1 COLON)
            Some(_) => sent_by.split_whitespace().collect::<String>(),
            None => sent_by.to_string(),
        };
        check_hostport(&sent_by)?;
        for p in segs {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if !is_token(name) {
                return Err("empty or invalid Via parameter name".into());
            }
            if let Some(value) = value {
                let bracketed = value.starts_with('[') && value.ends_with(']');
                let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
                // received may hold a bare IPv6 address (RFC 5118 §4.5)
                let ipv6 = value.parse::<Ipv6Addr>().is_ok();
                if !(is_token(value) || bracketed || quoted || ipv6) {
                    return Err(format!("bad value of Via parameter {name}"));
                }
            }
        }
    }
    Ok(())
}

/// From/To (one address) or Contact/Route/Record-Route (`list`): each entry a name-addr
/// (`[display-name] <URI>`) or an addr-spec, followed by parameters.
fn check_addresses(v: &str, list: bool) -> Result<(), String> {
    let entries = if list { split_list(v) } else { vec![v.trim()] };
    for e in entries {
        check_address(e)?;
    }
    Ok(())
}

fn check_address(e: &str) -> Result<(), String> {
    if e.is_empty() {
        return Err("empty address".into());
    }
    let params = if let Some(lt) = find_unquoted(e, '<') {
        let display = e[..lt].trim();
        check_display_name(display)?;
        let after = &e[lt + 1..];
        let gt = after.find('>').ok_or("'<' without '>'")?;
        let uri = &after[..gt];
        if uri.is_empty() || uri.contains(char::is_whitespace) {
            return Err("whitespace or nothing inside <>".into());
        }
        check_uri(uri)?;
        &after[gt + 1..]
    } else {
        if e.contains('"') {
            return Err("unbalanced quotes".into());
        }
        // addr-spec: the URI ends at the first ';' (its parameters are header parameters);
        // '?' and ',' are not allowed outside <> (RFC 3261 §20).
        let uri = e.split(';').next().unwrap_or("").trim();
        if uri.contains('?') || uri.contains(char::is_whitespace) {
            return Err("addr-spec with '?' or whitespace must be in <>".into());
        }
        check_uri(uri)?;
        &e[uri.len()..]
    };
    let params = params.trim();
    if params.is_empty() {
        return Ok(());
    }
    let params = params.strip_prefix(';').ok_or("text after the address")?;
    for p in params.split(';') {
        let name = p.split('=').next().unwrap_or("").trim();
        if !is_token(name) {
            return Err("empty or invalid header parameter".into());
        }
    }
    Ok(())
}

/// The display name (quotes and escapes removed, `None` when absent or empty) and the URI text
/// of one From/To/Contact value: a name-addr or an addr-spec with its parameters (RFC 3261
/// §20.10, §25.1). A `<`, `>`, `;` or `,` inside a quoted display name belongs to the name.
/// `None` when there is no URI.
pub(crate) fn name_addr(value: &str) -> Option<(Option<String>, String)> {
    let e = value.trim();
    let (display, uri) = match find_unquoted(e, '<') {
        Some(lt) => {
            let after = &e[lt + 1..];
            let gt = after.find('>')?;
            (e[..lt].trim(), after[..gt].trim())
        }
        None if e.contains('"') => return None,
        None => ("", e.split(';').next().unwrap_or("").trim()),
    };
    if uri.is_empty() {
        return None;
    }
    let display = match display.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        Some(quoted) => {
            let mut out = String::with_capacity(quoted.len());
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => display.to_string(),
    };
    let display = display.trim().to_string();
    Some(((!display.is_empty()).then_some(display), uri.to_string()))
}

fn find_unquoted(s: &str, want: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if c == want {
            return Some(i);
        }
    }
    None
}

/// display-name = *(token LWS) / quoted-string
fn check_display_name(d: &str) -> Result<(), String> {
    if d.is_empty() {
        return Ok(());
    }
    if let Some(inner) = d.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    return if inner[i + 1..].trim().is_empty() {
                        Ok(())
                    } else {
                        Err("text after the quoted display name".into())
                    };
                }
                _ => {}
            }
        }
        return Err("unterminated quoted display name".into());
    }
    if d.split_whitespace().all(is_token) {
        Ok(())
    } else {
        Err("display name with non-token characters must be quoted".into())
    }
}

fn check_uri(uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri.split_once(':').ok_or("URI without a scheme")?;
    check_scheme(scheme)?;
    if rest.is_empty() {
        return Err("empty URI".into());
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        check_sip_uri(uri)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn name_addr_keeps_markup_and_separators_of_a_quoted_display_name() {
        assert_eq!(
            super::name_addr(r#""<i>Eve</i> & Co" <sip:1003@127.0.0.1:5060>;tag=x"#),
            Some((
                Some("<i>Eve</i> & Co".into()),
                "sip:1003@127.0.0.1:5060".into()
            ))
        );
        assert_eq!(
            super::name_addr(r#""A \"B\" <c>; d, e" <sips:a@b>"#),
            Some((Some(r#"A "B" <c>; d, e"#.into()), "sips:a@b".into()))
        );
        assert_eq!(
            super::name_addr("Bob Smith <sip:bob@h>"),
            Some((Some("Bob Smith".into()), "sip:bob@h".into()))
        );
        assert_eq!(
            super::name_addr("sip:carol@h;tag=1"),
            Some((None, "sip:carol@h".into()))
        );
        assert_eq!(
            super::name_addr(r#""" <sip:a@h>"#),
            Some((None, "sip:a@h".into()))
        );
        assert_eq!(super::name_addr(r#""x" <>"#), None);
        assert_eq!(super::name_addr(r#""x <sip:a@h>"#), None);
    }

    use super::*;

    #[test]
    fn compact_names_map_to_long_names() {
        assert_eq!(canonical("v"), "Via");
        assert_eq!(canonical("I"), "Call-ID");
        assert_eq!(canonical("cseq"), "CSeq");
        assert_eq!(canonical("X-Foo"), "X-Foo");
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#),
            vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>"]
        );
    }

    #[test]
    fn hostport_forms() {
        assert!(check_hostport("[2001:db8::10]:5070").is_ok());
        assert!(check_hostport("[2001:db8::10:5070]").is_ok());
        assert!(check_hostport("2001:db8::10").is_err());
        assert!(check_hostport("[2001:db8:::192.0.2.1]").is_err());
        assert!(check_hostport("example.com:70000").is_err());
        assert!(check_hostport("192.0.2.1:5060").is_ok());
    }

    fn request(method: &str, cseq: &str, via: &str) -> String {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\n\
             From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
             Call-ID: ext1\r\nCSeq: 7 {cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    }

    const VIA: &str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKext";

    #[test]
    fn extension_method_is_well_formed_and_answered_501_with_allow() {
        let m = request("FROBNICATE", "FROBNICATE", VIA);
        let err = parse_message(m.as_bytes()).unwrap_err();
        assert_eq!(err, ParseError::UnknownMethod("FROBNICATE".into()));
        let r = String::from_utf8(error_response(m.as_bytes(), &err).unwrap()).unwrap();
        assert!(r.starts_with("SIP/2.0 501 Not Implemented\r\n"), "{r}");
        assert!(r.contains("\r\nCSeq: 7 FROBNICATE\r\n"), "{r}");
        assert!(r.contains("\r\nAllow: INVITE, ACK"), "{r}");
        assert!(r.ends_with("Content-Length: 0\r\n\r\n"), "{r}");
    }

    #[test]
    fn lower_case_invite_is_another_method() {
        // RFC 3261 §7.1: methods are case-sensitive; `invite` is not INVITE.
        let m = request("invite", "invite", VIA);
        assert_eq!(
            parse_message(m.as_bytes()),
            Err(ParseError::UnknownMethod("invite".into()))
        );
    }

    #[test]
    fn extension_method_with_a_broken_header_is_still_400() {
        let m = request("FROBNICATE", "FROBNICATE", "SIP/2.0/UDP");
        let err = parse_message(m.as_bytes()).unwrap_err();
        assert_eq!(err.status_code(), 400, "{err}");
        let m = request("FROBNICATE", "INVITE", VIA);
        assert!(matches!(
            parse_message(m.as_bytes()),
            Err(ParseError::CSeqMismatch { .. })
        ));
    }

    fn invite_to(uri: &str) -> String {
        request("INVITE", "INVITE", VIA).replacen("sip:bob@example.com", uri, 1)
    }

    #[test]
    fn request_uri_user_with_an_unescaped_at_sign_is_accepted() {
        // An e-mail address as user name: out of the grammar, common in the field.
        let m = invite_to("sip:john@example.com@proxy.net");
        let parsed = parse_message(m.as_bytes());
        assert!(parsed.is_ok(), "{parsed:?}");
        assert_eq!(
            after_userinfo("sip:john@example.com@proxy.net"),
            "proxy.net"
        );
    }

    #[test]
    fn request_uri_userinfo_may_hold_question_mark_but_headers_are_refused() {
        assert!(parse_message(invite_to("sip:a?b;c@example.com").as_bytes()).is_ok());
        let err = parse_message(invite_to("sip:bob@example.com?subject=x").as_bytes());
        assert!(matches!(err, Err(ParseError::StartLine(_))), "{err:?}");
        // An `@` in a header does not hide the header part.
        let err = parse_message(invite_to("sip:bob@example.com?subject=x@y").as_bytes());
        assert!(matches!(err, Err(ParseError::StartLine(_))), "{err:?}");
        assert_eq!(after_userinfo("sip:a?b@c@host"), "host");
    }

    #[test]
    fn known_methods_still_parse() {
        for method in KNOWN_METHODS {
            let m = request(method, method, VIA);
            let parsed = parse_message(m.as_bytes()).unwrap_or_else(|e| panic!("{method}: {e}"));
            assert_eq!(parsed.method().as_deref(), Some(method));
        }
    }
}
