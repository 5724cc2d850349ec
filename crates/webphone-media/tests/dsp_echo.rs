//! Echo cancellation, noise suppression and gain control on a simulated acoustic path.
//!
//! The far end is a speech-like signal (filtered noise with a syllable envelope and pauses);
//! the "room" delays it by 60 ms and convolves it with a short impulse response (-6 dB
//! direct path plus reflections); the microphone hears that echo plus the near end. Measured:
//! echo return loss enhancement (mic power / output power while only the far end talks) after
//! convergence, and a near-end tone's level at the output (Goertzel at its frequency).

use webphone_media::dsp::{AudioProcessor, DspConfig};

const PI2: f64 = 2.0 * std::f64::consts::PI;

struct Rng(u32);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0) / f64::from(u32::MAX) * 2.0 - 1.0
    }
}

/// Speech-like far end at `rate`: low-passed noise with a 3-4 Hz syllable envelope, 0.4 s
/// pauses every 2 s; about -20 dBFS while talking.
fn far_end(rate: u32, seconds: f64) -> Vec<f64> {
    let n = (f64::from(rate) * seconds) as usize;
    let mut rng = Rng(0xC0FF_EE11);
    let a = (-PI2 * 1500.0 / f64::from(rate)).exp();
    let mut lp = 0.0;
    let mut lp2 = 0.0;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            lp = a * lp + (1.0 - a) * rng.uniform();
            lp2 = a * lp2 + (1.0 - a) * lp;
            let syllable = (0.5 * (1.0 + (PI2 * 3.3 * t).sin())).powf(0.7);
            let talking = if t % 2.0 < 1.6 { 1.0 } else { 0.0 };
            lp2 * syllable * talking * 30_000.0
        })
        .collect()
}

/// The echo path: 60 ms delay, then taps (delay ms, gain).
fn echo_of(far: &[f64], rate: u32) -> Vec<f64> {
    let ms = |m: f64| (m * f64::from(rate) / 1000.0) as usize;
    let taps = [(60.0, 0.5), (61.0, -0.25), (63.5, 0.12), (68.0, 0.06)];
    let mut out = vec![0.0; far.len()];
    for (d, g) in taps {
        let d = ms(d);
        for i in d..far.len() {
            out[i] += g * far[i - d];
        }
    }
    out
}

fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

fn db(p: f64) -> f64 {
    10.0 * p.max(1e-12).log10()
}

