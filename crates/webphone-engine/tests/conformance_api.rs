//! Conformance: one test per API function the engine implements, on real engines over
//! loopback: argument forms (strings for numbers and booleans), line semantics (-2 all,
//! -1/empty current, N), empty-string behaviour, and wrong arguments refused with a clear
//! error while nothing changes.

#![allow(clippy::unwrap_used)]
mod common;
#[path = "conformance_registrar.rs"]
mod registrar;

use std::time::Duration;

use common::*;
use serde_json::Value;
use webphone_engine::{Phone, PhoneOptions};

fn quiet(user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("username", user.to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
        ("disablesamecall", "0".into()),
    ]
}

/// alice listens on a known port (auto-answering when asked), bob calls.
async fn pair(autoaccept: bool) -> (TestPhone, TestPhone, String) {
    let port = free_port();
    let mut a = quiet("alice");
    a.push(("signalingport", port.to_string()));
    a.push(("autoaccept", autoaccept.to_string()));
    let alice = TestPhone::new(&a).await;
    let bob = TestPhone::new(&quiet("bob")).await;
    (alice, bob, format!("sip:alice@127.0.0.1:{port}"))
}

async fn connected() -> (TestPhone, TestPhone, String) {
    let (mut alice, mut bob, uri) = pair(true).await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    (alice, bob, uri)
}

async fn err(p: &TestPhone, f: &str, args: &[&str]) -> String {
    match p
        .phone
        .api(f, args.iter().map(|s| s.to_string()).collect())
        .await
    {
        Ok(v) => panic!("{f}({args:?}) succeeded with {v}"),
        Err(e) => e.to_string(),
    }
}

