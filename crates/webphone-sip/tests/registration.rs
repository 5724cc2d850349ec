//! Registration against a scripted registrar on a real UDP socket: digest with `qop=auth`
//! (RFC 2617 §3.2.2), refresh before expiry, back-off, Contact correction from
//! `received`/`rport` (RFC 3581), realm check, unregister.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{
    AccountConfig, RegistrationState, RportMode, SipConfig, SipEvent, SipUa, Transport,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const REALM: &str = "fake.realm";
const PASSWORD: &str = "s3cret";

#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    call_id: String,
    cseq: u32,
    expires: Option<u32>,
    contact: String,
    from: String,
    auth: Option<String>,
    /// The top Via as received.
    via: String,
}

#[derive(Clone)]
struct Registrar {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Script {
    /// Lifetime granted in the 200 (Contact `expires`).
    grant: u32,
    /// `received` to report in the Via of responses (default: the real source IP).
    received: Option<IpAddr>,
}

impl Registrar {
    async fn start(script: Script) -> Registrar {
        let sock = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
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
                let reply = respond(&req, src, &script, &log);
                let _ = sock.send_to(reply.as_bytes(), src).await;
            }
        });
        Registrar { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn respond(req: &Request, src: SocketAddr, script: &Script, log: &Mutex<Vec<Seen>>) -> String {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value().to_string())
    };
    let auth_raw = req.headers.iter().find_map(|h| match h {
        Header::Authorization(a) => Some(a.clone()),
        _ => None,
    });
    let contact = header("Contact").unwrap_or_default();
    let expires = header("Expires").and_then(|e| e.trim().parse().ok());
    log.lock().expect("lock").push(Seen {
        at: Instant::now(),
        call_id: header("Call-ID").unwrap_or_default(),
        cseq: req
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or(0),
        expires,
        contact: contact.clone(),
        from: header("From").unwrap_or_default(),
        auth: auth_raw.as_ref().map(|a| a.value().to_string()),
        via: header("Via").unwrap_or_default(),
    });
    let received = script.received.unwrap_or(src.ip());
    let via = header("Via").unwrap_or_default();
    let via = format!(
        "{};received={received};rport={}",
        via.replace(";rport", ""),
        src.port()
    );
    let base = format!(
        "Via: {via}\r\nFrom: {}\r\nTo: {};tag=reg1\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        header("From").unwrap_or_default(),
        header("To").unwrap_or_default(),
        header("Call-ID").unwrap_or_default(),
        header("CSeq").unwrap_or_default(),
    );
    let Some(auth) = auth_raw else {
        return format!(
            "SIP/2.0 401 Unauthorized\r\n{base}WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"n0nce42\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
        );
    };
    let ok = rsipstack::sip::typed::Authorization::parse(auth.value())
        .map(|t| t.realm == REALM && verify_digest(&t, PASSWORD, &Method::Register, auth.value()))
        .unwrap_or(false);
    if !ok {
        return format!("SIP/2.0 403 Forbidden\r\n{base}Content-Length: 0\r\n\r\n");
    }
    let granted = if expires == Some(0) { 0 } else { script.grant };
    format!(
        "SIP/2.0 200 OK\r\n{base}Contact: {contact};expires={granted}\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn ua(
    reg: &Registrar,
    password: &str,
    realm: Option<&str>,
) -> (SipUa, UnboundedReceiver<SipEvent>) {
    let (ua, rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-test".into(),
    })
    .await
    .expect("start");
    ua.set_account(AccountConfig {
        server: Some(reg.addr.to_string()),
        username: "alice".into(),
        auth_username: Some("alice-auth".into()),
        password: password.into(),
        display_name: Some("Alice \"A\" Liddell".into()),
        realm: realm.map(String::from),
        register_expires: 300,
        ..Default::default()
    });
    (ua, rx)
}

async fn next(rx: &mut UnboundedReceiver<SipEvent>) -> SipEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}

