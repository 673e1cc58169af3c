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

impl Database {
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
