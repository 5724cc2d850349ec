#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use super::catalog::{base_kind, parse_default, parse_number_rule, DefaultParse};
use super::*;

fn reg() -> &'static Registry {
    Registry::global()
}

#[test]
fn registry_has_287_rows_with_unique_names() {
    let r = reg();
    assert!(r.skipped_rows().is_empty(), "{:?}", r.skipped_rows());
    // The catalog has no true duplicates modulo case.
    assert!(r.duplicate_names().is_empty(), "{:?}", r.duplicate_names());
    assert_eq!(r.len(), 287);
    let names: HashSet<String> = r.iter().map(|d| d.name.to_ascii_lowercase()).collect();
    assert_eq!(names.len(), 287);
}

#[test]
fn scope_counts_match_the_catalog_readme() {
    let count = |s: Scope| reg().iter().filter(|d| d.scope == s).count();
    assert_eq!(count(Scope::Core), 145);
    assert_eq!(count(Scope::Ui), 64);
    assert_eq!(count(Scope::BrowserEngine), 54);
    assert_eq!(count(Scope::Integration), 24);
}

#[test]
fn every_row_has_an_explicit_type_and_default_decision() {
    for d in reg().iter() {
        let typed = base_kind(d.raw_type).is_some()
            || TYPE_OVERRIDES
                .iter()
                .any(|(n, _, _)| n.eq_ignore_ascii_case(d.name))
            || d.alias_of.is_some();
        assert!(typed, "{}: type {:?} needs an override", d.name, d.raw_type);
        let defaulted = parse_default(d.raw_default) != DefaultParse::Unclear
            || DEFAULT_OVERRIDES
                .iter()
                .any(|(n, _, _)| n.eq_ignore_ascii_case(d.name));
        assert!(
            defaulted,
            "{}: default {:?} needs an override",
            d.name, d.raw_default
        );
    }
}

#[test]
fn override_tables_name_existing_rows() {
    let names = TYPE_OVERRIDES
        .iter()
        .map(|(n, _, _)| *n)
        .chain(DEFAULT_OVERRIDES.iter().map(|(n, _, _)| *n))
        .chain(RULE_OVERRIDES.iter().map(|(n, _, _)| *n))
        .chain(ALIASES.iter().map(|(_, c, _)| *c));
    for n in names {
        assert!(reg().row(n).is_some(), "override names unknown row {n}");
    }
    for (_, _, reason) in TYPE_OVERRIDES {
        assert!(!reason.is_empty());
    }
}

#[test]
fn every_effective_default_is_accepted_by_its_own_parameter() {
    for d in reg().iter() {
        if let Some(def) = &d.default {
            let mut s = ParamStore::new();
            s.set(d.name, def)
                .unwrap_or_else(|e| panic!("default of {} refused: {e}", d.name));
            assert_eq!(&s.get(d.name), def, "{}", d.name);
        }
    }
}

#[test]
fn skeleton_parameter_defaults() {
    let s = ParamStore::new();
    let expected = [
        ("serveraddress", ""),
        ("username", ""),
        ("sipusername", ""),
        ("password", ""),
        ("displayname", ""),
        ("realm", ""),
        ("proxyaddress", ""),
        ("register", "1"),
        ("registerinterval", "120"),
        ("transport", "-1"),
        ("signalingport", "0"),
        ("loglevel", "1"),
        ("autoaccept", "false"),
        ("audiodevicein", ""),
        ("audiodeviceout", ""),
        ("codec", ""),
    ];
    for (name, value) in expected {
        assert!(reg().lookup(name).is_some(), "{name} missing");
        assert_eq!(s.get(name), value, "default of {name}");
    }
    assert_eq!(s.get_i64("registerinterval"), Some(120));
    assert_eq!(s.get_i64("transport"), Some(-1));
    assert_eq!(s.get_i64("loglevel"), Some(1));
    assert_eq!(s.get_bool("autoaccept"), Some(false));
    assert_eq!(s.get_i64("serveraddress"), None);
}

