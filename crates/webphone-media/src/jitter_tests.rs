//! Jitter buffer tests on a virtual clock (no sleeps): a simulated sender and network feed
//! packets with chosen arrival times; the receiver pops one frame per 20 ms tick.

use super::*;
use crate::codec::{CallCodecs, CodecConfig};
use crate::Codec;

const SSRC: u32 = 0xABCD;

/// A codec whose payload says what to play: value (i16), sample count at the output rate
/// (u16), and optionally the previous packet's value as "FEC" (i16).
struct TagDecoder {
    rate: u32,
    plc: bool,
    fec: bool,
}

fn tag(value: i16, samples: usize, fec_of_prev: Option<i16>) -> Vec<u8> {
    let mut p = value.to_be_bytes().to_vec();
    p.extend((samples as u16).to_be_bytes());
    if let Some(v) = fec_of_prev {
        p.extend(v.to_be_bytes());
    }
    p
}

/// Concealment by the tag codec plays this value.
const PLC_VALUE: i16 = -7;

impl PlayoutDecoder for TagDecoder {
    fn output_rate(&self) -> u32 {
        self.rate
    }
    fn decode(&mut self, _pt: u8, p: &[u8], out: &mut Vec<i16>) -> bool {
        let [a, b, c, d, ..] = *p else { return false };
        let n = usize::from(u16::from_be_bytes([c, d]));
        out.extend(std::iter::repeat_n(i16::from_be_bytes([a, b]), n));
        true
    }
    fn conceal(&mut self, _pt: u8, samples: usize, out: &mut Vec<i16>) -> bool {
        if self.plc {
            out.extend(std::iter::repeat_n(PLC_VALUE, samples));
        }
        self.plc
    }
    fn recover(&mut self, _pt: u8, p: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        match (self.fec, p.get(4..6)) {
            (true, Some(&[a, b])) => {
                out.extend(std::iter::repeat_n(i16::from_be_bytes([a, b]), samples));
                true
            }
            _ => false,
        }
    }
}

/// One codec setup: RTP clock, output rate.
#[derive(Clone, Copy, Debug)]
struct Rates {
    clock: u32,
    out: u32,
}
/// G.711 (8 kHz clock and audio), G.722 (8000 Hz clock, 16 kHz audio), Opus (48 kHz).
const RATES: [Rates; 3] = [
    Rates {
        clock: 8000,
        out: 8000,
    },
    Rates {
        clock: 8000,
        out: 16_000,
    },
    Rates {
        clock: 48_000,
        out: 48_000,
    },
];

/// A simulated call leg: packets of `ptime_ms` sent by a sender clock that may drift, arriving
/// after a per-packet delay; the receiver pops 20 ms frames.
struct Sim {
    r: Rates,
    jb: JitterBuffer,
    dec: TagDecoder,
    t0: Instant,
    ptime_ms: u32,
    /// Sender clock speed relative to ours (1.01 = 1 % fast).
    speed: f64,
    /// Played frames: (kind, last sample). The last one: a frame's start may be blended
    /// with what came before it (concealment hand-back, cross-faded frame drop).
    played: Vec<(FrameKind, i16)>,
    /// Buffered delay (ms) seen at each pop.
    levels: Vec<u32>,
    /// Next packet index to send.
    i: u32,
    /// Next tick index.
    tick: u64,
    seq0: u16,
    ts0: u32,
    ssrc: u32,
    /// Packets in flight: (arrival µs, index, seq, ts, ssrc).
    pending: Vec<(u64, u32, u16, u32, u32)>,
    /// What packet `i` plays (default [`Sim::value`]).
    value_of: fn(u32) -> i16,
}

impl Sim {
    fn new(r: Rates, cfg: JitterConfig) -> Sim {
        Sim {
            r,
            jb: JitterBuffer::new(cfg),
            dec: TagDecoder {
                rate: r.out,
                plc: false,
                fec: false,
            },
            t0: Instant::now(),
            ptime_ms: 20,
            speed: 1.0,
            played: Vec::new(),
            levels: Vec::new(),
            i: 0,
            tick: 0,
            seq0: 65_000,
            ts0: 4_294_000_000,
            ssrc: SSRC,
            pending: Vec::new(),
            value_of: Sim::value,
        }
    }

    fn value(i: u32) -> i16 {
        (i % 30_000) as i16 + 1
    }

    /// Sender time of packet `i` in µs of our clock.
    fn send_us(&self, i: u32) -> u64 {
        (f64::from(i) * f64::from(self.ptime_ms) * 1000.0 / self.speed) as u64
    }

    fn packet(&self, i: u32) -> (u16, u32, Vec<u8>) {
        let units = self.r.clock / 1000 * self.ptime_ms;
        let samples = (self.r.out / 1000 * self.ptime_ms) as usize;
        let prev = i.checked_sub(1).map(self.value_of);
        (
            self.seq0.wrapping_add(i as u16),
            self.ts0.wrapping_add(i.wrapping_mul(units)),
            tag((self.value_of)(i), samples, prev),
        )
    }

    fn deliver(&mut self, i: u32, at_us: u64) -> PushOutcome {
        let (seq, ts, _) = self.packet(i);
        self.deliver_as(i, seq, ts, self.ssrc, at_us)
    }

    fn deliver_as(&mut self, i: u32, seq: u16, ts: u32, ssrc: u32, at_us: u64) -> PushOutcome {
        let (_, _, payload) = self.packet(i);
        let units = self.r.clock / 1000 * self.ptime_ms;
        let at = self.t0 + Duration::from_micros(at_us);
        self.jb
            .push(seq, ts, ssrc, self.r.clock, 0, &payload, units, at)
    }

    fn pop_at(&mut self, us: u64) -> (FrameKind, i16) {
        let mut out = vec![0i16; (self.r.out / 50) as usize];
        self.levels.push(self.jb.buffered_ms());
        let k = self
            .jb
            .pop(self.t0 + Duration::from_micros(us), &mut out, &mut self.dec);
        let last = out[out.len() - 1];
        self.played.push((k, last));
        (k, last)
    }

