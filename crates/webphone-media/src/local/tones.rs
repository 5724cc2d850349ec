//! Call-progress tones, the local ringtone, DTMF feedback, beeps and a WAV-file player, all as
//! [`PcmSource`]s at any sample rate.
//!
//! # Tone plans
//!
//! [`TonePlan::NorthAmerica`] follows the North American precise tone plan (ANSI T1.401 /
//! Telcordia GR-506 frequencies and cadences):
//!
//! | tone | frequencies | cadence |
//! |------|-------------|---------|
//! | dial | 350 + 440 Hz | continuous |
//! | ringback | 440 + 480 Hz | 2 s on, 4 s off |
//! | busy | 480 + 620 Hz | 0.5 s on, 0.5 s off |
//! | reorder (congestion) | 480 + 620 Hz | 0.25 s on, 0.25 s off |
//! | call waiting | 440 Hz | 0.3 s, repeated every 10 s |
//!
//! [`TonePlan::Europe`] follows the 425 Hz tones of ITU-T E.180 as recommended by CEPT/ETSI for
//! European networks:
//!
//! | tone | frequencies | cadence |
//! |------|-------------|---------|
//! | dial | 425 Hz | continuous |
//! | ringback | 425 Hz | 1 s on, 4 s off |
//! | busy | 425 Hz | 0.5 s on, 0.5 s off |
//! | congestion | 425 Hz | 0.25 s on, 0.25 s off |
//! | call waiting | 425 Hz | 0.2 s on, 0.2 s off, 0.2 s on, repeated every 10 s |
//!
//! The 10 s repetition of the call-waiting tone is our choice (the engine stops the tone when the
//! waiting call is answered or gone).
//!
//! Not standardised, our choices: the **ringtone** (played locally for incoming calls when no
//! ring file is configured) is a 20 Hz warble between 800 and 1000 Hz in the ringing cadence of
//! the plan (North America 2 s on / 4 s off, Europe 1 s on / 4 s off); the **incoming beep**
//! (`beeponincoming`) is two 100 ms bursts of 880 Hz 100 ms apart; the **connect beep**
//! (`beeponconnect`) is one 150 ms burst of 1000 Hz.
//!
//! **DTMF feedback** (`playdtmfsound`) uses the ITU-T Q.23 frequency pairs (rows 697, 770, 852,
//! 941 Hz; columns 1209, 1336, 1477, 1633 Hz) for a given duration (100 ms is typical), the high
//! tone 2 dB above the low one as on the line (Q.24 twist).
//!
//! # Levels
//!
//! Single tones are generated at -10 dBm0 (amplitude 7 193, i.e. 0 dBm0 = 3.17 dB below a
//! full-scale sine, G.711), each component of a dual tone at -13 dBm0 (DTMF: -10/-8 dBm0).
//! [`ToneGenerator::with_gain_db`] adjusts this.
//!
//! Bursts fade in and out over 3 ms so cadences do not click; consecutive tone segments (the
//! warble) keep a continuous phase.

use std::path::Path;

use crate::local::resample::Resampler;
use crate::local::to_i16;
use crate::local::wav::{read_wav, WavError};
use crate::PcmSource;

/// A [`PcmSource`] that can end (a one-shot beep, a sound file played once).
pub trait Sound: PcmSource {
    /// Whether everything has been played (a repeating sound never finishes).
    fn is_finished(&self) -> bool;
}

/// Amplitude of a sine at `dbm0` (0 dBm0 is 3.17 dB below a full-scale sine, G.711).
pub fn dbm0_amplitude(dbm0: f32) -> f32 {
    32_767.0 * 10f32.powf((dbm0 - 3.17) / 20.0)
}

/// One part of a cadence: up to two frequencies (0 = unused) for `ms` milliseconds; both zero is
/// silence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// First frequency in Hz (0: none).
    pub f1: f32,
    /// Second frequency in Hz (0: none).
    pub f2: f32,
    /// Peak amplitude of each component (i16 scale).
    pub amplitude: f32,
    /// Duration in milliseconds.
    pub ms: u32,
}

impl Segment {
    /// A tone of one or two frequencies.
    pub fn tone(f1: f32, f2: f32, amplitude: f32, ms: u32) -> Segment {
        Segment {
            f1,
            f2,
            amplitude,
            ms,
        }
    }

