//! Two user agents on 127.0.0.1 calling each other directly (no server), over real UDP
//! and TCP sockets. Every assertion is on events the public API reports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{CallKey, EndReason, SipConfig, SipError, SipEvent, SipUa, Transport};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=b 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

struct Peer {
    ua: SipUa,
    rx: UnboundedReceiver<SipEvent>,
    name: &'static str,
}

impl Peer {
    async fn start(name: &'static str, transport: Transport) -> Peer {
        init_tracing();
        let cfg = SipConfig {
            bind_ip: LOOPBACK,
            port: 0,
            transport,
            user_agent: format!("webphone-test-{name}"),
        };
        let (ua, rx) = SipUa::start(cfg).await.expect("user agent starts");
        Peer { ua, rx, name }
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.ua.local_addr())
    }

    /// Next call event (registration events are not expected in these tests).
    async fn next(&mut self) -> SipEvent {
        self.next_within(WAIT).await
    }

    async fn next_within(&mut self, wait: Duration) -> SipEvent {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("{}: event channel closed", self.name),
            Err(_) => panic!("{}: no event within {wait:?}", self.name),
        }
    }

    async fn incoming(&mut self) -> (CallKey, Option<String>, String) {
        match self.next().await {
            SipEvent::Incoming {
                call,
                sdp,
                from_user,
                ..
            } => (call, sdp, from_user),
            other => panic!("{}: expected Incoming, got {other:?}", self.name),
        }
    }

    async fn ended(&mut self, call: CallKey) -> (EndReason, Option<u16>) {
        match self.next().await {
            SipEvent::Ended {
                call: c,
                reason,
                code,
                ..
            } if c == call => (reason, code),
            other => panic!("{}: expected Ended for {call}, got {other:?}", self.name),
        }
    }

    async fn assert_quiet(&mut self) {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), self.rx.recv()).await
        {
            panic!("{}: unexpected event {ev:?}", self.name);
        }
    }
}

/// A calls B, B rings and answers; returns both call keys once both sides are confirmed.
async fn establish(a: &mut Peer, b: &mut Peer) -> (CallKey, CallKey) {
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    let (cb, sdp, from_user) = b.incoming().await;
    assert_eq!(sdp.as_deref(), Some(OFFER));
    assert_eq!(from_user, "webphone");
    b.ua.ringing(cb);
    match a.next().await {
        SipEvent::Progress { call, code, .. } => {
            assert_eq!(call, ca);
            assert_eq!(code, 180);
        }
        other => panic!("A: expected Progress, got {other:?}"),
    }
    b.ua.answer(cb, ANSWER.into());
    match a.next().await {
        SipEvent::Answered { call, sdp } => {
            assert_eq!(call, ca);
            assert_eq!(sdp.as_deref(), Some(ANSWER));
        }
        other => panic!("A: expected Answered, got {other:?}"),
    }
    // B learns the ACK arrived.
    match b.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, cb),
        other => panic!("B: expected Answered (ACK), got {other:?}"),
    }
    (ca, cb)
}

