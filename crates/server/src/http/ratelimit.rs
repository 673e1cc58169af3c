//! Rate limiting at the edge. `quota` runs on every request after client-IP resolution: a request with a
//! valid access token or API key spends its user's tier quota (a key counts toward its owner), anything
//! else spends the anonymous per-IP quota. `endpoint` adds a per-IP limit to one route. Every checked
//! response carries `RateLimit-*` headers (the most restrictive limit wins); a refusal is a 429 problem
//! with `Retry-After`, and the first refusal per key and window is audited.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use security::gcra::{GcraDecision, Quota};

use super::ClientBucket;
use super::problem::ApiError;
use crate::api::extract::{CredentialRefused, Meta, authenticate};
use crate::identity::audit::Event;
use crate::identity::kv_keys::{user_of_rate_key, user_rate_key};
use crate::identity::monitoring::Observed;
use crate::identity::web_sessions::ResolvedWebSession;
use crate::state::AppState;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Writes the headers of `decision` unless the response already carries a more restrictive limit.
pub fn apply_headers(headers: &mut HeaderMap, quota: Quota, decision: &GcraDecision) {
    let existing = headers
        .get(&REMAINING)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if existing.is_some_and(|e| e <= decision.remaining) {
        return;
    }
    for (name, value) in header_values(quota, decision) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// The `RateLimit-*` header names and values of a decision.
pub fn header_values(quota: Quota, decision: &GcraDecision) -> [(HeaderName, String); 4] {
    let reset = if decision.allowed {
        decision.reset_after
    } else {
        decision.retry_after
    };
    [
        (LIMIT, quota.limit.to_string()),
        (REMAINING, decision.remaining.to_string()),
        (RESET, ceil_secs(reset).to_string()),
        (POLICY, quota.policy_header()),
    ]
}

/// The 429 answer for a refused decision.
pub fn too_many(quota: Quota, decision: &GcraDecision) -> Response {
    let retry = ceil_secs(decision.retry_after).max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("Too many requests; retry in {retry} seconds."),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(retry))
    .into_response();
    apply_headers(response.headers_mut(), quota, decision);
    response
}

/// Checks `key` against `quota`; `Ok(decision)` when the store answered (allowed or not), `Err` when it
/// could not (the request then goes through: availability over a limit we cannot count).
pub async fn check(state: &AppState, key: &str, quota: Quota) -> Option<GcraDecision> {
    match state.limiter.gcra(key, quota, 1).await {
        Ok(decision) => Some(decision),
        Err(e) => {
            tracing::error!(error = %e, "rate limiter unavailable; request allowed");
            metrics::counter!("tradesignal_ratelimit_errors_total").increment(1);
            None
        }
    }
}

