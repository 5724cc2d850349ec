//! The desktop shell's own small state file, `<work dir>/desktop-state.json`: the main window's
//! size and position, the do-not-disturb switch (with the `autoignore` value it replaced) and the
//! numbers of the last calls (the tray's "Recent" menu).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "desktop-state.json";

/// Logical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowGeometry {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl WindowGeometry {
    /// Refuses values no screen has (a corrupt file must not hide the window).
    pub fn sane(&self) -> bool {
        let ok = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        ok(self.width, 100.0, 20000.0)
            && ok(self.height, 100.0, 20000.0)
            && ok(self.x, -20000.0, 40000.0)
            && ok(self.y, -20000.0, 40000.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DesktopState {
    pub window: Option<WindowGeometry>,
    pub dnd: bool,
    /// The `autoignore` value before do-not-disturb set it to 2.
    pub dnd_saved_autoignore: Option<String>,
    /// The peers of the last ended calls, newest first, without repeats (at most [`RECENT_MAX`]).
    pub recent: Vec<String>,
}

/// How many recent numbers the tray offers.
pub const RECENT_MAX: usize = 5;

impl DesktopState {
    /// Puts `number` first in the recent list (moving it up if it is there already). Returns
    /// whether the list changed.
    pub fn push_recent(&mut self, number: &str) -> bool {
        let number = number.trim();
        if number.is_empty() || self.recent.first().is_some_and(|n| n == number) {
            return false;
        }
        self.recent.retain(|n| n != number);
        self.recent.insert(0, number.to_string());
        self.recent.truncate(RECENT_MAX);
        true
    }
}

pub fn path(work_dir: &Path) -> PathBuf {
    work_dir.join(STATE_FILE)
}

/// The stored state; the default when the file is missing or unreadable.
pub fn load(file: &Path) -> DesktopState {
    let mut st: DesktopState = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if st.window.is_some_and(|w| !w.sane()) {
        st.window = None;
    }
    st.recent.retain(|n| !n.trim().is_empty());
    st.recent.truncate(RECENT_MAX);
    st
}

/// Writes the state (through a temporary file, so a crash never leaves half a file).
pub fn save(file: &Path, st: &DesktopState) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(st)?)?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("wp-desk-state-{}", std::process::id()));
        let f = path(&dir);
        assert_eq!(load(&f), DesktopState::default());
        let st = DesktopState {
            window: Some(WindowGeometry {
                x: 10.0,
                y: -5.0,
                width: 400.0,
                height: 650.5,
            }),
            dnd: true,
            dnd_saved_autoignore: Some("0".into()),
            recent: vec!["1002".into(), "sip:bob@example.org".into()],
        };
        save(&f, &st).unwrap();
        assert_eq!(load(&f), st);
        std::fs::write(
            &f,
            r#"{"window":{"x":0,"y":0,"width":1,"height":99999},"dnd":true}"#,
        )
        .unwrap();
        let l = load(&f);
        assert_eq!((l.window, l.dnd), (None, true));
        std::fs::write(&f, "not json").unwrap();
        assert_eq!(load(&f), DesktopState::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recent_numbers_newest_first_unique_bounded() {
        let mut st = DesktopState::default();
        assert!(!st.push_recent(" "));
        for n in ["1", "2", "3", "4", "5", "6"] {
            assert!(st.push_recent(n));
        }
        assert_eq!(st.recent, ["6", "5", "4", "3", "2"]);
        assert!(!st.push_recent("6"), "already first");
        assert!(st.push_recent("3"));
        assert_eq!(st.recent, ["3", "6", "5", "4", "2"]);
    }
}
