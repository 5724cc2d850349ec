//! The JavaScript facade (`ui/webphone_api.js`) and the engine offer the same functions: every
//! name in the facade's function table reaches a function of a running engine (not "unknown
//! function"), and every function the engine dispatches is in the facade's table, so a page
//! can call everything the CLI can. The engine's names are the string patterns of its
//! dispatch `match` arms (src/core.rs, src/core/*.rs), kept when a real engine knows them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::TempDir;
use webphone_engine::{ApiError, Phone, PhoneOptions};

/// Names the facade defines or uses outside its function table (`syncstate`: the copy behind
/// its synchronous answers).
const FACADE_OUTSIDE_TABLE: &[&str] = &["start", "stop", "syncstate"];

fn manifest(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The keys of `var FUNCTIONS = { ... };` in the facade.
fn facade_functions() -> BTreeSet<String> {
    let js = manifest("../../ui/webphone_api.js");
    let start = js
        .find("var FUNCTIONS = {")
        .expect("the facade's function table");
    let body = &js[start..];
    let body = &body[..body.find("\n  };").expect("end of the function table")];
    let mut names: BTreeSet<String> = body
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            let (key, _) = l.split_once(':')?;
            (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase()))
                .then(|| key.to_string())
        })
        .collect();
    names.extend(FACADE_OUTSIDE_TABLE.iter().map(|s| s.to_string()));
    names
}

/// Every lower-case string literal that starts a `match` arm in the engine's core sources:
/// a superset of the function names (parameter names and other arms are filtered out by
/// asking the engine).
fn dispatch_candidates() -> BTreeSet<String> {
    let mut sources = vec![manifest("src/core.rs")];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut names = BTreeSet::new();
    for src in &sources {
        for line in src.lines() {
            let Some((pattern, _)) = line.trim().split_once("=>") else {
                continue;
            };
            for alt in pattern.split('|') {
                let alt = alt.trim();
                if let Some(name) = alt.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
                    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()) {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facade_and_engine_offer_the_same_functions() {
    let dir = TempDir::new("parity");
    let phone = Phone::try_new(PhoneOptions {
        params: vec![
            ("username".into(), "parity".into()),
            ("audiodevicein".into(), "null".into()),
            ("audiodeviceout".into(), "null".into()),
        ],
        work_dir: Some(dir.0.clone()),
    })
    .unwrap();
    phone.api("start", vec![]).await.unwrap();
    let known = |outcome: &Result<serde_json::Value, ApiError>| {
        !matches!(outcome, Err(ApiError::UnknownFunction))
    };

    let facade = facade_functions();
    assert!(facade.len() > 60, "facade table parsed: {facade:?}");
    let mut missing_in_engine = Vec::new();
    for name in &facade {
        if FACADE_OUTSIDE_TABLE.contains(&name.as_str()) {
            continue;
        }
        // No arguments: a function that needs some answers with an argument error, which
        // still shows it exists.
        if !known(&phone.api(name, vec![]).await) {
            missing_in_engine.push(name.clone());
        }
    }

    let mut engine = BTreeSet::new();
    for name in dispatch_candidates() {
        if FACADE_OUTSIDE_TABLE.contains(&name.as_str()) || facade.contains(&name) {
            engine.insert(name);
            continue;
        }
        if known(&phone.api(&name, vec![]).await) {
            engine.insert(name);
        }
    }
    let _ = phone.api("stop", vec![]).await;
    assert!(
        engine.contains("call") && engine.contains("getstatus"),
        "dispatch arms found: {engine:?}"
    );
    let missing_in_facade: Vec<_> = engine.difference(&facade).collect();
    assert!(
        missing_in_engine.is_empty() && missing_in_facade.is_empty(),
        "in the facade but unknown to the engine: {missing_in_engine:?}; \
         dispatched by the engine but not in ui/webphone_api.js: {missing_in_facade:?}"
    );
}
