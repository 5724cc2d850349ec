//! `SipUa::network_changed` between two user agents on loopback (no root needed: every
//! 127.0.0.0/8 address is local, so a user agent can "move" from 127.0.0.1 to 127.0.0.2):
//! after the move the re-INVITE carries the new address in Via and Contact (RFC 3261 §12.2:
//! a target refresh), the peer's answer reaches us there, and the peer's later requests
//! (BYE) follow the new Contact to the new listener. The namespace tests of
//! `tests/interop/tests/network_change.rs` do the same with real address removal.
// The interop bench's test lock (a std mutex) is held across awaits on purpose: it keeps the
// Kamailio tests of this binary one at a time.
#![allow(clippy::await_holding_lock)]

mod support;

use std::net::{IpAddr, Ipv4Addr};

use std::time::Duration;

use support::{establish, Peer, OFFER};
use webphone_interop::{Kamailio, KamailioOpts, TestDir};
use webphone_sip::{
    AccountConfig, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
    TransportOptions,
};

const MOVED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The messages `peer` sends until it reports `Reanswered`.
async fn sent_until_reanswered(peer: &mut Peer) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(support::WAIT, peer.rx.recv()).await {
            Ok(Some(SipEvent::Trace {
                outgoing: true,
                text,
                ..
            })) => out.push(text),
            Ok(Some(SipEvent::Reanswered { .. })) => return out,
            Ok(Some(_)) => {}
            other => panic!("{}: no Reanswered: {other:?}; sent {out:?}", peer.name),
        }
    }
}

async fn moved_call_follows_the_new_address(transport: Transport) {
    let mut a = Peer::start_with("alice", transport, TransportOptions::default()).await;
    let mut b = Peer::start_with("bob", transport, TransportOptions::default()).await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    let before = a.ua.local_addr();

    let now =
        a.ua.network_changed(MOVED)
            .await
            .expect("move to 127.0.0.2");
    assert_eq!(now.ip(), MOVED);
    assert_eq!(a.ua.local_addr(), now);
    // Same port when it is free on the new address.
    assert_eq!(now.port(), before.port());

    a.ua.set_trace(true);
    let offer = OFFER.replace("127.0.0.1", "127.0.0.2");
    a.ua.reinvite(ca, offer).expect("re-INVITE");
    match b.next().await {
        SipEvent::Reoffer { call, sdp } => {
            assert_eq!(call, cb);
            assert!(sdp.contains("c=IN IP4 127.0.0.2"), "{sdp}");
            b.ua.answer_reoffer(cb, support::ANSWER.into());
        }
        other => panic!("B: expected the re-INVITE, got {other:?}"),
    }
    // The 200 came back to the new address (Via).
    let reinvite = sent_until_reanswered(&mut a)
        .await
        .into_iter()
        .find(|t| t.starts_with("INVITE "))
        .unwrap_or_default();
    let new = format!("127.0.0.2:{}", now.port());
    assert!(
        reinvite.contains(&format!("Via: SIP/2.0/{transport} {new}"))
            || reinvite.contains(&format!("Via: SIP/2.0/{transport} {new};")),
        "Via names the new address: {reinvite}"
    );
    assert!(
        reinvite
            .lines()
            .any(|l| l.starts_with("Contact:") && l.contains(&new)),
        "Contact names the new address: {reinvite}"
    );

    // B's BYE goes to the refreshed remote target: our new listener.
    b.ua.hangup(cb);
    let seen = a
        .until("Ended", |e| matches!(e, SipEvent::Ended { .. }))
        .await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            SipEvent::Ended {
                reason: EndReason::RemoteHangup,
                ..
            }
        )),
        "A saw B's BYE: {seen:?}"
    );
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn udp_call_follows_the_moved_address() {
    moved_call_follows_the_new_address(Transport::Udp).await;
}

#[tokio::test]
async fn tcp_call_follows_the_moved_address() {
    moved_call_follows_the_new_address(Transport::Tcp).await;
}

#[tokio::test]
async fn network_changed_to_the_same_address_keeps_the_transport() {
    let a = Peer::start("alice").await;
    let before = a.ua.local_addr();
    let now = a.ua.network_changed(before.ip()).await.expect("no-op move");
    assert_eq!(now, before);
}

/// Waits for `Registered` (panics on `Failed` or silence).
async fn wait_registered(rx: &mut tokio::sync::mpsc::UnboundedReceiver<SipEvent>, name: &str) {
    loop {
        match tokio::time::timeout(support::WAIT, rx.recv()).await {
            Ok(Some(SipEvent::Registration(RegistrationState::Registered { .. }))) => return,
            Ok(Some(SipEvent::Registration(RegistrationState::Failed { code, reason }))) => {
                panic!("{name}: registration failed: {code} {reason}")
            }
            Ok(Some(_)) => {}
            other => panic!("{name}: not registered: {other:?}"),
        }
    }
}

/// Registers 1001 with Kamailio (TLS/WS/WSS listeners, its certificate trusted) over
/// `transport`, moves to 127.0.0.2 and checks the registrar: the new Contact registered over
/// a new connection, the old binding removed.
async fn registration_over_a_connection_follows_the_move(transport: Transport, name: &str) {
    if !webphone_interop::require_tools(name, &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    support::init_tracing();
    let dir = TestDir::new(name);
    let mut k = Kamailio::start_secure(dir.path(), KamailioOpts::default());
    let port = match transport {
        Transport::Tls => k.tls_port(),
        Transport::Ws => k.ws_port(),
        Transport::Wss => k.wss_port(),
        Transport::Udp | Transport::Tcp => k.port(),
    };
    let (ua, mut rx) = SipUa::start_with(
        SipConfig {
            bind_ip: support::LOOPBACK,
            port: 0,
            transport,
            user_agent: "webphone-netchange-test".into(),
        },
        TransportOptions {
            keepalive_interval: Duration::ZERO,
            tls_ca_file: Some(k.cert_path().to_path_buf()),
            ws_path: None,
            ws_keepalive_interval: None,
            ..Default::default()
        },
    )
    .await
    .expect("start");
    ua.set_account(AccountConfig {
        server: Some(format!("127.0.0.1:{port}")),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 300,
        ..Default::default()
    });
    ua.register();
    wait_registered(&mut rx, name).await;
    let proto = transport.param();
    let before = k
        .lines_with(&["REQ REGISTER", &format!("from {proto}:")])
        .len();

    let now = ua.network_changed(MOVED).await.expect("move");
    wait_registered(&mut rx, name).await;
    let contacts = k.contacts("1001");
    let new = format!("@127.0.0.2:{}", now.port());
    assert!(
        !contacts.is_empty() && contacts.iter().all(|c| c.contains(&new)),
        "{name}: only the new binding is left: {contacts:?}"
    );
    println!("{name}: contacts after the move: {contacts:?}");
    let after = k.lines_with(&["REQ REGISTER", &format!("from {proto}:")]);
    assert!(
        after.len() > before,
        "{name}: REGISTER again over {proto}: {after:?}"
    );
    ua.shutdown().await;
    k.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registration_follows_the_moved_address() {
    registration_over_a_connection_follows_the_move(Transport::Tls, "netchange_tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_registration_follows_the_moved_address() {
    registration_over_a_connection_follows_the_move(Transport::Wss, "netchange_wss").await;
}
