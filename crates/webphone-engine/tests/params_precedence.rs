//! Parameter sources and precedence (behaviours.md §2.2): one scenario per rule, through the
//! public `ParamStore` API and the source parsers.
#![allow(clippy::unwrap_used)]

use webphone_engine::params::crypt::{decrypt_value_with_key, encrypt_value_with_key};
use webphone_engine::params::{
    encrypt_value, parse_cookies, parse_mparam, parse_scurl_answer, parse_url_params, ParamError,
    ParamStore, SettingWrite, Source,
};

/// Parameter used by most scenarios (a string without default).
const P: &str = "displayname";

fn store_with(layers: &[(Source, &str)]) -> ParamStore {
    let mut s = ParamStore::new();
    for (src, v) in layers {
        s.set_from(*src, P, v).unwrap();
    }
    s
}

#[test]
fn no_source_gives_the_builtin_default() {
    let s = ParamStore::new();
    assert_eq!(s.get("loglevel"), ParamStore::new().get("loglevel"));
    assert_eq!(s.source_of("loglevel"), None);
    assert!(!s.is_set("loglevel"));
}

#[test]
fn stored_value_beats_the_default() {
    let s = store_with(&[(Source::Stored, "stored")]);
    assert_eq!(s.get(P), "stored");
    assert_eq!(s.source_of(P), Some(Source::Stored));
}

#[test]
fn static_config_beats_the_stored_value() {
    let s = store_with(&[(Source::Stored, "stored"), (Source::Static, "static")]);
    assert_eq!(s.get(P), "static");
    assert_eq!(s.source_of(P), Some(Source::Static));
}

#[test]
fn ucfg_static_value_gives_way_to_a_stored_value() {
    let mut s = ParamStore::new();
    s.set_from(Source::Stored, P, "user choice").unwrap();
    let out = s
        .set_from(Source::Static, &format!("ucfg_{P}"), "deployment")
        .unwrap();
    assert_eq!(out.name, P);
    assert!(!out.effective);
    assert!(
        !out.persist,
        "a ucfg_ default must not overwrite the user's value"
    );
    assert_eq!(s.get(P), "user choice");
    assert_eq!(s.source_of(P), Some(Source::Stored));
}

#[test]
fn ucfg_static_value_applies_when_nothing_is_stored_and_is_not_persisted() {
    let mut s = ParamStore::new();
    let out = s.set_from(Source::Static, "UCFG_loglevel", "4").unwrap();
    assert!(out.effective);
    assert_eq!(s.get("loglevel"), "4");
    assert!(s.take_persist_queue().is_empty());
    // a later user value is stored and then wins over the ucfg_ default
    s.set("loglevel", "3").unwrap();
    assert_eq!(s.get("loglevel"), "3");
    let mut next = ParamStore::new();
    next.load_stored([("loglevel", "3")]);
    next.set_from(Source::Static, "ucfg_loglevel", "4").unwrap();
    assert_eq!(next.get("loglevel"), "3");
}

#[test]
fn cookie_beats_static_config() {
    let s = store_with(&[(Source::Static, "static"), (Source::Cookie, "cookie")]);
    assert_eq!(s.get(P), "cookie");
}

#[test]
fn url_parameter_beats_cookie() {
    let s = store_with(&[(Source::Cookie, "cookie"), (Source::Url, "url")]);
    assert_eq!(s.get(P), "url");
}

#[test]
fn scurl_answer_beats_url_parameter() {
    let s = store_with(&[(Source::Url, "url"), (Source::Scurl, "scurl")]);
    assert_eq!(s.get(P), "scurl");
}

#[test]
fn x_mparam_beats_scurl_answer() {
    let s = store_with(&[(Source::Scurl, "scurl"), (Source::SipHeader, "header")]);
    assert_eq!(s.get(P), "header");
}

#[test]
fn setparameter_beats_x_mparam_and_later_runtime_writes_replace_earlier_ones() {
    let mut s = store_with(&[(Source::SipHeader, "header"), (Source::Runtime, "first")]);
    assert_eq!(s.get(P), "first");
    let out = s.set(P, "second").unwrap();
    assert!(out.changed && out.effective);
    assert_eq!(s.get(P), "second");
    assert_eq!(s.source_of(P), Some(Source::Runtime));
}

