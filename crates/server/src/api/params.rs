//! Query-string parameters of the listing endpoints, read strictly: unknown or repeated
//! parameters and malformed values are a 422 naming every bad parameter at once, never a 400 and
//! never an echo of the value.

use std::collections::HashMap;

use market::form4::Date;
use market::query::PageRequest;

use crate::http::{ApiError, FieldError};

/// Longest value any parameter may have (a search term, a member's name).
const MAX_VALUE_CHARS: usize = 100;

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
            values.insert(name, value.trim().to_string());
        }
        Self { values, errors }
    }

    fn fail(&mut self, name: &str, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, code, message));
    }

    /// The raw value, if given and not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
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

    pub fn date(&mut self, name: &str) -> Option<Date> {
        let value = self.text(name)?;
        // A full RFC 3339 timestamp is accepted for its date: filters work on transaction dates.
        let day = value
            .get(..10)
            .filter(|_| value.len() == 10 || value.as_bytes().get(10) == Some(&b'T'));
        match day.and_then(Date::parse_iso) {
            Some(date) => Some(date),
            None => {
                self.fail(name, "invalid", "Expected a date as YYYY-MM-DD.");
                None
            }
        }
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
        let codes: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        if codes.is_empty()
            || codes.len() > 20
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
