//! Session rules of issue 3 over real loopback sockets: re-INVITE / UPDATE both ways,
//! 491 glare, far-end hold (SIPp), and the fallback answer. Assertions are on the events
//! of the public API and on what SIPp checks on the wire.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{establish, have_sipp, Peer, Sipp};
use webphone_sip::{SipEvent, SipUa};

fn hold_offer(dir: &str) -> String {
    format!("v=0\r\no=a 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na={dir}\r\n")
}

fn answer_sdp(dir: &str) -> String {
    format!("v=0\r\no=b 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na={dir}\r\n")
}

#[tokio::test]
async fn reinvite_hold_and_update_resume_between_two_uas() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let (ca, cb) = establish(&mut a, &mut b).await;

    // A holds B with a re-INVITE a=sendonly; B's engine answers recvonly.
    a.ua.reinvite(ca, hold_offer("sendonly")).unwrap();
    match b.next().await {
        SipEvent::Reoffer { call, sdp } => {
            assert_eq!(call, cb);
            assert!(sdp.contains("a=sendonly"));
        }
        other => panic!("B: expected Reoffer, got {other:?}"),
    }
    b.ua.answer_reoffer(cb, answer_sdp("recvonly"));
    match a.next().await {
        SipEvent::Reanswered { call, sdp } => {
            assert_eq!(call, ca);
            assert_eq!(sdp.as_deref(), Some(answer_sdp("recvonly").as_str()));
        }
        other => panic!("A: expected Reanswered, got {other:?}"),
    }

    // B (the callee) resumes with an UPDATE (RFC 3311).
    b.ua.update(cb, answer_sdp("sendrecv")).unwrap();
    match a.next().await {
        SipEvent::Reoffer { call, sdp } => {
            assert_eq!(call, ca);
            assert!(sdp.contains("a=sendrecv"));
        }
        other => panic!("A: expected Reoffer (UPDATE), got {other:?}"),
    }
    a.ua.answer_reoffer(ca, hold_offer("sendrecv"));
    match b.next().await {
        SipEvent::Reanswered { call, sdp } => {
            assert_eq!(call, cb);
            assert!(sdp.unwrap().contains("a=sendrecv"));
        }
        other => panic!("B: expected Reanswered, got {other:?}"),
    }

    // An empty engine answer refuses the offer with 488; the call goes on.
    a.ua.reinvite(ca, hold_offer("inactive")).unwrap();
    assert!(matches!(b.next().await, SipEvent::Reoffer { .. }));
    b.ua.answer_reoffer(cb, String::new());
    match a.next().await {
        SipEvent::ReofferFailed { call, code, .. } => {
            assert_eq!(call, ca);
            assert_eq!(code, 488);
        }
        other => panic!("A: expected ReofferFailed, got {other:?}"),
    }
    a.ua.hangup(ca);
    assert!(matches!(a.next().await, SipEvent::Ended { .. }));
    assert!(matches!(b.next().await, SipEvent::Ended { .. }));
}

#[tokio::test]
async fn unanswered_reoffer_is_answered_with_recvonly_fallback() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    a.ua.reinvite(ca, hold_offer("sendonly")).unwrap();
    assert!(matches!(b.next().await, SipEvent::Reoffer { call, .. } if call == cb));
    // B's engine stays silent: the UA answers on its own after the timeout.
    let t0 = std::time::Instant::now();
    match a.next().await {
        SipEvent::Reanswered { call, sdp } => {
            assert_eq!(call, ca);
            let sdp = sdp.unwrap();
            assert!(sdp.contains("a=recvonly"), "{sdp}");
            assert!(sdp.contains("m=audio 40002"), "our last SDP: {sdp}");
        }
        other => panic!("A: expected Reanswered, got {other:?}"),
    }
    assert!(t0.elapsed() >= SipUa::REOFFER_ANSWER_TIMEOUT - Duration::from_millis(200));
    a.ua.hangup(ca);
}

#[tokio::test]
async fn simultaneous_reinvites_resolve_glare_with_491_backoff() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let (ca, cb) = establish(&mut a, &mut b).await;
    a.ua.reinvite(ca, hold_offer("sendonly")).unwrap();
    b.ua.reinvite(cb, answer_sdp("sendonly")).unwrap();
    // Each side answers whatever re-offer reaches it and waits for its own answer.
    let (mut a_done, mut b_done) = (false, false);
    let (mut a_offers, mut b_offers) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(a_done && b_done) {
        tokio::select! {
            ev = a.rx.recv() => match ev.unwrap() {
                SipEvent::Reoffer { call, .. } => { a_offers += 1; a.ua.answer_reoffer(call, hold_offer("recvonly")); }
                SipEvent::Reanswered { call, .. } => { assert_eq!(call, ca); a_done = true; }
                SipEvent::Trace { .. } => {}
                other => panic!("A: unexpected {other:?}"),
            },
            ev = b.rx.recv() => match ev.unwrap() {
                SipEvent::Reoffer { call, .. } => { b_offers += 1; b.ua.answer_reoffer(call, answer_sdp("recvonly")); }
                SipEvent::Reanswered { call, .. } => { assert_eq!(call, cb); b_done = true; }
                SipEvent::Trace { .. } => {}
                other => panic!("B: unexpected {other:?}"),
            },
            _ = tokio::time::sleep_until(deadline) => panic!("glare not resolved: a_done={a_done} b_done={b_done}"),
        }
    }
    // Each saw the other's offer exactly once: the glared attempts were refused with 491
    // before reaching the engine.
    assert_eq!((a_offers, b_offers), (1, 1));
    a.ua.hangup(ca);
}

