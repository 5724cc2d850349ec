//! Multi-account: besides its main account (1001) the softphone registers extra accounts
//! with Kamailio, from the `extraregisteraccounts` parameter and at run time with
//! `registerex`. Each has its own binding in the location table (own Contact user), a call
//! from baresip (1002) to an extra account rings the softphone and is answered, and
//! `unregister` / quitting removes every binding.

use std::time::{Duration, Instant};

use webphone_interop::flows::{
    call_record, expect_connected, expect_incoming, expect_registered, start_cli, WAIT,
};
use webphone_interop::util::wait_for;
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Callback, Cli, Kamailio, Params, Status, TestDir,
    Transport, BARESIP, KAMAILIO, KAMCMD,
};

/// Lifetime asked for by the first extra account (its `ival` field).
const EXTRA_IVAL: u32 = 60;

/// The `Expires:` values ul.dump shows for `user`'s contacts.
fn expires_of(kam: &Kamailio, user: &str) -> Vec<u32> {
    kam.contact_fields(user, "Expires")
        .iter()
        .filter_map(|e| e.parse().ok())
        .collect()
}

/// Every contact of `user` names `user` as its user part and our loopback address.
fn assert_own_contact(kam: &Kamailio, user: &str) {
    let contacts = kam.wait_registered(user, WAIT);
    assert!(
        contacts
            .iter()
            .all(|c| c.starts_with(&format!("sip:{user}@127.0.0.1:"))),
        "{user}'s binding must carry its own Contact user: {contacts:?}"
    );
}

