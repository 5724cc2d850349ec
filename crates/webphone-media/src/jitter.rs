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
//! # Playout-delay control
//!
//! - **Relative delay.** Each packet's transit time (arrival minus RTP timestamp, RFC 3550
//!   §6.4.1) is compared with the smallest transit of the last [`DELAY_REFERENCE_US`]: the
//!   difference `d` is how much later than the fastest packets it came. Every packet counts,
//!   the reordered and the late ones too. A transit step above one second is a timestamp jump
//!   and restarts the reference.
//! - **Target.** The `d` values go into a histogram with exponential forgetting
//!   ([`DELAY_FORGET`] per packet, about 7 s of 20 ms packets; plain averaging over the first
//!   packets, so the estimate starts fast). The target delay is
//!   `clamp(quantile(d) + packet duration + margin, min_ms, max_ms)` with the quantile and the
//!   margin of [`JitterConfig`] (99.5 % and 10 ms by default): a rise of the delays lifts it
//!   within a few packets, and it decays only as old delays are forgotten. A peak hold covers
//!   rarer outliers as long as they recur: `quantile(d)` is raised to the second-highest `d`
//!   of the last [`PEAK_WINDOW_US`], or to the highest of the last [`PEAK_SINGLE_US`] (one
//!   outlier alone is held briefly). For the first [`START_PACKETS`] packets the target is at
//!   least the configured initial delay (where playout starts; no frame is inserted to keep
//!   the delay up to it).
//! - **Start-up allowance.** A path that shows jitter early tends to show rarer, larger delays
//!   (a burst of reordering, a stalled router) that neither the quantile nor the peak hold has
//!   seen yet, and each one met while the delay is still low costs a concealed frame inside
//!   speech and a step in the delay. Once [`START_ALLOWANCE_MIN_PACKETS`] delays are known,
//!   and for the first [`START_ALLOWANCE_US`] of the stream's delay history, the target
//!   therefore also covers the spread of the delays (the largest 90th percentile seen so far:
//!   one early outlier does not move it, and it does not go down and up with the noise of a
//!   quantile over few delays) plus 1.2 times its part above 5 ms: about 2.2 times the
//!   jitter on a jittery path, nothing on a quiet one (so the zero-jitter delay stays low).
//!   Over the next [`START_ALLOWANCE_FADE_US`] the extra part of the spread reached by then
//!   fades out, so the target comes back to what
//!   the quantile and the peak hold ask for gradually and the surplus is dropped a frame at a
//!   time in pauses. The history (and so this clock) is that of the network path: it goes on
//!   across an SSRC change or a re-INVITE. The small `jittersize` biases (1, 2) have none.
//! - **Headroom.** On every packet that arrives in time the buffer measures how early the
//!   fastest packets come: the audio between the play position and the packet's end (the
//!   buffered audio plus what is left to play of the frame handed out last), plus the
//!   packet's `d`. The median of the last
//!   [`HEADROOM_WINDOW`] measurements is the current playout delay `D`; a packet is in time
//!   when its `d` is below `D` minus its duration.
//! - **Dead band.** Nothing changes while `target − HYSTERESIS_US ≤ D ≤ target + frame/2 +
//!   DROP_HYSTERESIS_US` (a band wider than the one-frame step, so a correction never calls
//!   for the opposite one). Below the band one frame is inserted, above it one frame is
//!   dropped, each at most once per [`SETTLE_PACKETS`] new measurements (except that up to
//!   [`PAUSE_INSERT_RUN`] inserts follow one another while a pause lasts, so a pause takes the
//!   growth at once), and none while a
//!   grace or underflow frame is out (its packet may still come and add a frame). A correction waits
//!   for a pause (three quiet frames in a row, 25 dB under the recent speech level: not the
//!   short quiet stretches inside words) for up to [`INSERT_WAIT_FRAMES`]
//!   / [`DROP_WAIT_FRAMES`] frames, and is made at once when it is urgent: `D` below the
//!   quantile target (without the peak hold) minus the margin, so that packets at the
//!   quantile would be late, or more than three frames above the target. An inserted frame is synthesised by the waveform concealment of [`plc`] and
//!   blended into what follows; a dropped frame is skipped with a 5 ms cross-fade. The same
//!   control absorbs sender clock drift.
//! - **Fast start.** Playout begins when the newest packet's headroom (what is buffered plus
//!   how long that packet has waited) is within half a frame of the target, or a target's
//!   worth of time after the first packet arrived, whichever is first. The target is the
//!   configured initial delay until [`START_PACKETS`] delays are known.
//!
//! # Loss, late packets and concealment (each missing frame concealed exactly once)
//!
//! - A packet missing at its playout time while later ones are buffered is rebuilt from the
//!   next packet's FEC if the decoder can ([`PlayoutDecoder::recover`]). Otherwise (adaptive
//!   mode) it gets a *grace frame*: the frame is concealed as an underflow, without moving the
//!   play position, so a packet only reordered behind its slot still plays if it comes within
//!   that frame (the delay grows by the frame, as for any underflow). If it does not come it is
//!   lost, and the concealment already played stands for it: a real loss costs nothing more.
//!   A lost packet is concealed by the codec ([`PlayoutDecoder::conceal`]), else by the G.711
//!   Appendix I-style concealment of [`plc`] (with `plc` off: silence).
//! - Underflow (nothing buffered at playout): the frame is concealed but the play position is
//!   *not* advanced, so a merely late packet still plays (the delay grows by that frame). If
//!   the packet turns out lost when later ones arrive, the concealment already played stands
//!   for it: it is skipped without being concealed again. After [`UNDERFLOW_RESTART`] empty
//!   ticks in a row the buffer prefills again (silence suppression, DTX, hold).
//! - A packet that comes after its slot was played (or concealed) is late and dropped; one
//!   that comes before it, reordered or not, is played in order. Duplicates are dropped; more
//!   than `max_ms` + [`HOLD_MARGIN_MS`] buffered drops the oldest packets down to the target.
//! - An SSRC change resets the buffer (a new stream, RFC 3550 §8.2). A sequence jump of more
//!   than [`MAX_MISORDER`] backwards is accepted as a restart once two consecutive packets
//!   confirm it (RFC 3550 §A.1 probation); a forward jump beyond the buffer span moves the play
//!   position instead of concealing the whole gap. Playout follows sequence numbers, so a
//!   timestamp jump plays on without a glitch (it is also kept out of the jitter estimate).
//!
//! The RFC 3550 §A.8 interarrival jitter is estimated as well ([`JitterBuffer::jitter_ms`]),
//! for statistics only.