#[test]
fn transport_rejects_unknown_value_and_keeps_previous() {
    let mut s = ParamStore::new();
    s.set("transport", "1").unwrap();
    let err = s.set("transport", "9").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("transport"), "{msg}");
    assert!(msg.contains("\"9\""), "{msg}");
    for accepted in ["-1=auto detect", "0=UDP", "2=TLS", "5=auto tunnel"] {
        assert!(msg.contains(accepted), "{msg}");
    }
    assert_eq!(s.get("transport"), "1");
    assert!(s.set("transport", "tcp").is_err());
    assert!(
        s.set("transport", "true").is_err(),
        "0/1 are UDP/TCP, not off/on"
    );
    assert_eq!(s.get_i64("transport"), Some(1));
}

#[test]
fn bool_accepts_common_spellings() {
    let mut s = ParamStore::new();
    for (input, want) in [
        ("true", "true"),
        ("FALSE", "false"),
        ("1", "true"),
        ("0", "false"),
        ("yes", "true"),
        ("No", "false"),
        (" True ", "true"),
    ] {
        s.set("autoaccept", input).unwrap();
        assert_eq!(s.get("autoaccept"), want, "input {input:?}");
    }
    let err = s.set("autoaccept", "maybe").unwrap_err();
    assert!(err.to_string().contains("autoaccept"));
    assert_eq!(s.get_bool("autoaccept"), Some(true));
}

#[test]
fn numbers_accept_whitespace_ranges_and_bool_spellings() {
    let mut s = ParamStore::new();
    s.set("registerinterval", " 300 ").unwrap();
    assert_eq!(s.get("registerinterval"), "300");
    assert!(s.set("registerinterval", "3.5").is_err());
    assert!(s.set("signalingport", "70000").is_err());
    s.set("signalingport", "5070").unwrap();
    assert!(s.set("volumein", "101").is_err());
    s.set("volumein", "100").unwrap();
    // numeric but documented as "set to true"
    s.set("backgroundcalls", "true").unwrap();
    assert_eq!(s.get("backgroundcalls"), "1");
    // colortheme's default 0 is not in its value list but stays accepted
    s.set("colortheme", "0").unwrap();
    // autoupgrade only lists notable values: not a closed enumeration
    s.set("autoupgrade", "0").unwrap();
    assert!(s.set("colortheme", "13").is_err());
}

#[test]
fn null_clears_and_def_restores_default() {
    let mut s = ParamStore::new();
    s.set("proxyaddress", "proxy.example.com:5060").unwrap();
    let out = s.set("proxyaddress", "NULL").unwrap();
    assert!(out.changed);
    assert_eq!(s.get("proxyaddress"), "");
    assert!(s.is_set("proxyaddress"));

    s.set("callnot_body", "NULL").unwrap();
    assert_eq!(s.get("callnot_body"), "");
    s.set("callnot_body", "DEF").unwrap();
    assert_eq!(s.get("callnot_body"), "Incoming call from: PEERNAME");
    assert!(!s.is_set("callnot_body"));

    s.set("registerinterval", "600").unwrap();
    s.set("registerinterval", "NULL").unwrap();
    assert_eq!(s.get("registerinterval"), "");
    // cleared typed value reads as built-in behaviour = default
    assert_eq!(s.get_i64("registerinterval"), Some(120));
    s.set("registerinterval", " DEF ").unwrap();
    assert_eq!(s.get("registerinterval"), "120");

    // empty is accepted as "clear" too (behaviours §2.3)
    s.set("displayname", "Alice").unwrap();
    s.set("displayname", "").unwrap();
    assert_eq!(s.get("displayname"), "");
    // lower-case null is an ordinary value (audio device spec "null")
    s.set("audiodevicein", "null").unwrap();
    assert_eq!(s.get("audiodevicein"), "null");
}

#[test]
fn set_reports_whether_value_changed() {
    let mut s = ParamStore::new();
    assert!(!s.set("register", "1").unwrap().changed, "same as default");
    assert!(s.set("register", "2").unwrap().changed);
    assert!(!s.set("register", " 2").unwrap().changed);
    assert!(s.set("register", "DEF").unwrap().changed);
    assert!(s.set("transport", "9").is_err());
}

