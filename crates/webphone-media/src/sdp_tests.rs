use super::*;

fn local4() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

/// Shaped like a baresip 1.x offer: opus first, session-level c=, extra attributes.
const BARESIP_OFFER: &str = "v=0
o=- 1495797287 1953456780 IN IP4 192.168.1.10
s=-
c=IN IP4 192.168.1.10
t=0 0
m=audio 10000 RTP/AVP 96 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
a=label:1
a=ssrc:2309912870 cname:3c2b5e5a-ff1e-4b1a-a2d1-1f2e3d4c5b6a
a=rtcp-rsize
";

/// Shaped like a linphone offer: many codecs, telephone-event at three clock rates.
const LINPHONE_OFFER: &str = "v=0
o=alice 1234 5678 IN IP4 10.0.0.2
s=Talk
c=IN IP4 10.0.0.2
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 SILK/16000
a=rtpmap:98 speex/16000
a=fmtp:98 vbr=on
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
";

/// SIPp's default uac scenario body: PCMU only, no telephone-event.
const SIPP_OFFER: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

/// Relayed through Kamailio + rtpengine over IPv6: media-level c=, a=rtcp, odd order.
const KAMAILIO_RTPENGINE_OFFER_V6: &str = "v=0
o=- 3801383466 3801383467 IN IP6 2001:db8::5
s=-
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
c=IN IP6 2001:db8::10
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
a=rtcp:30001
a=ptime:20
";

