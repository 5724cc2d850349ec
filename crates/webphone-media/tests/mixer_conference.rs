//! Local conference mixer, driven by explicit 20 ms ticks (virtual time).

use std::sync::{Arc, Mutex};

use webphone_media::local::mixer::MixerError;
use webphone_media::local::tones::{goertzel_amplitude, ToneKind, TonePlan};
use webphone_media::local::{LineSink, LineSource, MixerConfig, MixerHandle, MixerHub};
use webphone_media::{PcmSink, PcmSource};

mod common;
use common::Sine;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<i16>>>);

impl PcmSink for Capture {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0.lock().expect("capture").extend_from_slice(frame);
    }
}

impl Capture {
    fn take(&self) -> Vec<i16> {
        std::mem::take(&mut *self.0.lock().expect("capture"))
    }
}

const MIC_HZ: f64 = 300.0;
const AMP: f64 = 5000.0;

struct Call {
    line: u32,
    rate: u32,
    source: LineSource,
    sink: LineSink,
    voice: Sine,
    heard: Vec<i16>,
}

struct Rig {
    hub: MixerHub,
    handle: MixerHandle,
    speaker: Capture,
    calls: Vec<Call>,
}

impl Rig {
    fn new(lines: &[(u32, u32, f64)]) -> Rig {
        let speaker = Capture::default();
        let hub = MixerHub::new(
            MixerConfig::default(),
            Box::new(Sine::new(48_000, MIC_HZ, AMP)),
            Box::new(speaker.clone()),
        )
        .expect("hub");
        let handle = hub.handle();
        let calls = lines
            .iter()
            .map(|&(line, rate, freq)| {
                let (source, sink) = handle.add_line(line, rate).expect("line");
                Call {
                    line,
                    rate,
                    source,
                    sink,
                    voice: Sine::new(rate, freq, AMP),
                    heard: Vec::new(),
                }
            })
            .collect();
        Rig {
            hub,
            handle,
            speaker,
            calls,
        }
    }

    /// One 20 ms period: every call delivers its decoded frame, the hub ticks, every call takes
    /// the frame to send.
    fn step(&mut self) {
        for c in &mut self.calls {
            let f = c.voice.frame();
            c.sink.write_frame(&f);
        }
        self.hub.tick();
        for c in &mut self.calls {
            let mut out = vec![0i16; c.rate as usize / 50];
            c.source.read_frame(&mut out);
            c.heard.extend_from_slice(&out);
        }
    }

    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.step();
        }
    }

    /// Forget everything heard so far (settling).
    fn clear(&mut self) {
        self.speaker.take();
        for c in &mut self.calls {
            c.heard.clear();
        }
    }

    fn heard(&self, line: u32) -> (&[i16], u32) {
        let c = self
            .calls
            .iter()
            .find(|c| c.line == line)
            .expect("line exists");
        (&c.heard, c.rate)
    }
}

fn level(x: &[i16], freq: f64, rate: u32) -> f64 {
    goertzel_amplitude(x, freq, rate)
}

fn assert_present(x: &[i16], freq: f64, rate: u32, what: &str) {
    let a = level(x, freq, rate);
    assert!(
        (a - AMP).abs() < AMP * 0.05,
        "{what}: {freq} Hz should be at {AMP}, is {a:.1}"
    );
}

fn assert_absent(x: &[i16], freq: f64, rate: u32, what: &str) {
    let a = level(x, freq, rate);
    assert!(
        a < AMP * 0.01,
        "{what}: {freq} Hz should be absent, is {a:.1}"
    );
}

#[test]
fn three_calls_each_peer_hears_the_mic_and_the_others_but_not_itself() {
    let tones = [(1, 500.0), (2, 700.0), (3, 1100.0)];
    let mut rig = Rig::new(&[(1, 48_000, 500.0), (2, 48_000, 700.0), (3, 48_000, 1100.0)]);
    assert_eq!(rig.handle.conference_all(), 3);
    rig.run(5);
    rig.clear();
    rig.run(25);
    for &(line, own) in &tones {
        let (x, rate) = rig.heard(line);
        assert_eq!(x.len(), 25 * 960);
        assert_present(x, MIC_HZ, rate, &format!("peer {line} hears mic"));
        assert_absent(x, own, rate, &format!("peer {line} hears itself"));
        for &(other, f) in tones.iter().filter(|t| t.0 != line) {
            assert_present(x, f, rate, &format!("peer {line} hears {other}"));
        }
    }
    let spk = rig.speaker.take();
    assert_eq!(spk.len(), 25 * 960);
    assert_absent(&spk, MIC_HZ, 48_000, "speaker plays the microphone");
    for &(_, f) in &tones {
        assert_present(&spk, f, 48_000, "speaker");
    }
}

