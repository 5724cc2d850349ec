//! In-band DTMF detection on decoded receive audio, for peers that send the tones inside the
//! audio instead of RFC 4733 telephone-events.
//!
//! DTMF (ITU-T Q.23) sends one tone of the low group (697, 770, 852, 941 Hz: the row) and one of
//! the high group (1209, 1336, 1477, 1633 Hz: the column) at the same time. The receiver rules
//! follow ITU-T Q.24 in spirit (its limits differ per administration; ours are the common
//! middle ground):
//!
//! - **Analysis**: the audio is cut into blocks of 12.75 ms (102 samples at 8 kHz, the same
//!   duration at other rates) and the energy at the eight frequencies is measured with the
//!   Goertzel algorithm. A block "holds" a digit when
//!   - the strongest row and the strongest column tone each reach [`InbandConfig::min_level_dbm0`]
//!     (Q.24: signals well below -25 dBm0 per frequency must not operate the receiver),
//!   - the **twist** (level difference between the two tones) is within
//!     [`InbandConfig::normal_twist_db`] (high group weaker) and
//!     [`InbandConfig::reverse_twist_db`] (low group weaker),
//!   - each tone is at least [`InbandConfig::peak_ratio_db`] above every other tone of its group,
//!   - the two tones carry at least [`InbandConfig::min_tone_share`] of the block's energy, which
//!     rejects speech, music and noise whose energy is spread over the band.
//! - **Minimum duration**: a digit is reported after [`InbandConfig::on_blocks`] consecutive
//!   blocks hold it (2 blocks = 25.5 ms: Q.24 requires acceptance from 40 ms and rejection
//!   below about 20-25 ms).
//! - **Inter-digit gap**: the digit ends after [`InbandConfig::off_blocks`] consecutive blocks
//!   without it; a shorter interruption (a lost packet) does not split the digit. The same
//!   digit is reported again only after such a gap (Q.24: pauses from 40 ms must be recognised).
//!
//! The detector reports each digit once, at its start, as the RFC 4733 receiver does
//! ([`crate::MediaEvent::DtmfReceived`]). [`InbandDtmfGenerator`] is the sending side: tones
//! that replace the captured audio while digits play.

/// The 16 DTMF digits by row (low group) and column (high group), ITU-T Q.23 table 1.
const DIGITS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Low group (row) frequencies in Hz.
pub const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// High group (column) frequencies in Hz.
pub const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The row and column frequencies of a digit (`0-9`, `*`, `#`, `A-D`), for tone generators.
pub fn digit_frequencies(digit: char) -> Option<(f64, f64)> {
    let d = digit.to_ascii_uppercase();
    DIGITS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&c| c == d)
            .and_then(|c| Some((*ROWS.get(r)?, *COLS.get(c)?)))
    })
}

/// Detector thresholds (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandConfig {
    /// Weakest tone accepted, per frequency, in dBm0 (0 dBm0 = a sine 3.14 dB below the
    /// full-scale sine of 16-bit PCM, G.711 convention).
    pub min_level_dbm0: f64,
    /// Largest level by which the high-group tone may be weaker than the low-group tone, dB.
    pub normal_twist_db: f64,
    /// Largest level by which the low-group tone may be weaker than the high-group tone, dB.
    pub reverse_twist_db: f64,
    /// How far each tone must stand above the other tones of its group, dB.
    pub peak_ratio_db: f64,
    /// Least share of the block energy in the two tones (0..1).
    pub min_tone_share: f64,
    /// Consecutive blocks (12.75 ms each) that must hold a digit before it is reported.
    pub on_blocks: u32,
    /// Consecutive blocks without the digit that end it.
    pub off_blocks: u32,
}

impl Default for InbandConfig {
    fn default() -> Self {
        InbandConfig {
            min_level_dbm0: -36.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 8.0,
            peak_ratio_db: 8.0,
            min_tone_share: 0.7,
            on_blocks: 2,
            off_blocks: 2,
        }
    }
}

/// Block duration in microseconds (102 samples at 8 kHz).
const BLOCK_US: u64 = 12_750;
/// Mean square of a 0 dBm0 sine in 16-bit PCM: the full-scale sine (32767 peak) is +3.14 dBm0
/// (ITU-T G.711 §7).
const DBM0_MEAN_SQUARE: f64 = 32767.0 * 32767.0 / 2.0 / 2.0606;

