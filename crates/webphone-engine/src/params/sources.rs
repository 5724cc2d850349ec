//! Where parameter values come from ([`Source`], behaviours.md §2.1/§2.2) and pure parsers for
//! the text forms they arrive in.
//!
//! The parsers only split and decode; they do not validate names or values (that is
//! [`ParamStore::set_from`](super::ParamStore::set_from)'s job). They keep the order of the
//! input and do not merge duplicates: applying the pairs in order makes the last one win. The
//! JavaScript facade implements the same rules for URLs and cookies (its tests use the same
//! examples as the tests here).

use std::fmt;

/// A source of parameter values, from lowest to highest precedence (behaviours.md §2.2):
///
/// built-in default < [`Stored`](Source::Stored) < [`Static`](Source::Static) <
/// [`Cookie`](Source::Cookie) < [`Url`](Source::Url) < [`Scurl`](Source::Scurl) <
/// [`SipHeader`](Source::SipHeader) = [`SipHeaderPersist`](Source::SipHeaderPersist) <
/// [`Runtime`](Source::Runtime).
///
/// A value written with the `ucfg_` name prefix (e.g. `ucfg_aec` in the static configuration)
/// gives way to a stored value of the same parameter. Within one source the last write wins.
/// The built-in default is not a source: it is what remains when no source has a value (or
/// when the highest one says `DEF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Persisted in the profile database by an earlier session.
    Stored,
    /// Static configuration: the parameter block of `webphone_api.js`, the CLI's `-p`,
    /// `--config` file and `WP_*` environment variables, the desktop app's options.
    Static,
    /// Browser cookies named `wp_<name>` (the JavaScript facade forwards them).
    Cookie,
    /// `wp_<name>` query parameters of the embedding page's URL.
    Url,
    /// The answer of the `scurl_setparameters` provisioning request.
    Scurl,
    /// SIP header `x-mparam` from the server: for this session only (not persisted).
    SipHeader,
    /// SIP header `x-mparamp` from the server: like `x-mparam`, and persisted.
    SipHeaderPersist,
    /// `setparameter()` and user input at run time.
    Runtime,
}

impl Source {
    /// Every source, lowest precedence first.
    pub const ALL: [Source; 8] = [
        Source::Stored,
        Source::Static,
        Source::Cookie,
        Source::Url,
        Source::Scurl,
        Source::SipHeader,
        Source::SipHeaderPersist,
        Source::Runtime,
    ];

    /// Number of precedence levels ([`SipHeader`](Source::SipHeader) and
    /// [`SipHeaderPersist`](Source::SipHeaderPersist) share one).
    pub const LEVELS: usize = 7;

    /// Precedence level: 0 (stored) to 6 (run time). Both SIP header sources share level 5,
    /// so the later of `x-mparam` / `x-mparamp` wins.
    pub fn level(self) -> usize {
        match self {
            Source::Stored => 0,
            Source::Static => 1,
            Source::Cookie => 2,
            Source::Url => 3,
            Source::Scurl => 4,
            Source::SipHeader | Source::SipHeaderPersist => 5,
            Source::Runtime => 6,
        }
    }

    /// Whether values from this source are written to the profile database (secrets and a few
    /// session-only parameters excepted, see `ParamStore::set_from`). `x-mparam` values are
    /// for the session only; stored values come from the database already.
    pub fn persists(self) -> bool {
        !matches!(self, Source::Stored | Source::SipHeader)
    }

