//! Two-server failover (`serveraddressfirst`, `enablefallback`): a registration the first
//! server refuses with a server error moves to `serveraddress` at once; an authentication
//! rejection does not; `enablefallback=false` keeps the first. Real engines against the
//! minimal UDP registrars of `conformance_registrar.rs` on loopback.

#![allow(clippy::unwrap_used)]
mod common;

use common::*;
#[path = "conformance_registrar.rs"]
mod registrar;
use registrar::registrar;

fn account(first: u16, second: u16, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("serveraddressfirst", format!("127.0.0.1:{first}")),
        ("serveraddress", format!("127.0.0.1:{second}")),
        ("username", "1001".into()),
        ("password", "secret".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ];
    p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_server_hands_over_to_serveraddress() {
    let (down, up) = (registrar(503).await, registrar(200).await);
    let mut p = TestPhone::new(&account(down, up, &[])).await;
    p.callback("onRegistered", 10).await;
    p.notification(
        |t| {
            t.starts_with(&format!(
                "LOG,WARNING,registration at 127.0.0.1:{down} failed (503); trying 127.0.0.1:{up}"
            ))
        },
        5,
    )
    .await;
    assert!(
        p.seen.iter().all(|e| !matches!(e, webphone_engine::Event::Callback { name, .. } if name == "onRegisterFailed")),
        "the failover is not a failure the user sees"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentication_rejection_or_enablefallback_false_stays_with_the_first_server() {
    let (forbidden, up) = (registrar(403).await, registrar(200).await);
    let mut p = TestPhone::new(&account(forbidden, up, &[])).await;
    p.callback("onRegisterFailed", 10).await;
    assert!(p.notifications("LOG,WARNING,registration at").is_empty());
    p.stop().await;

    let (down, up) = (registrar(503).await, registrar(200).await);
    let mut p = TestPhone::new(&account(down, up, &[("enablefallback", "false")])).await;
    let args = p.callback("onRegisterFailed", 10).await;
    assert!(args[0].as_str().unwrap().contains("503"), "{args:?}");
    assert!(p.notifications("LOG,WARNING,registration at").is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_both_servers_fail_the_user_is_told_once_per_round() {
    let (a, b) = (registrar(503).await, registrar(500).await);
    let mut p = TestPhone::new(&account(a, b, &[])).await;
    let args = p.callback("onRegisterFailed", 10).await;
    assert!(
        args[0].as_str().unwrap().contains("500"),
        "the second server's answer: {args:?}"
    );
    assert_eq!(
        p.notifications("LOG,WARNING,registration at").len(),
        1,
        "one failover, no loop"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotransportdetect_tries_tcp_when_udp_fails() {
    use registrar::udp_and_tcp_registrars;
    // Same port: UDP answers 503, TCP registers.
    let port = udp_and_tcp_registrars(503, 200).await;
    let params = |detect: &str| {
        vec![
            ("serveraddress", format!("127.0.0.1:{port}")),
            ("username", "1001".to_string()),
            ("password", "secret".into()),
            ("audiodevicein", "null".into()),
            ("audiodeviceout", "null".into()),
            ("autotransportdetect", detect.into()),
        ]
    };
    let mut p = TestPhone::new(&params("true")).await;
    p.callback("onRegistered", 10).await;
    p.notification(
        |t| t.contains(&format!("trying 127.0.0.1:{port};transport=tcp")),
        5,
    )
    .await;
    p.stop().await;
    // Off (the default): UDP's 503 is the answer.
    let port2 = udp_and_tcp_registrars(503, 200).await;
    let mut p = TestPhone::new(&[
        ("serveraddress", format!("127.0.0.1:{port2}")),
        ("username", "1001".to_string()),
        ("password", "secret".into()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ])
    .await;
    let args = p.callback("onRegisterFailed", 10).await;
    assert!(args[0].as_str().unwrap().contains("503"), "{args:?}");
    p.stop().await;
}
