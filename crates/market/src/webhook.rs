//! Building blocks for alert webhooks: SSRF-safe URL checks, signed deliveries and the retry
//! schedule. Everything here is pure: no I/O, no DNS, no clock, no randomness, no HTTP client.
//!
//! This module owns *deciding*: whether a user-supplied URL may be a webhook target
//! ([`check_webhook_url`]), whether an address may be connected to ([`is_public_ip`],
//! [`check_resolved`]), what the signature header of a delivery is ([`sign`], [`verify`]), how a
//! webhook secret is written ([`format_secret`]) and when a failed delivery is retried
//! ([`retry_delay`]). Storing alerts, resolving names, sending requests and recording attempts live
//! with the callers (the store and server crates).
//!
//! # Why the address checks happen twice
//!
//! A hostname is only a promise: its DNS answer may change between the moment a user saves the
//! alert and the moment we deliver to it (DNS rebinding), and one answer may mix public and private
//! addresses. So the caller checks at both times:
//!
//! 1. **At creation/update** (`POST`/`PATCH /alerts`): [`check_webhook_url`] on the text, then
//!    resolve [`WebhookUrl::host`] and call [`check_resolved`] on *all* the answers; any problem is
//!    a 422 carrying [`UrlProblem::message`]. This gives the user an early, clear error.
//! 2. **At every delivery**: check the stored URL again, resolve again, [`check_resolved`] again,
//!    and then connect **only to the addresses just checked** (pin them in the HTTP client's
//!    resolver, or connect the socket yourself), never letting the client resolve the name a second
//!    time. TLS still uses the hostname for SNI and certificate verification.
//!
//! The HTTP client that delivers must also not follow redirects (a `3xx` to `http://127.0.0.1/`
//! would bypass everything here) and must not go through an environment-configured proxy.
//!
//! # Signatures
//!
//! Each delivery carries [`SIGNATURE_HEADER`]`: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>." ++ body`, keyed with the secret string shown to the user (see [`format_secret`]), in the
//! style receivers already know from Stripe. [`verify`] is the receiver's side, used by our tests
//! and documentation.
//!
//! ```
//! use market::webhook::{check_resolved, check_webhook_url, format_secret, sign, verify};
//!
//! let url = check_webhook_url("https://hooks.example.com/tradesignal").unwrap();
//! assert_eq!((url.host(), url.port()), ("hooks.example.com", 443));
//! assert!(check_webhook_url("https://169.254.169.254/latest/meta-data").is_err());
//! // The caller resolves url.host(); every answer must be public.
//! assert!(check_resolved(&["93.184.216.34".parse().unwrap()]).is_ok());
//! assert!(check_resolved(&["93.184.216.34".parse().unwrap(), "10.0.0.7".parse().unwrap()]).is_err());
//!
//! let secret = format_secret(&[7u8; 32]); // the caller draws the bytes from a CSPRNG
//! let body = br#"{"alert":"AAPL insider buy"}"#;
//! let header = sign(secret.as_bytes(), 1_700_000_000, body);
//! assert!(verify(secret.as_bytes(), &header, body, 1_700_000_060, 300));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use url::{Host, Url};

// ---------------------------------------------------------------------------------------------
// URL checks
// ---------------------------------------------------------------------------------------------

/// The longest webhook URL accepted, in bytes, both as typed and once normalised.
pub const MAX_URL_LEN: usize = 2048;

/// The longest hostname accepted (the DNS limit, without the trailing dot).
const MAX_HOST_LEN: usize = 253;

/// Name suffixes that never name a public internet host. A name equal to one of these, or ending in
/// `.` followed by one, is refused (`localhost`, `api.localhost`, `printer.local`,
/// `metadata.google.internal`, …).
const INTERNAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
];

/// Why a webhook URL (or what its host resolves to) was refused.
///
/// [`UrlProblem::message`] is meant for users (a 422 body); it never contains the URL or any
/// address, so that the error cannot echo user input nor reveal how internal names resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlProblem {
    /// Longer than [`MAX_URL_LEN`].
    TooLong,
    /// Not a URL at all.
    Unparseable,
    /// The scheme is not `https`.
    NotHttps,
    /// A user name or password is present (`https://user:pw@host/`).
    Credentials,
    /// No host, or a malformed one (empty label, too long).
    NoHost,
    /// A `#fragment` is present (it would never be sent, so it is refused rather than dropped).
    Fragment,
    /// The explicit port is 0.
    BadPort,
    /// The host is an IP literal that is not a public address.
    PrivateAddress,
    /// The hostname is obviously internal (`localhost`, `*.local`, `*.internal`, no dot, …).
    InternalHost,
    /// The host resolved to no address at all.
    NoAddresses,
    /// The host resolved to at least one address that is not public.
    ResolvesPrivate,
}

