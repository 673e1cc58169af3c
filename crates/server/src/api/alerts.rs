//! `/api/v1/alerts`: the caller's alert rules, their delivery history, and the audit of every
//! change (a webhook is data leaving the system).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Deserializer, Serialize};
use store::market::alerts::{AlertRecord, DeliveryRow};

use super::extract::{AlertsRead, AlertsWrite, Meta, RequireScope};
use super::owned::{nullable, paging, resource_id};
use super::responses::{Page, rfc3339};
use crate::http::{ApiError, ApiJson, SafeJson};
use crate::identity::audit::Event;
use crate::identity::now;
use crate::market::MarketError;
use crate::market::alerts::AlertChange;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_alerts).post(create_alert))
        .route(
            "/{id}",
            get(get_alert).patch(update_alert).delete(delete_alert),
        )
        .route("/{id}/history", get(alert_history))
}

/// Alert changes are audited: a webhook is data leaving the system.
pub(crate) async fn audit_alert(
    state: &AppState,
    meta: &crate::identity::RequestMeta,
    event: Event<'_>,
    caller: &crate::identity::Caller,
    alert_id: Option<&str>,
    detail: &str,
) {
    let mut event = event
        .actor(&caller.user_id)
        .subject(&caller.user_id)
        .details(serde_json::json!({"alert_id": alert_id, "detail": detail}));
    if let Some(key) = caller.api_key_id() {
        event = event.api_key(key);
    }
    state.identity.audit(event, meta).await;
}

/// No `Debug`: it can hold the webhook secret.
#[derive(Serialize)]
struct AlertBody {
    id: String,
    name: String,
    ticker: Option<String>,
    insider_cik: Option<String>,
    codes: Vec<String>,
    min_value: Option<String>,
    channel: String,
    webhook_url: Option<String>,
    /// Only in the answer that created it (or switched the alert to a webhook): store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
    created_at: String,
    updated_at: String,
}