    /// Run `ticks` receiver ticks; packets arrive at send time + `delay_us(i)` unless `drop(i)`.
    fn run(&mut self, ticks: u64, delay_us: impl Fn(u32) -> u64, drop: impl Fn(u32) -> bool) {
        for _ in 0..ticks {
            let now_us = self.tick * 20_000;
            while self.send_us(self.i) <= now_us {
                if !drop(self.i) {
                    let (seq, ts, _) = self.packet(self.i);
                    let at = self.send_us(self.i) + delay_us(self.i);
                    self.pending.push((at, self.i, seq, ts, self.ssrc));
                }
                self.i += 1;
            }
            self.pending.sort_unstable();
            let due: Vec<_> = self
                .pending
                .iter()
                .copied()
                .filter(|p| p.0 <= now_us)
                .collect();
            self.pending.retain(|p| p.0 > now_us);
            for (at, i, seq, ts, ssrc) in due {
                self.deliver_as(i, seq, ts, ssrc, at);
            }
            self.pop_at(now_us);
            self.tick += 1;
        }
    }

    fn audio_values(&self) -> Vec<i16> {
        self.played
            .iter()
            .filter(|(k, _)| *k == FrameKind::Audio)
            .map(|(_, v)| *v)
            .collect()
    }
}

/// A reproducible pseudo-random sequence (xorshift).
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn steady_stream_at_8_16_and_48_khz_plays_every_packet_once_in_order() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(60));
        sim.run(200, |_| 5_000, |_| false);
        let vals = sim.audio_values();
        assert!(vals.len() >= 195, "{r:?}: {}", vals.len());
        for w in vals.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}");
        }
        assert_eq!(sim.jb.stats().lost, 0, "{r:?}");
        // Each frame is the right length at the output rate: the values line up with ticks.
        assert_eq!(sim.played.len(), 200);
    }
}

#[test]
fn reordered_packets_play_in_sequence_order_at_every_rate() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(60));
        // Every 4th packet overtaken by its successor (30 ms extra delay).
        sim.run(300, |i| if i % 4 == 1 { 35_000 } else { 5_000 }, |_| false);
        let vals = sim.audio_values();
        assert!(vals.len() > 280, "{r:?}");
        for w in vals.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}: out of order");
        }
        assert_eq!(sim.jb.stats().lost, 0, "{r:?}");
        assert_eq!(sim.jb.stats().late, 0, "{r:?}");
    }
}

#[test]
fn lost_packet_is_rebuilt_from_the_next_packets_fec() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(60));
        sim.dec.fec = true;
        sim.dec.plc = true;
        sim.run(100, |_| 2_000, |i| i == 40);
        let vals = sim.audio_values();
        // Packet 40 (value 41) is played from packet 41's FEC: no hole in the sequence.
        for w in vals.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}");
        }
        assert!(vals.contains(&41), "{r:?}");
        let s = sim.jb.stats();
        assert_eq!(
            (s.lost, s.fec_recovered, s.codec_concealed),
            (1, 1, 0),
            "{r:?}"
        );
    }
}

#[test]
fn lost_packet_without_fec_uses_the_codecs_concealment() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(60));
        sim.dec.plc = true;
        sim.run(100, |_| 2_000, |i| i == 40);
        assert!(
            sim.played.contains(&(FrameKind::Concealed, PLC_VALUE)),
            "{r:?}"
        );
        let s = sim.jb.stats();
        assert_eq!(
            (s.lost, s.fec_recovered, s.codec_concealed),
            (1, 0, 1),
            "{r:?}"
        );
        assert!(!sim.audio_values().contains(&41));
    }
}

#[test]
fn codec_without_concealment_gets_waveform_substitution_fading_out_in_50_ms() {
    let mut sim = Sim::new(RATES[0], JitterConfig::fixed(120));
    // Four packets lost while later ones are buffered (120 ms deep).
    sim.run(100, |_| 2_000, |i| (40..44).contains(&i));
    let concealed: Vec<i16> = sim
        .played
        .iter()
        .filter(|(k, _)| *k == FrameKind::Concealed)
        .map(|(_, v)| *v)
        .collect();
    // The last good frame (value 40) repeated, attenuated by 0.0025 per sample: 0.6 after
    // 20 ms, 0.2 after 40 ms, silence from 50 ms on.
    assert_eq!(concealed, vec![24, 8, 0, 0]);
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.plc_concealed, s.codec_concealed), (4, 4, 0));
    // Then audio resumes with packet 44 (value 45), blended in at its start only.
    let vals = sim.audio_values();
    let k = vals.iter().position(|&v| v == 40).unwrap();
    assert_eq!(vals[k + 1], 45);
}

#[test]
fn sender_clock_drift_of_one_percent_keeps_the_delay_bounded() {
    for r in RATES {
        for speed in [1.01, 0.99] {
            let mut sim = Sim::new(r, JitterConfig::default());
            sim.speed = speed;
            // 60 s of audio.
            sim.run(3000, |_| 3_000, |_| false);
            let s = sim.jb.stats();
            let late = &sim.levels[1000..];
            let max = *late.iter().max().unwrap();
            assert!(max <= 100, "{r:?} speed {speed}: delay grew to {max} ms");
            // Nothing lost; order kept.
            assert_eq!(s.lost, 0, "{r:?} {speed}");
            let vals = sim.audio_values();
            for w in vals.windows(2) {
                assert!(w[1] > w[0], "{r:?} {speed}: replay or reorder");
            }
            if speed > 1.0 {
                // ~30 frames too many in 60 s were dropped, not piled up.
                assert!(s.frames_dropped + s.overflow_dropped >= 20, "{r:?} {s:?}");
            } else {
                // ~30 frames missing in 60 s were filled in.
                assert!(s.frames_stretched + s.concealed >= 20, "{r:?} {s:?}");
                assert!(s.concealed <= 60, "{r:?} {s:?}");
            }
        }
    }
}

#[test]
fn timestamp_jump_plays_on_and_stays_out_of_the_jitter_estimate() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        sim.run(100, |_| 3_000, |_| false);
        let before = sim.jb.jitter_ms();
        let played_before = sim.played.len();
        // The sender's timestamps jump by 10 s worth (e.g. after silence suppression); the
        // sequence numbers continue.
        sim.ts0 = sim.ts0.wrapping_add(r.clock * 10);
        sim.run(100, |_| 3_000, |_| false);
        let vals = sim.audio_values();
        for w in vals.windows(2) {
            assert!(w[1] > w[0], "{r:?}");
        }
        // Gaps in the values are only frames dropped to lower the delay, never losses.
        let gaps: u64 = vals.windows(2).map(|w| (w[1] - w[0] - 1) as u64).sum();
        assert_eq!(
            gaps,
            sim.jb.stats().frames_dropped,
            "{r:?} {:?} {vals:?}",
            sim.jb.stats()
        );
        assert!(
            sim.jb.jitter_ms() <= before + 0.01,
            "{r:?}: {}",
            sim.jb.jitter_ms()
        );
        assert_eq!(sim.jb.stats().lost, 0);
        assert!(
            sim.played[played_before..]
                .iter()
                .all(|(k, _)| *k == FrameKind::Audio),
            "{r:?}: glitch after the jump"
        );
    }
}

