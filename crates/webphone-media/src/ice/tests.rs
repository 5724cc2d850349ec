//! Unit tests of the ICE glue: server lists, SDP attributes, and two transports checking each
//! other over an in-memory network under virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::sdp::{add_attributes, remote_ice, RemoteIce};
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn server_list_in_rtcpeerconnection_style_is_parsed() {
    let list = parse_server_list(
        "[{ url: 'stun:stun.example.org:3479'}, { url: 'turn:alice@turn.example.org', credential: 'secret'}]",
    );
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].kind, ServerKind::Stun);
    assert_eq!(list[0].host_port, "stun.example.org:3479");
    assert_eq!(list[1].kind, ServerKind::Turn);
    assert_eq!(list[1].host_port, "turn.example.org:3478");
    assert_eq!(list[1].username.as_deref(), Some("alice"));
    assert_eq!(list[1].credential.as_deref(), Some("secret"));
}

#[test]
fn server_list_accepts_urls_arrays_username_and_double_quotes() {
    let list = parse_server_list(
        r#"[{"urls": ["turn:10.0.0.1:3478?transport=udp", "stun:10.0.0.1"], "username": "bob", "credential": "pw"}]"#,
    );
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].host_port, "10.0.0.1:3478");
    assert_eq!(list[0].username.as_deref(), Some("bob"));
    assert_eq!(list[1].kind, ServerKind::Stun);
    assert!(parse_server_list("garbage, no objects").is_empty());
    assert!(parse_server_list("[{ url: 'http://x' }]").is_empty());
}

#[test]
fn relay_policy_is_read_from_the_list() {
    assert!(wants_relay_only(
        "[{ url: 'turn:h' }, { iceTransportPolicy: 'relay' }]"
    ));
    assert!(!wants_relay_only("[{ url: 'turn:h' }]"));
    assert!(!wants_relay_only("[{ iceTransportPolicy: 'all' }]"));
}

#[test]
fn server_addresses_are_normalised() {
    assert_eq!(
        normalize_host_port("1.2.3.4").as_deref(),
        Some("1.2.3.4:3478")
    );
    assert_eq!(
        normalize_host_port(" stun:h:19302 ").as_deref(),
        Some("h:19302")
    );
    assert_eq!(
        normalize_host_port("[::1]:5000").as_deref(),
        Some("[::1]:5000")
    );
    assert_eq!(normalize_host_port("::1").as_deref(), Some("[::1]:3478"));
    assert_eq!(normalize_host_port("NULL"), None);
    assert_eq!(normalize_host_port(""), None);
}

const PLAIN: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 0 RTP/AVP 96\r\n";

#[test]
fn our_attributes_go_into_the_audio_section_and_read_back() {
    let local = sdp::LocalIce {
        ufrag: "abcd".into(),
        pwd: "0123456789012345678901".into(),
        candidates: vec!["1 1 udp 2130706431 10.0.0.1 4000 typ host".into()],
        rtcp: None,
    };
    let sdp = add_attributes(PLAIN, &local, true);
    let video = sdp.find("m=video").expect("video kept");
    let ufrag = sdp.find("a=ice-ufrag:abcd").expect("ufrag written");
    assert!(
        ufrag < video,
        "ICE lines belong to the audio section: {sdp}"
    );
    assert!(sdp.contains("a=end-of-candidates\r\na=rtcp-mux\r\nm=video"));
    let remote = remote_ice(&sdp).expect("ICE read back");
    assert_eq!(remote.ufrag, "abcd");
    assert_eq!(remote.pwd, local.pwd);
    assert_eq!(remote.candidates, local.candidates);
    assert!(!remote.lite);
    // An answer does not add rtcp-mux on its own.
    assert!(!add_attributes(PLAIN, &local, false).contains("rtcp-mux"));
}

#[test]
fn sdp_without_ice_has_no_remote_ice_and_session_level_credentials_count() {
    assert_eq!(remote_ice(PLAIN), None);
    let s = "v=0\r\no=- 1 1 IN IP4 h\r\na=ice-lite\r\na=ice-ufrag:sess\r\na=ice-pwd:sesspwdsesspwdsesspwd12\r\n\
m=audio 1 RTP/AVP 0\r\na=candidate:1 1 UDP 1 10.0.0.2 1 typ host\r\n";
    let r = remote_ice(s).expect("session-level credentials");
    assert_eq!(r.ufrag, "sess");
    assert!(r.lite);
    assert_eq!(r.candidates.len(), 1);
}

/// Deliver everything `from` queued to `to` (an in-memory loopback network), returning the
/// media that came out.
fn deliver(
    from: &mut IceTransport,
    from_addr: SocketAddr,
    to: &mut IceTransport,
    to_addr: SocketAddr,
    now: Instant,
) -> Vec<Vec<u8>> {
    let mut media = Vec::new();
    while let Some((data, dest)) = from.poll_transmit() {
        if dest == to_addr {
            if let Some((m, _)) = to.handle_datagram(now, &data, from_addr) {
                media.push(m.into_owned());
            }
        }
    }
    media
}

