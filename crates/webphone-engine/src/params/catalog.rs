//! The static parameter catalog: `data/parameters.tsv` parsed once into a [`Registry`].
//!
//! The TSV is our own clean-room catalog (columns: name, type, default, section, values,
//! summary, scope). Its `type` and `default` columns are written for humans, so they are
//! normalised here by a few generic rules plus three small, explicit override tables
//! ([`TYPE_OVERRIDES`], [`DEFAULT_OVERRIDES`], [`RULE_OVERRIDES`]) and the alias table
//! ([`ALIASES`]). Every override carries a one-line reason.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// The catalog shipped with the crate (287 rows plus a header).
pub const CATALOG_TSV: &str = include_str!("../../data/parameters.tsv");

/// Header expected on the first line of the catalog.
const HEADER: [&str; 7] = [
    "name", "type", "default", "section", "values", "summary", "scope",
];

/// Who a parameter is for (the catalog's `scope` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Behaviour of the SIP/media engine.
    Core,
    /// Presentation in a skin (softphone / click-to-call pages).
    Ui,
    /// Only meaningful for the in-browser engines of the original product (WebRTC, Java
    /// applet, Flash, NS installer, app-store offers). This engine accepts, stores and
    /// returns such parameters through `getparameter`, but they have **no effect** here.
    BrowserEngine,
    /// Server integration (action URLs, provisioning, links to web APIs).
    Integration,
}

impl Scope {
    /// Parses the catalog spelling (`core`, `ui`, `browser-engine`, `integration`).
    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "core" => Some(Scope::Core),
            "ui" => Some(Scope::Ui),
            "browser-engine" => Some(Scope::BrowserEngine),
            "integration" => Some(Scope::Integration),
            _ => None,
        }
    }

    /// The catalog spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Core => "core",
            Scope::Ui => "ui",
            Scope::BrowserEngine => "browser-engine",
            Scope::Integration => "integration",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted value of an enumerated numeric parameter (`N=meaning` in the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    pub value: i64,
    pub meaning: String,
}

/// What a numeric parameter accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberRule {
    /// Any `i64` (units, timeouts, sizes; "advised" ranges are not enforced).
    Any,
    /// An inclusive range.
    Range { min: i64, max: i64 },
    /// Exactly these values (from a `values` column made only of `N=meaning` items).
    OneOf(Vec<EnumValue>),
}

impl NumberRule {
    /// Whether `v` is acceptable.
    pub fn allows(&self, v: i64) -> bool {
        match self {
            NumberRule::Any => true,
            NumberRule::Range { min, max } => (*min..=*max).contains(&v),
            NumberRule::OneOf(list) => list.iter().any(|e| e.value == v),
        }
    }

    /// Whether the boolean spellings `true`/`false` (and `yes`/`no`) may stand for 1/0:
    /// enumerations where 0 reads "no/disable/off/never" and 1 reads "yes/enable/auto",
    /// e.g. `backgroundcalls`, which the manual says to "set to true" although it is numeric
    /// (JavaScript integrators often pass booleans). Not `transport` (0/1 = UDP/TCP) nor
    /// `use_pcmu` (1 = "do not offer").
    pub fn accepts_bool_spelling(&self) -> bool {
        let NumberRule::OneOf(list) = self else {
            return false;
        };
        let first_word = |v: i64| {
            list.iter().find(|e| e.value == v).map(|e| {
                e.meaning
                    .split(|c: char| c.is_whitespace() || matches!(c, '(' | ',' | ':'))
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            })
        };
        let off = ["no", "disable", "disabled", "off", "never"];
        let on = ["yes", "enable", "enabled", "auto"];
        matches!(first_word(0), Some(w) if off.contains(&w.as_str()))
            && matches!(first_word(1), Some(w) if on.contains(&w.as_str()))
    }