#[test]
fn a_lower_source_written_later_is_shadowed_by_a_higher_one() {
    let mut s = store_with(&[(Source::Runtime, "runtime")]);
    let out = s.set_from(Source::Url, P, "url").unwrap();
    assert!(!out.effective);
    assert!(!out.changed);
    assert_eq!(s.get(P), "runtime");
    assert_eq!(s.layer_value(Source::Url, P), Some("url"));
}

#[test]
fn x_mparam_and_x_mparamp_share_one_level_and_the_later_wins() {
    let mut s = store_with(&[(Source::SipHeaderPersist, "persisted")]);
    s.set_from(Source::SipHeader, P, "session").unwrap();
    assert_eq!(s.get(P), "session");
    s.set_from(Source::SipHeaderPersist, P, "persisted again")
        .unwrap();
    assert_eq!(s.get(P), "persisted again");
}

#[test]
fn null_in_any_source_clears_the_value_over_lower_sources() {
    for src in Source::ALL {
        let mut s = ParamStore::new();
        s.set_from(Source::Stored, P, "stored").unwrap();
        s.set_from(src, P, "NULL").unwrap();
        assert_eq!(s.get(P), "", "{src}");
        assert!(s.is_set(P), "{src}: cleared counts as set");
        assert_eq!(s.source_of(P), Some(src), "{src}");
    }
}

#[test]
fn def_in_any_source_gives_the_default_over_lower_sources() {
    let default = ParamStore::new().get("loglevel");
    for src in Source::ALL.into_iter().filter(|s| *s != Source::Stored) {
        let mut s = ParamStore::new();
        s.set_from(Source::Stored, "loglevel", "5").unwrap();
        s.set_from(Source::Static, "loglevel", "4").unwrap();
        s.set_from(src, "loglevel", "DEF").unwrap();
        assert_eq!(s.get("loglevel"), default, "{src}");
        assert_eq!(s.source_of("loglevel"), None, "{src}");
    }
    // DEF from the database itself just removes the stored value
    let mut s = ParamStore::new();
    s.set_from(Source::Stored, "loglevel", "5").unwrap();
    s.set_from(Source::Stored, "loglevel", "DEF").unwrap();
    assert_eq!(s.get("loglevel"), default);
}

#[test]
fn null_or_def_in_a_lower_source_does_not_touch_a_higher_value() {
    let mut s = store_with(&[(Source::Url, "url")]);
    s.set_from(Source::Static, P, "NULL").unwrap();
    s.set_from(Source::Cookie, P, "DEF").unwrap();
    assert_eq!(s.get(P), "url");
}

#[test]
fn def_from_a_persisting_source_deletes_the_stored_row() {
    let mut s = ParamStore::new();
    s.load_stored([(P, "old")]);
    let out = s.set_from(Source::Static, P, "DEF").unwrap();
    assert!(out.persist);
    assert_eq!(
        s.take_persist_queue(),
        vec![SettingWrite {
            name: P.to_owned(),
            value: None
        }]
    );
    assert_eq!(s.layer_value(Source::Stored, P), None);
}

#[test]
fn null_from_a_persisting_source_stores_the_empty_value() {
    let mut s = ParamStore::new();
    s.load_stored([("proxyaddress", "wrong.proxy")]);
    s.set("proxyaddress", "NULL").unwrap();
    assert_eq!(
        s.take_persist_queue(),
        vec![SettingWrite {
            name: "proxyaddress".to_owned(),
            value: Some(String::new())
        }]
    );
}

