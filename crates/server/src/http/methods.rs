//! Methods the service never serves (TRACE, CONNECT, extension methods) are refused with 405 before any
//! routing, whatever the path, so they cannot reach a handler or reflect a request.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;

pub const ALLOWED: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

pub async fn refuse_unknown(request: Request, next: Next) -> Response {
    let known = matches!(
        *request.method(),
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS
    );
    if known {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "This method is not supported.",
    )
    .with_header(header::ALLOW, HeaderValue::from_static(ALLOWED))
    .into_response()
}
