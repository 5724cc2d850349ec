//! RFC 3263 server location for REGISTER and INVITE: a tiny DNS server of our own on 127.0.0.1
//! (answers SRV/A/AAAA from a table, hand-built RFC 1035 packets) and scripted registrars
//! on real UDP sockets. `_sip._udp.pbx.test` lists a failing registrar at priority 10 and a
//! working one at priority 20: the REGISTER goes to the first, fails over on 503 or on
//! silence, and registers at the second. INVITEs do the same, with SIPp's built-in `uas` as
//! the second (live) target.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use webphone_sip::{AccountConfig, RegistrationState, SipConfig, SipEvent, SipUa, Transport};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[derive(Clone)]
enum Rr {
    A(Ipv4Addr),
    Srv(u16, u16, u16, &'static str),
    /// order, preference, flags, services, replacement (RFC 3403 §4.1, no regexp).
    Naptr(u16, u16, &'static str, &'static str, &'static str),
}

fn name_bytes(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// Answer one query from `table` ((lower-case name, qtype) -> records); NXDOMAIN when the
/// name is unknown.
fn answer(q: &[u8], table: &HashMap<(String, u16), Vec<Rr>>, log: &Mutex<Vec<String>>) -> Vec<u8> {
    let mut pos = 12;
    let mut labels = Vec::new();
    while q[pos] != 0 {
        let n = q[pos] as usize;
        labels.push(String::from_utf8_lossy(&q[pos + 1..pos + 1 + n]).to_lowercase());
        pos += 1 + n;
    }
    let qend = pos + 5;
    let qtype = u16::from_be_bytes([q[pos + 1], q[pos + 2]]);
    let name = labels.join(".");
    log.lock().unwrap().push(format!("{name}/{qtype}"));
    let known = table.keys().any(|(n, _)| *n == name);
    let rrs = table
        .get(&(name.clone(), qtype))
        .cloned()
        .unwrap_or_default();
    let mut r = q[..qend].to_vec();
    r[2] = 0x81;
    r[3] = if known { 0x80 } else { 0x83 };
    r[6..8].copy_from_slice(&(rrs.len() as u16).to_be_bytes());
    r[8..12].fill(0);
    for rr in rrs {
        r.extend_from_slice(&[0xC0, 12]);
        let (t, data) = match rr {
            Rr::A(ip) => (1u16, ip.octets().to_vec()),
            Rr::Srv(p, w, port, target) => {
                let mut d = Vec::new();
                d.extend_from_slice(&p.to_be_bytes());
                d.extend_from_slice(&w.to_be_bytes());
                d.extend_from_slice(&port.to_be_bytes());
                d.extend_from_slice(&name_bytes(target));
                (33u16, d)
            }
            Rr::Naptr(order, pref, flags, services, replacement) => {
                let mut d = Vec::new();
                d.extend_from_slice(&order.to_be_bytes());
                d.extend_from_slice(&pref.to_be_bytes());
                for text in [flags, services, ""] {
                    d.push(text.len() as u8);
                    d.extend_from_slice(text.as_bytes());
                }
                d.extend_from_slice(&name_bytes(replacement));
                (35u16, d)
            }
        };
        r.extend_from_slice(&t.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    r
}

async fn dns_server(
    table: HashMap<(String, u16), Vec<Rr>>,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, src)) = sock.recv_from(&mut buf).await {
            if n < 17 {
                continue;
            }
            let r = answer(&buf[..n], &table, &l);
            let _ = sock.send_to(&r, src).await;
        }
    });
    (addr, log)
}

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

/// A registrar answering every REGISTER with `code` (0 = never answers); counts requests.
async fn registrar(code: u16) -> (SocketAddr, Arc<Mutex<u32>>) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0u32));
    let h = hits.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok((n, src)) = sock.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("REGISTER ") {
                continue;
            }
            *h.lock().unwrap() += 1;
            if code == 0 {
                continue;
            }
            let reason = if code == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let contact = if code == 200 {
                format!("Contact: {};expires=120\r\n", header(&text, "Contact"))
            } else {
                String::new()
            };
            let reply = format!(
                "SIP/2.0 {code} {reason}\r\nVia: {};received={};rport={}\r\nFrom: {}\r\nTo: {};tag=r\r\nCall-ID: {}\r\nCSeq: {}\r\n{contact}Content-Length: 0\r\n\r\n",
                header(&text, "Via").replace(";rport", ""),
                src.ip(),
                src.port(),
                header(&text, "From"),
                header(&text, "To"),
                header(&text, "Call-ID"),
                header(&text, "CSeq"),
            );
            let _ = sock.send_to(reply.as_bytes(), src).await;
        }
    });
    (addr, hits)
}

