//! The dsp stage inside the media pipeline (virtual time): echo cancellation with what the
//! pipeline plays as the reference, RFC 3389 comfort noise at playout, voice statistics and
//! the no-voice alarm.

// Test scaffolding: poisoned locks and fixed addresses are test failures.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webphone_media::dsp::{format_vad_notification, DspConfig};
use webphone_media::rtp::{self, Datagram};
use webphone_media::{
    g711, Codec, Direction, MediaAlarm, MediaPipeline, Negotiated, PcmSink, PcmSource,
    PipelineConfig, PTIME_MS,
};

const PI2: f64 = 2.0 * std::f64::consts::PI;
const N: usize = 160;
const PEER: &str = "127.0.0.1:4000";

fn neg(direction: Direction) -> Negotiated {
    Negotiated {
        remote_rtp: PEER.parse().unwrap(),
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        direction,
        ptime_ms: PTIME_MS,
        srtp: None,
        dtls: None,
        rtcp_mux: false,
        send_limits: Default::default(),
    }
}

#[derive(Default)]
struct Room {
    /// Everything the pipeline played, in order.
    played: Vec<f64>,
    /// Everything the microphone heard.
    mic: Vec<f64>,
    /// Near-end signal by sample index.
    near: Vec<f64>,
    /// Echo path taps (delay in samples, gain).
    taps: Vec<(usize, f64)>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Room>>);

impl PcmSource for Shared {
    fn read_frame(&mut self, out: &mut [i16]) {
        let mut r = self.0.lock().unwrap();
        let start = r.mic.len();
        for (k, o) in out.iter_mut().enumerate() {
            let i = start + k;
            let echo: f64 = r
                .taps
                .iter()
                .filter(|(d, _)| i >= *d)
                .map(|(d, g)| g * r.played.get(i - d).copied().unwrap_or(0.0))
                .sum();
            let v = echo + r.near.get(i).copied().unwrap_or(0.0);
            *o = v.round().clamp(-32768.0, 32767.0) as i16;
            r.mic.push(f64::from(*o));
        }
    }
}

impl PcmSink for Shared {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0
            .lock()
            .unwrap()
            .played
            .extend(frame.iter().map(|&s| f64::from(s)));
    }
}

struct Rng(u32);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        f64::from(self.0) / f64::from(u32::MAX) * 2.0 - 1.0
    }
}

