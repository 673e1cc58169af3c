//! What may appear in logs. Fields whose name marks a secret are never printed; in every other field
//! (messages included) secrets recognisable by shape are cut out (JWTs, `ts_live_` API keys, URL
//! passwords, secret query parameters), emails are masked to their first character and domain, and
//! control characters are escaped so no input can forge a log line.

/// Name segments that mark a field as secret (`password`, `refresh_token`, `jwt_keys`, `x-api-key`…).
const SECRET_SEGMENTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "key",
    "keys",
    "otp",
    "totp",
    "otpauth",
    "signature",
    "code",
    "fingerprint",
    "fgp",
    "dsn",
];

/// Adjacent segments that mark a connection URL carrying its password. `url` alone is not secret
/// (`public_url`, `redirect_url` are wanted in logs), so only these pairs are.
const SECRET_URL_PREFIXES: &[&str] = &["database", "redis", "smtp"];

/// What is printed instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// What is printed instead of a JWT found in text.
pub const REDACTED_JWT: &str = "[redacted-jwt]";

/// Splits a field name into words at separators and at case changes, so `refreshToken`, `XApiKey`
/// and `APIKey` yield the same words as their snake_case forms.
fn name_segments(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut segments = vec![];
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == '.' || c.is_whitespace() {
            if !current.is_empty() {
                segments.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    // The last capital of an acronym starts the next word: `APIKey` → `API`, `Key`.
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if starts_word && !current.is_empty() {
            segments.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// True when a field with this name may carry a secret and must not be logged.
pub fn is_secret_field(name: &str) -> bool {
    let segments = name_segments(name);
    let secret_segment = segments.iter().any(|segment| {
        SECRET_SEGMENTS
            .iter()
            .any(|s| segment.eq_ignore_ascii_case(s))
    });
    secret_segment
        || segments.windows(2).any(|pair| {
            pair[1].eq_ignore_ascii_case("url")
                && SECRET_URL_PREFIXES
                    .iter()
                    .any(|p| pair[0].eq_ignore_ascii_case(p))
        })
}

/// `alice@example.com` → `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-!#$&'*/=?^`{|}~".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.'
}

/// Masks every email address found in free text.
pub fn mask_emails_in(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied_to = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > copied_to && is_local_char(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && is_domain_char(chars[end]) {
                end += 1;
            }
            // Trailing dots belong to the sentence, not the domain.
            while end > i + 1 && chars[end - 1] == '.' {
                end -= 1;
            }
            let domain: String = chars[i + 1..end].iter().collect();
            if start < i && domain.contains('.') {
                out.extend(&chars[copied_to..start]);
                out.push(chars[start]);
                out.push_str("***@");
                out.push_str(&domain);
                copied_to = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[copied_to..]);
    out
}

/// Escapes control characters (CR, LF, ESC…) so a value cannot start a new log line or colour a
/// terminal.
pub fn escape_control(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn end_of(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes[from..]
        .iter()
        .position(|b| !keep(*b))
        .map_or(bytes.len(), |n| from + n)
}

/// Replaces `eyJ<b64url>.<b64url>.<b64url>?` (a JSON header, so a JWT or JWS) with `[redacted-jwt]`.
/// No word boundary is required before `eyJ`: a token glued to other text must still go.
fn redact_jwts(text: &str) -> String {
    if !text.contains("eyJ") {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if &bytes[i..i + 3] != b"eyJ" {
            i += 1;
            continue;
        }
        let header_end = end_of(bytes, i + 3, is_base64url);
        let payload_end = if bytes.get(header_end) == Some(&b'.') {
            end_of(bytes, header_end + 1, is_base64url)
        } else {
            header_end
        };
        if payload_end > header_end + 1 && bytes.get(payload_end) == Some(&b'.') {
            let end = end_of(bytes, payload_end + 1, is_base64url);
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED_JWT);
            copied = end;
            i = end;
        } else {
            // Every `eyJ` inside this header shares its end and so fails the same way: skipping
            // past it keeps the scan linear.
            i = header_end.max(i + 1);
        }
    }
    out.push_str(&text[copied..]);
    out
}

const API_KEY_PREFIX: &str = "ts_live_";

/// Replaces the body of every `ts_live_…` API key, keeping the prefix so the log still says a key
/// was there.
fn redact_api_keys(text: &str) -> String {
    if !text.contains(API_KEY_PREFIX) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(API_KEY_PREFIX) {
        let body = from + found + API_KEY_PREFIX.len();
        let end = end_of(bytes, body, |b| b.is_ascii_alphanumeric() || b == b'_');
        if end > body {
            out.push_str(&text[copied..body]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where a URL's authority (or a query value) stops in free text.
fn ends_url_part(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`')
}

/// `scheme://user:pass@host` → `scheme://user:***@host`. A user without a password is left alone;
/// the password ends at the last `@` of the authority because an unencoded `@` in it is common.
fn redact_url_passwords(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let authority = from + found + 3;
        let scheme_ok = bytes[..from + found]
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        let end = end_of(bytes, authority, |b| {
            !ends_url_part(b) && !matches!(b, b'/' | b'?' | b'#')
        });
        let at = bytes[authority..end].iter().rposition(|b| *b == b'@');
        let colon = at.and_then(|at| {
            bytes[authority..authority + at]
                .iter()
                .position(|b| *b == b':')
        });
        if let (true, Some(at), Some(colon)) = (scheme_ok, at, colon) {
            out.push_str(&text[copied..authority + colon + 1]);
            out.push_str("***");
            copied = authority + at;
        }
        from = end.max(authority);
    }
    out.push_str(&text[copied..]);
    out
}

/// `?token=abc&x=1` → `?token=[redacted]&x=1`, for every parameter whose name would be a secret field
/// (`token`, `refresh_token`, `code`, `key`, `password`, `secret`, `access_token`, `apiKey`…).
fn redact_query_secrets(text: &str) -> String {
    if !text.contains('=') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !matches!(bytes[i], b'?' | b'&') {
            i += 1;
            continue;
        }
        let name_start = i + 1;
        let name_end = end_of(bytes, name_start, |b| {
            !ends_url_part(b) && !matches!(b, b'=' | b'&' | b'?' | b'#')
        });
        if bytes.get(name_end) != Some(&b'=') || name_end == name_start {
            i = name_end.max(name_start);
            continue;
        }
        let value_start = name_end + 1;
        let value_end = end_of(bytes, value_start, |b| {
            !ends_url_part(b) && !matches!(b, b'&' | b'#')
        });
        if value_end > value_start && is_secret_field(&text[name_start..name_end]) {
            out.push_str(&text[copied..value_start]);
            out.push_str(REDACTED);
            copied = value_end;
        }
        i = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Cuts secrets recognisable by their shape out of free text: JWTs, `ts_live_` API keys, passwords in
/// URLs and secret query parameters. Every scanner cuts only at ASCII bytes, so slicing stays on
/// character boundaries, and each is linear in the text.
pub fn redact_secrets_in(text: &str) -> String {
    redact_query_secrets(&redact_url_passwords(&redact_api_keys(&redact_jwts(text))))
}

/// The log-safe form of a field value: redacted if the name marks a secret, else secrets found by
/// shape cut out, emails masked and control characters escaped.
pub fn log_value(field: &str, value: &str) -> String {
    if is_secret_field(field) {
        REDACTED.to_string()
    } else {
        // Emails are masked first: masking the `user:pass@host` of a URL leaves `user:p***@host`,
        // which the URL pass then turns into `user:***@host`; the other order would mask the `***`.
        escape_control(&redact_secrets_in(&mask_emails_in(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secret_field_names_are_recognised() {
        for name in [
            "password",
            "new_password",
            "refresh_token",
            "jwt_keys",
            "x-api-key",
            "Authorization",
            "totp",
            "backup_code",
            "TRADESIGNAL_METRICS_TOKEN",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in [
            "email_domain",
            "kid",
            "path",
            "status",
            "request_id",
            "keyboard",
        ] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn camel_and_pascal_case_names_are_split() {
        for name in [
            "refreshToken",
            "apiKey",
            "newPassword",
            "XApiKey",
            "APIKey",
            "clientSecret",
            "RefreshTokenHash",
            "otpCode",
            "sessionCookie",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in [
            "keyboardLayout",
            "monkeyId",
            "statusText",
            "requestId",
            "HTTPStatus",
            "Status",
        ] {
            assert!(!is_secret_field(name), "{name}");
        }
        assert_eq!(name_segments("XApiKey"), ["X", "Api", "Key"]);
        assert_eq!(name_segments("APIKey"), ["API", "Key"]);
        assert_eq!(name_segments("totp2Secret"), ["totp2", "Secret"]);
        assert_eq!(name_segments("x-api-key"), ["x", "api", "key"]);
    }

    #[test]
    fn fingerprints_otpauth_and_connection_urls_are_secret() {
        for name in [
            "fingerprint",
            "session_fingerprint",
            "fgp",
            "otpauth",
            "otpauth_uri",
            "dsn",
            "sentryDsn",
            "database_url",
            "databaseUrl",
            "DATABASE_URL",
            "redis_url",
            "redisUrl",
            "smtp_url",
            "TRADESIGNAL_SMTP_URL",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        // `url` alone is too broad to hide: these are wanted in logs (and still scrubbed by value).
        for name in ["url", "public_url", "redirectUrl", "url_database", "status"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn jwts_in_text_are_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.Zm9vYmFyYmF6cXV4LV9fLQ";
        assert_eq!(
            redact_secrets_in(&format!("Bearer {jwt} rejected")),
            "Bearer [redacted-jwt] rejected"
        );
        // Unsigned (`alg: none`) tokens end with an empty signature.
        assert_eq!(
            redact_secrets_in("t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. end"),
            "t=[redacted-jwt] end"
        );
        assert_eq!(redact_secrets_in(&format!("x{jwt}.")), "x[redacted-jwt].");
        // Not JWTs: no payload, or the word alone.
        for text in ["eyJhbGciOiJIUzI1NiJ9", "eyJ.", "eyJa..b", "heyJude.x"] {
            assert_eq!(redact_secrets_in(text), text);
        }
    }

    #[test]
    fn api_keys_in_text_are_redacted() {
        assert_eq!(
            redact_secrets_in("key ts_live_AbC123_xyz9 used, ts_live_Q9."),
            "key ts_live_[redacted] used, ts_live_[redacted]."
        );
        assert_eq!(
            redact_secrets_in("prefix ts_live_ alone"),
            "prefix ts_live_ alone"
        );
    }

    #[test]
    fn url_passwords_are_redacted() {
        for (text, expected) in [
            (
                "postgres://app:hunter2pw@db.internal:5432/ts",
                "postgres://app:***@db.internal:5432/ts",
            ),
            (
                "redis://:hunter2redis@cache.internal:6379",
                "redis://:***@cache.internal:6379",
            ),
            (
                "connect to smtp://mailer:p@ss:w0rd@mail.internal:25 failed",
                "connect to smtp://mailer:***@mail.internal:25 failed",
            ),
            (
                "a https://u:1@h.example/x and b amqp+tls://v:2@h2/ done",
                "a https://u:***@h.example/x and b amqp+tls://v:***@h2/ done",
            ),
            // A user without a password, and `@` or `:` outside the authority, are not credentials.
            ("https://alice@host.example/", "https://alice@host.example/"),
            (
                "https://host.example:8443/a@b",
                "https://host.example:8443/a@b",
            ),
            ("://user:pw@host", "://user:pw@host"),
        ] {
            assert_eq!(redact_secrets_in(text), expected, "{text}");
        }
    }

    #[test]
    fn secret_query_parameters_are_redacted() {
        for (text, expected) in [
            ("/reset?token=abc&x=1", "/reset?token=[redacted]&x=1"),
            (
                "GET /cb?state=s1&code=4/0AbC&scope=email",
                "GET /cb?state=s1&code=[redacted]&scope=email",
            ),
            (
                "?refresh_token=r&key=k&password=p&secret=s#frag",
                "?refresh_token=[redacted]&key=[redacted]&password=[redacted]&secret=[redacted]#frag",
            ),
            ("?access_token=a b", "?access_token=[redacted] b"),
            ("?apiKey=zz", "?apiKey=[redacted]"),
            (
                "?status=200&page=2&keyboard=us",
                "?status=200&page=2&keyboard=us",
            ),
            ("?token=&x=1", "?token=&x=1"),
            ("a=b&c", "a=b&c"),
        ] {
            assert_eq!(redact_secrets_in(text), expected, "{text}");
        }
    }

    #[test]
    fn log_value_applies_every_pattern() {
        assert_eq!(
            log_value(
                "message",
                "login ok for bob@example.com via https://ts.example/cb?code=xyz\nforged"
            ),
            "login ok for b***@example.com via https://ts.example/cb?code=[redacted]\\nforged"
        );
        assert_eq!(
            log_value("db", "postgres://app:hunter2pw@db.internal:5432/ts"),
            "postgres://app:***@db.internal:5432/ts"
        );
        assert_eq!(
            log_value("url", "smtp://mailer:hunter2smtp@mail.internal:25"),
            "smtp://mailer:***@mail.internal:25"
        );
        assert_eq!(log_value("database_url", "sqlite::memory:"), REDACTED);
        assert_eq!(log_value("status", "200"), "200");
        assert_eq!(
            log_value("header", "Authorization: ts_live_abc"),
            "Authorization: ts_live_[redacted]"
        );
    }

    #[test]
    fn emails_are_masked_in_text() {
        assert_eq!(
            mask_emails_in("login failed for alice.smith@example.com."),
            "login failed for a***@example.com."
        );
        assert_eq!(
            mask_emails_in("a@b.co and bob@x.org"),
            "a***@b.co and b***@x.org"
        );
        assert_eq!(mask_emails_in("no at sign"), "no at sign");
        assert_eq!(mask_emails_in("user@localhost"), "user@localhost");
        assert_eq!(mask_emails_in("@handle"), "@handle");
        assert_eq!(mask_email("zoë@example.com"), "z***@example.com");
    }

    #[test]
    fn line_breaks_cannot_forge_log_lines() {
        let forged = "x\r\n{\"level\":\"INFO\",\"message\":\"admin logged in\"}";
        let escaped = escape_control(forged);
        assert!(!escaped.contains('\n') && !escaped.contains('\r'));
        assert!(escaped.starts_with("x\\r\\n"));
        assert_eq!(escape_control("\u{1b}[31m"), "\\u{1b}[31m");
    }

    #[test]
    fn log_value_redacts_secret_fields() {
        assert_eq!(log_value("password", "hunter2"), REDACTED);
        assert_eq!(log_value("user", "bob@example.com"), "b***@example.com");
    }

    proptest! {
        #[test]
        fn masking_never_panics_and_never_keeps_a_full_address(local in "[a-z]{2,10}", domain in "[a-z]{1,8}\\.[a-z]{2,3}", noise in "\\PC{0,40}") {
            let email = format!("{local}@{domain}");
            let text = format!("{noise} {email} {noise}");
            let masked = mask_emails_in(&text);
            prop_assert!(!masked.contains(&email));
            let _ = escape_control(&masked);
        }

        #[test]
        fn escaped_text_has_no_control_characters(s in "\\PC*|[\\x00-\\x1f]*") {
            prop_assert!(!escape_control(&s).chars().any(char::is_control));
        }

        /// Arbitrary text, with the fragments the scanners look for mixed in, never panics (slicing
        /// off a character boundary would).
        #[test]
        fn redaction_never_panics(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("eyJ".to_string()),
                    Just(".".to_string()),
                    Just("ts_live_".to_string()),
                    Just("://".to_string()),
                    Just("@".to_string()),
                    Just(":".to_string()),
                    Just("?".to_string()),
                    Just("&".to_string()),
                    Just("=".to_string()),
                    Just("token".to_string()),
                    "\\PC{0,6}",
                    "[\\x00-\\x1f]{0,2}",
                ],
                0..40,
            ),
            name in "\\PC{0,20}",
        ) {
            let text: String = parts.concat();
            let _ = redact_secrets_in(&text);
            let _ = log_value(&name, &text);
            let _ = log_value("message", &text);
            let _ = is_secret_field(&name);
        }

        /// A JWT or `ts_live_` key anywhere in arbitrary text never survives, through either entry
        /// point.
        #[test]
        fn embedded_jwts_and_api_keys_never_survive(
            prefix in "\\PC{0,40}",
            suffix in "\\PC{0,40}",
            header in "[A-Za-z0-9_-]{4,40}",
            payload in "[A-Za-z0-9_-]{1,80}",
            signature in "[A-Za-z0-9_-]{0,43}",
            key in "[A-Za-z0-9_]{1,40}",
        ) {
            let jwt = format!("eyJ{header}.{payload}.{signature}");
            let api_key = format!("ts_live_{key}");
            for secret in [&jwt, &api_key] {
                let text = format!("{prefix}{secret}{suffix}");
                prop_assert!(!redact_secrets_in(&text).contains(secret.as_str()));
                prop_assert!(!log_value("message", &text).contains(secret.as_str()));
            }
        }
    }
}