async fn register_via_srv(first_code: u16) {
    let (bad, bad_hits) = registrar(first_code).await;
    let (good, good_hits) = registrar(200).await;
    let mut table = HashMap::new();
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![
            Rr::Srv(20, 0, good.port(), "live.pbx.test"),
            Rr::Srv(10, 0, bad.port(), "dead.pbx.test"),
        ],
    );
    for host in ["dead.pbx.test", "live.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-srv-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_account(AccountConfig {
        server: Some("pbx.test".into()),
        username: "alice".into(),
        password: "x".into(),
        register_expires: 120,
        ..Default::default()
    });
    ua.register();
    let state = loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    };
    assert_eq!(state, RegistrationState::Registered { expires: 120 });
    assert!(*bad_hits.lock().unwrap() >= 1, "priority 10 tried first");
    assert_eq!(*good_hits.lock().unwrap(), 1);
    let q = queries.lock().unwrap().clone();
    assert_eq!(
        q.first().map(String::as_str),
        Some("_sip._udp.pbx.test/33"),
        "{q:?}"
    );
    ua.shutdown().await;
}

#[tokio::test]
async fn srv_failover_to_the_next_target_on_503() {
    register_via_srv(503).await;
}

#[tokio::test]
async fn srv_failover_to_the_next_target_on_timeout() {
    register_via_srv(0).await;
}

#[tokio::test]
async fn no_srv_records_fall_back_to_a_record_and_default_port_scheme() {
    // Only an A record: the name is used with an explicit port (no SRV query at all).
    let (good, hits) = registrar(200).await;
    let mut table = HashMap::new();
    table.insert(
        ("pbx.test".to_string(), 1),
        vec![Rr::A(Ipv4Addr::LOCALHOST)],
    );
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-srv-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_account(AccountConfig {
        server: Some(format!("pbx.test:{}", good.port())),
        username: "alice".into(),
        register_expires: 120,
        ..Default::default()
    });
    ua.register();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registered { .. }) => break,
            SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
                panic!("{code} {reason}")
            }
            _ => {}
        }
    }
    assert_eq!(*hits.lock().unwrap(), 1);
    let q = queries.lock().unwrap().clone();
    assert!(
        q.iter().all(|q| !q.ends_with("/33")),
        "no SRV with a port: {q:?}"
    );
    ua.shutdown().await;
}

/// A server that answers every INVITE with `code` (0 = never answers); counts them.
async fn invite_server(code: u16) -> (SocketAddr, Arc<Mutex<u32>>) {
    let sock = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0u32));
    let h = hits.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok((n, src)) = sock.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("INVITE ") {
                continue;
            }
            *h.lock().unwrap() += 1;
            if code == 0 {
                continue;
            }
            let reply = format!(
                "SIP/2.0 {code} Service Unavailable\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=dead\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                header(&text, "Via"),
                header(&text, "From"),
                header(&text, "To"),
                header(&text, "Call-ID"),
                header(&text, "CSeq"),
            );
            let _ = sock.send_to(reply.as_bytes(), src).await;
        }
    });
    (addr, hits)
}

