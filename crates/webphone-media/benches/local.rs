//! Local audio: conference mixer tick, per-call line adapters (with resampling), resampler,
//! tone generation and recording taps, per 20 ms frame.
//! Run: `cargo bench -p webphone-media --bench local`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use webphone_media::local::tones::{ToneKind, TonePlan};
use webphone_media::local::{LineSink, LineSource, MixerConfig, MixerHub, RecordTap, Resampler};
use webphone_media::{NullSink, PcmSink, PcmSource, SilenceSource};

fn sine(rate: u32, freq: f32) -> Vec<i16> {
    (0..rate as usize / 50)
        .map(|i| {
            ((i as f32 * 2.0 * std::f32::consts::PI * freq / rate as f32).sin() * 8000.0) as i16
        })
        .collect()
}

/// A hub with `n` conferenced lines at `rate`; one period = every call writes and reads a frame
/// and the hub ticks (what all tasks together cost per 20 ms).
fn conference(c: &mut Criterion, n: u32, rate: u32) {
    let mut hub = MixerHub::new(
        MixerConfig::default(),
        Box::new(SilenceSource),
        Box::new(NullSink),
    )
    .expect("hub");
    let h = hub.handle();
    let mut lines: Vec<(LineSource, LineSink)> = (1..=n)
        .map(|l| h.add_line(l, rate).expect("line"))
        .collect();
    h.conference_all();
    let voice = sine(rate, 440.0);
    let mut out = vec![0i16; voice.len()];
    c.bench_function(&format!("conference_{n}x{}k_period", rate / 1000), |b| {
        b.iter(|| {
            for (_, sink) in &mut lines {
                sink.write_frame(black_box(&voice));
            }
            hub.tick();
            for (src, _) in &mut lines {
                src.read_frame(&mut out);
            }
            black_box(&out);
        })
    });
}

fn mixer_bench(c: &mut Criterion) {
    conference(c, 3, 8000);
    conference(c, 3, 48_000);
    conference(c, 10, 16_000);
}

fn resampler_bench(c: &mut Criterion) {
    for (from, to) in [(8000u32, 48_000u32), (48_000, 8000), (16_000, 48_000)] {
        let mut r = Resampler::new(from, to).expect("rates");
        let input: Vec<f32> = sine(from, 700.0).into_iter().map(f32::from).collect();
        let mut out = vec![0.0f32; r.max_output(input.len())];
        c.bench_function(
            &format!("resample_{}k_to_{}k_20ms", from / 1000, to / 1000),
            |b| b.iter(|| black_box(r.process(black_box(&input), &mut out))),
        );
    }
}

fn tones_bench(c: &mut Criterion) {
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::Dial, 48_000);
    let mut out = vec![0i16; 960];
    c.bench_function("tone_dual_48k_20ms", |b| {
        b.iter(|| {
            g.read_frame(&mut out);
            black_box(&out);
        })
    });
}

fn recorder_bench(c: &mut Criterion) {
    let tap = RecordTap::new();
    let dir = std::env::temp_dir().join(format!("wp-bench-rec-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut src = tap.source(Box::new(SilenceSource));
    let mut sink = tap.sink(Box::new(NullSink));
    let frame = sine(8000, 500.0);
    let mut out = vec![0i16; 160];
    let mut rec = webphone_media::local::CallRecorder::start(
        &tap,
        &dir.join("bench.wav"),
        8000,
        webphone_media::local::RecordChannels::Stereo,
    )
    .expect("recorder");
    let mut i = 0u32;
    c.bench_function("record_stereo_8k_20ms_taps_and_write", |b| {
        b.iter(|| {
            src.read_frame(&mut out);
            sink.write_frame(black_box(&frame));
            i += 1;
            if i % 5 == 0 {
                black_box(rec.pump().expect("pump"));
            }
        })
    });
    let _ = rec.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    mixer_bench,
    resampler_bench,
    tones_bench,
    recorder_bench
);
criterion_main!(benches);
