//! vCard import and export of the contact list.
//!
//! Export writes vCard 4.0 (RFC 6350); import reads 4.0, 3.0 (RFC 2426) and the 2.1 forms
//! address books still produce (bare parameters such as `TEL;CELL:`, quoted-printable values
//! with `CHARSET`, soft line breaks). Import is lenient and bounded: lines it cannot read are
//! skipped, cards without any name or number are skipped, and the input size, the number of
//! cards, numbers per card and field lengths are capped, so hostile files cost bounded time
//! and memory and never panic.
//!
//! Mapping to [`Contact`]:
//!
//! | Contact    | vCard                                                                    |
//! |------------|--------------------------------------------------------------------------|
//! | `name`     | `FN` (else `N` given + family, else `ORG`, else `EMAIL`, else a number)   |
//! | `numbers`  | every `TEL` (a `tel:` URI loses its scheme) and `IMPP` with a `sip:`/`sips:` URI, in order |
//! | `favorite` | `CATEGORIES` containing `Favorites`/`Favourites`/`Starred`, or an `X-…FAVORITE` / `X-…STARRED` property that is `1`/`true`/`yes` |
//! | `email`    | the first `EMAIL`                                                        |
//! | `address`  | the first `ADR`, its non-empty components joined by `", "`               |
//! | `notes`    | every `NOTE`, joined by a space                                          |
//! | `website`  | the first `URL`                                                          |

use thiserror::Error;

use super::Contact;

/// Largest vCard input accepted, in bytes (RFC 6350 sets no limit; a phone's address book is
/// far below this).
pub const MAX_VCARD_BYTES: usize = 10 * 1024 * 1024;

/// Most cards one import accepts.
pub const MAX_CARDS: usize = 20_000;

/// Numbers kept per contact; further `TEL`s are ignored.
pub const MAX_NUMBERS: usize = 32;

/// Characters kept per field.
pub const MAX_FIELD_CHARS: usize = 4096;

/// Longest content line written, in octets, before folding (RFC 6350 §3.2).
const FOLD_OCTETS: usize = 75;

/// The category written for favourites (vCard has no favourite property).
const FAVORITES_CATEGORY: &str = "Favorites";

/// Why an import was refused as a whole.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VcardError {
    #[error("vCard data too large: {0} bytes (at most {MAX_VCARD_BYTES})")]
    TooLarge(usize),
    #[error("more than {MAX_CARDS} vCards in one import")]
    TooManyCards,
    #[error("no vCard found (no BEGIN:VCARD line)")]
    NoCard,
}

/// The outcome of reading a vCard file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// One contact per usable card, in file order.
    pub contacts: Vec<Contact>,
    /// Cards with neither a name nor a number.
    pub skipped: usize,
}

/// Text of a vCard file from its bytes: UTF-8 (a BOM is dropped), UTF-16 with a BOM, else
/// ISO-8859-1 (every byte is a character), so any input becomes text without loss of the
/// ASCII structure.
pub fn decode_bytes(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|p| {
                if le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => latin1(bytes),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// One content line (RFC 6350 §3.3): `[group.]name *(";" param) ":" value`.
struct Property {
    /// Upper case, group removed.
    name: String,
    /// (upper-case name, value without quotes); a 2.1 bare parameter is `("TYPE", value)`,
    /// a bare `QUOTED-PRINTABLE`/`BASE64` is `("ENCODING", value)`.
    params: Vec<(String, String)>,
    value: String,
}

impl Property {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_quoted_printable(&self) -> bool {
        self.param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("QUOTED-PRINTABLE"))
    }

    fn is_binary(&self) -> bool {
        self.param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("B") || e.eq_ignore_ascii_case("BASE64"))
    }

    /// The value as text: quoted-printable decoded with its `CHARSET`.
    fn text(&self) -> String {
        if !self.is_quoted_printable() {
            return self.value.clone();
        }
        let bytes = quoted_printable(&self.value);
        let charset = self
            .param("CHARSET")
            .unwrap_or("UTF-8")
            .to_ascii_lowercase();
        if charset == "utf-8" || charset == "utf8" {
            match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => latin1(e.as_bytes()),
            }
        } else {
            // ISO-8859-1, Windows-1252, US-ASCII and anything unknown: byte = character.
            latin1(&bytes)
        }
    }
}

