//! ICE over real UDP sockets on 127.0.0.1: two MediaSessions gather host candidates, exchange
//! them in our SDP, run connectivity checks and carry media over the selected pair; and the
//! `natopenpackets` datagrams on a raw socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use webphone_media::ice::IceConfig;
use webphone_media::sdp::{answer_offer, apply_answer, create_offer};
use webphone_media::{
    Codec, Direction, MediaOffer, MediaSession, Negotiated, PcmSink, PcmSource, RtpSocket,
    SilenceSource,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Ramp(i16);
impl PcmSource for Ramp {
    fn read_frame(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            self.0 = self.0.wrapping_add(97);
            *s = self.0 / 4;
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

/// Replace the `c=` address and `m=` port of an SDP: a peer that followed them would send into
/// the void, so media that arrives proves it followed the ICE candidates instead.
fn blackhole_default_address(sdp: &str, dead: SocketAddr) -> String {
    sdp.lines()
        .map(|l| {
            if l.starts_with("c=IN IP") {
                let at = if dead.is_ipv4() { "IP4" } else { "IP6" };
                format!("c=IN {at} {}", dead.ip())
            } else if let Some(rest) = l.strip_prefix("m=audio ") {
                let tail = rest.split_once(' ').map_or("", |(_, t)| t);
                format!("m=audio {} {tail}", dead.port())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_follows_the_ice_pair_when_the_default_address_is_dead() {
    ice_call_over(LOOPBACK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_over_ipv6_loopback_carries_media() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback here");
        return;
    }
    ice_call_over(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)).await;
}

/// Two sessions on `ip` with ICE host candidates; each side's view of the other's `c=`/`m=`
/// points at a dead port, so media that arrives went over the ICE pair.
async fn ice_call_over(ip: IpAddr) {
    let mut sock_a = RtpSocket::bind(ip, None).await.expect("bind a");
    let mut sock_b = RtpSocket::bind(ip, None).await.expect("bind b");
    let cfg = IceConfig::default();
    let (host_a, host_b) = (sock_a.local_addr(), sock_b.local_addr());
    sock_a.gather_ice(&cfg, host_a).await;
    sock_b.gather_ice(&cfg, host_b).await;
    assert!(sock_a.has_ice() && sock_b.has_ice());
    // A port nobody listens on.
    let dead = {
        let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).expect("probe");
        s.local_addr().expect("addr")
    };
    let prefs = MediaOffer::default();
    let offer = sock_a.add_ice_to_sdp(&create_offer(1, 1, sock_a.sdp_addr(host_a), &prefs), true);
    assert!(
        offer.contains("a=ice-ufrag:") && offer.contains(" typ host"),
        "{offer}"
    );
    assert!(
        offer.contains("a=rtcp-mux"),
        "one component: RTCP muxed: {offer}"
    );
    let offer_seen_by_b = blackhole_default_address(&offer, dead);
    let (answer, neg_b) =
        answer_offer(&offer_seen_by_b, 2, sock_b.sdp_addr(host_b), &prefs).expect("answer");
    let answer = sock_b.add_ice_to_sdp(&answer, false);
    let answer_seen_by_a = blackhole_default_address(&answer, dead);
    let neg_a = apply_answer(&answer_seen_by_a, &prefs).expect("apply");
    assert_eq!(neg_a.remote_rtp, dead);
    sock_b.apply_remote_ice(&offer_seen_by_b, false);
    sock_a.apply_remote_ice(&answer_seen_by_a, true);

    let heard_by_a = Capture::default();
    let heard_by_b = Capture::default();
    let a = MediaSession::start(
        sock_a,
        neg_a,
        Box::new(Ramp(0)),
        Box::new(heard_by_a.clone()),
    );
    let b = MediaSession::start(
        sock_b,
        neg_b,
        Box::new(Ramp(5)),
        Box::new(heard_by_b.clone()),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (sa, sb) = (a.stop().await, b.stop().await);
    eprintln!(
        "ICE host pair: a sent {} received {}, b sent {} received {}",
        sa.packets_sent, sa.packets_received, sb.packets_sent, sb.packets_received
    );
    // Before the pair is selected media goes to the dead default address; after, it arrives.
    assert!(
        sb.packets_received >= 40,
        "b received {}",
        sb.packets_received
    );
    assert!(
        sa.packets_received >= 40,
        "a received {}",
        sa.packets_received
    );
    let loud = |c: &Capture| {
        c.0.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.unsigned_abs() > 500)
            .count()
    };
    assert!(loud(&heard_by_a) > 4000 && loud(&heard_by_b) > 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_open_packets_precede_the_first_rtp_packet() {
    let peer = UdpSocket::bind((LOOPBACK, 0)).await.expect("peer");
    let mut sock = RtpSocket::bind(LOOPBACK, None).await.expect("bind");
    sock.set_nat_open_packets(3);
    let neg = Negotiated {
        remote_rtp: peer.local_addr().expect("addr"),
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event_pt: None,
        direction: Direction::SendRecv,
        ptime_ms: 20,
        srtp: None,
        dtls: None,
        rtcp_mux: false,
        send_limits: Default::default(),
    };
    let s = MediaSession::start(
        sock,
        neg,
        Box::new(SilenceSource),
        Box::new(Capture::default()),
    );
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while got.len() < 5 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
            .await
            .expect("datagrams arrive")
            .expect("recv");
        got.push(buf[..n].to_vec());
    }
    s.stop().await;
    assert_eq!(
        &got[..3],
        &[b"\r\n".to_vec(), b"\r\n".to_vec(), b"\r\n".to_vec()]
    );
    assert!(
        got[3..].iter().all(|p| p.len() == 172 && p[0] == 0x80),
        "then RTP"
    );
}