/// RFC 3263 §4.3 for INVITE: `_sip._udp.pbx.test` lists a dead server (priority 10:
/// silent, or answering 503) and SIPp's built-in `uas` (priority 20). A call to `service`
/// (at the account's domain) goes to the dead one first, then to SIPp, which answers it.
async fn invite_via_srv(first_code: u16) {
    if !webphone_interop::require_tools("invite_srv_failover", &[webphone_interop::SIPP]) {
        return;
    }
    let dir = webphone_interop::TestDir::new("invite-srv-failover");
    let mut uas = webphone_interop::Sipp::uas(dir.path());
    let (bad, bad_hits) = invite_server(first_code).await;
    let mut table = HashMap::new();
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![
            Rr::Srv(20, 0, uas.port(), "live.pbx.test"),
            Rr::Srv(10, 0, bad.port(), "dead.pbx.test"),
        ],
    );
    for host in ["dead.pbx.test", "live.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-srv-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_account(AccountConfig {
        server: Some("pbx.test".into()),
        username: "alice".into(),
        password: "x".into(),
        ..Default::default()
    });
    let offer = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let call = ua.invite("service", offer.into()).unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("call outcome in time")
            .unwrap();
        match ev {
            SipEvent::Answered { call: c, .. } if c == call => break,
            SipEvent::Ended { code, text, .. } => panic!("call ended: {code:?} {text}"),
            _ => continue,
        }
    }
    assert!(*bad_hits.lock().unwrap() >= 1, "priority 10 tried first");
    let q = queries.lock().unwrap().clone();
    assert_eq!(
        q.first().map(String::as_str),
        Some("_sip._udp.pbx.test/33"),
        "{q:?}"
    );
    ua.hangup(call);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(SipEvent::Ended { .. })) => break,
            Ok(Some(_)) => continue,
            other => panic!("no Ended: {other:?}"),
        }
    }
    // SIPp's uas ends with the BYE it received.
    tokio::task::spawn_blocking(move || uas.assert_success(Duration::from_secs(15)))
        .await
        .unwrap();
    ua.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_fails_over_to_the_next_srv_target_on_503() {
    invite_via_srv(503).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_fails_over_to_the_next_srv_target_on_silence() {
    invite_via_srv(0).await;
}

/// A registrar on TCP answering every REGISTER with 200 OK (on the same connection, Via
/// as received: no `received`/`rport`, so no Contact rewrite); counts requests.
async fn tcp_registrar() -> (SocketAddr, Arc<Mutex<u32>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0u32));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    // Requests without bodies: one per blank line (CRLF keep-alives skipped).
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&pending[..end + 4]).to_string();
                        pending.drain(..end + 4);
                        let text = text.trim_start().to_string();
                        if !text.starts_with("REGISTER ") {
                            continue;
                        }
                        *h.lock().unwrap() += 1;
                        let reply = format!(
                            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=r\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: {};expires=120\r\nContent-Length: 0\r\n\r\n",
                            header(&text, "Via"),
                            header(&text, "From"),
                            header(&text, "To"),
                            header(&text, "Call-ID"),
                            header(&text, "CSeq"),
                            header(&text, "Contact"),
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, hits)
}

/// Register `alice@pbx.test` with no transport configured (RFC 3263 §4.1 picks it); the
/// DNS server answers from `table`. Returns the registered UA and the queries asked, in
/// order.
async fn register_auto(table: HashMap<(String, u16), Vec<Rr>>) -> (SipUa, Vec<String>) {
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-naptr-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_transport_auto(true);
    ua.set_account(AccountConfig {
        server: Some("pbx.test".into()),
        username: "alice".into(),
        password: "x".into(),
        register_expires: 120,
        ..Default::default()
    });
    ua.register();
    let state = loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    };
    assert_eq!(state, RegistrationState::Registered { expires: 120 });
    let q = queries.lock().unwrap().clone();
    (ua, q)
}

