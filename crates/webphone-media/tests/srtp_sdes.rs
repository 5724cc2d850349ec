//! SDES (RFC 4568) attribute handling, offer/answer under each `SrtpPolicy`, and SRTP/SRTCP
//! protection checked against RFC 3711 Appendix B.3 and an independent computation.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use hmac::Mac;
use webphone_media::sdp::{self, answer_offer, apply_answer, create_offer};
use webphone_media::sdp_crypto::{
    format_crypto, parse_crypto, CryptoError, CryptoSuite, MasterKey, SdesKeys, SrtpPolicy,
};
use webphone_media::srtp::SrtpSession;
use webphone_media::{rtp, MediaOffer, SdpError, SrtpParams};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn local() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn plain_offer(proto: &str, crypto: &[&str]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
         m=audio 30000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    for c in crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

const KEY30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

// ---------- a=crypto parsing ----------

#[test]
fn crypto_attribute_of_rfc4568_example_parses() {
    // RFC 4568 §4 example key (30 bytes) with a lifetime.
    let c = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20")).unwrap();
    assert_eq!(c.tag, 1);
    assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(c.key.as_bytes().len(), 30);
    assert_eq!(c.lifetime, Some(1 << 20));
    // Round trip through our writer.
    assert_eq!(
        c.to_value(),
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")
    );
    // Decimal lifetime; GCM key with its 28-byte key||salt, unpadded base64 accepted.
    let c = parse_crypto(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}|1048576")).unwrap();
    assert_eq!(c.lifetime, Some(1_048_576));
    let gcm = MasterKey::from_bytes(vec![7u8; 28]);
    let v = format_crypto(3, CryptoSuite::AeadAes128Gcm, &gcm);
    assert!(v.ends_with("=="), "{v}");
    let c = parse_crypto(v.trim_end_matches('=')).unwrap();
    assert_eq!(c.suite, CryptoSuite::AeadAes128Gcm);
    assert_eq!(c.key, gcm);
}

#[test]
fn hostile_or_unsupported_crypto_attributes_are_errors_not_panics() {
    let long = "A".repeat(5000);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "syntax"),
        ("   ".into(), "syntax"),
        (
            "x AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30,
            "syntax",
        ),
        (
            "1234567890 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30,
            "syntax",
        ),
        ("1".into(), "syntax"),
        ("1 AES_CM_128_HMAC_SHA1_80".into(), "syntax"),
        ("1 F8_128_HMAC_SHA1_80 inline:".to_string() + KEY30, "suite"),
        (
            "1 aes_cm_128_hmac_sha1_80 inline:".to_string() + KEY30,
            "suite",
        ),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:".into(), "key"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(), "key"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(), "key"),
        ("1 AEAD_AES_128_GCM inline:".to_string() + KEY30, "key"), // 30 bytes, GCM needs 28
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + "|2^20|1:4",
            "unsupported",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + ";inline:" + KEY30,
            "unsupported",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + " UNENCRYPTED_SRTP",
            "unsupported",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 uri:".to_string() + KEY30,
            "unsupported",
        ),
        ("1 AES_CM_128_HMAC_SHA1_80 ".to_string() + KEY30, "syntax"),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + "|2^99",
            "syntax",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + "|2^x",
            "syntax",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + "|",
            "syntax",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + KEY30 + "|5|6",
            "syntax",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".to_string() + &long,
            "syntax",
        ),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:ĀĀĀĀĀĀĀĀĀĀĀ".into(), "key"),
    ];
    for (v, kind) in &cases {
        let err = parse_crypto(v).unwrap_err();
        let ok = match *kind {
            "syntax" => matches!(err, CryptoError::Syntax(_)),
            "suite" => matches!(err, CryptoError::UnknownSuite(_)),
            "key" => matches!(err, CryptoError::BadKey(_)),
            _ => matches!(err, CryptoError::Unsupported(_)),
        };
        assert!(ok, "{v:?}: expected {kind}, got {err:?}");
    }
    // Random bytes never panic.
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let s: String = (0..(x % 90))
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                char::from(b" 0123456789|:;^=+/AEGHIMSC_inle"[(x >> 16) as usize % 31])
            })
            .collect();
        let _ = parse_crypto(&s);
    }
}

