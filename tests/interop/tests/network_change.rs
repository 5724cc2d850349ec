//! Network change under a running softphone, with real faults: the softphone runs in one
//! network namespace, Kamailio (and SIPp) in another, joined by a veth pair this test
//! creates (and deletes, also on failure). The softphone's address is moved and its link
//! taken down and up; the registrar must see a new REGISTER with the new Contact, and a
//! call in progress must get a re-INVITE whose SDP and Contact name the new address, with
//! audio flowing again afterwards. Needs root for `ip netns`: skips loudly without it,
//! fails under `CI=true`.

use std::path::Path;
use std::time::{Duration, Instant};

use webphone_interop::audio::read_mono;
use webphone_interop::flows::{expect_connected, expect_registered, WAIT};
use webphone_interop::netns::{NetPair, Side};
use webphone_interop::proc::Proc;
use webphone_interop::util::{wait_for, which_or_panic};
use webphone_interop::{
    assert_tone, require_tools, serial, tone_level, Callback, Cdr, Cli, Kamailio, KamailioOpts,
    Params, TestDir, Transport, CLI_TONE_HZ, KAMAILIO, KAMCMD, SIPP,
};

/// Long enough for the 2 s route poll, the move and the REGISTER round trip.
const MOVE_WAIT: Duration = Duration::from_secs(20);

fn start_cli_in(pair: &NetPair, dir: &TestDir, params: &Params) -> Cli {
    Cli::start_wrapped(
        dir.path(),
        &pair.wrapper(Side::Ua),
        &params.pairs(),
        &["--callbacks"],
    )
}

/// Waits until Kamailio lists a contact of `user` containing `needle`.
fn wait_contact(k: &Kamailio, user: &str, needle: &str, timeout: Duration) -> Vec<String> {
    wait_for(timeout, || {
        let c = k.contacts(user);
        c.iter().any(|c| c.contains(needle)).then_some(c)
    })
    .unwrap_or_else(|| {
        panic!(
            "no contact of {user} with {needle} after {timeout:?}; ul.dump:\n{}\nscript lines:\n{}",
            k.ul_dump(),
            k.script_lines().join("\n")
        )
    })
}

#[test]
fn address_change_re_registers_with_the_new_contact() {
    address_change_re_registers(Transport::Udp, "netchange_register_udp");
}

#[test]
fn address_change_over_tcp_re_registers_over_a_new_connection() {
    address_change_re_registers(Transport::Tcp, "netchange_register_tcp");
}

fn address_change_re_registers(transport: Transport, name: &str) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD]) {
        return;
    }
    let Some(pair) = NetPair::create(name) else {
        return;
    };
    let dir = TestDir::new(name);
    let mut k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    let params = Params::account(&k, "1001", transport);
    let mut cli = start_cli_in(&pair, &dir, &params);
    expect_registered(&mut cli, 0);
    let old = pair.ip(2);
    let first = wait_contact(&k, "1001", &format!("@{old}:"), WAIT);

    let moved_at = Instant::now();
    pair.move_ua(2, 3);
    let new = pair.ip(3);
    let contacts = wait_contact(&k, "1001", &format!("@{new}:"), MOVE_WAIT);
    println!(
        "{name}: new Contact registered {:.1} s after the address change: {contacts:?} \
         (before: {first:?})",
        moved_at.elapsed().as_secs_f64()
    );
    // The old binding was removed (a Contact with expires=0 in that REGISTER): the
    // registrar no longer forks calls to an address we no longer have.
    let old_at = format!("@{old}:");
    let left = wait_for(WAIT, || {
        let c = k.contacts("1001");
        (!c.iter().any(|c| c.contains(&old_at))).then_some(c)
    })
    .unwrap_or_else(|| panic!("old binding still there; ul.dump:\n{}", k.ul_dump()));
    assert!(
        left.iter().all(|c| c.contains(&format!("@{new}:"))),
        "{left:?}"
    );
    // The REGISTER came from the new address (over TCP: on a new connection from there).
    let proto = transport.kamailio_proto();
    let from_new = k.wait_lines(&["REQ REGISTER", &format!("{proto}:{new}:")], 1, WAIT);
    assert!(!from_new.is_empty());
    // The engine said what happened, and is still registered and responsive.
    cli.expect(
        |l| l.contains("network: local address changed; SIP now on"),
        WAIT,
    );
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    k.assert_running();
    cli.quit();
}

