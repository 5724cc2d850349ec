//! MESSAGE (RFC 3428), INFO DTMF (RFC 6086), REFER transfers (RFC 3515, RFC 3891) and
//! SUBSCRIBE (RFC 6665) between user agents on 127.0.0.1 over real UDP sockets; a SIPp
//! notifier for the subscription dialog.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{establish, Peer, ANSWER, OFFER};
use webphone_sip::{EndReason, SipEvent, SubscriptionState};

#[tokio::test]
async fn message_is_delivered_and_reported() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let key =
        a.ua.send_message(&b.uri("bob"), "text/plain;charset=UTF-8", "hello Bob ☺")
            .unwrap();
    match b.next().await {
        SipEvent::MessageReceived {
            from_user,
            from_uri,
            content_type,
            body,
            ..
        } => {
            assert_eq!(from_user, "webphone");
            assert!(from_uri.starts_with("sip:webphone@"), "{from_uri}");
            assert_eq!(content_type, "text/plain;charset=UTF-8");
            assert_eq!(body, "hello Bob ☺");
        }
        other => panic!("B: expected MessageReceived, got {other:?}"),
    }
    match a.next().await {
        SipEvent::MessageStatus { key: k, code, .. } => {
            assert_eq!(k, key);
            assert_eq!(code, 200);
        }
        other => panic!("A: expected MessageStatus, got {other:?}"),
    }
    // RFC 3994 typing notification is accepted too.
    let composing = "<?xml version=\"1.0\"?><isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state></isComposing>";
    let k2 =
        a.ua.send_message(&b.uri("bob"), "application/im-iscomposing+xml", composing)
            .unwrap();
    match b.next().await {
        SipEvent::MessageReceived {
            content_type, body, ..
        } => {
            assert_eq!(content_type, "application/im-iscomposing+xml");
            assert_eq!(body, composing);
        }
        other => panic!("B: expected MessageReceived, got {other:?}"),
    }
    assert!(matches!(a.next().await, SipEvent::MessageStatus { key, code: 200, .. } if key == k2));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

