//! Presence and BLF through Kamailio as the presence server (issue 6), with real peers only:
//! Kamailio's presence variant ([`Kamailio::start_presence`]: presence, presence_xml,
//! presence_dialoginfo, pua_dialoginfo), three softphones and baresip.
//!
//! Softphone B (1002) is watched by two softphones: A (1001) through the API
//! (`checkpresence 1002`, `checkblf 1002`) and C (1004) through the parameters
//! (`presenceuserlist=1002`, `blfuserlist=1002`: subscribed after registering).
//!
//! - Presence (RFC 3856, PIDF RFC 3863, PUBLISH RFC 3903): B's `setpresencestatus Away`, then
//!   `Online`, are PUBLISHes that Kamailio authenticates and stores; its NOTIFYs become
//!   `PRESENCE,1002,Away,Away,,` / `PRESENCE,1002,Available,Online,,` at both watchers, with
//!   the matching `onPresenceStateChange` callbacks.
//! - BLF (dialog package, RFC 4235): baresip (1003) calls B through the proxy, which tracks
//!   the call as a dialog and PUBLISHes its state for B (callee: `direction="recipient"`).
//!   The watchers see B idle (`BLF,1002,undefined,terminated,`, nothing published yet),
//!   ringing (`early`), in call (`confirmed`, after B's `accept`) and idle again
//!   (`terminated`, after B's `hangup`), the last three with baresip's Call-ID, as `BLF`
//!   notifications and `onBLFStateChange` callbacks in that order.
//! - Over TCP, and over TLS (B) and WebSocket (A), the caller's side: B publishes `Away` to
//!   its watcher A, then calls baresip; A sees B's dialog as the initiator (`direction="initiator"`): trying or early,
//!   confirmed, terminated, with B's own Call-ID.
//! - Refreshes (RFC 6665 §4.1.2.1, RFC 3903 §4.4): with everything granted 10 s, each
//!   watcher's two SUBSCRIBEs come back in-dialog and B's PUBLISH is refreshed, all
//!   accepted by the presence server; B's later `setpresencestatus DND` still reaches both
//!   (`PRESENCE,1002,Busy,Do not disturb,,`) and no subscription is reported failed.

use std::path::Path;
use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_incoming, expect_registered, WAIT};
use webphone_interop::kamailio_presence::require_presence_modules;
use webphone_interop::util::wait_for;
use webphone_interop::{
    require_tools, serial, AnswerMode, Baresip, BaresipOpts, Callback, Cli, Kamailio, KamailioOpts,
    Params, TestDir, Transport, BARESIP, KAMAILIO, KAMCMD,
};

/// A softphone registered with `kam` as `user` (plus `extra` parameters), its files in
/// `dir/<user>`.
fn softphone(dir: &TestDir, kam: &Kamailio, user: &str, extra: &[(&str, &str)]) -> Cli {
    softphone_over(dir, kam, user, Transport::Udp, extra)
}

/// [`softphone`] over `transport`.
fn softphone_over(
    dir: &TestDir,
    kam: &Kamailio,
    user: &str,
    transport: Transport,
    extra: &[(&str, &str)],
) -> Cli {
    let (mut params, _rec) = Params::account(kam, user, transport).with_file_audio(dir);
    let own: &Path = &dir.subdir(user);
    let rec = own.join("cli-received.wav");
    params = params.set("audiodeviceout", format!("file:{}", rec.display()));
    for (k, v) in extra {
        params = params.set(k, *v);
    }
    let mut cli = Cli::start(own, &params.pairs());
    cli.expect(|l| l == "START,api", WAIT);
    cli.expect(|l| l == "START,sip", WAIT);
    expect_registered(&mut cli, 0);
    cli
}

