//! What an outgoing call does on a provisional response (RFC 3261 §21.1: 180 Ringing,
//! 181/182, 183 Session Progress): the `Ringing` status, local ringback, and early media
//! (RFC 3960: a provisional answer SDP opens media before the 200 OK).
//!
//! A pure function of the response, the parameters `earlymedia` / `changesptoring` /
//! `nostopring` and whether early RTP has arrived; the engine applies its result.
//!
//! - `changesptoring` is about 183 only; 180 (and 181/182) always show `Ringing` and start
//!   local ringback.
//! - `earlymedia` says whether a provisional answer SDP opens media at all, and whether we send
//!   (microphone audio) or only receive before the answer. 0 = never; 1 (reserved) and 2 (auto)
//!   and 4 (null packets only) receive only; 3, 5 and 6 send too; 6 also opens early media on a
//!   183 whose `changesptoring` (0 or 1) would not play it.
//! - Local ringback stops at the first early RTP packet unless `changesptoring=5` or
//!   `nostopring=1`.

/// The early-media parameters in force for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EarlyParams {
    /// `earlymedia` (0..6, default 2).
    pub earlymedia: i64,
    /// `changesptoring` (0..5, default 2).
    pub changesptoring: i64,
    /// `nostopring=1`: local ringback is never stopped by early media.
    pub nostopring: bool,
}

impl Default for EarlyParams {
    fn default() -> Self {
        EarlyParams {
            earlymedia: 2,
            changesptoring: 2,
            nostopring: false,
        }
    }
}

/// Whether and how early media runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EarlyMedia {
    /// The provisional SDP is only kept for the 200 OK.
    Off,
    /// Received audio is played; the microphone is not sent before the answer.
    Receive,
    /// Both directions run before the answer.
    SendReceive,
}

/// What to do on one provisional response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Action {
    /// Show `Ringing` (STATUS, `callRinging`).
    pub ringing: bool,
    /// Local ringback should play from now on.
    pub ringback: bool,
    /// Open early media with the response's SDP (`Off` when it has none).
    pub early: EarlyMedia,
}

impl EarlyParams {
    /// Whether local ringback stops when early RTP arrives.
    pub(crate) fn ringback_stops_on_rtp(&self) -> bool {
        self.changesptoring != 5 && !self.nostopring
    }

    /// The early media an answer SDP in a provisional response opens (before
    /// `changesptoring`).
    fn early_mode(&self) -> EarlyMedia {
        match self.earlymedia {
            0 => EarlyMedia::Off,
            3 | 5 | 6 => EarlyMedia::SendReceive,
            _ => EarlyMedia::Receive,
        }
    }
}

