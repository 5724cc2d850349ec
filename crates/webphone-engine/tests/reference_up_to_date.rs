//! `docs/reference.md` is generated: this test calls every function of the API table on a
//! real engine, renders the page and compares it with the committed one. Regenerate with
//! `UPDATE_REFERENCE=1 cargo test -p webphone-engine --test reference_up_to_date`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use webphone_engine::params::Registry;
use webphone_engine::reference::{self, Observed};
use webphone_engine::{Phone, PhoneOptions};

/// Arguments each function is called with on an idle engine (valid forms, so the outcome
/// shows what the function does, not an argument error). Deterministic on every machine.
fn sample_args(name: &str) -> Vec<&'static str> {
    match name {
        "setparameter" => vec!["loglevel", "5"],
        "getparameter" => vec!["loglevel"],
        "registerex" => vec!["127.0.0.1:9,1001,secret,300,,,"],
        "call" | "videocall" => vec!["sip:nobody@127.0.0.1:9"],
        "screenshare" => vec!["1002", ""],
        "forward" | "transfer" => vec!["1003"],
        "hold" => vec!["true"],
        "mute" | "mutevideo" => vec!["true", "0"],
        "conference" => vec!["", "true"],
        "dtmf" => vec!["12#"],
        "sendchat" => vec!["1002", "hello"],
        "sendsms" => vec!["+15551234567", "hello", ""],
        "voicerecord" => vec!["true", ""],
        "setvideodisplaysize" => vec!["1", "320", "240"],
        // Camera: the device lists of the machine would make the page machine-dependent.
        "getdevicelist" => vec!["3"],
        "getdevice" => vec!["0"],
        "setdevice" => vec!["1", "null", "0"],
        "getvolume" => vec!["0"],
        "setvolume" => vec!["0", "50"],
        "setsipheader" => vec!["X-Test: 1"],
        "getsipheader" => vec!["Contact"],
        "getsipmessage" => vec!["0", "0"],
        "getlinedetails" | "setline" | "linetocallid" => vec!["1"],
        "callidtoline" => vec!["no-such-call-id"],
        "checkblf" | "checkpresence" => vec!["1002"],
        "setpresencestatus" => vec!["Online"],
        "listcontacts" => vec!["true"],
        "addcontact" => vec!["Ann", "1002", "", "", "", ""],
        "getcontact" | "delcontact" => vec!["Ann", ""],
        "delsettings" => vec!["1"],
        "jvoip" => vec!["API_Call", "[]"],
        _ => vec![],
    }
}

async fn observe(name: &str) -> Observed {
    let phone = Phone::try_new(PhoneOptions {
        params: vec![
            ("username".into(), "ref".into()),
            ("audiodevicein".into(), "null".into()),
            ("audiodeviceout".into(), "null".into()),
        ],
        work_dir: None,
    })
    .unwrap();
    phone.api("start", vec![]).await.unwrap();
    let args: Vec<String> = sample_args(name).into_iter().map(String::from).collect();
    let outcome = phone.api(name, args.clone()).await;
    let _ = phone.api("stop", vec![]).await;
    Observed { args, outcome }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_matches_a_fresh_render() {
    let mut observed = BTreeMap::new();
    for row in reference::api_rows().iter().filter(|r| r.is_function()) {
        observed.insert(row.name.to_string(), observe(row.name).await);
    }
    let fresh = reference::render(&observed);
    let path = repo_root().join("docs/reference.md");
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_string(),
                |i| {
                    format!(
                        "line {}:\n  committed: {}\n  fresh:     {}",
                        i + 1,
                        committed.lines().nth(i).unwrap_or(""),
                        fresh.lines().nth(i).unwrap_or("")
                    )
                },
            );
        panic!(
            "docs/reference.md is out of date ({first}).\nRegenerate it with:\n  \
             UPDATE_REFERENCE=1 cargo test -p webphone-engine --test reference_up_to_date"
        );
    }
}

