//! Build script of the desktop app.
//!
//! 1. Assembles the frontend the app embeds, `src-tauri/dist/` (gitignored), from the
//!    repository's `ui/`, `skins/` and `i18n/` folders side by side, because the pages reach
//!    each other with relative paths (`skins/softphone/softphone.html` loads
//!    `../../ui/webphone_api.js` and `../../i18n/<lang>.json`). Only web files are copied;
//!    `node_modules`, test folders and hidden entries are skipped. A file is written only when
//!    its content changed and files that no longer exist in the sources are removed, so an
//!    unchanged tree does not trigger rebuilds.
//!    The desktop shell's own pop-up page, `src-tauri/popup/`, is copied to `dist/popup`.
//! 2. Runs `tauri_build` (which reads `tauri.conf.json`, `frontendDist: "dist"`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The folders of the repository that make up the frontend, copied to `dist/<name>`.
const SOURCES: &[&str] = &["ui", "skins", "i18n"];
/// Folder names never copied.
const SKIP_DIRS: &[&str] = &["node_modules", "test", "tests"];
/// File extensions of web files (lower case). Licence texts (`.txt`) ship with the libraries.
const WEB_EXTENSIONS: &[&str] = &[
    "html", "htm", "js", "mjs", "css", "json", "svg", "png", "jpg", "jpeg", "gif", "webp", "ico",
    "woff", "woff2", "ttf", "otf", "wav", "mp3", "ogg", "txt",
];

fn is_web_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| WEB_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn skipped_name(name: &str) -> bool {
    name.starts_with('.') || SKIP_DIRS.contains(&name)
}

/// Copies the web files of `src` into `dst` (recursively); records every destination file.
fn copy_tree(src: &Path, dst: &Path, written: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    let mut entries = fs::read_dir(src)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            continue;
        };
        if skipped_name(name_str) {
            continue;
        }
        let from = entry.path();
        let to = dst.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&from, &to, written)?;
        } else if kind.is_file() && is_web_file(&from) {
            let data = fs::read(&from)?;
            if fs::read(&to).ok().as_deref() != Some(data.as_slice()) {
                fs::create_dir_all(dst)?;
                fs::write(&to, &data)?;
            }
            written.insert(to);
        }
    }
    Ok(())
}

/// Removes files under `dir` that are not in `keep`, then empty folders. Returns whether `dir`
/// is empty afterwards.
fn prune(dir: &Path, keep: &BTreeSet<PathBuf>) -> io::Result<bool> {
    let mut empty = true;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if prune(&path, keep)? {
                fs::remove_dir(&path)?;
            } else {
                empty = false;
            }
        } else if keep.contains(&path) {
            empty = false;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(empty)
}

fn assemble_frontend() -> io::Result<()> {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .parent()
        .expect("src-tauri is inside the repository");
    let dist = manifest_dir.join("dist");
    fs::create_dir_all(&dist)?;
    let mut written = BTreeSet::new();
    for name in SOURCES {
        let src = root.join(name);
        // Cargo scans a folder recursively for changes.
        println!("cargo:rerun-if-changed={}", src.display());
        copy_tree(&src, &dist.join(name), &mut written)?;
    }
    // The incoming-call pop-up of the desktop shell (not a page of ui/: it talks to the app's
    // own `popup_*` commands).
    let popup = manifest_dir.join("popup");
    println!("cargo:rerun-if-changed={}", popup.display());
    copy_tree(&popup, &dist.join("popup"), &mut written)?;
    prune(&dist, &written)?;
    for page in [
        "skins/softphone/softphone.html",
        "ui/samples/minimal/index.html",
        "popup/popup.html",
    ] {
        if !dist.join(page).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{page} is missing from the assembled frontend"),
            ));
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = assemble_frontend() {
        panic!("failed to assemble src-tauri/dist from ui/, skins/ and i18n/: {e}");
    }
    println!("cargo:rerun-if-changed=automation-capability.json");
    // scripts/build-brand.sh: the brand's default parameters, baked into the binary.
    println!("cargo:rerun-if-env-changed=WEBPHONE_BRAND_PARAMS");
    // Declaring the app's commands makes Tauri generate an `allow-<command>` permission for each,
    // so the capability files decide exactly what each window may call.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&["api", "popup_info", "popup_action", "desktop"]),
    ))
    .expect("failed to run tauri-build");
}