#[tokio::test]
async fn naptr_tcp_first_registers_over_tcp_at_the_srv_port() {
    let (tcp, tcp_hits) = tcp_registrar().await;
    let (udp, udp_hits) = registrar(200).await;
    let mut table = HashMap::new();
    // UDP is listed with the better preference but a worse order: order wins.
    table.insert(
        ("pbx.test".to_string(), 35),
        vec![
            Rr::Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.pbx.test"),
            Rr::Naptr(10, 50, "s", "SIP+D2T", "_sip._tcp.pbx.test"),
        ],
    );
    table.insert(
        ("_sip._tcp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, tcp.port(), "tcp.pbx.test")],
    );
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, udp.port(), "udp.pbx.test")],
    );
    for host in ["tcp.pbx.test", "udp.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (ua, q) = register_auto(table).await;
    assert_eq!(*tcp_hits.lock().unwrap(), 1, "REGISTER over TCP");
    assert_eq!(*udp_hits.lock().unwrap(), 0, "nothing over UDP");
    ua.shutdown().await;
    assert_eq!(
        q.get(..2).map(|q| q.to_vec()),
        Some(vec![
            "pbx.test/35".to_string(),
            "_sip._tcp.pbx.test/33".to_string()
        ]),
        "{q:?}"
    );
}

#[tokio::test]
async fn naptr_absent_falls_back_to_srv_per_transport() {
    // No NAPTR and no _sip._udp records: the _sip._tcp SRV record leads to TCP.
    let (tcp, tcp_hits) = tcp_registrar().await;
    let mut table = HashMap::new();
    table.insert(
        ("_sip._tcp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, tcp.port(), "tcp.pbx.test")],
    );
    for host in ["tcp.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (ua, q) = register_auto(table).await;
    assert_eq!(*tcp_hits.lock().unwrap(), 1, "REGISTER over TCP");
    ua.shutdown().await;
    assert_eq!(
        q.get(..3).map(|q| q.to_vec()),
        Some(vec![
            "pbx.test/35".to_string(),
            "_sip._udp.pbx.test/33".to_string(),
            "_sip._tcp.pbx.test/33".to_string()
        ]),
        "{q:?}"
    );
}

#[tokio::test]
async fn configured_transport_skips_naptr() {
    // Transport not left to DNS (the default): SRV for the configured UDP, no NAPTR query.
    let (udp, udp_hits) = registrar(200).await;
    let mut table = HashMap::new();
    table.insert(
        ("pbx.test".to_string(), 35),
        vec![Rr::Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.pbx.test")],
    );
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, udp.port(), "udp.pbx.test")],
    );
    for host in ["udp.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-naptr-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_account(AccountConfig {
        server: Some("pbx.test".into()),
        username: "alice".into(),
        register_expires: 120,
        ..Default::default()
    });
    ua.register();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registered { .. }) => break,
            SipEvent::Registration(RegistrationState::Failed { code, reason }) => {
                panic!("{code} {reason}")
            }
            _ => {}
        }
    }
    assert_eq!(*udp_hits.lock().unwrap(), 1);
    let q = queries.lock().unwrap().clone();
    assert!(q.iter().all(|q| !q.ends_with("/35")), "no NAPTR: {q:?}");
    ua.shutdown().await;
}

#[tokio::test]
async fn naptr_first_choice_refusing_moves_on_to_the_next() {
    // NAPTR says TCP first, but nothing listens on the TCP port its SRV names: the
    // connection failure moves on (RFC 3263 §4.3) to the UDP choice.
    let refused = webphone_interop::refused_tcp_port();
    let closed_port = refused.port;
    let (udp, udp_hits) = registrar(200).await;
    let mut table = HashMap::new();
    table.insert(
        ("pbx.test".to_string(), 35),
        vec![
            Rr::Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.pbx.test"),
            Rr::Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.pbx.test"),
        ],
    );
    table.insert(
        ("_sip._tcp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, closed_port, "tcp.pbx.test")],
    );
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, udp.port(), "udp.pbx.test")],
    );
    for host in ["tcp.pbx.test", "udp.pbx.test", "pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (ua, q) = register_auto(table).await;
    assert_eq!(
        *udp_hits.lock().unwrap(),
        1,
        "REGISTER over UDP after TCP failed"
    );
    assert!(q.contains(&"_sip._udp.pbx.test/33".to_string()), "{q:?}");
    ua.shutdown().await;
}

