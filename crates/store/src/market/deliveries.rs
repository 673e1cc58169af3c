//! The delivery queue of alert matches (`alert_deliveries`): claiming due deliveries with a lease so
//! two instances never send the same one, and recording each attempt's outcome.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

/// A due delivery with everything needed to send it.
#[derive(Clone, FromRow)]
pub struct DeliveryJob {
    pub id: String,
    pub alert_id: String,
    pub trade_id: String,
    pub channel: String,
    pub attempts: i64,
    pub alert_name: String,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub user_email: String,
    pub user_tier: String,
}

impl std::fmt::Debug for DeliveryJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryJob")
            .field("id", &self.id)
            .field("alert_id", &self.alert_id)
            .field("channel", &self.channel)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    /// `delivered`, `failed` (given up) or `pending` (retry at `next_attempt_at`).
    pub status: &'static str,
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_at: i64,
    pub now: i64,
}

impl Database {
    /// Claims up to `limit` due deliveries for `lease_secs` (a crashed worker's claim expires and
    /// the delivery is retried). At most `per_user` deliveries of one user are picked per call, so
    /// one user's flood (many alerts, a slow endpoint) cannot crowd out everyone else's; the rest
    /// wait for the next pass. Deliveries of disabled users are never picked.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        per_user: i64,
        lease_secs: i64,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let candidates: Vec<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT id FROM ( \
               SELECT d.id, d.next_attempt_at, \
               ROW_NUMBER() OVER (PARTITION BY a.user_id ORDER BY d.next_attempt_at, d.id) AS user_turn \
               FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
               JOIN users u ON u.id = a.user_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
               AND (d.claimed_until IS NULL OR d.claimed_until < $1) AND u.disabled_at IS NULL \
             ) due WHERE user_turn <= $3 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .bind(per_user)
        .fetch_all(self.pool())
        .await?;
        let mut jobs = Vec::new();
        for (id,) in candidates {
            let claimed = sqlx::query::<Any>(
                "UPDATE alert_deliveries SET claimed_until = $1 WHERE id = $2 AND status = 'pending' \
                 AND (claimed_until IS NULL OR claimed_until < $3)",
            )
            .bind(now + lease_secs)
            .bind(&id)
            .bind(now)
            .execute(self.pool())
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            let job = sqlx::query_as::<Any, DeliveryJob>(
                "SELECT d.id, d.alert_id, d.trade_id, d.channel, d.attempts, a.name AS alert_name, \
                 a.webhook_url, a.webhook_secret, u.email AS user_email, u.tier AS user_tier \
                 FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id JOIN users u ON u.id = a.user_id \
                 WHERE d.id = $1 AND u.disabled_at IS NULL",
            )
            .bind(&id)
            .fetch_optional(self.pool())
            .await?;
            if let Some(job) = job {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// Records an attempt and releases the claim, unless the claim has passed to another worker
    /// (then that worker's outcome counts).
    /// `claimed_until` is the lease this worker took.
    pub async fn record_delivery(
        &self,
        id: &str,
        outcome: &DeliveryOutcome,
        claimed_until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE alert_deliveries SET status = $1, attempts = attempts + 1, response_status = $2, \
             last_error = $3, next_attempt_at = $4, claimed_until = NULL, \
             delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END \
             WHERE id = $6 AND claimed_until = $7",
        )
        .bind(outcome.status)
        .bind(outcome.response_status)
        .bind(&outcome.error)
        .bind(outcome.next_attempt_at)
        .bind(outcome.now)
        .bind(id)
        .bind(claimed_until)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
