//! The audit trail: append-only (triggers refuse UPDATE and DELETE) and hash-chained — each row's `hash`
//! covers its content and the previous row's hash, so removing or editing a row breaks the chain. Writers
//! are serialised (an advisory lock on PostgreSQL, a process-wide lock on SQLite) so the chain stays
//! linear across concurrent requests and instances.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Any;

use crate::db::{Backend, Database, StoreError};

/// The hash the first record chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Arbitrary, fixed key of the PostgreSQL advisory lock guarding the chain.
const CHAIN_LOCK: i64 = 0x7472_6164_6573_6967;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One event as the caller describes it; `details` must hold no secrets (callers pass ids, not values).
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub event: String,
    pub outcome: AuditOutcome,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    pub session_id: Option<String>,
    pub api_key_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// The hashed content of a row: fixed field order, so the hash is reproducible by `audit verify`.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a str,
    ts: i64,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// The chain hash of a record given its predecessor's.
pub fn chain_hash(prev_hash: &str, id: &str, ts: i64, event: &AuditEvent) -> String {
    let body = serde_json::to_string(&Hashed { id, ts, event }).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.as_bytes());
    hex::encode(hasher.finalize())
}

impl Database {
    /// Appends one event to the chain.
    pub async fn append_audit(&self, event: &AuditEvent, ts: i64) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let _local = self.audit_lock().lock().await;
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(CHAIN_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let prev: Option<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let prev_hash = prev.map_or_else(|| GENESIS.to_string(), |(h,)| h);
        let hash = chain_hash(&prev_hash, &id, ts, event);
        sqlx::query::<Any>(
            "INSERT INTO audit_events (id, ts, event, outcome, actor_id, subject, session_id, api_key_id, ip, \
             user_agent, request_id, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&id)
        .bind(ts)
        .bind(&event.event)
        .bind(event.outcome.as_str())
        .bind(&event.actor_id)
        .bind(&event.subject)
        .bind(&event.session_id)
        .bind(&event.api_key_id)
        .bind(&event.ip)
        .bind(&event.user_agent)
        .bind(&event.request_id)
        .bind(event.details.to_string())
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Names of recorded events, oldest first, optionally for one subject (tests and admin views).
    pub async fn audit_event_names(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT event FROM audit_events WHERE ($1 IS NULL OR subject = $1) ORDER BY seq",
        )
        .bind(subject)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }
}
