//! ICE (RFC 8445) with baresip's `ice` media-NAT module and our own coturn on loopback:
//! - host and server-reflexive gathering against coturn's STUN, both directions of the call;
//! - relayed media forced through coturn on our side (`iceTransportPolicy: 'relay'` in `ice`),
//!   proved by coturn's per-allocation peer traffic counters;
//! - a peer without ICE: plain RTP to its `c=`/`m=`.
//!
//! Each test asserts what the peer saw (our candidates reached baresip's ICE), that the call
//! connects, and that the tones are heard both ways.

use std::time::Duration;

use webphone_interop::coturn::{Coturn, TURNSERVER, TURN_PASSWORD, TURN_USER};
use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::{
    assert_tone, free_port, require_tools, serial, Baresip, BaresipOpts, Params, TestDir, BARESIP,
    CLI_TONE_HZ,
};

const TALK: Duration = Duration::from_secs(4);

/// baresip without a registrar, with the `ice` module loaded and an auto-answering ICE account
/// `1003` (its STUN server: our coturn). Returns it and the account's URI.
fn baresip_with_ice(dir: &TestDir, coturn: &Coturn, ice: bool) -> (Baresip, String) {
    baresip_account(dir, coturn, ice, "", true)
}

/// [`baresip_with_ice`] with more account parameters (`;mediaenc=dtls_srtp`, ...) and the
/// modules they name loaded first (`insmod`).
fn baresip_account(
    dir: &TestDir,
    coturn: &Coturn,
    ice: bool,
    extra: &str,
    rtcp_mux: bool,
) -> (Baresip, String) {
    // With rtcp_mux (RFC 5761) RTCP shares the RTP candidate; without it (baresip's default)
    // RTCP is ICE component 2 on its own port.
    let mut bs = Baresip::start_with_config(
        dir.path(),
        BaresipOpts {
            proxy_port: None,
            ..BaresipOpts::default()
        },
        if rtcp_mux { "rtcp_mux\t\tyes\n" } else { "" },
    );
    let port = bs.sip_port();
    let uri = format!("sip:1003@127.0.0.1:{port}");
    let nat = if ice {
        let r = bs.command("insmod ice");
        assert!(
            r.ok || bs.log().contains("ice"),
            "baresip could not load its ice module: {r:?}\n{}",
            bs.log_tail(20)
        );
        format!(";medianat=ice;stunserver=stun:{}", coturn.addr())
    } else {
        String::new()
    };
    if extra.contains("dtls_srtp") {
        let r = bs.command("insmod dtls_srtp");
        assert!(r.ok, "baresip could not load dtls_srtp: {r:?}");
    }
    bs.command(&format!(
        "uanew <{uri};transport=udp>;answermode=auto;regint=0;audio_codecs=PCMU,PCMA{nat}{extra}"
    ));
    (bs, uri)
}

fn talk_and_hang_up(cli: &mut webphone_interop::Cli, bs: &mut Baresip) {
    std::thread::sleep(TALK);
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
}

fn assert_audio_both_ways(cli_rec: &std::path::Path, bs: &Baresip, what: &str) {
    assert_tone(
        cli_rec,
        bs.tone_hz(),
        -30.0,
        &format!("softphone hearing baresip ({what})"),
    );
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        &format!("baresip hearing the softphone ({what})"),
    );
}

/// baresip's ICE took our candidate and concluded its checks (its media-state dump, printed
/// when ICE completes, lists the remote candidates it was given).
fn assert_baresip_ice_completed(bs: &Baresip, our_candidate: &str) {
    let log = bs.log();
    assert!(
        log.contains("connectivity check is complete") && log.contains("mnat 'ice' connected"),
        "baresip's ICE did not complete; log tail:\n{}",
        bs.log_tail(60)
    );
    let remote = log
        .split("Remote Candidates:")
        .nth(1)
        .and_then(|r| r.split("Check list").next())
        .unwrap_or("");
    assert!(
        remote.contains(our_candidate),
        "baresip did not get our {our_candidate} candidate; it has:\n{remote}"
    );
}

