//! The SEC ownership-report parser: Forms 3, 4 and 5 (and their amendments) as `<ownershipDocument>`
//! XML, bare or inside an EDGAR full-submission `.txt`, turned into a [`Filing`].
//!
//! This module owns reading those documents safely and nothing after: storing filings, matching
//! insiders to users and raising alerts live elsewhere in the crate or in other crates.
//!
//! - [`model`]: the extracted facts ([`Filing`], [`Transaction`], …) and amendment supersession.
//! - `parse`: the streaming quick-xml reader of `<ownershipDocument>`.
//! - `edgar`: the `.txt` envelope (accession number, filing date, the embedded XML).
//! - [`limits`]: the caps that bound every allocation.
//! - `scalar`: strict parsing of booleans, decimals, CIKs, dates and codes.
//!
//! Untrusted input is the normal case here: no input may panic, recurse or allocate without bound,
//! DTDs and entity declarations are refused, and errors never echo more than a short excerpt.
//!
//! ```
//! let xml = br#"<ownershipDocument>
//!   <documentType>4</documentType>
//!   <issuer><issuerCik>1750</issuerCik><issuerName>AAR CORP</issuerName>
//!     <issuerTradingSymbol>air</issuerTradingSymbol></issuer>
//!   <reportingOwner><reportingOwnerId><rptOwnerCik>1806647</rptOwnerCik>
//!     <rptOwnerName>Garascia Jessica A.</rptOwnerName></reportingOwnerId>
//!     <reportingOwnerRelationship><isOfficer>true</isOfficer></reportingOwnerRelationship>
//!   </reportingOwner>
//!   <nonDerivativeTable><nonDerivativeTransaction>
//!     <securityTitle><value>Common Stock</value></securityTitle>
//!     <transactionDate><value>2025-01-10</value></transactionDate>
//!     <transactionCoding><transactionCode>S</transactionCode></transactionCoding>
//!     <transactionAmounts><transactionShares><value>1500</value></transactionShares>
//!       <transactionPricePerShare><value>66.903</value></transactionPricePerShare>
//!       <transactionAcquiredDisposedCode><value>D</value></transactionAcquiredDisposedCode>
//!     </transactionAmounts>
//!     <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership>
//!     </ownershipNature>
//!   </nonDerivativeTransaction></nonDerivativeTable>
//! </ownershipDocument>"#;
//! let filing = market::form4::parse_document(xml)?;
//! assert_eq!(filing.issuer.cik, "0000001750");
//! assert_eq!(filing.issuer.ticker.as_deref(), Some("AIR"));
//! assert!(filing.owners[0].is_officer);
//! assert_eq!(filing.transactions[0].value().map(|v| v.to_string()).as_deref(), Some("100354.50"));
//! # Ok::<(), market::form4::ParseError>(())
//! ```

mod edgar;
mod error;
pub mod limits;
pub mod model;
mod parse;
mod scalar;

pub use error::ParseError;
pub use limits::Limits;
pub use model::{
    AcquiredDisposed, Date, DerivativeTerms, DirectIndirect, Filing, FilingIdentity, Footnote,
    Holding, InvalidDate, Issuer, ReportingOwner, Transaction, current_filings,
};
/// Exact decimal used for shares, prices and values (re-exported so callers need not depend on
/// `rust_decimal` directly).
pub use rust_decimal::Decimal;

/// Parses a Form 3/4/5 document with the default [`Limits`]. `bytes` is either the bare
/// `<ownershipDocument>` XML or a full EDGAR submission `.txt`; only the latter yields
/// [`Filing::accession_number`] and [`Filing::filed_at`].
pub fn parse_document(bytes: &[u8]) -> Result<Filing, ParseError> {
    parse_document_with_limits(bytes, &Limits::DEFAULT)
}

/// [`parse_document`] with caller-chosen limits.
pub fn parse_document_with_limits(bytes: &[u8], limits: &Limits) -> Result<Filing, ParseError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let body = strip_bom(bytes).trim_ascii_start();
    if edgar::is_submission(body) {
        let submission = edgar::split(body)?;
        let mut filing = parse::parse_ownership_xml(utf8(submission.xml)?, limits)?;
        filing.accession_number = submission.accession_number;
        filing.filed_at = submission.filed_at;
        Ok(filing)
    } else {
        parse::parse_ownership_xml(utf8(body)?, limits)
    }
}

/// The accession number a file name carries, as EDGAR names its files: `0001127602-25-001055.txt`
/// or the dashless `000112760225001055.xml` (optionally followed by `_form4` or similar). Bare XML
/// has no accession number of its own, so the file name is the only place to find it.
pub fn accession_from_file_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let digits_at = |start: usize, len: usize| {
        bytes
            .get(start..start + len)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let boundary = |at: usize| bytes.get(at).is_none_or(|b| !b.is_ascii_digit());
    for start in 0..bytes.len() {
        if start > 0 && !boundary(start - 1) {
            continue;
        }
        let dashed = digits_at(start, 10)
            && bytes.get(start + 10) == Some(&b'-')
            && digits_at(start + 11, 2)
            && bytes.get(start + 13) == Some(&b'-')
            && digits_at(start + 14, 6)
            && boundary(start + 20);
        if dashed {
            return name.get(start..start + 20).map(str::to_string);
        }
        if digits_at(start, 18) && boundary(start + 18) {
            let d = name.get(start..start + 18)?;
            return Some(format!(
                "{}-{}-{}",
                d.get(..10)?,
                d.get(10..12)?,
                d.get(12..)?
            ));
        }
    }
    None
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The document as text. Ownership XML is ASCII or UTF-8 in practice; other encodings are
/// refused rather than guessed, and the error gives the offset (within the XML) of the first
/// invalid byte, not the bytes.
fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|error| ParseError::NotUtf8 {
        offset: error.valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::accession_from_file_name;

    #[test]
    fn accession_numbers_in_file_names() {
        assert_eq!(
            accession_from_file_name("0001127602-25-001055.txt").as_deref(),
            Some("0001127602-25-001055")
        );
        assert_eq!(
            accession_from_file_name("000092963823001482_form4.xml").as_deref(),
            Some("0000929638-23-001482")
        );
        for none in [
            "snowflake-form4-20221213.xml",
            "",
            "1234567890-12-12345.xml",
            "0000929638230014821.xml",
        ] {
            assert_eq!(accession_from_file_name(none), None, "{none}");
        }
    }
}