    /// Silence.
    pub fn silence(ms: u32) -> Segment {
        Segment {
            f1: 0.0,
            f2: 0.0,
            amplitude: 0.0,
            ms,
        }
    }

    fn is_silent(&self) -> bool {
        self.amplitude == 0.0 || (self.f1 <= 0.0 && self.f2 <= 0.0)
    }
}

/// Which country's call-progress tones to play (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TonePlan {
    /// North American precise tone plan.
    NorthAmerica,
    /// ITU-T E.180 / CEPT 425 Hz tones (the default: most of the world outside North America).
    #[default]
    Europe,
}

/// A call-progress tone kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneKind {
    /// Dial tone.
    Dial,
    /// Ringback (outgoing call ringing at the far end).
    Ringback,
    /// Busy.
    Busy,
    /// Congestion / reorder.
    Congestion,
    /// Call-waiting beep (a second call arrives during a call).
    CallWaiting,
    /// Local ringtone for incoming calls (no ring file configured).
    Ringtone,
    /// `beeponincoming` beep.
    IncomingBeep,
    /// `beeponconnect` beep.
    ConnectBeep,
}

const RAMP_MS: f32 = 3.0;
const WARBLE_MS: u32 = 25;

fn warble(total_ms: u32, amplitude: f32) -> Vec<Segment> {
    (0..total_ms / WARBLE_MS)
        .map(|i| {
            let f = if i % 2 == 0 { 800.0 } else { 1000.0 };
            Segment::tone(f, 0.0, amplitude, WARBLE_MS)
        })
        .collect()
}

impl TonePlan {
    /// The plan for a country code (ISO 3166 alpha-2, case-insensitive): `US`, `CA` and the
    /// other NANP countries give [`TonePlan::NorthAmerica`], everything else [`TonePlan::Europe`].
    pub fn for_country(code: &str) -> TonePlan {
        const NANP: [&str; 6] = ["US", "CA", "PR", "GU", "VI", "AS"];
        if NANP.iter().any(|c| c.eq_ignore_ascii_case(code.trim())) {
            TonePlan::NorthAmerica
        } else {
            TonePlan::Europe
        }
    }

    /// The cadence of `kind` and whether it repeats.
    pub fn cadence(self, kind: ToneKind) -> (Vec<Segment>, bool) {
        let single = dbm0_amplitude(-10.0);
        let dual = dbm0_amplitude(-13.0);
        let na = self == TonePlan::NorthAmerica;
        match kind {
            ToneKind::Dial if na => (vec![Segment::tone(350.0, 440.0, dual, 1000)], true),
            ToneKind::Dial => (vec![Segment::tone(425.0, 0.0, single, 1000)], true),
            ToneKind::Ringback if na => (
                vec![
                    Segment::tone(440.0, 480.0, dual, 2000),
                    Segment::silence(4000),
                ],
                true,
            ),
            ToneKind::Ringback => (
                vec![
                    Segment::tone(425.0, 0.0, single, 1000),
                    Segment::silence(4000),
                ],
                true,
            ),
            ToneKind::Busy | ToneKind::Congestion => {
                let ms = if kind == ToneKind::Busy { 500 } else { 250 };
                let on = if na {
                    Segment::tone(480.0, 620.0, dual, ms)
                } else {
                    Segment::tone(425.0, 0.0, single, ms)
                };
                (vec![on, Segment::silence(ms)], true)
            }
            ToneKind::CallWaiting if na => (
                vec![
                    Segment::tone(440.0, 0.0, single, 300),
                    Segment::silence(9700),
                ],
                true,
            ),
            ToneKind::CallWaiting => (
                vec![
                    Segment::tone(425.0, 0.0, single, 200),
                    Segment::silence(200),
                    Segment::tone(425.0, 0.0, single, 200),
                    Segment::silence(9400),
                ],
                true,
            ),
            ToneKind::Ringtone => {
                let (on, off) = if na { (2000, 4000) } else { (1000, 4000) };
                let mut segs = warble(on, single);
                segs.push(Segment::silence(off));
                (segs, true)
            }
            ToneKind::IncomingBeep => (
                vec![
                    Segment::tone(880.0, 0.0, single, 100),
                    Segment::silence(100),
                    Segment::tone(880.0, 0.0, single, 100),
                ],
                false,
            ),
            ToneKind::ConnectBeep => (vec![Segment::tone(1000.0, 0.0, single, 150)], false),
        }
    }

