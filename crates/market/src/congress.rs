//! Congressional trade disclosures: the periodic transaction reports members of the House and the
//! Senate file under the STOCK Act, in the JSON shape published by House Stock Watcher and Senate
//! Stock Watcher, turned into typed [`CongressTrade`]s.
//!
//! This module owns reading those feeds safely and nothing after: fetching them, storing trades
//! (deduplicated by [`CongressTrade::fingerprint`]) and serving them live elsewhere.
//!
//! The input is a JSON array of records, or an object whose `transactions` member is one. Both
//! feeds' field names are understood (`representative` or `senator` or `member`, `type`, `amount`,
//! `transaction_date`, …) and unknown fields are ignored, because the feeds carry many. A record
//! that cannot be understood is reported in [`Disclosures::rejected`] with its index and a reason;
//! it never stops the records after it. Only a file that is not JSON, is too large or is not an
//! array of records is an error.
//!
//! Normalisation, which consumers may rely on:
//! - All text is trimmed, runs of whitespace (and control characters) become one space, and
//!   invisible formatting characters (zero-width spaces, bidi overrides) are dropped.
//! - `member` loses a leading `Hon.` (the House feed's honorific), so one person reads alike in
//!   both chambers.
//! - `ticker` and `asset_description` may be HTML in the Senate feed: tags are stripped and common
//!   entities decoded. Tickers are upper-cased and kept only if they look like a symbol.
//! - `owner` is lower-cased (`self`, `spouse`, `joint`, …), being a category rather than a name.
//! - `--` and empty strings mean "none" in optional fields.
//! - Length limits, counted in characters after cleaning: a `member` over
//!   [`MAX_MEMBER_CHARS`] or an `owner` over [`MAX_OWNER_CHARS`] rejects the record (truncating
//!   an identity could merge two people); an `asset_description` over [`MAX_DESCRIPTION_CHARS`]
//!   is truncated (it is free text); a link over [`MAX_LINK_CHARS`] or not `http(s)` is dropped.
//!
//! ```
//! let json = br#"[{
//!     "senator": "Thomas R Carper",
//!     "transaction_date": "11/10/2020",
//!     "disclosure_date": "11/16/2020",
//!     "ticker": "<a href=\"https://finance.yahoo.com/q?s=LIN\">LIN</a>",
//!     "asset_description": "Linde plc",
//!     "type": "Sale (Full)",
//!     "amount": "$1,001 - $15,000",
//!     "owner": "Spouse"
//! }]"#;
//! let parsed = market::congress::parse_disclosures(json)?;
//! let trade = &parsed.trades[0];
//! assert_eq!(trade.chamber, market::congress::Chamber::Senate);
//! assert_eq!(trade.ticker.as_deref(), Some("LIN"));
//! assert_eq!(trade.kind.as_str(), "sale_full");
//! assert_eq!((trade.amount.low_cents, trade.amount.high_cents), (100_100, Some(1_500_000)));
//! assert_eq!(trade.transaction_date.to_string(), "2020-11-10");
//! assert!(parsed.rejected.is_empty());
//! # Ok::<(), market::congress::CongressError>(())
//! ```

use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

pub use crate::form4::Date;

/// Longest accepted member name, in characters; longer rejects the record.
pub const MAX_MEMBER_CHARS: usize = 200;
/// Longest kept asset description, in characters; longer is truncated.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest accepted owner, in characters; longer rejects the record.
pub const MAX_OWNER_CHARS: usize = 100;
/// Longest kept report link, in characters; longer is dropped.
pub const MAX_LINK_CHARS: usize = 2000;

/// How much of an offending value a rejection reason may quote.
const EXCERPT_CHARS: usize = 40;

/// Caps applied to one feed file. [`Limits::DEFAULT`] is what [`parse_disclosures`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole input, in bytes.
    pub max_input_bytes: usize,
    /// Records in the array, accepted and rejected together.
    pub max_records: usize,
}

impl Limits {
    /// The limits [`parse_disclosures`] applies: 64 MiB and one million records.
    pub const DEFAULT: Limits = Limits {
        max_input_bytes: 64 * 1024 * 1024,
        max_records: 1_000_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The chamber of Congress a member sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chamber {
    House,
    Senate,
}

impl Chamber {
    /// `"house"` or `"senate"`, the form stored and accepted in query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Chamber::House => "house",
            Chamber::Senate => "senate",
        }
    }

    /// `house` or `senate` in any case, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Option<Chamber> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("house") {
            Some(Chamber::House)
        } else if text.eq_ignore_ascii_case("senate") {
            Some(Chamber::Senate)
        } else {
            None
        }
    }
}

impl fmt::Display for Chamber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the member did. A plain `Sale` is one the filer did not mark as full or partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TradeKind {
    Purchase,
    Sale,
    SaleFull,
    SalePartial,
    Exchange,
}

impl TradeKind {
    /// `"purchase"`, `"sale"`, `"sale_full"`, `"sale_partial"` or `"exchange"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeKind::Purchase => "purchase",
            TradeKind::Sale => "sale",
            TradeKind::SaleFull => "sale_full",
            TradeKind::SalePartial => "sale_partial",
            TradeKind::Exchange => "exchange",
        }
    }

    /// Either feed's spelling, in any case: the House's `sale_full` and the Senate's
    /// `Sale (Full)` alike; also [`TradeKind::as_str`]'s output.
    pub fn parse(text: &str) -> Option<TradeKind> {
        let text = clean_text(text).to_ascii_lowercase();
        match text.as_str() {
            "purchase" => Some(TradeKind::Purchase),
            "sale" => Some(TradeKind::Sale),
            "sale_full" | "sale (full)" => Some(TradeKind::SaleFull),
            "sale_partial" | "sale (partial)" => Some(TradeKind::SalePartial),
            "exchange" => Some(TradeKind::Exchange),
            _ => None,
        }
    }
}

impl fmt::Display for TradeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value bracket a disclosure states, in cents (disclosures give ranges, never exact values).
///
/// `high_cents` is `None` for an open-ended bracket (`Over $50,000,000`, `$50,000,001 +`). The
/// parser guarantees `0 <= low_cents` and `low_cents <= high_cents`.
///
/// Displays in the feeds' own style (`$1,001 - $15,000`, `$15,000`, `$50,000,001 +`), which
/// [`parse_amount_range`] reads back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AmountRange {
    pub low_cents: i64,
    pub high_cents: Option<i64>,
}

