//! HTTP integrations end to end (issue 6 "Data and integrations", catalog behaviours §17/§18):
//! a real HTTP server on loopback receives every `scurl_*` action URL with its tokens
//! substituted, provisions the softphone through `scurl_setparameters` before it registers,
//! answers `scurl_displaypeerdetails`, takes SMS through the `sms` API, the call recording
//! (`voicerecupload`) and the log (`logform_action`). A dead or hung server never holds up a
//! call.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{
    expect_connected, expect_incoming, expect_registered, is_line_status, start_cli, WAIT,
};
use webphone_interop::ftp::FtpServer;
use webphone_interop::http_server::HttpServer;
use webphone_interop::{
    require_present, require_tools, serial, tone_level, write_tone, Kamailio, Params, TestDir,
    Transport, KAMAILIO, KAMCMD,
};

/// The softphone under test (1001): every integration URL points at `base`.
fn integration_params(kam: &Kamailio, base: &str) -> Params {
    Params::account(kam, "1001", Transport::Udp)
        // Wrong on purpose: the provisioning answer brings the right one.
        .set("password", "not-the-password")
        .set("scurl_setparameters", format!("{base}/prov?u=USERNAME"))
        .set(
            "scurl_onstart",
            format!("{base}/start?u=USERNAME&s=STATUS&dev=DEVICEID&md5=MD5SIMPLE"),
        )
        .set(
            "scurl_onoutcallsetup",
            format!("{base}/outsetup?called=CALLEDNUMBER&s=STATUS&dir=DIRECTION&id=CALLID"),
        )
        .set(
            "scurl_onoutcallringing",
            format!("{base}/outringing?called=CALLEDNUMBER&s=STATUS"),
        )
        .set(
            "scurl_onoutcallconnected",
            format!("{base}/outconnected?peer=PEERNUM&s=STATUS"),
        )
        .set(
            "scurl_onoutcalldisconnected",
            format!("{base}/outend?caller=CALLER&called=CALLED&ms=DURATIONMS&why=REASON&s=STATUS"),
        )
        .set(
            "scurl_onincallsetup",
            format!("{base}/insetup?peer=PEERNUM&dir=DIRECTION"),
        )
        .set(
            "scurl_onincallringing",
            format!("{base}/inringing?peer=PEERNUM&s=STATUS"),
        )
        .set(
            "scurl_onincallconnected",
            format!("{base}/inconnected?peer=PEERNUM"),
        )
        .set(
            "scurl_onincalldisconnected",
            format!("{base}/inend?caller=CALLER&called=CALLED&who=DISCPARTY"),
        )
        .set(
            "scurl_oninchat",
            format!("{base}/inchat?from=PEERNUM&t=TEXT&s=STATUS"),
        )
        .set(
            "scurl_onoutchat",
            format!("{base}/outchat?to=PEERNUM&t=TEXT&s=STATUS"),
        )
        .set("scurl_displaypeerdetails", format!("{base}/peer?n=PEERNUM"))
        .set(
            "sms",
            format!("*{base}/sms?anum=MYNUMBER&bnum=TARGETMOBILE&txt=TEXT"),
        )
        .set(
            "voicerecupload",
            format!("{base}/rec/CALLER-CALLED-COUNTER.wav"),
        )
        .set("logform_action", format!("{base}/logs?u=USERNAME"))
        .set("logform_filename", "log-1001.txt")
}