/// Counts a refusal toward the `ratelimit_spike` rule of its principal (the account, or the client
/// network when signed out) and audits the first refusal of the principal per window (every refusal
/// is counted in metrics). One store round trip serves both.
pub async fn note_refusal(
    state: &AppState,
    key: &str,
    policy: &str,
    meta: &crate::identity::RequestMeta,
) {
    metrics::counter!("tradesignal_ratelimit_exceeded_total", "policy" => policy.to_string())
        .increment(1);
    let principal = match user_of_rate_key(key) {
        Some(user_id) => format!("user:{user_id}"),
        None => format!("ip:{}", meta.client_bucket.as_deref().unwrap_or("")),
    };
    let subject = principal.split_once(':').map(|(_, id)| id);
    let observed = state
        .identity
        .observe(
            "ratelimit_spike",
            &principal,
            subject,
            serde_json::json!({"policy": policy}),
            meta,
        )
        .await;
    // The first refusal of the window is audited (the rule cannot be set to fire at every refusal).
    if observed == Observed::Counted(1) {
        let mut event =
            Event::failure("ratelimit.exceeded").details(serde_json::json!({"policy": policy}));
        if let Some(user_id) = user_of_rate_key(key) {
            event = event.actor(user_id);
        }
        state.identity.audit(event, meta).await;
    }
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Tier quota for authenticated requests, anonymous per-IP quota for the rest.
pub async fn quota(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.settings.rate_limiting {
        return next.run(request).await;
    }
    if is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let ip = parts
        .extensions
        .get::<ClientBucket>()
        .map(|ClientBucket(bucket)| bucket.clone())
        .unwrap_or_default();
    // A valid access token or API key spends its user's tier quota in the same store round trip as
    // its revocation check; anything else spends the anonymous per-IP quota.
    let authenticated = match authenticate(&parts, &state, Some(&state.limits)).await {
        Ok(authenticated) => authenticated,
        Err(refused) => {
            if refused.status() == StatusCode::UNAUTHORIZED {
                parts.extensions.insert(CredentialRefused);
            }
            None
        }
    };
    // Without a token or key, a browser's session cookie spends its user's tier quota too.
    let web = match &authenticated {
        None => web_session(&mut parts, &state).await,
        Some(_) => None,
    };
    let (key, policy, limit, decided) = match (authenticated, web) {
        (Some((caller, Some((quota, decision)))), _) => {
            let key = user_rate_key(&caller.user_id);
            let policy = format!("tier.{}", caller.tier.as_str());
            parts.extensions.insert(caller);
            (key, policy, quota, Some(decision))
        }
        (None, Some(web)) => {
            let key = user_rate_key(&web.principal.user_id);
            let policy = format!("tier.{}", web.principal.tier.as_str());
            let quota = state.limits.get(&policy);
            parts.extensions.insert(web);
            (key, policy, quota, None)
        }
        _ => (
            format!("rl:anon:{ip}"),
            "anonymous".to_string(),
            state.limits.get("anonymous"),
            None,
        ),
    };
    let decision = match decided {
        Some(decision) => decision,
        None => check(&state, &key, limit).await,
    };
    if let Some(decision) = decision.filter(|d| !d.allowed) {
        let meta = meta_of(&mut parts, &state).await;
        note_refusal(&state, &key, &policy, &meta).await;
        return too_many(limit, &decision);
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(decision) = decision {
        apply_headers(response.headers_mut(), limit, &decision);
    }
    response
}

/// The signed-in user of a web session cookie, if the request carries a valid one (noted for
/// `credential_many_ips` like any other credential).
async fn web_session(
    parts: &mut axum::http::request::Parts,
    state: &AppState,
) -> Option<ResolvedWebSession> {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
    let cookie = crate::api::cookies::CookieNames::value_in(&jar, state.cookies.session)?;
    let meta = meta_of(parts, state).await;
    let (principal, email) = state.identity.authenticate_web(&cookie, &meta).await.ok()?;
    if let Some(ClientBucket(bucket)) = parts.extensions.get::<ClientBucket>() {
        state
            .identity
            .note_credential_use(
                &format!("session:{}", principal.session_id),
                &principal.user_id,
                bucket,
            )
            .await;
    }
    Some(ResolvedWebSession { principal, email })
}

async fn meta_of(
    parts: &mut axum::http::request::Parts,
    state: &AppState,
) -> crate::identity::RequestMeta {
    use axum::extract::FromRequestParts;
    match Meta::from_request_parts(parts, state).await {
        Ok(Meta(meta)) => meta,
        Err(_) => crate::identity::RequestMeta::default(),
    }
}

/// A per-IP limit for one route, named after its policy in `RateLimits`.
pub async fn endpoint(
    State((state, policy)): State<(AppState, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    if !state.settings.rate_limiting {
        return next.run(request).await;
    }
    let ip = request
        .extensions()
        .get::<ClientBucket>()
        .map(|ClientBucket(bucket)| bucket.clone())
        .unwrap_or_default();
    let limit = state.limits.get(policy);
    let key = format!("rl:{policy}:{ip}");
    let decision = check(&state, &key, limit).await;
    if let Some(decision) = decision.filter(|d| !d.allowed) {
        let (mut parts, _) = request.into_parts();
        let meta = meta_of(&mut parts, &state).await;
        note_refusal(&state, &key, policy, &meta).await;
        return too_many(limit, &decision);
    }
    let mut response = next.run(request).await;
    if let Some(decision) = decision {
        apply_headers(response.headers_mut(), limit, &decision);
    }
    response
}
