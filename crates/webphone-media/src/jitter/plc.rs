//! Packet-loss concealment on decoded PCM for codecs without their own (G.711, G.722, GSM):
//! pitch-synchronous waveform substitution in the style of ITU-T G.711 Appendix I.
//!
//! - Every decoded sample passes through [`Plc::received`], which keeps a short history
//!   (a correlation span plus the longest pitch period).
//! - When audio is missing, [`Plc::fill`] estimates the pitch of the history with an average
//!   magnitude difference function over 66.7–200 Hz (G.711 App. I §I.2.2), builds one pitch
//!   period whose last quarter is overlap-added with the period before it so that repeats join
//!   without a click, overlap-adds the first quarter period into the reversed tail of the real
//!   signal, and then repeats the period while attenuating linearly to silence over 50 ms
//!   (§I.2.3, the attenuation of §I.2.5 simplified to a straight ramp).
//! - The first real audio after a gap is overlap-added with the synthetic continuation over a
//!   quarter period (§I.2.6), so the hand-back is smooth as well.
//!
//! The constants are those of the 8 kHz description; at other rates they scale with the rate.

/// Shortest pitch period at 8 kHz (200 Hz).
const PITCH_SHORT_8K: usize = 40;
/// Longest pitch period at 8 kHz (66.7 Hz).
const PITCH_LONG_8K: usize = 120;
/// Samples compared per candidate period at 8 kHz (20 ms).
const CORRELATION_SPAN_8K: usize = 160;
/// Longest overlap-add at 8 kHz (a quarter of the longest period).
const OVERLAP_MAX_8K: usize = 30;
/// Attenuation per 8 kHz sample: silence after 400 samples (50 ms).
const ATTENUATION_8K: f32 = 0.0025;

/// The concealment state of one stream. See the module documentation.
#[derive(Debug, Clone)]
pub struct Plc {
    rate: u32,
    pitch_short: usize,
    pitch_long: usize,
    span: usize,
    overlap_max: usize,
    attenuation: f32,
    /// The last `span + pitch_long` samples (real or synthetic), oldest first.
    history: Vec<i16>,
    /// One pitch period of synthetic signal.
    pitchbuf: Vec<f32>,
    pitch: usize,
    offset: usize,
    /// Samples synthesised since the last real audio (0 = not concealing).
    missing: usize,
}

fn scaled(n8k: usize, rate: u32) -> usize {
    ((n8k as u64 * u64::from(rate.max(1)) + 4000) / 8000).max(1) as usize
}

