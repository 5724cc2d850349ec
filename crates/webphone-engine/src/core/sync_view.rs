//! The values the JavaScript facade answers synchronously, as the original API did:
//! `isregistered()`, `isincall()`, `getstatus()`, `getline()`, `linetocallid()`,
//! `callidtoline()`, `ismuted()`, `isonhold()`, `isencrypted()`, `getregfailreason()`,
//! `getenginename()`, `getlinedetails()`, `getlastcalldetails()`, `getworkdir()`,
//! `getlogs()` and `getparameter()`.
//!
//! A page cannot wait for an answer from the engine inside `if (webphone_api.isincall())`, so
//! the facade keeps a copy of these values. The engine computes them with the same code its
//! API functions use and sends what changed as one `_sync` callback event:
//!
//! ```json
//! {"ev":"_sync","args":[{"seq":7,"state":{"incall":true,"status":"In Call (3 sec)"},"params":{"codec":"PCMU"}}]}
//! ```
//!
//! New log lines (`getlogs`) come as `"logs": [...]`, to be appended (the facade keeps the
//! last 2,000 as the engine does).
//!
//! Nothing is computed or sent until a facade first asks for `syncstate()`.
//!
//! `syncstate()` (an engine extension) answers the whole copy with the `seq` it corresponds to,
//! for a facade that (re)connects; events with a higher `seq` come after it. Secret parameters
//! (password, md5, ...) are only ever sent as `<redacted>` (or empty).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Core;
use crate::params::{is_secret, redact, Registry, REDACTED};

/// Name of the callback event that carries the changes (not a documented callback: the
/// facade consumes it and never hands it to the page).
pub(crate) const SYNC_EVENT: &str = "_sync";

/// What was last published.
#[derive(Default)]
pub(super) struct SyncView {
    /// A facade asked for the copy (`syncstate`): from then on changes are published. An
    /// engine nobody asked (the headless CLI, a load test) spends nothing on it.
    enabled: bool,
    /// Counts the published changes.
    seq: u64,
    state: Map<String, Value>,
    params: BTreeMap<String, String>,
    /// [`ParamStore::revision`](crate::params::ParamStore::revision) of `params`; `None`
    /// before the first computation.
    params_revision: Option<u64>,
    /// `Core::log_count` when the facade was last told the new log lines.
    logs_sent: u64,
    /// `listcontacts(false)` and `listcontacts(true)` as last sent, and the (database change
    /// count, parameter revision) they were read at.
    contacts: (Value, Value),
    contacts_rev: Option<(u64, u64)>,
}

