//! Instant messages (SIP MESSAGE, RFC 3428) and call transfer (REFER, RFC 3515): the API
//! functions `sendchat` and `transfer`, and what arrives from the peer.

use std::time::{Duration, Instant};

use serde_json::Value;

use webphone_sip::{CallKey, MessageKey};

use super::{arg, bad, user_of, Core, Severity};
use crate::notify;
use crate::phone::ApiError;
use crate::profile::ChatEntry;

/// Chats are not calls: their notifications carry line 0 ("undefined", notifications §1).
const CHAT_LINE: i32 = 0;

/// CHATREPORT status codes (notifications §6).
const REPORT_SENDING: u8 = 1;
const REPORT_SENT: u8 = 2;
const REPORT_FAILED: u8 = 3;

/// Reads the `<state>` of an RFC 3994 is-composing document: true for `active`.
pub(super) fn composing_active(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower
        .split("<state>")
        .nth(1)
        .and_then(|rest| rest.split("</state>").next())
        .is_some_and(|s| s.trim() == "active")
}

/// How often an `active` state is sent again while the user keeps typing, and the refresh
/// interval it announces (RFC 3994 §3.1: at most once per refresh, 60 s suggested).
pub(super) const COMPOSING_REFRESH: Duration = Duration::from_secs(60);

/// Whether a new is-composing state goes out (RFC 3994 §3.1): an `active` when the last one
/// sent was idle or is older than [`COMPOSING_REFRESH`] minus a margin, so that the peer's
/// copy never lapses; an `idle` only after an `active`.
pub(super) fn composing_due(last: Option<(bool, Instant)>, active: bool, now: Instant) -> bool {
    match (last, active) {
        (None, active) => active,
        (Some((false, _)), active) => active,
        (Some((true, _)), false) => true,
        (Some((true, at)), true) => {
            now.saturating_duration_since(at) >= COMPOSING_REFRESH - Duration::from_secs(10)
        }
    }
}

/// An RFC 3994 §4 is-composing document for a plain-text conversation.
pub(super) fn composing_document(active: bool) -> String {
    let (state, refresh) = if active {
        (
            "active",
            format!("<refresh>{}</refresh>", COMPOSING_REFRESH.as_secs()),
        )
    } else {
        ("idle", String::new())
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\">\
         <state>{state}</state><contenttype>text/plain</contenttype>{refresh}</isComposing>"
    )
}

