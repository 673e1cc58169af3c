//! Staff pages: `/admin` (overview), `/admin/users` (search, lock state, unlock, role, tier, disable,
//! sign-out), `/admin/audit` (the audit log viewer) and `/admin/alerts` (security alerts with
//! acknowledge and resolve). The guard is `StaffUser` (staff with a second factor, refusals audited);
//! changes of role, tier and the disabled flag are for super administrators, as in the API.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use security::authz::{Role, Tier};
use serde::Deserialize;
use store::identity::audit::AuditFilter;

use super::context::{Layout, StaffUser, SuperAdminUser};
use super::pages::{failure, render};
use crate::api::extract::Meta;
use crate::api::responses::rfc3339;
use crate::http::ApiError;
use crate::identity::admin::UserChange;
use crate::state::AppState;
use store::ops::AlertStep;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/users", get(users))
        .route("/admin/users/{id}", get(user).post(update_user))
        .route("/admin/users/{id}/unlock", post(unlock))
        .route("/admin/users/{id}/revoke-sessions", post(revoke_sessions))
        .route("/admin/audit", get(audit))
        .route("/admin/alerts", get(alerts))
        .route("/admin/alerts/{id}/{step}", post(advance_alert))
}

/// Rows per admin list page.
const ROWS: i64 = 50;
/// As in the admin API.
const MAX_SEARCH_CHARS: usize = 100;

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct OverviewTemplate {
    layout: Layout,
    super_admin: bool,
}

async fn overview(staff: StaffUser) -> Response {
    render(
        StatusCode::OK,
        &OverviewTemplate {
            super_admin: staff.principal.role == Role::SuperAdmin,
            layout: staff.layout,
        },
    )
}

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub tier: String,
    pub verified: bool,
    pub disabled: bool,
}