#[tokio::test]
async fn digest_qop_auth_refresh_and_unregister() {
    let reg = Registrar::start(Script {
        grant: 4,
        received: None,
    })
    .await;
    let (ua, mut rx) = ua(&reg, PASSWORD, None).await;
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registered { expires: 4 })
    );
    let t0 = Instant::now();
    // Granted 4 s: refreshed every 2 s, silently.
    if let Ok(ev) = tokio::time::timeout(Duration::from_millis(4500), rx.recv()).await {
        panic!("refresh must be silent, got {ev:?}");
    }
    ua.unregister();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Unregistered)
    );

    let seen = reg.seen();
    let authorized: Vec<&Seen> = seen.iter().filter(|s| s.auth.is_some()).collect();
    // initial + at least two refreshes + unregister
    assert!(authorized.len() >= 4, "{seen:#?}");
    let refreshes = authorized
        .iter()
        .filter(|s| s.at > t0 && s.expires == Some(300))
        .count();
    assert!(refreshes >= 2, "{seen:#?}");
    assert_eq!(authorized.last().and_then(|s| s.expires), Some(0));
    // One Call-ID, strictly increasing CSeq (RFC 3261 §10.2).
    assert!(seen.iter().all(|s| s.call_id == seen[0].call_id));
    assert!(seen.windows(2).all(|w| w[1].cseq > w[0].cseq), "{seen:#?}");
    for s in &authorized {
        let a = s.auth.as_deref().unwrap_or_default();
        assert!(a.contains("username=\"alice-auth\""), "{a}");
        // RFC 2617 §3.2.2 writes qop unquoted; rsipstack quotes it, which registrars accept.
        assert!(a.contains("qop=auth") || a.contains("qop=\"auth\""), "{a}");
        assert!(a.contains("nc=") && a.contains("cnonce="), "{a}");
        assert!(!a.contains(PASSWORD));
        assert!(
            s.from.contains("\"Alice \\\"A\\\" Liddell\" <sip:alice@"),
            "{}",
            s.from
        );
        assert!(
            s.contact
                .contains(&format!("sip:alice@{}", ua.local_addr())),
            "{}",
            s.contact
        );
    }
    ua.shutdown().await;
}

#[tokio::test]
async fn wrong_password_fails_then_retries_later() {
    let reg = Registrar::start(Script {
        grant: 60,
        received: None,
    })
    .await;
    let (ua, mut rx) = ua(&reg, "wrong", None).await;
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    match next(&mut rx).await {
        SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
            assert_eq!(code, 403);
            assert_eq!(reason, "Forbidden");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    // One challenge, one answer, no hammering.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reg.seen().len(), 2);
    ua.shutdown().await;
}

#[tokio::test]
async fn realm_mismatch_fails() {
    let reg = Registrar::start(Script {
        grant: 60,
        received: None,
    })
    .await;
    let (ua, mut rx) = ua(&reg, PASSWORD, Some("expected.realm")).await;
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    match next(&mut rx).await {
        SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
            assert_eq!(code, 401);
            assert!(reason.contains("fake.realm"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    // The credentials were not sent to the wrong realm.
    assert!(reg.seen().iter().all(|s| s.auth.is_none()));
    ua.shutdown().await;
}

#[tokio::test]
async fn contact_corrected_from_received() {
    // The registrar claims to see us at 127.0.0.2 (a NAT, RFC 3581 §4).
    let reg = Registrar::start(Script {
        grant: 60,
        received: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
    })
    .await;
    let (ua, mut rx) = ua(&reg, PASSWORD, None).await;
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registered { expires: 60 })
    );
    let seen = reg.seen();
    let last = seen.last().expect("requests");
    let public = format!("sip:alice@127.0.0.2:{}", ua.local_addr().port());
    assert!(last.contact.contains(&public), "{seen:#?}");
    assert!(
        seen.iter().any(|s| s
            .contact
            .contains(&format!("sip:alice@{}", ua.local_addr()))),
        "{seen:#?}"
    );
    ua.shutdown().await;
    // Shutdown removed the corrected binding.
    let seen = reg.seen();
    let last = seen.last().expect("requests");
    assert_eq!(last.expires, Some(0));
    assert!(last.contact.contains(&public));
}

/// `use_rport` 0 and 9 behind the same "NAT" as [`contact_corrected_from_received`]: the
/// registrar reports 127.0.0.2, yet the Contact stays our own address. With 0 our Via
/// asks for no `rport` (RFC 3581 §3); with 9 it does.
async fn contact_kept_with(mode: RportMode) -> Vec<Seen> {
    let reg = Registrar::start(Script {
        grant: 60,
        received: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
    })
    .await;
    let (ua, mut rx) = ua(&reg, PASSWORD, None).await;
    ua.set_rport_mode(mode);
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registered { expires: 60 })
    );
    let seen = reg.seen();
    let own = format!("sip:alice@{}", ua.local_addr());
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.contact.contains(&own)),
        "{seen:#?}"
    );
    ua.shutdown().await;
    seen
}

#[tokio::test]
async fn use_rport_0_asks_for_no_rport_and_keeps_the_contact() {
    let seen = contact_kept_with(RportMode::Off).await;
    assert!(
        seen.iter()
            .all(|s| !s.via.to_ascii_lowercase().contains("rport")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn use_rport_9_asks_for_rport_but_keeps_the_contact() {
    let seen = contact_kept_with(RportMode::Ignore).await;
    assert!(seen.iter().all(|s| s.via.contains(";rport")), "{seen:#?}");
}

#[tokio::test]
async fn unreachable_registrar_reports_failure() {
    // A UDP port where nothing answers: Timer F (32 s) would be slow, so only check
    // that Registering is reported and nothing else within a second.
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let reg = Registrar {
        addr: sock.local_addr().expect("addr"),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let (ua, mut rx) = ua(&reg, PASSWORD, None).await;
    ua.register();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    assert!(tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .is_err());
    ua.shutdown().await;
}
