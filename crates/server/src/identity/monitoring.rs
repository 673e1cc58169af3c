//! Security monitoring: the rules of `security::monitoring` applied to the events the service sees.
//! Each occurrence is counted in the shared store, so every instance counts toward the same threshold,
//! and the occurrence that reaches it raises the alert: stored, audited, counted and logged, once per
//! counted key and window.

use store::ops::AlertStep;

use super::audit::Event;
use super::{Identity, IdentityError, Principal, RequestMeta, now};

impl Identity {
    /// Counts one occurrence of `rule` for `key` (the thing counted: an account, a password's keyed
    /// hash, or everything); the occurrence that reaches the threshold raises the alert, with `subject`
    /// (never a secret) and `details`. A store failure is logged and skips the count.
    pub async fn observe(
        &self,
        rule: &'static str,
        key: &str,
        subject: Option<&str>,
        details: serde_json::Value,
        meta: &RequestMeta,
    ) {
        let Some((severity, threshold)) = self.settings.alert_rules.get(rule) else {
            return;
        };
        // A rule that fires on every occurrence needs no count (and must not lose one to a store
        // failure, or hide a second incident in the same window).
        if threshold.count == 1 {
            let details = serde_json::json!({"details": details});
            self.raise_alert(rule, severity, subject, details, meta)
                .await;
            return;
        }
        let counter = format!("monitor:{rule}:{key}");
        match self.limiter.incr(&counter, threshold.window).await {
            Ok(count) if count == threshold.count => {
                let details = serde_json::json!({
                    "threshold": threshold.count,
                    "window_seconds": threshold.window.as_secs(),
                    "details": details,
                });
                self.raise_alert(rule, severity, subject, details, meta)
                    .await;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(rule, error = %e, "monitoring count unavailable"),
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