    /// Short lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stored => "stored",
            Source::Static => "static",
            Source::Cookie => "cookie",
            Source::Url => "url",
            Source::Scurl => "scurl_setparameters",
            Source::SipHeader => "x-mparam",
            Source::SipHeaderPersist => "x-mparamp",
            Source::Runtime => "runtime",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Name prefix of URL query parameters and cookies meant for the phone.
pub const WP_PREFIX: &str = "wp_";

/// Name prefix that lets a stored (user) value win over the value given with it.
pub const UCFG_PREFIX: &str = "ucfg_";

/// `name` without a leading `wp_` (any case), or `None` when it has no such prefix or nothing
/// follows it.
pub fn strip_wp_prefix(name: &str) -> Option<&str> {
    strip_prefix_ci(name, WP_PREFIX).filter(|rest| !rest.is_empty())
}

/// `name` without a leading `ucfg_` (any case), or `None` when it has none or nothing follows.
pub fn strip_ucfg_prefix(name: &str) -> Option<&str> {
    strip_prefix_ci(name, UCFG_PREFIX).filter(|rest| !rest.is_empty())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Percent-decoding as JavaScript's `decodeURIComponent`, but lenient: `%XX` sequences become
/// bytes, anything else (including `+` and malformed `%` sequences) stays as written; bytes that
/// are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                // h, l < 16
                out.push(((h << 4) | l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `wp_` parameters of a page URL or of its query string.
///
/// Accepts a whole URL (`https://host/page.html?wp_a=1#frag`), a query with or without the
/// leading `?`, or an empty string. Pairs are separated by `&`; the name ends at the first `=`
/// (a name without `=` gets the empty value). Names and values are percent-decoded
/// ([`percent_decode`]; `+` is kept, as `decodeURIComponent` does). When the query contains no
/// `=` at all it is taken as encoded as a whole (`encodeURIComponent` of the entire query) and
/// decoded once before splitting. Only names starting with `wp_` (any case) are returned,
/// without the prefix.
pub fn parse_url_params(url_or_query: &str) -> Vec<(String, String)> {
    let s = url_or_query.trim();
    let s = s.split('#').next().unwrap_or("");
    let query = match s.find('?') {
        Some(i) => s.get(i + 1..).unwrap_or(""),
        // no `?`: a bare query unless it looks like a URL without one
        None if s.contains("://") => "",
        None => s,
    };
    let decoded_whole;
    let query = if query.contains('=') {
        query
    } else {
        decoded_whole = percent_decode(query);
        decoded_whole.as_str()
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name);
            let name = strip_wp_prefix(name.trim())?.to_owned();
            Some((name, percent_decode(value)))
        })
        .collect()
}

/// The `wp_` cookies of a `document.cookie` string or a `Cookie:` header value
/// (`a=1; wp_username=bob`).
///
/// Pairs are separated by `;`, surrounding whitespace is ignored, the name ends at the first
/// `=`, one pair of double quotes around a value is removed, and values are percent-decoded.
/// Only `wp_` names (any case) are returned, without the prefix.
pub fn parse_cookies(cookies: &str) -> Vec<(String, String)> {
    cookies
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = strip_wp_prefix(name.trim())?.to_owned();
            Some((name, percent_decode(unquote(value.trim()))))
        })
        .collect()
}

/// The parameters of an `x-mparam` / `x-mparamp` SIP header value: `loglevel=5;aec=0`.
///
/// Pairs are separated by `;`, names and values are trimmed, one pair of double quotes around
/// a value is removed, items without `=` or with an empty name are skipped. Values are not
/// percent-decoded (SIP header text is taken as written). A leading `x-mparam=` /
/// `x-mparamp=` (the form the documentation writes the header in) is tolerated.
pub fn parse_mparam(header_value: &str) -> Vec<(String, String)> {
    let mut s = header_value.trim();
    for prefix in ["x-mparamp=", "x-mparam=", "x-mparamp:", "x-mparam:"] {
        if let Some(rest) = strip_prefix_ci(s, prefix) {
            s = rest.trim_start();
            break;
        }
    }
    s.split(';')
        .filter_map(|item| {
            let (name, value) = item.split_once('=')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), unquote(value.trim()).to_owned()))
        })
        .collect()
}

