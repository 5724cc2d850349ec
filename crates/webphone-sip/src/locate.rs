//! RFC 3263 server location, sans-IO: which DNS names to ask, how to pick transports from
//! NAPTR records (RFC 3263 §4.1, RFC 3403), how to order SRV records (RFC 2782), and the
//! resulting failover list; plus a small DNS stub client (RFC 1035
//! wire format over UDP, TCP on truncation) whose name server is configurable (the
//! system's `/etc/resolv.conf` by default, a test server in tests), a TTL-bound answer
//! cache (RFC 2181 §8, negative answers per RFC 2308 §5) and cached located lists where a
//! failed server moves to the back (RFC 3263 §4.3). TLS and WebSocket hops chosen this way
//! keep the domain as their name ([`Pins`], [`PinnedResolver`]): the certificate is
//! checked against the domain the lookup started from (RFC 5922 §4).
//!
//! rsipstack 0.7.14's `srv_lookup` resolver can only be pointed at name server IPs on port
//! 53 and its result order ignores SRV weights, so the location logic lives here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Transport;

/// One SRV record (RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The SRV owner name for `transport` (RFC 3263 §4.1, RFC 7118 §6 has none for WS).
pub(crate) fn srv_name(domain: &str, transport: Transport) -> Option<String> {
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
        Transport::Ws | Transport::Wss => return None,
    };
    Some(format!("{prefix}.{}", domain.trim_end_matches('.')))
}

/// Order SRV records per RFC 2782: ascending priority; within a priority, a weighted random
/// order (records with weight 0 first in the running sum, so they are picked rarely).
/// `rand(n)` returns a number in `0..=n` (injected for deterministic tests). A single
/// record with target `.` means "no service" and yields nothing.
pub(crate) fn order_srv(mut records: Vec<Srv>, mut rand: impl FnMut(u32) -> u32) -> Vec<Srv> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut i = 0;
    while i < records.len() {
        let prio = records[i].priority;
        let mut group: Vec<Srv> = records[i..]
            .iter()
            .take_while(|r| r.priority == prio)
            .cloned()
            .collect();
        i += group.len();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = rand(total);
            let mut running = 0u32;
            let mut idx = group.len() - 1;
            for (k, r) in group.iter().enumerate() {
                running += u32::from(r.weight);
                if running >= pick {
                    idx = k;
                    break;
                }
            }
            out.push(group.remove(idx));
        }
    }
    out
}

/// How a server address is located (RFC 3263 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// A numeric IP: used as it is.
    Literal(SocketAddr),
    /// A name with an explicit port: A/AAAA only.
    Address { host: String, port: u16 },
    /// A name without port: SRV for the transport, else A/AAAA at the default port.
    Srv {
        host: String,
        srv: String,
        default_port: u16,
    },
}

/// Decide the lookups for `host[:port]` over `transport`.
pub(crate) fn plan(host: &str, port: Option<u16>, transport: Transport) -> Plan {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Plan::Literal(SocketAddr::new(
            ip,
            port.unwrap_or(transport.default_port()),
        ));
    }
    match (port, srv_name(host, transport)) {
        (Some(p), _) => Plan::Address {
            host: host.to_string(),
            port: p,
        },
        (None, Some(srv)) => Plan::Srv {
            host: host.to_string(),
            srv,
            default_port: transport.default_port(),
        },
        (None, None) => Plan::Address {
            host: host.to_string(),
            port: transport.default_port(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// RFC 3263 §4.1 transport selection (NAPTR, RFC 3403)

/// One NAPTR record (RFC 3403 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub regexp: String,
    /// The next name to look up (here an SRV name); `.` or empty for none.
    pub replacement: String,
}

/// The transport a NAPTR `services` field names for SIP: `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`
/// (RFC 3263 §4.1) and `SIP+D2W`, `SIPS+D2W` (WebSocket, registered by RFC 7118).
/// Case-insensitive; anything else (`SIP+D2S` for SCTP, other applications) is `None`.
pub(crate) fn naptr_service(services: &str) -> Option<Transport> {
    match services.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        "SIP+D2W" => Some(Transport::Ws),
        "SIPS+D2W" => Some(Transport::Wss),
        _ => None,
    }
}

/// The transports usable for a URI: all of `supported`, or only the TLS-based ones for a
/// `sips:` URI (RFC 3263 §4.1: "a client resolving a SIPS URI MUST discard any services
/// that do not contain SIPS").
pub(crate) fn usable_transports(secure: bool, supported: &[Transport]) -> Vec<Transport> {
    supported
        .iter()
        .copied()
        .filter(|t| !secure || t.is_secure())
        .collect()
}

/// RFC 3263 §4.1: NAPTR is asked only for a host name without an explicit port (a numeric
/// address or a port selects UDP for `sip:`, TLS for `sips:`, without NAPTR).
pub(crate) fn wants_naptr(host: &str, port: Option<u16>) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    port.is_none() && bare.parse::<IpAddr>().is_err()
}

/// The NAPTR step of RFC 3263 §4.1: the (transport, SRV name) pairs to follow, best first.
/// Kept: terminal `s`-flag records (RFC 3403 §4.1 flags) without a regular expression whose
/// service is a SIP transport in `usable` and whose replacement names something. Ordered
/// by ORDER, then PREFERENCE (RFC 3403 §4.1); all kept records stay in the list, so a
/// failure on the first moves on to the next (RFC 3263 §4.3).
pub(crate) fn naptr_choices(
    mut records: Vec<Naptr>,
    usable: &[Transport],
) -> Vec<(Transport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s") && r.regexp.is_empty())
        .filter_map(|r| {
            let t = naptr_service(&r.services)?;
            let target = r.replacement.trim_end_matches('.');
            (usable.contains(&t) && !target.is_empty()).then(|| (t, target.to_string()))
        })
        .collect()
}

/// RFC 3263 §4.1 without usable NAPTR records: an SRV query per usable transport, in the
/// caller's order (WebSocket has no SRV name and is left out).
pub(crate) fn srv_fallback(host: &str, usable: &[Transport]) -> Vec<(Transport, String)> {
    usable
        .iter()
        .filter_map(|&t| Some((t, srv_name(host, t)?)))
        .collect()
}

