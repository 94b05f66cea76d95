//! `http`: one request (`GET /`, Host the address or `--http-host`), plain or inside TLS, and
//! the response as ZGrab2's `http` module writes it (status line, headers by ZGrab2's names,
//! body and its SHA-256, the request), and its `<title>` as nmap's `http-title` prints it.
//! The body is what arrived within the grab's byte limit; no redirect is followed.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::{hex, x509::sha256};

pub(crate) const USER_AGENT: &str = "Mozilla/5.0 xdpscan";

/// The headers ZGrab2 writes under their own names (lib/http/header.go); the rest go in
/// `unknown`.
const KNOWN: &[&str] = &[
    "accept",
    "accept_charset",
    "accept_encoding",
    "accept_language",
    "accept_patch",
    "accept_ranges",
    "access_control_allow_origin",
    "age",
    "allow",
    "alt_svc",
    "alternate_protocol",
    "authorization",
    "cache_control",
    "connection",
    "content_disposition",
    "content_encoding",
    "content_language",
    "content_length",
    "content_location",
    "content_md5",
    "content_range",
    "content_security_policy",
    "content_type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if_match",
    "if_modified_since",
    "if_none_match",
    "if_unmodified_since",
    "last_modified",
    "link",
    "location",
    "max_forwards",
    "p3p",
    "pragma",
    "proxy_agent",
    "proxy_authenticate",
    "proxy_authorization",
    "public_key_pins",
    "range",
    "referer",
    "refresh",
    "retry_after",
    "server",
    "set_cookie",
    "status",
    "strict_transport_security",
    "trailer",
    "transfer_encoding",
    "upgrade",
    "user_agent",
    "vary",
    "via",
    "warning",
    "www_authenticate",
    "x_content_duration",
    "x_content_security_policy",
    "x_content_type_options",
    "x_forwarded_for",
    "x_frame_options",
    "x_powered_by",
    "x_real_ip",
    "x_ua_compatible",
    "x_webkit_csp",
    "x_xss_protection",
];

/// The Host header's value: the name given, else the address (IPv6 in brackets).
pub(crate) fn host_value(host: Option<&str>, ip: IpAddr, port: u16, tls: bool) -> String {
    let h = match host {
        Some(h) => h.to_string(),
        None => match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        },
    };
    if port == if tls { 443 } else { 80 } {
        h
    } else {
        format!("{h}:{port}")
    }
}

/// `GET path` with the headers ZGrab2 sends, closing the connection after the response.
pub(crate) fn request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Where a redirect leads, as a path on this port: `None` when the response is no redirect, or
/// its Location leaves the port (another scheme, address, name or port; a name other than the
/// address or `--http-host` is never resolved). `path` is the request's.
pub(crate) fn redirect(
    r: &Response,
    path: &str,
    tls: bool,
    http_host: Option<&str>,
    ip: IpAddr,
    port: u16,
) -> Option<String> {
    if ![301, 302, 303, 307, 308].contains(&r.code) {
        return None;
    }
    let loc = r.headers.iter().find(|h| h.0 == "location")?.1.trim();
    let loc = loc.split('#').next().unwrap_or_default();
    let target = if let Some(rest) = loc.strip_prefix("//") {
        same_origin(rest, tls, http_host, ip, port)?
    } else if let Some((scheme, rest)) = loc.split_once("://") {
        let wanted = if tls { "https" } else { "http" };
        if !scheme.eq_ignore_ascii_case(wanted) {
            return None;
        }
        same_origin(rest, tls, http_host, ip, port)?
    } else if loc.starts_with('/') {
        loc.to_string()
    } else if loc.is_empty() || loc.contains(':') {
        return None;
    } else {
        // Relative to the request's directory.
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{loc}")
    };
    let ok = target.starts_with('/') && target.bytes().all(|b| (0x21..0x7f).contains(&b));
    ok.then_some(target)
}