pub mod plc;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use plc::Plc;

/// A packet this far behind the play position is a possible sender restart (RFC 3550 §A.1).
pub const MAX_MISORDER: i64 = 100;
/// Consecutive empty ticks after which the buffer prefills again.
pub const UNDERFLOW_RESTART: u32 = 5;
/// Longest packet we accept: 120 ms (RFC 6716 §2.1.4).
pub const MAX_PACKET_US: u64 = 120_000;
/// The relative delay of a packet is measured against the fastest packet of this span (µs).
pub const DELAY_REFERENCE_US: u64 = 2_000_000;
/// Weight kept per packet by the delay histogram (memory of ~330 packets, 7 s at 50/s).
pub const DELAY_FORGET: f64 = 0.997;
/// Span of the peak hold: the target also covers the second-highest delay of this span (µs).
pub const PEAK_WINDOW_US: i64 = 10_000_000;
/// A single outlier is held this long (µs): the next one of a rare series (1 % reordering
/// comes every 2 s on average) then finds the target still up.
pub const PEAK_SINGLE_US: i64 = 5_000_000;
/// Delays above this quantile are candidates for the peak hold (a floor that one outlier
/// cannot lift above the next one).
const PEAK_FLOOR_QUANTILE: f64 = 0.98;
/// Packets over which the target is at least the configured initial delay.
pub const START_PACKETS: u64 = 50;
/// Span from the first packet (µs) over which the start-up allowance holds in full: one
/// peak-hold window, after which the peak hold knows the rare outliers of the path.
pub const START_ALLOWANCE_US: i64 = PEAK_WINDOW_US;
/// The allowance then fades out over this span (µs), so that the delay it added is given
/// back a frame at a time, in pauses, not in one step that would make the drops urgent.
pub const START_ALLOWANCE_FADE_US: i64 = 10_000_000;
/// Delays recorded before the allowance applies: the spread quantile then leaves out at least
/// two of them, so one early outlier on a quiet path does not raise it.
pub const START_ALLOWANCE_MIN_PACKETS: u64 = 20;
/// The spread of the delays the allowance scales: this quantile of `d` (robust to a few
/// outliers; about 0.9 of the jitter range on a uniformly jittery path).
const START_SPREAD_QUANTILE: f64 = 0.9;
/// Spread (µs) up to which a path gets no start-up allowance: the scheduling noise of a quiet
/// path keeps the low start delay.
const START_SPREAD_FLOOR_US: f64 = 5_000.0;
/// Part of the spread above the floor added on top of it by the start-up allowance.
const START_SPREAD_FACTOR: f64 = 1.2;
/// Frames inserted one after another in one pause, at most (a longer run of concealment
/// fades to digital silence where the background noise was).
const PAUSE_INSERT_RUN: u32 = 4;
/// Headroom measurements whose median is the current playout delay.
pub const HEADROOM_WINDOW: usize = 25;
/// New headroom measurements needed after a correction before the next one.
pub const SETTLE_PACKETS: usize = 10;
/// Hysteresis below the target, in µs.
pub const HYSTERESIS_US: i64 = 5_000;
/// Hysteresis above target + half a frame, in µs: a drop leaves the delay 2 ms below the
/// target at worst, an insertion 3 ms below the drop threshold, so one correction never
/// calls for the opposite one.
pub const DROP_HYSTERESIS_US: i64 = 8_000;
/// Frames a frame insertion waits for a quiet frame (3 s of 20 ms frames) unless urgent.
pub const INSERT_WAIT_FRAMES: u32 = 150;
/// Frames a frame drop waits for a quiet frame (4 s of 20 ms frames).
pub const DROP_WAIT_FRAMES: u32 = 200;
/// Buffered audio beyond `max_ms` + this is dropped (oldest first).
pub const HOLD_MARGIN_MS: u32 = 100;
/// Transit changes above this are timestamp jumps, not jitter.
const MAX_TRANSIT_STEP_US: i64 = 1_000_000;
/// Cross-fade of a dropped frame, in µs.
const DROP_FADE_US: u64 = 5_000;
/// A frame is quiet below this fraction of the recent speech power (-25 dB)...
const QUIET_RATIO: f64 = 0.003;
/// ...or below this mean square (an RMS of 30).
const QUIET_FLOOR: f64 = 900.0;
/// Quiet frames played in a row before a frame is inserted (the inserted one makes three).
const QUIET_RUN_INSERT: u32 = 2;
/// Quiet frames played in a row before a drop (the two frames it joins must be quiet too).
const QUIET_RUN_DROP: u32 = 1;
/// Speech power tracker: peak hold with this decay per frame (~20 s at 50 frames/s).
const LOUD_DECAY: f64 = 0.999;

