//! Security monitoring rules: which patterns of events raise an alert, how many occurrences within
//! which window, and at what severity, with operator overrides (`TRADESIGNAL_ALERT_RULES`). The
//! counting happens in the server over the shared store; this is the policy.

use std::collections::BTreeMap;
use std::time::Duration;

/// One rule: this many occurrences within the window raise one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub count: u64,
    pub window: Duration,
}

/// Every rule with its severity and default threshold.
pub const RULES: &[(&str, &str, u64, u64)] = &[
    // A rotated-out refresh token presented again: a stolen token, or a client bug worth a look.
    ("refresh_token_reuse", "high", 1, 3600),
    // Many accounts locked in a short time: a credential-stuffing or spraying wave.
    ("lockout_wave", "high", 10, 600),
    // One password failing against many sign-ins (counted by a keyed hash, never stored).
    ("password_spraying", "high", 20, 600),
    // A role granted or taken away.
    ("privilege_change", "medium", 1, 3600),
    // One principal (an account, or an address when signed out) refused by rate limits this often:
    // a scraper, a runaway integration or a flood aimed at one account.
    ("ratelimit_spike", "medium", 100, 300),
    // One session or API key seen from this many client networks (IPv6 by prefix): a stolen
    // credential used from elsewhere while its owner still uses it.
    ("credential_many_ips", "high", 10, 600),
    // A support or admin account signed in from a browser without its device cookie.
    ("staff_new_device", "medium", 1, 3600),
];

/// Alerts that are not counted: the audit trail itself found tampered (at append, or by `audit
/// verify`). Always critical, always raised.
pub const AUDIT_CHAIN_TAMPERED: &str = "audit_chain_tampered";
pub const AUDIT_CHAIN_VERIFICATION_FAILED: &str = "audit_chain_verification_failed";

/// Rules counting events any client can cause in volume (refused requests, new client networks): a
/// threshold of 1 would turn every such event into an alert, so they need at least 2.
pub const VOLUME_RULES: &[&str] = &["ratelimit_spike", "credential_many_ips"];

/// Thresholds, from the defaults and `TRADESIGNAL_ALERT_RULES` (`rule=count/seconds,…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules(BTreeMap<&'static str, (&'static str, Threshold)>);

impl Default for Rules {
    fn default() -> Self {
        Self(
            RULES
                .iter()
                .map(|(name, severity, count, secs)| {
                    (
                        *name,
                        (
                            *severity,
                            Threshold {
                                count: *count,
                                window: Duration::from_secs(*secs),
                            },
                        ),
                    )
                })
                .collect(),
        )
    }
}

impl Rules {
    /// Parses overrides; every problem is named.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let mut rules = Self::default();
        let mut problems = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let parsed = item.split_once('=').and_then(|(name, value)| {
                let (count, secs) = value.split_once('/')?;
                Some((
                    name.trim(),
                    count.trim().parse::<u64>().ok()?,
                    secs.trim().parse::<u64>().ok()?,
                ))
            });
            match parsed {
                Some((name, 1, _)) if VOLUME_RULES.contains(&name) => problems.push(format!(
                    "{name} counts what any client can cause in volume: its count must be at least 2"
                )),
                Some((name, count, secs))
                    if (1..=1_000_000).contains(&count) && (1..=86_400 * 7).contains(&secs) =>
                {
                    match rules.0.iter_mut().find(|(rule, _)| **rule == name) {
                        Some((_, (_, threshold))) => {
                            *threshold = Threshold {
                                count,
                                window: Duration::from_secs(secs),
                            }
                        }
                        None => problems.push(format!(
                            "unknown rule {name:?} (known: {})",
                            RULES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                        )),
                    }
                }
                _ => problems.push(format!(
                    "{item:?} is not rule=count/seconds (count 1-1000000, seconds 1-604800)"
                )),
            }
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, rule: &str) -> Option<(&'static str, Threshold)> {
        self.0.get(rule).copied()
    }

    /// `rule=count/seconds,…` of every rule (for `config check`).
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(name, (_, t))| format!("{name}={}/{}", t.count, t.window.as_secs()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_defaults_and_mistakes_are_named() {
        let rules = Rules::parse("lockout_wave=3/60, password_spraying=5/120").expect("rules");
        assert_eq!(
            rules.get("lockout_wave"),
            Some((
                "high",
                Threshold {
                    count: 3,
                    window: Duration::from_secs(60)
                }
            ))
        );
        assert_eq!(rules.get("privilege_change").map(|r| r.1.count), Some(1));
        assert_eq!(Rules::parse("").expect("empty"), Rules::default());
        let problems = Rules::parse("nope=1/1,lockout_wave=0/60,lockout_wave=x").expect_err("bad");
        assert_eq!(problems.len(), 3, "{problems:?}");
        for rule in VOLUME_RULES {
            let problems = Rules::parse(&format!("{rule}=1/60")).expect_err("volume rule at 1");
            assert!(problems[0].contains("at least 2"), "{problems:?}");
            assert!(Rules::parse(&format!("{rule}=2/60")).is_ok());
        }
        assert!(problems[0].contains("unknown rule"));
        assert!(
            Rules::default()
                .describe()
                .contains("refresh_token_reuse=1/3600")
        );
    }
}
