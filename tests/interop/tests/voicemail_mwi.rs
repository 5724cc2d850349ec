//! Voicemail (RFC 3842) against SIPp: a voicemail server's message-summary NOTIFY
//! (`peers/sipp-uac-mwi-notify.xml`) shows as the MWI notification and teaches the softphone
//! its voicemail number (`voicemailnum` "normally learned from the server"); the
//! `callvoicemail` extension then dials it, and SIPp (UAS) sees that Request-URI. A number the
//! user configured is never replaced by the server's.

use std::time::Duration;

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
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