/// Where the name/parameters part of a content line ends: the first `:` outside a quoted
/// parameter value.
fn value_colon(line: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_property(line: &str) -> Option<Property> {
    let colon = value_colon(line)?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = split_unquoted(head, ';').into_iter();
    let name = parts.next()?.trim();
    let name = name.rsplit('.').next().unwrap_or(name).to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let params = parts
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            ),
            None => {
                let bare = p.trim().to_string();
                let upper = bare.to_ascii_uppercase();
                if matches!(upper.as_str(), "QUOTED-PRINTABLE" | "BASE64" | "B") {
                    ("ENCODING".to_string(), bare)
                } else {
                    ("TYPE".to_string(), bare)
                }
            }
        })
        .collect();
    Some(Property {
        name,
        params,
        value: value.to_string(),
    })
}

/// Quoted-printable (RFC 2045 §6.7) to bytes; a malformed `=` sequence is kept as written.
fn quoted_printable(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Unfolds physical lines into content lines (RFC 6350 §3.2: CRLF + space/tab continues the
/// line; vCard 2.1 quoted-printable values continue after a trailing `=`).
fn content_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut qp_soft_break = false;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let continues = line.starts_with([' ', '\t']);
        match out.last_mut() {
            Some(last) if qp_soft_break => {
                last.pop(); // the '='
                last.push_str(line.trim_start_matches([' ', '\t']));
            }
            Some(last) if continues => last.push_str(&line[1..]),
            _ => out.push(line.to_string()),
        }
        let Some(last) = out.last() else { continue };
        qp_soft_break = last.ends_with('=')
            && value_colon(last)
                .is_some_and(|c| last[..c].to_ascii_uppercase().contains("QUOTED-PRINTABLE"));
    }
    out
}

/// RFC 6350 §3.4 text unescaping: `\n` `\N` `\\` `\,` `\;` (and `\:` from old writers).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(e @ ('\\' | ',' | ';' | ':')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits a structured value on unescaped `sep` (components of `N`, `ADR`, list of
/// `CATEGORIES`), each component unescaped.
fn components(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(unescape(&cur));
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(unescape(&cur));
    out
}

fn cap(s: &str) -> String {
    let t = s.trim();
    match t.char_indices().nth(MAX_FIELD_CHARS) {
        Some((i, _)) => t[..i].to_string(),
        None => t.to_string(),
    }
}

