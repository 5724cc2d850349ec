//! Tone generators: frequencies (Goertzel) and cadences (10 ms energy blocks), DTMF feedback,
//! beeps and the WAV-file player.

use std::path::PathBuf;

use webphone_media::local::tones::{
    dbm0_amplitude, dtmf_frequencies, goertzel_amplitude, Sound, ToneGenerator, ToneKind, TonePlan,
    WavPlayer,
};
use webphone_media::local::wav::WavWriter;
use webphone_media::PcmSource;

/// Generate `ms` of audio in 20 ms frames.
fn render(g: &mut dyn PcmSource, rate: u32, ms: u32) -> Vec<i16> {
    let frame = rate as usize / 50;
    let mut all = Vec::new();
    let mut f = vec![0i16; frame];
    for _ in 0..ms / 20 {
        g.read_frame(&mut f);
        all.extend_from_slice(&f);
    }
    all
}

/// On/off runs in milliseconds, from 10 ms blocks (on = RMS above a quarter of `amp`).
fn cadence(x: &[i16], rate: u32, amp: f32) -> Vec<(bool, u32)> {
    let block = rate as usize / 100;
    let mut runs: Vec<(bool, u32)> = Vec::new();
    for b in x.chunks(block) {
        let rms = (b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / b.len() as f64).sqrt();
        let on = rms > f64::from(amp) * 0.25;
        match runs.last_mut() {
            Some((o, ms)) if *o == on => *ms += 10,
            _ => runs.push((on, 10)),
        }
    }
    runs
}

fn on_part(x: &[i16], rate: u32, start_ms: u32, len_ms: u32) -> &[i16] {
    let a = (start_ms * rate / 1000) as usize;
    let b = ((start_ms + len_ms) * rate / 1000) as usize;
    &x[a..b]
}

const SINGLE: f32 = 7193.0; // -10 dBm0
const DUAL: f32 = 5092.0; // -13 dBm0

#[test]
fn levels_follow_dbm0() {
    assert!((dbm0_amplitude(-10.0) - SINGLE).abs() < 5.0);
    assert!((dbm0_amplitude(-13.0) - DUAL).abs() < 5.0);
}

#[test]
fn north_american_ringback_is_440_plus_480_two_on_four_off() {
    for rate in [8000, 48_000] {
        let mut g = TonePlan::NorthAmerica.generator(ToneKind::Ringback, rate);
        let x = render(&mut g, rate, 12_000);
        assert_eq!(
            cadence(&x, rate, DUAL),
            vec![(true, 2000), (false, 4000), (true, 2000), (false, 4000)]
        );
        let on = on_part(&x, rate, 100, 1800);
        for f in [440.0, 480.0] {
            let a = goertzel_amplitude(on, f, rate);
            assert!(
                (a - f64::from(DUAL)).abs() < 60.0,
                "{rate}: {f} Hz at {a:.0}"
            );
        }
        assert!(goertzel_amplitude(on, 425.0, rate) < 100.0);
        assert!(!g.is_finished());
    }
}

#[test]
fn european_ringback_busy_and_congestion_are_425_hz_with_their_cadences() {
    let rate = 8000;
    let mut g = TonePlan::Europe.generator(ToneKind::Ringback, rate);
    let x = render(&mut g, rate, 10_000);
    assert_eq!(
        cadence(&x, rate, SINGLE),
        vec![(true, 1000), (false, 4000), (true, 1000), (false, 4000)]
    );
    let a = goertzel_amplitude(on_part(&x, rate, 100, 800), 425.0, rate);
    assert!((a - f64::from(SINGLE)).abs() < 60.0, "{a}");

    let mut g = TonePlan::Europe.generator(ToneKind::Busy, rate);
    let x = render(&mut g, rate, 2000);
    assert_eq!(
        cadence(&x, rate, SINGLE),
        [(true, 500), (false, 500)].repeat(2)
    );

    let mut g = TonePlan::Europe.generator(ToneKind::Congestion, rate);
    let x = render(&mut g, rate, 1000);
    assert_eq!(
        cadence(&x, rate, SINGLE),
        [(true, 250), (false, 250)].repeat(2)
    );
}

#[test]
fn north_american_busy_and_reorder_are_480_plus_620() {
    let rate = 16_000;
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::Busy, rate);
    let x = render(&mut g, rate, 2000);
    assert_eq!(
        cadence(&x, rate, DUAL),
        [(true, 500), (false, 500)].repeat(2)
    );
    let on = on_part(&x, rate, 50, 400);
    for f in [480.0, 620.0] {
        assert!((goertzel_amplitude(on, f, rate) - f64::from(DUAL)).abs() < 60.0);
    }
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::Congestion, rate);
    let x = render(&mut g, rate, 1000);
    assert_eq!(
        cadence(&x, rate, DUAL),
        [(true, 250), (false, 250)].repeat(2)
    );
}

#[test]
fn call_waiting_beeps() {
    let rate = 8000;
    let mut g = TonePlan::Europe.generator(ToneKind::CallWaiting, rate);
    let x = render(&mut g, rate, 20_000);
    assert_eq!(
        cadence(&x, rate, SINGLE),
        [(true, 200), (false, 200), (true, 200), (false, 9400)].repeat(2)
    );
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::CallWaiting, rate);
    let x = render(&mut g, rate, 10_000);
    assert_eq!(cadence(&x, rate, SINGLE), vec![(true, 300), (false, 9700)]);
    let a = goertzel_amplitude(on_part(&x, rate, 20, 260), 440.0, rate);
    assert!((a - f64::from(SINGLE)).abs() < 100.0, "{a}");
}

