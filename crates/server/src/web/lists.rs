//! The user's own data in the browser: `/watchlists` (create, add a ticker, edit, delete) and
//! `/alerts` (create, delete, delivery history). Owner-scoped through the same services and store
//! calls as the API: another user's id is "not found". Plan limits show as what the user can do.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use store::market::alerts::{AlertRecord, DeliveryRow};
use store::market::watchlists::WatchlistRecord;

use super::context::{Layout, SignedIn};
use super::pages::{FieldErrors, failure, render};
use crate::api::alerts::audit_alert;
use crate::api::extract::Meta;
use crate::api::owned::resource_id;
use crate::api::responses::rfc3339;
use crate::http::ApiError;
use crate::identity::audit::Event;
use crate::identity::{Caller, now};
use crate::market::MarketError;
use crate::market::alerts::AlertChange;
use crate::market::tiers;
use crate::market::watchlists::WatchlistChange;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/watchlists", get(watchlists).post(create_watchlist))
        .route("/watchlists/{id}", post(edit_watchlist))
        .route("/watchlists/{id}/tickers", post(add_ticker))
        .route("/watchlists/{id}/delete", post(delete_watchlist))
        .route("/alerts", get(alerts).post(create_alert))
        .route("/alerts/{id}", get(alert_history).post(edit_alert))
        .route("/alerts/{id}/delete", post(delete_alert))
}

/// Rows a list page shows (the plans' limits are far below).
const SHOWN: i64 = 200;

pub struct WatchlistView {
    pub id: String,
    pub name: String,
    pub tickers: Vec<String>,
    pub tickers_text: String,
    pub notes: String,
    pub updated: String,
}

impl From<WatchlistRecord> for WatchlistView {
    fn from(w: WatchlistRecord) -> Self {
        let tickers: Vec<String> = serde_json::from_str(&w.tickers).unwrap_or_default();
        Self {
            id: w.id,
            name: w.name,
            tickers_text: tickers.join(", "),
            tickers,
            notes: w.notes.unwrap_or_default(),
            updated: rfc3339(w.updated_at),
        }
    }
}

#[derive(Template)]
#[template(path = "watchlists.html")]
struct WatchlistsTemplate {
    layout: Layout,
    lists: Vec<WatchlistView>,
    limit: i64,
    errors: FieldErrors,
    error: Option<String>,
    draft_name: String,
    draft_tickers: String,
    draft_notes: String,
}

fn split_tickers(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

async fn watchlist_page(
    state: &AppState,
    layout: Layout,
    user_id: &str,
    status: StatusCode,
    error: Option<&ApiError>,
    draft: Option<WatchlistForm>,
) -> Response {
    let lists = match state.db.list_watchlists(user_id, SHOWN, 0).await {
        Ok(lists) => lists.into_iter().map(WatchlistView::from).collect(),
        Err(e) => return failure(layout, ApiError::internal(e)),
    };
    let draft = draft.unwrap_or_default();
    render(
        status,
        &WatchlistsTemplate {
            layout,
            lists,
            limit: tiers::WATCHLIST_LIMIT,
            errors: error.map(FieldErrors::from_api).unwrap_or_default(),
            error: error.map(|e| e.detail().to_string()),
            draft_name: draft.name,
            draft_tickers: draft.tickers,
            draft_notes: draft.notes,
        },
    )
}

/// After a create or update: back to the list, or the list with the error (and the draft kept).
async fn watchlist_saved(
    state: &AppState,
    user: SignedIn,
    result: Result<WatchlistRecord, MarketError>,
    draft: Option<WatchlistForm>,
) -> Response {
    match result {
        Ok(_) => Redirect::to("/watchlists").into_response(),
        Err(MarketError::NotFound) => failure(user.layout, ApiError::not_found()),
        Err(e) => {
            let error = ApiError::from(e);
            let user_id = user.principal.user_id.clone();
            watchlist_page(
                state,
                user.layout,
                &user_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&error),
                draft,
            )
            .await
        }
    }
}