impl fmt::Display for AmountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_money(f, self.low_cents)?;
        match self.high_cents {
            Some(high) if high == self.low_cents => Ok(()),
            Some(high) => {
                f.write_str(" - ")?;
                write_money(f, high)
            }
            None => f.write_str(" +"),
        }
    }
}

/// `$1,234.05`: thousands separated, cents only when there are some.
fn write_money(f: &mut fmt::Formatter<'_>, cents: i64) -> fmt::Result {
    if cents < 0 {
        f.write_str("-")?;
    }
    let magnitude = cents.unsigned_abs();
    let digits = (magnitude / 100).to_string();
    f.write_str("$")?;
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            f.write_str(",")?;
        }
        f.write_char(digit)?;
    }
    match magnitude % 100 {
        0 => Ok(()),
        rest => write!(f, ".{rest:02}"),
    }
}

/// Why an amount was refused by [`parse_amount_range`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount \"{excerpt}\" is not a dollar amount or range")]
    Malformed {
        /// The start of the offending text, cut to a short length.
        excerpt: String,
    },
    #[error("amount is negative")]
    Negative,
    #[error("amount is too large")]
    Overflow,
    #[error("amount range is inverted (low above high)")]
    Inverted,
}

/// Parses a disclosure's amount bracket.
///
/// Accepted, with or without `$`, thousands commas (correctly grouped) and 1–2 decimal places:
/// - `$1,001 - $15,000` (a hyphen or en dash separates the bounds);
/// - `$1,001 -` and `$50,000,000 +`: open-ended, from the stated amount;
/// - `Over $50,000,000`: open-ended, from one dollar above the stated amount, since the brackets
///   are in whole dollars and the bracketed form of the same category reads `$50,000,001 +`;
/// - `$15,000`: a single amount, low = high.
pub fn parse_amount_range(text: &str) -> Result<AmountRange, AmountError> {
    let text = clean_text(text);
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let fail = |bad: BadMoney| match bad {
        BadMoney::Malformed => AmountError::Malformed {
            excerpt: excerpt(&text),
        },
        BadMoney::Negative => AmountError::Negative,
        BadMoney::Overflow => AmountError::Overflow,
    };
    let open = |low| AmountRange {
        low_cents: low,
        high_cents: None,
    };

    if let Some(rest) = strip_prefix_ignore_case(&text, "over") {
        let stated = parse_money(rest).map_err(fail)?;
        return stated
            .checked_add(100)
            .map(open)
            .ok_or(AmountError::Overflow);
    }
    if let Some(rest) = text.strip_suffix('+') {
        return parse_money(rest).map(open).map_err(fail);
    }
    let Some((low, high)) = split_range(&text) else {
        let amount = parse_money(&text).map_err(fail)?;
        return Ok(AmountRange {
            low_cents: amount,
            high_cents: Some(amount),
        });
    };
    let low = parse_money(low).map_err(fail)?;
    if high.trim().is_empty() {
        return Ok(open(low));
    }
    let high = parse_money(high).map_err(fail)?;
    if low > high {
        return Err(AmountError::Inverted);
    }
    Ok(AmountRange {
        low_cents: low,
        high_cents: Some(high),
    })
}

/// The two sides of `low - high`. The separator is the first dash that follows a digit, so a
/// leading minus sign (`-$5`, `$-5`) is not mistaken for one and is reported as negative.
fn split_range(text: &str) -> Option<(&str, &str)> {
    let (at, dash) = text.char_indices().find(|&(at, c)| {
        matches!(c, '-' | '\u{2013}' | '\u{2014}')
            && text
                .get(..at)
                .is_some_and(|before| before.trim_end().ends_with(|d: char| d.is_ascii_digit()))
    })?;
    Some((text.get(..at)?, text.get(at + dash.len_utf8()..)?))
}

enum BadMoney {
    Malformed,
    Negative,
    Overflow,
}

/// `$1,001.50` → 100150 cents. `$` is optional; commas, if any, must group thousands.
fn parse_money(text: &str) -> Result<i64, BadMoney> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).trim_start();
    if text.starts_with(['-', '\u{2212}']) {
        return Err(BadMoney::Negative);
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let mut dollars: i64 = 0;
    let mut groups = whole.split(',').peekable();
    let mut first = true;
    while let Some(group) = groups.next() {
        let grouped = !first || groups.peek().is_some();
        let size_ok = if first && grouped {
            (1..=3).contains(&group.len())
        } else if grouped {
            group.len() == 3
        } else {
            !group.is_empty()
        };
        if !size_ok || !group.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadMoney::Malformed);
        }
        for digit in group.bytes() {
            dollars = dollars
                .checked_mul(10)
                .and_then(|d| d.checked_add(i64::from(digit - b'0')))
                .ok_or(BadMoney::Overflow)?;
        }
        first = false;
    }
    let cents = match fraction.map(str::as_bytes) {
        None => 0,
        Some([tens]) if tens.is_ascii_digit() => i64::from(tens - b'0') * 10,
        Some([tens, units]) if tens.is_ascii_digit() && units.is_ascii_digit() => {
            i64::from(tens - b'0') * 10 + i64::from(units - b'0')
        }
        Some(_) => return Err(BadMoney::Malformed),
    };
    dollars
        .checked_mul(100)
        .and_then(|d| d.checked_add(cents))
        .ok_or(BadMoney::Overflow)
}

/// A disclosure date in either feed's format: `2021-09-27` (ISO) or `10/04/2021` (US, month and
/// day of one or two digits). `None` if it is neither or not on the calendar.
pub fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if let Some(date) = Date::parse_iso(text) {
        return Some(date);
    }
    let mut parts = text.split('/');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    let number = |part: &str, max_len: usize| -> Option<u16> {
        if part.is_empty() || part.len() > max_len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    Date::new(
        number(year, 4)?,
        u8::try_from(number(month, 2)?).ok()?,
        u8::try_from(number(day, 2)?).ok()?,
    )
}