#[test]
fn a_line_at_the_hub_rate_read_in_pieces_gets_the_same_samples_as_in_whole_frames() {
    // Lines at the hub's rate read straight from their FIFO; a call whose frames are shorter
    // (10 ms, 5 ms) than the hub's 20 ms must still get every sample in order.
    let heard_in = |piece: usize| {
        let mut rig = Rig::new(&[(1, 48_000, 500.0), (2, 48_000, 700.0)]);
        assert_eq!(rig.handle.conference_all(), 2);
        let mut heard = Vec::new();
        for _ in 0..30 {
            for c in &mut rig.calls {
                let f = c.voice.frame();
                c.sink.write_frame(&f);
            }
            rig.hub.tick();
            let mut out = vec![0i16; 960];
            for chunk in out.chunks_mut(piece) {
                rig.calls[0].source.read_frame(chunk);
            }
            heard.extend_from_slice(&out);
        }
        heard
    };
    let whole = heard_in(960);
    assert_present(&whole[960 * 5..], 700.0, 48_000, "line 1 hears line 2");
    assert_eq!(heard_in(480), whole);
    assert_eq!(heard_in(240), whole);
    assert_eq!(heard_in(7), whole);
}

#[test]
fn mic_muted_towards_one_member_leaves_the_others_audible_to_it() {
    let mut rig = Rig::new(&[(1, 48_000, 500.0), (2, 48_000, 700.0), (3, 16_000, 1100.0)]);
    rig.handle.conference_all();
    assert!(rig.handle.set_mic_muted(2, true));
    assert!(!rig.handle.set_mic_muted(9, true), "no line 9");
    rig.run(5);
    rig.clear();
    rig.run(25);
    let (x, rate) = rig.heard(2);
    assert_absent(x, MIC_HZ, rate, "muted peer 2 hears the mic");
    assert_present(x, 500.0, rate, "muted peer 2 hears peer 1");
    assert_present(x, 1100.0, rate, "muted peer 2 hears peer 3");
    let (x, rate) = rig.heard(1);
    assert_present(x, MIC_HZ, rate, "peer 1 hears the mic");
    // Out of the conference a muted line hears nothing at all.
    rig.handle.dissolve_conference();
    rig.run(5);
    rig.clear();
    rig.run(25);
    let (x, rate) = rig.heard(2);
    assert_absent(x, MIC_HZ, rate, "muted lone peer 2 hears the mic");
    assert_absent(x, 500.0, rate, "lone peer 2 hears peer 1");
    assert!(rig.handle.set_mic_muted(2, false));
    rig.run(5);
    rig.clear();
    rig.run(25);
    let (x, rate) = rig.heard(2);
    assert_present(x, MIC_HZ, rate, "unmuted peer 2 hears the mic");
}

#[test]
fn lines_at_8_16_and_48_khz_are_resampled_into_one_conference() {
    let mut rig = Rig::new(&[(1, 8_000, 500.0), (2, 16_000, 700.0), (3, 48_000, 1100.0)]);
    rig.handle.conference_all();
    rig.run(5);
    rig.clear();
    rig.run(25);
    let (x, rate) = rig.heard(1);
    assert_eq!((x.len(), rate), (25 * 160, 8_000));
    assert_present(x, MIC_HZ, rate, "8k peer hears mic");
    assert_present(x, 700.0, rate, "8k peer hears 16k call");
    assert_present(x, 1100.0, rate, "8k peer hears 48k call");
    assert_absent(x, 500.0, rate, "8k peer hears itself");
    let (x, rate) = rig.heard(2);
    assert_eq!(x.len(), 25 * 320);
    assert_present(x, 500.0, rate, "16k peer hears 8k call");
    assert_present(x, 1100.0, rate, "16k peer hears 48k call");
    assert_absent(x, 700.0, rate, "16k peer hears itself");
    let (x, rate) = rig.heard(3);
    assert_present(x, 500.0, rate, "48k peer hears 8k call");
    assert_present(x, 700.0, rate, "48k peer hears 16k call");
    assert_absent(x, 1100.0, rate, "48k peer hears itself");
    let spk = rig.speaker.take();
    for f in [500.0, 700.0, 1100.0] {
        assert_present(&spk, f, 48_000, "speaker");
    }
}