/// The content of the file part `field` of a multipart/form-data body (RFC 7578 §4.2), which
/// must carry the file name `file_name`.
fn form_file_part<'a>(body: &'a [u8], boundary: &str, field: &str, file_name: &str) -> &'a [u8] {
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n"
    );
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let at = find(body, head.as_bytes(), 0).unwrap_or_else(|| {
        panic!(
            "no part {field} named {file_name}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    });
    let start = find(body, b"\r\n\r\n", at).expect("part headers end") + 4;
    let end = find(body, format!("\r\n--{boundary}").as_bytes(), start).expect("the next boundary");
    &body[start..end]
}

fn q(r: &webphone_interop::http_server::Request, name: &str) -> String {
    r.param(name).unwrap_or_default()
}

#[test]
fn action_urls_provisioning_sms_recording_and_log_reach_the_server() {
    let _serial = serial();
    let ftp_missing: &[&str] = if FtpServer::available() {
        &[]
    } else {
        &["python3-pyftpdlib"]
    };
    if !require_tools("http_integrations", &[KAMAILIO, KAMCMD])
        || !require_present("http_integrations", ftp_missing)
    {
        return;
    }
    let dir = TestDir::new("http_integrations");
    let srv = HttpServer::start(&[
        ("/prov", 200, "password=pass1001, displayname=Prov User"),
        ("/peer", 200, "Carol Example, ACME Ltd"),
        ("/sms", 200, "OK"),
        ("/rec", 201, ""),
    ]);
    let base = srv.base();
    let kam = Kamailio::start(dir.path());

    // The peer: a second softphone (1003) with its own home and audio.
    let b_dir = dir.subdir("peer-1003");
    let b_tone = b_dir.join("tone.wav");
    // 48 kHz like the Opus call rate: the file input needs no resampling at accept.
    write_tone(&b_tone, 1000.0, 48_000, 5.0, 0.5);
    let b_params = Params::account(&kam, "1003", Transport::Udp)
        .set("audiodevicein", format!("file:{}", b_tone.display()))
        .set("audiodeviceout", "null");
    let mut peer = webphone_interop::Cli::start(&b_dir, &b_params.pairs());
    peer.expect(|l| l == "START,sip", WAIT);
    expect_registered(&mut peer, 0);

    let a_tone = dir.join("tone-48k.wav");
    write_tone(&a_tone, 440.0, 48_000, 5.0, 0.5);
    let params = integration_params(&kam, &base)
        .set("audiodevicein", format!("file:{}", a_tone.display()))
        .set("audiodeviceout", "null");
    let mut cli = start_cli(&dir, &params);

    // scurl_setparameters was asked before anything else and its password registered us.
    let prov = srv.wait_path("/prov", WAIT);
    assert_eq!(q(&prov, "u"), "1001");
    expect_registered(&mut cli, 0);
    assert_eq!(cli.api_ok("getparameter displayname"), "Prov User");
    let start = srv.wait_path("/start", WAIT);
    assert_eq!(q(&start, "s"), "onStart");
    assert_eq!(q(&start, "u"), "1001");
    assert_eq!(q(&start, "dev").len(), 32, "DEVICEID: {}", start.target());
    assert_eq!(q(&start, "md5").len(), 32, "MD5SIMPLE: {}", start.target());
    let first = srv.requests();
    assert_eq!(
        first[0].path, "/prov",
        "provisioning comes first: {first:?}"
    );

    // ----- outgoing call 1001 -> 1003 ----------------------------------------------------
    cli.api_ok("call 1003");
    expect_incoming(&mut peer);
    let setup = srv.wait_path("/outsetup", WAIT);
    assert_eq!(q(&setup, "called"), "1003");
    assert_eq!(q(&setup, "s"), "callSetup");
    assert_eq!(q(&setup, "dir"), "1");
    assert!(!q(&setup, "id").is_empty(), "CALLID: {}", setup.target());
    assert_eq!(q(&srv.wait_path("/peer", WAIT), "n"), "1003");
    cli.expect(|l| l == "POPUP,Carol Example, ACME Ltd", WAIT);
    let ringing = srv.wait_path("/outringing", WAIT);
    assert_eq!(q(&ringing, "s"), "callRinging");
    peer.api_ok("accept");
    expect_connected(&mut cli);
    let conn = srv.wait_path("/outconnected", WAIT);
    assert_eq!(q(&conn, "peer"), "1003");
    assert_eq!(q(&conn, "s"), "callConnected");
    // Some audio for the recording.
    std::thread::sleep(Duration::from_secs(2));
    cli.api_ok("hangup");
    let end = srv.wait_path("/outend", WAIT);
    assert_eq!(q(&end, "caller"), "1001");
    assert_eq!(q(&end, "called"), "1003");
    assert_eq!(q(&end, "s"), "callDisconnected");
    assert!(
        q(&end, "ms").parse::<u64>().unwrap() > 0,
        "{}",
        end.target()
    );
    assert!(!q(&end, "why").is_empty(), "REASON: {}", end.target());

    // The recording went up by PUT (the URL names a .wav file) with the X- headers.
    let up = srv.wait_request(|r| r.path.starts_with("/rec/1001-1003-"), WAIT);
    assert_eq!(up.method, "PUT");
    assert_eq!(up.header("x-type"), Some("fileupload"));
    assert_eq!(up.header("x-caller"), Some("1001"));
    assert_eq!(up.header("x-called"), Some("1003"));
    assert_eq!(up.header("content-type"), Some("audio/x-wav"));
    assert!(up.body.starts_with(b"RIFF"), "a WAV file was uploaded");
    assert!(
        up.body.len() > 8000,
        "about 2 s of audio, got {} bytes",
        up.body.len()
    );
    let shown = format!("{base}{}", up.path);
    cli.expect(|l| l == format!("VREC,-1,3,3,{shown},"), WAIT);

    // An outgoing call currently drops the caller's registration (the engine re-pushes the
    // account at `call`, and the SIP layer unregisters the old binding): register again so
    // the next call can reach us.
    let mark = cli.mark();
    cli.api_ok("register");
    expect_registered(&mut cli, mark);

    // ----- incoming call 1003 -> 1001, recorded to FTP ---------------------------------
    let ftp = FtpServer::start(dir.path(), "rec", "se@cret", &["in"]);
    cli.api_ok(&format!(
        "setparameter voicerecupload ftp://rec:se%40cret@127.0.0.1:{}/in/voice_CALLER_CALLED.wav",
        ftp.port()
    ));
    let mark = cli.mark();
    peer.api_ok("call 1001");
    expect_incoming(&mut cli);
    let insetup = srv.wait_path("/insetup", WAIT);
    assert_eq!(q(&insetup, "peer"), "1003");
    assert_eq!(q(&insetup, "dir"), "2");
    assert_eq!(q(&srv.wait_path("/inringing", WAIT), "s"), "callRinging");
    cli.api_ok("accept");
    expect_connected(&mut cli);
    assert_eq!(q(&srv.wait_path("/inconnected", WAIT), "peer"), "1003");
    peer.api_ok("hangup");
    let inend = srv.wait_path("/inend", WAIT);
    assert_eq!(q(&inend, "caller"), "1003");
    assert_eq!(q(&inend, "called"), "1001");
    assert_eq!(q(&inend, "who"), "2", "the peer hung up");
    cli.expect_after(mark, |l| l.starts_with("CDR,"), WAIT);
    let stored = ftp.wait_upload("in/voice_1003_1001.wav", WAIT);
    assert!(
        ftp.logged_in("rec"),
        "logged in with the URL's user and password"
    );
    assert!(
        stored.data.starts_with(b"RIFF"),
        "a WAV file went up by FTP"
    );
    cli.expect_after(
        mark,
        |l| {
            l == format!(
                "VREC,-1,3,2,ftp://127.0.0.1:{}/in/voice_1003_1001.wav,",
                ftp.port()
            )
        },
        WAIT,
    );

    // ----- incoming call 1003 -> 1001, recorded to a form handler (multipart POST) -------
    // A URL with a query (a script, not a file) gets the recording as the `file` part of a
    // multipart/form-data POST, the name it asks for in the part.
    cli.api_ok(&format!(
        "setparameter voicerecupload {base}/rec/form.php?filename=form_CALLER.wav"
    ));
    let mark = cli.mark();
    peer.api_ok("call 1001");
    expect_incoming(&mut cli);
    cli.api_ok("accept");
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_secs(2));
    cli.api_ok("hangup");
    cli.expect_after(mark, |l| l.starts_with("CDR,"), WAIT);
    let form = srv.wait_request(|r| r.path == "/rec/form.php", WAIT);
    assert_eq!(form.method, "POST");
    assert_eq!(form.header("x-type"), Some("fileupload"));
    assert_eq!(form.header("x-filename"), Some("form_1003.wav"));
    assert_eq!(form.header("x-caller"), Some("1003"));
    let ctype = form.header("content-type").unwrap_or_default();
    let boundary = ctype
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("not a form upload: {ctype}"));
    let wav = form_file_part(&form.body, boundary, "file", "form_1003.wav");
    let uploaded = dir.path().join("uploaded-form.wav");
    std::fs::write(&uploaded, wav).unwrap();
    // The recording holds both sides of the call: our 440 Hz and the peer's 1000 Hz.
    let (local, remote) = (tone_level(&uploaded, 440.0), tone_level(&uploaded, 1000.0));
    assert!(
        local.dbfs > -30.0 && remote.dbfs > -30.0 && local.share + remote.share > 0.9,
        "both tones in the uploaded recording: {local:?} / {remote:?}"
    );
    // Shown without the query (it may carry the password).
    cli.expect_after(
        mark,
        |l| l == format!("VREC,-1,3,3,{base}/rec/form.php,"),
        WAIT,
    );

    let mark = peer.mark();
    peer.api_ok("register");
    expect_registered(&mut peer, mark);

    // ----- chat both ways ----------------------------------------------------------------
    cli.api_ok("sendchat 1003 \"hello & bye=1\"");
    let out = srv.wait_path("/outchat", WAIT);
    assert_eq!(q(&out, "to"), "1003");
    assert_eq!(
        q(&out, "t"),
        "hello & bye=1",
        "TEXT is encoded: {}",
        out.target()
    );
    assert_eq!(q(&out, "s"), "outChat");
    peer.api_ok("sendchat 1001 \"hi back\"");
    cli.expect(|l| l.starts_with("CHAT,") && l.ends_with(",hi back"), WAIT);
    let inc = srv.wait_path("/inchat", WAIT);
    assert_eq!(q(&inc, "from"), "1003");
    assert_eq!(q(&inc, "t"), "hi back");
    assert_eq!(q(&inc, "s"), "inChat");

    // ----- sms through the HTTP API ------------------------------------------------------
    cli.api_ok("sendsms +3630111222 \"sms text\"");
    let sms = srv.wait_path("/sms", WAIT);
    assert_eq!(q(&sms, "anum"), "1001");
    assert_eq!(q(&sms, "bnum"), "+3630111222");
    assert_eq!(q(&sms, "txt"), "sms text");
    cli.expect(|l| l == "CHATREPORT,0,+3630111222,2,", WAIT);

    // ----- log upload --------------------------------------------------------------------
    cli.api_ok("sendlogs");
    let log = srv.wait_path("/logs", WAIT);
    assert_eq!(log.method, "POST");
    assert_eq!(q(&log, "u"), "1001");
    let body = log.body_text();
    assert!(
        body.contains("name=\"filename\"\r\n\r\nlog-1001.txt\r\n"),
        "{}",
        &body[..body.len().min(400)]
    );
    assert!(body.contains("LOG,"), "the log lines are in the upload");
    assert!(
        !body.contains("pass1001"),
        "no password in the uploaded log"
    );
    cli.expect(|l| l == "EVENT,EVENT,Log sent", WAIT);

    cli.quit();
    peer.quit();
}