/// Decode NAPTR RDATA (RFC 3403 §4.1) at `rd..rd + rdlen` of message `m`: ORDER,
/// PREFERENCE, three character-strings (FLAGS, SERVICES, REGEXP) and the REPLACEMENT
/// domain name. Anything running past the RDATA is `Malformed`.
pub(crate) fn parse_naptr(m: &[u8], rd: usize, rdlen: usize) -> Result<Naptr, DnsError> {
    let end = rd.checked_add(rdlen).ok_or(DnsError::Malformed)?;
    if end > m.len() || rdlen < 4 {
        return Err(DnsError::Malformed);
    }
    let order = u16_at(m, rd)?;
    let preference = u16_at(m, rd + 2)?;
    let mut pos = rd + 4;
    let mut strings: [String; 3] = Default::default();
    for s in &mut strings {
        let len = usize::from(
            *m.get(pos)
                .filter(|_| pos < end)
                .ok_or(DnsError::Malformed)?,
        );
        let bytes = m.get(pos + 1..pos + 1 + len).ok_or(DnsError::Malformed)?;
        if pos + 1 + len > end {
            return Err(DnsError::Malformed);
        }
        *s = String::from_utf8_lossy(bytes).into_owned();
        pos += 1 + len;
    }
    if pos >= end {
        return Err(DnsError::Malformed);
    }
    let (replacement, after) = read_name(&m[..end], pos)?;
    if after > end {
        return Err(DnsError::Malformed);
    }
    let [flags, services, regexp] = strings;
    Ok(Naptr {
        order,
        preference,
        flags,
        services,
        regexp,
        replacement,
    })
}

// ---------------------------------------------------------------------------------------
// DNS wire format (RFC 1035 §4, RFC 2782, RFC 3596)

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;
pub(crate) const TYPE_NAPTR: u16 = 35;
pub(crate) const TYPE_SOA: u16 = 6;

/// A decoded answer record we care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
    Naptr(Naptr),
}

/// DNS failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DnsError {
    #[error("malformed DNS message")]
    Malformed,
    #[error("DNS server failure (rcode {0})")]
    Server(u8),
    #[error("DNS: {0}")]
    Io(String),
    #[error("no DNS server configured")]
    NoServer,
}

/// Encode a query for `name`/`qtype` with id `id`, recursion desired.
pub(crate) fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// Append `name` as labels (no compression).
pub(crate) fn encode_name(m: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &label.as_bytes()[..label.len().min(63)];
        m.push(l.len() as u8);
        m.extend_from_slice(l);
    }
    m.push(0);
}

/// Read a (possibly compressed) name at `pos`; returns it and the position after it.
pub(crate) fn read_name(m: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *m.get(pos).ok_or(DnsError::Malformed)? as usize;
        if len & 0xC0 == 0xC0 {
            let lo = *m.get(pos + 1).ok_or(DnsError::Malformed)? as usize;
            end.get_or_insert(pos + 2);
            pos = ((len & 0x3F) << 8) | lo;
            hops += 1;
            if hops > 32 {
                return Err(DnsError::Malformed);
            }
            continue;
        }
        if len == 0 {
            let after = end.unwrap_or(pos + 1);
            return Ok((labels.join("."), after));
        }
        let label = m.get(pos + 1..pos + 1 + len).ok_or(DnsError::Malformed)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += 1 + len;
    }
}

fn u16_at(m: &[u8], pos: usize) -> Result<u16, DnsError> {
    m.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(DnsError::Malformed)
}

/// A TTL as sent (RFC 1035 §3.2.1); values with the top bit set count as zero (RFC 2181 §8).
fn ttl_at(m: &[u8], pos: usize) -> Result<u32, DnsError> {
    let b = m.get(pos..pos + 4).ok_or(DnsError::Malformed)?;
    let t = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok(if t & 0x8000_0000 != 0 { 0 } else { t })
}

/// One decoded response: the answer records we use, each with its TTL, and what a
/// negative answer says about its own caching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Answer-section records (A, AAAA, SRV, NAPTR; others skipped) with their TTLs.
    pub records: Vec<(Record, u32)>,
    /// RCODE 3: the name does not exist.
    pub nxdomain: bool,
    /// How long a negative answer (NXDOMAIN, or no records of the type) may be cached:
    /// min(SOA TTL, SOA MINIMUM) of the authority section (RFC 2308 §5); `None` without an
    /// SOA record (then it is not cached).
    pub negative_ttl: Option<u32>,
    pub truncated: bool,
}

/// Decode a response to query `id` (RFC 1035 §4.1): answer records with TTLs, the
/// NXDOMAIN flag and the negative-caching TTL of an SOA in the authority section.
pub(crate) fn decode_answer(m: &[u8], id: u16) -> Result<Answer, DnsError> {
    if m.len() < 12 || u16_at(m, 0)? != id || m[2] & 0x80 == 0 {
        return Err(DnsError::Malformed);
    }
    let mut out = Answer {
        truncated: m[2] & 0x02 != 0,
        ..Answer::default()
    };
    match m[3] & 0x0F {
        0 => {}
        3 => out.nxdomain = true,
        rc => return Err(DnsError::Server(rc)),
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let ns = u16_at(m, 8)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(m, pos)?.1 + 4;
    }
    for _ in 0..an {
        let (_, p) = read_name(m, pos)?;
        let rtype = u16_at(m, p)?;
        let ttl = ttl_at(m, p + 4)?;
        let rdlen = u16_at(m, p + 8)? as usize;
        let rd = p + 10;
        let data = m.get(rd..rd + rdlen).ok_or(DnsError::Malformed)?;
        let rec = match rtype {
            TYPE_A if rdlen == 4 => {
                Some(Record::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])))
            }
            TYPE_AAAA if rdlen == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                Some(Record::Aaaa(Ipv6Addr::from(b)))
            }
            TYPE_NAPTR => Some(Record::Naptr(parse_naptr(m, rd, rdlen)?)),
            TYPE_SRV if rdlen >= 7 => {
                let (target, _) = read_name(m, rd + 6)?;
                Some(Record::Srv(Srv {
                    priority: u16_at(m, rd)?,
                    weight: u16_at(m, rd + 2)?,
                    port: u16_at(m, rd + 4)?,
                    target,
                }))
            }
            _ => None,
        };
        out.records.extend(rec.map(|r| (r, ttl)));
        pos = rd + rdlen;
    }
    // RFC 2308 §5: the SOA of a negative answer bounds how long it may be cached. A
    // damaged authority section only loses that (the answer itself was read).
    for _ in 0..ns {
        let Ok((_, p)) = read_name(m, pos) else { break };
        let (Ok(rtype), Ok(ttl), Ok(rdlen)) = (u16_at(m, p), ttl_at(m, p + 4), u16_at(m, p + 8))
        else {
            break;
        };
        let rd = p + 10;
        if rtype == TYPE_SOA {
            let minimum = read_name(m, rd)
                .and_then(|(_, after_mname)| read_name(m, after_mname))
                .and_then(|(_, after_rname)| ttl_at(m, after_rname + 16));
            if let Ok(min) = minimum {
                out.negative_ttl = Some(ttl.min(min));
            }
        }
        pos = rd + rdlen as usize;
    }
    Ok(out)
}

/// Test view of [`decode_answer`]: the records without TTLs and the TC flag; NXDOMAIN is
/// `Err(None)`.
#[cfg(test)]
fn decode_response(m: &[u8], id: u16) -> Result<(Vec<Record>, bool), Option<DnsError>> {
    let a = decode_answer(m, id).map_err(Some)?;
    if a.nxdomain {
        return Err(None);
    }
    Ok((a.records.into_iter().map(|(r, _)| r).collect(), a.truncated))
}