/// One trade a member disclosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CongressTrade {
    /// The member's name as filed, cleaned (see the module notes); never empty.
    pub member: String,
    pub chamber: Chamber,
    /// Upper-case symbol of 1–10 characters from `A–Z 0–9 . -`; `None` when the feed gives none
    /// (`--`) or something that is not a symbol.
    pub ticker: Option<String>,
    /// What was traded, as text (HTML stripped); may be empty.
    pub asset_description: String,
    pub kind: TradeKind,
    pub amount: AmountRange,
    pub transaction_date: Date,
    /// When the report was filed, if the feed says.
    pub disclosure_date: Option<Date>,
    /// Whose account: `self`, `spouse`, `joint`, `dependent`, `child`, … (lower-cased).
    pub owner: Option<String>,
    /// The filed report (`ptr_link`); only `http`/`https` URLs are kept.
    pub link: Option<String>,
}

impl CongressTrade {
    /// A stable identity for deduplication: lower-case hex SHA-256 over every field except
    /// `link`, each length-prefixed so no two different trades encode alike. Ingesting a file twice
    /// yields the same fingerprints; the link is left out because the same report may be
    /// published under more than one URL.
    ///
    /// Two identical rows in one report (same member, asset, owner, bracket and dates) share a
    /// fingerprint: the feeds give nothing that tells them apart.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        let mut put = |value: &[u8]| {
            hasher.update(u64::try_from(value.len()).unwrap_or(u64::MAX).to_be_bytes());
            hasher.update(value);
        };
        // Why a version tag: changing the recipe later must change every fingerprint, not some.
        put(b"tradesignal congress trade v1");
        put(self.chamber.as_str().as_bytes());
        put(self.member.as_bytes());
        put_optional(&mut put, self.ticker.as_deref());
        put(self.asset_description.as_bytes());
        put(self.kind.as_str().as_bytes());
        put(&self.amount.low_cents.to_be_bytes());
        put_optional(
            &mut put,
            self.amount
                .high_cents
                .map(i64::to_be_bytes)
                .as_ref()
                .map(|b| &b[..]),
        );
        put(self.transaction_date.to_string().as_bytes());
        put_optional(
            &mut put,
            self.disclosure_date.map(|d| d.to_string()).as_deref(),
        );
        put_optional(&mut put, self.owner.as_deref());
        hex::encode(hasher.finalize())
    }
}

/// `None` and `Some(empty)` must hash differently, hence the presence marker.
fn put_optional<T: AsRef<[u8]> + ?Sized>(put: &mut impl FnMut(&[u8]), value: Option<&T>) {
    match value {
        None => put(b"\x00"),
        Some(value) => {
            put(b"\x01");
            put(value.as_ref());
        }
    }
}

/// A record that was not turned into a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// Zero-based position in the array.
    pub index: usize,
    /// Why, quoting at most a short excerpt of the offending value.
    pub reason: String,
}

/// Everything one feed file yielded, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disclosures {
    pub trades: Vec<CongressTrade>,
    pub rejected: Vec<RejectedRecord>,
}

/// A feed file refused as a whole. Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CongressError {
    #[error("input is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("input has more than {limit} records")]
    TooManyRecords { limit: usize },
    #[error("input is not valid JSON: {problem} at line {line}, column {column}")]
    Json {
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error("input is {found}, not an array of disclosure records")]
    NotAnArray { found: &'static str },
    #[error("input object has more than one \"transactions\" member")]
    DuplicateTransactions,
}

/// Parses a House or Senate Stock Watcher JSON file with the default [`Limits`].
pub fn parse_disclosures(bytes: &[u8]) -> Result<Disclosures, CongressError> {
    parse_disclosures_with_limits(bytes, &Limits::DEFAULT)
}

/// [`parse_disclosures`] with caller-chosen limits.
pub fn parse_disclosures_with_limits(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Disclosures, CongressError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(CongressError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut ingest = Ingest {
        max_records: limits.max_records,
        out: Disclosures::default(),
        failure: None,
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    let result = TopLevel(&mut ingest)
        .deserialize(&mut reader)
        .and_then(|()| reader.end());
    // Our own refusals travel through serde as opaque errors; the real reason is kept aside.
    if let Some(failure) = ingest.failure.take() {
        return Err(failure);
    }
    result.map_err(|error| CongressError::Json {
        problem: match error.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Io => "read error",
        },
        line: error.line(),
        column: error.column(),
    })?;
    Ok(ingest.out)
}

// ---- Streaming reader -------------------------------------------------------------------------
//
// Records are read one at a time straight from the bytes and converted at once, so memory holds
// the results and one raw record, never a tree of the whole file. Values of unknown fields are
// skipped without being built.

struct Ingest {
    max_records: usize,
    out: Disclosures,
    failure: Option<CongressError>,
}

impl Ingest {
    fn fail<E: de::Error>(&mut self, failure: CongressError) -> E {
        self.failure = Some(failure);
        E::custom("refused")
    }

    fn read_records<'de, A: SeqAccess<'de>>(&mut self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(element) = seq.next_element::<RawElement>()? {
            if index >= self.max_records {
                let limit = self.max_records;
                return Err(self.fail(CongressError::TooManyRecords { limit }));
            }
            match element.into_trade() {
                Ok(trade) => self.out.trades.push(trade),
                Err(reason) => self.out.rejected.push(RejectedRecord { index, reason }),
            }
            index += 1;
        }
        Ok(())
    }
}

/// A scalar where records were expected refuses the whole file; `$found` words what was found
/// for the context (top level or `transactions`).
macro_rules! refuse_scalars {
    ($found:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("a boolean"),
            }))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("a number"),
            }))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("a number"),
            }))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("a number"),
            }))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("a string"),
            }))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Err(self.0.fail(CongressError::NotAnArray {
                found: $found("null"),
            }))
        }
    };
}

/// The whole document: an array of records, or an object with a `transactions` array.
struct TopLevel<'a>(&'a mut Ingest);

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of disclosure records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.read_records(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(is_transactions) = map.next_key_seed(KeyIs("transactions"))? {
            if !is_transactions {
                map.next_value::<IgnoredAny>()?;
            } else if found {
                return Err(self.0.fail(CongressError::DuplicateTransactions));
            } else {
                found = true;
                map.next_value_seed(Transactions(&mut *self.0))?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(self.0.fail(CongressError::NotAnArray {
                found: "an object without a \"transactions\" member",
            }))
        }
    }

    refuse_scalars!(|found| found);
}

/// The value of a top-level object's `transactions` member.
struct Transactions<'a>(&'a mut Ingest);