/// Goertzel detector of DTMF digits in mono 16-bit PCM at any rate from 8 kHz up.
#[derive(Debug, Clone)]
pub struct InbandDtmfDetector {
    cfg: InbandConfig,
    block: usize,
    /// 2 cos(2 pi f / rate) for the 4 rows then the 4 columns.
    coeffs: [f64; 8],
    /// Goertzel state (s1, s2) per frequency.
    state: [(f64, f64); 8],
    energy: f64,
    filled: usize,
    /// Digit held by the last blocks and for how many blocks.
    candidate: Option<char>,
    candidate_blocks: u32,
    /// The digit reported and not yet ended.
    current: Option<char>,
    off_count: u32,
    min_mean_square: f64,
}

impl InbandDtmfDetector {
    /// A detector for PCM at `rate` Hz with the default thresholds.
    pub fn new(rate: u32) -> InbandDtmfDetector {
        InbandDtmfDetector::with_config(rate, InbandConfig::default())
    }

    /// A detector for PCM at `rate` Hz (at least 4000; lower rates are treated as 8000).
    pub fn with_config(rate: u32, cfg: InbandConfig) -> InbandDtmfDetector {
        let rate = if rate < 4000 { 8000 } else { rate };
        let block = (u64::from(rate) * BLOCK_US / 1_000_000).max(1) as usize;
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f64::consts::PI * f / f64::from(rate)).cos();
        }
        InbandDtmfDetector {
            cfg,
            block,
            coeffs,
            state: [(0.0, 0.0); 8],
            energy: 0.0,
            filled: 0,
            candidate: None,
            candidate_blocks: 0,
            current: None,
            off_count: 0,
            min_mean_square: DBM0_MEAN_SQUARE * 10f64.powf(cfg.min_level_dbm0 / 10.0),
        }
    }

    /// Feed PCM; digits whose start was recognised in it are appended to `digits`.
    pub fn process(&mut self, pcm: &[i16], digits: &mut Vec<char>) {
        for &x in pcm {
            let x = f64::from(x);
            self.energy += x * x;
            for (st, c) in self.state.iter_mut().zip(self.coeffs.iter()) {
                let s0 = x + c * st.0 - st.1;
                st.1 = st.0;
                st.0 = s0;
            }
            self.filled += 1;
            if self.filled == self.block {
                let held = self.analyse();
                self.state = [(0.0, 0.0); 8];
                self.energy = 0.0;
                self.filled = 0;
                if let Some(d) = self.step(held) {
                    digits.push(d);
                }
            }
        }
    }

    /// The digit one full block holds, if any.
    fn analyse(&self) -> Option<char> {
        let n = self.block as f64;
        // Mean square of a sine at each frequency: amplitude 2|X|/N, power A^2/2.
        let mut p = [0.0f64; 8];
        for ((pi, st), c) in p.iter_mut().zip(self.state.iter()).zip(self.coeffs.iter()) {
            let mag2 = st.0 * st.0 + st.1 * st.1 - c * st.0 * st.1;
            *pi = 2.0 * mag2.max(0.0) / (n * n);
        }
        let (rows, cols) = p.split_at(4);
        let best = |g: &[f64]| {
            g.iter().enumerate().fold(
                (0usize, 0.0f64),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            )
        };
        let (r, pr) = best(rows);
        let (c, pc) = best(cols);
        if pr < self.min_mean_square || pc < self.min_mean_square {
            return None;
        }
        let db = |a: f64, b: f64| 10.0 * (a / b).log10();
        // Twist: high group weaker (normal) or low group weaker (reverse).
        if db(pr, pc) > self.cfg.normal_twist_db || db(pc, pr) > self.cfg.reverse_twist_db {
            return None;
        }
        let peak_ok = |g: &[f64], i: usize, v: f64| {
            g.iter()
                .enumerate()
                .all(|(j, &o)| j == i || db(v, o.max(1e-9)) >= self.cfg.peak_ratio_db)
        };
        if !peak_ok(rows, r, pr) || !peak_ok(cols, c, pc) {
            return None;
        }
        let mean_square = self.energy / n;
        if pr + pc < self.cfg.min_tone_share * mean_square {
            return None;
        }
        DIGITS.get(r).and_then(|row| row.get(c)).copied()
    }

    /// Advance the duration and gap logic by one block; returns a newly started digit.
    fn step(&mut self, held: Option<char>) -> Option<char> {
        if held.is_some() && held == self.candidate {
            self.candidate_blocks = self.candidate_blocks.saturating_add(1);
        } else {
            self.candidate = held;
            self.candidate_blocks = u32::from(held.is_some());
        }
        let confirmed = self.candidate_blocks >= self.cfg.on_blocks.max(1);
        if let Some(cur) = self.current {
            if held == Some(cur) {
                self.off_count = 0;
                return None;
            }
            self.off_count += 1;
            // The digit ends after the gap, or at once when another digit is confirmed.
            if self.off_count < self.cfg.off_blocks.max(1) && !(held.is_some() && confirmed) {
                return None;
            }
            self.current = None;
            self.off_count = 0;
        }
        if confirmed {
            self.current = self.candidate;
            return self.current;
        }
        None
    }
}

