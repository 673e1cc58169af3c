//! Tests of the webhook building blocks: URL and address checks (SSRF), signatures, secrets and
//! the retry schedule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use market::webhook::{
    MAX_ATTEMPTS, MAX_URL_LEN, SECRET_PREFIX, SIGNATURE_HEADER, UrlProblem, check_resolved,
    check_webhook_url, format_secret, is_public_ip, retry_delay, sign, verify,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// (input, expected outcome: Ok(normalised URL, host, port) or Err(problem)).
type UrlCase = (
    &'static str,
    Result<(&'static str, &'static str, u16), UrlProblem>,
);

const URL_CASES: &[UrlCase] = &[
    // Good.
    (
        "https://example.com:8443/hook",
        Ok(("https://example.com:8443/hook", "example.com", 8443)),
    ),
    (
        "https://hooks.example.com/x?y=1",
        Ok(("https://hooks.example.com/x?y=1", "hooks.example.com", 443)),
    ),
    (
        "https://example.com",
        Ok(("https://example.com/", "example.com", 443)),
    ),
    (
        "https://example.com:443/a",
        Ok(("https://example.com/a", "example.com", 443)),
    ),
    (
        "HTTPS://Hooks.EXAMPLE.com/Path",
        Ok(("https://hooks.example.com/Path", "hooks.example.com", 443)),
    ),
    (
        "https://example.com./x",
        Ok(("https://example.com./x", "example.com.", 443)),
    ),
    (
        "https://bücher.example/",
        Ok((
            "https://xn--bcher-kva.example/",
            "xn--bcher-kva.example",
            443,
        )),
    ),
    (
        "https://93.184.216.34/hook",
        Ok(("https://93.184.216.34/hook", "93.184.216.34", 443)),
    ),
    (
        "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/",
        Ok((
            "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/",
            "2606:2800:220:1:248:1893:25c8:1946",
            8443,
        )),
    ),
    (
        "https://[::ffff:8.8.8.8]/",
        Ok(("https://[::ffff:808:808]/", "::ffff:8.8.8.8", 443)),
    ),
    (
        "https://example.com:1/",
        Ok(("https://example.com:1/", "example.com", 1)),
    ),
    (
        "https://example.com:65535/",
        Ok(("https://example.com:65535/", "example.com", 65535)),
    ),
    // Scheme.
    ("http://example.com/hook", Err(UrlProblem::NotHttps)),
    ("ftp://example.com/", Err(UrlProblem::NotHttps)),
    ("file:///etc/passwd", Err(UrlProblem::NotHttps)),
    ("gopher://example.com/", Err(UrlProblem::NotHttps)),
    ("javascript:alert(1)", Err(UrlProblem::NotHttps)),
    ("data:text/plain,hi", Err(UrlProblem::NotHttps)),
    ("wss://example.com/", Err(UrlProblem::NotHttps)),
    // Not URLs.
    ("", Err(UrlProblem::Unparseable)),
    ("example.com/hook", Err(UrlProblem::Unparseable)),
    ("//example.com/hook", Err(UrlProblem::Unparseable)),
    ("https://", Err(UrlProblem::Unparseable)),
    ("https:///path", Err(UrlProblem::InternalHost)), // read as https://path/
    ("https://exa mple.com/", Err(UrlProblem::Unparseable)),
    ("https://example.com:99999/", Err(UrlProblem::Unparseable)),
    ("https://1.2.3.4.5/", Err(UrlProblem::Unparseable)),
    ("https://[fe80::1%25eth0]/", Err(UrlProblem::Unparseable)),
    ("https://256.0.0.1/", Err(UrlProblem::Unparseable)),
    // Credentials.
    ("https://user:pw@x.com", Err(UrlProblem::Credentials)),
    ("https://user@x.com/", Err(UrlProblem::Credentials)),
    ("https://:pw@x.com/", Err(UrlProblem::Credentials)),
    (
        "https://example.com@127.0.0.1/",
        Err(UrlProblem::Credentials),
    ),
    // Fragment, port.
    ("https://example.com/#frag", Err(UrlProblem::Fragment)),
    ("https://example.com/#", Err(UrlProblem::Fragment)),
    ("https://example.com:0/", Err(UrlProblem::BadPort)),
    // IP literals, in every spelling the parser normalises.
    ("https://127.0.0.1", Err(UrlProblem::PrivateAddress)),
    ("https://127.0.0.1./", Err(UrlProblem::PrivateAddress)),
    ("https://127.1/", Err(UrlProblem::PrivateAddress)),
    ("https://0x7f.1/", Err(UrlProblem::PrivateAddress)),
    ("https://0x7f000001/", Err(UrlProblem::PrivateAddress)),
    ("https://2130706433/", Err(UrlProblem::PrivateAddress)),
    ("https://017700000001/", Err(UrlProblem::PrivateAddress)),
    ("https://0177.0.0.1/", Err(UrlProblem::PrivateAddress)),
    ("https://127。0。0。1/", Err(UrlProblem::PrivateAddress)),
    ("https://%31%32%37.0.0.1/", Err(UrlProblem::PrivateAddress)),
    ("https://0/", Err(UrlProblem::PrivateAddress)),
    ("https://0.0.0.0/", Err(UrlProblem::PrivateAddress)),
    ("https://[::1]", Err(UrlProblem::PrivateAddress)),
    ("https://[::]/", Err(UrlProblem::PrivateAddress)),
    (
        "https://[::ffff:127.0.0.1]",
        Err(UrlProblem::PrivateAddress),
    ),
    ("https://[::ffff:7f00:1]/", Err(UrlProblem::PrivateAddress)),
    ("https://[::127.0.0.1]/", Err(UrlProblem::PrivateAddress)),
    (
        "https://[64:ff9b::a9fe:a9fe]/",
        Err(UrlProblem::PrivateAddress),
    ),
    ("https://[2002:7f00:1::]/", Err(UrlProblem::PrivateAddress)),
    (
        "https://169.254.169.254/latest/meta-data",
        Err(UrlProblem::PrivateAddress),
    ),
    ("https://[fd00:ec2::254]", Err(UrlProblem::PrivateAddress)),
    ("https://[fe80::1]/", Err(UrlProblem::PrivateAddress)),
    ("https://100.64.0.1", Err(UrlProblem::PrivateAddress)),
    ("https://10.0.0.1/", Err(UrlProblem::PrivateAddress)),
    ("https://172.16.0.1/", Err(UrlProblem::PrivateAddress)),
    ("https://192.168.1.1:8443/", Err(UrlProblem::PrivateAddress)),
    ("https://255.255.255.255/", Err(UrlProblem::PrivateAddress)),
    ("https://224.0.0.1/", Err(UrlProblem::PrivateAddress)),
    // Internal names.
    ("https://localhost/", Err(UrlProblem::InternalHost)),
    ("https://localhost./", Err(UrlProblem::InternalHost)),
    ("https://LOCALHOST:8443/", Err(UrlProblem::InternalHost)),
    ("https://api.localhost/", Err(UrlProblem::InternalHost)),
    ("https://ⓛocalhost/", Err(UrlProblem::InternalHost)),
    (
        "https://%6c%6f%63%61%6c%68%6f%73%74/",
        Err(UrlProblem::InternalHost),
    ),
    ("https://foo.internal", Err(UrlProblem::InternalHost)),
    (
        "https://metadata.google.internal/computeMetadata/v1/",
        Err(UrlProblem::InternalHost),
    ),
    ("https://printer.local/", Err(UrlProblem::InternalHost)),
    ("https://db.localdomain/", Err(UrlProblem::InternalHost)),
    ("https://nas.home.arpa/", Err(UrlProblem::InternalHost)),
    (
        "https://1.0.0.127.in-addr.arpa/",
        Err(UrlProblem::InternalHost),
    ),
    ("https://intranet/", Err(UrlProblem::InternalHost)),
    ("https://metadata/", Err(UrlProblem::InternalHost)),
    ("https://com./", Err(UrlProblem::InternalHost)),
    // Malformed names.
    ("https://a..b.com/", Err(UrlProblem::NoHost)),
    ("https://example.com../", Err(UrlProblem::NoHost)),
];