#[tokio::test]
async fn sipp_far_end_hold_and_resume() {
    if !have_sipp("sipp_far_end_hold_and_resume") {
        return;
    }
    let mut ua = Peer::start("ua").await;
    let target = ua.ua.local_addr().to_string();
    let mut sipp = Sipp::start("far_end_hold.xml", Some(&target), &["-s", "webphone"]);
    let (call, sdp) = ua.incoming().await;
    assert!(sdp.unwrap().contains("a=sendrecv"));
    ua.ua.answer(call, answer_sdp("sendrecv"));
    assert!(matches!(ua.next().await, SipEvent::Answered { .. }));
    // Hold: the engine answers recvonly.
    match ua.next().await {
        SipEvent::Reoffer { call: c, sdp } => {
            assert_eq!(c, call);
            assert!(sdp.contains("a=sendonly"));
        }
        other => panic!("expected Reoffer (hold), got {other:?}"),
    }
    ua.ua.answer_reoffer(call, answer_sdp("recvonly"));
    // Resume: left to the fallback (sendrecv again).
    match ua.next().await {
        SipEvent::Reoffer { sdp, .. } => assert!(sdp.contains("a=sendrecv")),
        other => panic!("expected Reoffer (resume), got {other:?}"),
    }
    match ua.next_within(Duration::from_secs(15)).await {
        SipEvent::Ended { call: c, .. } => assert_eq!(c, call),
        other => panic!("expected Ended, got {other:?}"),
    }
    sipp.assert_success(Duration::from_secs(20)).await;
}

#[tokio::test]
async fn sipp_prack_for_reliable_180() {
    if !have_sipp("sipp_prack_for_reliable_180") {
        return;
    }
    let mut ua = Peer::start("ua").await;
    let target = ua.ua.local_addr().to_string();
    let mut sipp = Sipp::start("prack_uac.xml", Some(&target), &["-s", "webphone"]);
    let (call, _) = ua.incoming().await;
    ua.ua.ringing(call);
    // SIPp PRACKs 1.2 s after the first 180; answer after that.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ua.ua.answer(call, answer_sdp("sendrecv"));
    assert!(matches!(ua.next().await, SipEvent::Answered { .. }));
    match ua.next_within(Duration::from_secs(15)).await {
        SipEvent::Ended { call: c, .. } => assert_eq!(c, call),
        other => panic!("expected Ended, got {other:?}"),
    }
    sipp.assert_success(Duration::from_secs(20)).await;
    // On the wire: the reliable 180 was retransmitted (0.5 s, 1 s after the first) with the
    // same RSeq, and not any more after the PRACK.
    let log = sipp.messages();
    let prack_at = log.find("PRACK sip:").expect("PRACK sent");
    let before: Vec<&str> = log[..prack_at]
        .lines()
        .filter(|l| l.starts_with("RSeq:"))
        .collect();
    assert!(before.len() >= 2, "reliable 180 retransmitted: {before:?}");
    assert!(
        before.iter().all(|l| *l == before[0]),
        "same RSeq: {before:?}"
    );
    assert!(
        !log[prack_at..].contains("180 Ringing"),
        "no 180 after the PRACK:\n{log}"
    );
}

#[tokio::test]
async fn two_uas_reliable_180_is_pracked_by_the_caller() {
    // A offers 100rel (Supported) and PRACKs; B's 180 is reliable and stops being
    // retransmitted: A sees exactly one Progress, no duplicate from retransmissions.
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let ca = a.ua.invite(&b.uri("bob"), support::OFFER.into()).unwrap();
    let (cb, _) = b.incoming().await;
    b.ua.ringing(cb);
    match a.next().await {
        SipEvent::Progress { call, code, .. } => {
            assert_eq!(call, ca);
            assert_eq!(code, 180);
        }
        other => panic!("A: expected Progress, got {other:?}"),
    }
    // Retransmissions would come at 0.5, 1.5 and 3.5 s; none must reach A as Progress.
    a.assert_quiet(Duration::from_millis(1800)).await;
    b.ua.answer(cb, support::ANSWER.into());
    assert!(matches!(a.next().await, SipEvent::Answered { .. }));
    a.ua.hangup(ca);
}