#[test]
fn unknown_parameter_is_stored_as_string() {
    let mut s = ParamStore::new();
    let out = s.set("MyCustomKey", " some value ").unwrap();
    assert!(out.is_unknown());
    assert_eq!(out.recognition, Recognition::Unknown);
    assert_eq!(out.name, "MyCustomKey");
    assert!(out.changed);
    assert_eq!(s.get("mycustomkey"), " some value ");
    assert_eq!(s.get("never_set_key"), "");
    assert_eq!(
        s.entries().collect::<Vec<_>>(),
        vec![("MyCustomKey", " some value ")]
    );
    assert!(!s.set("serveraddress", "x").unwrap().is_unknown());
    assert_eq!(s.set("", "x").unwrap_err(), ParamError::EmptyName);
}

#[test]
fn browser_engine_rows_are_accepted_and_returned() {
    let mut s = ParamStore::new();
    let be: Vec<&ParamDef> = reg()
        .iter()
        .filter(|d| d.is_browser_engine_only())
        .collect();
    assert_eq!(be.len(), 54);
    s.set("webrtcserveraddress", "wss://gw.example.com:8443")
        .unwrap();
    assert_eq!(s.get("webrtcserveraddress"), "wss://gw.example.com:8443");
    s.set("enginepriority_webrtc", "0").unwrap();
    assert_eq!(s.get("enginepriority_webrtc"), "0");
    assert!(s.set("enginepriority_webrtc", "7").is_err());
    assert_eq!(s.get("enginedefpriority_java"), "32");
    s.set("iceTransportPolicy", "relay").unwrap();
    assert_eq!(s.get("icetransportpolicy"), "relay");
}

#[test]
fn aliases_resolve_to_canonical_names() {
    let mut s = ParamStore::new();
    for (alias, canonical) in [
        ("prefercodec", "prefcodec"),
        ("haveloginpage", "useloginpage"),
        ("hasincomingcallpopup", "incomingcallpopup"),
        ("hasincomingcall", "incomingcallpopup"),
        ("backgroundservice", "backgroundcalls"),
        ("autocall", "autoaction"),
        ("webrtcserversaddress", "webrtcserveraddress"),
        ("use_speexwwb", "use_speexuwb"),
    ] {
        assert_eq!(reg().canonical_name(alias), Some(canonical));
        assert_eq!(reg().canonical_name(&alias.to_uppercase()), Some(canonical));
    }
    let out = s.set("PreferCodec", "PCMU").unwrap();
    assert_eq!(out.recognition, Recognition::Alias);
    assert_eq!(out.name, "prefcodec");
    assert_eq!(s.get("prefcodec"), "PCMU");
    // alias rows are still catalog rows, typed like their target
    let row = reg().row("hasincomingcall").unwrap();
    assert_eq!(row.alias_of, Some("incomingcallpopup"));
    assert_eq!(row.default.as_deref(), Some("1"));
    assert!(s.set("hasincomingcall", "9").is_err());
}

#[test]
fn lookup_is_case_insensitive() {
    assert_eq!(reg().lookup("ServerAddress").unwrap().name, "serveraddress");
    assert_eq!(
        reg().lookup("ICECANDIDATEPOOLSIZE").unwrap().name,
        "iceCandidatePoolSize"
    );
    let mut s = ParamStore::new();
    s.set("USERNAME", "alice").unwrap();
    assert_eq!(s.get("username"), "alice");
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    for n in ["password", "PASSWORD", "md5", "turnpassword", "my_sip_pwd"] {
        assert!(is_secret(n), "{n}");
    }
    for n in ["username", "sipusername", "serveraddress", "realm"] {
        assert!(!is_secret(n), "{n}");
    }
    let mut s = ParamStore::new();
    s.set("username", "alice").unwrap();
    s.set("password", "hunter2").unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains(REDACTED) && dbg.contains("alice"), "{dbg}");
    assert_eq!(s.display_value("password"), REDACTED);
    assert_eq!(s.get("password"), "hunter2");
}

