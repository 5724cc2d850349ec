//! Contacts from the configuration (behaviours §19): the server address book
//! (`serveraddressbook_url` as `serveraddressbook_sync` says, `SERVERCONTACTS` and `ACTION`
//! notifications, the `syncservercontacts()` extension) and `defcontacts`, against a real
//! HTTP server on loopback and profiles in real SQLite files that outlive the phone.

#![allow(clippy::unwrap_used)]
mod common;

use common::*;

const BOOK: &str = "Kim Smith\t1002|sip:kim@127.0.0.1\t1\tkim@example.org\r\n\
                    Lee Jones\t1003\r\n\
                    No Number\t\r\n";

fn phone_params(url: &str, sync: Option<&str>) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("username", "bob".to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
        ("serveraddressbook_url", url.to_string()),
    ];
    if let Some(s) = sync {
        p.push(("serveraddressbook_sync", s.to_string()));
    }
    p
}

/// Whether `start()` began a download: `ACTION` is sent before `start()` returns.
fn download_started(p: &mut TestPhone) -> bool {
    p.drain()
        .iter()
        .any(|e| matches!(e, webphone_engine::Event::Notification(t) if t == "ACTION,serveraddressbook download started"))
}

async fn contacts(p: &TestPhone) -> Vec<String> {
    let v = p.api("listcontacts", &[]).await;
    v.as_str()
        .map(|s| s.split("\r\n").map(str::to_string).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_address_book_is_imported_until_it_gives_contacts_then_not_again() {
    let (http, requests) = http_server(&[("/book", BOOK), ("/none", "")]).await;
    let dir = TempDir::new("srvbook");
    let empty = format!("*http://127.0.0.1:{http}/none?u=USERNAME");
    let book = format!("http://127.0.0.1:{http}/book?u=USERNAME");

    // An empty answer: nothing to import, so the next start asks again (sync 1, the default).
    let mut p = TestPhone::in_dir(&phone_params(&empty, None), Some(&dir.0)).await;
    assert!(download_started(&mut p));
    p.notification(|t| t.starts_with("SERVERCONTACTS,"), 10)
        .await;
    assert!(p
        .notifications("SERVERCONTACTS,")
        .contains(&"SERVERCONTACTS,0 contacts received from the server address book".to_string()));
    p.stop().await;
    let mut p = TestPhone::in_dir(&phone_params(&empty, None), Some(&dir.0)).await;
    assert!(download_started(&mut p), "an empty book is asked again");
    p.notification(|t| t.starts_with("SERVERCONTACTS,"), 10)
        .await;
    p.stop().await;

    // The real book: two contacts (the line without a number is skipped with a warning).
    let mut p = TestPhone::in_dir(&phone_params(&book, None), Some(&dir.0)).await;
    assert!(download_started(&mut p));
    p.notification(
        |t| t == "SERVERCONTACTS,2 contacts received from the server address book",
        10,
    )
    .await;
    p.notification(
        |t| t.starts_with("LOG,WARNING,server address book: 1 lines"),
        5,
    )
    .await;
    assert_eq!(
        contacts(&p).await,
        [
            "Kim Smith\t1002|sip:kim@127.0.0.1\t1\tkim@example.org\t\t\t",
            "Lee Jones\t1003\t0\t\t\t\t",
        ]
    );
    // The user deletes one; the next start does not download (and bring it back).
    p.api("delcontact", &["Lee Jones", ""]).await;
    p.stop().await;
    let mut p = TestPhone::in_dir(&phone_params(&book, None), Some(&dir.0)).await;
    assert!(
        !download_started(&mut p),
        "a received book is not asked again"
    );
    assert_eq!(contacts(&p).await.len(), 1);
    // ...unless asked for (the skin's menu): then it comes back.
    p.api("syncservercontacts", &[]).await;
    p.notification(|t| t.starts_with("SERVERCONTACTS,2 "), 10)
        .await;
    assert_eq!(contacts(&p).await.len(), 2);
    p.stop().await;

    let seen = paths(&requests);
    assert_eq!(
        seen,
        ["/none?u=bob", "/none?u=bob", "/book?u=bob", "/book?u=bob"],
        "tokens replaced, one request per download"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_0_asks_once_and_sync_2_at_every_start() {
    let (http, requests) = http_server(&[("/book", BOOK)]).await;
    let book = format!("http://127.0.0.1:{http}/book");
    let dir = TempDir::new("srvbook0");
    for round in 0..2 {
        let mut p = TestPhone::in_dir(&phone_params(&book, Some("0")), Some(&dir.0)).await;
        assert_eq!(
            download_started(&mut p),
            round == 0,
            "sync 0, start {round}"
        );
        if round == 0 {
            p.notification(|t| t.starts_with("SERVERCONTACTS,2 "), 10)
                .await;
        }
        p.stop().await;
    }
    let dir = TempDir::new("srvbook2");
    for round in 0..2 {
        let mut p = TestPhone::in_dir(&phone_params(&book, Some("2")), Some(&dir.0)).await;
        assert!(download_started(&mut p), "sync 2, start {round}");
        p.notification(|t| t.starts_with("SERVERCONTACTS,2 "), 10)
            .await;
        p.stop().await;
    }
    assert_eq!(requests.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_address_book_is_a_warning_and_asked_again_next_start() {
    // A port nobody listens on: connection refused.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/book");
    let dir = TempDir::new("srvbookdead");
    for _ in 0..2 {
        let mut p = TestPhone::in_dir(&phone_params(&url, None), Some(&dir.0)).await;
        assert!(download_started(&mut p));
        let warning = p
            .notification(|t| t.starts_with("LOG,WARNING,server address book:"), 15)
            .await;
        assert!(!warning.contains("127.0.0.1"), "no URL in logs: {warning}");
        assert!(p.notifications("SERVERCONTACTS,").is_empty());
        p.stop().await;
    }
    // Without the parameter, the extension says what is missing.
    let p = TestPhone::new(&phone_params("", None)).await;
    let err = p
        .phone
        .api("syncservercontacts", vec![])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("serveraddressbook_url is not set"), "{err}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defcontacts_are_preloaded_once_per_value() {
    let dir = TempDir::new("defcontacts");
    let params = |v: &str| {
        vec![
            ("username", "bob".to_string()),
            ("audiodevicein", "null".into()),
            ("audiodeviceout", "null".into()),
            ("defcontacts", v.to_string()),
        ]
    };
    let p = TestPhone::in_dir(&params("Support,1000;Sales,2000,2001"), Some(&dir.0)).await;
    assert_eq!(
        contacts(&p).await,
        ["Sales\t2000|2001\t0\t\t\t\t", "Support\t1000\t0\t\t\t\t"]
    );
    p.api("delcontact", &["Support", ""]).await;
    p.stop().await;
    // Same value: the deleted contact stays deleted.
    let p = TestPhone::in_dir(&params("Support,1000;Sales,2000,2001"), Some(&dir.0)).await;
    assert_eq!(contacts(&p).await, ["Sales\t2000|2001\t0\t\t\t\t"]);
    p.stop().await;
    // A new list is imported (merged by name).
    let p = TestPhone::in_dir(&params("Support,1000;Desk,3000"), Some(&dir.0)).await;
    assert_eq!(contacts(&p).await.len(), 3);
    p.stop().await;
}
