//! Pure helpers for the session rules of the policy: the SDP answer we give on our own when
//! the engine does not answer a re-offer in time (RFC 3264 §6.1, §8), the glare back-off of
//! RFC 3261 §14.1 and the session-timer arithmetic of RFC 4028. No I/O, no clocks.

use std::time::Duration;

/// Media direction of an SDP (RFC 3264 §5.1, §6.1): what the *author* of the SDP does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dir {
    pub send: bool,
    pub recv: bool,
}

impl Dir {
    fn attribute(self) -> &'static str {
        match (self.send, self.recv) {
            (true, true) => "sendrecv",
            (true, false) => "sendonly",
            (false, true) => "recvonly",
            (false, false) => "inactive",
        }
    }
}

fn direction_of(attr: &str) -> Option<Dir> {
    let (send, recv) = match attr.trim() {
        "a=sendrecv" => (true, true),
        "a=sendonly" => (true, false),
        "a=recvonly" => (false, true),
        "a=inactive" => (false, false),
        _ => return None,
    };
    Some(Dir { send, recv })
}

/// The direction of the first audio stream of `sdp` (media-level attribute, else the
/// session-level one, else `sendrecv`; RFC 4566 §6).
pub(crate) fn sdp_direction(sdp: &str) -> Dir {
    let mut session = None;
    let mut media = None;
    let mut in_media = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            if in_media {
                break;
            }
            in_media = true;
            continue;
        }
        if let Some(d) = direction_of(line) {
            if in_media {
                media.get_or_insert(d);
            } else {
                session.get_or_insert(d);
            }
        }
    }
    media.or(session).unwrap_or(Dir {
        send: true,
        recv: true,
    })
}

/// The answer we send on our own to a re-offer the engine did not answer in time: our
/// last SDP (`local`) with every stream's direction set to what RFC 3264 §6.1 allows
/// between the direction we want (`ours`: the one of our last own offer, `sendrecv` unless
/// we put the call on hold) and the offer's (the far end putting us on hold with
/// `sendonly` gets `recvonly`, `inactive` gets `inactive`, a resume with `sendrecv` gets
/// `ours`), and the `o=` version incremented when the text changes (RFC 3264 §8).
pub(crate) fn fallback_answer(local: &str, ours: Dir, offer: &str) -> String {
    let theirs = sdp_direction(offer);
    let dir = Dir {
        send: ours.send && theirs.recv,
        recv: ours.recv && theirs.send,
    };
    let eol = if local.contains("\r\n") { "\r\n" } else { "\n" };
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    for line in local.lines() {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if direction_of(line).is_some() {
            continue;
        }
        if let Some(last) = sections.last_mut() {
            last.push(line.to_string());
        }
    }
    let mut out = Vec::new();
    for (i, sec) in sections.into_iter().enumerate() {
        let is_media = i > 0;
        out.extend(sec);
        if is_media {
            out.push(format!("a={}", dir.attribute()));
        }
    }
    let mut text: String = out.iter().map(|l| format!("{l}{eol}")).collect();
    if text != local {
        text = bump_version(&text, eol);
    }
    text
}

/// Increment the `sess-version` of the `o=` line (RFC 4566 §5.2, RFC 3264 §8).
fn bump_version(sdp: &str, eol: &str) -> String {
    sdp.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("o=") {
                let mut f: Vec<String> = rest.split(' ').map(String::from).collect();
                if let Some(v) = f.get_mut(2) {
                    if let Ok(n) = v.parse::<u64>() {
                        *v = n.saturating_add(1).to_string();
                    }
                }
                format!("o={}{eol}", f.join(" "))
            } else {
                format!("{l}{eol}")
            }
        })
        .collect()
}

/// How long to wait before re-sending a re-INVITE/UPDATE that got 491 Request Pending
/// (RFC 3261 §14.1): the owner of the Call-ID (the caller of the initial INVITE) waits
/// 2.1-4 s, the other side 0-2 s, both in units of 10 ms. `random` is any random number.
pub(crate) fn glare_backoff(call_id_owner: bool, random: u32) -> Duration {
    // RFC 3261 §14.1, in units of 10 ms: the Call-ID's owner 2.1..=4 s (191 values), the
    // other side 0..=2 s (201 values).
    if call_id_owner {
        Duration::from_millis(2100 + u64::from(random % 191) * 10)
    } else {
        Duration::from_millis(u64::from(random % 201) * 10)
    }
}

/// A tiny xorshift generator: the policy's source of randomness, seedable in tests.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
}

/// Session interval we ask for (RFC 4028 §4 recommends 1800 s).
pub(crate) const DEFAULT_SESSION_EXPIRES: u32 = 1800;
/// The smallest session interval we accept (RFC 4028 §4: at least 90 s).
pub(crate) const MIN_SE: u32 = 90;

