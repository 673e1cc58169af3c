//! Who is looking at a page, and the CSRF gate every state-changing web request passes.
//!
//! `attach` runs on every web UI route: it resolves the `__Host-ts_session` cookie to a signed-in user
//! (database-checked, see `identity::web_sessions`), or gives the visitor a pre-session cookie, and
//! derives the CSRF token that the page's forms carry. A POST (or any unsafe method) must then pass
//! Fetch Metadata and `Origin` checks and present the token (form field `csrf_token` or header
//! `X-CSRF-Token`) bound to that session or visitor; a refusal is a 403 page and a `csrf.rejected`
//! audit event. The JSON API is outside this layer: bearer tokens and API keys are not ambient
//! credentials, so they need no CSRF defence.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use security::csrf::{Binding, SiteRefusal};

use super::pages::ErrorPage;
use crate::api::cookies::CookieNames;
use crate::api::extract::Meta;
use crate::http::{CspNonce, NoStore};
use crate::identity::Principal;
use crate::identity::audit::Event;
use crate::identity::web_sessions::{ResolvedWebSession, WebAuthFailure};
use crate::state::AppState;

/// The header scripts send the token in.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// The form field forms send it in.
pub const CSRF_FIELD: &str = "csrf_token";

/// The visitor of this request, for handlers (through `Page`, `SignedIn`).
#[derive(Clone)]
pub struct Visitor {
    pub principal: Option<Principal>,
    pub email: Option<String>,
    /// The token this page's forms carry.
    pub csrf_token: String,
}

/// What every page's layout shows: the nonce, the CSRF token, the signed-in user.
pub struct Layout {
    pub nonce: String,
    pub csrf_token: String,
    pub email: Option<String>,
    pub staff: bool,
    pub script: &'static str,
    pub style: &'static str,
    pub icon: &'static str,
}

impl Layout {
    /// The layout of a page outside the web context (no session, no forms).
    pub fn bare(nonce: String) -> Self {
        let assets = super::assets::assets();
        Self {
            nonce,
            csrf_token: String::new(),
            email: None,
            staff: false,
            script: &assets.script,
            style: &assets.style,
            icon: &assets.icon,
        }
    }

