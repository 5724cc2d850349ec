//! DTLS-SRTP (RFC 5763/5764) against baresip's `dtls_srtp` media-encryption module, both
//! directions, directly on loopback without a registrar:
//! - the softphone with `mediaencryption=3` (our extension: offer DTLS-SRTP) calls a baresip
//!   account with `mediaenc=dtls_srtp`;
//! - that baresip account calls the softphone (default `mediaencryption`, which answers
//!   DTLS-SRTP offers).
//!
//! Each call must connect, carry audio both ways, report `isencrypted` = 2, and a capture on
//! the softphone's media port (dumpcap) must show a DTLS handshake and RTP packets that carry
//! an SRTP authentication tag (PCMU 20 ms: 12 + 160 bytes as RTP, + 10 as SRTP with
//! HMAC-SHA1-80, + 16 with AES-GCM), never plain RTP.
//!
//! Failures, against a SIPp UAS whose DTLS-SRTP answer (`peers/sipp-uas-dtls-answer.xml`)
//! names a fingerprint no certificate has: with `openssl s_server` (DTLS 1.2, use_srtp) at the
//! answer's media address the softphone refuses its certificate (RFC 5763 §5); with nothing
//! there it gives up after its retransmissions. Either way the call ends by itself with a
//! reason naming DTLS-SRTP, and no RTP ever leaves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::proc::Proc;
use webphone_interop::{
    assert_tone, free_port, require_tools, serial, Baresip, BaresipOpts, Cli, Params, TestDir,
    BARESIP, CLI_TONE_HZ,
};

const TALK: Duration = Duration::from_secs(4);
const DUMPCAP: &str = "dumpcap";
/// RTP header + 20 ms of PCMU.
const PLAIN_RTP_LEN: usize = 12 + 160;

/// dumpcap on the loopback interface, UDP headers and the first payload bytes only (the
/// softphone's media port is known only once the call runs; the payload length comes from the
/// UDP header), as classic pcap; stops by itself after a minute.
struct UdpCapture {
    proc: Proc,
    file: PathBuf,
}

impl UdpCapture {
    fn start(dir: &Path) -> UdpCapture {
        let file = dir.join("udp.pcap");
        let mut cmd = Command::new(DUMPCAP);
        cmd.args([
            "-q",
            "-i",
            "lo",
            "-P",
            "-s",
            "96",
            "-a",
            "duration:60",
            "-f",
        ])
        .arg("udp and host 127.0.0.1")
        .arg("-w")
        .arg(&file);
        let proc = Proc::spawn("dumpcap", cmd, &dir.join("dumpcap.log"));
        // dumpcap prints nothing with -q; give it time to open the interface.
        let end = Instant::now() + Duration::from_secs(5);
        while !file.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        UdpCapture { proc, file }
    }

    /// Stop and return the UDP datagrams as (source port, destination port, payload length,
    /// first payload bytes).
    fn finish(mut self) -> Vec<Datagram> {
        std::thread::sleep(Duration::from_millis(300));
        self.proc.stop(Duration::from_secs(3));
        let data = std::fs::read(&self.file).unwrap_or_else(|e| {
            panic!(
                "no capture file {}: {e}; dumpcap log:\n{}",
                self.file.display(),
                self.proc.log_tail(20)
            )
        });
        udp_payloads(&data)
    }
}

/// A captured UDP datagram.
struct Datagram {
    sport: u16,
    dport: u16,
    /// The payload length from the UDP header.
    len: usize,
    /// The captured start of the payload.
    head: Vec<u8>,
}