impl UrlProblem {
    /// A short user-facing explanation, suitable for a 422 response. Never echoes the URL.
    pub fn message(self) -> &'static str {
        match self {
            Self::TooLong => "Webhook URLs must be at most 2048 characters long.",
            Self::Unparseable => "The webhook URL is not a valid URL.",
            Self::NotHttps => "Webhook URLs must use https.",
            Self::Credentials => "Webhook URLs must not contain a user name or password.",
            Self::NoHost => "The webhook URL must contain a valid host name.",
            Self::Fragment => "Webhook URLs must not contain a fragment (#…).",
            Self::BadPort => "The webhook URL has an invalid port.",
            Self::PrivateAddress => {
                "Webhook URLs must point to a public internet address, not a private, loopback, \
                 link-local or reserved one."
            }
            Self::InternalHost => "Webhook URLs must use a public internet host name.",
            Self::NoAddresses => "The webhook host name could not be resolved.",
            Self::ResolvesPrivate => {
                "The webhook host name resolves to a private, loopback, link-local or reserved \
                 address."
            }
        }
    }
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for UrlProblem {}

/// A webhook URL that passed [`check_webhook_url`]: `https`, no credentials, no fragment, a host
/// that is either a public IP literal or a not-obviously-internal DNS name.
///
/// Store [`WebhookUrl::as_str`] (the normalised form), not the text the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: Url,
    /// The name to resolve (ASCII, punycode) or the IP literal without brackets.
    host: String,
    /// `Some` when the host is an IP literal (already checked with [`is_public_ip`]).
    ip: Option<IpAddr>,
    /// The effective port (443 unless given).
    port: u16,
}

impl WebhookUrl {
    /// The parsed, normalised URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The normalised URL as text; this is what should be stored and requested.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host to resolve: an ASCII (punycode) DNS name, or an IP literal written without
    /// brackets (`2001:db8::1`, not `[2001:db8::1]`), so that `(host(), port())` can be handed to
    /// a resolver. Resolve it, then pass every answer to [`check_resolved`].
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The address when the host is an IP literal (no DNS needed; it is already known public).
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The effective port: the explicit one, or 443.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for WebhookUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Checks a user-supplied webhook URL without any I/O.
///
/// Requires: at most [`MAX_URL_LEN`] bytes (as typed and normalised); scheme `https`; no user name
/// or password; no fragment; a host; an explicit port, if any, other than 0. An IP-literal host —
/// including the forms the URL parser normalises, such as `https://0x7f.1/`, `https://2130706433/`
/// or `https://017700000001/` — must pass [`is_public_ip`]. A DNS name must have a dot and must not
/// be obviously internal (`localhost`, `*.localhost`, `*.local`, `*.localdomain`, `*.internal`
/// (which covers `metadata.google.internal`), `*.intranet`, `*.lan`, `*.home.arpa`, reverse-DNS
/// names); the check is on the name after IDNA and percent-decoding, so `https://ⓛocalhost/` and
/// `https://%6c%6f%63%61%6c%68%6f%73%74/` are refused too.
///
/// A name passing here may still resolve to a private address: the caller must resolve it and call
/// [`check_resolved`] (see the module documentation).
pub fn check_webhook_url(text: &str) -> Result<WebhookUrl, UrlProblem> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlProblem::TooLong);
    }
    let url = Url::parse(text).map_err(|_| UrlProblem::Unparseable)?;
    if url.as_str().len() > MAX_URL_LEN {
        return Err(UrlProblem::TooLong);
    }
    if url.scheme() != "https" {
        return Err(UrlProblem::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlProblem::Fragment);
    }
    if url.port() == Some(0) {
        return Err(UrlProblem::BadPort);
    }
    let port = url.port_or_known_default().ok_or(UrlProblem::BadPort)?;
    let (host, ip) = match url.host() {
        None => return Err(UrlProblem::NoHost),
        Some(Host::Ipv4(v4)) => (v4.to_string(), IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => (v6.to_string(), IpAddr::V6(v6)),
        Some(Host::Domain(name)) => {
            check_host_name(name)?;
            let host = name.to_owned();
            return Ok(WebhookUrl {
                url,
                host,
                ip: None,
                port,
            });
        }
    };
    if !is_public_ip(ip) {
        return Err(UrlProblem::PrivateAddress);
    }
    Ok(WebhookUrl {
        url,
        host,
        ip: Some(ip),
        port,
    })
}

