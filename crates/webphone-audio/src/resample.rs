//! Streaming sample-rate conversion for mono `f32` audio.
//!
//! The converter is deliberately small: a windowed-sinc FIR low-pass (applied at the higher of the
//! two rates, so it removes what would alias when decimating and the images left by interpolation
//! when expanding) plus linear interpolation. That is plenty for the 8–48 kHz voice band this
//! crate deals with. Everything sits behind [`Resampler`], so a polyphase implementation such as
//! `rubato` can replace it later without touching the callers.

use std::f64::consts::PI;

/// Streaming mono resampler from `input_rate` to `output_rate`.
///
/// Feed arbitrary-sized chunks to [`Resampler::process`]; the state carries over between chunks,
/// so the output is continuous. Equal rates pass samples through untouched.
#[derive(Debug, Clone)]
pub struct Resampler {
    input_rate: u32,
    output_rate: u32,
    /// Input samples advanced per output sample.
    step: f64,
    /// Position of the next output sample, in input samples, relative to the first sample of the
    /// next chunk; `-1.0` designates `last`.
    pos: f64,
    /// The last (filtered) input sample of the previous chunk.
    last: f32,
    /// Anti-alias filter applied to the input before decimation.
    pre: Option<Fir>,
    /// Anti-image filter applied to the output after interpolation.
    post: Option<Fir>,
    /// Scratch space for the pre-filtered input (kept to avoid per-call allocation).
    scratch: Vec<f32>,
}

impl Resampler {
    /// A resampler from `input_rate` to `output_rate` (both in Hz; a zero rate is treated as 1).
    pub fn new(input_rate: u32, output_rate: u32) -> Self {
        let input_rate = input_rate.max(1);
        let output_rate = output_rate.max(1);
        let (pre, post) = match input_rate.cmp(&output_rate) {
            std::cmp::Ordering::Equal => (None, None),
            // Decimating: band-limit to below the new Nyquist frequency at the input rate.
            std::cmp::Ordering::Greater => (Some(Fir::lowpass(input_rate, output_rate)), None),
            // Interpolating: remove the images above the old Nyquist frequency at the output rate.
            std::cmp::Ordering::Less => (None, Some(Fir::lowpass(output_rate, input_rate))),
        };
        Resampler {
            input_rate,
            output_rate,
            step: f64::from(input_rate) / f64::from(output_rate),
            pos: 0.0,
            last: 0.0,
            pre,
            post,
            scratch: Vec::new(),
        }
    }

    /// The rate the input is expected at.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The rate the output is produced at.
    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// True when input and output rates are equal (samples are copied unchanged).
    pub fn is_passthrough(&self) -> bool {
        self.input_rate == self.output_rate
    }

    /// How many input samples are needed (at most) to produce `output` more samples.
    pub fn input_needed(&self, output: usize) -> usize {
        if self.is_passthrough() {
            return output;
        }
        // Position of the last wanted output sample relative to the next input chunk, plus the
        // sample after it for the interpolation.
        let last_pos = self.pos + self.step * (output.saturating_sub(1) as f64);
        let needed = last_pos.floor() + 2.0;
        if needed <= 0.0 {
            0
        } else {
            needed as usize
        }
    }

    /// Resample `input`, appending the produced samples to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if input.is_empty() {
            return;
        }
        if self.is_passthrough() {
            out.extend_from_slice(input);
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let samples: &[f32] = match self.pre.as_mut() {
            Some(fir) => {
                scratch.extend(input.iter().map(|&x| fir.filter(x)));
                &scratch
            }
            None => input,
        };
        let first_new = out.len();
        let n = samples.len();
        // Interpolate between samples[i] and samples[i + 1] (index -1 = self.last) while both exist.
        while self.pos < (n - 1) as f64 {
            let base = self.pos.floor();
            let frac = (self.pos - base) as f32;
            let i = base as isize;
            let a = if i < 0 {
                self.last
            } else {
                samples[i as usize]
            };
            let b = samples[(i + 1) as usize];
            out.push(a + (b - a) * frac);
            self.pos += self.step;
        }
        self.pos -= n as f64;
        self.last = samples[n - 1];
        self.scratch = scratch;
        if let Some(fir) = self.post.as_mut() {
            for y in &mut out[first_new..] {
                *y = fir.filter(*y);
            }
        }
    }

    /// Forget all history (as after a stream restart).
    pub fn reset(&mut self) {
        self.pos = 0.0;
        self.last = 0.0;
        if let Some(f) = self.pre.as_mut() {
            f.reset();
        }
        if let Some(f) = self.post.as_mut() {
            f.reset();
        }
    }
}