#[test]
fn ssrc_change_resets_and_plays_the_new_stream() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(60));
        sim.run(50, |_| 3_000, |_| false);
        // New source: other SSRC, sequence numbers and timestamps from elsewhere.
        sim.ssrc = 0x9999;
        sim.seq0 = 7u16.wrapping_sub(sim.i as u16);
        sim.ts0 = 12_345;
        sim.run(50, |_| 3_000, |_| false);
        let s = sim.jb.stats();
        assert_eq!(s.resets, 1, "{r:?}");
        assert_eq!(s.late, 0, "{r:?}: new stream taken as late");
        // The tail plays the new stream's packets in order.
        let vals = sim.audio_values();
        let tail = &vals[vals.len() - 30..];
        for w in tail.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}");
        }
    }
}

#[test]
fn sequence_restart_is_accepted_after_two_consecutive_packets() {
    let mut jb = JitterBuffer::new(JitterConfig::fixed(40));
    let mut dec = TagDecoder {
        rate: 8000,
        plc: false,
        fec: false,
    };
    let t0 = Instant::now();
    let mut out = [0i16; 160];
    for seq in 30_000u16..30_004 {
        jb.push(seq, 0, SSRC, 8000, 0, &tag(1, 160, None), 160, t0);
    }
    jb.pop(t0, &mut out, &mut dec);
    assert_eq!(
        jb.push(5, 0, SSRC, 8000, 0, &tag(2, 160, None), 160, t0),
        PushOutcome::Late
    );
    assert_eq!(
        jb.push(6, 0, SSRC, 8000, 0, &tag(2, 160, None), 160, t0),
        PushOutcome::Reset
    );
    jb.push(7, 0, SSRC, 8000, 0, &tag(2, 160, None), 160, t0);
    assert_eq!(jb.pop(t0, &mut out, &mut dec), FrameKind::Audio);
    assert_eq!(out[0], 2);
}

#[test]
fn duplicates_and_late_packets_are_dropped() {
    let mut sim = Sim::new(RATES[2], JitterConfig::fixed(60));
    sim.run(20, |_| 1_000, |_| false);
    let t = sim.tick * 20_000;
    assert_eq!(sim.deliver(sim.i - 2, t), PushOutcome::Duplicate);
    assert_eq!(sim.deliver(1, t), PushOutcome::Late);
    let s = sim.jb.stats();
    assert_eq!((s.duplicate, s.late), (1, 1));
}

#[test]
fn opus_packets_of_120_ms_play_as_20_ms_frames() {
    let r = RATES[2];
    let mut sim = Sim::new(r, JitterConfig::fixed(60));
    sim.ptime_ms = 120;
    sim.run(120, |_| 2_000, |_| false);
    // Six frames of each packet's value, in order, nothing lost.
    let vals = sim.audio_values();
    assert!(vals.len() >= 100, "{}", vals.len());
    let distinct: Vec<i16> = {
        let mut d = vals.clone();
        d.dedup();
        d
    };
    for w in distinct.windows(2) {
        assert_eq!(w[1], w[0] + 1);
    }
    let runs = vals.iter().filter(|&&v| v == distinct[3]).count();
    assert_eq!(runs, 6);
    assert_eq!(sim.jb.stats().lost, 0);
}

#[test]
fn forward_sequence_jump_resynchronises_without_long_concealment() {
    let mut sim = Sim::new(RATES[0], JitterConfig::fixed(40));
    sim.run(20, |_| 1_000, |_| false);
    sim.seq0 = sim.seq0.wrapping_add(5000);
    sim.run(20, |_| 1_000, |_| false);
    assert!(sim.jb.stats().lost < 3, "{:?}", sim.jb.stats());
    let concealed = sim
        .played
        .iter()
        .filter(|(k, _)| *k == FrameKind::Concealed)
        .count();
    assert!(concealed <= 2);
}

#[test]
fn long_silence_from_the_sender_refills_before_playing_again() {
    let mut sim = Sim::new(RATES[0], JitterConfig::fixed(60));
    sim.run(20, |_| 1_000, |_| false);
    // Sender pauses 1 s (DTX / hold) with sequence numbers continuing.
    sim.run(50, |_| 1_000, |i| (20..70).contains(&i));
    assert!(!sim.jb.is_playing());
    sim.run(2, |_| 1_000, |_| false);
    // Prefilling: silence until the target is buffered again.
    assert_eq!(sim.played.last().unwrap().0, FrameKind::Silence);
    sim.run(10, |_| 1_000, |_| false);
    assert_eq!(sim.played.last().unwrap().0, FrameKind::Audio);
}

#[test]
fn jitter_spike_raises_target_then_decays() {
    let r = RATES[2];
    let mut sim = Sim::new(r, JitterConfig::default());
    let mut rand = rng(7);
    // 10 s with little jitter: the target settles near the minimum.
    sim.run(500, |_| 2_000, |_| false);
    let calm = sim.jb.target_ms();
    assert!(calm < 35.0, "calm target {calm}");
    // 10 s with up to 80 ms random extra delay.
    let delays: Vec<u64> = (0..2000).map(|_| 2_000 + rand() % 80_000).collect();
    let d = delays.clone();
    let start = sim.i;
    let d2 = d.clone();
    // Fast attack: half a second into the jitter the target already covers most of it.
    sim.run(
        25,
        move |i| d2[((i - start) as usize) % d2.len()],
        |_| false,
    );
    assert!(
        sim.jb.target_ms() > 70.0,
        "after 0.5 s: {}",
        sim.jb.target_ms()
    );
    sim.run(475, move |i| d[((i - start) as usize) % d.len()], |_| false);
    let jittery = sim.jb.target_ms();
    assert!(jittery > 80.0, "target under jitter {jittery}");
    assert!(jittery <= 200.0);
    // The last 5 s of the jittery phase play without concealment: the buffer grew.
    let tail = &sim.played[sim.played.len() - 250..];
    let concealed = tail
        .iter()
        .filter(|(k, _)| *k == FrameKind::Concealed)
        .count();
    assert!(
        concealed <= 3,
        "concealed {concealed} of 250 after adapting"
    );
    // Calm again: one second later the target is still high (slow decay)...
    sim.run(50, |_| 2_000, |_| false);
    assert!(
        sim.jb.target_ms() > jittery * 0.7,
        "{} vs {jittery}",
        sim.jb.target_ms()
    );
    // ...and after 60 s it is back near the minimum, and so is the delay.
    sim.run(3000, |_| 2_000, |_| false);
    assert!(sim.jb.target_ms() < 40.0, "{}", sim.jb.target_ms());
    let level = *sim.levels.last().unwrap();
    assert!(level <= 60, "delay still {level} ms");
}

