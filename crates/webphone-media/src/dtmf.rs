//! RFC 4733 telephone-events (DTMF) as RTP payload: generation and parsing.
//!
//! Sending (RFC 4733 §2.5.1): each digit becomes one event. Every 20 ms tick during the tone
//! carries an update packet with the *same* RTP timestamp (the event start), a growing duration
//! and the marker bit on the first packet (§2.5.1.2 and §2.5.1.3). The final packet has the E bit
//! and the full duration and is sent three times (§2.5.1.4). Audio is not sent while an event
//! is in progress (§2.5.1.1 notes that the audio and event streams share the timestamp clock).
//! After an event a short gap of normal audio separates digits; a space or `,` in the digit
//! string is a longer pause.
//!
//! Timestamps and durations are in the RTP clock of the audio codec (RFC 4733 §2.1 and §7.1.1:
//! the event clock equals the codec clock): 8000 Hz for G.711 and G.722, 48000 Hz for Opus.
//! [`DtmfSender::tick`] is told how many clock units one tick spans.

use std::collections::VecDeque;

use crate::{FRAME_SAMPLES, PTIME_MS};

/// Largest event duration one packet can carry (16 bits, RFC 4733 §2.3).
const MAX_DURATION: u32 = u16::MAX as u32;

/// Payload length of one telephone-event (RFC 4733 §2.3).
pub const EVENT_PAYLOAD_LEN: usize = 4;

/// The event code of a DTMF character (RFC 4733 §3.2 table 7): `0-9`, `*` = 10, `#` = 11,
/// `A-D` = 12-15 (case-insensitive).
pub fn digit_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF character of an event code (`16`, flash, has none).
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code.
    pub event: u8,
    /// E bit: this is the end of the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Serialise to the 4-byte wire format.
    pub fn encode(&self) -> [u8; EVENT_PAYLOAD_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// Parse the first 4 bytes of a payload (further events in the same packet are ignored).
    pub fn decode(data: &[u8]) -> Option<EventPayload> {
        let [event, flags, d0, d1, ..] = *data else {
            return None;
        };
        Some(EventPayload {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// Timing of generated DTMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfConfig {
    /// Tone length per digit in ms (rounded to 20 ms ticks, at least 40 ms, at most what a
    /// 16-bit duration holds at the codec clock: 5 s at 8 kHz, 1.36 s at 48 kHz). Default 100.
    pub tone_ms: u32,
    /// Audio gap between two digits in ms. Default 60.
    pub gap_ms: u32,
    /// Pause for a space or `,` in the digit string, in ms. Default 500.
    pub pause_ms: u32,
    /// Volume in -dBm0. Default 10.
    pub volume: u8,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        DtmfConfig {
            tone_ms: 100,
            gap_ms: 60,
            pause_ms: 500,
            volume: 10,
        }
    }
}

/// One packet the sender wants to go out on this tick instead of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The RTP timestamp (the event's start, the same for all its packets).
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of an event.
    pub marker: bool,
    /// The payload.
    pub payload: EventPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Digit(u8),
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Tone {
        event: u8,
        start_ts: u32,
        updates_sent: u32,
        ends_sent: u32,
    },
    Gap {
        ticks_left: u32,
    },
}

/// Number of times the final packet is sent (RFC 4733 §2.5.1.4).
const END_REPEATS: u32 = 3;
/// Longest tone we generate, so that the 16-bit duration cannot overflow.
const MAX_TONE_MS: u32 = 5000;

/// Sans-IO generator of RFC 4733 event packets, driven by the 20 ms media tick.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    cfg: DtmfConfig,
    queue: VecDeque<Item>,
    state: State,
}

impl DtmfSender {
    /// A sender with the given timing.
    pub fn new(cfg: DtmfConfig) -> DtmfSender {
        DtmfSender {
            cfg,
            queue: VecDeque::new(),
            state: State::Idle,
        }
    }

