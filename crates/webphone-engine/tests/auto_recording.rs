//! `voicerecording` with `voicerecupload`: which connected calls are recorded, where, and
//! what stays on disk. Real engines call each other over UDP on loopback; uploads go to a real
//! HTTP server on loopback; recordings are real WAV files in the profile's folder.

#![allow(clippy::unwrap_used)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn wavs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("recordings"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect()
        })
        .unwrap_or_default()
}

/// One call from a phone with `extra` settings (its profile in `dir`) to an answering
/// phone, two seconds long; returns once the caller saw the CDR.
async fn recorded_call(dir: &Path, extra: &[(&'static str, String)]) -> TestPhone {
    let port = free_port();
    let mut callee = TestPhone::new(&[
        ("username", "bob".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
        ("autoaccept", "true".into()),
        ("signalingport", port.to_string()),
    ])
    .await;
    let mut p = vec![
        ("username", "alice".to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ];
    p.extend(extra.iter().cloned());
    let mut alice = TestPhone::in_dir(&p, Some(dir)).await;
    alice
        .api("call", &[&format!("sip:bob@127.0.0.1:{port}")])
        .await;
    alice.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    alice.api("hangup", &[]).await;
    alice.callback("onCdr", 10).await;
    callee.call_state("callDisconnected", 10).await;
    callee.stop().await;
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicerecording_2_uploads_and_deletes_1_keeps_locally_0_records_nothing() {
    let (http, uploads) = http_server(&[]).await;
    let url = format!("http://127.0.0.1:{http}/rec/CALLID.wav");

    // 2: remote only: uploaded (PUT of a WAV), then gone from the profile's folder.
    let dir2 = TempDir::new("autorec2");
    let mut alice = recorded_call(
        &dir2.0,
        &[
            ("voicerecording", "2".into()),
            ("voicerecupload", url.clone()),
        ],
    )
    .await;
    alice
        .notification(|t| t.starts_with("VREC,-1,3,3,"), 15)
        .await;
    {
        let got = uploads.lock().unwrap();
        assert_eq!(got.len(), 1, "one upload");
        assert_eq!(got[0].method, "PUT");
        assert!(
            got[0].path.starts_with("/rec/") && got[0].path.ends_with(".wav"),
            "{}",
            got[0].path
        );
        assert!(
            got[0].body.starts_with(b"RIFF") && got[0].body.len() > 20_000,
            "a WAV with audio"
        );
    }
    let mut left = wavs(&dir2.0);
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = wavs(&dir2.0);
    }
    assert!(left.is_empty(), "remote only: nothing kept: {left:?}");
    alice.stop().await;

    // 1: a local file, no upload even with an upload URL.
    let dir1 = TempDir::new("autorec1");
    let mut alice = recorded_call(
        &dir1.0,
        &[
            ("voicerecording", "1".into()),
            ("voicerecupload", url.clone()),
        ],
    )
    .await;
    alice
        .notification(|t| t.starts_with("VREC,-1,3,1,"), 15)
        .await;
    let kept = wavs(&dir1.0);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let (samples, _) = read_wav(&kept[0]);
    assert!(samples.len() > 8000, "the call is in the file");
    assert_eq!(uploads.lock().unwrap().len(), 1, "no upload for 1");
    alice.stop().await;

    // 0: nothing, whatever voicerecupload says.
    let dir0 = TempDir::new("autorec0");
    let alice = recorded_call(
        &dir0.0,
        &[
            ("voicerecording", "0".into()),
            ("voicerecupload", url.clone()),
        ],
    )
    .await;
    assert!(alice.notifications("VREC,").is_empty());
    assert!(wavs(&dir0.0).is_empty());
    assert_eq!(uploads.lock().unwrap().len(), 1);
    alice.stop().await;
}

/// `voicerecupload` naming a handler script (a query: `upload?filename=...`) gets the
/// recording as a multipart POST; naming a local file path (with tokens), the file is
/// written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_go_by_multipart_post_or_to_a_local_path() {
    let (http, uploads) = http_server(&[]).await;
    let url = format!("http://127.0.0.1:{http}/upload?filename=rec-CALLID.wav");
    let dir = TempDir::new("autorec-post");
    let mut alice = recorded_call(
        &dir.0,
        &[("voicerecording", "2".into()), ("voicerecupload", url)],
    )
    .await;
    alice
        .notification(|t| t.starts_with("VREC,-1,3,3,"), 15)
        .await;
    {
        let got = uploads.lock().unwrap();
        assert_eq!(got.len(), 1, "one upload");
        assert_eq!(got[0].method, "POST");
        assert!(
            got[0].path.starts_with("/upload?filename=rec-"),
            "{}",
            got[0].path
        );
        let body = &got[0].body;
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(
            has(b"Content-Disposition: form-data; name=\"file\""),
            "multipart part `file`"
        );
        assert!(
            has(b"RIFF") && body.len() > 20_000,
            "a WAV with audio in the part"
        );
    }
    alice.stop().await;

    let dest = TempDir::new("autorec-local-dest");
    let target = dest.0.join("CALLER-CALLED.wav");
    let dir = TempDir::new("autorec-local");
    // voicerecupload alone records every call; a path is a local destination (VREC type 1).
    let mut alice =
        recorded_call(&dir.0, &[("voicerecupload", target.display().to_string())]).await;
    alice
        .notification(|t| t.starts_with("VREC,-1,3,1,"), 15)
        .await;
    let written = dest.0.join("alice-bob.wav");
    let (samples, _) = read_wav(&written);
    assert!(samples.len() > 8000, "the call is in {}", written.display());
    alice.stop().await;
}
