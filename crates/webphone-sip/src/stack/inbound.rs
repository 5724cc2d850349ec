//! Our validating parser ([`crate::parse`]) in front of rsipstack for everything received.
//!
//! rsipstack parses leniently (see the `parse` module documentation): left alone it lets
//! RFC 4475 invalid INVITEs through to the dialog layer, where they ring. Here every
//! message is checked first:
//!
//! - UDP: the socket rsipstack reads from is ours ([`GuardedUdp`]); each datagram is
//!   validated on its raw bytes before rsipstack sees it.
//! - TCP, TLS, WS, WSS: rsipstack frames and parses the stream itself, so the check runs on
//!   the parsed message, serialized again, in the transport hook ([`check_stream`]).
//!
//! A refused request is answered 400 (505 for another SIP version, 513 for an oversized
//! message) with a `Warning: 399` naming the problem, when its Via, From, To, Call-ID and
//! CSeq can be recovered (RFC 3261 §8.2.6.2, §21.4.1), else dropped; a refused response is
//! dropped (RFC 3261 §18.1.2). Either way it never reaches the transaction or dialog
//! layer, so it never rings. Replies go to the source address the request came from
//! (RFC 3581 §4 symmetric response), never to an address named in the refused message.
//!
//! Repeated refusals are rate-limited on UDP ([`RefusalLimiter`]): a source address that
//! provokes more than [`REFUSALS_ALLOWED`] distinct refusals (400, 403, 404, 405, 415, 420,
//! 513) within [`REFUSAL_WINDOW`] is ignored for [`REFUSAL_BLOCK`]: its datagrams are
//! dropped unanswered, so a password or extension scanner (SIPVicious svcrack/svwar) learns
//! nothing more and cannot use the phone to amplify traffic. Retransmissions of one response
//! count once; other sources (the registrar, a real peer) are not affected.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rsipstack::sip::SipMessage;
use rsipstack::transport::connection::{KEEPALIVE_REQUEST, KEEPALIVE_RESPONSE};
use rsipstack::transport::SipConnection;
use tracing::{debug, info};

/// What to do with one received message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Valid (or not a SIP message at all, e.g. a keep-alive): hand it to rsipstack.
    Pass,
    /// Invalid request: send these bytes (the error response) back, drop the request.
    Reply(Vec<u8>),
    /// Invalid and unanswerable (a response, or a request missing the fields a response
    /// needs): drop it.
    Drop,
}

/// Check one received message (a datagram, or a framed stream message).
pub(crate) fn check(data: &[u8]) -> Verdict {
    if data == KEEPALIVE_REQUEST
        || data == KEEPALIVE_RESPONSE
        || data.iter().all(u8::is_ascii_whitespace)
    {
        // RFC 5626 §4.4.1 keep-alives: rsipstack answers/absorbs them.
        return Verdict::Pass;
    }
    match crate::parse::parse_message(data) {
        Ok(_) => Verdict::Pass,
        Err(err) => match crate::parse::error_response(data, &err) {
            Some(resp) => {
                info!(error = %err, "invalid SIP request refused");
                Verdict::Reply(resp)
            }
            None => {
                debug!(error = %err, len = data.len(), "invalid SIP message dropped");
                Verdict::Drop
            }
        },
    }
}

/// A valid message whose From or To `tag` parameter is written with LWS around `=` (RFC
/// 3261 §25.1 allows it; RFC 4475 §3.1.1.1 `wsinv`) is one rsipstack cannot find the tag
/// in, and it drops the request. Such a header section is rewritten with its lines unfolded
/// and the tag closed up (`;tag=x`); the body and every other message stay byte for byte.
pub(crate) fn normalize_tags(data: &[u8]) -> Option<Vec<u8>> {
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let mut lines: Vec<String> = Vec::new();
    for l in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if l.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(l.trim());
            }
            _ => lines.push(l.to_string()),
        }
    }
    let mut changed = false;
    for line in lines.iter_mut().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let n = name.trim();
        if !["from", "f", "to", "t"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(n))
        {
            continue;
        }
        let mut parts = super::split_outside_quotes(value, ';');
        let mut fixed = false;
        for p in parts.iter_mut().skip(1) {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("tag") && (k != k.trim() || v != v.trim()) {
                    *p = format!("tag={}", v.trim());
                    fixed = true;
                }
            }
        }
        if fixed {
            let first = parts
                .first()
                .map(|f| f.trim().to_string())
                .unwrap_or_default();
            let rest: Vec<String> = parts.iter().skip(1).map(|p| p.trim().to_string()).collect();
            *line = format!("{n}: {first};{}", rest.join(";"));
            changed = true;
        }
    }
    if add_rfc2543_from_tag(&mut lines) {
        changed = true;
    }
    if !changed {
        return None;
    }
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&data[head_end..]);
    Some(out)
}

