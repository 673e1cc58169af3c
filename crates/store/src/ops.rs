//! Operational records: Content-Security-Policy violation reports sent by browsers, one row per
//! distinct violation with its count, capped and aged out.

use sqlx::Any;

use crate::db::{Database, StoreError};

/// What became of a CSP violation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CspOutcome {
    Stored,
    /// The same violation is stored already: its count went up.
    Repeat,
    /// New, but the table is at its cap: dropped.
    OverCap,
}

/// One CSP violation as stored; fields are already length-limited by the caller.
#[derive(Debug, Clone)]
pub struct CspReport {
    pub id: String,
    pub received_at: i64,
    pub document_uri: Option<String>,
    pub violated_directive: Option<String>,
    pub blocked_uri: Option<String>,
    pub client_ip: Option<String>,
    pub report: String,
}

/// What staff do with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStep {
    Acknowledge,
    Resolve,
}

/// A monitoring alert as the admin API lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecurityAlert {
    pub id: String,
    pub ts: i64,
    pub rule: String,
    pub severity: String,
    pub subject: Option<String>,
    pub details: String,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

impl Database {
    pub async fn insert_security_alert(
        &self,
        rule: &str,
        severity: &str,
        subject: Option<&str>,
        details: &serde_json::Value,
        ts: i64,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query::<Any>(
            "INSERT INTO security_alerts (id, ts, rule, severity, subject, details) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(ts)
        .bind(rule)
        .bind(severity)
        .bind(subject)
        .bind(details.to_string())
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Moves an alert on (`Acknowledge`, or `Resolve`, which also acknowledges it if it was not); the
    /// first acknowledgement and resolution are kept. False when there is no such alert, or when it is
    /// about `by` (nobody clears an alert about themselves).
    pub async fn advance_security_alert(
        &self,
        id: &str,
        by: &str,
        ts: i64,
        step: AlertStep,
    ) -> Result<bool, StoreError> {
        let sql = match step {
            AlertStep::Acknowledge => {
                "UPDATE security_alerts SET acknowledged_at = COALESCE(acknowledged_at, $1), \
                 acknowledged_by = COALESCE(acknowledged_by, $2) \
                 WHERE id = $3 AND (subject IS NULL OR subject <> $2)"
            }
            AlertStep::Resolve => {
                "UPDATE security_alerts SET acknowledged_at = COALESCE(acknowledged_at, $1), \
                 acknowledged_by = COALESCE(acknowledged_by, $2), resolved_at = COALESCE(resolved_at, $1), \
                 resolved_by = COALESCE(resolved_by, $2) \
                 WHERE id = $3 AND (subject IS NULL OR subject <> $2)"
            }
        };
        let updated = sqlx::query::<Any>(sql)
            .bind(ts)
            .bind(by)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    /// A page of alerts, newest first, and the total.
    pub async fn security_alerts(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SecurityAlert>, i64), StoreError> {
        let (total,): (i64,) =
            sqlx::query_as::<Any, (i64,)>("SELECT COUNT(*) FROM security_alerts")
                .fetch_one(self.pool())
                .await?;
        let alerts = sqlx::query_as::<Any, SecurityAlert>(
            "SELECT id, ts, rule, severity, subject, details, acknowledged_at, acknowledged_by, resolved_at, resolved_by \
             FROM security_alerts ORDER BY ts DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok((alerts, total))
    }

    /// Records a violation: a repeat of a stored one (same `fingerprint`) only counts; a new one is
    /// stored while fewer than `cap` rows exist. Which of the three happened.
    pub async fn record_csp_report(
        &self,
        report: &CspReport,
        fingerprint: &str,
        cap: i64,
    ) -> Result<CspOutcome, StoreError> {
        let repeated = sqlx::query::<Any>(
            "UPDATE csp_reports SET occurrences = occurrences + 1, last_seen_at = $1 WHERE fingerprint = $2",
        )
        .bind(report.received_at)
        .bind(fingerprint)
        .execute(self.pool())
        .await?
        .rows_affected();
        if repeated > 0 {
            return Ok(CspOutcome::Repeat);
        }
        let stored = sqlx::query::<Any>(
            "INSERT INTO csp_reports (id, received_at, document_uri, violated_directive, blocked_uri, client_ip, \
             report, fingerprint, occurrences, last_seen_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, 1, $2 WHERE (SELECT COUNT(*) FROM csp_reports) < $9 \
             ON CONFLICT (fingerprint) DO UPDATE SET occurrences = csp_reports.occurrences + 1, \
             last_seen_at = excluded.last_seen_at",
        )
        .bind(&report.id)
        .bind(report.received_at)
        .bind(&report.document_uri)
        .bind(&report.violated_directive)
        .bind(&report.blocked_uri)
        .bind(&report.client_ip)
        .bind(&report.report)
        .bind(fingerprint)
        .bind(cap)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(if stored > 0 {
            CspOutcome::Stored
        } else {
            CspOutcome::OverCap
        })
    }

    /// Retention: violations not seen since `before`.
    pub async fn purge_csp_reports(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query::<Any>("DELETE FROM csp_reports WHERE last_seen_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Total occurrences recorded (stored rows and their repeats).
    pub async fn csp_report_occurrences(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<Any, i64>(
            "SELECT CAST(COALESCE(SUM(occurrences), 0) AS BIGINT) FROM csp_reports",
        )
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn count_csp_reports(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<Any, (i64,)>("SELECT COUNT(*) FROM csp_reports")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}
