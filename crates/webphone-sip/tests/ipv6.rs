//! IPv6 (RFC 5118) between two user agents on `[::1]`: a direct call whose Request-URI,
//! Via and Contact carry bracketed IPv6 literals, answered and hung up; and a registration
//! of one UA at the other's address as `[::1]:port` (the UA only answers REGISTER with 405,
//! which proves the request went out over UDP6 to the bracketed literal).
//!
//! Skips loudly when the host has no `::1`; fails instead when CI=true.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv6Addr};

use support::{Peer, ANSWER, OFFER};
use webphone_sip::{
    AccountConfig, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
    TransportOptions,
};

const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

async fn peer(name: &'static str) -> Peer {
    support::init_tracing();
    let (ua, rx) = SipUa::start_with(
        SipConfig {
            bind_ip: V6,
            port: 0,
            transport: Transport::Udp,
            user_agent: format!("webphone-test-{name}"),
        },
        TransportOptions::default(),
    )
    .await
    .unwrap();
    Peer { ua, rx, name }
}

#[tokio::test]
async fn call_between_two_user_agents_on_ipv6_loopback() {
    if !webphone_interop::require_ipv6_loopback("ipv6 call") {
        return;
    }
    let mut a = peer("a6").await;
    let mut b = peer("b6").await;
    assert!(a.ua.local_addr().is_ipv6());
    let target = b.uri("bob");
    assert!(target.starts_with("sip:bob@[::1]:"), "{target}");
    b.ua.set_trace(true);
    let ca = a.ua.invite(&target, OFFER.into()).unwrap();
    let mut invite_text = None;
    let (cb, remote) = loop {
        match b.rx.recv().await.unwrap() {
            SipEvent::Trace {
                outgoing: false,
                text,
                ..
            } if text.starts_with("INVITE ") => invite_text = Some(text),
            SipEvent::Incoming {
                call, remote_addr, ..
            } => break (call, remote_addr),
            SipEvent::Trace { .. } => {}
            other => panic!("expected Incoming, got {other:?}"),
        }
    };
    b.ua.set_trace(false);
    assert_eq!(remote.ip(), V6);
    let text = invite_text.unwrap();
    assert!(text.starts_with("INVITE sip:bob@[::1]:"), "{text}");
    let via = text.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(via.contains("SIP/2.0/UDP [::1]:"), "{via}");
    let contact = text.lines().find(|l| l.starts_with("Contact:")).unwrap();
    assert!(contact.contains("@[::1]:"), "{contact}");
    b.ua.answer(cb, ANSWER.into());
    match a.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, ca),
        other => panic!("expected Answered, got {other:?}"),
    }
    match b.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, cb),
        other => panic!("expected ACK, got {other:?}"),
    }
    a.ua.hangup(ca);
    match b.next().await {
        SipEvent::Ended {
            reason: EndReason::RemoteHangup,
            ..
        } => {}
        other => panic!("expected RemoteHangup, got {other:?}"),
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn register_to_a_bracketed_ipv6_server_address() {
    if !webphone_interop::require_ipv6_loopback("ipv6 register") {
        return;
    }
    let mut a = peer("reg6").await;
    let b = peer("srv6").await;
    a.ua.set_account(AccountConfig {
        server: Some(format!("[::1]:{}", b.ua.local_addr().port())),
        username: "alice".into(),
        register_expires: 60,
        ..Default::default()
    });
    a.ua.register();
    loop {
        match a.next().await {
            SipEvent::Registration(RegistrationState::Registering) => {}
            // A user agent is no registrar: 405 Method Not Allowed came back over UDP6.
            SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
                assert_eq!(code, 405, "{reason}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}
