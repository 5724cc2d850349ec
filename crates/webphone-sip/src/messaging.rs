//! Requests beyond calls: instant messages (MESSAGE, RFC 3428), mid-call INFO (RFC 6086),
//! transfer (REFER, RFC 3515, with Replaces, RFC 3891), event subscriptions (SUBSCRIBE /
//! NOTIFY, RFC 6665: presence RFC 3856, dialog RFC 4235, message-summary RFC 3842) and
//! presence publication (PUBLISH, RFC 3903).
//!
//! This module holds the public types, the [`SipUa`] commands and the pure (sans-IO) rules:
//! header and body parsing, refresh timing. The requests themselves are sent by the stack
//! driver (`stack::services`).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{CallKey, DriverMsg, SipError, SipUa};

/// Our handle for one outgoing MESSAGE ([`SipUa::send_message`]); its delivery report is
/// [`crate::SipEvent::MessageStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey(pub u64);

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg#{}", self.0)
    }
}

/// Our handle for one subscription ([`SipUa::subscribe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubKey(pub u64);

impl fmt::Display for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sub#{}", self.0)
    }
}

/// The `Subscription-State` of a NOTIFY (RFC 6665 §8.2.3, §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Authorized; `expires` is the remaining lifetime the notifier gave (seconds).
    Active { expires: Option<u32> },
    /// Not yet authorized (RFC 6665 §4.1.3): state may follow later.
    Pending { expires: Option<u32> },
    /// Over: `reason` (`deactivated`, `probation`, `rejected`, `timeout`, `giveup`,
    /// `noresource`, `invariant`) and `retry_after` seconds when given. Nothing more
    /// arrives for the subscription.
    Terminated {
        reason: Option<String>,
        retry_after: Option<u32>,
    },
}

/// The dialog an INVITE with `Replaces` (RFC 3891 §3) or an attended transfer's `Refer-To`
/// names: Call-ID and the tags seen *from the UA that receives the Replaces* (`to_tag` is
/// its own tag, `from_tag` its peer's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// `early-only` (RFC 3891 §3): replace only a dialog that is not confirmed yet.
    pub early_only: bool,
}

impl Replaces {
    /// Parse a `Replaces` header value: `callid;to-tag=a;from-tag=b[;early-only]`.
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim().to_string();
        if call_id.is_empty() {
            return None;
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (p.trim(), ""),
            };
            if k.eq_ignore_ascii_case("to-tag") {
                to_tag = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("from-tag") {
                from_tag = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("early-only") {
                early_only = true;
            }
        }
        Some(Replaces {
            call_id,
            to_tag: to_tag?,
            from_tag: from_tag?,
            early_only,
        })
    }

    /// The header value (RFC 3891 §6.1).
    pub fn header_value(&self) -> String {
        let mut s = format!(
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        );
        if self.early_only {
            s.push_str(";early-only");
        }
        s
    }
}

/// `uri` with a `Replaces` header embedded (RFC 3891 §6.1, RFC 3261 §19.1.1 URI headers):
/// `<uri?Replaces=callid%3Bto-tag%3Da%3Bfrom-tag%3Db>`, the value escaped.
pub(crate) fn refer_to_with_replaces(uri: &str, r: &Replaces) -> String {
    let escaped = escape_hvalue(&r.header_value());
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("<{uri}{sep}Replaces={escaped}>")
}

