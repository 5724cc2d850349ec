//! Conformance for the API rows and notification types the audit (`conformance_audit.rs`)
//! found without a test: the browser-only functions, the low-level `jvoip` names,
//! `getvolume`/`setvolume`, `CHATCOMPOSING`, `CREDIT`/`RATING`/`ANSWER`/`NEWUSER`, and the formats of
//! `getsipmessage`, `getsipheader`, `getlinedetails` and `getlastcalldetails` against the
//! active line and the CDR. Real engines, real UDP/TCP sockets on loopback.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn quiet(user: &str) -> Vec<(&'static str, String)> {
    let mut p = null_audio(user);
    p.push(("disablesamecall", "0".into()));
    p
}

/// An auto-answering engine on a known port and its SIP URI.
async fn callee(user: &str, extra: &[(&'static str, String)]) -> (TestPhone, String) {
    let mut all = vec![("disablesamecall", "0".to_string())];
    all.extend(extra.iter().cloned());
    answering_phone(user, &all).await
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
async fn video_screen_sharing_and_device_popup_say_not_supported_and_leave_the_call_alone() {
    let (mut alice, uri) = callee("alice", &[]).await;
    let mut bob = TestPhone::new(&quiet("bob")).await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    for (f, args) in [
        ("mutevideo", vec!["true", "0"]),
        ("setvideodisplaysize", vec!["1", "320", ""]),
        ("stopscreenshare", vec![]),
        ("devicepopup", vec![]),
    ] {
        let e = err(&bob, f, &args).await;
        assert!(
            e.starts_with(&format!("{f} is not supported by this engine")),
            "{f}: {e}"
        );
    }
    // The audio call goes on untouched: not muted, not held, still connected.
    assert_eq!(bob.api("isincall", &[]).await, true);
    assert_eq!(bob.api("ismuted", &[]).await, false);
    let d = bob.api("getlinedetails", &["1"]).await;
    assert!(
        d.as_str().unwrap().starts_with("LINEDETAILS,1,InCall,"),
        "{d}"
    );
    bob.api("hangup", &[]).await;
    alice.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jvoip_low_level_names_are_refused_with_the_high_level_way_and_send_nothing() {
    // A bare socket as the would-be callee: it must see no SIP at all.
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("sip:alice@{}", peer.local_addr().unwrap());
    let bob = TestPhone::new(&quiet("bob")).await;
    let e = err(&bob, "jvoip", &["API_Call", "-1", &uri]).await;
    assert!(
        e.contains("jvoip(API_Call) is not supported by this engine") && e.contains("call(number)"),
        "{e}"
    );
    let e = err(&bob, "jvoip", &["API_Dtmf", "-2", "1"]).await;
    assert!(
        e.contains("jvoip(API_Dtmf)") && e.contains("dtmf(digits)"),
        "{e}"
    );
    let e = err(&bob, "jvoip", &["API_VAD"]).await;
    assert!(e.contains("jvoip(API_VAD)") && e.contains("vadstat"), "{e}");
    let e = err(&bob, "jvoip", &[]).await;
    assert!(e.starts_with("jvoip is not supported"), "{e}");
    // The phantom name of the setdevice text is not a function; getdevicelist is.
    assert_eq!(
        err(&bob, "getaudiodevicelist", &["0"]).await,
        "unknown function"
    );
    assert!(bob.api("getdevicelist", &["1"]).await.is_string());
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(Duration::from_millis(800), peer.recv_from(&mut buf)).await;
    assert!(got.is_err(), "the peer received SIP after a refused jvoip");
    assert_eq!(bob.api("isincall", &[]).await, false);
    stop(&[&bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_parameters_set_the_levels_and_setvolume_reaches_the_peer() {
    let _serial = audio_serial().await;
    let dir = TempDir::new("volume");
    write_tone(&dir.file("b-in.wav"), 440.0, 5.0);
    let dev = |f: &str| format!("file:{}", dir.file(f).display());
    let (mut alice, uri) = callee(
        "alice",
        &[
            ("audiodevicein", "null".into()),
            ("audiodeviceout", dev("a-out.wav")),
        ],
    )
    .await;
    let mut bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("audiodevicein", dev("b-in.wav")),
        ("audiodeviceout", "null".into()),
        // The microphone starts muted by its parameter (0 = muted).
        ("volumein", "0".into()),
        ("volumeout", "80".into()),
    ])
    .await;
    assert_eq!(bob.api("getvolume", &["0"]).await, Value::from(0));
    assert_eq!(bob.api("getvolume", &["1"]).await, Value::from(80));
    assert_eq!(bob.api("getvolume", &["2"]).await, Value::from(50));
    // A run-time parameter change is a level change too.
    bob.api("setparameter", &["volumering", "30"]).await;
    assert_eq!(bob.api("getvolume", &["2"]).await, Value::from(30));
    // Refused arguments change nothing.
    for bad in [vec!["5", "50"], vec!["0", "150"], vec!["0", "loud"], vec![]] {
        let e = err(&bob, "setvolume", &bad).await;
        assert!(e.starts_with("usage: setvolume"), "{bad:?}: {e}");
    }
    assert!(err(&bob, "getvolume", &["9"])
        .await
        .starts_with("usage: getvolume"));
    assert_eq!(bob.api("getvolume", &["0"]).await, Value::from(0));

    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("setvolume", &["0", "50"]).await;
    assert_eq!(bob.api("getvolume", &["0"]).await, Value::from(50));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.api("hangup", &[]).await;
    alice.callback("onCdr", 10).await;
    stop(&[&alice, &bob]).await;

    // What alice heard: silence while bob's microphone volume was 0, the tone after.
    let (x, rate) = read_wav(&dir.file("a-out.wav"));
    let r = rate as usize;
    assert!(x.len() > 2 * r, "recording too short: {}", x.len());
    let before = goertzel(&x[r / 2..r], rate, 440.0);
    let after = goertzel(&x[x.len() - r / 2..], rate, 440.0);
    assert!(before < 0.0005, "tone while volumein=0: {before}");
    assert!(after > 0.02, "tone after setvolume(0, 50): {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_composing_and_text_messages_from_a_peer_become_chatcomposing_and_chat() {
    let port = free_port();
    let mut p = quiet("alice");
    p.push(("signalingport", port.to_string()));
    let mut alice = TestPhone::new(&p).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let composing = |state: &str| {
        format!(
            "<?xml version=\"1.0\"?><isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\">\
             <state>{state}</state><contenttype>text/plain</contenttype></isComposing>"
        )
    };
    let messages = [
        ("application/im-iscomposing+xml", composing("active")),
        ("text/plain", "hello, alice".to_string()),
        ("application/im-iscomposing+xml", composing("idle")),
    ];
    let mut buf = vec![0u8; 4096];
    for (i, (ct, body)) in messages.iter().enumerate() {
        let msg = format!(
            "MESSAGE sip:alice@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-composing-{i};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:carol@127.0.0.1>;tag=c{i}\r\n\
             To: <sip:alice@127.0.0.1>\r\n\
             Call-ID: composing-{i}@127.0.0.1\r\n\
             CSeq: 1 MESSAGE\r\n\
             Content-Type: {ct}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.send_to(msg.as_bytes(), ("127.0.0.1", port))
            .await
            .unwrap();
        // RFC 3428 §7: the MESSAGE is answered with a 2xx.
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("an answer to the MESSAGE")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
        assert_eq!(
            sip_header(&answer, "Call-ID"),
            Some(&*format!("composing-{i}@127.0.0.1"))
        );
    }
    alice
        .notification(|t| t == "CHATCOMPOSING,0,carol,1", 5)
        .await;
    alice
        .notification(|t| t == "CHAT,0,carol,hello, alice", 5)
        .await;
    alice
        .notification(|t| t == "CHATCOMPOSING,0,carol,0", 5)
        .await;
    // Typing states are not chat messages: onChat fired once, with the text.
    let chats: Vec<_> = alice
        .seen
        .iter()
        .filter(|e| matches!(e, webphone_engine::Event::Callback { name, .. } if name == "onChat"))
        .collect();
    assert_eq!(chats.len(), 1, "{chats:?}");
    stop(&[&alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_rating_and_sms_api_answers_become_credit_rating_and_answer() {
    let (http, requests) = http_server(&[
        ("/balance", "12.50 USD"),
        ("/rating", "0.02 USD/min"),
        ("/sms", "queued, id 42"),
        ("/signup", "Account neo created"),
    ])
    .await;
    let (mut alice, uri) = callee("alice", &[]).await;
    let base = format!("http://127.0.0.1:{http}");
    let mut p = quiet("bob");
    p.push(("creditrequest", format!("*{base}/balance?user=USERNAME")));
    p.push((
        "ratingrequest",
        format!("*{base}/rating?destination=CALLEDNUMBER"),
    ));
    p.push(("sms", format!("*{base}/sms?to=PEERNUM&text=TEXT")));
    p.push(("newuser", format!("*{base}/signup?u=USERNAME&p=PASSWORD")));
    let mut bob = TestPhone::new(&p).await;
    bob.notification(|t| t == "CREDIT,12.50 USD", 10).await;
    assert!(
        bob.notifications("RATING,").is_empty(),
        "no rating before a call"
    );

    bob.api("call", &[&uri]).await;
    // The rating may come before or after the answer; `notification` also looks at what
    // was already seen, so wait for the call state first.
    bob.call_state("callConnected", 10).await;
    bob.notification(|t| t == "RATING,0.02 USD/min", 10).await;
    bob.api("hangup", &[]).await;
    alice.call_state("callDisconnected", 10).await;
    // An incoming call is not rated: alice has no ratingrequest, and bob's answer came once.
    assert_eq!(bob.notifications("RATING,").len(), 1);

    bob.api("sendsms", &["+3612345", "hi"]).await;
    bob.notification(|t| t == "ANSWER,queued, id 42", 10).await;
    bob.notification(|t| t == "CHATREPORT,0,+3612345,2,", 10)
        .await;
    // The sign-up form's answer (`linkrequest`, engine extension) is `NEWUSER,text`.
    bob.api("linkrequest", &["newuser", "USERNAME=neo&PASSWORD=pw"])
        .await;
    bob.notification(|t| t == "NEWUSER,Account neo created", 10)
        .await;
    let seen = paths(&requests);
    assert!(seen.contains(&"/balance?user=bob".to_string()), "{seen:?}");
    assert!(seen.contains(&"/signup?u=neo&p=pw".to_string()), "{seen:?}");
    assert!(
        seen.iter()
            .any(|r| r.starts_with("/rating?destination=") && r.contains("alice")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|r| r.starts_with("/sms?to=")), "{seen:?}");
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getsipmessage_getsipheader_and_getlinedetails_follow_the_active_line() {
    let (mut alice, a_uri) = callee("alice", &[]).await;
    let port = free_port();
    let mut cp = quiet("carol");
    cp.push(("signalingport", port.to_string()));
    let mut carol = TestPhone::new(&cp).await;
    let c_uri = format!("sip:carol@127.0.0.1:{port}");
    let mut bp = quiet("bob");
    bp.push(("displayname", "Bob B".into()));
    let mut bob = TestPhone::new(&bp).await;

    bob.api("call", &[&a_uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    bob.api("call", &[&c_uri]).await;
    carol.call_state("callRinging", 10).await;

    // The ringing incoming call seen by carol: LINEDETAILS with type 2 and the caller's name.
    let d = carol.api("getlinedetails", &[""]).await;
    let d = d.as_str().unwrap().to_string();
    let f: Vec<&str> = d.split(',').collect();
    assert_eq!(f.len(), 12, "{d}");
    assert_eq!(&f[..3], &["LINEDETAILS", "1", "Ringing"], "{d}");
    assert_eq!(f[3], carol.api("linetocallid", &["1"]).await, "{d}");
    assert_eq!((f[4], f[5], f[6]), ("bob", "carol", "2"), "{d}");
    assert_eq!((f[9], f[10], f[11]), ("0", "0", "Bob B"), "{d}");
    assert!(f[7].starts_with("127.0.0.1:"), "localaddress of {d}");
    // The INVITE carol received is the one this line's Call-ID names.
    let invite = carol.api("getsipmessage", &["0", "3"]).await;
    assert_eq!(sip_header(invite.as_str().unwrap(), "Call-ID"), Some(f[3]));
    carol.api("accept", &[]).await;
    bob.call_state("callConnected", 10).await;

    let id1 = bob.api("linetocallid", &["1"]).await;
    let id2 = bob.api("linetocallid", &["2"]).await;
    assert_ne!(id1, id2);
    for (line, id, peer) in [("1", &id1, "alice"), ("2", &id2, "carol")] {
        bob.api("setline", &[line]).await;
        let ok = bob.api("getsipmessage", &["0", "4"]).await;
        let ok = ok.as_str().unwrap();
        assert!(ok.starts_with("SIP/2.0 200"), "line {line}: {ok}");
        assert_eq!(sip_header(ok, "Call-ID"), id.as_str(), "line {line}: {ok}");
        let sent = bob.api("getsipmessage", &["1", "3"]).await;
        let sent = sent.as_str().unwrap();
        assert!(
            sent.starts_with(&format!("INVITE sip:{peer}@127.0.0.1:")),
            "line {line}: {sent}"
        );
        let to = bob.api("getsipheader", &["To"]).await;
        assert!(
            to.as_str().unwrap().contains(&format!("sip:{peer}@")),
            "line {line}: {to}"
        );
        let d = bob.api("getlinedetails", &[line]).await;
        let d = d.as_str().unwrap().to_string();
        let f: Vec<&str> = d.split(',').collect();
        assert_eq!(
            (f[1], f[2], f[3], f[4], f[6]),
            (line, "InCall", id.as_str().unwrap(), peer, "1"),
            "{d}"
        );
    }
    // setline(-2): every line is searched, so the newest 200 OK is carol's.
    bob.api("setline", &["-2"]).await;
    let ok = bob.api("getsipmessage", &["0", "4"]).await;
    assert_eq!(sip_header(ok.as_str().unwrap(), "Call-ID"), id2.as_str());
    bob.api("hangup", &["-2"]).await;
    alice.call_state("callDisconnected", 10).await;
    carol.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob, &carol]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getlastcalldetails_repeats_the_cdr_of_the_call_that_ended() {
    let (alice, uri) = callee("alice", &[]).await;
    let mut bob = TestPhone::new(&quiet("bob")).await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    alice.api("hangup", &[]).await;
    let cdr = bob.notification(|t| t.starts_with("CDR,"), 10).await;
    let c: Vec<&str> = cdr.splitn(10, ',').collect();
    assert_eq!(c.len(), 10, "{cdr}");
    let d = bob.api("getlastcalldetails", &[]).await;
    let d = d.as_str().unwrap().to_string();
    let kv: std::collections::HashMap<&str, &str> =
        d.split(',').filter_map(|p| p.split_once('=')).collect();
    // CDR,line,peername,caller,called,peeraddress,connecttime,duration,discparty,reason
    for (key, i) in [
        ("line", 1),
        ("peer", 2),
        ("caller", 3),
        ("called", 4),
        ("connecttime", 6),
        ("duration", 7),
        ("discparty", 8),
        ("reason", 9),
    ] {
        assert_eq!(kv.get(key).copied(), Some(c[i]), "{key}: {d} vs {cdr}");
    }
    assert_eq!(kv.get("direction").copied(), Some("1"), "{d}");
    assert_eq!(c[8], "2", "the peer hung up: {cdr}");
    assert!(c[7].parse::<u64>().unwrap() >= 500, "duration in ms: {cdr}");
    stop(&[&alice, &bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_notify_gives_the_camel_case_notification_and_the_spaced_callback_name() {
    // A bare UDP presence server for dave (RFC 3856): 200 to the SUBSCRIBE, then a NOTIFY
    // whose PIDF says open + do-not-disturb with a note.
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut bob = TestPhone::new(&quiet("bob")).await;
    bob.api("checkpresence", &[&format!("sip:dave@{addr}")])
        .await;
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
        .await
        .expect("a SUBSCRIBE")
        .unwrap();
    let sub = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(sub.starts_with("SUBSCRIBE sip:dave@"), "{sub}");
    assert_eq!(sip_header(&sub, "Event"), Some("presence"), "{sub}");
    let h = |name: &str| sip_header(&sub, name).unwrap_or("").to_string();
    let contact = h("Contact");
    let target = contact
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(u, _)| u.to_string())
        .unwrap_or_else(|| format!("sip:bob@{from}"));
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=pres1\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:dave@{addr}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    );
    server.send_to(ok.as_bytes(), from).await.unwrap();
    let pidf = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" \
         entity=\"sip:dave@{addr}\"><tuple id=\"t1\"><status><basic>open</basic></status></tuple>\
         <dm:person xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" id=\"p1\">\
         <rpid:activities><rpid:dnd/></rpid:activities><dm:note>In a meeting</dm:note></dm:person></presence>"
    );
    let notify = format!(
        "NOTIFY {target} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK-pres-n1;rport\r\n\
         Max-Forwards: 70\r\nFrom: {};tag=pres1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 NOTIFY\r\n\
         Contact: <sip:dave@{addr}>\r\nEvent: presence\r\n\
         Subscription-State: active;expires=3600\r\nContent-Type: application/pidf+xml\r\n\
         Content-Length: {}\r\n\r\n{pidf}",
        h("To"),
        h("From"),
        h("Call-ID"),
        pidf.len()
    );
    server.send_to(notify.as_bytes(), from).await.unwrap();
    let args = bob.callback("onPresenceStateChange", 10).await;
    assert_eq!(args[0], Value::from("dave"), "{args:?}");
    assert_eq!(args[1], Value::from("Do Not Disturb"), "{args:?}");
    bob.notification(|t| t == "PRESENCE,dave,DoNotDisturb,In a meeting,,", 5)
        .await;
    // The NOTIFY was answered 200 (RFC 6665 §4.1.3).
    let answered = async {
        loop {
            let (n, _) = server.recv_from(&mut buf).await.unwrap();
            let m = String::from_utf8_lossy(&buf[..n]).to_string();
            if m.starts_with("SIP/2.0 ") && sip_header(&m, "CSeq") == Some("1 NOTIFY") {
                return m;
            }
        }
    };
    let m = tokio::time::timeout(Duration::from_secs(5), answered)
        .await
        .expect("an answer to the NOTIFY");
    assert!(m.starts_with("SIP/2.0 200"), "{m}");
    stop(&[&bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_call_to_the_same_peer_is_refused_with_the_documented_error_text() {
    let (mut alice, uri) = callee("alice", &[]).await;
    // disablesamecall keeps its default (1): a second call to the same peer is refused.
    let mut bob = TestPhone::new(&[
        ("username", "bob".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    bob.api("call", &[&uri]).await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    let e = err(&bob, "call", &[&uri]).await;
    assert_eq!(e, "Already in call with alice");
    // notifications.md §25: `ERROR, Already in call with xxx` (sent without the space).
    bob.notification(|t| t == "EVENT,ERROR,Already in call with alice", 5)
        .await;
    let shown = bob.callback("onDisplay", 5).await;
    assert_eq!(shown[0], Value::from("Already in call with alice"));
    // No second INVITE reached alice: her line 2 is idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = alice.api("getlinedetails", &["2"]).await;
    assert!(
        d.as_str().unwrap().starts_with("LINEDETAILS,2,Ready,"),
        "{d}"
    );
    bob.api("hangup", &[]).await;
    alice.call_state("callDisconnected", 10).await;
    stop(&[&alice, &bob]).await;
}
