//! Micro-benchmarks: G.711 per 20 ms frame, encode+decode of one 20 ms frame for every codec
//! (through the per-call encoder/decoder objects), and jitter buffer per frame.
//! Run: `cargo bench -p webphone-media --bench media`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use webphone_media::g711;
use webphone_media::jitter::JitterBuffer;
use webphone_media::FRAME_SAMPLES;

fn frame() -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| ((i as f32 * 0.785).sin() * 12000.0) as i16)
        .collect()
}

fn g711_bench(c: &mut Criterion) {
    let pcm = frame();
    let mut enc = Vec::with_capacity(FRAME_SAMPLES);
    let mut dec = Vec::with_capacity(FRAME_SAMPLES);
    c.bench_function("ulaw_encode_160", |b| {
        b.iter(|| {
            enc.clear();
            g711::encode_ulaw(black_box(&pcm), &mut enc);
        })
    });
    c.bench_function("alaw_encode_160", |b| {
        b.iter(|| {
            enc.clear();
            g711::encode_alaw(black_box(&pcm), &mut enc);
        })
    });
    let mut coded = Vec::new();
    g711::encode_ulaw(&pcm, &mut coded);
    c.bench_function("ulaw_decode_160", |b| {
        b.iter(|| {
            dec.clear();
            g711::decode_ulaw(black_box(&coded), &mut dec);
        })
    });
    c.bench_function("alaw_decode_160", |b| {
        b.iter(|| {
            dec.clear();
            g711::decode_alaw(black_box(&coded), &mut dec);
        })
    });
}

/// G.711 decoding behind the jitter buffer's playout interface.
struct UlawPlayout;

impl webphone_media::jitter::PlayoutDecoder for UlawPlayout {
    fn output_rate(&self) -> u32 {
        8000
    }
    fn decode(&mut self, _pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
        g711::decode_ulaw(payload, out);
        true
    }
}

fn jitter_bench(c: &mut Criterion) {
    let mut coded = Vec::new();
    g711::encode_ulaw(&frame(), &mut coded);
    let mut jb = JitterBuffer::default();
    let mut dec = UlawPlayout;
    let now = Instant::now();
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    for _ in 0..3 {
        jb.push(seq, ts, 1, 8000, 0, &coded, 160, now);
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
    let mut out = [0i16; FRAME_SAMPLES];
    c.bench_function("jitter_push_pop_frame", |b| {
        b.iter(|| {
            jb.push(seq, ts, 1, 8000, 0, black_box(&coded), 160, now);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            black_box(jb.pop(now, &mut out, &mut dec));
        })
    });
}

/// Encode + decode of one 20 ms frame of a speech-band test signal per codec.
fn codec_bench(c: &mut Criterion) {
    use webphone_media::codec::{new_decoder, new_encoder, CodecConfig};
    use webphone_media::Codec;
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
        let n = codec.frame_samples(20);
        let rate = codec.audio_rate() as f32;
        // Two tones plus a slow amplitude change: not silence, so DTX/VAD paths do not skip work.
        let pcm: Vec<i16> = (0..n)
            .map(|i| {
                let t = i as f32 / rate;
                let v = (t * 2.0 * std::f32::consts::PI * 440.0).sin() * 6000.0
                    + (t * 2.0 * std::f32::consts::PI * 1870.0).sin() * 3000.0;
                v as i16
            })
            .collect();
        let cfg = CodecConfig::default();
        let (Ok(mut enc), Ok(mut dec)) = (new_encoder(codec, &cfg), new_decoder(codec)) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(1500);
        let mut out = Vec::with_capacity(n);
        let name = format!(
            "{}_encode_decode_20ms",
            codec.encoding_name().to_lowercase()
        );
        c.bench_function(&name, |b| {
            b.iter(|| {
                bytes.clear();
                out.clear();
                let _ = enc.encode(black_box(&pcm), &mut bytes);
                let _ = dec.decode(black_box(&bytes), &mut out);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30);
    targets = g711_bench, codec_bench, jitter_bench
}
criterion_main!(benches);