/// The NAPTR → SRV chain against a real Kamailio (UDP and TCP on one port): NAPTR for
/// `localhost` (Kamailio's own domain) lists TCP before UDP, both SRV records name
/// Kamailio's port; Kamailio must receive the REGISTER over TCP and keep a TCP contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn naptr_tcp_first_registers_at_kamailio_over_tcp() {
    if !webphone_interop::require_tools(
        "naptr_kamailio_tcp",
        &[webphone_interop::KAMAILIO, webphone_interop::KAMCMD],
    ) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = webphone_interop::TestDir::new("naptr-kamailio-tcp");
    let mut k = webphone_interop::Kamailio::start(dir.path());
    let mut table = HashMap::new();
    table.insert(
        ("localhost".to_string(), 35),
        vec![
            Rr::Naptr(10, 10, "s", "SIP+D2U", "_sip._udp.localhost"),
            Rr::Naptr(5, 90, "s", "SIP+D2T", "_sip._tcp.localhost"),
        ],
    );
    for srv in ["_sip._tcp.localhost", "_sip._udp.localhost"] {
        table.insert(
            (srv.to_string(), 33),
            vec![Rr::Srv(10, 0, k.port(), "kamailio.test")],
        );
    }
    table.insert(
        ("kamailio.test".to_string(), 1),
        vec![Rr::A(Ipv4Addr::LOCALHOST)],
    );
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-naptr-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_transport_auto(true);
    ua.set_account(AccountConfig {
        server: Some("localhost".into()),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 300,
        ..Default::default()
    });
    ua.register();
    let state = loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    };
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}; kamailio log:\n{}",
        k.log()
    );
    // Kamailio logs REGISTERED after save() has sent the 200: wait for the line.
    let tcp = k.wait_lines(
        &["REGISTERED 1001", "from tcp:127.0.0.1:"],
        1,
        std::time::Duration::from_secs(5),
    );
    let udp = k.lines_with(&["REQ REGISTER", "from udp:"]);
    // One binding: the connection's ephemeral port seen by Kamailio is no Contact correction.
    assert!(!tcp.is_empty(), "REGISTER saved over TCP: {tcp:?}");
    assert!(udp.is_empty(), "no REGISTER over UDP: {udp:?}");
    let sockets = k.contact_fields("1001", "Socket");
    assert!(
        sockets.len() == 1 && sockets[0].starts_with("tcp:"),
        "{sockets:?}"
    );
    let q = queries.lock().unwrap().clone();
    assert_eq!(q.first().map(String::as_str), Some("localhost/35"), "{q:?}");
    ua.shutdown().await;
    k.stop();
}

