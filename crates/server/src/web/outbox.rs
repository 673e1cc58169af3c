//! `GET /dev/outbox`: the development outbox as a page, so a newcomer can click the verification link
//! of the account they just registered. Mounted only in development with the file outbox (no SMTP),
//! and answered only to loopback clients (anyone else gets the usual 404): the messages carry
//! one-time tokens.

use std::path::Path;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::http::{ClientIp, CspNonce, NoStore};
use crate::state::AppState;

/// Newest messages shown.
const SHOWN: usize = 50;
/// Larger files are not outbox messages (ours are a few hundred bytes); skipped.
const MAX_MESSAGE_BYTES: u64 = 64 * 1024;

/// A piece of a message body: text, or a link into this service.
pub struct Piece {
    pub text: String,
    pub link: bool,
}

pub struct Message {
    pub to: String,
    pub subject: String,
    pub date: String,
    pub lines: Vec<Vec<Piece>>,
}

#[derive(Template, WebTemplate)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub nonce: String,
    pub folder: String,
    pub messages: Vec<Message>,
}

/// Whether the outbox page exists in this configuration.
pub fn enabled(settings: &crate::config::Settings) -> bool {
    !settings.is_production() && settings.smtp_url.is_none()
}

pub async fn outbox(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    CspNonce(nonce): CspNonce,
) -> Response {
    if !ip.is_loopback() {
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
        nonce: nonce.to_string(),
        folder: folder.display().to_string(),
        messages,
    };
    let mut response = page.into_response();
    // One-time tokens: never cached.
    response.extensions_mut().insert(NoStore);
    response
}

/// The newest messages of the folder (file names are time-ordered UUIDs).
fn read_messages(folder: &Path, origin: &str) -> Vec<Message> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= MAX_MESSAGE_BYTES)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .rev()
        .take(SHOWN)
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| parse_message(&text, origin))
        .collect()
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
        lines: body.lines().map(|line| pieces(line, origin)).collect(),
    }
}

/// Splits a line into text and links; only links into this service's own origin are links (a
/// message never sends the reader elsewhere, and no `javascript:` URL can become one).
fn pieces(line: &str, origin: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let own = word.starts_with(&format!("{origin}/"))
            && (word.starts_with("http://") || word.starts_with("https://"));
        if own {
            if !text.is_empty() {
                out.push(Piece {
                    text: std::mem::take(&mut text),
                    link: false,
                });
            }
            out.push(Piece {
                text: word.to_string(),
                link: true,
            });
        } else {
            text.push_str(word);
        }
    }
    if !text.is_empty() {
        out.push(Piece { text, link: false });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_into_this_service_become_links() {
        let message = parse_message(
            "From: a\r\nTo: new@example.com\r\nSubject: Confirm\r\n\r\nOpen http://127.0.0.1:8080/verify-email?token=abc now\r\n\
             javascript:alert(1) http://evil.example/x http://127.0.0.1:8080.evil.example/y\r\n",
            "http://127.0.0.1:8080",
        );
        assert_eq!(message.to, "new@example.com");
        assert_eq!(message.subject, "Confirm");
        let links: Vec<&str> = message
            .lines
            .iter()
            .flatten()
            .filter(|p| p.link)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(links, ["http://127.0.0.1:8080/verify-email?token=abc"]);
        let text: String = message.lines[0].iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            text,
            "Open http://127.0.0.1:8080/verify-email?token=abc now"
        );
    }
}
