//! Security monitoring: the rules of `security::monitoring` applied to the events the service sees,
//! and what happens when one fires. Each occurrence is counted in the shared store, so every
//! instance counts toward the same threshold, and the occurrence that reaches it raises the alert
//! once per counted key and window: stored for the admin view, audited as `security.alert`, counted
//! in metrics, logged, mailed to the super_admins and posted to the security webhook if one is set.

use std::sync::Arc;
use std::time::Duration;

use security::KvStore;
use security::gcra::Quota;
use security::monitoring::{AUDIT_CHAIN_TAMPERED, AUDIT_CHAIN_VERIFICATION_FAILED};
use store::ops::AlertStep;

use super::audit::Event;
use super::{Identity, IdentityError, Principal, RequestMeta, now};
use crate::market::outbound::{Destinations, WebhookClient};

/// Seconds between two mails to the super_admins about one rule.
const ALERT_MAIL_EVERY_SECS: u64 = 600;
/// Security-webhook posts per rule, across instances: a botnet that raises thousands of alerts must
/// not turn the service into a flood aimed at the receiver (the admin view still lists them all).
const WEBHOOK_POSTS_PER_RULE: Quota = Quota::per_minute(20);
/// Deliveries in flight on one instance; beyond it a post is dropped and counted.
const WEBHOOK_IN_FLIGHT: usize = 16;
/// Waits before a failed security-webhook delivery is tried again; then it is given up (logged and
/// counted; the alert itself stays in the admin view).
const WEBHOOK_RETRY_AFTER: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

/// How an occurrence was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The n-th occurrence of its key in the current window.
    Counted(u64),
    /// A rule that fires on every occurrence (or an unknown rule): the occurrence was not counted.
    Uncounted,
    /// The shared store did not answer: not counted (logged).
    Unavailable,
}

/// The optional signed webhook that receives every security alert
/// (`TRADESIGNAL_SECURITY_WEBHOOK_URL` and `…_SECRET`), through the SSRF-safe webhook client.
pub struct AlertWebhook {
    client: WebhookClient,
    /// A secret too: hook URLs often carry a token in their path.
    url: secrecy::SecretString,
    secret: secrecy::SecretString,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl AlertWebhook {
    pub fn new(settings: &crate::config::Settings) -> Result<Option<Arc<Self>>, reqwest::Error> {
        let Some((url, secret)) = &settings.security_webhook else {
            return Ok(None);
        };
        let destinations = if settings.loopback_webhooks_for_tests {
            Destinations::PlainHttpLoopback
        } else {
            Destinations::Public
        };
        Ok(Some(Arc::new(Self {
            client: WebhookClient::new(destinations)?,
            url: url.clone(),
            secret: secret.clone(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(WEBHOOK_IN_FLIGHT)),
        })))
    }

    /// Posts one alert, retrying a few times; gives up with a log line and a metric.
    async fn deliver(&self, body: Vec<u8>) {
        use secrecy::ExposeSecret;
        let Ok(_permit) = self.in_flight.try_acquire() else {
            metrics::counter!("tradesignal_security_webhook_total", "status" => "dropped")
                .increment(1);
            tracing::warn!(
                "security webhook busy: an alert was not posted (it is in the admin view)"
            );
            return;
        };
        let mut waits = WEBHOOK_RETRY_AFTER.iter();
        loop {
            // Signed afresh on every attempt: receivers reject stale timestamps.
            let signature =
                market::webhook::sign(self.secret.expose_secret().as_bytes(), now(), &body);
            let attempt = self
                .client
                .deliver(self.url.expose_secret(), &signature, body.clone())
                .await;
            if attempt.succeeded() {
                metrics::counter!("tradesignal_security_webhook_total", "status" => "delivered")
                    .increment(1);
                return;
            }
            match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => {
                    metrics::counter!("tradesignal_security_webhook_total", "status" => "failed")
                        .increment(1);
                    tracing::error!(
                        error = attempt.error.as_deref().unwrap_or(""),
                        "security alert not delivered to the webhook"
                    );
                    return;
                }
            }
        }
    }
}