#[test]
fn fixed_mode_keeps_its_target() {
    let mut sim = Sim::new(RATES[0], JitterConfig::fixed(60));
    let mut rand = rng(3);
    let delays: Vec<u64> = (0..600).map(|_| rand() % 80_000).collect();
    sim.run(500, move |i| delays[i as usize % 600], |_| false);
    assert_eq!(sim.jb.target_ms(), 60.0);
}

#[test]
fn nothing_received_gives_silence() {
    let mut jb = JitterBuffer::default();
    let mut dec = TagDecoder {
        rate: 48_000,
        plc: true,
        fec: true,
    };
    let mut out = [7i16; 960];
    assert_eq!(
        jb.pop(Instant::now(), &mut out, &mut dec),
        FrameKind::Silence
    );
    assert!(out.iter().all(|&s| s == 0));
}

// ---- real codecs through CallCodecs ----

/// The call's decoders at the codec's audio rate (as the pipeline uses them).
struct Real<'a> {
    codecs: &'a mut CallCodecs,
    codec: Codec,
    pt: u8,
}

impl PlayoutDecoder for Real<'_> {
    fn output_rate(&self) -> u32 {
        self.codecs.device_rate()
    }
    fn decode(&mut self, _pt: u8, p: &[u8], out: &mut Vec<i16>) -> bool {
        self.codecs.decode(self.pt, self.codec, p, out).is_ok()
    }
    fn conceal(&mut self, _pt: u8, n: usize, out: &mut Vec<i16>) -> bool {
        self.codecs
            .conceal(self.pt, self.codec, n, out)
            .unwrap_or(false)
    }
    fn recover(&mut self, _pt: u8, p: &[u8], n: usize, out: &mut Vec<i16>) -> bool {
        self.codecs
            .recover(self.pt, self.codec, p, n, out)
            .unwrap_or(false)
    }
}

/// A voice-like test signal: two tones with a slow amplitude wobble.
fn voice(rate: u32, n: usize, offset: usize) -> Vec<i16> {
    (0..n)
        .map(|k| {
            let t = (k + offset) as f64 / f64::from(rate);
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s = (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 660.0 * t).sin();
            (s * env * 8000.0) as i16
        })
        .collect()
}

/// Encode `frames` 20 ms frames with `codec`, play them through a jitter buffer dropping the
/// packets in `lose` (and optionally hiding the FEC path), return the output and the stats.
fn play_real(
    codec: Codec,
    frames: usize,
    lose: &[usize],
    allow_fec: bool,
) -> (Vec<i16>, JitterStats) {
    let rate = codec.audio_rate();
    let n = codec.frame_samples(20);
    let mut enc = CallCodecs::new(rate, CodecConfig::default());
    let mut dec_codecs = CallCodecs::new(rate, CodecConfig::default());
    let mut jb = JitterBuffer::new(JitterConfig::fixed(40));
    let t0 = Instant::now();
    let pt = codec.default_payload_type();
    let mut out_all = Vec::new();
    let mut payloads = Vec::new();
    for f in 0..frames {
        let mut p = Vec::new();
        enc.encode(codec, &voice(rate, n, f * n), &mut p).unwrap();
        payloads.push(p);
    }
    for f in 0..frames + 3 {
        let now = t0 + Duration::from_millis(20 * f as u64);
        if let Some(p) = payloads.get(f) {
            if !lose.contains(&f) {
                let units = crate::codec::packet_clock_units(codec, p).unwrap();
                jb.push(
                    f as u16,
                    (f as u32) * units,
                    1,
                    codec.clock_rate(),
                    pt,
                    p,
                    units,
                    now,
                );
            }
        }
        let mut out = vec![0i16; n];
        if allow_fec {
            let mut d = Real {
                codecs: &mut dec_codecs,
                codec,
                pt,
            };
            jb.pop(now, &mut out, &mut d);
        } else {
            struct NoFec<'a>(Real<'a>);
            impl PlayoutDecoder for NoFec<'_> {
                fn output_rate(&self) -> u32 {
                    self.0.output_rate()
                }
                fn decode(&mut self, pt: u8, p: &[u8], out: &mut Vec<i16>) -> bool {
                    self.0.decode(pt, p, out)
                }
                fn conceal(&mut self, pt: u8, n: usize, out: &mut Vec<i16>) -> bool {
                    self.0.conceal(pt, n, out)
                }
            }
            let mut d = NoFec(Real {
                codecs: &mut dec_codecs,
                codec,
                pt,
            });
            jb.pop(now, &mut out, &mut d);
        }
        out_all.extend(out);
    }
    (out_all, jb.stats())
}

