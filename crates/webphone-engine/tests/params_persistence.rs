//! Profile persistence with a real SQLite file in a temporary directory: every catalog row
//! round-trips (secrets excepted), WAL and migrations, crash safety, damaged and unusable
//! files, profiles, delsettings levels.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use webphone_engine::params::{
    is_secret, NumberRule, ParamKind, ParamStore, Registry, SettingWrite, Source,
};
use webphone_engine::profile::{DelLevel, Profile, ProfileError, DB_FILE_NAME, MIGRATIONS};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "wp-params-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A valid value for `name` that differs from its default where the type allows.
fn sample_value(name: &str, kind: &ParamKind, default: Option<&str>) -> String {
    match kind {
        ParamKind::Bool => {
            if default == Some("true") {
                "false".into()
            } else {
                "true".into()
            }
        }
        ParamKind::Number(NumberRule::OneOf(list)) => list
            .iter()
            .map(|e| e.value.to_string())
            .find(|v| Some(v.as_str()) != default)
            .unwrap_or_else(|| list[0].value.to_string()),
        ParamKind::Number(NumberRule::Range { min, max }) => {
            if default == Some(max.to_string().as_str()) {
                min.to_string()
            } else {
                max.to_string()
            }
        }
        ParamKind::Number(NumberRule::Any) => "4321".into(),
        ParamKind::String => format!("value of {name}, with ünïcode; and = , signs"),
    }
}

fn persist(store: &mut ParamStore, profile: &mut Profile) {
    let q = store.take_persist_queue();
    profile.write_settings(&q).unwrap();
}

#[test]
fn every_catalog_row_round_trips_through_the_database_except_secrets() {
    let dir = TempDir::new("roundtrip");
    let mut profile = Profile::open(dir.path(), "").unwrap();
    let mut store = ParamStore::new();
    let mut expected = Vec::new();
    for def in Registry::global().iter() {
        if def.alias_of.is_some() {
            continue; // stored under the canonical row, covered there
        }
        let v = sample_value(def.name, &def.kind, def.default.as_deref());
        store.set(def.name, &v).unwrap();
        expected.push((def.name, store.get(def.name)));
    }
    assert!(expected.len() > 270);
    persist(&mut store, &mut profile);
    profile.close().unwrap();

    let profile = Profile::open(dir.path(), "").unwrap();
    let mut reloaded = ParamStore::new();
    let refused = reloaded.load_stored(profile.load_settings().unwrap());
    assert!(refused.is_empty(), "{refused:?}");
    let mut secrets = 0;
    for (name, value) in &expected {
        if is_secret(name) || ["profile", "resetsettings"].contains(name) {
            secrets += 1;
            assert!(!reloaded.is_set(name), "{name} must not be stored");
        } else {
            assert_eq!(&reloaded.get(name), value, "{name}");
            assert_eq!(reloaded.source_of(name), Some(Source::Stored), "{name}");
        }
    }
    assert!(secrets >= 6);
}

#[test]
fn password_never_reaches_the_database_files() {
    let dir = TempDir::new("secret");
    let mut profile = Profile::open(dir.path(), "").unwrap();
    let mut store = ParamStore::new();
    store.set("username", "bob").unwrap();
    store.set("password", "Sup3rSecretPw").unwrap();
    store
        .set_from(Source::Url, "turnpassword", "TurnSecretPw")
        .unwrap();
    persist(&mut store, &mut profile);
    // even a direct write of a secret is refused by the profile itself
    let n = profile
        .write_settings(&[SettingWrite {
            name: "password".into(),
            value: Some("Sup3rSecretPw".into()),
        }])
        .unwrap();
    assert_eq!(n, 0);
    let db = Profile::db_path(dir.path(), "").unwrap();
    let dir_of_db = db.parent().unwrap();
    for entry in std::fs::read_dir(dir_of_db).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("Sup3rSecretPw"));
        assert!(!text.contains("TurnSecretPw"));
    }
    assert_eq!(
        profile.load_settings().unwrap(),
        vec![("username".to_owned(), "bob".to_owned())]
    );
}