    /// A generator of `kind` at `rate` Hz.
    pub fn generator(self, kind: ToneKind, rate: u32) -> ToneGenerator {
        let (segments, repeat) = self.cadence(kind);
        ToneGenerator::new(rate, &segments, repeat)
    }
}

/// The Q.23 frequency pair of a DTMF key (`0-9 * # A-D`, case-insensitive).
pub fn dtmf_frequencies(digit: char) -> Option<(f32, f32)> {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let (r, c) = match digit.to_ascii_uppercase() {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        _ => return None,
    };
    Some((ROWS[r], COLS[c]))
}

#[derive(Debug, Clone)]
struct Part {
    step1: f64,
    step2: f64,
    amp1: f32,
    amp2: f32,
    len: u64,
    ramp_in: bool,
    ramp_out: bool,
}

/// A cadenced tone generator (see the module documentation for the standard tones).
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    rate: u32,
    parts: Vec<Part>,
    repeat: bool,
    part: usize,
    pos: u64,
    phase1: f64,
    phase2: f64,
    ramp: f32,
    gain: f32,
    finished: bool,
}

impl ToneGenerator {
    /// Play `segments` at `rate` Hz, once or repeating. Empty or zero-length cadences are
    /// finished at once (silence).
    pub fn new(rate: u32, segments: &[Segment], repeat: bool) -> ToneGenerator {
        let rate = rate.max(1);
        let n = segments.len();
        let silent_at = |i: usize| segments.get(i).is_none_or(Segment::is_silent);
        let parts: Vec<Part> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let prev = if i == 0 {
                    if repeat {
                        n - 1
                    } else {
                        usize::MAX
                    }
                } else {
                    i - 1
                };
                let next = if i + 1 == n {
                    if repeat {
                        0
                    } else {
                        usize::MAX
                    }
                } else {
                    i + 1
                };
                let nyquist = rate as f32 / 2.0;
                let comp = |f: f32| {
                    if f > 0.0 && f < nyquist && !s.is_silent() {
                        (
                            2.0 * std::f64::consts::PI * f64::from(f) / f64::from(rate),
                            s.amplitude,
                        )
                    } else {
                        (0.0, 0.0)
                    }
                };
                let (step1, amp1) = comp(s.f1);
                let (step2, amp2) = comp(s.f2);
                Part {
                    step1,
                    step2,
                    amp1,
                    amp2,
                    len: u64::from(s.ms) * u64::from(rate) / 1000,
                    ramp_in: !s.is_silent() && silent_at(prev),
                    ramp_out: !s.is_silent() && silent_at(next),
                }
            })
            .collect();
        let finished = parts.iter().all(|p| p.len == 0);
        ToneGenerator {
            rate,
            parts,
            repeat,
            part: 0,
            pos: 0,
            phase1: 0.0,
            phase2: 0.0,
            ramp: (RAMP_MS * rate as f32 / 1000.0).max(1.0),
            gain: 1.0,
            finished,
        }
    }

    /// A standard tone (shorthand for [`TonePlan::generator`]).
    pub fn standard(plan: TonePlan, kind: ToneKind, rate: u32) -> ToneGenerator {
        plan.generator(kind, rate)
    }

    /// DTMF feedback for `digit` lasting `ms` milliseconds; `None` for a character that is not
    /// a DTMF key.
    pub fn dtmf(digit: char, rate: u32, ms: u32) -> Option<ToneGenerator> {
        let (lo, hi) = dtmf_frequencies(digit)?;
        // Low and high components at different levels: two segments cannot overlap, so build
        // the pair as one segment and fix the levels afterwards.
        let mut g = ToneGenerator::new(
            rate,
            &[Segment::tone(lo, hi, dbm0_amplitude(-10.0), ms)],
            false,
        );
        if let Some(p) = g.parts.first_mut() {
            p.amp2 = if p.step2 > 0.0 {
                dbm0_amplitude(-8.0)
            } else {
                0.0
            };
        }
        Some(g)
    }

    /// The same generator `db` louder (negative: quieter).
    pub fn with_gain_db(mut self, db: f32) -> ToneGenerator {
        self.gain = 10f32.powf(db / 20.0);
        self
    }

    /// Sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Start again from the beginning of the cadence.
    pub fn restart(&mut self) {
        self.part = 0;
        self.pos = 0;
        self.phase1 = 0.0;
        self.phase2 = 0.0;
        self.finished = self.parts.iter().all(|p| p.len == 0);
    }

    fn advance_part(&mut self) {
        self.pos = 0;
        self.part += 1;
        if self.part >= self.parts.len() {
            if self.repeat {
                self.part = 0;
            } else {
                self.finished = true;
            }
        }
    }
}

