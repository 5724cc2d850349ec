//! An adaptive jitter buffer (sans-IO, deterministic: time is passed in).
//!
//! The buffer holds *encoded* packets and decodes them at playout, in sequence order, through
//! a [`PlayoutDecoder`]. Decoding in order keeps stateful decoders (Opus, G.722 ADPCM) right
//! and lets a lost packet be rebuilt from the next packet's in-band FEC (Opus LBRR, RFC 7587
//! §3.3) or concealed by the codec's own loss concealment (RFC 6716 §4.4).
//!
//! Units: packet durations come in RTP timestamp units of the packet's clock (8000 Hz for
//! G.711/G.722, 48000 Hz for Opus) and are kept in microseconds, so nothing assumes 8 kHz;
//! PCM comes out at the decoder's output rate ([`PlayoutDecoder::output_rate`]). Packets of
//! any length up to 120 ms (RFC 6716 §2.1.4) are played as frames of the caller's size.
//!
//! - Order: packets are kept by extended sequence number (RFC 3550 §A.1 unwrapping).
//! - Fast start: playout begins as soon as the target delay is buffered, or a target's worth
//!   of time after the first packet arrived, whichever is first.
//! - Loss: a packet missing while later ones are buffered is lost. It is rebuilt from the next
//!   packet's FEC if the decoder can ([`PlayoutDecoder::recover`]), else concealed by the codec
//!   ([`PlayoutDecoder::conceal`]), else by repeating the last good audio with a fade to silence
//!   over 60 ms.
//! - Underflow: when the buffer runs empty the frame is concealed but the play position is
//!   *not* advanced, so a merely late packet still plays (the delay grows by one frame); after
//!   [`UNDERFLOW_RESTART`] empty ticks in a row the buffer prefills again (silence suppression,
//!   DTX, hold).
//! - Adaptive delay: the interarrival jitter `J` is estimated as in RFC 3550 §A.8 (in µs, from
//!   arrival times and RTP timestamps). The target delay is
//!   `clamp(frame + JITTER_FACTOR · J, min_ms, max_ms)`; it rises at once when the jitter grows
//!   and decays slowly (time constant [`TARGET_DECAY_PACKETS`] packets) when it falls. Every
//!   [`CONTROL_WINDOW`] frames the average buffered delay is compared with the target: one frame
//!   is dropped when it is more than half a frame above, one concealment frame is inserted when
//!   it is more than half a frame below. The same control absorbs sender clock drift.
//! - Late packets (behind the play position) and duplicates are dropped; more than
//!   `max_ms` + [`HOLD_MARGIN_MS`] buffered drops the oldest packets down to the target.
//! - An SSRC change resets the buffer (a new stream, RFC 3550 §8.2). A sequence jump of more
//!   than [`MAX_MISORDER`] backwards is accepted as a restart once two consecutive packets
//!   confirm it (RFC 3550 §A.1 probation); a forward jump beyond the buffer span moves the play
//!   position instead of concealing the whole gap. Playout follows sequence numbers, so a
//!   timestamp jump plays on without a glitch (it is also kept out of the jitter estimate).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A packet this far behind the play position is a possible sender restart (RFC 3550 §A.1).
pub const MAX_MISORDER: i64 = 100;
/// Consecutive empty ticks after which the buffer prefills again.
pub const UNDERFLOW_RESTART: u32 = 5;
/// Frames over which the fallback concealment fades to silence.
const FADE_FRAMES: u32 = 3;
/// Longest packet we accept: 120 ms (RFC 6716 §2.1.4).
pub const MAX_PACKET_US: u64 = 120_000;
/// Frames per control decision (0.5 s of 20 ms frames).
pub const CONTROL_WINDOW: u32 = 25;
/// Target = frame + this × interarrival jitter (before clamping).
pub const JITTER_FACTOR: f64 = 3.0;
/// When the jitter falls, the target moves 1/this of the way down per packet (~5 s at 50 pps).
pub const TARGET_DECAY_PACKETS: f64 = 250.0;
/// Buffered audio beyond `max_ms` + this is dropped (oldest first).
pub const HOLD_MARGIN_MS: u32 = 100;
/// Transit changes above this are timestamp jumps, not jitter.
const MAX_TRANSIT_STEP_US: f64 = 1_000_000.0;

