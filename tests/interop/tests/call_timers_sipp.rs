//! The call timers against SIPp (milliseconds, catalog units): `ringtimeoutin` ends an
//! unanswered incoming call with 480 after it rang (`peers/divert-uac-ring-480.xml`),
//! `ringtimeoutout` CANCELs our unanswered call (`peers/sipp-uas-ring-cancel.xml`), and
//! `calltimeout` ends a connected call with a BYE (SIPp's `uas`), each after its time and
//! not before.

use std::time::{Duration, Instant};

use webphone_interop::flows::{call_record, expect_connected, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::{free_port, require_tools, serial, Cli, Params, Sipp, TestDir, SIPP};

fn softphone(dir: &TestDir, port: u16, extra: &[(&str, &str)]) -> Cli {
    let mut p = Params::direct("1001", port);
    for (k, v) in extra {
        p = p.set(k, *v);
    }
    start_cli(dir, &p.with_file_audio(dir).0)
}

#[test]
fn ring_timeouts_end_unanswered_calls_both_ways() {
    let _serial = serial();
    if !require_tools("call_timers_ring", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("call_timers_ring");
    let port = free_port();
    let mut cli = softphone(
        &dir,
        port,
        &[("ringtimeoutin", "2000"), ("ringtimeoutout", "2000")],
    );

    // Incoming: it rings, then SIPp gets 480 (the scenario fails on anything else).
    let mark = cli.mark();
    let t = Instant::now();
    let mut caller = Sipp::start(
        dir.path(),
        Scenario::File("divert-uac-ring-480.xml"),
        Some(&format!("127.0.0.1:{port}")),
        &["-s", "1001"],
    );
    caller.assert_success(WAIT);
    let took = t.elapsed();
    assert!(
        cli.lines()
            .iter()
            .skip(mark)
            .any(|l| l.contains(",Ringing,")),
        "the call rang first"
    );
    assert!(
        took >= Duration::from_millis(1800),
        "480 after the ring timeout, not before: {took:?}"
    );

    // Outgoing: SIPp rings forever; we CANCEL after 2 s (the scenario checks CANCEL/487/ACK).
    let mut callee = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-ring-cancel.xml"),
        None,
        &[],
    );
    let t = Instant::now();
    cli.api_ok(&format!("call sip:1002@127.0.0.1:{}", callee.port()));
    callee.assert_success(WAIT);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "CANCEL after the ring timeout, not before: {took:?}"
    );
    cli.quit();
}

#[test]
fn call_timeout_hangs_up_a_connected_call() {
    let _serial = serial();
    if !require_tools("call_timers_limit", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("call_timers_limit");
    let mut uas = Sipp::uas(dir.path());
    let mut cli = softphone(&dir, free_port(), &[("calltimeout", "2000")]);
    let mark = cli.mark();
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    // SIPp's uas ends with the BYE it receives.
    uas.assert_success(WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "we hung up: {cdr:?}");
    assert!(
        (1500..4000).contains(&cdr.duration_ms),
        "the call lasted about calltimeout: {cdr:?}"
    );
    cli.quit();
}