fn truthy(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// What one card has gathered so far.
#[derive(Default)]
struct Card {
    fn_name: String,
    n_name: String,
    org: String,
    contact: Contact,
}

impl Card {
    fn add(&mut self, p: &Property) {
        if p.is_binary() {
            return;
        }
        let c = &mut self.contact;
        match p.name.as_str() {
            "FN" if self.fn_name.is_empty() => self.fn_name = cap(&unescape(&p.text())),
            "N" if self.n_name.is_empty() => {
                // family; given; additional; prefixes; suffixes
                let parts = components(&p.text(), ';');
                let order = [3, 1, 2, 0, 4];
                let words: Vec<&str> = order
                    .iter()
                    .filter_map(|&i| parts.get(i))
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect();
                self.n_name = cap(&words.join(" "));
            }
            "ORG" if self.org.is_empty() => {
                self.org = cap(components(&p.text(), ';')
                    .first()
                    .map_or("", |s| s.as_str()));
            }
            "TEL" | "IMPP" if c.numbers.len() < MAX_NUMBERS => {
                let v = unescape(&p.text());
                let v = v.trim();
                let lower = v.to_ascii_lowercase();
                let number = if p.name == "TEL" {
                    if lower.starts_with("tel:") {
                        &v[4..]
                    } else {
                        v
                    }
                } else if lower.starts_with("sip:") || lower.starts_with("sips:") {
                    v
                } else {
                    return;
                };
                let number = cap(number);
                if !number.is_empty() && !c.numbers.iter().any(|n| n == &number) {
                    c.numbers.push(number);
                }
            }
            "EMAIL" if c.email.is_empty() => c.email = cap(&unescape(&p.text())),
            "ADR" if c.address.is_empty() => {
                let parts = components(&p.text(), ';');
                let parts: Vec<&str> = parts
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect();
                c.address = cap(&parts.join(", "));
            }
            "NOTE" => {
                let note = unescape(&p.text());
                if c.notes.is_empty() {
                    c.notes = cap(&note);
                } else if c.notes.chars().count() < MAX_FIELD_CHARS {
                    c.notes = cap(&format!("{} {}", c.notes, note.trim()));
                }
            }
            "URL" if c.website.is_empty() => c.website = cap(&unescape(&p.text())),
            "CATEGORIES"
                if components(&p.text(), ',').iter().any(|k| {
                    matches!(
                        k.trim().to_ascii_lowercase().as_str(),
                        "favorites" | "favourites" | "favorite" | "favourite" | "starred"
                    )
                }) =>
            {
                c.favorite = true;
            }
            n if n.starts_with("X-")
                && (n.ends_with("FAVORITE") || n.ends_with("STARRED"))
                && truthy(&p.text()) =>
            {
                c.favorite = true;
            }
            _ => {}
        }
    }

    fn finish(self) -> Option<Contact> {
        let mut c = self.contact;
        c.name = [self.fn_name, self.n_name, self.org, c.email.clone()]
            .into_iter()
            .find(|s| !s.is_empty())
            .or_else(|| c.numbers.first().cloned())?;
        Some(c)
    }
}

/// Reads every card of a vCard file (any of 2.1, 3.0, 4.0).
pub fn parse(text: &str) -> Result<Parsed, VcardError> {
    if text.len() > MAX_VCARD_BYTES {
        return Err(VcardError::TooLarge(text.len()));
    }
    let mut parsed = Parsed::default();
    let mut seen_card = false;
    let mut card: Option<Card> = None;
    // Nested cards (2.1 AGENT) are skipped as a whole.
    let mut nested = 0usize;
    for line in content_lines(text) {
        let Some(p) = parse_property(&line) else {
            continue;
        };
        let value = p.value.trim();
        match p.name.as_str() {
            "BEGIN" if value.eq_ignore_ascii_case("VCARD") => {
                seen_card = true;
                if card.is_some() {
                    nested += 1;
                } else {
                    if parsed.contacts.len() + parsed.skipped >= MAX_CARDS {
                        return Err(VcardError::TooManyCards);
                    }
                    card = Some(Card::default());
                }
            }
            "END" if value.eq_ignore_ascii_case("VCARD") => {
                if nested > 0 {
                    nested -= 1;
                } else if let Some(done) = card.take() {
                    match done.finish() {
                        Some(c) => parsed.contacts.push(c),
                        None => parsed.skipped += 1,
                    }
                }
            }
            _ => {
                if let (Some(c), 0) = (card.as_mut(), nested) {
                    c.add(&p);
                }
            }
        }
    }
    // A last card without END:VCARD (truncated file) still counts.
    if let Some(done) = card.take() {
        match done.finish() {
            Some(c) => parsed.contacts.push(c),
            None => parsed.skipped += 1,
        }
    }
    if !seen_card {
        return Err(VcardError::NoCard);
    }
    Ok(parsed)
}

/// RFC 6350 §3.4 text escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line folded at [`FOLD_OCTETS`] octets on character boundaries
/// (RFC 6350 §3.2), CRLF-terminated.
fn push_folded(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > FOLD_OCTETS {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// The contacts as vCard 4.0 (RFC 6350): `FN`, `TEL` per number (`IMPP` for SIP URIs),
/// `EMAIL`, `ADR` (the address as the street component), `NOTE`, `URL`, and
/// `CATEGORIES:Favorites` for favourites.
pub fn write(contacts: &[Contact]) -> String {
    let mut out = String::new();
    for c in contacts {
        push_folded(&mut out, "BEGIN:VCARD");
        push_folded(&mut out, "VERSION:4.0");
        push_folded(&mut out, &format!("FN:{}", escape(&c.name)));
        for n in &c.numbers {
            let lower = n.to_ascii_lowercase();
            if lower.starts_with("sip:") || lower.starts_with("sips:") {
                push_folded(&mut out, &format!("IMPP:{}", n.replace(['\r', '\n'], "")));
            } else {
                push_folded(&mut out, &format!("TEL:{}", escape(n)));
            }
        }
        if !c.email.is_empty() {
            push_folded(&mut out, &format!("EMAIL:{}", escape(&c.email)));
        }
        if !c.address.is_empty() {
            push_folded(&mut out, &format!("ADR:;;{};;;;", escape(&c.address)));
        }
        if !c.notes.is_empty() {
            push_folded(&mut out, &format!("NOTE:{}", escape(&c.notes)));
        }
        if !c.website.is_empty() {
            push_folded(
                &mut out,
                &format!("URL:{}", c.website.replace(['\r', '\n'], "")),
            );
        }
        if c.favorite {
            push_folded(&mut out, &format!("CATEGORIES:{FAVORITES_CATEGORY}"));
        }
        push_folded(&mut out, "END:VCARD");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn contact(name: &str, numbers: &[&str]) -> Contact {
        Contact {
            name: name.into(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
            ..Contact::default()
        }
    }

    #[test]
    fn export_then_import_gives_the_same_contacts() {
        let all = vec![
            Contact {
                name: "Lee, Ann; Jr.".into(),
                numbers: vec!["1002".into(), "+36 1 234 5678".into(), "sip:ann@pbx.example".into()],
                favorite: true,
                email: "ann@example.org".into(),
                address: "Main St 1, Springfield".into(),
                notes: "back\\slash and a very long note that needs folding because it goes on and on past seventy-five octets — ünïcödé".into(),
                website: "https://ann.example/x?a=1;b=2".into(),
            },
            contact("Bob", &["1003"]),
        ];
        let text = write(&all);
        assert!(text.lines().all(|l| l.len() <= FOLD_OCTETS + 1), "{text}");
        assert!(text.contains("VERSION:4.0\r\n"));
        let back = parse(&text).unwrap();
        assert_eq!(back.skipped, 0);
        assert_eq!(back.contacts, all);
    }

    #[test]
    fn vcard_3_with_n_only_types_and_tel_uris_is_read() {
        let text = "BEGIN:VCARD\nVERSION:3.0\nN:Smith;Kim;;Dr.;\nitem1.TEL;TYPE=\"work,voice\":tel:+1-555-0100\nTEL;TYPE=CELL:+1 555 0101\nEMAIL;TYPE=INTERNET:kim@example.org\nADR;TYPE=HOME:;;1 Elm St;Town;;12345;US\nX-ANDROID-STARRED:1\nEND:VCARD\n";
        let p = parse(text).unwrap();
        assert_eq!(
            p.contacts,
            vec![Contact {
                name: "Dr. Kim Smith".into(),
                numbers: vec!["+1-555-0100".into(), "+1 555 0101".into()],
                favorite: true,
                email: "kim@example.org".into(),
                address: "1 Elm St, Town, 12345, US".into(),
                ..Contact::default()
            }]
        );
    }

    #[test]
    fn folded_and_quoted_printable_lines_are_joined_and_decoded() {
        let text = "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:J=F6rg M=FC=\r\nller\r\nTEL;CELL;VOICE:0049 30\r\n 1234\r\nNOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:caf=C3=A9=0D=0Aok\r\nEND:VCARD\r\n";
        let p = parse(text).unwrap();
        assert_eq!(p.contacts.len(), 1);
        let c = &p.contacts[0];
        assert_eq!(c.name, "Jörg Müller");
        assert_eq!(c.numbers, vec!["0049 301234"]);
        assert_eq!(c.notes, "café\r\nok");
    }

    #[test]
    fn broken_lines_nested_and_nameless_cards_are_skipped() {
        let text = "garbage before\nBEGIN:VCARD\nno colon here\n:empty name\nFN:A\nAGENT:\nBEGIN:VCARD\nFN:Nested\nEND:VCARD\nTEL:1\nEND:VCARD\nBEGIN:VCARD\nNOTE:nothing to call\nEND:VCARD\nBEGIN:VCARD\nTEL:77";
        let p = parse(text).unwrap();
        assert_eq!(p.skipped, 1);
        assert_eq!(
            p.contacts,
            vec![contact("A", &["1"]), contact("77", &["77"])]
        );
    }

    #[test]
    fn text_without_cards_and_oversized_input_are_refused() {
        assert_eq!(parse("hello\nworld"), Err(VcardError::NoCard));
        assert_eq!(parse(""), Err(VcardError::NoCard));
        let huge = "x".repeat(MAX_VCARD_BYTES + 1);
        assert_eq!(parse(&huge), Err(VcardError::TooLarge(MAX_VCARD_BYTES + 1)));
        let many = "BEGIN:VCARD\nTEL:1\nEND:VCARD\n".repeat(MAX_CARDS + 1);
        assert_eq!(parse(&many), Err(VcardError::TooManyCards));
    }

    #[test]
    fn fields_and_numbers_are_capped() {
        let mut text = String::from("BEGIN:VCARD\nFN:");
        text.push_str(&"n".repeat(MAX_FIELD_CHARS * 3));
        text.push('\n');
        for i in 0..(MAX_NUMBERS * 2) {
            text.push_str(&format!("TEL:{i}\n"));
        }
        text.push_str("END:VCARD\n");
        let c = &parse(&text).unwrap().contacts[0];
        assert_eq!(c.name.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(c.numbers.len(), MAX_NUMBERS);
    }

    #[test]
    fn bytes_in_any_encoding_become_text() {
        assert_eq!(decode_bytes(b"\xEF\xBB\xBFFN:a"), "FN:a");
        assert_eq!(decode_bytes(b"FN:J\xF6rg"), "FN:Jörg");
        assert_eq!(decode_bytes(b"\xFF\xFEF\0N\0"), "FN");
        assert_eq!(decode_bytes(b"\xFE\xFF\0F\0N"), "FN");
        assert_eq!(decode_bytes("FN:Jörg".as_bytes()), "FN:Jörg");
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        // A small deterministic generator (xorshift) over vCard-ish fragments and raw bytes.
        let pieces: [&[u8]; 16] = [
            b"BEGIN:VCARD\r\n",
            b"END:VCARD\r\n",
            b"FN;ENCODING=QUOTED-PRINTABLE:=",
            b"=C3=",
            b"\r\n ",
            b"\\",
            b";",
            b":",
            b"\"",
            b"TEL;VALUE=uri:tel:",
            b"N:;;;;;;",
            b"\xFF\xFE",
            b"\xC3",
            b"ADR:\\;\\,\\n",
            b"=\r\n",
            b"\n\t",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            let mut bytes = Vec::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 5 == 0 {
                    bytes.push((x >> 8) as u8);
                } else {
                    bytes.extend_from_slice(pieces[(x >> 20) as usize % pieces.len()]);
                }
            }
            let text = decode_bytes(&bytes);
            if let Ok(p) = parse(&text) {
                // Whatever was read exports and reads back without loss of a card.
                let again = parse(&write(&p.contacts));
                if !p.contacts.is_empty() {
                    assert_eq!(again.map(|a| a.contacts.len()), Ok(p.contacts.len()));
                }
            }
        }
    }
}
