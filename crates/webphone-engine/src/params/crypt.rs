//! `encrypted__3__` parameter values (behaviours.md §2.4): the UTF-8 bytes of the clear value
//! XOR-ed with a key (repeated), then standard base64, then the prefix.
//!
//! This is obfuscation, not encryption: it keeps casual readers of a page source or a URL from
//! seeing a value, nothing more. The key is a deployment setting chosen when the engine is
//! built: set the environment variable `WEBPHONE_ENCRYPTION_KEY` for `cargo build`; without it
//! (or when it is empty) [`DEFAULT_ENCRYPTION_KEY`] is used. The key is never a vendor secret
//! and the encoder is public ([`encrypt_value`]), so integrators can produce values for their
//! own build.
//!
//! Decoding accepts the standard and the URL-safe base64 alphabets, with or without `=`
//! padding, and ignores ASCII whitespace inside the encoded part.

use std::borrow::Cow;

/// Prefix that marks an encoded value.
pub const ENCRYPTED_PREFIX: &str = "encrypted__3__";

/// Key used when the build sets no `WEBPHONE_ENCRYPTION_KEY` (public, documented).
pub const DEFAULT_ENCRYPTION_KEY: &str = "webphone-open-key";

/// Why an `encrypted__3__` value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("encrypted value is not valid base64: {0}")]
    Base64(String),
    #[error("encrypted value does not decode to UTF-8 text with this build's key")]
    NotUtf8,
    #[error("encryption key is empty")]
    EmptyKey,
}

/// The key of this build: `WEBPHONE_ENCRYPTION_KEY` at build time, else
/// [`DEFAULT_ENCRYPTION_KEY`].
pub fn encryption_key() -> &'static [u8] {
    match option_env!("WEBPHONE_ENCRYPTION_KEY") {
        Some(k) if !k.is_empty() => k.as_bytes(),
        _ => DEFAULT_ENCRYPTION_KEY.as_bytes(),
    }
}

/// True when `value` carries the [`ENCRYPTED_PREFIX`] (after leading whitespace).
pub fn is_encrypted(value: &str) -> bool {
    value.trim_start().starts_with(ENCRYPTED_PREFIX)
}

/// Encodes `plain` with this build's key: `encrypted__3__` + base64(plain XOR key).
pub fn encrypt_value(plain: &str) -> String {
    // The build key is never empty (see `encryption_key`).
    encrypt_value_with_key(plain, encryption_key()).unwrap_or_default()
}

/// Encodes `plain` with `key`.
pub fn encrypt_value_with_key(plain: &str, key: &[u8]) -> Result<String, CryptError> {
    if key.is_empty() {
        return Err(CryptError::EmptyKey);
    }
    let bytes = xor(plain.as_bytes(), key);
    Ok(format!("{ENCRYPTED_PREFIX}{}", base64_encode(&bytes)))
}

/// Decodes `value` with this build's key when it carries the prefix; other values are returned
/// unchanged (borrowed).
pub fn decrypt_value(value: &str) -> Result<Cow<'_, str>, CryptError> {
    decrypt_value_with_key(value, encryption_key())
}

/// Decodes `value` with `key` when it carries the prefix; other values are returned unchanged.
pub fn decrypt_value_with_key<'a>(value: &'a str, key: &[u8]) -> Result<Cow<'a, str>, CryptError> {
    let Some(encoded) = value.trim_start().strip_prefix(ENCRYPTED_PREFIX) else {
        return Ok(Cow::Borrowed(value));
    };
    if key.is_empty() {
        return Err(CryptError::EmptyKey);
    }
    let bytes = base64_decode(encoded)?;
    String::from_utf8(xor(&bytes, key))
        .map(Cow::Owned)
        .map_err(|_| CryptError::NotUtf8)
}

fn xor(data: &[u8], key: &[u8]) -> Vec<u8> {
    data.iter()
        .zip(key.iter().cycle())
        .map(|(d, k)| d ^ k)
        .collect()
}

const STD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        let keep = chunk.len() + 1;
        for (i, s) in sextets.iter().enumerate() {
            if i < keep {
                out.push(char::from(STD_ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    }))
}

/// Base64 (standard or URL-safe alphabet, padding optional, ASCII whitespace ignored).
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, CryptError> {
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let unpadded_len = symbols
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(0, |p| p + 1);
    let (body, padding) = symbols.split_at(unpadded_len);
    if padding.len() > 2 {
        return Err(CryptError::Base64("too much padding".to_owned()));
    }
    if body.len() % 4 == 1 {
        return Err(CryptError::Base64("truncated input".to_owned()));
    }
    if !padding.is_empty() && (body.len() + padding.len()) % 4 != 0 {
        return Err(CryptError::Base64("wrong padding".to_owned()));
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = sextet(c).ok_or_else(|| {
                CryptError::Base64(format!("invalid character {:?}", char::from(c)))
            })?;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Ok(out)
}
