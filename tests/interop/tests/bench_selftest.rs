//! Self-test of the bench itself, without the softphone: the peers start with
//! our configs, register, call each other, and what the tests observe
//! (Kamailio's log, ul.dump, baresip's events and recordings, SIPp's exit
//! code) works.

use std::time::Duration;

use webphone_interop::{
    assert_tone, require_tools, serial, AnswerMode, Baresip, BaresipOpts, Kamailio, Scenario, Sipp,
    TestDir, BARESIP, KAMAILIO, KAMCMD, SIPP,
};

const T: Duration = Duration::from_secs(20);

#[test]
fn kamailio_starts_and_baresip_registers_through_it() {
    let _serial = serial();
    if !require_tools("bench self-test", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("selftest_register");
    let mut kam = Kamailio::start(dir.path());
    let _bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));

    let contacts = kam.wait_registered("1002", T);
    assert!(
        contacts.iter().any(|c| c.contains("127.0.0.1")),
        "{contacts:?}"
    );
    // the digest dance: unauthenticated REGISTER -> 401, then with credentials -> saved
    kam.wait_lines(&["REQ REGISTER", "user=1002", "auth=<null>"], 1, T);
    kam.wait_lines(&["CHALLENGE REGISTER", "user=1002"], 1, T);
    kam.wait_lines(&["REQ REGISTER", "user=1002", "auth=1002"], 1, T);
    kam.wait_lines(&["REGISTERED 1002"], 1, T);
    kam.assert_running();
}

#[test]
fn kamailio_rejects_a_wrong_password_with_403() {
    let _serial = serial();
    if !require_tools("bench self-test", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("selftest_badpass");
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            password: "wrong".into(),
            wait_registered: false,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    kam.wait_lines(&["FORBIDDEN REGISTER", "auth=1002"], 1, T);
    assert!(kam.contacts("1002").is_empty(), "{}", kam.ul_dump());
    std::thread::sleep(Duration::from_secs(1));
    let info = bs.command("reginfo").data;
    assert!(
        !bs.is_registered_in(&info),
        "baresip thinks it registered: {info}"
    );
    eprintln!("baresip with a wrong password: {}", info.trim());
}

#[test]
fn baresip_calls_sipp_uas_and_hears_its_echo() {
    let _serial = serial();
    if !require_tools("bench self-test", &[BARESIP, SIPP]) {
        return;
    }
    let dir = TestDir::new("selftest_sipp_uas");
    let mut uas = Sipp::uas(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::default());
    bs.dial(&uas.uri());
    bs.wait_event("CALL_ESTABLISHED", |_| true, T);
    std::thread::sleep(Duration::from_secs(3));
    bs.command("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, T);
    uas.assert_success(T);
    // SIPp echoes the RTP: baresip hears its own 1 kHz tone
    assert_tone(
        &bs.last_received_wav(),
        1000.0,
        -30.0,
        "baresip hearing SIPp's echo",
    );
}

#[test]
fn kamailio_routes_a_call_between_two_baresips() {
    let _serial = serial();
    if !require_tools("bench self-test", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("selftest_b2b");
    let mut kam = Kamailio::start(dir.path());
    let mut b2 = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let mut b3 = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            tone_hz: 440.0,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    kam.wait_registered("1003", T);
    b2.dial(&format!("sip:1003@127.0.0.1:{}", kam.port()));
    b3.wait_event("CALL_ESTABLISHED", |_| true, T);
    b2.wait_event("CALL_ESTABLISHED", |_| true, T);
    std::thread::sleep(Duration::from_secs(3));
    b3.command("hangup");
    b2.wait_event("CALL_CLOSED", |_| true, T);
    b3.wait_event("CALL_CLOSED", |_| true, T);

    // INVITE challenged with 407, then authorised and relayed; BYE through the record-route
    kam.wait_lines(&["CHALLENGE INVITE", "user=1002"], 1, T);
    kam.wait_lines(&["AUTHORIZED INVITE", "auth=1002"], 1, T);
    kam.wait_lines(&["RELAY INVITE"], 1, T);
    kam.wait_lines(&["REQ BYE"], 1, T);
    kam.wait_lines(&["REPLY 200", "for BYE"], 1, T);

    assert_tone(&b3.last_received_wav(), 1000.0, -30.0, "1003 hearing 1002");
    assert_tone(&b2.last_received_wav(), 440.0, -30.0, "1002 hearing 1003");
}

#[test]
fn baresip_reports_rfc4733_dtmf_from_sipp() {
    let _serial = serial();
    if !require_tools("bench self-test", &[BARESIP, SIPP]) {
        return;
    }
    let pcap = std::path::Path::new("/usr/share/sip-tester/dtmf_2833_5.pcap");
    if !pcap.is_file() {
        // packaged with sip-tester on Debian; another layout is not a failure of the bench
        eprintln!("SKIP: {} not found", pcap.display());
        return;
    }
    let dir = TestDir::new("selftest_dtmf");
    let mut bs = Baresip::start(dir.path(), BaresipOpts::default());
    let target = format!("127.0.0.1:{}", bs.sip_port());
    let mut uac = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uac-dtmf.xml"),
        Some(&target),
        &["-s", "1002"],
    );
    bs.wait_event("CALL_ESTABLISHED", |_| true, T);
    bs.wait_event("CALL_DTMF_START", |k| k == "5", T);
    uac.assert_success(T);
    assert_eq!(bs.dtmf_received(), "5");
    assert!(
        bs.log().contains("received event: '5'"),
        "baresip -v log lacks the telephone-event line"
    );
}

#[test]
fn sipp_ring_cancel_scenario_accepts_a_cancel() {
    let _serial = serial();
    if !require_tools("bench self-test", &[BARESIP, SIPP]) {
        return;
    }
    let dir = TestDir::new("selftest_cancel");
    let mut uas = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-ring-cancel.xml"),
        None,
        &[],
    );
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            answer: AnswerMode::Manual,
            ..BaresipOpts::default()
        },
    );
    bs.dial(&uas.uri());
    bs.wait_event("CALL_RINGING", |_| true, T);
    std::thread::sleep(Duration::from_millis(500));
    bs.command("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, T);
    uas.assert_success(T);
}