/// The decision for a provisional response `code` (`has_sdp`: it carries an answer), given
/// whether early RTP was seen already on this call.
pub(crate) fn on_provisional(code: u16, has_sdp: bool, p: EarlyParams, rtp_seen: bool) -> Action {
    if !(180..200).contains(&code) {
        return Action {
            ringing: false,
            ringback: false,
            early: EarlyMedia::Off,
        };
    }
    let progress = code == 183;
    // 183: status, ringback and playback per changesptoring (0 nothing, 1 status, 2 status and
    // ringback, 3 playback only, 4 status and playback, 5 status and ringback kept).
    let (ringing, ringback, plays) = if progress {
        match p.changesptoring {
            0 => (false, false, false),
            1 => (true, false, false),
            3 => (false, false, true),
            4 => (true, false, true),
            _ => (true, true, true),
        }
    } else {
        (true, true, true)
    };
    let early = if !has_sdp || !(plays || p.earlymedia == 6) {
        EarlyMedia::Off
    } else {
        p.early_mode()
    };
    let ringback = ringback && !(rtp_seen && p.ringback_stops_on_rtp());
    Action {
        ringing,
        ringback,
        early,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(earlymedia: i64, changesptoring: i64) -> EarlyParams {
        EarlyParams {
            earlymedia,
            changesptoring,
            nostopring: false,
        }
    }

    #[test]
    fn ringing_180_without_sdp_plays_local_ringback_under_every_setting() {
        for em in 0..=6 {
            for sp in 0..=5 {
                let a = on_provisional(180, false, params(em, sp), false);
                assert_eq!(
                    a,
                    Action {
                        ringing: true,
                        ringback: true,
                        early: EarlyMedia::Off
                    },
                    "earlymedia={em} changesptoring={sp}"
                );
            }
        }
    }

    #[test]
    fn trying_and_final_codes_do_nothing() {
        for code in [100, 101, 200, 486] {
            let a = on_provisional(code, true, EarlyParams::default(), false);
            assert!(!a.ringing && !a.ringback && a.early == EarlyMedia::Off);
        }
    }

    #[test]
    fn defaults_183_with_sdp_rings_locally_and_receives_early_media() {
        let a = on_provisional(183, true, EarlyParams::default(), false);
        assert_eq!(
            a,
            Action {
                ringing: true,
                ringback: true,
                early: EarlyMedia::Receive
            }
        );
        // Once early RTP arrived the local ringback is not started again.
        let a = on_provisional(183, true, EarlyParams::default(), true);
        assert!(!a.ringback);
        let a = on_provisional(180, false, EarlyParams::default(), true);
        assert!(!a.ringback && a.ringing);
    }

    #[test]
    fn ringing_180_with_sdp_opens_early_media_like_183() {
        let a = on_provisional(180, true, EarlyParams::default(), false);
        assert_eq!(a.early, EarlyMedia::Receive);
        assert!(a.ringback && a.ringing);
        assert_eq!(
            on_provisional(180, true, params(0, 2), false).early,
            EarlyMedia::Off
        );
    }

    #[test]
    fn changesptoring_each_value_on_183_with_sdp() {
        // (ringing, ringback, early) with earlymedia=2.
        let want = [
            (0, false, false, EarlyMedia::Off),
            (1, true, false, EarlyMedia::Off),
            (2, true, true, EarlyMedia::Receive),
            (3, false, false, EarlyMedia::Receive),
            (4, true, false, EarlyMedia::Receive),
            (5, true, true, EarlyMedia::Receive),
        ];
        for (sp, ringing, ringback, early) in want {
            let a = on_provisional(183, true, params(2, sp), false);
            assert_eq!(
                a,
                Action {
                    ringing,
                    ringback,
                    early
                },
                "changesptoring={sp}"
            );
        }
    }

    #[test]
    fn changesptoring_183_without_sdp_opens_nothing() {
        for sp in 0..=5 {
            let a = on_provisional(183, false, params(6, sp), false);
            assert_eq!(a.early, EarlyMedia::Off, "changesptoring={sp}");
            assert_eq!(a.ringback, sp == 2 || sp == 5, "changesptoring={sp}");
        }
    }

    #[test]
    fn earlymedia_each_value_on_183_with_sdp() {
        let want = [
            (0, EarlyMedia::Off),
            (1, EarlyMedia::Receive),
            (2, EarlyMedia::Receive),
            (3, EarlyMedia::SendReceive),
            (4, EarlyMedia::Receive),
            (5, EarlyMedia::SendReceive),
            (6, EarlyMedia::SendReceive),
        ];
        for (em, early) in want {
            assert_eq!(
                on_provisional(183, true, params(em, 2), false).early,
                early,
                "earlymedia={em}"
            );
        }
    }

    #[test]
    fn earlymedia_6_forces_early_media_where_changesptoring_would_not_play_it() {
        for sp in [0, 1] {
            assert_eq!(
                on_provisional(183, true, params(6, sp), false).early,
                EarlyMedia::SendReceive
            );
            assert_eq!(
                on_provisional(183, true, params(5, sp), false).early,
                EarlyMedia::Off
            );
        }
    }

    #[test]
    fn ringback_survives_early_rtp_with_changesptoring_5_or_nostopring() {
        assert!(params(2, 2).ringback_stops_on_rtp());
        assert!(!params(2, 5).ringback_stops_on_rtp());
        let keep = EarlyParams {
            nostopring: true,
            ..EarlyParams::default()
        };
        assert!(!keep.ringback_stops_on_rtp());
        assert!(on_provisional(183, true, params(2, 5), true).ringback);
        assert!(on_provisional(180, false, keep, true).ringback);
        assert!(!on_provisional(183, true, params(2, 2), true).ringback);
    }
}
