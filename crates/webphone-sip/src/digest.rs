//! HTTP digest authentication for SIP, sans-IO (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).
//!
//! rsipstack 0.7.14 answers only the first challenge of a response, knows neither the
//! RFC 7616 algorithm names (`SHA-256`, `SHA-512-256`) nor the `-sess` variants, always
//! hashes an empty body for `auth-int` and starts every answer at `nc=1`. This module does
//! the whole client side itself:
//!
//! - [`parse_challenges`] reads every `WWW-Authenticate` / `Proxy-Authenticate` of a
//!   401/407; [`select`] keeps, per realm, the strongest challenge we can answer
//!   (RFC 7616 §3.7, RFC 8760 §2.4: SHA-512-256 > SHA-256 > MD5).
//! - [`DigestCache`] remembers the answered challenges, so later requests in the same
//!   protection space carry credentials at once with the same nonce and an incremented
//!   nonce count (RFC 7616 §3.4: "nc"), saving a round trip; a `stale=true` challenge
//!   simply replaces the nonce (RFC 7616 §3.3).
//! - [`Secret::Ha1`] answers MD5 challenges from a precomputed `H(user:realm:password)`
//!   (the `md5` account parameter), so the clear password need not be stored.

use std::collections::HashMap;
use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm of RFC 7616 §3.3 / RFC 8760 §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// Parse an `algorithm` value; no value means MD5 (RFC 2617 §3.2.1). Also accepts the
    /// hyphen-less spellings (`SHA256`) some servers send.
    pub(crate) fn parse(s: &str) -> Option<Algorithm> {
        let norm: String = s
            .trim()
            .trim_matches('"')
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        Some(match norm.as_str() {
            "MD5" => Algorithm::Md5,
            "MD5SESS" => Algorithm::Md5Sess,
            "SHA256" => Algorithm::Sha256,
            "SHA256SESS" => Algorithm::Sha256Sess,
            "SHA512256" => Algorithm::Sha512_256,
            "SHA512256SESS" => Algorithm::Sha512_256Sess,
            _ => return None,
        })
    }

    /// The RFC 7616 §3.3 token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    fn is_md5(self) -> bool {
        matches!(self, Algorithm::Md5 | Algorithm::Md5Sess)
    }

    /// Preference (higher is stronger), RFC 7616 §3.7 / RFC 8760 §2.4.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub(crate) fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Quality of protection (RFC 7616 §3.3 `qop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Qop {
    Auth,
    /// Also covers the message body (`H(entity-body)` in A2).
    AuthInt,
}

impl Qop {
    fn token(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// One digest challenge of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// From `Proxy-Authenticate` (answered with `Proxy-Authorization`, RFC 3261 §22.3).
    pub proxy: bool,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Offered qop values; empty = RFC 2069 compatibility (no qop, no cnonce/nc).
    pub qop: Vec<Qop>,
    pub stale: bool,
    /// RFC 7616 §3.4.4: the server wants the user name hashed.
    pub userhash: bool,
}

/// Why a challenge cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ChallengeError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("challenge lacks {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
}

/// Split `k=v, k="v, w", ...` (RFC 7235 §2.1 auth-params) into pairs; keys lower-cased,
/// quoted values unescaped.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
                // Skip anything up to the next separator.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.push((key, value.trim().to_string()));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

impl Challenge {
    /// Parse one header value `Digest realm="..", nonce="..", ...` (RFC 7616 §3.3).
    pub(crate) fn parse(value: &str, proxy: bool) -> Result<Challenge, ChallengeError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = auth_params(rest);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(ChallengeError::UnsupportedAlgorithm(a))?,
        };
        let mut qop = Vec::new();
        if let Some(q) = get("qop") {
            for t in q.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if t.eq_ignore_ascii_case("auth") {
                    qop.push(Qop::Auth);
                } else if t.eq_ignore_ascii_case("auth-int") {
                    qop.push(Qop::AuthInt);
                }
            }
            if qop.is_empty() {
                return Err(ChallengeError::UnsupportedQop(q));
            }
        }
        let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            proxy,
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            qop,
            stale: flag("stale"),
            userhash: flag("userhash"),
        })
    }

    /// The qop we answer with: `auth` when offered (cheaper, and the body may be rewritten
    /// by nothing we know of), else `auth-int`, else none.
    fn chosen_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        }
    }
}