impl Core {
    /// `chatcomposing(peer, state)` (engine extension): tells `peer` that the user is typing
    /// (`state` 1/true) or stopped (0/false), as an RFC 3994 MESSAGE. Safe to call on every
    /// key press: repeats within the refresh interval are not sent. Returns whether a
    /// MESSAGE went out.
    pub(super) async fn chatcomposing_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: chatcomposing(peer, state): state is 1 (typing) or 0 (stopped)";
        let number = arg(args, 0)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(usage))?;
        let active = match arg(args, 1)
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("1" | "true" | "active") => true,
            Some("0" | "false" | "idle") => false,
            _ => return Err(bad(usage)),
        };
        self.start().await?;
        let target = self.dial_target(number)?;
        let peer = user_of(&target);
        let now = Instant::now();
        if !composing_due(self.composing_sent.get(&peer).copied(), active, now) {
            return Ok(Value::from(false));
        }
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        sip.send_message(
            &target,
            "application/im-iscomposing+xml",
            &composing_document(active),
        )
        .map_err(|e| bad(format!("Invalid phone number or SIP URI or username: {e}")))?;
        if active {
            self.composing_sent.insert(peer, (true, now));
        } else {
            self.composing_sent.remove(&peer);
        }
        Ok(Value::from(true))
    }

    /// `sendchat(number, msg)`.
    pub(super) async fn sendchat_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let number = arg(args, 0)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("usage: sendchat(number, message)"))?;
        let msg = arg(args, 1).unwrap_or("");
        if msg.is_empty() {
            return Err(bad(
                "usage: sendchat(number, message): the message is empty",
            ));
        }
        self.start().await?;
        let target = self.dial_target(number)?;
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        let key = sip
            .send_message(&target, "text/plain;charset=UTF-8", msg)
            .map_err(|e| bad(format!("Invalid phone number or SIP URI or username: {e}")))?;
        let peer = user_of(&target);
        self.notify(notify::chat_report(CHAT_LINE, &peer, REPORT_SENDING, ""));
        self.integrations.on_chat(&self.params, false, &peer, msg);
        // RFC 3994 §3.2: a text sent ends the composing state at the peer.
        self.composing_sent.remove(&peer);
        let row = self.store_chat(&peer, false, msg, REPORT_SENDING);
        self.chats.insert(key, (peer, row));
        Ok(Value::Null)
    }

    /// Keeps a chat text in the profile's conversations; a failure is logged, the text
    /// still goes out or is still shown.
    fn store_chat(&mut self, peer: &str, incoming: bool, body: &str, status: u8) -> Option<i64> {
        let entry = ChatEntry {
            peer: peer.to_string(),
            incoming,
            body: body.to_string(),
            status,
            ..ChatEntry::default()
        };
        match self.with_profile(|p| p.add_chat(&entry)) {
            Ok(id) => Some(id),
            Err(e) => {
                self.log(Severity::Warning, &format!("chat message not saved: {e}"));
                None
            }
        }
    }

    /// `chathistory(peer, limit)` (engine extension): the stored conversation with `peer`
    /// (every peer when empty), the newest `limit` texts (default 100), oldest first, as
    /// objects `{at, peer, direction: "in"|"out", text, status}`.
    pub(super) fn chathistory_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let peer = arg(args, 0).map(str::trim).filter(|s| !s.is_empty());
        let limit = match arg(args, 1).map(str::trim).filter(|s| !s.is_empty()) {
            None => 100,
            Some(n) => n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad("usage: chathistory(peer, limit): limit is a positive number")
            })?,
        };
        let peer = peer.map(|p| {
            let user = user_of(p);
            if user.is_empty() {
                p.to_string()
            } else {
                user
            }
        });
        let rows = self.with_profile(|p| p.chats(peer.as_deref(), limit))?;
        Ok(Value::Array(
            rows.into_iter()
                .map(|c| {
                    serde_json::json!({
                        "at": c.at,
                        "peer": c.peer,
                        "direction": if c.incoming { "in" } else { "out" },
                        "text": c.body,
                        "status": c.status,
                    })
                })
                .collect(),
        ))
    }

    /// The delivery report of a MESSAGE we sent.
    pub(super) fn on_message_status(&mut self, key: MessageKey, code: u16, reason: &str) {
        let Some((peer, row)) = self.chats.remove(&key) else {
            return;
        };
        let (status, why) = if (200..300).contains(&code) {
            (REPORT_SENT, String::new())
        } else {
            (REPORT_FAILED, format!("{code} {reason}"))
        };
        if let Some(id) = row {
            if let Err(e) = self.with_profile(|p| p.set_chat_status(id, status)) {
                self.log(
                    Severity::Warning,
                    &format!("chat delivery state not saved: {e}"),
                );
            }
        }
        self.notify(notify::chat_report(CHAT_LINE, &peer, status, &why));
    }

    /// A MESSAGE from a peer: a chat text or an is-composing state.
    pub(super) fn on_message(
        &mut self,
        from_user: &str,
        from_uri: &str,
        content_type: &str,
        body: &str,
    ) {
        // The same match as for calls: user, number or URI, with or without `sip:`.
        if super::incoming::blacklisted(&self.params.get("blacklist"), from_user, from_uri) {
            self.log(
                Severity::Event,
                &format!("message from {from_user} blocked"),
            );
            return;
        }
        let ct = content_type.to_ascii_lowercase();
        if ct.starts_with("application/im-iscomposing+xml") {
            let active = composing_active(body);
            self.notify(notify::chat_composing(CHAT_LINE, from_user, active));
            return;
        }
        self.store_chat(from_user, true, body, 0);
        self.notify(notify::chat(CHAT_LINE, from_user, body));
        self.integrations
            .on_chat(&self.params, true, from_user, body);
        self.callback(
            "onChat",
            vec![from_user.into(), body.into(), Value::from(CHAT_LINE)],
        );
    }

    /// The peer asks us to call someone else (REFER): accept, place the call, and report
    /// its outcome back in NOTIFYs.
    pub(super) async fn on_refer(&mut self, call: CallKey, target: &str) {
        let Some(sip) = self.sip.clone() else { return };
        if self.line_of(call).is_none() {
            let _ = sip.reject_refer(call, 481);
            return;
        }
        if let Err(e) = sip.accept_refer(call) {
            self.log(Severity::Warning, &format!("REFER not accepted: {e}"));
            return;
        }
        self.log(
            Severity::Event,
            &format!("transferred to {target} by the peer"),
        );
        match self.call(target).await {
            Ok(n) => {
                if let Some(l) = self.lines.get_mut(n) {
                    l.referred_by = Some(call);
                }
            }
            Err(e) => {
                let _ = sip.notify_refer(call, 503);
                self.log(Severity::Warning, &format!("transfer call failed: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composing_active_is_sent_once_per_refresh_and_idle_only_after_active() {
        let t0 = Instant::now();
        assert!(composing_due(None, true, t0));
        assert!(!composing_due(None, false, t0), "no idle out of the blue");
        let sent = Some((true, t0));
        assert!(!composing_due(sent, true, t0 + Duration::from_secs(5)));
        assert!(composing_due(sent, true, t0 + Duration::from_secs(50)));
        assert!(composing_due(sent, false, t0 + Duration::from_secs(1)));
        assert!(composing_due(Some((false, t0)), true, t0));
    }

    #[test]
    fn composing_document_round_trips_through_our_reader() {
        assert!(composing_active(&composing_document(true)));
        assert!(!composing_active(&composing_document(false)));
        assert!(composing_document(true).contains("<refresh>60</refresh>"));
        assert!(!composing_document(false).contains("<refresh>"));
    }

    #[test]
    fn is_composing_state_is_read_from_the_document() {
        let active = r#"<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype></isComposing>"#;
        assert!(composing_active(active));
        assert!(!composing_active(&active.replace("active<", "idle<")));
        assert!(!composing_active("garbage"));
    }
}
