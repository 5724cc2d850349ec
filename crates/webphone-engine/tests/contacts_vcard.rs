//! vCard import and export (engine extensions `importvcard` / `exportvcard`) through the
//! engine API on a real profile database (SQLite file in a work directory): round trips keep
//! names, several numbers, email, address, notes, website and favourites, also across a
//! restart; hostile files are refused or read partly, never panic, and leave the stored
//! contacts intact.
#![allow(clippy::unwrap_used)]
mod common;

use std::time::Instant;

use common::TempDir;
use serde_json::Value;
use webphone_engine::profile::vcard::{decode_bytes, MAX_VCARD_BYTES};
use webphone_engine::{Phone, PhoneOptions};

fn open(dir: &TempDir) -> Phone {
    Phone::try_new(PhoneOptions {
        params: vec![],
        work_dir: Some(dir.0.clone()),
    })
    .unwrap()
}

async fn api(p: &Phone, f: &str, args: &[&str]) -> Result<Value, String> {
    p.api(f, args.iter().map(|s| s.to_string()).collect())
        .await
        .map_err(|e| e.to_string())
}

async fn list(p: &Phone) -> String {
    api(p, "listcontacts", &["false"])
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
}

const PHONE_BOOK_3_0: &str = "BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
N:Lee;Ann;;;\r\n\
FN:Ann Lee\r\n\
TEL;TYPE=WORK,VOICE:1002\r\n\
TEL;TYPE=CELL:+36 30 123 4567\r\n\
IMPP:sip:ann@pbx.example\r\n\
EMAIL;TYPE=INTERNET:ann@example.org\r\n\
ADR;TYPE=WORK:;;Main St 1;Springfield;;12345;US\r\n\
NOTE:Prefers calls after 10\\, not before\r\n\
URL:https://ann.example\r\n\
CATEGORIES:Friends,Favorites\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
FN:Bob\r\n\
TEL:1003\r\n\
END:VCARD\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcard_round_trip_keeps_numbers_email_and_favourites_across_a_restart() {
    let dir = TempDir::new("vcard-roundtrip");
    let p = open(&dir);
    assert_eq!(
        api(&p, "importvcard", &[PHONE_BOOK_3_0]).await.unwrap(),
        Value::from(2)
    );
    let first = list(&p).await;
    assert_eq!(
        first,
        "Ann Lee\t1002|+36 30 123 4567|sip:ann@pbx.example\t1\tann@example.org\t\
         Main St 1, Springfield, 12345, US\tPrefers calls after 10, not before\t\
         https://ann.example\r\nBob\t1003\t0\t\t\t\t"
    );

    let exported = api(&p, "exportvcard", &[]).await.unwrap();
    let exported = exported.as_str().unwrap().to_string();
    assert_eq!(
        exported.matches("BEGIN:VCARD\r\nVERSION:4.0\r\n").count(),
        2
    );
    assert!(exported.contains("CATEGORIES:Favorites\r\n"), "{exported}");
    assert!(
        exported.contains("IMPP:sip:ann@pbx.example\r\n"),
        "{exported}"
    );

    // Empty the store, import the export: the same list.
    api(&p, "delcontact", &["Ann Lee", ""]).await.unwrap();
    api(&p, "delcontact", &["Bob", ""]).await.unwrap();
    assert_eq!(
        api(&p, "listcontacts", &["false"]).await.unwrap(),
        Value::Null
    );
    assert_eq!(
        api(&p, "importvcard", &[&exported]).await.unwrap(),
        Value::from(2)
    );
    assert_eq!(list(&p).await, first);
    let _ = p.api("stop", vec![]).await;
    drop(p);

    // In the SQLite file: a new engine on the same work directory sees the same list and
    // exports the same vCard text.
    let q = open(&dir);
    assert_eq!(list(&q).await, first);
    assert_eq!(
        api(&q, "exportvcard", &[]).await.unwrap().as_str().unwrap(),
        exported
    );
    // Importing again merges by name: nothing doubles.
    api(&q, "importvcard", &[&exported]).await.unwrap();
    assert_eq!(list(&q).await, first);
    let _ = q.api("stop", vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_vcards_never_panic_and_keep_the_stored_contacts() {
    let dir = TempDir::new("vcard-hostile");
    let p = open(&dir);
    api(&p, "addcontact", &["Kept", "1001", "", "", "", ""])
        .await
        .unwrap();
    let before = list(&p).await;

    // Refused as a whole: nothing changes.
    let huge = format!(
        "BEGIN:VCARD\r\nFN:Huge\r\nNOTE:{}\r\nEND:VCARD\r\n",
        "x".repeat(MAX_VCARD_BYTES)
    );
    let e = api(&p, "importvcard", &[&huge]).await.unwrap_err();
    assert!(e.contains("too large"), "{e}");
    let e = api(&p, "importvcard", &["just some text\nwithout cards"])
        .await
        .unwrap_err();
    assert!(e.contains("no vCard"), "{e}");
    assert!(api(&p, "importvcard", &[]).await.is_err());
    assert_eq!(list(&p).await, before);

    // Read as far as it makes sense: a 2.1 card in ISO-8859-1 quoted-printable with a soft
    // line break, a folded line, broken lines, a nameless card, a card cut off at the end,
    // and raw Latin-1 bytes outside any quoted-printable.
    let mut bytes = b"BEGIN:VCARD\r\nVERSION:2.1\r\n\
N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;J=F6=\r\nrg\r\n\
TEL;CELL:+49 30\r\n 1234\r\n\
this line is broken\r\n;;;:\r\n\
PHOTO;ENCODING=BASE64;TYPE=JPEG:/9j/4AAQ\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\nNOTE:no name, no number\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nFN:Fran"
        .to_vec();
    bytes.extend_from_slice(b"\xE7ois\r\nTEL:1005\r\n");
    let text = decode_bytes(&bytes);
    assert_eq!(
        api(&p, "importvcard", &[&text]).await.unwrap(),
        Value::from(2)
    );
    let after = list(&p).await;
    assert!(after.contains("Jörg Müller\t+49 301234\t0"), "{after}");
    assert!(after.contains("François\t1005\t0"), "{after}");
    assert!(after.contains("Kept\t1001\t0"), "{after}");

    // Thousands of cards import in one transaction; the time is printed, not asserted.
    let many: String = (0..5000)
        .map(|i| {
            format!("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bulk {i}\r\nTEL:+1555{i:07}\r\nEND:VCARD\r\n")
        })
        .collect();
    let t = Instant::now();
    assert_eq!(
        api(&p, "importvcard", &[&many]).await.unwrap(),
        Value::from(5000)
    );
    let import_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let out = api(&p, "exportvcard", &[]).await.unwrap();
    println!(
        "vcard: 5000 cards ({} bytes) imported in {import_ms} ms, {} contacts exported in {} ms",
        many.len(),
        out.as_str().unwrap().matches("BEGIN:VCARD").count(),
        t.elapsed().as_millis()
    );
    let _ = p.api("stop", vec![]).await;
}