    /// Human readable description of the accepted values, used in error messages.
    pub fn describe(&self) -> String {
        match self {
            NumberRule::Any => "an integer".to_owned(),
            NumberRule::Range { min, max } => format!("an integer from {min} to {max}"),
            NumberRule::OneOf(list) => {
                let items: Vec<String> = list
                    .iter()
                    .map(|e| format!("{}={}", e.value, e.meaning))
                    .collect();
                format!("one of: {}", items.join("; "))
            }
        }
    }
}

/// Value type of a parameter. All values travel as strings (as in `setparameter`); the kind
/// decides how a string is validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamKind {
    /// Stored as `true` / `false`.
    Bool,
    /// Stored as a decimal `i64`.
    Number(NumberRule),
    /// Stored verbatim.
    String,
}

impl ParamKind {
    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::Bool => "boolean",
            ParamKind::Number(_) => "number",
            ParamKind::String => "string",
        }
    }
}

/// One catalog row, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDef {
    /// Name as spelled in the catalog (lookups are case-insensitive).
    pub name: &'static str,
    pub kind: ParamKind,
    /// Effective default as `getparameter` returns it; `None` = no default (returns "").
    pub default: Option<String>,
    pub scope: Scope,
    pub section: &'static str,
    /// Documentation of accepted values (free text from the catalog).
    pub values: &'static str,
    pub summary: &'static str,
    /// For old/alternative names: the canonical parameter this row stands for.
    pub alias_of: Option<&'static str>,
    /// The catalog's `type` column, untouched.
    pub raw_type: &'static str,
    /// The catalog's `default` column, untouched.
    pub raw_default: &'static str,
}

impl ParamDef {
    /// True when this parameter is accepted and stored but has no effect in this engine.
    pub fn is_browser_engine_only(&self) -> bool {
        self.scope == Scope::BrowserEngine
    }
}

// ---------------------------------------------------------------------------------------------
// Override tables
// ---------------------------------------------------------------------------------------------

/// Kind forced by [`TYPE_OVERRIDES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindOverride {
    Bool,
    Number,
    String,
}

/// Rows whose `type` column is unhelpful: (name, kind, reason).
pub const TYPE_OVERRIDES: &[(&str, KindOverride, &str)] = &[
    (
        "extraregisteraccounts",
        KindOverride::String,
        "typed boolean in the manual but its value is an account list",
    ),
    (
        "inbounddtmf",
        KindOverride::String,
        "type and values not documented: accept anything",
    ),
    (
        "outbounddtmf",
        KindOverride::String,
        "type and values not documented: accept anything",
    ),
    (
        "callforwardonnoanswertimeout",
        KindOverride::Number,
        "type not stated but the default is a number of seconds (15)",
    ),
    (
        "voicerecformat",
        KindOverride::String,
        "build-time option of the original NS build, kept verbatim",
    ),
    (
        "bundlePolicy",
        KindOverride::String,
        "WebRTC peer-connection option passed through verbatim (no effect here)",
    ),
    (
        "iceCandidatePoolSize",
        KindOverride::String,
        "WebRTC peer-connection option passed through verbatim (no effect here)",
    ),
    (
        "iceTransportPolicy",
        KindOverride::String,
        "WebRTC peer-connection option passed through verbatim (no effect here)",
    ),
    (
        "rtcpMuxPolicy",
        KindOverride::String,
        "WebRTC peer-connection option passed through verbatim (no effect here)",
    ),
];

const THEME_DEFAULT: &str = "unset means the skin stylesheet's own value";
const VENDOR_DEFAULT: &str = "vendor service in the original; no phone-home here (behaviours §27)";

