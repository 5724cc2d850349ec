//! RFC 3608 Service-Route: a registrar on a real UDP socket (scripted) answers REGISTER
//! with two Service-Route values whose first URI is a second socket (the "service proxy");
//! the INVITE and the MESSAGE sent afterwards carry them as preloaded Route headers, in
//! order (§6.1), and go to that first URI, not to the registrar (RFC 3261 §8.1.2). After
//! the un-REGISTER they are gone and requests go to the registrar again.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{header, response_to, LOOPBACK, OFFER};
use tokio::net::UdpSocket;
use webphone_sip::{AccountConfig, RegistrationState, SipConfig, SipEvent, SipUa, Transport};

fn all_headers(text: &str, name: &str) -> Vec<String> {
    text.split("\r\n")
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// (socket that got it, method, Route headers) of every request but ACK the server received.
type Seen = Arc<Mutex<Vec<(&'static str, String, Vec<String>)>>>;

/// Registrar and service proxy, one socket each, one script: REGISTER gets 200 with the
/// Service-Route (first URI: the proxy socket; one header per item), INVITE 486, MESSAGE
/// 200. Returns the registrar's address, the Service-Route sent and what both received.
async fn server() -> (SocketAddr, Vec<String>, Seen) {
    let registrar = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let proxy = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = registrar.local_addr().unwrap();
    let service_route = vec![
        format!("<sip:orig@{};lr>", proxy.local_addr().unwrap()),
        "<sip:scscf.test;lr>, <sip:as.test;lr>".to_string(),
    ];
    let seen: Seen = Arc::default();
    for (name, sock) in [("registrar", registrar), ("proxy", proxy)] {
        let s = seen.clone();
        let service_route = service_route.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok((n, src)) = sock.recv_from(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let method = text.split(' ').next().unwrap_or("").to_string();
                if method.starts_with("SIP/") || method == "ACK" {
                    continue;
                }
                s.lock()
                    .unwrap()
                    .push((name, method.clone(), all_headers(&text, "Route")));
                let (code, extra) = match method.as_str() {
                    "REGISTER" => {
                        let mut extra =
                            format!("Contact: {};expires=120\r\n", header(&text, "Contact"));
                        if header(&text, "Expires") != "0" {
                            for r in &service_route {
                                extra.push_str(&format!("Service-Route: {r}\r\n"));
                            }
                        }
                        ("200 OK", extra)
                    }
                    "INVITE" => ("486 Busy Here", String::new()),
                    _ => ("200 OK", String::new()),
                };
                let reply = response_to(&text, code, Some("srv"), &extra);
                let _ = sock.send_to(reply.as_bytes(), src).await;
            }
        });
    }
    (addr, service_route, seen)
}

async fn registration(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SipEvent>,
) -> RegistrationState {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    }
}

async fn message_status(
    ua: &SipUa,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SipEvent>,
) -> u16 {
    let key = ua.send_message("bob", "text/plain", "hi").unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("MESSAGE outcome in time")
            .unwrap();
        if let SipEvent::MessageStatus { key: k, code, .. } = ev {
            if k == key {
                break code;
            }
        }
    }
}

/// (socket, Route headers) of each `method` request, in arrival order.
fn routes_of(seen: &Seen, method: &str) -> Vec<(&'static str, Vec<String>)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, m, _)| m == method)
        .map(|(at, _, r)| (*at, r.clone()))
        .collect()
}

fn flat(headers: &[String]) -> Vec<String> {
    headers
        .iter()
        .flat_map(|h| h.split(',').map(|v| v.trim().to_string()))
        .collect()
}

#[tokio::test]
async fn service_route_of_the_register_2xx_preloads_invite_and_message_routes() {
    let (srv, service_route, seen) = server().await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-service-route-test".into(),
    })
    .await
    .unwrap();
    ua.set_account(AccountConfig {
        server: Some(srv.to_string()),
        username: "alice".into(),
        password: "x".into(),
        register_expires: 120,
        ..Default::default()
    });
    // Before any registration: no route.
    assert_eq!(message_status(&ua, &mut rx).await, 200);
    ua.register();
    assert_eq!(
        registration(&mut rx).await,
        RegistrationState::Registered { expires: 120 }
    );
    let call = ua.invite("bob", OFFER.into()).unwrap();
    let code = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("call outcome in time")
            .unwrap();
        if let SipEvent::Ended { call: c, code, .. } = ev {
            if c == call {
                break code;
            }
        }
    };
    assert_eq!(code, Some(486));
    assert_eq!(message_status(&ua, &mut rx).await, 200);
    let want = flat(&service_route);
    assert_eq!(want.len(), 3);
    let invites = routes_of(&seen, "INVITE");
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(
        invites[0].0, "proxy",
        "INVITE sent to the first Service-Route URI"
    );
    assert_eq!(
        flat(&invites[0].1),
        want,
        "INVITE Route in Service-Route order"
    );
    let messages = routes_of(&seen, "MESSAGE");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0],
        ("registrar", vec![]),
        "before REGISTER: no route, to the registrar"
    );
    assert_eq!(
        messages[1].0, "proxy",
        "MESSAGE sent to the first Service-Route URI"
    );
    assert_eq!(
        flat(&messages[1].1),
        want,
        "MESSAGE Route in Service-Route order"
    );
    assert!(
        routes_of(&seen, "REGISTER")
            .iter()
            .all(|(at, r)| *at == "registrar" && r.is_empty()),
        "REGISTER never takes the Service-Route (RFC 3608 §6.1)"
    );
    // The un-REGISTER ends the service route.
    ua.unregister();
    assert_eq!(registration(&mut rx).await, RegistrationState::Unregistered);
    assert_eq!(message_status(&ua, &mut rx).await, 200);
    let messages = routes_of(&seen, "MESSAGE");
    assert_eq!(
        messages.last(),
        Some(&("registrar", vec![])),
        "after un-REGISTER: no route, to the registrar"
    );
    ua.shutdown().await;
}
