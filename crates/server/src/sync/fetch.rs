//! Fetching from a sync source politely and safely: only the allow-listed origin, a declared
//! `User-Agent`, at most the configured requests per second across every instance that shares the
//! key-value store (the GCRA limiter, reserved before each request, retries included), backoff on
//! 429 and 5xx answers (`Retry-After` honoured, capped, and shared: a 429 or 503 pauses every
//! instance's requests to that source), and bodies read up to a limit.
//!
//! An answer is one of three kinds: worth retrying (429, 5xx, a cut-off body or a failed
//! connection), a reason to stop the whole run without retrying (403, which is how SEC answers a
//! client it has blocked, a redirect, any status not expected), or a failure of this one document
//! only (a body over the limit; 404 is returned to the caller, which decides).

use std::time::Duration;

use security::gcra::Quota;
use security::kv::KvStore;

use super::{Stop, SyncError};
use crate::market::outbound::{self, Destinations};

/// The limiter cell every instance shares for SEC's fair-access ceiling.
pub const SEC_LIMITER_KEY: &str = "sync:sec:fair-access";
/// Until when (ms since the epoch) every instance holds its requests after a 429 or 503.
pub const SEC_PAUSE_KEY: &str = "sync:sec:pause-until";

/// How long to wait between attempts, and how often to try.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Wait before the second attempt when the source gives no `Retry-After`; doubles each time.
    pub first: Duration,
    /// No wait is longer than this (a `Retry-After` beyond it is cut to it).
    pub longest: Duration,
    /// Attempts per request, the first included.
    pub attempts: u32,
}

impl Backoff {
    pub const DEFAULT: Self = Self {
        first: Duration::from_secs(2),
        longest: Duration::from_secs(120),
        attempts: 6,
    };

    fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or_else(|| {
                self.first
                    .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            })
            .min(self.longest)
    }
}

/// What a successful fetch returned.
#[derive(Debug)]
pub enum Fetched {
    Body {
        bytes: Vec<u8>,
        /// `ETag`, else `Last-Modified`, as `etag:…` / `modified:…` (a feed's checkpoint).
        validator: Option<String>,
    },
    NotFound,
    NotModified,
}

/// Why one request failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth trying again later, or a sign to stop (the run stops so nothing is skipped).
    #[error("{0}")]
    Unavailable(String),
    /// Trying again will not help (this document is reported failed).
    #[error("{0}")]
    Refused(String),
}

/// The client of one source (EDGAR, or a congressional feed).
pub struct SourceClient {
    client: reqwest::Client,
    origin: url::Origin,
    limiter: Option<(std::sync::Arc<dyn KvStore>, Quota)>,
    backoff: Backoff,
    /// Requests sent, retries included (for the summary).
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests answered with 429 or 5xx, or cut off.
    pub retried: std::sync::atomic::AtomicU64,
    source: &'static str,
}

