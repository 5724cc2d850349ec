//! Call timers: how long a call may ring and how long it may last, as a pure function of the
//! line's state, its timestamps and `now` (the engine's 1 s tick calls it).

use std::time::{Duration, Instant};

use super::CallPhase;
use crate::params::ParamStore;

/// Why a call is ended by a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Our outgoing call rang too long (`ringtimeoutout`, else `ringtimeout`).
    RingOut,
    /// An incoming call rang too long without an answer (`ringtimeoutin`, else `ringtimeout`).
    RingIn,
    /// The call reached the talk-time limit (`calltimeout`).
    CallLimit,
    /// An incoming call was not answered within `callforwardonnoanswertimeout`: forward it to
    /// `callforwardonnoanswer`.
    ForwardNoAnswer,
}

impl Expiry {
    pub(super) fn text(self) -> &'static str {
        match self {
            Expiry::RingOut => "no answer: ring timeout",
            Expiry::RingIn => "not answered: ring timeout",
            Expiry::CallLimit => "call time limit reached",
            Expiry::ForwardNoAnswer => "not answered: forwarded",
        }
    }
}

/// The limits in force; `None` means no limit (a parameter of 0 or less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub ring_in: Option<Duration>,
    pub ring_out: Option<Duration>,
    pub call: Option<Duration>,
    /// Set only when `callforwardonnoanswer` names a target.
    pub forward_no_answer: Option<Duration>,
}

fn ms(v: Option<i64>) -> Option<Duration> {
    v.filter(|v| *v > 0)
        .map(|v| Duration::from_millis(v as u64))
}

impl Limits {
    /// From the parameters (all in milliseconds): the direction-specific ring limits fall back
    /// to `ringtimeout` when unset.
    pub(super) fn from_params(p: &ParamStore) -> Limits {
        let ring = p.get_i64("ringtimeout");
        let pick = |name: &str| {
            if p.get(name).trim().is_empty() {
                ms(ring)
            } else {
                ms(p.get_i64(name))
            }
        };
        Limits {
            ring_in: pick("ringtimeoutin"),
            ring_out: pick("ringtimeoutout"),
            call: ms(p.get_i64("calltimeout")),
            // The catalog gives 15 s and no unit; this engine reads it in seconds.
            forward_no_answer: (!p.get("callforwardonnoanswer").trim().is_empty()).then(|| {
                Duration::from_secs(
                    p.get_i64("callforwardonnoanswertimeout")
                        .filter(|v| *v > 0)
                        .unwrap_or(15) as u64,
                )
            }),
        }
    }
}

/// The timer that has run out for a line, if any.
pub(super) fn expired(
    phase: CallPhase,
    started: Instant,
    connected: Option<Instant>,
    now: Instant,
    limits: &Limits,
) -> Option<Expiry> {
    let over = |since: Instant, limit: Option<Duration>| {
        limit.is_some_and(|l| now.saturating_duration_since(since) >= l)
    };
    match phase {
        CallPhase::Setup | CallPhase::Ringing if over(started, limits.ring_out) => {
            Some(Expiry::RingOut)
        }
        CallPhase::Incoming if over(started, limits.forward_no_answer) => {
            Some(Expiry::ForwardNoAnswer)
        }
        CallPhase::Incoming if over(started, limits.ring_in) => Some(Expiry::RingIn),
        CallPhase::Connected if connected.is_some_and(|c| over(c, limits.call)) => {
            Some(Expiry::CallLimit)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            ring_in: Some(Duration::from_secs(20)),
            ring_out: Some(Duration::from_secs(90)),
            call: Some(Duration::from_secs(3600)),
            forward_no_answer: None,
        }
    }

    #[test]
    fn unanswered_call_is_forwarded_before_the_ring_timeout() {
        let t0 = Instant::now();
        let l = Limits {
            forward_no_answer: Some(Duration::from_secs(15)),
            ..limits()
        };
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(expired(CallPhase::Incoming, t0, None, at(14), &l), None);
        assert_eq!(
            expired(CallPhase::Incoming, t0, None, at(15), &l),
            Some(Expiry::ForwardNoAnswer)
        );
        assert_eq!(
            expired(CallPhase::Incoming, t0, None, at(25), &l),
            Some(Expiry::ForwardNoAnswer)
        );
        // Only incoming calls are forwarded.
        assert_eq!(expired(CallPhase::Ringing, t0, None, at(20), &l), None);
    }

    #[test]
    fn outgoing_call_is_cancelled_after_the_ring_timeout() {
        let t0 = Instant::now();
        let l = limits();
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(expired(CallPhase::Ringing, t0, None, at(89), &l), None);
        assert_eq!(
            expired(CallPhase::Ringing, t0, None, at(90), &l),
            Some(Expiry::RingOut)
        );
        assert_eq!(
            expired(CallPhase::Setup, t0, None, at(91), &l),
            Some(Expiry::RingOut)
        );
    }

    #[test]
    fn incoming_call_uses_its_own_ring_limit() {
        let t0 = Instant::now();
        let l = limits();
        assert_eq!(
            expired(
                CallPhase::Incoming,
                t0,
                None,
                t0 + Duration::from_secs(19),
                &l
            ),
            None
        );
        assert_eq!(
            expired(
                CallPhase::Incoming,
                t0,
                None,
                t0 + Duration::from_secs(20),
                &l
            ),
            Some(Expiry::RingIn)
        );
    }

    #[test]
    fn talk_time_counts_from_connect_and_zero_means_no_limit() {
        let t0 = Instant::now();
        let c = t0 + Duration::from_secs(30);
        let mut l = limits();
        assert_eq!(
            expired(
                CallPhase::Connected,
                t0,
                Some(c),
                t0 + Duration::from_secs(3620),
                &l
            ),
            None
        );
        assert_eq!(
            expired(
                CallPhase::Connected,
                t0,
                Some(c),
                t0 + Duration::from_secs(3630),
                &l
            ),
            Some(Expiry::CallLimit)
        );
        l.call = None;
        assert_eq!(
            expired(
                CallPhase::Connected,
                t0,
                Some(c),
                t0 + Duration::from_secs(99_999),
                &l
            ),
            None
        );
    }

    #[test]
    fn limits_come_from_the_parameters() {
        let mut p = ParamStore::new();
        let l = Limits::from_params(&p);
        assert_eq!(l.ring_out, Some(Duration::from_millis(90_000)));
        assert_eq!(l.ring_in, Some(Duration::from_millis(90_000)));
        assert_eq!(l.call, Some(Duration::from_millis(10_800_000)));
        p.set("ringtimeoutin", "15000").unwrap();
        p.set("calltimeout", "0").unwrap();
        let l = Limits::from_params(&p);
        assert_eq!(l.ring_in, Some(Duration::from_millis(15_000)));
        assert_eq!(l.ring_out, Some(Duration::from_millis(90_000)));
        assert_eq!(l.call, None);
    }
}
