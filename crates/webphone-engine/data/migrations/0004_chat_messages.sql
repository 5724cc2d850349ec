-- Profile database, migration 4: the conversations (SIP MESSAGE chats and SMS sent as
-- MESSAGE), one row per text, oldest first. `direction` is `in` or `out`; `status` is the
-- CHATREPORT code of a text we sent (1 sending, 2 sent, 3 failed) and 0 for one received.
CREATE TABLE chat_messages (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    peer      TEXT NOT NULL,
    direction TEXT NOT NULL,
    body      TEXT NOT NULL,
    status    INTEGER NOT NULL
);
CREATE INDEX chat_messages_peer ON chat_messages (peer, id);