/// UDP datagrams of a classic pcap file (Ethernet, Linux cooked v1/v2 or raw IPv4 link types).
fn udp_payloads(pcap: &[u8]) -> Vec<Datagram> {
    let u32_at = |b: &[u8], i: usize, le: bool| -> Option<u32> {
        let s: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    let Some(magic) = u32_at(pcap, 0, true) else {
        return Vec::new();
    };
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => panic!("not a classic pcap file (magic {m:#x})"),
    };
    let link = u32_at(pcap, 20, le).unwrap_or(0);
    let link_header = match link {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked v1
        276 => 20, // Linux cooked v2
        101 => 0,  // raw IP
        l => panic!("unexpected pcap link type {l}"),
    };
    let mut out = Vec::new();
    let mut i = 24;
    while let (Some(incl), Some(_)) = (u32_at(pcap, i + 8, le), u32_at(pcap, i + 12, le)) {
        let start = i + 16;
        let Some(frame) = pcap.get(start..start + incl as usize) else {
            break;
        };
        i = start + incl as usize;
        let Some(ip) = frame.get(link_header..) else {
            continue;
        };
        // IPv4 with UDP only (the test runs on 127.0.0.1).
        if ip.first().map(|b| b >> 4) != Some(4) || ip.get(9) != Some(&17) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        out.push(Datagram {
            sport: u16::from_be_bytes([udp[0], udp[1]]),
            dport: u16::from_be_bytes([udp[2], udp[3]]),
            len: usize::from(u16::from_be_bytes([udp[4], udp[5]])).saturating_sub(8),
            head: udp[8..].to_vec(),
        });
    }
    out
}

/// The capture shows DTLS and SRTP both ways on `port`, and no plain RTP.
fn assert_dtls_then_srtp(packets: &[Datagram], port: u16, what: &str) {
    let is_dtls = |p: &[u8]| matches!(p.first(), Some(20..=63));
    // RTP, not RTCP (RFC 5761 §4: RTCP packet types 192..=223 in the second byte).
    let is_rtp = |p: &[u8]| {
        matches!(p.first(), Some(128..=191)) && !matches!(p.get(1).map(|b| b & 0x7f), Some(64..=95))
    };
    for (dir, from_us) in [("sent", true), ("received", false)] {
        let ours: Vec<&Datagram> = packets
            .iter()
            .filter(|d| {
                if from_us {
                    d.sport == port
                } else {
                    d.dport == port
                }
            })
            .collect();
        let dtls = ours.iter().filter(|d| is_dtls(&d.head)).count();
        let rtp: Vec<usize> = ours
            .iter()
            .filter(|d| is_rtp(&d.head))
            .map(|d| d.len)
            .collect();
        assert!(dtls > 0, "{what}: no DTLS records {dir} on port {port}");
        assert!(
            rtp.len() > 50,
            "{what}: only {} RTP packets {dir} on port {port}",
            rtp.len()
        );
        let plain = rtp.iter().filter(|l| **l == PLAIN_RTP_LEN).count();
        let srtp = rtp
            .iter()
            .filter(|l| **l == PLAIN_RTP_LEN + 10 || **l == PLAIN_RTP_LEN + 16)
            .count();
        eprintln!(
            "{what}: {dir} on {port}: {dtls} DTLS datagrams, {} RTP ({srtp} with an SRTP tag, {plain} plain)",
            rtp.len()
        );
        assert_eq!(plain, 0, "{what}: plain RTP {dir}: lengths {rtp:?}");
        assert!(
            srtp * 10 >= rtp.len() * 9,
            "{what}: RTP {dir} without an SRTP tag: lengths {:?}",
            &rtp[..rtp.len().min(20)]
        );
    }
}

/// baresip with an account that uses `dtls_srtp` (loaded at run time: the module must be there
/// before an account can name it). Returns baresip and the account's URI.
fn baresip_with_dtls_account(dir: &TestDir) -> (Baresip, String) {
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            proxy_port: None,
            ..BaresipOpts::default()
        },
    );
    let r = bs.command("insmod dtls_srtp");
    assert!(
        r.ok || bs.log().contains("dtls_srtp"),
        "baresip could not load its dtls_srtp module: {r:?}\n{}",
        bs.log_tail(20)
    );
    let port = bs.sip_port();
    let aor = format!("sip:1003@127.0.0.1:{port}");
    bs.command(&format!(
        "uanew <{aor};transport=udp>;mediaenc=dtls_srtp;answermode=auto;regint=0;audio_codecs=PCMU"
    ));
    (bs, aor)
}

