//! Current parameter values: string in, validated and normalised per [`ParamKind`].

use std::collections::BTreeMap;
use std::fmt;

use super::catalog::{NumberRule, ParamDef, ParamKind, Registry};
use super::crypt::{decrypt_value, is_encrypted};
use super::sources::{strip_ucfg_prefix, Source};

/// Special value clearing a parameter to the empty string (exact, upper case; surrounding
/// whitespace ignored). Lower-case `null` is an ordinary value (an audio device spec uses it).
pub const NULL_VALUE: &str = "NULL";
/// Special value putting a parameter back to its default (exact, upper case).
pub const DEF_VALUE: &str = "DEF";

/// Shown instead of secret values in `Debug` output and [`ParamStore::display_value`].
pub const REDACTED: &str = "<redacted>";

/// Catalog parameters whose value is (or may embed) a credential.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "md5",
    "turnpassword",
    // accounts list: IP,usr,pwd,...
    "extraregisteraccounts",
    // ICE server list may carry a TURN `credential`
    "ice",
    // upload URL may carry ftp://user:pass@host
    "voicerecupload",
];

/// Fragments that mark an unknown (custom) key as secret.
const SECRET_FRAGMENTS: &[&str] = &["password", "passwd", "pwd", "secret", "credential", "md5"];

/// Whether values of `name` must never appear in logs or `Debug` output.
/// Case-insensitive; aliases are resolved; unknown names are judged by their spelling.
pub fn is_secret(name: &str) -> bool {
    let name = Registry::global()
        .canonical_name(name)
        .unwrap_or(name)
        .trim()
        .to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str()) || SECRET_FRAGMENTS.iter().any(|f| name.contains(f))
}

/// `value`, or [`REDACTED`] when `name` is secret and the value is not empty.
pub fn redact<'a>(name: &str, value: &'a str) -> &'a str {
    if !value.is_empty() && is_secret(name) {
        REDACTED
    } else {
        value
    }
}

/// Why a value was refused. The previous value is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter name is empty")]
    EmptyName,
    #[error("invalid value {value:?} for parameter {name}: expected {expected}")]
    InvalidValue {
        /// Canonical parameter name.
        name: String,
        /// The refused value ([`REDACTED`] for secret parameters).
        value: String,
        /// What the parameter accepts, e.g. `one of: -1=auto detect; 0=UDP; ...`.
        expected: String,
    },
    #[error("cannot decode the encrypted value of parameter {name}: {reason}")]
    Encrypted {
        /// Canonical parameter name.
        name: String,
        /// Why decoding failed.
        reason: String,
    },
}

/// How a name given to [`ParamStore::set`] was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognition {
    /// A catalog parameter under its own name.
    Known,
    /// An old name / alternative spelling, stored under the canonical name.
    Alias,
    /// Not in the catalog: stored as a string (custom key). Callers should log a warning.
    Unknown,
}

/// Result of an accepted [`ParamStore::set`] / [`ParamStore::set_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Name the value is stored under (canonical spelling for known parameters; without a
    /// `ucfg_` prefix).
    pub name: String,
    pub recognition: Recognition,
    /// Whether [`ParamStore::get`] now returns something different (change-notification hook).
    pub changed: bool,
    /// The source the value was written to.
    pub source: Source,
    /// Whether the written value (or `DEF`) is now the effective one; false when a source of
    /// higher precedence (or, for a `ucfg_` value, a stored value) shadows it.
    pub effective: bool,
    /// Whether the write queued a change for the profile database
    /// ([`ParamStore::take_persist_queue`]).
    pub persist: bool,
}

impl SetOutcome {
    /// True for names that are not in the catalog.
    pub fn is_unknown(&self) -> bool {
        self.recognition == Recognition::Unknown
    }
}

/// Parameters never written to the profile database although their source persists: they
/// choose or reset the database itself.
pub const NOT_PERSISTED: &[&str] = &["profile", "resetsettings"];

/// Whether values of `name` may be written to the profile database: not a secret (see
/// [`is_secret`]; secrets go to the OS keyring or come from the configuration each time) and
/// not in [`NOT_PERSISTED`].
pub fn is_persistable(name: &str) -> bool {
    let canonical = Registry::global().canonical_name(name).unwrap_or(name);
    !is_secret(canonical)
        && !NOT_PERSISTED
            .iter()
            .any(|n| n.eq_ignore_ascii_case(canonical.trim()))
}

/// One change for the profile's `settings` table, produced by [`ParamStore::take_persist_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingWrite {
    /// Canonical name (custom keys as given).
    pub name: String,
    /// New stored value; `None` deletes the stored row (after `DEF`).
    pub value: Option<String>,
}