impl<'de> DeserializeSeed<'de> for Transactions<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transactions<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of disclosure records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.read_records(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.fail(CongressError::NotAnArray {
            found: "an object whose \"transactions\" member is not an array",
        }))
    }

    refuse_scalars!(|_| "an object whose \"transactions\" member is not an array");
}

/// Whether a map key equals a given name, compared without allocating the key.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The record fields this parser reads; everything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Representative,
    Senator,
    Member,
    Chamber,
    TransactionDate,
    DisclosureDate,
    Ticker,
    AssetDescription,
    Type,
    Amount,
    Owner,
    PtrLink,
}

impl Field {
    const ALL: [Field; 12] = [
        Field::Representative,
        Field::Senator,
        Field::Member,
        Field::Chamber,
        Field::TransactionDate,
        Field::DisclosureDate,
        Field::Ticker,
        Field::AssetDescription,
        Field::Type,
        Field::Amount,
        Field::Owner,
        Field::PtrLink,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Representative => "representative",
            Field::Senator => "senator",
            Field::Member => "member",
            Field::Chamber => "chamber",
            Field::TransactionDate => "transaction_date",
            Field::DisclosureDate => "disclosure_date",
            Field::Ticker => "ticker",
            Field::AssetDescription => "asset_description",
            Field::Type => "type",
            Field::Amount => "amount",
            Field::Owner => "owner",
            Field::PtrLink => "ptr_link",
        }
    }
}

/// A record key: one of ours, or another to skip.
struct FieldKey;

impl<'de> DeserializeSeed<'de> for FieldKey {
    type Value = Option<Field>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKey {
    type Value = Option<Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Field::ALL.into_iter().find(|field| field.name() == key))
    }
}

/// One field's value as found: only strings carry meaning, but other JSON types are recorded so
/// the rejection can say what was there instead.
#[derive(Debug, Default)]
enum Value {
    #[default]
    Absent,
    Null,
    Text(String),
    Other(&'static str),
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        Ok(Value::Text(text))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Other("a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Other("an object"))
    }
}

/// One array element before interpretation.
enum RawElement {
    Record(Box<RawRecord>),
    NotAnObject(&'static str),
}

#[derive(Debug, Default)]
struct RawRecord {
    values: [Value; Field::ALL.len()],
    /// The first field given twice: which of the two is meant is anyone's guess.
    duplicate: Option<Field>,
}

impl RawRecord {
    fn slot(&mut self, field: Field) -> Option<&mut Value> {
        let at = Field::ALL.iter().position(|f| *f == field)?;
        self.values.get_mut(at)
    }

    fn get(&self, field: Field) -> &Value {
        Field::ALL
            .iter()
            .position(|f| *f == field)
            .and_then(|at| self.values.get(at))
            .unwrap_or(&Value::Absent)
    }

    /// The field's cleaned text; `None` if absent, null, empty or `--`; an error if not a string.
    fn text(&self, field: Field) -> Result<Option<String>, String> {
        match self.get(field) {
            Value::Absent | Value::Null => Ok(None),
            Value::Other(found) => Err(format!("\"{}\" is {found}, not text", field.name())),
            Value::Text(raw) => Ok(present(clean_text(raw))),
        }
    }

    /// Like [`RawRecord::text`], but absence is an error.
    fn required(&self, field: Field) -> Result<String, String> {
        self.text(field)?
            .ok_or_else(|| format!("missing \"{}\"", field.name()))
    }

    /// The raw string, for fields that need HTML handling before cleaning.
    fn raw_html(&self, field: Field) -> Result<Option<String>, String> {
        match self.get(field) {
            Value::Absent | Value::Null => Ok(None),
            Value::Other(found) => Err(format!("\"{}\" is {found}, not text", field.name())),
            Value::Text(raw) => Ok(present(clean_html(raw))),
        }
    }
}

/// The text, unless the feed left the field empty or wrote `--` for "none".
fn present(text: String) -> Option<String> {
    (!text.is_empty() && text != "--").then_some(text)
}

impl<'de> de::Deserialize<'de> for RawElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawElement, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = RawElement;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a disclosure record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawElement, A::Error> {
        let mut record = Box::<RawRecord>::default();
        while let Some(key) = map.next_key_seed(FieldKey)? {
            let Some(field) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value: Value = map.next_value()?;
            if let Some(slot) = record.slot(field) {
                if matches!(slot, Value::Absent) {
                    *slot = value;
                } else {
                    record.duplicate.get_or_insert(field);
                }
            }
        }
        Ok(RawElement::Record(record))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawElement, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawElement::NotAnObject("an array"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawElement, E> {
        Ok(RawElement::NotAnObject("null"))
    }
}

// ---- Interpretation ---------------------------------------------------------------------------

impl RawElement {
    fn into_trade(self) -> Result<CongressTrade, String> {
        match self {
            RawElement::Record(record) => record.into_trade(),
            RawElement::NotAnObject(found) => Err(format!("record is {found}, not an object")),
        }
    }
}

impl RawRecord {
    fn into_trade(self) -> Result<CongressTrade, String> {
        if let Some(field) = self.duplicate {
            return Err(format!("\"{}\" is given more than once", field.name()));
        }
        let (member, chamber) = self.member_and_chamber()?;

        let kind_text = self.required(Field::Type)?;
        let kind = TradeKind::parse(&kind_text).ok_or_else(|| {
            format!(
                "\"type\" \"{}\" is not a known transaction type",
                excerpt(&kind_text)
            )
        })?;

        let amount = parse_amount_range(&self.required(Field::Amount)?)
            .map_err(|error| format!("\"amount\": {error}"))?;

        let transaction_date = date(
            Field::TransactionDate,
            &self.required(Field::TransactionDate)?,
        )?;
        let disclosure_date = match self.text(Field::DisclosureDate)? {
            Some(text) => Some(date(Field::DisclosureDate, &text)?),
            None => None,
        };

        let ticker = self
            .raw_html(Field::Ticker)?
            .and_then(|text| normalize_ticker(&text));
        let asset_description = self
            .raw_html(Field::AssetDescription)?
            .map(|text| truncate_chars(text, MAX_DESCRIPTION_CHARS))
            .unwrap_or_default();

        let owner = self.text(Field::Owner)?.map(|owner| owner.to_lowercase());
        if let Some(owner) = &owner
            && owner.chars().count() > MAX_OWNER_CHARS
        {
            return Err(format!(
                "\"owner\" is longer than {MAX_OWNER_CHARS} characters"
            ));
        }

        let link = self.text(Field::PtrLink)?.filter(|link| is_web_link(link));

        Ok(CongressTrade {
            member,
            chamber,
            ticker,
            asset_description,
            kind,
            amount,
            transaction_date,
            disclosure_date,
            owner,
            link,
        })
    }