/// Tone and pause lengths and levels of the digits we send in-band (ITU-T Q.23: about
/// -7 dBm0 for the low group and 2 dB more for the high group, which line filters attenuate
/// more; 100 ms on and 70 ms off, well above the Q.24 minimums of 40 ms).
const SEND_ON_MS: u32 = 100;
const SEND_OFF_MS: u32 = 70;
const SEND_LOW_DBM0: f64 = -7.0;
const SEND_HIGH_DBM0: f64 = -5.0;
/// Most digits waiting to be sent.
const SEND_QUEUE_MAX: usize = 64;

/// Generates DTMF tones into the audio we send (the in-band `dtmfmode` values): queued digits
/// replace the captured audio, each for 100 ms followed by 70 ms of silence.
#[derive(Debug, Clone)]
pub struct InbandDtmfGenerator {
    rate: u32,
    queue: std::collections::VecDeque<char>,
    /// The digit being played: its frequencies and the samples of tone and pause left.
    current: Option<((f64, f64), usize, usize)>,
    /// Sample index within the current tone (for the phase).
    n: u64,
}

impl InbandDtmfGenerator {
    /// A generator for PCM at `rate` Hz.
    pub fn new(rate: u32) -> InbandDtmfGenerator {
        InbandDtmfGenerator {
            rate: rate.max(8000),
            queue: std::collections::VecDeque::new(),
            current: None,
            n: 0,
        }
    }

    /// Queue digits (`0-9 * # A-D`, case-insensitive; others are skipped). Returns how many
    /// were queued (the queue holds at most 64).
    pub fn queue(&mut self, digits: &str) -> usize {
        let mut n = 0;
        for d in digits.chars().filter(|d| digit_frequencies(*d).is_some()) {
            if self.queue.len() >= SEND_QUEUE_MAX {
                break;
            }
            self.queue.push_back(d);
            n += 1;
        }
        n
    }

    /// Whether digits are being played or waiting.
    pub fn is_busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// Put the tones into `frame` (replacing its samples while a digit or its pause plays).
    /// Returns whether the frame was changed.
    pub fn fill(&mut self, frame: &mut [i16]) -> bool {
        if !self.is_busy() {
            return false;
        }
        let rate = f64::from(self.rate);
        let a_low = amplitude_dbm0(SEND_LOW_DBM0);
        let a_high = amplitude_dbm0(SEND_HIGH_DBM0);
        for s in frame.iter_mut() {
            if self.current.is_none() {
                let Some(d) = self.queue.pop_front() else {
                    break;
                };
                let Some(f) = digit_frequencies(d) else {
                    continue;
                };
                let on = (self.rate * SEND_ON_MS / 1000) as usize;
                let off = (self.rate * SEND_OFF_MS / 1000) as usize;
                self.current = Some((f, on, off));
                self.n = 0;
            }
            let Some(((fl, fh), on, off)) = self.current.as_mut() else {
                break;
            };
            if *on > 0 {
                let t = self.n as f64 / rate;
                let v = a_low * (2.0 * std::f64::consts::PI * *fl * t).sin()
                    + a_high * (2.0 * std::f64::consts::PI * *fh * t).sin();
                *s = v.clamp(-32768.0, 32767.0) as i16;
                *on -= 1;
                self.n += 1;
            } else {
                *s = 0;
                *off = off.saturating_sub(1);
                if *off == 0 {
                    self.current = None;
                }
            }
        }
        true
    }
}