/// MESSAGEs sent in a burst to one peer arrive in the order sent (each is a transaction of
/// its own, RFC 3428 §4, so nothing else orders them): a chat text never overtakes the one
/// typed before it, an is-composing `idle` never its `active` (RFC 3994).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_in_a_burst_arrive_in_order() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let to = b.uri("bob");
    for i in 0..30 {
        a.ua.send_message(&to, "text/plain", &format!("message {i}"))
            .unwrap();
    }
    let mut bodies = Vec::new();
    while bodies.len() < 30 {
        match b.next().await {
            SipEvent::MessageReceived { body, .. } => bodies.push(body),
            other => panic!("B: expected MessageReceived, got {other:?}"),
        }
    }
    let expected: Vec<String> = (0..30).map(|i| format!("message {i}")).collect();
    assert_eq!(bodies, expected);
    let mut answered = 0;
    while answered < 30 {
        match a.next().await {
            SipEvent::MessageStatus { code: 200, .. } => answered += 1,
            other => panic!("A: expected MessageStatus 200, got {other:?}"),
        }
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn message_of_unknown_type_gets_415_and_no_event() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let key =
        a.ua.send_message(&b.uri("bob"), "text/html", "<b>hi</b>")
            .unwrap();
    match a.next().await {
        SipEvent::MessageStatus { key: k, code, .. } => {
            assert_eq!(k, key);
            assert_eq!(code, 415);
        }
        other => panic!("A: expected MessageStatus, got {other:?}"),
    }
    b.assert_quiet(Duration::from_millis(300)).await;
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

#[tokio::test]
async fn message_to_nobody_times_out_or_fails() {
    let mut a = Peer::start("A").await;
    // A port where nothing listens: UDP gives no answer (408 after Timer F) or an ICMP
    // error (503).
    let port = webphone_interop::util::free_port();
    let key =
        a.ua.send_message(&format!("sip:x@127.0.0.1:{port}"), "text/plain", "x")
            .unwrap();
    match a.next_within(Duration::from_secs(40)).await {
        SipEvent::MessageStatus { key: k, code, .. } => {
            assert_eq!(k, key);
            assert!(code == 408 || code == 503, "code {code}");
        }
        other => panic!("A: expected MessageStatus, got {other:?}"),
    }
    a.ua.shutdown().await;
}

#[tokio::test]
async fn info_dtmf_in_both_body_formats() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    a.ua.send_info(ca, "application/dtmf-relay", "Signal=7\r\nDuration=160\r\n")
        .unwrap();
    match b.next().await {
        SipEvent::DtmfReceived { call, digit } => assert_eq!((call, digit), (cb, '7')),
        other => panic!("B: expected DtmfReceived, got {other:?}"),
    }
    a.ua.send_info(ca, "application/dtmf", "#").unwrap();
    match b.next().await {
        SipEvent::DtmfReceived { call, digit } => assert_eq!((call, digit), (cb, '#')),
        other => panic!("B: expected DtmfReceived, got {other:?}"),
    }
    // And the other way round (INFO from the callee).
    b.ua.send_info(cb, "application/dtmf", "3").unwrap();
    match a.next().await {
        SipEvent::DtmfReceived { call, digit } => assert_eq!((call, digit), (ca, '3')),
        other => panic!("A: expected DtmfReceived, got {other:?}"),
    }
    a.ua.hangup(ca);
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

/// A calls B; B blind-transfers A to C: A gets Refer, accepts, calls C and reports the
/// outcome; B sees 100 then 200 as ReferStatus.
#[tokio::test]
async fn blind_transfer() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let mut c = Peer::start("C").await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    let carol = c.uri("carol");
    b.ua.refer(cb, &carol).unwrap();
    let (target, replaces, referred_by) = match a.next().await {
        SipEvent::Refer {
            call,
            target,
            replaces,
            referred_by,
        } => {
            assert_eq!(call, ca);
            (target, replaces, referred_by)
        }
        other => panic!("A: expected Refer, got {other:?}"),
    };
    assert_eq!(target, carol);
    assert_eq!(replaces, None);
    assert!(referred_by.is_some_and(|r| r.contains("sip:webphone@")));
    a.ua.accept_refer(ca).unwrap();
    // The REFER's 202 (ReferAccepted) and the first NOTIFY (100) race: either order.
    let mut progress = b
        .until("ReferStatus 100", |e| {
            matches!(e, SipEvent::ReferStatus { .. })
        })
        .await;
    assert!(
        matches!(progress.last(), Some(SipEvent::ReferStatus { call, code: 100 }) if *call == cb),
        "{progress:?}"
    );
    // A places the new call and reports its outcome.
    let new = a.ua.invite(&target, OFFER.into()).unwrap();
    let (cc, _) = c.incoming().await;
    c.ua.answer(cc, ANSWER.into());
    assert!(matches!(a.next().await, SipEvent::Answered { call, .. } if call == new));
    assert!(matches!(c.next().await, SipEvent::Answered { call, .. } if call == cc));
    a.ua.notify_refer(ca, 200).unwrap();
    progress.extend(
        b.until("ReferStatus 200", |e| {
            matches!(e, SipEvent::ReferStatus { .. })
        })
        .await,
    );
    assert!(
        matches!(progress.last(), Some(SipEvent::ReferStatus { call, code: 200 }) if *call == cb),
        "{progress:?}"
    );
    let accepted = progress
        .iter()
        .filter(|e| matches!(e, SipEvent::ReferAccepted { call } if *call == cb))
        .count();
    assert_eq!(accepted, 1, "one ReferAccepted for the 202: {progress:?}");
    assert_eq!(
        progress.len(),
        3,
        "nothing but the REFER's progress: {progress:?}"
    );
    // The transferor hangs up; the transferred call stays.
    b.ua.hangup(cb);
    let seen = a
        .until("Ended", |e| matches!(e, SipEvent::Ended { .. }))
        .await;
    assert!(
        matches!(seen.last(), Some(SipEvent::Ended { call, reason: EndReason::RemoteHangup, .. }) if *call == ca),
        "{seen:?}"
    );
    a.assert_quiet(Duration::from_millis(300)).await;
    c.assert_quiet(Duration::from_millis(10)).await;
    a.ua.hangup(new);
    a.ua.shutdown().await;
    b.ua.shutdown().await;
    c.ua.shutdown().await;
}

