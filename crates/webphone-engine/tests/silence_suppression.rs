//! `silencesupress=1`: Opus calls use DTX: a silent microphone sends a packet every 400 ms
//! instead of every 20 ms, and the offer says `usedtx=1`. Real engines over UDP on loopback;
//! the packet counts come from `getlastcalldetails` after the call.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;

fn phone(user: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("username", user.to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
        ("codec", "opus".into()),
    ];
    p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    p
}

/// A three-second silent Opus call from a phone with `extra`; (packets sent, INVITE text).
async fn silent_call(extra: &[(&'static str, &str)]) -> (u64, String) {
    let port = free_port();
    let port_s = port.to_string();
    let mut bob = TestPhone::new(&phone(
        "bob",
        &[("signalingport", &port_s), ("autoaccept", "true")],
    ))
    .await;
    let mut alice = TestPhone::new(&phone("alice", extra)).await;
    alice
        .api("call", &[&format!("sip:bob@127.0.0.1:{port}")])
        .await;
    alice.call_state("callConnected", 10).await;
    let invite = alice.sent_message("3").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    alice.api("hangup", &[]).await;
    alice.callback("onCdr", 10).await;
    bob.call_state("callDisconnected", 10).await;
    let sent = rtp_sent(alice.api("getlastcalldetails", &[]).await.as_str().unwrap());
    for p in [&alice, &bob] {
        p.stop().await;
    }
    (sent, invite)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silencesupress_1_sends_a_silent_opus_stream_in_a_few_packets() {
    let (plain, invite) = silent_call(&[]).await;
    assert!(!invite.contains("usedtx=1"), "{invite}");
    assert!(plain >= 120, "20 ms packets for 3 s: {plain}");
    let (dtx, invite) = silent_call(&[("silencesupress", "1")]).await;
    assert!(invite.contains("usedtx=1"), "{invite}");
    eprintln!("silent 3 s Opus call: {plain} packets sent, {dtx} with DTX");
    assert!(
        dtx * 5 < plain,
        "DTX sent {dtx} packets, continuous {plain}"
    );
}