#[test]
fn ringtone_warbles_in_the_ringing_cadence() {
    let rate = 48_000;
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::Ringtone, rate);
    let x = render(&mut g, rate, 12_000);
    assert_eq!(
        cadence(&x, rate, SINGLE),
        [(true, 2000), (false, 4000)].repeat(2)
    );
    let on = on_part(&x, rate, 0, 2000);
    for f in [800.0, 1000.0] {
        let a = goertzel_amplitude(on, f, rate);
        // Each frequency sounds half of the time.
        assert!(
            (a - f64::from(SINGLE) / 2.0).abs() < 400.0,
            "{f} Hz at {a:.0}"
        );
    }
    let mut g = TonePlan::Europe.generator(ToneKind::Ringtone, 8000);
    let x = render(&mut g, 8000, 5000);
    assert_eq!(cadence(&x, 8000, SINGLE), vec![(true, 1000), (false, 4000)]);
}

#[test]
fn dtmf_feedback_has_the_q23_pair_for_every_key() {
    let rows = [697.0, 770.0, 852.0, 941.0];
    let cols = [1209.0, 1336.0, 1477.0, 1633.0];
    for key in "0123456789*#ABCDabcd".chars() {
        let (lo, hi) = dtmf_frequencies(key).expect("key");
        let mut g = ToneGenerator::dtmf(key, 8000, 100).expect("dtmf");
        let x = render(&mut g, 8000, 200);
        assert!(g.is_finished());
        assert_eq!(
            cadence(&x, 8000, SINGLE),
            vec![(true, 100), (false, 100)],
            "{key}"
        );
        let on = &x[40..760];
        for &f in rows.iter().chain(&cols) {
            let a = goertzel_amplitude(on, f, 8000);
            if f == f64::from(lo) {
                assert!((a - 7193.0).abs() < 150.0, "{key}: low {f} at {a:.0}");
            } else if f == f64::from(hi) {
                assert!((a - 9056.0).abs() < 150.0, "{key}: high {f} at {a:.0}");
            } else {
                // 90 ms rectangular window: neighbours leak a few percent.
                assert!(a < 720.0, "{key}: {f} Hz should be absent, is {a:.0}");
            }
        }
    }
    assert!(ToneGenerator::dtmf('x', 8000, 100).is_none());
    assert_eq!(dtmf_frequencies('5'), Some((770.0, 1336.0)));
}

#[test]
fn beeps_are_short_and_finish() {
    let mut g = TonePlan::Europe.generator(ToneKind::IncomingBeep, 8000);
    let x = render(&mut g, 8000, 400);
    assert!(g.is_finished());
    assert_eq!(
        cadence(&x, 8000, SINGLE),
        vec![(true, 100), (false, 100), (true, 100), (false, 100)]
    );
    assert!(goertzel_amplitude(&x[80..720], 880.0, 8000) > 1000.0);
    let mut g = TonePlan::NorthAmerica.generator(ToneKind::ConnectBeep, 16_000);
    let x = render(&mut g, 16_000, 200);
    assert!(g.is_finished());
    assert_eq!(cadence(&x, 16_000, SINGLE), vec![(true, 150), (false, 50)]);
    let quieter = TonePlan::Europe
        .generator(ToneKind::Dial, 8000)
        .with_gain_db(-6.0);
    let mut q = quieter;
    let x = render(&mut q, 8000, 200);
    let a = goertzel_amplitude(&x, 425.0, 8000);
    assert!((a - f64::from(SINGLE) * 0.501).abs() < 40.0, "{a}");
    assert_eq!(TonePlan::for_country("us"), TonePlan::NorthAmerica);
    assert_eq!(TonePlan::for_country("DE"), TonePlan::Europe);
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-tones-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn wav_player_resamples_loops_and_finishes() {
    let dir = temp("player");
    let path = dir.join("ring.wav");
    // 0.5 s of 1 kHz at 16 kHz, stereo with the same signal on both channels.
    let mut w = WavWriter::create(&path, 16_000, 2).expect("create");
    let samples: Vec<i16> = (0..8000)
        .flat_map(|i| {
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16_000.0).sin())
                .round() as i16;
            [s, s]
        })
        .collect();
    w.write_samples(&samples).expect("write");
    w.finish().expect("finish");

    let mut once = WavPlayer::open(&path, 48_000, false).expect("open");
    assert!((once.len() as i64 - 24_000).abs() <= 1, "{}", once.len());
    let x = render(&mut once, 48_000, 1000);
    assert!(once.is_finished());
    let a = goertzel_amplitude(&x[2000..22_000], 1000.0, 48_000);
    assert!((a - 8000.0).abs() < 150.0, "{a}");
    assert!(x[24_100..].iter().all(|&s| s == 0));

    let mut looped = WavPlayer::open(&path, 8000, true).expect("open");
    let x = render(&mut looped, 8000, 2000);
    assert!(!looped.is_finished());
    let a = goertzel_amplitude(&x[8000..12_000], 1000.0, 8000);
    assert!((a - 8000.0).abs() < 300.0, "second pass {a}");

    let err = WavPlayer::open(&dir.join("missing.wav"), 8000, false).expect_err("missing file");
    assert!(err.to_string().contains("missing.wav"));
    std::fs::write(dir.join("bad.wav"), b"not a wav").expect("write");
    assert!(WavPlayer::open(&dir.join("bad.wav"), 8000, false).is_err());
}
