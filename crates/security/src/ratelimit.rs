//! Rate-limit policies: the named quotas the service enforces, with the hardening plan's defaults and
//! operator overrides (`TRADESIGNAL_RATE_LIMITS="login=10/60,tier.free=100/3600"`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::authz::Tier;
use crate::gcra::Quota;

/// Every policy name with its default quota.
pub const DEFAULTS: &[(&str, u32, u64)] = &[
    ("tier.free", 100, 3600),
    ("tier.pro", 1000, 3600),
    ("tier.enterprise", 10000, 3600),
    ("anonymous", 300, 3600),
    ("login", 10, 60),
    ("register", 5, 3600),
    ("forgot.email", 3, 3600),
    ("forgot.ip", 10, 3600),
    ("reset", 10, 60),
    ("verify", 10, 60),
    ("unlock", 10, 60),
    ("refresh", 30, 60),
    ("password_strength", 30, 60),
    ("mfa", 30, 300),
    ("mail.address", 3, 86400),
    ("change_email", 5, 86400),
    ("csp_report", 100, 60),
];

#[derive(Debug, Clone)]
pub struct RateLimits {
    quotas: BTreeMap<&'static str, Quota>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            quotas: DEFAULTS
                .iter()
                .map(|(name, limit, secs)| (*name, Quota::new(*limit, Duration::from_secs(*secs))))
                .collect(),
        }
    }
}

impl RateLimits {
    /// Defaults with `overrides` applied; every bad entry is reported.
    pub fn parse(overrides: &str) -> Result<Self, Vec<String>> {
        let mut limits = Self::default();
        let mut problems = vec![];
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((name, value)) = entry.split_once('=') else {
                problems.push(format!("{entry:?} is not name=limit/seconds"));
                continue;
            };
            let Some(known) = DEFAULTS
                .iter()
                .find(|(n, _, _)| *n == name.trim())
                .map(|(n, _, _)| *n)
            else {
                problems.push(format!("unknown policy {:?}", name.trim()));
                continue;
            };
            let parsed = value
                .trim()
                .split_once('/')
                .and_then(|(l, s)| {
                    Some((l.trim().parse::<u32>().ok()?, s.trim().parse::<u64>().ok()?))
                })
                .filter(|(l, s)| *l >= 1 && *s >= 1 && *s <= 86_400);
            match parsed {
                Some((limit, secs)) => {
                    limits
                        .quotas
                        .insert(known, Quota::new(limit, Duration::from_secs(secs)));
                }
                None => problems.push(format!(
                    "{entry:?}: the limit must be ≥ 1 per 1–86400 seconds"
                )),
            }
        }
        if problems.is_empty() {
            Ok(limits)
        } else {
            Err(problems)
        }
    }

    /// The quota of a named policy (every name in `DEFAULTS` exists).
    pub fn get(&self, name: &str) -> Quota {
        self.quotas
            .get(name)
            .copied()
            .unwrap_or(Quota::new(1, Duration::from_secs(1)))
    }

    pub fn tier(&self, tier: Tier) -> Quota {
        self.get(match tier {
            Tier::Free => "tier.free",
            Tier::Pro => "tier.pro",
            Tier::Enterprise => "tier.enterprise",
        })
    }

    /// `name=limit/seconds` for every policy (for `config check`).
    pub fn describe(&self) -> String {
        self.quotas
            .iter()
            .map(|(name, q)| format!("{name}={}/{}", q.limit, q.period.as_secs()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_hardening_plan() {
        let limits = RateLimits::default();
        assert_eq!(limits.tier(Tier::Free), Quota::per_hour(100));
        assert_eq!(limits.tier(Tier::Pro), Quota::per_hour(1000));
        assert_eq!(limits.tier(Tier::Enterprise), Quota::per_hour(10000));
        assert_eq!(limits.get("anonymous"), Quota::per_hour(300));
        assert_eq!(limits.get("login"), Quota::per_minute(10));
    }

    #[test]
    fn overrides_apply_and_errors_are_all_reported() {
        let limits = RateLimits::parse("login=3/10, tier.free=5/60").expect("valid");
        assert_eq!(limits.get("login"), Quota::new(3, Duration::from_secs(10)));
        assert_eq!(limits.tier(Tier::Free), Quota::per_minute(5));
        let problems =
            RateLimits::parse("nope=1/1,login=0/10,register=5,forgot.ip=x/y").expect_err("invalid");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}

/// The key a client address is counted under by every per-address limit (anonymous quota, endpoint
/// limits, brute-force counters, spraying throttle). IPv4 by address; IPv6 by its network of
/// `v6_prefix` bits (a /64 by default: one subscriber gets a whole /64, so counting single addresses
/// would give one client 2^64 buckets). IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn address_bucket(ip: std::net::IpAddr, v6_prefix: u8) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.to_string();
            }
            let prefix = v6_prefix.clamp(1, 128);
            let mask = u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0);
            let network = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            format!("{network}/{prefix}")
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;
    use std::net::IpAddr;

    fn bucket(ip: &str, prefix: u8) -> String {
        address_bucket(ip.parse::<IpAddr>().expect("ip"), prefix)
    }

    #[test]
    fn ipv6_counts_by_network_ipv4_by_address() {
        assert_eq!(bucket("203.0.113.7", 64), "203.0.113.7");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            bucket("2001:db8:1:2:aaaa::1", 64),
            bucket("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
            "one /64, one bucket"
        );
        assert_ne!(bucket("2001:db8:1:2::1", 64), bucket("2001:db8:1:3::1", 64));
        assert_eq!(bucket("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(bucket("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(bucket("::ffff:198.51.100.9", 64), "198.51.100.9");
        assert_eq!(bucket("::1", 64), "::/64");
        assert_eq!(
            bucket("2001:db8::1", 0),
            "::/1",
            "clamped to at least one bit"
        );
        assert_eq!(bucket("8001:db8::1", 0), "8000::/1");
    }
}