impl SourceClient {
    /// A client for requests to `base`'s origin only. `limit` shares the rate through `kv`.
    pub fn new(
        source: &'static str,
        base: &url::Url,
        user_agent: &str,
        limit: Option<(std::sync::Arc<dyn KvStore>, u32)>,
        backoff: Backoff,
    ) -> Result<Self, SyncError> {
        let destinations = if crate::config::is_loopback_http(base) {
            // A local mirror (development, the test suite): configuration allowed it only on loopback.
            Destinations::PlainHttpLoopback
        } else {
            // The resolver that checks addresses is not consulted for an address literal.
            if !matches!(base.host(), Some(url::Host::Domain(_))) {
                return Err(SyncError::Setup(format!(
                    "{base} must name its host, not give an address"
                )));
            }
            Destinations::Public
        };
        let client = outbound::checked_client(destinations, Duration::from_secs(60), user_agent)
            .map_err(|e| SyncError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            origin: base.origin(),
            limiter: limit.map(|(kv, per_sec)| {
                let interval = Duration::from_micros(1_000_000 / u64::from(per_sec.max(1)));
                // One request per interval and no burst: requests start at least an interval apart.
                (kv, Quota::new(1, interval))
            }),
            backoff,
            requests: Default::default(),
            retried: Default::default(),
            source,
        })
    }

    /// GETs `url` (which must be on this client's origin), with `If-None-Match`/`If-Modified-Since`
    /// from `validator`, reading at most `max_bytes`.
    pub async fn get(
        &self,
        url: &url::Url,
        validator: Option<&str>,
        max_bytes: usize,
        stop: &Stop,
    ) -> Result<Fetched, FetchError> {
        if url.origin() != self.origin {
            return Err(FetchError::Refused(format!(
                "{} is outside the allowed origin {}",
                url,
                self.origin.ascii_serialization()
            )));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.reserve(stop).await?;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A stop does not wait for a slow answer.
            let answer = tokio::select! {
                answer = self.attempt(url, validator, max_bytes) => answer,
                () = stop.wait() => return Err(FetchError::Unavailable("interrupted".into())),
            };
            let retry_after = match answer {
                Ok(fetched) => return Ok(fetched),
                Err(Attempt::Refused(why)) => return Err(FetchError::Refused(why)),
                Err(Attempt::Halt(why)) => return Err(FetchError::Unavailable(why)),
                Err(Attempt::Again {
                    why,
                    retry_after,
                    pause_all,
                }) => {
                    self.retried
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if attempt >= self.backoff.attempts {
                        return Err(FetchError::Unavailable(format!(
                            "{why} ({attempt} attempts)"
                        )));
                    }
                    tracing::info!(source = self.source, %url, attempt, reason = %why, "sync request will be retried");
                    if pause_all {
                        self.pause_everyone(self.backoff.wait(attempt, retry_after))
                            .await;
                    }
                    retry_after
                }
            };
            let wait = self.backoff.wait(attempt, retry_after);
            if stop.sleep(wait).await {
                return Err(FetchError::Unavailable("interrupted".into()));
            }
        }
    }

    /// Holds every instance's requests to this source for `wait` (the source said it is
    /// overloaded or that we go too fast: the other requests in flight would hear the same).
    async fn pause_everyone(&self, wait: Duration) {
        let Some((kv, _)) = &self.limiter else { return };
        if wait.is_zero() {
            return;
        }
        let until =
            super::now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = kv.set(SEC_PAUSE_KEY, &until.to_string(), wait).await {
            tracing::warn!(error = %e, "the shared pause after a 429/503 was not written");
        }
    }

    /// Waits out a shared pause, then until the shared limiter admits one more request.
    async fn reserve(&self, stop: &Stop) -> Result<(), FetchError> {
        let Some((kv, quota)) = &self.limiter else {
            return Ok(());
        };
        let paused_until = kv
            .get(SEC_PAUSE_KEY)
            .await
            .map_err(|e| {
                FetchError::Unavailable(format!("the request limiter is unavailable: {e}"))
            })?
            .and_then(|until| until.parse::<i64>().ok());
        if let Some(until) = paused_until {
            let left = u64::try_from(until.saturating_sub(super::now_ms())).unwrap_or(0);
            if left > 0
                && stop
                    .sleep(Duration::from_millis(left).min(self.backoff.longest))
                    .await
            {
                return Err(FetchError::Unavailable("interrupted".into()));
            }
        }
        loop {
            let decision = kv.gcra(SEC_LIMITER_KEY, *quota, 1).await.map_err(|e| {
                // Without the shared limiter the ceiling cannot be kept: stop rather than guess.
                FetchError::Unavailable(format!("the request limiter is unavailable: {e}"))
            })?;
            if decision.allowed {
                return Ok(());
            }
            if stop.sleep(decision.retry_after).await {
                return Err(FetchError::Unavailable("interrupted".into()));
            }
        }
    }

    async fn attempt(
        &self,
        url: &url::Url,
        validator: Option<&str>,
        max_bytes: usize,
    ) -> Result<Fetched, Attempt> {
        let mut request = self.client.get(url.clone());
        match validator.and_then(|v| v.split_once(':')) {
            Some(("etag", tag)) => request = request.header(reqwest::header::IF_NONE_MATCH, tag),
            Some(("modified", date)) => {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
            }
            _ => {}
        }
        let response = request.send().await.map_err(|e| Attempt::Again {
            why: describe(&e),
            retry_after: None,
            pause_all: false,
        })?;
        let status = response.status().as_u16();
        metrics::counter!("tradesignal_sync_requests_total", "source" => self.source, "status" => status_class(status))
            .increment(1);
        match status {
            200 => {}
            304 => return Ok(Fetched::NotModified),
            404 => return Ok(Fetched::NotFound),
            429 | 500 | 502 | 503 | 504 => {
                return Err(Attempt::Again {
                    why: format!(
                        "{} answered HTTP {status}",
                        self.origin.ascii_serialization()
                    ),
                    retry_after: retry_after(response.headers()),
                    pause_all: matches!(status, 429 | 503),
                });
            }
            403 => {
                return Err(Attempt::Halt(format!(
                    "{} answered HTTP 403: SEC refuses clients that exceed its rate or do not declare \
                     who they are (check TRADESIGNAL_SEC_USER_AGENT); SEC lifts such a block after about \
                     10 minutes",
                    self.origin.ascii_serialization()
                )));
            }
            300..=399 => {
                return Err(Attempt::Halt(format!(
                    "{url} redirected (HTTP {status}); redirects are not followed"
                )));
            }
            _ => {
                return Err(Attempt::Halt(format!("{url} answered HTTP {status}")));
            }
        }
        let validator = header_text(response.headers(), reqwest::header::ETAG)
            .map(|tag| format!("etag:{tag}"))
            .or_else(|| {
                header_text(response.headers(), reqwest::header::LAST_MODIFIED)
                    .map(|date| format!("modified:{date}"))
            });
        if response
            .content_length()
            .is_some_and(|length| length > max_bytes as u64)
        {
            return Err(Attempt::Refused(format!(
                "{url} is over the {max_bytes}-byte limit"
            )));
        }
        let bytes = read_bounded(response, max_bytes)
            .await
            .map_err(|e| match e {
                Attempt::Again {
                    why,
                    retry_after,
                    pause_all,
                } => Attempt::Again {
                    why: format!("{url}: {why}"),
                    retry_after,
                    pause_all,
                },
                Attempt::Refused(why) => Attempt::Refused(format!("{url}: {why}")),
                Attempt::Halt(why) => Attempt::Halt(format!("{url}: {why}")),
            })?;
        Ok(Fetched::Body { bytes, validator })
    }
}