/// Speech-like 8 kHz far end (see dsp_echo.rs): filtered noise, syllable envelope, pauses.
fn far_end(seconds: f64) -> Vec<i16> {
    let n = (8000.0 * seconds) as usize;
    let mut rng = Rng(0xBEEF_1234);
    let a = (-PI2 * 1200.0 / 8000.0f64).exp();
    let mut lp = 0.0;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            lp = a * lp + (1.0 - a) * rng.uniform();
            let env = (0.5 * (1.0 + (PI2 * 3.1 * t).sin())).powf(0.7);
            let on = if t % 2.0 < 1.6 { 1.0 } else { 0.0 };
            (lp * env * on * 40_000.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

fn pcmu_packet(seq: u16, pcm: &[i16]) -> Vec<u8> {
    let mut payload = Vec::new();
    g711::encode_ulaw(pcm, &mut payload);
    rtp::build(0, false, seq, u32::from(seq) * N as u32, 0xFA2, &payload)
}

fn decode_sent(out: &[webphone_media::Outgoing]) -> Vec<f64> {
    let mut pcm = Vec::new();
    for o in out {
        if let Ok(Datagram::Rtp(p)) = rtp::parse(&o.data) {
            if p.payload_type == 0 {
                g711::decode_ulaw(&p.payload, &mut pcm);
            }
        }
    }
    pcm.into_iter().map(f64::from).collect()
}

fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

fn db(p: f64) -> f64 {
    10.0 * p.max(1e-9).log10()
}

/// Run an 8 kHz PCMU call for `seconds` where the peer sends `far` and our room echoes what
/// we play; returns (mic, sent) sample streams.
fn echo_call(dsp: DspConfig, seconds: f64) -> (Vec<f64>, Vec<f64>) {
    let room = Shared::default();
    {
        let mut r = room.0.lock().unwrap();
        // 50 ms acoustic delay (plus the pipeline's own playout delay), -6 dB direct path.
        r.taps = vec![(400, 0.5), (408, -0.2), (430, 0.08)];
    }
    let t0 = Instant::now();
    let mut p = MediaPipeline::new(
        neg(Direction::SendRecv),
        Box::new(room.clone()),
        Box::new(room.clone()),
        PipelineConfig {
            dsp,
            ..PipelineConfig::default()
        },
        t0,
    );
    let far = far_end(seconds);
    let from: SocketAddr = PEER.parse().unwrap();
    let mut sent = Vec::new();
    for (k, chunk) in far.chunks_exact(N).enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        p.on_packet(&pcmu_packet(k as u16, chunk), from, now);
        sent.extend(decode_sent(&p.on_tick(now)));
        p.playout(now);
    }
    if let Some(s) = p.apm_stats() {
        eprintln!("APM: {s:?}");
    }
    let mic = room.0.lock().unwrap().mic.clone();
    (mic, sent)
}

#[test]
fn pipeline_cancels_the_echo_of_what_it_plays() {
    let cfg = DspConfig {
        aec: true,
        ..DspConfig::default()
    };
    let (mic, sent) = echo_call(cfg, 8.0);
    assert_eq!(mic.len(), sent.len());
    // After convergence: 4.0-5.6 s and 6.0-7.6 s (far end talking).
    let r = |a: f64, b: f64| (a * 8000.0) as usize..(b * 8000.0) as usize;
    let spans = [r(4.0, 5.6), r(6.0, 7.6)];
    let mic_p: f64 = spans.iter().map(|s| power(&mic[s.clone()])).sum();
    let sent_p: f64 = spans.iter().map(|s| power(&sent[s.clone()])).sum();
    let erle = db(mic_p) - db(sent_p);
    eprintln!(
        "pipeline: echo {:.1} dB above 1 LSB, ERLE {erle:.1} dB",
        db(mic_p / 2.0)
    );
    assert!(
        db(mic_p / 2.0) > 50.0,
        "the echo must be loud to start with"
    );
    assert!(erle > 20.0, "ERLE {erle:.1} dB");
}

#[test]
fn pipeline_without_dsp_sends_the_echo_as_heard() {
    let (mic, sent) = echo_call(DspConfig::default(), 2.0);
    // G.711 round trip only: the same signal within µ-law quantisation.
    let err: Vec<f64> = mic.iter().zip(&sent).map(|(a, b)| a - b).collect();
    assert!(db(power(&mic)) - db(power(&err)) > 30.0);
}

/// A pipeline with a given source, for the CN and VAD tests.
fn plain(
    source: Box<dyn PcmSource>,
    sink: Shared,
    dsp: DspConfig,
    direction: Direction,
    t0: Instant,
) -> MediaPipeline {
    MediaPipeline::new(
        neg(direction),
        source,
        Box::new(sink),
        PipelineConfig {
            dsp,
            ..PipelineConfig::default()
        },
        t0,
    )
}

fn tone_frame(k: usize, amp: f64) -> Vec<i16> {
    (0..N)
        .map(|i| (amp * (PI2 * 500.0 * (k * N + i) as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// 1 s of tone, then (optionally) one CN packet at `level`, 1 s of nothing, then 1 s of tone.
fn cn_call(cn_level: Option<u8>) -> (Vec<f64>, webphone_media::MediaStats) {
    let sink = Shared::default();
    let t0 = Instant::now();
    let mut p = plain(
        Box::new(webphone_media::SilenceSource),
        sink.clone(),
        DspConfig::default(),
        Direction::SendRecv,
        t0,
    );
    let from: SocketAddr = PEER.parse().unwrap();
    let mut seq = 0u16;
    for k in 0..150usize {
        let now = t0 + Duration::from_millis(20 * k as u64);
        if !(50..100).contains(&k) {
            p.on_packet(&pcmu_packet(seq, &tone_frame(k, 8000.0)), from, now);
            seq += 1;
        } else if k == 50 {
            if let Some(level) = cn_level {
                let pkt = rtp::build(13, false, seq, u32::from(seq) * N as u32, 0xFA2, &[level]);
                p.on_packet(&pkt, from, now);
                seq += 1;
            }
        }
        let _ = p.on_tick(now);
        p.playout(now);
    }
    let played = sink.0.lock().unwrap().played.clone();
    (played, p.stats())
}

#[test]
fn cn_packet_fills_the_pause_with_noise_at_its_level() {
    let (played, stats) = cn_call(Some(50));
    assert_eq!(stats.packets_invalid, 0);
    assert_eq!(stats.packets_lost, 0);
    // 1.4-1.9 s: the pause (after the playout delay), noise at -50 dBov.
    let pause = &played[(1.4 * 8000.0) as usize..(1.9 * 8000.0) as usize];
    let dbov = db(power(pause)) - db((32767.0f64 / 2f64.sqrt()).powi(2));
    eprintln!("comfort noise at {dbov:.2} dBov");
    assert!((dbov + 50.0).abs() < 1.0, "{dbov:.2} dBov");
    // Audio resumes: the tone is back, without noise on top (2.5-2.9 s at the tone's level).
    let tail = &played[(2.5 * 8000.0) as usize..(2.9 * 8000.0) as usize];
    let tone_db = db(power(tail)) - db(8000.0f64.powi(2) / 2.0);
    assert!(tone_db.abs() < 0.5, "{tone_db:.2} dB");
    // Once playback started there is no dead frame: the CN slot and the underflow after it
    // are all noise.
    let frames: Vec<&[f64]> = played.chunks(N).collect();
    let first = frames
        .iter()
        .position(|f| f.iter().any(|&s| s != 0.0))
        .expect("audio played");
    assert!(first <= 3, "prefill of {first} frames");
    let dead = frames[first..]
        .iter()
        .filter(|f| f.iter().all(|&s| s == 0.0))
        .count();
    assert_eq!(dead, 0);
}

#[test]
fn without_cn_the_pause_is_silent() {
    let (played, _) = cn_call(None);
    let pause = &played[(1.4 * 8000.0) as usize..(1.9 * 8000.0) as usize];
    assert!(pause.iter().all(|&s| s == 0.0));
}

/// A source of 100 ms 500 Hz tone bursts every 500 ms, starting at `start_ms`.
struct Bursts {
    k: usize,
    start_ms: usize,
}

impl PcmSource for Bursts {
    fn read_frame(&mut self, out: &mut [i16]) {
        let ms = self.k * 20;
        let on = ms >= self.start_ms && (ms - self.start_ms) % 500 < 100;
        let f = tone_frame(self.k, if on { 6000.0 } else { 0.0 });
        out.copy_from_slice(&f[..out.len()]);
        self.k += 1;
    }
}

fn run_alarms(p: &mut MediaPipeline, t0: Instant, ms: u64) -> Vec<(u64, MediaAlarm)> {
    let mut out = Vec::new();
    for t in (0..ms).step_by(20) {
        let now = t0 + Duration::from_millis(t);
        let _ = p.on_tick(now);
        p.playout(now);
        out.extend(p.take_alarms().into_iter().map(|a| (t, a)));
    }
    out
}

fn watch() -> DspConfig {
    DspConfig {
        no_voice_alarm: Duration::from_secs(6),
        ..DspConfig::default()
    }
}

#[test]
fn silent_microphone_raises_no_voice_once_after_six_seconds() {
    let t0 = Instant::now();
    let mut p = plain(
        Box::new(webphone_media::SilenceSource),
        Shared::default(),
        watch(),
        Direction::SendRecv,
        t0,
    );
    let alarms = run_alarms(&mut p, t0, 20_000);
    // The 300th frame (sent at 5 980 ms) completes 6 s.
    assert_eq!(
        alarms,
        vec![(
            5980,
            MediaAlarm::NoVoiceActivity {
                silent_for: Duration::from_secs(6)
            }
        )]
    );
}

#[test]
fn voice_before_six_seconds_or_not_sending_means_no_alarm() {
    let t0 = Instant::now();
    let mut p = plain(
        Box::new(Bursts {
            k: 0,
            start_ms: 5000,
        }),
        Shared::default(),
        watch(),
        Direction::SendRecv,
        t0,
    );
    assert!(run_alarms(&mut p, t0, 20_000).is_empty());
    // Voice only after 7 s: too late.
    let mut late = plain(
        Box::new(Bursts {
            k: 0,
            start_ms: 7000,
        }),
        Shared::default(),
        watch(),
        Direction::SendRecv,
        t0,
    );
    assert_eq!(run_alarms(&mut late, t0, 20_000).len(), 1);
    // Muted / held (we do not send): nothing counts.
    let mut held = plain(
        Box::new(webphone_media::SilenceSource),
        Shared::default(),
        watch(),
        Direction::RecvOnly,
        t0,
    );
    assert!(run_alarms(&mut held, t0, 20_000).is_empty());
    // Off by default.
    let mut off = plain(
        Box::new(webphone_media::SilenceSource),
        Shared::default(),
        DspConfig::default(),
        Direction::SendRecv,
        t0,
    );
    assert!(run_alarms(&mut off, t0, 20_000).is_empty());
}

#[test]
fn vad_report_per_interval_from_the_pipeline() {
    let t0 = Instant::now();
    let cfg = DspConfig {
        vad: true,
        ..DspConfig::default()
    };
    let mut p = plain(
        Box::new(Bursts {
            k: 0,
            start_ms: 1000,
        }),
        Shared::default(),
        cfg,
        Direction::SendRecv,
        t0,
    );
    let _ = run_alarms(&mut p, t0, 1000);
    let quiet = p.take_vad_report();
    assert_eq!(
        format_vad_notification(&quiet),
        "VAD,local_vad: ON local_avg: 0 local_max: 0 local_speaking: no \
         remote_vad: ON remote_avg: 0 remote_max: 0 remote_speaking: no"
    );
    assert_eq!(quiet.local.frames, 50);
    let t1 = t0 + Duration::from_secs(1);
    let _ = run_alarms(&mut p, t1, 2000);
    let talk = p.take_vad_report();
    let line = format_vad_notification(&talk);
    eprintln!("{line}");
    assert!(line.contains("local_speaking: yes"), "{line}");
    assert!(line.contains("remote_speaking: no"), "{line}");
    // 4 bursts of 100 ms at amplitude 6000 (RMS 4243) in 2 s: average about 849.
    assert!(
        (talk.local.avg() as i64 - 849).abs() < 30,
        "{}",
        talk.local.avg()
    );
    assert!(talk.local.max() > 5900 && talk.local.max() <= 6000);
    // Without `vad` both sides are OFF.
    let mut off = plain(
        Box::new(Bursts { k: 0, start_ms: 0 }),
        Shared::default(),
        watch(),
        Direction::SendRecv,
        t0,
    );
    let _ = run_alarms(&mut off, t0, 1000);
    assert!(format_vad_notification(&off.take_vad_report()).contains("local_vad: OFF"));
}