/// Every integration URL dead (closed port) or hung (a server that never answers): the phone
/// starts, the echo call connects and ends, and the failures are logged.
#[test]
fn dead_or_hung_servers_never_hold_up_a_call() {
    let _serial = serial();
    let dir = TestDir::new("http_integrations_dead");
    let hung = HttpServer::silent();
    let refused = webphone_interop::refused_tcp_port();
    let closed = format!("http://127.0.0.1:{}", refused.port);
    let h = hung.base();
    let (params, _rec) = Params::new()
        .set("loglevel", "5")
        .set("scurl_setparameters", format!("{closed}/prov"))
        .set("scurl_onstart", format!("{h}/start"))
        .set("scurl_onoutcallsetup", format!("{h}/outsetup"))
        .set("scurl_displaypeerdetails", format!("{h}/peer"))
        .set("scurl_onoutcallconnected", format!("{closed}/outconnected"))
        .set("scurl_onoutcalldisconnected", format!("{closed}/outend"))
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.expect_after(
        0,
        |l| l.starts_with("LOG,WARNING,") && l.contains("scurl_setparameters"),
        WAIT,
    );
    hung.wait_path("/start", WAIT);

    let asked = std::time::Instant::now();
    cli.api_ok("call echo");
    // The hung server has the setup and peer-details requests and answers neither...
    hung.wait_path("/outsetup", WAIT);
    hung.wait_path("/peer", WAIT);
    // ...while the call connects and ends normally.
    expect_connected(&mut cli);
    // A number for the record, not an assertion.
    eprintln!(
        "echo call connected {:?} after `call`, with {} requests hanging on the silent server",
        asked.elapsed(),
        hung.requests().len()
    );
    cli.expect(
        |l| l.starts_with("LOG,WARNING,") && l.contains("scurl_onoutcallconnected"),
        WAIT,
    );
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hangup");
    cli.expect(|l| l.starts_with("CDR,"), WAIT);
    assert!(
        hung.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        hung.requests()
    );
    // The hung requests end with their time-out (logged as a warning) only after the call
    // had connected: the call never waited for them. (Ordering, not a timing threshold.)
    let timed_out = |l: &str| {
        l.starts_with("LOG,WARNING,")
            && (l.contains("scurl_onoutcallsetup") || l.contains("scurl_displaypeerdetails"))
    };
    cli.expect(timed_out, WAIT);
    let lines = cli.lines();
    let connected = lines
        .iter()
        .position(|l| is_line_status(l, &["CallConnect", "InCall"]))
        .expect("connected");
    let first_timeout = lines.iter().position(|l| timed_out(l)).expect("time-out");
    assert!(
        connected < first_timeout,
        "the call connected ({connected}) before the hung requests timed out ({first_timeout})"
    );
    cli.quit();
}