#[test]
fn link_down_then_up_registers_again_without_losing_the_registration_state() {
    let _serial = serial();
    if !require_tools("link_down_then_up", &[KAMAILIO, KAMCMD]) {
        return;
    }
    let Some(pair) = NetPair::create("link_down_then_up") else {
        return;
    };
    let dir = TestDir::new("netchange_link");
    let mut k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    let params = Params::account(&k, "1001", Transport::Udp);
    let mut cli = start_cli_in(&pair, &dir, &params);
    expect_registered(&mut cli, 0);
    let before = k.lines_with(&["REQ REGISTER"]).len();

    pair.ua_link(false);
    cli.expect(|l| l.contains("network: no route to the SIP server"), WAIT);
    pair.ua_link(true);
    cli.expect(
        |l| l.contains("network: route to the SIP server back on"),
        WAIT,
    );
    // A fresh REGISTER (with its digest round: at least one more request line).
    let after = k.wait_lines(&["REQ REGISTER"], before + 1, MOVE_WAIT);
    println!(
        "REGISTER requests before the outage: {before}, after: {}",
        after.len()
    );
    wait_contact(&k, "1001", &format!("@{}:", pair.ip(2)), WAIT);
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    assert!(
        cli.seen(|l| Callback::parse(l).is_some_and(|c| c.name == "onRegisterFailed"))
            .is_empty(),
        "a short outage on the same address is not a registration failure"
    );
    cli.quit();
}

/// SIPp answering calls in the server namespace with RTP echo, running `scenario`: a file
/// of `peers/`, or `uas` (SIPp's built-in: 200, ACK, waits for BYE).
fn sipp_uas_in(pair: &NetPair, dir: &Path, scenario: &str, port: u16, media_port: u16) -> Proc {
    let dir = dir.join("sipp-netchange");
    std::fs::create_dir_all(&dir).expect("sipp dir");
    let ip = pair.srv_ip();
    let mut cmd = pair.command(Side::Srv, &which_or_panic(SIPP));
    if scenario == "uas" {
        cmd.args(["-sn", "uas"]);
    } else {
        cmd.arg("-sf")
            .arg(webphone_interop::peers_dir().join(scenario));
    }
    cmd.args(["-i", &ip, "-p", &port.to_string()])
        .args(["-mi", &ip, "-mp", &media_port.to_string(), "-rtp_echo"])
        .args(["-m", "1", "-nostdin", "-trace_err", "-trace_msg"])
        .args(["-timeout", "90s", "-timeout_error"])
        .current_dir(&dir);
    let p = Proc::spawn("sipp", cmd, &dir.join("sipp.out"));
    std::thread::sleep(Duration::from_millis(500));
    p
}