async fn watchlists(State(state): State<AppState>, user: SignedIn) -> Response {
    watchlist_page(
        &state,
        user.layout,
        &user.principal.user_id,
        StatusCode::OK,
        None,
        None,
    )
    .await
}

#[derive(Deserialize, Default)]
struct WatchlistForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tickers: String,
    #[serde(default)]
    notes: String,
}

fn change_of(form: &WatchlistForm) -> WatchlistChange {
    WatchlistChange {
        name: Some(form.name.clone()),
        tickers: Some(split_tickers(&form.tickers)),
        notes: Some(Some(form.notes.clone()).filter(|n| !n.trim().is_empty())),
    }
}

async fn create_watchlist(
    State(state): State<AppState>,
    user: SignedIn,
    axum::Form(form): axum::Form<WatchlistForm>,
) -> Response {
    let user_id = user.principal.user_id.clone();
    let result = state
        .market
        .create_watchlist(&user_id, change_of(&form), now())
        .await;
    watchlist_saved(&state, user, result, Some(form)).await
}

async fn edit_watchlist(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<WatchlistForm>,
) -> Response {
    if let Err(e) = resource_id(&id) {
        return failure(user.layout, e);
    }
    let user_id = user.principal.user_id.clone();
    let result = state
        .market
        .update_watchlist(&user_id, &id, change_of(&form), now())
        .await;
    watchlist_saved(&state, user, result, None).await
}

#[derive(Deserialize)]
struct TickerForm {
    ticker: String,
}

async fn add_ticker(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<TickerForm>,
) -> Response {
    if let Err(e) = resource_id(&id) {
        return failure(user.layout, e);
    }
    let user_id = user.principal.user_id.clone();
    let current = match state.db.watchlist(&user_id, &id).await {
        Ok(Some(list)) => list,
        Ok(None) => return failure(user.layout, ApiError::not_found()),
        Err(e) => return failure(user.layout, ApiError::internal(e)),
    };
    let mut tickers: Vec<String> = serde_json::from_str(&current.tickers).unwrap_or_default();
    tickers.extend(split_tickers(&form.ticker));
    let change = WatchlistChange {
        name: None,
        tickers: Some(tickers),
        notes: None,
    };
    let result = state
        .market
        .update_watchlist(&user_id, &id, change, now())
        .await;
    watchlist_saved(&state, user, result, None).await
}

async fn delete_watchlist(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = resource_id(&id) {
        return failure(user.layout, e);
    }
    match state
        .db
        .delete_watchlist(&user.principal.user_id, &id)
        .await
    {
        Ok(true) => Redirect::to("/watchlists").into_response(),
        Ok(false) => failure(user.layout, ApiError::not_found()),
        Err(e) => failure(user.layout, ApiError::internal(e)),
    }
}

pub struct AlertView {
    pub id: String,
    pub name: String,
    pub ticker: String,
    pub insider_cik: String,
    pub codes: String,
    pub min_value: String,
    pub rule: String,
    pub channel: String,
    pub webhook_url: String,
    /// Shown as a link only when it is http(s).
    pub webhook_link: bool,
}

impl From<AlertRecord> for AlertView {
    fn from(a: AlertRecord) -> Self {
        let mut rule = vec![];
        if let Some(t) = &a.ticker {
            rule.push(format!("ticker {t}"));
        }
        if let Some(c) = &a.insider_cik {
            rule.push(format!("insider {c}"));
        }
        if let Some(codes) = &a.codes {
            rule.push(format!("codes {codes}"));
        }
        if let Some(cents) = a.min_value_cents {
            rule.push(format!("value ≥ ${}", market::money::from_cents(cents)));
        }
        let webhook_url = a.webhook_url.unwrap_or_default();
        Self {
            webhook_link: is_web_link(&webhook_url),
            ticker: a.ticker.clone().unwrap_or_default(),
            insider_cik: a.insider_cik.clone().unwrap_or_default(),
            codes: a.codes.clone().unwrap_or_default(),
            min_value: a
                .min_value_cents
                .map(|c| market::money::from_cents(c).to_string())
                .unwrap_or_default(),
            id: a.id,
            name: a.name,
            rule: if rule.is_empty() {
                "every trade".into()
            } else {
                rule.join(", ")
            },
            channel: a.channel,
            webhook_url,
        }
    }
}

