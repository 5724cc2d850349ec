//! The desktop shell's own small state file, `<work dir>/desktop-state.json`: the main window's
//! size and position, and the do-not-disturb switch (with the `autoignore` value it replaced).

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
}