fn host_only(host: SocketAddr, now: Instant) -> IceTransport {
    IceTransport::new(&IceConfig::default(), host, now).expect("agent")
}

fn remote_of(t: &IceTransport) -> RemoteIce {
    let l = t.local_sdp();
    RemoteIce {
        ufrag: l.ufrag,
        pwd: l.pwd,
        candidates: l.candidates,
        ..RemoteIce::default()
    }
}

#[test]
fn two_agents_with_host_candidates_select_a_pair_and_carry_media() {
    let (a_addr, b_addr) = (addr("127.0.0.1:40000"), addr("127.0.0.1:40002"));
    let start = Instant::now();
    let mut now = start;
    let mut a = host_only(a_addr, now);
    let mut b = host_only(b_addr, now);
    assert!(a.gathering_done(), "host-only gathering needs no server");
    assert_eq!(a.default_addr(), a_addr);
    let (ra, rb) = (remote_of(&a), remote_of(&b));
    a.set_remote(&rb, true, now).expect("offerer starts");
    b.set_remote(&ra, false, now).expect("answerer starts");
    for _ in 0..200 {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        deliver(&mut a, a_addr, &mut b, b_addr, now);
        deliver(&mut b, b_addr, &mut a, a_addr, now);
        if a.selected().is_some() && b.selected().is_some() {
            break;
        }
    }
    let took = now.saturating_duration_since(start);
    eprintln!("host pair selected on both sides after {took:?} (virtual time, 10 ms steps)");
    let pa = a.selected().expect("controlling side selected a pair");
    let pb = b.selected().expect("controlled side selected a pair");
    assert_eq!(pa.remote, b_addr);
    assert_eq!(pb.remote, a_addr);
    let mut events = Vec::new();
    while let Some(e) = a.poll_event() {
        events.push(e);
    }
    assert!(
        events.iter().any(|e| matches!(e, IceEvent::Selected(_))),
        "{events:?}"
    );
    // Media given for the c= address goes to the selected pair and comes out on the far side.
    a.send_media(now, &[0x80, 0, 0, 1], addr("192.0.2.9:9"));
    let got = deliver(&mut a, a_addr, &mut b, b_addr, now);
    assert_eq!(got, vec![vec![0x80, 0, 0, 1]]);
}

/// Runs both transports (10 ms steps of virtual time) until each has selected a pair whose
/// remote end is the other's address, or panics after 2 s.
fn connect(
    a: &mut IceTransport,
    a_addr: SocketAddr,
    b: &mut IceTransport,
    b_addr: SocketAddr,
    now: &mut Instant,
) {
    for _ in 0..200 {
        *now += Duration::from_millis(10);
        a.handle_timeout(*now);
        b.handle_timeout(*now);
        deliver(a, a_addr, b, b_addr, *now);
        deliver(b, b_addr, a, a_addr, *now);
        let a_ok = a.selected().is_some_and(|p| p.remote == b_addr);
        let b_ok = b.selected().is_some_and(|p| p.remote == a_addr);
        if a_ok && b_ok {
            return;
        }
    }
    panic!(
        "no pair after 2 s: a selected {:?}, b selected {:?}",
        a.selected(),
        b.selected()
    );
}

#[test]
fn same_credentials_in_a_reoffer_do_not_restart() {
    let (a_addr, b_addr) = (addr("127.0.0.1:40100"), addr("127.0.0.1:40102"));
    let mut now = Instant::now();
    let mut a = host_only(a_addr, now);
    let mut b = host_only(b_addr, now);
    let (ra, rb) = (remote_of(&a), remote_of(&b));
    a.set_remote(&rb, true, now).expect("offerer starts");
    b.set_remote(&ra, false, now).expect("answerer starts");
    connect(&mut a, a_addr, &mut b, b_addr, &mut now);
    // A hold re-offer repeats the attributes (RFC 8839 §4.4.1.1.2): nothing restarts.
    let restarted = b.update_remote(&ra, false, None, now).expect("update");
    assert!(!restarted);
    assert_eq!(b.selected().map(|p| p.remote), Some(a_addr));
    assert_eq!(b.remote_credentials(), Some((ra.ufrag, ra.pwd)));
}