/// Jitter buffer tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Initial playout delay (and the fixed one when not adaptive), in ms. Default 60.
    pub target_ms: u32,
    /// Largest target delay in ms. Default 250.
    pub max_ms: u32,
    /// Smallest target delay in ms (adaptive mode). Default 20.
    pub min_ms: u32,
    /// Follow the measured delays. Default true.
    pub adaptive: bool,
    /// Share of packets the target should let play in time, in per mille of the relative
    /// delay distribution. Default 995.
    pub quantile_permille: u16,
    /// Added to the quantile (and the packet duration) for the target, in ms. Default 10.
    pub margin_ms: u32,
    /// Conceal lost audio (the `plc` parameter); when off, losses play as silence. Default on.
    pub plc: bool,
    /// Cover more than the measured delays at the start of a jittery stream (module docs,
    /// start-up allowance). Default on; off for the small `jittersize` biases.
    pub start_allowance: bool,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            target_ms: 60,
            max_ms: 250,
            min_ms: 20,
            adaptive: true,
            quantile_permille: 995,
            margin_ms: 10,
            plc: true,
            start_allowance: true,
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

    /// The tuning for the `jittersize` parameter ("bias for the dynamic jitter buffer"):
    /// 0 = no jitter buffer (one fixed frame), 1 extra small, 2 small, 3 normal (the
    /// default), 4 big, 5 extra big, 6 max. Values outside 0..=6 are taken as 3.
    pub fn for_jittersize(size: i64) -> JitterConfig {
        let d = JitterConfig::default();
        let (quantile_permille, margin_ms, min_ms, max_ms) = match size {
            0 => return JitterConfig::fixed(20),
            1 => (900, 0, 20, 120),
            2 => (980, 5, 20, 200),
            4 => (998, 20, 40, 350),
            5 => (999, 40, 60, 500),
            6 => (1000, 60, 100, 800),
            _ => (d.quantile_permille, d.margin_ms, d.min_ms, d.max_ms),
        };
        JitterConfig {
            target_ms: d.target_ms.clamp(min_ms, max_ms),
            max_ms,
            min_ms,
            quantile_permille,
            margin_ms,
            // The small biases ask for latency first: no start-up allowance.
            start_allowance: !matches!(size, 1 | 2),
            ..d
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
    /// Partly or wholly concealed (codec concealment, waveform substitution, or silence for a
    /// loss when concealment is off).
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
    /// Lost packets or gaps concealed by the waveform concealment ([`plc`]).
    pub plc_concealed: u64,
    /// Lost packets that needed no concealment of their own: an underflow had already
    /// concealed their slot.
    pub loss_already_concealed: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicate: u64,
    /// Packets dropped because the buffer held too much.
    pub overflow_dropped: u64,
    /// Frames dropped to bring the delay down to the target.
    pub frames_dropped: u64,
    /// Frames inserted to bring the delay up to the target.
    pub frames_stretched: u64,
    /// Frames concealed because the buffer ran empty (the delay grew by them).
    pub underflows: u64,
    /// Missing packets (later ones buffered, no FEC) waited for one frame before being
    /// declared lost: the frame was concealed as an underflow.
    pub grace_waits: u64,
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

/// A delay correction the control wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Correction {
    Insert,
    Drop,
}

/// Relative-delay statistics: the transit reference and the histogram of `d` (1 ms buckets).
#[derive(Debug, Clone)]
struct DelayEstimator {
    /// Time zero for arrival times.
    epoch: Option<Instant>,
    /// RTP timestamp, its unwrapped value in µs and its clock, of the newest packet.
    ts_ref: Option<(u32, i64, u32)>,
    /// Transit of the newest packet (for timestamp-jump detection).
    last_transit: Option<i64>,
    /// (arrival µs, transit µs), increasing transit: the front is the window's minimum.
    base: VecDeque<(i64, i64)>,
    /// Weights per 1 ms bucket, stored as `f32` (half the memory per call; the sums are
    /// taken in `f64`, and `total` is kept in `f64`).
    hist: Vec<f32>,
    total: f64,
    inc: f64,
    count: u64,
    /// (arrival µs, d µs) of the packets above the peak floor in the last [`PEAK_WINDOW_US`].
    peaks: VecDeque<(i64, i64)>,
    /// Arrival time (µs) of the last packet measured.
    last_arrival: i64,
    /// Largest spread (µs) the start-up allowance has seen: it only rises while it holds, so
    /// the noise of a quantile over few delays does not move the target up and down.
    start_spread: f64,
}

impl DelayEstimator {
    fn new(buckets: usize) -> DelayEstimator {
        DelayEstimator {
            epoch: None,
            ts_ref: None,
            last_transit: None,
            base: VecDeque::new(),
            hist: vec![0.0; buckets.max(1)],
            total: 0.0,
            inc: 1.0,
            count: 0,
            peaks: VecDeque::new(),
            last_arrival: 0,
            start_spread: 0.0,
        }
    }

    /// Forget the transit reference (new stream); the histogram stays (same network path).
    fn restart(&mut self) {
        self.ts_ref = None;
        self.last_transit = None;
        self.base.clear();
    }

    /// The relative delay `d` (µs) of a packet with RTP timestamp `ts` arriving at `now` (0
    /// for the first packet after a restart, a clock change or a timestamp jump).
    fn measure(&mut self, now: Instant, ts: u32, clock: u32, newest: bool) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch).as_micros() as i64;
        let clock = clock.max(1);
        let ts_us = match self.ts_ref {
            Some((rts, rus, rclock)) if rclock == clock => {
                rus + i64::from(ts.wrapping_sub(rts) as i32) * 1_000_000 / i64::from(clock)
            }
            _ => {
                self.restart();
                0
            }
        };
        let transit = arrival - ts_us;
        if newest || self.ts_ref.is_none() {
            if let Some(last) = self.last_transit {
                if (transit - last).abs() > MAX_TRANSIT_STEP_US {
                    self.base.clear();
                }
            }
            self.ts_ref = Some((ts, ts_us, clock));
            self.last_transit = Some(transit);
        }
        while self.base.back().is_some_and(|&(_, t)| t >= transit) {
            self.base.pop_back();
        }
        self.base.push_back((arrival, transit));
        let horizon = arrival - DELAY_REFERENCE_US as i64;
        while self.base.len() > 1 && self.base.front().is_some_and(|&(a, _)| a < horizon) {
            self.base.pop_front();
        }
        let min = self.base.front().map_or(transit, |&(_, t)| t);
        self.last_arrival = arrival;
        (transit - min).max(0)
    }

    /// Keep `d` for the peak hold when it is above the floor `q_us`; forget old peaks.
    fn note_peak(&mut self, d_us: i64, q_us: f64) {
        let now = self.last_arrival;
        while self
            .peaks
            .front()
            .is_some_and(|&(t, _)| t < now - PEAK_WINDOW_US)
        {
            self.peaks.pop_front();
        }
        if d_us as f64 > q_us {
            self.peaks.push_back((now, d_us));
        }
    }

    /// The second-highest peak of the window, or the highest of its last
    /// [`PEAK_SINGLE_US`] if higher (one outlier alone is held only briefly), in µs.
    fn peak_us(&self) -> Option<i64> {
        let mut top = [None::<i64>; 2];
        let recent = self
            .peaks
            .iter()
            .filter(|&&(t, _)| t >= self.last_arrival - PEAK_SINGLE_US)
            .map(|&(_, d)| d)
            .max();
        for &(_, d) in &self.peaks {
            if top[0].is_none_or(|t| d > t) {
                top[1] = top[0];
                top[0] = Some(d);
            } else if top[1].is_none_or(|t| d > t) {
                top[1] = Some(d);
            }
        }
        top[1].max(recent)
    }

    /// Add a relative delay to the histogram: plain counts over the first 1/(1 - forget)
    /// packets, exponential forgetting after.
    fn record(&mut self, d_us: i64) {
        let n = self.hist.len();
        let b = ((d_us / 1000).max(0) as usize).min(n - 1);
        self.count += 1;
        if self.count as f64 > 1.0 / (1.0 - DELAY_FORGET) {
            self.inc /= DELAY_FORGET;
        }
        self.hist[b] = (f64::from(self.hist[b]) + self.inc) as f32;
        self.total += self.inc;
        if self.inc > 1e12 {
            for h in &mut self.hist {
                *h = (f64::from(*h) / self.inc) as f32;
            }
            self.total /= self.inc;
            self.inc = 1.0;
        }
    }

    /// The `q` quantile (0..=1) of the recorded delays in µs (the bucket's upper edge).
    fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let tail = (1.0 - q).max(0.0) * self.total;
        let mut above = 0.0;
        for (b, &w) in self.hist.iter().enumerate().rev() {
            above += f64::from(w);
            // the tolerance covers the f32 rounding of the buckets against the f64 total
            if above > tail + 1e-6 * self.total {
                return Some((b as f64 + 1.0) * 1000.0);
            }
        }
        Some(1000.0)
    }
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
    /// When the newest packet arrived.
    last_arrival: Option<Instant>,
    /// Decoded PCM not yet played, at the output rate.
    carry: VecDeque<i16>,
    out_rate: u32,
    last_packet_us: u64,
    last_pt: Option<u8>,
    underflow_run: u32,
    bad_seq: Option<u16>,
    /// RFC 3550 §A.8 jitter in µs and the previous packet's arrival/timestamp/clock.
    jitter_us: f64,
    last_transit: Option<(Instant, u32, u32)>,
    delays: DelayEstimator,
    target_us: f64,
    /// The target without the peak hold (nor the initial-delay floor).
    quantile_target_us: f64,
    /// The target without the initial-delay floor: what inserts aim at.
    insert_target_us: f64,
    /// Headroom measurements, stored minus `headroom_offset` at the time they were taken.
    headroom: VecDeque<i64>,
    /// Sum of the delay changes made since (insertions +, drops and skips −), in µs.
    headroom_offset: i64,
    since_correction: usize,
    /// Frames inserted one after another in the current pause (the next may follow at once,
    /// up to [`PAUSE_INSERT_RUN`]); 0 when the last correction was anything else.
    pause_inserts: u32,
    correction_wait: u32,
    last_pop: Option<Instant>,
    /// Frame duration of the last pop, in µs.
    frame_us: u64,
    /// Concealment played during underflow for the slot at `next`, in µs.
    owed_us: u64,
    /// The concealment owed is a grace frame: the delay grows by it only if the packet then
    /// plays (a loss leaves the delay as it was), so the delay control does not see it before.
    grace: bool,
    plc: Plc,
    /// Mean square of the last frame played, and the recent speech power.
    last_power: f64,
    loud_power: f64,
    /// Quiet frames played in a row: corrections go into pauses, not into the short quiet
    /// stretches inside words.
    quiet_run: u32,
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

