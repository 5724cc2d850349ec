//! What the tray and the incoming-call pop-up need to know, derived from the engine's events:
//! the registration state (general `STATUS,-1,...` lines), the ringing incoming calls
//! (`onCallStateChange("callRinging", 2, peer, display, line)`) and the missed calls (an
//! incoming call that ended without being answered, rejected or ignored here).

use std::collections::{BTreeMap, BTreeSet};

use webphone_engine::Event;

/// Direction code of incoming calls in `onCallStateChange`.
const INCOMING: u64 = 2;

/// A ringing incoming call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incoming {
    pub line: u64,
    /// The caller's number or user name (`peername`).
    pub number: String,
    /// The caller's display name (may be empty).
    pub name: String,
}

/// A change the desktop shell reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New registration label (`Registered`, `Registering...`, `Register Failed`, `Ready`, ...).
    Registration(String),
    /// An incoming call started ringing.
    Ringing(Incoming),
    /// The ringing call on this line was answered or ended.
    RingingOver(u64),
    /// The missed-call count changed.
    Missed(u32),
    /// A call ended (its `CDR` notification): the peer's number or URI.
    Ended(String),
    /// The set of connected calls changed (a call was answered or ended).
    Calls,
}

/// One entry of the tray's Calls menu: its menu id (`call:answer:<line>` for a ringing call,
/// `call:hangup:<line>` for a connected one) and its label.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallEntry {
    pub id: String,
    pub label: String,
}

/// Menu-id prefix of the tray's call entries.
pub const CALL_ID: &str = "call:";

#[derive(Debug, Default)]
pub struct Tracker {
    registration: String,
    ringing: BTreeMap<u64, Incoming>,
    /// Lines whose ringing call the user handled here (accept, reject, ignore).
    handled: BTreeSet<u64>,
    missed: u32,
    /// Connected calls: line and peer.
    connected: BTreeMap<u64, String>,
}

/// General status texts that describe the registration (not a call).
fn is_registration_text(t: &str) -> bool {
    matches!(
        t,
        "Initializing" | "Ready" | "Registered" | "Registering..." | "Register Failed"
    ) || t.starts_with("Register")
        || t.starts_with("Unregister")
}

impl Tracker {
    pub fn registration(&self) -> &str {
        if self.registration.is_empty() {
            "Not started"
        } else {
            &self.registration
        }
    }

    pub fn missed(&self) -> u32 {
        self.missed
    }

    pub fn reset_missed(&mut self) -> bool {
        std::mem::take(&mut self.missed) != 0
    }

    /// The ringing call on `line` (any ringing call for `None`).
    pub fn ringing(&self, line: Option<u64>) -> Option<&Incoming> {
        match line {
            Some(l) => self.ringing.get(&l),
            None => self.ringing.values().next(),
        }
    }

    /// The user answered, rejected or ignored the call on `line` (all ringing calls for `None`),
    /// so its end is not a missed call.
    pub fn mark_handled(&mut self, line: Option<u64>) {
        match line {
            Some(l) => {
                self.handled.insert(l);
            }
            None => self.handled.extend(self.ringing.keys().copied()),
        }
    }

    /// The tray's Calls entries, by line: answer a ringing call, hang up a connected one.
    pub fn call_entries(&self) -> Vec<CallEntry> {
        let mut lines: BTreeMap<u64, CallEntry> = BTreeMap::new();
        for (line, peer) in &self.connected {
            lines.insert(
                *line,
                CallEntry {
                    id: format!("{CALL_ID}hangup:{line}"),
                    label: format!("Hang up {peer} (line {line})"),
                },
            );
        }
        for (line, inc) in &self.ringing {
            let who = if inc.name.is_empty() || inc.name == inc.number {
                inc.number.clone()
            } else {
                format!("{} ({})", inc.name, inc.number)
            };
            lines.insert(
                *line,
                CallEntry {
                    id: format!("{CALL_ID}answer:{line}"),
                    label: format!("Answer {who} (line {line})"),
                },
            );
        }
        lines.into_values().collect()
    }

