//! The JSON API: thin handlers that parse, authorise (through extractors), call a service and map the
//! result. Authorisation lives in the extractor types so a handler cannot forget it.

pub mod admin;
pub mod admin_alerts;
pub mod admin_audit;
pub mod alerts;
pub mod apikeys;
pub mod auth;
pub mod cookies;
pub mod extract;
pub mod key_in_url;
pub mod market;
pub mod owned;
pub mod params;
pub mod responses;
pub mod twofactor;
pub mod watchlists;

use axum::http::{HeaderValue, StatusCode, header};

use crate::http::{ApiError, FieldError};
use crate::identity::IdentityError;

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        let detail = error.to_string();
        match error {
            IdentityError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid-credentials", detail)
                    .with_member("error", "invalid_credentials")
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"tradesignal\""),
                    )
            }
            IdentityError::InvalidGrant => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-grant", detail)
                    .with_member("error", "invalid_grant")
            }
            IdentityError::InvalidToken => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-token", detail)
            }
            IdentityError::WeakPassword { field, violations } => ApiError::validation(
                violations
                    .into_iter()
                    .map(|v| FieldError::new(field, v.code, v.message))
                    .collect(),
            ),
            IdentityError::Invalid {
                field,
                code,
                message,
            } => ApiError::validation(vec![FieldError::new(field, code, message)]),
            IdentityError::WrongCurrentPassword => {
                ApiError::new(StatusCode::FORBIDDEN, "invalid-current-password", detail)
            }
            IdentityError::StepUpRequired => step_up_required(),
            IdentityError::NotFound => ApiError::not_found(),
            IdentityError::Throttled(wait) => {
                let retry = wait.as_secs().max(1);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    format!("Too many attempts; retry in {retry} seconds."),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry))
            }
            IdentityError::RateLimited { quota, decision } => {
                let retry = decision.retry_after.as_secs().max(1);
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    format!("Too many requests; retry in {retry} seconds."),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry));
                for (name, value) in crate::http::ratelimit::header_values(quota, &decision) {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        error = error.with_header(name, value);
                    }
                }
                error
            }
            IdentityError::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            IdentityError::InvalidCode => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid-code", detail)
                    .with_member("error", "invalid_code")
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"tradesignal\""),
                    )
            }
            IdentityError::WrongCode => {
                ApiError::new(StatusCode::FORBIDDEN, "invalid-code", detail)
                    .with_member("error", "invalid_code")
            }
            IdentityError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            IdentityError::PlanLimit(message) => {
                ApiError::new(StatusCode::FORBIDDEN, "plan-limit", message)
            }
            IdentityError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "The service is busy; retry in a moment.",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("2")),
            IdentityError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// RFC 9470: the login is too old for this operation.
pub fn step_up_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "step-up-required",
        "This operation needs a recent login: re-authenticate and retry.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"insufficient_user_authentication\", max_age=600"),
    )
}

/// Pagination parameters shared by list endpoints.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl Paging {
    pub const MAX_PER_PAGE: u32 = ::market::query::MAX_PER_PAGE;

    /// The page asked for (the default where a value is out of range) and a field error for each
    /// value out of range. One rule for every listing, whatever reads the parameters.
    pub fn check(&self) -> (::market::query::PageRequest, Vec<FieldError>) {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(::market::query::DEFAULT_PER_PAGE);
        let mut errors = Vec::new();
        if page == 0 {
            errors.push(FieldError::new("page", "out_of_range", "Pages start at 1."));
        }
        if per_page == 0 || per_page > Self::MAX_PER_PAGE {
            errors.push(FieldError::new(
                "per_page",
                "out_of_range",
                format!("per_page must be between 1 and {}.", Self::MAX_PER_PAGE),
            ));
        }
        (
            ::market::query::PageRequest::new(page, per_page).unwrap_or_default(),
            errors,
        )
    }

    /// (page, per_page, offset), or a 422 naming the bad parameter.
    pub fn resolve(&self) -> Result<(u32, u32, i64), ApiError> {
        let (request, errors) = self.check();
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok((request.page(), request.per_page(), request.offset()))
    }
}