#[test]
fn number_rules_are_read_from_the_values_column() {
    assert_eq!(parse_number_rule("milliseconds;0=off"), NumberRule::Any);
    assert_eq!(
        parse_number_rule("seconds; advised range 30..3600"),
        NumberRule::Any
    );
    assert_eq!(
        parse_number_rule("0..100 percent;0=muted"),
        NumberRule::Range { min: 0, max: 100 }
    );
    match parse_number_rule("0=no;1=yes") {
        NumberRule::OneOf(v) => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
    // loglevel lists ">5=..." so it is not a closed enumeration
    assert_eq!(
        reg().lookup("loglevel").unwrap().kind,
        ParamKind::Number(NumberRule::Any)
    );
}

#[test]
fn malformed_rows_are_skipped_without_panicking() {
    const TSV: &str = "name\ttype\tdefault\tsection\tvalues\tsummary\tscope\n\
        good\tnumber\t3\tS\t0=a;3=b\tx\tcore\n\
        short\tnumber\t3\n\
        badscope\tstring\t-\tS\t-\tx\tnowhere\n\
        GOOD\tstring\tempty\tS\t-\tdup\tui\n";
    let r = Registry::parse(TSV);
    assert_eq!(r.len(), 1);
    assert_eq!(r.skipped_rows().len(), 2);
    assert_eq!(r.duplicate_names(), ["GOOD".to_owned()]);
    assert_eq!(r.lookup("good").unwrap().default.as_deref(), Some("3"));
}

#[test]
fn bool_spellings_only_for_off_on_enumerations() {
    let with_bool: Vec<&str> = reg()
        .iter()
        .filter(|d| matches!(&d.kind, ParamKind::Number(r) if r.accepts_bool_spelling()))
        .map(|d| d.name)
        .collect();
    for n in [
        "backgroundcalls",
        "upnpnat",
        "normalizenumber",
        "redialonfail",
    ] {
        assert!(with_bool.contains(&n), "{n}: {with_bool:?}");
    }
    for n in [
        "transport",
        "dtmfmode",
        "loglevel",
        "colortheme",
        "use_pcmu",
        "jittersize",
        "automute",
    ] {
        assert!(!with_bool.contains(&n), "{n}");
    }
    eprintln!("bool spellings accepted by: {with_bool:?}");
}

#[test]
fn cleared_runtime_value_gives_way_to_a_server_taught_one_only_when_dropped() {
    let mut p = ParamStore::new();
    p.set("voicemailnum", "").unwrap();
    p.set_from(Source::SipHeader, "voicemailnum", "*97")
        .unwrap();
    assert_eq!(
        p.get("voicemailnum"),
        "",
        "the cleared run-time value still wins"
    );
    assert!(p.drop_cleared(Source::Runtime, "voicemailnum"));
    assert_eq!(p.get("voicemailnum"), "*97");
    assert_eq!(p.source_of("voicemailnum"), Some(Source::SipHeader));
    // A real value is never dropped.
    p.set("voicemailnum", "8000").unwrap();
    assert!(!p.drop_cleared(Source::Runtime, "voicemailnum"));
    assert_eq!(p.get("voicemailnum"), "8000");
}

#[test]
fn extraoption_values_stand_in_for_defaults_below_every_source() {
    let mut s = ParamStore::new();
    s.set_from(
        Source::Static,
        "extraoption",
        "displayname=John; Loglevel=5 ;autocall=1;transport=9;codec=PCMU;codec=G722;junk;=x;nosuch=1",
    )
    .unwrap();
    assert_eq!(s.get("displayname"), "John");
    assert_eq!(s.get_i64("loglevel"), Some(5), "names ignore case");
    assert_eq!(s.get("autoaction"), "1", "an alias names its parameter");
    assert_eq!(s.get("codec"), "G722", "the last entry of a name wins");
    // A value the parameter refuses is ignored: the built-in default applies.
    assert_eq!(
        s.get("transport"),
        reg()
            .lookup("transport")
            .unwrap()
            .default
            .clone()
            .unwrap_or_default()
    );
    // Not an explicit value: any source wins over it, and it is not reported as set.
    assert!(!s.is_set("displayname"));
    s.set_from(Source::Stored, "displayname", "Ann").unwrap();
    assert_eq!(s.get("displayname"), "Ann");
    // DEF in a source means the built-in default, which extraoption stands in for.
    s.set("loglevel", "DEF").unwrap();
    assert_eq!(s.get("loglevel"), "5");
    // Clearing extraoption takes its values away.
    s.set("extraoption", "").unwrap();
    assert_eq!(
        s.get("loglevel"),
        reg()
            .lookup("loglevel")
            .unwrap()
            .default
            .clone()
            .unwrap_or_default()
    );
}
