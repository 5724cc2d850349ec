//! Test tones and their analysis (Goertzel).

use std::path::Path;

/// Writes a 16-bit mono sine WAV: `freq` Hz at `rate` Hz for `secs` seconds,
/// peak amplitude `amplitude` (0..1 of full scale).
pub fn write_tone(path: &Path, freq: f64, rate: u32, secs: f64, amplitude: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let n = (secs * f64::from(rate)).round() as u64;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let v = amplitude * (2.0 * std::f64::consts::PI * freq * t).sin();
        let s = (v * f64::from(i16::MAX)).round() as i16;
        w.write_sample(s)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    w.finalize()
        .unwrap_or_else(|e| panic!("cannot finalize {}: {e}", path.display()));
}

/// Writes raw G.711 µ-law (no header, 8 kHz) of a `freq` Hz sine, as SIPp's `rtp_stream`
/// plays it with payload type 0.
pub fn write_ulaw_tone(path: &Path, freq: f64, secs: f64, amplitude: f64) {
    let n = (secs * 8000.0).round() as usize;
    let bytes: Vec<u8> = (0..n)
        .map(|i| {
            let v = amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin();
            linear_to_ulaw((v * f64::from(i16::MAX)).round() as i16)
        })
        .collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// ITU-T G.711 µ-law encoding of one sample.
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// What [`tone_level`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneLevel {
    /// The tone carries at least half of the analysed signal's energy.
    pub dominant: bool,
    /// Level of the tone in dBFS (a full-scale sine is 0 dBFS; silence is -inf).
    pub dbfs: f64,
    /// Share of the analysed signal's energy at the tone's frequency (0..1).
    pub share: f64,
    /// Overall RMS level of the analysed part in dBFS (a full-scale sine is -3 dBFS).
    pub rms_dbfs: f64,
    /// Seconds of audio analysed (the middle half of the recording).
    pub analysed_secs: f64,
    pub sample_rate: u32,
}

impl ToneLevel {
    /// Dominant and at least `min_dbfs` loud.
    pub fn present(&self, min_dbfs: f64) -> bool {
        self.dominant && self.dbfs >= min_dbfs
    }
}

/// Asserts that the recording at `path` has the tone `freq` dominant and at
/// least `min_dbfs` loud over its middle half; `what` names it in the message.
pub fn assert_tone(path: &Path, freq: f64, min_dbfs: f64, what: &str) -> ToneLevel {
    assert!(path.is_file(), "{what}: no recording at {}", path.display());
    let secs = wav_secs(path);
    assert!(
        secs >= 1.0,
        "{what}: recording {} is only {secs:.2} s long",
        path.display()
    );
    let l = tone_level(path, freq);
    assert!(
        l.present(min_dbfs),
        "{what}: {freq} Hz not dominant at >= {min_dbfs} dBFS in {} ({secs:.1} s): {l:?}",
        path.display()
    );
    eprintln!(
        "{what}: {freq} Hz at {:.1} dBFS ({:.0}% of the energy) in {secs:.1} s of audio",
        l.dbfs,
        l.share * 100.0
    );
    l
}

/// Reads a WAV (any channel count; channels are averaged; 8..32-bit int or
/// float) and measures the tone at `freq` over the middle half of the
/// recording, in 100 ms Hann-windowed Goertzel blocks.
pub fn tone_level(path: &Path, freq: f64) -> ToneLevel {
    let (samples, rate) = read_mono(path);
    let n = samples.len();
    let middle = &samples[n / 4..n - n / 4];
    analyse(middle, rate, freq)
}

/// [`tone_level`] over the seconds `from..to` of the recording (clipped to its length), to
/// look at one phase of a call (ringing, early media, connected).
pub fn tone_level_between(path: &Path, freq: f64, from: f64, to: f64) -> ToneLevel {
    let (samples, rate) = read_mono(path);
    let at = |t: f64| ((t.max(0.0) * f64::from(rate)) as usize).min(samples.len());
    let (a, b) = (at(from), at(to));
    analyse(&samples[a..b.max(a)], rate, freq)
}

