//! `redialonfail`: an outgoing call that fails without an answer from the callee (here: TCP
//! connection refused by a closed port) is dialled once more with the default `1`, and not
//! at all with `0`. Each attempt leaves its own call record.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{start_cli, WAIT};
use webphone_interop::{free_port, serial, Params, TestDir};

fn attempts(name: &str, redial: &str) -> usize {
    let dir = TestDir::new(name);
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "1")
        .set("redialonfail", redial)
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let dead = free_port();
    let _ = cli.api(
        &format!("call sip:2000@127.0.0.1:{dead};transport=tcp"),
        Duration::from_secs(5),
    );
    // Wait for the first record, then give a retry time to happen and fail too.
    cli.expect(|l| l.starts_with("CDR,"), WAIT);
    std::thread::sleep(Duration::from_secs(3));
    let n = cli.seen(|l| l.starts_with("CDR,")).len();
    cli.quit();
    n
}

#[test]
fn failed_call_is_dialled_once_more_by_default() {
    let _serial = serial();
    assert_eq!(attempts("redial_on", "1"), 2, "one retry, not more");
}

#[test]
fn no_retry_when_redialonfail_is_off() {
    let _serial = serial();
    assert_eq!(attempts("redial_off", "0"), 1);
}
