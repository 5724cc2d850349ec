//! Links the app handles, from the command line, a second launch or the OS URL handler:
//!
//! - `webphone:?wp_serveraddress=...&wp_username=...` (also `webphone://provision?...` and
//!   `webphone:provision?...`): provisioning. Every `wp_NAME=VALUE` of the query becomes the
//!   engine parameter `NAME`, set and persisted with `setparameter`; keys without the `wp_`
//!   prefix are ignored (a link cannot pass arbitrary names by accident).
//! - `sip:`, `sips:`, `tel:`, `callto:`: dial. `sip:user@host` is dialled as the URI,
//!   `sip:user` (no host) as `user` (so `sip:echo` reaches the built-in echo test), `tel:` and
//!   `callto:` numbers lose their visual separators (RFC 3966 `-`, `.`, `(`, `)`, spaces) and
//!   parameters.

/// The URL schemes the app registers with the OS (also in tauri.conf.json, `plugins.deep-link`).
pub const SCHEMES: &[&str] = &["webphone", "sip", "sips", "tel", "callto"];

/// What a link asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Set and persist these engine parameters, then start and register.
    Provision(Vec<(String, String)>),
    /// Dial this target.
    Dial(String),
}

/// The scheme of `s` if it is one of ours (case-insensitive), lower-cased.
pub fn scheme_of(s: &str) -> Option<String> {
    let (scheme, _) = s.trim().split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    SCHEMES.contains(&scheme.as_str()).then_some(scheme)
}

/// Whether a command-line argument is a link for us (and not an option or a path).
pub fn is_link(arg: &str) -> bool {
    !arg.starts_with('-') && scheme_of(arg).is_some()
}

/// Decodes `%XX` escapes (invalid ones are kept as given); `+` becomes a space when
/// `plus_is_space` (query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one link. `Err` carries a message for the log.
pub fn parse_link(link: &str) -> Result<LinkAction, String> {
    let link = link.trim();
    let scheme = scheme_of(link).ok_or_else(|| format!("not a link of ours: {link}"))?;
    let rest = &link[scheme.len() + 1..];
    match scheme.as_str() {
        "webphone" => {
            // webphone:?q, webphone://provision?q, webphone:provision?q, webphone://?q
            let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
            let query = query.split('#').next().unwrap_or("");
            let mut params = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = percent_decode(k, true);
                let Some(name) = k
                    .get(..3)
                    .filter(|p| p.eq_ignore_ascii_case("wp_"))
                    .map(|_| k[3..].trim().to_string())
                    .filter(|n| !n.is_empty())
                else {
                    continue;
                };
                params.push((name, percent_decode(v, true)));
            }
            if params.is_empty() {
                return Err(format!("{scheme}: link without wp_ parameters"));
            }
            Ok(LinkAction::Provision(params))
        }
        "sip" | "sips" => {
            let target = percent_decode(rest.trim_start_matches("//"), false);
            // Header part (`?subject=...`) is not ours to send.
            let target = target.split('?').next().unwrap_or("").trim().to_string();
            if target.is_empty() {
                return Err(format!("{scheme}: link without a target"));
            }
            if target.contains('@') {
                Ok(LinkAction::Dial(format!("{scheme}:{target}")))
            } else {
                // `sip:1002` / `sip:echo`: a user of our own server.
                let user = target.split(';').next().unwrap_or("").to_string();
                if user.is_empty() {
                    return Err(format!("{scheme}: link without a target"));
                }
                Ok(LinkAction::Dial(user))
            }
        }
        _ => {
            // tel:, callto: (also callto://number)
            let target = percent_decode(rest.trim_start_matches("//"), false);
            let number = target
                .split([';', '?'])
                .next()
                .unwrap_or("")
                .trim_end_matches('/');
            let number: String = number
                .chars()
                .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
                .collect();
            if number.is_empty() {
                return Err(format!("{scheme}: link without a number"));
            }
            Ok(LinkAction::Dial(number))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dial(s: &str) -> LinkAction {
        LinkAction::Dial(s.to_string())
    }

    #[test]
    fn provisioning_links() {
        let want = LinkAction::Provision(vec![
            ("serveraddress".into(), "sip.example.org:5060".into()),
            ("username".into(), "alice smith".into()),
        ]);
        for l in [
            "webphone:?wp_serveraddress=sip.example.org%3A5060&wp_username=alice+smith",
            "webphone://provision?wp_serveraddress=sip.example.org:5060&wp_username=alice%20smith",
            "WebPhone:provision?other=1&wp_serveraddress=sip.example.org:5060&wp_username=alice+smith#x",
        ] {
            assert_eq!(parse_link(l).unwrap(), want, "{l}");
        }
        assert!(parse_link("webphone://provision").is_err());
        assert!(parse_link("webphone:?serveraddress=x").is_err());
        assert_eq!(
            parse_link("webphone:?wp_x=a=b&WP_Y").unwrap(),
            LinkAction::Provision(vec![("x".into(), "a=b".into()), ("Y".into(), "".into())])
        );
    }

    #[test]
    fn dial_links() {
        assert_eq!(parse_link("sip:echo").unwrap(), dial("echo"));
        assert_eq!(parse_link("sip:1002;transport=udp").unwrap(), dial("1002"));
        assert_eq!(
            parse_link("sip:bob@example.org?subject=hi").unwrap(),
            dial("sip:bob@example.org")
        );
        assert_eq!(
            parse_link("SIPS:bob%40x@example.org").unwrap(),
            dial("sips:bob@x@example.org")
        );
        assert_eq!(
            parse_link("tel:+1-201-555-0123;ext=1").unwrap(),
            dial("+12015550123")
        );
        assert_eq!(
            parse_link("callto://555 (12).34/").unwrap(),
            dial("5551234")
        );
        assert_eq!(parse_link("callto:1002").unwrap(), dial("1002"));
        for bad in ["sip:", "tel:;x", "callto://", "http://x", "sip:;x"] {
            assert!(parse_link(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_detection_and_decoding() {
        assert!(is_link("sip:1@2"));
        assert!(is_link("tel:1"));
        assert!(!is_link("--page"));
        assert!(!is_link("/tmp/x"));
        assert!(!is_link("http://x"));
        assert_eq!(percent_decode("a%2Cb%zz%4", false), "a,b%zz%4");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