#[test]
fn baresip_offer_is_answered_with_pcmu_and_telephone_event_101() {
    let (answer, neg) =
        answer_offer(&crlf(BARESIP_OFFER), 42, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.codec, Codec::Pcmu);
    assert_eq!(neg.payload_type, 0);
    assert_eq!(neg.telephone_event_pt, Some(101));
    assert_eq!(
        neg.remote_rtp,
        "192.168.1.10:10000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(neg.direction, Direction::SendRecv);
    assert_eq!(neg.ptime_ms, 20);
    assert!(
        answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    assert!(answer.contains("a=fmtp:101 0-15\r\n"));
    assert!(answer.contains("c=IN IP4 192.0.2.1\r\n"));
    assert!(answer.contains("o=- 42 42 IN IP4 192.0.2.1\r\n"));
    assert!(answer.contains("a=sendrecv\r\n"));
    assert!(!answer.contains("opus"));
}

#[test]
fn linphone_offer_reuses_the_8khz_telephone_event_payload_type() {
    let (answer, neg) = answer_offer(LINPHONE_OFFER, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.codec, Codec::Pcmu);
    assert_eq!(neg.telephone_event_pt, Some(100));
    assert!(
        answer.contains("m=audio 40000 RTP/AVP 0 100\r\n"),
        "{answer}"
    );
    // No fmtp in the offer means events 0-15 (RFC 4733 §7.1.1).
    assert!(answer.contains("a=fmtp:100 0-15\r\n"));
    assert_eq!(
        neg.remote_rtp,
        "10.0.0.2:7078".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn sipp_offer_without_telephone_event_negotiates_pcmu_only() {
    let (answer, neg) = answer_offer(SIPP_OFFER, 7, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(
        (neg.codec, neg.payload_type, neg.telephone_event_pt),
        (Codec::Pcmu, 0, None)
    );
    assert!(answer.contains("m=audio 40000 RTP/AVP 0\r\n"));
    assert!(!answer.contains("telephone-event"));
}

#[test]
fn kamailio_relayed_ipv6_offer_uses_media_level_connection() {
    let local: SocketAddr = "[2001:db8::1]:40002".parse().unwrap();
    let (answer, neg) = answer_offer(
        KAMAILIO_RTPENGINE_OFFER_V6,
        9,
        local,
        &MediaOffer::default(),
    )
    .unwrap();
    assert_eq!(neg.codec, Codec::Pcma);
    assert_eq!(neg.payload_type, 8);
    assert_eq!(neg.telephone_event_pt, Some(101));
    assert_eq!(
        neg.remote_rtp,
        "[2001:db8::10]:30000".parse::<SocketAddr>().unwrap()
    );
    assert!(answer.contains("c=IN IP6 2001:db8::1\r\n"), "{answer}");
    assert!(answer.contains("o=- 9 9 IN IP6 2001:db8::1\r\n"));
    assert!(answer.contains("a=fmtp:101 0-16\r\n"));
}

#[test]
fn our_preference_order_wins_over_the_offer_order() {
    let prefs = MediaOffer::new(vec![Codec::Pcma, Codec::Pcmu], true);
    let (answer, neg) = answer_offer(BARESIP_OFFER, 1, local4(), &prefs).unwrap();
    assert_eq!(neg.codec, Codec::Pcma);
    assert!(answer.contains("m=audio 40000 RTP/AVP 8 101\r\n"));
}

#[test]
fn dynamic_payload_type_for_pcmu_is_reused() {
    let offer = "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\nm=audio 5004 RTP/AVP 112 113\na=rtpmap:112 PCMU/8000\na=rtpmap:113 telephone-event/8000\n";
    let (answer, neg) = answer_offer(offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(
        (neg.codec, neg.payload_type, neg.telephone_event_pt),
        (Codec::Pcmu, 112, Some(113))
    );
    assert!(answer.contains("m=audio 40000 RTP/AVP 112 113\r\n"));
    assert!(answer.contains("a=rtpmap:112 PCMU/8000\r\n"));
}

#[test]
fn static_payload_types_without_rtpmap_are_understood() {
    let offer = "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\nm=audio 5004 RTP/AVP 18 8\n";
    let (_, neg) = answer_offer(offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 8));
}

#[test]
fn rtpmap_that_contradicts_the_static_type_is_not_trusted() {
    // PT 0 remapped to something else (invalid but seen): not PCMU.
    let offer = "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\nm=audio 5004 RTP/AVP 0\na=rtpmap:0 PCMU/16000\n";
    assert_eq!(
        answer_offer(offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn sendonly_offer_is_answered_recvonly_and_vice_versa() {
    for (offered, answered, ours) in [
        ("sendonly", "recvonly", Direction::RecvOnly),
        ("recvonly", "sendonly", Direction::SendOnly),
        ("inactive", "inactive", Direction::Inactive),
        ("sendrecv", "sendrecv", Direction::SendRecv),
    ] {
        let offer = SIPP_OFFER.to_string() + &format!("a={offered}\n");
        let (answer, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
        assert_eq!(neg.direction, ours, "{offered}");
        assert!(
            answer.contains(&format!("a={answered}\r\n")),
            "{offered}: {answer}"
        );
    }
}

#[test]
fn session_level_direction_applies_to_the_stream() {
    let offer = SIPP_OFFER.replace("t=0 0\n", "t=0 0\na=sendonly\n");
    let (_, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.direction, Direction::RecvOnly);
}

#[test]
fn our_hold_preference_limits_the_answer_direction() {
    let prefs = MediaOffer::default().with_direction(Direction::SendOnly);
    let (answer, neg) = answer_offer(SIPP_OFFER, 1, local4(), &prefs).unwrap();
    assert_eq!(neg.direction, Direction::SendOnly);
    assert!(answer.contains("a=sendonly\r\n"));
}

#[test]
fn rfc2543_hold_with_zero_address_means_we_do_not_send() {
    let offer = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (answer, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.direction, Direction::RecvOnly);
    assert!(answer.contains("a=recvonly\r\n"));
}

#[test]
fn video_and_second_audio_streams_are_rejected_with_port_zero() {
    let offer = SIPP_OFFER.to_string()
        + "m=video 6002 RTP/AVP 96\na=rtpmap:96 H264/90000\nm=audio 6004 RTP/AVP 8\n";
    let (answer, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.remote_rtp.port(), 6000);
    let mlines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        mlines,
        vec![
            "m=audio 40000 RTP/AVP 0",
            "m=video 0 RTP/AVP 96",
            "m=audio 0 RTP/AVP 8"
        ]
    );
}

#[test]
fn first_audio_stream_without_common_codec_is_skipped_for_the_next() {
    let offer = "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\nm=audio 5004 RTP/AVP 18\nm=audio 5006 RTP/AVP 8\n";
    let (answer, neg) = answer_offer(offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.remote_rtp.port(), 5006);
    let mlines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        mlines,
        vec!["m=audio 0 RTP/AVP 18", "m=audio 40000 RTP/AVP 8"]
    );
}

#[test]
fn offer_without_common_codec_is_no_common_codec() {
    let offer = SIPP_OFFER
        .replace("RTP/AVP 0", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    assert_eq!(
        answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn srtp_only_offer_is_no_common_codec() {
    let offer = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n";
    assert_eq!(
        answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn video_only_offer_is_no_audio() {
    let offer = "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\nm=video 5004 RTP/AVP 96\n";
    assert_eq!(
        answer_offer(offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::NoAudio
    );
}

#[test]
fn telephone_event_is_left_out_when_we_do_not_want_it() {
    let prefs = MediaOffer::new(vec![Codec::Pcmu], false);
    let (answer, neg) = answer_offer(BARESIP_OFFER, 1, local4(), &prefs).unwrap();
    assert_eq!(neg.telephone_event_pt, None);
    assert!(!answer.contains("telephone-event"));
}

#[test]
fn telephone_event_without_dtmf_events_is_left_out() {
    let offer = BARESIP_OFFER.replace("a=fmtp:101 0-15", "a=fmtp:101 32-40");
    let (answer, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.telephone_event_pt, None);
    assert!(!answer.contains("telephone-event"));
}

#[test]
fn event_list_intersection_is_formatted_compactly() {
    let set = parse_event_list("0-11, 14,16,70-80,255");
    assert_eq!(format_supported_events(&set), "0-11,14,16");
    assert_eq!(format_supported_events(&parse_event_list("junk,-,5-")), "");
}

#[test]
fn offer_lists_our_codecs_telephone_event_and_ptime() {
    let offer = create_offer(11, 12, local4(), &MediaOffer::default());
    assert_eq!(
        offer,
        "v=0\r\no=- 11 12 IN IP4 192.0.2.1\r\ns=webphone\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

#[test]
fn ipv6_offer_and_hold_offer_are_well_formed() {
    let local: SocketAddr = "[::1]:40000".parse().unwrap();
    let prefs = MediaOffer::new(vec![Codec::Pcma], false).with_direction(Direction::SendOnly);
    let offer = create_offer(1, 2, local, &prefs);
    assert!(offer.contains("c=IN IP6 ::1\r\n"));
    assert!(offer.contains("m=audio 40000 RTP/AVP 8\r\n"));
    assert!(offer.contains("a=sendonly\r\n"));
    let parsed = parse(&offer).unwrap();
    assert_eq!(parsed.media.len(), 1);
}

#[test]
fn our_own_offer_answered_by_ourselves_round_trips() {
    let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let prefs = MediaOffer::default();
    let offer = create_offer(1, 1, a, &prefs);
    let (answer, neg_b) = answer_offer(&offer, 2, b, &prefs).unwrap();
    assert_eq!(neg_b.remote_rtp, a);
    let neg_a = apply_answer(&answer, &prefs).unwrap();
    assert_eq!(neg_a.remote_rtp, b);
    assert_eq!(
        (neg_a.codec, neg_a.payload_type, neg_a.telephone_event_pt),
        (Codec::Pcmu, 0, Some(101))
    );
    assert_eq!(neg_a.direction, Direction::SendRecv);
}

#[test]
fn empty_codec_list_still_produces_a_valid_offer() {
    let offer = create_offer(1, 1, local4(), &MediaOffer::new(vec![], false));
    assert!(offer.contains("m=audio 40000 RTP/AVP 0 8\r\n"));
}

#[test]
fn answer_with_port_zero_is_rejected() {
    let answer = SIPP_OFFER.replace("m=audio 6000", "m=audio 0");
    assert_eq!(
        apply_answer(&answer, &MediaOffer::default()).unwrap_err(),
        SdpError::Rejected
    );
}

#[test]
fn answer_picks_its_first_supported_codec_and_reverses_direction() {
    let answer = "v=0\no=peer 5 6 IN IP4 203.0.113.9\ns=-\nt=0 0\nm=audio 20000 RTP/AVP 8 0 101\nc=IN IP4 203.0.113.9\na=rtpmap:101 telephone-event/8000\na=recvonly\n";
    let neg = apply_answer(answer, &MediaOffer::default()).unwrap();
    assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 8));
    assert_eq!(neg.telephone_event_pt, Some(101));
    assert_eq!(neg.direction, Direction::SendOnly);
    assert_eq!(
        neg.remote_rtp,
        "203.0.113.9:20000".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn answer_with_a_codec_we_did_not_offer_is_no_common_codec() {
    let answer = SIPP_OFFER
        .replace("RTP/AVP 0", "RTP/AVP 9")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000");
    assert_eq!(
        apply_answer(&answer, &MediaOffer::default()).unwrap_err(),
        SdpError::NoCommonCodec
    );
    let only_pcma = MediaOffer::new(vec![Codec::Pcma], true);
    assert_eq!(
        apply_answer(SIPP_OFFER, &only_pcma).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn missing_connection_line_is_an_error() {
    let offer = SIPP_OFFER.replace("c=IN IP4 127.0.0.1\n", "");
    assert_eq!(
        answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::Missing("c=")
    );
    assert_eq!(
        apply_answer(&offer, &MediaOffer::default()).unwrap_err(),
        SdpError::Missing("c=")
    );
}

#[test]
fn fqdn_connection_address_is_unsupported() {
    let offer = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 media.example.com");
    assert_eq!(
        answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap_err(),
        SdpError::UnsupportedAddress("media.example.com".into())
    );
}

#[test]
fn multicast_ttl_suffix_is_stripped() {
    let offer = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 233.252.0.1/127");
    let (_, neg) = answer_offer(&offer, 1, local4(), &MediaOffer::default()).unwrap();
    assert_eq!(neg.remote_rtp.ip().to_string(), "233.252.0.1");
}

#[test]
fn hostile_sdp_gives_errors_not_panics() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("garbage".into(), "garbage"),
        ("\u{0}\u{1}\u{2}".into(), "control bytes"),
        ("o=- 1 1 IN IP4 1.2.3.4\nv=0\n".into(), "v= not first"),
        ("v=1\n".into(), "version 1"),
        ("v=0\ns=-\nm=audio 1 RTP/AVP 0\n".into(), "no o="),
        (
            SIPP_OFFER.replace("m=audio 6000", "m=audio 70000"),
            "port too large",
        ),
        (
            SIPP_OFFER.replace("m=audio 6000", "m=audio -1"),
            "negative port",
        ),
        (
            SIPP_OFFER.replace("m=audio 6000", "m=audio 99999999999999999999"),
            "huge port",
        ),
        (
            SIPP_OFFER.replace("m=audio 6000 RTP/AVP 0", "m=audio 6000"),
            "short m=",
        ),
        (
            SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 300"),
            "payload type 300",
        ),
        (
            SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP x"),
            "payload type x",
        ),
        (
            SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0"),
            "rtpmap w/o encoding",
        ),
        (
            SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/0"),
            "zero clock",
        ),
        (
            SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/99999999999"),
            "huge clock",
        ),
        (
            SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:999 PCMU/8000"),
            "rtpmap pt 999",
        ),
        (
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4"),
            "short c=",
        ),
        (
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=ATM NSAP 47.0005"),
            "nettype ATM",
        ),
        (
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 ::1"),
            "family mismatch",
        ),
        (
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP9 127.0.0.1"),
            "addrtype IP9",
        ),
        (
            SIPP_OFFER.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1", "o=x"),
            "short o=",
        ),
        (SIPP_OFFER.to_string() + "this is not sdp\n", "junk line"),
        (SIPP_OFFER.to_string() + "=x\n", "no type"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\n".into(), "no m="),
        ("v=0\n".repeat(20000), "too large"),
        (
            SIPP_OFFER.to_string() + &"m=audio 1 RTP/AVP 0\n".repeat(40),
            "too many m=",
        ),
    ];
    for (sdp, what) in &cases {
        let r = answer_offer(sdp, 1, local4(), &MediaOffer::default());
        assert!(r.is_err(), "{what}: accepted");
        let r = apply_answer(sdp, &MediaOffer::default());
        assert!(r.is_err(), "{what}: accepted as answer");
    }
}

#[test]
fn mutated_real_offers_never_panic() {
    // Deterministic pseudo-fuzz: flip, delete and duplicate bytes of real offers.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"v=om cat/:0123456789 \r\n-IP4IP6RTP/AVP.rtpmapfmtp";
    for base in [
        BARESIP_OFFER,
        LINPHONE_OFFER,
        SIPP_OFFER,
        KAMAILIO_RTPENGINE_OFFER_V6,
    ] {
        for _ in 0..400 {
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..(next() % 8 + 1) {
                let pos = (next() as usize) % bytes.len().max(1);
                match next() % 3 {
                    0 => bytes[pos] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        bytes.remove(pos);
                    }
                    _ => {
                        let b = bytes[pos];
                        bytes.insert(pos, b);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let s = String::from_utf8_lossy(&bytes);
            let _ = answer_offer(&s, 1, local4(), &MediaOffer::default());
            let _ = apply_answer(&s, &MediaOffer::default());
        }
    }
}

#[test]
fn lf_only_and_trailing_whitespace_are_tolerated() {
    let offer = SIPP_OFFER.replace('\n', "  \n");
    assert!(answer_offer(&offer, 1, local4(), &MediaOffer::default()).is_ok());
}

#[test]
fn answer_version_is_taken_from_the_caller() {
    let (answer, _) =
        answer_offer_with_version(SIPP_OFFER, 77, 79, local4(), &MediaOffer::default()).unwrap();
    assert!(answer.contains("o=- 77 79 IN IP4 192.0.2.1\r\n"));
}

// ---- telephone-event at the codec's RTP clock (RFC 4733 §2.1, §7.1.1) ----

#[test]
fn opus_offer_lists_telephone_event_at_48000_and_8000() {
    let prefs = MediaOffer::new(vec![Codec::Opus, Codec::G722, Codec::Pcmu], true);
    let offer = create_offer(1, 1, local4(), &prefs);
    assert!(
        offer.contains("m=audio 40000 RTP/AVP 111 9 0 110 101\r\n"),
        "{offer}"
    );
    assert!(offer.contains("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n"));
    assert!(offer.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
    // G.722 runs on the 8000 Hz RTP clock: no telephone-event/16000.
    assert!(!offer.contains("telephone-event/16000"));
    // An 8 kHz-only offer is unchanged: one telephone-event/8000.
    let g711 = create_offer(1, 1, local4(), &MediaOffer::default());
    assert_eq!(g711.matches("telephone-event").count(), 1);
    // Opus alone still offers telephone-event/8000 for peers that know only that one.
    let opus = create_offer(1, 1, local4(), &MediaOffer::new(vec![Codec::Opus], true));
    assert!(
        opus.contains("m=audio 40000 RTP/AVP 111 110 101\r\n"),
        "{opus}"
    );
}

#[test]
fn answer_to_our_opus_offer_picks_the_48khz_telephone_event() {
    let prefs = MediaOffer::new(vec![Codec::Opus, Codec::Pcmu], true);
    let offer = create_offer(1, 1, local4(), &prefs);
    let (answer, neg_b) =
        answer_offer(&offer, 2, "192.0.2.2:50000".parse().unwrap(), &prefs).unwrap();
    assert_eq!(
        (neg_b.codec, neg_b.telephone_event_pt),
        (Codec::Opus, Some(110))
    );
    assert_eq!(neg_b.telephone_event_clock(), 48_000);
    assert!(answer.contains("a=rtpmap:110 telephone-event/48000\r\n"));
    assert!(!answer.contains("telephone-event/8000"));
    let neg_a = apply_answer(&answer, &prefs).unwrap();
    assert_eq!(
        (neg_a.codec, neg_a.telephone_event_pt),
        (Codec::Opus, Some(110))
    );
}

#[test]
fn answer_with_g711_or_g722_picks_the_8khz_telephone_event() {
    for codec in [Codec::Pcmu, Codec::G722] {
        let offer_prefs = MediaOffer::new(vec![Codec::Opus, codec], true);
        let offer = create_offer(1, 1, local4(), &offer_prefs);
        let ours = MediaOffer::new(vec![codec], true);
        let (answer, neg) =
            answer_offer(&offer, 2, "192.0.2.2:50000".parse().unwrap(), &ours).unwrap();
        assert_eq!((neg.codec, neg.telephone_event_pt), (codec, Some(101)));
        assert_eq!(neg.telephone_event_clock(), 8000);
        assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(!answer.contains("telephone-event/48000"));
        let back = apply_answer(&answer, &offer_prefs).unwrap();
        assert_eq!((back.codec, back.telephone_event_pt), (codec, Some(101)));
    }
}

#[test]
fn linphone_opus_offer_uses_its_48khz_telephone_event() {
    let prefs = MediaOffer::new(vec![Codec::Opus, Codec::Pcmu], true);
    let (answer, neg) = answer_offer(&crlf(LINPHONE_OFFER), 9, local4(), &prefs).unwrap();
    assert_eq!(
        (neg.codec, neg.payload_type, neg.telephone_event_pt),
        (Codec::Opus, 96, Some(101))
    );
    assert!(answer.contains("a=rtpmap:101 telephone-event/48000\r\n"));
}

#[test]
fn opus_with_only_an_8khz_telephone_event_falls_back_to_it() {
    // baresip 1.x offers Opus with telephone-event/8000 only.
    let prefs = MediaOffer::new(vec![Codec::Opus], true);
    let (answer, neg) = answer_offer(&crlf(BARESIP_OFFER), 9, local4(), &prefs).unwrap();
    assert_eq!(
        (neg.codec, neg.telephone_event_pt),
        (Codec::Opus, Some(101))
    );
    assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
}

#[test]
fn audio_bandwidth_is_announced_as_b_as_and_caps_opus() {
    let prefs = MediaOffer::new(vec![Codec::Opus, Codec::Pcmu], true).with_bandwidth(24);
    assert_eq!(prefs.bandwidth_kbps, Some(24));
    // 24 kbit/s less 16 kbit/s of headers
    assert_eq!(prefs.opus.bitrate, Some(8_000));
    let offer = create_offer(1, 1, local4(), &prefs);
    let lines: Vec<&str> = offer.lines().collect();
    let m = lines.iter().position(|l| l.starts_with("m=audio")).unwrap();
    assert_eq!(lines[m + 1], "b=AS:24", "b= right after m=: {offer}");
    let (answer, _) = answer_offer(&crlf(BARESIP_OFFER), 7, local4(), &prefs).unwrap();
    assert!(answer.contains("\r\nb=AS:24\r\n"), "{answer}");
    // Without a limit: no b= line, the Opus default stays.
    let free = MediaOffer::new(vec![Codec::Opus], true).with_bandwidth(0);
    assert!(!create_offer(1, 1, local4(), &free).contains("b=AS"));
    assert_eq!(free.opus.bitrate, crate::OpusConfig::default().bitrate);
    // A generous limit never raises the bit rate; a tiny one keeps Opus' floor.
    assert_eq!(
        MediaOffer::new(vec![Codec::Opus], true)
            .with_bandwidth(200)
            .opus
            .bitrate,
        Some(32_000)
    );
    assert_eq!(
        MediaOffer::new(vec![Codec::Opus], true)
            .with_bandwidth(8)
            .opus
            .bitrate,
        Some(6_000)
    );
}

fn offer_with_ptime(ptime: Option<u32>) -> String {
    let line = ptime.map(|p| format!("a=ptime:{p}\n")).unwrap_or_default();
    crlf(&format!(
        "v=0\no=- 1 1 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n\
         m=audio 5000 RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n\
         {line}a=sendrecv\n"
    ))
}

#[test]
fn we_send_the_ptime_the_peer_asks_for_in_whole_20ms_steps() {
    let ours = MediaOffer::default();
    let sent = |p: Option<u32>, prefs: &MediaOffer| {
        answer_offer(&offer_with_ptime(p), 1, local4(), prefs)
            .unwrap()
            .1
            .ptime_ms
    };
    assert_eq!(sent(None, &ours), 20);
    assert_eq!(sent(Some(40), &ours), 40);
    assert_eq!(
        sent(Some(30), &ours),
        20,
        "rounded down: never longer than asked"
    );
    assert_eq!(sent(Some(10), &ours), 20, "20 ms is our shortest");
    assert_eq!(sent(Some(200), &ours), 120);
    // Without a peer preference, ours applies, and our a=ptime says it.
    let long = MediaOffer::default().with_ptime(60);
    assert_eq!(sent(None, &long), 60);
    assert_eq!(
        sent(Some(40), &long),
        40,
        "a preference gives way to the peer's"
    );
    // A configured frame count is sent whatever the peer asks.
    let fixed = MediaOffer::default().with_codecframecount(3);
    assert_eq!(fixed.ptime_ms, 60);
    assert_eq!(sent(Some(20), &fixed), 60);
    let g729 = MediaOffer::new(vec![Codec::G729, Codec::Pcmu], true).with_codecframecount(4);
    assert_eq!(g729.ptime_ms, 40, "4 G.729 frames of 10 ms");
    assert_eq!(MediaOffer::default().with_codecframecount(0).ptime_ms, 20);
    let (answer, _) = answer_offer(&offer_with_ptime(Some(40)), 1, local4(), &long).unwrap();
    assert!(answer.contains("a=ptime:60\r\n"), "{answer}");
    assert!(create_offer(1, 1, local4(), &long).contains("a=ptime:60\r\n"));
    assert_eq!(MediaOffer::default().with_ptime(50).ptime_ms, 40);
}

const OPUS_LIMITED_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
b=AS:64\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111 0\r\nb=AS:40\r\nb=TIAS:32000\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 maxaveragebitrate=20000; maxplaybackrate=16000\r\n\
a=rtpmap:0 PCMU/8000\r\n";

#[test]
fn peer_bandwidth_and_opus_limits_come_with_the_negotiation() {
    // Offer and answer alike: b=AS (media level below the session's) and the Opus fmtp.
    let want = SendLimits {
        bandwidth_kbps: Some(40),
        opus_max_average_bitrate: Some(20_000),
        opus_max_playback_rate: Some(16_000),
    };
    let prefs = MediaOffer::new(vec![Codec::Opus, Codec::Pcmu], true);
    let (_, neg) = answer_offer(OPUS_LIMITED_OFFER, 1, local4(), &prefs).unwrap();
    assert_eq!(neg.codec, Codec::Opus);
    assert_eq!(neg.send_limits, want);
    assert_eq!(
        apply_answer(OPUS_LIMITED_OFFER, &prefs)
            .unwrap()
            .send_limits,
        want
    );
    // PCMU chosen: the Opus fmtp says nothing about it.
    let pcmu = MediaOffer::new(vec![Codec::Pcmu], true);
    let (_, neg) = answer_offer(OPUS_LIMITED_OFFER, 1, local4(), &pcmu).unwrap();
    assert_eq!(
        neg.send_limits,
        SendLimits {
            bandwidth_kbps: Some(40),
            ..SendLimits::default()
        }
    );
    // Only a session-level b=AS: it applies; a bad value or another type is ignored.
    let session_only = OPUS_LIMITED_OFFER.replace("b=AS:40\r\n", "b=AS:fast\r\n");
    let d = parse(&session_only).unwrap();
    assert_eq!(d.media[0].bandwidth_as, None);
    assert_eq!(d.bandwidth_of(&d.media[0]), Some(64));
    let none = OPUS_LIMITED_OFFER
        .replace("b=AS:64\r\n", "")
        .replace("b=AS:40\r\n", "");
    let (_, neg) = answer_offer(&none, 1, local4(), &pcmu).unwrap();
    assert_eq!(neg.send_limits, SendLimits::default());
}

#[test]
fn opus_bitrate_cap_takes_the_headers_of_the_packet_rate_off() {
    let by_as = |k| SendLimits {
        bandwidth_kbps: Some(k),
        ..SendLimits::default()
    };
    assert_eq!(SendLimits::default().opus_bitrate_cap(20), None);
    // 40 header bytes 50 times a second at 20 ms, 16.7 times at 60 ms.
    assert_eq!(by_as(32).opus_bitrate_cap(20), Some(16_000));
    assert_eq!(by_as(32).opus_bitrate_cap(60), Some(32_000 - 40 * 8 * 16));
    assert_eq!(
        by_as(10).opus_bitrate_cap(20),
        Some(6_000),
        "the Opus floor"
    );
    let both = SendLimits {
        bandwidth_kbps: Some(64),
        opus_max_average_bitrate: Some(12_000),
        opus_max_playback_rate: None,
    };
    assert_eq!(both.opus_bitrate_cap(20), Some(12_000));
}

/// An offer of PCMU, GSM and G.729 (in that order) with a media-level `b=AS` of `kbps`.
fn offer_with_bandwidth(kbps: Option<u32>) -> String {
    let b = kbps.map(|k| format!("b=AS:{k}\r\n")).unwrap_or_default();
    format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0 3 18\r\n{b}a=rtpmap:0 PCMU/8000\r\na=rtpmap:3 GSM/8000\r\n\
         a=rtpmap:18 G729/8000\r\n"
    )
}

#[test]
fn offerers_bandwidth_picks_the_first_preferred_codec_that_fits() {
    // PCMU needs 64 + 16 kbit/s of headers at 20 ms, GSM 13.2 + 16, G.729 8 + 16.
    let prefs = MediaOffer::new(vec![Codec::Pcmu, Codec::Gsm, Codec::G729], true);
    let codec = |kbps| {
        answer_offer(&offer_with_bandwidth(kbps), 1, local4(), &prefs)
            .unwrap()
            .1
            .codec
    };
    assert_eq!(codec(None), Codec::Pcmu, "no b=AS: our first choice");
    assert_eq!(codec(Some(80)), Codec::Pcmu, "exactly fits");
    assert_eq!(codec(Some(79)), Codec::Gsm);
    assert_eq!(codec(Some(30)), Codec::Gsm);
    assert_eq!(codec(Some(25)), Codec::G729);
    assert_eq!(
        codec(Some(10)),
        Codec::G729,
        "none fits: the one that needs least"
    );
    assert_eq!(
        codec(Some(0)),
        Codec::Pcmu,
        "b=AS:0 is no limit to choose by"
    );
    // The answer names the chosen codec only.
    let (answer, _) = answer_offer(&offer_with_bandwidth(Some(30)), 1, local4(), &prefs).unwrap();
    assert!(answer.contains("m=audio 40000 RTP/AVP 3"), "{answer}");
    // Longer packets carry fewer headers: at 60 ms PCMU needs 64 + 5.3 kbit/s.
    let long = MediaOffer::new(vec![Codec::Pcmu, Codec::Gsm], true).with_ptime(60);
    let (_, neg) = answer_offer(&offer_with_bandwidth(Some(70)), 1, local4(), &long).unwrap();
    assert_eq!(neg.codec, Codec::Pcmu);
}