/// The softphone's RTP port as baresip's dtls_srtp module names it when it starts the RTP
/// component (`component start: RTP [raddr=127.0.0.1:PORT]`).
fn softphone_rtp_port(bs: &Baresip) -> u16 {
    let log = bs.log();
    log.lines()
        .find_map(|l| {
            let rest = l.split("component start: RTP [raddr=").nth(1)?;
            rest.split(']').next()?.rsplit(':').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("baresip did not name our RTP address:\n{}", bs.log_tail(40)))
}

fn cli_params(dir: &TestDir, mediaencryption: &str) -> (Params, PathBuf) {
    let sip = free_port();
    let (params, rec) = Params::new()
        .set("loglevel", "5")
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", sip)
        .set("codec", "PCMU")
        .set("autoaccept", "true")
        .set("mediaencryption", mediaencryption)
        .with_file_audio(dir);
    (params, rec)
}

fn talk_and_check(cli: &mut Cli, bs: &mut Baresip, cli_rec: &Path, what: &str) {
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let enc = cli.api_ok("isencrypted");
    assert!(
        enc.trim().ends_with('2'),
        "{what}: isencrypted must say 2 (encrypted), got {enc:?}"
    );
    if let Some(rest) = TALK.checked_sub(connected.elapsed()) {
        std::thread::sleep(rest);
    }
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    // baresip checked our certificate against our SDP fingerprint and keyed SRTP on both
    // components (it does not use rtcp-mux, so RTCP has its own handshake, RFC 5764 §4.1).
    let log = bs.log();
    for line in [
        "verified sha-256 fingerprint OK",
        "DTLS-SRTP complete (audio/RTP)",
        "DTLS-SRTP complete (audio/RTCP)",
    ] {
        assert!(
            log.contains(line),
            "{what}: baresip did not log {line:?}; log tail:\n{}",
            bs.log_tail(40)
        );
    }
    assert_tone(
        cli_rec,
        bs.tone_hz(),
        -30.0,
        &format!("{what}: softphone hearing baresip"),
    );
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        &format!("{what}: baresip hearing the softphone"),
    );
}

#[test]
fn dtls_srtp_call_to_baresip_has_audio_both_ways_and_only_srtp_on_the_wire() {
    let name = "dtls_srtp_to_baresip";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, DUMPCAP]) {
        return;
    }
    let dir = TestDir::new(name);
    let (mut bs, aor) = baresip_with_dtls_account(&dir);
    let (params, cli_rec) = cli_params(&dir, "3");
    let mut cli = start_cli(&dir, &params);
    let cap = UdpCapture::start(dir.path());
    cli.api_ok(&format!("call {aor}"));
    expect_connected(&mut cli);
    talk_and_check(&mut cli, &mut bs, &cli_rec, "softphone -> baresip");
    let rtp = softphone_rtp_port(&bs);
    let packets = cap.finish();
    assert_dtls_then_srtp(&packets, rtp, "softphone -> baresip");
    cli.quit();
}

