//! RFC 9457 problem documents. Handlers return `ApiError`; what the client sees (`detail`) and what is
//! logged (`source`) are separate, so internal errors never leave the server.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URI of a problem: a stable name clients can match on (it ends with the slug).
pub fn problem_type(slug: &str) -> String {
    format!("urn:tradesignal:problem:{slug}")
}

/// A slug for statuses produced outside handlers (405 by the router, 413 by the body limit…).
pub fn default_slug(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        408 => "request-timeout",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation-failed",
        429 => "rate-limited",
        503 => "service-unavailable",
        s if s >= 500 => "internal-error",
        _ => "client-error",
    }
}

/// A detail safe to show for statuses produced outside handlers.
pub fn default_detail(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request is malformed.",
        401 => "Authentication is required.",
        403 => "You are not allowed to do this.",
        404 => "No such resource.",
        405 => "This method is not allowed for this resource.",
        408 => "The request took too long to arrive.",
        413 => "The request body is larger than this endpoint accepts.",
        415 => "This endpoint does not accept that content type.",
        422 => "The request is well-formed but invalid.",
        429 => "Too many requests; retry later.",
        503 => "The service is temporarily unavailable; retry later.",
        s if s >= 500 => "An internal error occurred. Quote the request id when reporting it.",
        _ => "The request cannot be processed.",
    }
}

/// One invalid field of a 422.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An error answer. `request_id` is filled in by the normalising middleware, which knows it. Boxed so
/// `Result<_, ApiError>` stays small on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    headers: HeaderMap,
    /// Extension members (RFC 9457 §3.2), e.g. OAuth's `"error": "invalid_grant"`.
    members: Vec<(&'static str, serde_json::Value)>,
    source: Option<anyhow::Error>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            slug,
            detail: detail.into(),
            errors: vec![],
            headers: HeaderMap::new(),
            members: vec![],
            source: None,
        }))
    }

    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, detail)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            default_detail(StatusCode::NOT_FOUND),
        )
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("Send the body as {expected}."),
        )
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "One or more fields are invalid.",
        );
        e.0.errors = errors;
        e
    }

    /// A failure of ours: the client gets a generic message, the log gets `source`.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            default_detail(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .with_source(source)
    }

    pub fn unavailable(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            default_detail(StatusCode::SERVICE_UNAVAILABLE),
        )
        .with_source(source)
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    pub fn with_member(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.0.members.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The problem type's slug (`step-up-required`, `not-found`, …).
    pub fn slug(&self) -> &'static str {
        self.0.slug
    }

    /// The user-facing detail (never the logged source).
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// Logs the source, as the JSON response would, for callers that render the error themselves.
    pub fn log(&self) {
        if let Some(source) = &self.0.source {
            if self.0.status.is_server_error() {
                tracing::error!(status = self.0.status.as_u16(), error = %format!("{source:#}"), "request failed");
            } else {
                tracing::info!(status = self.0.status.as_u16(), error = %format!("{source:#}"), "request refused");
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.slug,
            self.0.detail
        )
    }
}

/// Renders a problem document body.
pub fn problem_json(status: StatusCode, slug: &str, detail: &str, errors: &[FieldError]) -> String {
    let body = ProblemBody {
        kind: problem_type(slug),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        errors,
    };
    serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        match &this.source {
            Some(source) if this.status.is_server_error() => {
                tracing::error!(status = this.status.as_u16(), error = %format!("{source:#}"), "request failed");
            }
            Some(source) => {
                tracing::info!(status = this.status.as_u16(), error = %format!("{source:#}"), "request refused");
            }
            None => {}
        }
        let mut body = problem_json(this.status, this.slug, &this.detail, &this.errors);
        if !this.members.is_empty()
            && let Ok(serde_json::Value::Object(mut document)) = serde_json::from_str(&body)
        {
            for (name, value) in this.members {
                document.entry(name).or_insert(value);
            }
            body = serde_json::Value::Object(document).to_string();
        }
        let mut response = (this.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.headers_mut().extend(this.headers);
        response
    }
}
