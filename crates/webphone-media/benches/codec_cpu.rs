//! CPU cost per call-second (50 packets of 20 ms) for every codec:
//!
//! - `cpu/<codec>/codec`: encode + decode through our per-call encoder/decoder objects;
//! - `cpu/<codec>/raw_c`: the same encode + decode with direct calls into the C library, no
//!   wrapper (GSM: libgsm, Speex: libspeex, G.729: libbcg729, Opus: libopus through audiopus,
//!   the thinnest binding we have); G.711 and G.722 are our own Rust code, so they have none;
//! - `cpu/<codec>/call`: what one call costs the phone per second: encode, RTP-level jitter
//!   buffer push and playout (decoding there), and the conference mixer tick with the line.
//!
//! After the criterion runs a summary table is printed (µs per call-second and the share of
//! one core). Run: `cargo bench -p webphone-media --bench codec_cpu`; only the summary:
//! `cargo bench -p webphone-media --bench codec_cpu -- summary-only` (no criterion runs).
//! The machine must be otherwise idle for stable numbers.

#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use webphone_media::codec::{new_decoder, new_encoder, CallCodecs, CodecConfig};
use webphone_media::jitter::{JitterBuffer, PlayoutDecoder};
use webphone_media::local::{MixerConfig, MixerHub};
use webphone_media::{Codec, NullSink, PcmSink, PcmSource};

/// Packets in one call-second.
const FRAMES: usize = 50;

/// One second of a speech-band test signal (two tones with a slow level change, so no
/// silence/DTX path skips work), cut into 20 ms frames at the codec's audio rate.
fn signal(codec: Codec) -> Vec<Vec<i16>> {
    let rate = codec.audio_rate() as f32;
    let n = codec.frame_samples(20);
    (0..FRAMES)
        .map(|f| {
            (0..n)
                .map(|i| {
                    let t = (f * n + i) as f32 / rate;
                    let env = 0.6 + 0.4 * (t * 2.0 * std::f32::consts::PI * 3.0).sin();
                    let v = (t * 2.0 * std::f32::consts::PI * 440.0).sin() * 6000.0
                        + (t * 2.0 * std::f32::consts::PI * 1870.0).sin() * 3000.0;
                    (v * env) as i16
                })
                .collect()
        })
        .collect()
}

/// Encode + decode one call-second through our wrappers.
fn ours(codec: Codec) -> impl FnMut() {
    let frames = signal(codec);
    let mut enc = new_encoder(codec, &CodecConfig::default()).expect("encoder");
    let mut dec = new_decoder(codec).expect("decoder");
    let mut bytes = Vec::with_capacity(1500);
    let mut out = Vec::with_capacity(codec.frame_samples(20));
    move || {
        for f in &frames {
            bytes.clear();
            out.clear();
            let _ = enc.encode(black_box(f), &mut bytes);
            let _ = dec.decode(black_box(&bytes), &mut out);
        }
        black_box(&out);
    }
}

/// Decoding at playout through the per-call codecs, as the pipeline does.
struct Playout {
    codecs: CallCodecs,
    codec: Codec,
}

impl PlayoutDecoder for Playout {
    fn output_rate(&self) -> u32 {
        self.codecs.device_rate()
    }
    fn decode(&mut self, pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
        self.codecs.decode(pt, self.codec, payload, out).is_ok()
    }
    fn conceal(&mut self, pt: u8, samples: usize, out: &mut Vec<i16>) -> bool {
        self.codecs
            .conceal(pt, self.codec, samples, out)
            .unwrap_or(false)
    }
}

/// A PCM source that plays the same frame (the line's decoded audio handed to the mixer).
struct Frames(Vec<i16>);
impl PcmSource for Frames {
    fn read_frame(&mut self, out: &mut [i16]) {
        for (o, s) in out.iter_mut().zip(self.0.iter().cycle()) {
            *o = *s;
        }
    }
}

/// One call-second of the whole receive/send work: encode, jitter buffer, decode, mix.
fn call(codec: Codec) -> impl FnMut() {
    let frames = signal(codec);
    let rate = codec.audio_rate();
    let pt = codec.default_payload_type();
    let mut send = CallCodecs::new(rate, CodecConfig::default());
    let mut dec = Playout {
        codecs: CallCodecs::new(rate, CodecConfig::default()),
        codec,
    };
    let mut jb = JitterBuffer::default();
    let mut hub = MixerHub::new(
        MixerConfig {
            rate,
            ..MixerConfig::default()
        },
        Box::new(Frames(frames[0].clone())),
        Box::new(NullSink),
    )
    .expect("mixer");
    let (mut line_src, mut line_sink) = hub.handle().add_line(1, rate).expect("line");
    let mut bytes = Vec::with_capacity(1500);
    let mut play = vec![0i16; codec.frame_samples(20)];
    let mut to_net = vec![0i16; play.len()];
    let step = codec.timestamp_step(20);
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    let mut now = Instant::now();
    move || {
        for f in &frames {
            bytes.clear();
            let _ = send.encode(codec, black_box(f), &mut bytes);
            jb.push(seq, ts, 7, codec.clock_rate(), pt, &bytes, step, now);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(step);
            black_box(jb.pop(now, &mut play, &mut dec));
            line_sink.write_frame(&play);
            hub.tick();
            line_src.read_frame(&mut to_net);
            now += Duration::from_millis(20);
        }
        black_box(&to_net);
    }
}

