//! The EDGAR full-submission `.txt` wrapper: an SGML-like envelope (`<SEC-DOCUMENT>`,
//! `<SEC-HEADER>`, one `<DOCUMENT>` per attached file) in which the ownership XML sits between
//! `<XML>` and `</XML>`. This module finds that XML and reads the accession number and filing
//! date from the header; it never interprets the other documents (exhibits are often HTML in a
//! legacy encoding, so the envelope is scanned as bytes and only the parts used must be UTF-8).

use super::error::ParseError;
use super::model::Date;

/// What the envelope contributes to a [`Filing`](super::Filing), plus the XML it wraps.
#[derive(Debug)]
pub(crate) struct Submission<'a> {
    pub(crate) accession_number: Option<String>,
    pub(crate) filed_at: Option<Date>,
    pub(crate) xml: &'a [u8],
}

/// Whether `input` (leading whitespace and BOM already stripped) is an EDGAR submission rather
/// than bare XML. EDGAR submissions start with their envelope tag; old ones with a PEM banner.
pub(crate) fn is_submission(input: &[u8]) -> bool {
    [
        b"<SEC-DOCUMENT>".as_slice(),
        b"<SEC-HEADER>",
        b"<DOCUMENT>",
        b"-----BEGIN PRIVACY-ENHANCED MESSAGE-----",
    ]
    .iter()
    .any(|prefix| input.starts_with(prefix))
}

/// Splits a submission into its header facts and the first `<XML>` block that holds an
/// `<ownershipDocument>`.
pub(crate) fn split(input: &[u8]) -> Result<Submission<'_>, ParseError> {
    let (accession_number, filed_at, body_start) = match header(input) {
        Some((header, end)) => (accession(header)?, filed_date(header)?, end),
        None => (None, None, 0),
    };
    let mut from = body_start;
    while let Some(open) = find(input, b"<XML>", from) {
        let content_start = open + b"<XML>".len();
        let close = find(input, b"</XML>", content_start)
            .ok_or(ParseError::Truncated { element: "XML" })?;
        let content = input.get(content_start..close).unwrap_or_default();
        if find(content, b"<ownershipDocument", 0).is_some() {
            return Ok(Submission {
                accession_number,
                filed_at,
                xml: content.trim_ascii_start(),
            });
        }
        from = close + b"</XML>".len();
    }
    Err(ParseError::NoOwnershipDocument)
}

/// The bytes between `<SEC-HEADER>` and `</SEC-HEADER>`, and the offset after the latter.
fn header(input: &[u8]) -> Option<(&[u8], usize)> {
    let start = find(input, b"<SEC-HEADER>", 0)? + b"<SEC-HEADER>".len();
    let end = find(input, b"</SEC-HEADER>", start)?;
    Some((input.get(start..end)?, end + b"</SEC-HEADER>".len()))
}

/// The value of a top-level `KEY:<tabs>value` header line. Nested sections (owner and issuer
/// data) are indented, so only unindented lines match and `FORM TYPE` inside them cannot shadow
/// the submission's own fields.
fn header_field<'h>(header: &'h [u8], key: &str) -> Option<&'h [u8]> {
    header.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key.as_bytes())?.strip_prefix(b":")?;
        Some(rest.trim_ascii())
    })
}

/// `ACCESSION NUMBER`, which must look like `0001127602-25-001055`.
fn accession(header: &[u8]) -> Result<Option<String>, ParseError> {
    let Some(value) = header_field(header, "ACCESSION NUMBER") else {
        return Ok(None);
    };
    let well_formed = value.len() == 20
        && value.iter().enumerate().all(|(i, b)| match i {
            10 | 13 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !well_formed {
        return Err(ParseError::InvalidHeader {
            field: "ACCESSION NUMBER",
        });
    }
    // Why lossless: the bytes were just checked to be ASCII digits and dashes.
    Ok(Some(String::from_utf8_lossy(value).into_owned()))
}

/// `FILED AS OF DATE` (`YYYYMMDD`).
fn filed_date(header: &[u8]) -> Result<Option<Date>, ParseError> {
    let Some(value) = header_field(header, "FILED AS OF DATE") else {
        return Ok(None);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(Date::parse_compact)
        .map(Some)
        .ok_or(ParseError::InvalidHeader {
            field: "FILED AS OF DATE",
        })
}

/// Offset of the first `needle` in `haystack` at or after `from`.
pub(crate) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        // `windows(0)` would panic; an empty needle is found where the search starts.
        return (from <= haystack.len()).then_some(from);
    }
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBMISSION: &[u8] = b"<SEC-DOCUMENT>0000000000-25-000001.txt : 20250110\n<SEC-HEADER>0000000000-25-000001.hdr.sgml : 20250110\nACCESSION NUMBER:\t\t0000000000-25-000001\nCONFORMED SUBMISSION TYPE:\t4\nFILED AS OF DATE:\t\t20250110\n\nREPORTING-OWNER:\n\n\tFILING VALUES:\n\t\tFORM TYPE:\t\t4\n</SEC-HEADER>\n<DOCUMENT>\n<TYPE>EX-99\n<TEXT>\n<XML>\n<other/>\n</XML>\n</TEXT>\n</DOCUMENT>\n<DOCUMENT>\n<TYPE>4\n<TEXT>\n<XML>\n<ownershipDocument/>\n</XML>\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n";

    #[test]
    fn finds_header_facts_and_the_ownership_xml() {
        assert!(is_submission(SUBMISSION));
        let sub = split(SUBMISSION).unwrap();
        assert_eq!(
            sub.accession_number.as_deref(),
            Some("0000000000-25-000001")
        );
        assert_eq!(sub.filed_at.unwrap().to_string(), "2025-01-10");
        assert_eq!(sub.xml, b"<ownershipDocument/>\n");
    }

    #[test]
    fn refuses_bad_headers_and_missing_xml() {
        let bad = b"<SEC-HEADER>\nACCESSION NUMBER: 12-34\n</SEC-HEADER>\n<XML><ownershipDocument/></XML>";
        assert_eq!(
            split(bad).unwrap_err(),
            ParseError::InvalidHeader {
                field: "ACCESSION NUMBER"
            }
        );
        let bad_date = b"<SEC-HEADER>\nFILED AS OF DATE: 20251301\n</SEC-HEADER>\n<XML><ownershipDocument/></XML>";
        assert_eq!(
            split(bad_date).unwrap_err(),
            ParseError::InvalidHeader {
                field: "FILED AS OF DATE"
            }
        );
        assert_eq!(
            split(b"<SEC-DOCUMENT>\n<DOCUMENT>\n<TEXT>\nhello\n</TEXT>").unwrap_err(),
            ParseError::NoOwnershipDocument
        );
        assert_eq!(
            split(b"<SEC-DOCUMENT>\n<XML>\n<ownershipDocument>").unwrap_err(),
            ParseError::Truncated { element: "XML" }
        );
        assert!(!is_submission(
            b"<?xml version=\"1.0\"?><ownershipDocument/>"
        ));
    }

    #[test]
    fn find_is_bounded() {
        assert_eq!(find(b"abcabc", b"c", 3), Some(5));
        assert_eq!(find(b"abc", b"c", 10), None);
        assert_eq!(find(b"", b"abc", 0), None);
    }
}
