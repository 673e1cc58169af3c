//! Application logs: one JSON object per line, written by a `tracing` layer that redacts as it formats.
//! Fields whose names mark secrets are replaced by `[redacted]`, emails are masked everywhere (message
//! included), and JSON escaping means no value can start a new line. Span fields such as `request_id`
//! are carried onto every event of the request.

use std::collections::BTreeMap;
use std::io::Write;

use security::redact;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Field values of a span or event, already redacted.
#[derive(Debug, Default, Clone)]
struct Fields(BTreeMap<String, Value>);

impl Fields {
    fn text(&mut self, field: &Field, value: &str) {
        self.0.insert(
            field.name().to_string(),
            Value::from(redact::log_value(field.name(), value)),
        );
    }

    fn plain(&mut self, field: &Field, value: Value) {
        let value = if redact::is_secret_field(field.name()) {
            Value::from(redact::REDACTED)
        } else {
            value
        };
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.plain(field, Value::from(value));
    }
}

/// The redacting JSON layer, writing to `W`.
pub struct JsonLogLayer<W> {
    writer: W,
}

impl<W> JsonLogLayer<W> {
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut object = Map::new();
        object.insert("ts".into(), Value::from(timestamp()));
        object.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        object.insert("target".into(), Value::from(event.metadata().target()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &fields.0 {
                        object.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        for (k, v) in fields.0 {
            object.insert(k, v);
        }
        let mut line = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
        line.push(b'\n');
        // A log line that cannot be written must not fail the request that logged it.
        let _ = self.writer.make_writer().write_all(&line);
    }
}

/// Installs the JSON layer on stdout with `filter` as the global subscriber (once per process).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(JsonLogLayer::new(std::io::stdout))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(f: impl FnOnce()) -> String {
        let sink = Capture::default();
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer::new(sink.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn secrets_are_redacted_and_emails_masked() {
        let out = capture(|| {
            let span = tracing::info_span!("request", request_id = "req-1");
            let _g = span.enter();
            tracing::warn!(
                password = "hunter2",
                refresh_token = "rt-abc",
                email = "alice@example.com",
                attempts = 3,
                "login failed for bob@example.org"
            );
        });
        assert!(!out.contains("hunter2") && !out.contains("rt-abc"), "{out}");
        assert!(
            !out.contains("alice@example.com") && !out.contains("bob@example.org"),
            "{out}"
        );
        let line: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["password"], "[redacted]");
        assert_eq!(line["email"], "a***@example.com");
        assert_eq!(line["attempts"], 3);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "login failed for b***@example.org");
    }

    #[test]
    fn crlf_cannot_forge_a_line() {
        let out = capture(|| {
            let user_agent = "curl\r\n{\"level\":\"INFO\",\"message\":\"admin login ok\"}";
            tracing::info!(user_agent, "request");
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        let line: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert!(
            line["user_agent"]
                .as_str()
                .is_some_and(|ua| !ua.contains('\n'))
        );
    }
}
