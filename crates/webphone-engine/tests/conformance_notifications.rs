//! Conformance: every notification type the engine emits today, checked field by field
//! against the catalog's wire formats (STATUS general, per line and jsscripstats; CDR; DTMF;
//! START; EVENT; LOG), on real engines over loopback.

#![allow(clippy::unwrap_used)]
mod common;
#[path = "conformance_registrar.rs"]
mod registrar;

use std::time::Duration;

use common::*;
use registrar::registrar;

fn fields(s: &str) -> Vec<&str> {
    s.split(',').collect()
}

/// The long STATUS form: 15 fields, numeric codes in their documented ranges.
fn assert_long_status(s: &str) {
    let f = fields(s);
    assert_eq!(f.len(), 15, "STATUS field count of {s}");
    assert_eq!(f[0], "STATUS");
    let line: i64 = f[1].parse().unwrap_or_else(|_| panic!("line of {s}"));
    assert!(line == -1 || line >= 1, "line of {s}");
    assert!(["1", "2"].contains(&f[5]), "endpointtype of {s}");
    assert!(["0", "1"].contains(&f[8]), "online of {s}");
    assert!(
        ("0"..="7").contains(&f[9]) && f[9].len() == 1,
        "registered of {s}"
    );
    assert!(["0", "1", "2"].contains(&f[10]), "incall of {s}");
    assert!(["0", "1", "2", "3", "4"].contains(&f[11]), "mute of {s}");
    assert!(["0", "1", "2", "3", "4"].contains(&f[12]), "hold of {s}");
    assert!(
        ["-1", "0", "1", "2", "3"].contains(&f[13]),
        "encrypted of {s}"
    );
    assert!(["0", "1"].contains(&f[14]), "isvideo of {s}");
    assert!(!s.contains(", "), "no spaces after commas: {s}");
}

const GENERAL_TEXTS: &[&str] = &[
    "Initializing",
    "Ready",
    "Register...",
    "Registering...",
    "Register Failed",
    "Registered",
    "Accept",
    "Starting Call",
    "Call",
    "Call Initiated",
    "Calling...",
    "Ringing...",
    "Incoming...",
    "Hangup",
    "Call Finished",
    "Chat",
];

const LINE_TEXTS: &[&str] = &[
    "Init",
    "Ready",
    "Outband",
    "Register",
    "Subscribe",
    "Chat",
    "CallSetup",
    "Setup",
    "InProgress",
    "Routed",
    "Ringing",
    "CallConnect",
    "InCall",
    "Muted",
    "Hold",
    "Speaking",
    "Midcall",
    "CallDisconnect",
    "Finishing",
    "Finished",
    "Deletable",
];

fn is_documented_text(line: &str, text: &str) -> bool {
    if line == "-1" {
        GENERAL_TEXTS.contains(&text)
            || text
                .strip_prefix("In Call (")
                .and_then(|r| r.strip_suffix(" sec)"))
                .is_some_and(|n| n.parse::<u64>().is_ok())
    } else {
        LINE_TEXTS.contains(&text)
    }
}