async fn caller_hangs_up(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await, (EndReason::LocalHangup, None));
    assert_eq!(b.ended(cb).await.0, EndReason::RemoteHangup);
    a.assert_quiet().await;
    b.assert_quiet().await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn callee_hangs_up(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    b.ua.hangup(cb);
    assert_eq!(b.ended(cb).await.0, EndReason::LocalHangup);
    assert_eq!(a.ended(ca).await.0, EndReason::RemoteHangup);
    a.assert_quiet().await;
    b.assert_quiet().await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn cancel_before_answer(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    let (cb, _, _) = b.incoming().await;
    b.ua.ringing(cb);
    assert!(matches!(
        a.next().await,
        SipEvent::Progress { code: 180, .. }
    ));
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await, (EndReason::LocalCancel, Some(487)));
    assert_eq!(b.ended(cb).await, (EndReason::RemoteCancel, Some(487)));
    // Answering the cancelled call must not resurrect it.
    b.ua.answer(cb, ANSWER.into());
    a.assert_quiet().await;
    b.assert_quiet().await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn cancel_before_any_provisional(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await, (EndReason::LocalCancel, Some(487)));
    // Over UDP the INVITE left at once, so B rings and the CANCEL waits for its 100 Trying
    // (RFC 3261 §9.1). Over TCP the hang-up usually comes while the connection is being
    // opened: then no INVITE goes out at all and B never rings.
    let rang = match tokio::time::timeout(Duration::from_secs(1), b.rx.recv()).await {
        Ok(Some(SipEvent::Incoming { call, .. })) => Some(call),
        Ok(Some(other)) => panic!("B: unexpected {other:?}"),
        _ => None,
    };
    match (t, rang) {
        (_, Some(cb)) => assert_eq!(b.ended(cb).await.0, EndReason::RemoteCancel),
        (Transport::Udp, None) => panic!("B: the INVITE over UDP never arrived"),
        (_, None) => {}
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn reject_busy(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    let (cb, _, _) = b.incoming().await;
    b.ua.reject(cb, 486);
    assert_eq!(b.ended(cb).await, (EndReason::LocalReject, Some(486)));
    assert_eq!(a.ended(ca).await, (EndReason::Rejected, Some(486)));
    a.assert_quiet().await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn decline_by_hangup(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    let (cb, _, _) = b.incoming().await;
    b.ua.ringing(cb);
    assert!(matches!(a.next().await, SipEvent::Progress { .. }));
    b.ua.hangup(cb);
    assert_eq!(b.ended(cb).await, (EndReason::LocalReject, Some(603)));
    assert_eq!(a.ended(ca).await, (EndReason::Rejected, Some(603)));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

fn options_request(b: SocketAddr, from: SocketAddr, transport: &str) -> String {
    format!(
        "OPTIONS sip:bob@{b} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {from};branch=z9hG4bK-opt-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{from}>;tag=probe1\r\n\
         To: <sip:bob@{b}>\r\n\
         Call-ID: options-probe-1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn check_options_reply(reply: &str) {
    assert!(reply.starts_with("SIP/2.0 200"), "reply: {reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(lower.contains("\r\nallow:"), "no Allow in {reply}");
    assert!(lower.contains("invite"), "Allow lacks INVITE: {reply}");
    assert!(
        lower.contains("\r\naccept: application/sdp"),
        "no Accept in {reply}"
    );
    assert!(lower.contains("call-id: options-probe-1"), "reply: {reply}");
}

#[tokio::test]
async fn udp_options_answered() {
    let mut b = Peer::start("B", Transport::Udp).await;
    let sock = tokio::net::UdpSocket::bind((LOOPBACK, 0))
        .await
        .expect("bind");
    let from = sock.local_addr().expect("addr");
    let req = options_request(b.ua.local_addr(), from, "UDP");
    sock.send_to(req.as_bytes(), b.ua.local_addr())
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .expect("recv");
    check_options_reply(&String::from_utf8_lossy(&buf[..n]));
    b.assert_quiet().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn tcp_options_answered() {
    let mut b = Peer::start("B", Transport::Tcp).await;
    let mut stream = tokio::net::TcpStream::connect(b.ua.local_addr())
        .await
        .expect("connect");
    let from = stream.local_addr().expect("addr");
    let req = options_request(b.ua.local_addr(), from, "TCP");
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    while !got.contains("\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "connection closed before reply: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    check_options_reply(&got);
    b.assert_quiet().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn malformed_targets_are_errors() {
    let a = Peer::start("A", Transport::Udp).await;
    for t in ["", "sip:", "bob@", "sip:bob@host:0", "sip:b@[::1", "a b c"] {
        assert!(
            matches!(
                a.ua.invite(t, OFFER.into()),
                Err(SipError::InvalidTarget { .. })
            ),
            "{t:?}"
        );
    }
    assert!(matches!(
        a.ua.invite("1002", OFFER.into()),
        Err(SipError::NoServer(_))
    ));
    assert!(matches!(
        a.ua.invite("sip:b@127.0.0.1", String::new()),
        Err(SipError::Unsupported(_))
    ));
    a.ua.shutdown().await;
}

#[tokio::test]
async fn unreachable_peer_fails_call() {
    // Nothing listens on this TCP port: the INVITE cannot be sent at all.
    let refused = webphone_interop::refused_tcp_port();
    let port = refused.port;
    let mut a = Peer::start("A", Transport::Tcp).await;
    let ca =
        a.ua.invite(&format!("sip:nobody@127.0.0.1:{port}"), OFFER.into())
            .expect("invite");
    // A refused TCP connection is a transport error: the call fails at once
    // (RFC 3261 §8.1.3.1), not after Timer B.
    match a.next_within(Duration::from_secs(5)).await {
        SipEvent::Ended { call, reason, .. } => {
            assert_eq!(call, ca);
            assert!(
                matches!(
                    reason,
                    EndReason::Failed | EndReason::Rejected | EndReason::Timeout
                ),
                "{reason:?}"
            );
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    a.ua.shutdown().await;
}

async fn outbound_proxy_routing(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    // B stands in for an outbound proxy: every request of A goes to it, whatever the
    // Request-URI says (RFC 3261 §8.1.2), with a loose-routing Route header.
    a.ua.set_account(webphone_sip::AccountConfig {
        server: Some("example.com".into()),
        proxy: Some(b.ua.local_addr().to_string()),
        username: "alice".into(),
        display_name: Some("Alice".into()),
        ..Default::default()
    });
    let ca = a.ua.invite("bob", OFFER.into()).expect("invite");
    let headers = match b.next().await {
        SipEvent::Incoming {
            call,
            from_user,
            from_display,
            from_uri,
            to_user,
            headers,
            ..
        } => {
            assert_eq!(from_user, "alice");
            assert_eq!(from_display.as_deref(), Some("Alice"));
            assert_eq!(from_uri, "sip:alice@example.com");
            assert_eq!(to_user, "bob");
            b.ua.answer(call, ANSWER.into());
            headers
        }
        other => panic!("B: expected Incoming, got {other:?}"),
    };
    let route = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Route"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .expect("Route header");
    assert!(route.contains(&b.ua.local_addr().to_string()), "{route}");
    assert!(route.contains(";lr"), "{route}");
    assert!(matches!(a.next().await, SipEvent::Answered { .. }));
    assert!(matches!(b.next().await, SipEvent::Answered { .. }));
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await.0, EndReason::LocalHangup);
    assert!(matches!(
        b.next().await,
        SipEvent::Ended {
            reason: EndReason::RemoteHangup,
            ..
        }
    ));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        mod udp {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(Transport::Udp).await })*
        }
        mod tcp {
            use super::*;
            $(#[tokio::test] async fn $name() { super::$name(Transport::Tcp).await })*
        }
    };
}

both_transports!(
    caller_hangs_up,
    callee_hangs_up,
    cancel_before_answer,
    cancel_before_any_provisional,
    reject_busy,
    decline_by_hangup,
    outbound_proxy_routing,
);

/// A hang-up while the connection to a TLS next hop is still being opened (the far end
/// accepts TCP and never answers the handshake) ends the call at once with 487, as an
/// answered CANCEL would (RFC 3261 §9.1), instead of when the connection attempt gives up.
#[tokio::test]
async fn hangup_while_the_next_hop_is_being_connected_ends_at_once_and_sends_nothing() {
    let mut a = Peer::start("A", Transport::Udp).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:bob@{};transport=tls", listener.local_addr().unwrap());
    let ca = a.ua.invite(&target, OFFER.into()).expect("invite");
    let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("a TCP connection for the TLS handshake")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await, (EndReason::LocalCancel, Some(487)));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the call ended only after {:?}",
        t0.elapsed()
    );
    a.assert_quiet().await;
    // What arrived is the TLS ClientHello (record type 22) and nothing after it.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), conn.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.first(), Some(&22u8), "a TLS handshake record first");
    a.ua.shutdown().await;
}
