//! Audit of the conformance suite (issue 5, "How it is shown"): every row of the API table
//! (`data/api.tsv`), every notification type of `data/notifications.md` and every callback of
//! `data/events.tsv` must be named by at least one test that drives a real engine:
//! the engine's integration tests (`crates/webphone-engine/tests/`) or the interop tests
//! against real peers (`tests/interop/tests/`). Callbacks and facade-only rows may also be
//! covered by the facade's Node tests (`ui/test/`).
//!
//! "Named" means the name appears as a string literal the test passes to the engine:
//! `"name"` (engine API), `"name ...` (the CLI command form of the interop tests), or for a
//! notification the start of its text, `"TYPE,`. Comments do not count, nor does
//! `reference_up_to_date.rs`, which only samples every function for the reference page.
//!
//! Notification types the engine never sends must be listed in [`NOT_SENT`] *and* in the
//! "Not sent" line of `docs/behaviour-choices.md`, so a gap is a documented choice, never an
//! oversight. The copies in `data/` are the project's own; nothing here reads `../shared`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Notification types of the catalog this engine never sends, with the reason.
const NOT_SENT: &[(&str, &str)] = &[];

/// API rows that are not engine functions: covered by the facade's tests instead.
const FACADE_ONLY: &[&str] = &["isstarted"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The first word of every API table row: `API_Call (via jvoip)` gives `API_Call`.
fn api_rows() -> Vec<String> {
    data("api.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter_map(|c| c.split_whitespace().next())
        .map(String::from)
        .collect()
}

fn callbacks() -> Vec<String> {
    data("events.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .collect()
}

/// The types of the "Notification types documented:" paragraph, plus LINEDETAILS.
fn notification_types() -> Vec<String> {
    let md = data("notifications.md");
    let start = md
        .find("Notification types documented:")
        .expect("the list of notification types");
    let para = &md[start..];
    let para = &para[..para.find("\n\n").unwrap_or(para.len())];
    let para = &para[..para.find('(').unwrap_or(para.len())];
    let mut v: Vec<String> = para
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()))
        .map(String::from)
        .collect();
    v.push("LINEDETAILS".into());
    v
}

/// Test sources of a directory (with their file names), comment lines removed.
fn sources(dir: &Path, ext: &str, skip: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(ext) || skip.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        out.push((name, code));
    }
    out.sort();
    out
}

fn engine_and_interop_tests() -> Vec<(String, String)> {
    let root = repo_root();
    let mut v = sources(
        &root.join("crates/webphone-engine/tests"),
        ".rs",
        &["reference_up_to_date.rs", "conformance_audit.rs"],
    );
    let interop = sources(&root.join("tests/interop/tests"), ".rs", &[]);
    assert!(
        !interop.is_empty(),
        "tests/interop/tests not found from {}",
        root.display()
    );
    v.extend(interop);
    v
}

fn facade_tests() -> Vec<(String, String)> {
    sources(&repo_root().join("ui/test"), ".mjs", &[])
}

/// Which files name `what`, by any of the given literal forms.
fn covering(files: &[(String, String)], forms: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, code)| forms.iter().any(|f| code.contains(f.as_str())))
        .map(|(n, _)| n.clone())
        .collect()
}

fn report(kind: &str, map: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let covered = map.values().filter(|v| !v.is_empty()).count();
    eprintln!("{kind}: {covered}/{} covered", map.len());
    for (k, v) in map {
        eprintln!("  {k:<22} {}", v.join(" "));
    }
    map.iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn every_api_row_is_named_by_a_conformance_test() {
    let tests = engine_and_interop_tests();
    let facade = facade_tests();
    let rows = api_rows();
    assert_eq!(
        rows.len(),
        65,
        "the API table has 60 functions and 5 extra rows"
    );
    let mut map = BTreeMap::new();
    for name in rows {
        let files = if FACADE_ONLY.contains(&name.as_str()) {
            covering(&facade, &[format!("'{name}'"), format!(".{name}")])
        } else {
            covering(&tests, &[format!("\"{name}\""), format!("\"{name} ")])
        };
        map.insert(name, files);
    }
    let missing = report("API rows", &map);
    assert!(
        missing.is_empty(),
        "API rows without a conformance test naming them: {missing:?}"
    );
}

#[test]
fn every_notification_type_is_tested_or_documented_as_not_sent() {
    let types = notification_types();
    assert_eq!(
        types.len(),
        22,
        "21 notification types and LINEDETAILS: {types:?}"
    );
    let tests = engine_and_interop_tests();
    let mut map = BTreeMap::new();
    for t in &types {
        map.insert(t.clone(), covering(&tests, &[format!("\"{t},")]));
    }
    let missing = report("notification types", &map);
    let not_sent: Vec<&str> = NOT_SENT.iter().map(|(t, _)| *t).collect();
    let undocumented: Vec<&String> = missing
        .iter()
        .filter(|t| !not_sent.contains(&t.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "notification types with no test naming them: {undocumented:?}"
    );
    // A type listed as never sent must really have no test, and be in the docs' list.
    let choices = std::fs::read_to_string(repo_root().join("docs/behaviour-choices.md")).unwrap();
    // The bullet that starts with **Not sent**, up to the next bullet or blank line.
    let line: String = choices
        .lines()
        .skip_while(|l| !l.starts_with("- **Not sent**"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !(l.trim().is_empty() || l.starts_with("- ")))
        .map(|(_, l)| format!("{} ", l.trim()))
        .collect();
    assert!(
        !line.is_empty(),
        "a '- **Not sent**' bullet in docs/behaviour-choices.md"
    );
    for (t, why) in NOT_SENT {
        assert!(types.contains(&t.to_string()), "{t} is not a catalog type");
        assert!(
            map[*t].is_empty(),
            "{t} is listed as not sent ({why}) but {:?} test it",
            map[*t]
        );
        assert!(
            line.contains(&format!("`{t}`")),
            "{t} is not sent ({why}) but the docs' Not sent line does not say so: {line}"
        );
    }
}

#[test]
fn every_callback_is_named_by_an_engine_or_facade_test() {
    let mut files = engine_and_interop_tests();
    files.extend(facade_tests());
    let mut map = BTreeMap::new();
    for cb in callbacks() {
        let forms = [format!("\"{cb}\""), format!("'{cb}'"), format!(".{cb}(")];
        map.insert(cb, covering(&files, &forms));
    }
    assert_eq!(map.len(), 14, "events.tsv has 14 callbacks");
    let missing = report("callbacks", &map);
    assert!(missing.is_empty(), "callbacks without a test: {missing:?}");
}
