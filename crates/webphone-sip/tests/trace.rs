//! SIP message traces (`SipUa::set_trace`, `SipEvent::Trace`) and the Call-ID of calls
//! (`SipUa::call_id`), with real sockets on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rsipstack::sip::{Header, Method, Request};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{
    AccountConfig, CallKey, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=b 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";

/// One traced message.
#[derive(Debug, Clone)]
struct Traced {
    outgoing: bool,
    remote: SocketAddr,
    text: String,
}

impl Traced {
    fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    fn is_request(&self, method: &str) -> bool {
        self.start_line().starts_with(&format!("{method} "))
    }

    fn is_response(&self, code: u16, method: &str) -> bool {
        self.start_line().starts_with(&format!("SIP/2.0 {code} "))
            && self
                .text
                .lines()
                .any(|l| l.starts_with("CSeq:") && l.trim_end().ends_with(method))
    }
}

struct Peer {
    ua: SipUa,
    rx: UnboundedReceiver<SipEvent>,
    name: &'static str,
    traces: Vec<Traced>,
}

impl Peer {
    async fn start(name: &'static str, transport: Transport) -> Peer {
        let cfg = SipConfig {
            bind_ip: LOOPBACK,
            port: 0,
            transport,
            user_agent: format!("webphone-test-{name}"),
        };
        let (ua, rx) = SipUa::start(cfg).await.expect("user agent starts");
        Peer {
            ua,
            rx,
            name,
            traces: Vec::new(),
        }
    }

    /// Next event that is not a trace; traces are collected in `self.traces`.
    async fn next(&mut self) -> SipEvent {
        loop {
            let ev = match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => panic!("{}: event channel closed", self.name),
                Err(_) => panic!("{}: no event within {WAIT:?}", self.name),
            };
            match ev {
                SipEvent::Trace {
                    outgoing,
                    remote,
                    text,
                } => self.traces.push(Traced {
                    outgoing,
                    remote,
                    text,
                }),
                other => return other,
            }
        }
    }

    /// Collect whatever arrives within `wait`.
    async fn drain(&mut self, wait: Duration) -> Vec<SipEvent> {
        let mut evs = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(wait, self.rx.recv()).await {
            evs.push(ev);
        }
        evs
    }

    fn find(&self, outgoing: bool, pred: impl Fn(&Traced) -> bool) -> Option<&Traced> {
        self.traces
            .iter()
            .find(|t| t.outgoing == outgoing && pred(t))
    }
}

fn call_id_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim().to_string())
    })
}

