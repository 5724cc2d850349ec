//! The conversations in the profile database (migration 4): every chat text sent or
//! received, with the delivery state of the ones sent.

use rusqlite::params;

use super::{unix_now, Profile, ProfileError};

/// Chat texts kept per profile; older ones are dropped as new ones arrive.
pub const CHAT_KEEP: usize = 10_000;

/// Bytes of one text kept in the history (the whole text is still shown and passed to the
/// callbacks when it arrives): a peer can send texts of up to 64 KiB, and 10,000 of those
/// would make the database (or, without a profile, memory) grow by 640 MiB. A longer text
/// is cut at a character boundary and ends with "…".
pub const CHAT_BODY_KEEP: usize = 4096;

/// `body` cut to at most [`CHAT_BODY_KEEP`] bytes (ellipsis included).
fn kept_body(body: &str) -> std::borrow::Cow<'_, str> {
    if body.len() <= CHAT_BODY_KEEP {
        return body.into();
    }
    let mut end = CHAT_BODY_KEEP - '…'.len_utf8();
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end]).into()
}

/// One chat text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatEntry {
    /// Row id (0 until stored).
    pub id: i64,
    /// Unix time in seconds.
    pub at: i64,
    /// The peer's user name or number.
    pub peer: String,
    /// `true`: received from the peer; `false`: sent by us.
    pub incoming: bool,
    pub body: String,
    /// CHATREPORT code of a text we sent (1 sending, 2 sent, 3 failed); 0 when received.
    pub status: u8,
}

impl Profile {
    /// Stores one chat text (one transaction, then the oldest beyond [`CHAT_KEEP`] are
    /// forgotten); returns its row id, for [`Profile::set_chat_status`].
    pub fn add_chat(&mut self, c: &ChatEntry) -> Result<i64, ProfileError> {
        self.add_chat_keeping(c, CHAT_KEEP)
    }

    fn add_chat_keeping(&self, c: &ChatEntry, keep: usize) -> Result<i64, ProfileError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(self.sql_err("writing a chat message"))?;
        tx.execute(
            "INSERT INTO chat_messages (at, peer, direction, body, status)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                unix_now(),
                c.peer,
                if c.incoming { "in" } else { "out" },
                kept_body(&c.body),
                c.status
            ],
        )
        .map_err(self.sql_err("writing a chat message"))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM chat_messages WHERE id <=
               (SELECT id FROM chat_messages ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            params![i64::try_from(keep).unwrap_or(i64::MAX)],
        )
        .map_err(self.sql_err("trimming the chat messages"))?;
        tx.commit()
            .map_err(self.sql_err("writing a chat message"))?;
        Ok(id)
    }

    /// Records the delivery state of a text we sent.
    pub fn set_chat_status(&mut self, id: i64, status: u8) -> Result<(), ProfileError> {
        self.conn
            .execute(
                "UPDATE chat_messages SET status = ?2 WHERE id = ?1 AND direction = 'out'",
                params![id, status],
            )
            .map(|_| ())
            .map_err(self.sql_err("writing a chat delivery state"))
    }

    /// The newest `limit` texts with `peer` (compared ignoring case; every peer when
    /// `None`), oldest first.
    pub fn chats(&self, peer: Option<&str>, limit: usize) -> Result<Vec<ChatEntry>, ProfileError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, peer, direction, body, status FROM (
                    SELECT * FROM chat_messages
                    WHERE ?1 IS NULL OR peer = ?1 COLLATE NOCASE
                    ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )
            .map_err(self.sql_err("reading the chat messages"))?;
        let rows = stmt
            .query_map(
                params![peer, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(ChatEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        peer: r.get(2)?,
                        incoming: r.get::<_, String>(3)? == "in",
                        body: r.get(4)?,
                        status: u8::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    })
                },
            )
            .map_err(self.sql_err("reading the chat messages"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql_err("reading the chat messages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::DelLevel;

    fn mem() -> Profile {
        Profile::open_path(std::path::Path::new(":memory:")).unwrap()
    }

    fn text(peer: &str, incoming: bool, body: &str) -> ChatEntry {
        ChatEntry {
            peer: peer.into(),
            incoming,
            body: body.into(),
            status: if incoming { 0 } else { 1 },
            ..ChatEntry::default()
        }
    }

    #[test]
    fn conversation_comes_back_in_order_with_delivery_states() {
        let mut p = mem();
        let out = p.add_chat(&text("1002", false, "hi, <b>bob</b>")).unwrap();
        p.add_chat(&text("1003", true, "other peer")).unwrap();
        p.add_chat(&text("1002", true, "hello ✓\nsecond line"))
            .unwrap();
        p.set_chat_status(out, 2).unwrap();
        let conv = p.chats(Some("1002"), 50).unwrap();
        let got: Vec<_> = conv
            .iter()
            .map(|c| (c.incoming, c.body.as_str(), c.status))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, "hi, <b>bob</b>", 2),
                (true, "hello ✓\nsecond line", 0)
            ]
        );
        assert_eq!(p.chats(None, 50).unwrap().len(), 3);
        assert_eq!(p.chats(None, 1).unwrap()[0].body, "hello ✓\nsecond line");
    }

    #[test]
    fn oldest_texts_are_forgotten_beyond_the_limit() {
        let p = mem();
        for i in 0..5 {
            p.add_chat_keeping(&text("1002", true, &format!("m{i}")), 3)
                .unwrap();
        }
        let left: Vec<_> = p
            .chats(None, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.body)
            .collect();
        assert_eq!(left, vec!["m2", "m3", "m4"]);
    }

    #[test]
    fn a_long_text_is_kept_shortened_at_a_character_boundary() {
        let mut p = mem();
        // 3-byte characters: the cut cannot fall on a byte boundary by luck.
        let long = "€".repeat(CHAT_BODY_KEEP);
        p.add_chat(&text("1002", true, &long)).unwrap();
        p.add_chat(&text("1002", true, "short")).unwrap();
        let kept = p.chats(Some("1002"), 10).unwrap();
        assert!(
            kept[0].body.len() <= CHAT_BODY_KEEP,
            "{}",
            kept[0].body.len()
        );
        assert!(kept[0].body.len() > CHAT_BODY_KEEP - 8);
        assert!(kept[0].body.ends_with('…') && kept[0].body.starts_with("€€€"));
        assert_eq!(kept[1].body, "short");
    }

    #[test]
    fn delsettings_2_erases_the_conversations_and_1_keeps_them() {
        let mut p = mem();
        p.add_chat(&text("1002", true, "keep?")).unwrap();
        p.delete_data(DelLevel::Settings).unwrap();
        assert_eq!(p.chats(None, 10).unwrap().len(), 1);
        p.delete_data(DelLevel::Everything).unwrap();
        assert!(p.chats(None, 10).unwrap().is_empty());
    }
}
