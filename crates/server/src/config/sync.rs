//! Settings of the syncs from outside sources (SEC EDGAR, the congressional feeds): who we are to
//! SEC, where the sources are, how fast and how often to fetch. The sources are operator settings,
//! never user input, but they are still confined: production fetches EDGAR from `https://www.sec.gov`
//! only and feeds over https only; a plain-http source on loopback (a local mirror, the test
//! suite's fake EDGAR) is a development setting.

use std::time::Duration;

use super::ConfigProblem;

/// Where EDGAR is unless configured otherwise.
pub const EDGAR_DEFAULT_URL: &str = "https://www.sec.gov";

/// SEC's fair-access ceiling (requests per second, all of an organisation's machines together).
pub const SEC_MAX_REQUESTS_PER_SEC: u32 = 10;

/// The resolved sync settings.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `TRADESIGNAL_SEC_USER_AGENT`: required before any request to SEC.
    pub sec_user_agent: Option<String>,
    /// The EDGAR archive's root (`https://www.sec.gov`), no trailing slash.
    pub edgar_url: url::Url,
    pub edgar_requests_per_sec: u32,
    /// The in-server EDGAR sync runs this often (`None`: off).
    pub edgar_every: Option<Duration>,
    pub congress_house_url: Option<url::Url>,
    pub congress_senate_url: Option<url::Url>,
    /// The in-server congressional sync runs this often (`None`: off).
    pub congress_every: Option<Duration>,
}

/// Reads the sync variables through `get`, reporting each problem through `problem`.
pub(super) fn resolve<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    problem: &mut impl FnMut(&'static str, String),
) -> SyncSettings {
    let sec_user_agent =
        get("TRADESIGNAL_SEC_USER_AGENT").and_then(|text| match check_user_agent(text) {
            Ok(()) => Some(text.to_string()),
            Err(why) => {
                problem("TRADESIGNAL_SEC_USER_AGENT", why);
                None
            }
        });
    let edgar_url = source_url(
        "TRADESIGNAL_EDGAR_URL",
        get("TRADESIGNAL_EDGAR_URL").unwrap_or(EDGAR_DEFAULT_URL),
        problem,
    )
    .unwrap_or_else(default_edgar_url);
    let edgar_requests_per_sec = match get("TRADESIGNAL_EDGAR_REQUESTS_PER_SEC") {
        None => SEC_MAX_REQUESTS_PER_SEC,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=SEC_MAX_REQUESTS_PER_SEC).contains(&n) => n,
            _ => {
                problem(
                    "TRADESIGNAL_EDGAR_REQUESTS_PER_SEC",
                    format!(
                        "{text:?} is not a whole number from 1 to {SEC_MAX_REQUESTS_PER_SEC} (SEC's fair-access limit)"
                    ),
                );
                SEC_MAX_REQUESTS_PER_SEC
            }
        },
    };
    let every =
        |variable: &'static str, problem: &mut dyn FnMut(&'static str, String)| match get(variable)
        {
            None | Some("0") => None,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (60..=86_400).contains(&n) => Some(Duration::from_secs(n)),
                _ => {
                    problem(
                        variable,
                        format!(
                            "{text:?} is not 0 (off) or a whole number of seconds from 60 to 86400"
                        ),
                    );
                    None
                }
            },
        };
    let edgar_every = every("TRADESIGNAL_SYNC_EDGAR_EVERY_SECS", problem);
    let congress_every = every("TRADESIGNAL_SYNC_CONGRESS_EVERY_SECS", problem);
    let congress_house_url = get("TRADESIGNAL_CONGRESS_HOUSE_URL")
        .and_then(|text| source_url("TRADESIGNAL_CONGRESS_HOUSE_URL", text, problem));
    let congress_senate_url = get("TRADESIGNAL_CONGRESS_SENATE_URL")
        .and_then(|text| source_url("TRADESIGNAL_CONGRESS_SENATE_URL", text, problem));
    if edgar_every.is_some() && sec_user_agent.is_none() {
        problem(
            "TRADESIGNAL_SEC_USER_AGENT",
            "is required when TRADESIGNAL_SYNC_EDGAR_EVERY_SECS schedules an EDGAR sync: SEC refuses \
             requests that do not say who sends them"
                .into(),
        );
    }
    if congress_every.is_some() && congress_house_url.is_none() && congress_senate_url.is_none() {
        problem(
            "TRADESIGNAL_SYNC_CONGRESS_EVERY_SECS",
            "schedules a congressional sync but neither TRADESIGNAL_CONGRESS_HOUSE_URL nor \
             TRADESIGNAL_CONGRESS_SENATE_URL is set"
                .into(),
        );
    }
    SyncSettings {
        sec_user_agent,
        edgar_url,
        edgar_requests_per_sec,
        edgar_every,
        congress_house_url,
        congress_senate_url,
        congress_every,
    }
}

