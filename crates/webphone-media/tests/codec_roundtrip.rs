//! Codec round trips: tones through each codec's encoder and decoder keep their frequency and
//! level, frames have the sizes of RFC 3551 / RFC 7587, and decoders survive loss and garbage.
#![allow(clippy::unwrap_used)]

use webphone_media::codec::g722::{G722Decoder, G722Encoder};
use webphone_media::codec::{new_decoder, new_encoder, CodecConfig, OpusConfig};
use webphone_media::Codec;

fn tone(freq: f64, rate: u32, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Share of the signal's energy at `freq` (Goertzel power of a Hann-windowed block relative to
/// the windowed block's total energy; 1.0 for a pure tone).
fn tone_share(x: &[i16], freq: f64, rate: u32) -> f64 {
    let n = x.len();
    let w: Vec<f64> = (0..n)
        .map(|i| {
            let h = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
            h * f64::from(x[i])
        })
        .collect();
    let k = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in &w {
        let s0 = v + 2.0 * k.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * k.cos() * s1 * s2;
    let energy: f64 = w.iter().map(|v| v * v).sum();
    // For a Hann-windowed sinusoid of amplitude A: |X|^2 = (A n / 4)^2 and the windowed
    // energy is 3 A^2 n / 16, so a pure tone gives power = energy * n / 3.
    let ideal = energy * n as f64 / 3.0;
    power / ideal
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Runs `seconds` of a tone through `codec` frame by frame (20 ms) and returns the decoded
/// audio without its first 200 ms (codec start-up).
fn round_trip(codec: Codec, cfg: &CodecConfig, freq: f64, amplitude: f64) -> (Vec<i16>, Vec<i16>) {
    let rate = codec.audio_rate();
    let frame = codec.frame_samples(20);
    let input = tone(freq, rate, amplitude, frame * 50);
    let mut enc = new_encoder(codec, cfg).unwrap();
    let mut dec = new_decoder(codec).unwrap();
    let mut out = Vec::new();
    for f in input.chunks_exact(frame) {
        let mut bytes = Vec::new();
        enc.encode(f, &mut bytes).unwrap();
        let before = out.len();
        dec.decode(&bytes, &mut out).unwrap();
        assert_eq!(
            out.len() - before,
            frame,
            "{codec:?} decodes one frame per packet"
        );
    }
    let skip = rate as usize / 5;
    (input[skip..].to_vec(), out[skip..].to_vec())
}

fn assert_tone_kept(codec: Codec, freq: f64, min_share: f64, max_level_db: f64) {
    let (input, output) = round_trip(codec, &CodecConfig::default(), freq, 10_000.0);
    let share = tone_share(&output, freq, codec.audio_rate());
    let level = db(rms(&output) / rms(&input));
    eprintln!("{codec:?} {freq} Hz: tone share {share:.3}, level change {level:+.2} dB");
    assert!(
        share >= min_share,
        "{codec:?} {freq} Hz: only {share:.3} of the energy at the tone"
    );
    assert!(
        level.abs() <= max_level_db,
        "{codec:?} {freq} Hz: level changed by {level:+.2} dB"
    );
}

#[test]
fn g722_round_trip_keeps_a_1khz_tone() {
    assert_tone_kept(Codec::G722, 1000.0, 0.95, 1.0);
}

#[test]
fn g722_round_trip_keeps_a_5khz_tone_in_the_upper_band() {
    // 5 kHz is above the 4 kHz sub-band split: it travels in the 2-bit higher band.
    assert_tone_kept(Codec::G722, 5000.0, 0.80, 2.0);
}

#[test]
fn g722_lower_band_waveform_is_close_after_the_codec_delay() {
    // Beyond frequency and level: the waveform itself survives (SNR at the best alignment
    // within 40 samples, which covers the QMF delay of G.722 §3.2/§4.4).
    let (input, output) = round_trip(Codec::G722, &CodecConfig::default(), 800.0, 8000.0);
    let best = (0..40)
        .map(|d| {
            let n = input.len() - 40;
            let noise: f64 = (0..n)
                .map(|i| (f64::from(output[i + d]) - f64::from(input[i])).powi(2))
                .sum();
            let signal: f64 = (0..n).map(|i| f64::from(input[i]).powi(2)).sum();
            (10.0 * (signal / noise).log10(), d)
        })
        .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!("G.722 SNR {:.1} dB at delay {}", best.0, best.1);
    assert!(best.0 > 20.0, "SNR {:.1} dB", best.0);
}

#[test]
fn g722_uses_one_octet_per_two_samples_and_8khz_rtp_clock() {
    let mut enc = G722Encoder::new();
    let mut bytes = Vec::new();
    enc.encode(&tone(1000.0, 16000, 5000.0, 320), &mut bytes);
    assert_eq!(bytes.len(), 160);
    assert_eq!(Codec::G722.clock_rate(), 8000);
    assert_eq!(Codec::G722.audio_rate(), 16000);
    assert_eq!(Codec::G722.timestamp_step(20), 160);
    assert_eq!(Codec::G722.frame_samples(20), 320);
    let mut dec = G722Decoder::new();
    let mut pcm = Vec::new();
    dec.decode(&bytes, &mut pcm);
    assert_eq!(pcm.len(), 320);
}

#[test]
fn pcmu_and_pcma_round_trip_keep_a_1khz_tone() {
    assert_tone_kept(Codec::Pcmu, 1000.0, 0.98, 0.5);
    assert_tone_kept(Codec::Pcma, 1000.0, 0.98, 0.5);
}

#[test]
fn opus_round_trip_keeps_1khz_and_5khz_tones_at_48khz() {
    assert_tone_kept(Codec::Opus, 1000.0, 0.90, 2.0);
    assert_tone_kept(Codec::Opus, 5000.0, 0.85, 3.0);
    assert_eq!(Codec::Opus.timestamp_step(20), 960);
    assert_eq!(Codec::Opus.frame_samples(20), 960);
}

#[test]
fn opus_bitrate_setting_changes_the_packet_size() {
    let sizes = |bitrate: i32| {
        let cfg = CodecConfig {
            opus: OpusConfig {
                bitrate: Some(bitrate),
                inband_fec: false,
                ..OpusConfig::default()
            },
        };
        let mut enc = new_encoder(Codec::Opus, &cfg).unwrap();
        let input = tone(440.0, 48000, 8000.0, 960 * 50);
        let mut total = 0usize;
        for f in input.chunks_exact(960) {
            let mut b = Vec::new();
            enc.encode(f, &mut b).unwrap();
            total += b.len();
        }
        total * 8 // bits per second (50 frames = 1 s)
    };
    let low = sizes(12_000);
    let high = sizes(64_000);
    eprintln!("Opus 12 kbit/s -> {low} bit/s, 64 kbit/s -> {high} bit/s");
    assert!(low < 16_000 && low > 6_000, "{low}");
    assert!(high > 40_000, "{high}");
}

#[test]
fn opus_dtx_shrinks_silence_packets() {
    let cfg = |dtx| CodecConfig {
        opus: OpusConfig {
            dtx,
            ..OpusConfig::default()
        },
    };
    let silence_bytes = |dtx| {
        let mut enc = new_encoder(Codec::Opus, &cfg(dtx)).unwrap();
        let mut total = 0;
        for _ in 0..50 {
            let mut b = Vec::new();
            enc.encode(&[0i16; 960], &mut b).unwrap();
            total += b.len();
        }
        total
    };
    let (with, without) = (silence_bytes(true), silence_bytes(false));
    eprintln!("1 s of silence: {with} bytes with DTX, {without} without");
    assert!(with < without, "{with} vs {without}");
}

#[test]
fn opus_fec_recovers_a_lost_packet_better_than_concealment() {
    let cfg = CodecConfig {
        opus: OpusConfig {
            inband_fec: true,
            packet_loss_percent: 20,
            bitrate: Some(32_000),
            ..OpusConfig::default()
        },
    };
    let input = tone(700.0, 48000, 8000.0, 960 * 40);
    let mut enc = new_encoder(Codec::Opus, &cfg).unwrap();
    let packets: Vec<Vec<u8>> = input
        .chunks_exact(960)
        .map(|f| {
            let mut b = Vec::new();
            enc.encode(f, &mut b).unwrap();
            b
        })
        .collect();
    let lost = 30;
    let decode_with = |use_fec: bool| {
        let mut dec = new_decoder(Codec::Opus).unwrap();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i == lost {
                if use_fec {
                    assert!(dec.decode_fec(&packets[i + 1], 960, &mut out).unwrap());
                } else {
                    dec.conceal(960, &mut out).unwrap();
                }
            } else {
                dec.decode(p, &mut out).unwrap();
            }
        }
        out
    };
    let fec = decode_with(true);
    let plc = decode_with(false);
    assert_eq!(fec.len(), input.len());
    assert_eq!(plc.len(), input.len());
    let clean = decode_with_all(&packets);
    let err = |x: &[i16]| {
        let r = lost * 960..(lost + 1) * 960;
        x[r.clone()]
            .iter()
            .zip(&clean[r])
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
    };
    eprintln!(
        "lost frame error: FEC {:.3e}, PLC {:.3e}",
        err(&fec),
        err(&plc)
    );
    assert!(err(&fec) < err(&plc));
}

fn decode_with_all(packets: &[Vec<u8>]) -> Vec<i16> {
    let mut dec = new_decoder(Codec::Opus).unwrap();
    let mut out = Vec::new();
    for p in packets {
        dec.decode(p, &mut out).unwrap();
    }
    out
}

#[test]
fn decoders_reject_or_survive_garbage_without_panicking() {
    let mut state: u32 = 0x1234_5678;
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
        let mut dec = new_decoder(codec).unwrap();
        for len in [0usize, 1, 2, 3, 17, 160, 400, 1500] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let mut out = Vec::new();
            let _ = dec.decode(&data, &mut out);
            assert!(out.len() <= 5760, "{codec:?}");
        }
    }
}