/// The SDP we sent (the first INVITE or 200 OK body the CLI logged), lines joined by `|`.
/// Parameters of a softphone whose media goes only through the TURN server at
/// `turn_address` (loopback needs `stunturnonlocal=2`; the relay policy keeps only the
/// relayed candidate), with file audio; and where it records.
fn relay_only_params(dir: &TestDir, turn_address: String) -> (Params, std::path::PathBuf) {
    Params::new()
        .set("loglevel", "5")
        .set("turnserveraddress", turn_address)
        .set("turnusername", TURN_USER)
        .set("turnpassword", TURN_PASSWORD)
        .set("stunturnonlocal", "2")
        .set("ice", "[{ iceTransportPolicy: 'relay' }]")
        .with_file_audio(dir)
}

fn our_sdp(cli: &webphone_interop::Cli) -> String {
    cli.lines()
        .into_iter()
        .find(|l| l.starts_with("LOG,EVENT,SIP >>") && l.contains("m=audio"))
        .unwrap_or_default()
}

#[test]
fn ice_call_to_baresip_with_stun_connects_and_has_audio_both_ways() {
    let name = "ice_stun_to_baresip";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, true);
    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("stunserveraddress", coturn.addr())
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    let sdp = our_sdp(&cli);
    assert!(
        sdp.contains("a=ice-ufrag:") && sdp.contains("typ host") && sdp.contains("a=rtcp-mux"),
        "our offer carries ICE: {sdp}"
    );
    assert_baresip_ice_completed(&bs, "host:127.0.0.1:");
    assert_audio_both_ways(&cli_rec, &bs, "ICE with STUN");
    cli.quit();
}

/// How our side reaches coturn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ToTurn {
    Udp,
    Tcp,
    Tls,
}

#[test]
fn ice_call_relayed_through_coturn_carries_the_audio_both_ways() {
    relayed_call("ice_turn_relay", ToTurn::Udp);
}

#[test]
fn turn_over_tcp_relays_the_audio_both_ways() {
    // `turnparameters=transport=tcp`: the allocation and everything relayed go over one TCP
    // connection to coturn; the relay towards baresip is still UDP.
    relayed_call("ice_turn_relay_tcp", ToTurn::Tcp);
}

#[test]
fn turns_relays_the_audio_both_ways_with_the_certificate_verified() {
    // A `turns:` server: TLS over TCP, its self-signed certificate trusted through
    // `tlscafile` (verified like SIP over TLS).
    relayed_call("ice_turn_relay_tls", ToTurn::Tls);
}

#[test]
fn turns_server_with_an_untrusted_certificate_is_not_used() {
    // The same `turns:` server without `tlscafile`: its self-signed certificate fails
    // verification, so nothing is allocated and the offer has no relayed candidate; the call
    // still goes out (the relay policy keeps the host candidate when there is no relay).
    let name = "ice_turn_tls_untrusted";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start_tls(dir.path());
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, true);
    let (params, _rec) = relay_only_params(&dir, format!("turns:{}", coturn.tls_addr()));
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let sdp = our_sdp(&cli);
    assert!(
        !sdp.contains("typ relay") && sdp.contains("typ host"),
        "no relayed candidate without a trusted certificate: {sdp}"
    );
    assert!(
        !coturn.log().contains("ALLOCATE processed, success"),
        "coturn allocated although its certificate was not trusted:\n{}",
        coturn.log_tail(40)
    );
    talk_and_hang_up(&mut cli, &mut bs);
    cli.quit();
}