/// A refused REFER reaches the transferor as a final ReferStatus; the call goes on.
#[tokio::test]
async fn refused_transfer() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    b.ua.refer(cb, "sip:carol@127.0.0.1:9").unwrap();
    assert!(matches!(a.next().await, SipEvent::Refer { call, .. } if call == ca));
    a.ua.reject_refer(ca, 603).unwrap();
    match b.next().await {
        SipEvent::ReferStatus { call, code } => assert_eq!((call, code), (cb, 603)),
        other => panic!("B: expected ReferStatus 603, got {other:?}"),
    }
    // The call is still up: a DTMF INFO goes through.
    b.ua.send_info(cb, "application/dtmf", "1").unwrap();
    assert!(matches!(
        a.next().await,
        SipEvent::DtmfReceived { digit: '1', .. }
    ));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

/// Attended transfer (RFC 5589 §7): B talks to A (call 1) and to C (call 2), then refers
/// A to C with Replaces of call 2. A's INVITE with Replaces reaches C as an Incoming that
/// names C's call with B; C answers it and hangs up the replaced call.
#[tokio::test]
async fn attended_transfer_with_replaces() {
    let mut a = Peer::start("A").await;
    let mut b = Peer::start("B").await;
    let mut c = Peer::start("C").await;
    let (ca, b_to_a) = establish(&mut a, &mut b).await;
    let (b_to_c, c_from_b) = establish(&mut b, &mut c).await;
    b.ua.refer_with_replaces(b_to_a, b_to_c).unwrap();
    let (target, replaces) = match a.next().await {
        SipEvent::Refer {
            call,
            target,
            replaces,
            ..
        } => {
            assert_eq!(call, ca);
            (target, replaces.expect("Refer carries Replaces"))
        }
        other => panic!("A: expected Refer, got {other:?}"),
    };
    assert_eq!(replaces.call_id, b.ua.call_id(b_to_c).unwrap());
    assert!(target.contains(&c.ua.local_addr().to_string()), "{target}");
    a.ua.accept_refer(ca).unwrap();
    let progress = b
        .until("ReferStatus 100", |e| {
            matches!(e, SipEvent::ReferStatus { .. })
        })
        .await;
    assert!(
        matches!(
            progress.last(),
            Some(SipEvent::ReferStatus { code: 100, .. })
        ),
        "{progress:?}"
    );
    let new =
        a.ua.invite_with_replaces(&target, OFFER.into(), &replaces)
            .unwrap();
    let (cc, replaced) = match c.next().await {
        SipEvent::Incoming { call, replaces, .. } => (call, replaces),
        other => panic!("C: expected Incoming, got {other:?}"),
    };
    assert_eq!(replaced, Some(c_from_b));
    c.ua.answer(cc, ANSWER.into());
    c.ua.hangup(c_from_b);
    assert!(matches!(a.next().await, SipEvent::Answered { call, .. } if call == new));
    a.ua.notify_refer(ca, 200).unwrap();
    let seen = b
        .until("ReferStatus 200", |e| {
            matches!(e, SipEvent::ReferStatus { code: 200, .. })
        })
        .await;
    // B's call with C was ended by C (replaced).
    let seen_more = if seen
        .iter()
        .any(|e| matches!(e, SipEvent::Ended { call, .. } if *call == b_to_c))
    {
        seen
    } else {
        b.until(
            "Ended of call 2",
            |e| matches!(e, SipEvent::Ended { call, .. } if *call == b_to_c),
        )
        .await
    };
    assert!(seen_more.iter().any(|e| matches!(e, SipEvent::Ended { call, reason: EndReason::RemoteHangup, .. } if *call == b_to_c)));
    a.ua.shutdown().await;
    b.ua.shutdown().await;
    c.ua.shutdown().await;
}

