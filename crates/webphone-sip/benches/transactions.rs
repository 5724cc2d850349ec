//! Transactions per second through the whole user agent core on loopback: a raw UDP client
//! sends OPTIONS requests (each with a new branch, so each is a new server transaction) to a
//! running `SipUa` and waits for the 200s. Every request passes our validating parser
//! (stack/inbound.rs), rsipstack's transport and transaction layers and the driver's OPTIONS
//! handler (RFC 3261 §11.2). criterion reports elements (transactions) per second.
//!
//!   cargo bench -p webphone-sip --bench transactions
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::net::UdpSocket;
use webphone_sip::{SipConfig, SipUa, Transport};

/// Requests in flight in the pipelined case.
const IN_FLIGHT: u64 = 32;

fn options(seq: u64, port: u16) -> Vec<u8> {
    format!(
        "OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbench{seq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:client@127.0.0.1>;tag=b{seq}\r\n\
         To: <sip:bench@127.0.0.1>\r\n\
         Call-ID: bench-{seq}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Wait for `n` final responses on `sock`.
async fn finals(sock: &UdpSocket, n: u64) {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < n {
        let len = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        if buf[..len].starts_with(b"SIP/2.0 200") {
            got += 1;
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ua, sock, port) = rt.block_on(async {
        let (ua, mut rx) = SipUa::start(SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            transport: Transport::Udp,
            user_agent: "webphone-bench".into(),
        })
        .await
        .unwrap();
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let to: SocketAddr = ua.local_addr();
        sock.connect(to).await.unwrap();
        let port = sock.local_addr().unwrap().port();
        (ua, sock, port)
    });
    let mut seq = 0u64;
    let mut g = c.benchmark_group("transactions");
    g.throughput(Throughput::Elements(1));
    g.bench_function("options_udp_one_at_a_time", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    seq += 1;
                    sock.send(&options(seq, port)).await.unwrap();
                    finals(&sock, 1).await;
                }
                t0.elapsed()
            })
        })
    });
    g.throughput(Throughput::Elements(IN_FLIGHT));
    g.bench_function(format!("options_udp_{IN_FLIGHT}_in_flight"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    for _ in 0..IN_FLIGHT {
                        seq += 1;
                        sock.send(&options(seq, port)).await.unwrap();
                    }
                    finals(&sock, IN_FLIGHT).await;
                }
                t0.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(ua.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