#[test]
fn keys_never_appear_in_debug_output() {
    let keys = SdesKeys::generate();
    let dbg = format!("{keys:?}");
    for (_, _, k) in keys.entries() {
        assert!(!dbg.contains(&k.to_base64()));
    }
    let p = SrtpParams {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        local: MasterKey::from_bytes(vec![0xAB; 30]),
        remote: MasterKey::from_bytes(vec![0xCD; 30]),
    };
    let dbg = format!("{p:?} {:?}", p.local);
    assert!(
        !dbg.contains("171") && !dbg.to_lowercase().contains("abab"),
        "{dbg}"
    );
}

#[test]
fn generated_keys_are_random_per_call_and_sized_per_suite() {
    let a = SdesKeys::generate();
    let b = SdesKeys::generate();
    let ea: Vec<_> = a.entries().collect();
    let eb: Vec<_> = b.entries().collect();
    assert_eq!(ea.len(), 3);
    for ((ta, sa, ka), (_, _, kb)) in ea.iter().zip(&eb) {
        assert_eq!(ka.as_bytes().len(), sa.key_salt_len(), "tag {ta}");
        assert_ne!(ka, kb);
    }
    // Distinct keys per suite within one offer (RFC 4568 §6.1).
    assert_ne!(ea[0].2, ea[1].2);
}

// ---------- offer / answer ----------

#[test]
fn required_offer_uses_savp_with_one_crypto_line_per_suite() {
    let prefs = MediaOffer::default().with_srtp(SrtpPolicy::Required);
    let offer = create_offer(1, 1, local(), &prefs);
    assert!(offer.contains("m=audio 40000 RTP/SAVP "), "{offer}");
    let d = sdp::parse(&offer).unwrap();
    let tags: Vec<(u32, CryptoSuite)> = d.media[0]
        .crypto
        .iter()
        .map(|c| {
            let c = parse_crypto(c).unwrap();
            (c.tag, c.suite)
        })
        .collect();
    assert_eq!(
        tags,
        vec![
            (1, CryptoSuite::AesCm128HmacSha1_80),
            (2, CryptoSuite::AesCm128HmacSha1_32),
            (3, CryptoSuite::AeadAes128Gcm)
        ]
    );
}

#[test]
fn optional_offer_is_rtp_avp_with_crypto_and_off_offer_has_none() {
    let offer = create_offer(
        1,
        1,
        local(),
        &MediaOffer::default().with_srtp(SrtpPolicy::Optional),
    );
    assert!(
        offer.contains("RTP/AVP ") && offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
    );
    let offer = create_offer(1, 1, local(), &MediaOffer::default());
    assert!(offer.contains("RTP/AVP ") && !offer.contains("crypto"));
}

#[test]
fn savp_offer_is_answered_with_the_first_usable_suite_and_our_own_key() {
    let bad = "1 F8_128_HMAC_SHA1_80 inline:".to_string() + KEY30;
    let good = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}");
    let later = format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}");
    let offer = plain_offer("RTP/SAVP", &[&bad, &good, &later]);
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
        let prefs = MediaOffer::default().with_srtp(policy);
        let (answer, neg) = answer_offer(&offer, 5, local(), &prefs).unwrap();
        assert!(answer.contains("m=audio 40000 RTP/SAVP 0 101"), "{answer}");
        let d = sdp::parse(&answer).unwrap();
        assert_eq!(d.media[0].crypto.len(), 1);
        let ours = parse_crypto(&d.media[0].crypto[0]).unwrap();
        assert_eq!(
            (ours.tag, ours.suite),
            (2, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert!(neg.is_encrypted());
        let srtp = neg.srtp.expect("encrypted");
        assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(srtp.local, ours.key);
        assert_ne!(srtp.local.to_base64(), KEY30);
        assert_eq!(srtp.remote.to_base64(), KEY30);
    }
}

