//! How many second-factor codes an account may have checked. The count is per account — not per
//! login attempt, address or device — and each check is reserved before the code is compared, so
//! neither many `mfa_token`s, nor many addresses, nor requests racing each other, nor a collection of
//! device cookies buys more guesses. Every `failures_per_block` consecutive failures pause checks,
//! for `first_block` and twice as long each further time (at most `max_block`); a correct code resets
//! the count.
//!
//! A 6-digit code with a ±1 step window is guessed with probability 3/10^6 per try. With the
//! defaults an attacker who holds the password gets 5 tries, then waits 15 min, 30 min, 1 h … 24 h:
//! about 60 tries in the first week, a chance of roughly 2 in 10,000.

use std::time::Duration;

/// The policy; defaults as above.
#[derive(Debug, Clone, Copy)]
pub struct FactorThrottle {
    pub failures_per_block: i64,
    pub first_block: Duration,
    pub max_block: Duration,
}

impl Default for FactorThrottle {
    fn default() -> Self {
        Self {
            failures_per_block: 5,
            first_block: Duration::from_secs(15 * 60),
            max_block: Duration::from_secs(24 * 3600),
        }
    }
}

impl FactorThrottle {
    /// The pause that starts once `failures` consecutive checks have failed (this one included), if
    /// it completes a block.
    pub fn pause_after(&self, failures: i64) -> Option<Duration> {
        if failures <= 0 || self.failures_per_block <= 0 || failures % self.failures_per_block != 0
        {
            return None;
        }
        let blocks = failures / self.failures_per_block;
        let doublings = u32::try_from(blocks - 1).unwrap_or(u32::MAX).min(16);
        Some(
            self.first_block
                .saturating_mul(1 << doublings)
                .min(self.max_block),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_failure_pauses_for_longer() {
        let throttle = FactorThrottle::default();
        for failures in [0, 1, 2, 3, 4, 6, 9, 11] {
            assert_eq!(throttle.pause_after(failures), None, "{failures}");
        }
        let minutes = |f| throttle.pause_after(f).map(|d| d.as_secs() / 60);
        assert_eq!(minutes(5), Some(15));
        assert_eq!(minutes(10), Some(30));
        assert_eq!(minutes(15), Some(60));
        assert_eq!(minutes(40), Some(24 * 60), "capped at a day");
        assert_eq!(minutes(5 * 1000), Some(24 * 60), "no overflow");
    }
}
