//! Two engines calling each other over real loopback sockets (no server), and the built-in echo
//! endpoint: the call flow, the CDR fields and the audio each side recorded.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_call_carries_audio_both_ways_and_writes_cdrs() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("direct");
    write_tone(&dir.file("a-in.wav"), 1000.0, 3.0);
    write_tone(&dir.file("b-in.wav"), 440.0, 3.0);
    let port = free_port();
    let dev = |f: &str| format!("file:{}", dir.file(f).display());
    let mut alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("signalingport", port.to_string()),
        ("autoaccept", "true".into()),
        ("audiodevicein", dev("a-in.wav")),
        ("audiodeviceout", dev("a-out.wav")),
    ])
    .await;
    let mut bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("displayname", "Bob, the builder".into()),
        ("loglevel", "5".into()),
        ("jsscripstats", "1".into()),
        ("vadstat", "3".into()),
        ("vadstat_ival", "1000".into()),
        ("audiodevicein", dev("b-in.wav")),
        ("audiodeviceout", dev("b-out.wav")),
    ])
    .await;

    let line = bob
        .api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    assert_eq!(line, Value::from(1));
    let inc = alice.call_state("callConnected", 10).await;
    assert_eq!(inc[1], Value::from(2), "incoming direction");
    assert_eq!(inc[2], Value::from("bob"));
    assert_eq!(inc[3], Value::from("Bob, the builder"));
    bob.call_state("callConnected", 10).await;
    assert_eq!(bob.api("isincall", &[]).await, Value::from(true));
    assert!(bob
        .api("getstatus", &[])
        .await
        .as_str()
        .unwrap()
        .starts_with("In Call"));

    tokio::time::sleep(Duration::from_secs(1)).await;
    bob.api("dtmf", &["5#"]).await;
    let d1 = alice.callback("onDTMF", 5).await;
    let d2 = alice.callback("onDTMF", 5).await;
    assert_eq!((d1[0].clone(), d2[0].clone()), ("5".into(), "#".into()));
    assert_eq!(d1[1], Value::from(1), "line");
    assert!(alice
        .notifications("DTMF,")
        .contains(&"DTMF,1,bob,RTP,5".to_string()));
    // vadstat 3: bob reports voice activity every second while the call is up.
    let vad = bob.notification(|t| t.starts_with("VAD,"), 5).await;
    assert!(vad.contains("local_avg"), "{vad}");
    assert!(alice.notifications("VAD,").is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    bob.api("hangup", &[]).await;

    let cdr_b = bob.callback("onCdr", 10).await;
    let cdr_a = alice.callback("onCdr", 10).await;
    // onCdr: caller, called, connecttime, duration, direction, peerdisplayname, reason, line
    assert_eq!(cdr_b[0], Value::from("bob"));
    assert_eq!(cdr_b[1], Value::from("alice"));
    assert!(
        cdr_b[3].as_u64().unwrap() >= 2900,
        "duration {:?}",
        cdr_b[3]
    );
    assert_eq!(cdr_b[4], Value::from(1));
    assert_eq!(cdr_b[6], Value::from("BYE"));
    assert_eq!(cdr_a[0], Value::from("bob"));
    assert_eq!(cdr_a[1], Value::from("alice"));
    assert_eq!(cdr_a[4], Value::from(2));
    assert_eq!(cdr_a[5], Value::from("Bob, the builder"));
    assert_eq!(cdr_a[6], Value::from("BYE"));
    // CDR notification: discparty 1 = local for bob, 2 = peer for alice.
    let n_b = bob.notifications("CDR,");
    let n_a = alice.notifications("CDR,");
    assert!(n_b[0].ends_with(",1,BYE"), "{n_b:?}");
    assert!(n_a[0].ends_with(",2,BYE"), "{n_a:?}");
    assert!(
        n_a[0].starts_with("CDR,1,bob,bob,alice,127.0.0.1,"),
        "{n_a:?}"
    );
    assert_eq!(alice.api("isincall", &[]).await, Value::from(false));
    // Both sides show the same SIP Call-ID (field 8 of STATUS) for the call.
    let callid = |p: &TestPhone| {
        p.notifications("STATUS,1,CallConnect,")[0]
            .split(',')
            .nth(7)
            .unwrap()
            .to_string()
    };
    assert!(!callid(&bob).is_empty());
    assert_eq!(callid(&bob), callid(&alice));
    // loglevel 5 logs every SIP message as one LOG line; alice (loglevel 1) logs none.
    let logs = bob.notifications("LOG,EVENT,SIP >> ");
    assert!(
        logs.iter()
            .any(|l| l.contains("INVITE sip:alice@127.0.0.1")),
        "{logs:?}"
    );
    assert!(logs.iter().all(|l| !l.contains('\n')));
    assert!(alice.notifications("LOG,EVENT,SIP").is_empty());
    // jsscripstats: bob's extended STATUS at the call end carries the RTP counters.
    let ext = bob.notifications("STATUS,1,Connected,alice,bob,1,");
    assert_eq!(ext.len(), 1, "{ext:?}");
    let f: Vec<&str> = ext[0].split(',').collect();
    assert_eq!(f.len(), 13, "{ext:?}");
    let (sent, rec): (u64, u64) = (f[7].parse().unwrap(), f[8].parse().unwrap());
    assert!(sent > 100 && rec > 100, "{ext:?}");
    assert_eq!(f[12], callid(&bob));
    assert!(alice.notifications("STATUS,1,Connected,").is_empty());

    alice.api("stop", &[]).await;
    bob.api("stop", &[]).await;
    assert_tone(&dir.file("a-out.wav"), 440.0, 1000.0);
    assert_tone(&dir.file("b-out.wav"), 1000.0, 440.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_rejects_and_caller_sees_486() {
    let port = free_port();
    let mut alice = silent_phone("alice", Some(port), &[]).await;
    let mut bob = silent_phone("bob", None, &[]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    alice.call_state("callRinging", 10).await;
    bob.call_state("callRinging", 10).await;
    alice.api("reject", &[]).await;
    let cdr_b = bob.callback("onCdr", 10).await;
    assert!(cdr_b[6].as_str().unwrap().starts_with("486"), "{cdr_b:?}");
    assert_eq!(cdr_b[3], Value::from(0), "never connected");
    let cdr_a = alice.callback("onCdr", 10).await;
    assert!(cdr_a[6].as_str().unwrap().starts_with("486"), "{cdr_a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_before_answer() {
    let port = free_port();
    let mut alice = silent_phone("alice", Some(port), &[]).await;
    let mut bob = silent_phone("bob", None, &[]).await;
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    alice.call_state("callRinging", 10).await;
    bob.call_state("callRinging", 10).await;
    bob.api("hangup", &[]).await;
    let cdr_a = alice.callback("onCdr", 10).await;
    assert_eq!(cdr_a[6], Value::from("CANCEL"));
    let n_a = alice.notifications("CDR,");
    assert!(n_a[0].ends_with(",2,CANCEL"), "{n_a:?}");
    let cdr_b = bob.callback("onCdr", 10).await;
    assert_eq!(cdr_b[6], Value::from("CANCEL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_endpoint_plays_back_after_half_a_second() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("echo");
    write_tone(&dir.file("in.wav"), 440.0, 2.0);
    let mut p = TestPhone::new(&[
        (
            "audiodevicein",
            format!("file:{}", dir.file("in.wav").display()),
        ),
        (
            "audiodeviceout",
            format!("file:{}", dir.file("out.wav").display()),
        ),
    ])
    .await;
    p.api("call", &["echo"]).await;
    p.call_state("callConnected", 5).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    p.api("hangup", &[]).await;
    p.callback("onCdr", 5).await;
    let (x, rate) = read_wav(&dir.file("out.wav"));
    // The first 0.4 s are silent (the delay), then the tone comes back.
    let head = &x[..(rate as usize * 4 / 10)];
    assert!(
        head.iter().all(|s| s.abs() < 0.01),
        "echo came back too early"
    );
    assert_tone(&dir.file("out.wav"), 440.0, 1000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_arguments_give_errors_not_panics() {
    let p = TestPhone::new(&[("audiodevicein", "null".into())]).await;
    for (f, args) in [
        ("call", vec![]),
        ("call", vec![""]),
        ("call", vec!["1002"]), // no server configured: only SIP URIs
        ("dtmf", vec!["12x"]),
        ("hangup", vec!["abc"]),
        ("setparameter", vec!["transport", "9"]),
        ("getparameter", vec![]),
        ("accept", vec![]),
        ("nosuchfunction", vec![]),
    ] {
        let r = p
            .phone
            .api(f, args.iter().map(|s| s.to_string()).collect())
            .await;
        assert!(r.is_err(), "{f} {args:?} should fail, got {r:?}");
    }
    assert_eq!(
        p.api("getparameter", &["transport"]).await,
        Value::from("-1"),
        "refused value keeps the previous one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_is_refused_after_the_ring_timeout_and_talk_time_is_limited() {
    let port = free_port();
    let mut alice = silent_phone("alice", Some(port), &[("ringtimeoutin", "1500".into())]).await;
    let mut bob = silent_phone("bob", None, &[("calltimeout", "1500".into())]).await;
    let target = format!("sip:alice@127.0.0.1:{port}");
    bob.api("call", &[&target]).await;
    let cdr_a = alice.callback("onCdr", 10).await;
    assert!(
        cdr_a[6].as_str().unwrap().starts_with("480"),
        "callee side: {cdr_a:?}"
    );
    let cdr_b = bob.callback("onCdr", 10).await;
    assert!(
        cdr_b[6].as_str().unwrap().starts_with("480"),
        "caller side: {cdr_b:?}"
    );

    // Answered this time: bob's calltimeout ends the call after 1.5 s of talk.
    alice.api("setparameter", &["autoaccept", "true"]).await;
    bob.api("call", &[&target]).await;
    bob.call_state("callConnected", 10).await;
    let cdr_b = bob.callback("onCdr", 10).await;
    assert!(
        cdr_b[6].as_str().unwrap().contains("call time limit"),
        "{cdr_b:?}"
    );
    let talk = cdr_b[3].as_u64().unwrap();
    assert!((1400..5000).contains(&talk), "talk time {talk} ms");
    let cdr_a = alice.callback("onCdr", 10).await;
    assert_eq!(cdr_a[6], Value::from("BYE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blacklisted_caller_is_declined_and_a_second_call_to_the_same_peer_is_refused() {
    let port = free_port();
    let mut alice = silent_phone(
        "alice",
        Some(port),
        &[
            ("blacklist", "mallory, eve".into()),
            ("autoaccept", "true".into()),
        ],
    )
    .await;
    let mut mallory = silent_phone("mallory", None, &[]).await;
    let target = format!("sip:alice@127.0.0.1:{port}");
    mallory.api("call", &[&target]).await;
    let cdr = mallory.callback("onCdr", 10).await;
    assert!(cdr[6].as_str().unwrap().starts_with("603"), "{cdr:?}");

    // A caller not on the list gets through; calling the same peer again is refused.
    let mut bob = silent_phone("bob", None, &[]).await;
    bob.api("call", &[&target]).await;
    bob.call_state("callConnected", 10).await;
    let again = bob
        .phone
        .api("call", vec![target.clone()])
        .await
        .unwrap_err();
    assert_eq!(again.to_string(), "Already in call with alice");
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    // The blacklisted call never rang at alice: her only call is bob's.
    alice.callback("onCdr", 10).await;
    let states: Vec<_> = alice
        .seen
        .iter()
        .filter_map(|e| match e {
            webphone_engine::Event::Callback { name, args } if name == "onCallStateChange" => {
                Some(args[2].clone())
            }
            _ => None,
        })
        .collect();
    assert!(!states.is_empty());
    assert!(states.iter().all(|p| p == "bob"), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pushes_parameters_in_x_mparam_headers() {
    let port = free_port();
    let mut alice = silent_phone("alice", Some(port), &[]).await;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:alice@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-xmparam-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@127.0.0.1>;tag=xm1\r\n\
         To: <sip:alice@127.0.0.1>\r\n\
         Call-ID: xmparam-1@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:pbx@{me}>\r\n\
         X-MParam: loglevel=4;ringtimeout=30000\r\n\
         X-MParamP: displayname=From Server\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(invite.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    alice.call_state("callRinging", 10).await;
    assert_eq!(
        alice.api("getparameter", &["loglevel"]).await,
        Value::from("4")
    );
    assert_eq!(
        alice.api("getparameter", &["ringtimeout"]).await,
        Value::from("30000")
    );
    assert_eq!(
        alice.api("getparameter", &["displayname"]).await,
        Value::from("From Server")
    );
    // A run-time setparameter still wins over the server's value.
    alice.api("setparameter", &["loglevel", "2"]).await;
    assert_eq!(
        alice.api("getparameter", &["loglevel"]).await,
        Value::from("2")
    );
    alice.api("stop", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_watch_reports_failure_and_voicemail_notify_shows_mwi() {
    let port = free_port();
    let mut alice = TestPhone::new(&[
        ("username", "alice".into()),
        ("signalingport", port.to_string()),
    ])
    .await;
    let mut bob = TestPhone::new(&[("username", "bob".into())]).await;
    // An engine is no presence server: its 405 ends the watch with the documented states.
    bob.api("checkblf", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    let blf = bob.callback("onBLFStateChange", 10).await;
    assert_eq!(blf[0], Value::from("alice"));
    assert_eq!(blf[2], Value::from("failed"));
    bob.notification(|t| t.starts_with("BLF,alice,undefined,failed"), 5)
        .await;
    bob.api("checkpresence", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    let pres = bob.callback("onPresenceStateChange", 10).await;
    assert_eq!(pres[1], Value::from("Unknown"));
    assert!(bob
        .phone
        .api("checkpresence", vec![" , ".into()])
        .await
        .is_err());
    assert!(bob
        .phone
        .api("setpresencestatus", vec!["Sleeping".into()])
        .await
        .is_err());

    // A voicemail server's unsolicited NOTIFY (RFC 3842) becomes an MWI notification.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    let body = "Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n";
    let notify = format!(
        "NOTIFY sip:alice@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-mwi-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:voicemail@127.0.0.1>;tag=vm1\r\n\
         To: <sip:alice@127.0.0.1>\r\n\
         Call-ID: mwi-1@127.0.0.1\r\n\
         CSeq: 1 NOTIFY\r\n\
         Event: message-summary\r\n\
         Subscription-State: active;expires=3600\r\n\
         Content-Type: application/simple-message-summary\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.send_to(notify.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mwi = alice.notification(|t| t.starts_with("MWI,"), 10).await;
    assert_eq!(mwi, "MWI,2/8 (0/2)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_sip_messages_and_headers_can_be_read_back() {
    let port = free_port();
    let mut alice = silent_phone("alice", Some(port), &[("autoaccept", "true".into())]).await;
    let mut bob = silent_phone("bob", None, &[("displayname", "Bob".into())]).await;
    assert_eq!(
        alice.api("getsipmessage", &["0", "3"]).await,
        Value::from("ERROR: SIP message not found")
    );
    bob.api("call", &[&format!("sip:alice@127.0.0.1:{port}")])
        .await;
    alice.call_state("callConnected", 10).await;
    bob.call_state("callConnected", 10).await;
    let invite = alice.api("getsipmessage", &["0", "3"]).await;
    let invite = invite.as_str().unwrap();
    assert!(invite.starts_with("INVITE sip:alice@127.0.0.1"), "{invite}");
    assert!(invite.contains("\r\n\r\nv=0"), "the SDP body is included");
    let ok = bob.api("getsipmessage", &["0", "4"]).await;
    assert!(ok.as_str().unwrap().starts_with("SIP/2.0 200"), "{ok}");
    let from = alice.api("getsipheader", &["From"]).await;
    assert!(from.as_str().unwrap().contains("sip:bob@"), "{from}");
    assert_eq!(
        alice.api("getsipheader", &["X-Nothing"]).await,
        Value::from("ERROR: no such header")
    );
    assert!(bob
        .phone
        .api("getsipmessage", vec!["7".into()])
        .await
        .is_err());
    bob.api("hangup", &[]).await;
}

/// The incoming-call rules meet on one call in their documented order (behaviours: blacklist,
/// autoignore, DND, callforwardalways, ..., autoaccept): each rule taken away in turn lets the
/// next one decide, as the caller sees it on the wire (final response of its INVITE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_rules_apply_in_the_documented_order_over_the_wire() {
    let port = free_port();
    let alice = silent_phone(
        "alice",
        Some(port),
        &[
            ("blacklist", "bob".into()),
            ("callforwardalways", "sip:carol@127.0.0.1:9".into()),
            ("autoaccept", "true".into()),
        ],
    )
    .await;
    alice.api("setpresencestatus", &["DND"]).await;
    let mut bob = silent_phone("bob", None, &[("allowcallredirect", "0".into())]).await;
    let target = format!("sip:alice@127.0.0.1:{port}");
    // blacklist first (before DND, the forward and autoaccept): 603
    bob.api("call", &[&target]).await;
    let cdr = bob.callback("onCdr", 10).await;
    assert!(cdr[6].as_str().unwrap().starts_with("603"), "{cdr:?}");
    // then DND (before the forward and autoaccept): 480
    alice.api("setparameter", &["blacklist", ""]).await;
    bob.api("call", &[&target]).await;
    let cdr = bob.callback("onCdr", 10).await;
    assert!(cdr[6].as_str().unwrap().starts_with("480"), "{cdr:?}");
    // then callforwardalways (before autoaccept): 302
    alice.api("setpresencestatus", &["Online"]).await;
    bob.api("call", &[&target]).await;
    let cdr = bob.callback("onCdr", 10).await;
    assert!(cdr[6].as_str().unwrap().starts_with("302"), "{cdr:?}");
    // and without any of them autoaccept answers
    alice.api("setparameter", &["callforwardalways", ""]).await;
    bob.api("call", &[&target]).await;
    bob.call_state("callConnected", 10).await;
    bob.api("hangup", &[]).await;
    bob.callback("onCdr", 10).await;
    alice.stop().await;
    bob.stop().await;
}