/// What one source says about one parameter.
#[derive(Clone, PartialEq, Eq)]
enum Slot {
    /// A value (possibly empty: cleared with `NULL` or `""`).
    Value(String),
    /// `DEF`: the built-in default, hiding the sources below.
    Default,
}

/// One value of one source.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    /// Spelling shown in listings (canonical for known params, as given for custom keys).
    name: String,
    slot: Slot,
    /// Who wrote it (two sources share the SIP header level).
    source: Source,
    /// Written with the `ucfg_` prefix: a stored value of the same parameter wins over it.
    yields_to_stored: bool,
}

/// The current parameter values of one phone, layered by [`Source`].
///
/// Each source has its own layer; the effective value of a parameter is the one of the highest
/// layer that has it (behaviours.md §2.2; see [`Source`] for the order), except that a value
/// written with the `ucfg_` prefix is skipped when the stored layer has the parameter. `DEF`
/// in a layer means "the built-in default" and hides the layers below; `NULL` and `""` clear
/// the value to empty.
///
/// Every parameter of the catalog can be set and read, including `browser-engine` scope rows:
/// those are accepted, stored and returned by [`get`](Self::get) for compatibility, but have no
/// effect in this engine. Names are case-insensitive; aliases are stored under the canonical
/// name. `Debug` output redacts secrets (see [`is_secret`]).
///
/// Persistence: writes from sources that persist ([`Source::persists`]) also update the
/// stored layer and queue a [`SettingWrite`] for the profile database (see
/// [`take_persist_queue`](Self::take_persist_queue)), unless the value is unchanged, the name
/// is written with `ucfg_` (a default that must not replace the user's value) or the parameter
/// is not persistable ([`is_persistable`]: secrets, `profile`, `resetsettings`).
#[derive(Clone, Default)]
pub struct ParamStore {
    /// One map per precedence level ([`Source::level`]): lower-case name -> entry.
    layers: [BTreeMap<String, Entry>; Source::LEVELS],
    /// Pending database changes, by lower-case name (later writes replace earlier ones).
    persist_queue: BTreeMap<String, SettingWrite>,
    /// Counts the writes that may have changed an effective value (see
    /// [`revision`](Self::revision)).
    revision: u64,
}

