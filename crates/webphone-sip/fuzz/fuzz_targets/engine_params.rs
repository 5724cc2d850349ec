//! Parameter input of the engine: the multi-account list (`extraregisteraccounts`,
//! `accounts::parse_accounts`), parameter value validation (`ParamStore::set_from` at every
//! source, `NULL`/`DEF`, `encrypted__3__` values) and the parsers of the other parameter
//! sources (`wp_` URL query, cookies, `x-mparam` headers, `scurl_setparameters` answers).
//!
//! Input: `name \0 value` (no NUL: the whole input is the value of a catalog parameter
//! picked by its first byte). Nothing may panic; a value the store accepted reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone_engine::accounts::parse_accounts;
use webphone_engine::params::{
    decrypt_value, parse_cookies, parse_mparam, parse_scurl_answer, parse_url_params, ParamStore,
    Registry, Source,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let registry = Registry::global();
    let (name, value) = match text.split_once('\0') {
        Some((n, v)) => (n.to_string(), v),
        None => {
            let i = data.first().map_or(0, |b| usize::from(*b)) % registry.len().max(1);
            let def = registry.iter().nth(i).map(|d| d.name.to_string());
            (def.unwrap_or_default(), text.as_ref())
        }
    };
    let parsed = parse_accounts(value);
    for a in &parsed.accounts {
        let _ = a.name();
        assert!(!a.server.is_empty() && !a.username.is_empty());
    }
    let _ = decrypt_value(value);
    let mut store = ParamStore::new();
    for source in [Source::Static, Source::Url, Source::Runtime] {
        if store.set_from(source, &name, value).is_ok() {
            let _ = store.get(&name);
            let _ = store.display_value(&name);
        }
    }
    let _ = store.set(&name, "DEF");
    let _ = store.set(&name, "NULL");
    let _ = store.take_persist_queue();
    for (k, v) in parse_url_params(value)
        .into_iter()
        .chain(parse_cookies(value))
        .chain(parse_mparam(value))
        .chain(parse_scurl_answer(value))
    {
        let _ = store.set_from(Source::Url, &k, &v);
    }
});