#[test]
fn dtls_srtp_call_from_baresip_is_answered_with_dtls_srtp() {
    let name = "dtls_srtp_from_baresip";
    let _serial = serial();
    if !require_tools(name, &[BARESIP, DUMPCAP]) {
        return;
    }
    let dir = TestDir::new(name);
    let (mut bs, aor) = baresip_with_dtls_account(&dir);
    // The default mediaencryption (-1) answers DTLS-SRTP offers.
    let (params, cli_rec) = cli_params(&dir, "-1");
    let sip = params
        .get("signalingport")
        .and_then(|p| p.parse::<u16>().ok())
        .expect("signalingport");
    let mut cli = start_cli(&dir, &params);
    let cap = UdpCapture::start(dir.path());
    // Dial from the DTLS account.
    bs.command(&format!("uafind {aor}"));
    bs.dial(&format!("sip:1001@127.0.0.1:{sip}"));
    expect_connected(&mut cli);
    talk_and_check(&mut cli, &mut bs, &cli_rec, "baresip -> softphone");
    let rtp = softphone_rtp_port(&bs);
    let packets = cap.finish();
    assert_dtls_then_srtp(&packets, rtp, "baresip -> softphone");
    cli.quit();
}

// ----- failures: the call ends with a clear reason, no media flows -----

const OPENSSL: &str = "openssl";

/// A fingerprint no certificate here has.
const FOREIGN_FINGERPRINT: &str = "sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:\
AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB";

/// The softphone (`mediaencryption=3`) calls SIPp, which answers DTLS-SRTP with
/// `a=setup:passive` (so the softphone is the DTLS client), media at `dtls_port` and
/// [`FOREIGN_FINGERPRINT`]. Returns the CDR after the call ended by itself, and the capture of
/// `dtls_port`.
fn call_sipp_dtls_answer(
    dir: &TestDir,
    dtls_port: u16,
    before_call: impl FnOnce(),
) -> (webphone_interop::Cdr, Vec<Datagram>) {
    let port_s = dtls_port.to_string();
    let mut uas = webphone_interop::Sipp::start(
        dir.path(),
        webphone_interop::Scenario::File("sipp-uas-dtls-answer.xml"),
        None,
        &[
            "-key",
            "dtlsport",
            &port_s,
            "-key",
            "fp",
            FOREIGN_FINGERPRINT,
        ],
    );
    let (params, _rec) = cli_params(dir, "3");
    let mut cli = start_cli(dir, &params);
    before_call();
    let cap = UdpCapture::start(dir.path());
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    // The client gives up after 7 retransmissions 1 s apart, or at once on a bad certificate.
    let cdr = cli.expect_cdr(Duration::from_secs(30));
    let packets = cap.finish();
    uas.assert_success(WAIT);
    cli.quit();
    (cdr, packets)
}

/// DTLS went to the peer's media port, RTP never (the `natopenpackets` "\r\n" datagrams,
/// first byte 13, are no media). Returns how many DTLS datagrams went there.
fn assert_only_dtls_sent_to(packets: &[Datagram], port: u16, what: &str) -> usize {
    let to_peer: Vec<&Datagram> = packets.iter().filter(|d| d.dport == port).collect();
    let dtls = to_peer
        .iter()
        .filter(|d| matches!(d.head.first(), Some(20..=63)))
        .count();
    let rtp = to_peer
        .iter()
        .filter(|d| matches!(d.head.first(), Some(128..=191)))
        .count();
    eprintln!(
        "{what}: to {port}: {dtls} DTLS datagrams, {rtp} RTP/RTCP, {} other",
        to_peer.len() - dtls - rtp
    );
    assert!(dtls > 0, "{what}: no DTLS was sent to {port}");
    assert_eq!(rtp, 0, "{what}: media left without keys");
    dtls
}