    pub fn signed_in(&self) -> bool {
        self.email.is_some()
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The origins a request may come from: the public URL's, and in development also the one the
/// browser used (an allowed loopback host, already checked by the edge).
fn own_origins(state: &AppState, headers: &HeaderMap) -> Vec<String> {
    let mut origins = vec![state.settings.public_url.origin().ascii_serialization()];
    if !state.settings.is_production()
        && let Some(host) = header_text(headers, &header::HOST)
    {
        origins.push(format!("{}://{host}", state.settings.public_url.scheme()));
    }
    origins
}

fn site_check(state: &AppState, headers: &HeaderMap) -> Result<(), SiteRefusal> {
    let fetch_site = header_text(headers, &HeaderName::from_static("sec-fetch-site"));
    let origin = header_text(headers, &header::ORIGIN);
    let origins = own_origins(state, headers);
    let mut verdict = Err(SiteRefusal::ForeignOrigin);
    for own in &origins {
        verdict = security::csrf::check_site(fetch_site, origin, own);
        if verdict.is_ok() {
            break;
        }
    }
    verdict
}

/// The `csrf_token` field of a url-encoded form body.
fn form_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let form = header_text(headers, &header::CONTENT_TYPE)
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
}

async fn refuse(state: &AppState, parts: &mut Parts, visitor: &Visitor, reason: &str) -> Response {
    if let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await {
        let mut event = Event::failure("csrf.rejected").details(serde_json::json!({
            "reason": reason,
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
        }));
        if let Some(p) = &visitor.principal {
            event = event
                .actor(&p.user_id)
                .subject(&p.user_id)
                .session(&p.session_id);
        }
        state.identity.audit(event, &meta).await;
    }
    metrics::counter!("tradesignal_csrf_rejected_total").increment(1);
    tracing::warn!(reason, path = %parts.uri.path(), "web request refused by the CSRF checks");
    let nonce = CspNonce::from_request_parts(parts, state)
        .await
        .map(|CspNonce(n)| n.to_string())
        .unwrap_or_default();
    ErrorPage::new(
        StatusCode::FORBIDDEN,
        "This request was refused",
        "The form was sent from another site, or it has expired. Go back, reload the page and try again.",
    )
    .render(layout(visitor, nonce))
}

/// Builds the layout of a page for `visitor`.
pub fn layout(visitor: &Visitor, nonce: String) -> Layout {
    let assets = super::assets::assets();
    Layout {
        nonce,
        csrf_token: visitor.csrf_token.clone(),
        email: visitor.email.clone(),
        staff: visitor
            .principal
            .as_ref()
            .is_some_and(|p| p.role.is_staff()),
        script: &assets.script,
        style: &assets.style,
        icon: &assets.icon,
    }
}

/// The middleware; see the module documentation.
pub async fn attach(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let jar = CookieJar::from_headers(&parts.headers);
    let mut jar_out = jar.clone();
    let mut principal = None;
    let mut email = None;
    if let Some(resolved) = parts.extensions.remove::<ResolvedWebSession>() {
        // The rate limiter already checked the cookie (to charge the user's quota).
        principal = Some(resolved.principal);
        email = Some(resolved.email);
    } else if let Some(cookie) = CookieNames::value_in(&jar, state.cookies.session) {
        let meta = match Meta::from_request_parts(&mut parts, &state).await {
            Ok(Meta(meta)) => meta,
            Err(e) => return e.into_response(),
        };
        match state.identity.authenticate_web(&cookie, &meta).await {
            Ok((p, address)) => {
                principal = Some(p);
                email = Some(address);
            }
            Err(WebAuthFailure::Internal(e)) => {
                return crate::http::ApiError::from(e).into_response();
            }
            Err(failure) => {
                tracing::info!(reason = %failure, "web session cookie refused");
                jar_out = state.cookies.clear_web_session(jar_out);
            }
        }
    }
    let visitor_value = CookieNames::value_in(&jar, state.cookies.visitor);
    let csrf_token = match (&principal, &visitor_value) {
        (Some(p), _) => state.identity.csrf.issue(Binding::Session(&p.session_id)),
        (None, Some(value)) => state.identity.csrf.issue(Binding::Visitor(value)),
        (None, None) => {
            let fresh = security::random::token(32);
            let token = state.identity.csrf.issue(Binding::Visitor(&fresh));
            jar_out = state.cookies.set_visitor(jar_out, fresh);
            token
        }
    };
    let visitor = Visitor {
        principal,
        email,
        csrf_token,
    };

    let body = if is_unsafe(&parts.method) {
        if let Err(refusal) = site_check(&state, &parts.headers) {
            return (
                jar_out,
                refuse(&state, &mut parts, &visitor, refusal.as_str()).await,
            )
                .into_response();
        }
        let bytes = match axum::body::to_bytes(body, state.settings.body_limit).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return crate::http::ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "The request body is too large.",
                )
                .into_response();
            }
        };
        let presented = header_text(&parts.headers, &CSRF_HEADER)
            .map(str::to_string)
            .or_else(|| form_token(&parts.headers, &bytes));
        let binding = match (&visitor.principal, &visitor_value) {
            (Some(p), _) => Some(Binding::Session(&p.session_id)),
            (None, Some(value)) => Some(Binding::Visitor(value)),
            (None, None) => None,
        };
        let valid = match (&presented, binding) {
            (Some(token), Some(binding)) => state.identity.csrf.verify(token, binding),
            _ => false,
        };
        if !valid {
            let reason = if presented.is_none() {
                "token_missing"
            } else {
                "token_invalid"
            };
            return (jar_out, refuse(&state, &mut parts, &visitor, reason).await).into_response();
        }
        Body::from(bytes)
    } else {
        body
    };
    let CspNonce(nonce) = CspNonce::from_request_parts(&mut parts, &state)
        .await
        .unwrap_or_else(|never| match never {});
    parts.extensions.insert(visitor.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        response = as_page(response, layout(&visitor, nonce.to_string()));
    }
    response.extensions_mut().insert(NoStore);
    (jar_out, response).into_response()
}

/// An error a layer answered for a web route (a rate limit's 429, a body limit's 413) as a page for
/// a person rather than a problem document; `Retry-After` is kept.
fn as_page(response: Response, layout: Layout) -> Response {
    if response
        .extensions()
        .get::<crate::http::normalize::HtmlPage>()
        .is_some()
    {
        return response;
    }
    let status = response.status();
    let (title, detail) = match status {
        StatusCode::TOO_MANY_REQUESTS => (
            "Too many attempts",
            "Wait a moment before trying again.".to_string(),
        ),
        _ => (
            "That did not work",
            crate::http::problem::default_detail(status).to_string(),
        ),
    };
    let retry = response.headers().get(header::RETRY_AFTER).cloned();
    let mut page = ErrorPage::new(status, title, detail).render(layout);
    if let Some(retry) = retry {
        page.headers_mut().insert(header::RETRY_AFTER, retry);
    }
    page
}