/// Register `1001@<domain>` at a TLS-capable Kamailio with no transport configured; the
/// DNS server answers from `table`, the UA trusts Kamailio's self-signed certificate
/// (`IP:127.0.0.1, DNS:localhost`). Returns the outcome and the queries asked.
async fn register_auto_trusting(
    k: &webphone_interop::Kamailio,
    domain: &str,
    table: HashMap<(String, u16), Vec<Rr>>,
) -> (
    SipUa,
    tokio::sync::mpsc::UnboundedReceiver<SipEvent>,
    RegistrationState,
    Vec<String>,
) {
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start_with(
        SipConfig {
            bind_ip: LOOPBACK,
            port: 0,
            transport: Transport::Udp,
            user_agent: "webphone-naptr-test".into(),
        },
        webphone_sip::TransportOptions {
            tls_ca_file: Some(k.cert_path().to_path_buf()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_transport_auto(true);
    ua.set_account(AccountConfig {
        server: Some(domain.into()),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 300,
        ..Default::default()
    });
    ua.register();
    let state = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    };
    let q = queries.lock().unwrap().clone();
    (ua, rx, state, q)
}

/// RFC 3263 §4.1 choosing TLS: NAPTR for `localhost` lists `SIPS+D2T` before `SIP+D2U`;
/// the SRV target is `kamailio.test`, a name Kamailio's certificate does not carry. The
/// certificate is checked against the domain the lookup started from (RFC 5922 §4), so the
/// REGISTER goes over TLS to the SRV target's address and Kamailio keeps a TLS contact; a
/// call from another phone then reaches us over that TLS flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn naptr_tls_first_registers_at_kamailio_over_tls_with_the_domain_certificate() {
    if !webphone_interop::require_tools(
        "naptr_kamailio_tls",
        &[
            webphone_interop::KAMAILIO,
            webphone_interop::KAMCMD,
            "openssl",
        ],
    ) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = webphone_interop::TestDir::new("naptr-kamailio-tls");
    let mut k = webphone_interop::Kamailio::start_secure(dir.path(), Default::default());
    let table = tls_first_table(&k);
    let (ua, mut rx, state, q) = register_auto_trusting(&k, "localhost", table).await;
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}; kamailio log:\n{}",
        k.log()
    );
    // Kamailio logs REGISTERED after save() has sent the 200: wait for the line.
    let tls = k.wait_lines(
        &["REGISTERED 1001", "from tls:127.0.0.1:"],
        1,
        std::time::Duration::from_secs(5),
    );
    let udp = k.lines_with(&["REQ REGISTER", "from udp:"]);
    assert!(!tls.is_empty(), "REGISTER saved over TLS: {tls:?}");
    assert!(udp.is_empty(), "no REGISTER over UDP: {udp:?}");
    // One binding (a second one, for the connection's ephemeral port, would fork the call
    // below into two INVITEs on the same flow).
    let sockets = k.contact_fields("1001", "Socket");
    assert!(
        sockets.len() == 1 && sockets[0].starts_with("tls:"),
        "{sockets:?}"
    );
    assert_eq!(
        q.get(..2).map(|q| q.to_vec()),
        Some(vec![
            "localhost/35".to_string(),
            "_sips._tcp.localhost/33".to_string()
        ]),
        "{q:?}"
    );
    // Calls come in over that TLS flow: 1002 (over UDP) calls 1001 through Kamailio.
    let (caller, mut crx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-naptr-caller".into(),
    })
    .await
    .unwrap();
    caller.set_account(AccountConfig {
        server: Some(format!("127.0.0.1:{}", k.port())),
        username: "1002".into(),
        password: "pass1002".into(),
        ..Default::default()
    });
    let offer = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let out = caller.invite("1001", offer.into()).unwrap();
    let incoming = loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no incoming call; kamailio log:\n{}", k.log()))
            .unwrap();
        if let SipEvent::Incoming {
            call, from_user, ..
        } = ev
        {
            break (call, from_user);
        }
    };
    assert_eq!(incoming.1, "1002");
    // Our Contact says `transport=tls` and nothing of ours listens for TLS: the INVITE can
    // only have come over the registration's own connection (RFC 5626 flow reuse).
    ua.reject(incoming.0, 486);
    let code = loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), crx.recv())
            .await
            .expect("caller outcome")
            .unwrap();
        if let SipEvent::Ended { call, code, .. } = ev {
            if call == out {
                break code;
            }
        }
    };
    assert_eq!(code, Some(486));
    caller.shutdown().await;
    ua.shutdown().await;
    k.stop();
}