    pub fn on_event(&mut self, ev: &Event) -> Vec<Change> {
        let mut out = Vec::new();
        match ev {
            Event::Notification(text) => {
                let mut f = text.splitn(4, ',');
                match (f.next(), f.next(), f.next()) {
                    (Some("STATUS"), Some("-1"), Some(t))
                        if is_registration_text(t) && t != self.registration =>
                    {
                        self.registration = t.to_string();
                        out.push(Change::Registration(t.to_string()));
                    }
                    // CDR,line,peername,caller,called,... (notifications.md section 7)
                    (Some("CDR"), Some(_), Some(peer)) if !peer.trim().is_empty() => {
                        out.push(Change::Ended(peer.trim().to_string()));
                    }
                    _ => {}
                }
            }
            Event::Callback { name, args } if name == "onCallStateChange" => {
                let s = |i: usize| args.get(i).and_then(|v| v.as_str()).unwrap_or("");
                let n = |i: usize| args.get(i).and_then(|v| v.as_u64());
                let (Some(dir), Some(line)) = (n(1), n(4)) else {
                    return out;
                };
                match s(0) {
                    "callRinging" if dir == INCOMING => {
                        let inc = Incoming {
                            line,
                            number: s(2).to_string(),
                            name: s(3).to_string(),
                        };
                        self.handled.remove(&line);
                        if self.ringing.insert(line, inc.clone()).is_none() {
                            out.push(Change::Ringing(inc));
                        }
                    }
                    "callConnected" => {
                        if self.ringing.remove(&line).is_some() {
                            out.push(Change::RingingOver(line));
                        }
                        self.handled.remove(&line);
                        let peer = s(2).to_string();
                        if self.connected.get(&line) != Some(&peer) {
                            self.connected.insert(line, peer);
                            out.push(Change::Calls);
                        }
                    }
                    "callDisconnected" => {
                        if self.ringing.remove(&line).is_some() {
                            if !self.handled.contains(&line) {
                                self.missed += 1;
                                out.push(Change::Missed(self.missed));
                            }
                            out.push(Change::RingingOver(line));
                        }
                        self.handled.remove(&line);
                        if self.connected.remove(&line).is_some() {
                            out.push(Change::Calls);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cb(args: serde_json::Value) -> Event {
        Event::Callback {
            name: "onCallStateChange".into(),
            args: args.as_array().unwrap().clone(),
        }
    }
    fn note(s: &str) -> Event {
        Event::Notification(s.into())
    }

    #[test]
    fn registration_from_general_status() {
        let mut t = Tracker::default();
        assert_eq!(t.registration(), "Not started");
        assert_eq!(
            t.on_event(&note("STATUS,-1,Registering...,,1001,0,,,1,0,0,0,0,0,0")),
            [Change::Registration("Registering...".into())]
        );
        t.on_event(&note("STATUS,-1,Registered,,1001,0,,,1,1,0,0,0,0,0"));
        assert_eq!(t.registration(), "Registered");
        // Call texts and line statuses do not change the registration label; repeats are quiet.
        assert!(t
            .on_event(&note(
                "STATUS,-1,In Call (3 sec),1002,1001,1,,x,1,1,2,0,0,0,0"
            ))
            .is_empty());
        assert!(t.on_event(&note("STATUS,1,Registered,x")).is_empty());
        assert!(t.on_event(&note("STATUS,-1,Registered,,1001")).is_empty());
        assert_eq!(t.registration(), "Registered");
    }

    #[test]
    fn calls_menu_lists_ringing_and_connected_calls_by_line() {
        let mut t = Tracker::default();
        assert!(t.call_entries().is_empty());
        t.on_event(&cb(json!(["callRinging", 2, "1002", "Bob", 1])));
        assert_eq!(
            t.call_entries(),
            [CallEntry {
                id: "call:answer:1".into(),
                label: "Answer Bob (1002) (line 1)".into()
            }]
        );
        assert_eq!(
            t.on_event(&cb(json!(["callConnected", 2, "1002", "Bob", 1]))),
            [Change::RingingOver(1), Change::Calls]
        );
        t.on_event(&cb(json!(["callRinging", 2, "1003", "", 2])));
        let ids: Vec<String> = t.call_entries().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["call:hangup:1", "call:answer:2"]);
        assert_eq!(t.call_entries()[0].label, "Hang up 1002 (line 1)");
        assert_eq!(
            t.on_event(&cb(json!(["callDisconnected", 2, "1002", "Bob", 1]))),
            [Change::Calls]
        );
        let ids: Vec<String> = t.call_entries().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["call:answer:2"]);
    }

    #[test]
    fn ended_calls_from_cdr() {
        let mut t = Tracker::default();
        assert_eq!(
            t.on_event(&note("CDR,1,1002,1001,1002,127.0.0.1,120,5000,1")),
            [Change::Ended("1002".into())]
        );
        assert!(t.on_event(&note("CDR,1,,1001,,x,0,0,3")).is_empty());
    }

    #[test]
    fn ringing_answered_missed_and_handled() {
        let mut t = Tracker::default();
        let ring = cb(json!(["callRinging", 2, "1002", "Bob", 1]));
        assert_eq!(
            t.on_event(&ring),
            [Change::Ringing(Incoming {
                line: 1,
                number: "1002".into(),
                name: "Bob".into()
            })]
        );
        assert!(t.on_event(&ring).is_empty(), "a repeat is not a new call");
        assert_eq!(t.ringing(None).unwrap().number, "1002");
        assert_eq!(
            t.on_event(&cb(json!(["callConnected", 2, "1002", "Bob", 1]))),
            [Change::RingingOver(1), Change::Calls]
        );
        assert_eq!(
            t.on_event(&cb(json!(["callDisconnected", 2, "1002", "Bob", 1]))),
            [Change::Calls],
            "only the calls menu changes"
        );
        assert_eq!(t.missed(), 0);

        // Rings, caller gives up: missed.
        t.on_event(&cb(json!(["callRinging", 2, "1003", "", 2])));
        assert_eq!(
            t.on_event(&cb(json!(["callDisconnected", 2, "1003", "", 2]))),
            [Change::Missed(1), Change::RingingOver(2)]
        );
        // Rings, rejected here: not missed.
        t.on_event(&cb(json!(["callRinging", 2, "1004", "", 1])));
        t.mark_handled(None);
        assert_eq!(
            t.on_event(&cb(json!(["callDisconnected", 2, "1004", "", 1]))),
            [Change::RingingOver(1)]
        );
        assert_eq!(t.missed(), 1);
        // Outgoing ringing is not an incoming call.
        assert!(t
            .on_event(&cb(json!(["callRinging", 1, "1005", "", 1])))
            .is_empty());
        assert!(t.reset_missed());
        assert!(!t.reset_missed());
    }
}