/// The path of `authority/path` when the authority is this port: the address (IPv6 in
/// brackets) or the `--http-host` name, with this port or the scheme's.
fn same_origin(
    rest: &str,
    tls: bool,
    http_host: Option<&str>,
    ip: IpAddr,
    port: u16,
) -> Option<String> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (name, their_port) = match authority.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
            (n, p.parse::<u16>().ok()?)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let address = match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let ours = name.eq_ignore_ascii_case(&address)
        || name.parse::<IpAddr>().is_ok_and(|a| a == ip)
        || http_host.is_some_and(|h| name.eq_ignore_ascii_case(h));
    if !ours || their_port != port {
        return None;
    }
    Some(match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    })
}

/// A response's parts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub(crate) version: (u8, u8),
    pub(crate) code: u16,
    pub(crate) reason: String,
    /// Names lower case, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Parses what the server sent; `None` when it is not an HTTP/1.x response.
pub(crate) fn parse(data: &[u8]) -> Option<Response> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match end {
        Some(e) => (&data[..e], &data[e + 4..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines.next()?;
    let rest = status.strip_prefix("HTTP/")?;
    let (ver, rest) = rest.split_once(' ')?;
    let (major, minor) = ver.split_once('.').unwrap_or((ver, "0"));
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = body.to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Response {
        version: (major.parse().ok()?, minor.parse().ok()?),
        code: code.trim().parse().ok()?,
        reason: reason.to_string(),
        headers,
        body,
    })
}

/// A chunked body's data, as far as it arrived.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let data = &b[nl + 2..];
        out.extend_from_slice(&data[..size.min(data.len())]);
        b = data.get(size + 2..).unwrap_or_default();
    }
    out
}

/// The `<title>`'s text, whitespace folded, as `http-title` prints it.
pub(crate) fn title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let t: Vec<&str> = text[start..end].split_whitespace().collect();
    Some(t.join(" "))
}

fn headers_json(headers: &[(String, String)]) -> Value {
    let mut m = Map::new();
    let mut unknown: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in headers {
        let key = k.replace('-', "_");
        if KNOWN.contains(&key.as_str()) {
            if let Value::Array(a) = m.entry(key).or_insert_with(|| json!([])) {
                a.push(json!(v));
            }
        } else {
            match unknown.iter_mut().find(|u| u.0 == key) {
                Some(u) => u.1.push(v.clone()),
                None => unknown.push((key, vec![v.clone()])),
            }
        }
    }
    if !unknown.is_empty() {
        let list: Vec<Value> = unknown
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        m.insert("unknown".into(), json!(list));
    }
    Value::Object(m)
}

/// ZGrab2's `http` result for what the server sent, and its status. `tls_log`: the session's
/// `handshake_log` when the request went inside TLS.
pub fn zgrab(
    data: &[u8],
    host: &str,
    path: &str,
    tls_log: Option<Value>,
) -> (&'static str, Value, Option<String>) {
    let scheme = if tls_log.is_some() { "https" } else { "http" };
    let mut request = json!({
        "url": {"scheme": scheme, "host": host, "path": path},
        "method": "GET",
        "headers": {"accept": ["*/*"], "user_agent": [USER_AGENT]},
        "host": host,
    });
    if let Some(log) = tls_log {
        request["tls_log"] = log;
    }
    let Some(r) = parse(data) else {
        let error = if data.is_empty() {
            "no response"
        } else {
            "not an HTTP response"
        };
        let status = if data.is_empty() {
            "io-timeout"
        } else {
            "protocol-error"
        };
        return (
            status,
            json!({"response": {"request": request}}),
            Some(error.into()),
        );
    };
    let mut response = json!({
        "status_line": format!("{} {}", r.code, r.reason).trim_end().to_string(),
        "status_code": r.code,
        "protocol": {
            "name": format!("HTTP/{}.{}", r.version.0, r.version.1),
            "major": r.version.0,
            "minor": r.version.1,
        },
        "headers": headers_json(&r.headers),
        "body": String::from_utf8_lossy(&r.body),
        "body_sha256": hex(&sha256(&r.body)),
        "content_length": r.headers.iter().find(|h| h.0 == "content-length")
            .and_then(|h| h.1.parse::<i64>().ok()).unwrap_or(-1),
        "request": request,
    });
    if let Some(t) = title(&r.body) {
        // Not in ZGrab2's schema: the page's title, as nmap's http-title reads it.
        response["title"] = json!(t);
    }
    ("success", json!({ "response": response }), None)
}

