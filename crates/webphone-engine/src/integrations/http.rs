//! The HTTP side of the integrations: one reqwest client (rustls with ring, system trust
//! anchors) and the request shapes (GET for action URLs, PUT or multipart POST for uploads).

use std::path::Path;
use std::sync::Arc;

use super::{IntegrationError, CONNECT_TIMEOUT, TOTAL_TIMEOUT};

/// Most bytes of an answer that are read (the rest is dropped): answers are short texts.
const MAX_ANSWER: usize = 64 * 1024;

/// Builds the client: certificates verified against the system's trust anchors, time-outs
/// [`CONNECT_TIMEOUT`] / [`TOTAL_TIMEOUT`], at most 5 redirects.
pub(super) fn build_client() -> Result<reqwest::Client, String> {
    builder()?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| error_chain(&e.without_url()))
}

/// A client builder with rustls (ring, certificates verified against the system's trust
/// anchors) and our user agent; the crate is built without a default TLS provider.
pub(crate) fn builder() -> Result<reqwest::ClientBuilder, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        // An anchor rustls refuses is skipped; the others still verify.
        let _ = roots.add(c);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent("webphone"))
}

/// The error and its sources in one line (reqwest's own text names only the outer layer).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

fn transport(param: &'static str, e: reqwest::Error) -> IntegrationError {
    IntegrationError::Transport {
        param,
        reason: error_chain(&e.without_url()),
    }
}

/// Checks the status and reads at most [`MAX_ANSWER`] bytes of the answer as text.
async fn answer(param: &'static str, resp: reqwest::Response) -> Result<String, IntegrationError> {
    answer_up_to(param, resp, MAX_ANSWER).await
}

/// [`answer`] with another size limit: at most `max` bytes are read, the rest is dropped.
async fn answer_up_to(
    param: &'static str,
    mut resp: reqwest::Response,
    max: usize,
) -> Result<String, IntegrationError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(IntegrationError::Status {
            param,
            status: status.as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(param, e))? {
        let room = max.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// GET `url`; the answer's text on a 2xx status (at most [`MAX_ANSWER`] bytes).
pub(super) async fn get(
    client: &reqwest::Client,
    param: &'static str,
    url: reqwest::Url,
) -> Result<String, IntegrationError> {
    get_document(client, param, url, MAX_ANSWER).await
}

/// GET `url` for a document that may be larger than an API answer (a server address book):
/// at most `max` bytes of it.
pub(super) async fn get_document(
    client: &reqwest::Client,
    param: &'static str,
    url: reqwest::Url,
    max: usize,
) -> Result<String, IntegrationError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| transport(param, e))?;
    answer_up_to(param, resp, max).await
}

/// How a recording reaches an HTTP destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMethod {
    /// The body is the file (the URL names the file: `https://host/rec/CALLID.wav`).
    Put,
    /// `multipart/form-data` with the file in the part `file` (a handler script:
    /// `https://host/upload.php?filename=...` or `.../upload.php/filename=...`).
    Post,
}

impl UploadMethod {
    /// PUT when the URL has no query and its last path segment is a plain file name with an
    /// audio extension (`.wav`, `.mp3`, `.gsm`, `.ogg`); POST otherwise.
    pub fn for_url(url: &reqwest::Url) -> UploadMethod {
        let last = url.path().rsplit('/').next().unwrap_or("");
        let audio = [".wav", ".mp3", ".gsm", ".ogg"]
            .iter()
            .any(|ext| last.to_ascii_lowercase().ends_with(ext));
        if url.query().is_none() && audio && !last.contains('=') {
            UploadMethod::Put
        } else {
            UploadMethod::Post
        }
    }
}

/// The facts sent with a recording in `X-*` headers.
#[derive(Debug, Clone, Default)]
pub(super) struct UploadMeta {
    pub file_name: String,
    pub user: String,
    pub caller: String,
    pub called: String,
    pub callid: String,
    pub server: String,
}

/// A header value from untrusted text: printable ASCII kept, other bytes percent-encoded.
fn header_safe(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file name safe inside a quoted `Content-Disposition` parameter.
fn safe_file_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches(['_', '.']).is_empty() {
        "recording.wav".into()
    } else {
        cleaned
    }
}

/// The recording's file name: a `filename=` value of the URL (query or last path segment),
/// else the URL's last path segment when it names an audio file, else the local file's name.
pub(super) fn file_name_for(url: &reqwest::Url, local: &Path) -> String {
    let from_query = url
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
        .map(|(_, v)| v.into_owned());
    let last = url.path().rsplit('/').next().unwrap_or("");
    let from_path = last
        .split_once('=')
        .filter(|(k, _)| k.eq_ignore_ascii_case("filename"))
        .map(|(_, v)| v.to_string())
        .or_else(|| (UploadMethod::for_url(url) == UploadMethod::Put).then(|| last.to_string()));
    let local_name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    safe_file_name(&from_query.or(from_path).unwrap_or(local_name))
}