fn err_energy(a: &[i16], b: &[i16]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

#[test]
fn opus_loss_is_rebuilt_from_inband_fec_closer_than_plain_concealment() {
    let frames = 100;
    let n = Codec::Opus.frame_samples(20);
    let (clean, s0) = play_real(Codec::Opus, frames, &[], true);
    assert_eq!(s0.lost, 0);
    let (fec, s1) = play_real(Codec::Opus, frames, &[50], true);
    let (plc, s2) = play_real(Codec::Opus, frames, &[50], false);
    assert_eq!((s1.lost, s1.fec_recovered), (1, 1));
    // Without FEC the codec conceals the lost packet (the stream end underflows in both).
    assert_eq!((s2.lost, s2.fec_recovered), (1, 0));
    assert_eq!(s2.codec_concealed, s1.codec_concealed + 1);
    // Compare the lost frame's slot (and the one after, where PLC still converges).
    let at = |v: &[i16]| v[50 * n..53 * n].to_vec();
    let e_fec = err_energy(&at(&fec), &at(&clean));
    let e_plc = err_energy(&at(&plc), &at(&clean));
    assert!(
        e_fec < e_plc * 0.5,
        "FEC error {e_fec:.3e} should be well below PLC error {e_plc:.3e}"
    );
}

#[test]
fn real_codecs_at_8_16_and_48_khz_play_continuously_through_the_buffer() {
    for codec in [Codec::Pcmu, Codec::G722, Codec::Opus] {
        let (out, s) = play_real(codec, 50, &[20], true);
        let n = codec.frame_samples(20);
        assert_eq!(out.len(), 53 * n, "{codec:?}");
        assert_eq!(s.lost, 1, "{codec:?}");
        // The loss is concealed, not silence: the frame in its place has signal.
        let slot = s.played as usize; // not used further
        let _ = slot;
        let energy: f64 = out[40 * n..45 * n]
            .iter()
            .map(|&x| f64::from(x).powi(2))
            .sum();
        assert!(energy > 1e6, "{codec:?}: silent around the loss");
    }
}

// ---- playout-delay control scenarios ----

/// Frames concealed among the last `n` played.
fn concealed_in_last(sim: &Sim, n: usize) -> usize {
    sim.played[sim.played.len().saturating_sub(n)..]
        .iter()
        .filter(|(k, _)| *k == FrameKind::Concealed)
        .count()
}

#[test]
fn steady_stream_never_drops_frames() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        // Eight seconds to settle from the initial 60 ms (one correction at most, made after
        // waiting up to 4 s for a quiet frame: this "speech" never pauses)...
        sim.run(400, |_| 3_000, |_| false);
        let settled = sim.jb.stats();
        assert!(
            settled.frames_dropped + settled.frames_stretched <= 1,
            "{r:?}: {settled:?}"
        );
        // ...then a minute of a steady stream: nothing dropped, inserted or concealed.
        sim.run(3000, |_| 3_000, |_| false);
        let s = sim.jb.stats();
        assert_eq!(s.frames_dropped, settled.frames_dropped, "{r:?}: {s:?}");
        assert_eq!(s.frames_stretched, settled.frames_stretched, "{r:?}: {s:?}");
        assert_eq!(s.concealed, settled.concealed, "{r:?}: {s:?}");
        let vals = sim.audio_values();
        let tail = &vals[vals.len() - 3000..];
        for w in tail.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}");
        }
        // Without jitter the delay stays small: packet + margin, well under 60 ms.
        assert!(sim.jb.target_ms() <= 35.0, "{r:?}: {}", sim.jb.target_ms());
        let d = sim.jb.delay_ms().unwrap();
        assert!(d <= 60.0, "{r:?}: delay {d}");
    }
}

#[test]
fn reordering_within_target_is_played_in_order() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        // One packet in 20 held back 45 ms (as the quality benchmark's reordering row):
        // its successor overtakes it, it still comes before its playout time.
        let delay = |i: u32| if i % 20 == 7 { 47_000 } else { 2_000 };
        // Past the start-up allowance and the drops that end it (each waits up to 4 s for a
        // pause this signal never has): the steady state.
        sim.run(1100, delay, |_| false);
        let warm = sim.jb.stats();
        sim.run(600, delay, |_| false);
        let s = sim.jb.stats();
        assert_eq!(s.late, warm.late, "{r:?}: late after warm-up: {s:?}");
        assert_eq!(s.lost, warm.lost, "{r:?}: {s:?}");
        assert_eq!(concealed_in_last(&sim, 600), 0, "{r:?}: {s:?}");
        let vals = sim.audio_values();
        for w in vals[vals.len() - 600..].windows(2) {
            assert_eq!(w[1], w[0] + 1, "{r:?}: out of order");
        }
        // The target covers the 45 ms (plus a packet and the margin), not much more.
        let t = sim.jb.target_ms();
        assert!((65.0..=90.0).contains(&t), "{r:?}: target {t}");
    }
}

#[test]
fn uniform_jitter_of_60_ms_plays_without_concealment_once_adapted() {
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    let mut rand = rng(11);
    let delays: Vec<u64> = (0..4000).map(|_| rand() % 60_000).collect();
    sim.run(1000, move |i| delays[i as usize % 4000], |_| false);
    let c = concealed_in_last(&sim, 750);
    assert!(c <= 4, "concealed {c} of 750: {:?}", sim.jb.stats());
    let t = sim.jb.target_ms();
    assert!((80.0..=100.0).contains(&t), "target {t}");
    let vals = sim.audio_values();
    for w in vals.windows(2) {
        assert!(w[1] > w[0], "replay or reorder");
    }
}

#[test]
fn loss_while_the_buffer_is_empty_is_concealed_exactly_once() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(40));
        // Packet 50 is lost and 51..54 come 50 ms late: the buffer runs dry at packet 50's
        // slot, conceals, and when 51 arrives 50 is known lost: its slot was concealed
        // already, so it is not concealed a second time.
        sim.run(
            120,
            |i| if (51..55).contains(&i) { 52_000 } else { 2_000 },
            |i| i == 50,
        );
        let s = sim.jb.stats();
        assert_eq!(s.lost, 1, "{r:?}: {s:?}");
        assert_eq!(s.loss_already_concealed, 1, "{r:?}: {s:?}");
        assert!(s.underflows >= 2, "{r:?}: {s:?}");
        // Every concealed frame is an underflow frame: none was added for the loss itself.
        assert_eq!(s.concealed, s.underflows, "{r:?}: {s:?}");
        assert_eq!(s.plc_concealed, s.underflows, "{r:?}: {s:?}");
        // Packet 51 (value 52) plays right after packet 49 (value 50) and the concealment.
        let vals = sim.audio_values();
        let k = vals.iter().position(|&v| v == 50).unwrap();
        assert_eq!(vals[k + 1], 52, "{r:?}");
        assert_eq!(s.late, 0, "{r:?}");
    }
}

#[test]
fn delay_step_is_bridged_by_concealment_without_losing_a_packet() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::fixed(40));
        // From packet 50 on the path is 60 ms slower: the buffer runs dry, conceals, and
        // the late packets still play, in order, at the larger delay.
        sim.run(200, |i| if i >= 50 { 62_000 } else { 2_000 }, |_| false);
        let s = sim.jb.stats();
        assert_eq!((s.lost, s.late), (0, 0), "{r:?}: {s:?}");
        assert!(s.underflows >= 2, "{r:?}: {s:?}");
        let vals = sim.audio_values();
        for w in vals.windows(2) {
            assert!(w[1] > w[0], "{r:?}: replay or reorder");
        }
        assert!(vals.contains(&51) && vals.contains(&52), "{r:?}");
    }
}

