use super::*;
use crate::srtp::SrtpSession;
use std::time::Duration;

const A: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 40000));
const B: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 40002));

/// Two endpoints: `client` at A talking to B, `server` at B.
struct Pair {
    client: DtlsSrtp,
    server: DtlsSrtp,
    now: Instant,
    client_out: Option<DtlsOutcome>,
    server_out: Option<DtlsOutcome>,
    /// Datagrams and bytes that crossed, both ways.
    datagrams: usize,
    bytes: usize,
}

fn pair_from(
    ci: &DtlsIdentity,
    si: &DtlsIdentity,
    client_expects: Fingerprint,
    server_expects: Fingerprint,
    now: Instant,
) -> Pair {
    let client = DtlsSrtp::new(
        ci,
        &DtlsParams {
            role: DtlsRole::Client,
            remote_fingerprint: client_expects,
        },
        B,
        now,
    )
    .expect("client");
    let server = DtlsSrtp::new(
        si,
        &DtlsParams {
            role: DtlsRole::Server,
            remote_fingerprint: server_expects,
        },
        A,
        now,
    )
    .expect("server");
    Pair {
        client,
        server,
        now,
        client_out: None,
        server_out: None,
        datagrams: 0,
        bytes: 0,
    }
}

fn honest_pair() -> Pair {
    let ci = DtlsIdentity::generate().expect("client identity");
    let si = DtlsIdentity::generate().expect("server identity");
    pair_from(
        &ci,
        &si,
        si.fingerprint().clone(),
        ci.fingerprint().clone(),
        Instant::now(),
    )
}

impl Pair {
    /// Move every queued datagram across once; `drop_client` drops what the client sends
    /// in this round. Returns how many datagrams moved.
    fn exchange(&mut self, drop_client: bool) -> usize {
        let mut moved = 0;
        let mut to_server = Vec::new();
        while let Some((to, d)) = self.client.poll_transmit() {
            assert_eq!(to, B, "the client sends to the server's address");
            assert_eq!(crate::demux::classify(&d), crate::demux::PacketKind::Dtls);
            to_server.push(d);
        }
        if !drop_client {
            for d in to_server {
                moved += 1;
                self.datagrams += 1;
                self.bytes += d.len();
                if let Some(o) = self.server.handle_datagram(&d, A, self.now) {
                    self.server_out = Some(o);
                }
            }
        }
        let mut to_client = Vec::new();
        while let Some((to, d)) = self.server.poll_transmit() {
            assert_eq!(to, A, "the server answers the client's source address");
            to_client.push(d);
        }
        for d in to_client {
            moved += 1;
            self.datagrams += 1;
            self.bytes += d.len();
            if let Some(o) = self.client.handle_datagram(&d, B, self.now) {
                self.client_out = Some(o);
            }
        }
        moved
    }

    fn run(&mut self) {
        for _ in 0..20 {
            self.now += Duration::from_millis(20);
            if let Some(o) = self.client.handle_timeout(self.now) {
                self.client_out = Some(o);
            }
            if let Some(o) = self.server.handle_timeout(self.now) {
                self.server_out = Some(o);
            }
            if self.exchange(false) == 0 && self.client_out.is_some() && self.server_out.is_some() {
                break;
            }
        }
    }
}

fn keys(o: &Option<DtlsOutcome>) -> SrtpParams {
    match o {
        Some(DtlsOutcome::Keyed(p)) => p.clone(),
        other => panic!("expected keys, got {other:?}"),
    }
}

#[test]
fn back_to_back_handshake_exports_matching_srtp_keys() {
    let mut p = honest_pair();
    let cpu = std::time::Instant::now();
    p.run();
    // Reported, not asserted: the cost of one handshake (both sides, this build).
    eprintln!(
        "DTLS-SRTP handshake: {} datagrams, {} bytes, {:?} of CPU for both sides",
        p.datagrams,
        p.bytes,
        cpu.elapsed()
    );
    let c = keys(&p.client_out);
    let s = keys(&p.server_out);
    assert_eq!(
        c.suite,
        CryptoSuite::AesCm128HmacSha1_80,
        "our first profile wins"
    );
    assert_eq!(c.suite, s.suite);
    assert_eq!(
        c.local, s.remote,
        "client write key = what the server reads with"
    );
    assert_eq!(
        c.remote, s.local,
        "server write key = what the client reads with"
    );
    assert_ne!(c.local, c.remote, "the two directions have different keys");
    assert_eq!(c.local.as_bytes().len(), c.suite.key_salt_len());
    assert!(p.client.is_keyed() && p.server.is_keyed());

    // The keys work in the SRTP contexts: RTP protected by one side opens on the other.
    let mut cs = SrtpSession::new(&c).expect("client SRTP");
    let mut ss = SrtpSession::new(&s).expect("server SRTP");
    let rtp = [
        0x80u8, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4,
    ];
    let protected = cs.protect_rtp(&rtp).expect("protect");
    assert_ne!(&protected[12..16], &rtp[12..16], "payload is encrypted");
    assert_eq!(
        ss.unprotect_rtp(&protected).expect("unprotect"),
        rtp.to_vec()
    );
    let back = ss.protect_rtp(&rtp).expect("protect back");
    assert_eq!(
        cs.unprotect_rtp(&back).expect("unprotect back"),
        rtp.to_vec()
    );
}

