//! Rendering pages: a template with its status, marked so the error normaliser passes our own HTML
//! through, and the error and notice pages every handler falls back to.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::context::Layout;
use crate::http::ApiError;
use crate::http::normalize::HtmlPage;

/// Renders `template` as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.extensions_mut().insert(HtmlPage);
            response
        }
        Err(e) => {
            ApiError::internal(anyhow::Error::new(e).context("rendering a page")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    layout: Layout,
    title: String,
    detail: String,
    details: Vec<String>,
}

/// A page that says what went wrong, in the site's layout.
pub struct ErrorPage {
    status: StatusCode,
    title: String,
    detail: String,
    details: Vec<String>,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: detail.into(),
            details: vec![],
        }
    }

    /// The page for an error of a service: its status and user-facing detail (the source is logged,
    /// never shown).
    pub fn from_api(error: &ApiError) -> Self {
        error.log();
        let title = match error.status() {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let mut page = Self::new(error.status(), title, error.detail());
        page.details = error
            .field_errors()
            .iter()
            .map(|e| e.message.clone())
            .collect();
        page
    }

    pub fn render(self, layout: Layout) -> Response {
        render(
            self.status,
            &ErrorTemplate {
                layout,
                title: self.title,
                detail: self.detail,
                details: self.details,
            },
        )
    }
}

/// Renders the page of any error a service returned.
pub fn failure(layout: Layout, error: impl Into<ApiError>) -> Response {
    ErrorPage::from_api(&error.into()).render(layout)
}

#[derive(Template)]
#[template(path = "notice.html")]
pub struct Notice {
    pub layout: Layout,
    pub title: String,
    pub detail: String,
    pub link: Option<(String, String)>,
}

impl Notice {
    pub fn page(layout: Layout, title: &str, detail: &str, link: Option<(&str, &str)>) -> Response {
        render(
            StatusCode::OK,
            &Self {
                layout,
                title: title.into(),
                detail: detail.into(),
                link: link.map(|(h, t)| (h.to_string(), t.to_string())),
            },
        )
    }
}

/// Errors of one form field, for templates.
#[derive(Default)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn from_api(error: &ApiError) -> Self {
        Self(
            error
                .field_errors()
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect(),
        )
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_string(), message.into()));
    }

    /// The messages about `field`, joined.
    pub fn of(&self, field: &str) -> String {
        self.0
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }
}

/// An error page outside the web context (the error normaliser's renderer for browsers): the
/// status's title, the user-facing detail (and, for a server error, the request id to quote), no
/// signed-in header.
pub fn error_page(status: StatusCode, detail: &str, request_id: &str, nonce: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let mut page = ErrorPage::new(status, title, detail);
    if status.is_server_error() && !request_id.is_empty() {
        page.details.push(format!("Request id: {request_id}"));
    }
    page.render(Layout::bare(nonce.to_string()))
}