fn analyse(x: &[f64], rate: u32, freq: f64) -> ToneLevel {
    let block = (rate as usize / 10).max(16);
    let window: Vec<f64> = (0..block)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (block - 1) as f64).cos())
        .collect();
    let wsum: f64 = window.iter().sum();
    let mut tone_power = 0.0; // mean of A^2/2 over blocks
    let mut total_power = 0.0; // mean of x^2 over blocks
    let mut blocks = 0usize;
    for chunk in x.chunks_exact(block) {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for (v, win) in chunk.iter().zip(&window) {
            let s0 = v * win + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let mag2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        let amp = 2.0 * mag2.max(0.0).sqrt() / wsum;
        tone_power += amp * amp / 2.0;
        total_power += chunk.iter().map(|v| v * v).sum::<f64>() / block as f64;
        blocks += 1;
    }
    if blocks == 0 {
        return ToneLevel {
            dominant: false,
            dbfs: f64::NEG_INFINITY,
            share: 0.0,
            rms_dbfs: f64::NEG_INFINITY,
            analysed_secs: x.len() as f64 / f64::from(rate),
            sample_rate: rate,
        };
    }
    tone_power /= blocks as f64;
    total_power /= blocks as f64;
    let share = if total_power > 0.0 {
        (tone_power / total_power).min(1.0)
    } else {
        0.0
    };
    // amplitude of the tone relative to full scale: sqrt(2 * power)
    let dbfs = 10.0 * (2.0 * tone_power).log10();
    let rms_dbfs = 10.0 * total_power.log10();
    ToneLevel {
        dominant: share >= 0.5,
        dbfs,
        share,
        rms_dbfs,
        analysed_secs: (blocks * block) as f64 / f64::from(rate),
        sample_rate: rate,
    }
}

/// Samples normalised to -1..1 (channels averaged) and the sample rate.
pub fn read_mono(path: &Path) -> (Vec<f64>, u32) {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot read WAV {}: {e}", path.display()));
    let spec = r.spec();
    let ch = usize::from(spec.channels.max(1));
    let interleaved: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .map(|s| f64::from(s.unwrap_or(0.0)))
            .collect(),
        hound::SampleFormat::Int => {
            let scale = f64::from(1u32 << (spec.bits_per_sample.clamp(8, 32) - 1));
            r.samples::<i32>()
                .map(|s| f64::from(s.unwrap_or(0)) / scale)
                .collect()
        }
    };
    let mono = interleaved
        .chunks(ch)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    (mono, spec.sample_rate)
}

/// Duration of a WAV file in seconds (0 if unreadable).
pub fn wav_secs(path: &Path) -> f64 {
    hound::WavReader::open(path)
        .map(|r| {
            let s = r.spec();
            f64::from(r.duration()) / f64::from(s.sample_rate)
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_its_level() {
        let dir = crate::TestDir::new("audio self test");
        let p = dir.join("t.wav");
        write_tone(&p, 1000.0, 8000, 2.0, 0.5);
        let l = tone_level(&p, 1000.0);
        assert!(l.dominant, "{l:?}");
        assert!((l.dbfs - (-6.02)).abs() < 0.5, "{l:?}");
        assert!((l.analysed_secs - 1.0).abs() < 0.11, "{l:?}");
        let other = tone_level(&p, 440.0);
        assert!(!other.dominant && other.dbfs < -40.0, "{other:?}");

        let p48 = dir.join("t48.wav");
        write_tone(&p48, 440.0, 48000, 1.0, 0.25);
        let l = tone_level(&p48, 440.0);
        assert!(l.present(-30.0) && (l.dbfs - (-12.04)).abs() < 0.5, "{l:?}");
    }

    #[test]
    fn silence_is_not_a_tone() {
        let dir = crate::TestDir::new("audio silence");
        let p = dir.join("s.wav");
        write_tone(&p, 1000.0, 8000, 1.0, 0.0);
        let l = tone_level(&p, 1000.0);
        assert!(!l.dominant && !l.present(-30.0), "{l:?}");
    }
}
