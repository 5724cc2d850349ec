//! The SIP password in the OS keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows), never on disk.
//!
//! One entry per profile and account: service = the app identifier (e.g.
//! `org.webphone.desktop`), user = `<profile>/<username>@<server>` (profile `default` when the
//! `profile` parameter is empty).
//!
//! Plain-text passwords from a configuration source are migrated: `password=` in the work
//! directory's `webphone.conf` (`name=value` lines, read at start like `-p`) is stored in the
//! keyring and removed from the file on the first start that can reach the keyring.

use std::path::Path;

/// Name of the optional configuration file in the work directory.
pub const CONFIG_FILE: &str = "webphone.conf";

/// The keyring user of an account, or `None` while the account is incomplete.
pub fn account_key(profile: &str, username: &str, server: &str) -> Option<String> {
    let (username, server) = (username.trim(), server.trim());
    if username.is_empty() || server.is_empty() {
        return None;
    }
    let profile = match profile.trim() {
        "" => "default",
        p => p,
    };
    Some(format!("{profile}/{username}@{server}"))
}

/// Why the keyring cannot be used.
pub fn unavailable_reason() -> Option<&'static str> {
    // libdbus would otherwise try X11 autolaunch of a private bus (dbus-launch) when no session
    // bus is announced.
    if cfg!(all(unix, not(target_os = "macos")))
        && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
    {
        return Some("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
    }
    None
}

fn entry(service: &str, user: &str) -> Result<keyring::Entry, String> {
    if let Some(why) = unavailable_reason() {
        return Err(why.to_string());
    }
    keyring::Entry::new(service, user).map_err(|e| e.to_string())
}

/// Stores (or replaces) the password.
pub fn store(service: &str, user: &str, password: &str) -> Result<(), String> {
    entry(service, user)?
        .set_password(password)
        .map_err(|e| e.to_string())
}

/// Reads the password; `Ok(None)` when there is no entry.
pub fn load(service: &str, user: &str) -> Result<Option<String>, String> {
    match entry(service, user)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Removes the entry (no error when there is none).
pub fn delete(service: &str, user: &str) -> Result<(), String> {
    match entry(service, user)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The parameters of a `name=value` configuration text (blank lines and `#` comments skipped).
pub fn parse_config(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (n, v) = l.split_once('=')?;
            let n = n.trim();
            (!n.is_empty()).then(|| (n.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn is_password_line(line: &str) -> bool {
    line.split_once('=')
        .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("password"))
}

/// The configuration text without its `password=` lines (replaced by a comment).
pub fn without_password(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if is_password_line(line.trim()) {
            out.push_str("# password: moved to the OS keyring\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Reads `dir/webphone.conf` if it exists.
pub fn read_config(dir: &Path) -> Option<(std::path::PathBuf, String)> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    Some((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_config_text() {
        assert_eq!(
            account_key("", "1001", "sip.example.org").as_deref(),
            Some("default/1001@sip.example.org")
        );
        assert_eq!(
            account_key(" work ", "1001", "10.0.0.1:5060").as_deref(),
            Some("work/1001@10.0.0.1:5060")
        );
        assert_eq!(account_key("", "", "x"), None);
        assert_eq!(account_key("", "u", " "), None);
        let text = "# account\nserveraddress=sip.example.org\n\nPassword = s3cr=t\nusername=1001\n";
        assert_eq!(
            parse_config(text),
            [
                ("serveraddress".to_string(), "sip.example.org".to_string()),
                ("Password".to_string(), "s3cr=t".to_string()),
                ("username".to_string(), "1001".to_string()),
            ]
        );
        let clean = without_password(text);
        assert!(!clean.contains("s3cr"), "{clean}");
        assert!(clean.contains("username=1001") && clean.contains("moved to the OS keyring"));
    }

    /// Round trip through the real Secret Service. Needs a session bus with an unlocked
    /// collection: tests/e2e-desktop/keyring.sh (a step of scripts/test.sh, which fails there
    /// when CI=true and no Secret Service can be started) runs it with
    /// WEBPHONE_KEYRING_TEST=1 inside a dbus-run-session with gnome-keyring-daemon. Under a
    /// plain `cargo test` it skips loudly.
    #[test]
    fn keyring_round_trip() {
        let want = std::env::var("WEBPHONE_KEYRING_TEST").is_ok_and(|v| v == "1");
        if let Some(why) = unavailable_reason().filter(|_| !want) {
            eprintln!(
                "==== SKIPPED keyring_round_trip: {why} (run tests/e2e-desktop/keyring.sh) ===="
            );
            return;
        }
        let service = "org.webphone.desktop.test";
        let user = format!("test/{}@127.0.0.1", std::process::id());
        store(service, &user, "first").expect("store");
        assert_eq!(load(service, &user).unwrap().as_deref(), Some("first"));
        store(service, &user, "sécond, with ; chars").expect("replace");
        assert_eq!(
            load(service, &user).unwrap().as_deref(),
            Some("sécond, with ; chars")
        );
        delete(service, &user).expect("delete");
        assert_eq!(load(service, &user).unwrap(), None);
        delete(service, &user).expect("delete twice");
    }
}
