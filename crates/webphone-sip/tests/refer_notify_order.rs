//! The NOTIFYs that report on a REFER we accepted (RFC 3515 §2.4.4) go out one at a time:
//! the next only after the previous one got its final response (RFC 6665 §4.2.2), so a peer
//! never sees them out of CSeq order, and no `100 Trying` follows the final report. A
//! scripted transferor on a raw UDP socket holds its answer to the first NOTIFY back.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{answered_call, header, response_to};
use webphone_sip::SipEvent;

/// The sipfrag status line of a NOTIFY ("SIP/2.0 200 OK" → 200).
fn reported(notify: &str) -> u16 {
    notify
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| b.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no sipfrag in {notify}"))
}

fn cseq_of(msg: &str) -> u32 {
    header(msg, "CSeq")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn refer_reports_wait_for_the_previous_notify_to_be_answered() {
    let (mut ua, uac, tag) = answered_call("transferee", "refer-order-1").await;
    uac.send(&uac.ack("refer-order-1", &tag)).await;
    let refer = uac.request(
        "REFER",
        "refer-order-1",
        2,
        &tag,
        "Refer-To: <sip:carol@127.0.0.1:9>\r\n",
    );
    uac.send(&refer).await;
    let seen = ua
        .until("Refer", |e| matches!(e, SipEvent::Refer { .. }))
        .await;
    let Some(SipEvent::Refer { call, .. }) = seen.last() else {
        panic!("{seen:?}")
    };
    // The transfer target answers at once: the final report is asked for right away.
    ua.ua.accept_refer(*call).unwrap();
    ua.ua.notify_refer(*call, 200).unwrap();

    // The first NOTIFY stays unanswered for 700 ms: meanwhile only its retransmissions may
    // come, never the next report.
    let mut first: Option<String> = None;
    let until = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Some(msg) = uac
        .next_message(until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        if !msg.starts_with("NOTIFY ") {
            continue;
        }
        match &first {
            None => first = Some(msg),
            Some(f) => assert_eq!(
                cseq_of(&msg),
                cseq_of(f),
                "a second NOTIFY before the first was answered:\n{msg}"
            ),
        }
    }
    let first = first.expect("a NOTIFY for the accepted REFER");
    uac.send(&response_to(&first, "200 OK", None, "")).await;
    let mut reports = vec![reported(&first)];
    let mut last_cseq = cseq_of(&first);
    // The rest, each answered at once.
    while let Some(msg) = uac.next_message(Duration::from_millis(1500)).await {
        if !msg.starts_with("NOTIFY ") {
            continue;
        }
        uac.send(&response_to(&msg, "200 OK", None, "")).await;
        if cseq_of(&msg) == last_cseq {
            continue; // a retransmission
        }
        assert!(cseq_of(&msg) > last_cseq, "out of order:\n{msg}");
        last_cseq = cseq_of(&msg);
        reports.push(reported(&msg));
    }
    assert_eq!(
        reports.last(),
        Some(&200),
        "the final report comes last: {reports:?}"
    );
    assert!(
        reports == [200] || reports == [100, 200],
        "100 Trying (if still worth sending) then 200: {reports:?}"
    );
}
