//! Profile persistence: one SQLite database per `profile`.
//!
//! Layout: `<work_dir>/<profile dir>/webphone.sqlite`, where the profile directory is the
//! `profile` parameter made safe for file names ([`Profile::dir_name`]; `default` when the
//! parameter is empty). The database runs in WAL mode with `synchronous=FULL`; every write is
//! one transaction, so a crash leaves either the old or the new values, never a mix. Schema
//! changes are numbered migrations ([`MIGRATIONS`], recorded in `schema_migrations`), so the
//! contacts, call history and chat tables can be added later without touching existing data.
//!
//! Secrets are never written: [`Profile::write_settings`] skips every parameter for which
//! [`is_persistable`] is false (passwords, `md5`, TURN credentials, account lists, ...), and
//! [`Profile::load_settings`] ignores such rows should a database contain them. The desktop app
//! keeps the password in the OS keyring; the CLI takes it from `-p`, the environment or its
//! configuration file each time.
//!
//! The SQL here is synchronous and small (a handful of rows per write); the engine may call it
//! from its task or move it to a blocking thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use crate::params::{is_persistable, SettingWrite};

/// File name of the profile database inside the profile directory.
pub const DB_FILE_NAME: &str = "webphone.sqlite";

/// Directory name used when the `profile` parameter is empty.
pub const DEFAULT_PROFILE: &str = "default";

/// Longest accepted profile directory name (after escaping), in bytes.
pub const MAX_DIR_NAME_LEN: usize = 120;

/// How long a write waits for another process holding the database (desktop app and CLI on
/// the same profile).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing, starting at 1.
    pub version: u32,
    /// Short description, recorded in `schema_migrations`.
    pub name: &'static str,
    /// SQL run in the migration's transaction.
    pub sql: &'static str,
    /// Tables holding user data that this migration creates, with the `delsettings` level that
    /// erases them (1 = settings, 2 = everything).
    pub data_tables: &'static [(&'static str, DelLevel)],
}

/// The schema, oldest first. Append only: never edit a released migration.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "settings",
        sql: include_str!("../../data/migrations/0001_settings.sql"),
        data_tables: &[("settings", DelLevel::Settings)],
    },
    Migration {
        version: 2,
        name: "contacts and call history",
        sql: include_str!("../../data/migrations/0002_contacts_history.sql"),
        data_tables: &[
            ("contacts", DelLevel::Everything),
            ("call_history", DelLevel::Everything),
        ],
    },
    Migration {
        version: 3,
        name: "import state",
        sql: include_str!("../../data/migrations/0003_sync_state.sql"),
        // Forgotten with the contacts, so that `delsettings(2)` imports them again.
        data_tables: &[("sync_state", DelLevel::Everything)],
    },
    Migration {
        version: 4,
        name: "chat messages",
        sql: include_str!("../../data/migrations/0004_chat_messages.sql"),
        data_tables: &[("chat_messages", DelLevel::Everything)],
    },
];

/// The `level` argument of `delsettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DelLevel {
    /// 1: the stored settings only.
    Settings = 1,
    /// 2: everything: settings, contacts, call history, messages.
    Everything = 2,
}

impl DelLevel {
    /// Parses the API argument (`"1"`, `"2"`, surrounding whitespace ignored).
    pub fn parse(arg: &str) -> Option<DelLevel> {
        match arg.trim() {
            "1" => Some(DelLevel::Settings),
            "2" => Some(DelLevel::Everything),
            _ => None,
        }
    }
}

