//! Call recording taps and WAV files, read back from disk.

use std::path::PathBuf;
use std::time::Duration;

use webphone_media::local::recorder::RecordError;
use webphone_media::local::tones::goertzel_amplitude;
use webphone_media::local::wav::read_wav_i16;
use webphone_media::local::{CallRecorder, MixerConfig, MixerHub, RecordChannels, RecordTap};
use webphone_media::{NullSink, PcmSink, PcmSource, SilenceSource};

mod common;
use common::Sine;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-rec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn channel(x: &[i16], ch: usize, n: usize) -> Vec<i16> {
    x.iter().skip(ch).step_by(n).copied().collect()
}

const AMP: f64 = 6000.0;

/// One call at `rate`: local = 500 Hz source, remote = 800 Hz frames into the sink.
struct Call {
    rate: u32,
    source: Box<dyn PcmSource>,
    sink: Box<dyn PcmSink>,
    remote: Sine,
}

impl Call {
    fn new(tap: &RecordTap, rate: u32) -> Call {
        Call {
            rate,
            source: Box::new(tap.source(Box::new(Sine::new(rate, 500.0, AMP)))),
            sink: Box::new(tap.sink(Box::new(NullSink))),
            remote: Sine::new(rate, 800.0, AMP),
        }
    }

    fn frame(&mut self, with_remote: bool) -> Vec<i16> {
        let mut out = vec![0i16; self.rate as usize / 50];
        self.source.read_frame(&mut out);
        if with_remote {
            let f = self.remote.frame();
            self.sink.write_frame(&f);
        }
        out
    }
}

#[test]
fn stereo_recording_has_local_left_and_remote_right_and_is_valid_while_growing() {
    let dir = temp("stereo");
    let path = dir.join("call.wav");
    let tap = RecordTap::new();
    let mut call = Call::new(&tap, 8000);
    let mut rec = CallRecorder::start(&tap, &path, 8000, RecordChannels::Stereo).expect("start");
    assert_eq!(rec.path(), path.as_path());
    assert!(tap.is_recording());
    for i in 1..=50 {
        call.frame(true);
        if i % 5 == 0 {
            assert_eq!(rec.pump().expect("pump"), 800);
            // The file on disk is complete up to this pump.
            let (rate, ch, s) = read_wav_i16(&path).expect("valid while recording");
            assert_eq!((rate, ch, s.len()), (8000, 2, i * 160 * 2));
        }
    }
    let sum = rec.finish().expect("finish");
    assert_eq!(
        (
            sum.frames,
            sum.duration_ms,
            sum.channels,
            sum.rate,
            sum.dropped
        ),
        (8000, 1000, 2, 8000, 0)
    );
    assert!(!tap.is_recording());
    let (_, _, s) = read_wav_i16(&path).expect("read");
    let (l, r) = (channel(&s, 0, 2), channel(&s, 1, 2));
    assert!((goertzel_amplitude(&l, 500.0, 8000) - AMP).abs() < 30.0);
    assert!(goertzel_amplitude(&l, 800.0, 8000) < 5.0);
    assert!((goertzel_amplitude(&r, 800.0, 8000) - AMP).abs() < 30.0);
    assert!(goertzel_amplitude(&r, 500.0, 8000) < 5.0);
    // The recording is sample-exact: the left channel is the source's output.
    let mut reference = Sine::new(8000, 500.0, AMP);
    let mut expect = vec![0i16; 8000];
    reference.read_frame(&mut expect);
    assert_eq!(l, expect);
    // After the recording the taps only pass audio through.
    call.frame(true);
    let (_, _, again) = read_wav_i16(&path).expect("read");
    assert_eq!(again.len(), s.len());
}

#[test]
fn mono_recording_mixes_both_sides() {
    let dir = temp("mono");
    let path = dir.join("m.wav");
    let tap = RecordTap::new();
    let mut call = Call::new(&tap, 16_000);
    let rec = CallRecorder::start(&tap, &path, 16_000, RecordChannels::Mono).expect("start");
    for _ in 0..25 {
        call.frame(true);
    }
    let sum = rec.finish().expect("finish");
    assert_eq!((sum.frames, sum.channels), (25 * 320, 1));
    let (rate, ch, s) = read_wav_i16(&path).expect("read");
    assert_eq!((rate, ch, s.len()), (16_000, 1, 8000));
    assert!((goertzel_amplitude(&s, 500.0, 16_000) - AMP).abs() < 30.0);
    assert!((goertzel_amplitude(&s, 800.0, 16_000) - AMP).abs() < 30.0);
}

#[test]
fn a_crash_leaves_a_valid_file_up_to_the_last_pump() {
    let dir = temp("crash");
    let path = dir.join("c.wav");
    let tap = RecordTap::new();
    let mut call = Call::new(&tap, 8000);
    let mut rec = CallRecorder::start(&tap, &path, 8000, RecordChannels::Stereo).expect("start");
    for _ in 0..10 {
        call.frame(true);
    }
    rec.pump().expect("pump");
    for _ in 0..3 {
        call.frame(true);
    }
    // Simulated crash: no finish, no destructor.
    std::mem::forget(rec);
    let (_, ch, s) = read_wav_i16(&path).expect("valid after crash");
    assert_eq!((ch, s.len()), (2, 10 * 160 * 2));
}