/// Marks the From tags [`add_rfc2543_from_tag`] makes up; [`strip_rfc2543_tags`] takes them
/// out of what we send.
const RFC2543_TAG: &str = "wp2543-";

/// A request whose From has no tag comes from an RFC 2543 UA (RFC 3261 §12.2.1.1: its tag
/// is "null"); rsipstack drops such requests. The From gets a tag made from the Call-ID
/// and the From URI, the same for every retransmission and every request of the dialog, so
/// rsipstack keeps the transaction and the dialog; [`strip_rfc2543_tags`] removes it from
/// our messages again, which then echo the peer's From (RFC 3261 §8.2.6.2) and address it
/// without a tag. `lines` is the unfolded header section; whether it changed.
fn add_rfc2543_from_tag(lines: &mut Vec<String>) -> bool {
    let is_request = lines.first().is_some_and(|l| !l.starts_with("SIP/"));
    if !is_request {
        return false;
    }
    let value_of = |lines: &[String], names: &[&str]| {
        lines.iter().skip(1).position(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| names.iter().any(|h| h.eq_ignore_ascii_case(n.trim())))
        })
    };
    let (Some(from_at), Some(call_id_at)) = (
        value_of(lines, &["from", "f"]),
        value_of(lines, &["call-id", "i"]),
    ) else {
        return false;
    };
    let call_id = lines[call_id_at + 1]
        .split_once(':')
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let from = &mut lines[from_at + 1];
    let Some((name, value)) = from.split_once(':') else {
        return false;
    };
    let parts = super::split_outside_quotes(value, ';');
    let has_tag = parts.iter().skip(1).any(|p| {
        p.split_once('=')
            .map_or(p.as_str(), |(k, _)| k)
            .trim()
            .eq_ignore_ascii_case("tag")
    });
    if has_tag {
        return false;
    }
    // FNV-1a: stable across runs and builds (the std hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id.bytes().chain(value.trim().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    *from = format!(
        "{}: {};tag={RFC2543_TAG}{h:016x}",
        name.trim(),
        value.trim()
    );
    // RFC 2543 did not require a Contact in an INVITE; without one the dialog's remote
    // target is where the request came from (its top Via's sent-by), as RFC 2543 UAs
    // expect requests back there.
    let is_invite = lines
        .first()
        .is_some_and(|l| l.split_whitespace().next() == Some("INVITE"));
    if is_invite && value_of(lines, &["contact", "m"]).is_none() {
        let sent_by = value_of(lines, &["via", "v"])
            .and_then(|i| lines[i + 1].split_once(':').map(|(_, v)| v.to_owned()))
            .and_then(|v| {
                let v = v.split([';', ',']).next()?.trim().to_owned();
                let (proto, host) = v.split_once(char::is_whitespace)?;
                // Over a stream the request comes back on a connection to that address
                // (RFC 3261 §18.2.2 names the same place for responses).
                let param = match proto.trim().to_ascii_uppercase().rsplit('/').next()? {
                    "UDP" => "",
                    "TCP" => ";transport=tcp",
                    "TLS" => ";transport=tls",
                    _ => return None,
                };
                Some((host.trim().to_owned(), param))
            });
        if let Some((host, param)) =
            sent_by.filter(|(h, _)| !h.is_empty() && !h.contains(['<', '>', '"', ';']))
        {
            lines.push(format!("Contact: <sip:{host}{param}>"));
        }
    }
    true
}