/// A handshake in which the client (`client_deceived`) or the server expects a fingerprint
/// the other side's certificate does not have.
fn mismatched_pair(client_deceived: bool) -> Pair {
    let ci = DtlsIdentity::generate().expect("client identity");
    let si = DtlsIdentity::generate().expect("server identity");
    let other = DtlsIdentity::generate().expect("someone else");
    let (client_expects, server_expects) = if client_deceived {
        (other.fingerprint(), ci.fingerprint())
    } else {
        (si.fingerprint(), other.fingerprint())
    };
    let mut p = pair_from(
        &ci,
        &si,
        client_expects.clone(),
        server_expects.clone(),
        Instant::now(),
    );
    p.run();
    p
}

#[test]
fn client_refuses_server_certificate_not_matching_sdp_fingerprint() {
    let p = mismatched_pair(true);
    assert_eq!(
        p.client_out,
        Some(DtlsOutcome::Failed(DtlsError::FingerprintMismatch))
    );
    assert!(!p.server.is_keyed(), "the server gets no keys either");
    assert!(!p.client.is_keyed());
}

#[test]
fn server_refuses_client_certificate_not_matching_sdp_fingerprint() {
    let p = mismatched_pair(false);
    assert_eq!(
        p.server_out,
        Some(DtlsOutcome::Failed(DtlsError::FingerprintMismatch))
    );
    assert!(
        !p.client.is_keyed(),
        "the client never sees the server's Finished"
    );
}

#[test]
fn lost_client_hello_is_retransmitted_after_the_timer() {
    let mut p = honest_pair();
    // The first flight is lost.
    assert_eq!(p.exchange(true), 0);
    let first_timer = p
        .client
        .poll_timeout()
        .expect("a retransmission timer is armed");
    // Nothing is resent before the timer.
    p.now = first_timer - Duration::from_millis(1);
    assert_eq!(p.client.handle_timeout(p.now), None);
    assert!(
        p.client.poll_transmit().is_none(),
        "no resend before the timer"
    );
    // At the timer the ClientHello goes out again and the handshake completes.
    p.now = first_timer;
    assert_eq!(p.client.handle_timeout(p.now), None);
    p.run();
    let c = keys(&p.client_out);
    let s = keys(&p.server_out);
    assert_eq!(c.local, s.remote);
}

#[test]
fn handshake_fails_when_the_peer_never_answers() {
    let ci = DtlsIdentity::generate().expect("client identity");
    let si = DtlsIdentity::generate().expect("server identity");
    let mut client = DtlsSrtp::new(
        &ci,
        &DtlsParams {
            role: DtlsRole::Client,
            remote_fingerprint: si.fingerprint().clone(),
        },
        B,
        Instant::now(),
    )
    .expect("client");
    let mut now = Instant::now();
    let mut sent = 0;
    let mut outcome = None;
    for _ in 0..100 {
        while client.poll_transmit().is_some() {
            sent += 1;
        }
        let Some(t) = client.poll_timeout() else {
            break;
        };
        now = now.max(t);
        if let Some(o) = client.handle_timeout(now) {
            outcome = Some(o);
            break;
        }
    }
    assert!(sent >= 2, "the first flight was sent and resent ({sent})");
    assert!(
        matches!(outcome, Some(DtlsOutcome::Failed(DtlsError::Handshake(_)))),
        "{outcome:?}"
    );
    assert_eq!(client.poll_timeout(), None, "no timer after the failure");
}

