//! A re-INVITE that overtakes the ACK of our 2xx (a peer holding the call right after it
//! was answered, as a transfer does). Before, rsipstack dropped it unanswered and the peer
//! waited for Timer B; now it waits for the ACK and is answered, or gets 491 Request
//! Pending when no ACK comes (RFC 3261 §14.2). A scripted UAC on a raw UDP socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{answered_call, ANSWER};
use webphone_sip::SipEvent;

#[tokio::test]
async fn reinvite_overtaking_the_ack_is_answered_once_the_ack_arrives() {
    let (mut ua, uac, tag) = answered_call("uas", "overtake-1").await;
    // The re-INVITE leaves first; the ACK follows 300 ms later.
    uac.send(&uac.invite("overtake-1", 2, Some(&tag))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    uac.send(&uac.ack("overtake-1", &tag)).await;
    // The UA sees the ACK, then the re-offer; the engine's answer goes out as the 200.
    let seen = ua
        .until("Reoffer", |e| matches!(e, SipEvent::Reoffer { .. }))
        .await;
    let call = match seen.last() {
        Some(SipEvent::Reoffer { call, .. }) => *call,
        other => panic!("{other:?}"),
    };
    ua.ua
        .answer_reoffer(call, ANSWER.replace("o=b 2 2", "o=b 2 3"));
    let resp = uac
        .final_response("2 INVITE", Duration::from_secs(5))
        .await
        .expect("an answer to the re-INVITE (it was dropped before the fix)");
    assert!(resp.starts_with("SIP/2.0 200"), "{resp}");
    assert!(
        resp.contains("o=b 2 3"),
        "the answer to the re-offer: {resp}"
    );
}

#[tokio::test]
async fn reinvite_whose_ack_never_comes_is_491_request_pending() {
    // `_ua` keeps the user agent running to the end of the test.
    let (_ua, uac, tag) = answered_call("uas", "noack-1").await;
    uac.send(&uac.invite("noack-1", 2, Some(&tag))).await;
    let resp = uac
        .final_response("2 INVITE", Duration::from_secs(6))
        .await
        .expect("a response to the re-INVITE");
    assert!(resp.starts_with("SIP/2.0 491"), "{resp}");
}