#[test]
fn removing_a_line_from_the_conference_isolates_it_and_audibility_picks_the_speaker() {
    let mut rig = Rig::new(&[(1, 8_000, 500.0), (2, 16_000, 700.0), (3, 48_000, 1100.0)]);
    rig.handle.conference_all();
    rig.run(10);
    assert!(rig.handle.set_conference(2, false));
    assert_eq!(rig.handle.conference_lines(), vec![1, 3]);
    rig.run(3);
    rig.clear();
    rig.run(25);
    let (x, rate) = rig.heard(1);
    assert_present(x, 1100.0, rate, "1 hears 3");
    assert_absent(x, 700.0, rate, "1 hears removed 2");
    let (x, rate) = rig.heard(2);
    assert_present(x, MIC_HZ, rate, "2 hears mic");
    assert_absent(x, 500.0, rate, "2 hears 1");
    assert_absent(x, 1100.0, rate, "2 hears 3");
    let spk = rig.speaker.take();
    assert_present(&spk, 500.0, 48_000, "speaker plays member 1");
    assert_absent(&spk, 700.0, 48_000, "speaker plays inaudible non-member 2");

    // The engine makes line 2 the active line.
    assert!(rig.handle.set_audible(2, true));
    rig.run(2);
    rig.clear();
    rig.run(25);
    let spk = rig.speaker.take();
    assert_present(&spk, 700.0, 48_000, "speaker plays the active line");
    assert_present(&spk, 1100.0, 48_000, "speaker still plays member 3");
    let (x, rate) = rig.heard(3);
    assert_absent(x, 700.0, rate, "3 still does not hear 2");

    // Dissolve: everyone hears only the microphone.
    rig.handle.dissolve_conference();
    rig.run(2);
    rig.clear();
    rig.run(25);
    for line in [1, 3] {
        let (x, rate) = rig.heard(line);
        assert_present(x, MIC_HZ, rate, "mic after dissolve");
        for f in [500.0, 700.0, 1100.0] {
            assert_absent(x, f, rate, "peers after dissolve");
        }
    }
    let spk = rig.speaker.take();
    assert_present(&spk, 700.0, 48_000, "active line after dissolve");
    assert_absent(&spk, 500.0, 48_000, "inactive line after dissolve");
}

#[test]
fn independent_call_ticks_with_jitter_give_continuous_audio() {
    let mut rig = Rig::new(&[(1, 8_000, 500.0), (2, 48_000, 700.0)]);
    rig.handle.conference_all();
    // Call 1's task runs out of phase with the hub: sometimes twice between hub ticks,
    // sometimes not at all, sometimes before and sometimes after.
    let pattern = [1usize, 2, 0, 1, 1, 2, 0, 0, 2, 1];
    let mut heard_frames: Vec<Vec<i16>> = Vec::new();
    for t in 0..200 {
        let k = pattern[t % pattern.len()];
        let c = &mut rig.calls[1];
        let f = c.voice.frame();
        c.sink.write_frame(&f);
        for _ in 0..k {
            let c = &mut rig.calls[0];
            let f = c.voice.frame();
            c.sink.write_frame(&f);
            let mut out = vec![0i16; 160];
            c.source.read_frame(&mut out);
            heard_frames.push(out);
        }
        rig.hub.tick();
        let c = &mut rig.calls[1];
        let mut out = vec![0i16; 960];
        c.source.read_frame(&mut out);
    }
    // Skip the first half second: after the FIFOs settle every 20 ms frame carries the mix.
    let settled = &heard_frames[25..];
    for (i, f) in settled.iter().enumerate() {
        let a = level(f, MIC_HZ, 8_000);
        assert!(a > AMP * 0.7, "frame {i}: mic level {a:.0}");
        let b = level(f, 700.0, 8_000);
        assert!(b > AMP * 0.7, "frame {i}: 700 Hz level {b:.0}");
    }
    let stats = rig.handle.line_stats(1).expect("stats");
    assert_eq!(stats.to_hub_overflows, 0, "{stats:?}");
    assert_eq!(stats.from_hub_overflows, 0, "{stats:?}");
    // The speaker hears call 1 without gaps too.
    let spk = rig.speaker.take();
    for (i, f) in spk.chunks(960).enumerate().skip(25) {
        let a = level(f, 500.0, 48_000);
        assert!(a > AMP * 0.7, "speaker frame {i}: {a:.0}");
    }
}