#[test]
fn a_silent_side_is_padded_so_channels_stay_aligned() {
    let dir = temp("skew");
    let path = dir.join("s.wav");
    let tap = RecordTap::new();
    let mut call = Call::new(&tap, 8000);
    let mut rec = CallRecorder::start(&tap, &path, 8000, RecordChannels::Stereo).expect("start");
    // 100 ms: both sides; then 400 ms with no playout (e.g. held).
    for _ in 0..5 {
        call.frame(true);
    }
    for _ in 0..5 {
        call.frame(false);
    }
    // 100 ms behind: within the skew allowance, only the paired part is written.
    assert_eq!(rec.pump().expect("pump"), 800);
    for _ in 0..15 {
        call.frame(false);
    }
    // 400 ms behind: padded.
    assert_eq!(rec.pump().expect("pump"), 20 * 160);
    let sum = rec.finish().expect("finish");
    assert_eq!(sum.frames, 25 * 160);
    let (_, _, s) = read_wav_i16(&path).expect("read");
    let r = channel(&s, 1, 2);
    assert!(goertzel_amplitude(&r[..800], 800.0, 8000) > AMP * 0.9);
    assert!(r[800..].iter().all(|&x| x == 0));
    let l = channel(&s, 0, 2);
    assert!(goertzel_amplitude(&l[800..], 500.0, 8000) > AMP * 0.9);
}

#[test]
fn errors_name_the_file_and_a_tap_records_once_at_a_time() {
    let dir = temp("err");
    let tap = RecordTap::new();
    let missing = dir.join("no/such/dir/x.wav");
    let err = CallRecorder::start(&tap, &missing, 8000, RecordChannels::Mono)
        .err()
        .expect("missing dir is an error");
    assert!(err.to_string().contains("no/such/dir/x.wav"), "{err}");
    assert!(!tap.is_recording());
    let a = CallRecorder::start(&tap, &dir.join("a.wav"), 8000, RecordChannels::Mono).expect("a");
    assert!(matches!(
        CallRecorder::start(&tap, &dir.join("b.wav"), 8000, RecordChannels::Mono),
        Err(RecordError::Busy)
    ));
    a.finish().expect("finish");
    // A second recording on the same call after the first finished.
    let b = CallRecorder::start(&tap, &dir.join("b.wav"), 8000, RecordChannels::Mono).expect("b");
    drop(b);
    assert!(!tap.is_recording());
}

#[test]
fn recorder_thread_writes_everything_by_finish() {
    let dir = temp("thread");
    let path = dir.join("t.wav");
    let tap = RecordTap::new();
    let mut call = Call::new(&tap, 8000);
    let rec = CallRecorder::start(&tap, &path, 8000, RecordChannels::Stereo).expect("start");
    let th = rec.spawn(Duration::from_millis(5)).expect("spawn");
    for _ in 0..30 {
        call.frame(true);
    }
    let sum = th.finish().expect("finish");
    assert_eq!(sum.frames, 30 * 160);
    let (_, _, s) = read_wav_i16(&path).expect("read");
    assert_eq!(s.len(), 30 * 160 * 2);
}

#[test]
fn each_conference_member_recording_holds_the_whole_conference() {
    // The mic is silent here; members 1..3 speak 500/700/1100 Hz at 8 kHz.
    let mut hub = MixerHub::new(
        MixerConfig::default(),
        Box::new(SilenceSource),
        Box::new(NullSink),
    )
    .expect("hub");
    let h = hub.handle();
    let dir = temp("conf");
    let freqs = [500.0, 700.0, 1100.0];
    let mut calls = Vec::new();
    let mut recs = Vec::new();
    for (i, &f) in freqs.iter().enumerate() {
        let line = i as u32 + 1;
        let (src, sink) = h.add_line(line, 8000).expect("line");
        let tap = RecordTap::new();
        let source = tap.source(Box::new(src));
        let sink = tap.sink(Box::new(sink));
        recs.push(
            CallRecorder::start(
                &tap,
                &dir.join(format!("line{line}.wav")),
                8000,
                RecordChannels::Mono,
            )
            .expect("start"),
        );
        calls.push((source, sink, Sine::new(8000, f, AMP)));
    }
    h.conference_all();
    for _ in 0..50 {
        for (_, sink, voice) in &mut calls {
            let f = voice.frame();
            sink.write_frame(&f);
        }
        hub.tick();
        for (source, _, _) in &mut calls {
            let mut out = vec![0i16; 160];
            source.read_frame(&mut out);
        }
    }
    for (i, rec) in recs.into_iter().enumerate() {
        let sum = rec.finish().expect("finish");
        let (_, _, s) = read_wav_i16(&sum.path).expect("read");
        let settled = &s[1600..];
        for &f in &freqs {
            let a = goertzel_amplitude(settled, f, 8000);
            assert!(
                (a - AMP).abs() < AMP * 0.05,
                "line {} recording: {f} Hz at {a:.0}",
                i + 1
            );
        }
    }
}