/// HTTPS certificates are verified: an action URL served with a self-signed certificate
/// (OpenSSL's `s_server`) is refused and the refusal is logged; the phone carries on.
#[test]
fn https_with_an_untrusted_certificate_is_refused() {
    let _serial = serial();
    if !require_tools("http_integrations_tls", &["openssl"]) {
        return;
    }
    let dir = TestDir::new("http_integrations_tls");
    let (cert, key) = webphone_interop::kamailio::self_signed_cert(dir.path());
    let port = webphone_interop::free_port();
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["s_server", "-www", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key);
    let mut tls =
        webphone_interop::proc::Proc::spawn("openssl-s_server", cmd, &dir.join("s_server.log"));
    // The probe connection is closed at once: s_server serves one connection at a time.
    let up = webphone_interop::util::wait_for(WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(drop)
    });
    assert!(
        up.is_some(),
        "s_server did not listen: {}",
        tls.log_tail(20)
    );
    let params = Params::new().set("loglevel", "5").set(
        "scurl_onstart",
        format!("https://127.0.0.1:{port}/start?u=USERNAME"),
    );
    let mut cli = start_cli(&dir, &params);
    let warn = cli.expect_after(0, |l| l.starts_with("LOG,WARNING,scurl_onstart:"), WAIT);
    assert!(
        warn.to_ascii_lowercase().contains("certificate"),
        "refused for its certificate: {warn}"
    );
    cli.api_ok("getstatus");
    cli.quit();
    tls.assert_running("while the phone refused its certificate");
}