#[test]
fn a_loud_conference_is_limited_not_wrapped() {
    let speaker = Capture::default();
    let mut hub = MixerHub::new(
        MixerConfig::default(),
        Box::new(Sine::new(48_000, 400.0, 30_000.0)),
        Box::new(speaker.clone()),
    )
    .expect("hub");
    let h = hub.handle();
    let mut calls: Vec<(LineSource, LineSink, Sine)> = (1..=3)
        .map(|l| {
            let (s, k) = h.add_line(l, 48_000).expect("line");
            (s, k, Sine::new(48_000, 400.0, 30_000.0))
        })
        .collect();
    h.conference_all();
    let mut peer = Vec::new();
    for _ in 0..10 {
        for (_, sink, v) in &mut calls {
            sink.write_frame(&v.frame());
        }
        hub.tick();
        let mut out = vec![0i16; 960];
        calls[0].0.read_frame(&mut out);
        peer.extend_from_slice(&out);
    }
    let spk = speaker.take();
    let reference = Sine::new(48_000, 400.0, 1.0).frame();
    for (x, name) in [(&spk, "speaker"), (&peer, "peer")] {
        let mut peak = 0i32;
        for (i, &s) in x.iter().enumerate() {
            let r = f64::from(reference[i % 960]);
            // Unlimited sum would be 3 (speaker) or 3 (mic + 2 others) x 30000.
            if r.abs() > 0.2 {
                assert_eq!(
                    f64::from(s).signum(),
                    r.signum(),
                    "{name} sample {i} wrapped: {s}"
                );
            }
            peak = peak.max(i32::from(s).abs());
        }
        assert!(peak <= 32_767 && peak > 30_000, "{name} peak {peak}");
    }
}

#[test]
fn local_sounds_play_on_the_speaker_only_and_end() {
    let mut rig = Rig::new(&[(1, 8_000, 500.0)]);
    let id = rig.handle.play_sound(Box::new(
        TonePlan::Europe.generator(ToneKind::ConnectBeep, 48_000),
    ));
    assert!(rig.handle.is_playing(id));
    rig.run(10);
    let spk = rig.speaker.take();
    // 150 ms of 1 kHz (7200 samples), then nothing.
    assert!(level(&spk[..7200], 1000.0, 48_000) > 3000.0);
    assert!(level(&spk[7200..], 1000.0, 48_000) < 10.0);
    assert!(!rig.handle.is_playing(id));
    let (x, rate) = rig.heard(1);
    assert_absent(x, 1000.0, rate, "peer hears the local beep");

    let id = rig.handle.play_sound(Box::new(
        TonePlan::Europe.generator(ToneKind::Ringback, 48_000),
    ));
    rig.run(2);
    assert!(rig.handle.stop_sound(id));
    assert!(!rig.handle.stop_sound(id));
}

#[test]
fn lines_come_and_go() {
    let mut rig = Rig::new(&[(1, 8_000, 500.0), (2, 8_000, 700.0)]);
    assert_eq!(
        rig.handle.add_line(1, 8_000).err(),
        Some(MixerError::LineExists(1))
    );
    assert!(matches!(
        rig.handle.add_line(9, 0),
        Err(MixerError::Rate { line: 9, .. })
    ));
    rig.handle.conference_all();
    // Dropping a call's handles takes the line out at the next tick.
    let gone = rig.calls.remove(1);
    drop(gone);
    rig.run(1);
    assert_eq!(rig.handle.lines(), vec![1]);
    assert!(rig.handle.remove_line(1));
    assert!(!rig.handle.remove_line(1));
    assert!(!rig.handle.set_conference(1, true));
    // A removed line's handles give silence.
    rig.run(3);
    let mut out = vec![7i16; 160];
    rig.calls[0].source.read_frame(&mut out);
    assert!(out.iter().all(|&s| s == 0));
    assert!(matches!(
        MixerHub::new(
            MixerConfig {
                rate: 44_100,
                ptime_ms: 15,
                max_fifo_frames: 4
            },
            Box::new(Sine::new(8000, 1.0, 1.0)),
            Box::new(Capture::default())
        ),
        Err(MixerError::Config { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn run_ticks_every_20_ms_until_stopped() {
    let speaker = Capture::default();
    let hub = MixerHub::new(
        MixerConfig::default(),
        Box::new(Sine::new(48_000, MIC_HZ, AMP)),
        Box::new(speaker.clone()),
    )
    .expect("hub");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hub.run(async {
        let _ = stop_rx.await;
    }));
    // The first tick is immediate, then one every 20 ms: 0, 20, ..., 200 ms -> 11 ticks.
    tokio::time::sleep(std::time::Duration::from_millis(210)).await;
    stop_tx.send(()).expect("stop");
    let hub = task.await.expect("task");
    assert_eq!(hub.ticks(), 11);
    assert_eq!(speaker.take().len(), 11 * 960);
}