// ---------------------------------------------------------------------------------------
// Caching (RFC 1035 §7.4, RFC 2181 §8, RFC 2308) and the located-server lists (RFC 3263 §4.3)

/// The longest we keep anything, whatever the TTL says.
const MAX_TTL: u32 = 86_400;
/// Entries kept at most per cache (expired ones go first, then the soonest to expire).
const CACHE_CAPACITY: usize = 256;

/// What the cache holds for a (name, type): the records, or "no such name / no records".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cached {
    Records(Vec<Record>),
    /// A negative answer (NXDOMAIN or NODATA), cached only with an SOA (RFC 2308 §5).
    Negative,
}

/// DNS answers by (lower-case name, type), each until its TTL runs out. Pure: every call
/// takes the current time.
#[derive(Debug, Default)]
pub(crate) struct DnsCache {
    entries: std::collections::HashMap<(String, u16), (Cached, Instant)>,
}

impl DnsCache {
    /// The cached answer for `name`/`qtype` and its remaining lifetime in seconds, unless
    /// missing or expired.
    pub(crate) fn get(&self, name: &str, qtype: u16, now: Instant) -> Option<(Cached, u32)> {
        let (c, expires) = self.entries.get(&(cache_name(name), qtype))?;
        let left = expires.checked_duration_since(now)?;
        (!left.is_zero()).then(|| (c.clone(), secs(left)))
    }

    /// Remember `answer` to `name`/`qtype`: records for the smallest of their TTLs (RFC
    /// 2181 §5.2: one RRset, one TTL), a negative answer for its SOA's negative TTL. A TTL
    /// of zero is not cached (RFC 1035 §3.2.1).
    pub(crate) fn store(&mut self, name: &str, qtype: u16, answer: &Answer, now: Instant) {
        let (entry, ttl) = if answer.nxdomain || answer.records.is_empty() {
            match answer.negative_ttl {
                Some(t) => (Cached::Negative, t),
                None => return,
            }
        } else {
            let ttl = answer.records.iter().map(|(_, t)| *t).min().unwrap_or(0);
            let recs = answer.records.iter().map(|(r, _)| r.clone()).collect();
            (Cached::Records(recs), ttl)
        };
        let ttl = ttl.min(MAX_TTL);
        if ttl == 0 {
            return;
        }
        make_room(&mut self.entries, now);
        self.entries.insert(
            (cache_name(name), qtype),
            (entry, now + Duration::from_secs(u64::from(ttl))),
        );
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

fn cache_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

/// Keep a cache map under [`CACHE_CAPACITY`]: drop expired entries, then the ones that
/// expire first.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut std::collections::HashMap<K, (V, Instant)>,
    now: Instant,
) {
    if map.len() < CACHE_CAPACITY {
        return;
    }
    map.retain(|_, (_, exp)| *exp > now);
    while map.len() >= CACHE_CAPACITY {
        let Some(k) = map
            .iter()
            .min_by_key(|(_, (_, exp))| *exp)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&k);
    }
}

/// What a located list was asked for: the host and port as written, and the transport
/// (or, when DNS picks it, the usable transports).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    pub host: String,
    pub port: Option<u16>,
    /// One transport when configured; the usable ones, in order, when NAPTR/SRV choose.
    pub transports: Vec<Transport>,
}

impl RouteKey {
    pub(crate) fn new(host: &str, port: Option<u16>, transports: &[Transport]) -> RouteKey {
        RouteKey {
            host: cache_name(host),
            port,
            transports: transports.to_vec(),
        }
    }
}

/// Located server lists (RFC 3263 §4.2 result: addresses with their transports, in
/// RFC 2782 order), kept as long as the shortest TTL of the records behind them. The
/// weighted-random SRV order is drawn once per list, and a server that failed (timeout,
/// 503, connection refused) goes to the end of the cached list, so the following requests
/// start with the next one (RFC 3263 §4.3) instead of waiting for the dead one each time.
#[derive(Debug, Default)]
pub(crate) struct RouteCache {
    entries: std::collections::HashMap<RouteKey, (Vec<(SocketAddr, Transport)>, Instant)>,
}

impl RouteCache {
    /// The cached list for `key`, unless missing or expired.
    pub(crate) fn get(&self, key: &RouteKey, now: Instant) -> Option<Vec<(SocketAddr, Transport)>> {
        let (list, expires) = self.entries.get(key)?;
        (*expires > now).then(|| list.clone())
    }

    /// Remember `list` for `ttl` seconds (zero: not at all).
    pub(crate) fn store(
        &mut self,
        key: RouteKey,
        list: Vec<(SocketAddr, Transport)>,
        ttl: u32,
        now: Instant,
    ) {
        let ttl = ttl.min(MAX_TTL);
        if ttl == 0 || list.is_empty() {
            return;
        }
        make_room(&mut self.entries, now);
        self.entries
            .insert(key, (list, now + Duration::from_secs(u64::from(ttl))));
    }

    /// `server` failed: the next requests try the others first (RFC 3263 §4.3).
    pub(crate) fn failed(&mut self, key: &RouteKey, server: (SocketAddr, Transport)) {
        if let Some((list, _)) = self.entries.get_mut(key) {
            if let Some(i) = list.iter().position(|s| *s == server) {
                let s = list.remove(i);
                list.push(s);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Addresses chosen for `(host, port)` next hops named by their domain: TLS and WebSocket
/// connections keep the domain (the certificate must match the domain the lookup started
/// from, not the SRV target, RFC 5922 §4; the WebSocket Host header names it too) while
/// connecting to the located address. Consulted by the stack's resolver ([`PinnedResolver`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Pins(Arc<Mutex<std::collections::HashMap<(String, u16), SocketAddr>>>);

impl Pins {
    pub(crate) fn pin(&self, host: &str, port: u16, addr: SocketAddr) {
        crate::lock(&self.0).insert((cache_name(host), port), addr);
    }

    pub(crate) fn get(&self, host: &str, port: u16) -> Option<SocketAddr> {
        crate::lock(&self.0).get(&(cache_name(host), port)).copied()
    }
}

/// rsipstack's resolver with [`Pins`] first: a pinned `domain:port` resolves to its located
/// address (keeping the domain as TLS server name), anything else as before.
pub(crate) struct PinnedResolver {
    pub pins: Pins,
    pub fallback: rsipstack::transport::transport_layer::DefaultDomainResolver,
}

type ResolveFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = rsipstack::Result<rsipstack::transport::SipAddr>>
            + Send
            + 'a,
    >,
>;

impl rsipstack::transport::transport_layer::DomainResolver for PinnedResolver {
    fn resolve<'life0, 'life1, 'async_trait>(
        &'life0 self,
        target: &'life1 rsipstack::transport::SipAddr,
    ) -> ResolveFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if let rsipstack::sip::Host::Domain(d) = &target.addr.host {
                let port = target.addr.port.as_ref().map(|p| p.value());
                let default = target
                    .r#type
                    .map(|t| t.default_port().value())
                    .unwrap_or(5060);
                if let Some(a) = self.pins.get(&d.to_string(), port.unwrap_or(default)) {
                    return Ok(rsipstack::transport::SipAddr {
                        r#type: target.r#type,
                        addr: a.into(),
                    });
                }
            }
            self.fallback.resolve(target).await
        })
    }
}

