//! Multi-line with `autohold=2` and `automute=2`: a second outgoing call holds (re-INVITE with
//! a=sendonly, answered by baresip) and mutes the first; without them both calls stay
//! up unheld (calls are independent until joined). `autohold=1` holds the running call
//! when an incoming call is answered; `autohold=4` holds the line left when another line is
//! chosen (`setline`), and resumes the one chosen.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    KAMAILIO, KAMCMD,
};

fn two_calls(name: &str, autohold: &str) -> Option<(bool, bool)> {
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return None;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let mut b = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let mut c = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autohold", autohold).set("automute", autohold);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    cli.api_ok("call 1003");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    // Line 1's state, asked with the line selected explicitly (autohold 4 is not set, so
    // choosing the line changes nothing).
    cli.api_ok("setline 1");
    // Held only once baresip answered our hold re-INVITE (the state follows the answer).
    let held = cli.api_ok("isonhold").contains("true");
    let muted = cli.api_ok("ismuted").contains("true");
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    cli.quit();
    Some((held, muted))
}

#[test]
fn second_outgoing_call_holds_and_mutes_the_first_with_autohold() {
    let _serial = serial();
    if let Some((held, muted)) = two_calls("autohold_on", "2") {
        assert!(held, "autohold=2: line 1 is held when line 2 is dialled");
        assert!(muted, "automute=2: line 1 is muted when line 2 is dialled");
    }
}

#[test]
fn calls_stay_independent_without_autohold() {
    let _serial = serial();
    if let Some((held, muted)) = two_calls("autohold_off", "0") {
        assert!(!held && !muted, "autohold=0: line 1 stays as it was");
    }
}

/// The softphone in a call with 1002, and 1003 calling it (ringing on line 2).
fn call_and_incoming(
    name: &str,
    autohold: &str,
) -> Option<(TestDir, Kamailio, Baresip, Baresip, webphone_interop::Cli)> {
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return None;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let mut b = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let c = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autohold", autohold);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.expect(|l| l.starts_with("STATUS,1,InCall,"), WAIT);
    Some((dir, kam, b, c, cli))
}

/// Runs `cmd` and waits for a later line starting with `status`; returns the mark taken
/// before `cmd`, for more checks of what followed it.
fn api_then(cli: &mut webphone_interop::Cli, cmd: &str, status: &str) -> usize {
    let mark = cli.mark();
    cli.api_ok(cmd);
    cli.expect_after(mark, |l| l.starts_with(status), WAIT);
    mark
}

/// Whether line `n` is held by us, asked with the line chosen (autohold 4 acts on that
/// choice itself, so only for other values).
fn held(cli: &mut webphone_interop::Cli, n: usize) -> bool {
    cli.api_ok(&format!("setline {n}"));
    cli.api_ok("isonhold").contains("true")
}

#[test]
fn answering_an_incoming_call_holds_the_running_one_with_autohold_1() {
    let _serial = serial();
    let Some((_dir, kam, _b, mut c, mut cli)) = call_and_incoming("autohold_incoming", "1") else {
        return;
    };
    c.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    cli.expect(
        |l| l.starts_with("STATUS,2,Ringing,") || l.starts_with("STATUS,2,Incoming"),
        WAIT,
    );
    // Ringing alone holds nothing.
    assert!(
        !held(&mut cli, 1),
        "line 1 is not held while line 2 only rings"
    );
    cli.api_ok("accept 2");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    // The hold re-INVITE is answered by baresip before isonhold reads true.
    let on_hold = webphone_interop::util::wait_for(WAIT, || held(&mut cli, 1).then_some(()));
    assert!(
        on_hold.is_some(),
        "autohold=1: line 1 held once line 2 is answered"
    );
    assert!(!held(&mut cli, 2), "the answered call is not held");
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    cli.quit();
}

#[test]
fn choosing_another_line_holds_the_one_left_with_autohold_4() {
    let _serial = serial();
    let Some((_dir, kam, _b, mut c, mut cli)) = call_and_incoming("autohold_setline", "4") else {
        return;
    };
    c.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    cli.expect(
        |l| l.starts_with("STATUS,2,Ringing,") || l.starts_with("STATUS,2,Incoming"),
        WAIT,
    );
    cli.api_ok("accept 2");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    // Answering alone holds nothing with 4 (only choosing a line does).
    let line1_hold = || "STATUS,1,Hold,";
    assert!(
        cli.seen(|l| l.starts_with(line1_hold())).is_empty(),
        "autohold=4: answering line 2 does not hold line 1"
    );
    // Choosing line 1 holds line 2 (the one left) ...
    cli.api_ok("setline 1");
    cli.expect(|l| l.starts_with("STATUS,2,Hold,"), WAIT);
    // ... and choosing line 2 again holds line 1 and resumes line 2.
    let mark = api_then(&mut cli, "setline 2", "STATUS,1,Hold,");
    cli.expect_after(mark, |l| l.starts_with("STATUS,2,InCall,"), WAIT);
    // A hold the user asked for is theirs: choosing lines does not take it back.
    let mark = api_then(&mut cli, "hold true", "STATUS,2,Hold,");
    cli.api_ok("setline 1");
    cli.expect_after(mark, |l| l.starts_with("STATUS,1,InCall,"), WAIT);
    let mark = cli.mark();
    cli.api_ok("setline 2");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        cli.lines()[mark..]
            .iter()
            .all(|l| !l.starts_with("STATUS,2,InCall,")),
        "the user's hold of line 2 stays"
    );
    assert!(cli.api_ok("isonhold").contains("true"), "line 2 still held");
    // Now line 1 is held by autohold, line 2 by the user. Choosing line 1 by its Call-ID is a
    // line switch too: autohold's hold of line 1 is taken back, the user's of line 2 stays.
    let callid = cli.api_ok("linetocallid 1");
    let callid = callid.trim().trim_matches('"').to_string();
    assert!(!callid.is_empty(), "line 1 has a Call-ID");
    api_then(&mut cli, &format!("setline {callid}"), "STATUS,1,InCall,");
    // The user resumes line 2, then chooses it by the peer's name: line 1 is held.
    api_then(&mut cli, "hold false 2", "STATUS,2,InCall,");
    api_then(&mut cli, "setline 1003", "STATUS,1,Hold,");
    // The user resumes and holds line 1 again: the hold is theirs now, and choosing line 1
    // does not take it back (autohold still holds line 2, the one left).
    api_then(&mut cli, "hold false 1", "STATUS,1,InCall,");
    api_then(&mut cli, "hold true 1", "STATUS,1,Hold,");
    let mark = api_then(&mut cli, "setline 1", "STATUS,2,Hold,");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        cli.lines()[mark..]
            .iter()
            .all(|l| !l.starts_with("STATUS,1,InCall,")),
        "the user's hold of line 1 stays after choosing it"
    );
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    cli.quit();
}