#[test]
fn url_table() {
    for &(input, expected) in URL_CASES {
        let got = check_webhook_url(input);
        match (got, expected) {
            (Ok(url), Ok((normalised, host, port))) => {
                assert_eq!(url.as_str(), normalised, "{input}");
                assert_eq!(url.url().as_str(), normalised, "{input}");
                assert_eq!(url.to_string(), normalised, "{input}");
                assert_eq!(url.host(), host, "{input}");
                assert_eq!(url.port(), port, "{input}");
            }
            (Err(problem), Err(want)) => assert_eq!(problem, want, "{input}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn ip_literal_is_exposed_and_names_are_not() {
    let url = check_webhook_url("https://8.8.8.8/").expect("public literal");
    assert_eq!(
        url.ip_literal(),
        Some(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)))
    );
    let url = check_webhook_url("https://[2001:4860:4860::8888]/").expect("public literal");
    assert_eq!(url.host(), "2001:4860:4860::8888");
    assert_eq!(
        url.ip_literal(),
        Some("2001:4860:4860::8888".parse::<IpAddr>().expect("ip"))
    );
    let url = check_webhook_url("https://hooks.example.com/").expect("name");
    assert_eq!(url.ip_literal(), None);
}

#[test]
fn length_limit() {
    let base = "https://example.com/";
    let ok = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
    assert_eq!(ok.len(), MAX_URL_LEN);
    assert!(check_webhook_url(&ok).is_ok());
    let long = format!("{ok}a");
    assert_eq!(check_webhook_url(&long), Err(UrlProblem::TooLong));
    // Short as typed, too long once percent-encoded.
    let spaces = format!("{base}{}", " ".repeat(MAX_URL_LEN - base.len() - 1));
    assert!(spaces.len() < MAX_URL_LEN);
    assert_eq!(
        check_webhook_url(&format!("{spaces}x")),
        Err(UrlProblem::TooLong)
    );
    // Huge input is refused before parsing.
    let huge = format!("{base}{}", "a".repeat(10 * 1024 * 1024));
    assert_eq!(check_webhook_url(&huge), Err(UrlProblem::TooLong));
}

#[test]
fn messages_are_user_facing_and_never_echo_input() {
    let secret_looking = "https://alice:hunter2@127.0.0.1:8443/zzzTOKENzzz#frag";
    let problem = check_webhook_url(secret_looking).expect_err("refused");
    let all = [
        UrlProblem::TooLong,
        UrlProblem::Unparseable,
        UrlProblem::NotHttps,
        UrlProblem::Credentials,
        UrlProblem::NoHost,
        UrlProblem::Fragment,
        UrlProblem::BadPort,
        UrlProblem::PrivateAddress,
        UrlProblem::InternalHost,
        UrlProblem::NoAddresses,
        UrlProblem::ResolvesPrivate,
    ];
    assert!(all.contains(&problem));
    assert_eq!(
        UrlProblem::NotHttps.message(),
        "Webhook URLs must use https."
    );
    for p in all {
        let m = p.message();
        assert!(!m.is_empty() && m.len() < 200, "{p:?}");
        assert!(m.ends_with('.'), "{p:?}");
        assert_eq!(p.to_string(), m);
        for fragment in ["alice", "hunter2", "TOKEN", "127.0.0.1", "http://", "#frag"] {
            assert!(!m.contains(fragment), "{p:?} echoes {fragment}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

const IP_CASES: &[(&str, bool)] = &[
    // Public.
    ("8.8.8.8", true),
    ("1.1.1.1", true),
    ("93.184.216.34", true),
    ("9.255.255.255", true),
    ("11.0.0.0", true),
    ("100.63.255.255", true),
    ("100.128.0.0", true),
    ("126.255.255.255", true),
    ("128.0.0.0", true),
    ("169.253.255.255", true),
    ("169.255.0.0", true),
    ("172.15.255.255", true),
    ("172.32.0.0", true),
    ("192.0.1.0", true),
    ("192.0.3.0", true),
    ("192.88.98.255", true),
    ("192.167.255.255", true),
    ("192.169.0.0", true),
    ("198.17.255.255", true),
    ("198.20.0.0", true),
    ("198.51.99.255", true),
    ("203.0.112.255", true),
    ("223.255.255.255", true),
    ("2001:4860:4860::8888", true),
    ("2606:4700:4700::1111", true),
    ("2a00:1450:4001:80b::200e", true),
    ("::ffff:8.8.8.8", true),
    ("64:ff9b::808:808", true),
    ("2002:808:808::1", true),
    ("2001:200::1", true),
    ("2001:1::1", false), // 2001::/23, IETF protocol assignments (PCP anycast)
    ("2001:3::1", false), // AMT
    ("2001:4:112::1", false), // AS112
    ("2001:30::1", false),
    ("2001:1ff:ffff::1", false),
    ("2400:cb00::1", true),
    // IPv4 private and special.
    ("0.0.0.0", false),
    ("0.255.255.255", false),
    ("10.0.0.0", false),
    ("10.255.255.255", false),
    ("100.64.0.0", false),
    ("100.127.255.255", false),
    ("127.0.0.1", false),
    ("127.255.255.254", false),
    ("169.254.0.1", false),
    ("169.254.169.254", false),
    ("172.16.0.0", false),
    ("172.31.255.255", false),
    ("192.0.0.8", false),
    ("192.0.2.1", false),
    ("192.88.99.1", false),
    ("192.168.0.1", false),
    ("198.18.0.0", false),
    ("198.19.255.255", false),
    ("198.51.100.7", false),
    ("203.0.113.9", false),
    ("224.0.0.1", false),
    ("239.255.255.250", false),
    ("240.0.0.1", false),
    ("255.255.255.255", false),
    // IPv6 special.
    ("::", false),
    ("::1", false),
    ("::127.0.0.1", false),
    ("::8.8.8.8", false), // IPv4-compatible, deprecated: refused whatever it embeds
    ("::ffff:127.0.0.1", false),
    ("::ffff:10.1.2.3", false),
    ("::ffff:169.254.169.254", false),
    ("::ffff:0:8.8.8.8", false), // IPv4-translated
    ("64:ff9b::127.0.0.1", false),
    ("64:ff9b::a9fe:a9fe", false),
    ("64:ff9b:1::808:808", false),
    ("100::1", false),
    ("100::ffff:ffff:ffff:ffff", false),
    ("2001::1", false),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
    ("2001:2::1", false),
    ("2001:10::1", false),
    ("2001:1f::1", false),
    ("2001:db8::1", false),
    ("2001:db8:ffff::1", false),
    ("2002:7f00:1::1", false),
    ("2002:a00:1::", false),
    ("2002:a9fe:a9fe::", false),
    ("3fff::1", false),
    ("5f00::1", false),
    ("fc00::1", false),
    ("fd00:ec2::254", false),
    ("fdff:ffff::1", false),
    ("fe80::1", false),
    ("febf::1", false),
    ("fec0::1", false),
    ("ff02::1", false),
    ("ff0e::1", false),
    ("4000::1", false), // outside global unicast
    ("1::1", false),
];

#[test]
fn ip_table() {
    for &(text, public) in IP_CASES {
        let ip: IpAddr = text.parse().expect(text);
        assert_eq!(is_public_ip(ip), public, "{text}");
    }
}

#[test]
fn resolved_addresses() {
    let public: IpAddr = "93.184.216.34".parse().expect("ip");
    let public6: IpAddr = "2606:2800:220:1:248:1893:25c8:1946".parse().expect("ip");
    let private: IpAddr = "10.0.0.1".parse().expect("ip");
    let metadata: IpAddr = "169.254.169.254".parse().expect("ip");
    assert_eq!(check_resolved(&[]), Err(UrlProblem::NoAddresses));
    assert_eq!(check_resolved(&[public]), Ok(()));
    assert_eq!(check_resolved(&[public, public6]), Ok(()));
    assert_eq!(check_resolved(&[private]), Err(UrlProblem::ResolvesPrivate));
    // One private answer among public ones is enough to refuse (rebinding, mixed answers).
    assert_eq!(
        check_resolved(&[public, metadata]),
        Err(UrlProblem::ResolvesPrivate)
    );
    assert_eq!(
        check_resolved(&[metadata, public, public6]),
        Err(UrlProblem::ResolvesPrivate)
    );
}

const V4_PRIVATE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// Refused outright (no embedded IPv4 judged).
const V6_PRIVATE: &[&str] = &[
    "::/96",
    "::ffff:0:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001::/32",
    "2001:2::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:db8::/32",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

fn v4_nets() -> Vec<Ipv4Net> {
    V4_PRIVATE.iter().map(|s| s.parse().expect(s)).collect()
}

fn v6_nets() -> Vec<Ipv6Net> {
    V6_PRIVATE.iter().map(|s| s.parse().expect(s)).collect()
}

/// An independent statement of the rules, on CIDRs parsed by `ipnet`.
fn oracle_v4(ip: Ipv4Addr) -> bool {
    !v4_nets().iter().any(|n| n.contains(&ip))
}

fn oracle_v6(ip: Ipv6Addr) -> bool {
    let net = |s: &str| s.parse::<Ipv6Net>().expect(s);
    let bits = ip.to_bits();
    if net("::ffff:0:0/96").contains(&ip) || net("64:ff9b::/96").contains(&ip) {
        return oracle_v4(Ipv4Addr::from_bits(bits as u32));
    }
    if net("2002::/16").contains(&ip) {
        let [_, _, a, b, c, d, ..] = ip.octets();
        return oracle_v4(Ipv4Addr::new(a, b, c, d));
    }
    net("2000::/3").contains(&ip) && !v6_nets().iter().any(|n| n.contains(&ip))
}

/// A random address inside the `index`-th network of `nets` (index taken modulo the count).
fn v4_in(nets: &[Ipv4Net], index: usize, host: u32) -> Ipv4Addr {
    let net = nets[index % nets.len()];
    Ipv4Addr::from_bits(net.network().to_bits() | (host & net.hostmask().to_bits()))
}

fn v6_in(nets: &[Ipv6Net], index: usize, host: u128) -> Ipv6Addr {
    let net = nets[index % nets.len()];
    Ipv6Addr::from_bits(net.network().to_bits() | (host & net.hostmask().to_bits()))
}

fn private_v4() -> impl Strategy<Value = Ipv4Addr> {
    (any::<usize>(), any::<u32>()).prop_map(|(i, h)| v4_in(&v4_nets(), i, h))
}

/// Addresses spread over the interesting parts of the IPv6 space.
fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    let prefix = |p: &'static str| {
        any::<u128>().prop_map(move |h| v6_in(&[p.parse::<Ipv6Net>().expect(p)], 0, h))
    };
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from_bits),
        prefix("2000::/3"),
        prefix("2001::/16"),
        prefix("::/64"),
        prefix("::ffff:0:0/96"),
        prefix("64:ff9b::/96"),
        prefix("64:ff9b::/32"),
        prefix("2002::/16"),
        prefix("fc00::/6"),
        (any::<usize>(), any::<u128>()).prop_map(|(i, h)| v6_in(&v6_nets(), i, h)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn private_v4_is_refused(ip in private_v4()) {
        prop_assert!(!is_public_ip(IpAddr::V4(ip)), "{ip}");
        prop_assert_eq!(check_resolved(&[IpAddr::V4(ip)]), Err(UrlProblem::ResolvesPrivate));
    }

    #[test]
    fn private_v4_is_refused_in_every_v6_wrapper(ip in private_v4(), rest in any::<u128>()) {
        let v4 = u128::from(ip.to_bits());
        let mapped = Ipv6Addr::from_bits((0xffff << 32) | v4);
        let nat64 = Ipv6Addr::from_bits((0x0064_ff9b_u128 << 96) | v4);
        let six_to_four = Ipv6Addr::from_bits(
            (0x2002_u128 << 112) | (v4 << 80) | (rest & ((1 << 80) - 1)),
        );
        let compatible = Ipv6Addr::from_bits(v4);
        for v6 in [mapped, nat64, six_to_four, compatible] {
            prop_assert!(!is_public_ip(IpAddr::V6(v6)), "{v6}");
        }
        // And as URL literals.
        for text in [format!("https://{ip}/"), format!("https://[{mapped}]/"),
                     format!("https://[{nat64}]/"), format!("https://[{six_to_four}]/")] {
            prop_assert_eq!(check_webhook_url(&text), Err(UrlProblem::PrivateAddress), "{}", text);
        }
        // And in the integer spelling the URL parser accepts.
        let decimal = format!("https://{}/", ip.to_bits());
        prop_assert_eq!(check_webhook_url(&decimal), Err(UrlProblem::PrivateAddress));
        let hex = format!("https://0x{:x}/", ip.to_bits());
        prop_assert_eq!(check_webhook_url(&hex), Err(UrlProblem::PrivateAddress));
    }

    #[test]
    fn private_v6_is_refused(i in any::<usize>(), host in any::<u128>()) {
        let ip = v6_in(&v6_nets(), i, host);
        prop_assert!(!is_public_ip(IpAddr::V6(ip)), "{ip}");
    }

    #[test]
    fn v4_matches_oracle(bits in any::<u32>()) {
        let ip = Ipv4Addr::from_bits(bits);
        prop_assert_eq!(is_public_ip(IpAddr::V4(ip)), oracle_v4(ip), "{}", ip);
    }

    #[test]
    fn v6_matches_oracle(ip in any_v6()) {
        prop_assert_eq!(is_public_ip(IpAddr::V6(ip)), oracle_v6(ip), "{}", ip);
    }

    #[test]
    fn v4_wrappers_agree_with_v4(bits in any::<u32>()) {
        let ip = Ipv4Addr::from_bits(bits);
        let public = is_public_ip(IpAddr::V4(ip));
        prop_assert_eq!(is_public_ip(IpAddr::V6(ip.to_ipv6_mapped())), public);
        let nat64 = Ipv6Addr::from_bits((0x0064_ff9b_u128 << 96) | u128::from(bits));
        prop_assert_eq!(is_public_ip(IpAddr::V6(nat64)), public);
    }

    #[test]
    fn check_webhook_url_never_panics(text in any::<String>()) {
        let _ = check_webhook_url(&text);
    }

    #[test]
    fn check_webhook_url_never_panics_on_url_like(
        text in "(https?|HTTPS|ftp)?:?/{0,3}[a-zA-Z0-9@:%.\\[\\]_~!$&'()*+,;=?#/ \u{3002}\u{ff0e}-]{0,64}"
    ) {
        if let Ok(url) = check_webhook_url(&text) {
            // Whatever passes is https, credential-free, fragment-free, with a non-zero port, and
            // re-checks to itself.
            prop_assert_eq!(url.url().scheme(), "https");
            prop_assert!(url.url().username().is_empty() && url.url().password().is_none());
            prop_assert!(url.url().fragment().is_none());
            prop_assert!(url.port() != 0);
            prop_assert!(url.ip_literal().is_none_or(is_public_ip));
            let again = check_webhook_url(url.as_str());
            prop_assert_eq!(again.as_ref().map(|u| u.as_str()), Ok(url.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures and secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn header_name() {
    assert_eq!(SIGNATURE_HEADER, "X-TradeSignal-Signature");
}

#[test]
fn sign_known_vector() {
    // HMAC-SHA256("whsec_test", "1700000000.{\"a\":1}"), computed independently
    // (`printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`).
    let header = sign(b"whsec_test", 1_700_000_000, br#"{"a":1}"#);
    assert_eq!(header, format!("t=1700000000,v1={KNOWN_V1}"));
    assert!(verify(
        b"whsec_test",
        &header,
        br#"{"a":1}"#,
        1_700_000_000,
        300
    ));
}

const KNOWN_V1: &str = "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789";

#[test]
fn verify_rules() {
    let secret = b"whsec_abc";
    let body = b"{\"event\":\"trade\"}";
    let t = 1_700_000_000;
    let header = sign(secret, t, body);
    let v1 = header.split_once(",v1=").expect("v1").1.to_owned();
    assert_eq!(v1.len(), 64);
    assert!(
        v1.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    // Tolerance, both directions, inclusive.
    assert!(verify(secret, &header, body, t, 0));
    assert!(verify(secret, &header, body, t + 300, 300));
    assert!(verify(secret, &header, body, t - 300, 300));
    assert!(!verify(secret, &header, body, t + 301, 300));
    assert!(!verify(secret, &header, body, t - 301, 300));
    assert!(!verify(secret, &header, body, t, -1));
    assert!(!verify(secret, &header, body, i64::MIN, i64::MAX));
    assert!(verify(secret, &header, body, i64::MAX, i64::MAX));

    // Wrong secret, body; empty secret never verifies.
    assert!(!verify(b"whsec_abd", &header, body, t, 300));
    assert!(!verify(secret, &header, b"{\"event\":\"trade\"} ", t, 300));
    assert!(!verify(b"", &sign(b"", t, body), body, t, 300));

    // Several v1 values (rotation): any match is enough, in any order; unknown schemes ignored.
    let other = "0".repeat(64);
    assert!(verify(
        secret,
        &format!("t={t},v1={other},v1={v1}"),
        body,
        t,
        300
    ));
    assert!(verify(
        secret,
        &format!("t={t},v1={v1},v1={other}"),
        body,
        t,
        300
    ));
    assert!(verify(secret, &format!("v1={v1},t={t}"), body, t, 300));
    assert!(verify(secret, &format!("t={t}, v1={v1}"), body, t, 300));
    assert!(verify(
        secret,
        &format!("t={t},v0=xyz,v1={v1}"),
        body,
        t,
        300
    ));
    assert!(verify(
        secret,
        &format!("t={t},v1={}", v1.to_uppercase()),
        body,
        t,
        300
    ));
    assert!(!verify(secret, &format!("t={t},v1={other}"), body, t, 300));

    // Malformed headers.
    for bad in [
        String::new(),
        format!("t={t}"),
        format!("v1={v1}"),
        format!("t={t},v1="),
        format!("t={t},v1={}", &v1[..63]),
        format!("t={t},v1={v1}0"),
        format!("t={t},v1={}g", &v1[..63]),
        format!("t={t},t={t},v1={v1}"),
        format!("t=,v1={v1}"),
        format!("t=+{t},v1={v1}"),
        format!("t=-{t},v1={v1}"),
        format!("t={t}.0,v1={v1}"),
        format!("t=99999999999999999999,v1={v1}"),
        format!("t={t};v1={v1}"),
        format!("t={t},v1={v1},"),
        format!("t={t},,v1={v1}"),
        format!("t={t},={v1}"),
        format!("t={t},garbage,v1={v1}"),
        format!("T={t},v1={v1}"),
        format!("t={t},V1={v1}"),
        format!("t={t},v1={v1}{}", format!(",v1={other}").repeat(8)),
        format!("t={t},v1={v1},x={}", "a".repeat(5000)),
    ] {
        assert!(!verify(secret, &bad, body, t, 300), "accepted {bad:?}");
    }
}

#[test]
fn secret_format() {
    let s = format_secret(&[0u8; 32]);
    assert_eq!(s, format!("{SECRET_PREFIX}{}", "A".repeat(43)));
    let s = format_secret(&[0xff; 32]);
    assert_eq!(s, format!("whsec_{}8", "_".repeat(42)));
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::try_from(i * 8).expect("small");
    }
    let s = format_secret(&bytes);
    assert_eq!(s.len(), 49);
    assert!(s.starts_with("whsec_"));
    assert!(
        s["whsec_".len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // The string is the key.
    let header = sign(s.as_bytes(), 1, b"x");
    assert!(verify(s.as_bytes(), &header, b"x", 1, 0));
}

fn header_parts(header: &str) -> (i64, String) {
    let (t, v1) = header.split_once(',').expect("two parts");
    let t = t.strip_prefix("t=").expect("t").parse().expect("number");
    let v1 = v1.strip_prefix("v1=").expect("v1").to_owned();
    (t, v1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sign_verify_round_trip(
        secret in prop::collection::vec(any::<u8>(), 1..80),
        t in 0i64..=4_102_444_800,
        skew in -300i64..=300,
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let header = sign(&secret, t, &body);
        prop_assert_eq!(header_parts(&header).0, t);
        prop_assert!(verify(&secret, &header, &body, t + skew, 300));
    }

    #[test]
    fn verify_rejects_tampering(
        secret in prop::collection::vec(any::<u8>(), 1..80),
        t in 0i64..=4_102_444_800,
        body in prop::collection::vec(any::<u8>(), 0..512),
        flip_at in any::<usize>(),
        flip_bit in 0u8..8,
        dt in prop_oneof![-1_000_000i64..0, 1i64..1_000_000],
        extra in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let header = sign(&secret, t, &body);
        let (_, v1) = header_parts(&header);
        let now = t;
        // A different body: one bit flipped, or bytes appended.
        if !body.is_empty() {
            let mut tampered = body.clone();
            let i = flip_at % tampered.len();
            tampered[i] ^= 1 << flip_bit;
            prop_assert!(!verify(&secret, &header, &tampered, now, i64::MAX));
        }
        let mut longer = body.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(!verify(&secret, &header, &longer, now, i64::MAX));
        // A different timestamp with the same signature, even when it is fresh.
        if let Some(t2) = t.checked_add(dt).filter(|t2| *t2 >= 0) {
            let forged = format!("t={t2},v1={v1}");
            prop_assert!(!verify(&secret, &forged, &body, t2, i64::MAX));
        }
        // A different signature: one hex digit changed.
        let mut sig: Vec<u8> = v1.into_bytes();
        let i = flip_at % sig.len();
        sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
        let forged = format!("t={t},v1={}", String::from_utf8(sig).expect("ascii"));
        prop_assert!(!verify(&secret, &forged, &body, now, i64::MAX));
        // A different secret.
        let mut other = secret.clone();
        other[flip_at % secret.len()] ^= 1 << flip_bit;
        prop_assert!(!verify(&other, &header, &body, now, i64::MAX));
    }

    #[test]
    fn verify_never_panics(
        header in any::<String>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
        tolerance in any::<i64>(),
    ) {
        let _ = verify(b"whsec_x", &header, &body, now, tolerance);
    }

    #[test]
    fn verify_never_panics_on_header_like(
        header in "[tv01=, a-f0-9+-]{0,200}",
        now in any::<i64>(),
    ) {
        let _ = verify(b"whsec_x", &header, b"", now, 300);
    }
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[test]
fn retry_schedule() {
    assert_eq!(MAX_ATTEMPTS, 5);
    assert_eq!(retry_delay(0), Some(Duration::ZERO));
    assert_eq!(retry_delay(1), Some(Duration::from_secs(30)));
    assert_eq!(retry_delay(2), Some(Duration::from_secs(120)));
    assert_eq!(retry_delay(3), Some(Duration::from_secs(600)));
    assert_eq!(retry_delay(4), Some(Duration::from_secs(3600)));
    assert_eq!(retry_delay(5), None);
    assert_eq!(retry_delay(6), None);
    assert_eq!(retry_delay(u32::MAX), None);
    // Exactly MAX_ATTEMPTS attempts are made; the delays grow.
    let retries: Vec<Duration> = (1..).map_while(retry_delay).collect();
    assert_eq!(retries.len() + 1, MAX_ATTEMPTS as usize);
    assert!(retries.windows(2).all(|w| w[0] < w[1]));
}
