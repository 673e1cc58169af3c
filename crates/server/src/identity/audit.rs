//! The one function every security event is written through. Events go to the audit queue (written in
//! batches off the request path); when it is full they are written within the request. Audit failures
//! are logged and counted but never fail the user's request: the operation already happened.

use store::identity::{AuditEvent, AuditOutcome};

use super::{Identity, RequestMeta, now};

/// What happened, to whom, by whom.
pub struct Event<'a> {
    pub name: &'static str,
    pub outcome: AuditOutcome,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub session: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn success(name: &'static str) -> Self {
        Self {
            name,
            outcome: AuditOutcome::Success,
            actor: None,
            subject: None,
            session: None,
            api_key: None,
            details: serde_json::json!({}),
        }
    }

    pub fn failure(name: &'static str) -> Self {
        Self {
            outcome: AuditOutcome::Failure,
            ..Self::success(name)
        }
    }

    pub fn actor(mut self, id: &'a str) -> Self {
        self.actor = Some(id);
        self
    }

    pub fn subject(mut self, id: &'a str) -> Self {
        self.subject = Some(id);
        self
    }

    pub fn session(mut self, id: &'a str) -> Self {
        self.session = Some(id);
        self
    }

    pub fn api_key(mut self, id: &'a str) -> Self {
        self.api_key = Some(id);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

impl Identity {
    pub async fn audit(&self, event: Event<'_>, meta: &RequestMeta) {
        let record = AuditEvent {
            event: event.name.to_string(),
            outcome: event.outcome,
            actor_id: event.actor.map(str::to_string),
            subject: event.subject.map(str::to_string),
            session_id: event.session.map(str::to_string),
            api_key_id: event.api_key.map(str::to_string),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            request_id: meta.request_id.clone(),
            details: event.details,
        };
        metrics::counter!("tradesignal_audit_events_total", "event" => event.name, "outcome" => event.outcome.as_str())
            .increment(1);
        let ts = now();
        let record = match &self.audit_queue {
            None => record,
            Some(queue) => match queue.enqueue(Box::new(record), ts) {
                Ok(()) => return,
                Err(back) => {
                    metrics::counter!("tradesignal_audit_queue_full_total").increment(1);
                    tracing::error!(
                        alert = "audit_queue_full",
                        event = event.name,
                        "audit queue full: writing within the request"
                    );
                    *back
                }
            },
        };
        match self
            .db
            .append_audit_batch(&[(record, ts)], &self.audit_sealer)
            .await
        {
            Ok(appended) if appended.tampered => self.audit_tampered.notify_one(),
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("tradesignal_audit_failures_total").increment(1);
                tracing::error!(event = event.name, error = %e, "audit event not recorded");
            }
        }
    }

    /// Returns once every audit event queued so far is written (shutdown, and tests reading the trail).
    pub async fn flush_audit(&self) {
        if let Some(queue) = &self.audit_queue {
            queue.flush().await;
        }
    }
}
