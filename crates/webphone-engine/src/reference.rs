//! The user-facing reference page (`docs/reference.md`): every parameter of the registry and
//! every function of the API table with what this engine does with it.
//!
//! Parameter status comes from [`ENGINE_READS`], an explicit list of the parameters the engine
//! code reads today (the `reference_up_to_date` test checks it against the sources). Function
//! status is observed: the generator (that test) calls each function on a real engine and
//! hands the outcomes to [`render`]; [`classify`] turns an outcome into a [`FnStatus`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::params::{ParamDef, ParamKind, Registry, Scope};
use crate::ApiError;

/// The API function table (our own catalog text: name, arguments, returns, summary, notes).
pub const API_TSV: &str = include_str!("../data/api.tsv");

/// The callback table (name, callback arguments, summary).
pub const EVENTS_TSV: &str = include_str!("../data/events.tsv");

/// Parameters the engine reads today (canonical catalog names). Keep in step with the
/// engine sources: the `reference_up_to_date` test fails when a parameter read in
/// `src/` is missing here, or when a name here is not in the catalog.
pub const ENGINE_READS: &[&str] = &[
    "aec",
    "aec2",
    "agc",
    "allowcallredirect",
    "audiodevicein",
    "audiodeviceout",
    "audiodevicering",
    "autoaccept",
    "autohold",
    "autoignore",
    "automute",
    "bargeinheader",
    "blacklist",
    "blfuserlist",
    "callback",
    "callforwardalways",
    "callforwardonbusy",
    "callforwardonnoanswer",
    "callforwardonnoanswertimeout",
    "calltimeout",
    "calltransferalways",
    "changesptoring",
    "checkvolumesettings",
    "codec",
    "creditrequest",
    "customsipheader",
    "defmute",
    "denoise",
    "disablesamecall",
    "displayname",
    "dtmfmode",
    "earlymedia",
    "enableblf",
    "enablenomicvoicewarning",
    "enablepresence",
    "extraregisteraccounts",
    "holdtype",
    "ice",
    "icetimeout",
    "jittersize",
    "jsscripstats",
    "keepaliveival",
    "localip",
    "logform_action",
    "logform_filename",
    "loglevel",
    "md5",
    "mediaencryption",
    "mediatimeout",
    "muteholdalllines",
    "natopenpackets",
    "newuser",
    "normalizenumber",
    "nostopring",
    "numpxrewrite",
    "p2p",
    "password",
    "playring",
    "plc",
    "prefcodec",
    "presenceuserlist",
    "profile",
    "proxyaddress",
    "ratingrequest",
    "realm",
    "recharge",
    "redialonfail",
    "register",
    "registerinterval",
    "rejectonbusy",
    "resetsettings",
    "ringtimeout",
    "ringtimeoutin",
    "ringtimeoutout",
    "scurl_displaypeerdetails",
    "scurl_onincallconnected",
    "scurl_onincalldisconnected",
    "scurl_onincallringing",
    "scurl_onincallsetup",
    "scurl_oninchat",
    "scurl_onoutcallconnected",
    "scurl_onoutcalldisconnected",
    "scurl_onoutcallringing",
    "scurl_onoutcallsetup",
    "scurl_onoutchat",
    "scurl_onstart",
    "scurl_setparameters",
    "serveraddressbook_url",
    "autotransportdetect",
    "p2psignaling",
    "codecframecount",
    "silencesupress",
    "audio_bandwidth",
    "serveraddressfirst",
    "enablefallback",
    "useaudiodevicerecord",
    "voicerecording",
    "maxloglevel",
    "brandname",
    "forcereregister",
    "checkmicrophone",
    "rtpport",
    "beeponincoming",
    "beeponconnect",
    "playdtmfsound",
    "extraoption",
    "allowsipuriasusername",
    "needunregister",
    "serveraddressbook_sync",
    "defcontacts",
    "sendrtponmuted",
    "serveraddress",
    "signalingport",
    "sipusername",
    "sms",
    "stunserveraddress",
    "stunturnonlocal",
    "techprefix",
    "transfertype",
    "transfwithreplace",
    "transport",
    "turnpassword",
    "turnserveraddress",
    "turnparameters",
    "turnusername",
    "upnpnat",
    "use_fast_ice",
    "use_fast_stun",
    "use_g729",
    "use_gsm",
    "use_ilbc",
    "use_opus",
    "use_opuswb",
    "use_pcma",
    "use_pcmu",
    "use_rport",
    "use_speex",
    "use_speexuwb",
    "use_speexwb",
    "useragent",
    "username",
    "vad",
    "vadstat",
    "vadstat_ival",
    "voicemailnum",
    "voicerecupload",
    "volumein",
    "volumeout",
    "volumering",
    "wskeepaliveival",
];