/// Checks a DNS name (as normalised by the URL parser: lowercase ASCII, punycode).
fn check_host_name(name: &str) -> Result<(), UrlProblem> {
    // One trailing dot is the fully-qualified spelling of the same name.
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST_LEN {
        return Err(UrlProblem::NoHost);
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(UrlProblem::NoHost);
    }
    let name = name.to_ascii_lowercase();
    if !name.contains('.') {
        return Err(UrlProblem::InternalHost);
    }
    let internal = INTERNAL_SUFFIXES.iter().any(|suffix| {
        name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    });
    if internal {
        return Err(UrlProblem::InternalHost);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Address checks
// ---------------------------------------------------------------------------------------------

/// IPv4 networks that are never a webhook target: (network, prefix length).
const V4_DENY: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, incl. cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, incl. broadcast 255.255.255.255
];

/// IPv6 networks that are never a webhook target: (network, prefix length). Checked after the
/// forms that embed an IPv4 address (mapped, NAT64 `/96`, 6to4) have been judged by that address.
const V6_DENY: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // ::, ::1 and IPv4-compatible (deprecated)
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96), // IPv4-translated (SIIT)
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    // IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28,
    // ORCHIDv2 2001:20::/28, and the anycast/AMT/AS112 services, none of them a webhook receiver.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation (RFC 9637)
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),     // SRv6 SIDs
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),      // unique local, incl. AWS fd00:ec2::254
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),     // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),     // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),      // multicast
];

/// IPv4-mapped addresses, `::ffff:a.b.c.d`: judged by the embedded IPv4 address.
const V6_MAPPED: (Ipv6Addr, u8) = (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);
/// Well-known NAT64 prefix, `64:ff9b::a.b.c.d`: judged by the embedded IPv4 address.
const V6_NAT64: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
/// 6to4, `2002:aabb:ccdd::/48`: judged by the embedded IPv4 address `aa.bb.cc.dd`.
const V6_6TO4: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);
/// Global unicast: every native IPv6 target must be inside it.
const V6_GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn in_v4(addr: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    addr.to_bits() & mask == net.to_bits() & mask
}

fn in_v6(addr: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    addr.to_bits() & mask == net.to_bits() & mask
}