/// Name servers of `/etc/resolv.conf` (port 53); empty when unreadable.
pub(crate) fn system_name_servers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|s| parse_resolv_conf(&s))
        .unwrap_or_default()
}

/// `nameserver` lines of a resolv.conf (zone-scoped IPv6 addresses are skipped).
pub(crate) fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == "nameserver").then_some(())?;
            let ip: IpAddr = it.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// How long one DNS query may take per server.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Ask `servers` in turn for `name`/`qtype` (UDP; TCP when the answer is truncated).
/// NXDOMAIN is an answer (the next server is not asked).
pub(crate) async fn query(
    servers: &[SocketAddr],
    name: &str,
    qtype: u16,
) -> Result<Answer, DnsError> {
    let mut last = DnsError::NoServer;
    for server in servers {
        match query_one(*server, name, qtype).await {
            Ok(a) => return Ok(a),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn query_one(server: SocketAddr, name: &str, qtype: u16) -> Result<Answer, DnsError> {
    use rand::Rng;
    let id: u16 = rand::rng().random();
    let q = encode_query(id, name, qtype);
    let bind: SocketAddr = if server.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let io = |e: std::io::Error| DnsError::Io(e.to_string());
    let sock = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
    sock.send_to(&q, server).await.map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .map_err(|_| DnsError::Io(format!("no answer from {server}")))?
            .map_err(io)?;
        if from != server {
            continue;
        }
        match decode_answer(&buf[..n], id) {
            Ok(a) if a.truncated => return query_tcp(server, &q, id).await,
            Ok(a) => return Ok(a),
            Err(DnsError::Malformed) => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn query_tcp(server: SocketAddr, q: &[u8], id: u16) -> Result<Answer, DnsError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = |e: std::io::Error| DnsError::Io(e.to_string());
    let work = async {
        let mut s = tokio::net::TcpStream::connect(server).await.map_err(io)?;
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(q);
        s.write_all(&msg).await.map_err(io)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(io)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.map_err(io)?;
        decode_answer(&buf, id)
    };
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| DnsError::Io(format!("no TCP answer from {server}")))?
}

/// The DNS side of RFC 3263 for one user agent: the name servers, the answer cache, the
/// located lists (with failed servers moved back) and the pins for TLS/WebSocket hops.
/// Cheap to clone; all clones share the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dns {
    servers: Arc<Mutex<Vec<SocketAddr>>>,
    cache: Arc<Mutex<DnsCache>>,
    routes: Arc<Mutex<RouteCache>>,
    pub pins: Pins,
}

/// One location run: the smallest TTL of everything it looked at (the lifetime of its
/// result, RFC 1035 §7.4), `None` while nothing bounded it.
struct Run<'a> {
    dns: &'a Dns,
    servers: Vec<SocketAddr>,
    ttl: Option<u32>,
}

impl Dns {
    pub(crate) fn new(servers: Vec<SocketAddr>) -> Dns {
        let d = Dns::default();
        *crate::lock(&d.servers) = servers;
        d
    }

    /// New name servers: whatever the old ones said is forgotten.
    pub(crate) fn set_servers(&self, servers: Vec<SocketAddr>) {
        *crate::lock(&self.servers) = servers;
        crate::lock(&self.cache).clear();
        crate::lock(&self.routes).clear();
    }

    /// `server` of the list located for `key` failed (RFC 3263 §4.3): later requests try
    /// the others first, until the list expires.
    pub(crate) fn failed(&self, key: &RouteKey, server: (SocketAddr, Transport)) {
        crate::lock(&self.routes).failed(key, server);
    }

    fn run(&self) -> Run<'_> {
        Run {
            dns: self,
            servers: crate::lock(&self.servers).clone(),
            ttl: None,
        }
    }

    /// Locate `host[:port]` for `transport` (RFC 3263 §4.2): the ordered list of addresses
    /// to try, failing over to the next on a timeout or a 503 (§4.3). With no name servers
    /// (or no answer) the system resolver is asked for A/AAAA. The list is cached (see
    /// [`RouteCache`]).
    pub(crate) async fn locate(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Transport,
    ) -> Result<Vec<SocketAddr>, String> {
        let key = RouteKey::new(host, port, &[transport]);
        if let Some(list) = crate::lock(&self.routes).get(&key, Instant::now()) {
            return Ok(list.into_iter().map(|(a, _)| a).collect());
        }
        let mut run = self.run();
        let list = run.locate(host, port, transport).await?;
        run.remember(key, list.iter().map(|a| (*a, transport)).collect());
        Ok(list)
    }

    /// Locate `host[:port]` when no transport was given (RFC 3263 §4.1): the ordered list
    /// of addresses to try, each with the transport to use. `supported` lists the
    /// transports the caller can use, most wanted first; `secure` (a `sips:` URI) keeps
    /// only TLS ones.
    ///
    /// A numeric host or an explicit port: the first supported transport, A/AAAA only.
    /// Else NAPTR for the host ([`naptr_choices`]), each chosen SRV name in turn; when NAPTR
    /// gives nothing usable, SRV for each supported transport ([`srv_fallback`]); when that
    /// gives nothing either, A/AAAA at the default port of the first supported transport.
    pub(crate) async fn locate_auto(
        &self,
        host: &str,
        port: Option<u16>,
        secure: bool,
        supported: &[Transport],
    ) -> Result<Vec<(SocketAddr, Transport)>, String> {
        let transports = usable_transports(secure, supported);
        let key = RouteKey::new(host, port, &transports);
        if let Some(list) = crate::lock(&self.routes).get(&key, Instant::now()) {
            return Ok(list);
        }
        let mut run = self.run();
        let list = run.locate_auto(host, port, &transports).await?;
        run.remember(key, list.clone());
        Ok(list)
    }
}