/// Parameters the engine reads that are not in the catalog (our own additions), with what
/// they do.
pub const ENGINE_EXTRAS: &[(&str, &str)] = &[
    (
        "mwisubscribe",
        "Voicemail waiting by subscription: after registering, SUBSCRIBE to our own \
         message-summary (RFC 3842, RFC 6665), refreshed until unregister. 0 never, 1 (default) \
         when a voicemailnum is configured or the registrar's Allow-Events lists \
         message-summary, 2 always",
    ),
    (
        "tlscafile",
        "PEM file of CA certificates trusted in addition to the system roots for TLS and WSS \
         connections (a private CA or a self-signed server certificate)",
    ),
];

/// Catalog parameters (other than `ui` rows) read by the front doors (`webphone-cli` and its
/// local service, the desktop app, the JavaScript facade `ui/webphone_api.js`, the softphone
/// skin) rather than the engine core.
pub const FRONT_DOOR_READS: &[&str] = &[
    "autostart",
    "destroyonpageclose",
    "callto",
    "autoaction",
    "logtoconsole",
    // the skin's file transfer in the chat (e2e-skins `filetransfer`)
    "filetransferurl",
    // the desktop app: closing the window keeps listening in the tray
    "backgroundcalls",
];

/// Catalog `core`/`integration` rows that have no meaning for a native engine on a desktop,
/// with the reason shown on the reference page: workarounds for the original's Java or
/// Windows audio stacks, the vendor's own services, and a row the catalog cannot explain.
/// They are accepted, stored and returned like every parameter. The `reference_up_to_date`
/// test checks that none of them is read by the engine (it would be "works" then).
pub const NO_EFFECT_BY_DESIGN: &[(&str, &str)] = &[
    (
        "usecommdevice",
        "selects the Windows communications-device role; this engine uses the devices that `audiodevicein`/`audiodeviceout` name",
    ),
    (
        "cancloseaudioline",
        "a workaround for the original's Java audio lines (JVoIP); no Java here",
    ),
    (
        "singleaudiostream",
        "a workaround for the original's Java audio lines (JVoIP); no Java here",
    ),
    (
        "p2prtp",
        "the vendor's own direct media between its webphones, outside SDP; media here always follows the SDP offer/answer",
    ),
    (
        "usetunneling",
        "the vendor's proprietary tunnel service",
    ),
    (
        "autoprovisioning",
        "the vendor's central configuration server (OP code); use `scurl_setparameters` for your own provisioning",
    ),
    (
        "altexternpublicip",
        "asks third-party web sites for the public address; this engine never contacts them (it learns the address from `received`/`rport` and STUN)",
    ),
    (
        "geolocation",
        "a location lookup at third-party web services for an `X-Country` header; this engine never contacts them (a header can be added with `customsipheader`)",
    ),
    (
        "alwaysallowlowcodec",
        "appears once in an example of the catalog's source without a meaning",
    ),
    (
        "separatechatdiag",
        "every MESSAGE here is its own request with a new Call-ID already, the value 1 the catalog suggests",
    ),
    (
        "setfinalcodec",
        "the original's re-INVITE that narrows a multi-codec answer to one codec; this engine never sends it (the value 0 the catalog suggests against dropped calls)",
    ),
    (
        "invrecordroute",
        "a workaround of the original for the order of Record-Route headers; route sets here follow RFC 3261 section 12.1",
    ),
    (
        "udpconnect",
        "a socket mode of the original; the UDP socket here is never connected to one address, so answers from forked, redirected or failover peers arrive",
    ),
    (
        "ringincall",
        "appears once in a troubleshooting answer of the catalog's source (\"ringback related tweak\") without a meaning",
    ),
    (
        "voicerecformat",
        "a build option of the original (MP3 recording); recordings here are WAV",
    ),
];

