//! Attended transfer (transfertype 5) through Kamailio: the softphone (1001) talks to baresip
//! 1002, `transfer("1003")` holds 1002 and calls 1003 (consultation), `hangup()` on the
//! consultation line sends the REFER, after which 1002 and 1003 are connected to each other
//! and both of our lines are gone. A consultation call that fails resumes the first call.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, AnswerMode, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport,
    BARESIP, KAMAILIO, KAMCMD,
};

fn setup(name: &str, c_answer: AnswerMode) -> Option<(TestDir, Kamailio, Baresip, Baresip)> {
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return None;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let b = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let c = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            tone_hz: 1700.0,
            answer: c_answer,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    Some((dir, kam, b, c))
}

#[test]
fn attended_transfer_with_replaces_connects_the_two_parties() {
    attended("transfer_attended_replaces", "1");
}

#[test]
fn attended_transfer_with_a_plain_refer_connects_the_two_parties() {
    attended("transfer_attended_plain", "0");
}

/// Waits until two calls have ended (two CDRs) since `mark`: a completed transfer ends both
/// of our lines.
fn expect_both_lines_end(cli: &webphone_interop::Cli, mark: usize) {
    webphone_interop::util::wait_for(WAIT, || {
        let cdrs = cli.lines()[mark..]
            .iter()
            .filter(|l| l.starts_with("CDR,"))
            .count();
        (cdrs >= 2).then_some(())
    })
    .unwrap_or_else(|| panic!("both lines must end; output:\n{}", cli.lines().join("\n")));
}

/// `transfwithreplace` 1: the REFER's Refer-To carries Replaces naming the consultation
/// dialog; 0: a plain REFER to the target, then our consultation leg ends.
fn attended(name: &str, transfwithreplace: &str) {
    let _serial = serial();
    let Some((dir, mut kam, mut b, mut c)) = setup(name, AnswerMode::Auto) else {
        return;
    };
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params
        .set("transfertype", "5")
        .set("transfwithreplace", transfwithreplace);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));

    // Consultation: 1002 is put on hold (re-INVITE seen by Kamailio), 1003 is called.
    let consult = cli.api_ok("transfer 1003");
    assert_eq!(consult.trim(), "2", "the consultation call is on line 2");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1001"), WAIT);
    kam.wait_lines(&["REQ INVITE", "user=1001"], 2, WAIT);
    std::thread::sleep(Duration::from_millis(500));

    // Hanging up the consultation line completes the transfer: 1002 calls 1003.
    let mark = cli.mark();
    cli.api_ok("hangup");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1002"), WAIT);
    b.wait_event("CALL_ESTABLISHED", |p| p.contains("1003"), WAIT);
    // Which REFER went out, as Kamailio saw it (RFC 3891 §3: Replaces rides in the Refer-To
    // URI as an escaped header). With Replaces the Refer-To is 1003's Contact, so 1002's
    // INVITE goes straight there, past the proxy.
    let refer = kam
        .wait_lines(&["REQ REFER ", "refer-to=<"], 1, WAIT)
        .join("\n");
    let replaces_in_refer_to = refer.to_ascii_lowercase().contains("?replaces=");
    assert!(
        refer.contains("refer-to=<sip:1003"),
        "the REFER sends 1002 to 1003: {refer}"
    );
    if transfwithreplace == "1" {
        assert!(replaces_in_refer_to, "Refer-To with Replaces: {refer}");
    } else {
        assert!(!replaces_in_refer_to, "a plain Refer-To: {refer}");
    }
    // Both of our legs end (the first by the transfer's NOTIFY 200).
    cli.expect_after(mark, |l| l.starts_with("CDR,") || l.contains("onCdr"), WAIT);
    expect_both_lines_end(&cli, mark);
    cli.quit();
}

