//! What may appear in logs. Emails are masked to their first character and domain; fields whose name
//! marks a secret are never printed; control characters are escaped so no input can forge a log line.

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
    "signature",
    "code",
];

/// The placeholder printed instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// True when a field with this name may carry a secret and must not be logged.
pub fn is_secret_field(name: &str) -> bool {
    name.split(|c: char| c == '_' || c == '-' || c == '.' || c.is_whitespace())
        .any(|segment| {
            SECRET_SEGMENTS
                .iter()
                .any(|s| segment.eq_ignore_ascii_case(s))
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

/// The log-safe form of a field value: redacted if the name marks a secret, else emails masked and
/// control characters escaped.
pub fn log_value(field: &str, value: &str) -> String {
    if is_secret_field(field) {
        REDACTED.to_string()
    } else {
        escape_control(&mask_emails_in(value))
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
    }
}
