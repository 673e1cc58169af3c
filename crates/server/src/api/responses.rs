//! Response bodies shared by the API.

use serde::Serialize;
use store::identity::{SessionRecord, UserRecord};

/// RFC 3339 for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `GET /auth/me`: never hashes, secrets or codes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: String,
    pub tier: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
}

impl From<&UserRecord> for UserBody {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            full_name: u.full_name.clone(),
            role: u.role.clone(),
            tier: u.tier.clone(),
            email_verified: u.is_verified(),
            mfa_enabled: u.has_mfa(),
            created_at: rfc3339(u.created_at),
        }
    }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    pub id: String,
    /// `api` (tokens) or `web` (the browser application's cookie session).
    pub kind: String,
    pub created_at: String,
    pub last_seen_at: String,
    /// When the session ends whatever its activity.
    pub expires_at: String,
    /// When it ends unless it is used before: the idle timeout from its last use.
    pub idle_expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

impl SessionBody {
    /// `idle_secs` is the session kind's idle timeout.
    pub fn new(s: &SessionRecord, current_id: &str, idle_secs: i64) -> Self {
        Self {
            id: s.id.clone(),
            kind: s.kind.clone(),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at),
            idle_expires_at: rfc3339(s.last_seen_at.saturating_add(idle_secs).min(s.expires_at)),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current: s.id == current_id,
        }
    }
}

/// A page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub pages: i64,
}

/// How many pages of `per_page` items `total` items fill.
pub fn page_count(total: i64, per_page: u32) -> i64 {
    let per = i64::from(per_page.max(1));
    (total + per - 1) / per
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, page: u32, per_page: u32) -> Self {
        Self {
            items,
            total,
            page,
            per_page,
            pages: page_count(total, per_page),
        }
    }
}