#[test]
fn failed_consultation_resumes_the_first_call() {
    let _serial = serial();
    let Some((dir, kam, mut b, _c)) = setup("transfer_consult_fails", AnswerMode::Manual) else {
        return;
    };
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("transfertype", "5");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let mark = cli.mark();
    cli.api_ok("transfer 1003");
    // 1003 rings (manual answer); we give up on the consultation before it answers.
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hangup 2");
    // Line 1 is taken off hold again: a resume re-INVITE and the InCall state.
    cli.expect_after(mark, |l| l.contains("The transfer did not complete"), WAIT);
    webphone_interop::util::wait_for(WAIT, || {
        kam.script_lines()
            .iter()
            .filter(|l| l.contains("REQ INVITE") && l.contains("user=1001"))
            .count()
            .ge(&3)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("hold, consultation and resume INVITEs expected"));
    webphone_interop::util::wait_for(WAIT, || {
        cli.api_ok("isonhold").contains("false").then_some(())
    })
    .unwrap_or_else(|| panic!("line 1 must be resumed"));
    cli.quit();
}

/// The softphone skin's "Consult first": hold the call with 1002, call 1003 on a second
/// line, then `transfer("")` on the consultation line (RFC 5589 §7: "hand this call over to
/// the other"): 1003 gets the REFER naming 1002's dialog with Replaces, calls 1002, and both
/// of our lines end.
#[test]
fn transfer_with_an_empty_number_connects_the_two_calls() {
    let _serial = serial();
    let Some((dir, kam, mut b, mut c)) = setup("transfer_empty_number", AnswerMode::Auto) else {
        return;
    };
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.api_ok("hold true");
    let line = cli.api_ok("call 1003");
    assert_eq!(line.trim(), "2", "the consultation call is on line 2");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1001"), WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let mark = cli.mark();
    cli.api_ok("setline 2");
    cli.api_ok("transfer \"\"");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1002"), WAIT);
    b.wait_event("CALL_ESTABLISHED", |p| p.contains("1003"), WAIT);
    expect_both_lines_end(&cli, mark);
    cli.quit();
}

/// `transfertype` 2 ("transfer when the second party disconnects"): the consulted party
/// (1003) hanging up sends 1002 to it with a plain REFER (the consultation dialog is gone),
/// and both of our lines end; our own hang-up of a consultation only brings the first call
/// back (no REFER).
#[test]
fn transfertype_2_transfers_when_the_consulted_party_hangs_up() {
    let _serial = serial();
    let Some((dir, kam, mut b, mut c)) = setup("transfertype_2", AnswerMode::Auto) else {
        return;
    };
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params.set("transfertype", "2"));
    expect_registered(&mut cli, 0);

    // Our hang-up of the consultation: no transfer, line 1 resumes.
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    assert_eq!(cli.api_ok("transfer 1003").trim(), "2");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1001"), WAIT);
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("hangup 2");
    webphone_interop::util::wait_for(WAIT, || {
        cli.api_ok("isonhold 1").contains("false").then_some(())
    })
    .unwrap_or_else(|| panic!("line 1 must be resumed after our hang-up"));
    assert!(
        kam.script_lines().iter().all(|l| !l.contains("REQ REFER")),
        "no REFER for our own hang-up with transfertype 2"
    );

    // The consulted party hangs up: the transfer is made.
    let established = c
        .events()
        .iter()
        .filter(|e| e["type"] == "CALL_ESTABLISHED")
        .count();
    assert_eq!(cli.api_ok("transfer 1003").trim(), "2");
    webphone_interop::util::wait_for(WAIT, || {
        (c.events()
            .iter()
            .filter(|e| e["type"] == "CALL_ESTABLISHED")
            .count()
            > established)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the second consultation call to 1003"));
    std::thread::sleep(Duration::from_millis(500));
    let mark = cli.mark();
    c.command("hangup");
    c.wait_event("CALL_ESTABLISHED", |p| p.contains("1002"), WAIT);
    b.wait_event("CALL_ESTABLISHED", |p| p.contains("1003"), WAIT);
    expect_both_lines_end(&cli, mark);
    cli.quit();
}
