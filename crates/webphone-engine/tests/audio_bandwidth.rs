//! `audio_bandwidth`: the limit is announced as `b=AS` in the SDP of our INVITE (and of our
//! answers); without it no `b=` line is sent. Real engines over UDP on loopback; the SDP is
//! read from the messages they sent (`getsipmessage`).

#![allow(clippy::unwrap_used)]
mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_bandwidth_is_announced_in_offers_and_answers() {
    let port = free_port();
    let mut bp = auto_answer("bob");
    bp.push(("signalingport", port.to_string()));
    bp.push(("audio_bandwidth", "40".into()));
    let mut bob = TestPhone::new(&bp).await;
    let mut ap = auto_answer("alice");
    ap.push(("audio_bandwidth", "24".into()));
    let mut alice = TestPhone::new(&ap).await;
    alice
        .api("call", &[&format!("sip:bob@127.0.0.1:{port}")])
        .await;
    alice.call_state("callConnected", 10).await;
    bob.call_state("callConnected", 10).await;
    let invite = alice.sent_message("3").await;
    assert!(invite.contains("\r\nb=AS:24\r\n"), "{invite}");
    let ok = bob.sent_message("4").await;
    assert!(ok.contains("\r\nb=AS:40\r\n"), "{ok}");

    // Unset: no b= line.
    let mut carol = TestPhone::new(&auto_answer("carol")).await;
    carol
        .api("call", &[&format!("sip:bob@127.0.0.1:{port}")])
        .await;
    carol.call_state("callConnected", 10).await;
    assert!(!carol.sent_message("3").await.contains("b=AS"));
    for p in [&alice, &bob, &carol] {
        let _ = p.phone.api("hangup", vec!["-2".into()]).await;
        p.stop().await;
    }
}