/// Every digest challenge in a response's headers, given as `(name, value)`:
/// `WWW-Authenticate` and `Proxy-Authenticate` (RFC 3261 §22.2, §22.3). Challenges we
/// cannot parse or use (unknown algorithm, other schemes) are skipped with a debug log.
pub(crate) fn parse_challenges<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let proxy = if name.eq_ignore_ascii_case("WWW-Authenticate") {
            false
        } else if name.eq_ignore_ascii_case("Proxy-Authenticate") {
            true
        } else {
            continue;
        };
        match Challenge::parse(value, proxy) {
            Ok(c) => out.push(c),
            Err(e) => tracing::debug!(error = %e, "digest challenge skipped"),
        }
    }
    out
}

/// The password, or the precomputed MD5 `HA1 = MD5(username:realm:password)`
/// (RFC 2617 §3.2.2.2) standing in for it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    Password(String),
    Ha1(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}

impl Secret {
    /// Whether a challenge with `alg` can be answered: an MD5 HA1 only answers MD5.
    fn can_answer(&self, alg: Algorithm) -> bool {
        match self {
            Secret::Password(_) => true,
            Secret::Ha1(_) => alg.is_md5(),
        }
    }
}

/// Per realm (and per header kind), the challenge to answer: the strongest algorithm we
/// support and can answer with `secret` (RFC 7616 §3.7: "the client SHOULD use the first
/// challenge it supports" — servers list them by preference, and RFC 8760 §2.4 asks
/// clients to prefer the strongest), first occurrence on ties. One answer per realm
/// (RFC 3261 §22.3: a proxy chain may challenge with several realms).
pub(crate) fn select(challenges: &[Challenge], secret: &Secret) -> Vec<Challenge> {
    let mut best: Vec<Challenge> = Vec::new();
    for c in challenges.iter().filter(|c| secret.can_answer(c.algorithm)) {
        match best
            .iter_mut()
            .find(|b| b.realm == c.realm && b.proxy == c.proxy)
        {
            Some(b) if c.algorithm.strength() > b.algorithm.strength() => *b = c.clone(),
            Some(_) => {}
            None => best.push(c.clone()),
        }
    }
    best
}

/// The request being authorized.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestParts<'a> {
    pub method: &'a str,
    /// Request-URI as sent (the digest `uri`, RFC 3261 §22.4).
    pub uri: &'a str,
    /// Message body (for `auth-int`).
    pub body: &'a [u8],
}

/// Inputs of one digest computation (RFC 7616 §3.4.1 - §3.4.3).
#[derive(Clone, Debug)]
pub(crate) struct DigestInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub secret: &'a Secret,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: u32,
    pub qop: Option<Qop>,
    pub req: RequestParts<'a>,
}

/// Computation failure (an HA1 for another algorithm).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DigestError {
    #[error("a precomputed MD5 HA1 cannot answer a {0} challenge")]
    Ha1Mismatch(&'static str),
}

