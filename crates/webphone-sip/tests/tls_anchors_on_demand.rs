//! A phone on UDP reads the system trust anchors only when it first opens a TLS connection
//! (a `;transport=tls` target), and hands them to the transport layer that dials it: the
//! certificate is verified as for a TLS account.
//!
//! Its own test binary: it points the "system" store at Kamailio's test certificate
//! through `SSL_CERT_FILE`/`SSL_CERT_DIR` (read by rustls-native-certs), which must not
//! leak into other tests. Skips loudly without kamailio/baresip/openssl; fails instead
//! when CI=true.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Peer, OFFER, WAIT};
use webphone_interop::{Baresip, BaresipOpts, Kamailio, KamailioOpts, TestDir};
use webphone_sip::{AccountConfig, SipEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_phone_dialling_a_tls_target_verifies_against_the_system_store() {
    if !webphone_interop::require_tools(
        "tls anchors on demand",
        &["kamailio", "kamcmd", "openssl", "baresip"],
    ) {
        return;
    }
    let dir = TestDir::new("sip-tls-on-demand");
    let mut k = Kamailio::start_secure(dir.path(), KamailioOpts::default());
    let mut b = Baresip::start(&dir.subdir("baresip"), BaresipOpts::registered_to(k.port()));
    // The "system" store holds exactly Kamailio's certificate. Set before our user agent
    // exists (the only test of this binary; no thread of ours reads the environment yet).
    let empty = dir.path().join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("SSL_CERT_FILE", k.cert_path());
    std::env::set_var("SSL_CERT_DIR", &empty);

    let mut p = Peer::start("tls-on-demand").await;
    // Not registered; the credentials answer Kamailio's challenge of the INVITE.
    p.ua.set_account(AccountConfig {
        server: None,
        username: "1001".into(),
        password: "pass1001".into(),
        ..Default::default()
    });
    let call =
        p.ua.invite(
            &format!("sip:1002@127.0.0.1:{};transport=tls", k.tls_port()),
            OFFER.into(),
        )
        .expect("invite");
    // Verified against the store read on demand: the call crosses the handshake and is
    // answered. (Had the anchors not reached the transport layer, it would have refused
    // Kamailio's certificate as issued by an unknown authority.)
    let seen = p
        .until("the call's outcome", |e| {
            matches!(e, SipEvent::Answered { call: c, .. } | SipEvent::Ended { call: c, .. } if *c == call)
        })
        .await;
    assert!(
        matches!(seen.last(), Some(SipEvent::Answered { .. })),
        "the TLS call was not answered: {seen:#?}"
    );
    assert!(
        !k.lines_with(&["REQ INVITE", "from tls:127.0.0.1:"])
            .is_empty(),
        "the INVITE came over TLS"
    );
    p.ua.hangup(call);
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    p.ua.shutdown().await;
    b.stop();
    k.stop();
}
