//! Steps shared by the interop scenarios that drive `webphone-cli`.

use std::time::Duration;

use serde_json::Value;

use crate::cli::{user_part, Callback, Cdr, Cli, Status};
use crate::{Params, TestDir};

/// Generous wait for anything that involves the network on loopback.
pub const WAIT: Duration = Duration::from_secs(20);

/// Starts the CLI (`--callbacks`) and waits for `START,api` then `START,sip`.
pub fn start_cli(dir: &TestDir, params: &Params) -> Cli {
    let mut cli = Cli::start(dir.path(), &params.pairs());
    cli.expect(|l| l == "START,api", WAIT);
    cli.expect(|l| l == "START,sip", WAIT);
    cli
}

/// Waits for `CALLBACK,onRegistered` and `STATUS,-1,Registered` (in any
/// order) from position `mark`.
pub fn expect_registered(cli: &mut Cli, mark: usize) -> Status {
    cli.expect_after(
        mark,
        |l| Callback::parse(l).is_some_and(|c| c.name == "onRegistered"),
        WAIT,
    );
    let line = cli.expect_after(
        mark,
        |l| Status::parse(l).is_some_and(|s| s.line == -1 && s.text == "Registered"),
        WAIT,
    );
    let st = Status::parse(&line).expect("status");
    if let Some(r) = st.registered {
        assert!(
            r == 2 || r == 3,
            "STATUS,-1,Registered with registered={r} (2 or 3 expected): {line}"
        );
    }
    st
}

/// A per-line status (line >= 1) with one of `texts`.
pub fn is_line_status(line: &str, texts: &[&str]) -> bool {
    Status::parse(line).is_some_and(|s| s.line >= 1 && texts.contains(&s.text.as_str()))
}

/// Waits (from the cursor) until a line reports the call connected
/// (`CallConnect` or `InCall`).
pub fn expect_connected(cli: &mut Cli) -> Status {
    let l = cli.expect(|l| is_line_status(l, &["CallConnect", "InCall"]), WAIT);
    Status::parse(&l).expect("status")
}

/// Waits (from the cursor) for an incoming call ringing: `STATUS,-1,Incoming...`
/// or a per-line `Ringing` with endpointtype 2.
pub fn expect_incoming(cli: &mut Cli) -> String {
    cli.expect(
        |l| {
            Status::parse(l).is_some_and(|s| {
                (s.line == -1 && s.text.starts_with("Incoming"))
                    || (s.line >= 1 && s.text == "Ringing" && s.endpoint_type == Some(2))
            })
        },
        WAIT,
    )
}

/// Waits (from the cursor) for an outgoing call ringing (`Ringing` on a line,
/// or `STATUS,-1,Ringing...`).
pub fn expect_ringing(cli: &mut Cli) -> String {
    cli.expect(
        |l| {
            Status::parse(l).is_some_and(|s| {
                (s.line >= 1 && s.text == "Ringing")
                    || (s.line == -1 && s.text.starts_with("Ringing"))
            })
        },
        WAIT,
    )
}

/// The call record of a call that ended after `mark`: the `CDR` notification
/// and the `onCdr` callback arguments
/// (caller, called, connecttime, duration, direction, peerdisplayname, reason, line).
pub fn call_record(cli: &mut Cli, mark: usize) -> (Cdr, Vec<Value>) {
    let cdr_line = cli.expect_after(mark, |l| Cdr::parse(l).is_some(), WAIT);
    let cdr = Cdr::parse(&cdr_line).expect("cdr");
    let cb = cli.expect_after(
        mark,
        |l| Callback::parse(l).is_some_and(|c| c.name == "onCdr"),
        WAIT,
    );
    let args = Callback::parse(&cb).map(|c| c.args).unwrap_or_default();
    eprintln!("call record: {cdr_line}\n             {cb}");
    assert!(args.len() >= 8, "onCdr needs 8 arguments: {cb}");
    // both forms describe the same call
    assert_eq!(
        user_part(&cdr.caller),
        user_part(args[0].as_str().unwrap_or_default()),
        "caller differs between CDR and onCdr: {cdr_line} / {cb}"
    );
    assert_eq!(
        user_part(&cdr.called),
        user_part(args[1].as_str().unwrap_or_default()),
        "called differs between CDR and onCdr: {cdr_line} / {cb}"
    );
    assert_eq!(
        Some(cdr.duration_ms),
        json_i64(&args[3]),
        "duration differs between CDR and onCdr: {cdr_line} / {cb}"
    );
    (cdr, args)
}

/// A JSON number or numeric string as i64.
pub fn json_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Checks a CDR of a connected call: parties, direction, who hung up, and a
/// duration at least `min_duration` (the time the test held the call, less
/// 250 ms for the distance between the test's clock and the softphone's) and
/// not absurdly longer.
pub fn assert_connected_cdr(
    cdr: &Cdr,
    oncdr: &[Value],
    caller: &str,
    called: &str,
    direction: i64,
    disc_party: i32,
    min_duration: Duration,
) {
    let ctx = format!("{cdr:?} / onCdr {oncdr:?}");
    assert_eq!(user_part(&cdr.caller), caller, "caller: {ctx}");
    assert_eq!(user_part(&cdr.called), called, "called: {ctx}");
    assert_eq!(json_i64(&oncdr[4]), Some(direction), "direction: {ctx}");
    assert_eq!(cdr.disc_party, disc_party, "discparty: {ctx}");
    assert!(cdr.connect_ms >= 0, "connecttime: {ctx}");
    let min = i64::try_from(min_duration.as_millis()).unwrap_or(i64::MAX) - 250;
    assert!(
        cdr.duration_ms >= min,
        "duration {} ms < {min} ms held: {ctx}",
        cdr.duration_ms
    );
    assert!(
        cdr.duration_ms <= min + 60_000,
        "duration {} ms implausibly long: {ctx}",
        cdr.duration_ms
    );
    assert!(!cdr.reason.trim().is_empty(), "empty reason: {ctx}");
    assert_eq!(
        oncdr[6].as_str().map(str::trim),
        Some(cdr.reason.trim()),
        "reason differs between CDR and onCdr: {ctx}"
    );
}