#[test]
fn peer_moved_to_a_new_socket_restarts_ice_and_media_follows() {
    let (a_addr, b_addr, moved) = (
        addr("127.0.0.1:40110"),
        addr("127.0.0.1:40112"),
        addr("127.0.0.1:40114"),
    );
    let mut now = Instant::now();
    let mut a = host_only(a_addr, now);
    let mut b = host_only(b_addr, now);
    let (ra, rb) = (remote_of(&a), remote_of(&b));
    a.set_remote(&rb, false, now).expect("answerer starts");
    b.set_remote(&ra, true, now).expect("offerer starts");
    connect(&mut a, a_addr, &mut b, b_addr, &mut now);
    let old_a = a.local_sdp();

    // b's address changed: a new socket with a new agent (new ufrag/pwd) offers itself.
    let mut c = host_only(moved, now);
    let rc = remote_of(&c);
    assert_ne!(rc.ufrag, rb.ufrag, "a new agent has new credentials");
    // a answers the restart with new credentials of its own (RFC 8445 §9).
    let fresh = (
        "Rstrt123".to_owned(),
        "RestartPassword0123456789".to_owned(),
    );
    let restarted = a
        .update_remote(&rc, false, Some(fresh.clone()), now)
        .expect("restart");
    assert!(restarted);
    let new_a = a.local_sdp();
    assert_eq!((new_a.ufrag.clone(), new_a.pwd.clone()), fresh);
    assert_eq!(
        new_a.candidates, old_a.candidates,
        "same socket, same candidates"
    );
    // Until the new pair is chosen, media stays on the old one.
    assert_eq!(a.selected().map(|p| p.remote), Some(b_addr));
    // The answer reaches c: its checks start, controlling (it made the offer).
    let answer = RemoteIce {
        ufrag: new_a.ufrag,
        pwd: new_a.pwd,
        candidates: new_a.candidates,
        ..RemoteIce::default()
    };
    assert!(c.update_remote(&answer, true, None, now).expect("start"));
    connect(&mut a, a_addr, &mut c, moved, &mut now);
    a.send_media(now, &[0x80, 7], addr("192.0.2.9:9"));
    assert_eq!(
        deliver(&mut a, a_addr, &mut c, moved, now),
        vec![vec![0x80, 7]]
    );
}

#[test]
fn without_the_peers_ice_media_goes_to_the_given_address() {
    let now = Instant::now();
    let mut a = host_only(addr("127.0.0.1:40010"), now);
    a.send_media(now, &[0x80, 1], addr("127.0.0.1:5004"));
    assert_eq!(
        a.poll_transmit(),
        Some((vec![0x80, 1], addr("127.0.0.1:5004")))
    );
    // Media that arrives is handed on untouched.
    let (m, from) = a
        .handle_datagram(now, &[0x80, 2], addr("127.0.0.1:5004"))
        .expect("media passes");
    assert_eq!((&*m, from), (&[0x80u8, 2][..], addr("127.0.0.1:5004")));
}

#[test]
fn checks_without_an_answering_peer_fail_and_leave_media_on_the_fallback() {
    let mut now = Instant::now();
    let mut a = host_only(addr("127.0.0.1:40020"), now);
    let b = host_only(addr("127.0.0.1:40022"), now);
    a.set_remote(&remote_of(&b), true, now).expect("start");
    let mut failed = false;
    for _ in 0..400 {
        now += Duration::from_millis(100);
        a.handle_timeout(now);
        while a.poll_transmit().is_some() {}
        while let Some(e) = a.poll_event() {
            failed |= e == IceEvent::Failed;
        }
        if failed {
            break;
        }
    }
    assert!(failed, "no answers for 40 s must fail the checks");
    assert_eq!(a.selected(), None);
    a.send_media(now, &[0x80], addr("127.0.0.1:5006"));
    assert_eq!(
        a.poll_transmit(),
        Some((vec![0x80], addr("127.0.0.1:5006")))
    );
}

/// Answer a STUN Binding request as a server would, mapping the client to `mapped`
/// (RFC 5389 §7.3.1, XOR-MAPPED-ADDRESS).
fn binding_success(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
    use rtc_stun::message::{Message, BINDING_SUCCESS};
    use rtc_stun::xoraddr::XorMappedAddress;
    let mut req = Message::new();
    req.raw = request.to_vec();
    req.decode().expect("a STUN request");
    let mut resp = Message::new();
    resp.build(&[
        Box::new(req.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        }),
    ])
    .expect("response");
    resp.raw
}

