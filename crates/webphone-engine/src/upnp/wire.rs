//! What goes over the wire to a UPnP Internet Gateway Device, as pure functions: the SSDP
//! search and its answer (UPnP Device Architecture 1.1 §1.3.2–1.3.3), the device
//! description that names the WAN connection service and its control URL (§2.3, §2.7), and
//! the SOAP actions of `WANIPConnection` / `WANPPPConnection` (§3.2; the IGD service
//! templates): `GetExternalIPAddress`, `AddPortMapping`, `DeletePortMapping`.
//!
//! Devices differ in case, white space, namespace prefixes and XML declarations, so the
//! parsers look for element names, not for a fixed layout. Nothing here does I/O.

use std::net::{IpAddr, SocketAddr};

/// SSDP multicast group and port (UDA 1.1 §1.1.2).
pub const SSDP_ADDR: SocketAddr = SocketAddr::new(
    IpAddr::V4(std::net::Ipv4Addr::new(239, 255, 255, 250)),
    1900,
);

/// The search request: every IGD (v1 devices answer `…:1`, v2 devices answer both).
pub fn search_request() -> String {
    "M-SEARCH * HTTP/1.1\r\n\
     HOST: 239.255.255.250:1900\r\n\
     MAN: \"ssdp:discover\"\r\n\
     MX: 1\r\n\
     ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
     \r\n"
        .to_owned()
}

/// The description URL (`LOCATION`) of a search answer, when it is a `200` that names an
/// `http://` URL. Header names are case-insensitive (UDA 1.1 §1.3.3).
pub fn search_location(answer: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(answer).ok()?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let status = lines.next()?;
    let mut parts = status.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") || parts.next()? != "200" {
        return None;
    }
    lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| v.to_ascii_lowercase().starts_with("http://"))
}

/// The service of a device description that maps ports: its type (for SOAP action names)
/// and control URL (absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WanService {
    pub service_type: String,
    pub control_url: String,
}

/// The service types that map ports, best first: an IP connection before a PPP one, the
/// newer version first.
const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// Finds the port-mapping service in the description fetched from `location`; relative
/// control URLs are resolved against `URLBase` when given, else against `location`
/// (UDA 1.1 §2.3, "URLBase").
pub fn wan_service(description: &str, location: &str) -> Option<WanService> {
    let base = element_inner(description, "URLBase")
        .filter(|b| !b.trim().is_empty())
        .unwrap_or(location);
    let services = elements(description, "service");
    WAN_SERVICES.iter().find_map(|wanted| {
        services.iter().find_map(|s| {
            let ty = element_inner(s, "serviceType")?.trim();
            if !ty.eq_ignore_ascii_case(wanted) {
                return None;
            }
            let control = element_inner(s, "controlURL")?.trim();
            Some(WanService {
                service_type: ty.to_owned(),
                control_url: resolve_url(base.trim(), control)?,
            })
        })
    })
}

