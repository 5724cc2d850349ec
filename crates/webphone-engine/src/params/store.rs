//! Current parameter values: string in, validated and normalised per [`ParamKind`].

use std::collections::BTreeMap;
use std::fmt;

use super::catalog::{NumberRule, ParamDef, ParamKind, Registry};

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

/// Result of an accepted [`ParamStore::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Name the value is stored under (canonical spelling for known parameters).
    pub name: String,
    pub recognition: Recognition,
    /// Whether [`ParamStore::get`] now returns something different (change-notification hook).
    pub changed: bool,
}

impl SetOutcome {
    /// True for names that are not in the catalog.
    pub fn is_unknown(&self) -> bool {
        self.recognition == Recognition::Unknown
    }
}

/// One explicitly set value.
///
/// Later issue (persistence and precedence, behaviours.md §2.2): add a `source: Source` field
/// here (`Source` = Default < Stored < Static < Cookie < Url < ScurlSetParameters < SipHeader <
/// Runtime, `ucfg_` flipping Stored/Static) and let [`ParamStore::apply`] refuse a write whose
/// source ranks below the entry's current source. `set()` would become
/// `set_from(Source::Runtime, ..)`. `encrypted__3__` decoding belongs in `set_from` before
/// [`normalise`] runs.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    /// Spelling shown in listings (canonical for known params, as given for custom keys).
    name: String,
    value: String,
}

/// The current parameter values of one phone.
///
/// Every parameter of the catalog can be set and read, including `browser-engine` scope rows:
/// those are accepted, stored and returned by [`get`](Self::get) for compatibility, but have no
/// effect in this engine. Names are case-insensitive; aliases are stored under the canonical
/// name. `Debug` output redacts secrets (see [`is_secret`]).
#[derive(Clone, Default)]
pub struct ParamStore {
    /// lower-case name -> explicitly set value; absent = default.
    entries: BTreeMap<String, Entry>,
}

impl ParamStore {
    /// A store where every parameter has its default value.
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    /// Sets `name` from a string, as `setparameter(name, value)` does.
    ///
    /// - `"DEF"` puts the parameter back to its default; `"NULL"` and `""` clear it to empty.
    /// - Booleans accept `true/false/1/0/yes/no` (any case) and are stored as `true`/`false`.
    /// - Numbers accept surrounding whitespace and are stored as plain decimals; enumerated and
    ///   ranged numbers refuse other values; enumerations containing 0 and 1 also accept
    ///   `true`/`false`.
    /// - Strings are stored verbatim.
    /// - Unknown names are stored as strings and reported as [`Recognition::Unknown`].
    ///
    /// On error nothing changes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<SetOutcome, ParamError> {
        let name = name.trim();
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
        let new = match value.trim() {
            DEF_VALUE => None,
            NULL_VALUE => Some(String::new()),
            _ => match def {
                Some(d) => Some(normalise(d, value)?),
                None => Some(value.to_owned()),
            },
        };
        let changed = self.apply(stored_name.clone(), new);
        Ok(SetOutcome {
            name: stored_name,
            recognition,
            changed,
        })
    }

    /// Writes (`Some`) or removes (`None`, back to default) one value; returns whether the
    /// effective value changed. The single place a future `Source` precedence check goes.
    fn apply(&mut self, name: String, new: Option<String>) -> bool {
        let before = self.get(&name);
        let key = name.to_ascii_lowercase();
        match new {
            Some(value) => {
                self.entries.insert(key.clone(), Entry { name, value });
            }
            None => {
                self.entries.remove(&key);
            }
        }
        self.get(&key) != before
    }

    /// Current value, or the effective default, or `""` (what `getparameter` returns).
    pub fn get(&self, name: &str) -> String {
        self.get_str(name).to_owned()
    }

    /// Like [`get`](Self::get) without allocating.
    pub fn get_str(&self, name: &str) -> &str {
        let registry = Registry::global();
        let def = registry.lookup(name);
        let key = def.map_or(name.trim(), |d| d.name).to_ascii_lowercase();
        if let Some(e) = self.entries.get(&key) {
            return &e.value;
        }
        def.and_then(|d| d.default.as_deref()).unwrap_or("")
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

    /// True when `name` has an explicitly set value (including a cleared one).
    pub fn is_set(&self, name: &str) -> bool {
        let def = Registry::global().lookup(name);
        let key = def.map_or(name.trim(), |d| d.name).to_ascii_lowercase();
        self.entries.contains_key(&key)
    }

    /// Explicitly set values as (name, value), sorted by lower-case name. Values are raw:
    /// pass them through [`redact`] before logging.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .values()
            .map(|e| (e.name.as_str(), e.value.as_str()))
    }

    /// Current value safe for logs (secrets replaced by [`REDACTED`]).
    pub fn display_value(&self, name: &str) -> String {
        redact(name, self.get_str(name)).to_owned()
    }

    /// Forgets every explicitly set value (all parameters back to default).
    pub fn reset_all(&mut self) {
        self.entries.clear();
    }
}

impl fmt::Debug for ParamStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for e in self.entries.values() {
            map.entry(&e.name, &redact(&e.name, &e.value));
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
