//! Contacts and call history in the profile database (migration 2).

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{unix_now, Profile, ProfileError};

/// Call-history entries kept per profile; older ones are dropped as new calls end.
pub const HISTORY_KEEP: usize = 5000;

/// Call-history entries kept by an in-memory profile (a CLI or service started without a work
/// folder): nothing of it outlives the process, so it holds a session's worth of recent calls
/// rather than months of them. 5000 entries are about 300 KiB of memory that a long-running
/// headless phone (an auto-answer test peer, say) would gain and never give back.
pub const HISTORY_KEEP_IN_MEMORY: usize = 500;

/// One contact. `numbers` are numbers, user names or SIP URIs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub numbers: Vec<String>,
    pub favorite: bool,
    pub email: String,
    pub address: String,
    pub notes: String,
    pub website: String,
}

/// Characters that would break the TAB/CRLF/'|' list format are replaced by spaces.
fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\r' | '\n') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

impl Contact {
    /// The API's one-line form: `name TAB numbers(|) TAB favorite TAB email TAB address TAB
    /// notes TAB website`.
    pub fn to_line(&self) -> String {
        let numbers: Vec<String> = self
            .numbers
            .iter()
            .map(|n| clean(n).replace('|', " "))
            .collect();
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            clean(&self.name),
            numbers.join("|"),
            u8::from(self.favorite),
            clean(&self.email),
            clean(&self.address),
            clean(&self.notes),
            clean(&self.website),
        )
    }

    /// Parses one line of the list form [`Contact::to_line`] writes (the format of a
    /// `serveraddressbook_url` answer): `name TAB numbers(|) [TAB favorite TAB email TAB
    /// address TAB notes TAB website]`. `None` without a name or a number, which the format
    /// requires.
    pub fn from_line(line: &str) -> Option<Contact> {
        let mut f = line.split('\t');
        let name = f.next().map(str::trim).unwrap_or("");
        let numbers = split_numbers(f.next().unwrap_or(""));
        if name.is_empty() || numbers.is_empty() {
            return None;
        }
        let mut next = || f.next().map(str::trim).unwrap_or("").to_string();
        let favorite = matches!(next().as_str(), "1" | "true" | "yes");
        Some(Contact {
            name: name.to_string(),
            numbers,
            favorite,
            email: next(),
            address: next(),
            notes: next(),
            website: next(),
        })
    }

    fn matches_number(&self, number: &str) -> bool {
        let n = number.trim();
        !n.is_empty() && self.numbers.iter().any(|x| x.eq_ignore_ascii_case(n))
    }
}

/// One ended call, as the CDR reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    pub line: i32,
    pub direction: u8,
    pub peer: String,
    pub peer_display: String,
    pub caller: String,
    pub called: String,
    pub connect_ms: u64,
    pub duration_ms: u64,
    pub disc_party: u8,
    pub reason: String,
    pub callid: String,
}

/// A contact list read from text: the contacts, and how many non-empty entries were skipped
/// for lacking a name or a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactList {
    pub contacts: Vec<Contact>,
    pub skipped: usize,
}

/// A server address book (behaviours §19): one contact per line (CRLF; a bare LF is accepted
/// too), in the [`Contact::from_line`] form. Blank lines are ignored.
pub fn parse_contact_list(body: &str) -> ContactList {
    let mut list = ContactList::default();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        match Contact::from_line(line) {
            Some(c) => list.contacts.push(c),
            None => list.skipped += 1,
        }
    }
    list
}

/// The `defcontacts` parameter: `Name,number;Name2,number2` (several numbers of one contact
/// may follow its name: `Name,n1,n2`). An entry with only a number is named after it.
pub fn parse_defcontacts(value: &str) -> ContactList {
    let mut list = ContactList::default();
    for entry in value.split(';').filter(|e| !e.trim().is_empty()) {
        let mut parts = entry.split(',').map(str::trim);
        let name = parts.next().unwrap_or("");
        let numbers: Vec<String> = parts
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        match (name.is_empty(), numbers.is_empty()) {
            (false, false) => list.contacts.push(Contact {
                name: name.to_string(),
                numbers,
                ..Contact::default()
            }),
            (true, false) => list.contacts.push(Contact {
                name: numbers[0].clone(),
                numbers,
                ..Contact::default()
            }),
            _ => list.skipped += 1,
        }
    }
    list
}

