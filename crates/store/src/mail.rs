//! Outgoing mail. `Mailer` is the port; `SmtpMailer` sends over SMTP with TLS (production);
//! `FileOutbox` writes each message as an RFC 5322 `.eml` file (the development default, and what tests
//! read links from).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// A plain-text message.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot write to the outbox {path}: {source}")]
    Outbox {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mail delivery failed: {0}")]
    Delivery(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: Email) -> Result<(), MailError>;
}

/// Writes messages to a folder.
#[derive(Debug, Clone)]
pub struct FileOutbox {
    dir: PathBuf,
    from: String,
}

/// Header values cannot carry line breaks (header injection).
fn header_safe(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

impl FileOutbox {
    pub fn new(dir: impl Into<PathBuf>, from: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            from: from.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The message as RFC 5322 text.
    pub fn render(&self, email: &Email, date: &str, message_id: &str) -> String {
        let body = email.body.replace("\r\n", "\n").replace('\n', "\r\n");
        format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@tradesignal>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            header_safe(&self.from),
            header_safe(&email.to),
            header_safe(&email.subject),
            date,
            message_id,
            body
        )
    }
}

#[async_trait]
impl Mailer for FileOutbox {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let id = uuid::Uuid::now_v7().to_string();
        let text = self.render(&email, &date, &id);
        let path = self.dir.join(format!("{id}.eml"));
        let dir = self.dir.clone();
        let error = |source| MailError::Outbox {
            path: dir.display().to_string(),
            source,
        };
        // Messages carry one-time tokens: the folder and files are the owner's alone.
        let mut folder = tokio::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        folder.mode(0o700);
        folder.create(&self.dir).await.map_err(error)?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let write = async {
            use tokio::io::AsyncWriteExt;
            let mut file = options.open(&path).await?;
            file.write_all(text.as_bytes()).await?;
            file.flush().await
        };
        write.await.map_err(|source| MailError::Outbox {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Sends through an SMTP relay given as `smtps://user:pass@host:465` or `smtp://host:587?tls=required`.
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpMailer {
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Delivery(format!("invalid SMTP URL: {e}")))?
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError::Delivery(format!("invalid sender address: {e}")))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        use lettre::AsyncTransport;
        let to = email
            .to
            .parse()
            .map_err(|e| MailError::Delivery(format!("invalid recipient: {e}")))?;
        // A Message-ID in the sender's domain, as the file outbox writes; lettre adds none itself.
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7(), self.from.email.domain());
        let message = lettre::Message::builder()
            .message_id(Some(message_id))
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(email.body)
            .map_err(|e| MailError::Delivery(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Delivery(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_cannot_be_injected() {
        let outbox = FileOutbox::new("/tmp", "TradeSignal <no-reply@ts.example>");
        let text = outbox.render(
            &Email {
                to: "a@b.example\r\nBcc: victim@evil.example".into(),
                subject: "Hi\nX-Evil: 1".into(),
                body: "line one\nline two".into(),
            },
            "Sun, 29 Nov 2026 08:00:00 +0000",
            "id-1",
        );
        let headers = text.split("\r\n\r\n").next().unwrap_or("");
        assert!(
            !headers.contains("\r\nBcc:") && !headers.contains("\r\nX-Evil:"),
            "{headers}"
        );
        assert!(text.ends_with("line one\r\nline two\r\n"));
    }
}
