//! `GET /dev/outbox?key=…`: the development outbox as a page, so a newcomer can click the verification
//! link of the account they just registered. The messages carry one-time tokens (reset, unlock), so
//! the page exists only in development with the file outbox (no SMTP), with this instance listening
//! on loopback and its public URL on loopback; and it answers (anyone else gets the usual 404) only a
//! request made on this machine straight to the instance — a loopback peer that is not a trusted
//! proxy, no forwarding headers, a loopback `Host` — that carries the key `serve` printed at start
//! (tunnels and port forwards add no headers; the key stops them, and other local users).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::http::{CspNonce, NoStore};
use crate::state::AppState;

/// Newest messages shown.
const SHOWN: usize = 50;
/// Larger files are not outbox messages (ours are a few hundred bytes); skipped.
const MAX_MESSAGE_BYTES: u64 = 64 * 1024;
/// Headers a proxy or load balancer adds: a request carrying one did not come straight from here.
const FORWARDING_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];
/// The paths of the links the service's own mails carry; nothing else in a mail becomes a link.
const LINK_PATHS: [&str; 7] = [
    "/verify-email",
    "/reset-password",
    "/confirm-email",
    "/unlock",
    "/forgot-password",
    "/account/security",
    "/api/v1/admin/security/alerts",
];

/// A line of a message body: text, or (when the whole line is one) a link into this service.
pub struct Line {
    pub text: String,
    pub link: bool,
}

pub struct Message {
    pub to: String,
    pub subject: String,
    pub date: String,
    pub lines: Vec<Line>,
}

#[derive(Template, WebTemplate)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub layout: super::context::Layout,
    pub folder: String,
    pub messages: Vec<Message>,
}

#[derive(serde::Deserialize)]
pub struct KeyQuery {
    key: Option<String>,
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// Whether the outbox page exists in this configuration.
pub fn enabled(settings: &crate::config::Settings) -> bool {
    !settings.is_production()
        && settings.smtp_url.is_none()
        && settings.listen.ip().is_loopback()
        && settings.public_url.host_str().is_some_and(is_loopback_host)
}

/// Whether this request was made on this machine straight to this instance, with the page's key.
fn admitted(
    state: &AppState,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    key: Option<&str>,
) -> bool {
    let from_here = peer.is_some_and(|ip| {
        ip.is_loopback()
            && !state
                .settings
                .trusted_proxies
                .iter()
                .any(|net| net.contains(&ip))
    });
    let forwarded = FORWARDING_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name));
    let host_here = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| url::Url::parse(&format!("http://{h}/")).ok())
        .is_some_and(|u| u.host_str().is_some_and(is_loopback_host));
    let key_ok = key
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(state.dev_outbox_key.as_bytes())));
    from_here && !forwarded && host_here && key_ok
}

pub async fn outbox(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Query(query): Query<KeyQuery>,
    CspNonce(nonce): CspNonce,
) -> Response {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if !admitted(&state, peer, &headers, query.key.as_deref()) {
        return crate::ops::not_found().await.into_response();
    }
    let folder = state.settings.data_dir.join("outbox");
    let origin = state.settings.public_url.origin().ascii_serialization();
    let messages = tokio::task::spawn_blocking({
        let folder = folder.clone();
        move || read_messages(&folder, &origin)
    })
    .await
    .unwrap_or_default();
    let page = OutboxPage {
        layout: super::context::Layout::bare(nonce.to_string()),
        folder: folder.display().to_string(),
        messages,
    };
    let mut response = page.into_response();
    // One-time tokens: never cached.
    response.extensions_mut().insert(NoStore);
    response
}

/// The newest messages of the folder (file names are time-ordered UUIDs). The folder itself must not
/// be a symbolic link, and neither may a message.
fn read_messages(folder: &Path, origin: &str) -> Vec<Message> {
    if std::fs::symlink_metadata(folder).map_or(true, |m| !m.is_dir()) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|path| path.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .rev()
        .filter_map(|path| read_message_file(path))
        .take(SHOWN)
        .map(|text| parse_message(&text, origin))
        .collect()
}

/// A regular file's text, at most `MAX_MESSAGE_BYTES`: checked without following links, then opened
/// and checked again to be the same file (a file swapped for a link in between is refused).
fn read_message_file(path: &Path) -> Option<String> {
    let before = std::fs::symlink_metadata(path).ok()?;
    if !before.is_file() || before.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let opened = file.metadata().ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (before.dev(), before.ino()) != (opened.dev(), opened.ino()) {
            return None;
        }
    }
    if !opened.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_MESSAGE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Headers and body of an outbox `.eml` (plain text, 8bit, as `store::mail::FileOutbox` writes it).
pub fn parse_message(text: &str, origin: &str) -> Message {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap_or((text, ""));
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                line.split_once(':')
                    .filter(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    Message {
        to: header("To"),
        subject: header("Subject"),
        date: header("Date"),
        lines: body
            .lines()
            .map(|line| Line {
                link: is_service_link(line.trim(), origin),
                text: line.to_string(),
            })
            .collect(),
    }
}

/// Whether a whole line is a link the service's mails carry: this origin, one of their paths, and at
/// most a `token` of URL-safe characters. Text a client chose (a user agent on a `Device:` line)
/// never is, and no `javascript:` or other host can be.
fn is_service_link(line: &str, origin: &str) -> bool {
    let Some(rest) = line.strip_prefix(origin) else {
        return false;
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    LINK_PATHS.contains(&path)
        && (query.is_empty()
            || query.strip_prefix("token=").is_some_and(|token| {
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_linking_into_this_service_become_links() {
        let message = parse_message(
            "From: a\r\nTo: new@example.com\r\nSubject: Confirm\r\n\r\nConfirm within 24 hours:\r\n\
             http://127.0.0.1:8080/verify-email?token=abc_-9\r\n\
             Device: http://127.0.0.1:8080/reset-password?token=attacker\r\n\
             javascript:alert(1)\r\nhttp://evil.example/verify-email?token=x\r\n\
             http://127.0.0.1:8080.evil.example/verify-email?token=x\r\n\
             http://127.0.0.1:8080/elsewhere?token=x\r\n\
             http://127.0.0.1:8080/verify-email?token=a\"onmouseover=x\r\n",
            "http://127.0.0.1:8080",
        );
        assert_eq!(message.to, "new@example.com");
        assert_eq!(message.subject, "Confirm");
        let links: Vec<&str> = message
            .lines
            .iter()
            .filter(|l| l.link)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(links, ["http://127.0.0.1:8080/verify-email?token=abc_-9"]);
        assert_eq!(message.lines.len(), 8);
    }

    #[test]
    fn the_page_exists_only_on_a_loopback_development_instance_without_smtp() {
        let load = |vars: &[(&str, &str)]| {
            let env = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            crate::config::load(None, &env).expect("loads")
        };
        assert!(enabled(&load(&[])));
        assert!(!enabled(&load(&[("TRADESIGNAL_ENV", "production")])));
        assert!(!enabled(&load(&[(
            "TRADESIGNAL_SMTP_URL",
            "smtp://127.0.0.1:25"
        )])));
        assert!(!enabled(&load(&[("TRADESIGNAL_LISTEN", "0.0.0.0:8080")])));
        assert!(!enabled(&load(&[(
            "TRADESIGNAL_PUBLIC_URL",
            "https://dev.example.com"
        )])));
    }
}
