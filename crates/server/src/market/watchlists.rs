//! Watchlists: a user's named lists of tickers with notes. Names and notes are plain text, checked
//! for length and control characters here and escaped wherever they are shown.

use store::market::watchlists::WatchlistRecord;

use super::{MarketError, MarketService, tiers};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_NOTES_CHARS: usize = 2000;
pub const MAX_TICKERS: usize = 100;

/// A name: trimmed, 1–100 characters, no control characters.
pub fn clean_name(field: &'static str, name: &str) -> Result<String, MarketError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(MarketError::invalid(field, "required", "Give a name."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(MarketError::invalid(
            field,
            "too_long",
            format!("At most {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(MarketError::invalid(
            field,
            "invalid",
            "Names cannot contain control characters.",
        ));
    }
    Ok(name.to_string())
}

/// Notes: up to 2,000 characters; line breaks and tabs allowed, other control characters not.
pub fn clean_notes(notes: Option<&str>) -> Result<Option<String>, MarketError> {
    let Some(notes) = notes.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(MarketError::invalid(
            "notes",
            "too_long",
            format!("At most {MAX_NOTES_CHARS} characters."),
        ));
    }
    if notes
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(MarketError::invalid(
            "notes",
            "invalid",
            "Notes cannot contain control characters.",
        ));
    }
    Ok(Some(notes.to_string()))
}

/// Tickers: uppercased, valid symbols, duplicates removed, at most 100.
pub fn clean_tickers(tickers: &[String]) -> Result<Vec<String>, MarketError> {
    if tickers.len() > MAX_TICKERS {
        return Err(MarketError::invalid(
            "tickers",
            "too_many",
            format!("At most {MAX_TICKERS} tickers."),
        ));
    }
    let mut clean: Vec<String> = Vec::with_capacity(tickers.len());
    for ticker in tickers {
        let ticker = ticker.trim().to_ascii_uppercase();
        if !market::query::is_ticker(&ticker) {
            return Err(MarketError::invalid(
                "tickers",
                "invalid",
                "Tickers are 1–10 of A–Z, 0–9, '.', '-'.",
            ));
        }
        if !clean.contains(&ticker) {
            clean.push(ticker);
        }
    }
    Ok(clean)
}

/// What a create or update sets (`None` leaves a field as it is on update).
#[derive(Debug, Default)]
pub struct WatchlistChange {
    pub name: Option<String>,
    pub tickers: Option<Vec<String>>,
    /// `Some(None)` clears the notes.
    pub notes: Option<Option<String>>,
}

impl MarketService {
    pub async fn create_watchlist(
        &self,
        user_id: &str,
        change: WatchlistChange,
        now: i64,
    ) -> Result<WatchlistRecord, MarketError> {
        let name = clean_name("name", change.name.as_deref().unwrap_or(""))?;
        let tickers = clean_tickers(change.tickers.as_deref().unwrap_or(&[]))?;
        let notes = clean_notes(change.notes.flatten().as_deref())?;
        let record = WatchlistRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name,
            tickers: serde_json::to_string(&tickers).map_err(anyhow::Error::from)?,
            notes,
            created_at: now,
            updated_at: now,
        };
        if !self
            .db
            .insert_watchlist(&record, tiers::WATCHLIST_LIMIT)
            .await?
        {
            return Err(MarketError::PlanLimit(format!(
                "You can keep at most {} watchlists.",
                tiers::WATCHLIST_LIMIT
            )));
        }
        Ok(record)
    }

    pub async fn update_watchlist(
        &self,
        user_id: &str,
        id: &str,
        change: WatchlistChange,
        now: i64,
    ) -> Result<WatchlistRecord, MarketError> {
        let mut record = self
            .db
            .watchlist(user_id, id)
            .await?
            .ok_or(MarketError::NotFound)?;
        if let Some(name) = change.name {
            record.name = clean_name("name", &name)?;
        }
        if let Some(tickers) = change.tickers {
            record.tickers =
                serde_json::to_string(&clean_tickers(&tickers)?).map_err(anyhow::Error::from)?;
        }
        if let Some(notes) = change.notes {
            record.notes = clean_notes(notes.as_deref())?;
        }
        record.updated_at = now;
        if !self.db.update_watchlist(&record).await? {
            return Err(MarketError::NotFound);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(clean_name("name", "  ").is_err());
        assert!(clean_name("name", &"x".repeat(101)).is_err());
        assert_eq!(clean_name("name", " Tech <b> ").unwrap(), "Tech <b>");
        assert!(clean_name("name", "a\u{0}b").is_err());
        assert_eq!(
            clean_notes(Some("line\nline")).unwrap().as_deref(),
            Some("line\nline")
        );
        assert!(clean_notes(Some("bell\u{7}")).is_err());
        assert!(clean_notes(Some(&"n".repeat(2001))).is_err());
        assert_eq!(clean_notes(Some("  ")).unwrap(), None);
    }

    #[test]
    fn ticker_rules() {
        assert_eq!(
            clean_tickers(&["snow".into(), "SNOW".into(), "brk.b".into()]).unwrap(),
            vec!["SNOW", "BRK.B"]
        );
        assert!(clean_tickers(&["<script>".into()]).is_err());
        assert!(clean_tickers(&vec!["A".to_string(); 101]).is_err());
    }
}