/// The string arguments of the `name` callbacks seen so far whose first argument is `peer`.
fn callbacks(cli: &Cli, name: &str, peer: &str) -> Vec<Vec<String>> {
    cli.seen(|l| l.starts_with(&format!("CALLBACK,{name},")))
        .iter()
        .filter_map(|l| Callback::parse(l))
        .map(|c| {
            c.args
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .filter(|a| a.first().is_some_and(|p| p == peer))
        .collect()
}

/// Waits (from `cli`'s cursor) for `PRESENCE,1002,<state>,<details>,,` and its callback.
fn expect_presence(cli: &mut Cli, who: &str, state: &str, details: &str) {
    let prefix = format!("PRESENCE,1002,{state},");
    let line = cli.expect(|l| l.starts_with(&prefix), WAIT);
    assert_eq!(
        line,
        format!("PRESENCE,1002,{state},{details},,"),
        "{who}: B's presence through Kamailio"
    );
    let cb = format!("CALLBACK,onPresenceStateChange,[\"1002\",\"{state}\"");
    cli.expect(|l| l.starts_with(&cb), WAIT);
}

/// Waits (from `cli`'s cursor) for `BLF,1002,<rest>` and then its callback.
fn expect_blf(cli: &mut Cli, rest: &str) {
    let want = format!("BLF,1002,{rest}");
    cli.expect(|l| l == want, WAIT);
    let args: Vec<String> = rest.split(',').map(|s| format!("\"{s}\"")).collect();
    let cb = format!("CALLBACK,onBLFStateChange,[\"1002\",{}", args.join(","));
    cli.expect(|l| l.starts_with(&cb), WAIT);
}

#[test]
fn watchers_see_published_presence_and_blf_of_a_call_through_kamailio() {
    let _serial = serial();
    let name = "presence_blf_kamailio";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) || !require_presence_modules(name) {
        return;
    }
    let dir = TestDir::new(name);
    // Registrations, subscriptions and publications granted 10 s: refreshed within the test.
    let mut kam = Kamailio::start_presence(
        dir.path(),
        KamailioOpts {
            max_expires: Some(10),
        },
    );
    let mut b = softphone(&dir, &kam, "1002", &[]);
    let mut a = softphone(&dir, &kam, "1001", &[]);
    let mut c = softphone(
        &dir,
        &kam,
        "1004",
        &[("presenceuserlist", "1002"), ("blfuserlist", "1002")],
    );
    a.api_ok("checkpresence 1002");
    a.api_ok("checkblf 1002");
    for (event, user) in [
        ("presence", "1001"),
        ("dialog", "1001"),
        ("presence", "1004"),
        ("dialog", "1004"),
    ] {
        let ev = format!("event={event}");
        let us = format!("user={user}");
        kam.wait_lines(&["PRESENCE SUBSCRIBE", &ev, &us], 1, WAIT);
    }
    // Nothing published for B yet: no PIDF (no PRESENCE line), and no dialog (idle).
    for w in [&mut a, &mut c] {
        expect_blf(w, "undefined,terminated,");
    }

    // ---- presence: B publishes, the watchers are notified by the presence server ----
    b.api_ok("setpresencestatus Away");
    kam.wait_lines(
        &["PRESENCE PUBLISH", "event=presence", "user=1002"],
        1,
        WAIT,
    );
    expect_presence(&mut a, "A (checkpresence)", "Away", "Away");
    expect_presence(&mut c, "C (presenceuserlist)", "Away", "Away");
    b.api_ok("setpresencestatus Online");
    expect_presence(&mut a, "A (checkpresence)", "Available", "Online");
    expect_presence(&mut c, "C (presenceuserlist)", "Available", "Online");

    // ---- BLF: baresip 1003 calls B; the proxy publishes the dialog's states ----
    let mut caller = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    caller.dial(&format!("sip:1002@127.0.0.1:{}", kam.port()));
    expect_incoming(&mut b);
    let early = a.expect(|l| l.starts_with("BLF,1002,receiver,early,"), WAIT);
    let call_id = early
        .strip_prefix("BLF,1002,receiver,early,")
        .unwrap_or("")
        .to_string();
    assert!(!call_id.is_empty(), "the ringing call's Call-ID: {early}");
    // It is baresip's call, and the proxy published B's dialog itself (B sends no PUBLISH
    // for calls).
    kam.wait_lines(&["REQ INVITE", &format!("call-id={call_id}")], 1, WAIT);
    kam.wait_lines(
        &[
            "PRESENCE PUBLISH",
            "sip:1002@",
            "event=dialog",
            "from udp:127.0.0.1:",
        ],
        1,
        WAIT,
    );
    expect_blf(&mut c, &format!("receiver,early,{call_id}"));

    b.api_ok("accept");
    expect_connected(&mut b);
    caller.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    for w in [&mut a, &mut c] {
        expect_blf(w, &format!("receiver,confirmed,{call_id}"));
    }
    std::thread::sleep(Duration::from_millis(500));

    b.api_ok("hangup");
    caller.wait_event("CALL_CLOSED", |_| true, WAIT);
    for w in [&mut a, &mut c] {
        expect_blf(w, &format!("receiver,terminated,{call_id}"));
    }

    // The whole BLF story, in order, at both watchers (repeats of a state merged).
    let want: Vec<Vec<String>> = [
        ["undefined", "terminated", ""],
        ["receiver", "early", call_id.as_str()],
        ["receiver", "confirmed", call_id.as_str()],
        ["receiver", "terminated", call_id.as_str()],
    ]
    .iter()
    .map(|w| {
        std::iter::once("1002")
            .chain(w.iter().copied())
            .map(str::to_string)
            .collect()
    })
    .collect();
    for (who, w) in [("A", &a), ("C", &c)] {
        let mut seen = callbacks(w, "onBLFStateChange", "1002");
        seen.dedup();
        assert_eq!(
            seen, want,
            "{who}: onBLFStateChange idle, ringing, in call, idle"
        );
        assert!(
            w.seen(|l| l.starts_with("BLF,") && l.contains(",failed"))
                .is_empty(),
            "{who}: no failed BLF subscription: {:?}",
            w.lines()
        );
    }

    // ---- refreshes (granted 10 s): in-dialog SUBSCRIBEs, a body-less PUBLISH (RFC 3903
    // §4.4) ----
    let accepted = |kam: &Kamailio, needles: &[&str]| {
        kam.lines_with(needles)
            .into_iter()
            .filter(|l| l.contains(" ok=1"))
            .collect::<Vec<_>>()
    };
    for user in ["1001", "1004"] {
        let us = format!("user={user}");
        wait_for(Duration::from_secs(20), || {
            let refreshes = accepted(&kam, &["PRESENCE SUBSCRIBE", &us])
                .into_iter()
                .filter(|l| !l.contains("to-tag=<null>"))
                .count();
            (refreshes >= 2).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{user}: presence and dialog subscriptions refreshed in-dialog and accepted; \
                 script lines:\n{}",
                kam.script_lines().join("\n")
            )
        });
    }
    wait_for(Duration::from_secs(20), || {
        let n = accepted(&kam, &["PRESENCE PUBLISH", "event=presence", "user=1002"]).len();
        (n >= 3).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "1002's publication refreshed and accepted; script lines:\n{}",
            kam.script_lines().join("\n")
        )
    });
    // The refreshed subscriptions still carry B's changes.
    b.api_ok("setpresencestatus DND");
    expect_presence(&mut a, "A (checkpresence)", "Busy", "Do not disturb");
    expect_presence(&mut c, "C (presenceuserlist)", "Busy", "Do not disturb");
    for (who, w) in [("A", &a), ("C", &c)] {
        assert!(
            w.seen(|l| l.starts_with("PRESENCE,1002,Unknown"))
                .is_empty(),
            "{who}: no failed presence subscription: {:?}",
            w.lines()
        );
    }
    for mut cli in [a, b, c] {
        cli.quit();
    }
}

