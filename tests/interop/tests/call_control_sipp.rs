//! Small call-control rules of issue 6, each seen by SIPp on loopback:
//!
//! - Dialling `123,456` (api `call`): the INVITE is for 123 only, and once the callee answered
//!   the suffix goes out as DTMF, checked digit by digit by SIPp (SIP INFO, `dtmfmode=1`,
//!   `peers/sipp-uas-dtmf-suffix.xml`).
//! - `disablesamecall`: a second call to a number already in call is refused with "Already in
//!   call with ..." and nothing reaches SIPp; with `disablesamecall=0` the second call goes out.
//! - `holdtype`: the hold re-INVITE offers `a=recvonly` (3), `a=inactive` (4), `a=sendonly`
//!   (-1, auto = 2), resume offers `a=sendrecv`; with -2 and 0 `hold` is refused and sends
//!   nothing (`peers/sipp-uas-holdtypes.xml` checks each offer's direction in order).
//! - `transfertype` 1 (blind): REFER without hold, BYE once it is accepted, no waiting for
//!   NOTIFYs (`peers/sipp-uas-refer-blind.xml`); 6 (unattended with hold) when the transfer
//!   fails (sipfrag 486): the call is taken off hold and goes on
//!   (`peers/sipp-uas-refer-fails.xml`). The successful default (-1) flow is
//!   `sipp_session_rules::sipp_refer_progress_in_sipfrag_notify`.
//! - `bargeinheader`: an INVITE with the configured header line, during a call, is answered
//!   without ringing and joined to a conference with that call.

use std::time::Duration;

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::util::wait_for;
use webphone_interop::{
    free_port, require_tools, serial, Cli, Params, Sipp, Status, TestDir, SIPP,
};

/// The softphone with `sipp` as its server (no registration), audio through files.
fn softphone_via(dir: &TestDir, sipp: &Sipp, extra: &[(&str, &str)]) -> Cli {
    let mut p = Params::direct("1001", free_port())
        .set("serveraddress", format!("127.0.0.1:{}", sipp.port()));
    for (k, v) in extra {
        p = p.set(k, *v);
    }
    start_cli(dir, &p.with_file_audio(dir).0)
}

/// How many requests SIPp received whose start line begins with `start` (e.g. `INFO sip:`).
fn requests_seen(sipp: &Sipp, start: &str) -> usize {
    sipp.messages()
        .lines()
        .filter(|l| l.starts_with(start))
        .count()
}

#[test]
fn dialled_dtmf_suffix_reaches_the_callee_as_digits_after_the_answer() {
    let _serial = serial();
    if !require_tools("dtmf_suffix_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("dtmf_suffix_sipp");
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-dtmf-suffix.xml"),
        None,
        &[],
    );
    let mut cli = softphone_via(&dir, &callee, &[("dtmfmode", "1")]);
    cli.api_ok("call 123,456");
    expect_connected(&mut cli);
    let digits = wait_for(WAIT, || {
        let n = requests_seen(&callee, "INFO sip:");
        (n >= 3).then_some(n)
    });
    assert_eq!(
        digits,
        Some(3),
        "SIPp got every digit of the suffix:\n{}",
        callee.messages()
    );
    cli.api_ok("hangup");
    // SIPp checked the Request-URI (123, no suffix) and Signal=4, 5, 6 in that order.
    callee.assert_success(WAIT);
    cli.quit();
}

#[test]
fn second_call_to_the_same_number_is_refused_unless_disablesamecall_is_off() {
    let _serial = serial();
    if !require_tools("disablesamecall_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("disablesamecall_sipp");
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::Builtin("uas"),
        None,
        &["-rtp_echo", "-m", "2"],
    );
    let mut cli = softphone_via(&dir, &callee, &[]);
    assert_eq!(cli.api_ok("call 1002"), "1");
    expect_connected(&mut cli);
    let refused = cli.api("call 1002", Duration::from_secs(10));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("Already in call with 1002")),
        "default disablesamecall=1 refuses the duplicate: {refused:?}"
    );
    assert_eq!(
        requests_seen(&callee, "INVITE sip:1002@"),
        1,
        "the refused call sent nothing:\n{}",
        callee.messages()
    );

    cli.api_ok("setparameter disablesamecall 0");
    let mark = cli.mark();
    assert_eq!(cli.api_ok("call 1002"), "2", "allowed: a second line");
    cli.expect_after(
        mark,
        |l| Status::parse(l).is_some_and(|s| s.line == 2 && s.text == "CallConnect"),
        WAIT,
    );
    assert_eq!(requests_seen(&callee, "INVITE sip:1002@"), 2);
    cli.api_ok("hangup -2");
    callee.assert_success(WAIT);
    cli.quit();
}

/// `hold(state)` and waits until `isonhold` follows (it changes when the answer arrives).
fn hold(cli: &mut Cli, state: bool) {
    cli.api_ok(&format!("hold {state}"));
    let followed = wait_for(WAIT, || {
        (cli.api_ok("isonhold") == state.to_string()).then_some(())
    });
    assert!(followed.is_some(), "isonhold never became {state}");
}

