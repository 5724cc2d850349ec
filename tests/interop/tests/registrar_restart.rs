//! The registrar goes away and comes back (Kamailio stopped, then started again on the same
//! ports): the softphone reports the failure (`onRegisterFailed`, `STATUS,-1,Register
//! Failed`), keeps retrying with back-off, and reports `onRegistered` once the registrar is
//! back; it never exits, hangs or stops answering its API meanwhile. Over UDP, TCP, TLS,
//! WS and WSS (RFC 7118); on the connection-oriented transports the lost connection is
//! replaced by a new one (RFC 5626 §4.4 flow recovery, without outbound), so Kamailio's new
//! location entry names a live connection: a call from baresip (1002, UDP) through the
//! restarted Kamailio reaches the softphone over it. Loopback only.

use std::time::{Duration, Instant};

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Callback, Kamailio, KamailioOpts, Params, Status,
    TestDir, Transport, BARESIP, KAMAILIO, KAMCMD,
};

/// A failure must be reported within: TCP at once (connection refused); UDP after the
/// refresh (the registrar grants 10 s) and RFC 3261 Timer F (32 s) without an answer.
const FAIL_WAIT: Duration = Duration::from_secs(60);
/// Back-off after the first failures is 5 s, then 10 s: the registrar is back in time.
const BACK_WAIT: Duration = Duration::from_secs(45);

/// The softphone's link to the registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Udp,
    Tcp,
    /// `transport=2`, the self-signed server certificate trusted through `tlscafile`.
    Tls,
    /// `serveraddress=ws://...` (RFC 7118).
    Ws,
    /// `serveraddress=wss://...`, the certificate trusted through `tlscafile`.
    Wss,
}

impl Link {
    fn secure(self) -> bool {
        matches!(self, Link::Tls | Link::Ws | Link::Wss)
    }

    /// How Kamailio's log and `ul.dump` name the transport.
    fn proto(self) -> &'static str {
        match self {
            Link::Udp => "udp",
            Link::Tcp => "tcp",
            Link::Tls => "tls",
            Link::Ws => "ws",
            Link::Wss => "wss",
        }
    }

    /// The listening socket of Kamailio the binding is kept on (`Socket:` of `ul.dump`;
    /// WS is served by a TCP listener, WSS by a TLS one).
    fn listener(self, k: &Kamailio) -> String {
        match self {
            Link::Udp => format!("udp:127.0.0.1:{}", k.port()),
            Link::Tcp => format!("tcp:127.0.0.1:{}", k.port()),
            Link::Tls => format!("tls:127.0.0.1:{}", k.tls_port()),
            Link::Ws => format!("tcp:127.0.0.1:{}", k.ws_port()),
            Link::Wss => format!("tls:127.0.0.1:{}", k.wss_port()),
        }
    }

    fn params(self, k: &Kamailio) -> Params {
        let base = |t| Params::account(k, "1001", t);
        let ca = || k.cert_path().display().to_string();
        match self {
            Link::Udp => base(Transport::Udp),
            Link::Tcp => base(Transport::Tcp),
            Link::Tls => base(Transport::Tcp)
                .set("transport", "2")
                .set("serveraddress", format!("127.0.0.1:{}", k.tls_port()))
                .set("tlscafile", ca()),
            Link::Ws => base(Transport::Tcp)
                .set("transport", "-1")
                .set("serveraddress", format!("ws://127.0.0.1:{}", k.ws_port())),
            Link::Wss => base(Transport::Tcp)
                .set("transport", "-1")
                .set("serveraddress", format!("wss://127.0.0.1:{}", k.wss_port()))
                .set("tlscafile", ca()),
        }
    }
}

/// Waits until Kamailio logs a REGISTER of 1001 that came over `link`; returns the line.
fn wait_register_over(k: &mut Kamailio, link: Link) -> String {
    let from = format!("from {}:", link.proto());
    k.wait_lines(&["REQ REGISTER", "user=1001", &from], 1, WAIT)
        .remove(0)
}

fn registrar_restart(link: Link, name: &str) {
    let _serial = serial();
    let mut tools = vec![KAMAILIO, KAMCMD, BARESIP];
    if link.secure() {
        tools.push("openssl");
    }
    if !require_tools(name, &tools) {
        return;
    }
    let dir = TestDir::new(name);
    let opts = KamailioOpts {
        max_expires: Some(10),
    };
    let mut k = if link.secure() {
        Kamailio::start_secure(dir.path(), opts.clone())
    } else {
        Kamailio::start_with(dir.path(), opts.clone())
    };
    let port = k.port();
    let secure = k.secure().cloned();
    let (params, _rec) = link.params(&k).with_file_audio(&dir);
    let params = params.set("autoaccept", "true");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    k.wait_registered("1001", WAIT);
    wait_register_over(&mut k, link);

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
    let back = dir.subdir("back");
    let mut k2 = match secure {
        Some(s) => Kamailio::start_secure_on_ports(&back, opts, port, s),
        None => Kamailio::start_on_port(&back, opts, port),
    };
    cli.expect_after(
        mark,
        |l| Callback::parse(l).is_some_and(|c| c.name == "onRegistered"),
        BACK_WAIT,
    );
    let back_after = again.elapsed();
    // The restarted registrar saw the new REGISTER over the same transport and keeps a
    // location entry for it.
    let register = wait_register_over(&mut k2, link);
    let sockets = k2.contact_fields("1001", "Socket");
    let listener = link.listener(&k2);
    assert!(
        sockets.iter().any(|s| s == &listener),
        "{name}: no location entry on {listener}: {sockets:?}"
    );
    k2.wait_registered("1001", WAIT);
    println!(
        "{name}: failure reported {:.1} s after the registrar stopped ({failed}); registered \
         again {:.1} s after it came back ({register})",
        failed_after.as_secs_f64(),
        back_after.as_secs_f64()
    );
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("true"));

    // An incoming call through the restarted registrar reaches the softphone (over the new
    // connection on TCP/TLS/WS/WSS).
    let mut bs = Baresip::start(&dir.subdir("baresip"), BaresipOpts::registered_to(port));
    let mark = cli.mark();
    bs.dial(&format!("sip:1001@127.0.0.1:{port}"));
    cli.expect_after(mark, |l| l.contains("callConnected"), WAIT);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    k2.assert_running();
    cli.quit();
}

#[test]
fn registrar_restart_over_tcp_reports_failure_then_registers_again() {
    registrar_restart(Link::Tcp, "registrar_restart_tcp");
}

#[test]
fn registrar_restart_over_udp_reports_failure_then_registers_again() {
    registrar_restart(Link::Udp, "registrar_restart_udp");
}

#[test]
fn registrar_restart_over_tls_reports_failure_then_registers_again() {
    registrar_restart(Link::Tls, "registrar_restart_tls");
}

#[test]
fn registrar_restart_over_ws_reports_failure_then_registers_again() {
    registrar_restart(Link::Ws, "registrar_restart_ws");
}

#[test]
fn registrar_restart_over_wss_reports_failure_then_registers_again() {
    registrar_restart(Link::Wss, "registrar_restart_wss");
}
