//! A fixed-delay jitter buffer for 8 kHz audio (sans-IO, deterministic).
//!
//! - Packets are kept ordered by extended sequence number (RFC 3550 §A.1 style unwrapping, so
//!   the wrap from 65535 to 0 is seamless).
//! - Playout starts ("fast start") as soon as `target_ms` of audio is buffered, or `target_ms`
//!   after the first packet arrived, whichever is first; there is no long fixed prefill.
//! - One frame is taken per 20 ms tick. A packet missing while later ones are buffered is lost:
//!   it is concealed by repeating the last good audio with a fade to silence over 60 ms. When
//!   the buffer runs empty the frame is concealed too but the play position is *not* advanced,
//!   so a merely late packet still plays (the delay grows by one frame); after
//!   [`UNDERFLOW_RESTART`] empty ticks in a row the buffer goes back to prefilling, which also
//!   absorbs silence suppression and hold.
//! - Late packets (behind the play position) and duplicates are dropped. If more than
//!   `max_ms` is buffered the oldest packets are dropped down to the target (sender clock faster
//!   than ours).
//! - An SSRC change resets the buffer (a new stream, RFC 3550 §8.2). A sequence jump of more
//!   than [`MAX_MISORDER`] backwards is accepted as a restart once two consecutive packets
//!   confirm it (RFC 3550 §A.1 probation); a jump forwards beyond the buffer span moves the play
//!   position instead of concealing the whole gap. Timestamps are not used for playout, so a
//!   timestamp jump (e.g. after the peer's silence suppression) plays on without a glitch.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::{FRAME_SAMPLES, PTIME_MS};

/// A packet this far behind the play position is a possible sender restart (RFC 3550 §A.1).
pub const MAX_MISORDER: i64 = 100;
/// Consecutive empty ticks after which the buffer prefills again.
pub const UNDERFLOW_RESTART: u32 = 5;
/// Frames over which concealment fades to silence.
const FADE_FRAMES: u32 = 3;
/// Largest packet we buffer, in samples (120 ms at 8 kHz); larger payloads are truncated.
const MAX_PACKET_SAMPLES: usize = 960;

/// Jitter buffer tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Playout delay to aim for, in ms. Default 60.
    pub target_ms: u32,
    /// Most audio to hold before dropping the oldest, in ms. Default 200.
    pub max_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            target_ms: 60,
            max_ms: 200,
        }
    }
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Buffered for playout.
    Accepted,
    /// Buffered, and the buffer was reset first (new SSRC or confirmed sequence restart).
    Reset,
    /// Already buffered.
    Duplicate,
    /// Behind the play position.
    Late,
}

/// What a popped frame contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Received audio.
    Audio,
    /// Partly or wholly concealed (repeat with fade, or silence after the fade).
    Concealed,
    /// Nothing to play yet (prefilling or idle).
    Silence,
}

/// Counters kept by the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames with received audio.
    pub played: u64,
    /// Frames concealed (loss or underflow).
    pub concealed: u64,
    /// Packets skipped as lost at playout.
    pub lost: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicate: u64,
    /// Packets dropped because the buffer was over `max_ms`.
    pub overflow_dropped: u64,
    /// Resets (SSRC change, sequence restart).
    pub resets: u64,
}

