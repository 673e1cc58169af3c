//! Input constraints published in the document, built from the constants and patterns the
//! validators use, so what the document allows is what the server accepts. The tests below hold
//! each published pattern against its validator on generated strings.

use market::alerts::{MAX_CODES, TRANSACTION_CODES};
use serde_json::{Value, json};

use crate::api::market::{ACQUIRED_DISPOSED, CHAMBERS};
use crate::api::params::MAX_VALUE_CHARS;
use crate::market::watchlists::{MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_TICKERS};

/// Unicode `White_Space`, the characters `str::trim` removes, as a regex class body.
const WHITE_SPACE: &str = r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// Control characters (`char::is_control`, general category Cc) as a regex class body.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// Text that does not start or end with white space (query values are taken as sent).
fn untrimmed_free_text() -> String {
    format!("^[^{WHITE_SPACE}](?:[\\s\\S]*[^{WHITE_SPACE}])?$")
}

/// Plain text as the services take names: surrounding white space is trimmed, and what remains is
/// 1–`max_chars` characters without control characters (or nothing, where a blank value clears).
fn trimmed_text(max_chars: usize, blank_allowed: bool) -> String {
    let inner = max_chars - 2;
    let optional = if blank_allowed { "?" } else { "" };
    format!(
        "^[{WHITE_SPACE}]*(?:[^{CONTROL}{WHITE_SPACE}](?:[^{CONTROL}]{{0,{inner}}}[^{CONTROL}{WHITE_SPACE}])?){optional}[{WHITE_SPACE}]*$"
    )
}

/// A watchlist, alert or API-key name.
fn trimmed_name() -> String {
    trimmed_text(MAX_NAME_CHARS, false)
}

/// Notes as the watchlist service takes them: trimmed; what remains is at most 2,000 characters
/// without control characters other than line breaks and tabs (blank notes are no notes).
fn trimmed_notes() -> String {
    let inner = MAX_NOTES_CHARS - 2;
    let control = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";
    format!(
        "^[{WHITE_SPACE}]*(?:[^{control}{WHITE_SPACE}](?:[^{control}]{{0,{inner}}}[^{control}{WHITE_SPACE}])?)?[{WHITE_SPACE}]*$"
    )
}

/// One of `choices`, in any ASCII case.
fn any_case(choices: &[&str]) -> String {
    let alternatives: Vec<String> = choices
        .iter()
        .map(|choice| {
            choice
                .chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        regex_escape(c)
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

fn regex_escape(c: char) -> String {
    if "\\^$.|?*+()[]{}-/".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// The transaction codes in either case, as a class.
fn code_class() -> String {
    let letters: String = TRANSACTION_CODES
        .iter()
        .flat_map(|c| [c.to_string(), c.to_ascii_lowercase()])
        .collect();
    format!("[{letters}]")
}

/// `code=P,S`: 1–20 codes, comma-separated, no spaces.
fn codes_pattern() -> String {
    let code = code_class();
    format!("^{code}(?:,{code}){{0,{}}}$", MAX_CODES - 1)
}

fn sort_values() -> Vec<String> {
    market::query::TradeSortField::NAMES
        .iter()
        .flat_map(|name| [name.to_string(), format!("-{name}")])
        .collect()
}

/// The schema of a query parameter, by name: one rule per name across every listing.
fn query_schema(name: &str) -> Option<Value> {
    let text = |pattern: String| json!({"type": "string", "pattern": pattern});
    Some(match name {
        "ticker" => text(market::query::TICKER_PATTERN.into()),
        "insider_cik" => text(market::query::CIK_PATTERN.into()),
        "code" => text(codes_pattern()),
        "acquired_disposed" => text(any_case(ACQUIRED_DISPOSED)),
        "chamber" => text(any_case(CHAMBERS)),
        "since" | "until" => json!({"anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"}
        ]}),
        "min_value" | "max_value" => text(market::money::DOLLARS_PATTERN.into()),
        "derivative" => json!({"type": "string", "enum": ["true", "false", "1", "0"]}),
        "page" => json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
        "per_page" => json!({
            "type": "integer", "minimum": 1, "maximum": market::query::MAX_PER_PAGE,
            "default": market::query::DEFAULT_PER_PAGE
        }),
        "sort" => json!({"type": "string", "enum": sort_values()}),
        "q" | "member" | "type" | "actor" | "subject" => json!({
            "type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS,
            "pattern": untrimmed_free_text()
        }),
        _ => return None,
    })
}

fn ticker_item() -> Value {
    // The services trim and upper-case a ticker before checking it.
    json!({"type": "string", "pattern": format!(
        "^[{WHITE_SPACE}]*[A-Za-z0-9][A-Za-z0-9.-]{{0,9}}[{WHITE_SPACE}]*$"
    )})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn watchlist_body(create: bool) -> Value {
    let mut body = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "pattern": trimmed_name()},
            "tickers": {"type": "array", "maxItems": MAX_TICKERS, "items": ticker_item()},
            "notes": nullable(json!({"type": "string", "pattern": trimmed_notes(),
                "description": "Plain text; line breaks and tabs allowed, other control characters not"}))
        }
    });
    if create {
        body["required"] = json!(["name"]);
    }
    body
}