    /// Who filed and in which chamber: the name field implies the chamber (`representative` →
    /// House, `senator` → Senate), an explicit `chamber` must agree with it, and a generic
    /// `member` needs the explicit one.
    fn member_and_chamber(&self) -> Result<(String, Chamber), String> {
        let mut named: Option<(String, Option<Chamber>)> = None;
        for (field, implied) in [
            (Field::Representative, Some(Chamber::House)),
            (Field::Senator, Some(Chamber::Senate)),
            (Field::Member, None),
        ] {
            let Some(name) = self.text(field)? else {
                continue;
            };
            if named.is_some() {
                return Err(
                    "record names more than one of \"representative\", \"senator\", \"member\""
                        .to_owned(),
                );
            }
            named = Some((name, implied));
        }
        let Some((name, implied)) = named else {
            return Err(
                "missing member name (\"representative\", \"senator\" or \"member\")".to_owned(),
            );
        };

        let name = strip_honorific(&name).to_owned();
        if name.is_empty() {
            return Err("member name is only an honorific".to_owned());
        }
        if name.chars().count() > MAX_MEMBER_CHARS {
            return Err(format!(
                "member name is longer than {MAX_MEMBER_CHARS} characters"
            ));
        }

        let explicit = match self.text(Field::Chamber)? {
            Some(text) => Some(Chamber::parse(&text).ok_or_else(|| {
                format!(
                    "\"chamber\" \"{}\" is neither house nor senate",
                    excerpt(&text)
                )
            })?),
            None => None,
        };
        let chamber = match (explicit, implied) {
            (Some(explicit), Some(implied)) if explicit != implied => {
                return Err(format!(
                    "\"chamber\" is {explicit} but the record names a {}",
                    match implied {
                        Chamber::House => "representative",
                        Chamber::Senate => "senator",
                    }
                ));
            }
            (Some(chamber), _) | (None, Some(chamber)) => chamber,
            (None, None) => return Err("missing \"chamber\" for a \"member\" record".to_owned()),
        };
        Ok((name, chamber))
    }
}

fn date(field: Field, text: &str) -> Result<Date, String> {
    parse_date(text).ok_or_else(|| {
        format!(
            "\"{}\" \"{}\" is not a date (YYYY-MM-DD or MM/DD/YYYY)",
            field.name(),
            excerpt(text)
        )
    })
}

/// Drops the House feed's `Hon.` so a member's name reads the same in both feeds.
fn strip_honorific(name: &str) -> &str {
    match strip_prefix_ignore_case(name, "hon.") {
        Some(rest) => rest.trim_start(),
        None => name,
    }
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// Upper-cased if it is a ticker symbol (see [`crate::query::is_ticker`]); otherwise `None`, because
/// a stored ticker is matched against companies and must not be prose.
fn normalize_ticker(text: &str) -> Option<String> {
    let ticker = text.to_ascii_uppercase();
    crate::query::is_ticker(&ticker).then_some(ticker)
}

/// Only absolute `http`/`https` URLs without spaces: the link is shown to users as a hyperlink,
/// so `javascript:` and the like must never get through.
fn is_web_link(link: &str) -> bool {
    let rest = strip_prefix_ignore_case(link, "https://")
        .or_else(|| strip_prefix_ignore_case(link, "http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with(['/', '?', '#'])
            && !rest.contains(char::is_whitespace)
    }) && link.chars().count() <= MAX_LINK_CHARS
}

fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.truncate(text.trim_end().len());
    }
    text
}

/// Trims, collapses whitespace and control characters to single spaces, and drops invisible
/// formatting characters (which could make two identical-looking names differ).
fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
        } else if !is_invisible(c) {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Text of an HTML fragment: tags removed, entities decoded, then cleaned. Entities are decoded
/// after tags are removed, so `&lt;b&gt;` stays visible text rather than becoming a tag.
fn clean_html(text: &str) -> String {
    clean_text(&decode_entities(&strip_tags(text)))
}

/// Removes `<tag …>`, `</tag>`, `<!…>` and `<?…>`; a `<` that does not open one stays as text.
/// Block-level tags leave a space so words on either side do not run together.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    // Once no `>` follows, none will for any later `<`: remembering that keeps this linear.
    let mut closers_left = true;
    while let Some((before, after)) = rest.split_once('<') {
        out.push_str(before);
        let opens_tag = after
            .strip_prefix('/')
            .unwrap_or(after)
            .starts_with(|c: char| c.is_ascii_alphabetic())
            || after.starts_with(['!', '?']);
        let end = if opens_tag && closers_left {
            after.find('>')
        } else {
            None
        };
        match end {
            Some(end) => {
                let name: String = after
                    .trim_start_matches('/')
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .take(8)
                    .collect();
                if ["br", "p", "div", "li", "tr", "td", "th"]
                    .iter()
                    .any(|block| name.eq_ignore_ascii_case(block))
                {
                    out.push(' ');
                }
                rest = after.get(end + 1..).unwrap_or("");
            }
            None => {
                closers_left &= !opens_tag;
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the entities these feeds use (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;`)
/// and numeric ones; anything else is left as written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let decoded = after
            .char_indices()
            .take(10)
            .find(|&(_, c)| c == ';')
            .and_then(|(end, _)| Some((decode_entity(after.get(..end)?)?, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = after.get(end + 1..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = name.strip_prefix('#')?;
            let (digits, radix) = match number.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (number, 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            char::from_u32(u32::from_str_radix(digits, radix).ok()?)
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, control characters replaced, for reasons.
fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(low: i64, high: Option<i64>) -> AmountRange {
        AmountRange {
            low_cents: low,
            high_cents: high,
        }
    }

    fn date_of(y: u16, m: u8, d: u8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    #[test]
    fn amount_brackets() {
        let cases = [
            ("$1,001 - $15,000", range(100_100, Some(1_500_000))),
            (
                "$1,000,001 - $5,000,000",
                range(100_000_100, Some(500_000_000)),
            ),
            ("$15,001 -$50,000", range(1_500_100, Some(5_000_000))),
            ("$1,001\u{2013}$15,000", range(100_100, Some(1_500_000))),
            ("  $1,001   -   $15,000 ", range(100_100, Some(1_500_000))),
            ("1001 - 15000", range(100_100, Some(1_500_000))),
            ("Over $50,000,000", range(5_000_000_100, None)),
            ("over $1,000,000", range(100_000_100, None)),
            ("$50,000,001 +", range(5_000_000_100, None)),
            ("$50,000,000 +", range(5_000_000_000, None)),
            ("$50,000,000+", range(5_000_000_000, None)),
            ("$15,000", range(1_500_000, Some(1_500_000))),
            ("$1,001 -", range(100_100, None)),
            ("$1,001.50", range(100_150, Some(100_150))),
            ("$1,001.5 - $2,000.05", range(100_150, Some(200_005))),
            ("$0", range(0, Some(0))),
            ("$15,000 - $15,000", range(1_500_000, Some(1_500_000))),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_amount_range(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn amount_refusals() {
        let malformed =
            |text: &str| matches!(parse_amount_range(text), Err(AmountError::Malformed { .. }));
        assert_eq!(parse_amount_range(""), Err(AmountError::Empty));
        assert_eq!(parse_amount_range("  \t "), Err(AmountError::Empty));
        for text in [
            "garbage",
            "$",
            "$1,00 - $15,000",
            "$1,0001",
            ",001",
            "$1,001,",
            "$1.001",
            "$1.",
            "$1.234",
            "$1,001 - $15,000 +",
            "$1,001 - $15,000 - $20,000",
            "Spouse/DC Over $1,000,000",
            "$1e5",
            "$١٢",
            "Over",
            "+",
        ] {
            assert!(malformed(text), "{text}: {:?}", parse_amount_range(text));
        }
        // A dash with no digit before it is read as a minus sign.
        for text in [
            "-$5",
            "$-5",
            "- $5",
            "\u{2212}$5",
            "$5 - -$10",
            "$5 - - $10",
            "$ - $5",
        ] {
            assert_eq!(
                parse_amount_range(text),
                Err(AmountError::Negative),
                "{text}"
            );
        }
        assert_eq!(
            parse_amount_range("$15,000 - $1,001"),
            Err(AmountError::Inverted)
        );
        for text in [
            "$92,233,720,368,547,758.08",
            "$99999999999999999999",
            "Over $92,233,720,368,547,758",
            "$1 - $99999999999999999999",
        ] {
            assert_eq!(
                parse_amount_range(text),
                Err(AmountError::Overflow),
                "{text}"
            );
        }
        assert_eq!(
            parse_amount_range("$92,233,720,368,547,758.07"),
            Ok(range(i64::MAX, Some(i64::MAX)))
        );
    }

    #[test]
    fn amount_error_does_not_echo_long_input() {
        let long = "x".repeat(10_000);
        let message = parse_amount_range(&long).unwrap_err().to_string();
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn amount_display_round_trips() {
        for r in [
            range(100_100, Some(1_500_000)),
            range(5_000_000_100, None),
            range(1_500_000, Some(1_500_000)),
            range(100_150, Some(200_005)),
            range(0, None),
            range(5, Some(99)),
            range(i64::MAX, None),
        ] {
            assert_eq!(parse_amount_range(&r.to_string()), Ok(r), "{r}");
        }
        assert_eq!(
            range(100_100, Some(1_500_000)).to_string(),
            "$1,001 - $15,000"
        );
        assert_eq!(range(5_000_000_100, None).to_string(), "$50,000,001 +");
        assert_eq!(range(100_150, Some(100_150)).to_string(), "$1,001.50");
        assert_eq!(range(5, Some(99)).to_string(), "$0.05 - $0.99");
        assert_eq!(range(-100, None).to_string(), "-$1 +");
    }

    #[test]
    fn dates_in_both_formats() {
        assert_eq!(parse_date("2021-09-27"), Some(date_of(2021, 9, 27)));
        assert_eq!(parse_date("10/04/2021"), Some(date_of(2021, 10, 4)));
        assert_eq!(parse_date(" 1/4/2021 "), Some(date_of(2021, 1, 4)));
        assert_eq!(parse_date("02/29/2020"), Some(date_of(2020, 2, 29)));
        for bad in [
            "",
            "--",
            "02/29/2021",
            "13/01/2021",
            "00/10/2021",
            "10/04/21",
            "10/04/02021",
            "10-04-2021",
            "2021/09/27",
            "10/04/2021/1",
            "+1/04/2021",
            "100/4/2021",
            "2021-9-27",
            "2021-09-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn trade_kinds_of_both_feeds() {
        for (text, kind) in [
            ("purchase", TradeKind::Purchase),
            ("Purchase", TradeKind::Purchase),
            ("sale", TradeKind::Sale),
            ("sale_full", TradeKind::SaleFull),
            ("Sale (Full)", TradeKind::SaleFull),
            ("sale_partial", TradeKind::SalePartial),
            (" Sale  (Partial) ", TradeKind::SalePartial),
            ("Exchange", TradeKind::Exchange),
        ] {
            assert_eq!(TradeKind::parse(text), Some(kind), "{text}");
            assert_eq!(TradeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TradeKind::parse("gift"), None);
        assert_eq!(Chamber::parse(" SENATE "), Some(Chamber::Senate));
        assert_eq!(Chamber::parse("House"), Some(Chamber::House));
        assert_eq!(Chamber::parse("joint"), None);
    }

    #[test]
    fn html_is_reduced_to_text() {
        assert_eq!(
            clean_html(r#"<a href="https://finance.yahoo.com/q?s=LIN">LIN</a>"#),
            "LIN"
        );
        assert_eq!(
            clean_html("<font color=\"red\">S&amp;P</font> 500<br>Index &lt;b&gt; &#65;&#x42;"),
            "S&P 500 Index <b> AB"
        );
        assert_eq!(clean_html("Bonds < 1 yr > cash"), "Bonds < 1 yr > cash");
        assert_eq!(clean_html("a <b unclosed"), "a <b unclosed");
        assert_eq!(
            clean_html("&bogus; & &#xZZ; &#1114112;"),
            "&bogus; & &#xZZ; &#1114112;"
        );
        assert_eq!(clean_html("<!-- note --><p>One</p><p>Two</p>"), "One Two");
        // Many unclosed `<` must stay linear, not rescan to the end each time.
        let soup = "<a".repeat(200_000);
        assert_eq!(clean_html(&soup).len(), soup.len());
    }

    #[test]
    fn text_is_cleaned() {
        assert_eq!(
            clean_text("  Hon.\u{a0}Virginia \n\t Foxx\u{200b} "),
            "Hon. Virginia Foxx"
        );
        assert_eq!(clean_text("a\u{0}b"), "a b");
        assert_eq!(strip_honorific("Hon. Virginia Foxx"), "Virginia Foxx");
        assert_eq!(strip_honorific("HON.Nancy Pelosi"), "Nancy Pelosi");
        assert_eq!(strip_honorific("Honda Accord"), "Honda Accord");
        assert_eq!(truncate_chars("é".repeat(5), 3), "ééé");
        assert_eq!(truncate_chars("ab cd".to_owned(), 3), "ab");
        assert_eq!(truncate_chars("abc".to_owned(), 3), "abc");
    }

    #[test]
    fn tickers_and_links() {
        assert_eq!(normalize_ticker("brk.b"), Some("BRK.B".to_owned()));
        assert_eq!(normalize_ticker("BF-B"), Some("BF-B".to_owned()));
        for bad in ["", "--", ".", "N/A", "TOOLONGTICKER", "ÄPPL", "A B", "$BP"] {
            assert_eq!(normalize_ticker(bad), None, "{bad}");
        }
        assert!(is_web_link(
            "https://efdsearch.senate.gov/search/view/ptr/1/"
        ));
        assert!(is_web_link("HTTP://disclosures-clerk.house.gov/x.pdf"));
        for bad in [
            "javascript:alert(1)",
            "ftp://example.com/",
            "https://",
            "https:///path",
            "https://a b",
            "//example.com",
        ] {
            assert!(!is_web_link(bad), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_LINK_CHARS));
        assert!(!is_web_link(&long));
    }

    fn one(json: &str) -> Result<CongressTrade, String> {
        let parsed = parse_disclosures(json.as_bytes()).unwrap();
        match (parsed.trades.as_slice(), parsed.rejected.as_slice()) {
            ([trade], []) => Ok(trade.clone()),
            ([], [rejected]) => Err(rejected.reason.clone()),
            other => panic!("{other:?}"),
        }
    }

    const BASE: &str =
        r#""transaction_date": "2021-09-27", "type": "purchase", "amount": "$1,001 - $15,000""#;

    #[test]
    fn member_and_chamber_rules() {
        let house = one(&format!(r#"[{{"representative": "Hon. A B", {BASE}}}]"#)).unwrap();
        assert_eq!(
            (house.member.as_str(), house.chamber),
            ("A B", Chamber::House)
        );
        let senate = one(&format!(r#"[{{"senator": "C D", {BASE}}}]"#)).unwrap();
        assert_eq!(senate.chamber, Chamber::Senate);
        let generic = one(&format!(
            r#"[{{"member": "E F", "chamber": "Senate", {BASE}}}]"#
        ))
        .unwrap();
        assert_eq!(generic.chamber, Chamber::Senate);
        let agreeing = one(&format!(
            r#"[{{"senator": "C D", "chamber": "SENATE", {BASE}}}]"#
        ))
        .unwrap();
        assert_eq!(agreeing.chamber, Chamber::Senate);

        for (record, reason) in [
            (
                format!(r#"{{"member": "E F", {BASE}}}"#),
                "missing \"chamber\"",
            ),
            (
                format!(r#"{{"representative": "A", "chamber": "senate", {BASE}}}"#),
                "\"chamber\" is senate but the record names a representative",
            ),
            (
                format!(r#"{{"member": "E F", "chamber": "joint", {BASE}}}"#),
                "\"chamber\" \"joint\" is neither house nor senate",
            ),
            (
                format!(r#"{{"representative": "A", "senator": "B", {BASE}}}"#),
                "more than one of",
            ),
            (
                format!(r#"{{"representative": "", {BASE}}}"#),
                "missing member name",
            ),
            (
                format!(r#"{{"representative": "Hon. ", {BASE}}}"#),
                "only an honorific",
            ),
            (
                format!(r#"{{"representative": 7, {BASE}}}"#),
                "is a number, not text",
            ),
            (
                format!(r#"{{"representative": "{}", {BASE}}}"#, "x".repeat(201)),
                "longer than 200",
            ),
            (
                format!(r#"{{"representative": "A", "representative": "B", {BASE}}}"#),
                "\"representative\" is given more than once",
            ),
        ] {
            let error = one(&format!("[{record}]")).unwrap_err();
            assert!(error.contains(reason), "{record}: {error}");
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        for field in ["transaction_date", "type", "amount"] {
            let record = [
                r#""representative": "A""#,
                r#""transaction_date": "2021-09-27""#,
                r#""type": "purchase""#,
                r#""amount": "$1,001 - $15,000""#,
            ]
            .into_iter()
            .filter(|part| !part.contains(&format!("\"{field}\"")))
            .collect::<Vec<_>>()
            .join(", ");
            let error = one(&format!("[{{{record}}}]")).unwrap_err();
            assert_eq!(error, format!("missing \"{field}\""));
        }
    }

    #[test]
    fn optional_fields() {
        let trade = one(&format!(
            r#"[{{"representative": "A", {BASE}, "ticker": "--", "owner": "--",
                 "disclosure_date": "", "ptr_link": "javascript:x", "asset_description": null}}]"#
        ))
        .unwrap();
        assert_eq!(trade.ticker, None);
        assert_eq!(trade.owner, None);
        assert_eq!(trade.disclosure_date, None);
        assert_eq!(trade.link, None);
        assert_eq!(trade.asset_description, "");

        let long = one(&format!(
            r#"[{{"representative": "A", {BASE}, "asset_description": "{}"}}]"#,
            "é".repeat(1500)
        ))
        .unwrap();
        assert_eq!(
            long.asset_description.chars().count(),
            MAX_DESCRIPTION_CHARS
        );

        let error = one(&format!(
            r#"[{{"representative": "A", {BASE}, "owner": "{}"}}]"#,
            "o".repeat(101)
        ))
        .unwrap_err();
        assert!(error.contains("\"owner\" is longer"), "{error}");

        let error = one(&format!(
            r#"[{{"representative": "A", {BASE}, "disclosure_date": "{}"}}]"#,
            "9".repeat(5000)
        ))
        .unwrap_err();
        assert!(error.len() < 120, "{error}");
        assert!(error.starts_with("\"disclosure_date\" \"999"), "{error}");
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        let trade = one(&format!(
            r#"[{{"representative": "A", {BASE}, "owner": "self", "ticker": "BP"}}]"#
        ))
        .unwrap();
        let fingerprint = trade.fingerprint();
        assert_eq!(fingerprint.len(), 64);
        assert!(
            fingerprint
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(trade.clone().fingerprint(), fingerprint);

        let mut relinked = trade.clone();
        relinked.link = Some("https://example.com/".to_owned());
        assert_eq!(relinked.fingerprint(), fingerprint);

        let variants: [fn(&mut CongressTrade); 11] = [
            |t| t.member.push('x'),
            |t| t.chamber = Chamber::Senate,
            |t| t.ticker = None,
            |t| t.ticker = Some(String::new()),
            |t| t.asset_description.push('x'),
            |t| t.kind = TradeKind::Sale,
            |t| t.amount.low_cents += 1,
            |t| t.amount.high_cents = None,
            |t| t.transaction_date = date_of(2021, 9, 28),
            |t| t.disclosure_date = Some(date_of(2021, 9, 28)),
            |t| t.owner = None,
        ];
        for change in variants {
            let mut changed = trade.clone();
            change(&mut changed);
            assert_ne!(changed.fingerprint(), fingerprint, "{changed:?}");
        }

        // Shifting text between adjacent fields must not collide.
        let mut a = trade.clone();
        a.member = "AB".to_owned();
        a.asset_description = String::new();
        let mut b = trade;
        b.member = "A".to_owned();
        b.asset_description = "B".to_owned();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn top_level_shapes() {
        let record = format!(r#"{{"representative": "A", {BASE}}}"#);
        let wrapped = format!(r#"{{"source": [1, {{"x": 2}}], "transactions": [{record}]}}"#);
        assert_eq!(
            parse_disclosures(wrapped.as_bytes()).unwrap().trades.len(),
            1
        );
        let bom = format!("\u{feff}[{record}]");
        assert_eq!(parse_disclosures(bom.as_bytes()).unwrap().trades.len(), 1);
        assert_eq!(parse_disclosures(b" [ ] ").unwrap(), Disclosures::default());

        let refused = |json: &str| parse_disclosures(json.as_bytes()).unwrap_err();
        assert!(matches!(refused("{}"), CongressError::NotAnArray { .. }));
        assert!(matches!(
            refused("\"x\""),
            CongressError::NotAnArray { found: "a string" }
        ));
        assert!(matches!(
            refused("null"),
            CongressError::NotAnArray { found: "null" }
        ));
        assert!(matches!(
            refused(r#"{"transactions": {"a": 1}}"#),
            CongressError::NotAnArray { .. }
        ));
        assert!(matches!(
            refused(r#"{"transactions": 5}"#),
            CongressError::NotAnArray { .. }
        ));
        assert_eq!(
            refused(r#"{"transactions": [], "transactions": []}"#),
            CongressError::DuplicateTransactions
        );
        assert!(matches!(refused(""), CongressError::Json { .. }));
        assert!(matches!(refused("[1,"), CongressError::Json { .. }));
        assert!(matches!(refused("[] []"), CongressError::Json { .. }));
        assert!(matches!(
            refused("[{\"a\": \"\u{1}\"}]"),
            CongressError::Json { .. }
        ));
        assert!(matches!(
            parse_disclosures(b"[\"\xff\"]").unwrap_err(),
            CongressError::Json { .. }
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_input_bytes: 10,
            max_records: 2,
        };
        assert_eq!(
            parse_disclosures_with_limits(&[b' '; 11], &limits),
            Err(CongressError::TooLarge {
                size: 11,
                limit: 10
            })
        );
        let limits = Limits {
            max_input_bytes: 1024,
            max_records: 2,
        };
        assert_eq!(
            parse_disclosures_with_limits(b"[1,2]", &limits)
                .unwrap()
                .rejected
                .len(),
            2
        );
        assert_eq!(
            parse_disclosures_with_limits(b"[1,2,3]", &limits),
            Err(CongressError::TooManyRecords { limit: 2 })
        );
        assert_eq!(
            parse_disclosures_with_limits(br#"{"transactions": [1,2,3]}"#, &limits),
            Err(CongressError::TooManyRecords { limit: 2 })
        );
    }

    #[test]
    fn odd_elements_are_rejected_not_fatal() {
        let json = format!(
            r#"[1, "x", null, [1, [2]], true, {{}}, {{"representative": "A", {BASE}, "extra": {{"deep": [[[]]]}}, "n": 1e400}}]"#
        );
        let parsed = parse_disclosures(json.as_bytes()).unwrap();
        assert_eq!(parsed.trades.len(), 1);
        let reasons: Vec<(usize, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (0, "record is a number, not an object"),
                (1, "record is a string, not an object"),
                (2, "record is null, not an object"),
                (3, "record is an array, not an object"),
                (4, "record is a boolean, not an object"),
                (
                    5,
                    "missing member name (\"representative\", \"senator\" or \"member\")"
                ),
            ]
        );
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let nest =
            |open: &str, close: &str| format!("{}{}", open.repeat(100_000), close.repeat(100_000));
        let element = format!("[{}]", nest("[", "]"));
        let parsed = parse_disclosures(element.as_bytes()).unwrap();
        assert_eq!(
            parsed.rejected[0].reason,
            "record is an array, not an object"
        );

        let in_field = format!(r#"[{{"representative": {}}}]"#, nest("[", "]"));
        let parsed = parse_disclosures(in_field.as_bytes()).unwrap();
        assert_eq!(
            parsed.rejected[0].reason,
            "\"representative\" is an array, not text"
        );

        let unknown = format!(
            r#"[{{"x": {}, "representative": "A", {BASE}}}]"#,
            nest("{\"a\":", "}").replacen("}", "1}", 1)
        );
        assert_eq!(
            parse_disclosures(unknown.as_bytes()).unwrap().trades.len(),
            1
        );
    }
}
