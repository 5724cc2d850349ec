//! The UA input path: every input is one UDP datagram into a live `SipUa` on loopback
//! (rsipstack's transport, transaction and dialog layers, our stack and policy). A panic on
//! any thread aborts the process, so libFuzzer sees it; every 64 inputs the UA must still
//! answer an OPTIONS, sent from a socket of its own (the inputs' socket may be ignored for a
//! while once it provoked too many refusals: the UA's rate limit, `stack/inbound.rs`).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;
use webphone_sip::{SipConfig, SipEvent, SipUa};

struct Harness {
    rt: Runtime,
    ua: SipUa,
    target: SocketAddr,
    sock: UdpSocket,
    probe: UdpSocket,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (ua, sock, probe) = rt.block_on(async {
            let cfg = SipConfig {
                bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                user_agent: "fuzz".into(),
                ..Default::default()
            };
            let (ua, mut rx) = SipUa::start(cfg).await.expect("UA starts");
            // Drain events (incoming calls ring forever; nobody answers).
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    let _: SipEvent = ev;
                }
            });
            let sock = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
            let probe = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
            (ua, sock, probe)
        });
        let target = ua.local_addr();
        Harness {
            rt,
            ua,
            target,
            sock,
            probe,
        }
    })
}

fn ping(h: &Harness, n: u64) {
    let port = h.probe.local_addr().map(|a| a.port()).unwrap_or(0);
    let req = format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKping{n}\r\n\
         From: <sip:f@127.0.0.1>;tag=f\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: ping{n}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    h.rt.block_on(async {
        let _ = h.probe.send_to(req.as_bytes(), h.target).await;
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, h.probe.recv_from(&mut buf)).await {
                Ok(Ok((len, _))) => {
                    let r = String::from_utf8_lossy(&buf[..len]);
                    if r.starts_with("SIP/2.0 200") && r.contains(&format!("Call-ID: ping{n}\r\n"))
                    {
                        return;
                    }
                }
                Ok(Err(_)) => continue,
                Err(_) => {
                    eprintln!("UA stopped answering OPTIONS");
                    std::process::abort();
                }
            }
        }
    });
}

fuzz_target!(|data: &[u8]| {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let h = harness();
    let _ = &h.ua;
    h.rt.block_on(async {
        let _ = h.sock.send_to(data, h.target).await;
        tokio::time::sleep(Duration::from_micros(200)).await;
    });
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if n % 64 == 63 {
        ping(h, n);
    }
});
