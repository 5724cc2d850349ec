//! Issue 6 bullets that had no test against a peer, each against SIPp on loopback:
//!
//! - BLF (`checkblf`, dialog event package RFC 4235 over RFC 6665): a notifier's NOTIFYs become
//!   `BLF` notifications and `onBLFStateChange` callbacks (ringing, in call, idle), and a
//!   refused subscription is reported as `failed` (`peers/sipp-uas-blf-*.xml`); `enableblf`
//!   1 switches BLF off after a refusal (not after one about the watched user, 404), 3 keeps
//!   subscribing, 0 never subscribes; a subscription ended with `noresource` fails.
//! - Outgoing number preparation seen by the far end: `normalizenumber`, `numpxrewrite` and
//!   `techprefix` in the Request-URI SIPp receives.

use webphone_interop::cli::Callback;
use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::{free_port, require_tools, serial, Params, Sipp, TestDir, SIPP};

fn softphone(dir: &TestDir, extra: &[(&str, &str)]) -> Params {
    let mut p = Params::direct("1001", free_port());
    for (k, v) in extra {
        p = p.set(k, *v);
    }
    p.with_file_audio(dir).0
}

/// The `onBLFStateChange` callbacks for `peer`, as (direction, state, callid).
fn blf_callbacks(cli: &webphone_interop::cli::Cli, peer: &str) -> Vec<(String, String, String)> {
    cli.seen(|l| l.starts_with("CALLBACK,onBLFStateChange,"))
        .iter()
        .filter_map(|l| Callback::parse(l))
        .map(|c| {
            let s = |i: usize| {
                c.args
                    .get(i)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            (s(0), s(1), s(2), s(3))
        })
        .filter(|(p, ..)| p == peer)
        .map(|(_, d, st, id)| (d, st, id))
        .collect()
}

#[test]
fn blf_notifies_ringing_in_call_and_idle_and_a_refused_watch_fails() {
    let _serial = serial();
    if !require_tools("blf_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("blf_sipp");
    let mut notifier = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-dialog.xml"),
        None,
        &[],
    );
    let mut refuser = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-refuse.xml"),
        None,
        &[],
    );
    let params = softphone(&dir, &[]);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!(
        "checkblf sip:1002@127.0.0.1:{},sip:1003@127.0.0.1:{}",
        notifier.port(),
        refuser.port()
    ));
    for state in ["early", "confirmed"] {
        let line = cli.expect(
            |l| l.starts_with(&format!("BLF,1002,receiver,{state},")),
            WAIT,
        );
        assert_eq!(line, format!("BLF,1002,receiver,{state},blf-call-1@pbx"));
    }
    cli.expect(|l| l == "BLF,1002,undefined,terminated,", WAIT);
    notifier.assert_success(WAIT);
    // The callback follows its notification line.
    cli.expect_after(
        0,
        |l| l.starts_with("CALLBACK,onBLFStateChange,[\"1002\",\"undefined\",\"terminated\""),
        WAIT,
    );
    assert_eq!(
        blf_callbacks(&cli, "1002"),
        vec![
            ("receiver".into(), "early".into(), "blf-call-1@pbx".into()),
            (
                "receiver".into(),
                "confirmed".into(),
                "blf-call-1@pbx".into()
            ),
            ("undefined".into(), "terminated".into(), String::new()),
        ]
    );

    // The refused watch: no state from the peer, "failed" instead.
    let failed = cli.expect_after(0, |l| l.starts_with("BLF,1003,"), WAIT);
    assert_eq!(failed, "BLF,1003,undefined,failed,");
    cli.expect_after(
        0,
        |l| l.starts_with("CALLBACK,onBLFStateChange,[\"1003\""),
        WAIT,
    );
    assert_eq!(
        blf_callbacks(&cli, "1003"),
        vec![("undefined".into(), "failed".into(), String::new())]
    );
    refuser.assert_success(WAIT);
    cli.quit();
}

/// One refusing BLF server (SIPp, one SUBSCRIBE); the `BLF,1003,...,failed` line seen.
fn refused_once(dir: &TestDir, cli: &mut webphone_interop::Cli) {
    let mut refuser = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-refuse.xml"),
        None,
        &[],
    );
    let mark = cli.mark();
    cli.api_ok(&format!("checkblf sip:1003@127.0.0.1:{}", refuser.port()));
    let failed = cli.expect_after(mark, |l| l.starts_with("BLF,1003,"), WAIT);
    assert_eq!(failed, "BLF,1003,undefined,failed,");
    refuser.assert_success(WAIT);
}

