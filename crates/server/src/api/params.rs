//! Query-string parameters of the listing endpoints, read strictly: unknown or repeated
//! parameters, empty values, surrounding spaces and malformed values are a 422 naming every bad
//! parameter at once, never a 400 and never an echo of the value. Strict on purpose: what is
//! accepted is exactly what the OpenAPI document describes (`crate::openapi::inputs`), so a client
//! generated from it never has a request refused.

use std::collections::HashMap;

use market::form4::Date;
use market::query::PageRequest;

use crate::http::{ApiError, FieldError};

/// Longest value any parameter may have (a search term, a member's name).
pub const MAX_VALUE_CHARS: usize = 100;

pub struct Params {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl Params {
    /// Parses `query` and refuses names outside `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Self {
        let mut values = HashMap::new();
        let mut errors = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let name = name.into_owned();
            if !allowed.contains(&name.as_str()) {
                // The name comes from the client: cut it so a problem document stays small.
                let shown: String = name.chars().take(64).collect();
                errors.push(FieldError::new(
                    shown,
                    "unknown_parameter",
                    "This query parameter is not accepted.",
                ));
                continue;
            }
            if values.contains_key(&name) {
                errors.push(FieldError::new(
                    name,
                    "repeated",
                    "Give this parameter once.",
                ));
                continue;
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                errors.push(FieldError::new(
                    name,
                    "too_long",
                    format!("At most {MAX_VALUE_CHARS} characters."),
                ));
                continue;
            }
            if value.is_empty() {
                errors.push(FieldError::new(
                    name,
                    "empty",
                    "Give a value, or leave the parameter out.",
                ));
                continue;
            }
            if value.trim() != value {
                errors.push(FieldError::new(
                    name,
                    "invalid",
                    "Remove the spaces around the value.",
                ));
                continue;
            }
            values.insert(name, value.into_owned());
        }
        Self { values, errors }
    }

    fn fail(&mut self, name: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, code, message));
    }

    /// The value, if given (never empty, never with surrounding spaces).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn ticker(&mut self, name: &str) -> Option<String> {
        let value = self.text(name)?.to_ascii_uppercase();
        if market::query::is_ticker(&value) {
            Some(value)
        } else {
            self.fail(
                name,
                "invalid",
                "Expected a ticker symbol (1–10 of A–Z, 0–9, '.', '-').",
            );
            None
        }
    }

    pub fn cik(&mut self, name: &str) -> Option<String> {
        let value = self.text(name)?;
        match market::query::normalize_cik(value) {
            Some(cik) => Some(cik),
            None => {
                self.fail(name, "invalid", "Expected a CIK (1–10 digits).");
                None
            }
        }
    }

    /// A date (`YYYY-MM-DD`), or an RFC 3339 date-time for its date: filters work on transaction
    /// dates, and API.md's times are RFC 3339.
    pub fn date(&mut self, name: &str) -> Option<Date> {
        let value = self.text(name)?;
        let date = if value.len() == 10 {
            Date::parse_iso(value)
        } else {
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|_| value.get(..10))
                .and_then(Date::parse_iso)
        };
        if date.is_none() {
            self.fail(
                name,
                "invalid",
                "Expected a date as YYYY-MM-DD (or an RFC 3339 date-time).",
            );
        }
        date
    }

    pub fn dollars(&mut self, name: &str) -> Option<i64> {
        let value = self.text(name)?;
        match market::money::parse_dollars(value) {
            Some(cents) => Some(cents),
            None => {
                self.fail(
                    name,
                    "invalid",
                    "Expected a non-negative amount in dollars with at most two decimals.",
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.text(name)? {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                self.fail(name, "invalid", "Expected true or false.");
                None
            }
        }
    }

    /// One of `choices` (case-insensitive), returned in the given spelling.
    pub fn choice(&mut self, name: &str, choices: &[&'static str]) -> Option<&'static str> {
        let value = self.text(name)?;
        match choices.iter().find(|c| c.eq_ignore_ascii_case(value)) {
            Some(choice) => Some(choice),
            None => {
                let message = format!("Expected one of: {}.", choices.join(", "));
                self.fail(name, "invalid", message);
                None
            }
        }
    }

    /// Comma-separated transaction codes.
    pub fn codes(&mut self, name: &str) -> Vec<String> {
        let Some(value) = self.text(name) else {
            return Vec::new();
        };
        let codes: Vec<String> = value.split(',').map(str::to_ascii_uppercase).collect();
        if codes.len() > market::alerts::MAX_CODES
            || !codes.iter().all(|c| market::alerts::is_transaction_code(c))
        {
            self.fail(
                name,
                "invalid",
                "Expected SEC transaction codes such as P,S,A,M,F,G.",
            );
            return Vec::new();
        }
        codes
    }

    /// `page` and `per_page` (API.md: per_page over 200 is a 422), by the rule of every listing.
    pub fn page(&mut self) -> PageRequest {
        let page = self.number("page");
        let per_page = self.number("per_page");
        let (request, errors) = super::Paging { page, per_page }.check();
        self.errors.extend(errors);
        request
    }

    fn number(&mut self, name: &str) -> Option<u32> {
        let value = self.text(name)?;
        match value.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.fail(name, "invalid", "Expected a positive whole number.");
                None
            }
        }
    }

    pub fn fail_with(&mut self, name: &str, code: &str, message: impl Into<String>) {
        self.fail(name, code, message);
    }

    /// Every problem found so far as one 422, or nothing.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}
