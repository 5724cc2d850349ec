//! Extra SIP headers: the `customsipheader` parameter and `setsipheader()`.
//!
//! Rules (catalog: api.tsv `setsipheader`, parameters.tsv `customsipheader`):
//! - `customsipheader` holds `Name: value` items separated by `;`, added to every request;
//! - `setsipheader("Name: value")` acts globally (every line and the registrar) when the line
//!   is -2 or the active line has no call, otherwise on the active line's call only;
//! - several calls with different names accumulate, the same name replaces its value;
//! - `setsipheader("Name:")` (empty value) removes that header, `setsipheader("")` removes all
//!   headers of that scope.
//!
//! The SIP layer refuses names and values that could break the message (CR/LF, the headers it
//! owns such as Via or Call-ID): those come back to the caller as a clear error.

use serde_json::Value;

use super::{arg, bad, Core, Peer, Severity};
use crate::lines::LineSel;
use crate::phone::ApiError;

/// One `Name: value` item; `None` for an item without a colon. An empty value means "remove".
fn parse_item(item: &str) -> Option<(String, String)> {
    let (name, value) = item.split_once(':')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), value.trim().to_string()))
}

/// Parses `Name: value;Name2: value2`; items without a colon are refused.
pub(super) fn parse_items(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_item(s).ok_or_else(|| format!("'{s}' is not 'Name: value'")))
        .collect()
}

/// Applies `items` to `set`: same name (case-insensitive) replaces, empty value removes, new
/// names are appended.
pub(super) fn merge(set: &mut Vec<(String, String)>, items: Vec<(String, String)>) {
    for (name, value) in items {
        set.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        if !value.is_empty() {
            set.push((name, value));
        }
    }
}

impl Core {
    /// The headers every request carries: `customsipheader` then the global `setsipheader`
    /// ones (a name in both takes the `setsipheader` value).
    /// Items of `customsipheader` that are not `Name: value` are left out (with a warning):
    /// the parameter is a plain string, so a broken value must not stop the phone.
    fn global_headers(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for item in self.params.get("customsipheader").split(';') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match parse_item(item) {
                Some(h) => merge(&mut all, vec![h]),
                None => self.log(
                    Severity::Warning,
                    &format!("customsipheader: '{item}' is not 'Name: value', left out"),
                ),
            }
        }
        merge(&mut all, self.extra_headers.clone());
        all
    }

    /// Hands the global headers to the SIP layer (at start and after each change).
    pub(super) fn push_global_headers(&mut self) -> Result<(), ApiError> {
        let headers = self.global_headers();
        if let Some(sip) = &self.sip {
            sip.set_extra_headers(headers)
                .map_err(|e| bad(format!("setsipheader: {e}")))?;
        }
        Ok(())
    }

    /// `setsipheader(header, line)`.
    pub(super) fn setsipheader_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let text = arg(args, 0).unwrap_or("").trim().to_string();
        let items = parse_items(&text).map_err(|e| {
            bad(format!(
                "usage: setsipheader(\"Name: value\"), several separated by ';': {e}"
            ))
        })?;
        let sel = self.default_sel(arg(args, 1))?;
        // The active line's call, unless the global scope was asked for or there is no call.
        let call = match sel {
            LineSel::All => None,
            LineSel::Current => self.lines.active(),
            LineSel::Number(n) => Some(n),
        }
        .and_then(|n| match self.lines.get(n).map(|l| &l.peer) {
            Some(Peer::Sip(k)) => Some((n, *k)),
            _ => None,
        });
        match call {
            None => {
                let before = self.extra_headers.clone();
                if text.is_empty() {
                    self.extra_headers.clear();
                } else {
                    merge(&mut self.extra_headers, items);
                }
                if let Err(e) = self.push_global_headers() {
                    self.extra_headers = before;
                    return Err(e);
                }
            }
            Some((n, key)) => {
                let Some(l) = self.lines.get_mut(n) else {
                    return Err(ApiError::Failed(format!("no call on line {n}")));
                };
                let mut set = l.sip_headers.clone();
                if text.is_empty() {
                    set.clear();
                } else {
                    merge(&mut set, items);
                }
                if let Some(sip) = &self.sip {
                    sip.set_call_headers(key, set.clone())
                        .map_err(|e| bad(format!("setsipheader: {e}")))?;
                }
                if let Some(l) = self.lines.get_mut(n) {
                    l.sip_headers = set;
                }
            }
        }
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn items_are_split_on_semicolons_and_trimmed() {
        assert_eq!(
            parse_items("x-key1: val1; X-Key2:val2 ;").unwrap(),
            vec![h("x-key1", "val1"), h("X-Key2", "val2")]
        );
        assert_eq!(parse_items("").unwrap(), vec![]);
        assert!(parse_items("no colon here").is_err());
        assert!(parse_items(": value").is_err());
    }

    #[test]
    fn same_name_replaces_new_name_accumulates_empty_value_removes() {
        let mut set = vec![];
        merge(&mut set, vec![h("X-A", "1")]);
        merge(&mut set, vec![h("X-B", "2")]);
        merge(&mut set, vec![h("x-a", "3")]);
        assert_eq!(set, vec![h("X-B", "2"), h("x-a", "3")]);
        merge(&mut set, vec![h("X-B", "")]);
        assert_eq!(set, vec![h("x-a", "3")]);
    }
}