#[test]
fn enableblf_auto_switches_off_after_a_refusal_and_force_keeps_subscribing() {
    let _serial = serial();
    if !require_tools("enableblf_sipp", &[SIPP]) {
        return;
    }
    // 1 (auto, the default): the first refusal before any NOTIFY switches BLF off.
    let dir = TestDir::new("enableblf_auto");
    let mut cli = start_cli(&dir, &softphone(&dir, &[]));
    refused_once(&dir, &mut cli);
    let again = cli.api(
        &format!("checkblf sip:1003@127.0.0.1:{}", free_port()),
        WAIT,
    );
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.contains("switched off (enableblf 1")),
        "auto after a refusal: {again:?}"
    );
    cli.quit();
    // 3 (force): every checkblf subscribes again, refusals or not.
    let dir = TestDir::new("enableblf_force");
    let mut cli = start_cli(&dir, &softphone(&dir, &[("enableblf", "3")]));
    refused_once(&dir, &mut cli);
    refused_once(&dir, &mut cli);
    cli.quit();
    // 0: nothing is subscribed.
    let dir = TestDir::new("enableblf_off");
    let mut cli = start_cli(&dir, &softphone(&dir, &[("enableblf", "0")]));
    let off = cli.api(
        &format!("checkblf sip:1003@127.0.0.1:{}", free_port()),
        WAIT,
    );
    assert!(
        off.as_ref().is_err_and(|e| e.contains("enableblf 0")),
        "enableblf 0: {off:?}"
    );
    cli.quit();
}

/// `enableblf` 1 (auto): a watch refused with 404 (an unknown extension, or an outside number
/// in the contacts) fails that watch only; BLF stays on, and the next `checkblf` subscribes
/// (`peers/sipp-uas-blf-unknown-user.xml`). A notifier that accepts the SUBSCRIBE and then
/// ends it with `reason=noresource` and no state is a failed watch too, not an idle line
/// (`peers/sipp-uas-blf-noresource.xml`, RFC 6665 §4.1.3). A 480 (not logged in) is the
/// state `unregistered` (`peers/sipp-uas-blf-not-registered.xml`).
#[test]
fn blf_refused_for_one_unknown_user_stays_on_noresource_fails_and_480_is_unregistered() {
    let _serial = serial();
    if !require_tools("blf_unknown_user_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("blf_unknown_user");
    let mut cli = start_cli(&dir, &softphone(&dir, &[]));
    let mut unknown = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-unknown-user.xml"),
        None,
        &[],
    );
    cli.api_ok(&format!("checkblf sip:1009@127.0.0.1:{}", unknown.port()));
    let failed = cli.expect_after(0, |l| l.starts_with("BLF,1009,"), WAIT);
    assert_eq!(failed, "BLF,1009,undefined,failed,");
    unknown.assert_success(WAIT);

    let mut ended = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-noresource.xml"),
        None,
        &[],
    );
    let mark = cli.mark();
    // Still on after the 404: this one is subscribed.
    cli.api_ok(&format!("checkblf sip:1008@127.0.0.1:{}", ended.port()));
    let line = cli.expect_after(mark, |l| l.starts_with("BLF,1008,"), WAIT);
    assert_eq!(
        line, "BLF,1008,undefined,failed,",
        "noresource is a failed watch"
    );
    ended.assert_success(WAIT);
    assert_eq!(
        blf_callbacks(&cli, "1008"),
        vec![("undefined".into(), "failed".into(), String::new())],
        "no idle (terminated) state before or after the failure"
    );

    // 480 (RFC 3261 §21.4.18: not logged in): the watched user is not registered, a state of
    // its own; BLF stays on.
    let mut away = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-blf-not-registered.xml"),
        None,
        &[],
    );
    let mark = cli.mark();
    cli.api_ok(&format!("checkblf sip:1007@127.0.0.1:{}", away.port()));
    let line = cli.expect_after(mark, |l| l.starts_with("BLF,1007,"), WAIT);
    assert_eq!(line, "BLF,1007,undefined,unregistered,");
    away.assert_success(WAIT);
    cli.expect_after(
        mark,
        |l| l.starts_with("CALLBACK,onBLFStateChange,[\"1007\",\"undefined\",\"unregistered\""),
        WAIT,
    );
    cli.quit();
}

