//! Incoming-call divert rules against SIPp calling the softphone directly: `callforwardalways`
//! (302 before anything rings), `callforwardonnoanswer` after its timeout, `forward()` on a
//! ringing call, do-not-disturb (`setpresencestatus("DND")` → 480, no ringing) and
//! `calltransferalways` (answered, then REFERed; BYE after the sipfrag 200), `blacklist` and
//! `autoignore=2` (603 without ringing), `rejectonbusy` (486) and `callforwardonbusy` (302)
//! during a call, and the auto-answer headers `X-Answer-Mode: Auto` /
//! `X-P-Auto-Answer: normal` (answered with `autoaccept` off). SIPp's
//! scenarios (tests/interop/peers/divert-uac-*.xml) fail unless they get exactly that answer,
//! with the forward target in the 302's Contact.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{call_record, start_cli, WAIT};
use webphone_interop::{
    free_port, require_tools, serial, Cli, Params, Scenario, Sipp, TestDir, SIPP,
};

fn direct_cli(dir: &TestDir, port: u16, extra: &[(&str, &str)]) -> Cli {
    let mut p = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("loglevel", "5");
    for (k, v) in extra {
        p = p.set(k, *v);
    }
    let (p, _rec) = p.with_file_audio(dir);
    start_cli(dir, &p)
}

fn uac(dir: &TestDir, port: u16, scenario: &str) -> Sipp {
    Sipp::start(
        dir.path(),
        Scenario::File(scenario),
        Some(&format!("127.0.0.1:{port}")),
        &["-s", "1001"],
    )
}

fn rang(cli: &Cli, since: usize) -> bool {
    cli.lines()
        .iter()
        .skip(since)
        .any(|l| l.contains("callRinging") || l.contains(",Ringing,"))
}