impl PcmSource for ToneGenerator {
    fn read_frame(&mut self, out: &mut [i16]) {
        let tau = 2.0 * std::f64::consts::PI;
        let mut i = 0;
        while i < out.len() {
            if self.finished {
                out[i..].fill(0);
                return;
            }
            let Some(p) = self.parts.get(self.part) else {
                self.finished = true;
                continue;
            };
            if self.pos >= p.len {
                self.advance_part();
                continue;
            }
            let n = ((p.len - self.pos) as usize).min(out.len() - i);
            let (step1, step2, amp1, amp2) = (p.step1, p.step2, p.amp1, p.amp2);
            let (ramp_in, ramp_out, len) = (p.ramp_in, p.ramp_out, p.len);
            for o in &mut out[i..i + n] {
                let mut g = self.gain;
                if ramp_in && (self.pos as f32) < self.ramp {
                    g *= self.pos as f32 / self.ramp;
                }
                let left = (len - 1 - self.pos) as f32;
                if ramp_out && left < self.ramp {
                    g *= left / self.ramp;
                }
                let s = amp1 * (self.phase1.sin() as f32) + amp2 * (self.phase2.sin() as f32);
                *o = to_i16(s * g);
                self.phase1 += step1;
                self.phase2 += step2;
                if self.phase1 >= tau {
                    self.phase1 -= tau;
                }
                if self.phase2 >= tau {
                    self.phase2 -= tau;
                }
                self.pos += 1;
            }
            i += n;
            if self.pos >= len {
                // Eagerly, so a one-shot tone reports finished right after its last sample.
                self.advance_part();
            }
        }
    }
}

impl Sound for ToneGenerator {
    fn is_finished(&self) -> bool {
        self.finished
    }
}

/// A replaceable sound file (ring, beeps) played at a fixed rate, once or looping.
#[derive(Debug, Clone)]
pub struct WavPlayer {
    samples: Vec<i16>,
    pos: usize,
    looping: bool,
    rate: u32,
}

impl WavPlayer {
    /// Load `path` (PCM or float WAV, any rate and channel count: downmixed and resampled to
    /// `rate`). Errors name the file.
    pub fn open(path: &Path, rate: u32, looping: bool) -> Result<WavPlayer, WavError> {
        let data = read_wav(path)?;
        let mut r = Resampler::new(data.rate, rate).map_err(|e| WavError::Format {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
        let mut out = vec![0.0f32; r.max_output(data.samples.len())];
        let n = r.process(&data.samples, &mut out);
        out.truncate(n);
        Ok(WavPlayer::from_samples(
            rate,
            out.into_iter().map(to_i16).collect(),
            looping,
        ))
    }

    /// Play these samples (already at `rate`).
    pub fn from_samples(rate: u32, samples: Vec<i16>, looping: bool) -> WavPlayer {
        WavPlayer {
            samples,
            pos: 0,
            looping,
            rate,
        }
    }

    /// Sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Length in samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the sound has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Start again.
    pub fn restart(&mut self) {
        self.pos = 0;
    }
}

impl PcmSource for WavPlayer {
    fn read_frame(&mut self, out: &mut [i16]) {
        let mut i = 0;
        while i < out.len() {
            if self.pos >= self.samples.len() {
                if self.looping && !self.samples.is_empty() {
                    self.pos = 0;
                } else {
                    out[i..].fill(0);
                    return;
                }
            }
            let n = (self.samples.len() - self.pos).min(out.len() - i);
            out[i..i + n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
            self.pos += n;
            i += n;
        }
    }
}

impl Sound for WavPlayer {
    fn is_finished(&self) -> bool {
        !self.looping && self.pos >= self.samples.len()
    }
}

/// Amplitude of the `freq` component of `x` (Goertzel over the whole slice, Hann-free): a sine
/// of peak `A` at exactly `freq` gives about `A`. For checks on generated or recorded audio.
pub fn goertzel_amplitude(x: &[i16], freq: f64, rate: u32) -> f64 {
    if x.is_empty() || rate == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}