/// One row of [`API_TSV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRow {
    pub name: &'static str,
    pub arguments: &'static str,
    pub returns: &'static str,
    pub summary: &'static str,
    pub notes: &'static str,
}

impl ApiRow {
    /// False for rows that name something other than a callable function (`API_Call (via
    /// jvoip)`, `isstarted (property)`).
    pub fn is_function(&self) -> bool {
        !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
}

/// One row of [`EVENTS_TSV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub name: &'static str,
    pub arguments: &'static str,
    pub summary: &'static str,
}

fn tsv_rows(tsv: &'static str, columns: usize) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines()
        .skip(1)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::trim).collect::<Vec<_>>())
        .filter(move |c| c.len() == columns)
}

/// The rows of the API table in catalog order (malformed rows skipped).
pub fn api_rows() -> Vec<ApiRow> {
    tsv_rows(API_TSV, 5)
        .map(|c| ApiRow {
            name: c[0],
            arguments: c[1],
            returns: c[2],
            summary: c[3],
            notes: c[4],
        })
        .collect()
}

/// The rows of the callback table in catalog order (malformed rows skipped).
pub fn event_rows() -> Vec<EventRow> {
    tsv_rows(EVENTS_TSV, 3)
        .map(|c| EventRow {
            name: c[0],
            arguments: c[1],
            summary: c[2],
        })
        .collect()
}

/// What the engine does with a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamStatus {
    /// The engine or a front door reads it ([`ENGINE_READS`], [`FRONT_DOOR_READS`]).
    Works,
    /// A `browser-engine` row: accepted, stored and returned, no effect in this engine.
    StoredNoEffect,
    /// A `ui` row the engine does not read: stored and returned for the skins.
    ForSkins,
    /// Accepted and stored, but nothing reads it yet.
    NotYet,
    /// Accepted and stored; has no meaning in this engine ([`NO_EFFECT_BY_DESIGN`]).
    NoEffectByDesign,
}

impl ParamStatus {
    pub fn label(self) -> &'static str {
        match self {
            ParamStatus::Works => "works",
            ParamStatus::StoredNoEffect => "accepted and stored (browser engines only: no effect)",
            ParamStatus::ForSkins => "accepted and stored (read by the skins, not the engine)",
            ParamStatus::NotYet => "not yet (accepted and stored, no effect yet)",
            ParamStatus::NoEffectByDesign => {
                "accepted and stored (no effect in this engine, see the reason)"
            }
        }
    }
}

/// The status of one catalog row; alias rows take their canonical parameter's status.
pub fn param_status(def: &ParamDef) -> ParamStatus {
    let name = def.alias_of.unwrap_or(def.name);
    if ENGINE_READS
        .iter()
        .chain(FRONT_DOOR_READS)
        .any(|n| n.eq_ignore_ascii_case(name))
    {
        ParamStatus::Works
    } else if def.scope == Scope::BrowserEngine {
        ParamStatus::StoredNoEffect
    } else if def.scope == Scope::Ui {
        ParamStatus::ForSkins
    } else if NO_EFFECT_BY_DESIGN
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        ParamStatus::NoEffectByDesign
    } else {
        ParamStatus::NotYet
    }
}

/// The status column of a parameter row: the label, with the reason for the rows of
/// [`NO_EFFECT_BY_DESIGN`].
fn status_text(def: &ParamDef) -> String {
    let name = def.alias_of.unwrap_or(def.name);
    match NO_EFFECT_BY_DESIGN
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some((_, why)) if param_status(def) == ParamStatus::NoEffectByDesign => {
            format!("no effect in this engine: {}", cell(why))
        }
        _ => param_status(def).label().to_string(),
    }
}