/// Parses a message rsipstack wrote: its writer escapes a Request-URI user's escapes again
/// (`%40` → `%2540`, see [`super::uri_escapes`]), which the parser would keep as text and
/// so name another user; that second round is undone first.
fn reparse(written: Vec<u8>) -> Option<SipMessage> {
    let bytes = super::uri_escapes::restore_request_uri_escapes(&written).unwrap_or(written);
    rsipstack::sip::parser::parse_message(&bytes).ok()
}

/// [`strip_rfc2543_tags`] on a message about to be written by rsipstack (TCP, TLS, WS);
/// `None` without such a tag in its From or To (the common case: no copy).
pub(crate) fn strip_rfc2543_tags_of(msg: &SipMessage) -> Option<SipMessage> {
    let headers = match msg {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let marked = headers.iter().any(|h| {
        matches!(
            h,
            rsipstack::sip::Header::From(_) | rsipstack::sip::Header::To(_)
        ) && h.value().contains(RFC2543_TAG)
    });
    if !marked {
        return None;
    }
    let plain = strip_rfc2543_tags(&msg.to_bytes())?;
    reparse(plain)
}

/// Takes the tags [`add_rfc2543_from_tag`] made up out of the header section of a message
/// we send; `None` when there are none (the common case: no copy).
pub(crate) fn strip_rfc2543_tags(data: &[u8]) -> Option<Vec<u8>> {
    let marker = format!(";tag={RFC2543_TAG}");
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(data.len());
    let head = std::str::from_utf8(data.get(..head_end)?).ok()?;
    if !head.contains(&marker) {
        return None;
    }
    let mut out = String::with_capacity(head.len());
    let mut rest = head;
    while let Some(i) = rest.find(&marker) {
        out.push_str(&rest[..i]);
        let after = &rest[i + marker.len()..];
        let end = after
            .find([';', '\r', ',', ' ', '>'])
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&data[head_end..]);
    Some(bytes)
}

/// Distinct refusals one source may provoke within [`REFUSAL_WINDOW`] before it is ignored.
pub(crate) const REFUSALS_ALLOWED: u32 = 32;
/// The window over which refusals are counted.
pub(crate) const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// How long a source that went over the limit is ignored.
pub(crate) const REFUSAL_BLOCK: Duration = Duration::from_secs(60);
/// Sources tracked at once (spoofed UDP sources cannot grow the table without bound).
const REFUSAL_SOURCES: usize = 4096;
/// Responses of one source remembered to recognise retransmissions.
const REFUSAL_RECENT: usize = 32;

/// Status codes that refuse a request a scanner would send (RFC 3261 §21.4). 481 is left out:
/// a registrar or peer provokes it in ordinary races (a BYE crossing ours, a late NOTIFY), and
/// a burst of those from a busy proxy must never get the proxy ignored.
pub(crate) fn is_refusal(status: u16) -> bool {
    matches!(status, 400 | 403 | 404 | 405 | 415 | 420 | 513)
}

/// The status code of a response datagram (`SIP/2.0 403 ...`), `None` for anything else.
fn response_status(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(b"SIP/2.0 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?;
    code.parse().ok()
}

#[derive(Debug, Default)]
struct SourceRecord {
    window_start: Option<Instant>,
    refusals: u32,
    blocked_until: Option<Instant>,
    recent: Vec<u64>,
}

/// Per-source count of refusals (a pure state machine: every call takes `now`).
#[derive(Debug, Default)]
pub(crate) struct RefusalLimiter {
    sources: HashMap<(SocketAddr, SocketAddr), SourceRecord>,
}

impl RefusalLimiter {
    /// Whether a datagram from `from` to our socket `local` may be processed at `now`.
    pub(crate) fn allows(&mut self, local: SocketAddr, from: SocketAddr, now: Instant) -> bool {
        let Some(rec) = self.sources.get_mut(&(local, from)) else {
            return true;
        };
        match rec.blocked_until {
            Some(until) if now < until => false,
            Some(_) => {
                self.sources.remove(&(local, from));
                true
            }
            None => true,
        }
    }

    /// Notes a response we send from `local` to `to`; counts it when it is a refusal not
    /// sent before (a retransmission carries the same bytes). Returns whether this refusal
    /// put the source over the limit.
    pub(crate) fn sent(
        &mut self,
        local: SocketAddr,
        to: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> bool {
        if !response_status(data).is_some_and(is_refusal) {
            return false;
        }
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            data.hash(&mut h);
            h.finish()
        };
        if !self.sources.contains_key(&(local, to)) && self.sources.len() >= REFUSAL_SOURCES {
            self.prune(now);
        }
        let rec = self.sources.entry((local, to)).or_default();
        if rec.recent.contains(&digest) {
            return false;
        }
        if rec.recent.len() >= REFUSAL_RECENT {
            rec.recent.remove(0);
        }
        rec.recent.push(digest);
        match rec.window_start {
            Some(start) if now.saturating_duration_since(start) < REFUSAL_WINDOW => {}
            _ => {
                rec.window_start = Some(now);
                rec.refusals = 0;
            }
        }
        rec.refusals += 1;
        if rec.refusals > REFUSALS_ALLOWED && rec.blocked_until.is_none() {
            rec.blocked_until = Some(now + REFUSAL_BLOCK);
            return true;
        }
        false
    }

    /// Drops records whose window and block are over; if the table is still full, the one
    /// with the oldest window goes.
    fn prune(&mut self, now: Instant) {
        self.sources.retain(|_, r| {
            r.blocked_until.is_some_and(|u| now < u)
                || r.window_start
                    .is_some_and(|s| now.saturating_duration_since(s) < REFUSAL_WINDOW)
        });
        if self.sources.len() >= REFUSAL_SOURCES {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, r)| r.window_start)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.sources.remove(&k);
            }
        }
    }
}