/// The parameters of a `scurl_setparameters` answer: `username=xxx,password=yyy`.
///
/// Pairs are separated by `,` or line breaks; whitespace around names and values is ignored
/// (`a=1, b=2` works). A comma-separated piece without `=` continues the previous value (so
/// `codec=PCMU,PCMA,user=x` gives `codec` = `PCMU,PCMA`); such a piece before the first pair is
/// dropped. Values are not percent-decoded.
pub fn parse_scurl_answer(body: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        for piece in line.split(',') {
            match piece.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    out.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                Some(_) => {}
                None => {
                    let piece = piece.trim();
                    if let (Some(last), false) = (out.last_mut(), piece.is_empty()) {
                        last.1.push(',');
                        last.1.push_str(piece);
                    }
                }
            }
        }
    }
    out
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn url_with_wp_params_returns_only_prefixed_pairs_decoded() {
        let got = parse_url_params(
            "https://x.example/softphone.html?wp_serveraddress=sip.example.org&other=1&WP_username=bob%20smith&wp_callto=%2B3612#top",
        );
        assert_eq!(
            got,
            pairs(&[
                ("serveraddress", "sip.example.org"),
                ("username", "bob smith"),
                ("callto", "+3612"),
            ])
        );
    }

    #[test]
    fn url_query_keeps_plus_and_malformed_escapes() {
        assert_eq!(
            parse_url_params("?wp_a=1+2&wp_b=100%&wp_c=%zz&wp_d"),
            pairs(&[("a", "1+2"), ("b", "100%"), ("c", "%zz"), ("d", "")])
        );
    }

    #[test]
    fn url_query_encoded_as_a_whole_is_decoded_once() {
        assert_eq!(
            parse_url_params("?wp_username%3Dbob%26wp_autoaction%3D1"),
            pairs(&[("username", "bob"), ("autoaction", "1")])
        );
    }

    #[test]
    fn url_without_query_or_empty_gives_nothing() {
        assert!(parse_url_params("https://x.example/page.html").is_empty());
        assert!(parse_url_params("").is_empty());
        assert!(parse_url_params("?wp_=1&=2&&").is_empty());
    }

    #[test]
    fn bare_query_without_question_mark_is_accepted() {
        assert_eq!(
            parse_url_params("wp_a=1&wp_b=x=y"),
            pairs(&[("a", "1"), ("b", "x=y")])
        );
    }

    #[test]
    fn cookies_keep_wp_names_decode_values_and_strip_quotes() {
        assert_eq!(
            parse_cookies("session=abc; wp_username=bob%40x; WP_displayname=\"Bob S\"; wp_x"),
            pairs(&[("username", "bob@x"), ("displayname", "Bob S")])
        );
        assert!(parse_cookies("").is_empty());
    }

    #[test]
    fn mparam_header_splits_on_semicolons() {
        assert_eq!(
            parse_mparam(" loglevel=5; aec = 0 ;;novalue; =x; displayname=\"A;B\""),
            pairs(&[("loglevel", "5"), ("aec", "0"), ("displayname", "\"A")])
        );
        assert_eq!(
            parse_mparam("x-mparam=loglevel=5;aec=0"),
            pairs(&[("loglevel", "5"), ("aec", "0")])
        );
        assert_eq!(parse_mparam("X-MParamP: a=\"1\""), pairs(&[("a", "1")]));
    }

    #[test]
    fn scurl_answer_splits_on_commas_and_lines_and_joins_orphans() {
        assert_eq!(
            parse_scurl_answer("username=xxx, password=yyy\r\ncodec=PCMU,PCMA,loglevel=5\n"),
            pairs(&[
                ("username", "xxx"),
                ("password", "yyy"),
                ("codec", "PCMU,PCMA"),
                ("loglevel", "5"),
            ])
        );
        assert!(parse_scurl_answer("ERROR").is_empty());
        assert!(parse_scurl_answer("").is_empty());
    }

    #[test]
    fn prefixes_are_case_insensitive_and_need_a_name() {
        assert_eq!(strip_wp_prefix("Wp_aec"), Some("aec"));
        assert_eq!(strip_wp_prefix("wp_"), None);
        assert_eq!(strip_wp_prefix("aec"), None);
        assert_eq!(strip_ucfg_prefix("UCFG_aec"), Some("aec"));
        assert_eq!(strip_ucfg_prefix("ucfg"), None);
    }

    #[test]
    fn percent_decode_handles_utf8_and_invalid_bytes() {
        assert_eq!(percent_decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn source_levels_follow_the_documented_order() {
        let levels: Vec<usize> = Source::ALL.iter().map(|s| s.level()).collect();
        assert_eq!(levels, vec![0, 1, 2, 3, 4, 5, 5, 6]);
        assert!(!Source::SipHeader.persists());
        assert!(Source::SipHeaderPersist.persists());
        assert!(!Source::Stored.persists());
        assert!(Source::Runtime.persists());
    }
}