/// What the engine does with a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FnStatus {
    Works,
    NotSupported,
    NotYet,
}

impl FnStatus {
    pub fn label(self) -> &'static str {
        match self {
            FnStatus::Works => "works",
            FnStatus::NotSupported => "not supported by this engine",
            FnStatus::NotYet => "not yet",
        }
    }
}

/// Status from the outcome of calling a function on a running, idle engine: an unknown
/// function or an error saying "not implemented yet" / "not available yet" is not yet, one
/// saying "not supported by this engine" is not supported; anything else works (an error
/// such as "no incoming call" is the function working on an idle phone).
pub fn classify(outcome: &Result<serde_json::Value, ApiError>) -> FnStatus {
    match outcome {
        Ok(_) => FnStatus::Works,
        Err(ApiError::UnknownFunction) => FnStatus::NotYet,
        Err(e) => {
            let m = e.to_string();
            if m.contains("not supported by this engine") {
                FnStatus::NotSupported
            } else if m.contains("not implemented yet") || m.contains("not available yet") {
                FnStatus::NotYet
            } else {
                FnStatus::Works
            }
        }
    }
}

/// One observed call made by the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Arguments the function was called with.
    pub args: Vec<String>,
    pub outcome: Result<serde_json::Value, ApiError>,
}

/// A stable description of an outcome: the JSON type of a value (values depend on the
/// machine: paths, devices, logs), or the error message (deterministic).
pub fn describe_outcome(outcome: &Result<serde_json::Value, ApiError>) -> String {
    use serde_json::Value;
    match outcome {
        Ok(Value::Null) => "nothing (null)".into(),
        Ok(Value::Bool(_)) => "a boolean".into(),
        Ok(Value::Number(_)) => "a number".into(),
        Ok(Value::String(_)) => "a string".into(),
        Ok(Value::Array(_)) => "a list".into(),
        Ok(Value::Object(_)) => "an object".into(),
        Err(e) => format!("error \"{e}\""),
    }
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return "-".into();
    }
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn kind_text(def: &ParamDef) -> String {
    match &def.kind {
        ParamKind::Bool => "boolean".into(),
        ParamKind::String => "string".into(),
        ParamKind::Number(rule) => format!("number ({})", rule.describe()),
    }
}

