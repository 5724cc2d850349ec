//! Real UDP sockets on 127.0.0.1: two MediaSessions negotiated through our own SDP exchange a
//! 1 kHz tone; DTMF is checked on a raw socket; NAT latching and RtpSocket port rules.

use std::f64::consts::PI;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use webphone_media::dtmf::EventPayload;
use webphone_media::rtp::{self, Datagram, RtpPacket};
use webphone_media::sdp::{answer_offer, apply_answer, create_offer};
use webphone_media::{
    Codec, Direction, MediaEvent, MediaOffer, MediaSession, Negotiated, NullSink, PcmSink,
    PcmSource, RtpSocket, SilenceSource,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TONE_HZ: f64 = 1000.0;
const AMPLITUDE: f64 = 8000.0;

/// A phase-continuous sine at 8 kHz.
struct Sine {
    phase: f64,
    freq: f64,
}
impl PcmSource for Sine {
    fn read_frame(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = (self.phase.sin() * AMPLITUDE) as i16;
            self.phase += 2.0 * PI * self.freq / 8000.0;
            if self.phase > 2.0 * PI {
                self.phase -= 2.0 * PI;
            }
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<i16>>>);
impl PcmSink for Capture {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(frame);
    }
}

/// Goertzel power of one frequency, normalised so a full-scale-A sine gives about (A/2)^2.
fn goertzel_power(samples: &[i16], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let coeff = 2.0 * (2.0 * PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n)
}

fn db(x: f64) -> f64 {
    10.0 * x.max(1e-12).log10()
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_exchange_a_1khz_tone_over_loopback_udp() {
    let sock_a = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let sock_b = RtpSocket::bind(LOOPBACK, Some((30000, 40000)))
        .await
        .unwrap();
    assert_eq!(sock_b.local_addr().port() % 2, 0);
    let prefs = MediaOffer::default();
    let offer = create_offer(1, 1, sock_a.local_addr(), &prefs);
    let (answer, neg_b) = answer_offer(&offer, 2, sock_b.local_addr(), &prefs).unwrap();
    let neg_a = apply_answer(&answer, &prefs).unwrap();
    assert_eq!(neg_a.codec, Codec::Pcmu);

    let heard_by_b = Capture::default();
    let heard_by_a = Capture::default();
    let a = MediaSession::start(
        sock_a,
        neg_a,
        Box::new(Sine {
            phase: 0.0,
            freq: TONE_HZ,
        }),
        Box::new(heard_by_a.clone()),
    );
    let b = MediaSession::start(
        sock_b,
        neg_b,
        Box::new(SilenceSource),
        Box::new(heard_by_b.clone()),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let live = b.stats();
    assert!(live.packets_received > 0);
    let stats_a = a.stop().await;
    let stats_b = b.stop().await;

    // Roughly 50 packets per second each way.
    assert!(
        (45..=70).contains(&stats_a.packets_sent),
        "sent {}",
        stats_a.packets_sent
    );
    assert!(stats_b.packets_received + 3 >= stats_a.packets_sent.min(60));
    assert_eq!(stats_b.packets_lost, 0);
    assert_eq!(stats_b.packets_invalid, 0);
    assert!(stats_b.jitter_ms < 20.0, "jitter {}", stats_b.jitter_ms);
    assert_eq!(stats_a.bytes_sent, stats_a.packets_sent * 172);

    let audio = heard_by_b.0.lock().unwrap().clone();
    assert!(audio.len() >= 8000, "only {} samples played", audio.len());
    // Skip the prefill and look at the steady part.
    let steady = &audio[2400..];
    let p1k = goertzel_power(steady, TONE_HZ);
    for other in [300.0, 500.0, 1500.0, 2000.0, 3000.0] {
        let p = goertzel_power(steady, other);
        assert!(
            db(p1k) - db(p) > 25.0,
            "1 kHz {:.1} dB vs {other} Hz {:.1} dB",
            db(p1k),
            db(p)
        );
    }
    // Level within 1.5 dB of what was sent (G.711 costs a fraction of a dB).
    let sent_rms = AMPLITUDE / 2f64.sqrt();
    let got = 20.0 * (rms(steady) / sent_rms).log10();
    eprintln!(
        "tone: 1 kHz bin {:.1} dB, 1.5 kHz bin {:.1} dB, level {got:+.2} dB, sent {} recv {} jitter {:.2} ms, concealed {}",
        db(p1k),
        db(goertzel_power(steady, 1500.0)),
        stats_a.packets_sent,
        stats_b.packets_received,
        stats_b.jitter_ms,
        stats_b.frames_concealed
    );
    assert!(got.abs() < 1.5, "level off by {got:.2} dB");
    // A sends, B sends silence: A hears silence.
    let back = heard_by_a.0.lock().unwrap().clone();
    assert!(rms(&back[2400..]) < 10.0);
}

async fn collect_rtp(sock: &UdpSocket, for_ms: u64) -> Vec<RtpPacket> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
        if let Ok(Datagram::Rtp(p)) = rtp::parse(&buf[..n]) {
            out.push(p);
        }
    }
    out
}

fn neg_to(remote: SocketAddr) -> Negotiated {
    Negotiated {
        remote_rtp: remote,
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        direction: Direction::SendRecv,
        ptime_ms: 20,
        srtp: None,
        dtls: None,
        rtcp_mux: false,
        send_limits: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_events_seen_on_a_raw_socket_follow_rfc4733() {
    let raw = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let sock = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let session = MediaSession::start(
        sock,
        neg_to(raw.local_addr().unwrap()),
        Box::new(SilenceSource),
        Box::new(NullSink),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.send_dtmf("1x#");
    let pkts = collect_rtp(&raw, 700).await;
    let stats = session.stop().await;
    assert_eq!(stats.dtmf_sent, 2);

    // Sequence numbers are contiguous over audio and events.
    for w in pkts.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
    }
    let mut events: Vec<Vec<(RtpPacket, EventPayload)>> = Vec::new();
    let mut prev_was_event = false;
    for p in &pkts {
        if p.payload_type == 101 {
            let ev = EventPayload::decode(&p.payload).unwrap();
            if !prev_was_event {
                events.push(Vec::new());
            }
            if let Some(cur) = events.last_mut() {
                cur.push((p.clone(), ev));
            }
            prev_was_event = true;
        } else {
            assert_eq!(p.payload_type, 8);
            prev_was_event = false;
        }
    }
    assert_eq!(events.len(), 2, "two digits, separated by audio");
    for (run, code) in events.iter().zip([1u8, 11]) {
        assert!(run[0].0.marker, "marker on the first event packet");
        assert!(run[1..].iter().all(|(p, _)| !p.marker));
        assert!(run.iter().all(|(p, _)| p.timestamp == run[0].0.timestamp));
        assert!(run.iter().all(|(_, e)| e.event == code && e.volume == 10));
        let ends: Vec<&EventPayload> = run.iter().map(|(_, e)| e).filter(|e| e.end).collect();
        assert_eq!(ends.len(), 3);
        assert!(ends.iter().all(|e| e.duration >= 640));
        for w in run.windows(2) {
            assert!(w[1].1.duration >= w[0].1.duration);
        }
    }
    // The second digit starts after a gap of audio.
    let ts_gap = events[1][0]
        .0
        .timestamp
        .wrapping_sub(events[0][0].0.timestamp);
    assert!(ts_gap >= 8 * 160, "gap {ts_gap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_moves_the_stream_to_the_new_remote() {
    let raw1 = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let raw2 = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let sock = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let session = MediaSession::start(
        sock,
        neg_to(raw1.local_addr().unwrap()),
        Box::new(SilenceSource),
        Box::new(NullSink),
    );
    assert!(!collect_rtp(&raw1, 100).await.is_empty());
    let mut hold = neg_to(raw2.local_addr().unwrap());
    hold.codec = Codec::Pcmu;
    hold.payload_type = 0;
    session.update(hold);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let moved = collect_rtp(&raw2, 100).await;
    assert!(!moved.is_empty());
    assert!(moved.iter().all(|p| p.payload_type == 0));
    // Inactive: nothing is sent.
    let mut inactive = neg_to(raw2.local_addr().unwrap());
    inactive.direction = Direction::Inactive;
    session.update(inactive);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = collect_rtp(&raw2, 20).await;
    assert!(collect_rtp(&raw2, 100).await.is_empty());
    session.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_latches_to_the_source_address_of_a_natted_peer() {
    // B was told (by SDP) to send to a dead address; A's packets reveal the real one.
    let dead = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let sock_a = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let sock_b = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let addr_a = sock_a.local_addr();
    let addr_b = sock_b.local_addr();
    let heard_by_a = Capture::default();
    let a = MediaSession::start(
        sock_a,
        neg_to(addr_b),
        Box::new(SilenceSource),
        Box::new(heard_by_a.clone()),
    );
    let b = MediaSession::start(
        sock_b,
        neg_to(dead.local_addr().unwrap()),
        Box::new(Sine {
            phase: 0.0,
            freq: 440.0,
        }),
        Box::new(NullSink),
    );
    let mut events = b.take_events().unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap();
    assert_eq!(ev, Some(MediaEvent::RemoteLatched(addr_a)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stats_b = b.stop().await;
    a.stop().await;
    assert_eq!(stats_b.remote, Some(addr_a));
    let heard = heard_by_a.0.lock().unwrap().clone();
    assert!(rms(&heard) > 100.0, "A hears B after latching");
}

#[tokio::test]
async fn rtp_socket_binds_even_ports_in_range_and_skips_taken_ones() {
    // Find a free even port, occupy it, and ask for a range holding only it and the next even.
    let probe = RtpSocket::bind(LOOPBACK, Some((41000, 41998)))
        .await
        .unwrap();
    let taken = probe.local_addr().port();
    assert_eq!(taken % 2, 0);
    let lo = taken;
    let hi = taken + 2;
    for _ in 0..5 {
        let s = RtpSocket::bind(LOOPBACK, Some((lo, hi))).await;
        match s {
            Ok(s) => assert_eq!(s.local_addr().port(), taken + 2),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse),
        }
    }
    // A range with no even port is refused.
    let err = RtpSocket::bind(LOOPBACK, Some((41001, 41001)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Without a range the system chooses.
    let any = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    assert_ne!(any.local_addr().port(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_session_without_stop_ends_it_and_frees_the_port() {
    let raw = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let sock = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let addr = sock.local_addr();
    let session = MediaSession::start(
        sock,
        neg_to(raw.local_addr().unwrap()),
        Box::new(SilenceSource),
        Box::new(NullSink),
    );
    assert!(!collect_rtp(&raw, 100).await.is_empty());
    drop(session);
    let mut rebound = None;
    for _ in 0..50 {
        if let Ok(s) = UdpSocket::bind(addr).await {
            rebound = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound.is_some(), "port {addr} still in use");
}

/// A socket bound ahead of its call (the engine keeps one ready for the next incoming call)
/// may have caught stray datagrams on both ports: they are dropped before media starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_bound_ahead_drops_strays_before_its_call() {
    let rtp = RtpSocket::bind(LOOPBACK, None).await.expect("bind");
    let stray = UdpSocket::bind((LOOPBACK, 0)).await.expect("stray socket");
    stray
        .send_to(b"left over", rtp.local_addr())
        .await
        .expect("send");
    stray
        .send_to(&[0x80; 200], rtp.local_addr())
        .await
        .expect("send");
    if let Some(rtcp) = rtp.rtcp_addr() {
        stray.send_to(b"rtcp stray", rtcp).await.expect("send");
    }
    let expected = 2 + usize::from(rtp.rtcp_addr().is_some());
    // The reactor sees the datagrams shortly after they are sent.
    let mut dropped = 0;
    for _ in 0..50 {
        dropped += rtp.discard_pending();
        if dropped >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dropped, expected);
    assert_eq!(rtp.discard_pending(), 0, "nothing is left for the call");
}

#[tokio::test]
async fn rtp_base_port_is_used_first_and_the_next_even_port_for_the_next_call() {
    // A base the system just handed out (free now), made even.
    let probe = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let base = probe.local_addr().unwrap().port() & !1;
    drop(probe);
    let first = RtpSocket::bind_from(LOOPBACK, base, 0).await.unwrap();
    assert_eq!(first.local_addr().port(), base);
    // An odd base starts at the even port above it; a port in use is skipped.
    let second = RtpSocket::bind_from(LOOPBACK, base - 1, 0).await.unwrap();
    assert_eq!(second.local_addr().port(), base + 2);
    assert_eq!(
        second.rtcp_addr().map(|a| a.port()),
        Some(base + 3),
        "RTCP on the odd port above"
    );
    drop(first);
    let again = RtpSocket::bind_from(LOOPBACK, base, 0).await.unwrap();
    assert_eq!(
        again.local_addr().port(),
        base,
        "a freed base port is used again"
    );
}
