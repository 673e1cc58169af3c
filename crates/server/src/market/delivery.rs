//! Delivering alert matches. Ingest records a pending delivery per (alert, trade) in the same
//! transaction as the trade, so nothing is lost if the process stops; this worker claims due
//! deliveries (a lease keeps two instances from sending one twice), sends them by email or signed
//! webhook, and records the outcome, retrying failed webhooks with backoff.

use std::sync::Arc;
use std::time::Duration;

use store::mail::Email;
use store::market::deliveries::{DeliveryJob, DeliveryOutcome};

use super::alerts::secret_aad;
use super::views::trade_body;
use super::{MarketService, tiers};

/// How often the worker looks for due deliveries.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Deliveries claimed per pass.
const BATCH: i64 = 50;
/// Deliveries of one user claimed per pass: a fair share, so one user's backlog waits behind
/// everyone else's next delivery instead of filling the pass.
pub const PER_USER: i64 = 10;
/// A claim outlives the slowest attempt (`ATTEMPT_TIMEOUT`) many times over, so a delivery is never
/// sent by two instances.
const LEASE_SECS: i64 = 300;
/// Every attempt (webhook or email through a slow SMTP server) ends within this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `shutdown` resolves.
pub async fn run(service: Arc<MarketService>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match deliver_due(&service, now).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(deliveries = sent, "alert deliveries attempted"),
            Err(e) => tracing::warn!(error = %e, "alert delivery pass failed"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// One pass: attempts every due delivery once. Returns how many were attempted.
pub async fn deliver_due(service: &MarketService, now: i64) -> Result<usize, store::StoreError> {
    let jobs = service
        .db
        .claim_due_deliveries(now, BATCH, PER_USER, LEASE_SECS)
        .await?;
    let count = jobs.len();
    // Deliveries go out concurrently so one slow endpoint does not hold up the rest.
    let attempts = jobs.into_iter().map(|job| async move {
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(service, &job, now)).await {
            Ok(outcome) => outcome,
            Err(_) => failure(&job, now, None, "the attempt timed out".into()),
        };
        metrics::counter!("tradesignal_alert_deliveries_total", "channel" => job.channel.clone(), "status" => outcome.status).increment(1);
        if let Err(e) = service.db.record_delivery(&job.id, &outcome, now + LEASE_SECS).await {
            tracing::warn!(delivery = %job.id, error = %e, "could not record an alert delivery");
        }
    });
    futures::future::join_all(attempts).await;
    Ok(count)
}

fn failure(job: &DeliveryJob, now: i64, status: Option<u16>, error: String) -> DeliveryOutcome {
    let attempts_after = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
    match market::webhook::retry_delay(attempts_after) {
        Some(delay) => DeliveryOutcome {
            status: "pending",
            response_status: status.map(i64::from),
            error: Some(error),
            next_attempt_at: now + i64::try_from(delay.as_secs()).unwrap_or(i64::MAX / 2),
            now,
        },
        _ => DeliveryOutcome {
            status: "failed",
            response_status: status.map(i64::from),
            error: Some(error),
            next_attempt_at: now,
            now,
        },
    }
}

async fn attempt(service: &MarketService, job: &DeliveryJob, now: i64) -> DeliveryOutcome {
    let trade = match service.db.trade(&job.trade_id).await {
        Ok(Some(trade)) => trade,
        Ok(None) => {
            return DeliveryOutcome {
                status: "failed",
                response_status: None,
                error: Some("the trade was superseded by an amendment".into()),
                next_attempt_at: now,
                now,
            };
        }
        Err(e) => {
            tracing::warn!(delivery = %job.id, error = %e, "cannot load the trade of a delivery");
            return failure(
                job,
                now,
                None,
                "a temporary internal error; will retry".into(),
            );
        }
    };
    let owners = service
        .db
        .owners_of_filings(&[trade.filing_id.as_str()])
        .await
        .map(|mut m| m.remove(&trade.filing_id).unwrap_or_default())
        .unwrap_or_default();
    let body = trade_body(trade, &owners);
    match job.channel.as_str() {
        "email" => {
            let email = alert_email(service, job, &body);
            match service.mailer.send(email).await {
                Ok(()) => delivered(now, None),
                Err(e) => {
                    tracing::warn!(delivery = %job.id, error = %e, "alert email failed");
                    failure(job, now, None, "the email could not be sent".into())
                }
            }
        }
        "webhook" => {
            if !tiers::webhooks_allowed(
                job.user_tier.parse().unwrap_or(security::authz::Tier::Free),
            ) {
                return DeliveryOutcome {
                    status: "failed",
                    response_status: None,
                    error: Some("webhook delivery needs the Pro plan".into()),
                    next_attempt_at: now,
                    now,
                };
            }
            let (Some(url), Some(sealed)) = (&job.webhook_url, &job.webhook_secret) else {
                return failure(job, now, None, "the alert has no webhook".into());
            };
            let secret = match service.cipher().decrypt(sealed, &secret_aad(&job.alert_id)) {
                Ok(secret) => secret,
                Err(e) => {
                    tracing::error!(alert = %job.alert_id, error = %e, "cannot open a webhook secret");
                    return failure(job, now, None, "the webhook secret cannot be read".into());
                }
            };
            let payload = serde_json::json!({
                "event": "alert.triggered",
                "delivery_id": job.id,
                "alert": { "id": job.alert_id, "name": job.alert_name },
                "trade": body,
                "sent_at": crate::api::responses::rfc3339(now),
            });
            let bytes = match serde_json::to_vec(&payload) {
                Ok(bytes) => crate::http::json::html_safe_json(&bytes),
                Err(e) => {
                    tracing::error!(delivery = %job.id, error = %e, "cannot encode a webhook payload");
                    return failure(job, now, None, "an internal error".into());
                }
            };
            let signature = market::webhook::sign(&secret, now, &bytes);
            let result = service.webhooks.deliver(url, &signature, bytes).await;
            if result.succeeded() {
                delivered(now, result.status)
            } else {
                failure(
                    job,
                    now,
                    result.status,
                    result.error.unwrap_or_else(|| "delivery failed".into()),
                )
            }
        }
        other => failure(job, now, None, format!("unknown channel {other}")),
    }
}

fn delivered(now: i64, status: Option<u16>) -> DeliveryOutcome {
    DeliveryOutcome {
        status: "delivered",
        response_status: status.map(i64::from),
        error: None,
        next_attempt_at: now,
        now,
    }
}

fn alert_email(
    service: &MarketService,
    job: &DeliveryJob,
    trade: &super::views::TradeBody,
) -> Email {
    let amount = match (&trade.value, &trade.price_per_share) {
        (Some(value), Some(price)) => format!("{} shares at ${price} (${value})", trade.shares),
        _ => format!("{} shares", trade.shares),
    };
    let ticker = trade.company.ticker.as_deref().unwrap_or("-");
    Email {
        to: job.user_email.clone(),
        subject: format!("TradeSignal alert: {}", job.alert_name),
        body: format!(
            "Your alert \"{}\" matched a new insider trade:\n\n\
             {} ({ticker}) — {} (CIK {})\n\
             Code {} ({}) on {}: {amount}\n\n\
             Details: {}\n\n\
             You receive this because of an alert on your TradeSignal account; manage alerts at {}.",
            job.alert_name,
            trade.company.name,
            trade.insider.name,
            trade.insider.cik,
            trade.code,
            trade.acquired_disposed,
            trade.transaction_date,
            service
                .settings
                .public_link(&format!("/trades?ticker={ticker}")),
            service.settings.public_link("/alerts"),
        ),
    }
}
