//! The web UI in a real browser: headless Chromium driven through chromedriver (WebDriver). The walk
//! covers register → verify (from the outbox) → login → 2FA enrolment (the test computes the code) →
//! logout → login with the second factor → trade filters → watchlist → alert → revoking another
//! session → an API key used by an HTTP client → a staff member unlocking a locked user. Every page is
//! checked for console errors (CSP violations and script errors land there), resources from other
//! origins (mixed content), and the server must receive no CSP report. A forged cross-origin form
//! post from a page the test serves on another port is refused.
//!
//! Runs when `TRADESIGNAL_TEST_CHROMEDRIVER` names the chromedriver binary (`.ci/run` installs
//! Debian's `chromium` and `chromium-driver` and sets it); a set but unusable driver fails the test.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::*;
use crate::market_data::{Synthetic, days_ago, ingest_text};

/// How long an element may take to appear (the suite runs browsers beside other tests on 2 cores).
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver as a child process, killed when dropped.
pub struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, or `None` when browser tests are not configured here.
pub async fn start_browser(width: u32, height: u32) -> Option<(Driver, Client)> {
    let Ok(driver_path) = std::env::var("TRADESIGNAL_TEST_CHROMEDRIVER") else {
        eprintln!("browser test skipped: TRADESIGNAL_TEST_CHROMEDRIVER is not set");
        return None;
    };
    let chromium =
        std::env::var("TRADESIGNAL_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let child = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("TRADESIGNAL_TEST_CHROMEDRIVER={driver_path} cannot start: {e}")
        });
    let driver = Driver { child };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", format!("--window-size={width},{height}")],
        }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("chromedriver at port {port} did not start a browser: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// chromedriver's log endpoint: the browser console since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

pub async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

pub async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn heading(client: &Client) -> String {
    text_of(client, "h1").await
}

/// Waits until the page's `h1` reads `expected` (after a form submission navigates).
async fn expect_heading(client: &Client, expected: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = client
            .find(Locator::Css("h1"))
            .await
            .ok()
            .map(|h| async move { h.text().await.unwrap_or_default() });
        let text = match now {
            Some(text) => text.await,
            None => String::new(),
        };
        if text == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected the page {expected:?}, found {text:?} at {}",
            client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page in the browser has no console errors (CSP violations and script errors are logged
/// there), and loaded nothing from another origin.
pub async fn check_page(client: &Client, app: &TestApp) {
    let page = client.current_url().await.expect("url").to_string();
    let log = client.issue_cmd(BrowserLog).await.expect("browser log");
    let problems: Vec<String> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
        // A page answered with a 4xx on purpose (a wrong code) is not a page defect.
        .filter(|message| !message.contains("the server responded with a status of 4"))
        .collect();
    assert!(
        problems.is_empty(),
        "console problems on {page}: {problems:?}"
    );
    let resources = client
        .execute(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });",
            vec![],
        )
        .await
        .expect("resources");
    for resource in resources.as_array().into_iter().flatten() {
        let name = resource.as_str().unwrap_or_default();
        assert!(
            name.starts_with(&app.base) || name.starts_with("data:"),
            "{page} loaded {name} from elsewhere"
        );
    }
}

/// An instance a browser talks to: its public URL is its own address.
fn in_browser() -> Options {
    Options {
        public_url_is_self: true,
        ..Options::default()
    }
}

async fn csp_reports(app: &TestApp) -> i64 {
    sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM csp_reports")
        .fetch_one(app.state.db.pool())
        .await
        .expect("count")
}

/// Visits `path` and checks the page.
async fn visit(client: &Client, app: &TestApp, path: &str) {
    client.goto(&app.url(path)).await.expect("goto");
    check_page(client, app).await;
}

async fn ingest_recent_trades(app: &TestApp) {
    for (ticker, code, days, owner) in [
        ("TSTX", "P", 5, "0000880001"),
        ("TSTX", "S", 12, "0000880002"),
        ("ACME", "P", 20, "0000880003"),
    ] {
        let filing = Synthetic {
            ticker,
            code,
            owner_cik: owner,
            issuer_cik: if ticker == "TSTX" {
                "0000990001"
            } else {
                "0000990002"
            },
            date: days_ago(days),
            ..Synthetic::default()
        };
        ingest_text(app, &filing.xml()).await;
    }
}

async fn sign_in(client: &Client, app: &TestApp, email: &str, password: &str) {
    visit(client, app, "/login").await;
    fill(client, "#email", email).await;
    fill(client, "#password", password).await;
    click(client, "form[action='/login'] button[type=submit]").await;
}

async fn sign_out(client: &Client) {
    click(client, "form[action='/logout'] button[type=submit]").await;
    expect_heading(client, "Sign in").await;
}

backend_test!(an_investor_walks_every_flow_in_chromium, |backend| {
    let _quiet = quiet_machine().await;
    let Some((_driver, client)) = start_browser(1280, 900).await else {
        return;
    };
    // Behind a (loopback) proxy, so the lockout below can come from several addresses.
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".to_string())],
            public_url_is_self: true,
            ..Options::default()
        },
    )
    .await;
    ingest_recent_trades(&app).await;
    let email = "walker@example.com";

    for path in ["/", "/login", "/forgot-password"] {
        visit(&client, &app, path).await;
    }
    // Register, with the live strength meter answering.
    visit(&client, &app, "/register").await;
    fill(&client, "#email", email).await;
    fill(&client, "#password", PASSWORD).await;
    text_of(&client, "#strength-feedback li").await;
    let score = client
        .find(Locator::Css("#strength"))
        .await
        .expect("meter")
        .attr("data-score")
        .await
        .expect("attr");
    assert!(
        matches!(score.as_deref(), Some("3" | "4")),
        "meter score {score:?}"
    );
    click(&client, "form[action='/register'] button[type=submit]").await;
    expect_heading(&client, "Check your email").await;
    check_page(&client, &app).await;

    // Verify from the outbox.
    let token = token_in(&app.mail_to(email).await, "/verify-email?token=");
    visit(&client, &app, &format!("/verify-email?token={token}")).await;
    click(&client, "#link-action").await;
    expect_heading(&client, "Email address verified").await;

    // Sign in, then turn on 2FA with a code the test computes.
    sign_in(&client, &app, email, PASSWORD).await;
    expect_heading(&client, "Dashboard").await;
    check_page(&client, &app).await;
    visit(&client, &app, "/account/security").await;
    click(&client, "#setup-2fa").await;
    let secret = text_of(&client, "#totp-secret").await;
    let mut authenticator = Authenticator::new(&secret);
    check_page(&client, &app).await;
    fill(&client, "#enable-code", &authenticator.code().await).await;
    click(&client, "#enable-2fa").await;
    let codes = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#backup-codes"))
        .await
        .expect("backup codes")
        .find_all(Locator::Css("li"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10, "ten backup codes shown once");
    check_page(&client, &app).await;

    // Sign out, and in again with the second factor.
    sign_out(&client).await;
    sign_in(&client, &app, email, PASSWORD).await;
    expect_heading(&client, "Enter your code").await;
    check_page(&client, &app).await;
    fill(&client, "#code", &authenticator.code().await).await;
    click(&client, "form[action='/login/mfa'] button[type=submit]").await;
    expect_heading(&client, "Dashboard").await;
    check_page(&client, &app).await;

    // Filter trades.
    visit(&client, &app, "/trades").await;
    fill(&client, "#f-ticker", "TSTX").await;
    click(&client, "#f-sort option[value='-value']").await;
    click(&client, "#apply-filters").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !client
        .current_url()
        .await
        .expect("url")
        .as_str()
        .contains("ticker=TSTX")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the filter did not apply"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        text_of(&client, "main section:nth-of-type(2) h2").await,
        "2 trades"
    );
    check_page(&client, &app).await;
    visit(&client, &app, "/companies/TSTX").await;
    client
        .find(Locator::Css("svg.chart rect.bar-buy"))
        .await
        .expect("a chart of buys and sells");

    // A watchlist, then one more ticker in it.
    visit(&client, &app, "/watchlists").await;
    fill(&client, "#wl-name", "Chips").await;
    fill(&client, "#wl-tickers", "TSTX").await;
    click(&client, "#create-watchlist").await;
    expect_heading(&client, "Watchlists").await;
    fill(
        &client,
        "form[action$='/tickers'] input[name=ticker]",
        "ACME",
    )
    .await;
    click(&client, "form[action$='/tickers'] button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !client.source().await.expect("source").contains(">ACME</a>") {
        assert!(tokio::time::Instant::now() < deadline, "ticker not added");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_page(&client, &app).await;

    // An alert.
    visit(&client, &app, "/alerts").await;
    fill(&client, "#al-name", "Big TSTX buys").await;
    fill(&client, "#al-ticker", "TSTX").await;
    fill(&client, "#al-codes", "P").await;
    fill(&client, "#al-min", "1000").await;
    click(&client, "#create-alert").await;
    expect_heading(&client, "Alerts").await;
    assert!(
        client
            .source()
            .await
            .expect("source")
            .contains("Big TSTX buys")
    );
    check_page(&client, &app).await;
    click(&client, "main table a[href^='/alerts/']").await;
    expect_heading(&client, "Big TSTX buys").await;
    check_page(&client, &app).await;
    for path in [
        "/account",
        "/insiders/0000880001",
        "/companies/ACME",
        "/trades?code=P&page=1",
    ] {
        visit(&client, &app, path).await;
    }

    // Revoke another session (an API client's) from the browser.
    let api = app.login_with_totp(email, &mut authenticator).await;
    let sid = jwt_claims(&api.access)["sid"]
        .as_str()
        .expect("sid")
        .to_string();
    visit(&client, &app, "/account/security").await;
    click(&client, &format!("button[data-session='{sid}']")).await;
    text_of(&client, "#security-message").await;
    assert_eq!(app.get_as(&api, "/api/v1/auth/me").await.status(), 401);
    check_page(&client, &app).await;

    // An API key, shown once, used by a program.
    fill(&client, "#key-name", "notebook").await;
    click(&client, "#create-key").await;
    let key = text_of(&client, "#new-api-key").await;
    check_page(&client, &app).await;
    let response = app
        .client
        .get(app.url("/api/v1/trades?ticker=TSTX"))
        .header("x-api-key", key.trim())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["total"], 2);

    // A support engineer unlocks a locked user.
    sign_out(&client).await;
    app.create_user("locked@example.com", "user").await;
    for attempt in 0..5 {
        browser()
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{attempt}"))
            .json(&json!({"email": "locked@example.com", "password": "Wrong-Password-1!"}))
            .send()
            .await
            .expect("request");
    }
    let locked = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "locked@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(locked.status(), 429, "locked");
    let (_, _, mut staff) = app
        .create_user_with_2fa("helpdesk@example.com", "support")
        .await;
    sign_in(&client, &app, "helpdesk@example.com", PASSWORD).await;
    expect_heading(&client, "Enter your code").await;
    fill(&client, "#code", &staff.code().await).await;
    click(&client, "form[action='/login/mfa'] button[type=submit]").await;
    expect_heading(&client, "Dashboard").await;
    visit(&client, &app, "/admin/users?q=locked").await;
    click(&client, "main table a[href^='/admin/users/']").await;
    expect_heading(&client, "locked@example.com").await;
    let lock_state = text_of(&client, "#lock-state").await;
    assert!(lock_state.starts_with("until"), "lock state {lock_state:?}");
    check_page(&client, &app).await;
    click(&client, "#unlock").await;
    assert_eq!(text_of(&client, "#admin-message").await, "Unlocked.");
    assert_eq!(text_of(&client, "#lock-state").await, "no");
    check_page(&client, &app).await;
    for path in [
        "/admin",
        "/admin/audit?subject=x",
        "/admin/alerts",
        "/congressional-trades",
    ] {
        visit(&client, &app, path).await;
        assert!(!heading(&client).await.is_empty());
    }
    let unlocked = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "locked@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unlocked.status(), 200, "the user signs in again");

    assert_eq!(
        csp_reports(&app).await,
        0,
        "no CSP report reached the server"
    );
    client.close().await.expect("close");
});