impl Identity {
    /// Counts one occurrence of `rule` for `key` (the thing counted: an account, a password's keyed
    /// hash, a credential, or everything); the occurrence that reaches the threshold raises the
    /// alert, with `subject` (never a secret) and `details`. A store failure is logged and skips the
    /// count.
    pub async fn observe(
        &self,
        rule: &'static str,
        key: &str,
        subject: Option<&str>,
        details: serde_json::Value,
        meta: &RequestMeta,
    ) -> Observed {
        let Some((severity, threshold)) = self.settings.alert_rules.get(rule) else {
            return Observed::Uncounted;
        };
        // A rule that fires on every occurrence needs no count (and must not lose one to a store
        // failure, or hide a second incident in the same window).
        if threshold.count == 1 {
            let details = serde_json::json!({"details": details});
            self.raise_alert(rule, severity, subject, details, meta)
                .await;
            return Observed::Uncounted;
        }
        let counter = format!("monitor:{rule}:{key}");
        match self.limiter.incr(&counter, threshold.window).await {
            Ok(count) => {
                if count == threshold.count {
                    let details = serde_json::json!({
                        "threshold": threshold.count,
                        "window_seconds": threshold.window.as_secs(),
                        "details": details,
                    });
                    self.raise_alert(rule, severity, subject, details, meta)
                        .await;
                }
                Observed::Counted(count)
            }
            Err(e) => {
                tracing::error!(rule, error = %e, "monitoring count unavailable");
                Observed::Unavailable
            }
        }
    }

    /// A session or API key (`credential`, e.g. `session:<id>`) used from the client network
    /// `bucket`, by `user_id`. Each new pair is counted toward `credential_many_ips`; pairs already
    /// seen on this instance within the window cost nothing, so the hot path stays free of store
    /// round trips, and the rest runs in the background.
    pub async fn note_credential_use(&self, credential: &str, user_id: &str, bucket: &str) {
        let Some((_, threshold)) = self.settings.alert_rules.get("credential_many_ips") else {
            return;
        };
        let pair = format!("{credential}|{bucket}");
        let new_here = self
            .seen_locally
            .set_if_absent(&pair, "1", threshold.window)
            .await
            .unwrap_or(true);
        if !new_here {
            return;
        }
        let meta = RequestMeta {
            client_bucket: Some(bucket.to_string()),
            ..RequestMeta::default()
        };
        let this = self.clone();
        let (credential, user_id) = (credential.to_string(), user_id.to_string());
        tokio::spawn(async move {
            let first_anywhere = this
                .limiter
                .set_if_absent(&format!("monitor:seen:{pair}"), "1", threshold.window)
                .await;
            match first_anywhere {
                Ok(true) => {
                    let details = serde_json::json!({"credential": credential});
                    this.observe(
                        "credential_many_ips",
                        &credential,
                        Some(&user_id),
                        details,
                        &meta,
                    )
                    .await;
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "monitoring count unavailable"),
            }
        });
    }

    /// A security alert: stored for the admin view, audited, logged, counted, and delivered to the
    /// super_admins and the security webhook in the background.
    pub async fn raise_alert(
        &self,
        rule: &'static str,
        severity: &'static str,
        subject: Option<&str>,
        details: serde_json::Value,
        meta: &RequestMeta,
    ) {
        let delivery = self
            .record_alert(rule, severity, subject, details, meta)
            .await;
        tokio::spawn(delivery);
    }

    /// The audit trail's end did not match its sealed head when records were appended: someone
    /// with database access removed or added rows, or replaced the head.
    pub async fn alert_audit_tampered(&self) {
        let details = serde_json::json!({
            "message": "the audit trail's end did not match its sealed head; run tradesignal audit verify"
        });
        self.raise_alert(
            AUDIT_CHAIN_TAMPERED,
            "critical",
            None,
            details,
            &RequestMeta::default(),
        )
        .await;
    }

    /// `tradesignal audit verify` found the chain broken at `broken`, and stored the alert as `id`
    /// itself (before anything that can fail): audited, mailed and posted, waiting for the delivery
    /// (the command exits right after).
    pub async fn announce_audit_verification_failed(&self, id: String, broken: &str) {
        let details = serde_json::json!({"broken": broken});
        self.announce_alert(
            Some(id),
            AUDIT_CHAIN_VERIFICATION_FAILED,
            "critical",
            None,
            details,
            &RequestMeta::default(),
            now(),
        )
        .await
        .await;
        self.flush_audit().await;
    }

