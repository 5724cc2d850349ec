//! Voice activity: an energy detector with a noise-floor tracker, per-interval level and speech
//! statistics for the `VAD` notification (notifications.md §15), and the "no voice from the
//! microphone" watch (the WebPhone's "Check your microphone!" warning after 6 s).
//!
//! ## Detector
//! Per frame: the RMS level in dBFS. The noise floor is the lowest frame level seen in the
//! last [`FLOOR_WINDOWS`] one-second windows and the current one (minimum statistics), so it
//! follows stationary noise within seconds and is not pulled up by speech, which has pauses.
//! A frame is voice when it is [`SNR_DB`] above the floor and above [`MIN_SPEECH_DBFS`]; a
//! [`HANGOVER_FRAMES`] hangover bridges the gaps between syllables. A steady tone becomes the
//! floor and stops counting as voice; tone bursts over silence or noise count.
//!
//! ## Levels
//! The scale is not documented by the WebPhone; we report linear 16-bit sample magnitudes
//! (0..=32767): `avg` is the mean frame RMS over the interval, `max` the largest absolute
//! sample.

use std::time::Duration;

/// Voice must be this far above the noise floor (dB).
pub const SNR_DB: f32 = 10.0;
/// Voice must also be louder than this (dBFS); quieter frames are never voice.
pub const MIN_SPEECH_DBFS: f32 = -55.0;
/// Frames that still count as voice after the last loud one.
pub const HANGOVER_FRAMES: u32 = 5;
/// The floor remembers the minima of this many past windows.
pub const FLOOR_WINDOWS: usize = 5;
/// Length of one floor window.
pub const FLOOR_WINDOW: Duration = Duration::from_secs(1);
/// Voice frames (before the hangover) an interval needs to be reported as speaking.
pub const SPEAKING_FRAMES: u32 = 2;

/// Level of digital silence (dBFS).
const SILENCE_DBFS: f32 = -100.0;

/// The level of a frame in dBFS (RMS relative to full scale; -100 for digital silence) and
/// its RMS and peak as sample magnitudes.
pub fn frame_level(frame: &[i16]) -> (f32, f64, u16) {
    if frame.is_empty() {
        return (SILENCE_DBFS, 0.0, 0);
    }
    let mut sum = 0.0f64;
    let mut peak = 0u16;
    for &s in frame {
        let v = f64::from(s);
        sum += v * v;
        peak = peak.max(s.unsigned_abs());
    }
    let rms = (sum / frame.len() as f64).sqrt();
    let db = if rms < 1e-9 {
        SILENCE_DBFS
    } else {
        ((20.0 * (rms / 32768.0).log10()) as f32).max(SILENCE_DBFS)
    };
    (db, rms, peak)
}

/// Statistics of one direction over one reporting interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VadSide {
    /// Frames measured.
    pub frames: u32,
    /// Sum of the frames' RMS (sample magnitude).
    pub rms_sum: f64,
    /// Largest absolute sample.
    pub peak: u16,
    /// Frames detected as voice (without hangover).
    pub voice_frames: u32,
}

impl VadSide {
    /// Whether anything was measured (`ON` in the notification).
    pub fn active(&self) -> bool {
        self.frames > 0
    }

    /// Mean frame RMS (0..=32767).
    pub fn avg(&self) -> u32 {
        if self.frames == 0 {
            0
        } else {
            (self.rms_sum / f64::from(self.frames)).round() as u32
        }
    }

    /// Peak sample magnitude.
    pub fn max(&self) -> u32 {
        u32::from(self.peak)
    }

    /// Whether speech was detected in the interval.
    pub fn speaking(&self) -> bool {
        self.voice_frames >= SPEAKING_FRAMES
    }

    /// Add another partial interval.
    pub fn merge(&mut self, other: &VadSide) {
        self.frames = self.frames.saturating_add(other.frames);
        self.rms_sum += other.rms_sum;
        self.peak = self.peak.max(other.peak);
        self.voice_frames = self.voice_frames.saturating_add(other.voice_frames);
    }
}

/// Both directions over one interval: `local` is the microphone (after echo cancellation), `remote`
/// what is played.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VadReport {
    /// The microphone side.
    pub local: VadSide,
    /// The received side.
    pub remote: VadSide,
}

impl VadReport {
    /// Add another partial interval.
    pub fn merge(&mut self, other: &VadReport) {
        self.local.merge(&other.local);
        self.remote.merge(&other.remote);
    }
}

/// The `VAD` notification line (notifications.md §15): `VAD,` then space-separated
/// `key: value` pairs. A side without measurements is `OFF` with zero levels.
pub fn format_vad_notification(r: &VadReport) -> String {
    fn side(name: &str, s: &VadSide) -> String {
        format!(
            "{name}_vad: {} {name}_avg: {} {name}_max: {} {name}_speaking: {}",
            if s.active() { "ON" } else { "OFF" },
            s.avg(),
            s.max(),
            if s.speaking() { "yes" } else { "no" }
        )
    }
    format!(
        "VAD,{} {}",
        side("local", &r.local),
        side("remote", &r.remote)
    )
}