fn wait_unregistered(kam: &Kamailio, users: &[&str], why: &str) {
    let gone = wait_for(WAIT, || {
        users
            .iter()
            .all(|u| kam.contacts(u).is_empty())
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "{why}: still registered:\n{}",
        kam.ul_dump()
    );
}

/// An `EVENT` line about the extra account `user` that contains `what`.
fn expect_account_event(cli: &mut Cli, mark: usize, user: &str, what: &str) -> String {
    let needle = format!("account {user}@");
    cli.expect_after(
        mark,
        |l| l.starts_with("EVENT,") && l.contains(&needle) && l.contains(what),
        WAIT,
    )
}

#[test]
fn extra_accounts_register_ring_and_unregister_with_the_main_one() {
    let _serial = serial();
    let name = "multi_account_param";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let addr = kam.addr();
    // 1003 with its own interval; 1004 with realm and auth user given explicitly
    let extra = format!("{addr},1003,pass1003,{EXTRA_IVAL};{addr},1004,pass1004,,,127.0.0.1,1004;");
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params
        .set("extraregisteraccounts", &extra)
        .set("registerinterval", "600");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    // every account has its binding, each with its own Contact user and digest round
    for user in ["1001", "1003", "1004"] {
        assert_own_contact(&kam, user);
        kam.wait_lines(&["REGISTERED", user], 1, WAIT);
        kam.wait_lines(&["REQ REGISTER", &format!("auth={user}")], 1, WAIT);
    }
    let e1003 = expires_of(&kam, "1003");
    let e1001 = expires_of(&kam, "1001");
    eprintln!("expires: 1001 {e1001:?}, 1003 {e1003:?}");
    assert!(
        e1003.iter().all(|&e| e <= EXTRA_IVAL),
        "1003 asked for {EXTRA_IVAL} s: {e1003:?}"
    );
    assert!(
        e1001.iter().all(|&e| e > EXTRA_IVAL),
        "1001 asked for 600 s: {e1001:?}"
    );
    expect_account_event(&mut cli, 0, "1003", "registered");
    expect_account_event(&mut cli, 0, "1004", "registered");
    // the passwords never show up in what the softphone prints
    let leaked = cli.seen(|l| l.contains("pass1003") || l.contains("pass1004"));
    assert!(leaked.is_empty(), "password in the output: {leaked:?}");
    assert!(
        !cli.stderr().contains("pass1003"),
        "password in the log (stderr)"
    );

    // baresip calls the extra account 1003: the softphone rings, names 1003, and answers
    let mark = cli.mark();
    bs.dial(&format!("sip:1003@{addr}"));
    let ring = expect_incoming(&mut cli);
    eprintln!("ringing: {ring}");
    let line = cli.expect_after(
        mark,
        |l| Status::parse(l).is_some_and(|s| s.line >= 1 && s.endpoint_type == Some(2)),
        WAIT,
    );
    let st = Status::parse(&line).expect("status");
    assert_eq!(
        st.local, "1003",
        "the line names the account called: {line}"
    );
    kam.wait_lines(&["REQ INVITE", "sip:1003@"], 1, WAIT);
    let details = cli.api_ok(&format!("getlinedetails {}", st.line));
    assert!(
        details.contains(",1003,"),
        "getlinedetails names the account called: {details}"
    );
    cli.api_ok("accept");
    let connected = expect_connected(&mut cli);
    assert_eq!(connected.local, "1003", "{connected:?}");
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    let mark = cli.mark();
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(
        webphone_interop::cli::user_part(&cdr.called),
        "1003",
        "{cdr:?}"
    );

    // unregister() removes every binding; register() brings them all back
    let mark = cli.mark();
    cli.api_ok("unregister");
    wait_unregistered(&kam, &["1001", "1003", "1004"], "after unregister()");
    expect_account_event(&mut cli, mark, "1003", "unregistered");
    let mark = cli.mark();
    cli.api_ok("register");
    expect_registered(&mut cli, mark);
    for user in ["1001", "1003", "1004"] {
        assert_own_contact(&kam, user);
    }

    // a new parameter value applies at the next register(): 1005 in, 1003 and 1004 out
    cli.api_ok(&format!(
        "setparameter extraregisteraccounts \"{addr},1005,pass1005\""
    ));
    cli.api_ok("register");
    assert_own_contact(&kam, "1005");
    wait_unregistered(
        &kam,
        &["1003", "1004"],
        "dropped from extraregisteraccounts",
    );

    // quitting unregisters them all
    cli.quit();
    wait_unregistered(&kam, &["1001", "1005"], "after quit");
    kam.assert_running();
}

#[test]
fn registerex_replaces_the_extra_accounts_at_run_time() {
    let _serial = serial();
    let name = "multi_account_registerex";
    if !require_tools(name, &[KAMAILIO, KAMCMD]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start(dir.path());
    let addr = kam.addr();
    let params = Params::account(&kam, "1001", Transport::Udp)
        .set("audiodevicein", "null")
        .set("audiodeviceout", "null");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    kam.wait_registered("1001", WAIT);

    // two accounts, one with a wrong password: 1003 registers, 1005 fails on its own
    let mark = cli.mark();
    cli.api_ok(&format!(
        "registerex \"{addr},1003,pass1003;{addr},1005,wrong-password\""
    ));
    assert_own_contact(&kam, "1003");
    let failed = expect_account_event(&mut cli, mark, "1005", "Authentication failed");
    assert!(failed.starts_with("EVENT,WARNING,"), "{failed}");
    assert!(!failed.contains("wrong-password"), "{failed}");
    kam.wait_lines(&["FORBIDDEN REGISTER", "auth=1005"], 1, WAIT);
    assert!(kam.contacts("1005").is_empty(), "{}", kam.ul_dump());
    // the main account is untouched: no failure reported for it, still registered
    let main_failed =
        cli.seen(|l| Callback::parse(l).is_some_and(|c| c.name == "onRegisterFailed"));
    assert!(main_failed.is_empty(), "{main_failed:?}");
    assert_eq!(cli.api_ok("isregistered").trim(), "true");
    assert!(!kam.contacts("1001").is_empty());

    // a new list replaces the old one: 1003 is unregistered, 1004 registered
    let mark = cli.mark();
    cli.api_ok(&format!("registerex \"{addr},1004,pass1004,120\""));
    assert_own_contact(&kam, "1004");
    wait_unregistered(&kam, &["1003"], "1003 dropped from the list");
    expect_account_event(&mut cli, mark, "1003", "unregistered");
    assert!(!kam.contacts("1001").is_empty(), "{}", kam.ul_dump());

    // garbage is refused with a clear message and changes nothing
    let started = Instant::now();
    let err = cli
        .api("registerex \"no-user-here\"", WAIT)
        .expect_err("registerex with no usable account must fail");
    assert!(err.contains("no usable account"), "{err}");
    assert!(
        err.contains("usr"),
        "the message names the missing field: {err}"
    );
    eprintln!("registerex garbage: {err} ({:?})", started.elapsed());
    assert!(!kam.contacts("1004").is_empty(), "{}", kam.ul_dump());

    // registerex("") removes the extra accounts, the main one stays
    cli.api_ok("registerex \"\"");
    wait_unregistered(&kam, &["1004"], "after registerex(\"\")");
    assert!(!kam.contacts("1001").is_empty(), "{}", kam.ul_dump());

    // quit: nothing left
    cli.api_ok(&format!("registerex \"{addr},1003,pass1003\""));
    assert_own_contact(&kam, "1003");
    cli.quit();
    wait_unregistered(&kam, &["1001", "1003"], "after quit");
    kam.assert_running();
}

#[test]
fn extra_account_refreshes_before_the_granted_expiry_over_tcp() {
    let _serial = serial();
    let name = "multi_account_refresh_tcp";
    if !require_tools(name, &[KAMAILIO, KAMCMD]) {
        return;
    }
    const FORCED_EXPIRES: u32 = 20;
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start_with(
        dir.path(),
        webphone_interop::KamailioOpts {
            max_expires: Some(FORCED_EXPIRES),
        },
    );
    let addr = kam.addr();
    // the extra account asks for an hour: the registrar grants FORCED_EXPIRES, and the
    // extra account must follow it on its own
    let params = Params::account(&kam, "1001", Transport::Tcp)
        .set("audiodevicein", "null")
        .set("audiodeviceout", "null")
        .set(
            "extraregisteraccounts",
            format!("{addr},1003,pass1003,3600"),
        );
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    assert_own_contact(&kam, "1003");
    let granted = expect_account_event(&mut cli, 0, "1003", "registered");
    assert!(
        granted.contains(&format!("(expires {FORCED_EXPIRES} s)")),
        "{granted}"
    );
    let dump = kam.ul_dump();
    assert!(
        dump.contains(&format!("Socket: tcp:127.0.0.1:{}", kam.port())),
        "not registered over TCP:\n{dump}"
    );
    // a second successful REGISTER of 1003 before the lifetime ran out, and still bound after
    let wait = Duration::from_secs(u64::from(FORCED_EXPIRES) + 15);
    kam.wait_lines(&["REGISTERED 1003"], 2, wait);
    kam.wait_lines(&["REGISTERED 1001"], 2, wait);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !kam.contacts("1003").is_empty(),
        "1003 expired despite the refresh:\n{}",
        kam.ul_dump()
    );
    // refreshes are silent: one "registered" event for 1003
    let events = cli.seen(|l| l.starts_with("EVENT,") && l.contains("account 1003@"));
    assert_eq!(events.len(), 1, "{events:?}");
    cli.quit();
    kam.assert_running();
}