#[test]
fn server_never_contacted_gives_up_after_the_handshake_timeout() {
    let si = DtlsIdentity::generate().expect("server identity");
    let ci = DtlsIdentity::generate().expect("client identity");
    let start = Instant::now();
    let mut server = DtlsSrtp::new(
        &si,
        &DtlsParams {
            role: DtlsRole::Server,
            remote_fingerprint: ci.fingerprint().clone(),
        },
        A,
        start,
    )
    .expect("server");
    assert_eq!(server.poll_timeout(), Some(start + HANDSHAKE_TIMEOUT));
    assert_eq!(server.handle_timeout(start + HANDSHAKE_TIMEOUT / 2), None);
    assert!(
        server.poll_transmit().is_none(),
        "a server never speaks first"
    );
    let out = server.handle_timeout(start + HANDSHAKE_TIMEOUT);
    assert!(
        matches!(&out, Some(DtlsOutcome::Failed(DtlsError::Handshake(r))) if r.contains("within")),
        "{out:?}"
    );
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn fingerprint_value_round_trips_and_rejects_garbage() {
    let id = DtlsIdentity::generate().expect("identity");
    let v = id.fingerprint().to_value();
    assert!(v.starts_with("sha-256 "), "{v}");
    assert_eq!(v.len(), "sha-256 ".len() + 32 * 3 - 1);
    assert_eq!(Fingerprint::parse(&v).expect("parse"), *id.fingerprint());
    assert_eq!(
        Fingerprint::parse(&v.to_ascii_lowercase().replace("sha-256", "SHA-256")).expect("case"),
        *id.fingerprint()
    );
    assert!(Fingerprint::parse("sha-256 AB:CD").is_err(), "too short");
    assert!(Fingerprint::parse("md5 AB:CD").is_err(), "unsupported hash");
    assert!(Fingerprint::parse("sha-256").is_err());
    assert!(Fingerprint::parse(&format!("{v}:ZZ")).is_err());
    assert!(Fingerprint::parse(&v.replacen(':', "", 1)).is_err());
}

#[test]
fn reoffer_with_actpass_keeps_the_running_association_roles() {
    // We offered first and the peer answered active: we are the server. Its re-offer says
    // actpass (a browser's ICE restart or hold): the answer keeps us passive.
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::ActPass), Some(DtlsRole::Server)),
        Some((DtlsRole::Server, Setup::Passive))
    );
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::ActPass), Some(DtlsRole::Client)),
        Some((DtlsRole::Client, Setup::Active))
    );
    // A re-offer that fixes the roles itself is followed.
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::Passive), Some(DtlsRole::Server)),
        Some((DtlsRole::Client, Setup::Active))
    );
}

#[test]
fn setup_roles_follow_rfc_5763_section_5() {
    // Answering: actpass -> we are active (client); the offerer's active -> we are passive.
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::ActPass), None),
        Some((DtlsRole::Client, Setup::Active))
    );
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::Passive), None),
        Some((DtlsRole::Client, Setup::Active))
    );
    assert_eq!(
        DtlsRole::for_answer(Some(Setup::Active), None),
        Some((DtlsRole::Server, Setup::Passive))
    );
    assert_eq!(
        DtlsRole::for_answer(None, None),
        Some((DtlsRole::Server, Setup::Passive))
    );
    assert_eq!(DtlsRole::for_answer(Some(Setup::HoldConn), None), None);
    // Offering actpass: the answer decides.
    assert_eq!(
        DtlsRole::for_offer(Some(Setup::Active)),
        Some(DtlsRole::Server)
    );
    assert_eq!(
        DtlsRole::for_offer(Some(Setup::Passive)),
        Some(DtlsRole::Client)
    );
    assert_eq!(DtlsRole::for_offer(None), Some(DtlsRole::Server));
    assert_eq!(DtlsRole::for_offer(Some(Setup::ActPass)), None);
    assert_eq!(Setup::parse(" ActPass "), Some(Setup::ActPass));
    assert_eq!(Setup::parse("both"), None);
}

