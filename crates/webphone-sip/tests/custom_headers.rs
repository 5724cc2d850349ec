//! User header fields (`customsipheader` / `setsipheader`) and call forwarding with a 3xx
//! (RFC 3261 §8.3.1, §21.3), between user agents over real loopback sockets: the peer
//! reports what it received (the INVITE's headers, traced BYE text, a raw UDP registrar).
#![allow(clippy::unwrap_used)]

mod support;

use support::{Peer, ANSWER, OFFER};
use webphone_sip::{AccountConfig, EndReason, SipError, SipEvent};

fn has_header(headers: &[(String, String)], name: &str, value: &str) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value)
}

/// Next trace of a received request whose start line begins with `method`.
async fn received_request(p: &mut Peer, method: &str) -> String {
    let until = tokio::time::Instant::now() + support::WAIT;
    loop {
        match tokio::time::timeout_at(until, p.rx.recv()).await {
            Ok(Some(SipEvent::Trace {
                outgoing: false,
                text,
                ..
            })) if text.starts_with(method) => return text,
            Ok(Some(_)) => continue,
            other => panic!("{}: no {method} received: {other:?}", p.name),
        }
    }
}

#[tokio::test]
async fn extra_and_call_headers_reach_the_peer_in_invite_and_bye() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    a.ua.set_extra_headers(vec![("X-Global".into(), "g1".into())])
        .unwrap();
    let ca =
        a.ua.invite_with_headers(
            &b.uri("bob"),
            OFFER.into(),
            vec![("X-Call".into(), "c1".into())],
        )
        .unwrap();
    let cb = match b.next().await {
        SipEvent::Incoming { call, headers, .. } => {
            assert!(has_header(&headers, "X-Global", "g1"), "{headers:?}");
            assert!(has_header(&headers, "X-Call", "c1"), "{headers:?}");
            call
        }
        other => panic!("B: expected Incoming, got {other:?}"),
    };
    // B's own header goes into its responses: A sees it in the 200.
    b.ua.set_extra_headers(vec![("X-Answerer".into(), "b1".into())])
        .unwrap();
    a.ua.set_trace(true);
    b.ua.answer(cb, ANSWER.into());
    let ok = loop {
        match tokio::time::timeout(support::WAIT, a.rx.recv()).await {
            Ok(Some(SipEvent::Trace {
                outgoing: false,
                text,
                ..
            })) if text.starts_with("SIP/2.0 200") => break text,
            Ok(Some(_)) => continue,
            other => panic!("A: no 200: {other:?}"),
        }
    };
    assert!(ok.contains("X-Answerer: b1\r\n"), "{ok}");
    a.ua.set_trace(false);
    a.until("Answered", |e| matches!(e, SipEvent::Answered { .. }))
        .await;
    assert!(matches!(b.next().await, SipEvent::Answered { .. }));
    b.ua.set_extra_headers(vec![]).unwrap();

    // Replace the call's headers: the BYE carries the new one, not the INVITE's.
    a.ua.set_call_headers(ca, vec![("X-Call".into(), "c2".into())])
        .unwrap();
    b.ua.set_trace(true);
    a.ua.hangup(ca);
    let bye = received_request(&mut b, "BYE").await;
    assert!(bye.contains("X-Global: g1\r\n"), "{bye}");
    assert!(bye.contains("X-Call: c2\r\n"), "{bye}");
    assert!(!bye.contains("X-Call: c1"), "{bye}");
    b.ua.set_trace(false);

    // An empty set removes the global headers for the next call.
    a.ua.set_extra_headers(vec![]).unwrap();
    a.ua.invite(&b.uri("bob"), OFFER.into()).unwrap();
    loop {
        match b.next().await {
            SipEvent::Incoming { headers, .. } => {
                assert!(
                    !headers.iter().any(|(n, _)| n.starts_with("X-")),
                    "{headers:?}"
                );
                break;
            }
            SipEvent::Ended { .. } => continue,
            other => panic!("B: expected Incoming, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn extra_headers_go_into_register() {
    let registrar = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = registrar.local_addr().unwrap();
    let a = Peer::start("a").await;
    a.ua.set_extra_headers(vec![
        ("X-Key1".into(), "val1".into()),
        (
            "P-Preferred-Identity".into(),
            "<sip:1001@example.com>".into(),
        ),
    ])
    .unwrap();
    a.ua.set_account(AccountConfig {
        server: Some(server.to_string()),
        username: "1001".into(),
        password: "secret".into(),
        ..Default::default()
    });
    a.ua.register();
    let mut buf = vec![0u8; 8192];
    let (n, _) = tokio::time::timeout(support::WAIT, registrar.recv_from(&mut buf))
        .await
        .expect("REGISTER arrives")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("REGISTER "), "{text}");
    assert!(text.contains("X-Key1: val1\r\n"), "{text}");
    assert!(
        text.contains("P-Preferred-Identity: <sip:1001@example.com>\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn header_injection_and_stack_headers_are_refused() {
    let a = Peer::start("a").await;
    let bad = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
    for (n, v) in [
        ("X-Evil", "x\r\nVia: SIP/2.0/UDP 6.6.6.6"),
        ("X-Evil", "x\nBYE sip:a@b SIP/2.0"),
        ("X Evil", "x"),
        ("X-Evil:", "x"),
        ("", "x"),
        ("Content-Length", "0"),
        ("Call-ID", "abc"),
        ("v", "SIP/2.0/UDP h"),
    ] {
        assert!(
            matches!(
                a.ua.set_extra_headers(bad(n, v)),
                Err(SipError::InvalidHeader { .. })
            ),
            "{n:?}: {v:?} accepted"
        );
        assert!(matches!(
            a.ua.invite_with_headers("sip:b@127.0.0.1:9", OFFER.into(), bad(n, v)),
            Err(SipError::InvalidHeader { .. })
        ));
    }
    assert!(matches!(
        a.ua.set_call_headers(webphone_sip::CallKey(999), bad("X-Ok", "1")),
        Err(SipError::NoSuchCall(_))
    ));
    assert!(matches!(
        a.ua.redirect(
            webphone_sip::CallKey(999),
            302,
            vec!["sip:x@127.0.0.1".into()]
        ),
        Err(SipError::NoSuchCall(_))
    ));
}

#[tokio::test]
async fn redirect_answers_302_with_contact_and_the_caller_follows_it() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let mut c = Peer::start("c").await;
    let c_uri = c.uri("carol");
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).unwrap();
    let (cb, _) = b.incoming().await;
    assert!(matches!(
        b.ua.redirect(cb, 302, vec!["sip:x@y\r\nX: z".into()]),
        Err(SipError::InvalidHeader { .. })
    ));
    assert!(matches!(
        b.ua.redirect(cb, 302, vec![]),
        Err(SipError::InvalidHeader { .. })
    ));
    a.ua.set_trace(true);
    b.ua.redirect(cb, 302, vec![c_uri.clone()]).unwrap();
    match b.next().await {
        SipEvent::Ended {
            call, reason, code, ..
        } => {
            assert_eq!(call, cb);
            assert_eq!(reason, EndReason::LocalReject);
            assert_eq!(code, Some(302));
        }
        other => panic!("B: expected Ended, got {other:?}"),
    }
    // What A received: a 302 whose only Contact is C (not B's own address).
    let resp = loop {
        match tokio::time::timeout(support::WAIT, a.rx.recv()).await {
            Ok(Some(SipEvent::Trace {
                outgoing: false,
                text,
                ..
            })) if text.starts_with("SIP/2.0 302") => break text,
            Ok(Some(_)) => continue,
            other => panic!("A: no 302: {other:?}"),
        }
    };
    let contacts: Vec<&str> = resp
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .collect();
    assert_eq!(
        contacts,
        vec![format!("Contact: <{c_uri}>").as_str()],
        "{resp}"
    );
    a.ua.set_trace(false);
    let ev = a
        .until("Redirected", |e| matches!(e, SipEvent::Redirected { .. }))
        .await;
    match ev.last() {
        Some(SipEvent::Redirected { call, code, target }) => {
            assert_eq!(*call, ca);
            assert_eq!(*code, 302);
            assert_eq!(target, &c_uri);
        }
        other => panic!("A: expected Redirected, got {other:?}"),
    }
    let (cc, _) = c.incoming().await;
    c.ua.answer(cc, ANSWER.into());
    a.until("Answered", |e| matches!(e, SipEvent::Answered { .. }))
        .await;
    a.ua.hangup(ca);
}