/// The energy voice detector for one direction. See the module documentation.
#[derive(Debug, Clone)]
pub struct VoiceDetector {
    frames_per_window: u32,
    /// Frames into the current floor window.
    in_window: u32,
    window_min: f32,
    past_minima: std::collections::VecDeque<f32>,
    hang: u32,
    acc: VadSide,
}

impl VoiceDetector {
    /// A detector for frames of `frame_ms` milliseconds.
    pub fn new(frame_ms: u32) -> VoiceDetector {
        let frames_per_window = (FLOOR_WINDOW.as_millis() as u32 / frame_ms.max(1)).max(1);
        VoiceDetector {
            frames_per_window,
            in_window: 0,
            window_min: f32::INFINITY,
            past_minima: std::collections::VecDeque::with_capacity(FLOOR_WINDOWS + 1),
            hang: 0,
            acc: VadSide::default(),
        }
    }

    /// The current noise floor (dBFS); `None` before the first frame.
    pub fn noise_floor_dbfs(&self) -> Option<f32> {
        let floor = self
            .past_minima
            .iter()
            .copied()
            .fold(self.window_min, f32::min);
        floor.is_finite().then_some(floor)
    }

    /// Measure one frame; returns whether it is voice (with hangover).
    pub fn process(&mut self, frame: &[i16]) -> bool {
        let (db, rms, peak) = frame_level(frame);
        // The floor from before this frame, so a sudden onset is compared to the old floor.
        let floor = self.noise_floor_dbfs().unwrap_or(db).min(db);
        let loud = db >= MIN_SPEECH_DBFS && db >= floor + SNR_DB;
        self.window_min = self.window_min.min(db);
        self.in_window += 1;
        if self.in_window >= self.frames_per_window {
            self.past_minima.push_back(self.window_min);
            if self.past_minima.len() > FLOOR_WINDOWS {
                self.past_minima.pop_front();
            }
            self.window_min = f32::INFINITY;
            self.in_window = 0;
        }
        if loud {
            self.hang = HANGOVER_FRAMES;
        } else {
            self.hang = self.hang.saturating_sub(1);
        }
        self.acc.frames = self.acc.frames.saturating_add(1);
        self.acc.rms_sum += rms;
        self.acc.peak = self.acc.peak.max(peak);
        if loud {
            self.acc.voice_frames = self.acc.voice_frames.saturating_add(1);
        }
        loud || self.hang > 0
    }

    /// The statistics since the last call (and start a new interval).
    pub fn take_interval(&mut self) -> VadSide {
        std::mem::take(&mut self.acc)
    }
}

/// Watches for no voice from the microphone for a while from the call start; fires once.
#[derive(Debug, Clone)]
pub struct NoVoiceWatch {
    limit: Duration,
    without_voice: Duration,
    done: bool,
}

impl NoVoiceWatch {
    /// Fire after `limit` of sent audio without voice (`ZERO` = never).
    pub fn new(limit: Duration) -> NoVoiceWatch {
        NoVoiceWatch {
            limit,
            without_voice: Duration::ZERO,
            done: limit.is_zero(),
        }
    }

    /// One frame of `frame` length: `sending` whether our direction sends (muted and held time
    /// does not count), `voice` the detector's verdict. Returns the time without voice when
    /// the watch fires.
    pub fn tick(&mut self, frame: Duration, sending: bool, voice: bool) -> Option<Duration> {
        if self.done || !sending {
            return None;
        }
        if voice {
            self.done = true;
            return None;
        }
        self.without_voice += frame;
        if self.without_voice >= self.limit {
            self.done = true;
            return Some(self.without_voice);
        }
        None
    }