mod raw {
    //! The C libraries called directly (our own declarations, as in the codec modules).
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct SpeexBits {
        chars: *mut c_char,
        nb_bits: c_int,
        char_ptr: c_int,
        bit_ptr: c_int,
        owner: c_int,
        overflow: c_int,
        buf_size: c_int,
        reserved1: c_int,
        reserved2: *mut c_void,
    }

    impl SpeexBits {
        pub fn zeroed() -> SpeexBits {
            SpeexBits {
                chars: std::ptr::null_mut(),
                nb_bits: 0,
                char_ptr: 0,
                bit_ptr: 0,
                owner: 0,
                overflow: 0,
                buf_size: 0,
                reserved1: 0,
                reserved2: std::ptr::null_mut(),
            }
        }
    }

    #[link(name = "gsm")]
    extern "C" {
        pub fn gsm_create() -> *mut c_void;
        pub fn gsm_encode(g: *mut c_void, src: *mut i16, dst: *mut u8);
        pub fn gsm_decode(g: *mut c_void, src: *mut u8, dst: *mut i16) -> c_int;
    }

    #[link(name = "speex")]
    extern "C" {
        pub fn speex_lib_get_mode(mode: c_int) -> *const c_void;
        pub fn speex_encoder_init(mode: *const c_void) -> *mut c_void;
        pub fn speex_encoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        pub fn speex_encode_int(state: *mut c_void, input: *mut i16, bits: *mut SpeexBits)
            -> c_int;
        pub fn speex_decoder_init(mode: *const c_void) -> *mut c_void;
        pub fn speex_decode_int(state: *mut c_void, bits: *mut SpeexBits, out: *mut i16) -> c_int;
        pub fn speex_bits_init(bits: *mut SpeexBits);
        pub fn speex_bits_reset(bits: *mut SpeexBits);
        pub fn speex_bits_read_from(bits: *mut SpeexBits, bytes: *const c_char, len: c_int);
        pub fn speex_bits_write(bits: *mut SpeexBits, bytes: *mut c_char, max_len: c_int) -> c_int;
    }

    #[link(name = "bcg729")]
    extern "C" {
        pub fn initBcg729EncoderChannel(vad: u8) -> *mut c_void;
        pub fn bcg729Encoder(ctx: *mut c_void, input: *const i16, bits: *mut u8, len: *mut u8);
        pub fn initBcg729DecoderChannel() -> *mut c_void;
        pub fn bcg729Decoder(
            ctx: *mut c_void,
            bits: *const u8,
            len: u8,
            erasure: u8,
            sid: u8,
            rfc3389: u8,
            out: *mut i16,
        );
    }
}