/// `rel` against `base` (absolute http URL): absolute paths take the base's origin, other
/// relative paths its directory.
fn resolve_url(base: &str, rel: &str) -> Option<String> {
    if rel.to_ascii_lowercase().starts_with("http://") {
        return Some(rel.to_owned());
    }
    let rest = base.get(7..)?;
    if !base.to_ascii_lowercase().starts_with("http://") {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    if rel.starts_with('/') {
        return Some(format!("http://{authority}{rel}"));
    }
    let dir = &path[..path.rfind('/').map_or(1, |i| i + 1)];
    Some(format!("http://{authority}{dir}{rel}"))
}

/// A SOAP action of the WAN connection service: `(SOAPAction header value, body)`.
/// `args` are the IN arguments in the order of the service template; values are escaped.
pub fn soap_request(service_type: &str, action: &str, args: &[(&str, String)]) -> (String, String) {
    let mut body = String::from(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>",
    );
    body.push_str(&format!("<u:{action} xmlns:u=\"{service_type}\">"));
    for (name, value) in args {
        body.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    body.push_str(&format!("</u:{action}></s:Body></s:Envelope>\r\n"));
    (format!("\"{service_type}#{action}\""), body)
}

/// The arguments of `AddPortMapping` for a UDP mapping of `internal` at `external_port`.
pub fn add_port_mapping_args(
    external_port: u16,
    internal: SocketAddr,
    lease_secs: u32,
    description: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("NewRemoteHost", String::new()),
        ("NewExternalPort", external_port.to_string()),
        ("NewProtocol", "UDP".into()),
        ("NewInternalPort", internal.port().to_string()),
        ("NewInternalClient", internal.ip().to_string()),
        ("NewEnabled", "1".into()),
        ("NewPortMappingDescription", description.to_owned()),
        ("NewLeaseDuration", lease_secs.to_string()),
    ]
}

/// The arguments of `DeletePortMapping` for the UDP mapping at `external_port`.
pub fn delete_port_mapping_args(external_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("NewRemoteHost", String::new()),
        ("NewExternalPort", external_port.to_string()),
        ("NewProtocol", "UDP".into()),
    ]
}

/// What a SOAP answer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SoapAnswer {
    /// The `<action>Response` element, with its OUT arguments' text.
    Ok(Vec<(String, String)>),
    /// A UPnP error (`UPnPError/errorCode`, UDA 1.1 §3.2.2), e.g. 718 ConflictInMappingEntry.
    Fault(u16, String),
    /// Neither: not a SOAP answer to this action.
    Invalid,
}

/// The `AddPortMapping` errors that a retry can get around (WANIPConnection:2 §2.4.16).
pub mod fault {
    /// The external port is taken by another mapping.
    pub const CONFLICT: u16 = 718;
    /// The device only takes leases of 0 (no expiry).
    pub const ONLY_PERMANENT_LEASES: u16 = 725;
    /// WANIPConnection:2 refuses a wildcard port or remote host "for security".
    pub const CONFLICT_WITH_OTHER_MECHANISMS: u16 = 729;
}

/// Reads the answer to `action`.
pub fn soap_answer(body: &str, action: &str) -> SoapAnswer {
    let response = format!("{action}Response");
    if let Some(inner) = element_inner(body, &response) {
        let mut out = Vec::new();
        let mut rest = inner;
        while let Some((name, text, after)) = next_element(rest) {
            out.push((name.to_owned(), xml_unescape(text.trim())));
            rest = after;
        }
        return SoapAnswer::Ok(out);
    }
    match element_inner(body, "errorCode").and_then(|c| c.trim().parse().ok()) {
        Some(code) => SoapAnswer::Fault(
            code,
            element_inner(body, "errorDescription")
                .map(|d| xml_unescape(d.trim()))
                .unwrap_or_default(),
        ),
        None => SoapAnswer::Invalid,
    }
}

/// `NewExternalIPAddress` of a `GetExternalIPAddress` answer, when it is an IP address.
pub fn external_ip(answer: &SoapAnswer) -> Option<IpAddr> {
    match answer {
        SoapAnswer::Ok(args) => args
            .iter()
            .find(|(n, _)| n == "NewExternalIPAddress")
            .and_then(|(_, v)| v.parse().ok()),
        _ => None,
    }
}

/// The local name of an element name (`u:Foo` → `Foo`).
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// One tag of a document.
struct Tag<'a> {
    /// Index of its `<`.
    start: usize,
    /// Index just after its `>`.
    after: usize,
    /// Local name (`u:Foo` → `Foo`); empty for declarations and comments.
    name: &'a str,
    kind: TagKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Open,
    Close,
    SelfClosing,
    /// `<?…?>`, `<!…>`.
    Other,
}