#[test]
fn policy_decides_what_unencrypted_or_encrypted_offers_get() {
    let key = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}");
    let savp = plain_offer("RTP/SAVP", &[&key]);
    let osrtp = plain_offer("RTP/AVP", &[&key]);
    let plain = plain_offer("RTP/AVP", &[]);
    let savp_nocrypto = plain_offer("RTP/SAVP", &[]);
    let off = MediaOffer::default();
    let opt = MediaOffer::default().with_srtp(SrtpPolicy::Optional);
    let req = MediaOffer::default().with_srtp(SrtpPolicy::Required);

    // Off: SAVP cannot be answered (488), crypto in AVP is ignored.
    assert_eq!(
        answer_offer(&savp, 1, local(), &off).unwrap_err(),
        SdpError::NoCommonCodec
    );
    let (a, n) = answer_offer(&osrtp, 1, local(), &off).unwrap();
    assert!(!a.contains("crypto") && n.srtp.is_none());
    // Optional: opportunistic offer gets encrypted media in RTP/AVP; plain stays plain.
    let (a, n) = answer_offer(&osrtp, 1, local(), &opt).unwrap();
    assert!(a.contains("RTP/AVP 0") && a.contains("a=crypto:1 ") && n.srtp.is_some());
    let (a, n) = answer_offer(&plain, 1, local(), &opt).unwrap();
    assert!(!a.contains("crypto") && n.srtp.is_none());
    assert_eq!(
        answer_offer(&savp_nocrypto, 1, local(), &opt).unwrap_err(),
        SdpError::NoCommonCodec
    );
    // Required: only encrypted offers.
    assert_eq!(
        answer_offer(&plain, 1, local(), &req).unwrap_err(),
        SdpError::NoCommonCodec
    );
    assert!(answer_offer(&osrtp, 1, local(), &req)
        .unwrap()
        .1
        .srtp
        .is_some());
    assert!(answer_offer(&savp, 1, local(), &req)
        .unwrap()
        .1
        .srtp
        .is_some());
}

#[test]
fn both_sides_of_an_sdes_exchange_agree_on_keys() {
    let a_prefs = MediaOffer::default().with_srtp(SrtpPolicy::Required);
    let b_prefs = MediaOffer::default().with_srtp(SrtpPolicy::Optional);
    let offer = create_offer(1, 1, "192.0.2.1:40000".parse().unwrap(), &a_prefs);
    let (answer, b_neg) =
        answer_offer(&offer, 2, "192.0.2.2:50000".parse().unwrap(), &b_prefs).unwrap();
    let a_neg = apply_answer(&answer, &a_prefs).unwrap();
    let (a, b) = (a_neg.srtp.unwrap(), b_neg.srtp.unwrap());
    assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(a.suite, b.suite);
    assert_eq!(a.local, b.remote);
    assert_eq!(a.remote, b.local);
    assert_ne!(a.local, a.remote);
}