/// Whether bytes a server sent are an HTTP response.
pub(crate) fn looks_like_http(data: &[u8]) -> bool {
    data.starts_with(b"HTTP/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_reads_as_zgrab2_writes_it() {
        let data = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 44\r\nX-Lab: a\r\nX-Lab: b\r\n\r\n<html><TITLE>\n Lab   page </TITLE></html>\n";
        let (status, v, err) = zgrab(data, "198.18.0.2", "/", None);
        assert_eq!((status, err), ("success", None));
        let r = &v["response"];
        assert_eq!(r["status_line"], "200 OK");
        assert_eq!(r["status_code"], 200);
        assert_eq!(r["protocol"]["name"], "HTTP/1.1");
        assert_eq!(r["headers"]["server"][0], "nginx/1.22.1");
        assert_eq!(r["headers"]["content_type"][0], "text/html");
        assert_eq!(r["headers"]["unknown"][0]["key"], "x_lab");
        assert_eq!(r["headers"]["unknown"][0]["value"][1], "b");
        assert_eq!(r["content_length"], 44);
        assert_eq!(r["title"], "Lab page");
        assert_eq!(r["request"]["url"]["scheme"], "http");
        assert_eq!(
            r["body_sha256"],
            hex(&sha256(b"<html><TITLE>\n Lab   page </TITLE></html>\n"))
        );
        assert_eq!(zgrab(b"SSH-2.0-x\r\n", "h", "/", None).0, "protocol-error");
    }

    #[test]
    fn chunks_are_joined_and_the_host_names_the_port() {
        let r = parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab<t\r\n3\r\nxyz\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.code, r.body.as_slice()), (404, &b"ab<txyz"[..]));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(host_value(None, ip, 8080, false), "[2001:db8::1]:8080");
        assert_eq!(host_value(Some("lab"), ip, 443, true), "lab");
    }

    #[test]
    fn redirects_are_followed_only_on_the_same_port() {
        let ip: IpAddr = "198.19.0.5".parse().unwrap();
        let resp = |code: u16, loc: &str| Response {
            version: (1, 1),
            code,
            reason: String::new(),
            headers: vec![("location".into(), loc.into())],
            body: Vec::new(),
        };
        let go = |code, loc, tls, port| {
            redirect(&resp(code, loc), "/a/b", tls, Some("lab.example"), ip, port)
        };
        assert_eq!(go(302, "/landing", false, 8082), Some("/landing".into()));
        assert_eq!(go(301, "c?x=1#frag", false, 80), Some("/a/c?x=1".into()));
        assert_eq!(go(307, "http://198.19.0.5/x", false, 80), Some("/x".into()));
        assert_eq!(
            go(308, "http://198.19.0.5:8082", false, 8082),
            Some("/".into())
        );
        assert_eq!(
            go(302, "https://lab.example/y", true, 443),
            Some("/y".into())
        );
        assert_eq!(
            go(302, "//LAB.example:8443?q", true, 8443),
            Some("/?q".into())
        );
        // Leaving the port: another scheme, address, name or port; not a redirect.
        assert_eq!(go(301, "https://198.19.0.5/", false, 80), None);
        assert_eq!(go(301, "http://198.19.0.6/", false, 80), None);
        assert_eq!(go(301, "http://example.com/", false, 80), None);
        assert_eq!(go(301, "http://198.19.0.5:8080/", false, 80), None);
        assert_eq!(go(200, "/landing", false, 80), None);
        assert_eq!(go(302, "javascript:alert(1)", false, 80), None);
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        let r = resp(302, "http://[2001:db8::5]:8082/z");
        assert_eq!(redirect(&r, "/", false, None, v6, 8082), Some("/z".into()));
    }
}