/// A page on another origin that posts a form to the service as soon as it loads.
async fn attacker_site(target: &str) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let html = format!(
        "<!doctype html><html><body><form id=\"f\" method=\"post\" action=\"{target}\">\
         <input name=\"name\" value=\"Forged\"><input name=\"csrf_token\" value=\"guess\"></form>\
         <script>document.getElementById('f').submit();</script></body></html>"
    );
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, task)
}

backend_test!(
    a_forged_cross_origin_post_is_refused_in_chromium,
    |backend| {
        let _quiet = quiet_machine().await;
        let Some((_driver, client)) = start_browser(1280, 900).await else {
            return;
        };
        let app = TestApp::spawn_with(backend, in_browser()).await;
        let user_id = app.create_user("victim@example.com", "user").await;
        sign_in(&client, &app, "victim@example.com", PASSWORD).await;
        expect_heading(&client, "Dashboard").await;
        let (attacker, task) = attacker_site(&app.url("/watchlists")).await;
        client
            .goto(&format!("http://{attacker}/"))
            .await
            .expect("attacker page");
        // The browser follows the forged form to the service, which refuses it.
        expect_heading(&client, "This request was refused").await;
        let lists = app
            .state
            .db
            .list_watchlists(&user_id, 10, 0)
            .await
            .expect("lists");
        assert!(lists.is_empty(), "the forged post changed nothing");
        let trail = app.audit_trail(Some(&user_id)).await.expect("trail");
        assert!(trail.contains(&"csrf.rejected".to_string()), "{trail:?}");
        task.abort();
        client.close().await.expect("close");
    }
);

