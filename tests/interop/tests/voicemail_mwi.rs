//! Voicemail (RFC 3842) against SIPp: a voicemail server's message-summary NOTIFY
//! (`peers/sipp-uac-mwi-notify.xml`) shows as the MWI notification and teaches the softphone
//! its voicemail number (`voicemailnum` "normally learned from the server"); the
//! `callvoicemail` extension then dials it, and SIPp (UAS) sees that Request-URI. A number the
//! user configured is never replaced by the server's.
//!
//! Servers that only report waiting messages to a subscriber get a SUBSCRIBE to our own
//! message-summary (RFC 3842 §4, RFC 6665 §4.1.2) after registering, when voicemail is enabled
//! (a `voicemailnum` configured; engine extra `mwisubscribe` 0/1/2): SIPp as registrar and
//! notifier (`peers/sipp-registrar-mwi-subscribe.xml`) checks the SUBSCRIBE, its refresh
//! before the granted 6 s run out, and its end (Expires: 0) on `unregister`.

use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::util::wait_for;
use webphone_interop::{free_port, require_tools, serial, Params, Sipp, TestDir, SIPP};

/// The voicemail server (SIPp UAC) sends one message-summary NOTIFY with `account` to the
/// softphone on `port`; SIPp succeeds when the softphone answers 200.
fn voicemail_server_notifies(dir: &TestDir, port: u16, account: &str) {
    let mut notify = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uac-mwi-notify.xml"),
        Some(&format!("127.0.0.1:{port}")),
        &["-s", "1001", "-key", "vmaccount", account],
    );
    notify.assert_success(WAIT);
}

#[test]
fn voicemail_number_learned_from_message_summary_is_dialled() {
    let _serial = serial();
    if !require_tools("voicemail_mwi", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("voicemail_mwi");
    let mut voicemail = Sipp::start(dir.path(), Scenario::Builtin("uas"), None, &["-rtp_echo"]);
    let account = format!("sip:*97@127.0.0.1:{}", voicemail.port());
    let port = free_port();
    let (params, _rec) = Params::direct("1001", port).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    assert_eq!(cli.api_ok("getparameter voicemailnum"), "");
    let refused = cli.api("callvoicemail", Duration::from_secs(10));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("no voicemail number")),
        "nothing to dial yet: {refused:?}"
    );

    let mark = cli.mark();
    voicemail_server_notifies(&dir, port, &format!("<{account}>"));
    let mwi = cli.expect_after(mark, |l| l.starts_with("MWI,"), WAIT);
    assert_eq!(mwi, "MWI,2/8 (0/2)");
    assert_eq!(cli.api_ok("getparameter voicemailnum"), account);
    let all = cli.api_ok("listcontacts true");
    assert!(
        all.contains(&format!("Voicemail\t{account}\t")),
        "listcontacts(true) names the learned number: {all:?}"
    );

    let line = cli.api_ok("callvoicemail");
    assert_eq!(line, "1", "callvoicemail returns the line like call()");
    expect_connected(&mut cli);
    let seen = voicemail.messages();
    assert!(
        seen.contains(&format!("INVITE {account} SIP/2.0")),
        "the voicemail server was called at the Message-Account URI:\n{seen}"
    );
    cli.api_ok("hangup");
    voicemail.assert_success(WAIT);

    // A number the user sets wins, and a later NOTIFY does not replace it.
    cli.api_ok("setparameter voicemailnum *98");
    voicemail_server_notifies(&dir, port, &account);
    assert_eq!(cli.api_ok("getparameter voicemailnum"), "*98");
    cli.quit();
}

/// SUBSCRIBE requests SIPp received (its message log), in order.
fn subscribes_seen(sipp: &Sipp) -> Vec<String> {
    let log = sipp.messages();
    log.split("SUBSCRIBE sip:")
        .skip(1)
        .map(|m| m.split("\n\n").next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn message_summary_subscribed_after_registering_refreshed_and_ended_on_unregister() {
    mwi_subscription_cycle("voicemail_mwi_subscribe", Some("*97"));
}

/// No voicemail number: the registrar's `Allow-Events` lists message-summary, so the
/// subscription is made all the same, and BLF (its `dialog` package not listed) is not asked
/// for (`enableblf` 1, auto).
#[test]
fn registrar_allow_events_drive_the_voicemail_subscription_and_keep_blf_off() {
    mwi_subscription_cycle("voicemail_mwi_allow_events", None);
}

fn mwi_subscription_cycle(name: &str, voicemailnum: Option<&str>) {
    let _serial = serial();
    if !require_tools(name, &[SIPP]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut server = Sipp::start(
        dir.path(),
        Scenario::File("sipp-registrar-mwi-subscribe.xml"),
        None,
        &["-m", "2"],
    );
    let params = Params::new()
        .set("serveraddress", format!("127.0.0.1:{}", server.port()))
        .set("username", "1001")
        .set("password", "secret1001")
        .set("transport", "0")
        .set("register", "1")
        .set("keepaliveival", "0")
        .set("loglevel", "5");
    let params = match voicemailnum {
        Some(n) => params.set("voicemailnum", n),
        None => params,
    };
    let (params, _rec) = params.with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    let mwi = cli.expect(|l| l.starts_with("MWI,"), WAIT);
    assert_eq!(mwi, "MWI,3/5 (1/0)");
    match voicemailnum {
        // The configured number stays; the server's Message-Account does not replace it.
        Some(n) => assert_eq!(cli.api_ok("getparameter voicemailnum"), n),
        None => {
            let refused = cli.api("checkblf 1002", WAIT).expect_err("BLF is off");
            assert!(refused.contains("Allow-Events"), "{refused}");
        }
    }

    // The notifier granted 6 s: the refresh comes before they run out.
    let refreshed = wait_for(Duration::from_secs(6), || {
        (subscribes_seen(&server).len() >= 2).then_some(())
    });
    let subs = subscribes_seen(&server);
    assert!(
        refreshed.is_some(),
        "no refresh within the granted 6 s: {subs:#?}"
    );
    assert!(
        subs[0].starts_with("1001@127.0.0.1"),
        "subscribed to our own address of record: {subs:#?}"
    );

    cli.api_ok("unregister");
    server.assert_success(WAIT);
    let subs = subscribes_seen(&server);
    assert_eq!(subs.len(), 3, "subscribe, refresh, end: {subs:#?}");
    assert!(
        subs[2]
            .lines()
            .any(|l| l.trim().eq_ignore_ascii_case("expires: 0")),
        "the last SUBSCRIBE ends the subscription: {}",
        subs[2]
    );
    cli.quit();
}