/// Any visitor of a page: the layout and, when signed in, who.
pub struct Page {
    pub layout: Layout,
    pub principal: Option<Principal>,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let visitor = parts.extensions.get::<Visitor>().cloned().ok_or_else(|| {
            crate::http::ApiError::internal(anyhow::anyhow!("web route without the web context"))
                .into_response()
        })?;
        let CspNonce(nonce) = CspNonce::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        Ok(Self {
            layout: layout(&visitor, nonce.to_string()),
            principal: visitor.principal,
        })
    }
}

/// Where the login page returns to: a local path only (never `//host` or a scheme), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

fn to_login(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Staff must use 2FA (as in the API): without it on now, and used by this session, a staff account
/// reaches only its account pages. Refusals are audited as `authz.denied`.
async fn staff_second_factor(
    parts: &mut Parts,
    state: &AppState,
    principal: &Principal,
    layout: Layout,
) -> Result<Layout, Response> {
    if !principal.role.is_staff() {
        return Ok(layout);
    }
    let enrolled = state
        .identity
        .profile(&principal.user_id)
        .await
        .map(|u| u.has_mfa())
        .unwrap_or(false);
    if enrolled && principal.used_second_factor() {
        return Ok(layout);
    }
    audit_denied(parts, state, principal, "second_factor").await;
    let detail = if enrolled {
        "Staff sessions need a second factor: sign out and sign in again with your code."
    } else {
        "Staff accounts must use two-factor authentication: turn it on under Account security, then sign in again with a code."
    };
    Err(ErrorPage::new(
        StatusCode::FORBIDDEN,
        "Two-factor authentication required",
        detail,
    )
    .render(layout))
}

/// Records an `authz.denied` event for a refused page.
async fn audit_denied(parts: &mut Parts, state: &AppState, principal: &Principal, required: &str) {
    if let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await {
        state
            .identity
            .audit(
                Event::failure("authz.denied")
                    .actor(&principal.user_id)
                    .subject(&principal.user_id)
                    .session(&principal.session_id)
                    .details(serde_json::json!({
                        "required": required,
                        "path": parts.uri.path(),
                    })),
                &meta,
            )
            .await;
    }
}

/// A signed-in user with a verified email; staff also need 2FA on and a session that used it.
/// Anyone else is sent to sign in (or told what is missing).
pub struct SignedIn {
    pub layout: Layout,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let page = Page::from_request_parts(parts, state).await?;
        let Some(principal) = page.principal else {
            return Err(to_login(parts));
        };
        if !principal.email_verified {
            return Err(ErrorPage::new(
                StatusCode::FORBIDDEN,
                "Verify your email address",
                "Open the link in the email we sent when you registered. Until then only your account pages are available.",
            )
            .render(page.layout));
        }
        let layout = staff_second_factor(parts, state, &principal, page.layout).await?;
        Ok(Self { layout, principal })
    }
}

/// A signed-in user of any verification state (account pages: an unverified user may still change
/// the password or sign out).
pub struct AnySignedIn {
    pub layout: Layout,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for AnySignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let page = Page::from_request_parts(parts, state).await?;
        match page.principal {
            Some(principal) => Ok(Self {
                layout: page.layout,
                principal,
            }),
            None => Err(to_login(parts)),
        }
    }
}

/// Staff (support or super admin) whose session used a second factor and whose account has 2FA on
/// now (as the admin API requires); refusals are audited as `authz.denied`.
pub struct StaffUser {
    pub layout: Layout,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // `SignedIn` already holds staff to their second factor.
        let SignedIn { layout, principal } = SignedIn::from_request_parts(parts, state).await?;
        if principal.role.is_staff() {
            return Ok(Self { layout, principal });
        }
        audit_denied(parts, state, &principal, "support").await;
        Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "You are not allowed to see this page.",
        )
        .render(layout))
    }
}

/// A super administrator (with a second factor); refusals are audited as `authz.denied`.
pub struct SuperAdminUser {
    pub layout: Layout,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for SuperAdminUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let StaffUser { layout, principal } = StaffUser::from_request_parts(parts, state).await?;
        if principal.role == security::authz::Role::SuperAdmin {
            return Ok(Self { layout, principal });
        }
        audit_denied(parts, state, &principal, "super_admin").await;
        Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only super administrators change roles, plans and the disabled flag.",
        )
        .render(layout))
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/trades?ticker=AAPL")),
            "/trades?ticker=AAPL"
        );
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