#[test]
fn database_is_in_wal_mode_with_the_migrations_recorded() {
    let dir = TempDir::new("wal");
    let profile = Profile::open(dir.path(), "myprofile1").unwrap();
    assert_eq!(
        profile.path(),
        dir.path().join("myprofile1").join(DB_FILE_NAME)
    );
    assert_eq!(
        profile.schema_version().unwrap(),
        MIGRATIONS.last().unwrap().version
    );
    let conn = rusqlite::Connection::open(profile.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: Vec<u32> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, (1..=versions.len() as u32).collect::<Vec<_>>());
    drop(profile);
    // reopening does not re-run migrations
    let again = Profile::open(dir.path(), "myprofile1").unwrap();
    assert_eq!(again.schema_version().unwrap(), versions.len() as u32);
}

#[test]
fn stored_values_sit_below_static_config_on_the_next_start() {
    let dir = TempDir::new("nextstart");
    {
        let mut profile = Profile::open(dir.path(), "").unwrap();
        let mut s = ParamStore::new();
        s.set("displayname", "User Set").unwrap();
        s.set("loglevel", "4").unwrap();
        persist(&mut s, &mut profile);
    }
    let profile = Profile::open(dir.path(), "").unwrap();
    let mut s = ParamStore::new();
    s.load_stored(profile.load_settings().unwrap());
    s.set_from(Source::Static, "displayname", "From Page")
        .unwrap();
    s.set_from(Source::Static, "ucfg_loglevel", "1").unwrap();
    assert_eq!(s.get("displayname"), "From Page");
    assert_eq!(s.get("loglevel"), "4", "ucfg_ lets the stored value win");
}

#[test]
fn def_and_null_reach_the_database() {
    let dir = TempDir::new("defnull");
    let mut profile = Profile::open(dir.path(), "").unwrap();
    let mut s = ParamStore::new();
    s.set("displayname", "x").unwrap();
    s.set("proxyaddress", "wrong.proxy").unwrap();
    persist(&mut s, &mut profile);
    s.set("displayname", "DEF").unwrap();
    s.set("proxyaddress", "NULL").unwrap();
    persist(&mut s, &mut profile);
    assert_eq!(
        profile.load_settings().unwrap(),
        vec![("proxyaddress".to_owned(), String::new())]
    );
}

#[test]
fn profiles_keep_separate_databases() {
    let dir = TempDir::new("profiles");
    let mut a = Profile::open(dir.path(), "domain.com_a").unwrap();
    let mut b = Profile::open(dir.path(), "../b").unwrap();
    assert!(b.path().starts_with(dir.path()));
    a.write_settings(&[SettingWrite {
        name: "username".into(),
        value: Some("alice".into()),
    }])
    .unwrap();
    b.write_settings(&[SettingWrite {
        name: "username".into(),
        value: Some("bob".into()),
    }])
    .unwrap();
    assert_eq!(a.load_settings().unwrap()[0].1, "alice");
    assert_eq!(b.load_settings().unwrap()[0].1, "bob");
    assert!(Profile::open(dir.path(), "")
        .unwrap()
        .load_settings()
        .unwrap()
        .is_empty());
}

#[test]
fn delsettings_levels_erase_settings() {
    let dir = TempDir::new("del");
    let mut p = Profile::open(dir.path(), "").unwrap();
    let w = [SettingWrite {
        name: "username".into(),
        value: Some("bob".into()),
    }];
    p.write_settings(&w).unwrap();
    p.delete_data(DelLevel::Settings).unwrap();
    assert!(p.load_settings().unwrap().is_empty());
    p.write_settings(&w).unwrap();
    p.delete_data(DelLevel::Everything).unwrap();
    assert!(p.load_settings().unwrap().is_empty());
    p.write_settings(&w).unwrap();
    p.delete_settings().unwrap();
    assert!(p.load_settings().unwrap().is_empty());
    assert_eq!(
        p.schema_version().unwrap(),
        MIGRATIONS.len() as u32,
        "schema stays"
    );
}

