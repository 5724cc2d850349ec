//! Extra SIP accounts (multi-account): the `extraregisteraccounts` parameter and the
//! `registerex(accounts)` function share one format.
//!
//! Accounts are separated by `;` (a line break is accepted too), the fields of an account
//! by `,`, in this order: `server,usr,pwd,ival,proxy,realm,authuser`.
//!
//! - `server`: registrar and domain, `host[:port]` (required);
//! - `usr`: SIP user name, also the Contact user of the binding (required);
//! - `pwd`: password (may be empty);
//! - `ival`: registration interval in seconds (the `Expires` asked for, RFC 3261 §10.2.1);
//!   empty, `0` or negative = the main account's `registerinterval`; otherwise clamped to
//!   30..86400 like `registerinterval`;
//! - `proxy`: outbound proxy `host[:port]`, `realm`: expected digest realm, `authuser`:
//!   digest user name when it differs from `usr` (RFC 2617 §3.2.2); all optional.
//!
//! A `,` or `;` cannot appear inside a field. An entry that breaks the format (no server, no
//! user, a non-numeric interval, more than seven fields, spaces inside a field) is left out
//! and reported; the others are used. Reports never contain the password.

/// One extra account as written by the user.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtraAccount {
    pub server: String,
    pub username: String,
    pub password: String,
    /// Registration interval in seconds; `None`: the main account's `registerinterval`.
    pub interval: Option<u32>,
    pub proxy: Option<String>,
    pub realm: Option<String>,
    pub auth_username: Option<String>,
}

impl std::fmt::Debug for ExtraAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraAccount")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &crate::params::REDACTED)
            .field("interval", &self.interval)
            .field("proxy", &self.proxy)
            .field("realm", &self.realm)
            .field("auth_username", &self.auth_username)
            .finish()
    }
}

impl ExtraAccount {
    /// `usr@server`, how logs and notifications name the account.
    pub fn name(&self) -> String {
        format!("{}@{}", self.username, self.server)
    }
}

/// The `username` parameter as the account's user (`allowsipuriasusername` 0, the default):
/// a SIP URI or `user@domain` gives its user part, and its `host[:port]` as the second value
/// (the server to use when `serveraddress` is empty). URI parameters and headers are dropped
/// (RFC 3261 §19.1.1). With `keep` (`allowsipuriasusername` 1) the value is used as entered.
pub fn username_of(raw: &str, keep: bool) -> (String, Option<String>) {
    let raw = raw.trim();
    if keep {
        return (raw.to_string(), None);
    }
    let lower = raw.to_ascii_lowercase();
    let rest = ["sips:", "sip:"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(raw, |p| &raw[p.len()..]);
    let rest = rest.split(['?', ';']).next().unwrap_or("");
    match rest.rsplit_once('@') {
        Some((user, host)) if !user.is_empty() => {
            let host = host.trim().trim_end_matches('>');
            (
                user.trim().to_string(),
                (!host.is_empty()).then(|| host.to_string()),
            )
        }
        _ => (rest.trim().to_string(), None),
    }
}

/// The accounts of a list, and what was wrong with the entries left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedAccounts {
    pub accounts: Vec<ExtraAccount>,
    /// One message per entry left out (1-based entry number, never the password).
    pub problems: Vec<String>,
}

/// Smallest and largest registration interval, as for `registerinterval`.
const INTERVAL_RANGE: (u32, u32) = (30, 86_400);
/// Number of fields of an account.
const FIELDS: usize = 7;

