//! The softphone (1001) calls baresip (1002, auto-answer) through Kamailio:
//! audio both ways, a DTMF digit, hang-up from the softphone, the call record.

use std::time::{Duration, Instant};

use webphone_interop::flows::{
    assert_connected_cdr, call_record, expect_connected, expect_registered, start_cli, WAIT,
};
use webphone_interop::{
    assert_tone, require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport,
    BARESIP, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

/// How long the test keeps the call up with audio flowing.
const TALK: Duration = Duration::from_secs(4);

fn calls_baresip(name: &str, transport: Transport) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, cli_rec) = Params::account(&kam, "1001", transport).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();

    // a DTMF digit (RFC 4733) reaches baresip
    std::thread::sleep(Duration::from_millis(1000));
    cli.api_ok("dtmf 5");
    bs.wait_event("CALL_DTMF_START", |k| k == "5", WAIT);

    // ~4 s of audio, then the softphone hangs up
    if let Some(rest) = TALK.checked_sub(connected.elapsed()) {
        std::thread::sleep(rest);
    }
    let held = connected.elapsed();
    let mark = cli.mark();
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let (cdr, oncdr) = call_record(&mut cli, mark);
    assert_connected_cdr(&cdr, &oncdr, "1001", "1002", 1, 1, held);

    // signalling went through the proxy on the chosen transport
    let from = format!("from {}:127.0.0.1:", transport.kamailio_proto());
    kam.wait_lines(&["CHALLENGE INVITE", &from, "user=1001"], 1, WAIT);
    kam.wait_lines(&["AUTHORIZED INVITE", "auth=1001", &from], 1, WAIT);
    kam.wait_lines(&["REQ BYE", &from], 1, WAIT);

    // each side heard the other's tone
    assert_tone(&cli_rec, bs.tone_hz(), -30.0, "softphone hearing baresip");
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        "baresip hearing the softphone",
    );
    assert_eq!(bs.dtmf_received(), "5", "DTMF keys seen by baresip");
    cli.quit();
}

#[test]
fn calls_baresip_through_kamailio_over_udp() {
    calls_baresip("call_to_baresip_udp", Transport::Udp);
}

#[test]
fn calls_baresip_through_kamailio_over_tcp() {
    calls_baresip("call_to_baresip_tcp", Transport::Tcp);
}
