//! Signing in and out in the browser: `/login`, `/login/mfa`, `/logout`, `/register` and the email
//! link pages (`/verify-email`). Each handler validates its form, calls the identity service — the
//! same one the JSON API calls — and turns the outcome into a page or a redirect. A successful login
//! opens a `web` session carried only by the HttpOnly session cookie; no token ever reaches
//! JavaScript.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::context::{AnySignedIn, Layout, Page, safe_next};
use super::pages::{FieldErrors, Notice, failure, render};
use crate::api::cookies::CookieNames;
use crate::api::extract::Meta;
use crate::http::{ApiError, NoReferrer, ratelimit};
use crate::identity::IdentityError;
use crate::identity::login::{LoginOutcome, MFA_CHALLENGE_TTL_SECS};
use crate::identity::mfa::SecondFactor;
use crate::identity::web_sessions::{SessionKind, WebSignIn};
use crate::state::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    let limited = |policy: &'static str| {
        axum::middleware::from_fn_with_state((state.clone(), policy), ratelimit::endpoint)
    };
    Router::new()
        .route("/login", get(login_page))
        .route("/login", post(login_submit).route_layer(limited("login")))
        .route("/login/mfa", get(mfa_page))
        .route("/login/mfa", post(mfa_submit).route_layer(limited("mfa")))
        .route("/logout", post(logout))
        .route("/register", get(register_page))
        .route(
            "/register",
            post(register_submit).route_layer(limited("register")),
        )
        .route("/verify-email", get(verify_page))
        .route(
            "/verify-email",
            post(verify_submit).route_layer(limited("verify")),
        )
        .route("/confirm-email", get(confirm_page))
        .route(
            "/confirm-email",
            post(confirm_submit).route_layer(limited("verify")),
        )
        .route("/unlock", get(unlock_page))
        .route(
            "/unlock",
            post(unlock_submit).route_layer(limited("unlock")),
        )
        .route("/reset-password", get(reset_page))
        .route(
            "/reset-password",
            post(reset_submit).route_layer(limited("reset")),
        )
        .route("/forgot-password", get(forgot_page))
        .route(
            "/forgot-password",
            post(forgot_submit).route_layer(limited("forgot.ip")),
        )
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    layout: Layout,
    email: String,
    next: String,
    error: Option<String>,
}

