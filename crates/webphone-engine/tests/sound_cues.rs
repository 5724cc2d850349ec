//! Local sound cues (`beeponconnect`, `beeponincoming`, `playdtmfsound`): real engines call
//! each other over UDP on loopback; the cues go to the ring device, here a WAV file
//! (`audiodevicering=file:...`), whose content is checked for the cue's frequencies.

#![allow(clippy::unwrap_used)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Waits until the cue file has been written and closed (its size stops changing), then
/// returns its samples.
async fn cue_samples(path: &Path) -> (Vec<f64>, u32) {
    let mut last = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > 44 && len == last {
            break;
        }
        last = len;
    }
    read_wav(path)
}

/// `freq` clearly present in the whole cue and far above `other`.
fn assert_cue(path: &Path, x: &[f64], rate: u32, freq: f64, other: f64) {
    let want = goertzel(x, rate, freq);
    let not = goertzel(x, rate, other);
    assert!(
        want > 0.001,
        "{}: {freq} Hz too weak ({want:.5})",
        path.display()
    );
    assert!(
        want > 50.0 * not,
        "{}: {freq} Hz ({want:.5}) not above {other} Hz ({not:.7})",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beeponconnect_3_beeps_for_an_outgoing_call_and_beeponincoming_for_the_callee() {
    let dir = TempDir::new("cues");
    let ring_b = dir.file("bob-ring.wav");
    let (mut bob, uri) = answering_phone(
        "bob",
        &[
            ("beeponincoming", "1".into()),
            ("audiodevicering", format!("file:{}", ring_b.display())),
        ],
    )
    .await;
    let ring_a = dir.file("alice-ring.wav");
    let mut p = null_audio("alice");
    p.push(("beeponconnect", "3".into()));
    p.push(("audiodevicering", format!("file:{}", ring_a.display())));
    let mut alice = TestPhone::new(&p).await;
    alice.api("call", &[&uri]).await;
    alice.call_state("callConnected", 10).await;
    bob.call_state("callConnected", 10).await;

    let (x, rate) = cue_samples(&ring_a).await;
    assert_cue(&ring_a, &x, rate, 1000.0, 880.0);
    let (x, rate) = cue_samples(&ring_b).await;
    assert_cue(&ring_b, &x, rate, 880.0, 1000.0);

    alice.api("hangup", &[]).await;
    bob.call_state("callDisconnected", 10).await;
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playdtmfsound_plays_a_key_locally_but_not_a_string_when_set_to_1() {
    let dir = TempDir::new("dtmfcue");
    let (bob, uri) = answering_phone("bob", &[]).await;
    let ring = dir.file("alice-ring.wav");
    let mut p = null_audio("alice");
    p.push(("audiodevicering", format!("file:{}", ring.display())));
    // playdtmfsound 1 is the default
    let mut alice = TestPhone::new(&p).await;
    alice.api("call", &[&uri]).await;
    alice.call_state("callConnected", 10).await;

    alice.api("dtmf", &["123"]).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!ring.exists(), "a DTMF string is sent without local tones");

    alice.api("dtmf", &["5"]).await;
    let (x, rate) = cue_samples(&ring).await;
    // key 5: 770 Hz + 1336 Hz
    assert_cue(&ring, &x, rate, 770.0, 697.0);
    assert_cue(&ring, &x, rate, 1336.0, 1209.0);

    alice.api("hangup", &[]).await;
    alice.stop().await;
    bob.stop().await;
}
