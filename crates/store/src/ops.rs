//! Operational records: Content-Security-Policy violation reports sent by browsers.

use sqlx::Any;

use crate::db::{Database, StoreError};

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

/// A monitoring alert as the admin API lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecurityAlert {
    pub id: String,
    pub ts: i64,
    pub rule: String,
    pub severity: String,
    pub subject: Option<String>,
    pub details: String,
}

impl Database {
    pub async fn insert_security_alert(
        &self,
        rule: &str,
        severity: &str,
        subject: Option<&str>,
        details: &serde_json::Value,
        ts: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "INSERT INTO security_alerts (id, ts, rule, severity, subject, details) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(ts)
        .bind(rule)
        .bind(severity)
        .bind(subject)
        .bind(details.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
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
            "SELECT id, ts, rule, severity, subject, details FROM security_alerts ORDER BY ts DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok((alerts, total))
    }

    pub async fn insert_csp_report(&self, report: &CspReport) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "INSERT INTO csp_reports (id, received_at, document_uri, violated_directive, blocked_uri, client_ip, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&report.id)
        .bind(report.received_at)
        .bind(&report.document_uri)
        .bind(&report.violated_directive)
        .bind(&report.blocked_uri)
        .bind(&report.client_ip)
        .bind(&report.report)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn count_csp_reports(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<Any, (i64,)>("SELECT COUNT(*) FROM csp_reports")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}