impl ParamStore {
    /// A store where every parameter has its default value.
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    /// Sets `name` from a string at run time, as `setparameter(name, value)` does: the same as
    /// [`set_from`](Self::set_from) with [`Source::Runtime`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<SetOutcome, ParamError> {
        self.set_from(Source::Runtime, name, value)
    }

    /// Sets `name` from a string in the layer of `source`.
    ///
    /// - A `ucfg_` name prefix (any case) is removed; the value then gives way to a stored
    ///   value of the parameter and is not persisted.
    /// - An `encrypted__3__` value is decoded first ([`decrypt_value`]).
    /// - `"DEF"` puts the parameter back to its default (hiding lower layers; deletes the
    ///   stored value when the source persists); `"NULL"` and `""` clear it to empty.
    /// - Booleans accept `true/false/1/0/yes/no` (any case) and are stored as `true`/`false`.
    /// - Numbers accept surrounding whitespace and are stored as plain decimals; enumerated and
    ///   ranged numbers refuse other values; enumerations containing 0 and 1 also accept
    ///   `true`/`false`.
    /// - Strings are stored verbatim.
    /// - Unknown names are stored as strings and reported as [`Recognition::Unknown`].
    ///
    /// On error nothing changes.
    pub fn set_from(
        &mut self,
        source: Source,
        name: &str,
        value: &str,
    ) -> Result<SetOutcome, ParamError> {
        let name = name.trim();
        let (name, ucfg) = match strip_ucfg_prefix(name) {
            Some(rest) => (rest.trim(), true),
            None => (name, false),
        };
        if name.is_empty() {
            return Err(ParamError::EmptyName);
        }
        let registry = Registry::global();
        let def = registry.lookup(name);
        let recognition = match def {
            None => Recognition::Unknown,
            Some(d) if d.name.eq_ignore_ascii_case(name) => Recognition::Known,
            Some(_) => Recognition::Alias,
        };
        let stored_name = def.map_or(name, |d| d.name).to_owned();
        let decoded = decrypt_value(value).map_err(|e| ParamError::Encrypted {
            name: stored_name.clone(),
            reason: e.to_string(),
        })?;
        let slot = match decoded.trim() {
            DEF_VALUE => Slot::Default,
            NULL_VALUE => Slot::Value(String::new()),
            _ => match def {
                Some(d) => Slot::Value(normalise(d, &decoded).map_err(|e| match e {
                    // show what was given, not the decoded text
                    ParamError::InvalidValue { name, expected, .. } if is_encrypted(value) => {
                        ParamError::InvalidValue {
                            name,
                            value: value.trim().to_owned(),
                            expected,
                        }
                    }
                    other => other,
                })?),
                None => Slot::Value(decoded.into_owned()),
            },
        };
        let key = stored_name.to_ascii_lowercase();
        let before = self.get(&key);
        let entry = Entry {
            name: stored_name.clone(),
            slot,
            source,
            yields_to_stored: ucfg && source != Source::Stored,
        };
        let persist = source.persists() && !ucfg && is_persistable(&stored_name);
        let mut queued = false;
        if source == Source::Stored {
            self.write_stored(&key, entry);
        } else {
            if persist {
                queued = self.persist_entry(&key, &entry);
            }
            self.layers[source.level()].insert(key.clone(), entry);
        }
        let effective = self
            .resolve(&key)
            .is_some_and(|(level, _)| level == source.level());
        let changed = self.get(&key) != before;
        if changed {
            self.revision += 1;
        }
        Ok(SetOutcome {
            name: stored_name,
            recognition,
            changed,
            source,
            effective,
            persist: queued,
        })
    }

    /// Applies `pairs` in order with [`set_from`](Self::set_from); one result per pair (a
    /// refused pair does not stop the others). Use it with the parsers of
    /// [`sources`](super::sources), e.g. `store.set_many(Source::Url, parse_url_params(url))`.
    pub fn set_many<I, K, V>(
        &mut self,
        source: Source,
        pairs: I,
    ) -> Vec<(String, Result<SetOutcome, ParamError>)>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let r = self.set_from(source, k.as_ref(), v.as_ref());
                (k.as_ref().to_owned(), r)
            })
            .collect()
    }

    /// Writes `entry` to the stored layer (a `DEF` slot removes it: the database never keeps
    /// `DEF`).
    fn write_stored(&mut self, key: &str, entry: Entry) {
        let stored = &mut self.layers[Source::Stored.level()];
        match entry.slot {
            Slot::Default => {
                stored.remove(key);
            }
            Slot::Value(_) => {
                stored.insert(key.to_owned(), entry);
            }
        }
    }

    /// Mirrors a persisting write into the stored layer and queues it for the database when
    /// it changes what is stored. Returns whether something was queued.
    fn persist_entry(&mut self, key: &str, entry: &Entry) -> bool {
        let current = self.layers[Source::Stored.level()]
            .get(key)
            .map(|e| e.slot.clone());
        let new_value = match &entry.slot {
            Slot::Value(v) => Some(v.clone()),
            Slot::Default => None,
        };
        let unchanged = match (&current, &new_value) {
            (Some(Slot::Value(c)), Some(n)) => c == n,
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return false;
        }
        self.write_stored(
            key,
            Entry {
                yields_to_stored: false,
                source: Source::Stored,
                ..entry.clone()
            },
        );
        self.persist_queue.insert(
            key.to_owned(),
            SettingWrite {
                name: entry.name.clone(),
                value: new_value,
            },
        );
        true
    }

    /// The entry giving `key` (lower-case canonical) its effective value, with its level.
    fn resolve(&self, key: &str) -> Option<(usize, &Entry)> {
        let stored_has = self.layers[Source::Stored.level()].contains_key(key);
        self.layers
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(level, layer)| layer.get(key).map(|e| (level, e)))
            .find(|(_, e)| !(e.yields_to_stored && stored_has))
    }

    fn key_of(name: &str) -> String {
        let name = name.trim();
        let name = strip_ucfg_prefix(name).map_or(name, str::trim);
        Registry::global()
            .lookup(name)
            .map_or(name, |d| d.name)
            .to_ascii_lowercase()
    }

    /// Current value, or the effective default, or `""` (what `getparameter` returns).
    pub fn get(&self, name: &str) -> String {
        self.get_str(name).to_owned()
    }

    /// Like [`get`](Self::get) without allocating.
    pub fn get_str(&self, name: &str) -> &str {
        if let Some((
            _,
            Entry {
                slot: Slot::Value(v),
                ..
            },
        )) = self.resolve(&Self::key_of(name))
        {
            return v;
        }
        if let Some(v) = self.extra_option(name) {
            return v;
        }
        Registry::global()
            .lookup(name.trim())
            .and_then(|d| d.default.as_deref())
            .unwrap_or("")
    }

    /// The value the `extraoption` list (`key=value;key2=value2`) gives a parameter that no
    /// source sets: it stands in for the built-in default, below every explicit value. Names
    /// may be aliases; the last entry of a name wins; a value the parameter would refuse is
    /// ignored (as if absent), so the list can never hold an invalid value.
    fn extra_option(&self, name: &str) -> Option<&str> {
        // Every read of a parameter at its default comes here: the usual empty list costs one
        // lookup and no allocation (the key is already canonical and lower-case).
        let list = match self.resolve("extraoption") {
            Some((
                _,
                Entry {
                    slot: Slot::Value(list),
                    ..
                },
            )) if !list.is_empty() => list,
            _ => return None,
        };
        let registry = Registry::global();
        let def = registry.lookup(name.trim())?;
        if def.name.eq_ignore_ascii_case("extraoption") {
            return None;
        }
        list.rsplit(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| {
                registry
                    .lookup(k.trim())
                    .is_some_and(|d| d.name == def.name)
            })
            .map(|(_, v)| v.trim())
            .filter(|v| normalise(def, v).is_ok())
    }

    /// The source giving `name` its current value; `None` when the built-in default applies
    /// (no source has it, or the highest one says `DEF`).
    pub fn source_of(&self, name: &str) -> Option<Source> {
        match self.resolve(&Self::key_of(name)) {
            Some((_, e)) if matches!(e.slot, Slot::Value(_)) => Some(e.source),
            _ => None,
        }
    }

    /// The value `source`'s layer holds for `name`: `Some("")` when cleared, `None` when the
    /// layer has nothing or says `DEF`. (`SipHeader` and `SipHeaderPersist` share a layer.)
    pub fn layer_value(&self, source: Source, name: &str) -> Option<&str> {
        match self.layers[source.level()].get(&Self::key_of(name)) {
            Some(Entry {
                slot: Slot::Value(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }

    /// Boolean view of the value. A cleared (empty) value falls back to the default, because
    /// "cleared" means "use the built-in behaviour"; `None` when neither parses as a boolean.
    /// Numbers: 0 is false, any other integer true.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.typed(name, parse_bool_like)
    }

    /// Integer view of the value (surrounding whitespace ignored; booleans read as 1/0). A
    /// cleared value falls back to the default; `None` when neither parses.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.typed(name, |s| {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| parse_bool(t).map(i64::from))
        })
    }

    fn typed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let current = self.get_str(name);
        if !current.trim().is_empty() {
            return parse(current);
        }
        Registry::global()
            .lookup(name)
            .and_then(|d| d.default.as_deref())
            .and_then(parse)
    }

    /// True when `name` has an explicitly set value (including a cleared one) in the source
    /// that decides it (false when it is at its default, also after `DEF`).
    pub fn is_set(&self, name: &str) -> bool {
        self.source_of(name).is_some()
    }

    /// Effective explicitly set values as (name, value), sorted by lower-case name. Values are
    /// raw: pass them through [`redact`] before logging.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut keys: Vec<&String> = self.layers.iter().flat_map(|l| l.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| match self.resolve(k) {
                Some((_, e)) => match &e.slot {
                    Slot::Value(v) => Some((e.name.as_str(), v.as_str())),
                    Slot::Default => None,
                },
                None => None,
            })
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Current value safe for logs (secrets replaced by [`REDACTED`]).
    pub fn display_value(&self, name: &str) -> String {
        redact(name, self.get_str(name)).to_owned()
    }

    /// Forgets every value of every source and the pending database changes (all parameters
    /// back to default; the database is not touched).
    pub fn reset_all(&mut self) {
        self.revision += 1;
        self.layers.iter_mut().for_each(BTreeMap::clear);
        self.persist_queue.clear();
    }

    /// Replaces the stored layer with rows read from the profile database (at start-up, or
    /// after switching `profile`). Rows are validated like any value; refused rows are skipped
    /// and returned with their error (the caller logs them, they do not stop the others).
    /// Nothing is queued for the database.
    pub fn load_stored<I, K, V>(&mut self, rows: I) -> Vec<(String, ParamError)>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.revision += 1;
        self.layers[Source::Stored.level()].clear();
        let mut refused = Vec::new();
        for (k, v) in rows {
            if let Err(e) = self.set_from(Source::Stored, k.as_ref(), v.as_ref()) {
                refused.push((k.as_ref().to_owned(), e));
            }
        }
        refused
    }

    /// Drops a cleared (empty) value of `name` from `source`'s layer, so lower layers apply
    /// again; returns whether there was one. For values the server teaches (a voicemail
    /// number) when the user's "cleared" means "not known". Values and `DEF` stay.
    pub fn drop_cleared(&mut self, source: Source, name: &str) -> bool {
        let key = Self::key_of(name);
        self.revision += 1;
        let layer = &mut self.layers[source.level()];
        match layer.get(&key) {
            Some(Entry {
                slot: Slot::Value(v),
                ..
            }) if v.trim().is_empty() => layer.remove(&key).is_some(),
            _ => false,
        }
    }

    /// Forgets the stored layer, as `resetsettings=true` at start-up does (the caller also
    /// clears the database: `Profile::delete_settings`). Pending database writes are dropped.
    pub fn clear_stored(&mut self) {
        self.revision += 1;
        self.layers[Source::Stored.level()].clear();
        self.persist_queue.clear();
    }

    /// What `delsettings(1|2)` means for the values in memory: the stored layer and what the
    /// user, the server and the browser contributed in this session (`setparameter`,
    /// `scurl_setparameters`, `x-mparam(p)`, cookies) are forgotten; the deployment's own
    /// configuration (static configuration and URL parameters) stays, as it would after a
    /// restart of the page. Pending database writes are dropped (the caller clears the
    /// database: `Profile::delete_data`).
    pub fn forget_user_settings(&mut self) {
        self.revision += 1;
        for source in [
            Source::Stored,
            Source::Cookie,
            Source::Scurl,
            Source::SipHeader,
            Source::Runtime,
        ] {
            self.layers[source.level()].clear();
        }
        self.persist_queue.clear();
    }

    /// A number that changes whenever an effective value may have changed (it only grows):
    /// an observer that remembers it can skip re-reading the values while it stays the same.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// True when writes wait for the profile database.
    pub fn has_pending_persist(&self) -> bool {
        !self.persist_queue.is_empty()
    }

    /// Takes the changes to write to the profile database, in name order (one per parameter:
    /// the last write wins). Secrets, `ucfg_` values, `x-mparam` values and the parameters of
    /// [`NOT_PERSISTED`] never appear. Write them with `Profile::write_settings`; on failure
    /// give them back with [`requeue`](Self::requeue) or drop them (the values stay in memory).
    pub fn take_persist_queue(&mut self) -> Vec<SettingWrite> {
        std::mem::take(&mut self.persist_queue)
            .into_values()
            .collect()
    }

    /// Puts writes back into the queue (after a failed database write), unless a newer write
    /// for the same parameter was queued meanwhile.
    pub fn requeue(&mut self, writes: Vec<SettingWrite>) {
        for w in writes {
            self.persist_queue
                .entry(w.name.to_ascii_lowercase())
                .or_insert(w);
        }
    }
}