/// The process's limiter, shared by every UDP socket (keyed by our socket's address too).
fn refusal_limiter() -> &'static Mutex<RefusalLimiter> {
    static LIMITER: OnceLock<Mutex<RefusalLimiter>> = OnceLock::new();
    LIMITER.get_or_init(|| Mutex::new(RefusalLimiter::default()))
}

/// The UDP socket rsipstack reads from and writes to, with [`check`] on every datagram.
pub(crate) struct GuardedUdp {
    pub(crate) sock: tokio::net::UdpSocket,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = rsipstack::Result<T>> + Send + 'a>>;

impl GuardedUdp {
    async fn recv_valid(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let local = self.sock.local_addr()?;
        loop {
            let (len, from) = self.sock.recv_from(buf).await?;
            let allowed = refusal_limiter()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allows(local, from, Instant::now());
            if !allowed {
                continue;
            }
            match buf.get(..len).map(check) {
                Some(Verdict::Pass) => {
                    let fixed = buf.get(..len).and_then(normalize_tags);
                    if let Some(fixed) = fixed.filter(|f| f.len() <= buf.len()) {
                        buf[..fixed.len()].copy_from_slice(&fixed);
                        return Ok((fixed.len(), from));
                    }
                    return Ok((len, from));
                }
                None => return Ok((len, from)),
                Some(Verdict::Reply(resp)) => {
                    if let Err(e) = self.send_noted(&resp, from).await {
                        debug!(%from, error = %e, "sending the error response failed");
                    }
                }
                Some(Verdict::Drop) => {}
            }
        }
    }

    /// Sends `buf` to `addr`, noting a refusal in the limiter.
    async fn send_noted(&self, buf: &[u8], addr: SocketAddr) -> std::io::Result<usize> {
        if let Ok(local) = self.sock.local_addr() {
            let over = refusal_limiter()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .sent(local, addr, buf, Instant::now());
            if over {
                info!(
                    source = %addr,
                    "more than {REFUSALS_ALLOWED} refused requests in {REFUSAL_WINDOW:?}: \
                     ignoring this source for {REFUSAL_BLOCK:?}"
                );
            }
        }
        self.sock.send_to(buf, addr).await
    }
}

// The `#[async_trait]` signatures of rsipstack's platform socket, written out.
impl rsipstack::platform::net::UdpSocket for GuardedUdp {
    fn recv_from<'a, 'b, 'c>(&'a self, buf: &'b mut [u8]) -> Fut<'c, (usize, SocketAddr)>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(self.recv_valid(buf))
    }