fn relayed_call(name: &str, to_turn: ToTurn) {
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = if to_turn == ToTurn::Tls {
        Coturn::start_tls(dir.path())
    } else {
        Coturn::start(dir.path())
    };
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, true);
    // TURN on a loopback server needs stunturnonlocal=2; the relay policy keeps only the
    // relayed candidate, so every packet of ours goes through coturn.
    let turn_address = match to_turn {
        ToTurn::Tls => format!("turns:{}", coturn.tls_addr()),
        _ => coturn.addr(),
    };
    let (mut params, cli_rec) = relay_only_params(&dir, turn_address);
    if to_turn == ToTurn::Tcp {
        params = params.set("turnparameters", "transport=tcp");
    }
    if to_turn == ToTurn::Tls {
        params = params.set("tlscafile", coturn.cert_path().display().to_string());
    }
    let mut cli = start_cli(&dir, &params);
    let asked = std::time::Instant::now();
    cli.api_ok(&format!("call {uri}"));
    // call() returns once the offer is out, i.e. after the TURN allocation.
    eprintln!("call() with TURN gathering took {:?}", asked.elapsed());
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    let sdp = our_sdp(&cli);
    assert!(
        sdp.contains("typ relay") && !sdp.contains("typ host"),
        "our offer has only the relayed candidate: {sdp}"
    );
    assert_baresip_ice_completed(&bs, "relay:127.0.0.1:");
    assert_audio_both_ways(&cli_rec, &bs, "relayed through coturn");
    // Our deallocation at hangup makes coturn report the allocation's peer traffic.
    let usage = webphone_interop::util::wait_for(Duration::from_secs(5), || {
        coturn
            .peer_usages()
            .into_iter()
            .find(|u| u.sent_packets > 0)
    });
    let log = coturn.log();
    eprintln!("coturn peer usage: {usage:?}");
    assert!(
        log.contains("ALLOCATE processed, success"),
        "coturn allocated for us:\n{}",
        coturn.log_tail(40)
    );
    let usage =
        usage.unwrap_or_else(|| panic!("no peer usage in coturn's log:\n{}", coturn.log_tail(40)));
    // coturn names a TCP client's connection (and its close) in its log.
    let over_tcp = log.contains("tcp or tls connected to");
    eprintln!("coturn allocation over TCP: {over_tcp}");
    assert_eq!(
        over_tcp,
        to_turn != ToTurn::Udp,
        "the allocation's transport:\n{}",
        coturn.log_tail(60)
    );
    // 4 s of 20 ms packets each way: about 200; checks and keepalives add a few.
    assert!(
        usage.sent_packets >= 150 && usage.received_packets >= 150,
        "media did not go through the relay: {usage:?}"
    );
    cli.quit();
}

fn baresip_offering_ice(name: &str, rtcp_mux: bool) {
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_account(&dir, &coturn, true, "", rtcp_mux);
    let port = free_port();
    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("signalingport", port)
        .set("autoaccept", "1")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    // Dial from the ICE account.
    bs.command(&format!("uafind {uri}"));
    bs.command(&format!("dial sip:webphone@127.0.0.1:{port}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    let sdp = our_sdp(&cli);
    assert!(
        sdp.contains("SIP/2.0 200") && sdp.contains("a=ice-ufrag:") && sdp.contains("typ host"),
        "our answer carries ICE: {sdp}"
    );
    // Component 2 (RTCP) is answered only when the offer did not multiplex RTCP.
    assert_eq!(
        sdp.contains(" 2 udp "),
        !rtcp_mux,
        "RTCP candidates in our answer (offer rtcp-mux: {rtcp_mux}): {sdp}"
    );
    assert_baresip_ice_completed(&bs, "host:127.0.0.1:");
    assert_audio_both_ways(&cli_rec, &bs, "baresip offering ICE");
    cli.quit();
}

#[test]
fn baresip_offering_ice_gets_an_ice_answer_and_audio_both_ways() {
    baresip_offering_ice("ice_from_baresip", true);
}

#[test]
fn baresip_offering_ice_without_rtcp_mux_gets_both_components_answered() {
    baresip_offering_ice("ice_from_baresip_nomux", false);
}

#[test]
fn peer_without_ice_gets_plain_rtp_to_its_connection_address() {
    let name = "ice_fallback_plain";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, false);
    // use_fast_ice=2: ICE offered even without servers; baresip ignores it.
    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("use_fast_ice", "2")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    assert!(our_sdp(&cli).contains("a=ice-ufrag:"), "ICE was offered");
    assert_audio_both_ways(&cli_rec, &bs, "peer without ICE");
    cli.quit();
}

#[test]
fn relay_only_media_reaches_a_peer_without_ice_through_coturn() {
    let name = "ice_relay_to_plain_peer";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, false);
    let (params, cli_rec) = relay_only_params(&dir, coturn.addr());
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    // Our c=/m= is the relayed address: baresip sends there, we send through the allocation.
    let sdp = our_sdp(&cli);
    let relayed_port = sdp
        .split("m=audio ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no m=audio in {sdp}"));
    assert!(
        coturn.is_relay_port(relayed_port),
        "m= port {relayed_port} is not one of coturn's relay ports: {sdp}"
    );
    assert_audio_both_ways(&cli_rec, &bs, "relay to a peer without ICE");
    let usage = webphone_interop::util::wait_for(Duration::from_secs(5), || {
        coturn
            .peer_usages()
            .into_iter()
            .find(|u| u.sent_packets > 0)
    });
    eprintln!("coturn peer usage: {usage:?}");
    let usage = usage.unwrap_or_else(|| panic!("no peer usage:\n{}", coturn.log_tail(40)));
    assert!(
        usage.sent_packets >= 150 && usage.received_packets >= 150,
        "media did not go through the relay: {usage:?}"
    );
    cli.quit();
}