/// The jitter buffer. See the module documentation.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    ssrc: Option<u32>,
    packets: BTreeMap<i64, Vec<i16>>,
    buffered_samples: usize,
    /// Highest extended sequence number seen (reference for unwrapping).
    highest: Option<i64>,
    /// Next extended sequence number to play, once playout has begun.
    next: Option<i64>,
    started: bool,
    first_arrival: Option<Instant>,
    carry: VecDeque<i16>,
    last_good: Vec<i16>,
    last_packet_len: usize,
    miss_run: u32,
    underflow_run: u32,
    bad_seq: Option<u16>,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(JitterConfig::default())
    }
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> JitterBuffer {
        JitterBuffer {
            cfg,
            ssrc: None,
            packets: BTreeMap::new(),
            buffered_samples: 0,
            highest: None,
            next: None,
            started: false,
            first_arrival: None,
            carry: VecDeque::with_capacity(MAX_PACKET_SAMPLES * 2),
            last_good: vec![0; FRAME_SAMPLES],
            last_packet_len: FRAME_SAMPLES,
            miss_run: FADE_FRAMES,
            underflow_run: 0,
            bad_seq: None,
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Audio currently buffered (not yet played), in ms.
    pub fn buffered_ms(&self) -> u32 {
        let samples = self.buffered_samples + self.carry.len();
        (samples as u64 * 1000 / u64::from(crate::SAMPLE_RATE)) as u32
    }

    /// Whether playout has begun (prefill done).
    pub fn is_playing(&self) -> bool {
        self.started
    }

    fn samples_for_ms(ms: u32) -> usize {
        (u64::from(ms) * u64::from(crate::SAMPLE_RATE) / 1000) as usize
    }

    fn reset(&mut self, ssrc: u32) {
        self.ssrc = Some(ssrc);
        self.packets.clear();
        self.buffered_samples = 0;
        self.highest = None;
        self.next = None;
        self.started = false;
        self.first_arrival = None;
        self.carry.clear();
        self.underflow_run = 0;
        self.bad_seq = None;
        self.stats.resets += 1;
    }

    /// Offer a decoded packet (`samples` at 8 kHz) that arrived at `now`.
    pub fn push(&mut self, seq: u16, ssrc: u32, samples: &[i16], now: Instant) -> PushOutcome {
        let mut outcome = PushOutcome::Accepted;
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                tracing::debug!(old = ?self.ssrc, new = ssrc, "SSRC changed: jitter buffer reset");
                self.reset(ssrc);
                outcome = PushOutcome::Reset;
            } else {
                self.ssrc = Some(ssrc);
            }
        }
        let ext = match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
        };
        // Sequence restart probation (RFC 3550 §A.1): far behind the play position twice in a
        // row with consecutive numbers means the sender started over.
        if let Some(next) = self.next {
            if ext < next - MAX_MISORDER {
                if self.bad_seq == Some(seq) {
                    tracing::debug!(seq, "sequence restart confirmed: jitter buffer reset");
                    self.reset(ssrc);
                    return self.insert(i64::from(seq), samples, now, PushOutcome::Reset);
                }
                self.bad_seq = Some(seq.wrapping_add(1));
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            if ext < next {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
        }
        self.bad_seq = None;
        if self.packets.contains_key(&ext) {
            self.stats.duplicate += 1;
            return PushOutcome::Duplicate;
        }
        self.insert(ext, samples, now, outcome)
    }

    fn insert(
        &mut self,
        ext: i64,
        samples: &[i16],
        now: Instant,
        outcome: PushOutcome,
    ) -> PushOutcome {
        let samples = &samples[..samples.len().min(MAX_PACKET_SAMPLES)];
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.first_arrival.get_or_insert(now);
        self.buffered_samples += samples.len();
        self.packets.insert(ext, samples.to_vec());
        // Sender faster than us, or a burst after a stall: trim to the target.
        let max = Self::samples_for_ms(self.cfg.max_ms);
        if self.buffered_samples > max {
            let target = Self::samples_for_ms(self.cfg.target_ms);
            while self.buffered_samples > target {
                let Some((k, v)) = self.packets.pop_first() else {
                    break;
                };
                self.buffered_samples -= v.len();
                self.stats.overflow_dropped += 1;
                self.next = Some(k + 1);
            }
        }
        outcome
    }

    /// Take the next frame (normally 160 samples) for playout at `now`.
    pub fn pop(&mut self, now: Instant, out: &mut [i16]) -> FrameKind {
        let want = out.len();
        if !self.started {
            let Some(first) = self.first_arrival else {
                return self.silence(out);
            };
            let enough = self.buffered_samples >= Self::samples_for_ms(self.cfg.target_ms);
            let waited = now.saturating_duration_since(first)
                >= Duration::from_millis(u64::from(self.cfg.target_ms));
            if self.packets.is_empty() || !(enough || waited) {
                return self.silence(out);
            }
            self.started = true;
            self.underflow_run = 0;
            // Start at the oldest buffered packet (skipping any gap left from before).
            self.next = self.packets.keys().next().copied();
        }

        let mut concealed = false;
        while self.carry.len() < want {
            let Some(next) = self.next else { break };
            if let Some(pkt) = self.packets.remove(&next) {
                self.buffered_samples -= pkt.len();
                self.last_packet_len = pkt.len().max(1);
                self.carry.extend(pkt);
                self.next = Some(next + 1);
                self.miss_run = 0;
                continue;
            }
            let Some(&oldest) = self.packets.keys().next() else {
                break; // underflow: keep the position, the packet may still come
            };
            let max_gap = i64::from(self.cfg.max_ms / PTIME_MS).max(1);
            if oldest - next > max_gap {
                // Forward sequence jump: resynchronise instead of concealing the whole gap.
                tracing::debug!(gap = oldest - next, "sequence jump: skipping ahead");
                self.next = Some(oldest);
                continue;
            }
            // Lost: conceal one packet's worth and move on.
            self.stats.lost += 1;
            let len = self.last_packet_len;
            self.conceal_into_carry(len);
            concealed = true;
            self.next = Some(next + 1);
        }

        if self.carry.len() < want {
            // Underflow: play what is left and conceal the rest.
            self.underflow_run += 1;
            let missing = want - self.carry.len();
            self.conceal_into_carry(missing);
            concealed = true;
            if self.underflow_run >= UNDERFLOW_RESTART {
                tracing::debug!("jitter buffer ran dry: prefilling again");
                self.started = false;
                self.first_arrival = None;
            }
        } else {
            self.underflow_run = 0;
        }
        for (o, s) in out.iter_mut().zip(self.carry.drain(..want)) {
            *o = s;
        }
        if concealed {
            self.stats.concealed += 1;
            FrameKind::Concealed
        } else {
            self.last_good.clear();
            self.last_good.extend_from_slice(out);
            self.stats.played += 1;
            FrameKind::Audio
        }
    }

    fn silence(&mut self, out: &mut [i16]) -> FrameKind {
        out.fill(0);
        FrameKind::Silence
    }

    /// Append `len` samples of concealment: the last good frame repeated with a linear fade
    /// that reaches silence after [`FADE_FRAMES`] frames.
    fn conceal_into_carry(&mut self, len: usize) {
        let frame = self.last_good.len().max(1);
        let total = (FADE_FRAMES as usize * frame) as f32;
        let done = (self.miss_run as usize * frame) as f32;
        for i in 0..len {
            let pos = done + i as f32;
            let gain = (1.0 - pos / total).max(0.0);
            let s = self.last_good.get(i % frame).copied().unwrap_or(0);
            self.carry.push_back((f32::from(s) * gain) as i16);
        }
        let frames = len.div_ceil(frame) as u32;
        self.miss_run = self.miss_run.saturating_add(frames).min(FADE_FRAMES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0xABCD;

    /// A frame whose samples all equal `v`, so the output tells which packet played.
    fn frame(v: i16) -> Vec<i16> {
        vec![v; FRAME_SAMPLES]
    }

    struct Clock {
        t0: Instant,
        ms: u64,
    }
    impl Clock {
        fn new() -> Clock {
            Clock {
                t0: Instant::now(),
                ms: 0,
            }
        }
        fn at(&self) -> Instant {
            self.t0 + Duration::from_millis(self.ms)
        }
        fn advance(&mut self, ms: u64) -> Instant {
            self.ms += ms;
            self.at()
        }
    }

    fn pop_value(jb: &mut JitterBuffer, now: Instant) -> (FrameKind, i16) {
        let mut out = [0i16; FRAME_SAMPLES];
        let k = jb.pop(now, &mut out);
        (k, out[0])
    }

    #[test]
    fn in_order_stream_starts_after_target_and_plays_every_packet_once() {
        let mut jb = JitterBuffer::default();
        let mut clk = Clock::new();
        let mut played = Vec::new();
        for i in 0..20u16 {
            jb.push(1000 + i, SSRC, &frame(i as i16 + 1), clk.at());
            let (k, v) = pop_value(&mut jb, clk.at());
            if k == FrameKind::Audio {
                played.push(v);
            }
            clk.advance(20);
        }
        // Playout began once 60 ms (3 packets) were buffered.
        assert_eq!(played.first(), Some(&1));
        assert_eq!(played, (1..=18).collect::<Vec<i16>>());
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.buffered_ms(), 40);
    }

    #[test]
    fn reordered_packets_play_in_sequence_order() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in [5u16, 3, 4, 7, 6, 8] {
            assert_eq!(
                jb.push(seq, SSRC, &frame(seq as i16), clk.at()),
                PushOutcome::Accepted
            );
        }
        let vals: Vec<i16> = (0..6).map(|_| pop_value(&mut jb, clk.at()).1).collect();
        assert_eq!(vals, vec![3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in 10u16..14 {
            jb.push(seq, SSRC, &frame(seq as i16), clk.at());
        }
        assert_eq!(
            jb.push(12, SSRC, &frame(99), clk.at()),
            PushOutcome::Duplicate
        );
        assert_eq!(pop_value(&mut jb, clk.at()).1, 10);
        assert_eq!(pop_value(&mut jb, clk.at()).1, 11);
        assert_eq!(jb.push(10, SSRC, &frame(99), clk.at()), PushOutcome::Late);
        assert_eq!(pop_value(&mut jb, clk.at()).1, 12);
        let s = jb.stats();
        assert_eq!((s.duplicate, s.late), (1, 1));
    }

    #[test]
    fn lost_packet_is_concealed_by_fading_repeat_and_counted() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in [1u16, 2, 3, 5, 6] {
            jb.push(seq, SSRC, &frame(1000), clk.at());
        }
        let mut out = [0i16; FRAME_SAMPLES];
        for _ in 0..3 {
            assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Audio);
        }
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Concealed);
        // Repeat of the last frame, fading: starts near full level, ends lower.
        assert!(out[0] > 900 && out[FRAME_SAMPLES - 1] < out[0]);
        assert!(out[FRAME_SAMPLES - 1] > 0);
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Audio);
        assert_eq!(out[0], 1000);
        assert_eq!(jb.stats().lost, 1);
        assert_eq!(jb.stats().concealed, 1);
    }

    #[test]
    fn long_loss_fades_to_silence() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in [1u16, 2, 3, 9] {
            jb.push(seq, SSRC, &frame(1000), clk.at());
        }
        let mut out = [0i16; FRAME_SAMPLES];
        for _ in 0..3 {
            jb.pop(clk.at(), &mut out);
        }
        for _ in 0..3 {
            assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Concealed);
        }
        // After FADE_FRAMES concealed frames: silence.
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Concealed);
        assert!(out.iter().all(|&s| s == 0));
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Concealed);
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Audio);
        assert_eq!(jb.stats().lost, 5);
    }

    #[test]
    fn sequence_wrap_at_65535_keeps_order() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in [65534u16, 0, 65535, 1, 2] {
            jb.push(seq, SSRC, &frame(seq.wrapping_add(10) as i16), clk.at());
        }
        let vals: Vec<i16> = (0..5).map(|_| pop_value(&mut jb, clk.at()).1).collect();
        // 65534+10 wraps to 8 as u16; 65535+10 -> 9; then 10, 11, 12.
        assert_eq!(vals, vec![8, 9, 10, 11, 12]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn ssrc_change_resets_and_plays_the_new_stream() {
        let mut jb = JitterBuffer::default();
        let mut clk = Clock::new();
        for seq in 100u16..104 {
            jb.push(seq, SSRC, &frame(1), clk.at());
        }
        assert_eq!(pop_value(&mut jb, clk.at()).1, 1);
        // New stream with a lower sequence number: not "late", a reset.
        assert_eq!(
            jb.push(7, 0x9999, &frame(2), clk.advance(20)),
            PushOutcome::Reset
        );
        jb.push(8, 0x9999, &frame(2), clk.at());
        jb.push(9, 0x9999, &frame(2), clk.at());
        assert_eq!(pop_value(&mut jb, clk.at()), (FrameKind::Audio, 2));
        assert_eq!(jb.stats().resets, 1);
    }

    #[test]
    fn sequence_restart_is_accepted_after_two_consecutive_packets() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in 30000u16..30004 {
            jb.push(seq, SSRC, &frame(1), clk.at());
        }
        pop_value(&mut jb, clk.at());
        assert_eq!(jb.push(5, SSRC, &frame(2), clk.at()), PushOutcome::Late);
        assert_eq!(jb.push(6, SSRC, &frame(2), clk.at()), PushOutcome::Reset);
        jb.push(7, SSRC, &frame(2), clk.at());
        jb.push(8, SSRC, &frame(2), clk.at());
        assert_eq!(pop_value(&mut jb, clk.at()), (FrameKind::Audio, 2));
    }

    #[test]
    fn underflow_keeps_position_so_a_late_packet_still_plays() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in 1u16..=3 {
            jb.push(seq, SSRC, &frame(seq as i16), clk.at());
        }
        for _ in 0..3 {
            pop_value(&mut jb, clk.at());
        }
        assert_eq!(pop_value(&mut jb, clk.at()).0, FrameKind::Concealed);
        assert_eq!(jb.push(4, SSRC, &frame(4), clk.at()), PushOutcome::Accepted);
        assert_eq!(pop_value(&mut jb, clk.at()), (FrameKind::Audio, 4));
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn long_silence_from_the_sender_refills_before_playing_again() {
        let mut jb = JitterBuffer::default();
        let mut clk = Clock::new();
        for seq in 1u16..=3 {
            jb.push(seq, SSRC, &frame(1), clk.at());
        }
        for _ in 0..3 {
            pop_value(&mut jb, clk.at());
        }
        for _ in 0..10 {
            pop_value(&mut jb, clk.advance(20));
        }
        assert!(!jb.is_playing());
        // Sender resumes (DTX end): prefills again instead of playing one packet and starving.
        jb.push(4, SSRC, &frame(4), clk.advance(20));
        assert_eq!(pop_value(&mut jb, clk.at()).0, FrameKind::Silence);
        jb.push(5, SSRC, &frame(5), clk.advance(20));
        jb.push(6, SSRC, &frame(6), clk.at());
        assert_eq!(pop_value(&mut jb, clk.at()), (FrameKind::Audio, 4));
    }

    #[test]
    fn overflow_drops_oldest_down_to_target() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in 0u16..20 {
            jb.push(seq, SSRC, &frame(seq as i16), clk.at());
        }
        assert!(jb.buffered_ms() <= 200);
        assert!(jb.stats().overflow_dropped > 0);
        let (k, v) = pop_value(&mut jb, clk.at());
        assert_eq!(k, FrameKind::Audio);
        assert!(v >= 10, "played {v}");
    }

    #[test]
    fn forward_sequence_jump_resynchronises_without_long_concealment() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in [1u16, 2, 3, 5000, 5001] {
            jb.push(seq, SSRC, &frame(seq as i16), clk.at());
        }
        for _ in 0..3 {
            pop_value(&mut jb, clk.at());
        }
        assert_eq!(pop_value(&mut jb, clk.at()), (FrameKind::Audio, 5000));
    }

    #[test]
    fn packets_of_30_ms_are_played_as_20_ms_frames() {
        let mut jb = JitterBuffer::default();
        let clk = Clock::new();
        for seq in 0u16..4 {
            jb.push(seq, SSRC, &vec![seq as i16 + 1; 240], clk.at());
        }
        let mut out = [0i16; FRAME_SAMPLES];
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Audio);
        assert!(out.iter().all(|&s| s == 1));
        assert_eq!(jb.pop(clk.at(), &mut out), FrameKind::Audio);
        assert_eq!((out[0], out[79], out[80], out[159]), (1, 1, 2, 2));
    }

    #[test]
    fn nothing_received_gives_silence() {
        let mut jb = JitterBuffer::default();
        let mut out = [7i16; FRAME_SAMPLES];
        assert_eq!(jb.pop(Instant::now(), &mut out), FrameKind::Silence);
        assert!(out.iter().all(|&s| s == 0));
    }
}