enum Attempt {
    /// Try again after a wait; `pause_all` holds the other requests to the source too.
    Again {
        why: String,
        retry_after: Option<Duration>,
        pause_all: bool,
    },
    /// Stop the run: retrying now would not help and may make things worse.
    Halt(String),
    /// This document fails; the run goes on.
    Refused(String),
}

async fn read_bounded(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, Attempt> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > max_bytes {
                    return Err(Attempt::Refused(format!(
                        "the body is over the {max_bytes}-byte limit"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            // A connection closed before the declared length arrived: a cut-off body.
            Err(e) => {
                return Err(Attempt::Again {
                    why: format!("the body was cut off ({})", describe(&e)),
                    retry_after: None,
                    pause_all: false,
                });
            }
        }
    }
}

fn header_text(
    headers: &reqwest::header::HeaderMap,
    name: reqwest::header::HeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by SEC; it falls back to the backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn status_class(status: u16) -> &'static str {
    match status {
        200 => "200",
        304 => "304",
        404 => "404",
        429 => "429",
        500..=599 => "5xx",
        _ => "other",
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else if error.is_body() || error.is_decode() {
        "the connection closed early".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let backoff = Backoff {
            first: Duration::from_secs(2),
            longest: Duration::from_secs(20),
            attempts: 6,
        };
        let waits: Vec<u64> = (1..=5).map(|a| backoff.wait(a, None).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 20]);
        assert_eq!(backoff.wait(1, Some(Duration::from_secs(7))).as_secs(), 7);
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(600))).as_secs(),
            20
        );
    }
}