#[test]
fn stun_answer_gives_a_server_reflexive_candidate_used_as_default() {
    let now = Instant::now();
    let (host, stun, public) = (
        addr("192.168.1.10:4000"),
        addr("198.51.100.1:3478"),
        addr("203.0.113.7:61000"),
    );
    let cfg = IceConfig {
        stun: Some(stun),
        ..IceConfig::default()
    };
    let mut t = IceTransport::new(&cfg, host, now).expect("agent");
    assert!(!t.gathering_done(), "waits for the binding answer");
    let (req, to) = t.poll_transmit().expect("binding request sent");
    assert_eq!(to, stun);
    assert!(t
        .handle_datagram(now, &binding_success(&req, public), stun)
        .is_none());
    assert!(t.gathering_done());
    assert_eq!(t.reflexive_addr(), Some(public));
    assert_eq!(t.default_addr(), public, "c=/m= shows the public address");
    let cands = t.local_sdp().candidates;
    assert!(cands.iter().any(|c| c.contains("typ host")), "{cands:?}");
    assert!(
        cands
            .iter()
            .any(|c| c.contains("203.0.113.7 61000 typ srflx raddr 192.168.1.10 rport 4000")),
        "{cands:?}"
    );
    assert_eq!(t.poll_event(), Some(IceEvent::Reflexive(public)));
}

#[test]
fn router_forward_is_offered_as_server_reflexive_and_used_as_default() {
    // A UPnP forward to the host socket, with no STUN server: the forward is the srflx
    // candidate and the c=/m= address; a second call of the same address adds nothing.
    let now = Instant::now();
    let (host, public) = (addr("192.168.1.10:4000"), addr("203.0.113.7:4000"));
    let mut t = host_only(host, now);
    t.add_mapped(public);
    t.add_mapped(public);
    assert_eq!(t.default_addr(), public);
    let cands = t.local_sdp().candidates;
    let srflx: Vec<_> = cands.iter().filter(|c| c.contains("typ srflx")).collect();
    assert_eq!(srflx.len(), 1, "{cands:?}");
    assert!(
        srflx[0].contains("203.0.113.7 4000 typ srflx raddr 192.168.1.10 rport 4000"),
        "{cands:?}"
    );
    // A "forward" to the host address itself is no candidate.
    let mut same = host_only(host, now);
    same.add_mapped(host);
    assert_eq!(same.default_addr(), host);
}

#[test]
fn unanswered_stun_server_ends_gathering_with_the_host_candidate() {
    let mut now = Instant::now();
    let cfg = IceConfig {
        stun: Some(addr("198.51.100.1:3478")),
        ..IceConfig::default()
    };
    let host = addr("192.168.1.10:4000");
    let mut t = IceTransport::new(&cfg, host, now).expect("agent");
    let mut sent = 0;
    for _ in 0..700 {
        now += Duration::from_millis(100);
        t.handle_timeout(now);
        while t.poll_transmit().is_some() {
            sent += 1;
        }
        if t.gathering_done() {
            break;
        }
    }
    assert!(
        t.gathering_done(),
        "the request times out (RFC 5389 §7.2.1)"
    );
    assert!(sent >= 2, "retransmitted: {sent}");
    assert_eq!(t.default_addr(), host);
    assert_eq!(t.local_sdp().candidates.len(), 1);
}

#[test]
fn hostile_candidates_and_datagrams_are_dropped_without_panic() {
    let mut now = Instant::now();
    let stun = addr("198.51.100.1:3478");
    let cfg = IceConfig {
        stun: Some(stun),
        ..IceConfig::default()
    };
    let mut t = IceTransport::new(&cfg, addr("127.0.0.1:40030"), now).expect("agent");
    let remote = RemoteIce {
        ufrag: "abcd".into(),
        pwd: "0123456789012345678901".into(),
        candidates: vec![
            "".into(),
            "1 1 udp".into(),
            "x 99999 udp 1 10.0.0.1 5 typ host".into(),
            "1 1 udp 1 not-an-ip 5 typ host".into(),
            "1 1 udp 1 10.0.0.1 5 typ nonsense".into(),
            "1 1 udp 1 10.0.0.1 5 typ srflx raddr".into(),
            "1 2 udp 1 10.0.0.1 5 typ host".into(),
            "1 1 udp 1 ::1 5 typ host".into(),
            "1 1 tcp 1 10.0.0.1 9 typ host tcptype active".into(),
            "1 1 udp 1 abc.local 5 typ host".into(),
        ],
        ..RemoteIce::default()
    };
    t.set_remote(&remote, true, now)
        .expect("checks start even with no usable candidate");
    let mut seed = 0x1234_5678u32;
    for i in 0..2000u32 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let len = (seed % 120) as usize;
        let mut d: Vec<u8> = (0..len)
            .map(|k| (seed.rotate_left(k as u32 % 31) >> 3) as u8)
            .collect();
        if len >= 20 && i % 2 == 0 {
            // Looks like STUN: first byte 0..3 and the magic cookie.
            d[0] &= 0x03;
            d[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        }
        let from = if i % 3 == 0 {
            stun
        } else {
            addr("10.9.9.9:999")
        };
        let _ = t.handle_datagram(now, &d, from);
        now += Duration::from_millis(1);
        t.handle_timeout(now);
        while t.poll_transmit().is_some() {}
    }
    assert_eq!(t.selected(), None);
}
