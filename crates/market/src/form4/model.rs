//! The facts one Form 3/4/5 filing states, as plain owned data: issuer, reporting owners,
//! transactions, holdings and footnotes, plus the calendar [`Date`] they are dated with and the
//! rule by which an amendment supersedes what it amends.
//!
//! Conventions (the parser guarantees them, consumers may rely on them):
//! - CIKs are 10-digit, zero-padded strings (`"0001640147"`), the form EDGAR prints in headers and
//!   URLs; a string keeps leading zeros and never invites arithmetic on an identifier.
//! - Text is trimmed and every run of XML whitespace is collapsed to one space, because filers wrap
//!   long footnotes with source indentation that carries no meaning. Empty text is `None`.
//! - Share counts and prices are exact [`Decimal`]s with the scale they were filed with
//!   (`"134018.0"` stays `134018.0`); nothing goes through floating point.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// A calendar date (proleptic Gregorian, years 1–9999), displayed as `YYYY-MM-DD`.
///
/// A small own type rather than a date library: the filings only need validation, ordering and
/// printing, and keeping the parser free of optional dependencies keeps the fuzz surface small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order matters: the derived `Ord` compares year, then month, then day.
    year: u16,
    month: u8,
    day: u8,
}

/// The text given to [`Date::from_str`] is not a valid `YYYY-MM-DD` date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid YYYY-MM-DD date")]
pub struct InvalidDate;

impl Date {
    /// The date, if it exists on the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1..=9999).contains(&year) && (1..=days_in_month).contains(&day)).then_some(Date {
            year,
            month,
            day,
        })
    }

    /// Year, 1–9999.
    pub fn year(self) -> u16 {
        self.year
    }

    /// Month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// Day of the month, 1–31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Parses an XML Schema date as the ownership XML carries it: `YYYY-MM-DD`, optionally
    /// followed by a time-zone designator (`Z`, `+05:00`, `-05:00`), which is dropped because
    /// the filings state calendar dates, not instants.
    pub fn parse_iso(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        let (date, zone) = (bytes.get(..10)?, bytes.get(10..)?);
        let valid_zone = match zone {
            [] | [b'Z'] => true,
            [b'+' | b'-', h1, h2, b':', m1, m2] => {
                [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
            }
            _ => false,
        };
        match date {
            [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] if valid_zone => Date::new(
                digits(&[*y1, *y2, *y3, *y4])?,
                u8::try_from(digits(&[*m1, *m2])?).ok()?,
                u8::try_from(digits(&[*d1, *d2])?).ok()?,
            ),
            _ => None,
        }
    }

    /// Parses the compact `YYYYMMDD` form used by the EDGAR submission header
    /// (`FILED AS OF DATE: 20250110`).
    pub fn parse_compact(text: &str) -> Option<Date> {
        match text.as_bytes() {
            [y1, y2, y3, y4, m1, m2, d1, d2] => Date::new(
                digits(&[*y1, *y2, *y3, *y4])?,
                u8::try_from(digits(&[*m1, *m2])?).ok()?,
                u8::try_from(digits(&[*d1, *d2])?).ok()?,
            ),
            _ => None,
        }
    }
}

/// The value of 2–4 ASCII digits; `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u16> {
    bytes.iter().try_fold(0u16, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u16::from(b - b'0'))
    })
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = InvalidDate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Date::parse_iso(s).ok_or(InvalidDate)
    }
}

/// One parsed ownership filing (Form 3, 4 or 5, or an amendment of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// `documentType`: one of `"3"`, `"3/A"`, `"4"`, `"4/A"`, `"5"`, `"5/A"`.
    pub document_type: String,
    /// `periodOfReport`: the date of the earliest reported event.
    pub period_of_report: Option<Date>,
    /// `dateOfOriginalSubmission`: for an amendment, when the filing it amends was filed.
    pub date_of_original_submission: Option<Date>,
    /// EDGAR accession number (`0001127602-25-001055`); only known when the input was a full
    /// EDGAR submission `.txt`, whose header carries it.
    pub accession_number: Option<String>,
    /// `FILED AS OF DATE` from the EDGAR submission header; `None` for bare XML.
    pub filed_at: Option<Date>,
    /// `notSubjectToSection16` (absent means `false`).
    pub not_subject_to_section16: bool,
    /// `aff10b5One`: whether the filer marks a transaction as made under a Rule 10b5-1 trading
    /// plan. `None` where the element is absent (schemas before X0508 do not have it).
    pub rule_10b5_1: Option<bool>,
    /// The company whose securities are reported.
    pub issuer: Issuer,
    /// Every reporting owner, in document order (at least one).
    pub owners: Vec<ReportingOwner>,
    /// Transactions of both tables in document order (the schema puts the non-derivative table
    /// first); [`Transaction::is_derivative`] tells them apart.
    pub transactions: Vec<Transaction>,
    /// Positions reported without a transaction (`nonDerivativeHolding`, `derivativeHolding`).
    /// Holdings are not transactions, so they are kept apart from [`Filing::transactions`].
    pub holdings: Vec<Holding>,
    /// Footnotes in document order; rows refer to them by [`Footnote::id`].
    pub footnotes: Vec<Footnote>,
    /// Free-text `remarks`.
    pub remarks: Option<String>,
}

