//! The registrar goes away and comes back (Kamailio stopped, then started again on the same
//! port): the softphone reports the failure (`onRegisterFailed`, `STATUS,-1,Register
//! Failed`), keeps retrying with back-off, and reports `onRegistered` once the registrar is
//! back; it never exits, hangs or stops answering its API meanwhile. Loopback only.

use std::time::{Duration, Instant};

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Callback, Kamailio, KamailioOpts, Params, Status, TestDir, Transport,
    KAMAILIO, KAMCMD,
};

/// A failure must be reported within: TCP at once (connection refused); UDP after the
/// refresh (the registrar grants 10 s) and RFC 3261 Timer F (32 s) without an answer.
const FAIL_WAIT: Duration = Duration::from_secs(60);
/// Back-off after the first failures is 5 s, then 10 s: the registrar is back in time.
const BACK_WAIT: Duration = Duration::from_secs(45);

fn registrar_restart(transport: Transport, name: &str) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD]) {
        return;
    }
    let dir = TestDir::new(name);
    let opts = KamailioOpts {
        max_expires: Some(10),
    };
    let mut k = Kamailio::start_with(dir.path(), opts.clone());
    let port = k.port();
    let params = Params::account(&k, "1001", transport);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    k.wait_registered("1001", WAIT);

    let mark = cli.mark();
    let stopped = Instant::now();
    k.stop();
    let failed = cli.expect_after(
        mark,
        |l| Callback::parse(l).is_some_and(|c| c.name == "onRegisterFailed"),
        FAIL_WAIT,
    );
    let failed_after = stopped.elapsed();
    cli.expect_after(
        mark,
        |l| Status::parse(l).is_some_and(|s| s.line == -1 && s.text == "Register Failed"),
        WAIT,
    );
    // Still alive and answering while the registrar is away.
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("false"));
    assert!(cli.try_status().is_none(), "the softphone exited");

    let mark = cli.mark();
    let again = Instant::now();
    let mut k2 = Kamailio::start_on_port(&dir.subdir("back"), opts, port);
    cli.expect_after(
        mark,
        |l| Callback::parse(l).is_some_and(|c| c.name == "onRegistered"),
        BACK_WAIT,
    );
    let back_after = again.elapsed();
    k2.wait_registered("1001", WAIT);
    println!(
        "{name}: failure reported {:.1} s after the registrar stopped ({failed}); registered \
         again {:.1} s after it came back",
        failed_after.as_secs_f64(),
        back_after.as_secs_f64()
    );
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    k2.assert_running();
    cli.quit();
}

#[test]
fn registrar_restart_over_tcp_reports_failure_then_registers_again() {
    registrar_restart(Transport::Tcp, "registrar_restart_tcp");
}

#[test]
fn registrar_restart_over_udp_reports_failure_then_registers_again() {
    registrar_restart(Transport::Udp, "registrar_restart_udp");
}
