-- Profile database, migration 1: parameter values persisted between sessions.
-- `key` is the lower-case canonical parameter name (custom keys lower-cased), `name` the
-- spelling shown to users. Secret parameters (password, md5, ...) are never written here.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