/// The company whose securities the filing reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// 10-digit zero-padded CIK.
    pub cik: String,
    /// Name as filed (`issuerName`).
    pub name: String,
    /// Trading symbol, upper-case and trimmed; `None` when missing or filed as `NONE`/`N/A`.
    pub ticker: Option<String>,
}

/// A person or entity on whose behalf the filing is made, with its relationship to the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingOwner {
    /// 10-digit zero-padded CIK.
    pub cik: String,
    /// Name as filed (`rptOwnerName`), typically "LAST FIRST".
    pub name: String,
    /// A relationship flag that is absent or empty counts as `false`.
    pub is_director: bool,
    pub is_officer: bool,
    pub officer_title: Option<String>,
    pub is_ten_percent_owner: bool,
    pub is_other: bool,
    pub other_text: Option<String>,
}

/// `A` (acquired) or `D` (disposed of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquiredDisposed {
    Acquired,
    Disposed,
}

impl AcquiredDisposed {
    /// The one-letter code the form uses.
    pub fn code(self) -> char {
        match self {
            AcquiredDisposed::Acquired => 'A',
            AcquiredDisposed::Disposed => 'D',
        }
    }
}

/// `D` (owned directly) or `I` (owned indirectly, see [`Transaction::nature_of_ownership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectIndirect {
    Direct,
    Indirect,
}

impl DirectIndirect {
    /// The one-letter code the form uses.
    pub fn code(self) -> char {
        match self {
            DirectIndirect::Direct => 'D',
            DirectIndirect::Indirect => 'I',
        }
    }
}

/// Terms only derivative securities (options, units, convertible stock) have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DerivativeTerms {
    /// `conversionOrExercisePrice`; `None` when only footnoted.
    pub conversion_or_exercise_price: Option<Decimal>,
    /// `exerciseDate`; `None` when only footnoted (e.g. "immediately exercisable").
    pub exercise_date: Option<Date>,
    /// `expirationDate`; `None` when only footnoted.
    pub expiration_date: Option<Date>,
    /// `underlyingSecurityTitle`.
    pub underlying_security_title: Option<String>,
    /// `underlyingSecurityShares`.
    pub underlying_security_shares: Option<Decimal>,
}

/// One row of Table I (non-derivative) or Table II (derivative) that reports a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub security_title: String,
    pub transaction_date: Date,
    pub deemed_execution_date: Option<Date>,
    /// `transactionFormType`: the form the transaction is reportable on (`"4"`, or `"5"` for a
    /// transaction reported late on a Form 5).
    pub form_type: Option<String>,
    /// `transactionCode`: `P` purchase, `S` sale, `A` grant, `M` option exercise, `G` gift, ….
    pub code: String,
    pub equity_swap_involved: bool,
    pub shares: Decimal,
    /// Price per share; `None` when the filing gives no value (it may give only a footnote).
    pub price_per_share: Option<Decimal>,
    /// Footnotes attached to the price (typically "weighted average of …").
    pub price_footnote_ids: Vec<String>,
    pub acquired_disposed: AcquiredDisposed,
    /// `sharesOwnedFollowingTransaction`.
    pub shares_owned_after: Option<Decimal>,
    pub direct_indirect: DirectIndirect,
    /// `natureOfOwnership`, e.g. "By Trust"; usually only for indirect ownership.
    pub nature_of_ownership: Option<String>,
    /// Every footnote the row refers to, anywhere in it, in document order without repeats.
    pub footnote_ids: Vec<String>,
    /// `Some` exactly for rows of the derivative table.
    pub derivative: Option<DerivativeTerms>,
}

impl Transaction {
    /// Whether the row comes from the derivative table (Table II).
    pub fn is_derivative(&self) -> bool {
        self.derivative.is_some()
    }

    /// Shares × price per share, rounded half away from zero to the cent (scale 2), whenever a
    /// price is present (a price of 0 gives 0.00); `None` without a price. Exact decimal
    /// arithmetic throughout; `None` as well in the (absurd) case the product overflows.
    pub fn value(&self) -> Option<Decimal> {
        let mut value = self
            .shares
            .checked_mul(self.price_per_share?)?
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        // Why rescale: `round_dp` only lowers the scale; a whole-number product should still
        // print as cents ("545980.00"), as money does everywhere else in the API.
        value.rescale(2);
        Some(value)
    }
}

/// One row that reports a position held, not a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub security_title: String,
    /// `sharesOwnedFollowingTransaction`; derivative holdings often give only the underlying
    /// share count ([`DerivativeTerms::underlying_security_shares`]).
    pub shares_owned: Option<Decimal>,
    pub direct_indirect: DirectIndirect,
    pub nature_of_ownership: Option<String>,
    pub footnote_ids: Vec<String>,
    /// `Some` exactly for rows of the derivative table.
    pub derivative: Option<DerivativeTerms>,
}

