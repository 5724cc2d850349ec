//! Conformance: every callback of `data/events.tsv` the engine emits today, with its exact
//! argument order and JSON types, against real engines on loopback. Registration callbacks
//! use the minimal UDP registrar of `conformance_registrar.rs` (it answers REGISTER with 200
//! or 403), so they need no external server.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
#[path = "conformance_registrar.rs"]
mod registrar;
use registrar::registrar;

fn account(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("serveraddress", format!("127.0.0.1:{port}")),
        ("username", "1001".into()),
        ("password", "secret".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_start_has_no_arguments() {
    let mut p = TestPhone::new(&[("username", "a".into())]).await;
    assert_eq!(p.callback("onStart", 5).await, Vec::<Value>::new());
    p.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_registered_and_on_unregistered_have_no_arguments() {
    let port = registrar(200).await;
    let mut p = TestPhone::new(&account(port)).await;
    assert_eq!(p.callback("onRegistered", 10).await, Vec::<Value>::new());
    assert_eq!(p.api("isregistered", &[]).await, Value::from(true));
    p.api("unregister", &[]).await;
    assert_eq!(p.callback("onUnRegistered", 10).await, Vec::<Value>::new());
    assert_eq!(p.api("isregistered", &[]).await, Value::from(false));
    p.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_register_failed_has_one_string_reason() {
    let port = registrar(403).await;
    let mut p = TestPhone::new(&account(port)).await;
    let args = p.callback("onRegisterFailed", 10).await;
    assert_eq!(args.len(), 1, "{args:?}");
    let reason = args[0].as_str().unwrap();
    assert!(!reason.is_empty());
    assert_eq!(p.api("isregistered", &[]).await, Value::from(false));
    let r = p.api("getregfailreason", &[]).await;
    assert!(!r.as_str().unwrap().is_empty(), "getregfailreason: {r}");
    p.api("stop", &[]).await;
}

async fn pair(dir: &TempDir) -> (TestPhone, TestPhone, u16) {
    write_tone(&dir.file("a-in.wav"), 1000.0, 3.0);
    let port = free_port();
    let alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("signalingport", port.to_string()),
        (
            "audiodevicein",
            format!("file:{}", dir.file("a-in.wav").display()),
        ),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    let bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("displayname", "Bob Builder".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    (alice, bob, port)
}

fn assert_call_state(args: &[Value], event: &str, direction: u64, peer: &str, line: u64) {
    assert_eq!(args.len(), 5, "onCallStateChange args: {args:?}");
    assert_eq!(args[0], Value::from(event), "{args:?}");
    assert_eq!(args[1], Value::from(direction), "direction of {args:?}");
    assert_eq!(args[2], Value::from(peer), "peername of {args:?}");
    assert!(args[3].is_string(), "peerdisplayname of {args:?}");
    assert_eq!(args[4], Value::from(line), "line of {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_state_change_carries_event_direction_peer_display_name_and_line() {
    let dir = TempDir::new("conf-cb-state");
    let (mut alice, mut bob, port) = pair(&dir).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    let setup = bob.call_state("callSetup", 10).await;
    assert_call_state(&setup, "callSetup", 1, "alice", 1);
    let incoming = alice.call_state("callRinging", 10).await;
    assert_call_state(&incoming, "callRinging", 2, "bob", 1);
    assert_eq!(incoming[3], Value::from("Bob Builder"));
    alice.api("accept", &[]).await;
    let c = bob.call_state("callConnected", 10).await;
    assert_call_state(&c, "callConnected", 1, "alice", 1);
    let c = alice.call_state("callConnected", 10).await;
    assert_call_state(&c, "callConnected", 2, "bob", 1);
    bob.api("hangup", &[]).await;
    let d = bob.call_state("callDisconnected", 10).await;
    assert_call_state(&d, "callDisconnected", 1, "alice", 1);
    let d = alice.call_state("callDisconnected", 10).await;
    assert_call_state(&d, "callDisconnected", 2, "bob", 1);
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cdr_has_eight_arguments_in_the_documented_order() {
    let dir = TempDir::new("conf-cb-cdr");
    let (mut alice, mut bob, port) = pair(&dir).await;
    alice.api("setparameter", &["autoaccept", "true"]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    bob.api("hangup", &[]).await;
    let a = bob.callback("onCdr", 10).await;
    assert_eq!(a.len(), 8, "{a:?}");
    assert_eq!(a[0], Value::from("bob"), "caller");
    assert_eq!(a[1], Value::from("alice"), "called");
    assert!(a[2].is_u64(), "connecttime {a:?}");
    let duration = a[3].as_u64().unwrap();
    assert!((1000..5000).contains(&duration), "duration ms {duration}");
    assert_eq!(a[4], Value::from(1), "direction");
    assert!(a[5].is_string(), "peerdisplayname");
    assert!(!a[6].as_str().unwrap().is_empty(), "reason");
    assert_eq!(a[7], Value::from(1), "line");
    let b = alice.callback("onCdr", 10).await;
    assert_eq!(b[0], Value::from("bob"), "caller on the called side: {b:?}");
    assert_eq!(b[1], Value::from("alice"));
    assert_eq!(b[4], Value::from(2));
    assert_eq!(b[5], Value::from("Bob Builder"));
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dtmf_has_the_digit_string_and_the_line_number() {
    let dir = TempDir::new("conf-cb-dtmf");
    let (mut alice, mut bob, port) = pair(&dir).await;
    alice.api("setparameter", &["autoaccept", "true"]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.api("dtmf", &["5"]).await;
    let a = alice.callback("onDTMF", 10).await;
    assert_eq!(a, vec![Value::from("5"), Value::from(1)]);
    bob.api("hangup", &[]).await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_display_has_message_and_title_and_on_log_one_string() {
    let mut p = TestPhone::new(&[
        ("username", "a".into()),
        ("loglevel", "5".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
        ("blacklist", "".into()),
    ])
    .await;
    let log = p.callback("onLog", 5).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].as_str().unwrap().starts_with("LOG,"), "{log:?}");
    // A device that cannot be opened is shown to the user.
    p.api("setparameter", &["audiodevicein", "no-such-device-xyz"])
        .await;
    let port = free_port();
    let peer = TestPhone::new(&[
        ("username", "peer".into()),
        ("signalingport", port.to_string()),
        ("autoaccept", "true".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    p.api("call", &[&format!("sip:peer@127.0.0.1:{port}")])
        .await;
    let d = p.callback("onDisplay", 10).await;
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].as_str().unwrap().contains("recording device"), "{d:?}");
    assert!(d[1].is_string(), "title {d:?}");
    let _ = p.phone.api("hangup", vec!["-2".into()]).await;
    peer.api("stop", &[]).await;
    p.api("stop", &[]).await;
}
