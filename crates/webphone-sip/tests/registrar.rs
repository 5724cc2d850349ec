//! Checks against a live registrar/proxy; skipped unless `WEBPHONE_TEST_REGISTRAR` is set.
//!
//! The registrar must know users 1001/pass1001 and 1002/pass1002 (realm = its address),
//! challenge REGISTER with 401 and INVITE with 407, and route calls by location, like the
//! Kamailio configuration of the interop tests. Example:
//!
//! ```text
//! kamailio -DD -E -f tests/interop/peers/kamailio.cfg -Y /tmp/k -A SIP_PORT=35060 \
//!     -A 'CTL_SOCK="unix:/tmp/k/ctl"' -A MAX_EXPIRES=20 -A DEFAULT_EXPIRES=20
//! WEBPHONE_TEST_REGISTRAR=127.0.0.1:35060 cargo test -p webphone-sip --test registrar \
//!     -- --ignored --nocapture --test-threads=1
//! ```
//!
//! With `MAX_EXPIRES=20` the refresh test also sees a refresh before expiry.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{
    AccountConfig, CallKey, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=b 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";

fn registrar() -> Option<String> {
    std::env::var("WEBPHONE_TEST_REGISTRAR")
        .ok()
        .filter(|s| !s.is_empty())
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

struct Phone {
    ua: SipUa,
    rx: UnboundedReceiver<SipEvent>,
    name: String,
}

impl Phone {
    async fn start(user: &str, password: &str, server: &str, t: Transport) -> Phone {
        init_tracing();
        let (ua, rx) = SipUa::start(SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            transport: t,
            user_agent: format!("webphone-test-{user}"),
        })
        .await
        .expect("start");
        ua.set_account(AccountConfig {
            server: Some(server.to_string()),
            username: user.into(),
            password: password.into(),
            display_name: Some(format!("User {user}")),
            register_expires: 60,
            ..Default::default()
        });
        Phone {
            ua,
            rx,
            name: user.into(),
        }
    }

    async fn next_within(&mut self, wait: Duration) -> SipEvent {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(ev)) => {
                eprintln!("{}: {ev:?}", self.name);
                ev
            }
            Ok(None) => panic!("{}: channel closed", self.name),
            Err(_) => panic!("{}: no event within {wait:?}", self.name),
        }
    }

    async fn next(&mut self) -> SipEvent {
        self.next_within(WAIT).await
    }

    async fn register(&mut self) -> u32 {
        self.ua.register();
        assert_eq!(
            self.next().await,
            SipEvent::Registration(RegistrationState::Registering)
        );
        match self.next().await {
            SipEvent::Registration(RegistrationState::Registered { expires }) => expires,
            other => panic!("{}: expected Registered, got {other:?}", self.name),
        }
    }

    async fn unregister(&mut self) {
        self.ua.unregister();
        assert_eq!(
            self.next().await,
            SipEvent::Registration(RegistrationState::Unregistered)
        );
    }

    async fn incoming(&mut self) -> CallKey {
        match self.next().await {
            SipEvent::Incoming {
                call, from_user, ..
            } => {
                assert_eq!(from_user.len(), 4);
                call
            }
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
            other => panic!("{}: expected Ended, got {other:?}", self.name),
        }
    }
}