/// What the last import of a source ([`Profile::sync_state`]) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The URL template or parameter value imported from.
    pub source: String,
    /// `requested`, `received`, `empty` or `failed`.
    pub outcome: String,
}

fn split_numbers(s: &str) -> Vec<String> {
    s.split('|')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// Inserts `c`, or merges it into the contact with the same name (ignoring case).
fn upsert_contact(conn: &rusqlite::Connection, c: &Contact) -> rusqlite::Result<()> {
    let name = clean(&c.name);
    let key = name.to_lowercase();
    let existing = conn
        .query_row(
            "SELECT numbers FROM contacts WHERE name_key = ?1",
            params![key],
            |r| r.get::<_, String>(0),
        )
        .optional()?;
    let mut numbers = existing.as_deref().map(split_numbers).unwrap_or_default();
    for n in &c.numbers {
        let n = clean(n).replace('|', " ");
        if !n.is_empty() && !numbers.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
            numbers.push(n);
        }
    }
    let keep = |v: &str| clean(v);
    conn.execute(
                "INSERT INTO contacts (name, name_key, numbers, favorite, email, address, notes, website, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name_key) DO UPDATE SET
                   name = excluded.name, numbers = excluded.numbers,
                   favorite = MAX(favorite, excluded.favorite),
                   email = CASE WHEN excluded.email = '' THEN email ELSE excluded.email END,
                   address = CASE WHEN excluded.address = '' THEN address ELSE excluded.address END,
                   notes = CASE WHEN excluded.notes = '' THEN notes ELSE excluded.notes END,
                   website = CASE WHEN excluded.website = '' THEN website ELSE excluded.website END,
                   updated_at = excluded.updated_at",
                params![
                    name,
                    key,
                    numbers.join("|"),
                    i64::from(c.favorite),
                    keep(&c.email),
                    keep(&c.address),
                    keep(&c.notes),
                    keep(&c.website),
                    unix_now()
                ],
            )?;
    Ok(())
}

