//! MESSAGE (RFC 3428), SUBSCRIBE and PUBLISH through the Kamailio of the interop harness:
//! two registered user agents (1001, 1002), digest answered for the MESSAGE (407).
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use webphone_interop::kamailio::Kamailio;
use webphone_interop::util::TestDir;
use webphone_sip::{AccountConfig, RegistrationState, SipConfig, SipEvent, SipUa, Transport};

const WAIT: Duration = Duration::from_secs(10);

struct Phone {
    ua: SipUa,
    rx: UnboundedReceiver<SipEvent>,
    name: &'static str,
}

impl Phone {
    async fn registered(user: &'static str, server: &str) -> Phone {
        let (ua, rx) = SipUa::start(SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            transport: Transport::Udp,
            user_agent: format!("webphone-test-{user}"),
        })
        .await
        .unwrap();
        ua.set_account(AccountConfig {
            server: Some(server.to_string()),
            username: user.into(),
            password: format!("pass{user}"),
            register_expires: 60,
            ..Default::default()
        });
        let mut p = Phone { ua, rx, name: user };
        p.ua.register();
        loop {
            match p.next().await {
                SipEvent::Registration(RegistrationState::Registered { .. }) => break,
                SipEvent::Registration(RegistrationState::Registering) => {}
                other => panic!("{user}: expected Registered, got {other:?}"),
            }
        }
        p
    }

    async fn next(&mut self) -> SipEvent {
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(SipEvent::Trace { .. })) => continue,
                Ok(Some(ev)) => return ev,
                Ok(None) => panic!("{}: channel closed", self.name),
                Err(_) => panic!("{}: no event within {WAIT:?}", self.name),
            }
        }
    }
}

#[tokio::test]
async fn message_through_kamailio_with_digest() {
    if !webphone_interop::require_tools(
        "message_through_kamailio_with_digest",
        &[webphone_interop::KAMAILIO, webphone_interop::KAMCMD],
    ) {
        return;
    }
    let dir = TestDir::new("kamailio-message");
    let k = Kamailio::start(dir.path());
    let server = k.addr();
    let mut a = Phone::registered("1001", &server).await;
    let mut b = Phone::registered("1002", &server).await;
    // To the AOR of 1002: Kamailio challenges (407), then routes by location.
    let key =
        a.ua.send_message("1002", "text/plain", "hi via proxy")
            .unwrap();
    match b.next().await {
        SipEvent::MessageReceived {
            from_user, body, ..
        } => {
            assert_eq!(from_user, "1001");
            assert_eq!(body, "hi via proxy");
        }
        other => panic!("1002: expected MessageReceived, got {other:?}\n{}", k.log()),
    }
    match a.next().await {
        SipEvent::MessageStatus { key: k2, code, .. } => assert_eq!((k2, code), (key, 200)),
        other => panic!("1001: expected MessageStatus, got {other:?}"),
    }
    // A user Kamailio does not know: 404 after the digest round.
    let key = a.ua.send_message("1099", "text/plain", "anyone?").unwrap();
    match a.next().await {
        SipEvent::MessageStatus { key: k2, code, .. } => {
            assert_eq!(k2, key);
            assert!(code == 404 || code == 480, "code {code}");
        }
        other => panic!("1001: expected MessageStatus, got {other:?}"),
    }
    // PUBLISH: the harness Kamailio has no presence server and says so.
    a.ua.publish_presence("<presence/>").unwrap();
    match a.next().await {
        SipEvent::PublishStatus { code, .. } => assert_eq!(code, 501),
        other => panic!("1001: expected PublishStatus, got {other:?}"),
    }
    // SUBSCRIBE to 1002 through Kamailio (record-routed): our UA is no notifier -> 405.
    let sub = a.ua.subscribe("1002", "presence", 600).unwrap();
    match a.next().await {
        SipEvent::SubscriptionFailed { sub: s, code } => assert_eq!((s, code), (sub, 405)),
        other => panic!("1001: expected SubscriptionFailed, got {other:?}"),
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}
