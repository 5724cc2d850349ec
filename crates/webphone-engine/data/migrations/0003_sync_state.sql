-- Profile database, migration 3: what was last loaded from where, for the one-shot imports
-- (`serveraddressbook_url` with `serveraddressbook_sync`, `defcontacts`).
-- `source` is the URL template or parameter value the import came from (a new one imports
-- again); `outcome` is `requested`, `received`, `empty` or `failed`.
CREATE TABLE sync_state (
    name       TEXT PRIMARY KEY NOT NULL,
    source     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
