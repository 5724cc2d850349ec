//! Digest authentication against a scripted server on a real UDP socket (RFC 3261 §22,
//! RFC 7616, RFC 8760): several challenges in one 401 (strongest algorithm wins), SHA-256,
//! `stale=true` (new nonce, not a failure), nonce reuse with an incremented nonce count,
//! a precomputed MD5 HA1 instead of the password, and a 407 with `qop=auth-int` on an
//! INVITE (body hashed). The server checks every response with its own hash code.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{
    AccountConfig, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const REALM: &str = "digest.test";
const USER: &str = "alice";
const PASSWORD: &str = "pa55word";
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

fn hash(alg: &str, data: &[u8]) -> String {
    let bytes: Vec<u8> = if alg.eq_ignore_ascii_case("SHA-256") {
        Sha256::digest(data).to_vec()
    } else {
        Md5::digest(data).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `k=v` / `k="v"` pairs of a `Digest ...` credentials value.
fn params(v: &str) -> HashMap<String, String> {
    let v = v.trim().strip_prefix("Digest").unwrap_or(v);
    let mut out = HashMap::new();
    let mut rest = v.trim();
    while !rest.is_empty() {
        let Some((k, r)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (val, r) = if let Some(q) = r.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (&q[..end], &q[end + 1..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            (&r[..end], &r[end..])
        };
        out.insert(k, val.to_string());
        rest = r.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The server's own check of a digest answer (RFC 7616 §3.4.1), `body` for auth-int.
fn valid(cred: &str, method: &str, password: &str, body: &[u8]) -> bool {
    let p = params(cred);
    let alg = p.get("algorithm").cloned().unwrap_or("MD5".into());
    let ha1 = hash(
        &alg,
        format!("{}:{}:{password}", p["username"], p["realm"]).as_bytes(),
    );
    let qop = p.get("qop").cloned().unwrap_or_default();
    let a2 = if qop == "auth-int" {
        format!("{method}:{}:{}", p["uri"], hash(&alg, body))
    } else {
        format!("{method}:{}", p["uri"])
    };
    let ha2 = hash(&alg, a2.as_bytes());
    let want = hash(
        &alg,
        format!(
            "{ha1}:{}:{}:{}:{qop}:{ha2}",
            p["nonce"], p["nc"], p["cnonce"]
        )
        .as_bytes(),
    );
    p.get("response") == Some(&want)
}

/// What the scripted server does with each request, in order of arrival.
#[derive(Clone, Debug)]
enum Step {
    /// 401/407 with these challenge header values.
    Challenge { code: u16, challenges: Vec<String> },
    /// Check the credentials (header, nonce, algorithm): 200 (REGISTER) / 486 (INVITE)
    /// when valid, else 403.
    Accept {
        nonce: &'static str,
        algorithm: &'static str,
        proxy: bool,
    },
}

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    cseq: String,
    auth: Option<String>,
    ok: Option<bool>,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl Server {
    async fn start(script: Vec<Step>) -> Server {
        let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut steps = script.into_iter();
            let mut buf = vec![0u8; 16384];
            loop {
                let Ok((n, src)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let method = text.split(' ').next().unwrap_or("").to_string();
                if method == "ACK" || method.starts_with("SIP/") || !text.contains("\r\n\r\n") {
                    continue;
                }
                let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
                let (auth, proxy_auth) = (
                    header(&text, "Authorization").map(String::from),
                    header(&text, "Proxy-Authorization").map(String::from),
                );
                let base = format!(
                    "Via: {};received={};rport={}\r\nFrom: {}\r\nTo: {};tag=srv\r\nCall-ID: {}\r\nCSeq: {}\r\n",
                    header(&text, "Via").unwrap_or("").replace(";rport", ""),
                    src.ip(),
                    src.port(),
                    header(&text, "From").unwrap_or(""),
                    header(&text, "To").unwrap_or(""),
                    header(&text, "Call-ID").unwrap_or(""),
                    header(&text, "CSeq").unwrap_or(""),
                );
                let step = steps.next();
                let mut ok = None;
                let reply = match step {
                    Some(Step::Challenge { code, challenges }) => {
                        let (reason, name) = if code == 407 {
                            ("Proxy Authentication Required", "Proxy-Authenticate")
                        } else {
                            ("Unauthorized", "WWW-Authenticate")
                        };
                        let hs: String = challenges
                            .iter()
                            .map(|c| format!("{name}: {c}\r\n"))
                            .collect();
                        format!("SIP/2.0 {code} {reason}\r\n{base}{hs}Content-Length: 0\r\n\r\n")
                    }
                    Some(Step::Accept {
                        nonce,
                        algorithm,
                        proxy,
                    }) => {
                        let cred = if proxy { &proxy_auth } else { &auth };
                        let good = cred.as_deref().is_some_and(|c| {
                            let p = params(c);
                            p.get("nonce").map(String::as_str) == Some(nonce)
                                && p.get("algorithm").map(String::as_str) == Some(algorithm)
                                && p.get("realm").map(String::as_str) == Some(REALM)
                                && valid(c, &method, PASSWORD, body.as_bytes())
                        });
                        ok = Some(good);
                        match (good, method.as_str()) {
                            (false, _) => format!("SIP/2.0 403 Forbidden\r\n{base}Content-Length: 0\r\n\r\n"),
                            (true, "INVITE") => format!("SIP/2.0 486 Busy Here\r\n{base}Content-Length: 0\r\n\r\n"),
                            (true, _) => format!(
                                "SIP/2.0 200 OK\r\n{base}Contact: {};expires={}\r\nContent-Length: 0\r\n\r\n",
                                header(&text, "Contact").unwrap_or(""),
                                header(&text, "Expires").unwrap_or("300"),
                            ),
                        }
                    }
                    None => format!("SIP/2.0 500 Script Over\r\n{base}Content-Length: 0\r\n\r\n"),
                };
                log.lock().unwrap().push(Seen {
                    method,
                    cseq: header(&text, "CSeq").unwrap_or("").to_string(),
                    auth: auth.or(proxy_auth),
                    ok,
                });
                let _ = sock.send_to(reply.as_bytes(), src).await;
            }
        });
        Server { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn ua(server: &Server, password: &str) -> (SipUa, UnboundedReceiver<SipEvent>) {
    let (ua, rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-digest-test".into(),
    })
    .await
    .unwrap();
    ua.set_account(AccountConfig {
        server: Some(server.addr.to_string()),
        username: USER.into(),
        password: password.into(),
        register_expires: 300,
        ..Default::default()
    });
    (ua, rx)
}

async fn registration(rx: &mut UnboundedReceiver<SipEvent>) -> RegistrationState {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .expect("channel open");
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => return s,
            _ => continue,
        }
    }
}

fn challenge(alg: &str, nonce: &str, extra: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={alg}{extra}")
}

#[tokio::test]
async fn several_challenges_answered_with_the_strongest_sha256_then_nonce_reused() {
    let server = Server::start(vec![
        Step::Challenge {
            code: 401,
            challenges: vec![
                challenge("MD5", "md5nonce", ""),
                challenge("SHA-256", "shanonce", ", opaque=\"op1\""),
            ],
        },
        Step::Accept {
            nonce: "shanonce",
            algorithm: "SHA-256",
            proxy: false,
        },
        // The unregister comes with the cached nonce at once: no second challenge.
        Step::Accept {
            nonce: "shanonce",
            algorithm: "SHA-256",
            proxy: false,
        },
    ])
    .await;
    let (ua, mut rx) = ua(&server, PASSWORD).await;
    ua.register();
    assert_eq!(
        registration(&mut rx).await,
        RegistrationState::Registered { expires: 300 }
    );
    ua.unregister();
    assert_eq!(registration(&mut rx).await, RegistrationState::Unregistered);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(seen[0].auth, None);
    assert_eq!(seen[1].ok, Some(true), "{seen:#?}");
    assert_eq!(seen[2].ok, Some(true), "{seen:#?}");
    let first = params(seen[1].auth.as_deref().unwrap());
    let reused = params(seen[2].auth.as_deref().unwrap());
    assert_eq!(first["opaque"], "op1");
    assert_eq!(first["nc"], "00000001");
    assert_eq!(reused["nc"], "00000002");
    assert_eq!(reused["cnonce"], first["cnonce"]);
    ua.shutdown().await;
}

#[tokio::test]
async fn stale_nonce_is_answered_again_without_failing() {
    let server = Server::start(vec![
        Step::Challenge {
            code: 401,
            challenges: vec![challenge("MD5", "old", "")],
        },
        // Credentials fine, nonce expired (RFC 7616 §3.3 stale=true).
        Step::Challenge {
            code: 401,
            challenges: vec![challenge("MD5", "fresh", ", stale=true")],
        },
        Step::Accept {
            nonce: "fresh",
            algorithm: "MD5",
            proxy: false,
        },
    ])
    .await;
    let (ua, mut rx) = ua(&server, PASSWORD).await;
    ua.register();
    assert_eq!(
        registration(&mut rx).await,
        RegistrationState::Registered { expires: 300 }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    // CSeq grows with every authenticated retry (RFC 3261 §22.2).
    let cseqs: Vec<u32> = seen
        .iter()
        .map(|s| s.cseq.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(cseqs.windows(2).all(|w| w[1] > w[0]), "{cseqs:?}");
    ua.shutdown().await;
}

#[tokio::test]
async fn repeated_challenge_without_stale_fails_with_401() {
    let server = Server::start(vec![
        Step::Challenge {
            code: 401,
            challenges: vec![challenge("MD5", "n1", "")],
        },
        Step::Challenge {
            code: 401,
            challenges: vec![challenge("MD5", "n2", "")],
        },
    ])
    .await;
    let (ua, mut rx) = ua(&server, "wrong").await;
    ua.register();
    match registration(&mut rx).await {
        RegistrationState::Failed { code: 401, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(server.seen().len(), 2);
    ua.shutdown().await;
}

#[tokio::test]
async fn precomputed_md5_ha1_registers_without_the_password() {
    let server = Server::start(vec![
        Step::Challenge {
            code: 401,
            challenges: vec![
                challenge("SHA-256", "shanonce", ""),
                challenge("MD5", "md5nonce", ""),
            ],
        },
        // Only MD5 can be answered from an MD5 HA1.
        Step::Accept {
            nonce: "md5nonce",
            algorithm: "MD5",
            proxy: false,
        },
    ])
    .await;
    let (ua, mut rx) = ua(&server, "").await;
    ua.set_digest_ha1(Some(hash(
        "MD5",
        format!("{USER}:{REALM}:{PASSWORD}").as_bytes(),
    )));
    ua.register();
    assert_eq!(
        registration(&mut rx).await,
        RegistrationState::Registered { expires: 300 }
    );
    ua.shutdown().await;
}

#[tokio::test]
async fn invite_407_with_sha256_auth_int_covers_the_sdp_body() {
    let qop_int =
        format!("Digest realm=\"{REALM}\", nonce=\"px\", qop=\"auth-int\", algorithm=SHA-256");
    let server = Server::start(vec![
        Step::Challenge {
            code: 407,
            challenges: vec![qop_int],
        },
        Step::Accept {
            nonce: "px",
            algorithm: "SHA-256",
            proxy: true,
        },
    ])
    .await;
    let (ua, mut rx) = ua(&server, PASSWORD).await;
    let call = ua.invite("1002", OFFER.to_string()).unwrap();
    let ended = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .expect("open");
        if let SipEvent::Ended { .. } = ev {
            break ev;
        }
    };
    // The server answers a valid Proxy-Authorization with 486.
    match ended {
        SipEvent::Ended {
            call: c,
            reason: EndReason::Rejected,
            code: Some(486),
            ..
        } => assert_eq!(c, call),
        other => panic!("{other:?} / {:#?}", server.seen()),
    }
    let seen = server.seen();
    let invites: Vec<&Seen> = seen.iter().filter(|s| s.method == "INVITE").collect();
    assert_eq!(invites.len(), 2, "{seen:#?}");
    let p = params(invites[1].auth.as_deref().unwrap());
    assert_eq!(p["qop"], "auth-int");
    assert_eq!(invites[1].ok, Some(true));
    ua.shutdown().await;
}
