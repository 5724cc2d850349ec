//! SIPp's built-in scenarios against the softphone directly (no proxy, no
//! registration).

use std::time::Duration;

use webphone_interop::flows::{call_record, expect_connected, start_cli, WAIT};
use webphone_interop::{
    assert_tone, free_port, require_tools, serial, Params, Sipp, TestDir, CLI_TONE_HZ, SIPP,
};

#[test]
fn sipp_uac_calls_the_softphone_directly() {
    let _serial = serial();
    if !require_tools("sipp_uac", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("sipp_uac");
    let port = free_port();
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("autoaccept", "true")
        .set("loglevel", "5")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let mark = cli.mark();
    // one call, held 2 s, BYE from SIPp
    let mut uac = Sipp::uac(dir.path(), &format!("127.0.0.1:{port}"), "1001", 2000);
    uac.assert_success(WAIT + Duration::from_secs(10));
    let (cdr, oncdr) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 2, "SIPp hung up: {cdr:?}");
    assert_eq!(
        webphone_interop::flows::json_i64(&oncdr[4]),
        Some(2),
        "incoming call: {oncdr:?}"
    );
    cli.quit();
}

#[test]
fn softphone_calls_sipp_uas_directly() {
    let _serial = serial();
    if !require_tools("sipp_uas", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("sipp_uas");
    let mut uas = Sipp::uas(dir.path());
    let (params, cli_rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("loglevel", "5")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_secs(3));
    let mark = cli.mark();
    cli.api_ok("hangup");
    // the uas scenario ends with the BYE it receives
    uas.assert_success(WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "the softphone hung up: {cdr:?}");
    // SIPp runs with -rtp_echo: the softphone hears its own tone back
    assert_tone(
        &cli_rec,
        CLI_TONE_HZ,
        -30.0,
        "softphone hearing SIPp's echo",
    );
    cli.quit();
}

/// SIPp's uas without RTP echo sends no media at all: with `mediatimeout` 2 s the softphone
/// ends the call itself (BYE) and says why in the call record.
#[test]
fn silent_peer_is_hung_up_after_the_media_timeout() {
    let _serial = serial();
    if !require_tools("sipp_uas_silent", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("sipp_uas_silent");
    let mut uas = Sipp::start(
        dir.path(),
        webphone_interop::sipp::Scenario::Builtin("uas"),
        None,
        &[],
    );
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("mediatimeout", "2")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let mark = cli.mark();
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "the softphone hung up: {cdr:?}");
    assert!(
        cdr.reason.contains("media timeout"),
        "reason names the media timeout: {cdr:?}"
    );
    uas.assert_success(WAIT);
    cli.quit();
}