/// Env var that turns [`crash_child_writes_then_aborts`] into the crashing child.
const CRASH_ENV: &str = "WEBPHONE_PARAMS_CRASH_CHILD_DIR";

#[test]
fn crash_child_writes_then_aborts() {
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return; // only meaningful as the child of the crash test
    };
    let mut p = Profile::open(Path::new(&dir), "").unwrap();
    p.write_settings(&[SettingWrite {
        name: "displayname".into(),
        value: Some("written before the crash".into()),
    }])
    .unwrap();
    std::process::abort();
}

#[test]
fn value_written_before_a_crash_is_there_after_reopening() {
    let dir = TempDir::new("crash");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writes_then_aborts", "--nocapture"])
        .env(CRASH_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must die without closing");
    let p = Profile::open(dir.path(), "").unwrap();
    assert_eq!(
        p.load_settings().unwrap(),
        vec![(
            "displayname".to_owned(),
            "written before the crash".to_owned()
        )]
    );
}

#[test]
fn value_survives_a_dropped_unclosed_handle() {
    let dir = TempDir::new("forget");
    let mut p = Profile::open(dir.path(), "").unwrap();
    p.write_settings(&[SettingWrite {
        name: "loglevel".into(),
        value: Some("5".into()),
    }])
    .unwrap();
    std::mem::forget(p); // no close, no checkpoint
    let again = Profile::open(dir.path(), "").unwrap();
    assert_eq!(
        again.load_settings().unwrap(),
        vec![("loglevel".to_owned(), "5".to_owned())]
    );
}

#[test]
fn corrupted_file_gives_a_clear_error_and_the_store_keeps_defaults() {
    let dir = TempDir::new("corrupt");
    let db = Profile::db_path(dir.path(), "").unwrap();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(
        &db,
        b"this is not an SQLite database, just some bytes".repeat(100),
    )
    .unwrap();
    let err = Profile::open(dir.path(), "").unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    assert!(err.to_string().contains(&db.display().to_string()), "{err}");
    // the phone goes on with defaults
    let mut s = ParamStore::new();
    assert_eq!(s.get("loglevel"), ParamStore::new().get("loglevel"));
    s.set("loglevel", "3").unwrap();
    assert_eq!(s.get("loglevel"), "3");

    // recovery moves the damaged file aside and starts a new database
    let (mut p, damage) = Profile::open_or_recover(dir.path(), "").unwrap();
    assert!(damage.unwrap().is_corrupt());
    persist(&mut s, &mut p);
    assert_eq!(p.load_settings().unwrap().len(), 1);
    let moved = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(moved);
}

#[test]
fn unusable_locations_give_clear_errors_not_panics() {
    let dir = TempDir::new("unusable");
    // work dir is a regular file: the profile directory cannot be created
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Profile::open(&file, "").unwrap_err();
    assert!(matches!(err, ProfileError::CreateDir { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    // the database path is a directory
    let db = Profile::db_path(dir.path(), "p").unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let err = Profile::open(dir.path(), "p").unwrap_err();
    assert!(matches!(err, ProfileError::Open { .. }), "{err}");
    assert!(Profile::open_or_recover(dir.path(), "p").is_err());
}

#[test]
fn newer_schema_is_refused() {
    let dir = TempDir::new("toonew");
    let p = Profile::open(dir.path(), "").unwrap();
    let path = p.path().to_owned();
    drop(p);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Profile::open(dir.path(), "").unwrap_err();
    assert!(
        matches!(err, ProfileError::TooNew { found: 999, .. }),
        "{err}"
    );
}
