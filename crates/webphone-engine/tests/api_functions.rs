//! API functions about lines, mute, call details and diagnostics, through real calls between
//! two engines on loopback.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

async fn pair(dir: &TempDir, alice_extra: &[(&str, String)]) -> (TestPhone, TestPhone, u16) {
    write_tone(&dir.file("a-in.wav"), 1000.0, 4.0);
    write_tone(&dir.file("b-in.wav"), 440.0, 4.0);
    let port = free_port();
    let dev = |f: &str| format!("file:{}", dir.file(f).display());
    let mut ap = vec![
        ("username", "alice".to_string()),
        ("signalingport", port.to_string()),
        ("autoaccept", "true".into()),
        ("audiodevicein", dev("a-in.wav")),
        ("audiodeviceout", dev("a-out.wav")),
    ];
    ap.extend(alice_extra.iter().cloned());
    let alice = TestPhone::new(&ap).await;
    let bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("audiodevicein", dev("b-in.wav")),
        ("audiodeviceout", dev("b-out.wav")),
        // Two calls to the same peer are allowed here (the default refuses the second).
        ("disablesamecall", "0".into()),
    ])
    .await;
    (alice, bob, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_microphone_sends_no_audio_and_status_says_muted() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("mute");
    let (mut alice, mut bob, port) = pair(&dir, &[]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    // Two engines offer SDES keys by default (mediaencryption -1): the call is encrypted.
    assert_eq!(bob.api("isencrypted", &[]).await, Value::from(2));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("mute", &["true", "2"]).await;
    assert_eq!(bob.api("ismuted", &[]).await, Value::from(true));
    let details = bob.api("getlinedetails", &["1"]).await;
    let d = details.as_str().unwrap();
    assert!(d.starts_with("LINEDETAILS,1,Muted,"), "{d}");
    assert_eq!(d.split(',').nth(9), Some("2"), "mute field of {d}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    alice.callback("onCdr", 10).await;
    assert!(bob
        .notifications("STATUS,1,Muted,alice,bob,1,")
        .first()
        .is_some_and(|s| s.split(',').nth(11) == Some("2")));
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;

    // What alice recorded: bob's tone before the mute, silence after it.
    let (x, rate) = read_wav(&dir.file("a-out.wav"));
    let r = rate as usize;
    let before = &x[r / 2..r];
    let after = &x[x.len() - r / 2..];
    assert!(goertzel(before, rate, 440.0) > 0.02, "tone before mute");
    let after_level = goertzel(after, rate, 440.0);
    assert!(after_level < 0.0005, "tone after mute: {after_level}");
    // ...while bob kept hearing alice.
    let (y, _) = read_wav(&dir.file("b-out.wav"));
    assert!(goertzel(&y[y.len() - r / 2..], rate, 1000.0) > 0.02);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_are_found_by_number_callid_and_peer_and_setline_all_hangs_up_everything() {
    let dir = TempDir::new("lines");
    let (mut alice, mut bob, port) = pair(&dir, &[]).await;
    let target = format!("sip:alice@127.0.0.1:{port}");
    assert_eq!(bob.api("call", &[&target]).await, Value::from(1));
    bob.call_state("callConnected", 10).await;
    assert_eq!(bob.api("call", &[&target]).await, Value::from(2));
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;

    assert_eq!(
        bob.api("getline", &[]).await,
        Value::from(2),
        "new call is active"
    );
    let id1 = bob.api("linetocallid", &["1"]).await;
    let id2 = bob.api("linetocallid", &["2"]).await;
    assert!(!id1.as_str().unwrap().is_empty());
    assert_ne!(id1, id2);
    assert_eq!(
        bob.api("callidtoline", &[id1.as_str().unwrap()]).await,
        Value::from(1)
    );
    assert_eq!(
        alice.api("callidtoline", &[id2.as_str().unwrap()]).await,
        Value::from(2),
        "both sides share the Call-ID"
    );
    bob.api("setline", &[id1.as_str().unwrap()]).await;
    assert_eq!(bob.api("getline", &[]).await, Value::from(1));
    bob.api("setline", &["alice"]).await;
    assert!(bob
        .phone
        .api("setline", vec!["nobody".into()])
        .await
        .is_err());

    bob.api("setline", &["-2"]).await;
    assert_eq!(bob.api("hangup", &[]).await, Value::from(2));
    bob.callback("onCdr", 10).await;
    bob.callback("onCdr", 10).await;
    alice.callback("onCdr", 10).await;
    alice.callback("onCdr", 10).await;
    assert_eq!(bob.api("isincall", &[]).await, Value::from(false));

    let last = bob.api("getlastcalldetails", &[]).await;
    let last = last.as_str().unwrap();
    assert!(last.contains("peer=alice"), "{last}");
    assert!(last.contains("reason=BYE"), "{last}");
    assert!(
        last.contains(",codec=opus,"),
        "default codec order starts with Opus: {last}"
    );
    assert!(last.contains("rtpsent="), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_and_unsupported_functions_answer_clearly() {
    let dir = TempDir::new("diag");
    let p = TestPhone::new(&[
        ("audiodevicein", "null".into()),
        ("loglevel", "5".into()),
        (
            "audiodeviceout",
            format!("file:{}", dir.file("o.wav").display()),
        ),
    ])
    .await;
    assert_eq!(p.api("getenginename", &[]).await, Value::from("ns"));
    assert!(!p.api("getworkdir", &[]).await.as_str().unwrap().is_empty());
    assert_eq!(p.api("isencrypted", &[]).await, Value::from(-1));
    assert_eq!(p.api("isonhold", &[]).await, Value::from(false));
    assert_eq!(p.api("getregfailreason", &[]).await, Value::from(""));
    assert_eq!(
        p.api("getdevice", &["1"]).await,
        Value::from(format!("file:{}", dir.file("o.wav").display()))
    );
    p.api("setdevice", &["0", "null", "1"]).await;
    assert_eq!(p.api("getdevice", &["0"]).await, Value::from("null"));
    p.api("call", &["echo"]).await;
    p.api("hangup", &[]).await;
    let logs = p.api("getlogs", &[]).await;
    assert!(logs.as_str().unwrap().contains("LOG,EVENT,"), "{logs}");
    for (f, want) in [
        ("jvoip", "not supported"),
        ("screenshare", "not supported"),
        ("registerex", "no usable account"),
    ] {
        let e = p.phone.api(f, vec!["x".into()]).await.unwrap_err();
        assert!(e.to_string().contains(want), "{f}: {e}");
    }
    for bad in [
        vec!["mute", "maybe"],
        vec!["hold", "x"],
        vec!["hold", "true"],
        vec!["mute", "true", "7"],
        vec!["getdevice", "9"],
        vec!["setline"],
    ] {
        let r = p
            .phone
            .api(bad[0], bad[1..].iter().map(|s| s.to_string()).collect())
            .await;
        assert!(r.is_err(), "{bad:?} gave {r:?}");
    }
}

async fn phone_in(dir: &std::path::Path, params: &[(&str, &str)]) -> webphone_engine::Phone {
    webphone_engine::Phone::try_new(webphone_engine::PhoneOptions {
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        work_dir: Some(dir.to_path_buf()),
    })
    .unwrap()
}

async fn get(p: &webphone_engine::Phone, name: &str) -> String {
    p.api("getparameter", vec![name.into()])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_persist_per_profile_without_the_password() {
    let dir = TempDir::new("profile");
    let p = phone_in(&dir.0, &[("autoaccept", "true")]).await;
    for (k, v) in [
        ("displayname", "Jane"),
        ("password", "s3cret-pw"),
        ("autoaccept", "false"),
    ] {
        p.api("setparameter", vec![k.into(), v.into()])
            .await
            .unwrap();
    }
    p.api("stop", vec![]).await.unwrap();
    drop(p);

    // A new engine on the same folder: the run-time values came back, but a start-up value
    // still wins over a stored one, and the password was never written.
    let p = phone_in(&dir.0, &[("autoaccept", "true")]).await;
    assert_eq!(get(&p, "displayname").await, "Jane");
    assert_eq!(get(&p, "autoaccept").await, "true");
    assert_eq!(get(&p, "password").await, "");
    let mut found_secret = false;
    for entry in walk(&dir.0) {
        let bytes = std::fs::read(&entry).unwrap();
        found_secret |= bytes.windows(9).any(|w| w == b"s3cret-pw");
    }
    assert!(!found_secret, "the password reached the disk");

    // Another profile starts empty; delsettings(1) forgets the stored values.
    p.api("setparameter", vec!["profile".into(), "work".into()])
        .await
        .unwrap();
    assert_eq!(get(&p, "displayname").await, "");
    p.api("setparameter", vec!["profile".into(), "".into()])
        .await
        .unwrap();
    assert_eq!(get(&p, "displayname").await, "Jane");
    assert_eq!(
        p.api("delsettings", vec!["1".into()]).await.unwrap(),
        serde_json::Value::from(true)
    );
    assert_eq!(get(&p, "displayname").await, "");
    p.api("stop", vec![]).await.unwrap();
    drop(p);
    let p = phone_in(&dir.0, &[]).await;
    assert_eq!(get(&p, "displayname").await, "");
    assert!(p.api("delsettings", vec!["3".into()]).await.is_err());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_reach_the_peer_and_silence_the_held_call() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("hold");
    let (mut alice, mut bob, port) = pair(&dir, &[]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    bob.api("hold", &["true"]).await;
    // Both sides report the hold: bob holds (2), alice is held by the other party (3).
    let hold_code = |who: &'static str, code: &'static str| {
        move |s: &str| {
            s.starts_with(&format!("STATUS,1,Hold,{who},")) && s.split(',').nth(12) == Some(code)
        }
    };
    bob.notification(hold_code("alice", "2"), 5).await;
    alice.notification(hold_code("bob", "3"), 5).await;
    assert_eq!(bob.api("isonhold", &[]).await, Value::from(true));
    assert_eq!(alice.api("isonhold", &[]).await, Value::from(false));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("hold", &["false"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bob.api("isonhold", &[]).await, Value::from(false));
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    alice.callback("onCdr", 10).await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;

    // alice's recording: bob's tone, then a silent stretch while held, then the tone again.
    let (x, rate) = read_wav(&dir.file("a-out.wav"));
    let r = rate as usize;
    let windows: Vec<f64> = x.chunks(r / 4).map(|w| goertzel(w, rate, 440.0)).collect();
    let loud = |v: &f64| *v > 0.02;
    let first = windows.iter().position(loud).expect("tone before hold");
    let gap = windows[first..]
        .iter()
        .position(|v| *v < 0.0005)
        .expect("silence while held")
        + first;
    assert!(
        windows[gap..].iter().any(loud),
        "tone after resume: {windows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_call_history_live_in_the_profile_database() {
    let dir = TempDir::new("contacts");
    let p = phone_in(
        &dir.0,
        &[("audiodevicein", "null"), ("audiodeviceout", "null")],
    )
    .await;
    let api = |f: &'static str, a: Vec<&'static str>| {
        let p = p.clone();
        async move {
            p.api(f, a.into_iter().map(String::from).collect())
                .await
                .unwrap()
        }
    };
    assert_eq!(api("listcontacts", vec![]).await, serde_json::Value::Null);
    api(
        "addcontact",
        vec!["Kim", "1002|sip:kim@pbx", "kim@example.org", "", "note", ""],
    )
    .await;
    api("addcontact", vec!["Lee", "1003", "", "", "", ""]).await;
    assert_eq!(
        api("getcontact", vec!["", "1003"]).await,
        serde_json::Value::from("Lee\t1003\t0\t\t\t\t")
    );
    assert_eq!(
        api("listcontacts", vec![]).await,
        serde_json::Value::from(
            "Kim\t1002|sip:kim@pbx\t0\tkim@example.org\t\tnote\t\r\nLee\t1003\t0\t\t\t\t"
        )
    );
    assert_eq!(
        api("delcontact", vec!["kim", ""]).await,
        serde_json::Value::from(1)
    );
    assert_eq!(
        api("getcontact", vec!["Kim", ""]).await,
        serde_json::Value::Null
    );
    // A finished call lands in the history table of the same database.
    api("call", vec!["echo"]).await;
    api("hangup", vec![]).await;
    api("stop", vec![]).await;
    drop(p);
    let db = webphone_engine::profile::Profile::open(&dir.0, "").unwrap();
    let h = db.history(10).unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].peer, "echo");
    assert_eq!(h[0].reason, "BYE");
    assert_eq!(db.contacts().unwrap().len(), 1, "Lee is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_arrive_with_delivery_reports() {
    let port = free_port();
    let mut alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("signalingport", port.to_string()),
    ])
    .await;
    let mut bob = TestPhone::new(&[("username", "bob".into())]).await;
    let to = format!("sip:alice@127.0.0.1:{port}");
    bob.api("sendchat", &[&to, "hello, <b>alice</b>\nsecond line"])
        .await;
    let chat = alice.callback("onChat", 10).await;
    assert_eq!(chat[0], Value::from("bob"));
    assert_eq!(chat[1], Value::from("hello, <b>alice</b>\nsecond line"));
    let n = alice.notification(|t| t.starts_with("CHAT,"), 5).await;
    assert_eq!(n, "CHAT,0,bob,hello, <b>alice</b> second line");
    bob.notification(|t| t == "CHATREPORT,0,alice,1,", 5).await;
    bob.notification(|t| t == "CHATREPORT,0,alice,2,", 5).await;
    // A message nobody takes: the report says it failed, with the reason.
    let dead = free_port();
    bob.api(
        "sendchat",
        &[&format!("sip:nobody@127.0.0.1:{dead}"), "anyone?"],
    )
    .await;
    let failed = bob
        .notification(|t| t.starts_with("CHATREPORT,0,nobody,3,"), 40)
        .await;
    assert!(failed.len() > "CHATREPORT,0,nobody,3,".len(), "{failed}");
    assert!(bob
        .phone
        .api("sendchat", vec!["".into(), "x".into()])
        .await
        .is_err());
    assert!(bob
        .phone
        .api("sendchat", vec![to.clone(), "".into()])
        .await
        .is_err());
}

/// `transfertype` 0 switches transfer off: `transfer()` is refused with a message that
/// names the setting, nothing is sent to the peer, and the call goes on unheld.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_switched_off_is_refused_and_the_call_goes_on() {
    let pa = free_port();
    let mut alice = silent_phone("alice", Some(pa), &[("autoaccept", "true".into())]).await;
    let mut bob = silent_phone("bob", None, &[("transfertype", "0".into())]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{pa}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    let refused = bob
        .phone
        .api("transfer", vec!["sip:carol@127.0.0.1:9".into()])
        .await;
    let msg = refused.expect_err("transfer must be refused").to_string();
    assert!(msg.contains("transfertype 0"), "{msg}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(bob.api("isincall", &[]).await, Value::from(true));
    assert_eq!(bob.api("isonhold", &[]).await, Value::from(false));
    // alice got neither a hold re-INVITE nor a REFER: still connected, not held.
    assert_eq!(alice.api("isonhold", &[]).await, Value::from(false));
    assert_eq!(alice.api("isincall", &[]).await, Value::from(true));
    bob.api("hangup", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_moves_the_peer_to_a_third_party() {
    let (pa, pc) = (free_port(), free_port());
    let mut alice = silent_phone("alice", Some(pa), &[]).await;
    let mut bob = silent_phone("bob", None, &[]).await;
    let mut carol = silent_phone("carol", Some(pc), &[("autoaccept", "true".into())]).await;
    // bob calls alice, alice answers, then bob transfers alice to carol.
    alice.api("setparameter", &["autoaccept", "true"]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{pa}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    bob.api("transfer", &[&format!("sip:carol@127.0.0.1:{pc}")])
        .await;
    // alice places the new call to carol, which answers; bob's leg ends as transferred.
    // (A rare failure here once left no trace: the report shows what every phone saw.)
    let Some(c) = carol.try_call_state("callConnected", 10).await else {
        panic!(
            "carol: no callConnected within 10 s\ncarol saw\n{}\nalice saw\n{}\nbob saw\n{}",
            carol.transcript(),
            alice.transcript(),
            bob.transcript()
        );
    };
    assert_eq!(c[2], Value::from("alice"));
    let cdr_b = bob.callback("onCdr", 10).await;
    assert!(
        cdr_b[6].as_str().unwrap().contains("transferred"),
        "{cdr_b:?}"
    );
    let a_states: Vec<_> = {
        alice.call_state("callConnected", 10).await;
        alice
            .seen
            .iter()
            .filter_map(|e| match e {
                webphone_engine::Event::Callback { name, args } if name == "onCallStateChange" => {
                    Some((args[0].clone(), args[2].clone()))
                }
                _ => None,
            })
            .collect()
    };
    assert!(
        a_states.contains(&(Value::from("callConnected"), Value::from("carol"))),
        "{a_states:?}"
    );
    assert!(bob
        .phone
        .api("transfer", vec!["sip:x@127.0.0.1:9".into()])
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicerecord_writes_both_sides_of_the_call_to_a_stereo_wav() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("record");
    let (mut alice, mut bob, port) = pair(&dir, &[]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    let rec = dir.file("rec/bob-CALLER.wav");
    let path = bob
        .api("voicerecord", &["true", rec.to_str().unwrap()])
        .await;
    let path = std::path::PathBuf::from(path.as_str().unwrap());
    assert_eq!(path, dir.file("rec/bob-bob.wav"), "tokens expanded");
    bob.notification(|t| t == "VREC,1,1,0,,", 5).await;
    assert!(bob
        .phone
        .api("voicerecord", vec!["true".into()])
        .await
        .is_err());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    bob.api("voicerecord", &["false"]).await;
    bob.notification(|t| t.starts_with("VREC,-1,3,1,"), 5).await;
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;

    // Left = what bob sent (440 Hz), right = what bob heard from alice (1000 Hz).
    let mut r = hound::WavReader::open(&path).unwrap();
    assert_eq!(r.spec().channels, 2);
    let rate = r.spec().sample_rate;
    let s: Vec<f64> = r
        .samples::<i16>()
        .map(|v| v.unwrap() as f64 / 32768.0)
        .collect();
    let left: Vec<f64> = s.iter().step_by(2).copied().collect();
    let right: Vec<f64> = s.iter().skip(1).step_by(2).copied().collect();
    assert!(left.len() > rate as usize * 2, "{} frames", left.len());
    let mid =
        |x: &[f64]| x[x.len() / 2 - rate as usize / 2..x.len() / 2 + rate as usize / 2].to_vec();
    assert!(goertzel(&mid(&left), rate, 440.0) > 0.02);
    assert!(goertzel(&mid(&right), rate, 1000.0) > 0.02);
    assert!(goertzel(&mid(&left), rate, 1000.0) < 0.002);
}