impl Run<'_> {
    fn bound(&mut self, ttl: u32) {
        self.ttl = Some(self.ttl.map_or(ttl, |t| t.min(ttl)));
    }

    fn remember(&self, key: RouteKey, list: Vec<(SocketAddr, Transport)>) {
        // Without any TTL (literal address, system resolver) there is nothing to keep.
        if let Some(ttl) = self.ttl {
            crate::lock(&self.dns.routes).store(key, list, ttl, Instant::now());
        }
    }

    /// `name`/`qtype` from the cache, else from the name servers (then cached).
    async fn query(&mut self, name: &str, qtype: u16) -> Vec<Record> {
        let now = Instant::now();
        let cached = crate::lock(&self.dns.cache).get(name, qtype, now);
        if let Some((c, left)) = cached {
            self.bound(left);
            return match c {
                Cached::Records(r) => r,
                Cached::Negative => Vec::new(),
            };
        }
        match query(&self.servers, name, qtype).await {
            Ok(a) => {
                crate::lock(&self.dns.cache).store(name, qtype, &a, Instant::now());
                if a.nxdomain || a.records.is_empty() {
                    if let Some(t) = a.negative_ttl {
                        self.bound(t);
                    }
                } else if let Some(t) = a.records.iter().map(|(_, t)| *t).min() {
                    self.bound(t);
                }
                a.records.into_iter().map(|(r, _)| r).collect()
            }
            Err(e) => {
                tracing::debug!(%name, qtype, error = %e, "DNS query failed");
                // Nothing learnt: do not keep a list built without this answer.
                self.bound(0);
                Vec::new()
            }
        }
    }

    /// A/AAAA of `host` (IPv4 first, then IPv6).
    async fn addresses(&mut self, host: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for t in [TYPE_A, TYPE_AAAA] {
            for r in self.query(host, t).await {
                match r {
                    Record::A(a) => out.push(IpAddr::V4(a)),
                    Record::Aaaa(a) => out.push(IpAddr::V6(a)),
                    Record::Srv(_) | Record::Naptr(_) => {}
                }
            }
        }
        out
    }

    async fn locate(
        &mut self,
        host: &str,
        port: Option<u16>,
        transport: Transport,
    ) -> Result<Vec<SocketAddr>, String> {
        let mut out: Vec<SocketAddr> = Vec::new();
        match plan(host, port, transport) {
            Plan::Literal(a) => out.push(a),
            Plan::Address { host, port } => {
                out.extend(
                    self.addresses(&host)
                        .await
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port)),
                );
                if out.is_empty() {
                    self.bound(0);
                    out.extend(system_lookup(&host, port).await);
                }
            }
            Plan::Srv {
                host,
                srv,
                default_port,
            } => {
                out.extend(self.srv_addresses(&srv).await);
                if out.is_empty() {
                    out.extend(
                        self.addresses(&host)
                            .await
                            .into_iter()
                            .map(|ip| SocketAddr::new(ip, default_port)),
                    );
                    if out.is_empty() {
                        self.bound(0);
                        out.extend(system_lookup(&host, default_port).await);
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|a| seen.insert(*a));
        if out.is_empty() {
            Err(format!("cannot resolve {host}"))
        } else {
            Ok(out)
        }
    }

    /// The addresses behind the SRV name `srv`, in RFC 2782 order (empty when none).
    async fn srv_addresses(&mut self, srv: &str) -> Vec<SocketAddr> {
        let records: Vec<Srv> = self
            .query(srv, TYPE_SRV)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Record::Srv(s) => Some(s),
                _ => None,
            })
            .collect();
        let ordered = order_srv(records, |n| {
            use rand::Rng;
            rand::rng().random_range(0..=n)
        });
        let mut out = Vec::new();
        for s in ordered {
            let ips = match s.target.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => self.addresses(&s.target).await,
            };
            out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, s.port)));
        }
        out
    }

    async fn locate_auto(
        &mut self,
        host: &str,
        port: Option<u16>,
        transports: &[Transport],
    ) -> Result<Vec<(SocketAddr, Transport)>, String> {
        let Some(&first) = transports.first() else {
            return Err(format!("no usable transport to reach {host}"));
        };
        if !wants_naptr(host, port) {
            return self
                .locate(host, port, first)
                .await
                .map(|v| v.into_iter().map(|a| (a, first)).collect());
        }
        let naptr: Vec<Naptr> = self
            .query(host, TYPE_NAPTR)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Record::Naptr(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut chosen = naptr_choices(naptr, transports);
        if chosen.is_empty() {
            chosen = srv_fallback(host, transports);
        } else {
            tracing::debug!(%host, ?chosen, "NAPTR choices");
        }
        let mut out: Vec<(SocketAddr, Transport)> = Vec::new();
        for (t, srv) in chosen {
            out.extend(self.srv_addresses(&srv).await.into_iter().map(|a| (a, t)));
        }
        if out.is_empty() {
            // RFC 3263 §4.2: no SRV either, A/AAAA at the default port.
            return self
                .locate(host, Some(first.default_port()), first)
                .await
                .map(|v| v.into_iter().map(|a| (a, first)).collect());
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|a| seen.insert(*a));
        Ok(out)
    }
}