    /// Queue digits: `0-9 * # A-D` (case-insensitive); a space or `,` is a pause; anything else
    /// is skipped with a warning. Returns how many digits were queued.
    pub fn queue(&mut self, digits: &str) -> usize {
        let mut n = 0;
        for c in digits.chars() {
            if c == ' ' || c == ',' {
                self.queue.push_back(Item::Pause);
            } else if let Some(e) = digit_to_event(c) {
                self.queue.push_back(Item::Digit(e));
                n += 1;
            } else {
                tracing::warn!(character = ?c, "skipping invalid DTMF character");
            }
        }
        n
    }

    /// Whether an event is in progress or digits are waiting.
    pub fn is_busy(&self) -> bool {
        self.state != State::Idle || !self.queue.is_empty()
    }

    /// Forget queued digits (the current event, if any, is still ended properly).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    fn ticks(ms: u32) -> u32 {
        ms.div_ceil(PTIME_MS)
    }

    /// Advance one 20 ms tick at 8 kHz (G.711/G.722 clock); see [`DtmfSender::tick_units`].
    pub fn tick(&mut self, now_ts: u32) -> Option<EventPacket> {
        self.tick_units(now_ts, FRAME_SAMPLES as u32)
    }

    /// Advance one 20 ms tick. `now_ts` is the RTP timestamp this tick's audio frame would
    /// carry and `frame` the timestamp units one tick spans in the codec clock
    /// ([`crate::Codec::timestamp_step`]: 160 at 8 kHz, 960 for Opus). Returns the event packet
    /// to send instead of audio, or `None` to send audio.
    pub fn tick_units(&mut self, now_ts: u32, frame: u32) -> Option<EventPacket> {
        let frame = frame.max(1);
        let max_ticks = (MAX_DURATION / frame).max(2);
        let tone_ticks = Self::ticks(self.cfg.tone_ms.clamp(40, MAX_TONE_MS)).min(max_ticks);
        // Bounded: each pass either returns or moves Idle -> Tone/Gap, Gap(0) -> Idle once.
        for _ in 0..4 {
            match self.state {
                State::Idle => match self.queue.pop_front() {
                    Some(Item::Digit(event)) => {
                        self.state = State::Tone {
                            event,
                            start_ts: now_ts,
                            updates_sent: 0,
                            ends_sent: 0,
                        };
                    }
                    Some(Item::Pause) => {
                        self.state = State::Gap {
                            ticks_left: Self::ticks(self.cfg.pause_ms),
                        };
                    }
                    None => return None,
                },
                State::Tone {
                    event,
                    start_ts,
                    updates_sent,
                    ends_sent,
                } => {
                    let (end, duration, next) = if updates_sent + 1 < tone_ticks {
                        let sent = updates_sent + 1;
                        (
                            false,
                            sent * frame,
                            State::Tone {
                                event,
                                start_ts,
                                updates_sent: sent,
                                ends_sent,
                            },
                        )
                    } else {
                        let ends = ends_sent + 1;
                        let next = if ends >= END_REPEATS {
                            State::Gap {
                                ticks_left: Self::ticks(self.cfg.gap_ms),
                            }
                        } else {
                            State::Tone {
                                event,
                                start_ts,
                                updates_sent,
                                ends_sent: ends,
                            }
                        };
                        (true, tone_ticks * frame, next)
                    };
                    let marker = updates_sent == 0 && ends_sent == 0;
                    self.state = next;
                    return Some(EventPacket {
                        timestamp: start_ts,
                        marker,
                        payload: EventPayload {
                            event,
                            end,
                            volume: self.cfg.volume.min(63),
                            duration: u16::try_from(duration).unwrap_or(u16::MAX),
                        },
                    });
                }
                State::Gap { ticks_left } => {
                    if ticks_left == 0 {
                        self.state = State::Idle;
                    } else {
                        self.state = State::Gap {
                            ticks_left: ticks_left - 1,
                        };
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// Turns received event packets into digits, one per event (RFC 4733 §2.5.2: packets of one
/// event share the RTP timestamp; retransmitted and end packets are not new events).
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    last_event_ts: Option<(u32, u32)>,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// Feed one event packet; returns the digit when it starts a new event.
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = EventPayload::decode(payload)?;
        if self.last_event_ts == Some((ssrc, timestamp)) {
            return None;
        }
        self.last_event_ts = Some((ssrc, timestamp));
        event_to_digit(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sender: &mut DtmfSender, ticks: u32) -> Vec<Option<EventPacket>> {
        (0..ticks).map(|i| sender.tick(1000 + i * 160)).collect()
    }

    #[test]
    fn digit_mapping_covers_rfc4733_table() {
        let all = "0123456789*#ABCD";
        for (i, c) in all.chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(c));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn payload_round_trips_and_sets_e_bit() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        let b = p.encode();
        assert_eq!(b, [11, 0x8A, 0x03, 0x20]);
        assert_eq!(EventPayload::decode(&b), Some(p));
        assert_eq!(EventPayload::decode(&b[..3]), None);
    }

    #[test]
    fn one_digit_gives_updates_with_growing_duration_then_three_end_packets() {
        let mut s = DtmfSender::new(DtmfConfig::default());
        assert_eq!(s.queue("5"), 1);
        let out = run(&mut s, 12);
        let pkts: Vec<EventPacket> = out.iter().take(7).map(|p| p.unwrap()).collect();
        // All carry the event start timestamp.
        assert!(pkts.iter().all(|p| p.timestamp == 1000));
        assert!(pkts
            .iter()
            .all(|p| p.payload.event == 5 && p.payload.volume == 10));
        assert!(pkts[0].marker);
        assert!(pkts[1..].iter().all(|p| !p.marker));
        let durations: Vec<u16> = pkts.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pkts.iter().map(|p| p.payload.end).collect();
        assert_eq!(ends, vec![false, false, false, false, true, true, true]);
        // Tone at least 80 ms.
        assert!(pkts[6].payload.duration >= 640);
        // Afterwards audio again.
        assert!(out[7..].iter().all(Option::is_none));
        assert!(!s.is_busy());
    }

    #[test]
    fn two_digits_are_separated_by_an_audio_gap_and_have_distinct_timestamps() {
        let mut s = DtmfSender::new(DtmfConfig::default());
        s.queue("1#");
        let out = run(&mut s, 20);
        // 7 event ticks, 3 gap ticks (60 ms), then the next digit.
        assert!(out[..7].iter().all(Option::is_some));
        assert!(out[7..10].iter().all(Option::is_none));
        let second = out[10].unwrap();
        assert_eq!(second.payload.event, 11);
        assert!(second.marker);
        assert_eq!(second.timestamp, 1000 + 10 * 160);
    }

    #[test]
    fn comma_and_space_insert_pauses_and_invalid_characters_are_skipped() {
        let mut s = DtmfSender::new(DtmfConfig::default());
        assert_eq!(s.queue("1,x 2"), 2);
        let out = run(&mut s, 80);
        let starts: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some_and(|p| p.marker))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts.len(), 2);
        // gap 3 ticks + two pauses of 25 ticks each.
        assert_eq!(starts[1] - starts[0], 7 + 3 + 25 + 25);
    }

    #[test]
    fn receiver_reports_each_event_once() {
        let mut s = DtmfSender::new(DtmfConfig::default());
        s.queue("47");
        let mut r = DtmfReceiver::new();
        let mut got = String::new();
        for p in run(&mut s, 30).into_iter().flatten() {
            if let Some(d) = r.on_packet(1, p.timestamp, &p.payload.encode()) {
                got.push(d);
            }
        }
        assert_eq!(got, "47");
    }
}
