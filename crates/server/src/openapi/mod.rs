//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, generated from the handlers' annotations
//! so it cannot drift from the routes, then completed so that it is exact enough for a generated
//! client or a fuzzer: every problem answer the guards and extractors can give
//! ([`conformance`]), the input constraints the validators enforce, published from the validators'
//! own constants and patterns ([`inputs`]), and links between operations ([`links`]).

mod conformance;
mod inputs;
mod links;

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::ops;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(
                        "JWT access token (with its fingerprint cookie) or ts_live_ API key",
                    )
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (ts_live_…); never in a query string",
            ))),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "TradeSignal API", description = "Insider and congressional trading data behind a hardened security platform. Errors are RFC 9457 problem documents."),
    paths(ops::healthz, ops::readyz, ops::metrics, ops::csp::csp_report, openapi_json),
    components(schemas(ops::StatusBody)),
    modifiers(&SecuritySchemes),
    tags((name = "operations", description = "Health, readiness, metrics and browser reports")),
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Json<&'static Value> {
    Json(served_document())
}

/// The document as served, built once.
pub fn served_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(document)
}

/// The whole document: operations, auth, admin, market data, watchlists and alerts, completed.
pub fn document() -> Value {
    let mut document = match serde_json::to_value(annotated()) {
        Ok(document) => document,
        Err(error) => {
            // Cannot happen for utoipa's types; an empty document is better than a panic on a request.
            tracing::error!(%error, "the OpenAPI document could not be serialised");
            return Value::Object(Default::default());
        }
    };
    inputs::apply(&mut document);
    conformance::apply(&mut document);
    links::apply(&mut document);
    document
}

/// The document as the handlers' annotations describe it.
fn annotated() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api::auth::AuthApi::openapi());
    doc.merge(crate::api::twofactor::TwoFactorApi::openapi());
    doc.merge(crate::api::apikeys::ApiKeysApi::openapi());
    doc.merge(crate::api::admin::AdminApi::openapi());
    doc.merge(crate::api::admin_alerts::AdminAlertsApi::openapi());
    doc.merge(crate::api::admin_audit::AdminAuditApi::openapi());
    doc.merge(crate::api::market::MarketApi::openapi());
    doc.merge(crate::api::watchlists::WatchlistApi::openapi());
    doc.merge(crate::api::alerts::AlertApi::openapi());
    doc
}