/// Every catalog parameter named in the engine's call-handling sources is in
/// `reference::ENGINE_READS`, and the list names nothing the sources never mention.
#[test]
fn engine_reads_table_matches_the_sources() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![
        src.join("core.rs"),
        src.join("dialing.rs"),
        src.join("echo.rs"),
        src.join("lines.rs"),
        src.join("notify.rs"),
        src.join("phone.rs"),
        src.join("integrations/mod.rs"),
    ];
    for e in std::fs::read_dir(src.join("core")).unwrap() {
        files.push(e.unwrap().path());
    }
    let functions: BTreeSet<&str> = reference::api_rows().iter().map(|r| r.name).collect();
    let reg = Registry::global();
    let mut mentioned = BTreeSet::new();
    // The parameter store itself names many parameters (secrets, session-only ones): there
    // only values it reads through its getters or `resolve` count (`extraoption`).
    let getters_only = src.join("params/store.rs");
    files.push(getters_only.clone());
    for f in files {
        let only_getters = f == getters_only;
        let text = std::fs::read_to_string(&f).unwrap();
        // Only code outside unit-test modules.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let parts: Vec<&str> = code.split('"').collect();
        for (i, lit) in parts.iter().enumerate().skip(1).step_by(2) {
            let getter = ["get(", "get_i64(", "get_bool(", "get_str("]
                .iter()
                .any(|g| parts[i - 1].ends_with(g))
                // the store reads its own layers directly
                || (only_getters && parts[i - 1].ends_with("resolve("));
            // "register" is a function and a parameter: count it only where it is read.
            if (functions.contains(lit) || only_getters) && !getter {
                continue;
            }
            if let Some(def) = reg.row(lit) {
                if def.name == *lit {
                    mentioned.insert(def.alias_of.unwrap_or(def.name).to_string());
                }
            }
        }
    }
    let table: BTreeSet<String> = reference::ENGINE_READS
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The front doors: the CLI (and its local service), the desktop app, the JavaScript
    // facade and the softphone skin's scripts.
    let mut front: Vec<PathBuf> = [
        "../../webphone-cli/src/main.rs",
        "../../webphone-cli/src/serve/mod.rs",
        "../../../src-tauri/src/desktop.rs",
        "../../../ui/webphone_api.js",
    ]
    .iter()
    .map(|f| src.join(f))
    .collect();
    let skin = src.join("../../../skins/softphone/js/softphone");
    for e in std::fs::read_dir(&skin).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "js") {
            front.push(p);
        }
    }
    let cli = front
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    for name in reference::FRONT_DOOR_READS {
        assert!(
            cli.contains(&format!("\"{name}\"")) || cli.contains(&format!("'{name}'")),
            "{name} is no longer read by webphone-cli, the desktop app, ui/webphone_api.js or the skin"
        );
    }
    for (extra, _) in reference::ENGINE_EXTRAS {
        assert!(reg.lookup(extra).is_none(), "{extra} is in the catalog now");
        assert!(
            std::fs::read_to_string(src.join("core.rs"))
                .unwrap()
                .contains(&format!("\"{extra}\"")),
            "{extra} is no longer read"
        );
    }
    // A parameter documented as having no effect by design must not be read anywhere.
    for (name, _) in reference::NO_EFFECT_BY_DESIGN {
        assert!(reg.lookup(name).is_some(), "{name} is not in the catalog");
        assert!(
            !mentioned.contains(*name) && !reference::FRONT_DOOR_READS.contains(name),
            "{name} is read now: take it out of NO_EFFECT_BY_DESIGN"
        );
    }
    let missing: Vec<_> = mentioned.difference(&table).collect();
    let stale: Vec<_> = table.difference(&mentioned).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "reference::ENGINE_READS is out of step with src/: read but not listed {missing:?}, \
         listed but not read {stale:?}"
    );
}