/// Rows whose `default` column is not a plain literal: (name, effective default, reason).
/// `None` means "no default": `getparameter` returns "" and consumers use built-in behaviour.
pub const DEFAULT_OVERRIDES: &[(&str, Option<&str>, &str)] = &[
    (
        "registerinterval",
        Some("120"),
        "manual says 120 or 300; the shorter one keeps NAT bindings fresh and the registrar may raise it",
    ),
    (
        "loglevel",
        Some("1"),
        "not stated; 1 is the documented production level and never logs the password",
    ),
    (
        "realm",
        Some(""),
        "empty means: derived from serveraddress without its port",
    ),
    (
        "audiodevicein",
        Some(""),
        "empty means the OS default recording device",
    ),
    (
        "audiodeviceout",
        Some(""),
        "empty means the OS default playback device",
    ),
    (
        "audiodevicering",
        Some(""),
        "empty means the OS default playback device",
    ),
    (
        "screensharing",
        Some("1"),
        "manual states 1 as the default, its value list marks 0; take the explicit statement",
    ),
    (
        "autoaction",
        Some("0"),
        "manual states 0, its value list marks 1; 0 never dials on its own",
    ),
    (
        "callforwardonnoanswertimeout",
        Some("15"),
        "given as '15 seconds'",
    ),
    (
        "minserviceversion",
        None,
        "depends on the original's NS build; meaningless here",
    ),
    (
        "callnot_title",
        Some(""),
        "empty means: use brandname",
    ),
    (
        "callnot_body",
        Some("Incoming call from: PEERNAME"),
        "quoted literal in the catalog",
    ),
    (
        "callnot_icon",
        Some("notification_icon.png"),
        "quoted file name in the catalog (the skin resolves it under images/)",
    ),
    ("stunserveraddress", Some(""), VENDOR_DEFAULT),
    ("turnserveraddress", Some(""), VENDOR_DEFAULT),
    ("filetransferurl", Some(""), VENDOR_DEFAULT),
    ("logform_action", Some(""), VENDOR_DEFAULT),
    ("altexternpublicip", Some("0"), VENDOR_DEFAULT),
    ("geolocation", Some("0"), VENDOR_DEFAULT),
    ("usetunneling", Some("0"), VENDOR_DEFAULT),
    ("usemizutlsproxy", Some("0"), VENDOR_DEFAULT),
    (
        "autoprovisioning",
        Some("0"),
        "not stated; needs a central config server we do not provide",
    ),
    (
        "natopenpackets",
        Some("10"),
        "catalog: up to 10 packets are sent unless 0 disables it",
    ),
    (
        "enablenomicvoicewarning",
        Some("1"),
        "catalog: presumably on; only 0 (disable) is documented",
    ),
    (
        "multilinegui",
        Some("1"),
        "catalog: multi-line UI is on by default; only 0 (disable) is documented",
    ),
    (
        "defmute",
        Some("0"),
        "not stated; 0 (both directions) matches mute()'s own direction 0",
    ),
    (
        "pushnotifications",
        Some("-1"),
        "not stated; -1 (auto) as in backgroundcalls' value set",
    ),
    (
        "voicerecformat",
        None,
        "build-time option, no runtime default",
    ),
    ("bgcolor", None, THEME_DEFAULT),
    ("buttoncolor", None, THEME_DEFAULT),
    ("buttonhover", None, THEME_DEFAULT),
    ("tabselectedcolor", None, THEME_DEFAULT),
    ("fontcheme", None, THEME_DEFAULT),
    ("fontcwhite", None, THEME_DEFAULT),
    ("fontfamily", None, THEME_DEFAULT),
];

/// Numeric validation rules that the `values` column does not express: (name, rule, reason).
pub const RULE_OVERRIDES: &[(&str, NumberRuleOverride, &str)] = &[
    (
        "mediaencryption",
        NumberRuleOverride::Range(-1, 3),
        "-1 auto, 0 off, 1 when the peer offers, 2 SRTP required (SDES), and our extension 3: DTLS-SRTP offered (RFC 5763), encryption required",
    ),
    (
        "signalingport",
        NumberRuleOverride::Range(0, 65535),
        "a local port number; 0 = pick one and keep it",
    ),
    (
        "rtpport",
        NumberRuleOverride::Range(0, 65535),
        "a local port number; 0 = signalingport+2",
    ),
    (
        "autoupgrade",
        NumberRuleOverride::Any,
        "values column names only two notable values (5, 6), not the full set",
    ),
];

