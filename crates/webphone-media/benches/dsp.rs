//! Cost of the capture-path audio processing per 20 ms frame (one render + one capture frame,
//! i.e. two 10 ms chunks each) at the codec rates 8, 16 and 48 kHz, and of the voice detector.
//! Run: `cargo bench -p webphone-media --bench dsp`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use webphone_media::dsp::{AudioProcessor, DspConfig, VoiceDetector};

fn signal(n: usize, seed: u32) -> Vec<i16> {
    let mut x = seed;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x >> 20) as i32 - 2048;
            ((i as f32 * 0.05).sin() * 6000.0) as i16 + noise as i16
        })
        .collect()
}

fn apm_bench(c: &mut Criterion) {
    let configs = [
        (
            "aec",
            DspConfig {
                aec: true,
                ..DspConfig::default()
            },
        ),
        (
            "aec_ns_agc",
            DspConfig {
                aec: true,
                ns: true,
                agc: true,
                ..DspConfig::default()
            },
        ),
    ];
    for rate in [8000u32, 16_000, 48_000] {
        let n = rate as usize / 50;
        // One second of far end and microphone, cycled.
        let far = signal(n * 50, 1);
        let mic = signal(n * 50, 2);
        for (name, cfg) in configs {
            let Ok(mut p) = AudioProcessor::new(rate, cfg) else {
                continue;
            };
            let mut frame = vec![0i16; n];
            let mut k = 0usize;
            c.bench_function(&format!("dsp_{name}_20ms_{}k", rate / 1000), |b| {
                b.iter(|| {
                    let at = (k % 50) * n;
                    k += 1;
                    p.render(black_box(&far[at..at + n]));
                    frame.copy_from_slice(&mic[at..at + n]);
                    p.capture(black_box(&mut frame));
                })
            });
        }
    }
}

fn vad_bench(c: &mut Criterion) {
    let frame = signal(960, 3);
    let mut d = VoiceDetector::new(20);
    c.bench_function("vad_20ms_48k", |b| b.iter(|| d.process(black_box(&frame))));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = apm_bench, vad_bench
}
criterion_main!(benches);
