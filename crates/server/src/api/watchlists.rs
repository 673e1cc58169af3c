//! `/api/v1/watchlists`: the caller's named lists of tickers with notes (owner-scoped CRUD).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use store::market::watchlists::WatchlistRecord;

use super::extract::{RequireScope, WatchlistsRead, WatchlistsWrite};
use super::owned::{nullable, paging, resource_id};
use super::responses::{Page, rfc3339};
use crate::http::{ApiError, ApiJson, SafeJson};
use crate::identity::now;
use crate::market::watchlists::WatchlistChange;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_watchlists).post(create_watchlist))
        .route(
            "/{id}",
            get(get_watchlist)
                .patch(update_watchlist)
                .delete(delete_watchlist),
        )
}

#[derive(Debug, Serialize)]
struct WatchlistBody {
    id: String,
    name: String,
    tickers: Vec<String>,
    notes: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<WatchlistRecord> for WatchlistBody {
    fn from(w: WatchlistRecord) -> Self {
        Self {
            id: w.id,
            name: w.name,
            tickers: serde_json::from_str(&w.tickers).unwrap_or_default(),
            notes: w.notes,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWatchlist {
    name: String,
    #[serde(default)]
    tickers: Vec<String>,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateWatchlist {
    name: Option<String>,
    tickers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    notes: Option<Option<String>>,
}

#[utoipa::path(get, path = "/api/v1/watchlists", tag = "watchlists", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of the caller's watchlists")))]
async fn list_watchlists(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<WatchlistsRead>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<WatchlistBody>>, ApiError> {
    let page = paging(query.as_deref())?;
    let total = state
        .db
        .count_watchlists(&principal.user_id)
        .await
        .map_err(ApiError::internal)?;
    let rows = state
        .db
        .list_watchlists(
            &principal.user_id,
            i64::from(page.per_page()),
            page.offset(),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(SafeJson(Page::new(
        rows.into_iter().map(WatchlistBody::from).collect(),
        total,
        page.page(),
        page.per_page(),
    )))
}

#[utoipa::path(post, path = "/api/v1/watchlists", tag = "watchlists", security(("bearer" = []), ("api_key" = [])),
    request_body(content = String, content_type = "application/json", description = "{name (1–100), tickers[] (≤100), notes? (≤2000, plain text)}"),
    responses((status = 201, description = "Created"), (status = 422, description = "Invalid field")))]
async fn create_watchlist(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<WatchlistsWrite>,
    ApiJson(body): ApiJson<CreateWatchlist>,
) -> Result<(StatusCode, SafeJson<WatchlistBody>), ApiError> {
    let record = state
        .market
        .create_watchlist(
            &principal.user_id,
            WatchlistChange {
                name: Some(body.name),
                tickers: Some(body.tickers),
                notes: Some(body.notes),
            },
            now(),
        )
        .await?;
    Ok((StatusCode::CREATED, SafeJson(record.into())))
}

#[utoipa::path(get, path = "/api/v1/watchlists/{id}", tag = "watchlists", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The watchlist"), (status = 404, description = "Not the caller's, or none")))]
async fn get_watchlist(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<WatchlistsRead>,
    Path(id): Path<String>,
) -> Result<SafeJson<WatchlistBody>, ApiError> {
    resource_id(&id)?;
    let record = state
        .db
        .watchlist(&principal.user_id, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    Ok(SafeJson(record.into()))
}

#[utoipa::path(patch, path = "/api/v1/watchlists/{id}", tag = "watchlists", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "Updated"), (status = 404, description = "Not the caller's, or none")))]
async fn update_watchlist(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<WatchlistsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWatchlist>,
) -> Result<SafeJson<WatchlistBody>, ApiError> {
    resource_id(&id)?;
    let record = state
        .market
        .update_watchlist(
            &principal.user_id,
            &id,
            WatchlistChange {
                name: body.name,
                tickers: body.tickers,
                notes: body.notes,
            },
            now(),
        )
        .await?;
    Ok(SafeJson(record.into()))
}

#[utoipa::path(delete, path = "/api/v1/watchlists/{id}", tag = "watchlists", security(("bearer" = []), ("api_key" = [])),
    params(("id" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "Not the caller's, or none")))]
async fn delete_watchlist(
    State(state): State<AppState>,
    RequireScope(principal, ..): RequireScope<WatchlistsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource_id(&id)?;
    if state
        .db
        .delete_watchlist(&principal.user_id, &id)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The watchlist part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_watchlists, create_watchlist, get_watchlist, update_watchlist, delete_watchlist),
    tags((name = "watchlists", description = "The caller's watchlists"))
)]
pub struct WatchlistApi;
