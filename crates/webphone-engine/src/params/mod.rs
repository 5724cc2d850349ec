//! Parameter registry: the catalog of every `webphone_api` parameter and the store of their
//! current values.
//!
//! - [`Registry`]: the static catalog (`data/parameters.tsv`, embedded), parsed once; lookup
//!   by case-insensitive name with old names / alternative spellings resolved ([`ALIASES`]).
//! - [`ParamStore`]: current values; `setparameter`/`getparameter` semantics including the
//!   special values `NULL` (clear) and `DEF` (back to default). `browser-engine` scope
//!   parameters are accepted, stored and returned but have no effect in this engine.
//! - [`is_secret`] / [`redact`]: keep passwords and similar values out of logs.
//!
//! Not here yet (later issue): persistence, precedence between parameter sources (a `Source`
//! enum; see the note on the store's entry type), `ucfg_` / `wp_` prefixes, `encrypted__3__`
//! values and profiles.

mod catalog;
mod store;

#[cfg(test)]
mod tests;

pub use catalog::{
    EnumValue, KindOverride, NumberRule, NumberRuleOverride, ParamDef, ParamKind, Registry, Scope,
    ALIASES, CATALOG_TSV, DEFAULT_OVERRIDES, RULE_OVERRIDES, TYPE_OVERRIDES,
};
pub use store::{
    is_secret, parse_bool, redact, ParamError, ParamStore, Recognition, SetOutcome, DEF_VALUE,
    NULL_VALUE, REDACTED,
};