#[test]
fn packets_behind_their_slot_are_dropped_as_late_and_raise_the_target() {
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    sim.run(300, |_| 2_000, |_| false);
    let calm = sim.jb.target_ms();
    assert!(calm <= 35.0, "{calm}");
    // Packets 310 and 330 are 150 ms late: their successors play first, their slots are
    // concealed, and when they come they are dropped — but their delays count: two in a
    // few seconds are above the 99.5th percentile.
    let late = |i: u32| if i == 310 || i == 330 { 152_000 } else { 2_000 };
    sim.run(60, late, |_| false);
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.late), (2, 2), "{s:?}");
    assert!(sim.jb.target_ms() > 150.0, "{}", sim.jb.target_ms());
}

#[test]
fn delay_corrections_wait_for_a_quiet_frame() {
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    // Loud "speech" except packets 150..200 (a pause between words).
    sim.value_of = |i| {
        if (150..200).contains(&i) {
            (i % 20) as i16 + 1
        } else {
            8000 + (i % 1000) as i16
        }
    };
    // The initial 60 ms is more than the target needs (about 32 ms), but not by two frames:
    // the drop waits for the pause instead of cutting into speech.
    sim.run(140, |_| 2_000, |_| false);
    assert_eq!(sim.jb.stats().frames_dropped, 0, "{:?}", sim.jb.stats());
    assert!(sim.jb.delay_ms().unwrap() > sim.jb.target_ms() + 20.0);
    sim.run(60, |_| 2_000, |_| false);
    assert_eq!(sim.jb.stats().frames_dropped, 1, "{:?}", sim.jb.stats());
    // The frames around the cut are the quiet ones.
    let vals = sim.audio_values();
    let k = vals
        .windows(2)
        .position(|w| w[1] != w[0] + 1)
        .expect("a frame was dropped");
    // The dropped packet and the one cross-faded into are both in the pause.
    assert!(
        vals[k + 1] - vals[k] != 1 && vals[k + 1] <= 20,
        "cut at {:?}",
        &vals[k..k + 2]
    );
}

#[test]
fn lost_packets_play_as_silence_when_concealment_is_off() {
    let cfg = JitterConfig {
        plc: false,
        ..JitterConfig::fixed(60)
    };
    let mut sim = Sim::new(RATES[1], cfg);
    sim.dec.plc = true; // the codec could conceal: not asked
    sim.run(100, |_| 2_000, |i| i == 40);
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.codec_concealed, s.plc_concealed), (1, 0, 0));
    assert!(sim.played.contains(&(FrameKind::Concealed, 0)));
}

#[test]
fn jittersize_bias_orders_the_delays() {
    let mut targets = Vec::new();
    for size in 1..=6 {
        let mut sim = Sim::new(RATES[0], JitterConfig::for_jittersize(size));
        let mut rand = rng(5);
        let delays: Vec<u64> = (0..2000).map(|_| rand() % 40_000).collect();
        sim.run(500, move |i| delays[i as usize % 2000], |_| false);
        targets.push(sim.jb.target_ms());
    }
    for w in targets.windows(2) {
        assert!(w[1] >= w[0], "{targets:?}");
    }
    assert!(targets[5] > targets[0] + 40.0, "{targets:?}");
    // 0 = no jitter buffer: one frame, fixed.
    let none = JitterConfig::for_jittersize(0);
    assert_eq!((none.adaptive, none.target_ms), (false, 20));
    assert_eq!(JitterConfig::for_jittersize(3), JitterConfig::default());
    assert_eq!(JitterConfig::for_jittersize(42), JitterConfig::default());
}

#[test]
fn rare_reordering_on_top_of_jitter_is_covered_by_the_peak_hold() {
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    let mut rand = rng(23);
    // 60 ms of uniform jitter, and one packet in 100 held back a further 45 ms (the quality
    // benchmark's 60 ms row): the held-back ones are above the 99.5th percentile.
    let delays: Vec<u64> = (0..4000)
        .map(|i| rand() % 60_000 + if i % 100 == 37 { 45_000 } else { 0 })
        .collect();
    let delays30: Vec<u64> = delays
        .iter()
        .map(|d| d % 60_000 / 2 + d / 60_000 * 45_000)
        .collect();
    sim.run(250, |i| delays[i as usize % 4000], |_| false);
    let warm = sim.jb.stats();
    sim.run(1000, |i| delays[i as usize % 4000], |_| false);
    let s = sim.jb.stats();
    assert!(s.lost - warm.lost <= 1, "{s:?}");
    assert!(concealed_in_last(&sim, 1000) <= 2, "{s:?}");
    let t = sim.jb.target_ms();
    assert!(t > 95.0 && t < 140.0, "target {t}");
    // The same with 30 ms of jitter: the first held-back packet lifts the early quantile,
    // the next ones must still count as peaks.
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    sim.run(250, |i| delays30[i as usize % 4000], |_| false);
    let warm = sim.jb.stats();
    sim.run(1000, |i| delays30[i as usize % 4000], |_| false);
    let s = sim.jb.stats();
    assert!(s.lost - warm.lost <= 1, "{s:?}");
    assert!(concealed_in_last(&sim, 1000) <= 2, "{s:?}");
}

#[test]
fn early_outliers_on_a_jittery_path_are_covered_by_the_start_up_allowance() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(31);
        // 60 ms of uniform jitter from the start, and from the third second on one packet in
        // 100 held back 45 ms more: neither the quantile nor the peak hold has seen such a
        // delay when the first one comes.
        let delays: Vec<u64> = (0..4000)
            .map(|i| rand() % 60_000 + if i >= 150 && i % 100 == 37 { 45_000 } else { 0 })
            .collect();
        sim.run(150, |i| delays[i as usize % 4000], |_| false);
        let warm = sim.jb.stats();
        let early = sim.jb.target_ms();
        // About 2.2 times the jitter less 6 ms (the allowance), plus a packet and the margin.
        assert!((120.0..=170.0).contains(&early), "{r:?}: target {early}");
        sim.run(350, |i| delays[i as usize % 4000], |_| false);
        let s = sim.jb.stats();
        // Every held-back packet of the window plays in time: no grace frame, nothing late.
        assert_eq!(s.underflows, warm.underflows, "{r:?}: {s:?}");
        assert_eq!((s.late, s.lost), (warm.late, warm.lost), "{r:?}: {s:?}");
        // After the window the peak hold alone keeps the outliers covered, at less delay.
        sim.run(600, |i| delays[i as usize % 4000], |_| false);
        let s = sim.jb.stats();
        assert_eq!(s.late, warm.late, "{r:?}: {s:?}");
        let t = sim.jb.target_ms();
        assert!(t < early && t > 95.0, "{r:?}: target {t} (start {early})");
    }
}

