//! `importvcard FILE` and `exportvcard FILE` on stdin: the CLI's line protocol carries no
//! multi-line text, so here the engine extensions `importvcard(text)` / `exportvcard()` take
//! a file instead. The file is read as bytes and decoded like the engine expects (UTF-8,
//! UTF-16 with a BOM, else ISO-8859-1); an export is written to a temporary file and renamed,
//! so a crash never leaves half a file.

use std::io::Read;
use std::path::Path;

use webphone_engine::profile::vcard::{decode_bytes, MAX_VCARD_BYTES};
use webphone_engine::Phone;

/// Runs `func` when it is one of the vCard file commands: `Some(Ok(result))` /
/// `Some(Err(message))`; `None` for every other function.
pub async fn run(phone: &Phone, func: &str, args: &[String]) -> Option<Result<String, String>> {
    let path = args.first().map(|a| a.trim()).unwrap_or("");
    match func {
        "importvcard" => Some(import(phone, path).await),
        "exportvcard" => Some(export(phone, path).await),
        _ => None,
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_VCARD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() > MAX_VCARD_BYTES {
        return Err(format!(
            "{}: larger than {MAX_VCARD_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

async fn import(phone: &Phone, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("usage: importvcard FILE".into());
    }
    let text = decode_bytes(&read_capped(Path::new(path))?);
    let n = phone
        .api("importvcard", vec![text])
        .await
        .map_err(|e| e.to_string())?;
    Ok(n.to_string())
}

async fn export(phone: &Phone, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("usage: exportvcard FILE".into());
    }
    let text = phone
        .api("exportvcard", vec![])
        .await
        .map_err(|e| e.to_string())?;
    let text = text.as_str().unwrap_or("");
    let target = Path::new(path);
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, target).map_err(|e| format!("{path}: {e}"))?;
    Ok(text.matches("BEGIN:VCARD").count().to_string())
}