fn content_type_of(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".wav") {
        "audio/x-wav"
    } else if lower.ends_with(".mp3") {
        "audio/mpeg"
    } else if lower.ends_with(".gsm") {
        "audio/x-gsm"
    } else if lower.ends_with(".ogg") {
        "audio/ogg"
    } else {
        "application/octet-stream"
    }
}

/// A `multipart/form-data` body (RFC 7578): text fields, then one file part.
fn multipart(
    fields: &[(&str, &str)],
    file_field: &str,
    file_name: &str,
    content_type: &str,
    data: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!(
        "----webphone{}",
        (0..12)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect::<String>()
    );
    let mut body = Vec::with_capacity(data.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{}\r\n",
                header_safe(value)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
            safe_file_name(file_name)
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads a recording: PUT of the file, or a multipart POST with the part `file`, plus the
/// `X-type: fileupload`, `X-filename`, `X-user`, `X-caller`, `X-called`, `X-callid` and
/// `X-server` headers. Returns the HTTP status.
pub(super) async fn upload(
    client: &reqwest::Client,
    param: &'static str,
    url: reqwest::Url,
    data: Vec<u8>,
    meta: &UploadMeta,
) -> Result<u16, IntegrationError> {
    let ctype = content_type_of(&meta.file_name);
    let data_len = data.len();
    let req = match UploadMethod::for_url(&url) {
        UploadMethod::Put => client.put(url).header("Content-Type", ctype).body(data),
        UploadMethod::Post => {
            let (ct, body) = multipart(&[], "file", &meta.file_name, ctype, &data);
            client.post(url).header("Content-Type", ct).body(body)
        }
    };
    let resp = req
        .timeout(super::upload_timeout(data_len))
        .header("User-Agent", "webphone")
        .header("X-type", "fileupload")
        .header("X-filename", header_safe(&meta.file_name))
        .header("X-user", header_safe(&meta.user))
        .header("X-caller", header_safe(&meta.caller))
        .header("X-called", header_safe(&meta.called))
        .header("X-callid", header_safe(&meta.callid))
        .header("X-server", header_safe(&meta.server))
        .send()
        .await
        .map_err(|e| transport(param, e))?;
    let status = resp.status().as_u16();
    answer(param, resp).await?;
    Ok(status)
}

/// POSTs a log like the skin's form: field `filename`, file part `log` (text/plain).
pub(super) async fn post_log(
    client: &reqwest::Client,
    param: &'static str,
    url: reqwest::Url,
    file_name: &str,
    log: Vec<u8>,
) -> Result<u16, IntegrationError> {
    let (ct, body) = multipart(
        &[("filename", file_name)],
        "log",
        file_name,
        "text/plain; charset=utf-8",
        &log,
    );
    let resp = client
        .post(url)
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .map_err(|e| transport(param, e))?;
    let status = resp.status().as_u16();
    answer(param, resp).await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn upload_method_follows_the_url_form() {
        assert_eq!(
            UploadMethod::for_url(&url("http://h/rec/a.wav")),
            UploadMethod::Put
        );
        assert_eq!(
            UploadMethod::for_url(&url("http://h/rec/A.MP3")),
            UploadMethod::Put
        );
        assert_eq!(
            UploadMethod::for_url(&url("http://h/up.php?filename=a.wav")),
            UploadMethod::Post
        );
        assert_eq!(
            UploadMethod::for_url(&url("http://h/up.php/filename=a.wav")),
            UploadMethod::Post
        );
        assert_eq!(
            UploadMethod::for_url(&url("http://h/upload")),
            UploadMethod::Post
        );
    }

    #[test]
    fn file_name_comes_from_the_url_or_the_local_file() {
        let local = Path::new("/tmp/rec/call-1-line1.wav");
        assert_eq!(
            file_name_for(&url("http://h/up.php?filename=v_1.wav"), local),
            "v_1.wav"
        );
        assert_eq!(
            file_name_for(&url("http://h/up.php/filename=v_2.wav"), local),
            "v_2.wav"
        );
        assert_eq!(file_name_for(&url("http://h/r/x.wav"), local), "x.wav");
        assert_eq!(
            file_name_for(&url("http://h/upload"), local),
            "call-1-line1.wav"
        );
        assert_eq!(
            file_name_for(&url("http://h/u?filename=..%2F..%2Fetc%22x"), local),
            ".._.._etc_x"
        );
    }

    #[test]
    fn header_values_never_carry_control_characters() {
        assert_eq!(header_safe("Bob Smith"), "Bob Smith");
        assert_eq!(header_safe("a\r\nX-evil: 1"), "a%0D%0AX-evil: 1");
        assert_eq!(header_safe("Ü"), "%C3%9C");
    }

    #[test]
    fn multipart_body_has_fields_and_file() {
        let (ct, body) = multipart(
            &[("filename", "f.txt")],
            "log",
            "f.txt",
            "text/plain",
            b"hello",
        );
        let boundary = ct.split("boundary=").nth(1).unwrap_or_default().to_string();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"filename\"\r\n\r\nf.txt\r\n"));
        assert!(text.contains(
            "name=\"log\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        ));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn client_builds_with_system_roots() {
        assert!(build_client().is_ok());
    }
}
