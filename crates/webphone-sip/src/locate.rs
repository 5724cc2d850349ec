//! RFC 3263 server location, sans-IO: which DNS names to ask, how to order SRV records
//! (RFC 2782), and the resulting failover list; plus a small DNS stub client (RFC 1035
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
// DNS wire format (RFC 1035 §4, RFC 2782, RFC 3596)

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;

/// A decoded answer record we care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
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
                    Record::Srv(_) => {}
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
            let records: Vec<Srv> = match query(servers, &srv, TYPE_SRV).await {
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
            if records.is_empty() {
                out.extend(
                    addresses(servers, &host)
                        .await
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, default_port)),
                );
                if out.is_empty() {
                    out.extend(system_lookup(&host, default_port).await);
                }
            } else {
                let ordered = order_srv(records, |n| {
                    use rand::Rng;
                    rand::rng().random_range(0..=n)
                });
                for s in ordered {
                    let ips = match s.target.parse::<IpAddr>() {
                        Ok(ip) => vec![ip],
                        Err(_) => addresses(servers, &s.target).await,
                    };
                    out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, s.port)));
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
}