/// Resample a whole signal at once (used for WAV files loaded into memory).
pub fn resample_all(input: &[f32], input_rate: u32, output_rate: u32) -> Vec<f32> {
    let mut r = Resampler::new(input_rate, output_rate);
    let expected = (input.len() as u64 * u64::from(output_rate.max(1))
        / u64::from(input_rate.max(1))) as usize;
    let mut out = Vec::with_capacity(expected + 2);
    r.process(input, &mut out);
    out
}

/// A streaming FIR low-pass (Hamming-windowed sinc).
#[derive(Debug, Clone)]
struct Fir {
    taps: Vec<f32>,
    /// Doubled history so the newest `taps.len()` samples are always one contiguous slice.
    history: Vec<f32>,
    idx: usize,
}

impl Fir {
    /// Low-pass for a signal at `rate` that must keep only what fits below `narrow_rate / 2`.
    fn lowpass(rate: u32, narrow_rate: u32) -> Fir {
        let ratio = (f64::from(rate) / f64::from(narrow_rate)).max(1.0);
        // ~16 taps per unit of rate ratio keeps the transition band at roughly 10 % of the
        // narrow band; odd length gives a symmetric filter with an integer delay.
        let len = ((16.0 * ratio).ceil() as usize) | 1;
        let len = len.clamp(15, 1023);
        // Cut-off at 90 % of the narrow Nyquist frequency, normalised to `rate`.
        let fc = 0.45 * f64::from(narrow_rate) / f64::from(rate);
        let mid = (len - 1) as f64 / 2.0;
        let mut taps: Vec<f64> = (0..len)
            .map(|i| {
                let t = i as f64 - mid;
                let sinc = if t == 0.0 {
                    2.0 * fc
                } else {
                    (2.0 * PI * fc * t).sin() / (PI * t)
                };
                let window = 0.54 - 0.46 * (2.0 * PI * i as f64 / (len - 1) as f64).cos();
                sinc * window
            })
            .collect();
        let sum: f64 = taps.iter().sum();
        if sum.abs() > f64::EPSILON {
            for t in &mut taps {
                *t /= sum;
            }
        }
        Fir {
            taps: taps.into_iter().map(|t| t as f32).collect(),
            history: vec![0.0; 2 * len],
            idx: 0,
        }
    }

    fn filter(&mut self, x: f32) -> f32 {
        let len = self.taps.len();
        self.history[self.idx] = x;
        self.history[self.idx + len] = x;
        self.idx += 1;
        if self.idx == len {
            self.idx = 0;
        }
        // history[idx..idx + len] holds the newest `len` samples, oldest first.
        let window = &self.history[self.idx..self.idx + len];
        window.iter().zip(&self.taps).map(|(a, b)| a * b).sum()
    }