/// A const-friendly [`NumberRule`] for [`RULE_OVERRIDES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberRuleOverride {
    Any,
    Range(i64, i64),
}

/// Old names, FAQ spellings and documented misspellings: (alias, canonical, reason).
/// Aliases that are catalog rows keep their row (so the registry has all 287 rows) but resolve
/// to the canonical parameter for storage and lookup.
pub const ALIASES: &[(&str, &str, &str)] = &[
    (
        "haveloginpage",
        "useloginpage",
        "catalog: former name of useloginpage",
    ),
    (
        "hasincomingcallpopup",
        "incomingcallpopup",
        "catalog: old name of incomingcallpopup",
    ),
    (
        "hasincomingcall",
        "incomingcallpopup",
        "catalog: old name of incomingcallpopup",
    ),
    (
        "backgroundservice",
        "backgroundcalls",
        "FAQ name of the background/push switch; catalog: probably backgroundcalls",
    ),
    (
        "prefercodec",
        "prefcodec",
        "FAQ spelling; catalog: most likely the same setting as prefcodec",
    ),
    (
        "autocall",
        "autoaction",
        "FAQ name next to callto; catalog: most likely autoaction",
    ),
    (
        "webrtcserversaddress",
        "webrtcserveraddress",
        "FAQ misspelling noted in the catalog summary (no row of its own)",
    ),
    (
        "use_speexwwb",
        "use_speexuwb",
        "FAQ typo noted in the catalog summary (no row of its own)",
    ),
];

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

/// All known parameters, parsed once from [`CATALOG_TSV`].
#[derive(Debug)]
pub struct Registry {
    defs: Vec<ParamDef>,
    /// lower-case row name -> index in `defs`.
    rows: HashMap<String, usize>,
    /// lower-case alias -> index of the canonical row.
    aliases: HashMap<String, usize>,
    skipped: Vec<String>,
    duplicates: Vec<String>,
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

impl Registry {
    /// The registry built from the embedded catalog (parsed on first use).
    pub fn global() -> &'static Registry {
        GLOBAL.get_or_init(|| Registry::parse(CATALOG_TSV))
    }

