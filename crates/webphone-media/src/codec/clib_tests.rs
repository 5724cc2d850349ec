//! Tests of the codecs of the C libraries (GSM, Speex, G.729): round trips keep a tone's
//! frequency and level, frame sizes, malformed payloads give errors, SDP negotiation.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::sdp;
use crate::MediaOffer;
use std::net::SocketAddr;

/// Goertzel power of `freq` in `x` (sampled at `rate`), normalised to the signal length.
fn goertzel(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.len() as f64 * x.len() as f64)
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

fn tone(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

/// Encode one second of a tone in 20 ms packets and decode it again; returns input, output
/// and the payload sizes.
fn round_trip(codec: Codec, freq: f64) -> (Vec<i16>, Vec<i16>, Vec<usize>) {
    let rate = codec.audio_rate();
    let frame = codec.frame_samples(20);
    let input = tone(rate, freq, 8000.0, rate as usize);
    let mut enc = new_encoder(codec, &CodecConfig::default()).unwrap();
    let mut dec = new_decoder(codec).unwrap();
    let mut output = Vec::new();
    let mut sizes = Vec::new();
    for chunk in input.chunks_exact(frame) {
        let mut payload = Vec::new();
        enc.encode(chunk, &mut payload).unwrap();
        sizes.push(payload.len());
        let units = packet_clock_units(codec, &payload).unwrap();
        assert_eq!(units, codec.timestamp_step(20), "{codec:?}");
        let before = output.len();
        dec.decode(&payload, &mut output).unwrap();
        assert_eq!(output.len() - before, frame, "{codec:?}");
    }
    (input, output, sizes)
}

/// The tone survives: after the codec's start-up (skip 200 ms) the output level is within
/// `level_db` of the input, and the tone's frequency dominates its neighbours a third of an
/// octave away by at least 20 dB.
fn assert_tone_kept(codec: Codec, freq: f64, level_db: f64) {
    let (input, output, _) = round_trip(codec, freq);
    let rate = codec.audio_rate();
    let skip = rate as usize / 5;
    let (i, o) = (&input[skip..], &output[skip..]);
    let ratio_db = 20.0 * (rms(o) / rms(i)).log10();
    assert!(
        ratio_db.abs() < level_db,
        "{codec:?} {freq} Hz: level changed by {ratio_db:.1} dB"
    );
    let at = goertzel(o, rate, freq);
    for other in [freq / 1.26, freq * 1.26] {
        let side = goertzel(o, rate, other);
        assert!(
            at > 100.0 * side,
            "{codec:?} {freq} Hz: tone {at:.0} vs {other:.0} Hz {side:.0}"
        );
    }
}

#[test]
fn gsm_round_trip_keeps_tone_and_uses_33_octet_frames() {
    assert_tone_kept(Codec::Gsm, 440.0, 2.0);
    assert_tone_kept(Codec::Gsm, 1000.0, 2.0);
    let (_, _, sizes) = round_trip(Codec::Gsm, 1000.0);
    assert!(sizes.iter().all(|&s| s == gsm::FRAME_BYTES));
    assert_eq!(Codec::Gsm.static_payload_type(), Some(3));
    assert_eq!(Codec::Gsm.rtpmap(), "GSM/8000");
}

#[test]
fn speex_round_trips_keep_tone_at_8_16_and_32_khz() {
    assert_tone_kept(Codec::Speex, 1000.0, 3.0);
    assert_tone_kept(Codec::SpeexWb, 1000.0, 3.0);
    assert_tone_kept(Codec::SpeexWb, 3000.0, 3.0);
    assert_tone_kept(Codec::SpeexUwb, 1000.0, 3.0);
    for (c, rate, frame) in [
        (Codec::Speex, 8000, 160),
        (Codec::SpeexWb, 16000, 320),
        (Codec::SpeexUwb, 32000, 640),
    ] {
        assert_eq!(c.clock_rate(), rate);
        assert_eq!(c.frame_samples(20), frame);
        assert_eq!(c.rtpmap(), format!("speex/{rate}"));
        let (_, _, sizes) = round_trip(c, 700.0);
        // Quality 8: 15 kbit/s narrowband (38 octets), 27.8 kbit/s wideband (70 octets).
        assert!(
            sizes.iter().all(|&s| (20..=120).contains(&s)),
            "{c:?} {sizes:?}"
        );
    }
}

#[test]
fn g729_round_trip_keeps_tone_in_two_10_octet_frames() {
    assert_tone_kept(Codec::G729, 440.0, 3.0);
    assert_tone_kept(Codec::G729, 1000.0, 3.0);
    let (_, _, sizes) = round_trip(Codec::G729, 1000.0);
    assert!(sizes.iter().all(|&s| s == 2 * g729::FRAME_BYTES));
    assert_eq!(Codec::G729.static_payload_type(), Some(18));
    assert_eq!(Codec::G729.rtpmap(), "G729/8000");
}

#[test]
fn bad_payloads_give_errors_not_panics() {
    let mut gsm = new_decoder(Codec::Gsm).unwrap();
    let mut out = Vec::new();
    assert!(gsm.decode(&[], &mut out).is_err());
    assert!(gsm.decode(&[0xd0; 32], &mut out).is_err());
    assert!(gsm.decode(&[0xd0; 34], &mut out).is_err());
    // Wrong signature nibble.
    assert!(gsm.decode(&[0x00; 33], &mut out).is_err());
    assert!(gsm.decode(&[0xd0; 33 * 7], &mut out).is_err());
    assert!(out.is_empty());

    let mut g729 = new_decoder(Codec::G729).unwrap();
    for len in [0, 1, 3, 9, 11, 15, 19] {
        assert!(g729.decode(&vec![0x55; len], &mut out).is_err(), "{len}");
    }
    assert!(out.is_empty());
    // A SID frame alone and speech + SID are valid (RFC 3551 §4.5.6).
    g729.decode(&[0x12, 0x34], &mut out).unwrap();
    assert_eq!(out.len(), 80);
    out.clear();
    g729.decode(&[0x77; 22], &mut out).unwrap();
    assert_eq!(out.len(), 240);
    out.clear();

    for c in [Codec::Speex, Codec::SpeexWb, Codec::SpeexUwb] {
        let mut d = new_decoder(c).unwrap();
        assert!(d.decode(&[], &mut out).is_err());
        assert!(d.decode(&vec![0; 5000], &mut out).is_err());
        out.clear();
    }

    // Encoders refuse partial frames.
    for c in [Codec::Gsm, Codec::G729, Codec::Speex, Codec::SpeexWb] {
        let mut e = new_encoder(c, &CodecConfig::default()).unwrap();
        let mut bytes = Vec::new();
        assert!(e.encode(&[0; 79], &mut bytes).is_err(), "{c:?}");
        assert!(e.encode(&[], &mut bytes).is_err(), "{c:?}");
    }
}

#[test]
fn random_payloads_never_panic_and_output_stays_bounded() {
    // A fixed LCG: deterministic garbage of every length up to 200 octets.
    let mut seed: u32 = 0x1234_5678;
    let mut next = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 24) as u8
    };
    for c in [
        Codec::Gsm,
        Codec::Speex,
        Codec::SpeexWb,
        Codec::SpeexUwb,
        Codec::G729,
    ] {
        let mut d = new_decoder(c).unwrap();
        for len in 1..200usize {
            let payload: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut out = Vec::new();
            let _ = d.decode(&payload, &mut out);
            assert!(out.len() <= c.frame_samples(120), "{c:?} {len}");
        }
    }
}