#[test]
fn forward_always_answers_302_before_ringing() {
    let _serial = serial();
    if !require_tools("divert_always", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_always");
    let port = free_port();
    let mut cli = direct_cli(
        &dir,
        port,
        &[("callforwardalways", "sip:3000@127.0.0.1:5999")],
    );
    let mark = cli.mark();
    let mut sipp = uac(&dir, port, "divert-uac-302.xml");
    sipp.assert_success(WAIT);
    assert!(!rang(&cli, mark), "a forwarded call must not ring");
    cli.quit();
}

#[test]
fn transfer_always_answers_then_refers_the_caller_and_leaves() {
    let _serial = serial();
    if !require_tools("divert_transfer_always", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_transfer_always");
    let port = free_port();
    let mut cli = direct_cli(
        &dir,
        port,
        &[("calltransferalways", "sip:3000@127.0.0.1:5999")],
    );
    let mark = cli.mark();
    // The scenario fails unless the call is answered, the REFER names 3000 and our BYE follows
    // the NOTIFY that reports the transfer done.
    let mut sipp = uac(&dir, port, "divert-uac-transfer-always.xml");
    sipp.assert_success(WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert!(
        cdr.connect_ms >= 0 && cdr.disc_party == 1 && cdr.reason.contains("transferred"),
        "answered, then ended by us as transferred: {cdr:?}"
    );
    let refer = cli.expect_after(
        mark,
        |l| l.starts_with("LOG,EVENT,SIP >> ") && l.contains(": REFER "),
        WAIT,
    );
    assert!(
        refer.contains("Refer-To: <sip:3000@127.0.0.1:5999>"),
        "{refer}"
    );
    cli.quit();
}

#[test]
fn unanswered_call_is_forwarded_after_the_no_answer_timeout() {
    let _serial = serial();
    if !require_tools("divert_noanswer", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_noanswer");
    let port = free_port();
    let mut cli = direct_cli(
        &dir,
        port,
        &[
            ("callforwardonnoanswer", "sip:3000@127.0.0.1:5999"),
            ("callforwardonnoanswertimeout", "2"),
        ],
    );
    let mark = cli.mark();
    let mut sipp = uac(&dir, port, "divert-uac-302.xml");
    sipp.assert_success(WAIT);
    assert!(
        rang(&cli, mark),
        "the call rings until the no-answer timeout"
    );
    // SIPp's message log: the 302 came the configured 2 s after the 180, not at once (a
    // lower bound on a behaviour, with room for a slow machine, not a speed target).
    let log = sipp.messages();
    let at = |start: &str| received_at(&log, start).unwrap_or_else(|| panic!("{start}: {log}"));
    let waited = at("SIP/2.0 302") - at("SIP/2.0 180");
    assert!(
        waited >= 1.8,
        "forwarded {waited:.2} s after ringing began (callforwardonnoanswertimeout 2)"
    );
    cli.quit();
}

/// Seconds of the day at which SIPp logged receiving the first message starting with
/// `start` (its `*_messages.log` heads each message with a `----- YYYY-MM-DD HH:MM:SS.ffffff`
/// line).
fn received_at(log: &str, start: &str) -> Option<f64> {
    let mut stamp = None;
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("-----") {
            let time = rest.trim_start_matches('-').split_whitespace().nth(1)?;
            let mut p = time.split(':');
            let (h, m, s): (f64, f64, f64) = (
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
            );
            stamp = Some(h * 3600.0 + m * 60.0 + s);
        } else if line.contains("message received") {
            // The message follows an empty line.
            let first = lines.by_ref().find(|l| !l.trim().is_empty())?;
            if first.starts_with(start) {
                return stamp;
            }
        }
    }
    None
}

#[test]
fn forward_api_redirects_the_ringing_call() {
    let _serial = serial();
    if !require_tools("divert_api", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_api");
    let port = free_port();
    let mut cli = direct_cli(&dir, port, &[]);
    // Nothing to forward yet: a clear error, not a crash.
    assert!(cli.api("forward 3000", Duration::from_secs(5)).is_err());
    let mut sipp = uac(&dir, port, "divert-uac-302.xml");
    cli.expect(|l| l.contains("callRinging"), WAIT);
    cli.api_ok("forward sip:3000@127.0.0.1:5999");
    sipp.assert_success(WAIT);
    cli.quit();
}

#[test]
fn do_not_disturb_refuses_with_480_without_ringing() {
    let _serial = serial();
    if !require_tools("divert_dnd", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_dnd");
    let port = free_port();
    let mut cli = direct_cli(&dir, port, &[("autoaccept", "true")]);
    // Without a presence server the PUBLISH may fail; do-not-disturb holds anyway.
    let _ = cli.api("setpresencestatus DND", Duration::from_secs(5));
    let mark = cli.mark();
    let mut sipp = uac(&dir, port, "divert-uac-480.xml");
    sipp.assert_success(WAIT);
    assert!(!rang(&cli, mark), "do-not-disturb must not ring");
    // Back online: calls are taken again (autoaccept answers this one).
    let _ = cli.api("setpresencestatus Online", Duration::from_secs(5));
    let mut again = Sipp::uac(dir.path(), &format!("127.0.0.1:{port}"), "1001", 500);
    again.assert_success(WAIT + Duration::from_secs(5));
    cli.quit();
}

#[test]
fn blacklisted_caller_and_autoignore_2_are_declined_without_ringing() {
    let _serial = serial();
    if !require_tools("divert_declined", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_declined");
    let port = free_port();
    // SIPp calls as user 2000.
    let mut cli = direct_cli(&dir, port, &[("blacklist", "1999, sip:2000")]);
    let mark = cli.mark();
    let mut sipp = uac(&dir, port, "divert-uac-declined.xml");
    sipp.assert_success(WAIT);
    assert!(!rang(&cli, mark), "a blacklisted caller must not ring");
    cli.api_ok("setparameter blacklist \"\"");
    cli.api_ok("setparameter autoignore 2");
    let mark = cli.mark();
    let mut sipp = uac(&dir, port, "divert-uac-declined.xml");
    sipp.assert_success(WAIT);
    assert!(!rang(&cli, mark), "autoignore=2 must not ring");
    cli.quit();
}

#[test]
fn auto_answer_headers_answer_without_autoaccept() {
    let _serial = serial();
    if !require_tools("divert_auto_answer", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_auto_answer");
    let port = free_port();
    let mut cli = direct_cli(&dir, port, &[("autoaccept", "false")]);
    for (header, value) in [("X-Answer-Mode", "Auto"), ("X-P-Auto-Answer", "normal")] {
        let mark = cli.mark();
        // SIPp fails (its global timeout) unless the softphone answers by itself.
        let mut sipp = Sipp::start(
            dir.path(),
            Scenario::File("divert-uac-auto-answer.xml"),
            Some(&format!("127.0.0.1:{port}")),
            &[
                "-s",
                "1001",
                "-key",
                "aa_header",
                header,
                "-key",
                "aa_value",
                value,
            ],
        );
        sipp.assert_success(WAIT);
        let (cdr, _) = call_record(&mut cli, mark);
        assert!(
            cdr.connect_ms >= 0 && cdr.disc_party == 2,
            "{header}: answered, SIPp hung up: {cdr:?}"
        );
    }
    cli.quit();
}

#[test]
fn busy_rules_refuse_or_forward_a_second_call() {
    let _serial = serial();
    if !require_tools("divert_busy", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("divert_busy");
    let port = free_port();
    let mut cli = direct_cli(
        &dir,
        port,
        &[("autoaccept", "true"), ("rejectonbusy", "true")],
    );
    // The first call (SIPp's uac, held 6 s) makes the phone busy.
    let mut first = Sipp::uac(dir.path(), &format!("127.0.0.1:{port}"), "1001", 6_000);
    webphone_interop::flows::expect_connected(&mut cli);
    let mut busy = uac(&dir, port, "divert-uac-486.xml");
    busy.assert_success(WAIT);
    cli.api_ok("setparameter rejectonbusy false");
    cli.api_ok("setparameter callforwardonbusy sip:3000@127.0.0.1:5999");
    let mut forwarded = uac(&dir, port, "divert-uac-302.xml");
    forwarded.assert_success(WAIT);
    // The first call was never disturbed: SIPp ends it normally.
    first.assert_success(WAIT);
    cli.quit();
}