    /// Parses a catalog. Malformed rows are skipped with a `tracing` warning; never panics.
    pub fn parse(tsv: &'static str) -> Registry {
        let mut reg = Registry {
            defs: Vec::new(),
            rows: HashMap::new(),
            aliases: HashMap::new(),
            skipped: Vec::new(),
            duplicates: Vec::new(),
        };
        for (lineno, line) in tsv.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&'static str> = line.split('\t').collect();
            if lineno == 0 && cols.first().map(|c| c.trim()) == Some(HEADER[0]) {
                if cols.len() != HEADER.len() {
                    tracing::warn!(
                        "parameter catalog header has {} columns, expected {}",
                        cols.len(),
                        HEADER.len()
                    );
                }
                continue;
            }
            match parse_row(&cols) {
                Ok(def) => {
                    let key = def.name.to_ascii_lowercase();
                    if reg.rows.contains_key(&key) {
                        tracing::warn!(
                            "parameter catalog line {}: duplicate name {}, row skipped",
                            lineno + 1,
                            def.name
                        );
                        reg.duplicates.push(def.name.to_owned());
                        continue;
                    }
                    reg.rows.insert(key, reg.defs.len());
                    reg.defs.push(def);
                }
                Err(why) => {
                    tracing::warn!("parameter catalog line {}: {why}; row skipped", lineno + 1);
                    reg.skipped.push(format!("line {}: {why}", lineno + 1));
                }
            }
        }
        reg.resolve_aliases();
        reg
    }

    /// Wires [`ALIASES`]: alias rows take the canonical row's kind and default.
    fn resolve_aliases(&mut self) {
        for &(alias, canonical, _) in ALIASES {
            let Some(&target) = self.rows.get(&canonical.to_ascii_lowercase()) else {
                tracing::warn!("parameter alias {alias}: target {canonical} not in catalog");
                continue;
            };
            let alias_key = alias.to_ascii_lowercase();
            self.aliases.insert(alias_key.clone(), target);
            if let Some(&row) = self.rows.get(&alias_key) {
                let (kind, default, name) = {
                    let t = &self.defs[target];
                    (t.kind.clone(), t.default.clone(), t.name)
                };
                if let Some(def) = self.defs.get_mut(row) {
                    def.kind = kind;
                    def.default = default;
                    def.alias_of = Some(name);
                }
            }
        }
    }

    /// Number of catalog rows (aliases that are rows included).
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// True when no row parsed.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// All rows in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = &ParamDef> {
        self.defs.iter()
    }

    /// The catalog row spelled `name` (case-insensitive), without alias resolution.
    pub fn row(&self, name: &str) -> Option<&ParamDef> {
        self.rows
            .get(&name.trim().to_ascii_lowercase())
            .and_then(|&i| self.defs.get(i))
    }

    /// The parameter `name` refers to (case-insensitive), aliases resolved to the canonical row.
    pub fn lookup(&self, name: &str) -> Option<&ParamDef> {
        let key = name.trim().to_ascii_lowercase();
        self.aliases
            .get(&key)
            .or_else(|| self.rows.get(&key))
            .and_then(|&i| self.defs.get(i))
    }

    /// Canonical spelling of a known parameter or alias.
    pub fn canonical_name(&self, name: &str) -> Option<&'static str> {
        self.lookup(name).map(|d| d.name)
    }

    /// Rows skipped as malformed while parsing (empty for the shipped catalog).
    pub fn skipped_rows(&self) -> &[String] {
        &self.skipped
    }

    /// Names skipped because an earlier row had the same name modulo case.
    pub fn duplicate_names(&self) -> &[String] {
        &self.duplicates
    }
}

// ---------------------------------------------------------------------------------------------
// Row normalisation
// ---------------------------------------------------------------------------------------------

fn parse_row(cols: &[&'static str]) -> Result<ParamDef, String> {
    let &[name, raw_type, raw_default, section, values, summary, scope] = cols else {
        return Err(format!(
            "{} columns instead of {}",
            cols.len(),
            HEADER.len()
        ));
    };
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("bad parameter name {name:?}"));
    }
    let scope = Scope::parse(scope).ok_or_else(|| format!("unknown scope {scope:?}"))?;
    let kind = match kind_override(name).or_else(|| base_kind(raw_type)) {
        Some(KindOverride::Bool) => ParamKind::Bool,
        Some(KindOverride::String) => ParamKind::String,
        Some(KindOverride::Number) => ParamKind::Number(number_rule(name, values)),
        None => {
            // Aliases ("-" type) get their target's kind in resolve_aliases().
            if !is_alias(name) {
                tracing::debug!("parameter {name}: type {raw_type:?} not understood, using string");
            }
            ParamKind::String
        }
    };
    let default = match default_override(name) {
        Some(d) => d.map(str::to_owned),
        None => match parse_default(raw_default) {
            DefaultParse::Value(v) => Some(v),
            DefaultParse::None => None,
            DefaultParse::Unclear => {
                tracing::debug!("parameter {name}: default {raw_default:?} not understood, unset");
                None
            }
        },
    };
    let kind = add_default_to_enum(kind, default.as_deref());
    Ok(ParamDef {
        name,
        kind,
        default,
        scope,
        section: section.trim(),
        values: values.trim(),
        summary: summary.trim(),
        alias_of: None,
        raw_type,
        raw_default,
    })
}

fn is_alias(name: &str) -> bool {
    ALIASES.iter().any(|(a, _, _)| a.eq_ignore_ascii_case(name))
}