#[test]
fn which_sources_persist_and_unchanged_values_are_not_queued() {
    let mut s = ParamStore::new();
    s.set_from(Source::SipHeader, "loglevel", "5").unwrap();
    assert!(
        s.take_persist_queue().is_empty(),
        "x-mparam is session only"
    );
    s.set_from(Source::SipHeaderPersist, "loglevel", "5")
        .unwrap();
    assert_eq!(s.take_persist_queue().len(), 1, "x-mparamp persists");
    for src in [Source::Static, Source::Cookie, Source::Url, Source::Scurl] {
        s.set_from(src, "loglevel", "5").unwrap();
        assert!(s.take_persist_queue().is_empty(), "{src}: same value");
        s.set_from(src, "loglevel", "4").unwrap();
        assert_eq!(s.take_persist_queue().len(), 1, "{src}");
        s.set_from(src, "loglevel", "5").unwrap();
        s.take_persist_queue();
    }
    s.load_stored([("loglevel", "1")]);
    assert!(
        s.take_persist_queue().is_empty(),
        "loaded rows are not written back"
    );
}

#[test]
fn secrets_and_profile_switches_are_never_queued_for_the_database() {
    let mut s = ParamStore::new();
    for name in [
        "password",
        "md5",
        "turnpassword",
        "profile",
        "resetsettings",
    ] {
        let out = s.set(name, "true").unwrap();
        assert!(!out.persist, "{name}");
    }
    s.set_from(Source::Url, "password", "from-url").unwrap();
    assert!(s.take_persist_queue().is_empty());
    assert_eq!(s.get("password"), "true");
}

#[test]
fn persist_queue_keeps_the_last_write_per_parameter_and_requeue_keeps_newer_writes() {
    let mut s = ParamStore::new();
    s.set(P, "a").unwrap();
    s.set(P, "b").unwrap();
    s.set("loglevel", "3").unwrap();
    let q = s.take_persist_queue();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].value.as_deref(), Some("b"));
    s.set(P, "c").unwrap();
    s.requeue(q);
    let q = s.take_persist_queue();
    let dn = q.iter().find(|w| w.name == P).unwrap();
    assert_eq!(dn.value.as_deref(), Some("c"));
    assert!(q.iter().any(|w| w.name == "loglevel"));
}

#[test]
fn invalid_value_from_any_source_is_refused_and_the_previous_value_kept() {
    let mut s = ParamStore::new();
    s.set_from(Source::Static, "transport", "1").unwrap();
    let err = s.set_from(Source::Url, "transport", "7").unwrap_err();
    assert!(err.to_string().contains("transport"), "{err}");
    assert_eq!(s.get("transport"), "1");
    assert_eq!(s.layer_value(Source::Url, "transport"), None);
}

#[test]
fn encrypted_value_matches_a_fixed_vector() {
    // "secret" XOR "key", base64 (computed independently)
    assert_eq!(
        encrypt_value_with_key("secret", b"key").unwrap(),
        "encrypted__3__GAAaGQAN"
    );
    assert_eq!(
        decrypt_value_with_key("encrypted__3__GAAaGQAN", b"key").unwrap(),
        "secret"
    );
    // unpadded and URL-safe forms decode too
    assert_eq!(
        decrypt_value_with_key("encrypted__3__GAAaGQ", b"key").unwrap(),
        "secr"
    );
    assert_eq!(
        decrypt_value_with_key("plain value", b"key").unwrap(),
        "plain value"
    );
}

#[test]
fn encrypted_value_round_trips_through_every_source() {
    for src in Source::ALL {
        let mut s = ParamStore::new();
        let enc = encrypt_value("pässwörd 1");
        assert!(enc.starts_with("encrypted__3__"));
        s.set_from(src, "password", &enc).unwrap();
        assert_eq!(s.get("password"), "pässwörd 1", "{src}");
        s.set_from(src, "loglevel", &encrypt_value("4")).unwrap();
        assert_eq!(s.get("loglevel"), "4", "{src}");
    }
}

#[test]
fn undecodable_encrypted_value_is_refused_without_echoing_it() {
    let mut s = ParamStore::new();
    s.set("username", "bob").unwrap();
    let err = s.set("username", "encrypted__3__@@@").unwrap_err();
    assert!(matches!(err, ParamError::Encrypted { ref name, .. } if name == "username"));
    assert_eq!(s.get("username"), "bob");
    let err = s
        .set("transport", &encrypt_value("not a number"))
        .unwrap_err();
    assert!(
        !err.to_string().contains("not a number"),
        "the decoded text stays hidden: {err}"
    );
}

