//! Presence and chat through Kamailio with baresip (1002): the softphone (1001) watches
//! baresip's presence (baresip's presence module answers the SUBSCRIBE with a PIDF NOTIFY),
//! and sends it an instant message and an SMS by MESSAGE that Kamailio authenticates and routes
//! (baresip's 200 is the delivery report).

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    KAMAILIO,
};

#[test]
fn softphone_sees_baresip_presence_and_chats_with_it() {
    let _serial = serial();
    if !require_tools("presence_chat", &[KAMAILIO, BARESIP]) {
        return;
    }
    let dir = TestDir::new("presence_chat");
    let kam = Kamailio::start(dir.path());
    let _bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    cli.api_ok("checkpresence 1002");
    // baresip 1.0 answers with a PIDF NOTIFY whose <basic> is "?" until its user sets a
    // status: that reads as Unknown (a refused subscription would carry its code instead).
    let line = cli.expect(|l| l.starts_with("PRESENCE,1002,"), WAIT);
    assert_eq!(
        line, "PRESENCE,1002,Unknown,,,",
        "state from baresip's PIDF"
    );
    cli.expect(
        |l| l.starts_with("CALLBACK,onPresenceStateChange,[\"1002\",\"Unknown\""),
        WAIT,
    );

    cli.api_ok("sendchat 1002 \"hello from the softphone\"");
    cli.expect(|l| l == "CHATREPORT,0,1002,1,", WAIT);
    cli.expect(|l| l == "CHATREPORT,0,1002,2,", WAIT);
    // sendsms without an `sms` HTTP API goes as a SIP MESSAGE too: baresip's 200 (through
    // Kamailio) is the delivery report.
    cli.api_ok("sendsms 1002 \"an sms by SIP\"");
    cli.expect(|l| l == "CHATREPORT,0,1002,2,", WAIT);
    cli.quit();
}
