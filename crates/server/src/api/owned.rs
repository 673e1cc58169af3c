//! What the watchlist and alert endpoints share: the mapping of the market service's errors, PATCH
//! semantics for nullable fields, resource ids and paging. Every resource is owner-scoped: another
//! user's id answers 404, exactly like an id that does not exist.

use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};

use super::params::Params;
use crate::http::ApiError;
use crate::market::MarketError;

impl From<MarketError> for ApiError {
    fn from(error: MarketError) -> Self {
        let detail = error.to_string();
        match error {
            MarketError::Invalid {
                field,
                code,
                message,
            } => ApiError::validation(vec![crate::http::FieldError::new(field, code, message)]),
            MarketError::PlanLimit(_) => ApiError::new(StatusCode::FORBIDDEN, "plan-limit", detail),
            MarketError::NotFound => ApiError::not_found(),
            MarketError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent (PATCH semantics).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Ids are UUIDs; anything else cannot name a resource.
pub fn resource_id(id: &str) -> Result<(), ApiError> {
    uuid::Uuid::try_parse(id)
        .map(|_| ())
        .map_err(|_| ApiError::not_found())
}

pub fn paging(query: Option<&str>) -> Result<market::query::PageRequest, ApiError> {
    let mut params = Params::parse(query, &["page", "per_page"]);
    let page = params.page();
    params.finish()?;
    Ok(page)
}