impl From<store::identity::UserRecord> for UserRow {
    fn from(u: store::identity::UserRecord) -> Self {
        Self {
            verified: u.is_verified(),
            disabled: u.is_disabled(),
            id: u.id,
            email: u.email,
            role: u.role,
            tier: u.tier,
        }
    }
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersTemplate {
    layout: Layout,
    q: String,
    rows: Vec<UserRow>,
    total: i64,
    page: u32,
    more: bool,
}

async fn users(
    State(state): State<AppState>,
    staff: StaffUser,
    Query(query): Query<SearchQuery>,
) -> Response {
    let q = query.q.unwrap_or_default();
    let page = query.page.unwrap_or(1).clamp(1, 10_000);
    if q.chars().count() > MAX_SEARCH_CHARS {
        return failure(
            staff.layout,
            ApiError::validation(vec![crate::http::FieldError::new(
                "q",
                "too_long",
                format!("Search for at most {MAX_SEARCH_CHARS} characters."),
            )]),
        );
    }
    let search = Some(q.trim()).filter(|q| !q.is_empty());
    match state
        .identity
        .admin_list_users(search, ROWS, (i64::from(page) - 1) * ROWS)
        .await
    {
        Ok((rows, total)) => render(
            StatusCode::OK,
            &UsersTemplate {
                layout: staff.layout,
                more: i64::from(page) * ROWS < total,
                q,
                rows: rows.into_iter().map(UserRow::from).collect(),
                total,
                page,
            },
        ),
        Err(e) => failure(staff.layout, e),
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserTemplate {
    layout: Layout,
    user: UserRow,
    locked_until: Option<String>,
    sessions: usize,
    mfa: bool,
    super_admin: bool,
    roles: [&'static str; 3],
    tiers: [&'static str; 3],
    message: Option<String>,
}

async fn user_page(
    state: &AppState,
    layout: Layout,
    viewer: crate::identity::Principal,
    id: &str,
    message: Option<String>,
) -> Response {
    let record = match state.identity.admin_user(id).await {
        Ok(record) => record,
        Err(e) => return failure(layout, e),
    };
    let locked_until = state
        .identity
        .lock_remaining(&record.email)
        .await
        .map(|wait| rfc3339(crate::identity::now() + i64::try_from(wait.as_secs()).unwrap_or(0)));
    let sessions = match state.identity.sessions(&record.id).await {
        Ok(list) => list.len(),
        Err(e) => return failure(layout, e),
    };
    render(
        StatusCode::OK,
        &UserTemplate {
            super_admin: viewer.role == Role::SuperAdmin,
            layout,
            mfa: record.has_mfa(),
            user: record.into(),
            locked_until,
            sessions,
            roles: [Role::User, Role::Support, Role::SuperAdmin].map(Role::as_str),
            tiers: [Tier::Free, Tier::Pro, Tier::Enterprise].map(Tier::as_str),
            message,
        },
    )
}

async fn user(State(state): State<AppState>, staff: StaffUser, Path(id): Path<String>) -> Response {
    user_page(&state, staff.layout, staff.principal, &id, None).await
}

#[derive(Deserialize)]
struct UserForm {
    role: String,
    tier: String,
    #[serde(default)]
    disabled: Option<String>,
}

async fn update_user(
    State(state): State<AppState>,
    Meta(meta): Meta,
    admin: SuperAdminUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<UserForm>,
) -> Response {
    let (Ok(role), Ok(tier)) = (form.role.parse::<Role>(), form.tier.parse::<Tier>()) else {
        return failure(
            admin.layout,
            ApiError::validation(vec![crate::http::FieldError::new(
                "role",
                "invalid",
                "Choose a role and a plan from the lists.",
            )]),
        );
    };
    let current = match state.identity.admin_user(&id).await {
        Ok(user) => user,
        Err(e) => return failure(admin.layout, e),
    };
    // Only what the form changed is sent: saving one field never rewrites another.
    let disabled = form.disabled.is_some();
    let change = UserChange {
        role: (role.as_str() != current.role).then_some(role),
        tier: (tier.as_str() != current.tier).then_some(tier),
        disabled: (disabled != current.is_disabled()).then_some(disabled),
    };
    if change.role.is_none() && change.tier.is_none() && change.disabled.is_none() {
        return user_page(
            &state,
            admin.layout,
            admin.principal,
            &id,
            Some("Nothing changed.".into()),
        )
        .await;
    }
    match state
        .identity
        .admin_update_user(&admin.principal, &id, change, &meta)
        .await
    {
        Ok(_) => {
            user_page(
                &state,
                admin.layout,
                admin.principal,
                &id,
                Some("Saved.".into()),
            )
            .await
        }
        Err(e) => failure(admin.layout, e),
    }
}

async fn unlock(
    State(state): State<AppState>,
    Meta(meta): Meta,
    staff: StaffUser,
    Path(id): Path<String>,
) -> Response {
    match state
        .identity
        .admin_unlock(&staff.principal, &id, &meta)
        .await
    {
        Ok(true) => {
            user_page(
                &state,
                staff.layout,
                staff.principal,
                &id,
                Some("Unlocked.".into()),
            )
            .await
        }
        Ok(false) => {
            user_page(
                &state,
                staff.layout,
                staff.principal,
                &id,
                Some("The account was not locked.".into()),
            )
            .await
        }
        Err(e) => failure(staff.layout, e),
    }
}

async fn revoke_sessions(
    State(state): State<AppState>,
    Meta(meta): Meta,
    staff: StaffUser,
    Path(id): Path<String>,
) -> Response {
    match state
        .identity
        .admin_revoke_sessions(&staff.principal, &id, &meta)
        .await
    {
        Ok(count) => {
            user_page(
                &state,
                staff.layout,
                staff.principal,
                &id,
                Some(format!("{count} sessions signed out.")),
            )
            .await
        }
        Err(e) => failure(staff.layout, e),
    }
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(rename = "type")]
    event: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    page: Option<u32>,
}

pub struct AuditRow {
    pub ts: String,
    pub event: String,
    pub outcome: &'static str,
    pub actor: String,
    pub subject: String,
    pub ip: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditTemplate {
    layout: Layout,
    event: String,
    actor: String,
    subject: String,
    rows: Vec<AuditRow>,
    total: i64,
    page: u32,
    notice: Option<String>,
}

fn filled(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

async fn audit(
    State(state): State<AppState>,
    staff: StaffUser,
    Query(query): Query<AuditQuery>,
) -> Response {
    let page = query.page.unwrap_or(1).clamp(1, 10_000);
    let filter = AuditFilter {
        event: filled(query.event),
        actor_id: filled(query.actor),
        subject: filled(query.subject),
        since: None,
        until: None,
    };
    let mut template = AuditTemplate {
        layout: staff.layout,
        event: filter.event.clone().unwrap_or_default(),
        actor: filter.actor_id.clone().unwrap_or_default(),
        subject: filter.subject.clone().unwrap_or_default(),
        rows: vec![],
        total: 0,
        page,
        notice: None,
    };
    // As in the API: support staff look at one user's events at a time.
    if staff.principal.role != Role::SuperAdmin && filter.subject.is_none() {
        template.notice =
            Some("Support staff see one user's events: enter the user's id as subject.".into());
        return render(StatusCode::OK, &template);
    }
    match state
        .db
        .list_audit_events(&filter, ROWS, (i64::from(page) - 1) * ROWS)
        .await
    {
        Ok((records, total)) => {
            template.total = total;
            template.rows = records
                .into_iter()
                .map(|r| AuditRow {
                    ts: rfc3339(r.ts),
                    event: r.event.event,
                    outcome: r.event.outcome.as_str(),
                    actor: r.event.actor_id.unwrap_or_default(),
                    subject: r.event.subject.unwrap_or_default(),
                    ip: r.event.ip.unwrap_or_default(),
                    details: r.event.details.to_string(),
                })
                .collect();
            render(StatusCode::OK, &template)
        }
        Err(e) => failure(template.layout, ApiError::internal(e)),
    }
}

pub struct AlertRow {
    pub id: String,
    pub ts: String,
    pub rule: String,
    pub severity: String,
    pub subject: String,
    pub details: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "admin_alerts.html")]
struct AlertsTemplate {
    layout: Layout,
    rows: Vec<AlertRow>,
    total: i64,
}

async fn alerts(State(state): State<AppState>, staff: StaffUser) -> Response {
    match state.db.security_alerts(ROWS, 0).await {
        Ok((alerts, total)) => render(
            StatusCode::OK,
            &AlertsTemplate {
                layout: staff.layout,
                total,
                rows: alerts
                    .into_iter()
                    .map(|a| AlertRow {
                        status: match (a.acknowledged_at, a.resolved_at) {
                            (_, Some(_)) => "resolved",
                            (Some(_), None) => "acknowledged",
                            (None, None) => "open",
                        },
                        id: a.id,
                        ts: rfc3339(a.ts),
                        rule: a.rule,
                        severity: a.severity,
                        subject: a.subject.unwrap_or_default(),
                        details: a.details,
                    })
                    .collect(),
            },
        ),
        Err(e) => failure(staff.layout, ApiError::internal(e)),
    }
}

async fn advance_alert(
    State(state): State<AppState>,
    Meta(meta): Meta,
    staff: StaffUser,
    Path((id, step)): Path<(String, String)>,
) -> Response {
    let step = match step.as_str() {
        "acknowledge" => AlertStep::Acknowledge,
        "resolve" => AlertStep::Resolve,
        _ => return failure(staff.layout, ApiError::not_found()),
    };
    match state
        .identity
        .advance_alert(&staff.principal, &id, step, &meta)
        .await
    {
        Ok(_) => Redirect::to("/admin/alerts").into_response(),
        Err(e) => failure(staff.layout, e),
    }
}
