//! Contacts that come from the configuration rather than the user (behaviours §19): the
//! `defcontacts` list and the server address book (`serveraddressbook_url`, fetched as
//! `serveraddressbook_sync` says).
//!
//! Both are imported into the profile's contacts (merged by name, like `addcontact`), and the
//! profile remembers what was imported from which source (`sync_state`), so that "only once"
//! survives restarts and a new URL or list imports again. `delsettings(2)` forgets it with
//! the contacts.
//!
//! Notifications: `ACTION,...` when a download starts (an internal step, which consumers
//! ignore), `SERVERCONTACTS,<text>` with how many contacts the server gave, `LOG,WARNING,...`
//! when the download or the import fails.

use serde_json::Value;
use tracing::{debug, warn};

use super::{ApiError, Cmd, Core};
use crate::integrations::MAX_ADDRESS_BOOK;
use crate::notify::{self, Severity};
use crate::profile::{parse_contact_list, parse_defcontacts, SyncState};

/// The `sync_state` names of the two imports.
const SERVER_BOOK: &str = "serveraddressbook";
const DEFCONTACTS: &str = "defcontacts";

/// `serveraddressbook_sync` (behaviours §19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncMode {
    /// 0: one download per URL, whatever it returned.
    Once,
    /// 1: at every start until a download returned contacts (our default: the catalog gives
    /// none, and this one neither repeats a good download nor gives up after a failed one).
    UntilReceived,
    /// 2: at every start.
    EveryStart,
}

impl SyncMode {
    /// The parameter's value; anything else (unset included) is [`SyncMode::UntilReceived`].
    pub(crate) fn from_param(v: Option<i64>) -> SyncMode {
        match v {
            Some(0) => SyncMode::Once,
            Some(2) => SyncMode::EveryStart,
            _ => SyncMode::UntilReceived,
        }
    }
}

/// Whether the server address book at `source` is to be downloaded at start, given what the
/// last import came to.
pub(crate) fn address_book_due(mode: SyncMode, source: &str, last: Option<&SyncState>) -> bool {
    let Some(last) = last.filter(|l| l.source == source) else {
        // never imported, or imported from another URL
        return true;
    };
    match mode {
        SyncMode::Once => false,
        SyncMode::UntilReceived => last.outcome != "received",
        SyncMode::EveryStart => true,
    }
}

/// An answer cut at [`MAX_ADDRESS_BOOK`] ends inside a contact: that last line is dropped.
fn whole_lines(mut body: String) -> (String, bool) {
    if body.len() < MAX_ADDRESS_BOOK {
        return (body, false);
    }
    let end = body.rfind('\n').map_or(0, |i| i + 1);
    body.truncate(end);
    (body, true)
}

impl Core {
    /// At `start()`: imports `defcontacts` when its value is new to this profile, then starts
    /// the server address book download when [`address_book_due`].
    pub(super) fn import_contacts_at_start(&mut self) {
        self.import_defcontacts();
        let source = self.params.get("serveraddressbook_url");
        if source.trim().is_empty() {
            return;
        }
        let mode = SyncMode::from_param(self.params.get_i64("serveraddressbook_sync"));
        let last = match self.with_profile(|p| p.sync_state(SERVER_BOOK)) {
            Ok(last) => last,
            Err(e) => {
                self.log(Severity::Warning, &format!("server address book: {e}"));
                return;
            }
        };
        if address_book_due(mode, source.trim(), last.as_ref()) {
            if let Err(e) = self.sync_address_book() {
                self.log(Severity::Warning, &e.to_string());
            }
        } else {
            debug!(?mode, "server address book already imported");
        }
    }

    /// `defcontacts`: added to the contacts once per distinct value (a contact the user
    /// deleted does not come back at the next start).
    fn import_defcontacts(&mut self) {
        let value = self.params.get("defcontacts");
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let result = self.with_profile(|p| {
            if p.sync_state(DEFCONTACTS)?
                .is_some_and(|s| s.source == value)
            {
                return Ok(None);
            }
            let list = parse_defcontacts(value);
            let n = p.add_contacts(&list.contacts)?;
            p.set_sync_state(
                DEFCONTACTS,
                &SyncState {
                    source: value.to_string(),
                    outcome: "received".into(),
                },
            )?;
            Ok(Some((n, list.skipped)))
        });
        match result {
            Ok(Some((n, skipped))) => {
                debug!(n, "defcontacts imported");
                if skipped > 0 {
                    self.log(
                        Severity::Warning,
                        &format!("defcontacts: {skipped} entries without a number skipped"),
                    );
                }
            }
            Ok(None) => {}
            Err(e) => self.log(Severity::Warning, &format!("defcontacts: {e}")),
        }
    }