    fn send_to<'a, 'b, 'c>(&'a self, buf: &'b [u8], addr: SocketAddr) -> Fut<'c, usize>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            // Our messages to an RFC 2543 peer carry its From (and To) as it sent them,
            // and a Request-URI keeps the escapes it was given (`uri_escapes`).
            let plain = strip_rfc2543_tags(buf);
            let escaped =
                super::uri_escapes::restore_request_uri_escapes(plain.as_deref().unwrap_or(buf));
            match escaped.or(plain) {
                Some(rewritten) => {
                    self.send_noted(&rewritten, addr).await?;
                    // rsipstack checks that the whole buffer went out.
                    Ok(buf.len())
                }
                None => Ok(self.send_noted(buf, addr).await?),
            }
        })
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}

/// The limiter's key for a stream peer: its IP alone, since each try of a scanner may come
/// on a new connection from a new port.
fn stream_source(ip: std::net::IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 0)
}

/// Notes a response sent over a stream connection to the peer at `to` (its IP counts) from
/// the user agent keyed `ua`; see [`RefusalLimiter::sent`].
pub(crate) fn stream_response_sent(ua: SocketAddr, to: std::net::IpAddr, data: &[u8]) {
    let over = refusal_limiter()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .sent(ua, stream_source(to), data, Instant::now());
    if over {
        info!(
            source = %to,
            "more than {REFUSALS_ALLOWED} refused requests in {REFUSAL_WINDOW:?} over TCP/TLS/WS: \
             ignoring this address for {REFUSAL_BLOCK:?}"
        );
    }
}

/// What the transport hook does with a message received on a stream connection.
pub(crate) enum StreamVerdict {
    /// Pass it on as it is (every UDP datagram: checked and normalized on its raw bytes).
    Pass,
    /// Pass this rewrite of it on instead ([`normalize_tags`]: a `tag` written with LWS
    /// closed up, an RFC 2543 request's From given its stable tag and an INVITE a Contact).
    Replace(Box<SipMessage>),
    /// Drop it (refused: an error response went back on the connection, or none is possible).
    Drop,
}

