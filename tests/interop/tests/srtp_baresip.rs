//! SRTP with SDES (RFC 4568) against baresip's `srtp` media-encryption module: the softphone
//! (`-p mediaencryption=2`, SRTP required) calls a baresip account with `mediaenc=srtp-mand`
//! (baresip refuses unencrypted media with 488), directly on loopback without a registrar;
//! audio must be heard both ways and baresip must log the SRTP keying.
//!
//! Needs the engine's mapping of `mediaencryption` to `MediaOffer::with_srtp` (2 -> Required).
//!
//! The other direction (issue 9: SRTP is negotiated whenever the peer offers it): baresip
//! calls the softphone with SDES offers, `mediaenc=srtp-mand` (`RTP/SAVP`) and `mediaenc=srtp`
//! (best effort: `RTP/AVP` with `a=crypto`, RFC 8643); the default `mediaencryption` answers
//! both with SRTP (`isencrypted` 2, audio both ways, baresip keys SRTP), and
//! `mediaencryption=0` refuses the mandatory offer with 488 (RFC 3264 §6) and a CDR naming it.

use std::time::{Duration, Instant};

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::{
    assert_tone, free_port, require_tools, serial, Baresip, BaresipOpts, Params, TestDir, BARESIP,
    CLI_TONE_HZ,
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

/// baresip (no registrar) with its `srtp` module and an auto-answering account 1003 using
/// `mediaenc`; returns baresip.
fn baresip_with_sdes_account(dir: &TestDir, mediaenc: &str) -> Baresip {
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            proxy_port: None,
            ..BaresipOpts::default()
        },
    );
    let r = bs.command("insmod srtp");
    assert!(
        r.ok || bs.log().contains("srtp"),
        "baresip could not load its srtp module: {r:?}\n{}",
        bs.log_tail(20)
    );
    let port = bs.sip_port();
    bs.command(&format!(
        "uanew <sip:1003@127.0.0.1:{port};transport=udp>;mediaenc={mediaenc};answermode=auto;regint=0;audio_codecs=PCMU"
    ));
    bs.command(&format!("uafind sip:1003@127.0.0.1:{port}"));
    bs
}

/// The softphone without a registrar on a free UDP port (returned), auto-answering, with
/// `mediaencryption` (None: the default).
fn answering_cli_params(mediaencryption: Option<&str>) -> (Params, u16) {
    let sip = free_port();
    let mut params = Params::new()
        .set("loglevel", "5")
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", sip)
        .set("codec", "PCMU")
        .set("autoaccept", "true");
    if let Some(m) = mediaencryption {
        params = params.set("mediaencryption", m);
    }
    (params, sip)
}

fn sdes_offer_from_baresip_is_answered_with_srtp(mediaenc: &str) {
    let name = format!("srtp_from_baresip_{}", mediaenc.replace('-', "_"));
    let _serial = serial();
    if !require_tools(&name, &[BARESIP]) {
        return;
    }
    let dir = TestDir::new(&name);
    let mut bs = baresip_with_sdes_account(&dir, mediaenc);
    let (params, sip) = answering_cli_params(None);
    let (params, cli_rec) = params.with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    bs.dial(&format!("sip:1001@127.0.0.1:{sip}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let enc = cli.api_ok("isencrypted");
    assert!(
        enc.trim().ends_with('2'),
        "{mediaenc}: isencrypted must say 2 (encrypted), got {enc:?}"
    );
    if let Some(rest) = TALK.checked_sub(connected.elapsed()) {
        std::thread::sleep(rest);
    }
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let log = bs.log();
    assert!(
        log.contains("AES_CM_128_HMAC_SHA1") || log.contains("AEAD_AES_128_GCM"),
        "{mediaenc}: baresip did not set up SRTP; log tail:\n{}",
        bs.log_tail(40)
    );
    assert_tone(
        &cli_rec,
        bs.tone_hz(),
        -30.0,
        &format!("{mediaenc}: softphone hearing baresip over SRTP"),
    );
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        &format!("{mediaenc}: baresip hearing the softphone over SRTP"),
    );
    cli.quit();
}

#[test]
fn mandatory_sdes_offer_from_baresip_is_answered_with_srtp_by_default() {
    sdes_offer_from_baresip_is_answered_with_srtp("srtp-mand");
}

#[test]
fn best_effort_sdes_offer_from_baresip_is_answered_with_srtp_by_default() {
    sdes_offer_from_baresip_is_answered_with_srtp("srtp");
}

#[test]
fn mediaencryption_0_refuses_a_mandatory_sdes_offer_with_488() {
    let name = "srtp_refused_mediaencryption_0";
    let _serial = serial();
    if !require_tools(name, &[BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut bs = baresip_with_sdes_account(&dir, "srtp-mand");
    let (params, sip) = answering_cli_params(Some("0"));
    let mut cli = start_cli(&dir, &params);
    bs.dial(&format!("sip:1001@127.0.0.1:{sip}"));
    let closed = bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    assert!(
        closed.to_string().contains("488"),
        "baresip's call must end with 488: {closed}"
    );
    // Never answered (the engine does announce the incoming call before it checks the
    // offer: `STATUS,1,Ringing` shows briefly, no 180 goes out); the record names the 488.
    let connected = cli.seen(|l| l.contains(",CallConnect,") || l.contains(",InCall,"));
    assert!(
        connected.is_empty(),
        "the refused call connected: {connected:?}"
    );
    let cdr = cli.expect_cdr(WAIT);
    assert!(cdr.reason.contains("488"), "{cdr:?}");
    assert!(cli.try_status().is_none(), "the softphone exited");
    cli.quit();
}
