//! The session rules of a SIP user agent, each against a SIPp scenario of ours
//! (`tests/interop/peers/sipp-*.xml`), with `webphone-cli` as the softphone on loopback.
//!
//! Every test asserts what SIPp saw (the scenario checks the messages it receives with
//! `check_it` regexps and exits 0 only when all of them matched, in order) and the
//! softphone's notification strings (STATUS, CDR, EVENT lines).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use webphone_interop::cli::{Cli, Status};
use webphone_interop::flows::{call_record, expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::util::wait_for;
use webphone_interop::{free_port, require_tools, serial, Params, Sipp, TestDir, SIPP};

/// Softphone without registration, auto-answering, on `port` (UDP).
fn direct(dir: &TestDir, port: u16) -> (Params, PathBuf) {
    Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("autoaccept", "true")
        .set("loglevel", "5")
        .with_file_audio(dir)
}

/// The softphone ([`direct`], changed by `tune`) is started, then SIPp (UAC) calls it with
/// `scenario`. Returns the CLI's output mark from before the call.
fn far_end_starts(
    dir: &TestDir,
    scenario: &str,
    tune: impl FnOnce(Params) -> Params,
) -> (Cli, Sipp, usize) {
    let port = free_port();
    let (params, _rec) = direct(dir, port);
    let cli = start_cli(dir, &tune(params));
    let mark = cli.mark();
    let sipp = Sipp::start(
        dir.path(),
        Scenario::File(scenario),
        Some(&format!("127.0.0.1:{port}")),
        &["-s", "1001"],
    );
    (cli, sipp, mark)
}

/// SIPp (UAC) calls the auto-answering softphone with `scenario`; SIPp hangs up.
fn far_end_calls(name: &str, scenario: &str) -> (TestDir, Cli, Sipp, usize) {
    let dir = TestDir::new(name);
    let (cli, mut sipp, mark) = far_end_starts(&dir, scenario, |p| p);
    sipp.assert_success(WAIT + Duration::from_secs(20));
    (dir, cli, sipp, mark)
}

/// The softphone calls SIPp (UAS) running `scenario`.
fn call_far_end(dir: &TestDir, scenario: &str) -> (Cli, Sipp) {
    let sipp = Sipp::start(dir.path(), Scenario::File(scenario), None, &[]);
    let (params, _rec) = direct(dir, free_port());
    let mut cli = start_cli(dir, &params);
    cli.api_ok(&format!("call sip:1002@127.0.0.1:{}", sipp.port()));
    (cli, sipp)
}

fn skip(test: &str) -> bool {
    !require_tools(test, &[SIPP])
}

/// The far end hung up a connected incoming call.
fn assert_remote_hangup(cli: &mut Cli, mark: usize) {
    let (cdr, _) = call_record(cli, mark);
    assert_eq!(cdr.disc_party, 2, "SIPp hung up: {cdr:?}");
    assert!(cdr.connect_ms >= 0, "the call was connected: {cdr:?}");
}

/// The far end put us on hold and resumed: `STATUS,<line>,Hold,...` with the hold field
/// (13th) 3 = "other party hold", then `InCall` with hold 0 again.
fn assert_far_end_hold_shown(cli: &Cli) {
    let states: Vec<(String, String)> = cli
        .seen(|l| Status::parse(l).is_some_and(|s| s.line >= 1))
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f.get(2).unwrap_or(&"").to_string(),
                f.get(12).unwrap_or(&"").to_string(),
            )
        })
        .collect();
    let held = states
        .iter()
        .position(|(t, h)| t == "Hold" && h == "3")
        .unwrap_or_else(|| panic!("no STATUS Hold with hold=3: {states:?}"));
    assert!(
        states[held..]
            .iter()
            .any(|(t, h)| t == "InCall" && h == "0"),
        "no InCall after the far end resumed: {states:?}"
    );
}

#[test]
fn sipp_reliable_183_is_pracked() {
    let _serial = serial();
    if skip("sipp_reliable_183_is_pracked") {
        return;
    }
    let dir = TestDir::new("sipp_prack");
    let (mut cli, mut sipp) = call_far_end(&dir, "sipp-uas-prack-183.xml");
    expect_connected(&mut cli);
    let mark = cli.mark();
    cli.api_ok("hangup");
    sipp.assert_success(WAIT);
    let log = sipp.messages();
    assert!(log.contains("PRACK sip:"), "SIPp got a PRACK:\n{log}");
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "we hung up: {cdr:?}");
    cli.quit();
}

