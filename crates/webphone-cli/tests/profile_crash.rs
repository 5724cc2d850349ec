//! Crash safety of the profile database: the real `webphone-cli` writes settings, contacts
//! and call history (calls to the built-in `echo` endpoint) into its SQLite file under
//! `--work-dir`, and is SIGKILLed at a random moment while it writes, several times over the
//! same profile. After every kill the database must open, pass `PRAGMA integrity_check`, and
//! hold every write the CLI had acknowledged before it died: a `RESULT,addcontact` line, the
//! last acknowledged `setparameter` (or a later one), and a history row for every `CDR` line.
//!
//! The kill moment comes from a seed printed by the test (`PROFILE_CRASH_SEED=<n>` repeats a
//! run).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

const BIN: &str = env!("CARGO_BIN_EXE_webphone-cli");
/// How many times the CLI is killed.
const ROUNDS: usize = 6;
/// Commands queued per round (far more than are done before the kill).
const COMMANDS: usize = 12_000;

/// xorshift64*: enough randomness for kill moments, repeatable from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One command of round `round`, number `i`: mostly contacts, a setting every 4th, an echo
/// call (call + hangup) every 25th.
fn command(round: usize, i: usize) -> Vec<String> {
    let mut out = vec![format!(
        "addcontact \"crash {round} {i}\" \"9{round}{i:05}\""
    )];
    if i % 4 == 0 {
        out.push(format!("setparameter displayname \"kim {round} {i}\""));
    }
    if i % 25 == 0 {
        out.push("call echo".into());
        out.push("hangup".into());
    }
    out
}

/// What one round saw acknowledged before the kill.
#[derive(Debug, Default)]
struct Acked {
    contacts: Vec<String>,
    /// Index `i` of the last acknowledged `setparameter displayname`.
    last_setting: Option<usize>,
    cdrs: usize,
    results: usize,
}

/// Runs the CLI on `work_dir`, feeds it the round's commands, kills it with SIGKILL
/// `kill_after` after its first RESULT line, and returns what it had acknowledged.
fn run_and_kill(work_dir: &Path, round: usize, kill_after: Duration) -> Acked {
    let mut child = Command::new(BIN)
        .args(["--work-dir", work_dir.to_str().unwrap()])
        .args(["-p", "audiodevicein=null", "-p", "audiodeviceout=null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sent: Vec<String> = (0..COMMANDS).flat_map(|i| command(round, i)).collect();
    let mut stdin = child.stdin.take().unwrap();
    let to_send = sent.clone();
    // The pipe fills up; the writer blocks until the CLI reads, and fails once it is dead.
    let writer = std::thread::spawn(move || {
        for line in to_send {
            if writeln!(stdin, "{line}").is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut answered = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !answered && line.starts_with("RESULT,") {
                answered = true;
                let _ = first_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    first_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the CLI answers a first command");
    std::thread::sleep(kill_after);
    // std's kill is SIGKILL on Unix: no handler, no clean-up, mid-transaction if it was in one.
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = reader.join().unwrap();
    writer.join().unwrap();

    // Every command gets exactly one RESULT or ERROR line, in order.
    let answers: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.starts_with("RESULT,") || (l.starts_with("ERROR,") && !l.starts_with("ERROR,start,"))
        })
        .collect();
    let mut acked = Acked::default();
    for (cmd, answer) in sent.iter().zip(&answers) {
        let func = cmd.split(' ').next().unwrap();
        assert!(
            answer.starts_with(&format!("RESULT,{func},")),
            "round {round}: `{cmd}` answered {answer}"
        );
        acked.results += 1;
        if func == "addcontact" {
            acked
                .contacts
                .push(cmd.split('"').nth(1).unwrap().to_string());
        } else if func == "setparameter" {
            let value = cmd.split('"').nth(1).unwrap();
            acked.last_setting = Some(value.rsplit(' ').next().unwrap().parse().unwrap());
        }
    }
    assert!(
        acked.results < sent.len(),
        "round {round}: every command was done before the kill, none was interrupted"
    );
    acked.cdrs = lines.iter().filter(|l| l.starts_with("CDR,")).count();
    acked
}

fn db_path(work_dir: &Path) -> PathBuf {
    webphone_engine::profile::Profile::db_path(work_dir, "").unwrap()
}

#[test]
fn profile_survives_sigkill_mid_write() {
    let seed = std::env::var("PROFILE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("PROFILE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let work_dir = std::env::temp_dir().join(format!(
        "webphone-profile-crash-{}-{seed}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir).unwrap();

    let mut all_contacts: Vec<String> = Vec::new();
    let mut all_cdrs = 0;
    let mut total_results = 0;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(50 + rng.below(1200));
        let started = Instant::now();
        let acked = run_and_kill(&work_dir, round, kill_after);
        println!(
            "round {round}: killed {kill_after:?} after the first answer ({:?} in all): {} \
             commands acknowledged, {} contacts, {} CDRs",
            started.elapsed(),
            acked.results,
            acked.contacts.len(),
            acked.cdrs
        );
        total_results += acked.results;
        all_contacts.extend(acked.contacts);
        all_cdrs += acked.cdrs;

        // Read the file as it was left, with a plain SQLite connection (the WAL is replayed).
        let db = db_path(&work_dir);
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .unwrap_or_else(|e| panic!("round {round}: {} does not open: {e}", db.display()));
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}: integrity_check");

        let mut stmt = conn.prepare("SELECT name FROM contacts").unwrap();
        let stored: std::collections::HashSet<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let lost: Vec<&String> = all_contacts
            .iter()
            .filter(|c| !stored.contains(*c))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged contacts lost (seed {seed}), first {:?}",
            lost.len(),
            lost.first()
        );

        let history: usize = conn
            .query_row("SELECT COUNT(*) FROM call_history", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            .try_into()
            .unwrap();
        assert!(
            history >= all_cdrs,
            "round {round}: {all_cdrs} calls ended with a CDR line, {history} in the history (seed {seed})"
        );

        if let Some(last) = acked.last_setting {
            let value: String = conn
                .query_row(
                    "SELECT value FROM settings WHERE key = 'displayname'",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or_else(|e| panic!("round {round}: displayname not stored: {e}"));
            let parts: Vec<&str> = value.split(' ').collect();
            let (r, i): (usize, usize) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
            assert!(
                r == round && i >= last,
                "round {round}: displayname {value:?} is older than the acknowledged \
                 'kim {round} {last}' (seed {seed})"
            );
        }
    }
    assert!(
        total_results > 0 && !all_contacts.is_empty(),
        "the CLI acknowledged no write at all"
    );

    // The engine itself opens the profile without moving it aside as damaged.
    let profile = webphone_engine::profile::Profile::open(&work_dir, "").unwrap();
    assert!(profile.contacts().unwrap().len() >= all_contacts.len());
    drop(profile);
    let _ = std::fs::remove_dir_all(&work_dir);
}