/// An INVITE whose Replaces names no dialog is refused with 481 (RFC 3891 §3).
#[tokio::test]
async fn replaces_of_unknown_dialog_gets_481() {
    let mut a = Peer::start("A").await;
    let mut c = Peer::start("C").await;
    let bogus = webphone_sip::Replaces {
        call_id: "nope@x".into(),
        to_tag: "1".into(),
        from_tag: "2".into(),
        early_only: false,
    };
    let call =
        a.ua.invite_with_replaces(&c.uri("carol"), OFFER.into(), &bogus)
            .unwrap();
    match a.next().await {
        SipEvent::Ended { call: k, code, .. } => {
            assert_eq!(k, call);
            assert_eq!(code, Some(481));
        }
        other => panic!("A: expected Ended 481, got {other:?}"),
    }
    c.assert_quiet(Duration::from_millis(300)).await;
    a.ua.shutdown().await;
    c.ua.shutdown().await;
}

/// A user agent is no notifier: our SUBSCRIBE gets 405 and SubscriptionFailed.
#[tokio::test]
async fn subscribe_refused_by_peer() {
    let mut a = Peer::start("A").await;
    let b = Peer::start("B").await;
    let sub = a.ua.subscribe(&b.uri("bob"), "presence", 600).unwrap();
    match a.next().await {
        SipEvent::SubscriptionFailed { sub: s, code } => assert_eq!((s, code), (sub, 405)),
        other => panic!("A: expected SubscriptionFailed, got {other:?}"),
    }
    a.ua.shutdown().await;
    b.ua.shutdown().await;
}

/// SIPp as a notifier (dialog package, BLF): 200, NOTIFY active with a body, our refresh
/// SUBSCRIBE in the dialog, then our un-SUBSCRIBE and its NOTIFY terminated.
#[tokio::test]
async fn subscription_with_sipp_notifier() {
    if !support::have_sipp("subscription_with_sipp_notifier") {
        return;
    }
    let mut a = Peer::start("A").await;
    let mut sipp = support::Sipp::start("notifier_uas.xml", None, &[]);
    let sub = a.ua.subscribe(&sipp.uri("200"), "dialog", 4).unwrap();
    match a.next().await {
        SipEvent::Notify {
            sub: s,
            event,
            state,
            content_type,
            body,
        } => {
            assert_eq!(s, Some(sub));
            assert_eq!(event, "dialog");
            assert_eq!(state, SubscriptionState::Active { expires: Some(4) });
            assert_eq!(content_type.as_deref(), Some("application/dialog-info+xml"));
            assert!(body.contains("<state>confirmed</state>"), "{body}");
        }
        other => panic!("A: expected Notify, got {other:?}; {}", sipp.logs()),
    }
    // The refresh (4 s granted: at 1 s, RFC 6665 §4.1.2.1 before expiry) is answered by SIPp with a second NOTIFY.
    match a.next().await {
        SipEvent::Notify { sub: s, state, .. } => {
            assert_eq!(s, Some(sub));
            assert_eq!(state, SubscriptionState::Active { expires: Some(4) });
        }
        other => panic!(
            "A: expected Notify after refresh, got {other:?}; {}",
            sipp.logs()
        ),
    }
    a.ua.unsubscribe(sub).unwrap();
    match a.next().await {
        SipEvent::Notify { sub: s, state, .. } => {
            assert_eq!(s, Some(sub));
            assert_eq!(
                state,
                SubscriptionState::Terminated {
                    reason: Some("timeout".into()),
                    retry_after: None
                }
            );
        }
        other => panic!("A: expected final Notify, got {other:?}; {}", sipp.logs()),
    }
    a.assert_quiet(Duration::from_millis(300)).await;
    sipp.assert_success(Duration::from_secs(10)).await;
    a.ua.shutdown().await;
}

