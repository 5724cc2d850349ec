fn main() {
    // Declaring the app's commands makes Tauri generate an `allow-<command>` permission for each,
    // so the capability file decides exactly what the webview may call.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["api"])),
    )
    .expect("failed to run tauri-build");
}