fn kind_override(name: &str) -> Option<KindOverride> {
    TYPE_OVERRIDES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, k, _)| k)
}

fn default_override(name: &str) -> Option<Option<&'static str>> {
    DEFAULT_OVERRIDES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, d, _)| d)
}

/// Generic reading of the `type` column: `number`, `boolean`, `string`, optionally followed by
/// ` (inferred)`. Anything else (`-`, `- (not stated)`, ...) is `None`.
pub(crate) fn base_kind(raw: &str) -> Option<KindOverride> {
    let t = raw.trim().to_ascii_lowercase();
    let t = t.strip_suffix("(inferred)").map(str::trim).unwrap_or(&t);
    match t {
        "number" => Some(KindOverride::Number),
        "boolean" => Some(KindOverride::Bool),
        "string" => Some(KindOverride::String),
        _ => None,
    }
}

/// Result of reading the `default` column generically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefaultParse {
    Value(String),
    /// `-` or `- (not stated)`: no documented default.
    None,
    /// Needs an entry in [`DEFAULT_OVERRIDES`].
    Unclear,
}

pub(crate) fn parse_default(raw: &str) -> DefaultParse {
    let d = raw.trim();
    if d == "empty" || d.starts_with("empty (") {
        return DefaultParse::Value(String::new());
    }
    if d == "-" || d == "- (not stated)" {
        return DefaultParse::None;
    }
    if d == "true" || d == "false" {
        return DefaultParse::Value(d.to_owned());
    }
    if let Ok(n) = d.parse::<i64>() {
        return DefaultParse::Value(n.to_string());
    }
    DefaultParse::Unclear
}

fn number_rule(name: &str, values: &str) -> NumberRule {
    if let Some(&(_, rule, _)) = RULE_OVERRIDES
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
    {
        return match rule {
            NumberRuleOverride::Any => NumberRule::Any,
            NumberRuleOverride::Range(min, max) => NumberRule::Range { min, max },
        };
    }
    parse_number_rule(values)
}

/// `values` made only of `N=meaning` items separated by `;` (at least two) is an enumeration;
/// an item starting with `N..M` is an inclusive range; anything else accepts any integer.
pub(crate) fn parse_number_rule(values: &str) -> NumberRule {
    let items: Vec<&str> = values
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for item in &items {
        if let Some((min, max)) = parse_range_prefix(item) {
            return NumberRule::Range { min, max };
        }
    }
    let enumerated: Option<Vec<EnumValue>> = items.iter().map(|i| parse_enum_item(i)).collect();
    match enumerated {
        Some(list) if list.len() >= 2 => NumberRule::OneOf(list),
        _ => NumberRule::Any,
    }
}

fn parse_enum_item(item: &str) -> Option<EnumValue> {
    let (num, meaning) = item.split_once('=')?;
    let value = num.trim().parse::<i64>().ok()?;
    Some(EnumValue {
        value,
        meaning: meaning.trim().to_owned(),
    })
}

fn parse_range_prefix(item: &str) -> Option<(i64, i64)> {
    let head = item.split_whitespace().next()?;
    let (a, b) = head.split_once("..")?;
    let min = a.parse::<i64>().ok()?;
    let max = b.parse::<i64>().ok()?;
    (min <= max).then_some((min, max))
}

/// The effective default must always be accepted (e.g. `colortheme` defaults to 0, which its
/// value list does not name).
fn add_default_to_enum(kind: ParamKind, default: Option<&str>) -> ParamKind {
    match (kind, default.and_then(|d| d.parse::<i64>().ok())) {
        (ParamKind::Number(NumberRule::OneOf(mut list)), Some(d))
            if !list.iter().any(|e| e.value == d) =>
        {
            list.push(EnumValue {
                value: d,
                meaning: "default (not listed in the catalog)".to_owned(),
            });
            list.sort_by_key(|e| e.value);
            ParamKind::Number(NumberRule::OneOf(list))
        }
        (kind, _) => kind,
    }
}
