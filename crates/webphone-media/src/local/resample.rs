//! Rational-ratio polyphase resampler for mono audio (8/16/32/48 kHz and friends).
//!
//! `webphone-media` must not depend on `webphone-audio`, so the mixer, the tone generators and the
//! sound-file player use this small converter. It is an exact rational converter: with
//! `L / M = output_rate / input_rate` in lowest terms, the input is (conceptually) zero-stuffed by
//! `L`, low-pass filtered by a Kaiser-windowed sinc and decimated by `M`; only the taps that meet
//! non-zero input samples are evaluated (polyphase form), so the cost per output sample is
//! `taps_per_phase` multiply-adds (37 for 8 kHz <-> 48 kHz).
//!
//! Filter: pass band up to 0.4 x the lower rate, stop band from 0.5 x the lower rate (its Nyquist
//! frequency), ~60 dB stop-band attenuation (Kaiser, beta 5.65). Group delay: half the prototype
//! length (about 2.3 ms for 8 kHz <-> 48 kHz).
//!
//! Because the ratio is exact, 20 ms in gives exactly 20 ms out whenever both rates are multiples
//! of 50 Hz (the phase returns to where it started after every frame).

use thiserror::Error;

/// Why a resampler could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResampleError {
    /// A rate of zero.
    #[error("sample rate must not be zero")]
    ZeroRate,
    /// The reduced ratio needs too many polyphase branches (rates without a large common divisor).
    #[error("unsupported rate pair {from} Hz -> {to} Hz (ratio {l}/{m} too fine)")]
    Unsupported {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// Up-sampling factor.
        l: u32,
        /// Down-sampling factor.
        m: u32,
    },
}

/// The largest up- or down-sampling factor accepted (44.1 <-> 48 kHz is 160/147).
const MAX_FACTOR: u32 = 480;
/// Stop-band attenuation the Kaiser design aims at, in dB.
const ATTENUATION_DB: f64 = 60.0;

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        let f = half / f64::from(k);
        term *= f * f;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

/// Dot product with eight independent accumulators (lets the compiler use SIMD lanes; the
/// summation order differs from a plain loop only by float rounding).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, &p), &q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (&p, &q) in ra.iter().zip(rb) {
        sum += p * q;
    }
    sum
}

