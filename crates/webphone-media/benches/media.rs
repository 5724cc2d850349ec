//! Micro-benchmarks: G.711 per 20 ms frame and jitter buffer per frame.
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

fn jitter_bench(c: &mut Criterion) {
    let pcm = frame();
    let mut jb = JitterBuffer::default();
    let now = Instant::now();
    let mut seq: u16 = 0;
    for _ in 0..3 {
        jb.push(seq, 1, &pcm, now);
        seq = seq.wrapping_add(1);
    }
    let mut out = [0i16; FRAME_SAMPLES];
    c.bench_function("jitter_push_pop_frame", |b| {
        b.iter(|| {
            jb.push(seq, 1, black_box(&pcm), now);
            seq = seq.wrapping_add(1);
            black_box(jb.pop(now, &mut out));
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(30);
    targets = g711_bench, jitter_bench
}
criterion_main!(benches);