fn power(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64
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
            last_arrival: None,
            carry: VecDeque::new(),
            out_rate: 8000,
            last_packet_us: 20_000,
            last_pt: None,
            underflow_run: 0,
            bad_seq: None,
            jitter_us: 0.0,
            last_transit: None,
            delays: DelayEstimator::new(cfg.max_ms.max(cfg.min_ms) as usize + 1),
            target_us: f64::from(cfg.target_ms) * 1000.0,
            quantile_target_us: f64::from(cfg.target_ms) * 1000.0,
            insert_target_us: f64::from(cfg.target_ms) * 1000.0,
            headroom: VecDeque::new(),
            headroom_offset: 0,
            since_correction: 0,
            pause_inserts: 0,
            correction_wait: 0,
            last_pop: None,
            frame_us: 20_000,
            owed_us: 0,
            grace: false,
            plc: Plc::new(8000),
            last_power: 0.0,
            loud_power: 0.0,
            quiet_run: 0,
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
        self.buffered_us + missing * self.last_packet_us + self.carry_us()
    }

    fn carry_us(&self) -> u64 {
        self.carry.len() as u64 * 1_000_000 / u64::from(self.out_rate.max(1))
    }

    /// The playout delay the buffer aims for now, in ms.
    pub fn target_ms(&self) -> f64 {
        self.target_us / 1000.0
    }

    /// The current playout delay of the fastest packets (the median headroom), in ms;
    /// `None` before playout or before any measurement.
    pub fn delay_ms(&self) -> Option<f64> {
        self.current_delay_us().map(|d| d as f64 / 1000.0)
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
        self.first_arrival = None;
        self.carry.clear();
        self.bad_seq = None;
        self.last_transit = None;
        self.delays.restart();
        self.stop_playing();
        self.stats.resets += 1;
    }

    /// Back to prefilling: the delay measurements of the old play position are void.
    fn stop_playing(&mut self) {
        self.started = false;
        self.underflow_run = 0;
        self.owed_us = 0;
        self.grace = false;
        self.headroom.clear();
        self.headroom_offset = 0;
        self.since_correction = 0;
        self.correction_wait = 0;
        self.pause_inserts = 0;
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
                // Its slot was played or concealed; its delay still teaches the target.
                tracing::debug!(seq, next, "jitter buffer: late packet");
                if let Some((timestamp, clock)) = ts {
                    self.measure_delay(now, timestamp, clock, entry.duration_us, false, None);
                }
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
        let duration_us = entry.duration_us;
        if newest {
            if let Some((timestamp, clock)) = ts {
                self.measure_jitter(now, timestamp, clock);
            }
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.first_arrival.get_or_insert(now);
        if newest {
            self.last_arrival = Some(now);
        }
        self.buffered_us += entry.duration_us;
        self.packets.insert(ext, entry);
        if let Some((timestamp, clock)) = ts {
            self.measure_delay(now, timestamp, clock, duration_us, newest, Some(ext));
        }
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
                self.owed_us = 0;
                self.grace = false;
            }
            self.headroom.clear();
        }
        outcome
    }

    /// RFC 3550 §A.8 in µs: D = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16 (statistics).
    fn measure_jitter(&mut self, now: Instant, timestamp: u32, clock: u32) {
        if let Some((t, ts, c)) = self.last_transit {
            if c == clock {
                let arrival = now.saturating_duration_since(t).as_secs_f64() * 1e6
                    - t.saturating_duration_since(now).as_secs_f64() * 1e6;
                let sent =
                    f64::from(timestamp.wrapping_sub(ts) as i32) * 1e6 / f64::from(clock.max(1));
                let d = (arrival - sent).abs();
                if d <= MAX_TRANSIT_STEP_US as f64 {
                    self.jitter_us += (d - self.jitter_us) / 16.0;
                }
            }
        }
        self.last_transit = Some((now, timestamp, clock));
    }

    /// The relative delay of a packet (module docs): into the histogram, then the target; and
    /// for a packet buffered in time (`ext`), one headroom measurement.
    fn measure_delay(
        &mut self,
        now: Instant,
        timestamp: u32,
        clock: u32,
        duration_us: u64,
        newest: bool,
        ext: Option<i64>,
    ) {
        let d = self.delays.measure(now, timestamp, clock, newest);
        let floor = self.delays.quantile_us(PEAK_FLOOR_QUANTILE).unwrap_or(0.0);
        self.delays.record(d);
        self.delays.note_peak(d, floor);
        if self.cfg.adaptive {
            self.update_target(duration_us);
        } else {
            // A packet must be whole before it plays: a fixed delay shorter than the
            // packets (plus the margin) cannot be kept.
            let least = (duration_us + u64::from(self.cfg.margin_ms) * 1000) as f64;
            self.target_us = (f64::from(self.cfg.target_ms) * 1000.0).max(least);
            self.quantile_target_us = self.target_us;
            self.insert_target_us = self.target_us;
        }
        let Some(ext) = ext else { return };
        if !self.started {
            return;
        }
        let Some(next) = self.next else { return };
        // Audio between the play position and the end of this packet.
        let mut ahead = self.carry_us() as i64;
        let mut k = next;
        for (&s, e) in self.packets.range(next..=ext) {
            ahead += (s - k) * self.last_packet_us as i64 + e.duration_us as i64;
            k = s + 1;
        }
        // The frame handed out at the last pop is still playing: the play position proper
        // is behind the buffer's position by what is left of it.
        let since_pop = self.last_pop.map_or(self.frame_us, |t| {
            (now.saturating_duration_since(t).as_micros() as u64).min(self.frame_us)
        });
        let h = ahead + (self.frame_us - since_pop) as i64 + d;
        self.headroom.push_back(h - self.headroom_offset);
        if self.headroom.len() > HEADROOM_WINDOW {
            self.headroom.pop_front();
        }
        self.since_correction += 1;
    }

    fn quantile(&self) -> f64 {
        f64::from(self.cfg.quantile_permille.min(1000)) / 1000.0
    }

    fn update_target(&mut self, duration_us: u64) {
        // One more histogram scan per packet, only while the allowance is in full: the
        // spread it fades out from is fixed after that.
        if self.cfg.start_allowance
            && self.delays.count >= START_ALLOWANCE_MIN_PACKETS
            && self.delays.last_arrival < START_ALLOWANCE_US
        {
            if let Some(spread) = self.delays.quantile_us(START_SPREAD_QUANTILE) {
                self.delays.start_spread = self.delays.start_spread.max(spread);
            }
        }
        let Some(q) = self.delays.quantile_us(self.quantile()) else {
            return;
        };
        self.quantile_target_us = self.clamp_target(q, duration_us, false);
        let mut qd = q;
        // Peak hold: delays above the quantile that recur within the window are covered
        // too (rare reordering on top of jitter), for as long as they keep coming.
        if let Some(p) = self.delays.peak_us() {
            qd = qd.max(p as f64);
        }
        if let Some(a) = self.start_allowance_us() {
            qd = qd.max(a);
        }
        self.target_us = self.clamp_target(qd, duration_us, true);
        self.insert_target_us = self.clamp_target(qd, duration_us, false);
    }

    /// The delay the start-up allowance covers (module docs), while it holds.
    fn start_allowance_us(&self) -> Option<f64> {
        let t = self.delays.last_arrival;
        if !self.cfg.start_allowance
            || self.delays.count < START_ALLOWANCE_MIN_PACKETS
            || t >= START_ALLOWANCE_US + START_ALLOWANCE_FADE_US
        {
            return None;
        }
        let weight = if t <= START_ALLOWANCE_US {
            1.0
        } else {
            1.0 - (t - START_ALLOWANCE_US) as f64 / START_ALLOWANCE_FADE_US as f64
        };
        let spread = self.delays.start_spread;
        let extra = START_SPREAD_FACTOR * (spread - START_SPREAD_FLOOR_US).max(0.0);
        Some(spread + weight * extra)
    }

    /// Delay `qd` to cover + packet + margin, within `min_ms..=max_ms`; with `start_floor`,
    /// at least the initial delay during the start.
    fn clamp_target(&self, qd: f64, duration_us: u64, start_floor: bool) -> f64 {
        let frame = duration_us.min(MAX_PACKET_US) as f64;
        let mut t = qd + frame + f64::from(self.cfg.margin_ms) * 1000.0;
        if start_floor && self.delays.count < START_PACKETS {
            t = t.max(f64::from(self.cfg.target_ms) * 1000.0);
        }
        let lo = f64::from(self.cfg.min_ms) * 1000.0;
        let hi = f64::from(self.cfg.max_ms.max(self.cfg.min_ms)) * 1000.0;
        t.clamp(lo, hi)
    }

    fn current_delay_us(&self) -> Option<i64> {
        if !self.started || self.headroom.is_empty() {
            return None;
        }
        let mut v: Vec<i64> = self.headroom.iter().copied().collect();
        v.sort_unstable();
        Some(v[v.len() / 2] + self.headroom_offset)
    }

    /// The correction the dead band asks for now, and whether it is urgent (more than a
    /// frame outside the band).
    fn wanted_correction(&self) -> Option<(Correction, bool)> {
        if self.headroom.len() < SETTLE_PACKETS.min(HEADROOM_WINDOW) {
            return None;
        }
        // An insert made in a pause may be followed by the next one at once while the pause
        // lasts: the pause grows by what the target asks for in one go instead of a frame
        // every few hundred ms, into speech (the delay moves by exactly the frames inserted,
        // which the headroom offset already counts).
        let settling = self.since_correction < SETTLE_PACKETS;
        let chained = (1..PAUSE_INSERT_RUN).contains(&self.pause_inserts)
            && self.quiet_run >= QUIET_RUN_INSERT;
        if settling && !chained {
            return None;
        }
        let d = self.current_delay_us()?;
        let target = self.target_us as i64;
        // The initial delay is where playout starts, not a need: no frame is inserted to
        // keep it up while the first delays are measured.
        let insert_target = self.insert_target_us as i64;
        let frame = self.frame_us as i64;
        let margin = i64::from(self.cfg.margin_ms) * 1000;
        if d < insert_target - HYSTERESIS_US {
            // Urgent once the margin of the quantile target is used up: packets at the
            // quantile come too late. What the peak hold adds (rare outliers, stalls of the
            // machine) waits for a pause.
            let quantile_target = (self.quantile_target_us as i64).min(insert_target);
            let urgent = d < quantile_target - margin - HYSTERESIS_US;
            Some((Correction::Insert, urgent))
        } else if settling {
            None
        } else if d > target + frame / 2 + DROP_HYSTERESIS_US {
            Some((Correction::Drop, d > target + 3 * frame + HYSTERESIS_US))
        } else {
            None
        }
    }

    /// A grace or underflow frame is out for the slot at `next`: the delay is a frame more
    /// if its packet still comes, as much as now if it is lost. A correction decided before
    /// that is known makes pairs (an insert, then a drop when the packet plays), so none is
    /// made meanwhile; the wait for a pause (`correction_wait`) goes on counting.
    fn correction_deferred(&self) -> bool {
        self.owed_us > 0 || self.grace
    }

    fn is_quiet(&self, p: f64) -> bool {
        p < QUIET_FLOOR || p < self.loud_power * QUIET_RATIO
    }

    /// Level tracking of what was played (quiet-frame detection).
    fn note_output(&mut self, out: &[i16]) {
        self.last_power = power(out);
        self.loud_power = (self.loud_power * LOUD_DECAY).max(self.last_power);
        if self.is_quiet(self.last_power) {
            self.quiet_run = self.quiet_run.saturating_add(1);
        } else {
            self.quiet_run = 0;
        }
    }

    fn note_correction(&mut self, delta_us: i64) {
        self.pause_inserts = 0;
        self.headroom_offset += delta_us;
        self.since_correction = 0;
        self.correction_wait = 0;
    }

    /// Take the next frame (`out.len()` samples at the decoder's output rate) at `now`.
    pub fn pop(
        &mut self,
        now: Instant,
        out: &mut [i16],
        dec: &mut dyn PlayoutDecoder,
    ) -> FrameKind {
        self.out_rate = dec.output_rate().max(1);
        if self.plc.rate() != self.out_rate {
            self.plc = Plc::new(self.out_rate);
        }
        let want = out.len();
        self.frame_us = (want as u64 * 1_000_000 / u64::from(self.out_rate)).max(1);
        if !self.started {
            let Some(first) = self.first_arrival else {
                return Self::silence(out);
            };
            // Started now, the newest packet's headroom is what is buffered plus how long it
            // has already waited: start when that reaches the target (within half a frame).
            let target = Duration::from_micros(self.target_us as u64);
            let age = self
                .last_arrival
                .map_or(0, |t| now.saturating_duration_since(t).as_micros() as u64);
            let enough = self.buffered_us + age + self.frame_us / 2 >= self.target_us as u64;
            let waited = now.saturating_duration_since(first) >= target;
            if self.packets.is_empty() || !(enough || waited) {
                return Self::silence(out);
            }
            self.stop_playing();
            self.started = true;
            self.next = self.packets.keys().next().copied();
        }
        self.last_pop = Some(now);

        // Delay control (module docs).
        let deferred = self.correction_deferred();
        let wanted = if deferred {
            None
        } else {
            self.wanted_correction()
        };
        match wanted {
            Some((_, urgent)) => {
                self.correction_wait += 1;
                if urgent {
                    self.correction_wait = u32::MAX / 2;
                }
            }
            None if deferred => {}
            None => self.correction_wait = 0,
        }
        if let Some((Correction::Insert, _)) = wanted {
            let ready = self.carry.is_empty()
                && (self.quiet_run >= QUIET_RUN_INSERT
                    || self.correction_wait > INSERT_WAIT_FRAMES);
            if ready {
                tracing::debug!(
                    delay_ms = self.delay_ms(),
                    target_ms = self.target_ms(),
                    waited = self.correction_wait,
                    "jitter buffer: frame inserted"
                );
                let run = if self.quiet_run >= QUIET_RUN_INSERT {
                    self.pause_inserts + 1
                } else {
                    0
                };
                self.plc.fill(out);
                self.note_output(out);
                self.stats.frames_stretched += 1;
                self.stats.concealed += 1;
                self.note_correction(self.frame_us as i64);
                self.pause_inserts = run;
                return FrameKind::Concealed;
            }
        }

        let mut concealed = self.fill(want, true, dec);
        // Still wanted after the fill: a loss found there can take back the delay an
        // underflow frame added before it.
        let drop_wanted = matches!(wanted, Some((Correction::Drop, _)))
            && !self.correction_deferred()
            && matches!(self.wanted_correction(), Some((Correction::Drop, _)));
        if drop_wanted && self.carry.len() >= want {
            self.fill(2 * want, false, dec);
            if self.carry.len() >= 2 * want {
                let p = self
                    .carry
                    .iter()
                    .take(2 * want)
                    .map(|&x| f64::from(x).powi(2));
                let p = p.sum::<f64>() / (2 * want) as f64;
                let quiet = self.quiet_run >= QUIET_RUN_DROP && self.is_quiet(p);
                if quiet || self.correction_wait > DROP_WAIT_FRAMES {
                    tracing::debug!(
                        delay_ms = self.delay_ms(),
                        target_ms = self.target_ms(),
                        waited = self.correction_wait,
                        "jitter buffer: frame dropped"
                    );
                    self.drop_frame(want);
                    self.stats.frames_dropped += 1;
                    self.note_correction(-(self.frame_us as i64));
                }
            }
        }

        if self.carry.len() < want {
            // Underflow: conceal without moving the play position (module docs).
            let missing = want - self.carry.len();
            self.conceal_into_carry(missing, dec);
            let us = missing as u64 * 1_000_000 / u64::from(self.out_rate);
            self.owed_us += us;
            if !self.grace {
                self.headroom_offset += us as i64;
            }
            self.underflow_run += 1;
            self.stats.underflows += 1;
            tracing::debug!(
                delay_ms = self.delay_ms(),
                target_ms = self.target_ms(),
                next = ?self.next,
                "jitter buffer: underflow"
            );
            concealed = true;
            if self.underflow_run >= UNDERFLOW_RESTART {
                tracing::debug!("jitter buffer ran dry: prefilling again");
                self.stop_playing();
                self.first_arrival = None;
            }
        } else {
            self.underflow_run = 0;
        }
        for (o, s) in out.iter_mut().zip(self.carry.drain(..want)) {
            *o = s;
        }
        self.note_output(out);
        if concealed {
            self.stats.concealed += 1;
            FrameKind::Concealed
        } else {
            self.stats.played += 1;
            FrameKind::Audio
        }
    }

    /// Skip the frame after the next one in the carry: the next frame's start is cross-faded
    /// into the skipped frame's successor.
    fn drop_frame(&mut self, want: usize) {
        let fade = (DROP_FADE_US * u64::from(self.out_rate) / 1_000_000).max(1) as usize;
        let fade = fade.min(want);
        for i in 0..fade {
            let w = (i + 1) as f32 / (fade + 1) as f32;
            let old = f32::from(self.carry[i]);
            let new = f32::from(self.carry[want + i]);
            self.carry[want + i] = (old * (1.0 - w) + new * w).round() as i16;
        }
        self.carry.drain(..want);
    }

    /// Decode packets into the carry until it holds `want` samples or nothing is buffered;
    /// with `allow_loss` a missing packet with later ones buffered is declared lost and
    /// concealed (its playout time has come). Returns whether any of it was concealed.
    fn fill(&mut self, want: usize, allow_loss: bool, dec: &mut dyn PlayoutDecoder) -> bool {
        let mut concealed = false;
        while self.carry.len() < want {
            let Some(next) = self.next else { break };
            if let Some(e) = self.packets.remove(&next) {
                self.buffered_us -= e.duration_us;
                self.next = Some(next + 1);
                // A late packet after underflow concealment: the delay grew by it.
                if self.grace {
                    self.headroom_offset += self.owed_us as i64;
                    self.grace = false;
                }
                self.owed_us = 0;
                self.play_entry(&e, dec);
                continue;
            }
            let Some(&oldest) = self.packets.keys().next() else {
                break; // underflow: keep the position, the packet may still come
            };
            if !allow_loss {
                break;
            }
            let span = (oldest - next) as u64 * self.last_packet_us;
            let cap = u64::from(self.cfg.max_ms.saturating_add(HOLD_MARGIN_MS)) * 1000;
            if span > cap {
                tracing::debug!(gap = oldest - next, "sequence jump: skipping ahead");
                self.next = Some(oldest);
                self.owed_us = 0;
                self.grace = false;
                self.headroom.clear();
                continue;
            }
            let slot = self.last_packet_us;
            let samples = self.samples_of(slot);
            // Rebuilt from the next packet's FEC if it can be.
            let mut recovered = false;
            if self.owed_us * 2 < slot {
                if let Some(e) = self.packets.get(&(next + 1)).filter(|e| !e.filler) {
                    let mut buf = std::mem::take(&mut self.scratch);
                    buf.clear();
                    if dec.recover(e.pt, &e.payload, samples, &mut buf) && !buf.is_empty() {
                        self.plc.received(&mut buf);
                        self.carry.extend(buf.iter().copied());
                        self.stats.fec_recovered += 1;
                        recovered = true;
                    }
                    self.scratch = buf;
                }
                if !recovered && self.owed_us == 0 && self.cfg.adaptive {
                    // Grace frame: conceal this frame as an underflow (the play position
                    // stays), so a packet that is only reordered still plays if it comes
                    // within the frame. If it does not, the concealment stands for it.
                    self.stats.grace_waits += 1;
                    self.grace = true;
                    break;
                }
            }
            self.stats.lost += 1;
            tracing::debug!(
                seq = next,
                owed_us = self.owed_us,
                delay_ms = self.delay_ms(),
                target_ms = self.target_ms(),
                "jitter buffer: packet missing at playout"
            );
            self.next = Some(next + 1);
            if recovered {
                self.owed_us = 0;
                self.grace = false;
                continue;
            }
            if self.owed_us * 2 >= slot {
                // Already concealed while the buffer was empty: not again (module docs).
                self.owed_us = self.owed_us.saturating_sub(slot);
                if !std::mem::take(&mut self.grace) {
                    self.headroom_offset -= slot as i64;
                }
                self.stats.loss_already_concealed += 1;
                continue;
            }
            self.owed_us = 0;
            self.grace = false;
            self.conceal_into_carry(samples, dec);
            concealed = true;
        }
        concealed
    }

    fn play_entry(&mut self, e: &Entry, dec: &mut dyn PlayoutDecoder) {
        let samples = self.samples_of(e.duration_us);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        if e.filler {
            buf.resize(samples, 0);
        } else {
            self.last_packet_us = e.duration_us;
            self.last_pt = Some(e.pt);
            if !dec.decode(e.pt, &e.payload, &mut buf) || buf.is_empty() {
                buf.clear();
                self.scratch = buf;
                self.conceal_into_carry(samples, dec);
                return;
            }
        }
        self.plc.received(&mut buf);
        self.carry.extend(buf.iter().copied());
        self.scratch = buf;
    }

    fn samples_of(&self, us: u64) -> usize {
        (us * u64::from(self.out_rate) / 1_000_000) as usize
    }

    fn silence(out: &mut [i16]) -> FrameKind {
        out.fill(0);
        FrameKind::Silence
    }

    /// Append `len` samples of concealment: the codec's own if it has one, else waveform
    /// substitution ([`plc`]); silence when concealment is off.
    fn conceal_into_carry(&mut self, len: usize, dec: &mut dyn PlayoutDecoder) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        if !self.cfg.plc {
            buf.resize(len, 0);
            self.plc.received(&mut buf);
        } else if self
            .last_pt
            .is_some_and(|pt| dec.conceal(pt, len, &mut buf) && !buf.is_empty())
        {
            buf.resize(len, 0);
            self.plc.received(&mut buf);
            self.stats.codec_concealed += 1;
        } else {
            buf.clear();
            buf.resize(len, 0);
            self.plc.fill(&mut buf);
            self.stats.plc_concealed += 1;
        }
        self.carry.extend(buf.iter().copied());
        self.scratch = buf;
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;