async fn connected_pair(dir: &TempDir, bob_extra: &[(&str, String)]) -> (TestPhone, TestPhone) {
    write_tone(&dir.file("a-in.wav"), 1000.0, 4.0);
    write_tone(&dir.file("b-in.wav"), 440.0, 4.0);
    let port = free_port();
    let alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("signalingport", port.to_string()),
        ("autoaccept", "true".into()),
        (
            "audiodevicein",
            format!("file:{}", dir.file("a-in.wav").display()),
        ),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    let mut bp = vec![
        ("username", "bob".to_string()),
        (
            "audiodevicein",
            format!("file:{}", dir.file("b-in.wav").display()),
        ),
        ("audiodeviceout", "null".into()),
    ];
    bp.extend(bob_extra.iter().cloned());
    let mut bob = TestPhone::new(&bp).await;
    let mut alice = alice;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    (alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_notifications_are_start_api_and_start_sip() {
    let mut p = TestPhone::new(&[("username", "a".into())]).await;
    p.notification(|t| t == "START,api", 5).await;
    p.notification(|t| t == "START,sip", 5).await;
    for s in p.notifications("START") {
        assert!(s == "START,api" || s == "START,sip", "{s}");
    }
    p.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_status_uses_documented_texts_and_registration_codes() {
    let port = registrar(200).await;
    let mut p = TestPhone::new(&[
        ("serveraddress", format!("127.0.0.1:{port}")),
        ("username", "1001".into()),
        ("password", "secret".into()),
    ])
    .await;
    let s = p
        .notification(|t| t.starts_with("STATUS,-1,Registered,"), 10)
        .await;
    assert_long_status(&s);
    let f = fields(&s);
    assert_eq!(f[4], "1001", "localname of {s}");
    assert_eq!(f[9], "2", "registered=yes in {s}");
    assert_eq!(f[8], "1", "online in {s}");
    assert_eq!(p.api("getstatus", &[]).await, "Registered");
    p.api("unregister", &[]).await;
    let s = p
        .notification(|t| t.starts_with("STATUS,-1,") && fields(t)[9] == "6", 10)
        .await;
    assert_long_status(&s);
    for s in p.notifications("STATUS,-1,") {
        assert_long_status(&s);
        assert!(
            is_documented_text("-1", fields(&s)[2]),
            "undocumented text in {s}"
        );
    }
    p.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_registration_gives_register_failed_and_code_seven() {
    let port = registrar(403).await;
    let mut p = TestPhone::new(&[
        ("serveraddress", format!("127.0.0.1:{port}")),
        ("username", "1001".into()),
        ("password", "secret".into()),
    ])
    .await;
    let s = p
        .notification(|t| t.starts_with("STATUS,-1,Register Failed,"), 10)
        .await;
    assert_long_status(&s);
    assert_eq!(fields(&s)[9], "7", "{s}");
    let e = p.notification(|t| t.starts_with("EVENT,"), 5).await;
    let f: Vec<&str> = e.splitn(3, ',').collect();
    assert_eq!(f.len(), 3, "{e}");
    assert!(["EVENT", "WARNING", "ERROR"].contains(&f[1]), "{e}");
    assert!(!f[2].is_empty(), "{e}");
    p.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_status_follows_a_call_with_one_time_events_and_long_form() {
    let dir = TempDir::new("conf-n-line");
    let (mut alice, mut bob) = connected_pair(&dir, &[]).await;
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    alice.callback("onCdr", 10).await;
    for (who, p, endpoint) in [("bob", &bob, "1"), ("alice", &alice, "2")] {
        let lines: Vec<String> = p
            .notifications("STATUS,1,")
            .into_iter()
            .filter(|s| fields(s).len() == 15)
            .collect();
        let texts: Vec<&str> = lines.iter().map(|s| fields(s)[2]).collect();
        for s in &lines {
            assert_long_status(s);
            assert!(is_documented_text("1", fields(s)[2]), "{who}: {s}");
            assert_eq!(fields(s)[5], endpoint, "{who}: endpointtype of {s}");
            assert!(!fields(s)[7].is_empty(), "{who}: callid of {s}");
        }
        for once in ["CallConnect", "CallDisconnect"] {
            assert_eq!(
                texts.iter().filter(|t| **t == once).count(),
                1,
                "{who}: {once} once in {texts:?}"
            );
        }
        let connect = texts.iter().position(|t| *t == "CallConnect").unwrap();
        let disconnect = texts.iter().position(|t| *t == "CallDisconnect").unwrap();
        assert!(connect < disconnect, "{who}: {texts:?}");
        let incall = lines.iter().find(|s| fields(s)[2] == "InCall").unwrap();
        assert_eq!(
            fields(incall)[10],
            "2",
            "{who}: incall=speaking in {incall}"
        );
        let fin = lines.iter().find(|s| fields(s)[2] == "Finished").unwrap();
        assert_eq!(fields(fin)[10], "0", "{who}: incall=no in {fin}");
    }
    assert!(!bob
        .notifications("STATUS,1,CallSetup,alice,bob,1,")
        .is_empty());
    // The general status runs the call seconds while connected and ends with Call Finished.
    assert!(bob
        .notifications("STATUS,-1,In Call (")
        .iter()
        .all(|s| fields(s).len() == 15));
    bob.notification(|t| t.starts_with("STATUS,-1,Call Finished,"), 5)
        .await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsscripstats_adds_the_extended_status_with_rtp_counters() {
    let dir = TempDir::new("conf-n-stats");
    let (alice, mut bob) = connected_pair(&dir, &[("jsscripstats", "1".into())]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("hangup", &[]).await;
    let s = bob
        .notification(|t| t.starts_with("STATUS,1,Connected,"), 10)
        .await;
    let f = fields(&s);
    assert_eq!(f.len(), 13, "extended STATUS field count: {s}");
    assert_eq!(&f[3..6], &["alice", "bob", "1"], "{s}");
    let sent: u64 = f[7].parse().unwrap();
    let rec: u64 = f[8].parse().unwrap();
    let _loss: u64 = f[9].parse().unwrap();
    let pct: u64 = f[10].parse().unwrap();
    assert!(sent > 30 && rec > 30, "RTP counters of {s}");
    assert!(pct <= 100, "{s}");
    assert!(!f[12].is_empty(), "callid of {s}");
    // Off by default: alice (jsscripstats 0) never sends it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut alice = alice;
    alice.callback("onCdr", 5).await;
    assert!(alice.notifications("STATUS,1,Connected,").is_empty());
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdr_has_ten_fields_with_who_hung_up_and_reason() {
    let dir = TempDir::new("conf-n-cdr");
    let (mut alice, mut bob) = connected_pair(&dir, &[]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    bob.api("hangup", &[]).await;
    let b = bob.notification(|t| t.starts_with("CDR,"), 10).await;
    let a = alice.notification(|t| t.starts_with("CDR,"), 10).await;
    let f: Vec<&str> = b.splitn(10, ',').collect();
    assert_eq!(f.len(), 10, "{b}");
    assert_eq!(f[0], "CDR");
    assert_eq!(f[1], "1", "line of {b}");
    assert_eq!(f[2], "alice", "peername of {b}");
    assert_eq!(f[3], "bob", "caller of {b}");
    assert_eq!(f[4], "alice", "called of {b}");
    assert!(f[5].contains("127.0.0.1"), "peeraddress of {b}");
    let connect: u64 = f[6].parse().unwrap();
    let duration: u64 = f[7].parse().unwrap();
    assert!(connect < 5000 && (900..5000).contains(&duration), "{b}");
    assert_eq!(f[8], "1", "we hung up: discparty local in {b}");
    assert!(!f[9].is_empty(), "reason of {b}");
    let g: Vec<&str> = a.splitn(10, ',').collect();
    assert_eq!(g.len(), 10, "{a}");
    assert_eq!(&g[2..5], &["bob", "bob", "alice"], "{a}");
    assert_eq!(g[8], "2", "peer hung up: discparty in {a}");
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_notification_is_line_peer_status_digit() {
    let dir = TempDir::new("conf-n-dtmf");
    let (mut alice, bob) = connected_pair(&dir, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.api("dtmf", &["#"]).await;
    let d = alice.notification(|t| t.starts_with("DTMF,"), 10).await;
    let f = fields(&d);
    assert_eq!(f.len(), 5, "{d}");
    assert_eq!(f[1], "1", "{d}");
    assert_eq!(f[2], "bob", "{d}");
    assert!(["RTP", "INFO"].contains(&f[3]), "status of {d}");
    assert_eq!(f[4], "#", "{d}");
    bob.api("hangup", &[]).await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_follow_loglevel_and_have_three_parts() {
    let mut quiet = TestPhone::new(&[("username", "q".into()), ("loglevel", "1".into())]).await;
    let mut loud = TestPhone::new(&[("username", "l".into()), ("loglevel", "5".into())]).await;
    // `maxloglevel` caps what `loglevel` asks for.
    let mut capped = TestPhone::new(&[
        ("username", "c".into()),
        ("loglevel", "5".into()),
        ("maxloglevel", "1".into()),
    ])
    .await;
    // An invalid DTMF call is refused without logging; a call to a silent port is logged.
    let port = free_port();
    for p in [&quiet, &loud, &capped] {
        p.api("call", &[&format!("sip:nobody@127.0.0.1:{port}")])
            .await;
        p.api("hangup", &[]).await;
    }
    let l = loud.notification(|t| t.starts_with("LOG,EVENT,"), 5).await;
    assert_eq!(l.splitn(3, ',').count(), 3, "{l}");
    // Everything at loglevel 5 is kept for getlogs.
    let logs = loud.api("getlogs", &[]).await;
    assert!(logs.as_str().unwrap().contains(&l), "getlogs lacks {l}");
    for p in [&mut quiet, &mut capped] {
        p.callback("onCdr", 5).await;
        assert!(
            p.notifications("LOG,EVENT,").is_empty(),
            "loglevel 1 logs events: {:?}",
            p.notifications("LOG,EVENT,")
        );
    }
    for s in loud.notifications("LOG,") {
        let f: Vec<&str> = s.splitn(3, ',').collect();
        assert!(["EVENT", "WARNING", "ERROR"].contains(&f[1]), "{s}");
        assert!(!s.contains('\n') && !s.contains('\r'), "{s:?}");
    }
    quiet.api("stop", &[]).await;
    loud.api("stop", &[]).await;
    capped.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_shows_in_status_and_linedetails_hold_fields() {
    let dir = TempDir::new("conf-n-hold");
    let (mut alice, mut bob) = connected_pair(&dir, &[]).await;
    bob.api("hold", &["true"]).await;
    let s = bob
        .notification(|t| t.starts_with("STATUS,1,Hold,"), 10)
        .await;
    assert_long_status(&s);
    assert_eq!(fields(&s)[12], "2", "we hold: {s}");
    let a = alice
        .notification(|t| t.starts_with("STATUS,1,Hold,"), 10)
        .await;
    assert_eq!(fields(&a)[12], "3", "other party holds: {a}");
    assert_eq!(bob.api("isonhold", &[]).await, true);
    bob.api("hangup", &[]).await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linedetails_of_a_held_line_has_hold_state_and_code() {
    let dir = TempDir::new("conf-n-hold-details");
    let (alice, mut bob) = connected_pair(&dir, &[]).await;
    bob.api("hold", &["true"]).await;
    bob.notification(|t| t.starts_with("STATUS,1,Hold,"), 10)
        .await;
    let d = bob.api("getlinedetails", &["1"]).await;
    let d = d.as_str().unwrap().to_string();
    let f = fields(&d);
    assert_eq!(f.len(), 12, "{d}");
    assert_eq!(f[2], "Hold", "state of LINEDETAILS {d} (STATUS says Hold)");
    assert_eq!(f[10], "2", "hold field of LINEDETAILS {d}");
    bob.api("hangup", &[]).await;
    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
}