/// The `response` value (RFC 7616 §3.4.1).
pub(crate) fn response(i: &DigestInput<'_>) -> Result<String, DigestError> {
    let h = |s: &str| i.algorithm.hash(s.as_bytes());
    let mut ha1 = match i.secret {
        Secret::Password(p) => h(&format!("{}:{}:{}", i.username, i.realm, p)),
        Secret::Ha1(ha1) if i.algorithm.is_md5() => ha1.trim().to_ascii_lowercase(),
        Secret::Ha1(_) => return Err(DigestError::Ha1Mismatch(i.algorithm.token())),
    };
    if i.algorithm.is_sess() {
        // RFC 7616 §3.4.2: A1 = H(user:realm:pw) ":" nonce ":" cnonce
        ha1 = h(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let a2 = match i.qop {
        Some(Qop::AuthInt) => format!(
            "{}:{}:{}",
            i.req.method,
            i.req.uri,
            i.algorithm.hash(i.req.body)
        ),
        _ => format!("{}:{}", i.req.method, i.req.uri),
    };
    let ha2 = h(&a2);
    Ok(match i.qop {
        Some(q) => h(&format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            i.nonce,
            i.nc,
            i.cnonce,
            q.token()
        )),
        // RFC 2069 compatibility (RFC 2617 §3.2.2.1).
        None => h(&format!("{ha1}:{}:{ha2}", i.nonce)),
    })
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| *c != '\r' && *c != '\n') {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A ready `Authorization` / `Proxy-Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub proxy: bool,
    /// Header value (`Digest username="..", ...`).
    pub value: String,
}

impl Credentials {
    /// Header name for this answer (RFC 3261 §22.2, §22.3).
    #[cfg(test)]
    pub(crate) fn header_name(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }
}

/// Build the header value answering `c` (RFC 7616 §3.4).
pub(crate) fn authorization(
    c: &Challenge,
    username: &str,
    secret: &Secret,
    cnonce: &str,
    nc: u32,
    req: RequestParts<'_>,
) -> Result<Credentials, DigestError> {
    let qop = c.chosen_qop();
    let resp = response(&DigestInput {
        algorithm: c.algorithm,
        username,
        realm: &c.realm,
        secret,
        nonce: &c.nonce,
        cnonce,
        nc,
        qop,
        req,
    })?;
    let user_field = if c.userhash {
        // RFC 7616 §3.4.4: username = H(username ":" realm)
        c.algorithm
            .hash(format!("{username}:{}", c.realm).as_bytes())
    } else {
        username.to_string()
    };
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{resp}\", algorithm={}",
        quote(&user_field),
        quote(&c.realm),
        quote(&c.nonce),
        quote(req.uri),
        c.algorithm.token()
    );
    if let Some(q) = qop {
        v.push_str(&format!(
            ", qop={}, nc={nc:08x}, cnonce={}",
            q.token(),
            quote(cnonce)
        ));
    }
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque={}", quote(o)));
    }
    if c.userhash {
        v.push_str(", userhash=true");
    }
    Ok(Credentials {
        proxy: c.proxy,
        value: v,
    })
}

/// What a client transaction should do with a 401/407.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send the request again with these headers (replacing earlier credentials).
    Retry(Vec<Credentials>),
    /// Give up: credentials were refused, no usable challenge, or a realm mismatch.
    Fail(String),
}

/// Remembered protection spaces: the last challenge per (proxy?, realm) with its nonce
/// count, for preemptive credentials on later requests (RFC 7616 §3.4, `nc`).
#[derive(Clone, Debug, Default)]
pub(crate) struct DigestCache {
    spaces: HashMap<(bool, String), Space>,
}

#[derive(Clone, Debug)]
struct Space {
    challenge: Challenge,
    cnonce: String,
    nc: u32,
}

/// At most this many rounds of challenges per request (several realms, stale nonces).
pub(crate) const MAX_AUTH_ROUNDS: u8 = 4;

/// The account side of authentication.
#[derive(Clone, Debug)]
pub(crate) struct AuthUser<'a> {
    /// Digest user name (`auth_username` or `username`).
    pub username: &'a str,
    pub secret: &'a Secret,
    /// Realm the account is configured for; `None`/empty accepts the server's.
    pub realm: Option<&'a str>,
    /// Enforce `realm` (REGISTER); `false` answers any realm (calls through other proxies).
    pub strict_realm: bool,
}

/// Per-request authentication state: which challenges were answered already.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthAttempt {
    rounds: u8,
    /// (proxy?, realm, nonce) of every challenge we answered for this request.
    answered: Vec<(bool, String, String)>,
    /// The credentials currently on the request (kept across rounds, replaced per realm).
    current: Vec<Credentials>,
}

impl AuthAttempt {
    /// Credentials currently on the request.
    pub(crate) fn current(&self) -> &[Credentials] {
        &self.current
    }
}

fn random_cnonce() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl DigestCache {
    /// Credentials to put on a new request before any challenge: one per remembered
    /// protection space, same nonce, next nonce count (RFC 7616 §3.4: the client MAY reuse
    /// a nonce while the server accepts it). Only spaces with a qop (a nonce count) are used.
    pub(crate) fn preemptive(
        &mut self,
        user: &AuthUser<'_>,
        req: RequestParts<'_>,
    ) -> Vec<Credentials> {
        let mut out = Vec::new();
        for s in self.spaces.values_mut() {
            if s.challenge.qop.is_empty() {
                continue;
            }
            s.nc = s.nc.saturating_add(1);
            match authorization(
                &s.challenge,
                user.username,
                user.secret,
                &s.cnonce,
                s.nc,
                req,
            ) {
                Ok(c) => out.push(c),
                Err(e) => tracing::debug!(error = %e, "no preemptive credentials"),
            }
        }
        out
    }

    /// Forget every protection space (new account, or credentials refused).
    pub(crate) fn clear(&mut self) {
        self.spaces.clear();
    }

    /// Decide how to answer a 401/407 whose challenge headers are `challenges`
    /// (RFC 3261 §22.2/§22.3, RFC 7616 §3.3 `stale`).
    ///
    /// A challenge for a realm we already answered on this request means the credentials
    /// were refused, unless it says `stale=true` (then only the nonce was old: answered
    /// again with the new nonce, not counted as a failure). Failing clears the cache.
    pub(crate) fn on_challenge(
        &mut self,
        attempt: &mut AuthAttempt,
        challenges: &[Challenge],
        user: &AuthUser<'_>,
        req: RequestParts<'_>,
    ) -> Verdict {
        attempt.rounds += 1;
        if attempt.rounds > MAX_AUTH_ROUNDS {
            self.clear();
            return Verdict::Fail("too many authentication rounds".into());
        }
        let wanted = user.realm.map(str::trim).filter(|r| !r.is_empty());
        let chosen = select(challenges, user.secret);
        if chosen.is_empty() {
            return Verdict::Fail(if challenges.is_empty() {
                "no usable digest challenge".into()
            } else {
                "no challenge with an algorithm we can answer".into()
            });
        }
        let chosen: Vec<Challenge> = match (wanted, user.strict_realm) {
            (Some(w), true) => {
                let ok: Vec<Challenge> = chosen.iter().filter(|c| c.realm == w).cloned().collect();
                if ok.is_empty() {
                    let got: Vec<&str> = chosen.iter().map(|c| c.realm.as_str()).collect();
                    return Verdict::Fail(format!("challenged for realm {got:?}, expected {w:?}"));
                }
                ok
            }
            _ => chosen,
        };
        for c in &chosen {
            let key = (c.proxy, c.realm.clone());
            // Our credentials for this realm were on the request (answered in an earlier
            // round, or sent preemptively from the cache).
            let answered_before = attempt
                .answered
                .iter()
                .any(|(p, r, _)| *p == c.proxy && *r == c.realm);
            let preemptive = self
                .spaces
                .get(&key)
                .is_some_and(|s| s.challenge.nonce != c.nonce)
                && attempt.rounds == 1
                && !attempt.current.is_empty();
            if answered_before && !c.stale {
                self.clear();
                return Verdict::Fail(format!("credentials refused for realm {:?}", c.realm));
            }
            if c.stale || preemptive {
                tracing::debug!(realm = %c.realm, "new nonce (stale or expired); answering again");
            }
            let space = Space {
                challenge: c.clone(),
                cnonce: random_cnonce(),
                nc: 1,
            };
            let creds = match authorization(
                &space.challenge,
                user.username,
                user.secret,
                &space.cnonce,
                space.nc,
                req,
            ) {
                Ok(cr) => cr,
                Err(e) => return Verdict::Fail(e.to_string()),
            };
            attempt
                .current
                .retain(|x| !(x.proxy == c.proxy && header_realm(&x.value) == Some(&c.realm)));
            attempt.current.push(creds);
            attempt
                .answered
                .push((c.proxy, c.realm.clone(), c.nonce.clone()));
            self.spaces.insert(key, space);
        }
        Verdict::Retry(attempt.current.clone())
    }

    /// Remember credentials sent preemptively (so a 401 to them is not taken as a refusal
    /// of an answered round).
    pub(crate) fn note_sent(&self, attempt: &mut AuthAttempt, creds: &[Credentials]) {
        attempt.current = creds.to_vec();
    }
}

/// The `realm` of one of our own header values (for replacing it).
fn header_realm(value: &str) -> Option<&str> {
    let i = value.find("realm=\"")? + 7;
    let rest = &value[i..];
    let end = rest.find('"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: user "Mufasa", password "Circle of Life".
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const REALM: &str = "http-auth@example.org";

    fn rfc7616_input(alg: Algorithm, secret: &Secret) -> DigestInput<'_> {
        DigestInput {
            algorithm: alg,
            username: "Mufasa",
            realm: REALM,
            secret,
            nonce: NONCE,
            cnonce: CNONCE,
            nc: 1,
            qop: Some(Qop::Auth),
            req: RequestParts {
                method: "GET",
                uri: "/dir/index.html",
                body: b"",
            },
        }
    }

    #[test]
    fn rfc7616_example_md5_response() {
        let pw = Secret::Password("Circle of Life".into());
        assert_eq!(
            response(&rfc7616_input(Algorithm::Md5, &pw)).unwrap(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_example_sha256_response() {
        let pw = Secret::Password("Circle of Life".into());
        assert_eq!(
            response(&rfc7616_input(Algorithm::Sha256, &pw)).unwrap(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn precomputed_ha1_gives_the_password_response_for_md5_only() {
        let ha1 = Algorithm::Md5.hash(format!("Mufasa:{REALM}:Circle of Life").as_bytes());
        let secret = Secret::Ha1(ha1.to_ascii_uppercase());
        assert_eq!(
            response(&rfc7616_input(Algorithm::Md5, &secret)).unwrap(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            response(&rfc7616_input(Algorithm::Sha256, &secret)),
            Err(DigestError::Ha1Mismatch("SHA-256"))
        );
    }

    #[test]
    fn rfc2617_example_without_cnonce_uses_rfc2069_form() {
        // RFC 2617 §3.5 values with qop absent: response = MD5(HA1:nonce:HA2).
        let pw = Secret::Password("Circle Of Life".into());
        let i = DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            secret: &pw,
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce: "",
            nc: 0,
            qop: None,
            req: RequestParts {
                method: "GET",
                uri: "/dir/index.html",
                body: b"",
            },
        };
        let ha1 = Algorithm::Md5.hash(b"Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = Algorithm::Md5.hash(b"GET:/dir/index.html");
        let want = Algorithm::Md5
            .hash(format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}").as_bytes());
        assert_eq!(response(&i).unwrap(), want);
    }

    #[test]
    fn auth_int_hashes_the_body_and_sess_rehashes_ha1() {
        let pw = Secret::Password("pw".into());
        let mut i = rfc7616_input(Algorithm::Sha256Sess, &pw);
        i.qop = Some(Qop::AuthInt);
        i.req.body = b"v=0\r\n";
        let h = |s: String| Algorithm::Sha256.hash(s.as_bytes());
        let ha1 = h(format!(
            "{}:{NONCE}:{CNONCE}",
            h(format!("Mufasa:{REALM}:pw"))
        ));
        let ha2 = h(format!(
            "GET:/dir/index.html:{}",
            Algorithm::Sha256.hash(b"v=0\r\n")
        ));
        let want = h(format!("{ha1}:{NONCE}:00000001:{CNONCE}:auth-int:{ha2}"));
        assert_eq!(response(&i).unwrap(), want);
        // An empty body hashes differently.
        i.req.body = b"";
        assert_ne!(response(&i).unwrap(), want);
    }

    #[test]
    fn sha512_256_is_the_truncated_sha512_variant() {
        // FIPS 180-4 SHA-512/256("abc").
        assert_eq!(
            Algorithm::Sha512_256.hash(b"abc"),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn challenge_parsing_reads_rfc7616_fields_and_quoted_commas() {
        let c = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", stale=TRUE"#,
            false,
        )
        .unwrap();
        assert_eq!(c.realm, REALM);
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(c.nonce, NONCE);
        assert!(c.stale);
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#, false),
            Err(ChallengeError::NotDigest)
        );
        assert!(matches!(
            Challenge::parse(r#"Digest realm="x", nonce="n", algorithm=SHA-1"#, false),
            Err(ChallengeError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            Challenge::parse(r#"Digest realm="a\"b", nonce=abc"#, true)
                .unwrap()
                .realm,
            "a\"b"
        );
    }

    fn ch(realm: &str, alg: Algorithm, nonce: &str, proxy: bool) -> Challenge {
        Challenge {
            proxy,
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm: alg,
            qop: vec![Qop::Auth],
            stale: false,
            userhash: false,
        }
    }

    #[test]
    fn several_challenges_pick_the_strongest_per_realm() {
        let list = vec![
            ch("a", Algorithm::Md5, "1", false),
            ch("a", Algorithm::Sha512_256, "2", false),
            ch("a", Algorithm::Sha256, "3", false),
            ch("b", Algorithm::Md5, "4", true),
        ];
        let pw = Secret::Password("p".into());
        let s = select(&list, &pw);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].algorithm, Algorithm::Sha512_256);
        assert_eq!(s[1].realm, "b");
        // With only an MD5 HA1, the MD5 challenge is the one we can answer.
        let s = select(&list, &Secret::Ha1("00".into()));
        assert_eq!(s[0].algorithm, Algorithm::Md5);
    }

    fn user<'a>(secret: &'a Secret, realm: Option<&'a str>) -> AuthUser<'a> {
        AuthUser {
            username: "1001",
            secret,
            realm,
            strict_realm: true,
        }
    }

    const REQ: RequestParts<'static> = RequestParts {
        method: "REGISTER",
        uri: "sip:example.org",
        body: b"",
    };

    #[test]
    fn second_challenge_for_the_same_realm_is_a_refusal_unless_stale() {
        let pw = Secret::Password("p".into());
        let mut cache = DigestCache::default();
        let mut att = AuthAttempt::default();
        let first = [ch("r", Algorithm::Md5, "n1", false)];
        assert!(matches!(
            cache.on_challenge(&mut att, &first, &user(&pw, None), REQ),
            Verdict::Retry(c) if c.len() == 1 && c[0].value.contains("nonce=\"n1\"")
        ));
        let mut stale = ch("r", Algorithm::Md5, "n2", false);
        stale.stale = true;
        assert!(matches!(
            cache.on_challenge(&mut att, &[stale], &user(&pw, None), REQ),
            Verdict::Retry(c) if c.len() == 1 && c[0].value.contains("nonce=\"n2\"")
        ));
        let again = [ch("r", Algorithm::Md5, "n3", false)];
        assert!(matches!(
            cache.on_challenge(&mut att, &again, &user(&pw, None), REQ),
            Verdict::Fail(_)
        ));
        assert!(
            cache.spaces.is_empty(),
            "a refusal forgets the cached nonce"
        );
    }

    #[test]
    fn proxy_challenge_after_www_challenge_keeps_both_credentials() {
        let pw = Secret::Password("p".into());
        let mut cache = DigestCache::default();
        let mut att = AuthAttempt::default();
        let _ = cache.on_challenge(
            &mut att,
            &[ch("reg", Algorithm::Md5, "n1", false)],
            &user(&pw, None),
            REQ,
        );
        match cache.on_challenge(
            &mut att,
            &[ch("prx", Algorithm::Sha256, "n2", true)],
            &user(&pw, None),
            REQ,
        ) {
            Verdict::Retry(c) => {
                let names: Vec<_> = c.iter().map(|c| c.header_name()).collect();
                assert_eq!(names, ["Authorization", "Proxy-Authorization"]);
                assert!(c[1].value.contains("algorithm=SHA-256"));
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn configured_realm_must_match_empty_accepts_the_servers() {
        let pw = Secret::Password("p".into());
        let mut cache = DigestCache::default();
        let list = [ch("other", Algorithm::Md5, "n", false)];
        let v = cache.on_challenge(
            &mut AuthAttempt::default(),
            &list,
            &user(&pw, Some("mine")),
            REQ,
        );
        assert!(matches!(v, Verdict::Fail(m) if m.contains("expected \"mine\"")));
        for realm in [None, Some(""), Some("other")] {
            let v = cache.on_challenge(&mut AuthAttempt::default(), &list, &user(&pw, realm), REQ);
            assert!(matches!(v, Verdict::Retry(_)), "{realm:?}");
        }
        // Calls (not strict) answer a foreign realm.
        let mut u = user(&pw, Some("mine"));
        u.strict_realm = false;
        assert!(matches!(
            cache.on_challenge(&mut AuthAttempt::default(), &list, &u, REQ),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn cached_nonce_is_reused_with_incrementing_nonce_count() {
        let pw = Secret::Password("p".into());
        let mut cache = DigestCache::default();
        assert!(cache.preemptive(&user(&pw, None), REQ).is_empty());
        let _ = cache.on_challenge(
            &mut AuthAttempt::default(),
            &[ch("r", Algorithm::Sha256, "n1", false)],
            &user(&pw, None),
            REQ,
        );
        let a = cache.preemptive(&user(&pw, None), REQ);
        let b = cache.preemptive(&user(&pw, None), REQ);
        assert!(a[0].value.contains("nc=00000002"), "{}", a[0].value);
        assert!(b[0].value.contains("nc=00000003"), "{}", b[0].value);
        assert!(b[0].value.contains("nonce=\"n1\""));
        // The server says the nonce is too old: a new round with the new one, no failure.
        let mut att = AuthAttempt::default();
        cache.note_sent(&mut att, &b);
        let mut st = ch("r", Algorithm::Sha256, "n2", false);
        st.stale = true;
        assert!(matches!(
            cache.on_challenge(&mut att, &[st], &user(&pw, None), REQ),
            Verdict::Retry(c) if c[0].value.contains("nc=00000001") && c[0].value.contains("\"n2\"")
        ));
    }

    #[test]
    fn authorization_header_carries_rfc7616_fields() {
        let pw = Secret::Password("Circle of Life".into());
        let mut c = ch(REALM, Algorithm::Sha256, NONCE, false);
        c.opaque = Some("op".into());
        let cr = authorization(
            &c,
            "Mufasa",
            &pw,
            CNONCE,
            1,
            RequestParts {
                method: "GET",
                uri: "/dir/index.html",
                body: b"",
            },
        )
        .unwrap();
        assert_eq!(
            cr.value,
            format!(
                "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{NONCE}\", uri=\"/dir/index.html\", \
                 response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
                 algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"{CNONCE}\", opaque=\"op\""
            )
        );
        assert_eq!(cr.header_name(), "Authorization");
    }
}