/// How a softphone of the caller's-side test reaches the presence server.
#[derive(Clone, Copy, Debug)]
enum Link {
    Tcp,
    Tls,
    Ws,
}

impl Link {
    /// Kamailio's `$proto` for this link.
    fn proto(self) -> &'static str {
        match self {
            Link::Tcp => "tcp",
            Link::Tls => "tls",
            Link::Ws => "ws",
        }
    }

    /// The account parameters over this link (TLS trusts the server's certificate).
    fn params(self, kam: &Kamailio, user: &str) -> Vec<(&'static str, String)> {
        match self {
            Link::Tcp => vec![("transport", "1".into())],
            Link::Tls => vec![
                ("transport", "2".into()),
                ("serveraddress", format!("127.0.0.1:{}", kam.tls_port())),
                ("tlscafile", kam.cert_path().display().to_string()),
            ],
            Link::Ws => vec![
                ("transport", "-1".into()),
                ("serveraddress", format!("ws://127.0.0.1:{}", kam.ws_port())),
            ],
        }
        .into_iter()
        .chain([("username", user.to_owned())])
        .collect()
    }
}

#[test]
fn presence_and_the_callers_side_of_a_call_over_tcp() {
    callers_side("blf_caller_side_tcp", Link::Tcp, Link::Tcp);
}

#[test]
fn presence_and_the_callers_side_of_a_call_over_tls_and_ws() {
    // The watched phone over TLS, its watcher over WebSocket (RFC 7118): the presence
    // server's NOTIFYs must find the watcher's WebSocket connection.
    callers_side("blf_caller_side_tls_ws", Link::Tls, Link::Ws);
}

