//! Who is calling and over what: the client IP (the socket peer, or behind a trusted proxy the rightmost
//! `X-Forwarded-For` hop that is not itself a trusted proxy) and whether the original request was https.
//! Forwarding headers from any other peer are ignored, so a client cannot spoof its address. In
//! production, plain-http requests are redirected to the configured public URL (never to the `Host`
//! header), and requests for a host other than ours are refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::problem::ApiError;

/// The resolved client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The key the client's address is counted under by per-address limits: the IPv4 address, or the
/// IPv6 network of the configured prefix (see `security::ratelimit::address_bucket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBucket(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("client IP layer is not installed")))
    }
}

/// Whether the original request reached us over https.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalScheme {
    pub https: bool,
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    nets: Vec<IpNet>,
}

/// A forwarding header from a trusted proxy that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHeader(pub &'static str);

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One `X-Forwarded-For` entry: an IP, optionally with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

fn header_values<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Vec<&'a str>, MalformedHeader> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().map_err(|_| MalformedHeader(name)))
        .collect()
}

impl ProxyTrust {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client IP and scheme for a request from `peer` with these headers.
    pub fn resolve(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<(IpAddr, bool), MalformedHeader> {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return Ok((peer, false));
        }
        let mut hops = vec![];
        for value in header_values(headers, "x-forwarded-for")? {
            for entry in value.split(',') {
                hops.push(parse_hop(entry).ok_or(MalformedHeader("x-forwarded-for"))?);
            }
        }
        if hops.len() > 64 {
            return Err(MalformedHeader("x-forwarded-for"));
        }
        let client = hops
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer);
        let proto = header_values(headers, "x-forwarded-proto")?
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .next_back()
            .map(str::to_ascii_lowercase);
        let https = match proto.as_deref() {
            None => false,
            Some("https") => true,
            Some("http") => false,
            Some(_) => return Err(MalformedHeader("x-forwarded-proto")),
        };
        Ok((client, https))
    }
}

/// What the edge enforces, fixed at start-up.
#[derive(Debug, Clone)]
pub struct EdgePolicy {
    pub trust: ProxyTrust,
    pub production: bool,
    pub public_origin: String,
    /// Host names (without port) requests may be addressed to.
    pub allowed_hosts: Vec<String>,
    /// IPv6 clients are counted by networks of this many bits (`TRADESIGNAL_IPV6_PREFIX`).
    pub ipv6_prefix: u8,
}

/// Load balancers and orchestrators probe these over plain http by address; they reveal nothing.
/// `/metrics` is not among them: its bearer token must never cross the network in clear (scrape over
/// https, or use the separate metrics listener on a private network).
fn is_probe_path(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

fn host_name(authority: &str) -> String {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.to_ascii_lowercase()
}

fn requested_host(request: &Request) -> Result<Option<String>, ApiError> {
    let mut values = request.headers().get_all(header::HOST).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "invalid-host",
            "The request carries more than one Host header.",
        ));
    }
    match first {
        Some(value) => value
            .to_str()
            .map(|h| Some(host_name(h)))
            .map_err(|_| ApiError::bad_request("invalid-host", "The Host header is malformed.")),
        None => Ok(request.uri().authority().map(|a| host_name(a.as_str()))),
    }
}

pub async fn resolve(
    State(policy): State<Arc<EdgePolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let (client, https) = match policy.trust.resolve(peer, request.headers()) {
        Ok(resolved) => resolved,
        Err(MalformedHeader(name)) => {
            return ApiError::bad_request(
                "invalid-header",
                format!("The {name} header is malformed."),
            )
            .into_response();
        }
    };
    tracing::Span::current().record("client_ip", tracing::field::display(client));
    request.extensions_mut().insert(ClientIp(client));
    request
        .extensions_mut()
        .insert(ClientBucket(security::ratelimit::address_bucket(
            client,
            policy.ipv6_prefix,
        )));
    request.extensions_mut().insert(OriginalScheme { https });

    let probe = is_probe_path(request.uri().path());
    if !probe {
        match requested_host(&request) {
            Err(e) => return e.into_response(),
            Ok(Some(host)) if !policy.allowed_hosts.contains(&host) => {
                return ApiError::bad_request(
                    "invalid-host",
                    "This server does not serve the requested host.",
                )
                .into_response();
            }
            Ok(_) => {}
        }
    }

    if policy.production && !https && !probe {
        let target = format!(
            "{}{}",
            policy.public_origin,
            request.uri().path_and_query().map_or("/", |pq| pq.as_str())
        );
        // 301 may turn a POST into a GET; 308 keeps the method and body.
        let status = if matches!(*request.method(), Method::GET | Method::HEAD) {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        let mut response = status.into_response();
        if let Ok(location) = HeaderValue::from_str(&target) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trust(nets: &[&str]) -> ProxyTrust {
        ProxyTrust::new(nets.iter().map(|n| n.parse().expect("cidr")).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let t = trust(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            t.resolve(ip("203.0.113.9"), &h),
            Ok((ip("203.0.113.9"), false))
        );
        // Garbage from an untrusted peer is ignored, not an error.
        let h = headers(&[("x-forwarded-for", "not an ip")]);
        assert_eq!(
            t.resolve(ip("203.0.113.9"), &h),
            Ok((ip("203.0.113.9"), false))
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trust(&["10.0.0.0/8", "192.168.1.1/32"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            t.resolve(ip("192.168.1.1"), &h),
            Ok((ip("198.51.100.7"), true))
        );
    }

    #[test]
    fn all_trusted_hops_fall_back_to_the_leftmost() {
        let t = trust(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(t.resolve(ip("10.0.0.1"), &h), Ok((ip("10.0.0.5"), false)));
        assert_eq!(
            t.resolve(ip("10.0.0.1"), &HeaderMap::new()),
            Ok((ip("10.0.0.1"), false))
        );
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let t = trust(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443, 198.51.100.7:5555")]);
        assert_eq!(
            t.resolve(ip("::ffff:127.0.0.1"), &h),
            Ok((ip("198.51.100.7"), false))
        );
    }

    #[test]
    fn malformed_headers_from_a_trusted_proxy_are_refused() {
        let t = trust(&["127.0.0.1/32"]);
        let bad_xff = headers(&[("x-forwarded-for", "1.2.3.4, evil")]);
        assert_eq!(
            t.resolve(ip("127.0.0.1"), &bad_xff),
            Err(MalformedHeader("x-forwarded-for"))
        );
        let bad_proto = headers(&[("x-forwarded-proto", "gopher")]);
        assert_eq!(
            t.resolve(ip("127.0.0.1"), &bad_proto),
            Err(MalformedHeader("x-forwarded-proto"))
        );
        let mut binary = HeaderMap::new();
        binary.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"1.2.3.4\xff").expect("opaque bytes"),
        );
        assert_eq!(
            t.resolve(ip("127.0.0.1"), &binary),
            Err(MalformedHeader("x-forwarded-for"))
        );
    }

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("Example.COM:8443"), "example.com");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
    }

    proptest! {
        #[test]
        fn resolution_never_panics_and_untrusted_peers_always_win(xff in "\\PC{0,200}", proto in "\\PC{0,20}", a in any::<[u8; 4]>()) {
            let t = trust(&["10.0.0.0/8"]);
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            if let Ok(v) = HeaderValue::from_str(&proto) { h.insert("x-forwarded-proto", v); }
            let peer = IpAddr::from(a);
            let result = t.resolve(peer, &h);
            if !t.trusts(peer) {
                prop_assert_eq!(result, Ok((peer, false)));
            }
        }
    }
}