/// Streaming mono resampler with state carried between chunks.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    l: usize,
    m: usize,
    taps: usize,
    /// Per phase, `taps` coefficients stored in reverse order (oldest input first).
    coeffs: Vec<f32>,
    /// `taps - 1` history samples followed by the current chunk.
    buf: Vec<f32>,
    /// Position of the next output in up-sampled units, relative to the current chunk's start.
    pos: usize,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        if from == 0 || to == 0 {
            return Err(ResampleError::ZeroRate);
        }
        let g = gcd(from, to);
        let (l, m) = (to / g, from / g);
        if l > MAX_FACTOR || m > MAX_FACTOR {
            return Err(ResampleError::Unsupported { from, to, l, m });
        }
        let (l, m) = (l as usize, m as usize);
        if l == 1 && m == 1 {
            return Ok(Resampler {
                from,
                to,
                l,
                m,
                taps: 1,
                coeffs: vec![1.0],
                buf: Vec::new(),
                pos: 0,
            });
        }
        // Prototype filter at the up-sampled rate.
        let fs = f64::from(from) * l as f64;
        let low = f64::from(from.min(to));
        let transition = 0.1 * low;
        let cutoff = 0.45 * low;
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        let n_est = ((ATTENUATION_DB - 7.95)
            / (2.285 * 2.0 * std::f64::consts::PI * transition / fs))
            .ceil() as usize
            + 1;
        let taps = n_est.div_ceil(l).max(2);
        let n = taps * l;
        let centre = (n - 1) as f64 / 2.0;
        let fc = cutoff / fs; // normalised to the prototype rate
        let i0_beta = bessel_i0(beta);
        let mut proto: Vec<f64> = (0..n)
            .map(|t| {
                let x = t as f64 - centre;
                let arg = 2.0 * fc * x;
                let sinc = if arg.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
                };
                let r = if n > 1 {
                    2.0 * t as f64 / (n - 1) as f64 - 1.0
                } else {
                    0.0
                };
                let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
                2.0 * fc * sinc * w
            })
            .collect();
        // DC gain L (zero-stuffing loses a factor L), i.e. each phase sums to about 1.
        let sum: f64 = proto.iter().sum();
        if sum.abs() > 1e-12 {
            let scale = l as f64 / sum;
            proto.iter_mut().for_each(|c| *c *= scale);
        }
        let mut coeffs = vec![0.0f32; n];
        for ph in 0..l {
            for j in 0..taps {
                // Stored reversed: index 0 multiplies the oldest sample of the window.
                coeffs[ph * taps + (taps - 1 - j)] = proto[ph + j * l] as f32;
            }
        }
        Ok(Resampler {
            from,
            to,
            l,
            m,
            taps,
            coeffs,
            buf: vec![0.0; taps - 1],
            pos: 0,
        })
    }

    /// Input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Whether the rates are equal (samples are copied through).
    pub fn is_passthrough(&self) -> bool {
        self.l == 1 && self.m == 1
    }

    /// Multiply-adds per output sample.
    pub fn taps_per_phase(&self) -> usize {
        self.taps
    }

    /// The most output samples [`Resampler::process`] can produce from `input_len` samples.
    pub fn max_output(&self, input_len: usize) -> usize {
        (input_len * self.l).div_ceil(self.m) + 1
    }

    /// Convert `input`, writing to the start of `out`; returns how many samples were written.
    /// `out` must hold [`Resampler::max_output`] samples; if it is shorter the surplus output
    /// is lost (the state still advances over the whole input).
    ///
    /// Allocates only when a chunk longer than any before arrives.
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> usize {
        if self.is_passthrough() {
            let n = input.len().min(out.len());
            out[..n].copy_from_slice(&input[..n]);
            return n;
        }
        let k = self.taps;
        self.buf.truncate(k - 1);
        self.buf.extend_from_slice(input);
        let n_in = input.len();
        let mut p = self.pos;
        let mut n = 0;
        loop {
            let i = p / self.l;
            if i >= n_in {
                break;
            }
            let ph = p % self.l;
            if n < out.len() {
                let c = &self.coeffs[ph * k..ph * k + k];
                let win = &self.buf[i..i + k];
                out[n] = dot(c, win);
                n += 1;
            }
            p += self.m;
        }
        self.pos = p - n_in * self.l;
        // Keep the last k - 1 samples as history.
        let len = self.buf.len();
        self.buf.copy_within(len - (k - 1).., 0);
        self.buf.truncate(k - 1);
        n
    }

    /// Forget the history (as after silence).
    pub fn reset(&mut self) {
        self.buf.iter_mut().for_each(|s| *s = 0.0);
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, n: usize, amp: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as f32
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn run(from: u32, to: u32, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut r = Resampler::new(from, to).expect("rates");
        let mut all = Vec::new();
        let mut out = vec![0.0; r.max_output(chunk) + 8];
        for c in input.chunks(chunk) {
            let n = r.process(c, &mut out);
            all.extend_from_slice(&out[..n]);
        }
        all
    }

    #[test]
    fn twenty_ms_in_gives_exactly_twenty_ms_out() {
        for (from, to) in [(8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)] {
            let mut r = Resampler::new(from, to).expect("rates");
            let n_in = from as usize / 50;
            let mut out = vec![0.0; r.max_output(n_in)];
            for _ in 0..10 {
                let n = r.process(&vec![0.1; n_in], &mut out);
                assert_eq!(n, to as usize / 50, "{from}->{to}");
            }
        }
    }

    #[test]
    fn passband_tone_keeps_its_level_and_stopband_tone_is_removed() {
        // 1 kHz survives 8k -> 48k -> 8k; 6 kHz at 48k is removed going down to 8k.
        let x = sine(8000, 1000.0, 8000, 10000.0);
        let up = run(8000, 48000, &x, 160);
        assert_eq!(up.len(), 48000);
        let back = run(48000, 8000, &up, 960);
        let steady = &back[800..];
        assert!(
            (rms(steady) / rms(&x[800..]) - 1.0).abs() < 0.03,
            "{}",
            rms(steady)
        );
        let hi = sine(48000, 6000.0, 48000, 10000.0);
        let down = run(48000, 8000, &hi, 960);
        assert!(
            rms(&down[800..]) < 10000.0 * 0.71 * 0.002,
            "{}",
            rms(&down[800..])
        );
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let x = sine(16000, 700.0, 3200, 8000.0);
        let a = run(16000, 48000, &x, 320);
        let b = run(16000, 48000, &x, 7);
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-2);
        }
    }

    #[test]
    fn bad_rates_are_errors() {
        assert_eq!(
            Resampler::new(0, 8000).unwrap_err(),
            ResampleError::ZeroRate
        );
        assert!(matches!(
            Resampler::new(8000, 48001),
            Err(ResampleError::Unsupported { .. })
        ));
        assert!(Resampler::new(44100, 48000).is_ok());
    }
}