/// Jitter buffer tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Initial playout delay (and the fixed one when not adaptive), in ms. Default 60.
    pub target_ms: u32,
    /// Largest target delay in ms. Default 200.
    pub max_ms: u32,
    /// Smallest target delay in ms (adaptive mode). Default 20.
    pub min_ms: u32,
    /// Follow the measured jitter. Default true.
    pub adaptive: bool,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            target_ms: 60,
            max_ms: 200,
            min_ms: 20,
            adaptive: true,
        }
    }
}

impl JitterConfig {
    /// A fixed delay of `target_ms` (no adaptation).
    pub fn fixed(target_ms: u32) -> JitterConfig {
        JitterConfig {
            target_ms,
            adaptive: false,
            ..JitterConfig::default()
        }
    }
}

/// Turns buffered payloads into PCM at playout.
pub trait PlayoutDecoder {
    /// PCM rate of the output in Hz.
    fn output_rate(&self) -> u32;
    /// Append the PCM of one payload of payload type `pt`; `false` if it cannot be decoded.
    fn decode(&mut self, pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool;
    /// Append `samples` samples of the codec's own loss concealment for a stream of payload
    /// type `pt`; `false` (nothing appended) when the codec has none.
    fn conceal(&mut self, pt: u8, samples: usize, out: &mut Vec<i16>) -> bool {
        let _ = (pt, samples, out);
        false
    }
    /// Rebuild a lost packet of `samples` samples from the FEC data in the payload after it
    /// (`next_pt`, `next_payload`); `false` (nothing appended) when not possible.
    fn recover(
        &mut self,
        next_pt: u8,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> bool {
        let _ = (next_pt, next_payload, samples, out);
        false
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
    /// Received audio (including audio rebuilt from FEC).
    Audio,
    /// Partly or wholly concealed (codec concealment, or repeat with fade).
    Concealed,
    /// Nothing to play yet (prefilling or idle).
    Silence,
}

/// Counters kept by the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames with received audio.
    pub played: u64,
    /// Frames concealed (loss, underflow or delay growth).
    pub concealed: u64,
    /// Packets skipped as lost at playout.
    pub lost: u64,
    /// Lost packets rebuilt from the next packet's in-band FEC.
    pub fec_recovered: u64,
    /// Lost packets or gaps concealed by the codec's own concealment.
    pub codec_concealed: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicate: u64,
    /// Packets dropped because the buffer held too much.
    pub overflow_dropped: u64,
    /// Frames dropped to bring the delay down to the target.
    pub frames_dropped: u64,
    /// Concealment frames inserted to bring the delay up to the target.
    pub frames_stretched: u64,
    /// Resets (SSRC change, sequence restart).
    pub resets: u64,
}

/// One buffered packet.
#[derive(Debug, Clone)]
struct Entry {
    pt: u8,
    payload: Vec<u8>,
    duration_us: u64,
    /// Plays as silence of `duration_us` (a telephone-event packet in the audio slot).
    filler: bool,
}

/// The jitter buffer. See the module documentation.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    ssrc: Option<u32>,
    packets: BTreeMap<i64, Entry>,
    buffered_us: u64,
    highest: Option<i64>,
    next: Option<i64>,
    started: bool,
    first_arrival: Option<Instant>,
    /// Decoded PCM not yet played, at the output rate.
    carry: VecDeque<i16>,
    out_rate: u32,
    last_good: Vec<i16>,
    last_packet_us: u64,
    last_pt: Option<u8>,
    miss_run: u32,
    underflow_run: u32,
    bad_seq: Option<u16>,
    /// Jitter estimate (RFC 3550 §A.8) in µs and the previous packet's arrival/timestamp.
    jitter_us: f64,
    last_transit: Option<(Instant, u32, u32)>,
    target_us: f64,
    window_sum_us: u64,
    window_n: u32,
    stats: JitterStats,
    scratch: Vec<i16>,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(JitterConfig::default())
    }
}

