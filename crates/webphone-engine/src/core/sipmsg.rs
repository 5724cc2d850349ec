//! The last SIP messages sent and received, for `getsipmessage` and `getsipheader`: the SIP
//! layer's message trace (digest responses already redacted) is kept in a short ring.

use std::collections::VecDeque;

use serde_json::Value;

use super::{arg, bad, Core};
use crate::phone::ApiError;

/// How many messages per direction are kept.
const KEEP: usize = 64;

/// One traced message.
#[derive(Debug, Clone)]
pub(super) struct Traced {
    pub text: String,
}

impl Traced {
    fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    fn is_response(&self) -> bool {
        self.start_line().starts_with("SIP/2.0 ")
    }

    /// Whether the message belongs to the dialog `callid` (`Call-ID` or its compact form `i`,
    /// RFC 3261 §7.3.3).
    fn in_call(&self, callid: &str) -> bool {
        self.header("Call-ID")
            .or_else(|| self.header("i"))
            .as_deref()
            == Some(callid)
    }

    /// A header's value (name case-insensitive; compact forms are not expanded).
    fn header(&self, name: &str) -> Option<String> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
    }
}

/// Messages in both directions, newest last.
#[derive(Debug, Default)]
pub(super) struct SipLog {
    received: VecDeque<Traced>,
    sent: VecDeque<Traced>,
}

impl SipLog {
    pub(super) fn push(&mut self, outgoing: bool, text: String) {
        let q = if outgoing {
            &mut self.sent
        } else {
            &mut self.received
        };
        if q.len() >= KEEP {
            q.pop_front();
        }
        q.push_back(Traced { text });
    }

    /// The newest message of a direction (0 received, 1 sent) and kind (0 any, 1 request,
    /// 2 response, 3 INVITE, 4 a 200 OK), limited to `callid` when given.
    pub(super) fn find(&self, dir: i64, kind: i64, callid: Option<&str>) -> Option<&Traced> {
        let q = if dir == 1 { &self.sent } else { &self.received };
        q.iter().rev().find(|m| {
            let kind_ok = match kind {
                1 => !m.is_response(),
                2 => m.is_response(),
                3 => m.start_line().starts_with("INVITE "),
                4 => m.start_line().starts_with("SIP/2.0 200"),
                _ => true,
            };
            kind_ok && callid.is_none_or(|c| m.in_call(c))
        })
    }

    /// A header of the newest received message that has it.
    pub(super) fn header(&self, name: &str, callid: Option<&str>) -> Option<String> {
        self.received.iter().rev().find_map(|m| {
            let same = callid.is_none_or(|c| m.in_call(c));
            if same {
                m.header(name)
            } else {
                None
            }
        })
    }
}

impl Core {
    /// The Call-ID of the active line, unless a recent `setline(-2)` asks for all lines.
    fn message_scope(&self) -> Option<String> {
        if matches!(self.setline, Some((super::LineSel::All, _))) {
            return None;
        }
        self.lines
            .active()
            .and_then(|n| self.lines.get(n))
            .map(|l| l.callid.clone())
            .filter(|c| !c.is_empty())
    }

    /// `getsipmessage(dir, type)`: the raw message, or a text starting with `ERROR`.
    pub(super) fn getsipmessage_api(&self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: getsipmessage(dir, type): dir 0 received, 1 sent; type 0 any, 1 request, 2 response, 3 INVITE, 4 200 OK";
        let num = |i| arg(args, i).map(str::trim).unwrap_or("0").parse::<i64>();
        let (Ok(dir), Ok(kind)) = (num(0), num(1)) else {
            return Err(bad(usage));
        };
        if !(0..=1).contains(&dir) || !(0..=4).contains(&kind) {
            return Err(bad(usage));
        }
        let scope = self.message_scope();
        Ok(Value::from(
            self.siplog
                .find(dir, kind, scope.as_deref())
                .map(|m| m.text.clone())
                .unwrap_or_else(|| "ERROR: SIP message not found".into()),
        ))
    }

    /// `getsipheader(name)`: from the last received messages, or a text starting with `ERROR`.
    pub(super) fn getsipheader_api(&self, args: &[String]) -> Result<Value, ApiError> {
        let name = arg(args, 0)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("usage: getsipheader(name), e.g. Contact"))?;
        let scope = self.message_scope();
        Ok(Value::from(
            self.siplog
                .header(name, scope.as_deref())
                .unwrap_or_else(|| "ERROR: no such header".into()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_messages_by_direction_kind_and_call() {
        let mut log = SipLog::default();
        log.push(
            false,
            "INVITE sip:a@h SIP/2.0\r\nCall-ID: c1\r\nX-Custom: one\r\n\r\nv=0".into(),
        );
        log.push(true, "SIP/2.0 200 OK\r\nCall-ID: c1\r\n\r\n".into());
        log.push(
            false,
            "OPTIONS sip:a@h SIP/2.0\r\nCall-ID: c2\r\n\r\n".into(),
        );
        assert!(log
            .find(0, 3, None)
            .is_some_and(|m| m.text.starts_with("INVITE")));
        assert!(log
            .find(0, 0, None)
            .is_some_and(|m| m.text.starts_with("OPTIONS")));
        assert!(log
            .find(0, 0, Some("c1"))
            .is_some_and(|m| m.text.starts_with("INVITE")));
        assert!(log.find(1, 4, None).is_some());
        assert!(log.find(1, 1, None).is_none());
        assert_eq!(log.header("x-custom", None).as_deref(), Some("one"));
        assert_eq!(log.header("X-Custom", Some("c2")), None);
        assert_eq!(log.header("v", None), None, "the body is not searched");
    }
}
