//! Calls that never connect: the caller cancels before the answer, the callee
//! rejects.

use std::time::Duration;

use webphone_interop::flows::{
    call_record, expect_incoming, expect_registered, expect_ringing, start_cli, WAIT,
};
use webphone_interop::{
    require_tools, serial, AnswerMode, Baresip, BaresipOpts, Cdr, Kamailio, Params, Scenario, Sipp,
    TestDir, Transport, BARESIP, KAMAILIO, KAMCMD, SIPP,
};

fn assert_cancelled(cdr: &Cdr, oncdr: &[serde_json::Value]) {
    let ctx = format!("{cdr:?} / onCdr {oncdr:?}");
    assert_eq!(
        cdr.duration_ms, 0,
        "a call never connected lasts 0 ms: {ctx}"
    );
    assert_eq!(cdr.disc_party, 1, "the softphone cancelled: {ctx}");
    assert!(
        cdr.reason.to_ascii_lowercase().contains("cancel"),
        "reason should say cancelled: {ctx}"
    );
}

#[test]
fn softphone_cancels_a_call_to_baresip_before_answer() {
    let _serial = serial();
    if !require_tools("cancel_before_answer", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("cancel_baresip");
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            answer: AnswerMode::Manual,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    cli.api_ok("call 1002");
    bs.wait_event("CALL_INCOMING", |_| true, WAIT);
    expect_ringing(&mut cli);
    std::thread::sleep(Duration::from_secs(1));
    let mark = cli.mark();
    cli.api_ok("hangup");

    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    assert!(
        !bs.has_event("CALL_ESTABLISHED"),
        "baresip connected a cancelled call: {:?}",
        bs.event_types()
    );
    kam.wait_lines(&["REQ CANCEL", "from udp:"], 1, WAIT);
    let (cdr, oncdr) = call_record(&mut cli, mark);
    assert_cancelled(&cdr, &oncdr);
    assert!(cdr.caller.contains("1001"), "caller: {cdr:?}");
    cli.quit();
}

#[test]
fn softphone_cancels_a_call_to_a_ringing_sipp() {
    let _serial = serial();
    if !require_tools("cancel_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("cancel_sipp");
    let mut uas = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-ring-cancel.xml"),
        None,
        &[],
    );
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("loglevel", "5")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_ringing(&mut cli);
    std::thread::sleep(Duration::from_millis(500));
    let mark = cli.mark();
    cli.api_ok("hangup");
    // SIPp exits 0 only after CANCEL -> 200 + 487 -> ACK
    uas.assert_success(WAIT);
    let (cdr, oncdr) = call_record(&mut cli, mark);
    assert_cancelled(&cdr, &oncdr);
    cli.quit();
}

#[test]
fn softphone_rejects_an_incoming_call_with_486() {
    let _serial = serial();
    if !require_tools("reject", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("reject");
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autoaccept", "false");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    kam.wait_registered("1001", WAIT);

    bs.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    expect_incoming(&mut cli);
    bs.wait_event("CALL_RINGING", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("reject");

    let closed = bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let why = closed
        .get("param")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        why.contains("486"),
        "baresip's call should end with 486 Busy Here, got {why:?}"
    );
    assert!(
        !bs.has_event("CALL_ESTABLISHED"),
        "a rejected call connected: {:?}",
        bs.event_types()
    );
    kam.wait_lines(&["REPLY 486", "for INVITE"], 1, WAIT);
    cli.quit();
}