/// B (1002, over `b_link`) publishes `Away` to its watcher A (1001, over `a_link`), then
/// calls baresip; A sees B's dialog as the initiator: trying or early, confirmed,
/// terminated, with B's own Call-ID.
fn callers_side(name: &str, b_link: Link, a_link: Link) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) || !require_presence_modules(name) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start_presence_secure(dir.path(), KamailioOpts::default());
    let over = |link: Link, user: &str| {
        let extra = link.params(&kam, user);
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        softphone_over(&dir, &kam, user, Transport::Udp, &extra)
    };
    let mut b = over(b_link, "1002");
    let mut a = over(a_link, "1001");
    let (from_a, from_b) = (
        format!("from {}:", a_link.proto()),
        format!("from {}:", b_link.proto()),
    );
    let mut callee = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            answer: AnswerMode::Manual,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    a.api_ok("checkblf 1002");
    kam.wait_lines(
        &["PRESENCE SUBSCRIBE", "event=dialog", "user=1001", &from_a],
        1,
        WAIT,
    );
    expect_blf(&mut a, "undefined,terminated,");
    // Presence too: B's PUBLISH and A's SUBSCRIBE arrive over their links.
    a.api_ok("checkpresence 1002");
    b.api_ok("setpresencestatus Away");
    kam.wait_lines(
        &["PRESENCE PUBLISH", "event=presence", "user=1002", &from_b],
        1,
        WAIT,
    );
    expect_presence(&mut a, "A", "Away", "Away");

    // Through B's own server connection (a URI with Kamailio's UDP port would not do for TLS).
    b.api_ok("call 1003");
    callee.wait_event("CALL_INCOMING", |_| true, WAIT);
    // The proxy publishes the caller's dialog as `trying` (INVITE sent) and `early` (180)
    // almost at once; Kamailio handles the two PUBLISHes in parallel workers and may notify
    // `trying` twice, so either state counts as the ringing call.
    let ringing = a.expect(
        |l| {
            l.starts_with("BLF,1002,initiator,early,")
                || l.starts_with("BLF,1002,initiator,trying,")
        },
        WAIT,
    );
    let (state, call_id) = ringing
        .strip_prefix("BLF,1002,initiator,")
        .and_then(|r| r.split_once(','))
        .map(|(s, c)| (s.to_string(), c.to_string()))
        .unwrap_or_default();
    assert!(!call_id.is_empty(), "the ringing call's Call-ID: {ringing}");
    // B's own call: the INVITE it sent over its link carried that Call-ID.
    kam.wait_lines(
        &["REQ INVITE", &from_b, &format!("call-id={call_id}")],
        1,
        WAIT,
    );
    let cb = format!("CALLBACK,onBLFStateChange,[\"1002\",\"initiator\",\"{state}\",\"{call_id}\"");
    a.expect(|l| l.starts_with(&cb), WAIT);

    callee.command("accept");
    expect_connected(&mut b);
    expect_blf(&mut a, &format!("initiator,confirmed,{call_id}"));
    b.api_ok("hangup");
    callee.wait_event("CALL_CLOSED", |_| true, WAIT);
    expect_blf(&mut a, &format!("initiator,terminated,{call_id}"));
    assert!(
        a.seen(|l| l.starts_with("BLF,") && l.contains(",failed"))
            .is_empty(),
        "no failed BLF subscription: {:?}",
        a.lines()
    );
    for mut cli in [a, b] {
        cli.quit();
    }
}

/// A softphone that unregisters or quits takes its published presence down (PUBLISH with
/// `Expires: 0`, RFC 3903 §4.5), instead of staying "Available" at the presence server until
/// the publication expires (an hour by default): Kamailio then NOTIFYs its watcher without a
/// document, which the watcher shows as `Offline`.
#[test]
fn a_phone_that_unregisters_or_quits_is_seen_offline_by_its_watcher() {
    let _serial = serial();
    let name = "presence_offline_kamailio";
    if !require_tools(name, &[KAMAILIO, KAMCMD]) || !require_presence_modules(name) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start_presence(dir.path(), KamailioOpts { max_expires: None });
    let mut b = softphone(&dir, &kam, "1002", &[]);
    let mut a = softphone(&dir, &kam, "1001", &[]);
    a.api_ok("checkpresence 1002");
    b.api_ok("setpresencestatus Online");
    expect_presence(&mut a, "A", "Available", "Online");

    b.api_ok("unregister");
    expect_presence(&mut a, "A after B's unregister", "Offline", "");

    let mark = b.mark();
    b.api_ok("register");
    expect_registered(&mut b, mark);
    b.api_ok("setpresencestatus Online");
    expect_presence(&mut a, "A", "Available", "Online");
    b.quit();
    expect_presence(&mut a, "A after B quit", "Offline", "");
    a.quit();
    kam.stop();
}