impl Profile {
    fn all_contacts(&self) -> Result<Vec<Contact>, ProfileError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, numbers, favorite, email, address, notes, website
                 FROM contacts ORDER BY name_key",
            )
            .map_err(self.sql_err("reading contacts"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Contact {
                    name: r.get(0)?,
                    numbers: split_numbers(&r.get::<_, String>(1)?),
                    favorite: r.get::<_, i64>(2)? != 0,
                    email: r.get(3)?,
                    address: r.get(4)?,
                    notes: r.get(5)?,
                    website: r.get(6)?,
                })
            })
            .map_err(self.sql_err("reading contacts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql_err("reading contacts"))
    }

    /// Every contact, ordered by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, ProfileError> {
        self.all_contacts()
    }

    /// Adds a contact, or updates the one with the same name (ignoring case): its numbers are
    /// merged, the other fields replaced when given.
    pub fn add_contact(&mut self, c: &Contact) -> Result<(), ProfileError> {
        upsert_contact(&self.conn, c).map_err(self.sql_err("writing a contact"))
    }

    /// [`Profile::add_contact`] for each of `list` in one transaction (a vCard import: all
    /// or nothing, one disk sync). Returns how many were written.
    pub fn add_contacts(&mut self, list: &[Contact]) -> Result<usize, ProfileError> {
        let path = self.path.clone();
        let err = |source| ProfileError::Sql {
            path: path.clone(),
            op: "importing contacts",
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut written = 0;
        for c in list {
            if clean(&c.name).is_empty() {
                continue;
            }
            upsert_contact(&tx, c).map_err(err)?;
            written += 1;
        }
        tx.commit().map_err(err)?;
        Ok(written)
    }

    /// The first contact whose name (ignoring case) or one of whose numbers matches.
    pub fn find_contact(&self, name: &str, number: &str) -> Result<Option<Contact>, ProfileError> {
        let name = name.trim();
        Ok(self.all_contacts()?.into_iter().find(|c| {
            (!name.is_empty() && c.name.eq_ignore_ascii_case(name)) || c.matches_number(number)
        }))
    }

    /// Removes every contact whose name or number matches; returns how many.
    pub fn delete_contacts(&mut self, name: &str, number: &str) -> Result<usize, ProfileError> {
        let name = name.trim();
        let doomed: Vec<String> = self
            .all_contacts()?
            .into_iter()
            .filter(|c| {
                (!name.is_empty() && c.name.eq_ignore_ascii_case(name)) || c.matches_number(number)
            })
            .map(|c| c.name.to_lowercase())
            .collect();
        let path = self.path.clone();
        let err = |source| ProfileError::Sql {
            path: path.clone(),
            op: "deleting contacts",
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for key in &doomed {
            tx.execute("DELETE FROM contacts WHERE name_key = ?1", params![key])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(doomed.len())
    }

    /// Marks (or unmarks) as favourite every contact whose name or number matches; returns
    /// how many.
    pub fn set_favorite(
        &mut self,
        name: &str,
        number: &str,
        favorite: bool,
    ) -> Result<usize, ProfileError> {
        let name = name.trim();
        let keys: Vec<String> = self
            .all_contacts()?
            .into_iter()
            .filter(|c| {
                (!name.is_empty() && c.name.eq_ignore_ascii_case(name)) || c.matches_number(number)
            })
            .map(|c| c.name.to_lowercase())
            .collect();
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(self.sql_err("marking a favourite"))?;
        for key in &keys {
            tx.execute(
                "UPDATE contacts SET favorite = ?2, updated_at = ?3 WHERE name_key = ?1",
                params![key, i64::from(favorite), unix_now()],
            )
            .map_err(self.sql_err("marking a favourite"))?;
        }
        tx.commit().map_err(self.sql_err("marking a favourite"))?;
        Ok(keys.len())
    }

    /// What the last import called `name` (`serveraddressbook`, `defcontacts`) came to.
    pub fn sync_state(&self, name: &str) -> Result<Option<SyncState>, ProfileError> {
        self.conn
            .query_row(
                "SELECT source, outcome FROM sync_state WHERE name = ?1",
                params![name],
                |r| {
                    Ok(SyncState {
                        source: r.get(0)?,
                        outcome: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql_err("reading the import state"))
    }

    /// Records what the import called `name` came to.
    pub fn set_sync_state(&mut self, name: &str, state: &SyncState) -> Result<(), ProfileError> {
        self.conn
            .execute(
                "INSERT INTO sync_state (name, source, outcome, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET source = excluded.source,
                     outcome = excluded.outcome, updated_at = excluded.updated_at",
                params![name, state.source, state.outcome, unix_now()],
            )
            .map(|_| ())
            .map_err(self.sql_err("writing the import state"))
    }

    /// Appends one ended call to the history (one transaction: a crash keeps every completed
    /// entry), then forgets entries older than the newest [`HISTORY_KEEP`] (on disk) or
    /// [`HISTORY_KEEP_IN_MEMORY`] (in memory), so that a phone left running for months does not
    /// grow without end.
    pub fn add_history(&mut self, h: &HistoryEntry) -> Result<(), ProfileError> {
        let keep = if self.is_in_memory() {
            HISTORY_KEEP_IN_MEMORY
        } else {
            HISTORY_KEEP
        };
        self.add_history_keeping(h, keep)
    }

    fn add_history_keeping(&self, h: &HistoryEntry, keep: usize) -> Result<(), ProfileError> {
        // `unchecked_transaction` borrows the connection shared, so the corruption-aware error
        // mapping (which borrows the profile) can be used inside; nothing else runs on it.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(self.sql_err("writing the call history"))?;
        tx.execute(
            "INSERT INTO call_history (ended_at, line, direction, peer, peer_display, caller,
                   called, connect_ms, duration_ms, disc_party, reason, callid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                unix_now(),
                h.line,
                h.direction,
                h.peer,
                h.peer_display,
                h.caller,
                h.called,
                i64::try_from(h.connect_ms).unwrap_or(i64::MAX),
                i64::try_from(h.duration_ms).unwrap_or(i64::MAX),
                h.disc_party,
                h.reason,
                h.callid
            ],
        )
        .map_err(self.sql_err("writing the call history"))?;
        tx.execute(
            "DELETE FROM call_history WHERE id <=
               (SELECT id FROM call_history ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            params![i64::try_from(keep).unwrap_or(i64::MAX)],
        )
        .map_err(self.sql_err("trimming the call history"))?;
        tx.commit()
            .map_err(self.sql_err("writing the call history"))?;
        Ok(())
    }

    /// The newest `limit` history entries, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, ProfileError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT line, direction, peer, peer_display, caller, called, connect_ms,
                        duration_ms, disc_party, reason, callid
                 FROM call_history ORDER BY id DESC LIMIT ?1",
            )
            .map_err(self.sql_err("reading the call history"))?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(HistoryEntry {
                    line: r.get(0)?,
                    direction: r.get(1)?,
                    peer: r.get(2)?,
                    peer_display: r.get(3)?,
                    caller: r.get(4)?,
                    called: r.get(5)?,
                    connect_ms: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    duration_ms: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    disc_party: r.get(8)?,
                    reason: r.get(9)?,
                    callid: r.get(10)?,
                })
            })
            .map_err(self.sql_err("reading the call history"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql_err("reading the call history"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile::open_path(std::path::Path::new(":memory:")).expect("in-memory profile")
    }

    #[test]
    fn contacts_merge_numbers_by_name_and_list_in_the_api_form() {
        let mut p = profile();
        let c = Contact {
            name: "Kim Smith".into(),
            numbers: vec!["1002".into()],
            email: "kim@example.org".into(),
            ..Contact::default()
        };
        p.add_contact(&c).unwrap();
        p.add_contact(&Contact {
            name: "kim smith".into(),
            numbers: vec!["sip:kim@pbx".into(), "1002".into()],
            favorite: true,
            ..Contact::default()
        })
        .unwrap();
        let all = p.contacts().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].to_line(),
            "kim smith\t1002|sip:kim@pbx\t1\tkim@example.org\t\t\t"
        );
        assert_eq!(
            p.find_contact("", "sip:kim@pbx").unwrap().map(|c| c.name),
            Some("kim smith".to_string())
        );
        assert_eq!(p.delete_contacts("", "1002").unwrap(), 1);
        assert!(p.contacts().unwrap().is_empty());
    }

    #[test]
    fn separators_in_fields_cannot_break_the_list_format() {
        let c = Contact {
            name: "a\tb\r\nc".into(),
            numbers: vec!["1|2".into()],
            ..Contact::default()
        };
        let line = c.to_line();
        assert_eq!(line.split('\t').count(), 7);
        assert!(!line.contains('\n'));
        assert_eq!(line.split('\t').nth(1), Some("1 2"));
    }

    #[test]
    fn server_address_book_lines_need_a_name_and_a_number() {
        let body = "Kim Smith\t1002|sip:kim@pbx\t1\tkim@example.org\r\n\r\nNo Number\t\r\n\t1003\r\nBob\t1004\n";
        let list = parse_contact_list(body);
        assert_eq!(list.skipped, 2);
        assert_eq!(list.contacts.len(), 2);
        assert_eq!(
            list.contacts[0].to_line(),
            "Kim Smith\t1002|sip:kim@pbx\t1\tkim@example.org\t\t\t"
        );
        assert_eq!(list.contacts[1].name, "Bob");
        assert_eq!(list.contacts[1].numbers, ["1004"]);
        // a written list reads back unchanged
        let again = parse_contact_list(&list.contacts[0].to_line());
        assert_eq!(again.contacts, [list.contacts[0].clone()]);
    }

    #[test]
    fn defcontacts_entries_are_name_then_numbers() {
        let list = parse_defcontacts("Support,1000;Sales, 2000 ,2001; ;,3000;Lonely");
        assert_eq!(list.skipped, 1);
        let got: Vec<(String, Vec<String>)> = list
            .contacts
            .into_iter()
            .map(|c| (c.name, c.numbers))
            .collect();
        assert_eq!(
            got,
            [
                ("Support".to_string(), vec!["1000".to_string()]),
                ("Sales".into(), vec!["2000".into(), "2001".into()]),
                ("3000".into(), vec!["3000".into()]),
            ]
        );
    }

    #[test]
    fn import_state_is_kept_per_source_and_forgotten_with_the_contacts() {
        let mut p = profile();
        assert_eq!(p.sync_state("serveraddressbook").unwrap(), None);
        let st = SyncState {
            source: "http://pbx/book".into(),
            outcome: "received".into(),
        };
        p.set_sync_state("serveraddressbook", &st).unwrap();
        assert_eq!(p.sync_state("serveraddressbook").unwrap(), Some(st));
        p.delete_data(crate::profile::DelLevel::Settings).unwrap();
        assert!(p.sync_state("serveraddressbook").unwrap().is_some());
        p.delete_data(crate::profile::DelLevel::Everything).unwrap();
        assert_eq!(p.sync_state("serveraddressbook").unwrap(), None);
    }

    #[test]
    fn history_keeps_every_call_newest_first() {
        let mut p = profile();
        for i in 0..3 {
            p.add_history(&HistoryEntry {
                line: 1,
                peer: format!("p{i}"),
                reason: "BYE".into(),
                ..HistoryEntry::default()
            })
            .unwrap();
        }
        let h = p.history(2).unwrap();
        assert_eq!(
            h.iter().map(|e| e.peer.as_str()).collect::<Vec<_>>(),
            ["p2", "p1"]
        );
    }

    #[test]
    fn in_memory_history_keeps_a_session_worth_and_a_file_keeps_more() {
        let entry = |i: usize| HistoryEntry {
            line: 1,
            peer: format!("p{i}"),
            reason: "BYE".into(),
            ..HistoryEntry::default()
        };
        let mut mem = profile();
        assert!(mem.is_in_memory());
        for i in 0..HISTORY_KEEP_IN_MEMORY + 20 {
            mem.add_history(&entry(i)).unwrap();
        }
        let h = mem.history(HISTORY_KEEP).unwrap();
        assert_eq!(h.len(), HISTORY_KEEP_IN_MEMORY);
        assert_eq!(h[0].peer, format!("p{}", HISTORY_KEEP_IN_MEMORY + 19));
        let dir = std::env::temp_dir().join(format!("webphone-history-cap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = Profile::open_path(&dir.join("webphone.sqlite")).unwrap();
        assert!(!file.is_in_memory());
        for i in 0..HISTORY_KEEP_IN_MEMORY + 20 {
            file.add_history(&entry(i)).unwrap();
        }
        assert_eq!(
            file.history(HISTORY_KEEP).unwrap().len(),
            HISTORY_KEEP_IN_MEMORY + 20
        );
        drop(file);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn history_forgets_the_oldest_entries_beyond_its_cap() {
        let p = profile();
        for i in 0..7 {
            p.add_history_keeping(
                &HistoryEntry {
                    line: 1,
                    peer: format!("p{i}"),
                    reason: "BYE".into(),
                    ..HistoryEntry::default()
                },
                3,
            )
            .unwrap();
        }
        let h = p.history(100).unwrap();
        assert_eq!(
            h.iter().map(|e| e.peer.as_str()).collect::<Vec<_>>(),
            ["p6", "p5", "p4"]
        );
    }
}
