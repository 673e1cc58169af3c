//! Request body limits by path: every route gets the configured limit, except the few that take
//! documents (Form 4 ingest, up to 5 MiB). A declared `Content-Length` over the limit is refused
//! before any byte is read; a body that grows past it while streaming stops there (413).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

pub struct BodyLimits {
    default: usize,
    /// (exact path, limit) pairs that differ from the default.
    exceptions: Vec<(&'static str, usize)>,
}

impl BodyLimits {
    pub fn new(default: usize, exceptions: Vec<(&'static str, usize)>) -> Self {
        Self {
            default,
            exceptions,
        }
    }

    pub fn for_path(&self, path: &str) -> usize {
        self.exceptions
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(self.default, |(_, limit)| *limit)
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "The request body is larger than this endpoint accepts.",
    )
}

pub async fn limit(
    State(limits): State<Arc<BodyLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = limits.for_path(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large().into_response();
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}