fn us_of(units: u32, clock_rate: u32) -> u64 {
    u64::from(units) * 1_000_000 / u64::from(clock_rate.max(1))
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> JitterBuffer {
        JitterBuffer {
            cfg,
            ssrc: None,
            packets: BTreeMap::new(),
            buffered_us: 0,
            highest: None,
            next: None,
            started: false,
            first_arrival: None,
            carry: VecDeque::new(),
            out_rate: 8000,
            last_good: Vec::new(),
            last_packet_us: 20_000,
            last_pt: None,
            miss_run: FADE_FRAMES,
            underflow_run: 0,
            bad_seq: None,
            jitter_us: 0.0,
            last_transit: None,
            target_us: f64::from(cfg.target_ms) * 1000.0,
            window_sum_us: 0,
            window_n: 0,
            stats: JitterStats::default(),
            scratch: Vec::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Audio currently buffered (not yet played), in ms.
    pub fn buffered_ms(&self) -> u32 {
        (self.level_us() / 1000) as u32
    }

    /// The playout delay buffered: decoded audio not yet played, buffered packets, and the
    /// slots of packets still missing between the play position and the newest packet (a
    /// loss does not shorten the delay).
    fn level_us(&self) -> u64 {
        let missing = match (self.next, self.highest) {
            (Some(n), Some(h)) if h >= n => {
                ((h - n + 1) as u64).saturating_sub(self.packets.len() as u64)
            }
            _ => 0,
        };
        self.buffered_us
            + missing * self.last_packet_us
            + self.carry.len() as u64 * 1_000_000 / u64::from(self.out_rate.max(1))
    }

    /// The playout delay the buffer aims for now, in ms.
    pub fn target_ms(&self) -> f64 {
        self.target_us / 1000.0
    }

    /// The interarrival jitter estimate (RFC 3550 §A.8), in ms.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_us / 1000.0
    }

    /// Whether playout has begun (prefill done).
    pub fn is_playing(&self) -> bool {
        self.started
    }

    fn reset(&mut self, ssrc: u32) {
        self.ssrc = Some(ssrc);
        self.packets.clear();
        self.buffered_us = 0;
        self.highest = None;
        self.next = None;
        self.started = false;
        self.first_arrival = None;
        self.carry.clear();
        self.underflow_run = 0;
        self.bad_seq = None;
        self.last_transit = None;
        self.window_sum_us = 0;
        self.window_n = 0;
        self.stats.resets += 1;
    }

    /// Offer an encoded packet that arrived at `now`: `duration` in units of `clock_rate`
    /// (see [`crate::codec::packet_clock_units`]), `timestamp` its RTP timestamp.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        clock_rate: u32,
        pt: u8,
        payload: &[u8],
        duration: u32,
        now: Instant,
    ) -> PushOutcome {
        let entry = Entry {
            pt,
            payload: payload.to_vec(),
            duration_us: us_of(duration, clock_rate).clamp(1, MAX_PACKET_US),
            filler: false,
        };
        self.push_entry(seq, Some((timestamp, clock_rate)), ssrc, entry, now)
    }

    /// Offer a packet that only fills its audio slot with silence (an RFC 4733 event packet,
    /// which replaces the sender's audio, §2.5.1.1), lasting `duration_ms`.
    pub fn push_filler(
        &mut self,
        seq: u16,
        ssrc: u32,
        duration_ms: u32,
        now: Instant,
    ) -> PushOutcome {
        let entry = Entry {
            pt: 0,
            payload: Vec::new(),
            duration_us: (u64::from(duration_ms) * 1000).clamp(1, MAX_PACKET_US),
            filler: true,
        };
        self.push_entry(seq, None, ssrc, entry, now)
    }

    fn push_entry(
        &mut self,
        seq: u16,
        ts: Option<(u32, u32)>,
        ssrc: u32,
        entry: Entry,
        now: Instant,
    ) -> PushOutcome {
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
        if let Some(next) = self.next {
            if ext < next - MAX_MISORDER {
                if self.bad_seq == Some(seq) {
                    tracing::debug!(seq, "sequence restart confirmed: jitter buffer reset");
                    self.reset(ssrc);
                    return self.insert(i64::from(seq), ts, entry, now, PushOutcome::Reset);
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
        self.insert(ext, ts, entry, now, outcome)
    }

    fn insert(
        &mut self,
        ext: i64,
        ts: Option<(u32, u32)>,
        entry: Entry,
        now: Instant,
        outcome: PushOutcome,
    ) -> PushOutcome {
        let newest = self.highest.is_none_or(|h| ext > h);
        if newest {
            if let Some((timestamp, clock)) = ts {
                self.measure_jitter(now, timestamp, clock);
            }
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.first_arrival.get_or_insert(now);
        self.buffered_us += entry.duration_us;
        self.packets.insert(ext, entry);
        let cap = u64::from(self.cfg.max_ms.saturating_add(HOLD_MARGIN_MS)) * 1000;
        if self.buffered_us > cap {
            let target = self.target_us as u64;
            while self.buffered_us > target {
                let Some((k, v)) = self.packets.pop_first() else {
                    break;
                };
                self.buffered_us -= v.duration_us;
                self.stats.overflow_dropped += 1;
                self.next = Some(k + 1);
            }
        }
        outcome
    }

    /// RFC 3550 §A.8 in µs: D = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16; then the target.
    fn measure_jitter(&mut self, now: Instant, timestamp: u32, clock: u32) {
        if let Some((t, ts, c)) = self.last_transit {
            if c == clock {
                let arrival = now.saturating_duration_since(t).as_secs_f64() * 1e6
                    - t.saturating_duration_since(now).as_secs_f64() * 1e6;
                let sent =
                    f64::from(timestamp.wrapping_sub(ts) as i32) * 1e6 / f64::from(clock.max(1));
                let d = (arrival - sent).abs();
                if d <= MAX_TRANSIT_STEP_US {
                    self.jitter_us += (d - self.jitter_us) / 16.0;
                }
            }
        }
        self.last_transit = Some((now, timestamp, clock));
        if !self.cfg.adaptive {
            return;
        }
        let frame = self.last_packet_us.min(60_000) as f64;
        let raw = (frame + JITTER_FACTOR * self.jitter_us).clamp(
            f64::from(self.cfg.min_ms) * 1000.0,
            f64::from(self.cfg.max_ms.max(self.cfg.min_ms)) * 1000.0,
        );
        if raw > self.target_us {
            self.target_us = raw; // fast attack
        } else {
            self.target_us += (raw - self.target_us) / TARGET_DECAY_PACKETS; // slow decay
        }
    }

    /// Take the next frame (`out.len()` samples at the decoder's output rate) at `now`.
    pub fn pop(
        &mut self,
        now: Instant,
        out: &mut [i16],
        dec: &mut dyn PlayoutDecoder,
    ) -> FrameKind {
        self.out_rate = dec.output_rate().max(1);
        let want = out.len();
        if !self.started {
            let Some(first) = self.first_arrival else {
                return Self::silence(out);
            };
            let target = Duration::from_micros(self.target_us as u64);
            let enough = self.buffered_us >= self.target_us as u64;
            let waited = now.saturating_duration_since(first) >= target;
            if self.packets.is_empty() || !(enough || waited) {
                return Self::silence(out);
            }
            self.started = true;
            self.underflow_run = 0;
            self.window_sum_us = 0;
            self.window_n = 0;
            self.next = self.packets.keys().next().copied();
        }

        // Delay control (module docs): one decision per window.
        let mut drop_frame = false;
        let mut stretch = false;
        if self.underflow_run == 0 {
            self.window_sum_us += self.level_us();
            self.window_n += 1;
            if self.window_n >= CONTROL_WINDOW {
                let avg = (self.window_sum_us / u64::from(self.window_n)) as f64;
                let frame_us = want as f64 * 1e6 / f64::from(self.out_rate);
                if avg > self.target_us + frame_us / 2.0 {
                    drop_frame = true;
                } else if avg + frame_us / 2.0 < self.target_us {
                    stretch = true;
                }
                self.window_sum_us = 0;
                self.window_n = 0;
            }
        }
        if stretch {
            self.stats.frames_stretched += 1;
            self.conceal_into_carry_front(want, dec);
            for (o, s) in out.iter_mut().zip(self.carry.drain(..want)) {
                *o = s;
            }
            self.stats.concealed += 1;
            return FrameKind::Concealed;
        }

        let need = if drop_frame { want * 2 } else { want };
        let mut concealed = self.fill(need, dec);
        if drop_frame && self.carry.len() >= need {
            self.carry.drain(..want);
            self.stats.frames_dropped += 1;
        }

        if self.carry.len() < want {
            self.underflow_run += 1;
            let missing = want - self.carry.len();
            self.conceal_into_carry(missing, dec);
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

    /// Decode packets into the carry until it holds `want` samples or nothing is buffered.
    /// Returns whether any of it was concealed.
    fn fill(&mut self, want: usize, dec: &mut dyn PlayoutDecoder) -> bool {
        let mut concealed = false;
        while self.carry.len() < want {
            let Some(next) = self.next else { break };
            if let Some(e) = self.packets.remove(&next) {
                self.buffered_us -= e.duration_us;
                self.next = Some(next + 1);
                self.play_entry(&e, dec);
                continue;
            }
            let Some(&oldest) = self.packets.keys().next() else {
                break; // underflow: keep the position, the packet may still come
            };
            let span = (oldest - next) as u64 * self.last_packet_us;
            let cap = u64::from(self.cfg.max_ms.saturating_add(HOLD_MARGIN_MS)) * 1000;
            if span > cap {
                tracing::debug!(gap = oldest - next, "sequence jump: skipping ahead");
                self.next = Some(oldest);
                continue;
            }
            // Lost: rebuild from the next packet's FEC, or conceal one packet's worth.
            self.stats.lost += 1;
            let samples = self.samples_of(self.last_packet_us);
            let mut recovered = false;
            if let Some(e) = self.packets.get(&(next + 1)).filter(|e| !e.filler) {
                self.scratch.clear();
                let mut buf = std::mem::take(&mut self.scratch);
                if dec.recover(e.pt, &e.payload, samples, &mut buf) && !buf.is_empty() {
                    self.carry.extend(buf.iter().copied());
                    self.stats.fec_recovered += 1;
                    self.miss_run = 0;
                    recovered = true;
                }
                self.scratch = buf;
            }
            if !recovered {
                self.conceal_into_carry(samples, dec);
                concealed = true;
            }
            self.next = Some(next + 1);
        }
        concealed
    }

    fn play_entry(&mut self, e: &Entry, dec: &mut dyn PlayoutDecoder) {
        let samples = self.samples_of(e.duration_us);
        if e.filler {
            self.carry.extend(std::iter::repeat_n(0, samples));
            return;
        }
        self.last_packet_us = e.duration_us;
        self.last_pt = Some(e.pt);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        if dec.decode(e.pt, &e.payload, &mut buf) && !buf.is_empty() {
            self.carry.extend(buf.iter().copied());
            self.miss_run = 0;
        } else {
            self.conceal_into_carry(samples, dec);
        }
        self.scratch = buf;
    }

    fn samples_of(&self, us: u64) -> usize {
        (us * u64::from(self.out_rate) / 1_000_000) as usize
    }

    fn silence(out: &mut [i16]) -> FrameKind {
        out.fill(0);
        FrameKind::Silence
    }

    /// Conceal `len` samples at the front of the carry (a frame inserted before what is there).
    fn conceal_into_carry_front(&mut self, len: usize, dec: &mut dyn PlayoutDecoder) {
        let rest: Vec<i16> = self.carry.drain(..).collect();
        self.conceal_into_carry(len, dec);
        self.carry.extend(rest);
    }

    /// Append `len` samples of concealment: the codec's own if it has one, else the last good
    /// frame repeated with a linear fade reaching silence after [`FADE_FRAMES`] frames.
    fn conceal_into_carry(&mut self, len: usize, dec: &mut dyn PlayoutDecoder) {
        if let Some(pt) = self.last_pt {
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            let ok = dec.conceal(pt, len, &mut buf);
            if ok && !buf.is_empty() {
                buf.resize(len, 0);
                self.carry.extend(buf.iter().copied());
                self.stats.codec_concealed += 1;
                self.scratch = buf;
                return;
            }
            self.scratch = buf;
        }
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
#[path = "jitter_tests.rs"]
mod tests;
