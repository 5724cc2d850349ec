//! A re-INVITE that overtakes the ACK of our 2xx (a peer holding the call right after it
//! was answered, as a transfer does). Before, rsipstack dropped it unanswered and the peer
//! waited for Timer B; now it waits for the ACK and is answered, or gets 491 Request
//! Pending when no ACK comes (RFC 3261 §14.2). A scripted UAC on a raw UDP socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{header, Peer, ANSWER, OFFER};
use tokio::net::UdpSocket;
use webphone_sip::SipEvent;

struct Uac {
    sock: UdpSocket,
    port: u16,
    target: SocketAddr,
}

impl Uac {
    async fn new(target: SocketAddr) -> Uac {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        Uac { sock, port, target }
    }

    /// An INVITE (CSeq `cseq`) of dialog `call_id`; `to_tag` makes it a re-INVITE.
    fn invite(&self, call_id: &str, cseq: u32, to_tag: Option<&str>) -> String {
        let port = self.port;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "INVITE sip:uas@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{call_id}-{cseq}\r\n\
             From: <sip:uac@127.0.0.1:{port}>;tag=uac1\r\n\
             To: <sip:uas@{target}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:uac@127.0.0.1:{port}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{OFFER}",
            OFFER.len(),
            target = self.target,
        )
    }

    fn ack(&self, call_id: &str, to_tag: &str) -> String {
        let port = self.port;
        format!(
            "ACK sip:uas@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{call_id}-ack\r\n\
             From: <sip:uac@127.0.0.1:{port}>;tag=uac1\r\n\
             To: <sip:uas@{target}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            target = self.target,
        )
    }

    async fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.target)
            .await
            .unwrap();
    }

    /// The next final response whose CSeq is `cseq` (provisionals and other CSeqs, such as
    /// retransmissions of the first 200, skipped), within `wait`.
    async fn final_response(&self, cseq: &str, wait: Duration) -> Option<String> {
        let until = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _) = tokio::time::timeout_at(until, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 ")
                && !text.starts_with("SIP/2.0 1")
                && header(&text, "CSeq") == cseq
            {
                return Some(text);
            }
        }
    }
}

/// The UAC calls, our UA answers; returns the 200 (not acknowledged yet) and its To tag.
async fn answered_call(ua: &mut Peer, uac: &Uac, call_id: &str) -> String {
    uac.send(&uac.invite(call_id, 1, None)).await;
    let (call, _) = ua.incoming().await;
    ua.ua.answer(call, ANSWER.into());
    let ok = uac
        .final_response("1 INVITE", Duration::from_secs(5))
        .await
        .expect("a 200 to the INVITE");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    header(&ok, "To")
        .split(";tag=")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .expect("a To tag in the 200")
        .to_string()
}

#[tokio::test]
async fn reinvite_overtaking_the_ack_is_answered_once_the_ack_arrives() {
    let mut ua = Peer::start("uas").await;
    let uac = Uac::new(ua.ua.local_addr()).await;
    let tag = answered_call(&mut ua, &uac, "overtake-1").await;
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
    let mut ua = Peer::start("uas").await;
    let uac = Uac::new(ua.ua.local_addr()).await;
    let tag = answered_call(&mut ua, &uac, "noack-1").await;
    uac.send(&uac.invite("noack-1", 2, Some(&tag))).await;
    let resp = uac
        .final_response("2 INVITE", Duration::from_secs(6))
        .await
        .expect("a response to the re-INVITE");
    assert!(resp.starts_with("SIP/2.0 491"), "{resp}");
}