#[test]
fn delsettings_forgets_user_values_and_keeps_the_deployment_config() {
    let mut s = ParamStore::new();
    s.load_stored([("username", "stored")]);
    s.set_from(Source::Static, "serveraddress", "sip.example.org")
        .unwrap();
    s.set_from(Source::Url, "callto", "1002").unwrap();
    s.set_from(Source::Cookie, "displayname", "Cookie").unwrap();
    s.set_from(Source::Scurl, "loglevel", "4").unwrap();
    s.set_from(Source::SipHeader, "autoaccept", "true").unwrap();
    s.set("password", "secret").unwrap();
    s.forget_user_settings();
    assert_eq!(s.get("serveraddress"), "sip.example.org");
    assert_eq!(s.get("callto"), "1002");
    for name in [
        "username",
        "displayname",
        "loglevel",
        "autoaccept",
        "password",
    ] {
        assert!(!s.is_set(name), "{name}");
    }
    assert!(!s.has_pending_persist());
}

#[test]
fn resetsettings_clears_only_the_stored_layer() {
    let mut s = ParamStore::new();
    s.load_stored([("username", "stored"), ("displayname", "Stored")]);
    s.set_from(Source::Static, "displayname", "Static").unwrap();
    s.clear_stored();
    assert!(!s.is_set("username"));
    assert_eq!(s.get("displayname"), "Static");
}

#[test]
fn url_cookie_header_and_scurl_text_apply_through_set_many() {
    let mut s = ParamStore::new();
    s.set_many(Source::Cookie, parse_cookies("wp_displayname=Cookie; x=1"));
    s.set_many(
        Source::Url,
        parse_url_params("https://h/p.html?wp_username=bob&wp_loglevel=3"),
    );
    let res = s.set_many(
        Source::Scurl,
        parse_scurl_answer("loglevel=4, transport=9, displayname=Scurl"),
    );
    assert!(res[1].1.is_err(), "transport=9 refused, others applied");
    s.set_many(Source::SipHeader, parse_mparam("loglevel=5;aec=0"));
    assert_eq!(s.get("username"), "bob");
    assert_eq!(s.get("displayname"), "Scurl");
    assert_eq!(s.get("loglevel"), "5");
    assert_eq!(s.source_of("loglevel"), Some(Source::SipHeader));
}

#[test]
fn aliases_share_layers_with_their_canonical_name() {
    let mut s = ParamStore::new();
    s.set_from(Source::Static, "useloginpage", "0").unwrap();
    s.set_from(Source::Url, "haveloginpage", "2").unwrap();
    assert_eq!(s.get("useloginpage"), "2");
    assert_eq!(s.source_of("useloginpage"), Some(Source::Url));
}

/// Through the API: the facade's `setparameter(name, value, source)` keeps the precedence of
/// the sources whatever the order of the calls, and an unknown source is refused.
#[tokio::test]
async fn setparameter_with_a_source_keeps_the_precedence() {
    let phone = webphone_engine::Phone::new(webphone_engine::PhoneOptions::default());
    let set = |v: &str, src: &str| vec![P.to_string(), v.to_string(), src.to_string()];
    phone
        .api("setparameter", set("from url", "url"))
        .await
        .unwrap();
    phone
        .api("setparameter", set("from cookie", "cookie"))
        .await
        .unwrap();
    phone
        .api("setparameter", set("from static", "static"))
        .await
        .unwrap();
    let got = phone.api("getparameter", vec![P.into()]).await.unwrap();
    assert_eq!(
        got.as_str(),
        Some("from url"),
        "URL beats cookie and static"
    );
    phone
        .api("setparameter", vec![P.into(), "at run time".into()])
        .await
        .unwrap();
    let got = phone.api("getparameter", vec![P.into()]).await.unwrap();
    assert_eq!(
        got.as_str(),
        Some("at run time"),
        "setparameter() beats URL"
    );
    assert!(phone
        .api("setparameter", set("x", "somewhere"))
        .await
        .is_err());
}