async fn invite_and_200_traced_both_ways(t: Transport) {
    let mut a = Peer::start("A", t).await;
    let mut b = Peer::start("B", t).await;
    assert!(!a.ua.trace_enabled());
    a.ua.set_trace(true);
    b.ua.set_trace(true);
    assert!(a.ua.trace_enabled());

    let target = format!("sip:bob@{}", b.ua.local_addr());
    let ca = a.ua.invite(&target, OFFER.into()).expect("invite");
    let call_id =
        a.ua.call_id(ca)
            .expect("Call-ID known as soon as invite returns");
    assert!(!call_id.is_empty());
    assert_eq!(a.ua.call_id(CallKey(ca.0 + 1000)), None);

    let cb = match b.next().await {
        SipEvent::Incoming {
            call, sip_call_id, ..
        } => {
            assert_eq!(sip_call_id, call_id, "callee sees the caller's Call-ID");
            call
        }
        other => panic!("B: expected Incoming, got {other:?}"),
    };
    assert_eq!(b.ua.call_id(cb).as_deref(), Some(call_id.as_str()));

    b.ua.answer(cb, ANSWER.into());
    match a.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, ca),
        other => panic!("A: expected Answered, got {other:?}"),
    }
    match b.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, cb),
        other => panic!("B: expected Answered (ACK), got {other:?}"),
    }
    assert_eq!(a.ua.call_id(ca).as_deref(), Some(call_id.as_str()));

    let same_call = |tr: &Traced| call_id_of(&tr.text).as_deref() == Some(call_id.as_str());
    // Caller: INVITE out, 200 in, ACK out.
    let invite_out = a
        .find(true, |tr| tr.is_request("INVITE") && same_call(tr))
        .unwrap_or_else(|| panic!("A: no outgoing INVITE trace in {:#?}", a.traces))
        .clone();
    assert!(invite_out.text.contains(OFFER), "raw text with body");
    let ok_in = a
        .find(false, |tr| tr.is_response(200, "INVITE") && same_call(tr))
        .unwrap_or_else(|| panic!("A: no incoming 200 trace in {:#?}", a.traces))
        .clone();
    assert!(ok_in.text.contains(ANSWER));
    assert!(a
        .find(true, |tr| tr.is_request("ACK") && same_call(tr))
        .is_some());
    // Callee: INVITE in, 200 out.
    let invite_in = b
        .find(false, |tr| tr.is_request("INVITE") && same_call(tr))
        .unwrap_or_else(|| panic!("B: no incoming INVITE trace in {:#?}", b.traces))
        .clone();
    let ok_out = b
        .find(true, |tr| tr.is_response(200, "INVITE") && same_call(tr))
        .unwrap_or_else(|| panic!("B: no outgoing 200 trace in {:#?}", b.traces))
        .clone();
    assert!(b.find(true, |tr| tr.is_response(100, "INVITE")).is_some());

    // Addresses: requests go to the peer's listening address. Over UDP every message
    // leaves from the listening socket; over TCP the caller's side of the connection is
    // an ephemeral port.
    assert_eq!(invite_out.remote, b.ua.local_addr());
    assert_eq!(ok_in.remote.ip(), LOOPBACK);
    assert_eq!(invite_in.remote.ip(), LOOPBACK);
    assert_eq!(ok_out.remote.ip(), LOOPBACK);
    if t == Transport::Udp {
        assert_eq!(ok_in.remote, b.ua.local_addr());
        assert_eq!(invite_in.remote, a.ua.local_addr());
        assert_eq!(ok_out.remote, a.ua.local_addr());
    }

    // Off again: the BYE and its 200 are not traced; the Call-ID is forgotten with the call.
    a.ua.set_trace(false);
    b.ua.set_trace(false);
    a.ua.hangup(ca);
    let evs = a.drain(Duration::from_millis(500)).await;
    assert!(
        matches!(evs.as_slice(), [SipEvent::Ended { call, reason: EndReason::LocalHangup, .. }] if *call == ca),
        "A: {evs:?}"
    );
    let evs = b.drain(Duration::from_millis(500)).await;
    assert!(
        matches!(evs.as_slice(), [SipEvent::Ended { call, reason: EndReason::RemoteHangup, .. }] if *call == cb),
        "B: {evs:?}"
    );
    assert_eq!(a.ua.call_id(ca), None);
    assert_eq!(b.ua.call_id(cb), None);
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn udp_invite_and_200_traced_both_ways_with_call_id() {
    invite_and_200_traced_both_ways(Transport::Udp).await;
}

#[tokio::test]
async fn tcp_invite_and_200_traced_both_ways_with_call_id() {
    invite_and_200_traced_both_ways(Transport::Tcp).await;
}