/// The notifier's view of one subscription dialog (raw UDP).
struct NotifierDialog {
    call_id: String,
    /// The subscriber's From (our To) and its To with our tag (our From).
    subscriber: String,
    notifier: String,
    target: String,
    peer: std::net::SocketAddr,
}

/// Answers the next SUBSCRIBE on `sock` with 200 (our tag `tag`) and returns its dialog.
async fn accept_subscribe(sock: &tokio::net::UdpSocket, tag: &str) -> NotifierDialog {
    let mut buf = vec![0u8; 65536];
    let (req, peer) = loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("a SUBSCRIBE within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SUBSCRIBE ") {
            break (text, from);
        }
    };
    let header = |name: &str| {
        req.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let local = sock.local_addr().unwrap();
    let (via, from_h, to_h, call_id, cseq) = (
        header("Via"),
        header("From"),
        header("To"),
        header("Call-ID"),
        header("CSeq"),
    );
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {from_h}\r\nTo: {to_h};tag={tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq}\r\nContact: <sip:notifier@{local}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(ok.as_bytes(), peer).await.unwrap();
    let contact = header("Contact");
    NotifierDialog {
        target: contact
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or("")
            .to_string(),
        notifier: format!("{to_h};tag={tag}"),
        subscriber: from_h,
        call_id,
        peer,
    }
}

/// Sends a NOTIFY in `d` with `state` (and a PIDF `body` when not empty).
async fn send_notify(
    sock: &tokio::net::UdpSocket,
    d: &NotifierDialog,
    cseq: u32,
    state: &str,
    body: &str,
) {
    let local = sock.local_addr().unwrap();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/pidf+xml\r\n".into()
    };
    let notify = format!(
        "NOTIFY {} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKn{cseq}{}\r\nFrom: {}\r\n\
         To: {}\r\nCall-ID: {}\r\nCSeq: {cseq} NOTIFY\r\nContact: <sip:notifier@{local}>\r\n\
         Max-Forwards: 70\r\nEvent: presence\r\nSubscription-State: {state}\r\n{ctype}\
         Content-Length: {}\r\n\r\n{body}",
        d.target,
        d.call_id.len(),
        d.notifier,
        d.subscriber,
        d.call_id,
        body.len()
    );
    sock.send_to(notify.as_bytes(), d.peer).await.unwrap();
}

/// RFC 6665 §4.1.3: a NOTIFY ending the subscription with `reason=deactivated` invites a new
/// one at once: a new SUBSCRIBE (another dialog) goes out under the same subscription key,
/// and the application sees no end, only the state that follows. `reason=rejected` ends it
/// for good: reported, and nothing is sent again.
#[tokio::test]
async fn deactivated_subscription_is_renewed_and_a_rejected_one_ends() {
    let mut a = Peer::start("A").await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:bob@{}", sock.local_addr().unwrap());
    let sub = a.ua.subscribe(&target, "presence", 600).unwrap();
    let first = accept_subscribe(&sock, "nt1").await;
    send_notify(&sock, &first, 1, "terminated;reason=deactivated", "").await;
    let second = accept_subscribe(&sock, "nt2").await;
    assert_ne!(first.call_id, second.call_id, "a new subscription dialog");
    let pidf = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:bob@h\"><tuple id=\"t\"><status><basic>open</basic></status></tuple></presence>";
    send_notify(&sock, &second, 1, "active;expires=600", pidf).await;
    match a.next().await {
        SipEvent::Notify {
            sub: s,
            state,
            body,
            ..
        } => {
            assert_eq!(s, Some(sub), "the same subscription for the application");
            assert_eq!(state, SubscriptionState::Active { expires: Some(600) });
            assert!(body.contains("<basic>open</basic>"), "{body}");
        }
        other => panic!("expected the renewed subscription's NOTIFY, got {other:?}"),
    }
    send_notify(&sock, &second, 2, "terminated;reason=rejected", "").await;
    match a.next().await {
        SipEvent::Notify { sub: s, state, .. } => {
            assert_eq!(s, Some(sub));
            assert!(
                matches!(state, SubscriptionState::Terminated { .. }),
                "{state:?}"
            );
        }
        other => panic!("expected the final NOTIFY, got {other:?}"),
    }
    // No new SUBSCRIBE after a rejection.
    let mut buf = vec![0u8; 65536];
    let again = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            if buf[..n].starts_with(b"SUBSCRIBE ") {
                return;
            }
        }
    })
    .await;
    assert!(again.is_err(), "no SUBSCRIBE after reason=rejected");
    a.ua.shutdown().await;
}

