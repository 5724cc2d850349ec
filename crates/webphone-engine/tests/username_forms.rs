//! `allowsipuriasusername` (0, the default): a `username` written as a SIP URI registers as
//! its user part, at the URI's server when `serveraddress` is empty. A real engine sends its
//! REGISTER to a UDP socket on loopback that reads it.

#![allow(clippy::unwrap_used)]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;

async fn first_register(sock: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("a REGISTER within 10 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_uri_username_registers_its_user_part_at_its_domain() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let p = TestPhone::new(&[
        (
            "username",
            format!("sip:alice@127.0.0.1:{port};transport=udp"),
        ),
        ("password", "secret".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    let reg = first_register(&sock).await;
    assert!(
        reg.starts_with(&format!("REGISTER sip:127.0.0.1:{port}")),
        "{reg}"
    );
    let from = sip_header(&reg, "From").unwrap_or_default();
    assert!(
        from.contains(&format!("sip:alice@127.0.0.1:{port}")),
        "{from}"
    );
    assert!(!from.contains("sip:sip:"), "{from}");
    assert_eq!(
        p.api("getparameter", &["username"]).await,
        format!("sip:alice@127.0.0.1:{port};transport=udp"),
        "the parameter keeps what was entered"
    );
    p.stop().await;
}
