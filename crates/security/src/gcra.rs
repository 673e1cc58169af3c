//! The Generic Cell Rate Algorithm: the rate limiter's arithmetic, shared by every `KvStore`.
//!
//! A quota of `limit` requests per `period` admits a burst of `limit` and then one request every
//! `period / limit`. The only state is the theoretical arrival time (TAT) of the next request, so a key
//! costs O(1) memory and one atomic read-modify-write. The Redis adapter runs the same arithmetic in a
//! Lua script; `decide` is the reference both are tested against.

use std::time::Duration;

/// `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    pub const fn new(limit: u32, period: Duration) -> Self {
        Self { limit, period }
    }

    pub const fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    pub const fn per_hour(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(3600))
    }

    /// Microseconds between two requests at the sustained rate (never zero).
    pub fn emission_interval_micros(&self) -> u64 {
        let period = self.period_micros();
        (period / u64::from(self.limit.max(1))).max(1)
    }

    /// The burst tolerance in microseconds: exactly `limit` emission intervals. Not the period itself:
    /// the interval is rounded down, so a period that `limit` does not divide would let a request in
    /// up to `limit` microseconds early, one more than `limit` plus the sustained rate.
    pub fn burst_window_micros(&self) -> u64 {
        self.emission_interval_micros()
            .saturating_mul(u64::from(self.limit.max(1)))
    }

    /// The period in microseconds.
    pub fn period_micros(&self) -> u64 {
        u64::try_from(self.period.as_micros())
            .unwrap_or(u64::MAX / 4)
            .max(1)
    }

    /// `RateLimit-Policy` value, e.g. `1000;w=3600`.
    pub fn policy_header(&self) -> String {
        format!("{};w={}", self.limit, self.period.as_secs())
    }
}

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraDecision {
    pub allowed: bool,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// When refused: how long until a request of this cost would be admitted.
    pub retry_after: Duration,
    /// How long until the quota is full again.
    pub reset_after: Duration,
}

/// The result of `decide`: the decision and, when admitted, the TAT to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraStep {
    pub decision: GcraDecision,
    pub new_tat: Option<u64>,
}

/// Decides one request of `cost` at time `now` (µs) given the stored TAT (µs), if any.
pub fn decide(quota: Quota, stored_tat: Option<u64>, now: u64, cost: u32) -> GcraStep {
    let interval = quota.emission_interval_micros();
    let window = quota.burst_window_micros();
    let tat = stored_tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    let allow_at = new_tat.saturating_sub(window);
    if now < allow_at {
        return GcraStep {
            decision: GcraDecision {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_micros(allow_at - now),
                reset_after: Duration::from_micros(tat - now),
            },
            new_tat: None,
        };
    }
    let used = new_tat - now;
    let remaining = (window.saturating_sub(used)) / interval;
    GcraStep {
        decision: GcraDecision {
            allowed: true,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            retry_after: Duration::ZERO,
            reset_after: Duration::from_micros(used),
        },
        new_tat: Some(new_tat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(quota: Quota, times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let step = decide(quota, tat, now, 1);
                if let Some(t) = step.new_tat {
                    tat = Some(t);
                }
                step.decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_full_burst_is_admitted_and_the_next_request_refused() {
        let quota = Quota::per_hour(100);
        let admitted = run(quota, &[1_000_000; 101]);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 100);
        assert!(!admitted[100]);
    }

    #[test]
    fn remaining_counts_down_to_zero() {
        let quota = Quota::per_minute(3);
        let mut tat = None;
        let mut seen = vec![];
        for _ in 0..3 {
            let step = decide(quota, tat, 5_000_000, 1);
            tat = step.new_tat;
            seen.push(step.decision.remaining);
        }
        assert_eq!(seen, vec![2, 1, 0]);
    }

    #[test]
    fn refusal_says_when_to_retry_and_that_moment_is_admitted() {
        let quota = Quota::per_minute(2);
        let now = 10_000_000;
        let a = decide(quota, None, now, 1);
        let b = decide(quota, a.new_tat, now, 1);
        let c = decide(quota, b.new_tat, now, 1);
        assert!(!c.decision.allowed);
        assert_eq!(c.decision.retry_after, Duration::from_secs(30));
        let just_before = decide(quota, b.new_tat, now + 29_999_999, 1);
        assert!(!just_before.decision.allowed);
        let at = decide(quota, b.new_tat, now + 30_000_000, 1);
        assert!(at.decision.allowed);
    }

    #[test]
    fn quota_refills_after_the_period() {
        let quota = Quota::per_minute(5);
        let mut tat = None;
        for _ in 0..5 {
            tat = decide(quota, tat, 0, 1).new_tat;
        }
        assert!(!decide(quota, tat, 0, 1).decision.allowed);
        let later = decide(quota, tat, 60_000_000, 1);
        assert!(later.decision.allowed);
        assert_eq!(later.decision.remaining, 4);
    }

    #[test]
    fn policy_header_names_limit_and_window() {
        assert_eq!(Quota::per_hour(1000).policy_header(), "1000;w=3600");
    }

    proptest! {
        /// From a fresh key, admissions never outrun the burst plus the sustained rate.
        #[test]
        fn admissions_never_outrun_burst_plus_rate(
            limit in 1u32..50,
            period_s in 1u64..120,
            gaps in proptest::collection::vec(0u64..3_000_000, 1..300),
        ) {
            let quota = Quota::new(limit, Duration::from_secs(period_s));
            let mut now = 1_000_000_000u64;
            let mut times = vec![];
            for g in gaps { now += g; times.push(now); }
            let start = times[0];
            let interval = quota.emission_interval_micros();
            let mut admitted = 0u64;
            for (t, allowed) in times.iter().zip(run(quota, &times)) {
                if allowed { admitted += 1; }
                prop_assert!(admitted <= u64::from(limit) + (t - start) / interval);
            }
        }

        /// Requests spaced at least one emission interval apart are always admitted.
        #[test]
        fn requests_at_the_sustained_rate_are_never_refused(limit in 1u32..1000, period_s in 1u64..3600, n in 1usize..200) {
            let quota = Quota::new(limit, Duration::from_secs(period_s));
            let interval = quota.emission_interval_micros();
            let times: Vec<u64> = (0..n as u64).map(|i| 5_000_000 + i * interval).collect();
            prop_assert!(run(quota, &times).into_iter().all(|a| a));
        }

        #[test]
        fn decide_never_panics(limit in 0u32..u32::MAX, period in 0u64..u64::MAX / 2, tat in proptest::option::of(0u64..u64::MAX), now in 0u64..u64::MAX, cost in 0u32..1000) {
            let _ = decide(Quota::new(limit, Duration::from_micros(period)), tat, now, cost);
        }
    }
}
