//! Chat and SMS by SIP MESSAGE (RFC 3428) between the softphone (1001) and linphonec 1003
//! (liblinphone 5.1) through Kamailio: the texts linphonec prints as received are the ones
//! sent (`sendchat`, and `sendsms` without an `sms` HTTP API), each reported delivered
//! (`CHATREPORT,…,2`, from linphonec's 200 through the proxy), and linphonec's `chat` reaches
//! the softphone as a `CHAT` notification. The conversation outlives the process: a new one
//! on the same data folder lists it with `chathistory`.

use webphone_interop::audio::write_tone;
use webphone_interop::flows::{expect_registered, WAIT};
use webphone_interop::linphone::{Linphone, LinphoneOpts, LINPHONEC};
use webphone_interop::util::wait_for;
use webphone_interop::{
    require_tools, serial, Cli, Kamailio, Params, TestDir, Transport, KAMAILIO,
};

#[test]
fn chat_and_sms_by_message_both_ways_with_linphone() {
    let _serial = serial();
    let name = "chat_linphone";
    if !require_tools(name, &[KAMAILIO, LINPHONEC]) {
        return;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let tone = dir.join("linphone-tone.wav");
    write_tone(&tone, 1000.0, 8000, 2.0, 0.5);
    let mut lp = Linphone::start(dir.path(), LinphoneOpts::registered_to(kam.port(), &tone));
    kam.wait_registered("1003", WAIT);
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    // A profile folder on disk (without --work-dir the CLI keeps its data in memory).
    let data = dir.join("profile-data");
    let data = data.to_string_lossy().into_owned();
    let start = || {
        let mut cli = Cli::start_with_args(
            dir.path(),
            &params.pairs(),
            &["--callbacks", "--work-dir", &data],
        );
        cli.expect(|l| l == "START,sip", WAIT);
        cli
    };
    let mut cli = start();
    expect_registered(&mut cli, 0);

    let received = |text: &str| {
        wait_for(WAIT, || lp.log().contains(text).then_some(())).unwrap_or_else(|| {
            panic!(
                "linphonec did not print {text:?} as received; its output:\n{}",
                lp.log()
            )
        })
    };
    cli.api_ok("sendchat 1003 \"a chat for linphone\"");
    cli.expect(|l| l == "CHATREPORT,0,1003,2,", WAIT);
    received("a chat for linphone");
    cli.api_ok("sendsms 1003 \"an sms for linphone\"");
    cli.expect(|l| l == "CHATREPORT,0,1003,2,", WAIT);
    received("an sms for linphone");

    lp.command(&format!(
        "chat sip:1001@127.0.0.1:{} hello from linphone",
        kam.port()
    ));
    let chat = cli.expect(|l| l.starts_with("CHAT,"), WAIT);
    assert!(
        chat.contains("1003") && chat.ends_with(",hello from linphone"),
        "{chat}"
    );
    cli.quit();

    // The conversation is kept in the profile's database: a new process on the same data
    // folder lists it, oldest first, with the delivery state of what was sent.
    let mut again = start();
    let history = again.api_ok("chathistory 1003");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&history)
        .unwrap_or_else(|e| panic!("chathistory is a JSON array ({e}): {history}"));
    let got: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap_or("").to_string(),
                r["text"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let want = [
        ("out", "a chat for linphone", 2),
        ("out", "an sms for linphone", 2),
        ("in", "hello from linphone", 0),
    ];
    assert_eq!(
        got,
        want.map(|(d, t, s)| (d.to_string(), t.to_string(), s)),
        "{history}"
    );
    assert!(rows.iter().all(|r| r["peer"] == "1003"), "{history}");
    again.quit();
    lp.stop();
}