#[test]
fn normalized_rewritten_and_prefixed_number_reaches_the_peer() {
    let _serial = serial();
    if !require_tools("dial_rewrite_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("dial_rewrite_sipp");
    let mut uas = Sipp::uas(dir.path());
    let server = format!("127.0.0.1:{}", uas.port());
    // Spaces, brackets and dashes go (normalizenumber), the international 00 becomes +
    // (numpxrewrite "00,+,8,20"), the carrier prefix 99 goes in front (techprefix).
    let params = softphone(
        &dir,
        &[
            ("serveraddress", &server),
            ("normalizenumber", "1"),
            ("numpxrewrite", "06,+36,8,20;00,+,8,20"),
            ("techprefix", "99"),
        ],
    );
    let mut cli = start_cli(&dir, &params);
    cli.api_ok("call \"00 36 (1) 234-5678\"");
    expect_connected(&mut cli);
    let seen = uas.messages();
    let expected = format!("INVITE sip:99+3612345678@{server}");
    assert!(
        seen.contains(&expected),
        "SIPp must see {expected:?}:\n{seen}"
    );
    cli.api_ok("hangup");
    uas.assert_success(WAIT);
    cli.quit();
}

/// RFC 3994 is-composing with a chat peer that is not ours. Out: `chatcomposing` and
/// `sendchat` reach SIPp as an `application/im-iscomposing+xml` MESSAGE whose document says
/// `active` with a refresh and the text as `text/plain` (which ends the typing state, RFC 3994
/// §3.2, so no idle follows it); typing again and stopping sends `active`, then `idle`. In: SIPp's
/// typing, text and stop (with whitespace, a `refresh` and a `lastactive` our engine never
/// writes) become CHATCOMPOSING 1, CHAT and CHATCOMPOSING 0.
#[test]
fn is_composing_both_ways_with_a_third_party_chat_peer() {
    let _serial = serial();
    if !require_tools("composing_sipp", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("composing_sipp");
    let mut peer = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-message.xml"),
        None,
        &["-m", "4"],
    );
    let port = free_port();
    let params = Params::direct("1001", port).with_file_audio(&dir).0;
    let mut cli = start_cli(&dir, &params);
    let to = format!("sip:bob@127.0.0.1:{}", peer.port());
    let typing = cli.api_ok(&format!("chatcomposing {to} 1"));
    assert_eq!(typing, "true", "the typing state went out");
    // A second key press within the refresh interval sends nothing (RFC 3994 §3.1).
    let again = cli.api_ok(&format!("chatcomposing {to} 1"));
    assert_eq!(again, "false", "no repeat");
    cli.api_ok(&format!("sendchat {to} \"hello third party\""));
    cli.expect(|l| l.starts_with("CHATREPORT,") && l.contains(",2,"), WAIT);
    // The text itself ended the typing state (RFC 3994 §3.2): no idle goes out for it.
    let stopped = cli.api_ok(&format!("chatcomposing {to} 0"));
    assert_eq!(stopped, "false", "no idle after the text");
    // Typing again, then stopping without sending: active, then idle.
    assert_eq!(cli.api_ok(&format!("chatcomposing {to} 1")), "true");
    assert_eq!(cli.api_ok(&format!("chatcomposing {to} 0")), "true");
    peer.assert_success(WAIT);
    let log = peer.messages();
    // Each MESSAGE once, by Call-ID (a UDP retransmission is logged again).
    let mut call_ids = std::collections::HashSet::new();
    let received: Vec<&str> = log
        .split("MESSAGE sip:bob@")
        .skip(1)
        .map(|m| m.split("SIP/2.0 200").next().unwrap_or(m))
        .filter(|m| {
            let id = m
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
                .unwrap_or_default();
            call_ids.insert(id.to_string())
        })
        .collect();
    assert_eq!(received.len(), 4, "four MESSAGEs:\n{log}");
    let composing = "application/im-iscomposing+xml";
    for i in [0, 2] {
        assert!(
            received[i].contains(composing)
                && received[i].contains("<state>active</state>")
                && received[i].contains("<refresh>60</refresh>"),
            "MESSAGE {i}: the typing state:\n{}",
            received[i]
        );
    }
    assert!(
        received[1].contains("text/plain") && received[1].contains("hello third party"),
        "then the text:\n{}",
        received[1]
    );
    assert!(
        received[3].contains(composing) && received[3].contains("<state>idle</state>"),
        "last idle:\n{}",
        received[3]
    );

    let mut talker = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uac-composing.xml"),
        Some(&format!("127.0.0.1:{port}")),
        &["-s", "1001", "-m", "1"],
    );
    talker.assert_success(WAIT);
    // In the order sent.
    cli.expect(|l| l == "CHATCOMPOSING,0,sipp,1", WAIT);
    // (SIPp ends the body with CRLF, which the notification shows as spaces.)
    cli.expect(|l| l.trim_end() == "CHAT,0,sipp,hi from sipp", WAIT);
    cli.expect(|l| l == "CHATCOMPOSING,0,sipp,0", WAIT);
    cli.quit();
}
