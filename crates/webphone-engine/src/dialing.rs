//! What the user dialled becomes what the SIP layer calls: phone-number clean-up
//! (`normalizenumber`), prefix rewriting (`numpxrewrite`) and the technical prefix
//! (`techprefix`), in that order (the catalog leaves the order open; this one lets rewrite
//! rules see the clean number and keeps the technical prefix outside them).
//!
//! SIP URIs and `user@host` targets are never rewritten.

/// Whether `s` is a SIP URI or `user@host` target rather than a number or user name.
pub fn is_uri(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    l.starts_with("sip:") || l.starts_with("sips:") || l.contains('@')
}

/// Whether `s` looks like a phone number: at least 5 digits, between 5 and 20 characters, no
/// letters and no `@`.
pub fn looks_like_phone_number(s: &str) -> bool {
    let s = s.trim();
    let len = s.chars().count();
    (5..=20).contains(&len)
        && s.chars().filter(char::is_ascii_digit).count() >= 5
        && !s.chars().any(|c| c.is_alphabetic() || c == '@')
}

/// Keeps only digits, `*`, `#` and a leading `+` (spaces, dashes, dots, brackets go).
pub fn normalize(s: &str) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    if s.starts_with('+') {
        out.push('+');
    }
    out.extend(
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#'),
    );
    out
}

/// One `numpxrewrite` rule: `prefix,replacement,minlen,maxlen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    pub prefix: String,
    pub replacement: String,
    pub min_len: usize,
    pub max_len: usize,
}

/// Parses `prefix,replacement,minlen,maxlen;...`; malformed rules are skipped (a missing
/// length means no bound).
pub fn parse_rules(rules: &str) -> Vec<RewriteRule> {
    rules
        .split(';')
        .filter_map(|r| {
            let parts: Vec<&str> = r.split(',').map(str::trim).collect();
            if parts.len() < 2 || parts[0].is_empty() {
                return None;
            }
            let num = |i: usize, default: usize| {
                parts
                    .get(i)
                    .filter(|p| !p.is_empty())
                    .map_or(Some(default), |p| p.parse().ok())
            };
            Some(RewriteRule {
                prefix: parts[0].to_string(),
                replacement: parts[1].to_string(),
                min_len: num(2, 0)?,
                max_len: num(3, usize::MAX)?,
            })
        })
        .collect()
}

/// Applies the first rule whose prefix matches and whose length bounds hold (the length of
/// the number before rewriting).
pub fn rewrite(number: &str, rules: &[RewriteRule]) -> String {
    let len = number.chars().count();
    for r in rules {
        if number.starts_with(&r.prefix) && (r.min_len..=r.max_len).contains(&len) {
            return format!("{}{}", r.replacement, &number[r.prefix.len()..]);
        }
    }
    number.to_string()
}

/// The number to dial for what the user typed.
pub fn prepare_number(input: &str, normalizenumber: bool, rules: &str, techprefix: &str) -> String {
    let input = input.trim();
    if is_uri(input) {
        return input.to_string();
    }
    let mut n = if normalizenumber && looks_like_phone_number(input) {
        normalize(input)
    } else {
        input.to_string()
    };
    n = rewrite(&n, &parse_rules(rules));
    format!("{}{n}", techprefix.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_lose_formatting_but_names_do_not() {
        assert_eq!(normalize("+1 (555) 123-4567"), "+15551234567");
        assert!(looks_like_phone_number("+1 (555) 123-4567"));
        assert!(
            !looks_like_phone_number("1002"),
            "four digits is an extension"
        );
        assert!(!looks_like_phone_number("john.smith"));
        assert_eq!(prepare_number("06-12 34 56", true, "", ""), "06123456");
        assert_eq!(prepare_number("06-12 34 56", false, "", ""), "06-12 34 56");
        assert_eq!(prepare_number("alice", true, "", "99"), "99alice");
    }

    #[test]
    fn rewrite_rules_follow_prefix_and_length() {
        let rules = "74,004074,8,10;+,001,7,14;";
        // "74" numbers of 8..10 characters.
        assert_eq!(
            prepare_number("741234567", true, rules, ""),
            "0040741234567"
        );
        assert_eq!(prepare_number("7412", true, rules, ""), "7412", "too short");
        // "+" numbers of 7..14 characters.
        assert_eq!(
            prepare_number("+3612345678", true, rules, ""),
            "0013612345678"
        );
        // The first matching rule wins; then the technical prefix goes in front.
        assert_eq!(
            prepare_number("+3612345678", true, rules, "#9"),
            "#90013612345678"
        );
    }

    #[test]
    fn sip_uris_are_never_rewritten() {
        let rules = "sip,xxx;";
        assert_eq!(
            prepare_number("sip:1002@pbx.example", true, rules, "9"),
            "sip:1002@pbx.example"
        );
        assert_eq!(prepare_number("1002@pbx", true, rules, "9"), "1002@pbx");
    }

    #[test]
    fn malformed_rules_are_skipped() {
        assert_eq!(
            parse_rules("x;,a;1,2,z,4;5,6,,"),
            vec![RewriteRule {
                prefix: "5".into(),
                replacement: "6".into(),
                min_len: 0,
                max_len: usize::MAX,
            }]
        );
    }
}