#[test]
fn keying_material_split_follows_rfc_5764_section_4_2() {
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    // client key 16 x 0x01, server key 16 x 0x02, client salt 14 x 0x03, server salt 14 x 0x04
    let mut m = vec![1u8; 16];
    m.extend([2u8; 16]);
    m.extend([3u8; 14]);
    m.extend([4u8; 14]);
    let c = split_keying_material(suite, &m, DtlsRole::Client).expect("split");
    let mut client_ks = vec![1u8; 16];
    client_ks.extend([3u8; 14]);
    let mut server_ks = vec![2u8; 16];
    server_ks.extend([4u8; 14]);
    assert_eq!(c.local.as_bytes(), client_ks.as_slice());
    assert_eq!(c.remote.as_bytes(), server_ks.as_slice());
    let s = split_keying_material(suite, &m, DtlsRole::Server).expect("split");
    assert_eq!(s.local.as_bytes(), server_ks.as_slice());
    assert!(split_keying_material(suite, &m[1..], DtlsRole::Client).is_none());
}

#[test]
fn process_identity_is_generated_once() {
    let a = DtlsIdentity::process().expect("identity");
    let b = DtlsIdentity::process().expect("identity");
    assert_eq!(a.fingerprint(), b.fingerprint());
}

// ----- SDP offer/answer (RFC 5763 §5) -----

use crate::{sdp, Codec, MediaOffer, SdpError, SrtpPolicy};

fn local() -> SocketAddr {
    A
}

const BARESIP_STYLE_OFFER: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 UDP/TLS/RTP/SAVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=fingerprint:sha-256 FF\r\na=setup:actpass\r\na=sendrecv\r\n";

fn offer_with_fingerprint(fp: &Fingerprint, setup: &str, session_level: bool) -> String {
    let attrs = format!("a=fingerprint:{}\r\na=setup:{setup}\r\n", fp.to_value());
    let (sess, media) = if session_level {
        (attrs.as_str(), "")
    } else {
        ("", attrs.as_str())
    };
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{sess}\
m=audio 30000 UDP/TLS/RTP/SAVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n{media}\
a=rtcp-mux\r\na=sendrecv\r\n"
    )
}

#[test]
fn dtls_offer_has_profile_fingerprint_actpass_and_no_crypto() {
    let prefs = MediaOffer::new(vec![Codec::Pcmu], true).with_dtls(true);
    assert_eq!(prefs.srtp, SrtpPolicy::Required);
    let offer = sdp::create_offer(1, 1, local(), &prefs);
    let id = DtlsIdentity::process().expect("identity");
    assert!(
        offer.contains("m=audio 40000 UDP/TLS/RTP/SAVP 0 "),
        "{offer}"
    );
    assert!(
        offer.contains(&format!(
            "a=fingerprint:{}\r\n",
            id.fingerprint().to_value()
        )),
        "{offer}"
    );
    assert!(offer.contains("a=setup:actpass\r\n"), "{offer}");
    assert!(offer.contains("a=rtcp-mux\r\n"), "{offer}");
    assert!(!offer.contains("a=crypto"), "{offer}");
    // Our own parser reads it back.
    let m = sdp::parse(&offer).expect("parse").media.remove(0);
    assert!(m.is_dtls());
    assert_eq!(
        Fingerprint::parse(m.fingerprint.as_deref().expect("fp")).expect("fp"),
        *id.fingerprint()
    );
}

#[test]
fn dtls_offer_is_answered_active_with_our_fingerprint() {
    let peer = DtlsIdentity::generate().expect("peer identity");
    for session_level in [false, true] {
        let offer = offer_with_fingerprint(peer.fingerprint(), "actpass", session_level);
        // Any mediaencryption but "off" answers DTLS-SRTP.
        for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
            let prefs = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(policy);
            let (answer, neg) = sdp::answer_offer(&offer, 5, local(), &prefs).expect("answer");
            assert!(
                answer.contains("m=audio 40000 UDP/TLS/RTP/SAVP 0"),
                "{answer}"
            );
            assert!(answer.contains("a=setup:active\r\n"), "{answer}");
            assert!(answer.contains("a=rtcp-mux\r\n"), "{answer}");
            let id = DtlsIdentity::process().expect("identity");
            assert!(answer.contains(&id.fingerprint().to_value()), "{answer}");
            assert!(!answer.contains("a=crypto"), "{answer}");
            let dtls = neg.dtls.clone().expect("DTLS negotiated");
            assert_eq!(dtls.role, DtlsRole::Client);
            assert_eq!(dtls.remote_fingerprint, *peer.fingerprint());
            assert!(neg.srtp.is_none(), "keys come from the handshake");
            assert!(neg.is_encrypted());
            assert!(neg.rtcp_mux);
        }
    }
}

