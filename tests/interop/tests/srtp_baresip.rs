//! SRTP with SDES (RFC 4568) against baresip's `srtp` media-encryption module: the softphone
//! (`-p mediaencryption=2`, SRTP required) calls a baresip account with `mediaenc=srtp-mand`
//! (baresip refuses unencrypted media with 488), directly on loopback without a registrar;
//! audio must be heard both ways and baresip must log the SRTP keying.
//!
//! Needs the engine's mapping of `mediaencryption` to `MediaOffer::with_srtp` (2 -> Required).

use std::time::{Duration, Instant};

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::{
    assert_tone, require_tools, serial, Baresip, BaresipOpts, Params, TestDir, BARESIP, CLI_TONE_HZ,
};

const TALK: Duration = Duration::from_secs(4);

#[test]
fn srtp_sdes_call_to_baresip_with_mandatory_srtp_has_audio_both_ways() {
    let name = "srtp_baresip";
    let _serial = serial();
    if !require_tools(name, &[BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    // baresip without a registrar; the SRTP account is added at run time because the srtp
    // module must be loaded before an account can name it.
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            proxy_port: None,
            ..BaresipOpts::default()
        },
    );
    let r = bs.command("insmod srtp");
    let log = bs.log();
    assert!(
        r.ok || log.contains("srtp"),
        "baresip could not load its srtp module: {r:?}\n{}",
        bs.log_tail(20)
    );
    let port = bs.sip_port();
    bs.command(&format!(
        "uanew <sip:1003@127.0.0.1:{port};transport=udp>;mediaenc=srtp-mand;answermode=auto;regint=0;audio_codecs=PCMU,PCMA"
    ));

    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("mediaencryption", "2")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call sip:1003@127.0.0.1:{port}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();
    if let Some(rest) = TALK.checked_sub(connected.elapsed()) {
        std::thread::sleep(rest);
    }
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);

    // baresip keyed SRTP from our a=crypto (its srtp module logs the suite it uses).
    let log = bs.log();
    assert!(
        log.contains("AES_CM_128_HMAC_SHA1") || log.contains("AEAD_AES_128_GCM"),
        "baresip did not set up SRTP; log tail:\n{}",
        bs.log_tail(40)
    );
    assert_tone(
        &cli_rec,
        bs.tone_hz(),
        -30.0,
        "softphone hearing baresip over SRTP",
    );
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        "baresip hearing the softphone over SRTP",
    );
    cli.quit();
}