async fn stop(ps: &[&TestPhone]) {
    for p in ps {
        let _ = p.phone.api("stop", vec![]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setparameter_and_getparameter_convert_strings() {
    let p = TestPhone::new(&quiet("a")).await;
    p.api("setparameter", &["autoaccept", "1"]).await;
    assert_eq!(p.api("getparameter", &["AutoAccept"]).await, "true");
    p.api("setparameter", &["registerinterval", " 300 "]).await;
    assert_eq!(p.api("getparameter", &["registerinterval"]).await, "300");
    let e = err(&p, "setparameter", &["registerinterval", "soon"]).await;
    assert!(e.contains("registerinterval"), "{e}");
    assert_eq!(p.api("getparameter", &["registerinterval"]).await, "300");
    // Empty value clears.
    p.api("setparameter", &["displayname", ""]).await;
    assert_eq!(p.api("getparameter", &["displayname"]).await, "");
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_announces_and_a_second_start_resends_the_state() {
    let mut p = TestPhone::new(&quiet("a")).await;
    p.notification(|t| t == "START,sip", 5).await;
    let before = p.notifications("STATUS,-1,").len();
    p.api("start", &[]).await;
    p.notification(|t| t == "START,api", 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(ev) = p.events.try_recv() {
        p.seen.push(ev);
    }
    assert!(
        p.notifications("STATUS,-1,").len() > before,
        "no STATUS re-sent"
    );
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_running_calls() {
    let (mut alice, bob, _) = connected().await;
    bob.api("stop", &[]).await;
    alice.call_state("callDisconnected", 10).await;
    assert_eq!(alice.api("isincall", &[]).await, false);
    stop(&[&alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_needs_a_server_and_registers_explicitly_with_register_off() {
    let p = TestPhone::new(&quiet("a")).await;
    let e = err(&p, "register", &[]).await;
    assert!(e.contains("serveraddress"), "{e}");
    stop(&[&p]).await;
    let port = registrar::registrar(200).await;
    let mut params = quiet("1001");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    params.push(("register", "0".into()));
    let mut p = TestPhone::new(&params).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.api("isregistered", &[]).await, false, "register=0");
    p.api("register", &[]).await;
    p.callback("onRegistered", 10).await;
    assert_eq!(p.api("isregistered", &[]).await, true);
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_gives_registered_code_six() {
    let port = registrar::registrar(200).await;
    let mut params = quiet("1001");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    let mut p = TestPhone::new(&params).await;
    p.callback("onRegistered", 10).await;
    p.api("unregister", &[]).await;
    p.callback("onUnRegistered", 10).await;
    assert_eq!(p.api("isregistered", &[]).await, false);
    let s = p
        .notification(
            |t| t.starts_with("STATUS,-1,") && t.split(',').nth(9) == Some("6"),
            5,
        )
        .await;
    assert_eq!(s.split(',').count(), 15, "{s}");
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_returns_its_line_and_sends_dtmf_after_a_comma() {
    let (mut alice, mut bob, uri) = pair(true).await;
    let e = err(&bob, "call", &[""]).await;
    assert!(e.contains("call(number)"), "{e}");
    assert_eq!(bob.api("getline", &[]).await, Value::from(0));
    let line = bob.api("call", &[&format!("{uri},47")]).await;
    assert_eq!(line, Value::from(1));
    bob.call_state("callConnected", 10).await;
    assert_eq!(alice.callback("onDTMF", 10).await[0], "4");
    assert_eq!(alice.callback("onDTMF", 10).await[0], "7");
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videocall_falls_back_to_a_voice_call() {
    let (mut alice, mut bob, uri) = pair(true).await;
    assert_eq!(bob.api("videocall", &[&uri]).await, Value::from(1));
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    let s = bob
        .notification(|t| t.starts_with("STATUS,1,InCall,"), 5)
        .await;
    assert_eq!(s.split(',').nth(14), Some("0"), "isvideo of {s}");
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_with_a_bad_line_changes_nothing_and_minus_two_ends_all() {
    let (mut alice, mut bob, uri) = connected().await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    let e = err(&bob, "hangup", &["abc"]).await;
    assert!(e.contains("invalid line"), "{e}");
    assert_eq!(bob.api("isincall", &[]).await, true);
    bob.api("hangup", &["true"]).await;
    bob.call_state("callDisconnected", 10).await;
    bob.call_state("callDisconnected", 10).await;
    assert_eq!(bob.api("isincall", &[]).await, false);
    alice.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_answers_the_ringing_line_and_refuses_without_one() {
    let (mut alice, mut bob, uri) = pair(false).await;
    let e = err(&alice, "accept", &[]).await;
    assert!(e.contains("no incoming call"), "{e}");
    bob.api("call", &[&uri]).await;
    alice.call_state("callRinging", 10).await;
    assert_eq!(alice.api("getline", &[]).await, Value::from(1));
    let e = err(&alice, "accept", &["x"]).await;
    assert!(e.contains("invalid line"), "{e}");
    alice.api("accept", &["1"]).await;
    alice.call_state("callConnected", 10).await;
    bob.call_state("callConnected", 10).await;
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_refuses_the_call_and_frees_the_line() {
    let (mut alice, mut bob, uri) = pair(false).await;
    bob.api("call", &[&uri]).await;
    alice.call_state("callRinging", 10).await;
    alice.api("reject", &[]).await;
    let cdr = bob.callback("onCdr", 10).await;
    assert_eq!(cdr[3], Value::from(0), "never connected: duration 0");
    alice.call_state("callDisconnected", 10).await;
    assert_eq!(
        alice
            .api("getlinedetails", &["1"])
            .await
            .as_str()
            .unwrap()
            .split(',')
            .nth(2),
        Some("Ready")
    );
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_leaves_the_caller_ringing() {
    let (mut alice, bob, uri) = pair(false).await;
    bob.api("call", &[&uri]).await;
    alice.call_state("callRinging", 10).await;
    assert_eq!(alice.api("ignore", &[]).await, Value::from(1));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bob.api("getstatus", &[]).await, "Ringing...");
    let e = err(&alice, "ignore", &[]).await;
    assert!(e.contains("no incoming call"), "{e}");
    bob.api("hangup", &[]).await;
    alice.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_takes_string_booleans_and_resumes() {
    let (mut alice, mut bob, _) = connected().await;
    let e = err(&bob, "hold", &["maybe"]).await;
    assert!(e.contains("hold(state)"), "{e}");
    assert_eq!(bob.api("isonhold", &[]).await, false);
    bob.api("hold", &["true"]).await;
    bob.notification(|t| t.starts_with("STATUS,1,Hold,"), 10)
        .await;
    assert_eq!(bob.api("isonhold", &[]).await, true);
    bob.seen.clear();
    bob.api("hold", &["0"]).await;
    bob.notification(
        |t| t.starts_with("STATUS,1,InCall,") && t.split(',').nth(12) == Some("0"),
        10,
    )
    .await;
    assert_eq!(bob.api("isonhold", &[]).await, false);
    alice
        .notification(|t| t.starts_with("STATUS,1,InCall,"), 5)
        .await;
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_refuses_bad_directions_and_unmutes() {
    let (alice, mut bob, _) = connected().await;
    let e = err(&bob, "mute", &["true", "7"]).await;
    assert!(e.contains("mute(state, direction)"), "{e}");
    assert_eq!(bob.api("ismuted", &[]).await, false);
    bob.api("mute", &["true", "2"]).await;
    assert_eq!(bob.api("ismuted", &[]).await, true);
    bob.notification(|t| t.starts_with("STATUS,1,Muted,"), 5)
        .await;
    bob.api("mute", &["false", "2"]).await;
    assert_eq!(bob.api("ismuted", &[]).await, false);
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_refuses_bad_digits_and_needs_a_call() {
    let (mut alice, bob, _) = connected().await;
    let e = err(&bob, "dtmf", &["12x"]).await;
    assert!(e.contains("invalid DTMF character 'x'"), "{e}");
    let e = err(&bob, "dtmf", &[""]).await;
    assert!(e.contains("dtmf(digits)"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.api("dtmf", &["9*"]).await;
    assert_eq!(alice.callback("onDTMF", 10).await[0], "9");
    assert_eq!(alice.callback("onDTMF", 10).await[0], "*");
    bob.api("hangup", &[]).await;
    let e = err(&bob, "dtmf", &["1"]).await;
    assert!(e.contains("no call"), "{e}");
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_functions_read_and_write_the_device_parameters() {
    let p = TestPhone::new(&quiet("a")).await;
    // getdevicelist: camera list is empty here, an unknown kind is refused.
    assert_eq!(p.api("getdevicelist", &["3"]).await, "");
    let e = err(&p, "getdevicelist", &["9"]).await;
    assert!(e.contains("getdevicelist(dev)"), "{e}");
    // setdevice / getdevice, numbers as strings.
    p.api("setdevice", &["0", "file:/tmp/x.wav", "0"]).await;
    assert_eq!(p.api("getdevice", &["0"]).await, "file:/tmp/x.wav");
    assert_eq!(
        p.api("getparameter", &["audiodevicein"]).await,
        "file:/tmp/x.wav"
    );
    p.api("setdevice", &["2", "null", "2"]).await;
    assert_eq!(p.api("getdevice", &["2"]).await, "null");
    let e = err(&p, "setdevice", &["3", "cam", "0"]).await;
    assert!(e.contains("not supported by this engine"), "{e}");
    let e = err(&p, "getdevice", &["x"]).await;
    assert!(e.contains("getdevice(dev)"), "{e}");
    assert_eq!(p.api("getdevice", &["0"]).await, "file:/tmp/x.wav");
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getlinedetails_has_twelve_fields_idle_and_in_a_call() {
    let (alice, bob, _) = connected().await;
    let d = bob.api("getlinedetails", &["2"]).await;
    let d = d.as_str().unwrap();
    assert!(d.starts_with("LINEDETAILS,2,Ready,"), "{d}");
    assert_eq!(d.split(',').count(), 12, "{d}");
    let d = bob.api("getlinedetails", &["1"]).await;
    let f: Vec<String> = d.as_str().unwrap().split(',').map(String::from).collect();
    assert_eq!(f.len(), 12, "{d}");
    assert_eq!(&f[..3], &["LINEDETAILS", "1", "InCall"], "{d}");
    assert_eq!(f[3], bob.api("linetocallid", &["1"]).await, "callid of {d}");
    assert_eq!(
        (f[4].as_str(), f[5].as_str(), f[6].as_str()),
        ("alice", "bob", "1"),
        "{d}"
    );
    let e = err(&bob, "getlinedetails", &["abc"]).await;
    assert!(e.contains("invalid line"), "{e}");
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getlastcalldetails_is_empty_before_and_describes_the_call_after() {
    let (alice, mut bob, _) = connected().await;
    assert_eq!(bob.api("getlastcalldetails", &[]).await, "");
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    let d = bob.api("getlastcalldetails", &[]).await;
    let d = d.as_str().unwrap();
    assert!(
        d.starts_with("line=1,peer=alice,caller=bob,called=alice,direction=1,"),
        "{d}"
    );
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getregfailreason_is_empty_until_a_registration_fails() {
    let port = registrar::registrar(403).await;
    let p = TestPhone::new(&quiet("1001")).await;
    assert_eq!(p.api("getregfailreason", &[]).await, "");
    stop(&[&p]).await;
    let mut params = quiet("1001");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    let mut p = TestPhone::new(&params).await;
    let reason = p.callback("onRegisterFailed", 10).await;
    assert_eq!(p.api("getregfailreason", &[]).await, reason[0]);
    stop(&[&p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setline_getline_linetocallid_and_callidtoline_agree() {
    let (mut alice, mut bob, uri) = connected().await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    assert_eq!(
        bob.api("getline", &[]).await,
        Value::from(2),
        "new call is active"
    );
    let id1 = bob.api("linetocallid", &["1"]).await;
    let id1 = id1.as_str().unwrap().to_string();
    assert!(!id1.is_empty());
    assert_eq!(bob.api("callidtoline", &[&id1]).await, Value::from(1));
    assert_eq!(bob.api("callidtoline", &["nope"]).await, Value::from(0));
    assert_eq!(bob.api("linetocallid", &["8"]).await, "");
    bob.api("setline", &[&id1]).await;
    assert_eq!(bob.api("getline", &[]).await, Value::from(1));
    bob.api("setline", &["2"]).await;
    assert_eq!(bob.api("getline", &[]).await, Value::from(2));
    for bad in ["0", "nobody", ""] {
        assert!(!err(&bob, "setline", &[bad]).await.is_empty());
        assert_eq!(
            bob.api("getline", &[]).await,
            Value::from(2),
            "after setline({bad:?})"
        );
    }
    bob.api("setline", &["alice"]).await;
    // -2 then a line-less call acts on all lines.
    bob.api("setline", &["-2"]).await;
    bob.api("hangup", &[]).await;
    bob.call_state("callDisconnected", 10).await;
    bob.call_state("callDisconnected", 10).await;
    assert_eq!(bob.api("isincall", &[]).await, false);
    alice.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_queries_follow_the_call() {
    let (alice, bob, uri) = pair(true).await;
    for (f, want) in [
        ("isregistered", Value::from(false)),
        ("isincall", Value::from(false)),
        ("ismuted", Value::from(false)),
        ("isonhold", Value::from(false)),
        ("isencrypted", Value::from(-1)),
    ] {
        assert_eq!(bob.api(f, &[]).await, want, "{f} idle");
    }
    assert_eq!(bob.api("getstatus", &[]).await, "Ready");
    let mut bob = bob;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    assert_eq!(bob.api("isincall", &[]).await, true);
    assert_eq!(
        bob.api("isencrypted", &[]).await,
        Value::from(2),
        "SRTP between engines"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let st = bob.api("getstatus", &[]).await;
    assert!(st.as_str().unwrap().starts_with("In Call ("), "{st}");
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isencrypted_is_zero_without_srtp() {
    let port = free_port();
    let mut a = quiet("alice");
    a.push(("signalingport", port.to_string()));
    a.push(("autoaccept", "true".into()));
    let alice = TestPhone::new(&a).await;
    let mut b = quiet("bob");
    b.push(("mediaencryption", "0".into()));
    let mut bob = TestPhone::new(&b).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    assert_eq!(bob.api("isencrypted", &[]).await, Value::from(0));
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getenginename_getworkdir_and_getlogs() {
    let dir = TempDir::new("conf-api-workdir");
    let phone = Phone::try_new(PhoneOptions {
        params: vec![("loglevel".into(), "5".into())],
        work_dir: Some(dir.0.clone()),
    })
    .unwrap();
    phone.api("start", vec![]).await.unwrap();
    let name = phone.api("getenginename", vec![]).await.unwrap();
    assert!(
        ["java", "webrtc", "ns", "app", "flash", "p2p", "nativedial"]
            .contains(&name.as_str().unwrap()),
        "{name}"
    );
    let wd = phone.api("getworkdir", vec![]).await.unwrap();
    assert_eq!(wd.as_str().unwrap(), dir.0.display().to_string());
    let logs = phone.api("getlogs", vec![]).await.unwrap();
    let logs = logs.as_str().unwrap();
    assert!(!logs.is_empty());
    for l in logs.split("\r\n") {
        assert!(l.starts_with("LOG,") || l.starts_with("EVENT,"), "{l:?}");
    }
    phone.api("stop", vec![]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delsettings_forgets_stored_settings_and_refuses_other_levels() {
    let dir = TempDir::new("conf-api-del");
    let open = || {
        Phone::try_new(PhoneOptions {
            params: vec![],
            work_dir: Some(dir.0.clone()),
        })
        .unwrap()
    };
    let p = open();
    p.api(
        "setparameter",
        vec!["displayname".into(), "Stored Name".into()],
    )
    .await
    .unwrap();
    let e = p.api("delsettings", vec!["3".into()]).await.unwrap_err();
    assert!(e.to_string().contains("delsettings(level)"), "{e}");
    assert_eq!(
        p.api("getparameter", vec!["displayname".into()])
            .await
            .unwrap(),
        "Stored Name"
    );
    assert_eq!(p.api("delsettings", vec!["1".into()]).await.unwrap(), true);
    assert_eq!(
        p.api("getparameter", vec!["displayname".into()])
            .await
            .unwrap(),
        ""
    );
    let _ = p.api("stop", vec![]).await;
    drop(p);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let q = open();
    assert_eq!(
        q.api("getparameter", vec!["displayname".into()])
            .await
            .unwrap(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_without_direction_follows_every_defmute_value() {
    let (alice, bob, _) = connected().await;
    for (defmute, muted) in [("0", true), ("3", true), ("4", true), ("5", false)] {
        bob.api("setparameter", &["defmute", defmute]).await;
        let r = bob.phone.api("mute", vec!["true".into()]).await;
        if muted {
            assert!(r.is_ok(), "defmute {defmute}: {r:?}");
        }
        assert_eq!(
            bob.api("ismuted", &[]).await,
            Value::from(muted),
            "defmute {defmute}"
        );
        let _ = bob
            .phone
            .api("mute", vec!["false".into(), "0".into()])
            .await;
    }
    bob.api("hangup", &[]).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_functions_use_the_documented_tab_crlf_and_pipe_format() {
    let dir = TempDir::new("conf-api-contacts");
    let open = || {
        Phone::try_new(PhoneOptions {
            params: vec![("voicemailnum".into(), "*97".into())],
            work_dir: Some(dir.0.clone()),
        })
        .unwrap()
    };
    let call = |p: &Phone, f: &'static str, a: &[&str]| {
        let p = p.clone();
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        async move { p.api(f, a).await }
    };
    let p = open();
    assert_eq!(
        call(&p, "listcontacts", &["false"]).await.unwrap(),
        Value::Null
    );
    call(
        &p,
        "addcontact",
        &[
            "Ann Lee",
            "1002|+3612345",
            "ann@example.org",
            "Main St 1",
            "n",
            "https://ann.example",
        ],
    )
    .await
    .unwrap();
    call(&p, "addcontact", &["Bob", "1003", "", "", "", ""])
        .await
        .unwrap();
    let list = call(&p, "listcontacts", &["false"]).await.unwrap();
    let rows: Vec<&str> = list.as_str().unwrap().split("\r\n").collect();
    assert_eq!(rows.len(), 2, "{list}");
    for r in &rows {
        assert_eq!(r.split('\t').count(), 7, "fields of {r:?}");
    }
    let ann = call(&p, "getcontact", &["", "+3612345"]).await.unwrap();
    assert_eq!(
        ann,
        "Ann Lee\t1002|+3612345\t0\tann@example.org\tMain St 1\tn\thttps://ann.example"
    );
    // all=true adds the voicemail entry.
    let all = call(&p, "listcontacts", &["true"]).await.unwrap();
    assert_eq!(all.as_str().unwrap().split("\r\n").count(), 3, "{all}");
    assert!(all.as_str().unwrap().contains("*97"), "{all}");
    // Wrong arguments change nothing.
    assert!(call(&p, "getcontact", &["", ""]).await.is_err());
    assert!(call(&p, "delcontact", &["", ""]).await.is_err());
    assert_eq!(
        call(&p, "getcontact", &["Nobody", ""]).await.unwrap(),
        Value::Null
    );
    // setfavorite (engine extension): by name or number, on and off; the third field.
    assert_eq!(
        call(&p, "setfavorite", &["", "+3612345", "true"])
            .await
            .unwrap(),
        Value::from(1)
    );
    let fav = |v: Value| v.as_str().unwrap().split('\t').nth(2).unwrap().to_string();
    assert_eq!(
        fav(call(&p, "getcontact", &["Ann Lee", ""]).await.unwrap()),
        "1"
    );
    call(&p, "setfavorite", &["ann lee", "", "false"])
        .await
        .unwrap();
    assert_eq!(
        fav(call(&p, "getcontact", &["Ann Lee", ""]).await.unwrap()),
        "0"
    );
    assert!(call(&p, "setfavorite", &["Nobody", "", "true"])
        .await
        .is_err());
    assert!(call(&p, "setfavorite", &["Bob", "", "maybe"])
        .await
        .is_err());
    call(&p, "delcontact", &["Bob", ""]).await.unwrap();
    assert_eq!(
        call(&p, "getcontact", &["Bob", ""]).await.unwrap(),
        Value::Null
    );
    let _ = p.api("stop", vec![]).await;
    drop(p);
    // Kept in the profile.
    let q = open();
    assert_eq!(call(&q, "getcontact", &["Ann Lee", ""]).await.unwrap(), ann);
}

fn lines(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// What the JavaScript facade keeps: `syncstate`, then every `_sync` event with a higher `seq`.
struct SyncCopy {
    seq: u64,
    state: serde_json::Map<String, Value>,
    params: serde_json::Map<String, Value>,
    logs: Vec<String>,
    /// Every `_sync` event followed, as JSON text (checked for leaked secrets).
    wire: Vec<String>,
}

impl SyncCopy {
    async fn fetch(p: &TestPhone) -> SyncCopy {
        let v = p.api("syncstate", &[]).await;
        SyncCopy {
            seq: v["seq"].as_u64().expect("seq"),
            state: v["state"].as_object().expect("state").clone(),
            params: v["params"].as_object().expect("params").clone(),
            logs: lines(&v["logs"]),
            wire: vec![v.to_string()],
        }
    }

    /// Applies the `_sync` events `p` has received so far.
    fn follow(&mut self, p: &mut TestPhone) {
        for ev in p.drain() {
            let webphone_engine::Event::Callback { name, args } = ev else {
                continue;
            };
            if name != "_sync" {
                continue;
            }
            let d = &args[0];
            let seq = d["seq"].as_u64().expect("seq");
            if seq <= self.seq {
                continue;
            }
            self.seq = seq;
            self.wire.push(d.to_string());
            for (k, v) in d["state"].as_object().into_iter().flatten() {
                self.state.insert(k.clone(), v.clone());
            }
            for (k, v) in d["params"].as_object().into_iter().flatten() {
                self.params.insert(k.clone(), v.clone());
            }
            self.logs.extend(lines(&d["logs"]));
        }
    }

    /// Follows `p` until `key` of the state is `want` (5 s at most).
    async fn wait_state(&mut self, p: &mut TestPhone, key: &str, want: Value) {
        for _ in 0..100 {
            self.follow(p);
            if self.state.get(key) == Some(&want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("copy: {key} never became {want}: {:?}", self.state);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synchronous_copy_follows_parameters_and_calls() {
    let (mut alice, mut bob, uri) = pair(true).await;
    bob.api("setparameter", &["loglevel", "3"]).await;
    let mut copy = SyncCopy::fetch(&bob).await;
    assert_eq!(copy.state["incall"], false);
    assert_eq!(copy.state["line"], 0);
    assert_eq!(
        copy.state["enginename"],
        bob.api("getenginename", &[]).await
    );
    assert_eq!(copy.params["username"], "bob");
    assert_eq!(
        copy.params["registerinterval"],
        bob.api("getparameter", &["registerinterval"]).await,
        "defaults are in the copy"
    );

    // A write is in the copy before setparameter answers, as the engine stored it.
    bob.api("setparameter", &["ringtimeout", " 30000 "]).await;
    bob.api("setparameter", &["x_custom", "v"]).await;
    bob.api("setparameter", &["password", "s3cret-pw"]).await;
    bob.api(
        "setparameter",
        &["extraoption", "turnpassword=s3cret-pw;loglevel=3"],
    )
    .await;
    copy.follow(&mut bob);
    assert_eq!(copy.params["ringtimeout"], "30000");
    assert_eq!(copy.params["x_custom"], "v");
    assert_eq!(copy.params["password"], "<redacted>");
    assert_eq!(
        copy.params["extraoption"],
        "turnpassword=<redacted>;loglevel=3"
    );
    // A refused value changes nothing; a custom key set back to its default reads empty.
    let e = err(&bob, "setparameter", &["ringtimeout", "soon"]).await;
    assert!(e.contains("ringtimeout"), "{e}");
    bob.api("setparameter", &["x_custom", "DEF"]).await;
    copy.follow(&mut bob);
    assert_eq!(copy.params["ringtimeout"], "30000");
    assert_eq!(copy.params["x_custom"], "");

    // Contacts (listcontacts with and without the voicemail entry) follow the database.
    assert_eq!(copy.state["contacts"], Value::Null);
    bob.api("addcontact", &["Ann", "1002|1003", "", "", "", ""])
        .await;
    bob.api("setparameter", &["voicemailnum", "*97"]).await;
    copy.follow(&mut bob);
    assert_eq!(
        copy.state["contacts"],
        bob.api("listcontacts", &["false"]).await
    );
    assert_eq!(
        copy.state["contactsall"],
        bob.api("listcontacts", &["true"]).await
    );
    assert!(copy.state["contactsall"]
        .as_str()
        .unwrap()
        .contains("Voicemail\t*97"));
    bob.api("delcontact", &["Ann"]).await;
    copy.follow(&mut bob);
    assert_eq!(copy.state["contacts"], Value::Null);

    // A call: the copy answers what isincall(), getline() and linetocallid() answer.
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    copy.wait_state(&mut bob, "incall", Value::from(true)).await;
    let line = bob.api("getline", &[]).await;
    assert_eq!(copy.state["line"], line);
    let n = line.as_u64().unwrap().to_string();
    assert_eq!(
        copy.state["lines"][n.as_str()],
        bob.api("linetocallid", &[&n]).await
    );
    assert!(
        copy.state["status"]
            .as_str()
            .unwrap()
            .starts_with("In Call"),
        "{:?}",
        copy.state["status"]
    );
    bob.api("mute", &["true", "0"]).await;
    copy.follow(&mut bob);
    assert_eq!(copy.state["muted"], true, "muted before mute() answered");
    assert_eq!(copy.state["muted"], bob.api("ismuted", &[]).await);
    assert_eq!(
        copy.state["linedetails"][n.as_str()],
        bob.api("getlinedetails", &[&n]).await,
        "LINEDETAILS with the mute"
    );
    assert_eq!(
        format!(
            "LINEDETAILS,7{}",
            copy.state["idledetails"].as_str().unwrap()
        ),
        bob.api("getlinedetails", &["7"]).await
    );

    bob.api("hangup", &["-2"]).await;
    copy.wait_state(&mut bob, "incall", Value::from(false))
        .await;
    copy.wait_state(&mut bob, "lines", serde_json::json!({}))
        .await;
    assert_eq!(bob.api("isincall", &[]).await, false);
    let details = bob.api("getlastcalldetails", &[]).await;
    assert!(details.as_str().unwrap().starts_with("line="), "{details}");
    copy.wait_state(&mut bob, "lastcalldetails", details).await;
    assert_eq!(copy.state["workdir"], bob.api("getworkdir", &[]).await);

    // A fresh copy equals the one followed event by event.
    // (A removed custom key stays in the followed copy as "", which reads the same.)
    let fresh = SyncCopy::fetch(&bob).await;
    copy.follow(&mut bob);
    copy.params
        .retain(|k, v| fresh.params.contains_key(k) || v.as_str() != Some(""));
    assert_eq!(fresh.params, copy.params);
    assert!(!copy.logs.is_empty(), "loglevel 3 logs the call");
    assert_eq!(copy.logs, fresh.logs, "log lines followed = kept");
    assert_eq!(
        copy.logs.join("\r\n"),
        bob.api("getlogs", &[]).await,
        "getlogs from the copy"
    );
    assert!(
        copy.wire.iter().all(|w| !w.contains("s3cret-pw")),
        "the password went out"
    );
    stop(&[&alice, &bob]).await;
}

/// `keepaliveival` over UDP: empty-line datagrams from the SIP socket (the one the REGISTER
/// came from, so the NAT binding the registrar uses stays open) at the interval; 0 = none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_registration_refreshes_the_nat_binding_every_keepaliveival() {
    let (port, seen) = registrar::recording_registrar().await;
    let mut params = quiet("1001");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    params.push(("transport", "0".into()));
    params.push(("keepaliveival", "400".into()));
    let mut p = TestPhone::new(&params).await;
    p.callback("onRegistered", 10).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    {
        let s = seen.lock().unwrap();
        assert!(
            s.keepalives.len() >= 2,
            "keep-alives in 1.5 s at 400 ms: {:?}",
            s.keepalives
        );
        let from = s.registers[0];
        assert!(
            s.keepalives.iter().all(|k| *k == from),
            "keep-alives come from the REGISTER's socket {from}: {:?}",
            s.keepalives
        );
    }
    stop(&[&p]).await;

    let (port, seen) = registrar::recording_registrar().await;
    let mut params = quiet("1002");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    params.push(("transport", "0".into()));
    params.push(("keepaliveival", "0".into()));
    let mut p = TestPhone::new(&params).await;
    p.callback("onRegistered", 10).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        seen.lock().unwrap().keepalives.is_empty(),
        "keepaliveival 0: no keep-alives"
    );
    stop(&[&p]).await;
}

/// Parameters the registrar pushes in its 2xx (behaviours §2.1): `X-MParam` for this
/// session, `X-MParamP` kept in the profile; a refresh repeating them changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_mparam_in_the_registrars_2xx_sets_parameters() {
    let port = registrar::registrar_adding(
        200,
        "X-MParam: ringtimeout=45000;autoignore=1\r\nx-mparamp: voicemailnum=*97\r\n",
    )
    .await;
    let dir = TempDir::new("mparam_reg");
    let mut params = quiet("1001");
    params.push(("serveraddress", format!("127.0.0.1:{port}")));
    params.push(("transport", "0".into()));
    params.push(("loglevel", "3".into()));
    let mut p = TestPhone::in_dir(&params, Some(&dir.0)).await;
    p.callback("onRegistered", 10).await;
    assert_eq!(p.api("getparameter", &["ringtimeout"]).await, "45000");
    assert_eq!(p.api("getparameter", &["autoignore"]).await, "1");
    assert_eq!(p.api("getparameter", &["voicemailnum"]).await, "*97");
    p.notification(
        |t| t.contains("parameter voicemailnum set by the server"),
        5,
    )
    .await;
    stop(&[&p]).await;
    drop(p);

    // Next start without a registrar: only the X-MParamP value was kept.
    let mut again = quiet("1001");
    again.push(("register", "0".into()));
    let p = TestPhone::in_dir(&again, Some(&dir.0)).await;
    assert_eq!(p.api("getparameter", &["voicemailnum"]).await, "*97");
    assert_ne!(p.api("getparameter", &["ringtimeout"]).await, "45000");
    stop(&[&p]).await;
}

/// Rows of `table` in the profile database under `work_dir` (the engine keeps it open: WAL
/// readers see its commits).
fn rows(work_dir: &std::path::Path, table: &str) -> i64 {
    let db = webphone_engine::profile::Profile::db_path(work_dir, "").unwrap();
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// `delsettings` on a running engine with a real call, chat and contact behind it: level 1
/// forgets the settings only; level 2 also the contacts, the call history and the chats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delsettings_two_erases_contacts_history_and_chats_of_a_running_engine() {
    let (mut alice, alice_uri) = answering_phone("alice", &[]).await;
    let dir = TempDir::new("delsettings_live");
    let mut params = quiet("bob");
    params.push(("displayname", "Bob Stored".into()));
    let mut bob = TestPhone::in_dir(&params, Some(&dir.0)).await;
    bob.api("setparameter", &["ringtimeout", "45000"]).await;
    bob.api("addcontact", &["Carol", "1003", "", "", "", ""])
        .await;
    bob.api("call", &[&alice_uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    bob.api("sendchat", &[&alice_uri, "to be forgotten"]).await;
    alice.callback("onChat", 10).await;

    assert!(rows(&dir.0, "call_history") >= 1);
    assert!(rows(&dir.0, "chat_messages") >= 1);
    assert_eq!(rows(&dir.0, "contacts"), 1);

    bob.api("delsettings", &["1"]).await;
    assert_ne!(bob.api("getparameter", &["ringtimeout"]).await, "45000");
    assert_eq!(rows(&dir.0, "settings"), 0);
    assert!(
        bob.api("listcontacts", &["false"])
            .await
            .as_str()
            .unwrap_or("")
            .contains("Carol"),
        "level 1 keeps the contacts"
    );
    assert!(
        rows(&dir.0, "call_history") >= 1,
        "level 1 keeps the history"
    );
    assert!(
        rows(&dir.0, "chat_messages") >= 1,
        "level 1 keeps the chats"
    );

    bob.api("delsettings", &["2"]).await;
    assert_eq!(bob.api("listcontacts", &["false"]).await, Value::Null);
    assert_eq!(
        bob.api("chathistory", &[&alice_uri]).await,
        serde_json::json!([])
    );
    for table in ["contacts", "call_history", "chat_messages", "settings"] {
        assert_eq!(rows(&dir.0, table), 0, "{table} after delsettings(2)");
    }
    stop(&[&alice, &bob]).await;
}

/// `resetsettings=true` at start: the stored settings of the profile are gone (in memory and
/// in the database), the configuration given at start applies, contacts stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetsettings_at_start_forgets_the_stored_settings() {
    let dir = TempDir::new("resetsettings_live");
    let first = TestPhone::in_dir(&quiet("bob"), Some(&dir.0)).await;
    first
        .api("setparameter", &["displayname", "Bob Stored"])
        .await;
    first
        .api("addcontact", &["Carol", "1003", "", "", "", ""])
        .await;
    first.stop().await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let kept = TestPhone::in_dir(&quiet("bob"), Some(&dir.0)).await;
    assert_eq!(
        kept.api("getparameter", &["displayname"]).await,
        "Bob Stored",
        "stored without resetsettings"
    );
    kept.stop().await;
    drop(kept);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut params = quiet("bob");
    params.push(("resetsettings", "true".into()));
    let reset = TestPhone::in_dir(&params, Some(&dir.0)).await;
    assert_eq!(reset.api("getparameter", &["displayname"]).await, "");
    assert_eq!(rows(&dir.0, "settings"), 0);
    assert!(
        reset
            .api("listcontacts", &["false"])
            .await
            .as_str()
            .unwrap_or("")
            .contains("Carol"),
        "contacts are not settings"
    );
    reset.stop().await;
}

/// `setsipheader("")` without a call removes every global header it set; `customsipheader`
/// stays (it is a parameter, not a setsipheader header). Checked in the INVITE the callee got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setsipheader_empty_removes_every_global_header() {
    let (mut alice, alice_uri) = answering_phone("alice", &[]).await;
    let mut params = quiet("bob");
    params.push(("customsipheader", "X-Custom: kept".into()));
    let mut bob = TestPhone::new(&params).await;
    bob.api("setsipheader", &["X-A: 1;X-B: 2"]).await;

    let invite_headers = |alice: &TestPhone| {
        let alice = alice.phone.clone();
        async move {
            let mut got = Vec::new();
            for h in ["X-A", "X-B", "X-Custom"] {
                let v = alice.api("getsipheader", vec![h.into()]).await.unwrap();
                got.push(v.as_str().unwrap_or("").to_string());
            }
            got
        }
    };
    bob.api("call", &[&alice_uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    assert_eq!(invite_headers(&alice).await, ["1", "2", "kept"]);
    bob.api("hangup", &[]).await;
    bob.call_state("callDisconnected", 10).await;
    alice.call_state("callDisconnected", 10).await;

    bob.api("setsipheader", &[""]).await;
    bob.api("call", &[&alice_uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    let got = invite_headers(&alice).await;
    assert!(
        got[0].starts_with("ERROR") && got[1].starts_with("ERROR"),
        "{got:?}"
    );
    assert_eq!(got[2], "kept");
    stop(&[&alice, &bob]).await;
}

/// The SIP port of a phone (the local address of `getlinedetails`).
async fn sip_port(p: &TestPhone) -> u16 {
    let d = p.api("getlinedetails", &["1"]).await;
    let local = d.as_str().unwrap().split(',').nth(7).unwrap().to_string();
    local.rsplit(':').next().unwrap().parse().unwrap()
}

/// `signalingport` 0: the port of the last run is taken again when free (the registrar's
/// binding and a NAT mapping survive a restart); when another program holds it, any port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sip_port_stays_the_same_across_restarts() {
    let dir = TempDir::new("stable_port");
    let first = TestPhone::in_dir(&quiet("bob"), Some(&dir.0)).await;
    let port = sip_port(&first).await;
    first.stop().await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let again = TestPhone::in_dir(&quiet("bob"), Some(&dir.0)).await;
    assert_eq!(sip_port(&again).await, port, "same port after a restart");
    // While it runs, a second phone on the same profile folder cannot have it.
    let other = TestPhone::in_dir(&quiet("bob"), Some(&dir.0)).await;
    assert_ne!(sip_port(&other).await, port);
    stop(&[&again, &other]).await;

    // A configured port is used as configured and not recorded.
    let fixed = free_port();
    let mut params = quiet("bob");
    params.push(("signalingport", fixed.to_string()));
    let configured = TestPhone::in_dir(&params, Some(&dir.0)).await;
    assert_eq!(sip_port(&configured).await, fixed);
    configured.stop().await;
}

/// The copy costs nothing until a facade asks for it: no `_sync` event before `syncstate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sync_events_until_a_facade_asks_for_the_copy() {
    let mut p = TestPhone::new(&quiet("a")).await;
    p.api("setparameter", &["ringtimeout", "45000"]).await;
    let syncs = |p: &mut TestPhone| {
        p.drain()
            .iter()
            .filter(
                |e| matches!(e, webphone_engine::Event::Callback { name, .. } if name == "_sync"),
            )
            .count()
    };
    assert_eq!(syncs(&mut p), 0, "nobody asked");
    p.api("syncstate", &[]).await;
    p.api("setparameter", &["ringtimeout", "46000"]).await;
    assert!(syncs(&mut p) >= 1, "changes are published once asked");
    stop(&[&p]).await;
}
