//! Conformance: every parameter row of the catalog round-trips through `setparameter` /
//! `getparameter` on a real engine (strings in, normalised values out), refuses invalid
//! values with a message naming the parameter while keeping the previous value, and honours
//! the special values `DEF` and `NULL`.

#![allow(clippy::unwrap_used)]
mod common;

use common::TempDir;
use serde_json::Value;
use webphone_engine::params::{NumberRule, ParamDef, ParamKind, Registry};
use webphone_engine::{ApiError, Phone, PhoneOptions};

/// A phone with its own work folder (setting `profile` switches databases there).
fn phone(dir: &TempDir) -> Phone {
    Phone::try_new(PhoneOptions {
        params: vec![],
        work_dir: Some(dir.0.clone()),
    })
    .unwrap()
}

async fn get(p: &Phone, name: &str) -> String {
    match p.api("getparameter", vec![name.into()]).await.unwrap() {
        Value::String(s) => s,
        other => panic!("getparameter({name}) returned {other}"),
    }
}

async fn set(p: &Phone, name: &str, value: &str) -> Result<Value, ApiError> {
    p.api("setparameter", vec![name.into(), value.into()]).await
}

/// A valid input string for the row and the normalised value `getparameter` must return.
fn valid_input(def: &ParamDef) -> (String, String) {
    match &def.kind {
        ParamKind::Bool => {
            // Flip the default so the change is visible; spelled as a JavaScript page would.
            if def.default.as_deref() == Some("true") {
                ("0".into(), "false".into())
            } else {
                (" YES ".into(), "true".into())
            }
        }
        ParamKind::Number(NumberRule::Any) => (" 42 ".into(), "42".into()),
        ParamKind::Number(NumberRule::Range { max, .. }) => (format!("{max} "), max.to_string()),
        ParamKind::Number(NumberRule::OneOf(list)) => {
            let v = list.last().map(|e| e.value).unwrap_or(0);
            (format!(" {v}"), v.to_string())
        }
        ParamKind::String => {
            let v = format!("value of {}, with a comma", def.name);
            (v.clone(), v)
        }
    }
}

/// An invalid input for typed rows (strings accept anything).
fn invalid_input(def: &ParamDef) -> Option<String> {
    match &def.kind {
        ParamKind::Bool => Some("maybe".into()),
        ParamKind::Number(NumberRule::Any) => Some("12abc".into()),
        ParamKind::Number(NumberRule::Range { max, .. }) => Some((max + 1).to_string()),
        ParamKind::Number(NumberRule::OneOf(list)) => {
            let top = list.iter().map(|e| e.value).max().unwrap_or(0);
            Some((top + 1000).to_string())
        }
        ParamKind::String => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_parameter_row_round_trips_and_refuses_invalid_values() {
    let dir = TempDir::new("conf-params");
    let p = phone(&dir);
    let reg = Registry::global();
    assert!(reg.len() >= 280, "catalog has {} rows", reg.len());
    let mut failures = Vec::new();
    for def in reg.iter() {
        let name = def.name;
        let canonical = def.alias_of.unwrap_or(def.name);
        let (input, want) = valid_input(def);
        if let Err(e) = set(&p, name, &input).await {
            failures.push(format!("{name}: valid value {input:?} refused: {e}"));
            continue;
        }
        let got = get(&p, name).await;
        if got != want {
            failures.push(format!("{name}: set {input:?}, got {got:?}, want {want:?}"));
        }
        // An alias row and its canonical parameter are one value.
        let via_canonical = get(&p, canonical).await;
        if via_canonical != want {
            failures.push(format!(
                "{name}: canonical {canonical} reads {via_canonical:?}"
            ));
        }
        // Case-insensitive names.
        let upper = get(&p, &name.to_ascii_uppercase()).await;
        if upper != want {
            failures.push(format!("{name}: upper-case name reads {upper:?}"));
        }
        if let Some(bad) = invalid_input(def) {
            match set(&p, name, &bad).await {
                Ok(_) => failures.push(format!("{name}: invalid value {bad:?} accepted")),
                Err(e) => {
                    let msg = e.to_string();
                    if !msg.contains(canonical) {
                        failures.push(format!("{name}: refusal does not name it: {msg}"));
                    }
                    let kept = get(&p, name).await;
                    if kept != want {
                        failures.push(format!("{name}: refused value changed it to {kept:?}"));
                    }
                }
            }
        }
        // DEF: back to the default; NULL: empty.
        set(&p, name, "DEF").await.unwrap();
        let default = def.default.clone().unwrap_or_default();
        let got = get(&p, name).await;
        if got != default {
            failures.push(format!("{name}: DEF gives {got:?}, default {default:?}"));
        }
        set(&p, name, "NULL").await.unwrap();
        let got = get(&p, name).await;
        if !got.is_empty() {
            failures.push(format!("{name}: NULL gives {got:?}"));
        }
        set(&p, name, "DEF").await.unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setparameter_argument_errors_change_nothing() {
    let dir = TempDir::new("conf-params-args");
    let p = phone(&dir);
    set(&p, "loglevel", "3").await.unwrap();
    for args in [
        vec![],
        vec!["".to_string()],
        vec!["  ".to_string(), "5".to_string()],
    ] {
        let e = p.api("setparameter", args.clone()).await.unwrap_err();
        assert!(
            e.to_string().contains("setparameter(name, value)"),
            "{args:?}: {e}"
        );
    }
    let e = p.api("getparameter", vec![]).await.unwrap_err();
    assert!(e.to_string().contains("getparameter(name)"), "{e}");
    assert_eq!(get(&p, "loglevel").await, "3");
    // A typed refusal names the parameter and what it accepts.
    let e = set(&p, "transport", "9").await.unwrap_err().to_string();
    assert!(e.contains("transport") && e.contains("one of"), "{e}");
    assert_eq!(get(&p, "transport").await, "-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_parameters_are_kept_as_strings_with_a_warning() {
    let dir = TempDir::new("conf-params-unknown");
    let p = phone(&dir);
    let mut events = p.subscribe();
    set(&p, "my_custom_key", "a,b").await.unwrap();
    assert_eq!(get(&p, "my_custom_key").await, "a,b");
    let mut warned = false;
    while let Ok(ev) = events.try_recv() {
        if let webphone_engine::Event::Notification(t) = ev {
            if t.starts_with("LOG,WARNING,") && t.contains("my_custom_key") {
                warned = true;
            }
        }
    }
    assert!(warned, "no LOG,WARNING about the unknown parameter");
}