/// [`check`], then [`normalize_tags`], for a message rsipstack received on a stream
/// connection from `from`, for the user agent keyed `ua`; both on one serialization of the
/// message. An error response is sent back on the same connection. A source over the refusal
/// limit is ignored, as over UDP. A rewrite that does not parse again is not made.
pub(crate) async fn check_stream(
    msg: &SipMessage,
    conn: &SipConnection,
    from: Option<SocketAddr>,
    ua: SocketAddr,
) -> StreamVerdict {
    if matches!(conn, SipConnection::Udp(_)) {
        // Checked on the raw datagram already (GuardedUdp).
        return StreamVerdict::Pass;
    }
    if let Some(from) = from {
        let allowed = refusal_limiter()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allows(ua, stream_source(from.ip()), Instant::now());
        if !allowed {
            return StreamVerdict::Drop;
        }
    }
    let data = msg.to_bytes();
    match check(&data) {
        Verdict::Pass => match normalize_tags(&data).and_then(reparse) {
            Some(fixed) => StreamVerdict::Replace(Box::new(fixed)),
            None => StreamVerdict::Pass,
        },
        Verdict::Drop => StreamVerdict::Drop,
        Verdict::Reply(resp) => {
            if let Some(from) = from {
                stream_response_sent(ua, from.ip(), &resp);
            }
            match rsipstack::sip::parser::parse_message(&resp) {
                Ok(resp) => {
                    if let Err(e) = conn.send(resp, None).await {
                        debug!(error = %e, "sending the error response failed");
                    }
                }
                Err(e) => debug!(error = %e, "error response does not parse"),
            }
            StreamVerdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\nContent-Length: 0\r\n\r\n";

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn refusal(n: u32) -> Vec<u8> {
        format!("SIP/2.0 403 Forbidden\r\nCall-ID: scan{n}\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn rewriting_an_rfc2543_message_keeps_the_request_uri_escapes() {
        let bye = "BYE sip:a%40b@192.0.2.9:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK7\r\n\
                   From: <sip:me@h>;tag=1\r\nTo: <sip:a%40b@h>;tag=wp2543-00ff\r\nCall-ID: c9\r\n\
                   CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let msg = rsipstack::sip::parser::parse_message(bye.as_bytes()).unwrap();
        let plain = strip_rfc2543_tags_of(&msg).unwrap();
        let text = plain.to_string();
        assert!(!text.contains("wp2543"), "{text}");
        // Written once more by rsipstack: still one round of escapes too many, which the
        // datagram guard (UDP) or decode_request_uri_user (streams) takes off; never two.
        assert!(text.starts_with("BYE sip:a%2540b@"), "{text}");
        assert!(!text.contains("%252540"), "{text}");
    }

    #[test]
    fn a_source_over_the_refusal_limit_is_ignored_then_readmitted() {
        let (me, scanner, peer) = (addr(5060), addr(40000), addr(40001));
        let mut l = RefusalLimiter::default();
        let t0 = Instant::now();
        for n in 0..REFUSALS_ALLOWED {
            assert!(l.allows(me, scanner, t0));
            assert!(!l.sent(me, scanner, &refusal(n), t0), "refusal {n}");
        }
        assert!(l.allows(me, scanner, t0));
        assert!(l.sent(me, scanner, &refusal(999), t0), "one over the limit");
        assert!(!l.allows(me, scanner, t0 + Duration::from_secs(1)));
        // Other sources, and the same source on another of our sockets, are unaffected.
        assert!(l.allows(me, peer, t0));
        assert!(l.allows(addr(5070), scanner, t0));
        // The block ends.
        assert!(!l.allows(me, scanner, t0 + REFUSAL_BLOCK - Duration::from_millis(1)));
        assert!(l.allows(me, scanner, t0 + REFUSAL_BLOCK));
        assert!(l.allows(me, scanner, t0 + REFUSAL_BLOCK));
    }

    #[test]
    fn retransmissions_successes_and_slow_refusals_do_not_count() {
        let (me, src) = (addr(5060), addr(40000));
        let mut l = RefusalLimiter::default();
        let t0 = Instant::now();
        // One 403 retransmitted (RFC 3261 §17.2.1 Timer G) counts once.
        for _ in 0..100 {
            assert!(!l.sent(me, src, &refusal(1), t0));
        }
        // Answers that are not refusals never count.
        let ok = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        let busy = b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n";
        for _ in 0..100 {
            assert!(!l.sent(me, src, ok, t0));
            assert!(!l.sent(me, src, busy, t0));
        }
        // Refusals spread over windows never reach the limit.
        for n in 0..200u32 {
            let t = t0 + REFUSAL_WINDOW / 4 * n;
            assert!(!l.sent(me, src, &refusal(n + 10), t), "refusal {n}");
            assert!(l.allows(me, src, t));
        }
    }

    #[test]
    fn the_source_table_stays_bounded() {
        let me = addr(5060);
        let mut l = RefusalLimiter::default();
        let t0 = Instant::now();
        for i in 0..(REFUSAL_SOURCES as u32 + 500) {
            let src = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5060));
            l.sent(me, src, &refusal(i), t0);
        }
        assert!(l.sources.len() <= REFUSAL_SOURCES);
    }

    #[test]
    fn response_status_reads_only_status_lines() {
        assert_eq!(response_status(b"SIP/2.0 403 Forbidden\r\n"), Some(403));
        assert_eq!(response_status(b"INVITE sip:a@b SIP/2.0\r\n"), None);
        assert_eq!(response_status(b"SIP/2.0 4"), None);
        assert_eq!(response_status(b"\r\n\r\n"), None);
    }

    #[test]
    fn valid_request_and_keepalives_pass() {
        assert_eq!(check(INVITE.as_bytes()), Verdict::Pass);
        assert_eq!(check(b"\r\n\r\n"), Verdict::Pass);
        assert_eq!(check(b"\r\n"), Verdict::Pass);
    }

    #[test]
    fn invalid_request_gets_400_with_warning() {
        let bad = INVITE.replace("Content-Length: 0", "Content-Length: -5");
        match check(bad.as_bytes()) {
            Verdict::Reply(r) => {
                let r = String::from_utf8(r).unwrap_or_default();
                assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
                assert!(r.contains("Warning: 399 - \"Content-Length"), "{r}");
                assert!(r.contains("Call-ID: c1\r\n"), "{r}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn tags_with_lws_are_closed_up_and_other_messages_untouched() {
        assert_eq!(normalize_tags(INVITE.as_bytes()), None);
        let ws = INVITE
            .replace(";tag=1\r\n", "\r\n ;  tag =  98asjd8\r\n")
            .replace("Content-Length: 0\r\n\r\n", "Content-Length: 4\r\n\r\nbody");
        let out = String::from_utf8(normalize_tags(ws.as_bytes()).unwrap_or_default())
            .unwrap_or_default();
        assert!(
            out.contains("\r\nFrom: <sip:a@example.com>;tag=98asjd8\r\n"),
            "{out}"
        );
        assert!(out.ends_with("Content-Length: 4\r\n\r\nbody"), "{out}");
        assert!(crate::parse::parse_message(out.as_bytes()).is_ok());
    }

    #[test]
    fn rfc2543_request_gets_a_stable_from_tag_and_a_contact_that_never_go_out() {
        let inv = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5070\r\nFrom: <sip:a@example.net;user=phone>\r\nTo: sip:b@example.com\r\nCall-ID: c2543\r\nCSeq: 56 INVITE\r\n\r\nv=0\r\n";
        let once = String::from_utf8(normalize_tags(inv.as_bytes()).unwrap_or_default())
            .unwrap_or_default();
        let again = String::from_utf8(normalize_tags(inv.as_bytes()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(once, again, "a retransmission gets the same tag");
        assert!(
            once.contains("\r\nFrom: <sip:a@example.net;user=phone>;tag=wp2543-"),
            "{once}"
        );
        assert!(
            once.contains("\r\nContact: <sip:192.0.2.9:5070>\r\n\r\nv=0\r\n"),
            "{once}"
        );
        // Another Call-ID, another tag; a request with a tag, or a response, is untouched.
        let other = String::from_utf8(
            normalize_tags(inv.replace("c2543", "c2544").as_bytes()).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_ne!(header_value(&once, "From"), header_value(&other, "From"));
        assert_eq!(normalize_tags(INVITE.as_bytes()), None);
        let resp = inv.replace("INVITE sip:b@example.com SIP/2.0", "SIP/2.0 200 OK");
        assert_eq!(normalize_tags(resp.as_bytes()), None);
        // What we send in that dialog carries the peer's From and To without the made-up tag.
        let tag = header_value(&once, "From")
            .rsplit_once(";tag=")
            .map(|(_, t)| t.to_owned())
            .unwrap_or_default();
        let ours = format!("SIP/2.0 200 OK\r\nFrom: <sip:a@example.net;user=phone>;tag={tag}\r\nTo: <sip:b@example.com>;tag=x1\r\nContent-Length: 0\r\n\r\n");
        let bye = format!("BYE sip:192.0.2.9:5070 SIP/2.0\r\nFrom: <sip:b@example.com>;tag=x1\r\nTo: <sip:a@example.net;user=phone>;tag={tag};x=1\r\n\r\n");
        assert_eq!(
            String::from_utf8(strip_rfc2543_tags(ours.as_bytes()).unwrap_or_default()).unwrap_or_default(),
            "SIP/2.0 200 OK\r\nFrom: <sip:a@example.net;user=phone>\r\nTo: <sip:b@example.com>;tag=x1\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(
            String::from_utf8(strip_rfc2543_tags(bye.as_bytes()).unwrap_or_default())
                .unwrap_or_default()
                .contains("\r\nTo: <sip:a@example.net;user=phone>;x=1\r\n")
        );
        assert_eq!(strip_rfc2543_tags(INVITE.as_bytes()), None);
    }

    fn header_value(msg: &str, name: &str) -> String {
        msg.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn unanswerable_garbage_is_dropped() {
        assert_eq!(check(b"INVITE\r\n\r\n"), Verdict::Drop);
        assert_eq!(
            check(b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Verdict::Drop
        );
        assert_eq!(check(&[0xffu8; 300]), Verdict::Drop);
    }
}