impl Holding {
    /// Whether the row comes from the derivative table (Table II).
    pub fn is_derivative(&self) -> bool {
        self.derivative.is_some()
    }
}

/// A footnote; rows refer to it by `id` (`"F1"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footnote {
    pub id: String,
    pub text: String,
}

/// Whether a document type is an amendment (`3/A`, `4/A`, `5/A`).
fn is_amendment_type(document_type: &str) -> bool {
    document_type.ends_with("/A")
}

/// A document type without the amendment suffix: `"4"` for both `4` and `4/A`.
fn base_form_of(document_type: &str) -> &str {
    document_type.strip_suffix("/A").unwrap_or(document_type)
}

impl Filing {
    /// Whether this is an amendment (`3/A`, `4/A`, `5/A`).
    pub fn is_amendment(&self) -> bool {
        is_amendment_type(&self.document_type)
    }

    /// The form without the amendment suffix: `"4"` for both `4` and `4/A`.
    pub fn base_form(&self) -> &str {
        base_form_of(&self.document_type)
    }

    /// The footnote with this id, if the filing has one.
    pub fn footnote(&self, id: &str) -> Option<&Footnote> {
        self.footnotes.iter().find(|f| f.id == id)
    }

    /// Whether this filing supersedes `other` (see [`FilingIdentity::supersedes`]).
    pub fn supersedes(&self, other: &Filing) -> bool {
        self.identity().supersedes(&other.identity())
    }

    /// The facts that decide amendment supersession, which storage keeps per filing so a new
    /// filing can be matched against stored ones without re-parsing them.
    pub fn identity(&self) -> FilingIdentity {
        let mut owner_ciks: Vec<String> = self.owners.iter().map(|o| o.cik.clone()).collect();
        owner_ciks.sort_unstable();
        owner_ciks.dedup();
        FilingIdentity {
            document_type: self.document_type.clone(),
            issuer_cik: self.issuer.cik.clone(),
            owner_ciks,
            accession_number: self.accession_number.clone(),
            filed_at: self.filed_at,
            date_of_original_submission: self.date_of_original_submission,
        }
    }
}

/// What identifies a filing for amendment matching: its form, issuer, owners and dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingIdentity {
    pub document_type: String,
    pub issuer_cik: String,
    /// Sorted and without duplicates.
    pub owner_ciks: Vec<String>,
    pub accession_number: Option<String>,
    pub filed_at: Option<Date>,
    pub date_of_original_submission: Option<Date>,
}

impl FilingIdentity {
    /// Whether this is an amendment (`3/A`, `4/A`, `5/A`).
    pub fn is_amendment(&self) -> bool {
        is_amendment_type(&self.document_type)
    }

    /// The form without the amendment suffix.
    pub fn base_form(&self) -> &str {
        base_form_of(&self.document_type)
    }

    /// Whether this filing supersedes `other`: this is an amendment of the same form, for the
    /// same issuer and the same set of reporting owners, whose `dateOfOriginalSubmission` names
    /// the day the original was filed, and `other` is that original or an earlier amendment of it.
    ///
    /// The ownership XML does not carry the amended filing's accession number, so the match is by
    /// these facts. It is deliberately conservative: when a date needed for the match is unknown
    /// (bare XML has no filing date), nothing is superseded and both filings are kept.
    pub fn supersedes(&self, other: &FilingIdentity) -> bool {
        let Some(original_date) = self.date_of_original_submission else {
            return false;
        };
        if !self.is_amendment()
            || self.base_form() != other.base_form()
            || self.issuer_cik != other.issuer_cik
            || self.owner_ciks != other.owner_ciks
            || (self.accession_number.is_some() && self.accession_number == other.accession_number)
        {
            return false;
        }
        if !other.is_amendment() {
            return other.filed_at == Some(original_date);
        }
        // Two amendments of the same original: the later one wins.
        if other.date_of_original_submission != Some(original_date) {
            return false;
        }
        match (self.filed_at, other.filed_at) {
            (Some(mine), Some(theirs)) if mine != theirs => mine > theirs,
            _ => match (&self.accession_number, &other.accession_number) {
                // Accession numbers of one filer agent rise with time; the sequence part decides
                // between two amendments filed the same day.
                (Some(mine), Some(theirs)) => mine > theirs,
                _ => false,
            },
        }
    }
}

/// The filings of `filings` that no other filing in it supersedes (see [`Filing::supersedes`]),
/// in their original order: amendments replace what they amend.
///
/// Quadratic in the number of filings; meant for the filings of one issuer or one ingest batch.
pub fn current_filings(filings: Vec<Filing>) -> Vec<Filing> {
    let superseded: Vec<bool> = filings
        .iter()
        .map(|f| filings.iter().any(|g| g.supersedes(f)))
        .collect();
    filings
        .into_iter()
        .zip(superseded)
        .filter_map(|(f, gone)| (!gone).then_some(f))
        .collect()
}