/// Peak amplitude of a sine at `dbm0`.
fn amplitude_dbm0(dbm0: f64) -> f64 {
    (2.0 * DBM0_MEAN_SQUARE * 10f64.powf(dbm0 / 10.0)).sqrt()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A tone generator appending `ms` of `freqs` (amplitude per tone) at `rate`.
    struct Gen {
        rate: u32,
        t: u64,
        out: Vec<i16>,
        noise: f64,
        seed: u32,
    }

    impl Gen {
        fn new(rate: u32) -> Gen {
            Gen {
                rate,
                t: 0,
                out: Vec::new(),
                noise: 0.0,
                seed: 1,
            }
        }

        fn rand(&mut self) -> f64 {
            self.seed = self.seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            f64::from((self.seed >> 8) & 0xffff) / 32768.0 - 1.0
        }

        fn add(&mut self, ms: u32, tones: &[(f64, f64)]) {
            let n = u64::from(self.rate) * u64::from(ms) / 1000;
            for _ in 0..n {
                let t = self.t as f64 / f64::from(self.rate);
                let mut v: f64 = tones
                    .iter()
                    .map(|(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin())
                    .sum();
                if self.noise > 0.0 {
                    // Sum of uniforms: roughly Gaussian, RMS = noise.
                    let u = (0..3).map(|_| self.rand()).sum::<f64>();
                    v += u * self.noise;
                }
                self.out.push(v.clamp(-32768.0, 32767.0) as i16);
                self.t += 1;
            }
        }

        fn digit(&mut self, d: char, ms: u32, amp: f64) {
            let (r, c) = digit_frequencies(d).unwrap();
            self.add(ms, &[(r, amp), (c, amp)]);
        }

        fn silence(&mut self, ms: u32) {
            self.add(ms, &[]);
        }
    }

    /// Amplitude of a sine at `dbm0`.
    fn amp(dbm0: f64) -> f64 {
        (2.0 * DBM0_MEAN_SQUARE * 10f64.powf(dbm0 / 10.0)).sqrt()
    }

    fn detect(rate: u32, pcm: &[i16]) -> String {
        let mut det = InbandDtmfDetector::new(rate);
        let mut out = Vec::new();
        // Feed in 20 ms frames, as the pipeline does.
        for frame in pcm.chunks(rate as usize / 50) {
            det.process(frame, &mut out);
        }
        out.into_iter().collect()
    }

    const ALL: &str = "123A456B789C*0#D";

    #[test]
    fn every_digit_at_8_16_32_and_48_khz() {
        for rate in [8000, 16000, 32000, 48000] {
            let mut g = Gen::new(rate);
            g.silence(30);
            for d in ALL.chars() {
                g.digit(d, 50, amp(-10.0));
                g.silence(50);
            }
            assert_eq!(detect(rate, &g.out), ALL, "{rate} Hz");
        }
    }

    #[test]
    fn tones_in_noise_are_found() {
        let mut g = Gen::new(8000);
        g.noise = amp(-30.0) / std::f64::consts::SQRT_2;
        g.silence(100);
        for d in "159#".chars() {
            g.digit(d, 60, amp(-12.0));
            g.silence(60);
        }
        assert_eq!(detect(8000, &g.out), "159#");
    }

    #[test]
    fn minimum_duration_and_level() {
        // 40 ms is accepted, 15 ms rejected (Q.24).
        let mut g = Gen::new(8000);
        g.digit('5', 40, amp(-10.0));
        g.silence(60);
        g.digit('7', 15, amp(-10.0));
        g.silence(60);
        assert_eq!(detect(8000, &g.out), "5");
        // Below the minimum level: nothing; just above: found.
        let mut g = Gen::new(8000);
        g.digit('1', 80, amp(-42.0));
        g.silence(60);
        g.digit('2', 80, amp(-30.0));
        g.silence(60);
        assert_eq!(detect(8000, &g.out), "2");
    }

    #[test]
    fn twist_limits() {
        let (r, c) = digit_frequencies('8').unwrap();
        let mut g = Gen::new(8000);
        // High group 6 dB weaker: accepted.
        g.add(60, &[(r, amp(-10.0)), (c, amp(-16.0))]);
        g.silence(60);
        // High group 12 dB weaker: rejected.
        g.add(60, &[(r, amp(-10.0)), (c, amp(-22.0))]);
        g.silence(60);
        // Low group 12 dB weaker: rejected.
        g.add(60, &[(r, amp(-22.0)), (c, amp(-10.0))]);
        g.silence(60);
        assert_eq!(detect(8000, &g.out), "8");
    }

    #[test]
    fn inter_digit_gap_and_dropouts() {
        let mut g = Gen::new(8000);
        // The same digit twice with a 45 ms pause: two digits.
        g.digit('3', 60, amp(-10.0));
        g.silence(45);
        g.digit('3', 60, amp(-10.0));
        g.silence(60);
        // A 5 ms dropout inside a digit: one digit.
        g.digit('9', 50, amp(-10.0));
        g.silence(5);
        g.digit('9', 50, amp(-10.0));
        g.silence(60);
        // Two digits back to back without a pause: both.
        g.digit('4', 60, amp(-10.0));
        g.digit('6', 60, amp(-10.0));
        g.silence(60);
        assert_eq!(detect(8000, &g.out), "33946");
    }

    #[test]
    fn speech_like_music_and_single_tones_are_not_digits() {
        let rate = 8000;
        let mut g = Gen::new(rate);
        // Voiced speech-like signal: harmonics of a gliding 100-220 Hz pitch with a formant
        // envelope (peaks near 700 and 1200 Hz, where DTMF lives), 3 s.
        for step in 0..150u32 {
            let f0 = 100.0 + 120.0 * f64::from(step % 30) / 30.0;
            let tones: Vec<(f64, f64)> = (1..=30)
                .map(|k| {
                    let f = f0 * f64::from(k);
                    let env = 1.0 / (1.0 + ((f - 700.0) / 150.0).powi(2))
                        + 0.7 / (1.0 + ((f - 1200.0) / 200.0).powi(2))
                        + 0.1;
                    (f, amp(-14.0) * env)
                })
                .filter(|(f, _)| *f < 3800.0)
                .collect();
            g.add(20, &tones);
        }
        // Single tones (dial tone, one DTMF half) and a non-DTMF chord.
        g.add(300, &[(425.0, amp(-10.0))]);
        g.add(300, &[(770.0, amp(-10.0))]);
        g.add(300, &[(1336.0, amp(-10.0))]);
        g.add(300, &[(600.0, amp(-10.0)), (1500.0, amp(-10.0))]);
        // A DTMF pair buried in loud noise (tones carry well under 70 % of the energy).
        g.noise = amp(-6.0);
        g.digit('0', 200, amp(-20.0));
        g.noise = 0.0;
        // Loud white noise alone.
        g.noise = amp(-3.0);
        g.silence(1000);
        assert_eq!(detect(rate, &g.out), "");
    }

    #[test]
    fn digits_survive_the_narrowband_codecs() {
        use crate::codec::{new_decoder, new_encoder, CodecConfig};
        use crate::Codec;
        for codec in [
            Codec::Pcmu,
            Codec::Gsm,
            Codec::G729,
            Codec::Speex,
            Codec::G722,
        ] {
            let rate = codec.audio_rate();
            let mut g = Gen::new(rate);
            g.silence(40);
            // Senders use 70-100 ms; vocoders (GSM) need a block or two to settle on a tone.
            for d in ALL.chars() {
                g.digit(d, 80, amp(-10.0));
                g.silence(60);
            }
            let frame = codec.frame_samples(20);
            let mut enc = new_encoder(codec, &CodecConfig::default()).unwrap();
            let mut dec = new_decoder(codec).unwrap();
            let mut out = Vec::new();
            for chunk in g.out.chunks_exact(frame) {
                let mut p = Vec::new();
                enc.encode(chunk, &mut p).unwrap();
                dec.decode(&p, &mut out).unwrap();
            }
            assert_eq!(detect(rate, &out), ALL, "{codec:?}");
        }
    }

    /// A source playing prepared PCM, then silence.
    struct Play(Vec<i16>, usize);
    impl crate::PcmSource for Play {
        fn read_frame(&mut self, out: &mut [i16]) {
            for s in out.iter_mut() {
                *s = self.0.get(self.1).copied().unwrap_or(0);
                self.1 += 1;
            }
        }
    }

    /// Two pipelines over G.729 (or `codec`): A plays tones, B receives; B's events.
    fn call_with_tones(codec: crate::Codec, pt: u8, te: Option<u8>) -> Vec<crate::MediaEvent> {
        use crate::pipeline::{MediaPipeline, PipelineConfig};
        use std::time::{Duration, Instant};
        let mut g = Gen::new(codec.audio_rate());
        g.silence(100);
        for d in "42#".chars() {
            g.digit(d, 100, amp(-10.0));
            g.silence(100);
        }
        let neg = |port: u16| crate::Negotiated {
            remote_rtp: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            codec,
            payload_type: pt,
            telephone_event_pt: te,
            direction: crate::Direction::SendRecv,
            ptime_ms: 20,
            srtp: None,
            dtls: None,
            rtcp_mux: false,
            send_limits: Default::default(),
        };
        let t0 = Instant::now();
        let cfg = PipelineConfig::default();
        let mut a = MediaPipeline::new(
            neg(4002),
            Box::new(Play(g.out, 0)),
            Box::new(crate::NullSink),
            cfg,
            t0,
        );
        let mut b = MediaPipeline::new(
            neg(4000),
            Box::new(crate::SilenceSource),
            Box::new(crate::NullSink),
            cfg,
            t0,
        );
        let from_a = std::net::SocketAddr::from(([127, 0, 0, 1], 4000));
        for i in 0..60u64 {
            let now = t0 + Duration::from_millis(20 * i);
            for o in a.on_tick(now) {
                b.on_packet(&o.data, from_a, now);
            }
            b.playout(now);
        }
        b.take_events()
    }

    #[test]
    fn pipeline_sends_in_band_digits_that_the_other_pipeline_detects() {
        use crate::pipeline::{MediaPipeline, PipelineConfig};
        use crate::{Codec, MediaEvent};
        use std::time::{Duration, Instant};
        for (codec, pt) in [(Codec::G729, 18), (Codec::SpeexWb, 98), (Codec::Opus, 111)] {
            let neg = |port: u16| crate::Negotiated {
                remote_rtp: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                codec,
                payload_type: pt,
                telephone_event_pt: None,
                direction: crate::Direction::SendRecv,
                ptime_ms: 20,
                srtp: None,
                dtls: None,
                rtcp_mux: false,
                send_limits: Default::default(),
            };
            let t0 = Instant::now();
            let cfg = PipelineConfig::default();
            let mut a = MediaPipeline::new(
                neg(4002),
                Box::new(crate::SilenceSource),
                Box::new(crate::NullSink),
                cfg,
                t0,
            );
            let mut b = MediaPipeline::new(
                neg(4000),
                Box::new(crate::SilenceSource),
                Box::new(crate::NullSink),
                cfg,
                t0,
            );
            // Not sent as RFC 4733 (nothing negotiated), but in-band.
            assert_eq!(a.send_dtmf("1"), 0);
            assert_eq!(a.send_dtmf_inband("7*0"), 3);
            let from_a = std::net::SocketAddr::from(([127, 0, 0, 1], 4000));
            for i in 0..50u64 {
                let now = t0 + Duration::from_millis(20 * i);
                for o in a.on_tick(now) {
                    b.on_packet(&o.data, from_a, now);
                }
                b.playout(now);
            }
            let want: Vec<MediaEvent> = "7*0".chars().map(MediaEvent::DtmfReceived).collect();
            assert_eq!(b.take_events(), want, "{codec:?}");
        }
    }

    #[test]
    fn pipeline_reports_in_band_digits_only_without_telephone_event() {
        use crate::{Codec, MediaEvent};
        let want: Vec<MediaEvent> = "42#".chars().map(MediaEvent::DtmfReceived).collect();
        assert_eq!(call_with_tones(Codec::G729, 18, None), want);
        assert_eq!(call_with_tones(Codec::Pcmu, 0, None), want);
        // With telephone-event negotiated the peer signals digits out of band: no detection.
        assert_eq!(call_with_tones(Codec::Pcmu, 0, Some(101)), vec![]);
    }

    /// Talk-off: synthetic speech (espeak-ng, several voices and pitches, counting and reading
    /// digits aloud) must not produce digits; and digits over that speech are still found.
    #[test]
    fn espeak_speech_is_not_taken_for_digits() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let text = "One, two, three, four, five, six, seven, eight, nine, zero, star, hash. \
                    Please press one for sales. Hello, this is a test of the telephone line. \
                    Seven hundred and seventy, eight hundred fifty two, nine hundred forty one.";
        let mut speech = Vec::new();
        let mut rate = 0;
        for args in [
            ["-v", "en", "-p", "50"],
            ["-v", "en+f3", "-p", "70"],
            ["-v", "de", "-p", "30"],
        ] {
            let out = match std::process::Command::new("espeak-ng")
                .args(args)
                .args(["-s", "160", "--stdout", text])
                .output()
            {
                Ok(o) if o.status.success() && o.stdout.len() > 44 => o.stdout,
                other => {
                    assert!(!ci, "CI=true and espeak-ng is missing: {other:?}");
                    eprintln!("SKIP: espeak-ng not available ({other:?})");
                    return;
                }
            };
            // RIFF header: sample rate at offset 24, PCM data after the 44-octet header.
            rate = u32::from_le_bytes([out[24], out[25], out[26], out[27]]);
            speech.extend(
                out[44..]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
        }
        assert!(speech.len() > rate as usize * 10, "too little speech");
        assert_eq!(detect(rate, &speech), "", "talk-off on espeak-ng speech");

        // Digits at -10 dBm0 over the same speech 12 dB quieter (espeak-ng speaks near full
        // scale; at full level the speech sometimes masks a digit, as a receiver may).
        let mut mixed: Vec<i16> = speech.iter().map(|&v| v / 4).collect();
        let mut g = Gen::new(rate);
        for d in "2580".chars() {
            g.silence(900);
            g.digit(d, 100, amp(-10.0));
        }
        for (m, t) in mixed.iter_mut().zip(g.out.iter()) {
            *m = m.saturating_add(*t);
        }
        assert_eq!(detect(rate, &mixed), "2580");
    }

    #[test]
    fn generated_digits_are_detected_at_every_rate_and_through_gsm() {
        for rate in [8000, 16000, 48000] {
            let mut gen = InbandDtmfGenerator::new(rate);
            assert_eq!(gen.queue("12x3A*#d"), 7);
            let frame = rate as usize / 50;
            let mut pcm = Vec::new();
            let mut f = vec![0i16; frame];
            for _ in 0..100 {
                f.fill(7);
                gen.fill(&mut f);
                pcm.extend_from_slice(&f);
            }
            assert!(!gen.is_busy());
            assert_eq!(detect(rate, &pcm), "123A*#D", "{rate} Hz");
            // Idle: the audio passes untouched.
            assert!(!gen.fill(&mut f));
            assert!(f.iter().all(|&v| v == 7));
        }
        use crate::codec::{new_decoder, new_encoder, CodecConfig};
        let mut gen = InbandDtmfGenerator::new(8000);
        gen.queue("0123456789");
        let mut enc = new_encoder(crate::Codec::Gsm, &CodecConfig::default()).unwrap();
        let mut dec = new_decoder(crate::Codec::Gsm).unwrap();
        let mut out = Vec::new();
        for _ in 0..100 {
            let mut f = vec![0i16; 160];
            gen.fill(&mut f);
            let mut p = Vec::new();
            enc.encode(&f, &mut p).unwrap();
            dec.decode(&p, &mut out).unwrap();
        }
        assert_eq!(detect(8000, &out), "0123456789");
    }

    #[test]
    fn frequencies_table() {
        assert_eq!(digit_frequencies('1'), Some((697.0, 1209.0)));
        assert_eq!(digit_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(digit_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(digit_frequencies('x'), None);
    }
}