#[test]
fn dtls_offer_with_setup_active_makes_us_passive() {
    let peer = DtlsIdentity::generate().expect("peer identity");
    let offer = offer_with_fingerprint(peer.fingerprint(), "active", false);
    let prefs = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    let (answer, neg) = sdp::answer_offer(&offer, 5, local(), &prefs).expect("answer");
    assert!(answer.contains("a=setup:passive\r\n"), "{answer}");
    assert_eq!(neg.dtls.expect("dtls").role, DtlsRole::Server);
}

#[test]
fn dtls_offer_refused_when_encryption_is_off_or_fingerprint_unusable() {
    let peer = DtlsIdentity::generate().expect("peer identity");
    let offer = offer_with_fingerprint(peer.fingerprint(), "actpass", false);
    let off = MediaOffer::new(vec![Codec::Pcmu], true);
    assert_eq!(
        sdp::answer_offer(&offer, 5, local(), &off).map(|_| ()),
        Err(SdpError::NoCommonCodec),
        "mediaencryption 0: 488"
    );
    let on = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    // A fingerprint too short for sha-256, and none at all.
    assert_eq!(
        sdp::answer_offer(BARESIP_STYLE_OFFER, 5, local(), &on).map(|_| ()),
        Err(SdpError::NoCommonCodec)
    );
    let no_fp = BARESIP_STYLE_OFFER.replace("a=fingerprint:sha-256 FF\r\n", "");
    assert_eq!(
        sdp::answer_offer(&no_fp, 5, local(), &on).map(|_| ()),
        Err(SdpError::NoCommonCodec)
    );
    let hold = offer_with_fingerprint(peer.fingerprint(), "holdconn", false);
    assert_eq!(
        sdp::answer_offer(&hold, 5, local(), &on).map(|_| ()),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn answer_to_our_dtls_offer_sets_role_and_fingerprint() {
    let prefs = MediaOffer::new(vec![Codec::Pcmu], true).with_dtls(true);
    let peer = DtlsIdentity::generate().expect("peer identity");
    let answer = |proto: &str, extra: &str| {
        format!(
            "v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{extra}a=sendrecv\r\n"
        )
    };
    let fp = format!("a=fingerprint:{}\r\n", peer.fingerprint().to_value());
    let neg = sdp::apply_answer(
        &answer(PROTO_SAVP, &format!("{fp}a=setup:active\r\na=rtcp-mux\r\n")),
        &prefs,
    )
    .expect("answer");
    let d = neg.dtls.expect("dtls");
    assert_eq!(
        d.role,
        DtlsRole::Server,
        "the answerer is active: we are the server"
    );
    assert_eq!(d.remote_fingerprint, *peer.fingerprint());
    assert!(neg.rtcp_mux);
    let neg = sdp::apply_answer(
        &answer(PROTO_SAVP, &format!("{fp}a=setup:passive\r\n")),
        &prefs,
    )
    .expect("answer");
    assert_eq!(neg.dtls.expect("dtls").role, DtlsRole::Client);
    // Refused: plain RTP, no fingerprint, actpass in an answer.
    for bad in [
        answer("RTP/AVP", ""),
        answer(PROTO_SAVP, "a=setup:active\r\n"),
        answer(PROTO_SAVP, &format!("{fp}a=setup:actpass\r\n")),
    ] {
        assert!(
            matches!(sdp::apply_answer(&bad, &prefs), Err(SdpError::Crypto(_))),
            "{bad}"
        );
    }
    // A DTLS answer to an offer that was not DTLS.
    let sdes = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    assert!(matches!(
        sdp::apply_answer(
            &answer(PROTO_SAVP, &format!("{fp}a=setup:active\r\n")),
            &sdes
        ),
        Err(SdpError::Crypto(_))
    ));
}

// ----- WebRTC-style peers: BUNDLE (RFC 8843), a=mid (RFC 5888), UDP/TLS/RTP/SAVPF -----

/// Shaped like Chromium's offer (SIP.js, audio and video, after ICE gathering), with the
/// fingerprint replaced.
fn chromium_offer(fp: &Fingerprint) -> String {
    format!(
        "v=0\r\no=- 8455802965706357125 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS ad6d\r\n\
m=audio 37532 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 127.0.0.1\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:3055636744 1 udp 2122194687 127.0.0.1 37532 typ host generation 0 network-id 3\r\n\
a=ice-ufrag:FCKg\r\na=ice-pwd:LnkjM1qvnaCIHjGUR5Bvov67\r\na=ice-options:trickle\r\n\
a=fingerprint:{}\r\na=setup:actpass\r\na=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\na=msid:ad6d 9a73\r\n\
a=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1465587918 cname:bJ3GwcQ/nTlpXOpt\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:FCKg\r\na=ice-pwd:LnkjM1qvnaCIHjGUR5Bvov67\r\na=fingerprint:{}\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n",
        fp.to_value(),
        fp.to_value()
    )
}

#[test]
fn chromium_offer_is_answered_with_its_mid_a_bundle_of_one_and_savpf() {
    let peer = DtlsIdentity::generate().expect("peer identity");
    let offer = chromium_offer(peer.fingerprint());
    let parsed = sdp::parse(&offer).expect("parse");
    assert_eq!(
        parsed.bundle_groups,
        vec![vec!["0".to_owned(), "1".to_owned()]]
    );
    assert_eq!(parsed.media[0].mid.as_deref(), Some("0"));
    assert_eq!(parsed.media[1].mid.as_deref(), Some("1"));
    // The default mediaencryption answers it, Opus first as we prefer it.
    let prefs =
        MediaOffer::new(vec![Codec::Opus, Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    let (answer, neg) = sdp::answer_offer(&offer, 5, local(), &prefs).expect("answer");
    assert!(
        answer.contains("m=audio 40000 UDP/TLS/RTP/SAVPF 111 110\r\n"),
        "{answer}"
    );
    // RFC 8843 §7.3.3: the rejected video leaves the group and keeps its mid.
    assert!(
        answer.contains("\r\nt=0 0\r\na=group:BUNDLE 0\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=mid:0\r\n"), "{answer}");
    assert!(
        answer.contains("m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=setup:active\r\n"), "{answer}");
    assert!(answer.contains("a=rtcp-mux\r\n"), "{answer}");
    let back = sdp::parse(&answer).expect("our answer parses");
    assert_eq!(back.bundle_groups, vec![vec!["0".to_owned()]]);
    assert_eq!(back.media[0].mid.as_deref(), Some("0"));
    assert_eq!(back.media[1].port, 0);
    let dtls = neg.dtls.expect("dtls");
    assert_eq!(dtls.role, DtlsRole::Client);
    assert_eq!(dtls.remote_fingerprint, *peer.fingerprint());
    assert!(neg.rtcp_mux);
    assert_eq!(neg.codec, Codec::Opus);
    assert_eq!(
        neg.remote_rtp,
        "127.0.0.1:37532".parse::<SocketAddr>().expect("addr")
    );
}

#[test]
fn offer_without_bundle_or_mid_is_answered_without_them() {
    let peer = DtlsIdentity::generate().expect("peer identity");
    let offer = offer_with_fingerprint(peer.fingerprint(), "actpass", false);
    let prefs = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    let (answer, _) = sdp::answer_offer(&offer, 5, local(), &prefs).expect("answer");
    assert!(!answer.contains("a=group:"), "{answer}");
    assert!(!answer.contains("a=mid:"), "{answer}");
    // A mid outside every BUNDLE group is echoed, without a group.
    let tagged = offer.replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=mid:audio\r\n");
    let (answer, _) = sdp::answer_offer(&tagged, 5, local(), &prefs).expect("answer");
    assert!(answer.contains("a=mid:audio\r\n"), "{answer}");
    assert!(!answer.contains("a=group:"), "{answer}");
    // A mid that is not a token is not echoed.
    let bad = offer.replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=mid:a b\r\n");
    let (answer, _) = sdp::answer_offer(&bad, 5, local(), &prefs).expect("answer");
    assert!(!answer.contains("a=mid:"), "{answer}");
}

#[test]
fn dtls_offer_is_a_bundle_group_of_one_tagged_stream_and_sdes_offers_are_not() {
    let dtls = MediaOffer::new(vec![Codec::Pcmu], true).with_dtls(true);
    let offer = sdp::create_offer(1, 1, local(), &dtls);
    assert!(
        offer.contains("\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio"),
        "{offer}"
    );
    assert!(offer.contains("a=mid:0\r\n"), "{offer}");
    let parsed = sdp::parse(&offer).expect("parse");
    assert_eq!(parsed.bundle_groups, vec![vec![sdp::OFFER_MID.to_owned()]]);
    let sdes = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    let offer = sdp::create_offer(1, 1, local(), &sdes);
    assert!(
        !offer.contains("a=group:") && !offer.contains("a=mid:"),
        "{offer}"
    );
}
