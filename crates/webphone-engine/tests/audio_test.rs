//! `audiotest` (engine extension for the Settings page): the microphone test reports the
//! capture device's level as `VAD` notifications, and stops on `stop`; the speaker test plays
//! its two tones on the playback device. The devices are WAV files (`file:`), so no sound
//! card is needed and what was heard and played can be checked.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;

/// `local_avg` of a VAD notification.
fn local_avg(vad: &str) -> u32 {
    vad.split_whitespace()
        .skip_while(|w| *w != "local_avg:")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no local_avg in {vad}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microphone_test_reports_the_tone_level_until_stopped_and_silence_reads_zero() {
    let dir = TempDir::new("audiotest-mic");
    let tone = dir.file("tone.wav");
    write_tone(&tone, 1000.0, 5.0);
    let mut loud = TestPhone::new(&[
        ("audiodevicein", format!("file:{}", tone.display())),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    loud.api("audiotest", &["mic"]).await;
    let first = loud.notification(|n| n.starts_with("VAD,"), 5).await;
    assert!(
        first.contains("local_vad: ON") && first.contains("remote_vad: OFF"),
        "{first}"
    );
    // The tone is written at half scale: its RMS is far above the noise of silence.
    assert!(local_avg(&first) > 5000, "level of the 1 kHz tone: {first}");
    loud.notification(|n| n.starts_with("VAD,"), 5).await;
    loud.api("audiotest", &["stop"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    loud.drain();
    let before = loud.notifications("VAD,").len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    loud.drain();
    assert_eq!(
        loud.notifications("VAD,").len(),
        before,
        "no level reports after stop"
    );
    loud.stop().await;

    let mut quiet = silent_phone("quiet", None, &[]).await;
    quiet.api("audiotest", &["MIC"]).await;
    let vad = quiet.notification(|n| n.starts_with("VAD,"), 5).await;
    assert_eq!(local_avg(&vad), 0, "a null microphone is silent: {vad}");
    quiet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_test_plays_two_tones_on_the_playback_device() {
    let dir = TempDir::new("audiotest-speaker");
    let out = dir.file("speaker.wav");
    let phone = TestPhone::new(&[
        ("audiodevicein", "null".into()),
        ("audiodeviceout", format!("file:{}", out.display())),
    ])
    .await;
    phone.api("audiotest", &["speaker"]).await;
    // Written as it plays (about 1 s; the file writer buffers) and closed at the end.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut last = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        if len > 44 && len == last {
            break;
        }
        last = len;
    }
    let (x, rate) = read_wav(&out);
    let (a, b, none) = (
        goertzel(&x, rate, 440.0),
        goertzel(&x, rate, 660.0),
        goertzel(&x, rate, 1000.0),
    );
    assert!(
        a > 0.001 && b > 0.001,
        "both tones: 440 {a:.5}, 660 {b:.5} in {} samples at {rate} Hz",
        x.len()
    );
    assert!(
        a > 50.0 * none && b > 50.0 * none,
        "nothing else: {none:.7}"
    );
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_audiotest_action_is_refused_with_the_usage() {
    let phone = silent_phone("usage", None, &[]).await;
    let err = phone
        .phone
        .api("audiotest", vec!["camera".into()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("usage: audiotest"), "{err}");
    phone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphone_test_is_refused_during_a_call() {
    let mut phone = silent_phone("incall", None, &[]).await;
    phone.api("call", &["echo"]).await;
    phone.call_state("callConnected", 10).await;
    let err = phone
        .phone
        .api("audiotest", vec!["mic".into()])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the call has the microphone"),
        "{err}"
    );
    phone.api("hangup", &[]).await;
    phone.call_state("callDisconnected", 10).await;
    phone.api("audiotest", &["mic"]).await;
    phone.api("audiotest", &["stop"]).await;
    phone.stop().await;
}
