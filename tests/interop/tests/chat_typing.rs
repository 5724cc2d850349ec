//! Typing indications (RFC 3994) between two softphones through Kamailio: 1001's
//! `chatcomposing 1002 1` reaches 1002 as `CHATCOMPOSING,0,1001,1` (an is-composing MESSAGE
//! the proxy authenticates and routes); a repeat within the refresh interval is not sent;
//! `chatcomposing 1002 0` ends it (`CHATCOMPOSING,0,1001,0`), and the text then arrives.
//! Once 1002 blocks 1001 (`blacklist`), neither texts nor typing states show or are kept.

use std::path::Path;
use std::time::Duration;

use webphone_interop::flows::{expect_registered, WAIT};
use webphone_interop::{
    require_tools, serial, Cli, Kamailio, Params, TestDir, Transport, KAMAILIO,
};

fn softphone(dir: &TestDir, kam: &Kamailio, user: &str) -> Cli {
    let (params, _rec) = Params::account(kam, user, Transport::Udp).with_file_audio(dir);
    let own: &Path = &dir.subdir(user);
    let rec = own.join("cli-received.wav");
    let params = params.set("audiodeviceout", format!("file:{}", rec.display()));
    let mut cli = Cli::start(own, &params.pairs());
    cli.expect(|l| l == "START,sip", WAIT);
    expect_registered(&mut cli, 0);
    cli
}

#[test]
fn typing_indications_reach_the_other_softphone() {
    let _serial = serial();
    if !require_tools("chat_typing", &[KAMAILIO]) {
        return;
    }
    let dir = TestDir::new("chat_typing");
    let kam = Kamailio::start(dir.path());
    let mut a = softphone(&dir, &kam, "1001");
    let mut b = softphone(&dir, &kam, "1002");

    assert_eq!(a.api_ok("chatcomposing 1002 1"), "true");
    b.expect(|l| l == "CHATCOMPOSING,0,1001,1", WAIT);
    // A key press a moment later sends nothing new (RFC 3994 §3.1 refresh).
    assert_eq!(a.api_ok("chatcomposing 1002 1"), "false");
    assert_eq!(a.api_ok("chatcomposing 1002 0"), "true");
    b.expect(|l| l == "CHATCOMPOSING,0,1001,0", WAIT);
    assert_eq!(
        a.api_ok("chatcomposing 1002 0"),
        "false",
        "idle only after active"
    );
    a.api_ok("sendchat 1002 \"typed and sent\"");
    b.expect(|l| l == "CHAT,0,1001,typed and sent", WAIT);
    std::thread::sleep(Duration::from_millis(300));
    let states = b.seen(|l| l.starts_with("CHATCOMPOSING,"));
    assert_eq!(
        states,
        ["CHATCOMPOSING,0,1001,1", "CHATCOMPOSING,0,1001,0"],
        "one indication per change"
    );
    // Nothing that is not a text lands in the conversation or as a chat.
    assert_eq!(b.seen(|l| l.starts_with("CHAT,")).len(), 1);
    let bad = a.api("chatcomposing 1002 maybe", WAIT);
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.contains("usage: chatcomposing")),
        "a state that is not 0 or 1 is refused: {bad:?}"
    );
    // A blocked peer (`blacklist`, the skin's "Block" on a contact): its texts and typing
    // states are dropped, nothing is shown or kept. The entry is written as a URI, which the
    // list matches like a caller's (with or without `sip:`).
    b.api_ok("setparameter blacklist \"spam, sip:1001\"");
    assert_eq!(
        b.api_ok("getparameter blacklist").trim_matches('"'),
        "spam, sip:1001"
    );
    let mark = b.mark();
    a.api_ok("chatcomposing 1002 1");
    a.api_ok("sendchat 1002 \"from a blocked number\"");
    a.expect(
        |l| l.starts_with("CHATREPORT,0,1002,") && !l.starts_with("CHATREPORT,0,1002,1,"),
        WAIT,
    );
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = b.lines()[mark..]
        .iter()
        .filter(|l| l.starts_with("CHAT"))
        .cloned()
        .collect();
    assert!(after.is_empty(), "nothing from a blocked peer: {after:?}");
    let kept = b.api_ok("chathistory 1001");
    assert!(!kept.contains("blocked number"), "not kept: {kept}");
    a.quit();
    b.quit();
}