/// Encode + decode one call-second with direct C calls; `None` for our Rust-only codecs.
/// (States are leaked: a handful per benchmark run.)
fn raw_c(codec: Codec) -> Option<Box<dyn FnMut()>> {
    let frames = signal(codec);
    match codec {
        Codec::Gsm => {
            // SAFETY: fresh states, 160-sample frames and 33-octet buffers as libgsm expects.
            let (e, d) = unsafe { (raw::gsm_create(), raw::gsm_create()) };
            Some(Box::new(move || {
                let mut bits = [0u8; 33];
                let mut out = [0i16; 160];
                for f in &frames {
                    let mut pcm = [0i16; 160];
                    pcm.copy_from_slice(f);
                    // SAFETY: as above.
                    unsafe {
                        raw::gsm_encode(e, pcm.as_mut_ptr(), bits.as_mut_ptr());
                        raw::gsm_decode(d, bits.as_mut_ptr(), out.as_mut_ptr());
                    }
                }
                black_box(&out);
            }))
        }
        Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => {
            let mode = match codec {
                Codec::Speex => 0,
                Codec::SpeexWb => 1,
                _ => 2,
            };
            let n = codec.frame_samples(20);
            let mut eb = Box::new(raw::SpeexBits::zeroed());
            let mut db = Box::new(raw::SpeexBits::zeroed());
            // SAFETY: static mode table, fresh states and bit buffers; quality 8 as ours.
            let (e, d) = unsafe {
                let m = raw::speex_lib_get_mode(mode);
                let e = raw::speex_encoder_init(m);
                let mut q: i32 = 8;
                raw::speex_encoder_ctl(e, 4, (&mut q as *mut i32).cast());
                raw::speex_bits_init(&mut *eb);
                raw::speex_bits_init(&mut *db);
                (e, raw::speex_decoder_init(m))
            };
            Some(Box::new(move || {
                let mut bytes = [0u8; 512];
                let mut pcm = vec![0i16; n];
                let mut out = vec![0i16; n];
                for f in &frames {
                    pcm.copy_from_slice(f);
                    // SAFETY: `n`-sample frames (the mode's frame size), 512-octet buffer.
                    unsafe {
                        raw::speex_bits_reset(&mut *eb);
                        raw::speex_encode_int(e, pcm.as_mut_ptr(), &mut *eb);
                        let len = raw::speex_bits_write(&mut *eb, bytes.as_mut_ptr().cast(), 512);
                        raw::speex_bits_read_from(&mut *db, bytes.as_ptr().cast(), len);
                        raw::speex_decode_int(d, &mut *db, out.as_mut_ptr());
                    }
                }
                black_box(&out);
            }))
        }
        Codec::G729 => {
            // SAFETY: fresh channels (VAD off); 80-sample frames, 10-octet buffers.
            let (e, d) = unsafe {
                (
                    raw::initBcg729EncoderChannel(0),
                    raw::initBcg729DecoderChannel(),
                )
            };
            Some(Box::new(move || {
                let mut bits = [0u8; 10];
                let mut len = 0u8;
                let mut out = [0i16; 80];
                for f in &frames {
                    for half in f.chunks_exact(80) {
                        // SAFETY: as above.
                        unsafe {
                            raw::bcg729Encoder(e, half.as_ptr(), bits.as_mut_ptr(), &mut len);
                            raw::bcg729Decoder(d, bits.as_ptr(), 10, 0, 0, 0, out.as_mut_ptr());
                        }
                    }
                }
                black_box(&out);
            }))
        }
        Codec::Opus => {
            use audiopus::coder::{Decoder, Encoder};
            use audiopus::{Application, Bitrate, Channels, SampleRate};
            let mut enc =
                Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).ok()?;
            enc.set_bitrate(Bitrate::BitsPerSecond(32_000)).ok()?;
            enc.set_complexity(8).ok()?;
            enc.set_inband_fec(true).ok()?;
            enc.set_packet_loss_perc(5).ok()?;
            // The same settings as our encoder (OpusConfig::default, voice signal).
            enc.set_signal(audiopus::Signal::Voice).ok()?;
            enc.set_max_bandwidth(audiopus::Bandwidth::Fullband).ok()?;
            let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).ok()?;
            Some(Box::new(move || {
                let mut bytes = [0u8; 1500];
                let mut out = vec![0i16; 960];
                for f in &frames {
                    let n = enc.encode(f, &mut bytes).unwrap_or(0);
                    let p = audiopus::packet::Packet::try_from(&bytes[..n.max(1)]).ok();
                    if let Ok(s) = audiopus::MutSignals::try_from(&mut out[..]) {
                        let _ = dec.decode(p, s, false);
                    }
                }
                black_box(&out);
            }))
        }
        Codec::Pcmu | Codec::Pcma | Codec::G722 => None,
    }
}

fn name(codec: Codec) -> String {
    format!("{codec:?}").to_lowercase()
}

fn criterion_runs(c: &mut Criterion) {
    for codec in Codec::ALL {
        let n = name(codec);
        let mut f = ours(codec);
        c.bench_function(&format!("cpu/{n}/codec"), |b| b.iter(&mut f));
        if let Some(mut f) = raw_c(codec) {
            c.bench_function(&format!("cpu/{n}/raw_c"), |b| b.iter(&mut f));
        }
        let mut f = call(codec);
        c.bench_function(&format!("cpu/{n}/call"), |b| b.iter(&mut f));
    }
}

/// Median µs per run of each closure over 21 rounds; the closures run alternately, so load
/// from other processes spreads over all of them alike.
fn medians_us(fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); fs.len()];
    for f in fs.iter_mut() {
        f();
    }
    for _ in 0..21 {
        for (f, t) in fs.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            f();
            t.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    times
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

fn summary() {
    println!();
    println!("CPU per call-second (median of 21 interleaved rounds, µs; % = share of one core)");
    println!(
        "{:<10} {:>14} {:>14} {:>8} {:>22}",
        "codec", "codec (ours)", "raw C library", "ours/C", "call: +jitter +mix"
    );
    for codec in Codec::ALL {
        let mut ours_f = ours(codec);
        let mut call_f = call(codec);
        let (ours_us, raw, call_us) = match raw_c(codec) {
            Some(mut raw_f) => {
                let m = medians_us(&mut [&mut ours_f, &mut *raw_f, &mut call_f]);
                (m[0], Some(m[1]), m[2])
            }
            None => {
                let m = medians_us(&mut [&mut ours_f, &mut call_f]);
                (m[0], None, m[1])
            }
        };
        let (raw_s, ratio) = match raw {
            Some(r) => (format!("{r:.0}"), format!("{:.2}", ours_us / r)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<10} {:>14.0} {:>14} {:>8} {:>13.0} ({:.2} %)",
            name(codec),
            ours_us,
            raw_s,
            ratio,
            call_us,
            call_us / 1e4
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "summary-only") {
        summary();
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args();
    criterion_runs(&mut c);
    c.final_summary();
    summary();
}