#[test]
fn one_early_outlier_on_a_quiet_path_gets_no_start_up_allowance() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        // A quiet path with one packet 80 ms late in the first second: the peak hold covers
        // it for a while, the allowance must not double it.
        sim.value_of = |i| (i % 2) as i16 + 1;
        sim.run(40, |i| if i == 12 { 82_000 } else { 2_000 }, |_| false);
        let t = sim.jb.target_ms();
        assert!(t < 130.0, "{r:?}: target {t}");
    }
}

#[test]
fn the_start_up_allowance_fades_out_without_urgent_drops() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(53);
        // 100 ms of uniform jitter, steady speech with no pause: the allowance lifts the
        // target far above what the quantile asks; when it ends, the surplus must go a frame
        // at a time as the 4 s wait for a pause runs out, never several frames in a row.
        let delays: Vec<u64> = (0..4000).map(|_| rand() % 100_000).collect();
        sim.run(400, |i| delays[i as usize % 4000], |_| false);
        let early = sim.jb.target_ms();
        let mut drops = Vec::new();
        for tick in 400..1800 {
            let before = sim.jb.stats().frames_dropped;
            sim.run(1, |i| delays[i as usize % 4000], |_| false);
            if sim.jb.stats().frames_dropped > before {
                drops.push(tick);
            }
        }
        let late = sim.jb.target_ms();
        assert!(late < early - 40.0, "{r:?}: target {early} -> {late}");
        assert!(!drops.is_empty(), "{r:?}: the surplus was not given back");
        for w in drops.windows(2) {
            assert!(w[1] - w[0] > 50, "{r:?}: drops at {drops:?}");
        }
    }
}

#[test]
fn the_start_up_allowance_only_rises_while_it_holds() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(61);
        // 60 ms of uniform jitter: the allowance rules the target for the first 10 s, and
        // the 90th percentile of a few hundred delays wobbles by some ms from packet to
        // packet. Followed as it is, the target went down and up again and the buffer chased
        // it with a drop and an insert (seen in the benchmark's debug log).
        let delays: Vec<u64> = (0..4000).map(|_| rand() % 60_000).collect();
        sim.run(40, |i| delays[i as usize % 4000], |_| false);
        let mut last = sim.jb.target_ms();
        for tick in 40..480 {
            sim.run(1, |i| delays[i as usize % 4000], |_| false);
            let t = sim.jb.target_ms();
            assert!(t >= last, "{r:?}: target {last} -> {t} at tick {tick}");
            last = t;
        }
    }
}

#[test]
fn small_jittersize_biases_have_no_start_up_allowance() {
    let mut rand = rng(59);
    let delays: Vec<u64> = (0..4000).map(|_| rand() % 60_000).collect();
    let target_after = |cfg: JitterConfig| {
        let mut sim = Sim::new(RATES[0], cfg);
        sim.run(200, |i| delays[i as usize % 4000], |_| false);
        sim.jb.target_ms()
    };
    let normal = target_after(JitterConfig::for_jittersize(3));
    let small = target_after(JitterConfig::for_jittersize(2));
    assert!(normal > 120.0, "normal: {normal}");
    assert!(small < 90.0, "small: {small}");
}

#[test]
fn a_pause_takes_the_whole_growth_at_once() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(41);
        // 60 ms of jitter from the first packet, and nothing but a pause to play: once the
        // delay is measured (ten packets) it reaches the raised target in one go (tick 14
        // here), not a frame every ten packets (tick 32).
        let delays: Vec<u64> = (0..4000).map(|_| rand() % 60_000).collect();
        sim.value_of = |i| (i % 2) as i16 + 1;
        let mut reached = None;
        for tick in 0..100 {
            sim.run(1, |i| delays[i as usize % 4000], |_| false);
            let d = sim.jb.delay_ms().unwrap_or(0.0);
            if reached.is_none() && d >= sim.jb.target_ms() - 5.0 {
                reached = Some(tick);
            }
        }
        let s = sim.jb.stats();
        let reached = reached.unwrap_or_else(|| panic!("{r:?}: target not reached: {s:?}"));
        assert!(reached < 20, "{r:?}: reached at tick {reached}: {s:?}");
        assert!(s.frames_stretched >= 3, "{r:?}: {s:?}");
    }
}

#[test]
fn a_quiet_path_gets_no_start_up_allowance() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(37);
        // Scheduling noise of a few ms (a loaded machine on a loopback path).
        let delays: Vec<u64> = (0..4000).map(|_| 1_000 + rand() % 4_000).collect();
        sim.value_of = |i| (i % 2) as i16 + 1;
        sim.run(300, |i| delays[i as usize % 4000], |_| false);
        let t = sim.jb.target_ms();
        assert!(t <= 36.0, "{r:?}: target {t}");
        let d = sim.jb.delay_ms().unwrap_or(f64::MAX);
        assert!(d < 40.0, "{r:?}: delay {d}");
    }
}

#[test]
fn single_outlier_is_held_for_a_few_seconds_only() {
    let mut sim = Sim::new(RATES[0], JitterConfig::default());
    sim.run(500, |_| 2_000, |_| false);
    // Packet 510 comes 80 ms late (lost, then dropped as late); nothing else changes.
    sim.run(20, |i| if i == 510 { 82_000 } else { 2_000 }, |_| false);
    assert_eq!(sim.jb.stats().late, 1);
    let held = sim.jb.target_ms();
    assert!(held > 100.0, "{held}");
    // Three seconds later the target still covers it (a second outlier would play)...
    sim.run(150, |_| 2_000, |_| false);
    assert!(sim.jb.target_ms() > 100.0, "{}", sim.jb.target_ms());
    // ...eight seconds later it is back: one outlier alone is not the 99.5th percentile.
    sim.run(250, |_| 2_000, |_| false);
    assert!(sim.jb.target_ms() < 40.0, "{}", sim.jb.target_ms());
}