#[tokio::test]
async fn sipp_302_redirect_is_followed_to_the_contact() {
    if !have_sipp("sipp_302_redirect_is_followed_to_the_contact") {
        return;
    }
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    let b_uri = b.uri("bob");
    let mut sipp = Sipp::start("redirect_uas.xml", None, &["-key", "target", &b_uri]);
    let ca =
        a.ua.invite(&sipp.uri("moved"), support::OFFER.into())
            .unwrap();
    match a.next().await {
        SipEvent::Redirected { call, code, target } => {
            assert_eq!(call, ca);
            assert_eq!(code, 302);
            assert_eq!(target, b_uri);
        }
        other => panic!("A: expected Redirected, got {other:?}"),
    }
    let (cb, _) = b.incoming().await;
    b.ua.answer(cb, support::ANSWER.into());
    match a.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, ca),
        other => panic!("A: expected Answered, got {other:?}"),
    }
    sipp.assert_success(Duration::from_secs(10)).await;
    a.ua.hangup(ca);
}

#[tokio::test]
async fn sipp_early_media_183_and_forked_2xx() {
    if !have_sipp("sipp_early_media_183_and_forked_2xx") {
        return;
    }
    let mut a = Peer::start("a").await;
    let mut sipp = Sipp::start("early_media_forking_uas.xml", None, &[]);
    let ca =
        a.ua.invite(&sipp.uri("fork"), support::OFFER.into())
            .unwrap();
    // Both early dialogs' 183s with their early-media SDP, then one Answered (forkA's).
    let seen = a
        .until("Answered", |e| matches!(e, SipEvent::Answered { .. }))
        .await;
    let progress: Vec<&Option<String>> = seen
        .iter()
        .filter_map(|e| match e {
            SipEvent::Progress {
                call,
                code: 183,
                sdp,
                ..
            } if *call == ca => Some(sdp),
            _ => None,
        })
        .collect();
    assert!(
        progress
            .iter()
            .any(|s| s.as_deref().is_some_and(|s| s.contains("m=audio 41000"))),
        "183 with forkA's early media: {seen:?}"
    );
    match seen.last() {
        Some(SipEvent::Answered { call, sdp }) => {
            assert_eq!(*call, ca);
            assert!(
                sdp.as_deref().unwrap().contains("o=forkA"),
                "first 2xx kept"
            );
        }
        other => panic!("{other:?}"),
    }
    // The forked 2xx (forkB) is ACKed and BYEd by the stack; it is not reported.
    a.assert_quiet(Duration::from_millis(800)).await;
    a.ua.hangup(ca);
    assert!(matches!(a.next().await, SipEvent::Ended { .. }));
    sipp.assert_success(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn sipp_session_interval_below_min_se_gets_422() {
    if !have_sipp("sipp_session_interval_below_min_se_gets_422") {
        return;
    }
    let mut ua = Peer::start("ua").await;
    let target = ua.ua.local_addr().to_string();
    let mut sipp = Sipp::start(
        "session_timer_422_uac.xml",
        Some(&target),
        &["-s", "webphone"],
    );
    sipp.assert_success(Duration::from_secs(15)).await;
    // Refused before any call existed: no Incoming.
    ua.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn session_timer_is_negotiated_between_two_uas() {
    let mut a = Peer::start("a").await;
    let mut b = Peer::start("b").await;
    a.ua.set_trace(true);
    let ca = a.ua.invite(&b.uri("bob"), support::OFFER.into()).unwrap();
    let (cb, _) = b.incoming().await;
    b.ua.answer(cb, support::ANSWER.into());
    let mut invite = None;
    let mut ok = None;
    loop {
        match a.rx.recv().await.unwrap() {
            SipEvent::Trace {
                outgoing: true,
                text,
                ..
            } if text.starts_with("INVITE ") => invite = Some(text),
            SipEvent::Trace {
                outgoing: false,
                text,
                ..
            } if text.starts_with("SIP/2.0 200") => ok = Some(text),
            SipEvent::Answered { call, .. } => {
                assert_eq!(call, ca);
                break;
            }
            _ => {}
        }
    }
    let invite = invite.unwrap();
    assert!(invite.contains("Session-Expires: 1800"), "{invite}");
    assert!(invite.contains("Min-SE: 90"), "{invite}");
    assert!(
        invite.contains("timer") && invite.contains("100rel"),
        "{invite}"
    );
    // B lets the caller (who supports timers) refresh (RFC 4028 §9).
    let ok = ok.unwrap();
    assert!(ok.contains("Session-Expires: 1800;refresher=uac"), "{ok}");
    assert!(ok.contains("Require: timer"), "{ok}");
    a.ua.hangup(ca);
}