/// Whether an address may be connected to for a webhook delivery: a globally routable unicast
/// address, not private, loopback, link-local (cloud metadata), shared (CGNAT), documentation,
/// benchmarking, multicast or reserved.
///
/// IPv4: refuses `0.0.0.0/8`, `10/8`, `100.64/10`, `127/8`, `169.254/16`, `172.16/12`,
/// `192.0.0/24`, `192.0.2/24`, `192.88.99/24`, `192.168/16`, `198.18/15`, `198.51.100/24`,
/// `203.0.113/24`, `224/4` and `240/4` (which includes `255.255.255.255`).
///
/// IPv6: IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16` are judged by the
/// IPv4 address they embed. Refuses `::/96` (unspecified, loopback, IPv4-compatible),
/// `::ffff:0:0:0/96`, `64:ff9b:1::/48`, `100::/64`, `2001::/23` (IETF protocol assignments:
/// Teredo `2001::/32`, `2001:2::/48`, ORCHID `2001:10::/28`, `2001:20::/28`, …), `2001:db8::/32`,
/// `3fff::/20`, `5f00::/16`, ULA `fc00::/7`
/// (AWS metadata `fd00:ec2::254` included), link-local `fe80::/10`, site-local `fec0::/10` and
/// multicast `ff00::/8`; and, as an allow-list on top, anything outside global unicast `2000::/3`.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_DENY.iter().any(|&net| in_v4(ip, net))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = ip.to_bits();
    if in_v6(ip, V6_MAPPED) || in_v6(ip, V6_NAT64) {
        // The low 32 bits are the IPv4 address.
        return is_public_v4(Ipv4Addr::from_bits(bits as u32));
    }
    if in_v6(ip, V6_6TO4) {
        // Bits 16..48 (from the top) are the IPv4 address.
        return is_public_v4(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    in_v6(ip, V6_GLOBAL_UNICAST) && !V6_DENY.iter().any(|&net| in_v6(ip, net))
}

/// Checks what a webhook host resolved to: there must be at least one address and **every**
/// address must be public ([`is_public_ip`]); one private answer is enough to refuse, since an
/// attacker controlling DNS can mix public and private answers. The caller then connects only to
/// these addresses.
pub fn check_resolved(addrs: &[IpAddr]) -> Result<(), UrlProblem> {
    if addrs.is_empty() {
        return Err(UrlProblem::NoAddresses);
    }
    if addrs.iter().all(|&ip| is_public_ip(ip)) {
        Ok(())
    } else {
        Err(UrlProblem::ResolvesPrivate)
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// The request header carrying a delivery's signature, `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-TradeSignal-Signature";

/// The prefix of webhook secrets, see [`format_secret`].
pub const SECRET_PREFIX: &str = "whsec_";

/// The longest signature header [`verify`] looks at.
const MAX_HEADER_LEN: usize = 4096;
/// The most `v1=` values [`verify`] compares (several are allowed during secret rotation).
const MAX_V1_VALUES: usize = 8;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// HMAC-SHA256(secret, "<timestamp>." ++ body).
fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<[u8; 32]> {
    // HMAC accepts keys of any length, so this never fails; the Option keeps it panic-free anyway.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    if tag.len() != out.len() {
        return None;
    }
    out.copy_from_slice(&tag);
    Some(out)
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
fn decode_sig(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The [`SIGNATURE_HEADER`] value for a delivery: `t=<timestamp>,v1=<lowercase hex
/// HMAC-SHA256(secret, "<timestamp>." ++ body)>`.
///
/// `secret` is the webhook secret as given to the user (the bytes of the `whsec_…` string, see
/// [`format_secret`]); `timestamp` is the Unix time of the attempt, in seconds (each retry is
/// signed afresh). `body` is exactly the bytes sent.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let hex = signature(secret, timestamp, body)
        .map(hex::encode)
        .unwrap_or_default();
    format!("t={timestamp},v1={hex}")
}

/// The receiver's check of a [`SIGNATURE_HEADER`] value; `true` only if the header is well formed,
/// its timestamp is within `tolerance_secs` of `now` (either direction), and one of its `v1`
/// values equals the expected signature (compared in constant time).
///
/// The header is `,`-separated `key=value` items (whitespace around items is ignored): exactly one
/// `t` (decimal digits), one to eight `v1` (64 hex digits each; several are allowed so a sender can
/// sign with an old and a new secret during rotation), and any other keys ignored (future schemes).
/// Anything else — no `=`, a duplicate `t`, a malformed `v1`, over 4096 bytes — is refused, as are
/// an empty secret and a negative tolerance.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    if secret.is_empty() || tolerance_secs < 0 || header.len() > MAX_HEADER_LEN {
        return false;
    }
    let mut timestamp: Option<i64> = None;
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return false;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return false;
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return false;
                }
                let Ok(t) = value.parse::<i64>() else {
                    return false;
                };
                timestamp = Some(t);
            }
            "v1" => {
                if candidates.len() >= MAX_V1_VALUES {
                    return false;
                }
                let Some(sig) = decode_sig(value) else {
                    return false;
                };
                candidates.push(sig);
            }
            "" => return false,
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if candidates.is_empty() || timestamp.abs_diff(now) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let Some(expected) = signature(secret, timestamp, body) else {
        return false;
    };
    // Compare with every candidate without short-circuiting.
    let matched = candidates
        .iter()
        .fold(subtle::Choice::from(0), |acc, candidate| {
            acc | candidate.ct_eq(&expected)
        });
    bool::from(matched)
}

/// Writes a webhook secret from 32 random bytes (drawn by the caller from a CSPRNG):
/// [`SECRET_PREFIX`] (`whsec_`) followed by the bytes in unpadded URL-safe base64 (RFC 4648 §5,
/// alphabet `A–Z a–z 0–9 - _`), 49 characters in all.
///
/// The whole string, prefix included, is the HMAC key: [`sign`] and [`verify`] take its UTF-8
/// bytes (`secret.as_bytes()`), so receivers can paste it into their verifier as is.
pub fn format_secret(random_bytes: &[u8; 32]) -> String {
    let mut out = String::with_capacity(SECRET_PREFIX.len() + 43);
    out.push_str(SECRET_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(random_bytes, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

/// How many delivery attempts are made in all (the first plus four retries) before giving up.
pub const MAX_ATTEMPTS: u32 = 5;

/// How long to wait after failed attempt number `attempt` (1-based) before the next one, or `None`
/// to give up: 1 → 30 s, 2 → 2 min, 3 → 10 min, 4 → 1 h, 5 ([`MAX_ATTEMPTS`]) and later → `None`.
/// `attempt` 0 (nothing tried yet) is `Some(0 s)`: deliver now.
///
/// The schedule is deterministic; the caller may add jitter. Which failures are worth retrying
/// (network errors, timeouts, 408, 429, 5xx) versus final (other 4xx, a URL or address that no
/// longer passes the checks) is the caller's decision.
pub fn retry_delay(attempt: u32) -> Option<Duration> {
    match attempt {
        0 => Some(Duration::ZERO),
        1 => Some(Duration::from_secs(30)),
        2 => Some(Duration::from_secs(2 * 60)),
        3 => Some(Duration::from_secs(10 * 60)),
        4 => Some(Duration::from_secs(60 * 60)),
        _ => None,
    }
}