#[test]
fn speex_and_g729_conceal_lost_packets_gsm_leaves_it_to_the_buffer() {
    for (c, own) in [
        (Codec::Speex, true),
        (Codec::SpeexWb, true),
        (Codec::G729, true),
        (Codec::Gsm, false),
    ] {
        let frame = c.frame_samples(20);
        let mut enc = new_encoder(c, &CodecConfig::default()).unwrap();
        let mut dec = new_decoder(c).unwrap();
        let pcm = tone(c.audio_rate(), 500.0, 8000.0, frame);
        let mut out = Vec::new();
        for _ in 0..10 {
            let mut p = Vec::new();
            enc.encode(&pcm, &mut p).unwrap();
            dec.decode(&p, &mut out).unwrap();
        }
        let mut lost = Vec::new();
        dec.conceal(frame, &mut lost).unwrap();
        if own {
            assert_eq!(lost.len(), frame, "{c:?}");
            assert!(rms(&lost) > 100.0, "{c:?} concealment is silent");
        } else {
            assert!(lost.is_empty());
        }
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

#[test]
fn offer_carries_library_codecs_with_their_payload_types_and_g729_annexb_no() {
    let prefs = MediaOffer::new(
        vec![
            Codec::SpeexUwb,
            Codec::SpeexWb,
            Codec::Speex,
            Codec::Gsm,
            Codec::G729,
        ],
        true,
    );
    let o = sdp::create_offer(1, 1, local(), &prefs);
    assert!(o.contains("m=audio 4000 RTP/AVP 99 98 97 3 18 "), "{o}");
    for line in [
        "a=rtpmap:99 speex/32000",
        "a=rtpmap:98 speex/16000",
        "a=rtpmap:97 speex/8000",
        "a=rtpmap:3 GSM/8000",
        "a=rtpmap:18 G729/8000",
        "a=fmtp:18 annexb=no",
        "a=rtpmap:103 telephone-event/32000",
        "a=rtpmap:102 telephone-event/16000",
        "a=rtpmap:101 telephone-event/8000",
    ] {
        assert!(o.contains(line), "{line} missing in\n{o}");
    }
}

fn peer_offer(formats: &str, maps: &str) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP {formats}\r\n{maps}a=ptime:20\r\n"
    )
}