/// Parse an account list. Empty entries (a trailing `;`, blank lines) are skipped silently.
pub fn parse_accounts(text: &str) -> ParsedAccounts {
    let mut out = ParsedAccounts::default();
    let entries = text
        .split([';', '\n', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        match parse_entry(entry) {
            Ok(acc) => out.accounts.push(acc),
            Err(why) => out
                .problems
                .push(format!("account {}: {why}; left out", i + 1)),
        }
    }
    out
}

fn parse_entry(entry: &str) -> Result<ExtraAccount, String> {
    let fields: Vec<&str> = entry.split(',').map(str::trim).collect();
    if fields.len() > FIELDS {
        return Err(format!(
            "{} fields, at most {FIELDS} (server,usr,pwd,ival,proxy,realm,authuser; ',' and ';' \
             cannot appear inside a field)",
            fields.len()
        ));
    }
    let field = |n: usize| fields.get(n).copied().unwrap_or("");
    let opt = |n: usize, what: &str| -> Result<Option<String>, String> {
        let v = field(n);
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{what} contains spaces or control characters"));
        }
        Ok((!v.is_empty()).then(|| v.to_string()))
    };
    let server = opt(0, "server")?.ok_or("server is missing")?;
    let username = opt(1, "usr")?.ok_or("usr (user name) is missing")?;
    let password = field(2);
    if password.chars().any(char::is_control) {
        return Err("pwd contains control characters".into());
    }
    let interval = match field(3) {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(n) if n <= 0 => None,
            Ok(n) => Some(n.clamp(i64::from(INTERVAL_RANGE.0), i64::from(INTERVAL_RANGE.1)) as u32),
            // The value is not echoed: with a field missing or one too many, the
            // password lands here (the manual's own example does this).
            Err(_) => {
                return Err(format!(
                    "ival (4th field) is not a number of seconds (for {username}@{server}; \
                     a missing or extra ',' shifts the fields)"
                ))
            }
        },
    };
    Ok(ExtraAccount {
        server,
        username,
        password: password.to_string(),
        interval,
        proxy: opt(4, "proxy")?,
        realm: opt(5, "realm")?,
        auth_username: opt(6, "authuser")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> ExtraAccount {
        let p = parse_accounts(text);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.accounts.len(), 1);
        p.accounts[0].clone()
    }

    #[test]
    fn all_seven_fields_are_read_in_order() {
        let a = one("sip.example.com:5070,1003,s3cret,300,proxy.example.com,example.com,auth1003");
        assert_eq!(
            a,
            ExtraAccount {
                server: "sip.example.com:5070".into(),
                username: "1003".into(),
                password: "s3cret".into(),
                interval: Some(300),
                proxy: Some("proxy.example.com".into()),
                realm: Some("example.com".into()),
                auth_username: Some("auth1003".into()),
            }
        );
        assert_eq!(a.name(), "1003@sip.example.com:5070");
    }

    #[test]
    fn later_fields_are_optional_and_empty_ones_mean_not_set() {
        let a = one("10.0.0.1,1004");
        assert_eq!(a.password, "");
        assert_eq!(a.interval, None);
        assert_eq!((a.proxy, a.realm, a.auth_username), (None, None, None));
        let b = one("10.0.0.1,1004,pw,,,,");
        assert_eq!(b.interval, None);
        assert_eq!(b.proxy, None);
    }

    #[test]
    fn several_accounts_with_trailing_separator_and_spaces() {
        let p = parse_accounts(" a.example,1001,x,60 ; b.example,1002,y ;\n c.example,1003,z;");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let names: Vec<String> = p.accounts.iter().map(ExtraAccount::name).collect();
        assert_eq!(
            names,
            ["1001@a.example", "1002@b.example", "1003@c.example"]
        );
        assert_eq!(p.accounts[0].interval, Some(60));
    }

    #[test]
    fn interval_zero_or_negative_means_default_and_is_clamped() {
        assert_eq!(one("h,1,p,0").interval, None);
        assert_eq!(one("h,1,p,-1").interval, None);
        assert_eq!(one("h,1,p,5").interval, Some(30));
        assert_eq!(one("h,1,p,999999").interval, Some(86_400));
    }

    #[test]
    fn the_manual_example_with_its_comma_typo_leaves_the_broken_entry_out() {
        // "sip1.mydomain,com,..." shifts every field: the interval field holds the password.
        let p = parse_accounts("sip1.mydomain,com,1111,xxx,300;sip2.mydomain.com,2222,xxx;");
        assert_eq!(p.accounts.len(), 1);
        assert_eq!(p.accounts[0].name(), "2222@sip2.mydomain.com");
        assert_eq!(p.problems.len(), 1);
        assert!(
            p.problems[0].starts_with("account 1: ival"),
            "{:?}",
            p.problems
        );
        assert!(
            !p.problems[0].contains("xxx"),
            "the shifted password is not shown"
        );
    }

    #[test]
    fn broken_entries_are_reported_without_the_password() {
        let p = parse_accounts(
            ",1001,topsecret;host,,topsecret;host,1,topsecret,1,2,3,4,5;ho st,1,topsecret;h,1,top\u{1}secret",
        );
        assert!(p.accounts.is_empty());
        assert_eq!(p.problems.len(), 5, "{:?}", p.problems);
        assert!(p.problems[0].contains("server is missing"));
        assert!(p.problems[1].contains("usr"));
        assert!(p.problems[2].contains("8 fields"));
        assert!(p.problems[3].contains("spaces"));
        assert!(p.problems[4].contains("control"));
        for msg in &p.problems {
            assert!(!msg.contains("topsecret") && !msg.contains("top"), "{msg}");
        }
        let dbg = format!("{:?}", one("h,1,topsecret"));
        assert!(!dbg.contains("topsecret"), "{dbg}");
    }

    #[test]
    fn empty_and_garbage_input_never_panics() {
        assert_eq!(parse_accounts(""), ParsedAccounts::default());
        assert_eq!(parse_accounts(" ;;\n ; "), ParsedAccounts::default());
        for junk in [
            ",,,,,,,,,,",
            ";,;",
            "\u{0}",
            "é,ü,ß,∞,,",
            "a,b,c,99999999999999999999999",
        ] {
            let _ = parse_accounts(junk);
        }
    }

    #[test]
    fn a_sip_uri_username_gives_its_user_and_server_unless_kept() {
        assert_eq!(username_of(" 1001 ", false), ("1001".into(), None));
        assert_eq!(
            username_of("sip:1001@pbx.example.org:5080;transport=tcp", false),
            ("1001".into(), Some("pbx.example.org:5080".into()))
        );
        assert_eq!(
            username_of("SIPS:alice@[::1]:5061", false),
            ("alice".into(), Some("[::1]:5061".into()))
        );
        assert_eq!(
            username_of("bob@example.org", false),
            ("bob".into(), Some("example.org".into()))
        );
        assert_eq!(username_of("sip:carol", false), ("carol".into(), None));
        assert_eq!(
            username_of("@example.org", false),
            ("@example.org".into(), None)
        );
        assert_eq!(
            username_of("sip:1001@pbx.example.org", true),
            ("sip:1001@pbx.example.org".into(), None)
        );
    }
}
