//! A phone on UDP reads the system trust anchors only when it first opens a TLS connection
//! (a `;transport=tls` target), and hands them to the transport layer that dials it: the
//! certificate is verified as for a TLS account.
//!
//! Its own test binary: it points the "system" store at Kamailio's test certificate
//! through `SSL_CERT_FILE`/`SSL_CERT_DIR` (read by rustls-native-certs), which must not
//! leak into other tests. Skips loudly without kamailio/baresip/openssl; fails instead
//! when CI=true.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use webphone_interop::{Baresip, BaresipOpts, Kamailio, KamailioOpts, TestDir};
use webphone_sip::{AccountConfig, SipConfig, SipEvent, SipUa, Transport, TransportOptions};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_phone_dialling_a_tls_target_verifies_against_the_system_store() {
    if !webphone_interop::require_tools(
        "tls anchors on demand",
        &["kamailio", "kamcmd", "openssl", "baresip"],
    ) {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .with_test_writer()
        .try_init();
    let dir = TestDir::new("sip-tls-on-demand");
    let mut k = Kamailio::start_secure(dir.path(), KamailioOpts::default());
    let mut b = Baresip::start(&dir.subdir("baresip"), BaresipOpts::registered_to(k.port()));
    // The "system" store holds exactly Kamailio's certificate. Set before our user agent
    // exists (the only test of this binary; no thread of ours reads the environment yet).
    let empty = dir.path().join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("SSL_CERT_FILE", k.cert_path());
    std::env::set_var("SSL_CERT_DIR", &empty);

    let (ua, mut rx) = SipUa::start_with(
        SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            transport: Transport::Udp,
            user_agent: "webphone-tls-on-demand-test".into(),
        },
        TransportOptions::default(),
    )
    .await
    .expect("a UDP phone starts");
    // Not registered; the credentials answer Kamailio's challenge of the INVITE.
    ua.set_account(AccountConfig {
        server: None,
        username: "1001".into(),
        password: "pass1001".into(),
        ..Default::default()
    });
    let call = ua
        .invite(
            &format!("sip:1002@127.0.0.1:{};transport=tls", k.tls_port()),
            OFFER.into(),
        )
        .expect("invite");
    // Verified against the store read on demand: the call crosses the handshake and is
    // answered. (Had the anchors not reached the transport layer, it would have refused
    // Kamailio's certificate as issued by an unknown authority.)
    let mut seen = Vec::new();
    let answered = loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(SipEvent::Trace { .. })) => continue,
            Ok(Some(SipEvent::Answered { call: c, .. })) if c == call => break true,
            Ok(Some(SipEvent::Ended { .. })) | Ok(None) | Err(_) => break false,
            Ok(Some(ev)) => seen.push(format!("{ev:?}")),
        }
    };
    assert!(answered, "the TLS call was not answered; events: {seen:#?}");
    assert!(
        !k.lines_with(&["REQ INVITE", "from tls:127.0.0.1:"])
            .is_empty(),
        "the INVITE came over TLS"
    );
    ua.hangup(call);
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    ua.shutdown().await;
    b.stop();
    k.stop();
}