#[test]
fn answer_maps_the_peers_dynamic_speex_payload_types_by_clock_rate() {
    // linphone-style numbering: speex/16000 on 96, speex/8000 on 100, and GSM, G.729.
    let offer = peer_offer(
        "96 100 3 18 101",
        "a=rtpmap:96 speex/16000\r\na=fmtp:96 vbr=on\r\na=rtpmap:100 speex/8000\r\n\
         a=rtpmap:3 GSM/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=yes\r\n\
         a=rtpmap:101 telephone-event/8000\r\n",
    );
    let cases = [
        (Codec::SpeexWb, 96, "a=rtpmap:96 speex/16000"),
        (Codec::Speex, 100, "a=rtpmap:100 speex/8000"),
        (Codec::Gsm, 3, "a=rtpmap:3 GSM/8000"),
        (Codec::G729, 18, "a=fmtp:18 annexb=no"),
    ];
    for (codec, pt, line) in cases {
        let prefs = MediaOffer::new(vec![codec, Codec::Pcmu], true);
        let (answer, neg) = sdp::answer_offer(&offer, 7, local(), &prefs).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (codec, pt));
        assert!(answer.contains(line), "{line} missing in\n{answer}");
    }
    // Accept-only by default: the parameters-derived prefs take GSM when it is all there is.
    let gsm_only = peer_offer("3", "");
    let prefs = codec_prefs_from_params("", "", &[]).media_offer(true);
    let (_, neg) = sdp::answer_offer(&gsm_only, 7, local(), &prefs).unwrap();
    assert_eq!(neg.codec, Codec::Gsm);
    // ...but never with use_gsm=0.
    let prefs = codec_prefs_from_params("", "", &[("use_gsm", "0")]).media_offer(true);
    assert!(sdp::answer_offer(&gsm_only, 7, local(), &prefs).is_err());
    // Our offer's answer: the answerer's payload type number for speex is used.
    let ours = MediaOffer::new(vec![Codec::SpeexWb], false);
    let answer = peer_offer("120", "a=rtpmap:120 SPEEX/16000\r\n");
    let neg = sdp::apply_answer(&answer, &ours).unwrap();
    assert_eq!((neg.codec, neg.payload_type), (Codec::SpeexWb, 120));
}
