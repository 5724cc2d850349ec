//! RFC 3608 Service-Route: a registrar on a real UDP socket (scripted) answers REGISTER
//! with two Service-Route values; the INVITE and the MESSAGE sent afterwards carry them as
//! preloaded Route headers, in order (§6.1). After the un-REGISTER they are gone.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use webphone_sip::{AccountConfig, RegistrationState, SipConfig, SipEvent, SipUa, Transport};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

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

/// (method, Route headers) of every request but ACK the server received.
type Seen = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// Registrar and proxy in one: REGISTER gets 200 with `service_route` (one header per
/// item), INVITE 486, MESSAGE 200.
async fn server(service_route: &'static [&'static str]) -> (SocketAddr, Seen) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
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
                .push((method.clone(), all_headers(&text, "Route")));
            let (code, extra) = match method.as_str() {
                "REGISTER" => {
                    let mut extra =
                        format!("Contact: {};expires=120\r\n", header(&text, "Contact"));
                    if header(&text, "Expires") != "0" {
                        for r in service_route {
                            extra.push_str(&format!("Service-Route: {r}\r\n"));
                        }
                    }
                    ("200 OK", extra)
                }
                "INVITE" => ("486 Busy Here", String::new()),
                _ => ("200 OK", String::new()),
            };
            let reply = format!(
                "SIP/2.0 {code}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=srv\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
                header(&text, "Via"),
                header(&text, "From"),
                header(&text, "To"),
                header(&text, "Call-ID"),
                header(&text, "CSeq"),
            );
            let _ = sock.send_to(reply.as_bytes(), src).await;
        }
    });
    (addr, seen)
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

fn routes_of(seen: &Seen, method: &str) -> Vec<Vec<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == method)
        .map(|(_, r)| r.clone())
        .collect()
}

#[tokio::test]
async fn service_route_of_the_register_2xx_preloads_invite_and_message_routes() {
    let (srv, seen) = server(&[
        "<sip:orig@127.0.0.1:5999;lr>",
        "<sip:scscf.test;lr>, <sip:as.test;lr>",
    ])
    .await;
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
    let offer = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let call = ua.invite("bob", offer.into()).unwrap();
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
    let want = [
        "<sip:orig@127.0.0.1:5999;lr>",
        "<sip:scscf.test;lr>",
        "<sip:as.test;lr>",
    ];
    let invites = routes_of(&seen, "INVITE");
    assert_eq!(invites.len(), 1, "{invites:?}");
    let flat: Vec<String> = invites[0]
        .iter()
        .flat_map(|h| h.split(',').map(|v| v.trim().to_string()))
        .collect();
    assert_eq!(flat, want, "INVITE Route in Service-Route order");
    let messages = routes_of(&seen, "MESSAGE");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].is_empty(),
        "no route before REGISTER: {messages:?}"
    );
    let flat: Vec<String> = messages[1]
        .iter()
        .flat_map(|h| h.split(',').map(|v| v.trim().to_string()))
        .collect();
    assert_eq!(flat, want, "MESSAGE Route in Service-Route order");
    // The un-REGISTER ends the service route.
    ua.unregister();
    assert_eq!(registration(&mut rx).await, RegistrationState::Unregistered);
    assert_eq!(message_status(&ua, &mut rx).await, 200);
    let messages = routes_of(&seen, "MESSAGE");
    assert!(
        messages.last().is_some_and(|r| r.is_empty()),
        "no route after un-REGISTER: {messages:?}"
    );
    ua.shutdown().await;
}