impl fmt::Debug for ParamStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.entries() {
            map.entry(&name, &redact(name, value));
        }
        map.finish()
    }
}

/// Validates and normalises `value` for `def`.
fn normalise(def: &ParamDef, value: &str) -> Result<String, ParamError> {
    let trimmed = value.trim();
    let invalid = |expected: String| ParamError::InvalidValue {
        name: def.name.to_owned(),
        value: redact(def.name, value).to_owned(),
        expected,
    };
    match &def.kind {
        ParamKind::String => Ok(value.to_owned()),
        // A cleared typed value: empty or whitespace only.
        ParamKind::Bool | ParamKind::Number(_) if trimmed.is_empty() => Ok(String::new()),
        ParamKind::Bool => parse_bool(trimmed)
            .map(|b| b.to_string())
            .ok_or_else(|| invalid("a boolean (true/false, 1/0, yes/no)".to_owned())),
        ParamKind::Number(rule) => {
            let n = trimmed.parse::<i64>().ok().or_else(|| {
                rule.accepts_bool_spelling()
                    .then(|| parse_bool(trimmed).map(i64::from))
                    .flatten()
            });
            match n {
                Some(n) if rule.allows(n) => Ok(n.to_string()),
                _ => Err(invalid(describe_number(rule))),
            }
        }
    }
}

fn describe_number(rule: &NumberRule) -> String {
    if rule.accepts_bool_spelling() {
        format!("{} (true/false stand for 1/0)", rule.describe())
    } else {
        rule.describe()
    }
}

/// `true/false/1/0/yes/no`, case-insensitive.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if ["true", "1", "yes"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["false", "0", "no"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
    {
        Some(false)
    } else {
        None
    }
}

/// [`parse_bool`], plus any integer (0 = false, otherwise true) for numeric parameters read as
/// booleans.
fn parse_bool_like(s: &str) -> Option<bool> {
    parse_bool(s).or_else(|| s.trim().parse::<i64>().ok().map(|n| n != 0))
}