/// Percent-escape a URI header value (RFC 3261 §25.1 `hvalue`: unreserved / hnv-unreserved
/// stay, everything else is escaped).
fn escape_hvalue(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'['
                    | b']'
                    | b'/'
                    | b':'
                    | b'+'
                    | b'$'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undo `%XX` escapes (invalid escapes are kept as they are).
fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `Refer-To` value (RFC 3515 §2.1) split into the target URI without URI headers and
/// the `Replaces` it carries, if any (RFC 3891 §6.1).
pub(crate) fn parse_refer_to(value: &str) -> (String, Option<Replaces>) {
    let v = value.trim();
    let uri = match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    let Some((base, headers)) = uri.split_once('?') else {
        return (uri.trim().to_string(), None);
    };
    let replaces = headers.split('&').find_map(|h| {
        let (k, val) = h.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("Replaces")
            .then(|| Replaces::parse(&unescape(val)))
            .flatten()
    });
    (base.trim().to_string(), replaces)
}

/// Parse a `Subscription-State` value (RFC 6665 §8.2.3); unknown states count as
/// `active` (RFC 6665 §4.1.3: "treated as active").
pub(crate) fn parse_subscription_state(value: &str) -> SubscriptionState {
    let mut parts = value.split(';');
    let state = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let (mut expires, mut reason, mut retry_after) = (None, None, None);
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
        match k.as_str() {
            "expires" => expires = v.parse().ok(),
            "reason" => reason = Some(v.to_ascii_lowercase()),
            "retry-after" => retry_after = v.parse().ok(),
            _ => {}
        }
    }
    match state.as_str() {
        "pending" => SubscriptionState::Pending { expires },
        "terminated" => SubscriptionState::Terminated {
            reason,
            retry_after,
        },
        _ => SubscriptionState::Active { expires },
    }
}

/// The status code of a `message/sipfrag` body (RFC 3420) in a REFER NOTIFY
/// (RFC 3515 §2.4.5): `SIP/2.0 200 OK` → 200.
pub(crate) fn sipfrag_status(body: &str) -> Option<u16> {
    let line = body.lines().next()?.trim();
    let mut it = line.split_whitespace();
    let version = it.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = it.next()?.parse().ok()?;
    (100..700).contains(&code).then_some(code)
}

/// The `message/sipfrag` body reporting `code` (RFC 3515 §2.4.5).
pub(crate) fn sipfrag_body(code: u16) -> String {
    format!("SIP/2.0 {code} {}\r\n", reason_phrase(code))
}

/// A reason phrase for the status codes a transfer reports.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        c if c < 200 => "Progress",
        c if c < 300 => "OK",
        _ => "Failed",
    }
}

/// Content types an incoming MESSAGE may carry (RFC 3428 §7: others get 415 with `Accept`).
pub(crate) const MESSAGE_TYPES: [&str; 2] = ["text/plain", "application/im-iscomposing+xml"];

/// Whether a MESSAGE `Content-Type` is one we accept (parameters such as `charset` ignored).
pub(crate) fn message_type_accepted(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    MESSAGE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(media))
}

/// The DTMF digit of an INFO body (RFC 6086 with the de-facto packages): `Signal=5` lines
/// of `application/dtmf-relay`, or the bare digit of `application/dtmf`.
pub(crate) fn dtmf_from_info(content_type: Option<&str>, body: &str) -> Option<char> {
    let media = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let digit = |c: char| {
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d').then(|| c.to_ascii_uppercase())
    };
    if media == "application/dtmf" {
        let t = body.trim();
        let mut chars = t.chars();
        let c = chars.next()?;
        return if chars.next().is_none() {
            digit(c)
        } else {
            // Some phones send the RFC 4733 event number ("10" = '*', "11" = '#').
            match t.parse::<u8>().ok()? {
                n @ 0..=9 => char::from_digit(u32::from(n), 10),
                10 => Some('*'),
                11 => Some('#'),
                n @ 12..=15 => Some((b'A' + (n - 12)) as char),
                _ => None,
            }
        };
    }
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        digit(v.trim().chars().next()?)
    })
}

/// `Accept` of a SUBSCRIBE for the event packages we know (RFC 6665 §7.2).
pub(crate) fn accept_for_event(event: &str) -> Option<&'static str> {
    match event_package(event).as_str() {
        "presence" => Some("application/pidf+xml"),
        "dialog" => Some("application/dialog-info+xml"),
        "message-summary" => Some("application/simple-message-summary"),
        _ => None,
    }
}

