//! The server-rendered web UI (API.md "Web UI routes"). Its handlers sit beside the JSON API's and
//! call the same identity and market services. Every route runs inside `context::attach`: the
//! `web` session cookie, the CSRF gate for state-changing requests, no-store caching. Pages are
//! askama templates (auto-escaped) whose only script and stylesheet are static, content-hashed files
//! loaded with the response's CSP nonce.

pub mod account;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod context;
pub mod lists;
pub mod market;
pub mod outbox;
pub mod pages;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;

use crate::state::AppState;

/// Every web UI route, with the web context around them.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(auth::routes(state))
        .merge(market::routes())
        .merge(lists::routes())
        .merge(account::routes())
        .merge(admin::routes())
        .layer(from_fn_with_state(state.clone(), context::attach))
        .route("/static/{name}", get(assets::serve))
}