#[test]
fn ice_and_dtls_srtp_share_the_media_socket_with_baresip() {
    let name = "ice_dtls_srtp";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_account(&dir, &coturn, true, ";mediaenc=dtls_srtp", true);
    // DTLS records, STUN checks and SRTP all on one port, told apart by RFC 7983's first byte.
    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("use_fast_ice", "2")
        .set("mediaencryption", "3")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    let sdp = our_sdp(&cli);
    assert!(
        sdp.contains("a=fingerprint:") && sdp.contains("a=ice-ufrag:"),
        "our offer has DTLS-SRTP and ICE: {sdp}"
    );
    assert_baresip_ice_completed(&bs, "host:127.0.0.1:");
    assert_audio_both_ways(&cli_rec, &bs, "ICE with DTLS-SRTP");
    cli.quit();
}

#[test]
fn relayed_ice_call_keeps_its_path_across_hold_and_resume() {
    let name = "ice_relay_hold_resume";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_with_ice(&dir, &coturn, true);
    let (params, cli_rec) = relay_only_params(&dir, coturn.addr());
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    cli.api_ok("hold true");
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hold false");
    std::thread::sleep(Duration::from_secs(3));
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    // Both re-INVITEs repeat our credentials and relayed candidate (no ICE restart).
    let invites: Vec<String> = cli
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("LOG,EVENT,SIP >>") && l.contains(": INVITE sip:"))
        .collect();
    assert_eq!(invites.len(), 3, "INVITE, hold, resume: {invites:#?}");
    let ufrag = |l: &str| {
        l.split("a=ice-ufrag:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned)
    };
    assert!(ufrag(&invites[0]).is_some());
    for re in &invites[1..] {
        assert_eq!(ufrag(re), ufrag(&invites[0]), "same credentials: {re}");
        assert!(re.contains("typ relay"), "relayed candidate repeated: {re}");
    }
    assert!(
        !bs.log().contains("ICE not supported"),
        "baresip dropped ICE after a re-INVITE:\n{}",
        bs.log_tail(40)
    );
    // Audio from baresip after the resume: the last 2 s of what we played.
    let (samples, rate) = webphone_interop::audio::read_mono(&cli_rec);
    let tail = samples.len().saturating_sub(2 * rate as usize);
    let rms = (samples[tail..].iter().map(|x| x * x).sum::<f64>()
        / (samples.len() - tail).max(1) as f64)
        .sqrt();
    let dbfs = 20.0 * rms.max(1e-9).log10();
    eprintln!("softphone after resume: {dbfs:.1} dBFS");
    assert!(dbfs > -30.0, "silence after the resume: {dbfs:.1} dBFS");
    let usage = webphone_interop::util::wait_for(Duration::from_secs(5), || {
        coturn
            .peer_usages()
            .into_iter()
            .find(|u| u.sent_packets > 0)
    });
    eprintln!("coturn peer usage: {usage:?}");
    assert!(
        usage.is_some_and(|u| u.received_packets >= 150),
        "media went through the relay: {usage:?}"
    );
    cli.quit();
}

#[test]
fn ice_with_a_separate_rtcp_component_for_a_peer_without_rtcp_mux() {
    let name = "ice_two_components";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, TURNSERVER]) {
        return;
    }
    let dir = TestDir::new(name);
    let coturn = Coturn::start(dir.path());
    let (mut bs, uri) = baresip_account(&dir, &coturn, true, "", false);
    let (params, cli_rec) = Params::new()
        .set("loglevel", "5")
        .set("stunserveraddress", coturn.addr())
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {uri}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    talk_and_hang_up(&mut cli, &mut bs);
    let sdp = our_sdp(&cli);
    assert!(
        sdp.contains(" 2 udp ") && sdp.contains("a=rtcp:"),
        "our offer has RTCP candidates (component 2) and a=rtcp: {sdp}"
    );
    assert_baresip_ice_completed(&bs, "host:127.0.0.1:");
    let log = bs.log();
    assert!(
        log.contains("Components: (2)") && !log.contains("concluded=0"),
        "baresip did not conclude both components:\n{}",
        bs.log_tail(60)
    );
    assert_audio_both_ways(&cli_rec, &bs, "ICE with an RTCP component");
    cli.quit();
}