/// The first tag at or after `from`.
fn next_tag(xml: &str, from: usize) -> Option<Tag<'_>> {
    let start = from + xml.get(from..)?.find('<')?;
    let end = start + xml[start..].find('>')?;
    let inner = &xml[start + 1..end];
    let kind = if inner.starts_with(['?', '!']) {
        TagKind::Other
    } else if inner.starts_with('/') {
        TagKind::Close
    } else if inner.ends_with('/') {
        TagKind::SelfClosing
    } else {
        TagKind::Open
    };
    let name = inner
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split_whitespace()
        .next()
        .unwrap_or("");
    Some(Tag {
        start,
        after: end + 1,
        name: local_name(name),
        kind,
    })
}

/// The first start (or self-closing) tag at or after `from` whose local name is `name`
/// (case-insensitive).
fn find_start<'a>(xml: &'a str, name: &str, from: usize) -> Option<Tag<'a>> {
    let mut at = from;
    loop {
        let tag = next_tag(xml, at)?;
        at = tag.after;
        if matches!(tag.kind, TagKind::Open | TagKind::SelfClosing)
            && tag.name.eq_ignore_ascii_case(name)
        {
            return Some(tag);
        }
    }
}

/// The end tag closing an element `name` whose content starts at `from` (nested elements of
/// the same name are skipped).
fn find_end<'a>(xml: &'a str, name: &str, from: usize) -> Option<Tag<'a>> {
    let mut depth = 1usize;
    let mut at = from;
    loop {
        let tag = next_tag(xml, at)?;
        at = tag.after;
        if !tag.name.eq_ignore_ascii_case(name) {
            continue;
        }
        match tag.kind {
            TagKind::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(tag);
                }
            }
            TagKind::Open => depth += 1,
            TagKind::SelfClosing | TagKind::Other => {}
        }
    }
}

/// The raw content of the element that starts with `open`, and the index after it.
fn content<'a>(xml: &'a str, open: &Tag<'_>) -> Option<(&'a str, usize)> {
    if open.kind == TagKind::SelfClosing {
        return Some(("", open.after));
    }
    let close = find_end(xml, open.name, open.after)?;
    Some((xml.get(open.after..close.start)?, close.after))
}

/// The raw content of the first element `name`.
fn element_inner<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    content(xml, &find_start(xml, name, 0)?).map(|(c, _)| c)
}

/// The raw content of every element `name`, outermost first.
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = find_start(xml, name, from) {
        let Some((c, after)) = content(xml, &open) else {
            break;
        };
        out.push(c);
        from = after;
    }
    out
}