    /// Starts the download of the server address book; its answer comes back to the actor as
    /// [`Cmd::AddressBook`]. Also the `syncservercontacts()` engine extension (the skin's
    /// "synchronise contacts" menu), which downloads whatever `serveraddressbook_sync` says.
    pub(super) fn sync_address_book(&mut self) -> Result<Value, ApiError> {
        let source = self.params.get("serveraddressbook_url").trim().to_string();
        let request = self
            .integrations
            .address_book_request(&self.params)
            .map_err(|e| ApiError::Failed(e.to_string()))?
            .ok_or_else(|| ApiError::Failed("serveraddressbook_url is not set".into()))?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| ApiError::Failed("no async runtime".into()))?;
        // Recorded before the answer: with `serveraddressbook_sync` 0 a download that never
        // finishes (the phone closed meanwhile) still counts as the one.
        self.set_book_state(&source, "requested");
        self.notify("ACTION,serveraddressbook download started".into());
        let tx = self.cmd_tx.clone();
        rt.spawn(async move {
            let answer = request.await.map_err(|e| e.to_string());
            let _ = tx.send(Cmd::AddressBook { source, answer });
        });
        Ok(Value::Null)
    }

    /// The server address book arrived (or failed): its contacts are merged into the
    /// profile's, and `SERVERCONTACTS` says how many.
    pub(super) fn address_book_answer(&mut self, source: String, answer: Result<String, String>) {
        let body = match answer {
            Ok(body) => body,
            Err(e) => {
                self.set_book_state(&source, "failed");
                self.log(Severity::Warning, &format!("server address book: {e}"));
                return;
            }
        };
        let (body, cut) = whole_lines(body);
        if cut {
            self.log(
                Severity::Warning,
                &format!(
                    "server address book: only the first {} KiB were read",
                    MAX_ADDRESS_BOOK / 1024
                ),
            );
        }
        let list = parse_contact_list(&body);
        if list.skipped > 0 {
            self.log(
                Severity::Warning,
                &format!(
                    "server address book: {} lines without a name or a number skipped",
                    list.skipped
                ),
            );
        }
        match self.with_profile(|p| p.add_contacts(&list.contacts)) {
            Ok(n) => {
                self.set_book_state(&source, if n > 0 { "received" } else { "empty" });
                self.notify(format!(
                    "SERVERCONTACTS,{}",
                    notify::text(&format!(
                        "{n} contacts received from the server address book"
                    ))
                ));
            }
            Err(e) => {
                self.set_book_state(&source, "failed");
                self.log(Severity::Warning, &format!("server address book: {e}"));
            }
        }
    }

    fn set_book_state(&mut self, source: &str, outcome: &str) {
        let state = SyncState {
            source: source.to_string(),
            outcome: outcome.to_string(),
        };
        if let Err(e) = self.with_profile(|p| p.set_sync_state(SERVER_BOOK, &state)) {
            warn!("server address book: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(source: &str, outcome: &str) -> SyncState {
        SyncState {
            source: source.into(),
            outcome: outcome.into(),
        }
    }

    #[test]
    fn sync_once_downloads_a_url_a_single_time_whatever_came_back() {
        let url = "https://pbx/book";
        assert!(address_book_due(SyncMode::Once, url, None));
        assert!(!address_book_due(
            SyncMode::Once,
            url,
            Some(&state(url, "failed"))
        ));
        assert!(!address_book_due(
            SyncMode::Once,
            url,
            Some(&state(url, "requested"))
        ));
        // a new URL is a new address book
        assert!(address_book_due(
            SyncMode::Once,
            "https://pbx/book2",
            Some(&state(url, "received"))
        ));
    }

    #[test]
    fn sync_until_received_retries_failed_and_empty_downloads_only() {
        let url = "https://pbx/book";
        for (outcome, due) in [
            ("requested", true),
            ("failed", true),
            ("empty", true),
            ("received", false),
        ] {
            assert_eq!(
                address_book_due(SyncMode::UntilReceived, url, Some(&state(url, outcome))),
                due,
                "{outcome}"
            );
        }
        assert!(address_book_due(
            SyncMode::EveryStart,
            url,
            Some(&state(url, "received"))
        ));
    }

    #[test]
    fn sync_mode_defaults_to_until_received() {
        assert_eq!(SyncMode::from_param(None), SyncMode::UntilReceived);
        assert_eq!(SyncMode::from_param(Some(7)), SyncMode::UntilReceived);
        assert_eq!(SyncMode::from_param(Some(0)), SyncMode::Once);
        assert_eq!(SyncMode::from_param(Some(2)), SyncMode::EveryStart);
    }

    #[test]
    fn a_cut_address_book_loses_only_its_partial_last_line() {
        let mut body = "A\t1\r\n".repeat(MAX_ADDRESS_BOOK / 5);
        body.push_str("Half\t12");
        let (kept, cut) = whole_lines(body);
        assert!(cut);
        assert!(kept.ends_with("A\t1\r\n"));
        let (small, cut) = whole_lines("A\t1".into());
        assert!(!cut);
        assert_eq!(small, "A\t1");
    }
}
