//! The audit trail: append-only (triggers refuse UPDATE and DELETE) and sealed in a chain — each row's
//! `hash` is an HMAC under a data-ring key over its content and the previous row's `hash`
//! (`security::audit_chain`), and a sealed head names the newest row, so editing, removing, adding or
//! moving a row breaks the chain. Writers are serialised (an advisory lock on PostgreSQL, a
//! process-wide lock on SQLite) so the chain has one order across concurrent requests and instances.

use security::audit_chain;
use security::keyed_hash::KeyedHasher;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use crate::db::{Backend, Database, StoreError};
use crate::sql::Sql;

/// Arbitrary, fixed key of the PostgreSQL advisory lock guarding the chain.
pub(crate) const CHAIN_LOCK: i64 = 0x7472_6164_6573_6967;

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

/// The sealed content of a row: fixed field order, so `audit verify` reproduces it from the stored row.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a str,
    ts: i64,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// The canonical encoding of a record, as sealed.
pub fn canonical(id: &str, ts: i64, event: &AuditEvent) -> Vec<u8> {
    serde_json::to_vec(&Hashed { id, ts, event }).unwrap_or_default()
}

/// A stored record with its place in the chain.
#[derive(Debug, Clone)]
pub struct StoredAudit {
    pub seq: i64,
    pub id: String,
    pub ts: i64,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredAudit {
    pub fn canonical(&self) -> Vec<u8> {
        canonical(&self.id, self.ts, &self.event)
    }
}

/// What an append wrote, and whether it found the trail's end tampered with.
#[derive(Debug)]
pub struct Appended {
    pub ids: Vec<String>,
    /// The stored end did not match the sealed head (rows removed or added, or the head changed).
    pub tampered: bool,
}

/// Filters of the admin audit view and export; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    /// Inclusive, unix seconds.
    pub since: Option<i64>,
    /// Inclusive, unix seconds.
    pub until: Option<i64>,
}

/// The columns `stored` reads, spelled out in each statement (SQL is never assembled at run time).
macro_rules! audit_columns {
    () => {
        "seq, id, ts, event, outcome, actor_id, subject, session_id, api_key_id, ip, user_agent, \
         request_id, details, prev_hash, hash"
    };
}

/// `FROM … WHERE …` of the admin view and export, with a condition for each filter that is set
/// and nothing for the others. (`$1 IS NULL OR event = $1` would be one statement for every
/// combination, but its plan could not use the event or subject index: PostgreSQL connections here
/// plan once per statement, see `Database::connect`.)
fn push_audit_filter(sql: &mut Sql, filter: &AuditFilter) {
    sql.push(" FROM audit_events WHERE 1 = 1");
    if let Some(event) = &filter.event {
        sql.push(" AND event = ").bind(event.clone());
    }
    if let Some(actor_id) = &filter.actor_id {
        sql.push(" AND actor_id = ").bind(actor_id.clone());
    }
    if let Some(subject) = &filter.subject {
        sql.push(" AND subject = ").bind(subject.clone());
    }
    if let Some(since) = filter.since {
        sql.push(" AND ts >= ").bind(since);
    }
    if let Some(until) = filter.until {
        sql.push(" AND ts <= ").bind(until);
    }
}