#[test]
fn dtls_srtp_peer_certificate_not_matching_its_fingerprint_ends_the_call() {
    let name = "dtls_srtp_fingerprint_mismatch";
    let _serial = serial();
    if !require_tools(name, &[webphone_interop::SIPP, OPENSSL, DUMPCAP]) {
        return;
    }
    let dir = TestDir::new(name);
    // A real DTLS 1.2 server with use_srtp (openssl) whose certificate is not the one the
    // SDP answer names.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new(OPENSSL)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=not-the-fingerprint"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl req");
    assert!(made.status.success(), "openssl req: {made:?}");
    let dtls_port = free_port();
    let mut server = None;
    let (cdr, packets) = call_sipp_dtls_answer(&dir, dtls_port, || {
        // s_server ends when its standard input closes: keep a pipe open for the test.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "sleep 60 | exec {OPENSSL} s_server -dtls1_2 -listen -accept 127.0.0.1:{dtls_port} \
             -cert '{}' -key '{}' -use_srtp SRTP_AES128_CM_SHA1_80",
            cert.display(),
            key.display()
        ));
        server = Some(Proc::spawn("openssl", cmd, &dir.join("s_server.log")));
        std::thread::sleep(Duration::from_millis(500));
    });
    assert!(
        cdr.reason.contains("DTLS-SRTP") && cdr.reason.contains("fingerprint"),
        "the call must end naming the fingerprint mismatch: {cdr:?}"
    );
    assert_eq!(cdr.disc_party, 1, "we ended the call: {cdr:?}");
    let log = server.as_mut().map(|s| s.log()).unwrap_or_default();
    assert!(
        log.to_ascii_lowercase().contains("bad certificate"),
        "openssl saw no bad_certificate alert from us:\n{log}"
    );
    assert_only_dtls_sent_to(&packets, dtls_port, "fingerprint mismatch");
}

#[test]
fn dtls_srtp_handshake_nobody_answers_ends_the_call() {
    let name = "dtls_srtp_no_answer";
    let _serial = serial();
    if !require_tools(name, &[webphone_interop::SIPP, DUMPCAP]) {
        return;
    }
    let dir = TestDir::new(name);
    // Nothing listens on the port of the SDP answer.
    let dtls_port = free_port();
    let (cdr, packets) = call_sipp_dtls_answer(&dir, dtls_port, || {});
    assert!(
        cdr.reason.contains("DTLS-SRTP"),
        "the call must end naming DTLS-SRTP: {cdr:?}"
    );
    let hellos = assert_only_dtls_sent_to(&packets, dtls_port, "unanswered handshake");
    assert!(
        hellos >= 2,
        "the ClientHello was retransmitted ({hellos} sent)"
    );
}

#[test]
fn dtls_srtp_call_keeps_its_keys_across_hold_and_resume() {
    let name = "dtls_srtp_hold_resume";
    let _serial = serial();
    if !require_tools(name, &[BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let (mut bs, aor) = baresip_with_dtls_account(&dir);
    let (params, cli_rec) = cli_params(&dir, "3");
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call {aor}"));
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    // Re-offers (RFC 3264 §8) with the same fingerprint and roles keep the association.
    cli.api_ok("hold true");
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hold false");
    std::thread::sleep(Duration::from_secs(3));
    let enc = cli.api_ok("isencrypted");
    assert!(
        enc.trim().ends_with('2'),
        "isencrypted after resume: {enc:?}"
    );
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let log = bs.log();
    let handshakes = log.matches("DTLS-SRTP complete (audio/RTP)").count();
    assert_eq!(
        handshakes,
        1,
        "hold and resume must not start a new DTLS handshake; baresip log tail:\n{}",
        bs.log_tail(40)
    );
    assert!(
        !log.to_ascii_lowercase().contains("unprotect"),
        "baresip could not decrypt us after the re-INVITEs:\n{}",
        bs.log_tail(40)
    );
    // Audio from baresip decrypts after the resume: the last 2 s of what we played.
    let (samples, rate) = webphone_interop::audio::read_mono(&cli_rec);
    let tail = samples.len().saturating_sub(2 * rate as usize);
    let rms = (samples[tail..].iter().map(|x| x * x).sum::<f64>()
        / (samples.len() - tail).max(1) as f64)
        .sqrt();
    let dbfs = 20.0 * rms.max(1e-9).log10();
    eprintln!("softphone after resume: {dbfs:.1} dBFS");
    assert!(dbfs > -30.0, "silence after the resume: {dbfs:.1} dBFS");
    cli.quit();
}
