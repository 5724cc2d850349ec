//! Upper-case token substitution for action URLs, the `sms` API and upload URLs.
//!
//! A token is replaced only where it stands as a whole upper-case word: the characters right
//! before and after it must not be `A`–`Z` or `0`–`9` (so `USER` is not taken out of
//! `USERNAME`, nor `TIME` out of `DATETIME`; `_`, `/`, `=`, `&` and lower-case letters are
//! separators). Where several tokens start at the same place, the longest wins. Every value
//! is percent-encoded (RFC 3986 §2.1; only the unreserved set of §2.3 is kept), so a peer
//! name or chat text can never add a query parameter, a fragment or a path to the URL.

use md5::{Digest, Md5};

/// Every token this engine replaces. The `links` set of the catalog, the recording file-name
/// set, the two names of the SMS example (`MYNUMBER`, `TARGETMOBILE`) and our own call-end
/// tokens (`DURATION`, `DURATIONMS`, `CONNECTTIME`, `REASON`, `DISCPARTY`, `LINE`).
pub const TOKENS: &[&str] = &[
    // `links` set
    "DEVICEID",
    "SESSIONID",
    "USERNAME",
    "PASSWORD",
    "CALLEDNUMBER",
    "PEERNUM",
    "PEERDETAILS",
    "DIRECTION",
    "CALLBACKNR",
    "PHONE1",
    "PHONE2",
    "PINCODE",
    "TEXT",
    "STATUS",
    "MD5SIMPLE",
    "MD5NORMAL",
    "MD5SALT",
    // recording file names
    "DATETIME",
    "DATE",
    "TIME",
    "CALLID",
    "USER",
    "CALLER",
    "CALLED",
    "SERVER",
    "COUNTER",
    // SMS example
    "MYNUMBER",
    "TARGETMOBILE",
    // call end (CDR details)
    "DURATION",
    "DURATIONMS",
    "CONNECTTIME",
    "REASON",
    "DISCPARTY",
    "LINE",
];

/// Token values: a name from [`TOKENS`] and its (raw, not yet encoded) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    values: Vec<(&'static str, String)>,
}

impl Tokens {
    /// An empty set: every known token is replaced by nothing until given a value.
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Sets `name` (one of [`TOKENS`]; other names are ignored) to `value`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Tokens {
        if let Some(known) = TOKENS.iter().copied().find(|t| *t == name) {
            let value = value.into();
            match self.values.iter_mut().find(|(k, _)| *k == known) {
                Some(slot) => slot.1 = value,
                None => self.values.push((known, value)),
            }
        }
        self
    }

    /// The value of `name`, empty when unset.
    pub fn get(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// Replaces every token of `template` by its percent-encoded value (see the module doc).
pub fn substitute(template: &str, tokens: &Tokens) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut prev: Option<char> = None;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        let at_boundary = !prev.is_some_and(is_word);
        let hit = at_boundary
            .then(|| {
                TOKENS
                    .iter()
                    .copied()
                    .filter(|t| rest.starts_with(t))
                    .filter(|t| !rest[t.len()..].chars().next().is_some_and(is_word))
                    .max_by_key(|t| t.len())
            })
            .flatten();
        match hit {
            Some(t) => {
                out.push_str(&percent_encode(tokens.get(t)));
                rest = &rest[t.len()..];
                prev = t.chars().last();
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
                prev = Some(c);
            }
        }
    }
    out
}

/// Percent-encodes everything outside the RFC 3986 §2.3 unreserved set, byte by byte of the
/// UTF-8 form (§2.5).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lower-case hex MD5 of `text` (the `MD5SIMPLE` / `MD5NORMAL` tokens).
pub fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `(DATE, TIME, DATETIME)` of a Unix time in UTC: `YYYY_MM_DD`, `HH_MM_SS` and both joined
/// by `_` (the catalog's sample file name `callrecord_2019_03_12_...` uses `_` in the date).
pub fn date_tokens(unix_secs: u64) -> (String, String, String) {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let date = format!("{y:04}_{m:02}_{d:02}");
    let time = format!(
        "{:02}_{:02}_{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    let datetime = format!("{date}_{time}");
    (date, time, datetime)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(pairs: &[(&str, &str)]) -> Tokens {
        let mut t = Tokens::new();
        for (k, v) in pairs {
            t.set(k, *v);
        }
        t
    }

    #[test]
    fn documented_example_is_substituted() {
        let t = toks(&[("USERNAME", "1001"), ("CALLEDNUMBER", "1002")]);
        assert_eq!(
            substitute(
                "https://mydomain.com/myapi/?user=USERNAME&called=CALLEDNUMBER",
                &t
            ),
            "https://mydomain.com/myapi/?user=1001&called=1002"
        );
    }

    #[test]
    fn every_token_is_replaced() {
        let mut t = Tokens::new();
        for (i, name) in TOKENS.iter().enumerate() {
            t.set(name, format!("v{i}"));
        }
        for (i, name) in TOKENS.iter().enumerate() {
            assert_eq!(
                substitute(&format!("/x?a={name}&b"), &t),
                format!("/x?a=v{i}&b")
            );
        }
        // Unset tokens vanish.
        assert_eq!(substitute("a=PINCODE;", &Tokens::new()), "a=;");
    }

    #[test]
    fn longest_token_wins_and_words_are_not_split() {
        let t = toks(&[
            ("USER", "u"),
            ("USERNAME", "name"),
            ("DATE", "d"),
            ("TIME", "t"),
            ("DATETIME", "dt"),
            ("CALLED", "c"),
            ("CALLEDNUMBER", "cn"),
        ]);
        assert_eq!(
            substitute("USER-USERNAME-DATETIME-DATE_TIME-CALLED/CALLEDNUMBER", &t),
            "u-name-dt-d_t-c/cn"
        );
        // Inside a longer upper-case word nothing is replaced; lower case is a separator.
        assert_eq!(substitute("XUSER USERX userUSER", &t), "XUSER USERX useru");
        assert_eq!(substitute("voice_DATETIME_USER.wav", &t), "voice_dt_u.wav");
    }

    #[test]
    fn untrusted_values_cannot_break_the_url() {
        let t = toks(&[
            ("TEXT", "hi & bye=1#frag /../?x"),
            ("PEERDETAILS", "Ünïcode \"name\"\r\n"),
        ]);
        let url = substitute("http://h/p?t=TEXT&d=PEERDETAILS", &t);
        assert_eq!(
            url,
            "http://h/p?t=hi%20%26%20bye%3D1%23frag%20%2F..%2F%3Fx&d=%C3%9Cn%C3%AFcode%20%22name%22%0D%0A"
        );
        assert!(!url.contains('#') && !url.contains(' '));
    }

    #[test]
    fn non_ascii_templates_survive() {
        let t = toks(&[("TEXT", "ok")]);
        assert_eq!(substitute("ÄTEXT é TEXTé", &t), "Äok é oké");
    }

    #[test]
    fn md5_matches_rfc1321_vectors() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn dates_are_utc_with_underscores() {
        // 2019-03-12 10:20:30 UTC
        let (d, t, dt) = date_tokens(1_552_386_030);
        assert_eq!(d, "2019_03_12");
        assert_eq!(t, "10_20_30");
        assert_eq!(dt, "2019_03_12_10_20_30");
        assert_eq!(date_tokens(0).0, "1970_01_01");
        assert_eq!(date_tokens(951_782_400).0, "2000_02_29");
    }
}