fn stored(row: &AnyRow) -> Result<StoredAudit, StoreError> {
    let outcome: String = row.try_get("outcome")?;
    let details: String = row.try_get("details")?;
    Ok(StoredAudit {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        ts: row.try_get("ts")?,
        event: AuditEvent {
            event: row.try_get("event")?,
            outcome: if outcome == "success" {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            actor_id: row.try_get("actor_id")?,
            subject: row.try_get("subject")?,
            session_id: row.try_get("session_id")?,
            api_key_id: row.try_get("api_key_id")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
            request_id: row.try_get("request_id")?,
            // Stored as written, so reading it back reproduces the sealed encoding; text that is not
            // JSON stays a string and then fails verification, as it should.
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Database {
    /// Appends events in order in one transaction: one lock, one read of the chain's end and one head
    /// update for the batch. Writers are serialised, so the chain has one order across every instance.
    pub async fn append_audit_batch(
        &self,
        events: &[(AuditEvent, i64)],
        sealer: &KeyedHasher,
    ) -> Result<Appended, StoreError> {
        let mut tampered = false;
        if events.is_empty() {
            return Ok(Appended {
                ids: Vec::new(),
                tampered,
            });
        }
        let _local = self.audit_lock().lock().await;
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(CHAIN_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let last: Option<(i64, String)> = sqlx::query_as::<Any, (i64, String)>(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let head: Option<(i64, String, String)> = sqlx::query_as::<Any, (i64, String, String)>(
            "SELECT seq, hash, head_seal FROM audit_chain_head WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut prev_hash = match audit_chain::trusted_end(
            sealer,
            last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
            head.as_ref()
                .map(|(seq, hash, seal)| (*seq, hash.as_str(), seal.as_str())),
        ) {
            Ok(end) => end,
            Err(end) => {
                // Someone changed the trail's end behind the service: keep writing, linked so that
                // `audit verify` names the first new record.
                tampered = true;
                tracing::error!(
                    alert = "audit_chain_tampered",
                    "the audit trail's end does not match its sealed head; new records are linked to the head"
                );
                end
            }
        };
        let mut ids = Vec::with_capacity(events.len());
        let mut last_seq = 0;
        for (event, ts) in events {
            let id = uuid::Uuid::now_v7().to_string();
            let hash = audit_chain::seal(sealer, &prev_hash, &canonical(&id, *ts, event));
            let (seq,): (i64,) = sqlx::query_as::<Any, (i64,)>(
                "INSERT INTO audit_events (id, ts, event, outcome, actor_id, subject, session_id, api_key_id, ip, \
                 user_agent, request_id, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq",
            )
            .bind(&id)
            .bind(*ts)
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
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
            last_seq = seq;
            prev_hash = hash;
        }
        sqlx::query::<Any>(
            "INSERT INTO audit_chain_head (id, seq, hash, head_seal) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, head_seal = excluded.head_seal",
        )
        .bind(last_seq)
        .bind(&prev_hash)
        .bind(audit_chain::seal_head(sealer, last_seq, &prev_hash))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Appended { ids, tampered })
    }

    /// Up to `limit` records after position `after_seq`, in chain order.
    pub async fn audit_page(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        let rows = sqlx::query::<Any>(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(stored).collect()
    }

    /// Where a walk from time `ts` starts: the position before the first record at or after it and
    /// that record's `prev_hash`.
    pub async fn audit_anchor_since(&self, ts: i64) -> Result<Option<(i64, String)>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as::<Any, (i64, String)>(
            "SELECT seq, prev_hash FROM audit_events WHERE ts >= $1 ORDER BY seq LIMIT 1",
        )
        .bind(ts)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(seq, prev)| (seq - 1, prev)))
    }

    /// The chain head: (seq, hash, head_seal) of the newest record, if any record was sealed.
    pub async fn audit_head(&self) -> Result<Option<(i64, String, String)>, StoreError> {
        Ok(sqlx::query_as::<Any, (i64, String, String)>(
            "SELECT seq, hash, head_seal FROM audit_chain_head WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await?)
    }

    /// A page of records matching `filter`, newest first, and how many match.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<StoredAudit>, i64), StoreError> {
        let mut count = Sql::new("SELECT COUNT(*)");
        push_audit_filter(&mut count, filter);
        let (text, args) = count.finish()?;
        let total = sqlx::query_scalar_with::<Any, i64, _>(text, args)
            .fetch_one(self.pool())
            .await?;
        let mut page = Sql::new(concat!("SELECT ", audit_columns!()));
        push_audit_filter(&mut page, filter);
        page.push(" ORDER BY seq DESC LIMIT ")
            .push_count(limit)
            .push(" OFFSET ")
            .bind(offset);
        let (text, args) = page.finish()?;
        let rows = sqlx::query_with::<Any, _>(text, args)
            .fetch_all(self.pool())
            .await?;
        Ok((rows.iter().map(stored).collect::<Result<_, _>>()?, total))
    }

    /// Names of recorded events, oldest first, optionally for one subject (tests and admin views).
    pub async fn audit_event_names(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = match subject {
            Some(subject) => {
                sqlx::query_as::<Any, (String,)>(
                    "SELECT event FROM audit_events WHERE subject = $1 ORDER BY seq",
                )
                .bind(subject)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as::<Any, (String,)>("SELECT event FROM audit_events ORDER BY seq")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }
}
