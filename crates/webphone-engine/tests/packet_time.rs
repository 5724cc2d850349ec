//! Packet length (`a=ptime`, `codecframecount`): a phone with `codecframecount=2` asks for and
//! sends 40 ms PCMU packets, its peer sends what it asked for, and the audio arrives intact.
//! Real engines over UDP on loopback with WAV files as microphone and speaker.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecframecount_2_gives_40ms_packets_both_ways_and_clean_audio() {
    let _audio = audio_serial().await;
    let dir = TempDir::new("ptime40");
    let tone = dir.file("tone.wav");
    write_tone(&tone, 1000.0, 6.0);
    let rec = dir.file("bob-heard.wav");
    let port = free_port();
    let mut bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("signalingport", port.to_string()),
        ("autoaccept", "true".into()),
        ("codec", "pcmu".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", format!("file:{}", rec.display())),
    ])
    .await;
    let mut alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("codec", "pcmu".into()),
        ("codecframecount", "2".into()),
        ("audiodevicein", format!("file:{}", tone.display())),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    alice
        .api("call", &[&format!("sip:bob@127.0.0.1:{port}")])
        .await;
    alice.call_state("callConnected", 10).await;
    bob.call_state("callConnected", 10).await;
    let invite = alice.api("getsipmessage", &["1", "3"]).await;
    assert!(
        invite.as_str().unwrap().contains("a=ptime:40\r\n"),
        "{invite}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    alice.api("hangup", &[]).await;
    alice.callback("onCdr", 10).await;
    bob.callback("onCdr", 10).await;
    let a = rtp_sent(alice.api("getlastcalldetails", &[]).await.as_str().unwrap());
    let b = rtp_sent(bob.api("getlastcalldetails", &[]).await.as_str().unwrap());
    eprintln!("4 s call: alice sent {a} packets, bob {b}");
    // 25 packets a second instead of 50, both ways (bob follows alice's a=ptime).
    assert!((80..=130).contains(&a), "alice sent {a}");
    assert!((80..=130).contains(&b), "bob sent {b}");
    alice.stop().await;
    bob.stop().await;
    assert_tone(&rec, 1000.0, 440.0);
}
