//! Parameter registry: the catalog of every `webphone_api` parameter and the store of their
//! current values.
//!
//! - [`Registry`]: the static catalog (`data/parameters.tsv`, embedded), parsed once; lookup
//!   by case-insensitive name with old names / alternative spellings resolved ([`ALIASES`]).
//! - [`ParamStore`]: current values, one layer per [`Source`] (stored < static < cookie < URL <
//!   `scurl_setparameters` < `x-mparam(p)` < run time), `setparameter`/`getparameter`
//!   semantics including the special values `NULL` (clear) and `DEF` (back to default), the
//!   `ucfg_` prefix, `encrypted__3__` values ([`crypt`]) and the queue of changes for the
//!   profile database (`crate::profile`). `browser-engine` scope parameters are accepted,
//!   stored and returned but have no effect in this engine.
//! - [`sources`]: the [`Source`] enum and pure parsers for `wp_` URL parameters, `wp_`
//!   cookies, `x-mparam` headers and `scurl_setparameters` answers.
//! - [`is_secret`] / [`redact`]: keep passwords and similar values out of logs. Secrets are
//!   never queued for the database ([`is_persistable`]).

mod catalog;
pub mod crypt;
pub mod sources;
mod store;

#[cfg(test)]
mod tests;

pub use catalog::{
    EnumValue, KindOverride, NumberRule, NumberRuleOverride, ParamDef, ParamKind, Registry, Scope,
    ALIASES, CATALOG_TSV, DEFAULT_OVERRIDES, RULE_OVERRIDES, TYPE_OVERRIDES,
};
pub use crypt::{decrypt_value, encrypt_value, CryptError, ENCRYPTED_PREFIX};
pub use sources::{
    parse_cookies, parse_mparam, parse_scurl_answer, parse_url_params, percent_decode, Source,
    UCFG_PREFIX, WP_PREFIX,
};
pub use store::{
    is_persistable, is_secret, parse_bool, redact, ParamError, ParamStore, Recognition, SetOutcome,
    SettingWrite, DEF_VALUE, NOT_PERSISTED, NULL_VALUE, REDACTED,
};
