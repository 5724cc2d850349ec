//! RFC 3261 §13.2.2.4 (and RFC 6026 §8.4): the UAC core ACKs every 2xx to its INVITE,
//! retransmissions included. A UAS on a real UDP socket (scripted: SIPp answers a repeated
//! ACK by re-sending its 200 and the two never stop) answers our INVITE with 200, takes the
//! ACK, sends the same 200 again and must get a second ACK; our BYE then ends the call.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::net::UdpSocket;
use webphone_sip::{SipConfig, SipEvent, SipUa, Transport};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

/// The next request of `method` on `sock` (others skipped), within 5 s.
async fn next_request(sock: &UdpSocket, method: &str) -> (String, std::net::SocketAddr) {
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, src) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {method} in time"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with(&format!("{method} ")) {
            return (text, src);
        }
    }
}

#[tokio::test]
async fn retransmitted_200_to_invite_is_acked_again() {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let uas = sock.local_addr().unwrap();
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-ack-test".into(),
    })
    .await
    .unwrap();
    let offer = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let call = ua.invite(&format!("sip:bob@{uas}"), offer.into()).unwrap();
    let (invite, src) = next_request(&sock, "INVITE").await;
    let answer = "v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=uas1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{uas}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        header(&invite, "Via"),
        header(&invite, "From"),
        header(&invite, "To"),
        header(&invite, "Call-ID"),
        header(&invite, "CSeq"),
        answer.len(),
    );
    sock.send_to(ok.as_bytes(), src).await.unwrap();
    let (ack1, _) = next_request(&sock, "ACK").await;
    assert_eq!(header(&ack1, "CSeq"), "1 ACK");
    // The 200 again, as a UAS retransmits it (RFC 3261 §13.3.1.4).
    sock.send_to(ok.as_bytes(), src).await.unwrap();
    let (ack2, _) = next_request(&sock, "ACK").await;
    assert_eq!(header(&ack2, "CSeq"), "1 ACK");
    assert_eq!(
        header(&ack2, "Call-ID"),
        header(&invite, "Call-ID"),
        "the ACK of the same dialog"
    );
    // The call is up once, not twice, and ends with our BYE.
    let mut answered = 0;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        if matches!(ev, SipEvent::Answered { call: c, .. } if c == call) {
            answered += 1;
        }
    }
    assert_eq!(answered, 1);
    ua.hangup(call);
    let (bye, bsrc) = next_request(&sock, "BYE").await;
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via"),
        header(&bye, "From"),
        header(&bye, "To"),
        header(&bye, "Call-ID"),
        header(&bye, "CSeq"),
    );
    sock.send_to(reply.as_bytes(), bsrc).await.unwrap();
    ua.shutdown().await;
}