    /// Whether the watch is over (fired, voice seen, or off).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 8000.0;
    const N: usize = 160;

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            f64::from(self.0) / f64::from(u32::MAX) * 2.0 - 1.0
        }
    }

    fn tone(frame: usize, amp: f64) -> Vec<i16> {
        (0..N)
            .map(|i| {
                let t = (frame * N + i) as f64 / RATE;
                (amp * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    fn noise(rng: &mut Rng, amp: f64) -> Vec<i16> {
        (0..N).map(|_| (rng.next() * amp) as i16).collect()
    }

    fn add(a: &[i16], b: &[i16]) -> Vec<i16> {
        a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
    }

    #[test]
    fn silence_is_never_voice() {
        let mut d = VoiceDetector::new(20);
        let z = vec![0i16; N];
        assert!((0..500).all(|_| !d.process(&z)));
        let s = d.take_interval();
        assert_eq!(
            (s.frames, s.avg(), s.max(), s.speaking()),
            (500, 0, 0, false)
        );
    }

    #[test]
    fn steady_noise_is_not_voice_after_the_first_frame() {
        let mut d = VoiceDetector::new(20);
        let mut rng = Rng(0x1234_5678);
        let voiced = (0..500)
            .filter(|_| d.process(&noise(&mut rng, 3000.0)))
            .count();
        assert_eq!(voiced, 0);
        let s = d.take_interval();
        assert!(!s.speaking());
        // Uniform noise of amplitude 3000 has an RMS of 3000/sqrt(3) = 1732.
        assert!((s.avg() as i64 - 1732).abs() < 40, "{}", s.avg());
        assert!(s.max() > 2900 && s.max() <= 3000);
        let floor = d.noise_floor_dbfs().unwrap();
        assert!((-27.0..-24.0).contains(&floor), "{floor}");
    }

    #[test]
    fn tone_bursts_over_noise_are_voice_and_the_pauses_are_not() {
        let mut d = VoiceDetector::new(20);
        let mut rng = Rng(99);
        // 400 ms bursts of a -16 dBFS tone every second over -45 dBFS noise.
        let mut in_burst = 0;
        let mut in_pause_after_hang = 0;
        let mut burst_frames = 0;
        let mut pause_frames = 0;
        for f in 0..250usize {
            let burst = f % 50 < 20;
            let n = noise(&mut rng, 300.0);
            let frame = if burst { add(&tone(f, 5000.0), &n) } else { n };
            let v = d.process(&frame);
            if burst {
                burst_frames += 1;
                in_burst += usize::from(v);
            } else if f % 50 >= 20 + HANGOVER_FRAMES as usize {
                pause_frames += 1;
                in_pause_after_hang += usize::from(v);
            }
        }
        // The very first burst starts the floor, later ones are all detected.
        assert!(in_burst >= burst_frames - 20, "{in_burst}/{burst_frames}");
        assert_eq!(in_pause_after_hang, 0, "of {pause_frames}");
        assert!(d.take_interval().speaking());
    }

    #[test]
    fn a_steady_tone_becomes_the_floor() {
        let mut d = VoiceDetector::new(20);
        let z = vec![0i16; N];
        for _ in 0..50 {
            d.process(&z);
        }
        // Onset over silence is voice...
        assert!(d.process(&tone(0, 8000.0)));
        // ... but after the floor windows have passed, a tone that never stops is not.
        let late = (1..400)
            .map(|f| d.process(&tone(f, 8000.0)))
            .collect::<Vec<_>>();
        assert!(late[..100].iter().all(|&v| v));
        assert!(late[350..].iter().all(|&v| !v));
    }

    #[test]
    fn quiet_bursts_below_the_absolute_threshold_are_not_voice() {
        let mut d = VoiceDetector::new(20);
        let z = vec![0i16; N];
        let mut any = false;
        for f in 0..200usize {
            // -65 dBFS tone bursts over digital silence.
            let frame = if f % 20 < 10 {
                tone(f, 26.0)
            } else {
                z.clone()
            };
            any |= d.process(&frame);
        }
        assert!(!any);
    }

    #[test]
    fn notification_format_matches_the_spec() {
        assert_eq!(
            format_vad_notification(&VadReport::default()),
            "VAD,local_vad: OFF local_avg: 0 local_max: 0 local_speaking: no \
             remote_vad: OFF remote_avg: 0 remote_max: 0 remote_speaking: no"
        );
        let mut r = VadReport::default();
        r.local.merge(&VadSide {
            frames: 2,
            rms_sum: 201.0,
            peak: 700,
            voice_frames: 2,
        });
        r.remote.merge(&VadSide {
            frames: 1,
            rms_sum: 0.0,
            peak: 0,
            voice_frames: 0,
        });
        assert_eq!(
            format_vad_notification(&r),
            "VAD,local_vad: ON local_avg: 101 local_max: 700 local_speaking: yes \
             remote_vad: ON remote_avg: 0 remote_max: 0 remote_speaking: no"
        );
    }

    #[test]
    fn no_voice_watch_fires_once_and_only_while_sending() {
        let f = Duration::from_millis(20);
        let mut w = NoVoiceWatch::new(Duration::from_secs(6));
        let mut fired = Vec::new();
        for i in 0..600u32 {
            // The first 2 s are on hold (not sending): they do not count.
            if let Some(d) = w.tick(f, i >= 100, false) {
                fired.push((i, d));
            }
        }
        assert_eq!(fired, vec![(399, Duration::from_secs(6))]);
        let mut spoke = NoVoiceWatch::new(Duration::from_secs(6));
        assert!(spoke.tick(f, true, false).is_none());
        assert!(spoke.tick(f, true, true).is_none());
        assert!((0..1000).all(|_| spoke.tick(f, true, false).is_none()));
        let mut off = NoVoiceWatch::new(Duration::ZERO);
        assert!(off.is_done());
        assert!((0..1000).all(|_| off.tick(f, true, false).is_none()));
    }
}