/// The other way round: the domain is `pbx.test` (not in Kamailio's certificate) and the
/// SRV target is `localhost` (in it). Trusting the SRV target's name would let anyone who
/// can forge the SRV answer stand in for the domain (RFC 5922 §4): the TLS handshake must
/// fail on the name, and the REGISTER never reaches Kamailio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn naptr_tls_refuses_a_certificate_naming_only_the_srv_target() {
    if !webphone_interop::require_tools(
        "naptr_kamailio_tls_name",
        &[
            webphone_interop::KAMAILIO,
            webphone_interop::KAMCMD,
            "openssl",
        ],
    ) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = webphone_interop::TestDir::new("naptr-kamailio-tls-name");
    let mut k = webphone_interop::Kamailio::start_secure(dir.path(), Default::default());
    let mut table = HashMap::new();
    table.insert(
        ("pbx.test".to_string(), 35),
        vec![Rr::Naptr(5, 10, "s", "SIPS+D2T", "_sips._tcp.pbx.test")],
    );
    table.insert(
        ("_sips._tcp.pbx.test".to_string(), 33),
        vec![Rr::Srv(10, 0, k.tls_port(), "localhost")],
    );
    table.insert(
        ("localhost".to_string(), 1),
        vec![Rr::A(Ipv4Addr::LOCALHOST)],
    );
    let (ua, _rx, state, _) = register_auto_trusting(&k, "pbx.test", table).await;
    match &state {
        RegistrationState::Failed { reason, .. } => assert!(
            reason.contains("does not match the server name"),
            "the TLS name check failed: {reason}"
        ),
        other => panic!("registered with a certificate for another name: {other:?}"),
    }
    assert!(
        k.lines_with(&["REQ REGISTER"]).is_empty(),
        "nothing reached Kamailio"
    );
    ua.shutdown().await;
    k.stop();
}

/// RFC 3263 §4.3 with the cached list: after the REGISTER failed over from the priority 10
/// server (503) to the priority 20 one, the next REGISTER (here the un-REGISTER) goes
/// straight to the working server, and no DNS query is asked again while the records'
/// TTL (30 s) lasts.
#[tokio::test]
async fn cached_list_sends_the_next_register_to_the_server_that_worked() {
    let (bad, bad_hits) = registrar(503).await;
    let (good, good_hits) = registrar(200).await;
    let mut table = HashMap::new();
    table.insert(
        ("_sip._udp.pbx.test".to_string(), 33),
        vec![
            Rr::Srv(20, 0, good.port(), "live.pbx.test"),
            Rr::Srv(10, 0, bad.port(), "dead.pbx.test"),
        ],
    );
    for host in ["dead.pbx.test", "live.pbx.test"] {
        table.insert((host.to_string(), 1), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    }
    let (dns, queries) = dns_server(table).await;
    let (ua, mut rx) = SipUa::start(SipConfig {
        bind_ip: LOOPBACK,
        port: 0,
        transport: Transport::Udp,
        user_agent: "webphone-srv-test".into(),
    })
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_account(AccountConfig {
        server: Some("pbx.test".into()),
        username: "alice".into(),
        password: "x".into(),
        register_expires: 120,
        ..Default::default()
    });
    ua.register();
    assert_eq!(
        next_registration_state(&mut rx).await,
        RegistrationState::Registered { expires: 120 }
    );
    let bad_before = *bad_hits.lock().unwrap();
    let asked = queries.lock().unwrap().len();
    assert!(bad_before >= 1, "priority 10 tried first");
    assert_eq!(*good_hits.lock().unwrap(), 1);
    ua.unregister();
    assert_eq!(
        next_registration_state(&mut rx).await,
        RegistrationState::Unregistered
    );
    assert_eq!(
        *good_hits.lock().unwrap(),
        2,
        "un-REGISTER at the live server"
    );
    assert_eq!(
        *bad_hits.lock().unwrap(),
        bad_before,
        "the failed server is not asked first again"
    );
    let q = queries.lock().unwrap().clone();
    assert_eq!(q.len(), asked, "answered from the cache: {q:?}");
    ua.shutdown().await;
}

async fn next_registration_state(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SipEvent>,
) -> RegistrationState {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("registration outcome in time")
            .unwrap();
        match ev {
            SipEvent::Registration(RegistrationState::Registering) => continue,
            SipEvent::Registration(s) => break s,
            _ => continue,
        }
    }
}