#[test]
fn packet_late_by_less_than_a_frame_still_plays_after_one_grace_frame() {
    for r in RATES {
        // An 80 ms delay (four packets buffered).
        let cfg = JitterConfig {
            min_ms: 80,
            ..JitterConfig::default()
        };
        let mut sim = Sim::new(r, cfg);
        sim.run(1250, |_| 2_000, |_| false);
        let calm = sim.jb.stats();
        // Packet 1260 is held back 70 ms: its successors overtake it and its slot comes
        // before it does. The slot is concealed without moving the play position (a grace
        // frame); the packet then arrives within that frame and plays, in order.
        sim.run(100, |i| if i == 1260 { 72_000 } else { 2_000 }, |_| false);
        let s = sim.jb.stats();
        assert_eq!((s.lost, s.late), (0, 0), "{r:?}: {s:?}");
        assert_eq!(s.grace_waits - calm.grace_waits, 1, "{r:?}: {s:?}");
        assert_eq!(s.concealed - calm.concealed, 1, "{r:?}: {s:?}");
        let vals = sim.audio_values();
        assert!(vals.contains(&1261), "{r:?}");
        for w in vals.windows(2) {
            assert!(w[1] > w[0], "{r:?}: replay or reorder");
        }
    }
}

#[test]
fn lost_packet_costs_no_extra_frame_for_its_grace_frame() {
    for r in RATES {
        // An 80 ms delay (four packets buffered).
        let cfg = JitterConfig {
            min_ms: 80,
            ..JitterConfig::default()
        };
        let mut sim = Sim::new(r, cfg);
        sim.run(1250, |_| 2_000, |_| false);
        let before = sim.jb.delay_ms().unwrap();
        let calm = sim.jb.stats();
        // Packet 1260 never comes: the grace frame concealed its slot, and that concealment
        // stands for it — one concealed frame, the next packet right after, same delay.
        sim.run(100, |_| 2_000, |i| i == 1260);
        let s = sim.jb.stats();
        assert_eq!((s.lost, s.late), (1, 0), "{r:?}: {s:?}");
        assert_eq!(s.grace_waits - calm.grace_waits, 1, "{r:?}: {s:?}");
        assert_eq!(s.loss_already_concealed, 1, "{r:?}: {s:?}");
        assert_eq!(s.concealed - calm.concealed, 1, "{r:?}: {s:?}");
        assert_eq!(s.frames_stretched, calm.frames_stretched, "{r:?}: {s:?}");
        let vals = sim.audio_values();
        let k = vals.iter().position(|&v| v == 1260).unwrap();
        assert_eq!(vals[k + 1], 1262, "{r:?}");
        assert_eq!(sim.jb.delay_ms().unwrap(), before, "{r:?}");
    }
}

/// Delay corrections (frames dropped or inserted) made between two snapshots of the stats.
fn corrections_since(before: &JitterStats, now: &JitterStats) -> u64 {
    now.frames_dropped + now.frames_stretched - before.frames_dropped - before.frames_stretched
}

#[test]
fn losses_under_jitter_cause_no_drop_and_insert_pairs() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(41);
        // 30 ms of uniform jitter and 3 % loss (the benchmark's loss + jitter rows): a grace
        // frame that turns out to be a loss leaves the delay as it was, so the delay control
        // must not drop a frame for it (and insert one back the next moment).
        let delays: Vec<u64> = (0..4000).map(|_| rand() % 30_000).collect();
        let lost = |i: u32| i > 300 && i % 33 == 0;
        // Quiet audio: a correction the control asks for is made at once (as in a pause).
        sim.value_of = |i| (i % 2) as i16 + 1;
        sim.run(600, |i| delays[i as usize % 4000], |_| false);
        let warm = sim.jb.stats();
        sim.run(1000, |i| delays[i as usize % 4000], lost);
        let s = sim.jb.stats();
        assert!(s.lost - warm.lost >= 25, "{r:?}: {s:?}");
        assert!(s.grace_waits - warm.grace_waits >= 10, "{r:?}: {s:?}");
        let corrections = corrections_since(&warm, &s);
        assert!(corrections <= 2, "{r:?}: {s:?}");
    }
}

#[test]
fn a_late_packet_pending_defers_the_delay_correction() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(43);
        // The benchmark's worst jitter row: 60 ms of uniform jitter, and 1 % of the packets
        // held back 45 ms more (reordered behind their successors), here from packet 700 on:
        // after the start-up allowance, so the first ones find the delay short.
        let delays: Vec<u64> = (0..4000)
            .map(|i| rand() % 60_000 + if i >= 700 && i % 97 == 50 { 45_000 } else { 0 })
            .collect();
        sim.value_of = |i| (i % 2) as i16 + 1;
        sim.run(650, |i| delays[i as usize % 4000], |_| false);
        let warm = sim.jb.stats();
        // (tick, +1 insert / -1 drop) of every correction from here on.
        let mut corrections = Vec::new();
        for tick in 0..1500 {
            let before = sim.jb.stats();
            sim.run(1, |i| delays[i as usize % 4000], |_| false);
            let after = sim.jb.stats();
            if after.frames_stretched > before.frames_stretched {
                corrections.push((tick, 1));
            }
            if after.frames_dropped > before.frames_dropped {
                corrections.push((tick, -1));
            }
        }
        let s = sim.jb.stats();
        // The outliers find the buffer short (grace frames whose packets then play), and the
        // target rises. Deciding an insert while the grace frame was out gave an insert and,
        // once the packet played, a drop a few packets later. Deferred, a correction is
        // never undone within a second (the peak hold may lower the target later).
        assert!(s.underflows - warm.underflows >= 1, "{r:?}: {s:?}");
        assert!(!corrections.is_empty(), "{r:?}: {s:?}");
        for w in corrections.windows(2) {
            let ((t0, k0), (t1, k1)) = (w[0], w[1]);
            assert!(
                k0 == k1 || t1 - t0 > 50,
                "{r:?}: correction {k0} at tick {t0} undone at {t1}: {corrections:?}"
            );
        }
    }
}

#[test]
fn losses_in_steady_speech_do_not_hold_back_a_needed_drop() {
    for r in RATES {
        let mut sim = Sim::new(r, JitterConfig::default());
        let mut rand = rng(47);
        // 40 ms of jitter raises the target; then the network is steady and the target
        // falls back, leaving the buffer a frame or two long (not urgent). The speech never
        // pauses, so the drop waits its longest; every 50th packet is lost, and each loss
        // puts a grace frame out. Those must not restart the wait.
        sim.value_of = |i| 8000 + (i % 2) as i16;
        let jitter: Vec<u64> = (0..600).map(|_| rand() % 40_000).collect();
        sim.run(600, |i| jitter[i as usize % 600], |_| false);
        let before = sim.jb.stats();
        sim.run(2000, |_| 0, |i| i % 50 == 7);
        let s = sim.jb.stats();
        assert!(s.lost - before.lost >= 30, "{r:?}: {s:?}");
        assert!(
            s.frames_dropped > before.frames_dropped,
            "{r:?}: the long buffer was never shortened: {s:?}"
        );
    }
}