#[test]
fn sipp_prack_with_an_unknown_rack_gets_481() {
    let _serial = serial();
    if skip("sipp_prack_with_an_unknown_rack_gets_481") {
        return;
    }
    let dir = TestDir::new("sipp_prack_481");
    // The phone rings (reliable 180) and is never answered: SIPp cancels.
    let (mut cli, mut sipp, mark) = far_end_starts(&dir, "sipp-uac-prack-481.xml", |p| {
        p.set("autoaccept", "false")
    });
    sipp.assert_success(WAIT + Duration::from_secs(10));
    let log = sipp.messages();
    // One 481 for the unknown RSeq, one for the right RSeq with another INVITE's CSeq.
    assert_eq!(
        log.matches("SIP/2.0 481").count(),
        2,
        "both PRACKs naming no provisional were answered 481:\n{log}"
    );
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(
        (cdr.duration_ms, cdr.disc_party),
        (0, 2),
        "SIPp cancelled before any answer: {cdr:?}"
    );
    cli.quit();
}

/// SIPp's `-trace_msg` log as (seconds of the day, "sent"/"received", first line) per message.
fn message_times(log: &str) -> Vec<(f64, bool, String)> {
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(l) = lines.next() {
        if !l.starts_with("-----") {
            continue;
        }
        // "----------------------------------------------- 2026-11-29 17:56:39.928164"
        let Some(clock) = l.split_whitespace().nth(2) else {
            continue;
        };
        let secs: Vec<f64> = clock.split(':').filter_map(|x| x.parse().ok()).collect();
        if secs.len() != 3 {
            continue;
        }
        let at = secs[0] * 3600.0 + secs[1] * 60.0 + secs[2];
        let Some(kind) = lines.next() else { break };
        let sent = kind.contains("message sent");
        // Skip the blank line, then the start line.
        let first = lines
            .by_ref()
            .find(|x| !x.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        out.push((at, sent, first));
    }
    out
}

#[test]
fn sipp_reinvite_glare_gets_491_and_the_retry_comes_within_two_seconds() {
    let _serial = serial();
    if skip("sipp_reinvite_glare_gets_491_and_the_retry_comes_within_two_seconds") {
        return;
    }
    let dir = TestDir::new("sipp_glare");
    let (mut cli, mut sipp, _) = far_end_starts(&dir, "sipp-uac-glare.xml", |p| p);
    expect_connected(&mut cli);
    cli.api_ok("hold true");
    sipp.assert_success(WAIT + Duration::from_secs(20));
    let log = sipp.messages();
    let msgs = message_times(&log);
    // RFC 3261 §14.2: SIPp's re-INVITE, crossing ours, was refused 491.
    assert!(
        msgs.iter()
            .any(|(_, sent, l)| !sent && l.starts_with("SIP/2.0 491")),
        "the softphone answered SIPp's re-INVITE 491:\n{log}"
    );
    // RFC 3261 §14.1: we did not generate the Call-ID, so the retry comes 0 to 2 s after
    // the 491 SIPp sent (the last INVITE it received).
    let refused = msgs
        .iter()
        .position(|(_, sent, l)| *sent && l.starts_with("SIP/2.0 491"))
        .unwrap_or_else(|| panic!("SIPp sent no 491:\n{log}"));
    let retry = msgs[refused..]
        .iter()
        .find(|(_, sent, l)| !sent && l.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no retry after the 491:\n{log}"));
    let gap = retry.0 - msgs[refused].0;
    eprintln!("re-INVITE retried {gap:.3} s after the 491");
    assert!(
        (0.0..=2.3).contains(&gap),
        "retry {gap:.3} s after the 491 (0..2 s for the side that does not own the Call-ID)"
    );
    cli.quit();
}

#[test]
fn sipp_update_from_the_far_end_is_answered() {
    let _serial = serial();
    if skip("sipp_update_from_the_far_end_is_answered") {
        return;
    }
    let (_dir, mut cli, _sipp, mark) = far_end_calls("sipp_update", "sipp-uac-update.xml");
    assert_far_end_hold_shown(&cli);
    assert_remote_hangup(&mut cli, mark);
    cli.quit();
}

#[test]
fn sipp_reinvite_hold_from_the_far_end_is_answered_recvonly() {
    let _serial = serial();
    if skip("sipp_reinvite_hold_from_the_far_end") {
        return;
    }
    let (_dir, mut cli, _sipp, mark) = far_end_calls("sipp_far_hold", "sipp-uac-reinvite-hold.xml");
    assert_far_end_hold_shown(&cli);
    assert_remote_hangup(&mut cli, mark);
    cli.quit();
}

#[test]
fn sipp_offerless_invite_gets_our_offer_in_200() {
    let _serial = serial();
    if skip("sipp_offerless_invite") {
        return;
    }
    let (_dir, mut cli, sipp, mark) = far_end_calls("sipp_offerless", "sipp-uac-offerless.xml");
    assert_remote_hangup(&mut cli, mark);
    let log = sipp.messages();
    assert!(log.contains("m=audio"), "our 200 carried the offer:\n{log}");
    cli.quit();
}

#[test]
fn sipp_forked_183s_keep_the_first_2xx_and_bye_the_other() {
    let _serial = serial();
    if skip("sipp_forked_183s") {
        return;
    }
    let dir = TestDir::new("sipp_fork");
    let (mut cli, mut sipp) = call_far_end(&dir, "sipp-uas-fork-two-183.xml");
    expect_connected(&mut cli);
    // The second branch's 200 follows our ACK of the first: hang up only once we have
    // sent forkB its BYE, so that the scenario's order (forkB's BYE, then ours) is the
    // engine's doing and not a race with the user's hang-up.
    wait_for(WAIT, || {
        sipp.messages().contains("BYE sip:b@").then_some(())
    })
    .unwrap_or_else(|| panic!("no BYE for the second branch:\n{}", sipp.messages()));
    let mark = cli.mark();
    cli.api_ok("hangup");
    // SIPp checks: ACK for forkA, ACK and BYE for forkB, then our BYE for forkA.
    sipp.assert_success(WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "we hung up: {cdr:?}");
    // One call only: a single CDR.
    let cdrs = cli.seen(|l| l.starts_with("CDR,"));
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    cli.quit();
}

#[test]
fn sipp_491_on_our_reinvite_is_retried_after_backoff() {
    let _serial = serial();
    if skip("sipp_491_retry") {
        return;
    }
    let dir = TestDir::new("sipp_491");
    let (mut cli, mut sipp) = call_far_end(&dir, "sipp-uas-reinvite-491.xml");
    expect_connected(&mut cli);
    cli.api_ok("hold true");
    // The retried re-INVITE is accepted: the line is on hold.
    cli.expect(
        |l| Status::parse(l).is_some_and(|s| s.line >= 1 && s.text == "Hold"),
        WAIT,
    );
    let mark = cli.mark();
    cli.api_ok("hangup");
    sipp.assert_success(WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "we hung up: {cdr:?}");
    cli.quit();
}

#[test]
fn sipp_cancel_crossing_200_is_acked_and_byed() {
    let _serial = serial();
    if skip("sipp_cancel_crossing_200") {
        return;
    }
    let dir = TestDir::new("sipp_cancel_200");
    let (mut cli, mut sipp) = call_far_end(&dir, "sipp-uas-cancel-crosses-200.xml");
    webphone_interop::flows::expect_ringing(&mut cli);
    let mark = cli.mark();
    cli.api_ok("hangup");
    // SIPp checks: the 2xx that crossed our CANCEL was ACKed, then a BYE came.
    sipp.assert_success(WAIT);
    let log = sipp.messages();
    assert!(log.contains("CANCEL sip:"), "{log}");
    assert!(log.contains("BYE sip:"), "{log}");
    // The user cancelled: the call record says so (we ended it, never connected for them).
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "we ended the call: {cdr:?}");
    cli.quit();
}

#[test]
fn sipp_refer_progress_in_sipfrag_notify() {
    let _serial = serial();
    if skip("sipp_refer_notify") {
        return;
    }
    let dir = TestDir::new("sipp_refer");
    let (mut cli, mut sipp) = call_far_end(&dir, "sipp-uas-refer-notify.xml");
    expect_connected(&mut cli);
    let mark = cli.mark();
    cli.api_ok("transfer sip:1003@127.0.0.1:5999");
    // SIPp checks: REFER to 1003, both NOTIFYs answered 200, then our BYE.
    sipp.assert_success(WAIT);
    cli.expect_after(mark, |l| l.contains("transfer completed"), WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    eprintln!("{cdr:?}");
    cli.quit();
}

/// Softphone registering with SIPp as the registrar.
fn register_with(dir: &TestDir, sipp: &Sipp, tcp: bool) -> Cli {
    let (params, _rec) = Params::new()
        .set("serveraddress", format!("127.0.0.1:{}", sipp.port()))
        .set("username", "1001")
        .set("password", "secret1001")
        .set("transport", if tcp { "1" } else { "0" })
        .set("register", "1")
        .set("keepaliveival", "0")
        .set("loglevel", "5")
        .with_file_audio(dir);
    start_cli(dir, &params)
}

/// The softphone registers over UDP with SIPp playing the registrar `scenario`; returns once
/// it is registered and the scenario has passed.
fn registered_by_sipp(dir: &TestDir, scenario: &'static str) -> (Cli, Sipp) {
    let mut sipp = Sipp::start(dir.path(), Scenario::File(scenario), None, &[]);
    let mut cli = register_with(dir, &sipp, false);
    expect_registered(&mut cli, 0);
    sipp.assert_success(WAIT);
    (cli, sipp)
}

#[test]
fn sipp_401_then_407_are_both_answered() {
    let _serial = serial();
    if skip("sipp_401_then_407") {
        return;
    }
    let dir = TestDir::new("sipp_401_407");
    let (mut cli, _sipp) = registered_by_sipp(&dir, "sipp-registrar-401-407.xml");
    cli.quit();
}

/// RFC 3327: a registrar behind an edge proxy that records itself with Path. SIPp takes
/// the REGISTER only with `Supported: path` (as an edge in strict mode does) and answers
/// with a Path header; the phone is registered.
#[test]
fn sipp_registrar_behind_a_path_edge_gets_supported_path() {
    let _serial = serial();
    if skip("sipp_path") {
        return;
    }
    let dir = TestDir::new("sipp_path");
    let (mut cli, sipp) = registered_by_sipp(&dir, "sipp-registrar-path.xml");
    let log = sipp.messages();
    assert!(log.contains("Supported: path"), "{log}");
    cli.quit();
}

#[test]
fn sipp_stale_nonce_is_retried_without_the_user() {
    let _serial = serial();
    if skip("sipp_stale_nonce") {
        return;
    }
    let dir = TestDir::new("sipp_stale");
    let (mut cli, _sipp) = registered_by_sipp(&dir, "sipp-registrar-stale-nonce.xml");
    let failed = cli.seen(|l| l.contains("Register failed") || l.contains("onRegisterFailed"));
    assert!(failed.is_empty(), "a stale nonce is no failure: {failed:?}");
    cli.quit();
}

#[test]
fn sipp_tcp_connection_loss_triggers_reregistration() {
    let _serial = serial();
    if skip("sipp_tcp_reregistration") {
        return;
    }
    let dir = TestDir::new("sipp_tcp_rereg");
    let port = free_port();
    let mut first = Sipp::start_on(
        dir.path(),
        Scenario::File("sipp-registrar-once.xml"),
        None,
        &[],
        Some(port),
        true,
    );
    let mut cli = register_with(&dir, &first, true);
    expect_registered(&mut cli, 0);
    // The registrar goes away with its connection...
    first.assert_success(WAIT);
    // ... and comes back on the same port: the softphone registers again on its own.
    let mut second = Sipp::start_on(
        dir.path(),
        Scenario::File("sipp-registrar-once.xml"),
        None,
        &[],
        Some(port),
        true,
    );
    second.assert_success(WAIT + Duration::from_secs(40));
    let log = second.messages();
    assert!(log.contains("REGISTER sip:"), "{log}");
    cli.quit();
}