#[test]
fn answers_that_do_not_fit_our_offer_are_refused() {
    let prefs = MediaOffer::default().with_srtp(SrtpPolicy::Required);
    let ans = |proto: &str, crypto: &[&str]| plain_offer(proto, crypto);
    let k = |tag: u32, suite: &str| format!("{tag} {suite} inline:{KEY30}");
    // No crypto at all.
    assert!(matches!(
        apply_answer(&ans("RTP/SAVP", &[]), &prefs),
        Err(SdpError::Crypto(_))
    ));
    assert!(matches!(
        apply_answer(&ans("RTP/AVP", &[]), &prefs),
        Err(SdpError::Crypto(_))
    ));
    // A tag we never offered; a tag whose suite changed.
    assert!(matches!(
        apply_answer(
            &ans("RTP/SAVP", &[&k(9, "AES_CM_128_HMAC_SHA1_80")]),
            &prefs
        ),
        Err(SdpError::Crypto(_))
    ));
    assert!(matches!(
        apply_answer(
            &ans("RTP/SAVP", &[&k(1, "AES_CM_128_HMAC_SHA1_32")]),
            &prefs
        ),
        Err(SdpError::Crypto(_))
    ));
    // The right tag and suite works.
    let n = apply_answer(
        &ans("RTP/SAVP", &[&k(2, "AES_CM_128_HMAC_SHA1_32")]),
        &prefs,
    )
    .unwrap();
    assert_eq!(n.srtp.unwrap().suite, CryptoSuite::AesCm128HmacSha1_32);
    // Optional: a plain RTP/AVP answer means unencrypted media; Off refuses SAVP answers.
    let opt = MediaOffer::default().with_srtp(SrtpPolicy::Optional);
    assert!(apply_answer(&ans("RTP/AVP", &[]), &opt)
        .unwrap()
        .srtp
        .is_none());
    assert!(matches!(
        apply_answer(
            &ans("RTP/SAVP", &[&k(1, "AES_CM_128_HMAC_SHA1_80")]),
            &MediaOffer::default()
        ),
        Err(SdpError::Crypto(_))
    ));
}

#[test]
fn rtcp_mux_is_accepted_when_offered() {
    let mut offer = plain_offer("RTP/AVP", &[]);
    offer.push_str("a=rtcp-mux\r\n");
    let (answer, neg) = answer_offer(&offer, 1, local(), &MediaOffer::default()).unwrap();
    assert!(answer.contains("a=rtcp-mux") && neg.rtcp_mux);
    let (answer, neg) = answer_offer(
        &plain_offer("RTP/AVP", &[]),
        1,
        local(),
        &MediaOffer::default(),
    )
    .unwrap();
    assert!(!answer.contains("a=rtcp-mux") && !neg.rtcp_mux);
}

// ---------- protection ----------

fn pair(suite: CryptoSuite) -> (SrtpSession, SrtpSession) {
    let ka = MasterKey::random(suite);
    let kb = MasterKey::random(suite);
    let a = SrtpParams {
        suite,
        local: ka.clone(),
        remote: kb.clone(),
    };
    let b = SrtpParams {
        suite,
        local: kb,
        remote: ka,
    };
    (SrtpSession::new(&a).unwrap(), SrtpSession::new(&b).unwrap())
}

#[test]
fn protect_unprotect_round_trip_for_every_suite_including_rollover() {
    for suite in CryptoSuite::ALL {
        let (mut a, mut b) = pair(suite);
        let tag = match suite {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
            CryptoSuite::AeadAes128Gcm => 16,
        };
        for i in 0..300u32 {
            let seq = 65_400u16.wrapping_add(i as u16); // crosses the ROC boundary
            let payload: Vec<u8> = (0..160).map(|j| (i as u8).wrapping_add(j as u8)).collect();
            let p = rtp::build(0, false, seq, i * 160, 0xABCD, &payload);
            let s = a.protect_rtp(&p).unwrap();
            assert_eq!(s.len(), p.len() + tag, "{suite}");
            assert_eq!(s[..12], p[..12], "header stays clear");
            assert_ne!(s[12..12 + 160], p[12..], "payload is encrypted");
            assert_eq!(b.unprotect_rtp(&s).unwrap(), p, "{suite} seq {seq}");
        }
        // RTCP both ways.
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0xAB, 0xCD];
        let s = b.protect_rtcp(&rr).unwrap();
        assert_eq!(a.unprotect_rtcp(&s).unwrap(), rr);
    }
}

