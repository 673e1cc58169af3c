//! What each plan may see and keep: the free tier's history window and the alert allowances
//! (API.md "Market data" and "Watchlists and alerts"). Enforced on the server, never trusted from
//! a client.

use market::form4::Date;
use security::authz::Tier;

/// Days of trade history the free tier sees, counted back from today (UTC).
pub const FREE_HISTORY_DAYS: i64 = 90;

/// The first transaction date `tier` may see, or `None` for the full history.
pub fn history_start(tier: Tier, today: time::Date) -> Option<Date> {
    match tier {
        Tier::Free => {
            let start = today.saturating_sub(time::Duration::days(FREE_HISTORY_DAYS));
            to_market_date(start)
        }
        Tier::Pro | Tier::Enterprise => None,
    }
}

/// Today's date in UTC.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

pub fn to_market_date(date: time::Date) -> Option<Date> {
    let year = u16::try_from(date.year()).ok()?;
    Date::new(year, u8::from(date.month()), date.day())
}

/// How many alerts a user of `tier` may keep.
pub fn alert_limit(tier: Tier) -> i64 {
    match tier {
        Tier::Free => 3,
        Tier::Pro => 50,
        Tier::Enterprise => 500,
    }
}

/// Whether `tier` may deliver alerts to webhooks (free: email only).
pub fn webhooks_allowed(tier: Tier) -> bool {
    tier != Tier::Free
}

/// How many watchlists a user may keep, whatever the plan (a bound on stored data).
pub const WATCHLIST_LIMIT: i64 = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn free_sees_ninety_days() {
        assert_eq!(
            history_start(Tier::Free, date!(2026 - 11 - 29)),
            Date::new(2026, 8, 31)
        );
        assert_eq!(history_start(Tier::Pro, date!(2026 - 11 - 29)), None);
        assert_eq!(history_start(Tier::Enterprise, date!(2026 - 11 - 29)), None);
    }

    #[test]
    fn allowances() {
        assert_eq!(alert_limit(Tier::Free), 3);
        assert_eq!(alert_limit(Tier::Pro), 50);
        assert!(!webhooks_allowed(Tier::Free));
        assert!(webhooks_allowed(Tier::Pro));
    }
}