async fn register_call_cancel_reject(t: Transport) {
    let Some(server) = registrar() else {
        eprintln!("WEBPHONE_TEST_REGISTRAR not set; skipping");
        return;
    };
    let mut a = Phone::start("1001", "pass1001", &server, t).await;
    let mut b = Phone::start("1002", "pass1002", &server, t).await;
    assert!(a.register().await > 0);
    assert!(b.register().await > 0);

    // A calls B through the proxy (INVITE challenged with 407), B answers, A hangs up.
    let ca = a.ua.invite("1002", OFFER.into()).expect("invite");
    let cb = b.incoming().await;
    b.ua.ringing(cb);
    assert!(matches!(
        a.next().await,
        SipEvent::Progress { code: 180, .. }
    ));
    b.ua.answer(cb, ANSWER.into());
    assert_eq!(
        a.next().await,
        SipEvent::Answered {
            call: ca,
            sdp: Some(ANSWER.into())
        }
    );
    assert!(matches!(b.next().await, SipEvent::Answered { .. }));
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await.0, EndReason::LocalHangup);
    assert_eq!(b.ended(cb).await.0, EndReason::RemoteHangup);

    // B calls A (full URI form), A answers, B hangs up... no: A hangs up from the callee side.
    let cb =
        b.ua.invite(&format!("sip:1001@{server}"), OFFER.into())
            .expect("invite");
    let ca = a.incoming().await;
    a.ua.answer(ca, ANSWER.into());
    assert!(matches!(b.next().await, SipEvent::Answered { .. }));
    assert!(matches!(a.next().await, SipEvent::Answered { .. }));
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await.0, EndReason::LocalHangup);
    assert_eq!(b.ended(cb).await.0, EndReason::RemoteHangup);

    // Cancel before answer.
    let ca = a.ua.invite("1002", OFFER.into()).expect("invite");
    let cb = b.incoming().await;
    b.ua.ringing(cb);
    assert!(matches!(a.next().await, SipEvent::Progress { .. }));
    a.ua.hangup(ca);
    assert_eq!(a.ended(ca).await, (EndReason::LocalCancel, Some(487)));
    assert_eq!(b.ended(cb).await.0, EndReason::RemoteCancel);

    // Busy.
    let ca = a.ua.invite("1002", OFFER.into()).expect("invite");
    let cb = b.incoming().await;
    b.ua.reject(cb, 486);
    assert_eq!(b.ended(cb).await.0, EndReason::LocalReject);
    assert_eq!(a.ended(ca).await, (EndReason::Rejected, Some(486)));

    // Not registered: 404 from the proxy.
    let cx = a.ua.invite("1003", OFFER.into()).expect("invite");
    assert_eq!(a.ended(cx).await, (EndReason::Rejected, Some(404)));

    a.unregister().await;
    b.unregister().await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn wrong_password_fails(t: Transport) {
    let Some(server) = registrar() else {
        eprintln!("WEBPHONE_TEST_REGISTRAR not set; skipping");
        return;
    };
    let mut c = Phone::start("1003", "wrong", &server, t).await;
    c.ua.register();
    assert_eq!(
        c.next().await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    match c.next().await {
        SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
            assert!(matches!(code, 401 | 403), "{code} {reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    c.ua.shutdown().await;
}

async fn refresh_keeps_registration(t: Transport) {
    let Some(server) = registrar() else {
        eprintln!("WEBPHONE_TEST_REGISTRAR not set; skipping");
        return;
    };
    let mut a = Phone::start("1001", "pass1001", &server, t).await;
    let mut b = Phone::start("1002", "pass1002", &server, t).await;
    let granted = a.register().await;
    b.register().await;
    // Wait past the granted lifetime: refreshes must keep A reachable, silently.
    let wait = Duration::from_secs(u64::from(granted) + 3);
    if granted <= 30 {
        if let Ok(Some(ev)) = tokio::time::timeout(wait, a.rx.recv()).await {
            panic!("unexpected event while refreshing: {ev:?}");
        }
    }
    let cb = b.ua.invite("1001", OFFER.into()).expect("invite");
    let ca = a.incoming().await;
    a.ua.reject(ca, 603);
    assert_eq!(a.ended(ca).await.0, EndReason::LocalReject);
    assert_eq!(b.ended(cb).await, (EndReason::Rejected, Some(603)));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

async fn through_outbound_proxy(t: Transport) {
    let Some(server) = registrar() else {
        eprintln!("WEBPHONE_TEST_REGISTRAR not set; skipping");
        return;
    };
    let mut a = Phone::start("1001", "pass1001", &server, t).await;
    let mut b = Phone::start("1002", "pass1002", &server, t).await;
    for p in [&a, &b] {
        p.ua.set_account(AccountConfig {
            server: Some(server.clone()),
            proxy: Some(server.clone()),
            username: p.name.clone(),
            password: format!("pass{}", p.name),
            register_expires: 60,
            ..Default::default()
        });
    }
    a.register().await;
    b.register().await;
    let ca = a.ua.invite("1002", OFFER.into()).expect("invite");
    let cb = b.incoming().await;
    b.ua.answer(cb, ANSWER.into());
    assert!(matches!(a.next().await, SipEvent::Answered { .. }));
    assert!(matches!(b.next().await, SipEvent::Answered { .. }));
    b.ua.hangup(cb);
    assert_eq!(b.ended(cb).await.0, EndReason::LocalHangup);
    assert_eq!(a.ended(ca).await.0, EndReason::RemoteHangup);
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        mod udp {
            use super::*;
            $(#[tokio::test] #[ignore = "needs WEBPHONE_TEST_REGISTRAR"] async fn $name() { super::$name(Transport::Udp).await })*
        }
        mod tcp {
            use super::*;
            $(#[tokio::test] #[ignore = "needs WEBPHONE_TEST_REGISTRAR"] async fn $name() { super::$name(Transport::Tcp).await })*
        }
    };
}

both_transports!(
    register_call_cancel_reject,
    wrong_password_fails,
    refresh_keeps_registration,
    through_outbound_proxy,
);