backend_test!(
    the_page_checks_see_a_csp_violation_when_there_is_one,
    |backend| {
        let _quiet = quiet_machine().await;
        let Some((_driver, client)) = start_browser(1280, 900).await else {
            return;
        };
        let app = TestApp::spawn_with(backend, in_browser()).await;
        visit(&client, &app, "/login").await;
        // An inline event handler, injected the way an XSS would: the policy blocks it, the console says
        // so and the browser reports it to the server.
        client
            .execute(
                "var d = document.createElement('div'); \
             d.innerHTML = '<img src=\"/nothing-here\" onerror=\"window.ran = 1\">'; \
             document.body.appendChild(d);",
                vec![],
            )
            .await
            .expect("inject");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ran = client
            .execute("return window.ran === 1;", vec![])
            .await
            .expect("probe");
        assert_eq!(ran, Value::Bool(false), "the inline handler was blocked");
        let log = client.issue_cmd(BrowserLog).await.expect("browser log");
        assert!(
            log.to_string().contains("Content Security Policy"),
            "the console shows the violation: {log}"
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        while csp_reports(&app).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the violation was not reported to the server"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        client.close().await.expect("close");
    }
);

/// Pages `scripts/screenshots` captures, signed out and then as a super administrator with data.
const SIGNED_OUT_PAGES: [(&str, &str); 3] = [
    ("login", "/login"),
    ("register", "/register"),
    ("forgot-password", "/forgot-password"),
];

/// Writes a PNG of every page at desktop and phone width into `TRADESIGNAL_SCREENSHOTS_DIR` (run by
/// `scripts/screenshots`; ignored in the normal suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes screenshots; run by scripts/screenshots"]
async fn screenshots() {
    let dir = std::path::PathBuf::from(
        std::env::var("TRADESIGNAL_SCREENSHOTS_DIR").expect("TRADESIGNAL_SCREENSHOTS_DIR"),
    );
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let _quiet = quiet_machine().await;
    let Some((_driver, client)) = start_browser(1280, 900).await else {
        panic!("set TRADESIGNAL_TEST_CHROMEDRIVER to take screenshots");
    };
    let app = TestApp::spawn_with(Backend::Embedded, in_browser()).await;
    crate::market_data::ingest_real(&app).await;
    ingest_recent_trades(&app).await;
    for file in ["house.json", "senate.json"] {
        server::market::congress::ingest_file(
            &app.state.db,
            &crate::market_data::congress_file(file),
            time::OffsetDateTime::now_utc().unix_timestamp(),
            |_, _| {},
        )
        .await
        .expect("congress");
    }
    let shoot = |name: String| {
        let client = &client;
        let dir = dir.clone();
        async move {
            for (label, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
                client.set_window_size(width, height).await.expect("size");
                client.refresh().await.expect("reload at this width");
                let png = client.screenshot().await.expect("screenshot");
                std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write png");
            }
        }
    };
    for (name, path) in SIGNED_OUT_PAGES {
        visit(&client, &app, path).await;
        shoot(name.to_string()).await;
    }
    // A super administrator on the Pro plan, so every page has something to show.
    let (admin_id, _, mut authenticator) = app
        .create_user_with_2fa("admin@example.com", "super_admin")
        .await;
    let change = store::identity::users::AdminChange {
        tier: Some("pro".into()),
        ..Default::default()
    };
    app.state
        .db
        .admin_update_user(
            &admin_id,
            &change,
            "stamp-pro",
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .await
        .expect("pro");
    client.set_window_size(1280, 900).await.expect("size");
    sign_in(&client, &app, "admin@example.com", PASSWORD).await;
    expect_heading(&client, "Enter your code").await;
    shoot("login-mfa".into()).await;
    fill(&client, "#code", &authenticator.code().await).await;
    click(&client, "form[action='/login/mfa'] button[type=submit]").await;
    expect_heading(&client, "Dashboard").await;
    client.set_window_size(1280, 900).await.expect("size");
    visit(&client, &app, "/watchlists").await;
    fill(&client, "#wl-name", "Cloud software").await;
    fill(&client, "#wl-tickers", "SNOW, TSTX").await;
    click(&client, "#create-watchlist").await;
    expect_heading(&client, "Watchlists").await;
    visit(&client, &app, "/alerts").await;
    fill(&client, "#al-name", "Large SNOW sales").await;
    fill(&client, "#al-ticker", "SNOW").await;
    fill(&client, "#al-codes", "S").await;
    click(&client, "#create-alert").await;
    expect_heading(&client, "Alerts").await;
    for (name, path) in [
        ("dashboard", "/".to_string()),
        ("trades", "/trades?sort=-value".to_string()),
        ("company", "/companies/SNOW".to_string()),
        ("insider", "/insiders/0000880001".to_string()),
        ("congressional-trades", "/congressional-trades".to_string()),
        ("watchlists", "/watchlists".to_string()),
        ("alerts", "/alerts".to_string()),
        ("account", "/account".to_string()),
        ("account-security", "/account/security".to_string()),
        ("admin", "/admin".to_string()),
        ("admin-users", "/admin/users".to_string()),
        ("admin-user", format!("/admin/users/{admin_id}")),
        ("admin-audit", "/admin/audit".to_string()),
        ("admin-alerts", "/admin/alerts".to_string()),
    ] {
        client.set_window_size(1280, 900).await.expect("size");
        visit(&client, &app, &path).await;
        shoot(name.to_string()).await;
    }
    client.close().await.expect("close");
}
