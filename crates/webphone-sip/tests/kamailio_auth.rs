//! Against a real Kamailio 5.6 (tests/interop harness): digest with `algorithm=SHA-256`
//! (RFC 8760; `modparam("auth", "algorithm", "SHA-256")` via the `AUTH_SHA256` define) for
//! REGISTER (401) and INVITE (407), and registration over IPv6 (RFC 5118) with Kamailio
//! listening on `[::1]` (`WITH_IPV6`).
//!
//! Skips loudly without kamailio/kamcmd; fails instead when CI=true.
#![allow(clippy::unwrap_used)]
// The peers run one test at a time: the harness's serial lock is held across awaits.
#![allow(clippy::await_holding_lock)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use webphone_interop::{Kamailio, KamailioOpts, TestDir};
use webphone_sip::{
    AccountConfig, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .with_test_writer()
        .try_init();
}

async fn phone(bind: IpAddr, server: String) -> (SipUa, UnboundedReceiver<SipEvent>) {
    init_tracing();
    let (ua, rx) = SipUa::start(SipConfig {
        bind_ip: bind,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-kamailio-auth-test".into(),
    })
    .await
    .unwrap();
    ua.set_account(AccountConfig {
        server: Some(server),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 300,
        ..Default::default()
    });
    (ua, rx)
}

async fn next(rx: &mut UnboundedReceiver<SipEvent>) -> SipEvent {
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(SipEvent::Trace { .. })) => continue,
            Ok(Some(ev)) => return ev,
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no event within {WAIT:?}"),
        }
    }
}

async fn registered(rx: &mut UnboundedReceiver<SipEvent>) {
    loop {
        match next(rx).await {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(RegistrationState::Registered { .. }) => return,
            other => panic!("expected Registered, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_sha256_challenges_register_and_invite_answered() {
    if !webphone_interop::require_tools("kamailio sha-256", &["kamailio", "kamcmd"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-kamailio-sha256");
    let mut k = Kamailio::start_with_defines(dir.path(), KamailioOpts::default(), &["AUTH_SHA256"]);
    let (ua, mut rx) = phone(IpAddr::V4(Ipv4Addr::LOCALHOST), k.addr()).await;
    ua.set_trace(true);
    ua.register();
    let mut traces = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SipEvent::Trace { text, .. } => traces.push(text),
            SipEvent::Registration(RegistrationState::Registering) => {}
            SipEvent::Registration(RegistrationState::Registered { .. }) => break,
            other => panic!("expected Registered, got {other:?}\n{}", k.log()),
        }
    }
    k.wait_lines(&["AUTHORIZED REGISTER auth=1001"], 1, WAIT);
    assert!(
        traces
            .iter()
            .any(|t| t.starts_with("SIP/2.0 401") && t.contains("algorithm=SHA-256")),
        "Kamailio challenged with SHA-256: {traces:#?}"
    );
    assert!(
        traces
            .iter()
            .any(|t| t.starts_with("REGISTER") && t.contains("algorithm=SHA-256")),
        "answered with SHA-256"
    );
    // INVITE: 407 SHA-256 answered; 1009 is unknown, so after authentication the
    // proxy's location lookup refuses it (404/480), which proves the INVITE got through.
    let call = ua.invite("1009", OFFER.into()).unwrap();
    loop {
        match next(&mut rx).await {
            SipEvent::Ended {
                call: c,
                reason: EndReason::Rejected,
                code: Some(code),
                ..
            } if c == call => {
                assert!(
                    code != 407 && code != 403,
                    "auth refused: {code}\n{}",
                    k.log()
                );
                break;
            }
            SipEvent::Ended { .. } => panic!("unexpected end\n{}", k.log()),
            _ => {}
        }
    }
    k.wait_lines(&["AUTHORIZED INVITE auth=1001"], 1, WAIT);
    ua.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_on_ipv6_loopback_registers_over_udp6() {
    if !webphone_interop::require_tools("kamailio ipv6", &["kamailio", "kamcmd"]) {
        return;
    }
    if !webphone_interop::require_ipv6_loopback("kamailio ipv6") {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-kamailio-ipv6");
    let mut k = Kamailio::start_with_defines(dir.path(), KamailioOpts::default(), &["WITH_IPV6"]);
    let server = format!("[::1]:{}", k.port());
    let (ua, mut rx) = phone(IpAddr::V6(Ipv6Addr::LOCALHOST), server).await;
    assert!(ua.local_addr().is_ipv6());
    ua.register();
    registered(&mut rx).await;
    k.wait_lines(&["REGISTERED 1001", "from udp:::1:"], 1, WAIT);
    let contacts = k.wait_registered("1001", WAIT);
    assert!(
        contacts.iter().any(|c| c.contains("[::1]")),
        "contact carries the IPv6 literal in brackets: {contacts:?}"
    );
    ua.unregister();
    assert_eq!(
        next(&mut rx).await,
        SipEvent::Registration(RegistrationState::Unregistered)
    );
    ua.shutdown().await;
}