/// The package name of an `Event` value, lower-cased, without parameters (RFC 6665 §8.2.1).
pub(crate) fn event_package(event: &str) -> String {
    event
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// When to refresh a subscription or publication granted for `granted` seconds
/// (RFC 6665 §4.1.2.1 / RFC 3903 §4.1: before it expires): at 85 %, but never later than
/// 5 s before expiry and never sooner than 1 s.
pub(crate) fn refresh_after(granted: u32) -> Duration {
    let g = u64::from(granted);
    let at = (g * 85 / 100).min(g.saturating_sub(5));
    Duration::from_secs(at.max(1))
}

/// Message from the [`SipUa`] to the driver for the commands of this module.
#[derive(Debug)]
pub(crate) enum ServiceCommand {
    Message {
        key: MessageKey,
        target: crate::target::Target,
        content_type: String,
        body: String,
    },
    Info {
        call: CallKey,
        content_type: String,
        body: String,
    },
    Refer {
        call: CallKey,
        refer_to: String,
    },
    ReferWithReplaces {
        call: CallKey,
        other: CallKey,
    },
    /// Extra headers for the INVITE of `call` (sent right before its `Command::Invite`).
    InviteHeaders {
        call: CallKey,
        headers: Vec<(String, String)>,
    },
    AcceptRefer(CallKey),
    RejectRefer(CallKey, u16),
    NotifyRefer(CallKey, u16),
    Subscribe {
        sub: SubKey,
        target: crate::target::Target,
        event: String,
        expires: u32,
    },
    Unsubscribe(SubKey),
    Publish {
        body: Option<String>,
        expires: u32,
    },
}

/// Default lifetime of a PUBLISH (RFC 3903 §4.1 leaves it to the client).
pub(crate) const PUBLISH_EXPIRES: u32 = 3600;

impl SipUa {
    fn service(&self, cmd: ServiceCommand) -> Result<(), SipError> {
        self.inner
            .tx
            .send(DriverMsg::Service(cmd))
            .map_err(|_| SipError::Closed)
    }

    fn resolve_target(&self, target: &str) -> Result<crate::target::Target, SipError> {
        let account = crate::lock(&self.inner.account).clone();
        let local_ip = self.local_addr().ip();
        let resolved =
            crate::target::resolve(target, account.as_ref(), local_ip, self.inner.transport)?;
        crate::stack::validate_uri(&resolved.request_uri).map_err(|reason| {
            SipError::InvalidTarget {
                target: target.to_string(),
                reason,
            }
        })?;
        Ok(resolved)
    }

    fn next_key(&self) -> u64 {
        self.inner.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Send an instant message outside any dialog (MESSAGE, RFC 3428 §4) to `target`
    /// (dial string as for [`SipUa::invite`]), routed like an INVITE, answering 401/407
    /// with the account's credentials. The outcome arrives as
    /// [`crate::SipEvent::MessageStatus`] (2xx: delivered; 408 when nothing answered,
    /// 503 for a transport error). `content_type` is e.g. `text/plain;charset=UTF-8` or
    /// `application/im-iscomposing+xml` (RFC 3994).
    pub fn send_message(
        &self,
        target: &str,
        content_type: &str,
        body: &str,
    ) -> Result<MessageKey, SipError> {
        if content_type.trim().is_empty() {
            return Err(SipError::Unsupported("MESSAGE without Content-Type".into()));
        }
        let resolved = self.resolve_target(target)?;
        let key = MessageKey(self.next_key());
        tracing::info!(%key, target, uri = %resolved.request_uri, "send MESSAGE");
        self.service(ServiceCommand::Message {
            key,
            target: resolved,
            content_type: content_type.trim().to_string(),
            body: body.to_string(),
        })?;
        Ok(key)
    }

    /// Send an INFO in the established `call` (RFC 6086 §4.2), e.g. DTMF as
    /// `application/dtmf-relay` (`Signal=5\r\nDuration=160\r\n`) or `application/dtmf`
    /// (`5`). A failure is only logged (a 481/408 does not end the call).
    pub fn send_info(&self, call: CallKey, content_type: &str, body: &str) -> Result<(), SipError> {
        self.service(ServiceCommand::Info {
            call,
            content_type: content_type.trim().to_string(),
            body: body.to_string(),
        })
    }

    /// Blind transfer (RFC 3515): send REFER in `call` with `Refer-To: <target>` (a dial
    /// string resolved like [`SipUa::invite`]). The peer's progress (its NOTIFYs with
    /// `message/sipfrag`, RFC 3515 §2.4.5) and a refusal of the REFER itself arrive as
    /// [`crate::SipEvent::ReferStatus`]; a code >= 200 is final.
    pub fn refer(&self, call: CallKey, target: &str) -> Result<(), SipError> {
        let resolved = self.resolve_target(target)?;
        self.service(ServiceCommand::Refer {
            call,
            refer_to: format!("<{}>", resolved.request_uri),
        })
    }

    /// Attended transfer (RFC 5589 §7): send REFER in `call` whose `Refer-To` is the peer of
    /// `other` (its Contact) with an escaped `Replaces` naming the dialog of `other`
    /// (RFC 3891 §6.1), so that the peer of `call` replaces us in `other`. Progress as for
    /// [`SipUa::refer`]. A call without a dialog yet gets `ReferStatus { code: 481 }`.
    pub fn refer_with_replaces(&self, call: CallKey, other: CallKey) -> Result<(), SipError> {
        self.service(ServiceCommand::ReferWithReplaces { call, other })
    }

    /// [`SipUa::invite`] with a `Replaces` header (RFC 3891 §3): the call placed for an
    /// accepted [`crate::SipEvent::Refer`] that carried one (attended transfer), so that
    /// its target replaces the named dialog by this call.
    pub fn invite_with_replaces(
        &self,
        target: &str,
        sdp_offer: String,
        replaces: &Replaces,
    ) -> Result<CallKey, SipError> {
        if sdp_offer.trim().is_empty() {
            return Err(SipError::Unsupported(
                "INVITE without SDP offer (late offer)".into(),
            ));
        }
        let resolved = self.resolve_target(target)?;
        let call = CallKey(self.next_key());
        let call_id = crate::stack::new_call_id();
        tracing::info!(%call, target, uri = %resolved.request_uri, %call_id, "invite with Replaces");
        // Same channel, so the driver has the headers before it builds the INVITE.
        self.service(ServiceCommand::InviteHeaders {
            call,
            headers: vec![("Replaces".to_string(), replaces.header_value())],
        })?;
        self.inner.call_ids.insert(call, call_id.clone());
        self.send(crate::policy::Command::Invite {
            call,
            call_id,
            target: resolved,
            sdp: sdp_offer,
        });
        Ok(call)
    }

    /// Accept the peer's REFER ([`crate::SipEvent::Refer`]) in `call`: 202 Accepted, then a
    /// NOTIFY `SIP/2.0 100 Trying` (RFC 3515 §2.4.4). Place the new call, then report its
    /// outcome with [`SipUa::notify_refer`].
    pub fn accept_refer(&self, call: CallKey) -> Result<(), SipError> {
        self.service(ServiceCommand::AcceptRefer(call))
    }

    /// Refuse the peer's REFER in `call` with `code` (603 Decline when outside 400-699).
    pub fn reject_refer(&self, call: CallKey, code: u16) -> Result<(), SipError> {
        let code = if (400..700).contains(&code) {
            code
        } else {
            603
        };
        self.service(ServiceCommand::RejectRefer(call, code))
    }

    /// Report the progress of the call placed for an accepted REFER in `call`: a NOTIFY
    /// with `message/sipfrag` `SIP/2.0 <code> ...` (RFC 3515 §2.4.5). A code >= 200 ends
    /// the implicit subscription (`Subscription-State: terminated;reason=noresource`).
    pub fn notify_refer(&self, call: CallKey, code: u16) -> Result<(), SipError> {
        self.service(ServiceCommand::NotifyRefer(call, code))
    }

    /// Subscribe to `event` (`presence`, `dialog` for BLF, `message-summary` for MWI, or any
    /// other package) of `target` (RFC 6665 §4.1.2), asking for `expires` seconds (0 = 3600).
    /// The subscription is refreshed before it expires until [`SipUa::unsubscribe`]. Every
    /// NOTIFY is [`crate::SipEvent::Notify`] (body raw); a refused SUBSCRIBE (or refresh) is
    /// [`crate::SipEvent::SubscriptionFailed`] and ends the subscription.
    pub fn subscribe(&self, target: &str, event: &str, expires: u32) -> Result<SubKey, SipError> {
        if event_package(event).is_empty() {
            return Err(SipError::Unsupported(
                "SUBSCRIBE without an event package".into(),
            ));
        }
        let resolved = self.resolve_target(target)?;
        let sub = SubKey(self.next_key());
        tracing::info!(%sub, target, event, "subscribe");
        self.service(ServiceCommand::Subscribe {
            sub,
            target: resolved,
            event: event.trim().to_string(),
            expires: if expires == 0 { 3600 } else { expires },
        })?;
        Ok(sub)
    }

    /// End a subscription: SUBSCRIBE with `Expires: 0` (RFC 6665 §4.1.2.3). The notifier's
    /// last NOTIFY (`terminated`) is still reported.
    pub fn unsubscribe(&self, sub: SubKey) -> Result<(), SipError> {
        self.service(ServiceCommand::Unsubscribe(sub))
    }

    /// Publish our presence (PUBLISH, RFC 3903 §4, `Event: presence`,
    /// `application/pidf+xml`) to our address of record; refreshed with its entity tag
    /// (`SIP-If-Match`, no body) before it expires. The outcome of each PUBLISH is
    /// [`crate::SipEvent::PublishStatus`]. A new body replaces the old one (same entity tag).
    pub fn publish_presence(&self, pidf_body: &str) -> Result<(), SipError> {
        self.service(ServiceCommand::Publish {
            body: Some(pidf_body.to_string()),
            expires: PUBLISH_EXPIRES,
        })
    }

    /// Remove our published presence (PUBLISH with `Expires: 0`, RFC 3903 §4.5).
    pub fn unpublish_presence(&self) -> Result<(), SipError> {
        self.service(ServiceCommand::Publish {
            body: None,
            expires: 0,
        })
    }
}

/// After a NOTIFY ended a subscription with `reason` (RFC 6665 §4.1.3): how long to wait before
/// subscribing again, or `None` for not at all. `deactivated` and `timeout` invite a new
/// subscription at once; `probation` and `giveup` a later one (after `Retry-After`, else a
/// minute); `rejected`, `noresource`, `invariant` and no reason do not.
pub fn resubscribe_after(reason: Option<&str>, retry_after: Option<u32>) -> Option<Duration> {
    match reason.map(str::to_ascii_lowercase).as_deref() {
        // A Retry-After is honoured here too (RFC 6665 §4.1.3: "SHOULD NOT ... before").
        Some("deactivated" | "timeout") => {
            Some(Duration::from_secs(retry_after.map_or(0, u64::from)))
        }
        Some("probation" | "giveup") => {
            Some(Duration::from_secs(retry_after.map_or(60, u64::from)))
        }
        _ => None,
    }
}

/// Renewals of one subscription in a row, each ended again before an `active` NOTIFY, that
/// are made at all; a notifier that keeps ending it is then left alone.
pub const MAX_RENEWALS: u32 = 6;

/// The least wait before the `n`-th renewal in a row (0 for the first): 1, 2, 4 ... 32 s, so a
/// notifier that ends every new subscription at once gets no storm of SUBSCRIBEs.
pub fn renewal_backoff(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 1).min(5)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_in_a_row_back_off_and_stop() {
        let waits: Vec<u64> = (0..MAX_RENEWALS)
            .map(|n| renewal_backoff(n).as_secs())
            .collect();
        assert_eq!(waits, vec![0, 1, 2, 4, 8, 16]);
        assert_eq!(renewal_backoff(40), Duration::from_secs(32));
    }

    #[test]
    fn a_subscription_is_renewed_after_deactivated_and_timeout_and_later_after_probation() {
        assert_eq!(
            resubscribe_after(Some("deactivated"), None),
            Some(Duration::ZERO)
        );
        assert_eq!(
            resubscribe_after(Some("Timeout"), Some(9)),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            resubscribe_after(Some("probation"), Some(30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            resubscribe_after(Some("giveup"), None),
            Some(Duration::from_secs(60))
        );
        for r in [
            Some("rejected"),
            Some("noresource"),
            Some("invariant"),
            None,
        ] {
            assert_eq!(resubscribe_after(r, None), None, "{r:?}");
        }
    }

    #[test]
    fn replaces_round_trip_through_refer_to() {
        let r = Replaces {
            call_id: "abc@1.2.3.4".into(),
            to_tag: "t1".into(),
            from_tag: "f;2".into(),
            early_only: false,
        };
        let refer_to = refer_to_with_replaces("sip:carol@10.0.0.1:5070", &r);
        assert_eq!(
            refer_to,
            "<sip:carol@10.0.0.1:5070?Replaces=abc%401.2.3.4%3Bto-tag%3Dt1%3Bfrom-tag%3Df%3B2>"
        );
        // ';' inside a tag cannot round-trip through the header syntax; a plain one does.
        let plain = Replaces {
            from_tag: "f2".into(),
            ..r
        };
        let (uri, back) = parse_refer_to(&refer_to_with_replaces("sip:carol@h", &plain));
        assert_eq!(uri, "sip:carol@h");
        assert_eq!(back, Some(plain));
    }

    #[test]
    fn refer_to_without_replaces() {
        assert_eq!(
            parse_refer_to("<sip:1003@pbx;transport=tcp>;method=INVITE"),
            ("sip:1003@pbx;transport=tcp".to_string(), None)
        );
        assert_eq!(
            parse_refer_to("sip:1003@pbx"),
            ("sip:1003@pbx".into(), None)
        );
    }

    #[test]
    fn replaces_header_parsing() {
        let r = Replaces::parse("x@y; to-tag=a ;from-tag=b;early-only").unwrap();
        assert_eq!(
            (r.call_id.as_str(), r.to_tag.as_str(), r.from_tag.as_str()),
            ("x@y", "a", "b")
        );
        assert!(r.early_only);
        assert_eq!(Replaces::parse("x@y;to-tag=a"), None);
        assert_eq!(Replaces::parse(";to-tag=a;from-tag=b"), None);
    }

    #[test]
    fn subscription_states() {
        assert_eq!(
            parse_subscription_state("active;expires=600"),
            SubscriptionState::Active { expires: Some(600) }
        );
        assert_eq!(
            parse_subscription_state("Pending"),
            SubscriptionState::Pending { expires: None }
        );
        assert_eq!(
            parse_subscription_state("terminated;reason=timeout;retry-after=30"),
            SubscriptionState::Terminated {
                reason: Some("timeout".into()),
                retry_after: Some(30)
            }
        );
        assert_eq!(
            parse_subscription_state("bogus"),
            SubscriptionState::Active { expires: None }
        );
    }

    #[test]
    fn sipfrag() {
        assert_eq!(sipfrag_status("SIP/2.0 180 Ringing\r\n"), Some(180));
        assert_eq!(sipfrag_status("SIP/2.0 603 Declined"), Some(603));
        assert_eq!(sipfrag_status("INVITE sip:x SIP/2.0"), None);
        assert_eq!(sipfrag_status(""), None);
        assert_eq!(sipfrag_body(486), "SIP/2.0 486 Busy Here\r\n");
        assert_eq!(sipfrag_status(&sipfrag_body(200)), Some(200));
    }

    #[test]
    fn message_types() {
        assert!(message_type_accepted("text/plain;charset=UTF-8"));
        assert!(message_type_accepted("Application/IM-IsComposing+XML"));
        assert!(!message_type_accepted("text/html"));
        assert!(!message_type_accepted(""));
    }

    #[test]
    fn dtmf_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            dtmf_from_info(relay, "Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(dtmf_from_info(relay, "signal= #\n"), Some('#'));
        assert_eq!(dtmf_from_info(relay, "Signal=x"), None);
        let plain = Some("application/dtmf");
        assert_eq!(dtmf_from_info(plain, "7\r\n"), Some('7'));
        assert_eq!(dtmf_from_info(plain, "a"), Some('A'));
        assert_eq!(dtmf_from_info(plain, "11"), Some('#'));
        assert_eq!(dtmf_from_info(plain, "99"), None);
        // No Content-Type: the dtmf-relay form is still recognised.
        assert_eq!(dtmf_from_info(None, "Signal=9"), Some('9'));
    }

    #[test]
    fn refresh_timing() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3060));
        assert_eq!(refresh_after(20), Duration::from_secs(15));
        assert_eq!(refresh_after(4), Duration::from_secs(1));
        assert_eq!(refresh_after(0), Duration::from_secs(1));
    }

    #[test]
    fn event_packages() {
        assert_eq!(event_package("Presence;id=1"), "presence");
        assert_eq!(
            accept_for_event("dialog"),
            Some("application/dialog-info+xml")
        );
        assert_eq!(
            accept_for_event("message-summary"),
            Some("application/simple-message-summary")
        );
        assert_eq!(accept_for_event("foo"), None);
    }
}