/// A PIDF document for `sip:pub@127.0.0.1`, open, with `note`.
fn pidf(note: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         entity=\"sip:pub@127.0.0.1\"><tuple id=\"t\"><status><basic>open</basic></status>\
         <note>{note}</note></tuple></presence>"
    )
}

/// Peer A publishing `document` to the SIPp presence server of `scenario`, which answers the
/// first PUBLISH late: returns 200 ms after the PUBLISH went out, while it is unanswered.
async fn first_publish_unanswered(scenario: &str, document: &str) -> (Peer, support::Sipp) {
    let a = Peer::start("A").await;
    let sipp = support::Sipp::start(scenario, None, &[]);
    a.ua.set_account(webphone_sip::AccountConfig {
        server: Some(format!("127.0.0.1:{}", sipp.port)),
        username: "pub".into(),
        ..Default::default()
    });
    a.ua.publish_presence(document).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    (a, sipp)
}

/// SIPp saw the first PUBLISH and exactly one more (the first is retransmitted while SIPp
/// waits, so transactions are counted by CSeq).
fn assert_one_publish_after_the_first(sipp: &support::Sipp) {
    let log = sipp.messages();
    assert!(
        log.contains("CSeq: 2 PUBLISH") && !log.contains("CSeq: 3 PUBLISH"),
        "the first PUBLISH and one more:\n{log}"
    );
}

/// Presence taken down while its first PUBLISH is unanswered (RFC 3903 §4.5): the removal
/// goes out with the entity tag of that PUBLISH's 200; a 412 to the removal (the server
/// forgot the tag) means the publication is gone, so nothing is sent again.
#[tokio::test]
async fn presence_removed_while_its_first_publish_is_unanswered() {
    if !support::have_sipp("presence_removed_while_its_first_publish_is_unanswered") {
        return;
    }
    let (a, mut sipp) = first_publish_unanswered("publish_slow_uas.xml", &pidf("online")).await;
    a.ua.unpublish_presence().unwrap();
    sipp.assert_success(Duration::from_secs(15)).await;
    assert_one_publish_after_the_first(&sipp);
    a.ua.shutdown().await;
}

/// Quitting while the first PUBLISH is unanswered: the removal waits for its answer (the
/// entity tag) and then goes out before the user agent stops (RFC 3903 §4.1, §4.5), so the
/// presence does not stay online on the server until it expires. Same SIPp server as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_published_just_before_shutdown_is_removed() {
    if !support::have_sipp("presence_published_just_before_shutdown_is_removed") {
        return;
    }
    let (a, mut sipp) = first_publish_unanswered("publish_slow_uas.xml", &pidf("online")).await;
    a.ua.shutdown().await;
    sipp.assert_success(Duration::from_secs(15)).await;
    assert_one_publish_after_the_first(&sipp);
}

/// RFC 3903 §4.1/§4.4: a new state asked while the first PUBLISH is unanswered waits for its
/// answer and then modifies that publication by its entity tag (SIPp checks both: no second
/// PUBLISH while the first is out, then `SIP-If-Match: e1` with the new body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changed_while_its_first_publish_is_unanswered_modifies_it() {
    if !support::have_sipp("presence_changed_while_its_first_publish_is_unanswered_modifies_it") {
        return;
    }
    let (a, mut sipp) =
        first_publish_unanswered("publish_slow_modify_uas.xml", &pidf("online")).await;
    a.ua.publish_presence(&pidf("in a meeting")).unwrap();
    sipp.assert_success(Duration::from_secs(15)).await;
    assert_one_publish_after_the_first(&sipp);
    a.ua.shutdown().await;
}