/// `extraoption` holds `name=value;...` pairs of other parameters: the secret ones go out as
/// [`REDACTED`], like the parameters themselves.
fn redact_pairs(list: &str) -> String {
    list.split(';')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.trim().is_empty() && is_secret(k.trim()) => {
                format!("{k}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

impl Core {
    /// The call and registration values, as the API functions answer them.
    fn sync_state(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "registered".into(),
            Value::from(self.reg == super::RegState::Registered),
        );
        m.insert("incall".into(), Value::from(self.has_connected_call()));
        m.insert("status".into(), Value::from(self.general_text()));
        m.insert("line".into(), Value::from(self.lines.active().unwrap_or(0)));
        m.insert("muted".into(), Value::from(self.active_is_muted()));
        m.insert("onhold".into(), Value::from(self.active_is_on_hold()));
        m.insert("encrypted".into(), Value::from(self.active_encryption()));
        m.insert(
            "regfailreason".into(),
            Value::from(self.last_reg_failure.clone()),
        );
        m.insert("enginename".into(), Value::from("ns"));
        // Line number -> SIP Call-ID of every line with a call.
        let lines: Map<String, Value> = self
            .lines
            .iter()
            .map(|(n, l)| (n.to_string(), Value::from(l.callid.clone())))
            .collect();
        m.insert("lines".into(), Value::Object(lines));
        // getlinedetails(N) of every line with a call; for a line without one the text after
        // "LINEDETAILS,N" (the same for every N).
        let details: Map<String, Value> = self
            .lines
            .iter()
            .map(|(n, _)| (n.to_string(), Value::from(self.line_details(Some(n)))))
            .collect();
        m.insert("linedetails".into(), Value::Object(details));
        let idle = self.line_details(None);
        let idle = idle.strip_prefix("LINEDETAILS,0").unwrap_or(&idle);
        m.insert("idledetails".into(), Value::from(idle));
        m.insert(
            "lastcalldetails".into(),
            Value::from(self.last_call_details()),
        );
        m.insert(
            "workdir".into(),
            Value::from(self.work_dir.display().to_string()),
        );
        m
    }

    /// Every catalog parameter (aliases under their own spelling) and every custom key that
    /// has a value, by lower-case name, as `getparameter` answers them, secrets redacted.
    fn sync_params(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for def in Registry::global().iter() {
            let value = self.params.get_str(def.name);
            let shown = if def.name.eq_ignore_ascii_case("extraoption") {
                redact_pairs(value)
            } else {
                redact(def.name, value).to_owned()
            };
            out.insert(def.name.to_ascii_lowercase(), shown);
        }
        for (name, value) in self.params.entries() {
            out.entry(name.to_ascii_lowercase())
                .or_insert_with(|| redact(name, value).to_owned());
        }
        out
    }

    /// Sends a `_sync` event with what changed since the last one (nothing when nothing did).
    /// Parameters are only re-read when the store changed. Runs before every other event goes
    /// out (see `Core::emit`), so a page that asks isincall() in its onCallStateChange handler
    /// already has the answer.
    pub(super) fn publish_sync(&self) {
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if !sync.enabled {
            return;
        }
        let state = self.sync_state();
        let mut state_diff = Map::new();
        for (k, v) in &state {
            if sync.state.get(k) != Some(v) {
                state_diff.insert(k.clone(), v.clone());
            }
        }
        let mut params_diff = Map::new();
        let revision = self.params.revision();
        if sync.params_revision != Some(revision) {
            let params = self.sync_params();
            for (k, v) in &params {
                if sync.params.get(k) != Some(v) {
                    params_diff.insert(k.clone(), Value::from(v.clone()));
                }
            }
            // A custom key that is gone reads as empty again.
            for k in sync.params.keys() {
                if !params.contains_key(k) {
                    params_diff.insert(k.clone(), Value::from(""));
                }
            }
            sync.params = params;
            sync.params_revision = Some(revision);
        }
        // listcontacts(): read again only when the database or the parameters (the voicemail
        // entry) may have changed.
        let contacts_rev = (self.profile_change_count(), revision);
        if sync.contacts_rev != Some(contacts_rev) {
            let lists = self.contact_lists();
            if sync.contacts_rev.is_none() || sync.contacts != lists {
                state_diff.insert("contacts".into(), lists.0.clone());
                state_diff.insert("contactsall".into(), lists.1.clone());
                sync.contacts = lists;
            }
            sync.contacts_rev = Some(contacts_rev);
        }
        sync.state = state;
        // getlogs(): the lines kept since the last event (the facade appends them).
        let count = self.log_count.load(std::sync::atomic::Ordering::Relaxed);
        let mut new_logs = Vec::new();
        if count != sync.logs_sent {
            let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
            let n = usize::try_from(count - sync.logs_sent)
                .unwrap_or(usize::MAX)
                .min(logs.len());
            new_logs.extend(logs.iter().skip(logs.len() - n).cloned().map(Value::from));
            sync.logs_sent = count;
        }
        if state_diff.is_empty() && params_diff.is_empty() && new_logs.is_empty() {
            return;
        }
        sync.seq += 1;
        let mut ev = Map::new();
        ev.insert("seq".into(), Value::from(sync.seq));
        if !state_diff.is_empty() {
            ev.insert("state".into(), Value::Object(state_diff));
        }
        if !params_diff.is_empty() {
            ev.insert("params".into(), Value::Object(params_diff));
        }
        if !new_logs.is_empty() {
            ev.insert("logs".into(), Value::Array(new_logs));
        }
        drop(sync);
        self.callback(SYNC_EVENT, vec![Value::Object(ev)]);
    }

    fn profile_change_count(&self) -> u64 {
        self.profile.as_ref().map_or(0, |p| {
            p.lock().unwrap_or_else(|e| e.into_inner()).change_count()
        })
    }

    /// `listcontacts(false)` and `listcontacts(true)` (null and null without a profile).
    fn contact_lists(&self) -> (Value, Value) {
        let contacts = self
            .profile
            .as_ref()
            .and_then(|p| p.lock().unwrap_or_else(|e| e.into_inner()).contacts().ok());
        match contacts {
            Some(c) => (self.contact_list(&c, false), self.contact_list(&c, true)),
            None => (Value::Null, Value::Null),
        }
    }

    /// `syncstate()`: the whole copy, current as of the `seq` it carries.
    pub(super) fn sync_snapshot(&self) -> Value {
        self.sync.lock().unwrap_or_else(|e| e.into_inner()).enabled = true;
        self.publish_sync();
        let sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        let params: Map<String, Value> = sync
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let logs: Vec<Value> = self
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .map(Value::from)
            .collect();
        let mut state = sync.state.clone();
        state.insert("contacts".into(), sync.contacts.0.clone());
        state.insert("contactsall".into(), sync.contacts.1.clone());
        serde_json::json!({
            "seq": sync.seq,
            "state": Value::Object(state),
            "params": Value::Object(params),
            "logs": logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_pairs;

    #[test]
    fn secret_pairs_of_extraoption_are_redacted() {
        assert_eq!(
            redact_pairs("password=abc;loglevel=4; md5 =x;turnpassword="),
            "password=<redacted>;loglevel=4; md5 =<redacted>;turnpassword="
        );
        assert_eq!(redact_pairs(""), "");
        assert_eq!(redact_pairs("no pairs here"), "no pairs here");
    }
}