async fn login_page(page: Page, Query(query): Query<NextQuery>) -> Response {
    if page.principal.is_some() {
        return Redirect::to(&safe_next(query.next.as_deref())).into_response();
    }
    render(
        StatusCode::OK,
        &LoginTemplate {
            layout: page.layout,
            email: String::new(),
            next: safe_next(query.next.as_deref()),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Sets the cookies of a new web session (and device cookie) and ends the session this browser held
/// before, if any: a new sign-in always gets a new session id.
async fn signed_in(
    state: &AppState,
    jar: CookieJar,
    previous: Option<&crate::identity::Principal>,
    web: WebSignIn,
    next: &str,
    meta: &crate::identity::RequestMeta,
) -> Response {
    if let Some(old) = previous
        && let Err(e) = state.identity.end_replaced_web_session(old, meta).await
    {
        tracing::warn!(error = %e, "previous web session not ended at sign-in");
    }
    let mut jar = state.cookies.set_web_session(jar, web.cookie);
    if let Some(device) = web.device_cookie {
        jar = state.cookies.set_device(jar, device);
    }
    jar = state.cookies.clear_mfa_pending(jar);
    (jar, Redirect::to(next)).into_response()
}

async fn login_submit(
    State(state): State<AppState>,
    page: Page,
    Meta(meta): Meta,
    jar: CookieJar,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let device = CookieNames::value_in(&jar, state.cookies.device);
    let outcome = state
        .identity
        .login(
            &form.email,
            &form.password,
            device.as_deref(),
            SessionKind::Web,
            &meta,
        )
        .await;
    match outcome {
        Ok(LoginOutcome::Opened(opened)) => match opened.into_web() {
            Ok(web) => signed_in(&state, jar, page.principal.as_ref(), web, &next, &meta).await,
            Err(e) => failure(page.layout, e),
        },
        Ok(LoginOutcome::SecondFactorRequired { mfa_token }) => {
            let jar = state
                .cookies
                .set_mfa_pending(jar, mfa_token, MFA_CHALLENGE_TTL_SECS);
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            (jar, Redirect::to(&format!("/login/mfa?next={next}"))).into_response()
        }
        Err(e) => {
            let error = ApiError::from(e);
            error.log();
            let status = error.status();
            render(
                status,
                &LoginTemplate {
                    layout: page.layout,
                    email: form.email,
                    next,
                    error: Some(error.detail().to_string()),
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaTemplate {
    layout: Layout,
    next: String,
    error: Option<String>,
}

async fn mfa_page(
    State(state): State<AppState>,
    page: Page,
    jar: CookieJar,
    Query(query): Query<NextQuery>,
) -> Response {
    if CookieNames::value_in(&jar, state.cookies.mfa_pending).is_none() {
        return Redirect::to("/login").into_response();
    }
    render(
        StatusCode::OK,
        &MfaTemplate {
            layout: page.layout,
            next: safe_next(query.next.as_deref()),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct MfaForm {
    code: String,
    next: Option<String>,
}

async fn mfa_submit(
    State(state): State<AppState>,
    page: Page,
    Meta(meta): Meta,
    jar: CookieJar,
    axum::Form(form): axum::Form<MfaForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(challenge) = CookieNames::value_in(&jar, state.cookies.mfa_pending) else {
        return Redirect::to("/login").into_response();
    };
    let device = CookieNames::value_in(&jar, state.cookies.device);
    let outcome = state
        .identity
        .login_mfa(
            &challenge,
            SecondFactor::either(form.code.trim()),
            device.as_deref(),
            SessionKind::Web,
            &meta,
        )
        .await
        .and_then(|opened| opened.into_web());
    match outcome {
        Ok(web) => signed_in(&state, jar, page.principal.as_ref(), web, &next, &meta).await,
        Err(IdentityError::InvalidToken) => Notice::page(
            page.layout,
            "Sign in again",
            "The sign-in attempt expired, was used up or came from another browser. Enter your email and password again.",
            Some(("/login", "Sign in")),
        ),
        Err(e) => {
            let error = ApiError::from(e);
            error.log();
            render(
                error.status(),
                &MfaTemplate {
                    layout: page.layout,
                    next,
                    error: Some(error.detail().to_string()),
                },
            )
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    user: Result<AnySignedIn, Response>,
) -> Response {
    if let Ok(AnySignedIn { principal, layout }) = user
        && let Err(e) = state.identity.web_logout(&principal, &meta).await
    {
        return failure(layout, e);
    }
    (state.cookies.clear_web_session(jar), Redirect::to("/login")).into_response()
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterTemplate {
    layout: Layout,
    email: String,
    full_name: String,
    errors: FieldErrors,
    error: Option<String>,
}

async fn register_page(page: Page) -> Response {
    if page.principal.is_some() {
        return Redirect::to("/").into_response();
    }
    render(
        StatusCode::OK,
        &RegisterTemplate {
            layout: page.layout,
            email: String::new(),
            full_name: String::new(),
            errors: FieldErrors::default(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct RegisterForm {
    email: String,
    password: String,
    #[serde(default)]
    full_name: String,
}

async fn register_submit(
    State(state): State<AppState>,
    page: Page,
    Meta(meta): Meta,
    axum::Form(form): axum::Form<RegisterForm>,
) -> Response {
    let full_name = Some(form.full_name.trim()).filter(|n| !n.is_empty());
    match state
        .identity
        .register(&form.email, &form.password, full_name, &meta)
        .await
    {
        Ok(()) => Notice::page(
            page.layout,
            "Check your email",
            "If this address can be registered, a verification link is on its way. Open it to activate the account, then sign in.",
            Some(("/login", "Sign in")),
        ),
        Err(e) => {
            let error = ApiError::from(e);
            error.log();
            render(
                error.status(),
                &RegisterTemplate {
                    layout: page.layout,
                    email: form.email,
                    full_name: form.full_name,
                    errors: FieldErrors::from_api(&error),
                    error: Some(error.detail().to_string()),
                },
            )
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The pages a mailed link opens: each shows a button (and for a reset, the new password field)
/// that POSTs the token, so a mail scanner fetching links cannot use it up.
#[derive(Clone, Copy)]
enum LinkAction {
    Verify,
    ConfirmEmail,
    Unlock,
    Reset,
}

impl LinkAction {
    fn path(self) -> &'static str {
        match self {
            Self::Verify => "/verify-email",
            Self::ConfirmEmail => "/confirm-email",
            Self::Unlock => "/unlock",
            Self::Reset => "/reset-password",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Verify => "Verify your email address",
            Self::ConfirmEmail => "Confirm your new email address",
            Self::Unlock => "Unlock your account",
            Self::Reset => "Choose a new password",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Self::Verify => "Verify my address",
            Self::ConfirmEmail => "Confirm the new address",
            Self::Unlock => "Unlock my account",
            Self::Reset => "Set the new password",
        }
    }

    fn done(self) -> (&'static str, &'static str) {
        match self {
            Self::Verify => ("Email address verified", "Your account is active."),
            Self::ConfirmEmail => (
                "Email address changed",
                "Sign in with the new address from now on.",
            ),
            Self::Unlock => (
                "Account unlocked",
                "You can sign in again. If you did not cause the lock, change your password.",
            ),
            Self::Reset => (
                "Password changed",
                "Every session was signed out. Sign in with the new password.",
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "token_action.html")]
struct TokenTemplate {
    layout: Layout,
    title: &'static str,
    action: &'static str,
    button: &'static str,
    token: String,
    password: bool,
    errors: FieldErrors,
}

fn link_page(
    action: LinkAction,
    layout: Layout,
    token: String,
    status: StatusCode,
    errors: FieldErrors,
) -> Response {
    let mut response = render(
        status,
        &TokenTemplate {
            layout,
            title: action.title(),
            action: action.path(),
            button: action.button(),
            token,
            password: matches!(action, LinkAction::Reset),
            errors,
        },
    );
    // The URL carries a one-time token: never sent on as a referrer.
    response.extensions_mut().insert(NoReferrer);
    response
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
    #[serde(default)]
    new_password: String,
}

async fn link_submit(
    action: LinkAction,
    state: &AppState,
    page: Page,
    meta: &crate::identity::RequestMeta,
    form: TokenForm,
) -> Response {
    let token = form.token.trim();
    let identity = &state.identity;
    let outcome = match action {
        LinkAction::Verify => identity.verify_email(token, meta).await,
        LinkAction::ConfirmEmail => identity.confirm_email(token, meta).await,
        LinkAction::Unlock => identity.unlock_with_token(token, meta).await,
        LinkAction::Reset => {
            identity
                .reset_password(token, &form.new_password, meta)
                .await
        }
    };
    match outcome {
        Ok(()) => {
            let (title, detail) = action.done();
            let link = if page.principal.is_some() && !matches!(action, LinkAction::Reset) {
                ("/", "Go to the dashboard")
            } else {
                ("/login", "Sign in")
            };
            Notice::page(page.layout, title, detail, Some(link))
        }
        Err(e @ IdentityError::WeakPassword { .. }) => {
            let error = ApiError::from(e);
            link_page(
                action,
                page.layout,
                form.token,
                error.status(),
                FieldErrors::from_api(&error),
            )
        }
        Err(e) => failure(page.layout, e),
    }
}

macro_rules! link_handlers {
    ($($page:ident, $submit:ident => $action:expr;)*) => {
        $(
            async fn $page(page: Page, Query(query): Query<TokenQuery>) -> Response {
                link_page($action, page.layout, query.token.unwrap_or_default(), StatusCode::OK, FieldErrors::default())
            }

            async fn $submit(
                State(state): State<AppState>,
                page: Page,
                Meta(meta): Meta,
                axum::Form(form): axum::Form<TokenForm>,
            ) -> Response {
                link_submit($action, &state, page, &meta, form).await
            }
        )*
    };
}

link_handlers! {
    verify_page, verify_submit => LinkAction::Verify;
    confirm_page, confirm_submit => LinkAction::ConfirmEmail;
    unlock_page, unlock_submit => LinkAction::Unlock;
    reset_page, reset_submit => LinkAction::Reset;
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotTemplate {
    layout: Layout,
}

async fn forgot_page(page: Page) -> Response {
    render(
        StatusCode::OK,
        &ForgotTemplate {
            layout: page.layout,
        },
    )
}

#[derive(Deserialize)]
struct ForgotForm {
    email: String,
}

async fn forgot_submit(
    State(state): State<AppState>,
    page: Page,
    Meta(meta): Meta,
    axum::Form(form): axum::Form<ForgotForm>,
) -> Response {
    match state.identity.forgot_password(&form.email, &meta).await {
        Ok(()) => Notice::page(
            page.layout,
            "Check your email",
            "If an account uses this address, a link to choose a new password is on its way. It works once, for a limited time.",
            Some(("/login", "Back to sign in")),
        ),
        Err(e) => failure(page.layout, e),
    }
}