fn alert_body(create: bool) -> Value {
    let dollars = json!({"oneOf": [
        {"type": "string", "pattern": market::money::DOLLARS_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": 9_999_999_999_999_999_i64}
    ]});
    let codes = json!({"type": "array", "maxItems": MAX_CODES, "items": {
        "type": "string",
        "pattern": format!("^[{WHITE_SPACE}]*{}[{WHITE_SPACE}]*$", code_class())
    }});
    let properties = json!({
        "name": {"type": "string", "pattern": trimmed_name()},
        "ticker": nullable(ticker_item()),
        "insider_cik": nullable(json!({"type": "string", "pattern": format!(
            "^[{WHITE_SPACE}]*[0-9]{{1,10}}[{WHITE_SPACE}]*$"
        )})),
        "codes": nullable(codes),
        "min_value": nullable(dollars),
        "channel": {"type": "string", "enum": ["email", "webhook"]},
        "webhook_url": nullable(json!({"type": "string", "format": "uri",
            "description": "A public https URL (checked where it resolves, now and at every delivery); required for the webhook channel"}))
    });
    let mut body = json!({
        "type": "object",
        "additionalProperties": false,
        "description": "An alert needs at least one of ticker, insider_cik, codes and min_value; webhook_url goes with channel webhook (Pro and above) and only with it.",
        "properties": properties
    });
    if create {
        body["required"] = json!(["name", "channel"]);
    }
    body
}

/// Property constraints of the annotated request bodies: (schema, property, constraints).
fn property_constraints() -> Vec<(&'static str, &'static str, Value)> {
    use crate::identity::{accounts, apikeys};
    let email = json!({"maxLength": security::email::MAX_EMAIL_CHARS});
    let full_name = json!({"pattern": trimmed_text(accounts::MAX_FULL_NAME_CHARS, true)});
    vec![
        ("RegisterRequest", "email", email.clone()),
        (
            "RegisterRequest",
            "password",
            json!({"maxLength": security::password::policy::MAX_CHARS}),
        ),
        ("RegisterRequest", "full_name", full_name.clone()),
        ("UpdateMeRequest", "full_name", full_name),
        ("ChangeEmailRequest", "new_email", email),
        (
            "CreateRequest",
            "name",
            json!({"pattern": trimmed_text(apikeys::MAX_NAME_CHARS, false)}),
        ),
        (
            "CreateRequest",
            "scopes",
            json!({"minItems": 1, "uniqueItems": false, "items": {
                "type": "string", "enum": security::authz::Scope::ALL.map(security::authz::Scope::as_str)
            }}),
        ),
        (
            "CreateRequest",
            "expires_in_days",
            json!({"minimum": 1, "maximum": apikeys::MAX_EXPIRY_DAYS}),
        ),
        (
            "RotateRequest",
            "grace_hours",
            json!({"minimum": 0, "maximum": apikeys::MAX_GRACE_HOURS}),
        ),
    ]
}

/// `/login/mfa` takes exactly one of `code` and `backup_code`.
fn one_second_factor() -> Value {
    json!([
        {"required": ["code"], "properties": {"code": {"type": "string"}, "backup_code": {"type": "null"}}},
        {"required": ["backup_code"], "properties": {"backup_code": {"type": "string"}, "code": {"type": "null"}}}
    ])
}

/// The two report formats browsers send: the legacy `{"csp-report": {...}}` and the Reporting API's
/// array, of which the `csp-violation` entries are kept.
fn csp_report_bodies() -> Value {
    json!({
        "application/csp-report": {"schema": {
            "type": "object",
            "required": ["csp-report"],
            "properties": {"csp-report": {"type": "object"}}
        }},
        "application/reports+json": {"schema": {
            "type": "array",
            "contains": {
                "type": "object",
                "required": ["type", "body"],
                "properties": {"type": {"const": "csp-violation"}, "body": {"type": "object"}}
            }
        }}
    })
}

/// Publishes the constraints: query parameters by name, the watchlist and alert bodies, and the
/// limits of the annotated bodies' properties.
pub fn apply(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                {
                    for parameter in parameters.iter_mut().filter(|p| p["in"] == "query") {
                        let schema = parameter["name"].as_str().and_then(query_schema);
                        if let Some(schema) = schema {
                            parameter["schema"] = schema;
                        }
                    }
                }
                let body = match (method.as_str(), path.as_str()) {
                    ("post", "/api/v1/watchlists") => Some(watchlist_body(true)),
                    ("patch", "/api/v1/watchlists/{id}") => Some(watchlist_body(false)),
                    ("post", "/api/v1/alerts") => Some(alert_body(true)),
                    ("patch", "/api/v1/alerts/{id}") => Some(alert_body(false)),
                    _ => None,
                };
                if let Some(body) = body {
                    operation["requestBody"] = json!({
                        "required": true,
                        "content": {"application/json": {"schema": body}}
                    });
                }
                if (method.as_str(), path.as_str()) == ("post", "/api/v1/security/csp-report") {
                    operation["requestBody"]["required"] = json!(true);
                    operation["requestBody"]["content"] = csp_report_bodies();
                }
            }
        }
    }
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        if let Some(mfa) = schemas.get_mut("LoginMfaRequest") {
            mfa["oneOf"] = one_second_factor();
        }
        for (schema, property, constraints) in property_constraints() {
            let target = schemas
                .get_mut(schema)
                .and_then(|s| s.pointer_mut(&format!("/properties/{property}")));
            if let (Some(Value::Object(target)), Value::Object(constraints)) = (target, constraints)
            {
                // A nullable property is `type: [string, null]` (or a oneOf); the limits apply to the
                // string and are ignored by JSON Schema for null.
                target.extend(constraints);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn matches(pattern: &str, text: &str) -> bool {
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
                Default::default();
        }
        COMPILED.with(|compiled| {
            compiled
                .borrow_mut()
                .entry(pattern.to_string())
                .or_insert_with(|| Regex::new(pattern).expect("pattern"))
                .is_match(text)
        })
    }

    #[test]
    fn every_query_parameter_and_body_constraint_is_published() {
        let document = crate::openapi::document();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] == "query" {
                        let name = parameter["name"].as_str().expect("name");
                        assert!(
                            query_schema(name).is_some(),
                            "{method} {path}: no rule for {name}"
                        );
                    }
                }
            }
        }
        for (schema, property, _) in property_constraints() {
            assert!(
                document["components"]["schemas"][schema]["properties"]
                    .get(property)
                    .is_some(),
                "{schema}.{property} is not in the document"
            );
        }
        let stats: Vec<&str> = document["paths"]["/api/v1/trades/stats"]["get"]["parameters"]
            .as_array()
            .expect("stats parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(stats, crate::api::market::TRADE_FILTERS);
    }

    #[test]
    fn choices_match_in_any_case_and_nothing_else() {
        let pattern = any_case(CHAMBERS);
        for yes in ["house", "SENATE", "HoUsE"] {
            assert!(matches(&pattern, yes), "{yes}");
        }
        for no in ["", "lords", "house ", "housesenate", "hous"] {
            assert!(!matches(&pattern, no), "{no}");
        }
    }

    /// Strings built from the characters that matter to each rule: letters, digits, separators,
    /// white space of several kinds, control characters.
    fn probe() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                'P', 'p', 'S', 'Q', 'a', 'Z', '0', '9', '.', '-', ',', ' ', '\t', '\n', '\u{85}',
                '\u{a0}', '\u{2003}', '\u{3000}', '\u{feff}', '\u{1}', '\u{b}', '\u{c}', '\r',
                '\u{7f}', 'é', '<',
            ]),
            0..12,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn the_codes_pattern_is_the_codes_check(text in probe()) {
            let codes: Vec<String> = text.split(',').map(str::to_ascii_uppercase).collect();
            let accepted = !text.is_empty()
                && codes.len() <= MAX_CODES
                && codes.iter().all(|c| market::alerts::is_transaction_code(c));
            prop_assert_eq!(matches(&codes_pattern(), &text), accepted, "{:?}", text);
        }

        #[test]
        fn the_free_text_pattern_is_the_parameter_check(text in probe()) {
            let accepted = !text.is_empty() && text.trim() == text;
            prop_assert_eq!(matches(&untrimmed_free_text(), &text), accepted, "{:?}", text);
        }

        #[test]
        fn the_name_pattern_is_the_name_check(text in probe()) {
            let accepted = crate::market::watchlists::clean_name("name", &text).is_ok();
            prop_assert_eq!(matches(&trimmed_name(), &text), accepted, "{:?}", text);
        }

        #[test]
        fn the_ticker_pattern_is_the_ticker_check(text in probe()) {
            let accepted = crate::market::watchlists::clean_tickers(std::slice::from_ref(&text)).is_ok();
            let pattern = ticker_item()["pattern"].as_str().expect("pattern").to_string();
            prop_assert_eq!(matches(&pattern, &text), accepted, "{:?}", text);
        }
    }

    proptest! {
        #[test]
        fn the_full_name_pattern_is_the_full_name_check(text in probe()) {
            let accepted = crate::identity::accounts::validate_full_name(Some(&text)).is_ok();
            let pattern = trimmed_text(crate::identity::accounts::MAX_FULL_NAME_CHARS, true);
            prop_assert_eq!(matches(&pattern, &text), accepted, "{:?}", text);
        }

        #[test]
        fn the_notes_pattern_is_the_notes_check(text in probe()) {
            let accepted = crate::market::watchlists::clean_notes(Some(&text)).is_ok();
            prop_assert_eq!(matches(&trimmed_notes(), &text), accepted, "{:?}", text);
        }
    }

    #[test]
    fn long_names_are_refused_by_both() {
        let longest = "n".repeat(MAX_NAME_CHARS);
        let too_long = "n".repeat(MAX_NAME_CHARS + 1);
        assert!(matches(&trimmed_name(), &longest));
        assert!(crate::market::watchlists::clean_name("name", &longest).is_ok());
        assert!(!matches(&trimmed_name(), &too_long));
        assert!(crate::market::watchlists::clean_name("name", &too_long).is_err());
        assert!(matches(&trimmed_name(), &format!("  {longest}\t")));
    }
}