#[test]
fn hold_offers_the_direction_of_holdtype_and_switched_off_hold_sends_nothing() {
    let _serial = serial();
    if !require_tools("holdtype_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("holdtype_sipp");
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-holdtypes.xml"),
        None,
        &[],
    );
    let mut cli = softphone_via(&dir, &callee, &[("holdtype", "3")]);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    hold(&mut cli, true);
    hold(&mut cli, false);
    for off in ["-2", "0"] {
        cli.api_ok(&format!("setparameter holdtype {off}"));
        let refused = cli.api("hold true", Duration::from_secs(10));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("hold is switched off")),
            "holdtype {off}: {refused:?}"
        );
        assert_eq!(cli.api_ok("isonhold"), "false");
    }
    for on in ["4", "-1"] {
        cli.api_ok(&format!("setparameter holdtype {on}"));
        hold(&mut cli, true);
        hold(&mut cli, false);
    }
    // 1 INVITE + 6 re-INVITEs, none for the refused holds.
    assert_eq!(requests_seen(&callee, "INVITE sip:"), 7);
    cli.api_ok("hangup");
    callee.assert_success(WAIT);
    cli.quit();
}

#[test]
fn blind_transfer_refers_without_hold_and_hangs_up_without_waiting_for_the_outcome() {
    let _serial = serial();
    if !require_tools("transfer_blind_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("transfer_blind_sipp");
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-refer-blind.xml"),
        None,
        &[],
    );
    let mut cli = softphone_via(&dir, &callee, &[("transfertype", "1")]);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    let mark = cli.mark();
    cli.api_ok("transfer 1003");
    // SIPp checked: REFER to 1003 with no re-INVITE before it, then our BYE (it sends no
    // NOTIFY, so the BYE did not wait for the transfer's outcome; it waited for the 202 only,
    // so it never overtakes the REFER).
    callee.assert_success(WAIT);
    cli.expect_after(
        mark,
        |l| Status::parse(l).is_some_and(|s| s.line == 1 && s.text == "Finished"),
        WAIT,
    );
    assert_eq!(
        requests_seen(&callee, "INVITE sip:"),
        1,
        "no hold re-INVITE"
    );
    cli.quit();
}

#[test]
fn failed_unattended_transfer_resumes_the_held_call() {
    let _serial = serial();
    if !require_tools("transfer_fails_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("transfer_fails_sipp");
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-refer-fails.xml"),
        None,
        &[],
    );
    let mut cli = softphone_via(&dir, &callee, &[("transfertype", "6")]);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    let mark = cli.mark();
    cli.api_ok("transfer 1003");
    // Held for the transfer, then back off hold once the sipfrag reports 486.
    let resumed = wait_for(WAIT, || {
        (requests_seen(&callee, "INVITE sip:") >= 3 && cli.api_ok("isonhold") == "false")
            .then_some(())
    });
    assert!(
        resumed.is_some(),
        "hold, REFER, 486, resume:\n{}",
        callee.messages()
    );
    cli.expect_after(
        mark,
        |l| l.contains("Transfer failed (486); the call goes on"),
        WAIT,
    );
    let ended = cli.seen(|l| Status::parse(l).is_some_and(|s| s.line == 1 && s.text == "Finished"));
    assert!(ended.is_empty(), "the call goes on: {ended:?}");
    cli.api_ok("hangup");
    callee.assert_success(WAIT);
    cli.quit();
}

#[test]
fn barge_in_header_is_answered_without_ringing_and_joins_the_call_in_progress() {
    let _serial = serial();
    if !require_tools("bargein_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("bargein_sipp");
    let mut callee = Sipp::uas(dir.path());
    let port = free_port();
    let (params, _rec) = Params::direct("1001", port)
        .set("bargeinheader", "X-barge: yes")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call sip:1002@127.0.0.1:{}", callee.port()));
    expect_connected(&mut cli);
    let mark = cli.mark();
    // The supervisor's INVITE carries the configured header line; SIPp fails unless the
    // softphone answers by itself (nobody accepts here). It hangs up 500 ms later.
    let mut supervisor = Sipp::start(
        dir.path(),
        Scenario::File("divert-uac-auto-answer.xml"),
        Some(&format!("127.0.0.1:{port}")),
        &[
            "-s",
            "1001",
            "-key",
            "aa_header",
            "X-barge",
            "-key",
            "aa_value",
            "yes",
        ],
    );
    supervisor.assert_success(WAIT);
    cli.expect_after(
        mark,
        |l| l.contains("barge-in on line 2: conference with lines [1]"),
        WAIT,
    );
    let shown: Vec<String> = cli
        .seen(|l| {
            Status::parse(l)
                .is_some_and(|s| s.line == 2 && ["CallSetup", "Ringing"].contains(&s.text.as_str()))
                || l.contains("\"callRinging\",2,")
        })
        .into_iter()
        .collect();
    assert!(shown.is_empty(), "a barge-in never rings: {shown:?}");
    cli.api_ok("hangup 1");
    callee.assert_success(WAIT);
    cli.quit();
}
