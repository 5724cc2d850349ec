-- Profile database, migration 2: contacts and the call history.
-- Contacts: `numbers` holds one or more numbers / SIP URIs separated by '|' (the API's list
-- form); names are unique ignoring case.
CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    numbers    TEXT NOT NULL DEFAULT '',
    favorite   INTEGER NOT NULL DEFAULT 0,
    email      TEXT NOT NULL DEFAULT '',
    address    TEXT NOT NULL DEFAULT '',
    notes      TEXT NOT NULL DEFAULT '',
    website    TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);
-- One row per ended call (what the CDR says), newest last.
CREATE TABLE call_history (
    id             INTEGER PRIMARY KEY,
    ended_at       INTEGER NOT NULL,
    line           INTEGER NOT NULL,
    direction      INTEGER NOT NULL,
    peer           TEXT NOT NULL,
    peer_display   TEXT NOT NULL,
    caller         TEXT NOT NULL,
    called         TEXT NOT NULL,
    connect_ms     INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    disc_party     INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    callid         TEXT NOT NULL
);
CREATE INDEX call_history_ended ON call_history (ended_at);