/// Why the profile database could not be used. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid profile name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("cannot create profile directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open profile database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("profile database {} is damaged or not a database: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "profile database {} has schema version {found}, newer than this program knows ({supported})",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("profile database {}: {op} failed: {source}", path.display())]
    Sql {
        path: PathBuf,
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot move damaged profile database {} aside: {source}", path.display())]
    MoveAside {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ProfileError {
    /// True for a file that is not a (healthy) SQLite database.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, ProfileError::Corrupt { .. })
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

mod chats;
mod contacts;
pub mod vcard;
pub use chats::{ChatEntry, CHAT_KEEP};
pub use contacts::{
    parse_contact_list, parse_defcontacts, Contact, ContactList, HistoryEntry, SyncState,
};

/// An open profile database.
#[derive(Debug)]
pub struct Profile {
    conn: Connection,
    path: PathBuf,
    /// Created by this open (no schema before): the profile's first run.
    created: bool,
}

impl Profile {
    /// The directory name for `profile`: `default` when empty (after trimming); otherwise the
    /// name with every byte outside `A-Z a-z 0-9 - _ .` written as `%XX`, a leading `.` and the
    /// first letter of Windows device names (`CON`, `NUL`, `COM1`, ...) escaped too, so that
    /// distinct profiles never share a directory and no name escapes the work directory.
    pub fn dir_name(profile: &str) -> Result<String, ProfileError> {
        let profile = profile.trim();
        if profile.is_empty() {
            return Ok(DEFAULT_PROFILE.to_owned());
        }
        let stem = profile.split('.').next().unwrap_or("").to_ascii_uppercase();
        let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit());
        let mut out = String::with_capacity(profile.len());
        for (i, b) in profile.bytes().enumerate() {
            let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
            if plain && !(i == 0 && reserved) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if out.len() > MAX_DIR_NAME_LEN {
            return Err(ProfileError::InvalidName {
                name: profile.to_owned(),
                reason: format!("longer than {MAX_DIR_NAME_LEN} bytes once escaped"),
            });
        }
        Ok(out)
    }

    /// `<work_dir>/<dir_name(profile)>/webphone.sqlite`.
    pub fn db_path(work_dir: &Path, profile: &str) -> Result<PathBuf, ProfileError> {
        Ok(work_dir.join(Self::dir_name(profile)?).join(DB_FILE_NAME))
    }

    /// Opens (creating directory and file when needed) and migrates the database of `profile`
    /// under `work_dir`.
    pub fn open(work_dir: &Path, profile: &str) -> Result<Profile, ProfileError> {
        let path = Self::db_path(work_dir, profile)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ProfileError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        Self::open_path(&path)
    }

    /// Like [`open`](Self::open), but a damaged database file is moved aside (renamed to
    /// `webphone.sqlite.corrupt-<unix time>`, with its `-wal`/`-shm` files) and a new one is
    /// created, so the phone keeps working and the old file can still be inspected. The
    /// second value reports the damage (log it). Other errors are returned as they are.
    pub fn open_or_recover(
        work_dir: &Path,
        profile: &str,
    ) -> Result<(Profile, Option<ProfileError>), ProfileError> {
        match Self::open(work_dir, profile) {
            Ok(p) => Ok((p, None)),
            Err(e) if e.is_corrupt() => {
                let path = Self::db_path(work_dir, profile)?;
                let suffix = format!("corrupt-{}", unix_now());
                for ext in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{ext}", path.display()));
                    if !from.exists() {
                        continue;
                    }
                    let to = PathBuf::from(format!("{}{ext}.{suffix}", path.display()));
                    std::fs::rename(&from, &to).map_err(|source| ProfileError::MoveAside {
                        path: from.clone(),
                        source,
                    })?;
                }
                tracing::warn!("{e}; moved aside with suffix .{suffix}, starting a new database");
                let p = Self::open_path(&path)?;
                Ok((p, Some(e)))
            }
            Err(e) => Err(e),
        }
    }

    /// Opens and migrates the database file at `path` (its directory must exist).
    pub fn open_path(path: &Path) -> Result<Profile, ProfileError> {
        let path = path.to_owned();
        let open_err = |source: rusqlite::Error| {
            if is_corruption(&source) {
                ProfileError::Corrupt {
                    path: path.clone(),
                    source,
                }
            } else {
                ProfileError::Open {
                    path: path.clone(),
                    source,
                }
            }
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // The first statement that reads the file: a non-database fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "profile database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(open_err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(open_err)?;
        if check != "ok" {
            return Err(ProfileError::Corrupt {
                path,
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(check),
                ),
            });
        }
        let mut profile = Profile {
            conn,
            path,
            created: false,
        };
        profile.migrate()?;
        Ok(profile)
    }

    fn sql_err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> ProfileError + '_ {
        move |source| {
            if is_corruption(&source) {
                ProfileError::Corrupt {
                    path: self.path.clone(),
                    source,
                }
            } else {
                ProfileError::Sql {
                    path: self.path.clone(),
                    op,
                    source,
                }
            }
        }
    }

    /// Applies the migrations the database does not have yet, each in its own transaction.
    fn migrate(&mut self) -> Result<(), ProfileError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    INTEGER PRIMARY KEY NOT NULL,
                     name       TEXT NOT NULL,
                     applied_at INTEGER NOT NULL
                 )",
            )
            .map_err(self.sql_err("creating schema_migrations"))?;
        let current = self.schema_version()?;
        self.created = current == 0;
        let supported = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > supported {
            return Err(ProfileError::TooNew {
                path: self.path.clone(),
                found: current,
                supported,
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            let path = self.path.clone();
            let err = |source| ProfileError::Sql {
                path: path.clone(),
                op: "migration",
                source,
            };
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            tx.execute_batch(m.sql).map_err(err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, unix_now()],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            tracing::info!(path = %self.path.display(), version = m.version, "profile database migrated");
        }
        Ok(())
    }

    /// Whether this open created the database: the first run of this profile (a damaged
    /// database started afresh counts too).
    pub fn is_new(&self) -> bool {
        self.created
    }

    /// Opened on SQLite's `:memory:`: nothing of it is written to disk.
    pub fn is_in_memory(&self) -> bool {
        self.path.as_os_str() == ":memory:"
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows inserted, changed or deleted through this handle since it was opened: a number
    /// that moves whenever the stored data may have changed.
    pub fn change_count(&self) -> u64 {
        self.conn.total_changes()
    }

    /// Highest applied migration (0 for a new file).
    pub fn schema_version(&self) -> Result<u32, ProfileError> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get::<_, Option<u32>>(0)
            })
            .optional()
            .map(|v| v.flatten().unwrap_or(0))
            .map_err(self.sql_err("reading schema version"))
    }

    /// Every stored setting as (name, value), ordered by lower-case name. Rows of parameters
    /// that must not be stored (secrets) are skipped with a warning.
    pub fn load_settings(&self) -> Result<Vec<(String, String)>, ProfileError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM settings ORDER BY key")
            .map_err(self.sql_err("reading settings"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.sql_err("reading settings"))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, value) = row.map_err(self.sql_err("reading settings"))?;
            if is_persistable(&name) {
                out.push((name, value));
            } else {
                tracing::warn!(
                    name,
                    "ignoring a stored value of a parameter that is never stored"
                );
            }
        }
        Ok(out)
    }

    /// Writes `writes` in one transaction (all or nothing): `Some` values are inserted or
    /// replaced, `None` deletes the row. Parameters that must not be stored ([`is_persistable`]
    /// false: secrets) are skipped. Returns the number of rows written or deleted.
    pub fn write_settings(&mut self, writes: &[SettingWrite]) -> Result<usize, ProfileError> {
        let path = self.path.clone();
        let err = |source| ProfileError::Sql {
            path: path.clone(),
            op: "writing settings",
            source,
        };
        let now = unix_now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut count = 0;
        for w in writes {
            if !is_persistable(&w.name) {
                tracing::warn!(name = %w.name, "not storing a secret parameter");
                continue;
            }
            let key = w.name.trim().to_ascii_lowercase();
            count += match &w.value {
                Some(v) => tx.execute(
                    "INSERT INTO settings (key, name, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(key) DO UPDATE SET name = excluded.name,
                         value = excluded.value, updated_at = excluded.updated_at",
                    params![key, w.name.trim(), v, now],
                ),
                None => tx.execute("DELETE FROM settings WHERE key = ?1", params![key]),
            }
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(count)
    }

    /// Erases every stored setting (`resetsettings=true`, `delsettings(1)`).
    pub fn delete_settings(&mut self) -> Result<(), ProfileError> {
        self.delete_data(DelLevel::Settings)
    }

    /// Erases the data of `level` in one transaction: [`DelLevel::Settings`] the settings,
    /// [`DelLevel::Everything`] every data table of every migration (settings, and contacts,
    /// history and messages once they exist). The schema stays.
    pub fn delete_data(&mut self, level: DelLevel) -> Result<(), ProfileError> {
        let path = self.path.clone();
        let err = |source| ProfileError::Sql {
            path: path.clone(),
            op: "deleting data",
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for (table, table_level) in MIGRATIONS.iter().flat_map(|m| m.data_tables.iter()) {
            if *table_level <= level {
                // table names come from the constant MIGRATIONS table, not from input
                tx.execute(&format!("DELETE FROM \"{table}\""), [])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        tracing::info!(path = %self.path.display(), level = level as u8, "profile data deleted");
        Ok(())
    }

    /// Closes the database (checkpointing the WAL). Dropping a `Profile` closes it too; this
    /// reports errors.
    pub fn close(self) -> Result<(), ProfileError> {
        let path = self.path.clone();
        self.conn.close().map_err(|(_, source)| ProfileError::Sql {
            path,
            op: "closing",
            source,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_profile_name_maps_to_default_dir() {
        assert_eq!(Profile::dir_name("").ok().as_deref(), Some("default"));
        assert_eq!(Profile::dir_name("  ").ok().as_deref(), Some("default"));
    }

    #[test]
    fn profile_names_are_escaped_into_one_safe_component() {
        let cases = [
            ("myprofile1", "myprofile1"),
            ("domain.com_my-profile", "domain.com_my-profile"),
            ("../etc", "%2E.%2Fetc"),
            ("a/b\\c", "a%2Fb%5Cc"),
            (".hidden", "%2Ehidden"),
            ("CON", "%43ON"),
            ("com1.txt", "%63om1.txt"),
            ("console", "console"),
            ("été", "%C3%A9t%C3%A9"),
            ("a b", "a%20b"),
        ];
        for (name, dir) in cases {
            assert_eq!(Profile::dir_name(name).ok().as_deref(), Some(dir), "{name}");
        }
    }

    #[test]
    fn overlong_profile_name_is_refused() {
        let err = Profile::dir_name(&"é".repeat(30));
        assert!(matches!(err, Err(ProfileError::InvalidName { .. })));
    }

    #[test]
    fn delsettings_level_parses_1_and_2_only() {
        assert_eq!(DelLevel::parse(" 1"), Some(DelLevel::Settings));
        assert_eq!(DelLevel::parse("2"), Some(DelLevel::Everything));
        assert_eq!(DelLevel::parse("3"), None);
        assert_eq!(DelLevel::parse(""), None);
    }

    #[test]
    fn first_open_of_a_profile_is_its_first_run_later_opens_are_not() {
        let dir = std::env::temp_dir().join(format!("webphone-profile-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let first = Profile::open(&dir, "alice").expect("create");
        assert!(first.is_new());
        first.close().expect("close");
        let again = Profile::open(&dir, "alice").expect("reopen");
        assert!(!again.is_new());
        again.close().expect("close");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }
}
