//! Unit tests against a small HTTP/1.1 server on a loopback socket.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use super::*;
use crate::notify::DiscParty;

/// One request as the test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves every connection with `status` and `answer`, sending what it received on a channel.
async fn server(status: u16, answer: &'static str) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let target = first.next().unwrap_or("").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end..].to_vec();
                while body.len() < len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let _ = tx.send(Seen {
                    method,
                    target,
                    headers,
                    body,
                });
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (base, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no request reached the test server")
        .unwrap()
}

async fn next_note(ev: &mut broadcast::Receiver<Event>, prefix: &str) -> String {
    let wait = async {
        loop {
            if let Ok(Event::Notification(t)) = ev.recv().await {
                if t.starts_with(prefix) {
                    return t;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .unwrap_or_else(|_| panic!("no {prefix} notification"))
}

/// A port nothing listens on, held for as long as the returned socket lives: it is
/// bound but never listening, so connections to it are refused, and no other test's
/// listener can be given the same port meanwhile (binding and dropping a listener
/// left that race open).
fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

fn setup(pairs: &[(&str, &str)]) -> (Integrations, ParamStore, broadcast::Receiver<Event>) {
    let (tx, rx) = broadcast::channel(256);
    let mut p = ParamStore::new();
    for (k, v) in pairs {
        p.set(k, v).unwrap();
    }
    (Integrations::new(tx), p, rx)
}

const CALL: CallInfo<'static> = CallInfo {
    line: 1,
    direction: 1,
    peer: "1002",
    peer_display: "Bob Smith",
    callid: "abc@host",
};

#[test]
fn every_action_event_names_a_catalog_parameter() {
    let reg = crate::params::Registry::global();
    for ev in ActionEvent::ALL {
        assert!(reg.lookup(ev.param()).is_some(), "{}", ev.param());
    }
    assert_eq!(
        ActionEvent::for_call("callRinging", 2),
        Some(ActionEvent::InCallRinging)
    );
    assert_eq!(ActionEvent::for_call("callSomething", 1), None);
}

#[test]
fn base_tokens_carry_identity_and_md5_forms() {
    let (i, p, _) = setup(&[("username", "1001"), ("password", "secret")]);
    let t = i.base_tokens(&p, "onStart");
    assert_eq!(t.get("USERNAME"), "1001");
    assert_eq!(t.get("STATUS"), "onStart");
    assert_eq!(t.get("MD5SIMPLE"), tokens::md5_hex("1001:secret"));
    let salt = t.get("MD5SALT");
    assert_eq!(
        t.get("MD5NORMAL"),
        tokens::md5_hex(&format!("1001:secret:{salt}"))
    );
    assert_eq!(t.get("DEVICEID").len(), 32);
}

#[tokio::test]
async fn call_setup_fires_its_url_with_the_call_tokens_and_peer_details() {
    let (base, mut rx) = server(200, "Bob Smith, ACME Ltd\r\nVIP").await;
    let (i, p, mut ev) = setup(&[
        ("username", "1001"),
        (
            "scurl_onoutcallsetup",
            &format!("{base}/setup?u=USERNAME&c=CALLEDNUMBER&d=DIRECTION&s=STATUS&p=PEERDETAILS&id=CALLID"),
        ),
        ("scurl_displaypeerdetails", &format!("*{base}/peer?n=PEERNUM")),
    ]);
    i.on_call_state(&p, "callSetup", &CALL);
    let mut targets = [next(&mut rx).await.target, next(&mut rx).await.target];
    targets.sort();
    assert_eq!(targets[0], "/peer?n=1002");
    assert_eq!(
        targets[1],
        "/setup?u=1001&c=1002&d=1&s=callSetup&p=Bob%20Smith&id=abc%40host"
    );
    assert_eq!(
        next_note(&mut ev, "POPUP,").await,
        "POPUP,Bob Smith, ACME Ltd  VIP"
    );
}

#[tokio::test]
async fn call_end_carries_the_cdr() {
    let (base, mut rx) = server(200, "").await;
    let (i, p, _) = setup(&[
        ("username", "1001"),
        (
            "scurl_onincalldisconnected",
            &format!("{base}/end?from=CALLER&to=CALLED&dur=DURATION&ms=DURATIONMS&why=REASON&who=DISCPARTY"),
        ),
    ]);
    let cdr = Cdr {
        line: 2,
        peername: "1003".into(),
        peerdisplayname: String::new(),
        caller: "1003".into(),
        called: "1001".into(),
        peeraddress: "127.0.0.1".into(),
        connecttime_ms: 900,
        duration_ms: 4321,
        direction: 2,
        discparty: DiscParty::Peer,
        reason: "Bye received".into(),
    };
    i.on_call_end(&p, &cdr, "x");
    assert_eq!(
        next(&mut rx).await.target,
        "/end?from=1003&to=1001&dur=4&ms=4321&why=Bye%20received&who=2"
    );
}

#[tokio::test]
async fn chat_urls_carry_the_text() {
    let (base, mut rx) = server(200, "").await;
    let (i, p, _) = setup(&[
        ("scurl_oninchat", &format!("{base}/in?t=TEXT&from=PEERNUM")),
        ("scurl_onoutchat", &format!("{base}/out?t=TEXT&to=PEERNUM")),
    ]);
    i.on_chat(&p, true, "1002", "hi & bye");
    assert_eq!(next(&mut rx).await.target, "/in?t=hi%20%26%20bye&from=1002");
    i.on_chat(&p, false, "1003", "ok");
    assert_eq!(next(&mut rx).await.target, "/out?t=ok&to=1003");
}

#[tokio::test]
async fn provisioning_returns_the_answer_pairs() {
    let (base, mut rx) = server(200, "displayname=Prov User, loglevel=5\n").await;
    let (i, p, _) = setup(&[
        ("username", "1001"),
        ("scurl_setparameters", &format!("{base}/prov?u=USERNAME")),
    ]);
    let pairs = i.provision(&p).await.unwrap();
    assert_eq!(
        pairs,
        vec![
            ("displayname".to_string(), "Prov User".to_string()),
            ("loglevel".to_string(), "5".to_string())
        ]
    );
    assert_eq!(next(&mut rx).await.target, "/prov?u=1001");
    // Not configured: nothing asked, nothing returned.
    let (i, p, _) = setup(&[]);
    assert!(i.provision(&p).await.unwrap().is_empty());
}

#[tokio::test]
async fn dead_server_and_errors_are_reported_without_panic() {
    let (_held, port) = closed_port();
    let (i, p, _) = setup(&[(
        "scurl_setparameters",
        &format!("http://127.0.0.1:{port}/x?pw=PASSWORD"),
    )]);
    let e = i.provision(&p).await.unwrap_err();
    assert!(matches!(e, IntegrationError::Transport { .. }), "{e}");

    let (base, _rx) = server(500, "").await;
    let (i, p, _) = setup(&[("scurl_setparameters", &format!("{base}/p"))]);
    let e = i.provision(&p).await.unwrap_err();
    assert!(
        matches!(e, IntegrationError::Status { status: 500, .. }),
        "{e}"
    );

    let (i, p, mut ev) = setup(&[
        ("password", "topsecret"),
        (
            "scurl_onstart",
            &format!("http://127.0.0.1:{port}/s?pw=PASSWORD"),
        ),
        ("scurl_onincallringing", "not a url PASSWORD"),
        ("scurl_onoutchat", "ftp://h/x"),
    ]);
    i.on_start(&p);
    let warn = next_note(&mut ev, "LOG,").await;
    assert!(warn.contains("scurl_onstart"), "{warn}");
    assert!(
        !warn.contains("topsecret") && !warn.contains("127.0.0.1"),
        "{warn}"
    );
    i.on_call_state(
        &p,
        "callRinging",
        &CallInfo {
            direction: 2,
            ..CALL
        },
    );
    let warn = next_note(&mut ev, "LOG,").await;
    assert!(
        warn.contains("not a valid URL") && !warn.contains("topsecret"),
        "{warn}"
    );
    i.on_chat(&p, false, "1002", "x");
    assert!(next_note(&mut ev, "LOG,")
        .await
        .contains("unsupported URL scheme"));
}

#[test]
fn no_runtime_is_an_error_not_a_panic() {
    let (i, p, mut ev) = setup(&[("scurl_onstart", "http://127.0.0.1:9/")]);
    i.on_start(&p);
    match ev.try_recv() {
        Ok(Event::Notification(t)) => assert!(t.contains("no async runtime"), "{t}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sms_api_substitutes_and_reports() {
    let (base, mut rx) = server(200, "OK").await;
    let (i, p, mut ev) = setup(&[
        ("username", "1001"),
        (
            "sms",
            &format!("*{base}/api/function=sms&anum=MYNUMBER&bnum=TARGETMOBILE&txt=TEXT"),
        ),
    ]);
    assert!(Integrations::sms_is_http(&p));
    i.send_sms(&p, "+36301234567", "Hello world", "").unwrap();
    assert_eq!(
        next(&mut rx).await.target,
        "/api/function=sms&anum=1001&bnum=%2B36301234567&txt=Hello%20world"
    );
    assert_eq!(
        next_note(&mut ev, "CHATREPORT,").await,
        "CHATREPORT,0,+36301234567,1,"
    );
    assert_eq!(
        next_note(&mut ev, "CHATREPORT,").await,
        "CHATREPORT,0,+36301234567,2,"
    );

    let (_held, port) = closed_port();
    let (i, p, mut ev) = setup(&[("sms", &format!("*http://127.0.0.1:{port}/x"))]);
    i.send_sms(&p, "123", "x", "").unwrap();
    next_note(&mut ev, "CHATREPORT,0,123,1").await;
    assert!(next_note(&mut ev, "CHATREPORT,")
        .await
        .starts_with("CHATREPORT,0,123,3,sms:"));
}

#[tokio::test]
async fn recordings_upload_by_put_or_multipart_post() {
    let (base, mut rx) = server(201, "").await;
    let dir = std::env::temp_dir().join(format!("wp-int-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rec.wav");
    std::fs::write(&file, b"RIFFfakewav").unwrap();
    let (i, _p, mut ev) = setup(&[]);
    let values = [
        ("CALLID", "c1@h".to_string()),
        ("USER", "1001".to_string()),
        ("CALLER", "1001".to_string()),
        ("CALLED", "Bob Smith".to_string()),
        ("SERVER", "127.0.0.1".to_string()),
        ("COUNTER", "7".to_string()),
    ];
    i.plan_upload(&format!("{base}/rec/CALLED_COUNTER.wav"), 1, &file, &values);
    i.recording_saved(&file).unwrap();
    let put = next(&mut rx).await;
    assert_eq!(put.method, "PUT");
    assert_eq!(put.target, "/rec/Bob%20Smith_7.wav");
    assert_eq!(put.body, b"RIFFfakewav");
    assert_eq!(put.header("x-type"), Some("fileupload"));
    assert_eq!(put.header("x-called"), Some("Bob Smith"));
    assert_eq!(put.header("x-callid"), Some("c1@h"));
    assert_eq!(put.header("content-type"), Some("audio/x-wav"));
    assert_eq!(
        next_note(&mut ev, "VREC,").await,
        format!("VREC,1,2,3,{base}/rec/Bob%20Smith_7.wav,")
    );
    assert_eq!(
        next_note(&mut ev, "VREC,").await,
        format!("VREC,-1,3,3,{base}/rec/Bob%20Smith_7.wav,")
    );
    // Saved again without a plan: nothing is sent.
    i.recording_saved(&file).unwrap();

    i.plan_upload(
        &format!("{base}/up.php?filename=v_CALLER.wav"),
        2,
        &file,
        &values,
    );
    i.recording_saved(&file).unwrap();
    let post = next(&mut rx).await;
    assert_eq!(post.method, "POST");
    assert_eq!(post.header("x-filename"), Some("v_1001.wav"));
    let body = String::from_utf8_lossy(&post.body);
    assert!(post
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    assert!(body.contains("name=\"file\"; filename=\"v_1001.wav\"\r\nContent-Type: audio/x-wav\r\n\r\nRIFFfakewav\r\n"), "{body}");

    // Upload to a dead server: stage 4 with a reason.
    let (_held, port) = closed_port();
    let dead = format!("http://127.0.0.1:{port}/r.wav");
    i.plan_upload(&dead, 3, &file, &values);
    i.recording_saved(&file).unwrap();
    loop {
        let n = next_note(&mut ev, "VREC,-1,").await;
        if n.starts_with("VREC,-1,4,3,") {
            assert!(n.contains("voicerecupload"), "{n}");
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn log_upload_posts_the_form() {
    let (base, mut rx) = server(200, "thanks").await;
    let (i, p, mut ev) = setup(&[
        ("logform_action", &format!("{base}/logs?u=USERNAME")),
        ("logform_filename", "user1001.txt"),
        ("username", "1001"),
    ]);
    i.upload_log(&p, "line one\nline two\n".into()).unwrap();
    let seen = next(&mut rx).await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/logs?u=1001");
    let body = String::from_utf8_lossy(&seen.body);
    assert!(
        body.contains("name=\"filename\"\r\n\r\nuser1001.txt\r\n"),
        "{body}"
    );
    assert!(body.contains("filename=\"user1001.txt\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\nline two\n"), "{body}");
    assert_eq!(next_note(&mut ev, "EVENT,").await, "EVENT,EVENT,Log sent");

    let (i, p, _) = setup(&[]);
    assert!(matches!(
        i.upload_log(&p, String::new()),
        Err(IntegrationError::NotConfigured("logform_action"))
    ));
}

#[tokio::test]
async fn links_expand_and_api_links_are_asked() {
    let (base, mut rx) = server(200, "12.50 EUR").await;
    let (i, p, _) = setup(&[
        ("username", "1001"),
        ("creditrequest", &format!("*{base}/balance?user=USERNAME")),
        (
            "ratingrequest",
            &format!("{base}/rating?destination=CALLEDNUMBER"),
        ),
        ("homepage", "https://example.org/home?u=USERNAME&t=TEXT"),
        ("callback", "https://example.org/cb?u=USERNAME"),
        ("recharge", &format!("*{base}/recharge?u=USERNAME")),
    ]);
    let home = i.link(&p, "homepage", None, "a b").unwrap();
    assert_eq!(
        home,
        Link {
            api: false,
            target: "https://example.org/home?u=1001&t=a%20b".into()
        }
    );
    assert!(!i.link(&p, "callback", None, "").unwrap().api);
    assert!(i.link(&p, "recharge", None, "").unwrap().api);
    let rating = i.link(&p, "ratingrequest", Some(&CALL), "").unwrap();
    assert!(rating.api, "ratingrequest is always an API request");
    assert_eq!(rating.target, format!("{base}/rating?destination=1002"));
    assert_eq!(
        i.link_request(&p, "creditrequest", None).await.unwrap(),
        "12.50 EUR"
    );
    assert_eq!(next(&mut rx).await.target, "/balance?user=1001");
    assert!(i.link_request(&p, "homepage", None).await.is_err());
    assert!(matches!(
        i.link(&p, "helpurl", None, ""),
        Err(IntegrationError::NotConfigured("helpurl"))
    ));
}

#[tokio::test]
async fn newuser_api_request_carries_the_typed_account_and_answers_as_newuser() {
    let (base, mut rx) = server(200, "Account alice created").await;
    let (i, p, mut ev) = setup(&[
        ("username", "old"),
        (
            "newuser",
            &format!("*{base}/signup?u=USERNAME&p=PASSWORD&h=MD5SIMPLE&pin=PINCODE"),
        ),
        (
            "recharge",
            &format!("*{base}/recharge?pin=PINCODE&u=USERNAME"),
        ),
        ("p2p", "https://example.org/p2p"),
    ]);
    let typed = [
        ("USERNAME".to_string(), "alice".to_string()),
        ("password".to_string(), "s3 cret&x".to_string()),
    ];
    i.request_link(&p, "newuser", &typed).unwrap();
    let seen = next(&mut rx).await;
    let md5 = tokens::md5_hex("alice:s3 cret&x");
    assert_eq!(
        seen.target,
        format!("/signup?u=alice&p=s3%20cret%26x&h={md5}&pin=")
    );
    assert_eq!(
        next_note(&mut ev, "NEWUSER,").await,
        "NEWUSER,Account alice created"
    );
    // Other API links answer as ANSWER; the user's own name applies when none is typed.
    i.request_link(&p, "recharge", &[("PINCODE".into(), "1234".into())])
        .unwrap();
    assert_eq!(next(&mut rx).await.target, "/recharge?pin=1234&u=old");
    assert!(next_note(&mut ev, "ANSWER,")
        .await
        .starts_with("ANSWER,Account"));
    // Refusals: a plain link, an unknown name, an unknown token, an unset parameter.
    assert!(matches!(
        i.request_link(&p, "p2p", &[]),
        Err(IntegrationError::NotApi("p2p"))
    ));
    assert!(matches!(
        i.request_link(&p, "homepage", &[]),
        Err(IntegrationError::UnknownLink(_))
    ));
    assert!(matches!(
        i.request_link(&p, "newuser", &[("SERVER".into(), "evil".into())]),
        Err(IntegrationError::UnknownToken(_))
    ));
    assert!(matches!(
        i.request_link(&p, "callback", &[]),
        Err(IntegrationError::NotConfigured("callback"))
    ));
}

/// A one-session FTP server (RFC 959 subset): reports the commands and the stored bytes.
async fn ftp_server(epsv: bool) -> (u16, mpsc::UnboundedReceiver<(Vec<String>, Vec<u8>)>) {
    use tokio::io::AsyncBufReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = tokio::io::BufReader::new(r);
        w.write_all(b"220-welcome\r\n220 ready\r\n").await.unwrap();
        let mut cmds = Vec::new();
        let mut data_l: Option<TcpListener> = None;
        let mut stored = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            cmds.push(line.clone());
            let verb = line.split(' ').next().unwrap_or("").to_string();
            let answer = match verb.as_str() {
                "USER" => "331 password please".to_string(),
                "PASS" => "230 logged in".to_string(),
                "TYPE" => "200 binary".to_string(),
                "EPSV" if !epsv => "500 unknown".to_string(),
                "EPSV" | "PASV" => {
                    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let p = l.local_addr().unwrap().port();
                    data_l = Some(l);
                    if verb == "EPSV" {
                        format!("229 Extended Passive Mode (|||{p}|)")
                    } else {
                        format!(
                            "227 Entering Passive Mode (127,0,0,1,{},{})",
                            p / 256,
                            p % 256
                        )
                    }
                }
                "STOR" => {
                    w.write_all(b"150 send it\r\n").await.unwrap();
                    let (mut d, _) = data_l.take().unwrap().accept().await.unwrap();
                    d.read_to_end(&mut stored).await.unwrap();
                    "226 stored".to_string()
                }
                "QUIT" => {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => "502 not here".to_string(),
            };
            w.write_all(format!("{answer}\r\n").as_bytes())
                .await
                .unwrap();
        }
        let _ = tx.send((cmds, stored));
    });
    (port, rx)
}

#[tokio::test]
async fn recordings_upload_by_ftp_passive_mode() {
    let dir = std::env::temp_dir().join(format!("wp-ftp-{}", random_hex(4)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rec.wav");
    std::fs::write(&file, b"RIFFftpwav").unwrap();
    let values = [
        ("CALLER", "1001".to_string()),
        ("CALLED", "1002".to_string()),
    ];
    for epsv in [true, false] {
        let (port, mut rx) = ftp_server(epsv).await;
        let (i, _p, mut ev) = setup(&[]);
        i.plan_upload(
            &format!("ftp://user01:pa%3Ass@127.0.0.1:{port}/rec/voice_CALLER_CALLED.wav"),
            1,
            &file,
            &values,
        );
        i.recording_saved(&file).unwrap();
        let (cmds, stored) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, b"RIFFftpwav");
        assert_eq!(cmds[0], "USER user01");
        assert_eq!(cmds[1], "PASS pa:ss");
        assert!(
            cmds.contains(&"STOR rec/voice_1001_1002.wav".to_string()),
            "{cmds:?}"
        );
        assert_eq!(cmds.contains(&"PASV".to_string()), !epsv, "{cmds:?}");
        let shown = format!("ftp://127.0.0.1:{port}/rec/voice_1001_1002.wav");
        assert_eq!(
            next_note(&mut ev, "VREC,").await,
            format!("VREC,1,2,2,{shown},")
        );
        assert_eq!(
            next_note(&mut ev, "VREC,").await,
            format!("VREC,-1,3,2,{shown},")
        );
    }
    // Nothing listening: stage 4 with the reason, no panic.
    let (i, _p, mut ev) = setup(&[]);
    let (_held, port) = closed_port();
    i.plan_upload(&format!("ftp://127.0.0.1:{port}/x.wav"), 1, &file, &values);
    i.recording_saved(&file).unwrap();
    next_note(&mut ev, "VREC,1,2,2,").await;
    assert!(next_note(&mut ev, "VREC,-1,4,2,")
        .await
        .contains("FTP connect"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn upload_time_grows_with_the_file() {
    assert_eq!(upload_timeout(0), TOTAL_TIMEOUT);
    assert_eq!(
        upload_timeout(64 * 1024 * 60),
        TOTAL_TIMEOUT + Duration::from_secs(60)
    );
}