fn sat(x: f32) -> i16 {
    x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

impl Plc {
    /// A concealer for PCM at `rate` Hz, with silent history.
    pub fn new(rate: u32) -> Plc {
        let pitch_long = scaled(PITCH_LONG_8K, rate);
        let span = scaled(CORRELATION_SPAN_8K, rate);
        Plc {
            rate,
            pitch_short: scaled(PITCH_SHORT_8K, rate),
            pitch_long,
            span,
            overlap_max: scaled(OVERLAP_MAX_8K, rate),
            attenuation: ATTENUATION_8K * 8000.0 / rate.max(1) as f32,
            history: vec![0; span + pitch_long],
            pitchbuf: Vec::new(),
            pitch: pitch_long,
            offset: 0,
            missing: 0,
        }
    }

    /// The PCM rate this concealer works at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Whether the last samples were synthesised (a gap is being concealed).
    pub fn is_concealing(&self) -> bool {
        self.missing > 0
    }

    fn save_history(&mut self, pcm: &[i16]) {
        let len = self.history.len();
        if pcm.len() >= len {
            self.history.copy_from_slice(&pcm[pcm.len() - len..]);
        } else {
            self.history.copy_within(pcm.len().., 0);
            self.history[len - pcm.len()..].copy_from_slice(pcm);
        }
    }

    /// The period (in samples) that best repeats the history: the smallest average magnitude
    /// difference between the last `span` samples and the ones a period earlier.
    fn estimate_pitch(&self) -> usize {
        let h = &self.history;
        let base = h.len() - self.span;
        let mut best = self.pitch_long;
        let mut best_acc = u64::MAX;
        for lag in self.pitch_short..=self.pitch_long {
            let mut acc = 0u64;
            for j in 0..self.span {
                let a = i32::from(h[base + j]);
                let b = i32::from(h[base + j - lag]);
                acc += u64::from((a - b).unsigned_abs());
                if acc >= best_acc {
                    break;
                }
            }
            if acc < best_acc {
                best_acc = acc;
                best = lag;
            }
        }
        best
    }

    fn overlap(&self) -> usize {
        (self.pitch / 4).clamp(1, self.overlap_max)
    }

    /// Write synthetic audio for missing samples into `out` (any length; call repeatedly for
    /// a long gap).
    pub fn fill(&mut self, out: &mut [i16]) {
        if out.is_empty() {
            return;
        }
        let mut i = 0;
        let mut gain;
        if self.missing == 0 {
            self.pitch = self.estimate_pitch();
            let p = self.pitch;
            let ov = self.overlap();
            let h = &self.history;
            let n = h.len();
            // One period; its last quarter cross-faded with the period before so it loops.
            self.pitchbuf.clear();
            for k in 0..p - ov {
                self.pitchbuf.push(f32::from(h[n - p + k]));
            }
            let step = 1.0 / ov as f32;
            let mut w = step;
            for k in p - ov..p {
                let cur = f32::from(h[n - p + k]);
                let prev = f32::from(h[n - 2 * p + k]);
                self.pitchbuf.push(cur * (1.0 - w) + prev * w);
                w += step;
            }
            // Overlap-add the start of the synthetic signal with the reversed real tail.
            let mut new_w = step;
            let mut old_w = 1.0 - step;
            while i < ov.min(out.len()) {
                let old = f32::from(h[n - 1 - i]);
                out[i] = sat(old_w * old + new_w * self.pitchbuf[i]);
                new_w += step;
                old_w = (old_w - step).max(0.0);
                i += 1;
            }
            self.offset = i % p;
            gain = 1.0 - i as f32 * self.attenuation;
        } else {
            gain = 1.0 - self.missing as f32 * self.attenuation;
        }
        while i < out.len() && gain > 0.0 {
            out[i] = sat(self.pitchbuf[self.offset] * gain);
            gain -= self.attenuation;
            self.offset = (self.offset + 1) % self.pitch;
            i += 1;
        }
        out[i..].fill(0);
        self.missing += out.len();
        self.save_history(out);
    }

    /// Pass real audio through: after a gap, its start is overlap-added with the synthetic
    /// continuation; in any case it becomes the history.
    pub fn received(&mut self, pcm: &mut [i16]) {
        if self.missing > 0 && !self.pitchbuf.is_empty() {
            let ov = self.overlap();
            let gain = (1.0 - self.missing as f32 * self.attenuation).max(0.0);
            let step = 1.0 / ov as f32;
            let mut new_w = step;
            let mut old_w = (1.0 - step) * gain;
            for s in pcm.iter_mut().take(ov) {
                let synth = self.pitchbuf[self.offset];
                *s = sat(old_w * synth + new_w * f32::from(*s));
                self.offset = (self.offset + 1) % self.pitch;
                new_w += step;
                old_w = (old_w - step * gain).max(0.0);
            }
        }
        self.missing = 0;
        self.save_history(pcm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, n: usize, from: usize) -> Vec<i16> {
        (from..from + n)
            .map(|k| {
                let t = k as f64 / f64::from(rate);
                (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn gap_in_a_voiced_tone_is_filled_with_the_same_period_and_no_click() {
        for rate in [8000u32, 16_000, 48_000] {
            let mut plc = Plc::new(rate);
            let n = rate as usize / 50;
            // 125 Hz: a period of 64 samples at 8 kHz, inside the search range.
            let mut a = tone(rate, 125.0, 3 * n, 0);
            plc.received(&mut a);
            let mut gap = vec![0i16; n];
            plc.fill(&mut gap);
            let want = tone(rate, 125.0, n, 3 * n);
            // The first 10 ms follow the real continuation (same phase; the error is the
            // quarter-period blend with the reversed tail and the fade).
            let half = n / 2;
            let err: f64 = gap[..half]
                .iter()
                .zip(&want[..half])
                .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                .sum::<f64>()
                / half as f64;
            let sig: f64 = want[..half]
                .iter()
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
                / half as f64;
            assert!(
                err < sig * 0.25,
                "{rate}: error {err:.0} vs signal {sig:.0}"
            );
            // No step at the boundary.
            let step = (i32::from(gap[0]) - i32::from(*a.last().unwrap())).abs();
            assert!(step < 2000, "{rate}: click of {step}");
        }
    }

    #[test]
    fn long_gap_fades_to_silence_after_50_ms() {
        let mut plc = Plc::new(8000);
        let mut a = tone(8000, 200.0, 480, 0);
        plc.received(&mut a);
        let mut gap = vec![0i16; 480];
        for chunk in gap.chunks_mut(160) {
            plc.fill(chunk);
        }
        assert!(gap[..160].iter().any(|&s| s.abs() > 3000));
        assert!(gap[400..].iter().all(|&s| s == 0));
        assert!(plc.is_concealing());
    }

    #[test]
    fn real_audio_after_a_gap_is_blended_in() {
        let mut plc = Plc::new(8000);
        let mut a = tone(8000, 125.0, 480, 0);
        plc.received(&mut a);
        let mut gap = vec![0i16; 160];
        plc.fill(&mut gap);
        let clean = tone(8000, 125.0, 160, 640);
        let mut next = clean.clone();
        plc.received(&mut next);
        assert!(!plc.is_concealing());
        // The overlap changed the first samples only, and past it the audio is untouched.
        assert_ne!(next[..16], clean[..16]);
        assert_eq!(next[30..], clean[30..]);
        let step = (i32::from(next[0]) - i32::from(gap[159])).abs();
        assert!(step < 2500, "click of {step}");
    }

    #[test]
    fn silence_history_conceals_with_silence() {
        let mut plc = Plc::new(16_000);
        let mut gap = vec![5i16; 320];
        plc.fill(&mut gap);
        assert!(gap.iter().all(|&s| s == 0));
    }
}