/// Whether `text` may be rendered as a link: an absolute http(s) URL (never `javascript:` or
/// `data:`).
pub fn is_web_link(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsTemplate {
    layout: Layout,
    alerts: Vec<AlertView>,
    limit: i64,
    webhooks_allowed: bool,
    errors: FieldErrors,
    error: Option<String>,
    new_secret: Option<String>,
}

async fn alerts_page(
    state: &AppState,
    user: SignedIn,
    status: StatusCode,
    error: Option<&ApiError>,
    new_secret: Option<String>,
) -> Response {
    let rows = match state
        .db
        .list_alerts(&user.principal.user_id, SHOWN, 0)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failure(user.layout, ApiError::internal(e)),
    };
    render(
        status,
        &AlertsTemplate {
            layout: user.layout,
            alerts: rows.into_iter().map(AlertView::from).collect(),
            limit: tiers::alert_limit(user.principal.tier),
            webhooks_allowed: tiers::webhooks_allowed(user.principal.tier),
            errors: error.map(FieldErrors::from_api).unwrap_or_default(),
            error: error.map(|e| e.detail().to_string()),
            new_secret,
        },
    )
}

async fn alerts(State(state): State<AppState>, user: SignedIn) -> Response {
    alerts_page(&state, user, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct AlertForm {
    name: String,
    #[serde(default)]
    ticker: String,
    #[serde(default)]
    insider_cik: String,
    #[serde(default)]
    codes: String,
    #[serde(default)]
    min_value: String,
    channel: String,
    /// Absent when the form has no URL field (email-only plans): the stored URL is left alone.
    webhook_url: Option<String>,
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

async fn create_alert(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: SignedIn,
    axum::Form(form): axum::Form<AlertForm>,
) -> Response {
    let change = match alert_change(form, None) {
        Ok(change) => change,
        Err(error) => {
            return alerts_page(
                &state,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&error),
                None,
            )
            .await;
        }
    };
    let caller = Caller::from(user.principal.clone());
    let result = state
        .market
        .create_alert(&caller.user_id, caller.tier, change, now())
        .await;
    match result {
        Ok(created) => {
            audit_alert(
                &state,
                &meta,
                Event::success("alert.created"),
                &caller,
                Some(&created.record.id),
                &created.record.channel,
            )
            .await;
            match created.webhook_secret {
                // The signing secret is shown this once, on this page.
                Some(secret) => alerts_page(&state, user, StatusCode::OK, None, Some(secret)).await,
                None => Redirect::to("/alerts").into_response(),
            }
        }
        Err(e) => {
            if matches!(e, MarketError::PlanLimit(_)) {
                audit_alert(
                    &state,
                    &meta,
                    Event::failure("alert.created"),
                    &caller,
                    None,
                    "plan_limit",
                )
                .await;
            }
            let error = ApiError::from(e);
            alerts_page(&state, user, error.status(), Some(&error), None).await
        }
    }
}

async fn delete_alert(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = resource_id(&id) {
        return failure(user.layout, e);
    }
    match state.db.delete_alert(&user.principal.user_id, &id).await {
        Ok(true) => {
            let caller = Caller::from(user.principal);
            audit_alert(
                &state,
                &meta,
                Event::success("alert.deleted"),
                &caller,
                Some(&id),
                "",
            )
            .await;
            Redirect::to("/alerts").into_response()
        }
        Ok(false) => failure(user.layout, ApiError::not_found()),
        Err(e) => failure(user.layout, ApiError::internal(e)),
    }
}

pub struct DeliveryView {
    pub created: String,
    pub status: String,
    pub attempts: i64,
    pub response_status: String,
    pub error: String,
    pub trade: String,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            created: rfc3339(d.created_at),
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status.map(|s| s.to_string()).unwrap_or_default(),
            error: d.last_error.unwrap_or_default(),
            trade: format!(
                "{} {} {} {} ({})",
                d.transaction_date,
                d.ticker.unwrap_or_default(),
                d.code,
                d.value.unwrap_or_default(),
                d.insider_name
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "alert_history.html")]
struct HistoryTemplate {
    layout: Layout,
    alert: AlertView,
    deliveries: Vec<DeliveryView>,
    webhooks_allowed: bool,
    errors: FieldErrors,
    error: Option<String>,
    new_secret: Option<String>,
}

/// What the alert page shows beside the alert after an edit.
#[derive(Default)]
struct Edited {
    status: Option<StatusCode>,
    error: Option<ApiError>,
    new_secret: Option<String>,
}

async fn alert_history(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Response {
    alert_page(&state, user, &id, Edited::default()).await
}

async fn alert_page(state: &AppState, user: SignedIn, id: &str, edited: Edited) -> Response {
    if let Err(e) = resource_id(id) {
        return failure(user.layout, e);
    }
    let alert = match state.db.alert(&user.principal.user_id, id).await {
        Ok(Some(alert)) => alert,
        Ok(None) => return failure(user.layout, ApiError::not_found()),
        Err(e) => return failure(user.layout, ApiError::internal(e)),
    };
    let rows = state
        .db
        .alert_history(
            &user.principal.user_id,
            id,
            tiers::history_start(user.principal.tier, tiers::today()),
            SHOWN,
            0,
        )
        .await;
    if let Some(e) = &edited.error {
        e.log();
    }
    match rows {
        Ok((rows, _)) => render(
            edited.status.unwrap_or(StatusCode::OK),
            &HistoryTemplate {
                layout: user.layout,
                alert: alert.into(),
                deliveries: rows.into_iter().map(DeliveryView::from).collect(),
                webhooks_allowed: tiers::webhooks_allowed(user.principal.tier),
                errors: edited
                    .error
                    .as_ref()
                    .map(FieldErrors::from_api)
                    .unwrap_or_default(),
                error: edited.error.as_ref().map(|e| e.detail().to_string()),
                new_secret: edited.new_secret,
            },
        ),
        Err(e) => failure(user.layout, ApiError::internal(e)),
    }
}

/// The alert form's fields as a change (an emptied field clears it). For an edit, `stored` is the
/// alert's current webhook URL: an absent or unchanged URL field leaves it alone, so a rename never
/// re-checks (or, on an email-only plan, refuses) the URL.
fn alert_change(form: AlertForm, stored: Option<Option<&str>>) -> Result<AlertChange, ApiError> {
    let min_value_cents = match optional(&form.min_value) {
        None => None,
        Some(text) => Some(market::money::parse_dollars(&text).ok_or_else(|| {
            ApiError::from(MarketError::invalid(
                "min_value",
                "invalid",
                "Enter a non-negative amount in dollars with at most two decimals.",
            ))
        })?),
    };
    Ok(AlertChange {
        name: Some(form.name),
        ticker: Some(optional(&form.ticker)),
        insider_cik: Some(optional(&form.insider_cik)),
        codes: Some(optional(&form.codes).map(|c| split_tickers(&c))),
        min_value_cents: Some(min_value_cents),
        channel: Some(form.channel),
        webhook_url: match (form.webhook_url.as_deref().map(optional), stored) {
            // Creating: whatever the form says.
            (url, None) => Some(url.flatten()),
            // Editing without the field, or with the URL already stored: unchanged.
            (None, Some(_)) => None,
            (Some(url), Some(current)) if url.as_deref() == current => None,
            (Some(url), Some(_)) => Some(url),
        },
    })
}

async fn edit_alert(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AlertForm>,
) -> Response {
    if let Err(e) = resource_id(&id) {
        return failure(user.layout, e);
    }
    let stored = match state.db.alert(&user.principal.user_id, &id).await {
        Ok(Some(alert)) => alert.webhook_url,
        Ok(None) => return failure(user.layout, ApiError::not_found()),
        Err(e) => return failure(user.layout, ApiError::internal(e)),
    };
    let change = match alert_change(form, Some(stored.as_deref())) {
        Ok(change) => change,
        Err(e) => {
            let edited = Edited {
                status: Some(StatusCode::UNPROCESSABLE_ENTITY),
                error: Some(e),
                ..Edited::default()
            };
            return alert_page(&state, user, &id, edited).await;
        }
    };
    let caller = Caller::from(user.principal.clone());
    match state
        .market
        .update_alert(&caller.user_id, caller.tier, &id, change, now())
        .await
    {
        Ok(updated) => {
            audit_alert(
                &state,
                &meta,
                Event::success("alert.updated"),
                &caller,
                Some(&updated.record.id),
                &updated.record.channel,
            )
            .await;
            match updated.webhook_secret {
                // A switch to webhook delivery: the new signing secret is shown this once.
                Some(secret) => {
                    let edited = Edited {
                        new_secret: Some(secret),
                        ..Edited::default()
                    };
                    alert_page(&state, user, &id, edited).await
                }
                None => Redirect::to(&format!("/alerts/{id}")).into_response(),
            }
        }
        Err(MarketError::NotFound) => failure(user.layout, ApiError::not_found()),
        Err(e) => {
            let error = ApiError::from(e);
            let edited = Edited {
                status: Some(error.status()),
                error: Some(error),
                ..Edited::default()
            };
            alert_page(&state, user, &id, edited).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_links_are_links() {
        assert!(is_web_link("https://hooks.example.com/x"));
        assert!(is_web_link("http://hooks.example.com/x"));
        for hostile in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "vbscript:x",
            "",
        ] {
            assert!(!is_web_link(hostile), "{hostile}");
        }
    }

    fn form(webhook_url: Option<&str>) -> AlertForm {
        AlertForm {
            name: "n".into(),
            ticker: String::new(),
            insider_cik: String::new(),
            codes: String::new(),
            min_value: String::new(),
            channel: "webhook".into(),
            webhook_url: webhook_url.map(str::to_string),
        }
    }

    #[test]
    fn an_edit_leaves_an_absent_or_unchanged_webhook_url_alone() {
        let stored = Some(Some("https://hooks.example.com/a"));
        let url = |change: AlertChange| change.webhook_url;
        assert_eq!(url(alert_change(form(None), stored).expect("change")), None);
        assert_eq!(
            url(alert_change(form(Some(" https://hooks.example.com/a ")), stored).expect("change")),
            None
        );
        assert_eq!(
            url(alert_change(form(Some("https://hooks.example.com/b")), stored).expect("change")),
            Some(Some("https://hooks.example.com/b".into()))
        );
        assert_eq!(
            url(alert_change(form(Some("")), stored).expect("change")),
            Some(None)
        );
        // Creating takes the field as it is.
        assert_eq!(
            url(alert_change(form(None), None).expect("change")),
            Some(None)
        );
        assert!(
            alert_change(
                AlertForm {
                    min_value: "1.234".into(),
                    ..form(None)
                },
                None
            )
            .is_err()
        );
    }

    #[test]
    fn tickers_split_on_commas_and_spaces() {
        assert_eq!(
            split_tickers(" aapl, msft\tnvda ,,"),
            ["aapl", "msft", "nvda"]
        );
    }
}