/// Renders the whole reference page from the registry, the API and callback tables and the
/// observed outcomes (by function name; functions without an observation are "not checked").
pub fn render(observed: &BTreeMap<String, Observed>) -> String {
    let mut out = String::new();
    let reg = Registry::global();
    let apis = api_rows();
    let events = event_rows();

    let _ = writeln!(out, "# WebPhone engine reference");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Generated from the parameter registry (`crates/webphone-engine/data/parameters.tsv`), the API \
         table (`data/api.tsv`) and the callback table (`data/events.tsv`) by \
         `crates/webphone-engine/src/reference.rs`. Do not edit by hand: regenerate with \
         `UPDATE_REFERENCE=1 cargo test -p webphone-engine --test reference_up_to_date`."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Function statuses are observed: the generator calls every function on a running engine \
         with no account and no call (the \"Called as\" column) and reports what came back."
    );
    let _ = writeln!(out);

    // Summary counts.
    let mut pcount: BTreeMap<&'static str, usize> = BTreeMap::new();
    for def in reg.iter() {
        *pcount.entry(param_status(def).label()).or_default() += 1;
    }
    let mut fcount: BTreeMap<&'static str, usize> = BTreeMap::new();
    for row in apis.iter().filter(|r| r.is_function()) {
        let label = observed
            .get(row.name)
            .map_or("not checked", |o| classify(&o.outcome).label());
        *fcount.entry(label).or_default() += 1;
    }
    let _ = writeln!(out, "## Summary");
    let _ = writeln!(out);
    let _ = writeln!(out, "Parameters ({} rows):", reg.len());
    let _ = writeln!(out);
    for (label, n) in &pcount {
        let _ = writeln!(out, "- {label}: {n}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Functions ({} rows):",
        apis.iter().filter(|r| r.is_function()).count()
    );
    let _ = writeln!(out);
    for (label, n) in &fcount {
        let _ = writeln!(out, "- {label}: {n}");
    }
    let _ = writeln!(out);

    // Functions.
    let _ = writeln!(out, "## Functions");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Function | Arguments | Called as | Our engine returned | Status | Summary |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for row in apis.iter().filter(|r| r.is_function()) {
        let (called, returned, status) = match observed.get(row.name) {
            Some(o) => (
                format!(
                    "`{}({})`",
                    row.name,
                    o.args
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                describe_outcome(&o.outcome),
                classify(&o.outcome).label(),
            ),
            None => ("-".into(), "-".into(), "not checked"),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            row.name,
            cell(row.arguments),
            cell(&called),
            cell(&returned),
            status,
            cell(row.summary)
        );
    }
    let _ = writeln!(out);
    let others: Vec<&ApiRow> = apis.iter().filter(|r| !r.is_function()).collect();
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "Rows of the API table that are not functions of `webphone_api`:"
        );
        let _ = writeln!(out);
        for r in others {
            let _ = writeln!(out, "- `{}`: {}", r.name, cell(r.summary));
        }
        let _ = writeln!(out);
    }

    // Callbacks.
    let _ = writeln!(out, "## Callbacks");
    let _ = writeln!(out);
    let _ = writeln!(out, "| Callback | Arguments | Summary |");
    let _ = writeln!(out, "|---|---|---|");
    for e in &events {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            e.name,
            cell(e.arguments),
            cell(e.summary)
        );
    }
    let _ = writeln!(out);

    // Parameters.
    let _ = writeln!(out, "## Parameters");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Values are set with `setparameter(name, value)` (or the configuration sources) as \
         strings and read back normalised by `getparameter`. Names are case-insensitive."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Parameter | Type | Default | Scope | Accepted values | Status |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for def in reg.iter() {
        let name = match def.alias_of {
            Some(c) => format!("`{}` (old name of `{c}`)", def.name),
            None => format!("`{}`", def.name),
        };
        let default = match def.default.as_deref() {
            None | Some("") => "(empty)".to_string(),
            Some(d) => format!("`{}`", d.replace('|', "\\|")),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {default} | {} | {} | {} |",
            cell(&kind_text(def)),
            def.scope,
            cell(def.values),
            status_text(def)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Parameters of this engine that are not in the catalog:"
    );
    let _ = writeln!(out);
    for (name, what) in ENGINE_EXTRAS {
        let _ = writeln!(out, "- `{name}` (string, default empty): {what}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_read_is_a_catalog_parameter() {
        for n in ENGINE_READS.iter().chain(FRONT_DOOR_READS) {
            assert!(Registry::global().lookup(n).is_some(), "{n} not in catalog");
        }
    }

    #[test]
    fn tables_parse_completely() {
        assert_eq!(api_rows().len(), API_TSV.lines().count() - 1);
        assert_eq!(event_rows().len(), EVENTS_TSV.lines().count() - 1);
        assert!(api_rows()
            .iter()
            .any(|r| r.name == "call" && r.is_function()));
        assert!(!api_rows()
            .iter()
            .any(|r| r.name.starts_with("API_Call") && r.is_function()));
    }

    #[test]
    fn classify_reads_the_error_wording() {
        assert_eq!(classify(&Ok(serde_json::Value::Null)), FnStatus::Works);
        assert_eq!(
            classify(&Err(ApiError::Failed(
                "jvoip is not supported by this engine: x".into()
            ))),
            FnStatus::NotSupported
        );
        assert_eq!(
            classify(&Err(ApiError::Failed(
                "transfer is not implemented yet in this engine".into()
            ))),
            FnStatus::NotYet
        );
        assert_eq!(classify(&Err(ApiError::UnknownFunction)), FnStatus::NotYet);
        assert_eq!(
            classify(&Err(ApiError::BadArgument("no incoming call".into()))),
            FnStatus::Works
        );
    }

    #[test]
    fn markdown_cells_escape_pipes() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(cell("  "), "-");
    }
}
