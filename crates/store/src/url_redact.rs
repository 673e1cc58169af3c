//! Connection URLs carry passwords; this is the only form in which they are printed.

/// The URL with any password replaced by `***`; unparseable input is hidden entirely.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() && url.set_password(Some("***")).is_err() {
                return "[unprintable url]".to_string();
            }
            // Query parameters may hold passwords too (`?password=`, `sslpassword=`).
            if url
                .query()
                .is_some_and(|q| q.to_ascii_lowercase().contains("pass"))
            {
                url.set_query(Some("***"));
            }
            url.to_string()
        }
        Err(_) => redact_node_list(raw).unwrap_or_else(|| "[unparseable url]".to_string()),
    }
}

/// A Redis Cluster URL lists several `host:port` pairs, which is not a URL the `url` crate reads:
/// shown as its scheme, user and hosts only (the password, path, query and fragment are cut), so an
/// operator sees which nodes failed.
fn redact_node_list(raw: &str) -> Option<String> {
    let (scheme, rest) = raw.split_once("://")?;
    if !scheme.ends_with("+cluster") {
        return None;
    }
    // The last `@` ends the credentials (a password may hold `/`, `?`, `#` or `@`).
    let (user, after) = match rest.rsplit_once('@') {
        Some((credentials, after)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            (Some(user), after)
        }
        None => (None, rest),
    };
    let hosts = after.split(['/', '?', '#']).next().unwrap_or_default();
    Some(match user {
        Some(user) => format!("{scheme}://{user}:***@{hosts}"),
        None => format!("{scheme}://{hosts}"),
    })
}

/// The host of a URL, if any.
pub fn host_of(raw: &str) -> Option<String> {
    url::Url::parse(raw)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5432/ts"),
            "postgres://app:***@db.internal:5432/ts"
        );
        assert_eq!(
            redact_url("rediss://:hunter2@cache:6380/0"),
            "rediss://:***@cache:6380/0"
        );
        assert!(!redact_url("postgres://db/ts?password=hunter2").contains("hunter2"));
        assert!(!redact_url("not a url hunter2").contains("hunter2"));
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("rediss+cluster://app:hunter2@10.0.0.1:7000,10.0.0.2:7000/0?password=x"),
            "rediss+cluster://app:***@10.0.0.1:7000,10.0.0.2:7000"
        );
        for leaky in [
            "redis+cluster://:hun/ter2@h1:7000,h2:7000",
            "redis+cluster://:hun@ter2@h1:7000,h2:7000",
            "redis+cluster://h1:7000,h2:7000?password=hunter2",
            "redis+cluster://h1:7000,h2:7000#hunter2",
        ] {
            let shown = redact_url(leaky);
            assert!(!shown.contains("ter2"), "{shown}");
            assert!(shown.contains("h1:7000,h2:7000"), "{shown}");
        }
        assert_eq!(
            redact_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
        );
    }
}