/// Who refreshes the session (RFC 4028 §4 `refresher` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refresher {
    Uac,
    Uas,
}

/// A `Session-Expires` value (RFC 4028 §4): `delta-seconds *(;se-params)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionExpires {
    pub secs: u32,
    pub refresher: Option<Refresher>,
}

pub(crate) fn parse_session_expires(v: &str) -> Option<SessionExpires> {
    let mut parts = v.split(';');
    let secs = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some(SessionExpires { secs, refresher })
}

/// The refresher refreshes halfway through the interval (RFC 4028 §10).
pub(crate) fn refresh_after(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs.max(2) / 2))
}

/// The other side ends the session when no refresh came by the interval minus
/// min(32 s, a third of it) (RFC 4028 §10).
pub(crate) fn expire_after(secs: u32) -> Duration {
    let s = u64::from(secs);
    Duration::from_secs(s - (s / 3).min(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

    const SENDRECV: Dir = Dir {
        send: true,
        recv: true,
    };

    #[test]
    fn far_end_hold_with_sendonly_gets_recvonly() {
        let offer = "v=0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n";
        let a = fallback_answer(LOCAL, SENDRECV, offer);
        assert!(a.contains("a=recvonly\r\n"), "{a}");
        assert!(!a.contains("a=sendrecv"));
        assert!(a.contains("o=a 1 2 IN IP4"), "version bumped: {a}");
        assert_eq!(
            sdp_direction(&a),
            Dir {
                send: false,
                recv: true
            }
        );
    }

    #[test]
    fn inactive_offer_gets_inactive_and_resume_gets_sendrecv_back() {
        let a = fallback_answer(
            LOCAL,
            SENDRECV,
            "v=0\r\nm=audio 5000 RTP/AVP 0\r\na=inactive\r\n",
        );
        assert!(a.contains("a=inactive"));
        let b = fallback_answer(LOCAL, SENDRECV, "v=0\r\nm=audio 5000 RTP/AVP 0\r\n");
        assert_eq!(b, LOCAL, "unchanged SDP keeps its version");
        // After answering a hold with recvonly, the resume goes back to sendrecv.
        let held = fallback_answer(
            LOCAL,
            SENDRECV,
            "v=0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n",
        );
        let resumed = fallback_answer(
            &held,
            SENDRECV,
            "v=0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n",
        );
        assert!(
            resumed.contains("a=sendrecv") && resumed.contains("o=a 1 3 "),
            "{resumed}"
        );
        // We hold (our last offer was sendonly): a sendrecv offer is answered sendonly.
        let ours = Dir {
            send: true,
            recv: false,
        };
        let c = fallback_answer(LOCAL, ours, "v=0\r\nm=audio 5000 RTP/AVP 0\r\n");
        assert!(c.contains("a=sendonly"), "{c}");
    }

    #[test]
    fn session_level_direction_counts() {
        let offer = "v=0\r\na=sendonly\r\nm=audio 5000 RTP/AVP 0\r\n";
        assert_eq!(
            sdp_direction(offer),
            Dir {
                send: true,
                recv: false
            }
        );
    }

    #[test]
    fn session_expires_values_parse() {
        assert_eq!(
            parse_session_expires("1800;refresher=uac"),
            Some(SessionExpires {
                secs: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            parse_session_expires(" 90 ; Refresher = UAS"),
            Some(SessionExpires {
                secs: 90,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(
            parse_session_expires("600").map(|s| s.refresher),
            Some(None)
        );
        assert_eq!(parse_session_expires("soon"), None);
        assert_eq!(refresh_after(1800), Duration::from_secs(900));
        assert_eq!(expire_after(1800), Duration::from_secs(1768));
        assert_eq!(expire_after(90), Duration::from_secs(60));
    }

    #[test]
    fn glare_backoff_ranges_follow_rfc3261_14_1() {
        let mut rng = Rng::new(42);
        for _ in 0..500 {
            let owner = glare_backoff(true, rng.next_u32());
            assert!(owner >= Duration::from_millis(2100) && owner <= Duration::from_millis(4000));
            assert_eq!(owner.as_millis() % 10, 0);
            let other = glare_backoff(false, rng.next_u32());
            assert!(other <= Duration::from_millis(2000));
            assert_eq!(other.as_millis() % 10, 0);
        }
        // Both ends of each range are reachable.
        assert_eq!(glare_backoff(true, 0), Duration::from_millis(2100));
        assert_eq!(glare_backoff(true, 190), Duration::from_millis(4000));
        assert_eq!(glare_backoff(false, 0), Duration::ZERO);
        assert_eq!(glare_backoff(false, 200), Duration::from_millis(2000));
    }
}