fn default_edgar_url() -> url::Url {
    url::Url::parse(EDGAR_DEFAULT_URL).unwrap_or_else(|_| unreachable!("constant URL parses"))
}

/// SEC asks for a `User-Agent` naming the organisation and a contact address
/// ("Sample Company Name AdminContact@samplecompany.com").
pub fn check_user_agent(text: &str) -> Result<(), String> {
    if text.len() > 200 || !text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err("must be printable ASCII of at most 200 characters".into());
    }
    let has_contact = text.split(' ').any(|word| {
        word.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
    });
    if !has_contact || text.split(' ').filter(|w| !w.is_empty()).count() < 2 {
        return Err(
            "must name your organisation and a contact email address, e.g. \"Example Corp ops@example.com\" \
             (SEC's fair-access policy)"
                .into(),
        );
    }
    Ok(())
}

/// A source URL: https with a host name (an address literal would bypass the client's check of
/// resolved addresses) or http on 127.0.0.1 (a local mirror), no credentials, no query or fragment,
/// and for EDGAR no path (paths are joined onto the root).
fn source_url(
    variable: &'static str,
    text: &str,
    problem: &mut impl FnMut(&'static str, String),
) -> Option<url::Url> {
    let parsed = url::Url::parse(text).ok().filter(|u| {
        ((u.scheme() == "https" && matches!(u.host(), Some(url::Host::Domain(_))))
            || is_loopback_http(u))
            && (variable != "TRADESIGNAL_EDGAR_URL" || u.path() == "/")
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if parsed.is_none() {
        problem(
            variable,
            "is not an https URL with a host name (or http://127.0.0.1, a local mirror) without \
             credentials, query or fragment (for EDGAR: the site's root, no path)"
                .into(),
        );
    }
    parsed
}

/// Whether a source is a plain-http mirror on 127.0.0.1 (development and the test suite only).
pub fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http" && url.host() == Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
}

/// The production rules for the sync sources (`production_problems` adds them).
pub(super) fn production_problems(sync: &SyncSettings) -> Vec<ConfigProblem> {
    let mut problems = vec![];
    if sync.edgar_url.as_str().trim_end_matches('/') != EDGAR_DEFAULT_URL {
        problems.push(ConfigProblem {
            variable: "TRADESIGNAL_EDGAR_URL",
            message: format!("must be {EDGAR_DEFAULT_URL} in production"),
        });
    }
    for (variable, url) in [
        ("TRADESIGNAL_CONGRESS_HOUSE_URL", &sync.congress_house_url),
        ("TRADESIGNAL_CONGRESS_SENATE_URL", &sync.congress_senate_url),
    ] {
        if url.as_ref().is_some_and(|u| u.scheme() != "https") {
            problems.push(ConfigProblem {
                variable,
                message: "must be https in production".into(),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_must_name_someone_to_contact() {
        assert!(check_user_agent("Example Corp ops@example.com").is_ok());
        assert!(check_user_agent("TradeSignal/1.0 (Jane Roe jane@example.org)").is_ok());
        assert!(check_user_agent("TradeSignal/1.0 Jane jane@example.org").is_ok());
        for bad in [
            "",
            "ops@example.com",
            "Example Corp",
            "Example Corp ops@localhost",
            "Example Corp @example.com",
            "Example Corp ops@example.com\r\nX-Evil: 1",
            "Exämple Corp ops@example.com",
        ] {
            assert!(check_user_agent(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_user_agent(&format!("{} a@b.c", "x".repeat(200))).is_err());
    }

    #[test]
    fn only_loopback_may_be_plain_http() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(is_loopback_http(&url("http://127.0.0.1:8081")));
        assert!(!is_loopback_http(&url("http://localhost:8081")));
        assert!(!is_loopback_http(&url("http://10.0.0.1")));
        assert!(!is_loopback_http(&url("https://127.0.0.1")));
    }
}