fn sipp_messages(dir: &Path) -> String {
    std::fs::read_dir(dir.join("sipp-netchange"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

#[test]
fn address_change_in_a_call_sends_a_re_invite_with_the_new_address_and_audio_continues() {
    let _serial = serial();
    if !require_tools("address_change_in_a_call", &[KAMAILIO, KAMCMD, SIPP]) {
        return;
    }
    let Some(pair) = NetPair::create("address_change_in_a_call") else {
        return;
    };
    let dir = TestDir::new("netchange_call");
    let mut k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    let mut sipp = sipp_uas_in(
        &pair,
        dir.path(),
        "sipp-uas-netchange-reinvite.xml",
        5070,
        6000,
    );
    let (params, rec) = Params::account(&k, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli_in(&pair, &dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok(&format!("call sip:service@{}:5070", pair.srv_ip()));
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_secs(2));

    pair.move_ua(2, 3);
    let new = pair.ip(3);
    wait_contact(&k, "1001", &format!("@{new}:"), MOVE_WAIT);
    cli.expect(
        |l| l.contains("media moved to") && l.contains("re-INVITE sent"),
        MOVE_WAIT,
    );
    // Audio after the move: the recording restarted with the new media session and must
    // carry our tone, echoed back by SIPp to the new address.
    std::thread::sleep(Duration::from_secs(5));
    cli.api_ok("hangup");
    let status = sipp.wait_timeout(WAIT);
    let messages = sipp_messages(dir.path());
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp failed (re-INVITE with the new c= and Contact expected): {status:?}\n{}\n{}",
        sipp.log_tail(30),
        webphone_interop::util::tail_str(&messages, 80)
    );
    assert!(
        messages.contains(&format!("c=IN IP4 {new}")),
        "re-INVITE SDP names {new}"
    );
    let level = assert_tone(
        &rec,
        CLI_TONE_HZ,
        -30.0,
        "echoed tone after the address change",
    );
    println!("tone after the move: {level:?}");
    k.assert_running();
    cli.quit();
}

#[test]
fn address_change_in_an_ice_call_restarts_ice_and_audio_continues_both_ways() {
    let _serial = serial();
    if !require_tools("address_change_in_an_ice_call", &[KAMAILIO, KAMCMD]) {
        return;
    }
    let Some(pair) = NetPair::create("address_change_in_an_ice_call") else {
        return;
    };
    let dir = TestDir::new("netchange_ice_caller");
    let callee_dir = TestDir::new("netchange_ice_callee");
    let k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    // The callee, another softphone beside the server: answers with ICE because the offer
    // has it, and plays a 1 kHz tone (the caller plays 440 Hz).
    let callee_tone = callee_dir.join("tone1000-8k.wav");
    webphone_interop::audio::write_tone(&callee_tone, 1000.0, 8000, 60.0, 0.5);
    let callee_rec = callee_dir.join("callee-received.wav");
    let callee_params = Params::account(&k, "1002", Transport::Udp)
        .set("audiodevicein", format!("file:{}", callee_tone.display()))
        .set("audiodeviceout", format!("file:{}", callee_rec.display()))
        .set("autoaccept", "true");
    // Its ICE log (tracing, on stderr) shows the restart and the pairs it selects.
    let mut wrapper = pair.wrapper(Side::Srv);
    wrapper.extend(["env".to_owned(), "RUST_LOG=info".to_owned()]);
    let mut callee = Cli::start_wrapped(
        callee_dir.path(),
        &wrapper,
        &callee_params.pairs(),
        &["--callbacks"],
    );
    expect_registered(&mut callee, 0);
    // use_fast_ice=2: ICE in the offer without any STUN/TURN server (host candidates).
    let (params, rec) = Params::account(&k, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli_in(&pair, &dir, &params.set("use_fast_ice", "2"));
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    expect_connected(&mut callee);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        callee.stderr().contains("ICE: pair selected"),
        "the callee's ICE did not select a pair before the move"
    );

    pair.move_ua(2, 3);
    let new = pair.ip(3);
    wait_contact(&k, "1001", &format!("@{new}:"), MOVE_WAIT);
    cli.expect(
        |l| l.contains("media moved to") && l.contains("re-INVITE sent"),
        MOVE_WAIT,
    );
    // The re-offer carries the new socket's ICE credentials: the callee restarts ICE and
    // selects a pair at the new address (the old one is gone).
    let restarted = wait_for(MOVE_WAIT, || {
        let e = callee.stderr();
        let after = &e[e.find("ICE restart")?..];
        after
            .lines()
            .any(|l| l.contains("ICE: pair selected") && l.contains(&new))
            .then_some(())
    });
    assert!(
        restarted.is_some(),
        "the callee did not restart ICE towards {new}:\n{}",
        webphone_interop::util::tail_str(&callee.stderr(), 40)
    );
    std::thread::sleep(Duration::from_secs(5));
    // The caller's recording restarted with its new media session: all of it is after the
    // move, and it must carry the callee's tone, which ICE sends to the new address.
    let heard = assert_tone(&rec, 1000.0, -30.0, "callee's tone after the move");
    let tail = dir.join("callee-tail.wav");
    tail_wav(&callee_rec, 3.0, &tail);
    let sent = assert_tone(
        &tail,
        CLI_TONE_HZ,
        -30.0,
        "caller's tone at the callee after the move",
    );
    println!("after the move: caller hears {heard:?}, callee hears {sent:?}");
    cli.api_ok("hangup");
    callee.expect_cdr(WAIT);
    cli.quit();
    callee.quit();
}

/// The last `secs` seconds of a WAV recording, written to `out` (for [`tone_level`]).
fn tail_wav(path: &Path, secs: f64, out: &Path) {
    let (samples, rate) = read_mono(path);
    let keep = ((secs * f64::from(rate)) as usize).min(samples.len());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(out, spec).expect("create tail wav");
    for x in &samples[samples.len() - keep..] {
        w.write_sample((x * f64::from(i16::MAX)) as i16)
            .expect("write tail wav");
    }
    w.finalize().expect("finalize tail wav");
}

/// A call to SIPp (RTP echo) in the server namespace, connected; returns SIPp, the CLI and
/// the CLI's recording.
fn call_through_the_pair(
    pair: &NetPair,
    dir: &TestDir,
    k: &Kamailio,
    extra: &[(&str, &str)],
) -> (Proc, Cli, std::path::PathBuf) {
    let sipp = sipp_uas_in(pair, dir.path(), "uas", 5070, 6000);
    let (mut params, rec) = Params::account(k, "1001", Transport::Udp).with_file_audio(dir);
    for (name, value) in extra {
        params = params.set(name, value);
    }
    let mut cli = start_cli_in(pair, dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok(&format!("call sip:service@{}:5070", pair.srv_ip()));
    expect_connected(&mut cli);
    (sipp, cli, rec)
}

#[test]
fn short_link_outage_in_a_call_is_survived_and_audio_resumes() {
    let _serial = serial();
    if !require_tools("short_link_outage_in_a_call", &[KAMAILIO, KAMCMD, SIPP]) {
        return;
    }
    let Some(pair) = NetPair::create("short_link_outage_in_a_call") else {
        return;
    };
    let dir = TestDir::new("netchange_outage");
    let k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    let (mut sipp, mut cli, rec) = call_through_the_pair(&pair, &dir, &k, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let mark = cli.mark();
    pair.ua_link(false);
    std::thread::sleep(Duration::from_secs(3));
    pair.ua_link(true);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        cli.seen(|l| Cdr::parse(l).is_some()).is_empty(),
        "the call ended during a 3 s outage"
    );
    assert!(cli.lines()[mark..]
        .iter()
        .all(|l| !l.contains("STATUS,1,Call Finished")));
    cli.api_ok("hangup");
    let status = sipp.wait_timeout(WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp did not get our BYE after the outage: {status:?}\n{}",
        sipp.log_tail(30)
    );
    let cdr = cli.expect_after(mark, |l| Cdr::parse(l).is_some(), WAIT);
    println!("call record: {cdr}");
    // The echo came back after the link did: the last 3 s carry our tone.
    let tail = dir.join("tail.wav");
    tail_wav(&rec, 3.0, &tail);
    let level = tone_level(&tail, CLI_TONE_HZ);
    assert!(
        level.present(-30.0),
        "no echoed tone in the last 3 s after the outage: {level:?}"
    );
    println!("tone after the outage: {level:?}");
    cli.quit();
}

#[test]
fn long_link_outage_in_a_call_ends_it_after_the_media_timeout_with_a_record() {
    let _serial = serial();
    if !require_tools("long_link_outage_in_a_call", &[KAMAILIO, KAMCMD, SIPP]) {
        return;
    }
    let Some(pair) = NetPair::create("long_link_outage_in_a_call") else {
        return;
    };
    let dir = TestDir::new("netchange_long_outage");
    let k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        pair.wrapper(Side::Srv),
        &pair.srv_ip(),
        None,
    );
    let (_sipp, mut cli, _rec) = call_through_the_pair(&pair, &dir, &k, &[("mediatimeout", "3")]);
    std::thread::sleep(Duration::from_secs(1));
    let mark = cli.mark();
    let down = Instant::now();
    pair.ua_link(false);
    let cdr = cli.expect_after(mark, |l| Cdr::parse(l).is_some(), WAIT);
    let ended_after = down.elapsed();
    let why = cli.expect_after(mark, |l| l.contains("media timeout: no RTP for"), WAIT);
    println!(
        "call ended {:.1} s after the link went down: {cdr} ({why})",
        ended_after.as_secs_f64()
    );
    pair.ua_link(true);
    // Still alive and registered once the link is back.
    cli.expect_after(
        mark,
        |l| l.contains("network: route to the SIP server back on"),
        WAIT,
    );
    assert_eq!(cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    cli.quit();
}