#[test]
fn tampering_wrong_key_and_replay_are_rejected() {
    let (mut a, mut b) = pair(CryptoSuite::AesCm128HmacSha1_80);
    let p = rtp::build(0, false, 10, 1600, 7, &[0x55; 160]);
    let s = a.protect_rtp(&p).unwrap();
    let mut t = s.clone();
    t[40] ^= 1;
    assert!(b.unprotect_rtp(&t).is_err(), "bit flip");
    assert!(b.unprotect_rtp(&s).is_ok());
    assert!(b.unprotect_rtp(&s).is_err(), "replay");
    let (_, mut stranger) = pair(CryptoSuite::AesCm128HmacSha1_80);
    let s2 = a
        .protect_rtp(&rtp::build(0, false, 11, 1760, 7, &[0x55; 160]))
        .unwrap();
    assert!(stranger.unprotect_rtp(&s2).is_err(), "other key");
    assert!(b.unprotect_rtp(&[0x80, 0, 0]).is_err());
    assert!(b.unprotect_rtcp(&[0x80, 200, 0, 0]).is_err());
}

/// RFC 3711 Appendix B.3 key derivation (computed here with AES directly) and an SRTP packet
/// built by hand per §3.1, §4.1.1 and §4.2 must match what `SrtpSession` produces.
#[test]
fn srtp_packet_matches_rfc3711_appendix_b3_keys_and_section_4_construction() {
    let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");

    // §4.3.1 with kdr = 0: x = (label << 48) XOR salt, key stream AES-CM(master, x * 2^16).
    let derive = |label: u8, len: usize| -> Vec<u8> {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&master_salt);
        iv[7] ^= label;
        let mut out = vec![0u8; len];
        let mut c = ctr::Ctr128BE::<aes::Aes128>::new(master_key.as_slice().into(), &iv.into());
        c.apply_keystream(&mut out);
        out
    };
    let cipher_key = derive(0x00, 16);
    let auth_key = derive(0x01, 20);
    let cipher_salt = derive(0x02, 14);
    // The values printed in RFC 3711 Appendix B.3.
    assert_eq!(cipher_key, hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(cipher_salt, hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(auth_key, hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
    // Sanity of the AES primitive itself (FIPS-197 Appendix C.1).
    let aes = aes::Aes128::new(hex("000102030405060708090a0b0c0d0e0f").as_slice().into());
    let mut block = aes::Block::clone_from_slice(&hex("00112233445566778899aabbccddeeff"));
    aes.encrypt_block(&mut block);
    assert_eq!(block.to_vec(), hex("69c4e0d86a7b0430d8cdb78070b4c55a"));

    let ssrc = 0xDECA_FBAD_u32;
    let seq = 0x1234u16;
    let payload = [0xABu8; 16];
    let plain = rtp::build(15, false, seq, 0xCAFE_BABE, ssrc, &payload);

    // §4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), index = ROC||SEQ.
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&cipher_salt);
    for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
        iv[4 + i] ^= b;
    }
    let index = u64::from(seq); // ROC 0
    for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    let mut enc = payload.to_vec();
    ctr::Ctr128BE::<aes::Aes128>::new(cipher_key.as_slice().into(), &iv.into())
        .apply_keystream(&mut enc);
    let mut expected = plain[..12].to_vec();
    expected.extend_from_slice(&enc);
    // §4.2: HMAC-SHA1 over the authenticated portion || ROC, truncated to 80 bits.
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&auth_key).unwrap();
    mac.update(&expected);
    mac.update(&0u32.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    expected.extend_from_slice(&tag[..10]);

    let mut key_salt = master_key.clone();
    key_salt.extend_from_slice(&master_salt);
    let params = SrtpParams {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        local: MasterKey::from_bytes(key_salt.clone()),
        remote: MasterKey::from_bytes(key_salt),
    };
    let mut s = SrtpSession::new(&params).unwrap();
    let got = s.protect_rtp(&plain).unwrap();
    assert_eq!(got, expected);
    assert_eq!(s.unprotect_rtp(&got).unwrap(), plain);
}
