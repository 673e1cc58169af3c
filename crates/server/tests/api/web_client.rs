//! A browser-like HTTP client for the web UI tests: its own cookie jar, no redirects followed, and
//! the CSRF token read from the page the way a form carries it.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};

use crate::helpers::TestApp;

pub struct Web {
    pub client: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

/// The value of the first hidden `csrf_token` field of a page.
pub fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token field in the page:\n{page}"))
        + marker.len();
    page[start..].split('"').next().expect("token").to_string()
}

impl Web {
    pub fn new(app: &TestApp) -> Self {
        server::market::outbound::install_crypto_provider();
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            client,
            jar,
            base: app.base.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Status and body of a page.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// The CSRF token the forms of `path` carry.
    pub async fn token(&self, path: &str) -> String {
        let (status, page) = self.page(path).await;
        assert!(status < 400, "{path}: {status}");
        csrf_in(&page)
    }

    pub async fn post_form(
        &self,
        path: &str,
        form: &[(String, String)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let owned: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.post_form(path, &owned, headers).await
    }

    /// The login form, submitted; the response (303 on success).
    pub async fn login(&self, email: &str, password: &str, next: &str) -> reqwest::Response {
        let token = self.token("/login").await;
        self.post_raw(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
            &[],
        )
        .await
    }

    /// The value of cookie `name` this client would send.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        let url = self.base.parse().expect("url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }
}
