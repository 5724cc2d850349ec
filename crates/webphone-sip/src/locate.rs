//! RFC 3263 server location, sans-IO: which DNS names to ask, how to pick transports from
//! NAPTR records (RFC 3263 §4.1, RFC 3403), how to order SRV records (RFC 2782), and the
//! resulting failover list; plus a small DNS stub client (RFC 1035
//! wire format over UDP, TCP on truncation) whose name server is configurable (the
//! system's `/etc/resolv.conf` by default, a test server in tests).
//!
//! rsipstack 0.7.14's `srv_lookup` resolver can only be pointed at name server IPs on port
//! 53 and its result order ignores SRV weights, so the location logic lives here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

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
    #[error("name error (NXDOMAIN)")]
    NxDomain,
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

/// Decode a response to query `id`: the answer records (A, AAAA, SRV; others skipped) and
/// whether it was truncated.
pub(crate) fn decode_response(m: &[u8], id: u16) -> Result<(Vec<Record>, bool), DnsError> {
    if m.len() < 12 || u16_at(m, 0)? != id || m[2] & 0x80 == 0 {
        return Err(DnsError::Malformed);
    }
    let truncated = m[2] & 0x02 != 0;
    match m[3] & 0x0F {
        0 => {}
        3 => return Err(DnsError::NxDomain),
        rc => return Err(DnsError::Server(rc)),
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(m, pos)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(m, pos)?;
        let rtype = u16_at(m, p)?;
        let rdlen = u16_at(m, p + 8)? as usize;
        let rd = p + 10;
        let data = m.get(rd..rd + rdlen).ok_or(DnsError::Malformed)?;
        match rtype {
            TYPE_A if rdlen == 4 => {
                out.push(Record::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])))
            }
            TYPE_AAAA if rdlen == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                out.push(Record::Aaaa(Ipv6Addr::from(b)));
            }
            TYPE_NAPTR => out.push(Record::Naptr(parse_naptr(m, rd, rdlen)?)),
            TYPE_SRV if rdlen >= 7 => {
                let (target, _) = read_name(m, rd + 6)?;
                out.push(Record::Srv(Srv {
                    priority: u16_at(m, rd)?,
                    weight: u16_at(m, rd + 2)?,
                    port: u16_at(m, rd + 4)?,
                    target,
                }));
            }
            _ => {}
        }
        pos = rd + rdlen;
    }
    Ok((out, truncated))
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
pub(crate) async fn query(
    servers: &[SocketAddr],
    name: &str,
    qtype: u16,
) -> Result<Vec<Record>, DnsError> {
    let mut last = DnsError::NoServer;
    for server in servers {
        match query_one(*server, name, qtype).await {
            Ok(r) => return Ok(r),
            Err(DnsError::NxDomain) => return Err(DnsError::NxDomain),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn query_one(server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<Record>, DnsError> {
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
        match decode_response(&buf[..n], id) {
            Ok((_, true)) => return query_tcp(server, &q, id).await,
            Ok((r, false)) => return Ok(r),
            Err(DnsError::Malformed) => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn query_tcp(server: SocketAddr, q: &[u8], id: u16) -> Result<Vec<Record>, DnsError> {
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
        decode_response(&buf, id).map(|(r, _)| r)
    };
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| DnsError::Io(format!("no TCP answer from {server}")))?
}

/// A/AAAA of `host` (IPv4 first, then IPv6).
async fn addresses(servers: &[SocketAddr], host: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for t in [TYPE_A, TYPE_AAAA] {
        if let Ok(recs) = query(servers, host, t).await {
            for r in recs {
                match r {
                    Record::A(a) => out.push(IpAddr::V4(a)),
                    Record::Aaaa(a) => out.push(IpAddr::V6(a)),
                    Record::Srv(_) | Record::Naptr(_) => {}
                }
            }
        }
    }
    out
}

/// Locate `host[:port]` for `transport` (RFC 3263 §4.2): the ordered list of addresses to
/// try, failing over to the next on a timeout or a 503 (§4.3). With no name servers (or
/// no answer) the system resolver is asked for A/AAAA.
pub(crate) async fn locate(
    servers: &[SocketAddr],
    host: &str,
    port: Option<u16>,
    transport: Transport,
) -> Result<Vec<SocketAddr>, String> {
    let mut out: Vec<SocketAddr> = Vec::new();
    match plan(host, port, transport) {
        Plan::Literal(a) => out.push(a),
        Plan::Address { host, port } => {
            out.extend(
                addresses(servers, &host)
                    .await
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port)),
            );
            if out.is_empty() {
                out.extend(system_lookup(&host, port).await);
            }
        }
        Plan::Srv {
            host,
            srv,
            default_port,
        } => {
            out.extend(srv_addresses(servers, &srv).await);
            if out.is_empty() {
                out.extend(
                    addresses(servers, &host)
                        .await
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, default_port)),
                );
                if out.is_empty() {
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

/// The addresses behind the SRV name `srv`, in RFC 2782 order (empty when there are none).
async fn srv_addresses(servers: &[SocketAddr], srv: &str) -> Vec<SocketAddr> {
    let records: Vec<Srv> = match query(servers, srv, TYPE_SRV).await {
        Ok(r) => r
            .into_iter()
            .filter_map(|r| match r {
                Record::Srv(s) => Some(s),
                _ => None,
            })
            .collect(),
        Err(e) => {
            tracing::debug!(%srv, error = %e, "no SRV records");
            Vec::new()
        }
    };
    let ordered = order_srv(records, |n| {
        use rand::Rng;
        rand::rng().random_range(0..=n)
    });
    let mut out = Vec::new();
    for s in ordered {
        let ips = match s.target.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => addresses(servers, &s.target).await,
        };
        out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, s.port)));
    }
    out
}

/// Locate `host[:port]` when no transport was given (RFC 3263 §4.1): the ordered list of
/// addresses to try, each with the transport to use. `supported` lists the transports the
/// caller can use, most wanted first; `secure` (a `sips:` URI) keeps only TLS ones.
///
/// A numeric host or an explicit port: the first supported transport, A/AAAA only. Else
/// NAPTR for the host ([`naptr_choices`]), each chosen SRV name in turn; when NAPTR gives
/// nothing usable, SRV for each supported transport ([`srv_fallback`]); when that gives
/// nothing either, A/AAAA at the default port of the first supported transport.
pub(crate) async fn locate_auto(
    servers: &[SocketAddr],
    host: &str,
    port: Option<u16>,
    secure: bool,
    supported: &[Transport],
) -> Result<Vec<(SocketAddr, Transport)>, String> {
    let transports = usable_transports(secure, supported);
    let Some(&first) = transports.first() else {
        return Err(format!("no usable transport to reach {host}"));
    };
    if !wants_naptr(host, port) {
        return locate(servers, host, port, first)
            .await
            .map(|v| v.into_iter().map(|a| (a, first)).collect());
    }
    let naptr: Vec<Naptr> = match query(servers, host, TYPE_NAPTR).await {
        Ok(r) => r
            .into_iter()
            .filter_map(|r| match r {
                Record::Naptr(n) => Some(n),
                _ => None,
            })
            .collect(),
        Err(e) => {
            tracing::debug!(%host, error = %e, "no NAPTR records");
            Vec::new()
        }
    };
    let mut chosen = naptr_choices(naptr, &transports);
    if chosen.is_empty() {
        chosen = srv_fallback(host, &transports);
    } else {
        tracing::debug!(%host, ?chosen, "NAPTR choices");
    }
    let mut out: Vec<(SocketAddr, Transport)> = Vec::new();
    for (t, srv) in chosen {
        out.extend(
            srv_addresses(servers, &srv)
                .await
                .into_iter()
                .map(|a| (a, t)),
        );
    }
    if out.is_empty() {
        // RFC 3263 §4.2: no SRV either, A/AAAA at the default port.
        return locate(servers, host, Some(first.default_port()), first)
            .await
            .map(|v| v.into_iter().map(|a| (a, first)).collect());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|a| seen.insert(*a));
    Ok(out)
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
        assert_eq!(decode_response(&r, 0x9999), Err(DnsError::Malformed));
        let mut nx = q;
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(decode_response(&nx, 0x1234), Err(DnsError::NxDomain));
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
}