/// NAPTR for `localhost` listing TLS first, its SRV target named `kamailio.test` (not in
/// Kamailio's certificate, which names `localhost`).
fn tls_first_table(k: &webphone_interop::Kamailio) -> HashMap<(String, u16), Vec<Rr>> {
    let mut table = HashMap::new();
    table.insert(
        ("localhost".to_string(), 35),
        vec![
            Rr::Naptr(10, 10, "s", "SIP+D2U", "_sip._udp.localhost"),
            Rr::Naptr(5, 10, "s", "SIPS+D2T", "_sips._tcp.localhost"),
        ],
    );
    table.insert(
        ("_sips._tcp.localhost".to_string(), 33),
        vec![Rr::Srv(10, 0, k.tls_port(), "kamailio.test")],
    );
    table.insert(
        ("_sip._udp.localhost".to_string(), 33),
        vec![Rr::Srv(10, 0, k.port(), "kamailio.test")],
    );
    table.insert(
        ("kamailio.test".to_string(), 1),
        vec![Rr::A(Ipv4Addr::LOCALHOST)],
    );
    table
}

/// RFC 3263 §4.1 for an INVITE and a MESSAGE (not only the REGISTER): with no transport
/// configured the call to `1002` at `localhost` goes over the TLS that NAPTR lists first, to
/// the SRV target's address, with the certificate checked against `localhost`. Kamailio
/// logs the INVITE and the MESSAGE as received over TLS (1002 is not registered: both then
/// fail, which is fine here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn naptr_tls_first_carries_the_invite_and_message_too() {
    if !webphone_interop::require_tools(
        "naptr_kamailio_tls_invite",
        &[
            webphone_interop::KAMAILIO,
            webphone_interop::KAMCMD,
            "openssl",
        ],
    ) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = webphone_interop::TestDir::new("naptr-kamailio-tls-invite");
    let mut k = webphone_interop::Kamailio::start_secure(dir.path(), Default::default());
    let (dns, queries) = dns_server(tls_first_table(&k)).await;
    let (ua, mut rx) = SipUa::start_with(
        SipConfig {
            bind_ip: LOOPBACK,
            port: 0,
            transport: Transport::Udp,
            user_agent: "webphone-naptr-test".into(),
        },
        webphone_sip::TransportOptions {
            tls_ca_file: Some(k.cert_path().to_path_buf()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ua.set_dns_servers(vec![dns]);
    ua.set_transport_auto(true);
    ua.set_account(AccountConfig {
        server: Some("localhost".into()),
        username: "1001".into(),
        password: "pass1001".into(),
        ..Default::default()
    });
    let offer = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let call = ua.invite("1002", offer.into()).unwrap();
    let ended = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("call outcome in time")
            .unwrap();
        match ev {
            SipEvent::Ended {
                call: c,
                code,
                text,
                ..
            } if c == call => break (code, text),
            _ => continue,
        }
    };
    let tls = k.lines_with(&["REQ INVITE", "from tls:127.0.0.1:"]);
    let udp = k.lines_with(&["REQ INVITE", "from udp:"]);
    assert!(
        !tls.is_empty(),
        "INVITE over TLS ({ended:?}); kamailio log:\n{}",
        k.log()
    );
    assert!(udp.is_empty(), "no INVITE over UDP: {udp:?}");
    // Other out-of-dialog requests are located the same way: a MESSAGE (RFC 3428).
    let key = ua
        .send_message("1002", "text/plain", "over the NAPTR choice")
        .unwrap();
    let status = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("MESSAGE outcome in time")
            .unwrap();
        match ev {
            SipEvent::MessageStatus { key: m, code, .. } if m == key => break code,
            _ => continue,
        }
    };
    let tls = k.lines_with(&["REQ MESSAGE", "from tls:127.0.0.1:"]);
    assert!(
        !tls.is_empty() && k.lines_with(&["REQ MESSAGE", "from udp:"]).is_empty(),
        "MESSAGE over TLS only (final {status}); kamailio log:\n{}",
        k.log()
    );
    let q = queries.lock().unwrap().clone();
    assert_eq!(
        q.get(..2).map(|q| q.to_vec()),
        Some(vec![
            "localhost/35".to_string(),
            "_sips._tcp.localhost/33".to_string()
        ]),
        "{q:?}"
    );
    ua.shutdown().await;
    k.stop();
}