/// Amplitude of the component at `freq` (Goertzel).
fn tone_amplitude(x: &[f64], rate: u32, freq: f64) -> f64 {
    let w = PI2 * freq / f64::from(rate);
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let re = s1 - s2 * w.cos();
    let im = s2 * w.sin();
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

fn to_i16(x: f64) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// Run far + near through the processor in 20 ms frames; returns (mic, output).
fn run(rate: u32, cfg: DspConfig, far: &[f64], near: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut p = AudioProcessor::new(rate, cfg).expect("supported rate");
    let frame = rate as usize / 50;
    let echo = echo_of(far, rate);
    let mut mic_all = Vec::with_capacity(far.len());
    let mut out_all = Vec::with_capacity(far.len());
    for start in (0..far.len() - frame + 1).step_by(frame) {
        let render: Vec<i16> = far[start..start + frame]
            .iter()
            .map(|&v| to_i16(v))
            .collect();
        p.render(&render);
        let mut mic: Vec<i16> = (start..start + frame)
            .map(|i| to_i16(echo[i] + near[i]))
            .collect();
        mic_all.extend(mic.iter().map(|&s| f64::from(s)));
        p.capture(&mut mic);
        out_all.extend(mic.iter().map(|&s| f64::from(s)));
    }
    let s = p.stats();
    eprintln!(
        "{rate} Hz {cfg:?}: APM erl {:?} erle {:?} delay {:?} ms",
        s.erl_db, s.erle_db, s.delay_ms
    );
    (mic_all, out_all)
}

/// Samples of [from, to) seconds where the far end talks.
fn talking_span(rate: u32, from: f64, to: f64) -> std::ops::Range<usize> {
    (from * f64::from(rate)) as usize..(to * f64::from(rate)) as usize
}

fn check_erle_and_near_end(rate: u32) {
    // 0-8 s: far end only. 8-10 s: far end silent, near-end tone. 10-12 s: double talk.
    let far_full = far_end(rate, 12.0);
    let n = far_full.len();
    let split = 8 * rate as usize;
    let dt = 10 * rate as usize;
    let far: Vec<f64> = far_full
        .iter()
        .enumerate()
        .map(|(i, &v)| if (split..dt).contains(&i) { 0.0 } else { v })
        .collect();
    let tone_f = 440.0;
    let tone_amp = 3000.0; // about -21 dBFS
    let near: Vec<f64> = (0..n)
        .map(|i| {
            if i >= split {
                tone_amp * (PI2 * tone_f * i as f64 / f64::from(rate)).sin()
            } else {
                0.0
            }
        })
        .collect();
    let cfg = DspConfig {
        aec: true,
        ..DspConfig::default()
    };
    let (mic, out) = run(rate, cfg, &far, &near);

    // ERLE over 4.0-5.6 s and 6.0-7.6 s (talking parts after convergence).
    let spans = [talking_span(rate, 4.0, 5.6), talking_span(rate, 6.0, 7.6)];
    let mic_p: f64 = spans.iter().map(|s| power(&mic[s.clone()])).sum();
    let out_p: f64 = spans.iter().map(|s| power(&out[s.clone()])).sum();
    let erle = db(mic_p) - db(out_p);
    eprintln!(
        "{rate} Hz: echo at mic {:.1} dBFS, ERLE {erle:.1} dB",
        db(mic_p / 2.0) - db(32768.0f64.powi(2))
    );
    assert!(erle > 20.0, "{rate} Hz: ERLE {erle:.1} dB");

    // Near end alone (8.5-10 s): the tone keeps its level.
    let alone = talking_span(rate, 8.5, 10.0);
    let in_amp = tone_amplitude(&mic[alone.clone()], rate, tone_f);
    let out_amp = tone_amplitude(&out[alone], rate, tone_f);
    let change = 20.0 * (out_amp / in_amp).log10();
    eprintln!("{rate} Hz: near-end tone alone {change:+.2} dB");
    assert!(
        change.abs() < 3.0,
        "{rate} Hz: near-end tone {change:+.2} dB"
    );

    // Double talk (10.5-11.6 s, far end talking): the tone is still clearly there.
    let both = talking_span(rate, 10.5, 11.6);
    let in_amp = tone_amplitude(&mic[both.clone()], rate, tone_f);
    let out_amp = tone_amplitude(&out[both], rate, tone_f);
    let change = 20.0 * (out_amp / in_amp).log10();
    eprintln!("{rate} Hz: near-end tone in double talk {change:+.2} dB");
    assert!(
        change > -10.0,
        "{rate} Hz: double-talk tone {change:+.2} dB"
    );
}

#[test]
fn aec_cancels_a_delayed_echo_and_keeps_the_near_end_at_8khz() {
    check_erle_and_near_end(8000);
}

#[test]
fn aec_cancels_a_delayed_echo_and_keeps_the_near_end_at_16khz() {
    check_erle_and_near_end(16_000);
}

#[test]
fn aec_cancels_a_delayed_echo_and_keeps_the_near_end_at_48khz() {
    check_erle_and_near_end(48_000);
}

#[test]
fn without_aec_the_echo_passes_unchanged() {
    let rate = 8000;
    let far = far_end(rate, 3.0);
    let near = vec![0.0; far.len()];
    let (mic, out) = run(rate, DspConfig::default(), &far, &near);
    assert_eq!(mic, out);
}

#[test]
fn noise_suppression_lowers_steady_noise() {
    let rate = 16_000;
    let n = 6 * rate as usize;
    let mut rng = Rng(7);
    let noise: Vec<f64> = (0..n).map(|_| rng.uniform() * 1000.0).collect();
    let far = vec![0.0; n];
    let cfg = DspConfig {
        ns: true,
        ..DspConfig::default()
    };
    let (mic, out) = run(rate, cfg, &far, &noise);
    let span = talking_span(rate, 3.0, 6.0);
    let reduction = db(power(&mic[span.clone()])) - db(power(&out[span]));
    eprintln!("NS: steady noise reduced by {reduction:.1} dB");
    assert!(reduction > 6.0, "{reduction:.1} dB");
}

#[test]
fn agc_raises_quiet_speech() {
    let rate = 16_000;
    // Speech-like signal about 30 dB below the usual level.
    let near: Vec<f64> = far_end(rate, 10.0).iter().map(|v| v * 0.03).collect();
    let far = vec![0.0; near.len()];
    let cfg = DspConfig {
        agc: true,
        ..DspConfig::default()
    };
    let (mic, out) = run(rate, cfg, &far, &near);
    let span = talking_span(rate, 8.0, 9.6);
    let gain = db(power(&out[span.clone()])) - db(power(&mic[span]));
    eprintln!("AGC: quiet speech raised by {gain:.1} dB");
    assert!(gain > 10.0, "{gain:.1} dB");
}
