//! The HTTP client for outside requests (alert webhooks, and the base of the syncs' client), built so a webhook URL cannot reach inside the
//! network (SSRF): https only, every resolved address checked at connection time (so a DNS answer
//! that changed since the URL was accepted — rebinding — is refused too), no proxy, no redirects,
//! a 5-second deadline and a bounded response read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use market::webhook::{self, UrlProblem};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Deliveries give up after this long (connect, TLS, request and response together).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which destinations are acceptable. Production and development use `Public`. `PlainHttpLoopback`
/// allows plain http to 127.0.0.1: for webhooks only the test suite can choose it (no variable
/// sets it, since webhook URLs are users' input); for the syncs, an operator's development
/// configuration can (a local mirror; production refuses it), and the tests' fake EDGAR uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destinations {
    Public,
    PlainHttpLoopback,
}

/// Installs ring as the process's rustls provider (the whole tree uses ring; reqwest needs one
/// chosen explicitly). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The message shown for a URL problem. Every "where it points" problem gets the same words, so the
/// answers cannot be used to learn which internal names resolve.
pub fn public_message(problem: UrlProblem) -> &'static str {
    match problem {
        UrlProblem::PrivateAddress | UrlProblem::ResolvesPrivate | UrlProblem::NoAddresses => {
            "The webhook URL must resolve to public internet addresses only."
        }
        other => other.message(),
    }
}

/// Checks a webhook URL as typed (format, scheme, literal addresses, internal names).
pub fn check_url(destinations: Destinations, text: &str) -> Result<url::Url, UrlProblem> {
    if destinations == Destinations::PlainHttpLoopback
        && let Ok(url) = url::Url::parse(text)
        && url.scheme() == "http"
        && url.host_str() == Some("127.0.0.1")
    {
        return Ok(url);
    }
    webhook::check_webhook_url(text).map(|u| u.url().clone())
}

/// Resolves the URL's host and checks every address (API.md: resolved addresses must not be
/// private, loopback, link-local or metadata addresses).
pub async fn check_resolves_public(
    destinations: Destinations,
    url: &url::Url,
) -> Result<(), UrlProblem> {
    let Some(host) = url.host_str() else {
        return Err(UrlProblem::NoHost);
    };
    if destinations == Destinations::PlainHttpLoopback && host == "127.0.0.1" {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return webhook::check_resolved(&[ip]);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::time::timeout(
        DELIVERY_TIMEOUT,
        tokio::net::lookup_host((host.to_string(), port)),
    )
    .await
    .map_err(|_| UrlProblem::NoAddresses)?
    .map_err(|_| UrlProblem::NoAddresses)?;
    let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
    webhook::check_resolved(&ips)
}

/// A resolver that refuses any name with a non-public address among its answers.
struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            webhook::check_resolved(&ips)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The delivering client.
#[derive(Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    destinations: Destinations,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    /// Why it failed, in words safe to show the alert's owner (no secrets, no addresses).
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A client for outside requests with the protections every outbound request needs: TLS with the
/// public roots on ring, no proxy, no redirects, a deadline, and for `Public` https only and every
/// resolved address checked public at connection time. Webhook deliveries and the syncs from SEC
/// EDGAR and the congressional feeds both build on it.
pub fn checked_client(
    destinations: Destinations,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(DELIVERY_TIMEOUT))
        .user_agent(user_agent);
    if let Ok(tls) = tls {
        builder = builder.tls_backend_preconfigured(tls);
    }
    if destinations == Destinations::Public {
        builder = builder
            .https_only(true)
            .dns_resolver(Arc::new(CheckedResolver));
    }
    builder.build()
}

impl WebhookClient {
    pub fn new(destinations: Destinations) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: checked_client(destinations, DELIVERY_TIMEOUT, "TradeSignal-Webhooks/1.0")?,
            destinations,
        })
    }

    /// POSTs `body` with its signature. The URL is checked again first: literal addresses skip
    /// the resolver, and the rules may have tightened since the alert was saved.
    pub async fn deliver(&self, url: &str, signature: &str, body: Vec<u8>) -> Attempt {
        let url = match check_url(self.destinations, url) {
            Ok(url) => url,
            Err(problem) => {
                return Attempt {
                    status: None,
                    error: Some(public_message(problem).to_string()),
                };
            }
        };
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                // The body is not needed; dropping it closes the connection without reading more.
                drop(response);
                Attempt {
                    status: Some(status),
                    error: (!(200..300).contains(&status))
                        .then(|| format!("the endpoint answered HTTP {status}")),
                }
            }
            Err(e) => Attempt {
                status: None,
                error: Some(describe(&e)),
            },
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if let Some(problem) = e.downcast_ref::<UrlProblem>() {
            return public_message(*problem).to_string();
        }
        source = e.source();
    }
    if error.is_timeout() {
        "the endpoint did not answer within 5 seconds".into()
    } else if error.is_connect() {
        "could not connect to the endpoint".into()
    } else if error.is_redirect() {
        "the endpoint redirected; redirects are not followed".into()
    } else {
        "the request failed".into()
    }
}