    fn reset(&mut self) {
        self.history.iter_mut().for_each(|h| *h = 0.0);
        self.idx = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f32) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// Amplitude of the `freq` component of `x` (Goertzel).
    fn goertzel_amplitude(x: &[f32], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Run `input` through a resampler in uneven chunks, as a device callback would deliver it.
    fn process_chunked(r: &mut Resampler, input: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        let sizes = [1usize, 7, 160, 441, 512, 3];
        let mut off = 0;
        let mut k = 0;
        while off < input.len() {
            let end = (off + sizes[k % sizes.len()]).min(input.len());
            r.process(&input[off..end], &mut out);
            off = end;
            k += 1;
        }
        out
    }

    #[test]
    fn sine_at_1khz_keeps_its_frequency_through_48k_to_8k_to_48k() {
        let input = sine(1000.0, 48_000, 1.0, 0.5);
        let mut down = Resampler::new(48_000, 8000);
        let mid = process_chunked(&mut down, &input);
        assert!(
            (mid.len() as i64 - 8000).abs() <= 2,
            "8 kHz length {}",
            mid.len()
        );
        let mut up = Resampler::new(8000, 48_000);
        let out = process_chunked(&mut up, &mid);
        assert!(
            (out.len() as i64 - 48_000).abs() <= 12,
            "48 kHz length {}",
            out.len()
        );

        // Skip the filters' settling time, then look at a steady stretch.
        let mid_steady = &mid[800..7600];
        let out_steady = &out[4800..45_600];
        for (signal, rate) in [(mid_steady, 8000), (out_steady, 48_000)] {
            let at_1k = goertzel_amplitude(signal, 1000.0, rate);
            assert!(
                (at_1k - 0.5).abs() < 0.05,
                "1 kHz amplitude {at_1k} at {rate} Hz"
            );
            for other in [500.0, 900.0, 1100.0, 2000.0, 3000.0] {
                let a = goertzel_amplitude(signal, other, rate);
                assert!(a < 0.02, "{other} Hz leaked {a} at {rate} Hz");
            }
            // Nearly all the energy is the tone (RMS of a 0.5 sine = 0.354).
            assert!((rms(signal) - 0.3536).abs() < 0.03, "rms {}", rms(signal));
        }
        // Images of the 8 kHz signal (7 kHz, 9 kHz) are suppressed at 48 kHz.
        for image in [7000.0, 9000.0, 15_000.0] {
            let a = goertzel_amplitude(out_steady, image, 48_000);
            assert!(a < 0.01, "image at {image} Hz: {a}");
        }
    }

    #[test]
    fn tone_above_the_new_nyquist_is_filtered_instead_of_aliasing_when_decimating() {
        // 6 kHz at 48 kHz would fold to 2 kHz at 8 kHz without the anti-alias filter.
        let input = sine(6000.0, 48_000, 0.5, 0.5);
        let mut down = Resampler::new(48_000, 8000);
        let out = process_chunked(&mut down, &input);
        let steady = &out[400..];
        assert!(goertzel_amplitude(steady, 2000.0, 8000) < 0.01);
        assert!(rms(steady) < 0.01, "rms {}", rms(steady));
    }

    #[test]
    fn equal_rates_pass_samples_through_unchanged() {
        let input = sine(440.0, 16_000, 0.1, 0.3);
        let mut r = Resampler::new(16_000, 16_000);
        assert!(r.is_passthrough());
        let out = process_chunked(&mut r, &input);
        assert_eq!(out, input);
    }

    #[test]
    fn input_needed_is_enough_to_produce_the_requested_output() {
        for (a, b) in [
            (48_000u32, 8000u32),
            (8000, 48_000),
            (44_100, 16_000),
            (16_000, 44_100),
        ] {
            let mut r = Resampler::new(a, b);
            let mut produced = Vec::new();
            for _ in 0..50 {
                let want = 160;
                let need = r.input_needed(want);
                let before = produced.len();
                r.process(&vec![0.1; need], &mut produced);
                assert!(
                    produced.len() - before >= want,
                    "{a}->{b}: {need} inputs gave {} outputs",
                    produced.len() - before
                );
                // Keep the surplus bounded: input_needed must not grossly over-ask.
                let slack = (f64::from(b) / f64::from(a)).ceil() as usize + 1;
                assert!(produced.len() - before <= want + slack);
                produced.truncate(before);
            }
        }
    }

    #[test]
    fn output_length_tracks_the_rate_ratio_over_many_chunks() {
        let mut r = Resampler::new(44_100, 8000);
        let mut out = Vec::new();
        for _ in 0..100 {
            r.process(&[0.0; 441], &mut out);
        }
        // 44 100 inputs -> 8000 outputs.
        assert!((out.len() as i64 - 8000).abs() <= 1, "{}", out.len());
    }
}
