//! `p2psignaling`: with the default 1 a call to a full SIP URI goes straight to that host;
//! with 0 it goes through the server (its outbound proxy, with a `Route`), the Request-URI
//! unchanged. A real engine sends; two UDP sockets on loopback play the server and the peer
//! and report which one the INVITE reached.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;

/// The first INVITE either socket receives within 10 s: (0 server / 1 peer, the message).
async fn first_invite(server: &UdpSocket, peer: &UdpSocket) -> (usize, String) {
    let mut a = vec![0u8; 65535];
    let mut b = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (which, text) = tokio::select! {
            r = server.recv_from(&mut a) => (0, String::from_utf8_lossy(&a[..r.unwrap().0]).to_string()),
            r = peer.recv_from(&mut b) => (1, String::from_utf8_lossy(&b[..r.unwrap().0]).to_string()),
            _ = tokio::time::sleep_until(deadline) => panic!("no INVITE reached either socket"),
        };
        if text.starts_with("INVITE ") {
            return (which, text);
        }
    }
}

async fn call_with(p2p: Option<&str>) -> (usize, String, u16) {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (sp, pp) = (
        server.local_addr().unwrap().port(),
        peer.local_addr().unwrap().port(),
    );
    let mut params = vec![
        ("username", "alice".to_string()),
        ("serveraddress", format!("127.0.0.1:{sp}")),
        ("register", "0".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ];
    if let Some(v) = p2p {
        params.push(("p2psignaling", v.to_string()));
    }
    let alice = TestPhone::new(&params).await;
    alice
        .api("call", &[&format!("sip:bob@127.0.0.1:{pp}")])
        .await;
    let (which, invite) = first_invite(&server, &peer).await;
    alice.stop().await;
    (which, invite, pp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2psignaling_0_sends_calls_to_other_hosts_through_the_server() {
    let (which, invite, _) = call_with(None).await;
    assert_eq!(which, 1, "default: straight to the peer: {invite}");
    let (which, invite, pp0) = call_with(Some("0")).await;
    assert_eq!(which, 0, "p2psignaling=0: through the server: {invite}");
    assert!(
        invite.starts_with(&format!("INVITE sip:bob@127.0.0.1:{pp0}")),
        "the Request-URI still names the peer: {invite}"
    );
    assert!(
        invite
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("route:")),
        "a Route to the server: {invite}"
    );
}