#[tokio::test]
async fn no_trace_events_by_default() {
    let mut a = Peer::start("A", Transport::Udp).await;
    let mut b = Peer::start("B", Transport::Udp).await;
    let target = format!("sip:bob@{}", b.ua.local_addr());
    let ca = a.ua.invite(&target, OFFER.into()).expect("invite");
    let cb = match b.rx.recv().await {
        Some(SipEvent::Incoming { call, .. }) => call,
        other => panic!("B: expected Incoming first, got {other:?}"),
    };
    b.ua.reject(cb, 486);
    match a.rx.recv().await {
        Some(SipEvent::Ended { call, code, .. }) => {
            assert_eq!(call, ca);
            assert_eq!(code, Some(486));
        }
        other => panic!("A: expected Ended first, got {other:?}"),
    }
    let evs = b.drain(Duration::from_millis(300)).await;
    assert!(
        evs.iter().all(|e| !matches!(e, SipEvent::Trace { .. })),
        "{evs:?}"
    );
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

/// A registrar that challenges every REGISTER without credentials (401, `qop=auth`) and
/// accepts any with credentials; it reports the Authorization values it received.
async fn challenging_registrar() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        loop {
            let Ok((n, src)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let Ok(req) = Request::try_from(text.as_str()) else {
                continue;
            };
            if req.method != Method::Register {
                continue;
            }
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name().eq_ignore_ascii_case(name))
                    .map(|h| h.value().to_string())
                    .unwrap_or_default()
            };
            let via = format!(
                "{};received={};rport={}",
                header("Via").replace(";rport", ""),
                src.ip(),
                src.port()
            );
            let base = format!(
                "Via: {via}\r\nFrom: {}\r\nTo: {};tag=reg1\r\nCall-ID: {}\r\nCSeq: {}\r\n",
                header("From"),
                header("To"),
                header("Call-ID"),
                header("CSeq"),
            );
            let auth = req.headers.iter().find_map(|h| match h {
                Header::Authorization(a) => Some(a.value().to_string()),
                _ => None,
            });
            let reply = match auth {
                None => format!(
                    "SIP/2.0 401 Unauthorized\r\n{base}WWW-Authenticate: Digest realm=\"trace.test\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
                ),
                Some(a) => {
                    let _ = tx.send(a);
                    format!(
                        "SIP/2.0 200 OK\r\n{base}Contact: {};expires=300\r\nContent-Length: 0\r\n\r\n",
                        header("Contact")
                    )
                }
            };
            let _ = sock.send_to(reply.as_bytes(), src).await;
        }
    });
    (addr, rx)
}

/// The value of digest parameter `name` in an Authorization value.
fn digest_param(auth: &str, name: &str) -> String {
    auth.split(',')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim();
            let k = k.rsplit(' ').next().unwrap_or(k);
            k.eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in {auth}"))
}

#[tokio::test]
async fn traced_register_has_digest_response_redacted() {
    let (registrar, mut seen) = challenging_registrar().await;
    let mut p = Peer::start("A", Transport::Udp).await;
    p.ua.set_trace(true);
    p.ua.set_account(AccountConfig {
        server: Some(registrar.to_string()),
        username: "alice".into(),
        password: "s3cret".into(),
        register_expires: 300,
        ..Default::default()
    });
    p.ua.register();
    assert_eq!(
        p.next().await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    assert_eq!(
        p.next().await,
        SipEvent::Registration(RegistrationState::Registered { expires: 300 })
    );
    let wire = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("registrar saw credentials")
        .expect("registrar alive");
    let response = digest_param(&wire, "response");
    let cnonce = digest_param(&wire, "cnonce");
    assert_eq!(response.len(), 32, "MD5 digest response: {wire}");

    let traced = p
        .find(true, |tr| {
            tr.is_request("REGISTER") && tr.text.contains("Authorization:")
        })
        .unwrap_or_else(|| panic!("no authorized REGISTER traced in {:#?}", p.traces))
        .clone();
    assert_eq!(traced.remote, registrar);
    assert!(
        traced.text.contains("response=\"<redacted>\""),
        "{}",
        traced.text
    );
    assert!(
        traced.text.contains("cnonce=\"<redacted>\""),
        "{}",
        traced.text
    );
    assert!(!traced.text.contains(&response), "{}", traced.text);
    assert!(!traced.text.contains(&cnonce), "{}", traced.text);
    assert!(traced.text.contains("username=\"alice\""));
    assert!(!traced.text.contains("s3cret"));
    // The challenge itself was traced as received.
    assert!(p
        .find(false, |tr| tr.is_response(401, "REGISTER"))
        .is_some());
    p.ua.shutdown().await;
}