async fn system_lookup(host: &str, port: u16) -> Vec<SocketAddr> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn srv_names_per_transport_rfc3263() {
        assert_eq!(
            srv_name("example.org", Transport::Udp).as_deref(),
            Some("_sip._udp.example.org")
        );
        assert_eq!(
            srv_name("example.org.", Transport::Tcp).as_deref(),
            Some("_sip._tcp.example.org")
        );
        assert_eq!(
            srv_name("example.org", Transport::Tls).as_deref(),
            Some("_sips._tcp.example.org")
        );
        assert_eq!(srv_name("example.org", Transport::Ws), None);
    }

    #[test]
    fn plan_literal_port_and_srv() {
        assert_eq!(
            plan("[::1]", None, Transport::Udp),
            Plan::Literal("[::1]:5060".parse().unwrap())
        );
        assert_eq!(
            plan("10.0.0.1", Some(5070), Transport::Tls),
            Plan::Literal("10.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            plan("pbx.example", Some(5080), Transport::Udp),
            Plan::Address {
                host: "pbx.example".into(),
                port: 5080
            }
        );
        assert_eq!(
            plan("pbx.example", None, Transport::Tls),
            Plan::Srv {
                host: "pbx.example".into(),
                srv: "_sips._tcp.pbx.example".into(),
                default_port: 5061
            }
        );
    }

    #[test]
    fn srv_lower_priority_first_then_weighted_rfc2782() {
        let recs = vec![srv(20, 0, "backup"), srv(10, 10, "a"), srv(10, 90, "b")];
        // rand picks the top of the range: the running sum reaches it at the last record.
        let order: Vec<String> = order_srv(recs.clone(), |n| n)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(order, ["b", "a", "backup"]);
        // rand 0 picks the first record with a running sum >= 0.
        let order: Vec<String> = order_srv(recs, |_| 0)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(order, ["a", "b", "backup"]);
    }

    #[test]
    fn srv_weights_shape_the_distribution() {
        let recs = vec![srv(1, 1, "light"), srv(1, 9, "heavy")];
        let mut state = 0u32;
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let o = order_srv(recs.clone(), |n| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 8) % (n + 1)
            });
            if o[0].target == "heavy" {
                heavy_first += 1;
            }
        }
        assert!((800..=980).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn single_dot_target_means_no_service() {
        assert!(order_srv(vec![srv(0, 0, ".")], |_| 0).is_empty());
    }

    #[test]
    fn query_encoding_and_compressed_answers_decode() {
        let q = encode_query(0x1234, "_sip._udp.example.org", TYPE_SRV);
        assert_eq!(&q[..2], &[0x12, 0x34]);
        // Build a response: header, the question, one SRV answer whose owner is a pointer
        // to the question name and whose target is "sip1" + pointer to "example.org".
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // ancount
        r.extend_from_slice(&[0xC0, 12]);
        r.extend_from_slice(&TYPE_SRV.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let mut rdata = vec![0, 10, 0, 5, 0x13, 0xC4];
        rdata.extend_from_slice(&[4, b's', b'i', b'p', b'1', 0xC0, 12 + 10]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
        let (recs, tc) = decode_response(&r, 0x1234).unwrap();
        assert!(!tc);
        assert_eq!(
            recs,
            vec![Record::Srv(Srv {
                priority: 10,
                weight: 5,
                port: 5060,
                target: "sip1.example.org".into()
            })]
        );
        assert_eq!(decode_response(&r, 0x9999), Err(Some(DnsError::Malformed)));
        let mut nx = q;
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(decode_response(&nx, 0x1234), Err(None));
    }

    #[test]
    fn compression_loops_are_rejected() {
        let m = [0xC0u8, 0];
        assert_eq!(read_name(&m, 0), Err(DnsError::Malformed));
    }

    #[test]
    fn resolv_conf_name_servers() {
        let v = parse_resolv_conf(
            "# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nnameserver ::1\n",
        );
        assert_eq!(
            v,
            vec!["10.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }
    fn naptr(order: u16, preference: u16, flags: &str, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: flags.into(),
            services: services.into(),
            regexp: String::new(),
            replacement: replacement.into(),
        }
    }

    const UDP_TCP: [Transport; 2] = [Transport::Udp, Transport::Tcp];
    const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    #[test]
    fn naptr_prefers_lower_order_then_preference() {
        let recs = vec![
            naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.org"),
            naptr(10, 50, "s", "SIP+D2U", "_sip._udp.b.example.org"),
            naptr(10, 20, "S", "sip+d2t", "_sip._tcp.example.org."),
        ];
        assert_eq!(
            naptr_choices(recs, &UDP_TCP),
            vec![
                (Transport::Tcp, "_sip._tcp.example.org".to_string()),
                (Transport::Udp, "_sip._udp.b.example.org".to_string()),
                (Transport::Udp, "_sip._udp.example.org".to_string()),
            ]
        );
    }

    #[test]
    fn naptr_keeps_only_terminal_s_records_of_known_sip_services() {
        let mut with_regexp = naptr(1, 1, "s", "SIP+D2U", "_sip._udp.x");
        with_regexp.regexp = "!^.*$!sip:x!".into();
        let recs = vec![
            naptr(1, 1, "", "SIP+D2U", "_sip._udp.example.org"),
            naptr(1, 1, "a", "SIP+D2U", "sip.example.org"),
            naptr(1, 1, "s", "SIP+D2S", "_sip._sctp.example.org"),
            naptr(1, 1, "s", "E2U+sip", "_sip._udp.example.org"),
            naptr(1, 1, "s", "SIP+D2U", "."),
            with_regexp,
            naptr(2, 1, "s", "SIP+D2U", "_sip._udp.example.org"),
        ];
        assert_eq!(
            naptr_choices(recs, &UDP_TCP),
            vec![(Transport::Udp, "_sip._udp.example.org".to_string())]
        );
    }

    #[test]
    fn naptr_restricted_to_supported_transports() {
        let recs = vec![
            naptr(10, 10, "s", "SIPS+D2T", "_sips._tcp.example.org"),
            naptr(20, 10, "s", "SIP+D2W", "_sip._ws.example.org"),
            naptr(30, 10, "s", "SIP+D2T", "_sip._tcp.example.org"),
        ];
        assert_eq!(
            naptr_choices(recs.clone(), &UDP_TCP),
            vec![(Transport::Tcp, "_sip._tcp.example.org".to_string())]
        );
        let all: Vec<Transport> = naptr_choices(recs, &ALL)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(all, [Transport::Tls, Transport::Ws, Transport::Tcp]);
    }

    #[test]
    fn sips_uri_ignores_udp_naptr() {
        let usable = usable_transports(true, &ALL);
        assert_eq!(usable, [Transport::Tls, Transport::Wss]);
        let recs = vec![
            naptr(10, 10, "s", "SIP+D2U", "_sip._udp.example.org"),
            naptr(10, 20, "s", "SIP+D2T", "_sip._tcp.example.org"),
            naptr(30, 10, "s", "SIPS+D2T", "_sips._tcp.example.org"),
        ];
        assert_eq!(
            naptr_choices(recs, &usable),
            vec![(Transport::Tls, "_sips._tcp.example.org".to_string())]
        );
        // No TLS-based transport supported: nothing at all.
        assert!(usable_transports(true, &UDP_TCP).is_empty());
    }

    #[test]
    fn naptr_without_records_falls_back_to_srv() {
        assert!(naptr_choices(Vec::new(), &UDP_TCP).is_empty());
        assert_eq!(
            srv_fallback("example.org", &UDP_TCP),
            vec![
                (Transport::Udp, "_sip._udp.example.org".to_string()),
                (Transport::Tcp, "_sip._tcp.example.org".to_string()),
            ]
        );
        // WebSocket has no SRV name; a sips: URI asks only _sips._tcp.
        assert_eq!(
            srv_fallback("example.org", &usable_transports(true, &ALL)),
            vec![(Transport::Tls, "_sips._tcp.example.org".to_string())]
        );
    }

    #[test]
    fn numeric_host_or_explicit_port_skips_naptr() {
        assert!(wants_naptr("example.org", None));
        assert!(!wants_naptr("example.org", Some(5060)));
        assert!(!wants_naptr("192.0.2.1", None));
        assert!(!wants_naptr("[2001:db8::1]", None));
    }

    /// NAPTR RDATA: order, preference, flags, services, regexp, replacement (uncompressed).
    fn naptr_rdata(
        order: u16,
        pref: u16,
        flags: &str,
        services: &str,
        regexp: &str,
        repl: &str,
    ) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&order.to_be_bytes());
        d.extend_from_slice(&pref.to_be_bytes());
        for s in [flags, services, regexp] {
            d.push(s.len() as u8);
            d.extend_from_slice(s.as_bytes());
        }
        encode_name(&mut d, repl);
        d
    }

    #[test]
    fn naptr_rdata_decodes_rfc3403_fields() {
        let d = naptr_rdata(100, 50, "s", "SIP+D2T", "", "_sip._tcp.example.com");
        assert_eq!(
            parse_naptr(&d, 0, d.len()),
            Ok(Naptr {
                order: 100,
                preference: 50,
                flags: "s".into(),
                services: "SIP+D2T".into(),
                regexp: String::new(),
                replacement: "_sip._tcp.example.com".into(),
            })
        );
        // The root name as replacement (RFC 3403 §4.1: none).
        let d = naptr_rdata(1, 2, "u", "E2U+sip", "!^.*$!sip:a@b!", ".");
        let n = parse_naptr(&d, 0, d.len()).unwrap();
        assert_eq!(
            (n.regexp.as_str(), n.replacement.as_str()),
            ("!^.*$!sip:a@b!", "")
        );
    }

    #[test]
    fn naptr_rdata_truncated_anywhere_is_malformed_never_a_panic() {
        let d = naptr_rdata(10, 10, "s", "SIP+D2U", "", "_sip._udp.example.org");
        for cut in 0..d.len() {
            // RDATA length says `cut`, message ends there too.
            assert_eq!(
                parse_naptr(&d[..cut], 0, cut),
                Err(DnsError::Malformed),
                "cut {cut}"
            );
            // RDATA length says `cut`, but the message goes on (the name runs past RDATA).
            assert_eq!(
                parse_naptr(&d, 0, cut),
                Err(DnsError::Malformed),
                "len {cut}"
            );
        }
        // RDATA length larger than the message.
        assert_eq!(parse_naptr(&d, 0, d.len() + 1), Err(DnsError::Malformed));
        assert_eq!(parse_naptr(&d, usize::MAX, 4), Err(DnsError::Malformed));
    }

    #[test]
    fn naptr_rdata_string_longer_than_rdata_is_malformed() {
        let mut d = naptr_rdata(10, 10, "s", "SIP+D2U", "", "_sip._udp.example.org");
        d[4] = 200; // flags length far past the end
        assert_eq!(parse_naptr(&d, 0, d.len()), Err(DnsError::Malformed));
        let mut d = naptr_rdata(10, 10, "s", "SIP+D2U", "", "x");
        d[6] = 20; // services length past the end of the RDATA
        assert_eq!(parse_naptr(&d, 0, d.len()), Err(DnsError::Malformed));
    }

    #[test]
    fn naptr_rdata_fuzzed_bytes_never_panic() {
        let base = naptr_rdata(10, 10, "s", "SIP+D2U", "", "_sip._udp.example.org");
        let mut state = 7u32;
        for _ in 0..5000 {
            let mut d = base.clone();
            for _ in 0..3 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (state >> 8) as usize % d.len();
                d[i] = (state >> 20) as u8;
            }
            let len = (state >> 4) as usize % (d.len() + 2);
            let _ = parse_naptr(&d, 0, len);
        }
    }

    #[test]
    fn naptr_answer_decodes_from_a_response() {
        let q = encode_query(0x4242, "example.org", TYPE_NAPTR);
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2; // ancount
        for (order, services) in [(10u16, "SIP+D2T"), (20, "SIP+D2U")] {
            let rdata = naptr_rdata(order, 0, "s", services, "", "_sip._tcp.example.org");
            r.extend_from_slice(&[0xC0, 12]);
            r.extend_from_slice(&TYPE_NAPTR.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(&rdata);
        }
        let (recs, _) = decode_response(&r, 0x4242).unwrap();
        assert_eq!(recs.len(), 2);
        assert!(matches!(&recs[0], Record::Naptr(n) if n.order == 10 && n.services == "SIP+D2T"));
        // The answer cut short anywhere: an error, never a panic.
        for cut in q.len()..r.len() {
            assert!(decode_response(&r[..cut], 0x4242).is_err(), "cut {cut}");
        }
    }

    /// A response to a query for `name`/`qtype` (id 7) with `answers` (type, TTL, RDATA)
    /// and, when given, an authority SOA with (TTL, MINIMUM).
    fn response(
        name: &str,
        qtype: u16,
        rcode: u8,
        answers: &[(u16, u32, Vec<u8>)],
        soa: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let mut r = encode_query(7, name, qtype);
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        r[8..10].copy_from_slice(&u16::from(soa.is_some()).to_be_bytes());
        for (t, ttl, data) in answers {
            r.extend_from_slice(&[0xC0, 12]);
            r.extend_from_slice(&t.to_be_bytes());
            r.extend_from_slice(&[0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
        }
        if let Some((ttl, minimum)) = soa {
            let mut d = Vec::new();
            encode_name(&mut d, "ns.example.org");
            encode_name(&mut d, "hostmaster.example.org");
            for v in [1u32, 3600, 600, 86400, minimum] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            r.extend_from_slice(&[0xC0, 12]);
            r.extend_from_slice(&TYPE_SOA.to_be_bytes());
            r.extend_from_slice(&[0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&(d.len() as u16).to_be_bytes());
            r.extend_from_slice(&d);
        }
        r
    }

    fn a_answer(name: &str, ttls: &[u32]) -> Answer {
        let answers: Vec<(u16, u32, Vec<u8>)> = ttls
            .iter()
            .enumerate()
            .map(|(i, t)| (TYPE_A, *t, vec![192, 0, 2, i as u8 + 1]))
            .collect();
        decode_answer(&response(name, TYPE_A, 0, &answers, None), 7).unwrap()
    }

    #[test]
    fn answer_ttls_and_soa_negative_ttl_decode_rfc2308() {
        let a = a_answer("pbx.example", &[300, 60]);
        assert_eq!(
            a.records,
            vec![
                (Record::A(Ipv4Addr::new(192, 0, 2, 1)), 300),
                (Record::A(Ipv4Addr::new(192, 0, 2, 2)), 60)
            ]
        );
        assert_eq!(a.negative_ttl, None);
        // NXDOMAIN with an SOA: cacheable for min(SOA TTL, MINIMUM).
        let nx = decode_answer(
            &response("x.example", TYPE_SRV, 3, &[], Some((900, 120))),
            7,
        )
        .unwrap();
        assert!(nx.nxdomain);
        assert_eq!(nx.negative_ttl, Some(120));
        let nodata =
            decode_answer(&response("x.example", TYPE_SRV, 0, &[], Some((45, 120))), 7).unwrap();
        assert!(!nodata.nxdomain && nodata.records.is_empty());
        assert_eq!(nodata.negative_ttl, Some(45));
        // A TTL with the top bit set counts as zero (RFC 2181 §8).
        let a = a_answer("pbx.example", &[0x8000_0010]);
        assert_eq!(a.records[0].1, 0);
        // A cut authority section loses only the negative TTL.
        let r = response("x.example", TYPE_SRV, 3, &[], Some((900, 120)));
        let cut = decode_answer(&r[..r.len() - 3], 7).unwrap();
        assert!(cut.nxdomain);
        assert_eq!(cut.negative_ttl, None);
    }

    #[test]
    fn cached_answer_lives_for_its_smallest_ttl() {
        let t0 = Instant::now();
        let mut c = DnsCache::default();
        c.store(
            "PBX.example.",
            TYPE_A,
            &a_answer("pbx.example", &[300, 60]),
            t0,
        );
        let (hit, left) = c.get("pbx.example", TYPE_A, t0).unwrap();
        assert!(matches!(hit, Cached::Records(ref r) if r.len() == 2));
        assert_eq!(left, 60);
        let (_, left) = c
            .get("pbx.example", TYPE_A, t0 + Duration::from_secs(59))
            .unwrap();
        assert_eq!(left, 1);
        assert!(c
            .get("pbx.example", TYPE_A, t0 + Duration::from_secs(60))
            .is_none());
        // Another type of the same name is another entry.
        assert!(c.get("pbx.example", TYPE_AAAA, t0).is_none());
    }

    #[test]
    fn ttl_zero_is_not_cached_and_huge_ttls_are_capped() {
        let t0 = Instant::now();
        let mut c = DnsCache::default();
        c.store("zero.example", TYPE_A, &a_answer("zero.example", &[0]), t0);
        assert!(c.get("zero.example", TYPE_A, t0).is_none());
        c.store(
            "long.example",
            TYPE_A,
            &a_answer("long.example", &[0x7FFF_FFFF]),
            t0,
        );
        assert_eq!(c.get("long.example", TYPE_A, t0).unwrap().1, MAX_TTL);
    }

    #[test]
    fn negative_answers_cached_only_with_an_soa_rfc2308() {
        let t0 = Instant::now();
        let mut c = DnsCache::default();
        let bare = decode_answer(&response("n.example", TYPE_NAPTR, 3, &[], None), 7).unwrap();
        c.store("n.example", TYPE_NAPTR, &bare, t0);
        assert!(c.get("n.example", TYPE_NAPTR, t0).is_none());
        let soa = decode_answer(
            &response("n.example", TYPE_NAPTR, 3, &[], Some((30, 600))),
            7,
        )
        .unwrap();
        c.store("n.example", TYPE_NAPTR, &soa, t0);
        assert_eq!(
            c.get("n.example", TYPE_NAPTR, t0),
            Some((Cached::Negative, 30))
        );
        assert!(c
            .get("n.example", TYPE_NAPTR, t0 + Duration::from_secs(30))
            .is_none());
    }

    #[test]
    fn cache_stays_bounded_dropping_the_soonest_to_expire() {
        let t0 = Instant::now();
        let mut c = DnsCache::default();
        for i in 0..(CACHE_CAPACITY as u32 + 50) {
            let name = format!("h{i}.example");
            c.store(&name, TYPE_A, &a_answer(&name, &[1000 + i]), t0);
        }
        assert!(c.entries.len() <= CACHE_CAPACITY);
        // The longest-lived (latest) entry is still there, the first one is gone.
        let last = format!("h{}.example", CACHE_CAPACITY as u32 + 49);
        assert!(c.get(&last, TYPE_A, t0).is_some());
        assert!(c.get("h0.example", TYPE_A, t0).is_none());
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failed_server_moves_to_the_back_of_the_cached_list_rfc3263_4_3() {
        let t0 = Instant::now();
        let key = RouteKey::new("PBX.example", None, &[Transport::Udp, Transport::Tls]);
        let list = vec![
            (sa("192.0.2.1:5060"), Transport::Udp),
            (sa("192.0.2.2:5060"), Transport::Udp),
            (sa("192.0.2.3:5061"), Transport::Tls),
        ];
        let mut r = RouteCache::default();
        r.store(key.clone(), list.clone(), 120, t0);
        // Same key whatever the case of the name.
        let same = RouteKey::new("pbx.example.", None, &[Transport::Udp, Transport::Tls]);
        assert_eq!(r.get(&same, t0), Some(list.clone()));
        r.failed(&key, list[0]);
        assert_eq!(
            r.get(&key, t0 + Duration::from_secs(10)),
            Some(vec![list[1], list[2], list[0]])
        );
        // A server not in the list changes nothing.
        r.failed(&key, (sa("198.51.100.1:5060"), Transport::Udp));
        assert_eq!(r.get(&key, t0).unwrap()[0], list[1]);
        // Expired: located again (from the start of the RFC 2782 order).
        assert_eq!(r.get(&key, t0 + Duration::from_secs(120)), None);
        // Another port or transport set is another list.
        assert_eq!(
            r.get(
                &RouteKey::new("pbx.example", Some(5060), &[Transport::Udp, Transport::Tls]),
                t0
            ),
            None
        );
        assert_eq!(
            r.get(&RouteKey::new("pbx.example", None, &[Transport::Udp]), t0),
            None
        );
    }

    #[test]
    fn route_lists_without_ttl_or_addresses_are_not_kept() {
        let t0 = Instant::now();
        let key = RouteKey::new("pbx.example", None, &[Transport::Udp]);
        let mut r = RouteCache::default();
        r.store(
            key.clone(),
            vec![(sa("192.0.2.1:5060"), Transport::Udp)],
            0,
            t0,
        );
        assert_eq!(r.get(&key, t0), None);
        r.store(key.clone(), Vec::new(), 60, t0);
        assert_eq!(r.get(&key, t0), None);
    }

    #[test]
    fn pins_map_a_domain_and_port_to_the_located_address() {
        let p = Pins::default();
        p.pin("Sip.Example.org", 5061, sa("192.0.2.7:5061"));
        assert_eq!(p.get("sip.example.org", 5061), Some(sa("192.0.2.7:5061")));
        assert_eq!(p.get("sip.example.org", 5062), None);
        p.pin("sip.example.org", 5061, sa("192.0.2.8:5061"));
        assert_eq!(p.get("sip.example.org", 5061), Some(sa("192.0.2.8:5061")));
    }

    #[tokio::test]
    async fn pinned_resolver_keeps_the_domain_elsewhere_falls_back() {
        use rsipstack::transport::transport_layer::DomainResolver;
        let pins = Pins::default();
        pins.pin("pbx.example", 5061, sa("127.0.0.9:6001"));
        let r = PinnedResolver {
            pins,
            fallback: Default::default(),
        };
        let tls = |host: &str, port: Option<u16>| rsipstack::transport::SipAddr {
            r#type: Some(rsipstack::sip::Transport::Tls),
            addr: rsipstack::sip::HostWithPort {
                host: rsipstack::sip::Host::Domain(host.to_string().into()),
                port: port.map(Into::into),
            },
        };
        // Explicit port, and the TLS default port 5061.
        for target in [tls("pbx.example", Some(5061)), tls("PBX.example", None)] {
            let got = r.resolve(&target).await.unwrap();
            assert_eq!(got.get_socketaddr().unwrap(), sa("127.0.0.9:6001"));
            assert_eq!(got.r#type, Some(rsipstack::sip::Transport::Tls));
        }
        // Not pinned: rsipstack's own resolution (localhost is in /etc/hosts).
        let got = r.resolve(&tls("localhost", Some(5061))).await.unwrap();
        assert!(got.get_socketaddr().unwrap().ip().is_loopback(), "{got}");
    }
}
