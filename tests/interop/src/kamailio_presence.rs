//! Kamailio as a presence server too: the `WITH_PRESENCE` variant of
//! `tests/interop/peers/kamailio.cfg` (presence, presence_xml, presence_dialoginfo, pua,
//! pua_dialoginfo, dialog; db_text tables in the test directory), and the check that the
//! modules are installed (Debian: `kamailio-presence-modules`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{util, Kamailio, KamailioOpts};

impl Kamailio {
    /// Like [`Kamailio::start`], and also the presence server (`-A WITH_PRESENCE` of
    /// `kamailio.cfg`): PUBLISH/SUBSCRIBE/NOTIFY for the events `presence` (RFC 3856, PIDF
    /// RFC 3863, PUBLISH RFC 3903) and `dialog` (RFC 4235), with every call through the
    /// proxy published as dialog state of caller and callee by `pua_dialoginfo`. Its tables
    /// are db_text files under `dir/kamailio/db`, copied empty from the package's
    /// [`DBTEXT_SCHEMA_DIR`].
    /// Needs [`PRESENCE_MODULES`]: check with [`require_presence_modules`] first.
    /// `opts.max_expires` also caps the expiry of subscriptions and publications.
    pub fn start_presence(dir: &Path, opts: KamailioOpts) -> Kamailio {
        Kamailio::start_presence_with(dir, opts, false)
    }

    /// [`Kamailio::start_presence`], also listening on TLS, WS and WSS like
    /// [`Kamailio::start_secure`].
    pub fn start_presence_secure(dir: &Path, opts: KamailioOpts) -> Kamailio {
        Kamailio::start_presence_with(dir, opts, true)
    }

    fn start_presence_with(dir: &Path, opts: KamailioOpts, secure: bool) -> Kamailio {
        let db = dir.join("kamailio").join("db");
        std::fs::create_dir_all(&db).expect("create kamailio db dir");
        for table in PRESENCE_TABLES {
            let from = Path::new(DBTEXT_SCHEMA_DIR).join(table);
            std::fs::copy(&from, db.join(table))
                .unwrap_or_else(|e| panic!("copy db_text table {}: {e}", from.display()));
        }
        let db_url = format!("DB_URL=\"text://{}\"", db.display());
        let defines = ["WITH_PRESENCE", db_url.as_str()];
        let secure = if secure {
            crate::kamailio::Secure::Fresh
        } else {
            crate::kamailio::Secure::Off
        };
        Kamailio::start_full(dir, opts, secure, &defines, None, None)
    }
}

/// Modules of the presence variant ([`Kamailio::start_presence`]): `db_text` and `dialog`
/// come with Debian's `kamailio`, the others with `kamailio-presence-modules`.
pub const PRESENCE_MODULES: &[&str] = &[
    "db_text",
    "dialog",
    "presence",
    "presence_xml",
    "presence_dialoginfo",
    "pua",
    "pua_dialoginfo",
];

/// The empty db_text tables (with the table versions the installed modules expect) that
/// Debian's `kamailio` package ships.
pub const DBTEXT_SCHEMA_DIR: &str = "/usr/share/kamailio/dbtext/kamailio";

/// The db_text tables the presence variant uses (`version` first: it is checked on start).
const PRESENCE_TABLES: &[&str] = &[
    "version",
    "presentity",
    "active_watchers",
    "watchers",
    "xcap",
    "pua",
];

/// What the presence variant lacks: modules not found in Kamailio's module directories
/// (`kamailio -I`: "Default paths to modules"), or the db_text schema. Empty when all is
/// there (or when kamailio itself is missing: [`crate::require_tools`] reports that).
pub fn missing_presence_parts() -> Vec<String> {
    let Some(kamailio) = util::which(crate::KAMAILIO) else {
        return Vec::new();
    };
    let info = Command::new(kamailio)
        .arg("-I")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let dirs: Vec<PathBuf> = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Default paths to modules:"))
        .map(|v| v.split(':').map(|d| PathBuf::from(d.trim())).collect())
        .unwrap_or_default();
    let mut missing: Vec<String> = PRESENCE_MODULES
        .iter()
        .filter(|m| !dirs.iter().any(|d| d.join(format!("{m}.so")).is_file()))
        .map(|m| format!("{m}.so"))
        .collect();
    let schema = Path::new(DBTEXT_SCHEMA_DIR);
    missing.extend(
        PRESENCE_TABLES
            .iter()
            .filter(|t| !schema.join(t).is_file())
            .map(|t| format!("{DBTEXT_SCHEMA_DIR}/{t}")),
    );
    missing
}

/// True when [`Kamailio::start_presence`] can run. Otherwise prints a loud `SKIP:` line
/// and returns false, or panics when `CI=true` (like [`crate::require_tools`]).
pub fn require_presence_modules(test: &str) -> bool {
    let missing = missing_presence_parts();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: Kamailio lacks {} (Debian: kamailio-presence-modules; run scripts/setup-system.sh)",
        missing.join(", ")
    );
    if crate::is_ci() {
        panic!("CI=true and a peer is missing: {msg}");
    }
    eprintln!("SKIP: {msg}");
    false
}