fn alert_body(a: AlertRecord, webhook_secret: Option<String>) -> AlertBody {
    AlertBody {
        id: a.id,
        name: a.name,
        ticker: a.ticker,
        insider_cik: a.insider_cik,
        codes: a
            .codes
            .as_deref()
            .map(market::alerts::split_codes)
            .unwrap_or_default(),
        min_value: a
            .min_value_cents
            .map(|c| market::money::from_cents(c).to_string()),
        channel: a.channel,
        webhook_url: a.webhook_url,
        webhook_secret,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// A dollar amount given as a JSON number or a decimal string, read without float rounding.
#[derive(Debug)]
struct Dollars(i64);

impl<'de> Deserialize<'de> for Dollars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let text = match &value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(serde::de::Error::custom("invalid type: expected an amount")),
        };
        market::money::parse_dollars(&text)
            .map(Dollars)
            .ok_or_else(|| serde::de::Error::custom("invalid amount"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAlert {
    name: String,
    ticker: Option<String>,
    insider_cik: Option<String>,
    codes: Option<Vec<String>>,
    min_value: Option<Dollars>,
    channel: String,
    webhook_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAlert {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    ticker: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    insider_cik: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    codes: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    min_value: Option<Option<Dollars>>,
    channel: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    webhook_url: Option<Option<String>>,
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of the caller's alerts (secrets never included)")))]
async fn list_alerts(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsRead>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<AlertBody>>, ApiError> {
    let page = paging(query.as_deref())?;
    let total = state
        .db
        .count_alerts(&principal.user_id)
        .await
        .map_err(ApiError::internal)?;
    let rows = state
        .db
        .list_alerts(
            &principal.user_id,
            i64::from(page.per_page()),
            page.offset(),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(SafeJson(Page::new(
        rows.into_iter().map(|a| alert_body(a, None)).collect(),
        total,
        page.page(),
        page.per_page(),
    )))
}

#[utoipa::path(post, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    request_body(content = String, content_type = "application/json", description = "{name, ticker?, insider_cik?, codes?, min_value?, channel: email|webhook, webhook_url?}"),
    responses((status = 201, description = "Created; webhook alerts return webhook_secret this once"), (status = 403, description = "Over the plan's alert count, or webhooks on the free plan"),
        (status = 422, description = "Invalid field, or a webhook URL that is not public https")))]
async fn create_alert(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsWrite>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<CreateAlert>,
) -> Result<(StatusCode, SafeJson<AlertBody>), ApiError> {
    let result = state
        .market
        .create_alert(
            &principal.user_id,
            principal.tier,
            AlertChange {
                name: Some(body.name),
                ticker: Some(body.ticker),
                insider_cik: Some(body.insider_cik),
                codes: Some(body.codes),
                min_value_cents: Some(body.min_value.map(|d| d.0)),
                channel: Some(body.channel),
                webhook_url: Some(body.webhook_url),
            },
            now(),
        )
        .await;
    let created = match result {
        Ok(created) => created,
        Err(MarketError::PlanLimit(reason)) => {
            audit_alert(
                &state,
                &meta,
                Event::failure("alert.created"),
                &principal,
                None,
                "plan_limit",
            )
            .await;
            return Err(MarketError::PlanLimit(reason).into());
        }
        Err(e) => return Err(e.into()),
    };
    audit_alert(
        &state,
        &meta,
        Event::success("alert.created"),
        &principal,
        Some(&created.record.id),
        &created.record.channel,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        SafeJson(alert_body(created.record, created.webhook_secret)),
    ))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The alert"), (status = 404, description = "Not the caller's, or none")))]
async fn get_alert(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsRead>,
    Path(id): Path<String>,
) -> Result<SafeJson<AlertBody>, ApiError> {
    resource_id(&id)?;
    let record = state
        .db
        .alert(&principal.user_id, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    Ok(SafeJson(alert_body(record, None)))
}

#[utoipa::path(patch, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "Updated (a switch to webhook returns a new webhook_secret)"), (status = 404, description = "Not the caller's, or none")))]
async fn update_alert(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsWrite>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAlert>,
) -> Result<SafeJson<AlertBody>, ApiError> {
    resource_id(&id)?;
    let updated = state
        .market
        .update_alert(
            &principal.user_id,
            principal.tier,
            &id,
            AlertChange {
                name: body.name,
                ticker: body.ticker,
                insider_cik: body.insider_cik,
                codes: body.codes,
                min_value_cents: body.min_value.map(|m| m.map(|d| d.0)),
                channel: body.channel,
                webhook_url: body.webhook_url,
            },
            now(),
        )
        .await?;
    audit_alert(
        &state,
        &meta,
        Event::success("alert.updated"),
        &principal,
        Some(&updated.record.id),
        &updated.record.channel,
    )
    .await;
    Ok(SafeJson(alert_body(updated.record, updated.webhook_secret)))
}

#[utoipa::path(delete, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "Not the caller's, or none")))]
async fn delete_alert(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsWrite>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource_id(&id)?;
    if state
        .db
        .delete_alert(&principal.user_id, &id)
        .await
        .map_err(ApiError::internal)?
    {
        audit_alert(
            &state,
            &meta,
            Event::success("alert.deleted"),
            &principal,
            Some(&id),
            "",
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Debug, Serialize)]
struct DeliveryBody {
    id: String,
    trade_id: String,
    channel: String,
    status: String,
    attempts: i64,
    response_status: Option<i64>,
    error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
    next_attempt_at: Option<String>,
    ticker: Option<String>,
    code: String,
    transaction_date: String,
    value: Option<String>,
    insider_name: String,
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}/history", tag = "alerts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "Deliveries: status, attempts, response status, error"), (status = 404, description = "Not the caller's, or none")))]
async fn alert_history(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<AlertsRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<DeliveryBody>>, ApiError> {
    resource_id(&id)?;
    let page = paging(query.as_deref())?;
    // The alert must be the caller's: otherwise 404, not an empty history.
    state
        .db
        .alert(&principal.user_id, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    let (rows, total) = state
        .db
        .alert_history(
            &principal.user_id,
            &id,
            crate::market::tiers::history_start(principal.tier, crate::market::tiers::today()),
            i64::from(page.per_page()),
            page.offset(),
        )
        .await
        .map_err(ApiError::internal)?;
    let items = rows
        .into_iter()
        .map(|d: DeliveryRow| DeliveryBody {
            next_attempt_at: (d.status == "pending").then(|| rfc3339(d.next_attempt_at)),
            id: d.id,
            trade_id: d.trade_id,
            channel: d.channel,
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status,
            error: d.last_error,
            created_at: rfc3339(d.created_at),
            delivered_at: d.delivered_at.map(rfc3339),
            ticker: d.ticker,
            code: d.code,
            transaction_date: d.transaction_date,
            value: d.value,
            insider_name: d.insider_name,
        })
        .collect();
    Ok(SafeJson(Page::new(
        items,
        total,
        page.page(),
        page.per_page(),
    )))
}

/// The alert part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_alerts, create_alert, get_alert, update_alert, delete_alert, alert_history),
    tags((name = "alerts", description = "Alert rules, delivered by email or signed webhook (X-TradeSignal-Signature: t=…,v1=HMAC-SHA256)"))
)]
pub struct AlertApi;