    /// Stores, audits, logs and counts an alert; returns its delivery (mail and webhook) to run.
    async fn record_alert(
        &self,
        rule: &'static str,
        severity: &'static str,
        subject: Option<&str>,
        details: serde_json::Value,
        meta: &RequestMeta,
    ) -> impl Future<Output = ()> + Send + 'static {
        tracing::error!(
            alert = rule,
            severity,
            subject = subject.unwrap_or(""),
            "security alert"
        );
        metrics::counter!("tradesignal_security_alerts_total", "rule" => rule).increment(1);
        let raised_at = now();
        let id = match self
            .db
            .insert_security_alert(rule, severity, subject, &details, raised_at)
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, "security alert not stored");
                None
            }
        };
        self.announce_alert(id, rule, severity, subject, details, meta, raised_at)
            .await
    }

    /// Audits a stored alert (`id`) and returns its delivery (mail and webhook) to run.
    #[allow(clippy::too_many_arguments)]
    async fn announce_alert(
        &self,
        id: Option<String>,
        rule: &'static str,
        severity: &'static str,
        subject: Option<&str>,
        details: serde_json::Value,
        meta: &RequestMeta,
        raised_at: i64,
    ) -> impl Future<Output = ()> + Send + 'static {
        let mut event = Event::failure("security.alert").details(serde_json::json!({
            "rule": rule,
            "severity": severity,
            "alert_id": id,
            "details": details,
        }));
        if let Some(subject) = subject {
            event = event.subject(subject);
        }
        self.audit(event, meta).await;
        let this = self.clone();
        let webhook_body = serde_json::json!({
            "type": "security.alert",
            "id": id,
            "rule": rule,
            "severity": severity,
            "subject": subject,
            "raised_at": crate::api::responses::rfc3339(raised_at),
        });
        async move {
            let webhook = async {
                let Some(webhook) = &this.alert_webhook else {
                    return;
                };
                let allowed = this
                    .limiter
                    .gcra(&format!("alerthook:{rule}"), WEBHOOK_POSTS_PER_RULE, 1)
                    .await
                    // A store that cannot answer does not silence a security alert.
                    .map_or(true, |decision| decision.allowed);
                if allowed {
                    webhook.deliver(webhook_body.to_string().into_bytes()).await;
                } else {
                    metrics::counter!("tradesignal_security_webhook_total", "status" => "suppressed")
                        .increment(1);
                }
            };
            tokio::join!(this.mail_super_admins(rule, severity), webhook);
        }
    }

    /// Tells every super_admin about an alert: at most one mail per rule every ten minutes (across
    /// instances), however many alerts a botnet triggers; the admin view lists them all.
    async fn mail_super_admins(&self, rule: &'static str, severity: &'static str) {
        let first = self
            .limiter
            .set_if_absent(
                &format!("alertmail:{rule}"),
                "1",
                Duration::from_secs(ALERT_MAIL_EVERY_SECS),
            )
            .await
            // A store that cannot answer does not silence a security alert.
            .unwrap_or(true);
        if !first {
            return;
        }
        match self.db.super_admin_emails().await {
            Ok(addresses) => {
                for to in addresses {
                    let email = self.security_alert_email(&to, rule, severity);
                    if let Err(e) = self.mailer.send(email).await {
                        tracing::error!(error = %e, "security alert email not sent");
                        metrics::counter!("tradesignal_mail_failures_total").increment(1);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "super_admins not told about an alert"),
        }
    }

    /// `POST /admin/security/alerts/{id}/acknowledge` and `…/resolve`, audited.
    pub async fn advance_alert(
        &self,
        staff: &Principal,
        id: &str,
        step: AlertStep,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        if !self
            .db
            .advance_security_alert(id, &staff.user_id, now(), step)
            .await?
        {
            return Err(IdentityError::NotFound);
        }
        let event = match step {
            AlertStep::Acknowledge => "admin.alert.acknowledged",
            AlertStep::Resolve => "admin.alert.resolved",
        };
        self.audit(
            Event::success(event)
                .actor(&staff.user_id)
                .details(serde_json::json!({"alert_id": id})),
            meta,
        )
        .await;
        Ok(())
    }
}