/// The next child element of `xml`: (local name, raw content, rest after it).
fn next_element(xml: &str) -> Option<(&str, &str, &str)> {
    let mut at = 0;
    loop {
        let tag = next_tag(xml, at)?;
        at = tag.after;
        if matches!(tag.kind, TagKind::Open | TagKind::SelfClosing) {
            let (c, after) = content(xml, &tag)?;
            return Some((tag.name, c, xml.get(after..)?));
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a miniupnpd 2.3 description (IGDv2), cut down.
    const DESCRIPTION: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>
<deviceList><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL></service></serviceList></device></deviceList>
</device></deviceList></device></root>"#;

    #[test]
    fn search_answer_gives_the_description_url() {
        let answer = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nlocation: http://192.168.77.1:32959/rootDesc.xml\r\n\r\n";
        assert_eq!(
            search_location(answer).as_deref(),
            Some("http://192.168.77.1:32959/rootDesc.xml")
        );
        // Not a 200, no LOCATION, not HTTP, binary junk: nothing.
        assert_eq!(
            search_location(b"HTTP/1.1 404 Not Found\r\nLOCATION: http://x/\r\n\r\n"),
            None
        );
        assert_eq!(search_location(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        assert_eq!(
            search_location(b"NOTIFY * HTTP/1.1\r\nLOCATION: http://x/\r\n\r\n"),
            None
        );
        assert_eq!(search_location(&[0xff, 0xfe, 0x00]), None);
        assert_eq!(
            search_location(b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n"),
            None
        );
    }

    #[test]
    fn description_names_the_ip_connection_service_with_an_absolute_control_url() {
        let s =
            wan_service(DESCRIPTION, "http://192.168.77.1:32959/rootDesc.xml").expect("service");
        assert_eq!(
            s.service_type,
            "urn:schemas-upnp-org:service:WANIPConnection:2"
        );
        assert_eq!(s.control_url, "http://192.168.77.1:32959/ctl/IPConn");
    }

    #[test]
    fn ppp_service_and_url_base_and_relative_paths() {
        let xml = "<root><URLBase>http://10.0.0.1:5000/igd/</URLBase><service>\
                   <serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>\
                   <controlURL>ctl/ppp</controlURL></service></root>";
        let s = wan_service(xml, "http://10.0.0.1:80/desc.xml").expect("service");
        assert_eq!(s.control_url, "http://10.0.0.1:5000/igd/ctl/ppp");
        // No WAN service at all, or an unusable base: nothing.
        assert_eq!(
            wan_service(
                "<root><service><serviceType>x</serviceType></service></root>",
                "http://a/"
            ),
            None
        );
        let rel = "<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>c</controlURL></service>";
        assert_eq!(wan_service(rel, "ftp://a/b"), None);
        assert_eq!(
            wan_service(rel, "http://a:1/x/y.xml").map(|s| s.control_url),
            Some("http://a:1/x/c".into())
        );
    }

    #[test]
    fn add_port_mapping_request_escapes_its_description() {
        let internal: SocketAddr = "192.168.1.20:5060".parse().expect("addr");
        let (action, body) = soap_request(
            "urn:schemas-upnp-org:service:WANIPConnection:1",
            "AddPortMapping",
            &add_port_mapping_args(5060, internal, 3600, "webphone <SIP> & co"),
        );
        assert_eq!(
            action,
            "\"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\""
        );
        assert!(
            body.contains("<NewExternalPort>5060</NewExternalPort>"),
            "{body}"
        );
        assert!(body.contains("<NewInternalClient>192.168.1.20</NewInternalClient>"));
        assert!(body.contains("<NewLeaseDuration>3600</NewLeaseDuration>"));
        assert!(body.contains("webphone &lt;SIP&gt; &amp; co"), "{body}");
    }

    #[test]
    fn answers_faults_and_junk() {
        let ok = "<?xml version=\"1.0\"?><s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u=\"x\">\
                  <NewExternalIPAddress>172.32.77.2</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>";
        let a = soap_answer(ok, "GetExternalIPAddress");
        assert_eq!(external_ip(&a), Some("172.32.77.2".parse().expect("ip")));
        let empty = "<s:Body><u:AddPortMappingResponse xmlns:u=\"x\"/></s:Body>";
        assert_eq!(soap_answer(empty, "AddPortMapping"), SoapAnswer::Ok(vec![]));
        let fault = "<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">\
                     <errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";
        assert_eq!(
            soap_answer(fault, "AddPortMapping"),
            SoapAnswer::Fault(718, "ConflictInMappingEntry".into())
        );
        assert_eq!(
            soap_answer("<html>oops", "AddPortMapping"),
            SoapAnswer::Invalid
        );
        assert_eq!(soap_answer("<<<>>>", "AddPortMapping"), SoapAnswer::Invalid);
        let bad_ip = "<u:GetExternalIPAddressResponse><NewExternalIPAddress></NewExternalIPAddress></u:GetExternalIPAddressResponse>";
        assert_eq!(
            external_ip(&soap_answer(bad_ip, "GetExternalIPAddress")),
            None
        );
    }

    #[test]
    fn truncated_or_hostile_xml_never_panics() {
        let samples = [
            "<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1",
            "<service><controlURL>/x</controlURL><serviceType>",
            "<a><b></a>",
            "<",
            "<>",
            "</service>",
            "<service/><service>",
            "<ü:service>é</ü:service>",
        ];
        for s in samples {
            let _ = wan_service(s, "http://h/");
            let _ = soap_answer(s, "AddPortMapping");
            let _ = search_location(s.as_bytes());
        }
    }
}
